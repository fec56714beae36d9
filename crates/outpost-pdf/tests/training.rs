//! The tutorial's watermark, judged by third parties: poppler's pdftotext reads "TRAINING" and the
//! banner on every page, poppler and pdfium both draw the red outline across the page, qpdf finds
//! the file clean, the original bytes stay a prefix, and the catalog marker tells a practice
//! document from a real one.

mod common;

use std::sync::Arc;

use common::*;
use outpost_pdf::{
    is_training_document, stamp_training_watermark, Language, TRAINING_BANNER, TRAINING_WATERMARK,
};

/// Whether a pixel is the watermark's red (drawn over white or over grey text).
fn is_watermark_red(p: &image::Rgb<u8>) -> bool {
    p[0] > 150 && p[1] < 90 && p[2] < 90
}

fn red_pixels(image: &image::RgbImage, centre_fraction: f32) -> usize {
    let (w, h) = image.dimensions();
    let (cw, ch) = (
        (w as f32 * centre_fraction) as u32,
        (h as f32 * centre_fraction) as u32,
    );
    let (x0, y0) = ((w - cw) / 2, (h - ch) / 2);
    (y0..y0 + ch)
        .flat_map(|y| (x0..x0 + cw).map(move |x| (x, y)))
        .filter(|&(x, y)| is_watermark_red(image.get_pixel(x, y)))
        .count()
}

#[test]
fn every_page_carries_the_watermark_for_poppler_and_pdfium_and_the_original_is_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let original = sample(Language::Russian, 3);
    let stamped = stamp_training_watermark(&original).unwrap();
    assert!(stamped.starts_with(&original), "an incremental update");
    let path = dir.path().join("practice.pdf");
    std::fs::write(&path, &stamped).unwrap();
    assert_qpdf_clean(&path);

    for page in 1..=3 {
        let page = page.to_string();
        let text = run_ok(
            "pdftotext",
            &[&"-f", &page, &"-l", &page, &"-layout", &path, &"-"],
        );
        assert!(
            text.contains(TRAINING_WATERMARK),
            "page {page} lacks the watermark: {text}"
        );
        assert!(text.contains(TRAINING_BANNER), "page {page}: {text}");
    }
    let untouched = dir.path().join("original.pdf");
    std::fs::write(&untouched, &original).unwrap();
    assert!(!run_ok("pdftotext", &[&untouched, &"-"]).contains(TRAINING_WATERMARK));

    // Poppler draws the red outline across the middle of the page; the original has no red.
    let poppler = poppler_page(&path, 50);
    assert!(
        red_pixels(&poppler, 0.5) > 200,
        "poppler shows {} red pixels in the middle",
        red_pixels(&poppler, 0.5)
    );
    assert_eq!(red_pixels(&poppler_page(&untouched, 50), 1.0), 0);

    // So does pdfium, on the last page too; and the page's own text is still there.
    let engine = engine();
    let rendered = engine
        .render_page_png(Arc::new(stamped.clone()), 3, 400)
        .unwrap();
    let pixels = image::load_from_memory(&rendered.png).unwrap().to_rgb8();
    assert!(red_pixels(&pixels, 0.5) > 200, "pdfium draws the watermark");
    let info = engine.inspect(Arc::new(stamped.clone())).unwrap();
    let before = engine.inspect(Arc::new(original.clone())).unwrap();
    assert_eq!(info.page_count, 3);
    for (page, text) in before.page_texts.iter().enumerate() {
        let first_words: String = text
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            info.page_texts[page].contains(&first_words),
            "page {} keeps its text",
            page + 1
        );
    }
}

#[test]
fn the_marker_tells_practice_documents_from_real_ones_and_stamping_twice_changes_nothing() {
    let original = sample(Language::English, 1);
    assert!(!is_training_document(&original));
    let stamped = stamp_training_watermark(&original).unwrap();
    assert!(is_training_document(&stamped));
    assert_eq!(stamp_training_watermark(&stamped).unwrap(), stamped);
    // A real document that merely mentions the marker's name in its text is not taken for one.
    let mut mentions = original.clone();
    mentions.extend_from_slice(b"\n% /OutpostTraining\n");
    assert!(!is_training_document(&mentions));
}
