//! Signing commands: keys, certificates, trust anchors, signing a document and validating its
//! signatures. Each maps straight onto the engine.

use outpost_workstation::{
    DocumentId, KeyAlgorithm, SignOptions, SignOutcome, SignatureReport, SigningKeyInfo,
};
use tauri::State;

use super::{blocking, session, CommandResult};
use crate::state::AppState;

#[tauri::command]
pub async fn list_signing_keys(state: State<'_, AppState>) -> CommandResult<Vec<SigningKeyInfo>> {
    let session = session(&state)?;
    blocking(move || Ok(session.signing_keys()?)).await
}

#[tauri::command]
pub async fn create_signing_key(
    state: State<'_, AppState>,
    label: String,
    algorithm: KeyAlgorithm,
    common_name: String,
) -> CommandResult<SigningKeyInfo> {
    let session = session(&state)?;
    blocking(move || Ok(session.create_signing_key(&label, algorithm, &common_name)?)).await
}

#[tauri::command]
pub async fn import_certificate(
    state: State<'_, AppState>,
    key: String,
    pem: String,
) -> CommandResult<SigningKeyInfo> {
    let session = session(&state)?;
    blocking(move || Ok(session.import_certificate(&key, pem.as_bytes())?)).await
}

#[tauri::command]
pub async fn add_trust_anchor(state: State<'_, AppState>, pem: String) -> CommandResult<String> {
    let session = session(&state)?;
    blocking(move || Ok(session.add_trust_anchor(pem.as_bytes())?)).await
}

#[tauri::command]
pub async fn sign_document(
    state: State<'_, AppState>,
    id: String,
    options: SignOptions,
) -> CommandResult<SignOutcome> {
    let session = session(&state)?;
    blocking(move || Ok(session.sign_document(&DocumentId(id), &options)?)).await
}

#[tauri::command]
pub async fn validate_document(
    state: State<'_, AppState>,
    id: String,
) -> CommandResult<Vec<SignatureReport>> {
    let session = session(&state)?;
    blocking(move || Ok(session.validate_document(&DocumentId(id))?)).await
}
