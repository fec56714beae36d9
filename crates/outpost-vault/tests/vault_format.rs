//! The vault is a standard SQLCipher 4 database, and its schema is versioned.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use outpost_vault::{
    AuditAction, AuditEvent, AuditOutcome, DocumentId, DocumentUpdate, KdfParams, KeyFile,
    ManualClock, NewDocument, OsKeyring, Vault, VaultError, VaultPaths,
};
use rand::SeedableRng;
use sha2::{Digest, Sha256};

fn keyring() -> OsKeyring {
    OsKeyring::new(format!("outpost-test-{:016x}", rand::random::<u64>()))
}

fn make_vault(root: &Path, keyring: &OsKeyring) -> VaultPaths {
    let paths = VaultPaths::new(root, "zoya").unwrap();
    let mut vault = Vault::create(
        &paths,
        "pw-zoya",
        KdfParams::INSECURE_FAST_FOR_TESTS,
        keyring,
        Arc::new(ManualClock::new(1_700_000_000_000)),
        &mut rand_chacha::ChaCha20Rng::seed_from_u64(1),
    )
    .unwrap();
    vault
        .store_document(
            &NewDocument {
                id: DocumentId("doc-1".into()),
                bytes: b"%PDF-1.7 stand-in bytes %%EOF",
                sha256: "ab".repeat(32),
                title: "Приказ о назначении".into(),
                page_texts: vec!["текст".into()],
                source_name: "order.pdf".into(),
            },
            None,
        )
        .unwrap();
    paths
}

/// Opens the vault at `paths` with its password, as the app does.
fn open_vault(paths: &VaultPaths, keyring: &OsKeyring) -> Result<Vault, VaultError> {
    Vault::open(
        paths,
        "pw-zoya",
        keyring,
        Arc::new(ManualClock::new(1_700_000_000_000)),
    )
}

/// The raw SQLCipher key, unwrapped as a recovery tool would.
fn raw_key_hex(paths: &VaultPaths, keyring: &OsKeyring) -> String {
    let key = KeyFile::read(&paths.key_file())
        .unwrap()
        .unwrap_database_key("pw-zoya", keyring)
        .unwrap();
    hex::encode(key.as_ref())
}

/// Python with `sqlcipher3` (SQLCipher 4.x), installed by scripts/install-deps.sh.
fn sqlcipher_python() -> PathBuf {
    std::env::var_os("OUTPOST_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/outpost/venv/bin/python")
        })
}

/// Whether a reader succeeded, and what it printed (standard output, then standard error).
fn finished(out: std::process::Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn query_with_python(db: &Path, key_hex: Option<&str>) -> (bool, String) {
    let script = r#"
import sys, sqlcipher3
db, key = sys.argv[1], sys.argv[2]
conn = sqlcipher3.connect(db)
if key:
    conn.execute("PRAGMA key = \"x'%s'\"" % key)
print(conn.execute("PRAGMA cipher_version").fetchone()[0])
print(conn.execute("SELECT title FROM documents").fetchone()[0])
"#;
    finished(
        Command::new(sqlcipher_python())
            .args(["-c", script])
            .arg(db)
            .arg(key_hex.unwrap_or(""))
            .output()
            .expect("python with sqlcipher3: run scripts/install-deps.sh"),
    )
}

/// Runs SQL in Debian's `sqlcipher` shell (SQLCipher 4 from bookworm-backports, installed by
/// scripts/install-deps.sh), the key given on standard input so that it never shows in a process list.
fn query_with_debian_shell(db: &Path, key_hex: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut script = String::new();
    if let Some(key) = key_hex {
        script.push_str(&format!("PRAGMA key = \"x'{key}'\";\n"));
    }
    script.push_str("PRAGMA cipher_version;\nSELECT title FROM documents;\n");
    let mut child = Command::new("sqlcipher")
        .args(["-bail", "-batch"])
        .arg(db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("Debian's sqlcipher shell: run scripts/install-deps.sh");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    finished(child.wait_with_output().unwrap())
}

/// `query` (an independent SQLCipher 4) reads the vault given its raw key, and neither without a
/// key nor with a wrong one.
fn opens_with_the_raw_key_only(query: fn(&Path, Option<&str>) -> (bool, String)) {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring();
    let paths = make_vault(dir.path(), &keyring);
    let key_hex = raw_key_hex(&paths, &keyring);

    let (ok, out) = query(&paths.database(), Some(&key_hex));
    assert!(ok, "{out}");
    assert!(
        out.lines().any(|line| line.starts_with("4.")),
        "expected SQLCipher 4.x, got {out}"
    );
    assert!(out.contains("Приказ о назначении"), "{out}");

    let (ok, out) = query(&paths.database(), None);
    assert!(!ok, "{out}");
    assert!(out.contains("file is not a database"), "{out}");
    assert!(!out.contains("Приказ"), "{out}");
    let wrong = "00".repeat(32);
    let (ok, out) = query(&paths.database(), Some(&wrong));
    assert!(!ok, "{out}");
    assert!(out.contains("file is not a database"), "{out}");
}

#[test]
fn debians_sqlcipher_shell_opens_the_vault_with_the_raw_key_and_not_without() {
    opens_with_the_raw_key_only(query_with_debian_shell);
}

#[test]
fn sqlcipher_4_from_pypi_opens_the_vault_with_the_raw_key_and_not_without() {
    opens_with_the_raw_key_only(query_with_python);
}

#[test]
fn a_vault_from_a_newer_outpost_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring();
    let paths = make_vault(dir.path(), &keyring);
    run_sql_with_raw_key(&paths, &keyring, "PRAGMA user_version = 99;");
    let hash = |p: PathBuf| hex::encode(Sha256::digest(std::fs::read(p).unwrap_or_default()));
    let before = (
        hash(paths.database()),
        hash(paths.database().with_extension("db-wal")),
    );
    let err = open_vault(&paths, &keyring).unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::NewerSchema {
                found: 99,
                supported: 18
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("update Outpost"));
    let after = (
        hash(paths.database()),
        hash(paths.database().with_extension("db-wal")),
    );
    assert_eq!(before, after, "the newer vault must not be modified");
}

#[test]
fn a_vault_from_the_previous_schema_is_migrated_at_open_and_keeps_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring();
    let paths = make_vault(dir.path(), &keyring);
    // Turn the vault back into schema version 1: as the first Outpost release wrote it.
    run_sql_with_raw_key(
        &paths,
        &keyring,
        "DROP TABLE held_annotation_changes; DROP TABLE annotation_pushes; DROP TABLE annotations; DROP TABLE document_updates; DROP TABLE signing_keys;
         DROP TABLE trust_anchors; DROP TABLE signing_batch_items; DROP TABLE signing_batch_documents;
         DROP TABLE signing_batches;
         DROP TABLE resign_requests; DROP TABLE refused_revisions; DROP TABLE download_keys; DROP TABLE dropped_part_ranges; DROP TABLE download_parts; DROP TABLE revocation_list; DROP TABLE document_reads;
         DROP TABLE tutorial_steps; DROP TABLE tutorial_lessons; DROP TABLE training_outbox; DROP TABLE training_sent;
         DROP INDEX document_bytes_parts; ALTER TABLE document_bytes DROP COLUMN parts_sha256;
         DROP TABLE server_documents;
         DROP TABLE server_account; DROP TABLE purge_notices;
         ALTER TABLE documents DROP COLUMN head_taken_whole_at_ms;
         PRAGMA user_version = 1;",
    );
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let mut vault = Vault::open(&paths, "pw-zoya", &keyring, clock).unwrap();
    let entries_before = vault.audit_entries(0, 100).unwrap().len();
    assert!(
        entries_before >= 2,
        "the audit chain of version 1 is still there"
    );
    let document = DocumentId("no-such-document".into());
    assert!(vault.annotations(&document, true).unwrap().is_empty());
    // The annotations table of version 2 exists and refuses a row for a missing document.
    let refused = vault.write_annotation(&new_note("a1", &document));
    assert!(refused.is_err(), "foreign keys hold in the migrated schema");
    assert_eq!(vault.audit_entries(0, 100).unwrap().len(), entries_before);
    // The document stored under version 1 takes annotations now.
    let stored = DocumentId("doc-1".into());
    let record = vault.write_annotation(&new_note("a2", &stored)).unwrap();
    assert_eq!((record.revision, record.logical_clock), (1, 1));
    assert_eq!(vault.annotations(&stored, false).unwrap().len(), 1);
    assert!(vault.verify_audit_chain().unwrap().first_broken.is_none());
}

/// Runs `sql` on the vault's database opened directly with its raw key (as another tool would).
fn run_sql_with_raw_key(paths: &VaultPaths, keyring: &OsKeyring, sql: &str) {
    let key_hex = raw_key_hex(paths, keyring);
    let raw = rusqlite::Connection::open(paths.database()).unwrap();
    raw.pragma_update(None, "key", format!("x'{key_hex}'"))
        .unwrap();
    raw.execute_batch(sql).unwrap();
}

fn new_note<'a>(id: &'a str, document: &'a DocumentId) -> outpost_vault::AnnotationWrite<'a> {
    outpost_vault::AnnotationWrite {
        id,
        document_id: document,
        page_no: 1,
        kind: "note",
        author: "zoya",
        body: "{}",
        deleted: false,
        expected_revision: None,
        audit_detail: "created note on page 1".into(),
    }
}

#[test]
fn download_parts_kept_in_the_database_by_schema_10_are_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring();
    let paths = make_vault(dir.path(), &keyring);
    // Schema 10 kept each part's bytes in its row (no file, no nonce).
    let sha256 = hex::encode(Sha256::digest(b"first part, second part"));
    run_sql_with_raw_key(
        &paths,
        &keyring,
        &format!(
            "INSERT INTO download_parts (sha256, start_at, size, bytes) VALUES
               ('{sha256}', 0, 12, CAST('first part, ' AS BLOB)),
               ('{sha256}', 12, 11, CAST('second part' AS BLOB));"
        ),
    );
    let vault = open_vault(&paths, &keyring).unwrap();
    assert_eq!(vault.download_held(&sha256).unwrap(), 23);
    assert_eq!(
        vault.download_bytes(&sha256).unwrap(),
        b"first part, second part"
    );
    assert_eq!(vault.download_digest(&sha256).unwrap(), (23, sha256));
}

#[test]
fn a_download_kept_in_a_file_of_its_own_by_schema_11_is_read_as_a_pack_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring();
    let paths = make_vault(dir.path(), &keyring);
    let bytes = b"first part, second part";
    let sha256 = hex::encode(Sha256::digest(bytes));
    // Schema 11 sealed each part under a key of the download's file, named by download_files.
    let key = [7u8; 32];
    let sealing = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &key).unwrap(),
    );
    let mut file = Vec::new();
    let mut rows = Vec::new();
    for (n, (start, part)) in [(0usize, &bytes[..12]), (12, &bytes[12..])]
        .into_iter()
        .enumerate()
    {
        let nonce = [n as u8 + 1; 12];
        let mut sealed = part.to_vec();
        let place = format!("outpost download part\n{sha256}\n{start}\n{}", part.len());
        sealing
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(place.as_bytes()),
                &mut sealed,
            )
            .unwrap();
        rows.push(format!(
            "('{sha256}', {start}, {}, x'', {}, x'{}')",
            part.len(),
            file.len(),
            hex::encode(nonce)
        ));
        file.extend_from_slice(&sealed);
    }
    let parts_folder = paths.database().parent().unwrap().join("parts");
    std::fs::create_dir_all(&parts_folder).unwrap();
    std::fs::write(parts_folder.join("00112233445566778899aabbccddeeff"), &file).unwrap();
    run_sql_with_raw_key(
        &paths,
        &keyring,
        &format!(
            "ALTER TABLE signing_keys DROP COLUMN certificate_refusal;
             ALTER TABLE signing_keys DROP COLUMN certificate_requested_at_ms;
             DROP TABLE held_annotation_changes; DROP TABLE purge_notices;
             DROP TABLE signing_batch_documents;
             ALTER TABLE signing_batches DROP COLUMN ended_at_ms;
             ALTER TABLE documents DROP COLUMN head_taken_whole_at_ms;
             DROP TRIGGER download_keys_follow_parts; DROP TABLE dropped_part_ranges;
             DROP TABLE download_keys; DROP INDEX download_parts_by_file;
             ALTER TABLE download_parts DROP COLUMN file_name;
             CREATE TABLE download_files (
                 sha256 TEXT PRIMARY KEY, file_name TEXT NOT NULL UNIQUE,
                 file_key BLOB NOT NULL CHECK (length(file_key) = 32)) STRICT;
             CREATE TRIGGER download_files_follow_parts AFTER DELETE ON download_parts
             WHEN NOT EXISTS (SELECT 1 FROM download_parts WHERE sha256 = OLD.sha256)
             BEGIN DELETE FROM download_files WHERE sha256 = OLD.sha256; END;
             INSERT INTO download_files VALUES
                 ('{sha256}', '00112233445566778899aabbccddeeff', x'{}'),
                 ('{}', 'ffeeddccbbaa99887766554433221100', x'{}');
             INSERT INTO download_parts (sha256, start_at, size, bytes, file_offset, nonce)
                 VALUES {};
             PRAGMA user_version = 11;",
            hex::encode(key),
            "ef".repeat(32),
            hex::encode([9u8; 32]),
            rows.join(", ")
        ),
    );
    let vault = open_vault(&paths, &keyring).unwrap();
    assert_eq!(vault.download_bytes(&sha256).unwrap(), bytes);
    assert_eq!(
        vault.download_digest(&sha256).unwrap(),
        (23, sha256.clone())
    );
    // It goes on in a pack like any download, and its old file goes with it.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let mut pack = vault.begin_parts_pack(&mut rng).unwrap();
    let fresh = outpost_vault::PartRandomness::draw(&mut rng);
    vault
        .keep_download_part(&sha256, 23, b", third", &mut pack, fresh)
        .unwrap();
    drop(pack);
    assert_eq!(
        vault.download_bytes(&sha256).unwrap(),
        b"first part, second part, third"
    );
    vault.discard_download(&sha256).unwrap();
    assert_eq!(std::fs::read_dir(&parts_folder).unwrap().count(), 0);
}

#[test]
fn a_batch_whose_document_was_renumbered_under_schema_17_counts_from_its_newest_revision() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring();
    let paths = make_vault(dir.path(), &keyring);
    // Schema 17 took the server's head in place of doc-1's revisions but left the unfinished
    // batch started on its revision 3; doc-1 has its first bytes only now.
    run_sql_with_raw_key(
        &paths,
        &keyring,
        "INSERT INTO signing_batches (id, key_id, reason, total, created_at_ms)
             VALUES ('batch-1', 'key-1', 'Approved', 1, 1700000000000);
         INSERT INTO signing_batch_documents (batch_id, document_id, position, revision_at_start)
             VALUES ('batch-1', 'doc-1', 0, 3);
         ALTER TABLE documents DROP COLUMN head_taken_whole_at_ms;
         PRAGMA user_version = 17;",
    );
    let mut vault = open_vault(&paths, &keyring).unwrap();
    let id = DocumentId("doc-1".into());
    assert_eq!(
        vault.signing_batch_documents_left("batch-1").unwrap(),
        vec![id.clone()]
    );
    // Signed outside the batch (revision 1): the batch has nothing left.
    let appended = b"\n% signed\n";
    let after = "cd".repeat(32);
    let base = "ab".repeat(32);
    vault
        .append_document_update(&DocumentUpdate {
            document_id: &id,
            base_revision: 0,
            base_sha256: &base,
            appended,
            sha256_after: &after,
            cause: "signed",
            burned_annotations: &[],
            batch_id: None,
            audit: AuditEvent::new(AuditAction::Sign, AuditOutcome::Success),
        })
        .unwrap();
    assert!(vault
        .signing_batch_documents_left("batch-1")
        .unwrap()
        .is_empty());
}
