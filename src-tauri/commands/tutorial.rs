//! Tutorial commands: entering the practice sandbox, its lessons and their progress. Leaving the
//! tutorial is the `lock` command: going back to real work takes the real unlock.

use std::sync::Arc;

use outpost_workstation::{LessonProgress, TrainingOverview, TutorialSummary};
use tauri::{AppHandle, Runtime, State};

use super::{blocking, session, CommandResult};
use crate::state::AppState;

/// Opens the tutorial (its sandbox made the first time): of the user whose real vault is
/// unlocked, or of `user` — with `password` when they have a real vault here. Real work that was
/// unlocked is locked then: the sandbox and a real vault are not worked in together.
#[tauri::command]
pub async fn start_tutorial<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    user: String,
    password: Option<String>,
) -> CommandResult<String> {
    let workstation = state.workstation.clone();
    let rng = state.rng.clone();
    let unlocked = state.session().filter(|s| !s.is_sandbox());
    let session = blocking(move || {
        Ok(match (unlocked, password.filter(|p| !p.is_empty())) {
            (Some(real), _) => workstation.open_tutorial_from(&real, rng)?,
            (None, Some(password)) => {
                workstation.open_tutorial_with_password(&user, &password, rng)?
            }
            (None, None) => workstation.open_tutorial(&user, rng)?,
        })
    })
    .await?;
    super::vault::lock_session(&state).await?;
    let session = Arc::new(session);
    let user = session.user();
    *state.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(session.clone());
    // A sandbox that met its practice server before syncs with it (offline until it is started).
    *state.sync.lock().unwrap_or_else(|p| p.into_inner()) =
        super::sync::start_engine(&app, session);
    Ok(user)
}

/// Every lesson of the tutorial with its progress.
#[tauri::command]
pub async fn lessons(state: State<'_, AppState>) -> CommandResult<Vec<LessonProgress>> {
    let session = session(&state)?;
    blocking(move || Ok(session.lessons()?)).await
}

/// Begins a lesson (again): what counts for it is what the trainee does from now on.
#[tauri::command]
pub async fn start_lesson<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    lesson: String,
) -> CommandResult<LessonProgress> {
    let session = session(&state)?;
    let starting = session.clone();
    let progress = blocking(move || Ok(starting.start_lesson(&lesson)?)).await?;
    if session.practice_server_online() {
        super::sync::sync_soon(&app, &state, session);
    }
    Ok(progress)
}

/// Takes the tutorial's practice server online (started, signed in to) or offline (stopped, as a
/// real server is unreachable when the connection drops), and has the sync engine try a round at
/// once.
#[tauri::command]
pub async fn set_practice_server_online<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    online: bool,
) -> CommandResult<bool> {
    let session = session(&state)?;
    let switching = session.clone();
    blocking(move || Ok(switching.set_practice_server_online(online)?)).await?;
    // A round now: the bar says at once that the server is back, or gone.
    super::sync::sync_soon(&app, &state, session.clone());
    Ok(session.practice_server_online())
}

/// Whether the tutorial's practice server is listening.
#[tauri::command]
pub async fn practice_server_online(state: State<'_, AppState>) -> CommandResult<bool> {
    Ok(session(&state)?.practice_server_online())
}

/// Asks the engine which steps of a lesson are done now.
#[tauri::command]
pub async fn check_lesson(
    state: State<'_, AppState>,
    lesson: String,
) -> CommandResult<LessonProgress> {
    let session = session(&state)?;
    blocking(move || Ok(session.check_lesson(&lesson)?)).await
}

/// The whole tutorial at a glance.
#[tauri::command]
pub async fn tutorial_summary(state: State<'_, AppState>) -> CommandResult<TutorialSummary> {
    let session = session(&state)?;
    blocking(move || Ok(session.tutorial_summary()?)).await
}

/// The tutorial progress of the trainees the signed-in supervisor oversees, from the server.
#[tauri::command]
pub async fn training_overview(state: State<'_, AppState>) -> CommandResult<TrainingOverview> {
    let session = session(&state)?;
    blocking(move || Ok(session.training_overview()?)).await
}
