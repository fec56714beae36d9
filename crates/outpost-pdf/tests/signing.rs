//! PAdES signatures judged by two independent validators and a structural checker: pdfsig (NSS
//! trusting the test CA), pyHanko (trusting the test CA, diff analysis on), and qpdf.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use outpost_pdf::{
    sign_pdf, sign_pdf_update, DocMdpPermission, Language, PdfError, PdfSigner, SignatureMark,
    SignatureRequest, DEFAULT_RESERVED_BYTES,
};

fn request(visible: bool, certify: Option<DocMdpPermission>) -> SignatureRequest {
    SignatureRequest {
        page: 1,
        mark: visible.then(|| SignatureMark {
            rect: rect(330.0, 40.0, 560.0, 130.0),
            lines: vec![
                "ДОКУМЕНТ ПОДПИСАН ЭЛЕКТРОННОЙ ПОДПИСЬЮ".into(),
                "Сертификат: 4F2A19".into(),
                "Владелец: Иванова Анна Петровна".into(),
                "Действителен с 01.11.2026 по 01.11.2027".into(),
                "Основание: Утверждаю".into(),
            ],
        }),
        reason: "Утверждаю".into(),
        signer_name: "Иванова Анна Петровна".into(),
        location: Some("Unit 7".into()),
        signing_time_ms: 1_795_000_000_000,
        certify,
        reserved_bytes: DEFAULT_RESERVED_BYTES,
    }
}

/// Asserts that pdfsig, pyHanko and qpdf all accept every signature of `pdf` (`count` of them).
fn assert_all_judges_accept(pki: &TestPki, pdf: &Path, count: usize) {
    assert_qpdf_clean(pdf);
    let pdfsig = pki.pdfsig(pdf);
    assert_eq!(
        pdfsig
            .matches("Signature Validation: Signature is Valid.")
            .count(),
        count,
        "pdfsig: {pdfsig}"
    );
    assert_eq!(
        pdfsig
            .matches("Certificate Validation: Certificate is Trusted.")
            .count(),
        count,
        "pdfsig: {pdfsig}"
    );
    let (valid, report) = pki.pyhanko_validate(pdf, true);
    assert!(valid, "pyHanko: {report}");
    assert_eq!(
        report.matches("The signature is judged VALID.").count(),
        count,
        "pyHanko: {report}"
    );
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn ecdsa_and_rsa_visible_and_invisible_signatures_are_accepted_by_every_judge() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let original = sample(Language::Russian, 2);
    let signers: Vec<(&str, Box<dyn PdfSigner>)> = vec![
        (
            "ecdsa",
            Box::new(pki.software_signer("ec", "/CN=Иванова Анна", KeyKind::EcP256)),
        ),
        (
            "rsa",
            Box::new(pki.software_signer("rsa", "/CN=Petrov Ivan", KeyKind::Rsa3072)),
        ),
    ];
    for (algorithm, signer) in &signers {
        for visible in [true, false] {
            let signed = sign_pdf(&original, &request(visible, None), signer.as_ref(), &font())
                .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
            assert!(
                signed.starts_with(&original),
                "incremental: the original is a prefix"
            );
            let path = write(dir.path(), &format!("{algorithm}-{visible}.pdf"), &signed);
            assert_all_judges_accept(&pki, &path, 1);

            let facts = &signature_facts(&path)[0];
            assert_eq!(facts["filter"], "/Adobe.PPKLite");
            assert_eq!(facts["sub_filter"], "/ETSI.CAdES.detached");
            let mut attributes: Vec<String> =
                serde_json::from_value(facts["signed_attributes"].clone()).unwrap();
            attributes.sort();
            assert_eq!(
                attributes,
                vec!["content_type", "message_digest", "signing_certificate_v2"],
                "PAdES B-B signed attributes, no signing time"
            );
            assert_eq!(facts["digest_algorithm"], "sha256");
            assert_eq!(facts["reason"], "Утверждаю");
            assert_eq!(facts["name"], "Иванова Анна Петровна");
            assert_eq!(facts["m"], "D:20261118110640Z");
            assert_eq!(
                facts["certificates"], 2,
                "the signer and the CA are embedded"
            );
            assert!(facts["docmdp"].is_null(), "not certified");
        }
    }
}

#[test]
fn a_certified_document_countersigned_keeps_both_signatures_valid() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let first_signer = pki.software_signer("first", "/CN=First Signer", KeyKind::EcP256);
    let second_signer = pki.software_signer("second", "/CN=Second Signer", KeyKind::Rsa3072);
    let original = sample(Language::English, 1);
    // Certifies `original` visibly with `permission`; every judge accepts it and reads the level.
    let certify = |permission: DocMdpPermission, signer: &dyn PdfSigner| {
        let certified =
            sign_pdf(&original, &request(true, Some(permission)), signer, &font()).unwrap();
        let path = write(
            dir.path(),
            &format!("certified-{}.pdf", permission as u8),
            &certified,
        );
        assert_all_judges_accept(&pki, &path, 1);
        assert_eq!(signature_facts(&path)[0]["docmdp"], permission as u8);
        certified
    };
    let certified = certify(DocMdpPermission::FormFillingAndSignatures, &first_signer);

    // After certification a new visible field would change the page: refused, and the
    // countersignature goes in invisibly.
    let visible = sign_pdf(&certified, &request(true, None), &second_signer, &font());
    assert!(matches!(visible, Err(PdfError::Signing(_))));
    let countersigned =
        sign_pdf(&certified, &request(false, None), &second_signer, &font()).unwrap();
    assert!(countersigned.starts_with(&certified));
    let path = write(dir.path(), "countersigned.pdf", &countersigned);
    assert_all_judges_accept(&pki, &path, 2);
    let facts = signature_facts(&path);
    assert_eq!(facts[0]["field"], "Signature1");
    assert_eq!(facts[1]["field"], "Signature2");

    // Certifying again is refused: only the first signature certifies.
    let again = sign_pdf(
        &countersigned,
        &request(false, Some(DocMdpPermission::Annotations)),
        &first_signer,
        &font(),
    );
    assert!(matches!(again, Err(PdfError::Signing(_))));

    // Certified allowing annotations as well (P=3): judged the same way.
    certify(DocMdpPermission::Annotations, &second_signer);
}

#[test]
fn a_visible_countersignature_on_an_uncertified_document_keeps_both_valid() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let first_signer = pki.software_signer("one", "/CN=First Approver", KeyKind::Rsa3072);
    let second_signer = pki.software_signer("two", "/CN=Second Approver", KeyKind::EcP256);
    let original = sample(Language::Russian, 1);
    let first = sign_pdf(&original, &request(true, None), &first_signer, &font()).unwrap();
    let mut second = request(true, None);
    second.mark.as_mut().unwrap().rect = rect(60.0, 40.0, 290.0, 130.0);
    let both = sign_pdf(&first, &second, &second_signer, &font()).unwrap();
    assert!(both.starts_with(&first));
    let path = write(dir.path(), "two-signatures.pdf", &both);
    assert_all_judges_accept(&pki, &path, 2);
}

#[test]
fn an_update_signed_apart_from_its_original_makes_the_same_file_and_names_its_hash() {
    use sha2::Digest;
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let signer = pki.software_signer("apart", "/CN=Signed Apart", KeyKind::EcP256);
    let original = sample(Language::Russian, 2);
    let update = sign_pdf_update(&original, &request(true, None), &signer, &font()).unwrap();
    let joined = [original.as_slice(), update.appended.as_slice()].concat();
    // The same bytes as signing the whole file (ECDSA here is deterministic, RFC 6979)…
    let whole = sign_pdf(&original, &request(true, None), &signer, &font()).unwrap();
    assert!(
        joined == whole,
        "the update differs from the whole file's tail"
    );
    // …its hash is the whole file's, and the judges accept it.
    assert_eq!(
        update.sha256_after,
        <[u8; 32]>::from(sha2::Sha256::digest(&joined))
    );
    assert_all_judges_accept(&pki, &write(dir.path(), "apart.pdf", &joined), 1);
}

#[test]
fn one_changed_byte_in_a_signed_range_is_caught_by_pdfsig_and_pyhanko() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let signer = pki.software_signer("tamper", "/CN=Tamper Test", KeyKind::EcP256);
    let original = sample(Language::English, 1);
    let mut signed = sign_pdf(&original, &request(false, None), &signer, &font()).unwrap();
    // A byte of page text inside the first signed range (the original content stream).
    let at = original.len() / 2;
    signed[at] ^= 0x01;
    let path = write(dir.path(), "tampered.pdf", &signed);
    let pdfsig = pki.pdfsig(&path);
    assert!(
        !pdfsig.contains("Signature Validation: Signature is Valid."),
        "pdfsig: {pdfsig}"
    );
    let (valid, report) = pki.pyhanko_validate(&path, true);
    assert!(!valid, "pyHanko must reject: {report}");
}

#[test]
fn signing_refuses_bad_requests_and_writes_nothing() {
    let pki = TestPki::new();
    let signer = pki.software_signer("refuse", "/CN=Refusals", KeyKind::EcP256);
    let original = sample(Language::English, 1);
    let mut beyond = request(false, None);
    beyond.page = 2;
    assert_eq!(
        sign_pdf(&original, &beyond, &signer, &font()).err(),
        Some(PdfError::PageOutOfRange {
            page: 2,
            page_count: 1
        })
    );
    let mut tiny = request(true, None);
    tiny.mark.as_mut().unwrap().rect = rect(10.0, 10.0, 15.0, 12.0);
    assert!(matches!(
        sign_pdf(&original, &tiny, &signer, &font()),
        Err(PdfError::Signing(_))
    ));
    let mut cramped = request(false, None);
    cramped.reserved_bytes = 64;
    match sign_pdf(&original, &cramped, &signer, &font()) {
        Err(PdfError::Signing(message)) => assert!(message.contains("reserv"), "{message}"),
        other => panic!("a too small reservation must be refused: {:?}", other.err()),
    }
    // A key that is not the certificate's is refused when the signer is made.
    let ec = std::fs::read(pki.path("refuse.key.der")).unwrap();
    let other_cert = pki.ca_der();
    assert!(outpost_pdf::SoftwareSigner::from_pkcs8_der(&ec, &other_cert, &[]).is_err());
}
