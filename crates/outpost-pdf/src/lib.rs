//! Outpost's PDF engine.
//!
//! pdfium (loaded at run time from the `libpdfium.so` that the setup command takes out of the
//! PyPI wheel `pypdfium2`) is not thread-safe, so one worker thread owns it and every request is
//! sent to that thread ([`PdfEngine`]). This crate knows nothing of databases or networks: it gets
//! bytes and returns facts, text and pixels.

mod engine;
mod error;
mod sample;

pub use engine::{locate_pdfium, PdfEngine, PdfInfo, RenderedPage, PDFIUM_PATH_ENV};
pub use error::PdfError;
pub use sample::{sample_font_path, Language, SampleKind, SampleSpec, SAMPLE_FONT_ENV};
