//! Five workstations — three supervisors who sign and two staff who annotate — work on the same
//! documents offline and sync through fault-injecting proxies, in an order a seeded RNG draws,
//! while an administrator moves documents between the unit and a single person (the others'
//! copies are purged, with what they had not sent) and back. When the faults stop, every document
//! is the unit's again and everyone has synced (signing again where their signature lost), all
//! five hold exactly the server's documents and the same annotations, every note says what its
//! author last wrote (unless its change went with a purge), and every signature made is valid
//! and sealed for the long term, kept as a conflict branch, or told as discarded by a purge.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use outpost_protocol::{AssignmentTarget, Role};
use outpost_server::testing::{FaultyProxy, InProcessServer};
use outpost_workstation::{
    AnnotationEdit, DocumentId, Language, SampleKind, Session, SignOptions, StoredAnnotation,
    Workstation,
};
use rand::{Rng, SeedableRng};

const DOCUMENTS: usize = 3;
const STEPS: usize = 90;

struct Replica {
    _dir: tempfile::TempDir,
    _workstation: Workstation,
    session: Session,
    key_id: Option<String>,
    /// The notes this replica wrote: id → what it last wrote (None once deleted).
    notes: BTreeMap<String, Option<String>>,
    /// Why its last round failed, if it did.
    last_failure: Option<String>,
}

impl Replica {
    fn documents(&self) -> Vec<DocumentId> {
        common::titled_documents(&self.session)
    }

    fn sign(&self, document: &DocumentId, reason: &str) {
        let key_id = self.key_id.clone().expect("a supervisor");
        self.session
            .sign_document(document, &SignOptions::invisible(key_id, reason))
            .expect("sign");
    }

    /// This replica's own live notes on `document` not yet burned into a signature.
    fn changeable_notes(&self, document: &DocumentId) -> Vec<StoredAnnotation> {
        self.session
            .annotations(document)
            .expect("annotations")
            .into_iter()
            .filter(|a| !a.burned && self.notes.contains_key(&a.annotation.id.to_string()))
            .collect()
    }

    /// One sync round as the engine runs it: push, then pull if the push went through (so a
    /// purge follows the server's answers to what waited here); false when the network failed
    /// it. A note change that went with a purged document is no longer expected anywhere.
    fn sync(&mut self) -> bool {
        let pushed = self.session.sync_push();
        if let Err(error) = &pushed {
            self.last_failure = Some(format!("push: {error}"));
            return false;
        }
        let pulled = self.session.sync_pull(&AtomicBool::new(false), &mut |_| {});
        if let Ok(pulled) = &pulled {
            for id in &pulled.discarded_annotations {
                self.notes.remove(id);
            }
        }
        self.last_failure = pulled.as_ref().err().map(|error| format!("pull: {error}"));
        pulled.is_ok()
    }
}

fn replica(
    server: &InProcessServer,
    proxy: &FaultyProxy,
    username: &str,
    role: Role,
    seed: u64,
) -> Replica {
    let account = server.account(username, role, Some("North"));
    let dir = tempfile::tempdir().expect("dir");
    let (workstation, clock) = common::workstation(dir.path(), &format!("sim-{username}"));
    // The workstation's clock agrees with the server's (certificates start at the server's now).
    clock.set(server.service.now() * 1000 + 60_000);
    let session = common::new_session(&workstation, username, "local-password", seed);
    common::connect_to(&session, server, &proxy.base_url(), &account).expect("connect");
    session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("first pull");
    let key_id =
        (role == Role::Supervisor).then(|| common::server_certified_key(&session, username));
    Replica {
        _dir: dir,
        _workstation: workstation,
        session,
        key_id,
        notes: BTreeMap::new(),
        last_failure: None,
    }
}

/// Every live annotation a replica holds, by document title: id → contents.
fn annotations_of(replica: &Replica) -> BTreeMap<String, BTreeMap<String, String>> {
    replica
        .session
        .documents()
        .expect("documents")
        .into_iter()
        .map(|d| {
            let notes = replica
                .session
                .annotations(&d.id)
                .expect("annotations")
                .into_iter()
                .map(|a| (a.annotation.id.to_string(), a.annotation.contents))
                .collect();
            (d.title, notes)
        })
        .collect()
}

/// How many pushed revisions the server kept as conflict branches (audited when kept: one pushed
/// again after its answer was lost is answered as a conflict again, not audited again).
fn lost_for_good(server: &InProcessServer) -> usize {
    server
        .block_on(server.service.audit_records(0, 1000))
        .expect("audit")
        .iter()
        .filter(|row| row.record.action == "document.revision_conflict")
        .count()
}

/// The seeds of the runs: each draws its own order, moves and fault schedules. Seed 183 found
/// (when a round here still pulled after its push had failed) that a signature kept as a
/// conflict branch whose answer was lost, pushed again once its document was someone else's, was
/// refused and then told as discarded at the purge.
const SEEDS: [u64; 4] = [420, 7, 2026, 183];

#[test]
fn five_workstations_converge_through_a_faulty_network_in_a_seeded_order() {
    let (seeds, exploring): (Vec<u64>, bool) = match std::env::var("OUTPOST_SIMULATION_SEEDS") {
        // Other seeds, to explore: OUTPOST_SIMULATION_SEEDS=1,2,3.
        Ok(seeds) => (
            seeds
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect(),
            true,
        ),
        Err(_) => (SEEDS.to_vec(), false),
    };
    for seed in seeds {
        eprintln!("seed {seed}");
        converge(seed, !exploring);
    }
}

/// One run of the simulation drawn from `seed`; `demanding` asks that its draw signs, moves
/// documents and meets faults enough (the chosen seeds do; a seed explored may not, and is
/// still checked for convergence).
fn converge(seed: u64, demanding: bool) {
    let server = InProcessServer::start_with_ca();
    server.unit("North");
    let server_ids = common::unit_documents(
        &server,
        "Document",
        SampleKind::PersonnelRecord,
        Language::Russian,
        300..300 + DOCUMENTS as u64,
        "simulation",
    );
    let target = server.address();
    let people = [
        ("anna", Role::Supervisor),
        ("boris", Role::Supervisor),
        ("vera", Role::Supervisor),
        ("gleb", Role::Staff),
        ("dina", Role::Staff),
    ];
    let proxies: Vec<FaultyProxy> = (0..people.len())
        .map(|n| FaultyProxy::start(&server.runtime, target, seed * 100 + n as u64))
        .collect();
    let mut replicas: Vec<Replica> = people
        .iter()
        .zip(&proxies)
        .enumerate()
        .map(|(n, ((name, role), proxy))| {
            replica(&server, proxy, name, *role, seed * 100 + 10 + n as u64)
        })
        .collect();
    for proxy in &proxies {
        proxy.set_faults(true);
    }

    // Who each document is assigned to: the unit (None) or one person.
    let mut holder: Vec<Option<usize>> = vec![None; DOCUMENTS];
    let unit = AssignmentTarget::Unit {
        name: "North".into(),
    };
    let person = |n: usize| AssignmentTarget::User {
        username: people[n].0.into(),
    };
    let reassign = |document: usize, from: &AssignmentTarget, to: &AssignmentTarget| {
        use outpost_server::service::Actor;
        let id = &server_ids[document];
        server
            .block_on(server.service.assign(Actor::Cli, id, to))
            .expect("assign");
        server
            .block_on(server.service.revoke_assignment(Actor::Cli, id, from))
            .expect("revoke");
    };

    let mut random = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let (mut signed, mut failed_rounds, mut moved) = (0, 0, 0);
    for step in 0..STEPS {
        let who = random.gen_range(0..replicas.len());
        let action = random.gen_range(0..11);
        let pick = random.gen_range(0..DOCUMENTS);
        if action == 10 {
            // The administrator gives a document to one person only, or back to the unit.
            match holder[pick] {
                None => reassign(pick, &unit, &person(who)),
                Some(only) => reassign(pick, &person(only), &unit),
            }
            holder[pick] = match holder[pick] {
                None => Some(who),
                Some(_) => None,
            };
            moved += 1;
            continue;
        }
        let held = replicas[who].documents();
        let replica = &mut replicas[who];
        let Some(document) = held.get(pick % held.len().max(1)).cloned() else {
            // Nothing assigned to this person now: they sync.
            if !replica.sync() {
                failed_rounds += 1;
            }
            continue;
        };
        match action {
            0..=3 => {
                let text = format!("{} step {step}", people[who].0);
                let note = replica
                    .session
                    .create_annotation(&document, common::note_draft(&text))
                    .expect("note");
                replica
                    .notes
                    .insert(note.annotation.id.to_string(), Some(text));
            }
            4 | 5 => {
                // Edit one of this replica's live notes not yet burned into a signature.
                let editable = replica.changeable_notes(&document);
                if let Some(note) = editable.first() {
                    let text = format!("{} edited at {step}", people[who].0);
                    let id = note.annotation.id.to_string();
                    replica
                        .session
                        .edit_annotation(
                            &id,
                            note.revision,
                            AnnotationEdit {
                                contents: Some(text.clone()),
                                ..Default::default()
                            },
                        )
                        .expect("edit");
                    replica.notes.insert(id, Some(text));
                }
            }
            6 => {
                let deletable = replica.changeable_notes(&document);
                if let Some(note) = deletable.last() {
                    let id = note.annotation.id.to_string();
                    replica
                        .session
                        .delete_annotation(&id, note.revision)
                        .expect("delete");
                    replica.notes.insert(id, None);
                }
            }
            7 if replica.key_id.is_some() => {
                replica.sign(&document, &format!("step {step}"));
                signed += 1;
            }
            _ => {
                if !replica.sync() {
                    failed_rounds += 1;
                }
            }
        }
    }
    eprintln!("  signed {signed}, failed rounds {failed_rounds}, moved {moved}");
    if demanding {
        assert!(signed >= 3, "the seed must make signatures ({signed})");
        assert!(failed_rounds >= 1, "the faults must hit ({failed_rounds})");
        assert!(moved >= 2, "the seed must move documents ({moved})");
    }

    // The network heals and every document is the unit's again: everyone syncs until nothing
    // waits and nothing moves; whoever lost a signature signs again, and a signature the server
    // refused while its document was someone else's is offered again.
    for proxy in &proxies {
        proxy.set_faults(false);
    }
    for (document, only) in holder.iter().enumerate() {
        if let Some(only) = only {
            reassign(document, &person(*only), &unit);
        }
    }
    let mut signed_again = 0;
    for _ in 0..8 {
        for replica in &mut replicas {
            assert!(
                replica.sync(),
                "a round failed with the faults off: {:?}",
                replica.last_failure
            );
            for state in replica.session.document_sync_states().expect("states") {
                if state.refused.is_some() {
                    replica
                        .session
                        .offer_refused_revision_again(&state.document_id)
                        .expect("offer again");
                    assert!(
                        replica.sync(),
                        "a round failed with the faults off: {:?}",
                        replica.last_failure
                    );
                }
            }
            for request in replica.session.resign_requests().expect("requests") {
                let document = DocumentId(request.document_id.clone());
                replica.sign(&document, "signed again");
                signed_again += 1;
                assert!(
                    replica.sync(),
                    "a round failed with the faults off: {:?}",
                    replica.last_failure
                );
            }
        }
    }
    for replica in &replicas {
        assert_eq!(replica.session.pending_operations().expect("pending"), 0);
        assert!(replica
            .session
            .resign_requests()
            .expect("requests")
            .is_empty());
    }

    // Everyone holds the server's heads and the same annotations.
    let heads = |replica: &Replica| -> Vec<String> {
        replica
            .documents()
            .iter()
            .map(|d| common::head_sha256(&replica.session, d))
            .collect()
    };
    let mut on_server: Vec<_> = server
        .block_on(server.service.all_documents())
        .expect("documents");
    on_server.sort_by(|a, b| a.title.cmp(&b.title));
    let server_heads: Vec<String> = on_server.into_iter().map(|d| d.sha256).collect();
    let reference = annotations_of(&replicas[0]);
    for (n, replica) in replicas.iter().enumerate() {
        assert_eq!(heads(replica), server_heads, "{}", people[n].0);
        assert_eq!(annotations_of(replica), reference, "{}", people[n].0);
    }
    // And each one's state hash is that of what the server holds for its user.
    for (n, replica) in replicas.iter().enumerate() {
        assert_eq!(
            common::state_hash(&common::replica_state(&replica.session)),
            common::state_hash(&common::server_state(&server, &replica.session.user())),
            "{}",
            people[n].0
        );
    }

    // Every note says what its author last wrote; deleted notes are gone everywhere.
    let live: BTreeMap<String, String> = reference
        .values()
        .flatten()
        .map(|(id, text)| (id.clone(), text.clone()))
        .collect();
    for replica in &replicas {
        for (id, last) in &replica.notes {
            assert_eq!(live.get(id), last.as_ref(), "note {id}");
        }
    }

    // Every signature is valid and sealed for the long term.
    let signatures = common::valid_sealed_signatures(&replicas[0].session);
    assert!(signatures >= 1 || !demanding);
    // What each workstation was told it lost with a purged document.
    let discarded: i64 = replicas
        .iter()
        .flat_map(|r| r.session.purge_notices().expect("notices"))
        .map(|n| n.discarded_revisions)
        .sum();
    assert_eq!(
        signatures as i64,
        (signed + signed_again - lost_for_good(&server)) as i64 - discarded,
        "every signature made is on a head, was kept as a conflict branch, or its document's \
         purge said it was discarded"
    );
    eprintln!(
        "{signed} signatures made, {signed_again} made again after a conflict, \
         {signatures} on the server's heads, {discarded} discarded with a purge, {moved} moves, \
         {failed_rounds} rounds failed"
    );
}
