//! Burn-in: annotations written into a PDF as standard annotation objects, each with its own
//! appearance stream, in one incremental update appended to the original bytes.
//!
//! The original bytes are never touched (they are an exact prefix of the result), so signatures
//! over them stay valid. An annotation already burned into the file (same `/NM`) is replaced by
//! writing a new version of its object, not duplicated.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use lopdf::{dictionary, Dictionary, Document, IncrementalDocument, Object, ObjectId, Stream};
use time::OffsetDateTime;

use crate::annotation::{Annotation, AnnotationKind, Geometry, Point, Quad, Rect};
use crate::font::EmbeddedFont;
use crate::form::{page_annots, set_page_annots};
use crate::PdfError;

/// Padding between a free-text box's border and its text, in points.
const FREE_TEXT_PADDING: f32 = 3.0;

/// Appends `annotations` to the PDF `original` as one incremental update and returns the new file.
///
/// `font` is the TrueType font used to draw free text (DejaVu Sans covers Russian and English);
/// it is read only when there is free text. Fails without producing anything when the PDF cannot
/// be parsed, an annotation is malformed, or names a page the document lacks.
pub fn burn_in(
    original: &[u8],
    annotations: &[Annotation],
    font: &Path,
) -> Result<Vec<u8>, PdfError> {
    crate::engine::precheck(original)?;
    for annotation in annotations {
        annotation.validate()?;
    }
    let document = open_for_update(original, parse_error)?;
    let pages = document.get_pages();
    let page_count = pages.len() as u32;
    let mut incremental = start_update(original, document);

    let mut by_page: BTreeMap<u32, Vec<&Annotation>> = BTreeMap::new();
    for annotation in annotations {
        by_page.entry(annotation.page).or_default().push(annotation);
    }
    let mut font_object = None;
    let mut embedded_font = if annotations
        .iter()
        .any(|a| a.kind == AnnotationKind::FreeText)
    {
        Some(EmbeddedFont::load(font)?)
    } else {
        None
    };
    // The font is written once, after all text is laid out; its id is reserved now.
    if embedded_font.is_some() {
        font_object = Some(incremental.new_document.new_object_id());
    }

    for (page_number, page_annotations) in by_page {
        let page_id = *pages.get(&page_number).ok_or(PdfError::PageOutOfRange {
            page: page_number,
            page_count,
        })?;
        let existing = existing_annotations(incremental.get_prev_documents(), page_id);
        let mut annots: Vec<Object> = existing.iter().map(|(_, o)| o.clone()).collect();
        for annotation in page_annotations {
            let appearance = appearance_stream(annotation, embedded_font.as_mut(), font_object);
            let appearance_id = incremental.new_document.add_object(appearance);
            let dict = annotation_dictionary(annotation, page_id, appearance_id);
            let name = annotation.id.to_string();
            let replaced = existing
                .iter()
                .find(|(nm, _)| nm.as_deref() == Some(name.as_str()))
                .and_then(|(_, o)| o.as_reference().ok());
            match replaced {
                Some(id) => incremental.new_document.set_object(id, dict),
                None => {
                    let id = incremental.new_document.add_object(dict);
                    annots.push(Object::Reference(id));
                }
            }
        }
        set_page_annots(&mut incremental, page_id, annots).map_err(parse_error)?;
    }
    if let (Some(font), Some(id)) = (embedded_font, font_object) {
        font.write(&mut incremental.new_document, id)?;
    }
    let out = write_update(&mut incremental, original.len() + 4096)?;
    debug_assert!(out.starts_with(original));
    Ok(out)
}

fn parse_error(e: lopdf::Error) -> PdfError {
    PdfError::Damaged(format!("its structure cannot be parsed for writing: {e}"))
}

/// Parses `original` for an incremental update (its structure errors through `parse_error`),
/// refusing an encrypted file.
pub(crate) fn open_for_update(
    original: &[u8],
    parse_error: fn(lopdf::Error) -> PdfError,
) -> Result<Document, PdfError> {
    let document = Document::load_mem(original).map_err(parse_error)?;
    if document.is_encrypted() || document.trailer.get(b"Encrypt").is_ok() {
        return Err(PdfError::PasswordProtected);
    }
    Ok(document)
}

/// An incremental update on top of `original` (parsed as `document`), its trailer trimmed.
pub(crate) fn start_update(original: &[u8], document: Document) -> IncrementalDocument {
    let mut incremental = IncrementalDocument::create_from(original.to_vec(), document);
    keep_only_update_trailer_keys(&mut incremental.new_document.trailer);
    incremental
}

/// The whole file with the update written after the original bytes.
pub(crate) fn write_update(
    incremental: &mut IncrementalDocument,
    capacity: usize,
) -> Result<Vec<u8>, PdfError> {
    let mut out = Vec::with_capacity(capacity);
    incremental
        .save_to(&mut out)
        .map_err(|e| PdfError::Engine(format!("writing the update failed: {e}")))?;
    Ok(out)
}

/// Only the update: the bytes [`write_update`] would write after the original's (the writer
/// still counts those, so offsets in the update are those of the whole file). Spares the copy
/// of the whole document into the output when the caller keeps the original where it is.
pub(crate) fn write_appended(
    incremental: &mut IncrementalDocument,
    capacity: usize,
) -> Result<Vec<u8>, PdfError> {
    let mut sink = AfterOriginal {
        skip: incremental.get_prev_documents_bytes().len(),
        appended: Vec::with_capacity(capacity),
    };
    incremental
        .save_to(&mut sink)
        .map_err(|e| PdfError::Engine(format!("writing the update failed: {e}")))?;
    if sink.skip != 0 {
        return Err(PdfError::Engine(
            "writing the update failed: the original's bytes were not all written before it".into(),
        ));
    }
    Ok(sink.appended)
}

/// A writer that passes over the first `skip` bytes written to it and keeps the rest.
struct AfterOriginal {
    skip: usize,
    appended: Vec<u8>,
}

impl std::io::Write for AfterOriginal {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let skipped = bytes.len().min(self.skip);
        self.skip -= skipped;
        self.appended.extend_from_slice(&bytes[skipped..]);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An update's trailer carries only what identifies the document; sizes, `/Prev` and xref stream
/// keys are the writer's business, and `/XRefStm` of a hybrid file must not be repeated.
fn keep_only_update_trailer_keys(trailer: &mut Dictionary) {
    let keep: Vec<Vec<u8>> = [b"Root".as_slice(), b"Info", b"ID", b"Prev"]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    let drop: Vec<Vec<u8>> = trailer
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| !keep.contains(k))
        .collect();
    for key in drop {
        trailer.remove(&key);
    }
}

/// The page's annotation entries as they are, each with its `/NM` if it has one.
fn existing_annotations(document: &Document, page_id: ObjectId) -> Vec<(Option<String>, Object)> {
    page_annots(document, page_id)
        .into_iter()
        .map(|entry| {
            let name = document
                .dereference(&entry)
                .ok()
                .and_then(|(_, o)| o.as_dict().ok())
                .and_then(|d| d.get(b"NM").ok())
                .and_then(|nm| nm.as_str().ok())
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
            (name, entry)
        })
        .collect()
}

fn number(value: f32) -> Object {
    Object::Real(value)
}

fn rect_array(rect: Rect) -> Object {
    Object::Array(vec![
        number(rect.left),
        number(rect.bottom),
        number(rect.right),
        number(rect.top),
    ])
}

/// A PDF text string: PDFDocEncoding-compatible ASCII as is, anything else as UTF-16BE with a BOM.
pub(crate) fn text_string(text: &str) -> Object {
    if text.chars().all(|c| (' '..='~').contains(&c)) {
        Object::String(text.as_bytes().to_vec(), lopdf::StringFormat::Literal)
    } else {
        let mut bytes = vec![0xFE, 0xFF];
        for unit in text.encode_utf16() {
            bytes.extend_from_slice(&unit.to_be_bytes());
        }
        Object::String(bytes, lopdf::StringFormat::Hexadecimal)
    }
}

/// A PDF date string (`D:YYYYMMDDHHmmSSZ`, UTC) for a moment in milliseconds since the epoch.
pub fn pdf_date(ms: i64) -> String {
    let moment = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}Z",
        moment.year(),
        u8::from(moment.month()),
        moment.day(),
        moment.hour(),
        moment.minute(),
        moment.second()
    )
}

/// Reads a PDF date string (`D:YYYYMMDDHHmmSS` with an optional `Z` or `±HH'mm'` offset; missing
/// trailing fields default as the PDF specification says) as milliseconds since the epoch.
pub fn parse_pdf_date(text: &str) -> Option<i64> {
    let digits = text.strip_prefix("D:").unwrap_or(text);
    let number = |from: usize, len: usize, default: u32| -> Option<u32> {
        match digits.get(from..from + len) {
            Some(part) if part.bytes().all(|b| b.is_ascii_digit()) => part.parse().ok(),
            Some(_) => None,
            None => Some(default),
        }
    };
    let year = i32::try_from(number(0, 4, 0)?).ok()?;
    let month = time::Month::try_from(u8::try_from(number(4, 2, 1)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(year, month, u8::try_from(number(6, 2, 1)?).ok()?).ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(number(8, 2, 0)?).ok()?,
        u8::try_from(number(10, 2, 0)?).ok()?,
        u8::try_from(number(12, 2, 0)?).ok()?,
    )
    .ok()?;
    let mut offset_minutes = 0i64;
    if let Some(rest) = digits.get(14..) {
        let mut chars = rest.chars();
        match chars.next() {
            Some(sign @ ('+' | '-')) => {
                let tail: String = chars.filter(|c| c.is_ascii_digit()).collect();
                let hours: i64 = tail.get(0..2)?.parse().ok()?;
                let minutes: i64 = tail.get(2..4).and_then(|m| m.parse().ok()).unwrap_or(0);
                offset_minutes = (hours * 60 + minutes) * if sign == '-' { -1 } else { 1 };
            }
            Some('Z') | None => {}
            Some(_) => return None,
        }
    }
    let utc = time::PrimitiveDateTime::new(date, clock).assume_utc();
    Some((utc.unix_timestamp() - offset_minutes * 60) * 1000)
}

fn annotation_dictionary(
    annotation: &Annotation,
    page_id: ObjectId,
    appearance_id: ObjectId,
) -> Dictionary {
    let rect = annotation.rect();
    let [r, g, b] = annotation.colour.components();
    let mut dict = dictionary! {
        "Type" => "Annot",
        "Subtype" => annotation.kind.pdf_subtype(),
        "Rect" => rect_array(rect),
        "P" => page_id,
        "NM" => Object::string_literal(annotation.id.to_string()),
        "T" => text_string(&annotation.author),
        "Contents" => text_string(&annotation.contents),
        "M" => Object::string_literal(pdf_date(annotation.modified_ms)),
        "CreationDate" => Object::string_literal(pdf_date(annotation.created_ms)),
        "C" => vec![number(r), number(g), number(b)],
        "F" => 4,
        "AP" => dictionary! { "N" => appearance_id },
    };
    match &annotation.geometry {
        Geometry::Quads { quads } => {
            dict.set("QuadPoints", quad_points(quads));
        }
        Geometry::Strokes { strokes } => {
            let list: Vec<Object> = strokes
                .iter()
                .map(|stroke| {
                    Object::Array(
                        stroke
                            .iter()
                            .flat_map(|p| [number(p.x), number(p.y)])
                            .collect(),
                    )
                })
                .collect();
            dict.set("InkList", list);
        }
        Geometry::Icon { .. } | Geometry::Box { .. } => {}
    }
    match annotation.kind {
        AnnotationKind::Note => {
            dict.set("Name", "Note");
            dict.set("Open", false);
        }
        AnnotationKind::FreeText => {
            dict.set(
                "DA",
                Object::string_literal(format!("/Helv {} Tf 0 g", fmt(annotation.font_size))),
            );
            dict.set("Q", 0);
        }
        _ => {}
    }
    if matches!(
        annotation.kind,
        AnnotationKind::FreeText
            | AnnotationKind::Ink
            | AnnotationKind::Rectangle
            | AnnotationKind::Ellipse
    ) {
        dict.set(
            "BS",
            dictionary! { "Type" => "Border", "W" => number(annotation.line_width), "S" => "S" },
        );
    } else {
        dict.set("Border", vec![0.into(), 0.into(), 0.into()]);
    }
    dict
}

fn quad_points(quads: &[Quad]) -> Object {
    Object::Array(
        quads
            .iter()
            .flat_map(|q| q.points)
            .flat_map(|p| [number(p.x), number(p.y)])
            .collect(),
    )
}

/// A number for a content stream: at most three decimals, no exponent.
pub(crate) fn fmt(value: f32) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" || text.is_empty() {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

fn point(p: Point) -> String {
    format!("{} {}", fmt(p.x), fmt(p.y))
}

/// The `/AP /N` form XObject: what the annotation looks like, drawn in user space within its
/// `/Rect` (the form's `/BBox`), so it looks the same in every reader and on rotated pages.
fn appearance_stream(
    annotation: &Annotation,
    font: Option<&mut EmbeddedFont>,
    font_id: Option<ObjectId>,
) -> Stream {
    let rect = annotation.rect();
    let [r, g, b] = annotation.colour.components();
    let colour = format!("{} {} {}", fmt(r), fmt(g), fmt(b));
    let width = annotation.line_width;
    let mut resources = Dictionary::new();
    let mut content = String::new();
    match (&annotation.geometry, annotation.kind) {
        (Geometry::Quads { quads }, AnnotationKind::Highlight) => {
            resources.set(
                "ExtGState",
                dictionary! { "GS0" => dictionary! { "Type" => "ExtGState", "BM" => "Multiply", "ca" => 1 } },
            );
            let _ = writeln!(content, "/GS0 gs {colour} rg");
            for q in quads {
                let [ul, ur, ll, lr] = q.points;
                let _ = writeln!(
                    content,
                    "{} m {} l {} l {} l h f",
                    point(ul),
                    point(ur),
                    point(lr),
                    point(ll)
                );
            }
        }
        (Geometry::Quads { quads }, kind) => {
            let _ = writeln!(content, "{colour} RG {} w", fmt(width.max(0.5)));
            for q in quads {
                let [ul, ur, ll, lr] = q.points;
                let (from, to) = if kind == AnnotationKind::StrikeOut {
                    (midpoint(ul, ll), midpoint(ur, lr))
                } else {
                    // Just above the bottom edge, so the line stays inside the quad.
                    let lift = width.max(0.5) / 2.0;
                    (
                        Point {
                            x: ll.x,
                            y: ll.y + lift,
                        },
                        Point {
                            x: lr.x,
                            y: lr.y + lift,
                        },
                    )
                };
                let _ = writeln!(content, "{} m {} l S", point(from), point(to));
            }
        }
        (Geometry::Icon { at }, _) => {
            let s = Annotation::NOTE_ICON_SIZE;
            let (x, y) = (at.x, at.y - s);
            let _ = writeln!(
                content,
                "{colour} rg 0 0 0 RG 1 w {} {} {} {} re B",
                fmt(x + 0.5),
                fmt(y + 0.5),
                fmt(s - 1.0),
                fmt(s - 1.0)
            );
            for line in 0..4 {
                let ly = y + s - 6.0 - line as f32 * 4.0;
                let _ = writeln!(
                    content,
                    "{} {} m {} {} l S",
                    fmt(x + 5.0),
                    fmt(ly),
                    fmt(x + s - 5.0),
                    fmt(ly)
                );
            }
        }
        (Geometry::Box { rect: area }, AnnotationKind::FreeText) => {
            if width > 0.0 {
                let _ = writeln!(
                    content,
                    "{colour} RG {} w {} re S",
                    fmt(width),
                    inset(*area, width)
                );
            }
            if let (Some(font), Some(font_id)) = (font, font_id) {
                resources.set("Font", dictionary! { "F0" => font_id });
                let size = annotation.font_size;
                let inner = area.width() - 2.0 * (FREE_TEXT_PADDING + width);
                let lines = font.wrap(&annotation.contents, size, inner);
                let leading = size * 1.2;
                let first_baseline =
                    area.top - width - FREE_TEXT_PADDING - size * font.ascender() / 1000.0;
                let _ = writeln!(
                    content,
                    "q {} {} {} {} re W n BT /F0 {} Tf 0 g {} TL {} {} Td",
                    fmt(area.left),
                    fmt(area.bottom),
                    fmt(area.width()),
                    fmt(area.height()),
                    fmt(size),
                    fmt(leading),
                    fmt(area.left + width + FREE_TEXT_PADDING),
                    fmt(first_baseline)
                );
                for (i, line) in lines.iter().enumerate() {
                    let hex: String = line.glyphs.iter().map(|g| format!("{g:04X}")).collect();
                    let op = if i == 0 { "Tj" } else { "'" };
                    let _ = writeln!(content, "<{hex}> {op}");
                }
                content.push_str("ET Q\n");
            }
        }
        (Geometry::Box { rect: area }, AnnotationKind::Ellipse) => {
            let _ = writeln!(content, "{colour} RG {} w", fmt(width));
            content.push_str(&ellipse_path(area.grown(-width / 2.0)));
            content.push_str("S\n");
        }
        (Geometry::Box { rect: area }, _) => {
            let _ = writeln!(
                content,
                "{colour} RG {} w {} re S",
                fmt(width),
                inset(*area, width)
            );
        }
        (Geometry::Strokes { strokes }, _) => {
            let _ = writeln!(content, "{colour} RG {} w 1 J 1 j", fmt(width));
            for stroke in strokes {
                let mut points = stroke.iter();
                if let Some(first) = points.next() {
                    let _ = write!(content, "{} m", point(*first));
                    if stroke.len() == 1 {
                        let _ = write!(content, " {} l", point(*first));
                    }
                    for p in points {
                        let _ = write!(content, " {} l", point(*p));
                    }
                    content.push_str(" S\n");
                }
            }
        }
    }
    let mut stream = Stream::new(
        dictionary! {
            "Type" => "XObject",
            "Subtype" => "Form",
            "BBox" => rect_array(rect),
            "Resources" => resources,
        },
        content.into_bytes(),
    );
    // Compression failing leaves the stream uncompressed, which is equally valid.
    let _ = stream.compress();
    stream
}

fn midpoint(a: Point, b: Point) -> Point {
    Point {
        x: (a.x + b.x) / 2.0,
        y: (a.y + b.y) / 2.0,
    }
}

/// `x y w h` of `area` shrunk by half the line width, so the stroke stays inside.
fn inset(area: Rect, width: f32) -> String {
    let r = area.grown(-width / 2.0);
    format!(
        "{} {} {} {}",
        fmt(r.left),
        fmt(r.bottom),
        fmt(r.width().max(0.0)),
        fmt(r.height().max(0.0))
    )
}

/// An ellipse inscribed in `r`, as four Bézier curves.
fn ellipse_path(r: Rect) -> String {
    const K: f32 = 0.552_284_8;
    let (cx, cy) = ((r.left + r.right) / 2.0, (r.bottom + r.top) / 2.0);
    let (rx, ry) = (r.width() / 2.0, r.height() / 2.0);
    let (kx, ky) = (rx * K, ry * K);
    let p = |x: f32, y: f32| format!("{} {}", fmt(x), fmt(y));
    format!(
        "{} m\n{} {} {} c\n{} {} {} c\n{} {} {} c\n{} {} {} c\n",
        p(cx + rx, cy),
        p(cx + rx, cy + ky),
        p(cx + kx, cy + ry),
        p(cx, cy + ry),
        p(cx - kx, cy + ry),
        p(cx - rx, cy + ky),
        p(cx - rx, cy),
        p(cx - rx, cy - ky),
        p(cx - kx, cy - ry),
        p(cx, cy - ry),
        p(cx + kx, cy - ry),
        p(cx + rx, cy - ky),
        p(cx + rx, cy),
    )
}

/// Annotation ids already burned into `bytes` (their `/NM`), page by page; for tests and for
/// telling the user what a file already carries.
pub fn burned_annotation_ids(bytes: &[u8]) -> Result<HashMap<u32, Vec<String>>, PdfError> {
    let document = Document::load_mem(bytes).map_err(parse_error)?;
    let mut found = HashMap::new();
    for (number, page_id) in document.get_pages() {
        let names: Vec<String> = existing_annotations(&document, page_id)
            .into_iter()
            .filter_map(|(nm, _)| nm)
            .collect();
        if !names.is_empty() {
            found.insert(number, names);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-page PDF, ending in a newline or not.
    fn one_page(ending_in_newline: bool) -> Vec<u8> {
        let mut document = Document::with_version("1.7");
        let pages_id = document.new_object_id();
        let page_id = document.add_object(lopdf::dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        });
        document.objects.insert(
            pages_id,
            Object::Dictionary(lopdf::dictionary! {
                "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
            }),
        );
        let catalog_id =
            document.add_object(lopdf::dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        document.trailer.set("Root", catalog_id);
        let mut bytes = Vec::new();
        document.save_to(&mut bytes).unwrap();
        while !ending_in_newline && bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        if ending_in_newline && bytes.last() != Some(&b'\n') {
            bytes.push(b'\n');
        }
        bytes
    }

    /// The same update on top of `original`: one new object.
    fn an_update(original: &[u8]) -> IncrementalDocument {
        let mut incremental = start_update(
            original,
            open_for_update(original, |e| PdfError::Engine(e.to_string())).unwrap(),
        );
        incremental
            .new_document
            .add_object(Object::string_literal("appended"));
        incremental
    }

    #[test]
    fn the_update_alone_is_the_whole_files_bytes_after_the_original() {
        for ending_in_newline in [true, false] {
            let original = one_page(ending_in_newline);
            assert_eq!(original.last() == Some(&b'\n'), ending_in_newline);
            let whole = write_update(&mut an_update(&original), 0).unwrap();
            let appended = write_appended(&mut an_update(&original), 0).unwrap();
            assert_eq!(&whole[..original.len()], original.as_slice());
            assert_eq!(
                &whole[original.len()..],
                appended.as_slice(),
                "ending in a newline: {ending_in_newline}"
            );
            assert!(!appended.is_empty());
        }
    }

    #[test]
    fn numbers_are_written_without_exponents_or_trailing_zeros() {
        assert_eq!(fmt(1.0), "1");
        assert_eq!(fmt(0.5), "0.5");
        assert_eq!(fmt(-0.0001), "0");
        assert_eq!(fmt(612.125), "612.125");
        assert_eq!(fmt(1e-7), "0");
    }

    #[test]
    fn dates_are_pdf_date_strings_in_utc() {
        assert_eq!(pdf_date(0), "D:19700101000000Z");
        assert_eq!(pdf_date(1_795_000_000_000), "D:20261118110640Z");
    }

    #[test]
    fn pdf_dates_read_back_with_and_without_offsets() {
        assert_eq!(
            parse_pdf_date(&pdf_date(1_795_000_000_000)),
            Some(1_795_000_000_000)
        );
        assert_eq!(parse_pdf_date("D:19700101030000+03'00'"), Some(0));
        assert_eq!(parse_pdf_date("D:1970"), Some(0));
        assert_eq!(parse_pdf_date("D:19701301000000Z"), None);
        assert_eq!(parse_pdf_date("garbage"), None);
    }

    #[test]
    fn non_ascii_text_becomes_utf16_with_a_byte_order_mark() {
        match text_string("Иванова") {
            Object::String(bytes, _) => {
                assert_eq!(&bytes[..4], &[0xFE, 0xFF, 0x04, 0x18]);
            }
            other => panic!("{other:?}"),
        }
        match text_string("Ivanova") {
            Object::String(bytes, _) => assert_eq!(bytes, b"Ivanova"),
            other => panic!("{other:?}"),
        }
    }
}
