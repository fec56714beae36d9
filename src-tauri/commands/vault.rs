use std::sync::Arc;
use std::time::Duration;

use outpost_workstation::inbox::{InboxConfig, InboxWatcher, IntakeEvent};
use outpost_workstation::Session;
use serde::Serialize;
use tauri::{AppHandle, Emitter, Runtime, State};

use super::{blocking, CommandError, CommandResult};
use crate::state::AppState;

/// What the unlock screen needs to know.
#[derive(Debug, Serialize)]
pub struct AppInfo {
    pub users: Vec<String>,
    pub suggested_user: Option<String>,
    pub unlocked_user: Option<String>,
    /// The watched inbox folder of the unlocked user.
    pub inbox_dir: Option<String>,
    /// Why the inbox is not running, if it could not start.
    pub inbox_error: Option<CommandError>,
    /// Whether the unlocked session is the tutorial's practice sandbox.
    pub sandbox: bool,
    /// The unlocked user's role on the server (`trainee`, `staff`, …), when the vault syncs.
    pub server_role: Option<String>,
    /// The server the unlocked vault syncs with (its address and pinned CA, both public), to
    /// sign in again after signing out.
    pub server: Option<ServerInfo>,
}

/// Where the unlocked vault syncs.
#[derive(Debug, Serialize)]
pub struct ServerInfo {
    pub address: String,
    pub ca_pem: String,
}

/// What the UI hears about intake (event `intake`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IntakeNotice {
    /// A file was handled.
    Event { event: IntakeEvent },
    /// A whole scan failed (the inbox folder vanished, a disk error, ...).
    Error { code: &'static str, message: String },
}

#[tauri::command]
pub async fn app_info(state: State<'_, AppState>) -> CommandResult<AppInfo> {
    Ok(AppInfo {
        users: state.workstation.users()?,
        suggested_user: state.suggested_user.clone(),
        unlocked_user: state.session().map(|s| s.user()),
        sandbox: state.session().is_some_and(|s| s.is_sandbox()),
        server_role: match state.session() {
            Some(session) => session.server_role()?.map(|r| r.as_str().to_owned()),
            None => None,
        },
        server: match state.session().filter(|s| !s.is_sandbox()) {
            Some(session) => session.server_account()?.map(|a| ServerInfo {
                address: a.base_url,
                ca_pem: a.ca_pem,
            }),
            None => None,
        },
        inbox_dir: state
            .session()
            .filter(|s| !s.is_sandbox())
            .map(|s| state.workstation.inbox_dir_for(&s).display().to_string()),
        inbox_error: state
            .inbox_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
    })
}

#[tauri::command]
pub async fn unlock<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    user: String,
    password: String,
) -> CommandResult<String> {
    let workstation = state.workstation.clone();
    let rng = state.rng.clone();
    let session = Arc::new(blocking(move || Ok(workstation.unlock(&user, &password, rng)?)).await?);
    Ok(begin_work(app, &state, session))
}

/// What the first-run screen sends: what the connect screen sends, and the new vault's password.
#[derive(serde::Deserialize)]
pub struct SetupRequest {
    /// The server and the user's sign-in there.
    #[serde(flatten)]
    pub connect: super::sync::ConnectRequest,
    /// The new vault's password.
    pub vault_password: String,
}

/// First run: makes the user's vault, connects it to their server and begins work in it (nothing
/// is left behind when the server refuses).
#[tauri::command]
pub async fn set_up_workstation<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    request: SetupRequest,
) -> CommandResult<String> {
    lock_session(&state).await?;
    let workstation = state.workstation.clone();
    let rng = state.rng.clone();
    let session = blocking(move || {
        let connect = &request.connect;
        Ok(workstation.set_up(
            &outpost_workstation::WorkstationSetup {
                username: connect.username.trim(),
                vault_password: &request.vault_password,
                base_url: connect.address.trim(),
                ca_pem: &connect.ca_pem,
                server_password: &connect.password,
                second_factor: outpost_workstation::SecondFactor::Totp {
                    code: connect.code.trim().to_string(),
                },
                device_name: connect.device_name.trim(),
            },
            rng,
        )?)
    })
    .await?;
    Ok(begin_work(app, &state, Arc::new(session)))
}

/// Makes `session` the unlocked one: its inbox watched, its sync engine running. Returns its user.
fn begin_work<R: Runtime>(app: AppHandle<R>, state: &AppState, session: Arc<Session>) -> String {
    let user = session.user();
    start_inbox(app.clone(), state, session.clone());
    let engine = super::sync::start_engine(&app, session.clone());
    *state.sync.lock().unwrap_or_else(|p| p.into_inner()) = engine;
    *state.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(session);
    user
}

/// Watches `session`'s inbox folder, telling the UI what it takes (event `intake`). A broken
/// inbox folder must not keep the user out of the vault: it is reported instead.
fn start_inbox<R: Runtime>(app: AppHandle<R>, state: &AppState, session: Arc<Session>) {
    let watcher = InboxWatcher::start(
        session.clone(),
        state.rng.clone(),
        InboxConfig::new(state.workstation.inbox_dir_for(&session)),
        move |event| {
            let notice = match event {
                Ok(event) => IntakeNotice::Event { event },
                Err(e) => IntakeNotice::Error {
                    code: e.code(),
                    message: e.to_string(),
                },
            };
            let _ = app.emit("intake", notice);
        },
    );
    let inbox_error = match watcher {
        Ok(watcher) => {
            *state.inbox.lock().unwrap_or_else(|p| p.into_inner()) = Some(watcher);
            None
        }
        Err(e) => {
            tracing::warn!(code = e.code(), "the inbox could not be started: {e}");
            Some(CommandError::from(e))
        }
    };
    *state.inbox_error.lock().unwrap_or_else(|p| p.into_inner()) = inbox_error;
}

/// Chooses the folder the inbox watches (kept in the vault) and watches it from now on (the file
/// in hand in the old folder is finished first). Returns the folder.
#[tauri::command]
pub async fn set_inbox_folder<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    folder: String,
) -> CommandResult<String> {
    let session = super::session(&state)?;
    if session.is_sandbox() {
        return Err(CommandError {
            code: "training_boundary",
            message: "the tutorial has no inbox: practise with its documents".into(),
        });
    }
    let choosing = session.clone();
    let chosen = std::path::PathBuf::from(folder.trim());
    blocking(move || Ok(choosing.set_inbox_folder(&chosen)?)).await?;
    let old = state.inbox.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(old) = old {
        blocking(move || {
            old.stop();
            Ok(())
        })
        .await?;
    }
    start_inbox(app, &state, session.clone());
    if let Some(error) = state
        .inbox_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
    {
        return Err(error);
    }
    Ok(state
        .workstation
        .inbox_dir_for(&session)
        .display()
        .to_string())
}

/// The files the unlocked user's inbox refused, with the reasons, the latest first.
#[tauri::command]
pub async fn inbox_rejections(
    state: State<'_, AppState>,
) -> CommandResult<Vec<outpost_workstation::inbox::RejectedFile>> {
    let session = super::session(&state)?;
    let folder = state.workstation.inbox_dir_for(&session);
    blocking(move || Ok(outpost_workstation::inbox::rejected_files(&folder)?)).await
}

#[tauri::command]
pub async fn lock(state: State<'_, AppState>) -> CommandResult<()> {
    lock_session(&state).await
}

/// Signs out of the server (when the vault syncs; the sync engine stopped first, so it cannot
/// renew the session meanwhile) and locks. Returns whether the server was told.
#[tauri::command]
pub async fn sign_out<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
) -> CommandResult<bool> {
    super::sync::stop_engine(&state).await;
    let told = match state.session().filter(|s| !s.is_sandbox()) {
        Some(session) => {
            let signing_out = session.clone();
            match blocking(move || Ok(signing_out.sign_out()?)).await {
                Ok(told) => told,
                Err(error) => {
                    // Still signed in: syncing goes on, and the UI says why signing out failed.
                    super::sync::sync_soon(&app, &state, session);
                    return Err(error);
                }
            }
        }
        None => false,
    };
    lock_session(&state).await?;
    Ok(told)
}

/// Locks the unlocked session (real or the tutorial's), if any.
pub async fn lock_session(state: &AppState) -> CommandResult<()> {
    if let Some(session) = release_session(state).await? {
        // A page render or a lesson check may hold it a moment longer.
        blocking(move || Ok(Session::lock_shared(session, Duration::from_secs(2))?)).await?;
    }
    Ok(())
}

/// Makes everything that holds the unlocked session let go of it — the sync engine, then intake
/// (which finishes the file in hand) — and hands the session over, if one is unlocked.
pub async fn release_session(state: &AppState) -> CommandResult<Option<Arc<Session>>> {
    *state.inbox_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    // A signing batch stops after the document in hand: nothing is signed once the vault locks.
    state
        .batch_cancel
        .store(true, std::sync::atomic::Ordering::SeqCst);
    super::sync::stop_engine(state).await;
    let watcher = state.inbox.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(watcher) = watcher {
        blocking(move || {
            watcher.stop();
            Ok(())
        })
        .await?;
    }
    Ok(state
        .session
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take())
}

impl From<outpost_workstation::VaultError> for CommandError {
    fn from(e: outpost_workstation::VaultError) -> Self {
        outpost_workstation::WorkstationError::from(e).into()
    }
}
