use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand_core::CryptoRngCore;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::audit::{self, AuditAction, AuditEvent, AuditOutcome};
use crate::keys::{DeviceSecretStore, KdfParams, KeyFile, DATABASE_KEY_LEN};
use crate::{schema, Clock, VaultError};

const DATABASE_FILE: &str = "vault.db";
const KEY_FILE: &str = "vault.key.json";
const FAILED_UNLOCKS_FILE: &str = "failed-unlocks.jsonl";

/// Checks that `user` can name a vault folder.
pub fn valid_user_name(user: &str) -> bool {
    let bytes = user.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
}

/// What a vault is for: a user's real records, or the tutorial's practice sandbox. The kind is
/// written into the vault when it is made and checked at every opening, so a real unlock never
/// opens a sandbox and the tutorial never opens a real vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VaultKind {
    /// A user's vault of real records (`ROOT/vaults/USER`).
    Real,
    /// The tutorial's practice vault (`ROOT/tutorial/USER`), never listed among the users.
    Sandbox,
}

impl VaultKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Real => "real",
            Self::Sandbox => "sandbox",
        }
    }
}

/// Where a user's vault lives under a data root: `ROOT/vaults/USER/{vault.db, vault.key.json}`
/// (the tutorial's sandbox: `ROOT/tutorial/USER/...`).
#[derive(Debug, Clone)]
pub struct VaultPaths {
    user: String,
    dir: PathBuf,
    kind: VaultKind,
}

impl VaultPaths {
    /// The vault of `user` under `data_root`.
    pub fn new(data_root: &Path, user: &str) -> Result<Self, VaultError> {
        if !valid_user_name(user) {
            return Err(VaultError::InvalidUserName(user.to_owned()));
        }
        Ok(Self {
            user: user.to_owned(),
            dir: data_root.join("vaults").join(user),
            kind: VaultKind::Real,
        })
    }

    /// The tutorial's practice vault of `user` under `data_root` — apart from the real vaults, so
    /// [`VaultPaths::users`] never lists it.
    pub fn sandbox(data_root: &Path, user: &str) -> Result<Self, VaultError> {
        if !valid_user_name(user) {
            return Err(VaultError::InvalidUserName(user.to_owned()));
        }
        Ok(Self {
            user: user.to_owned(),
            dir: data_root.join("tutorial").join(user),
            kind: VaultKind::Sandbox,
        })
    }

    /// The user the vault belongs to.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether these are the paths of a real vault or of a sandbox.
    pub fn kind(&self) -> VaultKind {
        self.kind
    }

    /// The users who have a vault under `data_root`, sorted.
    pub fn users(data_root: &Path) -> Result<Vec<String>, VaultError> {
        let dir = data_root.join("vaults");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(VaultError::io(&dir, e)),
        };
        let mut users: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(KEY_FILE).is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| valid_user_name(name))
            .collect();
        users.sort();
        Ok(users)
    }

    /// The vault's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The SQLCipher database file.
    pub fn database(&self) -> PathBuf {
        self.dir.join(DATABASE_FILE)
    }

    /// The key file holding the wrapped database key.
    pub fn key_file(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    fn failed_unlocks(&self) -> PathBuf {
        self.dir.join(FAILED_UNLOCKS_FILE)
    }

    /// Whether a vault exists here.
    pub fn exists(&self) -> bool {
        self.key_file().is_file()
    }
}

/// A failed unlock noted outside the (still locked) database; moved into the audit chain at the
/// next successful unlock. Holds no secret: only when and why.
#[derive(Debug, Serialize, Deserialize)]
struct FailedUnlock {
    at_ms: i64,
    reason: String,
}

/// An open, unlocked vault.
pub struct Vault {
    pub(crate) conn: Connection,
    pub(crate) user: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) paths: VaultPaths,
    vault_id: Uuid,
    /// Documents indexed since the search indexes were last merged (this opening).
    pub(crate) indexed_since_merge: std::cell::Cell<usize>,
    /// The database key (none for the plaintext benchmark twin), to open [`VaultReader`]s; it
    /// lives in this process's memory as long as the database connection does anyway.
    key: Option<Zeroizing<[u8; DATABASE_KEY_LEN]>>,
}

/// A second connection to a vault's database, only for reading, that another thread uses while
/// the vault's own connection writes: the database's write-ahead log lets readers and one writer
/// work at once, each reader on a consistent snapshot. Opened by [`Vault::reader`].
pub struct VaultReader {
    pub(crate) conn: Connection,
    pub(crate) parts_folder: PathBuf,
}

impl std::fmt::Debug for VaultReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultReader").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("user", &self.user)
            .field("vault_id", &self.vault_id)
            .field("dir", &self.paths.dir)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Destroys this vault for good (a remote wipe): the device secret leaves the keyring and the
    /// key file is overwritten and removed — without both, the database key cannot be unwrapped,
    /// so the encrypted database is unreadable — then the database files and the folder go too.
    pub fn destroy(self, keyring: &dyn crate::DeviceSecretStore) -> Result<(), VaultError> {
        let paths = self.paths.clone();
        drop(self);
        let key_file = paths.key_file();
        if let Ok(file) = crate::KeyFile::read(&key_file) {
            keyring
                .delete(file.keyring_account())
                .map_err(|e| VaultError::KeyringUnavailable(e.to_string()))?;
        }
        if let Ok(metadata) = std::fs::metadata(&key_file) {
            let zeros = vec![0u8; metadata.len() as usize];
            let _ = std::fs::write(&key_file, zeros);
        }
        let database = paths.database();
        for file in [
            key_file,
            database.with_extension("db-wal"),
            database.with_extension("db-shm"),
            database,
        ] {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(VaultError::Io {
                        path: file,
                        source: error,
                    });
                }
            }
        }
        let _ = std::fs::remove_dir_all(paths.dir());
        Ok(())
    }

    /// Creates a new vault for `user`, protected by `password` and a fresh device secret in `keyring`.
    pub fn create(
        paths: &VaultPaths,
        password: &str,
        kdf: KdfParams,
        keyring: &dyn DeviceSecretStore,
        clock: Arc<dyn Clock>,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Self, VaultError> {
        if paths.exists() || paths.database().exists() {
            return Err(VaultError::AlreadyExists {
                user: paths.user.clone(),
                dir: paths.dir.clone(),
            });
        }
        create_private_dir(&paths.dir)?;
        let mut id_bytes = [0u8; 16];
        rng.fill_bytes(&mut id_bytes);
        let vault_id = uuid::Builder::from_random_bytes(id_bytes).into_uuid();
        let mut key = Zeroizing::new([0u8; DATABASE_KEY_LEN]);
        rng.fill_bytes(key.as_mut());

        let key_file = KeyFile::create(vault_id, &paths.user, password, &key, kdf, keyring, rng)?;
        let mut vault = Self::open_connection(paths, Some(&key), true, clock, vault_id)?;
        vault.conn.execute(
            "INSERT INTO vault_meta (key, value) VALUES ('vault_id', ?1), ('user', ?2), ('kind', ?3)",
            (vault_id.to_string(), &paths.user, paths.kind.as_str()),
        )?;
        // The key file is written last: a crash before this leaves no half-made vault that
        // `open` would mistake for a real one.
        key_file.write_atomically(&paths.key_file())?;
        vault.append_audit(&AuditEvent::new(
            AuditAction::VaultCreated,
            AuditOutcome::Success,
        ))?;
        Ok(vault)
    }

    /// Unlocks the vault of `paths` with `password` and the device secret in `keyring`.
    ///
    /// A failure never changes the vault; it is noted and enters the audit chain at the next unlock.
    pub fn open(
        paths: &VaultPaths,
        password: &str,
        keyring: &dyn DeviceSecretStore,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        Self::open_for(paths, password, keyring, clock, "")
    }

    /// [`Vault::open`] for a stated `purpose` (recorded with the unlock in the audit chain), when
    /// the engine opens a vault for itself rather than for the user to work in.
    pub fn open_for(
        paths: &VaultPaths,
        password: &str,
        keyring: &dyn DeviceSecretStore,
        clock: Arc<dyn Clock>,
        purpose: &str,
    ) -> Result<Self, VaultError> {
        if !paths.exists() {
            return Err(VaultError::NotFound {
                user: paths.user.clone(),
                dir: paths.dir.clone(),
            });
        }
        match Self::try_open(paths, password, keyring, clock.clone()) {
            Ok(mut vault) => {
                vault.absorb_failed_unlocks()?;
                vault.append_audit(
                    &AuditEvent::new(AuditAction::Unlock, AuditOutcome::Success).detail(purpose),
                )?;
                Ok(vault)
            }
            Err(e) => {
                note_failed_unlock(paths, clock.now_ms(), &e);
                Err(e)
            }
        }
    }

    fn try_open(
        paths: &VaultPaths,
        password: &str,
        keyring: &dyn DeviceSecretStore,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        let key_path = paths.key_file();
        let key_file = KeyFile::read(&key_path)?;
        if key_file.user() != paths.user {
            return Err(VaultError::CorruptKeyFile {
                path: key_path,
                reason: format!(
                    "it belongs to user '{}', not '{}'",
                    key_file.user(),
                    paths.user
                ),
            });
        }
        let key = key_file
            .unwrap_database_key(password, keyring)
            .map_err(|e| with_key_path(e, &key_path))?;
        let vault = Self::open_connection(paths, Some(&key), false, clock, key_file.vault_id())?;
        let found = vault.kind()?;
        if found != paths.kind {
            return Err(VaultError::WrongKind {
                dir: paths.dir.clone(),
                found,
            });
        }
        Ok(vault)
    }

    /// Whether this vault holds real records or the tutorial's practice data (vaults made before
    /// sandboxes existed are real).
    pub fn kind(&self) -> Result<VaultKind, VaultError> {
        let kind: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM vault_meta WHERE key = 'kind'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        Ok(match kind.as_deref() {
            Some("sandbox") => VaultKind::Sandbox,
            _ => VaultKind::Real,
        })
    }

    /// The user's setting `name` (kept in the vault, so it follows the vault, not the computer's
    /// account), if set.
    pub fn setting(&self, name: &str) -> Result<Option<String>, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM vault_meta WHERE key = ?1",
                [format!("setting.{name}")],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Sets the user's setting `name` to `value`, audited in the same transaction.
    pub fn set_setting(&mut self, name: &str, value: &str) -> Result<(), VaultError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO vault_meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = ?2",
            [format!("setting.{name}"), value.to_owned()],
        )?;
        audit::append(
            &tx,
            self.clock.now_ms(),
            &self.user,
            &AuditEvent::new(AuditAction::Settings, AuditOutcome::Success)
                .detail(format!("{name} set to {value}")),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Opens (or creates) the database, brings its schema up to date and wraps it.
    fn open_connection(
        paths: &VaultPaths,
        key: Option<&[u8; DATABASE_KEY_LEN]>,
        create: bool,
        clock: Arc<dyn Clock>,
        vault_id: Uuid,
    ) -> Result<Self, VaultError> {
        let mut conn = open_database(&paths.database(), key, create)?;
        schema::migrate(&mut conn)?;
        let vault = Self {
            conn,
            user: paths.user.clone(),
            clock,
            paths: paths.clone(),
            vault_id,
            indexed_since_merge: std::cell::Cell::new(0),
            key: key.map(|key| Zeroizing::new(*key)),
        };
        // What a crash left between a commit that dropped parts and the removal of their files.
        vault.forget_unowned_part_files();
        Ok(vault)
    }

    /// A [`VaultReader`] on this vault's database, for another thread.
    pub fn reader(&self) -> Result<VaultReader, VaultError> {
        let conn = open_database(&self.paths.database(), self.key.as_deref(), false)?;
        Ok(VaultReader {
            conn,
            parts_folder: self.parts_folder(),
        })
    }

    /// Changes the password: rewraps the same database key; the database itself is not touched.
    pub fn change_password(
        paths: &VaultPaths,
        old_password: &str,
        new_password: &str,
        kdf: KdfParams,
        keyring: &dyn DeviceSecretStore,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), VaultError> {
        let key_path = paths.key_file();
        let key_file = KeyFile::read(&key_path)?;
        let rewrapped = key_file
            .rewrap(old_password, new_password, kdf, keyring, rng)
            .map_err(|e| with_key_path(e, &key_path))?;
        rewrapped.write_atomically(&key_path)
    }

    /// A vault **without encryption** with the same schema, for the benchmark that measures what
    /// encryption costs. Only exists with the `bench-plaintext` feature, which no shipped binary enables.
    #[cfg(feature = "bench-plaintext")]
    pub fn create_plaintext_for_benchmark(
        paths: &VaultPaths,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        create_private_dir(&paths.dir)?;
        Self::open_connection(paths, None, true, clock, Uuid::nil())
    }

    /// The user this vault belongs to.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// This vault's id.
    pub fn vault_id(&self) -> Uuid {
        self.vault_id
    }

    /// Where this vault's files are.
    pub fn paths(&self) -> &VaultPaths {
        &self.paths
    }

    /// The clock this vault stamps records with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Appends one entry to the audit chain in its own transaction.
    pub fn append_audit(&mut self, event: &AuditEvent) -> Result<(), VaultError> {
        let tx = self.conn.transaction()?;
        audit::append(&tx, self.clock.now_ms(), &self.user, event)?;
        tx.commit()?;
        Ok(())
    }

    fn absorb_failed_unlocks(&mut self) -> Result<(), VaultError> {
        let path = self.paths.failed_unlocks();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(VaultError::io(&path, e)),
        };
        let tx = self.conn.transaction()?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let failed: FailedUnlock = serde_json::from_str(line).unwrap_or(FailedUnlock {
                at_ms: 0,
                reason: "unreadable failed-unlock record".into(),
            });
            audit::append(
                &tx,
                failed.at_ms,
                &self.user,
                &AuditEvent::new(AuditAction::Unlock, AuditOutcome::Failure).detail(failed.reason),
            )?;
        }
        tx.commit()?;
        fs::remove_file(&path).map_err(|e| VaultError::io(&path, e))
    }
}

fn with_key_path(error: VaultError, key_path: &Path) -> VaultError {
    match error {
        VaultError::CorruptKeyFile { reason, .. } => VaultError::CorruptKeyFile {
            path: key_path.to_owned(),
            reason,
        },
        other => other,
    }
}

fn note_failed_unlock(paths: &VaultPaths, at_ms: i64, error: &VaultError) {
    let reason = match error {
        VaultError::WrongPassword { .. } => "wrong password",
        VaultError::DeviceSecretMissing { .. } => "device secret missing from the keyring",
        VaultError::KeyringUnavailable(_) => "keyring unavailable",
        VaultError::CorruptKeyFile { .. } => "key file damaged",
        VaultError::DatabaseRejectedKey { .. } => "database rejected its key",
        VaultError::NewerSchema { .. } => "vault written by a newer Outpost",
        VaultError::WrongKind { .. } => "a sandbox and a real vault were taken for each other",
        _ => "other failure",
    };
    let record = FailedUnlock {
        at_ms,
        reason: reason.to_owned(),
    };
    if let Ok(line) = serde_json::to_string(&record) {
        let _ = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(paths.failed_unlocks())
            .and_then(|mut f| writeln!(f, "{line}"));
    }
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<(), VaultError> {
    fs::create_dir_all(dir).map_err(|e| VaultError::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| VaultError::io(dir, e))?;
    }
    Ok(())
}

/// Opens the SQLCipher database with a raw 256-bit key (no key: plain SQLite, for the
/// benchmark's twin only) and sets the vault's pragmas.
fn open_database(
    path: &Path,
    key: Option<&[u8; DATABASE_KEY_LEN]>,
    create: bool,
) -> Result<Connection, VaultError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    } else if !path.is_file() {
        return Err(VaultError::DatabaseRejectedKey {
            path: path.to_owned(),
        });
    }
    let conn = Connection::open_with_flags(path, flags)?;
    if let Some(key) = key {
        let key_pragma = Zeroizing::new(format!("x'{}'", hex::encode(key)));
        conn.pragma_update(None, "key", key_pragma.as_str())?;
    }
    // The first read proves the key; a wrong one fails here with "file is not a database".
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            return Err(VaultError::DatabaseRejectedKey {
                path: path.to_owned(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    apply_pragmas(&conn)?;
    Ok(conn)
}

fn apply_pragmas(conn: &Connection) -> Result<(), VaultError> {
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Decrypted pages are cached in memory only; 32 MiB keeps the search index hot.
    conn.pragma_update(None, "cache_size", -32 * 1024)?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(VaultError::Migration(format!(
            "the database refused WAL mode (got '{mode}')"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    crate::search::register_functions(conn)?;
    Ok(())
}
