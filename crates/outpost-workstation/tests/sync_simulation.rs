//! Five workstations — three supervisors who sign and two staff who annotate — work on the same
//! documents offline and sync through fault-injecting proxies, in an order a seeded RNG draws.
//! When the faults stop and everyone has synced (signing again where their signature lost), all
//! five hold exactly the server's documents and the same annotations, every note says what its
//! author last wrote, and every signature is valid and sealed for the long term.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use outpost_protocol::Role;
use outpost_server::testing::{FaultyProxy, InProcessServer};
use outpost_workstation::{
    AnnotationEdit, DocumentId, Language, PadesLevel, SampleKind, Session, SignOptions,
    SignatureKind, SignatureStatus, StoredAnnotation, Workstation,
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

    /// One sync round (push, then pull); false when the network failed it.
    fn sync(&self) -> bool {
        let pushed = self.session.sync_push();
        let pulled = self.session.sync_pull(&AtomicBool::new(false), &mut |_| {});
        pushed.is_ok() && pulled.is_ok()
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

/// How many pushed revisions the server kept as conflict branches (each was signed again).
fn lost_for_good(server: &InProcessServer) -> usize {
    server
        .block_on(server.service.audit_records(0, 1000))
        .expect("audit")
        .iter()
        .filter(|row| row.record.action == "document.revision_conflict")
        .count()
}

#[test]
fn five_workstations_converge_through_a_faulty_network_in_a_seeded_order() {
    let server = InProcessServer::start_with_ca();
    server.unit("North");
    common::unit_documents(
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
        .map(|n| FaultyProxy::start(&server.runtime, target, 400 + n as u64))
        .collect();
    let mut replicas: Vec<Replica> = people
        .iter()
        .zip(&proxies)
        .enumerate()
        .map(|(n, ((name, role), proxy))| replica(&server, proxy, name, *role, 410 + n as u64))
        .collect();
    for proxy in &proxies {
        proxy.set_faults(true);
    }

    let mut random = rand_chacha::ChaCha20Rng::seed_from_u64(420);
    let (mut signed, mut failed_rounds) = (0, 0);
    for step in 0..STEPS {
        let who = random.gen_range(0..replicas.len());
        let document = replicas[who].documents()[random.gen_range(0..DOCUMENTS)].clone();
        let replica = &mut replicas[who];
        match random.gen_range(0..10) {
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
    assert!(signed >= 3, "the seed must make signatures ({signed})");
    assert!(failed_rounds >= 1, "the faults must hit ({failed_rounds})");

    // The network heals: everyone syncs until nothing waits and nothing moves; whoever lost a
    // signature signs again.
    for proxy in &proxies {
        proxy.set_faults(false);
    }
    let mut signed_again = 0;
    for _ in 0..8 {
        for replica in &replicas {
            assert!(replica.sync(), "a round failed with the faults off");
            for request in replica.session.resign_requests().expect("requests") {
                let document = DocumentId(request.document_id.clone());
                replica.sign(&document, "signed again");
                signed_again += 1;
                assert!(replica.sync(), "a round failed with the faults off");
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
    let mut signatures = 0;
    for document in replicas[0].documents() {
        for report in replicas[0]
            .session
            .validate_document(&document)
            .expect("validate")
        {
            assert!(
                matches!(
                    report.status,
                    SignatureStatus::Valid
                        | SignatureStatus::ValidLaterSigned
                        | SignatureStatus::ValidLaterAnnotated
                ),
                "{report:#?}"
            );
            if report.kind == SignatureKind::Signature {
                signatures += 1;
                assert_eq!(report.level, Some(PadesLevel::BaselineLta), "{report:#?}");
            }
        }
    }
    assert!(signatures >= 1);
    assert_eq!(
        signatures,
        signed + signed_again - lost_for_good(&server),
        "every signature made is on a head, or was kept as a conflict branch and made again"
    );
    eprintln!(
        "{signed} signatures made, {signed_again} made again after a conflict, \
         {signatures} on the server's heads, {failed_rounds} rounds failed"
    );
}
