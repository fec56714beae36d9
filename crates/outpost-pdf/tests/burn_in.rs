//! Burn-in judged by third parties: pypdf and MuPDF read every annotation back, qpdf finds the
//! file clean, poppler draws the highlight where it is and nowhere else, and a signature made by
//! pyHanko still validates (pyHanko and pdfsig) after our update.

mod common;

use common::*;
use outpost_pdf::{burn_in, burned_annotation_ids, AnnotationKind, Language, PdfError};

#[test]
fn every_kind_is_read_back_by_pypdf_and_mupdf_and_qpdf_finds_the_file_clean() {
    let dir = tempfile::tempdir().unwrap();
    let original = sample(Language::Russian, 2);
    let annotations = one_of_each_kind();
    let burned = burn_in(&original, &annotations, &font()).unwrap();
    assert!(
        burned.starts_with(&original),
        "the original bytes must be an exact prefix of the burned file"
    );
    let path = dir.path().join("burned.pdf");
    std::fs::write(&path, &burned).unwrap();
    assert_qpdf_clean(&path);

    let read = pypdf_annotations(&path);
    assert_eq!(read.len(), annotations.len(), "pypdf sees {read:?}");
    for (annotation, seen) in annotations.iter().zip(&read) {
        assert_seen_as(annotation, seen, 0.01);
        assert_eq!(seen["name"], annotation.id.to_string().as_str());
        assert_eq!(seen["has_appearance"], true, "{seen}");
        if annotation.kind.is_text_markup() {
            assert_eq!(seen["quad_points"], 8);
        }
        if annotation.kind == AnnotationKind::Ink {
            assert_eq!(seen["ink_strokes"], 2);
        }
    }

    let mupdf = mupdf_annotations(&path);
    assert_eq!(mupdf.len(), annotations.len(), "MuPDF sees {mupdf:?}");
    for (annotation, seen) in annotations.iter().zip(&mupdf) {
        // MuPDF's bounds are those of the drawn appearance: within a point of our /Rect.
        assert_seen_as(annotation, seen, 1.0);
    }
}

/// Asserts a judge saw `annotation` on page 1 with its subtype, contents, author and rectangle
/// (within `tolerance` points).
fn assert_seen_as(annotation: &outpost_pdf::Annotation, seen: &serde_json::Value, tolerance: f64) {
    assert_eq!(seen["page"], 1);
    assert_eq!(seen["subtype"], annotation.kind.pdf_subtype(), "{seen}");
    assert_eq!(seen["contents"], annotation.contents.as_str(), "{seen}");
    assert_eq!(seen["author"], annotation.author.as_str(), "{seen}");
    let rect = annotation.rect();
    let got: Vec<f64> = serde_json::from_value(seen["rect"].clone()).unwrap();
    let want = [rect.left, rect.bottom, rect.right, rect.top];
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - f64::from(w)).abs() < tolerance,
            "rect {got:?} != {want:?}"
        );
    }
}

#[test]
fn the_highlight_colour_is_drawn_under_the_highlight_and_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    let original = sample(Language::English, 1);
    let all = one_of_each_kind();
    let highlight = all[0].clone();
    let burned = burn_in(&original, &all, &font()).unwrap();
    let before_path = dir.path().join("before.pdf");
    let after_path = dir.path().join("after.pdf");
    std::fs::write(&before_path, &original).unwrap();
    std::fs::write(&after_path, &burned).unwrap();

    let before = poppler_page(&before_path, 72);
    assert_eq!(
        before.pixels().filter(|p| is_yellow(p)).count(),
        0,
        "the page has no yellow before burn-in"
    );
    let after = poppler_page(&after_path, 72);
    let height = after.height() as f32;
    let r = highlight.rect();
    let (mut inside, mut inside_yellow, mut outside_yellow) = (0, 0, 0);
    for (x, y, p) in after.enumerate_pixels() {
        // Pixel centres in user space (72 dpi: one pixel per point; y grows downwards).
        let (ux, uy) = (x as f32 + 0.5, height - y as f32 - 0.5);
        let within =
            ux > r.left + 1.0 && ux < r.right - 1.0 && uy > r.bottom + 1.0 && uy < r.top - 1.0;
        let near =
            ux > r.left - 1.0 && ux < r.right + 1.0 && uy > r.bottom - 1.0 && uy < r.top + 1.0;
        if within {
            inside += 1;
            if is_yellow(p) {
                inside_yellow += 1;
            }
        } else if !near && is_yellow(p) {
            outside_yellow += 1;
        }
    }
    assert!(
        inside_yellow * 2 > inside,
        "most of the highlighted area should be yellow: {inside_yellow} of {inside}"
    );
    assert_eq!(outside_yellow, 0, "yellow pixels outside the highlight");
}

#[test]
fn burning_again_replaces_an_annotation_instead_of_adding_a_copy() {
    let original = sample(Language::English, 1);
    let mut annotations = one_of_each_kind();
    let first = burn_in(&original, &annotations, &font()).unwrap();
    annotations[3].contents = "edited after the first burn-in".into();
    let second = burn_in(&first, &annotations[3..4], &font()).unwrap();
    assert!(second.starts_with(&first));
    let ids = burned_annotation_ids(&second).unwrap();
    assert_eq!(ids[&1].len(), annotations.len(), "{ids:?}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twice.pdf");
    std::fs::write(&path, &second).unwrap();
    assert_qpdf_clean(&path);
    let read = pypdf_annotations(&path);
    let note: Vec<_> = read.iter().filter(|a| a["subtype"] == "Text").collect();
    assert_eq!(note.len(), 1);
    assert_eq!(note[0]["contents"], "edited after the first burn-in");
}

#[test]
fn bad_input_is_refused_with_a_specific_error_and_nothing_written() {
    let original = sample(Language::English, 1);
    let mut beyond = one_of_each_kind();
    beyond[0].page = 3;
    assert_eq!(
        burn_in(&original, &beyond, &font()).err(),
        Some(PdfError::PageOutOfRange {
            page: 3,
            page_count: 1
        })
    );
    let mut nan = one_of_each_kind();
    nan[6].line_width = f32::NAN;
    assert!(matches!(
        burn_in(&original, &nan, &font()).err(),
        Some(PdfError::InvalidAnnotation(_))
    ));
    let truncated = &original[..original.len() / 2];
    assert_eq!(
        burn_in(truncated, &one_of_each_kind(), &font()).err(),
        Some(PdfError::Truncated)
    );
    let mut garbage = b"%PDF-1.7\n".to_vec();
    garbage.extend(std::iter::repeat_n(b"1 0 obj << /Type /Cat".as_slice(), 50).flatten());
    garbage.extend_from_slice(b"\nstartxref\n99999\n%%EOF\n");
    match burn_in(&garbage, &one_of_each_kind(), &font()) {
        Err(PdfError::Damaged(_)) => {}
        Err(other) => panic!("a damaged file must be refused as damaged, got {other}"),
        Ok(bytes) => panic!("a damaged file must be refused, got {} bytes", bytes.len()),
    }
}

#[test]
fn a_signature_made_by_pyhanko_stays_valid_after_burn_in() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let unsigned = dir.path().join("unsigned.pdf");
    let signed = dir.path().join("signed.pdf");
    let burned_path = dir.path().join("burned.pdf");
    std::fs::write(&unsigned, sample(Language::Russian, 2)).unwrap();
    pki.pyhanko_sign(&unsigned, &signed);
    let (valid, report) = pki.pyhanko_validate(&signed, true);
    assert!(
        valid,
        "pyHanko must accept its own signature first: {report}"
    );

    let signed_bytes = std::fs::read(&signed).unwrap();
    let burned = burn_in(&signed_bytes, &one_of_each_kind(), &font()).unwrap();
    assert!(burned.starts_with(&signed_bytes));
    std::fs::write(&burned_path, &burned).unwrap();

    let (valid, report) = pki.pyhanko_validate(&burned_path, false);
    assert!(
        valid,
        "pyHanko rejects the signature after burn-in: {report}"
    );
    for verdict in [
        "The signature is cryptographically sound.",
        "The signer's certificate is trusted.",
        "The signature is judged VALID.",
    ] {
        assert!(report.contains(verdict), "pyHanko: {report}");
    }
    let pdfsig = pki.pdfsig(&burned_path);
    assert!(
        pdfsig.contains("Signature Validation: Signature is Valid."),
        "pdfsig: {pdfsig}"
    );
    assert!(
        pdfsig.contains("Certificate Validation: Certificate is Trusted."),
        "pdfsig: {pdfsig}"
    );
    assert_eq!(
        pypdf_annotations(&burned_path)
            .iter()
            .filter(|a| a["subtype"] != "Widget")
            .count(),
        8
    );
}
