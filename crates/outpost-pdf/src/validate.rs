//! Validation of a PDF's signatures, offline: for each signature the digest over its byte range,
//! the CMS signature, the chain to the trust anchors, the certificates' validity at the signing
//! time, and what the file gained after the signed revision — later signatures only, later
//! annotations, or changed content — judged against a certification's `/DocMDP` permission.

use std::collections::{BTreeMap, BTreeSet};

use der::{Decode, Encode, Reader, SliceReader};
use lopdf::{Dictionary, Document, Object, ObjectId};
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};

use crate::form::{docmdp_reference, page_annots, signature_fields};
use crate::PdfError;

const ID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const ID_ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
const ID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const ID_SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
const ID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const ID_SHA256: &str = "2.16.840.1.101.3.4.2.1";

/// What the file gained after a signature's revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LaterChanges {
    /// Nothing: the signature covers the whole file.
    None,
    /// Only validation data for the long term: the document security store (`/DSS`) and
    /// document time-stamps.
    ValidationData,
    /// Only later signatures (fields, widgets, their appearances and fonts).
    SignaturesOnly,
    /// Annotations (and possibly signatures).
    Annotations,
    /// Anything else: pages, content, objects the signature covered.
    ContentChanged,
}

/// Why a signature is not valid, as a code the app tells in the user's language (the status's
/// reason says the same in English).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusReason {
    /// The signature cannot be read (no byte range, no contents, an unreadable CMS, a
    /// time-stamp without a time-stamping certificate).
    Unreadable,
    /// The bytes it signed were changed.
    BytesChanged,
    /// The signature does not verify with the signer's certificate.
    SignatureDoesNotVerify,
    /// The document's content was changed after signing.
    ContentChanged,
    /// The changes after it are more than its certification allows.
    CertificationForbids,
    /// The signer's certificate does not lead to a trusted root.
    NotTrusted,
    /// A certificate of the chain was not valid at the signing time.
    NotValidAtSigningTime,
    /// The certificate was revoked, and no time-stamp proves the signature came before.
    Revoked,
}

/// The verdict shown for a signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum SignatureStatus {
    /// Sound, trusted, and covering the whole file.
    Valid,
    /// Sound and trusted; later signatures were added after it.
    ValidLaterSigned,
    /// Sound and trusted; annotations were added after it.
    ValidLaterAnnotated,
    /// The signed bytes or the signature do not verify, or the document was changed after it in
    /// a way it does not allow.
    Invalid(String),
    /// Sound, but the signer's certificate does not lead to a trusted root, or was not valid at
    /// the signing time.
    Untrusted(String),
    /// Sound, but the signer's certificate was revoked, and no time-stamp proves the signature
    /// was made before that.
    Revoked(String),
}

impl SignatureStatus {
    /// Whether the signature is sound and trusted (later signatures or annotations after it
    /// allowed).
    pub fn is_valid(&self) -> bool {
        matches!(
            self,
            SignatureStatus::Valid
                | SignatureStatus::ValidLaterSigned
                | SignatureStatus::ValidLaterAnnotated
        )
    }
}

/// What is known about whether the signer's certificate was revoked, from the revocation lists
/// (CRLs) at hand: those in the file's `/DSS` and those given to the validator (the newest from
/// the organisation's server). A list counts only if its issuer's signature on it verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Revocation {
    /// No revocation list from the certificate's issuer was at hand.
    Unknown,
    /// The newest list at hand from its issuer, made at `checked_at` (a PDF date, UTC), does not
    /// name it.
    NotRevoked {
        /// When that list was made.
        checked_at: String,
    },
    /// Revoked at `revoked_at`, but a time-stamp made at `proven_at`, before that, covers the
    /// signature: it stays valid.
    RevokedLater {
        /// When the certificate was revoked.
        revoked_at: String,
        /// The time-stamp's time.
        proven_at: String,
    },
    /// Revoked at `revoked_at`, and nothing proves the signature was made before.
    Revoked {
        /// When the certificate was revoked.
        revoked_at: String,
    },
}

/// What a signature field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureKind {
    /// A person's signature (CMS, `/SubFilter /ETSI.CAdES.detached` or similar).
    Signature,
    /// A document time-stamp (`/Type /DocTimeStamp`, RFC 3161), which seals the validation data.
    DocumentTimeStamp,
}

/// How far a signature is prepared for validation in the long term (PAdES baseline levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum PadesLevel {
    /// The signature alone.
    #[serde(rename = "B-B")]
    BaselineB,
    /// The document security store holds the signer's certificate and a CRL from its issuer.
    #[serde(rename = "B-LT")]
    BaselineLt,
    /// As B-LT, and a valid document time-stamp covers that validation data.
    #[serde(rename = "B-LTA")]
    BaselineLta,
}

/// Everything checked about one signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureReport {
    /// The signature field's name.
    pub field: String,
    /// A signature or a document time-stamp.
    pub kind: SignatureKind,
    /// For a signature: its PAdES level (for a time-stamp, `None`).
    pub level: Option<PadesLevel>,
    /// The signer's certificate subject (RFC 4514), if the CMS could be read.
    pub signer: Option<String>,
    /// The signing time from `/M`, as written (for a time-stamp, the time it states, UTC).
    pub signing_time: Option<String>,
    /// `/Reason`.
    pub reason: Option<String>,
    /// Whether the digest over the byte ranges matches the signed messageDigest (for a
    /// time-stamp: the token's message imprint, and its messageDigest the token's content).
    pub digest_matches: bool,
    /// Whether the CMS signature verifies with the signer's certificate.
    pub signature_verifies: bool,
    /// Whether the certificate chains to a trust anchor (each link verified).
    pub chain_trusted: bool,
    /// Whether every certificate of the chain was valid at the signing time.
    pub valid_at_signing_time: bool,
    /// What came after the signed revision.
    pub later_changes: LaterChanges,
    /// The certification permission (`/DocMDP` `/P`), if this signature certifies.
    pub certification: Option<i64>,
    /// Whether the signer's certificate was revoked.
    pub revocation: Revocation,
    /// The verdict.
    pub status: SignatureStatus,
    /// Why the verdict is not valid, as a code (none when it is valid).
    pub status_reason: Option<StatusReason>,
}

fn damaged(e: lopdf::Error) -> PdfError {
    PdfError::Damaged(format!(
        "its structure cannot be parsed for validation: {e}"
    ))
}

fn text(object: Option<&Object>) -> Option<String> {
    match object? {
        Object::String(bytes, _) => Some(decode_text_string(bytes)),
        Object::Name(name) => Some(String::from_utf8_lossy(name).into_owned()),
        _ => None,
    }
}

/// A PDF text string as Rust text (UTF-16BE with a byte order mark, else PDFDocEncoding ~ Latin-1).
fn decode_text_string(bytes: &[u8]) -> String {
    if bytes.starts_with(&[0xFE, 0xFF]) {
        let units: Vec<u16> = bytes[2..]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        bytes.iter().map(|&b| b as char).collect()
    }
}

struct FoundSignature {
    field: String,
    dictionary: Dictionary,
    certification: Option<i64>,
    kind: SignatureKind,
}

/// The signature fields with a value, in the order of the form's field list.
fn signatures(document: &Document) -> Vec<FoundSignature> {
    let certifying: Option<ObjectId> =
        docmdp_reference(document).and_then(|r| r.as_reference().ok());
    let mut found = Vec::new();
    for field in signature_fields(document) {
        let Ok(value) = field.get(b"V") else { continue };
        let value_id = value.as_reference().ok();
        let Ok((_, Object::Dictionary(dictionary))) = document.dereference(value) else {
            continue;
        };
        let certification = (value_id.is_some() && value_id == certifying)
            .then(|| docmdp_permission(document, dictionary))
            .flatten();
        let kind = if dictionary.get(b"Type").and_then(Object::as_name).ok()
            == Some(b"DocTimeStamp")
            || dictionary.get(b"SubFilter").and_then(Object::as_name).ok() == Some(b"ETSI.RFC3161")
        {
            SignatureKind::DocumentTimeStamp
        } else {
            SignatureKind::Signature
        };
        found.push(FoundSignature {
            field: text(field.get(b"T").ok()).unwrap_or_default(),
            dictionary: dictionary.clone(),
            certification,
            kind,
        });
    }
    found
}

fn docmdp_permission(document: &Document, signature: &Dictionary) -> Option<i64> {
    let references = signature.get(b"Reference").ok()?;
    let (_, references) = document.dereference(references).ok()?;
    for reference in references.as_array().ok()? {
        let (_, reference) = document.dereference(reference).ok()?;
        let reference = reference.as_dict().ok()?;
        if reference
            .get(b"TransformMethod")
            .and_then(Object::as_name)
            .ok()
            == Some(b"DocMDP")
        {
            let params = reference.get(b"TransformParams").ok()?;
            let (_, params) = document.dereference(params).ok()?;
            return Some(
                params
                    .as_dict()
                    .ok()?
                    .get(b"P")
                    .and_then(Object::as_i64)
                    .unwrap_or(2),
            );
        }
    }
    None
}

/// Validates every signature of `bytes` against `anchors` (the organisation's roots), with the
/// revocation lists the file carries in its `/DSS`.
pub fn validate_signatures(
    bytes: &[u8],
    anchors: &[Certificate],
) -> Result<Vec<SignatureReport>, PdfError> {
    validate_signatures_against(bytes, anchors, &[])
}

/// As [`validate_signatures`], with `crls` (DER revocation lists, such as the newest from the
/// organisation's server) known besides those in the file.
pub fn validate_signatures_against(
    bytes: &[u8],
    anchors: &[Certificate],
    crls: &[Vec<u8>],
) -> Result<Vec<SignatureReport>, PdfError> {
    crate::engine::precheck(bytes)?;
    let document = Document::load_mem(bytes).map_err(damaged)?;
    let mut checked = Vec::new();
    for found in signatures(&document) {
        checked.push(check(bytes, &document, found, anchors));
    }
    let mut lists: Vec<Vec<u8>> = crate::ltv::security_store(&document)
        .map(|dss| crate::ltv::store_contents(&document, &dss, b"CRLs"))
        .unwrap_or_default();
    lists.extend(crls.iter().cloned());
    let issuers: Vec<Certificate> = anchors
        .iter()
        .chain(checked.iter().flat_map(|c| c.pool.iter()))
        .cloned()
        .collect();
    let lists = verified_revocation_lists(&lists, &issuers);
    let revocations: Vec<Revocation> = checked
        .iter()
        .map(|c| revocation(c, &checked, &lists))
        .collect();
    let levels: Vec<Option<PadesLevel>> = checked
        .iter()
        .map(|c| level(bytes, &document, c, &checked))
        .collect();
    Ok(checked
        .into_iter()
        .zip(levels)
        .zip(revocations)
        .map(|((c, level), revocation)| {
            let (status, status_reason) = match (&revocation, c.report.status) {
                (Revocation::Revoked { revoked_at }, status) if status.is_valid() || matches!(status, SignatureStatus::Untrusted(_)) => (
                    SignatureStatus::Revoked(format!(
                        "the certificate was revoked on {}, and no time-stamp proves the signature was made before",
                        readable_date(revoked_at)
                    )),
                    Some(StatusReason::Revoked),
                ),
                (_, status) => (status, c.report.status_reason),
            };
            SignatureReport {
                level,
                revocation,
                status,
                status_reason,
                ..c.report
            }
        })
        .collect())
}

/// A revocation list whose issuer's signature verified.
struct RevocationList {
    issuer: x509_cert::name::Name,
    made_at_ms: i64,
    /// (serial number, revocation time).
    revoked: Vec<(Vec<u8>, i64)>,
}

fn unix_ms(time: &x509_cert::time::Time) -> i64 {
    i64::try_from(time.to_unix_duration().as_millis()).unwrap_or(i64::MAX)
}

/// The lists among `lists` (DER) that parse and carry a valid signature of a certificate in
/// `issuers` named as their issuer; the others are ignored.
fn verified_revocation_lists(lists: &[Vec<u8>], issuers: &[Certificate]) -> Vec<RevocationList> {
    lists
        .iter()
        .filter_map(|der| x509_cert::crl::CertificateList::from_der(der).ok())
        .filter(|list| {
            let (Ok(tbs), Some(signature)) =
                (list.tbs_cert_list.to_der(), list.signature.as_bytes())
            else {
                return false;
            };
            issuers.iter().any(|issuer| {
                issuer.tbs_certificate.subject == list.tbs_cert_list.issuer
                    && verify(
                        issuer,
                        &list.signature_algorithm.oid.to_string(),
                        &tbs,
                        signature,
                    )
            })
        })
        .map(|list| RevocationList {
            made_at_ms: unix_ms(&list.tbs_cert_list.this_update),
            revoked: list
                .tbs_cert_list
                .revoked_certificates
                .iter()
                .flatten()
                .map(|r| {
                    (
                        r.serial_number.as_bytes().to_vec(),
                        unix_ms(&r.revocation_date),
                    )
                })
                .collect(),
            issuer: list.tbs_cert_list.issuer,
        })
        .collect()
}

/// Whether `checked`'s certificate is revoked by a list in `lists`, and whether a sound document
/// time-stamp after the signature (among `all`) proves it was made before that.
fn revocation(checked: &Checked, all: &[Checked], lists: &[RevocationList]) -> Revocation {
    let Some(certificate) = &checked.certificate else {
        return Revocation::Unknown;
    };
    let tbs = &certificate.tbs_certificate;
    let from_issuer: Vec<&RevocationList> =
        lists.iter().filter(|l| l.issuer == tbs.issuer).collect();
    let revoked_at = from_issuer
        .iter()
        .flat_map(|l| l.revoked.iter())
        .filter(|(serial, _)| serial.as_slice() == tbs.serial_number.as_bytes())
        .map(|(_, at)| *at)
        .min();
    let Some(revoked_at) = revoked_at else {
        return match from_issuer.iter().map(|l| l.made_at_ms).max() {
            Some(made) => Revocation::NotRevoked {
                checked_at: crate::burn_in::pdf_date(made),
            },
            None => Revocation::Unknown,
        };
    };
    let proven_at = all
        .iter()
        .filter(|stamp| {
            stamp.report.kind == SignatureKind::DocumentTimeStamp
                && stamp.report.status.is_valid()
                && stamp.signed_end > checked.signed_end
        })
        .filter_map(|stamp| {
            stamp
                .report
                .signing_time
                .as_deref()
                .and_then(crate::burn_in::parse_pdf_date)
        })
        .min();
    match proven_at {
        Some(proven) if proven < revoked_at => Revocation::RevokedLater {
            revoked_at: crate::burn_in::pdf_date(revoked_at),
            proven_at: crate::burn_in::pdf_date(proven),
        },
        _ => Revocation::Revoked {
            revoked_at: crate::burn_in::pdf_date(revoked_at),
        },
    }
}

/// `D:YYYYMMDDHHmmSSZ` as `YYYY-MM-DD HH:mm UTC`, for a sentence.
fn readable_date(pdf_date: &str) -> String {
    let d = pdf_date.trim_start_matches("D:");
    if d.len() >= 12 && d.is_char_boundary(12) {
        format!(
            "{}-{}-{} {}:{} UTC",
            &d[0..4],
            &d[4..6],
            &d[6..8],
            &d[8..10],
            &d[10..12]
        )
    } else {
        pdf_date.to_string()
    }
}

/// A checked signature with what the level needs besides the report.
struct Checked {
    report: SignatureReport,
    /// End of the revision it signs.
    signed_end: usize,
    /// The signer's certificate.
    certificate: Option<Certificate>,
    /// The certificates its CMS carries.
    pool: Vec<Certificate>,
}

/// A signature's PAdES level: B-LTA when a sound document time-stamp after it covers a `/DSS`
/// with its certificate and a CRL from its issuer; B-LT when only the final file's `/DSS` does;
/// else B-B. `None` for time-stamps.
fn level(
    bytes: &[u8],
    document: &Document,
    checked: &Checked,
    all: &[Checked],
) -> Option<PadesLevel> {
    if checked.report.kind != SignatureKind::Signature {
        return None;
    }
    // The signer's certificate (DER) and its issuer's name (DER), as the /DSS holds them.
    let signer = checked
        .certificate
        .as_ref()
        .and_then(|c| Some((c.to_der().ok()?, c.tbs_certificate.issuer.to_der().ok()?)));
    let Some(signer) = &signer else {
        return Some(PadesLevel::BaselineB);
    };
    let sealed = all.iter().any(|stamp| {
        stamp.report.kind == SignatureKind::DocumentTimeStamp
            && stamp.report.status.is_valid()
            && stamp.signed_end > checked.signed_end
            && Document::load_mem(&bytes[..stamp.signed_end])
                .map(|covered| dss_covers(&covered, signer))
                .unwrap_or(false)
    });
    Some(if sealed {
        PadesLevel::BaselineLta
    } else if dss_covers(document, signer) {
        PadesLevel::BaselineLt
    } else {
        PadesLevel::BaselineB
    })
}

/// Whether the document security store holds the certificate and a CRL its issuer made.
fn dss_covers(document: &Document, (certificate, issuer): &(Vec<u8>, Vec<u8>)) -> bool {
    let Some(dss) = crate::ltv::security_store(document) else {
        return false;
    };
    let items = |key: &[u8]| crate::ltv::store_contents(document, &dss, key);
    let has_certificate = items(b"Certs").contains(certificate);
    let has_crl = items(b"CRLs").iter().any(|crl| {
        x509_cert::crl::CertificateList::from_der(crl)
            .ok()
            .and_then(|list| list.tbs_cert_list.issuer.to_der().ok())
            .as_ref()
            == Some(issuer)
    });
    has_certificate && has_crl
}

/// The DER certificates a CMS (`/Contents`, zero-padded) carries; empty if it is unreadable.
pub(crate) fn cms_certificates(contents: &[u8]) -> Vec<Vec<u8>> {
    read_cms(contents)
        .map(|cms| {
            cms.certificates
                .iter()
                .filter_map(|c| c.to_der().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn check(
    bytes: &[u8],
    document: &Document,
    found: FoundSignature,
    anchors: &[Certificate],
) -> Checked {
    let mut signed_end = 0;
    let mut cms = None;
    let report = check_report(bytes, document, &found, anchors, &mut signed_end, &mut cms);
    let (certificate, pool) = match cms {
        Some(cms) => (Some(cms.certificate), cms.certificates),
        None => (None, Vec::new()),
    };
    Checked {
        report,
        signed_end,
        certificate,
        pool,
    }
}

fn check_report(
    bytes: &[u8],
    document: &Document,
    found: &FoundSignature,
    anchors: &[Certificate],
    signed_end_out: &mut usize,
    cms_out: &mut Option<ReadCms>,
) -> SignatureReport {
    let d = &found.dictionary;
    let mut signing_time = text(d.get(b"M").ok());
    let mut report = SignatureReport {
        field: found.field.clone(),
        kind: found.kind,
        level: None,
        signer: None,
        signing_time: signing_time.clone(),
        reason: text(d.get(b"Reason").ok()),
        digest_matches: false,
        signature_verifies: false,
        chain_trusted: false,
        valid_at_signing_time: false,
        later_changes: LaterChanges::None,
        certification: found.certification,
        revocation: Revocation::Unknown,
        status: SignatureStatus::Invalid(String::new()),
        status_reason: Some(StatusReason::Unreadable),
    };
    let invalid = |mut report: SignatureReport, why: &str| {
        report.status = SignatureStatus::Invalid(why.to_owned());
        report.status_reason = Some(StatusReason::Unreadable);
        report
    };
    let ranges: Vec<i64> = match d.get(b"ByteRange").and_then(Object::as_array) {
        Ok(items) => items.iter().filter_map(|o| o.as_i64().ok()).collect(),
        Err(_) => return invalid(report, "the signature has no byte range"),
    };
    let Some((signed_end, digest)) = byte_range_digest(bytes, &ranges) else {
        return invalid(report, "the byte range does not fit the file");
    };
    *signed_end_out = signed_end;
    let contents = match d.get(b"Contents") {
        Ok(Object::String(cms, _)) => cms.clone(),
        _ => return invalid(report, "the signature has no contents"),
    };
    let cms = match read_cms(&contents) {
        Ok(cms) => cms,
        Err(why) => return invalid(report, &why),
    };
    let cms: &ReadCms = cms_out.insert(cms);
    report.signer = Some(cms.certificate.tbs_certificate.subject.to_string());
    report.digest_matches = match found.kind {
        SignatureKind::Signature => cms.message_digest.as_deref() == Some(digest.as_slice()),
        SignatureKind::DocumentTimeStamp => match time_stamp_info(cms) {
            Ok((imprint, time)) => {
                signing_time = Some(time);
                report.signing_time = signing_time.clone();
                imprint == digest
            }
            Err(why) => return invalid(report, &why),
        },
    };
    if found.kind == SignatureKind::DocumentTimeStamp
        && !is_time_stamping_certificate(&cms.certificate)
    {
        return invalid(
            report,
            "the time-stamp's certificate is not a time-stamping authority's (no critical timeStamping usage)",
        );
    }
    report.signature_verifies = verify(
        &cms.certificate,
        &cms.signature_algorithm,
        &cms.signed_attributes_der,
        &cms.signature,
    );
    let signed_at_ms = signing_time
        .as_deref()
        .and_then(crate::burn_in::parse_pdf_date);
    let (trusted, valid_then) = chain(&cms.certificate, &cms.certificates, anchors, signed_at_ms);
    report.chain_trusted = trusted;
    report.valid_at_signing_time = valid_then;
    report.later_changes = if signed_end == bytes.len() {
        LaterChanges::None
    } else {
        later_changes(&bytes[..signed_end], document)
    };
    let what = match found.kind {
        SignatureKind::Signature => "signer",
        SignatureKind::DocumentTimeStamp => "time-stamping authority",
    };
    let (status, reason) = if !report.digest_matches {
        (
            SignatureStatus::Invalid("the signed bytes were changed".into()),
            Some(StatusReason::BytesChanged),
        )
    } else if !report.signature_verifies {
        (
            SignatureStatus::Invalid(
                "the signature does not verify with the signer's certificate".into(),
            ),
            Some(StatusReason::SignatureDoesNotVerify),
        )
    } else if report.later_changes == LaterChanges::ContentChanged {
        (
            SignatureStatus::Invalid("the document's content was changed after signing".into()),
            Some(StatusReason::ContentChanged),
        )
    } else if let Some(why) = docmdp_violation(found.certification, report.later_changes) {
        (
            SignatureStatus::Invalid(why),
            Some(StatusReason::CertificationForbids),
        )
    } else if !report.chain_trusted {
        (
            SignatureStatus::Untrusted(format!(
                "the {what}'s certificate does not lead to a trusted root"
            )),
            Some(StatusReason::NotTrusted),
        )
    } else if !report.valid_at_signing_time {
        (
            SignatureStatus::Untrusted(
                "a certificate of the chain was not valid at the signing time".into(),
            ),
            Some(StatusReason::NotValidAtSigningTime),
        )
    } else {
        let status = match report.later_changes {
            LaterChanges::None | LaterChanges::ValidationData => SignatureStatus::Valid,
            LaterChanges::SignaturesOnly => SignatureStatus::ValidLaterSigned,
            _ => SignatureStatus::ValidLaterAnnotated,
        };
        (status, None)
    };
    report.status = status;
    report.status_reason = reason;
    report
}

fn docmdp_violation(certification: Option<i64>, later: LaterChanges) -> Option<String> {
    match (certification?, later) {
        // Validation data and document time-stamps are allowed at every level (ISO 32000-2).
        (1, l) if l > LaterChanges::ValidationData => {
            Some("the document is certified against any change, and was changed".into())
        }
        (2, LaterChanges::Annotations) => Some(
            "the document is certified for form filling and signatures only, and was annotated"
                .into(),
        ),
        _ => None,
    }
}

/// Checks the byte range's shape and returns (end of the signed revision, SHA-256 of the ranges).
fn byte_range_digest(bytes: &[u8], ranges: &[i64]) -> Option<(usize, [u8; 32])> {
    let [a, b, c, d] = <[i64; 4]>::try_from(ranges).ok()?;
    let (a, b, c, d) = (
        usize::try_from(a).ok()?,
        usize::try_from(b).ok()?,
        usize::try_from(c).ok()?,
        usize::try_from(d).ok()?,
    );
    let first_end = a.checked_add(b)?;
    let second_end = c.checked_add(d)?;
    if a != 0 || first_end > c || second_end > bytes.len() {
        return None;
    }
    // The gap holds exactly the hex string of /Contents.
    let gap = &bytes[first_end..c];
    if gap.first() != Some(&b'<') || gap.last() != Some(&b'>') {
        return None;
    }
    let mut hasher = Sha256::new();
    hasher.update(&bytes[..first_end]);
    hasher.update(&bytes[c..second_end]);
    Some((second_end, hasher.finalize().into()))
}

struct ReadCms {
    /// The encapsulated content (a time-stamp token's TSTInfo), if not detached.
    content: Option<Vec<u8>>,
    certificate: Certificate,
    certificates: Vec<Certificate>,
    signed_attributes_der: Vec<u8>,
    signature: Vec<u8>,
    signature_algorithm: String,
    message_digest: Option<Vec<u8>>,
}

fn read_cms(contents: &[u8]) -> Result<ReadCms, String> {
    // /Contents is padded with zeros after the DER: read exactly one ContentInfo.
    let mut reader =
        SliceReader::new(contents).map_err(|e| format!("the CMS is unreadable: {e}"))?;
    let info: ContentInfo = reader
        .decode()
        .map_err(|e| format!("the CMS is unreadable: {e}"))?;
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(|e| format!("the CMS holds no SignedData: {e}"))?;
    let certificates: Vec<Certificate> = signed
        .certificates
        .as_ref()
        .map(|set| {
            set.0
                .iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(c) => Some(c.clone()),
                    CertificateChoices::Other(_) => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let signer_info = signed
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or("the CMS has no signer")?;
    if signer_info.digest_alg.oid.to_string() != ID_SHA256 {
        return Err(
            "the signature uses a digest other than SHA-256, which Outpost does not check".into(),
        );
    }
    let certificate = match &signer_info.sid {
        SignerIdentifier::IssuerAndSerialNumber(id) => certificates.iter().find(|c| {
            c.tbs_certificate.issuer == id.issuer
                && c.tbs_certificate.serial_number == id.serial_number
        }),
        SignerIdentifier::SubjectKeyIdentifier(_) => certificates.first(),
    }
    .cloned()
    .ok_or("the signer's certificate is not in the signature")?;
    let attributes = signer_info
        .signed_attrs
        .as_ref()
        .ok_or("the signature has no signed attributes")?;
    let message_digest = attributes
        .iter()
        .find(|a| a.oid.to_string() == ID_MESSAGE_DIGEST)
        .and_then(|a| a.values.iter().next())
        .and_then(|v| v.decode_as::<der::asn1::OctetString>().ok())
        .map(|o| o.as_bytes().to_vec());
    let content = signed
        .encap_content_info
        .econtent
        .as_ref()
        .map(|any| any.value().to_vec());
    Ok(ReadCms {
        content,
        certificate,
        certificates,
        signed_attributes_der: attributes
            .to_der()
            .map_err(|e| format!("the signed attributes cannot be encoded: {e}"))?,
        signature: signer_info.signature.as_bytes().to_vec(),
        signature_algorithm: signer_info.signature_algorithm.oid.to_string(),
        message_digest,
    })
}

/// A time-stamp token's message imprint (SHA-256) and time (as a PDF date, UTC), once its
/// messageDigest is checked against its content.
fn time_stamp_info(cms: &ReadCms) -> Result<([u8; 32], String), String> {
    let content = cms
        .content
        .as_deref()
        .ok_or("the time-stamp token has no content")?;
    if cms.message_digest.as_deref() != Some(Sha256::digest(content).as_slice()) {
        return Err("the time-stamp token's content was changed".into());
    }
    let info = x509_tsp::TstInfo::from_der(content)
        .map_err(|e| format!("the time-stamp token's content is unreadable: {e}"))?;
    if info.message_imprint.hash_algorithm.oid.to_string() != ID_SHA256 {
        return Err(
            "the time-stamp uses a digest other than SHA-256, which Outpost does not check".into(),
        );
    }
    let imprint: [u8; 32] = info
        .message_imprint
        .hashed_message
        .as_bytes()
        .try_into()
        .map_err(|_| "the time-stamp's message imprint is not a SHA-256 digest")?;
    let ms = info.gen_time.to_unix_duration().as_millis() as i64;
    Ok((imprint, crate::burn_in::pdf_date(ms)))
}

/// Whether the certificate's extended key usage is exactly timeStamping and critical (RFC 3161).
fn is_time_stamping_certificate(certificate: &Certificate) -> bool {
    const ID_EXTENDED_KEY_USAGE: &str = "2.5.29.37";
    const ID_KP_TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";
    certificate
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id.to_string() == ID_EXTENDED_KEY_USAGE)
        .is_some_and(|e| {
            e.critical
                && x509_cert::ext::pkix::ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
                    .is_ok_and(|usage| {
                        usage.0.len() == 1 && usage.0[0].to_string() == ID_KP_TIME_STAMPING
                    })
        })
}

/// Whether `signature` over `message` verifies with `certificate`'s key under `algorithm`.
fn verify(certificate: &Certificate, algorithm: &str, message: &[u8], signature: &[u8]) -> bool {
    use signature::Verifier;
    let spki = &certificate.tbs_certificate.subject_public_key_info;
    let Ok(spki_der) = spki.to_der() else {
        return false;
    };
    let key_type = spki.algorithm.oid.to_string();
    match (algorithm, key_type.as_str()) {
        (ID_ECDSA_WITH_SHA256, ID_EC_PUBLIC_KEY) | (ID_EC_PUBLIC_KEY, ID_EC_PUBLIC_KEY) => {
            use p256::pkcs8::DecodePublicKey;
            let (Ok(key), Ok(sig)) = (
                p256::ecdsa::VerifyingKey::from_public_key_der(&spki_der),
                p256::ecdsa::Signature::from_der(signature),
            ) else {
                return false;
            };
            key.verify(message, &sig).is_ok()
        }
        (ID_SHA256_WITH_RSA | ID_RSA_ENCRYPTION, ID_RSA_ENCRYPTION) => {
            use rsa::pkcs8::DecodePublicKey;
            let (Ok(key), Ok(sig)) = (
                rsa::RsaPublicKey::from_public_key_der(&spki_der),
                rsa::pkcs1v15::Signature::try_from(signature),
            ) else {
                return false;
            };
            rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
                .verify(message, &sig)
                .is_ok()
        }
        _ => false,
    }
}

/// Whether `certificate` chains (each signature verified) to one of `anchors` through `pool`,
/// and whether every certificate on that path was valid at `at_ms` (when known).
fn chain(
    certificate: &Certificate,
    pool: &[Certificate],
    anchors: &[Certificate],
    at_ms: Option<i64>,
) -> (bool, bool) {
    let valid_at = |c: &Certificate| match at_ms {
        Some(ms) => {
            let v = &c.tbs_certificate.validity;
            let from = v.not_before.to_unix_duration().as_millis() as i64;
            let to = v.not_after.to_unix_duration().as_millis() as i64;
            (from..=to).contains(&ms)
        }
        None => true,
    };
    let mut current = certificate.clone();
    let mut all_valid = valid_at(&current);
    for _ in 0..8 {
        if anchors.contains(&current) {
            return (true, all_valid);
        }
        let issuer = anchors
            .iter()
            .chain(pool.iter())
            .find(|candidate| {
                candidate.tbs_certificate.subject == current.tbs_certificate.issuer
                    && issued_by(&current, candidate)
            })
            .cloned();
        match issuer {
            Some(issuer) if issuer == current => return (anchors.contains(&issuer), all_valid),
            Some(issuer) => {
                all_valid &= valid_at(&issuer);
                current = issuer;
            }
            None => return (false, all_valid),
        }
    }
    (false, all_valid)
}

fn issued_by(certificate: &Certificate, issuer: &Certificate) -> bool {
    let Ok(tbs) = certificate.tbs_certificate.to_der() else {
        return false;
    };
    let Some(signature) = certificate.signature.as_bytes() else {
        return false;
    };
    verify(
        issuer,
        &certificate.signature_algorithm.oid.to_string(),
        &tbs,
        signature,
    )
}

/// Classifies what the objects of `full` add to or change from the signed revision `signed`.
fn later_changes(signed: &[u8], full: &Document) -> LaterChanges {
    let Ok(before) = Document::load_mem(signed) else {
        return LaterChanges::ContentChanged;
    };
    let mut worst = LaterChanges::ValidationData;
    let pages: BTreeMap<ObjectId, ()> = before.page_iter().map(|id| (id, ())).collect();
    let catalog_id = before
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .ok();
    // A list may change only where it had that role in the signed revision and still has it: an
    // update cannot point the /DSS or a form at the page's list of content streams to make its
    // change look like validation data.
    let lists: BTreeSet<ObjectId> = lists_that_may_change(&before)
        .intersection(&lists_that_may_change(full))
        .copied()
        .collect();
    for (id, object) in &full.objects {
        let old = before.objects.get(id);
        if old == Some(object) {
            continue;
        }
        let level = match (old, object) {
            (None, new) => classify_new(new, full),
            (Some(Object::Dictionary(a)), Object::Dictionary(b)) if pages.contains_key(id) => {
                if same_except(a, b, &[b"Annots"]) {
                    LaterChanges::ValidationData
                } else {
                    LaterChanges::ContentChanged
                }
            }
            (Some(Object::Dictionary(a)), Object::Dictionary(b)) if Some(*id) == catalog_id => {
                if same_except(a, b, &[b"AcroForm", b"DSS"]) {
                    LaterChanges::ValidationData
                } else {
                    LaterChanges::ContentChanged
                }
            }
            (Some(Object::Dictionary(a)), Object::Dictionary(b))
                if a.has(b"Fields") && b.has(b"Fields") =>
            {
                LaterChanges::ValidationData
            }
            (Some(Object::Dictionary(a)), Object::Dictionary(b))
                if is_markup_annotation(a) && is_markup_annotation(b) =>
            {
                LaterChanges::Annotations
            }
            // What an annotation list gains or loses is judged below; a field list or the
            // validation data's lists only gain signatures and validation data. Any other list —
            // a page's content streams, say — is the document itself.
            (Some(Object::Array(_)), Object::Array(_)) if lists.contains(id) => {
                LaterChanges::ValidationData
            }
            _ => LaterChanges::ContentChanged,
        };
        worst = worst.max(level);
    }
    // New annotations reach pages through /Annots; count them as annotations. Taking away a
    // markup annotation is annotating too; taking away anything else (a signature's widget, a
    // link) changes the document.
    for id in before.page_iter() {
        let old = page_annots(&before, id);
        let new = page_annots(full, id);
        let is_markup = |document: &Document, annotation: &Object| {
            document
                .dereference(annotation)
                .ok()
                .and_then(|(_, o)| o.as_dict().ok().map(is_markup_annotation))
                .unwrap_or(false)
        };
        for added in new.iter().filter(|a| !old.contains(a)) {
            if is_markup(full, added) {
                worst = worst.max(LaterChanges::Annotations);
            }
        }
        for removed in old.iter().filter(|a| !new.contains(a)) {
            worst = worst.max(if is_markup(&before, removed) {
                LaterChanges::Annotations
            } else {
                LaterChanges::ContentChanged
            });
        }
    }
    worst
}

/// The lists (array objects) of `document` that a later update may change without changing the
/// document: each page's annotation list, the form's field list and the `/DSS`'s lists of
/// certificates, CRLs and OCSP answers (its own and those of each `/VRI` entry).
fn lists_that_may_change(document: &Document) -> BTreeSet<ObjectId> {
    let reference = |d: &Dictionary, key: &[u8]| d.get(key).and_then(Object::as_reference).ok();
    fn dictionary_at<'d>(
        document: &'d Document,
        d: &'d Dictionary,
        key: &[u8],
    ) -> Option<&'d Dictionary> {
        d.get(key)
            .ok()
            .and_then(|o| document.dereference(o).ok())
            .and_then(|(_, o)| o.as_dict().ok())
    }
    let mut lists: BTreeSet<ObjectId> = document
        .page_iter()
        .filter_map(|page| document.get_dictionary(page).ok())
        .filter_map(|page| reference(page, b"Annots"))
        .collect();
    if let Ok(catalog) = document.catalog() {
        if let Some(form) = dictionary_at(document, catalog, b"AcroForm") {
            lists.extend(reference(form, b"Fields"));
        }
        if let Some(dss) = dictionary_at(document, catalog, b"DSS") {
            for key in [&b"Certs"[..], b"CRLs", b"OCSPs"] {
                lists.extend(reference(dss, key));
            }
            if let Some(vri) = dictionary_at(document, dss, b"VRI") {
                for (_, entry) in vri.iter() {
                    let Some(entry) = document
                        .dereference(entry)
                        .ok()
                        .and_then(|(_, o)| o.as_dict().ok())
                    else {
                        continue;
                    };
                    for key in [&b"Cert"[..], b"CRL", b"OCSP"] {
                        lists.extend(reference(entry, key));
                    }
                }
            }
        }
    }
    lists
}

/// A markup annotation (ISO 32000-2, 12.5.6.2), or the pop-up that shows one's text: what
/// annotating adds. Links, widgets and other interactive annotations are not.
fn is_markup_annotation(d: &Dictionary) -> bool {
    const MARKUP: &[&[u8]] = &[
        b"Text",
        b"FreeText",
        b"Line",
        b"Square",
        b"Circle",
        b"Polygon",
        b"PolyLine",
        b"Highlight",
        b"Underline",
        b"Squiggly",
        b"StrikeOut",
        b"Caret",
        b"Stamp",
        b"Ink",
        b"FileAttachment",
        b"Sound",
        b"Redact",
        b"Popup",
    ];
    d.get(b"Type").and_then(Object::as_name).ok() == Some(b"Annot")
        && d.get(b"Subtype")
            .and_then(Object::as_name)
            .is_ok_and(|subtype| MARKUP.contains(&subtype))
}

fn same_except(a: &Dictionary, b: &Dictionary, ignored: &[&[u8]]) -> bool {
    let strip = |d: &Dictionary| {
        let mut d = d.clone();
        for key in ignored {
            d.remove(key);
        }
        d
    };
    strip(a) == strip(b)
}

/// What a new object is: validation data (the `/DSS` and its streams, document time-stamps and
/// their invisible fields), part of a signature, an annotation, or neutral material they use
/// (appearance streams, fonts); anything else is new content.
fn classify_new(object: &Object, full: &Document) -> LaterChanges {
    let dictionary = match object {
        Object::Dictionary(d) => d,
        Object::Stream(s) => &s.dict,
        _ => return LaterChanges::ValidationData,
    };
    let name = |key: &[u8]| dictionary.get(key).and_then(Object::as_name).ok();
    match (name(b"Type"), name(b"Subtype")) {
        (Some(b"Annot"), Some(b"Widget")) => {
            let value_type = dictionary
                .get(b"V")
                .ok()
                .and_then(|v| full.dereference(v).ok())
                .and_then(|(_, v)| v.as_dict().ok())
                .and_then(|v| v.get(b"Type").and_then(Object::as_name).ok());
            if value_type == Some(b"DocTimeStamp") {
                LaterChanges::ValidationData
            } else {
                LaterChanges::SignaturesOnly
            }
        }
        (Some(b"Annot"), _) => LaterChanges::Annotations,
        (Some(b"DocTimeStamp" | b"DSS" | b"XRef" | b"ObjStm"), _) => LaterChanges::ValidationData,
        (Some(b"Sig" | b"Font" | b"FontDescriptor"), _) => LaterChanges::SignaturesOnly,
        (Some(b"XObject"), Some(b"Form")) | (None, Some(b"Form")) => LaterChanges::SignaturesOnly,
        _ if dictionary.has(b"Length1") => LaterChanges::SignaturesOnly,
        _ if dictionary.has(b"Fields")
            || [&b"Certs"[..], b"CRLs", b"OCSPs", b"VRI"]
                .iter()
                .any(|key| dictionary.has(key)) =>
        {
            LaterChanges::ValidationData
        }
        // Streams without a type: certificates and CRLs of the DSS, font files, ToUnicode maps.
        _ if matches!(object, Object::Stream(_)) => LaterChanges::ValidationData,
        _ => LaterChanges::ContentChanged,
    }
}

/// Reads a certificate (DER), for trust anchors given as files.
pub fn certificate_from_der(der: &[u8]) -> Result<Certificate, PdfError> {
    Certificate::from_der(der)
        .map_err(|e| PdfError::Signing(format!("the certificate is unreadable: {e}")))
}
