//! The server's storage: one interface ([`Store`]) with two real backends that pass one test
//! suite: SQLite ([`SqliteStore`], the embedded default) and PostgreSQL ([`PostgresStore`], for
//! more than one server node). Each backend applies its own versioned migrations at open.
//!
//! Every method that must not race with another server node is a single atomic statement (claiming
//! a TOTP step, consuming a recovery code or a refresh token, counting a failed login), so two
//! nodes over one PostgreSQL behave as one server.

mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use outpost_protocol::Role;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same unique value exists (a unit or user name, an active assignment).
    #[error("{0} already exists")]
    Duplicate(String),
    /// The SQLite database failed.
    #[error(
        "the SQLite database failed: {0}; check the data directory's disk space and permissions"
    )]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL database failed.
    #[error("the PostgreSQL database failed: {0}; check that the server is running and reachable")]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be taken from the pool.
    #[error(
        "no PostgreSQL connection is available: {0}; check that the database server is running"
    )]
    Pool(String),
    /// The schema migrations failed; the database was left as it was.
    #[error("the database schema could not be migrated: {0}")]
    Migration(String),
    /// The database was written by a newer server.
    #[error("the database has schema version {found}, newer than this server knows ({known}); upgrade outpost-server")]
    TooNew {
        /// The version in the database.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A stored value could not be read back (a corrupt or hand-edited row).
    #[error("a stored value is invalid: {0}")]
    Corrupt(String),
    /// A blocking database task panicked or was cancelled.
    #[error("a database task was interrupted: {0}")]
    Interrupted(String),
}

/// A unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRow {
    /// The unit's id (UUID).
    pub id: String,
    /// The unit's unique name.
    pub name: String,
    /// When it was created (Unix seconds).
    pub created_at: i64,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The user's id (UUID).
    pub id: String,
    /// The unique login name.
    pub username: String,
    /// The name shown to people.
    pub display_name: String,
    /// The role.
    pub role: Role,
    /// The unit, if any.
    pub unit_id: Option<String>,
    /// The Argon2id PHC string of the password.
    pub password_hash: String,
    /// The TOTP secret, when a second factor is enrolled.
    pub totp_secret: Option<Vec<u8>>,
    /// The last TOTP time step accepted (a code is accepted once).
    pub last_totp_step: Option<i64>,
    /// Failed logins since the last success or unlock.
    pub failed_logins: i64,
    /// Until when the account is locked (Unix seconds), if it is.
    pub locked_until: Option<i64>,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When an administrator disabled it, if they did.
    pub disabled_at: Option<i64>,
}

/// An enrolled workstation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    /// The device's id (UUID).
    pub id: String,
    /// The user who enrolled it.
    pub user_id: String,
    /// Its name.
    pub name: String,
    /// Its ECDSA P-256 public key (SubjectPublicKeyInfo DER).
    pub public_key: Vec<u8>,
    /// When it was enrolled (Unix seconds).
    pub enrolled_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// An issued bearer token (access or refresh), stored by the SHA-256 of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Hex SHA-256 of the token's value (the value itself is never stored).
    pub token_hash: String,
    /// The login session the token belongs to; revoking it revokes every token of the session.
    pub family_id: String,
    /// The user.
    pub user_id: String,
    /// The device the token is bound to.
    pub device_id: String,
    /// When it stops working (Unix seconds).
    pub expires_at: i64,
    /// Whether it was used: a refresh token exchanged, an access token presented (a token is
    /// stored unused, whatever this says when it is inserted).
    pub used: bool,
}

/// A registered document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRow {
    /// The document's id (UUID).
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its classification.
    pub classification: String,
    /// Hex SHA-256 of its bytes (the blob's name).
    pub sha256: String,
    /// Its size in bytes.
    pub size: i64,
    /// Who registered it.
    pub registered_by: String,
    /// When (Unix seconds).
    pub registered_at: i64,
}

/// Whom an assignment is for, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    /// One user.
    User(String),
    /// Every member of a unit.
    Unit(String),
}

/// An assignment of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRow {
    /// The assignment's id (UUID).
    pub id: String,
    /// The document.
    pub document_id: String,
    /// Whom it is for.
    pub assignee: Assignee,
    /// When it was made (Unix seconds).
    pub assigned_at: i64,
}

/// A signer certificate the organisation's CA issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRow {
    /// The serial number, lowercase hex.
    pub serial: String,
    /// The signer.
    pub user_id: String,
    /// The device that requested it.
    pub device_id: String,
    /// The subject, as text for people.
    pub subject: String,
    /// The certificate (DER).
    pub der: Vec<u8>,
    /// Start of validity (Unix seconds).
    pub not_before: i64,
    /// End of validity (Unix seconds).
    pub not_after: i64,
    /// When it was issued (Unix seconds).
    pub issued_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// What [`Store::insert_certificate_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateInsert {
    /// Recorded: it is the certificate for the key.
    Recorded,
    /// A valid certificate for the same key on the same device was held: that one stands, and
    /// nothing was recorded.
    Held(CertificateRow),
    /// The user was disabled or the device revoked before it could be recorded: nothing was.
    Withdrawn,
}

/// Whether a stored certificate (its DER) certifies the key being certified now.
pub type SameKey = std::sync::Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// An audit record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    /// When (Unix seconds).
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub subject: String,
    /// Details; never a secret.
    pub detail: String,
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Its position in the log.
    pub seq: i64,
    /// The record.
    pub record: NewAudit,
}

/// An annotation as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotationRow {
    /// Its id.
    pub id: String,
    /// Its document.
    pub document_id: String,
    /// Its page, 1-based.
    pub page_no: i64,
    /// Its kind's name.
    pub kind: String,
    /// Its author's login name.
    pub author: String,
    /// The annotation as JSON text.
    pub body: String,
    /// Its revision.
    pub revision: i64,
    /// The Lamport clock of its last change.
    pub logical_clock: i64,
    /// The vault that made its last change.
    pub origin: String,
    /// A tombstone.
    pub deleted: bool,
    /// Created (for people).
    pub created_at_ms: i64,
    /// Last changed (for people).
    pub modified_at_ms: i64,
}

/// A pushed annotation change, to apply exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotationOp {
    /// The workstation's id for the operation.
    pub op_id: String,
    /// Who pushed it.
    pub user_id: String,
    /// From which device.
    pub device_id: String,
    /// When it arrived (for people).
    pub at: i64,
    /// The annotation after the change.
    pub annotation: AnnotationRow,
}

/// What applying a pushed operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpApplied {
    /// Applied now.
    Applied,
    /// This op id was applied before; nothing changed.
    AlreadyApplied,
    /// Recorded, but the stored annotation is newer (a higher (clock, origin)) and stays.
    Superseded,
    /// The annotation exists on another document or by another author: refused, not recorded.
    Mismatch,
}

/// The cause recorded for a revision the server made by extending signatures for the long term
/// (validation data and a document time-stamp). Such a revision is derived: a revision pushed
/// on its base replaces it as the head, and the server extends the new head instead.
pub const LONG_TERM_CAUSE: &str = "long-term validation";

/// A document head that a workstation pushed ([`Store::pushed_heads`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedHead {
    /// The document.
    pub document_id: String,
    /// Its head.
    pub sha256: String,
    /// Who pushed the head.
    pub user_id: String,
    /// From which device.
    pub device_id: String,
}

/// A pushed tutorial progress record, to apply exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingOp {
    /// The workstation's id for the operation.
    pub op_id: String,
    /// Who pushed it.
    pub user_id: String,
    /// From which device.
    pub device_id: String,
    /// When it arrived (for people).
    pub at: i64,
    /// The record's own order ([`outpost_protocol::TrainingProgress::sequence`]).
    pub sequence: i64,
    /// The record (JSON of [`outpost_protocol::TrainingProgress`]).
    pub progress: String,
}

/// The newest tutorial progress of one user on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingRow {
    /// The user.
    pub user_id: String,
    /// The device.
    pub device_id: String,
    /// The record's own order.
    pub sequence: i64,
    /// The record (JSON).
    pub progress: String,
    /// When it arrived.
    pub received_at: i64,
}

/// A pushed document revision, to apply exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionOp {
    /// The workstation's id for the operation.
    pub op_id: String,
    /// Who pushed it.
    pub user_id: String,
    /// From which device.
    pub device_id: String,
    /// When it arrived (for people).
    pub at: i64,
    /// The document.
    pub document_id: String,
    /// The revision it was made on.
    pub base_sha256: String,
    /// The whole new revision's hash (its blob is stored already).
    pub sha256: String,
    /// The whole new revision's size.
    pub size: i64,
    /// What made it, for people.
    pub cause: String,
    /// Whom its audit entry names: the pushing user's name, or "server" for its own extension.
    pub actor: String,
}

impl RevisionOp {
    /// The audit entry a store appends in the same transaction that records `outcome`: a
    /// revision made the head (the server's long-term extension named as such), or one kept as a
    /// conflict branch — once: the same push again is the same conflict. None for the rest, and
    /// for an extension that lost to a push made meanwhile (it is made again on the new head).
    /// Workstations cannot push the extension's cause ([`LONG_TERM_CAUSE`] is the server's).
    pub fn audit_record(&self, outcome: &RevisionApplied) -> Option<NewAudit> {
        let change = format!("{}: {} -> {}", self.cause, self.base_sha256, self.sha256);
        let extension = self.cause == LONG_TERM_CAUSE;
        let (action, detail) = match outcome {
            RevisionApplied::Applied if extension => ("document.long_term", change),
            RevisionApplied::Applied => ("document.revised", change),
            RevisionApplied::Conflict { first: true, .. } if !extension => (
                "document.revision_conflict",
                format!("{change} kept as a conflict branch"),
            ),
            _ => return None,
        };
        Some(NewAudit {
            at: self.at,
            actor: self.actor.clone(),
            action: action.into(),
            subject: self.document_id.clone(),
            detail,
        })
    }
}

/// What applying a pushed revision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevisionApplied {
    /// It is the head now.
    Applied,
    /// This op id was applied before, or this revision is the head already; nothing changed.
    AlreadyApplied,
    /// Its base was not the head (nor the base of the server's long-term extension that is the
    /// head): kept as a conflict branch (now or when first pushed).
    Conflict {
        /// The head now.
        head_sha256: String,
        /// Whether this push kept it (false: an earlier push of the same operation, or another
        /// operation carrying the same revision, did).
        first: bool,
    },
    /// Its base is not a revision of this document: refused, not recorded.
    UnknownBase,
}

impl RevisionApplied {
    /// A conflict is first only when this push's branch row was `kept` (inserted now): another
    /// operation with the same revision found it kept already.
    pub fn first_kept(self, kept: bool) -> Self {
        match self {
            RevisionApplied::Conflict { head_sha256, first } => RevisionApplied::Conflict {
                head_sha256,
                first: first && kept,
            },
            other => other,
        }
    }
}

/// One uploaded entry of a device's audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuditRow {
    /// Its position.
    pub seq: i64,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// Its hash.
    pub hash: String,
    /// The whole entry as JSON.
    pub entry: String,
}

/// What one pull entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEntryKind {
    /// The document is visible (new, or its head changed).
    Visible(DocumentRow),
    /// The document is no longer visible.
    Removed,
    /// An annotation of a visible document changed.
    Annotation(AnnotationRow),
}

/// One entry of a workstation's pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullEntry {
    /// The latest sync position that concerns it for this user.
    pub position: i64,
    /// The document's id (or, for an annotation, the annotation's): the tie-break of the order.
    pub id: String,
    /// What it is.
    pub kind: PullEntryKind,
}

/// One page of a pull, read in one consistent snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullPage {
    /// The entries after the requested position, in (position, document id) order.
    pub entries: Vec<PullEntry>,
    /// The server's sync position in the same snapshot.
    pub server_position: i64,
}

/// What happened when a refresh token was presented for consumption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshClaim {
    /// It was unused and is now used.
    Claimed,
    /// It had been used before: a sign that it was copied.
    AlreadyUsed,
    /// No such token.
    Unknown,
}

/// The server's storage interface. Both backends implement all of it with the same meaning.
#[async_trait]
pub trait Store: Send + Sync {
    /// Which backend this is ("sqlite" or "postgres"), for logs and the health endpoint.
    fn backend(&self) -> &'static str;

    /// Adds a unit; [`StoreError::Duplicate`] when the name is taken.
    async fn create_unit(&self, unit: &UnitRow) -> Result<(), StoreError>;
    /// The unit with this name.
    async fn unit_by_name(&self, name: &str) -> Result<Option<UnitRow>, StoreError>;
    /// The unit with this id.
    async fn unit_by_id(&self, id: &str) -> Result<Option<UnitRow>, StoreError>;
    /// Every unit, by name.
    async fn list_units(&self) -> Result<Vec<UnitRow>, StoreError>;

    /// Adds a user; [`StoreError::Duplicate`] when the login name is taken.
    async fn create_user(&self, user: &UserRow) -> Result<(), StoreError>;
    /// The user with this login name.
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, StoreError>;
    /// The user with this id.
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError>;
    /// Every user, by login name.
    async fn list_users(&self) -> Result<Vec<UserRow>, StoreError>;
    /// Replaces the password hash, and clears failed logins and any lock.
    async fn set_password_hash(&self, user_id: &str, password_hash: &str)
        -> Result<(), StoreError>;
    /// Replaces the TOTP secret (or removes it with `None`) and the recovery codes (by hash),
    /// in one transaction.
    async fn set_second_factor(
        &self,
        user_id: &str,
        totp_secret: Option<&[u8]>,
        recovery_code_hashes: &[String],
    ) -> Result<(), StoreError>;
    /// Records that a TOTP step was used, atomically, only if it is later than the last one
    /// used; false means the code (or an earlier one) was used already.
    async fn claim_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;
    /// Removes one recovery code, atomically; false when it does not exist (or was used).
    async fn consume_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
    ) -> Result<bool, StoreError>;
    /// Counts a failed login atomically; when the count reaches `threshold` the account is
    /// locked until `lock_until`. Returns the new count and the lock, if any.
    async fn record_failed_login(
        &self,
        user_id: &str,
        threshold: i64,
        lock_until: i64,
    ) -> Result<(i64, Option<i64>), StoreError>;
    /// Clears failed logins and any lock.
    async fn clear_failed_logins(&self, user_id: &str) -> Result<(), StoreError>;

    /// Disables a user: marks the account, revokes every device and certificate of it and ends its
    /// sessions, in one transaction; false when no such user.
    async fn disable_user(&self, user_id: &str, at: i64) -> Result<bool, StoreError>;

    /// Adds a device.
    async fn create_device(&self, device: &DeviceRow) -> Result<(), StoreError>;
    /// The device with this id.
    async fn device_by_id(&self, id: &str) -> Result<Option<DeviceRow>, StoreError>;
    /// Every device (of one user, when given), by enrolment.
    async fn list_devices(&self, user_id: Option<&str>) -> Result<Vec<DeviceRow>, StoreError>;
    /// Marks a device revoked, revokes the certificates it requested and spends its refresh
    /// tokens (its access tokens stay, so that the device is told it was revoked); false when it
    /// does not exist.
    async fn revoke_device(&self, id: &str, at: i64) -> Result<bool, StoreError>;

    /// Stores an access token.
    async fn insert_access_token(&self, token: &TokenRow) -> Result<(), StoreError>;
    /// The access token with this hash.
    async fn access_token(&self, token_hash: &str) -> Result<Option<TokenRow>, StoreError>;
    /// Stores a refresh token (unused).
    async fn insert_refresh_token(&self, token: &TokenRow) -> Result<(), StoreError>;
    /// The refresh token with this hash, used or not.
    async fn refresh_token(&self, token_hash: &str) -> Result<Option<TokenRow>, StoreError>;
    /// Marks a refresh token used, atomically.
    async fn claim_refresh_token(&self, token_hash: &str) -> Result<RefreshClaim, StoreError>;
    /// Deletes every access token and spends every refresh token of a login session. Whether the
    /// revocation is news: one of them was still live, or the refresh token `presented` (the
    /// spent one that caused it, if any) was the session's newest — a copy used after the
    /// session ended (signed out, say). False when an older spent token comes again.
    async fn revoke_token_family(
        &self,
        family_id: &str,
        presented: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Notes that an access token was presented (its first use). False if the token is gone (taken
    /// back by [`Store::take_back_unused_successor`] since it was read): the request is refused.
    async fn mark_access_token_used(&self, token_hash: &str) -> Result<bool, StoreError>;
    /// Notes that refresh token `spent` was exchanged for the refresh token `refresh` and the
    /// access token `access` (all three by hash).
    async fn link_refreshed(
        &self,
        spent: &str,
        refresh: &str,
        access: &str,
    ) -> Result<(), StoreError>;
    /// For a spent refresh token presented again at `now`: if what it was last exchanged for
    /// ([`Store::link_refreshed`]) was never used — its refresh token unspent, its access token
    /// never presented and not yet expired — the answer carrying them never reached the device.
    /// Then, in one transaction, spends that refresh token, deletes that access token, forgets the
    /// link and returns true; otherwise changes nothing and returns false.
    async fn take_back_unused_successor(&self, spent: &str, now: i64) -> Result<bool, StoreError>;

    /// Registers a document (its blob is stored already).
    async fn create_document(&self, document: &DocumentRow) -> Result<(), StoreError>;
    /// The document with this id, visible or not.
    async fn document_by_id(&self, id: &str) -> Result<Option<DocumentRow>, StoreError>;
    /// Every document, by title.
    async fn list_documents(&self) -> Result<Vec<DocumentRow>, StoreError>;
    /// The documents with an active assignment to the user or the user's unit, by title.
    async fn visible_documents(
        &self,
        user_id: &str,
        unit_id: Option<&str>,
    ) -> Result<Vec<DocumentRow>, StoreError>;
    /// The document, if it has an active assignment to the user or the user's unit.
    async fn visible_document(
        &self,
        document_id: &str,
        user_id: &str,
        unit_id: Option<&str>,
    ) -> Result<Option<DocumentRow>, StoreError>;
    /// Adds an assignment; [`StoreError::Duplicate`] when the same one is active already.
    async fn create_assignment(&self, assignment: &AssignmentRow) -> Result<(), StoreError>;
    /// Ends the active assignment of the document to the assignee; false when there is none.
    async fn revoke_assignment(
        &self,
        document_id: &str,
        assignee: &Assignee,
        at: i64,
    ) -> Result<bool, StoreError>;

    /// Records an issued certificate unless its user already holds one for the same key on the
    /// same device, not revoked and not expired at its `issued_at` (`same_key` says whether a
    /// stored certificate's DER certifies the key) — then that one stands — or the user was
    /// disabled or the device revoked meanwhile. Looked up and recorded in one transaction
    /// (under the user's and the device's row locks), so two requests for one key at the same
    /// moment end with one certificate, and a revocation is never overtaken.
    async fn insert_certificate_once(
        &self,
        certificate: &CertificateRow,
        same_key: SameKey,
    ) -> Result<CertificateInsert, StoreError>;
    /// The certificates issued to a user, oldest first.
    async fn certificates_of_user(&self, user_id: &str) -> Result<Vec<CertificateRow>, StoreError>;
    /// Serial and revocation time of every revoked certificate (for the CRL).
    async fn revoked_certificates(&self) -> Result<Vec<(String, i64)>, StoreError>;

    /// Applies a pushed annotation change exactly once, in one transaction: records the op id
    /// (a second push of it is [`OpApplied::AlreadyApplied`]) and stores the annotation unless
    /// the stored one has a higher (logical_clock, origin).
    async fn apply_annotation_op(&self, op: &AnnotationOp) -> Result<OpApplied, StoreError>;

    /// Applies a pushed revision exactly once, in one transaction: records the op id; if its base
    /// is the document's head it becomes the head (a new sync position, so workstations pull it),
    /// otherwise it is kept as a conflict branch. A second push of the op id gives the first
    /// answer again ([`RevisionApplied::Conflict`] stays a conflict).
    async fn apply_revision_op(&self, op: &RevisionOp) -> Result<RevisionApplied, StoreError>;

    /// What became of op `op_id` when `user_id` pushed it (`applied`, `superseded`, `conflict`),
    /// if it was applied for that user.
    async fn applied_op_outcome(
        &self,
        op_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Applies a pushed tutorial progress record exactly once: records the op id and keeps the
    /// record unless the device's stored one has a higher sequence
    /// ([`OpApplied::Superseded`]).
    async fn apply_training_op(&self, op: &TrainingOp) -> Result<OpApplied, StoreError>;

    /// Every stored tutorial progress record, by user and device.
    async fn training_progress(&self) -> Result<Vec<TrainingRow>, StoreError>;

    /// The server's sync position now (the last change's position).
    async fn sync_position(&self) -> Result<i64, StoreError>;

    /// The documents whose head is a revision a workstation pushed (not the server's long-term
    /// extension): (document id, head SHA-256, pushing user id, device id), by document id. A
    /// signature there may still wait for its validation data and time-stamp.
    async fn pushed_heads(&self) -> Result<Vec<PushedHead>, StoreError>;

    /// Whether `sha256` is a revision of the document (the head, any pushed revision on either
    /// branch, or the base of one).
    async fn is_document_revision(
        &self,
        document_id: &str,
        sha256: &str,
    ) -> Result<bool, StoreError>;

    /// The changes a user must pull after (`after_position`, `after_document`) in (position,
    /// document id) order — documents newly visible or with a new head, and documents no longer
    /// visible — at most `limit`, with the server's position, all in one snapshot.
    async fn pull(
        &self,
        user_id: &str,
        unit_id: Option<&str>,
        after_position: i64,
        after_document: Option<&str>,
        limit: i64,
    ) -> Result<PullPage, StoreError>;

    /// The last position and hash held of a device's audit chain.
    async fn device_audit_last(&self, device_id: &str)
        -> Result<Option<(i64, String)>, StoreError>;
    /// The hash held at one position of a device's audit chain.
    async fn device_audit_hash(
        &self,
        device_id: &str,
        seq: i64,
    ) -> Result<Option<String>, StoreError>;
    /// Stores uploaded audit entries (positions already held are left as they are) and the
    /// problems found, in one transaction.
    async fn store_device_audit(
        &self,
        device_id: &str,
        entries: &[DeviceAuditRow],
        problems: &[(i64, String)],
        at: i64,
    ) -> Result<(), StoreError>;
    /// The continuity problems flagged for a device, by position.
    async fn device_audit_problems(
        &self,
        device_id: &str,
    ) -> Result<Vec<(i64, String)>, StoreError>;

    /// Appends an audit record; returns its position.
    async fn append_audit(&self, record: &NewAudit) -> Result<i64, StoreError>;
    /// Up to `limit` records after position `after`, oldest first.
    async fn audit_after(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError>;
}

/// Reads a role stored by name.
fn parse_role(name: &str) -> Result<Role, StoreError> {
    Role::parse(name).ok_or_else(|| StoreError::Corrupt(format!("unknown role {name:?}")))
}
