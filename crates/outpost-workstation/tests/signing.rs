//! Signing through the engine: a key generated in the vault, its request issued by a test CA,
//! pending annotations burned in before the signature, the new revision stored and audited, and
//! the document's signatures validated against the vault's trust anchors — with pdfsig, pyHanko
//! and qpdf judging the exported file.

mod common;
#[path = "../../outpost-pdf/tests/common/mod.rs"]
#[allow(unused_imports)]
mod judges;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use outpost_workstation::{
    AnnotationDraft, AnnotationKind, AnnotationStyle, BatchRequest, DocumentId, Geometry,
    KeyAlgorithm, Language, Point, SampleKind, Session, SignOptions, SignatureStatus, ViewRect,
};

fn import(session: &Session) -> DocumentId {
    let bytes = sample(
        SampleKind::ProcurementContract,
        Language::Russian,
        2,
        11,
        None,
    );
    session
        .import_bytes(bytes, "contract.pdf")
        .unwrap()
        .document()
        .id
        .clone()
}

fn note(session: &Session, doc: &DocumentId, text: &str) {
    session
        .create_annotation(
            doc,
            AnnotationDraft {
                kind: AnnotationKind::Note,
                page: 1,
                geometry: Geometry::Icon {
                    at: Point { x: 480.0, y: 760.0 },
                },
                style: AnnotationStyle {
                    contents: text.into(),
                    ..Default::default()
                },
            },
        )
        .unwrap();
}

fn options(key: &str, mark: bool) -> SignOptions {
    SignOptions {
        key_id: key.into(),
        reason: "Согласовано".into(),
        page: 1,
        mark: mark.then_some(ViewRect {
            x: 320.0,
            y: 700.0,
            width: 240.0,
            height: 100.0,
        }),
        certify: None,
    }
}

/// Poppler's pdftotext reads the visible mark on page 1 of `signed` as GOST R 7.0.97 lays it out
/// — the heading, the certificate's serial, owner, issuer, validity, the signing time and the
/// reason — and every word of it lies inside the rectangle chosen in [`options`].
fn assert_mark_read_by_poppler(
    session: &Session,
    key: &str,
    signed: &std::path::Path,
    signed_at_ms: i64,
) {
    let info = session
        .signing_keys()
        .unwrap()
        .into_iter()
        .find(|k| k.id == key)
        .unwrap();
    let text = judges::run_ok("pdftotext", &[&"-f", &"1", &"-l", &"1", &signed, &"-"]);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let at = time::OffsetDateTime::from_unix_timestamp(signed_at_ms / 1000).unwrap();
    let signed_line = format!(
        "Подписан: {:02}.{:02}.{} {:02}:{:02} UTC",
        at.day(),
        u8::from(at.month()),
        at.year(),
        at.hour(),
        at.minute()
    );
    let serial: String = info
        .serial
        .unwrap()
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_uppercase();
    for line in [
        "ДОКУМЕНТ ПОДПИСАН ЭЛЕКТРОННОЙ ПОДПИСЬЮ".to_owned(),
        format!("Сертификат: {serial}"),
        "Владелец: Иванова Анна Петровна".to_owned(),
        "Издатель: ".to_owned(),
        "Действителен с ".to_owned(),
        signed_line,
        "Основание: Согласовано".to_owned(),
    ] {
        assert!(text.contains(&line), "the mark lacks '{line}': {text}");
    }
    // Words of the mark, with their boxes (points, from the page's top left).
    let boxes = judges::run_ok(
        "pdftotext",
        &[&"-f", &"1", &"-l", &"1", &"-bbox", &signed, &"-"],
    );
    let mark_words = [
        "ДОКУМЕНТ",
        "Сертификат:",
        "Владелец:",
        "Издатель:",
        "Основание:",
    ];
    for word in mark_words {
        let line = boxes
            .lines()
            .find(|l| l.contains(&format!(">{word}</word>")))
            .unwrap_or_else(|| panic!("no box for {word}: {boxes}"));
        let coordinate = |name: &str| -> f64 {
            let start = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            let end = start + line[start..].find('"').unwrap();
            line[start..end].parse().unwrap()
        };
        let (x_min, y_min, x_max, y_max) = (
            coordinate("xMin"),
            coordinate("yMin"),
            coordinate("xMax"),
            coordinate("yMax"),
        );
        assert!(
            x_min >= 319.0 && x_max <= 561.0 && y_min >= 699.0 && y_max <= 801.0,
            "{word} lies outside the chosen rectangle: {line}"
        );
    }
}

/// A key in the vault with a certificate from `pki`; the CA is trusted.
fn certified_key(
    session: &Session,
    pki: &judges::TestPki,
    algorithm: KeyAlgorithm,
    name: &str,
) -> String {
    let key = session
        .create_signing_key("Рабочий ключ", algorithm, name)
        .unwrap();
    assert!(key
        .request_pem
        .starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    assert!(key.subject.is_none(), "no certificate yet");
    let issued = pki.issue_for_request(&key.id, &key.request_pem);
    let key = session
        .import_certificate(&key.id, issued.as_bytes())
        .unwrap();
    assert!(key.subject.as_deref().unwrap().contains(name), "{key:?}");
    session
        .add_trust_anchor(&std::fs::read(pki.path("ca.crt")).unwrap())
        .unwrap();
    key.id
}

#[test]
fn a_vault_key_signs_with_pending_annotations_burned_in_and_every_judge_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, clock) = workstation(tmp.path(), "sign");
    let session = new_session(&ws, "anna", "pw-anna", 71);
    let pki = judges::TestPki::new();
    let doc = import(&session);

    // A key without its certificate cannot sign yet.
    let bare = session
        .create_signing_key("Без сертификата", KeyAlgorithm::EcdsaP256, "Anna Ivanova")
        .unwrap();
    let refused = session
        .sign_document(&doc, &options(&bare.id, false))
        .unwrap_err();
    assert_eq!(refused.code(), "signing_error", "{refused}");

    let key = certified_key(
        &session,
        &pki,
        KeyAlgorithm::EcdsaP256,
        "Иванова Анна Петровна",
    );
    // The test CA's certificates are valid from the moment they were issued: sign after that.
    let real_now_ms_at_signing = real_now_ms();
    clock.set(real_now_ms_at_signing);
    note(&session, &doc, "Проверено перед подписью");
    let outcome = session.sign_document(&doc, &options(&key, true)).unwrap();
    assert_eq!(outcome.revision, 1);
    assert_eq!(outcome.burned_annotations, 1);
    assert_ne!(outcome.sha256_before, outcome.sha256_after);

    // The annotation is part of the signed revision now: listed, burned, not editable.
    let listed = session.annotations(&doc).unwrap();
    assert!(listed[0].burned);
    let edit = session
        .delete_annotation(&listed[0].annotation.id.to_string(), listed[0].revision)
        .unwrap_err();
    assert_eq!(edit.code(), "annotation_signed");
    assert!(
        session.annotations_in_view(&doc).unwrap().is_empty(),
        "the page draws it now"
    );

    assert_one_valid_signature(&session, &doc);
    let reports = session.validate_document(&doc).unwrap();
    assert!(reports[0].signer.as_deref().unwrap().contains("Иванова"));

    // The signed copy satisfies pdfsig, pyHanko (with its diff analysis) and qpdf, and pypdf
    // finds the burned-in note.
    let copy = tmp.path().join("signed.pdf");
    let report = session.export_with_annotations(&doc, &copy).unwrap();
    assert_eq!(
        report.annotations, 0,
        "nothing left to burn in: the export is the signed head"
    );
    assert_eq!(report.sha256, outcome.sha256_after);
    judges::assert_qpdf_clean(&copy);
    let pdfsig = pki.pdfsig(&copy);
    assert!(
        pdfsig.contains("Signature Validation: Signature is Valid."),
        "{pdfsig}"
    );
    assert!(
        pdfsig.contains("Certificate Validation: Certificate is Trusted."),
        "{pdfsig}"
    );
    let (valid, verdict) = pki.pyhanko_validate(&copy, true);
    assert!(valid, "{verdict}");
    assert_mark_read_by_poppler(&session, &key, &copy, real_now_ms_at_signing);
    // The signature carries the key's certificate and the chain kept with it (the organisation's
    // CA), so a validator needs nothing but the root it trusts.
    let carried =
        outpost_pdf::signatures_awaiting_time_stamp(&std::fs::read(&copy).unwrap()).unwrap();
    assert_eq!(carried.len(), 2, "the signer's certificate and the CA's");
    assert!(
        carried.contains(&pki.ca_der()),
        "the CA certificate is embedded"
    );
    let found = judges::pypdf_annotations(&copy);
    assert!(
        found
            .iter()
            .any(|a| a["contents"] == "Проверено перед подписью"),
        "{found:?}"
    );

    // The audit chain records the signature with the hashes before and after.
    let entries = session.audit_entries(0, 1000).unwrap();
    let sign = entries
        .iter()
        .find(|e| e.action == "sign")
        .expect("a sign entry");
    assert!(
        sign.detail.contains(&outcome.sha256_before) && sign.detail.contains(&outcome.sha256_after)
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.action == "key_management")
            .count(),
        4,
        "two keys, one certificate, one trust anchor"
    );

    // All of it survives locking.
    session.lock().unwrap();
    let session = ws.unlock("anna", "pw-anna", rng(72)).unwrap();
    assert_eq!(
        session.validate_document(&doc).unwrap()[0].status,
        SignatureStatus::Valid
    );
    assert_eq!(session.signing_keys().unwrap().len(), 2);
}

#[test]
fn an_rsa_key_countersigns_and_later_annotations_are_reported_in_the_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, clock) = workstation(tmp.path(), "countersign");
    let session = new_session(&ws, "boris", "pw-boris", 73);
    let pki = judges::TestPki::new();
    let doc = import(&session);
    let first = certified_key(&session, &pki, KeyAlgorithm::EcdsaP256, "First Approver");
    let second = certified_key(&session, &pki, KeyAlgorithm::Rsa3072, "Second Approver");
    clock.set(real_now_ms());
    session
        .sign_document(&doc, &options(&first, false))
        .unwrap();
    let outcome = session
        .sign_document(&doc, &options(&second, true))
        .unwrap();
    assert_eq!(outcome.revision, 2);
    let statuses: Vec<SignatureStatus> = session
        .validate_document(&doc)
        .unwrap()
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        vec![SignatureStatus::ValidLaterSigned, SignatureStatus::Valid]
    );

    // A note made after signing is burned into the exported copy only: both signatures hold
    // there, reported as later annotated.
    note(&session, &doc, "after signing");
    let copy = tmp.path().join("annotated.pdf");
    session.export_with_annotations(&doc, &copy).unwrap();
    let anchors = vec![outpost_pdf::certificate_from_der(&pki.ca_der()).unwrap()];
    let exported = std::fs::read(&copy).unwrap();
    for report in outpost_pdf::validate_signatures(&exported, &anchors).unwrap() {
        assert_eq!(
            report.status,
            SignatureStatus::ValidLaterAnnotated,
            "{report:?}"
        );
    }
    // The judges agree: qpdf finds the copy sound, pdfsig both signatures valid, and pyHanko
    // both intact (its diff analysis off: its default policy refuses markup added after a
    // signature that did not allow it, which Acrobat and the standard accept).
    judges::assert_qpdf_clean(&copy);
    let pdfsig = pki.pdfsig(&copy);
    assert_eq!(pdfsig.matches("Signature is Valid.").count(), 2, "{pdfsig}");
    let (valid, verdict) = pki.pyhanko_validate(&copy, false);
    assert!(valid, "{verdict}");
    assert_eq!(
        verdict.matches("The signature is judged VALID.").count(),
        2,
        "{verdict}"
    );

    // A certificate issued for another key is refused.
    let other = session
        .create_signing_key("Другой", KeyAlgorithm::EcdsaP256, "Other")
        .unwrap();
    let foreign = pki.issue_for_request("foreign", &session.signing_keys().unwrap()[0].request_pem);
    let refused = session
        .import_certificate(&other.id, foreign.as_bytes())
        .unwrap_err();
    assert_eq!(refused.code(), "signing_error");
}

#[test]
fn a_batch_reports_progress_stops_when_cancelled_and_a_rerun_signs_only_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, clock) = workstation(tmp.path(), "batch");
    let session = new_session(&ws, "vika", "pw-vika", 74);
    let pki = judges::TestPki::new();
    let documents: Vec<DocumentId> = (0..6)
        .map(|i| {
            let bytes = sample(
                SampleKind::OperationalReport,
                Language::English,
                1,
                100 + i,
                None,
            );
            session
                .import_bytes(bytes, &format!("report-{i}.pdf"))
                .unwrap()
                .document()
                .id
                .clone()
        })
        .collect();
    let key = certified_key(&session, &pki, KeyAlgorithm::EcdsaP256, "Supervisor");
    clock.set(real_now_ms());
    let mut listed_twice = documents.clone();
    listed_twice.push(documents[0].clone());
    let request = BatchRequest {
        batch_id: "batch-1".into(),
        documents: listed_twice,
        options: options(&key, true),
        parallelism: 2,
        token: None,
    };

    assert_eq!(session.documents_awaiting_signature().unwrap().len(), 6);

    // Cancel once two documents are done: the workers stop between documents.
    // Meanwhile, a second run of the same batch is refused (it would sign the same documents).
    let cancel = AtomicBool::new(false);
    let seen = Mutex::new(Vec::new());
    let second_run = Mutex::new(None);
    let under_way = Mutex::new(Vec::new());
    let report = session
        .sign_batch(
            &request,
            &|p| {
                seen.lock().unwrap().push((p.done, p.total));
                under_way
                    .lock()
                    .unwrap()
                    .push((p.signing.contains(&p.document), p.signing.len()));
                let mut second = second_run.lock().unwrap();
                if second.is_none() {
                    *second = Some(session.sign_batch(&request, &|_| {}, &AtomicBool::new(false)));
                }
                if p.done >= 2 {
                    cancel.store(true, Ordering::SeqCst);
                }
            },
            &cancel,
        )
        .unwrap();
    let refused = second_run
        .into_inner()
        .unwrap()
        .expect("tried while running");
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("already being signed")),
        "{refused:?}"
    );
    assert!(report.cancelled);
    assert_eq!(report.total, 6, "a document listed twice counts once");
    assert!((2..6).contains(&report.signed), "{report:?}");
    let progress = seen.into_inner().unwrap();
    assert_eq!(progress[0], (1, 6));
    // Each report names what is being signed now: never the document just finished, at most one
    // per worker, and the next one as soon as the first finished.
    let under_way = under_way.into_inner().unwrap();
    assert!(
        under_way.iter().all(|&(finished, n)| !finished && n <= 2),
        "{under_way:?}"
    );
    assert!(under_way[0].1 >= 1, "{under_way:?}");
    assert!(progress.iter().all(|&(_, total)| total == 6));
    // The stopped batch is offered to be finished, with what it has left, in its order.
    let unfinished = session.unfinished_batches().unwrap();
    assert_eq!(unfinished.len(), 1, "{unfinished:?}");
    assert_eq!(
        (unfinished[0].batch.id.as_str(), unfinished[0].batch.total),
        ("batch-1", 6)
    );
    let left: Vec<&DocumentId> = documents
        .iter()
        .filter(|d| session.validate_document(d).unwrap().is_empty())
        .collect();
    assert_eq!(
        unfinished[0].documents_left.iter().collect::<Vec<_>>(),
        left
    );

    // Running the same batch again signs only what is left.
    let first_run = report.signed;
    let rerun = session
        .sign_batch(&request, &|_| {}, &AtomicBool::new(false))
        .unwrap();
    assert!(!rerun.cancelled);
    assert_eq!(rerun.already_signed, first_run);
    assert_eq!(rerun.signed, 6 - first_run);
    assert!(rerun.failed.is_empty());
    assert!(session.unfinished_batches().unwrap().is_empty());
    for document in &documents {
        assert_one_valid_signature(&session, document);
    }
    // Every output of the batch passes the third-party judges.
    for (n, document) in documents.iter().enumerate() {
        let copy = tmp.path().join(format!("batch-{n}.pdf"));
        session.export_with_annotations(document, &copy).unwrap();
        pki.assert_judges_accept(&copy, 1);
    }
    let entries = session.audit_entries(0, 10_000).unwrap();
    assert_eq!(
        entries.iter().filter(|e| e.action == "sign_batch").count(),
        1
    );

    // A document that cannot be signed fails alone, with its reason.
    let mut bad = request.clone();
    bad.batch_id = "batch-2".into();
    bad.documents = vec![DocumentId("no-such-document".into()), documents[1].clone()];
    let report = session
        .sign_batch(&bad, &|_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, DocumentId("no-such-document".into()));
    assert!(
        report.failed[0].1.contains("no-such-document"),
        "{report:?}"
    );
    assert_eq!(report.signed, 1, "the good document is countersigned");
    // Every document was tried: the batch is ended, not offered again.
    assert!(session.unfinished_batches().unwrap().is_empty());

    // A batch stopped at once can be let go instead of finished.
    let mut stopped = request.clone();
    stopped.batch_id = "batch-3".into();
    let stop_now = AtomicBool::new(true);
    let report = session.sign_batch(&stopped, &|_| {}, &stop_now).unwrap();
    assert_eq!((report.signed, report.cancelled), (0, true));
    let unfinished = session.unfinished_batches().unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].documents_left.len(), 6);
    session.let_batch_go("batch-3").unwrap();
    assert!(session.unfinished_batches().unwrap().is_empty());

    // A stopped batch is finished with its own key only, and a document signed outside it since
    // it stopped is not offered again (it would be signed twice).
    let mut fourth = request.clone();
    fourth.batch_id = "batch-4".into();
    fourth.options.mark = None;
    let report = session.sign_batch(&fourth, &|_| {}, &stop_now).unwrap();
    assert_eq!(report.signed, 0);
    session
        .sign_document(&documents[2], &options(&key, false))
        .unwrap();
    let left = session.unfinished_batches().unwrap()[0]
        .documents_left
        .clone();
    assert_eq!(left.len(), 5);
    assert!(!left.contains(&documents[2]), "{left:?}");
    let other_key = certified_key(&session, &pki, KeyAlgorithm::EcdsaP256, "Deputy");
    let mut with_other_key = fourth.clone();
    with_other_key.documents = left.clone();
    with_other_key.options.key_id = other_key;
    let refused = session
        .sign_batch(&with_other_key, &|_| {}, &AtomicBool::new(false))
        .unwrap_err();
    assert_eq!(refused.code(), "signing_error");
    assert!(
        refused.to_string().contains("finish it with that key"),
        "{refused}"
    );
    let mut rest = fourth.clone();
    rest.documents = left;
    let report = session
        .sign_batch(&rest, &|_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!((report.signed, report.failed.len()), (5, 0), "{report:?}");
    assert!(session.unfinished_batches().unwrap().is_empty());
}
