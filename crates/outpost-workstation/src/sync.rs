//! Sync with the server, pull side: connecting a vault to a server (device enrolment) and pull
//! rounds that download what became visible and purge what was revoked, applied to the vault with
//! the new cursor in one transaction. Push, conflicts and the background engine come next.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64ct::Encoding;
use outpost_protocol as wire;
use outpost_vault::{
    AppliedPull, AuditAction, AuditEvent, AuditOutcome, DocumentId, PullRound, PulledDocument,
    RemoteAnnotation, ServerAccount,
};
use sha2::{Digest, Sha256};

use crate::revision_sync::{HeadMet, ServerLink};
use crate::server_client::{DeviceKey, ServerClient, ServerError};
use crate::{Session, WorkstationError};

/// How long one request to the server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Downloads up to this size are handed to pdfium from memory when they arrive in one attempt.
const IN_MEMORY_DOCUMENT_BYTES: u64 = 64 * 1024 * 1024;
/// A running pull round stores the documents that arrived once this many are waiting…
pub const STORE_EVERY_DOCUMENTS: usize = 100;
/// …or when this long has passed since it last stored some.
pub const STORE_EVERY: Duration = Duration::from_secs(2);
/// Documents downloaded at once in a pull round: enough to keep the network, the vault's writes
/// and pdfium busy together on a small machine (docs/benchmarks.md, sync-scale).
pub const DOWNLOADS_IN_FLIGHT: usize = 3;
/// Changes asked for per pull page.
const PULL_PAGE: u32 = 200;

/// The client a session keeps for its account's server, with what it was made for.
pub(crate) struct KeptClient {
    base_url: String,
    ca_pem: String,
    client: ServerClient,
}

/// Where a pull round is, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullProgress {
    /// The changes are known: this many documents to download.
    Planned {
        /// Documents to download.
        downloads: usize,
        /// Documents to purge.
        purges: usize,
        /// The bytes of the documents to download, in all.
        bytes: u64,
    },
    /// Downloading one document.
    Downloading {
        /// Its title.
        title: String,
        /// Bytes so far.
        done: u64,
        /// Its size.
        total: u64,
    },
    /// One planned document is here (downloaded now, or its bytes were here already).
    Arrived {
        /// Its title.
        title: String,
        /// Its size.
        bytes: u64,
    },
    /// Documents that arrived were stored while the round goes on: they can be listed and opened.
    Stored {
        /// Documents of this round stored so far.
        documents: usize,
    },
}

/// Where a push is, for a progress bar: the bytes of signed revisions going to the server (the
/// operations that follow them are small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushProgress {
    /// The revisions to send are known.
    Planned {
        /// Revisions to upload.
        revisions: usize,
        /// Their appended bytes, in all.
        bytes: u64,
    },
    /// Uploading one revision's appended bytes.
    Uploading {
        /// Its document's title.
        title: String,
        /// Bytes the server holds so far (an interrupted upload resumes there).
        done: u64,
        /// Its size.
        total: u64,
    },
    /// One planned revision's bytes are on the server.
    Uploaded {
        /// Its document's title.
        title: String,
        /// Its size.
        bytes: u64,
    },
}

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Operations the server applied now.
    pub applied: usize,
    /// Operations the server had applied before (a retry).
    pub already_applied: usize,
    /// Operations recorded but superseded by a later change there (the next pull brings it).
    pub superseded: usize,
    /// Annotations (by annotation id) and revisions (by document id) the server refused, with
    /// its reason (also in the audit chain).
    pub refused: Vec<(String, String)>,
    /// Documents whose signed revision lost a conflict on the server (kept there as a conflict
    /// branch): they now hold the server's head and must be signed again.
    pub resign_needed: Vec<DocumentId>,
    /// Signer certificates the organisation's CA issued for requests that waited.
    pub certificates_issued: usize,
}

/// What a pull round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// Documents stored or linked.
    pub stored: Vec<DocumentId>,
    /// Documents purged because their assignment ended.
    pub purged: Vec<DocumentId>,
    /// Documents whose new server head (someone's signature, say) was taken in.
    pub updated: Vec<DocumentId>,
    /// Server documents whose head moved on while revisions made here have not reached the server
    /// yet: the next push meets the conflict (and keeps them there as a conflict branch).
    pub deferred: Vec<String>,
    /// Annotations whose state from the server won here (higher logical clock) and was stored.
    pub merged_annotations: usize,
    /// Annotations from the server that are not a valid annotation (a damaged or hostile reply):
    /// not stored.
    pub unreadable_annotations: Vec<String>,
    /// This vault's annotation changes the server never got, discarded because their document's
    /// assignment ended (the user is told; the audit chain lists them).
    pub discarded_annotations: Vec<String>,
    /// The cursor now stored.
    pub cursor: i64,
}

impl Session {
    /// Connects this vault to a server: enrols this workstation as a device of `username` (a new
    /// device key from the session's RNG) and keeps the address, pinned CA, key and tokens in
    /// the vault. Connecting again (after the server session ended) signs in with the enrolled
    /// device and keeps the sync position; a vault connected as one user or to one server cannot
    /// be connected as another user or to another server.
    #[allow(clippy::too_many_arguments)]
    pub fn connect_server(
        &self,
        base_url: &str,
        ca_pem: &str,
        username: &str,
        password: &str,
        second_factor: wire::SecondFactor,
        device_name: &str,
    ) -> Result<wire::UserInfo, WorkstationError> {
        if self.sandbox {
            return Err(WorkstationError::TrainingBoundary(
                "the tutorial connects to no server but its own practice server: its practice documents, notes and signatures stay in the tutorial. Leave the tutorial and unlock your own vault to connect".into(),
            ));
        }
        let client = ServerClient::new(base_url, ca_pem.as_bytes(), REQUEST_TIMEOUT)?;
        if client.health()?.practice {
            return Err(WorkstationError::TrainingBoundary(format!(
                "{base_url} is the tutorial's practice server, not your organisation's: a real vault never connects to it"
            )));
        }
        self.connect_checked(
            &client,
            base_url,
            ca_pem,
            username,
            password,
            second_factor,
            device_name,
        )
    }

    /// [`Session::connect_server`] once the server was found to be on the right side of the
    /// tutorial's boundary.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn connect_checked(
        &self,
        client: &ServerClient,
        base_url: &str,
        ca_pem: &str,
        username: &str,
        password: &str,
        second_factor: wire::SecondFactor,
        device_name: &str,
    ) -> Result<wire::UserInfo, WorkstationError> {
        let existing = self.vault().server_account()?;
        if let Some(current) = &existing {
            if current.username != username {
                return Err(WorkstationError::Sync(format!(
                    "this vault syncs as {} on the server; it cannot sign in as {username}",
                    current.username
                )));
            }
            if current.ca_pem.trim() != ca_pem.trim() && self.sandbox {
                return Err(WorkstationError::Tutorial(
                    "the practice server's files were made afresh, so the tutorial no longer knows it; reset the tutorial to start it again with a new practice server".into(),
                ));
            }
            if current.ca_pem.trim() != ca_pem.trim() {
                return Err(WorkstationError::Sync(format!(
                    "this vault is connected to another server ({}); its documents cannot sync with this one",
                    current.base_url
                )));
            }
        }
        let enrolled = existing.as_ref().and_then(|a| {
            Some((
                a.device_id.clone()?,
                DeviceKey::from_secret_bytes(&a.device_key)?,
            ))
        });
        let (key, session) = match enrolled {
            Some((device_id, key)) => {
                let session =
                    client.sign_in(username, password, second_factor, &device_id, &key)?;
                (key, session)
            }
            None => {
                let key = self.new_device_key();
                let session = client.enrol(username, password, second_factor, device_name, &key)?;
                (key, session)
            }
        };
        let account = ServerAccount {
            base_url: base_url.to_string(),
            ca_pem: ca_pem.to_string(),
            username: username.to_string(),
            device_id: Some(session.device_id.clone()),
            device_key: key.secret_bytes(),
            access_token: Some((
                session.access_token.clone(),
                self.access_expiry_ms(&session),
            )),
            refresh_token: Some((session.refresh_token.clone(), session.refresh_expires_at)),
            pull_cursor: existing.map_or(0, |a| a.pull_cursor),
        };
        self.vault().save_server_account(&account)?;
        self.vault().set_server_role(session.user.role.as_str())?;
        self.trust_server_ca(client)?;
        Ok(session.user)
    }

    /// Makes the organisation's CA a trust anchor (once), so anyone here can check the signatures
    /// on the documents that arrive — the same pinned server issues the signers' certificates.
    fn trust_server_ca(&self, client: &ServerClient) -> Result<(), WorkstationError> {
        if let Some(ca) = client.ca_certificate()? {
            if !self.vault().trust_anchors()?.contains(&ca) {
                self.add_trust_anchor(&ca)?;
            }
        }
        Ok(())
    }

    /// Signs out of the server on this workstation: the server ends this device's session when
    /// it can be reached, and the vault forgets the session's tokens either way — syncing again
    /// takes the user's password and second factor. The device stays enrolled and work waiting
    /// to be sent is kept. Returns whether the server was told. Audited.
    pub fn sign_out(&self) -> Result<bool, WorkstationError> {
        let Some(mut account) = self.vault().server_account()? else {
            return Ok(false);
        };
        let told = match self.server_link() {
            Ok((_, client, key)) if account.access_token.is_some() => self
                .with_access(&client, &key, &mut account, |token| client.logout(token))
                .is_ok(),
            _ => false,
        };
        account.access_token = None;
        account.refresh_token = None;
        self.vault().save_server_account(&account)?;
        self.vault().append_audit(
            &AuditEvent::new(AuditAction::ServerAccount, AuditOutcome::Success).detail(if told {
                "signed out; the server ended this device's session"
            } else {
                "signed out here; the server could not be told (its session for this device ends when it expires)"
            }),
        )?;
        Ok(told)
    }

    /// The server account this vault syncs with, if any (no secrets leave it here but to the
    /// caller's own process).
    pub fn server_account(&self) -> Result<Option<ServerAccount>, WorkstationError> {
        Ok(self.vault().server_account()?)
    }

    /// One pull round: asks the server what changed since the stored cursor, downloads each newly
    /// visible document (checked against its SHA-256, validated by pdfium; stored as they arrive,
    /// see [`STORE_EVERY_DOCUMENTS`]), then purges each revoked one, merges the annotations and
    /// stores the new cursor in one vault transaction — the cursor moves only with the whole round. Renews the session
    /// with the device key when the access token has expired. A server restored from a backup
    /// (`cursor_ahead`) is pulled again from the start.
    pub fn sync_pull(
        &self,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PullReport, WorkstationError> {
        let (mut account, client, key) = self.server_link()?;
        let cursor = account.pull_cursor;
        let restored = |session: &Session, account: &mut ServerAccount| {
            // Restored from a backup: it lost what came after; offer all of it again.
            session.vault().forget_server_progress()?;
            session.with_access(&client, &key, account, |token| {
                client.pull_round_counted(token, 0, PULL_PAGE)
            })
        };
        let (changes, cursor, revoked_count) =
            match self.with_access(&client, &key, &mut account, |token| {
                client.pull_round_counted(token, cursor, PULL_PAGE)
            }) {
                Err(WorkstationError::Server(ServerError::Refused { code, .. }))
                    if code == wire::error_codes::CURSOR_AHEAD =>
                {
                    restored(self, &mut account)?
                }
                // The server is behind a position it reported after a push: restored too.
                Ok((_, reached, _)) if reached < self.vault().server_position_seen()? => {
                    restored(self, &mut account)?
                }
                other => other?,
            };

        if changes.is_empty() && cursor == account.pull_cursor {
            // Nothing changed (the usual round): nothing to apply, the cursor stays.
            self.vault().note_server_position(cursor)?;
            if let Some(count) = revoked_count {
                self.take_revocation_list(&client, count)?;
            }
            return Ok(PullReport {
                cursor,
                ..PullReport::default()
            });
        }
        let links = self.vault().server_document_links()?;
        let mut downloads = Vec::new();
        let mut removed = Vec::new();
        let mut moved = Vec::new();
        let mut deferred = Vec::new();
        let mut updated = Vec::new();
        let mut remote_annotations = Vec::new();
        let mut unreadable_annotations = Vec::new();
        let mut seen = Vec::new();
        for change in changes {
            match change {
                wire::DocumentChange::Visible { position, document } => {
                    seen.push(document.id.clone());
                    match links.iter().find(|link| link.server_id == document.id) {
                        Some(link) if link.head_sha256 == document.sha256 => {}
                        Some(link) => moved.push((link.clone(), document)),
                        // A server document with the bytes of one linked here already is shown
                        // through that one (the first round said so); nothing to fetch again.
                        None if links.iter().any(|link| link.head_sha256 == document.sha256) => {}
                        None => downloads.push((position, document)),
                    }
                }
                wire::DocumentChange::Removed { document_id, .. } => removed.push(document_id),
                wire::DocumentChange::Annotation { annotation, .. }
                    if !readable_annotation(&annotation) =>
                {
                    unreadable_annotations.push(annotation.id)
                }
                wire::DocumentChange::Annotation { annotation, .. } => {
                    remote_annotations.push(RemoteAnnotation {
                        id: annotation.id,
                        server_document_id: annotation.document_id,
                        page_no: annotation.page_no,
                        kind: annotation.kind,
                        author: annotation.author,
                        body: annotation.body,
                        revision: annotation.revision,
                        logical_clock: annotation.logical_clock,
                        origin: annotation.origin,
                        deleted: annotation.deleted,
                        created_at_ms: annotation.created_at_ms,
                        modified_at_ms: annotation.modified_at_ms,
                    })
                }
            }
        }
        // A document seen twice in the round (its head moved between pages) is taken at its
        // newest change; one the round also removes is not downloaded (it would be shown until
        // the round is applied).
        let mut newest = std::collections::HashMap::new();
        for (index, (_, document)) in downloads.iter().enumerate() {
            newest.insert(document.id.clone(), index);
        }
        let downloads: Vec<(i64, wire::DocumentInfo)> = downloads
            .into_iter()
            .enumerate()
            .filter(|(index, (_, document))| {
                newest.get(&document.id) == Some(index) && !removed.contains(&document.id)
            })
            .map(|(_, download)| download)
            .collect();
        progress(PullProgress::Planned {
            downloads: downloads.len() + moved.len(),
            purges: removed.len(),
            bytes: downloads
                .iter()
                .map(|(_, d)| d.size)
                .chain(moved.iter().map(|(_, d)| d.size))
                .sum(),
        });
        // Heads that moved on the server are met first, each in its own transaction: if the round
        // is not applied after all, the next one brings them again and finds them here.
        for (link, document) in &moved {
            let mut server = ServerLink {
                client: &client,
                key: &key,
                account: &mut account,
            };
            match self.meet_server_head(&mut server, link, document, None, None, cancel)? {
                HeadMet::AlreadyHere => {}
                HeadMet::Taken { .. } => updated.push(link.document_id.clone()),
                HeadMet::Waiting => deferred.push(document.id.clone()),
            }
            progress(PullProgress::Arrived {
                title: document.title.clone(),
                bytes: document.size,
            });
        }

        // Each download goes into the vault part by part (resumed from what an earlier round
        // kept), is checked against its hash and read by pdfium; only its page texts stay in
        // memory. The documents are stored from the vault's parts as they arrive (the cursor
        // moves only when the whole round is applied).
        let account = Mutex::new(account);
        let (stored_early, visible) =
            self.download_all(&client, &key, &account, downloads, progress, cancel)?;
        let round = PullRound {
            visible,
            annotations: remote_annotations,
            removed,
            seen,
            cursor,
        };
        let AppliedPull {
            stored,
            purged,
            merged_annotations,
            discarded_annotations,
        } = self.vault().apply_pull_round(&round)?;
        let stored: Vec<DocumentId> = stored_early.into_iter().chain(stored).collect();
        self.vault().note_server_position(cursor)?;
        if let Some(count) = revoked_count {
            self.take_revocation_list(&client, count)?;
        }
        // A vault connected before the CA was trusted at sign-in gets it with its documents.
        if !stored.is_empty() && self.vault().trust_anchors()?.is_empty() {
            self.trust_server_ca(&client)?;
        }
        Ok(PullReport {
            stored,
            purged,
            updated,
            deferred,
            merged_annotations,
            unreadable_annotations,
            discarded_annotations,
            cursor,
        })
    }

    /// Pushes this vault's annotation changes on server documents (up to 500 per call), each as an
    /// operation whose id is derived from the vault, the annotation and its clock — so a retry after
    /// a lost answer carries the same id and the server applies it once. Refused operations are
    /// audited with the server's reason — except those refused because the document is not the
    /// user's now: held until a pull shows it theirs again (offered again) or purges it (told as
    /// discarded in the purge's notice and audit entry).
    pub fn sync_push(&self) -> Result<PushReport, WorkstationError> {
        self.sync_push_cancellable(&AtomicBool::new(false), &mut |_| {})
    }

    /// [`Session::sync_push`], reporting the revisions' uploads to `progress` and stopping
    /// between upload chunks when `cancel` is set. Document revisions go first (see
    /// [`crate::HeadMet`] for what a conflict does), then annotation changes.
    pub fn sync_push_cancellable(
        &self,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(PushProgress),
    ) -> Result<PushReport, WorkstationError> {
        let pending = self.vault().pending_annotation_pushes(500)?;
        let mut report = PushReport::default();
        let revisions = self
            .vault()
            .pending_revision_pushes(crate::revision_sync::REVISIONS_PER_PUSH, None)?;
        let training = self.vault().pending_training_progress()?;
        let certificate_requests = self.vault().waiting_certificate_requests()?;
        if pending.is_empty()
            && revisions.is_empty()
            && training.is_none()
            && certificate_requests == 0
        {
            return Ok(report);
        }
        let (mut account, client, key) = self.server_link()?;
        // Certificate requests first: small, and a key that waits for one can sign once it comes.
        if certificate_requests > 0 {
            report.certificates_issued =
                self.send_waiting_certificate_requests(&client, &key, &mut account)?;
        }
        if !revisions.is_empty() {
            self.push_all_revisions(
                revisions,
                &mut ServerLink {
                    client: &client,
                    key: &key,
                    account: &mut account,
                },
                &mut report,
                cancel,
                progress,
            )?;
        }
        // Tutorial progress goes last: it never holds back the user's real work.
        if let Some((op_id, sequence, progress)) = training {
            self.push_training_progress(&client, &key, &mut account, op_id, sequence, &progress)?;
        }
        if pending.is_empty() {
            return Ok(report);
        }
        let vault_id = self.vault().vault_id();
        let ops: Vec<wire::PushOp> = pending
            .iter()
            .map(|p| {
                let r = &p.record;
                wire::PushOp {
                    op_id: operation_id(&vault_id.to_string(), &r.id, r.logical_clock),
                    change: wire::OpChange::Annotation {
                        annotation: wire::AnnotationState {
                            id: r.id.clone(),
                            document_id: p.server_document_id.clone(),
                            page_no: r.page_no,
                            kind: r.kind.clone(),
                            author: r.author.clone(),
                            body: r.body.clone(),
                            revision: r.revision,
                            logical_clock: r.logical_clock,
                            origin: r.origin.clone(),
                            deleted: r.deleted,
                            created_at_ms: r.created_at_ms,
                            modified_at_ms: r.modified_at_ms,
                        },
                    },
                }
            })
            .collect();
        let response = self.with_access(&client, &key, &mut account, |token| {
            client.push(token, ops.clone())
        })?;
        self.vault().note_server_position(response.position)?;
        if response.results.len() != pending.len() {
            return Err(ServerError::Malformed(
                "the push answer has a different number of results".into(),
            )
            .into());
        }
        let mut synced = Vec::new();
        let mut refused = Vec::new();
        let mut held = Vec::new();
        for (p, result) in pending.iter().zip(response.results) {
            let id = p.record.id.clone();
            let clock = p.record.logical_clock;
            match result.outcome {
                wire::OpOutcome::Applied => report.applied += 1,
                wire::OpOutcome::AlreadyApplied => report.already_applied += 1,
                wire::OpOutcome::Conflict { .. } => report.superseded += 1,
                wire::OpOutcome::Rejected { code, reason } => {
                    report.refused.push((id.clone(), reason.clone()));
                    // The document is not the user's now: the change is held until a pull purges
                    // the document (the change goes with it, and the user is told) or shows it
                    // theirs again (the change is offered again). Any other refusal is final.
                    if code == wire::error_codes::NOT_FOUND {
                        held.push((id, clock, reason));
                    } else {
                        refused.push((id, clock, reason));
                    }
                    continue;
                }
            }
            synced.push((id, clock));
        }
        self.vault()
            .record_annotation_pushes(&synced, &refused, &held)?;
        Ok(report)
    }

    /// Pushes the user's tutorial progress (read from their sandbox at the real unlock): the only
    /// thing of the tutorial that reaches the server. Applied, already applied or outdated by a
    /// newer record there, it leaves the outbox; refused, it is dropped with the reason audited.
    fn push_training_progress(
        &self,
        client: &ServerClient,
        key: &DeviceKey,
        account: &mut ServerAccount,
        op_id: String,
        sequence: i64,
        progress: &str,
    ) -> Result<(), WorkstationError> {
        let progress = match serde_json::from_str::<wire::TrainingProgress>(progress) {
            Ok(progress) => wire::TrainingProgress {
                sequence,
                ..progress
            },
            Err(e) => {
                // Unreadable (written by another version?): dropped, never blocking the push.
                self.vault().append_audit(
                    &AuditEvent::new(AuditAction::ServerAccount, AuditOutcome::Failure).detail(
                        format!("the waiting tutorial progress was unreadable and dropped: {e}"),
                    ),
                )?;
                self.vault().training_progress_sent(&op_id)?;
                return Ok(());
            }
        };
        let op = wire::PushOp {
            op_id: op_id.clone(),
            change: wire::OpChange::TrainingProgress { progress },
        };
        let response = self.with_access(client, key, account, |token| {
            client.push(token, vec![op.clone()])
        })?;
        let Some(result) = response.results.into_iter().next() else {
            return Err(ServerError::Malformed("the push answer has no result".into()).into());
        };
        if let wire::OpOutcome::Rejected { reason, .. } = &result.outcome {
            self.vault().append_audit(
                &AuditEvent::new(AuditAction::ServerAccount, AuditOutcome::Failure).detail(
                    format!("the server refused the tutorial progress: {reason}"),
                ),
            )?;
        }
        self.vault().training_progress_sent(&op_id)?;
        Ok(())
    }

    /// The user's role on the server, as it said at the last sign-in from this vault (none for a
    /// vault that does not sync).
    pub fn server_role(&self) -> Result<Option<wire::Role>, WorkstationError> {
        Ok(self
            .vault()
            .server_role()?
            .as_deref()
            .and_then(wire::Role::parse))
    }

    /// The tutorial progress of the trainees this user oversees, from the server (a supervisor
    /// sees the people of their unit).
    pub fn training_overview(&self) -> Result<wire::TrainingOverview, WorkstationError> {
        let (mut account, client, key) = self.server_link()?;
        self.with_access(&client, &key, &mut account, |token| client.training(token))
    }

    /// Uploads the audit chain entries the server does not hold yet (up to 1000 per call); the
    /// server checks their continuity. Returns the problems it found (none for an intact chain).
    pub fn sync_audit(&self) -> Result<Vec<wire::AuditProblem>, WorkstationError> {
        let after = self.vault().audit_uploaded_seq()?;
        let entries = self.vault().audit_entries(after, 1000)?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let (mut account, client, key) = self.server_link()?;
        let upload: Vec<wire::AuditEntryUpload> = entries
            .into_iter()
            .map(|e| wire::AuditEntryUpload {
                seq: e.seq,
                at_ms: e.at_ms,
                actor: e.actor,
                action: e.action,
                document_id: e.document_id,
                outcome: e.outcome,
                detail: e.detail,
                prev_hash: e.prev_hash,
                hash: e.hash,
            })
            .collect();
        let result = self.with_access(&client, &key, &mut account, |token| {
            client.upload_audit(token, upload.clone())
        })?;
        self.vault().set_audit_uploaded_seq(result.stored_up_to)?;
        Ok(result.problems)
    }

    /// Asks the organisation's CA, through the server, for a certificate for key `key_id`. The
    /// request is kept in the vault first: when the server cannot be reached it waits there and
    /// the next sync sends it ([`SigningKeyInfo::certificate_requested`]); the issued certificate
    /// and its chain are imported when they come. A refusal by the server is kept for the user
    /// ([`SigningKeyInfo::certificate_refusal`]) and returned as the error.
    ///
    /// [`SigningKeyInfo::certificate_requested`]: crate::SigningKeyInfo::certificate_requested
    /// [`SigningKeyInfo::certificate_refusal`]: crate::SigningKeyInfo::certificate_refusal
    pub fn request_signer_certificate(
        &self,
        key_id: &str,
    ) -> Result<crate::SigningKeyInfo, WorkstationError> {
        self.key_record(key_id)?;
        let (mut account, client, key) = self.server_link()?;
        self.vault().queue_certificate_request(key_id)?;
        match self.send_certificate_request(&client, &key, &mut account, key_id) {
            Ok(info) => Ok(info),
            Err(error) if keeps_waiting(&error) && !error.is_device_revoked() => {
                self.signing_key(key_id)
            }
            Err(error) => Err(error),
        }
    }

    /// Sends the certificate requests that wait (see [`Session::request_signer_certificate`]);
    /// how many certificates came. A request that fails for good (refused, or its certificate
    /// unusable) stops waiting, with the reason kept with its key; one whose answer went wrong on
    /// the way waits for the next sync; neither holds back the rest of the push. An unreachable
    /// server fails the push.
    fn send_waiting_certificate_requests(
        &self,
        client: &ServerClient,
        key: &DeviceKey,
        account: &mut ServerAccount,
    ) -> Result<usize, WorkstationError> {
        let waiting: Vec<String> = self
            .vault()
            .signing_keys()?
            .into_iter()
            .filter(|k| k.certificate_request_waits())
            .map(|k| k.id)
            .collect();
        let mut issued = 0;
        for key_id in waiting {
            match self.send_certificate_request(client, key, account, &key_id) {
                Ok(_) => issued += 1,
                // No server to talk to: the rest of the push would meet the same.
                Err(
                    error @ (WorkstationError::SignInNeeded
                    | WorkstationError::Server(ServerError::Unreachable { .. })),
                ) => return Err(error),
                Err(error) if error.is_device_revoked() => return Err(error),
                // Refused or unusable (kept with the key), or an answer that went wrong on the
                // way (the request waits): the rest of the push still goes.
                Err(_) => {}
            }
        }
        Ok(issued)
    }

    /// Sends key `key_id`'s certificate request and imports what the CA issued, one request at a
    /// time in this session (the user's and the background sync's never cross). The server
    /// issues one certificate per key and device: a request sent again (its answer lost) gets the
    /// same one. A failure that will not pass by waiting — a refusal, an answer that cannot be
    /// used — is kept with the key and ends the request.
    fn send_certificate_request(
        &self,
        client: &ServerClient,
        key: &DeviceKey,
        account: &mut ServerAccount,
        key_id: &str,
    ) -> Result<crate::SigningKeyInfo, WorkstationError> {
        let _one_at_a_time = self
            .certificate_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let record = self.key_record(key_id)?;
        if record.certificate.is_some() {
            // The other sender got it meanwhile.
            return self.signing_key(key_id);
        }
        let outcome = self.fetch_certificate(client, key, account, key_id, &record.request);
        if let Err(error) = &outcome {
            if !keeps_waiting(error) {
                let reason = match error {
                    WorkstationError::Server(ServerError::Refused { message, .. }) => {
                        message.clone()
                    }
                    other => other.to_string(),
                };
                self.vault().refuse_certificate_request(key_id, &reason)?;
            }
        }
        outcome
    }

    /// Asks the CA for the certificate of `request_der` and imports it for key `key_id`.
    fn fetch_certificate(
        &self,
        client: &ServerClient,
        key: &DeviceKey,
        account: &mut ServerAccount,
        key_id: &str,
        request_der: &[u8],
    ) -> Result<crate::SigningKeyInfo, WorkstationError> {
        let issued = self.with_access(client, key, account, |token| {
            client.request_certificate(token, request_der)
        })?;
        let decode = |text: &str| {
            let der = base64ct::Base64UrlUnpadded::decode_vec(text).map_err(|_| {
                WorkstationError::Sync("the server sent a certificate that is not base64url".into())
            })?;
            let certificate =
                outpost_pdf::certificate_from_der(&der).map_err(WorkstationError::Engine)?;
            Ok::<_, WorkstationError>((der, certificate))
        };
        let mut certificates = vec![decode(&issued.certificate)?.1];
        for link in &issued.chain {
            let (der, certificate) = decode(link)?;
            self.add_trust_anchor(&der)?;
            certificates.push(certificate);
        }
        self.import_certificates(key_id, certificates)
    }

    /// Fetches the organisation's revocation list when the server's count of revoked
    /// certificates differs from the one the vault's list was fetched at (none: always).
    fn take_revocation_list(
        &self,
        client: &ServerClient,
        revoked_count: u64,
    ) -> Result<(), WorkstationError> {
        let held = self.vault().revocation_list()?.map(|(_, count)| count);
        if held == Some(revoked_count) {
            return Ok(());
        }
        if let Some(der) = client.revocation_list()? {
            self.vault().store_revocation_list(&der, revoked_count)?;
        }
        Ok(())
    }

    /// Downloads `downloads` into the vault, [`DOWNLOADS_IN_FLIGHT`] at a time (so the network,
    /// the vault's writes and pdfium overlap). Documents that arrived are stored as they come,
    /// every [`STORE_EVERY_DOCUMENTS`] or [`STORE_EVERY`] (without moving the cursor), so a long
    /// first sync shows them and an interrupted one keeps them; returns those stored and the rest,
    /// to be stored with the round. Progress goes to `progress` from this thread. The first
    /// failure stops the others between parts (what arrived is stored, or kept for the next
    /// round) and is returned; so is the user's cancel ([`ServerError::Cancelled`]).
    fn download_all(
        &self,
        client: &ServerClient,
        key: &DeviceKey,
        account: &Mutex<ServerAccount>,
        downloads: Vec<(i64, wire::DocumentInfo)>,
        progress: &mut dyn FnMut(PullProgress),
        cancel: &AtomicBool,
    ) -> Result<(Vec<DocumentId>, Vec<PulledDocument>), WorkstationError> {
        enum Event {
            Progress(PullProgress),
            Done(usize, Result<Vec<String>, WorkstationError>),
            /// A download thread could not begin (its pack could not be made).
            Failed(WorkstationError),
        }
        // Documents with the same bytes (the server keeps them once) are downloaded once: the
        // first of them goes, the others take its page texts.
        let mut first_seen = std::collections::HashMap::new();
        let first_with_bytes: Vec<usize> = downloads
            .iter()
            .enumerate()
            .map(|(index, (_, document))| {
                *first_seen.entry(document.sha256.as_str()).or_insert(index)
            })
            .collect();
        let next = AtomicUsize::new(0);
        // Set at the user's cancel or the first failure: the other downloads stop between parts.
        let halt = AtomicBool::new(false);
        let mut page_texts: Vec<Option<Vec<String>>> = vec![None; downloads.len()];
        let mut failure: Option<WorkstationError> = None;
        // Which arrived; those arrived and not yet stored (indexes into `downloads`); and the
        // documents stored.
        let mut arrived = vec![false; downloads.len()];
        let mut ready: Vec<usize> = Vec::new();
        let mut stored: Vec<DocumentId> = Vec::new();
        let mut last_stored = std::time::Instant::now();
        let parts_flush = self.vault().parts_flush();
        let pulled = |index: usize, page_texts: Vec<String>| {
            let (position, document) = &downloads[index];
            PulledDocument {
                server_id: document.id.clone(),
                position: *position,
                id: self.new_document_id(),
                sha256: document.sha256.clone(),
                title: document.title.clone(),
                page_texts,
                source_name: format!("server document {}", document.id),
            }
        };
        // The arrived documents not yet stored, in the server's order (of documents with the same
        // bytes the first is the one linked).
        let take_ready = |ready: &mut Vec<usize>, page_texts: &mut Vec<Option<Vec<String>>>| {
            ready.sort_unstable();
            ready
                .drain(..)
                .filter_map(|index| page_texts[index].take().map(|texts| pulled(index, texts)))
                .collect::<Vec<PulledDocument>>()
        };
        let mut store_ready = |ready: &mut Vec<usize>,
                               page_texts: &mut Vec<Option<Vec<String>>>|
         -> Result<usize, WorkstationError> {
            let documents = take_ready(ready, page_texts);
            // Flushed without holding the vault: the downloads in flight go on meanwhile.
            let flushed = parts_flush.run_before_storing(&documents)?;
            stored.extend(self.vault().store_flushed_documents(&documents, flushed)?);
            Ok(stored.len())
        };
        std::thread::scope(|scope| {
            let (events, arriving) = std::sync::mpsc::channel::<Event>();
            for _ in 0..DOWNLOADS_IN_FLIGHT.min(downloads.len()) {
                let events = events.clone();
                let (next, halt, downloads) = (&next, &halt, &downloads);
                let first_with_bytes = &first_with_bytes;
                scope.spawn(move || {
                    // This thread's pack: the parts of every document it fetches go into it.
                    let made = self.vault().begin_parts_pack(&mut **self.rng());
                    let mut pack = match made {
                        Ok(pack) => pack,
                        Err(error) => {
                            let _ = events.send(Event::Failed(error.into()));
                            return;
                        }
                    };
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some((_, document)) = downloads.get(index) else {
                            break;
                        };
                        if halt.load(Ordering::Relaxed) {
                            break;
                        }
                        if first_with_bytes[index] != index {
                            continue;
                        }
                        let mut report = |step| {
                            let _ = events.send(Event::Progress(step));
                        };
                        let here = self.vault().document_by_sha256(&document.sha256);
                        let outcome = match here {
                            // The same bytes are here already (imported, or another server document).
                            Ok(Some(_)) => Ok(Vec::new()),
                            Ok(None) => self.download_into_vault(
                                (client, key, account),
                                &mut pack,
                                document,
                                &mut report,
                                halt,
                            ),
                            Err(error) => Err(error.into()),
                        };
                        if outcome.is_ok() {
                            report(PullProgress::Arrived {
                                title: document.title.clone(),
                                bytes: document.size,
                            });
                        }
                        let _ = events.send(Event::Done(index, outcome));
                    }
                });
            }
            drop(events);
            loop {
                match arriving.recv_timeout(Duration::from_millis(50)) {
                    Ok(Event::Progress(step)) => progress(step),
                    Ok(Event::Done(index, Ok(texts))) => {
                        let mut twins = Vec::new();
                        for (same, (_, document)) in downloads.iter().enumerate() {
                            if same != index && first_with_bytes[same] == index {
                                page_texts[same] = Some(texts.clone());
                                arrived[same] = true;
                                twins.push(same);
                                progress(PullProgress::Arrived {
                                    title: document.title.clone(),
                                    bytes: document.size,
                                });
                            }
                        }
                        page_texts[index] = Some(texts);
                        arrived[index] = true;
                        ready.push(index);
                        ready.append(&mut twins);
                    }
                    Ok(Event::Done(_, Err(error)) | Event::Failed(error)) => {
                        halt.store(true, Ordering::Relaxed);
                        // The first failure is the cause; the others only stopped because of it.
                        failure.get_or_insert(error);
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
                if cancel.load(Ordering::Relaxed) {
                    halt.store(true, Ordering::Relaxed);
                }
                let due = ready.len() >= STORE_EVERY_DOCUMENTS
                    || (!ready.is_empty() && last_stored.elapsed() >= STORE_EVERY);
                if due && failure.is_none() {
                    match store_ready(&mut ready, &mut page_texts) {
                        Ok(documents) => progress(PullProgress::Stored { documents }),
                        Err(error) => {
                            halt.store(true, Ordering::Relaxed);
                            failure.get_or_insert(error);
                        }
                    }
                    last_stored = std::time::Instant::now();
                }
            }
        });
        let stopped = failure.or_else(|| {
            // Stopped before some began (the user's cancel), or they ended without a word.
            (arrived.iter().any(|here| !here)).then(|| match cancel.load(Ordering::Relaxed) {
                true => ServerError::Cancelled.into(),
                false => WorkstationError::Sync(
                    "some downloads of the round did not finish; sync again".into(),
                ),
            })
        });
        if let Some(error) = stopped {
            // What arrived is stored all the same (if that fails too, the round's own failure is
            // what the user needs to hear; the bytes stay for the next round).
            let _ = store_ready(&mut ready, &mut page_texts);
            return Err(error);
        }
        let rest = take_ready(&mut ready, &mut page_texts);
        Ok((stored, rest))
    }

    /// Downloads `document` into the vault, resuming from the bytes an earlier attempt kept;
    /// checks the whole against its length and SHA-256 (a mismatch discards it) and returns the
    /// text of each page, read by pdfium.
    fn download_into_vault(
        &self,
        (client, key, account): (&ServerClient, &DeviceKey, &Mutex<ServerAccount>),
        pack: &mut outpost_vault::PartsPack,
        document: &wire::DocumentInfo,
        progress: &mut dyn FnMut(PullProgress),
        cancel: &AtomicBool,
    ) -> Result<Vec<String>, WorkstationError> {
        let sha256 = document.sha256.as_str();
        // A download that runs from the first byte to the last in one attempt is hashed as it
        // arrives and handed to pdfium from memory (up to a bound); a resumed one is read back.
        let mut fresh: Option<(Sha256, Vec<u8>)> = None;
        let in_memory = document.size <= IN_MEMORY_DOCUMENT_BYTES;
        let outcome = self.with_shared_access(client, key, account, |token| {
            let held = self
                .vault()
                .download_held(sha256)
                .map_err(|e| ServerError::NotKept(e.to_string()))?;
            fresh = (held == 0).then(|| (Sha256::new(), Vec::new()));
            client.download_from(
                token,
                document,
                held,
                &mut |start, bytes| {
                    let sealing = outpost_vault::PartRandomness::draw(&mut **self.rng());
                    // Sealed and written without holding the vault, so that the downloads in
                    // flight and the storing of those that arrived do not wait for one another.
                    let part = self
                        .vault()
                        .plan_download_part(sha256, start, pack, sealing)
                        .map_err(|e| e.to_string())?;
                    // Not flushed here: the vault writes out its packs at once before it
                    // stores a batch of documents.
                    let written = part.write(bytes).map_err(|e| e.to_string())?;
                    self.vault()
                        .record_download_part(&written)
                        .map_err(|e| e.to_string())?;
                    if let Some((digest, kept)) = fresh.as_mut() {
                        digest.update(bytes);
                        if in_memory {
                            kept.extend_from_slice(bytes);
                        }
                    }
                    Ok(())
                },
                &mut |done, total| {
                    progress(PullProgress::Downloading {
                        title: document.title.clone(),
                        done,
                        total,
                    })
                },
                cancel,
            )
        });
        if let Err(WorkstationError::Server(ServerError::Malformed(_))) = &outcome {
            // What is held cannot be resumed from.
            self.vault().discard_download(sha256)?;
        }
        outcome?;
        let (length, digest, bytes) = match fresh {
            Some((digest, kept)) if !in_memory || kept.len() as u64 == document.size => (
                document.size,
                hex::encode(digest.finalize()),
                in_memory.then_some(kept),
            ),
            _ => {
                let read_back = self.vault().download_digest(sha256);
                let (length, digest) = self.held_or_discarded(sha256, read_back)?;
                (length, digest, None)
            }
        };
        if length != document.size || digest != sha256 {
            self.vault().discard_download(sha256)?;
            return Err(ServerError::HashMismatch {
                document: document.id.clone(),
            }
            .into());
        }
        let bytes = Arc::new(match bytes {
            Some(bytes) => bytes,
            None => {
                let read_back = self.vault().download_bytes(sha256);
                self.held_or_discarded(sha256, read_back)?
            }
        });
        let info = self
            .pdf
            .inspect(bytes)
            .map_err(crate::error::classify_pdf_error)?;
        Ok(info.page_texts)
    }

    /// `read_back` of the held bytes of a download; held bytes that cannot be read back (a part
    /// lost to a power cut, a changed file) are discarded so the next round fetches them anew.
    fn held_or_discarded<T>(
        &self,
        sha256: &str,
        read_back: Result<T, outpost_vault::VaultError>,
    ) -> Result<T, WorkstationError> {
        if let Err(outpost_vault::VaultError::PartUnreadable { .. }) = &read_back {
            self.vault().discard_download(sha256)?;
        }
        Ok(read_back?)
    }

    /// The stored account, a client for its server, and the device key.
    pub(crate) fn server_link(
        &self,
    ) -> Result<(ServerAccount, ServerClient, DeviceKey), WorkstationError> {
        let account = self
            .vault()
            .server_account()?
            .ok_or(outpost_vault::VaultError::NoServerAccount)?;
        let client = self.client_for(&account)?;
        let key = DeviceKey::from_secret_bytes(&account.device_key).ok_or_else(|| {
            WorkstationError::Sync(
                "the stored device key is unreadable; connect to the server again".into(),
            )
        })?;
        Ok((account, client, key))
    }

    /// The client for `account`'s server: the one kept from the last call if it is for the same
    /// server and CA (so its open connections are used again: one TLS handshake for a round's
    /// push, pull and audit upload instead of one each, which on a slow link is most of a quiet
    /// round's time), else a new one, kept in its place.
    fn client_for(&self, account: &ServerAccount) -> Result<ServerClient, WorkstationError> {
        let mut kept = self.server_client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(kept) = kept
            .as_ref()
            .filter(|k| k.base_url == account.base_url && k.ca_pem == account.ca_pem)
        {
            return Ok(kept.client.clone());
        }
        let client = ServerClient::new(
            &account.base_url,
            account.ca_pem.as_bytes(),
            REQUEST_TIMEOUT,
        )?;
        *kept = Some(KeptClient {
            base_url: account.base_url.clone(),
            ca_pem: account.ca_pem.clone(),
            client: client.clone(),
        });
        Ok(client)
    }

    /// Runs `request` with the account's access token; on `token_expired` renews the session with
    /// the device key (storing the new tokens in the vault) and runs it once more.
    pub(crate) fn with_access<T>(
        &self,
        client: &ServerClient,
        key: &DeviceKey,
        account: &mut ServerAccount,
        request: impl FnMut(&str) -> Result<T, ServerError>,
    ) -> Result<T, WorkstationError> {
        let shared = Mutex::new(account.clone());
        let outcome = self.with_shared_access(client, key, &shared, request);
        // Renewed tokens (if any) go back to the caller's account.
        *account = shared.into_inner().unwrap_or_else(|p| p.into_inner());
        outcome
    }

    /// [`Session::with_access`] for requests made from several threads at once: the account is
    /// shared, and only one of them renews an expired session (the others use what it got, since
    /// the server accepts each refresh token once).
    pub(crate) fn with_shared_access<T>(
        &self,
        client: &ServerClient,
        key: &DeviceKey,
        account: &Mutex<ServerAccount>,
        mut request: impl FnMut(&str) -> Result<T, ServerError>,
    ) -> Result<T, WorkstationError> {
        let lock = || account.lock().unwrap_or_else(|p| p.into_inner());
        // Signed out: nothing goes to the server until the user signs in again.
        let Some((token, expires_at_ms)) = lock().access_token.clone() else {
            return Err(WorkstationError::SignInNeeded);
        };
        // A token whose lifetime has run out by this workstation's clock (after a long offline
        // spell, say) is renewed before anything is sent under it; the server's refusal below
        // still covers a clock that ran slow.
        let token = if expires_at_ms <= self.now_ms().saturating_add(ACCESS_RENEWAL_MARGIN_MS) {
            let mut account = lock();
            match account.access_token.as_ref().map(|t| t.0.clone()) {
                Some(current) if current != token => current,
                _ => self.renew_access(client, key, &mut account)?,
            }
        } else {
            token
        };
        match request(&token) {
            Err(ServerError::Refused { code, .. }) if code == wire::error_codes::TOKEN_EXPIRED => {}
            other => return Ok(other?),
        }
        let renewed = {
            let mut account = lock();
            match account.access_token.as_ref().map(|t| t.0.clone()) {
                Some(current) if current != token => current,
                _ => self.renew_access(client, key, &mut account)?,
            }
        };
        Ok(request(&renewed)?)
    }

    /// When `session`'s access token stops working by this workstation's clock (milliseconds):
    /// now plus the lifetime the server gave it, measured on the server's clock; never, for a
    /// server that does not say when it issued the session (its refusal then says).
    fn access_expiry_ms(&self, session: &wire::Session) -> i64 {
        if session.issued_at <= 0 {
            return i64::MAX;
        }
        let lifetime_ms = (session.access_expires_at - session.issued_at)
            .max(0)
            .saturating_mul(1000);
        self.now_ms().saturating_add(lifetime_ms)
    }

    /// Renews the session with the device key, stores the new tokens in the vault and in
    /// `account`, and returns the new access token. When the answer does not arrive (a broken
    /// connection) the held tokens stay as they were: the next attempt presents the same refresh
    /// token, which the server takes again while the session it answered with was never used and
    /// its access token has not expired (15 minutes, docs/protocol.md): a lost answer costs a
    /// sign-in only when the next attempt comes later than that.
    fn renew_access(
        &self,
        client: &ServerClient,
        key: &DeviceKey,
        account: &mut ServerAccount,
    ) -> Result<String, WorkstationError> {
        let (Some(device_id), Some((refresh_token, _))) =
            (account.device_id.clone(), account.refresh_token.clone())
        else {
            return Err(WorkstationError::SignInNeeded);
        };
        let renewed = match client.refresh(&device_id, &refresh_token, key) {
            Ok(renewed) => renewed,
            Err(ServerError::Refused { code, .. })
                if code == wire::error_codes::INVALID_REFRESH =>
            {
                return Err(WorkstationError::SignInNeeded)
            }
            Err(other) => return Err(other.into()),
        };
        account.access_token = Some((
            renewed.access_token.clone(),
            self.access_expiry_ms(&renewed),
        ));
        account.refresh_token = Some((renewed.refresh_token.clone(), renewed.refresh_expires_at));
        self.vault().save_server_account(account)?;
        Ok(renewed.access_token)
    }
}

/// How long before its end (by this workstation's clock) an access token is renewed rather than
/// used: a request made just before the end should not arrive after it.
const ACCESS_RENEWAL_MARGIN_MS: i64 = 30_000;

/// Whether a request kept for the next sync should keep waiting after `error`: the server was
/// not reached or was briefly unwell (5xx, 429), its answer broke on the way, the user must sign
/// in again first, or the device was revoked (the wipe that follows ends everything anyway).
fn keeps_waiting(error: &WorkstationError) -> bool {
    match error {
        WorkstationError::Server(ServerError::Malformed(_)) => true,
        WorkstationError::Server(server) => server.is_transient() || error.is_device_revoked(),
        WorkstationError::SignInNeeded => true,
        _ => false,
    }
}

/// The id of the operation that pushes annotation `annotation` at clock `clock` from vault
/// `vault`: the same inputs always give the same UUID, so a retried push is recognised.
pub(crate) fn operation_id(vault: &str, annotation: &str, clock: i64) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("outpost-op\n{vault}\n{annotation}\n{clock}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Whether an annotation from the server is one this workstation can show: its body is a valid
/// annotation on the same page, of the kind it claims.
fn readable_annotation(state: &wire::AnnotationState) -> bool {
    match serde_json::from_str::<outpost_pdf::Annotation>(&state.body) {
        Ok(annotation) => {
            annotation.validate().is_ok()
                && annotation.page == state.page_no
                && annotation.kind.as_str() == state.kind
        }
        Err(_) => false,
    }
}
