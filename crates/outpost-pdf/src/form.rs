//! Reading and updating the parts of a PDF that burn-in, signing and validation all touch: a
//! page's `/Annots`, the form's signature fields, and the catalog's `/Perms /DocMDP`.

use lopdf::{Dictionary, Document, IncrementalDocument, Object, ObjectId};

/// A page's annotation entries as they are (references or inline dictionaries); none if it has
/// no `/Annots` or the page cannot be read.
pub(crate) fn page_annots(document: &Document, page_id: ObjectId) -> Vec<Object> {
    document
        .get_dictionary(page_id)
        .ok()
        .and_then(|page| page.get(b"Annots").ok())
        .and_then(|annots| document.dereference(annots).ok())
        .and_then(|(_, annots)| annots.as_array().ok().cloned())
        .unwrap_or_default()
}

/// Writes a new version of page `page_id` into the update, with `annots` as its `/Annots`.
pub(crate) fn set_page_annots(
    incremental: &mut IncrementalDocument,
    page_id: ObjectId,
    annots: Vec<Object>,
) -> lopdf::Result<()> {
    incremental.opt_clone_object_to_new_document(page_id)?;
    incremental
        .new_document
        .get_object_mut(page_id)
        .and_then(Object::as_dict_mut)?
        .set("Annots", Object::Array(annots));
    Ok(())
}

/// The form's signature fields (`/FT /Sig`), in the order of its field list.
pub(crate) fn signature_fields(document: &Document) -> Vec<Dictionary> {
    let deref = |o: &Object| document.dereference(o).ok().map(|(_, o)| o.clone());
    let fields = document
        .catalog()
        .ok()
        .and_then(|c| c.get(b"AcroForm").ok())
        .and_then(deref)
        .and_then(|a| {
            a.as_dict()
                .ok()
                .and_then(|d| d.get(b"Fields").ok().cloned())
        })
        .and_then(|f| deref(&f))
        .and_then(|f| f.as_array().ok().cloned())
        .unwrap_or_default();
    fields
        .iter()
        .filter_map(|field| match deref(field) {
            Some(Object::Dictionary(d))
                if d.get(b"FT").and_then(Object::as_name).ok() == Some(b"Sig") =>
            {
                Some(d)
            }
            _ => None,
        })
        .collect()
}

/// The catalog's `/Perms /DocMDP` entry (the certifying signature), if the document is certified.
pub(crate) fn docmdp_reference(document: &Document) -> Option<Object> {
    let perms = document.catalog().ok()?.get(b"Perms").ok()?;
    let (_, perms) = document.dereference(perms).ok()?;
    perms.as_dict().ok()?.get(b"DocMDP").ok().cloned()
}
