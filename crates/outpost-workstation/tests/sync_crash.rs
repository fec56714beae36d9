//! A workstation process killed with SIGKILL while it pushes — right after the server applied one
//! of its operations, before the answer is recorded, at seeded points — again and again: running
//! it once more finishes the push, and the server has applied every signed revision and every
//! annotation exactly once (no conflict with itself, nothing to sign again, nothing lost).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use outpost_protocol::{AssignmentTarget, Role};
use outpost_server::testing::InProcessServer;
use outpost_workstation::{
    KeyAlgorithm, Language, ManualClock, PadesLevel, SampleKind, SignOptions, SignatureKind,
};
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "OUTPOST_PUSH_CHILD";
const USER: &str = "ivan";
const PASSWORD: &str = "local-password";
const DOCUMENTS: usize = 12;
const NOTES_PER_DOCUMENT: usize = 3;
const KILLS: usize = 6;

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

    // Kill the pushing process as soon as the server has applied a seeded number of its signed
    // revisions (the answer may be on its way, or the vault recording it), or at a seeded moment
    // early on (during an upload).
    let mut random = rand_chacha::ChaCha20Rng::seed_from_u64(92);
    let mut mid_push = 0;
    for kill in 0..KILLS {
        let before = audited(&server, "document.revised");
        let target = if before < DOCUMENTS - 1 {
            random.gen_range(before + 1..DOCUMENTS)
        } else {
            DOCUMENTS
        };
        let early = kill % 3 == 2;
        let mut child = run_child(&root, &service, now_ms);
        let started = Instant::now();
        let early_at = Duration::from_millis(random.gen_range(200..1500));
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let applied = audited(&server, "document.revised");
            if (early && started.elapsed() >= early_at) || (!early && applied >= target) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let applied = audited(&server, "document.revised");
        eprintln!("kill {kill}: {applied} of {DOCUMENTS} signed revisions applied");
        if applied > before && applied < DOCUMENTS {
            mid_push += 1;
        }
    }
    assert!(
        mid_push >= 2,
        "the kills must land mid-push ({mid_push} did)"
    );

    // A rerun finishes the push.
    let status = run_child(&root, &service, now_ms).wait().unwrap();
    assert!(status.success(), "the final push failed");

    // Exactly once: each signed revision applied once, no conflict with itself, each extended
    // for the long term once; nothing waits, nothing needs signing again.
    assert_eq!(audited(&server, "document.revised"), DOCUMENTS);
    assert_eq!(audited(&server, "document.revision_conflict"), 0);
    assert_eq!(audited(&server, "document.long_term"), DOCUMENTS);
    let session = ws.unlock(USER, PASSWORD, rng(93)).unwrap();
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
