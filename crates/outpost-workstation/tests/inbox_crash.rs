//! Kill the intake process with SIGKILL at random moments: every dropped file must always be in
//! exactly one place — the inbox, the vault, or `rejected/` with its reason.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use outpost_vault::{OsKeyring, Vault, VaultPaths};
use outpost_workstation::inbox::{
    Inbox, InboxConfig, IntakeEvent, WatchMode, CLAIMED_DIR, REJECTED_DIR,
};
use outpost_workstation::{Language, ManualClock, SampleKind};
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "OUTPOST_INTAKE_CHILD";
const USER: &str = "tamara";
const PASSWORD: &str = "pw-tamara";
const RUNS: usize = 24;

fn inbox_config(dir: &Path) -> InboxConfig {
    InboxConfig {
        dir: dir.to_owned(),
        settle: Duration::ZERO,
        incomplete_grace: Duration::ZERO,
        mode: WatchMode::Polling {
            interval: Duration::from_millis(10),
        },
    }
}

/// The child: unlock the vault and take files from the inbox until killed. Not a test of its own
/// (ignored); the parent test runs it with `--ignored --exact`.
#[test]
#[ignore = "entry point of the child process the SIGKILL test starts"]
fn intake_child_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // only does something when the parent test runs it
    };
    let mut parts = spec.splitn(3, '\n');
    let (root, inbox_dir, service) = (
        PathBuf::from(parts.next().unwrap()),
        PathBuf::from(parts.next().unwrap()),
        parts.next().unwrap().to_owned(),
    );
    let clock = std::sync::Arc::new(ManualClock::new(START_MS));
    let ws = workstation_with(&root, &service, clock);
    let rng = rng(std::process::id() as u64);
    let session = ws.unlock(USER, PASSWORD, rng.clone()).unwrap();
    let mut inbox = Inbox::new(inbox_config(&inbox_dir)).unwrap();
    loop {
        inbox.scan(&session, &rng, Instant::now()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether a claim folder exists (the child is taking a file).
fn intake_has_begun(inbox: &Path) -> bool {
    std::fs::read_dir(inbox.join(CLAIMED_DIR))
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

/// Where each dropped file (by content hash) is found right now.
fn locate(root: &Path, inbox: &Path, service: &str) -> HashMap<String, Vec<String>> {
    let vault = Vault::open(
        &VaultPaths::new(root, USER).unwrap(),
        PASSWORD,
        &OsKeyring::new(service),
        std::sync::Arc::new(ManualClock::new(START_MS)),
    )
    .unwrap();
    let mut places: HashMap<String, Vec<String>> = HashMap::new();
    let mut put = |hash: String, place: String| places.entry(hash).or_default().push(place);
    for doc in vault.documents().unwrap() {
        put(doc.sha256, "vault".into());
    }
    for path in files_under(inbox) {
        let rel = path.strip_prefix(inbox).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if rel.starts_with(CLAIMED_DIR) {
            if name != "payload" {
                continue;
            }
            let claim_id = rel
                .components()
                .nth(1)
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            if vault.intake_claim(&claim_id).unwrap().is_none() {
                put(
                    sha256_hex(&std::fs::read(&path).unwrap()),
                    "inbox (claimed)".into(),
                );
            } // else: committed; the folder is left-over awaiting clean-up
        } else if rel.starts_with(REJECTED_DIR) {
            if name.ends_with(".reason.txt") || name.starts_with('.') {
                continue;
            }
            let reason = outpost_workstation::inbox::reason_path_for(&path);
            assert!(
                reason.is_file(),
                "{} is in rejected/ without its reason",
                path.display()
            );
            put(
                sha256_hex(&std::fs::read(&path).unwrap()),
                "rejected".into(),
            );
        } else {
            put(sha256_hex(&std::fs::read(&path).unwrap()), "inbox".into());
        }
    }
    places
}

fn assert_each_exactly_once(
    dropped: &[(String, bool)],
    places: &HashMap<String, Vec<String>>,
    when: &str,
) {
    for (hash, _) in dropped {
        let found = places.get(hash).cloned().unwrap_or_default();
        assert_eq!(
            found.len(),
            1,
            "{when}: file {hash} is in {found:?}, expected exactly one place"
        );
    }
}

#[test]
fn sigkill_at_random_moments_never_loses_or_doubles_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let inbox = tmp.path().join("inbox");
    let staging = tmp.path().join("staging");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::create_dir_all(&staging).unwrap();
    let service = keyring_service("crash");
    let (ws, _clock) = {
        let clock = std::sync::Arc::new(ManualClock::new(START_MS));
        (workstation_with(&root, &service, clock.clone()), clock)
    };
    ws.create_vault(USER, PASSWORD, rng(41))
        .unwrap()
        .lock()
        .unwrap();

    let mut chance = rand_chacha::ChaCha20Rng::seed_from_u64(2026);
    let mut dropped: Vec<(String, bool)> = Vec::new(); // (hash, is a valid PDF)
    let exe = std::env::current_exe().unwrap();
    let mut interrupted_runs = 0;
    for run in 0..RUNS {
        // Drop a batch: valid PDFs (one in a sub-folder), a text file and a truncated PDF.
        for i in 0..4 {
            let marker = format!("run {run} file {i}");
            let language = if i % 2 == 0 {
                Language::Russian
            } else {
                Language::English
            };
            let pdf = sample(
                SampleKind::ALL[i % 3],
                language,
                1 + (i as u32 % 3),
                run as u64,
                Some(&marker),
            );
            dropped.push((sha256_hex(&pdf), true));
            let staged = staging.join(format!("r{run}-{i}.pdf"));
            std::fs::write(&staged, &pdf).unwrap();
            let target = if i == 3 {
                let sub = inbox.join(format!("folder-{run}"));
                std::fs::create_dir_all(&sub).unwrap();
                sub.join(format!("r{run}-{i}.pdf"))
            } else {
                inbox.join(format!("r{run}-{i}.pdf"))
            };
            std::fs::rename(&staged, target).unwrap();
        }
        let text = format!("not a pdf, run {run}");
        dropped.push((sha256_hex(text.as_bytes()), false));
        std::fs::write(inbox.join(format!("note-{run}.txt")), &text).unwrap();

        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "intake_child_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                CHILD_ENV,
                format!("{}\n{}\n{}", root.display(), inbox.display(), service),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join("child.log")).unwrap())
            .spawn()
            .unwrap();
        // Wait until the child has begun taking files, then kill it a random moment later.
        let started = Instant::now();
        while !intake_has_begun(&inbox) {
            if started.elapsed() > Duration::from_secs(20) || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                panic!(
                    "run {run}: the intake child never began: {}",
                    std::fs::read_to_string(tmp.path().join("child.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let delay = chance.gen_range(0..60);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let places = locate(&root, &inbox, &service);
        assert_each_exactly_once(
            &dropped,
            &places,
            &format!("after kill {run} at {delay} ms"),
        );
        if places.values().flatten().any(|p| p.starts_with("inbox")) {
            interrupted_runs += 1;
        }
    }
    // The kills must really land in the middle of intake, not only after it has finished.
    eprintln!("{interrupted_runs} of {RUNS} kills left files waiting in the inbox");
    assert!(
        interrupted_runs >= RUNS / 4,
        "only {interrupted_runs} of {RUNS} kills interrupted intake"
    );

    // Finally let intake run to the end: everything is in the vault or rejected, nothing waits.
    let session = ws.unlock(USER, PASSWORD, rng(43)).unwrap();
    let mut inbox_runner = Inbox::new(inbox_config(&inbox)).unwrap();
    let shared_rng = rng(44);
    let mut events = Vec::new();
    for _ in 0..3 {
        events.extend(
            inbox_runner
                .scan(&session, &shared_rng, Instant::now())
                .unwrap(),
        );
    }
    session.lock().unwrap();
    // Leftovers of interrupted runs are finished, never put off: nothing was unwell here.
    let deferred: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, IntakeEvent::Deferred { .. }))
        .collect();
    assert!(deferred.is_empty(), "{deferred:?}");
    let places = locate(&root, &inbox, &service);
    assert_each_exactly_once(&dropped, &places, "after the final run");
    for (hash, valid) in &dropped {
        let expected = if *valid { "vault" } else { "rejected" };
        assert_eq!(places[hash], vec![expected.to_owned()], "file {hash}");
    }
    let left: Vec<_> = files_under(&inbox.join(CLAIMED_DIR));
    assert!(left.is_empty(), "claims left behind: {left:?}");
}
