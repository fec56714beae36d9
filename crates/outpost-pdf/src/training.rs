//! The tutorial's mark on practice documents: a "TRAINING" watermark drawn across every page and a
//! marker in the catalog, both written as one incremental update (the original bytes stay an exact
//! prefix, so signatures made before stay valid — though practice documents are stamped before
//! anyone signs them).
//!
//! The watermark is page content, not an annotation: every renderer and text extractor sees it
//! (pdftotext prints "TRAINING" for every page). It is drawn as outlined text so the words under it
//! stay readable. The catalog marker lets a real vault recognise and refuse a practice document.

use lopdf::{dictionary, Dictionary, Document, Object, ObjectId, Stream};

use crate::burn_in::{fmt, open_for_update, start_update, write_update};
use crate::sign::{catalog_id, parse_error};
use crate::PdfError;

/// The catalog key that marks a document as the tutorial's practice material.
pub const TRAINING_MARKER_KEY: &str = "OutpostTraining";

/// The word drawn across every page of a practice document.
pub const TRAINING_WATERMARK: &str = "TRAINING";

/// The line printed at the top of every page of a practice document.
pub const TRAINING_BANNER: &str = "OUTPOST TUTORIAL - TRAINING COPY - NOT A RECORD";

/// The font resource name the watermark draws with (standard Helvetica-Bold, nothing embedded).
const FONT_RESOURCE: &str = "OutpostTrainingFont";

/// Helvetica-Bold advance widths (per 1000 units of size) of the characters from space (32) to
/// `Z` (90): written into the font dictionary too, so every renderer lays the words out alike.
const HELVETICA_BOLD_WIDTHS: [i64; 59] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278,
    278, // space../
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0-9
    333, 333, 584, 584, 584, 611, 975, // :..@
    722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, // A-M
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, // N-Z
];

/// The width of `text` set in Helvetica-Bold at size 1.
fn helvetica_bold_width(text: &str) -> f32 {
    text.chars()
        .map(|c| {
            let index = (c as usize).wrapping_sub(32);
            HELVETICA_BOLD_WIDTHS.get(index).copied().unwrap_or(556) as f32
        })
        .sum::<f32>()
        / 1000.0
}

/// Whether `bytes` is a practice document of the tutorial (its catalog carries the marker).
///
/// Cheap for ordinary documents: the file is only parsed when the marker's name occurs in it.
/// A file whose structure cannot be parsed but that names the marker counts as marked.
pub fn is_training_document(bytes: &[u8]) -> bool {
    let needle = format!("/{TRAINING_MARKER_KEY}");
    if memchr::memmem::find(bytes, needle.as_bytes()).is_none() {
        return false;
    }
    let Ok(document) = Document::load_mem(bytes) else {
        return true;
    };
    catalog_id(&document, parse_error)
        .and_then(|id| document.get_dictionary(id).map_err(parse_error))
        .map(|catalog| catalog.has(TRAINING_MARKER_KEY.as_bytes()))
        .unwrap_or(true)
}

/// Stamps `original` as practice material: the watermark and banner on every page and the marker
/// in the catalog, in one incremental update. A document stamped already is returned unchanged.
pub fn stamp_training_watermark(original: &[u8]) -> Result<Vec<u8>, PdfError> {
    crate::engine::precheck(original)?;
    let document = open_for_update(original, parse_error)?;
    let catalog_id = catalog_id(&document, parse_error)?;
    let mut catalog = document
        .get_dictionary(catalog_id)
        .map_err(parse_error)?
        .clone();
    if catalog.has(TRAINING_MARKER_KEY.as_bytes()) {
        return Ok(original.to_vec());
    }
    let pages: Vec<ObjectId> = document.get_pages().values().copied().collect();
    let mut planned = Vec::with_capacity(pages.len());
    for page_id in pages {
        let page = document.get_dictionary(page_id).map_err(parse_error)?;
        let bounds = page_box(&document, page_id)?;
        let resources = resources_with_font(&document, page_id)?;
        let contents = page.get(b"Contents").ok().cloned();
        planned.push((page_id, page.clone(), bounds, resources, contents));
    }
    let mut incremental = start_update(original, document);
    let new = &mut incremental.new_document;
    let font_id = new.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica-Bold",
        "Encoding" => "WinAnsiEncoding",
        "FirstChar" => 32,
        "LastChar" => 90,
        "Widths" => HELVETICA_BOLD_WIDTHS.iter().map(|w| Object::Integer(*w)).collect::<Vec<_>>(),
    });
    // Whatever state the page's own content leaves behind is closed off before the watermark.
    let open_id = new.add_object(Stream::new(Dictionary::new(), b"q\n".to_vec()));
    for (page_id, mut page, bounds, mut resources, contents) in planned {
        let mut fonts = match resources.get(b"Font") {
            Ok(Object::Dictionary(fonts)) => fonts.clone(),
            _ => Dictionary::new(),
        };
        fonts.set(FONT_RESOURCE, Object::Reference(font_id));
        resources.set("Font", Object::Dictionary(fonts));
        let mark_id = new.add_object(Stream::new(Dictionary::new(), watermark_content(bounds)));
        let mut parts = vec![Object::Reference(open_id)];
        match contents {
            Some(Object::Array(items)) => parts.extend(items),
            Some(other) => parts.push(other),
            None => {}
        }
        parts.push(Object::Reference(mark_id));
        page.set("Contents", Object::Array(parts));
        page.set("Resources", Object::Dictionary(resources));
        new.set_object(page_id, page);
    }
    catalog.set(TRAINING_MARKER_KEY, Object::Boolean(true));
    new.set_object(catalog_id, catalog);
    write_update(&mut incremental, original.len() + 8 * 1024)
}

/// The page's visible box (`/CropBox`, else `/MediaBox`, inherited from the page tree if need
/// be) as left, bottom, right, top.
fn page_box(document: &Document, page_id: ObjectId) -> Result<[f32; 4], PdfError> {
    for key in [b"CropBox".as_slice(), b"MediaBox"] {
        if let Some(object) = inherited(document, page_id, key) {
            let array = match object {
                Object::Reference(id) => document
                    .get_object(id)
                    .and_then(Object::as_array)
                    .map_err(parse_error)?
                    .clone(),
                Object::Array(array) => array,
                _ => continue,
            };
            let numbers: Vec<f32> = array.iter().filter_map(|o| o.as_float().ok()).collect();
            if let [a, b, c, d] = numbers[..] {
                return Ok([a.min(c), b.min(d), a.max(c), b.max(d)]);
            }
        }
    }
    Err(PdfError::Damaged(format!(
        "page object {} has no page box",
        page_id.0
    )))
}

/// A page attribute from the page or, if it lacks it, from its ancestors in the page tree.
fn inherited(document: &Document, page_id: ObjectId, key: &[u8]) -> Option<Object> {
    let mut current = page_id;
    for _ in 0..64 {
        let node = document.get_dictionary(current).ok()?;
        if let Ok(value) = node.get(key) {
            return Some(value.clone());
        }
        current = node.get(b"Parent").and_then(Object::as_reference).ok()?;
    }
    None
}

/// The page's resources as a dictionary of its own (resolved, inherited if need be), its `/Font`
/// entry resolved too, ready for the watermark's font to be added.
fn resources_with_font(document: &Document, page_id: ObjectId) -> Result<Dictionary, PdfError> {
    let resolve = |object: Object| -> Result<Option<Dictionary>, PdfError> {
        match object {
            Object::Reference(id) => Ok(Some(
                document.get_dictionary(id).map_err(parse_error)?.clone(),
            )),
            Object::Dictionary(dict) => Ok(Some(dict)),
            _ => Ok(None),
        }
    };
    let mut resources = match inherited(document, page_id, b"Resources") {
        Some(object) => resolve(object)?.unwrap_or_default(),
        None => Dictionary::new(),
    };
    if let Ok(fonts) = resources.get(b"Font").cloned() {
        if let Some(fonts) = resolve(fonts)? {
            resources.set("Font", Object::Dictionary(fonts));
        }
    }
    Ok(resources)
}

/// The content that draws the watermark: "TRAINING" outlined in red along the page's diagonal,
/// and the banner line at the top.
fn watermark_content(bounds: [f32; 4]) -> Vec<u8> {
    let [left, bottom, right, top] = bounds;
    let (width, height) = (right - left, top - bottom);
    let diagonal = (width * width + height * height).sqrt();
    let (cos, sin) = (width / diagonal, height / diagonal);
    let text_width = helvetica_bold_width(TRAINING_WATERMARK);
    let size = 0.6 * diagonal / text_width;
    let half = text_width * size / 2.0;
    // Centre the words on the page's centre: back half their length along the diagonal and down
    // half a capital's height across it.
    let lift = 0.36 * size;
    let x = left + width / 2.0 - half * cos + lift * sin;
    let y = bottom + height / 2.0 - half * sin - lift * cos;
    let banner_size = (width / 60.0).clamp(6.0, 10.0);
    let banner_x = left + (width - helvetica_bold_width(TRAINING_BANNER) * banner_size) / 2.0;
    let banner_y = top - 1.6 * banner_size;
    format!(
        "Q\nq 0.85 0.1 0.1 RG {line} w 1 Tr BT /{FONT_RESOURCE} {size} Tf {cos} {sin} {nsin} {cos} {x} {y} Tm ({TRAINING_WATERMARK}) Tj ET Q\n\
         q 0.85 0.1 0.1 rg 0 Tr BT /{FONT_RESOURCE} {banner_size} Tf 1 0 0 1 {banner_x} {banner_y} Tm ({TRAINING_BANNER}) Tj ET Q\n",
        line = fmt((size / 60.0).max(0.8)),
        size = fmt(size),
        cos = fmt(cos),
        sin = fmt(sin),
        nsin = fmt(-sin),
        x = fmt(x),
        y = fmt(y),
        banner_size = fmt(banner_size),
        banner_x = fmt(banner_x),
        banner_y = fmt(banner_y),
    )
    .into_bytes()
}
