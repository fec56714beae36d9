//! Document revisions: a document's bytes grow only by incremental updates (burned-in
//! annotations, signatures). Revision 0 is the file imported or first downloaded (or the server's
//! head, taken whole in its place by a sync); each later revision stores just the bytes it
//! appends, so every earlier revision is an exact prefix of the head.

use rusqlite::OptionalExtension;
use serde::Serialize;

use crate::audit::{self, AuditEvent};
use crate::{DocumentId, Vault, VaultError, VaultReader};

/// Document `id`'s current bytes as `conn` sees them: the imported (or downloaded) file followed
/// by every update.
fn read_document_bytes(
    conn: &rusqlite::Connection,
    parts_folder: &std::path::Path,
    id: &DocumentId,
) -> Result<Vec<u8>, VaultError> {
    let (mut bytes, parts): (Vec<u8>, Option<String>) = conn
        .query_row(
            "SELECT bytes, parts_sha256 FROM document_bytes WHERE document_id = ?1",
            [&id.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| VaultError::DocumentNotFound(id.0.clone()))?;
    if let Some(parts) = parts {
        // A downloaded document: its bytes are the parts it arrived in.
        crate::downloads::for_each_part(conn, parts_folder, &parts, |part| {
            bytes.extend_from_slice(part);
            Ok(())
        })?;
    }
    let mut stmt = conn.prepare_cached(
        "SELECT appended FROM document_updates WHERE document_id = ?1 ORDER BY revision",
    )?;
    let mut rows = stmt.query([&id.0])?;
    while let Some(row) = rows.next()? {
        let appended: Vec<u8> = row.get(0)?;
        bytes.extend_from_slice(&appended);
    }
    Ok(bytes)
}

/// Document `id`'s newest revision and its bytes as `conn` sees them, read in one snapshot (a
/// revision another connection writes meanwhile is either in both or in neither).
fn read_head(
    conn: &rusqlite::Connection,
    parts_folder: &std::path::Path,
    id: &DocumentId,
) -> Result<(DocumentRevision, Vec<u8>), VaultError> {
    let tx = conn.unchecked_transaction()?;
    let latest = newest_revision(&tx, id)?;
    let bytes = read_document_bytes(&tx, parts_folder, id)?;
    tx.commit()?;
    Ok((latest, bytes))
}

/// The cause recorded for a revision taken from the server (the server's to replace), and for a
/// revision 0 that is the server's head taken whole.
pub(crate) const FROM_THE_SERVER: &str = "from the server";

/// Document `id`'s revision 0: the file first imported or downloaded, or the server's head if a
/// sync took it whole in place of that file.
fn first_revision(
    conn: &rusqlite::Connection,
    id: &DocumentId,
) -> Result<DocumentRevision, VaultError> {
    let first: Option<(String, i64, Option<i64>)> = conn
        .query_row(
            "SELECT sha256, imported_at_ms, head_taken_whole_at_ms FROM documents WHERE id = ?1",
            [&id.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let (sha256, imported_at_ms, taken_whole_at_ms) =
        first.ok_or_else(|| VaultError::DocumentNotFound(id.0.clone()))?;
    Ok(DocumentRevision {
        revision: 0,
        sha256,
        cause: match taken_whole_at_ms {
            Some(_) => FROM_THE_SERVER.into(),
            None => "imported".into(),
        },
        created_at_ms: taken_whole_at_ms.unwrap_or(imported_at_ms),
    })
}

/// The revision in a `document_updates` row read as (revision, sha256_after, cause,
/// created_at_ms).
fn update_revision(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocumentRevision> {
    Ok(DocumentRevision {
        revision: r.get(0)?,
        sha256: r.get(1)?,
        cause: r.get(2)?,
        created_at_ms: r.get(3)?,
    })
}

/// Document `id`'s newest revision (revision 0 when nothing was appended).
fn newest_revision(
    conn: &rusqlite::Connection,
    id: &DocumentId,
) -> Result<DocumentRevision, VaultError> {
    let first = first_revision(conn, id)?;
    Ok(conn
        .query_row(
            "SELECT revision, sha256_after, cause, created_at_ms FROM document_updates
                 WHERE document_id = ?1 ORDER BY revision DESC LIMIT 1",
            [&id.0],
            update_revision,
        )
        .optional()?
        .unwrap_or(first))
}

impl VaultReader {
    /// Document `id`'s newest revision and its bytes, read in one snapshot.
    pub fn head(&self, id: &DocumentId) -> Result<(DocumentRevision, Vec<u8>), VaultError> {
        read_head(&self.conn, &self.parts_folder, id)
    }
}

/// One revision of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentRevision {
    /// 0 for the file first imported or downloaded (or the server's head taken whole in its
    /// place), then 1, 2, …
    pub revision: i64,
    /// SHA-256 of the whole document at this revision.
    pub sha256: String,
    /// What made it: "imported", "signed", "from the server", …
    pub cause: String,
    /// When (wall clock, for people).
    pub created_at_ms: i64,
}

/// An update to append.
#[derive(Debug, Clone)]
pub struct DocumentUpdate<'a> {
    /// The document.
    pub document_id: &'a DocumentId,
    /// The revision the update was made on; if the head moved since, nothing is written.
    pub base_revision: i64,
    /// SHA-256 of that revision's whole bytes, as the writer read them: checked too, since the
    /// server's head can take the place of a revision under the same number (see
    /// `ServerHead::keep_revision`).
    pub base_sha256: &'a str,
    /// The bytes the update appends.
    pub appended: &'a [u8],
    /// SHA-256 (lower-case hex) of the whole document with the update appended, as the writer
    /// computed it over the bytes it made.
    pub sha256_after: &'a str,
    /// What it is, for the revision list ("signed", …).
    pub cause: &'a str,
    /// Annotations whose objects the update carries (burned in).
    pub burned_annotations: &'a [String],
    /// The signing batch this update belongs to, recorded with it.
    pub batch_id: Option<&'a str>,
    /// The audit entry to commit with it.
    pub audit: AuditEvent,
}

impl Vault {
    /// The document's current bytes: the imported file followed by every update, in memory only.
    pub fn document_bytes(&self, id: &DocumentId) -> Result<Vec<u8>, VaultError> {
        read_document_bytes(&self.conn, &self.parts_folder(), id)
    }

    /// Document `id`'s newest revision and its bytes, read in one snapshot.
    pub fn document_head(
        &self,
        id: &DocumentId,
    ) -> Result<(DocumentRevision, Vec<u8>), VaultError> {
        read_head(&self.conn, &self.parts_folder(), id)
    }

    /// The document's revisions, oldest first.
    pub fn document_revisions(&self, id: &DocumentId) -> Result<Vec<DocumentRevision>, VaultError> {
        let mut revisions = vec![first_revision(&self.conn, id)?];
        let mut stmt = self.conn.prepare(
            "SELECT revision, sha256_after, cause, created_at_ms FROM document_updates
             WHERE document_id = ?1 ORDER BY revision",
        )?;
        let rows = stmt.query_map([&id.0], update_revision)?;
        for row in rows {
            revisions.push(row?);
        }
        Ok(revisions)
    }

    /// Appends one incremental update as the next revision, marks the annotations it burned in,
    /// and commits the audit entry — all in one transaction. Returns the new revision.
    pub fn append_document_update(
        &mut self,
        update: &DocumentUpdate<'_>,
    ) -> Result<DocumentRevision, VaultError> {
        let now = self.clock.now_ms();
        let tx = self.conn.transaction()?;
        let head = newest_revision(&tx, update.document_id)?;
        let current = head.revision;
        if current != update.base_revision || head.sha256 != update.base_sha256 {
            return Err(VaultError::DocumentChanged {
                id: update.document_id.0.clone(),
                expected: update.base_revision,
                found: current,
            });
        }
        let sha256 = update.sha256_after.to_owned();
        let revision = current + 1;
        tx.execute(
            "INSERT INTO document_updates (document_id, revision, appended, sha256_after, cause, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                update.document_id.0,
                revision,
                update.appended,
                sha256,
                update.cause,
                now
            ],
        )?;
        for annotation in update.burned_annotations {
            tx.execute(
                "UPDATE annotations SET burned_revision = ?1 WHERE id = ?2 AND document_id = ?3",
                rusqlite::params![revision, annotation, update.document_id.0],
            )?;
        }
        if let Some(batch) = update.batch_id {
            tx.execute(
                "INSERT INTO signing_batch_items (batch_id, document_id, revision) VALUES (?1, ?2, ?3)",
                rusqlite::params![batch, update.document_id.0, revision],
            )?;
        }
        if update.cause == "signed" {
            // Signing again is the answer to a lost conflict.
            tx.execute(
                "DELETE FROM resign_requests WHERE document_id = ?1",
                [&update.document_id.0],
            )?;
        }
        audit::append(&tx, now, &self.user, &update.audit)?;
        tx.commit()?;
        Ok(DocumentRevision {
            revision,
            sha256,
            cause: update.cause.to_owned(),
            created_at_ms: now,
        })
    }
}

impl Vault {
    /// Records a signing batch of `documents` (signed with `key`: a vault key's id or a token
    /// key's PKCS #11 URI) and its one audit entry, unless it was started before (a rerun).
    /// Returns whether it is new.
    pub fn start_signing_batch(
        &mut self,
        id: &str,
        key: &str,
        reason: &str,
        documents: &[&DocumentId],
        audit: &AuditEvent,
    ) -> Result<bool, VaultError> {
        let now = self.clock.now_ms();
        let tx = self.conn.transaction()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO signing_batches (id, key_id, reason, total, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![id, key, reason, documents.len() as i64, now],
        )?;
        if inserted == 1 {
            // A document that is not here is not kept (its signing fails alone).
            let mut add = tx.prepare(
                "INSERT OR IGNORE INTO signing_batch_documents
                   (batch_id, document_id, position, revision_at_start)
                 SELECT ?1, ?2, ?3, (SELECT COALESCE(MAX(revision), 0) FROM document_updates
                                      WHERE document_id = ?2)
                  WHERE EXISTS (SELECT 1 FROM documents WHERE id = ?2)",
            )?;
            for (position, document) in documents.iter().enumerate() {
                add.execute(rusqlite::params![id, document.0, position as i64])?;
            }
            drop(add);
            audit::append(&tx, now, &self.user, audit)?;
        }
        tx.commit()?;
        Ok(inserted == 1)
    }

    /// Ends batch `id`: a run tried every document, or the user let the rest go. It is not
    /// offered again.
    pub fn end_signing_batch(&mut self, id: &str) -> Result<(), VaultError> {
        let now = self.clock.now_ms();
        self.conn.execute(
            "UPDATE signing_batches SET ended_at_ms = ?2 WHERE id = ?1 AND ended_at_ms IS NULL",
            rusqlite::params![id, now],
        )?;
        Ok(())
    }

    /// The batches that were started and not ended (the process died, or the user stopped one)
    /// and have documents left — still here, not signed by the batch — oldest first.
    pub fn unfinished_signing_batches(&self) -> Result<Vec<UnfinishedBatch>, VaultError> {
        let mut batches = self.conn.prepare(
            "SELECT id, key_id, reason, total, created_at_ms FROM signing_batches
              WHERE ended_at_ms IS NULL ORDER BY created_at_ms, id",
        )?;
        let started = batches
            .query_map([], signing_batch_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let mut unfinished = Vec::with_capacity(started.len());
        for batch in started {
            let documents_left = self.signing_batch_documents_left(&batch.id)?;
            // One that died after its last document has nothing to offer.
            if !documents_left.is_empty() {
                unfinished.push(UnfinishedBatch {
                    batch,
                    documents_left,
                });
            }
        }
        Ok(unfinished)
    }

    /// The documents of batch `id` still here that it has not signed and that were not signed
    /// otherwise since it started, in the batch's order.
    pub fn signing_batch_documents_left(&self, id: &str) -> Result<Vec<DocumentId>, VaultError> {
        let mut left = self.conn.prepare_cached(
            "SELECT d.document_id FROM signing_batch_documents d
              WHERE d.batch_id = ?1
                AND NOT EXISTS (SELECT 1 FROM signing_batch_items i
                                 WHERE i.batch_id = d.batch_id AND i.document_id = d.document_id)
                AND NOT EXISTS (SELECT 1 FROM document_updates u
                                 WHERE u.document_id = d.document_id AND u.cause = 'signed'
                                   AND u.revision > d.revision_at_start)
              ORDER BY d.position",
        )?;
        let rows = left.query_map([id], |r| Ok(DocumentId(r.get(0)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Batch `id` as it was started, if it was.
    pub fn signing_batch(&self, id: &str) -> Result<Option<SigningBatch>, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, key_id, reason, total, created_at_ms FROM signing_batches WHERE id = ?1",
                [id],
                signing_batch_from_row,
            )
            .optional()?)
    }

    /// The revision a batch made of a document, if that document of the batch is done.
    pub fn batch_item(
        &self,
        batch_id: &str,
        document_id: &DocumentId,
    ) -> Result<Option<i64>, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT revision FROM signing_batch_items WHERE batch_id = ?1 AND document_id = ?2",
                rusqlite::params![batch_id, document_id.0],
                |r| r.get(0),
            )
            .optional()?)
    }
}

fn signing_batch_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SigningBatch> {
    Ok(SigningBatch {
        id: r.get(0)?,
        key: r.get(1)?,
        reason: r.get(2)?,
        total: r.get(3)?,
        started_at_ms: r.get(4)?,
    })
}

/// A batch that was started and not ended, with what it has left to sign.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnfinishedBatch {
    /// The batch as it was started.
    #[serde(flatten)]
    pub batch: SigningBatch,
    /// Its documents still here that it has not signed, in the batch's order.
    pub documents_left: Vec<DocumentId>,
}

/// A batch signing run as it was started (its documents are recorded as each is signed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SigningBatch {
    /// The batch's id.
    pub id: String,
    /// The key it was first started with: a vault key's id, or a token key's PKCS #11 URI
    /// (RFC 7512). A rerun of the batch keeps this record as it was.
    pub key: String,
    /// The reason given once for every document.
    pub reason: String,
    /// Documents in the batch.
    pub total: i64,
    /// When it was first started (a rerun finishes it under the same record).
    pub started_at_ms: i64,
}

impl Vault {
    /// The documents with no signed revision yet, newest import first.
    pub fn unsigned_documents(&self) -> Result<Vec<DocumentId>, VaultError> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM documents d WHERE NOT EXISTS (
                 SELECT 1 FROM document_updates u WHERE u.document_id = d.id AND u.cause = 'signed')
             ORDER BY d.imported_at_ms DESC, d.rowid DESC",
        )?;
        let rows = stmt.query_map([], |r| Ok(DocumentId(r.get(0)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
