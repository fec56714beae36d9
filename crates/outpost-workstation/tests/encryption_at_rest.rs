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

#[test]
fn a_document_downloaded_from_the_server_is_sealed_on_disk_and_reads_back_whole() {
    // The server keeps its own (plaintext) store in a temp folder of its own, made first.
    let server = outpost_server::testing::InProcessServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let temp_dir = tmp.path().join("tmp");
    std::fs::create_dir(&temp_dir).unwrap();
    std::env::set_var("TMPDIR", &temp_dir);
    std::env::set_var("SQLITE_TMPDIR", &temp_dir);

    let account = server.account("olga", outpost_protocol::Role::Staff, None);
    let pdf = sample(
        SampleKind::OperationalReport,
        Language::Russian,
        3,
        7,
        Some(PHRASE),
    );
    let sha256 = sha256_hex(&pdf);
    server.document_for("Сводка", pdf.clone(), "olga");
    let root = tmp.path().join("data");
    let (ws, _clock) = workstation(&root, "rest-sync");
    let session = new_session(&ws, "olga", "пароль-Ольги", 21);
    connect_to(&session, &server, &server.base_url, &account).expect("connect");
    let pulled = session
        .sync_pull(&std::sync::atomic::AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    assert_eq!(pulled.stored.len(), 1);
    let document = pulled.stored[0].clone();

    // Its bytes went to a sealed part file, not into the database: nothing readable anywhere.
    let parts = root.join("vaults/olga/parts");
    assert_eq!(files_under(&parts).len(), 1);
    assert_no_plaintext(&root);
    assert_no_plaintext(&temp_dir);

    // Viewed, and after the vault was locked and opened again, it is the server's bytes exactly.
    let view = session.view_document(&document).expect("view");
    assert_eq!(view.page_sizes.len(), 3);
    session
        .render_page(&document, 1, 400)
        .expect("render page 1");
    assert_no_plaintext(&root);
    session.lock().unwrap();
    let session = ws.unlock("olga", "пароль-Ольги", rng(22)).unwrap();
    let summary = session.open_document(&document).expect("open");
    assert_eq!(summary.sha256, sha256);
    assert_eq!(
        session
            .search(&outpost_workstation::SearchRequest {
                query: "Zephyr-4471".into(),
                ..Default::default()
            })
            .unwrap()
            .len(),
        1
    );
    assert_no_plaintext(&root);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
