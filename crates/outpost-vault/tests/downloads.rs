//! A download is kept part by part, resumes where it stopped, becomes the document's bytes without
//! a second copy when its round is applied, and goes with the document when it is purged.

use std::sync::Arc;

use outpost_vault::{
    DocumentId, KdfParams, ManualClock, OsKeyring, PullRound, PulledDocument, ServerAccount, Vault,
    VaultError, VaultPaths,
};
use rand::SeedableRng;
use sha2::Digest;

fn connected_vault() -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let keyring = OsKeyring::new(format!("outpost-test-{:016x}", rand::random::<u64>()));
    let mut vault = Vault::create(
        &VaultPaths::new(dir.path(), "petr").unwrap(),
        "pw-petr",
        KdfParams::INSECURE_FAST_FOR_TESTS,
        &keyring,
        Arc::new(ManualClock::new(1_700_000_000_000)),
        &mut rand_chacha::ChaCha20Rng::seed_from_u64(5),
    )
    .unwrap();
    vault
        .save_server_account(&ServerAccount {
            base_url: "https://127.0.0.1:1".into(),
            ca_pem: String::new(),
            username: "petr".into(),
            device_id: None,
            device_key: zeroize::Zeroizing::new(vec![1; 32]),
            access_token: None,
            refresh_token: None,
            pull_cursor: 0,
        })
        .unwrap();
    (dir, vault)
}

fn round(visible: Vec<PulledDocument>, removed: Vec<String>, cursor: i64) -> PullRound {
    PullRound {
        visible,
        annotations: Vec::new(),
        removed,
        cursor,
    }
}

#[test]
fn parts_become_the_document_and_leave_with_it() {
    let (_dir, mut vault) = connected_vault();
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));

    // Parts arrive in order; one out of order is refused and changes nothing.
    vault
        .keep_download_part(&sha256, 0, &bytes[..1_000_000])
        .unwrap();
    let refused = vault.keep_download_part(&sha256, 2_000_000, &bytes[2_000_000..]);
    assert!(matches!(
        refused,
        Err(VaultError::DownloadOutOfOrder {
            held: 1_000_000,
            ..
        })
    ));
    assert_eq!(vault.download_held(&sha256).unwrap(), 1_000_000);
    vault
        .keep_download_part(&sha256, 1_000_000, &bytes[1_000_000..])
        .unwrap();
    assert_eq!(
        vault.download_digest(&sha256).unwrap(),
        (bytes.len() as u64, sha256.clone())
    );

    // Applied: the document's bytes are the parts, byte for byte; a stray download goes.
    vault
        .keep_download_part("ab".repeat(32).as_str(), 0, b"stray")
        .unwrap();
    let id = DocumentId("doc-1".into());
    vault
        .apply_pull_round(&round(
            vec![PulledDocument {
                server_id: "server-1".into(),
                position: 1,
                id: id.clone(),
                sha256: sha256.clone(),
                title: "Downloaded".into(),
                page_texts: vec!["text".into()],
                source_name: "server document server-1".into(),
            }],
            Vec::new(),
            1,
        ))
        .unwrap();
    assert!(vault.document_bytes(&id).unwrap() == bytes);
    assert_eq!(vault.document(&id).unwrap().byte_size, bytes.len() as u64);
    assert_eq!(vault.download_held(&"ab".repeat(32)).unwrap(), 0);
    // They are no download any more: nothing can be added to them, discarding leaves them.
    assert!(vault
        .keep_download_part(&sha256, bytes.len() as u64, b"more")
        .is_err());
    vault.discard_download(&sha256).unwrap();
    assert!(vault.document_bytes(&id).unwrap() == bytes);

    // Purged with its assignment: its bytes are gone from the vault.
    vault
        .apply_pull_round(&round(Vec::new(), vec!["server-1".into()], 2))
        .unwrap();
    assert!(vault.document(&id).is_err());
    assert_eq!(vault.download_held(&sha256).unwrap(), 0);
}
