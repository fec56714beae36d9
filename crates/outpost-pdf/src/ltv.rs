//! Long-term validation (PAdES B-LT and B-LTA), each step one incremental update: the
//! validation data a verifier needs later (certificates and CRLs) in the document security store
//! (`/DSS`), then a document time-stamp (`/Type /DocTimeStamp`, `/SubFilter /ETSI.RFC3161`) over
//! everything before it. Signatures are never rewritten: the signed bytes stay an exact prefix.

use lopdf::{dictionary, Dictionary, Document, Object, Stream};

use crate::burn_in::{open_for_update, start_update, write_update};
use crate::form::{page_annots, set_page_annots, signature_fields};
use crate::sign::{
    add_to_form, catalog_id, contents_placeholder, existing_signatures, fill_in_signature,
    free_field_name, parse_error, BYTE_RANGE_PLACEHOLDER,
};
use crate::PdfError;

/// Bytes reserved for a time-stamp token in `/Contents` (a P-256 token with its certificate
/// and the CA's takes about 2–3 KB).
pub const TIME_STAMP_RESERVED_BYTES: usize = 12 * 1024;

/// Validation material to keep in the document: DER certificates and DER CRLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationData {
    /// Certificates (signers', their issuers', the time-stamping authority's).
    pub certificates: Vec<Vec<u8>>,
    /// Certificate revocation lists.
    pub crls: Vec<Vec<u8>>,
}

/// A time-stamping authority: turns a SHA-256 digest into an RFC 3161 time-stamp token (DER).
pub trait DocumentTimeStamper {
    /// The token for `digest`.
    fn time_stamp(&self, digest: &[u8; 32]) -> Result<Vec<u8>, PdfError>;
}

/// The entry of a `/DSS` array as bytes, for telling what is there already.
fn stream_bytes(document: &Document, item: &Object) -> Option<Vec<u8>> {
    let (_, object) = document.dereference(item).ok()?;
    let stream = object.as_stream().ok()?;
    stream
        .decompressed_content()
        .ok()
        .or_else(|| Some(stream.content.clone()))
}

/// The catalog's document security store (`/DSS`, direct or referenced), if it has one.
pub(crate) fn security_store(document: &Document) -> Option<Dictionary> {
    let (_, catalog) = document
        .dereference(document.trailer.get(b"Root").ok()?)
        .ok()?;
    let (_, dss) = document
        .dereference(catalog.as_dict().ok()?.get(b"DSS").ok()?)
        .ok()?;
    dss.as_dict().ok().cloned()
}

/// The entries of one of the store's arrays (`/Certs`, `/CRLs`), as written.
fn store_entries(document: &Document, dss: &Dictionary, key: &[u8]) -> Vec<Object> {
    dss.get(key)
        .ok()
        .and_then(|entry| document.dereference(entry).ok())
        .and_then(|(_, array)| array.as_array().ok().cloned())
        .unwrap_or_default()
}

/// What one of the store's arrays holds: each entry's bytes (DER certificates, CRLs).
pub(crate) fn store_contents(document: &Document, dss: &Dictionary, key: &[u8]) -> Vec<Vec<u8>> {
    store_entries(document, dss, key)
        .iter()
        .filter_map(|item| stream_bytes(document, item))
        .collect()
}

fn load(original: &[u8]) -> Result<Document, PdfError> {
    crate::engine::precheck(original)?;
    open_for_update(original, parse_error)
}

/// Adds `data` to the document security store as one incremental update (what is there already
/// is kept and not repeated). Returns the original unchanged when everything is there already.
pub fn add_validation_data(original: &[u8], data: &ValidationData) -> Result<Vec<u8>, PdfError> {
    let document = load(original)?;
    let catalog_id = catalog_id(&document, parse_error)?;
    let catalog = document
        .get_dictionary(catalog_id)
        .map_err(parse_error)?
        .clone();
    let mut dss = security_store(&document).unwrap_or_default();
    let mut incremental = start_update(original, document);
    let mut added = 0;
    for (key, items) in [
        (&b"Certs"[..], &data.certificates),
        (&b"CRLs"[..], &data.crls),
    ] {
        let prev = incremental.get_prev_documents();
        let mut entries = store_entries(prev, &dss, key);
        let mut present = store_contents(prev, &dss, key);
        for item in items {
            if present.contains(item) {
                continue;
            }
            let id = incremental
                .new_document
                .add_object(Stream::new(Dictionary::new(), item.clone()));
            entries.push(Object::Reference(id));
            present.push(item.clone());
            added += 1;
        }
        if !entries.is_empty() {
            dss.set(key, Object::Array(entries));
        }
    }
    if added == 0 {
        return Ok(original.to_vec());
    }
    dss.set("Type", Object::Name(b"DSS".to_vec()));
    let new = &mut incremental.new_document;
    let dss_id = new.add_object(dss);
    let mut catalog = catalog;
    catalog.set("DSS", dss_id);
    new.set_object(catalog_id, catalog);
    write_update(&mut incremental, original.len() + 16 * 1024)
}

/// Adds a document time-stamp from `stamper` over the whole file as one incremental update: an
/// invisible signature field on the first page whose value is a `/DocTimeStamp` dictionary.
pub fn add_document_timestamp(
    original: &[u8],
    stamper: &dyn DocumentTimeStamper,
    reserved_bytes: usize,
) -> Result<Vec<u8>, PdfError> {
    let document = load(original)?;
    let catalog_id = catalog_id(&document, parse_error)?;
    let page_id = *document
        .get_pages()
        .get(&1)
        .ok_or(PdfError::PageOutOfRange {
            page: 1,
            page_count: 0,
        })?;
    let (existing, _) = existing_signatures(&document);
    let field_name = free_field_name(&existing, "DocumentTimeStamp");

    let mut incremental = start_update(original, document);
    let new = &mut incremental.new_document;
    let stamp_id = new.add_object(dictionary! {
        "Type" => "DocTimeStamp",
        "Filter" => "Adobe.PPKLite",
        "SubFilter" => "ETSI.RFC3161",
        "ByteRange" => vec![
            Object::Integer(0),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
        ],
        "Contents" => contents_placeholder(reserved_bytes),
    });
    let field_id = new.add_object(dictionary! {
        "Type" => "Annot",
        "Subtype" => "Widget",
        "FT" => "Sig",
        "T" => Object::string_literal(field_name),
        "V" => stamp_id,
        "F" => 132,
        "P" => page_id,
        "Rect" => vec![Object::Integer(0), Object::Integer(0), Object::Integer(0), Object::Integer(0)],
    });
    let mut annots = page_annots(incremental.get_prev_documents(), page_id);
    annots.push(Object::Reference(field_id));
    set_page_annots(&mut incremental, page_id, annots).map_err(parse_error)?;
    add_to_form(&mut incremental, catalog_id, field_id, None)?;

    let mut out = write_update(&mut incremental, original.len() + reserved_bytes * 2 + 4096)?;
    fill_in_signature(&mut out, original.len(), reserved_bytes, |digest| {
        stamper.time_stamp(digest)
    })?;
    Ok(out)
}

/// The certificates carried by the document's signatures (not its time-stamps) when the newest
/// of them is not yet followed by a document time-stamp — what a server must add validation
/// data for; empty when there is nothing to extend.
pub fn signatures_awaiting_time_stamp(bytes: &[u8]) -> Result<Vec<Vec<u8>>, PdfError> {
    let document = load(bytes)?;
    let mut newest_signature = None;
    let mut newest_stamp = None;
    let mut certificates: Vec<Vec<u8>> = Vec::new();
    for field in signature_fields(&document) {
        let Some(value) = field
            .get(b"V")
            .ok()
            .and_then(|v| document.dereference(v).ok())
            .and_then(|(_, o)| o.as_dict().ok())
        else {
            continue;
        };
        let end = value
            .get(b"ByteRange")
            .and_then(Object::as_array)
            .ok()
            .and_then(|r| Some(r.get(2)?.as_i64().ok()? + r.get(3)?.as_i64().ok()?));
        let is_stamp = value.get(b"Type").and_then(Object::as_name).ok() == Some(b"DocTimeStamp");
        if is_stamp {
            newest_stamp = newest_stamp.max(end);
            continue;
        }
        newest_signature = newest_signature.max(end);
        if let Ok(Object::String(contents, _)) = value.get(b"Contents") {
            for certificate in crate::validate::cms_certificates(contents) {
                if !certificates.contains(&certificate) {
                    certificates.push(certificate);
                }
            }
        }
    }
    if newest_signature.is_none() || newest_stamp >= newest_signature {
        return Ok(Vec::new());
    }
    Ok(certificates)
}
