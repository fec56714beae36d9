//! Our validator against signatures made by us and by pyHanko, after countersigning, annotating,
//! tampering and content changes; the third-party judges agree where they have a say.

mod common;

use std::path::Path;

use common::*;
use outpost_pdf::{
    burn_in, certificate_from_der, sign_pdf, validate_signatures, AnnotationKind, Certificate,
    DocMdpPermission, Geometry, Language, LaterChanges, Point, SignatureRequest, SignatureStatus,
    StatusReason, DEFAULT_RESERVED_BYTES,
};

fn request(certify: Option<DocMdpPermission>, signing_time_ms: i64) -> SignatureRequest {
    SignatureRequest {
        page: 1,
        mark: None,
        reason: "Approved".into(),
        signer_name: "Validator Test".into(),
        location: None,
        signing_time_ms,
        certify,
        reserved_bytes: DEFAULT_RESERVED_BYTES,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn anchors(pki: &TestPki) -> Vec<Certificate> {
    vec![certificate_from_der(&pki.ca_der()).unwrap()]
}

fn statuses(bytes: &[u8], anchors: &[Certificate]) -> Vec<SignatureStatus> {
    validate_signatures(bytes, anchors)
        .unwrap()
        .into_iter()
        .map(|r| r.status)
        .collect()
}

fn a_note() -> outpost_pdf::Annotation {
    annotation(
        AnnotationKind::Note,
        Geometry::Icon {
            at: Point { x: 300.0, y: 200.0 },
        },
        "annotated after signing",
    )
}

#[test]
fn our_signatures_validate_and_an_unknown_root_is_untrusted() {
    let pki = TestPki::new();
    let signer = pki.software_signer("ours", "/CN=Our Signer", KeyKind::EcP256);
    let rsa = pki.software_signer("ours-rsa", "/CN=Our RSA Signer", KeyKind::Rsa3072);
    let roots = anchors(&pki);
    let original = sample(Language::English, 1);
    for signer in [&signer as &dyn outpost_pdf::PdfSigner, &rsa] {
        let signed = sign_pdf(&original, &request(None, now_ms()), signer, &font()).unwrap();
        let reports = validate_signatures(&signed, &roots).unwrap();
        assert_eq!(reports.len(), 1);
        let report = &reports[0];
        assert_eq!(report.status, SignatureStatus::Valid, "{report:?}");
        assert!(report.digest_matches && report.signature_verifies && report.chain_trusted);
        assert_eq!(report.later_changes, LaterChanges::None);
        assert!(
            report.signer.as_deref().unwrap_or("").contains("Our"),
            "{report:?}"
        );
        let untrusted = &validate_signatures(&signed, &[]).unwrap()[0];
        assert!(matches!(untrusted.status, SignatureStatus::Untrusted(_)));
        assert_eq!(untrusted.status_reason, Some(StatusReason::NotTrusted));
    }
    // A signing time outside the certificate's 30 days of validity.
    let late = sign_pdf(
        &original,
        &request(None, now_ms() + 400 * 86_400_000),
        &signer,
        &font(),
    )
    .unwrap();
    let report = &validate_signatures(&late, &roots).unwrap()[0];
    assert!(!report.valid_at_signing_time);
    assert!(matches!(report.status, SignatureStatus::Untrusted(_)));
    assert_eq!(
        report.status_reason,
        Some(StatusReason::NotValidAtSigningTime)
    );
}

#[test]
fn countersigning_and_annotating_after_a_signature_are_told_apart_from_tampering() {
    let pki = TestPki::new();
    let first = pki.software_signer("first", "/CN=First", KeyKind::EcP256);
    let second = pki.software_signer("second", "/CN=Second", KeyKind::Rsa3072);
    let roots = anchors(&pki);
    let original = sample(Language::Russian, 2);
    let signed = sign_pdf(&original, &request(None, now_ms()), &first, &font()).unwrap();
    let countersigned = sign_pdf(&signed, &request(None, now_ms()), &second, &font()).unwrap();
    assert_eq!(
        statuses(&countersigned, &roots),
        vec![SignatureStatus::ValidLaterSigned, SignatureStatus::Valid]
    );
    let annotated = burn_in(&countersigned, &[a_note()], &font()).unwrap();
    assert_eq!(
        statuses(&annotated, &roots),
        vec![
            SignatureStatus::ValidLaterAnnotated,
            SignatureStatus::ValidLaterAnnotated
        ]
    );
    // The judges agree that annotating left both signatures valid.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("annotated.pdf");
    std::fs::write(&path, &annotated).unwrap();
    assert_qpdf_clean(&path);
    let pdfsig = pki.pdfsig(&path);
    assert_eq!(pdfsig.matches("Signature is Valid.").count(), 2, "{pdfsig}");
    let (valid, report) = pki.pyhanko_validate(&path, false);
    assert!(valid, "{report}");

    // One flipped byte inside the first signed range breaks both signatures.
    let mut tampered = annotated.clone();
    tampered[original.len() / 3] ^= 0x20;
    for report in validate_signatures(&tampered, &roots).unwrap() {
        assert!(
            matches!(report.status, SignatureStatus::Invalid(_)),
            "{report:?}"
        );
        assert_eq!(report.status_reason, Some(StatusReason::BytesChanged));
    }
    assert!(validate_signatures(&countersigned, &roots)
        .unwrap()
        .iter()
        .all(|r| r.status_reason.is_none()));
}

#[test]
fn a_certification_decides_whether_later_annotations_are_allowed() {
    let pki = TestPki::new();
    let signer = pki.software_signer("certifier", "/CN=Certifier", KeyKind::EcP256);
    let roots = anchors(&pki);
    let original = sample(Language::English, 1);
    for (permission, expect_valid) in [
        (DocMdpPermission::Annotations, true),
        (DocMdpPermission::FormFillingAndSignatures, false),
    ] {
        let certified = sign_pdf(
            &original,
            &request(Some(permission), now_ms()),
            &signer,
            &font(),
        )
        .unwrap();
        let report = &validate_signatures(&certified, &roots).unwrap()[0];
        assert_eq!(report.certification, Some(permission as i64));
        assert_eq!(report.status, SignatureStatus::Valid);
        let annotated = burn_in(&certified, &[a_note()], &font()).unwrap();
        let status = statuses(&annotated, &roots).remove(0);
        if expect_valid {
            assert_eq!(
                status,
                SignatureStatus::ValidLaterAnnotated,
                "{permission:?}"
            );
        } else {
            assert!(
                matches!(status, SignatureStatus::Invalid(_)),
                "{permission:?}: {status:?}"
            );
        }
    }
}

/// Appends to `signed` an update made by `change` (given the update and a new content stream
/// that writes "Forged"), and checks that our validator keeps the signed bytes intact but reports
/// the content changed.
fn assert_forged_content_is_caught(
    signed: &[u8],
    roots: &[Certificate],
    change: impl FnOnce(&mut lopdf::IncrementalDocument, lopdf::ObjectId),
) {
    let document = lopdf::Document::load_mem(signed).unwrap();
    let mut update = lopdf::IncrementalDocument::create_from(signed.to_vec(), document);
    let forged_text = update.new_document.add_object(lopdf::Stream::new(
        lopdf::Dictionary::new(),
        b"BT /F1 24 Tf 72 720 Td (Forged) Tj ET".to_vec(),
    ));
    change(&mut update, forged_text);
    let mut forged = Vec::new();
    update.save_to(&mut forged).unwrap();
    assert!(forged.starts_with(signed));
    let report = &validate_signatures(&forged, roots).unwrap()[0];
    assert!(
        report.digest_matches && report.signature_verifies,
        "the bytes it signed are intact"
    );
    assert_eq!(report.later_changes, LaterChanges::ContentChanged);
    assert!(matches!(report.status, SignatureStatus::Invalid(_)));
    assert_eq!(report.status_reason, Some(StatusReason::ContentChanged));
}

#[test]
fn a_changed_page_in_a_later_update_is_reported_as_content_changed() {
    let pki = TestPki::new();
    let signer = pki.software_signer("content", "/CN=Content", KeyKind::EcP256);
    let roots = anchors(&pki);
    let signed = sign_pdf(
        &sample(Language::English, 1),
        &request(None, now_ms()),
        &signer,
        &font(),
    )
    .unwrap();
    // Another tool appends an update that replaces the page's content stream.
    let page = *lopdf::Document::load_mem(&signed)
        .unwrap()
        .get_pages()
        .get(&1)
        .unwrap();
    assert_forged_content_is_caught(&signed, &roots, |update, forged_text| {
        update.opt_clone_object_to_new_document(page).unwrap();
        update
            .new_document
            .get_object_mut(page)
            .and_then(lopdf::Object::as_dict_mut)
            .unwrap()
            .set("Contents", forged_text);
    });
}

#[test]
fn content_added_through_a_pages_list_of_content_streams_is_reported_as_content_changed() {
    let pki = TestPki::new();
    let signer = pki.software_signer("list", "/CN=Content List", KeyKind::EcP256);
    let roots = anchors(&pki);
    // An original whose page keeps its content streams in a list object of their own, as many
    // producers write them.
    let mut original = lopdf::Document::load_mem(&sample(Language::English, 1)).unwrap();
    let page = *original.get_pages().get(&1).unwrap();
    let contents = original
        .get_dictionary(page)
        .unwrap()
        .get(b"Contents")
        .unwrap()
        .clone();
    let streams = match contents {
        lopdf::Object::Array(streams) => streams,
        reference => vec![reference],
    };
    let list = original.add_object(lopdf::Object::Array(streams));
    original
        .get_object_mut(page)
        .and_then(lopdf::Object::as_dict_mut)
        .unwrap()
        .set("Contents", list);
    let mut with_list = Vec::new();
    original.save_to(&mut with_list).unwrap();
    let signed = sign_pdf(&with_list, &request(None, now_ms()), &signer, &font()).unwrap();
    assert_eq!(
        statuses(&signed, &roots),
        vec![SignatureStatus::Valid],
        "signed as written"
    );

    // Another tool appends an update that leaves the page alone and adds a stream to its list.
    let add_to_list = |update: &mut lopdf::IncrementalDocument, forged_text: lopdf::ObjectId| {
        update.opt_clone_object_to_new_document(list).unwrap();
        update
            .new_document
            .get_object_mut(list)
            .and_then(lopdf::Object::as_array_mut)
            .unwrap()
            .push(forged_text.into());
    };
    assert_forged_content_is_caught(&signed, &roots, add_to_list);
    // The same, with the list passed off as the certificates of a /DSS added by the update.
    assert_forged_content_is_caught(&signed, &roots, |update, forged_text| {
        let catalog = update
            .get_prev_documents()
            .trailer
            .get(b"Root")
            .and_then(lopdf::Object::as_reference)
            .unwrap();
        update.opt_clone_object_to_new_document(catalog).unwrap();
        update
            .new_document
            .get_object_mut(catalog)
            .and_then(lopdf::Object::as_dict_mut)
            .unwrap()
            .set(
                "DSS",
                lopdf::dictionary! { "Type" => "DSS", "Certs" => list },
            );
        add_to_list(update, forged_text);
    });
}

#[test]
fn a_pyhanko_signature_validates_in_ours_before_and_after_our_burn_in() {
    let pki = TestPki::new();
    let roots = anchors(&pki);
    let dir = tempfile::tempdir().unwrap();
    let unsigned = dir.path().join("unsigned.pdf");
    let signed_path = dir.path().join("pyhanko.pdf");
    std::fs::write(&unsigned, sample(Language::Russian, 2)).unwrap();
    pki.pyhanko_sign(&unsigned, &signed_path);
    let signed = std::fs::read(&signed_path).unwrap();
    let report = &validate_signatures(&signed, &roots).unwrap()[0];
    assert_eq!(report.status, SignatureStatus::Valid, "{report:?}");
    assert_eq!(report.field, "Sig1");
    let annotated = burn_in(&signed, &[a_note()], &font()).unwrap();
    assert_eq!(
        statuses(&annotated, &roots),
        vec![SignatureStatus::ValidLaterAnnotated]
    );
    assert!(Path::new(&signed_path).exists());
}
