use std::path::{Path, PathBuf};
use std::sync::Arc;

use outpost_pdf::{PdfEngine, SampleKind};
use outpost_vault::{Clock, DeviceSecretStore, KdfParams, Vault, VaultPaths};

use crate::{Session, SharedRng, WorkstationError};

/// The demo user the start command creates.
pub const DEMO_USER: &str = "demo";
/// The demo user's password (README states it). Only ever used for the seeded demo vault.
pub const DEMO_PASSWORD: &str = "outpost-demo";

/// What a workstation is made of.
pub struct WorkstationConfig {
    /// Folder holding every user's vault (`ROOT/vaults/USER`).
    pub data_root: PathBuf,
    /// Where device secrets live (the OS keyring in production).
    pub keyring: Arc<dyn DeviceSecretStore>,
    /// Wall clock for records.
    pub clock: Arc<dyn Clock>,
    /// Argon2id parameters for new vaults and password changes.
    pub kdf: KdfParams,
    /// The PDF engine.
    pub pdf: PdfEngine,
}

/// The shortest vault password [`Workstation::set_up`] takes.
pub const MIN_VAULT_PASSWORD: usize = 8;

/// What a user gives at their first run on a workstation.
pub struct WorkstationSetup<'a> {
    /// Their name on the server, and of their vault here.
    pub username: &'a str,
    /// The password of the new vault (kept by no one but the user).
    pub vault_password: &'a str,
    /// The server's address (`https://host:port`).
    pub base_url: &'a str,
    /// The server's TLS CA certificate (PEM), pinned.
    pub ca_pem: &'a str,
    /// Their password on the server.
    pub server_password: &'a str,
    /// Their second factor (the authenticator's code).
    pub second_factor: outpost_protocol::SecondFactor,
    /// How this workstation is listed among their devices.
    pub device_name: &'a str,
}

/// One workstation, shared by the users who have vaults on it.
pub struct Workstation {
    config: WorkstationConfig,
    /// Held while a tutorial sandbox is opened (made, the first time): two openings at once
    /// would each put their own password in the keyring.
    pub(crate) tutorial_opening: std::sync::Mutex<()>,
    /// Held while a user's first run makes their vault.
    setting_up: std::sync::Mutex<()>,
    /// The practice server the tutorial's sandboxes sync with, when the app runs one.
    pub(crate) practice: std::sync::Mutex<Option<Arc<dyn crate::PracticeServerHost>>>,
}

impl Workstation {
    /// A workstation over `config`.
    pub fn new(config: WorkstationConfig) -> Self {
        Self {
            config,
            tutorial_opening: std::sync::Mutex::new(()),
            setting_up: std::sync::Mutex::new(()),
            practice: std::sync::Mutex::new(None),
        }
    }

    /// Where vaults live unless configured: `$OUTPOST_DATA_DIR`, else
    /// `$XDG_DATA_HOME/outpost/data` (by default under `~/.local/share`).
    pub fn default_data_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("OUTPOST_DATA_DIR") {
            return PathBuf::from(dir);
        }
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."))
            .join("outpost/data")
    }

    /// The watched inbox folder of `user`: `$OUTPOST_INBOX_DIR`, else `DATA/inbox/USER`.
    pub fn inbox_dir(&self, user: &str) -> PathBuf {
        std::env::var_os("OUTPOST_INBOX_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.config.data_root.join("inbox").join(user))
    }

    /// The watched inbox folder of `session`'s user: `$OUTPOST_INBOX_DIR`, else the folder they
    /// chose ([`Session::set_inbox_folder`]), else `DATA/inbox/USER`.
    pub fn inbox_dir_for(&self, session: &Session) -> PathBuf {
        match session.inbox_folder() {
            Ok(Some(chosen)) if std::env::var_os("OUTPOST_INBOX_DIR").is_none() => chosen,
            _ => self.inbox_dir(&session.user()),
        }
    }

    pub(crate) fn config(&self) -> &WorkstationConfig {
        &self.config
    }

    /// The folder holding the vaults.
    pub fn data_root(&self) -> &Path {
        &self.config.data_root
    }

    /// The PDF engine.
    pub fn pdf(&self) -> &PdfEngine {
        &self.config.pdf
    }

    /// The users with a vault here.
    pub fn users(&self) -> Result<Vec<String>, WorkstationError> {
        Ok(VaultPaths::users(&self.config.data_root)?)
    }

    /// Remote wipe, after the server said this device was revoked
    /// ([`WorkstationError::is_device_revoked`]): closes the session and destroys its vault — the
    /// device secret leaves the keyring and the key file is removed, so the encrypted database can
    /// never be opened again — and the vault's files are deleted.
    pub fn remote_wipe(&self, session: Session) -> Result<(), WorkstationError> {
        let vault = session.into_vault();
        tracing::warn!(
            user = vault.user(),
            "remote wipe: the server revoked this device"
        );
        vault.destroy(self.config.keyring.as_ref())?;
        Ok(())
    }

    /// Creates `user`'s vault and returns an unlocked session on it.
    pub fn create_vault(
        &self,
        user: &str,
        password: &str,
        rng: SharedRng,
    ) -> Result<Session, WorkstationError> {
        let paths = VaultPaths::new(&self.config.data_root, user)?;
        let vault = {
            let mut guard = rng.lock().unwrap_or_else(|p| p.into_inner());
            Vault::create(
                &paths,
                password,
                self.config.kdf,
                self.config.keyring.as_ref(),
                self.config.clock.clone(),
                &mut *guard,
            )?
        };
        Ok(Session::new(vault, self.config.pdf.clone(), rng))
    }

    /// First run of a user on this workstation: makes their vault (under `vault_password`) and
    /// connects it to their organisation's server (enrolling this workstation as their device;
    /// the server's CA pinned). If the server does not take the sign-in, the new vault is removed
    /// again — nothing is left half set up — and the error says why.
    pub fn set_up(
        &self,
        setup: &WorkstationSetup<'_>,
        rng: SharedRng,
    ) -> Result<Session, WorkstationError> {
        // One set-up at a time: two for the same name must not share a folder.
        let _one_at_a_time = self.setting_up.lock().unwrap_or_else(|p| p.into_inner());
        if setup.vault_password.chars().count() < MIN_VAULT_PASSWORD {
            return Err(WorkstationError::VaultPasswordTooShort {
                min: MIN_VAULT_PASSWORD,
            });
        }
        let session = self.create_vault(setup.username, setup.vault_password, rng)?;
        let connected = session.connect_server(
            setup.base_url,
            setup.ca_pem,
            setup.username,
            setup.server_password,
            setup.second_factor.clone(),
            setup.device_name,
        );
        let Err(error) = connected else {
            // A newcomer who practised in the tutorial first: that progress goes with the first sync.
            self.carry_tutorial_progress(&session);
            return Ok(session);
        };
        // Enrolled already (a later step failed): the vault stays, connected; unlocking it and
        // connecting again finishes the job. Otherwise nothing of it is kept.
        let enrolled = session
            .server_account()
            .ok()
            .flatten()
            .is_some_and(|a| a.device_id.is_some());
        if !enrolled {
            let dir = session.vault().paths().dir().to_owned();
            if let Err(cleanup) = session.into_vault().destroy(self.config.keyring.as_ref()) {
                tracing::error!(
                    "the vault made for a set-up the server refused could not be removed ({cleanup}); remove {} by hand",
                    dir.display()
                );
            }
        }
        Err(error)
    }

    /// Unlocks `user`'s vault.
    pub fn unlock(
        &self,
        user: &str,
        password: &str,
        rng: SharedRng,
    ) -> Result<Session, WorkstationError> {
        let paths = VaultPaths::new(&self.config.data_root, user)?;
        let vault = Vault::open(
            &paths,
            password,
            self.config.keyring.as_ref(),
            self.config.clock.clone(),
        )?;
        let session = Session::new(vault, self.config.pdf.clone(), rng);
        self.carry_tutorial_progress(&session);
        Ok(session)
    }

    /// Queues the user's tutorial progress (if they have a sandbox) in their real vault, for the
    /// next push: how a supervisor learns of a trainee's progress. A sandbox that cannot be read
    /// does not keep the user out of real work.
    fn carry_tutorial_progress(&self, session: &Session) {
        let user = session.user();
        let carried = self
            .tutorial_progress(&user)
            .and_then(|progress| match progress {
                Some(progress) => session.queue_training_progress(&progress).map(|_| ()),
                None => Ok(()),
            });
        if let Err(e) = carried {
            tracing::warn!(
                code = e.code(),
                "the tutorial progress was not carried over: {e}"
            );
        }
    }

    /// Changes `user`'s vault password (rewraps the key; the database is untouched).
    pub fn change_password(
        &self,
        user: &str,
        old_password: &str,
        new_password: &str,
        rng: &SharedRng,
    ) -> Result<(), WorkstationError> {
        let paths = VaultPaths::new(&self.config.data_root, user)?;
        let mut guard = rng.lock().unwrap_or_else(|p| p.into_inner());
        Vault::change_password(
            &paths,
            old_password,
            new_password,
            self.config.kdf,
            self.config.keyring.as_ref(),
            &mut *guard,
        )?;
        Ok(())
    }

    /// Opens the demo vault, creating it the first time — with the generated sample documents
    /// imported, unless `server` is given: then it is connected to the demo server instead (once),
    /// and its documents arrive by sync.
    pub fn open_or_seed_demo(
        &self,
        rng: SharedRng,
        server: Option<&DemoServer>,
    ) -> Result<Session, WorkstationError> {
        let paths = VaultPaths::new(&self.config.data_root, DEMO_USER)?;
        let session = if paths.exists() {
            self.unlock(DEMO_USER, DEMO_PASSWORD, rng)?
        } else {
            let session = self.create_vault(DEMO_USER, DEMO_PASSWORD, rng)?;
            if server.is_none() {
                self.import_demo_samples(&session)?;
            }
            session
        };
        if let Some(server) = server {
            if session.server_account()?.is_none() {
                session.connect_server(
                    &server.base_url,
                    &server.ca_pem,
                    DEMO_USER,
                    DEMO_PASSWORD,
                    outpost_protocol::SecondFactor::Totp {
                        code: server.current_code(session.now_ms() / 1000)?,
                    },
                    "Outpost demo workstation",
                )?;
            }
        }
        Ok(session)
    }

    fn import_demo_samples(&self, session: &Session) -> Result<(), WorkstationError> {
        for spec in outpost_pdf::demo_samples() {
            let bytes = self
                .config
                .pdf
                .write_sample(&spec)
                .map_err(WorkstationError::Engine)?;
            let name = format!("{}-{}.pdf", sample_file_stem(spec.kind), spec.seed);
            session.import_bytes(bytes, &name)?;
        }
        Ok(())
    }
}

/// The demo server of the embedded default (README's start command): where it is, the CA to pin,
/// and the demo user's TOTP secret. DEMO ONLY: a real workstation never holds a TOTP secret — the
/// user types the code from their authenticator; the demo computes it so that the start command
/// needs no phone.
#[derive(Clone)]
pub struct DemoServer {
    /// `https://127.0.0.1:PORT`.
    pub base_url: String,
    /// The server's TLS CA (PEM).
    pub ca_pem: String,
    /// The demo user's TOTP secret, base32 (as `outpost-server demo` wrote it).
    pub totp_secret_base32: String,
}

impl std::fmt::Debug for DemoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoServer")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl DemoServer {
    /// The code an authenticator would show at `unix_seconds`.
    fn current_code(&self, unix_seconds: i64) -> Result<String, WorkstationError> {
        let bad = |why: String| {
            WorkstationError::Sync(format!("the demo TOTP secret cannot be used: {why}"))
        };
        let secret = totp_rs::Secret::try_from_base32(self.totp_secret_base32.trim())
            .map_err(|e| bad(e.to_string()))?;
        let totp = totp_rs::Builder::new()
            .with_algorithm(totp_rs::Algorithm::SHA1)
            .with_digits(6)
            .with_step_duration(30)
            .with_secret(secret)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(totp
            .generate(u64::try_from(unix_seconds).unwrap_or(0))
            .to_string())
    }
}

fn sample_file_stem(kind: SampleKind) -> &'static str {
    match kind {
        SampleKind::PersonnelRecord => "personnel-record",
        SampleKind::ProcurementContract => "procurement-contract",
        SampleKind::OperationalReport => "operational-report",
    }
}
