//! Long-term validation: validation data in the `/DSS`, then a document time-stamp, each one
//! incremental update; our validator reports the PAdES level, catches a changed time-stamp or
//! changed validation data, and pyHanko, pdfsig and qpdf agree.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use outpost_pdf::{
    add_document_timestamp, add_validation_data, certificate_from_der, sign_pdf,
    signatures_awaiting_time_stamp, time_stamp_token, validate_signatures,
    validate_signatures_against, DocMdpPermission, DocumentTimeStamper, Language, LaterChanges,
    PadesLevel, PdfError, PdfSigner, Revocation, SignatureKind, SignatureRequest, SignatureStatus,
    SoftwareSigner, TimeStampTerms, ValidationData, DEFAULT_RESERVED_BYTES,
    TIME_STAMP_RESERVED_BYTES,
};

struct TestStamper {
    signer: SoftwareSigner,
    time_ms: i64,
}

impl DocumentTimeStamper for TestStamper {
    fn time_stamp(&self, digest: &[u8; 32]) -> Result<Vec<u8>, PdfError> {
        let terms = TimeStampTerms {
            policy: "1.2.3.4.1".into(),
            serial: vec![0x42, 0x01, 0x02],
            time_ms: self.time_ms,
        };
        time_stamp_token(digest, &terms, &self.signer)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn der(certificate: &outpost_pdf::Certificate) -> Vec<u8> {
    use der::Encode;
    certificate.to_der().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Signs a sample (certified with `certify`), then adds validation data and a time-stamp.
fn signed_and_extended(
    pki: &TestPki,
    certify: Option<DocMdpPermission>,
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let signer = pki.software_signer("ltv", "/CN=Long Term Signer", KeyKind::EcP256);
    let request = SignatureRequest {
        page: 1,
        mark: None,
        reason: "Approved".into(),
        signer_name: "Long Term Signer".into(),
        location: None,
        signing_time_ms: now_ms(),
        certify,
        reserved_bytes: DEFAULT_RESERVED_BYTES,
    };
    let signed = sign_pdf(&sample(Language::English, 2), &request, &signer, &font()).unwrap();
    let certificates = signatures_awaiting_time_stamp(&signed).unwrap();
    assert_eq!(
        certificates,
        vec![der(signer.certificate()), pki.ca_der()],
        "the signature's certificates await a time-stamp"
    );
    let stamper = TestStamper {
        signer: pki.tsa_signer(),
        time_ms: now_ms(),
    };
    let mut all = certificates;
    all.push(der(stamper.signer.certificate()));
    let data = ValidationData {
        certificates: all,
        crls: vec![pki.crl_der()],
    };
    let with_data = add_validation_data(&signed, &data).unwrap();
    assert_eq!(
        add_validation_data(&with_data, &data).unwrap(),
        with_data,
        "validation data already there is not added twice"
    );
    let stamped = add_document_timestamp(&with_data, &stamper, TIME_STAMP_RESERVED_BYTES).unwrap();
    assert!(stamped.starts_with(&with_data) && with_data.starts_with(&signed));
    assert!(signatures_awaiting_time_stamp(&stamped).unwrap().is_empty());
    (signed, with_data, stamped)
}

#[test]
fn validation_data_and_a_document_time_stamp_raise_a_signature_to_b_lta() {
    let pki = TestPki::new();
    let anchors = vec![certificate_from_der(&pki.ca_der()).unwrap()];
    let (signed, with_data, stamped) = signed_and_extended(&pki, None);

    let levels = |bytes: &[u8]| -> Vec<(SignatureKind, Option<PadesLevel>)> {
        validate_signatures(bytes, &anchors)
            .unwrap()
            .into_iter()
            .map(|r| (r.kind, r.level))
            .collect()
    };
    assert_eq!(
        levels(&signed),
        [(SignatureKind::Signature, Some(PadesLevel::BaselineB))]
    );
    assert_eq!(
        levels(&with_data),
        [(SignatureKind::Signature, Some(PadesLevel::BaselineLt))]
    );
    let reports = validate_signatures(&stamped, &anchors).unwrap();
    assert_eq!(reports.len(), 2, "{reports:#?}");
    let (signature, stamp) = (&reports[0], &reports[1]);
    assert_eq!(signature.status, SignatureStatus::Valid, "{signature:#?}");
    assert_eq!(signature.later_changes, LaterChanges::ValidationData);
    assert_eq!(signature.level, Some(PadesLevel::BaselineLta));
    assert_eq!(stamp.kind, SignatureKind::DocumentTimeStamp);
    assert_eq!(stamp.status, SignatureStatus::Valid, "{stamp:#?}");
    assert_eq!(stamp.level, None);
    assert!(stamp
        .signer
        .as_deref()
        .unwrap()
        .contains("Outpost Test TSA"));

    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "lta.pdf", &stamped);
    assert_qpdf_clean(&path);
    // Debian 12's pdfsig (poppler 22) does not verify RFC 3161 document time-stamps ("Signature
    // Type: unknown"); it still checks the signature under them and sees the time-stamp's field
    // covering the whole file. pyHanko judges the time-stamp.
    let pdfsig = pki.pdfsig(&path);
    assert_eq!(
        pdfsig
            .matches("Signature Validation: Signature is Valid.")
            .count(),
        1,
        "pdfsig: {pdfsig}"
    );
    assert!(
        pdfsig.contains("Certificate Validation: Certificate is Trusted."),
        "pdfsig: {pdfsig}"
    );
    let stamp_part = pdfsig
        .split("DocumentTimeStamp1")
        .nth(1)
        .expect("pdfsig lists the time-stamp");
    assert!(
        stamp_part.contains("Total document signed"),
        "pdfsig: {pdfsig}"
    );
    // pyHanko's AdES validation runs the PAdES long-term (LTA) process of ETSI EN 319 102-1
    // over the document time-stamp and the validation data, and says the revisions after the
    // signature are signature maintenance only (its LTA_UPDATES level): B-LTA by its reading.
    let (valid, report) = pki.pyhanko_validate_long_term(&path);
    assert!(valid, "pyHanko: {report}");
    for verdict in [
        "The signature is judged VALID.",
        "All modifications relate to signature maintenance",
    ] {
        assert!(report.contains(verdict), "pyHanko: {report}");
    }
}

#[test]
fn a_changed_time_stamp_or_changed_validation_data_is_caught() {
    let pki = TestPki::new();
    let anchors = vec![certificate_from_der(&pki.ca_der()).unwrap()];
    let (_, with_data, stamped) = signed_and_extended(&pki, None);

    // A byte of the validation data the time-stamp covers (inside the CRL stream).
    let mut changed_data = stamped.clone();
    let crl = pki.crl_der();
    let at = changed_data[..with_data.len()]
        .windows(crl.len())
        .position(|w| w == crl.as_slice())
        .expect("the CRL is in the file");
    changed_data[at + crl.len() - 5] ^= 0x01;
    let reports = validate_signatures(&changed_data, &anchors).unwrap();
    assert!(
        matches!(reports[1].status, SignatureStatus::Invalid(_)),
        "{reports:#?}"
    );
    assert_ne!(reports[0].level, Some(PadesLevel::BaselineLta));

    // A byte of the token's time-stamp info (the tail of its hex, inside the signed content).
    let mut changed_token = stamped.clone();
    // The token's DER starts with a long-form SEQUENCE: hex "3082".
    let hex_start = stamped[with_data.len()..]
        .windows(b"<3082".len())
        .position(|w| w.eq_ignore_ascii_case(b"<3082"))
        .map(|i| with_data.len() + i + 1)
        .expect("the token's /Contents");
    // The TSTInfo sits early in the token, after the digest algorithms: change a hex digit there.
    let target = hex_start + 120;
    changed_token[target] = if changed_token[target] == b'0' {
        b'1'
    } else {
        b'0'
    };
    let reports = validate_signatures(&changed_token, &anchors).unwrap();
    assert!(
        matches!(reports[1].status, SignatureStatus::Invalid(_)),
        "{reports:#?}"
    );
    assert_eq!(
        reports[0].status,
        SignatureStatus::Valid,
        "the signature itself is untouched"
    );
}

#[test]
fn a_certified_document_stays_valid_after_validation_data_and_a_time_stamp() {
    let pki = TestPki::new();
    let anchors = vec![certificate_from_der(&pki.ca_der()).unwrap()];
    let (_, _, stamped) =
        signed_and_extended(&pki, Some(DocMdpPermission::FormFillingAndSignatures));
    let reports = validate_signatures(&stamped, &anchors).unwrap();
    assert_eq!(reports[0].certification, Some(2));
    assert_eq!(reports[0].status, SignatureStatus::Valid, "{reports:#?}");
    assert_eq!(reports[0].level, Some(PadesLevel::BaselineLta));
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "certified-lta.pdf", &stamped);
    let (valid, report) = pki.pyhanko_validate(&path, true);
    assert!(valid, "pyHanko: {report}");
}

#[test]
fn a_revoked_certificate_fails_its_signature_unless_a_time_stamp_made_before_covers_it() {
    let pki = TestPki::new();
    let anchors = vec![certificate_from_der(&pki.ca_der()).unwrap()];
    let (signed, _, stamped) = signed_and_extended(&pki, None);
    let first = |bytes: &[u8], lists: &[Vec<u8>]| {
        validate_signatures_against(bytes, &anchors, lists).unwrap()[0].clone()
    };
    // No list at hand: unknown; the list the extension embedded does not name the signer.
    assert_eq!(first(&signed, &[]).revocation, Revocation::Unknown);
    assert_eq!(first(&signed, &[]).status, SignatureStatus::Valid);
    assert!(matches!(
        first(&stamped, &[]).revocation,
        Revocation::NotRevoked { .. }
    ));

    // The signer's certificate is revoked a moment after the time-stamp (CRL times are seconds).
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let revoked = pki.revoked_crl_der("ltv");
    let sealed_before = first(&stamped, std::slice::from_ref(&revoked));
    assert!(
        matches!(sealed_before.revocation, Revocation::RevokedLater { .. }),
        "{sealed_before:#?}"
    );
    assert_eq!(sealed_before.status, SignatureStatus::Valid);
    assert_eq!(sealed_before.level, Some(PadesLevel::BaselineLta));

    // Nothing proves the B-B signature was made before the revocation.
    let unproven = first(&signed, std::slice::from_ref(&revoked));
    assert!(
        matches!(unproven.revocation, Revocation::Revoked { .. }),
        "{unproven:#?}"
    );
    match &unproven.status {
        SignatureStatus::Revoked(why) => assert!(why.contains("revoked on"), "{why}"),
        other => panic!("not revoked: {other:?}"),
    }

    // Sealed only after the revocation (the list in the /DSS names it): revoked as well.
    let stamper = TestStamper {
        signer: pki.tsa_signer(),
        time_ms: now_ms(),
    };
    let data = ValidationData {
        certificates: signatures_awaiting_time_stamp(&signed).unwrap(),
        crls: vec![revoked.clone()],
    };
    let late = add_document_timestamp(
        &add_validation_data(&signed, &data).unwrap(),
        &stamper,
        TIME_STAMP_RESERVED_BYTES,
    )
    .unwrap();
    let sealed_late = validate_signatures(&late, &anchors).unwrap();
    assert!(
        matches!(sealed_late[0].status, SignatureStatus::Revoked(_)),
        "{sealed_late:#?}"
    );
    assert_eq!(
        sealed_late[1].status,
        SignatureStatus::Valid,
        "the time-stamp itself is sound"
    );
    // pyHanko's long-term validation, from the file alone, agrees: revoked when sealed after the
    // revocation, valid when sealed before (the list in that file predates the revocation).
    let dir = tempfile::tempdir().unwrap();
    let (valid, report) = pki.pyhanko_validate_long_term(&write(dir.path(), "late.pdf", &late));
    assert!(
        !valid && report.contains("The signer's certificate is revoked."),
        "pyHanko: {report}"
    );
    let (valid, report) =
        pki.pyhanko_validate_long_term(&write(dir.path(), "sealed.pdf", &stamped));
    assert!(
        valid && report.contains("The signature is judged VALID."),
        "pyHanko: {report}"
    );

    // A list whose signature does not verify is not believed.
    let mut forged = revoked.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    assert_eq!(first(&signed, &[forged]).revocation, Revocation::Unknown);
}
