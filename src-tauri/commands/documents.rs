use outpost_workstation::{
    DocumentId, DocumentSummary, DocumentView, PageTextView, SearchHit, SearchRequest,
};
use serde::Deserialize;
use tauri::State;

use super::{blocking, session, CommandResult};
use crate::state::AppState;

#[tauri::command]
pub async fn list_documents(state: State<'_, AppState>) -> CommandResult<Vec<DocumentSummary>> {
    let session = session(&state)?;
    blocking(move || Ok(session.documents()?)).await
}

/// For each document: opened yet or new, and how many annotations it has (the list's badges).
#[tauri::command]
pub async fn document_marks(
    state: State<'_, AppState>,
) -> CommandResult<Vec<outpost_workstation::DocumentMarks>> {
    let session = session(&state)?;
    blocking(move || Ok(session.document_marks()?)).await
}

#[tauri::command]
pub async fn open_document(state: State<'_, AppState>, id: String) -> CommandResult<DocumentView> {
    let session = session(&state)?;
    blocking(move || Ok(session.view_document(&DocumentId(id))?)).await
}

#[tauri::command]
pub async fn close_document(state: State<'_, AppState>, id: String) -> CommandResult<()> {
    let session = session(&state)?;
    blocking(move || {
        session.close_view(&DocumentId(id));
        Ok(())
    })
    .await
}

#[tauri::command]
pub fn set_visible_pages(
    state: State<'_, AppState>,
    id: String,
    first: u32,
    last: u32,
) -> CommandResult<()> {
    session(&state)?.set_visible_pages(&DocumentId(id), first, last);
    Ok(())
}

#[tauri::command]
pub async fn page_text(
    state: State<'_, AppState>,
    id: String,
    page: u32,
) -> CommandResult<PageTextView> {
    let session = session(&state)?;
    blocking(move || Ok(session.page_text_view(&DocumentId(id), page)?)).await
}

#[tauri::command]
pub async fn find_on_page(
    state: State<'_, AppState>,
    id: String,
    page: u32,
    query: String,
) -> CommandResult<Vec<usize>> {
    let session = session(&state)?;
    blocking(move || Ok(session.find_on_page(&DocumentId(id), page, &query)?)).await
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
