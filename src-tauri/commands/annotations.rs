//! Annotation commands: the overlay's records in view space, changes, undo/redo and the audited
//! export. Each maps straight onto the engine.

use outpost_workstation::{
    suggested_export_path, AnnotationEdit, DocumentId, ExportReport, ViewAnnotation, ViewDraft,
};
use tauri::State;

use super::{blocking, session, CommandResult};
use crate::state::AppState;

#[tauri::command]
pub async fn list_annotations(
    state: State<'_, AppState>,
    id: String,
) -> CommandResult<Vec<ViewAnnotation>> {
    let session = session(&state)?;
    blocking(move || Ok(session.annotations_in_view(&DocumentId(id))?)).await
}

#[tauri::command]
pub async fn create_annotation(
    state: State<'_, AppState>,
    id: String,
    draft: ViewDraft,
) -> CommandResult<()> {
    let session = session(&state)?;
    blocking(move || {
        session.create_annotation_in_view(&DocumentId(id), draft)?;
        Ok(())
    })
    .await
}

#[tauri::command]
pub async fn edit_annotation(
    state: State<'_, AppState>,
    annotation: String,
    revision: i64,
    edit: AnnotationEdit,
) -> CommandResult<()> {
    let session = session(&state)?;
    blocking(move || {
        session.edit_annotation(&annotation, revision, edit)?;
        Ok(())
    })
    .await
}

#[tauri::command]
pub async fn delete_annotation(
    state: State<'_, AppState>,
    annotation: String,
    revision: i64,
) -> CommandResult<()> {
    let session = session(&state)?;
    blocking(move || Ok(session.delete_annotation(&annotation, revision)?)).await
}

#[tauri::command]
pub async fn undo_annotation(state: State<'_, AppState>, id: String) -> CommandResult<String> {
    let session = session(&state)?;
    blocking(move || Ok(session.undo_annotation(&DocumentId(id))?)).await
}

#[tauri::command]
pub async fn redo_annotation(state: State<'_, AppState>, id: String) -> CommandResult<String> {
    let session = session(&state)?;
    blocking(move || Ok(session.redo_annotation(&DocumentId(id))?)).await
}

#[tauri::command]
pub async fn suggest_export_path(state: State<'_, AppState>, id: String) -> CommandResult<String> {
    let session = session(&state)?;
    blocking(move || {
        let document = session.document(&DocumentId(id))?;
        Ok(suggested_export_path(&document.title)
            .to_string_lossy()
            .into_owned())
    })
    .await
}

#[tauri::command]
pub async fn export_document(
    state: State<'_, AppState>,
    id: String,
    path: String,
) -> CommandResult<ExportReport> {
    let session = session(&state)?;
    blocking(move || {
        Ok(session.export_with_annotations(&DocumentId(id), std::path::Path::new(&path))?)
    })
    .await
}
