//! Sync of document revisions (signatures, burned-in annotations). Each local revision the
//! server does not hold is uploaded (resumably) and pushed on the base the server last held; the
//! server takes it only if that base is still its head. A revision that loses — someone else's
//! revision got there first — stays on the server as a conflict branch; this workstation then
//! takes the server's head and asks for the document to be signed again. A head that moved on
//! the server while nothing was waiting here is simply taken in.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use outpost_protocol as wire;
use outpost_vault::{
    PendingRevision, RevisionPrefix, ServerAccount, ServerDocumentLink, ServerHead,
};
use sha2::{Digest, Sha256};

use crate::server_client::{DeviceKey, ServerClient, ServerError};
use crate::sync::{operation_id, PushProgress, PushReport};
use crate::{Session, WorkstationError};

/// Revisions pushed per request (more when one document has more: its revisions go together).
pub const REVISIONS_PER_PUSH: usize = 50;

/// What meeting a document's server head did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadMet {
    /// The head is a revision this vault has.
    AlreadyHere,
    /// The head was taken in; the local revisions it replaced (if any, each "cause sha256") are
    /// kept on the server as a conflict branch and the document must be signed again.
    Taken {
        /// The local revisions set aside.
        discarded: Vec<String>,
    },
    /// Local revisions the server has not seen wait here: the next push meets the conflict.
    Waiting,
}

/// The link, the client and the credentials a sync step works with.
pub(crate) struct ServerLink<'a> {
    pub client: &'a ServerClient,
    pub key: &'a DeviceKey,
    pub account: &'a mut ServerAccount,
}

impl Session {
    /// Pushes every revision waiting to go, starting with `first` (the vault's first of them):
    /// whole documents, [`REVISIONS_PER_PUSH`] revisions or so at a time, in requests of at most
    /// [`wire::MAX_PUSH_OPS`] operations (a longer run of one document's revisions goes in
    /// consecutive requests: its conflict, if any, is met once the last has gone), reported to
    /// `progress` as one plan. Documents go in the server's order, each once per push: one whose
    /// head waits (see [`HeadMet::Waiting`]) is met again in a later round.
    pub(crate) fn push_all_revisions(
        &self,
        first: Vec<PendingRevision>,
        link: &mut ServerLink<'_>,
        report: &mut PushReport,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(PushProgress),
    ) -> Result<(), WorkstationError> {
        let (waiting, bytes) = self.vault().revisions_to_push()?;
        progress(PushProgress::Planned {
            revisions: waiting,
            bytes,
        });
        let mut pending = first;
        while let Some(last) = pending.last() {
            let after = (last.position, last.server_id.clone());
            for request in pending.chunks(wire::MAX_PUSH_OPS) {
                self.push_revisions(request, link, report, cancel, progress)?;
            }
            pending = self
                .vault()
                .pending_revision_pushes(REVISIONS_PER_PUSH, Some((after.0, &after.1)))?;
        }
        Ok(())
    }

    /// Pushes `pending` (from `Vault::pending_revision_pushes`): each one's
    /// appended bytes are uploaded (resuming an interrupted upload), then the revisions go as
    /// operations with ids derived from the vault, document and hash — a retry after a lost answer
    /// is recognised. For each document whose revision lost (conflict), the server's head is
    /// taken in its place and the document is listed in [`PushReport::resign_needed`].
    fn push_revisions(
        &self,
        pending: &[PendingRevision],
        link: &mut ServerLink<'_>,
        report: &mut PushReport,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(PushProgress),
    ) -> Result<(), WorkstationError> {
        let vault_id = self.vault().vault_id().to_string();
        let mut ops = Vec::with_capacity(pending.len());
        // Those whose bytes are still here (a conflict met earlier in the push may have set a
        // revision aside), read one at a time as they go.
        let mut sent = Vec::with_capacity(pending.len());
        for revision in pending {
            let appended = self
                .vault()
                .revision_appended(&revision.document_id, revision.revision)?;
            let Some(appended) = appended else {
                continue;
            };
            let title = self.vault().document(&revision.document_id)?.title;
            let appended_sha256 =
                self.with_access(link.client, link.key, link.account, |token| {
                    link.client.upload(
                        token,
                        &appended,
                        &mut |done, total| {
                            progress(PushProgress::Uploading {
                                title: title.clone(),
                                done,
                                total,
                            })
                        },
                        cancel,
                    )
                })?;
            progress(PushProgress::Uploaded {
                title,
                bytes: appended.len() as u64,
            });
            sent.push(revision);
            ops.push(wire::PushOp {
                op_id: operation_id(
                    &vault_id,
                    &format!("revision {} {}", revision.server_id, revision.sha256),
                    revision.revision,
                ),
                change: wire::OpChange::Revision {
                    document_id: revision.server_id.clone(),
                    base_sha256: revision.base_sha256.clone(),
                    sha256: revision.sha256.clone(),
                    appended_sha256,
                    cause: revision.cause.clone(),
                },
            });
        }
        if sent.is_empty() {
            return Ok(());
        }
        let response = self.with_access(link.client, link.key, link.account, |token| {
            link.client.push(token, ops.clone())
        })?;
        self.vault().note_server_position(response.position)?;
        if response.results.len() != sent.len()
            || response
                .results
                .iter()
                .zip(&ops)
                .any(|(result, op)| result.op_id != op.op_id)
        {
            return Err(ServerError::Malformed(
                "the push answer does not answer the operations sent".into(),
            )
            .into());
        }
        // The highest revision of each conflicted document that this push put on the server.
        let mut conflicted: Vec<(ServerDocumentLink, i64)> = Vec::new();
        let links = self.vault().server_document_links()?;
        for (revision, result) in sent.into_iter().zip(response.results) {
            match result.outcome {
                wire::OpOutcome::Applied | wire::OpOutcome::AlreadyApplied => {
                    if matches!(result.outcome, wire::OpOutcome::Applied) {
                        report.applied += 1;
                    } else {
                        report.already_applied += 1;
                    }
                    self.vault().record_revision_synced(
                        &revision.document_id,
                        revision.revision,
                        &revision.sha256,
                    )?;
                }
                wire::OpOutcome::Conflict { .. } => {
                    match conflicted
                        .iter_mut()
                        .find(|(l, _)| l.document_id == revision.document_id)
                    {
                        Some((_, up_to)) => *up_to = (*up_to).max(revision.revision),
                        None => {
                            if let Some(l) =
                                links.iter().find(|l| l.document_id == revision.document_id)
                            {
                                conflicted.push((l.clone(), revision.revision));
                            }
                        }
                    }
                }
                wire::OpOutcome::Rejected { reason, .. } => {
                    self.vault().record_refused_revision(
                        &revision.document_id,
                        &revision.sha256,
                        &reason,
                    )?;
                    report
                        .refused
                        .push((revision.document_id.0.clone(), reason));
                }
            }
        }
        for (document_link, pushed_up_to) in conflicted {
            let document = self.with_access(link.client, link.key, link.account, |token| {
                link.client.document(token, &document_link.server_id)
            })?;
            if let HeadMet::Taken { discarded } = self.meet_server_head(
                link,
                &document_link,
                &document,
                Some(pushed_up_to),
                None,
                cancel,
            )? {
                if !discarded.is_empty() {
                    report.resign_needed.push(document_link.document_id.clone());
                }
            }
        }
        Ok(())
    }

    /// The server's head `document` of a document held here as `bytes` (revisions `prefixes`).
    /// A head usually continues the server's previous head (`last_head`, when it is a revision
    /// here), else the newest revision here shorter than it: then only the bytes after that
    /// revision are fetched (a range request), and the whole is checked against the head's
    /// SHA-256. If it does not match, the whole head is fetched (and checked) instead.
    fn download_head(
        &self,
        link: &mut ServerLink<'_>,
        prefixes: &[RevisionPrefix],
        last_head: &str,
        bytes: &[u8],
        document: &wire::DocumentInfo,
        cancel: &AtomicBool,
    ) -> Result<Vec<u8>, WorkstationError> {
        let shorter = |p: &&RevisionPrefix| p.size < document.size && p.size <= bytes.len() as u64;
        let continued = prefixes
            .iter()
            .filter(shorter)
            .find(|p| p.sha256 == last_head)
            .or_else(|| prefixes.iter().rev().find(shorter));
        if let Some(prefix) = continued {
            let size = usize::try_from(prefix.size).unwrap_or(usize::MAX);
            let mut head = bytes[..size].to_vec();
            let fetched = self.with_access(link.client, link.key, link.account, |token| {
                head.truncate(size);
                link.client.download_from(
                    token,
                    document,
                    prefix.size,
                    &mut |_, part| {
                        head.extend_from_slice(part);
                        Ok(())
                    },
                    &mut |_, _| {},
                    cancel,
                )
            });
            match fetched {
                Ok(()) if hex::encode(Sha256::digest(&head)) == document.sha256 => return Ok(head),
                // Not a continuation of that revision (or the server would not resume there):
                // the whole head follows.
                Ok(()) | Err(WorkstationError::Server(ServerError::Malformed(_))) => {}
                Err(other) => return Err(other),
            }
        }
        let mut head = Vec::new();
        self.with_access(link.client, link.key, link.account, |token| {
            link.client
                .download(token, document, &mut head, &mut |_, _| {}, cancel)
        })?;
        Ok(head)
    }

    /// Brings a linked document to the server's head `document`. If the head is a revision here,
    /// only the link is updated. Otherwise the head is downloaded (hash-checked, validated by
    /// pdfium) and taken in after the newest local revision it extends — provided every later
    /// local revision is at most `discard_through` (they were just kept on the server as a
    /// conflict branch) or was taken from the server; revisions the server has not seen are never
    /// set aside ([`HeadMet::Waiting`]) — unless the user chose the server's copy over revisions
    /// it refused (`instead_of_refused`, the server's reason): then every later local revision
    /// is discarded.
    pub(crate) fn meet_server_head(
        &self,
        link: &mut ServerLink<'_>,
        document_link: &ServerDocumentLink,
        document: &wire::DocumentInfo,
        discard_through: Option<i64>,
        instead_of_refused: Option<&str>,
        cancel: &AtomicBool,
    ) -> Result<HeadMet, WorkstationError> {
        let local = &document_link.document_id;
        let prefixes = self.vault().revision_prefixes(local)?;
        let local_head = prefixes.last().map_or(0, |p| p.revision);
        let found_here = prefixes.iter().find(|p| p.sha256 == document.sha256);
        if let (Some(here), Some(reason)) = (found_here, instead_of_refused) {
            let adopted = self.vault().adopt_server_head(&ServerHead {
                document_id: local,
                keep_revision: Some(here.revision),
                appended: &[],
                server_sha256: &document.sha256,
                instead_of_refused: Some(reason),
                seen_revision: local_head,
            })?;
            self.close_view(local);
            return Ok(HeadMet::Taken {
                discarded: adopted.discarded,
            });
        }
        if let Some(here) = found_here {
            // Also a server restored from a backup: what it lost is pushed again.
            self.vault()
                .record_revision_synced(local, here.revision, &document.sha256)?;
            return Ok(HeadMet::AlreadyHere);
        }
        let bytes = self.vault().document_bytes(local)?;
        let head = Arc::new(self.download_head(
            link,
            &prefixes,
            &document_link.head_sha256,
            &bytes,
            document,
            cancel,
        )?);
        self.pdf
            .inspect(head.clone())
            .map_err(crate::error::classify_pdf_error)?;
        let keep = prefixes.iter().rev().find(|p| {
            let size = usize::try_from(p.size).unwrap_or(usize::MAX);
            size <= head.len() && size <= bytes.len() && head[..size] == bytes[..size]
        });
        let synced = self.vault().synced_revision(local)?;
        let waits = match keep {
            Some(keep) => {
                if keep.revision < synced {
                    // The server no longer holds revisions it took (restored from a backup):
                    // push them again from the last one it has.
                    self.vault()
                        .record_revision_synced(local, keep.revision, &document.sha256)?;
                }
                let may_discard = match instead_of_refused {
                    Some(_) => i64::MAX,
                    None => discard_through.unwrap_or(keep.revision),
                };
                // Revisions taken from the server that its head no longer continues (a
                // long-term extension it made again on a newer revision) give way without
                // asking anyone.
                local_head > keep.revision
                    && local_head > may_discard
                    && self.vault().own_revisions_after(local, keep.revision)? > 0
            }
            // The head continues no revision here: the copy here was first taken whole while
            // the server's head was its long-term extension of a revision, and that extension
            // has since given way to a push on the revision under it. Provided the head does
            // continue a complete earlier revision of the copy's bytes (up to one of its
            // `%%EOF` markers — only what came after that was replaced), it is taken whole in
            // the copy's place, unless revisions made here have not reached the server yet:
            // they go first (and, made on a head the server no longer has, come back as a
            // conflict). Revisions made here that the server holds are set aside and asked to
            // be signed again.
            None => {
                if !continues_an_earlier_revision(&head, &bytes) {
                    return Err(WorkstationError::Sync(format!(
                        "the server's copy of document {} does not continue any revision held here; it was left as it is",
                        document.id
                    )));
                }
                let may_discard = match instead_of_refused {
                    Some(_) => i64::MAX,
                    None => discard_through.unwrap_or(0),
                };
                let unsent = self
                    .vault()
                    .own_revisions_after(local, synced.max(may_discard))?
                    > 0;
                // Another document here with the head's very bytes (an exported copy imported
                // again, say): this one waits rather than fail every round.
                unsent
                    || {
                        let taken = self
                            .vault()
                            .document_by_sha256(&document.sha256)?
                            .is_some_and(|other| &other.id != local);
                        if taken {
                            tracing::warn!(document = %document.id, "the server's head is another document here already; left as it is");
                        }
                        taken
                    }
            }
        };
        let (keep_revision, appended) = match keep {
            Some(keep) => {
                let size = usize::try_from(keep.size).unwrap_or(usize::MAX);
                (Some(keep.revision), &head[size..])
            }
            None => (None, &head[..]),
        };
        let adopted = match waits {
            true => None,
            false => match self.vault().adopt_server_head(&ServerHead {
                document_id: local,
                keep_revision,
                appended,
                server_sha256: &document.sha256,
                instead_of_refused,
                seen_revision: local_head,
            }) {
                // Signed here while the head was on its way: that revision goes to the server
                // first.
                Err(outpost_vault::VaultError::DocumentChanged { .. }) => None,
                other => Some(other?),
            },
        };
        let Some(adopted) = adopted else {
            self.vault().record_server_head(local, &document.sha256)?;
            return Ok(HeadMet::Waiting);
        };
        // An open view shows the old revision's pages.
        self.close_view(local);
        Ok(HeadMet::Taken {
            discarded: adopted.discarded,
        })
    }
}

impl Session {
    /// Offers a revision the server refused to it again at the next sync (after the cause was
    /// dealt with, say an administrator restored the assignment). `false` if nothing was refused.
    pub fn offer_refused_revision_again(
        &self,
        document: &outpost_vault::DocumentId,
    ) -> Result<bool, WorkstationError> {
        Ok(self.vault().offer_refused_revision_again(document)?)
    }

    /// Takes the server's copy of a document whose revision the server refused: the local
    /// revisions it does not hold are discarded (audited with the server's reason; export a
    /// copy first to keep them), and the document is in step with the server again. Returns the
    /// revisions discarded ("cause sha256").
    pub fn take_server_copy(
        &self,
        document: &outpost_vault::DocumentId,
        cancel: &AtomicBool,
    ) -> Result<Vec<String>, WorkstationError> {
        let reason = self
            .vault()
            .document_sync_states()?
            .into_iter()
            .find(|s| &s.document_id == document)
            .and_then(|s| s.refused)
            .ok_or_else(|| {
                WorkstationError::Sync(
                    "the server refused nothing of this document; there is no copy to take instead"
                        .into(),
                )
            })?;
        let (mut account, client, key) = self.server_link()?;
        let document_link = self
            .vault()
            .server_document_links()?
            .into_iter()
            .find(|l| &l.document_id == document)
            .ok_or_else(|| {
                WorkstationError::Sync("this document does not come from the server".into())
            })?;
        let head = self.with_access(&client, &key, &mut account, |token| {
            client.document(token, &document_link.server_id)
        })?;
        let mut link = ServerLink {
            client: &client,
            key: &key,
            account: &mut account,
        };
        match self.meet_server_head(
            &mut link,
            &document_link,
            &head,
            None,
            Some(&reason),
            cancel,
        )? {
            HeadMet::Taken { discarded } => Ok(discarded),
            HeadMet::AlreadyHere | HeadMet::Waiting => Ok(Vec::new()),
        }
    }

    /// Where each server document stands with the server, for its badge: changes waiting, "sign
    /// again", and the server's reason for a refused revision.
    pub fn document_sync_states(
        &self,
    ) -> Result<Vec<outpost_vault::DocumentSyncState>, WorkstationError> {
        Ok(self.vault().document_sync_states()?)
    }

    /// The documents the server took back (their assignment ended) and that were purged here,
    /// with the changes made here that went with them, until the user dismisses them.
    pub fn purge_notices(&self) -> Result<Vec<outpost_vault::PurgeNotice>, WorkstationError> {
        Ok(self.vault().purge_notices()?)
    }

    /// Dismisses the purge notices up to `up_to` (by id): the user has read them.
    pub fn dismiss_purge_notices(&self, up_to: i64) -> Result<(), WorkstationError> {
        Ok(self.vault().dismiss_purge_notices(up_to)?)
    }

    /// The documents that hold the server's head after their signed revision lost a conflict:
    /// "needs your signature again". Signing such a document clears it.
    pub fn resign_requests(&self) -> Result<Vec<outpost_vault::ResignRequest>, WorkstationError> {
        Ok(self.vault().resign_requests()?)
    }

    /// A document's revisions, oldest first: the file imported or first downloaded (or the
    /// server's head taken whole in its place), then each signature, burn-in or revision taken
    /// from the server, with the SHA-256 of the whole document at that point.
    pub fn document_revisions(
        &self,
        id: &outpost_vault::DocumentId,
    ) -> Result<Vec<outpost_vault::DocumentRevision>, WorkstationError> {
        Ok(self.vault().document_revisions(id)?)
    }
}

/// Whether `head` continues a complete earlier revision of `copy`: their common start reaches
/// past one of the copy's `%%EOF` markers (the end of a revision).
fn continues_an_earlier_revision(head: &[u8], copy: &[u8]) -> bool {
    let common = head.iter().zip(copy).take_while(|(a, b)| a == b).count();
    copy[..common].windows(5).any(|w| w == b"%%EOF")
}
