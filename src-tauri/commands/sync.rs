//! Sync with the server: the engine runs while a vault that syncs is unlocked; the UI reads its
//! state, hears every change (event `sync-state`) and may ask for a round now.

use std::sync::Arc;

use outpost_workstation::{Session, SyncEngine, SyncSchedule, SyncState};
use tauri::{AppHandle, Emitter, State};

use super::CommandResult;
use crate::state::AppState;

/// Starts the sync engine for `session` if its vault syncs with a server, forwarding its state to
/// the UI. Returns the engine to keep.
pub fn start_engine(app: &AppHandle, session: Arc<Session>) -> Option<SyncEngine> {
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
            let _ = app.emit("sync-state", state);
        }
    });
    Some(engine)
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
    Ok(state
        .sync
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(SyncEngine::state))
}

/// Asks for a sync round now.
#[tauri::command]
pub async fn sync_now(state: State<'_, AppState>) -> CommandResult<()> {
    if let Some(engine) = state
        .sync
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        engine.sync_now();
    }
    Ok(())
}
