//! The HTTP API over real HTTPS on loopback, on both storage backends: authorization of every
//! endpoint, TOTP and lockout, device-bound refresh, and bad input.

mod support;

use outpost_protocol as wire;
use outpost_protocol::{AssignmentTarget, Role};
use outpost_server::service::{Actor, Policy};
use serde_json::{json, Value};
use support::{sample_pdf, Backend, DeviceKey, Reply, TestServer};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Backend::Postgres) } )*
        }
    };
}

on_both_backends!(
    every_endpoint_refuses_missing_forged_expired_and_revoked_tokens,
    users_see_only_documents_assigned_to_them_or_their_unit,
    roles_are_enforced_and_refused_requests_store_nothing,
    totp_rejects_wrong_reused_and_out_of_window_codes,
    repeated_failures_lock_the_account_until_unlocked_or_expired,
    refresh_needs_the_device_key_and_a_reused_token_ends_the_session,
    a_refresh_whose_answer_was_lost_is_asked_again_and_the_lost_session_never_works,
    an_enrolled_device_signs_in_only_with_its_own_key,
    bad_input_gets_a_clear_4xx_and_nothing_is_stored,
    pull_delivers_what_became_visible_or_invisible_in_complete_pages,
    content_downloads_resume_at_any_byte,
    pushed_annotations_apply_once_merge_by_clock_and_reach_others_by_pull,
    uploaded_audit_chains_are_checked_for_gaps_breaks_and_rewrites,
    uploads_resume_where_the_server_copy_stops_and_are_checked_by_hash,
    pushed_revisions_compare_and_swap_and_losers_stay_as_conflict_branches,
);

/// Units North and South; alice (staff) and bob (supervisor) in North, carol (staff) in South.
fn north_and_south(server: &TestServer) -> [support::TestUser; 3] {
    server.unit("North");
    server.unit("South");
    [
        server.user("alice", Role::Staff, Some("North")),
        server.user("bob", Role::Supervisor, Some("North")),
        server.user("carol", Role::Staff, Some("South")),
    ]
}

/// A request: method, path, and a body with its content type.
type Call = (&'static str, String, Option<(&'static str, Vec<u8>)>);

/// A GET or POST to every endpoint that needs a token, with a body each would accept.
fn authenticated_endpoints(document_id: &str) -> Vec<Call> {
    let assignment = serde_json::to_vec(&json!({
        "document_id": document_id, "target": {"kind": "unit", "name": "North"}
    }))
    .expect("json");
    vec![
        ("GET", wire::paths::ME.to_string(), None),
        ("GET", wire::paths::DOCUMENTS.to_string(), None),
        (
            "GET",
            format!("{}{document_id}", wire::paths::DOCUMENT_PREFIX),
            None,
        ),
        (
            "GET",
            format!("{}{document_id}/content", wire::paths::DOCUMENT_PREFIX),
            None,
        ),
        ("POST", wire::paths::LOGOUT.to_string(), None),
        (
            "POST",
            format!("{}?title=Leak", wire::paths::ADMIN_DOCUMENTS),
            Some(("application/pdf", sample_pdf("Leak"))),
        ),
        (
            "POST",
            wire::paths::ADMIN_ASSIGNMENTS.to_string(),
            Some(("application/json", assignment.clone())),
        ),
        (
            "POST",
            wire::paths::ADMIN_ASSIGNMENTS_REVOKE.to_string(),
            Some(("application/json", assignment)),
        ),
        ("GET", wire::paths::ADMIN_AUDIT.to_string(), None),
        (
            "POST",
            wire::paths::CERTIFICATES.to_string(),
            Some(("application/json", br#"{"csr": "MIIB"}"#.to_vec())),
        ),
        ("GET", wire::paths::SYNC_PULL.to_string(), None),
        (
            "POST",
            wire::paths::SYNC_AUDIT.to_string(),
            Some(("application/json", br#"{"entries": []}"#.to_vec())),
        ),
        (
            "POST",
            wire::paths::SYNC_PUSH.to_string(),
            Some(("application/json", br#"{"ops": []}"#.to_vec())),
        ),
    ]
}

fn assert_refused(reply: &Reply, status: u16, code: &str, secrets: &[&str], what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text());
    assert_eq!(reply.code(), code, "{what}");
    for secret in secrets {
        assert!(
            !reply.text().contains(secret),
            "{what}: the error body leaks {secret:?}: {}",
            reply.text()
        );
    }
}

fn every_endpoint_refuses_missing_forged_expired_and_revoked_tokens(backend: Backend) {
    let server = TestServer::start(backend);
    server.unit("North");
    let admin = server.user("root", Role::Admin, None);
    let document = server.document(
        "Personnel file 7",
        AssignmentTarget::User {
            username: "root".into(),
        },
    );
    let secrets = ["Personnel file 7", "root-password-1"];
    let endpoints = authenticated_endpoints(&document);
    let forged = "A".repeat(43);

    for (method, path, body) in &endpoints {
        let reply = server.request(method, path, None, body.clone());
        assert_refused(
            &reply,
            401,
            wire::error_codes::UNAUTHENTICATED,
            &secrets,
            &format!("{method} {path} without a token"),
        );
        let reply = server.request(method, path, Some(&forged), body.clone());
        assert_refused(
            &reply,
            401,
            wire::error_codes::UNAUTHENTICATED,
            &secrets,
            &format!("{method} {path} forged"),
        );
    }

    let session = server.login(&admin, &DeviceKey::new(1));
    assert_eq!(
        server
            .get(wire::paths::ME, Some(&session.access_token))
            .status,
        200
    );
    server
        .clock
        .advance(server.service.policy().access_token_seconds + 1);
    for (method, path, body) in &endpoints {
        let reply = server.request(method, path, Some(&session.access_token), body.clone());
        assert_refused(
            &reply,
            401,
            wire::error_codes::TOKEN_EXPIRED,
            &secrets,
            &format!("{method} {path} expired"),
        );
    }

    let session = server.login(&admin, &DeviceKey::new(2));
    assert_eq!(
        server
            .get(wire::paths::DOCUMENTS, Some(&session.access_token))
            .status,
        200
    );
    server
        .block_on(server.service.revoke_device(Actor::Cli, &session.device_id))
        .expect("revoke");
    for (method, path, body) in &endpoints {
        let reply = server.request(method, path, Some(&session.access_token), body.clone());
        assert_refused(
            &reply,
            401,
            wire::error_codes::DEVICE_REVOKED,
            &secrets,
            &format!("{method} {path} revoked"),
        );
    }
    // Nothing the refused requests carried was stored.
    let titles: Vec<String> = server
        .block_on(server.service.all_documents())
        .expect("list")
        .into_iter()
        .map(|d| d.title)
        .collect();
    assert_eq!(titles, vec!["Personnel file 7".to_string()]);
}

fn document_ids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let list: wire::DocumentList = serde_json::from_slice(&reply.body).expect("a document list");
    let mut ids: Vec<String> = list.documents.into_iter().map(|d| d.id).collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn users_see_only_documents_assigned_to_them_or_their_unit(backend: Backend) {
    let server = TestServer::start(backend);
    let [alice, bob, carol] = north_and_south(&server);
    let personal = server.document(
        "Alice's contract",
        AssignmentTarget::User {
            username: "alice".into(),
        },
    );
    let unit_wide = server.document(
        "North duty roster",
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let southern = server.document(
        "South report",
        AssignmentTarget::User {
            username: "carol".into(),
        },
    );

    let alice_token = server.login(&alice, &DeviceKey::new(1)).access_token;
    let bob_token = server.login(&bob, &DeviceKey::new(2)).access_token;
    let carol_token = server.login(&carol, &DeviceKey::new(3)).access_token;

    assert_eq!(
        document_ids(&server.get(wire::paths::DOCUMENTS, Some(&alice_token))),
        sorted(vec![personal.clone(), unit_wide.clone()])
    );
    assert_eq!(
        document_ids(&server.get(wire::paths::DOCUMENTS, Some(&bob_token))),
        vec![unit_wide.clone()]
    );
    assert_eq!(
        document_ids(&server.get(wire::paths::DOCUMENTS, Some(&carol_token))),
        vec![southern.clone()]
    );

    // The content served is the registered bytes, and only to those it is assigned to.
    let content = server.get(
        &format!("{}{personal}/content", wire::paths::DOCUMENT_PREFIX),
        Some(&alice_token),
    );
    assert_eq!(content.status, 200);
    assert_eq!(content.body, sample_pdf("Alice's contract"));
    for path in [
        format!("{}{personal}", wire::paths::DOCUMENT_PREFIX),
        format!("{}{personal}/content", wire::paths::DOCUMENT_PREFIX),
    ] {
        // A unit member asking for a colleague's personal document, another unit's member too.
        for token in [&bob_token, &carol_token] {
            let reply = server.get(&path, Some(token));
            assert_refused(
                &reply,
                404,
                wire::error_codes::NOT_FOUND,
                &["Alice's contract", &personal[..8]],
                &path,
            );
        }
    }
    let reply = server.get(
        &format!("{}{unit_wide}", wire::paths::DOCUMENT_PREFIX),
        Some(&carol_token),
    );
    assert_refused(
        &reply,
        404,
        wire::error_codes::NOT_FOUND,
        &["North duty roster"],
        "another unit's document",
    );

    // Revoking the unit assignment hides the document from the unit at once.
    server
        .block_on(server.service.revoke_assignment(
            Actor::Cli,
            &unit_wide,
            &AssignmentTarget::Unit {
                name: "North".into(),
            },
        ))
        .expect("revoke");
    assert_eq!(
        document_ids(&server.get(wire::paths::DOCUMENTS, Some(&bob_token))),
        Vec::<String>::new()
    );
    assert_eq!(
        document_ids(&server.get(wire::paths::DOCUMENTS, Some(&alice_token))),
        vec![personal]
    );
    assert_eq!(
        server
            .get(
                &format!("{}{unit_wide}/content", wire::paths::DOCUMENT_PREFIX),
                Some(&bob_token)
            )
            .status,
        404
    );
}

fn roles_are_enforced_and_refused_requests_store_nothing(backend: Backend) {
    let server = TestServer::start(backend);
    server.unit("North");
    let staff = server.user("dmitry", Role::Staff, Some("North"));
    let trainee = server.user("trainee1", Role::Trainee, Some("North"));
    let admin = server.user("root", Role::Admin, None);
    let document = server.document(
        "Order 12",
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let staff_token = server.login(&staff, &DeviceKey::new(1)).access_token;
    let trainee_token = server.login(&trainee, &DeviceKey::new(2)).access_token;
    let admin_token = server.login(&admin, &DeviceKey::new(3)).access_token;
    let audit_before = server
        .block_on(server.service.audit_records(0, 1000))
        .expect("audit")
        .len();

    // Staff may not administer.
    let upload = server.request(
        "POST",
        &format!("{}?title=Forged", wire::paths::ADMIN_DOCUMENTS),
        Some(&staff_token),
        Some(("application/pdf", sample_pdf("Forged"))),
    );
    assert_refused(
        &upload,
        403,
        wire::error_codes::FORBIDDEN,
        &[],
        "staff upload",
    );
    let assign = server.post_json(
        wire::paths::ADMIN_ASSIGNMENTS,
        Some(&staff_token),
        &json!({"document_id": document, "target": {"kind": "user", "username": "dmitry"}}),
    );
    assert_refused(
        &assign,
        403,
        wire::error_codes::FORBIDDEN,
        &[],
        "staff assignment",
    );
    let revoke = server.post_json(
        wire::paths::ADMIN_ASSIGNMENTS_REVOKE,
        Some(&staff_token),
        &json!({"document_id": document, "target": {"kind": "unit", "name": "North"}}),
    );
    assert_refused(
        &revoke,
        403,
        wire::error_codes::FORBIDDEN,
        &[],
        "staff revocation",
    );
    assert_refused(
        &server.get(wire::paths::ADMIN_AUDIT, Some(&staff_token)),
        403,
        wire::error_codes::FORBIDDEN,
        &[],
        "staff audit",
    );
    // Trainees see no real documents, even ones assigned to their unit.
    assert_refused(
        &server.get(wire::paths::DOCUMENTS, Some(&trainee_token)),
        403,
        wire::error_codes::FORBIDDEN,
        &["Order 12"],
        "trainee list",
    );
    assert_refused(
        &server.get(
            &format!("{}{document}/content", wire::paths::DOCUMENT_PREFIX),
            Some(&trainee_token),
        ),
        403,
        wire::error_codes::FORBIDDEN,
        &["Order 12"],
        "trainee content",
    );
    // Nothing changed: one document, still assigned to the unit, no new audit records but logins.
    assert_eq!(
        server
            .block_on(server.service.all_documents())
            .expect("docs")
            .len(),
        1
    );
    assert_eq!(
        document_ids(&server.get(wire::paths::DOCUMENTS, Some(&staff_token))),
        vec![document.clone()]
    );
    let audit_after = server
        .block_on(server.service.audit_records(0, 1000))
        .expect("audit");
    assert_eq!(
        audit_after.len(),
        audit_before,
        "refused requests wrote audit records: {:?}",
        &audit_after[audit_before..]
    );

    // The administrator may, and the audit log records who did it.
    let upload = server.request(
        "POST",
        &format!(
            "{}?title=%D0%9F%D1%80%D0%B8%D0%BA%D0%B0%D0%B7&classification=restricted",
            wire::paths::ADMIN_DOCUMENTS
        ),
        Some(&admin_token),
        Some(("application/pdf", sample_pdf("Prikaz"))),
    );
    assert_eq!(upload.status, 201, "{}", upload.text());
    let info: wire::DocumentInfo = serde_json::from_slice(&upload.body).expect("document info");
    assert_eq!(info.title, "Приказ");
    assert_eq!(info.classification, "restricted");
    let assign = server.post_json(
        wire::paths::ADMIN_ASSIGNMENTS,
        Some(&admin_token),
        &json!({"document_id": info.id, "target": {"kind": "user", "username": "dmitry"}}),
    );
    assert_eq!(assign.status, 201, "{}", assign.text());
    let duplicate = server.post_json(
        wire::paths::ADMIN_ASSIGNMENTS,
        Some(&admin_token),
        &json!({"document_id": info.id, "target": {"kind": "user", "username": "dmitry"}}),
    );
    assert_refused(
        &duplicate,
        409,
        wire::error_codes::CONFLICT,
        &[],
        "duplicate assignment",
    );
    assert_eq!(
        document_ids(&server.get(wire::paths::DOCUMENTS, Some(&staff_token))),
        sorted(vec![document, info.id.clone()])
    );
    let audit: wire::AuditList = serde_json::from_slice(
        &server
            .get(wire::paths::ADMIN_AUDIT, Some(&admin_token))
            .body,
    )
    .expect("audit");
    assert!(audit
        .records
        .iter()
        .any(|r| r.actor == "root" && r.action == "document.registered" && r.subject == info.id));
    assert!(audit.records.iter().any(|r| r.actor == "root"
        && r.action == "assignment.created"
        && r.detail == "user dmitry"));
    assert!(audit
        .records
        .windows(2)
        .all(|pair| pair[0].seq < pair[1].seq));
}

fn login_with_code(
    server: &TestServer,
    user: &support::TestUser,
    code: &str,
    key: &DeviceKey,
) -> Reply {
    server.post_json(
        wire::paths::LOGIN,
        None,
        &json!({
            "username": user.username, "password": user.password,
            "second_factor": {"kind": "totp", "code": code},
            "device": {"kind": "enrol", "name": "W", "public_key": key.public_key()},
        }),
    )
}

fn totp_rejects_wrong_reused_and_out_of_window_codes(backend: Backend) {
    let server = TestServer::start(backend);
    let user = server.user("olga", Role::Staff, None);
    let key = DeviceKey::new(9);
    let now = server.service.now();
    let code_now = server.code(&user);

    let wrong = if code_now == "000000" {
        "000001"
    } else {
        "000000"
    };
    assert_refused(
        &login_with_code(&server, &user, wrong, &key),
        401,
        wire::error_codes::INVALID_CREDENTIALS,
        &[],
        "wrong code",
    );
    assert_refused(
        &login_with_code(&server, &user, "12345", &key),
        401,
        wire::error_codes::INVALID_CREDENTIALS,
        &[],
        "short code",
    );
    // Two steps old, and two steps ahead: outside the one-step window.
    let old = outpost_server::identity::totp_code(&user.totp_secret, now - 60).expect("code");
    let ahead = outpost_server::identity::totp_code(&user.totp_secret, now + 60).expect("code");
    for code in [&old, &ahead] {
        if code != &code_now {
            assert_refused(
                &login_with_code(&server, &user, code, &key),
                401,
                wire::error_codes::INVALID_CREDENTIALS,
                &[],
                "out of window",
            );
        }
    }
    assert_eq!(login_with_code(&server, &user, &code_now, &key).status, 200);
    // The same code again, even within its window, is refused.
    assert_refused(
        &login_with_code(&server, &user, &code_now, &key),
        401,
        wire::error_codes::INVALID_CREDENTIALS,
        &[],
        "reused code",
    );
    // So is the previous step's code once a later one was used.
    server.next_step();
    let previous =
        outpost_server::identity::totp_code(&user.totp_secret, server.service.now() - 30)
            .expect("code");
    assert_refused(
        &login_with_code(&server, &user, &previous, &key),
        401,
        wire::error_codes::INVALID_CREDENTIALS,
        &[],
        "older than last used",
    );
    assert_eq!(
        login_with_code(&server, &user, &server.code(&user), &key).status,
        200
    );

    // A recovery code works once, however it is typed.
    let recovery = user.recovery_codes[3].to_lowercase().replace('-', " ");
    let with_recovery = |code: &str| {
        server.post_json(
            wire::paths::LOGIN,
            None,
            &json!({"username": "olga", "password": user.password,
                    "second_factor": {"kind": "recovery_code", "code": code},
                    "device": {"kind": "enrol", "name": "W", "public_key": key.public_key()}}),
        )
    };
    assert_eq!(with_recovery(&recovery).status, 200);
    assert_refused(
        &with_recovery(&user.recovery_codes[3]),
        401,
        wire::error_codes::INVALID_CREDENTIALS,
        &[],
        "recovery reuse",
    );

    // Without MFA enrolled, a right password still does not sign in.
    server
        .block_on(server.service.reset_second_factor(Actor::Cli, "olga"))
        .expect("reset");
    assert_refused(
        &login_with_code(&server, &user, &server.code(&user), &key),
        403,
        wire::error_codes::MFA_NOT_ENROLLED,
        &[],
        "no MFA",
    );
}

fn repeated_failures_lock_the_account_until_unlocked_or_expired(backend: Backend) {
    let server = TestServer::start(backend);
    let user = server.user("pavel", Role::Staff, None);
    let key = DeviceKey::new(4);
    let threshold = server.service.policy().lockout_threshold;
    let bad_password = |server: &TestServer| {
        server.post_json(
            wire::paths::LOGIN,
            None,
            &json!({"username": "pavel", "password": "not-the-password",
                    "second_factor": {"kind": "totp", "code": server.code(&user)},
                    "device": {"kind": "enrol", "name": "W", "public_key": key.public_key()}}),
        )
    };
    for _ in 0..threshold {
        assert_refused(
            &bad_password(&server),
            401,
            wire::error_codes::INVALID_CREDENTIALS,
            &[],
            "bad password",
        );
    }
    server.next_step();
    let locked = login_with_code(&server, &user, &server.code(&user), &key);
    assert_refused(
        &locked,
        423,
        wire::error_codes::ACCOUNT_LOCKED,
        &["pavel-password-1"],
        "locked",
    );
    let audit = server
        .block_on(server.service.audit_records(0, 1000))
        .expect("audit");
    assert_eq!(
        audit
            .iter()
            .filter(|r| r.record.action == "login.failed" && r.record.subject == "pavel")
            .count() as i64,
        threshold
    );
    assert!(audit
        .iter()
        .any(|r| r.record.action == "login.locked" && r.record.subject == "pavel"));
    assert!(audit
        .iter()
        .any(|r| r.record.action == "login.refused_locked"));

    // An administrator lifts the lock.
    server
        .block_on(server.service.unlock_user(Actor::Cli, "pavel"))
        .expect("unlock");
    server.next_step();
    assert_eq!(
        login_with_code(&server, &user, &server.code(&user), &key).status,
        200
    );

    // Or it ends by itself.
    for _ in 0..threshold {
        bad_password(&server);
    }
    server.next_step();
    assert_eq!(
        login_with_code(&server, &user, &server.code(&user), &key).status,
        423
    );
    server
        .clock
        .advance(server.service.policy().lockout_seconds);
    assert_eq!(
        login_with_code(&server, &user, &server.code(&user), &key).status,
        200
    );
}

fn refresh_request(device_id: &str, refresh_token: &str, key: &DeviceKey) -> serde_json::Value {
    json!({
        "device_id": device_id,
        "refresh_token": refresh_token,
        "signature": key.sign(&wire::device_refresh_message(device_id, refresh_token)),
    })
}

fn a_refresh_whose_answer_was_lost_is_asked_again_and_the_lost_session_never_works(
    backend: Backend,
) {
    let server = TestServer::start(backend);
    let user = server.user("zoya", Role::Staff, None);
    let key = DeviceKey::new(15);
    let session = server.login(&user, &key);
    server
        .clock
        .advance(server.service.policy().access_token_seconds + 1);
    let refresh = |token: &str| {
        server.post_json(
            wire::paths::REFRESH,
            None,
            &refresh_request(&session.device_id, token, &key),
        )
    };
    let as_session = |reply: &Reply| -> wire::Session {
        assert_eq!(reply.status, 200, "{}", reply.text());
        serde_json::from_slice(&reply.body).expect("a session")
    };

    // The server exchanged the token, but its answer was lost on the way: the device, still
    // holding the old token, asks again (twice, as after two broken connections) and is answered.
    let lost = as_session(&refresh(&session.refresh_token));
    let lost_again = as_session(&refresh(&session.refresh_token));
    let answered = as_session(&refresh(&session.refresh_token));
    assert_eq!(
        server
            .get(wire::paths::ME, Some(&answered.access_token))
            .status,
        200
    );
    // The sessions that never arrived are ended: whoever might hold them can do nothing.
    for never_arrived in [&lost, &lost_again] {
        assert_eq!(
            server
                .get(wire::paths::ME, Some(&never_arrived.access_token))
                .code(),
            wire::error_codes::UNAUTHENTICATED
        );
    }
    // The session in use goes on renewing as usual.
    server
        .clock
        .advance(server.service.policy().access_token_seconds + 1);
    let next = as_session(&refresh(&answered.refresh_token));
    assert_eq!(
        server.get(wire::paths::ME, Some(&next.access_token)).status,
        200
    );

    // Once the answer was used, the old token presented again is a copy: the whole login ends.
    let replay = refresh(&session.refresh_token);
    assert_refused(
        &replay,
        401,
        wire::error_codes::INVALID_REFRESH,
        &[],
        "a replay after the answer was used",
    );
    assert_eq!(
        server.get(wire::paths::ME, Some(&next.access_token)).code(),
        wire::error_codes::UNAUTHENTICATED
    );
    // And a lost session's refresh token, presented later, is refused (it was spent when it
    // was taken back).
    assert_refused(
        &refresh(&lost.refresh_token),
        401,
        wire::error_codes::INVALID_REFRESH,
        &[],
        "a taken-back refresh token",
    );
    // The replayed token, presented again and again (a stuck client), stays refused.
    for _ in 0..3 {
        assert_refused(
            &refresh(&session.refresh_token),
            401,
            wire::error_codes::INVALID_REFRESH,
            &[],
            "a replay after the login ended",
        );
    }
    let audit = server
        .block_on(server.service.audit_records(0, 1000))
        .expect("audit");
    let actions: Vec<&str> = audit.iter().map(|e| e.record.action.as_str()).collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "session.refresh_retried")
            .count(),
        2,
        "{actions:?}"
    );
    // Audited: the replay that ended the login, and the lost session's token (never handed
    // over, so whoever presents it holds a copy). The replayed token presented again after the
    // login ended is an older spent token: no entry each time.
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "session.refresh_reused")
            .count(),
        2,
        "{actions:?}"
    );

    // A retry may come only while the lost session's access token would still be valid: later,
    // the spent token is a copy like any other and the login ends.
    let late = server.login(&user, &key);
    let refresh_late = || {
        server.post_json(
            wire::paths::REFRESH,
            None,
            &refresh_request(&late.device_id, &late.refresh_token, &key),
        )
    };
    let _lost = as_session(&refresh_late());
    server
        .clock
        .advance(server.service.policy().access_token_seconds + 1);
    assert_refused(
        &refresh_late(),
        401,
        wire::error_codes::INVALID_REFRESH,
        &[],
        "a retry after the lost session expired",
    );
}

fn refresh_needs_the_device_key_and_a_reused_token_ends_the_session(backend: Backend) {
    let server = TestServer::start(backend);
    let user = server.user("irina", Role::Staff, None);
    let key = DeviceKey::new(5);
    let session = server.login(&user, &key);

    // Signed by another key: refused, and the token is not spent.
    let stolen = refresh_request(
        &session.device_id,
        &session.refresh_token,
        &DeviceKey::new(6),
    );
    assert_refused(
        &server.post_json(wire::paths::REFRESH, None, &stolen),
        401,
        wire::error_codes::INVALID_REFRESH,
        &[],
        "wrong key",
    );

    // After the access token expires, the device renews the session with its key.
    server
        .clock
        .advance(server.service.policy().access_token_seconds + 1);
    assert_eq!(
        server
            .get(wire::paths::ME, Some(&session.access_token))
            .code(),
        wire::error_codes::TOKEN_EXPIRED
    );
    let renewed = server.post_json(
        wire::paths::REFRESH,
        None,
        &refresh_request(&session.device_id, &session.refresh_token, &key),
    );
    assert_eq!(renewed.status, 200, "{}", renewed.text());
    let renewed: wire::Session = serde_json::from_slice(&renewed.body).expect("a session");
    assert_ne!(renewed.refresh_token, session.refresh_token);
    assert_eq!(
        server
            .get(wire::paths::ME, Some(&renewed.access_token))
            .status,
        200
    );

    // The old refresh token presented again: someone has a copy. The whole session ends.
    let replay = server.post_json(
        wire::paths::REFRESH,
        None,
        &refresh_request(&session.device_id, &session.refresh_token, &key),
    );
    assert_refused(
        &replay,
        401,
        wire::error_codes::INVALID_REFRESH,
        &[],
        "reused refresh",
    );
    assert_eq!(
        server
            .get(wire::paths::ME, Some(&renewed.access_token))
            .code(),
        wire::error_codes::UNAUTHENTICATED
    );
    let after = server.post_json(
        wire::paths::REFRESH,
        None,
        &refresh_request(&renewed.device_id, &renewed.refresh_token, &key),
    );
    assert_refused(
        &after,
        401,
        wire::error_codes::INVALID_REFRESH,
        &[],
        "family revoked",
    );

    // A revoked device cannot renew either; it is told so (to wipe its vault).
    let session = server.login(&user, &key);
    server
        .block_on(server.service.revoke_device(Actor::Cli, &session.device_id))
        .expect("revoke");
    let revoked = server.post_json(
        wire::paths::REFRESH,
        None,
        &refresh_request(&session.device_id, &session.refresh_token, &key),
    );
    assert_refused(
        &revoked,
        401,
        wire::error_codes::DEVICE_REVOKED,
        &[],
        "revoked device refresh",
    );

    // Logout ends the session on that device.
    let logout_key = DeviceKey::new(8);
    let session = server.login(&user, &logout_key);
    assert_eq!(
        server
            .request(
                "POST",
                wire::paths::LOGOUT,
                Some(&session.access_token),
                None
            )
            .status,
        204
    );
    assert_eq!(
        server
            .get(wire::paths::ME, Some(&session.access_token))
            .status,
        401
    );
    // Its refresh token presented after the logout is a copy: refused, and audited each time
    // (it was the session's newest).
    let reused = |server: &TestServer| {
        server
            .block_on(server.service.audit_records(0, 1000))
            .expect("audit")
            .iter()
            .filter(|e| e.record.action == "session.refresh_reused")
            .count()
    };
    let before = reused(&server);
    for _ in 0..2 {
        let copied = server.post_json(
            wire::paths::REFRESH,
            None,
            &refresh_request(&session.device_id, &session.refresh_token, &logout_key),
        );
        assert_eq!(copied.status, 401, "{}", copied.text());
    }
    assert_eq!(reused(&server), before + 2);
}

fn an_enrolled_device_signs_in_only_with_its_own_key(backend: Backend) {
    let server = TestServer::start(backend);
    let user = server.user("sergei", Role::Supervisor, None);
    let other = server.user("zoya", Role::Staff, None);
    let key = DeviceKey::new(10);
    let first = server.login(&user, &key);
    let enrolled_login = |server: &TestServer,
                          who: &support::TestUser,
                          device_id: &str,
                          signer: &DeviceKey| {
        server.next_step();
        let factor = wire::SecondFactor::Totp {
            code: server.code(who),
        };
        let signature = signer.sign(&wire::device_login_message(
            device_id,
            &who.username,
            &factor,
        ));
        server.post_json(
            wire::paths::LOGIN,
            None,
            &json!({"username": who.username, "password": who.password, "second_factor": factor,
                    "device": {"kind": "enrolled", "device_id": device_id, "signature": signature}}),
        )
    };
    let wrong_key = enrolled_login(&server, &user, &first.device_id, &DeviceKey::new(11));
    assert_refused(
        &wrong_key,
        401,
        wire::error_codes::INVALID_CREDENTIALS,
        &[],
        "wrong device key",
    );
    // Another user cannot use this device id even with its key.
    let borrowed = enrolled_login(&server, &other, &first.device_id, &key);
    assert_refused(
        &borrowed,
        401,
        wire::error_codes::INVALID_CREDENTIALS,
        &[],
        "another user's device",
    );
    let again = enrolled_login(&server, &user, &first.device_id, &key);
    assert_eq!(again.status, 200, "{}", again.text());
    let again: wire::Session = serde_json::from_slice(&again.body).expect("session");
    assert_eq!(again.device_id, first.device_id);
    assert_eq!(
        server
            .block_on(server.service.devices(Some("sergei")))
            .expect("devices")
            .len(),
        1
    );
}

fn bad_input_gets_a_clear_4xx_and_nothing_is_stored(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        Policy {
            max_document_bytes: 64 * 1024,
            ..support::test_policy()
        },
    );
    let admin = server.user("root", Role::Admin, None);
    let token = server.login(&admin, &DeviceKey::new(1)).access_token;
    let upload = |query: &str, content_type: &str, bytes: Vec<u8>| {
        server.request(
            "POST",
            &format!("{}?{query}", wire::paths::ADMIN_DOCUMENTS),
            Some(&token),
            Some((content_type, bytes)),
        )
    };

    // Malformed, mistyped and oversized JSON.
    let malformed = server.request(
        "POST",
        wire::paths::LOGIN,
        None,
        Some(("application/json", b"{\"username\": ".to_vec())),
    );
    assert_refused(
        &malformed,
        400,
        wire::error_codes::BAD_REQUEST,
        &[],
        "malformed JSON",
    );
    let mistyped = server.post_json(wire::paths::LOGIN, None, &json!({"username": 5}));
    assert_refused(
        &mistyped,
        400,
        wire::error_codes::BAD_REQUEST,
        &[],
        "mistyped JSON",
    );
    let untyped = server.request(
        "POST",
        wire::paths::LOGIN,
        None,
        Some(("text/plain", b"{}".to_vec())),
    );
    assert_refused(
        &untyped,
        400,
        wire::error_codes::BAD_REQUEST,
        &[],
        "no JSON content type",
    );
    let huge = json!({"username": "x".repeat(100 * 1024), "password": "p",
                      "second_factor": {"kind": "totp", "code": "1"}, "device": {"kind": "enrol", "name": "n", "public_key": "k"}});
    assert_refused(
        &server.post_json(wire::paths::LOGIN, None, &huge),
        413,
        wire::error_codes::TOO_LARGE,
        &[],
        "huge JSON",
    );

    // Uploads: too large, not a PDF, a truncated PDF, bad titles.
    let mut big = sample_pdf("Big");
    big.resize(65 * 1024, b' ');
    assert_refused(
        &upload("title=Big", "application/pdf", big),
        413,
        wire::error_codes::TOO_LARGE,
        &[],
        "oversized upload",
    );
    assert_refused(
        &upload(
            "title=Text",
            "application/pdf",
            b"hello, not a pdf".to_vec(),
        ),
        415,
        wire::error_codes::NOT_A_PDF,
        &[],
        "not a PDF",
    );
    let pdf = sample_pdf("Cut");
    assert_refused(
        &upload(
            "title=Cut",
            "application/pdf",
            pdf[..pdf.len() / 2].to_vec(),
        ),
        415,
        wire::error_codes::NOT_A_PDF,
        &[],
        "truncated PDF",
    );
    assert_refused(
        &upload("title=", "application/pdf", sample_pdf("x")),
        400,
        wire::error_codes::BAD_REQUEST,
        &[],
        "empty title",
    );
    assert_refused(
        &upload("title=a%00b", "application/pdf", sample_pdf("x")),
        400,
        wire::error_codes::BAD_REQUEST,
        &[],
        "control character",
    );
    assert_refused(
        &upload("classification=x", "application/pdf", sample_pdf("x")),
        400,
        wire::error_codes::BAD_REQUEST,
        &[],
        "missing title",
    );

    // Path-like and malformed ids never reach storage.
    for path in [
        "/api/v1/documents/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/documents/%2e%2e",
        "/api/v1/documents/1;DROP%20TABLE%20documents",
    ] {
        let reply = server.get(path, Some(&token));
        assert!(
            matches!(reply.status, 400 | 404),
            "{path}: {}",
            reply.status
        );
        assert!(
            matches!(reply.code().as_str(), "bad_request" | "not_found"),
            "{path}: {}",
            reply.text()
        );
    }
    let unknown = server.get("/api/v1/nothing-here", Some(&token));
    assert_refused(
        &unknown,
        404,
        wire::error_codes::NOT_FOUND,
        &[],
        "unknown route",
    );
    let method = server.request("DELETE", wire::paths::DOCUMENTS, Some(&token), None);
    assert_eq!(method.status, 405);
    assert_eq!(method.code(), wire::error_codes::BAD_REQUEST);

    // Nothing of the refused uploads was stored: no document, no blob.
    assert!(server
        .block_on(server.service.all_documents())
        .expect("docs")
        .is_empty());
    let blob_count = walk_files(&server.dir.path().join("blobs"));
    assert_eq!(blob_count, 0);

    // A title that looks like a path, and one in Cyrillic with symbols, are kept as text.
    for title in ["../../etc/passwd", "Приказ № 5 — «Об отпуске» ✓"] {
        let query = format!("title={}", percent(title));
        let reply = upload(&query, "application/pdf", sample_pdf(title));
        assert_eq!(reply.status, 201, "{}", reply.text());
        let info: wire::DocumentInfo = serde_json::from_slice(&reply.body).expect("info");
        assert_eq!(info.title, title);
    }
    assert!(!server.dir.path().join("etc").exists());
    assert_eq!(walk_files(&server.dir.path().join("blobs")), 2);
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn walk_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            if entry.path().is_dir() {
                walk_files(&entry.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn login_attempts_from_one_address_are_throttled() {
    let server = TestServer::start_with(
        Backend::Sqlite,
        Policy {
            login_attempts_per_minute: 3,
            ..support::test_policy()
        },
    );
    let user = server.user("anna", Role::Staff, None);
    let key = DeviceKey::new(1);
    for _ in 0..3 {
        assert_eq!(login_with_code(&server, &user, "000000", &key).status, 401);
    }
    let throttled = login_with_code(&server, &user, &server.code(&user), &key);
    assert_refused(
        &throttled,
        429,
        wire::error_codes::RATE_LIMITED,
        &[],
        "throttled",
    );
    server.clock.advance(60);
    assert_eq!(
        login_with_code(&server, &user, &server.code(&user), &key).status,
        200
    );
}

#[test]
fn health_answers_and_only_clients_pinning_the_ca_connect() {
    let mut server = TestServer::start(Backend::Sqlite);
    let reply = server.get(wire::paths::HEALTH, None);
    assert_eq!(reply.status, 200);
    let health: wire::Health = serde_json::from_slice(&reply.body).expect("health");
    assert_eq!(health.protocol_version, wire::PROTOCOL_VERSION);
    // A client that trusts only the public web roots refuses the private certificate.
    let stranger = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let refused = stranger
        .get(&format!("{}{}", server.base, wire::paths::HEALTH))
        .call();
    assert!(refused.is_err(), "a client without the pinned CA connected");
    // A client pinning another CA refuses it too.
    let other_dir = tempfile::tempdir().expect("dir");
    let other = outpost_server::tls::embedded_pair(other_dir.path(), &[], support::START)
        .expect("other CA");
    let other_ca = std::fs::read(other.ca_certificate.expect("ca")).expect("read");
    let wrong_pin = support::pinned_agent(&other_ca);
    assert!(wrong_pin
        .get(&format!("{}{}", server.base, wire::paths::HEALTH))
        .call()
        .is_err());
    // After a graceful stop, nothing answers.
    server.stop();
    assert!(server
        .agent
        .get(&format!("{}{}", server.base, wire::paths::HEALTH))
        .call()
        .is_err());
}

/// Pulls a whole round from `cursor` with pages of `limit`; the changes and the new cursor.
fn pull_round(
    server: &TestServer,
    token: &str,
    cursor: i64,
    limit: i64,
) -> (Vec<wire::DocumentChange>, i64) {
    let mut changes = Vec::new();
    let (mut position, mut after): (i64, Option<String>) = (cursor, None);
    for _ in 0..1000 {
        let mut path = format!("{}?cursor={position}&limit={limit}", wire::paths::SYNC_PULL);
        if let Some(after) = &after {
            path.push_str(&format!("&after={after}"));
        }
        let reply = server.get(&path, Some(token));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let page: wire::PullPage = serde_json::from_slice(&reply.body).expect("a pull page");
        assert!(page.changes.len() as i64 <= limit);
        changes.extend(page.changes);
        if page.complete {
            return (changes, page.next_cursor);
        }
        position = page.next_cursor;
        after = page.next_after;
    }
    panic!("the pull never completed")
}

fn visible_ids(changes: &[wire::DocumentChange]) -> Vec<String> {
    sorted(
        changes
            .iter()
            .filter_map(|c| match c {
                wire::DocumentChange::Visible { document, .. } => Some(document.id.clone()),
                _ => None,
            })
            .collect(),
    )
}

fn removed_ids(changes: &[wire::DocumentChange]) -> Vec<String> {
    sorted(
        changes
            .iter()
            .filter_map(|c| match c {
                wire::DocumentChange::Removed { document_id, .. } => Some(document_id.clone()),
                _ => None,
            })
            .collect(),
    )
}

fn pull_delivers_what_became_visible_or_invisible_in_complete_pages(backend: Backend) {
    let server = TestServer::start(backend);
    server.unit("North");
    server.unit("South");
    let alice = server.user("alice", Role::Staff, Some("North"));
    let carol = server.user("carol", Role::Staff, Some("South"));
    let trainee = server.user("tim", Role::Trainee, Some("North"));
    let mut unit_documents = Vec::new();
    for n in 0..7 {
        unit_documents.push(server.document(
            &format!("North order {n}"),
            AssignmentTarget::Unit {
                name: "North".into(),
            },
        ));
    }
    let personal = server.document(
        "Alice's file",
        AssignmentTarget::User {
            username: "alice".into(),
        },
    );
    let southern = server.document(
        "South report",
        AssignmentTarget::Unit {
            name: "South".into(),
        },
    );
    let alice_token = server.login(&alice, &DeviceKey::new(1)).access_token;
    let carol_token = server.login(&carol, &DeviceKey::new(2)).access_token;

    // A first round in pages of three: everything visible, once each, nothing of another unit.
    let (changes, cursor) = pull_round(&server, &alice_token, 0, 3);
    let mut expected = unit_documents.clone();
    expected.push(personal.clone());
    assert_eq!(visible_ids(&changes), sorted(expected.clone()));
    assert_eq!(changes.len(), expected.len(), "a document came twice");
    assert!(removed_ids(&changes).is_empty());
    let positions: Vec<i64> = changes
        .iter()
        .map(|c| match c {
            wire::DocumentChange::Visible { position, .. }
            | wire::DocumentChange::Removed { position, .. }
            | wire::DocumentChange::Annotation { position, .. } => *position,
        })
        .collect();
    assert!(
        positions.windows(2).all(|p| p[0] <= p[1]),
        "out of order: {positions:?}"
    );
    assert!(!visible_ids(&changes).contains(&southern));
    // Nothing changed: an empty, complete round at the same cursor.
    let (changes, same) = pull_round(&server, &alice_token, cursor, 3);
    assert!(changes.is_empty());
    assert_eq!(same, cursor);

    // Changes after the cursor: a new assignment, a revoked one, and a document that stays
    // visible through the unit although its personal assignment is revoked.
    let late = server.document(
        "Late order",
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    server
        .block_on(server.service.assign(
            Actor::Cli,
            &unit_documents[0],
            &AssignmentTarget::User {
                username: "alice".into(),
            },
        ))
        .expect("assign twice");
    server
        .block_on(server.service.revoke_assignment(
            Actor::Cli,
            &unit_documents[0],
            &AssignmentTarget::User {
                username: "alice".into(),
            },
        ))
        .expect("revoke the personal one");
    server
        .block_on(server.service.revoke_assignment(
            Actor::Cli,
            &personal,
            &AssignmentTarget::User {
                username: "alice".into(),
            },
        ))
        .expect("revoke");
    let (changes, next) = pull_round(&server, &alice_token, cursor, 2);
    assert!(next > cursor);
    assert_eq!(removed_ids(&changes), vec![personal.clone()]);
    assert!(visible_ids(&changes).contains(&late));
    assert!(
        !removed_ids(&changes).contains(&unit_documents[0]),
        "still visible through the unit"
    );
    // Carol's pull never mentions North's documents.
    let (carol_changes, _) = pull_round(&server, &carol_token, 0, 50);
    assert_eq!(visible_ids(&carol_changes), vec![southern]);
    assert!(removed_ids(&carol_changes).is_empty());

    // A cursor beyond the server's position: the server was restored from a backup.
    let ahead = server.get(
        &format!("{}?cursor={}", wire::paths::SYNC_PULL, next + 1000),
        Some(&alice_token),
    );
    assert_refused(
        &ahead,
        409,
        wire::error_codes::CURSOR_AHEAD,
        &[],
        "cursor ahead",
    );
    let bad = server.get(
        &format!("{}?cursor=0&after=..%2Fx", wire::paths::SYNC_PULL),
        Some(&alice_token),
    );
    assert_refused(&bad, 400, wire::error_codes::BAD_REQUEST, &[], "bad after");
    // Trainees pull nothing real: their workstations sync only tutorial progress, so a pull
    // answers, complete and empty, at the server's position.
    let trainee_token = server.login(&trainee, &DeviceKey::new(3)).access_token;
    let reply = server.get(
        &format!("{}?cursor=0", wire::paths::SYNC_PULL),
        Some(&trainee_token),
    );
    assert_eq!(reply.status, 200, "trainee pull: {}", reply.text());
    assert!(!reply.text().contains("North order"), "{}", reply.text());
    let page: wire::PullPage = serde_json::from_str(&reply.text()).unwrap();
    assert!(page.changes.is_empty() && page.complete, "{page:?}");
    assert!(page.next_cursor > 0, "at the server's position: {page:?}");
    // Nor may they read documents.
    assert_refused(
        &server.get(wire::paths::DOCUMENTS, Some(&trainee_token)),
        403,
        wire::error_codes::FORBIDDEN,
        &["North order"],
        "trainee documents",
    );
}

fn content_downloads_resume_at_any_byte(backend: Backend) {
    let server = TestServer::start(backend);
    let user = server.user("vera", Role::Staff, None);
    let id = server.document(
        "Resumable",
        AssignmentTarget::User {
            username: "vera".into(),
        },
    );
    let token = server.login(&user, &DeviceKey::new(1)).access_token;
    let whole = sample_pdf("Resumable");
    let path = format!("{}{id}/content", wire::paths::DOCUMENT_PREFIX);
    let ranged = |range: &str| {
        let url = format!("{}{}", server.base, path);
        let mut response = server
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .header("Range", range)
            .call()
            .expect("request");
        let status = response.status().as_u16();
        let content_range = response
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.body_mut().read_to_vec().expect("body");
        (status, content_range, body)
    };
    // Resume at a handful of offsets: each tail joined to its head is the whole file.
    for offset in [0, 1, 17, whole.len() / 2, whole.len() - 1] {
        let (status, content_range, tail) = ranged(&format!("bytes={offset}-"));
        assert_eq!(status, 206);
        assert_eq!(
            content_range,
            Some(format!(
                "bytes {offset}-{}/{}",
                whole.len() - 1,
                whole.len()
            ))
        );
        let mut joined = whole[..offset].to_vec();
        joined.extend_from_slice(&tail);
        assert!(joined == whole, "resuming at {offset} gave different bytes");
    }
    let (status, _, middle) = ranged("bytes=10-19");
    assert_eq!((status, middle.as_slice()), (206, &whole[10..20]));
    let (status, content_range, _) = ranged(&format!("bytes={}-", whole.len()));
    assert_eq!(status, 416);
    assert_eq!(content_range, Some(format!("bytes */{}", whole.len())));
    let (status, _, _) = ranged("pages=1-2");
    assert_eq!(status, 400);
    // Another user gets no bytes at all.
    let other = server.user("yuri", Role::Staff, None);
    let other_token = server.login(&other, &DeviceKey::new(2)).access_token;
    let url = format!("{}{}", server.base, path);
    let refused = server
        .agent
        .get(&url)
        .header("Authorization", &format!("Bearer {other_token}"))
        .header("Range", "bytes=0-")
        .call()
        .expect("request");
    assert_eq!(refused.status().as_u16(), 404);
}

fn annotation(
    id: &str,
    document_id: &str,
    author: &str,
    clock: i64,
    deleted: bool,
) -> serde_json::Value {
    json!({
        "id": id, "document_id": document_id, "page_no": 1, "kind": "highlight", "author": author,
        "body": "{\"quads\": [[1, 2, 3, 4]]}", "revision": clock, "logical_clock": clock,
        "origin": format!("vault-of-{author}"), "deleted": deleted,
        "created_at_ms": 1_795_478_400_000i64, "modified_at_ms": 1_795_478_400_000i64 + clock,
    })
}

fn push(
    server: &TestServer,
    token: &str,
    ops: Vec<(String, serde_json::Value)>,
) -> Vec<wire::OpOutcome> {
    let ops: Vec<serde_json::Value> = ops
        .into_iter()
        .map(
            |(op_id, a)| json!({"op_id": op_id, "change": {"kind": "annotation", "annotation": a}}),
        )
        .collect();
    let reply = server.post_json(wire::paths::SYNC_PUSH, Some(token), &json!({ "ops": ops }));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let response: wire::PushResponse =
        serde_json::from_slice(&reply.body).expect("a push response");
    response.results.into_iter().map(|r| r.outcome).collect()
}

fn annotations_in(changes: &[wire::DocumentChange]) -> Vec<wire::AnnotationState> {
    changes
        .iter()
        .filter_map(|c| match c {
            wire::DocumentChange::Annotation { annotation, .. } => Some(annotation.clone()),
            _ => None,
        })
        .collect()
}

fn pushed_annotations_apply_once_merge_by_clock_and_reach_others_by_pull(backend: Backend) {
    let server = TestServer::start(backend);
    let [alice, bob, carol] = north_and_south(&server);
    let order = server.document(
        "Order",
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let plan = server.document(
        "Plan",
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let alice_token = server.login(&alice, &DeviceKey::new(1)).access_token;
    let bob_token = server.login(&bob, &DeviceKey::new(2)).access_token;
    let carol_token = server.login(&carol, &DeviceKey::new(3)).access_token;
    let (_, bob_cursor) = pull_round(&server, &bob_token, 0, 50);
    let note = "11111111-1111-4111-8111-111111111111";
    let op = |n: u8| format!("22222222-2222-4222-8222-2222222222{n:02}");

    // Applied once; the same op again changes nothing.
    assert_eq!(
        push(
            &server,
            &alice_token,
            vec![(op(1), annotation(note, &order, "alice", 5, false))]
        ),
        vec![wire::OpOutcome::Applied]
    );
    assert_eq!(
        push(
            &server,
            &alice_token,
            vec![(op(1), annotation(note, &order, "alice", 5, false))]
        ),
        vec![wire::OpOutcome::AlreadyApplied]
    );
    // Bob pulls it.
    let (changes, bob_cursor) = pull_round(&server, &bob_token, bob_cursor, 50);
    let pulled = annotations_in(&changes);
    assert_eq!(pulled.len(), 1);
    assert_eq!(
        (
            pulled[0].id.as_str(),
            pulled[0].logical_clock,
            pulled[0].author.as_str()
        ),
        (note, 5, "alice")
    );

    // An older change loses (and says so); a later one, a deletion, wins and travels as a tombstone.
    let outcomes = push(
        &server,
        &alice_token,
        vec![
            (op(2), annotation(note, &order, "alice", 3, false)),
            (op(3), annotation(note, &order, "alice", 7, true)),
        ],
    );
    assert!(
        matches!(outcomes[0], wire::OpOutcome::Conflict { .. }),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], wire::OpOutcome::Applied);
    let (changes, _) = pull_round(&server, &bob_token, bob_cursor, 50);
    let pulled = annotations_in(&changes);
    assert_eq!(pulled.len(), 1);
    assert!(pulled[0].deleted && pulled[0].logical_clock == 7);

    // Only the author changes an annotation; an id on another document is refused; a user who
    // may not see the document cannot annotate it; bad input is rejected per operation.
    let outcomes = push(
        &server,
        &bob_token,
        vec![
            (op(4), annotation(note, &order, "alice", 9, false)),
            (op(5), annotation(note, &plan, "bob", 9, false)),
            (
                "not-a-uuid".into(),
                annotation(
                    "33333333-3333-4333-8333-333333333333",
                    &order,
                    "bob",
                    1,
                    false,
                ),
            ),
            (
                op(6),
                json!({"id": "44444444-4444-4444-8444-444444444444", "document_id": order, "page_no": 1, "kind": "note", "author": "bob", "body": "{not json", "revision": 1, "logical_clock": 1, "origin": "v", "deleted": false, "created_at_ms": 0, "modified_at_ms": 0}),
            ),
            (
                op(7),
                annotation(
                    "55555555-5555-4555-8555-555555555555",
                    &plan,
                    "bob",
                    1,
                    false,
                ),
            ),
        ],
    );
    let codes: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            wire::OpOutcome::Rejected { code, .. } => code.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            "forbidden",
            "conflict",
            "bad_request",
            "bad_request",
            "Applied"
        ]
    );
    let southern = push(
        &server,
        &carol_token,
        vec![(
            op(8),
            annotation(
                "66666666-6666-4666-8666-666666666666",
                &order,
                "carol",
                1,
                false,
            ),
        )],
    );
    assert!(
        matches!(&southern[0], wire::OpOutcome::Rejected { code, .. } if code == "not_found"),
        "{southern:?}"
    );

    // The same op pushed by two connections at once is applied exactly once.
    let racing = annotation(
        "77777777-7777-4777-8777-777777777777",
        &plan,
        "alice",
        1,
        false,
    );
    let outcomes: Vec<wire::OpOutcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let racing = racing.clone();
                let token = alice_token.clone();
                let server = &server;
                scope.spawn(move || push(server, &token, vec![(op(9), racing)]).remove(0))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == wire::OpOutcome::Applied)
            .count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == wire::OpOutcome::AlreadyApplied)
            .count(),
        3,
        "{outcomes:?}"
    );

    // A document that becomes visible brings the annotations made before.
    let (_, carol_cursor) = pull_round(&server, &carol_token, 0, 50);
    server
        .block_on(server.service.assign(
            Actor::Cli,
            &plan,
            &AssignmentTarget::Unit {
                name: "South".into(),
            },
        ))
        .expect("assign");
    let (changes, _) = pull_round(&server, &carol_token, carol_cursor, 1);
    assert_eq!(visible_ids(&changes), vec![plan.clone()]);
    let mut ids: Vec<String> = annotations_in(&changes).into_iter().map(|a| a.id).collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            "55555555-5555-4555-8555-555555555555".to_string(),
            "77777777-7777-4777-8777-777777777777".to_string()
        ]
    );
    assert!(
        annotations_in(&changes)
            .iter()
            .all(|a| a.document_id == plan),
        "nothing of other documents"
    );
    // Once the document is not Alice's any more, her op applied before is still answered as
    // applied (its first answer may have been lost), a new change is refused as not found, and
    // her op id pushed by someone else is not taken as theirs.
    server
        .block_on(server.service.revoke_assignment(
            Actor::Cli,
            &order,
            &AssignmentTarget::Unit {
                name: "North".into(),
            },
        ))
        .expect("revoke");
    let outcomes = push(
        &server,
        &alice_token,
        vec![
            (op(3), annotation(note, &order, "alice", 7, true)),
            (op(10), annotation(note, &order, "alice", 11, false)),
        ],
    );
    assert_eq!(outcomes[0], wire::OpOutcome::AlreadyApplied, "{outcomes:?}");
    assert!(
        matches!(&outcomes[1], wire::OpOutcome::Rejected { code, .. } if code == "not_found"),
        "{outcomes:?}"
    );
    let borrowed = push(
        &server,
        &carol_token,
        vec![(op(3), annotation(note, &order, "alice", 7, true))],
    );
    assert!(
        matches!(&borrowed[0], wire::OpOutcome::Rejected { code, .. } if code == "not_found"),
        "{borrowed:?}"
    );
}

fn audit_entry(seq: i64, prev_hash: &str, detail: &str) -> wire::AuditEntryUpload {
    let mut entry = wire::AuditEntryUpload {
        seq,
        at_ms: 1_795_478_400_000 + seq,
        actor: "alice".into(),
        action: "view".into(),
        document_id: None,
        outcome: "success".into(),
        detail: detail.into(),
        prev_hash: prev_hash.into(),
        hash: String::new(),
    };
    // The formula itself is checked against the vault's own hashes in the workstation's tests.
    entry.hash = outpost_server::service::audit_entry_hash(&entry);
    entry
}

fn chain(n: i64) -> Vec<wire::AuditEntryUpload> {
    let mut entries = Vec::new();
    let mut prev = "0".repeat(64);
    for seq in 1..=n {
        let entry = audit_entry(seq, &prev, &format!("entry {seq}"));
        prev = entry.hash.clone();
        entries.push(entry);
    }
    entries
}

fn upload(
    server: &TestServer,
    token: &str,
    entries: Vec<wire::AuditEntryUpload>,
) -> wire::AuditUploadResult {
    let reply = server.post_json(
        wire::paths::SYNC_AUDIT,
        Some(token),
        &json!({ "entries": entries }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    serde_json::from_slice(&reply.body).expect("an upload result")
}

fn uploaded_audit_chains_are_checked_for_gaps_breaks_and_rewrites(backend: Backend) {
    let server = TestServer::start(backend);
    let alice = server.user("alice", Role::Staff, None);
    let bob = server.user("bob", Role::Staff, None);
    let alice_session = server.login(&alice, &DeviceKey::new(1));
    let bob_token = server.login(&bob, &DeviceKey::new(2)).access_token;
    let token = alice_session.access_token.clone();
    let entries = chain(9);

    // A clean chain, uploaded in two overlapping parts: nothing to flag.
    let first = upload(&server, &token, entries[..3].to_vec());
    assert_eq!((first.stored_up_to, first.problems.len()), (3, 0));
    let second = upload(&server, &token, entries[..5].to_vec());
    assert_eq!((second.stored_up_to, second.problems.len()), (5, 0));

    // A gap (6 missing), a broken link, a changed entry, and a rewrite of a held position.
    let gap = entries[6].clone();
    let broken = audit_entry(8, &"f".repeat(64), "entry 8");
    let mut tampered = audit_entry(9, &broken.hash, "entry 9");
    tampered.detail = "entry 9, edited afterwards".into();
    let rewritten = audit_entry(2, &entries[0].hash, "entry 2, rewritten");
    let result = upload(&server, &token, vec![gap, broken, tampered, rewritten]);
    let found: Vec<(i64, &str)> = result
        .problems
        .iter()
        .map(|p| (p.seq, p.problem.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![(7, "gap"), (8, "break"), (9, "hash"), (2, "rewritten")]
    );
    assert_eq!(result.stored_up_to, 9);
    let flagged = server
        .block_on(
            server
                .service
                .device_audit_problems(&alice_session.device_id),
        )
        .expect("problems");
    assert_eq!(flagged.len(), 4);
    let audit = server
        .block_on(server.service.audit_records(0, 1000))
        .expect("audit");
    assert_eq!(
        audit
            .iter()
            .filter(|r| r.record.action == "device.audit_problem")
            .count(),
        4
    );

    // Each device has its own chain.
    let bobs = upload(&server, &bob_token, chain(2));
    assert_eq!((bobs.stored_up_to, bobs.problems.len()), (2, 0));
}

fn sha256_hex(bytes: &[u8]) -> String {
    outpost_server::blobs::sha256_hex(bytes)
}

fn upload_path(bytes: &[u8]) -> String {
    format!(
        "{}{}?size={}",
        wire::paths::SYNC_UPLOAD_PREFIX,
        sha256_hex(bytes),
        bytes.len()
    )
}

fn put_part(server: &TestServer, token: &str, whole: &[u8], offset: usize, part: &[u8]) -> Reply {
    server.request(
        "PUT",
        &format!("{}&offset={offset}", upload_path(whole)),
        Some(token),
        Some(("application/octet-stream", part.to_vec())),
    )
}

fn upload_status(server: &TestServer, token: &str, whole: &[u8]) -> wire::UploadStatus {
    let reply = server.get(&upload_path(whole), Some(token));
    assert_eq!(reply.status, 200, "{}", reply.text());
    serde_json::from_slice(&reply.body).expect("an upload status")
}

fn upload_whole(server: &TestServer, token: &str, whole: &[u8]) {
    let reply = put_part(server, token, whole, 0, whole);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let status: wire::UploadStatus = serde_json::from_slice(&reply.body).expect("a status");
    assert!(status.complete);
}

fn uploads_resume_where_the_server_copy_stops_and_are_checked_by_hash(backend: Backend) {
    let server = TestServer::start(backend);
    let user = server.user("vera", Role::Staff, None);
    let other = server.user("oleg", Role::Staff, None);
    let token = server.login(&user, &DeviceKey::new(1)).access_token;
    let other_token = server.login(&other, &DeviceKey::new(2)).access_token;
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();

    let status = upload_status(&server, &token, &bytes);
    assert_eq!((status.received, status.complete), (0, false));
    // A first part, then a part that would leave a hole (refused), then the rest.
    assert_eq!(
        put_part(&server, &token, &bytes, 0, &bytes[..1000]).status,
        200
    );
    assert_eq!(upload_status(&server, &token, &bytes).received, 1000);
    let hole = put_part(&server, &token, &bytes, 5000, &bytes[5000..6000]);
    assert_eq!((hole.status, hole.code().as_str()), (400, "bad_request"));
    assert_eq!(upload_status(&server, &token, &bytes).received, 1000);
    // Another user's upload of the same name is their own: nothing of vera's shows.
    assert_eq!(upload_status(&server, &other_token, &bytes).received, 0);
    // An overlapping resend is harmless.
    assert_eq!(
        put_part(&server, &token, &bytes, 500, &bytes[500..2000]).status,
        200
    );
    assert_eq!(upload_status(&server, &token, &bytes).received, 2000);
    // A part that runs past the declared size is refused.
    let mut too_long = bytes[2000..].to_vec();
    too_long.push(0);
    assert_eq!(
        put_part(&server, &token, &bytes, 2000, &too_long).status,
        400
    );
    let reply = put_part(&server, &token, &bytes, 2000, &bytes[2000..]);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let done: wire::UploadStatus = serde_json::from_slice(&reply.body).expect("a status");
    assert!(done.complete && done.received == bytes.len() as u64);
    // Complete for everyone now (content-addressed), and stored once.
    assert!(upload_status(&server, &other_token, &bytes).complete);
    assert!(server
        .block_on(server.service.blobs().contains(&sha256_hex(&bytes)))
        .expect("blob lookup"));

    // Bytes that do not match their name are thrown away with a clear refusal.
    let liar: Vec<u8> = vec![7u8; 5000];
    let path = format!(
        "{}{}?size={}&offset=0",
        wire::paths::SYNC_UPLOAD_PREFIX,
        sha256_hex(b"something else entirely"),
        liar.len()
    );
    let reply = server.request(
        "PUT",
        &path,
        Some(&token),
        Some(("application/octet-stream", liar)),
    );
    assert_eq!(reply.status, 400);
    assert!(
        reply.text().contains("upload them again"),
        "{}",
        reply.text()
    );
    // Bad names, sizes and an unauthenticated caller.
    for path in [
        format!("{}not-a-hash?size=10", wire::paths::SYNC_UPLOAD_PREFIX),
        format!(
            "{}{}?size=0",
            wire::paths::SYNC_UPLOAD_PREFIX,
            sha256_hex(b"x")
        ),
    ] {
        assert_eq!(server.get(&path, Some(&token)).status, 400, "{path}");
    }
    assert_eq!(server.get(&upload_path(&bytes), None).status, 401);
}

fn revision_op(op_id: &str, document: &str, base: &[u8], update: &[u8]) -> Value {
    let mut whole = base.to_vec();
    whole.extend_from_slice(update);
    json!({"op_id": op_id, "change": {
        "kind": "revision",
        "document_id": document,
        "base_sha256": sha256_hex(base),
        "sha256": sha256_hex(&whole),
        "appended_sha256": sha256_hex(update),
        "cause": "signed",
    }})
}

fn push_ops(server: &TestServer, token: &str, ops: Vec<Value>) -> Vec<wire::OpOutcome> {
    let reply = server.post_json(wire::paths::SYNC_PUSH, Some(token), &json!({ "ops": ops }));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let response: wire::PushResponse =
        serde_json::from_slice(&reply.body).expect("a push response");
    response.results.into_iter().map(|r| r.outcome).collect()
}

fn pushed_revisions_compare_and_swap_and_losers_stay_as_conflict_branches(backend: Backend) {
    let server = TestServer::start(backend);
    let [alice, bob, carol] = north_and_south(&server);
    let id = server.document(
        "Contract",
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let alice_token = server.login(&alice, &DeviceKey::new(1)).access_token;
    let bob_token = server.login(&bob, &DeviceKey::new(2)).access_token;
    let carol_token = server.login(&carol, &DeviceKey::new(3)).access_token;
    let content = |token: &str| {
        let reply = server.get(
            &format!("{}{id}/content", wire::paths::DOCUMENT_PREFIX),
            Some(token),
        );
        assert_eq!(reply.status, 200);
        reply.body
    };
    let head = |token: &str| -> wire::DocumentInfo {
        serde_json::from_slice(
            &server
                .get(
                    &format!("{}{id}", wire::paths::DOCUMENT_PREFIX),
                    Some(token),
                )
                .body,
        )
        .expect("document info")
    };
    let base = content(&alice_token);
    let (_, bob_cursor) = pull_round(&server, &bob_token, 0, 50);
    let op = |n: u8| format!("33333333-3333-4333-8333-3333333333{n:02}");

    // Alice's revision on the head becomes the head, once.
    let alice_update = outpost_server::testing::incremental_update(&base, "signed by alice");
    upload_whole(&server, &alice_token, &alice_update);
    assert_eq!(
        push_ops(
            &server,
            &alice_token,
            vec![revision_op(&op(1), &id, &base, &alice_update)]
        ),
        vec![wire::OpOutcome::Applied]
    );
    assert_eq!(
        push_ops(
            &server,
            &alice_token,
            vec![revision_op(&op(1), &id, &base, &alice_update)]
        ),
        vec![wire::OpOutcome::AlreadyApplied]
    );
    let mut alice_whole = base.clone();
    alice_whole.extend_from_slice(&alice_update);
    assert_eq!(
        content(&bob_token),
        alice_whole,
        "the head is the base plus the update, byte for byte"
    );
    assert_eq!(head(&bob_token).size, alice_whole.len() as u64);
    // Bob pulls the new head.
    let (changes, _) = pull_round(&server, &bob_token, bob_cursor, 50);
    assert!(changes.iter().any(|c| matches!(c,
        wire::DocumentChange::Visible { document, .. } if document.id == id && document.sha256 == sha256_hex(&alice_whole))),
        "{changes:?}");

    // Bob signed the old head offline: his revision loses, is kept as a conflict branch, and a
    // retry of the same op gets the same answer (never "applied").
    let bob_update = outpost_server::testing::incremental_update(&base, "signed by bob");
    upload_whole(&server, &bob_token, &bob_update);
    for _ in 0..2 {
        let outcomes = push_ops(
            &server,
            &bob_token,
            vec![revision_op(&op(2), &id, &base, &bob_update)],
        );
        match &outcomes[..] {
            [wire::OpOutcome::Conflict { head_sha256, .. }] => {
                assert_eq!(
                    head_sha256.as_deref(),
                    Some(sha256_hex(&alice_whole).as_str())
                )
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(content(&alice_token), alice_whole, "the head did not move");
    let mut bob_whole = base.clone();
    bob_whole.extend_from_slice(&bob_update);
    assert!(
        server
            .block_on(server.service.blobs().contains(&sha256_hex(&bob_whole)))
            .expect("lookup"),
        "the losing revision's bytes are kept"
    );
    // A revision on top of the conflict branch is a conflict too (its base is known).
    let bob_again = outpost_server::testing::incremental_update(&bob_whole, "countersigned by bob");
    upload_whole(&server, &bob_token, &bob_again);
    assert!(matches!(
        &push_ops(
            &server,
            &bob_token,
            vec![revision_op(&op(3), &id, &bob_whole, &bob_again)]
        )[..],
        [wire::OpOutcome::Conflict { .. }]
    ));
    // Re-signed on the new head, it applies.
    let bob_resigned =
        outpost_server::testing::incremental_update(&alice_whole, "signed by bob again");
    upload_whole(&server, &bob_token, &bob_resigned);
    assert_eq!(
        push_ops(
            &server,
            &bob_token,
            vec![revision_op(&op(4), &id, &alice_whole, &bob_resigned)]
        ),
        vec![wire::OpOutcome::Applied]
    );

    // Refused, each with a reason, nothing stored: an unknown base, a hash that does not add up,
    // an update never uploaded, a revision passed off as the server's own long-term extension
    // (which would give way to any later push and be audited as the server's), a document the
    // caller may not see.
    let stranger = sample_pdf("Stranger");
    let stranger_update = outpost_server::testing::incremental_update(&stranger, "x");
    upload_whole(&server, &alice_token, &stranger_update);
    let mut lying = revision_op(&op(6), &id, &alice_whole, &bob_resigned);
    lying["change"]["sha256"] = json!(sha256_hex(b"not the whole"));
    let mut head_now = alice_whole.clone();
    head_now.extend_from_slice(&bob_resigned);
    let posing_update = outpost_server::testing::incremental_update(&head_now, "posing");
    upload_whole(&server, &alice_token, &posing_update);
    let mut posing = revision_op(&op(9), &id, &head_now, &posing_update);
    posing["change"]["cause"] = json!(outpost_server::store::LONG_TERM_CAUSE);
    let never_uploaded =
        outpost_server::testing::incremental_update(&alice_whole, "never uploaded");
    let outcomes = push_ops(
        &server,
        &alice_token,
        vec![
            revision_op(&op(5), &id, &stranger, &stranger_update),
            lying,
            revision_op(&op(7), &id, &alice_whole, &never_uploaded),
            posing,
        ],
    );
    assert_eq!(outcomes.len(), 4);
    for outcome in &outcomes {
        assert!(
            matches!(outcome, wire::OpOutcome::Rejected { .. }),
            "{outcomes:?}"
        );
    }
    let outcomes = push_ops(
        &server,
        &carol_token,
        vec![revision_op(&op(8), &id, &base, &alice_update)],
    );
    assert!(
        matches!(&outcomes[..], [wire::OpOutcome::Rejected { code, .. }] if code == "not_found"),
        "{outcomes:?}"
    );
    let mut final_head = alice_whole.clone();
    final_head.extend_from_slice(&bob_resigned);
    assert_eq!(content(&alice_token), final_head);

    // Once the document is not Bob's any more, his ops taken before — the one kept as a conflict
    // branch too — are answered as applied (their first answers may have been lost: his
    // workstation must not tell him they were discarded, the server holds them); a new one is
    // refused as not found.
    server
        .block_on(server.service.revoke_assignment(
            Actor::Cli,
            &id,
            &AssignmentTarget::Unit {
                name: "North".into(),
            },
        ))
        .expect("revoke");
    let bob_late = outpost_server::testing::incremental_update(&final_head, "too late");
    upload_whole(&server, &bob_token, &bob_late);
    let outcomes = push_ops(
        &server,
        &bob_token,
        vec![
            revision_op(&op(2), &id, &base, &bob_update),
            revision_op(&op(4), &id, &alice_whole, &bob_resigned),
            revision_op(&op(10), &id, &final_head, &bob_late),
        ],
    );
    assert_eq!(
        outcomes[..2],
        [
            wire::OpOutcome::AlreadyApplied,
            wire::OpOutcome::AlreadyApplied
        ],
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[2], wire::OpOutcome::Rejected { code, .. } if code == "not_found"),
        "{outcomes:?}"
    );
}

/// A trainee's workstation pushes its tutorial progress (and may push nothing else); the admin
/// CLI lists it.
#[test]
fn the_admin_cli_lists_the_tutorial_progress_a_trainee_pushed() {
    let server = TestServer::start(Backend::Sqlite);
    server.unit("North");
    let trainee = server.user("timur", wire::Role::Trainee, Some("North"));
    let token = server.login(&trainee, &DeviceKey::new(7)).access_token;
    let progress = json!({"ops": [{
        "op_id": "5f0b3a8e-7c1d-4e2a-9b6f-0d1e2f3a4b5c",
        "change": {"kind": "training_progress", "progress": {
            "sequence": 2,
            "lessons": [
                {"lesson": "search", "steps_done": 2, "steps_total": 2, "completed": true},
                {"lesson": "sign_one", "steps_done": 0, "steps_total": 1, "completed": false}
            ],
            "lessons_completed": 1,
            "lessons_available": 7
        }}
    }]});
    let reply = server.post_json(wire::paths::SYNC_PUSH, Some(&token), &progress);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["results"][0]["outcome"]["kind"], "applied");
    // Anything else a trainee pushes is refused as a whole.
    let other = json!({"ops": [{
        "op_id": "6f0b3a8e-7c1d-4e2a-9b6f-0d1e2f3a4b5c",
        "change": {"kind": "revision", "document_id": "7f0b3a8e-7c1d-4e2a-9b6f-0d1e2f3a4b5c",
                   "base_sha256": "00", "sha256": "11", "appended_sha256": "22", "cause": "x"}
    }]});
    let reply = server.post_json(wire::paths::SYNC_PUSH, Some(&token), &other);
    assert_eq!(reply.status, 403, "{}", reply.text());

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .arg("--data-dir")
        .arg(server.dir.path())
        .arg("training")
        .output()
        .expect("run the CLI");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("timur\ttrainee\t"))
        .unwrap_or_else(|| panic!("no line for the trainee: {stdout}"));
    assert!(line.contains("1/7 lessons"), "{line}");
    assert!(line.ends_with("search=2/2 sign_one=0/1"), "{line}");
}
