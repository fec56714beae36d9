//! Without libpdfium.so the engine says where it looked and how to install it.
//! (Its own test binary: pdfium can be bound only once per process.)

use std::path::Path;

use outpost_pdf::{PdfEngine, PdfError};

#[test]
fn a_missing_pdfium_gives_an_error_that_says_how_to_install_it() {
    let path = Path::new("/nonexistent/outpost/libpdfium.so");
    let err = PdfEngine::start(path).unwrap_err();
    assert_eq!(
        err,
        PdfError::LibraryMissing {
            path: path.to_owned()
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("/nonexistent/outpost/libpdfium.so"),
        "{message}"
    );
    assert!(message.contains("README.md"), "{message}");
    assert!(message.contains("OUTPOST_PDFIUM_PATH"), "{message}");
}
