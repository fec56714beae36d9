//! The SQLite backend: the embedded default, one file in the data directory.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{
    parse_role, AnnotationOp, AnnotationRow, Assignee, AssignmentRow, AuditRow, CertificateInsert,
    CertificateRow, DeviceAuditRow, DeviceRow, DocumentRow, NewAudit, OpApplied, PullEntry,
    PullEntryKind, PullPage, PushedHead, RefreshClaim, RevisionApplied, RevisionOp, SameKey, Store,
    StoreError, TokenRow, TrainingOp, TrainingRow, UnitRow, UserRow, LONG_TERM_CAUSE,
};

mod embedded {
    refinery::embed_migrations!("migrations/sqlite");
}

/// The SQLite store. Statements run on tokio's blocking pool over one connection in WAL mode.
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    readers: Vec<Arc<Mutex<Connection>>>,
    next_reader: std::sync::atomic::AtomicUsize,
}

/// Read-only connections beside the one writer: WAL lets them read while it writes.
const READERS: usize = 4;

const USER_COLUMNS: &str =
    "id, username, display_name, role, unit_id, password_hash, totp_secret, \
     last_totp_step, failed_logins, locked_until, created_at, disabled_at";
const ANNOTATION_COLUMNS: &str =
    "n.id, n.document_id, n.page_no, n.kind, n.author, n.body, n.revision, \
     n.logical_clock, n.origin, n.deleted, n.created_at_ms, n.modified_at_ms";
const DOCUMENT_COLUMNS: &str =
    "d.id, d.title, d.classification, d.sha256, d.size, d.registered_by, d.registered_at";

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "foreign_keys", true)?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        embedded::migrations::runner()
            .set_abort_divergent(true)
            .set_abort_missing(true)
            .run(&mut connection)
            .map_err(|error| StoreError::Migration(error.to_string()))?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            reader.busy_timeout(std::time::Duration::from_secs(10))?;
            reader.pragma_update(None, "foreign_keys", true)?;
            readers.push(Arc::new(Mutex::new(reader)));
        }
        Ok(SqliteStore {
            connection: Arc::new(Mutex::new(connection)),
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Runs a read on one of the reader connections (round robin).
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let index = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % self.readers.len();
        let connection = Arc::clone(&self.readers[index]);
        tokio::task::spawn_blocking(move || {
            let guard = connection
                .lock()
                .map_err(|_| StoreError::Interrupted("an earlier database task panicked".into()))?;
            work(&guard)
        })
        .await
        .map_err(|error| StoreError::Interrupted(error.to_string()))?
    }

    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut guard = connection
                .lock()
                .map_err(|_| StoreError::Interrupted("an earlier database task panicked".into()))?;
            work(&mut guard)
        })
        .await
        .map_err(|error| StoreError::Interrupted(error.to_string()))?
    }
}

fn duplicate_or(error: rusqlite::Error, what: &str) -> StoreError {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation)
            if matches!(
                error,
                rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error {
                        extended_code: rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                            | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
                        ..
                    },
                    _
                )
            ) =>
        {
            StoreError::Duplicate(what.to_string())
        }
        _ => StoreError::Sqlite(error),
    }
}

/// Takes the next sync position inside `transaction` (see migration 3).
/// Whether a document has a pushed revision with this hash, or one based on it.
fn revision_known(
    c: &rusqlite::Connection,
    document_id: &str,
    sha256: &str,
) -> Result<bool, StoreError> {
    Ok(c.query_row(
        "SELECT EXISTS (SELECT 1 FROM document_revisions WHERE document_id = ?1 AND (sha256 = ?2 OR base_sha256 = ?2))",
        params![document_id, sha256],
        |r| r.get(0),
    )?)
}

fn next_sync_seq(transaction: &rusqlite::Transaction<'_>) -> Result<i64, StoreError> {
    Ok(transaction.query_row(
        "UPDATE sync_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq",
        [],
        |r| r.get(0),
    )?)
}

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<(UserRow, String)> {
    let role: String = row.get(3)?;
    Ok((
        UserRow {
            id: row.get(0)?,
            username: row.get(1)?,
            display_name: row.get(2)?,
            role: outpost_protocol::Role::Staff,
            unit_id: row.get(4)?,
            password_hash: row.get(5)?,
            totp_secret: row.get(6)?,
            last_totp_step: row.get(7)?,
            failed_logins: row.get(8)?,
            locked_until: row.get(9)?,
            created_at: row.get(10)?,
            disabled_at: row.get(11)?,
        },
        role,
    ))
}

fn finish_user((mut user, role): (UserRow, String)) -> Result<UserRow, StoreError> {
    user.role = parse_role(&role)?;
    Ok(user)
}

fn annotation_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<AnnotationRow> {
    Ok(AnnotationRow {
        id: row.get(first)?,
        document_id: row.get(first + 1)?,
        page_no: row.get(first + 2)?,
        kind: row.get(first + 3)?,
        author: row.get(first + 4)?,
        body: row.get(first + 5)?,
        revision: row.get(first + 6)?,
        logical_clock: row.get(first + 7)?,
        origin: row.get(first + 8)?,
        deleted: row.get::<_, i64>(first + 9)? != 0,
        created_at_ms: row.get(first + 10)?,
        modified_at_ms: row.get(first + 11)?,
    })
}

fn unit_from_row(row: &Row<'_>) -> rusqlite::Result<UnitRow> {
    Ok(UnitRow {
        id: row.get(0)?,
        name: row.get(1)?,
        created_at: row.get(2)?,
    })
}

fn device_from_row(row: &Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok(DeviceRow {
        id: row.get(0)?,
        user_id: row.get(1)?,
        name: row.get(2)?,
        public_key: row.get(3)?,
        enrolled_at: row.get(4)?,
        revoked_at: row.get(5)?,
    })
}

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        token_hash: row.get(0)?,
        family_id: row.get(1)?,
        user_id: row.get(2)?,
        device_id: row.get(3)?,
        expires_at: row.get(4)?,
        used: row.get(5)?,
    })
}

fn document_from_row(row: &Row<'_>) -> rusqlite::Result<DocumentRow> {
    Ok(DocumentRow {
        id: row.get(0)?,
        title: row.get(1)?,
        classification: row.get(2)?,
        sha256: row.get(3)?,
        size: row.get(4)?,
        registered_by: row.get(5)?,
        registered_at: row.get(6)?,
    })
}

fn assignee_columns(assignee: &Assignee) -> (Option<String>, Option<String>) {
    match assignee {
        Assignee::User(id) => (Some(id.clone()), None),
        Assignee::Unit(id) => (None, Some(id.clone())),
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn create_unit(&self, unit: &UnitRow) -> Result<(), StoreError> {
        let unit = unit.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO units (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![unit.id, unit.name, unit.created_at],
            )
            .map_err(|e| duplicate_or(e, &format!("a unit named {:?}", unit.name)))?;
            Ok(())
        })
        .await
    }

    async fn unit_by_name(&self, name: &str) -> Result<Option<UnitRow>, StoreError> {
        let name = name.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT id, name, created_at FROM units WHERE name = ?1",
                [name],
                unit_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn unit_by_id(&self, id: &str) -> Result<Option<UnitRow>, StoreError> {
        let id = id.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT id, name, created_at FROM units WHERE id = ?1",
                [id],
                unit_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn list_units(&self) -> Result<Vec<UnitRow>, StoreError> {
        self.read(|c| {
            let mut statement =
                c.prepare("SELECT id, name, created_at FROM units ORDER BY name")?;
            let rows = statement
                .query_map([], unit_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn create_user(&self, user: &UserRow) -> Result<(), StoreError> {
        let user = user.clone();
        self.run(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                ),
                params![
                    user.id,
                    user.username,
                    user.display_name,
                    user.role.as_str(),
                    user.unit_id,
                    user.password_hash,
                    user.totp_secret,
                    user.last_totp_step,
                    user.failed_logins,
                    user.locked_until,
                    user.created_at,
                    user.disabled_at
                ],
            )
            .map_err(|e| duplicate_or(e, &format!("a user named {:?}", user.username)))?;
            Ok(())
        })
        .await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        let username = username.to_string();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
                [username],
                user_from_row,
            )
            .optional()?
            .map(finish_user)
            .transpose()
        })
        .await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let id = id.to_string();
        // Every authenticated request asks this: its statement is kept prepared.
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
                .query_row([id], user_from_row)
                .optional()?
                .map(finish_user)
                .transpose()
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        self.read(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY username"
            ))?;
            let rows = statement
                .query_map([], user_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(finish_user).collect()
        })
        .await
    }

    async fn set_password_hash(
        &self,
        user_id: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        let (user_id, password_hash) = (user_id.to_string(), password_hash.to_string());
        self.run(move |c| {
            c.execute(
                "UPDATE users SET password_hash = ?2, failed_logins = 0, locked_until = NULL WHERE id = ?1",
                params![user_id, password_hash],
            )?;
            Ok(())
        })
        .await
    }

    async fn set_second_factor(
        &self,
        user_id: &str,
        totp_secret: Option<&[u8]>,
        recovery_code_hashes: &[String],
    ) -> Result<(), StoreError> {
        let user_id = user_id.to_string();
        let totp_secret = totp_secret.map(<[u8]>::to_vec);
        let hashes = recovery_code_hashes.to_vec();
        self.run(move |c| {
            let transaction = c.transaction()?;
            transaction.execute(
                "UPDATE users SET totp_secret = ?2, last_totp_step = NULL WHERE id = ?1",
                params![user_id, totp_secret],
            )?;
            transaction.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&user_id])?;
            for hash in &hashes {
                transaction.execute(
                    "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
                    params![user_id, hash],
                )?;
            }
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn claim_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let user_id = user_id.to_string();
        self.run(move |c| {
            let changed = c.execute(
                "UPDATE users SET last_totp_step = ?2 \
                 WHERE id = ?1 AND (last_totp_step IS NULL OR last_totp_step < ?2)",
                params![user_id, step],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn consume_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
    ) -> Result<bool, StoreError> {
        let (user_id, code_hash) = (user_id.to_string(), code_hash.to_string());
        self.run(move |c| {
            let changed = c.execute(
                "DELETE FROM recovery_codes WHERE user_id = ?1 AND code_hash = ?2",
                params![user_id, code_hash],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn record_failed_login(
        &self,
        user_id: &str,
        threshold: i64,
        lock_until: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        let user_id = user_id.to_string();
        self.run(move |c| {
            let outcome = c.query_row(
                "UPDATE users SET failed_logins = failed_logins + 1, \
                   locked_until = CASE WHEN failed_logins + 1 >= ?2 THEN ?3 ELSE locked_until END \
                 WHERE id = ?1 RETURNING failed_logins, locked_until",
                params![user_id, threshold, lock_until],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            Ok(outcome)
        })
        .await
    }

    async fn clear_failed_logins(&self, user_id: &str) -> Result<(), StoreError> {
        let user_id = user_id.to_string();
        self.run(move |c| {
            c.execute(
                "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?1",
                [user_id],
            )?;
            Ok(())
        })
        .await
    }

    async fn create_device(&self, device: &DeviceRow) -> Result<(), StoreError> {
        let device = device.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO devices (id, user_id, name, public_key, enrolled_at, revoked_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    device.id,
                    device.user_id,
                    device.name,
                    device.public_key,
                    device.enrolled_at,
                    device.revoked_at
                ],
            )
            .map_err(|e| duplicate_or(e, "that device"))?;
            Ok(())
        })
        .await
    }

    async fn device_by_id(&self, id: &str) -> Result<Option<DeviceRow>, StoreError> {
        let id = id.to_string();
        // Every authenticated request asks this: its statement is kept prepared.
        self.read(move |c| {
            Ok(c
                .prepare_cached(
                    "SELECT id, user_id, name, public_key, enrolled_at, revoked_at FROM devices WHERE id = ?1",
                )?
                .query_row([id], device_from_row)
                .optional()?)
        })
        .await
    }

    async fn list_devices(&self, user_id: Option<&str>) -> Result<Vec<DeviceRow>, StoreError> {
        let user_id = user_id.map(str::to_string);
        self.read(move |c| {
            let mut statement = c.prepare(
                "SELECT id, user_id, name, public_key, enrolled_at, revoked_at FROM devices \
                 WHERE ?1 IS NULL OR user_id = ?1 ORDER BY enrolled_at, id",
            )?;
            let rows = statement
                .query_map([user_id], device_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn revoke_device(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.run(move |c| {
            let transaction = c.transaction()?;
            let changed = transaction.execute(
                "UPDATE devices SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                params![id, at],
            )?;
            transaction.execute(
                "UPDATE refresh_tokens SET used = 1 WHERE device_id = ?1",
                [&id],
            )?;
            transaction.execute(
                "UPDATE certificates SET revoked_at = ?2 WHERE device_id = ?1 AND revoked_at IS NULL",
                params![id, at],
            )?;
            transaction.commit()?;
            Ok(changed == 1)
        })
        .await
    }

    async fn disable_user(&self, user_id: &str, at: i64) -> Result<bool, StoreError> {
        let id = user_id.to_string();
        self.run(move |c| {
            let transaction = c.transaction()?;
            let changed = transaction.execute(
                "UPDATE users SET disabled_at = COALESCE(disabled_at, ?2) WHERE id = ?1",
                params![id, at],
            )?;
            transaction.execute(
                "UPDATE devices SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
                params![id, at],
            )?;
            transaction.execute(
                "UPDATE certificates SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
                params![id, at],
            )?;
            transaction.execute("DELETE FROM access_tokens WHERE user_id = ?1", [&id])?;
            transaction.execute(
                "UPDATE refresh_tokens SET used = 1 WHERE user_id = ?1",
                [&id],
            )?;
            transaction.commit()?;
            Ok(changed == 1)
        })
        .await
    }

    async fn insert_certificate_once(
        &self,
        certificate: &CertificateRow,
        same_key: SameKey,
    ) -> Result<CertificateInsert, StoreError> {
        let r = certificate.clone();
        // One writer connection: the look-up and the insert are one transaction no other write
        // can come between.
        self.run(move |c| {
            let transaction = c.transaction()?;
            let withdrawn: bool = transaction.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1 AND disabled_at IS NOT NULL) \
                 OR EXISTS (SELECT 1 FROM devices WHERE id = ?2 AND revoked_at IS NOT NULL)",
                params![r.user_id, r.device_id],
                |row| row.get(0),
            )?;
            if withdrawn {
                return Ok(CertificateInsert::Withdrawn);
            }
            let held = {
                let mut statement = transaction.prepare(
                    "SELECT serial, user_id, device_id, subject, der, not_before, not_after, issued_at, revoked_at \
                     FROM certificates WHERE user_id = ?1 AND device_id = ?2 AND revoked_at IS NULL \
                     AND not_after > ?3 ORDER BY issued_at, serial",
                )?;
                let rows = statement
                    .query_map(params![r.user_id, r.device_id, r.issued_at], certificate_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                rows.into_iter().find(|held| same_key(&held.der))
            };
            if let Some(held) = held {
                return Ok(CertificateInsert::Held(held));
            }
            transaction
                .execute(
                    "INSERT INTO certificates (serial, user_id, device_id, subject, der, not_before, not_after, \
                     issued_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![r.serial, r.user_id, r.device_id, r.subject, r.der, r.not_before, r.not_after, r.issued_at, r.revoked_at],
                )
                .map_err(|e| duplicate_or(e, "a certificate with that serial"))?;
            transaction.commit()?;
            Ok(CertificateInsert::Recorded)
        })
        .await
    }

    async fn certificates_of_user(&self, user_id: &str) -> Result<Vec<CertificateRow>, StoreError> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut statement = c.prepare(
                "SELECT serial, user_id, device_id, subject, der, not_before, not_after, issued_at, revoked_at \
                 FROM certificates WHERE user_id = ?1 ORDER BY issued_at, serial",
            )?;
            let rows = statement
                .query_map([user_id], certificate_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn revoked_certificates(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|c| {
            let mut statement = c.prepare(
                "SELECT serial, revoked_at FROM certificates WHERE revoked_at IS NOT NULL ORDER BY serial",
            )?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn insert_access_token(&self, token: &TokenRow) -> Result<(), StoreError> {
        let token = token.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO access_tokens (token_hash, family_id, user_id, device_id, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![token.token_hash, token.family_id, token.user_id, token.device_id, token.expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn access_token(&self, token_hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let token_hash = token_hash.to_string();
        // Every authenticated request asks this: its statement is kept prepared.
        self.read(move |c| {
            Ok(c
                .prepare_cached(
                    "SELECT token_hash, family_id, user_id, device_id, expires_at, used FROM access_tokens \
                     WHERE token_hash = ?1",
                )?
                .query_row([token_hash], token_from_row)
                .optional()?)
        })
        .await
    }

    async fn insert_refresh_token(&self, token: &TokenRow) -> Result<(), StoreError> {
        let token = token.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO refresh_tokens (token_hash, family_id, user_id, device_id, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![token.token_hash, token.family_id, token.user_id, token.device_id, token.expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn refresh_token(&self, token_hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let token_hash = token_hash.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT token_hash, family_id, user_id, device_id, expires_at, used FROM refresh_tokens \
                 WHERE token_hash = ?1",
                [token_hash],
                token_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn claim_refresh_token(&self, token_hash: &str) -> Result<RefreshClaim, StoreError> {
        let token_hash = token_hash.to_string();
        self.run(move |c| {
            let changed = c.execute(
                "UPDATE refresh_tokens SET used = 1 WHERE token_hash = ?1 AND used = 0",
                [&token_hash],
            )?;
            if changed == 1 {
                return Ok(RefreshClaim::Claimed);
            }
            let exists: Option<i64> = c
                .query_row(
                    "SELECT 1 FROM refresh_tokens WHERE token_hash = ?1",
                    [&token_hash],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(if exists.is_some() {
                RefreshClaim::AlreadyUsed
            } else {
                RefreshClaim::Unknown
            })
        })
        .await
    }

    async fn revoke_token_family(
        &self,
        family_id: &str,
        presented: Option<&str>,
    ) -> Result<bool, StoreError> {
        let family_id = family_id.to_string();
        let presented = presented.map(str::to_string);
        self.run(move |c| {
            let transaction = c.transaction()?;
            let newest: bool = match &presented {
                Some(hash) => transaction
                    .query_row(
                        "SELECT replaced_by IS NULL FROM refresh_tokens WHERE token_hash = ?1",
                        [hash],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or(false),
                None => false,
            };
            let deleted = transaction.execute(
                "DELETE FROM access_tokens WHERE family_id = ?1",
                [&family_id],
            )?;
            let spent = transaction.execute(
                "UPDATE refresh_tokens SET used = 1 WHERE family_id = ?1 AND used = 0",
                [&family_id],
            )?;
            transaction.commit()?;
            Ok(spent + deleted > 0 || newest)
        })
        .await
    }

    async fn mark_access_token_used(&self, token_hash: &str) -> Result<bool, StoreError> {
        let token_hash = token_hash.to_string();
        self.run(move |c| {
            let changed = c.execute(
                "UPDATE access_tokens SET used = 1 WHERE token_hash = ?1",
                [&token_hash],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn link_refreshed(
        &self,
        spent: &str,
        refresh: &str,
        access: &str,
    ) -> Result<(), StoreError> {
        let (spent, refresh, access) = (spent.to_string(), refresh.to_string(), access.to_string());
        self.run(move |c| {
            c.execute(
                "UPDATE refresh_tokens SET replaced_by = ?2, replaced_by_access = ?3 WHERE token_hash = ?1",
                params![spent, refresh, access],
            )?;
            Ok(())
        })
        .await
    }

    async fn take_back_unused_successor(&self, spent: &str, now: i64) -> Result<bool, StoreError> {
        let spent = spent.to_string();
        self.run(move |c| {
            let transaction = c.transaction()?;
            let link: Option<(Option<String>, Option<String>)> = transaction
                .query_row(
                    "SELECT replaced_by, replaced_by_access FROM refresh_tokens WHERE token_hash = ?1",
                    [&spent],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((Some(refresh), Some(access))) = link else {
                return Ok(false);
            };
            let access_unused: Option<bool> = transaction
                .query_row(
                    "SELECT used = 0 AND expires_at > ?2 FROM access_tokens WHERE token_hash = ?1",
                    params![access, now],
                    |r| r.get(0),
                )
                .optional()?;
            if access_unused != Some(true) {
                return Ok(false);
            }
            let spent_now = transaction.execute(
                "UPDATE refresh_tokens SET used = 1 WHERE token_hash = ?1 AND used = 0",
                [&refresh],
            )?;
            if spent_now != 1 {
                return Ok(false);
            }
            transaction.execute("DELETE FROM access_tokens WHERE token_hash = ?1", [&access])?;
            transaction.execute(
                "UPDATE refresh_tokens SET replaced_by = NULL, replaced_by_access = NULL WHERE token_hash = ?1",
                [&spent],
            )?;
            transaction.commit()?;
            Ok(true)
        })
        .await
    }

    async fn create_document(&self, document: &DocumentRow) -> Result<(), StoreError> {
        let d = document.clone();
        self.run(move |c| {
            let transaction = c.transaction()?;
            let seq = next_sync_seq(&transaction)?;
            transaction
                .execute(
                    "INSERT INTO documents (id, title, classification, sha256, size, registered_by, \
                     registered_at, head_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![d.id, d.title, d.classification, d.sha256, d.size, d.registered_by, d.registered_at, seq],
                )
                .map_err(|e| duplicate_or(e, "that document"))?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn document_by_id(&self, id: &str) -> Result<Option<DocumentRow>, StoreError> {
        let id = id.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                &format!("SELECT {DOCUMENT_COLUMNS} FROM documents d WHERE d.id = ?1"),
                [id],
                document_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn list_documents(&self) -> Result<Vec<DocumentRow>, StoreError> {
        self.read(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {DOCUMENT_COLUMNS} FROM documents d ORDER BY d.title, d.id"
            ))?;
            let rows = statement
                .query_map([], document_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn visible_documents(
        &self,
        user_id: &str,
        unit_id: Option<&str>,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        let (user_id, unit_id) = (user_id.to_string(), unit_id.map(str::to_string));
        self.read(move |c| {
            let mut statement = c.prepare(&format!(
                "SELECT {DOCUMENT_COLUMNS} FROM documents d WHERE d.id IN ( \
                   SELECT document_id FROM assignments WHERE user_id = ?1 AND revoked_at IS NULL \
                   UNION SELECT document_id FROM assignments \
                   WHERE ?2 IS NOT NULL AND unit_id = ?2 AND revoked_at IS NULL) \
                 ORDER BY d.title, d.id"
            ))?;
            let rows = statement
                .query_map(params![user_id, unit_id], document_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn visible_document(
        &self,
        document_id: &str,
        user_id: &str,
        unit_id: Option<&str>,
    ) -> Result<Option<DocumentRow>, StoreError> {
        let (document_id, user_id) = (document_id.to_string(), user_id.to_string());
        let unit_id = unit_id.map(str::to_string);
        // Every download request asks this: its statement is kept prepared.
        self.read(move |c| {
            Ok(c
                .prepare_cached(&format!(
                    "SELECT {DOCUMENT_COLUMNS} FROM documents d WHERE d.id = ?1 AND EXISTS ( \
                       SELECT 1 FROM assignments a WHERE a.document_id = d.id AND a.revoked_at IS NULL \
                       AND (a.user_id = ?2 OR (?3 IS NOT NULL AND a.unit_id = ?3)))"
                ))?
                .query_row(params![document_id, user_id, unit_id], document_from_row)
                .optional()?)
        })
        .await
    }

    async fn create_assignment(&self, assignment: &AssignmentRow) -> Result<(), StoreError> {
        let a = assignment.clone();
        self.run(move |c| {
            let (user_id, unit_id) = assignee_columns(&a.assignee);
            let transaction = c.transaction()?;
            let seq = next_sync_seq(&transaction)?;
            transaction
                .execute(
                    "INSERT INTO assignments (id, document_id, user_id, unit_id, assigned_at, created_seq) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![a.id, a.document_id, user_id, unit_id, a.assigned_at, seq],
                )
                .map_err(|e| duplicate_or(e, "that assignment"))?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn revoke_assignment(
        &self,
        document_id: &str,
        assignee: &Assignee,
        at: i64,
    ) -> Result<bool, StoreError> {
        let document_id = document_id.to_string();
        let (user_id, unit_id) = assignee_columns(assignee);
        self.run(move |c| {
            let transaction = c.transaction()?;
            let seq = next_sync_seq(&transaction)?;
            let changed = transaction.execute(
                "UPDATE assignments SET revoked_at = ?4, revoked_seq = ?5 WHERE document_id = ?1 \
                 AND revoked_at IS NULL AND user_id IS ?2 AND unit_id IS ?3",
                params![document_id, user_id, unit_id, at, seq],
            )?;
            if changed > 0 {
                transaction.commit()?;
            }
            Ok(changed > 0)
        })
        .await
    }

    async fn pull(
        &self,
        user_id: &str,
        unit_id: Option<&str>,
        after_position: i64,
        after_document: Option<&str>,
        limit: i64,
    ) -> Result<PullPage, StoreError> {
        let (user_id, unit_id) = (user_id.to_string(), unit_id.map(str::to_string));
        let after_document = after_document.map(str::to_string);
        self.read(move |c| {
            let transaction = c.unchecked_transaction()?;
            let server_position: i64 =
                transaction.query_row("SELECT seq FROM sync_counter WHERE id = 1", [], |r| r.get(0))?;
            // Every change's position is at most the counter: a reader already there (the usual
            // round when nothing changed) has nothing to read, whatever the server holds.
            if after_document.is_none() && after_position >= server_position {
                return Ok(PullPage { entries: Vec::new(), server_position });
            }
            let entries = {
                let mut statement = transaction.prepare_cached(&format!(
                    "WITH mine AS ( \
                       SELECT document_id, created_seq, revoked_seq FROM assignments WHERE user_id = ?1 \
                       UNION ALL SELECT document_id, created_seq, revoked_seq FROM assignments \
                       WHERE ?2 IS NOT NULL AND unit_id = ?2), \
                     visible AS ( \
                       SELECT m.document_id AS id, MAX(MAX(d.head_seq, m.created_seq)) AS position \
                       FROM mine m JOIN documents d ON d.id = m.document_id \
                       WHERE m.revoked_seq IS NULL GROUP BY m.document_id), \
                     gone AS ( \
                       SELECT m.document_id AS id, MAX(m.revoked_seq) AS position FROM mine m \
                       WHERE m.revoked_seq IS NOT NULL AND m.document_id NOT IN (SELECT id FROM visible) \
                       GROUP BY m.document_id), \
                     notes AS ( \
                       SELECT n.id AS id, MAX(n.position, v.position) AS position \
                       FROM annotations n JOIN visible v ON v.id = n.document_id), \
                     entries AS (SELECT id, position, 1 AS kind FROM visible \
                                 UNION ALL SELECT id, position, 0 FROM gone \
                                 UNION ALL SELECT id, position, 2 FROM notes) \
                     SELECT {DOCUMENT_COLUMNS}, e.id, e.position, e.kind, {ANNOTATION_COLUMNS} FROM entries e \
                     LEFT JOIN documents d ON d.id = e.id AND e.kind = 1 \
                     LEFT JOIN annotations n ON n.id = e.id AND e.kind = 2 \
                     WHERE e.position > ?3 OR (?4 IS NOT NULL AND e.position = ?3 AND e.id > ?4) \
                     ORDER BY e.position, e.id LIMIT ?5"
                ))?;
                let rows = statement.query_map(
                    params![user_id, unit_id, after_position, after_document, limit],
                    |row| {
                        // The document's columns come first, so one reader serves both queries.
                        let kind = match row.get::<_, i64>(9)? {
                            1 => PullEntryKind::Visible(document_from_row(row)?),
                            2 => PullEntryKind::Annotation(annotation_from_row(row, 10)?),
                            _ => PullEntryKind::Removed,
                        };
                        Ok(PullEntry { id: row.get(7)?, position: row.get(8)?, kind })
                    },
                )?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            transaction.commit()?;
            Ok(PullPage { entries, server_position })
        })
        .await
    }

    async fn apply_annotation_op(&self, op: &AnnotationOp) -> Result<OpApplied, StoreError> {
        let op = op.clone();
        self.run(move |c| {
            let transaction = c.transaction()?;
            let a = &op.annotation;
            let existing: Option<(String, String, i64, String)> = transaction
                .query_row(
                    "SELECT document_id, author, logical_clock, origin FROM annotations WHERE id = ?1",
                    [&a.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            if let Some((document_id, author, _, _)) = &existing {
                if *document_id != a.document_id || *author != a.author {
                    return Ok(OpApplied::Mismatch);
                }
            }
            let recorded = transaction.execute(
                "INSERT INTO applied_ops (op_id, user_id, device_id, outcome, applied_at) VALUES (?1, ?2, ?3, '', ?4) \
                 ON CONFLICT (op_id) DO NOTHING",
                params![op.op_id, op.user_id, op.device_id, op.at],
            )?;
            if recorded == 0 {
                return Ok(OpApplied::AlreadyApplied);
            }
            let newer_stands = existing
                .as_ref()
                .is_some_and(|(_, _, clock, origin)| (*clock, origin.as_str()) >= (a.logical_clock, a.origin.as_str()));
            let outcome = if newer_stands {
                OpApplied::Superseded
            } else {
                let seq = next_sync_seq(&transaction)?;
                transaction.execute(
                    "INSERT INTO annotations (id, document_id, page_no, kind, author, body, revision, logical_clock, \
                     origin, deleted, created_at_ms, modified_at_ms, position) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                     ON CONFLICT (id) DO UPDATE SET page_no = ?3, kind = ?4, body = ?6, revision = ?7, \
                     logical_clock = ?8, origin = ?9, deleted = ?10, modified_at_ms = ?12, position = ?13",
                    params![
                        a.id, a.document_id, a.page_no, a.kind, a.author, a.body, a.revision, a.logical_clock,
                        a.origin, a.deleted, a.created_at_ms, a.modified_at_ms, seq
                    ],
                )?;
                OpApplied::Applied
            };
            let name = if outcome == OpApplied::Applied { "applied" } else { "superseded" };
            transaction.execute("UPDATE applied_ops SET outcome = ?2 WHERE op_id = ?1", params![op.op_id, name])?;
            transaction.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn applied_op_outcome(
        &self,
        op_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let (op_id, user_id) = (op_id.to_string(), user_id.to_string());
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT outcome FROM applied_ops WHERE op_id = ?1 AND user_id = ?2",
                [op_id, user_id],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn apply_training_op(&self, op: &TrainingOp) -> Result<OpApplied, StoreError> {
        let op = op.clone();
        self.run(move |c| {
            let transaction = c.transaction()?;
            let recorded = transaction.execute(
                "INSERT INTO applied_ops (op_id, user_id, device_id, outcome, applied_at) VALUES (?1, ?2, ?3, '', ?4) \
                 ON CONFLICT (op_id) DO NOTHING",
                params![op.op_id, op.user_id, op.device_id, op.at],
            )?;
            if recorded == 0 {
                return Ok(OpApplied::AlreadyApplied);
            }
            let kept = transaction.execute(
                "INSERT INTO training_progress (user_id, device_id, sequence, progress, received_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, device_id) DO UPDATE \
                 SET sequence = ?3, progress = ?4, received_at = ?5 WHERE training_progress.sequence < ?3",
                params![op.user_id, op.device_id, op.sequence, op.progress, op.at],
            )?;
            let outcome = if kept > 0 { OpApplied::Applied } else { OpApplied::Superseded };
            let name = if kept > 0 { "applied" } else { "superseded" };
            transaction.execute("UPDATE applied_ops SET outcome = ?2 WHERE op_id = ?1", params![op.op_id, name])?;
            transaction.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn training_progress(&self) -> Result<Vec<TrainingRow>, StoreError> {
        self.run(|c| {
            let mut statement = c.prepare(
                "SELECT user_id, device_id, sequence, progress, received_at FROM training_progress \
                 ORDER BY user_id, device_id",
            )?;
            let rows = statement
                .query_map([], |r| {
                    Ok(TrainingRow {
                        user_id: r.get(0)?,
                        device_id: r.get(1)?,
                        sequence: r.get(2)?,
                        progress: r.get(3)?,
                        received_at: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn apply_revision_op(&self, op: &RevisionOp) -> Result<RevisionApplied, StoreError> {
        let op = op.clone();
        self.run(move |c| {
            let transaction = c.transaction()?;
            let Some(head) = transaction
                .query_row("SELECT sha256 FROM documents WHERE id = ?1", [&op.document_id], |r| {
                    r.get::<_, String>(0)
                })
                .optional()?
            else {
                return Ok(RevisionApplied::UnknownBase);
            };
            let recorded: Option<String> = transaction
                .query_row("SELECT outcome FROM applied_ops WHERE op_id = ?1", [&op.op_id], |r| r.get(0))
                .optional()?;
            if let Some(outcome) = recorded {
                return Ok(if outcome == "conflict" {
                    RevisionApplied::Conflict {
                        head_sha256: head,
                        first: false,
                    }
                } else {
                    RevisionApplied::AlreadyApplied
                });
            }
            if op.sha256 == head {
                return Ok(RevisionApplied::AlreadyApplied);
            }
            if op.base_sha256 != head && !revision_known(&transaction, &op.document_id, &op.base_sha256)? {
                return Ok(RevisionApplied::UnknownBase);
            }
            // The server's own long-term extension of the base gives way: it is made again on top.
            let head_extends_base = op.base_sha256 != head
                && transaction
                    .query_row(
                        "SELECT 1 FROM document_revisions WHERE document_id = ?1 AND sha256 = ?2 \
                         AND base_sha256 = ?3 AND cause = ?4",
                        params![op.document_id, head, op.base_sha256, LONG_TERM_CAUSE],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
            let (branch, outcome) = if op.base_sha256 == head || head_extends_base {
                let seq = next_sync_seq(&transaction)?;
                transaction.execute(
                    "UPDATE documents SET sha256 = ?2, size = ?3, head_seq = ?4 WHERE id = ?1",
                    params![op.document_id, op.sha256, op.size, seq],
                )?;
                ("main", RevisionApplied::Applied)
            } else {
                (
                    "conflict",
                    RevisionApplied::Conflict {
                        head_sha256: head,
                        first: true,
                    },
                )
            };
            let kept = transaction.execute(
                "INSERT INTO document_revisions (document_id, sha256, base_sha256, size, branch, cause, op_id, \
                 user_id, device_id, pushed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT (document_id, sha256) DO NOTHING",
                params![
                    op.document_id, op.sha256, op.base_sha256, op.size, branch, op.cause, op.op_id, op.user_id,
                    op.device_id, op.at
                ],
            )? > 0;
            let outcome = outcome.first_kept(kept);
            let name = if branch == "main" { "applied" } else { "conflict" };
            transaction.execute(
                "INSERT INTO applied_ops (op_id, user_id, device_id, outcome, applied_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![op.op_id, op.user_id, op.device_id, name, op.at],
            )?;
            if let Some(r) = op.audit_record(&outcome) {
                transaction.execute(
                    "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![r.at, r.actor, r.action, r.subject, r.detail],
                )?;
            }
            transaction.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn sync_position(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(
                c.query_row("SELECT seq FROM sync_counter WHERE id = 1", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    async fn pushed_heads(&self) -> Result<Vec<PushedHead>, StoreError> {
        self.read(move |c| {
            let mut statement = c.prepare(
                "SELECT d.id, d.sha256, r.user_id, r.device_id FROM documents d \
                 JOIN document_revisions r ON r.document_id = d.id AND r.sha256 = d.sha256 \
                 WHERE r.cause != ?1 ORDER BY d.id",
            )?;
            let rows = statement.query_map([LONG_TERM_CAUSE], |r| {
                Ok(PushedHead {
                    document_id: r.get(0)?,
                    sha256: r.get(1)?,
                    user_id: r.get(2)?,
                    device_id: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn is_document_revision(
        &self,
        document_id: &str,
        sha256: &str,
    ) -> Result<bool, StoreError> {
        let (document_id, sha256) = (document_id.to_string(), sha256.to_string());
        self.read(move |c| {
            let head: Option<String> = c
                .query_row(
                    "SELECT sha256 FROM documents WHERE id = ?1",
                    [&document_id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(head.as_deref() == Some(sha256.as_str())
                || revision_known(c, &document_id, &sha256)?)
        })
        .await
    }

    async fn device_audit_last(
        &self,
        device_id: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let device_id = device_id.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT seq, hash FROM device_audit WHERE device_id = ?1 ORDER BY seq DESC LIMIT 1",
                [device_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
        .await
    }

    async fn device_audit_hash(
        &self,
        device_id: &str,
        seq: i64,
    ) -> Result<Option<String>, StoreError> {
        let device_id = device_id.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT hash FROM device_audit WHERE device_id = ?1 AND seq = ?2",
                params![device_id, seq],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn store_device_audit(
        &self,
        device_id: &str,
        entries: &[DeviceAuditRow],
        problems: &[(i64, String)],
        at: i64,
    ) -> Result<(), StoreError> {
        let (device_id, entries, problems) =
            (device_id.to_string(), entries.to_vec(), problems.to_vec());
        self.run(move |c| {
            let transaction = c.transaction()?;
            for e in &entries {
                transaction.execute(
                    "INSERT INTO device_audit (device_id, seq, prev_hash, hash, entry, received_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (device_id, seq) DO NOTHING",
                    params![device_id, e.seq, e.prev_hash, e.hash, e.entry, at],
                )?;
            }
            for (seq, problem) in &problems {
                transaction.execute(
                    "INSERT INTO device_audit_problems (device_id, seq, problem, detected_at) VALUES (?1, ?2, ?3, ?4)",
                    params![device_id, seq, problem, at],
                )?;
            }
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn device_audit_problems(
        &self,
        device_id: &str,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let device_id = device_id.to_string();
        self.read(move |c| {
            let mut statement = c.prepare(
                "SELECT seq, problem FROM device_audit_problems WHERE device_id = ?1 ORDER BY seq, rowid",
            )?;
            let rows = statement.query_map([device_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn append_audit(&self, record: &NewAudit) -> Result<i64, StoreError> {
        let r = record.clone();
        self.run(move |c| {
            Ok(c.query_row(
                "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5) \
                 RETURNING seq",
                params![r.at, r.actor, r.action, r.subject, r.detail],
                |row| row.get(0),
            )?)
        })
        .await
    }

    async fn audit_after(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        self.read(move |c| {
            let mut statement = c.prepare(
                "SELECT seq, at, actor, action, subject, detail FROM audit WHERE seq > ?1 \
                 ORDER BY seq LIMIT ?2",
            )?;
            let rows = statement
                .query_map(params![after, limit], |row| {
                    Ok(AuditRow {
                        seq: row.get(0)?,
                        record: NewAudit {
                            at: row.get(1)?,
                            actor: row.get(2)?,
                            action: row.get(3)?,
                            subject: row.get(4)?,
                            detail: row.get(5)?,
                        },
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}

/// A `certificates` row read in the column order serial, user_id, device_id, subject, der,
/// not_before, not_after, issued_at, revoked_at.
fn certificate_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CertificateRow> {
    Ok(CertificateRow {
        serial: row.get(0)?,
        user_id: row.get(1)?,
        device_id: row.get(2)?,
        subject: row.get(3)?,
        der: row.get(4)?,
        not_before: row.get(5)?,
        not_after: row.get(6)?,
        issued_at: row.get(7)?,
        revoked_at: row.get(8)?,
    })
}
