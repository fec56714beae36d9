use serde::Serialize;
use tauri::State;

use super::{blocking, CommandError, CommandResult};
use crate::state::AppState;

/// What the unlock screen needs to know.
#[derive(Debug, Serialize)]
pub struct AppInfo {
    pub users: Vec<String>,
    pub suggested_user: Option<String>,
    pub unlocked_user: Option<String>,
}

#[tauri::command]
pub async fn app_info(state: State<'_, AppState>) -> CommandResult<AppInfo> {
    Ok(AppInfo {
        users: state.workstation.users()?,
        suggested_user: state.suggested_user.clone(),
        unlocked_user: state.session().map(|s| s.user()),
    })
}

#[tauri::command]
pub async fn unlock(
    state: State<'_, AppState>,
    user: String,
    password: String,
) -> CommandResult<String> {
    let workstation = state.workstation.clone();
    let rng = state.rng.clone();
    let session = blocking(move || Ok(workstation.unlock(&user, &password, rng)?)).await?;
    let user = session.user();
    *state.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::sync::Arc::new(session));
    Ok(user)
}

#[tauri::command]
pub async fn lock(state: State<'_, AppState>) -> CommandResult<()> {
    let session = state
        .session
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(session) = session {
        blocking(move || match std::sync::Arc::try_unwrap(session) {
            Ok(session) => Ok(session.lock()?),
            // Still in use by a page render: it closes when that ends.
            Err(_) => Ok(()),
        })
        .await?;
    }
    Ok(())
}

impl From<outpost_workstation::VaultError> for CommandError {
    fn from(e: outpost_workstation::VaultError) -> Self {
        outpost_workstation::WorkstationError::from(e).into()
    }
}
