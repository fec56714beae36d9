//! A download is kept part by part, sealed in a file of its own, resumes where it stopped, becomes
//! the document's bytes without a second copy when its round is applied, and goes with the
//! document when it is purged — its file too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use outpost_vault::{
    DocumentId, KdfParams, ManualClock, OsKeyring, PartRandomness, PullRound, PulledDocument,
    ServerAccount, Vault, VaultError, VaultPaths,
};
use rand::SeedableRng;
use sha2::Digest;

thread_local! {
    /// Each test's own keyring service (tests run on threads of their own).
    static KEYRING: OsKeyring =
        OsKeyring::new(format!("outpost-test-{:016x}", rand::random::<u64>()));
}

fn connected_vault() -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KEYRING.with(|k| k.clone());
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

/// Randomness for one kept part (the vault draws none of its own): seeded, a new seed each call.
fn fresh() -> PartRandomness {
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    let seed = DRAWS.fetch_add(1, Ordering::Relaxed);
    PartRandomness::draw(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

/// The files in the vault's parts folder.
fn part_files(dir: &tempfile::TempDir) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(dir.path().join("vaults/petr/parts")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// A document's worth of bytes that can be told apart from anything else on the disk.
fn marked_bytes(len: usize) -> Vec<u8> {
    let marker = b"PLAINTEXT-MARKER-";
    (0..len).map(|i| marker[i % marker.len()]).collect()
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
    let (dir, mut vault) = connected_vault();
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));

    // Parts arrive in order; one out of order is refused and changes nothing.
    vault
        .keep_download_part(&sha256, 0, &bytes[..1_000_000], &fresh())
        .unwrap();
    let refused = vault.keep_download_part(&sha256, 2_000_000, &bytes[2_000_000..], &fresh());
    assert!(matches!(
        refused,
        Err(VaultError::DownloadOutOfOrder {
            held: 1_000_000,
            ..
        })
    ));
    assert_eq!(vault.download_held(&sha256).unwrap(), 1_000_000);
    vault
        .keep_download_part(&sha256, 1_000_000, &bytes[1_000_000..], &fresh())
        .unwrap();
    assert_eq!(
        vault.download_digest(&sha256).unwrap(),
        (bytes.len() as u64, sha256.clone())
    );

    // Applied: the document's bytes are the parts, byte for byte; a stray download goes.
    vault
        .keep_download_part("ab".repeat(32).as_str(), 0, b"stray", &fresh())
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
        .keep_download_part(&sha256, bytes.len() as u64, b"more", &fresh())
        .is_err());
    vault.discard_download(&sha256).unwrap();
    assert!(vault.document_bytes(&id).unwrap() == bytes);

    // Purged with its assignment: its bytes are gone from the vault.
    vault
        .apply_pull_round(&round(Vec::new(), vec!["server-1".into()], 2))
        .unwrap();
    assert!(vault.document(&id).is_err());
    assert_eq!(vault.download_held(&sha256).unwrap(), 0);
    assert_eq!(part_files(&dir), Vec::<std::path::PathBuf>::new());
}

#[test]
fn parts_are_sealed_on_the_disk_and_a_changed_file_is_refused_not_misread() {
    let (dir, vault) = connected_vault();
    let bytes = marked_bytes(2_500_000);
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    for start in (0..bytes.len()).step_by(1_000_000) {
        let end = (start + 1_000_000).min(bytes.len());
        vault
            .keep_download_part(&sha256, start as u64, &bytes[start..end], &fresh())
            .unwrap();
    }
    assert!(vault.download_bytes(&sha256).unwrap() == bytes);

    // One file for the download, in a folder only the user can enter, and no plaintext in it
    // nor anywhere else in the vault's folder.
    let files = part_files(&dir);
    assert_eq!(files.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(files[0].parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    for entry in walk(&dir.path().join("vaults/petr")) {
        let on_disk = std::fs::read(&entry).unwrap();
        assert!(
            !on_disk.windows(17).any(|w| w == b"PLAINTEXT-MARKER-"),
            "plaintext in {}",
            entry.display()
        );
    }

    // A byte changed in the file: reading says so instead of handing back other bytes.
    let mut sealed = std::fs::read(&files[0]).unwrap();
    sealed[1_500_000] ^= 1;
    std::fs::write(&files[0], &sealed).unwrap();
    match vault.download_digest(&sha256) {
        Err(VaultError::PartUnreadable { sha256: named, .. }) => assert_eq!(named, sha256),
        other => panic!("a changed part file was read: {other:?}"),
    }
    // Discarded, the download starts over cleanly and its file goes.
    vault.discard_download(&sha256).unwrap();
    assert!(part_files(&dir).is_empty());
    assert_eq!(vault.download_held(&sha256).unwrap(), 0);
}

#[test]
fn a_part_written_without_its_row_is_overwritten_and_a_file_without_a_download_goes_at_opening() {
    let (dir, vault) = connected_vault();
    let bytes = marked_bytes(1_500_000);
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    vault
        .keep_download_part(&sha256, 0, &bytes[..1_000_000], &fresh())
        .unwrap();
    // A crash after a part reached the file but before its row committed leaves bytes behind.
    let file = part_files(&dir).remove(0);
    let mut tail = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    // Longer than the next part, so only cutting the file back removes all of it.
    std::io::Write::write_all(&mut tail, &[7u8; 700_000]).unwrap();
    drop(tail);
    vault
        .keep_download_part(&sha256, 1_000_000, &bytes[1_000_000..], &fresh())
        .unwrap();
    // Two sealed records (bytes and a 16-byte tag each), nothing after them.
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        1_000_000 + 16 + 500_000 + 16
    );
    assert_eq!(
        vault.download_digest(&sha256).unwrap(),
        (bytes.len() as u64, sha256.clone())
    );

    // A file the database does not know (its parts dropped, the removal cut short) goes when
    // the vault is opened next; the download's own file stays.
    let stray = file.with_file_name("0123456789abcdef0123456789abcdef");
    std::fs::write(&stray, b"left by a crash").unwrap();
    let paths = VaultPaths::new(dir.path(), "petr").unwrap();
    drop(vault);
    let keyring = KEYRING.with(|k| k.clone());
    let vault = Vault::open(
        &paths,
        "pw-petr",
        &keyring,
        Arc::new(ManualClock::new(1_700_000_000_000)),
    )
    .unwrap();
    assert_eq!(part_files(&dir), vec![file]);
    assert!(vault.download_bytes(&sha256).unwrap() == bytes);
}

#[test]
fn parts_written_outside_the_vault_are_held_only_once_recorded_and_two_writers_of_one_part_are_refused_not_misread(
) {
    let (_dir, vault) = connected_vault();
    let bytes = marked_bytes(300_000);
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));

    // Planned and written, not yet recorded: nothing is held, and a resumed download starts at 0.
    let first = vault.plan_download_part(&sha256, 0, &fresh()).unwrap();
    let written = first.write(&bytes[..100_000]).unwrap();
    assert_eq!(vault.download_held(&sha256).unwrap(), 0);
    vault.record_download_part(&written).unwrap();
    assert_eq!(vault.download_held(&sha256).unwrap(), 100_000);

    // Two writers plan the same next part: the first recorded is held; the second is refused,
    // and the bytes it wrote over the first's in the file are found out when read, not taken.
    let one = vault
        .plan_download_part(&sha256, 100_000, &fresh())
        .unwrap();
    let other = vault
        .plan_download_part(&sha256, 100_000, &fresh())
        .unwrap();
    let one = one.write(&bytes[100_000..200_000]).unwrap();
    let other = other.write(&bytes[100_000..200_000]).unwrap();
    vault.record_download_part(&one).unwrap();
    match vault.record_download_part(&other) {
        Err(VaultError::DownloadOutOfOrder { held, start, .. }) => {
            assert_eq!((held, start), (200_000, 100_000))
        }
        other => panic!("the second writer's part was taken: {:?}", other.err()),
    }
    match vault.download_digest(&sha256) {
        Err(VaultError::PartUnreadable { sha256: named, .. }) => assert_eq!(named, sha256),
        Ok(_) => panic!("a part overwritten by another writer was read as if intact"),
        Err(other) => panic!("unexpected: {other}"),
    }
    // Discarded, the download starts over and completes.
    vault.discard_download(&sha256).unwrap();
    assert_eq!(vault.download_held(&sha256).unwrap(), 0);
    for (start, end) in [(0, 150_000), (150_000, 300_000)] {
        let part = vault
            .plan_download_part(&sha256, start as u64, &fresh())
            .unwrap();
        let written = part.write(&bytes[start..end]).unwrap();
        vault.record_download_part(&written).unwrap();
    }
    assert!(vault.download_bytes(&sha256).unwrap() == bytes);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
