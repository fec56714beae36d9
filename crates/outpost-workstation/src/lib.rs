//! The engine the Outpost app calls.
//!
//! A [`Workstation`] knows where vaults live and holds the services every session shares (the OS
//! keyring, the clock, the PDF engine). Unlocking a vault gives a [`Session`]: import, list,
//! search, view and verify, each recorded in the vault's audit chain. The [`inbox`] takes files a
//! scanner or a colleague drops into a folder, and never loses one.

mod annotating;
mod batch;
mod error;
pub mod inbox;
mod overlay;
pub mod practice;
mod revision_sync;
pub mod server_client;
mod session;
mod signing;
mod sync;
mod sync_engine;
mod token;
pub mod tutorial;
mod viewing;
mod workstation;

pub use annotating::{
    suggested_export_path, AnnotationDraft, AnnotationEdit, AnnotationStyle, ExportReport,
    StoredAnnotation,
};
pub use batch::{BatchItemResult, BatchProgress, BatchReport, BatchRequest};
pub use error::WorkstationError;
pub use overlay::{PageTextView, ViewAnnotation, ViewDraft, ViewShape, ViewWord};
pub use practice::{PracticeDocuments, PracticeLogin, PracticeServerHost};
pub use revision_sync::{HeadMet, REVISIONS_PER_PUSH};
pub use session::{Session, SharedRng};
pub use signing::{KeyAlgorithm, SignOptions, SignOutcome, SigningKeyInfo};
pub use sync::{
    PullProgress, PullReport, PushProgress, PushReport, DOWNLOADS_IN_FLIGHT, STORE_EVERY,
    STORE_EVERY_DOCUMENTS,
};
pub use sync_engine::{Backoff, SyncEngine, SyncErrorInfo, SyncSchedule, SyncState};
pub use token::{
    default_pkcs11_module, list_tokens, token_keys, TokenChoice, TokenInfo, TokenKeyInfo,
    TokenSigner, PKCS11_MODULE_ENV, SOFTHSM2_MODULE,
};
pub use tutorial::{LessonProgress, StepProgress, TutorialSummary, TRAINING_MARK};
pub use viewing::{DocumentView, RENDER_CACHE_BYTES};
pub use workstation::{
    DemoServer, Workstation, WorkstationConfig, WorkstationSetup, DEMO_PASSWORD, DEMO_USER,
    MIN_VAULT_PASSWORD,
};

pub use outpost_pdf::{
    Annotation, AnnotationKind, Colour, Geometry, Language, LaterChanges, PadesLevel, PageGeometry,
    PageText, PdfEngine, PdfError, Point, Quad, Rect, RenderedPage, Revocation, SampleKind,
    SampleSpec, SignatureKind, SignatureReport, SignatureStatus, TextWord, ViewRect,
};
/// The sync protocol's sign-in types the app passes through.
pub use outpost_protocol::{
    LessonRecord, SecondFactor, TraineeProgress, TrainingOverview, TrainingProgress, UserInfo,
};
pub use outpost_vault::{
    AuditEntry, AuditVerification, Clock, DocumentId, DocumentMarks, DocumentRevision,
    DocumentStanding, DocumentSummary, DocumentSyncState, KdfParams, ManualClock, OsKeyring,
    PurgeNotice, ResignRequest, SearchHit, SearchRequest, SigningBatch, SnippetPart, StoredImport,
    SystemClock, UnfinishedBatch, VaultError,
};
