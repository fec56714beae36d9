//! Outpost's PDF engine.
//!
//! pdfium (loaded at run time from the `libpdfium.so` that the setup command takes out of the
//! PyPI wheel `pypdfium2`) is not thread-safe, so one worker thread owns it and every request is
//! sent to that thread ([`PdfEngine`]). This crate knows nothing of databases or networks: it gets
//! bytes and returns facts, text and pixels.

mod annotation;
mod burn_in;
mod cms;
mod engine;
mod error;
mod font;
mod form;
mod geometry;
mod ltv;
mod sample;
mod sign;
mod text_layer;
mod training;
mod validate;

pub use annotation::{Annotation, AnnotationKind, Colour, Geometry, Point, Quad, Rect};
pub use burn_in::{burn_in, burned_annotation_ids, parse_pdf_date, pdf_date};
pub use cms::{
    detached_signature, time_stamp_token, PdfSigner, SignatureAlgorithm, SoftwareSigner,
    TimeStampTerms,
};
pub use engine::{
    locate_pdfium, PdfEngine, PdfInfo, RenderedPage, StillWanted, ViewedDocument, PDFIUM_PATH_ENV,
};
pub use error::PdfError;
pub use geometry::{PageGeometry, ViewRect};
pub use ltv::{
    add_document_timestamp, add_validation_data, signatures_awaiting_time_stamp,
    DocumentTimeStamper, ValidationData, TIME_STAMP_RESERVED_BYTES,
};
pub use sample::{
    demo_samples, sample_font_path, Language, SampleKind, SampleSpec, SAMPLE_FONT_ENV,
};
pub use sign::{
    sign_pdf, sign_pdf_update, DocMdpPermission, SignatureMark, SignatureRequest, SignedUpdate,
    DEFAULT_RESERVED_BYTES,
};
pub use text_layer::{PageText, TextWord};
pub use training::{
    is_training_document, stamp_training_watermark, TRAINING_BANNER, TRAINING_MARKER_KEY,
    TRAINING_WATERMARK,
};
pub use validate::{
    certificate_from_der, validate_signatures, validate_signatures_against, LaterChanges,
    PadesLevel, Revocation, SignatureKind, SignatureReport, SignatureStatus, StatusReason,
};
pub use x509_cert::Certificate;
