//! Tauri commands, one module per area. Each is granted explicitly in src-tauri/capabilities.

pub mod annotations;
pub mod documents;
pub mod signing;
pub mod sync;
pub mod tutorial;
pub mod vault;

use std::sync::Arc;

use outpost_workstation::{Session, WorkstationError};
use serde::Serialize;

use crate::state::AppState;

/// An error as the UI sees it: a stable code to branch on and a message to show.
#[derive(Debug, Clone, Serialize)]
pub struct CommandError {
    pub code: &'static str,
    pub message: String,
}

impl From<WorkstationError> for CommandError {
    fn from(e: WorkstationError) -> Self {
        Self {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl CommandError {
    pub fn locked() -> Self {
        Self {
            code: "locked",
            message: "the vault is locked; unlock it first".into(),
        }
    }
}

pub type CommandResult<T> = Result<T, CommandError>;

/// Runs blocking engine work off the UI and async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> CommandResult<T> + Send + 'static,
) -> CommandResult<T> {
    tauri::async_runtime::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| {
            Err(CommandError {
                code: "internal",
                message: format!("the operation stopped unexpectedly: {e}"),
            })
        })
}

pub fn session(state: &AppState) -> CommandResult<Arc<Session>> {
    state.session().ok_or_else(CommandError::locked)
}
