//! What the app keeps between commands: the workstation and the unlocked session, if any.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use outpost_workstation::inbox::InboxWatcher;
use outpost_workstation::{
    KdfParams, OsKeyring, PdfEngine, Session, SharedRng, SystemClock, Workstation,
    WorkstationConfig, DEMO_USER,
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
}

impl AppState {
    /// Builds the state from the environment (`OUTPOST_DATA_DIR`, `OUTPOST_KEYRING_SERVICE`,
    /// `OUTPOST_PDFIUM_PATH`); in demo mode seeds the demo vault the first time.
    pub fn from_environment(demo: bool) -> Result<Self, String> {
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
        let rng: SharedRng = Arc::new(Mutex::new(Box::new(rand_core::OsRng)));
        let mut suggested_user = workstation
            .users()
            .map_err(|e| e.to_string())?
            .into_iter()
            .next();
        if demo {
            let session = workstation
                .open_or_seed_demo(rng.clone())
                .map_err(|e| e.to_string())?;
            session.lock().map_err(|e| e.to_string())?;
            suggested_user = Some(DEMO_USER.to_owned());
        }
        Ok(Self {
            workstation: Arc::new(workstation),
            session: Mutex::new(None),
            inbox: Mutex::new(None),
            inbox_error: Mutex::new(None),
            rng,
            suggested_user,
            batch_cancel: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The unlocked session, if any.
    pub fn session(&self) -> Option<Arc<Session>> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
