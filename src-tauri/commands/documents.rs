use outpost_workstation::{DocumentId, DocumentSummary, SearchHit, SearchRequest};
use serde::Deserialize;
use tauri::State;

use super::{blocking, session, CommandResult};
use crate::state::AppState;

#[tauri::command]
pub async fn list_documents(state: State<'_, AppState>) -> CommandResult<Vec<DocumentSummary>> {
    let session = session(&state)?;
    blocking(move || Ok(session.documents()?)).await
}

#[tauri::command]
pub async fn open_document(
    state: State<'_, AppState>,
    id: String,
) -> CommandResult<DocumentSummary> {
    let session = session(&state)?;
    blocking(move || Ok(session.open_document(&DocumentId(id))?)).await
}

/// Search filters as the UI sends them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchArgs {
    pub query: String,
    pub title_contains: Option<String>,
    pub imported_from_ms: Option<i64>,
    pub imported_before_ms: Option<i64>,
}

#[tauri::command]
pub async fn search(state: State<'_, AppState>, args: SearchArgs) -> CommandResult<Vec<SearchHit>> {
    let session = session(&state)?;
    blocking(move || {
        Ok(session.search(&SearchRequest {
            query: args.query,
            title_contains: args.title_contains.filter(|t| !t.trim().is_empty()),
            imported_from_ms: args.imported_from_ms,
            imported_before_ms: args.imported_before_ms,
            limit: Some(100),
        })?)
    })
    .await
}
