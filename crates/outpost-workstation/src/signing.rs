//! Signing on the workstation: keys generated here and kept encrypted in the vault, certificate
//! requests for the organisation's CA, issued certificates and trust anchors imported, documents
//! signed as a new revision (pending annotations burned in first, so the signature covers what the
//! signer saw), and every signature of a document validated against the vault's trust anchors.

use std::str::FromStr;

use base64ct::Encoding;
use der::{Decode, Encode, EncodePem};
use outpost_pdf::{
    burn_in, certificate_from_der, sign_pdf_update, validate_signatures_against, Annotation,
    Certificate, DocMdpPermission, PdfSigner, SignatureMark, SignatureReport, SignatureRequest,
    SoftwareSigner, ViewRect, DEFAULT_RESERVED_BYTES,
};
use outpost_vault::{AuditAction, AuditEvent, AuditOutcome, DocumentUpdate, NewSigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::name::Name;

use crate::{DocumentId, Session, WorkstationError};

/// Key types a signer can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 (the default).
    EcdsaP256,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
}

impl KeyAlgorithm {
    fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa_p256",
            KeyAlgorithm::Rsa3072 => "rsa_3072",
        }
    }
}

/// A signing key as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigningKeyInfo {
    /// Id.
    pub id: String,
    /// Label.
    pub label: String,
    /// `ecdsa_p256` or `rsa_3072`.
    pub algorithm: String,
    /// The certificate request (PEM) to send to the organisation's CA.
    pub request_pem: String,
    /// The certificate's subject, once imported.
    pub subject: Option<String>,
    /// The certificate's issuer.
    pub issuer: Option<String>,
    /// The certificate's serial number (hex).
    pub serial: Option<String>,
    /// Valid from (ms since the epoch).
    pub not_before_ms: Option<i64>,
    /// Valid until (ms since the epoch).
    pub not_after_ms: Option<i64>,
    /// The certificate followed by its chain (PEM), once imported.
    pub certificate_pem: Option<String>,
    /// Its certificate request waits to be sent to the organisation's CA with the next sync.
    pub certificate_requested: bool,
    /// Why the organisation's CA refused its certificate request, if it did.
    pub certificate_refusal: Option<String>,
}

/// How to sign a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignOptions {
    /// The key to sign with.
    pub key_id: String,
    /// Why (shown in the mark and written as `/Reason`).
    pub reason: String,
    /// The page of the visible mark (or of the invisible widget).
    pub page: u32,
    /// Where the visible mark goes, in view space; `None` signs invisibly.
    pub mark: Option<ViewRect>,
    /// Certify the document (first signature only).
    #[serde(default)]
    pub certify: Option<u8>,
}

impl SignOptions {
    /// An invisible signature (its widget on page 1) that does not certify, with `key_id` for
    /// `reason`.
    pub fn invisible(key_id: impl Into<String>, reason: impl Into<String>) -> SignOptions {
        SignOptions {
            key_id: key_id.into(),
            reason: reason.into(),
            page: 1,
            mark: None,
            certify: None,
        }
    }
}

/// What signing did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignOutcome {
    /// The document's new revision.
    pub revision: i64,
    /// SHA-256 before signing.
    pub sha256_before: String,
    /// SHA-256 after.
    pub sha256_after: String,
    /// Annotations burned in before the signature.
    pub burned_annotations: usize,
}

fn millis(time: x509_cert::time::Time) -> i64 {
    time.to_unix_duration().as_millis() as i64
}

fn key_error(e: impl std::fmt::Display) -> WorkstationError {
    WorkstationError::Signing(e.to_string())
}

/// Reads one or more certificates from PEM text (however its lines end or are indented, as text
/// pasted from a mail or a web page is) or a single DER certificate.
fn read_certificates(data: &[u8]) -> Result<Vec<Certificate>, WorkstationError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = match std::str::from_utf8(data) {
        Ok(text) if text.contains(BEGIN) => text,
        _ => {
            return Ok(vec![
                certificate_from_der(data).map_err(WorkstationError::Engine)?
            ])
        }
    };
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end = body.find(END).ok_or_else(|| {
            WorkstationError::Signing("a certificate in the text has no END line".into())
        })?;
        let base64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64ct::Base64::decode_vec(&base64).map_err(|e| {
            WorkstationError::Signing(format!(
                "a certificate in the text is not valid base64: {e}"
            ))
        })?;
        found.push(certificate_from_der(&der).map_err(WorkstationError::Engine)?);
        rest = &body[end + END.len()..];
    }
    Ok(found)
}

/// The common name in a subject, else the whole subject.
fn common_name(name: &Name) -> String {
    let text = name.to_string();
    text.split(',')
        .find_map(|part| part.trim().strip_prefix("CN="))
        .map(str::to_owned)
        .unwrap_or(text)
}

impl Session {
    /// Generates a signing key in the vault and the certificate request (PEM) for the
    /// organisation's CA, with `common_name` as the subject.
    pub fn create_signing_key(
        &self,
        label: &str,
        algorithm: KeyAlgorithm,
        common_name: &str,
    ) -> Result<SigningKeyInfo, WorkstationError> {
        use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};
        let escaped: String = common_name
            .chars()
            .flat_map(|c| {
                let escape = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=');
                escape.then_some('\\').into_iter().chain(std::iter::once(c))
            })
            .collect();
        let subject = Name::from_str(&format!("CN={escaped}")).map_err(key_error)?;
        let mut rng = self.rng();
        let (private_key, public_key, request) = match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                let key = p256::ecdsa::SigningKey::random(&mut *rng);
                let request = RequestBuilder::new(subject, &key)
                    .map_err(key_error)?
                    .build::<p256::ecdsa::DerSignature>()
                    .map_err(key_error)?;
                (
                    key.to_pkcs8_der().map_err(key_error)?.as_bytes().to_vec(),
                    key.verifying_key()
                        .to_public_key_der()
                        .map_err(key_error)?
                        .into_vec(),
                    request,
                )
            }
            KeyAlgorithm::Rsa3072 => {
                let key = rsa::RsaPrivateKey::new(&mut *rng, 3072).map_err(key_error)?;
                let signing = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone());
                let request = RequestBuilder::new(subject, &signing)
                    .map_err(key_error)?
                    .build::<rsa::pkcs1v15::Signature>()
                    .map_err(key_error)?;
                (
                    key.to_pkcs8_der().map_err(key_error)?.as_bytes().to_vec(),
                    key.to_public_key()
                        .to_public_key_der()
                        .map_err(key_error)?
                        .into_vec(),
                    request,
                )
            }
        };
        drop(rng);
        let private_key = zeroize::Zeroizing::new(private_key);
        let id = self.new_uuid().to_string();
        let request_der = request.to_der().map_err(key_error)?;
        self.vault().store_signing_key(&NewSigningKey {
            id: &id,
            label,
            algorithm: algorithm.as_str(),
            private_key: &private_key,
            public_key: &public_key,
            request: &request_der,
        })?;
        self.signing_key(&id)
    }

    /// The signing keys in the vault.
    pub fn signing_keys(&self) -> Result<Vec<SigningKeyInfo>, WorkstationError> {
        let records = self.vault().signing_keys()?;
        records.into_iter().map(|r| self.key_info(r)).collect()
    }

    pub(crate) fn key_record(
        &self,
        id: &str,
    ) -> Result<outpost_vault::SigningKeyRecord, WorkstationError> {
        self.vault()
            .signing_keys()?
            .into_iter()
            .find(|k| k.id == id)
            .ok_or_else(|| {
                WorkstationError::Vault(outpost_vault::VaultError::SigningKeyNotFound(id.into()))
            })
    }

    pub(crate) fn signing_key(&self, id: &str) -> Result<SigningKeyInfo, WorkstationError> {
        let record = self.key_record(id)?;
        self.key_info(record)
    }

    fn key_info(
        &self,
        r: outpost_vault::SigningKeyRecord,
    ) -> Result<SigningKeyInfo, WorkstationError> {
        let request = x509_cert::request::CertReq::from_der(&r.request).map_err(key_error)?;
        let request_pem = request
            .to_pem(der::pem::LineEnding::LF)
            .map_err(key_error)?;
        let certificate = r
            .certificate
            .as_deref()
            .map(Certificate::from_der)
            .transpose()
            .map_err(key_error)?;
        let tbs = certificate.as_ref().map(|c| &c.tbs_certificate);
        let certificate_pem = match &certificate {
            Some(certificate) => {
                let mut pem = certificate
                    .to_pem(der::pem::LineEnding::LF)
                    .map_err(key_error)?;
                for der in &r.chain {
                    pem.push_str(
                        &Certificate::from_der(der)
                            .and_then(|c| c.to_pem(der::pem::LineEnding::LF))
                            .map_err(key_error)?,
                    );
                }
                Some(pem)
            }
            None => None,
        };
        let certificate_requested = r.certificate_request_waits();
        Ok(SigningKeyInfo {
            certificate_pem,
            certificate_requested,
            certificate_refusal: r.certificate_refusal,
            id: r.id,
            label: r.label,
            algorithm: r.algorithm,
            request_pem,
            subject: tbs.map(|t| t.subject.to_string()),
            issuer: tbs.map(|t| t.issuer.to_string()),
            serial: tbs.map(|t| hex::encode_upper(t.serial_number.as_bytes())),
            not_before_ms: tbs.map(|t| millis(t.validity.not_before)),
            not_after_ms: tbs.map(|t| millis(t.validity.not_after)),
        })
    }

    /// Imports the certificate the CA issued for key `key_id` (PEM with its chain, or DER):
    /// refused unless it certifies that key.
    pub fn import_certificate(
        &self,
        key_id: &str,
        data: &[u8],
    ) -> Result<SigningKeyInfo, WorkstationError> {
        self.import_certificates(key_id, read_certificates(data)?)
    }

    /// Imports `certificates` (the key's certificate first, then its chain) for key `key_id`:
    /// refused unless the first certifies that key.
    pub(crate) fn import_certificates(
        &self,
        key_id: &str,
        mut certificates: Vec<Certificate>,
    ) -> Result<SigningKeyInfo, WorkstationError> {
        if certificates.is_empty() {
            return Err(WorkstationError::Signing(
                "no certificate found in the file".into(),
            ));
        }
        for certificate in &certificates {
            self.check_certificate_side(certificate)?;
        }
        let certificate = certificates.remove(0);
        let record = self.key_record(key_id)?;
        let in_certificate = certificate
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(key_error)?;
        if in_certificate != record.public_key {
            return Err(WorkstationError::Signing(
                "this certificate was not issued for this key; import the one the CA issued for its request"
                    .into(),
            ));
        }
        let chain = certificates
            .iter()
            .map(|c| c.to_der().map_err(key_error))
            .collect::<Result<Vec<_>, _>>()?;
        self.vault().set_signing_certificate(
            key_id,
            &certificate.to_der().map_err(key_error)?,
            &chain,
            &certificate.tbs_certificate.subject.to_string(),
        )?;
        self.signing_key(key_id)
    }

    /// Trusts a root of the organisation (PEM or DER) for validating signatures.
    pub fn add_trust_anchor(&self, data: &[u8]) -> Result<String, WorkstationError> {
        let mut subjects = Vec::new();
        let certificates = read_certificates(data)?;
        for certificate in &certificates {
            self.check_certificate_side(certificate)?;
        }
        for certificate in certificates {
            let der = certificate.to_der().map_err(key_error)?;
            let subject = certificate.tbs_certificate.subject.to_string();
            self.vault()
                .add_trust_anchor(&hex::encode(Sha256::digest(&der)), &der, &subject)?;
            subjects.push(subject);
        }
        Ok(subjects.join("; "))
    }

    pub(crate) fn anchors(&self) -> Result<Vec<Certificate>, WorkstationError> {
        self.vault()
            .trust_anchors()?
            .iter()
            .map(|der| certificate_from_der(der).map_err(WorkstationError::Engine))
            .collect()
    }

    pub(crate) fn software_signer(&self, key_id: &str) -> Result<SoftwareSigner, WorkstationError> {
        let record = self.key_record(key_id)?;
        let certificate = record.certificate.ok_or_else(|| {
            WorkstationError::Signing(
                "this key has no certificate yet: send its request to the CA and import the certificate"
                    .into(),
            )
        })?;
        let private_key = self.vault().signing_key_private(key_id)?;
        SoftwareSigner::from_pkcs8_der(&private_key, &certificate, &record.chain)
            .map_err(WorkstationError::Engine)
    }

    /// Signs `document` with a vault key: pending annotations are burned in, then the signature
    /// is appended; both become the document's next revision in one transaction, audited with the
    /// hashes before and after.
    pub fn sign_document(
        &self,
        document: &DocumentId,
        options: &SignOptions,
    ) -> Result<SignOutcome, WorkstationError> {
        let signer = self.software_signer(&options.key_id)?;
        self.sign_with(document, options, &signer, None, None)
    }

    /// Signs with `signer`; `batch_id` records the document as done in that batch in the same
    /// transaction as its new revision. With a `reader` (a batch worker's own), the head is read
    /// through it ([`Session::head_document`]).
    pub(crate) fn sign_with(
        &self,
        document: &DocumentId,
        options: &SignOptions,
        signer: &dyn PdfSigner,
        batch_id: Option<&str>,
        reader: Option<&outpost_vault::VaultReader>,
    ) -> Result<SignOutcome, WorkstationError> {
        // The head and its revision; the vault stored the head's hash with it. Should the head
        // move meanwhile, the vault refuses the update (it names its base revision).
        let (latest, head) = self.head_document(document, reader)?;
        let (base_revision, sha256_before) = (latest.revision, latest.sha256);
        let pending: Vec<(String, Annotation)> = self
            .annotations(document)?
            .into_iter()
            .filter(|a| !a.burned)
            .map(|a| (a.annotation.id.to_string(), a.annotation))
            .collect();
        let font = outpost_pdf::sample_font_path();
        let with_annotations: std::borrow::Cow<'_, [u8]> = if pending.is_empty() {
            std::borrow::Cow::Borrowed(head.bytes.as_slice())
        } else {
            let annotations: Vec<Annotation> = pending.iter().map(|(_, a)| a.clone()).collect();
            std::borrow::Cow::Owned(
                burn_in(&head.bytes, &annotations, &font).map_err(WorkstationError::Engine)?,
            )
        };
        let certificate = signer.certificate();
        self.check_certificate_side(certificate)?;
        let signer_name = common_name(&certificate.tbs_certificate.subject);
        let now = self.now_ms();
        let mark = match options.mark {
            Some(view) => {
                let geometry = self
                    .pdf
                    .page_geometry(&head, options.page)
                    .map_err(WorkstationError::Engine)?;
                Some(SignatureMark {
                    rect: geometry.rect_to_user(view),
                    lines: mark_lines(certificate, &signer_name, &options.reason, now),
                })
            }
            None => None,
        };
        let certify = match options.certify {
            None => None,
            Some(1) => Some(DocMdpPermission::NoChanges),
            Some(2) => Some(DocMdpPermission::FormFillingAndSignatures),
            Some(3) => Some(DocMdpPermission::Annotations),
            Some(other) => {
                return Err(WorkstationError::Signing(format!(
                    "certification permission {other} does not exist: choose 1, 2 or 3"
                )))
            }
        };
        let signed = sign_pdf_update(
            &with_annotations,
            &SignatureRequest {
                page: options.page,
                mark,
                reason: options.reason.clone(),
                signer_name: signer_name.clone(),
                location: None,
                signing_time_ms: now,
                certify,
                reserved_bytes: DEFAULT_RESERVED_BYTES,
            },
            signer,
            &font,
        )
        .map_err(WorkstationError::Engine)?;
        let sha256_after = hex::encode(signed.sha256_after);
        // The new revision is the head plus what was appended to it: the annotations burned in
        // (if any), then the signature.
        let appended: std::borrow::Cow<'_, [u8]> = match &with_annotations {
            std::borrow::Cow::Borrowed(_) => std::borrow::Cow::Borrowed(&signed.appended),
            std::borrow::Cow::Owned(annotated) => std::borrow::Cow::Owned(
                [&annotated[head.bytes.len()..], signed.appended.as_slice()].concat(),
            ),
        };
        let burned: Vec<String> = pending.iter().map(|(id, _)| id.clone()).collect();
        let revision = self.vault().append_document_update(&DocumentUpdate {
            document_id: document,
            base_revision,
            base_sha256: &sha256_before,
            appended: &appended,
            sha256_after: &sha256_after,
            cause: "signed",
            burned_annotations: &burned,
            batch_id,
            audit: AuditEvent::new(AuditAction::Sign, AuditOutcome::Success)
                .document(document.0.clone())
                .detail(format!(
                    "signed by '{signer_name}' ({}){}, reason '{}', {} annotations burned in; sha256 before {sha256_before}, after {sha256_after}",
                    options.key_id,
                    batch_id.map(|b| format!(" in batch {b}")).unwrap_or_default(),
                    options.reason,
                    burned.len()
                )),
        })?;
        // The viewer's bytes and pages are of the old revision.
        self.close_view(document);
        Ok(SignOutcome {
            revision: revision.revision,
            sha256_before,
            sha256_after,
            burned_annotations: burned.len(),
        })
    }

    /// Every signature of the document, validated against the vault's trust anchors, with the
    /// organisation's newest revocation list (from the last sync) besides those in the file.
    /// The validation is recorded in the audit chain (how many signatures, how many valid).
    pub fn validate_document(
        &self,
        document: &DocumentId,
    ) -> Result<Vec<SignatureReport>, WorkstationError> {
        let reports = self.validate_document_quietly(document)?;
        let valid = reports.iter().filter(|r| r.status.is_valid()).count();
        self.vault().append_audit(
            &AuditEvent::new(AuditAction::Validate, AuditOutcome::Success)
                .document(document.0.clone())
                .detail(format!("{} signatures, {valid} valid", reports.len())),
        )?;
        Ok(reports)
    }

    /// [`Session::validate_document`] without the audit record (for the engine's own checks).
    pub(crate) fn validate_document_quietly(
        &self,
        document: &DocumentId,
    ) -> Result<Vec<SignatureReport>, WorkstationError> {
        let bytes = self.vault().document_bytes(document)?;
        let anchors = self.anchors()?;
        let lists: Vec<Vec<u8>> = self
            .vault()
            .revocation_list()?
            .map(|(der, _)| der)
            .into_iter()
            .collect();
        validate_signatures_against(&bytes, &anchors, &lists).map_err(WorkstationError::Engine)
    }
}

/// The lines of the visible mark, laid out like the electronic-signature mark of GOST R 7.0.97.
fn mark_lines(certificate: &Certificate, signer: &str, reason: &str, now_ms: i64) -> Vec<String> {
    let tbs = &certificate.tbs_certificate;
    let date = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp(ms / 1000)
            .map(|t| format!("{:02}.{:02}.{}", t.day(), u8::from(t.month()), t.year()))
            .unwrap_or_default()
    };
    let signed_at = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
        .map(|t| {
            format!(
                "{:02}.{:02}.{} {:02}:{:02} UTC",
                t.day(),
                u8::from(t.month()),
                t.year(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default();
    vec![
        "ДОКУМЕНТ ПОДПИСАН ЭЛЕКТРОННОЙ ПОДПИСЬЮ".into(),
        format!(
            "Сертификат: {}",
            hex::encode_upper(tbs.serial_number.as_bytes())
        ),
        format!("Владелец: {signer}"),
        format!("Издатель: {}", common_name(&tbs.issuer)),
        format!(
            "Действителен с {} по {}",
            date(millis(tbs.validity.not_before)),
            date(millis(tbs.validity.not_after))
        ),
        format!("Подписан: {signed_at}"),
        format!("Основание: {reason}"),
    ]
}
