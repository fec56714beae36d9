//! Nothing a document holds reaches the disk in the clear.

mod common;

use common::*;
use outpost_workstation::{Language, SampleKind, WorkstationError};

const PHRASE: &str = "Секретный протокол Zephyr-4471";

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    text.encode_utf16()
        .flat_map(|u| {
            if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            }
        })
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn assert_no_plaintext(dir: &std::path::Path) -> usize {
    let needles: Vec<(String, Vec<u8>)> = vec![
        ("phrase utf-8".into(), PHRASE.as_bytes().to_vec()),
        ("phrase utf-16le".into(), utf16(PHRASE, false)),
        ("phrase utf-16be".into(), utf16(PHRASE, true)),
        ("latin part".into(), b"Zephyr-4471".to_vec()),
        ("pdf header".into(), b"%PDF-".to_vec()),
    ];
    let files = files_under(dir);
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for (what, needle) in &needles {
            assert!(
                !find(&bytes, needle),
                "{what} found in plaintext in {}",
                file.display()
            );
        }
    }
    files.len()
}

#[test]
fn no_document_content_on_disk_and_only_the_right_password_shows_it() {
    let tmp = tempfile::tempdir().unwrap();
    // SQLite would put temp files here; the vault keeps them in memory, and we check.
    let temp_dir = tmp.path().join("tmp");
    std::fs::create_dir(&temp_dir).unwrap();
    std::env::set_var("TMPDIR", &temp_dir);
    std::env::set_var("SQLITE_TMPDIR", &temp_dir);

    let root = tmp.path().join("data");
    let (ws, _clock) = workstation(&root, "rest");
    let session = new_session(&ws, "ivan", "пароль-Ивана", 11);
    let pdf = sample(
        SampleKind::PersonnelRecord,
        Language::Russian,
        3,
        5,
        Some(PHRASE),
    );
    let stored = session.import_bytes(pdf, "record.pdf").unwrap();
    assert!(stored.document().title.contains(PHRASE));

    // While the session is open (database and WAL both live), and again after locking.
    let files_open = assert_no_plaintext(&root);
    assert!(
        files_open >= 3,
        "expected database, WAL and key file, found {files_open}"
    );
    assert_no_plaintext(&temp_dir);
    session.lock().unwrap();
    assert_no_plaintext(&root);
    assert_no_plaintext(&temp_dir);

    match ws.unlock("ivan", "wrong password", rng(12)) {
        Err(e @ WorkstationError::Vault(_)) => assert_eq!(e.code(), "wrong_password"),
        other => panic!("expected wrong password, got {other:?}"),
    }
    let session = ws.unlock("ivan", "пароль-Ивана", rng(13)).unwrap();
    let docs = session.documents().unwrap();
    assert_eq!(docs.len(), 1);
    assert!(docs[0].title.contains(PHRASE));
    let hits = session
        .search(&outpost_workstation::SearchRequest {
            query: "Zephyr-4471".into(),
            ..Default::default()
        })
        .unwrap();
    // The marker is on every page: one hit, for the document.
    assert_eq!(hits.len(), 1);
}
