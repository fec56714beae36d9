//! HTTPS for the server: a certificate and key from the configuration, or, for the embedded
//! default, a private CA and a server certificate generated once into the data directory. The
//! CA's certificate (`tls/ca.pem`) is what workstations pin.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why HTTPS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{path} holds no usable {what} in PEM form")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was expected.
        what: &'static str,
    },
    /// Certificate generation failed.
    #[error("the server certificate could not be generated: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate or key.
    #[error("the TLS certificate or key is unusable: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Where the certificate files are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server's certificate chain, PEM, leaf first.
    pub certificate: PathBuf,
    /// The server's private key, PEM (PKCS#8).
    pub private_key: PathBuf,
    /// The CA certificate workstations pin (for the generated pair), if known.
    pub ca_certificate: Option<PathBuf>,
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::File {
        path: path.to_path_buf(),
        source,
    }
}

fn write_private(path: &Path, contents: &str) -> Result<(), TlsError> {
    crate::private_file::write_private_file(path, contents.as_bytes(), true)
        .map_err(file_error(path))
}

/// The generated pair under `data_dir/tls`, created on first use: a CA valid for ten years from
/// `now`, and a server certificate it issues for `localhost`, `127.0.0.1`, `::1` and any
/// `extra_names`. An existing pair is reused as it is.
pub fn embedded_pair(
    data_dir: &Path,
    extra_names: &[String],
    now: i64,
) -> Result<TlsFiles, TlsError> {
    let dir = data_dir.join("tls");
    let files = TlsFiles {
        certificate: dir.join("server.pem"),
        private_key: dir.join("server.key"),
        ca_certificate: Some(dir.join("ca.pem")),
    };
    if files.certificate.exists() && files.private_key.exists() {
        return Ok(files);
    }
    std::fs::create_dir_all(&dir).map_err(file_error(&dir))?;
    let start = time::OffsetDateTime::from_unix_timestamp(now - 86_400)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let end = start + time::Duration::days(3653);

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::default();
    let mut ca_name = DistinguishedName::new();
    ca_name.push(DnType::OrganizationName, "Outpost");
    ca_name.push(DnType::CommonName, "Outpost server CA (embedded)");
    ca_params.distinguished_name = ca_name;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = start;
    ca_params.not_after = end;
    let ca_certificate = ca_params.self_signed(&ca_key)?;

    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(extra_names.iter().cloned());
    let server_key = KeyPair::generate()?;
    let mut server_params = CertificateParams::new(names)?;
    let mut server_name = DistinguishedName::new();
    server_name.push(DnType::OrganizationName, "Outpost");
    server_name.push(DnType::CommonName, "Outpost server");
    server_params.distinguished_name = server_name;
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    server_params.not_before = start;
    server_params.not_after = end;
    let issuer = Issuer::new(ca_params, &ca_key);
    let server_certificate = server_params.signed_by(&server_key, &issuer)?;

    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_certificate.pem()).map_err(file_error(&ca_path))?;
    write_private(&files.private_key, &server_key.serialize_pem())?;
    let chain = format!("{}{}", server_certificate.pem(), ca_certificate.pem());
    std::fs::write(&files.certificate, chain).map_err(file_error(&files.certificate))?;
    Ok(files)
}

/// The rustls configuration for `files` (HTTP/1.1, TLS 1.2 and 1.3, ring as the provider).
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain_pem = std::fs::read(&files.certificate).map_err(file_error(&files.certificate))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Pem {
            path: files.certificate.clone(),
            what: "certificate",
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: files.certificate.clone(),
            what: "certificate",
        });
    }
    let key_pem = std::fs::read(&files.private_key).map_err(file_error(&files.private_key))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::Pem {
        path: files.private_key.clone(),
        what: "private key",
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
