//! Annotation records: one row per annotation, with a revision counter, a logical clock and a
//! deletion tombstone, so that sync can merge them one annotation at a time.
//!
//! The vault stores an annotation's content as an opaque JSON body (its geometry, colour and text
//! are the PDF engine's business) next to the columns it needs to find, order and merge records.
//! Every change is one transaction together with its audit entry.

use rusqlite::{OptionalExtension, Row};
use serde::Serialize;

use crate::audit::{self, AuditAction, AuditEvent, AuditOutcome};
use crate::{DocumentId, Vault, VaultError};

/// One stored annotation, as the vault holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnnotationRecord {
    /// Stable id (a UUID).
    pub id: String,
    /// The document it belongs to.
    pub document_id: DocumentId,
    /// Its page, 1-based.
    pub page_no: u32,
    /// Its kind's stable name (for listing without parsing bodies).
    pub kind: String,
    /// Who created it.
    pub author: String,
    /// The annotation itself, as JSON.
    pub body: String,
    /// 1 when created, one more with every change (an edit, a delete, an undo).
    pub revision: i64,
    /// The vault's logical clock at the last change: merges order changes by this, never by
    /// wall-clock time.
    pub logical_clock: i64,
    /// The vault (device) that made the last change; breaks ties between equal clocks.
    pub origin: String,
    /// A tombstone: deleted annotations stay as records so the deletion can sync.
    pub deleted: bool,
    /// When it was created (wall clock, for people).
    pub created_at_ms: i64,
    /// When it last changed (wall clock, for people).
    pub modified_at_ms: i64,
    /// The document revision it was burned into (before signing), if any: from then on it is
    /// part of the signed bytes.
    pub burned_revision: Option<i64>,
}

impl AnnotationRecord {
    const COLUMNS: &'static str = "id, document_id, page_no, kind, author, body, revision, \
         logical_clock, origin, deleted, created_at_ms, modified_at_ms, burned_revision";

    /// How many columns [`Self::COLUMNS`] names.
    pub(crate) const COLUMN_COUNT: usize = 13;

    /// [`Self::COLUMNS`], each qualified with table alias `alias`.
    pub(crate) fn prefixed_columns(alias: &str) -> String {
        Self::COLUMNS
            .split(',')
            .map(|c| format!("{alias}.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            document_id: DocumentId(r.get(1)?),
            page_no: r.get(2)?,
            kind: r.get(3)?,
            author: r.get(4)?,
            body: r.get(5)?,
            revision: r.get(6)?,
            logical_clock: r.get(7)?,
            origin: r.get(8)?,
            deleted: r.get::<_, i64>(9)? != 0,
            created_at_ms: r.get(10)?,
            modified_at_ms: r.get(11)?,
            burned_revision: r.get(12)?,
        })
    }
}

/// A change to write: the new state of one annotation.
#[derive(Debug, Clone)]
pub struct AnnotationWrite<'a> {
    /// The annotation's id.
    pub id: &'a str,
    /// Its document.
    pub document_id: &'a DocumentId,
    /// Its page.
    pub page_no: u32,
    /// Its kind's stable name.
    pub kind: &'a str,
    /// Its author (kept from creation; a change by someone else does not make it theirs).
    pub author: &'a str,
    /// Its new body.
    pub body: &'a str,
    /// Whether it is now deleted.
    pub deleted: bool,
    /// The revision the writer last saw: `None` to create, `Some(r)` to change revision `r`.
    /// A different current revision means someone else changed it first; nothing is written.
    pub expected_revision: Option<i64>,
    /// What happened, for the audit chain (for example "edited highlight on page 3").
    pub audit_detail: String,
}

impl Vault {
    /// Writes one annotation change and its audit entry in one transaction, and returns the
    /// stored record. The revision goes up by one and the vault's logical clock ticks.
    pub fn write_annotation(
        &mut self,
        write: &AnnotationWrite<'_>,
    ) -> Result<AnnotationRecord, VaultError> {
        let now = self.clock.now_ms();
        let origin = self.vault_id().to_string();
        let tx = self.conn.transaction()?;
        let current: Option<(i64, i64)> = tx
            .query_row(
                "SELECT revision, created_at_ms FROM annotations WHERE id = ?1",
                [write.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (revision, created_at_ms) = match (current, write.expected_revision) {
            (None, None) => (1, now),
            (Some((found, created)), Some(expected)) if found == expected => (found + 1, created),
            (Some((found, _)), expected) => {
                return Err(VaultError::AnnotationChanged {
                    id: write.id.to_owned(),
                    expected,
                    found: Some(found),
                })
            }
            (None, Some(expected)) => {
                return Err(VaultError::AnnotationChanged {
                    id: write.id.to_owned(),
                    expected: Some(expected),
                    found: None,
                })
            }
        };
        let clock: i64 = tx.query_row(
            "SELECT COALESCE(MAX(logical_clock), 0) + 1 FROM annotations",
            [],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO annotations (id, document_id, page_no, kind, author, body, revision,
                 logical_clock, origin, deleted, created_at_ms, modified_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (id) DO UPDATE SET page_no = excluded.page_no, body = excluded.body,
                 revision = excluded.revision, logical_clock = excluded.logical_clock,
                 origin = excluded.origin, deleted = excluded.deleted,
                 modified_at_ms = excluded.modified_at_ms",
            rusqlite::params![
                write.id,
                write.document_id.0,
                write.page_no,
                write.kind,
                write.author,
                write.body,
                revision,
                clock,
                origin,
                i64::from(write.deleted),
                created_at_ms,
                now
            ],
        )?;
        audit::append(
            &tx,
            now,
            &self.user,
            &AuditEvent::new(AuditAction::Annotate, AuditOutcome::Success)
                .document(write.document_id.0.clone())
                .detail(format!(
                    "{} (annotation {}, revision {revision})",
                    write.audit_detail, write.id
                )),
        )?;
        let record = tx.query_row(
            &format!(
                "SELECT {} FROM annotations WHERE id = ?1",
                AnnotationRecord::COLUMNS
            ),
            [write.id],
            AnnotationRecord::from_row,
        )?;
        tx.commit()?;
        Ok(record)
    }

    /// One annotation record, tombstones included.
    pub fn annotation(&self, id: &str) -> Result<Option<AnnotationRecord>, VaultError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {} FROM annotations WHERE id = ?1",
                    AnnotationRecord::COLUMNS
                ),
                [id],
                AnnotationRecord::from_row,
            )
            .optional()?)
    }

    /// A document's annotation records in page order, then creation order; tombstones only
    /// when `include_deleted`.
    pub fn annotations(
        &self,
        document_id: &DocumentId,
        include_deleted: bool,
    ) -> Result<Vec<AnnotationRecord>, VaultError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM annotations WHERE document_id = ?1 AND (?2 OR deleted = 0)
             ORDER BY page_no, rowid",
            AnnotationRecord::COLUMNS
        ))?;
        let rows = stmt.query_map(
            rusqlite::params![document_id.0, include_deleted],
            AnnotationRecord::from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
