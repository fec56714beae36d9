use std::sync::{Arc, Mutex, MutexGuard};

use outpost_pdf::PdfEngine;
use outpost_vault::{
    AuditAction, AuditEntry, AuditEvent, AuditOutcome, AuditVerification, DocumentId,
    DocumentSummary, NewDocument, SearchHit, SearchRequest, StoredImport, Vault,
};
use sha2::{Digest, Sha256};

use crate::annotating::Histories;
use crate::error::classify_pdf_error;
use crate::viewing::Viewing;
use crate::WorkstationError;

/// Randomness for ids, shared by a session's threads (the OS RNG in production, seeded in tests).
pub type SharedRng = Arc<Mutex<Box<dyn rand_core::CryptoRngCore + Send>>>;

/// The vault setting holding the inbox folder the user chose.
const INBOX_FOLDER_SETTING: &str = "inbox_folder";

/// Files larger than this are refused by intake rather than read into memory.
pub const MAX_IMPORT_BYTES: u64 = 512 * 1024 * 1024;

/// An unlocked vault and what works on it. Shareable between threads (`Arc<Session>`).
pub struct Session {
    vault: Mutex<Vault>,
    pub(crate) pdf: PdfEngine,
    rng: SharedRng,
    pub(crate) viewing: Mutex<Viewing>,
    histories: Mutex<Histories>,
    /// The tutorial's practice vault (see [`crate::tutorial`]).
    pub(crate) sandbox: bool,
    /// The practice server a sandbox syncs with (see [`crate::practice`]).
    pub(crate) practice: Option<Arc<dyn crate::PracticeServerHost>>,
    /// Held while the practice server is switched online or offline.
    pub(crate) practice_switching: Mutex<()>,
    /// The client for the account's server, kept so that the requests of a sync round (and of
    /// rounds close together) share its open connections (see [`crate::sync`]).
    pub(crate) server_client: Mutex<Option<crate::sync::KeptClient>>,
    /// The ids of the signing batches running now (see [`crate::batch`]): one run per batch.
    pub(crate) running_batches: Mutex<std::collections::HashSet<String>>,
    /// Held while a certificate request is sent (see [`crate::sync`]): one at a time.
    pub(crate) certificate_requests: Mutex<()>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(vault: Vault, pdf: PdfEngine, rng: SharedRng) -> Self {
        let sandbox = vault.paths().kind() == outpost_vault::VaultKind::Sandbox;
        Self {
            sandbox,
            practice: None,
            practice_switching: Mutex::new(()),
            server_client: Mutex::new(None),
            running_batches: Mutex::new(std::collections::HashSet::new()),
            certificate_requests: Mutex::new(()),
            vault: Mutex::new(vault),
            pdf,
            rng,
            viewing: Mutex::new(Viewing::default()),
            histories: Mutex::new(Histories::default()),
        }
    }

    pub(crate) fn vault(&self) -> MutexGuard<'_, Vault> {
        // A panic elsewhere cannot leave the vault half-written (every change is one transaction).
        self.vault.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The user this session belongs to.
    pub fn user(&self) -> String {
        self.vault().user().to_owned()
    }

    pub(crate) fn histories(&self) -> MutexGuard<'_, Histories> {
        self.histories.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session's RNG, for generating keys.
    pub(crate) fn rng(&self) -> MutexGuard<'_, Box<dyn rand_core::CryptoRngCore + Send>> {
        self.rng.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A random (version 4) UUID from the session's RNG.
    pub(crate) fn new_uuid(&self) -> uuid::Uuid {
        let mut bytes = [0u8; 16];
        self.rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// A random number from the session's RNG (for jitter).
    pub(crate) fn random_u32(&self) -> u32 {
        self.rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_u32()
    }

    /// Local changes waiting to be pushed to the server.
    pub fn pending_operations(&self) -> Result<usize, WorkstationError> {
        let vault = self.vault();
        let revisions = usize::try_from(vault.pending_revision_count()?).unwrap_or(0);
        Ok(vault.pending_annotation_pushes(10_000)?.len()
            + revisions
            + vault.waiting_certificate_requests()?)
    }

    /// The inbox folder the user chose, if they chose one.
    pub fn inbox_folder(&self) -> Result<Option<std::path::PathBuf>, WorkstationError> {
        Ok(self
            .vault()
            .setting(INBOX_FOLDER_SETTING)?
            .map(std::path::PathBuf::from))
    }

    /// Chooses the folder the inbox watches (made if missing; it must be an absolute path to a
    /// folder the user can write). Kept in the vault and audited; the caller restarts the watcher.
    pub fn set_inbox_folder(&self, folder: &std::path::Path) -> Result<(), WorkstationError> {
        if !folder.is_absolute() {
            return Err(WorkstationError::Rejected {
                reason: format!(
                    "'{}' is not a full path: give the inbox folder from the root, for example /home/you/Scans",
                    folder.display()
                ),
            });
        }
        std::fs::create_dir_all(folder).map_err(|source| WorkstationError::Io {
            path: folder.to_owned(),
            source,
        })?;
        if !folder.is_dir() {
            return Err(WorkstationError::Rejected {
                reason: format!("'{}' is not a folder: choose a folder", folder.display()),
            });
        }
        let text = folder.to_str().ok_or_else(|| WorkstationError::Rejected {
            reason: "the folder's path is not valid text: choose a folder whose name has no unusual bytes".into(),
        })?;
        self.vault().set_setting(INBOX_FOLDER_SETTING, text)?;
        Ok(())
    }

    /// Whether anything waits that a push would send now (a revision the server refused and that
    /// waits for the user's decision does not count).
    pub fn has_changes_to_send(&self) -> Result<bool, WorkstationError> {
        let vault = self.vault();
        Ok(!vault.pending_annotation_pushes(1)?.is_empty()
            || vault.revisions_to_push()?.0 > 0
            || vault.waiting_certificate_requests()? > 0)
    }

    /// A new device key for enrolling with a server, from the session's RNG.
    pub(crate) fn new_device_key(&self) -> crate::server_client::DeviceKey {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        crate::server_client::DeviceKey::generate(&mut **rng)
    }

    /// Now, by the vault's clock, in milliseconds since the epoch.
    pub(crate) fn now_ms(&self) -> i64 {
        self.vault().clock().now_ms()
    }

    pub(crate) fn new_document_id(&self) -> DocumentId {
        DocumentId(self.new_uuid().to_string())
    }

    /// Validates and imports a PDF. The same bytes twice give [`StoredImport::Duplicate`].
    pub fn import_bytes(
        &self,
        bytes: Vec<u8>,
        source_name: &str,
    ) -> Result<StoredImport, WorkstationError> {
        self.import_with_claim(bytes, source_name, None)
    }

    /// Imports with an inbox claim id, recorded in the same transaction as the document.
    pub(crate) fn import_with_claim(
        &self,
        bytes: Vec<u8>,
        source_name: &str,
        claim_id: Option<&str>,
    ) -> Result<StoredImport, WorkstationError> {
        let bytes = Arc::new(self.bytes_for_this_side(bytes)?);
        let info = self
            .pdf
            .inspect(bytes.clone())
            .map_err(classify_pdf_error)?;
        self.check_page_texts_for_this_side(&info.page_texts)?;
        let sha256 = hex::encode(Sha256::digest(bytes.as_slice()));
        let title = info.title().unwrap_or_else(|| source_name.to_owned());
        let doc = NewDocument {
            id: self.new_document_id(),
            bytes: &bytes,
            sha256,
            title,
            page_texts: info.page_texts,
            source_name: source_name.to_owned(),
        };
        Ok(self.vault().store_document(&doc, claim_id)?)
    }

    /// Records in the audit chain that intake refused a file.
    pub fn record_rejection(
        &self,
        source_name: &str,
        reason: &str,
    ) -> Result<(), WorkstationError> {
        self.vault().append_audit(
            &AuditEvent::new(AuditAction::Reject, AuditOutcome::Failure)
                .detail(format!("'{source_name}': {reason}")),
        )?;
        Ok(())
    }

    /// Whether an inbox claim was committed to the vault.
    pub(crate) fn claim_committed(&self, claim_id: &str) -> Result<bool, WorkstationError> {
        Ok(self.vault().intake_claim(claim_id)?.is_some())
    }

    /// All documents, newest import first.
    pub fn documents(&self) -> Result<Vec<DocumentSummary>, WorkstationError> {
        Ok(self.vault().documents()?)
    }

    /// One document's metadata.
    pub fn document(&self, id: &DocumentId) -> Result<DocumentSummary, WorkstationError> {
        Ok(self.vault().document(id)?)
    }

    /// Opens a document for viewing (audited) and returns its metadata.
    pub fn open_document(&self, id: &DocumentId) -> Result<DocumentSummary, WorkstationError> {
        let mut vault = self.vault();
        let doc = vault.document(id)?;
        vault.append_audit(
            &AuditEvent::new(AuditAction::View, AuditOutcome::Success).document(id.0.clone()),
        )?;
        vault.mark_opened(id)?;
        Ok(doc)
    }

    /// For each document: opened here yet or new, and how many annotations it has.
    pub fn document_marks(&self) -> Result<Vec<outpost_vault::DocumentMarks>, WorkstationError> {
        Ok(self.vault().document_marks()?)
    }

    /// Full-text search (audited, with the query and the number of hits).
    pub fn search(&self, request: &SearchRequest) -> Result<Vec<SearchHit>, WorkstationError> {
        let mut vault = self.vault();
        let result = vault.search(request);
        let (outcome, detail) = match &result {
            Ok(hits) => (
                AuditOutcome::Success,
                format!("query '{}': {} hits", request.query, hits.len()),
            ),
            Err(e) => (
                AuditOutcome::Failure,
                format!("query '{}': {e}", request.query),
            ),
        };
        vault.append_audit(&AuditEvent::new(AuditAction::Search, outcome).detail(detail))?;
        Ok(result?)
    }

    /// The audit chain, oldest first.
    pub fn audit_entries(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, WorkstationError> {
        Ok(self.vault().audit_entries(after_seq, limit)?)
    }

    /// Checks the whole audit chain.
    pub fn verify_audit_chain(&self) -> Result<AuditVerification, WorkstationError> {
        Ok(self.vault().verify_audit_chain()?)
    }

    /// Closes the session (documents open in viewers leave memory) and hands over its vault.
    pub(crate) fn into_vault(self) -> outpost_vault::Vault {
        self.close_all_views();
        self.vault.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    /// Locks the vault: records it and closes the database.
    pub fn lock(self) -> Result<(), WorkstationError> {
        self.leave_practice_server();
        // Documents open in viewers leave memory: their bytes, rendered pages and pdfium's parse.
        let mut vault = self.into_vault();
        vault.append_audit(&AuditEvent::new(AuditAction::Lock, AuditOutcome::Success))?;
        Ok(())
    }

    /// Locks a session that others may still hold for a moment (a page render, a lesson check):
    /// waits up to `patience` for them to let go, then locks it. If they still hold it, the lock
    /// is recorded now, the documents in viewers leave memory, and the database closes when the
    /// last of them lets go.
    pub fn lock_shared(
        session: Arc<Session>,
        patience: std::time::Duration,
    ) -> Result<(), WorkstationError> {
        session.leave_practice_server();
        match Self::into_sole_owner(session, patience) {
            Ok(owned) => owned.lock(),
            Err(shared) => {
                shared.close_all_views();
                shared
                    .vault()
                    .append_audit(&AuditEvent::new(AuditAction::Lock, AuditOutcome::Success))?;
                Ok(())
            }
        }
    }

    /// The session itself once nothing else holds it (a page render or a lesson check finishing),
    /// waiting up to `patience`; handed back when something still holds it after that.
    pub fn into_sole_owner(
        session: Arc<Session>,
        patience: std::time::Duration,
    ) -> Result<Session, Arc<Session>> {
        let deadline = std::time::Instant::now() + patience;
        let mut session = session;
        loop {
            match Arc::try_unwrap(session) {
                Ok(owned) => return Ok(owned),
                Err(shared) if std::time::Instant::now() >= deadline => return Err(shared),
                Err(shared) => {
                    session = shared;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }
}
