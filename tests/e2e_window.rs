//! The real window: Outpost under Xvfb, driven through tauri-driver and WebKitWebDriver.
//!
//! Starts its own Xvfb display and tauri-driver, launches the app binary in demo mode on a fresh
//! data folder, unlocks with the demo password, and checks the document list, search and a
//! rendered page through WebDriver, plus a screenshot of the whole virtual screen.
//! Needs: Xvfb, tauri-driver (`cargo install tauri-driver`), WebKitWebDriver, ImageMagick `import`,
//! and a Secret Service (run under scripts/with-keyring.sh).

mod window;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use window::{screenshot, start_app, start_app_with_args, text_when, wait_until, WebDriver};

fn unlock_demo(driver: &WebDriver) {
    let password = driver.wait_for("#unlock-password");
    driver.type_into(&password, "outpost-demo");
    driver.click(&driver.wait_for("#unlock-submit"));
}

#[test]
fn an_unusable_inbox_folder_is_reported_and_the_vault_still_opens() {
    let data = tempfile::tempdir().unwrap();
    // A regular file where the inbox folder should be: the folder cannot be created.
    let blocker = data.path().join("not-a-folder");
    std::fs::write(&blocker, b"").unwrap();
    let inbox = blocker.join("inbox");
    let running = start_app(
        data.path(),
        &[("OUTPOST_INBOX_DIR", inbox.to_str().unwrap())],
    );
    let driver = &running.driver;
    unlock_demo_and_wait_for_its_documents(driver);
    let activity = wait_until("the inbox error", Duration::from_secs(20), || {
        let text = driver.text(&driver.wait_for("#inbox-activity"));
        (!text.is_empty()).then_some(text)
    });
    assert!(
        activity.contains("inbox cannot be read") || activity.contains("Папка входящих недоступна"),
        "{activity}"
    );
    assert!(activity.contains("not-a-folder"), "{activity}");
}

#[test]
fn the_window_unlocks_the_demo_vault_lists_searches_and_renders() {
    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    let display = running.display.clone();

    // Unlock: a wrong password is refused with a message, the demo password opens the vault.
    driver.wait_for("#unlock-user");
    let user_value = driver.script("return document.getElementById('unlock-user').value");
    assert_eq!(user_value, json!("demo"), "the demo user is offered");
    let password = driver.wait_for("#unlock-password");
    driver.type_into(&password, "not-the-password");
    driver.click(&driver.wait_for("#unlock-submit"));
    let error = text_when(driver, "#unlock-error", "the unlock error", |t| {
        !t.is_empty()
    });
    assert!(
        error.contains("Wrong password") || error.contains("Неверный пароль"),
        "{error}"
    );
    driver.type_into(&password, "outpost-demo");
    driver.click(&driver.wait_for("#unlock-submit"));

    // The document list shows the six seeded samples.
    let items = wait_until("the document list", Duration::from_secs(60), || {
        let items = driver.find_all("#doc-list li");
        (items.len() == 6).then_some(items)
    });
    let titles: Vec<String> = items.iter().map(|i| driver.text(i)).collect();
    assert!(
        titles.iter().any(|t| t.contains("Договор поставки")),
        "{titles:?}"
    );
    assert!(
        titles.iter().any(|t| t.contains("Operational Report")),
        "{titles:?}"
    );
    // The screenshot is kept under target/tmp for people to look at.
    let shots_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    // WebKit paints a moment after the DOM changes: look again until the window shows.
    wait_until("the window on screen", Duration::from_secs(20), || {
        let shot = screenshot(&display, &shots_dir.join("e2e-document-list.png"));
        let distinct: std::collections::HashSet<_> = shot.pixels().map(|p| p.0).collect();
        (distinct.len() > 50).then_some(())
    });

    // Intake: a PDF dropped into the user's inbox folder appears in the list, and the activity
    // line says so.
    let dropped = sample(
        outpost_pdf::SampleKind::OperationalReport,
        outpost_pdf::Language::Russian,
        2,
        777,
        "Сводка из входящих",
    );
    let staged = data.path().join("scanner-output.pdf");
    std::fs::write(&staged, &dropped).unwrap();
    std::fs::rename(&staged, data.path().join("inbox/demo/scan-0001.pdf")).unwrap();
    let items = wait_until(
        "the dropped document in the list",
        Duration::from_secs(30),
        || {
            let items = driver.find_all("#doc-list li");
            (items.len() == 7).then_some(items)
        },
    );
    assert!(driver.text(&items[0]).contains("Сводка из входящих"));
    let activity = driver.text(&driver.wait_for("#inbox-activity"));
    assert!(activity.contains("scan-0001.pdf"), "{activity}");

    // Search in Russian finds hits with highlighted snippets.
    let search = driver.wait_for("#search-input");
    driver.type_into(&search, "поставщик");
    driver.click(&driver.wait_for("#search-form button[type=submit]"));
    let hits = wait_until("search results", Duration::from_secs(30), || {
        let hits = driver.find_all("#search-results li");
        (!hits.is_empty()).then_some(hits)
    });
    let marks = driver.find_all("#search-results li mark");
    assert!(!marks.is_empty());
    assert_eq!(driver.text(&marks[0]).to_lowercase(), "поставщик");

    // Opening a hit renders its pages through pdfium and the page scheme.
    driver.click(&hits[0]);
    driver.wait_for("#viewer img.page");
    let rendered = wait_for_a_rendered_page(driver);
    assert!(rendered >= 320, "page image width {rendered}");
    // On screen, the viewer (right of the list) shows a white page where the grey placeholder was.
    wait_until("the page on screen", Duration::from_secs(20), || {
        let shot = screenshot(&display, &shots_dir.join("e2e-viewer.png"));
        let white = (420..shot.width().min(1180))
            .flat_map(|x| (200..shot.height().min(760)).map(move |y| (x, y)))
            .filter(|&(x, y)| shot.get_pixel(x, y).0 == [255, 255, 255])
            .count();
        (white > 50_000).then_some(())
    });

    // The app's own process drew all of that without loading a GL driver (with Mesa, a copy of
    // LLVM and some 30 MB): the web view does not composite and GTK does not use GL. The web
    // process that shows the records runs its script without a JIT: no memory in it is both
    // writable and executable.
    let processes = running.app_processes();
    let maps_of = |name: &str| {
        let pid = processes
            .iter()
            .find(|pid| window::command_name(**pid) == name)
            .unwrap_or_else(|| panic!("no {name} process among {processes:?}"));
        std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap()
    };
    let app_maps = maps_of("outpost");
    for gl_library in [
        "libLLVM",
        "_dri.so",
        "libgallium",
        "libEGL_mesa",
        "libGLX_mesa",
    ] {
        assert!(
            !app_maps.contains(gl_library),
            "the app's process loaded {gl_library}"
        );
    }
    let web_maps = maps_of("WebKitWebProces");
    let writable_code: Vec<&str> = web_maps
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("rwxp"))
        .collect();
    assert!(
        writable_code.is_empty(),
        "the web process holds writable code: {writable_code:?}"
    );
}

/// Waits until some page image in the viewer has loaded; returns its width in pixels.
fn wait_for_a_rendered_page(driver: &WebDriver) -> u64 {
    wait_until("a rendered page", Duration::from_secs(30), || {
        let w = driver.script(
            "const done = [...document.querySelectorAll('#viewer img.page')].filter(i => i.complete && i.naturalWidth > 0); return done.length ? done[0].naturalWidth : 0",
        );
        w.as_u64().filter(|w| *w > 0)
    })
}

fn annotation_count(driver: &WebDriver) -> usize {
    driver
        .find_all("#annotation-list li[data-annotation-id]")
        .len()
}

fn wait_for_annotations(driver: &WebDriver, count: usize) {
    wait_until(
        &format!("{count} annotations in the panel"),
        Duration::from_secs(30),
        || (annotation_count(driver) == count).then_some(()),
    );
}

#[test]
fn the_viewer_annotates_undoes_and_saves_an_annotated_copy() {
    let data = tempfile::tempdir().unwrap();
    let exports = data.path().join("exports");
    std::fs::create_dir(&exports).unwrap();
    let running = start_app(
        data.path(),
        &[("OUTPOST_EXPORT_DIR", exports.to_str().unwrap())],
    );
    let driver = &running.driver;
    unlock_demo(driver);
    let items = wait_until("the document list", Duration::from_secs(60), || {
        let items = driver.find_all("#doc-list li");
        (items.len() == 6).then_some(items)
    });
    driver.click(&items[0]);
    driver.wait_for(".page-frame svg.overlay");
    wait_for_a_rendered_page(driver);
    wait_until(
        "the empty annotation panel",
        Duration::from_secs(30),
        || (!driver.find_all("#annotation-list li.empty").is_empty()).then_some(()),
    );

    // A sticky note with Russian text, placed by clicking on the page.
    driver.click(&driver.wait_for("button[data-tool=note]"));
    driver.type_into(&driver.wait_for("#annotation-text"), "Проверено e2e");
    let overlay = driver.wait_for(".page-frame svg.overlay");
    driver.click(&overlay);
    wait_for_annotations(driver, 1);
    assert!(!driver.find_all("svg.overlay g.kind-note").is_empty());
    let listed = driver.text(&driver.wait_for("#annotation-list li[data-annotation-id]"));
    assert!(listed.contains("Проверено e2e"), "{listed}");

    // Undo takes it away, redo brings it back.
    driver.click(&driver.wait_for("#undo"));
    wait_for_annotations(driver, 0);
    driver.click(&driver.wait_for("#redo"));
    wait_for_annotations(driver, 1);

    // Select a word by clicking on the text, then highlight the selection.
    driver.click(&driver.wait_for("button[data-tool=select]"));
    driver.click(&overlay);
    wait_until("a text selection", Duration::from_secs(30), || {
        (!driver.find_all("svg.overlay rect.selection").is_empty()).then_some(())
    });
    driver.click(&driver.wait_for("#markup-highlight"));
    wait_for_annotations(driver, 2);
    assert!(!driver.find_all("svg.overlay g.kind-highlight").is_empty());

    // The note's text is changed from the panel.
    driver.click(&driver.wait_for("#annotation-list li[data-annotation-id] .edit-annotation"));
    driver.type_into(
        &driver.wait_for("#annotation-list .edit-contents"),
        "Исправлено e2e",
    );
    driver.click(&driver.wait_for("#annotation-list .edit-form button[type=submit]"));
    wait_until("the changed note text", Duration::from_secs(30), || {
        driver
            .find_all("#annotation-list li[data-annotation-id]")
            .iter()
            .any(|li| driver.text(li).contains("Исправлено e2e"))
            .then_some(())
    });

    // The page strip shows thumbnails.
    wait_until("a thumbnail", Duration::from_secs(30), || {
        let loaded = driver.script(
            "return [...document.querySelectorAll('#thumbnails img')].filter(i => i.complete && i.naturalWidth > 0).length",
        );
        loaded.as_u64().filter(|n| *n > 0)
    });

    // People can look at the annotated viewer: target/tmp/e2e-annotated.png.
    screenshot(
        &running.display,
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-annotated.png"),
    );

    // Save a copy with the annotations where the engine suggests.
    driver.click(&driver.wait_for("#export-open"));
    let path = wait_until("the suggested export path", Duration::from_secs(30), || {
        let value = driver.script("return document.getElementById('export-path').value");
        value.as_str().filter(|v| !v.is_empty()).map(str::to_owned)
    });
    assert!(path.starts_with(exports.to_str().unwrap()), "{path}");
    assert!(path.ends_with("-annotated.pdf"), "{path}");
    driver.click(&driver.wait_for("#export-save"));
    let result = wait_until("the export result", Duration::from_secs(30), || {
        let text = driver.text(&driver.wait_for("#export-result"));
        (!text.is_empty()).then_some(text)
    });
    assert!(result.contains(&path), "{result}");
    let copy = std::fs::read(&path).expect("the exported copy");
    assert!(copy.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&copy);
    assert!(
        text.contains("/Highlight") && text.contains("/Text"),
        "annotations in the copy"
    );
}

#[test]
fn a_500_page_document_opens_and_only_the_pages_looked_at_are_rendered() {
    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    unlock_demo_and_wait_for_its_documents(driver);
    let long = sample(
        outpost_pdf::SampleKind::PersonnelRecord,
        outpost_pdf::Language::English,
        500,
        500,
        "Five hundred pages",
    );
    let staged = data.path().join("long.part");
    std::fs::write(&staged, &long).unwrap();
    std::fs::rename(&staged, data.path().join("inbox/demo/long.pdf")).unwrap();
    let items = wait_until(
        "the long document in the list",
        Duration::from_secs(90),
        || {
            let items = driver.find_all("#doc-list li");
            (items.len() == 7).then_some(items)
        },
    );
    driver.click(&items[0]);
    let frames = wait_until("500 page frames", Duration::from_secs(30), || {
        let n = driver.script("return document.querySelectorAll('#pages .page-frame').length");
        n.as_u64().filter(|n| *n == 500)
    });
    assert_eq!(frames, 500);
    wait_for_a_rendered_page(driver);

    // Jump near the end through the page strip: that page renders; the pages passed over do not.
    driver.click(&driver.wait_for("#thumbnails button[data-page='480']"));
    wait_until("page 480 rendered", Duration::from_secs(30), || {
        let w = driver.script(
            "const i = document.querySelector('#pages img.page[data-page=\"480\"]'); return i && i.complete ? i.naturalWidth : 0",
        );
        w.as_u64().filter(|w| *w > 0)
    });
    let requested = driver.script(
        "return [...document.querySelectorAll('#pages img.page')].filter(i => i.getAttribute('src')).length",
    );
    let requested = requested.as_u64().unwrap();
    assert!(
        requested < 20,
        "only pages near the ones looked at are requested, not {requested} of 500"
    );

    // The page strip scrolled from the first thumbnail to the last, a screen at a time: the last
    // is drawn at the end, and those left far behind have given their images back.
    driver.script("document.querySelector('#thumbnails').scrollTop = 0");
    let steps = driver
        .script("const s = document.querySelector('#thumbnails'); return Math.ceil(s.scrollHeight / s.clientHeight)")
        .as_u64()
        .unwrap();
    for step in 1..=steps {
        driver.script(&format!(
            "const s = document.querySelector('#thumbnails'); s.scrollTop = {step} * s.clientHeight"
        ));
        std::thread::sleep(Duration::from_millis(60));
    }
    let loaded = "return [...document.querySelectorAll('#thumbnails img')].filter(i => i.getAttribute('src')).map(i => Number(i.closest('button').dataset.page))";
    let held = wait_until("the last thumbnail drawn", Duration::from_secs(30), || {
        let pages: Vec<u64> = serde_json::from_value(driver.script(loaded)).unwrap();
        pages.contains(&500).then_some(pages)
    });
    assert!(
        !held.contains(&1) && held.len() < 100,
        "a scrolled strip holds only the thumbnails near its view, not {} of 500 ({:?}…)",
        held.len(),
        &held[..held.len().min(10)]
    );
}

#[path = "../crates/outpost-pdf/tests/common/mod.rs"]
#[allow(unused_imports)]
mod judges;

#[test]
fn a_key_is_created_certified_and_signs_a_document_whose_signature_shows_valid() {
    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let pki = judges::TestPki::new();
    let driver = &running.driver;
    unlock_demo_and_wait_for_its_documents(driver);

    // Keys: create one; its certificate request goes to the (test) CA; the issued certificate
    // and the CA's root come back in.
    driver.click(&driver.wait_for("#keys-open"));
    driver.type_into(&driver.wait_for("#key-name"), "Иванова Анна Петровна");
    driver.click(&driver.wait_for("#key-create button[type=submit]"));
    driver.wait_for("#key-list li[data-ready=no] .request-pem");
    let request = driver.script("return document.querySelector('#key-list .request-pem').value");
    let request = request.as_str().unwrap().to_owned();
    assert!(
        request.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{request}"
    );
    let issued = pki.issue_for_request("e2e", &request);
    driver.type_into(&driver.wait_for("#key-list .certificate-pem"), &issued);
    driver.click(&driver.wait_for("#key-list .import-certificate"));
    let ready = driver.wait_for("#key-list li[data-ready=yes]");
    assert!(driver.text(&ready).contains("Иванова Анна Петровна"));
    trust_test_root(driver, &pki);

    // Sign the first document with a visible mark placed by a click on the page.
    driver.click(&driver.find_all("#doc-list li")[0]);
    driver.wait_for("#signature-list li.empty");
    driver.click(&driver.wait_for("#sign-open"));
    driver.wait_for("#sign-key option");
    driver.click(&driver.wait_for("#sign-submit"));
    driver.click(&driver.wait_for(".page-frame svg.overlay"));
    let signed = wait_until("a valid signature", Duration::from_secs(60), || {
        driver
            .find_all("#signature-list li[data-status=valid]")
            .into_iter()
            .next()
    });
    assert!(driver.text(&signed).contains("Иванова Анна Петровна"));
    // The list says so: signed, and the five others await the signer.
    driver.wait_for("#doc-list li .badge.signed");
    assert_eq!(driver.find_all("#doc-list li .badge.awaiting").len(), 5);

    // A batch: "select unsigned" picks the five others, signed with the same key.
    let summary = sign_the_unsigned_as_a_batch(driver, 5);
    assert_eq!(
        driver
            .find_all("#batch-results li[data-result=signed]")
            .len(),
        5,
        "{summary}"
    );
    let progress = driver.script("return document.getElementById('batch-progress').value");
    assert_eq!(progress, json!(5));

    // WebKit paints a moment after the DOM changes.
    std::thread::sleep(Duration::from_secs(1));
    screenshot(
        &running.display,
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-signed.png"),
    );
}

#[test]
fn a_document_is_signed_with_a_hardware_token_from_the_sign_dialog() {
    let data = tempfile::tempdir().unwrap();
    let token_dir = tempfile::tempdir().unwrap();
    let pki = judges::TestPki::new();
    let config = pki.softhsm_token(token_dir.path(), "1234");
    let running = start_app(data.path(), &[("SOFTHSM2_CONF", config.to_str().unwrap())]);
    let driver = &running.driver;
    unlock_demo_and_wait_for_its_documents(driver);
    // The organisation's root is trusted, so the token's certificate validates.
    driver.click(&driver.wait_for("#keys-open"));
    trust_test_root(driver, &pki);

    // Sign: choose the token, give the PIN, pick its key, sign invisibly.
    driver.click(&driver.find_all("#doc-list li")[0]);
    driver.wait_for("#signature-list li.empty");
    driver.click(&driver.wait_for("#sign-open"));
    driver.wait_for("#sign-source");
    driver.script(
        "const s = document.getElementById('sign-source'); s.value = 'token'; s.dispatchEvent(new Event('change'));",
    );
    driver.wait_for("#sign-token option");
    driver.type_into(&driver.wait_for("#sign-pin"), "1234");
    driver.click(&driver.wait_for("#sign-token-load"));
    driver.wait_for("#sign-token-key option");
    driver.click(&driver.wait_for("#sign-visible"));
    driver.click(&driver.wait_for("#sign-submit"));
    let signed = wait_until("a valid token signature", Duration::from_secs(60), || {
        driver
            .find_all("#signature-list li[data-status=valid]")
            .into_iter()
            .next()
    });
    assert!(
        driver.text(&signed).contains("Token Holder"),
        "{}",
        driver.text(&signed)
    );
    let pin_left = driver.script("return document.getElementById('sign-pin').value");
    assert_eq!(
        pin_left,
        json!(""),
        "the PIN is not kept in the form after signing"
    );
}

#[test]
fn the_embedded_default_syncs_the_demo_vault_and_shows_when_the_server_is_gone() {
    // The demo server as `outpost-server demo` seeds it (two of the sample documents), on a clock
    // that agrees with the app's, so the demo TOTP code the app computes is accepted.
    let mut server = outpost_server::testing::InProcessServer::start_with_ca();
    server.move_clock_to_system_time();
    let pdf = outpost_pdf::PdfEngine::start_default().unwrap();
    let documents: Vec<(String, Vec<u8>)> = outpost_pdf::demo_samples()
        .into_iter()
        .take(2)
        .map(|spec| {
            let bytes = pdf.write_sample(&spec).unwrap();
            let title = pdf
                .inspect(std::sync::Arc::new(bytes.clone()))
                .unwrap()
                .title()
                .unwrap();
            (title, bytes)
        })
        .collect();
    let seed = server
        .block_on(outpost_server::demo::seed_demo(&server.service, documents))
        .unwrap()
        .expect("an empty server is seeded");
    let data = tempfile::tempdir().unwrap();
    let ca = data.path().join("server-ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let totp = data.path().join("demo-totp.tsv");
    let lines: String = seed
        .totp_secrets
        .iter()
        .map(|(user, secret)| format!("{user}\t{secret}\n"))
        .collect();
    std::fs::write(&totp, lines).unwrap();

    let running = start_app_with_args(
        data.path(),
        &[],
        &[
            "--server",
            &server.base_url,
            "--server-ca",
            ca.to_str().unwrap(),
            "--demo-totp-file",
            totp.to_str().unwrap(),
        ],
    );
    let driver = &running.driver;
    // The demo vault holds no local samples: its documents arrive from the server.
    unlock_demo(driver);
    wait_until("the server's documents", Duration::from_secs(60), || {
        (driver.find_all("#doc-list li").len() == 2).then_some(())
    });
    let is_online = |t: &str| t.contains("Online") || t.contains("В сети");
    let online = text_when(driver, "#sync-text", "the indicator online", is_online);
    assert!(
        online.contains("everything sent") || online.contains("всё отправлено"),
        "{online}"
    );
    let shots_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    screenshot(&running.display, &shots_dir.join("e2e-synced.png"));

    // A key certified by the organisation's CA on the server, a signature, and the signed
    // revision reaches the server at the next sync.
    let heads_before: Vec<String> = server
        .block_on(server.service.all_documents())
        .unwrap()
        .into_iter()
        .map(|d| d.sha256)
        .collect();
    certify_a_key_on_the_server(driver, "Anna Demidova");
    driver.click(&driver.find_all("#doc-list li")[0]);
    driver.wait_for("#signature-list li.empty");
    sign_the_open_document(driver);
    driver.click(&driver.wait_for("#sync-now"));
    wait_until(
        "the signed revision on the server",
        Duration::from_secs(30),
        || {
            let heads: Vec<String> = server
                .block_on(server.service.all_documents())
                .unwrap()
                .into_iter()
                .map(|d| d.sha256)
                .collect();
            (heads.iter().filter(|h| !heads_before.contains(h)).count() == 1).then_some(())
        },
    );
    // The server sealed the signature for the long term (validation data and its time-stamp);
    // the sealed revision comes back and the signatures panel says so once the document is
    // opened again (once a second: the list is drawn again after each sync round, so the click
    // goes through the page itself).
    let mut polls = 0;
    wait_until(
        "the signature at PAdES B-LTA, not revoked, with the server's time-stamp",
        Duration::from_secs(60),
        || {
            // Checked against the organisation's revocation list, fetched with the sync.
            let sealed = driver.find_all(
                "#signature-list li[data-level=B-LTA][data-status=valid][data-revocation=not_revoked]",
            );
            let stamp = driver.find_all("#signature-list li[data-kind=document_time_stamp]");
            if sealed.len() == 1 && stamp.len() == 1 {
                return Some(());
            }
            if polls % 5 == 0 {
                driver.script("document.querySelector('#doc-list li')?.click();");
            }
            polls += 1;
            None
        },
    );

    // The server goes away: asked to sync, the app says it works offline, and keeps the documents.
    server.stop();
    driver.click(&driver.wait_for("#sync-now"));
    let offline = text_when(driver, "#sync-text", "the indicator offline", |t| {
        t.contains("Offline") || t.contains("Нет связи")
    });
    assert_eq!(
        driver.find_all("#doc-list li").len(),
        2,
        "offline: {offline}"
    );
    // And says why, in the user's language, beside the indicator (on one line, cut to fit: read
    // whole).
    wait_until("why the sync failed", Duration::from_secs(30), || {
        let why = sync_problem(driver);
        (why.contains("The server cannot be reached") || why.contains("Сервер недоступен"))
            .then_some(())
    });
    screenshot(&running.display, &shots_dir.join("e2e-offline.png"));

    // The server comes back (same address, same data): "sync now" finds it online again.
    let unchanged = server.backup();
    server.restore(unchanged);
    driver.click(&driver.wait_for("#sync-now"));
    wait_until(
        "the indicator online again",
        Duration::from_secs(30),
        || {
            let text = driver.text(&driver.wait_for("#sync-text"));
            // The failure's reason goes once a round succeeds.
            ((text.contains("Online") || text.contains("В сети"))
                && sync_problem(driver).is_empty())
            .then_some(())
        },
    );

    // Both documents stand as synced: the signed revision went, and the server's came back.
    wait_until("two rows marked synced", Duration::from_secs(30), || {
        (driver.find_all("#doc-list li .badge.synced").len() == 2).then_some(())
    });

    // The unit's assignment of the document not signed here ends: at the next sync the document
    // leaves the list, and a notice says so (marked purged) until the user dismisses it.
    let unsigned = server
        .block_on(server.service.all_documents())
        .unwrap()
        .into_iter()
        .find(|d| heads_before.contains(&d.sha256))
        .expect("the document not signed here");
    // Its row's local id, to find it in the notice once it is gone.
    let local_id = driver.script(&format!(
        "return [...document.querySelectorAll('#doc-list li[data-doc-id]')].find(li => li.textContent.includes({})).dataset.docId",
        json!(unsigned.title)
    ));
    let local_id = local_id.as_str().expect("the row's id").to_owned();
    server
        .block_on(server.service.revoke_assignment(
            outpost_server::service::Actor::Cli,
            &unsigned.id,
            &outpost_protocol::AssignmentTarget::Unit {
                name: outpost_server::demo::DEMO_UNIT.into(),
            },
        ))
        .unwrap();
    driver.click(&driver.wait_for("#sync-now"));
    text_when(driver, "#purge-notices", "the notice of the purge", |t| {
        (t.contains("was taken back by the server") || t.contains("Сервер отозвал документ"))
            && t.contains(&unsigned.title)
    });
    wait_until("one document left", Duration::from_secs(30), || {
        (driver.find_all("#doc-list li").len() == 1).then_some(())
    });
    assert_eq!(
        driver
            .find_all(&format!(
                "#purge-notices p[data-document-id=\"{local_id}\"] .badge.purged"
            ))
            .len(),
        1
    );
    assert_eq!(driver.find_all("#doc-list li .badge.synced").len(), 1);
    driver.click(&driver.wait_for("#purge-notices-dismiss"));
    text_when(
        driver,
        "#purge-notices",
        "the notice dismissed",
        str::is_empty,
    );

    // An administrator revokes the workstation: at its next sync the app erases the vault and
    // says so on the unlock screen.
    let vault_dir = data.path().join("vaults").join("demo");
    assert!(vault_dir.exists(), "{}", vault_dir.display());
    let devices = server
        .block_on(server.service.devices(Some("demo")))
        .unwrap();
    assert_eq!(devices.len(), 1);
    server
        .block_on(
            server
                .service
                .revoke_device(outpost_server::service::Actor::Cli, &devices[0].id),
        )
        .unwrap();
    driver.click(&driver.wait_for("#sync-now"));
    let notice = text_when(driver, "#unlock-error", "the wipe notice", |t| {
        !t.is_empty()
    });
    assert!(
        notice.contains("erased") || notice.contains("удалены"),
        "{notice}"
    );
    assert!(!vault_dir.exists(), "the vault folder is still there");
}

/// The sync failure's reason as shown beside the indicator, whole ("" while none is shown).
fn sync_problem(driver: &WebDriver) -> String {
    driver
        .script(
            "const p = document.getElementById('sync-problem'); \
             return p && !p.hidden ? p.textContent : '';",
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Opens the viewer's sign form and waits for its keys. A click can come before the viewer
/// listens, or the viewer can be drawn afresh meanwhile (the list is drawn again after each sync
/// round): the form is then still, or again, closed, and is opened again.
fn open_the_sign_form(driver: &WebDriver) {
    wait_until("the sign form's keys", Duration::from_secs(90), || {
        if !driver.find_all("#sign-key option").is_empty() {
            return Some(());
        }
        let closed = driver.script(
            "const form = document.getElementById('sign-form'); return !form || form.hidden;",
        );
        if closed == json!(true) {
            driver.click_fresh("#sign-open");
        }
        std::thread::sleep(Duration::from_millis(300));
        None
    })
}

/// Unlocks the demo vault and waits for its six sample documents.
fn unlock_demo_and_wait_for_its_documents(driver: &WebDriver) {
    unlock_demo(driver);
    wait_until("the document list", Duration::from_secs(60), || {
        (driver.find_all("#doc-list li").len() == 6).then_some(())
    });
}

/// On the keys screen (already open), trusts the test CA's root.
fn trust_test_root(driver: &WebDriver, pki: &judges::TestPki) {
    let root = std::fs::read_to_string(pki.path("ca.crt")).unwrap();
    driver.type_into(&driver.wait_for("#anchor-pem"), &root);
    driver.click(&driver.wait_for("#anchor-add button[type=submit]"));
    wait_until("the root trusted", Duration::from_secs(30), || {
        let text = driver.text(&driver.wait_for("#keys-message"));
        text.contains("Outpost Test CA").then_some(())
    });
}

/// A server (with its CA, on the app's clock) where `username` is staff of the unit North, which
/// is given one generated report titled `title`.
fn server_with_one_document(
    username: &str,
    title: &str,
    language: outpost_pdf::Language,
    marker: &str,
) -> (
    outpost_server::testing::InProcessServer,
    outpost_server::testing::TestAccount,
) {
    let server = outpost_server::testing::InProcessServer::start_with_ca();
    server.move_clock_to_system_time();
    server.unit("North");
    let account = server.account(username, outpost_protocol::Role::Staff, Some("North"));
    let report = sample(
        outpost_pdf::SampleKind::OperationalReport,
        language,
        1,
        7,
        marker,
    );
    server.document(
        title,
        report,
        outpost_protocol::AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    (server, account)
}

#[test]
fn a_local_vault_is_connected_to_a_server_from_the_connect_screen() {
    // A server with one document for the unit of the user "demo" (the demo vault's user), on the
    // app's clock.
    let (server, account) = server_with_one_document(
        "demo",
        "Memo from the server",
        outpost_pdf::Language::English,
        "connect-screen",
    );

    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    unlock_demo(driver);
    let local = wait_until("the local samples", Duration::from_secs(60), || {
        let n = driver.find_all("#doc-list li").len();
        (n > 0).then_some(n)
    });
    text_when(driver, "#sync-text", "the local indicator", |t| {
        t.contains("not connected") || t.contains("не подключён")
    });

    // The connect screen: a wrong code is refused in plain words and nothing changes.
    fill_connect_form(driver, &server, &account, "000000");
    driver.click(&driver.wait_for("#connect-submit"));
    let refused = text_when(driver, "#status", "the refusal", |t| !t.is_empty());
    assert!(
        refused.contains("did not accept the user name, password or code")
            || refused.contains("не принял имя пользователя, пароль или код"),
        "{refused}"
    );
    assert!(driver.find_all("#connect-open").len() == 1);

    let shots_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    screenshot(&running.display, &shots_dir.join("e2e-connect.png"));

    // The right code: the workstation is enrolled, syncs, and the server's document arrives.
    driver.type_into(
        &driver.wait_for("#connect-code"),
        &server.fresh_code(&account),
    );
    driver.click(&driver.wait_for("#connect-submit"));
    wait_until("the server's document", Duration::from_secs(60), || {
        (driver.find_all("#doc-list li").len() == local + 1).then_some(())
    });
    let online = text_when(driver, "#sync-text", "the indicator online", |t| {
        t.contains("Online") || t.contains("В сети")
    });
    assert!(!online.is_empty());
    let devices = server
        .block_on(server.service.devices(Some("demo")))
        .unwrap();
    assert_eq!(devices.len(), 1, "the workstation is enrolled");
}

#[test]
fn in_russian_a_new_user_sets_up_the_workstation_from_the_first_run_screen() {
    let (server, account) = server_with_one_document(
        "vera",
        "Сводка для новой сотрудницы",
        outpost_pdf::Language::Russian,
        "первыйзапуск",
    );

    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    driver.wait_for("#setup-open");
    driver.script(
        "const s = document.getElementById('language'); s.value = 'ru'; s.dispatchEvent(new Event('change'));",
    );
    text_when(driver, "#setup-open", "the screen in Russian", |t| {
        t.contains("Впервые")
    });
    driver.click_fresh("#setup-open");
    let title = driver.text(&driver.wait_for("#connect-form h2"));
    assert_eq!(title, "Настройка рабочего места");
    driver.type_into(&driver.wait_for("#connect-address"), &server.base_url);
    driver.type_into(
        &driver.wait_for("#connect-ca"),
        std::str::from_utf8(&server.ca_pem).unwrap(),
    );
    driver.type_into(&driver.wait_for("#connect-user"), "vera");
    driver.type_into(&driver.wait_for("#connect-password"), &account.password);
    driver.type_into(&driver.wait_for("#connect-code"), "000000");
    driver.type_into(
        &driver.wait_for("#setup-vault-password"),
        "длинная фраза веры",
    );
    driver.type_into(&driver.wait_for("#setup-vault-repeat"), "другая фраза");

    // Two different vault passwords are caught before anything is sent.
    driver.click(&driver.wait_for("#connect-submit"));
    text_when(driver, "#connect-message", "the mismatch", |t| {
        t.contains("не совпадают")
    });
    // A wrong code: refused in plain words, and no vault is left behind.
    driver.type_into(
        &driver.wait_for("#setup-vault-repeat"),
        "длинная фраза веры",
    );
    driver.click(&driver.wait_for("#connect-submit"));
    let refused = text_when(driver, "#setup-error", "the refusal", |t| !t.is_empty());
    assert!(
        refused.contains("не принял имя пользователя, пароль или код"),
        "{refused}"
    );
    assert!(
        !data.path().join("vaults/vera").exists(),
        "no half set-up vault"
    );

    // The right code: the vault is made, the workstation enrolled, and the document arrives.
    driver.type_into(
        &driver.wait_for("#connect-code"),
        &server.fresh_code(&account),
    );
    driver.click(&driver.wait_for("#connect-submit"));
    wait_until("the server's document", Duration::from_secs(60), || {
        (driver.find_all("#doc-list li[data-doc-id]").len() == 1).then_some(())
    });
    text_when(driver, "#sync-text", "the indicator online", |t| {
        t.contains("В сети")
    });
    let shots_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    screenshot(&running.display, &shots_dir.join("e2e-first-run.png"));
    assert_eq!(
        server
            .block_on(server.service.devices(Some("vera")))
            .unwrap()
            .len(),
        1
    );

    // Locked, the vault opens with the password chosen at the first run.
    driver.click(&driver.wait_for("#lock"));
    driver.type_into(&driver.wait_for("#unlock-user"), "vera");
    driver.type_into(&driver.wait_for("#unlock-password"), "длинная фраза веры");
    driver.click(&driver.wait_for("#unlock-submit"));
    wait_until("the document again", Duration::from_secs(60), || {
        (driver.find_all("#doc-list li[data-doc-id]").len() == 1).then_some(())
    });

    // Signing out ends the workstation's session on the server; the vault opens as before, and
    // syncing asks for the sign-in again (the server's address and CA already filled in).
    driver.click_fresh("#sign-out:not([hidden])");
    let notice = text_when(driver, "#unlock-error", "the signed-out notice", |t| {
        !t.is_empty()
    });
    assert!(notice.contains("Вы вышли"), "{notice}");
    driver.type_into(&driver.wait_for("#unlock-user"), "vera");
    driver.type_into(&driver.wait_for("#unlock-password"), "длинная фраза веры");
    driver.click(&driver.wait_for("#unlock-submit"));
    text_when(driver, "#sync-text", "the request to sign in again", |t| {
        t.contains("Войдите снова")
    });
    driver.click_fresh("#connect-open:not([hidden])");
    let address = driver.wait_for("#connect-address");
    assert_eq!(
        driver
            .call("GET", &format!("/element/{address}/property/value"), None)
            .as_str()
            .unwrap(),
        server.base_url
    );
    driver.type_into(&driver.wait_for("#connect-password"), &account.password);
    driver.type_into(
        &driver.wait_for("#connect-code"),
        &server.fresh_code(&account),
    );
    driver.click(&driver.wait_for("#connect-submit"));
    text_when(driver, "#sync-text", "online again", |t| {
        t.contains("В сети")
    });
    assert_eq!(
        server
            .block_on(server.service.devices(Some("vera")))
            .unwrap()
            .len(),
        1,
        "the same device signed in again"
    );
}

#[test]
fn the_inbox_folder_is_chosen_in_the_settings_and_watched_from_then_on() {
    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    unlock_demo_and_wait_for_its_documents(driver);
    driver.click(&driver.wait_for("#settings-open"));
    let default = driver.wait_for("#settings-inbox");
    let shown = driver
        .call("GET", &format!("/element/{default}/property/value"), None)
        .as_str()
        .unwrap()
        .to_owned();
    assert!(shown.ends_with("inbox/demo"), "{shown}");

    // A relative path is refused in plain words; a full one is made and watched.
    driver.type_into(&default, "scans");
    driver.click(&driver.wait_for("#settings-inbox-save"));
    let refused = text_when(driver, "#status", "the refusal", |t| !t.is_empty());
    assert!(refused.contains("full path"), "{refused}");
    let chosen = data.path().join("scanner/out");
    driver.type_into(
        &driver.wait_for("#settings-inbox"),
        chosen.to_str().unwrap(),
    );
    driver.click(&driver.wait_for("#settings-inbox-save"));
    text_when(driver, "#settings-message", "the folder watched", |t| {
        t.contains("Watching")
    });
    assert!(chosen.is_dir());
    let dropped = sample(
        outpost_pdf::SampleKind::PersonnelRecord,
        outpost_pdf::Language::English,
        1,
        778,
        "From the chosen folder",
    );
    let staged = data.path().join("staged.pdf");
    std::fs::write(&staged, &dropped).unwrap();
    std::fs::rename(&staged, chosen.join("scan-0002.pdf")).unwrap();
    wait_until("the dropped document", Duration::from_secs(30), || {
        (driver.find_all("#doc-list li[data-doc-id]").len() == 7).then_some(())
    });

    // A file that is not a PDF goes to rejected/ with its reason, and the settings show both
    // what arrived and what was refused, with why.
    std::fs::write(chosen.join("minutes.txt"), "not a PDF at all").unwrap();
    wait_until("the rejection", Duration::from_secs(30), || {
        chosen.join("rejected/minutes.txt").exists().then_some(())
    });
    driver.click_fresh("#settings-open");
    let rejected = text_when(
        driver,
        "#settings-rejected li[data-name='minutes.txt']",
        "the rejected file in the settings",
        |t| !t.is_empty(),
    );
    assert!(rejected.contains("not a PDF"), "{rejected}");
    let recent: Vec<String> = driver
        .find_all("#settings-intake li")
        .iter()
        .map(|li| driver.text(li))
        .collect();
    assert!(
        recent.iter().any(|l| l.contains("scan-0002.pdf"))
            && recent.iter().any(|l| l.contains("minutes.txt")),
        "{recent:?}"
    );
    // Language and auto-lock are there too: Russian chosen in the settings changes the window.
    driver.script(
        "const s = document.getElementById('settings-language'); s.value = 'ru'; s.dispatchEvent(new Event('change'));",
    );
    text_when(driver, "#settings h2", "the settings in Russian", |t| {
        t.contains("Настройки")
    });
    driver.wait_for("#settings-autolock");
    driver.script(
        "const m = document.getElementById('settings-autolock'); m.value = '7'; m.dispatchEvent(new Event('change'));",
    );
    wait_until(
        "the toolbar's auto-lock follows",
        Duration::from_secs(10),
        || {
            (driver.script("return document.getElementById('autolock-minutes').value")
                == json!("7"))
            .then_some(())
        },
    );
    screenshot(
        &running.display,
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-settings.png"),
    );

    // The choice is kept in the vault: after locking it is still the folder watched.
    driver.click(&driver.wait_for("#lock"));
    unlock_demo(driver);
    let activity = text_when(driver, "#inbox-activity", "the folder watched", |t| {
        !t.is_empty()
    });
    assert!(activity.contains("scanner/out"), "{activity}");
}

#[test]
fn an_idle_window_locks_the_vault_by_itself_and_says_why() {
    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    unlock_demo(driver);
    driver.wait_for("#doc-list li");
    // The setting in minutes is shown; the shortest idle time the window accepts (10 s, stored
    // directly) keeps the test short.
    driver.wait_for("#autolock-minutes");
    let minutes = driver.script("return document.getElementById('autolock-minutes').value");
    assert_eq!(minutes, json!("15"), "the default is 15 minutes");
    screenshot(
        &running.display,
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-autolock.png"),
    );
    driver.script("localStorage.setItem('outpost.autolockSeconds', '10');");
    let notice = text_when(driver, "#unlock-error", "the automatic lock", |t| {
        !t.is_empty()
    });
    assert!(
        notice.contains("without activity") || notice.contains("после простоя"),
        "{notice}"
    );
    driver.wait_for("#unlock-password");
    // Locked for real: the engine refuses what needs the session.
    assert!(driver.find_all("#doc-list li").is_empty());
}

#[test]
fn five_thousand_documents_scroll_in_a_list_that_draws_only_the_rows_in_view() {
    let data = tempfile::tempdir().unwrap();
    let keyring_service = format!("outpost-e2e-big-{}", std::process::id());
    // A vault holding 5,000 documents, filled before the window opens.
    {
        let session = workstation_beside_the_app(data.path(), &keyring_service)
            .create_vault("archivist", "archive-password", os_rng())
            .unwrap();
        for n in 0..5_000 {
            let title = format!("Register entry {n:04}");
            session
                .import_bytes(
                    outpost_server::testing::sample_pdf(&title, 0),
                    &format!("entry-{n:04}.pdf"),
                )
                .unwrap();
        }
        session.lock().unwrap();
    }
    let running = start_app(
        data.path(),
        &[("OUTPOST_KEYRING_SERVICE", keyring_service.as_str())],
    );
    let driver = &running.driver;
    driver.type_into(&driver.wait_for("#unlock-user"), "archivist");
    driver.type_into(&driver.wait_for("#unlock-password"), "archive-password");
    driver.click(&driver.wait_for("#unlock-submit"));
    text_when(driver, "#list-pane h2", "the heading", |t| {
        t.contains("5000")
    });
    let drawn = wait_until("the first rows", Duration::from_secs(60), || {
        let n = driver.find_all("#doc-list li").len();
        (n > 0).then_some(n)
    });
    assert!(drawn < 60, "{drawn} rows in the page for 5,000 documents");
    let first_row = driver.wait_for("#doc-list li");
    assert!(driver.text(&first_row).contains("Register entry 4999"));

    // Scrolled to the end, the oldest entry is drawn, and still only a screenful of rows.
    driver.script(
        "const s = document.querySelector('.virtual-scroll'); s.scrollTop = s.scrollHeight;",
    );
    let last = wait_until("the oldest entry", Duration::from_secs(20), || {
        driver
            .find_all("#doc-list li")
            .into_iter()
            .find(|li| driver.text(li).contains("Register entry 0000"))
    });
    assert!(driver.find_all("#doc-list li").len() < 60);
    assert!(driver.text(&last).contains("New") || driver.text(&last).contains("Новый"));

    // From the keyboard: Home goes back to the newest, Enter opens it, and it is read now.
    driver.press(&last, "\u{E011}");
    wait_until("the newest entry focused", Duration::from_secs(20), || {
        let focused = driver.script("return document.activeElement?.textContent ?? '';");
        focused
            .as_str()
            .is_some_and(|t| t.contains("Register entry 4999"))
            .then_some(())
    });
    driver.script("document.activeElement.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));");
    text_when(driver, "#viewer-title", "the opened entry", |t| {
        t.contains("Register entry 4999")
    });
    wait_until(
        "the opened entry marked read",
        Duration::from_secs(20),
        || {
            let row = driver.text(&driver.wait_for("#doc-list li[data-index='0']"));
            (row.contains("Read") || row.contains("Прочитан")).then_some(())
        },
    );
    screenshot(
        &running.display,
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-five-thousand.png"),
    );
}

/// The number of pixels in the viewer's part of the window that are the watermark's red.
fn watermark_red_in_viewer(shot: &image::RgbImage) -> usize {
    let (width, height) = shot.dimensions();
    (width / 3..width * 3 / 4)
        .flat_map(|x| (height / 5..height * 9 / 10).map(move |y| (x, y)))
        .filter(|&(x, y)| {
            let p = shot.get_pixel(x, y).0;
            p[0] > 150 && p[1] < 90 && p[2] < 90
        })
        .count()
}

#[test]
fn the_tutorial_runs_its_lessons_in_the_window_and_checks_each_step_against_the_engine() {
    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    let shots_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));

    // The tutorial starts from the unlock screen, into the practice vault. The demo user has a
    // real vault here, so it takes that vault's password: the progress goes out under that name.
    driver.click(&driver.wait_for("#start-tutorial"));
    let refused = text_when(driver, "#unlock-error", "the password asked for", |t| {
        !t.is_empty()
    });
    assert!(refused.contains("type its password"), "{refused}");
    driver.type_into(&driver.wait_for("#unlock-password"), "outpost-demo");
    driver.click(&driver.wait_for("#start-tutorial"));
    let banner = text_when(driver, "#training-banner", "the training banner", |t| {
        !t.is_empty()
    });
    assert!(
        banner.contains("TRAINING") || banner.contains("ОБУЧЕНИЕ"),
        "{banner}"
    );
    let lessons = wait_until("the lessons", Duration::from_secs(30), || {
        let lessons = driver.find_all("#tutorial-lessons li");
        (lessons.len() == 9).then_some(lessons)
    });
    assert_eq!(lessons.len(), 9);
    assert!(
        driver
            .find_all("#tutorial-lessons li button[disabled]")
            .is_empty(),
        "every lesson can be begun: the app runs the practice server for the sync lessons"
    );
    let practice = wait_until("the practice documents", Duration::from_secs(30), || {
        let rows = driver.find_all("#doc-list li[data-doc-id]");
        (rows.len() == 8).then_some(rows)
    });

    // Lesson 1: the panel points at the list; opening a document is recognised by the engine.
    driver.click(&driver.wait_for("#tutorial-lessons li[data-lesson=open_and_navigate] button"));
    driver.wait_for("#tutorial-step [data-step=open_document]");
    driver.wait_for("#doc-list li.tutorial-target");
    driver.click(&practice[0]);
    driver.wait_for("#tutorial-step [data-step=go_to_later_page]");
    wait_for_a_rendered_page(driver);
    // Every practice page carries the watermark, on screen too.
    wait_until("the watermark on screen", Duration::from_secs(20), || {
        let shot = screenshot(&running.display, &shots_dir.join("e2e-tutorial.png"));
        (watermark_red_in_viewer(&shot) > 500).then_some(())
    });
    driver.script("document.getElementById('pages').scrollTop = 100000;");
    driver.wait_for("#tutorial-step .done");
    driver.wait_for("#tutorial-lessons li[data-lesson=open_and_navigate][data-completed=true]");
    let summary = driver.text(&driver.wait_for("#tutorial-summary"));
    assert!(summary.contains('1'), "{summary}");

    // Lesson 8: lock, and come back through the tutorial's own button (with the password of the
    // user's real vault).
    driver.click(&driver.wait_for("#tutorial-lessons li[data-lesson=lock_and_unlock] button"));
    driver.wait_for("#tutorial-step [data-step=lock]");
    driver.click(&driver.wait_for("#lock.tutorial-target"));
    driver.type_into(&driver.wait_for("#unlock-password"), "outpost-demo");
    driver.click(&driver.wait_for("#start-tutorial.tutorial-target"));
    driver.wait_for("#tutorial-lessons li[data-lesson=lock_and_unlock][data-completed=true]");

    // Leaving the tutorial locks it: real work takes the real unlock, and the practice vault is
    // not offered as a user.
    driver.click(&driver.wait_for("#leave-tutorial"));
    let notice = text_when(driver, "#unlock-error", "the notice on leaving", |t| {
        !t.is_empty()
    });
    assert!(
        notice.contains("left the tutorial") || notice.contains("вышли из обучения"),
        "{notice}"
    );
    let users = driver
        .script("return [...document.querySelectorAll('#known-users option')].map(o => o.value)");
    assert_eq!(users, json!(["demo"]));
    unlock_demo(driver);
    let rows = wait_until("the real documents", Duration::from_secs(60), || {
        let rows = driver.find_all("#doc-list li[data-doc-id]");
        (rows.len() == 6).then_some(rows)
    });
    assert_eq!(rows.len(), 6);
    assert!(driver.find_all("#training-banner").is_empty());
    assert!(driver.find_all("#tutorial-panel").is_empty());

    // From real work, the tutorial opens at any time, with its progress; the real vault is
    // locked meanwhile, so leaving asks for its password again.
    driver.click(&driver.wait_for("#open-tutorial"));
    driver.wait_for("#training-banner");
    driver.wait_for("#tutorial-lessons li[data-lesson=open_and_navigate][data-completed=true]");
    driver.click(&driver.wait_for("#leave-tutorial"));
    driver.wait_for("#unlock-password");
    assert!(driver.find_all("#doc-list li").is_empty());
}

#[test]
fn a_supervisor_sees_in_the_window_the_progress_a_trainee_sent_from_the_tutorial() {
    use outpost_workstation::{
        KdfParams, OsKeyring, SecondFactor, SystemClock, Workstation, WorkstationConfig,
    };
    let server = outpost_server::testing::InProcessServer::start();
    server.move_clock_to_system_time();
    server.unit("North");
    let supervisor = server.account("demo", outpost_protocol::Role::Supervisor, Some("North"));
    let trainee = server.account("timur", outpost_protocol::Role::Trainee, Some("North"));

    // The trainee's own workstation: a lesson done in the tutorial, then the real vault syncs.
    let trainee_data = tempfile::tempdir().unwrap();
    let workstation = Workstation::new(WorkstationConfig {
        data_root: trainee_data.path().to_owned(),
        keyring: std::sync::Arc::new(OsKeyring::new(format!(
            "outpost-e2e-trainee-{}",
            std::process::id()
        ))),
        clock: std::sync::Arc::new(SystemClock),
        kdf: KdfParams::INSECURE_FAST_FOR_TESTS,
        pdf: outpost_workstation::PdfEngine::start_default().unwrap(),
    });
    let rng = || -> outpost_workstation::SharedRng {
        std::sync::Arc::new(std::sync::Mutex::new(Box::new(rand_core::OsRng)))
    };
    let real = workstation
        .create_vault("timur", "pw-timur", rng())
        .unwrap();
    real.connect_server(
        &server.base_url,
        std::str::from_utf8(&server.ca_pem).unwrap(),
        "timur",
        &trainee.password,
        SecondFactor::Totp {
            code: server.fresh_code(&trainee),
        },
        "Training laptop",
    )
    .unwrap();
    let sandbox = workstation.open_tutorial_from(&real, rng()).unwrap();
    real.lock().unwrap();
    sandbox.start_lesson("open_and_navigate").unwrap();
    let practice = sandbox.documents().unwrap()[0].id.clone();
    sandbox.open_document(&practice).unwrap();
    sandbox.set_visible_pages(&practice, 2, 3);
    assert!(sandbox.check_lesson("open_and_navigate").unwrap().completed);
    sandbox.lock().unwrap();
    let real = workstation.unlock("timur", "pw-timur", rng()).unwrap();
    real.sync_push().unwrap();

    // The supervisor connects the app and opens the trainees' view.
    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    unlock_demo_and_wait_for_its_documents(driver);
    connect_from_the_screen(driver, &server, &supervisor);
    driver.click(&driver.wait_for("#trainees-open:not([hidden])"));
    let row = driver.wait_for("#trainee-list li[data-user=timur]");
    let text = driver.text(&row);
    assert!(text.contains("1 of 9") || text.contains("1 из 9"), "{text}");
    driver.wait_for(
        "#trainee-list li[data-user=timur] li[data-lesson=open_and_navigate][data-completed=true]",
    );
    screenshot(
        &running.display,
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-trainees.png"),
    );
}

#[test]
fn in_russian_the_tutorial_lessons_of_notes_signing_batches_validation_and_search_are_done_in_the_window(
) {
    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    let begin = |lesson: &str| begin_lesson(driver, lesson);
    let completed = |lesson: &str| lesson_completed(driver, lesson);

    start_tutorial_as_a_newcomer(driver);
    driver.script(
        "const s = document.getElementById('language'); s.value = 'ru'; s.dispatchEvent(new Event('change'));",
    );
    text_when(driver, "#training-banner", "the banner in Russian", |t| {
        t.contains("ОБУЧЕНИЕ")
    });
    wait_until("the practice documents", Duration::from_secs(30), || {
        (driver.find_all("#doc-list li[data-doc-id]").len() == 8).then_some(())
    });

    // A highlight, then a note.
    begin("highlight_and_note");
    let step = text_when(
        driver,
        "#tutorial-step [data-step=add_highlight]",
        "step 1",
        |t| !t.is_empty(),
    );
    assert!(step.contains("Выделить текст"), "{step}");
    driver.click(&driver.find_all("#doc-list li[data-doc-id]")[0]);
    let overlay = driver.wait_for(".page-frame svg.overlay");
    wait_for_a_rendered_page(driver);
    driver.click(&driver.wait_for("button[data-tool=select]"));
    driver.click_visible_part(&overlay);
    wait_until("a text selection", Duration::from_secs(30), || {
        (!driver.find_all("svg.overlay rect.selection").is_empty()).then_some(())
    });
    driver.click(&driver.wait_for("#markup-highlight"));
    driver.wait_for("#tutorial-step [data-step=add_note]");
    driver.click(&driver.wait_for("button[data-tool=note]"));
    driver.type_into(&driver.wait_for("#annotation-text"), "Проверить дату");
    driver.click_visible_part(&driver.wait_for(".page-frame svg.overlay"));
    completed("highlight_and_note");

    // Sign it with the training key; the signatures panel names the training certificate.
    begin("sign_one");
    driver.wait_for("#tutorial-step [data-step=sign_document]");
    driver.click(&driver.wait_for("#sign-open"));
    driver.wait_for("#sign-key option");
    driver.click(&driver.wait_for("#sign-submit"));
    driver.click_visible_part(&driver.wait_for(".page-frame svg.overlay"));
    let signed = driver.wait_for("#signature-list li[data-status=valid]");
    assert!(
        driver.text(&signed).contains("TRAINING"),
        "{}",
        driver.text(&signed)
    );
    completed("sign_one");

    // Read the validation of a signed document (opened again in the lesson).
    begin("validation_panel");
    driver.wait_for("#tutorial-step [data-step=open_signed_document]");
    driver.click(&driver.find_all("#doc-list li[data-doc-id]")[0]);
    driver.wait_for("#signature-list li[data-status=valid]");
    completed("validation_panel");

    // Three documents in one batch.
    begin("batch_sign");
    driver.wait_for("#tutorial-step [data-step=sign_three_in_batch]");
    let boxes = driver.find_all("#doc-list .doc-select");
    for checkbox in &boxes[1..=3] {
        driver.click(checkbox);
    }
    driver.click(&driver.wait_for("#batch-open"));
    driver.wait_for("#batch-key option");
    driver.click(&driver.wait_for("#batch-start"));
    wait_until("the batch summary", Duration::from_secs(60), || {
        (driver
            .find_all("#batch-results li[data-result=signed]")
            .len()
            == 3)
            .then_some(())
    });
    completed("batch_sign");

    // Search, then open a hit.
    begin("search");
    driver.wait_for("#tutorial-step [data-step=search_with_hits]");
    driver.type_into(&driver.wait_for("#search-input"), "договор");
    driver.click(&driver.wait_for("#search-form button[type=submit]"));
    driver.wait_for("#tutorial-step [data-step=open_search_hit]");
    driver.click(&driver.wait_for("#search-results li"));
    completed("search");

    let summary = text_when(driver, "#tutorial-summary", "the summary", |t| {
        t.contains("5 из 9")
    });
    assert!(summary.contains("5 из 9"), "{summary}");
    std::thread::sleep(Duration::from_secs(1));
    screenshot(
        &running.display,
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-tutorial-ru.png"),
    );
}

/// Opens the tutorial from the unlock screen as a newcomer (no vault here, so no password).
fn start_tutorial_as_a_newcomer(driver: &WebDriver) {
    driver.type_into(&driver.wait_for("#unlock-user"), "novice");
    driver.click(&driver.wait_for("#start-tutorial"));
    driver.wait_for("#training-banner");
}

/// Begins a lesson from the tutorial panel.
fn begin_lesson(driver: &WebDriver, lesson: &str) {
    driver.click(&driver.wait_for(&format!(
        "#tutorial-lessons li[data-lesson={lesson}] button"
    )));
}

/// Waits until the panel shows a lesson completed.
fn lesson_completed(driver: &WebDriver, lesson: &str) {
    driver.wait_for(&format!(
        "#tutorial-lessons li[data-lesson={lesson}][data-completed=true]"
    ));
}

/// Opens the `index`th document that came from the practice server (found afresh: the list is
/// redrawn as sync state changes); returns its id.
fn open_practice_server_document(driver: &WebDriver, index: usize) -> String {
    wait_until(
        "a practice server document opened",
        Duration::from_secs(30),
        || {
            let row = practice_server_rows(driver).into_iter().nth(index)?;
            let id = driver
                .call(
                    "GET",
                    &format!("/element/{row}/attribute/data-doc-id"),
                    None,
                )
                .as_str()?
                .to_owned();
            driver.try_click(&row).get("error").is_none().then_some(id)
        },
    )
}

/// The rows of the document list whose titles say they came from the practice server.
fn practice_server_rows(driver: &WebDriver) -> Vec<String> {
    driver
        .find_all("#doc-list li[data-doc-id]")
        .into_iter()
        .filter(|row| driver.text(row).contains("practice server"))
        .collect()
}

#[test]
fn the_trainee_works_offline_syncs_and_resolves_a_signature_conflict_against_the_practice_server_in_the_window(
) {
    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    let begin = |lesson: &str| begin_lesson(driver, lesson);
    let step = |id: &str| driver.wait_for(&format!("#tutorial-step [data-step={id}]"));
    let completed = |lesson: &str| lesson_completed(driver, lesson);
    let sign_open_document = || {
        open_the_sign_form(driver);
        driver.click_fresh("#sign-submit");
        driver.click_visible_part(&driver.wait_for(".page-frame svg.overlay"));
    };

    start_tutorial_as_a_newcomer(driver);
    wait_until("the practice documents", Duration::from_secs(30), || {
        (driver.find_all("#doc-list li[data-doc-id]").len() == 8).then_some(())
    });

    // Work offline and sync. Beginning the lesson starts the practice server inside the app; its
    // documents arrive by sync like a real server's.
    begin("offline_and_sync");
    wait_until(
        "the practice server's documents",
        Duration::from_secs(60),
        || (practice_server_rows(driver).len() == 3).then_some(()),
    );
    text_when(
        driver,
        "#practice-state",
        "the practice server online",
        |t| t.contains("online"),
    );
    step("go_offline");
    driver.click_fresh("#practice-toggle.tutorial-target");
    text_when(
        driver,
        "#practice-state",
        "the practice server offline",
        |t| t.contains("offline"),
    );
    step("work_offline");
    open_practice_server_document(driver, 0);
    wait_for_a_rendered_page(driver);
    driver.click_fresh("button[data-tool=note]");
    driver.type_into(
        &driver.wait_for("#annotation-text"),
        "Check against the duty log",
    );
    driver.click_visible_part(&driver.wait_for(".page-frame svg.overlay"));
    step("come_online");
    // The bar says what waits while the server is unreachable.
    driver.click_fresh("#sync-now");
    text_when(driver, "#sync-status", "the offline indicator", |t| {
        t.contains("Offline") && t.contains("waiting")
    });
    driver.click_fresh("#practice-toggle.tutorial-target");
    completed("offline_and_sync");

    // Resolve a signature conflict: signed offline while the colleague signs it on the server.
    begin("resolve_conflict");
    step("go_offline");
    driver.click_fresh("#practice-toggle");
    step("sign_offline");
    let contested_id = open_practice_server_document(driver, 1);
    wait_for_a_rendered_page(driver);
    sign_open_document();
    driver.wait_for("#signature-list li[data-status=valid]");
    step("come_online");
    driver.click_fresh("#practice-toggle");
    step("sign_again_on_new_head");
    // The colleague's revision came in: one signature, theirs, and the document asks for ours.
    let row = format!("#doc-list li[data-doc-id='{contested_id}']");
    wait_until("the request to sign again", Duration::from_secs(60), || {
        let text = driver.text(&driver.wait_for(&row));
        text.contains("Needs your signature again").then_some(())
    });
    driver.click_fresh(&row);
    wait_until(
        "the colleague's signature alone",
        Duration::from_secs(30),
        || {
            let shown = driver.find_all("#signature-list li[data-status=valid]");
            (shown.len() == 1 && driver.text(&shown[0]).contains("Pavel Petrov")).then_some(())
        },
    );
    // The viewer says what happened and offers to sign this version. No "Sync now" afterwards:
    // the engine sends a local change soon by itself.
    let notice = text_when(driver, "#conflict-notice", "the conflict notice", |t| {
        !t.is_empty()
    });
    assert!(notice.contains("conflict branch"), "{notice}");
    std::thread::sleep(Duration::from_millis(500));
    screenshot(
        &running.display,
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-conflict-notice.png"),
    );
    driver.click_fresh("#conflict-sign-again");
    driver.wait_for("#sign-key option");
    driver.click_fresh("#sign-submit");
    driver.click_visible_part(&driver.wait_for(".page-frame svg.overlay"));
    // The colleague's stays valid under ours ("signed again later").
    wait_until("both signatures valid", Duration::from_secs(60), || {
        let shown = driver.find_all("#signature-list li[data-status^=valid]");
        (shown.len() == 2).then_some(())
    });
    completed("resolve_conflict");
    std::thread::sleep(Duration::from_secs(1));
    screenshot(
        &running.display,
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-tutorial-conflict.png"),
    );
}

/// Connects the unlocked demo vault to `server` as `account` through the connect screen and waits
/// until the indicator says online.
fn connect_from_the_screen(
    driver: &WebDriver,
    server: &outpost_server::testing::InProcessServer,
    account: &outpost_server::testing::TestAccount,
) {
    fill_connect_form(driver, server, account, &server.fresh_code(account));
    driver.click(&driver.wait_for("#connect-submit"));
    text_when(driver, "#sync-text", "the indicator online", |t| {
        t.contains("Online") || t.contains("В сети")
    });
}

#[test]
fn a_trainee_signed_in_to_the_server_is_shown_the_tutorial() {
    let server = outpost_server::testing::InProcessServer::start();
    server.move_clock_to_system_time();
    server.unit("North");
    let trainee = server.account("demo", outpost_protocol::Role::Trainee, Some("North"));
    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    unlock_demo_and_wait_for_its_documents(driver);
    connect_from_the_screen(driver, &server, &trainee);
    let notice = text_when(driver, "#trainee-notice", "the trainee notice", |t| {
        !t.is_empty()
    });
    assert!(
        notice.contains("trainee") || notice.contains("обучаем"),
        "{notice}"
    );
    driver.click(&driver.wait_for("#trainee-start-tutorial"));
    driver.wait_for("#training-banner");
    driver.wait_for("#tutorial-lessons li");
}

/// Opens the connect screen and fills it in for `account` on `server`, with `code` as the
/// second factor (not submitted).
fn fill_connect_form(
    driver: &WebDriver,
    server: &outpost_server::testing::InProcessServer,
    account: &outpost_server::testing::TestAccount,
    code: &str,
) {
    driver.click(&driver.wait_for("#connect-open"));
    driver.type_into(&driver.wait_for("#connect-address"), &server.base_url);
    driver.type_into(
        &driver.wait_for("#connect-ca"),
        std::str::from_utf8(&server.ca_pem).unwrap(),
    );
    driver.type_into(&driver.wait_for("#connect-password"), &account.password);
    driver.type_into(&driver.wait_for("#connect-code"), code);
}

/// What a working day looks like in one language: the words the window must use.
struct DayInLanguage {
    code: &'static str,
    language: outpost_pdf::Language,
    user: &'static str,
    signer: &'static str,
    vault_password: &'static str,
    marker: &'static str,
    titles: [&'static str; 7],
    note_online: &'static str,
    note_offline: &'static str,
    online: &'static str,
    everything_sent: &'static str,
    offline: &'static str,
    waiting: &'static str,
    batch_summary: &'static str,
}

/// The whole day of issue 7's flow in the real window against a real server: sign in (first run:
/// password, authenticator code, new vault password) → search → open → annotate → sign → the
/// server goes away → annotate and sign another → batch-sign the five left, offline → the server
/// comes back → everything reaches it. Every step is checked on the server, and the window's
/// words in `day`'s language.
fn a_working_day_online_and_offline(day: &DayInLanguage) {
    let mut server = outpost_server::testing::InProcessServer::start_with_ca();
    server.move_clock_to_system_time();
    server.unit("North");
    let account = server.account(day.user, outpost_protocol::Role::Supervisor, Some("North"));
    let pdf = outpost_pdf::PdfEngine::start_default().unwrap();
    let kinds = [
        outpost_pdf::SampleKind::PersonnelRecord,
        outpost_pdf::SampleKind::ProcurementContract,
        outpost_pdf::SampleKind::OperationalReport,
    ];
    for (i, title) in day.titles.iter().enumerate() {
        let bytes = pdf
            .write_sample(&outpost_pdf::SampleSpec {
                kind: kinds[i % kinds.len()],
                language: day.language,
                pages: 2,
                seed: 100 + i as u64,
                marker: (i == 0).then(|| day.marker.to_owned()),
            })
            .unwrap();
        server.document(
            title,
            bytes,
            outpost_protocol::AssignmentTarget::Unit {
                name: "North".into(),
            },
        );
    }
    let heads_at_start: Vec<String> = server
        .block_on(server.service.all_documents())
        .unwrap()
        .into_iter()
        .map(|d| d.sha256)
        .collect();
    let changed_heads = |server: &outpost_server::testing::InProcessServer| {
        server
            .block_on(server.service.all_documents())
            .unwrap()
            .into_iter()
            .filter(|d| !heads_at_start.contains(&d.sha256))
            .count()
    };
    let notes_on_server = |server: &outpost_server::testing::InProcessServer| -> Vec<String> {
        let store = server.service.store();
        let user = server
            .block_on(store.user_by_username(day.user))
            .unwrap()
            .unwrap();
        let page = server
            .block_on(store.pull(&user.id, user.unit_id.as_deref(), 0, None, 1000))
            .unwrap();
        page.entries
            .into_iter()
            .filter_map(|entry| match entry.kind {
                outpost_server::store::PullEntryKind::Annotation(a) if !a.deleted => Some(a.body),
                _ => None,
            })
            .collect()
    };

    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    let shots_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));

    // Sign in: the first-run screen, in the day's language.
    driver.wait_for("#setup-open");
    driver.script(&format!(
        "const s = document.getElementById('language'); s.value = '{}'; s.dispatchEvent(new Event('change'));",
        day.code
    ));
    wait_until("the chosen language", Duration::from_secs(30), || {
        (driver.script("return document.documentElement.lang") == json!(day.code)).then_some(())
    });
    set_up_from_the_first_run_screen(driver, &server, &account, day.user, day.vault_password);
    wait_until("the seven documents", Duration::from_secs(90), || {
        (driver.find_all("#doc-list li[data-doc-id]").len() == 7).then_some(())
    });
    text_when(driver, "#sync-text", "the indicator online", |t| {
        t.contains(day.online)
    });

    // A signing key, certified by the organisation's CA on the server.
    certify_a_key_on_the_server(driver, day.signer);

    // Search → open the hit → a note → sign, with the mark placed by a click on the page.
    driver.type_into(&driver.wait_for("#search-input"), day.marker);
    driver.click(&driver.wait_for("#search-form button[type=submit]"));
    let hits = wait_until("the search hit", Duration::from_secs(30), || {
        let hits = driver.find_all("#search-results li");
        (!hits.is_empty()).then_some(hits)
    });
    assert_eq!(hits.len(), 1, "one document carries the marker");
    assert!(driver.text(&hits[0]).contains(day.titles[0]));
    driver.click(&hits[0]);
    annotate_and_sign_the_open_document(driver, day.note_online);
    driver.click_fresh("#sync-now");
    wait_until(
        "the signed revision and the note on the server",
        Duration::from_secs(60),
        || {
            (changed_heads(&server) == 1
                && notes_on_server(&server)
                    .iter()
                    .any(|n| n.contains(day.note_online)))
            .then_some(())
        },
    );

    // The server goes away: the window says it works offline.
    server.stop();
    driver.click_fresh("#sync-now");
    text_when(driver, "#sync-text", "the indicator offline", |t| {
        t.contains(day.offline)
    });

    // Offline: another document annotated and signed (chosen among the new ones: once opened it
    // is new no more, and the filtered list says so at once)…
    let choose = |select: &str, value: &str| {
        driver.script(&format!(
            "const s = document.getElementById('{select}'); s.value = '{value}'; s.dispatchEvent(new Event('change'));"
        ));
    };
    driver.click(&driver.wait_for("#search-clear"));
    choose("list-filter", "new");
    text_when(driver, "#list-pane h2", "six new of seven", |t| {
        t.contains("(6 ") && t.contains(" 7)")
    });
    let second = wait_until("an unsigned document", Duration::from_secs(30), || {
        driver
            .find_all("#doc-list li[data-doc-id]")
            .into_iter()
            .find(|li| driver.text(li).contains(day.titles[1]))
    });
    driver.click(&second);
    text_when(driver, "#list-pane h2", "five new of seven", |t| {
        t.contains("(5 ") && t.contains(" 7)")
    });
    choose("list-filter", "all");
    annotate_and_sign_the_open_document(driver, day.note_offline);
    driver.click_fresh("#sync-now");
    text_when(driver, "#sync-text", "changes waiting", |t| {
        t.contains(day.offline) && t.contains(day.waiting)
    });

    // …and the five left signed as a batch, with one reason and progress.
    let summary = sign_the_unsigned_as_a_batch(driver, 5);
    assert!(summary.contains(day.batch_summary), "{summary}");
    assert_eq!(
        driver
            .find_all("#batch-results li[data-result=signed]")
            .len(),
        5,
        "{summary}"
    );
    // The list says all seven are signed, and the indicator counts what waits for the server:
    // the offline note and the six signed revisions.
    wait_until(
        "seven rows marked signed, six with changes waiting",
        Duration::from_secs(30),
        || {
            (driver.find_all("#doc-list li .badge.signed").len() == 7
                && driver.find_all("#doc-list li .badge.pending").len() == 6)
                .then_some(())
        },
    );
    text_when(driver, "#sync-text", "seven changes waiting", |t| {
        t.contains(day.offline) && t.contains(&format!("{}: 7", day.waiting))
    });
    // The list's filter shows only what waits for the server; by title, the first comes first.
    choose("list-filter", "pending");
    wait_until("the six waiting to sync", Duration::from_secs(30), || {
        (driver.find_all("#doc-list li[data-doc-id]").len() == 6).then_some(())
    });
    choose("list-filter", "all");
    choose("list-sort", "title");
    let mut by_title = day.titles.to_vec();
    by_title.sort();
    text_when(
        driver,
        "#doc-list li[data-index='0']",
        "the first by title",
        |t| t.contains(by_title[0]),
    );
    std::thread::sleep(Duration::from_secs(1));
    screenshot(
        &running.display,
        &shots_dir.join(format!("e2e-day-{}-offline.png", day.code)),
    );
    assert_eq!(
        changed_heads(&server),
        1,
        "nothing reached the stopped server"
    );

    // The server comes back: the engine finds it, and everything done offline reaches it.
    server.start_again();
    driver.click_fresh("#sync-now");
    wait_until(
        "all seven signed revisions and both notes on the server",
        Duration::from_secs(120),
        || {
            let notes = notes_on_server(&server);
            (changed_heads(&server) == 7
                && notes.iter().any(|n| n.contains(day.note_online))
                && notes.iter().any(|n| n.contains(day.note_offline)))
            .then_some(())
        },
    );
    text_when(driver, "#sync-text", "everything sent", |t| {
        t.contains(day.online) && t.contains(day.everything_sent)
    });
    screenshot(
        &running.display,
        &shots_dir.join(format!("e2e-day-{}-synced.png", day.code)),
    );
}

/// In the open document: a note with `text`, then a signature with the visible mark placed by a
/// click on the page, shown valid.
fn annotate_and_sign_the_open_document(driver: &WebDriver, text: &str) {
    // The page's layers are drawn afresh as it renders and its search hits are marked: each
    // click finds its element anew.
    driver.wait_for(".page-frame svg.overlay");
    wait_for_a_rendered_page(driver);
    let before = annotation_count(driver);
    driver.click_fresh("button[data-tool=note]");
    driver.type_into(&driver.wait_for("#annotation-text"), text);
    driver.click_fresh(".page-frame svg.overlay");
    wait_for_annotations(driver, before + 1);
    sign_the_open_document(driver);
}

/// Creates a signing key named `name` in the keys panel and has the organisation's CA on the
/// server certify it.
fn certify_a_key_on_the_server(driver: &WebDriver, name: &str) {
    driver.click(&driver.wait_for("#keys-open"));
    driver.type_into(&driver.wait_for("#key-name"), name);
    driver.click(&driver.wait_for("#key-create button[type=submit]"));
    driver.click(&driver.wait_for("#key-list li[data-ready=no] .request-certificate"));
    driver.wait_for("#key-list li[data-ready=yes]");
}

/// Signs the open document with the first key, the visible mark placed by a click on the page,
/// and waits for the signature to show valid.
fn sign_the_open_document(driver: &WebDriver) {
    open_the_sign_form(driver);
    driver.click_fresh("#sign-submit");
    driver.click_fresh(".page-frame svg.overlay");
    wait_until("a valid signature", Duration::from_secs(60), || {
        driver
            .find_all("#signature-list li[data-status=valid]")
            .into_iter()
            .next()
    });
}

#[test]
fn in_english_a_working_day_online_offline_and_back_reaches_the_server() {
    a_working_day_online_and_offline(&DayInLanguage {
        code: "en",
        language: outpost_pdf::Language::English,
        user: "olga",
        signer: "Olga Smirnova",
        vault_password: "a long walk at dawn",
        marker: "zephyrmark",
        titles: [
            "Duty roster, week 48",
            "Fuel supply contract",
            "Incident report 17",
            "Leave request, Petrov",
            "Inventory of unit stores",
            "Training plan, December",
            "Vehicle inspection report",
        ],
        note_online: "Checked against the roster",
        note_offline: "Signed in the field, no link",
        online: "Online",
        everything_sent: "everything sent",
        offline: "Offline",
        waiting: "changes waiting",
        batch_summary: "Signed 5 of 5; 0 failed.",
    });
}

#[test]
fn in_russian_a_working_day_online_offline_and_back_reaches_the_server() {
    a_working_day_online_and_offline(&DayInLanguage {
        code: "ru",
        language: outpost_pdf::Language::Russian,
        user: "olga",
        signer: "Ольга Смирнова",
        vault_password: "долгая прогулка на рассвете",
        marker: "зефирметка",
        titles: [
            "График дежурств, 48-я неделя",
            "Договор поставки топлива",
            "Донесение о происшествии № 17",
            "Заявление на отпуск, Петров",
            "Опись имущества подразделения",
            "План подготовки на декабрь",
            "Акт осмотра транспорта",
        ],
        note_online: "Сверено с графиком",
        note_offline: "Подписано в поле, без связи",
        online: "В сети",
        everything_sent: "всё отправлено",
        offline: "Нет связи",
        waiting: "Ожидают отправки",
        batch_summary: "Подписано 5 из 5; с ошибкой: 0.",
    });
}

/// On the unlock screen: "New on this workstation?", the server, the user's sign-in with a fresh
/// authenticator code, and a new vault password, submitted.
fn set_up_from_the_first_run_screen(
    driver: &WebDriver,
    server: &outpost_server::testing::InProcessServer,
    account: &outpost_server::testing::TestAccount,
    user: &str,
    vault_password: &str,
) {
    driver.click_fresh("#setup-open");
    driver.type_into(&driver.wait_for("#connect-address"), &server.base_url);
    driver.type_into(
        &driver.wait_for("#connect-ca"),
        std::str::from_utf8(&server.ca_pem).unwrap(),
    );
    driver.type_into(&driver.wait_for("#connect-user"), user);
    driver.type_into(&driver.wait_for("#connect-password"), &account.password);
    driver.type_into(
        &driver.wait_for("#connect-code"),
        &server.fresh_code(account),
    );
    driver.type_into(&driver.wait_for("#setup-vault-password"), vault_password);
    driver.type_into(&driver.wait_for("#setup-vault-repeat"), vault_password);
    driver.click(&driver.wait_for("#connect-submit"));
}

#[test]
fn a_vault_follows_its_server_to_a_new_address_from_the_settings() {
    let (mut server, account) = server_with_one_document(
        "vera",
        "Memo before the move",
        outpost_pdf::Language::English,
        "before-the-move",
    );
    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    set_up_from_the_first_run_screen(driver, &server, &account, "vera", "vera's long passphrase");
    wait_until("the server's document", Duration::from_secs(60), || {
        (driver.find_all("#doc-list li[data-doc-id]").len() == 1).then_some(())
    });
    let old_address = server.base_url.clone();

    // The server moves to a new host (the same data and CA) and gets a new document meanwhile:
    // at the old address there is nothing, so the vault works offline.
    server.move_to_new_address();
    assert_ne!(server.base_url, old_address);
    let report = sample(
        outpost_pdf::SampleKind::ProcurementContract,
        outpost_pdf::Language::English,
        1,
        8,
        "after-the-move",
    );
    server.document(
        "Contract after the move",
        report,
        outpost_protocol::AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    driver.click_fresh("#sync-now");
    text_when(driver, "#sync-text", "offline at the old address", |t| {
        t.contains("Offline")
    });

    // Settings: the server moved — the form comes filled in with the old address, the pinned CA
    // and the user; the new address and a sign-in move the vault.
    driver.click(&driver.wait_for("#settings-open"));
    let shown = text_when(driver, "#settings-server-address", "the old address", |t| {
        !t.is_empty()
    });
    assert!(shown.contains(&old_address), "{shown}");
    driver.click(&driver.wait_for("#settings-server-move"));
    let address = driver.wait_for("#connect-address");
    assert_eq!(
        driver
            .call("GET", &format!("/element/{address}/property/value"), None)
            .as_str(),
        Some(old_address.as_str())
    );
    driver.type_into(&address, &server.base_url);
    driver.type_into(&driver.wait_for("#connect-password"), &account.password);
    driver.type_into(
        &driver.wait_for("#connect-code"),
        &server.fresh_code(&account),
    );
    driver.click(&driver.wait_for("#connect-submit"));
    let moved = text_when(driver, "#settings-server-address", "the new address", |t| {
        t.contains(&server.base_url)
    });
    assert!(!moved.contains(&old_address), "{moved}");
    wait_until(
        "the document sent after the move",
        Duration::from_secs(60),
        || (driver.find_all("#doc-list li[data-doc-id]").len() == 2).then_some(()),
    );
    text_when(driver, "#sync-text", "online at the new address", |t| {
        t.contains("Online")
    });
    assert_eq!(
        server
            .block_on(server.service.devices(Some("vera")))
            .unwrap()
            .len(),
        1,
        "the same device, not a second enrolment"
    );
}

#[test]
fn a_revision_the_server_refused_is_shown_with_its_reason_and_offered_again_from_the_viewer() {
    // A server that takes documents only a little larger than the one it holds: the signed
    // revision (the document plus a signature) is too large for it.
    let memo = sample(
        outpost_pdf::SampleKind::OperationalReport,
        outpost_pdf::Language::English,
        1,
        9,
        "refusal",
    );
    let mut server = outpost_server::testing::InProcessServer::start_with(
        true,
        outpost_server::service::Policy {
            max_document_bytes: memo.len() + 2_048,
            ..outpost_server::service::Policy::default()
        },
    );
    server.move_clock_to_system_time();
    server.unit("North");
    let account = server.account("vera", outpost_protocol::Role::Staff, Some("North"));
    server.document(
        "Memo to sign",
        memo,
        outpost_protocol::AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let head_at_start = server
        .block_on(server.service.all_documents())
        .unwrap()
        .remove(0)
        .sha256;

    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    set_up_from_the_first_run_screen(driver, &server, &account, "vera", "vera's long passphrase");
    wait_until("the memo", Duration::from_secs(60), || {
        (driver.find_all("#doc-list li[data-doc-id]").len() == 1).then_some(())
    });
    certify_a_key_on_the_server(driver, "Vera Orlova");
    driver.click_fresh("#doc-list li[data-doc-id]");
    driver.wait_for("#signature-list li.empty");
    sign_the_open_document(driver);

    // The push is refused: the list and the viewer say why, and the signature stays here.
    driver.click_fresh("#sync-now");
    let badge = text_when(
        driver,
        "#doc-list li .badge.refused",
        "the refusal badge",
        |t| !t.is_empty(),
    );
    assert!(
        badge.contains("Refused by the server") && badge.contains("larger than"),
        "{badge}"
    );
    driver.click_fresh("#doc-list li[data-doc-id]");
    let notice = text_when(
        driver,
        "#refused-notice",
        "the refusal in the viewer",
        |t| t.contains("larger than"),
    );
    assert!(notice.contains("Offer it again"), "{notice}");
    driver.wait_for("#signature-list li[data-status=valid]");
    std::thread::sleep(Duration::from_secs(1));
    screenshot(
        &running.display,
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-refused.png"),
    );
    let head = |server: &outpost_server::testing::InProcessServer| {
        server
            .block_on(server.service.all_documents())
            .unwrap()
            .remove(0)
            .sha256
    };
    assert_eq!(head(&server), head_at_start, "nothing reached the server");

    // The administrator raises the limit; offered again, the signed revision is taken.
    server.restart_with(outpost_server::service::Policy::default());
    driver.click(&driver.wait_for("#offer-again"));
    driver.click_fresh("#sync-now");
    wait_until(
        "the signed revision on the server",
        Duration::from_secs(60),
        || (head(&server) != head_at_start).then_some(()),
    );
    wait_until("the refusal gone", Duration::from_secs(30), || {
        driver
            .find_all("#doc-list li .badge.refused")
            .is_empty()
            .then_some(())
    });
}

/// "Select unsigned" (expecting `count` selected), then the batch signed with the first key;
/// returns the batch's summary line.
fn sign_the_unsigned_as_a_batch(driver: &WebDriver, count: usize) -> String {
    driver.click_fresh("#select-unsigned");
    wait_until(
        &format!("{count} documents selected"),
        Duration::from_secs(30),
        || {
            let n = driver.script(
                "return [...document.querySelectorAll('#doc-list .doc-select')].filter(b => b.checked).length",
            );
            (n == json!(count)).then_some(())
        },
    );
    driver.click(&driver.wait_for("#batch-open"));
    driver.wait_for("#batch-key option");
    driver.click(&driver.wait_for("#batch-start"));
    text_when(driver, "#batch-summary", "the batch summary", |t| {
        !t.is_empty()
    })
}

#[test]
fn a_long_first_sync_shows_its_progress_and_is_stopped_and_resumed_from_the_window() {
    let mut server = outpost_server::testing::InProcessServer::start_with_ca();
    server.move_clock_to_system_time();
    server.unit("North");
    let account = server.account("lena", outpost_protocol::Role::Staff, Some("North"));
    let volumes = 40;
    for n in 0..volumes {
        let title = format!("Archive volume {n:02}");
        server.document(
            &title,
            outpost_server::testing::sample_pdf(&title, 2_000_000),
            outpost_protocol::AssignmentTarget::Unit {
                name: "North".into(),
            },
        );
    }
    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    set_up_from_the_first_run_screen(driver, &server, &account, "lena", "lena's long passphrase");

    // The indicator counts the documents and bytes as they arrive; "Stop" stops the transfer
    // (once two are here).
    let arrived = |t: &str| -> Option<usize> {
        let rest = t.split("Receiving documents: ").nth(1)?;
        rest.split(' ').next()?.parse().ok()
    };
    let receiving = text_when(driver, "#sync-text", "the transfer", |t| {
        arrived(t).is_some_and(|n| n >= 2)
    });
    assert!(receiving.contains(&format!("of {volumes}")), "{receiving}");
    driver.click_fresh("#sync-cancel:not([hidden])");
    text_when(driver, "#sync-text", "paused", |t| {
        t.contains("Sync paused")
    });
    screenshot(
        &running.display,
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-sync-paused.png"),
    );
    // What arrived before the stop is listed already (stored as it came), the rest is not.
    // (The list draws only the rows in view: its heading counts the documents.)
    let listed = |t: &str| -> Option<usize> {
        let (_, count) = t.rsplit_once('(')?;
        count.trim_end_matches(')').parse().ok()
    };
    let heading = text_when(driver, "#list-pane h2", "what arrived", |t| {
        listed(t).is_some_and(|n| n >= 2)
    });
    assert!(
        listed(&heading).is_some_and(|n| n < volumes),
        "all arrived before the stop: {heading}"
    );
    assert!(driver.find_all("#sync-cancel:not([hidden])").is_empty());

    // "Sync now" goes on from what arrived, to the end.
    driver.click_fresh("#sync-now");
    text_when(driver, "#list-pane h2", "every volume", |t| {
        t.contains(&format!("({volumes})"))
    });
    text_when(driver, "#sync-text", "everything sent", |t| {
        t.contains("Online") && t.contains("everything sent")
    });
    server.stop();
}

/// A generated sample PDF (pdfium writes it) whose text carries `marker`.
fn sample(
    kind: outpost_pdf::SampleKind,
    language: outpost_pdf::Language,
    pages: u32,
    seed: u64,
    marker: &str,
) -> Vec<u8> {
    outpost_pdf::PdfEngine::start_default()
        .unwrap()
        .write_sample(&outpost_pdf::SampleSpec {
            kind,
            language,
            pages,
            seed,
            marker: Some(marker.to_owned()),
        })
        .unwrap()
}

/// Page-side measures for the accessibility test: WCAG 2 contrast of every piece of text against
/// the background it is drawn on, and whether the focused control shows a focus ring that stands
/// out (at least 2 px, 3:1 against what is around it).
const READABILITY_SCRIPT: &str = r#"
const parse = (c) => { const m = /rgba?\(([^)]+)\)/.exec(c || ''); if (!m) return null;
  const p = m[1].split(',').map((v) => parseFloat(v)); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
const luminance = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
const background = (element) => { const layers = [];
  for (let n = element; n; n = n.parentElement) { const c = parse(getComputedStyle(n).backgroundColor);
    if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
  let bg = [255, 255, 255, 1]; for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg); return bg; };
const ratio = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
const describe = (e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : ''} "${(e.textContent || e.getAttribute('aria-label') || '').trim().slice(0, 30)}"`;
window.__readability = {
  unreadable() {
    const failures = []; const seen = new Set();
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const text = walker.currentNode; const e = text.parentElement;
      if (!text.textContent.trim() || !e || seen.has(e)) continue;
      seen.add(e);
      // The pages' own text layer is transparent on purpose (the page image shows the text).
      if (e.closest('#pages')) continue;
      const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
      if (r.width === 0 || r.height === 0 || s.visibility !== 'visible') continue;
      // Controls that cannot be used are exempt (WCAG 1.4.3).
      if (e.closest('[disabled], [aria-disabled="true"]')) continue;
      const fg = parse(s.color); if (!fg || fg[3] === 0) continue;
      const bg = background(e); const got = ratio(over(fg, bg), bg);
      const size = parseFloat(s.fontSize); const bold = parseInt(s.fontWeight, 10) >= 700;
      const needed = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
      if (got < needed) failures.push(`${describe(e)} ${got.toFixed(2)} < ${needed}`);
    }
    return failures;
  },
  markControls() {
    const controls = [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
      .filter((e) => e.tabIndex >= 0 && !e.disabled && e.getClientRects().length > 0
        && getComputedStyle(e).visibility === 'visible' && !e.closest('[inert]'));
    controls.forEach((e, i) => { e.dataset.keyboardCheck = String(i); });
    return controls.map(describe);
  },
  focused() {
    const e = document.activeElement; if (!e || e === document.body) return null;
    const s = getComputedStyle(e); const width = parseFloat(s.outlineWidth) || 0; const colour = parse(s.outlineColor);
    const around = background(e.parentElement || e);
    const ring = s.outlineStyle !== 'none' && width >= 2 && colour !== null && ratio(over(colour, around), around) >= 3;
    return [e.dataset.keyboardCheck ?? null, ring, describe(e)];
  },
};
return true;
"#;

/// Presses Tab until focus comes back to where it started: every control the page marked must
/// be reached, each showing a focus ring that stands out. Returns what failed.
fn keyboard_walk(driver: &WebDriver) -> Vec<String> {
    let controls: Vec<String> =
        serde_json::from_value(driver.script("return window.__readability.markControls()"))
            .unwrap();
    let mut reached = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    let mut first: Option<String> = None;
    for _ in 0..controls.len() + 20 {
        let answer = driver.call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": "\u{E004}"}, {"type": "keyUp", "value": "\u{E004}"},
            ]}]})),
        );
        assert!(answer.get("error").is_none(), "Tab refused: {answer}");
        let focused = driver.script("return window.__readability.focused()");
        let Some(index) = focused[0].as_str().map(str::to_owned) else {
            continue;
        };
        if first.as_deref() == Some(index.as_str()) {
            break;
        }
        first.get_or_insert(index.clone());
        let first_time_here = reached.insert(index);
        if first_time_here && focused[1] != json!(true) {
            failures.push(format!("no visible focus ring: {}", focused[2]));
        }
    }
    for (i, control) in controls.iter().enumerate() {
        if !reached.contains(&i.to_string()) {
            failures.push(format!("not reached by Tab: {control}"));
        }
    }
    failures
}

#[test]
fn every_control_is_reached_by_the_keyboard_with_a_visible_focus_and_all_text_is_readable() {
    let data = tempfile::tempdir().unwrap();
    let running = start_app(data.path(), &[]);
    let driver = &running.driver;
    let check = |screen: &str| {
        driver.script(READABILITY_SCRIPT);
        let mut failures = keyboard_walk(driver);
        failures.extend(
            serde_json::from_value::<Vec<String>>(
                driver.script("return window.__readability.unreadable()"),
            )
            .unwrap()
            .into_iter()
            .map(|f| format!("contrast below WCAG AA: {f}")),
        );
        assert!(failures.is_empty(), "{screen}:\n{}", failures.join("\n"));
    };

    driver.wait_for("#unlock-user");
    check("the unlock screen");

    // The first-run form (connect to a server, sign in, set the vault password); the page is
    // loaded again to come back from it.
    driver.click_fresh("#setup-open");
    driver.wait_for("#connect-address");
    check("the first-run form");
    driver.script("location.reload();");

    unlock_demo_and_wait_for_its_documents(driver);
    let items = driver.find_all("#doc-list li");
    driver.click(&items[0]);
    wait_for_a_rendered_page(driver);
    check("the documents with one open");

    driver.click(&driver.wait_for("#sign-open"));
    // The key, token and PIN controls come when the dialog has asked the engine for them.
    driver.wait_for("#sign-key");
    check("the sign dialog");

    driver.click_fresh("#select-unsigned");
    wait_until("documents selected", Duration::from_secs(30), || {
        let n = driver.script(
            "return [...document.querySelectorAll('#doc-list .doc-select')].filter(b => b.checked).length",
        );
        (n.as_u64().unwrap_or(0) > 0).then_some(())
    });
    driver.click(&driver.wait_for("#batch-open"));
    driver.wait_for("#batch-start");
    check("the batch screen");

    driver.click(&driver.wait_for("#settings-open"));
    driver.wait_for("#settings-inbox");
    check("the settings");

    driver.click(&driver.wait_for("#keys-open"));
    driver.wait_for("#key-name");
    check("the signing keys");

    // The tutorial, from the unlock screen: its banner, its panel of lessons and the practice
    // server's switch are reached and readable too.
    driver.click(&driver.wait_for("#lock"));
    driver.type_into(&driver.wait_for("#unlock-password"), "outpost-demo");
    driver.click(&driver.wait_for("#start-tutorial"));
    driver.wait_for("#training-banner");
    wait_until("the lessons", Duration::from_secs(30), || {
        (driver.find_all("#tutorial-lessons li").len() == 9).then_some(())
    });
    assert_eq!(
        driver.script(
            "const b = document.getElementById('practice-toggle'); return !!b && b.offsetParent !== null && !b.closest('[hidden]');"
        ),
        json!(true),
        "the practice server's switch is shown"
    );
    check("the tutorial");
}

/// The engine on the app's data folder and keyring service, for a test that prepares a vault
/// before the window opens (or reads it after the window closed).
fn workstation_beside_the_app(
    data: &std::path::Path,
    keyring_service: &str,
) -> outpost_workstation::Workstation {
    outpost_workstation::Workstation::new(outpost_workstation::WorkstationConfig {
        data_root: data.to_owned(),
        keyring: std::sync::Arc::new(outpost_workstation::OsKeyring::new(keyring_service)),
        clock: std::sync::Arc::new(outpost_workstation::SystemClock),
        kdf: outpost_workstation::KdfParams::INSECURE_FAST_FOR_TESTS,
        pdf: outpost_workstation::PdfEngine::start_default().unwrap(),
    })
}

fn os_rng() -> outpost_workstation::SharedRng {
    std::sync::Arc::new(std::sync::Mutex::new(Box::new(rand_core::OsRng)))
}

#[test]
fn a_batch_that_stopped_mid_way_is_offered_again_and_finished_in_the_window() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let data = tempfile::tempdir().unwrap();
    let keyring_service = format!("outpost-e2e-batch-{}", std::process::id());
    let pki = judges::TestPki::new();
    let workstation = || workstation_beside_the_app(data.path(), &keyring_service);
    let rng = os_rng;
    let total = 6;
    // A supervisor's vault: six orders and a certified key; a batch over all six stops once the
    // first is signed (as when the user stops it, or the app is closed mid-way).
    let left = {
        let ws = workstation();
        let session = ws.create_vault("petrov", "petrov-password", rng()).unwrap();
        let mut documents = Vec::new();
        for n in 1..=total {
            let title = format!("Order {n}");
            let imported = session
                .import_bytes(
                    outpost_server::testing::sample_pdf(&title, 0),
                    &format!("order-{n}.pdf"),
                )
                .unwrap();
            documents.push(imported.document().id.clone());
        }
        let key = session
            .create_signing_key(
                "Petrov",
                outpost_workstation::KeyAlgorithm::EcdsaP256,
                "Supervisor Petrov",
            )
            .unwrap();
        let issued = pki.issue_for_request("petrov", &key.request_pem);
        session
            .import_certificate(&key.id, issued.as_bytes())
            .unwrap();
        session
            .add_trust_anchor(&std::fs::read(pki.path("ca.crt")).unwrap())
            .unwrap();
        let stop = AtomicBool::new(false);
        let report = session
            .sign_batch(
                &outpost_workstation::BatchRequest {
                    batch_id: "orders-of-the-day".into(),
                    documents,
                    options: outpost_workstation::SignOptions::invisible(&key.id, "Approved"),
                    parallelism: 1,
                    token: None,
                },
                &|progress| {
                    if progress.done >= 1 {
                        stop.store(true, Ordering::SeqCst);
                    }
                },
                &stop,
            )
            .unwrap();
        assert!(report.cancelled && report.signed < total, "{report:?}");
        let unfinished = session.unfinished_batches().unwrap();
        assert_eq!(unfinished.len(), 1, "{unfinished:?}");
        let left = unfinished[0].documents_left.len();
        assert_eq!(left, total - report.signed);
        session.lock().unwrap();
        left
    };

    let running = start_app(
        data.path(),
        &[("OUTPOST_KEYRING_SERVICE", keyring_service.as_str())],
    );
    let driver = &running.driver;
    driver.type_into(&driver.wait_for("#unlock-user"), "petrov");
    driver.type_into(&driver.wait_for("#unlock-password"), "petrov-password");
    driver.click(&driver.wait_for("#unlock-submit"));
    // Unlocked, the window offers to finish the batch, saying how much is left and why it was
    // started.
    let offer = text_when(driver, "#unfinished-batches", "the offer", |t| {
        t.contains(&format!("{left} of its {total}")) || t.contains(&format!("{left} из {total}"))
    });
    assert!(offer.contains("Approved"), "{offer}");
    driver.click(&driver.wait_for("#unfinished-batches .batch-continue"));
    let heading = text_when(driver, "#viewer h2", "the batch panel", |t| {
        t.contains(&left.to_string())
    });
    assert_eq!(
        driver.script("return document.getElementById('unfinished-batches').hidden"),
        json!(true),
        "the offer is hidden while its panel is open: {heading}"
    );
    driver.wait_for("#batch-key option");
    driver.click(&driver.wait_for("#batch-start"));
    let summary = text_when(driver, "#batch-summary", "the batch summary", |t| {
        !t.is_empty()
    });
    assert_eq!(
        driver
            .find_all("#batch-results li[data-result=signed]")
            .len(),
        left,
        "{summary}"
    );
    // Finished: not offered again, and every order is marked signed.
    wait_until("all six marked signed", Duration::from_secs(30), || {
        (driver.find_all("#doc-list li .badge.signed").len() == total).then_some(())
    });
    text_when(driver, "#unfinished-batches", "no offer", str::is_empty);
    drop(running);

    // Each order carries exactly one signature, valid; the batch is over.
    let session = workstation()
        .unlock("petrov", "petrov-password", rng())
        .unwrap();
    assert!(session.unfinished_batches().unwrap().is_empty());
    for document in session.documents().unwrap() {
        let reports = session.validate_document(&document.id).unwrap();
        assert_eq!(reports.len(), 1, "{}: {reports:?}", document.title);
        assert_eq!(
            reports[0].status,
            outpost_workstation::SignatureStatus::Valid,
            "{}",
            document.title
        );
    }
}
