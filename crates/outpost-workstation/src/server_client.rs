//! The workstation's side of the wire: HTTPS to `outpost-server` with a pinned CA, sign-in with a
//! device key, device-signed refresh, pull pages, and downloads that resume at any byte and are
//! checked against their SHA-256 before anyone uses them. Blocking calls, meant for the sync
//! engine's own threads; nothing here touches the vault.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};
use outpost_protocol as wire;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::EncodePublicKey;
use sha2::{Digest, Sha256};

/// The most bytes one upload request carries.
pub const UPLOAD_CHUNK: usize = 4 * 1024 * 1024;

/// How much of a download is read at once (the cancel flag is checked between reads).
const DOWNLOAD_CHUNK: usize = 64 * 1024;
/// Where a download hands its bytes: (offset of the first byte, bytes) → kept, or why not.
pub type KeepPart<'a> = dyn FnMut(u64, &[u8]) -> Result<(), String> + 'a;

/// The most bytes a download hands over at once (one part kept in the vault).
pub const DOWNLOAD_PART: usize = 1024 * 1024;

/// A download reports its progress each time this many more bytes arrived (and at its end):
/// often enough for a progress bar, seldom enough not to wake the listener for every read.
const DOWNLOAD_PROGRESS_STEP: u64 = 256 * 1024;

/// Why a request to the server did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The server cannot be reached (no network, connection refused or reset, timeout).
    #[error("the server at {url} cannot be reached ({reason}); Outpost keeps working offline and tries again later")]
    Unreachable {
        /// The server's address.
        url: String,
        /// What the network said.
        reason: String,
    },
    /// The server's certificate is not issued by the pinned CA.
    #[error("the server's certificate is not from the pinned CA ({0}); check the server address, or ask the administrator for the right CA")]
    Untrusted(String),
    /// The pinned CA certificate cannot be used.
    #[error("the server's CA certificate cannot be used ({0}); paste its whole PEM text, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----")]
    BadCa(String),
    /// The server refused the request; `code` is the protocol's stable error code.
    #[error("{message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The stable code (`outpost_protocol::error_codes`).
        code: String,
        /// The server's sentence for people.
        message: String,
    },
    /// The server answered something the protocol does not allow.
    #[error("the server's answer does not follow the protocol ({0}); check that server and workstation versions match")]
    Malformed(String),
    /// Downloaded bytes do not match the document's hash; nothing of them is kept.
    #[error(
        "the downloaded bytes of document {document} do not match its SHA-256; they were discarded"
    )]
    HashMismatch {
        /// The document's id.
        document: String,
    },
    /// Downloaded bytes could not be kept on this workstation.
    #[error("the downloaded bytes could not be stored on this workstation ({0}); nothing is lost, the download resumes at the next sync")]
    NotKept(String),
    /// The operation was cancelled; what was downloaded so far is kept for resuming.
    #[error("cancelled")]
    Cancelled,
}

impl ServerError {
    /// The protocol's error code, when the server refused the request.
    pub fn code(&self) -> Option<&str> {
        match self {
            ServerError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether trying again later may work (the network or the server was unavailable).
    pub fn is_transient(&self) -> bool {
        match self {
            ServerError::Unreachable { .. } => true,
            ServerError::Refused { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// The workstation's device key pair (ECDSA P-256): enrolled with the server at first sign-in,
/// then proving the device on every sign-in and refresh.
pub struct DeviceKey {
    key: p256::ecdsa::SigningKey,
}

impl DeviceKey {
    /// A new key from `rng`.
    pub fn generate(mut rng: &mut dyn rand_core::CryptoRngCore) -> DeviceKey {
        DeviceKey {
            key: p256::ecdsa::SigningKey::random(&mut rng),
        }
    }

    /// The key from its 32-byte secret scalar (as the vault keeps it).
    pub fn from_secret_bytes(bytes: &[u8]) -> Option<DeviceKey> {
        p256::ecdsa::SigningKey::from_slice(bytes)
            .ok()
            .map(|key| DeviceKey { key })
    }

    /// The 32-byte secret scalar, for the vault to keep.
    pub fn secret_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(self.key.to_bytes().to_vec())
    }

    /// The public key as the server wants it: SubjectPublicKeyInfo DER, base64url.
    pub fn public_key(&self) -> String {
        match self.key.verifying_key().to_public_key_der() {
            Ok(der) => Base64UrlUnpadded::encode_string(der.as_bytes()),
            Err(_) => String::new(),
        }
    }

    /// An ECDSA P-256 / SHA-256 signature over `message`, DER, base64url.
    pub fn sign(&self, message: &str) -> String {
        let signature: p256::ecdsa::Signature = self.key.sign(message.as_bytes());
        Base64UrlUnpadded::encode_string(signature.to_der().as_bytes())
    }
}

/// PEM certificates as pasted by people (line breaks lost or changed in a mail or a form field)
/// rewritten as PEM parsers expect: each certificate's markers on lines of their own and its
/// base64 body in lines of 64 characters. Text without markers is returned as it is.
fn normalise_pem(text: &[u8]) -> Vec<u8> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = String::from_utf8_lossy(text);
    let mut out = String::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let Some(end) = after.find(END) else { break };
        let body: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        out.push_str(BEGIN);
        out.push('\n');
        for line in body.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str(END);
        out.push('\n');
        rest = &after[end + END.len()..];
    }
    if out.is_empty() {
        text.into_owned().into_bytes()
    } else {
        out.into_bytes()
    }
}

/// An HTTPS client for one server, trusting only the pinned CA. Clones share its pool of open
/// connections.
#[derive(Clone)]
pub struct ServerClient {
    base_url: String,
    agent: ureq::Agent,
}

impl ServerClient {
    /// A client for `base_url` (`https://host:port`) that trusts only `ca_pem` and gives up on a
    /// request after `timeout`.
    pub fn new(
        base_url: &str,
        ca_pem: &[u8],
        timeout: Duration,
    ) -> Result<ServerClient, ServerError> {
        let ca_pem = normalise_pem(ca_pem);
        let certificates: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&ca_pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(certificate)) => Some(Ok(certificate)),
                Ok(_) => None,
                Err(error) => Some(Err(error)),
            })
            .collect::<Result<_, _>>()
            .map_err(|_| ServerError::BadCa("it is not PEM text".into()))?;
        if certificates.is_empty() {
            return Err(ServerError::BadCa("no certificate in the PEM text".into()));
        }
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&certificates))
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .tls_config(tls)
            .build()
            .new_agent();
        Ok(ServerClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            agent,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    fn transport(&self, error: ureq::Error) -> ServerError {
        match error {
            ureq::Error::Tls(reason) => ServerError::Untrusted(reason.to_string()),
            ureq::Error::Rustls(reason) => ServerError::Untrusted(reason.to_string()),
            // rustls reports a certificate it refuses through the I/O error it returns.
            ureq::Error::Io(io)
                if io
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .is_some_and(|e| {
                        matches!(
                            e,
                            rustls::Error::InvalidCertificate(_)
                                | rustls::Error::NoCertificatesPresented
                        )
                    }) =>
            {
                ServerError::Untrusted(io.to_string())
            }
            other => ServerError::Unreachable {
                url: self.base_url.clone(),
                reason: other.to_string(),
            },
        }
    }

    /// Sends a request; a non-2xx answer becomes [`ServerError::Refused`].
    fn send(
        &self,
        request: ureq::http::Request<Vec<u8>>,
    ) -> Result<ureq::http::Response<ureq::Body>, ServerError> {
        let response = self.agent.run(request).map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let mut response = response;
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .unwrap_or_default();
        match serde_json::from_slice::<wire::ApiError>(&body) {
            Ok(error) => Err(ServerError::Refused {
                status,
                code: error.code,
                message: error.message,
            }),
            Err(_) => Err(ServerError::Malformed(format!(
                "HTTP {status} without an error body"
            ))),
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
    ) -> ureq::http::request::Builder {
        let builder = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        match token {
            Some(token) => builder.header("Authorization", format!("Bearer {token}")),
            None => builder,
        }
    }

    fn json<T: serde::de::DeserializeOwned>(
        response: ureq::http::Response<ureq::Body>,
    ) -> Result<T, ServerError> {
        let mut response = response;
        let body = response
            .body_mut()
            .with_config()
            .limit(16 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| ServerError::Malformed(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| ServerError::Malformed(e.to_string()))
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> Result<T, ServerError> {
        let request = self
            .request("GET", path, token)
            .body(Vec::new())
            .map_err(|e| ServerError::Malformed(e.to_string()))?;
        Self::json(self.send(request)?)
    }

    fn post<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
        body: &B,
    ) -> Result<T, ServerError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ServerError::Malformed(e.to_string()))?;
        let request = self
            .request("POST", path, token)
            .header("Content-Type", "application/json")
            .body(bytes)
            .map_err(|e| ServerError::Malformed(e.to_string()))?;
        Self::json(self.send(request)?)
    }

    /// The organisation CA's certificate (DER), over the pinned connection; `None` when the server
    /// has no CA.
    pub fn ca_certificate(&self) -> Result<Option<Vec<u8>>, ServerError> {
        self.public_der(wire::paths::CA_CERTIFICATE, 64 * 1024)
    }

    /// The organisation CA's current revocation list (DER), or `None` if the server runs no CA.
    pub fn revocation_list(&self) -> Result<Option<Vec<u8>>, ServerError> {
        self.public_der(wire::paths::CA_CRL, 16 * 1024 * 1024)
    }

    /// A public DER document at `path` (at most `limit` bytes); `None` if the server has none.
    fn public_der(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, ServerError> {
        let request = self
            .request("GET", path, None)
            .body(Vec::new())
            .map_err(|e| ServerError::Malformed(e.to_string()))?;
        let mut response = match self.send(request) {
            Err(ServerError::Refused {
                status: 404 | 503, ..
            }) => return Ok(None),
            other => other?,
        };
        let der = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| ServerError::Malformed(e.to_string()))?;
        Ok(Some(der))
    }

    /// Whether the server answers, and which protocol it speaks.
    pub fn health(&self) -> Result<wire::Health, ServerError> {
        self.get(wire::paths::HEALTH, None)
    }

    /// First sign-in from this workstation: enrols `key` as a device named `device_name`.
    pub fn enrol(
        &self,
        username: &str,
        password: &str,
        second_factor: wire::SecondFactor,
        device_name: &str,
        key: &DeviceKey,
    ) -> Result<wire::Session, ServerError> {
        let request = wire::LoginRequest {
            username: username.to_string(),
            password: password.to_string(),
            second_factor,
            device: wire::DeviceLogin::Enrol {
                name: device_name.to_string(),
                public_key: key.public_key(),
            },
        };
        self.post(wire::paths::LOGIN, None, &request)
    }

    /// A later sign-in from an enrolled device, proven with its key.
    pub fn sign_in(
        &self,
        username: &str,
        password: &str,
        second_factor: wire::SecondFactor,
        device_id: &str,
        key: &DeviceKey,
    ) -> Result<wire::Session, ServerError> {
        let signature = key.sign(&wire::device_login_message(
            device_id,
            username,
            &second_factor,
        ));
        let request = wire::LoginRequest {
            username: username.to_string(),
            password: password.to_string(),
            second_factor,
            device: wire::DeviceLogin::Enrolled {
                device_id: device_id.to_string(),
                signature,
            },
        };
        self.post(wire::paths::LOGIN, None, &request)
    }

    /// Renews a session with its refresh token (issued to `device_id`), signed by the device key.
    pub fn refresh(
        &self,
        device_id: &str,
        refresh_token: &str,
        key: &DeviceKey,
    ) -> Result<wire::Session, ServerError> {
        let request = wire::RefreshRequest {
            device_id: device_id.to_string(),
            refresh_token: refresh_token.to_string(),
            signature: key.sign(&wire::device_refresh_message(device_id, refresh_token)),
        };
        self.post(wire::paths::REFRESH, None, &request)
    }

    /// One page of changes after (`cursor`, `after`).
    pub fn pull_page(
        &self,
        access_token: &str,
        cursor: i64,
        after: Option<&str>,
        limit: u32,
    ) -> Result<wire::PullPage, ServerError> {
        let mut path = format!("{}?cursor={cursor}&limit={limit}", wire::paths::SYNC_PULL);
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        self.get(&path, Some(access_token))
    }

    /// A whole pull round from `cursor`: every change, and the cursor to store once they are
    /// applied (see docs/protocol.md).
    pub fn pull_round(
        &self,
        access_token: &str,
        cursor: i64,
        page_size: u32,
    ) -> Result<(Vec<wire::DocumentChange>, i64), ServerError> {
        self.pull_round_counted(access_token, cursor, page_size)
            .map(|(changes, cursor, _)| (changes, cursor))
    }

    /// [`ServerClient::pull_round`], with the count of certificates the server's CA has revoked
    /// (when the server says).
    pub fn pull_round_counted(
        &self,
        access_token: &str,
        cursor: i64,
        page_size: u32,
    ) -> Result<(Vec<wire::DocumentChange>, i64, Option<u64>), ServerError> {
        let mut changes = Vec::new();
        let (mut position, mut after) = (cursor, None::<String>);
        loop {
            let page = self.pull_page(access_token, position, after.as_deref(), page_size)?;
            let progressed = !page.changes.is_empty();
            changes.extend(page.changes);
            if page.complete {
                return Ok((changes, page.next_cursor, page.revoked_certificates));
            }
            if !progressed || page.next_cursor < position {
                return Err(ServerError::Malformed(
                    "an incomplete pull page that does not move forward".into(),
                ));
            }
            position = page.next_cursor;
            after = page.next_after;
        }
    }

    /// Downloads the rest of `document`'s bytes into `partial` (which holds what an earlier,
    /// interrupted attempt got), reporting (bytes so far, total) to `progress` and stopping at
    /// `cancel`. When the bytes are complete their SHA-256 is checked: a mismatch empties
    /// `partial` and is an error.
    pub fn download(
        &self,
        access_token: &str,
        document: &wire::DocumentInfo,
        partial: &mut Vec<u8>,
        progress: &mut dyn FnMut(u64, u64),
        cancel: &AtomicBool,
    ) -> Result<(), ServerError> {
        if partial.len() as u64 > document.size {
            partial.clear();
        }
        let held = partial.len() as u64;
        let outcome = self.download_from(
            access_token,
            document,
            held,
            &mut |_, bytes| {
                partial.extend_from_slice(bytes);
                Ok(())
            },
            progress,
            cancel,
        );
        if matches!(outcome, Err(ServerError::Malformed(_))) {
            partial.clear();
        }
        outcome?;
        if hex::encode(Sha256::digest(partial.as_slice())) != document.sha256 {
            partial.clear();
            return Err(ServerError::HashMismatch {
                document: document.id.clone(),
            });
        }
        Ok(())
    }

    /// Downloads `document`'s bytes from byte `held` on (what an earlier, interrupted attempt
    /// kept), handing them to `keep` in order as (first byte's offset, bytes), at most
    /// [`DOWNLOAD_PART`] bytes at a time — also the bytes that arrived before a connection broke,
    /// so nothing received has to be fetched again. Reports (bytes so far, total) to `progress`
    /// at the first read, every [`DOWNLOAD_PROGRESS_STEP`] bytes, and at the end (when it stops
    /// early, the bytes kept); stops at `cancel`. Ends `Ok` when all `document.size` bytes were handed over; checking
    /// their hash is the caller's (it holds them). [`ServerError::Malformed`] means the kept bytes
    /// cannot be resumed from (the server refused the range or sent too much): start again at 0.
    pub fn download_from(
        &self,
        access_token: &str,
        document: &wire::DocumentInfo,
        held: u64,
        keep: &mut KeepPart<'_>,
        progress: &mut dyn FnMut(u64, u64),
        cancel: &AtomicBool,
    ) -> Result<(), ServerError> {
        let total = document.size;
        if held > total {
            return Err(ServerError::Malformed(format!(
                "{held} bytes are held of a document of {total} bytes; the download starts over"
            )));
        }
        if held == total {
            return Ok(());
        }
        let path = format!("{}{}/content", wire::paths::DOCUMENT_PREFIX, document.id);
        let request = self
            .request("GET", &path, Some(access_token))
            .header("Range", format!("bytes={held}-"))
            .body(Vec::new())
            .map_err(|e| ServerError::Malformed(e.to_string()))?;
        let mut response = match self.send(request) {
            Err(ServerError::Refused { status: 416, .. }) => {
                return Err(ServerError::Malformed(
                    "the server refused to resume; the download starts over".into(),
                ));
            }
            other => other?,
        };
        if response.status().as_u16() != 206 {
            return Err(ServerError::Malformed(
                "the server did not answer the range request with 206".into(),
            ));
        }
        let mut reader = response.body_mut().with_config().limit(total + 1).reader();
        let mut part = Vec::with_capacity(DOWNLOAD_PART);
        let mut part_start = held;
        let mut chunk = vec![0u8; DOWNLOAD_CHUNK];
        let mut reported: Option<u64> = None;
        let mut hand_over = |part: &mut Vec<u8>, part_start: &mut u64| -> Result<(), ServerError> {
            if part.is_empty() {
                return Ok(());
            }
            keep(*part_start, part).map_err(ServerError::NotKept)?;
            *part_start += part.len() as u64;
            part.clear();
            Ok(())
        };
        let stopped = loop {
            if cancel.load(Ordering::Relaxed) {
                break Some(ServerError::Cancelled);
            }
            let read = match reader.read(&mut chunk) {
                Ok(0) => break None,
                Ok(read) => read,
                Err(error) => {
                    break Some(ServerError::Unreachable {
                        url: self.base_url.clone(),
                        reason: error.to_string(),
                    })
                }
            };
            let reached = part_start + (part.len() + read) as u64;
            if reached > total {
                return Err(ServerError::Malformed(
                    "the server sent more bytes than the document has".into(),
                ));
            }
            part.extend_from_slice(&chunk[..read]);
            if reported.is_none_or(|r| reached - r >= DOWNLOAD_PROGRESS_STEP) || reached == total {
                progress(reached, total);
                reported = Some(reached);
            }
            if part.len() >= DOWNLOAD_PART {
                hand_over(&mut part, &mut part_start)?;
            }
        };
        // What arrived is kept, also when the connection broke or the user cancelled.
        hand_over(&mut part, &mut part_start)?;
        if reported.is_some_and(|r| r != part_start) {
            progress(part_start, total);
        }
        if let Some(error) = stopped {
            return Err(error);
        }
        if part_start < total {
            return Err(ServerError::Unreachable {
                url: self.base_url.clone(),
                reason: format!("the download stopped at {part_start} of {total} bytes"),
            });
        }
        Ok(())
    }

    /// A document visible to the user, as the server holds it now.
    pub fn document(
        &self,
        access_token: &str,
        document_id: &str,
    ) -> Result<wire::DocumentInfo, ServerError> {
        self.get(
            &format!("{}{document_id}", wire::paths::DOCUMENT_PREFIX),
            Some(access_token),
        )
    }

    /// Uploads `bytes` (named by their SHA-256) so that a push can refer to them, resuming where
    /// the server's copy stops: bytes the server already holds — from an earlier, interrupted
    /// attempt — are not sent again. Sends at most [`UPLOAD_CHUNK`] bytes per request, reporting
    /// (bytes held, total) to `progress` and stopping at `cancel`.
    pub fn upload(
        &self,
        access_token: &str,
        bytes: &[u8],
        progress: &mut dyn FnMut(u64, u64),
        cancel: &AtomicBool,
    ) -> Result<String, ServerError> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let size = bytes.len() as u64;
        let path = format!("{}{sha256}?size={size}", wire::paths::SYNC_UPLOAD_PREFIX);
        let mut status: wire::UploadStatus = self.get(&path, Some(access_token))?;
        loop {
            if status.sha256 != sha256 || status.size != size || status.received > size {
                return Err(ServerError::Malformed(
                    "the server described another upload than the one asked about".into(),
                ));
            }
            progress(status.received, size);
            if status.complete {
                return Ok(sha256);
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(ServerError::Cancelled);
            }
            let start = usize::try_from(status.received).unwrap_or(usize::MAX);
            let end = start.saturating_add(UPLOAD_CHUNK).min(bytes.len());
            let part = bytes.get(start..end).unwrap_or_default().to_vec();
            let request = self
                .request("PUT", &format!("{path}&offset={start}"), Some(access_token))
                .header("Content-Type", "application/octet-stream")
                .body(part)
                .map_err(|e| ServerError::Malformed(e.to_string()))?;
            let next: wire::UploadStatus = Self::json(self.send(request)?)?;
            if !next.complete && next.received <= status.received {
                return Err(ServerError::Malformed(
                    "the server took none of the uploaded bytes".into(),
                ));
            }
            status = next;
        }
    }

    /// Pushes operations from the outbox; one result per operation, in order.
    pub fn push(
        &self,
        access_token: &str,
        ops: Vec<wire::PushOp>,
    ) -> Result<wire::PushResponse, ServerError> {
        self.post(
            wire::paths::SYNC_PUSH,
            Some(access_token),
            &wire::PushRequest { ops },
        )
    }

    /// Ends this device's session on the server: its refresh token stops working, so syncing
    /// again takes the user's sign-in.
    pub fn logout(&self, access_token: &str) -> Result<(), ServerError> {
        let request = self
            .request("POST", wire::paths::LOGOUT, Some(access_token))
            .body(Vec::new())
            .map_err(|e| ServerError::Malformed(e.to_string()))?;
        self.send(request)?;
        Ok(())
    }

    /// The tutorial progress of the trainees the caller oversees (a supervisor's unit).
    pub fn training(&self, access_token: &str) -> Result<wire::TrainingOverview, ServerError> {
        self.get(wire::paths::TRAINING, Some(access_token))
    }

    /// Uploads the next entries of this device's audit chain.
    pub fn upload_audit(
        &self,
        access_token: &str,
        entries: Vec<wire::AuditEntryUpload>,
    ) -> Result<wire::AuditUploadResult, ServerError> {
        self.post(
            wire::paths::SYNC_AUDIT,
            Some(access_token),
            &wire::AuditUpload { entries },
        )
    }

    /// Asks the organisation's CA for a signer certificate for the key in `csr_der`.
    pub fn request_certificate(
        &self,
        access_token: &str,
        csr_der: &[u8],
    ) -> Result<wire::CertificateIssued, ServerError> {
        let request = wire::CertificateRequest {
            csr: Base64UrlUnpadded::encode_string(csr_der),
        };
        self.post(wire::paths::CERTIFICATES, Some(access_token), &request)
    }
}

#[cfg(test)]
mod tests {
    use super::normalise_pem;

    #[test]
    fn a_pasted_certificate_without_line_breaks_is_rewritten_as_pem() {
        let pasted = b"-----BEGIN CERTIFICATE-----MIIBuTCCAV+gAwIBAgIUL9DKC9oIJ3/j oTvKR8GSPQK/PtAw-----END CERTIFICATE-----";
        assert_eq!(
            String::from_utf8(normalise_pem(pasted)).unwrap(),
            "-----BEGIN CERTIFICATE-----\nMIIBuTCCAV+gAwIBAgIUL9DKC9oIJ3/joTvKR8GSPQK/PtAw\n-----END CERTIFICATE-----\n"
        );
        assert_eq!(normalise_pem(b"not a certificate"), b"not a certificate");
    }
}
