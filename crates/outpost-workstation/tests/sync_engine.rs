//! The background sync engine against a real server on loopback: it syncs by itself and on
//! demand, backs off while the server is unreachable, and stops when the device is revoked.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_protocol::Role;
use outpost_server::service::Actor;
use outpost_server::testing::InProcessServer;
use outpost_workstation::{Language, SampleKind, Session, SyncEngine, SyncSchedule, SyncState};

fn fast() -> SyncSchedule {
    SyncSchedule {
        interval: Duration::from_millis(300),
        first_retry: Duration::from_millis(20),
        max_retry: Duration::from_millis(160),
        change_check: Duration::from_millis(50),
    }
}

/// A tokio runtime of one worker for the engine.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Rounds two minutes apart, failed or not (no second round comes by itself within a test),
/// local changes looked at every 50 ms.
fn patient() -> SyncSchedule {
    SyncSchedule {
        interval: Duration::from_secs(120),
        first_retry: Duration::from_secs(120),
        max_retry: Duration::from_secs(120),
        change_check: Duration::from_millis(50),
    }
}

fn connected(
    server: &InProcessServer,
    username: &str,
    tag: &str,
) -> (
    tempfile::TempDir,
    outpost_workstation::Workstation,
    Arc<Session>,
) {
    let account = server.account(username, Role::Staff, None);
    let (dir, workstation, session) = common::connected(server, &account, tag, 31);
    (dir, workstation, Arc::new(session))
}

/// Waits (up to 20 s) until `done` holds for the engine's state; the last state.
fn wait_for(engine: &SyncEngine, done: impl Fn(&SyncState) -> bool) -> SyncState {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = engine.state();
        if done(&state) {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "the engine never got there: {state:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_engine_syncs_by_itself_and_when_asked() {
    let server = InProcessServer::start();
    let runtime = runtime();
    let (_dir, _workstation, session) = connected(&server, "galina", "engine-sync");
    let first = common::sample(
        SampleKind::PersonnelRecord,
        Language::English,
        1,
        41,
        Some("firstfile"),
    );
    server.document_for("First", first, "galina");
    let schedule = SyncSchedule {
        interval: Duration::from_secs(3600),
        ..fast()
    };
    let engine = SyncEngine::start(runtime.handle(), Arc::clone(&session), schedule);
    let state = wait_for(&engine, |s| s.last_success_ms.is_some());
    assert!(state.online && state.last_error.is_none());
    assert_eq!(session.documents().expect("documents").len(), 1);

    // With an hour between rounds, only "sync now" brings the second document quickly.
    let second = common::sample(
        SampleKind::ProcurementContract,
        Language::English,
        1,
        42,
        Some("secondfile"),
    );
    server.document_for("Second", second, "galina");
    let before = engine.state().attempts;
    engine.sync_now();
    wait_for(&engine, |s| {
        s.attempts > before && !s.running && s.last_success_ms.is_some()
    });
    assert_eq!(session.documents().expect("documents").len(), 2);

    // A local change is sent soon, not at the next round an hour away.
    let before = engine.state().attempts;
    let document = session.documents().expect("documents")[0].id.clone();
    session
        .create_annotation(&document, common::note_draft("send me soon"))
        .expect("a note");
    let sent = wait_for(&engine, |s| {
        s.attempts > before && !s.running && s.pending_operations == 0
    });
    assert!(sent.last_error.is_none(), "{sent:?}");
    assert_eq!(session.pending_operations().expect("pending"), 0);
    runtime.block_on(engine.stop());
}

#[test]
fn an_unreachable_server_is_retried_with_growing_waits_and_a_revoked_device_stops_the_engine() {
    let mut server = InProcessServer::start();
    let runtime = runtime();
    let (_dir, _workstation, session) = connected(&server, "lev", "engine-offline");
    let device = session
        .server_account()
        .expect("account")
        .expect("stored")
        .device_id
        .expect("device");

    // Revoked: the engine reports it and stops by itself.
    server
        .block_on(server.service.revoke_device(Actor::Cli, &device))
        .expect("revoke");
    let engine = SyncEngine::start(runtime.handle(), Arc::clone(&session), fast());
    let state = wait_for(&engine, |s| s.device_revoked);
    assert_eq!(
        state.last_error.map(|e| e.code).as_deref(),
        Some("device_revoked")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !engine.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the engine kept running after the revocation"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // Unreachable: offline, retried again and again, each wait at most the ceiling.
    let (_dir2, _workstation2, other) = connected(&server, "mila", "engine-offline-2");
    server.stop();
    let started = Instant::now();
    let engine = SyncEngine::start(runtime.handle(), Arc::clone(&other), fast());
    let state = wait_for(&engine, |s| s.attempts >= 6 && !s.running);
    let elapsed = started.elapsed();
    assert!(!state.online);
    assert_eq!(
        state.last_error.map(|e| e.code).as_deref(),
        Some("server_unreachable")
    );
    // Six attempts waited at least 10 + 20 + 40 + 80 + 80 ms (the lower halves of the jittered
    // waits): the engine backs off instead of spinning.
    assert!(elapsed >= Duration::from_millis(230), "{elapsed:?}");
    runtime.block_on(engine.stop());
}

#[test]
fn offline_the_count_of_what_waits_follows_the_users_work_between_attempts() {
    let mut server = InProcessServer::start();
    server.unit("North");
    let account = server.account("nina", Role::Staff, Some("North"));
    common::unit_documents(
        &server,
        "Report",
        SampleKind::OperationalReport,
        Language::English,
        0..1,
        "offlinecount",
    );
    let (_dir, _workstation, session) = common::connected(&server, &account, "engine-count", 33);
    session
        .sync_pull(&std::sync::atomic::AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    let document = session.documents().expect("documents")[0].id.clone();
    let session = Arc::new(session);
    let runtime = runtime();

    // The server is gone: after one failed round the engine waits two minutes before the next.
    server.stop();
    let engine = SyncEngine::start(runtime.handle(), Arc::clone(&session), patient());
    let offline = wait_for(&engine, |s| s.attempts == 1 && !s.running && !s.online);
    assert_eq!(offline.pending_operations, 0);

    // Two notes made offline: the indicator's count follows without a round being tried.
    for text in ["first offline note", "second offline note"] {
        session
            .create_annotation(&document, common::note_draft(text))
            .expect("a note");
    }
    let counted = wait_for(&engine, |s| s.pending_operations == 2);
    assert_eq!(counted.attempts, 1, "no round was tried: {counted:?}");
    assert!(!counted.online);
    runtime.block_on(engine.stop());
}

#[test]
fn a_long_transfer_shows_its_progress_and_the_user_can_stop_it_and_resume_it_later() {
    let server = InProcessServer::start();
    server.unit("North");
    let account = server.account("oleg", Role::Staff, Some("North"));
    // Forty documents of about 400 kB: long enough to be seen arriving.
    let total = 40;
    common::unit_documents(
        &server,
        "Register",
        SampleKind::OperationalReport,
        Language::English,
        0..total as u64,
        "transfer",
    );
    let (_dir, _workstation, session) = common::connected(&server, &account, "engine-transfer", 34);
    let session = Arc::new(session);
    let runtime = runtime();
    let engine = SyncEngine::start(runtime.handle(), Arc::clone(&session), patient());

    // The transfer is published as it goes: how many documents and bytes, and which arrives.
    let moving = wait_for(&engine, |s| {
        s.transfer.as_ref().is_some_and(|t| t.documents_done >= 1)
    });
    engine.cancel_transfer();
    let transfer = moving.transfer.expect("a transfer");
    assert_eq!(transfer.documents_total, total);
    assert!(
        transfer.bytes_total > 300_000 * total as u64,
        "{transfer:?}"
    );
    assert!(transfer.bytes_done > 0 && transfer.bytes_done < transfer.bytes_total);
    assert!(
        transfer.current_title.starts_with("Register"),
        "{transfer:?}"
    );

    // Stopped: no transfer shown, paused without an error, and not everything is here.
    let paused = wait_for(&engine, |s| !s.running && s.paused);
    assert_eq!(paused.transfer, None);
    assert_eq!(paused.last_error, None);
    let attempts = paused.attempts;
    let here = session.documents().expect("documents").len();
    assert!(
        here < total,
        "all {here} arrived before the stop took effect"
    );
    // It stays paused (no retry by itself within a second).
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(engine.state().attempts, attempts);

    // Asked again, it resumes and finishes; the transfer is gone from the state.
    engine.sync_now();
    let done = wait_for(&engine, |s| {
        s.attempts > attempts && !s.running && s.last_error.is_none()
    });
    assert!(!done.paused && done.transfer.is_none(), "{done:?}");
    assert_eq!(session.documents().expect("documents").len(), total);
    runtime.block_on(engine.stop());
}

#[test]
fn signed_documents_going_to_the_server_show_their_progress_and_can_be_stopped_and_sent_later() {
    let (server, _) = common::north_reports("Order", Language::English, 50..52, "sending");
    let account = server.account("vera", Role::Supervisor, Some("North"));
    let (_dir, _workstation, session) = common::connected(&server, &account, "engine-send", 35);
    session
        .sync_pull(&std::sync::atomic::AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    let key_id = common::server_certified_key(&session, "Vera");
    let titles: Vec<String> = session
        .documents()
        .expect("documents")
        .into_iter()
        .map(|d| d.title)
        .collect();
    for document in session.documents().expect("documents") {
        session
            .sign_document(
                &document.id,
                &outpost_workstation::SignOptions::invisible(&key_id, "approved"),
            )
            .expect("sign");
    }
    let session = Arc::new(session);
    let waiting = session.pending_operations().expect("pending");

    // The first revision's bytes reach the server, but its answer is held: the round is seen
    // sending, one revision of two, and the user stops it there.
    let held = server.hold_request(
        outpost_protocol::paths::SYNC_UPLOAD_PREFIX,
        1,
        outpost_server::testing::HoldPoint::BeforeAnswering,
    );
    let runtime = runtime();
    let engine = SyncEngine::start(runtime.handle(), Arc::clone(&session), patient());
    assert!(held.wait_until_reached(Duration::from_secs(20)));
    let sending = wait_for(&engine, |s| {
        s.sending
            .as_ref()
            .is_some_and(|t| !t.current_title.is_empty())
    })
    .sending
    .expect("sending");
    assert_eq!((sending.documents_total, sending.documents_done), (2, 0));
    assert!(sending.bytes_total > 0 && sending.bytes_done < sending.bytes_total);
    assert!(titles.contains(&sending.current_title), "{sending:?}");
    engine.cancel_transfer();
    held.release();

    // Stopped between the two uploads: paused without an error, nothing lost, nothing shown.
    let paused = wait_for(&engine, |s| !s.running && s.paused);
    assert_eq!((paused.sending, paused.last_error), (None, None));
    assert_eq!(paused.pending_operations, waiting);
    let attempts = paused.attempts;

    // Asked again, it sends both and nothing waits.
    engine.sync_now();
    let done = wait_for(&engine, |s| {
        s.attempts > attempts && !s.running && s.last_error.is_none()
    });
    assert!(!done.paused && done.sending.is_none(), "{done:?}");
    assert_eq!(done.pending_operations, 0);
    runtime.block_on(engine.stop());
}
