//! What the vault keeps for sync: the server account (address, pinned CA, device key, tokens,
//! pull cursor) and the link between server documents and local ones. A pull round is applied in
//! one transaction together with its new cursor, so a crash leaves either the old cursor and none
//! of the round, or the new cursor and all of it.

use rusqlite::OptionalExtension;
use zeroize::Zeroizing;

use crate::audit::{self, AuditAction, AuditEvent, AuditOutcome};
use crate::documents::{insert_document_from, purge_in, Content, StoredImport};
use crate::{AnnotationRecord, DocumentId, NewDocument, Vault, VaultError};

/// The server this vault syncs with. The device key and tokens live only here, inside the
/// encrypted database.
#[derive(Clone)]
pub struct ServerAccount {
    /// `https://host:port`.
    pub base_url: String,
    /// The CA certificate (PEM) the server's certificate must chain to.
    pub ca_pem: String,
    /// The user's login name on the server.
    pub username: String,
    /// The device id the server gave at enrolment.
    pub device_id: Option<String>,
    /// The device's ECDSA P-256 secret scalar.
    pub device_key: Zeroizing<Vec<u8>>,
    /// The current access token and when it expires: milliseconds by this workstation's clock
    /// (its lifetime as the server gave it, counted from when it arrived here); a value kept by an
    /// older Outpost (the server's Unix seconds) reads as long past, so that token is renewed once.
    pub access_token: Option<(String, i64)>,
    /// The current refresh token and when it expires.
    pub refresh_token: Option<(String, i64)>,
    /// Where the next pull round starts.
    pub pull_cursor: i64,
}

impl std::fmt::Debug for ServerAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key or the tokens.
        f.debug_struct("ServerAccount")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("device_id", &self.device_id)
            .field("pull_cursor", &self.pull_cursor)
            .finish_non_exhaustive()
    }
}

/// A document the server took back (its assignment ended) and that was purged here, as the user
/// is told about it; kept until the user has read it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PurgeNotice {
    /// Orders the notices; [`Vault::dismiss_purge_notices`] takes it.
    pub id: i64,
    /// The local document that was purged (`None` for a notice kept by an earlier Outpost).
    pub document_id: Option<DocumentId>,
    /// When it was purged (this workstation's clock; shown, never used to order).
    pub at_ms: i64,
    /// The document's title.
    pub title: String,
    /// Annotation changes made here that the server never got, discarded with it.
    pub discarded_annotations: i64,
    /// Revisions made here (signatures) that the server never took, discarded with it.
    pub discarded_revisions: i64,
    /// The server's reason, when it refused such a revision.
    pub refused: Option<String>,
}

/// A local document linked to a server document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDocumentLink {
    /// The server's document id.
    pub server_id: String,
    /// The local document.
    pub document_id: DocumentId,
    /// The server head the local bytes are.
    pub head_sha256: String,
}

/// A document a pull round made visible. Its bytes are the complete download held under its
/// SHA-256 ([`Vault::keep_download_part`], checked by the caller), unless a stored document already
/// has the same bytes.
pub struct PulledDocument {
    /// The server's document id.
    pub server_id: String,
    /// The change's position.
    pub position: i64,
    /// The id to give it if it is new.
    pub id: DocumentId,
    /// SHA-256 of the server head, lower-case hex.
    pub sha256: String,
    /// Its title.
    pub title: String,
    /// Text of each page, first page first.
    pub page_texts: Vec<String>,
    /// Where it came from, for the document's record.
    pub source_name: String,
}

/// An annotation as another replica (through the server) has it: the record's fields, with the
/// server's document id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAnnotation {
    /// The annotation's id.
    pub id: String,
    /// The server document it belongs to.
    pub server_document_id: String,
    /// Page, 1-based.
    pub page_no: u32,
    /// Kind's name.
    pub kind: String,
    /// Author.
    pub author: String,
    /// The annotation as JSON.
    pub body: String,
    /// Revision.
    pub revision: i64,
    /// Lamport clock of its last change.
    pub logical_clock: i64,
    /// The vault that made its last change.
    pub origin: String,
    /// Tombstone.
    pub deleted: bool,
    /// Created (for people).
    pub created_at_ms: i64,
    /// Last changed (for people).
    pub modified_at_ms: i64,
}

/// A local annotation change waiting to be pushed, with its server document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAnnotation {
    /// The annotation as it is here now.
    pub record: AnnotationRecord,
    /// The server's id of its document.
    pub server_document_id: String,
}

/// What a pull round changes, applied at once by [`Vault::apply_pull_round`].
pub struct PullRound {
    /// Documents now visible (new, or not yet stored locally).
    pub visible: Vec<PulledDocument>,
    /// Annotation states from the server, merged per annotation (higher (clock, origin) wins).
    pub annotations: Vec<RemoteAnnotation>,
    /// Server documents the user may no longer see.
    pub removed: Vec<String>,
    /// Server documents the round shows as the user's (downloaded or not): annotation changes
    /// held for them are offered again.
    pub seen: Vec<String>,
    /// The cursor to store.
    pub cursor: i64,
}

/// What applying a round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppliedPull {
    /// Local documents created or linked for visible server documents.
    pub stored: Vec<DocumentId>,
    /// Local documents purged because their assignment ended.
    pub purged: Vec<DocumentId>,
    /// Annotations whose remote state won and was stored.
    pub merged_annotations: usize,
    /// This vault's annotation changes the server never got, discarded with a purged document
    /// (each listed in the audit chain with the reason).
    pub discarded_annotations: Vec<String>,
}

/// The SQL condition for an annotation `a` whose state the server does not have yet, with its
/// push record `p` (`annotation_pushes`, left-joined): never pushed, or changed since.
pub(crate) const NOT_YET_PUSHED: &str =
    "(p.synced_clock IS NULL OR p.synced_clock < a.logical_clock)";

impl Vault {
    /// This vault's own annotation changes on server documents that the server does not have
    /// yet, oldest change first, at most `limit`.
    pub fn pending_annotation_pushes(
        &self,
        limit: u32,
    ) -> Result<Vec<PendingAnnotation>, VaultError> {
        let origin = self.vault_id().to_string();
        let mut statement = self.conn.prepare(&format!(
            "SELECT {}, s.server_id FROM annotations a
             JOIN server_documents s ON s.document_id = a.document_id
             LEFT JOIN annotation_pushes p ON p.annotation_id = a.id
             WHERE a.origin = ?1 AND {NOT_YET_PUSHED}
             ORDER BY a.logical_clock LIMIT ?2",
            AnnotationRecord::prefixed_columns("a")
        ))?;
        let rows = statement.query_map(rusqlite::params![origin, limit], |r| {
            Ok(PendingAnnotation {
                record: AnnotationRecord::from_row(r)?,
                server_document_id: r.get(AnnotationRecord::COLUMN_COUNT)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records what a push did: each annotation's pushed state (by clock) is now the server's —
    /// applied, already there, or superseded there by a later change — and each refused one is
    /// audited with the server's reason, so the user can see it. One transaction.
    pub fn record_annotation_pushes(
        &mut self,
        synced: &[(String, i64)],
        refused: &[(String, i64, String)],
        held: &[(String, i64, String)],
    ) -> Result<(), VaultError> {
        let now = self.clock.now_ms();
        let tx = self.conn.transaction()?;
        let all = synced.iter().map(|(id, clock)| (id, *clock)).chain(
            refused
                .iter()
                .chain(held)
                .map(|(id, clock, _)| (id, *clock)),
        );
        for (id, clock) in all {
            tx.execute(
                "INSERT INTO annotation_pushes (annotation_id, synced_clock) VALUES (?1, ?2)
                 ON CONFLICT (annotation_id) DO UPDATE SET synced_clock = MAX(synced_clock, ?2)",
                rusqlite::params![id, clock],
            )?;
        }
        for (id, _, reason) in refused {
            let document: Option<String> = tx
                .query_row(
                    "SELECT document_id FROM annotations WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            let mut event = AuditEvent::new(AuditAction::Annotate, AuditOutcome::Failure)
                .detail(format!("the server refused annotation {id}: {reason}"));
            if let Some(document) = document {
                event = event.document(document);
            }
            audit::append(&tx, now, &self.user, &event)?;
        }
        for (id, clock, _) in held {
            tx.execute(
                "INSERT INTO held_annotation_changes (annotation_id, logical_clock)
                 SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM annotations WHERE id = ?1)
                 ON CONFLICT (annotation_id) DO UPDATE SET logical_clock = MAX(logical_clock, ?2)",
                rusqlite::params![id, clock],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets what the server was known to hold — which annotation states it has and how much of
    /// the audit chain — so that everything is offered again: for a server restored from a backup,
    /// which lost what came after it. (Revisions need no reset: the pulled heads show where the
    /// server stands.) Re-offered changes the server still has are recognised by their op ids.
    pub fn forget_server_progress(&mut self) -> Result<(), VaultError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM annotation_pushes", [])?;
        tx.execute(
            "UPDATE server_account SET audit_uploaded_seq = 0, server_position_seen = 0 WHERE id = 1",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records a sync position the server reported (the highest is kept).
    pub fn note_server_position(&mut self, position: i64) -> Result<(), VaultError> {
        self.conn.execute(
            "UPDATE server_account SET server_position_seen = MAX(server_position_seen, ?1) WHERE id = 1",
            [position],
        )?;
        Ok(())
    }

    /// The highest sync position the server has reported.
    pub fn server_position_seen(&self) -> Result<i64, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT server_position_seen FROM server_account WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// The last audit position the server holds of this vault's chain.
    pub fn audit_uploaded_seq(&self) -> Result<i64, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT audit_uploaded_seq FROM server_account WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Records the last audit position the server holds.
    pub fn set_audit_uploaded_seq(&mut self, seq: i64) -> Result<(), VaultError> {
        self.conn.execute("UPDATE server_account SET audit_uploaded_seq = MAX(audit_uploaded_seq, ?1) WHERE id = 1", [seq])?;
        Ok(())
    }

    /// The server account, if this vault was connected to one.
    /// Records the user's role on the server, as it said at sign-in.
    pub fn set_server_role(&mut self, role: &str) -> Result<(), VaultError> {
        self.conn
            .execute("UPDATE server_account SET role = ?1 WHERE id = 1", [role])?;
        Ok(())
    }

    /// The user's role on the server, if this vault signed in to one.
    pub fn server_role(&self) -> Result<Option<String>, VaultError> {
        Ok(self
            .conn
            .query_row("SELECT role FROM server_account WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?
            .flatten())
    }

    pub fn server_account(&self) -> Result<Option<ServerAccount>, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT base_url, ca_pem, username, device_id, device_key, access_token, access_expires_at,
                        refresh_token, refresh_expires_at, pull_cursor FROM server_account WHERE id = 1",
                [],
                |r| {
                    let pair = |token: Option<String>, at: Option<i64>| token.zip(at);
                    Ok(ServerAccount {
                        base_url: r.get(0)?,
                        ca_pem: r.get(1)?,
                        username: r.get(2)?,
                        device_id: r.get(3)?,
                        device_key: Zeroizing::new(r.get(4)?),
                        access_token: pair(r.get(5)?, r.get(6)?),
                        refresh_token: pair(r.get(7)?, r.get(8)?),
                        pull_cursor: r.get(9)?,
                    })
                },
            )
            .optional()?)
    }

    /// Stores the server account (replacing the one there), audited without its secrets.
    pub fn save_server_account(&mut self, account: &ServerAccount) -> Result<(), VaultError> {
        let now = self.clock.now_ms();
        let tx = self.conn.transaction()?;
        let first = tx
            .query_row(
                "SELECT device_id FROM server_account WHERE id = 1",
                [],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten()
            != account.device_id;
        tx.execute(
            "INSERT INTO server_account (id, base_url, ca_pem, username, device_id, device_key, access_token,
                 access_expires_at, refresh_token, refresh_expires_at, pull_cursor)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO UPDATE SET base_url = ?1, ca_pem = ?2, username = ?3, device_id = ?4,
                 device_key = ?5, access_token = ?6, access_expires_at = ?7, refresh_token = ?8,
                 refresh_expires_at = ?9, pull_cursor = ?10",
            rusqlite::params![
                account.base_url,
                account.ca_pem,
                account.username,
                account.device_id,
                account.device_key.as_slice(),
                account.access_token.as_ref().map(|t| &t.0),
                account.access_token.as_ref().map(|t| t.1),
                account.refresh_token.as_ref().map(|t| &t.0),
                account.refresh_token.as_ref().map(|t| t.1),
                account.pull_cursor
            ],
        )?;
        if first {
            audit::append(
                &tx,
                now,
                &self.user,
                &AuditEvent::new(AuditAction::ServerAccount, AuditOutcome::Success).detail(
                    format!(
                        "enrolled as device {} of {} at {}",
                        account.device_id.as_deref().unwrap_or("-"),
                        account.username,
                        account.base_url
                    ),
                ),
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The notices of purged documents the user has not dismissed, oldest first.
    pub fn purge_notices(&self) -> Result<Vec<PurgeNotice>, VaultError> {
        let mut statement = self.conn.prepare(
            "SELECT id, at_ms, title, discarded_annotations, discarded_revisions, refused,
                    document_id
               FROM purge_notices ORDER BY id",
        )?;
        let rows = statement.query_map([], |r| {
            Ok(PurgeNotice {
                id: r.get(0)?,
                document_id: r.get::<_, Option<String>>(6)?.map(DocumentId),
                at_ms: r.get(1)?,
                title: r.get(2)?,
                discarded_annotations: r.get(3)?,
                discarded_revisions: r.get(4)?,
                refused: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets the notices up to `up_to` (by id), once the user has read them; a notice added
    /// meanwhile stays.
    pub fn dismiss_purge_notices(&mut self, up_to: i64) -> Result<(), VaultError> {
        self.conn
            .execute("DELETE FROM purge_notices WHERE id <= ?1", [up_to])?;
        Ok(())
    }

    /// The local documents linked to server documents.
    pub fn server_document_links(&self) -> Result<Vec<ServerDocumentLink>, VaultError> {
        let mut statement = self
            .conn
            .prepare("SELECT server_id, document_id, head_sha256 FROM server_documents ORDER BY position, server_id")?;
        let rows = statement.query_map([], |r| {
            Ok(ServerDocumentLink {
                server_id: r.get(0)?,
                document_id: DocumentId(r.get(1)?),
                head_sha256: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores documents of a pull round that is still running, in one transaction, without
    /// moving the cursor: a long first sync shows its documents as they arrive, and a round that
    /// is interrupted keeps them (the next round finds them linked at the same head). Returns the
    /// local documents stored or linked.
    pub fn store_pulled_documents(
        &mut self,
        documents: &[PulledDocument],
    ) -> Result<Vec<DocumentId>, VaultError> {
        let flushed = self.parts_flush().run_before_storing(documents)?;
        self.store_flushed_documents(documents, flushed)
    }

    /// [`Vault::store_pulled_documents`] after the packs were flushed by the caller, without
    /// holding the vault ([`Vault::parts_flush`]), after the last part of each of `documents`
    /// was recorded.
    pub fn store_flushed_documents(
        &mut self,
        documents: &[PulledDocument],
        _flushed: crate::downloads::FlushedParts,
    ) -> Result<Vec<DocumentId>, VaultError> {
        let now = self.clock.now_ms();
        let tx = self.conn.transaction()?;
        let mut stored = Vec::new();
        for pulled in documents {
            if let Some(local) = store_pulled_in(&tx, &self.user, pulled, now)? {
                stored.push(local);
            }
        }
        tx.commit()?;
        self.note_documents_indexed(stored.len(), false);
        Ok(stored)
    }

    /// Applies a pull round in one transaction: stores (or links, when the same bytes are already
    /// here) each visible document, purges each removed one, and stores the new cursor — with an
    /// audit entry for each. Applying the same round twice changes nothing more.
    pub fn apply_pull_round(&mut self, round: &PullRound) -> Result<AppliedPull, VaultError> {
        let now = self.clock.now_ms();
        let origin = self.vault_id().to_string();
        // The downloaded bytes of the visible documents are on the disk before any is stored.
        let _flushed = self.parts_flush().run_before_storing(&round.visible)?;
        let tx = self.conn.transaction()?;
        if tx.query_row("SELECT COUNT(*) FROM server_account", [], |r| {
            r.get::<_, i64>(0)
        })? == 0
        {
            return Err(VaultError::NoServerAccount);
        }
        let mut applied = AppliedPull::default();
        for pulled in &round.visible {
            if let Some(local) = store_pulled_in(&tx, &self.user, pulled, now)? {
                applied.stored.push(local);
            }
        }
        for remote in &round.annotations {
            let local_document: Option<String> = tx
                .query_row(
                    "SELECT document_id FROM server_documents WHERE server_id = ?1",
                    [&remote.server_document_id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(local_document) = local_document else {
                continue;
            };
            let current: Option<(i64, String)> = tx
                .query_row(
                    "SELECT logical_clock, origin FROM annotations WHERE id = ?1",
                    [&remote.id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let remote_wins = current.as_ref().is_none_or(|(clock, origin)| {
                (remote.logical_clock, remote.origin.as_str()) > (*clock, origin.as_str())
            });
            if remote_wins {
                tx.execute(
                    "INSERT INTO annotations (id, document_id, page_no, kind, author, body, revision, logical_clock,
                         origin, deleted, created_at_ms, modified_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (id) DO UPDATE SET page_no = ?3, body = ?6, revision = ?7, logical_clock = ?8,
                         origin = ?9, deleted = ?10, modified_at_ms = ?12",
                    rusqlite::params![
                        remote.id,
                        local_document,
                        remote.page_no,
                        remote.kind,
                        remote.author,
                        remote.body,
                        remote.revision,
                        remote.logical_clock,
                        remote.origin,
                        i64::from(remote.deleted),
                        remote.created_at_ms,
                        remote.modified_at_ms
                    ],
                )?;
                audit::append(
                    &tx,
                    now,
                    &self.user,
                    &AuditEvent::new(AuditAction::Annotate, AuditOutcome::Success)
                        .document(local_document.clone())
                        .detail(format!(
                            "merged annotation {} from the server (revision {}, by {})",
                            remote.id, remote.revision, remote.author
                        )),
                )?;
                applied.merged_annotations += 1;
            }
            // What the server holds is synced, whichever side won here.
            tx.execute(
                "INSERT INTO annotation_pushes (annotation_id, synced_clock) SELECT ?1, ?2
                   WHERE EXISTS (SELECT 1 FROM annotations WHERE id = ?1)
                 ON CONFLICT (annotation_id) DO UPDATE SET synced_clock = MAX(synced_clock, ?2)",
                rusqlite::params![remote.id, remote.logical_clock],
            )?;
        }
        // The documents the round shows as the user's: their held changes are offered again.
        for server_id in &round.seen {
            let held_here = "SELECT h.annotation_id FROM held_annotation_changes h
                               JOIN annotations a ON a.id = h.annotation_id
                               JOIN server_documents s ON s.document_id = a.document_id
                              WHERE s.server_id = ?1";
            tx.execute(
                &format!("DELETE FROM annotation_pushes WHERE annotation_id IN ({held_here})"),
                [server_id],
            )?;
            tx.execute(
                &format!(
                    "DELETE FROM held_annotation_changes WHERE annotation_id IN ({held_here})"
                ),
                [server_id],
            )?;
        }
        for server_id in &round.removed {
            let local: Option<String> = tx
                .query_row(
                    "SELECT document_id FROM server_documents WHERE server_id = ?1",
                    [server_id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(local) = local else { continue };
            let local = DocumentId(local);
            // This vault's changes the server never got go with the document: say so.
            let unsent: Vec<String> = {
                let mut statement = tx.prepare(&format!(
                    "SELECT a.id FROM annotations a LEFT JOIN annotation_pushes p ON p.annotation_id = a.id
                     WHERE a.document_id = ?1 AND a.origin = ?2
                       AND ({NOT_YET_PUSHED}
                            OR a.id IN (SELECT annotation_id FROM held_annotation_changes))
                     ORDER BY a.logical_clock"
                ))?;
                let rows = statement.query_map(rusqlite::params![local.0, origin], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            let discarded_annotations = unsent.len() as i64;
            if !unsent.is_empty() {
                audit::append(
                    &tx,
                    now,
                    &self.user,
                    &AuditEvent::new(AuditAction::Annotate, AuditOutcome::Failure)
                        .document(local.0.clone())
                        .detail(format!(
                            "{} annotation change(s) not yet sent were discarded: the assignment of server document {server_id} ended ({})",
                            unsent.len(),
                            unsent.join(", ")
                        )),
                )?;
                applied.discarded_annotations.extend(unsent);
            }
            // Signed revisions made here that the server never took (it refused them, or
            // never saw them) go with the document too.
            let (unsent_revisions, refused): (i64, Option<String>) = tx.query_row(
                "SELECT (SELECT COUNT(*) FROM document_updates u
                          WHERE u.document_id = s.document_id AND u.revision > s.synced_revision),
                        (SELECT f.reason FROM refused_revisions f WHERE f.document_id = s.document_id)
                   FROM server_documents s WHERE s.document_id = ?1",
                [&local.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let purged = purge_in(&tx, &local)?;
            tx.execute(
                "INSERT INTO purge_notices
                   (at_ms, title, discarded_annotations, discarded_revisions, refused, document_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    now,
                    purged.title,
                    discarded_annotations,
                    unsent_revisions,
                    refused,
                    local.0
                ],
            )?;
            audit::append(
                &tx,
                now,
                &self.user,
                &AuditEvent::new(AuditAction::Purge, AuditOutcome::Success)
                    .document(local.0.clone())
                    .detail(format!(
                        "the assignment of server document {server_id} ended"
                    )),
            )?;
            applied.purged.push(local);
        }
        tx.execute(
            "UPDATE server_account SET pull_cursor = ?1 WHERE id = 1",
            [round.cursor],
        )?;
        // Parts that are no document's bytes were wanted by no document of the round (its
        // assignment ended before it arrived).
        tx.execute(
            "DELETE FROM download_parts WHERE sha256 NOT IN
               (SELECT parts_sha256 FROM document_bytes WHERE parts_sha256 IS NOT NULL)",
            [],
        )?;
        tx.commit()?;
        self.forget_unowned_part_files();
        self.note_documents_indexed(applied.stored.len(), true);
        Ok(applied)
    }
}

/// Stores (or links, when the same bytes are already here) one pulled document inside `tx`, with
/// its audit entry: the local document it is, or `None` for a second server document with the
/// bytes of one already linked (the vault keeps one document per bytes: it is shown once,
/// through the first, and a change of its own on the server later arrives as new bytes and
/// becomes a document of its own).
fn store_pulled_in(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
    pulled: &PulledDocument,
    now: i64,
) -> Result<Option<DocumentId>, VaultError> {
    let document = NewDocument {
        id: pulled.id.clone(),
        bytes: &[],
        sha256: pulled.sha256.clone(),
        title: pulled.title.clone(),
        page_texts: pulled.page_texts.clone(),
        source_name: pulled.source_name.clone(),
    };
    let stored = insert_document_from(tx, &document, Content::Downloaded, now)?;
    let local = stored.document().id.clone();
    let linked_to: Option<String> = tx
        .query_row(
            "SELECT server_id FROM server_documents WHERE document_id = ?1 AND server_id <> ?2",
            rusqlite::params![local.0, pulled.server_id],
            |r| r.get(0),
        )
        .optional()?;
    let detail = match (&linked_to, &stored) {
        (Some(first), _) => format!(
            "server document {} has the same bytes as server document {first}; shown once",
            pulled.server_id
        ),
        (None, StoredImport::Imported(_)) => {
            format!("from the server (document {})", pulled.server_id)
        }
        (None, StoredImport::Duplicate(_)) => {
            format!("linked to server document {}", pulled.server_id)
        }
    };
    if linked_to.is_none() {
        tx.execute(
            "INSERT INTO server_documents (server_id, document_id, head_sha256, position) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (server_id) DO UPDATE SET document_id = ?2, head_sha256 = ?3, position = ?4",
            rusqlite::params![pulled.server_id, local.0, pulled.sha256, pulled.position],
        )?;
    }
    audit::append(
        tx,
        now,
        user,
        &AuditEvent::new(AuditAction::Import, AuditOutcome::Success)
            .document(local.0.clone())
            .detail(detail),
    )?;
    Ok(linked_to.is_none().then_some(local))
}
