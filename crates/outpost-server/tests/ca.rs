//! The organisation's CA: signer certificates issued from workstation CSRs (checked by OpenSSL
//! and x509-parser), roles, bad requests, revocation reaching the CRL, and the encrypted key file.

mod support;

use std::path::Path;
use std::process::Command;

use base64::Engine;
use outpost_protocol as wire;
use outpost_protocol::{AssignmentTarget, Role};
use outpost_server::ca::{CaError, CertificateAuthority};
use outpost_server::clock::SeededEntropy;
use outpost_server::service::Actor;
use serde_json::json;
use support::{Backend, DeviceKey, TestServer};
use x509_parser::prelude::*;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

/// A CSR for a new P-256 signing key, with a subject the server must ignore.
fn csr() -> (rcgen::KeyPair, Vec<u8>) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Evil Administrator");
    let request = params.serialize_request(&key).expect("csr");
    (key, request.der().to_vec())
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn openssl(args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (install-deps installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path.to_str().expect("utf-8 path").to_string()
}

fn request_certificate(server: &TestServer, token: &str, csr: &[u8]) -> support::Reply {
    server.post_json(
        wire::paths::CERTIFICATES,
        Some(token),
        &json!({"csr": b64(csr)}),
    )
}

fn signer_certificates_come_from_csrs_and_revocations_reach_the_crl(backend: Backend) {
    let server = TestServer::start_with_ca(backend);
    server.unit("North");
    let bob = server.user("bob", Role::Supervisor, Some("North"));
    let carol = server.user("carol", Role::Staff, Some("North"));
    let trainee = server.user("tanya", Role::Trainee, Some("North"));
    let admin = server.user("root", Role::Admin, None);
    server.document(
        "Order",
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let bob_session = server.login(&bob, &DeviceKey::new(1));
    let (signing_key, request) = csr();

    let reply = request_certificate(&server, &bob_session.access_token, &request);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let issued: wire::CertificateIssued = serde_json::from_slice(&reply.body).expect("issued");
    let certificate_der = unb64(&issued.certificate);
    let ca_der = unb64(&issued.chain[0]);
    let published = server.get(wire::paths::CA_CERTIFICATE, None);
    assert_eq!(published.status, 200);
    assert_eq!(published.body, ca_der, "the published CA is the chain's CA");

    let (_, certificate) =
        X509Certificate::from_der(&certificate_der).expect("parse the certificate");
    let (_, ca) = X509Certificate::from_der(&ca_der).expect("parse the CA");
    // The subject comes from the server's records, not from the CSR.
    let subject = certificate.subject().to_string();
    assert!(subject.contains("CN=User bob"), "{subject}");
    assert!(
        subject.contains("OU=North") && subject.contains("O=Outpost Test Org"),
        "{subject}"
    );
    assert!(!subject.contains("Evil"), "{subject}");
    assert_eq!(certificate.issuer(), ca.subject());
    assert_eq!(
        certificate.public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&signing_key).as_slice()
    );
    assert_eq!(hex_of(certificate.raw_serial()), issued.serial);
    let key_usage = certificate
        .key_usage()
        .expect("key usage")
        .expect("present");
    assert!(key_usage.critical);
    assert!(key_usage.value.digital_signature() && key_usage.value.non_repudiation());
    assert!(!key_usage.value.key_cert_sign());
    assert!(!certificate.is_ca());
    let ski = subject_key_id(&certificate).expect("subject key identifier");
    assert!(!ski.is_empty());
    let ca_ski = subject_key_id(&ca).expect("CA key identifier");
    let aki = certificate
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .expect("authority key identifier");
    assert_eq!(aki, ca_ski);
    let lifetime = certificate.validity().not_after.timestamp() - server.service.now();
    assert!(
        (729 * 86_400..=731 * 86_400).contains(&lifetime),
        "{lifetime}"
    );
    certificate
        .verify_signature(Some(ca.public_key()))
        .expect("the CA's signature verifies");

    // OpenSSL agrees, and the fresh CRL lists nothing.
    let dir = tempfile::tempdir().expect("dir");
    let ca_file = write(dir.path(), "ca.pem", &pem("CERTIFICATE", &ca_der));
    let bob_file = write(dir.path(), "bob.pem", &pem("CERTIFICATE", &certificate_der));
    // OpenSSL judges at the server's (test) time, not the machine's: the CRL lives one day.
    let at = server.service.now().to_string();
    let (ok, text) = openssl(&["verify", "-attime", &at, "-CAfile", &ca_file, &bob_file]);
    assert!(ok, "openssl verify: {text}");
    let crl_pem = |server: &TestServer| {
        let reply = server.get(wire::paths::CA_CRL, None);
        assert_eq!(reply.status, 200);
        pem("X509 CRL", &reply.body)
    };
    let crl_file = write(dir.path(), "crl.pem", &crl_pem(&server));
    let (ok, text) = openssl(&[
        "crl", "-in", &crl_file, "-CAfile", &ca_file, "-noout", "-text",
    ]);
    assert!(
        ok && text.contains("verify OK") && text.contains("No Revoked Certificates"),
        "{text}"
    );
    let (ok, text) = openssl(&[
        "verify",
        "-attime",
        &at,
        "-crl_check",
        "-CRLfile",
        &crl_file,
        "-CAfile",
        &ca_file,
        &bob_file,
    ]);
    assert!(ok, "not revoked yet: {text}");

    // Staff may sign too; trainees and administrators get no signer certificate.
    let carol_session = server.login(&carol, &DeviceKey::new(2));
    let (_, carol_request) = csr();
    let carol_reply = request_certificate(&server, &carol_session.access_token, &carol_request);
    assert_eq!(carol_reply.status, 201, "{}", carol_reply.text());
    let carol_issued: wire::CertificateIssued =
        serde_json::from_slice(&carol_reply.body).expect("issued");
    for (user, seed) in [(&trainee, 3), (&admin, 4)] {
        let token = server.login(user, &DeviceKey::new(seed)).access_token;
        let reply = request_certificate(&server, &token, &csr().1);
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (403, wire::error_codes::FORBIDDEN)
        );
    }
    // Malformed requests, and a request whose signature was tampered with, are refused.
    let mut tampered = request.clone();
    let last = tampered.len() - 3;
    tampered[last] ^= 0x55;
    for bad in [b"not a csr".to_vec(), tampered, Vec::new()] {
        let reply = request_certificate(&server, &bob_session.access_token, &bad);
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (400, wire::error_codes::BAD_REQUEST),
            "{}",
            reply.text()
        );
    }
    let reply = server.post_json(
        wire::paths::CERTIFICATES,
        Some(&bob_session.access_token),
        &json!({"csr": "***"}),
    );
    assert_eq!(reply.status, 400);

    // Revoking bob's device revokes his certificate; disabling carol revokes hers.
    server
        .block_on(
            server
                .service
                .revoke_device(Actor::Cli, &bob_session.device_id),
        )
        .expect("revoke");
    server
        .block_on(server.service.disable_user(Actor::Cli, "carol"))
        .expect("disable");
    let crl_file = write(dir.path(), "crl2.pem", &crl_pem(&server));
    let (ok, text) = openssl(&[
        "crl", "-in", &crl_file, "-CAfile", &ca_file, "-noout", "-text",
    ]);
    assert!(ok && text.contains("verify OK"), "{text}");
    for serial in [&issued.serial, &carol_issued.serial] {
        assert!(
            text.to_lowercase()
                .replace(':', "")
                .contains(serial.as_str()),
            "serial {serial} missing from the CRL:\n{text}"
        );
    }
    let (ok, text) = openssl(&[
        "verify",
        "-attime",
        &at,
        "-crl_check",
        "-CRLfile",
        &crl_file,
        "-CAfile",
        &ca_file,
        &bob_file,
    ]);
    assert!(
        !ok && text.contains("revoked"),
        "openssl still accepts bob's certificate: {text}"
    );
    let certificates = server
        .block_on(server.service.certificates("bob"))
        .expect("list");
    assert!(certificates.iter().all(|c| c.revoked_at.is_some()));

    // A disabled user is signed out everywhere and cannot sign in.
    assert_eq!(
        server
            .get(wire::paths::ME, Some(&carol_session.access_token))
            .status,
        401
    );
    server.next_step();
    let again = server.post_json(
        wire::paths::LOGIN,
        None,
        &server.login_request(&carol, &DeviceKey::new(5)),
    );
    assert_eq!(
        (again.status, again.code().as_str()),
        (401, wire::error_codes::INVALID_CREDENTIALS)
    );
}

fn subject_key_id(certificate: &X509Certificate<'_>) -> Option<Vec<u8>> {
    certificate
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The same request sent several times at once (a workstation retrying while its first attempt
/// is still on its way, or two windows of one vault): every answer is the one certificate.
fn requests_for_one_key_at_the_same_moment_get_one_certificate(backend: Backend) {
    let server = TestServer::start_with_ca(backend);
    let bob = server.user("bob", Role::Supervisor, None);
    let token = server.login(&bob, &DeviceKey::new(1)).access_token;
    let (_, request) = csr();
    let answers: Vec<wire::CertificateIssued> = std::thread::scope(|scope| {
        let sending: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| request_certificate(&server, &token, &request)))
            .collect();
        sending
            .into_iter()
            .map(|sent| {
                let reply = sent.join().expect("the request");
                assert!(
                    reply.status == 201 || reply.status == 200,
                    "{}",
                    reply.text()
                );
                serde_json::from_slice(&reply.body).expect("issued")
            })
            .collect()
    });
    let serials: std::collections::BTreeSet<&str> =
        answers.iter().map(|a| a.serial.as_str()).collect();
    assert_eq!(serials.len(), 1, "{serials:?}");
    let held = server
        .block_on(server.service.certificates("bob"))
        .expect("certificates");
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].serial, answers[0].serial);
}

mod sqlite {
    #[test]
    fn signer_certificates_come_from_csrs_and_revocations_reach_the_crl() {
        super::signer_certificates_come_from_csrs_and_revocations_reach_the_crl(
            super::Backend::Sqlite,
        )
    }

    #[test]
    fn requests_for_one_key_at_the_same_moment_get_one_certificate() {
        super::requests_for_one_key_at_the_same_moment_get_one_certificate(super::Backend::Sqlite)
    }
}

mod postgres {
    #[test]
    fn signer_certificates_come_from_csrs_and_revocations_reach_the_crl() {
        super::signer_certificates_come_from_csrs_and_revocations_reach_the_crl(
            super::Backend::Postgres,
        )
    }

    #[test]
    fn requests_for_one_key_at_the_same_moment_get_one_certificate() {
        super::requests_for_one_key_at_the_same_moment_get_one_certificate(super::Backend::Postgres)
    }
}

#[test]
fn a_server_without_a_ca_says_so() {
    let server = TestServer::start(Backend::Sqlite);
    let user = server.user("bob", Role::Supervisor, None);
    let token = server.login(&user, &DeviceKey::new(1)).access_token;
    let reply = request_certificate(&server, &token, &csr().1);
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (503, wire::error_codes::UNAVAILABLE)
    );
    assert_eq!(server.get(wire::paths::CA_CRL, None).status, 503);
}

#[test]
fn the_ca_key_is_encrypted_on_disk_in_a_standard_format() {
    let dir = tempfile::tempdir().expect("dir");
    let ca_dir = dir.path().join("ca");
    let passphrase = "a long CA passphrase";
    let short = CertificateAuthority::init(
        &ca_dir,
        "Org",
        "short",
        support::START,
        &SeededEntropy::new(1),
    );
    assert!(matches!(short, Err(CaError::WeakPassphrase)));
    let ca = CertificateAuthority::init(
        &ca_dir,
        "Org",
        passphrase,
        support::START,
        &SeededEntropy::new(1),
    )
    .expect("init");
    let key_path = ca_dir.join("ca-key.pem");
    let key_file = std::fs::read_to_string(&key_path).expect("read");
    assert!(
        key_file.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{key_file}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_path)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // OpenSSL opens it with the passphrase and not without.
    let key_arg = key_path.to_str().expect("path");
    let (ok, text) = openssl(&[
        "pkey",
        "-in",
        key_arg,
        "-passin",
        &format!("pass:{passphrase}"),
        "-noout",
        "-text",
    ]);
    assert!(ok && text.contains("prime256v1"), "{text}");
    let (ok, _) = openssl(&[
        "pkey",
        "-in",
        key_arg,
        "-passin",
        "pass:wrong passphrase",
        "-noout",
    ]);
    assert!(!ok);
    // Reopening: the right passphrase gives the same CA; a wrong one a clear error.
    let reopened = CertificateAuthority::open(&ca_dir, "Org", passphrase).expect("open");
    assert_eq!(reopened.certificate_der(), ca.certificate_der());
    let wrong = CertificateAuthority::open(&ca_dir, "Org", "another long passphrase");
    assert!(matches!(wrong, Err(CaError::Passphrase(_))));
    // init on an existing CA keeps it.
    let again = CertificateAuthority::init(
        &ca_dir,
        "Org",
        passphrase,
        support::START + 99,
        &SeededEntropy::new(2),
    )
    .expect("init");
    assert_eq!(again.certificate_der(), ca.certificate_der());
    let missing = CertificateAuthority::open(&dir.path().join("nowhere"), "Org", passphrase);
    assert!(matches!(missing, Err(CaError::Missing(_))));
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_ca_key_can_stay_on_a_pkcs11_token() {
    const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
    const PIN: &str = "246810";
    let dir = tempfile::tempdir().expect("dir");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).expect("tokens");
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .expect("conf");
    // Each test runs in its own process under nextest, so this reaches only this test's token.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    run(
        "softhsm2-util",
        &[
            "--init-token",
            "--free",
            "--label",
            "Outpost CA",
            "--pin",
            PIN,
            "--so-pin",
            "13579135",
        ],
    );
    // The key pair is generated on the token: it never exists outside it.
    run(
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--token-label",
            "Outpost CA",
            "--login",
            "--pin",
            PIN,
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            "outpost-ca",
            "--id",
            "01",
        ],
    );
    let location = outpost_server::ca_token::TokenKeyLocation {
        module: MODULE.into(),
        token_label: "Outpost CA".into(),
        key_label: "outpost-ca".into(),
    };
    let ca_dir = dir.path().join("ca");
    let entropy = SeededEntropy::new(3);
    let wrong = CertificateAuthority::init_on_token(
        &ca_dir,
        "Org",
        &location,
        "999999",
        support::START,
        &entropy,
    );
    assert!(matches!(wrong, Err(CaError::TokenPin)), "{:?}", wrong.err());
    let missing_key = outpost_server::ca_token::TokenKeyLocation {
        key_label: "nothing".into(),
        ..location.clone()
    };
    let missing = CertificateAuthority::init_on_token(
        &ca_dir,
        "Org",
        &missing_key,
        PIN,
        support::START,
        &entropy,
    );
    assert!(
        matches!(&missing, Err(CaError::Token(m)) if m.contains("nothing")),
        "{:?}",
        missing.err()
    );

    let ca = CertificateAuthority::init_on_token(
        &ca_dir,
        "Org",
        &location,
        PIN,
        support::START,
        &entropy,
    )
    .expect("init");
    assert!(
        !ca_dir.join("ca-key.pem").exists(),
        "no key file for a token CA"
    );
    let described = std::fs::read_to_string(ca_dir.join("ca-token.json")).expect("location");
    assert!(
        described.contains("outpost-ca") && !described.contains(PIN),
        "{described}"
    );

    let subject = outpost_server::ca::SignerSubject {
        display_name: "Ivan".into(),
        username: "ivan".into(),
        unit: None,
    };
    let issued = ca
        .issue(&csr().1, &subject, support::START, 365, &entropy)
        .expect("issue on the token");
    let crl = ca
        .crl(
            &[(issued.serial.clone(), support::START + 5)],
            support::START + 10,
        )
        .expect("CRL on the token");
    let files = tempfile::tempdir().expect("dir");
    let ca_file = write(files.path(), "ca.pem", ca.certificate_pem());
    let leaf_file = write(files.path(), "leaf.pem", &pem("CERTIFICATE", &issued.der));
    let crl_file = write(files.path(), "crl.pem", &pem("X509 CRL", &crl));
    let (ok, text) = openssl(&["verify", "-CAfile", &ca_file, &leaf_file]);
    assert!(ok, "{text}");
    let (ok, text) = openssl(&["crl", "-in", &crl_file, "-CAfile", &ca_file, "-noout"]);
    assert!(ok && text.contains("verify OK"), "{text}");

    // Reopening logs in again (a PKCS#11 module is initialised once per process: the first
    // session goes first); the CLI finds the token CA by itself and needs the PIN.
    let (ca_der, ca_pem) = (
        ca.certificate_der().to_vec(),
        ca.certificate_pem().to_string(),
    );
    drop(ca);
    let reopened = CertificateAuthority::open_on_token(&ca_dir, "Org", PIN).expect("reopen");
    assert_eq!(reopened.certificate_der(), ca_der.as_slice());
    drop(reopened);
    let cli = |pin: &str| {
        Command::new(env!("CARGO_BIN_EXE_outpost-server"))
            .arg("--data-dir")
            .arg(dir.path().join("server"))
            .arg("--ca-dir")
            .arg(&ca_dir)
            .args(["ca", "show"])
            .env("OUTPOST_CA_PIN", pin)
            .output()
            .expect("run the CLI")
    };
    let shown = cli(PIN);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), ca_pem.trim());
    let refused = cli("111111");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("PIN"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn the_time_stamping_authority_is_certified_by_the_ca_for_time_stamping_only() {
    use outpost_server::tsa::TimeStampAuthority;
    let dir = tempfile::tempdir().expect("dir");
    let ca = CertificateAuthority::init(
        &dir.path().join("ca"),
        "Org",
        "a long CA passphrase",
        support::START,
        &SeededEntropy::new(3),
    )
    .expect("init");
    let tsa = TimeStampAuthority::start(&ca, support::START, &SeededEntropy::new(4)).expect("tsa");
    let certificate = tsa.certificate_der();
    let (_, parsed) = X509Certificate::from_der(&certificate).expect("a certificate");
    let usage = parsed
        .extended_key_usage()
        .expect("parse")
        .expect("an extended key usage");
    assert!(
        usage.critical,
        "RFC 3161: the extended key usage is critical"
    );
    assert!(usage.value.time_stamping && !usage.value.any && !usage.value.server_auth);
    assert!(usage.value.other.is_empty() && !usage.value.client_auth);
    // OpenSSL verifies it against the CA for the time-stamping purpose, at the server's time.
    let ca_file = write(
        dir.path(),
        "ca.pem",
        &pem("CERTIFICATE", ca.certificate_der()),
    );
    let tsa_file = write(dir.path(), "tsa.pem", &pem("CERTIFICATE", &certificate));
    let at = (support::START + 60).to_string();
    let (ok, text) = openssl(&[
        "verify",
        "-attime",
        &at,
        "-purpose",
        "timestampsign",
        "-CAfile",
        &ca_file,
        &tsa_file,
    ]);
    assert!(ok, "{text}");
    // A policy that is not an object identifier is refused with a plain sentence.
    let refused = tsa
        .clone()
        .with_policy("not a policy")
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("--tsa-policy"), "{refused}");
    assert!(tsa.with_policy("1.2.643.100.1").is_ok());
}
