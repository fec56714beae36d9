//! The watched inbox: a folder where a scanner or a colleague drops PDFs.
//!
//! A file is taken only when it is completely written (its size and modification time have not
//! changed for the settle window, and a PDF that still lacks its `%%EOF` is given a grace period).
//! Taking a file follows a protocol that survives being killed at any instant:
//!
//! 1. **claim**: make `.outpost-claimed/ID/`, write `origin` (the file's path in the inbox), and
//!    rename the file into it (atomic; from here it is ours);
//! 2. **import**: validate and store it; the vault records claim `ID` in the same transaction;
//! 3. **finish**: delete the claim folder.
//!
//! A file that fails validation is rejected instead: its reason is written to
//! `rejected/NAME.reason.txt`, the refusal is audited, then the file is renamed to `rejected/NAME`.
//! At every instant each dropped file is in exactly one place: in the inbox (as dropped, or claimed
//! but not committed), in the vault (a claim folder whose ID the vault has committed is only
//! left-over), or in `rejected/` beside its reason. [`Inbox::scan`] first finishes whatever an
//! interrupted run left.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use notify::{RecursiveMode, Watcher};
use outpost_vault::{DocumentSummary, StoredImport};
use serde::Serialize;

use crate::session::MAX_IMPORT_BYTES;
use crate::{Session, SharedRng, WorkstationError};

/// Hidden folder inside the inbox holding files being taken in.
pub const CLAIMED_DIR: &str = ".outpost-claimed";
/// Folder inside the inbox where refused files go, each beside `NAME.reason.txt`.
pub const REJECTED_DIR: &str = "rejected";
const ORIGIN_FILE: &str = "origin";
const PAYLOAD_FILE: &str = "payload";

/// How the inbox learns about new files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// Filesystem notifications (inotify) wake the scan at once; a slow rescan is the safety net.
    Native,
    /// Rescan every `interval`: for network shares, where inotify sees nothing.
    Polling {
        /// Time between scans.
        interval: Duration,
    },
}

/// Inbox settings.
#[derive(Debug, Clone)]
pub struct InboxConfig {
    /// The watched folder.
    pub dir: PathBuf,
    /// A file must keep the same size and modification time this long before it is taken.
    pub settle: Duration,
    /// A PDF without its `%%EOF` is waited for this long after its last change, then rejected.
    pub incomplete_grace: Duration,
    /// Notifications or polling.
    pub mode: WatchMode,
}

impl InboxConfig {
    /// Defaults for `dir`: 2 s settle, 60 s grace, native notifications.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            settle: Duration::from_secs(2),
            incomplete_grace: Duration::from_secs(60),
            mode: WatchMode::Native,
        }
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IntakeEvent {
    /// Imported as a new document.
    Imported {
        /// The file's path inside the inbox.
        source: String,
        /// The new document.
        document: DocumentSummary,
    },
    /// Its bytes were already in the vault; the file was removed from the inbox.
    Duplicate {
        /// The file's path inside the inbox.
        source: String,
        /// The document it duplicates.
        document: DocumentSummary,
    },
    /// Refused and moved to `rejected/`.
    Rejected {
        /// The file's path inside the inbox.
        source: String,
        /// Why.
        reason: String,
        /// Where it is now.
        moved_to: PathBuf,
    },
    /// Its import had been committed before an interruption; only the clean-up was left, now done.
    Recovered {
        /// The file's path inside the inbox.
        source: String,
    },
    /// Could not be processed now (engine or disk trouble); it stays claimed and is retried.
    Deferred {
        /// The file's path inside the inbox.
        source: String,
        /// What went wrong.
        error: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Observation {
    size: u64,
    modified: Option<SystemTime>,
    stable_since: Instant,
}

/// The inbox of one session.
pub struct Inbox {
    config: InboxConfig,
    observed: HashMap<PathBuf, Observation>,
}

impl Inbox {
    /// An inbox over `config.dir` (created if missing, with its `rejected/` folder).
    pub fn new(config: InboxConfig) -> Result<Self, WorkstationError> {
        for dir in [
            config.dir.clone(),
            config.dir.join(REJECTED_DIR),
            config.dir.join(CLAIMED_DIR),
        ] {
            fs::create_dir_all(&dir).map_err(|e| WorkstationError::io(&dir, e))?;
        }
        Ok(Self {
            config,
            observed: HashMap::new(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &InboxConfig {
        &self.config
    }

    fn claimed_dir(&self) -> PathBuf {
        self.config.dir.join(CLAIMED_DIR)
    }

    fn rejected_dir(&self) -> PathBuf {
        self.config.dir.join(REJECTED_DIR)
    }

    /// One pass: finish interrupted claims, then take every file that is completely written.
    /// `now` is the monotonic time of the pass (passed in so tests control the settle window).
    pub fn scan(
        &mut self,
        session: &Session,
        rng: &SharedRng,
        now: Instant,
    ) -> Result<Vec<IntakeEvent>, WorkstationError> {
        let mut events = self.finish_claims(session)?;
        let mut files = Vec::new();
        collect_files(&self.config.dir, &self.config.dir, &mut files)?;
        let present: std::collections::HashSet<_> = files.iter().cloned().collect();
        self.observed.retain(|p, _| present.contains(p));
        for path in files {
            if !self.is_ready(&path, now)? {
                continue;
            }
            self.observed.remove(&path);
            let source = relative_name(&self.config.dir, &path);
            let Some(claim) = self.claim(&path, &source, rng)? else {
                continue;
            };
            events.push(self.process_claim(session, &claim, source)?);
        }
        remove_empty_subdirs(&self.config.dir, self.config.settle);
        Ok(events)
    }

    fn is_ready(&mut self, path: &Path, now: Instant) -> Result<bool, WorkstationError> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(_) => return Ok(false), // gone meanwhile
        };
        let seen = Observation {
            size: meta.len(),
            modified: meta.modified().ok(),
            stable_since: now,
        };
        let entry = self.observed.entry(path.to_owned()).or_insert(seen);
        if entry.size != seen.size || entry.modified != seen.modified {
            *entry = seen;
            return Ok(false);
        }
        if now.duration_since(entry.stable_since) < self.config.settle {
            return Ok(false);
        }
        // A PDF still being written usually lacks its final %%EOF: wait for it, within reason.
        if looks_like_unfinished_pdf(path, meta.len()) {
            let age = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or_default();
            if age < self.config.incomplete_grace {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn claim(
        &self,
        path: &Path,
        source: &str,
        rng: &SharedRng,
    ) -> Result<Option<PathBuf>, WorkstationError> {
        let mut id = [0u8; 16];
        rng.lock()
            .unwrap_or_else(|p| p.into_inner())
            .fill_bytes(&mut id);
        let claim = self.claimed_dir().join(hex::encode(id));
        fs::create_dir(&claim).map_err(|e| WorkstationError::io(&claim, e))?;
        write_synced(&claim.join(ORIGIN_FILE), source.as_bytes())?;
        match fs::rename(path, claim.join(PAYLOAD_FILE)) {
            Ok(()) => {
                sync_dir(&claim);
                sync_dir(path.parent().unwrap_or(&self.config.dir));
                Ok(Some(claim))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Someone moved it away first: nothing to take.
                let _ = fs::remove_dir_all(&claim);
                Ok(None)
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&claim);
                Err(WorkstationError::io(path, e))
            }
        }
    }

    /// Finishes what an interrupted run left in `.outpost-claimed/` and removes orphan reasons.
    fn finish_claims(&mut self, session: &Session) -> Result<Vec<IntakeEvent>, WorkstationError> {
        remove_orphan_reasons(&self.rejected_dir());
        let mut events = Vec::new();
        let claimed = self.claimed_dir();
        let entries = fs::read_dir(&claimed).map_err(|e| WorkstationError::io(&claimed, e))?;
        let mut claims: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        claims.sort();
        for claim in claims {
            if !claim.join(PAYLOAD_FILE).is_file() {
                // Interrupted before the file moved in (it is still in the inbox) or after it
                // left: only the folder is left over.
                let _ = fs::remove_dir_all(&claim);
                continue;
            }
            let source = fs::read_to_string(claim.join(ORIGIN_FILE))
                .unwrap_or_else(|_| "(unknown name)".to_owned());
            events.push(self.process_claim(session, &claim, source)?);
        }
        Ok(events)
    }

    fn process_claim(
        &self,
        session: &Session,
        claim: &Path,
        source: String,
    ) -> Result<IntakeEvent, WorkstationError> {
        let claim_id = claim
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if session.claim_committed(&claim_id)? {
            // Imported before an interruption; only the clean-up was missing.
            remove_claim(claim)?;
            return Ok(IntakeEvent::Recovered { source });
        }
        let payload = claim.join(PAYLOAD_FILE);
        let size = fs::metadata(&payload)
            .map_err(|e| WorkstationError::io(&payload, e))?
            .len();
        let result = if size > MAX_IMPORT_BYTES {
            Err(WorkstationError::Rejected {
                reason: format!(
                    "the file is too large ({size} bytes; the limit is {MAX_IMPORT_BYTES})"
                ),
            })
        } else {
            let bytes = fs::read(&payload).map_err(|e| WorkstationError::io(&payload, e))?;
            session.import_with_claim(bytes, &source, Some(&claim_id))
        };
        match result {
            Ok(stored) => {
                remove_claim(claim)?;
                Ok(match stored {
                    StoredImport::Imported(document) => IntakeEvent::Imported { source, document },
                    StoredImport::Duplicate(document) => {
                        IntakeEvent::Duplicate { source, document }
                    }
                })
            }
            Err(WorkstationError::Rejected { reason }) => {
                let moved_to = self.reject(session, claim, &source, &reason)?;
                Ok(IntakeEvent::Rejected {
                    source,
                    reason,
                    moved_to,
                })
            }
            Err(other) => Ok(IntakeEvent::Deferred {
                source,
                error: other.to_string(),
            }),
        }
    }

    fn reject(
        &self,
        session: &Session,
        claim: &Path,
        source: &str,
        reason: &str,
    ) -> Result<PathBuf, WorkstationError> {
        let rejected = self.rejected_dir();
        let file_name = Path::new(source)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file")
            .to_owned();
        let target = free_name(&rejected, &file_name);
        let reason_path = reason_path_for(&target);
        let text = format!("{source}\n{reason}\n");
        let tmp = rejected.join(format!(".{}.tmp", claim_name(claim)));
        write_synced(&tmp, text.as_bytes())?;
        fs::rename(&tmp, &reason_path).map_err(|e| WorkstationError::io(&reason_path, e))?;
        // Audited before the move: an interruption can repeat the entry, never lose it.
        session.record_rejection(source, reason)?;
        let payload = claim.join(PAYLOAD_FILE);
        fs::rename(&payload, &target).map_err(|e| WorkstationError::io(&target, e))?;
        sync_dir(&rejected);
        remove_claim(claim)?;
        Ok(target)
    }
}

fn claim_name(claim: &Path) -> String {
    claim
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A file intake refused, as it lies in the inbox's `rejected/` folder with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedFile {
    /// Its name in `rejected/` (a second file of the same name gets ` (2)`, …).
    pub name: String,
    /// Where it came from, as the reason file records it.
    pub source: String,
    /// Why it was refused.
    pub reason: String,
    /// When it was refused (ms since the epoch: when its reason was written; the file itself
    /// keeps the time it was last changed before it arrived).
    pub rejected_at_ms: i64,
}

/// The files in `inbox_dir`'s `rejected/` folder with their reasons, the latest first (an empty
/// list when nothing was ever rejected). A file whose reason file is missing is listed with an
/// empty reason; reason files without their file are left out.
pub fn rejected_files(inbox_dir: &Path) -> Result<Vec<RejectedFile>, WorkstationError> {
    let dir = inbox_dir.join(REJECTED_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(WorkstationError::io(&dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| WorkstationError::io(&dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        // `NAME.reason.txt` beside `NAME` is a reason; a refused file may itself end so.
        let is_reason = name
            .strip_suffix(".reason.txt")
            .is_some_and(|base| dir.join(base).is_file());
        if !is_file || name.starts_with('.') || is_reason {
            continue;
        }
        let reason_file = reason_path_for(&entry.path());
        let text = fs::read_to_string(&reason_file).unwrap_or_default();
        let mut lines = text.lines();
        let source = lines.next().unwrap_or(&name).to_owned();
        let reason = lines.collect::<Vec<_>>().join("\n");
        let rejected_at_ms = fs::metadata(&reason_file)
            .or_else(|_| entry.metadata())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        files.push(RejectedFile {
            name,
            source,
            reason,
            rejected_at_ms,
        });
    }
    files.sort_by(|a, b| {
        b.rejected_at_ms
            .cmp(&a.rejected_at_ms)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(files)
}

/// `rejected/NAME` → `rejected/NAME.reason.txt`.
pub fn reason_path_for(rejected_file: &Path) -> PathBuf {
    let mut name = rejected_file.as_os_str().to_owned();
    name.push(".reason.txt");
    PathBuf::from(name)
}

/// A name in `dir` free for both the file and its reason: `NAME`, `NAME (2)`, ...
fn free_name(dir: &Path, file_name: &str) -> PathBuf {
    let (stem, ext) = match file_name.rfind('.') {
        Some(i) if i > 0 => (&file_name[..i], &file_name[i..]),
        _ => (file_name, ""),
    };
    (1..)
        .map(|n| {
            if n == 1 {
                dir.join(file_name)
            } else {
                dir.join(format!("{stem} ({n}){ext}"))
            }
        })
        .find(|p| !p.exists() && !reason_path_for(p).exists())
        .unwrap_or_else(|| dir.join(file_name))
}

fn remove_claim(claim: &Path) -> Result<(), WorkstationError> {
    fs::remove_dir_all(claim).map_err(|e| WorkstationError::io(claim, e))?;
    if let Some(parent) = claim.parent() {
        sync_dir(parent);
    }
    Ok(())
}

/// A reason file whose rejected file never arrived (interrupted rejection) is removed; the file
/// itself is still claimed and will be rejected again.
fn remove_orphan_reasons(rejected: &Path) {
    let Ok(entries) = fs::read_dir(rejected) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = fs::remove_file(&path);
        } else if let Some(base) = name.strip_suffix(".reason.txt") {
            if !rejected.join(base).exists() {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), WorkstationError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if dir != root && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(WorkstationError::io(dir, e)),
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || (dir == root && name == REJECTED_DIR) {
            continue; // hidden files (partial downloads, our claims) and refused files
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            collect_files(root, &entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

fn remove_empty_subdirs(root: &Path, min_age: Duration) {
    fn walk(root: &Path, dir: &Path, min_age: Duration) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || (dir == root && name == REJECTED_DIR) {
                continue;
            }
            let path = entry.path();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(root, &path, min_age);
                let old_enough = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .is_some_and(|age| age >= min_age);
                if old_enough {
                    let _ = fs::remove_dir(&path); // fails (harmlessly) unless empty
                }
            }
        }
    }
    walk(root, root, min_age);
}

fn relative_name(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

fn looks_like_unfinished_pdf(path: &Path, len: u64) -> bool {
    let Ok(mut file) = fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 8];
    let n = file.read(&mut head).unwrap_or(0);
    if !head[..n].starts_with(b"%PDF-") {
        return false;
    }
    let start = len.saturating_sub(1024);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return false;
    }
    let mut tail = Vec::new();
    if file.read_to_end(&mut tail).is_err() {
        return false;
    }
    !tail.windows(5).any(|w| w == b"%%EOF")
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), WorkstationError> {
    let mut file = fs::File::create(path).map_err(|e| WorkstationError::io(path, e))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| WorkstationError::io(path, e))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// What wakes the inbox thread.
enum Signal {
    /// Something changed in the folder: scan now.
    Wake,
    /// Finish the current pass and end.
    Stop,
}

/// A running inbox: a thread that scans on filesystem events (or on a timer) until stopped.
pub struct InboxWatcher {
    signals: mpsc::Sender<Signal>,
    thread: Option<JoinHandle<()>>,
}

impl InboxWatcher {
    /// Starts watching. `on_event` receives every intake event (and errors of whole scans).
    pub fn start(
        session: Arc<Session>,
        rng: SharedRng,
        config: InboxConfig,
        on_event: impl Fn(Result<IntakeEvent, WorkstationError>) + Send + 'static,
    ) -> Result<Self, WorkstationError> {
        let mut inbox = Inbox::new(config)?;
        let (signals, received) = mpsc::channel::<Signal>();
        let mode = inbox.config.mode;
        let native = match mode {
            WatchMode::Native => {
                let wake = signals.clone();
                let mut watcher = notify::recommended_watcher(move |_| {
                    let _ = wake.send(Signal::Wake);
                })
                .map_err(|e| WorkstationError::io(&inbox.config.dir, std::io::Error::other(e)))?;
                watcher
                    .watch(&inbox.config.dir, RecursiveMode::Recursive)
                    .map_err(|e| {
                        WorkstationError::io(&inbox.config.dir, std::io::Error::other(e))
                    })?;
                Some(watcher)
            }
            WatchMode::Polling { .. } => None,
        };
        // While files are settling, look again soon; otherwise wait for an event or the timer.
        let idle = match mode {
            WatchMode::Native => Duration::from_secs(5),
            WatchMode::Polling { interval } => interval,
        };
        let busy = (inbox.config.settle / 4).clamp(Duration::from_millis(20), idle);
        let thread = std::thread::Builder::new()
            .name("outpost-inbox".into())
            .spawn(move || {
                let _keep_watching = native;
                loop {
                    match inbox.scan(&session, &rng, Instant::now()) {
                        Ok(events) => events.into_iter().for_each(|e| on_event(Ok(e))),
                        Err(e) => on_event(Err(e)),
                    }
                    let wait = if inbox.observed.is_empty() {
                        idle
                    } else {
                        busy
                    };
                    match received.recv_timeout(wait) {
                        Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        Ok(Signal::Wake) | Err(RecvTimeoutError::Timeout) => {}
                    }
                    // One scan answers a burst of events; a stop among them still ends the loop.
                    while let Ok(signal) = received.try_recv() {
                        if matches!(signal, Signal::Stop) {
                            return;
                        }
                    }
                }
            })
            .map_err(|e| WorkstationError::io("inbox thread", e))?;
        Ok(Self {
            signals,
            thread: Some(thread),
        })
    }

    /// Stops the watcher and waits for the current pass to end (a pass is never cut in half).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.signals.send(Signal::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for InboxWatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}
