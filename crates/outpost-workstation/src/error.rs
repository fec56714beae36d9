use std::path::PathBuf;

use outpost_pdf::PdfError;
use outpost_vault::VaultError;

/// Errors of the workstation engine. [`WorkstationError::code`] gives the UI a stable code.
#[derive(Debug, thiserror::Error)]
pub enum WorkstationError {
    /// The vault refused or failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The PDF engine could not do its work (not a problem with a particular file).
    #[error(transparent)]
    Engine(PdfError),
    /// A file was refused by intake; the reason is meant for the person who dropped it.
    #[error("{reason}")]
    Rejected {
        /// Why.
        reason: String,
    },
    /// The server could not be used (unreachable, untrusted, or it refused).
    #[error(transparent)]
    Server(#[from] crate::server_client::ServerError),
    /// The server session has ended (the refresh token expired or was revoked): the user must
    /// sign in to the server again. Nothing waiting to sync is lost.
    #[error("the server session has ended; sign in to the server again (nothing waiting to sync is lost)")]
    SignInNeeded,
    /// Sync cannot go on (the reason says what to do).
    #[error("{0}")]
    Sync(String),
    /// No annotation with this id (or it was deleted).
    #[error("annotation {0} does not exist or was deleted; reload the document's annotations")]
    AnnotationNotFound(String),
    /// Only an annotation's author may change it.
    #[error("annotation {id} was made by {author}; only its author can change or delete it")]
    NotYourAnnotation {
        /// The annotation.
        id: String,
        /// Its author.
        author: String,
    },
    /// A stored annotation cannot be read back.
    #[error("annotation {id} in the vault is unreadable ({reason}); it was left as it is")]
    CorruptAnnotation {
        /// The annotation.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The annotation is part of a signed revision.
    #[error(
        "annotation {0} is part of a signed revision of the document and can no longer be changed"
    )]
    AnnotationSigned(String),
    /// Something would cross between the tutorial's sandbox and real work (a practice document
    /// into a real vault, a training certificate outside the sandbox, a real key or server
    /// inside it): refused, nothing was changed.
    #[error("{0}")]
    TrainingBoundary(String),
    /// The tutorial cannot go on (the reason says what to do).
    #[error("{0}")]
    Tutorial(String),
    /// A new vault's password is too short.
    #[error("the vault password must have at least {min} characters; choose a longer one (a phrase of several words is easy to remember)")]
    VaultPasswordTooShort {
        /// The least number of characters.
        min: usize,
    },
    /// The user has a real vault here, so opening their tutorial takes its password: the
    /// progress goes to their supervisor under their name.
    #[error("{0} has a vault on this workstation: type its password to open the tutorial under that name (the progress goes to your supervisor as theirs)")]
    TutorialNeedsPassword(String),
    /// Keys, certificates or signing went wrong.
    #[error("{0}")]
    Signing(String),
    /// The token refused the PIN.
    #[error("the token refused the PIN; check it and try again (the token may lock after several wrong PINs). Nothing was signed")]
    TokenWrongPin,
    /// The token's PIN is locked.
    #[error("the token's PIN is locked after too many wrong tries; unlock it with its administrator PIN (SO PIN). Nothing was signed")]
    TokenLocked,
    /// The token is not there (removed, or the slot is gone), or the key on it is gone.
    #[error(
        "the token is not present: insert it (or choose it again) and retry. Nothing was signed"
    )]
    TokenRemoved,
    /// The PKCS #11 module cannot be loaded.
    #[error("the token's PKCS #11 module cannot be used ({0}); install the token's software or set OUTPOST_PKCS11_MODULE")]
    TokenModule(String),
    /// Another token failure.
    #[error("the token failed: {0}")]
    Token(String),
    /// Undo asked with nothing left to undo in this document.
    #[error("there is nothing to undo in this document")]
    NothingToUndo,
    /// Redo asked with nothing undone to redo.
    #[error("there is nothing to redo in this document")]
    NothingToRedo,
    /// The change to undo or redo was overtaken: the annotation changed since (by sync, say).
    #[error(
        "cannot undo or redo \"{label}\": the annotation has changed since; it was left as it is"
    )]
    UndoOutdated {
        /// The change that no longer applies.
        label: String,
    },
    /// An export would overwrite a file.
    #[error("{0} already exists; choose another name (exports never overwrite a file)")]
    ExportTargetExists(PathBuf),
    /// A file operation failed.
    #[error("file error at {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl WorkstationError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// A stable, machine-readable code for the UI (it never matches on messages).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Vault(e) => match e {
                VaultError::InvalidUserName(_) => "invalid_user_name",
                VaultError::NotFound { .. } => "vault_not_found",
                VaultError::AlreadyExists { .. } => "vault_exists",
                VaultError::WrongPassword { .. } => "wrong_password",
                VaultError::DeviceSecretMissing { .. } => "device_secret_missing",
                VaultError::KeyringUnavailable(_) => "keyring_unavailable",
                VaultError::CorruptKeyFile { .. } => "corrupt_key_file",
                VaultError::DatabaseRejectedKey { .. } => "database_rejected_key",
                VaultError::NewerSchema { .. } => "newer_schema",
                VaultError::DocumentNotFound(_) => "document_not_found",
                VaultError::Search(_) => "bad_search_query",
                VaultError::AnnotationChanged { .. } => "annotation_changed",
                VaultError::DocumentChanged { .. } => "document_changed",
                VaultError::SigningKeyNotFound(_) => "signing_key_not_found",
                VaultError::NoServerAccount => "no_server_account",
                _ => "vault_error",
            },
            Self::Engine(PdfError::LibraryMissing { .. }) => "pdf_engine_missing",
            Self::Engine(PdfError::PageOutOfRange { .. }) => "page_out_of_range",
            Self::Engine(PdfError::InvalidAnnotation(_)) => "invalid_annotation",
            Self::Engine(PdfError::NoLongerWanted) => "no_longer_wanted",
            // A token that refused while signing: its own reason (taken out, locked).
            Self::Engine(PdfError::SignerRefused { code, .. }) => code,
            Self::AnnotationNotFound(_) => "annotation_not_found",
            Self::NotYourAnnotation { .. } => "not_your_annotation",
            Self::CorruptAnnotation { .. } => "corrupt_annotation",
            Self::AnnotationSigned(_) => "annotation_signed",
            Self::Signing(_) => "signing_error",
            Self::TrainingBoundary(_) => "training_boundary",
            Self::Tutorial(_) => "tutorial_error",
            Self::TutorialNeedsPassword(_) => "tutorial_needs_password",
            Self::VaultPasswordTooShort { .. } => "vault_password_too_short",
            Self::TokenWrongPin => "token_wrong_pin",
            Self::TokenLocked => "token_locked",
            Self::TokenRemoved => "token_removed",
            Self::TokenModule(_) => "token_module_missing",
            Self::Token(_) => "token_error",
            Self::NothingToUndo => "nothing_to_undo",
            Self::NothingToRedo => "nothing_to_redo",
            Self::UndoOutdated { .. } => "undo_outdated",
            Self::ExportTargetExists(_) => "export_target_exists",
            Self::Engine(_) => "pdf_engine_error",
            Self::Rejected { .. } => "rejected",
            Self::Io { .. } => "io_error",
            Self::Server(crate::server_client::ServerError::Unreachable { .. }) => {
                "server_unreachable"
            }
            Self::Server(crate::server_client::ServerError::Untrusted(_)) => "server_untrusted",
            Self::Server(crate::server_client::ServerError::Refused { code, .. })
                if code == outpost_protocol::error_codes::DEVICE_REVOKED =>
            {
                "device_revoked"
            }
            Self::Server(crate::server_client::ServerError::Refused { code, .. })
                if code == outpost_protocol::error_codes::INVALID_CREDENTIALS =>
            {
                "invalid_credentials"
            }
            Self::Server(crate::server_client::ServerError::Refused { .. }) => "server_refused",
            Self::Server(crate::server_client::ServerError::BadCa(_)) => "server_ca_invalid",
            Self::Server(crate::server_client::ServerError::HashMismatch { .. }) => {
                "download_corrupt"
            }
            Self::Server(crate::server_client::ServerError::Cancelled) => "cancelled",
            Self::Server(_) => "server_error",
            Self::Sync(_) => "sync_error",
            Self::SignInNeeded => "sign_in_needed",
        }
    }
}

impl WorkstationError {
    /// Whether the server said this device was revoked: the cue for
    /// [`crate::Workstation::remote_wipe`].
    pub fn is_device_revoked(&self) -> bool {
        self.code() == "device_revoked"
    }
}

/// Sorts a PDF error into "this file is bad" (reject it) or "the engine is unwell" (retry later).
pub(crate) fn classify_pdf_error(error: PdfError) -> WorkstationError {
    match error {
        PdfError::Empty
        | PdfError::NotPdf
        | PdfError::Truncated
        | PdfError::PasswordProtected
        | PdfError::Damaged(_)
        | PdfError::Engine(_) => WorkstationError::Rejected {
            reason: error.to_string(),
        },
        other => WorkstationError::Engine(other),
    }
}
