//! The tutorial's practice server: a real Outpost server that the app runs inside itself, on
//! loopback, so a trainee practises every online step — working offline, syncing, a signature
//! conflict — without any real server.
//!
//! It is the same service and HTTP API as the central server, with three differences:
//! its health answer says `practice` (a real vault refuses to connect to it, and the tutorial
//! connects to nothing else); its organisation's CA is a training CA ("TRAINING — NOT VALID" in
//! every certificate it issues, which real vaults refuse); and it holds practice material only —
//! the practice documents it was seeded with and what the trainee's sandbox sends it. Its data
//! live in a folder inside the trainee's sandbox and go when the tutorial is reset.
//!
//! A scripted colleague works on the same documents ([`PracticeServer::colleague_signs`]) so the
//! trainee meets a real signature conflict.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use outpost_protocol::{self as wire, Role};
#[cfg(feature = "practice-host")]
use outpost_workstation::{PracticeDocuments, PracticeLogin, PracticeServerHost};
use zeroize::Zeroizing;

use crate::ca::{CaError, CertificateAuthority};
use crate::clock::{new_token, Clock, Entropy};
use crate::serve::{open_service, start, RunningServer, StartError, StorageConfig};
use crate::service::{Actor, NewUser, Policy, Service, ServiceError};
use crate::tls::{embedded_pair, server_config, TlsError};

/// The practice organisation; its CA's subject, and so every certificate it issues, carries the
/// tutorial's mark.
pub const PRACTICE_ORGANISATION: &str = "Outpost Practice — TRAINING — NOT VALID";
/// The unit the trainee and the colleague belong to.
pub const PRACTICE_UNIT: &str = "Practice unit";
/// The scripted colleague's login name.
pub const PRACTICE_COLLEAGUE: &str = "practice-colleague";
/// The scripted colleague's name, as their signature shows it.
pub const PRACTICE_COLLEAGUE_NAME: &str = "Pavel Petrov (practice)";
/// The practice CA's key is encrypted with this. It is no secret — the CA is a training CA that
/// real vaults refuse — but the CA's key file format requires a passphrase.
const PRACTICE_CA_PASSPHRASE: &str = "outpost practice CA: not a secret";

/// Why the practice server could not do something.
#[derive(Debug, thiserror::Error)]
pub enum PracticeError {
    /// Its storage or listener could not be opened.
    #[error("the practice server cannot start: {0}")]
    Start(#[from] StartError),
    /// Its HTTPS files could not be made.
    #[error("the practice server's HTTPS files cannot be made: {0}")]
    Tls(#[from] TlsError),
    /// Its training CA could not be made or opened.
    #[error("the practice server's training CA cannot be opened: {0}; reset the tutorial to make it afresh")]
    Ca(#[from] CaError),
    /// The service refused something the practice server does.
    #[error("the practice server: {0}")]
    Service(#[from] ServiceError),
    /// The practice documents could not be made.
    #[error("the practice documents cannot be made: {0}")]
    Documents(String),
    /// The trainee's credentials for a run could not be made.
    #[error("the practice server made no credentials for this run: {0}")]
    Credentials(String),
    /// The colleague could not sign.
    #[error("the practice colleague cannot sign: {0}")]
    Colleague(String),
    /// A file of the practice server could not be read or written.
    #[error("{path}: {source}; reset the tutorial to make the practice server afresh")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Its runtime could not be made.
    #[error("the practice server cannot run: {0}")]
    Runtime(std::io::Error),
}

/// Where the practice server listens and how the trainee's sandbox signs in to it. The password
/// and the recovery code are made afresh each time it goes online and are never written down.
pub struct PracticeEndpoint {
    /// `https://127.0.0.1:PORT`.
    pub base_url: String,
    /// The CA certificate to pin (PEM).
    pub ca_pem: String,
    /// The trainee's login name there.
    pub username: String,
    /// Their password for this run.
    pub password: Zeroizing<String>,
    /// A single-use recovery code as the second factor for this run.
    pub recovery_code: Zeroizing<String>,
}

impl std::fmt::Debug for PracticeEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PracticeEndpoint")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The practice server of one trainee's sandbox: offline (not listening) until
/// [`PracticeServer::go_online`].
pub struct PracticeServer {
    runtime: Option<tokio::runtime::Runtime>,
    service: Arc<Service>,
    running: Option<RunningServer>,
    dir: PathBuf,
    trainee: String,
    entropy: Arc<dyn Entropy>,
    port: Option<u16>,
}

impl PracticeServer {
    /// Opens the practice server whose data live in `dir` for `trainee`. The first time it is
    /// made: the practice unit, the trainee (staff) and the colleague, the training CA, and the
    /// documents `documents` makes (title, PDF bytes), assigned to the unit.
    pub fn open(
        dir: &Path,
        trainee: &str,
        documents: &mut dyn FnMut() -> Result<Vec<(String, Vec<u8>)>, String>,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
    ) -> Result<PracticeServer, PracticeError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("outpost-practice-server")
            .enable_all()
            .build()
            .map_err(PracticeError::Runtime)?;
        let policy = Policy {
            // The practice server signs nothing for the long term: no time-stamps to fetch.
            extend_signatures: false,
            practice: true,
            ..Policy::default()
        };
        let service = runtime.block_on(async {
            let mut service = open_service(
                &StorageConfig::in_dir(dir),
                clock.clone(),
                entropy.clone(),
                policy,
            )
            .await?;
            let ca_dir = dir.join("ca");
            let ca = if ca_dir.join("ca.pem").exists() {
                CertificateAuthority::open(&ca_dir, PRACTICE_ORGANISATION, PRACTICE_CA_PASSPHRASE)?
            } else {
                CertificateAuthority::init(
                    &ca_dir,
                    PRACTICE_ORGANISATION,
                    PRACTICE_CA_PASSPHRASE,
                    clock.now(),
                    &*entropy,
                )?
            };
            service = service.with_certificate_authority(Arc::new(ca))?;
            seed(&service, trainee, &*entropy, documents).await?;
            Ok::<_, PracticeError>(Arc::new(service))
        })?;
        Ok(PracticeServer {
            runtime: Some(runtime),
            service,
            running: None,
            dir: dir.to_path_buf(),
            trainee: trainee.to_string(),
            entropy,
            port: None,
        })
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        match &self.runtime {
            Some(runtime) => runtime,
            // Taken only by `drop`.
            None => unreachable!("the practice server's runtime is there until it is dropped"),
        }
    }

    /// Whether it is listening.
    pub fn is_online(&self) -> bool {
        self.running.is_some()
    }

    /// Starts listening on loopback (on the port of its last run when it is free) and returns
    /// where, with credentials made for this run: a new password and a new single-use recovery
    /// code for the trainee. Already online, it only makes new credentials.
    pub fn go_online(&mut self) -> Result<PracticeEndpoint, PracticeError> {
        let files = embedded_pair(&self.dir, &[], self.service.now())?;
        if self.running.is_none() {
            let tls = server_config(&files)?;
            let listener = self
                .port
                .and_then(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).ok())
                .map_or_else(|| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)), Ok)
                .map_err(|source| StartError::Listen {
                    address: "127.0.0.1".into(),
                    source,
                })?;
            let runtime = self.runtime().handle().clone();
            let _entered = runtime.enter();
            let running = start(self.service.clone(), listener, tls)?;
            self.port = Some(running.address().port());
            self.running = Some(running);
        }
        let ca_path = files
            .ca_certificate
            .unwrap_or_else(|| self.dir.join("tls/ca.pem"));
        let ca_pem = std::fs::read_to_string(&ca_path).map_err(|source| PracticeError::Io {
            path: ca_path,
            source,
        })?;
        let (password, recovery_code) = self.runtime().block_on(fresh_credentials(
            &self.service,
            &self.trainee,
            &*self.entropy,
        ))?;
        Ok(PracticeEndpoint {
            base_url: format!("https://127.0.0.1:{}", self.port.unwrap_or_default()),
            ca_pem,
            username: self.trainee.clone(),
            password,
            recovery_code,
        })
    }

    /// Stops listening (requests in flight get a moment to finish): to the trainee's workstation
    /// the server is unreachable, as a real one is when the connection drops. Its data stay.
    pub fn go_offline(&mut self) {
        if let Some(running) = self.running.take() {
            if let Err(error) = self
                .runtime()
                .block_on(running.shutdown(Duration::from_secs(2)))
            {
                tracing::warn!(%error, "the practice server stopped with an error");
            }
        }
    }

    /// The scripted colleague signs the document `document_id` on its current head, through the
    /// service as any workstation would (login, certificate from the training CA, a new revision
    /// pushed on the head). Once per `occasion` (letters, digits and dashes): returns whether
    /// they signed now.
    pub fn colleague_signs(
        &self,
        document_id: &str,
        occasion: &str,
    ) -> Result<bool, PracticeError> {
        let marker = self.dir.join("colleague-signed");
        let occasion: String = occasion
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let done = marker.join(format!(
            "{}-{occasion}",
            crate::service::check_id("document", document_id)?
        ));
        if done.exists() {
            return Ok(false);
        }
        self.runtime()
            .block_on(colleague_signs(&self.service, document_id, &*self.entropy))?;
        std::fs::create_dir_all(&marker)
            .and_then(|()| std::fs::write(&done, b"signed\n"))
            .map_err(|source| PracticeError::Io { path: done, source })?;
        Ok(true)
    }
}

impl Drop for PracticeServer {
    fn drop(&mut self) {
        // No waiting here (a drop may happen inside another runtime): the runtime's end stops
        // the listener and its tasks.
        drop(self.running.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Makes the practice unit, the users and the documents, whichever is missing.
async fn seed(
    service: &Service,
    trainee: &str,
    entropy: &dyn Entropy,
    documents: &mut dyn FnMut() -> Result<Vec<(String, Vec<u8>)>, String>,
) -> Result<(), PracticeError> {
    if !service
        .units()
        .await?
        .iter()
        .any(|u| u.name == PRACTICE_UNIT)
    {
        service.create_unit(Actor::Cli, PRACTICE_UNIT).await?;
    }
    let users = service.users().await?;
    for (username, display_name) in [
        (trainee, trainee),
        (PRACTICE_COLLEAGUE, PRACTICE_COLLEAGUE_NAME),
    ] {
        if users.iter().any(|u| u.username == username) {
            continue;
        }
        let password = new_token(entropy);
        service
            .create_user(
                Actor::Cli,
                NewUser {
                    username: username.into(),
                    display_name: display_name.into(),
                    // Staff: a trainee role could use only the tutorial's progress record.
                    role: Role::Staff,
                    unit: Some(PRACTICE_UNIT.into()),
                    password,
                },
            )
            .await?;
    }
    if service.all_documents().await?.is_empty() {
        let documents = documents().map_err(PracticeError::Documents)?;
        crate::demo::register_for_unit(service, documents, "practice", PRACTICE_UNIT).await?;
    }
    Ok(())
}

/// Gives `username` a new password and second factor; returns the password and one recovery code.
async fn fresh_credentials(
    service: &Service,
    username: &str,
    entropy: &dyn Entropy,
) -> Result<(Zeroizing<String>, Zeroizing<String>), PracticeError> {
    let password = Zeroizing::new(new_token(entropy));
    service
        .reset_password(Actor::Cli, username, &password)
        .await?;
    service.unlock_user(Actor::Cli, username).await?;
    let enrolment = service.enrol_second_factor(Actor::Cli, username).await?;
    let code = enrolment
        .recovery_codes
        .first()
        .cloned()
        .ok_or_else(|| PracticeError::Credentials("no recovery code was made".into()))?;
    Ok((password, Zeroizing::new(code)))
}

/// The colleague signs: logs in from a workstation of their own, has the training CA certify a
/// new key, signs the document's head (invisibly, so a certified document stays valid) and
/// pushes the new revision on that head.
async fn colleague_signs(
    service: &Service,
    document_id: &str,
    entropy: &dyn Entropy,
) -> Result<(), PracticeError> {
    let failed = |e: &dyn std::fmt::Display| PracticeError::Colleague(e.to_string());
    let (password, code) = fresh_credentials(service, PRACTICE_COLLEAGUE, entropy).await?;
    let device = rcgen::KeyPair::generate().map_err(|e| failed(&e))?;
    let public_key = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(rcgen::PublicKeyData::subject_public_key_info(&device))
    };
    let session = service
        .login(
            &wire::LoginRequest {
                username: PRACTICE_COLLEAGUE.into(),
                password: password.to_string(),
                second_factor: wire::SecondFactor::RecoveryCode {
                    code: code.to_string(),
                },
                device: wire::DeviceLogin::Enrol {
                    name: "Colleague's workstation (practice)".into(),
                    public_key,
                },
            },
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        )
        .await?;
    let caller = service
        .authenticate(Some(session.access_token.as_str()))
        .await?;

    let key = rcgen::KeyPair::generate().map_err(|e| failed(&e))?;
    let request = rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|params| params.serialize_request(&key))
        .map_err(|e| failed(&e))?;
    let issued = service
        .issue_certificate(&caller, request.der().as_ref())
        .await?;
    let decode = |text: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|e| failed(&e))
    };
    let certificate = decode(&issued.certificate)?;
    let chain = issued
        .chain
        .iter()
        .map(|c| decode(c))
        .collect::<Result<Vec<_>, _>>()?;
    let signer =
        outpost_pdf::SoftwareSigner::from_pkcs8_der(&key.serialize_der(), &certificate, &chain)
            .map_err(|e| failed(&e))?;

    let document = service.document(&caller, document_id).await?;
    let head = service
        .blobs()
        .get(&document.sha256)
        .await
        .map_err(ServiceError::from)?;
    let signed = outpost_pdf::sign_pdf(
        &head,
        &outpost_pdf::SignatureRequest {
            page: 1,
            mark: None,
            reason: "Checked by the unit's duty officer (practice)".into(),
            signer_name: PRACTICE_COLLEAGUE_NAME.into(),
            location: Some(PRACTICE_UNIT.into()),
            signing_time_ms: service.now().saturating_mul(1000),
            certify: None,
            reserved_bytes: outpost_pdf::DEFAULT_RESERVED_BYTES,
        },
        &signer,
        // An invisible signature draws no text.
        Path::new(""),
    )
    .map_err(|e| failed(&e))?;
    let appended = signed.get(head.len()..).unwrap_or_default().to_vec();
    let sha256 = service
        .blobs()
        .put(signed.into())
        .await
        .map_err(ServiceError::from)?;
    let appended_sha256 = crate::blobs::sha256_hex(&appended);
    service
        .blobs()
        .put(appended.into())
        .await
        .map_err(ServiceError::from)?;
    let answer = service
        .push(
            &caller,
            &wire::PushRequest {
                ops: vec![wire::PushOp {
                    op_id: uuid::Uuid::from_bytes(random_bytes(entropy)).to_string(),
                    change: wire::OpChange::Revision {
                        document_id: document.id.clone(),
                        base_sha256: document.sha256.clone(),
                        sha256,
                        appended_sha256,
                        cause: "signed".into(),
                    },
                }],
            },
        )
        .await?;
    match answer.results.first().map(|r| &r.outcome) {
        Some(wire::OpOutcome::Applied | wire::OpOutcome::AlreadyApplied) => Ok(()),
        other => Err(PracticeError::Colleague(format!(
            "the server did not take the colleague's signature: {other:?}"
        ))),
    }
}

fn random_bytes(entropy: &dyn Entropy) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    entropy.fill(&mut bytes);
    // A version 4 UUID.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}

/// The practice server as the workstation's tutorial sees it ([`PracticeServerHost`]): at most
/// one open, that of the tutorial in hand, on the system clock and the OS's randomness.
#[cfg(feature = "practice-host")]
#[derive(Default)]
pub struct EmbeddedPracticeServer {
    open: std::sync::Mutex<Option<(PathBuf, PracticeServer)>>,
    /// Whether it listens, readable without waiting for a switch in progress.
    online: std::sync::atomic::AtomicBool,
}

#[cfg(feature = "practice-host")]
impl EmbeddedPracticeServer {
    fn open_one(&self) -> std::sync::MutexGuard<'_, Option<(PathBuf, PracticeServer)>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(feature = "practice-host")]
impl PracticeServerHost for EmbeddedPracticeServer {
    fn open(
        &self,
        dir: &Path,
        trainee: &str,
        documents: &mut PracticeDocuments<'_>,
    ) -> Result<(), String> {
        let mut open = self.open_one();
        if open.as_ref().is_some_and(|(d, _)| d == dir) {
            return Ok(());
        }
        *open = None;
        self.online
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let server = PracticeServer::open(
            dir,
            trainee,
            documents,
            Arc::new(crate::clock::SystemClock),
            Arc::new(crate::clock::OsEntropy),
        )
        .map_err(|e| e.to_string())?;
        *open = Some((dir.to_path_buf(), server));
        Ok(())
    }

    fn go_online(&self) -> Result<PracticeLogin, String> {
        let mut open = self.open_one();
        let (_, server) = open
            .as_mut()
            .ok_or("the practice server is not running: press Go online in the lessons panel")?;
        let endpoint = server.go_online().map_err(|e| e.to_string())?;
        self.online.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(PracticeLogin {
            base_url: endpoint.base_url,
            ca_pem: endpoint.ca_pem,
            username: endpoint.username,
            password: endpoint.password,
            recovery_code: endpoint.recovery_code,
        })
    }

    fn go_offline(&self) {
        if let Some((_, server)) = self.open_one().as_mut() {
            server.go_offline();
        }
        self.online
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    fn close(&self) {
        let closing = self.open_one().take();
        self.online
            .store(false, std::sync::atomic::Ordering::SeqCst);
        if let Some((_, mut server)) = closing {
            server.go_offline();
        }
    }

    fn is_online(&self) -> bool {
        self.online.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn colleague_signs(&self, document_id: &str, occasion: &str) -> Result<bool, String> {
        let open = self.open_one();
        let (_, server) = open
            .as_ref()
            .ok_or("the practice server is not running: press Go online in the lessons panel")?;
        server
            .colleague_signs(document_id, occasion)
            .map_err(|e| e.to_string())
    }
}
