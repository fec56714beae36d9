//! A real server on loopback for tests: HTTPS with a generated CA, a manual clock, seeded
//! randomness, and SQLite or PostgreSQL underneath.

#![allow(dead_code)]

pub mod s3;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use outpost_protocol as wire;
use outpost_server::ca::CertificateAuthority;
use outpost_server::clock::{ManualClock, SeededEntropy};
use outpost_server::identity;
use outpost_server::serve::{open_service, start, RunningServer, StorageConfig};
use outpost_server::service::{Actor, NewUser, Policy, Service};
use outpost_server::tls::{embedded_pair, server_config};
use p256::ecdsa::signature::Signer;
use p256::pkcs8::EncodePublicKey;
use serde_json::Value;

/// The storage backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's data directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server that scripts/with-postgres.sh started.
    Postgres,
}

/// The passphrase of test CAs.
pub const CA_PASSPHRASE: &str = "correct horse battery staple";

/// The time the tests start at: 2026-11-24 00:00:00 UTC.
pub const START: i64 = 1_795_478_400;

/// A two-worker runtime, as the machine has two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A fresh database on the test PostgreSQL server; its URL.
pub async fn fresh_postgres_database() -> String {
    let admin_url = std::env::var("OUTPOST_TEST_POSTGRES_URL").expect(
        "OUTPOST_TEST_POSTGRES_URL is not set: run the tests under scripts/with-postgres.sh (scripts/test.sh does)",
    );
    let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(connection);
    let name = format!("outpost_test_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("the admin URL ends in /DATABASE");
    format!("{base}/{name}")
}

/// Storage settings for `backend` in `dir`.
pub async fn storage(backend: Backend, dir: &std::path::Path) -> StorageConfig {
    let mut config = StorageConfig::in_dir(dir);
    if backend == Backend::Postgres {
        config.database = Some(fresh_postgres_database().await);
        config.max_connections = 4;
    }
    config
}

/// A device's key pair, as a workstation holds it.
pub struct DeviceKey {
    key: p256::ecdsa::SigningKey,
}

impl DeviceKey {
    pub fn new(seed: u8) -> DeviceKey {
        let mut bytes = [seed; 32];
        bytes[0] = 1;
        DeviceKey {
            key: p256::ecdsa::SigningKey::from_slice(&bytes).expect("a valid scalar"),
        }
    }

    pub fn public_key(&self) -> String {
        let der = self
            .key
            .verifying_key()
            .to_public_key_der()
            .expect("encode the public key");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(der.as_bytes())
    }

    pub fn sign(&self, message: &str) -> String {
        let signature: p256::ecdsa::Signature = self.key.sign(message.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.to_der().as_bytes())
    }
}

/// A user the tests created, with what they need to sign in.
pub struct TestUser {
    pub username: String,
    pub password: String,
    pub totp_secret: Vec<u8>,
    pub recovery_codes: Vec<String>,
}

/// A response: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not JSON ({}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct TestServer {
    pub runtime: tokio::runtime::Runtime,
    pub service: Arc<Service>,
    pub clock: Arc<ManualClock>,
    pub base: String,
    pub agent: ureq::Agent,
    running: Option<RunningServer>,
    pub dir: tempfile::TempDir,
}

/// The limits tests run with: small enough to exceed cheaply.
pub fn test_policy() -> Policy {
    Policy {
        max_document_bytes: 256 * 1024,
        login_attempts_per_minute: 1000,
        ..Policy::default()
    }
}

impl TestServer {
    pub fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, test_policy())
    }

    pub fn start_with(backend: Backend, policy: Policy) -> TestServer {
        Self::start_full(backend, policy, false)
    }

    /// A server with the organisation's CA (its passphrase is [`CA_PASSPHRASE`]).
    pub fn start_with_ca(backend: Backend) -> TestServer {
        Self::start_full(backend, test_policy(), true)
    }

    fn start_full(backend: Backend, policy: Policy, with_ca: bool) -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temp dir");
        let clock = Arc::new(ManualClock::new(START));
        let (service, running, ca_pem) = runtime.block_on(async {
            let config = storage(backend, dir.path()).await;
            let mut service = open_service(
                &config,
                clock.clone(),
                Arc::new(SeededEntropy::new(7)),
                policy,
            )
            .await
            .expect("open the service");
            if with_ca {
                let ca = CertificateAuthority::init(
                    &dir.path().join("ca"),
                    "Outpost Test Org",
                    CA_PASSPHRASE,
                    START,
                    &SeededEntropy::new(8),
                )
                .expect("create the CA");
                service = service
                    .with_certificate_authority(Arc::new(ca))
                    .expect("the time-stamping authority");
            }
            let service = Arc::new(service);
            let files = embedded_pair(dir.path(), &[], START).expect("TLS files");
            let tls = server_config(&files).expect("TLS config");
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let running = start(service.clone(), listener, tls).expect("start");
            let ca =
                std::fs::read(files.ca_certificate.expect("generated CA")).expect("read the CA");
            (service, running, ca)
        });
        let base = format!("https://127.0.0.1:{}", running.address().port());
        TestServer {
            runtime,
            service,
            clock,
            base,
            agent: pinned_agent(&ca_pem),
            running: Some(running),
            dir,
        }
    }

    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("tls/ca.pem")).expect("the CA")
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    pub fn unit(&self, name: &str) {
        self.block_on(self.service.create_unit(Actor::Cli, name))
            .expect("create the unit");
    }

    /// Creates a user with MFA enrolled.
    pub fn user(&self, username: &str, role: wire::Role, unit: Option<&str>) -> TestUser {
        let password = format!("{username}-password-1");
        self.block_on(self.service.create_user(
            Actor::Cli,
            NewUser {
                username: username.into(),
                display_name: format!("User {username}"),
                role,
                unit: unit.map(str::to_string),
                password: password.clone(),
            },
        ))
        .expect("create the user");
        let enrolment = self
            .block_on(self.service.enrol_second_factor(Actor::Cli, username))
            .expect("enrol MFA");
        TestUser {
            username: username.into(),
            password,
            totp_secret: enrolment.secret.to_vec(),
            recovery_codes: enrolment.recovery_codes.clone(),
        }
    }

    /// The TOTP code a user's authenticator shows now.
    pub fn code(&self, user: &TestUser) -> String {
        identity::totp_code(&user.totp_secret, self.service.now()).expect("a code")
    }

    /// Moves to the next TOTP step, so a new code can be used.
    pub fn next_step(&self) {
        self.clock.advance(30);
    }

    pub fn login_request(&self, user: &TestUser, key: &DeviceKey) -> Value {
        serde_json::json!({
            "username": user.username,
            "password": user.password,
            "second_factor": {"kind": "totp", "code": self.code(user)},
            "device": {"kind": "enrol", "name": "Test workstation", "public_key": key.public_key()},
        })
    }

    /// Signs in from a new device; returns the session.
    pub fn login(&self, user: &TestUser, key: &DeviceKey) -> wire::Session {
        self.next_step();
        let reply = self.post_json(wire::paths::LOGIN, None, &self.login_request(user, key));
        assert_eq!(reply.status, 200, "login failed: {}", reply.text());
        serde_json::from_slice(&reply.body).expect("a session")
    }

    /// Registers a PDF and assigns it; returns the document id.
    pub fn document(&self, title: &str, target: wire::AssignmentTarget) -> String {
        let document = self
            .block_on(self.service.register_document(
                Actor::Cli,
                title,
                "internal",
                sample_pdf(title).into(),
            ))
            .expect("register");
        self.block_on(self.service.assign(Actor::Cli, &document.id, &target))
            .expect("assign");
        document.id
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        let url = format!("{}{}", self.base, path);
        let request = ureq::http::Request::builder().method(method).uri(&url);
        let request = match token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        };
        let outcome = match body {
            Some((content_type, bytes)) => {
                let request = request
                    .header("Content-Type", content_type)
                    .body(bytes)
                    .expect("a request");
                self.agent.run(request)
            }
            None => self.agent.run(request.body(()).expect("a request")),
        };
        let mut response = outcome.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .expect("read the body");
        Reply { status, body }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request("GET", path, token, None)
    }

    pub fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.request(
            "POST",
            path,
            token,
            Some(("application/json", serde_json::to_vec(body).expect("json"))),
        )
    }

    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime
                .block_on(running.shutdown(Duration::from_secs(5)))
                .expect("graceful shutdown");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = self
                .runtime
                .block_on(running.shutdown(Duration::from_secs(1)));
        }
    }
}

/// An HTTPS client that trusts only `ca_pem`. Each request has its own connection: the server
/// may close a kept-alive connection after refusing a request whose body it did not read, and a
/// POST sent on it at that moment fails ("peer disconnected") — the refusal is what these tests
/// look at, not connection reuse.
pub fn pinned_agent(ca_pem: &[u8]) -> ureq::Agent {
    let certificate = ureq::tls::Certificate::from_pem(ca_pem)
        .expect("the CA in PEM")
        .to_owned();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[certificate]))
                .build(),
        )
        .build()
        .new_agent()
}

/// A small valid one-page PDF whose content mentions `title`.
pub fn sample_pdf(title: &str) -> Vec<u8> {
    outpost_server::testing::sample_pdf(title, 0)
}
