//! The CMS (PKCS #7) side of a PAdES baseline B-B signature: a detached `SignedData` over the
//! document's byte ranges whose signed attributes are exactly contentType, messageDigest and
//! signingCertificateV2 (no signing-time: the time goes into the PDF's `/M`).
//!
//! Signing itself is behind [`PdfSigner`], so a key in the vault and a key on a PKCS#11 token
//! sign the same way.

use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};

use crate::PdfError;

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
/// The content type of a time-stamp token's content (RFC 3161).
pub(crate) const ID_CT_TST_INFO: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// The signature algorithms Outpost signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the default for new keys).
    EcdsaP256Sha256,
    /// RSA PKCS #1 v1.5 with SHA-256 (RSA-3072 for new keys).
    RsaSha256,
}

/// A signing key with its certificate: in the vault, or on a PKCS #11 token.
pub trait PdfSigner: Send + Sync {
    /// The signer's certificate.
    fn certificate(&self) -> &Certificate;
    /// Certificates of the chain up to (and including) the root, to embed.
    fn chain(&self) -> &[Certificate];
    /// The algorithm [`PdfSigner::sign`] uses.
    fn algorithm(&self) -> SignatureAlgorithm;
    /// Signs `message` (the DER of the signed attributes): SHA-256 of it, then the raw signature
    /// (DER `ECDSA-Sig-Value` or PKCS #1 v1.5 bytes).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PdfError>;
}

/// `ESSCertIDv2` with the default hash algorithm (SHA-256), so `hashAlgorithm` is absent.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
    issuer_serial: IssuerSerial,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: SerialNumber,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

fn der_error(what: &str) -> impl Fn(der::Error) -> PdfError + '_ {
    move |e| PdfError::Signing(format!("{what}: {e}"))
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, PdfError> {
    let mut values = SetOfVec::new();
    values
        .insert(value)
        .map_err(der_error("building an attribute"))?;
    Ok(Attribute { oid, values })
}

fn sha256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ID_SHA256,
        parameters: None,
    }
}

/// The DER `SignedAttributes` (a SET OF, as signed) for a content type, the digest of the
/// content and the signer certificate.
fn signed_attributes(
    content_type: ObjectIdentifier,
    document_digest: &[u8; 32],
    certificate: &Certificate,
) -> Result<SetOfVec<Attribute>, PdfError> {
    let certificate_der = certificate
        .to_der()
        .map_err(der_error("encoding the certificate"))?;
    let signing_certificate = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::new(Sha256::digest(&certificate_der).to_vec())
                .map_err(der_error("hashing the certificate"))?,
            issuer_serial: IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(
                    certificate.tbs_certificate.issuer.clone(),
                )],
                serial_number: certificate.tbs_certificate.serial_number.clone(),
            },
        }],
    };
    let any = |bytes: Vec<u8>| Any::from_der(&bytes).map_err(der_error("encoding an attribute"));
    let content_type = any(content_type.to_der().map_err(der_error("content type"))?)?;
    let message_digest = any(OctetString::new(document_digest.to_vec())
        .and_then(|o| o.to_der())
        .map_err(der_error("message digest"))?)?;
    let signing_certificate = any(signing_certificate
        .to_der()
        .map_err(der_error("signing certificate"))?)?;
    let mut attributes = SetOfVec::new();
    for (oid, value) in [
        (ID_CONTENT_TYPE, content_type),
        (ID_MESSAGE_DIGEST, message_digest),
        (ID_SIGNING_CERTIFICATE_V2, signing_certificate),
    ] {
        attributes
            .insert(attribute(oid, value)?)
            .map_err(der_error("collecting signed attributes"))?;
    }
    Ok(attributes)
}

/// A detached CMS `SignedData` (DER) over a document whose byte ranges hash to `document_digest`.
pub fn detached_signature(
    document_digest: &[u8; 32],
    signer: &dyn PdfSigner,
) -> Result<Vec<u8>, PdfError> {
    signed_data(ID_DATA, None, document_digest, signer)
}

/// What a time-stamping authority puts into a time-stamp token besides the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStampTerms {
    /// The TSA's policy (a dotted OID).
    pub policy: String,
    /// The token's serial number (positive; at most 20 bytes).
    pub serial: Vec<u8>,
    /// The time stamped, milliseconds since the epoch (written to the second).
    pub time_ms: i64,
}

/// An RFC 3161 time-stamp token (DER `ContentInfo` with a `SignedData` encapsulating `TSTInfo`)
/// for a SHA-256 `digest`, signed by `signer` (whose certificate must be a time-stamping
/// authority's: extended key usage timeStamping, critical).
pub fn time_stamp_token(
    digest: &[u8; 32],
    terms: &TimeStampTerms,
    signer: &dyn PdfSigner,
) -> Result<Vec<u8>, PdfError> {
    use der::asn1::{GeneralizedTime, Int};
    let policy = ObjectIdentifier::new(&terms.policy)
        .map_err(|e| PdfError::Signing(format!("the time-stamp policy is not an OID: {e}")))?;
    let seconds = u64::try_from(terms.time_ms.div_euclid(1000))
        .map_err(|_| PdfError::Signing("the time to stamp is before 1970".into()))?;
    let gen_time = GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(seconds))
        .map_err(der_error("the time to stamp"))?;
    let info = x509_tsp::TstInfo {
        version: x509_tsp::TspVersion::V1,
        policy,
        message_imprint: x509_tsp::MessageImprint {
            hash_algorithm: spki::AlgorithmIdentifier {
                oid: ID_SHA256,
                parameters: None,
            },
            hashed_message: OctetString::new(digest.to_vec())
                .map_err(der_error("the message imprint"))?,
        },
        serial_number: Int::new(&terms.serial).map_err(der_error("the serial number"))?,
        gen_time,
        accuracy: Some(x509_tsp::Accuracy {
            seconds: Some(1),
            millis: None,
            micros: None,
        }),
        ordering: false,
        nonce: None,
        tsa: None,
        extensions: None,
    };
    let info_der = info.to_der().map_err(der_error("encoding TSTInfo"))?;
    let info_digest: [u8; 32] = Sha256::digest(&info_der).into();
    signed_data(ID_CT_TST_INFO, Some(info_der), &info_digest, signer)
}

/// A CMS `SignedData` (DER `ContentInfo`) with one signer: signed attributes contentType,
/// messageDigest (`content_digest`) and signingCertificateV2; the content itself is
/// encapsulated when given, else detached.
fn signed_data(
    content_type: ObjectIdentifier,
    content: Option<Vec<u8>>,
    content_digest: &[u8; 32],
    signer: &dyn PdfSigner,
) -> Result<Vec<u8>, PdfError> {
    let certificate = signer.certificate();
    let signed_attrs = signed_attributes(content_type, content_digest, certificate)?;
    let to_sign = signed_attrs
        .to_der()
        .map_err(der_error("encoding signed attributes"))?;
    let signature = signer.sign(&to_sign)?;
    let signature_algorithm = AlgorithmIdentifierOwned {
        oid: match signer.algorithm() {
            SignatureAlgorithm::EcdsaP256Sha256 => ID_ECDSA_WITH_SHA256,
            SignatureAlgorithm::RsaSha256 => ID_SHA256_WITH_RSA,
        },
        parameters: match signer.algorithm() {
            SignatureAlgorithm::EcdsaP256Sha256 => None,
            SignatureAlgorithm::RsaSha256 => Some(Any::null()),
        },
    };
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: certificate.tbs_certificate.issuer.clone(),
            serial_number: certificate.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: sha256_algorithm(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm,
        signature: OctetString::new(signature).map_err(der_error("signature value"))?,
        unsigned_attrs: None,
    };
    let mut certificates = vec![CertificateChoices::Certificate(certificate.clone())];
    certificates.extend(
        signer
            .chain()
            .iter()
            .map(|c| CertificateChoices::Certificate(c.clone())),
    );
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms
        .insert(sha256_algorithm())
        .map_err(der_error("digest algorithms"))?;
    let econtent = content
        .map(|bytes| Any::new(der::Tag::OctetString, bytes))
        .transpose()
        .map_err(der_error("the encapsulated content"))?;
    let signed_data = SignedData {
        // RFC 5652 5.1: version 3 when the content is anything but id-data.
        version: if content_type == ID_DATA {
            CmsVersion::V1
        } else {
            CmsVersion::V3
        },
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: content_type,
            econtent,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(certificates).map_err(der_error("certificate set"))?,
        )),
        crls: None,
        signer_infos: SignerInfos(
            SetOfVec::try_from(vec![signer_info]).map_err(der_error("signer infos"))?,
        ),
    };
    let content = Any::from_der(
        &signed_data
            .to_der()
            .map_err(der_error("encoding SignedData"))?,
    )
    .map_err(der_error("wrapping SignedData"))?;
    ContentInfo {
        content_type: ID_SIGNED_DATA,
        content,
    }
    .to_der()
    .map_err(der_error("encoding ContentInfo"))
}

/// A signer whose private key is in memory (from the vault, or generated for tests).
pub struct SoftwareSigner {
    key: SoftwareKey,
    certificate: Certificate,
    chain: Vec<Certificate>,
}

enum SoftwareKey {
    P256(p256::ecdsa::SigningKey),
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
}

impl SoftwareSigner {
    /// A signer from a PKCS #8 private key (P-256 or RSA, DER) and DER certificates: the signer's
    /// own, then its chain. Fails if the certificate's public key is not the key's.
    pub fn from_pkcs8_der(
        key: &[u8],
        certificate: &[u8],
        chain: &[Vec<u8>],
    ) -> Result<Self, PdfError> {
        use p256::pkcs8::DecodePrivateKey;
        let key = match p256::ecdsa::SigningKey::from_pkcs8_der(key) {
            Ok(k) => SoftwareKey::P256(k),
            Err(_) => {
                let rsa = rsa::RsaPrivateKey::from_pkcs8_der(key).map_err(|e| {
                    PdfError::Signing(format!("the private key is neither P-256 nor RSA: {e}"))
                })?;
                SoftwareKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa)))
            }
        };
        let parse = |der: &[u8]| {
            Certificate::from_der(der)
                .map_err(|e| PdfError::Signing(format!("a certificate is unreadable: {e}")))
        };
        let certificate = parse(certificate)?;
        let chain = chain.iter().map(|c| parse(c)).collect::<Result<_, _>>()?;
        let signer = Self {
            key,
            certificate,
            chain,
        };
        signer.check_key_matches_certificate()?;
        Ok(signer)
    }

    fn check_key_matches_certificate(&self) -> Result<(), PdfError> {
        use p256::pkcs8::EncodePublicKey;
        let public = match &self.key {
            SoftwareKey::P256(k) => k.verifying_key().to_public_key_der(),
            SoftwareKey::Rsa(k) => {
                let public: rsa::RsaPublicKey = k.as_ref().as_ref().to_public_key();
                public.to_public_key_der()
            }
        }
        .map_err(|e| PdfError::Signing(format!("the public key cannot be encoded: {e}")))?;
        let in_certificate = self
            .certificate
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(der_error("the certificate's public key"))?;
        if public.as_bytes() != in_certificate.as_slice() {
            return Err(PdfError::Signing(
                "the certificate does not belong to this private key".into(),
            ));
        }
        Ok(())
    }
}

impl PdfSigner for SoftwareSigner {
    fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.key {
            SoftwareKey::P256(_) => SignatureAlgorithm::EcdsaP256Sha256,
            SoftwareKey::Rsa(_) => SignatureAlgorithm::RsaSha256,
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PdfError> {
        use signature::{SignatureEncoding, Signer};
        match &self.key {
            SoftwareKey::P256(k) => {
                let signature: p256::ecdsa::Signature = k
                    .try_sign(message)
                    .map_err(|e| PdfError::Signing(format!("ECDSA signing failed: {e}")))?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
            SoftwareKey::Rsa(k) => {
                let signature = k
                    .try_sign(message)
                    .map_err(|e| PdfError::Signing(format!("RSA signing failed: {e}")))?;
                Ok(signature.to_vec())
            }
        }
    }
}
