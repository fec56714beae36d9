//! The PostgreSQL backend: for more than one server node over one database.

use std::str::FromStr;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use super::{
    parse_role, AnnotationOp, AnnotationRow, Assignee, AssignmentRow, AuditRow, CertificateInsert,
    CertificateRow, DeviceAuditRow, DeviceRow, DocumentRow, NewAudit, OpApplied, PullEntry,
    PullEntryKind, PullPage, PushedHead, RefreshClaim, RevisionApplied, RevisionOp, SameKey, Store,
    StoreError, TokenRow, TrainingOp, TrainingRow, UnitRow, UserRow, LONG_TERM_CAUSE,
};

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// A lock id that serialises schema migrations across server nodes starting together.
const MIGRATION_LOCK: i64 = 0x006f_7574_706f_7374;

const USER_COLUMNS: &str =
    "id, username, display_name, role, unit_id, password_hash, totp_secret, \
     last_totp_step, failed_logins, locked_until, created_at, disabled_at";
const ANNOTATION_COLUMNS: &str =
    "n.id, n.document_id, n.page_no, n.kind, n.author, n.body, n.revision, \
     n.logical_clock, n.origin, n.deleted, n.created_at_ms, n.modified_at_ms";
const DOCUMENT_COLUMNS: &str =
    "d.id, d.title, d.classification, d.sha256, d.size, d.registered_by, d.registered_at";

/// The PostgreSQL store: a connection pool.
pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and brings the schema up to date. Nodes
    /// starting together take turns: migrations run under an advisory lock.
    pub async fn connect(url: &str, max_connections: usize) -> Result<PostgresStore, StoreError> {
        let config = tokio_postgres::Config::from_str(url).map_err(StoreError::Postgres)?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .build()
            .map_err(|error| StoreError::Pool(error.to_string()))?;
        let store = PostgresStore { pool };
        let mut client = store.client().await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let client_ref: &mut tokio_postgres::Client = &mut client;
        let outcome = embedded::migrations::runner()
            .set_abort_divergent(true)
            .set_abort_missing(true)
            .run_async(client_ref)
            .await
            .map_err(|error| StoreError::Migration(error.to_string()));
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        outcome?;
        drop(client);
        Ok(store)
    }

    /// Runs one statement on a pooled connection, prepared once per connection and cached.
    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.execute(&statement, params).await?)
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query(&statement, params).await?)
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query_opt(&statement, params).await?)
    }

    async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Row, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query_one(&statement, params).await?)
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|error| StoreError::Pool(error.to_string()))
    }
}

fn duplicate_or(error: impl Into<StoreError>, what: &str) -> StoreError {
    match error.into() {
        StoreError::Postgres(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            StoreError::Duplicate(what.to_string())
        }
        other => other,
    }
}

/// Takes the next sync position inside `transaction`: the counter row stays locked until the
/// transaction ends, so positions commit in order (see migration 3).
/// Whether a document has a pushed revision with this hash, or one based on it.
async fn revision_known(
    transaction: &deadpool_postgres::Transaction<'_>,
    document_id: &str,
    sha256: &str,
) -> Result<bool, StoreError> {
    let row = transaction
        .query_one(KNOWN_REVISION, &[&document_id, &sha256])
        .await?;
    Ok(row.try_get(0)?)
}

/// `$2` is the head of document `$1`, a revision pushed to it, or the base of one.
const KNOWN_REVISION: &str =
    "SELECT EXISTS (SELECT 1 FROM documents WHERE id = $1 AND sha256 = $2) \
     OR EXISTS (SELECT 1 FROM document_revisions WHERE document_id = $1 AND (sha256 = $2 OR base_sha256 = $2))";

async fn next_sync_seq(
    transaction: &deadpool_postgres::Transaction<'_>,
) -> Result<i64, StoreError> {
    let row = transaction
        .query_one(
            "UPDATE sync_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq",
            &[],
        )
        .await?;
    Ok(row.try_get(0)?)
}

fn user_from_row(row: &Row) -> Result<UserRow, StoreError> {
    let role: String = row.try_get(3)?;
    Ok(UserRow {
        id: row.try_get(0)?,
        username: row.try_get(1)?,
        display_name: row.try_get(2)?,
        role: parse_role(&role)?,
        unit_id: row.try_get(4)?,
        password_hash: row.try_get(5)?,
        totp_secret: row.try_get(6)?,
        last_totp_step: row.try_get(7)?,
        failed_logins: row.try_get(8)?,
        locked_until: row.try_get(9)?,
        created_at: row.try_get(10)?,
        disabled_at: row.try_get(11)?,
    })
}

fn annotation_from_row(row: &Row, first: usize) -> Result<AnnotationRow, StoreError> {
    Ok(AnnotationRow {
        id: row.try_get(first)?,
        document_id: row.try_get(first + 1)?,
        page_no: row.try_get(first + 2)?,
        kind: row.try_get(first + 3)?,
        author: row.try_get(first + 4)?,
        body: row.try_get(first + 5)?,
        revision: row.try_get(first + 6)?,
        logical_clock: row.try_get(first + 7)?,
        origin: row.try_get(first + 8)?,
        deleted: row.try_get(first + 9)?,
        created_at_ms: row.try_get(first + 10)?,
        modified_at_ms: row.try_get(first + 11)?,
    })
}

fn unit_from_row(row: &Row) -> Result<UnitRow, StoreError> {
    Ok(UnitRow {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        created_at: row.try_get(2)?,
    })
}

fn device_from_row(row: &Row) -> Result<DeviceRow, StoreError> {
    Ok(DeviceRow {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        name: row.try_get(2)?,
        public_key: row.try_get(3)?,
        enrolled_at: row.try_get(4)?,
        revoked_at: row.try_get(5)?,
    })
}

fn token_from_row(row: &Row) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        token_hash: row.try_get(0)?,
        family_id: row.try_get(1)?,
        user_id: row.try_get(2)?,
        device_id: row.try_get(3)?,
        expires_at: row.try_get(4)?,
        used: row.try_get(5)?,
    })
}

fn document_from_row(row: &Row) -> Result<DocumentRow, StoreError> {
    Ok(DocumentRow {
        id: row.try_get(0)?,
        title: row.try_get(1)?,
        classification: row.try_get(2)?,
        sha256: row.try_get(3)?,
        size: row.try_get(4)?,
        registered_by: row.try_get(5)?,
        registered_at: row.try_get(6)?,
    })
}

fn assignee_columns(assignee: &Assignee) -> (Option<&str>, Option<&str>) {
    match assignee {
        Assignee::User(id) => (Some(id.as_str()), None),
        Assignee::Unit(id) => (None, Some(id.as_str())),
    }
}

fn collect<T>(
    rows: Vec<Row>,
    read: fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(read).collect()
}

/// Locks every refresh token of login session `family_id`, in the order of their hashes.
async fn lock_token_family(
    transaction: &deadpool_postgres::Transaction<'_>,
    family_id: &str,
) -> Result<(), StoreError> {
    transaction
        .query(
            "SELECT 1 FROM refresh_tokens WHERE family_id = $1 ORDER BY token_hash FOR UPDATE",
            &[&family_id],
        )
        .await?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn create_unit(&self, unit: &UnitRow) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO units (id, name, created_at) VALUES ($1, $2, $3)",
            &[&unit.id, &unit.name, &unit.created_at],
        )
        .await
        .map_err(|e| duplicate_or(e, &format!("a unit named {:?}", unit.name)))?;
        Ok(())
    }

    async fn unit_by_name(&self, name: &str) -> Result<Option<UnitRow>, StoreError> {
        let row = self
            .query_opt(
                "SELECT id, name, created_at FROM units WHERE name = $1",
                &[&name],
            )
            .await?;
        row.as_ref().map(unit_from_row).transpose()
    }

    async fn unit_by_id(&self, id: &str) -> Result<Option<UnitRow>, StoreError> {
        let row = self
            .query_opt(
                "SELECT id, name, created_at FROM units WHERE id = $1",
                &[&id],
            )
            .await?;
        row.as_ref().map(unit_from_row).transpose()
    }

    async fn list_units(&self) -> Result<Vec<UnitRow>, StoreError> {
        let rows = self
            .query("SELECT id, name, created_at FROM units ORDER BY name", &[])
            .await?;
        collect(rows, unit_from_row)
    }

    async fn create_user(&self, user: &UserRow) -> Result<(), StoreError> {
        self.execute(
                &format!(
                    "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ),
                &[
                    &user.id,
                    &user.username,
                    &user.display_name,
                    &user.role.as_str(),
                    &user.unit_id,
                    &user.password_hash,
                    &user.totp_secret,
                    &user.last_totp_step,
                    &user.failed_logins,
                    &user.locked_until,
                    &user.created_at,
                    &user.disabled_at,
                ],
            )
            .await
            .map_err(|e| duplicate_or(e, &format!("a user named {:?}", user.username)))?;
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        let row = self
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"),
                &[&username],
            )
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let row = self
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
                &[&id],
            )
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"),
                &[],
            )
            .await?;
        collect(rows, user_from_row)
    }

    async fn set_password_hash(
        &self,
        user_id: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        self.execute(
                "UPDATE users SET password_hash = $2, failed_logins = 0, locked_until = NULL WHERE id = $1",
                &[&user_id, &password_hash],
            )
            .await?;
        Ok(())
    }

    async fn set_second_factor(
        &self,
        user_id: &str,
        totp_secret: Option<&[u8]>,
        recovery_code_hashes: &[String],
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        transaction
            .execute(
                "UPDATE users SET totp_secret = $2, last_totp_step = NULL WHERE id = $1",
                &[&user_id, &totp_secret],
            )
            .await?;
        transaction
            .execute("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id])
            .await?;
        for hash in recovery_code_hashes {
            transaction
                .execute(
                    "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)",
                    &[&user_id, hash],
                )
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn claim_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE users SET last_totp_step = $2 \
                 WHERE id = $1 AND (last_totp_step IS NULL OR last_totp_step < $2)",
                &[&user_id, &step],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn consume_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
    ) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "DELETE FROM recovery_codes WHERE user_id = $1 AND code_hash = $2",
                &[&user_id, &code_hash],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn record_failed_login(
        &self,
        user_id: &str,
        threshold: i64,
        lock_until: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        let row = self
            .query_one(
                "UPDATE users SET failed_logins = failed_logins + 1, \
                   locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END \
                 WHERE id = $1 RETURNING failed_logins, locked_until",
                &[&user_id, &threshold, &lock_until],
            )
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    async fn clear_failed_logins(&self, user_id: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1",
            &[&user_id],
        )
        .await?;
        Ok(())
    }

    async fn create_device(&self, device: &DeviceRow) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO devices (id, user_id, name, public_key, enrolled_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &device.id,
                &device.user_id,
                &device.name,
                &device.public_key,
                &device.enrolled_at,
                &device.revoked_at,
            ],
        )
        .await
        .map_err(|e| duplicate_or(e, "that device"))?;
        Ok(())
    }

    async fn device_by_id(&self, id: &str) -> Result<Option<DeviceRow>, StoreError> {
        let row = self.query_opt(
                "SELECT id, user_id, name, public_key, enrolled_at, revoked_at FROM devices WHERE id = $1",
                &[&id],
            )
            .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    async fn list_devices(&self, user_id: Option<&str>) -> Result<Vec<DeviceRow>, StoreError> {
        let rows = self
            .query(
                "SELECT id, user_id, name, public_key, enrolled_at, revoked_at FROM devices \
                 WHERE $1::TEXT IS NULL OR user_id = $1 ORDER BY enrolled_at, id",
                &[&user_id],
            )
            .await?;
        collect(rows, device_from_row)
    }

    async fn revoke_device(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let changed = transaction
            .execute(
                "UPDATE devices SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
                &[&id, &at],
            )
            .await?;
        transaction
            .execute(
                "UPDATE refresh_tokens SET used = TRUE WHERE device_id = $1",
                &[&id],
            )
            .await?;
        transaction
            .execute(
                "UPDATE certificates SET revoked_at = $2 WHERE device_id = $1 AND revoked_at IS NULL",
                &[&id, &at],
            )
            .await?;
        transaction.commit().await?;
        Ok(changed == 1)
    }

    async fn disable_user(&self, user_id: &str, at: i64) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let changed = transaction
            .execute(
                "UPDATE users SET disabled_at = COALESCE(disabled_at, $2) WHERE id = $1",
                &[&user_id, &at],
            )
            .await?;
        transaction
            .execute(
                "UPDATE devices SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                &[&user_id, &at],
            )
            .await?;
        transaction
            .execute(
                "UPDATE certificates SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                &[&user_id, &at],
            )
            .await?;
        transaction
            .execute("DELETE FROM access_tokens WHERE user_id = $1", &[&user_id])
            .await?;
        transaction
            .execute(
                "UPDATE refresh_tokens SET used = TRUE WHERE user_id = $1",
                &[&user_id],
            )
            .await?;
        transaction.commit().await?;
        Ok(changed == 1)
    }

    async fn insert_certificate_once(
        &self,
        r: &CertificateRow,
        same_key: SameKey,
    ) -> Result<CertificateInsert, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        // The user's row lock orders every certificate issued to them, and the user's and the
        // device's locks hold back a disabling or a revocation (which revokes the certificates
        // it finds) until this one is recorded or not. The same order as `disable_user`.
        let user = transaction
            .query_opt(
                "SELECT disabled_at FROM users WHERE id = $1 FOR NO KEY UPDATE",
                &[&r.user_id],
            )
            .await?;
        let device = transaction
            .query_opt(
                "SELECT revoked_at FROM devices WHERE id = $1 FOR NO KEY UPDATE",
                &[&r.device_id],
            )
            .await?;
        let revoked = |row: Option<Row>| -> Result<bool, StoreError> {
            Ok(match row {
                Some(row) => row.try_get::<_, Option<i64>>(0)?.is_some(),
                None => true,
            })
        };
        if revoked(user)? || revoked(device)? {
            return Ok(CertificateInsert::Withdrawn);
        }
        let rows = transaction
            .query(
                "SELECT serial, user_id, device_id, subject, der, not_before, not_after, issued_at, revoked_at \
                 FROM certificates WHERE user_id = $1 AND device_id = $2 AND revoked_at IS NULL \
                 AND not_after > $3 ORDER BY issued_at, serial",
                &[&r.user_id, &r.device_id, &r.issued_at],
            )
            .await?;
        for row in &rows {
            let held = certificate_row(row)?;
            if same_key(&held.der) {
                return Ok(CertificateInsert::Held(held));
            }
        }
        transaction
            .execute(
                "INSERT INTO certificates (serial, user_id, device_id, subject, der, not_before, not_after, \
                 issued_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[&r.serial, &r.user_id, &r.device_id, &r.subject, &r.der, &r.not_before, &r.not_after, &r.issued_at, &r.revoked_at],
            )
            .await
            .map_err(|e| duplicate_or(e, "a certificate with that serial"))?;
        transaction.commit().await?;
        Ok(CertificateInsert::Recorded)
    }

    async fn certificates_of_user(&self, user_id: &str) -> Result<Vec<CertificateRow>, StoreError> {
        let rows = self.query(
                "SELECT serial, user_id, device_id, subject, der, not_before, not_after, issued_at, revoked_at \
                 FROM certificates WHERE user_id = $1 ORDER BY issued_at, serial",
                &[&user_id],
            )
            .await?;
        rows.iter().map(certificate_row).collect()
    }

    async fn revoked_certificates(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self.query("SELECT serial, revoked_at FROM certificates WHERE revoked_at IS NOT NULL ORDER BY serial", &[])
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    async fn insert_access_token(&self, token: &TokenRow) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO access_tokens (token_hash, family_id, user_id, device_id, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            &[
                &token.token_hash,
                &token.family_id,
                &token.user_id,
                &token.device_id,
                &token.expires_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn access_token(&self, token_hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = self
            .query_opt(
                "SELECT token_hash, family_id, user_id, device_id, expires_at, used FROM access_tokens \
                 WHERE token_hash = $1",
                &[&token_hash],
            )
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn insert_refresh_token(&self, token: &TokenRow) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, device_id, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            &[
                &token.token_hash,
                &token.family_id,
                &token.user_id,
                &token.device_id,
                &token.expires_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn refresh_token(&self, token_hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = self
            .query_opt(
                "SELECT token_hash, family_id, user_id, device_id, expires_at, used FROM refresh_tokens \
                 WHERE token_hash = $1",
                &[&token_hash],
            )
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn claim_refresh_token(&self, token_hash: &str) -> Result<RefreshClaim, StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE refresh_tokens SET used = TRUE WHERE token_hash = $1 AND NOT used",
                &[&token_hash],
            )
            .await?;
        if changed == 1 {
            return Ok(RefreshClaim::Claimed);
        }
        let exists = client
            .query_opt(
                "SELECT 1 FROM refresh_tokens WHERE token_hash = $1",
                &[&token_hash],
            )
            .await?;
        Ok(if exists.is_some() {
            RefreshClaim::AlreadyUsed
        } else {
            RefreshClaim::Unknown
        })
    }

    async fn mark_access_token_used(&self, token_hash: &str) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE access_tokens SET used = TRUE WHERE token_hash = $1",
                &[&token_hash],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn link_refreshed(
        &self,
        spent: &str,
        refresh: &str,
        access: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE refresh_tokens SET replaced_by = $2, replaced_by_access = $3 WHERE token_hash = $1",
            &[&spent, &refresh, &access],
        )
        .await?;
        Ok(())
    }

    async fn take_back_unused_successor(&self, spent: &str, now: i64) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        // The login's refresh tokens are locked first, in one order, as `revoke_token_family` locks
        // them: so two retries of one token take turns, and a retry and a revocation of the same
        // login cannot each hold a row the other waits for.
        let family: Option<String> = transaction
            .query_opt(
                "SELECT family_id FROM refresh_tokens WHERE token_hash = $1",
                &[&spent],
            )
            .await?
            .map(|row| row.try_get(0))
            .transpose()?;
        let Some(family) = family else {
            return Ok(false);
        };
        lock_token_family(&transaction, &family).await?;
        let link = transaction
            .query_opt(
                "SELECT replaced_by, replaced_by_access FROM refresh_tokens WHERE token_hash = $1",
                &[&spent],
            )
            .await?;
        let (refresh, access): (Option<String>, Option<String>) = match &link {
            Some(row) => (row.try_get(0)?, row.try_get(1)?),
            None => (None, None),
        };
        let (Some(refresh), Some(access)) = (refresh, access) else {
            return Ok(false);
        };
        let access_unused = transaction
            .query_opt(
                "SELECT NOT used AND expires_at > $2 FROM access_tokens WHERE token_hash = $1 FOR UPDATE",
                &[&access, &now],
            )
            .await?
            .map(|row| row.try_get::<_, bool>(0))
            .transpose()?;
        if access_unused != Some(true) {
            return Ok(false);
        }
        let spent_now = transaction
            .execute(
                "UPDATE refresh_tokens SET used = TRUE WHERE token_hash = $1 AND NOT used",
                &[&refresh],
            )
            .await?;
        if spent_now != 1 {
            return Ok(false);
        }
        transaction
            .execute(
                "DELETE FROM access_tokens WHERE token_hash = $1",
                &[&access],
            )
            .await?;
        transaction
            .execute(
                "UPDATE refresh_tokens SET replaced_by = NULL, replaced_by_access = NULL WHERE token_hash = $1",
                &[&spent],
            )
            .await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn revoke_token_family(
        &self,
        family_id: &str,
        presented: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        // Refresh tokens first, in one order, then access tokens: as a retried refresh takes them.
        lock_token_family(&transaction, family_id).await?;
        let newest = match presented {
            Some(hash) => transaction
                .query_opt(
                    "SELECT replaced_by IS NULL FROM refresh_tokens WHERE token_hash = $1",
                    &[&hash],
                )
                .await?
                .map(|row| row.try_get::<_, bool>(0))
                .transpose()?
                .unwrap_or(false),
            None => false,
        };
        let spent = transaction
            .execute(
                "UPDATE refresh_tokens SET used = TRUE WHERE family_id = $1 AND NOT used",
                &[&family_id],
            )
            .await?;
        let deleted = transaction
            .execute(
                "DELETE FROM access_tokens WHERE family_id = $1",
                &[&family_id],
            )
            .await?;
        transaction.commit().await?;
        Ok(spent + deleted > 0 || newest)
    }

    async fn create_document(&self, d: &DocumentRow) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let seq = next_sync_seq(&transaction).await?;
        transaction
            .execute(
                "INSERT INTO documents (id, title, classification, sha256, size, registered_by, \
                 registered_at, head_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &d.id,
                    &d.title,
                    &d.classification,
                    &d.sha256,
                    &d.size,
                    &d.registered_by,
                    &d.registered_at,
                    &seq,
                ],
            )
            .await
            .map_err(|e| duplicate_or(e, "that document"))?;
        transaction.commit().await?;
        Ok(())
    }

    async fn document_by_id(&self, id: &str) -> Result<Option<DocumentRow>, StoreError> {
        let row = self
            .query_opt(
                &format!("SELECT {DOCUMENT_COLUMNS} FROM documents d WHERE d.id = $1"),
                &[&id],
            )
            .await?;
        row.as_ref().map(document_from_row).transpose()
    }

    async fn list_documents(&self) -> Result<Vec<DocumentRow>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {DOCUMENT_COLUMNS} FROM documents d ORDER BY d.title, d.id"),
                &[],
            )
            .await?;
        collect(rows, document_from_row)
    }

    async fn visible_documents(
        &self,
        user_id: &str,
        unit_id: Option<&str>,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        let rows = self.query(
                &format!(
                    "SELECT {DOCUMENT_COLUMNS} FROM documents d WHERE d.id IN ( \
                       SELECT document_id FROM assignments WHERE user_id = $1 AND revoked_at IS NULL \
                       UNION SELECT document_id FROM assignments \
                       WHERE $2::TEXT IS NOT NULL AND unit_id = $2 AND revoked_at IS NULL) \
                     ORDER BY d.title, d.id"
                ),
                &[&user_id, &unit_id],
            )
            .await?;
        collect(rows, document_from_row)
    }

    async fn visible_document(
        &self,
        document_id: &str,
        user_id: &str,
        unit_id: Option<&str>,
    ) -> Result<Option<DocumentRow>, StoreError> {
        let row = self.query_opt(
                &format!(
                    "SELECT {DOCUMENT_COLUMNS} FROM documents d WHERE d.id = $1 AND EXISTS ( \
                       SELECT 1 FROM assignments a WHERE a.document_id = d.id AND a.revoked_at IS NULL \
                       AND (a.user_id = $2 OR ($3::TEXT IS NOT NULL AND a.unit_id = $3)))"
                ),
                &[&document_id, &user_id, &unit_id],
            )
            .await?;
        row.as_ref().map(document_from_row).transpose()
    }

    async fn create_assignment(&self, a: &AssignmentRow) -> Result<(), StoreError> {
        let (user_id, unit_id) = assignee_columns(&a.assignee);
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let seq = next_sync_seq(&transaction).await?;
        transaction
            .execute(
                "INSERT INTO assignments (id, document_id, user_id, unit_id, assigned_at, created_seq) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&a.id, &a.document_id, &user_id, &unit_id, &a.assigned_at, &seq],
            )
            .await
            .map_err(|e| duplicate_or(e, "that assignment"))?;
        transaction.commit().await?;
        Ok(())
    }

    async fn revoke_assignment(
        &self,
        document_id: &str,
        assignee: &Assignee,
        at: i64,
    ) -> Result<bool, StoreError> {
        let (user_id, unit_id) = assignee_columns(assignee);
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let seq = next_sync_seq(&transaction).await?;
        let changed = transaction
            .execute(
                "UPDATE assignments SET revoked_at = $4, revoked_seq = $5 WHERE document_id = $1 \
                 AND revoked_at IS NULL AND user_id IS NOT DISTINCT FROM $2 AND unit_id IS NOT DISTINCT FROM $3",
                &[&document_id, &user_id, &unit_id, &at, &seq],
            )
            .await?;
        if changed > 0 {
            transaction.commit().await?;
        }
        Ok(changed > 0)
    }

    async fn pull(
        &self,
        user_id: &str,
        unit_id: Option<&str>,
        after_position: i64,
        after_document: Option<&str>,
        limit: i64,
    ) -> Result<PullPage, StoreError> {
        let mut client = self.client().await?;
        // One snapshot for the position and the entries, so the cursor never passes a change the
        // entries did not include.
        let transaction = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let server_position: i64 = transaction
            .query_one("SELECT seq FROM sync_counter WHERE id = 1", &[])
            .await?
            .try_get(0)?;
        // Every change's position is at most the counter: a reader already there (the usual
        // round when nothing changed) has nothing to read, whatever the server holds.
        if after_document.is_none() && after_position >= server_position {
            transaction.commit().await?;
            return Ok(PullPage {
                entries: Vec::new(),
                server_position,
            });
        }
        let rows = transaction
            .query(
                &format!(
                    "WITH mine AS ( \
                       SELECT document_id, created_seq, revoked_seq FROM assignments WHERE user_id = $1 \
                       UNION ALL SELECT document_id, created_seq, revoked_seq FROM assignments \
                       WHERE $2::TEXT IS NOT NULL AND unit_id = $2), \
                     visible AS ( \
                       SELECT m.document_id AS id, MAX(GREATEST(d.head_seq, m.created_seq)) AS position \
                       FROM mine m JOIN documents d ON d.id = m.document_id \
                       WHERE m.revoked_seq IS NULL GROUP BY m.document_id), \
                     gone AS ( \
                       SELECT m.document_id AS id, MAX(m.revoked_seq) AS position FROM mine m \
                       WHERE m.revoked_seq IS NOT NULL AND m.document_id NOT IN (SELECT id FROM visible) \
                       GROUP BY m.document_id), \
                     notes AS ( \
                       SELECT n.id AS id, GREATEST(n.position, v.position) AS position \
                       FROM annotations n JOIN visible v ON v.id = n.document_id), \
                     entries AS (SELECT id, position, 1 AS kind FROM visible \
                                 UNION ALL SELECT id, position, 0 FROM gone \
                                 UNION ALL SELECT id, position, 2 FROM notes) \
                     SELECT {DOCUMENT_COLUMNS}, e.id, e.position, e.kind, {ANNOTATION_COLUMNS} FROM entries e \
                     LEFT JOIN documents d ON d.id = e.id AND e.kind = 1 \
                     LEFT JOIN annotations n ON n.id = e.id AND e.kind = 2 \
                     WHERE e.position > $3 OR ($4::TEXT IS NOT NULL AND e.position = $3 AND e.id > $4) \
                     ORDER BY e.position, e.id LIMIT $5"
                ),
                &[&user_id, &unit_id, &after_position, &after_document, &limit],
            )
            .await?;
        transaction.commit().await?;
        let entries = rows
            .iter()
            .map(|row| {
                // The document's columns come first, so one reader serves both queries.
                let kind = match row.try_get::<_, i32>(9)? {
                    1 => PullEntryKind::Visible(document_from_row(row)?),
                    2 => PullEntryKind::Annotation(annotation_from_row(row, 10)?),
                    _ => PullEntryKind::Removed,
                };
                Ok(PullEntry {
                    id: row.try_get(7)?,
                    position: row.try_get(8)?,
                    kind,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(PullPage {
            entries,
            server_position,
        })
    }

    async fn apply_annotation_op(&self, op: &AnnotationOp) -> Result<OpApplied, StoreError> {
        let a = &op.annotation;
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let existing = transaction
            .query_opt(
                "SELECT document_id, author, logical_clock, origin FROM annotations WHERE id = $1 FOR UPDATE",
                &[&a.id],
            )
            .await?;
        let existing: Option<(String, String, i64, String)> = match existing {
            Some(row) => Some((
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            )),
            None => None,
        };
        if let Some((document_id, author, _, _)) = &existing {
            if *document_id != a.document_id || *author != a.author {
                return Ok(OpApplied::Mismatch);
            }
        }
        let recorded = transaction
            .execute(
                "INSERT INTO applied_ops (op_id, user_id, device_id, outcome, applied_at) VALUES ($1, $2, $3, '', $4) \
                 ON CONFLICT (op_id) DO NOTHING",
                &[&op.op_id, &op.user_id, &op.device_id, &op.at],
            )
            .await?;
        if recorded == 0 {
            return Ok(OpApplied::AlreadyApplied);
        }
        let newer_stands = existing.as_ref().is_some_and(|(_, _, clock, origin)| {
            (*clock, origin.as_str()) >= (a.logical_clock, a.origin.as_str())
        });
        let outcome = if newer_stands {
            OpApplied::Superseded
        } else {
            let seq = next_sync_seq(&transaction).await?;
            transaction
                .execute(
                    "INSERT INTO annotations (id, document_id, page_no, kind, author, body, revision, logical_clock, \
                     origin, deleted, created_at_ms, modified_at_ms, position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT (id) DO UPDATE SET page_no = $3, kind = $4, body = $6, revision = $7, \
                     logical_clock = $8, origin = $9, deleted = $10, modified_at_ms = $12, position = $13",
                    &[
                        &a.id, &a.document_id, &a.page_no, &a.kind, &a.author, &a.body, &a.revision,
                        &a.logical_clock, &a.origin, &a.deleted, &a.created_at_ms, &a.modified_at_ms, &seq,
                    ],
                )
                .await?;
            OpApplied::Applied
        };
        let name = if outcome == OpApplied::Applied {
            "applied"
        } else {
            "superseded"
        };
        transaction
            .execute(
                "UPDATE applied_ops SET outcome = $2 WHERE op_id = $1",
                &[&op.op_id, &name],
            )
            .await?;
        transaction.commit().await?;
        Ok(outcome)
    }

    async fn applied_op_outcome(
        &self,
        op_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = self
            .query_opt(
                "SELECT outcome FROM applied_ops WHERE op_id = $1 AND user_id = $2",
                &[&op_id, &user_id],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn apply_training_op(&self, op: &TrainingOp) -> Result<OpApplied, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let recorded = transaction
            .execute(
                "INSERT INTO applied_ops (op_id, user_id, device_id, outcome, applied_at) VALUES ($1, $2, $3, '', $4) \
                 ON CONFLICT (op_id) DO NOTHING",
                &[&op.op_id, &op.user_id, &op.device_id, &op.at],
            )
            .await?;
        if recorded == 0 {
            return Ok(OpApplied::AlreadyApplied);
        }
        let kept = transaction
            .execute(
                "INSERT INTO training_progress (user_id, device_id, sequence, progress, received_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, device_id) DO UPDATE \
                 SET sequence = $3, progress = $4, received_at = $5 WHERE training_progress.sequence < $3",
                &[&op.user_id, &op.device_id, &op.sequence, &op.progress, &op.at],
            )
            .await?;
        let (outcome, name) = if kept > 0 {
            (OpApplied::Applied, "applied")
        } else {
            (OpApplied::Superseded, "superseded")
        };
        transaction
            .execute(
                "UPDATE applied_ops SET outcome = $2 WHERE op_id = $1",
                &[&op.op_id, &name],
            )
            .await?;
        transaction.commit().await?;
        Ok(outcome)
    }

    async fn training_progress(&self) -> Result<Vec<TrainingRow>, StoreError> {
        let rows = self
            .query(
                "SELECT user_id, device_id, sequence, progress, received_at FROM training_progress \
                 ORDER BY user_id, device_id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TrainingRow {
                    user_id: r.try_get(0)?,
                    device_id: r.try_get(1)?,
                    sequence: r.try_get(2)?,
                    progress: r.try_get(3)?,
                    received_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    async fn apply_revision_op(&self, op: &RevisionOp) -> Result<RevisionApplied, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        // The document's row lock orders every revision pushed to it.
        let Some(row) = transaction
            .query_opt(
                "SELECT sha256 FROM documents WHERE id = $1 FOR UPDATE",
                &[&op.document_id],
            )
            .await?
        else {
            return Ok(RevisionApplied::UnknownBase);
        };
        let head: String = row.try_get(0)?;
        let recorded = transaction
            .query_opt(
                "SELECT outcome FROM applied_ops WHERE op_id = $1",
                &[&op.op_id],
            )
            .await?;
        if let Some(row) = recorded {
            let outcome: String = row.try_get(0)?;
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
        if op.base_sha256 != head
            && !revision_known(&transaction, &op.document_id, &op.base_sha256).await?
        {
            return Ok(RevisionApplied::UnknownBase);
        }
        // The server's own long-term extension of the base gives way: it is made again on top.
        let head_extends_base = op.base_sha256 != head
            && transaction
                .query_opt(
                    "SELECT 1 FROM document_revisions WHERE document_id = $1 AND sha256 = $2 \
                     AND base_sha256 = $3 AND cause = $4",
                    &[&op.document_id, &head, &op.base_sha256, &LONG_TERM_CAUSE],
                )
                .await?
                .is_some();
        let (branch, outcome) = if op.base_sha256 == head || head_extends_base {
            let seq = next_sync_seq(&transaction).await?;
            transaction
                .execute(
                    "UPDATE documents SET sha256 = $2, size = $3, head_seq = $4 WHERE id = $1",
                    &[&op.document_id, &op.sha256, &op.size, &seq],
                )
                .await?;
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
        let kept = transaction
            .execute(
                "INSERT INTO document_revisions (document_id, sha256, base_sha256, size, branch, cause, op_id, \
                 user_id, device_id, pushed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (document_id, sha256) DO NOTHING",
                &[
                    &op.document_id, &op.sha256, &op.base_sha256, &op.size, &branch, &op.cause, &op.op_id,
                    &op.user_id, &op.device_id, &op.at,
                ],
            )
            .await?
            > 0;
        let outcome = outcome.first_kept(kept);
        let name = if branch == "main" {
            "applied"
        } else {
            "conflict"
        };
        transaction
            .execute(
                "INSERT INTO applied_ops (op_id, user_id, device_id, outcome, applied_at) VALUES ($1, $2, $3, $4, $5)",
                &[&op.op_id, &op.user_id, &op.device_id, &name, &op.at],
            )
            .await?;
        if let Some(r) = op.audit_record(&outcome) {
            transaction
                .execute(
                    "INSERT INTO audit (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
                    &[&r.at, &r.actor, &r.action, &r.subject, &r.detail],
                )
                .await?;
        }
        transaction.commit().await?;
        Ok(outcome)
    }

    async fn sync_position(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT seq FROM sync_counter WHERE id = 1", &[])
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn pushed_heads(&self) -> Result<Vec<PushedHead>, StoreError> {
        let rows = self
            .query(
                "SELECT d.id, d.sha256, r.user_id, r.device_id FROM documents d \
                 JOIN document_revisions r ON r.document_id = d.id AND r.sha256 = d.sha256 \
                 WHERE r.cause <> $1 ORDER BY d.id",
                &[&LONG_TERM_CAUSE],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(PushedHead {
                    document_id: row.try_get(0)?,
                    sha256: row.try_get(1)?,
                    user_id: row.try_get(2)?,
                    device_id: row.try_get(3)?,
                })
            })
            .collect()
    }

    async fn is_document_revision(
        &self,
        document_id: &str,
        sha256: &str,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(KNOWN_REVISION, &[&document_id, &sha256])
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn device_audit_last(
        &self,
        device_id: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let row = self
            .query_opt(
                "SELECT seq, hash FROM device_audit WHERE device_id = $1 ORDER BY seq DESC LIMIT 1",
                &[&device_id],
            )
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    async fn device_audit_hash(
        &self,
        device_id: &str,
        seq: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = self
            .query_opt(
                "SELECT hash FROM device_audit WHERE device_id = $1 AND seq = $2",
                &[&device_id, &seq],
            )
            .await?;
        row.map(|r| Ok(r.try_get(0)?)).transpose()
    }

    async fn store_device_audit(
        &self,
        device_id: &str,
        entries: &[DeviceAuditRow],
        problems: &[(i64, String)],
        at: i64,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        for e in entries {
            transaction
                .execute(
                    "INSERT INTO device_audit (device_id, seq, prev_hash, hash, entry, received_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, seq) DO NOTHING",
                    &[&device_id, &e.seq, &e.prev_hash, &e.hash, &e.entry, &at],
                )
                .await?;
        }
        for (seq, problem) in problems {
            transaction
                .execute(
                    "INSERT INTO device_audit_problems (device_id, seq, problem, detected_at) VALUES ($1, $2, $3, $4)",
                    &[&device_id, seq, problem, &at],
                )
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn device_audit_problems(
        &self,
        device_id: &str,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = self
            .query(
                "SELECT seq, problem FROM device_audit_problems WHERE device_id = $1 ORDER BY seq, detected_at",
                &[&device_id],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn append_audit(&self, r: &NewAudit) -> Result<i64, StoreError> {
        let row = self.query_one(
                "INSERT INTO audit (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5) \
                 RETURNING seq",
                &[&r.at, &r.actor, &r.action, &r.subject, &r.detail],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn audit_after(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = self
            .query(
                "SELECT seq, at, actor, action, subject, detail FROM audit WHERE seq > $1 \
                 ORDER BY seq LIMIT $2",
                &[&after, &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditRow {
                    seq: row.try_get(0)?,
                    record: NewAudit {
                        at: row.try_get(1)?,
                        actor: row.try_get(2)?,
                        action: row.try_get(3)?,
                        subject: row.try_get(4)?,
                        detail: row.try_get(5)?,
                    },
                })
            })
            .collect()
    }
}

/// A `certificates` row read in the column order serial, user_id, device_id, subject, der,
/// not_before, not_after, issued_at, revoked_at.
fn certificate_row(row: &Row) -> Result<CertificateRow, StoreError> {
    Ok(CertificateRow {
        serial: row.try_get(0)?,
        user_id: row.try_get(1)?,
        device_id: row.try_get(2)?,
        subject: row.try_get(3)?,
        der: row.try_get(4)?,
        not_before: row.try_get(5)?,
        not_after: row.try_get(6)?,
        issued_at: row.try_get(7)?,
        revoked_at: row.try_get(8)?,
    })
}
