//! Document revisions sync: a signature made offline reaches the server and the other
//! workstations; two supervisors who sign the same document offline do not overwrite each other —
//! the second one's revision is kept on the server as a conflict branch, their workstation takes
//! the winning head and asks for the document to be signed again, and re-signing brings both
//! signatures to everyone.

mod common;

use std::sync::atomic::AtomicBool;

use outpost_protocol::{AssignmentTarget, Role};
use outpost_server::testing::InProcessServer;
use outpost_workstation::{
    DocumentId, KeyAlgorithm, Language, SampleKind, Session, SignOptions, SignatureStatus,
    Workstation,
};

struct Desk {
    _dir: tempfile::TempDir,
    _workstation: Workstation,
    session: Session,
    key_id: String,
}

/// A supervisor's workstation: connected, documents pulled, a server-certified signing key.
fn desk(server: &InProcessServer, username: &str, seed: u64) -> Desk {
    let account = server.account(username, Role::Supervisor, Some("North"));
    let dir = tempfile::tempdir().expect("dir");
    let (workstation, clock) = common::workstation(dir.path(), &format!("rev-{username}"));
    // The workstation's clock agrees with the server's (certificates start at the server's now).
    clock.set(server.service.now() * 1000 + 60_000);
    let session = common::new_session(&workstation, username, "local-password", seed);
    common::connect(&session, server, &account).expect("connect");
    session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    let key = session
        .create_signing_key(username, KeyAlgorithm::EcdsaP256, username)
        .expect("key");
    session
        .request_signer_certificate(&key.id)
        .expect("certificate");
    Desk {
        _dir: dir,
        _workstation: workstation,
        session,
        key_id: key.id,
    }
}

fn sign(desk: &Desk, document: &DocumentId, reason: &str) {
    desk.session
        .sign_document(
            document,
            &SignOptions {
                key_id: desk.key_id.clone(),
                reason: reason.into(),
                page: 1,
                mark: None,
                certify: None,
            },
        )
        .expect("sign");
}

fn only_document(session: &Session) -> DocumentId {
    let documents = session.documents().expect("documents");
    assert_eq!(documents.len(), 1, "{documents:?}");
    documents[0].id.clone()
}

fn head_sha256(session: &Session, document: &DocumentId) -> String {
    session
        .document_revisions(document)
        .expect("revisions")
        .last()
        .expect("a revision")
        .sha256
        .clone()
}

fn statuses(session: &Session, document: &DocumentId) -> Vec<SignatureStatus> {
    session
        .validate_document(document)
        .expect("validate")
        .into_iter()
        .map(|report| report.status)
        .collect()
}

#[test]
fn offline_signatures_meet_on_the_server_and_the_loser_signs_again() {
    let server = InProcessServer::start_with_ca();
    server.unit("North");
    let contract = common::sample(
        SampleKind::ProcurementContract,
        Language::Russian,
        2,
        3,
        Some("revisions"),
    );
    let server_id = server.document(
        "Contract",
        contract,
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let ivan = desk(&server, "ivan", 11);
    let olga = desk(&server, "olga", 12);
    let at_ivan = only_document(&ivan.session);
    let at_olga = only_document(&olga.session);

    // Both sign offline, on the same head.
    sign(&ivan, &at_ivan, "Approved by Ivan");
    sign(&olga, &at_olga, "Approved by Olga");
    let olga_signed = head_sha256(&olga.session, &at_olga);
    assert_eq!(olga.session.pending_operations().expect("pending"), 1);

    // Ivan's reaches the server first and becomes the head.
    let pushed = ivan.session.sync_push().expect("push");
    assert_eq!((pushed.applied, pushed.resign_needed.len()), (1, 0));
    assert_eq!(ivan.session.pending_operations().expect("pending"), 0);
    let ivan_signed = head_sha256(&ivan.session, &at_ivan);
    let on_server = server
        .block_on(server.service.store().document_by_id(&server_id))
        .expect("lookup")
        .expect("the document");
    assert_eq!(on_server.sha256, ivan_signed);

    // Olga's loses: kept on the server as a conflict branch; her workstation now holds Ivan's
    // head, with his valid signature, and asks her to sign again.
    let pushed = olga.session.sync_push().expect("push");
    assert_eq!(pushed.resign_needed, vec![at_olga.clone()]);
    assert_eq!(pushed.applied, 0);
    assert!(server
        .block_on(server.service.blobs().contains(&olga_signed))
        .expect("lookup"));
    assert_eq!(head_sha256(&olga.session, &at_olga), ivan_signed);
    assert_eq!(
        statuses(&olga.session, &at_olga),
        vec![SignatureStatus::Valid]
    );
    let requests = olga.session.resign_requests().expect("requests");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].document_id, at_olga.0);
    assert_eq!(requests[0].server_sha256, ivan_signed);
    assert!(
        requests[0].discarded[0].contains(&olga_signed),
        "{requests:?}"
    );
    assert_eq!(olga.session.pending_operations().expect("pending"), 0);
    let audit = olga.session.audit_entries(0, 1000).expect("audit");
    assert!(audit
        .iter()
        .any(|e| e.action == "sync_revision" && e.detail.contains("sign the document again")));

    // She signs again on the new head: the request is answered and her revision applies.
    sign(&olga, &at_olga, "Approved by Olga");
    assert!(olga.session.resign_requests().expect("requests").is_empty());
    let pushed = olga.session.sync_push().expect("push");
    assert_eq!((pushed.applied, pushed.resign_needed.len()), (1, 0));
    let both = head_sha256(&olga.session, &at_olga);

    // Ivan pulls Olga's countersignature: the same bytes, both signatures valid.
    let pulled = ivan
        .session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    assert_eq!(pulled.updated, vec![at_ivan.clone()]);
    assert!(pulled.deferred.is_empty());
    assert_eq!(head_sha256(&ivan.session, &at_ivan), both);
    assert_eq!(
        statuses(&ivan.session, &at_ivan),
        vec![SignatureStatus::ValidLaterSigned, SignatureStatus::Valid]
    );
    // Nothing waits anywhere, and pulling again changes nothing.
    assert_eq!(ivan.session.pending_operations().expect("pending"), 0);
    let again = ivan
        .session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    assert!(again.updated.is_empty() && again.deferred.is_empty());
}

#[test]
fn a_moved_head_waits_while_a_local_revision_is_unsent_and_nothing_is_lost() {
    let server = InProcessServer::start_with_ca();
    server.unit("North");
    let report = common::sample(
        SampleKind::OperationalReport,
        Language::English,
        1,
        5,
        Some("waiting"),
    );
    server.document(
        "Report",
        report,
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let ivan = desk(&server, "ivan", 21);
    let olga = desk(&server, "olga", 22);
    let at_ivan = only_document(&ivan.session);
    let at_olga = only_document(&olga.session);
    sign(&ivan, &at_ivan, "Seen");
    ivan.session.sync_push().expect("push");

    // Olga signs, then pulls before pushing: Ivan's head waits, her revision stays.
    sign(&olga, &at_olga, "Seen too");
    let olga_signed = head_sha256(&olga.session, &at_olga);
    let pulled = olga
        .session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    assert_eq!(pulled.deferred.len(), 1, "{pulled:?}");
    assert_eq!(head_sha256(&olga.session, &at_olga), olga_signed);
    assert_eq!(olga.session.pending_operations().expect("pending"), 1);
    // The push meets the conflict, keeps hers on the server, and takes Ivan's head.
    let pushed = olga.session.sync_push().expect("push");
    assert_eq!(pushed.resign_needed, vec![at_olga.clone()]);
    assert!(server
        .block_on(server.service.blobs().contains(&olga_signed))
        .expect("lookup"));
    assert_eq!(
        head_sha256(&olga.session, &at_olga),
        head_sha256(&ivan.session, &at_ivan)
    );
}

#[test]
fn a_server_restored_from_a_backup_gets_back_everything_it_lost() {
    // Found by the pull cursor, ahead of the restored server.
    restored_server_gets_back_what_it_lost(true);
}

#[test]
fn a_restore_is_found_by_the_position_a_push_reported_when_no_pull_followed() {
    restored_server_gets_back_what_it_lost(false);
}

fn restored_server_gets_back_what_it_lost(pull_after_push: bool) {
    let mut server = InProcessServer::start_with_ca();
    server.unit("North");
    let order = common::sample(
        SampleKind::OperationalReport,
        Language::Russian,
        1,
        9,
        Some("restored"),
    );
    server.document(
        "Order",
        order,
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let ivan = desk(&server, "ivan", 41);
    let document = only_document(&ivan.session);
    let backup = server.backup();

    // After the backup: a signature, a note and audit entries reach the server...
    sign(&ivan, &document, "Approved");
    let signed = head_sha256(&ivan.session, &document);
    ivan.session
        .create_annotation(&document, common::note_draft("после резервной копии"))
        .expect("annotate");
    let pushed = ivan.session.sync_push().expect("push");
    assert_eq!(pushed.applied, 2);
    let never = AtomicBool::new(false);
    if pull_after_push {
        ivan.session.sync_pull(&never, &mut |_| {}).expect("pull");
    }
    // (Without that pull the cursor alone would not show the loss; the position the push answer
    // reported does.)
    assert!(ivan.session.sync_audit().expect("audit").is_empty());
    // ...and are lost when the server is restored from the backup.
    server.restore(backup);

    // The workstation notices (its cursor is ahead), pulls from the start and offers again
    // everything the server no longer has; nothing is flagged, nothing is lost.
    assert_eq!(ivan.session.sync_push().expect("push").applied, 0);
    ivan.session.sync_pull(&never, &mut |_| {}).expect("pull");
    assert_eq!(ivan.session.pending_operations().expect("pending"), 2);
    let pushed = ivan.session.sync_push().expect("push");
    assert_eq!((pushed.applied, pushed.resign_needed.len()), (2, 0));
    assert!(ivan.session.sync_audit().expect("audit").is_empty());
    assert_eq!(head_sha256(&ivan.session, &document), signed);

    // A colleague who connects now gets the signed document and the note.
    let olga = desk(&server, "olga", 42);
    let at_olga = only_document(&olga.session);
    assert_eq!(head_sha256(&olga.session, &at_olga), signed);
    assert_eq!(
        statuses(&olga.session, &at_olga),
        vec![SignatureStatus::Valid]
    );
    let notes = olga.session.annotations(&at_olga).expect("annotations");
    assert_eq!(notes.len(), 1, "{notes:?}");
}
