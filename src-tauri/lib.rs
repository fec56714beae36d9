//! The Outpost desktop app: maps Tauri commands, events and the page-image scheme onto
//! `outpost-workstation`. No business logic lives here.

mod commands;
mod pages;
mod state;

pub use state::AppState;
use tauri::Runtime;

/// Starts the app. `--demo` creates (once) and offers the demo vault: with sample documents, or —
/// given `--server URL --server-ca FILE --demo-totp-file FILE` (the embedded default's local
/// server) — connected to that server, its documents arriving by sync.
///
/// Call it first, before the process starts any thread: it sets WebKit's environment
/// variables (see `set_lean_web_view_environment`).
pub fn run() {
    set_lean_web_view_environment();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OUTPOST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    give_freed_memory_back();
    let args: Vec<String> = std::env::args().collect();
    let demo = args.iter().any(|a| a == "--demo");
    let state = match state::demo_server(&args)
        .and_then(|server| AppState::from_environment(demo, server.as_ref()))
    {
        Ok(state) => state,
        Err(message) => {
            eprintln!("Outpost cannot start: {message}");
            std::process::exit(1);
        }
    };
    let result = with_commands(tauri::Builder::default(), state)
        .setup(|app| {
            use tauri::Manager;
            if let Some(window) = app.get_webview_window("main") {
                window.with_webview(set_up_web_view)?;
            }
            Ok(())
        })
        .run(context());
    if let Err(e) = result {
        eprintln!("Outpost stopped with an error: {e}");
        std::process::exit(1);
    }
}

/// Sets up WebKit for a small local page through the environment its processes read at start:
/// the app's own process does not load the system's GL driver, which it never uses — the web view
/// draws without accelerated compositing (see [`set_up_web_view`]), yet GTK's GL probe and
/// WebKit's search for a render device each load it at start-up, with Mesa a copy of LLVM and
/// about 30 MB of memory — and the web process runs JavaScript without a JIT (measured in
/// benches/app_window.rs). Variables the user has set are left as they are. Runs first in
/// [`run`], before any other thread exists, as changing the environment requires.
fn set_lean_web_view_environment() {
    #[cfg(target_os = "linux")]
    {
        let given = |name: &str| std::env::var_os(name).is_some();
        // Nothing opens the named render device while DMA-BUF sharing is off, so it is left
        // unnamed when the user has set the DMA-BUF variable themselves.
        let dmabuf_given = given("WEBKIT_DISABLE_DMABUF_RENDERER");
        for (name, value) in LEAN_WEB_VIEW_ENVIRONMENT {
            if given(name) || (name == "WEBKIT_WEB_RENDER_DEVICE_FILE" && dmabuf_given) {
                continue;
            }
            std::env::set_var(name, value);
        }
    }
}

/// Has this process's allocator (glibc's) hand large freed blocks — rendered pages, PNGs being
/// encoded, documents read from the vault — back to the system when they are freed, instead of
/// keeping them for later (glibc raises its threshold for that after the first large free, and
/// a viewer's peak then stays in the process): about 6 MB less with the 300-page document open
/// (benches/app_window.rs, same machine, same hour). Set for WebKit's processes through their
/// environment it made no difference there (their large blocks come from WebKit's own
/// allocator).
fn give_freed_memory_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's starting thresholds, kept fixed: a request of this size or more that the free
        // space at hand cannot serve gets a mapping of its own, unmapped when freed; and the
        // heap's free top is given back once it exceeds this size.
        const LARGE_BLOCK_BYTES: i32 = 128 * 1024;
        for (setting, name) in [
            (libc::M_MMAP_THRESHOLD, "M_MMAP_THRESHOLD"),
            (libc::M_TRIM_THRESHOLD, "M_TRIM_THRESHOLD"),
        ] {
            // SAFETY: mallopt only sets one of the allocator's tunables (it is thread-safe), to
            // a value within its documented range.
            if unsafe { libc::mallopt(setting, LARGE_BLOCK_BYTES) } == 0 {
                tracing::warn!("the allocator refused {name}; freed memory may be kept longer");
            }
        }
    }
}

/// The variables [`run`] sets for WebKit's processes (name, value), each unless the user set it.
/// Public so that the window tests can leave them to the app.
pub const LEAN_WEB_VIEW_ENVIRONMENT: [(&str, &str); 5] = [
    // A render device named, so WebKit does not open a GL display to find one.
    ("WEBKIT_WEB_RENDER_DEVICE_FILE", "/dev/null"),
    // No DMA-BUF buffer sharing between the web process and this one (GL again).
    ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
    // No compositing (the web view's hardware acceleration policy says the same, but only once
    // the view exists; this also spares the start-up probe for it).
    ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
    // GTK without GL: the window holds only the web view.
    ("GDK_GL", "disable"),
    // JavaScript interpreted, not compiled to machine code: the page's script is small, and
    // without the JIT the web process holds about 35 MB less while start-up and scrolling stay
    // within their goals (benches/app_window.rs); no writable-and-executable memory in the
    // process that shows the records is also less for an attacker to work with.
    ("JSC_useJIT", "0"),
];

/// WebKit set for one local page of lists and page images: no accelerated compositing (its GL
/// surfaces cost over a hundred megabytes and, where GL is emulated in software, make scrolling
/// slower, not faster — measured in benches/app_window.rs), and the document-viewer cache model
/// (no memory caches kept for back-and-forth browsing that never happens).
fn set_up_web_view(webview: tauri::webview::PlatformWebview) {
    #[cfg(target_os = "linux")]
    {
        use webkit2gtk::{SettingsExt, WebContextExt, WebViewExt};
        let view = webview.inner();
        if let Some(settings) = WebViewExt::settings(&view) {
            settings
                .set_hardware_acceleration_policy(webkit2gtk::HardwareAccelerationPolicy::Never);
        }
        if let Some(context) = view.context() {
            context.set_cache_model(webkit2gtk::CacheModel::DocumentViewer);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = webview;
}

/// The app's configuration, its built UI and the capabilities (what the window may call), for any
/// runtime: the real window's, or Tauri's mock runtime in the command tests.
pub fn context<R: Runtime>() -> tauri::Context<R> {
    tauri::generate_context!()
}

/// `builder` with the app's state, its page-image scheme and every command the UI calls.
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>, state: AppState) -> tauri::Builder<R> {
    builder
        .manage(state)
        .register_asynchronous_uri_scheme_protocol(pages::SCHEME, pages::serve)
        .invoke_handler(tauri::generate_handler![
            commands::vault::app_info,
            commands::vault::unlock,
            commands::vault::set_up_workstation,
            commands::vault::lock,
            commands::vault::sign_out,
            commands::vault::set_inbox_folder,
            commands::vault::inbox_rejections,
            commands::documents::list_documents,
            commands::documents::document_marks,
            commands::documents::open_document,
            commands::documents::close_document,
            commands::documents::set_visible_pages,
            commands::documents::page_text,
            commands::documents::find_on_page,
            commands::documents::search,
            commands::annotations::list_annotations,
            commands::annotations::create_annotation,
            commands::annotations::edit_annotation,
            commands::annotations::delete_annotation,
            commands::annotations::undo_annotation,
            commands::annotations::redo_annotation,
            commands::annotations::suggest_export_path,
            commands::annotations::export_document,
            commands::signing::list_signing_keys,
            commands::signing::create_signing_key,
            commands::signing::import_certificate,
            commands::signing::request_certificate,
            commands::signing::add_trust_anchor,
            commands::signing::sign_document,
            commands::signing::validate_document,
            commands::signing::sign_batch,
            commands::signing::cancel_batch,
            commands::signing::unfinished_batches,
            commands::signing::let_batch_go,
            commands::signing::awaiting_signature,
            commands::signing::list_tokens,
            commands::signing::token_keys,
            commands::signing::sign_with_token,
            commands::sync::sync_state,
            commands::sync::sync_now,
            commands::sync::cancel_sync,
            commands::sync::document_sync_states,
            commands::sync::purge_notices,
            commands::sync::dismiss_purge_notices,
            commands::sync::offer_refused_revision_again,
            commands::sync::take_server_copy,
            commands::sync::connect_server,
            commands::tutorial::start_tutorial,
            commands::tutorial::lessons,
            commands::tutorial::start_lesson,
            commands::tutorial::check_lesson,
            commands::tutorial::tutorial_summary,
            commands::tutorial::training_overview,
            commands::tutorial::set_practice_server_online,
            commands::tutorial::practice_server_online,
        ])
}
