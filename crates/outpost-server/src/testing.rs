//! A real server in the test's own process, for other crates' tests (the workstation's sync
//! client): HTTPS on a loopback port with a generated CA, SQLite in a temp directory, a manual
//! clock and seeded randomness. Only built with the `testing` feature.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use outpost_protocol::{AssignmentTarget, Role};

use crate::clock::{ManualClock, SeededEntropy};
use crate::identity;
use crate::serve::{open_service, start_with_router, RunningServer, StorageConfig};
use crate::service::{Actor, NewUser, Policy, Service};
use crate::tls::{embedded_pair, server_config};

/// The instant test servers start at (2026-11-24 00:00 UTC).
pub const TEST_START: i64 = 1_795_478_400;

/// A user a test created, with what it takes to sign in.
pub struct TestAccount {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// The TOTP secret.
    pub totp_secret: Vec<u8>,
    /// The recovery codes.
    pub recovery_codes: Vec<String>,
}

/// The server, running until dropped.
pub struct InProcessServer {
    /// The runtime the server runs on (tests call async operations through [`Self::block_on`]).
    pub runtime: tokio::runtime::Runtime,
    /// The service, for administration from the test.
    pub service: Arc<Service>,
    /// The server's clock.
    pub clock: Arc<ManualClock>,
    /// `https://127.0.0.1:PORT`.
    pub base_url: String,
    /// The CA certificate (PEM) that clients pin.
    pub ca_pem: Vec<u8>,
    running: Option<RunningServer>,
    dir: tempfile::TempDir,
    with_ca: bool,
    policy: Policy,
    hooks: TestHooks,
}

/// What a test adds in front of the API: a log of requests, answers to lose, requests to hold.
#[derive(Clone, Default)]
struct TestHooks {
    recorded: Option<RequestLog>,
    lost: LostAnswers,
    held: HeldRequests,
}

/// Where [`InProcessServer::hold_request`] stops a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldPoint {
    /// Before the API sees it: the server has not acted on it. Once released, it is answered
    /// 503 without being handled.
    BeforeHandling,
    /// After the API has done its work (and committed it), before the answer leaves. Once
    /// released, the answer goes out.
    BeforeAnswering,
}

/// How far a held request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum HoldProgress {
    Waiting,
    Reached,
    /// Released, and its answer's body handed to the connection.
    Answered,
}

/// The state one held request shares between the server and the test.
struct HoldState {
    point: HoldPoint,
    progress: std::sync::Mutex<HoldProgress>,
    moved: std::sync::Condvar,
    release: tokio::sync::Semaphore,
}

impl HoldState {
    fn advance(&self, to: HoldProgress) {
        *self.progress.lock().unwrap_or_else(|p| p.into_inner()) = to;
        self.moved.notify_all();
    }

    fn wait_for(&self, at_least: HoldProgress, within: Duration) -> bool {
        let progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        let (progress, _) = self
            .moved
            .wait_timeout_while(progress, within, |progress| *progress < at_least)
            .unwrap_or_else(|p| p.into_inner());
        *progress >= at_least
    }
}

/// A request the server holds at a [`HoldPoint`] until the test releases it. Dropped, it is
/// released, and a hold no request reached is taken back (it catches nothing later).
pub struct HeldRequest {
    state: Arc<HoldState>,
    armed: HeldRequests,
}

impl HeldRequest {
    /// Waits at most `within` for the request to reach its hold point; whether it did.
    pub fn wait_until_reached(&self, within: Duration) -> bool {
        self.state.wait_for(HoldProgress::Reached, within)
    }

    /// Waits at most `within`, after [`Self::release`], for the answer of a request held
    /// [`HoldPoint::BeforeAnswering`] to be handed to the connection; whether it was.
    pub fn wait_until_answered(&self, within: Duration) -> bool {
        self.state.wait_for(HoldProgress::Answered, within)
    }

    /// Lets the request go on.
    pub fn release(&self) {
        if self.state.release.available_permits() == 0 {
            self.state.release.add_permits(1);
        }
    }
}

impl Drop for HeldRequest {
    fn drop(&mut self) {
        self.armed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(_, _, state)| !Arc::ptr_eq(state, &self.state));
        self.release();
    }
}

/// Requests to hold: for each, the path it starts with, how many such requests pass first, and
/// its state.
type HeldRequests = Arc<std::sync::Mutex<Vec<(String, usize, Arc<HoldState>)>>>;

/// Holds the request [`InProcessServer::hold_request`] armed for, at its [`HoldPoint`].
async fn hold_request(
    axum::extract::State(held): axum::extract::State<HeldRequests>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let hold = {
        let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
        let path = request.uri().path();
        match held
            .iter()
            .position(|(prefix, _, _)| path.starts_with(prefix.as_str()))
        {
            Some(at) if held[at].1 > 0 => {
                held[at].1 -= 1;
                None
            }
            Some(at) => Some(held.remove(at).2),
            None => None,
        }
    };
    let Some(hold) = hold else {
        return next.run(request).await;
    };
    let response = match hold.point {
        HoldPoint::BeforeHandling => None,
        HoldPoint::BeforeAnswering => Some(next.run(request).await),
    };
    hold.advance(HoldProgress::Reached);
    let _ = hold.release.acquire().await;
    let Some(response) = response else {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "held by the test, not handled",
        )
            .into_response();
    };
    // The answer goes out as one piece; handing it to the connection marks it answered.
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let answer = futures_util::stream::unfold(Some(bytes), move |left| {
        let hold = hold.clone();
        async move {
            let bytes = left?;
            hold.advance(HoldProgress::Answered);
            Some((Ok::<_, std::io::Error>(bytes), None))
        }
    });
    axum::response::Response::from_parts(parts, axum::body::Body::from_stream(answer))
}

/// A request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path and query.
    pub uri: String,
    /// The whole body.
    pub body: Vec<u8>,
    /// Its `Range` header, if any.
    pub range: Option<String>,
}

type RequestLog = Arc<std::sync::Mutex<Vec<RecordedRequest>>>;

/// How many of the next answers to each path are to be lost ([`InProcessServer::lose_answers_to`]).
type LostAnswers = Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>;

/// Lets the API do its work and answer, then breaks the connection instead of sending the answer
/// when [`InProcessServer::lose_answers_to`] named the request's path: the server did the work,
/// the client never hears of it (a connection that broke on the way back).
async fn lose_answer(
    axum::extract::State(lost): axum::extract::State<LostAnswers>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let lose = {
        let mut lost = lost.lock().unwrap_or_else(|p| p.into_inner());
        match lost.get_mut(request.uri().path()) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    };
    let response = next.run(request).await;
    if !lose {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let broken = futures_util::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::other("the answer was lost on the way"))
    });
    axum::response::Response::from_parts(parts, axum::body::Body::from_stream(broken))
}

/// Keeps every request (its body read whole) in `log` before the API sees it.
async fn record_request(
    axum::extract::State(log): axum::extract::State<RequestLog>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;
    let (parts, body) = request.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return axum::http::StatusCode::BAD_REQUEST.into_response(),
    };
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(RecordedRequest {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            body: bytes.to_vec(),
            range: parts
                .headers
                .get(axum::http::header::RANGE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
        });
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// A copy of a stopped-in-time server's whole data directory (database, blobs, CA, TLS files):
/// what an administrator restores after losing the server.
pub struct ServerBackup(tempfile::TempDir);

const TEST_CA_PASSPHRASE: &str = "test CA passphrase";

impl InProcessServer {
    /// Starts a server with the default policy (but no login throttling).
    pub fn start() -> InProcessServer {
        Self::start_with(false, Policy::default())
    }

    /// Starts a server with the organisation's CA, which issues signer certificates.
    pub fn start_with_ca() -> InProcessServer {
        Self::start_with(true, Policy::default())
    }

    /// Starts a server with the CA that leaves signed revisions as pushed (no long-term
    /// extension), for tests about the revision protocol itself.
    pub fn start_with_ca_without_long_term() -> InProcessServer {
        Self::start_with(
            true,
            Policy {
                extend_signatures: false,
                ..Policy::default()
            },
        )
    }

    /// Starts a server that accepts documents up to `max_document_bytes`.
    pub fn start_accepting(max_document_bytes: usize) -> InProcessServer {
        Self::start_with(
            false,
            Policy {
                max_document_bytes,
                ..Policy::default()
            },
        )
    }

    /// Starts a server with `policy` (login throttling off), with or without the CA.
    pub fn start_with(with_ca: bool, policy: Policy) -> InProcessServer {
        let policy = Policy {
            login_attempts_per_minute: u32::MAX,
            ..policy
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = tempfile::tempdir().expect("a temp dir");
        let clock = Arc::new(ManualClock::new(TEST_START));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let hooks = TestHooks::default();
        let (service, running, ca_pem) = Self::launch(
            &runtime,
            dir.path(),
            clock.clone(),
            with_ca,
            policy.clone(),
            listener,
            &hooks,
        );
        let base_url = format!("https://127.0.0.1:{}", running.address().port());
        InProcessServer {
            runtime,
            service,
            clock,
            base_url,
            ca_pem,
            running: Some(running),
            dir,
            with_ca,
            policy,
            hooks,
        }
    }

    /// Restarts the server (same data, same address) keeping every request it receives from now
    /// on, body and all (read whole before the API sees it, so not for tests of cut uploads).
    pub fn record_requests(&mut self) {
        self.stop();
        self.hooks.recorded = Some(Arc::default());
        self.relaunch();
    }

    /// The next `count` requests to `path` (e.g. [`outpost_protocol::paths::REFRESH`]) are
    /// served, but their answers never reach the client: the connection breaks instead.
    pub fn lose_answers_to(&self, path: &str, count: usize) {
        self.hooks
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_string(), count);
    }

    /// Holds a coming request whose path starts with `path`, after letting `pass` such requests
    /// through, at `point` until the returned handle releases it: a test can act (stop the
    /// client) while the server has not yet seen the request, or has done its work but not
    /// answered.
    pub fn hold_request(&self, path: &str, pass: usize, point: HoldPoint) -> HeldRequest {
        let state = Arc::new(HoldState {
            point,
            progress: std::sync::Mutex::new(HoldProgress::Waiting),
            moved: std::sync::Condvar::new(),
            release: tokio::sync::Semaphore::new(0),
        });
        self.hooks
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((path.to_string(), pass, state.clone()));
        HeldRequest {
            state,
            armed: self.hooks.held.clone(),
        }
    }

    /// The requests received since [`Self::record_requests`], oldest first.
    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        self.hooks
            .recorded
            .as_ref()
            .map(|log| log.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default()
    }

    /// Opens the service on `dir` (creating what is missing there) and serves it on `listener`.
    fn launch(
        runtime: &tokio::runtime::Runtime,
        dir: &std::path::Path,
        clock: Arc<ManualClock>,
        with_ca: bool,
        policy: Policy,
        listener: std::net::TcpListener,
        hooks: &TestHooks,
    ) -> (Arc<Service>, RunningServer, Vec<u8>) {
        runtime.block_on(async {
            let config = StorageConfig::in_dir(dir);
            let mut service = open_service(
                &config,
                clock.clone(),
                Arc::new(SeededEntropy::new(11)),
                policy,
            )
            .await
            .expect("open the service");
            if with_ca {
                let ca_dir = dir.join("ca");
                let ca = if ca_dir.exists() {
                    crate::ca::CertificateAuthority::open(
                        &ca_dir,
                        "Outpost Test Org",
                        TEST_CA_PASSPHRASE,
                    )
                } else {
                    crate::ca::CertificateAuthority::init(
                        &ca_dir,
                        "Outpost Test Org",
                        TEST_CA_PASSPHRASE,
                        TEST_START,
                        &SeededEntropy::new(12),
                    )
                }
                .expect("the CA");
                service = service
                    .with_certificate_authority(Arc::new(ca))
                    .expect("the time-stamping authority");
            }
            let service = Arc::new(service);
            let files = embedded_pair(dir, &[], TEST_START).expect("TLS files");
            let tls = server_config(&files).expect("TLS configuration");
            let mut app = crate::http::router(service.clone())
                .layer(axum::middleware::from_fn_with_state(
                    hooks.lost.clone(),
                    lose_answer,
                ))
                .layer(axum::middleware::from_fn_with_state(
                    hooks.held.clone(),
                    hold_request,
                ));
            if let Some(log) = hooks.recorded.clone() {
                app = app.layer(axum::middleware::from_fn_with_state(log, record_request));
            }
            let running =
                start_with_router(service.clone(), app, listener, tls).expect("start the server");
            let ca =
                std::fs::read(files.ca_certificate.expect("a generated CA")).expect("read the CA");
            (service, running, ca)
        })
    }

    /// The server's socket address (for a proxy in front of it).
    pub fn address(&self) -> std::net::SocketAddr {
        self.base_url
            .trim_start_matches("https://")
            .parse()
            .expect("the server's address")
    }

    /// The server's data directory (its database and object store), for a benchmark that reads
    /// it into the page cache before it measures.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Copies the whole data directory as it is now (call it while no request is in flight).
    pub fn backup(&self) -> ServerBackup {
        let copy = tempfile::tempdir().expect("a temp dir");
        copy_tree(self.dir.path(), copy.path());
        ServerBackup(copy)
    }

    /// Stops the server and starts it again, on the same address, from `backup`: everything
    /// that happened after the backup is gone from the server (the clock keeps its time).
    pub fn restore(&mut self, backup: ServerBackup) {
        self.stop();
        self.dir = backup.0;
        self.relaunch();
    }

    /// Stops the server and starts it again on the same data and address with `policy` (as an
    /// administrator restarts it with another configuration).
    pub fn restart_with(&mut self, policy: Policy) {
        self.stop();
        self.policy = Policy {
            login_attempts_per_minute: u32::MAX,
            ..policy
        };
        self.relaunch();
    }

    /// Stops the server and starts it again on the same data and address with the organisation's
    /// CA (made now if it has none), as when an administrator sets one up.
    pub fn restart_with_ca(&mut self) {
        self.stop();
        self.with_ca = true;
        self.relaunch();
    }

    fn relaunch(&mut self) {
        let listener = std::net::TcpListener::bind(self.address()).expect("the same port again");
        let (service, running, ca_pem) = Self::launch(
            &self.runtime,
            self.dir.path(),
            self.clock.clone(),
            self.with_ca,
            self.policy.clone(),
            listener,
            &self.hooks,
        );
        assert_eq!(
            ca_pem, self.ca_pem,
            "the data directory holds the same TLS CA"
        );
        self.service = service;
        self.running = Some(running);
    }

    /// Moves the server's clock to the system's time (for a peer that judges at the real time: an
    /// app computing TOTP codes, a validator checking a CRL's freshness).
    pub fn move_clock_to_system_time(&self) {
        self.clock
            .advance(time::OffsetDateTime::now_utc().unix_timestamp() - self.service.now());
    }

    /// Runs an async operation on the server's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Creates a unit.
    pub fn unit(&self, name: &str) {
        self.block_on(self.service.create_unit(Actor::Cli, name))
            .expect("create the unit");
    }

    /// Creates a user with MFA enrolled.
    pub fn account(&self, username: &str, role: Role, unit: Option<&str>) -> TestAccount {
        let password = format!("{username}-password-1");
        let user = NewUser {
            username: username.into(),
            display_name: format!("User {username}"),
            role,
            unit: unit.map(str::to_string),
            password: password.clone(),
        };
        self.block_on(self.service.create_user(Actor::Cli, user))
            .expect("create the user");
        let enrolment = self
            .block_on(self.service.enrol_second_factor(Actor::Cli, username))
            .expect("enrol MFA");
        TestAccount {
            username: username.into(),
            password,
            totp_secret: enrolment.secret.to_vec(),
            recovery_codes: enrolment.recovery_codes.clone(),
        }
    }

    /// The code the account's authenticator shows now, after moving the clock to a fresh step.
    pub fn fresh_code(&self, account: &TestAccount) -> String {
        self.clock.advance(30);
        identity::totp_code(&account.totp_secret, self.service.now()).expect("a TOTP code")
    }

    /// Registers `bytes` as a document and assigns it; returns its id.
    pub fn document(&self, title: &str, bytes: Vec<u8>, target: AssignmentTarget) -> String {
        let document = self
            .block_on(self.service.register_document(
                Actor::Cli,
                title,
                "internal",
                Bytes::from(bytes),
            ))
            .expect("register the document");
        self.block_on(self.service.assign(Actor::Cli, &document.id, &target))
            .expect("assign it");
        document.id
    }

    /// Registers a document and assigns it to the user `username` alone; returns its id.
    pub fn document_for(&self, title: &str, bytes: Vec<u8>, username: &str) -> String {
        self.document(
            title,
            bytes,
            AssignmentTarget::User {
                username: username.into(),
            },
        )
    }

    /// Starts a stopped server again on the same data and address (as when the connection to it
    /// comes back); a running one is restarted.
    pub fn start_again(&mut self) {
        self.stop();
        self.relaunch();
    }

    /// Stops the server and starts it on the same data at another address (as when the server
    /// moves to a new host): clients that knew the old address find nothing there.
    pub fn move_to_new_address(&mut self) {
        self.stop();
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        self.base_url = format!("https://{free}");
        self.relaunch();
    }

    /// Stops the server (requests in flight finish).
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = self
                .runtime
                .block_on(running.shutdown(Duration::from_secs(5)));
        }
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copies the directory tree `from` into `to`.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("read the data directory") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            std::fs::create_dir_all(&target).expect("create a directory");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// A small valid one-page PDF whose content shows `title`, with `filler` more bytes in an
/// unreferenced stream (to make large documents cheaply).
pub fn sample_pdf(title: &str, filler: usize) -> Vec<u8> {
    use lopdf::{dictionary, Document, Object, Stream};
    let mut document = Document::with_version("1.7");
    let pages_id = document.new_object_id();
    let content = format!(
        "BT /F1 12 Tf 72 720 Td ({}) Tj ET",
        title.replace(['(', ')', '\\'], " ")
    );
    let content_id = document.add_object(Stream::new(dictionary! {}, content.into_bytes()));
    let font_id = document.add_object(
        dictionary! {"Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica"},
    );
    let page_id = document.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        "Contents" => content_id,
        "Resources" => dictionary! {"Font" => dictionary! {"F1" => font_id}},
    });
    document.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! {"Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1},
        ),
    );
    let catalog_id = document.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages_id});
    document.trailer.set("Root", catalog_id);
    if filler > 0 {
        let bytes: Vec<u8> = (0..filler).map(|i| b"0123456789abcdef"[i % 16]).collect();
        document.add_object(Stream::new(dictionary! {}, bytes));
    }
    let mut bytes = Vec::new();
    document.save_to(&mut bytes).expect("write the PDF");
    bytes
}

/// The bytes of an incremental update to `base` (a PDF with a classic cross-reference table,
/// such as [`sample_pdf`] writes) that adds one object holding `marker`: appended to `base` it
/// makes the next revision, with every earlier byte unchanged.
pub fn incremental_update(base: &[u8], marker: &str) -> Vec<u8> {
    let document = lopdf::Document::load_mem(base).expect("the base is a PDF");
    let root = document
        .trailer
        .get(b"Root")
        .and_then(lopdf::Object::as_reference)
        .expect("the base has a /Root");
    let size = document
        .trailer
        .get(b"Size")
        .and_then(lopdf::Object::as_i64)
        .expect("the base has a /Size");
    let text = String::from_utf8_lossy(base);
    let previous = text
        .rfind("startxref")
        .and_then(|at| text[at + 9..].split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("the base has a startxref");
    let object_at = base.len() + 1;
    let mut update = format!(
        "\n{size} 0 obj\n({})\nendobj\n",
        marker.replace(['(', ')', '\\'], " ")
    );
    let xref_at = base.len() + update.len();
    update.push_str(&format!(
        "xref\n{size} 1\n{object_at:010} 00000 n \ntrailer\n<< /Size {} /Root {} {} R /Prev {previous} >>\nstartxref\n{xref_at}\n%%EOF\n",
        size + 1,
        root.0,
        root.1
    ));
    update.into_bytes()
}

/// A TCP proxy on loopback that injects faults, from a seeded schedule, between a client and a
/// server: each new connection passes, is refused, is cut after some bytes in one direction, has
/// its answer thrown away after the server got the whole request (the server acts, the client
/// never hears), or is delayed; and one that starts well is cut 4–12 kB into the connection
/// (counted from its first byte, handshake included), so a client that keeps its connections
/// open for more requests meets faults too. Turned on and off with [`FaultyProxy::set_faults`],
/// which closes the connections open through the proxy: a client's kept connections are opened
/// again under the new setting. TLS passes through untouched.
pub struct FaultyProxy {
    address: std::net::SocketAddr,
    /// (setting number, faults on), moved on at each [`FaultyProxy::set_faults`]: the
    /// connections opened under an earlier number close.
    setting: tokio::sync::watch::Sender<(u64, bool)>,
    open: OpenConnections,
    connections: Arc<std::sync::atomic::AtomicU64>,
    cut_downloads: Arc<std::sync::atomic::AtomicU64>,
    cut_uploads: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    /// Starts a proxy to `target` on `runtime`, with faults off.
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        target: std::net::SocketAddr,
        seed: u64,
    ) -> FaultyProxy {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        use std::sync::atomic::{AtomicU64, Ordering};
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port for the proxy");
        let address = listener.local_addr().expect("the proxy's address");
        let (setting, setting_seen) = tokio::sync::watch::channel((0u64, false));
        let open = OpenConnections::default();
        let open_in_loop = Arc::clone(&open);
        let connections = Arc::new(AtomicU64::new(0));
        let cut_downloads = Arc::new(AtomicU64::new(0));
        let cut_uploads = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&connections);
        let faulty_connections = Arc::new(AtomicU64::new(0));
        let faulty_counter = Arc::clone(&faulty_connections);
        let cut_setting = Arc::clone(&cut_downloads);
        let cut_up_setting = Arc::clone(&cut_uploads);
        let task = runtime.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    break;
                };
                let number = counter.fetch_add(1, Ordering::Relaxed);
                // Faulty connections are numbered from when faults were turned on, so a schedule
                // does not shift with how many clean connections the set-up happened to open.
                // Registered under the setting it reads, both while the set of open connections
                // is held: `set_faults` moves the setting on while holding it too, so it waits
                // for every connection opened under an earlier setting.
                let mut closing = setting_seen.clone();
                let faulty = {
                    let mut open = lock_open(&open_in_loop);
                    let (opened_under, faulty) = *closing.borrow_and_update();
                    open.insert(number, opened_under);
                    faulty
                };
                let still_open = OpenConnection(number, Arc::clone(&open_in_loop));
                let n = if faulty {
                    faulty_counter.fetch_add(1, Ordering::Relaxed)
                } else {
                    number
                };
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                    seed.wrapping_mul(1_000_003).wrapping_add(n),
                );
                let cut = cut_downloads.load(Ordering::Relaxed);
                let cut_up = cut_uploads.load(Ordering::Relaxed);
                let plan = if faulty { rng.next_u32() % 100 } else { 0 };
                // Cut points spread over the TLS handshake and the first request and answer.
                let limit = u64::from(rng.next_u32() % 6_000);
                let delay = Duration::from_millis(u64::from(rng.next_u32() % 150));
                // A faulty connection that starts well is cut later, in one direction, 4–12 kB
                // from its first byte: after a few requests at most.
                let later = 4_000 + u64::from(rng.next_u32() % 8_192);
                let (later_up, later_down) = match (faulty, rng.next_u32() % 2) {
                    (false, _) => (None, None),
                    (true, 0) => (Some(later), None),
                    (true, _) => (None, Some(later)),
                };
                // Which request on the connection has its answer lost (1 to 3: a kept
                // connection's later requests lose answers too).
                let nth_request = 1 + rng.next_u32() % 3;
                let connection = async move {
                    let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    if cut > 0 {
                        // Every answer is cut somewhere in its first `cut` bytes.
                        let at = 1 + u64::from(rng.next_u32()) % cut;
                        return relay(client, server, None, Some(at)).await;
                    }
                    if cut_up > 0 {
                        // Every request is cut somewhere in its first `cut_up` bytes.
                        let at = 1 + u64::from(rng.next_u32()) % cut_up;
                        return relay(client, server, Some(at), None).await;
                    }
                    match plan {
                        0..=34 => relay(client, server, later_up, later_down).await,
                        35..=44 => drop((client, server)),
                        45..=59 => relay(client, server, Some(limit), None).await,
                        60..=74 => relay(client, server, None, Some(limit)).await,
                        75..=89 => lose_the_answer(client, server, nth_request).await,
                        _ => {
                            tokio::time::sleep(delay).await;
                            relay(client, server, later_up, later_down).await
                        }
                    }
                };
                tokio::spawn(async move {
                    // Closed (both sockets dropped) when the setting changes.
                    tokio::select! {
                        _ = connection => {}
                        _ = closing.changed() => {}
                    }
                    drop(still_open);
                });
            }
        });
        FaultyProxy {
            address,
            setting,
            open,
            connections,
            cut_downloads: cut_setting,
            cut_uploads: cut_up_setting,
            task,
        }
    }

    /// `https://127.0.0.1:PORT` of the proxy (the server's certificate names 127.0.0.1).
    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.address.port())
    }

    /// Turns fault injection on or off for connections opened from now on, and closes those open
    /// now, waiting until they are: a client that keeps connections opens new ones, under the new
    /// setting. Panics if they are not closed within five seconds.
    pub fn set_faults(&self, on: bool) {
        let now = {
            let _registering = lock_open(&self.open);
            let mut now = 0;
            self.setting.send_modify(|(setting, faulty)| {
                *setting += 1;
                *faulty = on;
                now = *setting;
            });
            now
        };
        self.wait_for_closes(now, Duration::from_secs(5));
    }

    /// Waits until every connection through the proxy has closed (its client or its server hung
    /// up, or a fault ended it). Panics if some are still open after `within`.
    pub fn wait_until_all_closed(&self, within: Duration) {
        self.wait_for_closes(u64::MAX, within);
    }

    /// Waits until no connection opened under a setting before `setting` is open; panics if one
    /// still is after `within`.
    fn wait_for_closes(&self, setting: u64, within: Duration) {
        let deadline = std::time::Instant::now() + within;
        while lock_open(&self.open)
            .values()
            .any(|opened| *opened < setting)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the proxy's connections did not close within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// From now on, cuts every new connection's answer at a random point within its first
    /// `bytes` bytes (0 turns this off): for interrupted large downloads.
    pub fn cut_answers_within(&self, bytes: u64) {
        self.cut_downloads
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// From now on, cuts every new connection's request at a random point within its first
    /// `bytes` bytes (0 turns this off): for interrupted large uploads.
    pub fn cut_requests_within(&self, bytes: u64) {
        self.cut_uploads
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many connections the proxy has taken.
    pub fn connections(&self) -> u64 {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The connections open through a [`FaultyProxy`] now (by number), each with the setting it was
/// opened under.
type OpenConnections = Arc<std::sync::Mutex<std::collections::BTreeMap<u64, u64>>>;

/// The proxy's open connections, whatever a panicking holder left.
fn lock_open(
    open: &OpenConnections,
) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, u64>> {
    open.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection through the proxy, forgotten when it ends.
struct OpenConnection(u64, OpenConnections);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        lock_open(&self.1).remove(&self.0);
    }
}

/// Relays the client's requests and their answers until its `nth` request (from 1) has reached
/// the server, then throws that answer away and closes: the server acts, the client never hears.
/// Requests are counted in the TLS stream as the client's encrypted records after the first (its
/// handshake Finished); a request long enough to take several records is cut between them
/// instead — a fault all the same.
async fn lose_the_answer(client: tokio::net::TcpStream, server: tokio::net::TcpStream, nth: u32) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let request_sent = Arc::new(AtomicBool::new(false));
    let sent_flag = Arc::clone(&request_sent);
    let up = async move {
        let mut buffer = vec![0u8; 8192];
        let mut header = Vec::with_capacity(5);
        let mut remaining = 0usize;
        let mut encrypted_records = 0u32;
        loop {
            let Ok(read) = client_read.read(&mut buffer).await else {
                return;
            };
            if read == 0 || server_write.write_all(&buffer[..read]).await.is_err() {
                return;
            }
            // Walk the TLS record headers (type, version, length) in what was forwarded.
            let mut at = 0;
            while at < read {
                if remaining > 0 {
                    let take = remaining.min(read - at);
                    remaining -= take;
                    at += take;
                    if remaining == 0 && encrypted_records > nth {
                        sent_flag.store(true, Ordering::SeqCst);
                    }
                    continue;
                }
                header.push(buffer[at]);
                at += 1;
                if header.len() == 5 {
                    if header[0] == 23 {
                        encrypted_records += 1;
                    }
                    remaining = usize::from(u16::from_be_bytes([header[3], header[4]]));
                    header.clear();
                }
            }
        }
    };
    let down = async move {
        let mut buffer = vec![0u8; 8192];
        loop {
            let Ok(read) = server_read.read(&mut buffer).await else {
                return;
            };
            if read == 0 {
                return;
            }
            if request_sent.load(Ordering::SeqCst) {
                // The answer: let the server finish writing it, then hang up on the client.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            if client_write.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Copies both ways; a direction with a limit is cut (both sockets closed) after that many bytes.
async fn relay(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    up_limit: Option<u64>,
    down_limit: Option<u64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    async fn copy(
        from: &mut tokio::net::tcp::OwnedReadHalf,
        to: &mut tokio::net::tcp::OwnedWriteHalf,
        limit: Option<u64>,
    ) {
        let mut sent = 0u64;
        let mut buffer = vec![0u8; 8192];
        loop {
            let Ok(read) = from.read(&mut buffer).await else {
                return;
            };
            if read == 0 {
                let _ = to.shutdown().await;
                return;
            }
            let allowed = match limit {
                Some(limit) => (limit.saturating_sub(sent) as usize).min(read),
                None => read,
            };
            if to.write_all(&buffer[..allowed]).await.is_err() {
                return;
            }
            sent += allowed as u64;
            if allowed < read {
                return;
            }
        }
    }
    // The first direction to end (or be cut) ends the connection.
    tokio::select! {
        _ = copy(&mut client_read, &mut server_write, up_limit) => {}
        _ = copy(&mut server_read, &mut client_write, down_limit) => {}
    }
}
