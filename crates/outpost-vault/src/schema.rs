//! Versioned schema migrations, applied at open inside one transaction.

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

use crate::VaultError;

/// The schema, oldest first. Never edit a released step: add a new one.
const STEPS: &[&str] = &[
    // 1: documents, page text search index, intake claims, audit chain.
    r#"
CREATE TABLE vault_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE documents (
    id             TEXT PRIMARY KEY,
    sha256         TEXT NOT NULL UNIQUE,
    title          TEXT NOT NULL,
    page_count     INTEGER NOT NULL CHECK (page_count >= 0),
    byte_size      INTEGER NOT NULL CHECK (byte_size >= 0),
    source_name    TEXT NOT NULL,
    imported_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX documents_imported_at ON documents (imported_at_ms);

CREATE TABLE document_bytes (
    document_id TEXT PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    bytes       BLOB NOT NULL
) STRICT;

-- Page text lives only here; FTS5 keeps its own (encrypted) copy of the content.
-- rowid = documents.rowid * 2^20 + page number, so one document's pages are one rowid range.
CREATE VIRTUAL TABLE page_index USING fts5 (
    text,
    document_id UNINDEXED,
    page_no UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- The whole text of each document (rowid = documents.rowid), index only: ranks documents
-- without scoring every matching page.
CREATE VIRTUAL TABLE document_index USING fts5 (
    text,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
-- The distinct indexed terms, to expand a prefix into the words it stands for.
CREATE VIRTUAL TABLE document_vocab USING fts5vocab (document_index, row);

-- One row per file the inbox took, written in the same transaction as the import it caused.
CREATE TABLE intake_claims (
    claim_id       TEXT PRIMARY KEY,
    source_name    TEXT NOT NULL,
    outcome        TEXT NOT NULL CHECK (outcome IN ('imported', 'duplicate')),
    document_id    TEXT NOT NULL REFERENCES documents (id),
    recorded_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    document_id TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
) STRICT;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
"#,
    // 2: annotations, one row each, merged per annotation by sync.
    r#"
CREATE TABLE annotations (
    id             TEXT PRIMARY KEY,
    document_id    TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    page_no        INTEGER NOT NULL CHECK (page_no >= 1),
    kind           TEXT NOT NULL,
    author         TEXT NOT NULL,
    body           TEXT NOT NULL,
    revision       INTEGER NOT NULL CHECK (revision >= 1),
    logical_clock  INTEGER NOT NULL CHECK (logical_clock >= 1),
    origin         TEXT NOT NULL,
    deleted        INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    created_at_ms  INTEGER NOT NULL,
    modified_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX annotations_by_document ON annotations (document_id, page_no);
"#,
    // 3: document revisions (incremental updates), signing keys, trust anchors.
    r#"
-- Revision 0 of a document is its imported bytes (document_bytes); revision n > 0 appends the
-- bytes of one incremental update to revision n - 1. The head is the concatenation.
CREATE TABLE document_updates (
    document_id    TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    revision       INTEGER NOT NULL CHECK (revision >= 1),
    appended       BLOB NOT NULL,
    sha256_after   TEXT NOT NULL,
    cause          TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (document_id, revision)
) STRICT;

-- Annotations burned into a revision (before signing) are part of that revision's bytes.
ALTER TABLE annotations ADD COLUMN burned_revision INTEGER;

CREATE TABLE signing_keys (
    id             TEXT PRIMARY KEY,
    label          TEXT NOT NULL,
    algorithm      TEXT NOT NULL CHECK (algorithm IN ('ecdsa_p256', 'rsa_3072')),
    private_key    BLOB NOT NULL,
    public_key     BLOB NOT NULL,
    request        BLOB NOT NULL,
    certificate    BLOB,
    chain          TEXT NOT NULL DEFAULT '[]',
    created_at_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE trust_anchors (
    sha256         TEXT PRIMARY KEY,
    certificate    BLOB NOT NULL,
    subject        TEXT NOT NULL,
    added_at_ms    INTEGER NOT NULL
) STRICT;
"#,
    // 4: batch signing, so that a rerun finishes a batch without signing anything twice.
    r#"
CREATE TABLE signing_batches (
    id             TEXT PRIMARY KEY,
    key_id         TEXT NOT NULL,
    reason         TEXT NOT NULL,
    total          INTEGER NOT NULL,
    created_at_ms  INTEGER NOT NULL
) STRICT;

-- Written in the same transaction as the signed revision it names.
CREATE TABLE signing_batch_items (
    batch_id       TEXT NOT NULL REFERENCES signing_batches (id),
    document_id    TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    revision       INTEGER NOT NULL,
    PRIMARY KEY (batch_id, document_id)
) STRICT;
"#,
    // 5: the server this vault syncs with, and which local document is which server document.
    r#"
CREATE TABLE server_account (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    base_url           TEXT NOT NULL,
    ca_pem             TEXT NOT NULL,
    username           TEXT NOT NULL,
    device_id          TEXT,
    device_key         BLOB NOT NULL,
    access_token       TEXT,
    access_expires_at  INTEGER,
    refresh_token      TEXT,
    refresh_expires_at INTEGER,
    pull_cursor        INTEGER NOT NULL DEFAULT 0,
    audit_uploaded_seq INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE server_documents (
    server_id    TEXT PRIMARY KEY,
    document_id  TEXT NOT NULL UNIQUE REFERENCES documents (id) ON DELETE CASCADE,
    head_sha256  TEXT NOT NULL,
    position     INTEGER NOT NULL
) STRICT;

-- The logical clock of each annotation's state the server has (pushed from here, or merged from
-- there): a local change with a higher clock is waiting to be pushed.
CREATE TABLE annotation_pushes (
    annotation_id TEXT PRIMARY KEY REFERENCES annotations (id) ON DELETE CASCADE,
    synced_clock  INTEGER NOT NULL
) STRICT;
"#,
    // 6: document revisions sync too: how far the server holds each document's revisions, and the
    // documents whose signed revision lost a conflict on the server and must be signed again.
    r#"
ALTER TABLE server_documents ADD COLUMN synced_revision INTEGER NOT NULL DEFAULT 0;

CREATE TABLE resign_requests (
    document_id    TEXT PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    discarded      TEXT NOT NULL,
    server_sha256  TEXT NOT NULL,
    requested_at_ms INTEGER NOT NULL
) STRICT;
"#,
    // 7: the highest sync position the server has reported (pushes report it too): a pull that
    // ends below it finds a server restored from a backup.
    r#"
ALTER TABLE server_account ADD COLUMN server_position_seen INTEGER NOT NULL DEFAULT 0;
"#,
    // 8: the server's reason for refusing a document's revision, shown with the document until a
    // later push of it succeeds or the server's head is taken.
    r#"
CREATE TABLE refused_revisions (
    document_id    TEXT PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    sha256         TEXT NOT NULL,
    reason         TEXT NOT NULL,
    refused_at_ms  INTEGER NOT NULL
) STRICT;
"#,
    // 9: documents being downloaded, kept part by part as they arrive (encrypted like everything
    // else): an interrupted download resumes where it stopped, even after a restart; which
    // documents were opened (the list's "new"); and the organisation's newest revocation list,
    // for validating signatures offline.
    r#"
-- A downloaded document keeps its parts as its bytes: document_bytes.parts_sha256 names them
-- (and its bytes column stays empty), so storing it costs no second copy.
CREATE TABLE download_parts (
    sha256    TEXT NOT NULL,
    start_at  INTEGER NOT NULL CHECK (start_at >= 0),
    size      INTEGER NOT NULL CHECK (size > 0),
    bytes     BLOB NOT NULL,
    PRIMARY KEY (sha256, start_at)
) STRICT;
ALTER TABLE document_bytes ADD COLUMN parts_sha256 TEXT;
CREATE INDEX document_bytes_parts ON document_bytes (parts_sha256) WHERE parts_sha256 IS NOT NULL;

-- When each document was first opened here (a document never opened is "new").
CREATE TABLE document_reads (
    document_id         TEXT PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    first_opened_at_ms  INTEGER NOT NULL
) STRICT;

-- The newest revocation list of the organisation's CA, with the count of revoked certificates
-- the server reported when it was fetched (another count fetches it again).
CREATE TABLE revocation_list (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    der            BLOB NOT NULL,
    revoked_count  INTEGER NOT NULL,
    fetched_at_ms  INTEGER NOT NULL
) STRICT;
"#,
    // 10: the tutorial's progress (used only in sandbox vaults): when each lesson began — as a
    // position in the audit chain, never a wall-clock time — and which of its steps are done.
    r#"
CREATE TABLE tutorial_lessons (
    lesson             TEXT PRIMARY KEY,
    started_after_seq  INTEGER NOT NULL,
    completed_at_ms    INTEGER
) STRICT;
CREATE TABLE tutorial_steps (
    lesson           TEXT NOT NULL REFERENCES tutorial_lessons (lesson) ON DELETE CASCADE,
    step             TEXT NOT NULL,
    completed_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (lesson, step)
) STRICT;

-- In a real vault: the user's newest tutorial progress (read from their sandbox), waiting to be
-- pushed to the server. The only thing of the tutorial that ever leaves the workstation.
CREATE TABLE training_outbox (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    op_id          TEXT NOT NULL,
    sequence       INTEGER NOT NULL,
    progress       TEXT NOT NULL,
    queued_at_ms   INTEGER NOT NULL
) STRICT;
-- The user's role on the server, as it said at sign-in (a trainee's real vault shows the tutorial).
ALTER TABLE server_account ADD COLUMN role TEXT;

CREATE TABLE training_sent (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    sequence  INTEGER NOT NULL,
    progress  TEXT NOT NULL
) STRICT;
"#,
    // 11: a download's parts are sealed (AES-256-GCM) in a file of its own in the vault's parts/
    // folder instead of in database pages (see downloads.rs); the file's key, and each part's
    // place in it and nonce, stay here. A file's key row goes with its download's last part.
    r#"
CREATE TABLE download_files (
    sha256     TEXT PRIMARY KEY,
    file_name  TEXT NOT NULL UNIQUE,
    file_key   BLOB NOT NULL CHECK (length(file_key) = 32)
) STRICT;
ALTER TABLE download_parts ADD COLUMN file_offset INTEGER CHECK (file_offset >= 0);
ALTER TABLE download_parts ADD COLUMN nonce BLOB CHECK (nonce IS NULL OR length(nonce) = 12);
CREATE TRIGGER download_files_follow_parts AFTER DELETE ON download_parts
WHEN NOT EXISTS (SELECT 1 FROM download_parts WHERE sha256 = OLD.sha256)
BEGIN
    DELETE FROM download_files WHERE sha256 = OLD.sha256;
END;
"#,
    // 12: downloads share pack files: each writer (a download thread) appends the parts of the
    // documents it downloads to a pack of its own, so a first sync makes a few files instead of
    // one per document (see downloads.rs). Each part names its file; each download keeps its own
    // key, so deleting a document's key row still makes its bytes unreadable while the rest of
    // its pack is kept. The byte ranges of dropped parts are noted so their space is given back
    // (a hole punched in the pack).
    r#"
CREATE TABLE download_keys (
    sha256    TEXT PRIMARY KEY,
    file_key  BLOB NOT NULL CHECK (length(file_key) = 32)
) STRICT;
-- Only downloads with parts keep a key (schema 11 could leave a key row whose first part never
-- was recorded).
INSERT INTO download_keys (sha256, file_key)
    SELECT sha256, file_key FROM download_files
     WHERE sha256 IN (SELECT sha256 FROM download_parts);
ALTER TABLE download_parts ADD COLUMN file_name TEXT;
UPDATE download_parts
   SET file_name = (SELECT f.file_name FROM download_files f WHERE f.sha256 = download_parts.sha256)
 WHERE file_offset IS NOT NULL;
CREATE INDEX download_parts_by_file ON download_parts (file_name, file_offset) WHERE file_name IS NOT NULL;
DROP TRIGGER download_files_follow_parts;
DROP TABLE download_files;

CREATE TABLE dropped_part_ranges (
    file_name    TEXT NOT NULL,
    file_offset  INTEGER NOT NULL CHECK (file_offset >= 0),
    length       INTEGER NOT NULL CHECK (length > 0)
) STRICT;
-- 16: the AES-GCM tag after each sealed part.
CREATE TRIGGER download_keys_follow_parts AFTER DELETE ON download_parts
BEGIN
    INSERT INTO dropped_part_ranges (file_name, file_offset, length)
        SELECT OLD.file_name, OLD.file_offset, OLD.size + 16
         WHERE OLD.file_name IS NOT NULL AND OLD.file_offset IS NOT NULL;
    DELETE FROM download_keys
     WHERE sha256 = OLD.sha256
       AND NOT EXISTS (SELECT 1 FROM download_parts WHERE sha256 = OLD.sha256);
END;
"#,
    // 13: what the user must be told about a document the server took back (its assignment
    // ended): its title, and the changes made here that went with it; kept until read.
    r#"
CREATE TABLE purge_notices (
    id                     INTEGER PRIMARY KEY,
    at_ms                  INTEGER NOT NULL,
    title                  TEXT NOT NULL,
    discarded_annotations  INTEGER NOT NULL CHECK (discarded_annotations >= 0),
    discarded_revisions    INTEGER NOT NULL CHECK (discarded_revisions >= 0),
    refused                TEXT
) STRICT;
"#,
    // 14: a signing batch keeps the documents it was started with, so an interrupted one (the
    // process died, or the user stopped it) can be offered again and finished; it is ended once
    // a run has tried every document, or the user lets it go.
    r#"
-- revision_at_start: the document's newest revision when the batch started; one signed after it
-- outside the batch is not offered again.
CREATE TABLE signing_batch_documents (
    batch_id           TEXT NOT NULL REFERENCES signing_batches (id),
    document_id        TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    position           INTEGER NOT NULL,
    revision_at_start  INTEGER NOT NULL,
    PRIMARY KEY (batch_id, document_id)
) STRICT;
ALTER TABLE signing_batches ADD COLUMN ended_at_ms INTEGER;
-- Batches of earlier versions do not know their documents: none is offered again.
UPDATE signing_batches SET ended_at_ms = created_at_ms;
"#,
    // 15: annotation changes the server refused because their document was no longer the user's:
    // held (not offered again, so they do not hold up the outbox) until a pull shows the document
    // the user's again — then offered again — or purges it — then told as discarded.
    r#"
CREATE TABLE held_annotation_changes (
    annotation_id  TEXT PRIMARY KEY REFERENCES annotations (id) ON DELETE CASCADE,
    logical_clock  INTEGER NOT NULL
) STRICT;
"#,
    // 16: a key's certificate request waits for the next sync when the server cannot be reached;
    // the CA's refusal, if it refuses, is kept for the user to read.
    r#"
ALTER TABLE signing_keys ADD COLUMN certificate_requested_at_ms INTEGER;
ALTER TABLE signing_keys ADD COLUMN certificate_refusal TEXT;
"#,
    // 17: a purge notice names the local document that was purged, so its sync state reads
    // "purged" until the user has read the notice (notices of earlier versions name none).
    r#"
ALTER TABLE purge_notices ADD COLUMN document_id TEXT;
"#,
    // 18: when a sync takes the server's head whole in place of the bytes first taken, revision 0
    // is that head: when it was taken (NULL: revision 0 is still the file first imported or
    // downloaded).
    r#"
ALTER TABLE documents ADD COLUMN head_taken_whole_at_ms INTEGER;
-- An unfinished batch whose document's revisions were renumbered by an earlier version counts
-- from the document's newest revision.
UPDATE signing_batch_documents
   SET revision_at_start = (SELECT COALESCE(MAX(u.revision), 0) FROM document_updates u
                             WHERE u.document_id = signing_batch_documents.document_id)
 WHERE revision_at_start > (SELECT COALESCE(MAX(u.revision), 0) FROM document_updates u
                             WHERE u.document_id = signing_batch_documents.document_id);
"#,
];

fn migrations() -> Migrations<'static> {
    Migrations::new(STEPS.iter().map(|sql| M::up(sql)).collect())
}

/// The schema version this build writes.
pub(crate) fn latest_version() -> i64 {
    STEPS.len() as i64
}

/// Brings `conn` to the latest schema, or refuses (without writing) a vault from a newer Outpost.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), VaultError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > latest_version() {
        return Err(VaultError::NewerSchema {
            found,
            supported: latest_version(),
        });
    }
    migrations()
        .to_latest(conn)
        .map_err(|e| VaultError::Migration(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(migrations().validate().is_ok());
    }
}
