//! What the app keeps between commands: the workstation and the unlocked session, if any.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use outpost_workstation::inbox::InboxWatcher;
use outpost_workstation::{
    DemoServer, KdfParams, OsKeyring, PdfEngine, Session, SharedRng, SyncEngine, SystemClock,
    Workstation, WorkstationConfig, DEMO_USER,
};

/// Shared app state.
pub struct AppState {
    pub workstation: Arc<Workstation>,
    pub session: Mutex<Option<Arc<Session>>>,
    /// The watched inbox of the unlocked session.
    pub inbox: Mutex<Option<InboxWatcher>>,
    /// Why the inbox of the unlocked session could not start, if it could not.
    pub inbox_error: Mutex<Option<crate::commands::CommandError>>,
    pub rng: SharedRng,
    /// The user to offer on the unlock screen (the demo user in demo mode).
    pub suggested_user: Option<String>,
    /// Set to stop the running signing batch between documents.
    pub batch_cancel: Arc<AtomicBool>,
    /// The sync engine of the unlocked session, when its vault syncs with a server.
    pub sync: Mutex<Option<SyncEngine>>,
}

/// The demo server named on the command line (`--server URL --server-ca FILE --demo-totp-file
/// FILE`), if any.
pub fn demo_server(args: &[String]) -> Result<Option<DemoServer>, String> {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let Some(base_url) = value("--server") else {
        return Ok(None);
    };
    let read = |flag: &str| {
        let path = value(flag).ok_or_else(|| format!("--server needs {flag} FILE too"))?;
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))
    };
    let ca_pem = read("--server-ca")?;
    let totp_secret_base32 = read("--demo-totp-file")?
        .lines()
        .find_map(|line| {
            line.strip_prefix(&format!("{DEMO_USER}\t"))
                .map(str::to_owned)
        })
        .ok_or_else(|| format!("the demo TOTP file has no line for {DEMO_USER}"))?;
    Ok(Some(DemoServer {
        base_url,
        ca_pem,
        totp_secret_base32,
    }))
}

impl AppState {
    /// Builds the state from the environment (`OUTPOST_DATA_DIR`, `OUTPOST_KEYRING_SERVICE`,
    /// `OUTPOST_PDFIUM_PATH`); in demo mode seeds the demo vault the first time.
    pub fn from_environment(demo: bool, server: Option<&DemoServer>) -> Result<Self, String> {
        let pdf = PdfEngine::start_default().map_err(|e| e.to_string())?;
        let service =
            std::env::var("OUTPOST_KEYRING_SERVICE").unwrap_or_else(|_| "outpost".to_owned());
        let workstation = Workstation::new(WorkstationConfig {
            data_root: Workstation::default_data_root(),
            keyring: Arc::new(OsKeyring::new(service)),
            clock: Arc::new(SystemClock),
            kdf: KdfParams::RECOMMENDED,
            pdf,
        });
        workstation.set_practice_server(Arc::new(
            outpost_server::practice::EmbeddedPracticeServer::default(),
        ));
        let rng: SharedRng = Arc::new(Mutex::new(Box::new(rand_core::OsRng)));
        let mut suggested_user = workstation
            .users()
            .map_err(|e| e.to_string())?
            .into_iter()
            .next();
        if demo {
            let session = workstation
                .open_or_seed_demo(rng.clone(), server)
                .map_err(|e| e.to_string())?;
            session.lock().map_err(|e| e.to_string())?;
            suggested_user = Some(DEMO_USER.to_owned());
        }
        Ok(Self::new(workstation, rng, suggested_user))
    }

    /// The state of an app over `workstation`, nothing unlocked yet; `suggested_user` is offered
    /// on the unlock screen.
    pub fn new(workstation: Workstation, rng: SharedRng, suggested_user: Option<String>) -> Self {
        Self {
            workstation: Arc::new(workstation),
            session: Mutex::new(None),
            inbox: Mutex::new(None),
            inbox_error: Mutex::new(None),
            rng,
            suggested_user,
            batch_cancel: Arc::new(AtomicBool::new(false)),
            sync: Mutex::new(None),
        }
    }

    /// The unlocked session, if any.
    pub fn session(&self) -> Option<Arc<Session>> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
