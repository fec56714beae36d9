//! The Outpost vault: one user's encrypted local store.
//!
//! Everything Outpost knows about a document — its bytes, metadata, page text, search index and the
//! audit chain — lives in one SQLCipher 4 database per user. The database key is 256 random bits that
//! exist on disk only wrapped (AES-256-GCM) under a key derived from the user's password (Argon2id)
//! and a per-vault device secret kept in the OS keyring.
//!
//! Layers above this crate never see SQL: they call [`Vault`] methods. Time comes in through a
//! [`Clock`] and randomness through an RNG argument, so tests are deterministic.

mod annotations;
mod audit;
mod clock;
mod documents;
mod downloads;
mod error;
mod keys;
mod revision_sync;
mod revisions;
mod schema;
mod search;
mod signing_keys;
mod sync;
mod tutorial;
mod vault;

pub use annotations::{AnnotationRecord, AnnotationWrite};
pub use audit::{
    AuditAction, AuditEntry, AuditEvent, AuditOutcome, AuditVerification, BrokenEntry,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use documents::{
    DocumentId, DocumentMarks, DocumentSummary, IntakeClaimRecord, IntakeOutcome, NewDocument,
    StoredImport,
};
pub use downloads::{
    DownloadPart, FlushedParts, PartRandomness, PartsFlush, PartsPack, WrittenPart,
};
pub use error::{SearchQueryError, VaultError};
pub use keys::{DeviceSecretStore, KdfParams, KeyFile, KeyringError, OsKeyring, DATABASE_KEY_LEN};
pub use revision_sync::{
    AdoptedHead, DocumentStanding, DocumentSyncState, PendingRevision, ResignRequest,
    RevisionPrefix, ServerHead, SIGN_AGAIN,
};
pub use revisions::{DocumentRevision, DocumentUpdate, SigningBatch, UnfinishedBatch};
pub use search::{SearchHit, SearchRequest, SnippetPart};
pub use signing_keys::{NewSigningKey, SigningKeyRecord};
pub use sync::{
    AppliedPull, PendingAnnotation, PullRound, PulledDocument, PurgeNotice, RemoteAnnotation,
    ServerAccount, ServerDocumentLink,
};
pub use tutorial::LessonRecord;
pub use vault::{valid_user_name, Vault, VaultKind, VaultPaths, VaultReader};

/// Result type of this crate.
pub type Result<T, E = VaultError> = std::result::Result<T, E>;
