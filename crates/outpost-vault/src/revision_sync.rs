//! Document revisions and the server. A local revision (a signature, burned-in annotations) is
//! pushed on the base the server last held; the server takes it only if that base is still its
//! head. When another revision got there first, the local ones are kept on the server as a
//! conflict branch, and the vault takes the server's head in their place and asks for the
//! document to be signed again. Revisions only ever grow a document, so the server's head is
//! always some local revision's bytes followed by more.

use rusqlite::OptionalExtension;
use serde::Serialize;

use crate::audit::{self, AuditAction, AuditEvent, AuditOutcome};
use crate::revisions::FROM_THE_SERVER;
use crate::sync::NOT_YET_PUSHED;
use crate::{DocumentId, Vault, VaultError};

/// A local revision the server does not hold yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRevision {
    /// The local document.
    pub document_id: DocumentId,
    /// The server's document id.
    pub server_id: String,
    /// The local revision number.
    pub revision: i64,
    /// SHA-256 of the revision it was made on.
    pub base_sha256: String,
    /// SHA-256 of the whole revision.
    pub sha256: String,
    /// The length of the bytes it appends to its base (read them with
    /// [`Vault::revision_appended`] when they go).
    pub appended_len: u64,
    /// What made it ("signed", …).
    pub cause: String,
    /// The document's place in the server's order.
    pub position: i64,
}

/// A local revision's place in the document's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionPrefix {
    /// The revision (0 for the document's first bytes).
    pub revision: i64,
    /// SHA-256 of the document up to and including it.
    pub sha256: String,
    /// The document's size up to and including it.
    pub size: u64,
}

/// The server's head of a document, to take in place of what follows `keep_revision` here.
#[derive(Debug, Clone)]
pub struct ServerHead<'a> {
    /// The local document.
    pub document_id: &'a DocumentId,
    /// The newest local revision the head extends; later local revisions are set aside (they
    /// must be on the server already: a conflict branch, or its own replaced extension). `None`
    /// when the head continues no revision here — a copy first taken whole whose last part the
    /// server has since replaced (its long-term extension gave way to a push on the revision
    /// under it): then the head, whole in `appended`, becomes the document's bytes (revision 0)
    /// and every later revision here is set aside.
    pub keep_revision: Option<i64>,
    /// The bytes the head adds after `keep_revision` (empty when it is that revision), or the
    /// whole head when `keep_revision` is `None`.
    pub appended: &'a [u8],
    /// SHA-256 of the whole head.
    pub server_sha256: &'a str,
    /// The document's newest local revision when the head was examined: if a revision was
    /// made here since (a signature during the sync), nothing is taken
    /// ([`VaultError::DocumentChanged`]) — it has not been to the server, so it may not be set
    /// aside.
    pub seen_revision: i64,
    /// Set when the user chose the server's copy over revisions it refused (the server's
    /// reason): those are discarded, not kept as a conflict branch, and no new signature is asked.
    pub instead_of_refused: Option<&'a str>,
}

/// Where a server document stands with the server, in one word: what its row says first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentStanding {
    /// The server holds everything made here.
    Synced,
    /// Changes made here wait to be pushed.
    Pending,
    /// Another revision won on the server: the document needs the user's signature again.
    Conflict,
    /// The server refused the newest pushed revision: it waits for the user's choice.
    Refused,
    /// The server took the document back (its assignment ended) and it was purged here; shown
    /// until the user dismisses the purge notice.
    Purged,
}

/// Where a server document stands with the server, for its badge.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DocumentSyncState {
    /// The local document.
    pub document_id: DocumentId,
    /// The one-word summary of the fields below.
    pub standing: DocumentStanding,
    /// Signed or burned-in revisions waiting to be pushed.
    pub pending_revisions: i64,
    /// This vault's annotation changes waiting to be pushed.
    pub pending_annotations: i64,
    /// Another revision won on the server: the document needs the user's signature again.
    pub sign_again: bool,
    /// The server refused the newest pushed revision, and said why.
    pub refused: Option<String>,
}

/// What taking the server's head did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptedHead {
    /// The local revisions set aside, as "cause sha256".
    pub discarded: Vec<String>,
}

/// How the audit entry of a revision that lost a conflict ends (the tutorial looks for it).
pub const SIGN_AGAIN: &str = "sign the document again";

/// A document whose signed revision lost a conflict on the server: it shows as "needs your
/// signature again" until it is signed on the new head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResignRequest {
    /// The local document.
    pub document_id: String,
    /// The revisions set aside (each "cause sha256"); the server keeps them as a conflict branch.
    pub discarded: Vec<String>,
    /// The server head that took their place.
    pub server_sha256: String,
    /// When (wall clock, for people).
    pub requested_at_ms: i64,
}

/// The revisions to push, as rows `s` (the server document) and `u` (the revision): those after
/// the one the server holds, unless the server refused one of the document's.
const REVISIONS_TO_PUSH: &str = "FROM server_documents s
    JOIN document_updates u ON u.document_id = s.document_id AND u.revision > s.synced_revision
   WHERE NOT EXISTS (SELECT 1 FROM refused_revisions f WHERE f.document_id = s.document_id)";

impl Vault {
    /// The local revisions of server documents that the server does not hold yet, oldest first
    /// per document, each with its base: every waiting revision of each document, documents
    /// taken in the server's order — after the document at `after` (its position and server id),
    /// if given — until there are at least `limit` revisions (a document's revisions are never
    /// split here: the server's answer to a conflict is met once all of them have been sent). A
    /// document whose revision the server refused is held back until the user offers it again
    /// ([`Vault::offer_refused_revision_again`]) or takes the server's copy.
    pub fn pending_revision_pushes(
        &self,
        limit: usize,
        after: Option<(i64, &str)>,
    ) -> Result<Vec<PendingRevision>, VaultError> {
        let (after_position, after_server_id) = after.unwrap_or((i64::MIN, ""));
        let mut chains = self.conn.prepare_cached(&format!(
            "SELECT s.document_id, COUNT(*) {REVISIONS_TO_PUSH}
                AND (s.position, s.server_id) > (?1, ?2)
              GROUP BY s.document_id ORDER BY MIN(s.position), MIN(s.server_id)"
        ))?;
        let mut documents = Vec::new();
        let mut count = 0;
        let mut rows = chains.query(rusqlite::params![after_position, after_server_id])?;
        while let Some(row) = rows.next()? {
            if count >= limit {
                break;
            }
            count += usize::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
            documents.push(row.get::<_, String>(0)?);
        }
        let mut revisions = self.conn.prepare_cached(&format!(
            "SELECT s.document_id, s.server_id, u.revision, u.sha256_after, length(u.appended),
                    u.cause, s.position,
                    COALESCE((SELECT p.sha256_after FROM document_updates p
                               WHERE p.document_id = u.document_id AND p.revision = u.revision - 1),
                             (SELECT d.sha256 FROM documents d WHERE d.id = u.document_id))
               {REVISIONS_TO_PUSH} AND s.document_id = ?1
              ORDER BY u.revision"
        ))?;
        let mut pending = Vec::with_capacity(count);
        for document in &documents {
            let rows = revisions.query_map([document], |r| {
                Ok(PendingRevision {
                    document_id: DocumentId(r.get(0)?),
                    server_id: r.get(1)?,
                    revision: r.get(2)?,
                    sha256: r.get(3)?,
                    appended_len: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                    cause: r.get(5)?,
                    position: r.get(6)?,
                    base_sha256: r.get(7)?,
                })
            })?;
            for row in rows {
                pending.push(row?);
            }
        }
        Ok(pending)
    }

    /// The bytes revision `revision` of a document appends to its base; `None` if the document
    /// no longer has that revision (a sync set it aside).
    pub fn revision_appended(
        &self,
        document_id: &DocumentId,
        revision: i64,
    ) -> Result<Option<Vec<u8>>, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT appended FROM document_updates WHERE document_id = ?1 AND revision = ?2",
                rusqlite::params![document_id.0, revision],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// How many revisions [`Vault::pending_revision_pushes`] has to give in all (those of
    /// documents whose revision the server refused wait), and the bytes they append.
    pub fn revisions_to_push(&self) -> Result<(usize, u64), VaultError> {
        let (count, bytes): (i64, i64) = self.conn.query_row(
            &format!("SELECT COUNT(*), COALESCE(SUM(length(u.appended)), 0) {REVISIONS_TO_PUSH}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((
            usize::try_from(count).unwrap_or(0),
            u64::try_from(bytes).unwrap_or(0),
        ))
    }

    /// How many local revisions of server documents the server does not hold yet.
    pub fn pending_revision_count(&self) -> Result<i64, VaultError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM server_documents s
               JOIN document_updates u ON u.document_id = s.document_id AND u.revision > s.synced_revision",
            [],
            |r| r.get(0),
        )?)
    }

    /// Records that the server holds a document up to `revision` (pushed, or its head seen in a
    /// pull) and that its head is `sha256`. Later local revisions are pushed next — also after a
    /// server restored from a backup went back to an earlier revision.
    pub fn record_revision_synced(
        &mut self,
        document_id: &DocumentId,
        revision: i64,
        sha256: &str,
    ) -> Result<(), VaultError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE server_documents SET synced_revision = ?2, head_sha256 = ?3 WHERE document_id = ?1",
            rusqlite::params![document_id.0, revision, sha256],
        )?;
        tx.execute(
            "DELETE FROM refused_revisions WHERE document_id = ?1",
            [&document_id.0],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Clears the server's refusal of a document's revision so that the next push offers it
    /// again (the user asked; audited). Nothing happens if nothing was refused.
    pub fn offer_refused_revision_again(
        &mut self,
        document_id: &DocumentId,
    ) -> Result<bool, VaultError> {
        let now = self.clock.now_ms();
        let tx = self.conn.transaction()?;
        let refused: Option<String> = tx
            .query_row(
                "SELECT sha256 FROM refused_revisions WHERE document_id = ?1",
                [&document_id.0],
                |r| r.get(0),
            )
            .optional()?;
        let Some(sha256) = refused else {
            return Ok(false);
        };
        tx.execute(
            "DELETE FROM refused_revisions WHERE document_id = ?1",
            [&document_id.0],
        )?;
        audit::append(
            &tx,
            now,
            &self.user,
            &AuditEvent::new(AuditAction::SyncRevision, AuditOutcome::Success)
                .document(document_id.0.clone())
                .detail(format!(
                    "offered the refused revision {sha256} to the server again"
                )),
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Audits a revision the server refused: it stays here, held back from pushes until the
    /// user offers it again or takes the server's copy. The first refusal's reason is the one
    /// kept (the later revisions of the same push are refused because their base was).
    pub fn record_refused_revision(
        &mut self,
        document_id: &DocumentId,
        sha256: &str,
        reason: &str,
    ) -> Result<(), VaultError> {
        let now = self.clock.now_ms();
        let tx = self.conn.transaction()?;
        audit::append(
            &tx,
            now,
            &self.user,
            &AuditEvent::new(AuditAction::SyncRevision, AuditOutcome::Failure)
                .document(document_id.0.clone())
                .detail(format!("the server refused revision {sha256}: {reason}")),
        )?;
        tx.execute(
            "INSERT INTO refused_revisions (document_id, sha256, reason, refused_at_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (document_id) DO NOTHING",
            rusqlite::params![document_id.0, sha256, reason, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records the server's head of a document whose local revisions have not reached it yet
    /// (the next push meets the conflict).
    pub fn record_server_head(
        &mut self,
        document_id: &DocumentId,
        sha256: &str,
    ) -> Result<(), VaultError> {
        self.conn.execute(
            "UPDATE server_documents SET head_sha256 = ?2 WHERE document_id = ?1",
            rusqlite::params![document_id.0, sha256],
        )?;
        Ok(())
    }

    /// The revision the server holds of a linked document (0 when none is linked).
    pub fn synced_revision(&self, document_id: &DocumentId) -> Result<i64, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT synced_revision FROM server_documents WHERE document_id = ?1",
                [&document_id.0],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Each revision's hash and the document's size up to it, oldest first.
    pub fn revision_prefixes(&self, id: &DocumentId) -> Result<Vec<RevisionPrefix>, VaultError> {
        let (sha256, size): (String, i64) = self
            .conn
            .query_row(
                "SELECT d.sha256, CASE WHEN b.parts_sha256 IS NULL THEN length(b.bytes) ELSE d.byte_size END
                   FROM documents d JOIN document_bytes b ON b.document_id = d.id WHERE d.id = ?1",
                [&id.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| VaultError::DocumentNotFound(id.0.clone()))?;
        let mut size = u64::try_from(size).unwrap_or(0);
        let mut prefixes = vec![RevisionPrefix {
            revision: 0,
            sha256,
            size,
        }];
        let mut statement = self.conn.prepare(
            "SELECT revision, sha256_after, length(appended) FROM document_updates
              WHERE document_id = ?1 ORDER BY revision",
        )?;
        let rows = statement.query_map([&id.0], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (revision, sha256, appended) = row?;
            size += u64::try_from(appended).unwrap_or(0);
            prefixes.push(RevisionPrefix {
                revision,
                sha256,
                size,
            });
        }
        Ok(prefixes)
    }

    /// Takes the server's head of a document in one transaction: the local revisions after
    /// `keep_revision` are set aside (their burned-in annotations become pending again and their
    /// batch records go, so a batch re-sign includes the document), the head's added bytes become
    /// the next revision (or, taken whole, revision 0), and the document is marked as synced. An
    /// unfinished signing batch that started on a revision set aside counts from the head taken.
    /// If anything was set aside the document is asked to be signed again. Audited either way.
    pub fn adopt_server_head(&mut self, head: &ServerHead<'_>) -> Result<AdoptedHead, VaultError> {
        let now = self.clock.now_ms();
        let id = &head.document_id.0;
        // Revision 0 (the bytes first taken) stays unless the head replaces it too.
        let keep_revision = head.keep_revision.unwrap_or(0);
        let tx = self.conn.transaction()?;
        let mut discarded = Vec::new();
        {
            // Revisions taken from the server (its long-term extensions) are its to replace.
            let mut statement = tx.prepare(
                "SELECT cause, sha256_after FROM document_updates
                  WHERE document_id = ?1 AND revision > ?2 AND cause != ?3
                  ORDER BY revision",
            )?;
            let rows = statement.query_map(
                rusqlite::params![id, keep_revision, FROM_THE_SERVER],
                |r| {
                    Ok(format!(
                        "{} {}",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?
                    ))
                },
            )?;
            for row in rows {
                discarded.push(row?);
            }
        }
        let current: i64 = tx.query_row(
            "SELECT COALESCE(MAX(revision), 0) FROM document_updates WHERE document_id = ?1",
            [id],
            |r| r.get(0),
        )?;
        if keep_revision > current || keep_revision < 0 || current > head.seen_revision {
            return Err(VaultError::DocumentChanged {
                id: id.clone(),
                expected: keep_revision.max(head.seen_revision),
                found: current,
            });
        }
        tx.execute("DELETE FROM refused_revisions WHERE document_id = ?1", [id])?;
        for statement in [
            "DELETE FROM signing_batch_items WHERE document_id = ?1 AND revision > ?2",
            "UPDATE annotations SET burned_revision = NULL WHERE document_id = ?1 AND burned_revision > ?2",
            "DELETE FROM document_updates WHERE document_id = ?1 AND revision > ?2",
        ] {
            tx.execute(statement, rusqlite::params![id, keep_revision])?;
        }
        let mut revision = keep_revision;
        let mut replaced = None;
        if head.keep_revision.is_none() {
            replaced = Some(tx.query_row(
                "SELECT sha256 FROM documents WHERE id = ?1",
                [id],
                |r| r.get::<_, String>(0),
            )?);
            // The whole head in place of the bytes first taken (their pack parts, if any, are
            // forgotten with the next round's clean-up).
            tx.execute(
                "UPDATE document_bytes SET bytes = ?2, parts_sha256 = NULL WHERE document_id = ?1",
                rusqlite::params![id, head.appended],
            )?;
            tx.execute(
                "UPDATE documents SET sha256 = ?2, byte_size = ?3, head_taken_whole_at_ms = ?4
                  WHERE id = ?1",
                rusqlite::params![id, head.server_sha256, head.appended.len() as i64, now],
            )?;
        } else if !head.appended.is_empty() {
            revision += 1;
            tx.execute(
                "INSERT INTO document_updates (document_id, revision, appended, sha256_after, cause, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![id, revision, head.appended, head.server_sha256, FROM_THE_SERVER, now],
            )?;
        }
        tx.execute(
            "UPDATE server_documents SET synced_revision = ?2, head_sha256 = ?3 WHERE document_id = ?1",
            rusqlite::params![id, revision, head.server_sha256],
        )?;
        // A batch started on a revision set aside now starts from the head taken: a signature
        // made here after it still counts as made since the batch started (the numbers after
        // `keep_revision` are used again).
        tx.execute(
            "UPDATE signing_batch_documents SET revision_at_start = ?2
              WHERE document_id = ?1 AND revision_at_start > ?2",
            rusqlite::params![id, revision],
        )?;
        let took = match &replaced {
            None => format!("took the server's revision {}", head.server_sha256),
            Some(old) => format!(
                "took the server's revision {} whole in place of the copy here ({old}), which it does not continue",
                head.server_sha256
            ),
        };
        let detail = if let Some(reason) = head.instead_of_refused {
            format!(
                "{took} at the user's request and discarded {} (refused by the server: {reason})",
                if discarded.is_empty() {
                    "nothing".to_string()
                } else {
                    discarded.join(", ")
                }
            )
        } else if discarded.is_empty() {
            took
        } else {
            tx.execute(
                "INSERT INTO resign_requests (document_id, discarded, server_sha256, requested_at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (document_id) DO UPDATE SET discarded = ?2, server_sha256 = ?3, requested_at_ms = ?4",
                rusqlite::params![
                    id,
                    discarded.join("\n"),
                    head.server_sha256,
                    now
                ],
            )?;
            format!(
                "another revision reached the server first: {took} and set aside {} (kept on the server as a conflict branch); {SIGN_AGAIN}",
                discarded.join(", ")
            )
        };
        audit::append(
            &tx,
            now,
            &self.user,
            &AuditEvent::new(AuditAction::SyncRevision, AuditOutcome::Success)
                .document(id.clone())
                .detail(detail),
        )?;
        tx.commit()?;
        Ok(AdoptedHead { discarded })
    }

    /// How many revisions of a document after `revision` were made here (not taken from the
    /// server).
    pub fn own_revisions_after(&self, id: &DocumentId, revision: i64) -> Result<i64, VaultError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM document_updates
              WHERE document_id = ?1 AND revision > ?2 AND cause != ?3",
            rusqlite::params![id.0, revision, FROM_THE_SERVER],
            |r| r.get(0),
        )?)
    }

    /// The sync state of every document linked to the server: changes waiting to be pushed,
    /// whether it must be signed again, and the server's reason if it refused a revision; then
    /// the documents purged here whose notice the user has not dismissed, oldest first.
    pub fn document_sync_states(&self) -> Result<Vec<DocumentSyncState>, VaultError> {
        let origin = self.vault_id().to_string();
        let mut statement = self.conn.prepare(&format!(
            "SELECT s.document_id,
                    (SELECT COUNT(*) FROM document_updates u
                      WHERE u.document_id = s.document_id AND u.revision > s.synced_revision),
                    (SELECT COUNT(*) FROM annotations a
                       LEFT JOIN annotation_pushes p ON p.annotation_id = a.id
                      WHERE a.document_id = s.document_id AND a.origin = ?1 AND {NOT_YET_PUSHED}),
                    EXISTS (SELECT 1 FROM resign_requests r WHERE r.document_id = s.document_id),
                    (SELECT f.reason FROM refused_revisions f WHERE f.document_id = s.document_id)
               FROM server_documents s ORDER BY s.position, s.server_id"
        ))?;
        let rows = statement.query_map([origin], |r| {
            let pending_revisions: i64 = r.get(1)?;
            let pending_annotations: i64 = r.get(2)?;
            let sign_again: bool = r.get(3)?;
            let refused: Option<String> = r.get(4)?;
            let standing = if refused.is_some() {
                DocumentStanding::Refused
            } else if sign_again {
                DocumentStanding::Conflict
            } else if pending_revisions + pending_annotations > 0 {
                DocumentStanding::Pending
            } else {
                DocumentStanding::Synced
            };
            Ok(DocumentSyncState {
                document_id: DocumentId(r.get(0)?),
                standing,
                pending_revisions,
                pending_annotations,
                sign_again,
                refused,
            })
        })?;
        let mut states: Vec<DocumentSyncState> = rows.collect::<Result<_, _>>()?;
        let mut purged = self.conn.prepare(
            "SELECT document_id FROM purge_notices
              WHERE document_id IS NOT NULL
                AND document_id NOT IN (SELECT document_id FROM server_documents)
                AND document_id NOT IN (SELECT id FROM documents)
              ORDER BY id",
        )?;
        let purged = purged.query_map([], |r| {
            Ok(DocumentSyncState {
                document_id: DocumentId(r.get(0)?),
                standing: DocumentStanding::Purged,
                pending_revisions: 0,
                pending_annotations: 0,
                sign_again: false,
                refused: None,
            })
        })?;
        for state in purged {
            states.push(state?);
        }
        Ok(states)
    }

    /// The documents that must be signed again after losing a conflict.
    pub fn resign_requests(&self) -> Result<Vec<ResignRequest>, VaultError> {
        let mut statement = self.conn.prepare(
            "SELECT document_id, discarded, server_sha256, requested_at_ms FROM resign_requests
              ORDER BY requested_at_ms, document_id",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut requests = Vec::new();
        for row in rows {
            let (document_id, discarded, server_sha256, requested_at_ms) = row?;
            requests.push(ResignRequest {
                document_id,
                discarded: discarded.lines().map(str::to_owned).collect(),
                server_sha256,
                requested_at_ms,
            });
        }
        Ok(requests)
    }
}
