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
                _ => "vault_error",
            },
            Self::Engine(PdfError::LibraryMissing { .. }) => "pdf_engine_missing",
            Self::Engine(PdfError::PageOutOfRange { .. }) => "page_out_of_range",
            Self::Engine(_) => "pdf_engine_error",
            Self::Rejected { .. } => "rejected",
            Self::Io { .. } => "io_error",
        }
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
