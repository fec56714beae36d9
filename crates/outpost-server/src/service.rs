//! What the server does, apart from how requests arrive: the HTTP API and the admin CLI both call
//! these operations, so a rule (a role check, a validation, an audit record) lives in one place.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use bytes::Bytes;
use outpost_protocol as wire;
use outpost_protocol::{Role, SecondFactor};
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use zeroize::Zeroizing;

use crate::blobs::{is_blob_name, sha256_hex, BlobError, BlobStore, Staged};
use crate::ca::{CaError, CertificateAuthority, SignerSubject};
use crate::clock::{new_id, new_token, Clock, Entropy};
use crate::identity::{self, IdentityError, SecondFactorEnrolment};
use crate::store::{
    AnnotationOp, AnnotationRow, Assignee, AssignmentRow, AuditRow, CertificateInsert,
    CertificateRow, DeviceAuditRow, DeviceRow, DocumentRow, NewAudit, OpApplied, PullEntryKind,
    RefreshClaim, RevisionApplied, RevisionOp, Store, StoreError, TokenRow, TrainingOp, UnitRow,
    UserRow, LONG_TERM_CAUSE,
};
use crate::tsa::TimeStampAuthority;

/// Limits and lifetimes. The defaults suit a production deployment.
#[derive(Debug, Clone)]
pub struct Policy {
    /// How long an access token works.
    pub access_token_seconds: i64,
    /// How long a refresh token works (a workstation offline longer signs in again).
    pub refresh_token_seconds: i64,
    /// Failed logins in a row that lock an account.
    pub lockout_threshold: i64,
    /// How long a lock lasts.
    pub lockout_seconds: i64,
    /// Login attempts one address may make per minute (on one node).
    pub login_attempts_per_minute: u32,
    /// The largest document accepted for registration.
    pub max_document_bytes: usize,
    /// How long signer certificates are valid, in days.
    pub certificate_days: i64,
    /// Whether a newly signed revision is extended for the long term (validation data and a
    /// document time-stamp, PAdES B-LTA) when the server has a CA.
    pub extend_signatures: bool,
    /// The policy (a dotted OID) the time-stamping authority writes into its tokens.
    pub tsa_policy: String,
    /// Whether this is the tutorial's practice server (its health answer says so, and real
    /// vaults refuse to connect to it).
    pub practice: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            access_token_seconds: 15 * 60,
            refresh_token_seconds: 14 * 24 * 3600,
            lockout_threshold: 5,
            lockout_seconds: 15 * 60,
            login_attempts_per_minute: 30,
            max_document_bytes: 64 * 1024 * 1024,
            certificate_days: 730,
            extend_signatures: true,
            tsa_policy: crate::tsa::UNREGISTERED_POLICY.to_string(),
            practice: false,
        }
    }
}

/// Why an operation was refused or failed. Each maps to one stable wire code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Wrong user name, password, second factor or device proof (never says which).
    #[error("the user name, password or second factor is wrong")]
    InvalidCredentials,
    /// Too many failed logins.
    #[error("the account is locked after repeated failed logins; try again after {until} (Unix time) or ask an administrator to unlock it")]
    AccountLocked {
        /// When the lock ends (Unix seconds).
        until: i64,
    },
    /// Password right, but no second factor enrolled.
    #[error("this account has no second factor yet; ask an administrator to enrol MFA for it")]
    SecondFactorNotEnrolled,
    /// Too many attempts from one address.
    #[error("too many login attempts from this address; wait a minute and try again")]
    RateLimited,
    /// The refresh token cannot be used.
    #[error("the session cannot be renewed; sign in again")]
    InvalidRefresh,
    /// No or unknown bearer token.
    #[error("sign in first: the request carries no valid access token")]
    Unauthenticated,
    /// The bearer token has expired.
    #[error("the access token has expired; renew the session")]
    TokenExpired,
    /// The device was revoked.
    #[error("this device has been revoked by an administrator")]
    DeviceRevoked,
    /// The caller's role may not do this.
    #[error("your role does not allow this")]
    Forbidden,
    /// No such thing, or not visible to the caller.
    #[error("no such {0}, or you may not see it")]
    NotFound(&'static str),
    /// A field or parameter is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// An upload is not a PDF.
    #[error("the upload is not a readable PDF: {0}")]
    NotAPdf(String),
    /// An upload is too large.
    #[error("the upload is larger than the {limit} bytes the server accepts")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The client's cursor is beyond the server's position (the server was restored from a backup).
    #[error("your sync position ({client}) is ahead of the server's ({server}); the server was restored from a backup: pull again from the start")]
    CursorAhead {
        /// The client's cursor.
        client: i64,
        /// The server's position.
        server: i64,
    },
    /// A byte range outside the content.
    #[error("the requested range is outside the content's {size} bytes")]
    RangeNotSatisfiable {
        /// The content's size.
        size: u64,
    },
    /// The server is not set up for this.
    #[error("{0}")]
    Unavailable(String),
    /// A name is taken or an assignment exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
    /// Blob storage failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Password hashing or a stored TOTP secret failed.
    #[error(transparent)]
    Identity(IdentityError),
    /// The CA could not sign.
    #[error(transparent)]
    Ca(CaError),
}

impl From<CaError> for ServiceError {
    fn from(error: CaError) -> ServiceError {
        match error {
            CaError::BadRequest(_) => ServiceError::BadRequest(error.to_string()),
            other => ServiceError::Ca(other),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> ServiceError {
        match error {
            StoreError::Duplicate(what) => ServiceError::Conflict(what),
            other => ServiceError::Store(other),
        }
    }
}

impl From<IdentityError> for ServiceError {
    fn from(error: IdentityError) -> ServiceError {
        match error {
            IdentityError::PasswordTooShort => ServiceError::BadRequest(error.to_string()),
            other => ServiceError::Identity(other),
        }
    }
}

impl ServiceError {
    /// The stable wire code ([`wire::error_codes`]).
    pub fn code(&self) -> &'static str {
        use wire::error_codes as c;
        match self {
            ServiceError::InvalidCredentials => c::INVALID_CREDENTIALS,
            ServiceError::AccountLocked { .. } => c::ACCOUNT_LOCKED,
            ServiceError::SecondFactorNotEnrolled => c::MFA_NOT_ENROLLED,
            ServiceError::RateLimited => c::RATE_LIMITED,
            ServiceError::InvalidRefresh => c::INVALID_REFRESH,
            ServiceError::Unauthenticated => c::UNAUTHENTICATED,
            ServiceError::TokenExpired => c::TOKEN_EXPIRED,
            ServiceError::DeviceRevoked => c::DEVICE_REVOKED,
            ServiceError::Forbidden => c::FORBIDDEN,
            ServiceError::NotFound(_) => c::NOT_FOUND,
            ServiceError::BadRequest(_) => c::BAD_REQUEST,
            ServiceError::NotAPdf(_) => c::NOT_A_PDF,
            ServiceError::TooLarge { .. } => c::TOO_LARGE,
            ServiceError::Conflict(_) => c::CONFLICT,
            ServiceError::Unavailable(_) => c::UNAVAILABLE,
            ServiceError::CursorAhead { .. } => c::CURSOR_AHEAD,
            ServiceError::RangeNotSatisfiable { .. } => c::RANGE_NOT_SATISFIABLE,
            ServiceError::Store(_)
            | ServiceError::Blob(_)
            | ServiceError::Identity(_)
            | ServiceError::Ca(_) => c::INTERNAL,
        }
    }
}

/// Who is making an authenticated request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user: UserRow,
    /// The device the token is bound to.
    pub device_id: String,
    /// The login session.
    pub family_id: String,
}

/// Who performs an administrative operation, for the audit log.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// The admin CLI on the server machine.
    Cli,
    /// An administrator over the HTTP API.
    User(&'a Caller),
}

impl Actor<'_> {
    fn name(&self) -> String {
        match self {
            Actor::Cli => "admin-cli".to_string(),
            Actor::User(caller) => caller.user.username.clone(),
        }
    }
}

/// A new account, as an administrator describes it.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name: 1–64 of `a-z 0-9 . _ -`.
    pub username: String,
    /// Name shown to people.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Unit name, if any.
    pub unit: Option<String>,
    /// Initial password.
    pub password: String,
}

/// Counts login attempts per address in one-minute windows (on this node).
struct LoginThrottle {
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl LoginThrottle {
    /// Counts an attempt; false when the address is over the limit for this minute.
    fn admit(&self, address: IpAddr, now: i64, limit: u32) -> bool {
        let minute = now.div_euclid(60);
        let mut windows = match self.windows.lock() {
            Ok(windows) => windows,
            Err(poisoned) => poisoned.into_inner(),
        };
        if windows.len() > 10_000 {
            windows.retain(|_, (window, _)| *window == minute);
        }
        let entry = windows.entry(address).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= limit
    }
}

/// The server's operations over its store and blobs.
pub struct Service {
    store: Arc<dyn Store>,
    blobs: BlobStore,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    policy: Policy,
    throttle: LoginThrottle,
    decoy_hash: OnceLock<String>,
    ca: Option<Arc<CertificateAuthority>>,
    tsa: Option<TimeStampAuthority>,
}

fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
}

fn has_control_chars(text: &str) -> bool {
    text.chars().any(char::is_control)
}

fn check_text(field: &str, value: &str, max_chars: usize) -> Result<String, ServiceError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ServiceError::BadRequest(format!(
            "the {field} must not be empty"
        )));
    }
    if value.chars().count() > max_chars {
        return Err(ServiceError::BadRequest(format!(
            "the {field} must be at most {max_chars} characters"
        )));
    }
    if has_control_chars(value) {
        return Err(ServiceError::BadRequest(format!(
            "the {field} must not contain control characters"
        )));
    }
    Ok(value.to_string())
}

fn check_username(username: &str) -> Result<String, ServiceError> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(username.to_string())
    } else {
        Err(ServiceError::BadRequest(
            "a user name is 1 to 64 characters of lowercase a-z, digits, '.', '_' and '-'".into(),
        ))
    }
}

/// Checks that `id` looks like one of the server's ids (a UUID), so a path-like or oversized
/// value never reaches storage.
pub fn check_id(what: &'static str, id: &str) -> Result<String, ServiceError> {
    uuid::Uuid::try_parse(id)
        .map(|uuid| uuid.hyphenated().to_string())
        .map_err(|_| ServiceError::BadRequest(format!("{id:?} is not a {what} id (a UUID)")))
}

impl Service {
    /// The service over `store` and `blobs`, with time, randomness and limits passed in.
    pub fn new(
        store: Arc<dyn Store>,
        blobs: BlobStore,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
        policy: Policy,
    ) -> Service {
        Service {
            store,
            blobs,
            clock,
            entropy,
            policy,
            throttle: LoginThrottle {
                windows: Mutex::new(HashMap::new()),
            },
            decoy_hash: OnceLock::new(),
            ca: None,
            tsa: None,
        }
    }

    /// The service with the organisation's CA, which issues signer certificates and certifies
    /// the server's time-stamping authority (a fresh key for this process).
    pub fn with_certificate_authority(
        mut self,
        ca: Arc<CertificateAuthority>,
    ) -> Result<Service, CaError> {
        self.tsa = Some(
            TimeStampAuthority::start(&ca, self.clock.now(), self.entropy.as_ref())?
                .with_policy(&self.policy.tsa_policy)?,
        );
        self.ca = Some(ca);
        Ok(self)
    }

    /// The limits in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store (for the health endpoint and tests).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The blob store (for tests and the admin CLI).
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The current time by the service's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: String,
    ) -> Result<(), ServiceError> {
        let record = NewAudit {
            at: self.clock.now(),
            actor: actor.to_string(),
            action: action.to_string(),
            subject: subject.to_string(),
            detail,
        };
        self.store.append_audit(&record).await?;
        tracing::info!(actor, action, subject, "audit");
        Ok(())
    }

    async fn user_named(&self, username: &str) -> Result<UserRow, ServiceError> {
        self.store
            .user_by_username(username)
            .await?
            .ok_or(ServiceError::NotFound("user"))
    }

    async fn unit_named(&self, name: &str) -> Result<UnitRow, ServiceError> {
        self.store
            .unit_by_name(name)
            .await?
            .ok_or(ServiceError::NotFound("unit"))
    }

    // ----- administration -----

    /// Creates a unit.
    pub async fn create_unit(&self, actor: Actor<'_>, name: &str) -> Result<UnitRow, ServiceError> {
        let name = check_text("unit name", name, 100)?;
        let unit = UnitRow {
            id: new_id(&*self.entropy),
            name,
            created_at: self.clock.now(),
        };
        self.store.create_unit(&unit).await?;
        self.audit(
            &actor.name(),
            "unit.created",
            &unit.name,
            format!("id {}", unit.id),
        )
        .await?;
        Ok(unit)
    }

    /// Every unit.
    pub async fn units(&self) -> Result<Vec<UnitRow>, ServiceError> {
        Ok(self.store.list_units().await?)
    }

    /// Creates a user (without a second factor: enrol it next).
    pub async fn create_user(
        &self,
        actor: Actor<'_>,
        new_user: NewUser,
    ) -> Result<UserRow, ServiceError> {
        let username = check_username(&new_user.username)?;
        let display_name = check_text("display name", &new_user.display_name, 200)?;
        let unit_id = match &new_user.unit {
            Some(name) => Some(self.unit_named(name).await?.id),
            None => None,
        };
        let password_hash = self.hash_password(&new_user.password).await?;
        let user = UserRow {
            id: new_id(&*self.entropy),
            username,
            display_name,
            role: new_user.role,
            unit_id,
            password_hash,
            totp_secret: None,
            last_totp_step: None,
            failed_logins: 0,
            locked_until: None,
            created_at: self.clock.now(),
            disabled_at: None,
        };
        self.store.create_user(&user).await?;
        let unit = new_user.unit.as_deref().unwrap_or("-");
        self.audit(
            &actor.name(),
            "user.created",
            &user.username,
            format!("role {}, unit {unit}", user.role.as_str()),
        )
        .await?;
        Ok(user)
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<UserRow>, ServiceError> {
        Ok(self.store.list_users().await?)
    }

    /// Sets a new password (and lifts any lock).
    pub async fn reset_password(
        &self,
        actor: Actor<'_>,
        username: &str,
        password: &str,
    ) -> Result<(), ServiceError> {
        let user = self.user_named(username).await?;
        let hash = self.hash_password(password).await?;
        self.store.set_password_hash(&user.id, &hash).await?;
        self.audit(
            &actor.name(),
            "user.password_reset",
            &user.username,
            String::new(),
        )
        .await
    }

    /// Lifts a lockout.
    pub async fn unlock_user(&self, actor: Actor<'_>, username: &str) -> Result<(), ServiceError> {
        let user = self.user_named(username).await?;
        self.store.clear_failed_logins(&user.id).await?;
        self.audit(
            &actor.name(),
            "user.unlocked",
            &user.username,
            String::new(),
        )
        .await
    }

    /// Enrols (or re-enrols) the TOTP second factor and a new set of recovery codes; what it
    /// returns is shown to the user once.
    pub async fn enrol_second_factor(
        &self,
        actor: Actor<'_>,
        username: &str,
    ) -> Result<SecondFactorEnrolment, ServiceError> {
        let user = self.user_named(username).await?;
        let enrolment = identity::new_second_factor(&user.username, &*self.entropy);
        self.store
            .set_second_factor(
                &user.id,
                Some(&enrolment.secret),
                &enrolment.recovery_code_hashes,
            )
            .await?;
        self.audit(
            &actor.name(),
            "user.mfa_enrolled",
            &user.username,
            String::new(),
        )
        .await?;
        Ok(enrolment)
    }

    /// Removes the second factor and recovery codes; the user cannot sign in until re-enrolled.
    pub async fn reset_second_factor(
        &self,
        actor: Actor<'_>,
        username: &str,
    ) -> Result<(), ServiceError> {
        let user = self.user_named(username).await?;
        self.store.set_second_factor(&user.id, None, &[]).await?;
        self.audit(
            &actor.name(),
            "user.mfa_reset",
            &user.username,
            String::new(),
        )
        .await
    }

    /// Registers a PDF: checks it parses as a PDF, stores its bytes as a blob, then its record.
    pub async fn register_document(
        &self,
        actor: Actor<'_>,
        title: &str,
        classification: &str,
        bytes: Bytes,
    ) -> Result<DocumentRow, ServiceError> {
        let title = check_text("title", title, 300)?;
        let classification = check_text("classification", classification, 64)?;
        if bytes.len() > self.policy.max_document_bytes {
            return Err(ServiceError::TooLarge {
                limit: self.policy.max_document_bytes,
            });
        }
        check_pdf(bytes.clone()).await?;
        let size = i64::try_from(bytes.len()).map_err(|_| ServiceError::TooLarge {
            limit: self.policy.max_document_bytes,
        })?;
        let sha256 = self.blobs.put(bytes).await?;
        let document = DocumentRow {
            id: new_id(&*self.entropy),
            title,
            classification,
            sha256,
            size,
            registered_by: actor.name(),
            registered_at: self.clock.now(),
        };
        self.store.create_document(&document).await?;
        self.audit(
            &actor.name(),
            "document.registered",
            &document.id,
            format!("sha256 {}", document.sha256),
        )
        .await?;
        Ok(document)
    }

    /// Every registered document.
    pub async fn all_documents(&self) -> Result<Vec<DocumentRow>, ServiceError> {
        Ok(self.store.list_documents().await?)
    }

    async fn assignee(&self, target: &wire::AssignmentTarget) -> Result<Assignee, ServiceError> {
        Ok(match target {
            wire::AssignmentTarget::User { username } => {
                Assignee::User(self.user_named(username).await?.id)
            }
            wire::AssignmentTarget::Unit { name } => {
                Assignee::Unit(self.unit_named(name).await?.id)
            }
        })
    }

    fn describe(target: &wire::AssignmentTarget) -> String {
        match target {
            wire::AssignmentTarget::User { username } => format!("user {username}"),
            wire::AssignmentTarget::Unit { name } => format!("unit {name}"),
        }
    }

    /// Assigns a document to a user or a unit.
    pub async fn assign(
        &self,
        actor: Actor<'_>,
        document_id: &str,
        target: &wire::AssignmentTarget,
    ) -> Result<AssignmentRow, ServiceError> {
        let document_id = check_id("document", document_id)?;
        let document = self
            .store
            .document_by_id(&document_id)
            .await?
            .ok_or(ServiceError::NotFound("document"))?;
        let assignee = self.assignee(target).await?;
        let assignment = AssignmentRow {
            id: new_id(&*self.entropy),
            document_id: document.id.clone(),
            assignee,
            assigned_at: self.clock.now(),
        };
        self.store.create_assignment(&assignment).await?;
        self.audit(
            &actor.name(),
            "assignment.created",
            &document.id,
            Self::describe(target),
        )
        .await?;
        Ok(assignment)
    }

    /// Ends an assignment.
    pub async fn revoke_assignment(
        &self,
        actor: Actor<'_>,
        document_id: &str,
        target: &wire::AssignmentTarget,
    ) -> Result<(), ServiceError> {
        let document_id = check_id("document", document_id)?;
        let assignee = self.assignee(target).await?;
        if !self
            .store
            .revoke_assignment(&document_id, &assignee, self.clock.now())
            .await?
        {
            return Err(ServiceError::NotFound("active assignment"));
        }
        self.audit(
            &actor.name(),
            "assignment.revoked",
            &document_id,
            Self::describe(target),
        )
        .await
    }

    /// Every device (of one user, when named).
    pub async fn devices(&self, username: Option<&str>) -> Result<Vec<DeviceRow>, ServiceError> {
        let user_id = match username {
            Some(name) => Some(self.user_named(name).await?.id),
            None => None,
        };
        Ok(self.store.list_devices(user_id.as_deref()).await?)
    }

    /// Revokes a device: its tokens stop working at once.
    pub async fn revoke_device(
        &self,
        actor: Actor<'_>,
        device_id: &str,
    ) -> Result<(), ServiceError> {
        let device_id = check_id("device", device_id)?;
        if !self
            .store
            .revoke_device(&device_id, self.clock.now())
            .await?
        {
            return Err(ServiceError::NotFound("device"));
        }
        self.audit(
            &actor.name(),
            "device.revoked",
            &device_id,
            "its sessions and certificates revoked".into(),
        )
        .await
    }

    /// Disables a user: every device, session and certificate of theirs is revoked at once.
    pub async fn disable_user(&self, actor: Actor<'_>, username: &str) -> Result<(), ServiceError> {
        let user = self.user_named(username).await?;
        self.store.disable_user(&user.id, self.clock.now()).await?;
        self.audit(
            &actor.name(),
            "user.disabled",
            &user.username,
            "devices, sessions and certificates revoked".into(),
        )
        .await
    }

    /// Audit records after `after`, at most `limit` (capped at 1000).
    pub async fn audit_records(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, ServiceError> {
        Ok(self.store.audit_after(after, limit.clamp(1, 1000)).await?)
    }

    // ----- identity -----

    fn decoy_hash(&self) -> &str {
        self.decoy_hash.get_or_init(|| {
            identity::hash_password(&new_token(&*self.entropy), &*self.entropy).unwrap_or_default()
        })
    }

    /// Signs a user in from a device: password, second factor, device proof or enrolment.
    pub async fn login(
        &self,
        request: &wire::LoginRequest,
        from: IpAddr,
    ) -> Result<wire::Session, ServiceError> {
        let now = self.clock.now();
        if !self
            .throttle
            .admit(from, now, self.policy.login_attempts_per_minute)
        {
            self.audit(
                "-",
                "login.rate_limited",
                &request.username,
                format!("from {from}"),
            )
            .await?;
            return Err(ServiceError::RateLimited);
        }
        let Some(user) = self.store.user_by_username(&request.username).await? else {
            // Spend the time a real check takes, so timing does not tell which names exist.
            let _ = password_matches(&request.password, self.decoy_hash()).await;
            self.audit(
                "-",
                "login.failed",
                &request.username,
                format!("unknown user, from {from}"),
            )
            .await?;
            return Err(ServiceError::InvalidCredentials);
        };
        if user.disabled_at.is_some() {
            let _ = password_matches(&request.password, self.decoy_hash()).await;
            self.audit(
                "-",
                "login.refused_disabled",
                &user.username,
                format!("from {from}"),
            )
            .await?;
            return Err(ServiceError::InvalidCredentials);
        }
        if let Some(until) = user.locked_until.filter(|until| *until > now) {
            self.audit(
                "-",
                "login.refused_locked",
                &user.username,
                format!("from {from}"),
            )
            .await?;
            return Err(ServiceError::AccountLocked { until });
        }
        match self.check_credentials(&user, request, now).await {
            Ok(()) => {}
            Err(ServiceError::InvalidCredentials) => {
                let lock_until = now + self.policy.lockout_seconds;
                let (failures, locked) = self
                    .store
                    .record_failed_login(&user.id, self.policy.lockout_threshold, lock_until)
                    .await?;
                self.audit(
                    "-",
                    "login.failed",
                    &user.username,
                    format!("failure {failures}, from {from}"),
                )
                .await?;
                if let Some(until) = locked.filter(|until| *until > now) {
                    self.audit(
                        "-",
                        "login.locked",
                        &user.username,
                        format!("locked until {until}"),
                    )
                    .await?;
                }
                return Err(ServiceError::InvalidCredentials);
            }
            Err(other) => return Err(other),
        }
        if user.failed_logins > 0 || user.locked_until.is_some() {
            self.store.clear_failed_logins(&user.id).await?;
        }
        let device_id = self.login_device(&user, request).await?;
        let session = self
            .issue_session(&user, &device_id, &new_id(&*self.entropy))
            .await?;
        self.audit(
            &user.username,
            "login.succeeded",
            &user.username,
            format!("device {device_id}, from {from}"),
        )
        .await?;
        Ok(session)
    }

    async fn check_credentials(
        &self,
        user: &UserRow,
        request: &wire::LoginRequest,
        now: i64,
    ) -> Result<(), ServiceError> {
        if !password_matches(&request.password, &user.password_hash).await {
            return Err(ServiceError::InvalidCredentials);
        }
        let Some(secret) = &user.totp_secret else {
            return Err(ServiceError::SecondFactorNotEnrolled);
        };
        // The device proof comes before the single-use factor is spent.
        if let wire::DeviceLogin::Enrolled {
            device_id,
            signature,
        } = &request.device
        {
            let message =
                wire::device_login_message(device_id, &request.username, &request.second_factor);
            self.check_device(user, device_id, signature, &message)
                .await?;
        }
        match &request.second_factor {
            SecondFactor::Totp { code } => {
                let step = identity::totp_step(secret, code, now)?
                    .ok_or(ServiceError::InvalidCredentials)?;
                if !self.store.claim_totp_step(&user.id, step).await? {
                    return Err(ServiceError::InvalidCredentials);
                }
            }
            SecondFactor::RecoveryCode { code } => {
                let hash = identity::hash_recovery_code(code);
                if !self.store.consume_recovery_code(&user.id, &hash).await? {
                    return Err(ServiceError::InvalidCredentials);
                }
            }
        }
        Ok(())
    }

    /// Checks that the device exists, belongs to the user, is not revoked, and signed `message`.
    async fn check_device(
        &self,
        user: &UserRow,
        device_id: &str,
        signature: &str,
        message: &str,
    ) -> Result<DeviceRow, ServiceError> {
        let device_id =
            check_id("device", device_id).map_err(|_| ServiceError::InvalidCredentials)?;
        let device = self
            .store
            .device_by_id(&device_id)
            .await?
            .ok_or(ServiceError::InvalidCredentials)?;
        if device.user_id != user.id {
            return Err(ServiceError::InvalidCredentials);
        }
        if device.revoked_at.is_some() {
            return Err(ServiceError::DeviceRevoked);
        }
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(&device.public_key)
            .map_err(|_| ServiceError::InvalidCredentials)?;
        let signature = b64url_decode(signature)
            .and_then(|der| p256::ecdsa::Signature::from_der(&der).ok())
            .ok_or(ServiceError::InvalidCredentials)?;
        key.verify(message.as_bytes(), &signature)
            .map_err(|_| ServiceError::InvalidCredentials)?;
        Ok(device)
    }

    async fn login_device(
        &self,
        user: &UserRow,
        request: &wire::LoginRequest,
    ) -> Result<String, ServiceError> {
        match &request.device {
            wire::DeviceLogin::Enrolled { device_id, .. } => check_id("device", device_id),
            wire::DeviceLogin::Enrol { name, public_key } => {
                let name = check_text("device name", name, 100)?;
                let der = b64url_decode(public_key).ok_or_else(|| {
                    ServiceError::BadRequest("the device public key is not base64url".into())
                })?;
                p256::PublicKey::from_public_key_der(&der).map_err(|_| {
                    ServiceError::BadRequest(
                        "the device public key is not an ECDSA P-256 SubjectPublicKeyInfo".into(),
                    )
                })?;
                let device = DeviceRow {
                    id: new_id(&*self.entropy),
                    user_id: user.id.clone(),
                    name,
                    public_key: der,
                    enrolled_at: self.clock.now(),
                    revoked_at: None,
                };
                self.store.create_device(&device).await?;
                self.audit(
                    &user.username,
                    "device.enrolled",
                    &device.id,
                    format!("name {:?}", device.name),
                )
                .await?;
                Ok(device.id)
            }
        }
    }

    async fn issue_session(
        &self,
        user: &UserRow,
        device_id: &str,
        family_id: &str,
    ) -> Result<wire::Session, ServiceError> {
        let now = self.clock.now();
        let access_token = new_token(&*self.entropy);
        let refresh_token = new_token(&*self.entropy);
        let access_expires_at = now + self.policy.access_token_seconds;
        let refresh_expires_at = now + self.policy.refresh_token_seconds;
        let row = |token: &str, expires_at| TokenRow {
            token_hash: identity::hash_token(token),
            family_id: family_id.to_string(),
            user_id: user.id.clone(),
            device_id: device_id.to_string(),
            expires_at,
            used: false,
        };
        self.store
            .insert_access_token(&row(&access_token, access_expires_at))
            .await?;
        self.store
            .insert_refresh_token(&row(&refresh_token, refresh_expires_at))
            .await?;
        Ok(wire::Session {
            access_token,
            access_expires_at,
            issued_at: now,
            refresh_token,
            refresh_expires_at,
            device_id: device_id.to_string(),
            user: self.user_info(user).await?,
        })
    }

    /// Exchanges a refresh token, signed for by its device, for a new session. A refresh token
    /// presented twice ends the whole session (one of the two presenters had a copy) — unless
    /// what it was last exchanged for was never used (that refresh token unspent, that access
    /// token never presented and not yet expired): then that answer never reached the device (a
    /// connection that broke on the way back), so those tokens are ended unused and a new session
    /// is issued, audited as `session.refresh_retried`. The claim, the new session and the link
    /// to it are separate steps: a retry that arrives before the first exchange has linked its
    /// answer finds nothing to take back and ends the session (it fails closed).
    pub async fn refresh(
        &self,
        request: &wire::RefreshRequest,
    ) -> Result<wire::Session, ServiceError> {
        let now = self.clock.now();
        let hash = identity::hash_token(&request.refresh_token);
        let token = self
            .store
            .refresh_token(&hash)
            .await?
            .ok_or(ServiceError::InvalidRefresh)?;
        if token.expires_at <= now || token.device_id != request.device_id {
            return Err(ServiceError::InvalidRefresh);
        }
        let user = self
            .store
            .user_by_id(&token.user_id)
            .await?
            .ok_or(ServiceError::InvalidRefresh)?;
        let message = wire::device_refresh_message(&request.device_id, &request.refresh_token);
        match self
            .check_device(&user, &request.device_id, &request.signature, &message)
            .await
        {
            Ok(_) => {}
            Err(ServiceError::DeviceRevoked) => return Err(ServiceError::DeviceRevoked),
            Err(_) => return Err(ServiceError::InvalidRefresh),
        }
        match self.store.claim_refresh_token(&hash).await? {
            RefreshClaim::Claimed => {}
            RefreshClaim::AlreadyUsed
                if self.store.take_back_unused_successor(&hash, now).await? =>
            {
                self.audit(
                    "-",
                    "session.refresh_retried",
                    &user.username,
                    format!("device {}", token.device_id),
                )
                .await?;
            }
            RefreshClaim::AlreadyUsed => {
                // Audited when it is news (a live session ended, or its newest token was copied):
                // an older spent token presented again and again (a stuck client) adds nothing.
                if self
                    .store
                    .revoke_token_family(&token.family_id, Some(&hash))
                    .await?
                {
                    self.audit(
                        "-",
                        "session.refresh_reused",
                        &user.username,
                        format!("device {}", token.device_id),
                    )
                    .await?;
                }
                return Err(ServiceError::InvalidRefresh);
            }
            RefreshClaim::Unknown => return Err(ServiceError::InvalidRefresh),
        }
        let session = self
            .issue_session(&user, &token.device_id, &token.family_id)
            .await?;
        self.store
            .link_refreshed(
                &hash,
                &identity::hash_token(&session.refresh_token),
                &identity::hash_token(&session.access_token),
            )
            .await?;
        Ok(session)
    }

    /// Resolves a bearer token to its caller.
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Caller, ServiceError> {
        let token = bearer
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or(ServiceError::Unauthenticated)?;
        let row = self
            .store
            .access_token(&identity::hash_token(token))
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        // Its session reached the device: a retried refresh may no longer take it back. A token
        // taken back since it was read above is gone, and refused.
        if !row.used && !self.store.mark_access_token_used(&row.token_hash).await? {
            return Err(ServiceError::Unauthenticated);
        }
        let device = self
            .store
            .device_by_id(&row.device_id)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        if device.revoked_at.is_some() {
            return Err(ServiceError::DeviceRevoked);
        }
        if row.expires_at <= self.clock.now() {
            return Err(ServiceError::TokenExpired);
        }
        let user = self
            .store
            .user_by_id(&row.user_id)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        Ok(Caller {
            user,
            device_id: row.device_id,
            family_id: row.family_id,
        })
    }

    /// Ends the caller's session on this device.
    pub async fn logout(&self, caller: &Caller) -> Result<(), ServiceError> {
        self.store
            .revoke_token_family(&caller.family_id, None)
            .await?;
        self.audit(
            &caller.user.username,
            "logout",
            &caller.user.username,
            format!("device {}", caller.device_id),
        )
        .await
    }

    // ----- what users see -----

    /// The user as they see themself.
    pub async fn user_info(&self, user: &UserRow) -> Result<wire::UserInfo, ServiceError> {
        let unit = match &user.unit_id {
            Some(id) => self.store.unit_by_id(id).await?.map(|u| wire::UnitInfo {
                id: u.id,
                name: u.name,
            }),
            None => None,
        };
        Ok(wire::UserInfo {
            id: user.id.clone(),
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            role: user.role,
            unit,
        })
    }

    fn require_documents(caller: &Caller) -> Result<(), ServiceError> {
        if caller.user.role.sees_documents() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden)
        }
    }

    /// Keeps a trainee's tutorial progress (the newest of each device wins by its own sequence).
    async fn push_training(
        &self,
        caller: &Caller,
        op_id: String,
        progress: &wire::TrainingProgress,
    ) -> Result<wire::OpOutcome, ServiceError> {
        let plain_id = |id: &str| {
            !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        };
        let sound = progress.sequence >= 0
            && progress.lessons.len() <= 64
            && progress.lessons.iter().all(|l| {
                plain_id(&l.lesson) && l.steps_done <= l.steps_total && l.steps_total <= 64
            })
            && progress.lessons_completed <= progress.lessons_available;
        if !sound {
            return Err(ServiceError::BadRequest(
                "a training record holds at most 64 lessons, each a plain id with its step counts"
                    .into(),
            ));
        }
        let record = serde_json::to_string(progress)
            .map_err(|e| ServiceError::BadRequest(format!("the training record: {e}")))?;
        let applied = self
            .store
            .apply_training_op(&TrainingOp {
                op_id,
                user_id: caller.user.id.clone(),
                device_id: caller.device_id.clone(),
                at: self.clock.now(),
                sequence: progress.sequence,
                progress: record,
            })
            .await?;
        Ok(match applied {
            OpApplied::AlreadyApplied => wire::OpOutcome::AlreadyApplied,
            OpApplied::Superseded => wire::OpOutcome::Conflict {
                reason: "a newer record of this device's progress is kept".into(),
                head_sha256: None,
            },
            OpApplied::Applied | OpApplied::Mismatch => {
                self.audit(
                    &caller.user.username,
                    "training.progress",
                    &caller.device_id,
                    format!(
                        "{} of {} lessons completed",
                        progress.lessons_completed, progress.lessons_available
                    ),
                )
                .await?;
                wire::OpOutcome::Applied
            }
        })
    }

    /// The tutorial progress the caller may see: a supervisor sees the people of their unit, an
    /// admin (or the admin CLI, `caller` `None`) everyone's; nobody else any.
    pub async fn training_overview(
        &self,
        caller: Option<&Caller>,
    ) -> Result<wire::TrainingOverview, ServiceError> {
        let unit = match caller.map(|c| (c.user.role, &c.user.unit_id)) {
            None | Some((Role::Admin, _)) => None,
            Some((Role::Supervisor, unit)) => Some(unit.clone().ok_or(ServiceError::Forbidden)?),
            Some(_) => return Err(ServiceError::Forbidden),
        };
        let mut trainees = Vec::new();
        for row in self.store.training_progress().await? {
            let Some(user) = self.store.user_by_id(&row.user_id).await? else {
                continue;
            };
            if unit.is_some() && user.unit_id != unit {
                continue;
            }
            let progress: wire::TrainingProgress =
                serde_json::from_str(&row.progress).map_err(|e| {
                    ServiceError::Store(StoreError::Corrupt(format!("a training record: {e}")))
                })?;
            trainees.push(wire::TraineeProgress {
                username: user.username,
                display_name: user.display_name,
                role: user.role,
                device_id: row.device_id,
                // The server's clock counts seconds.
                received_at_ms: row.received_at.saturating_mul(1000),
                progress,
            });
        }
        Ok(wire::TrainingOverview { trainees })
    }

    /// Requires the admin role.
    pub fn require_admin(caller: &Caller) -> Result<(), ServiceError> {
        if caller.user.role == Role::Admin {
            Ok(())
        } else {
            Err(ServiceError::Forbidden)
        }
    }

    /// The documents assigned to the caller or the caller's unit.
    pub async fn documents(&self, caller: &Caller) -> Result<Vec<DocumentRow>, ServiceError> {
        Self::require_documents(caller)?;
        Ok(self
            .store
            .visible_documents(&caller.user.id, caller.user.unit_id.as_deref())
            .await?)
    }

    /// One document, if assigned to the caller or the caller's unit.
    pub async fn document(
        &self,
        caller: &Caller,
        document_id: &str,
    ) -> Result<DocumentRow, ServiceError> {
        Self::require_documents(caller)?;
        let document_id = check_id("document", document_id)?;
        self.store
            .visible_document(
                &document_id,
                &caller.user.id,
                caller.user.unit_id.as_deref(),
            )
            .await?
            .ok_or(ServiceError::NotFound("document"))
    }

    /// One page of the caller's pull after (`cursor`, `after`): at most `limit` (1–500) changes.
    pub async fn pull(
        &self,
        caller: &Caller,
        cursor: i64,
        after: Option<&str>,
        limit: i64,
    ) -> Result<wire::PullPage, ServiceError> {
        if cursor < 0 {
            return Err(ServiceError::BadRequest(
                "the cursor is never negative".into(),
            ));
        }
        // A trainee sees no real documents: their workstation syncs only tutorial progress. (A
        // user's role never changes — a trainee who becomes staff gets a staff account — so a
        // cursor moved on here never skips documents that account may see later.)
        if !caller.user.role.sees_documents() {
            return Ok(wire::PullPage {
                changes: Vec::new(),
                next_cursor: cursor.max(self.store.sync_position().await?),
                next_after: None,
                complete: true,
                revoked_certificates: None,
            });
        }
        let after = after.map(|id| check_id("document", id)).transpose()?;
        let limit = limit.clamp(1, 500);
        let page = self
            .store
            .pull(
                &caller.user.id,
                caller.user.unit_id.as_deref(),
                cursor,
                after.as_deref(),
                limit + 1,
            )
            .await?;
        if cursor > page.server_position {
            return Err(ServiceError::CursorAhead {
                client: cursor,
                server: page.server_position,
            });
        }
        let mut entries = page.entries;
        let more = entries.len() as i64 > limit;
        entries.truncate(limit as usize);
        let (next_cursor, next_after) = match (more, entries.last()) {
            (true, Some(last)) => (last.position, Some(last.id.clone())),
            _ => (page.server_position, None),
        };
        let changes = entries
            .into_iter()
            .map(|entry| match entry.kind {
                PullEntryKind::Visible(document) => wire::DocumentChange::Visible {
                    position: entry.position,
                    document: document_info(&document),
                },
                PullEntryKind::Removed => wire::DocumentChange::Removed {
                    position: entry.position,
                    document_id: entry.id,
                },
                PullEntryKind::Annotation(annotation) => wire::DocumentChange::Annotation {
                    position: entry.position,
                    annotation: annotation_state(annotation),
                },
            })
            .collect();
        // Only a server with the organisation's CA has a revocation list to fetch.
        let revoked_certificates = if more || self.ca.is_none() {
            None
        } else {
            Some(self.store.revoked_certificates().await?.len() as u64)
        };
        Ok(wire::PullPage {
            changes,
            next_cursor,
            next_after,
            complete: !more,
            revoked_certificates,
        })
    }

    /// Applies pushed operations in order, each exactly once (see [`wire::OpOutcome`]). An
    /// operation the caller may not do is rejected with a reason; the others still apply.
    pub async fn push(
        &self,
        caller: &Caller,
        request: &wire::PushRequest,
    ) -> Result<wire::PushResponse, ServiceError> {
        // A trainee pushes only tutorial progress; anything else is refused below.
        let only_training = request
            .ops
            .iter()
            .all(|op| matches!(op.change, wire::OpChange::TrainingProgress { .. }));
        if !only_training {
            Self::require_documents(caller)?;
        }
        if request.ops.len() > wire::MAX_PUSH_OPS {
            return Err(ServiceError::BadRequest(format!(
                "push at most {} operations at a time",
                wire::MAX_PUSH_OPS
            )));
        }
        let mut results = Vec::with_capacity(request.ops.len());
        for op in &request.ops {
            let outcome = match self.push_one(caller, op).await {
                Ok(outcome) => outcome,
                Err(error @ (ServiceError::Store(_) | ServiceError::Blob(_))) => return Err(error),
                // The document is not the caller's now, but this very op was applied for them
                // before (its answer was lost) — on the main line, given way, or kept as a
                // conflict branch: it is answered as applied, so their workstation does not count
                // it lost when the document is purged there (the server holds it). Should the
                // document come back to them, their next pull finds its head continues less than
                // they hold and waits; their next push, answered as a conflict now that they see
                // the document, sets a revision kept as a conflict branch aside with a request to
                // sign again.
                Err(ServiceError::NotFound(_))
                    if matches!(
                        self.store
                            .applied_op_outcome(&op.op_id, &caller.user.id)
                            .await?
                            .as_deref(),
                        Some("applied" | "superseded" | "conflict")
                    ) =>
                {
                    wire::OpOutcome::AlreadyApplied
                }
                Err(error) => wire::OpOutcome::Rejected {
                    code: error.code().to_string(),
                    reason: error.to_string(),
                },
            };
            results.push(wire::OpResult {
                op_id: op.op_id.clone(),
                outcome,
            });
        }
        Ok(wire::PushResponse {
            results,
            position: self.store.sync_position().await?,
        })
    }

    async fn push_one(
        &self,
        caller: &Caller,
        op: &wire::PushOp,
    ) -> Result<wire::OpOutcome, ServiceError> {
        let op_id = check_id("operation", &op.op_id)?;
        let annotation = match &op.change {
            wire::OpChange::Annotation { annotation } => annotation,
            wire::OpChange::TrainingProgress { progress } => {
                return self.push_training(caller, op_id, progress).await
            }
            wire::OpChange::Revision {
                document_id,
                base_sha256,
                sha256,
                appended_sha256,
                cause,
            } => {
                return self
                    .push_revision(
                        caller,
                        op_id,
                        document_id,
                        base_sha256,
                        sha256,
                        appended_sha256,
                        cause,
                    )
                    .await
            }
        };
        let id = check_id("annotation", &annotation.id)?;
        let document = self.document(caller, &annotation.document_id).await?;
        if annotation.author != caller.user.username {
            return Err(ServiceError::Forbidden);
        }
        if annotation.body.len() > 64 * 1024
            || serde_json::from_str::<serde_json::Value>(&annotation.body).is_err()
        {
            return Err(ServiceError::BadRequest(
                "an annotation body is JSON of at most 64 KiB".into(),
            ));
        }
        check_text("annotation kind", &annotation.kind, 32)?;
        check_text("origin", &annotation.origin, 64)?;
        if annotation.page_no == 0 || annotation.revision < 1 || annotation.logical_clock < 1 {
            return Err(ServiceError::BadRequest(
                "page, revision and logical clock start at 1".into(),
            ));
        }
        let row = AnnotationRow {
            id,
            document_id: document.id,
            page_no: i64::from(annotation.page_no),
            kind: annotation.kind.clone(),
            author: annotation.author.clone(),
            body: annotation.body.clone(),
            revision: annotation.revision,
            logical_clock: annotation.logical_clock,
            origin: annotation.origin.clone(),
            deleted: annotation.deleted,
            created_at_ms: annotation.created_at_ms,
            modified_at_ms: annotation.modified_at_ms,
        };
        let applied = self
            .store
            .apply_annotation_op(&AnnotationOp {
                op_id,
                user_id: caller.user.id.clone(),
                device_id: caller.device_id.clone(),
                at: self.clock.now(),
                annotation: row,
            })
            .await?;
        Ok(match applied {
            OpApplied::Applied => wire::OpOutcome::Applied,
            OpApplied::AlreadyApplied => wire::OpOutcome::AlreadyApplied,
            OpApplied::Superseded => wire::OpOutcome::Conflict {
                reason: "a later change to this annotation stands; pull to get it".into(),
                head_sha256: None,
            },
            OpApplied::Mismatch => wire::OpOutcome::Rejected {
                code: wire::error_codes::CONFLICT.into(),
                reason: "an annotation with this id belongs to another document or author".into(),
            },
        })
    }

    /// A pushed revision: the base's bytes followed by the uploaded update must hash to
    /// `sha256` and be a readable PDF; then the store makes it the head if the base is the head
    /// (compare-and-swap) or keeps it as a conflict branch.
    #[allow(clippy::too_many_arguments)]
    async fn push_revision(
        &self,
        caller: &Caller,
        op_id: String,
        document_id: &str,
        base_sha256: &str,
        sha256: &str,
        appended_sha256: &str,
        cause: &str,
    ) -> Result<wire::OpOutcome, ServiceError> {
        let document = self.document(caller, document_id).await?;
        for (what, hash) in [
            ("base", base_sha256),
            ("revision", sha256),
            ("update", appended_sha256),
        ] {
            if !is_blob_name(hash) {
                return Err(ServiceError::BadRequest(format!(
                    "the {what} hash is not 64 lowercase hex digits of SHA-256"
                )));
            }
        }
        check_text("cause", cause, 64)?;
        if cause == LONG_TERM_CAUSE {
            return Err(ServiceError::BadRequest(format!(
                "the cause \"{LONG_TERM_CAUSE}\" is the server's own; name what made the revision"
            )));
        }
        if !self
            .store
            .is_document_revision(&document.id, base_sha256)
            .await?
        {
            return Err(ServiceError::BadRequest(
                "the base is not a revision of this document; pull and make the change again"
                    .into(),
            ));
        }
        if !self.blobs.contains(sha256).await? {
            if !self.blobs.contains(appended_sha256).await? {
                return Err(ServiceError::BadRequest(
                    "the update's bytes have not been uploaded; upload them, then push again"
                        .into(),
                ));
            }
            let base = self.blobs.get(base_sha256).await?;
            let appended = self.blobs.get(appended_sha256).await?;
            if base.len() + appended.len() > self.policy.max_document_bytes {
                return Err(ServiceError::TooLarge {
                    limit: self.policy.max_document_bytes,
                });
            }
            let mut whole = Vec::with_capacity(base.len() + appended.len());
            whole.extend_from_slice(&base);
            whole.extend_from_slice(&appended);
            if sha256_hex(&whole) != sha256 {
                return Err(ServiceError::BadRequest(
                    "the base followed by the update does not have the revision's SHA-256".into(),
                ));
            }
            let whole = Bytes::from(whole);
            check_pdf(whole.clone()).await?;
            self.blobs.put(whole).await?;
        }
        let size = self.blobs.size(sha256).await?;
        let applied = self
            .store
            .apply_revision_op(&RevisionOp {
                op_id,
                user_id: caller.user.id.clone(),
                device_id: caller.device_id.clone(),
                at: self.clock.now(),
                document_id: document.id.clone(),
                base_sha256: base_sha256.to_string(),
                sha256: sha256.to_string(),
                size: i64::try_from(size).unwrap_or(i64::MAX),
                cause: cause.to_string(),
                actor: caller.user.username.clone(),
            })
            .await?;
        // Audited by the store in the same transaction (a revised head, a conflict branch kept).
        tracing::info!(document = %document.id, outcome = ?applied, "pushed revision");
        let outcome = match applied {
            RevisionApplied::Applied => wire::OpOutcome::Applied,
            RevisionApplied::AlreadyApplied => wire::OpOutcome::AlreadyApplied,
            RevisionApplied::Conflict { head_sha256, .. } => wire::OpOutcome::Conflict {
                reason: "another revision of this document reached the server first; yours is kept there as a conflict branch — sign the new head again".into(),
                head_sha256: Some(head_sha256),
            },
            RevisionApplied::UnknownBase => wire::OpOutcome::Rejected {
                code: wire::error_codes::CONFLICT.into(),
                reason: "the base is not a revision of this document; pull and make the change again".into(),
            },
        };
        if outcome == wire::OpOutcome::Applied {
            // The pushed revision stands whatever happens here; a failed extension is audited
            // and the signature stays at B-B until the next signed revision.
            if let Err(error) = self
                .extend_signatures(pusher(caller), &document.id, sha256)
                .await
            {
                tracing::warn!(document = %document.id, %error, "the signatures were not extended for the long term");
                self.audit(
                    &caller.user.username,
                    "document.long_term_failed",
                    &document.id,
                    format!("{sha256}: {error}"),
                )
                .await?;
            }
        } else if outcome == wire::OpOutcome::AlreadyApplied {
            // Applied before, and still the head: a server stopped before it extended the
            // signatures does it now.
            let head = self.store.document_by_id(&document.id).await?;
            if head.is_some_and(|head| head.sha256 == sha256) {
                if let Err(error) = self
                    .extend_signatures(pusher(caller), &document.id, sha256)
                    .await
                {
                    tracing::warn!(document = %document.id, %error, "the signatures were not extended for the long term");
                }
            }
        }
        Ok(outcome)
    }

    /// Extends the signatures of the head `head_sha256` for the long term when its newest
    /// signature has no document time-stamp after it: the certificates of its signatures, the
    /// CA's and the TSA's, and the current CRL go into the `/DSS`, then the server's TSA stamps
    /// the whole file — two incremental updates, a new head on top of `head_sha256` (compare and
    /// swap, applied once: the operation id is derived from the head it extends). The new
    /// revision is recorded under `(user id, device id)`, who pushed the head. Whether it was made.
    async fn extend_signatures(
        &self,
        (user_id, device_id): (&str, &str),
        document_id: &str,
        head_sha256: &str,
    ) -> Result<bool, ServiceError> {
        let (Some(ca), Some(tsa)) = (&self.ca, &self.tsa) else {
            return Ok(false);
        };
        if !self.policy.extend_signatures {
            return Ok(false);
        }
        let failed = |e: outpost_pdf::PdfError| {
            ServiceError::Unavailable(format!("the long-term extension failed: {e}"))
        };
        let stopped = |e: tokio::task::JoinError| {
            ServiceError::Unavailable(format!("the long-term extension stopped: {e}"))
        };
        // Only a head whose newest signature has no time-stamp after it needs anything (a
        // burn-in, or a revision sealed already, costs no CRL and no time-stamp).
        let head = self.blobs.get(head_sha256).await?;
        let reading = head.clone();
        let mut certificates = tokio::task::spawn_blocking(move || {
            outpost_pdf::signatures_awaiting_time_stamp(&reading)
        })
        .await
        .map_err(stopped)?
        .map_err(failed)?;
        if certificates.is_empty() {
            return Ok(false);
        }
        for certificate in [ca.certificate_der().to_vec(), tsa.certificate_der()] {
            if !certificates.contains(&certificate) {
                certificates.push(certificate);
            }
        }
        let crl = self.crl().await?;
        let now = self.clock.now();
        let stamper = tsa.stamper(now, self.entropy.as_ref());
        let extended = tokio::task::spawn_blocking(move || {
            let data = outpost_pdf::ValidationData {
                certificates,
                crls: vec![crl],
            };
            let with_data = outpost_pdf::add_validation_data(&head, &data)?;
            outpost_pdf::add_document_timestamp(
                &with_data,
                &stamper,
                outpost_pdf::TIME_STAMP_RESERVED_BYTES,
            )
        })
        .await
        .map_err(stopped)?
        .map_err(failed)?;
        let sha256 = sha256_hex(&extended);
        let size = i64::try_from(extended.len()).unwrap_or(i64::MAX);
        self.blobs.put(Bytes::from(extended)).await?;
        let applied = self
            .store
            .apply_revision_op(&RevisionOp {
                op_id: format!("long-term:{head_sha256}"),
                user_id: user_id.to_string(),
                device_id: device_id.to_string(),
                at: now,
                document_id: document_id.to_string(),
                base_sha256: head_sha256.to_string(),
                sha256: sha256.clone(),
                size,
                cause: LONG_TERM_CAUSE.to_string(),
                actor: "server".into(),
            })
            .await?;
        // Audited by the store as `document.long_term` in the same transaction.
        Ok(applied == RevisionApplied::Applied)
    }

    /// Seals every head a workstation pushed whose newest signature still waits for its
    /// validation data and time-stamp — left so when the server stopped between applying a push
    /// and extending it, or when the extension failed (the CA's token was away). Run at start
    /// and then periodically; a head already sealed, or without a signature, costs a read. Returns
    /// how many heads were sealed; a failure is logged (and audited when `audit_failures`, so a
    /// head that cannot be sealed is not audited again at every sweep) and the others go on.
    pub async fn seal_waiting_signatures(
        &self,
        audit_failures: bool,
    ) -> Result<usize, ServiceError> {
        if self.ca.is_none() || self.tsa.is_none() || !self.policy.extend_signatures {
            return Ok(0);
        }
        let mut sealed = 0;
        for head in self.store.pushed_heads().await? {
            match self
                .extend_signatures(
                    (&head.user_id, &head.device_id),
                    &head.document_id,
                    &head.sha256,
                )
                .await
            {
                Ok(true) => sealed += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(document = %head.document_id, %error, "a waiting signature was not sealed");
                    if audit_failures {
                        self.audit(
                            "server",
                            "document.long_term_failed",
                            &head.document_id,
                            format!("{}: {error}", head.sha256),
                        )
                        .await?;
                    }
                }
            }
        }
        Ok(sealed)
    }

    fn check_upload(sha256: &str, size: u64, limit: usize) -> Result<(), ServiceError> {
        if !is_blob_name(sha256) {
            return Err(ServiceError::BadRequest(
                "an upload is named by its SHA-256: 64 lowercase hex digits".into(),
            ));
        }
        if size == 0 {
            return Err(ServiceError::BadRequest("an upload is never empty".into()));
        }
        if size > limit as u64 {
            return Err(ServiceError::TooLarge { limit });
        }
        Ok(())
    }

    /// How much of the caller's upload of `size` bytes named `sha256` the server holds.
    pub async fn upload_status(
        &self,
        caller: &Caller,
        sha256: &str,
        size: u64,
    ) -> Result<wire::UploadStatus, ServiceError> {
        Self::require_documents(caller)?;
        Self::check_upload(sha256, size, self.policy.max_document_bytes)?;
        let complete = self.blobs.contains(sha256).await?;
        let received = if complete {
            size
        } else {
            self.blobs
                .staged_len(&caller.user.id, sha256)
                .await?
                .min(size)
        };
        Ok(wire::UploadStatus {
            sha256: sha256.to_string(),
            size,
            received,
            complete,
        })
    }

    /// Receives bytes of the caller's upload from `offset` (at most what is still missing). The
    /// bytes that arrived are kept even when the body breaks off, so the next try resumes there;
    /// once all `size` bytes are held, their hash is checked and they become a blob.
    pub async fn upload_part(
        &self,
        caller: &Caller,
        sha256: &str,
        size: u64,
        offset: u64,
        body: axum::body::Body,
    ) -> Result<wire::UploadStatus, ServiceError> {
        Self::require_documents(caller)?;
        Self::check_upload(sha256, size, self.policy.max_document_bytes)?;
        if self.blobs.contains(sha256).await? {
            return self.upload_status(caller, sha256, size).await;
        }
        let held = self.blobs.staged_len(&caller.user.id, sha256).await?;
        if offset > held || offset >= size {
            return Err(ServiceError::BadRequest(format!(
                "the upload continues at byte {held}, not {offset}"
            )));
        }
        // Written to the store as it arrives: a part holds a few chunks in memory, not itself.
        let received_len = match self
            .blobs
            .stage_stream(
                &caller.user.id,
                sha256,
                offset,
                body.into_data_stream(),
                size - offset,
            )
            .await?
        {
            Staged::Whole(kept) => kept,
            Staged::BrokenOff { why, .. } => {
                return Err(ServiceError::BadRequest(format!(
                    "the upload broke off ({why}); what arrived is kept, continue from the status"
                )))
            }
            Staged::TooLong => {
                return Err(ServiceError::BadRequest(format!(
                    "the upload is {size} bytes; this part goes past its end"
                )))
            }
        };
        // The new part starts within what was held, so the held prefix now reaches its end.
        let held = held.max(offset + received_len).min(size);
        if held >= size {
            match self.blobs.finish_upload(&caller.user.id, sha256, size).await {
                Ok(()) => {}
                Err(BlobError::UploadMismatch(name)) => {
                    return Err(ServiceError::BadRequest(format!(
                        "the uploaded bytes do not have SHA-256 {name}; they were discarded, upload them again"
                    )))
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(wire::UploadStatus {
            sha256: sha256.to_string(),
            size,
            received: held,
            complete: held >= size,
        })
    }

    /// Takes the next entries of the caller's device's audit chain and checks its continuity:
    /// positions without gaps, each `prev_hash` the previous entry's hash, each hash the hash of
    /// its fields, and nothing held rewritten. Problems are flagged (and audited) but the entries
    /// are kept as evidence.
    pub async fn upload_audit(
        &self,
        caller: &Caller,
        upload: &wire::AuditUpload,
    ) -> Result<wire::AuditUploadResult, ServiceError> {
        if upload.entries.len() > 1000 {
            return Err(ServiceError::BadRequest(
                "upload at most 1000 audit entries at a time".into(),
            ));
        }
        let device = caller.device_id.as_str();
        let mut last = self.store.device_audit_last(device).await?;
        let mut rows = Vec::new();
        let mut problems: Vec<(i64, String)> = Vec::new();
        for entry in &upload.entries {
            if entry.seq < 1 {
                return Err(ServiceError::BadRequest(
                    "audit positions start at 1".into(),
                ));
            }
            if let Some((last_seq, _)) = &last {
                if entry.seq <= *last_seq {
                    if self
                        .store
                        .device_audit_hash(device, entry.seq)
                        .await?
                        .as_deref()
                        != Some(entry.hash.as_str())
                    {
                        problems.push((entry.seq, "rewritten".into()));
                    }
                    continue;
                }
            }
            let (expected_seq, expected_prev) = match &last {
                Some((seq, hash)) => (seq + 1, hash.clone()),
                None => (1, AUDIT_GENESIS.to_string()),
            };
            if entry.seq != expected_seq {
                problems.push((entry.seq, "gap".into()));
            } else if entry.prev_hash != expected_prev {
                problems.push((entry.seq, "break".into()));
            }
            if audit_entry_hash(entry) != entry.hash {
                problems.push((entry.seq, "hash".into()));
            }
            rows.push(DeviceAuditRow {
                seq: entry.seq,
                prev_hash: entry.prev_hash.clone(),
                hash: entry.hash.clone(),
                entry: serde_json::to_string(entry).unwrap_or_default(),
            });
            last = Some((entry.seq, entry.hash.clone()));
        }
        self.store
            .store_device_audit(device, &rows, &problems, self.clock.now())
            .await?;
        for (seq, problem) in &problems {
            self.audit(
                &caller.user.username,
                "device.audit_problem",
                device,
                format!("{problem} at position {seq}"),
            )
            .await?;
        }
        Ok(wire::AuditUploadResult {
            stored_up_to: last.map_or(0, |(seq, _)| seq),
            problems: problems
                .into_iter()
                .map(|(seq, problem)| wire::AuditProblem { seq, problem })
                .collect(),
        })
    }

    /// The continuity problems flagged in a device's audit chain.
    pub async fn device_audit_problems(
        &self,
        device_id: &str,
    ) -> Result<Vec<(i64, String)>, ServiceError> {
        let device_id = check_id("device", device_id)?;
        Ok(self.store.device_audit_problems(&device_id).await?)
    }

    /// Part of a visible document's bytes: `range` is (first byte, last byte inclusive or to the
    /// end). Returns the bytes, the first byte's offset and the total size. Workstations resume
    /// interrupted downloads with it and check the SHA-256 of the whole before using it.
    pub async fn document_content_range(
        &self,
        caller: &Caller,
        document_id: &str,
        range: (u64, Option<u64>),
    ) -> Result<(crate::blobs::BlobStream, u64, u64, u64), ServiceError> {
        let document = self.document(caller, document_id).await?;
        let size = u64::try_from(document.size).unwrap_or(0);
        let (first, last) = (
            range.0,
            range
                .1
                .unwrap_or(size.saturating_sub(1))
                .min(size.saturating_sub(1)),
        );
        if size == 0 || first >= size || last < first {
            return Err(ServiceError::RangeNotSatisfiable { size });
        }
        let bytes = self
            .blobs
            .stream_range(&document.sha256, first..last + 1)
            .await?;
        Ok((bytes, first, last, size))
    }

    /// The bytes of a document visible to the caller.
    pub async fn document_content(
        &self,
        caller: &Caller,
        document_id: &str,
    ) -> Result<Bytes, ServiceError> {
        let document = self.document(caller, document_id).await?;
        Ok(self.blobs.get(&document.sha256).await?)
    }
}

impl Service {
    fn certificate_authority(&self) -> Result<&CertificateAuthority, ServiceError> {
        self.ca.as_deref().ok_or_else(|| {
            ServiceError::Unavailable(
                "this server has no certificate authority configured; ask the administrator to set one up".into(),
            )
        })
    }

    /// Issues a signer certificate to the caller (staff or supervisor) for the key in the CSR,
    /// recorded against the caller's device so that revoking the device revokes it.
    pub async fn issue_certificate(
        &self,
        caller: &Caller,
        csr_der: &[u8],
    ) -> Result<wire::CertificateIssued, ServiceError> {
        if !caller.user.role.may_sign() {
            return Err(ServiceError::Forbidden);
        }
        let ca = self.certificate_authority()?;
        if csr_der.is_empty() || csr_der.len() > 16 * 1024 {
            return Err(ServiceError::BadRequest(
                "the certificate request is empty or too large".into(),
            ));
        }
        // One certificate per key: a request sent again from the same device (its answer lost on
        // the way, or two sent at the same moment) gets the certificate already issued for that
        // key, while it is valid and not revoked. The store looks and records in one transaction.
        let public_key = crate::ca::request_public_key(csr_der)?;
        let same_key: crate::store::SameKey = std::sync::Arc::new(move |der: &[u8]| {
            crate::ca::certificate_public_key(der).as_deref() == Some(public_key.as_slice())
        });
        let now = self.clock.now();
        let held = self
            .store
            .certificates_of_user(&caller.user.id)
            .await?
            .into_iter()
            .find(|c| {
                c.device_id == caller.device_id
                    && c.revoked_at.is_none()
                    && c.not_after > now
                    && same_key(&c.der)
            });
        if let Some(issued) = held {
            return self.send_certificate_again(caller, ca, issued).await;
        }
        let unit = match &caller.user.unit_id {
            Some(id) => self.store.unit_by_id(id).await?.map(|unit| unit.name),
            None => None,
        };
        let subject = SignerSubject {
            display_name: caller.user.display_name.clone(),
            username: caller.user.username.clone(),
            unit,
        };
        let issued = ca.issue(
            csr_der,
            &subject,
            self.clock.now(),
            self.policy.certificate_days,
            &*self.entropy,
        )?;
        let row = CertificateRow {
            serial: issued.serial.clone(),
            user_id: caller.user.id.clone(),
            device_id: caller.device_id.clone(),
            subject: issued.subject.clone(),
            der: issued.der.clone(),
            not_before: issued.not_before,
            not_after: issued.not_after,
            issued_at: self.clock.now(),
            revoked_at: None,
        };
        match self.store.insert_certificate_once(&row, same_key).await? {
            CertificateInsert::Recorded => {}
            // Another request for this key was issued meanwhile: that one is the certificate,
            // and the one just signed is never handed out.
            CertificateInsert::Held(issued) => {
                return self.send_certificate_again(caller, ca, issued).await
            }
            // Disabled or revoked while this request was on its way.
            CertificateInsert::Withdrawn => return Err(ServiceError::Forbidden),
        }
        self.audit(
            &caller.user.username,
            "certificate.issued",
            &caller.user.username,
            format!("serial {}, device {}", issued.serial, caller.device_id),
        )
        .await?;
        Ok(issued_answer(ca, row))
    }

    /// Answers a request for a key already certified on the caller's device with that
    /// certificate, audited as sent again.
    async fn send_certificate_again(
        &self,
        caller: &Caller,
        ca: &CertificateAuthority,
        issued: CertificateRow,
    ) -> Result<wire::CertificateIssued, ServiceError> {
        self.audit(
            &caller.user.username,
            "certificate.sent_again",
            &caller.user.username,
            format!(
                "serial {} sent again for the same key, device {}",
                issued.serial, caller.device_id
            ),
        )
        .await?;
        Ok(issued_answer(ca, issued))
    }

    /// The CA certificate (DER).
    pub fn ca_certificate(&self) -> Result<Vec<u8>, ServiceError> {
        Ok(self.certificate_authority()?.certificate_der().to_vec())
    }

    /// The current CRL (DER), listing every revoked certificate.
    pub async fn crl(&self) -> Result<Vec<u8>, ServiceError> {
        let ca = self.certificate_authority()?;
        let revoked = self.store.revoked_certificates().await?;
        Ok(ca.crl(&revoked, self.clock.now())?)
    }

    /// The certificates issued to a user.
    pub async fn certificates(&self, username: &str) -> Result<Vec<CertificateRow>, ServiceError> {
        let user = self.user_named(username).await?;
        Ok(self.store.certificates_of_user(&user.id).await?)
    }
}

/// Who a revision made on top of `caller`'s push is recorded under: (user id, device id).
fn pusher(caller: &Caller) -> (&str, &str) {
    (&caller.user.id, &caller.device_id)
}

/// Whether `password` matches the PHC string; Argon2id runs on the blocking pool so that a burst of
/// logins never stalls the requests behind them.
async fn password_matches(password: &str, phc: &str) -> bool {
    let password = Zeroizing::new(password.to_string());
    let phc = phc.to_string();
    tokio::task::spawn_blocking(move || identity::verify_password(&password, &phc))
        .await
        .unwrap_or(false)
}

impl Service {
    async fn hash_password(&self, password: &str) -> Result<String, ServiceError> {
        let password = Zeroizing::new(password.to_string());
        let entropy = Arc::clone(&self.entropy);
        tokio::task::spawn_blocking(move || identity::hash_password(&password, &*entropy))
            .await
            .map_err(|error| ServiceError::Identity(IdentityError::Hashing(error.to_string())))?
            .map_err(ServiceError::from)
    }
}

/// Checks that `bytes` parse as a PDF (on the blocking pool: parsing is CPU work).
async fn check_pdf(bytes: Bytes) -> Result<(), ServiceError> {
    if !bytes.starts_with(b"%PDF-") {
        return Err(ServiceError::NotAPdf(
            "it does not start with a %PDF- header".into(),
        ));
    }
    tokio::task::spawn_blocking(move || {
        lopdf::Document::load_mem(&bytes)
            .map(|_| ())
            .map_err(|error| ServiceError::NotAPdf(error.to_string()))
    })
    .await
    .map_err(|error| ServiceError::NotAPdf(format!("the PDF check was interrupted: {error}")))?
}

/// The `prev_hash` of a chain's first entry.
const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of an audit entry's fields, as workstations compute it (see
/// [`wire::AuditEntryUpload`]).
pub fn audit_entry_hash(entry: &wire::AuditEntryUpload) -> String {
    use sha2::Digest;
    let canonical = serde_json::json!([
        entry.seq,
        entry.at_ms,
        entry.actor,
        entry.action,
        entry.document_id,
        entry.outcome,
        entry.detail,
        entry.prev_hash
    ]);
    hex::encode(sha2::Sha256::digest(canonical.to_string().as_bytes()))
}

/// The wire form of an annotation.
fn annotation_state(row: AnnotationRow) -> wire::AnnotationState {
    wire::AnnotationState {
        id: row.id,
        document_id: row.document_id,
        page_no: u32::try_from(row.page_no).unwrap_or(0),
        kind: row.kind,
        author: row.author,
        body: row.body,
        revision: row.revision,
        logical_clock: row.logical_clock,
        origin: row.origin,
        deleted: row.deleted,
        created_at_ms: row.created_at_ms,
        modified_at_ms: row.modified_at_ms,
    }
}

/// The wire form of a document record.
pub fn document_info(document: &DocumentRow) -> wire::DocumentInfo {
    wire::DocumentInfo {
        id: document.id.clone(),
        title: document.title.clone(),
        classification: document.classification.clone(),
        sha256: document.sha256.clone(),
        size: u64::try_from(document.size).unwrap_or(0),
        registered_at: document.registered_at,
    }
}

/// A signer certificate as the workstation receives it: its DER and the CA's, in base64url.
fn issued_answer(ca: &CertificateAuthority, issued: CertificateRow) -> wire::CertificateIssued {
    let encode = |der: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(der);
    wire::CertificateIssued {
        serial: issued.serial,
        certificate: encode(&issued.der),
        chain: vec![encode(ca.certificate_der())],
        not_after: issued.not_after,
    }
}
