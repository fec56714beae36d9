//! A workstation process killed with SIGKILL at each step of a push — before anything was sent,
//! after the push was sent but before the server applied it, after the server applied it but
//! before the answer arrived, and while the answer was being recorded in the vault — each step
//! made certain by the server holding the request there: running it once more finishes the
//! push, and the server has applied every signed revision and every annotation exactly once (no
//! conflict with itself, nothing to sign again, nothing lost).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use outpost_protocol::paths;
use outpost_protocol::{AssignmentTarget, Role};
use outpost_server::testing::{HeldRequest, HoldPoint, InProcessServer};
use outpost_workstation::{
    KeyAlgorithm, Language, ManualClock, PadesLevel, SampleKind, SignOptions, SignatureKind,
};

const CHILD_ENV: &str = "OUTPOST_PUSH_CHILD";
const USER: &str = "ivan";
const PASSWORD: &str = "local-password";
const DOCUMENTS: usize = 12;
const NOTES_PER_DOCUMENT: usize = 3;

/// The child: unlock the vault and push until nothing waits (unless killed).
#[test]
#[ignore = "entry point of the child process the SIGKILL test starts"]
fn push_child_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // only does something when the parent test runs it
    };
    let mut parts = spec.splitn(3, '\n');
    let (root, service, now_ms) = (
        PathBuf::from(parts.next().unwrap()),
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().parse::<i64>().unwrap(),
    );
    let ws = workstation_with(&root, &service, Arc::new(ManualClock::new(now_ms)));
    let session = ws
        .unlock(USER, PASSWORD, rng(std::process::id() as u64))
        .unwrap();
    for _ in 0..20 {
        session.sync_push().unwrap();
        if session.pending_operations().unwrap() == 0 {
            break;
        }
    }
    assert_eq!(session.pending_operations().unwrap(), 0);
    session.lock().unwrap();
}

fn run_child(root: &Path, service: &str, now_ms: i64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "push_child_process", "--ignored", "--nocapture"])
        .env(
            CHILD_ENV,
            format!("{}\n{service}\n{now_ms}", root.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills `child` (SIGKILL) once the server holds its request `held`, then lets the request go.
fn kill_when_held(child: std::process::Child, held: &HeldRequest) {
    assert!(
        held.wait_until_reached(Duration::from_secs(60)),
        "the child's request never reached the server"
    );
    kill(child);
    held.release();
}

/// SIGKILL, and wait for the end.
fn kill(mut child: std::process::Child) {
    assert!(
        child.try_wait().unwrap().is_none(),
        "the child ended before it was killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// What waits to be pushed in the vault, as a rerun would find it.
fn pending_in(ws: &outpost_workstation::Workstation, seed: u64) -> usize {
    let session = ws.unlock(USER, PASSWORD, rng(seed)).unwrap();
    let pending = session.pending_operations().unwrap();
    session.lock().unwrap();
    pending
}

/// SQLite's WAL writer lock on a database, held by this process: byte 120 of the `-shm` file,
/// where the WAL index keeps its write lock (<https://sqlite.org/walformat.html>, "WAL_WRITE_LOCK").
/// Another process's next write waits on it (SQLite's busy timeout) as on any other writer.
/// The lock lives as long as the descriptor: dropping it closes the file and lets go.
struct VaultWriterLock {
    _shm: std::fs::File,
}

impl VaultWriterLock {
    fn take(database: &Path) -> VaultWriterLock {
        use std::os::fd::AsRawFd;
        let mut shm = database.as_os_str().to_owned();
        shm.push("-shm");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&shm)
            .unwrap();
        let lock = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 120,
            l_len: 1,
            l_pid: 0,
        };
        // SAFETY: a valid open descriptor and a fully initialised `flock` for F_SETLK.
        let taken = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) };
        assert_eq!(
            taken, 0,
            "the vault's writer lock is held by another writer"
        );
        VaultWriterLock { _shm: file }
    }
}

/// How many times the server audited `action`.
fn audited(server: &InProcessServer, action: &str) -> usize {
    server
        .block_on(server.service.audit_records(0, 1000))
        .unwrap()
        .iter()
        .filter(|row| row.record.action == action)
        .count()
}

#[test]
fn a_push_killed_after_each_step_is_finished_by_a_rerun_and_applied_exactly_once() {
    let server = InProcessServer::start_with_ca();
    server.unit("North");
    let account = server.account(USER, Role::Supervisor, Some("North"));
    for n in 0..DOCUMENTS {
        let pdf = sample(
            SampleKind::ALL[n % 3],
            Language::English,
            1,
            200 + n as u64,
            Some("push-crash"),
        );
        server.document(
            &format!("Document {n:02}"),
            pdf,
            AssignmentTarget::Unit {
                name: "North".into(),
            },
        );
    }

    // Offline work waiting to be pushed: every document signed, then three notes on each.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let service = keyring_service("push-crash");
    let now_ms = server.service.now() * 1000 + 60_000;
    let ws = workstation_with(&root, &service, Arc::new(ManualClock::new(now_ms)));
    let session = new_session(&ws, USER, PASSWORD, 91);
    connect(&session, &server, &account).unwrap();
    session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .unwrap();
    let key = session
        .create_signing_key("Ivan", KeyAlgorithm::EcdsaP256, "Ivan")
        .unwrap();
    session.request_signer_certificate(&key.id).unwrap();
    let documents: Vec<_> = session
        .documents()
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(documents.len(), DOCUMENTS);
    for document in &documents {
        session
            .sign_document(document, &SignOptions::invisible(&key.id, "Approved"))
            .unwrap();
        for n in 0..NOTES_PER_DOCUMENT {
            session
                .create_annotation(document, note_draft(&format!("note {n}")))
                .unwrap();
        }
    }
    let waiting = session.pending_operations().unwrap();
    assert_eq!(waiting, DOCUMENTS * (1 + NOTES_PER_DOCUMENT));
    session.lock().unwrap();

    // The push is killed in each of its windows in turn, each made certain by the server
    // holding a request at the right point: before anything was sent (an upload held unseen),
    // sent but not applied (the push held unseen), applied but unanswered (the push held after
    // the server committed it), and while the answer is being recorded in the vault (the
    // vault's writer lock held by this process, so the child waits on it with the answer in
    // hand).
    let everything = DOCUMENTS * (1 + NOTES_PER_DOCUMENT);
    let revised = || audited(&server, "document.revised");
    let position = || {
        server
            .block_on(server.service.store().sync_position())
            .unwrap()
    };

    // 1. Before sending: the first upload of a signed revision never reaches the API.
    let held = server.hold_request(paths::SYNC_UPLOAD_PREFIX, 0, HoldPoint::BeforeHandling);
    kill_when_held(run_child(&root, &service, now_ms), &held);
    assert_eq!(revised(), 0);
    assert_eq!(pending_in(&ws, 94), everything);

    // 2. Sent, not applied: every update uploaded, the push itself held before the API.
    let held = server.hold_request(paths::SYNC_PUSH, 0, HoldPoint::BeforeHandling);
    kill_when_held(run_child(&root, &service, now_ms), &held);
    assert_eq!(
        revised(),
        0,
        "a push the server never handled applied nothing"
    );
    assert_eq!(pending_in(&ws, 95), everything);

    // 3. Applied on the server, the answer never received: every revision is on the server,
    //    nothing of it recorded here.
    let held = server.hold_request(paths::SYNC_PUSH, 0, HoldPoint::BeforeAnswering);
    kill_when_held(run_child(&root, &service, now_ms), &held);
    assert_eq!(revised(), DOCUMENTS, "the held push was applied whole");
    assert_eq!(pending_in(&ws, 96), everything, "no answer was recorded");
    // The server's long-term extension of what it took runs on to its end.
    let waited = Instant::now();
    while audited(&server, "document.long_term") < DOCUMENTS {
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "the extension never ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // 4. During the local apply: the revisions go again (recognised, recorded), the notes are
    //    applied by the server, and their answer reaches a child that cannot record it.
    let before_notes = position();
    let held = server.hold_request(paths::SYNC_PUSH, 1, HoldPoint::BeforeAnswering);
    let child = run_child(&root, &service, now_ms);
    assert!(
        held.wait_until_reached(Duration::from_secs(60)),
        "the notes' push never came"
    );
    // No connection of this process is open on the vault now (pending_in locked its session):
    // closing the lock's file later drops every lock this process holds on it.
    let writer = VaultWriterLock::take(&root.join("vaults").join(USER).join("vault.db"));
    held.release();
    assert!(
        held.wait_until_answered(Duration::from_secs(30)),
        "the answer never went out"
    );
    // The answer is handed over: the child reads it and waits on the vault's writer lock (its
    // busy timeout is 5 s, far longer than this); it is killed there.
    std::thread::sleep(Duration::from_millis(500));
    kill(child);
    drop(writer);
    assert!(position() > before_notes, "the server applied the notes");
    assert_eq!(
        pending_in(&ws, 97),
        DOCUMENTS * NOTES_PER_DOCUMENT,
        "the revisions' answer was recorded, the notes' was not"
    );
    assert_eq!(revised(), DOCUMENTS, "no revision was applied twice");

    // A rerun finishes the push: every note recognised as applied, none applied again.
    let session = ws.unlock(USER, PASSWORD, rng(93)).unwrap();
    let report = session.sync_push().unwrap();
    assert_eq!(
        (report.applied, report.already_applied),
        (0, DOCUMENTS * NOTES_PER_DOCUMENT),
        "{report:?}"
    );

    // Exactly once: each signed revision applied once, no conflict with itself, each extended
    // for the long term once; nothing waits, nothing needs signing again.
    assert_eq!(audited(&server, "document.revised"), DOCUMENTS);
    assert_eq!(audited(&server, "document.revision_conflict"), 0);
    assert_eq!(audited(&server, "document.long_term"), DOCUMENTS);
    assert_eq!(session.pending_operations().unwrap(), 0);
    assert!(session.resign_requests().unwrap().is_empty());

    // A colleague gets every document with its one sealed signature and exactly its notes.
    let colleague = server.account("olga", Role::Staff, Some("North"));
    let (_dir, _ws, olga) = connected(&server, &colleague, "push-crash-olga", 94);
    olga.sync_pull(&AtomicBool::new(false), &mut |_| {})
        .unwrap();
    let received = olga.documents().unwrap();
    assert_eq!(received.len(), DOCUMENTS);
    for document in received {
        let reports = olga.validate_document(&document.id).unwrap();
        let signatures: Vec<_> = reports
            .iter()
            .filter(|r| r.kind == SignatureKind::Signature)
            .collect();
        assert_eq!(signatures.len(), 1, "{}: {reports:#?}", document.title);
        assert_eq!(
            signatures[0].level,
            Some(PadesLevel::BaselineLta),
            "{}: {reports:#?}",
            document.title
        );
        let mut notes: Vec<String> = olga
            .annotations(&document.id)
            .unwrap()
            .into_iter()
            .map(|a| a.annotation.contents)
            .collect();
        notes.sort();
        assert_eq!(
            notes,
            (0..NOTES_PER_DOCUMENT)
                .map(|n| format!("note {n}"))
                .collect::<Vec<_>>(),
            "{}",
            document.title
        );
    }
}
