//! Sync under injected network faults: three replicas (one user's two devices and a colleague)
//! annotate and sign three documents while a seeded proxy refuses, cuts and delays their
//! connections (a request half-sent, the connection cut anywhere, the answer thrown away after
//! the server acted). Pushes whose answer was lost are retried with the same operation ids and
//! recognised. When the faults stop, every replica's state hash (heads and live annotations)
//! equals the hash of what the server holds for its user, and a fresh device's too: nothing is
//! lost, and every signature made is on the main line or kept once as a conflict branch — none
//! applied twice.

mod common;

use std::sync::atomic::AtomicBool;

use outpost_protocol::Role;
use outpost_server::testing::{FaultyProxy, InProcessServer};
use outpost_workstation::{AnnotationEdit, DocumentId, Language, SampleKind, SignOptions};
use rand::{Rng, SeedableRng};

/// How many fault schedules (rounds of local work and sync attempts under faults) to run.
const SCHEDULES: usize = 200;

/// How many pushed revisions the server kept as conflict branches (audited when kept: one pushed
/// again after its answer was lost is answered as a conflict again, not audited again).
fn conflict_branches(server: &InProcessServer) -> usize {
    server
        .block_on(server.service.audit_records(0, 100_000))
        .expect("audit")
        .iter()
        .filter(|row| row.record.action == "document.revision_conflict")
        .count()
}

#[test]
fn replicas_converge_after_two_hundred_fault_schedules() {
    // Another seed, to explore: OUTPOST_FAULT_SEED=7 (its draw is then not required to hit the
    // exactly-once path or to sign; it must still converge).
    let explored: Option<u64> = std::env::var("OUTPOST_FAULT_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let server = InProcessServer::start_with_ca();
    server.unit("North");
    let anna = server.account("anna", Role::Supervisor, Some("North"));
    let boris = server.account("boris", Role::Supervisor, Some("North"));
    common::unit_documents(
        &server,
        "Report",
        SampleKind::OperationalReport,
        Language::English,
        51..54,
        "faultline",
    );
    let target = server.address();

    // Each replica talks to the server through its own faulty proxy, and signs with a key the
    // server's CA certified.
    let mut replicas = Vec::new();
    for (n, (account, tag)) in [
        (&anna, "faults-desk"),
        (&anna, "faults-laptop"),
        (&boris, "faults-boris"),
    ]
    .into_iter()
    .enumerate()
    {
        let proxy_seed = explored.map_or(100 + n as u64, |seed| seed * 10 + n as u64);
        let proxy = FaultyProxy::start(&server.runtime, target, proxy_seed);
        // The workstation's clock agrees with the server's (its certificate starts there).
        let (dir, workstation, _clock, session) =
            common::connected_in_step(&server, &proxy.base_url(), account, tag, 60 + n as u64);
        let key = common::server_certified_key(&session, tag);
        replicas.push((dir, workstation, session, proxy, key));
    }
    let never = AtomicBool::new(false);
    let documents: Vec<Vec<DocumentId>> = replicas
        .iter()
        .map(|(_, _, session, _, _)| {
            session.sync_pull(&never, &mut |_| {}).expect("first pull");
            common::titled_documents(session)
        })
        .collect();
    assert!(documents.iter().all(|d| d.len() == 3));

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(explored.unwrap_or(2026));
    for (_, _, _, proxy, _) in &replicas {
        proxy.set_faults(true);
    }
    let (mut failures, mut already_applied, mut signed) = (0usize, 0usize, 0usize);
    for schedule in 0..SCHEDULES {
        let r = rng.gen_range(0..replicas.len());
        let (_, _, session, _, key) = &replicas[r];
        let document = &documents[r][rng.gen_range(0..3)];
        let own: Vec<(String, i64)> = session
            .annotations(document)
            .expect("annotations")
            .into_iter()
            .filter(|a| a.annotation.author == session.user() && !a.burned)
            .map(|a| (a.annotation.id.to_string(), a.revision))
            .collect();
        match rng.gen_range(0..10) {
            0..=3 => {
                session
                    .create_annotation(document, common::note_draft(&format!("note {schedule}")))
                    .expect("create");
            }
            4..=6 if !own.is_empty() => {
                let (id, revision) = &own[rng.gen_range(0..own.len())];
                let edit = AnnotationEdit {
                    contents: Some(format!("edit {schedule}")),
                    ..Default::default()
                };
                session.edit_annotation(id, *revision, edit).expect("edit");
            }
            7 if !own.is_empty() => {
                let (id, revision) = &own[rng.gen_range(0..own.len())];
                session.delete_annotation(id, *revision).expect("delete");
            }
            8 => {
                session
                    .sign_document(
                        document,
                        &SignOptions::invisible(key, format!("approved {schedule}")),
                    )
                    .expect("sign");
                signed += 1;
            }
            _ => {}
        }
        // Sync attempts under faults: errors are expected; nothing may be lost. Half the time the
        // push is retried before any pull, as a workstation does after a lost answer.
        for _ in 0..rng.gen_range(1..=2) {
            match session.sync_push() {
                Ok(report) => already_applied += report.already_applied,
                Err(_) => failures += 1,
            }
        }
        if session.sync_pull(&never, &mut |_| {}).is_err() {
            failures += 1;
        }
    }
    assert!(
        failures > SCHEDULES / 4,
        "the proxy injected too few faults to mean anything: {failures}"
    );
    // Some pushes were applied by the server while their answer was lost; pushed again with the
    // same operation ids, they were recognised instead of applied twice.
    eprintln!("{failures} failed rounds, {already_applied} recognised as applied, {signed} signed");
    if explored.is_none() {
        assert!(
            already_applied > 0,
            "no lost answer was retried: the exactly-once path was not exercised"
        );
        assert!(signed > 0, "no signature was made under faults");
    }

    // The faults stop: clean rounds on every replica; a document whose signature lost is signed
    // again, as its user is asked to.
    for (_, _, _, proxy, _) in &replicas {
        proxy.set_faults(false);
    }
    let mut signed_again = 0;
    for _ in 0..4 {
        for (_, _, session, _, key) in &replicas {
            session.sync_push().expect("clean push");
            session.sync_pull(&never, &mut |_| {}).expect("clean pull");
            for request in session.resign_requests().expect("requests") {
                let document = DocumentId(request.document_id.clone());
                session
                    .sign_document(&document, &SignOptions::invisible(key, "signed again"))
                    .expect("sign again");
                signed_again += 1;
                session.sync_push().expect("clean push");
            }
        }
    }
    for (_, _, session, _, _) in &replicas {
        session.sync_pull(&never, &mut |_| {}).expect("clean pull");
    }
    for (_, _, session, _, _) in &replicas {
        assert_eq!(
            session.pending_operations().expect("pending"),
            0,
            "a change was never delivered"
        );
        assert!(session.resign_requests().expect("requests").is_empty());
    }

    // Every replica's state hash is the server's for its user.
    for (n, (_, _, session, _, _)) in replicas.iter().enumerate() {
        let on_server = common::server_state(&server, &session.user());
        let here = common::replica_state(session);
        assert_eq!(
            common::state_hash(&here),
            common::state_hash(&on_server),
            "replica {n} differs from the server: {here:#?} against {on_server:#?}"
        );
    }
    // A fresh device of a third colleague, straight to the server, holds the same.
    let vera = server.account("vera", Role::Staff, Some("North"));
    let (_dir, _workstation, fresh) = common::connected(&server, &vera, "faults-fresh", 99);
    fresh.sync_pull(&never, &mut |_| {}).expect("fresh pull");
    let reference = common::replica_state(&replicas[0].2);
    assert_eq!(
        common::state_hash(&common::replica_state(&fresh)),
        common::state_hash(&reference),
        "a new device receives another state"
    );
    let annotations: usize = reference.values().map(|(_, a)| a.len()).sum();
    assert!(annotations > 0);

    // No signature applied twice, none lost: each one made is on the main line (valid, sealed for
    // the long term), or was kept once as a conflict branch.
    let on_heads = common::valid_sealed_signatures(&replicas[0].2);
    assert_eq!(
        on_heads + conflict_branches(&server),
        signed + signed_again,
        "every signature made is on a head or kept once as a conflict branch"
    );
    eprintln!(
        "{SCHEDULES} schedules: {failures} failed sync calls, {already_applied} operations \
         recognised as already applied, {annotations} annotations and {on_heads} signatures \
         converged, {signed} signed under faults, {signed_again} signed again"
    );
}
