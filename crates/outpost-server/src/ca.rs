//! The organisation's certificate authority (reference deployment): an ECDSA P-256 CA whose key
//! is kept on disk as an encrypted PKCS#8 file (PBES2: PBKDF2-SHA256 + AES-256-CBC, readable by
//! OpenSSL), issuing signer certificates from workstation CSRs and publishing a CRL.
//!
//! Files in the CA directory: `ca.pem` (the certificate, public) and `ca-key.pem` (the encrypted
//! key). Several server nodes share one CA by pointing at the same directory (or copies of it).

use std::path::{Path, PathBuf};

use pkcs8::der::pem::LineEnding;
use pkcs8::pkcs5::pbes2;
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo, SecretDocument};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams,
    CertificateSigningRequestParams, CustomExtension, DistinguishedName, DnType, DnValue, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData, RevokedCertParams, SerialNumber,
    SignatureAlgorithm, SigningKey,
};
use rustls::pki_types::{CertificateDer, CertificateSigningRequestDer};
use zeroize::Zeroizing;

use crate::ca_token::{TokenKey, TokenKeyLocation};
use crate::clock::Entropy;

/// PBKDF2 iterations for the CA key file (OWASP's figure for PBKDF2-HMAC-SHA256).
const KEY_FILE_ITERATIONS: u32 = 600_000;
/// The OID of the `UID` attribute (RFC 4519), which carries the signer's login name.
const UID_OID: &[u64] = &[0, 9, 2342, 19_200_300, 100, 1, 1];

/// Why the CA could not be set up or could not issue.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A CA file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// There is no CA in the directory.
    #[error("there is no CA in {0}: create one with `outpost-server ca init`")]
    Missing(PathBuf),
    /// The passphrase does not decrypt the key, or the key file is damaged.
    #[error(
        "the CA key in {0} cannot be decrypted: the passphrase is wrong or the file is damaged"
    )]
    Passphrase(PathBuf),
    /// The token refused the PIN.
    #[error("the token refused the CA key's PIN")]
    TokenPin,
    /// The token, its module or the key on it cannot be used.
    #[error("the CA's token cannot be used: {0}")]
    Token(String),
    /// The passphrase is too short to protect a CA key.
    #[error("the CA passphrase must have at least 12 characters")]
    WeakPassphrase,
    /// The certificate request is malformed or its signature does not verify.
    #[error("the certificate request is not valid: {0}")]
    BadRequest(String),
    /// The time-stamping policy given is not an object identifier.
    #[error("the time-stamp policy {0:?} is not an object identifier (dotted numbers like 1.2.643.100.1); check --tsa-policy")]
    BadPolicy(String),
    /// Encoding or signing failed.
    #[error("the CA could not sign: {0}")]
    Signing(String),
}

/// The subject of a signer certificate, from the server's records (never from the CSR).
#[derive(Debug, Clone)]
pub struct SignerSubject {
    /// The signer's name as people read it (the certificate's common name).
    pub display_name: String,
    /// The login name (the `UID` attribute).
    pub username: String,
    /// The unit (the organisational unit), if any.
    pub unit: Option<String>,
}

/// A certificate the CA issued.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// Its serial number, lowercase hex.
    pub serial: String,
    /// The certificate (DER).
    pub der: Vec<u8>,
    /// The subject, as text for people.
    pub subject: String,
    /// Start of validity (Unix seconds).
    pub not_before: i64,
    /// End of validity (Unix seconds).
    pub not_after: i64,
}

/// The CA's private key: in an encrypted file, or on a PKCS#11 token.
enum CaKey {
    File(Box<KeyPair>),
    Token(TokenKey),
}

impl PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            CaKey::File(key) => key.der_bytes(),
            CaKey::Token(key) => key.public_point(),
        }
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            CaKey::File(key) => key.algorithm(),
            CaKey::Token(_) => &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }
}

impl SigningKey for CaKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match self {
            CaKey::File(key) => key.sign(message),
            CaKey::Token(key) => key.sign(message).map_err(|error| {
                tracing::error!(%error, "the CA token did not sign");
                rcgen::Error::RemoteKeyError
            }),
        }
    }
}

/// The organisation's CA, loaded and ready to sign.
pub struct CertificateAuthority {
    key: CaKey,
    certificate_der: Vec<u8>,
    certificate_pem: String,
    organisation: String,
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::File {
        path: path.to_path_buf(),
        source,
    }
}

fn datetime(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn signing(error: impl std::fmt::Display) -> CaError {
    CaError::Signing(error.to_string())
}

/// A positive 128-bit serial number.
fn new_serial(entropy: &dyn Entropy) -> Vec<u8> {
    let mut serial = vec![0u8; 16];
    entropy.fill(&mut serial);
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    serial
}

impl CertificateAuthority {
    /// Creates a CA in `dir` named for `organisation`, valid for twenty years from `now`, its key
    /// encrypted with `passphrase`. Refuses to overwrite an existing CA.
    pub fn init(
        dir: &Path,
        organisation: &str,
        passphrase: &str,
        now: i64,
        entropy: &dyn Entropy,
    ) -> Result<CertificateAuthority, CaError> {
        if passphrase.chars().count() < 12 {
            return Err(CaError::WeakPassphrase);
        }
        let key_path = dir.join("ca-key.pem");
        if key_path.exists() {
            return Self::open(dir, organisation, passphrase);
        }
        std::fs::create_dir_all(dir).map_err(file_error(dir))?;
        let key = KeyPair::generate().map_err(signing)?;
        let certificate = self_signed(&key, organisation, now, entropy)?;

        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        entropy.fill(&mut salt);
        entropy.fill(&mut iv);
        let pkcs8 = Zeroizing::new(key.serialize_der());
        let info = PrivateKeyInfo::try_from(pkcs8.as_slice()).map_err(signing)?;
        let parameters =
            pbes2::Parameters::pbkdf2_sha256_aes256cbc(KEY_FILE_ITERATIONS, &salt, &iv)
                .map_err(signing)?;
        let encrypted = info
            .encrypt_with_params(parameters, passphrase)
            .map_err(signing)?;
        let pem = encrypted
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .map_err(signing)?;
        write_private(&key_path, pem.as_bytes())?;
        let certificate_path = dir.join("ca.pem");
        std::fs::write(&certificate_path, certificate).map_err(file_error(&certificate_path))?;
        Self::open(dir, organisation, passphrase)
    }

    /// Creates a CA in `dir` whose key is the ECDSA P-256 key pair already on a PKCS#11 token
    /// (generated there, so it never existed anywhere else). Writes `ca.pem` and `ca-token.json`
    /// (where the key is; never the PIN). An existing token CA in `dir` is opened instead.
    pub fn init_on_token(
        dir: &Path,
        organisation: &str,
        location: &TokenKeyLocation,
        pin: &str,
        now: i64,
        entropy: &dyn Entropy,
    ) -> Result<CertificateAuthority, CaError> {
        if Self::uses_token(dir) {
            return Self::open_on_token(dir, organisation, pin);
        }
        if dir.join("ca-key.pem").exists() {
            return Err(CaError::Token(format!(
                "{} already holds a CA with its key in a file",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(file_error(dir))?;
        let key = CaKey::Token(TokenKey::open(location, pin)?);
        let certificate = self_signed(&key, organisation, now, entropy)?;
        let location_path = dir.join("ca-token.json");
        let json = serde_json::to_vec_pretty(location).map_err(signing)?;
        std::fs::write(&location_path, json).map_err(file_error(&location_path))?;
        let certificate_path = dir.join("ca.pem");
        std::fs::write(&certificate_path, &certificate).map_err(file_error(&certificate_path))?;
        // The session that signed the certificate stays: one module, one initialisation.
        let certificate_der = pem_to_der(&certificate)
            .ok_or_else(|| CaError::Signing("the new CA certificate cannot be read back".into()))?;
        Ok(CertificateAuthority {
            key,
            certificate_der,
            certificate_pem: certificate,
            organisation: organisation.to_string(),
        })
    }

    /// Whether the CA in `dir` keeps its key on a token.
    pub fn uses_token(dir: &Path) -> bool {
        dir.join("ca-token.json").exists()
    }

    /// Loads a CA whose key is on a token, logging in with `pin`. A PKCS#11 module is initialised
    /// once per process, so drop an open token CA before opening it again.
    pub fn open_on_token(
        dir: &Path,
        organisation: &str,
        pin: &str,
    ) -> Result<CertificateAuthority, CaError> {
        let location_path = dir.join("ca-token.json");
        let certificate_path = dir.join("ca.pem");
        if !location_path.exists() || !certificate_path.exists() {
            return Err(CaError::Missing(dir.to_path_buf()));
        }
        let json = std::fs::read(&location_path).map_err(file_error(&location_path))?;
        let location: TokenKeyLocation = serde_json::from_slice(&json).map_err(|e| {
            CaError::Token(format!("{} is unreadable: {e}", location_path.display()))
        })?;
        let key = TokenKey::open(&location, pin)?;
        let (certificate_pem, certificate_der) = read_certificate(&certificate_path)?;
        if key.public_point() != certificate_public_point(&certificate_der).as_slice() {
            return Err(CaError::Token(format!(
                "the token's key {:?} is not the key of the CA certificate in {}",
                location.key_label,
                certificate_path.display()
            )));
        }
        Ok(CertificateAuthority {
            key: CaKey::Token(key),
            certificate_der,
            certificate_pem,
            organisation: organisation.to_string(),
        })
    }

    /// Loads the CA in `dir`, decrypting its key with `passphrase`.
    pub fn open(
        dir: &Path,
        organisation: &str,
        passphrase: &str,
    ) -> Result<CertificateAuthority, CaError> {
        let key_path = dir.join("ca-key.pem");
        let certificate_path = dir.join("ca.pem");
        if !key_path.exists() || !certificate_path.exists() {
            return Err(CaError::Missing(dir.to_path_buf()));
        }
        let key_pem =
            Zeroizing::new(std::fs::read_to_string(&key_path).map_err(file_error(&key_path))?);
        let (_, document) = SecretDocument::from_pem(&key_pem)
            .map_err(|_| CaError::Passphrase(dir.to_path_buf()))?;
        let encrypted = EncryptedPrivateKeyInfo::try_from(document.as_bytes())
            .map_err(|_| CaError::Passphrase(dir.to_path_buf()))?;
        let decrypted = encrypted
            .decrypt(passphrase)
            .map_err(|_| CaError::Passphrase(dir.to_path_buf()))?;
        let key = KeyPair::try_from(decrypted.as_bytes())
            .map_err(|_| CaError::Passphrase(dir.to_path_buf()))?;
        let (certificate_pem, certificate_der) = read_certificate(&certificate_path)?;
        Ok(CertificateAuthority {
            key: CaKey::File(Box::new(key)),
            certificate_der,
            certificate_pem,
            organisation: organisation.to_string(),
        })
    }

    /// The CA certificate (DER).
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The CA certificate (PEM).
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    fn issuer(&self) -> Result<Issuer<'static, &CaKey>, CaError> {
        Issuer::from_ca_cert_der(
            &CertificateDer::from(self.certificate_der.clone()),
            &self.key,
        )
        .map_err(signing)
    }

    /// Issues a signer certificate for the key in `csr_der` (whose signature must verify): the
    /// subject comes from the server's records, key usage is digitalSignature + nonRepudiation,
    /// with subject and authority key identifiers, valid from `now` for `validity_days`.
    pub fn issue(
        &self,
        csr_der: &[u8],
        subject: &SignerSubject,
        now: i64,
        validity_days: i64,
        entropy: &dyn Entropy,
    ) -> Result<IssuedCertificate, CaError> {
        let request =
            CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
                .map_err(|error| CaError::BadRequest(error.to_string()))?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, self.organisation.as_str());
        if let Some(unit) = &subject.unit {
            name.push(DnType::OrganizationalUnitName, unit.as_str());
        }
        name.push(DnType::CommonName, subject.display_name.as_str());
        name.push(
            DnType::CustomDnType(UID_OID.to_vec()),
            DnValue::Utf8String(subject.username.clone()),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        let serial = new_serial(entropy);
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let not_before = now - 300;
        let not_after = now + validity_days * 86_400;
        params.not_before = datetime(not_before);
        params.not_after = datetime(not_after);
        let certificate = params
            .signed_by(&request.public_key, &self.issuer()?)
            .map_err(signing)?;
        let unit = subject
            .unit
            .as_deref()
            .map(|u| format!("OU={u}, "))
            .unwrap_or_default();
        Ok(IssuedCertificate {
            serial: hex::encode(&serial),
            der: certificate.der().to_vec(),
            subject: format!(
                "CN={}, {unit}O={}, UID={}",
                subject.display_name, self.organisation, subject.username
            ),
            not_before,
            not_after,
        })
    }

    /// A fresh ECDSA P-256 key (PKCS #8 DER, never written anywhere) and its certificate (DER)
    /// for a time-stamping authority: key usage digitalSignature, extended key usage
    /// timeStamping only and critical (RFC 3161 2.3), valid from `now` for five years.
    pub fn issue_time_stamping(
        &self,
        now: i64,
        entropy: &dyn Entropy,
    ) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CaError> {
        let key = KeyPair::generate().map_err(signing)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, self.organisation.as_str());
        name.push(
            DnType::CommonName,
            format!("{} time-stamping authority", self.organisation),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // ExtendedKeyUsage ::= SEQUENCE { id-kp-timeStamping (1.3.6.1.5.5.7.3.8) }, critical;
        // rcgen writes its own EKU as non-critical, so the extension is written here.
        let mut usage = CustomExtension::from_oid_content(
            &[2, 5, 29, 37],
            vec![
                0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08,
            ],
        );
        usage.set_criticality(true);
        params.custom_extensions = vec![usage];
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        params.serial_number = Some(SerialNumber::from_slice(&new_serial(entropy)));
        params.not_before = datetime(now - 300);
        params.not_after = datetime(now + 5 * 365 * 86_400);
        let certificate = params.signed_by(&key, &self.issuer()?).map_err(signing)?;
        Ok((
            Zeroizing::new(key.serialize_der()),
            certificate.der().to_vec(),
        ))
    }

    /// A CRL listing `revoked` (serial hex, revocation time), valid from `now` for a day.
    pub fn crl(&self, revoked: &[(String, i64)], now: i64) -> Result<Vec<u8>, CaError> {
        let revoked_certs = revoked
            .iter()
            .filter_map(|(serial, at)| {
                hex::decode(serial).ok().map(|bytes| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&bytes),
                    revocation_time: datetime(*at),
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect();
        let params = CertificateRevocationListParams {
            this_update: datetime(now - 60),
            next_update: datetime(now + 86_400),
            crl_number: SerialNumber::from_slice(&now.max(1).to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params
            .signed_by(&self.issuer()?)
            .map_err(signing)?
            .der()
            .to_vec())
    }
}

/// The CA's self-signed certificate (PEM) for `key`, valid for twenty years from `now`.
fn self_signed(
    key: &impl SigningKey,
    organisation: &str,
    now: i64,
    entropy: &dyn Entropy,
) -> Result<String, CaError> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, organisation);
    name.push(DnType::CommonName, format!("{organisation} signing CA"));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(SerialNumber::from_slice(&new_serial(entropy)));
    params.not_before = datetime(now - 3600);
    params.not_after = datetime(now + 20 * 365 * 86_400);
    params.key_identifier_method = KeyIdMethod::Sha256;
    Ok(params.self_signed(key).map_err(signing)?.pem())
}

/// The SubjectPublicKeyInfo (DER) a certificate signing request asks a certificate for, once
/// the request's signature shows it was made with that key (as [`CertificateAuthority::issue`]
/// checks).
pub fn request_public_key(csr_der: &[u8]) -> Result<Vec<u8>, CaError> {
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::prelude::FromDer;
    CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
        .map_err(|error| CaError::BadRequest(error.to_string()))?;
    let (_, request) = X509CertificationRequest::from_der(csr_der)
        .map_err(|error| CaError::BadRequest(error.to_string()))?;
    Ok(request.certification_request_info.subject_pki.raw.to_vec())
}

/// The SubjectPublicKeyInfo (DER) of a certificate, if it parses.
pub fn certificate_public_key(der: &[u8]) -> Option<Vec<u8>> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, certificate)| certificate.public_key().raw.to_vec())
}

/// The subject public key bits of a certificate (the uncompressed point for EC keys).
fn certificate_public_point(der: &[u8]) -> Vec<u8> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, certificate)| certificate.public_key().subject_public_key.data.to_vec())
        .unwrap_or_default()
}

/// The CA certificate file's PEM text and DER bytes.
fn read_certificate(path: &Path) -> Result<(String, Vec<u8>), CaError> {
    let pem = std::fs::read_to_string(path).map_err(file_error(path))?;
    let der = pem_to_der(&pem)
        .ok_or_else(|| CaError::Signing(format!("{} holds no certificate", path.display())))?;
    Ok((pem, der))
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|der| der.to_vec())
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), CaError> {
    crate::private_file::write_private_file(path, contents, false).map_err(file_error(path))
}
