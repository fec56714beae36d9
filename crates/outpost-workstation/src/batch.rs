//! Batch signing for supervisors: many documents, one reason, one unlock of the key, both cores.
//!
//! Each document is signed on its own: its new revision and its batch record are one
//! transaction, so if the process dies mid-batch every document is either fully signed or
//! untouched, and running the same batch again signs only what is left. Progress is reported per
//! document and the batch can be cancelled between documents.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use outpost_vault::{AuditAction, AuditEvent, AuditOutcome};
use serde::{Deserialize, Serialize};

use outpost_pdf::PdfSigner;

use crate::signing::{SignOptions, SignOutcome};
use crate::token::{TokenChoice, TokenSigner};
use crate::{DocumentId, Session, WorkstationError};

/// What to sign in a batch.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchRequest {
    /// The batch's id: give the id of an interrupted batch to finish it.
    pub batch_id: String,
    /// The documents, in order.
    pub documents: Vec<DocumentId>,
    /// How each is signed (key, reason, mark on `page`, certification).
    pub options: SignOptions,
    /// Documents signed at once (the machine's cores).
    pub parallelism: usize,
    /// Sign with this token key instead of the vault key `options.key_id` (the PIN is given
    /// once, for the whole batch).
    #[serde(default)]
    pub token: Option<TokenChoice>,
}

/// One document's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum BatchItemResult {
    /// Signed now.
    Signed {
        /// The new revision.
        revision: i64,
    },
    /// Signed by an earlier run of this batch; left alone.
    AlreadySigned {
        /// The revision that run made.
        revision: i64,
    },
    /// Not signed, and why.
    Failed {
        /// The error's code.
        code: String,
        /// The error's message.
        message: String,
    },
}

/// Progress of a batch, one report per document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchProgress {
    /// Documents finished so far (any result).
    pub done: usize,
    /// Documents in the batch.
    pub total: usize,
    /// The document just finished.
    pub document: DocumentId,
    /// Its result.
    pub result: BatchItemResult,
    /// The documents being signed now (this worker's next one included), in the order they were
    /// started: what the user is told is under way.
    pub signing: Vec<DocumentId>,
}

/// How a batch ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// The batch.
    pub batch_id: String,
    /// Documents in the batch.
    pub total: usize,
    /// Signed in this run.
    pub signed: usize,
    /// Signed by an earlier run.
    pub already_signed: usize,
    /// Not signed, with the reason for each.
    pub failed: Vec<(DocumentId, String)>,
    /// Whether the batch stopped early because it was cancelled.
    pub cancelled: bool,
}

/// A batch's claim to run in this session, given back when it ends (however it ends).
struct RunningBatch<'s> {
    session: &'s Session,
    batch_id: String,
}

impl<'s> RunningBatch<'s> {
    /// Claims `batch_id`, refused while another run of the same batch goes on here (it would try
    /// to sign the same documents at the same time).
    fn claim(session: &'s Session, batch_id: &str) -> Result<Self, WorkstationError> {
        let mut running = session
            .running_batches
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !running.insert(batch_id.to_string()) {
            return Err(WorkstationError::Signing(format!(
                "batch {batch_id} is already being signed; wait for it to end"
            )));
        }
        Ok(RunningBatch {
            session,
            batch_id: batch_id.to_string(),
        })
    }
}

impl Drop for RunningBatch<'_> {
    fn drop(&mut self) {
        self.session
            .running_batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.batch_id);
    }
}

impl Session {
    /// The documents awaiting a signature on this workstation: those not signed yet. (Which
    /// documents a supervisor must sign comes with server assignments, in the sync issue.)
    pub fn documents_awaiting_signature(&self) -> Result<Vec<DocumentId>, WorkstationError> {
        Ok(self.vault().unsigned_documents()?)
    }

    /// Signs every document of `request` with one key (unlocked once), `parallelism` at a time,
    /// reporting each document to `progress` and stopping between documents once `cancel` is set.
    pub fn sign_batch(
        &self,
        request: &BatchRequest,
        progress: &(dyn Fn(BatchProgress) + Sync),
        cancel: &AtomicBool,
    ) -> Result<BatchReport, WorkstationError> {
        if request.token.is_some() {
            self.refuse_tokens_in_tutorial()?;
        }
        let _running = RunningBatch::claim(self, &request.batch_id)?;
        // The key is unlocked once (the token's PIN given once) for the whole batch.
        let signer: Box<dyn PdfSigner> = match &request.token {
            Some(token) => Box::new(TokenSigner::open(token)?.with_issuer_from(&self.anchors()?)),
            None => Box::new(self.software_signer(&request.options.key_id)?),
        };
        let signer = signer.as_ref();
        self.check_certificate_side(signer.certificate())?;
        // A document listed twice is signed once.
        let mut seen = std::collections::HashSet::new();
        let documents: Vec<&DocumentId> = request
            .documents
            .iter()
            .filter(|d| seen.insert(*d))
            .collect();
        let total = documents.len();
        let key = match &request.token {
            Some(token) => token.key_uri(),
            None => request.options.key_id.clone(),
        };
        let rerun = !self.vault().start_signing_batch(
            &request.batch_id,
            &key,
            &request.options.reason,
            &documents,
            &AuditEvent::new(AuditAction::SignBatch, AuditOutcome::Success).detail(format!(
                "batch {}: {total} documents to sign with {}, reason '{}'",
                request.batch_id,
                match &request.token {
                    Some(_) => format!("token key {key}"),
                    None => format!("vault key {key}"),
                },
                request.options.reason
            )),
        )?;
        if rerun {
            // A batch is finished with the key it was started with: its record and audit entry
            // name that key.
            if let Some(started) = self.vault().signing_batch(&request.batch_id)? {
                if started.key != key {
                    return Err(WorkstationError::Signing(format!(
                        "batch {} was started with {}; finish it with that key",
                        request.batch_id, started.key
                    )));
                }
            }
        }
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let results: Mutex<Vec<(DocumentId, BatchItemResult)>> = Mutex::new(Vec::new());
        let in_flight: Mutex<Vec<DocumentId>> = Mutex::new(Vec::new());
        let in_flight_now = || in_flight.lock().unwrap_or_else(|p| p.into_inner());
        // The next document to sign, noted as under way; none once cancelled or all are taken.
        let claim = || -> Option<&DocumentId> {
            if cancel.load(Ordering::SeqCst) {
                return None;
            }
            let document = *documents.get(next.fetch_add(1, Ordering::SeqCst))?;
            in_flight_now().push(document.clone());
            Some(document)
        };
        let work = || {
            // Each worker reads through its own connection (none for a plaintext benchmark
            // twin or if it cannot be opened: then through the vault).
            let reader = self.vault().reader().ok();
            let mut claimed = claim();
            while let Some(document) = claimed {
                // Cancelled since it was claimed (perhaps from the last report): not begun.
                if cancel.load(Ordering::SeqCst) {
                    in_flight_now().retain(|d| d != document);
                    break;
                }
                let result = self.sign_batch_item(request, document, signer, reader.as_ref());
                let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                in_flight_now().retain(|d| d != document);
                // The next one is claimed before the report, so the report says what is under way.
                claimed = claim();
                let signing = in_flight_now().clone();
                progress(BatchProgress {
                    done: finished,
                    total,
                    document: document.clone(),
                    result: result.clone(),
                    signing,
                });
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((document.clone(), result));
            }
        };
        std::thread::scope(|scope| {
            for _ in 0..request.parallelism.clamp(1, 8) {
                scope.spawn(work);
            }
        });
        let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
        let failed: std::collections::HashSet<&DocumentId> = results
            .iter()
            .filter(|(_, result)| matches!(result, BatchItemResult::Failed { .. }))
            .map(|(document, _)| document)
            .collect();
        let untried = self
            .vault()
            .signing_batch_documents_left(&request.batch_id)
            .map(|left| left.iter().filter(|d| !failed.contains(d)).count());
        match untried {
            // Every document of the batch was tried: it is not offered again (a failed one is
            // signed in a new batch, once its cause is dealt with).
            Ok(0) => {
                if let Err(error) = self.vault().end_signing_batch(&request.batch_id) {
                    tracing::warn!(%error, "the finished batch could not be marked ended");
                }
            }
            Ok(_) => {}
            // What was signed stands; the batch is offered again.
            Err(error) => tracing::warn!(%error, "the batch's documents left were not read"),
        }
        let mut report = BatchReport {
            batch_id: request.batch_id.clone(),
            total,
            signed: 0,
            already_signed: 0,
            failed: Vec::new(),
            cancelled: results.len() < total,
        };
        for (document, result) in results {
            match result {
                BatchItemResult::Signed { .. } => report.signed += 1,
                BatchItemResult::AlreadySigned { .. } => report.already_signed += 1,
                BatchItemResult::Failed { message, .. } => report.failed.push((document, message)),
            }
        }
        Ok(report)
    }

    /// The batches that were started and not ended — the process died during one, or the user
    /// stopped it — with the documents each has left: offered to be finished (a run with the
    /// same batch id and those documents) or let go ([`Session::let_batch_go`]).
    pub fn unfinished_batches(
        &self,
    ) -> Result<Vec<outpost_vault::UnfinishedBatch>, WorkstationError> {
        Ok(self.vault().unfinished_signing_batches()?)
    }

    /// Ends an unfinished batch without signing the rest: it is not offered again.
    pub fn let_batch_go(&self, batch_id: &str) -> Result<(), WorkstationError> {
        Ok(self.vault().end_signing_batch(batch_id)?)
    }

    /// Batch `batch_id` as it was started (its key, reason and size), if it was.
    pub fn signing_batch(
        &self,
        batch_id: &str,
    ) -> Result<Option<outpost_vault::SigningBatch>, WorkstationError> {
        Ok(self.vault().signing_batch(batch_id)?)
    }

    fn sign_batch_item(
        &self,
        request: &BatchRequest,
        document: &DocumentId,
        signer: &dyn PdfSigner,
        reader: Option<&outpost_vault::VaultReader>,
    ) -> BatchItemResult {
        let failed = |e: WorkstationError| BatchItemResult::Failed {
            code: e.code().to_owned(),
            message: e.to_string(),
        };
        match self.vault().batch_item(&request.batch_id, document) {
            Ok(Some(revision)) => return BatchItemResult::AlreadySigned { revision },
            Ok(None) => {}
            Err(e) => return failed(e.into()),
        }
        match self.sign_with(
            document,
            &request.options,
            signer,
            Some(&request.batch_id),
            reader,
        ) {
            Ok(SignOutcome { revision, .. }) => BatchItemResult::Signed { revision },
            Err(e) => failed(e),
        }
    }
}
