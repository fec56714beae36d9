//! The watched inbox takes whole files once, refuses bad ones with a reason, and loses nothing.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use outpost_workstation::inbox::{
    reason_path_for, InboxConfig, InboxWatcher, IntakeEvent, WatchMode, REJECTED_DIR,
};
use outpost_workstation::{Language, SampleKind, Session};

fn config(dir: &Path, mode: WatchMode) -> InboxConfig {
    InboxConfig {
        dir: dir.to_owned(),
        settle: Duration::from_millis(800),
        incomplete_grace: Duration::from_secs(30),
        mode,
    }
}

/// Starts a watcher and returns a channel of its events.
fn watch(
    session: Arc<Session>,
    dir: &Path,
    mode: WatchMode,
) -> (InboxWatcher, mpsc::Receiver<IntakeEvent>) {
    let (tx, rx) = mpsc::channel();
    let watcher = InboxWatcher::start(session, rng(99), config(dir, mode), move |event| {
        let _ = tx.send(event.expect("a scan failed"));
    })
    .unwrap();
    (watcher, rx)
}

fn next_event(rx: &mpsc::Receiver<IntakeEvent>) -> IntakeEvent {
    rx.recv_timeout(Duration::from_secs(30))
        .expect("no intake event within 30 s")
}

/// Files left in the inbox proper (not rejected, not hidden).
fn pending(inbox: &Path) -> Vec<std::path::PathBuf> {
    files_under(inbox)
        .into_iter()
        .filter(|p| {
            let rel = p.strip_prefix(inbox).unwrap();
            !rel.starts_with(REJECTED_DIR) && !rel.starts_with(".outpost-claimed")
        })
        .collect()
}

#[test]
fn a_file_written_slowly_is_imported_once_and_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, _clock) = workstation(&tmp.path().join("data"), "slow");
    let session = Arc::new(new_session(&ws, "olga", "pw-olga", 21));
    let inbox = tmp.path().join("inbox");
    let (watcher, rx) = watch(session.clone(), &inbox, WatchMode::Native);

    let pdf = sample(SampleKind::OperationalReport, Language::Russian, 4, 3, None);
    let path = inbox.join("slow-scan.pdf");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = pdf.len().div_ceil(10);
    let started = Instant::now();
    for part in pdf.chunks(chunk) {
        file.write_all(part).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(450));
    }
    drop(file);
    assert!(started.elapsed() >= Duration::from_secs(4));

    match next_event(&rx) {
        IntakeEvent::Imported { source, document } => {
            assert_eq!(source, "slow-scan.pdf");
            assert_eq!(document.sha256, sha256_hex(&pdf), "imported whole");
            assert_eq!(document.page_count, 4);
        }
        other => panic!("expected an import, got {other:?}"),
    }
    watcher.stop();
    assert!(rx.try_recv().is_err(), "imported exactly once");
    assert_eq!(session.documents().unwrap().len(), 1);
    assert!(pending(&inbox).is_empty());
    assert!(files_under(&inbox.join(REJECTED_DIR)).is_empty());
    assert!(outpost_workstation::inbox::rejected_files(&inbox)
        .unwrap()
        .is_empty());
}

#[test]
fn bad_files_are_rejected_with_reasons_and_duplicates_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, _clock) = workstation(&tmp.path().join("data"), "reject");
    let session = Arc::new(new_session(&ws, "petr", "pw-petr", 22));
    let inbox = tmp.path().join("inbox");
    let (watcher, rx) = watch(session.clone(), &inbox, WatchMode::Native);

    std::fs::write(inbox.join("notes.txt"), "just some notes").unwrap();
    match next_event(&rx) {
        IntakeEvent::Rejected {
            source,
            reason,
            moved_to,
        } => {
            assert_eq!(source, "notes.txt");
            assert!(reason.contains("not a PDF"), "{reason}");
            assert_eq!(moved_to, inbox.join(REJECTED_DIR).join("notes.txt"));
            assert_eq!(std::fs::read(&moved_to).unwrap(), b"just some notes");
            let why = std::fs::read_to_string(reason_path_for(&moved_to)).unwrap();
            assert!(why.contains("not a PDF"), "{why}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }

    std::fs::write(inbox.join("empty.pdf"), b"").unwrap();
    match next_event(&rx) {
        IntakeEvent::Rejected { reason, .. } => assert!(reason.contains("empty"), "{reason}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    // The settings list both with their reasons (reason files not listed as files).
    let listed = outpost_workstation::inbox::rejected_files(&inbox).unwrap();
    let mut seen: Vec<(String, String, bool)> = listed
        .iter()
        .map(|f| {
            let why = if f.source == "notes.txt" {
                "not a PDF"
            } else {
                "empty"
            };
            (f.name.clone(), f.source.clone(), f.reason.contains(why))
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("empty.pdf".to_owned(), "empty.pdf".to_owned(), true),
            ("notes.txt".to_owned(), "notes.txt".to_owned(), true),
        ],
        "{listed:?}"
    );
    assert!(listed.iter().all(|f| f.rejected_at_ms > 0));

    let pdf = sample(
        SampleKind::ProcurementContract,
        Language::English,
        2,
        4,
        None,
    );
    std::fs::write(inbox.join("contract.pdf"), &pdf).unwrap();
    assert!(matches!(next_event(&rx), IntakeEvent::Imported { .. }));
    std::fs::write(inbox.join("contract-copy.pdf"), &pdf).unwrap();
    match next_event(&rx) {
        IntakeEvent::Duplicate { source, document } => {
            assert_eq!(source, "contract-copy.pdf");
            assert_eq!(document.source_name, "contract.pdf");
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
    watcher.stop();
    assert_eq!(session.documents().unwrap().len(), 1, "stored once");
    assert!(pending(&inbox).is_empty());
    let audit = session.audit_entries(0, 1000).unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "reject").count(), 2);
    assert!(audit
        .iter()
        .any(|e| e.action == "import" && e.outcome == "duplicate"));
}

#[test]
fn a_folder_moved_in_is_taken_whole_in_polling_mode_too() {
    for (tag, mode) in [
        ("moved-native", WatchMode::Native),
        (
            "moved-poll",
            WatchMode::Polling {
                interval: Duration::from_millis(300),
            },
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (ws, _clock) = workstation(&tmp.path().join("data"), tag);
        let session = Arc::new(new_session(&ws, "rita", "pw-rita", 23));
        let inbox = tmp.path().join("inbox");
        let (watcher, rx) = watch(session.clone(), &inbox, mode);

        // Prepared elsewhere on the same filesystem, then moved in with one rename.
        let outside = tmp.path().join("batch-0042");
        std::fs::create_dir_all(outside.join("annex")).unwrap();
        let a = sample(SampleKind::PersonnelRecord, Language::Russian, 1, 31, None);
        let b = sample(SampleKind::PersonnelRecord, Language::English, 2, 32, None);
        std::fs::write(outside.join("a.pdf"), &a).unwrap();
        std::fs::write(outside.join("annex").join("b.pdf"), &b).unwrap();
        std::fs::rename(&outside, inbox.join("batch-0042")).unwrap();

        let mut sources = vec![];
        for _ in 0..2 {
            match next_event(&rx) {
                IntakeEvent::Imported { source, .. } => sources.push(source),
                other => panic!("{tag}: expected an import, got {other:?}"),
            }
        }
        sources.sort();
        assert_eq!(sources, vec!["batch-0042/a.pdf", "batch-0042/annex/b.pdf"]);
        watcher.stop();
        let mut hashes: Vec<_> = session
            .documents()
            .unwrap()
            .into_iter()
            .map(|d| d.sha256)
            .collect();
        hashes.sort();
        let mut expected = vec![sha256_hex(&a), sha256_hex(&b)];
        expected.sort();
        assert_eq!(hashes, expected, "{tag}");
        assert!(pending(&inbox).is_empty(), "{tag}");
    }
}

#[test]
fn an_unfinished_pdf_waits_for_its_end_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, _clock) = workstation(&tmp.path().join("data"), "unfinished");
    let session = new_session(&ws, "sofia", "pw-sofia", 24);
    let inbox_dir = tmp.path().join("inbox");
    let mut inbox = outpost_workstation::inbox::Inbox::new(InboxConfig {
        settle: Duration::from_millis(100),
        ..config(&inbox_dir, WatchMode::Native)
    })
    .unwrap();
    let pdf = sample(SampleKind::OperationalReport, Language::English, 2, 5, None);
    let path = inbox_dir.join("paused-copy.pdf");
    std::fs::write(&path, &pdf[..pdf.len() / 2]).unwrap();
    let t0 = Instant::now();
    let rng = rng(1);
    assert!(inbox.scan(&session, &rng, t0).unwrap().is_empty());
    // Stable for longer than the settle window, but without %%EOF and recently written: left alone.
    let events = inbox
        .scan(&session, &rng, t0 + Duration::from_secs(5))
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
    assert!(path.exists());
    // The copy resumes and finishes: the whole file is imported.
    std::fs::write(&path, &pdf).unwrap();
    let t1 = t0 + Duration::from_secs(6);
    assert!(inbox.scan(&session, &rng, t1).unwrap().is_empty());
    let events = inbox
        .scan(&session, &rng, t1 + Duration::from_secs(1))
        .unwrap();
    match events.as_slice() {
        [IntakeEvent::Imported { document, .. }] => assert_eq!(document.sha256, sha256_hex(&pdf)),
        other => panic!("expected one import, got {other:?}"),
    }
}

#[test]
fn the_chosen_inbox_folder_is_kept_in_the_vault_and_a_relative_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, _clock) = common::workstation(tmp.path(), "inbox-setting");
    let session = common::new_session(&ws, "ira", "pw-ira", 1);
    assert_eq!(ws.inbox_dir_for(&session), tmp.path().join("inbox/ira"));
    let refused = session
        .set_inbox_folder(std::path::Path::new("scans"))
        .unwrap_err();
    assert_eq!(refused.code(), "rejected", "{refused}");
    let chosen = tmp.path().join("scanner/out");
    session.set_inbox_folder(&chosen).unwrap();
    assert!(chosen.is_dir(), "made when missing");
    session.lock().unwrap();
    let session = ws.unlock("ira", "pw-ira", common::rng(2)).unwrap();
    assert_eq!(ws.inbox_dir_for(&session), chosen);
    let audit = session.audit_entries(0, 1000).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "settings" && e.detail.starts_with("inbox_folder set to")));
}
