//! The PDF engine against the real pdfium (libpdfium.so from the pypdfium2 wheel).

use std::sync::Arc;

use outpost_pdf::{Language, PdfEngine, PdfError, SampleKind, SampleSpec};

fn engine() -> PdfEngine {
    PdfEngine::start_default().expect("pdfium must be installed: run scripts/install-deps.sh")
}

fn sample(kind: SampleKind, language: Language, pages: u32, marker: Option<&str>) -> Vec<u8> {
    engine()
        .write_sample(&SampleSpec {
            kind,
            language,
            pages,
            seed: 42,
            marker: marker.map(str::to_owned),
        })
        .unwrap()
}

#[test]
fn generated_samples_have_extractable_russian_and_english_text() {
    for language in [Language::Russian, Language::English] {
        for kind in SampleKind::ALL {
            let spec = SampleSpec {
                kind,
                language,
                pages: 3,
                seed: 7,
                marker: Some("маркер-marker-77".into()),
            };
            let bytes = engine().write_sample(&spec).unwrap();
            let info = engine().inspect(Arc::new(bytes)).unwrap();
            assert_eq!(info.page_count, 3);
            let expected = spec.page_lines();
            assert_eq!(info.title().as_deref(), Some(expected[0][0].as_str()));
            for (page, lines) in info.page_texts.iter().zip(&expected) {
                for line in lines.iter().filter(|l| !l.is_empty()) {
                    assert!(
                        page.contains(line.as_str()),
                        "page text {page:?} lacks line {line:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn bad_input_gets_a_specific_reason() {
    let good = sample(SampleKind::OperationalReport, Language::English, 1, None);
    let check = |bytes: Vec<u8>| engine().inspect(Arc::new(bytes)).unwrap_err();
    assert_eq!(check(Vec::new()), PdfError::Empty);
    assert_eq!(check(b"hello, this is text".to_vec()), PdfError::NotPdf);
    assert_eq!(check(good[..good.len() / 2].to_vec()), PdfError::Truncated);
    let mut garbage = b"%PDF-1.7\n".to_vec();
    garbage.extend(std::iter::repeat_n(b'x', 4000));
    garbage.extend(b"\n%%EOF\n");
    assert!(matches!(check(garbage), PdfError::Damaged(_)));
}

#[test]
fn password_protected_pdfs_are_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.pdf");
    let locked = dir.path().join("locked.pdf");
    std::fs::write(
        &plain,
        sample(SampleKind::PersonnelRecord, Language::English, 1, None),
    )
    .unwrap();
    let status = std::process::Command::new("qpdf")
        .args(["--encrypt", "user-pw", "owner-pw", "256", "--"])
        .arg(&plain)
        .arg(&locked)
        .status()
        .expect("qpdf is installed by scripts/install-deps.sh");
    assert!(status.success());
    let err = engine()
        .inspect(Arc::new(std::fs::read(&locked).unwrap()))
        .unwrap_err();
    assert_eq!(err, PdfError::PasswordProtected);
}

#[test]
fn pages_render_to_png_of_the_requested_width() {
    let bytes = Arc::new(sample(
        SampleKind::ProcurementContract,
        Language::Russian,
        2,
        None,
    ));
    let page = engine().render_page_png(bytes.clone(), 2, 600).unwrap();
    assert_eq!(page.width, 600);
    // A4 is 1:1.414.
    assert!((846..=850).contains(&page.height), "height {}", page.height);
    assert_eq!(&page.png[..8], b"\x89PNG\r\n\x1a\n");
    let img = image::load_from_memory(&page.png).unwrap().to_luma8();
    let dark = img.pixels().filter(|p| p.0[0] < 128).count();
    assert!(
        dark > 500,
        "the page should show text, found {dark} dark pixels"
    );
    assert_eq!(
        engine().render_page_png(bytes, 3, 600).unwrap_err(),
        PdfError::PageOutOfRange {
            page: 3,
            page_count: 2
        }
    );
}

#[test]
fn generated_pdfs_pass_qpdf_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.pdf");
    std::fs::write(
        &path,
        sample(SampleKind::OperationalReport, Language::Russian, 2, None),
    )
    .unwrap();
    let out = std::process::Command::new("qpdf")
        .arg("--check")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
