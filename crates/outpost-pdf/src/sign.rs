//! PAdES baseline B-B signatures written as one incremental update.
//!
//! The update adds a signature field that is also its widget (on a page, visible with a mark, or
//! invisible), the `/Sig` dictionary (`/Filter /Adobe.PPKLite`, `/SubFilter /ETSI.CAdES.detached`,
//! `/ByteRange`, `/Contents`, `/M`, `/Reason`, `/Name`), the form's field list and, for a
//! certifying signature, `/Perms /DocMDP` with the chosen permission. `/Contents` is reserved as a
//! run of zeros and `/ByteRange` as a fixed-width placeholder; once the update is written, the
//! byte ranges are filled in (same width), hashed, signed, and the CMS is written into the
//! reserved space. The original bytes stay an exact prefix, so earlier signatures stay valid.

use std::fmt::Write as _;
use std::path::Path;

use lopdf::{dictionary, Dictionary, Document, IncrementalDocument, Object, ObjectId, Stream};
use sha2::{Digest, Sha256};

use crate::annotation::Rect;
use crate::burn_in::{fmt, open_for_update, pdf_date, start_update, text_string, write_appended};
use crate::cms::{detached_signature, PdfSigner};
use crate::font::EmbeddedFont;
use crate::form::{docmdp_reference, page_annots, set_page_annots, signature_fields};
use crate::PdfError;

/// Bytes reserved for the CMS in `/Contents` unless asked otherwise (a P-256 or RSA-3072
/// signature with a three-certificate chain takes about 3–5 KB).
pub const DEFAULT_RESERVED_BYTES: usize = 16 * 1024;
/// The placeholder written for each of the three unknown `/ByteRange` numbers.
pub(crate) const BYTE_RANGE_PLACEHOLDER: i64 = 9_999_999_999;

/// What a certifying (first) signature allows afterwards (`/DocMDP` `/P`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocMdpPermission {
    /// No changes at all.
    NoChanges = 1,
    /// Filling in forms and signing.
    FormFillingAndSignatures = 2,
    /// Also annotations.
    Annotations = 3,
}

/// A visible signature mark: where it goes and the lines it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureMark {
    /// The mark's box in the page's user space.
    pub rect: Rect,
    /// Its lines, top to bottom (the first is shown as the heading).
    pub lines: Vec<String>,
}

/// How to sign.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureRequest {
    /// The page the signature's widget is on, 1-based.
    pub page: u32,
    /// The visible mark; `None` for an invisible signature.
    pub mark: Option<SignatureMark>,
    /// Why (`/Reason`).
    pub reason: String,
    /// Who (`/Name`).
    pub signer_name: String,
    /// Where (`/Location`), if said.
    pub location: Option<String>,
    /// When, milliseconds since the epoch (`/M`; CMS carries no signing time).
    pub signing_time_ms: i64,
    /// Certify the document (first signature only) with this permission.
    pub certify: Option<DocMdpPermission>,
    /// Bytes reserved for the CMS.
    pub reserved_bytes: usize,
}

pub(crate) fn parse_error(e: lopdf::Error) -> PdfError {
    PdfError::Damaged(format!("its structure cannot be parsed for signing: {e}"))
}

/// The signature fields the document already has (their `/T` names) and whether it is certified.
pub(crate) fn existing_signatures(document: &Document) -> (Vec<String>, bool) {
    let names = signature_fields(document)
        .iter()
        .filter_map(|field| field.get(b"T").and_then(Object::as_str).ok())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    (names, docmdp_reference(document).is_some())
}

/// The first of `{prefix}1`, `{prefix}2`, … that no field in `existing` is named.
pub(crate) fn free_field_name(existing: &[String], prefix: &str) -> String {
    (1..)
        .map(|n| format!("{prefix}{n}"))
        .find(|name| !existing.contains(name))
        .unwrap_or_else(|| prefix.to_string())
}

/// The catalog's object id (the trailer's `/Root`).
pub(crate) fn catalog_id(
    document: &Document,
    parse_error: fn(lopdf::Error) -> PdfError,
) -> Result<ObjectId, PdfError> {
    document
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(parse_error)
}

/// A signature written as one incremental update: what is appended to the original, and the
/// SHA-256 of the whole signed file (original and update), computed while signing.
#[derive(Debug, Clone)]
pub struct SignedUpdate {
    /// The bytes to append to the original: the signed file is the original followed by these.
    pub appended: Vec<u8>,
    /// The SHA-256 of the whole signed file.
    pub sha256_after: [u8; 32],
}

/// Signs `original` as one incremental update and returns the signed file ([`sign_pdf_update`]
/// appended to a copy of `original`).
pub fn sign_pdf(
    original: &[u8],
    request: &SignatureRequest,
    signer: &dyn PdfSigner,
    font: &Path,
) -> Result<Vec<u8>, PdfError> {
    let update = sign_pdf_update(original, request, signer, font)?;
    let mut signed = Vec::with_capacity(original.len() + update.appended.len());
    signed.extend_from_slice(original);
    signed.extend_from_slice(&update.appended);
    Ok(signed)
}

/// Signs `original` as one incremental update and returns only the update, with the hash of
/// the whole signed file: for a caller that keeps revisions as updates (the vault) or appends
/// the update to the original's file, this spares one copy of the whole document and a second
/// hashing of it.
///
/// `font` draws the visible mark's text (DejaVu Sans covers Russian and English). Pending
/// annotations must be burned in before: the signature covers exactly the bytes it is given.
pub fn sign_pdf_update(
    original: &[u8],
    request: &SignatureRequest,
    signer: &dyn PdfSigner,
    font: &Path,
) -> Result<SignedUpdate, PdfError> {
    crate::engine::precheck(original)?;
    let document = open_for_update(original, parse_error)?;
    let pages = document.get_pages();
    let page_count = pages.len() as u32;
    let page_id = *pages.get(&request.page).ok_or(PdfError::PageOutOfRange {
        page: request.page,
        page_count,
    })?;
    let (existing, certified) = existing_signatures(&document);
    if request.certify.is_some() && (certified || !existing.is_empty()) {
        return Err(PdfError::Signing(
            "only the first signature of a document can certify it; sign without certifying".into(),
        ));
    }
    if certified && request.mark.is_some() {
        // DocMDP allows signing after certification, but a new *visible* field changes the page;
        // validators (pyHanko, Acrobat) then call the certification broken.
        return Err(PdfError::Signing(
            "this document is certified: later signatures must be invisible; sign without a visible mark"
                .into(),
        ));
    }
    let field_name = free_field_name(&existing, "Signature");
    let catalog_id = catalog_id(&document, parse_error)?;

    let mut incremental = start_update(original, document);
    let new = &mut incremental.new_document;

    // The /Sig dictionary with its placeholders.
    let mut signature = dictionary! {
        "Type" => "Sig",
        "Filter" => "Adobe.PPKLite",
        "SubFilter" => "ETSI.CAdES.detached",
        "ByteRange" => vec![
            Object::Integer(0),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
        ],
        "Contents" => contents_placeholder(request.reserved_bytes),
        "M" => Object::string_literal(pdf_date(request.signing_time_ms)),
        "Reason" => text_string(&request.reason),
        "Name" => text_string(&request.signer_name),
    };
    if let Some(location) = &request.location {
        signature.set("Location", text_string(location));
    }
    if let Some(permission) = request.certify {
        signature.set(
            "Reference",
            vec![Object::Dictionary(dictionary! {
                "Type" => "SigRef",
                "TransformMethod" => "DocMDP",
                "TransformParams" => dictionary! {
                    "Type" => "TransformParams",
                    "P" => permission as i64,
                    "V" => "1.2",
                },
            })],
        );
    }
    let signature_id = new.add_object(signature);

    // The field, which is also its widget.
    let (rect, appearance) = match &request.mark {
        Some(mark) => {
            let appearance = mark_appearance(new, mark, font)?;
            (mark.rect, Some(appearance))
        }
        None => (
            Rect {
                left: 0.0,
                bottom: 0.0,
                right: 0.0,
                top: 0.0,
            },
            None,
        ),
    };
    let mut field = dictionary! {
        "Type" => "Annot",
        "Subtype" => "Widget",
        "FT" => "Sig",
        "T" => Object::string_literal(field_name),
        "V" => signature_id,
        "F" => 132,
        "P" => page_id,
        "Rect" => vec![
            Object::Real(rect.left),
            Object::Real(rect.bottom),
            Object::Real(rect.right),
            Object::Real(rect.top),
        ],
    };
    if let Some(appearance) = appearance {
        field.set("AP", dictionary! { "N" => appearance });
    }
    let field_id = new.add_object(field);

    // The page lists the widget among its annotations.
    let mut annots = page_annots(incremental.get_prev_documents(), page_id);
    annots.push(Object::Reference(field_id));
    set_page_annots(&mut incremental, page_id, annots).map_err(parse_error)?;

    add_to_form(
        &mut incremental,
        catalog_id,
        field_id,
        request.certify.map(|_| signature_id),
    )?;

    let mut appended = write_appended(&mut incremental, request.reserved_bytes * 2 + 16 * 1024)?;
    let sha256_after =
        fill_in_appended_signature(original, &mut appended, request.reserved_bytes, |digest| {
            detached_signature(digest, signer)
        })?;
    Ok(SignedUpdate {
        appended,
        sha256_after,
    })
}

/// Adds the field to the catalog's `/AcroForm` (made an indirect object if it is new or direct)
/// with `/SigFlags 3`, and for a certifying signature adds `/Perms /DocMDP`.
pub(crate) fn add_to_form(
    incremental: &mut IncrementalDocument,
    catalog_id: ObjectId,
    field_id: ObjectId,
    certifying: Option<ObjectId>,
) -> Result<(), PdfError> {
    let prev = incremental.get_prev_documents();
    let catalog = prev
        .get_dictionary(catalog_id)
        .map_err(parse_error)?
        .clone();
    let form_entry = catalog.get(b"AcroForm").ok().cloned();
    let (form_id, mut form) = match &form_entry {
        Some(Object::Reference(id)) => (
            Some(*id),
            prev.get_dictionary(*id).map_err(parse_error)?.clone(),
        ),
        Some(Object::Dictionary(d)) => (None, d.clone()),
        _ => (None, Dictionary::new()),
    };
    // The field list may itself be an indirect array: write a new version of it.
    let mut fields_array_id = None;
    let mut fields = match form.get(b"Fields") {
        Ok(Object::Reference(id)) => {
            fields_array_id = Some(*id);
            prev.get_object(*id)
                .and_then(Object::as_array)
                .cloned()
                .unwrap_or_default()
        }
        Ok(Object::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    fields.push(Object::Reference(field_id));
    let new = &mut incremental.new_document;
    match fields_array_id {
        Some(id) => new.set_object(id, Object::Array(fields)),
        None => form.set("Fields", Object::Array(fields)),
    }
    form.set("SigFlags", 3);
    let form_id = match form_id {
        Some(id) => {
            new.set_object(id, form);
            id
        }
        None => new.add_object(form),
    };
    let mut catalog = catalog;
    let catalog_changes = form_entry != Some(Object::Reference(form_id)) || certifying.is_some();
    if catalog_changes {
        catalog.set("AcroForm", form_id);
        if let Some(signature_id) = certifying {
            catalog.set("Perms", dictionary! { "DocMDP" => signature_id });
        }
        new.set_object(catalog_id, catalog);
    }
    Ok(())
}

/// The `/Contents` placeholder for `reserved` bytes of signature: `2 × reserved` ASCII zeros.
/// It is written as a literal string, `(00…0)`, because lopdf writes a hexadecimal string one
/// formatted byte at a time (tens of thousands of formatting calls per signature, a fifth of the
/// signing time); [`fill_in_signature`] turns the parentheses into `<` and `>`, so the file holds
/// the same bytes a hexadecimal placeholder would have given, at the same offsets.
pub(crate) fn contents_placeholder(reserved: usize) -> Object {
    Object::String(vec![b'0'; reserved * 2], lopdf::StringFormat::Literal)
}

/// Finds the placeholders in the written update (the `/Contents` one made by
/// [`contents_placeholder`]), fills in `/ByteRange`, hashes the ranges, has `make_contents` sign
/// the digest (a CMS signature or a time-stamp token), and writes it into `/Contents` in
/// hexadecimal.
pub(crate) fn fill_in_signature(
    out: &mut [u8],
    original_len: usize,
    reserved: usize,
    make_contents: impl FnOnce(&[u8; 32]) -> Result<Vec<u8>, PdfError>,
) -> Result<(), PdfError> {
    let (original, appended) = out.split_at_mut(original_len);
    fill_in_appended_signature(original, appended, reserved, make_contents).map(|_| ())
}

/// [`fill_in_signature`] for an update kept apart from its original (`appended` follows
/// `original` in the signed file); returns the SHA-256 of the whole signed file, the original's
/// share hashed once for both digests.
pub(crate) fn fill_in_appended_signature(
    original: &[u8],
    appended: &mut [u8],
    reserved: usize,
    make_contents: impl FnOnce(&[u8; 32]) -> Result<Vec<u8>, PdfError>,
) -> Result<[u8; 32], PdfError> {
    let zeros = "0".repeat(reserved * 2);
    // Offsets within `appended`; the file's are `original.len()` further on.
    let contents_at = find(appended, format!("({zeros})").as_bytes())
        .ok_or_else(|| PdfError::Signing("the reserved /Contents was not found".into()))?;
    let placeholder =
        format!("{BYTE_RANGE_PLACEHOLDER} {BYTE_RANGE_PLACEHOLDER} {BYTE_RANGE_PLACEHOLDER}");
    let numbers_at = find(appended, placeholder.as_bytes())
        .ok_or_else(|| PdfError::Signing("the reserved /ByteRange was not found".into()))?;
    let contents_end = contents_at + reserved * 2 + 2;
    appended[contents_at] = b'<';
    appended[contents_end - 1] = b'>';
    let after = appended.len() - contents_end;
    let mut numbers = format!(
        "{} {} {after}",
        original.len() + contents_at,
        original.len() + contents_end
    );
    if numbers.len() > placeholder.len() {
        return Err(PdfError::Signing("the file is too large to sign".into()));
    }
    while numbers.len() < placeholder.len() {
        numbers.push(' ');
    }
    appended[numbers_at..numbers_at + placeholder.len()].copy_from_slice(numbers.as_bytes());

    let mut hasher = Sha256::new();
    hasher.update(original);
    let mut whole_file = hasher.clone();
    hasher.update(&appended[..contents_at]);
    hasher.update(&appended[contents_end..]);
    let digest: [u8; 32] = hasher.finalize().into();
    let cms = make_contents(&digest)?;
    if cms.len() > reserved {
        return Err(PdfError::Signing(format!(
            "the signature needs {} bytes but only {reserved} were reserved; sign again reserving more",
            cms.len()
        )));
    }
    let hex = hex::encode_upper(&cms);
    appended[contents_at + 1..contents_at + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    whole_file.update(&*appended);
    Ok(whole_file.finalize().into())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The mark's appearance: a blue frame, the heading and the lines in DejaVu Sans, sized to fit.
fn mark_appearance(
    document: &mut Document,
    mark: &SignatureMark,
    font_path: &Path,
) -> Result<ObjectId, PdfError> {
    let mut font = EmbeddedFont::load(font_path)?;
    let font_id = document.new_object_id();
    let r = mark.rect;
    let (width, height) = (r.width(), r.height());
    if width < 20.0 || height < 10.0 {
        return Err(PdfError::Signing(
            "the signature mark is too small: draw a box at least 20 by 10 points".into(),
        ));
    }
    let padding = 4.0;
    // The largest size (10 pt down to 4 pt) at which the wrapped lines fit the box.
    let mut size = 10.0_f32;
    let mut runs = Vec::new();
    while size >= 4.0 {
        runs = mark
            .lines
            .iter()
            .flat_map(|line| font.wrap(line, size, width - 2.0 * padding))
            .collect();
        if runs.len() as f32 * size * 1.2 <= height - 2.0 * padding {
            break;
        }
        size -= 0.5;
    }
    let size = size.max(4.0);
    let mut content = String::new();
    let _ = writeln!(
        content,
        "q 0.12 0.31 0.62 RG 1.2 w {} {} {} {} re S",
        fmt(r.left + 0.6),
        fmt(r.bottom + 0.6),
        fmt(width - 1.2),
        fmt(height - 1.2)
    );
    let _ = writeln!(
        content,
        "{} {} {} {} re W n BT 0.12 0.31 0.62 rg /F0 {} Tf {} TL {} {} Td",
        fmt(r.left),
        fmt(r.bottom),
        fmt(width),
        fmt(height),
        fmt(size),
        fmt(size * 1.2),
        fmt(r.left + padding),
        fmt(r.top - padding - size * font.ascender() / 1000.0)
    );
    for (i, run) in runs.iter().enumerate() {
        let hex: String = run.glyphs.iter().map(|g| format!("{g:04X}")).collect();
        let _ = writeln!(content, "<{hex}> {}", if i == 0 { "Tj" } else { "'" });
    }
    content.push_str("ET Q\n");
    font.write(document, font_id)?;
    let mut stream = Stream::new(
        dictionary! {
            "Type" => "XObject",
            "Subtype" => "Form",
            "BBox" => vec![Object::Real(r.left), Object::Real(r.bottom), Object::Real(r.right), Object::Real(r.top)],
            "Resources" => dictionary! { "Font" => dictionary! { "F0" => font_id } },
        },
        content.into_bytes(),
    );
    let _ = stream.compress();
    Ok(document.add_object(stream))
}
