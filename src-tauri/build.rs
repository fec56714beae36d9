fn main() {
    // Every app command gets its own permission; the capability grants exactly those the UI uses.
    let commands = &[
        "app_info",
        "unlock",
        "lock",
        "list_documents",
        "open_document",
        "close_document",
        "set_visible_pages",
        "page_text",
        "find_on_page",
        "search",
        "list_annotations",
        "create_annotation",
        "edit_annotation",
        "delete_annotation",
        "undo_annotation",
        "redo_annotation",
        "suggest_export_path",
        "export_document",
        "list_signing_keys",
        "create_signing_key",
        "import_certificate",
        "request_certificate",
        "add_trust_anchor",
        "sign_document",
        "validate_document",
        "sign_batch",
        "cancel_batch",
        "awaiting_signature",
        "list_tokens",
        "token_keys",
        "sign_with_token",
        "sync_state",
        "sync_now",
        "document_sync_states",
        "offer_refused_revision_again",
        "take_server_copy",
        "connect_server",
    ];
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .capabilities_path_pattern("./src-tauri/capabilities/**/*")
            .app_manifest(tauri_build::AppManifest::new().commands(commands)),
    )
    .expect("failed to run the Tauri build script");
}
