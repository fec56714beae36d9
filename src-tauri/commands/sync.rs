//! Sync with the server: the engine runs while a vault that syncs is unlocked; the UI reads its
//! state, hears every change (event `sync-state`) and may ask for a round now.

use std::sync::Arc;

use outpost_workstation::{Session, SyncEngine, SyncSchedule, SyncState};
use tauri::{AppHandle, Emitter, Manager, Runtime, State};

use super::CommandResult;
use crate::state::AppState;

/// Starts the sync engine for `session` if its vault syncs with a server, forwarding its state to
/// the UI. Returns the engine to keep.
pub fn start_engine<R: Runtime>(app: &AppHandle<R>, session: Arc<Session>) -> Option<SyncEngine> {
    match session.server_account() {
        Ok(Some(_)) => {}
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(code = e.code(), "the sync account cannot be read: {e}");
            return None;
        }
    }
    let runtime = tauri::async_runtime::handle();
    let engine = SyncEngine::start(runtime.inner(), session, SyncSchedule::default());
    let mut changes = engine.subscribe();
    let app = app.clone();
    runtime.spawn(async move {
        while changes.changed().await.is_ok() {
            let state = changes.borrow_and_update().clone();
            let revoked = state.device_revoked;
            let _ = app.emit("sync-state", state);
            if revoked {
                wipe_revoked_vault(&app).await;
                break;
            }
        }
    });
    Some(engine)
}

/// The server revoked this device: everything that holds the session lets go of it, and the vault
/// is destroyed (`Workstation::remote_wipe`). The UI hears `vault-wiped` and returns to the unlock
/// screen.
async fn wipe_revoked_vault<R: Runtime>(app: &AppHandle<R>) {
    let state = app.state::<AppState>();
    let session = match super::vault::release_session(&state).await {
        Ok(Some(session)) => session,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(code = e.code, "remote wipe failed: {}", e.message);
            return;
        }
    };
    let workstation = state.workstation.clone();
    let outcome = super::blocking(move || {
        // A page render may still hold the session for a moment.
        match Session::into_sole_owner(session, std::time::Duration::from_secs(5)) {
            Ok(owned) => Ok(workstation.remote_wipe(owned)?),
            Err(_) => Err(super::CommandError {
                code: "internal",
                message: "the vault is still in use; it is wiped at its next sync".into(),
            }),
        }
    })
    .await;
    match outcome {
        Ok(()) => {
            let _ = app.emit("vault-wiped", ());
        }
        Err(e) => tracing::error!(code = e.code, "remote wipe failed: {}", e.message),
    }
}

/// Stops the engine, if one runs (a round in flight is cancelled between documents).
pub async fn stop_engine(state: &AppState) {
    let engine = state.sync.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(engine) = engine {
        engine.stop().await;
    }
}

/// The engine's state, or nothing when the unlocked vault does not sync (or none is unlocked).
#[tauri::command]
pub async fn sync_state(state: State<'_, AppState>) -> CommandResult<Option<SyncState>> {
    Ok(with_engine(&state, SyncEngine::state))
}

/// `act` on the running engine, if one runs.
fn with_engine<T>(state: &AppState, act: impl FnOnce(&SyncEngine) -> T) -> Option<T> {
    state
        .sync
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(act)
}

/// What the connect screen sends: where the server is, the CA to pin, and the sign-in.
#[derive(serde::Deserialize)]
pub struct ConnectRequest {
    /// The server's address (`https://host:port`).
    pub address: String,
    /// The server's TLS CA certificate (PEM) to pin.
    pub ca_pem: String,
    /// The user's name on the server.
    pub username: String,
    /// The user's password on the server (never logged or kept).
    pub password: String,
    /// The current code of the user's authenticator app.
    pub code: String,
    /// How this workstation is listed among the user's devices.
    pub device_name: String,
}

/// Connects the unlocked vault to a server: signs in (password and TOTP), enrols this
/// workstation's device key, trusts the organisation's CA, and starts syncing. The name on the
/// server is the user's; a vault that already syncs may only sign in again as the same user on the
/// same server.
#[tauri::command]
pub async fn connect_server<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    request: ConnectRequest,
) -> CommandResult<String> {
    let session = super::session(&state)?;
    let connecting = session.clone();
    let user = super::blocking(move || {
        Ok(connecting.connect_server(
            request.address.trim(),
            &request.ca_pem,
            request.username.trim(),
            &request.password,
            outpost_workstation::SecondFactor::Totp {
                code: request.code.trim().to_string(),
            },
            request.device_name.trim(),
        )?)
    })
    .await?;
    sync_soon(&app, &state, session);
    Ok(user.display_name)
}

/// Asks the running engine for a round now, or starts one for `session` (whose vault was just
/// connected).
pub fn sync_soon<R: Runtime>(app: &AppHandle<R>, state: &AppState, session: Arc<Session>) {
    let mut sync = state.sync.lock().unwrap_or_else(|p| p.into_inner());
    match sync.as_ref() {
        Some(engine) => engine.sync_now(),
        None => *sync = start_engine(app, session),
    }
}

/// Asks for a sync round now.
#[tauri::command]
pub async fn sync_now(state: State<'_, AppState>) -> CommandResult<()> {
    with_engine(&state, SyncEngine::sync_now);
    Ok(())
}

/// Stops the running transfer (what arrived is kept; "sync now" resumes it).
#[tauri::command]
pub async fn cancel_sync(state: State<'_, AppState>) -> CommandResult<()> {
    with_engine(&state, SyncEngine::cancel_transfer);
    Ok(())
}

/// Where each server document stands with the server: changes waiting to be pushed, whether it
/// must be signed again (its signed revision lost a conflict and is kept on the server), and the
/// server's reason if it refused a revision.
#[tauri::command]
pub async fn document_sync_states(
    state: State<'_, AppState>,
) -> CommandResult<Vec<outpost_workstation::DocumentSyncState>> {
    let session = super::session(&state)?;
    super::blocking(move || Ok(session.document_sync_states()?)).await
}

/// The documents the server took back and this workstation purged, with what went with them,
/// until the user dismisses them.
#[tauri::command]
pub async fn purge_notices(
    state: State<'_, AppState>,
) -> CommandResult<Vec<outpost_workstation::PurgeNotice>> {
    let session = super::session(&state)?;
    super::blocking(move || Ok(session.purge_notices()?)).await
}

/// Dismisses the purge notices up to `up_to` (by id).
#[tauri::command]
pub async fn dismiss_purge_notices(state: State<'_, AppState>, up_to: i64) -> CommandResult<()> {
    let session = super::session(&state)?;
    super::blocking(move || Ok(session.dismiss_purge_notices(up_to)?)).await
}

/// Offers a revision the server refused to it again at the next sync round (the cause was dealt
/// with); `false` if the server refused nothing of the document.
#[tauri::command]
pub async fn offer_refused_revision_again(
    state: State<'_, AppState>,
    id: String,
) -> CommandResult<bool> {
    let session = super::session(&state)?;
    super::blocking(move || {
        Ok(session.offer_refused_revision_again(&outpost_workstation::DocumentId(id))?)
    })
    .await
}

/// Takes the server's copy of a document whose revision the server refused, discarding the local
/// revisions it does not hold (audited); returns what was discarded.
#[tauri::command]
pub async fn take_server_copy(
    state: State<'_, AppState>,
    id: String,
) -> CommandResult<Vec<String>> {
    let session = super::session(&state)?;
    super::blocking(move || {
        let never = std::sync::atomic::AtomicBool::new(false);
        Ok(session.take_server_copy(&outpost_workstation::DocumentId(id), &never)?)
    })
    .await
}
