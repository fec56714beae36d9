//! A download is kept part by part, sealed in its writer's pack, resumes where it stopped, becomes
//! the document's bytes without a second copy when its round is applied, and goes with the
//! document when it is purged — its space in the pack too, and the pack with its last document.
//! The server's head taken whole in place of a downloaded copy becomes its revision 0.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use outpost_vault::{
    DocumentId, KdfParams, ManualClock, OsKeyring, PartRandomness, PartsPack, PullRound,
    PulledDocument, ServerAccount, Vault, VaultError, VaultPaths, WrittenPart,
};
use rand::SeedableRng;
use sha2::Digest;

thread_local! {
    /// Each test's own keyring service (tests run on threads of their own).
    static KEYRING: OsKeyring =
        OsKeyring::new(format!("outpost-test-{:016x}", rand::random::<u64>()));
}

fn connected_vault() -> (tempfile::TempDir, Vault) {
    connected_vault_on(Arc::new(ManualClock::new(1_700_000_000_000)))
}

/// A vault linked to a server account, on `clock`.
fn connected_vault_on(clock: Arc<ManualClock>) -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KEYRING.with(|k| k.clone());
    let mut vault = Vault::create(
        &VaultPaths::new(dir.path(), "petr").unwrap(),
        "pw-petr",
        KdfParams::INSECURE_FAST_FOR_TESTS,
        &keyring,
        clock,
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

/// A seeded RNG, a new seed each call (the vault draws no randomness of its own).
fn seeded() -> rand_chacha::ChaCha20Rng {
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    rand_chacha::ChaCha20Rng::seed_from_u64(DRAWS.fetch_add(1, Ordering::Relaxed))
}

/// Randomness for one kept part.
fn fresh() -> PartRandomness {
    PartRandomness::draw(&mut seeded())
}

/// The part of the download of `sha256` starting at `start`, planned into `pack` and written
/// there, not yet recorded.
fn written<'p>(
    vault: &Vault,
    sha256: &str,
    start: u64,
    pack: &'p mut PartsPack,
    bytes: &[u8],
) -> WrittenPart<'p> {
    vault
        .plan_download_part(sha256, start, pack, fresh())
        .unwrap()
        .write(bytes)
        .unwrap()
}

/// A pack for one writer.
fn pack(vault: &Vault) -> PartsPack {
    vault.begin_parts_pack(&mut seeded()).unwrap()
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

/// Server document "server-1", downloaded as `id` with bytes `sha256`.
fn server_document_1(id: &DocumentId, sha256: &str, title: &str) -> PulledDocument {
    server_document(1, id, sha256, title)
}

/// Server document "server-`n`" (at position `n`), downloaded as `id` with bytes `sha256`.
fn server_document(n: i64, id: &DocumentId, sha256: &str, title: &str) -> PulledDocument {
    PulledDocument {
        server_id: format!("server-{n}"),
        position: n,
        id: id.clone(),
        sha256: sha256.into(),
        title: title.into(),
        page_texts: vec!["text".into()],
        source_name: format!("server document server-{n}"),
    }
}

fn round(visible: Vec<PulledDocument>, removed: Vec<String>, cursor: i64) -> PullRound {
    PullRound {
        visible,
        annotations: Vec::new(),
        removed,
        seen: Vec::new(),
        cursor,
    }
}

/// A signature's update of document `id`, made on its revision `base_revision` whose whole bytes
/// hash to `base_sha256`.
fn made_on<'a>(
    id: &'a DocumentId,
    base_revision: i64,
    base_sha256: &'a str,
    appended: &'a [u8],
    sha256_after: &'a str,
) -> outpost_vault::DocumentUpdate<'a> {
    outpost_vault::DocumentUpdate {
        document_id: id,
        base_revision,
        base_sha256,
        appended,
        sha256_after,
        cause: "signed",
        burned_annotations: &[],
        batch_id: None,
        audit: outpost_vault::AuditEvent::new(
            outpost_vault::AuditAction::Sign,
            outpost_vault::AuditOutcome::Success,
        ),
    }
}

#[test]
fn parts_become_the_document_and_leave_with_it() {
    let (dir, mut vault) = connected_vault();
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let mut pack = pack(&vault);

    // Parts arrive in order; one out of order is refused and changes nothing.
    vault
        .keep_download_part(&sha256, 0, &bytes[..1_000_000], &mut pack, fresh())
        .unwrap();
    let refused =
        vault.keep_download_part(&sha256, 2_000_000, &bytes[2_000_000..], &mut pack, fresh());
    assert!(matches!(
        refused,
        Err(VaultError::DownloadOutOfOrder {
            held: 1_000_000,
            ..
        })
    ));
    assert_eq!(vault.download_held(&sha256).unwrap(), 1_000_000);
    vault
        .keep_download_part(&sha256, 1_000_000, &bytes[1_000_000..], &mut pack, fresh())
        .unwrap();
    assert_eq!(
        vault.download_digest(&sha256).unwrap(),
        (bytes.len() as u64, sha256.clone())
    );

    // Applied: the document's bytes are the parts, byte for byte; a stray download goes.
    vault
        .keep_download_part("ab".repeat(32).as_str(), 0, b"stray", &mut pack, fresh())
        .unwrap();
    let id = DocumentId("doc-1".into());
    vault
        .apply_pull_round(&round(
            vec![server_document_1(&id, &sha256, "Downloaded")],
            Vec::new(),
            1,
        ))
        .unwrap();
    assert!(vault.document_bytes(&id).unwrap() == bytes);
    assert_eq!(vault.document(&id).unwrap().byte_size, bytes.len() as u64);
    assert_eq!(vault.download_held(&"ab".repeat(32)).unwrap(), 0);
    // A second connection (a batch worker's) reads the same head; an update the vault's own
    // connection commits next is seen whole by the reader's next read.
    let reader = vault.reader().unwrap();
    let (head, read) = reader.head(&id).unwrap();
    assert!(read == bytes);
    assert_eq!((head.revision, &head.sha256), (0, &sha256));
    let update = b"\n% an update\n";
    let after = hex::encode(sha2::Sha256::digest([bytes.as_slice(), update].concat()));
    // Made on other bytes under the same revision number (the server's head took the place of
    // the copy meanwhile): refused, nothing written.
    let other = "cd".repeat(32);
    assert!(matches!(
        vault.append_document_update(&made_on(&id, 0, &other, update, &after)),
        Err(VaultError::DocumentChanged { .. })
    ));
    vault
        .append_document_update(&made_on(&id, 0, &sha256, update, &after))
        .unwrap();
    let (head, read) = reader.head(&id).unwrap();
    assert_eq!((head.revision, &head.sha256), (1, &after));
    assert!(read == [bytes.as_slice(), update].concat());
    assert!(matches!(
        reader.head(&DocumentId("no-such-document".into())),
        Err(VaultError::DocumentNotFound(_))
    ));
    drop(reader);
    // They are no download any more: nothing can be added to them, discarding leaves them.
    assert!(vault
        .keep_download_part(&sha256, bytes.len() as u64, b"more", &mut pack, fresh())
        .is_err());
    vault.discard_download(&sha256).unwrap();
    assert!(vault.document_bytes(&id).unwrap() == [bytes.as_slice(), update].concat());
    // Its writer is done with the pack.
    drop(pack);

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
    let mut pack = pack(&vault);
    for start in (0..bytes.len()).step_by(1_000_000) {
        let end = (start + 1_000_000).min(bytes.len());
        vault
            .keep_download_part(
                &sha256,
                start as u64,
                &bytes[start..end],
                &mut pack,
                fresh(),
            )
            .unwrap();
    }
    drop(pack);
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
    let mut pack = pack(&vault);
    vault
        .keep_download_part(&sha256, 0, &bytes[..1_000_000], &mut pack, fresh())
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
        .keep_download_part(&sha256, 1_000_000, &bytes[1_000_000..], &mut pack, fresh())
        .unwrap();
    drop(pack);
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
fn parts_written_outside_the_vault_are_held_only_once_recorded_and_a_second_writer_of_one_part_is_refused(
) {
    let (_dir, vault) = connected_vault();
    let bytes = marked_bytes(300_000);
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let (mut one_pack, mut other_pack) = (pack(&vault), pack(&vault));

    // Planned and written, not yet recorded: nothing is held, and a resumed download starts at 0.
    let first = written(&vault, &sha256, 0, &mut one_pack, &bytes[..100_000]);
    assert_eq!(vault.download_held(&sha256).unwrap(), 0);
    vault.record_download_part(&first).unwrap();
    assert_eq!(vault.download_held(&sha256).unwrap(), 100_000);

    // Two writers (each with its own pack) plan the same next part: the first recorded is held,
    // the second is refused, and what is held reads back intact.
    let one = written(
        &vault,
        &sha256,
        100_000,
        &mut one_pack,
        &bytes[100_000..200_000],
    );
    let other = written(
        &vault,
        &sha256,
        100_000,
        &mut other_pack,
        &bytes[100_000..200_000],
    );
    vault.record_download_part(&one).unwrap();
    match vault.record_download_part(&other) {
        Err(VaultError::DownloadOutOfOrder { held, start, .. }) => {
            assert_eq!((held, start), (200_000, 100_000))
        }
        other => panic!("the second writer's part was taken: {:?}", other.err()),
    }
    // The download goes on in the other writer's pack (as a resumed one does).
    let last = written(&vault, &sha256, 200_000, &mut other_pack, &bytes[200_000..]);
    vault.record_download_part(&last).unwrap();
    assert!(vault.download_bytes(&sha256).unwrap() == bytes);

    // Two first parts of a new download, planned before either is recorded: each was sealed
    // under a key of its own drawing, and only the first recorded sets the download's key.
    let new_bytes = marked_bytes(50_000);
    let new_sha256 = hex::encode(sha2::Sha256::digest(&new_bytes));
    let one = written(&vault, &new_sha256, 0, &mut one_pack, &new_bytes);
    let other = written(&vault, &new_sha256, 0, &mut other_pack, &new_bytes);
    vault.record_download_part(&other).unwrap();
    assert!(matches!(
        vault.record_download_part(&one),
        Err(VaultError::DownloadOutOfOrder { .. })
    ));
    assert!(vault.download_bytes(&new_sha256).unwrap() == new_bytes);

    // A part planned under the download's key, then the download discarded and fetched again to
    // the same length under a new key: the old part is refused, not recorded under the new key.
    let stale = written(&vault, &new_sha256, 50_000, &mut one_pack, b"more");
    vault.discard_download(&new_sha256).unwrap();
    vault
        .keep_download_part(&new_sha256, 0, &new_bytes, &mut other_pack, fresh())
        .unwrap();
    assert!(matches!(
        vault.record_download_part(&stale),
        Err(VaultError::DownloadOutOfOrder { .. })
    ));
    assert!(vault.download_bytes(&new_sha256).unwrap() == new_bytes);
}

/// Pulls `documents` (hash and bytes) in one round with `cursor`, as server documents `s-N`.
fn pulled(documents: &[(String, &[u8])]) -> Vec<PulledDocument> {
    documents
        .iter()
        .enumerate()
        .map(|(n, (sha256, _))| PulledDocument {
            server_id: format!("s-{n}"),
            position: n as i64 + 1,
            id: DocumentId(format!("doc-{n}")),
            sha256: sha256.clone(),
            title: format!("Document {n}"),
            page_texts: vec!["text".into()],
            source_name: format!("server document s-{n}"),
        })
        .collect()
}

/// Blocks the filesystem has given `path` (holes take none).
fn allocated(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn the_documents_one_writer_fetched_share_its_pack_and_a_purged_ones_range_is_punched_out() {
    let (dir, mut vault) = connected_vault();
    let contents: Vec<Vec<u8>> = (0..3u8)
        .map(|n| {
            let mut bytes = marked_bytes(1_200_000);
            bytes[0] = n;
            bytes
        })
        .collect();
    let documents: Vec<(String, &[u8])> = contents
        .iter()
        .map(|bytes| (hex::encode(sha2::Sha256::digest(bytes)), bytes.as_slice()))
        .collect();
    let mut writer = pack(&vault);
    for (sha256, bytes) in &documents {
        for start in (0..bytes.len()).step_by(500_000) {
            let end = (start + 500_000).min(bytes.len());
            vault
                .keep_download_part(
                    sha256,
                    start as u64,
                    &bytes[start..end],
                    &mut writer,
                    fresh(),
                )
                .unwrap();
        }
    }
    drop(writer);
    vault
        .apply_pull_round(&round(pulled(&documents), Vec::new(), 1))
        .unwrap();
    // Three documents, one file.
    let files = part_files(&dir);
    assert_eq!(files.len(), 1);
    let pack_file = files[0].clone();
    let sealed_size = 3 * (1_200_000 + 3 * 16);
    assert_eq!(std::fs::metadata(&pack_file).unwrap().len(), sealed_size);
    let before = allocated(&pack_file);

    // The middle one's assignment ends: the others read back as they were, and the middle one's
    // sealed bytes are gone from the pack (a hole), not only unreadable.
    vault
        .apply_pull_round(&round(Vec::new(), vec!["s-1".into()], 2))
        .unwrap();
    assert!(vault.document(&DocumentId("doc-1".into())).is_err());
    for n in [0, 2] {
        let id = DocumentId(format!("doc-{n}"));
        assert!(vault.document_bytes(&id).unwrap() == contents[n]);
    }
    assert_eq!(part_files(&dir), vec![pack_file.clone()]);
    let on_disk = std::fs::read(&pack_file).unwrap();
    let middle = 1_200_000 + 3 * 16..2 * (1_200_000 + 3 * 16);
    assert!(
        on_disk[middle].iter().all(|&b| b == 0),
        "the purged document's sealed bytes are still in the pack"
    );
    assert!(
        allocated(&pack_file) + 1_100_000 <= before,
        "its space was not given back: {} of {before} bytes still allocated",
        allocated(&pack_file)
    );

    // The last two go: so does the pack.
    vault
        .apply_pull_round(&round(Vec::new(), vec!["s-0".into(), "s-2".into()], 3))
        .unwrap();
    assert!(part_files(&dir).is_empty());
}

#[test]
fn a_dropped_range_its_writer_is_filling_again_is_not_punched() {
    let (dir, vault) = connected_vault();
    let dropped = marked_bytes(400_000);
    let dropped_sha256 = hex::encode(sha2::Sha256::digest(&dropped));
    let kept = marked_bytes(300_000);
    let kept_sha256 = hex::encode(sha2::Sha256::digest(&kept));
    let mut writer = pack(&vault);
    vault
        .keep_download_part(&dropped_sha256, 0, &dropped, &mut writer, fresh())
        .unwrap();
    // Discarded while the pack is being written: its writer takes the place again…
    vault.discard_download(&dropped_sha256).unwrap();
    let refilling = written(&vault, &kept_sha256, 0, &mut writer, &kept);
    // …and parts are dropped elsewhere before that part is recorded: the dropped range is not
    // punched under it.
    vault.discard_download(&"cd".repeat(32)).unwrap();
    vault.record_download_part(&refilling).unwrap();
    drop(writer);
    assert_eq!(
        std::fs::metadata(&part_files(&dir)[0]).unwrap().len(),
        300_000 + 16
    );
    assert!(vault.download_bytes(&kept_sha256).unwrap() == kept);
    // Once the writer is done, the range is looked at again and left whole (a part lies in it).
    vault.discard_download(&"cd".repeat(32)).unwrap();
    assert!(vault.download_bytes(&kept_sha256).unwrap() == kept);
}

#[test]
fn another_opening_of_the_vault_leaves_a_pack_being_written_alone() {
    let (dir, vault) = connected_vault();
    let bytes = marked_bytes(200_000);
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let mut writer = pack(&vault);
    let unrecorded = written(&vault, &sha256, 0, &mut writer, &bytes);
    // The vault is opened again (the tutorial, another window) before the part is recorded: the
    // pack no recorded part names yet stays, because its writer holds it.
    let keyring = KEYRING.with(|k| k.clone());
    let other = Vault::open(
        &VaultPaths::new(dir.path(), "petr").unwrap(),
        "pw-petr",
        &keyring,
        Arc::new(ManualClock::new(1_700_000_000_000)),
    )
    .unwrap();
    assert_eq!(part_files(&dir).len(), 1);
    vault.record_download_part(&unrecorded).unwrap();
    drop(writer);
    assert!(vault.download_bytes(&sha256).unwrap() == bytes);
    assert!(other.download_bytes(&sha256).unwrap() == bytes);
    // An empty pack nobody writes any more goes at the next look.
    let abandoned = pack(&vault);
    drop(abandoned);
    other.discard_download(&"cd".repeat(32)).unwrap();
    assert_eq!(part_files(&dir).len(), 1);
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

#[test]
fn a_head_taken_whole_is_revision_0_and_an_unfinished_batch_follows_it() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let (_dir, mut vault) = connected_vault_on(clock.clone());
    let bytes = marked_bytes(40_000);
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let mut pack = pack(&vault);
    vault
        .keep_download_part(&sha256, 0, &bytes, &mut pack, fresh())
        .unwrap();
    drop(pack);
    let id = DocumentId("doc-1".into());
    vault
        .apply_pull_round(&round(
            vec![server_document_1(&id, &sha256, "Order")],
            Vec::new(),
            1,
        ))
        .unwrap();
    // Two signatures made here, then a batch over the document is started and stops before it.
    let mut whole = bytes.clone();
    let mut head = sha256.clone();
    for (base, update) in [(0, &b"\n% first\n"[..]), (1, &b"\n% second\n"[..])] {
        whole.extend_from_slice(update);
        let after = hex::encode(sha2::Sha256::digest(&whole));
        vault
            .append_document_update(&made_on(&id, base, &head, update, &after))
            .unwrap();
        head = after;
    }
    let batch_event = outpost_vault::AuditEvent::new(
        outpost_vault::AuditAction::SignBatch,
        outpost_vault::AuditOutcome::Success,
    );
    assert!(vault
        .start_signing_batch("batch-1", "key-1", "Approved", &[&id], &batch_event)
        .unwrap());
    assert_eq!(
        vault.signing_batch_documents_left("batch-1").unwrap(),
        vec![id.clone()]
    );

    // A day later a sync takes the server's head whole in place of the copy.
    clock.advance(86_400_000);
    let taken_at = 1_700_000_000_000 + 86_400_000;
    let server_bytes = [bytes.as_slice(), b"\n% the server's own line\n"].concat();
    let server_sha256 = hex::encode(sha2::Sha256::digest(&server_bytes));
    let head_seen_at = |seen_revision| outpost_vault::ServerHead {
        document_id: &id,
        keep_revision: None,
        appended: &server_bytes,
        server_sha256: &server_sha256,
        instead_of_refused: None,
        seen_revision,
    };
    // Examined before the second signature was made: refused, nothing taken (that signature
    // has not been to the server and may not be set aside).
    assert!(matches!(
        vault.adopt_server_head(&head_seen_at(1)),
        Err(VaultError::DocumentChanged { found: 2, .. })
    ));
    assert_eq!(vault.document_head(&id).unwrap().0.sha256, head);
    let adopted = vault.adopt_server_head(&head_seen_at(2)).unwrap();
    assert_eq!(adopted.discarded.len(), 2, "{:?}", adopted.discarded);
    // Revision 0 is now the server's head, labelled as such and dated when it was taken; the
    // document's own summary still says when and whence it first came.
    let revisions = vault.document_revisions(&id).unwrap();
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    assert_eq!(
        (revisions[0].revision, revisions[0].sha256.as_str()),
        (0, server_sha256.as_str())
    );
    assert_eq!(
        (revisions[0].cause.as_str(), revisions[0].created_at_ms),
        ("from the server", taken_at)
    );
    let (newest, read) = vault.document_head(&id).unwrap();
    assert_eq!(newest, revisions[0]);
    assert!(read == server_bytes);
    assert_eq!(
        vault.document(&id).unwrap().imported_at_ms,
        1_700_000_000_000
    );
    // The batch still offers the document (its signatures were set aside) ...
    assert_eq!(
        vault.signing_batch_documents_left("batch-1").unwrap(),
        vec![id.clone()]
    );
    // ... until it is signed here outside the batch, on the new revision 0: then it is done,
    // though the new signature is revision 1, below the revision the batch started at.
    let update = b"\n% signed on the server's head\n";
    let after = hex::encode(sha2::Sha256::digest(
        [server_bytes.as_slice(), update].concat(),
    ));
    vault
        .append_document_update(&made_on(&id, 0, &server_sha256, update, &after))
        .unwrap();
    assert_eq!(
        vault.signing_batch_documents_left("batch-1").unwrap(),
        Vec::<DocumentId>::new()
    );
    assert!(vault.unfinished_signing_batches().unwrap().is_empty());
}

#[test]
fn revisions_go_to_the_server_whole_documents_at_a_time() {
    let (_dir, mut vault) = connected_vault();
    let mut pack = pack(&vault);
    let mut documents = Vec::new();
    for n in 1..=3i64 {
        let bytes = [marked_bytes(1_000), n.to_string().into_bytes()].concat();
        let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
        vault
            .keep_download_part(&sha256, 0, &bytes, &mut pack, fresh())
            .unwrap();
        documents.push((DocumentId(format!("doc-{n}")), bytes, sha256));
    }
    drop(pack);
    let pulled = documents
        .iter()
        .zip(1..)
        .map(|((id, _, sha256), n)| server_document(n, id, sha256, &format!("Order {n}")))
        .collect();
    vault
        .apply_pull_round(&round(pulled, Vec::new(), 1))
        .unwrap();
    // Three signatures on the first document, two on the second, none on the third.
    for ((id, bytes, sha256), signatures) in documents.iter().zip([3, 2, 0]) {
        let mut whole = bytes.clone();
        let mut head = sha256.clone();
        for base in 0..signatures {
            let update = format!("\n% signature {base}\n").into_bytes();
            whole.extend_from_slice(&update);
            let after = hex::encode(sha2::Sha256::digest(&whole));
            vault
                .append_document_update(&made_on(id, base, &head, &update, &after))
                .unwrap();
            head = after;
        }
    }
    let listed = |pending: Vec<outpost_vault::PendingRevision>| -> Vec<(String, i64)> {
        pending
            .into_iter()
            .map(|p| (p.document_id.0, p.revision))
            .collect()
    };
    // Asked for two, the first document's three come whole; after it, the second's; nothing
    // after the second; all five when asked for more.
    assert_eq!(
        listed(vault.pending_revision_pushes(2, None).unwrap()),
        [
            ("doc-1".to_string(), 1),
            ("doc-1".into(), 2),
            ("doc-1".into(), 3)
        ]
    );
    assert_eq!(
        listed(
            vault
                .pending_revision_pushes(2, Some((1, "server-1")))
                .unwrap()
        ),
        [("doc-2".to_string(), 1), ("doc-2".into(), 2)]
    );
    assert!(vault
        .pending_revision_pushes(2, Some((2, "server-2")))
        .unwrap()
        .is_empty());
    assert_eq!(vault.pending_revision_pushes(50, None).unwrap().len(), 5);
    let (count, bytes) = vault.revisions_to_push().unwrap();
    let appended: usize = (0..3)
        .chain(0..2)
        .map(|b| format!("\n% signature {b}\n").len())
        .sum();
    assert_eq!((count, bytes), (5, appended as u64));
    // Each comes with the hash of the revision it was made on, its length and place; its bytes
    // are read when it goes.
    let pending = vault.pending_revision_pushes(1, None).unwrap();
    assert_eq!(pending[0].base_sha256, documents[0].2);
    assert_eq!(pending[1].base_sha256, pending[0].sha256);
    assert_eq!(
        (pending[1].position, pending[1].appended_len),
        (1, "\n% signature 1\n".len() as u64)
    );
    assert_eq!(
        vault
            .revision_appended(&documents[0].0, 2)
            .unwrap()
            .as_deref(),
        Some(&b"\n% signature 1\n"[..])
    );
    assert_eq!(vault.revision_appended(&documents[0].0, 4).unwrap(), None);
}
