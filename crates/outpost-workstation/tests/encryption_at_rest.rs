//! Nothing a document holds reaches the disk in the clear.

mod common;
#[path = "../../outpost-pdf/tests/common/mod.rs"]
#[allow(unused_imports)]
mod judges;

use std::sync::Arc;

use common::*;
use outpost_vault::{OsKeyring, Vault, VaultPaths};
use outpost_workstation::{
    KeyAlgorithm, Language, ManualClock, SampleKind, SignOptions, WorkstationError,
};

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

/// A folder under `dir` where this test process's temporary files go (SQLite would put its temp
/// files there; the vault keeps them in memory, and the tests check).
fn temp_files_under(dir: &std::path::Path) -> std::path::PathBuf {
    let temp_dir = dir.join("tmp");
    std::fs::create_dir(&temp_dir).unwrap();
    std::env::set_var("TMPDIR", &temp_dir);
    std::env::set_var("SQLITE_TMPDIR", &temp_dir);
    temp_dir
}

#[test]
fn no_document_content_on_disk_and_only_the_right_password_shows_it() {
    let tmp = tempfile::tempdir().unwrap();
    let temp_dir = temp_files_under(tmp.path());

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
    let temp_dir = temp_files_under(tmp.path());

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

#[test]
fn a_signing_keys_private_part_never_reaches_the_disk_in_the_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let temp_dir = temp_files_under(tmp.path());
    let root = tmp.path().join("data");
    let (ws, clock) = workstation(&root, "rest-keys");
    let session = new_session(&ws, "olga", "пароль-Ольги", 21);
    let pdf = sample(
        SampleKind::ProcurementContract,
        Language::English,
        1,
        9,
        None,
    );
    let document = session
        .import_bytes(pdf, "contract.pdf")
        .unwrap()
        .document()
        .id
        .clone();

    // Two keys, one of each kind; the first certified and used to sign.
    let pki = judges::TestPki::new();
    let ecdsa = session
        .create_signing_key("Olga", KeyAlgorithm::EcdsaP256, "Olga")
        .unwrap();
    let rsa = session
        .create_signing_key("Olga RSA", KeyAlgorithm::Rsa3072, "Olga")
        .unwrap();
    let issued = pki.issue_for_request("olga", &ecdsa.request_pem);
    session
        .import_certificate(&ecdsa.id, issued.as_bytes())
        .unwrap();
    session
        .add_trust_anchor(&std::fs::read(pki.path("ca.crt")).unwrap())
        .unwrap();
    clock.set(real_now_ms());
    session
        .sign_document(&document, &SignOptions::invisible(&ecdsa.id, "Approved"))
        .unwrap();
    session.lock().unwrap();

    // The private parts, as the vault holds them inside its encrypted database.
    let vault = Vault::open(
        &VaultPaths::new(&root, "olga").unwrap(),
        "пароль-Ольги",
        &OsKeyring::new(keyring_service("rest-keys")),
        Arc::new(ManualClock::new(real_now_ms())),
    )
    .unwrap();
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for key in [&ecdsa, &rsa] {
        let private = vault.signing_key_private(&key.id).unwrap();
        needles.push((format!("{} PKCS #8", key.algorithm), private.to_vec()));
        // Any 32 bytes of secret material: the P-256 scalar follows `02 01 01 04 20` (the
        // ECPrivateKey's version and its octet string); for RSA-3072, windows past the public
        // modulus and exponent (which end near byte 420): in d, in the primes, in the last
        // coefficient.
        match private
            .windows(5)
            .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        {
            Some(at) => needles.push((
                "P-256 private scalar".into(),
                private[at + 5..at + 37].to_vec(),
            )),
            None => {
                for at in [500, private.len() / 2, private.len() - 40] {
                    needles.push((
                        format!("RSA private bytes at {at}"),
                        private[at..at + 32].to_vec(),
                    ));
                }
            }
        }
    }
    assert_eq!(
        needles.len(),
        6,
        "both keys' secrets were found to look for"
    );
    drop(vault);
    for dir in [&root, &temp_dir] {
        for file in files_under(dir) {
            let bytes = std::fs::read(&file).unwrap();
            for (what, needle) in &needles {
                assert!(
                    !find(&bytes, needle),
                    "{what} found in the clear in {}",
                    file.display()
                );
            }
        }
    }
}
