//! The tutorial through the engine: a sandbox seeded with watermarked practice documents and a
//! training key; every lesson that needs no server taken step by step, each step recognised from
//! the engine's state (not from clicks) and kept across a restart; and the boundary between the
//! sandbox and real work held in both directions.

mod common;
#[path = "../../outpost-pdf/tests/common/mod.rs"]
#[allow(unused_imports)]
mod judges;

use std::sync::atomic::AtomicBool;

use common::*;
use outpost_workstation::{
    AnnotationDraft, AnnotationKind, AnnotationStyle, BatchRequest, DocumentId, Geometry,
    LessonProgress, Point, Quad, Rect, SearchRequest, Session, SignOptions, SignatureStatus,
    TRAINING_MARK,
};

fn lesson(session: &Session, id: &str) -> LessonProgress {
    session.check_lesson(id).unwrap()
}

fn done_steps(progress: &LessonProgress) -> Vec<&str> {
    progress
        .steps
        .iter()
        .filter(|s| s.done)
        .map(|s| s.id.as_str())
        .collect()
}

fn draft(kind: AnnotationKind, contents: &str) -> AnnotationDraft {
    let geometry = match kind {
        AnnotationKind::Highlight => Geometry::Quads {
            quads: vec![Quad::from_rect(Rect {
                left: 72.0,
                bottom: 700.0,
                right: 300.0,
                top: 714.0,
            })],
        },
        _ => Geometry::Icon {
            at: Point { x: 480.0, y: 760.0 },
        },
    };
    AnnotationDraft {
        kind,
        page: 1,
        geometry,
        style: AnnotationStyle {
            contents: contents.into(),
            ..Default::default()
        },
    }
}

fn training_key(session: &Session) -> String {
    let keys = session.signing_keys().unwrap();
    assert_eq!(keys.len(), 1, "one training key: {keys:?}");
    keys[0].id.clone()
}

fn is_watermark_red(p: &image::Rgb<u8>) -> bool {
    p[0] > 150 && p[1] < 90 && p[2] < 90
}

#[test]
fn every_lesson_without_a_server_is_recognised_from_the_engines_state_and_progress_survives_a_restart(
) {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, _clock) = workstation(tmp.path(), "tutorial-lessons");
    let session = ws.open_tutorial("olga", rng(1)).unwrap();
    assert!(session.is_sandbox());
    assert!(
        ws.users().unwrap().is_empty(),
        "the sandbox is not a user's vault"
    );

    // Practice documents, all watermarked: the page text says TRAINING and pdfium draws it red.
    let documents = session.documents().unwrap();
    assert_eq!(documents.len(), 8, "{documents:?}");
    let training_hits = session
        .search(&SearchRequest {
            query: "TRAINING".into(),
            ..Default::default()
        })
        .unwrap()
        .len();
    assert_eq!(training_hits, 8, "every practice document carries the mark");
    let first = documents[0].id.clone();
    let page = session.render_page(&first, 1, 300).unwrap();
    let pixels = image::load_from_memory(&page.png).unwrap().to_rgb8();
    let red = pixels.pixels().filter(|p| is_watermark_red(p)).count();
    assert!(
        red > 300,
        "the rendered page shows the watermark ({red} red pixels)"
    );

    // The training key's certificate says so in its subject.
    let key = &session.signing_keys().unwrap()[0];
    let subject = key.subject.clone().unwrap();
    assert!(subject.contains(TRAINING_MARK), "{subject}");
    assert!(key.issuer.clone().unwrap().contains(TRAINING_MARK));

    // The lessons: two need the practice server, which this workstation was given none of.
    let lessons = session.lessons().unwrap();
    assert_eq!(lessons.len(), 9);
    let unavailable: Vec<&str> = lessons
        .iter()
        .filter(|l| !l.available)
        .map(|l| l.id.as_str())
        .collect();
    assert_eq!(unavailable, ["offline_and_sync", "resolve_conflict"]);
    let refused = session.start_lesson("offline_and_sync").unwrap_err();
    assert_eq!(refused.code(), "tutorial_error");
    assert!(refused.to_string().contains("practice server"), "{refused}");

    // 1. Open a document and go to a later page. Nothing done before the lesson counts.
    session.open_document(&first).unwrap();
    let progress = session.start_lesson("open_and_navigate").unwrap();
    assert!(done_steps(&progress).is_empty(), "{progress:?}");
    session.open_document(&first).unwrap();
    assert_eq!(
        done_steps(&lesson(&session, "open_and_navigate")),
        ["open_document"]
    );
    // Pages 1 and 2 on screen at once is not moving on yet.
    session.set_visible_pages(&first, 1, 2);
    assert!(!lesson(&session, "open_and_navigate").completed);
    session.set_visible_pages(&first, 2, 3);
    let progress = lesson(&session, "open_and_navigate");
    assert!(progress.completed, "{progress:?}");

    // 2. Search: a search that finds nothing does not count.
    session.start_lesson("search").unwrap();
    session
        .search(&SearchRequest {
            query: "zzqxwv".into(),
            ..Default::default()
        })
        .unwrap();
    assert!(done_steps(&lesson(&session, "search")).is_empty());
    let hits = session
        .search(&SearchRequest {
            query: "договор".into(),
            ..Default::default()
        })
        .unwrap();
    assert!(!hits.is_empty());
    assert_eq!(
        done_steps(&lesson(&session, "search")),
        ["search_with_hits"]
    );
    session.open_document(&hits[0].document_id).unwrap();
    assert!(lesson(&session, "search").completed);

    // 3. A highlight, then a note. A note made before the highlight is not the step.
    session.start_lesson("highlight_and_note").unwrap();
    let second = documents[1].id.clone();
    session
        .create_annotation(&second, draft(AnnotationKind::Note, "too early"))
        .unwrap();
    assert!(done_steps(&lesson(&session, "highlight_and_note")).is_empty());
    session
        .create_annotation(&second, draft(AnnotationKind::Highlight, ""))
        .unwrap();
    assert_eq!(
        done_steps(&lesson(&session, "highlight_and_note")),
        ["add_highlight"]
    );
    session
        .create_annotation(&second, draft(AnnotationKind::Note, "Проверить дату"))
        .unwrap();
    assert!(lesson(&session, "highlight_and_note").completed);

    // 4. Sign one document: the signature must validate. Until then the list says it awaits the
    // trainee's signature (they hold a certified key); then that it is signed.
    let mark = |document: &DocumentId| {
        session
            .document_marks()
            .unwrap()
            .into_iter()
            .find(|m| &m.document_id == document)
            .unwrap()
    };
    assert!(mark(&second).awaiting_signature && !mark(&second).signed);
    session.start_lesson("sign_one").unwrap();
    let key = training_key(&session);
    session
        .sign_document(&second, &SignOptions::invisible(&key, "Учебная подпись"))
        .unwrap();
    assert!(lesson(&session, "sign_one").completed);
    assert!(mark(&second).signed && !mark(&second).awaiting_signature);
    let reports = session.validate_document(&second).unwrap();
    assert_eq!(reports[0].status, SignatureStatus::Valid, "{reports:?}");
    assert!(reports[0]
        .signer
        .as_deref()
        .unwrap()
        .contains(TRAINING_MARK));

    // 5. Batch-sign three.
    session.start_lesson("batch_sign").unwrap();
    let three: Vec<DocumentId> = documents[2..5].iter().map(|d| d.id.clone()).collect();
    let report = session
        .sign_batch(
            &BatchRequest {
                batch_id: "training-batch".into(),
                documents: three,
                options: SignOptions::invisible(&key, "Учебная пачка"),
                parallelism: 2,
                token: None,
            },
            &|_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
    assert_eq!(report.signed, 3, "{report:?}");
    assert!(lesson(&session, "batch_sign").completed);

    // 6. Lock and unlock: the unlock is the sandbox's own (no password asked of the trainee).
    session.start_lesson("lock_and_unlock").unwrap();
    let before_restart = session.lessons().unwrap();
    session.lock().unwrap();
    let session = ws.open_tutorial("olga", rng(2)).unwrap();
    assert_eq!(
        session
            .lessons()
            .unwrap()
            .iter()
            .filter(|l| l.completed)
            .count(),
        before_restart.iter().filter(|l| l.completed).count(),
        "progress survives the restart"
    );
    assert!(lesson(&session, "lock_and_unlock").completed);

    // 7. The validation panel: open a signed document and read its validation.
    session.start_lesson("validation_panel").unwrap();
    session.open_document(&documents[0].id).unwrap();
    assert!(
        done_steps(&lesson(&session, "validation_panel")).is_empty(),
        "an unsigned document is not the step"
    );
    session.open_document(&second).unwrap();
    session.validate_document(&second).unwrap();
    assert!(lesson(&session, "validation_panel").completed);

    let summary = session.tutorial_summary().unwrap();
    assert_eq!(
        (
            summary.lessons_completed,
            summary.lessons_available,
            summary.steps_done,
            summary.steps_total
        ),
        (7, 7, 12, 12),
        "{summary:?}"
    );
    assert!(summary.complete);

    // Beginning a lesson again starts its steps over.
    let again = session.start_lesson("search").unwrap();
    assert!(
        !again.completed && done_steps(&again).is_empty(),
        "{again:?}"
    );
}

#[test]
fn an_exported_practice_document_carries_the_watermark_on_every_page_for_pdftotext() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, _clock) = workstation(tmp.path(), "tutorial-export");
    let session = ws.open_tutorial("olga", rng(3)).unwrap();
    let document = session.documents().unwrap()[0].clone();
    session
        .create_annotation(&document.id, draft(AnnotationKind::Note, "учебная заметка"))
        .unwrap();
    let out = tmp.path().join("practice-export.pdf");
    session.export_with_annotations(&document.id, &out).unwrap();
    for page in 1..=document.page_count {
        let page = page.to_string();
        let text = judges::run_ok(
            "pdftotext",
            &[&"-f", &page, &"-l", &page, &"-layout", &out, &"-"],
        );
        assert!(text.contains("TRAINING"), "page {page}: {text}");
    }
    let pixels = judges::poppler_page(&out, 40);
    let red = pixels.pixels().filter(|p| is_watermark_red(p)).count();
    assert!(red > 200, "poppler draws the watermark ({red} red pixels)");
    assert!(outpost_pdf_marker(&std::fs::read(&out).unwrap()));
}

fn outpost_pdf_marker(bytes: &[u8]) -> bool {
    let needle = b"/OutpostTraining true";
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn nothing_crosses_between_the_sandbox_and_real_work_in_either_direction() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, clock) = workstation(tmp.path(), "tutorial-boundary");
    let real = new_session(&ws, "olga", "pw-olga", 4);
    let real_document = real
        .import_bytes(
            sample(
                outpost_workstation::SampleKind::ProcurementContract,
                outpost_workstation::Language::English,
                1,
                5,
                None,
            ),
            "real.pdf",
        )
        .unwrap()
        .document()
        .id
        .clone();
    let real_audit = real.audit_entries(0, 10_000).unwrap().len();
    assert!(
        real.document_marks()
            .unwrap()
            .iter()
            .all(|m| !m.awaiting_signature && !m.signed),
        "without a signing key nothing awaits the user's signature"
    );
    real.lock().unwrap();

    // A real key, certified by a real CA.
    let pki = judges::TestPki::new();
    clock.set(real_now_ms());
    let real = ws.unlock("olga", "pw-olga", rng(5)).unwrap();
    let real_key = real
        .create_signing_key(
            "Work key",
            outpost_workstation::KeyAlgorithm::EcdsaP256,
            "Olga",
        )
        .unwrap();
    let real_pem = pki.issue_for_request(&real_key.id, &real_key.request_pem);
    real.import_certificate(&real_key.id, real_pem.as_bytes())
        .unwrap();
    let real_audit_before_tutorial = real.audit_entries(0, 10_000).unwrap().len();
    assert!(real_audit_before_tutorial > real_audit);
    real.lock().unwrap();

    // The tutorial of a user with a real vault here takes that vault's password (their progress
    // goes to their supervisor under their name); a wrong one opens nothing.
    let refused = ws.open_tutorial("olga", rng(6)).unwrap_err();
    assert_eq!(refused.code(), "tutorial_needs_password", "{refused}");
    let wrong = ws
        .open_tutorial_with_password("olga", "not-her-password", rng(6))
        .unwrap_err();
    assert_eq!(wrong.code(), "wrong_password", "{wrong}");
    assert!(!ws.has_tutorial("olga").unwrap());
    // The tutorial of the same user is another vault; the user list still shows only the real one.
    let sandbox = ws
        .open_tutorial_with_password("olga", "pw-olga", rng(6))
        .unwrap();
    assert_eq!(ws.users().unwrap(), ["olga"]);
    assert!(sandbox
        .documents()
        .unwrap()
        .iter()
        .all(|d| d.id != real_document));
    let training = sandbox.signing_keys().unwrap().remove(0);
    let training_pem = training.certificate_pem.clone().unwrap();

    // Into the sandbox: no real certificate, no real CA, no server.
    let refused = sandbox
        .import_certificate(&training.id, real_pem.as_bytes())
        .unwrap_err();
    assert_eq!(refused.code(), "training_boundary", "{refused}");
    let refused = sandbox
        .add_trust_anchor(&std::fs::read(pki.path("ca.crt")).unwrap())
        .unwrap_err();
    assert_eq!(refused.code(), "training_boundary", "{refused}");
    let refused = sandbox
        .connect_server(
            "https://127.0.0.1:9",
            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
            "olga",
            "pw",
            outpost_workstation::SecondFactor::Totp {
                code: "000000".into(),
            },
            "tutorial",
        )
        .unwrap_err();
    assert_eq!(refused.code(), "training_boundary", "{refused}");
    // A real key's id means nothing in the sandbox.
    let practice = sandbox.documents().unwrap()[0].id.clone();
    assert!(sandbox
        .sign_document(&practice, &SignOptions::invisible(&real_key.id, "x"))
        .is_err());

    // Out of the sandbox: a signed practice document, exported, cannot enter the real vault.
    sandbox
        .sign_document(&practice, &SignOptions::invisible(&training.id, "practice"))
        .unwrap();
    let exported = tmp.path().join("practice.pdf");
    sandbox
        .export_with_annotations(&practice, &exported)
        .unwrap();
    sandbox.lock().unwrap();

    let real = ws.unlock("olga", "pw-olga", rng(7)).unwrap();
    assert_eq!(
        real.audit_entries(0, 10_000).unwrap().len(),
        real_audit_before_tutorial + 4,
        "nothing of the tutorial entered the real audit chain (only the lock before it, the failed and the good password check, and this unlock)"
    );
    let practice_bytes = std::fs::read(&exported).unwrap();
    let refused = real
        .import_bytes(practice_bytes.clone(), "practice.pdf")
        .unwrap_err();
    assert_eq!(refused.code(), "rejected");
    assert!(
        refused.to_string().contains("practice document"),
        "{refused}"
    );
    // With its catalog marker defaced (as a tool rewriting the file might lose it), the banner
    // on its pages still gives it away.
    let marker = b"/OutpostTraining true";
    let at = practice_bytes
        .windows(marker.len())
        .rposition(|w| w == marker)
        .unwrap();
    let mut defaced = practice_bytes.clone();
    defaced[at..at + marker.len()].copy_from_slice(b"/OutpostTrainin_ true");
    let refused = real.import_bytes(defaced, "renamed.pdf").unwrap_err();
    assert_eq!(refused.code(), "rejected", "{refused}");
    assert!(refused.to_string().contains("TRAINING COPY"), "{refused}");
    // Nor can the training certificate or its CA.
    let refused = real
        .import_certificate(&real_key.id, training_pem.as_bytes())
        .unwrap_err();
    assert_eq!(refused.code(), "training_boundary", "{refused}");
    assert!(refused.to_string().contains("tutorial"), "{refused}");
    let training_ca = training_pem
        .match_indices("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .map(|(at, _)| training_pem[at..].to_owned())
        .unwrap();
    let refused = real.add_trust_anchor(training_ca.as_bytes()).unwrap_err();
    assert_eq!(refused.code(), "training_boundary", "{refused}");
    assert_eq!(real.documents().unwrap().len(), 1);
    real.lock().unwrap();

    // Resetting the tutorial removes only the sandbox.
    ws.reset_tutorial("olga").unwrap();
    assert!(!ws.has_tutorial("olga").unwrap());
    let real = ws.unlock("olga", "pw-olga", rng(9)).unwrap();
    assert_eq!(real.documents().unwrap().len(), 1);
}

/// The practice server the app runs, for a workstation.
fn with_practice_server(ws: &outpost_workstation::Workstation) {
    ws.set_practice_server(std::sync::Arc::new(
        outpost_server::practice::EmbeddedPracticeServer::default(),
    ));
}

/// The practice server's documents in the sandbox (their titles say where they came from).
fn from_practice_server(sandbox: &Session) -> Vec<outpost_workstation::DocumentSummary> {
    sandbox
        .documents()
        .unwrap()
        .into_iter()
        .filter(|d| {
            d.title
                .contains(outpost_workstation::practice::PRACTICE_SERVER_MARK)
        })
        .collect()
}

/// Takes the two lessons that need the practice server in `sandbox` (whose workstation has one)
/// and checks each step as it goes; returns what of them must never reach a real server.
fn practise_sync(sandbox: &Session) -> Vec<String> {
    // Work offline and sync. Beginning it takes the tutorial online with the server's documents.
    sandbox.start_lesson("offline_and_sync").unwrap();
    assert!(sandbox.practice_server_online());
    let served = from_practice_server(sandbox);
    assert_eq!(served.len(), 3, "{served:?}");
    // Work done online is not the offline work the lesson asks for.
    sandbox
        .create_annotation(&served[0].id, draft(AnnotationKind::Note, "online"))
        .unwrap();
    sandbox.sync_push().unwrap();
    assert!(done_steps(&lesson(sandbox, "offline_and_sync")).is_empty());
    sandbox.set_practice_server_online(false).unwrap();
    assert!(!sandbox.practice_server_online());
    assert_eq!(
        done_steps(&lesson(sandbox, "offline_and_sync")),
        ["go_offline"]
    );
    // Offline, the server cannot be reached and the work waits, kept.
    sandbox
        .create_annotation(
            &served[0].id,
            draft(AnnotationKind::Note, "Сверить с журналом дежурств"),
        )
        .unwrap();
    let unreachable = sandbox.sync_push().unwrap_err();
    assert_eq!(unreachable.code(), "server_unreachable", "{unreachable}");
    assert_eq!(
        done_steps(&lesson(sandbox, "offline_and_sync")),
        ["go_offline", "work_offline"]
    );
    assert!(sandbox.pending_operations().unwrap() > 0);
    sandbox.set_practice_server_online(true).unwrap();
    assert_eq!(
        done_steps(&lesson(sandbox, "offline_and_sync")),
        ["go_offline", "work_offline", "come_online"],
        "online, but the note has not been sent yet"
    );
    sandbox.sync_push().unwrap();
    assert_eq!(sandbox.pending_operations().unwrap(), 0);
    assert!(lesson(sandbox, "offline_and_sync").completed);

    // Resolve a signature conflict: signed offline; meanwhile the colleague signed it on the
    // server; back online the trainee's revision loses (kept on the server as a conflict branch)
    // and the document asks to be signed again, on the colleague's head.
    let key = training_key(sandbox);
    sandbox.start_lesson("resolve_conflict").unwrap();
    let contested = &served[1];
    sandbox.set_practice_server_online(false).unwrap();
    sandbox
        .sign_document(
            &contested.id,
            &SignOptions::invisible(&key, "Согласовано на учениях"),
        )
        .unwrap();
    assert_eq!(
        done_steps(&lesson(sandbox, "resolve_conflict")),
        ["go_offline", "sign_offline"]
    );
    sandbox.set_practice_server_online(true).unwrap();
    let pushed = sandbox.sync_push().unwrap();
    assert_eq!(
        pushed.resign_needed,
        vec![contested.id.clone()],
        "{pushed:?}"
    );
    let requests = sandbox.resign_requests().unwrap();
    assert_eq!(requests.len(), 1);
    // The document now is the colleague's revision, their signature valid in the sandbox
    // (their certificate is the practice server's training CA's).
    let reports = sandbox.validate_document(&contested.id).unwrap();
    let signers: Vec<(Option<String>, bool)> = reports
        .iter()
        .map(|r| (r.signer.clone(), r.status.is_valid()))
        .collect();
    assert_eq!(signers.len(), 1, "{signers:?}");
    assert!(
        signers[0].1,
        "the colleague's signature validates: {signers:?}"
    );
    let progress = lesson(sandbox, "resolve_conflict");
    assert_eq!(
        done_steps(&progress),
        ["go_offline", "sign_offline", "come_online"]
    );
    sandbox
        .sign_document(
            &contested.id,
            &SignOptions::invisible(&key, "Согласовано на учениях"),
        )
        .unwrap();
    assert!(
        !lesson(sandbox, "resolve_conflict").completed,
        "signed again, not yet on the server"
    );
    let pushed = sandbox.sync_push().unwrap();
    assert_eq!((pushed.applied, pushed.resign_needed.len()), (1, 0));
    let reports = sandbox.validate_document(&contested.id).unwrap();
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(reports.iter().all(|r| r.status.is_valid()), "{reports:?}");
    assert!(lesson(sandbox, "resolve_conflict").completed);

    let mut secrets: Vec<String> = served
        .iter()
        .flat_map(|d| [d.title.clone(), d.sha256.clone()])
        .collect();
    secrets.extend(["Сверить с журналом дежурств", "Согласовано на учениях"].map(String::from));
    secrets
}

#[test]
fn working_offline_syncing_and_a_signature_conflict_are_practised_against_the_practice_server() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, clock) = workstation(tmp.path(), "tutorial-practice-server");
    // The practice server runs on the system clock (certificates, tokens).
    clock.set(real_now_ms());
    with_practice_server(&ws);
    // A newcomer (no vault here) who typed a password anyway: there is nothing to prove.
    let sandbox = ws
        .open_tutorial_with_password("timur", "typed anyway", rng(30))
        .unwrap();
    assert!(sandbox.lessons().unwrap().iter().all(|l| l.available));
    assert!(
        !sandbox.practice_server_online(),
        "the practice server starts only when a lesson needs it"
    );
    practise_sync(&sandbox);
    // The practice server's documents carry the watermark like every practice document.
    let marked = sandbox
        .search(&SearchRequest {
            query: "TRAINING".into(),
            ..Default::default()
        })
        .unwrap();
    for document in from_practice_server(&sandbox) {
        assert!(
            marked.iter().any(|hit| hit.document_id == document.id),
            "{} carries the mark",
            document.title
        );
    }

    // Leaving the tutorial stops the practice server; its progress stays.
    sandbox.lock().unwrap();
    let sandbox = ws.open_tutorial("timur", rng(31)).unwrap();
    assert!(!sandbox.practice_server_online());
    let summary = sandbox.tutorial_summary().unwrap();
    assert_eq!(
        (summary.lessons_completed, summary.lessons_available),
        (2, 9)
    );

    // Leaving the tutorial while online closes the practice server, which is not the trainee
    // going offline; an app that ended without leaving it is found closed at the next opening.
    sandbox.start_lesson("offline_and_sync").unwrap();
    assert!(sandbox.practice_server_online());
    sandbox.lock().unwrap();
    let sandbox = ws.open_tutorial("timur", rng(34)).unwrap();
    assert!(done_steps(&lesson(&sandbox, "offline_and_sync")).is_empty());
    sandbox.set_practice_server_online(true).unwrap();
    drop(sandbox);
    with_practice_server(&ws);
    let sandbox = ws.open_tutorial("timur", rng(35)).unwrap();
    assert!(!sandbox.practice_server_online());
    let switches: Vec<String> = sandbox
        .audit_entries(0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "practice_server")
        .map(|e| e.detail)
        .collect();
    assert_eq!(
        switches.last().map(String::as_str),
        Some("closed"),
        "{switches:?}"
    );
    // The trainee has not gone offline in this lesson: work now is not yet its offline work.
    let served = from_practice_server(&sandbox);
    sandbox
        .create_annotation(
            &served[2].id,
            draft(AnnotationKind::Note, "после перезапуска"),
        )
        .unwrap();
    assert!(done_steps(&lesson(&sandbox, "offline_and_sync")).is_empty());

    // The sandbox connects to no other server, and a real vault never to the practice server.
    let mut real_server = outpost_server::testing::InProcessServer::start();
    let account = real_server.account("timur", outpost_protocol::Role::Staff, None);
    let refused = connect(&sandbox, &real_server, &account).unwrap_err();
    assert_eq!(refused.code(), "training_boundary");
    sandbox.lock().unwrap();
    let real = new_session(&ws, "timur", "pw-timur", 32);
    let sandbox = ws
        .open_tutorial_with_password("timur", "pw-timur", rng(33))
        .unwrap();
    sandbox.set_practice_server_online(true).unwrap();
    let practice = sandbox.server_account().unwrap().unwrap();
    let to_practice = real
        .connect_server(
            &practice.base_url,
            &practice.ca_pem,
            "timur",
            "whatever",
            outpost_protocol::SecondFactor::Totp {
                code: "000000".into(),
            },
            "desk",
        )
        .unwrap_err();
    assert_eq!(to_practice.code(), "training_boundary", "{to_practice}");
    assert!(real.server_account().unwrap().is_none());
    real_server.stop();
}

/// Runs the lessons that need no server in `sandbox`, briefly; returns what of the practice
/// material must never reach a server (titles, hashes, note and reason texts, the marks).
fn practise(sandbox: &Session) -> Vec<String> {
    let documents = sandbox.documents().unwrap();
    let key = training_key(sandbox);
    sandbox.start_lesson("open_and_navigate").unwrap();
    sandbox.open_document(&documents[0].id).unwrap();
    sandbox.set_visible_pages(&documents[0].id, 2, 3);
    assert!(sandbox.check_lesson("open_and_navigate").unwrap().completed);
    sandbox.start_lesson("highlight_and_note").unwrap();
    sandbox
        .create_annotation(&documents[1].id, draft(AnnotationKind::Highlight, ""))
        .unwrap();
    sandbox
        .create_annotation(
            &documents[1].id,
            draft(AnnotationKind::Note, "Проверить дату приказа"),
        )
        .unwrap();
    assert!(
        sandbox
            .check_lesson("highlight_and_note")
            .unwrap()
            .completed
    );
    sandbox.start_lesson("sign_one").unwrap();
    sandbox
        .sign_document(
            &documents[1].id,
            &SignOptions::invisible(&key, "Учебное основание"),
        )
        .unwrap();
    assert!(sandbox.check_lesson("sign_one").unwrap().completed);
    // Begun, one step of two done.
    sandbox.start_lesson("search").unwrap();
    sandbox
        .search(&SearchRequest {
            query: "договор".into(),
            ..Default::default()
        })
        .unwrap();
    sandbox.check_lesson("search").unwrap();
    let mut secrets: Vec<String> = sandbox
        .documents()
        .unwrap()
        .into_iter()
        .flat_map(|d| [d.title, d.sha256, d.id.0])
        .collect();
    secrets.extend(
        [
            "Проверить дату приказа",
            "Учебное основание",
            "TRAINING",
            "OutpostTraining",
            "created highlight",
        ]
        .map(String::from),
    );
    secrets
}

/// Fails if any recorded request carries any of `secrets`.
fn assert_nothing_of_the_sandbox(
    requests: &[outpost_server::testing::RecordedRequest],
    secrets: &[String],
) {
    for request in requests {
        let text = format!(
            "{} {} {}",
            request.method,
            request.uri,
            String::from_utf8_lossy(&request.body)
        );
        for secret in secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a request carried sandbox content '{secret}': {text}"
            );
        }
    }
}

/// Takes the lessons `practise` leaves out — batch signing, the validation panel, locking and
/// unlocking — so that with it and `practise_sync` the whole tutorial is done; returns the
/// sandbox (opened again by the unlock) and what of it must never reach a real server.
fn practise_the_rest(
    ws: &outpost_workstation::Workstation,
    sandbox: Session,
) -> (Session, Vec<String>) {
    let key = training_key(&sandbox);
    let documents = sandbox.documents().unwrap();
    sandbox.start_lesson("batch_sign").unwrap();
    let three: Vec<DocumentId> = documents[4..7].iter().map(|d| d.id.clone()).collect();
    sandbox
        .sign_batch(
            &BatchRequest {
                batch_id: "full-run-batch".into(),
                documents: three,
                options: SignOptions::invisible(&key, "Пакет на учениях"),
                parallelism: 2,
                token: None,
            },
            &|_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
    assert!(sandbox.check_lesson("batch_sign").unwrap().completed);
    sandbox.start_lesson("validation_panel").unwrap();
    sandbox.open_document(&documents[4].id).unwrap();
    sandbox.validate_document(&documents[4].id).unwrap();
    assert!(sandbox.check_lesson("validation_panel").unwrap().completed);
    sandbox.start_lesson("lock_and_unlock").unwrap();
    let user = sandbox.user();
    sandbox.lock().unwrap();
    let sandbox = ws
        .open_tutorial_with_password(&user, &format!("pw-{user}"), rng(40))
        .unwrap();
    assert!(sandbox.check_lesson("lock_and_unlock").unwrap().completed);
    let summary = sandbox.tutorial_summary().unwrap();
    assert!(summary.complete, "{summary:?}");
    (
        sandbox,
        vec!["Пакет на учениях".to_owned(), "full-run-batch".to_owned()],
    )
}

#[test]
fn only_the_trainees_progress_reaches_the_server_and_their_supervisor_sees_it() {
    use outpost_protocol::Role;
    let tmp = tempfile::tempdir().unwrap();
    let (ws, clock) = workstation(tmp.path(), "tutorial-progress");
    let mut server = outpost_server::testing::InProcessServer::start();
    // The practice server inside the app runs on the system clock.
    server.move_clock_to_system_time();
    clock.set(server.service.now() * 1000);
    server.unit("North");
    server.unit("South");
    let trainee = server.account("timur", Role::Trainee, Some("North"));
    let supervisor = server.account("sveta", Role::Supervisor, Some("North"));
    let other_supervisor = server.account("semyon", Role::Supervisor, Some("South"));
    let staff = server.account("olga", Role::Staff, Some("North"));
    server.record_requests();

    // The trainee's real vault syncs with the server (a trainee sees no documents).
    let real = new_session(&ws, "timur", "pw-timur", 10);
    let me = connect(&real, &server, &trainee).unwrap();
    assert_eq!(me.role, Role::Trainee);
    assert_eq!(
        real.server_role().unwrap(),
        Some(Role::Trainee),
        "kept for the window"
    );
    real.sync_push().unwrap();
    let pulled = real
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .unwrap();
    assert!(pulled.stored.is_empty());
    real.sync_audit().unwrap();
    real.lock().unwrap();

    // The tutorial, with everything a trainee makes there, the sync lessons against the
    // practice server inside the app included.
    with_practice_server(&ws);
    let sandbox = ws
        .open_tutorial_with_password("timur", "pw-timur", rng(11))
        .unwrap();
    let mut secrets = practise(&sandbox);
    secrets.extend(practise_sync(&sandbox));
    sandbox.lock().unwrap();

    // Back to real work: the progress goes with the next sync, and only it.
    let real = ws.unlock("timur", "pw-timur", rng(12)).unwrap();
    real.sync_push().unwrap();
    real.sync_pull(&AtomicBool::new(false), &mut |_| {})
        .unwrap();
    real.sync_audit().unwrap();
    // A second round has nothing new to say.
    real.sync_push().unwrap();

    let requests = server.recorded_requests();
    for path in [
        outpost_protocol::paths::SYNC_PULL,
        outpost_protocol::paths::SYNC_AUDIT,
        outpost_protocol::paths::SYNC_PUSH,
    ] {
        assert!(
            requests.iter().any(|r| r.uri.starts_with(path)),
            "the normal sync ran: no {path} among {requests:?}"
        );
    }
    assert_nothing_of_the_sandbox(&requests, &secrets);
    let pushes: Vec<outpost_protocol::PushRequest> = requests
        .iter()
        .filter(|r| r.uri.starts_with(outpost_protocol::paths::SYNC_PUSH))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let ops: Vec<&outpost_protocol::PushOp> = pushes.iter().flat_map(|p| &p.ops).collect();
    assert_eq!(ops.len(), 1, "exactly one operation was pushed: {ops:?}");
    let outpost_protocol::OpChange::TrainingProgress { progress } = &ops[0].change else {
        panic!("the one operation is the progress record: {:?}", ops[0]);
    };
    assert_eq!(
        (progress.lessons_completed, progress.lessons_available),
        (5, 9)
    );

    // The supervisor of the trainee's unit sees it in the app; one of another unit does not see
    // it, and staff may not ask.
    let sveta = new_session(&ws, "sveta", "pw-sveta", 13);
    connect(&sveta, &server, &supervisor).unwrap();
    let overview = sveta.training_overview().unwrap();
    assert_eq!(overview.trainees.len(), 1, "{overview:?}");
    let seen = &overview.trainees[0];
    assert_eq!(seen.username, "timur");
    let now_ms = server.service.now() * 1000;
    assert!(
        (now_ms - 3_600_000..=now_ms).contains(&seen.received_at_ms),
        "when it arrived, in ms: {} (now {now_ms})",
        seen.received_at_ms
    );
    assert_eq!(seen.progress.lessons_completed, 5);
    let search = seen
        .progress
        .lessons
        .iter()
        .find(|l| l.lesson == "search")
        .unwrap();
    assert_eq!(
        (search.steps_done, search.steps_total, search.completed),
        (1, 2, false)
    );
    let semyon = new_session(&ws, "semyon", "pw-semyon", 14);
    connect(&semyon, &server, &other_supervisor).unwrap();
    assert!(semyon.training_overview().unwrap().trainees.is_empty());
    let olga = new_session(&ws, "olga", "pw-olga", 15);
    connect(&olga, &server, &staff).unwrap();
    assert!(
        olga.training_overview().is_err(),
        "staff see no training records"
    );
    // The admin CLI's view (the service without a caller) has it too.
    let all = server
        .block_on(server.service.training_overview(None))
        .unwrap();
    assert_eq!(all.trainees.len(), 1);

    // More progress later replaces it; the server keeps the newest.
    real.lock().unwrap();
    let sandbox = ws
        .open_tutorial_with_password("timur", "pw-timur", rng(16))
        .unwrap();
    sandbox
        .open_document(&sandbox.documents().unwrap()[2].id)
        .unwrap();
    assert!(sandbox.check_lesson("search").unwrap().completed);
    sandbox.lock().unwrap();
    let real = ws.unlock("timur", "pw-timur", rng(17)).unwrap();
    real.sync_push().unwrap();
    let overview = sveta.training_overview().unwrap();
    assert_eq!(overview.trainees[0].progress.lessons_completed, 6);

    // The rest of the tutorial: all nine lessons done, and still nothing of the sandbox (its
    // practice server's documents, notes and signatures included) reached the real server.
    real.lock().unwrap();
    let sandbox = ws
        .open_tutorial_with_password("timur", "pw-timur", rng(41))
        .unwrap();
    let (sandbox, more) = practise_the_rest(&ws, sandbox);
    secrets.extend(more);
    sandbox.lock().unwrap();
    let real = ws.unlock("timur", "pw-timur", rng(42)).unwrap();
    real.sync_push().unwrap();
    real.sync_audit().unwrap();
    let overview = sveta.training_overview().unwrap();
    let full = &overview.trainees[0].progress;
    assert_eq!((full.lessons_completed, full.lessons_available), (9, 9));
    assert!(full
        .lessons
        .iter()
        .all(|l| l.completed && l.steps_done == l.steps_total));
    assert_nothing_of_the_sandbox(&server.recorded_requests(), &secrets);

    // The tutorial reset and taken again from the start: its new, smaller progress is still the
    // newest the supervisor sees.
    real.lock().unwrap();
    ws.reset_tutorial("timur").unwrap();
    let sandbox = ws
        .open_tutorial_with_password("timur", "pw-timur", rng(18))
        .unwrap();
    sandbox.start_lesson("lock_and_unlock").unwrap();
    sandbox.lock().unwrap();
    let real = ws.unlock("timur", "pw-timur", rng(19)).unwrap();
    real.sync_push().unwrap();
    let overview = sveta.training_overview().unwrap();
    assert_eq!(overview.trainees[0].progress.lessons_completed, 0);
    let lock_lesson = overview.trainees[0]
        .progress
        .lessons
        .iter()
        .find(|l| l.lesson == "lock_and_unlock")
        .unwrap();
    assert_eq!(lock_lesson.steps_done, 0);
    // Nothing new: nothing is sent again.
    let before = server.recorded_requests().len();
    real.lock().unwrap();
    let real = ws.unlock("timur", "pw-timur", rng(20)).unwrap();
    real.sync_push().unwrap();
    assert_eq!(
        server.recorded_requests().len(),
        before,
        "no request without news"
    );
}
