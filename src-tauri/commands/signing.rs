//! Signing commands: keys, certificates, trust anchors, signing a document and validating its
//! signatures. Each maps straight onto the engine.

use std::sync::atomic::Ordering;

use outpost_workstation::{
    default_pkcs11_module, BatchProgress, BatchReport, BatchRequest, DocumentId, KeyAlgorithm,
    SignOptions, SignOutcome, SignatureReport, SigningKeyInfo, TokenChoice, TokenInfo,
    TokenKeyInfo,
};
use tauri::ipc::Channel;
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

/// Sends the key's certificate request to the organisation's CA on the server and imports the
/// certificate and chain it issues (the vault must sync with a server).
#[tauri::command]
pub async fn request_certificate(
    state: State<'_, AppState>,
    key: String,
) -> CommandResult<SigningKeyInfo> {
    let session = session(&state)?;
    blocking(move || Ok(session.request_signer_certificate(&key)?)).await
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

/// Signs many documents with one key; each document's result streams over `progress`.
#[tauri::command]
pub async fn sign_batch(
    state: State<'_, AppState>,
    batch_id: String,
    documents: Vec<String>,
    options: SignOptions,
    token: Option<TokenChoice>,
    progress: Channel<BatchProgress>,
) -> CommandResult<BatchReport> {
    let session = session(&state)?;
    let cancel = state.batch_cancel.clone();
    cancel.store(false, Ordering::SeqCst);
    blocking(move || {
        let request = BatchRequest {
            batch_id,
            documents: documents.into_iter().map(DocumentId).collect(),
            options,
            parallelism: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            // The module is the app's to choose, never the page's.
            token: token.map(|t| TokenChoice {
                module: default_pkcs11_module(),
                ..t
            }),
        };
        let report = session.sign_batch(
            &request,
            &|p| {
                // A closed window stops listening; the batch itself goes on.
                let _ = progress.send(p);
            },
            &cancel,
        )?;
        Ok(report)
    })
    .await
}

/// Stops the running batch after the documents in hand.
#[tauri::command]
pub fn cancel_batch(state: State<'_, AppState>) {
    state.batch_cancel.store(true, Ordering::SeqCst);
}

/// The batches started and not ended (the app stopped during one, or the user stopped it), each
/// with the documents it has left.
#[tauri::command]
pub async fn unfinished_batches(
    state: State<'_, AppState>,
) -> CommandResult<Vec<outpost_workstation::UnfinishedBatch>> {
    let session = session(&state)?;
    blocking(move || Ok(session.unfinished_batches()?)).await
}

/// Ends an unfinished batch without signing the rest.
#[tauri::command]
pub async fn let_batch_go(state: State<'_, AppState>, batch_id: String) -> CommandResult<()> {
    let session = session(&state)?;
    blocking(move || Ok(session.let_batch_go(&batch_id)?)).await
}

/// The hardware tokens present (through `$OUTPOST_PKCS11_MODULE`, else SoftHSM2's module).
#[tauri::command]
pub async fn list_tokens() -> CommandResult<Vec<TokenInfo>> {
    blocking(move || Ok(outpost_workstation::list_tokens(&default_pkcs11_module())?)).await
}

/// The signing keys on a token, after its PIN (never in the tutorial).
#[tauri::command]
pub async fn token_keys(
    state: State<'_, AppState>,
    slot: u64,
    pin: String,
) -> CommandResult<Vec<TokenKeyInfo>> {
    session(&state)?.refuse_tokens_in_tutorial()?;
    blocking(move || {
        Ok(outpost_workstation::token_keys(
            &default_pkcs11_module(),
            slot,
            &pin,
        )?)
    })
    .await
}

/// Signs with a key on a token.
#[tauri::command]
pub async fn sign_with_token(
    state: State<'_, AppState>,
    id: String,
    slot: u64,
    key: String,
    pin: String,
    options: SignOptions,
) -> CommandResult<SignOutcome> {
    let session = session(&state)?;
    blocking(move || {
        let token = TokenChoice {
            module: default_pkcs11_module(),
            slot,
            key_id: key,
            pin,
        };
        Ok(session.sign_document_with_token(&DocumentId(id), &token, &options)?)
    })
    .await
}

/// The documents not signed yet (for "select all awaiting my signature").
#[tauri::command]
pub async fn awaiting_signature(state: State<'_, AppState>) -> CommandResult<Vec<String>> {
    let session = session(&state)?;
    blocking(move || {
        Ok(session
            .documents_awaiting_signature()?
            .into_iter()
            .map(|d| d.0)
            .collect())
    })
    .await
}
