//! A corpus of differently built PDFs, generated here: classic xref tables, xref and object
//! streams, linearized, incrementally updated, rotated pages, a crop box, scanned images, many
//! pages. Rendering, the text layer and burn-in must work on all of them, agree with poppler, and
//! damaged files must give clear errors without a crash.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use outpost_pdf::{
    burn_in, AnnotationKind, Geometry, Language, PdfError, SampleKind, SampleSpec, StillWanted,
    ViewedDocument,
};

struct Variant {
    name: &'static str,
    bytes: Vec<u8>,
    /// Clockwise rotation of page 1 as a reader shows it.
    rotation: u16,
    /// Whether the pages carry text (a scan has none).
    has_text: bool,
}

fn qpdf(dir: &Path, name: &str, input: &[u8], args: &[&str]) -> Vec<u8> {
    let source = dir.join(format!("{name}-in.pdf"));
    let target = dir.join(format!("{name}.pdf"));
    std::fs::write(&source, input).unwrap();
    let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = args.iter().map(|a| a as _).collect();
    all.push(&source);
    all.push(&target);
    run_ok("qpdf", &all);
    std::fs::read(&target).unwrap()
}

fn with_crop_box(dir: &Path, input: &[u8]) -> Vec<u8> {
    let source = dir.join("crop-in.pdf");
    let target = dir.join("crop.pdf");
    std::fs::write(&source, input).unwrap();
    let script = "import sys\n\
        from pypdf import PdfReader, PdfWriter\n\
        from pypdf.generic import RectangleObject\n\
        w = PdfWriter(clone_from=PdfReader(sys.argv[1]))\n\
        w.pages[0].cropbox = RectangleObject([40, 300, 500, 800])\n\
        w.write(sys.argv[2])\n";
    run_ok(python(), &[&"-c", &script, &source, &target]);
    std::fs::read(&target).unwrap()
}

fn corpus(dir: &Path) -> Vec<Variant> {
    let base = sample(Language::English, 3);
    let text = |name, bytes, rotation| Variant {
        name,
        bytes,
        rotation,
        has_text: true,
    };
    let mut note = annotation(
        AnnotationKind::Note,
        Geometry::Icon {
            at: outpost_pdf::Point { x: 500.0, y: 60.0 },
        },
        "earlier update",
    );
    note.page = 2;
    let scanned = engine()
        .write_scanned_sample(
            &SampleSpec {
                kind: SampleKind::OperationalReport,
                language: Language::Russian,
                pages: 2,
                seed: 5,
                marker: None,
            },
            100,
        )
        .unwrap();
    vec![
        text("classic xref table", base.clone(), 0),
        text(
            "xref and object streams",
            qpdf(dir, "objstm", &base, &["--object-streams=generate"]),
            0,
        ),
        text(
            "linearized",
            qpdf(dir, "linear", &base, &["--linearize"]),
            0,
        ),
        text(
            "incrementally updated",
            burn_in(&base, &[note], &font()).unwrap(),
            0,
        ),
        text(
            "rotated pages",
            qpdf(
                dir,
                "rotated",
                &base,
                &["--rotate=+90:1", "--rotate=+180:2"],
            ),
            90,
        ),
        text("crop box", with_crop_box(dir, &base), 0),
        Variant {
            name: "scanned images",
            bytes: scanned,
            rotation: 0,
            has_text: false,
        },
        text("300 pages", sample(Language::Russian, 300), 0),
    ]
}

/// Poppler's render of page 1 of `pdf` at `dpi`, as RGB.
fn poppler(dir: &Path, name: &str, pdf: &[u8], dpi: u32) -> image::RgbImage {
    let path = dir.join(format!("{name}-judge.pdf"));
    std::fs::write(&path, pdf).unwrap();
    poppler_page(&path, dpi)
}

/// Mean absolute difference per channel (0–255) of two renders of a page, compared at a quarter
/// of their size so that anti-aliasing differences between renderers average out while any
/// difference in what is drawn where remains.
fn mean_difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    let (w, h) = (a.width().min(b.width()) / 4, a.height().min(b.height()) / 4);
    let shrink = |i: &image::RgbImage| {
        image::imageops::resize(
            &image::imageops::crop_imm(i, 0, 0, w * 4, h * 4).to_image(),
            w,
            h,
            image::imageops::FilterType::Triangle,
        )
    };
    let (a, b) = (shrink(a), shrink(b));
    let total: u64 = a
        .pixels()
        .zip(b.pixels())
        .map(|(p, q)| (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>())
        .sum();
    total as f64 / f64::from(w * h * 3)
}

#[test]
fn every_variant_renders_like_poppler_has_a_text_layer_and_takes_a_burn_in() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    for variant in corpus(dir.path()) {
        let name = variant.name;
        let document = ViewedDocument {
            key: name.to_owned(),
            bytes: Arc::new(variant.bytes.clone()),
        };
        let sizes = engine.page_sizes(&document).unwrap();
        let last = sizes.len() as u32;
        assert!(last >= 2, "{name}: {last} pages");

        // Render correctness: our render of page 1 against poppler's at the same resolution.
        let judge = poppler(dir.path(), &name.replace(' ', "-"), &variant.bytes, 72);
        let ours = engine
            .render(&document, 1, judge.width(), &StillWanted::always())
            .unwrap();
        let ours = image::load_from_memory(&ours.png).unwrap().to_rgb8();
        assert!(
            ours.height().abs_diff(judge.height()) <= 1,
            "{name}: page heights differ: ours {}x{}, poppler {}x{}",
            ours.width(),
            ours.height(),
            judge.width(),
            judge.height()
        );
        let mean = mean_difference(&ours, &judge);
        let other_page = engine
            .render(&document, 2, judge.width(), &StillWanted::always())
            .unwrap();
        let other_page = image::load_from_memory(&other_page.png).unwrap().to_rgb8();
        // The measure tells pages apart: page 2 differs from poppler's page 1 by far more.
        let unlike = mean_difference(&other_page, &judge);
        assert!(
            unlike > 5.0,
            "{name}: page 2 vs page 1 differ by only {unlike:.2}"
        );
        assert!(
            mean < 3.5,
            "{name}: mean pixel difference to poppler {mean:.2}"
        );
        engine
            .render(&document, last, 200, &StillWanted::always())
            .unwrap();

        // The text layer, and a highlight made from a selection of its first words.
        let text = engine.page_text(&document, 1).unwrap();
        assert_eq!(text.geometry.rotation, variant.rotation, "{name}");
        let annotation = if variant.has_text {
            assert!(text.words.len() > 20, "{name}: {} words", text.words.len());
            assert_eq!(text.words[0].line, 0);
            // Reading order: the title's first word comes first, whatever the content order.
            assert!(
                ["Personnel", "Личное"].contains(&text.words[0].text.as_str()),
                "{name}: first word {:?}",
                text.words[0].text
            );
            annotation(
                AnnotationKind::Highlight,
                Geometry::Quads {
                    quads: text.selection_quads(0, 2),
                },
                "first words",
            )
        } else {
            assert!(text.words.is_empty(), "{name}: a scan has no text layer");
            annotation(
                AnnotationKind::Highlight,
                Geometry::Quads {
                    quads: vec![outpost_pdf::Quad::from_rect(rect(
                        100.0, 600.0, 300.0, 620.0,
                    ))],
                },
                "over the scan",
            )
        };
        let burned = burn_in(&variant.bytes, std::slice::from_ref(&annotation), &font())
            .unwrap_or_else(|e| panic!("{name}: burn-in failed: {e}"));
        assert!(burned.starts_with(&variant.bytes), "{name}");
        let path = dir
            .path()
            .join(format!("{}-burned.pdf", name.replace(' ', "-")));
        std::fs::write(&path, &burned).unwrap();
        assert_qpdf_clean(&path);
        let read = pypdf_annotations(&path);
        assert!(
            read.iter().any(|a| a["page"] == 1
                && a["subtype"] == "Highlight"
                && a["name"] == annotation.id.to_string().as_str()),
            "{name}: pypdf sees {read:?}"
        );

        // Where the user saw the words is where poppler paints the highlight (rotation, crop).
        if variant.has_text && !name.contains("300") {
            let painted = poppler(
                dir.path(),
                &format!("{}-burned", name.replace(' ', "-")),
                &burned,
                72,
            );
            let view = text.geometry.rect_to_view(annotation.rect());
            let (cx, cy) = (view.x + view.width / 2.0, view.y + view.height / 2.0);
            let mut yellow_near_centre = 0;
            for dy in -2i32..=2 {
                for dx in -20i32..=20 {
                    let (x, y) = ((cx as i32 + dx) as u32, (cy as i32 + dy) as u32);
                    let (x, y) = if text.geometry.rotation.is_multiple_of(180) {
                        (x, y)
                    } else {
                        ((cx as i32 + dy) as u32, (cy as i32 + dx) as u32)
                    };
                    if x < painted.width()
                        && y < painted.height()
                        && is_yellow(painted.get_pixel(x, y))
                    {
                        yellow_near_centre += 1;
                    }
                }
            }
            assert!(
                yellow_near_centre > 20,
                "{name}: poppler painted no highlight at view {view:?} ({yellow_near_centre} yellow pixels)"
            );
        }
    }
}

/// Says whether an error is the one a damaged input should give.
type ExpectedError = fn(&PdfError) -> bool;

#[test]
fn damaged_and_locked_files_give_clear_errors_and_no_crash() {
    let dir = tempfile::tempdir().unwrap();
    let good = sample(Language::English, 2);
    let locked = qpdf(
        dir.path(),
        "locked",
        &good,
        &["--encrypt", "user-pw", "owner-pw", "256", "--"],
    );
    let mut scrambled = good.clone();
    let third = scrambled.len() / 3;
    for b in &mut scrambled[third..2 * third] {
        *b = b'\x00';
    }
    let cases: Vec<(&str, Vec<u8>, ExpectedError)> = vec![
        ("empty", Vec::new(), |e| *e == PdfError::Empty),
        ("not a PDF", b"hello, this is text".to_vec(), |e| {
            *e == PdfError::NotPdf
        }),
        ("truncated", good[..good.len() / 2].to_vec(), |e| {
            *e == PdfError::Truncated
        }),
        ("password", locked, |e| *e == PdfError::PasswordProtected),
        ("scrambled", scrambled, |e| {
            matches!(e, PdfError::Damaged(_) | PdfError::PageOutOfRange { .. })
        }),
    ];
    let engine = engine();
    for (name, bytes, expected) in cases {
        let document = ViewedDocument {
            key: format!("damaged {name}"),
            bytes: Arc::new(bytes.clone()),
        };
        let note = annotation(
            AnnotationKind::Note,
            Geometry::Icon {
                at: outpost_pdf::Point { x: 10.0, y: 40.0 },
            },
            "x",
        );
        let inspected = engine.inspect(Arc::new(bytes.clone()));
        let rendered = engine.render(&document, 1, 100, &StillWanted::always());
        let text = engine.page_text(&document, 1);
        let burned = burn_in(&bytes, &[note], &font());
        // The scrambled file may still be partly readable by pdfium's repair; every answer is
        // either a clear, expected error or a result, never a crash.
        for (what, error) in [
            ("inspect", inspected.err()),
            ("render", rendered.err()),
            ("text", text.err()),
            ("burn-in", burned.err()),
        ] {
            match error {
                Some(e) => {
                    assert!(expected(&e), "{name}/{what}: unexpected error {e}");
                    assert!(!e.to_string().is_empty());
                }
                None => assert_eq!(name, "scrambled", "{name}/{what} must fail"),
            }
        }
    }
    // The engine still works after all that.
    let document = ViewedDocument {
        key: "after damage".into(),
        bytes: Arc::new(good),
    };
    engine
        .render(&document, 2, 100, &StillWanted::always())
        .unwrap();
}

#[test]
fn requests_for_pages_no_longer_wanted_are_dropped_unrendered() {
    let engine = engine();
    let document = ViewedDocument {
        key: "scroll test".into(),
        bytes: Arc::new(sample(Language::English, 5)),
    };
    let shown = Arc::new(std::sync::atomic::AtomicU32::new(1));
    let wanted_page = |page: u32| {
        let shown = shown.clone();
        StillWanted::when(move || shown.load(std::sync::atomic::Ordering::SeqCst) == page)
    };
    assert!(engine.render(&document, 1, 300, &wanted_page(1)).is_ok());
    shown.store(4, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        engine.render(&document, 2, 300, &wanted_page(2)).err(),
        Some(PdfError::NoLongerWanted)
    );
    assert!(engine.render(&document, 4, 300, &wanted_page(4)).is_ok());
}
