//! A vault connected to a real server on loopback pulls the documents assigned to its user, and
//! purges one when its assignment ends; an expired access token is renewed with the device key.

mod common;

use std::sync::atomic::AtomicBool;

use outpost_protocol::{AssignmentTarget, Role, SecondFactor};
use outpost_server::service::Actor;
use outpost_server::testing::InProcessServer;
use outpost_workstation::server_client::ServerError;
use outpost_workstation::{
    AnnotationEdit, DocumentId, Language, PullProgress, PushReport, SampleKind, SearchRequest,
    Session, WorkstationError,
};

fn found(session: &Session, query: &str) -> usize {
    session
        .search(&SearchRequest {
            query: query.into(),
            ..Default::default()
        })
        .expect("search")
        .len()
}

/// The local document with these bytes.
fn document_with(session: &Session, sha256: &str) -> DocumentId {
    session
        .documents()
        .expect("documents")
        .into_iter()
        .find(|d| d.sha256 == sha256)
        .expect("the document")
        .id
}

#[test]
fn two_devices_of_one_user_edit_the_same_annotation_offline_and_converge() {
    let server = InProcessServer::start();
    let account = server.account("alla", Role::Staff, None);
    let order = common::sample(
        SampleKind::ProcurementContract,
        Language::Russian,
        1,
        11,
        Some("договорнаяпометка"),
    );
    server.document_for("Договор", order.clone(), "alla");
    let (_a_dir, _a_ws, desk) = common::connected(&server, &account, "sync-desk", 21);
    let (_b_dir, _b_ws, laptop) = common::connected(&server, &account, "sync-laptop", 22);
    let never = AtomicBool::new(false);
    desk.sync_pull(&never, &mut |_| {}).expect("pull");
    laptop.sync_pull(&never, &mut |_| {}).expect("pull");
    let desk_doc = document_with(&desk, &common::sha256_hex(&order));
    let laptop_doc = document_with(&laptop, &common::sha256_hex(&order));

    let note = desk
        .create_annotation(&desk_doc, common::note_draft("черновик"))
        .expect("annotate");
    let note_id = note.annotation.id.to_string();
    assert_eq!(desk.sync_push().expect("push").applied, 1);
    laptop
        .sync_pull(&never, &mut |_| {})
        .expect("pull the note");
    let on_laptop = laptop.annotations(&laptop_doc).expect("annotations");
    assert_eq!(on_laptop.len(), 1);

    // Offline, each device edits the note; then both push (in this order) and both pull.
    let edit = |contents: &str| AnnotationEdit {
        contents: Some(contents.into()),
        ..Default::default()
    };
    desk.edit_annotation(&note_id, note.revision, edit("с рабочего места"))
        .expect("edit on the desk");
    laptop
        .edit_annotation(&note_id, on_laptop[0].revision, edit("с ноутбука"))
        .expect("edit on the laptop");
    desk.sync_push().expect("push from the desk");
    let second = laptop.sync_push().expect("push from the laptop");
    assert_eq!(second.applied + second.superseded, 1);
    desk.sync_pull(&never, &mut |_| {}).expect("pull");
    laptop.sync_pull(&never, &mut |_| {}).expect("pull");
    let desk_view = desk.annotations(&desk_doc).expect("annotations");
    let laptop_view = laptop.annotations(&laptop_doc).expect("annotations");
    assert_eq!(desk_view.len(), 1);
    assert_eq!(
        desk_view[0].annotation.contents, laptop_view[0].annotation.contents,
        "the replicas disagree"
    );
    assert_eq!(desk_view[0].revision, laptop_view[0].revision);

    // A deletion on one device reaches the other as a tombstone.
    let current = &laptop_view[0];
    laptop
        .delete_annotation(&current.annotation.id.to_string(), current.revision)
        .expect("delete");
    laptop.sync_push().expect("push the deletion");
    desk.sync_pull(&never, &mut |_| {})
        .expect("pull the deletion");
    assert!(desk.annotations(&desk_doc).expect("annotations").is_empty());
    // Pushing again after a lost answer is harmless: nothing is pending, and the server's state
    // is unchanged.
    assert_eq!(laptop.sync_push().expect("push"), PushReport::default());
}

#[test]
fn a_connected_vault_pulls_its_documents_and_purges_revoked_ones() {
    let server = InProcessServer::start();
    server.unit("North");
    let account = server.account("olga", Role::Staff, Some("North"));
    let report = common::sample(
        SampleKind::OperationalReport,
        Language::Russian,
        2,
        1,
        Some("сводкаальфа"),
    );
    let contract = common::sample(
        SampleKind::ProcurementContract,
        Language::English,
        1,
        2,
        Some("contractbravo"),
    );
    let report_id = server.document(
        "Сводка",
        report.clone(),
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    server.document_for("Contract", contract.clone(), "olga");
    // Someone else's document never arrives.
    server.account("pyotr", Role::Staff, None);
    server.document_for(
        "Not hers",
        common::sample(
            SampleKind::PersonnelRecord,
            Language::English,
            1,
            3,
            Some("forpyotr"),
        ),
        "pyotr",
    );

    let dir = tempfile::tempdir().expect("dir");
    let (workstation, _clock) = common::workstation(dir.path(), "sync-pull");
    let session = common::new_session(&workstation, "olga", "local-password", 5);
    let code = server.fresh_code(&account);
    let user = session
        .connect_server(
            &server.base_url,
            std::str::from_utf8(&server.ca_pem).expect("PEM"),
            "olga",
            &account.password,
            SecondFactor::Totp { code },
            "Olga's laptop",
        )
        .expect("connect");
    assert_eq!(user.username, "olga");
    let stored_account = session.server_account().expect("account").expect("stored");
    assert!(stored_account.device_id.is_some());
    assert!(!format!("{stored_account:?}")
        .contains(&stored_account.access_token.clone().expect("token").0));

    let never = AtomicBool::new(false);
    let mut events = Vec::new();
    let first = session
        .sync_pull(&never, &mut |p| events.push(p))
        .expect("first pull");
    assert_eq!(first.stored.len(), 2);
    assert!(first.purged.is_empty());
    assert!(first.cursor > 0);
    assert!(matches!(
        events.first(),
        Some(PullProgress::Planned {
            downloads: 2,
            purges: 0,
            bytes,
        }) if *bytes > 0
    ));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, PullProgress::Arrived { .. }))
            .count(),
        2
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, PullProgress::Downloading { done, total, .. } if done == total)));
    // The bytes are the server's, whole; the text is searchable offline.
    let documents = session.documents().expect("documents");
    assert_eq!(documents.len(), 2);
    let shas: Vec<&str> = documents.iter().map(|d| d.sha256.as_str()).collect();
    assert!(shas.contains(&common::sha256_hex(&report).as_str()));
    assert!(shas.contains(&common::sha256_hex(&contract).as_str()));
    assert_eq!(found(&session, "сводкаальфа"), 1);
    assert_eq!(found(&session, "contractbravo"), 1);
    assert_eq!(found(&session, "forpyotr"), 0);

    // Signing in again (the session ended, say) uses the enrolled device and keeps the position;
    // signing in as someone else is refused.
    common::connect(&session, &server, &account).expect("sign in again");
    let again_account = session.server_account().expect("account").expect("stored");
    assert_eq!(again_account.device_id, stored_account.device_id);
    assert_eq!(again_account.pull_cursor, first.cursor);
    let other = server.account("stranger", Role::Staff, None);
    let code = server.fresh_code(&other);
    let refused = session.connect_server(
        &server.base_url,
        std::str::from_utf8(&server.ca_pem).expect("PEM"),
        "stranger",
        &other.password,
        SecondFactor::Totp { code },
        "x",
    );
    assert!(refused.is_err_and(|e| e.to_string().contains("syncs as olga")));

    // Nothing changed on the server: nothing new in the vault.
    let again = session.sync_pull(&never, &mut |_| {}).expect("second pull");
    assert!(again.stored.is_empty() && again.purged.is_empty());
    assert_eq!(again.cursor, first.cursor);
    assert_eq!(session.documents().expect("documents").len(), 2);

    // A colleague annotates the unit's document on his own workstation and pushes; Olga's next
    // pull merges his note.
    let colleague = server.account("pavel", Role::Staff, Some("North"));
    let (_pavel_dir, _pavel_ws, pavel) = common::connected(&server, &colleague, "sync-pavel", 9);
    pavel.sync_pull(&never, &mut |_| {}).expect("pavel pulls");
    let pavel_report = document_with(&pavel, &common::sha256_hex(&report));
    let note = pavel
        .create_annotation(&pavel_report, common::note_draft("проверено"))
        .expect("annotate");
    let pushed = pavel.sync_push().expect("push");
    assert_eq!(pushed.applied, 1);
    assert_eq!(
        pavel.sync_push().expect("nothing left"),
        PushReport::default()
    );
    let with_note = session
        .sync_pull(&never, &mut |_| {})
        .expect("pull with a note");
    assert_eq!(with_note.merged_annotations, 1);
    assert!(with_note.cursor > first.cursor);
    let olga_report = document_with(&session, &common::sha256_hex(&report));
    let seen = session.annotations(&olga_report).expect("annotations");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].annotation.id, note.annotation.id);
    assert_eq!(
        (
            seen[0].annotation.author.as_str(),
            seen[0].annotation.contents.as_str()
        ),
        ("pavel", "проверено")
    );
    // Olga cannot change Pavel's note; nothing of hers is waiting to be pushed.
    assert_eq!(session.sync_push().expect("push"), PushReport::default());

    // Olga annotates offline; before she pushes, the assignment ends.
    let unsent = session
        .create_annotation(&olga_report, common::note_draft("не отправлено"))
        .expect("annotate offline");

    // The unit's assignment ends while the access token has expired: the device key renews the
    // session and the document is purged.
    server
        .block_on(server.service.revoke_assignment(
            Actor::Cli,
            &report_id,
            &AssignmentTarget::Unit {
                name: "North".into(),
            },
        ))
        .expect("revoke");
    server.clock.advance(16 * 60);
    let third = session.sync_pull(&never, &mut |_| {}).expect("third pull");
    assert_eq!(third.purged.len(), 1);
    // Her unsent change goes with the document, and she is told: it is in the report and the audit.
    assert_eq!(
        third.discarded_annotations,
        vec![unsent.annotation.id.to_string()]
    );
    let notices = session.purge_notices().expect("notices");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(
        (
            notices[0].discarded_annotations,
            notices[0].discarded_revisions
        ),
        (1, 0)
    );
    assert!(notices[0].refused.is_none());
    assert!(third.cursor > first.cursor);
    assert_eq!(session.documents().expect("documents").len(), 1);
    assert_eq!(found(&session, "сводкаальфа"), 0);
    let renewed = session.server_account().expect("account").expect("stored");
    assert_ne!(
        renewed.access_token.map(|t| t.0),
        stored_account.access_token.map(|t| t.0)
    );
    let audit = session.audit_entries(0, 1000).expect("audit");
    assert!(audit
        .iter()
        .any(|e| e.action == "purge" && e.detail.contains(&report_id)));
    assert!(audit.iter().any(|e| e.action == "server_account"));
    assert!(audit
        .iter()
        .any(|e| e.outcome == "failure" && e.detail.contains("not yet sent were discarded")));
    assert!(session
        .verify_audit_chain()
        .expect("verify")
        .first_broken
        .is_none());

    // The audit chain goes to the server, which finds it continuous; nothing is sent twice.
    assert!(session
        .sync_audit()
        .expect("upload the audit chain")
        .is_empty());
    assert!(session.sync_audit().expect("nothing new").is_empty());
    let device = stored_account.device_id.clone().expect("device");
    assert!(server
        .block_on(server.service.device_audit_problems(&device))
        .expect("problems")
        .is_empty());
}

#[test]
fn a_user_disabled_while_the_workstation_was_offline_finds_the_device_revoked_at_the_next_sync() {
    let server = InProcessServer::start();
    let account = server.account("olga", Role::Staff, None);
    let doc = common::sample(
        SampleKind::PersonnelRecord,
        Language::English,
        1,
        7,
        Some("disabledwhileaway"),
    );
    server.document_for("Personnel file", doc, "olga");
    let dir = tempfile::tempdir().expect("dir");
    let (workstation, clock) = common::workstation(dir.path(), "sync-disabled");
    let session = common::new_session(&workstation, "olga", "local-password", 8);
    common::connect(&session, &server, &account).expect("connect");
    let never = AtomicBool::new(false);
    session.sync_pull(&never, &mut |_| {}).expect("pull");
    let document = session.documents().expect("documents")[0].id.clone();

    // Offline for a day: a note waits. Meanwhile an administrator disables her account.
    clock.advance(24 * 3_600_000);
    server.clock.advance(24 * 3_600);
    session
        .create_annotation(&document, common::note_draft("written away"))
        .expect("note");
    server
        .block_on(server.service.disable_user(Actor::Cli, "olga"))
        .expect("disable");

    // Back online: her session is gone and her refresh finds the device revoked with her — the
    // workstation is told so (and wipes the vault), rather than asked to sign in again.
    let pushed = session.sync_push().expect_err("disabled");
    assert!(pushed.is_device_revoked(), "{pushed}");
    let pulled = session
        .sync_pull(&never, &mut |_| {})
        .expect_err("disabled");
    assert!(pulled.is_device_revoked(), "{pulled}");
    // Nothing of hers was sent under the ended account.
    assert_eq!(session.pending_operations().expect("pending"), 1);
    workstation.remote_wipe(session).expect("wipe");
    assert!(!dir.path().join("vaults").join("olga").exists());
}

#[test]
fn a_revoked_device_and_an_unreachable_server_leave_the_vault_as_it_was() {
    let mut server = InProcessServer::start();
    let account = server.account("ivan", Role::Staff, None);
    let doc = common::sample(
        SampleKind::PersonnelRecord,
        Language::Russian,
        1,
        4,
        Some("личноедело"),
    );
    server.document_for("Личное дело", doc, "ivan");
    let dir = tempfile::tempdir().expect("dir");
    let (workstation, _clock) = common::workstation(dir.path(), "sync-revoked");
    let session = common::new_session(&workstation, "ivan", "local-password", 6);
    common::connect(&session, &server, &account).expect("connect");
    let never = AtomicBool::new(false);
    session.sync_pull(&never, &mut |_| {}).expect("pull");
    let cursor = session
        .server_account()
        .expect("account")
        .expect("stored")
        .pull_cursor;

    let device = session
        .server_account()
        .expect("account")
        .expect("stored")
        .device_id
        .expect("device");
    server
        .block_on(server.service.revoke_device(Actor::Cli, &device))
        .expect("revoke");
    let revoked = session.sync_pull(&never, &mut |_| {}).expect_err("revoked");
    assert_eq!(revoked.code(), "device_revoked");
    assert!(revoked.is_device_revoked());
    assert!(revoked.to_string().contains("revoked"), "{revoked}");
    server.stop();
    let error = session
        .sync_pull(&never, &mut |_| {})
        .expect_err("unreachable");
    assert_eq!(error.code(), "server_unreachable");
    assert!(!error.is_device_revoked());
    // Neither touched the vault: the document and the cursor are as they were.
    assert_eq!(session.documents().expect("documents").len(), 1);
    assert_eq!(
        session
            .server_account()
            .expect("account")
            .expect("stored")
            .pull_cursor,
        cursor
    );

    // The revocation's consequence: remote wipe. The vault's files and its device secret are
    // gone, and it cannot be opened again, not even with the right password.
    let vault_dir = dir.path().join("vaults").join("ivan");
    assert!(vault_dir.exists(), "{}", vault_dir.display());
    workstation.remote_wipe(session).expect("wipe");
    assert!(!vault_dir.exists(), "the vault folder is still there");
    assert!(!workstation
        .users()
        .expect("users")
        .contains(&"ivan".to_string()));
    assert!(workstation
        .unlock("ivan", "local-password", common::rng(1))
        .is_err());
}

#[test]
fn signing_keys_get_certificates_from_the_server_ca_and_signatures_validate() {
    let server = InProcessServer::start_with_ca();
    let account = server.account("nadia", Role::Supervisor, None);
    let order = common::sample(
        SampleKind::OperationalReport,
        Language::English,
        1,
        7,
        Some("toorder"),
    );
    server.document_for("Order", order, "nadia");
    let dir = tempfile::tempdir().expect("dir");
    let (workstation, clock) = common::workstation(dir.path(), "sync-ca");
    // The workstation's clock agrees with the server's (certificates start at the server's now).
    clock.set(server.service.now() * 1000 + 60_000);
    let session = common::new_session(&workstation, "nadia", "local-password", 8);
    common::connect(&session, &server, &account).expect("connect");
    let never = AtomicBool::new(false);
    let pulled = session.sync_pull(&never, &mut |_| {}).expect("pull");
    let document = pulled.stored[0].clone();

    for (algorithm, label) in [
        (outpost_workstation::KeyAlgorithm::EcdsaP256, "P-256"),
        (outpost_workstation::KeyAlgorithm::Rsa3072, "RSA"),
    ] {
        let key = session
            .create_signing_key(label, algorithm, "whatever the workstation asks")
            .expect("key");
        // The CA sets the subject from the server's records, not from the request.
        let certified = session
            .request_signer_certificate(&key.id)
            .expect("certificate");
        let subject = certified.subject.clone().expect("a subject");
        assert!(
            subject.contains("User nadia") && !subject.contains("whatever"),
            "{subject}"
        );
        assert!(certified
            .issuer
            .clone()
            .expect("issuer")
            .contains("Outpost Test Org signing CA"));
        if algorithm == outpost_workstation::KeyAlgorithm::EcdsaP256 {
            session
                .sign_document(
                    &document,
                    &outpost_workstation::SignOptions::invisible(&key.id, "Approved"),
                )
                .expect("sign");
            // The signature validates against the server's CA, now a trust anchor of the vault.
            common::assert_one_valid_signature(&session, &document);
        }
    }
}

#[test]
fn after_weeks_offline_the_user_signs_in_again_and_nothing_waiting_is_lost() {
    let server = InProcessServer::start();
    let account = server.account("roman", Role::Staff, None);
    let pdf = report_for(&server, "Trip report", "roman", 71, "longtrip");
    let (_dir, _workstation, session) = common::connected(&server, &account, "sync-offline", 72);
    let never = AtomicBool::new(false);
    session.sync_pull(&never, &mut |_| {}).expect("pull");
    let document = document_with(&session, &common::sha256_hex(&pdf));

    // Weeks offline: notes pile up; the refresh token (14 days) expires meanwhile.
    for n in 0..3 {
        session
            .create_annotation(&document, common::note_draft(&format!("day {n}")))
            .expect("annotate");
    }
    server.clock.advance(15 * 24 * 3600);
    let error = session.sync_push().expect_err("the session has ended");
    assert_eq!(error.code(), "sign_in_needed");
    assert_eq!(
        session.pending_operations().expect("pending"),
        3,
        "the queue must survive"
    );
    // Nothing is sent under a stale identity; after signing in again, everything goes, once.
    common::connect(&session, &server, &account).expect("sign in again");
    let pushed = session.sync_push().expect("push");
    assert_eq!(pushed.applied, 3);
    assert_eq!(session.pending_operations().expect("pending"), 0);
    assert_eq!(
        session.sync_push().expect("push again"),
        PushReport::default()
    );
}

/// A generated one-page operational report (its `seed`, marked with `marker`) registered as
/// `title` for `username` alone; its bytes.
fn report_for(
    server: &InProcessServer,
    title: &str,
    username: &str,
    seed: u64,
    marker: &str,
) -> Vec<u8> {
    let pdf = common::sample(
        SampleKind::OperationalReport,
        Language::English,
        1,
        seed,
        Some(marker),
    );
    server.document_for(title, pdf.clone(), username);
    pdf
}

#[test]
fn a_renewal_whose_answer_is_lost_is_asked_again_without_a_new_sign_in() {
    let server = InProcessServer::start();
    let account = server.account("lidia", Role::Staff, None);
    let pdf = report_for(&server, "Shift report", "lidia", 73, "lostanswer");
    let (_dir, _workstation, session) =
        common::connected(&server, &account, "sync-lost-answer", 74);
    let never = AtomicBool::new(false);
    session.sync_pull(&never, &mut |_| {}).expect("pull");
    let document = document_with(&session, &common::sha256_hex(&pdf));
    session
        .create_annotation(&document, common::note_draft("written offline"))
        .expect("annotate");

    // The access token expired; the server renews the session, but its answer never arrives.
    server
        .clock
        .advance(server.service.policy().access_token_seconds + 1);
    server.lose_answers_to(outpost_protocol::paths::REFRESH, 1);
    let error = session
        .sync_push()
        .expect_err("the renewal's answer was lost");
    assert_ne!(error.code(), "sign_in_needed", "{error}");
    assert_eq!(session.pending_operations().expect("pending"), 1);
    // The next round renews again with the refresh token the workstation still holds: the server
    // takes it back (the session it answered with was never used) and nobody signs in again.
    let pushed = session.sync_push().expect("push after the lost answer");
    assert_eq!(pushed.applied, 1);
    assert_eq!(session.pending_operations().expect("pending"), 0);
    session.sync_pull(&never, &mut |_| {}).expect("pull");
    let audit = server
        .block_on(server.service.audit_records(0, 1000))
        .expect("audit");
    let actions: Vec<&str> = audit.iter().map(|e| e.record.action.as_str()).collect();
    assert!(actions.contains(&"session.refresh_retried"), "{actions:?}");
    assert!(!actions.contains(&"session.refresh_reused"), "{actions:?}");
}

#[test]
fn a_200_mb_document_arrives_through_broken_connections_resuming_from_what_the_vault_kept() {
    let server = InProcessServer::start_accepting(220 << 20);
    let account = server.account("fyodor", Role::Staff, None);
    // 200 MiB of a plain, recognisable filler: if any of it reached the disk unencrypted, the
    // scan below finds it.
    let pdf = outpost_server::testing::sample_pdf("Gigantic survey", 200 << 20);
    let filler = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    server.document_for("Gigantic survey", pdf.clone(), "fyodor");
    let proxy = outpost_server::testing::FaultyProxy::start(&server.runtime, server.address(), 5);
    let dir = tempfile::tempdir().expect("dir");
    let (workstation, _clock) = common::workstation(dir.path(), "sync-large");
    let mut session = common::new_session(&workstation, "fyodor", "local-password", 8);
    common::connect_to(&session, &server, &proxy.base_url(), &account).expect("connect");

    // From now on every answer breaks somewhere in its first 16 MiB.
    proxy.cut_answers_within(16 << 20);
    let cancel = AtomicBool::new(false);
    // (first, last) byte count reported by each round that downloaded something.
    let mut rounds: Vec<(u64, u64)> = Vec::new();
    let mut failures = 0usize;
    let mut restarted = false;
    let mut cancelled = false;
    let report = loop {
        let mut seen: Option<(u64, u64)> = None;
        // From the fourth round on, until it happens once: a cut may come first.
        let cancel_this_round = rounds.len() >= 3 && !cancelled;
        let resumed_at = rounds.last().map_or(0, |round| round.1);
        let outcome = session.sync_pull(&cancel, &mut |step| {
            if let PullProgress::Downloading { done, total, .. } = step {
                assert_eq!(total, pdf.len() as u64);
                let (first, _) = seen.get_or_insert((done, done));
                seen = Some((*first, done));
                // Once, the user cancels half-way through a round.
                if cancel_this_round && done > resumed_at + (4 << 20) {
                    cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        cancel.store(false, std::sync::atomic::Ordering::Relaxed);
        if let Some(seen) = seen {
            rounds.push(seen);
        }
        match outcome {
            Ok(report) => break report,
            Err(WorkstationError::Server(ServerError::Cancelled)) if cancel_this_round => {
                cancelled = true
            }
            Err(WorkstationError::Server(ServerError::Unreachable { .. })) => failures += 1,
            Err(other) => panic!("unexpected: {other}"),
        }
        assert!(failures < 400, "the download never finished");
        if rounds.len() == 5 && !restarted {
            // Halfway through, the app is closed; nothing it received is on disk in the clear,
            // and after unlocking again the download goes on from where it stopped.
            session.lock().expect("lock");
            for file in common::files_under(dir.path()) {
                let bytes = std::fs::read(&file).expect("read");
                assert!(
                    !bytes.windows(filler.len()).any(|w| w == filler),
                    "plaintext of the download in {}",
                    file.display()
                );
            }
            session = workstation
                .unlock("fyodor", "local-password", common::rng(9))
                .expect("unlock");
            restarted = true;
        }
    };
    eprintln!("{failures} interrupted rounds; each round's first and last byte count: {rounds:?}");
    assert!(restarted && cancelled, "{rounds:?}");
    assert!(
        failures >= 10,
        "only {failures} interrupted rounds: {rounds:?}"
    );
    // Each round went on from the byte the one before had reached (nothing received was asked
    // for again: the bytes that arrived before a break were kept), across the restart and the
    // cancel too; the last one reached the end.
    for pair in rounds.windows(2) {
        let (previous_end, next_first) = (pair[0].1, pair[1].0);
        assert!(
            next_first > previous_end && next_first - previous_end <= 64 * 1024,
            "a round did not resume where the last stopped: {rounds:?}"
        );
    }
    assert_eq!(rounds.last().map(|r| r.1), Some(pdf.len() as u64));
    assert_eq!(report.stored.len(), 1);
    let stored = session.documents().expect("documents");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].sha256, common::sha256_hex(&pdf));
    assert_eq!(stored[0].byte_size, pdf.len() as u64);
    assert_eq!(found(&session, "Gigantic"), 1);
    // The bytes stored are the server's, byte for byte (an audited export shows them).
    let out = tempfile::tempdir().expect("dir");
    let copy = out.path().join("copy.pdf");
    session
        .export_with_annotations(&stored[0].id, &copy)
        .expect("export");
    let exported = std::fs::read(&copy).expect("read the copy");
    assert!(
        exported.starts_with(&pdf),
        "the stored document differs from the server's"
    );
}

#[test]
fn the_first_run_makes_a_vault_connected_to_the_server_and_leaves_nothing_when_refused() {
    let server = InProcessServer::start();
    server.unit("North");
    let account = server.account("vera", Role::Staff, Some("North"));
    common::unit_documents(
        &server,
        "Сводка",
        SampleKind::OperationalReport,
        Language::Russian,
        0..2,
        "перваянастройка",
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let (ws, _clock) = common::workstation(tmp.path(), "first-run");
    let ca_pem = String::from_utf8(server.ca_pem.clone()).expect("PEM");
    let set_up = |vault_password: &str, code: String, seed: u64| {
        ws.set_up(
            &outpost_workstation::WorkstationSetup {
                username: "vera",
                vault_password,
                base_url: &server.base_url,
                ca_pem: &ca_pem,
                server_password: &account.password,
                second_factor: SecondFactor::Totp { code },
                device_name: "Desk 3",
            },
            common::rng(seed),
        )
    };

    // A short vault password is refused before anything is made.
    let refused = set_up("short", server.fresh_code(&account), 1).expect_err("too short");
    assert_eq!(refused.code(), "vault_password_too_short", "{refused}");
    assert!(ws.users().expect("users").is_empty());
    // A code the server does not take leaves no vault behind: the next try starts clean.
    let refused = set_up("vera's long vault phrase", "000000".into(), 2).expect_err("bad code");
    assert_eq!(refused.code(), "invalid_credentials", "{refused}");
    assert!(
        ws.users().expect("users").is_empty(),
        "no half set-up vault"
    );

    // She practised in the tutorial before she had a vault here (a newcomer needs no password).
    let sandbox = ws.open_tutorial("vera", common::rng(5)).expect("tutorial");
    sandbox.start_lesson("lock_and_unlock").expect("lesson");
    sandbox.lock().expect("lock");

    let session =
        set_up("vera's long vault phrase", server.fresh_code(&account), 3).expect("set up");
    let linked = session
        .server_account()
        .expect("account")
        .expect("connected");
    assert_eq!(linked.username, "vera");
    assert!(linked.device_id.is_some(), "this workstation is enrolled");
    session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    assert_eq!(session.documents().expect("documents").len(), 2);
    // Her tutorial progress goes with the first sync.
    session.sync_push().expect("push");
    let trainees = server
        .block_on(server.service.training_overview(None))
        .expect("overview")
        .trainees;
    assert_eq!(trainees.len(), 1, "{trainees:?}");
    assert_eq!(trainees[0].username, "vera");
    session.lock().expect("lock");
    assert_eq!(ws.users().expect("users"), ["vera"]);
    let again = ws
        .unlock("vera", "vera's long vault phrase", common::rng(4))
        .expect("the vault opens with the password chosen at the first run");
    assert_eq!(again.documents().expect("documents").len(), 2);
}

#[test]
fn signing_out_ends_the_servers_session_keeps_waiting_work_and_takes_the_sign_in_again() {
    let server = InProcessServer::start();
    server.unit("North");
    let account = server.account("lev", Role::Staff, Some("North"));
    common::unit_documents(
        &server,
        "Report",
        SampleKind::OperationalReport,
        Language::English,
        0..1,
        "signoutmark",
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let (ws, _clock) = common::workstation(tmp.path(), "sign-out");
    let session = common::new_session(&ws, "lev", "pw-lev", 1);
    common::connect(&session, &server, &account).expect("connect");
    session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    let document = session.documents().expect("documents")[0].id.clone();
    let before = session
        .server_account()
        .expect("account")
        .expect("connected");
    let (old_refresh, _) = before.refresh_token.clone().expect("a refresh token");

    // Signed out with a note still waiting: the server is told, the vault forgets the tokens,
    // and the note stays.
    session
        .create_annotation(&document, common::note_draft("kept across signing out"))
        .expect("a note");
    assert!(session.sign_out().expect("sign out"), "the server was told");
    let after = session
        .server_account()
        .expect("account")
        .expect("still linked");
    assert!(after.access_token.is_none() && after.refresh_token.is_none());
    assert_eq!(after.device_id, before.device_id, "still enrolled");
    let client = outpost_workstation::server_client::ServerClient::new(
        &server.base_url,
        &server.ca_pem,
        std::time::Duration::from_secs(10),
    )
    .expect("client");
    let key = outpost_workstation::server_client::DeviceKey::from_secret_bytes(&after.device_key)
        .expect("device key");
    let device_id = after.device_id.clone().expect("device id");
    match client.refresh(&device_id, &old_refresh, &key) {
        Err(ServerError::Refused { code, .. }) => assert_eq!(code, "invalid_refresh"),
        other => panic!("the old session must be over: {other:?}"),
    }
    let refused = session.sync_push().expect_err("signed out");
    assert_eq!(refused.code(), "sign_in_needed", "{refused}");
    assert_eq!(session.pending_operations().expect("pending"), 1);
    let audit = session.audit_entries(0, 1000).expect("audit");
    assert!(audit
        .iter()
        .any(|e| e.action == "server_account" && e.detail.starts_with("signed out")));

    // Signing in again (the same device) sends what waited.
    common::connect(&session, &server, &account).expect("sign in again");
    let pushed = session.sync_push().expect("push");
    assert_eq!(pushed.applied, 1);
    assert_eq!(
        server
            .block_on(server.service.devices(Some("lev")))
            .expect("devices")
            .len(),
        1
    );
}

#[test]
fn downloads_in_flight_together_renew_an_expired_session_once() {
    let server = InProcessServer::start();
    server.unit("North");
    let account = server.account("zoya", Role::Staff, Some("North"));
    common::unit_documents(
        &server,
        "Сводка",
        SampleKind::OperationalReport,
        Language::Russian,
        300..308,
        "совместнаязагрузка",
    );
    let (_dir, _ws, session) = common::connected(&server, &account, "together", 61);
    let before = session.server_account().expect("account").expect("stored");

    // The access token expires once the round knows what to download: every download in flight
    // is refused with token_expired at once. The server refuses a refresh token used twice (and
    // ends the device's sessions), so the round succeeds only if the downloads share the session
    // one of them renewed instead of each spending the same refresh token.
    let never = AtomicBool::new(false);
    let mut downloads_at_expiry = 0;
    let pulled = session
        .sync_pull(&never, &mut |step| {
            if let PullProgress::Planned { downloads, .. } = step {
                downloads_at_expiry = downloads;
                server.clock.advance(16 * 60);
            }
        })
        .expect("the round renews the session and downloads everything");
    assert_eq!(downloads_at_expiry, 8);
    const { assert!(outpost_workstation::DOWNLOADS_IN_FLIGHT > 1) };
    assert_eq!(pulled.stored.len(), 8);
    assert_eq!(found(&session, "совместнаязагрузка"), 8);
    let after = session.server_account().expect("account").expect("stored");
    assert_ne!(
        after.access_token.map(|t| t.0),
        before.access_token.map(|t| t.0)
    );
    // The renewed session goes on working (its refresh token was not spent twice).
    server.clock.advance(16 * 60);
    session.sync_push().expect("push after another expiry");
    session
        .sync_pull(&never, &mut |_| {})
        .expect("pull after another expiry");
}

/// Runs a pull round that the user stops once `stop_at` documents whose titles `counted` accepts
/// have arrived; checks it ends as cancelled and returns how many documents arrived in all.
fn pull_stopped_after(session: &Session, stop_at: usize, counted: impl Fn(&str) -> bool) -> usize {
    let cancel = AtomicBool::new(false);
    let (mut arrived, mut seen) = (0, 0);
    let stopped = session.sync_pull(&cancel, &mut |step| {
        if let PullProgress::Arrived { title, .. } = step {
            arrived += 1;
            if counted(&title) {
                seen += 1;
                if seen == stop_at {
                    cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    });
    assert!(
        matches!(
            stopped,
            Err(WorkstationError::Server(ServerError::Cancelled))
        ),
        "{stopped:?}"
    );
    arrived
}

/// How many audit entries say a server document is shown through its twin.
fn shown_once(session: &Session) -> usize {
    session
        .audit_entries(0, 1000)
        .expect("audit")
        .iter()
        .filter(|e| e.detail.contains("shown once"))
        .count()
}

#[test]
fn two_server_documents_with_the_same_bytes_arrive_in_one_round() {
    let server = InProcessServer::start();
    server.unit("North");
    let account = server.account("lev", Role::Staff, Some("North"));
    let pdf = common::sample(
        SampleKind::OperationalReport,
        Language::English,
        2,
        404,
        Some("twinbytes"),
    );
    for title in ["Report", "Report (copy)"] {
        server.document(
            title,
            pdf.clone(),
            AssignmentTarget::Unit {
                name: "North".into(),
            },
        );
    }
    common::unit_documents(
        &server,
        "Other",
        SampleKind::PersonnelRecord,
        Language::English,
        410..414,
        "otherbytes",
    );
    let (_dir, _ws, session) = common::connected(&server, &account, "twins", 71);

    // Downloaded together, the twins' bytes are fetched once; the vault keeps one document per
    // bytes, so they are shown once — and the round (which used to fail on them for good) goes
    // through with everything else.
    let never = AtomicBool::new(false);
    let mut arrived = 0;
    session
        .sync_pull(&never, &mut |step| {
            if matches!(step, PullProgress::Arrived { .. }) {
                arrived += 1;
            }
        })
        .expect("one round brings them all");
    assert_eq!(arrived, 6);
    assert_eq!(found(&session, "twinbytes"), 1);
    assert_eq!(found(&session, "otherbytes"), 4);
    assert_eq!(shown_once(&session), 1);
}

#[test]
fn a_twin_kept_from_a_stopped_round_is_not_taken_again() {
    let server = InProcessServer::start();
    server.unit("North");
    let account = server.account("ilya", Role::Staff, Some("North"));
    let twin = outpost_server::testing::sample_pdf("Twin", 2_000);
    for title in ["Twin", "Twin (copy)"] {
        server.document(
            title,
            twin.clone(),
            AssignmentTarget::Unit {
                name: "North".into(),
            },
        );
    }
    // A large document still arriving when the user stops the round.
    server.document(
        "Large",
        outpost_server::testing::sample_pdf("Large", 40_000_000),
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let (_dir, _ws, session) = common::connected(&server, &account, "twin-stop", 73);
    pull_stopped_after(&session, 2, |title| title.starts_with("Twin"));
    assert_eq!(session.documents().expect("documents").len(), 1);
    assert_eq!(shown_once(&session), 1);

    // The cursor did not move, so the next round meets the twins again: the linked one is here,
    // the other is not taken (nor audited) a second time; only the large document is fetched.
    let mut planned = None;
    let rest = session
        .sync_pull(&AtomicBool::new(false), &mut |step| {
            if let PullProgress::Planned { downloads, .. } = step {
                planned = Some(downloads);
            }
        })
        .expect("the next round");
    assert_eq!(planned, Some(1));
    assert_eq!(rest.stored.len(), 1);
    assert_eq!(session.documents().expect("documents").len(), 2);
    assert_eq!(shown_once(&session), 1);
}

#[test]
fn documents_that_arrived_before_a_stop_are_kept_and_the_next_round_brings_the_rest() {
    let server = InProcessServer::start();
    server.unit("North");
    let account = server.account("nina", Role::Staff, Some("North"));
    common::unit_documents(
        &server,
        "Приказ",
        SampleKind::PersonnelRecord,
        Language::Russian,
        500..524,
        "остановкаприказа",
    );
    let (_dir, _ws, session) = common::connected(&server, &account, "stopped", 81);

    // The user stops the first sync after six documents arrived.
    let arrived = pull_stopped_after(&session, 6, |_| true);
    // Every document that arrived is in the vault, listed and found; the others are not.
    let here = session.documents().expect("documents").len();
    assert_eq!(here, arrived);
    assert!((6..24).contains(&here), "{here}");
    assert_eq!(found(&session, "остановкаприказа"), here);

    // The cursor did not move: the next round brings the rest, and only the rest.
    let rest = session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("the next round");
    assert_eq!(rest.stored.len(), 24 - here);
    assert_eq!(session.documents().expect("documents").len(), 24);
    assert_eq!(found(&session, "остановкаприказа"), 24);
}

#[test]
fn a_long_round_lists_its_documents_while_it_runs() {
    let server = InProcessServer::start();
    server.unit("North");
    let account = server.account("vera", Role::Staff, Some("North"));
    let count = outpost_workstation::STORE_EVERY_DOCUMENTS + 20;
    for n in 0..count {
        let title = format!("Volume {n:03}");
        server.document(
            &title,
            outpost_server::testing::sample_pdf(&title, 2_000),
            AssignmentTarget::Unit {
                name: "North".into(),
            },
        );
    }
    let (_dir, _ws, session) = common::connected(&server, &account, "long-round", 91);

    // Each time the round says it stored documents, they are listed already — before the round
    // ends.
    let never = AtomicBool::new(false);
    let mut listed_while_running = Vec::new();
    let pulled = session
        .sync_pull(&never, &mut |step| {
            if let PullProgress::Stored { documents } = step {
                let listed = session.documents().expect("documents").len();
                listed_while_running.push((documents, listed));
            }
        })
        .expect("pull");
    // (Stored every STORE_EVERY_DOCUMENTS, or sooner when STORE_EVERY passed.)
    let (first_stored, first_listed) = *listed_while_running.first().expect("stored while running");
    assert!(
        (1..count).contains(&first_stored),
        "{listed_while_running:?}"
    );
    assert_eq!(first_listed, first_stored);
    assert_eq!(pulled.stored.len(), count);
    assert_eq!(session.documents().expect("documents").len(), count);
}

#[test]
fn the_requests_of_a_sync_round_share_one_connection() {
    let mut server = InProcessServer::start();
    let account = server.account("nina", Role::Staff, None);
    let pdf = report_for(&server, "Duty log", "nina", 81, "oneconnection");
    // Every connection goes through a proxy that counts them (it lets everything through).
    let proxy = outpost_server::testing::FaultyProxy::start(&server.runtime, server.address(), 3);
    let dir = tempfile::tempdir().expect("dir");
    let (workstation, _clock) = common::workstation(dir.path(), "sync-one-connection");
    let session = common::new_session(&workstation, "nina", "local-password", 82);
    common::connect_to(&session, &server, &proxy.base_url(), &account).expect("connect");
    let never = AtomicBool::new(false);
    session.sync_pull(&never, &mut |_| {}).expect("pull");
    let document = document_with(&session, &common::sha256_hex(&pdf));

    // A round with work in it (a note pushed, the pull, the audit chain's new entries), then a
    // quiet one: each opens at most one connection, on a slow link one handshake instead of one
    // per request.
    session
        .create_annotation(&document, common::note_draft("one handshake"))
        .expect("annotate");
    for round in ["with a note to push", "with nothing to do"] {
        let before = proxy.connections();
        session.sync_push().expect("push");
        session.sync_pull(&never, &mut |_| {}).expect("pull");
        session.sync_audit().expect("audit");
        let opened = proxy.connections() - before;
        assert!(opened <= 1, "the round {round} opened {opened} connections");
    }
    assert_eq!(session.pending_operations().expect("pending"), 0);

    // The server restarted (its connections closed): the next round connects again on its own.
    server.start_again();
    // Once the closing has reached the workstation's side (a close still on its way when a kept
    // connection is taken fails that request: see ARCHITECTURE.md).
    proxy.wait_until_all_closed(std::time::Duration::from_secs(10));
    session.sync_push().expect("push after the restart");
    session
        .sync_pull(&never, &mut |_| {})
        .expect("pull after the restart");
}

#[test]
fn after_a_long_offline_spell_the_session_is_renewed_before_any_change_is_sent() {
    let mut server = InProcessServer::start();
    let account = server.account("timur", Role::Staff, None);
    let pdf = report_for(&server, "Night report", "timur", 77, "longoffline");
    let (_dir, _workstation, clock, session) =
        common::connected_in_step(&server, &server.base_url, &account, "sync-long-offline", 78);
    let never = AtomicBool::new(false);
    session.sync_pull(&never, &mut |_| {}).expect("pull");
    let document = document_with(&session, &common::sha256_hex(&pdf));
    session
        .create_annotation(&document, common::note_draft("written offline"))
        .expect("annotate");

    // Two hours offline, by both clocks: the access token (15 minutes) ran out long ago.
    server.record_requests();
    server.clock.advance(2 * 3600);
    clock.advance(2 * 3600 * 1000);
    let pushed = session.sync_push().expect("push");
    assert_eq!(pushed.applied, 1);
    // The renewal came first: nothing was sent under the expired token (it would have been
    // refused, then sent again).
    let paths: Vec<String> = server
        .recorded_requests()
        .into_iter()
        .map(|r| r.uri.split('?').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        paths,
        vec![
            outpost_protocol::paths::REFRESH.to_string(),
            outpost_protocol::paths::SYNC_PUSH.to_string()
        ],
        "{paths:?}"
    );
}
