//! Documents: bytes, metadata and page text, stored in one transaction with their audit entry.

use rusqlite::{OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use crate::audit::{self, AuditAction, AuditEvent, AuditOutcome};
use crate::{Vault, VaultError};

/// A document's id in the vault (a UUID in text form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocumentId(pub String);

impl std::fmt::Display for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the vault knows about a document, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentSummary {
    /// Id.
    pub id: DocumentId,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    /// Title from the PDF's metadata, else its first line of text.
    pub title: String,
    /// Number of pages.
    pub page_count: u32,
    /// Size of the PDF in bytes.
    pub byte_size: u64,
    /// The file name it arrived under.
    pub source_name: String,
    /// When it was imported (wall clock, for people).
    pub imported_at_ms: i64,
}

impl DocumentSummary {
    const COLUMNS: &'static str =
        "id, sha256, title, page_count, byte_size, source_name, imported_at_ms";

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Self::from_row_at(r, 0)
    }

    /// Reads the columns of [`Self::COLUMNS`] starting at column `first`.
    fn from_row_at(r: &Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            id: DocumentId(r.get(first)?),
            sha256: r.get(first + 1)?,
            title: r.get(first + 2)?,
            page_count: r.get(first + 3)?,
            byte_size: r.get::<_, i64>(first + 4)?.max(0) as u64,
            source_name: r.get(first + 5)?,
            imported_at_ms: r.get(first + 6)?,
        })
    }
}

/// A validated PDF ready to be stored.
#[derive(Debug, Clone)]
pub struct NewDocument<'a> {
    /// The id to give it if it is new.
    pub id: DocumentId,
    /// The PDF.
    pub bytes: &'a [u8],
    /// SHA-256 of `bytes`, lower-case hex.
    pub sha256: String,
    /// Its title.
    pub title: String,
    /// Text of each page, first page first.
    pub page_texts: Vec<String>,
    /// The file name it arrived under.
    pub source_name: String,
}

/// What the document list shows about a document besides its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentMarks {
    /// The document.
    pub document_id: DocumentId,
    /// Whether it was ever opened here (else it is new).
    pub opened: bool,
    /// Its annotations (deleted ones not counted).
    pub annotations: u32,
    /// Signed here by this vault's user.
    pub signed: bool,
    /// Not signed here yet while the user holds a certified signing key in the vault: it awaits
    /// their signature. (A key on a hardware token is not known to the vault.)
    pub awaiting_signature: bool,
}

/// The result of storing a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "document", rename_all = "snake_case")]
pub enum StoredImport {
    /// It was new and is now stored.
    Imported(DocumentSummary),
    /// The same bytes were already stored; nothing new was written but the audit entry.
    Duplicate(DocumentSummary),
}

impl StoredImport {
    /// The stored document, new or existing.
    pub fn document(&self) -> &DocumentSummary {
        match self {
            Self::Imported(d) | Self::Duplicate(d) => d,
        }
    }
}

/// What an inbox claim led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntakeOutcome {
    /// The file became a new document.
    Imported,
    /// The file's bytes were already in the vault.
    Duplicate,
}

/// The vault's record that an inbox file was taken in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeClaimRecord {
    /// The claim id the inbox gave the file.
    pub claim_id: String,
    /// The name it had in the inbox.
    pub source_name: String,
    /// Imported or duplicate.
    pub outcome: IntakeOutcome,
    /// The document it is (or duplicates).
    pub document_id: DocumentId,
}

/// The document whose unique column `column` (`id` or `sha256`) equals `value`.
pub(crate) fn find_document(
    conn: &rusqlite::Connection,
    column: &'static str,
    value: &str,
) -> Result<Option<DocumentSummary>, VaultError> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {} FROM documents WHERE {column} = ?1",
                DocumentSummary::COLUMNS
            ),
            [value],
            DocumentSummary::from_row,
        )
        .optional()?)
}

/// Inserts a document (bytes, page index, document index) inside `tx`, or finds the stored one
/// with the same bytes. No audit entry: the caller writes the one that says why.
pub(crate) fn insert_document(
    tx: &rusqlite::Transaction<'_>,
    doc: &NewDocument<'_>,
    now: i64,
) -> Result<StoredImport, VaultError> {
    insert_document_from(tx, doc, Content::Bytes(doc.bytes), now)
}

/// Where a new document's bytes come from.
pub(crate) enum Content<'a> {
    /// These bytes.
    Bytes(&'a [u8]),
    /// The complete download held under the document's SHA-256 (its parts become the
    /// document's bytes where they are).
    Downloaded,
}

/// [`insert_document`] with the bytes from `content` (`doc.bytes` is not read).
pub(crate) fn insert_document_from(
    tx: &rusqlite::Transaction<'_>,
    doc: &NewDocument<'_>,
    content: Content<'_>,
    now: i64,
) -> Result<StoredImport, VaultError> {
    let existing = find_document(tx, "sha256", &doc.sha256)?;
    Ok(match existing {
        Some(existing) => StoredImport::Duplicate(existing),
        None => {
            let byte_size = match content {
                Content::Bytes(bytes) => bytes.len() as u64,
                Content::Downloaded => match crate::downloads::held(tx, &doc.sha256)? {
                    0 => {
                        return Err(VaultError::DownloadIncomplete {
                            sha256: doc.sha256.clone(),
                            held: 0,
                        })
                    }
                    held => held,
                },
            };
            tx.execute(
                "INSERT INTO documents (id, sha256, title, page_count, byte_size, source_name, imported_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    doc.id.0,
                    doc.sha256,
                    doc.title,
                    doc.page_texts.len() as i64,
                    i64::try_from(byte_size).unwrap_or(i64::MAX),
                    doc.source_name,
                    now
                ],
            )?;
            let document_row = tx.last_insert_rowid();
            match content {
                Content::Bytes(bytes) => {
                    tx.execute(
                        "INSERT INTO document_bytes (document_id, bytes) VALUES (?1, ?2)",
                        rusqlite::params![doc.id.0, bytes],
                    )?;
                }
                Content::Downloaded => {
                    // The parts stay where they are and become the document's bytes.
                    tx.execute(
                        "INSERT INTO document_bytes (document_id, bytes, parts_sha256) VALUES (?1, x'', ?2)",
                        rusqlite::params![doc.id.0, doc.sha256],
                    )?;
                }
            }
            if doc.page_texts.len() >= crate::search::MAX_PAGES {
                return Err(VaultError::TooManyPages {
                    pages: doc.page_texts.len(),
                    limit: crate::search::MAX_PAGES - 1,
                });
            }
            {
                let mut insert = tx.prepare(
                    "INSERT INTO page_index (rowid, text, document_id, page_no)
                     VALUES (?1, ?2, ?3, ?4)",
                )?;
                for (i, text) in doc.page_texts.iter().enumerate() {
                    let page_no = i as i64 + 1;
                    insert.execute(rusqlite::params![
                        crate::search::page_rowid(document_row, page_no),
                        text,
                        doc.id.0,
                        page_no
                    ])?;
                }
            }
            tx.execute(
                "INSERT INTO document_index (rowid, text) VALUES (?1, ?2)",
                rusqlite::params![document_row, doc.page_texts.join("\n\n")],
            )?;
            StoredImport::Imported(DocumentSummary {
                id: doc.id.clone(),
                sha256: doc.sha256.clone(),
                title: doc.title.clone(),
                page_count: doc.page_texts.len() as u32,
                byte_size,
                source_name: doc.source_name.clone(),
                imported_at_ms: now,
            })
        }
    })
}

/// Removes a document and everything about it inside `tx` (see [`Vault::purge_document`]).
pub(crate) fn purge_in(
    tx: &rusqlite::Transaction<'_>,
    id: &DocumentId,
) -> Result<DocumentSummary, VaultError> {
    let found: Option<(i64, DocumentSummary)> = tx
        .query_row(
            &format!(
                "SELECT rowid, {} FROM documents WHERE id = ?1",
                DocumentSummary::COLUMNS
            ),
            [&id.0],
            |r| Ok((r.get::<_, i64>(0)?, DocumentSummary::from_row_at(r, 1)?)),
        )
        .optional()?;
    let Some((document_row, summary)) = found else {
        return Err(VaultError::DocumentNotFound(id.0.clone()));
    };
    tx.execute(
        "DELETE FROM page_index WHERE rowid BETWEEN ?1 AND ?2",
        rusqlite::params![
            crate::search::page_rowid(document_row, 0),
            crate::search::page_rowid(document_row, crate::search::MAX_PAGES as i64 - 1)
        ],
    )?;
    tx.execute(
        "DELETE FROM document_index WHERE rowid = ?1",
        [document_row],
    )?;
    tx.execute("DELETE FROM intake_claims WHERE document_id = ?1", [&id.0])?;
    tx.execute(
        "DELETE FROM download_parts WHERE sha256 =
           (SELECT parts_sha256 FROM document_bytes WHERE document_id = ?1)",
        [&id.0],
    )?;
    // Bytes, revisions, annotations, batch items and server links go with the row (ON DELETE
    // CASCADE).
    tx.execute("DELETE FROM documents WHERE id = ?1", [&id.0])?;
    Ok(summary)
}

impl Vault {
    /// Stores `doc` with its audit entry in one transaction. When `claim_id` is given (inbox intake)
    /// the claim is recorded in the same transaction, so a crash can never leave it half-done.
    pub fn store_document(
        &mut self,
        doc: &NewDocument<'_>,
        claim_id: Option<&str>,
    ) -> Result<StoredImport, VaultError> {
        let now = self.clock.now_ms();
        let tx = self.conn.transaction()?;
        let stored = insert_document(&tx, doc, now)?;
        let (outcome, intake) = match &stored {
            StoredImport::Imported(_) => (AuditOutcome::Success, "imported"),
            StoredImport::Duplicate(_) => (AuditOutcome::Duplicate, "duplicate"),
        };
        if let Some(claim_id) = claim_id {
            tx.execute(
                "INSERT INTO intake_claims (claim_id, source_name, outcome, document_id, recorded_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![claim_id, doc.source_name, intake, stored.document().id.0, now],
            )?;
        }
        audit::append(
            &tx,
            now,
            &self.user,
            &AuditEvent::new(AuditAction::Import, outcome)
                .document(stored.document().id.0.clone())
                .detail(format!("from '{}'", doc.source_name)),
        )?;
        tx.commit()?;
        if matches!(stored, StoredImport::Imported(_)) {
            self.note_documents_indexed(1, true);
        }
        Ok(stored)
    }

    /// Removes a document and everything about it — bytes, revisions, search entries (page and
    /// document index), annotations, batch items, intake records — in one transaction with its
    /// audit entry, which says why (`reason`). The audit chain keeps the earlier entries that name
    /// the document; nothing else of it stays. With `secure_delete` on, the freed pages are
    /// overwritten.
    pub fn purge_document(
        &mut self,
        id: &DocumentId,
        reason: &str,
    ) -> Result<DocumentSummary, VaultError> {
        let now = self.clock.now_ms();
        let tx = self.conn.transaction()?;
        let summary = purge_in(&tx, id)?;
        audit::append(
            &tx,
            now,
            &self.user,
            &AuditEvent::new(AuditAction::Purge, AuditOutcome::Success)
                .document(id.0.clone())
                .detail(reason.to_owned()),
        )?;
        tx.commit()?;
        self.forget_unowned_part_files();
        Ok(summary)
    }

    /// Whether an inbox claim was committed, and what it led to.
    pub fn intake_claim(&self, claim_id: &str) -> Result<Option<IntakeClaimRecord>, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT claim_id, source_name, outcome, document_id FROM intake_claims WHERE claim_id = ?1",
                [claim_id],
                |r| {
                    let outcome: String = r.get(2)?;
                    Ok(IntakeClaimRecord {
                        claim_id: r.get(0)?,
                        source_name: r.get(1)?,
                        outcome: if outcome == "imported" {
                            IntakeOutcome::Imported
                        } else {
                            IntakeOutcome::Duplicate
                        },
                        document_id: DocumentId(r.get(3)?),
                    })
                },
            )
            .optional()?)
    }

    /// All documents, most recently imported first (by insertion order, not by clock).
    pub fn documents(&self) -> Result<Vec<DocumentSummary>, VaultError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM documents ORDER BY rowid DESC",
            DocumentSummary::COLUMNS
        ))?;
        let rows = stmt.query_map([], DocumentSummary::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records that `id` was opened (the first time counts; later ones change nothing).
    pub fn mark_opened(&self, id: &DocumentId) -> Result<(), VaultError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO document_reads (document_id, first_opened_at_ms) VALUES (?1, ?2)",
            rusqlite::params![id.0, self.clock.now_ms()],
        )?;
        Ok(())
    }

    /// For each document: whether it was ever opened here and how many annotations it has
    /// (deleted ones not counted), for the list's badges.
    pub fn document_marks(&self) -> Result<Vec<DocumentMarks>, VaultError> {
        let mut statement = self.conn.prepare(
            "SELECT d.id,
                    EXISTS (SELECT 1 FROM document_reads r WHERE r.document_id = d.id),
                    (SELECT COUNT(*) FROM annotations a WHERE a.document_id = d.id AND a.deleted = 0),
                    EXISTS (SELECT 1 FROM document_updates u WHERE u.document_id = d.id AND u.cause = 'signed')
               FROM documents d ORDER BY d.rowid DESC",
        )?;
        let can_sign: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM signing_keys WHERE certificate IS NOT NULL)",
            [],
            |r| r.get(0),
        )?;
        let rows = statement.query_map([], |r| {
            let signed: bool = r.get(3)?;
            Ok(DocumentMarks {
                document_id: DocumentId(r.get(0)?),
                opened: r.get(1)?,
                annotations: r.get(2)?,
                signed,
                awaiting_signature: can_sign && !signed,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One document's metadata.
    pub fn document(&self, id: &DocumentId) -> Result<DocumentSummary, VaultError> {
        find_document(&self.conn, "id", &id.0)?
            .ok_or_else(|| VaultError::DocumentNotFound(id.0.clone()))
    }

    /// The document with these bytes, if stored.
    pub fn document_by_sha256(&self, sha256: &str) -> Result<Option<DocumentSummary>, VaultError> {
        find_document(&self.conn, "sha256", sha256)
    }

    /// The extracted text of one page (1-based).
    pub fn page_text(&self, id: &DocumentId, page_no: u32) -> Result<String, VaultError> {
        self.conn
            .query_row(
                "SELECT text FROM page_index WHERE document_id = ?1 AND page_no = ?2",
                rusqlite::params![id.0, page_no],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| VaultError::DocumentNotFound(format!("{id} page {page_no}")))
    }
}
