//! One storage test suite, run on SQLite and on PostgreSQL: what every method promises, the
//! atomic claims under concurrency, and migrations (reopening keeps data; a newer schema is
//! refused without being touched).

mod support;

use std::sync::Arc;

use outpost_protocol::Role;
use outpost_server::store::{
    Assignee, AssignmentRow, CertificateInsert, CertificateRow, DeviceRow, DocumentRow, NewAudit,
    OpApplied, RefreshClaim, RevisionApplied, RevisionOp, SameKey, Store, StoreError, TokenRow,
    TrainingOp, UnitRow, UserRow, LONG_TERM_CAUSE,
};
use support::Backend;

async fn open(backend: Backend, dir: &std::path::Path, database: Option<String>) -> Arc<dyn Store> {
    let mut config = support::storage(backend, dir).await;
    if database.is_some() {
        config.database = database;
    }
    outpost_server::serve::open_storage(&config)
        .await
        .expect("open the store")
        .0
}

fn user(id: &str, username: &str, unit_id: Option<&str>) -> UserRow {
    UserRow {
        id: id.into(),
        username: username.into(),
        display_name: format!("Name of {username}"),
        role: Role::Staff,
        unit_id: unit_id.map(str::to_string),
        password_hash: "$argon2id$placeholder".into(),
        totp_secret: None,
        last_totp_step: None,
        failed_logins: 0,
        locked_until: None,
        created_at: 100,
        disabled_at: None,
    }
}

fn document(id: &str, title: &str) -> DocumentRow {
    DocumentRow {
        id: id.into(),
        title: title.into(),
        classification: "internal".into(),
        sha256: "ab".repeat(32),
        size: 10,
        registered_by: "admin-cli".into(),
        registered_at: 200,
    }
}

fn token(hash: &str, family: &str, device: &str) -> TokenRow {
    TokenRow {
        token_hash: hash.into(),
        family_id: family.into(),
        user_id: "u1".into(),
        device_id: device.into(),
        expires_at: 1000,
        used: false,
    }
}

async fn contract(store: Arc<dyn Store>) {
    // Units and users: unique names.
    store
        .create_unit(&UnitRow {
            id: "n1".into(),
            name: "Север".into(),
            created_at: 1,
        })
        .await
        .expect("unit");
    store
        .create_unit(&UnitRow {
            id: "n2".into(),
            name: "South".into(),
            created_at: 2,
        })
        .await
        .expect("unit");
    let duplicate = store
        .create_unit(&UnitRow {
            id: "n3".into(),
            name: "Север".into(),
            created_at: 3,
        })
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Duplicate(_))),
        "{duplicate:?}"
    );
    assert_eq!(
        store
            .unit_by_name("Север")
            .await
            .expect("query")
            .map(|u| u.id),
        Some("n1".to_string())
    );
    assert_eq!(store.list_units().await.expect("list").len(), 2);
    store
        .create_user(&user("u1", "alice", Some("n1")))
        .await
        .expect("user");
    store
        .create_user(&user("u2", "bob", Some("n1")))
        .await
        .expect("user");
    store
        .create_user(&user("u3", "carol", Some("n2")))
        .await
        .expect("user");
    assert!(matches!(
        store.create_user(&user("u4", "alice", None)).await,
        Err(StoreError::Duplicate(_))
    ));
    let alice = store
        .user_by_username("alice")
        .await
        .expect("query")
        .expect("alice");
    assert_eq!(alice, user("u1", "alice", Some("n1")));
    assert_eq!(
        store
            .user_by_id("u3")
            .await
            .expect("query")
            .map(|u| u.username),
        Some("carol".into())
    );
    assert_eq!(store.user_by_username("nobody").await.expect("query"), None);

    // Second factor: set, claim steps monotonically, consume recovery codes once.
    store
        .set_second_factor(
            "u1",
            Some(&[7u8; 20]),
            &["h1".to_string(), "h2".to_string()],
        )
        .await
        .expect("mfa");
    assert_eq!(
        store
            .user_by_id("u1")
            .await
            .expect("q")
            .expect("u")
            .totp_secret,
        Some(vec![7u8; 20])
    );
    assert!(store.claim_totp_step("u1", 50).await.expect("claim"));
    assert!(
        !store.claim_totp_step("u1", 50).await.expect("claim"),
        "the same step twice"
    );
    assert!(
        !store.claim_totp_step("u1", 49).await.expect("claim"),
        "an earlier step"
    );
    assert!(store.claim_totp_step("u1", 51).await.expect("claim"));
    assert!(store
        .consume_recovery_code("u1", "h1")
        .await
        .expect("consume"));
    assert!(!store
        .consume_recovery_code("u1", "h1")
        .await
        .expect("consume"));
    assert!(
        !store
            .consume_recovery_code("u2", "h2")
            .await
            .expect("consume"),
        "another user's code"
    );
    store
        .set_second_factor("u1", None, &[])
        .await
        .expect("reset");
    let reset = store.user_by_id("u1").await.expect("q").expect("u");
    assert_eq!((reset.totp_secret, reset.last_totp_step), (None, None));
    assert!(
        !store
            .consume_recovery_code("u1", "h2")
            .await
            .expect("consume"),
        "codes go with a reset"
    );

    // Failed logins lock at the threshold; a password reset or clear lifts it.
    assert_eq!(
        store.record_failed_login("u2", 3, 900).await.expect("fail"),
        (1, None)
    );
    assert_eq!(
        store.record_failed_login("u2", 3, 900).await.expect("fail"),
        (2, None)
    );
    assert_eq!(
        store.record_failed_login("u2", 3, 900).await.expect("fail"),
        (3, Some(900))
    );
    store
        .set_password_hash("u2", "$argon2id$new")
        .await
        .expect("password");
    let bob = store.user_by_id("u2").await.expect("q").expect("u");
    assert_eq!(
        (
            bob.failed_logins,
            bob.locked_until,
            bob.password_hash.as_str()
        ),
        (0, None, "$argon2id$new")
    );

    // Devices and tokens.
    let device = DeviceRow {
        id: "d1".into(),
        user_id: "u1".into(),
        name: "Laptop".into(),
        public_key: vec![1, 2, 3],
        enrolled_at: 10,
        revoked_at: None,
    };
    store.create_device(&device).await.expect("device");
    store
        .create_device(&DeviceRow {
            id: "d2".into(),
            enrolled_at: 11,
            ..device.clone()
        })
        .await
        .expect("device");
    assert_eq!(
        store.device_by_id("d1").await.expect("q"),
        Some(device.clone())
    );
    assert_eq!(store.list_devices(Some("u1")).await.expect("list").len(), 2);
    assert_eq!(store.list_devices(Some("u2")).await.expect("list").len(), 0);
    store
        .insert_access_token(&token("a1", "f1", "d1"))
        .await
        .expect("access");
    store
        .insert_refresh_token(&token("r1", "f1", "d1"))
        .await
        .expect("refresh");
    store
        .insert_refresh_token(&token("r2", "f2", "d2"))
        .await
        .expect("refresh");
    assert_eq!(
        store.access_token("a1").await.expect("q"),
        Some(token("a1", "f1", "d1"))
    );
    assert_eq!(
        store.refresh_token("r1").await.expect("q"),
        Some(token("r1", "f1", "d1"))
    );
    assert_eq!(
        store.claim_refresh_token("r1").await.expect("claim"),
        RefreshClaim::Claimed
    );
    assert_eq!(
        store.claim_refresh_token("r1").await.expect("claim"),
        RefreshClaim::AlreadyUsed
    );
    assert_eq!(
        store.claim_refresh_token("nope").await.expect("claim"),
        RefreshClaim::Unknown
    );
    // r1 was exchanged for r3 + a3. Presented again while those were never used: they are taken
    // back (r3 spent, a3 gone) once, and only once.
    let linked = |hash: &str| token(hash, "f1", "d1");
    store.insert_refresh_token(&linked("r3")).await.expect("r3");
    store.insert_access_token(&linked("a3")).await.expect("a3");
    store.link_refreshed("r1", "r3", "a3").await.expect("link");
    // Not once a3 has expired (its lifetime bounds how late a retry may come).
    assert!(!store
        .take_back_unused_successor("r1", 1000)
        .await
        .expect("too late"));
    assert!(store
        .take_back_unused_successor("r1", 500)
        .await
        .expect("take back"));
    assert_eq!(
        store.claim_refresh_token("r3").await.expect("claim"),
        RefreshClaim::AlreadyUsed
    );
    assert_eq!(store.access_token("a3").await.expect("q"), None);
    // A request that read a3 before it was taken back is refused when it marks it used.
    assert!(!store.mark_access_token_used("a3").await.expect("mark"));
    assert!(!store
        .take_back_unused_successor("r1", 500)
        .await
        .expect("again"));
    // Exchanged again for r4 + a4, and a4 was presented: the answer arrived, nothing is taken
    // back and nothing changes.
    store.insert_refresh_token(&linked("r4")).await.expect("r4");
    store.insert_access_token(&linked("a4")).await.expect("a4");
    store.link_refreshed("r1", "r4", "a4").await.expect("link");
    assert!(store.mark_access_token_used("a4").await.expect("mark"));
    assert!(store
        .access_token("a4")
        .await
        .expect("q")
        .is_some_and(|a| a.used));
    assert!(!store
        .take_back_unused_successor("r1", 500)
        .await
        .expect("take back"));
    assert_eq!(
        store.claim_refresh_token("r4").await.expect("claim"),
        RefreshClaim::Claimed
    );
    // Exchanged for r5 + a5 and r5 was spent since: nothing is taken back, a5 stays.
    store.insert_refresh_token(&linked("r5")).await.expect("r5");
    store.insert_access_token(&linked("a5")).await.expect("a5");
    store.link_refreshed("r1", "r5", "a5").await.expect("link");
    store.claim_refresh_token("r5").await.expect("claim");
    assert!(!store
        .take_back_unused_successor("r1", 500)
        .await
        .expect("take back"));
    assert!(store.access_token("a5").await.expect("q").is_some());
    // A token never exchanged has nothing to take back.
    assert!(!store
        .take_back_unused_successor("r2", 500)
        .await
        .expect("r2"));
    assert!(!store
        .take_back_unused_successor("nope", 500)
        .await
        .expect("nope"));

    assert!(store
        .revoke_token_family("f1", None)
        .await
        .expect("revoke family"));
    assert_eq!(store.access_token("a1").await.expect("q"), None);
    // Ended already: nothing live to end.
    assert!(!store
        .revoke_token_family("f1", None)
        .await
        .expect("revoke family"));
    assert!(store.revoke_device("d2", 77).await.expect("revoke"));
    assert!(!store.revoke_device("d9", 77).await.expect("revoke"));
    assert_eq!(
        store
            .device_by_id("d2")
            .await
            .expect("q")
            .and_then(|d| d.revoked_at),
        Some(77)
    );
    assert_eq!(
        store.claim_refresh_token("r2").await.expect("claim"),
        RefreshClaim::AlreadyUsed
    );

    // Certificates: revoking a device revokes what it requested; disabling a user revokes the rest.
    let certificate = |serial: &str, device: &str| CertificateRow {
        serial: serial.into(),
        user_id: "u1".into(),
        device_id: device.into(),
        subject: "CN=Alice".into(),
        der: vec![0x30, 0x00],
        not_before: 1,
        not_after: 2,
        issued_at: 1,
        revoked_at: None,
    };
    // Which stored certificate certifies the key being certified: none, or the one with this DER.
    let no_key: SameKey = Arc::new(|_: &[u8]| false);
    let same_der: SameKey = Arc::new(|der: &[u8]| der == [0x30, 0x00]);
    store
        .create_device(&DeviceRow {
            id: "d3".into(),
            user_id: "u1".into(),
            name: "Tablet".into(),
            public_key: vec![3],
            enrolled_at: 12,
            revoked_at: None,
        })
        .await
        .expect("device");
    for (serial, device) in [("c1", "d1"), ("c2", "d3")] {
        let inserted = store
            .insert_certificate_once(&certificate(serial, device), no_key.clone())
            .await
            .expect("certificate");
        assert_eq!(inserted, CertificateInsert::Recorded);
    }
    let again = store
        .insert_certificate_once(&certificate("c1", "d1"), no_key.clone())
        .await;
    assert!(matches!(again, Err(StoreError::Duplicate(_))), "{again:?}");
    // The same key on the same device, still valid: the certificate held is the answer, and
    // nothing new is recorded.
    let held = store
        .insert_certificate_once(&certificate("c3", "d1"), same_der.clone())
        .await
        .expect("certificate");
    assert!(
        matches!(&held, CertificateInsert::Held(c) if c.serial == "c1"),
        "{held:?}"
    );
    // A revoked device gets none.
    let on_revoked = store
        .insert_certificate_once(&certificate("c4", "d2"), no_key.clone())
        .await
        .expect("certificate");
    assert_eq!(on_revoked, CertificateInsert::Withdrawn);
    assert_eq!(
        store.revoked_certificates().await.expect("q"),
        Vec::<(String, i64)>::new()
    );
    store.revoke_device("d3", 78).await.expect("revoke");
    assert_eq!(
        store.revoked_certificates().await.expect("q"),
        vec![("c2".to_string(), 78)]
    );
    assert_eq!(store.certificates_of_user("u1").await.expect("q").len(), 2);
    // Expired by the time of the new one: a new certificate is recorded.
    let after_expiry = store
        .insert_certificate_once(
            &CertificateRow {
                issued_at: 2,
                not_after: 9,
                ..certificate("c5", "d1")
            },
            same_der.clone(),
        )
        .await
        .expect("certificate");
    assert_eq!(after_expiry, CertificateInsert::Recorded);
    let serials: Vec<String> = store
        .certificates_of_user("u1")
        .await
        .expect("q")
        .into_iter()
        .map(|c| c.serial)
        .collect();
    assert_eq!(serials, ["c1", "c2", "c5"]);

    // Documents and assignments: visibility follows active assignments to the user or unit.
    for (id, title) in [("doc-a", "Alpha"), ("doc-b", "Bravo"), ("doc-c", "Charlie")] {
        store
            .create_document(&document(id, title))
            .await
            .expect("document");
    }
    let assign = |id: &str, doc: &str, assignee: Assignee| AssignmentRow {
        id: id.into(),
        document_id: doc.into(),
        assignee,
        assigned_at: 300,
    };
    store
        .create_assignment(&assign("s1", "doc-a", Assignee::User("u1".into())))
        .await
        .expect("assign");
    store
        .create_assignment(&assign("s2", "doc-b", Assignee::Unit("n1".into())))
        .await
        .expect("assign");
    store
        .create_assignment(&assign("s3", "doc-c", Assignee::User("u3".into())))
        .await
        .expect("assign");
    let again = store
        .create_assignment(&assign("s4", "doc-a", Assignee::User("u1".into())))
        .await;
    assert!(matches!(again, Err(StoreError::Duplicate(_))), "{again:?}");
    let titles = |docs: Vec<DocumentRow>| docs.into_iter().map(|d| d.title).collect::<Vec<_>>();
    assert_eq!(
        titles(store.visible_documents("u1", Some("n1")).await.expect("q")),
        ["Alpha", "Bravo"]
    );
    assert_eq!(
        titles(store.visible_documents("u2", Some("n1")).await.expect("q")),
        ["Bravo"]
    );
    assert_eq!(
        titles(store.visible_documents("u3", Some("n2")).await.expect("q")),
        ["Charlie"]
    );
    assert_eq!(
        titles(store.visible_documents("u2", None).await.expect("q")),
        Vec::<String>::new()
    );
    assert!(store
        .visible_document("doc-a", "u2", Some("n1"))
        .await
        .expect("q")
        .is_none());
    assert!(store
        .visible_document("doc-b", "u2", Some("n1"))
        .await
        .expect("q")
        .is_some());
    assert!(store
        .revoke_assignment("doc-b", &Assignee::Unit("n1".into()), 400)
        .await
        .expect("revoke"));
    assert!(!store
        .revoke_assignment("doc-b", &Assignee::Unit("n1".into()), 401)
        .await
        .expect("revoke"));
    assert!(!store
        .revoke_assignment("doc-a", &Assignee::Unit("n1".into()), 401)
        .await
        .expect("revoke"));
    assert_eq!(
        titles(store.visible_documents("u2", Some("n1")).await.expect("q")),
        Vec::<String>::new()
    );
    // Re-assigning after a revocation is a new assignment.
    store
        .create_assignment(&assign("s5", "doc-b", Assignee::Unit("n1".into())))
        .await
        .expect("reassign");
    assert_eq!(
        titles(store.visible_documents("u2", Some("n1")).await.expect("q")),
        ["Bravo"]
    );
    assert_eq!(
        titles(store.list_documents().await.expect("q")),
        ["Alpha", "Bravo", "Charlie"]
    );

    // The audit log: positions increase, pages follow them.
    let mut positions = Vec::new();
    for n in 0..5 {
        let record = NewAudit {
            at: 1000 - n,
            actor: "admin-cli".into(),
            action: format!("test.{n}"),
            subject: "s".into(),
            detail: "«детали»".into(),
        };
        positions.push(store.append_audit(&record).await.expect("audit"));
    }
    assert!(positions.windows(2).all(|p| p[0] < p[1]));
    let page = store.audit_after(positions[1], 2).await.expect("page");
    assert_eq!(
        page.iter()
            .map(|r| r.record.action.as_str())
            .collect::<Vec<_>>(),
        ["test.2", "test.3"]
    );
    assert_eq!(page[0].record.detail, "«детали»");

    // Disabling a user revokes their devices and certificates and ends their sessions.
    store
        .insert_access_token(&token("a9", "f9", "d1"))
        .await
        .expect("access");
    assert!(store.disable_user("u1", 500).await.expect("disable"));
    assert!(!store.disable_user("nobody", 500).await.expect("disable"));
    assert_eq!(
        store
            .user_by_id("u1")
            .await
            .expect("q")
            .and_then(|u| u.disabled_at),
        Some(500)
    );
    assert_eq!(
        store
            .device_by_id("d1")
            .await
            .expect("q")
            .and_then(|d| d.revoked_at),
        Some(500)
    );
    assert_eq!(
        store.revoked_certificates().await.expect("q"),
        vec![
            ("c1".to_string(), 500),
            ("c2".to_string(), 78),
            ("c5".to_string(), 500)
        ]
    );
    // A disabled user gets none.
    assert_eq!(
        store
            .insert_certificate_once(
                &CertificateRow {
                    not_after: 900,
                    issued_at: 600,
                    ..certificate("c6", "d1")
                },
                no_key.clone()
            )
            .await
            .expect("certificate"),
        CertificateInsert::Withdrawn
    );
    assert_eq!(store.access_token("a9").await.expect("q"), None);
}

async fn concurrent_claims(store: Arc<dyn Store>) {
    store
        .create_user(&user("u1", "alice", None))
        .await
        .expect("user");
    store
        .set_second_factor("u1", Some(&[1u8; 20]), &["only".to_string()])
        .await
        .expect("mfa");
    store
        .create_device(&DeviceRow {
            id: "d1".into(),
            user_id: "u1".into(),
            name: "x".into(),
            public_key: vec![1],
            enrolled_at: 1,
            revoked_at: None,
        })
        .await
        .expect("device");
    store
        .insert_refresh_token(&token("r1", "f1", "d1"))
        .await
        .expect("refresh");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            (
                store.claim_totp_step("u1", 42).await.expect("step"),
                store
                    .consume_recovery_code("u1", "only")
                    .await
                    .expect("code"),
                store.claim_refresh_token("r1").await.expect("refresh") == RefreshClaim::Claimed,
            )
        }));
    }
    let mut won = (0, 0, 0);
    for task in tasks {
        let (step, code, refresh) = task.await.expect("task");
        won.0 += usize::from(step);
        won.1 += usize::from(code);
        won.2 += usize::from(refresh);
    }
    assert_eq!(
        won,
        (1, 1, 1),
        "each single-use thing must be claimed exactly once"
    );
}

/// The server's own long-term extension of a revision gives way to a revision pushed on that
/// revision (it is derived data, made again on top); any other moved head still means conflict.
async fn long_term_extensions_give_way(store: Arc<dyn Store>) {
    store
        .create_user(&user("u1", "alice", None))
        .await
        .expect("user");
    store
        .create_document(&document("doc", "Contract"))
        .await
        .expect("document");
    let original = "ab".repeat(32);
    let op = |id: &str, base: &str, sha: &str, cause: &str| RevisionOp {
        op_id: id.into(),
        user_id: "u1".into(),
        device_id: "d1".into(),
        at: 300,
        document_id: "doc".into(),
        base_sha256: base.into(),
        sha256: sha.into(),
        size: 20,
        cause: cause.into(),
        actor: "alice".into(),
    };
    let (signed, sealed, countersigned, late) = (
        "01".repeat(32),
        "02".repeat(32),
        "03".repeat(32),
        "04".repeat(32),
    );
    let apply = |op: RevisionOp| {
        let store = store.clone();
        async move { store.apply_revision_op(&op).await.expect("apply") }
    };
    assert_eq!(
        apply(op("o1", &original, &signed, "signature")).await,
        RevisionApplied::Applied
    );
    assert_eq!(
        apply(op("o2", &signed, &sealed, LONG_TERM_CAUSE)).await,
        RevisionApplied::Applied
    );
    // Pushed on the signed revision, not on the server's extension of it: applied.
    assert_eq!(
        apply(op("o3", &signed, &countersigned, "signature")).await,
        RevisionApplied::Applied
    );
    let head = store
        .document_by_id("doc")
        .await
        .expect("q")
        .expect("doc")
        .sha256;
    assert_eq!(head, countersigned);
    // A person's revision never gives way like that.
    assert_eq!(
        apply(op("o4", &signed, &late, "signature")).await,
        RevisionApplied::Conflict {
            head_sha256: countersigned.clone(),
            first: true,
        }
    );
    // Pushed again (its answer was lost), it is the same conflict, not a new one.
    assert_eq!(
        apply(op("o4", &signed, &late, "signature")).await,
        RevisionApplied::Conflict {
            head_sha256: countersigned.clone(),
            first: false,
        }
    );
    // Another operation carrying the same losing revision finds its branch kept already.
    assert_eq!(
        apply(op("o5", &signed, &late, "signature")).await,
        RevisionApplied::Conflict {
            head_sha256: countersigned.clone(),
            first: false,
        }
    );
    // The server's own extension of a head that moved meanwhile loses: kept, not audited as a
    // person's conflict (it is made again on the new head).
    assert!(matches!(
        apply(op("o6", &signed, &"06".repeat(32), LONG_TERM_CAUSE)).await,
        RevisionApplied::Conflict { first: true, .. }
    ));
    // Each revision that changed something is audited once, by the transaction that recorded
    // it; a retried op and a repeated conflict add nothing.
    assert_eq!(
        apply(op("o3", &signed, &countersigned, "signature")).await,
        RevisionApplied::AlreadyApplied
    );
    let audited: Vec<(String, String)> = store
        .audit_after(0, 100)
        .await
        .expect("audit")
        .into_iter()
        .filter(|row| row.record.subject == "doc")
        .map(|row| (row.record.action, row.record.detail))
        .collect();
    assert_eq!(
        audited,
        vec![
            (
                "document.revised".to_string(),
                format!("signature: {original} -> {signed}")
            ),
            (
                "document.long_term".to_string(),
                format!("{LONG_TERM_CAUSE}: {signed} -> {sealed}")
            ),
            (
                "document.revised".to_string(),
                format!("signature: {signed} -> {countersigned}")
            ),
            (
                "document.revision_conflict".to_string(),
                format!("signature: {signed} -> {late} kept as a conflict branch")
            ),
        ]
    );
}

/// Tutorial progress: each op applied once, the newest record (by its own sequence) kept per
/// user and device, an older one arriving late recorded but not kept.
async fn training_progress_keeps_the_newest(store: Arc<dyn Store>) {
    store
        .create_user(&user("u1", "timur", None))
        .await
        .expect("user");
    for id in ["d1", "d2"] {
        store
            .create_device(&DeviceRow {
                id: id.into(),
                user_id: "u1".into(),
                name: "Laptop".into(),
                public_key: vec![1],
                enrolled_at: 10,
                revoked_at: None,
            })
            .await
            .expect("device");
    }
    let op = |id: &str, device: &str, sequence: i64| TrainingOp {
        op_id: id.into(),
        user_id: "u1".into(),
        device_id: device.into(),
        at: 500 + sequence,
        sequence,
        progress: format!("{{\"sequence\":{sequence}}}"),
    };
    let apply = |op: TrainingOp| {
        let store = store.clone();
        async move { store.apply_training_op(&op).await.expect("apply") }
    };
    assert_eq!(apply(op("t1", "d1", 3)).await, OpApplied::Applied);
    assert_eq!(apply(op("t1", "d1", 3)).await, OpApplied::AlreadyApplied);
    assert_eq!(apply(op("t2", "d1", 5)).await, OpApplied::Applied);
    assert_eq!(apply(op("t3", "d1", 4)).await, OpApplied::Superseded);
    assert_eq!(apply(op("t4", "d2", 1)).await, OpApplied::Applied);
    let rows = store.training_progress().await.expect("rows");
    let kept: Vec<(&str, i64, &str)> = rows
        .iter()
        .map(|r| (r.device_id.as_str(), r.sequence, r.progress.as_str()))
        .collect();
    assert_eq!(
        kept,
        [("d1", 5, "{\"sequence\":5}"), ("d2", 1, "{\"sequence\":1}")]
    );
}

fn training_progress_keeps_the_newest_record_of_each_device(backend: Backend) {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().expect("dir");
    runtime.block_on(async {
        training_progress_keeps_the_newest(open(backend, dir.path(), None).await).await
    });
}

fn long_term_extensions_give_way_to_a_revision_on_their_base(backend: Backend) {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().expect("dir");
    runtime.block_on(async {
        long_term_extensions_give_way(open(backend, dir.path(), None).await).await
    });
}

fn store_contract(backend: Backend) {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().expect("dir");
    runtime.block_on(async {
        let store = open(backend, dir.path(), None).await;
        assert_eq!(
            store.backend(),
            if backend == Backend::Sqlite {
                "sqlite"
            } else {
                "postgres"
            }
        );
        contract(store).await;
    });
}

fn single_use_claims_hold_under_concurrency(backend: Backend) {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().expect("dir");
    runtime.block_on(async { concurrent_claims(open(backend, dir.path(), None).await).await });
}

fn migrations_keep_data_and_refuse_a_newer_schema(backend: Backend) {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().expect("dir");
    runtime.block_on(async {
        let config = support::storage(backend, dir.path()).await;
        let database = config.database.clone();
        let store = open(backend, dir.path(), database.clone()).await;
        store
            .create_unit(&UnitRow {
                id: "n1".into(),
                name: "Kept".into(),
                created_at: 1,
            })
            .await
            .expect("unit");
        drop(store);
        // Reopening applies nothing new and keeps the data.
        let store = open(backend, dir.path(), database.clone()).await;
        assert_eq!(store.list_units().await.expect("units").len(), 1);
        drop(store);
        // A schema version this build does not know (written by a newer server).
        let future = "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
                      VALUES (999, 'from_the_future', '2030-01-01T00:00:00Z', '1')";
        match &database {
            None => {
                let connection =
                    rusqlite::Connection::open(dir.path().join("server.db")).expect("open");
                connection.execute(future, []).expect("insert");
            }
            Some(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(connection);
                client.batch_execute(future).await.expect("insert");
            }
        }
        let mut config = support::storage(Backend::Sqlite, dir.path()).await;
        config.database = database.clone();
        let refused = outpost_server::serve::open_storage(&config).await;
        let Err(error) = refused else {
            panic!("a newer schema was accepted")
        };
        assert!(error.to_string().contains("migrat"), "{error}");
        // Nothing was changed: the unit is still there when read directly.
        let units = match &database {
            None => {
                let connection =
                    rusqlite::Connection::open(dir.path().join("server.db")).expect("open");
                connection
                    .query_row("SELECT count(*) FROM units", [], |r| r.get::<_, i64>(0))
                    .expect("count")
            }
            Some(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(connection);
                client
                    .query_one("SELECT count(*) FROM units", &[])
                    .await
                    .expect("count")
                    .get::<_, i64>(0)
            }
        };
        assert_eq!(units, 1);
    });
}

mod sqlite {
    #[test]
    fn store_contract() {
        super::store_contract(super::Backend::Sqlite)
    }
    #[test]
    fn single_use_claims_hold_under_concurrency() {
        super::single_use_claims_hold_under_concurrency(super::Backend::Sqlite)
    }
    #[test]
    fn migrations_keep_data_and_refuse_a_newer_schema() {
        super::migrations_keep_data_and_refuse_a_newer_schema(super::Backend::Sqlite)
    }
    #[test]
    fn long_term_extensions_give_way_to_a_revision_on_their_base() {
        super::long_term_extensions_give_way_to_a_revision_on_their_base(super::Backend::Sqlite)
    }
    #[test]
    fn training_progress_keeps_the_newest_record_of_each_device() {
        super::training_progress_keeps_the_newest_record_of_each_device(super::Backend::Sqlite)
    }
}

mod postgres {
    #[test]
    fn store_contract() {
        super::store_contract(super::Backend::Postgres)
    }
    #[test]
    fn single_use_claims_hold_under_concurrency() {
        super::single_use_claims_hold_under_concurrency(super::Backend::Postgres)
    }
    #[test]
    fn migrations_keep_data_and_refuse_a_newer_schema() {
        super::migrations_keep_data_and_refuse_a_newer_schema(super::Backend::Postgres)
    }
    #[test]
    fn long_term_extensions_give_way_to_a_revision_on_their_base() {
        super::long_term_extensions_give_way_to_a_revision_on_their_base(super::Backend::Postgres)
    }
    #[test]
    fn training_progress_keeps_the_newest_record_of_each_device() {
        super::training_progress_keeps_the_newest_record_of_each_device(super::Backend::Postgres)
    }
}
