//! Sync under injected network faults: three replicas (one user's two devices and a colleague)
//! annotate one document while a seeded proxy refuses, cuts and delays their connections (a
//! request half-sent, the connection cut anywhere, the answer thrown away after the server acted).
//! Pushes whose answer was lost are retried with the same operation ids and recognised. When the
//! faults stop, every replica and a fresh device converge on the same annotations: nothing is
//! lost or applied twice, and the server holds exactly what the replicas hold.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use outpost_protocol::{AssignmentTarget, Role};
use outpost_server::testing::{FaultyProxy, InProcessServer};
use outpost_workstation::{AnnotationEdit, DocumentId, Language, SampleKind, Session};
use rand::{Rng, SeedableRng};

/// How many fault schedules (rounds of local work and sync attempts under faults) to run.
const SCHEDULES: usize = 200;

/// The live annotations of a replica: id → (author, contents, revision).
fn snapshot(session: &Session, document: &DocumentId) -> BTreeMap<String, (String, String, i64)> {
    session
        .annotations(document)
        .expect("annotations")
        .into_iter()
        .map(|a| {
            (
                a.annotation.id.to_string(),
                (a.annotation.author, a.annotation.contents, a.revision),
            )
        })
        .collect()
}

#[test]
fn replicas_converge_after_two_hundred_fault_schedules() {
    let server = InProcessServer::start();
    server.unit("North");
    let anna = server.account("anna", Role::Staff, Some("North"));
    let boris = server.account("boris", Role::Staff, Some("North"));
    let pdf = common::sample(
        SampleKind::OperationalReport,
        Language::English,
        1,
        51,
        Some("faultline"),
    );
    let sha = common::sha256_hex(&pdf);
    server.document(
        "Report",
        pdf,
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let target = server.address();

    // Each replica talks to the server through its own faulty proxy.
    let mut replicas = Vec::new();
    for (n, (account, tag)) in [
        (&anna, "faults-desk"),
        (&anna, "faults-laptop"),
        (&boris, "faults-boris"),
    ]
    .into_iter()
    .enumerate()
    {
        let proxy = FaultyProxy::start(&server.runtime, target, 100 + n as u64);
        let (dir, workstation, session) =
            common::connected_via(&server, &proxy.base_url(), account, tag, 60 + n as u64);
        replicas.push((dir, workstation, session, proxy));
    }
    let never = AtomicBool::new(false);
    let documents: Vec<DocumentId> = replicas
        .iter()
        .map(|(_, _, session, _)| {
            session.sync_pull(&never, &mut |_| {}).expect("first pull");
            session
                .documents()
                .expect("documents")
                .into_iter()
                .find(|d| d.sha256 == sha)
                .expect("the report")
                .id
        })
        .collect();

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    for (_, _, _, proxy) in &replicas {
        proxy.set_faults(true);
    }
    let (mut failures, mut already_applied) = (0usize, 0usize);
    for schedule in 0..SCHEDULES {
        let r = rng.gen_range(0..replicas.len());
        let session = &replicas[r].2;
        let document = &documents[r];
        let own: Vec<(String, i64)> = session
            .annotations(document)
            .expect("annotations")
            .into_iter()
            .filter(|a| a.annotation.author == session.user())
            .map(|a| (a.annotation.id.to_string(), a.revision))
            .collect();
        match rng.gen_range(0..10) {
            0..=3 => {
                session
                    .create_annotation(document, common::note_draft(&format!("note {schedule}")))
                    .expect("create");
            }
            4..=7 if !own.is_empty() => {
                let (id, revision) = &own[rng.gen_range(0..own.len())];
                let edit = AnnotationEdit {
                    contents: Some(format!("edit {schedule}")),
                    ..Default::default()
                };
                session.edit_annotation(id, *revision, edit).expect("edit");
            }
            8 if !own.is_empty() => {
                let (id, revision) = &own[rng.gen_range(0..own.len())];
                session.delete_annotation(id, *revision).expect("delete");
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
    assert!(
        already_applied > 0,
        "no lost answer was retried: the exactly-once path was not exercised"
    );

    // The faults stop: two clean rounds on every replica.
    for (_, _, _, proxy) in &replicas {
        proxy.set_faults(false);
    }
    for _ in 0..2 {
        for (_, _, session, _) in &replicas {
            session.sync_push().expect("clean push");
        }
        for (_, _, session, _) in &replicas {
            session.sync_pull(&never, &mut |_| {}).expect("clean pull");
        }
    }
    for (_, _, session, _) in &replicas {
        assert_eq!(
            session.pending_operations().expect("pending"),
            0,
            "a change was never delivered"
        );
    }
    let reference = snapshot(&replicas[0].2, &documents[0]);
    assert!(!reference.is_empty());
    for (n, (_, _, session, _)) in replicas.iter().enumerate() {
        assert_eq!(
            snapshot(session, &documents[n]),
            reference,
            "replica {n} differs"
        );
    }
    // A fresh device of a third colleague, straight to the server, sees the same.
    let vera = server.account("vera", Role::Staff, Some("North"));
    let (_dir, _workstation, fresh) = common::connected(&server, &vera, "faults-fresh", 99);
    fresh.sync_pull(&never, &mut |_| {}).expect("fresh pull");
    let fresh_document = fresh
        .documents()
        .expect("documents")
        .into_iter()
        .find(|d| d.sha256 == sha)
        .expect("report")
        .id;
    assert_eq!(
        snapshot(&fresh, &fresh_document),
        reference,
        "the server's state differs from the replicas'"
    );
    eprintln!(
        "{SCHEDULES} schedules: {failures} failed sync calls, {already_applied} operations recognised as already applied, {} annotations converged",
        reference.len()
    );
}
