//! The audit chain: an append-only log in which every entry carries the SHA-256 of the one before.

use rusqlite::{OptionalExtension, Transaction};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Vault, VaultError};

const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// The vault was created.
    VaultCreated,
    /// An unlock attempt (successful or not).
    Unlock,
    /// The vault was locked.
    Lock,
    /// A document was imported (or found to be a duplicate).
    Import,
    /// A file was refused by intake.
    Reject,
    /// A document was opened for viewing.
    View,
    /// A search was run.
    Search,
    /// Plaintext left the vault by an explicit export.
    Export,
    /// An annotation was created, edited, deleted or restored (undo and redo included).
    Annotate,
    /// A document was signed.
    Sign,
    /// A batch of documents was given to sign.
    SignBatch,
    /// A signing key, certificate or trust anchor was created or imported.
    KeyManagement,
    /// A document and everything about it were removed from the vault (its assignment was
    /// revoked, say).
    Purge,
    /// The vault was connected to a server (a device enrolled).
    ServerAccount,
    /// A document's revisions met the server's: its head was taken in, or local revisions that
    /// lost a conflict (kept on the server as a conflict branch) were set aside.
    SyncRevision,
    /// A document's signatures were validated (the result in the detail).
    Validate,
    /// The tutorial's practice server was stopped or started (detail "offline" or "online").
    PracticeServer,
    /// A setting of the user's was changed (the detail says which, and to what).
    Settings,
}

impl AuditAction {
    /// The stable name stored in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VaultCreated => "vault_created",
            Self::Unlock => "unlock",
            Self::Lock => "lock",
            Self::Import => "import",
            Self::Reject => "reject",
            Self::View => "view",
            Self::Search => "search",
            Self::Export => "export",
            Self::Annotate => "annotate",
            Self::Sign => "sign",
            Self::SignBatch => "sign_batch",
            Self::KeyManagement => "key_management",
            Self::Purge => "purge",
            Self::ServerAccount => "server_account",
            Self::SyncRevision => "sync_revision",
            Self::Validate => "validate",
            Self::PracticeServer => "practice_server",
            Self::Settings => "settings",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It worked.
    Success,
    /// It was refused or failed.
    Failure,
    /// The document was already in the vault.
    Duplicate,
}

impl AuditOutcome {
    /// The stable name stored in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Duplicate => "duplicate",
        }
    }
}

/// An entry about to be appended. Details must never hold secrets (passwords, keys, PINs).
#[derive(Debug, Clone)]
pub struct AuditEvent {
    action: AuditAction,
    outcome: AuditOutcome,
    document_id: Option<String>,
    detail: String,
}

impl AuditEvent {
    /// An event with no document and no detail.
    pub fn new(action: AuditAction, outcome: AuditOutcome) -> Self {
        Self {
            action,
            outcome,
            document_id: None,
            detail: String::new(),
        }
    }

    /// Names the document the event is about.
    pub fn document(mut self, id: impl Into<String>) -> Self {
        self.document_id = Some(id.into());
        self
    }

    /// Adds a human-readable detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// One stored entry of the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1 with no gaps.
    pub seq: i64,
    /// When it was recorded (wall clock; for people, never for ordering).
    pub at_ms: i64,
    /// Who did it.
    pub actor: String,
    /// What was done (see [`AuditAction::as_str`]).
    pub action: String,
    /// The document concerned, if any.
    pub document_id: Option<String>,
    /// How it ended (see [`AuditOutcome::as_str`]).
    pub outcome: String,
    /// Free text.
    pub detail: String,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// Hash of this entry.
    pub hash: String,
}

impl AuditEntry {
    fn computed_hash(&self) -> String {
        entry_hash(
            self.seq,
            self.at_ms,
            &self.actor,
            &self.action,
            self.document_id.as_deref(),
            &self.outcome,
            &self.detail,
            &self.prev_hash,
        )
    }
}

/// The first entry where the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenEntry {
    /// The sequence number of the broken entry (or of the first missing one).
    pub seq: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// The result of [`Vault::verify_audit_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerification {
    /// Entries checked.
    pub entries: i64,
    /// `None` when the chain is intact.
    pub first_broken: Option<BrokenEntry>,
}

#[allow(clippy::too_many_arguments)]
fn entry_hash(
    seq: i64,
    at_ms: i64,
    actor: &str,
    action: &str,
    document_id: Option<&str>,
    outcome: &str,
    detail: &str,
    prev_hash: &str,
) -> String {
    // A JSON array is an unambiguous, deterministic encoding of the fields.
    let canonical = serde_json::json!([
        seq,
        at_ms,
        actor,
        action,
        document_id,
        outcome,
        detail,
        prev_hash
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Appends `event` inside `tx`, so that it commits (or not) with the change it describes.
pub(crate) fn append(
    tx: &Transaction<'_>,
    at_ms: i64,
    actor: &str,
    event: &AuditEvent,
) -> Result<(), VaultError> {
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let hash = entry_hash(
        seq,
        at_ms,
        actor,
        event.action.as_str(),
        event.document_id.as_deref(),
        event.outcome.as_str(),
        &event.detail,
        &prev_hash,
    );
    tx.execute(
        "INSERT INTO audit_log (seq, at_ms, actor, action, document_id, outcome, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        rusqlite::params![
            seq,
            at_ms,
            actor,
            event.action.as_str(),
            event.document_id,
            event.outcome.as_str(),
            event.detail,
            prev_hash,
            hash
        ],
    )?;
    Ok(())
}

/// The columns an [`AuditEntry`] is read from, in [`entry_from_row`]'s order.
const ENTRY_COLUMNS: &str =
    "seq, at_ms, actor, action, document_id, outcome, detail, prev_hash, hash";

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get(0)?,
        at_ms: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        document_id: r.get(4)?,
        outcome: r.get(5)?,
        detail: r.get(6)?,
        prev_hash: r.get(7)?,
        hash: r.get(8)?,
    })
}

impl Vault {
    /// The audit entries, oldest first, starting after `after_seq`, at most `limit`.
    pub fn audit_entries(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, VaultError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = stmt.query_map((after_seq, limit), entry_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest audit entry of `action`, if any.
    pub fn last_audit_entry_of(
        &self,
        action: AuditAction,
    ) -> Result<Option<AuditEntry>, VaultError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE action = ?1 ORDER BY seq DESC LIMIT 1"
                ),
                [action.as_str()],
                entry_from_row,
            )
            .optional()?)
    }

    /// Walks the whole chain and names the first entry that was changed, removed or reordered.
    pub fn verify_audit_chain(&self) -> Result<AuditVerification, VaultError> {
        let mut expected_seq = 1;
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut checked = 0;
        loop {
            let batch = self.audit_entries(expected_seq - 1, 1000)?;
            if batch.is_empty() {
                return Ok(AuditVerification {
                    entries: checked,
                    first_broken: None,
                });
            }
            for entry in batch {
                let broken = |reason: String| {
                    Ok(AuditVerification {
                        entries: checked,
                        first_broken: Some(BrokenEntry {
                            seq: entry.seq.min(expected_seq),
                            reason,
                        }),
                    })
                };
                if entry.seq != expected_seq {
                    return broken(format!(
                        "entry {expected_seq} is missing (the next entry is {})",
                        entry.seq
                    ));
                }
                if entry.prev_hash != prev_hash {
                    return broken(format!(
                        "entry {} does not link to the entry before it",
                        entry.seq
                    ));
                }
                if entry.computed_hash() != entry.hash {
                    return broken(format!(
                        "entry {} was changed after it was written",
                        entry.seq
                    ));
                }
                checked += 1;
                expected_seq += 1;
                prev_hash = entry.hash;
            }
        }
    }
}
