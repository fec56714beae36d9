//! The command layer on Tauri's mock runtime: the app's real commands, state and capabilities
//! (`outpost_app::with_commands` and `outpost_app::context`), invoked as the window invokes them,
//! over a real vault (real keyring under scripts/with-keyring.sh, real pdfium). What is checked is
//! what the UI relies on: errors cross as `{code, message}`, the vault is reached only while
//! unlocked, and only the main window may call anything — exactly the commands the UI uses.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use outpost_app::AppState;
use outpost_workstation::{
    KdfParams, Language, ManualClock, OsKeyring, PdfEngine, SampleKind, SampleSpec, SharedRng,
    Workstation, WorkstationConfig,
};
use rand::SeedableRng;
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{App, Manager, WebviewUrl, WebviewWindow, WebviewWindowBuilder};

const USER: &str = "anna";
const PASSWORD: &str = "correct horse battery";

fn rng(seed: u64) -> SharedRng {
    Arc::new(Mutex::new(Box::new(
        rand_chacha::ChaCha20Rng::seed_from_u64(seed),
    )))
}

fn pdf() -> PdfEngine {
    PdfEngine::start_default().expect("pdfium must be installed: run scripts/install-deps.sh")
}

/// A workstation under `root` with one vault (user `anna`) holding one Russian personnel record
/// whose text carries `marker`; the vault is locked again, as after the app starts.
fn workstation_with_a_document(root: &std::path::Path, marker: &str) -> Workstation {
    let workstation = Workstation::new(WorkstationConfig {
        data_root: root.to_owned(),
        keyring: Arc::new(OsKeyring::new(format!(
            "outpost-test-commands-{}",
            std::process::id()
        ))),
        clock: Arc::new(ManualClock::new(1_790_000_000_000)),
        kdf: KdfParams::INSECURE_FAST_FOR_TESTS,
        pdf: pdf(),
    });
    let session = workstation.create_vault(USER, PASSWORD, rng(1)).unwrap();
    let bytes = pdf()
        .write_sample(&SampleSpec {
            kind: SampleKind::PersonnelRecord,
            language: Language::Russian,
            pages: 2,
            seed: 7,
            marker: Some(marker.to_owned()),
        })
        .unwrap();
    session.import_bytes(bytes, "record.pdf").unwrap();
    session.lock().unwrap();
    workstation
}

/// The app on the mock runtime with its real commands, state and capabilities.
fn app_over(workstation: Workstation) -> App<MockRuntime> {
    let state = AppState::new(workstation, rng(2), Some(USER.to_owned()));
    outpost_app::with_commands(tauri::test::mock_builder(), state)
        .build(outpost_app::context())
        .expect("the app builds on the mock runtime")
}

/// The window the app's configuration makes (`main`), or one of another label.
fn window(app: &App<MockRuntime>, label: &str) -> WebviewWindow<MockRuntime> {
    match app.get_webview_window(label) {
        Some(window) => window,
        None => WebviewWindowBuilder::new(app, label, WebviewUrl::default())
            .build()
            .unwrap(),
    }
}

/// Invokes `command` with `args` (camelCase, as the UI sends them) from `window`'s page: the
/// value the command returned, or the error the UI would catch.
fn invoke(window: &WebviewWindow<MockRuntime>, command: &str, args: Value) -> Result<Value, Value> {
    get_ipc_response(
        window,
        InvokeRequest {
            cmd: command.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|body| body.deserialize::<Value>().unwrap())
}

/// The error's `code`, asserting the error has the `{code, message}` shape with a message to show.
fn code_of(error: Value) -> String {
    let message = error["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "no message to show: {error}");
    error["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code to branch on: {error}"))
        .to_owned()
}

#[test]
fn a_wrong_password_comes_back_as_a_code_and_a_message_and_nothing_is_unlocked() {
    let root = tempfile::tempdir().unwrap();
    let app = app_over(workstation_with_a_document(root.path(), "bench-1111"));
    let main = window(&app, "main");

    let info = invoke(&main, "app_info", json!({})).unwrap();
    assert_eq!(info["users"], json!([USER]));
    assert_eq!(info["suggested_user"], json!(USER));
    assert_eq!(info["unlocked_user"], Value::Null);

    let refused = invoke(
        &main,
        "unlock",
        json!({ "user": USER, "password": "not the password" }),
    )
    .unwrap_err();
    assert_eq!(code_of(refused.clone()), "wrong_password", "{refused}");
    assert!(
        !refused.to_string().contains("not the password"),
        "the typed password came back: {refused}"
    );
    let unknown = invoke(
        &main,
        "unlock",
        json!({ "user": "boris", "password": PASSWORD }),
    )
    .unwrap_err();
    assert_eq!(code_of(unknown), "vault_not_found");

    // Still locked: the vault's commands answer `locked`, and nothing is read.
    for (command, args) in [
        ("list_documents", json!({})),
        ("search", json!({ "args": { "query": "bench-1111" } })),
        ("list_signing_keys", json!({})),
    ] {
        let error = invoke(&main, command, args).unwrap_err();
        assert_eq!(code_of(error), "locked", "{command}");
    }
    let info = invoke(&main, "app_info", json!({})).unwrap();
    assert_eq!(info["unlocked_user"], Value::Null);
}

#[test]
fn unlocked_the_commands_reach_the_vault_and_lock_closes_it_again() {
    let root = tempfile::tempdir().unwrap();
    let app = app_over(workstation_with_a_document(root.path(), "bench-2222"));
    let main = window(&app, "main");

    let user = invoke(
        &main,
        "unlock",
        json!({ "user": USER, "password": PASSWORD }),
    )
    .unwrap();
    assert_eq!(user, json!(USER));
    let info = invoke(&main, "app_info", json!({})).unwrap();
    assert_eq!(info["unlocked_user"], json!(USER));
    assert_eq!(info["sandbox"], json!(false));

    let documents = invoke(&main, "list_documents", json!({})).unwrap();
    let documents = documents.as_array().unwrap();
    assert_eq!(documents.len(), 1, "{documents:?}");
    let id = documents[0]["id"].as_str().unwrap().to_owned();

    let hits = invoke(
        &main,
        "search",
        json!({ "args": { "query": "\"bench-2222\"", "titleContains": null } }),
    )
    .unwrap();
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["document_id"], json!(id), "{:?}", hits[0]);

    let view = invoke(&main, "open_document", json!({ "id": id })).unwrap();
    assert_eq!(
        view["page_sizes"].as_array().map(Vec::len),
        Some(2),
        "{view}"
    );
    assert_eq!(view["document"]["id"], json!(id), "{view}");
    let missing = invoke(&main, "open_document", json!({ "id": "no-such-document" })).unwrap_err();
    assert_eq!(code_of(missing), "document_not_found");

    // An argument the command does not take in that shape is refused before the engine runs.
    let malformed = invoke(&main, "open_document", json!({ "id": 42 })).unwrap_err();
    assert!(malformed.is_string(), "{malformed}");

    invoke(&main, "lock", json!({})).unwrap();
    let info = invoke(&main, "app_info", json!({})).unwrap();
    assert_eq!(info["unlocked_user"], Value::Null);
    let error = invoke(&main, "list_documents", json!({})).unwrap_err();
    assert_eq!(code_of(error), "locked");
}

#[test]
fn only_the_main_window_may_call_the_commands_and_exactly_those_the_ui_uses_are_granted() {
    let root = tempfile::tempdir().unwrap();
    let app = app_over(workstation_with_a_document(root.path(), "bench-3333"));
    let main = window(&app, "main");
    let other = window(&app, "other");

    let ui_commands = commands_the_ui_invokes();
    let granted = granted_commands();
    assert_eq!(
        ui_commands, granted,
        "the capability grants what the UI invokes, nothing more and nothing less"
    );

    for command in &granted {
        // From the main window every granted command reaches its handler (locked or missing
        // arguments at worst); from any other window none does.
        match invoke(&main, command, json!({})) {
            Ok(_) => {}
            Err(error) => {
                let text = error.to_string();
                assert!(
                    !text.contains("not allowed") && !text.contains("not found"),
                    "{command} refused in the main window: {text}"
                );
            }
        }
        let refused = invoke(&other, command, json!({})).unwrap_err();
        assert!(
            refused.to_string().contains("not allowed"),
            "{command} answered another window: {refused}"
        );
    }
    // A command the app does not have is refused as such.
    let unknown = invoke(&main, "delete_vault", json!({})).unwrap_err();
    assert!(unknown.to_string().contains("not"), "{unknown}");
}

/// Every command name in `invoke("…")` calls of the UI's sources.
fn commands_the_ui_invokes() -> BTreeSet<String> {
    let api =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/src/api.ts")).unwrap();
    let mut names = BTreeSet::new();
    let mut rest = api.as_str();
    while let Some(at) = rest.find("invoke") {
        rest = &rest[at + "invoke".len()..];
        let call = rest.trim_start_matches(|c: char| c != '(' && c != '\n');
        if let Some(args) = call.strip_prefix('(') {
            let args = args.trim_start();
            if let Some(quoted) = args.strip_prefix('"') {
                if let Some(end) = quoted.find('"') {
                    names.insert(quoted[..end].to_owned());
                }
            }
        }
    }
    assert!(
        names.len() > 20,
        "the UI's commands were not found: {names:?}"
    );
    names
}

/// The app commands the main window's capability grants (`allow-NAME` → `NAME`).
fn granted_commands() -> BTreeSet<String> {
    let capability: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src-tauri/capabilities/main.json"
        ))
        .unwrap(),
    )
    .unwrap();
    capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str()?.strip_prefix("allow-"))
        .map(|name| name.replace('-', "_"))
        .collect()
}
