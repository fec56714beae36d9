//! The wire types between an Outpost workstation and the Outpost server.
//!
//! Plain serde data and nothing else: no I/O, no crypto, no storage. Both sides depend on this
//! crate, so a change here is a change to the protocol: bump [`PROTOCOL_VERSION`] when an old peer
//! could misread the new shape. Every endpoint lives under [`API_PREFIX`]; the paths are the
//! constants in [`paths`].
//!
//! Identifiers are UUIDs in their hyphenated text form; times are Unix seconds (UTC); binary values
//! (public keys, signatures) are unpadded base64url; document hashes are lowercase hex SHA-256.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks; the health endpoint reports it.
pub const PROTOCOL_VERSION: u32 = 1;

/// The prefix of every endpoint.
pub const API_PREFIX: &str = "/api/v1";

/// The endpoint paths (relative to the server's origin).
pub mod paths {
    /// `GET`: liveness and protocol version ([`crate::Health`]); no authentication.
    pub const HEALTH: &str = "/api/v1/health";
    /// `POST` [`crate::LoginRequest`] → [`crate::Session`].
    pub const LOGIN: &str = "/api/v1/auth/login";
    /// `POST` [`crate::RefreshRequest`] → [`crate::Session`].
    pub const REFRESH: &str = "/api/v1/auth/refresh";
    /// `POST` (authenticated, empty body): ends this device's session (access and refresh tokens).
    pub const LOGOUT: &str = "/api/v1/auth/logout";
    /// `GET` (authenticated) → [`crate::UserInfo`].
    pub const ME: &str = "/api/v1/me";
    /// `GET` (authenticated) → [`crate::DocumentList`]: the documents assigned to the caller or the
    /// caller's unit.
    pub const DOCUMENTS: &str = "/api/v1/documents";
    /// `GET /api/v1/documents/{id}` → [`crate::DocumentInfo`]; `.../{id}/content` → the PDF bytes.
    pub const DOCUMENT_PREFIX: &str = "/api/v1/documents/";
    /// `POST` (admin) the PDF bytes as the body, `?title=…&classification=…` → [`crate::DocumentInfo`].
    pub const ADMIN_DOCUMENTS: &str = "/api/v1/admin/documents";
    /// `POST` (admin) [`crate::AssignmentRequest`] → [`crate::AssignmentInfo`].
    pub const ADMIN_ASSIGNMENTS: &str = "/api/v1/admin/assignments";
    /// `POST` (admin) [`crate::AssignmentRequest`]: revokes that assignment.
    pub const ADMIN_ASSIGNMENTS_REVOKE: &str = "/api/v1/admin/assignments/revoke";
    /// `POST` (staff, supervisor) [`crate::CertificateRequest`] → [`crate::CertificateIssued`].
    pub const CERTIFICATES: &str = "/api/v1/certificates";
    /// `GET` (staff, supervisor, admin) `?cursor=N[&after=ID][&limit=N]` → [`crate::PullPage`].
    pub const SYNC_PULL: &str = "/api/v1/sync/pull";
    /// `POST` (staff, supervisor, admin) [`crate::PushRequest`] → [`crate::PushResponse`].
    pub const SYNC_PUSH: &str = "/api/v1/sync/push";
    /// `POST` (any signed-in user) [`crate::AuditUpload`] → [`crate::AuditUploadResult`].
    pub const SYNC_AUDIT: &str = "/api/v1/sync/audit";
    /// `GET /api/v1/sync/uploads/{sha256}?size=N` → [`crate::UploadStatus`]; `PUT` the same path
    /// with `&offset=N` and the bytes from that offset as the body: a resumable upload of the
    /// bytes a [`crate::OpChange::Revision`] appends (staff, supervisor, admin).
    pub const SYNC_UPLOAD_PREFIX: &str = "/api/v1/sync/uploads/";
    /// `GET` (public): the organisation CA's certificate, DER (`application/pkix-cert`).
    pub const CA_CERTIFICATE: &str = "/api/v1/ca/certificate";
    /// `GET` (public): the CA's current CRL, DER (`application/pkix-crl`).
    pub const CA_CRL: &str = "/api/v1/ca/crl";
    /// `GET` (admin) `?after=SEQ&limit=N` → [`crate::AuditList`].
    pub const ADMIN_AUDIT: &str = "/api/v1/admin/audit";
    /// `GET`: the tutorial progress of the trainees a supervisor oversees (an admin: everyone's),
    /// as [`super::TrainingOverview`].
    pub const TRAINING: &str = "/api/v1/training";
}

/// Every error the server returns has this body, with a 4xx or 5xx status. `code` is stable and
/// meant for programs ([`error_codes`]); `message` is a plain sentence for people. Neither ever
/// carries another user's data or a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// A stable machine-readable code from [`error_codes`].
    pub code: String,
    /// What went wrong and what to do, in plain words.
    pub message: String,
}

/// The stable error codes in [`ApiError::code`].
pub mod error_codes {
    /// The request carries no access token, or one the server never issued.
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    /// The access token has expired: refresh it.
    pub const TOKEN_EXPIRED: &str = "token_expired";
    /// The device has been revoked: its tokens no longer work and it must wipe its vault.
    pub const DEVICE_REVOKED: &str = "device_revoked";
    /// The caller's role does not allow this request.
    pub const FORBIDDEN: &str = "forbidden";
    /// Wrong user name, password or second factor (never says which).
    pub const INVALID_CREDENTIALS: &str = "invalid_credentials";
    /// Too many failed logins: the account is locked until the time in the message.
    pub const ACCOUNT_LOCKED: &str = "account_locked";
    /// The account has no second factor enrolled yet: an administrator must enrol it.
    pub const MFA_NOT_ENROLLED: &str = "mfa_not_enrolled";
    /// The refresh token is unknown, used already, or expired: sign in again.
    pub const INVALID_REFRESH: &str = "invalid_refresh";
    /// No such resource, or the caller may not see it (the two are never told apart).
    pub const NOT_FOUND: &str = "not_found";
    /// The request is malformed: bad JSON, a bad field, a bad parameter.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The request body is larger than the server accepts.
    pub const TOO_LARGE: &str = "payload_too_large";
    /// An uploaded document is not a PDF.
    pub const NOT_A_PDF: &str = "not_a_pdf";
    /// The client's sync cursor is ahead of the server (restored from a backup): pull again from
    /// cursor 0, keeping local pending work.
    pub const CURSOR_AHEAD: &str = "cursor_ahead";
    /// The requested byte range is outside the content.
    pub const RANGE_NOT_SATISFIABLE: &str = "range_not_satisfiable";
    /// Too many login attempts from this address: wait and try again.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The request conflicts with what exists (a duplicate name, say).
    pub const CONFLICT: &str = "conflict";
    /// The server is not set up for this (no CA configured, say).
    pub const UNAVAILABLE: &str = "unavailable";
    /// Something failed on the server; the message says what can be done.
    pub const INTERNAL: &str = "internal";
}

/// `GET /api/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `"ok"` when the server answers.
    pub status: String,
    /// The protocol version the server speaks ([`PROTOCOL_VERSION`]).
    pub protocol_version: u32,
    /// The server's build version.
    pub server_version: String,
    /// Whether this is the tutorial's practice server (inside the app, practice material only):
    /// a real vault never connects to one, and the tutorial connects to nothing else.
    #[serde(default)]
    pub practice: bool,
}

/// A user's role. The server enforces what each may do on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Works with the documents assigned to them or their unit.
    Staff,
    /// Staff who also sign documents and batches.
    Supervisor,
    /// Learns in the tutorial sandbox; sees no real documents.
    Trainee,
    /// Administers units, users, documents and assignments.
    Admin,
}

impl Role {
    /// The role's name on the wire and in the admin CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Supervisor => "supervisor",
            Role::Trainee => "trainee",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name as [`Role::as_str`] writes it.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "staff" => Some(Role::Staff),
            "supervisor" => Some(Role::Supervisor),
            "trainee" => Some(Role::Trainee),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether this role may have a signer certificate and sign documents.
    pub fn may_sign(self) -> bool {
        matches!(self, Role::Staff | Role::Supervisor)
    }

    /// Whether this role may work with real (non-tutorial) documents.
    pub fn sees_documents(self) -> bool {
        matches!(self, Role::Staff | Role::Supervisor | Role::Admin)
    }
}

/// The second factor given at login. Its `Debug` form leaves the code out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SecondFactor {
    /// A six-digit code from the user's authenticator (RFC 6238, 30 s steps).
    Totp {
        /// The code as the user typed it.
        code: String,
    },
    /// One of the user's single-use recovery codes.
    RecoveryCode {
        /// The code as the user typed it (dashes and case do not matter).
        code: String,
    },
}

/// Which device the login is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeviceLogin {
    /// First login from this workstation: enrol it with its public key.
    Enrol {
        /// A name the user and administrators recognise the workstation by.
        name: String,
        /// The device's ECDSA P-256 public key, SubjectPublicKeyInfo DER, base64url.
        public_key: String,
    },
    /// A device enrolled earlier proves it holds its key.
    Enrolled {
        /// The device id the server gave at enrolment.
        device_id: String,
        /// ECDSA P-256 / SHA-256 signature (DER, base64url) over [`device_login_message`].
        signature: String,
    },
}

/// What an enrolled device signs to log in: bound to the user and to the single-use second
/// factor, so a captured signature cannot be replayed.
pub fn device_login_message(
    device_id: &str,
    username: &str,
    second_factor: &SecondFactor,
) -> String {
    let factor = match second_factor {
        SecondFactor::Totp { code } => format!("totp:{code}"),
        SecondFactor::RecoveryCode { code } => format!("recovery:{code}"),
    };
    format!("outpost-login\n{device_id}\n{username}\n{factor}")
}

/// What a device signs to refresh: bound to the single-use refresh token.
pub fn device_refresh_message(device_id: &str, refresh_token: &str) -> String {
    format!("outpost-refresh\n{device_id}\n{refresh_token}")
}

impl std::fmt::Debug for SecondFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Totp { .. } => "Totp { code: <hidden> }",
            Self::RecoveryCode { .. } => "RecoveryCode { code: <hidden> }",
        })
    }
}

/// `POST /api/v1/auth/login`. Its `Debug` form leaves the password out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// The user's login name.
    pub username: String,
    /// The user's password.
    pub password: String,
    /// The second factor.
    pub second_factor: SecondFactor,
    /// The device logging in.
    pub device: DeviceLogin,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("second_factor", &self.second_factor)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// `POST /api/v1/auth/refresh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRequest {
    /// The device the refresh token was issued to.
    pub device_id: String,
    /// The refresh token from the last [`Session`]; it works once.
    pub refresh_token: String,
    /// ECDSA P-256 / SHA-256 signature (DER, base64url) over [`device_refresh_message`].
    pub signature: String,
}

/// The answer to a login or refresh: bearer tokens bound to one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Goes in `Authorization: Bearer …` on every other request.
    pub access_token: String,
    /// When the access token stops working (Unix seconds).
    pub access_expires_at: i64,
    /// When the server issued this session (Unix seconds, by the server's clock): a workstation
    /// measures the access token's lifetime from here on its own clock, never comparing the two
    /// clocks. 0 from a server that does not say.
    #[serde(default)]
    pub issued_at: i64,
    /// Exchanged, once, for the next session ([`RefreshRequest`]).
    pub refresh_token: String,
    /// When the refresh token stops working (Unix seconds).
    pub refresh_expires_at: i64,
    /// The device these tokens are bound to.
    pub device_id: String,
    /// Who is signed in.
    pub user: UserInfo,
}

/// A user as the user themself sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user's id.
    pub id: String,
    /// The login name.
    pub username: String,
    /// The name shown in the app and in signatures.
    pub display_name: String,
    /// The user's role.
    pub role: Role,
    /// The unit the user belongs to, if any.
    pub unit: Option<UnitInfo>,
}

/// A unit (a department, a field office).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitInfo {
    /// The unit's id.
    pub id: String,
    /// The unit's name.
    pub name: String,
}

/// A registered document as a user it is assigned to sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentInfo {
    /// The document's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its classification (free text set by the registrar, e.g. "internal").
    pub classification: String,
    /// SHA-256 of the current bytes, lowercase hex.
    pub sha256: String,
    /// Size of the current bytes.
    pub size: u64,
    /// When it was registered (Unix seconds).
    pub registered_at: i64,
}

/// `GET /api/v1/documents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentList {
    /// The visible documents, newest registration first.
    pub documents: Vec<DocumentInfo>,
}

/// One change a workstation pulls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DocumentChange {
    /// The document is visible to the user (newly assigned, or its head changed): fetch its
    /// content by `document.sha256` if the workstation does not have those bytes.
    Visible {
        /// The change's position in the server's order.
        position: i64,
        /// The document as it is now.
        document: DocumentInfo,
    },
    /// An annotation on a visible document changed (or the document just became visible and
    /// this is one of its annotations): merge it — the higher (logical_clock, origin) wins.
    Annotation {
        /// The change's position in the server's order.
        position: i64,
        /// The annotation as the server holds it.
        annotation: AnnotationState,
    },
    /// The user may no longer see the document: purge the local copy.
    Removed {
        /// The change's position in the server's order.
        position: i64,
        /// The document's id.
        document_id: String,
    },
}

/// An annotation as it travels between workstations and the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnotationState {
    /// Its id (a UUID made by the workstation that created it).
    pub id: String,
    /// The server document it belongs to.
    pub document_id: String,
    /// Its page, 1-based.
    pub page_no: u32,
    /// Its kind's stable name.
    pub kind: String,
    /// Who created it (a login name); only they change it.
    pub author: String,
    /// The annotation itself, as JSON text.
    pub body: String,
    /// 1 at creation, one more with every change.
    pub revision: i64,
    /// The Lamport clock of the last change: with `origin`, the order of changes.
    pub logical_clock: i64,
    /// The vault that made the last change (breaks ties between equal clocks).
    pub origin: String,
    /// A tombstone.
    pub deleted: bool,
    /// Creation time (for people).
    pub created_at_ms: i64,
    /// Last change time (for people).
    pub modified_at_ms: i64,
}

/// The most operations one push request may carry ([`PushRequest`]).
pub const MAX_PUSH_OPS: usize = 500;

/// `POST /api/v1/sync/push`: operations from the workstation's outbox, at most
/// [`MAX_PUSH_OPS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    /// The operations, applied in this order.
    pub ops: Vec<PushOp>,
}

/// One operation. Its id is made once by the workstation and sent again unchanged on every
/// retry: the server applies each id at most once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushOp {
    /// A UUID made by the workstation when it queued the operation.
    pub op_id: String,
    /// What to change.
    pub change: OpChange,
}

/// What an operation changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpChange {
    /// An annotation's new state (created, edited, deleted).
    Annotation {
        /// The annotation after the change.
        annotation: AnnotationState,
    },
    /// A new revision of a document: its bytes are the bytes of `base_sha256` followed by the
    /// incremental update uploaded as `appended_sha256` (see [`paths::SYNC_UPLOAD_PREFIX`]). It
    /// becomes the head only if `base_sha256` is the head now (compare-and-swap); otherwise it is
    /// kept as a conflict branch and the answer is [`OpOutcome::Conflict`] with the head.
    Revision {
        /// The server document.
        document_id: String,
        /// The revision this one was made on: the head the workstation knew.
        base_sha256: String,
        /// SHA-256 of the whole new revision.
        sha256: String,
        /// SHA-256 of the appended bytes, uploaded before the push.
        appended_sha256: String,
        /// What made it ("signed", "annotations burned in", …), for people.
        cause: String,
    },
    /// The sender's progress in the tutorial on this device. The only thing of the tutorial that
    /// ever reaches the server: lesson ids and counts, never a document, annotation, signature
    /// or audit entry of the practice vault. Any role may push it (a trainee nothing else).
    TrainingProgress {
        /// The progress.
        progress: TrainingProgress,
    },
}

/// A trainee's progress in the tutorial on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingProgress {
    /// Orders the records of one device: the real vault's number for this record, one more for
    /// each that differs from the last it queued or sent (never a wall-clock time). The server
    /// keeps the record with the highest.
    pub sequence: i64,
    /// Each lesson that can be taken, in the order they are taught.
    pub lessons: Vec<LessonRecord>,
    /// Lessons completed.
    pub lessons_completed: u32,
    /// Lessons that can be taken.
    pub lessons_available: u32,
}

/// One lesson of a [`TrainingProgress`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonRecord {
    /// The lesson's id (`search`, `sign_one`, …).
    pub lesson: String,
    /// Steps done.
    pub steps_done: u32,
    /// Steps in the lesson.
    pub steps_total: u32,
    /// Whether every step is done.
    pub completed: bool,
}

/// `GET` [`paths::TRAINING`]: the progress of each trainee's devices, by user name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingOverview {
    /// One entry per user and device that sent progress.
    pub trainees: Vec<TraineeProgress>,
}

/// One trainee's progress on one device, as the server last received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraineeProgress {
    /// The trainee's login name.
    pub username: String,
    /// Their name.
    pub display_name: String,
    /// Their role (staff may take the tutorial too).
    pub role: Role,
    /// The device it came from.
    pub device_id: String,
    /// When the server received it (ms since the epoch, for people).
    pub received_at_ms: i64,
    /// The progress.
    pub progress: TrainingProgress,
}

/// `POST /api/v1/sync/push`: one result per operation, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// The results.
    pub results: Vec<OpResult>,
    /// The server's sync position after applying them. A later pull that ends below it means
    /// the server was restored from a backup and lost them: offer everything again.
    #[serde(default)]
    pub position: i64,
}

/// What happened to one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpResult {
    /// The operation's id.
    pub op_id: String,
    /// What happened.
    pub outcome: OpOutcome,
}

/// What happened to one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpOutcome {
    /// Applied now.
    Applied,
    /// Applied before (this op id was seen already): nothing changed.
    AlreadyApplied,
    /// Recorded, but a later change already stands: for an annotation a higher logical clock;
    /// for a revision another revision became the head first (this one is kept on the server
    /// as a conflict branch). Pull to get what stands.
    Conflict {
        /// Why, for people.
        reason: String,
        /// For a revision: the SHA-256 of the document's head now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        head_sha256: Option<String>,
    },
    /// Refused; it will never apply. Tell the user why and drop it from the outbox.
    Rejected {
        /// A stable code from [`error_codes`].
        code: String,
        /// Why, for people.
        reason: String,
    },
}

/// How much of an upload the server holds (`GET`/`PUT` [`paths::SYNC_UPLOAD_PREFIX`]). An
/// interrupted `PUT` keeps the bytes that arrived: ask for the status and send the rest from
/// `received`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadStatus {
    /// The SHA-256 the bytes must have.
    pub sha256: String,
    /// Their size.
    pub size: u64,
    /// Bytes held so far (from the start, without holes).
    pub received: u64,
    /// Whether the whole has arrived and its hash was checked: it can be named in a push.
    pub complete: bool,
}

/// One entry of a workstation's audit chain, as the vault stores it. Its `hash` is the SHA-256
/// (lowercase hex) of the JSON array `[seq, at_ms, actor, action, document_id, outcome, detail,
/// prev_hash]` (compact, `document_id` null when absent); the first entry's `prev_hash` is 64 zeros.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntryUpload {
    /// Position in the device's chain, from 1.
    pub seq: i64,
    /// When (ms, for people).
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// The (local) document concerned.
    pub document_id: Option<String>,
    /// How it ended.
    pub outcome: String,
    /// Details.
    pub detail: String,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// `POST /api/v1/sync/audit`: the next entries of this device's audit chain, in order (at most
/// 1000). Sending entries again is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditUpload {
    /// The entries.
    pub entries: Vec<AuditEntryUpload>,
}

/// What the server found in an audit upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditUploadResult {
    /// The highest position the server now holds for this device.
    pub stored_up_to: i64,
    /// Continuity problems found in this upload (also flagged on the server).
    pub problems: Vec<AuditProblem>,
}

/// A continuity problem in a device's audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditProblem {
    /// Where.
    pub seq: i64,
    /// `gap` (entries missing before it), `break` (its prev_hash is not the previous entry's
    /// hash), `hash` (its hash is not the hash of its fields), `rewritten` (the server holds a
    /// different entry at this position).
    pub problem: String,
}

/// `GET /api/v1/sync/pull`: one page of changes, all from one consistent snapshot of the server.
///
/// A pull round starts at the stored cursor with no `after`; while `complete` is false, ask again
/// with `cursor = next_cursor` and `after = next_after`. When `complete` is true, apply the round
/// and store `next_cursor` as the cursor, in one local transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullPage {
    /// The changes, in the server's order.
    pub changes: Vec<DocumentChange>,
    /// Where the next request continues.
    pub next_cursor: i64,
    /// The tie-break for the next request (a document id), while the round is not complete.
    pub next_after: Option<String>,
    /// Whether this page reaches the server's current state.
    pub complete: bool,
    /// On the page that completes a round, from a server with the organisation's CA: how many
    /// certificates the CA has revoked. A workstation whose revocation list was fetched at another count fetches it
    /// again ([`paths::CA_CRL`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_certificates: Option<u64>,
}

/// Whom an assignment is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AssignmentTarget {
    /// One user, by login name.
    User {
        /// The user's login name.
        username: String,
    },
    /// Every member of a unit, by unit name.
    Unit {
        /// The unit's name.
        name: String,
    },
}

/// `POST /api/v1/admin/assignments` and `.../revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRequest {
    /// The document's id.
    pub document_id: String,
    /// Whom it is (or was) assigned to.
    pub target: AssignmentTarget,
}

/// An assignment as the server records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentInfo {
    /// The assignment's id.
    pub id: String,
    /// The document's id.
    pub document_id: String,
    /// Whom it is for.
    pub target: AssignmentTarget,
    /// When it was made (Unix seconds).
    pub assigned_at: i64,
}

/// `POST /api/v1/certificates`: a request for a signer certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRequest {
    /// A PKCS#10 certificate signing request for the signing key, DER, base64url. Its subject is
    /// ignored: the server sets the subject from its records.
    pub csr: String,
}

/// The answer to a [`CertificateRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateIssued {
    /// The serial number, lowercase hex.
    pub serial: String,
    /// The signer certificate, DER, base64url.
    pub certificate: String,
    /// The chain above it (the CA certificate), each DER, base64url, nearest first.
    pub chain: Vec<String>,
    /// End of validity (Unix seconds).
    pub not_after: i64,
}

/// One record of the server's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log (strictly increasing; never a wall-clock order).
    pub seq: i64,
    /// When it happened (Unix seconds, for people to read).
    pub at: i64,
    /// Who did it: a user name, `admin-cli`, or `-` for an unknown caller.
    pub actor: String,
    /// What happened (`login.failed`, `document.registered`, …).
    pub action: String,
    /// What it happened to (a user name, a document id, …).
    pub subject: String,
    /// Details for people; never a secret.
    pub detail: String,
}

/// `GET /api/v1/admin/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditList {
    /// The records after the requested position, oldest first.
    pub records: Vec<AuditRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_enums_have_the_documented_wire_shape() {
        let login = LoginRequest {
            username: "ivanova".into(),
            password: "pw".into(),
            second_factor: SecondFactor::Totp {
                code: "123456".into(),
            },
            device: DeviceLogin::Enrol {
                name: "Field laptop".into(),
                public_key: "AAAA".into(),
            },
        };
        let json = serde_json::to_value(&login).expect("serialises");
        assert_eq!(json["second_factor"]["kind"], "totp");
        assert_eq!(json["device"]["kind"], "enrol");
        let back: LoginRequest = serde_json::from_value(json).expect("parses");
        assert_eq!(back, login);
        assert_eq!(
            serde_json::to_value(Role::Supervisor).expect("role"),
            "supervisor"
        );
        for role in [Role::Staff, Role::Supervisor, Role::Trainee, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }

    #[test]
    fn signed_messages_bind_the_device_user_and_factor() {
        let totp = SecondFactor::Totp {
            code: "123456".into(),
        };
        let recovery = SecondFactor::RecoveryCode {
            code: "123456".into(),
        };
        assert_ne!(
            device_login_message("d", "u", &totp),
            device_login_message("d", "u", &recovery)
        );
        assert_ne!(
            device_login_message("d", "u", &totp),
            device_login_message("d", "v", &totp)
        );
        assert_ne!(
            device_refresh_message("d", "t1"),
            device_refresh_message("d", "t2")
        );
    }
}
