use std::path::PathBuf;

/// What can go wrong with a PDF or with pdfium. Each message says what happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    /// libpdfium.so is not where it was looked for.
    #[error("the PDF engine (libpdfium.so) was not found at {path}: run the setup command from README.md, or set OUTPOST_PDFIUM_PATH to a libpdfium.so")]
    LibraryMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// libpdfium.so exists but could not be loaded.
    #[error("the PDF engine at {path} could not be loaded ({reason}); reinstall it with the setup command from README.md")]
    LibraryUnusable {
        /// The library file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file has no bytes.
    #[error("the file is empty (0 bytes)")]
    Empty,
    /// The file does not start like a PDF.
    #[error("the file is not a PDF (it does not start with %PDF-)")]
    NotPdf,
    /// The file stops before the end-of-file marker.
    #[error("the PDF is truncated: it ends before its %%EOF marker (it may not have been copied completely)")]
    Truncated,
    /// The PDF needs a password to open.
    #[error("the PDF is password-protected; remove the password before importing it")]
    PasswordProtected,
    /// pdfium could not read the PDF.
    #[error("the PDF is damaged and cannot be read ({0})")]
    Damaged(String),
    /// A page number beyond the document.
    #[error("page {page} does not exist: the document has {page_count} pages")]
    PageOutOfRange {
        /// The page asked for (1-based).
        page: u32,
        /// Pages in the document.
        page_count: u32,
    },
    /// Rendering or writing failed inside pdfium.
    #[error("the PDF engine failed: {0}")]
    Engine(String),
    /// The font for sample documents is missing.
    #[error("the font for sample documents was not found at {path}: install the Debian package fonts-dejavu-core or set OUTPOST_SAMPLE_FONT")]
    FontMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A queued request was dropped because nobody wants its answer any more (the page was
    /// scrolled past or the document closed). Not a failure: nothing is shown for it.
    #[error("the request was dropped because its page is no longer shown")]
    NoLongerWanted,
    /// An annotation that cannot be written: its geometry, numbers or text are out of bounds.
    #[error("the annotation is invalid: {0}")]
    InvalidAnnotation(String),
    /// Building or applying a signature failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The signer (a hardware token, say) refused to sign, for a reason with a code of its own
    /// that the caller can tell the user (`token_removed`, `token_locked`, …).
    #[error("{message}")]
    SignerRefused {
        /// The signer's code for the reason.
        code: &'static str,
        /// What to tell the user.
        message: String,
    },
    /// The worker thread that owns pdfium has stopped.
    #[error("the PDF engine has stopped; restart Outpost")]
    EngineStopped,
}
