//! Document revisions sync: a signature made offline reaches the server and the other
//! workstations; two supervisors who sign the same document offline do not overwrite each other —
//! the second one's revision is kept on the server as a conflict branch, their workstation takes
//! the winning head and asks for the document to be signed again, and re-signing brings both
//! signatures to everyone.

mod common;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::head_sha256;
use outpost_protocol::{AssignmentTarget, Role};
use outpost_server::testing::{FaultyProxy, InProcessServer};
use outpost_workstation::{
    DocumentId, DocumentStanding, Language, PadesLevel, PushProgress, Revocation, SampleKind,
    Session, SignOptions, SignatureKind, SignatureReport, SignatureStatus, Workstation,
    REVISIONS_PER_PUSH,
};

struct Desk {
    _dir: tempfile::TempDir,
    _workstation: Workstation,
    session: Session,
    key_id: String,
}

/// A supervisor's workstation: connected, documents pulled, a server-certified signing key.
fn desk(server: &InProcessServer, username: &str, seed: u64) -> Desk {
    desk_via(server, &server.base_url, username, seed)
}

/// Like [`desk`], talking to the server at `base_url` (a proxy in front of it).
fn desk_via(server: &InProcessServer, base_url: &str, username: &str, seed: u64) -> Desk {
    let account = server.account(username, Role::Supervisor, Some("North"));
    let (dir, workstation, _clock, session) =
        common::connected_in_step(server, base_url, &account, &format!("rev-{username}"), seed);
    session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    let key_id = common::server_certified_key(&session, username);
    Desk {
        _dir: dir,
        _workstation: workstation,
        session,
        key_id,
    }
}

fn sign(desk: &Desk, document: &DocumentId, reason: &str) {
    desk.session
        .sign_document(document, &SignOptions::invisible(&desk.key_id, reason))
        .expect("sign");
}

/// The desk's documents, by title.
fn titled(desk: &Desk) -> Vec<DocumentId> {
    common::titled_documents(&desk.session)
}

fn only_document(session: &Session) -> DocumentId {
    let documents = session.documents().expect("documents");
    assert_eq!(documents.len(), 1, "{documents:?}");
    documents[0].id.clone()
}

fn statuses(session: &Session, document: &DocumentId) -> Vec<SignatureStatus> {
    session
        .validate_document(document)
        .expect("validate")
        .into_iter()
        .map(|report| report.status)
        .collect()
}

/// The document's signatures (not its time-stamps) and time-stamps, validated.
fn signatures_and_stamps(
    session: &Session,
    document: &DocumentId,
) -> (Vec<SignatureReport>, Vec<SignatureReport>) {
    session
        .validate_document(document)
        .expect("validate")
        .into_iter()
        .partition(|report| report.kind == SignatureKind::Signature)
}

/// Asserts `count` signatures, each valid and at PAdES B-LTA.
fn assert_all_sealed(signatures: &[SignatureReport], count: usize) {
    assert_eq!(signatures.len(), count, "{signatures:#?}");
    assert!(
        signatures
            .iter()
            .all(|r| is_valid(&r.status) && r.level == Some(PadesLevel::BaselineLta)),
        "{signatures:#?}"
    );
}

/// The server's head (SHA-256) of server document `id`.
fn server_head_of(server: &InProcessServer, id: &str) -> String {
    server
        .block_on(server.service.store().document_by_id(id))
        .expect("lookup")
        .expect("the document")
        .sha256
}

/// Where a linked document stands with the server.
fn sync_state(session: &Session, document: &DocumentId) -> outpost_workstation::DocumentSyncState {
    session
        .document_sync_states()
        .expect("states")
        .into_iter()
        .find(|s| &s.document_id == document)
        .expect("a linked document")
}

/// The unit North, as an assignment's target.
fn north() -> AssignmentTarget {
    AssignmentTarget::Unit {
        name: "North".into(),
    }
}

/// Ends the unit North's assignment of server document `id`.
fn take_from_north(server: &InProcessServer, id: &str) {
    server
        .block_on(server.service.revoke_assignment(
            outpost_server::service::Actor::Cli,
            id,
            &north(),
        ))
        .expect("revoke");
}

fn is_valid(status: &SignatureStatus) -> bool {
    matches!(
        status,
        SignatureStatus::Valid | SignatureStatus::ValidLaterSigned
    )
}

#[test]
fn offline_signatures_meet_on_the_server_and_the_loser_signs_again() {
    // Both orders: whoever reaches the server first wins.
    offline_signatures_meet(("ivan", 11), ("olga", 12));
    offline_signatures_meet(("olga", 21), ("ivan", 22));
}

/// Two supervisors sign the same head offline; `winner` pushes first.
fn offline_signatures_meet(winner: (&str, u64), loser: (&str, u64)) {
    // The revision protocol alone: the server leaves signed revisions as pushed.
    let mut server = InProcessServer::start_with_ca_without_long_term();
    // pdfsig and pyHanko judge the certificates' validity at the real time.
    server.move_clock_to_system_time();
    server.unit("North");
    let contract = common::sample(
        SampleKind::ProcurementContract,
        Language::Russian,
        2,
        3,
        Some("revisions"),
    );
    let contract_size = contract.len() as u64;
    let server_id = server.document(
        "Contract",
        contract,
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let first = desk(&server, winner.0, winner.1);
    let second = desk(&server, loser.0, loser.1);
    let (first_reason, second_reason) = (
        format!("Approved by {}", winner.0),
        format!("Approved by {}", loser.0),
    );
    let at_first = only_document(&first.session);
    let at_second = only_document(&second.session);

    // Both sign offline, on the same head.
    sign(&first, &at_first, &first_reason);
    sign(&second, &at_second, &second_reason);
    let second_signed = head_sha256(&second.session, &at_second);
    assert_eq!(second.session.pending_operations().expect("pending"), 1);

    // The winner's revision reaches the server first and becomes the head.
    let pushed = first.session.sync_push().expect("push");
    assert_eq!((pushed.applied, pushed.resign_needed.len()), (1, 0));
    assert_eq!(first.session.pending_operations().expect("pending"), 0);
    let first_signed = head_sha256(&first.session, &at_first);
    let on_server = server
        .block_on(server.service.store().document_by_id(&server_id))
        .expect("lookup")
        .expect("the document");
    assert_eq!(on_server.sha256, first_signed);

    // The other one loses: kept on the server as a conflict branch; the loser's workstation now
    // holds the winner's head, with its valid signature, and asks for the document to be signed
    // again.
    let pushed = second.session.sync_push().expect("push");
    assert_eq!(pushed.resign_needed, vec![at_second.clone()]);
    assert_eq!(pushed.applied, 0);
    assert!(server
        .block_on(server.service.blobs().contains(&second_signed))
        .expect("lookup"));
    assert_eq!(head_sha256(&second.session, &at_second), first_signed);
    assert_eq!(
        statuses(&second.session, &at_second),
        vec![SignatureStatus::Valid]
    );
    let requests = second.session.resign_requests().expect("requests");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].document_id, at_second.0);
    assert_eq!(requests[0].server_sha256, first_signed);
    assert!(
        requests[0].discarded[0].contains(&second_signed),
        "{requests:?}"
    );
    assert_eq!(second.session.pending_operations().expect("pending"), 0);
    let audit = second.session.audit_entries(0, 1000).expect("audit");
    assert!(audit
        .iter()
        .any(|e| e.action == "sync_revision" && e.detail.contains("sign the document again")));

    // The loser signs again on the new head: the request is answered and the revision applies.
    sign(&second, &at_second, &second_reason);
    assert!(second
        .session
        .resign_requests()
        .expect("requests")
        .is_empty());
    let pushed = second.session.sync_push().expect("push");
    assert_eq!((pushed.applied, pushed.resign_needed.len()), (1, 0));
    let both = head_sha256(&second.session, &at_second);

    // The winner pulls the countersignature: the same bytes, both signatures valid. Only what
    // was appended to the winner's revision is fetched (a range request from where it ends).
    server.record_requests();
    let pulled = first
        .session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    let fetched: Vec<_> = server
        .recorded_requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.uri.ends_with("/content"))
        .collect();
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    let from: u64 = fetched[0]
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .expect("a range request");
    assert!(
        from > contract_size,
        "{from} vs the original {contract_size}"
    );
    assert_eq!(pulled.updated, vec![at_first.clone()]);
    assert!(pulled.deferred.is_empty());
    assert_eq!(head_sha256(&first.session, &at_first), both);
    assert_eq!(
        statuses(&first.session, &at_first),
        vec![SignatureStatus::ValidLaterSigned, SignatureStatus::Valid]
    );
    // Nothing waits anywhere, and pulling again changes nothing.
    assert_eq!(first.session.pending_operations().expect("pending"), 0);
    let again = first
        .session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    assert!(again.updated.is_empty() && again.deferred.is_empty());

    // Every PDF the server keeps of the document — the winner's revision, the conflict branch
    // and the main line's head with both signatures — satisfies qpdf, pdfsig and pyHanko.
    let judges = ServerCaJudges::new(&server);
    judges.assert_accepted(&server, &first_signed, 1);
    judges.assert_accepted(&server, &second_signed, 1);
    judges.assert_accepted(&server, &both, 2);
}

/// pdfsig (with an NSS database trusting the server's CA), pyHanko (trusting only that CA, its
/// diff analysis on) and qpdf, for the PDFs a server keeps.
struct ServerCaJudges {
    dir: tempfile::TempDir,
}

impl ServerCaJudges {
    fn new(server: &InProcessServer) -> ServerCaJudges {
        let dir = tempfile::tempdir().expect("dir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, server.service.ca_certificate().expect("the CA")).expect("write");
        let nss = format!("sql:{}", dir.path().display());
        for args in [
            vec!["-N", "-d", &nss, "--empty-password"],
            vec![
                "-A",
                "-d",
                &nss,
                "-n",
                "outpost-ca",
                "-t",
                "CT,C,C",
                "-i",
                ca.to_str().expect("a UTF-8 path"),
            ],
        ] {
            let out = std::process::Command::new("certutil")
                .args(&args)
                .output()
                .expect("certutil (libnss3-tools)");
            assert!(out.status.success(), "certutil {args:?}: {out:?}");
        }
        ServerCaJudges { dir }
    }

    /// The server's bytes of `sha256` carry `signatures` signatures, and every judge accepts
    /// each of them.
    fn assert_accepted(&self, server: &InProcessServer, sha256: &str, signatures: usize) {
        let bytes = server
            .block_on(server.service.blobs().get(sha256))
            .expect("the server keeps the revision");
        let pdf = self.dir.path().join(format!("{sha256}.pdf"));
        std::fs::write(&pdf, &bytes).expect("write");
        let run = |program: &str, args: &[&std::ffi::OsStr]| {
            let out = std::process::Command::new(program)
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success(), text)
        };
        let (clean, qpdf) = run("qpdf", &["--check".as_ref(), pdf.as_os_str()]);
        assert!(clean, "qpdf: {qpdf}");
        let nss = format!("sql:{}", self.dir.path().display());
        let (_, pdfsig) = run(
            "pdfsig",
            &["-nssdir".as_ref(), nss.as_ref(), pdf.as_os_str()],
        );
        for verdict in [
            "Signature Validation: Signature is Valid.",
            "Certificate Validation: Certificate is Trusted.",
        ] {
            assert_eq!(
                pdfsig.matches(verdict).count(),
                signatures,
                "pdfsig: {pdfsig}"
            );
        }
        let python = std::env::var("OUTPOST_TEST_PYTHON").expect("OUTPOST_TEST_PYTHON");
        let pyhanko = std::path::Path::new(&python).with_file_name("pyhanko");
        let ca = self.dir.path().join("ca.pem");
        let (valid, report) = run(
            pyhanko.to_str().expect("a UTF-8 path"),
            &[
                "sign".as_ref(),
                "validate".as_ref(),
                "--pretty-print".as_ref(),
                "--trust".as_ref(),
                ca.as_os_str(),
                "--trust-replace".as_ref(),
                "--no-revocation-check".as_ref(),
                pdf.as_os_str(),
            ],
        );
        assert!(valid, "pyHanko: {report}");
        assert_eq!(
            report.matches("The signature is judged VALID.").count(),
            signatures,
            "pyHanko: {report}"
        );
    }
}

#[test]
fn a_moved_head_waits_while_a_local_revision_is_unsent_and_nothing_is_lost() {
    // The revision protocol alone: the server leaves signed revisions as pushed.
    let server = InProcessServer::start_with_ca_without_long_term();
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
    // The revision protocol alone: the server leaves signed revisions as pushed.
    let mut server = InProcessServer::start_with_ca_without_long_term();
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

/// Syncs until nothing waits and a whole round went through, or gives up after `rounds`.
fn sync_until_quiet(desk: &Desk, rounds: usize) -> (usize, Vec<DocumentId>) {
    let never = AtomicBool::new(false);
    let (mut failures, mut resign) = (0, Vec::new());
    for _ in 0..rounds {
        let pushed = desk.session.sync_push();
        let pulled = desk.session.sync_pull(&never, &mut |_| {});
        match (pushed, pulled) {
            (Ok(pushed), Ok(_)) => {
                resign.extend(pushed.resign_needed);
                if desk.session.pending_operations().expect("pending") == 0 {
                    return (failures, resign);
                }
            }
            (pushed, _) => {
                failures += 1;
                if let Ok(pushed) = pushed {
                    resign.extend(pushed.resign_needed);
                }
            }
        }
    }
    panic!("still not synced after {rounds} rounds");
}

#[test]
fn signed_revisions_converge_through_a_faulty_network() {
    let server = InProcessServer::start_with_ca();
    server.unit("North");
    let mut server_ids = Vec::new();
    for (n, kind) in [
        SampleKind::PersonnelRecord,
        SampleKind::ProcurementContract,
        SampleKind::OperationalReport,
    ]
    .into_iter()
    .enumerate()
    {
        let pdf = common::sample(kind, Language::English, 1, 70 + n as u64, Some("faults"));
        server_ids.push(server.document(
            &format!("Document {n}"),
            pdf,
            AssignmentTarget::Unit {
                name: "North".into(),
            },
        ));
    }
    let target = server.address();
    let proxies = [
        FaultyProxy::start(&server.runtime, target, 301),
        FaultyProxy::start(&server.runtime, target, 302),
    ];
    let ivan = desk_via(&server, &proxies[0].base_url(), "ivan", 51);
    let olga = desk_via(&server, &proxies[1].base_url(), "olga", 52);
    let (at_ivan, at_olga) = (titled(&ivan), titled(&olga));
    assert_eq!((at_ivan.len(), at_olga.len()), (3, 3));

    // Both sign the first document; each signs one other. Then they sync through proxies that
    // refuse, cut and delay connections and throw answers away after the server acted.
    sign(&ivan, &at_ivan[0], "Ivan");
    sign(&olga, &at_olga[0], "Olga");
    sign(&ivan, &at_ivan[1], "Ivan");
    sign(&olga, &at_olga[2], "Olga");
    for proxy in &proxies {
        proxy.set_faults(true);
    }
    let (ivan_failures, mut resign) = sync_until_quiet(&ivan, 300);
    let (olga_failures, olga_resign) = sync_until_quiet(&olga, 300);
    resign.extend(olga_resign);
    assert!(
        ivan_failures + olga_failures >= 3,
        "the faults hardly hit: {ivan_failures} + {olga_failures}"
    );
    // Exactly one of them lost the first document (its revision is kept on the server).
    assert_eq!(resign.len(), 1, "{resign:?}");
    let (loser, loser_document) = if resign[0] == at_ivan[0] {
        (&ivan, &at_ivan[0])
    } else {
        (&olga, &at_olga[0])
    };
    sign(loser, loser_document, "Signed again");
    for proxy in &proxies {
        proxy.set_faults(false);
    }
    sync_until_quiet(loser, 5);
    sync_until_quiet(&ivan, 5);
    sync_until_quiet(&olga, 5);

    // Both hold exactly the server's heads, and every signature on them validates.
    for (n, server_id) in server_ids.iter().enumerate() {
        let on_server = server
            .block_on(server.service.store().document_by_id(server_id))
            .expect("lookup")
            .expect("the document");
        let server_document = titled(&ivan)[n].clone();
        assert_eq!(
            head_sha256(&ivan.session, &server_document),
            on_server.sha256
        );
        assert_eq!(
            head_sha256(&olga.session, &titled(&olga)[n]),
            on_server.sha256
        );
        // Every signature came back sealed for the long term by the server.
        let expected = if n == 0 { 2 } else { 1 };
        let (signatures, stamps) = signatures_and_stamps(&olga.session, &titled(&olga)[n]);
        assert_eq!(signatures.len(), expected, "document {n}: {signatures:#?}");
        assert!(
            signatures
                .iter()
                .all(|r| is_valid(&r.status) && r.level == Some(PadesLevel::BaselineLta)),
            "document {n}: {signatures:#?}"
        );
        assert!(
            !stamps.is_empty() && stamps.iter().all(|r| is_valid(&r.status)),
            "document {n}: {stamps:#?}"
        );
    }
    assert!(ivan.session.resign_requests().expect("requests").is_empty());
    assert!(olga.session.resign_requests().expect("requests").is_empty());
}

/// pyHanko's AdES validation with the long-term archival process: revocation data is required
/// and comes only from the file. Exit status and report.
fn pyhanko_long_term(pdf: &std::path::Path, trust: &std::path::Path) -> (bool, String) {
    let python = std::env::var("OUTPOST_TEST_PYTHON").expect("OUTPOST_TEST_PYTHON");
    let pyhanko = std::path::Path::new(&python).with_file_name("pyhanko");
    let out = std::process::Command::new(pyhanko)
        .args(["sign", "adesverify", "--pretty-print", "--trust"])
        .arg(trust)
        .arg("--trust-replace")
        .arg(pdf)
        .output()
        .expect("run pyhanko");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_copy_first_taken_sealed_follows_a_head_whose_seal_gave_way() {
    let server = InProcessServer::start_with_ca();
    server.move_clock_to_system_time();
    server.unit("North");
    let server_ids = common::unit_documents(
        &server,
        "Register",
        SampleKind::PersonnelRecord,
        Language::English,
        95..96,
        "seal-gave-way",
    );
    let server_head = || server_head_of(&server, &server_ids[0]);
    let never = AtomicBool::new(false);
    let ivan = desk(&server, "ivan", 63);
    let at_ivan = titled(&ivan);

    // Ivan's signature reaches the server, which seals it (its long-term extension on top).
    sign(&ivan, &at_ivan[0], "Approved by Ivan");
    let signed = head_sha256(&ivan.session, &at_ivan[0]);
    assert_eq!(ivan.session.sync_push().expect("push").applied, 1);
    let sealed = server_head();
    assert_ne!(sealed, signed, "the server extended the signature");

    // Olga's workstation takes the document for the first time now: the sealed head, whole.
    let olga = desk(&server, "olga", 64);
    let at_olga = titled(&olga);
    assert_eq!(head_sha256(&olga.session, &at_olga[0]), sealed);

    // Ivan, not yet told of the seal, countersigns his own revision: the seal gives way to it on
    // the server (and is made again on top), so the new head does not continue Olga's copy.
    sign(&ivan, &at_ivan[0], "Countersigned by Ivan");
    assert_eq!(ivan.session.sync_push().expect("push").applied, 1);
    let moved = server_head();
    assert_ne!(moved, sealed);

    // Her next sync takes the new head whole in place of her copy: nothing waits, and both
    // signatures validate, sealed for the long term.
    let pulled = olga.session.sync_pull(&never, &mut |_| {}).expect("pull");
    assert_eq!(pulled.updated, vec![at_olga[0].clone()]);
    assert_eq!(head_sha256(&olga.session, &at_olga[0]), moved);
    let revisions = olga
        .session
        .document_revisions(&at_olga[0])
        .expect("revisions");
    let listed: Vec<_> = revisions
        .iter()
        .map(|r| (r.revision, r.sha256.as_str(), r.cause.as_str()))
        .collect();
    assert_eq!(listed, vec![(0, moved.as_str(), "from the server")]);
    assert_eq!(olga.session.pending_operations().expect("pending"), 0);
    let state = sync_state(&olga.session, &at_olga[0]);
    assert_eq!(state.standing, DocumentStanding::Synced, "{state:?}");
    let (signatures, _) = signatures_and_stamps(&olga.session, &at_olga[0]);
    assert_eq!(signatures.len(), 2, "{signatures:#?}");
    assert_all_sealed(&signatures, 2);
    // She can sign it in turn, and the server takes it.
    sign(&olga, &at_olga[0], "Approved by Olga");
    assert_eq!(olga.session.sync_push().expect("push").applied, 1);
}

#[test]
fn signatures_come_back_sealed_for_the_long_term_and_pyhanko_agrees() {
    let server = InProcessServer::start_with_ca();
    // pyHanko judges the CRL in the file at the real time: run the server on the real clock.
    server.move_clock_to_system_time();
    server.unit("North");
    let server_ids = common::unit_documents(
        &server,
        "Record",
        SampleKind::PersonnelRecord,
        Language::English,
        90..92,
        "long-term",
    );
    let ivan = desk(&server, "ivan", 61);
    let olga = desk(&server, "olga", 62);
    let (at_ivan, at_olga) = (titled(&ivan), titled(&olga));
    let never = AtomicBool::new(false);
    let server_head = |n: usize| server_head_of(&server, &server_ids[n]);

    // Ivan signs offline (B-B); the server extends it to B-LTA and the sealed head comes back.
    sign(&ivan, &at_ivan[0], "Approved by Ivan");
    let signed = head_sha256(&ivan.session, &at_ivan[0]);
    let (signatures, _) = signatures_and_stamps(&ivan.session, &at_ivan[0]);
    assert_eq!(signatures[0].level, Some(PadesLevel::BaselineB));
    assert_eq!(ivan.session.sync_push().expect("push").applied, 1);
    assert_ne!(server_head(0), signed, "the server extended the signature");
    let pulled = ivan.session.sync_pull(&never, &mut |_| {}).expect("pull");
    assert_eq!(pulled.updated, vec![at_ivan[0].clone()]);
    assert_eq!(head_sha256(&ivan.session, &at_ivan[0]), server_head(0));
    let (signatures, stamps) = signatures_and_stamps(&ivan.session, &at_ivan[0]);
    assert_eq!(signatures.len(), 1);
    assert_eq!(
        signatures[0].status,
        SignatureStatus::Valid,
        "{signatures:#?}"
    );
    assert_eq!(
        signatures[0].level,
        Some(PadesLevel::BaselineLta),
        "{signatures:#?} {stamps:#?}"
    );
    assert_eq!(stamps.len(), 1);
    assert_eq!(stamps[0].status, SignatureStatus::Valid, "{stamps:#?}");
    assert!(stamps[0]
        .signer
        .as_deref()
        .unwrap_or_default()
        .contains("time-stamping authority"));

    // Olga takes the sealed head and countersigns on top: both signatures end at B-LTA and the
    // first one's seal stays valid.
    olga.session.sync_pull(&never, &mut |_| {}).expect("pull");
    assert_eq!(head_sha256(&olga.session, &at_olga[0]), server_head(0));
    sign(&olga, &at_olga[0], "Approved by Olga");
    assert_eq!(olga.session.sync_push().expect("push").applied, 1);
    olga.session.sync_pull(&never, &mut |_| {}).expect("pull");
    ivan.session.sync_pull(&never, &mut |_| {}).expect("pull");
    assert_eq!(head_sha256(&ivan.session, &at_ivan[0]), server_head(0));
    let (signatures, stamps) = signatures_and_stamps(&ivan.session, &at_ivan[0]);
    assert_all_sealed(&signatures, 2);
    assert_eq!(stamps.len(), 2);
    assert!(stamps.iter().all(|r| is_valid(&r.status)), "{stamps:#?}");

    // pyHanko's long-term (LTA) validation accepts both signatures, with the server's CA only.
    let dir = tempfile::tempdir().expect("dir");
    let pdf = dir.path().join("sealed.pdf");
    let bytes = server
        .block_on(server.service.blobs().get(&server_head(0)))
        .expect("the head's bytes");
    std::fs::write(&pdf, &bytes).expect("write");
    let trust = dir.path().join("ca.pem");
    std::fs::write(&trust, server.service.ca_certificate().expect("the CA")).expect("write");
    let (valid, report) = pyhanko_long_term(&pdf, &trust);
    assert!(valid, "pyHanko: {report}");
    assert_eq!(
        report.matches("The signature is judged VALID.").count(),
        2,
        "pyHanko: {report}"
    );

    // Ivan signs the second document twice before the sealed head reaches him: the server's own
    // extension of the first signature gives way to his second revision — no conflict, nothing
    // to sign again — and Olga, who had taken the first sealed head, moves to the new one.
    sign(&ivan, &at_ivan[1], "First look");
    assert_eq!(ivan.session.sync_push().expect("push").applied, 1);
    olga.session.sync_pull(&never, &mut |_| {}).expect("pull");
    let first_seal = server_head(1);
    assert_eq!(head_sha256(&olga.session, &at_olga[1]), first_seal);
    sign(&ivan, &at_ivan[1], "Approved");
    let pushed = ivan.session.sync_push().expect("push");
    assert_eq!((pushed.applied, pushed.resign_needed.len()), (1, 0));
    assert_ne!(server_head(1), first_seal);
    for desk in [&ivan, &olga] {
        desk.session.sync_pull(&never, &mut |_| {}).expect("pull");
        assert!(desk.session.resign_requests().expect("requests").is_empty());
        assert_eq!(desk.session.pending_operations().expect("pending"), 0);
    }
    assert_eq!(head_sha256(&ivan.session, &at_ivan[1]), server_head(1));
    assert_eq!(head_sha256(&olga.session, &at_olga[1]), server_head(1));
    let (signatures, stamps) = signatures_and_stamps(&olga.session, &at_olga[1]);
    assert_all_sealed(&signatures, 2);
    assert_eq!(stamps.len(), 1, "only the newest seal: {stamps:#?}");
}

#[test]
fn the_signed_revisions_going_to_the_server_report_their_documents_and_bytes() {
    let (server, _) = common::north_reports("Order", Language::English, 140..142, "sending");
    let ivan = desk(&server, "ivan", 91);
    let at_ivan = titled(&ivan);
    let titles: Vec<String> = ivan
        .session
        .documents()
        .expect("documents")
        .into_iter()
        .map(|d| d.title)
        .collect();
    // More revisions than one push request carries (the first document's fill one, the second
    // document's go in the next): they all go in one round, under one plan.
    let signatures = REVISIONS_PER_PUSH + 1;
    for n in 0..signatures {
        let document = &at_ivan[usize::from(n == REVISIONS_PER_PUSH)];
        sign(&ivan, document, &format!("Ivan, look {n}"));
    }

    let mut steps = Vec::new();
    let pushed = ivan
        .session
        .sync_push_cancellable(&AtomicBool::new(false), &mut |step| steps.push(step))
        .expect("push");
    assert_eq!(pushed.applied, signatures, "{pushed:?}");
    let Some(PushProgress::Planned { revisions, bytes }) = steps.first().cloned() else {
        panic!("the push plans first: {steps:?}");
    };
    assert_eq!(revisions, signatures);
    // Each revision's upload counts up to its size, then it is on the server; the sizes add up
    // to the planned bytes, and each names a document signed here.
    let mut uploaded = Vec::new();
    let mut held = 0;
    for step in &steps[1..] {
        match step {
            PushProgress::Uploading { title, done, total } => {
                assert!(done >= &held && done <= total, "{steps:?}");
                assert!(titles.contains(title), "{title}");
                held = *done;
            }
            PushProgress::Uploaded { title, bytes } => {
                assert_eq!(
                    held, *bytes,
                    "the whole revision was held before it counted"
                );
                uploaded.push((title.clone(), *bytes));
                held = 0;
            }
            PushProgress::Planned { .. } => panic!("planned twice: {steps:?}"),
        }
    }
    assert_eq!(uploaded.len(), signatures, "{steps:?}");
    assert_eq!(uploaded.iter().map(|(_, b)| b).sum::<u64>(), bytes);
    assert!(bytes > 0);
    let mut sent_titles: Vec<String> = uploaded.into_iter().map(|(t, _)| t).collect();
    sent_titles.sort();
    sent_titles.dedup();
    let mut expected = titles.clone();
    expected.sort();
    assert_eq!(sent_titles, expected);

    // Nothing waits: the next push sends nothing and plans nothing.
    let mut again = Vec::new();
    ivan.session
        .sync_push_cancellable(&AtomicBool::new(false), &mut |step| again.push(step))
        .expect("push");
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn more_revisions_of_one_document_than_a_request_carries_lose_a_conflict_together() {
    let (server, _) = common::north_reports("Memo", Language::English, 145..146, "long-chain");
    let ivan = desk(&server, "ivan", 93);
    let olga = desk(&server, "olga", 94);
    let (at_ivan, at_olga) = (titled(&ivan), titled(&olga));
    // Olga's signature reaches the server first; Ivan, offline, signed the same base more times
    // than one push request carries.
    sign(&olga, &at_olga[0], "Olga");
    assert_eq!(olga.session.sync_push().expect("push").applied, 1);
    for n in 0..=REVISIONS_PER_PUSH {
        sign(&ivan, &at_ivan[0], &format!("Ivan, look {n}"));
    }
    // All of them go, all lose, and the document asks for his signature again at once (before,
    // the first 50 lost and waited for the rest, which never went: the document stuck).
    let pushed = ivan.session.sync_push().expect("push");
    assert_eq!(pushed.applied, 0, "{pushed:?}");
    assert_eq!(pushed.resign_needed, vec![at_ivan[0].clone()], "{pushed:?}");
    assert_eq!(ivan.session.pending_operations().expect("pending"), 0);
    let requests = ivan.session.resign_requests().expect("requests");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].discarded.len(), REVISIONS_PER_PUSH + 1);
    assert_eq!(
        head_sha256(&ivan.session, &at_ivan[0]),
        head_sha256(&olga.session, &at_olga[0])
    );
}

#[test]
fn a_signature_made_while_a_conflicts_head_arrives_is_sent_before_anything_is_set_aside() {
    let (server, server_ids) =
        common::north_reports("Notice", Language::English, 146..147, "mid-conflict");
    let ivan = desk(&server, "ivan", 95);
    let olga = desk(&server, "olga", 96);
    let (at_ivan, at_olga) = (titled(&ivan), titled(&olga));
    sign(&olga, &at_olga[0], "Olga");
    assert_eq!(olga.session.sync_push().expect("push").applied, 1);
    sign(&ivan, &at_ivan[0], "Ivan");

    // Ivan's push loses; while the server's head is on its way to him he signs once more.
    let held = server.hold_request(
        &format!(
            "{}{}/content",
            outpost_protocol::paths::DOCUMENT_PREFIX,
            server_ids[0]
        ),
        0,
        outpost_server::testing::HoldPoint::BeforeAnswering,
    );
    let first = std::thread::scope(|scope| {
        let push = scope.spawn(|| ivan.session.sync_push());
        assert!(held.wait_until_reached(Duration::from_secs(20)));
        sign(&ivan, &at_ivan[0], "Ivan, once more");
        held.release();
        push.join().expect("the push thread")
    })
    .expect("push");
    // Nothing was set aside: the second signature has not been to the server.
    assert!(first.resign_needed.is_empty(), "{first:?}");
    assert!(ivan.session.resign_requests().expect("requests").is_empty());
    assert_eq!(
        ivan.session
            .document_revisions(&at_ivan[0])
            .expect("revisions")
            .len(),
        3
    );
    // The next push sends both, both lose together, and he is asked to sign again once.
    let second = ivan.session.sync_push().expect("push");
    assert_eq!(second.resign_needed, vec![at_ivan[0].clone()], "{second:?}");
    let requests = ivan.session.resign_requests().expect("requests");
    assert_eq!(requests[0].discarded.len(), 2, "{requests:?}");
    assert_eq!(ivan.session.pending_operations().expect("pending"), 0);
    assert_eq!(
        head_sha256(&ivan.session, &at_ivan[0]),
        head_sha256(&olga.session, &at_olga[0])
    );
}

#[test]
fn each_document_tells_what_waits_what_must_be_signed_again_and_what_the_server_refused() {
    let (server, server_ids) =
        common::north_reports("Report", Language::Russian, 120..122, "badges");
    let ivan = desk(&server, "ivan", 71);
    let olga = desk(&server, "olga", 72);
    let (at_ivan, at_olga) = (titled(&ivan), titled(&olga));
    let state_of = |desk: &Desk, document: &DocumentId| sync_state(&desk.session, document);
    assert_eq!(state_of(&ivan, &at_ivan[0]).pending_revisions, 0);
    assert_eq!(
        state_of(&ivan, &at_ivan[0]).standing,
        DocumentStanding::Synced
    );

    // Offline work shows as waiting: a signature and a note on the first document.
    sign(&ivan, &at_ivan[0], "Ivan");
    sign(&olga, &at_olga[0], "Olga");
    olga.session
        .create_annotation(&at_olga[0], common::note_draft("a note"))
        .expect("note");
    let waiting = state_of(&olga, &at_olga[0]);
    assert_eq!(
        (waiting.pending_revisions, waiting.pending_annotations),
        (1, 1)
    );
    assert!(!waiting.sign_again && waiting.refused.is_none());
    assert_eq!(waiting.standing, DocumentStanding::Pending);

    // Ivan's signature wins; Olga's document must be signed again and nothing waits.
    ivan.session.sync_push().expect("push");
    olga.session.sync_push().expect("push");
    let lost = state_of(&olga, &at_olga[0]);
    assert!(lost.sign_again, "{lost:?}");
    assert_eq!((lost.pending_revisions, lost.pending_annotations), (0, 0));
    assert_eq!(lost.standing, DocumentStanding::Conflict);
    assert_eq!(
        state_of(&ivan, &at_ivan[0]).standing,
        DocumentStanding::Synced
    );

    // The second document is taken away from the unit while Olga signs it offline: the server
    // refuses her revision and the document says why, until the pull purges it.
    sign(&olga, &at_olga[1], "Olga");
    take_from_north(&server, &server_ids[1]);
    let pushed = olga.session.sync_push().expect("push");
    assert_eq!(pushed.refused.len(), 1, "{pushed:?}");
    let refused = state_of(&olga, &at_olga[1]);
    assert!(
        refused.refused.as_deref().is_some_and(|r| !r.is_empty()),
        "{refused:?}"
    );
    assert_eq!(refused.pending_revisions, 1, "still held, not lost");
    assert_eq!(refused.standing, DocumentStanding::Refused);
    let title = olga
        .session
        .documents()
        .expect("documents")
        .into_iter()
        .find(|d| d.id == at_olga[1])
        .expect("still here")
        .title;
    olga.session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    assert!(olga
        .session
        .documents()
        .expect("documents")
        .iter()
        .all(|d| d.id != at_olga[1]));
    // The document is gone; it stands as purged, and the notice of its purge says what went
    // with it and why, until she dismisses it.
    let purged = state_of(&olga, &at_olga[1]);
    assert_eq!(purged.standing, DocumentStanding::Purged, "{purged:?}");
    assert_eq!((purged.pending_revisions, purged.refused), (0, None));
    let notices = olga.session.purge_notices().expect("notices");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].title, title);
    assert_eq!(notices[0].document_id.as_ref(), Some(&at_olga[1]));
    assert_eq!(
        (
            notices[0].discarded_revisions,
            notices[0].discarded_annotations
        ),
        (1, 0)
    );
    assert_eq!(notices[0].refused, refused.refused);
    olga.session
        .dismiss_purge_notices(notices[0].id)
        .expect("dismiss");
    assert!(olga.session.purge_notices().expect("notices").is_empty());
    assert!(olga
        .session
        .document_sync_states()
        .expect("states")
        .iter()
        .all(|s| s.document_id != at_olga[1]));
    assert_eq!(
        state_of(&olga, &at_olga[0]).standing,
        DocumentStanding::Conflict
    );
    assert!(ivan.session.purge_notices().expect("notices").is_empty());
}

#[test]
fn a_signature_the_server_took_before_its_document_was_taken_back_is_not_told_as_lost() {
    let (server, server_ids) =
        common::north_reports("Memo", Language::English, 130..131, "lost-answer");
    let ivan = desk(&server, "ivan", 81);
    let at_ivan = titled(&ivan);
    sign(&ivan, &at_ivan[0], "Ivan");
    let signed = head_sha256(&ivan.session, &at_ivan[0]);

    // The server takes his signature, but its answer never arrives; then the document is taken
    // away from the unit.
    server.lose_answers_to(outpost_protocol::paths::SYNC_PUSH, 1);
    ivan.session
        .sync_push()
        .expect_err("the push's answer was lost");
    assert_eq!(server_head_of(&server, &server_ids[0]), signed);
    take_from_north(&server, &server_ids[0]);

    // Pushed again, it is answered as applied before (not refused for the document he can no
    // longer see), and the purge tells nothing of his as lost.
    let pushed = ivan.session.sync_push().expect("push");
    assert_eq!(
        (pushed.already_applied, pushed.refused.len()),
        (1, 0),
        "{pushed:?}"
    );
    ivan.session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    assert!(ivan.session.documents().expect("documents").is_empty());
    let notices = ivan.session.purge_notices().expect("notices");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(
        (
            notices[0].discarded_revisions,
            notices[0].refused.as_deref()
        ),
        (0, None)
    );
}

#[test]
fn a_note_refused_while_its_document_was_elsewhere_is_sent_when_it_comes_back_or_told_lost() {
    let (server, server_ids) =
        common::north_reports("Brief", Language::English, 140..142, "held-note");
    let olga = desk(&server, "olga", 91);
    let ivan = desk(&server, "ivan", 92);
    let (at_olga, at_ivan) = (titled(&olga), titled(&ivan));
    let never = AtomicBool::new(false);
    // A note on each document, written offline; both documents are taken from the unit before
    // she pushes: both changes are refused, and held — they do not keep the outbox busy.
    for document in &at_olga {
        olga.session
            .create_annotation(document, common::note_draft("held"))
            .expect("note");
    }
    take_from_north(&server, &server_ids[0]);
    take_from_north(&server, &server_ids[1]);
    let pushed = olga.session.sync_push().expect("push");
    assert_eq!(pushed.refused.len(), 2, "{pushed:?}");
    assert_eq!(olga.session.pending_operations().expect("pending"), 0);

    // The first comes back before she pulls; the second stays away.
    server
        .block_on(server.service.assign(
            outpost_server::service::Actor::Cli,
            &server_ids[0],
            &north(),
        ))
        .expect("assign");
    let pulled = olga.session.sync_pull(&never, &mut |_| {}).expect("pull");
    assert_eq!(pulled.purged, vec![at_olga[1].clone()]);
    assert_eq!(pulled.discarded_annotations.len(), 1, "{pulled:?}");
    // The note on the document that came back is offered again and reaches the server.
    assert_eq!(olga.session.pending_operations().expect("pending"), 1);
    let pushed = olga.session.sync_push().expect("push");
    assert_eq!((pushed.applied, pushed.refused.len()), (1, 0), "{pushed:?}");
    ivan.session.sync_pull(&never, &mut |_| {}).expect("pull");
    let seen = ivan.session.annotations(&at_ivan[0]).expect("annotations");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].annotation.contents, "held");
    // The one that went with the purged document is told.
    let notices = olga.session.purge_notices().expect("notices");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].discarded_annotations, 1);
}

#[test]
fn a_revoked_signer_stays_valid_where_a_seal_came_first_and_is_revoked_elsewhere() {
    let server = InProcessServer::start_with_ca();
    server.unit("North");
    common::unit_documents(
        &server,
        "Order",
        SampleKind::OperationalReport,
        Language::English,
        10..12,
        "revocation",
    );
    let sveta = desk(&server, "sveta", 71);
    let kirill = desk(&server, "kirill", 72);
    let (at_sveta, at_kirill) = (titled(&sveta), titled(&kirill));
    let never = AtomicBool::new(false);
    let first_signature =
        |document: &DocumentId| signatures_and_stamps(&kirill.session, document).0.remove(0);
    let lists_taken = || {
        kirill
            .session
            .audit_entries(0, 1_000)
            .expect("audit")
            .into_iter()
            .filter(|e| {
                e.detail
                    .starts_with("took the organisation's revocation list")
            })
            .count()
    };

    // Sveta signs the first order and syncs: the server seals it. The second order she signs
    // too, but it leaves her desk only as a file mailed to Kirill — never sealed.
    sign(&sveta, &at_sveta[0], "Approved");
    assert_eq!(sveta.session.sync_push().expect("push").applied, 1);
    sign(&sveta, &at_sveta[1], "Approved");
    let mail = tempfile::tempdir().expect("dir");
    let mailed = mail.path().join("order.pdf");
    sveta
        .session
        .export_with_annotations(&at_sveta[1], &mailed)
        .expect("export");
    kirill.session.sync_pull(&never, &mut |_| {}).expect("pull");
    let sealed = first_signature(&at_kirill[0]);
    assert_eq!(sealed.status, SignatureStatus::Valid, "{sealed:#?}");
    assert!(
        matches!(sealed.revocation, Revocation::NotRevoked { .. }),
        "{sealed:#?}"
    );

    // A minute later her laptop is reported lost: the device is revoked, her certificate with it.
    server.clock.advance(60);
    let device = sveta
        .session
        .server_account()
        .expect("account")
        .expect("connected")
        .device_id
        .expect("enrolled");
    server
        .block_on(
            server
                .service
                .revoke_device(outpost_server::service::Actor::Cli, &device),
        )
        .expect("revoke");
    let taken_before = lists_taken();
    kirill.session.sync_pull(&never, &mut |_| {}).expect("pull");
    assert_eq!(lists_taken(), taken_before + 1, "the new list was fetched");
    kirill.session.sync_pull(&never, &mut |_| {}).expect("pull");
    assert_eq!(
        lists_taken(),
        taken_before + 1,
        "and not again while nothing changed"
    );

    // Sealed before the revocation: still valid, and the panel says she was revoked later.
    let sealed = first_signature(&at_kirill[0]);
    assert_eq!(sealed.status, SignatureStatus::Valid, "{sealed:#?}");
    assert!(
        matches!(sealed.revocation, Revocation::RevokedLater { .. }),
        "{sealed:#?}"
    );
    // The mailed file proves nothing about when she signed it: revoked.
    let imported = kirill
        .session
        .import_bytes(std::fs::read(&mailed).expect("read"), "order.pdf")
        .expect("import");
    let unsealed = first_signature(&imported.document().id);
    assert!(
        matches!(unsealed.revocation, Revocation::Revoked { .. }),
        "{unsealed:#?}"
    );
    match &unsealed.status {
        SignatureStatus::Revoked(why) => assert!(why.contains("was revoked on"), "{why}"),
        other => panic!("not revoked: {other:?}"),
    }
}

#[test]
fn a_refused_revision_waits_for_the_user_to_offer_it_again_or_take_the_servers_copy() {
    let (server, server_ids) =
        common::north_reports("Memo", Language::English, 130..132, "refusal");
    let olga = desk(&server, "olga", 81);
    let at_olga = titled(&olga);
    let never = AtomicBool::new(false);
    let audited = |text: &str| {
        olga.session
            .audit_entries(0, 1_000)
            .expect("audit")
            .into_iter()
            .filter(|e| e.detail.contains(text))
            .count()
    };
    let state_of = |document: &DocumentId| sync_state(&olga.session, document);
    let server_head = |n: usize| server_head_of(&server, &server_ids[n]);

    // Both memos are taken away from the unit while Olga signs them offline: refused.
    sign(&olga, &at_olga[0], "Olga");
    sign(&olga, &at_olga[1], "Olga");
    for id in &server_ids {
        take_from_north(&server, id);
    }
    assert_eq!(olga.session.sync_push().expect("push").refused.len(), 2);
    // Later rounds do not offer them again (no refusal after refusal in the audit chain), and
    // both signed revisions are still here.
    for _ in 0..3 {
        let pushed = olga.session.sync_push().expect("push");
        assert_eq!((pushed.applied, pushed.refused.len()), (0, 0), "{pushed:?}");
    }
    assert_eq!(audited("the server refused revision"), 2);
    for document in &at_olga {
        let state = state_of(document);
        assert_eq!(state.pending_revisions, 1, "{state:?}");
        assert!(state.refused.is_some(), "{state:?}");
    }

    // The administrator gives the memos back. Olga offers the first one again: it is applied.
    for id in &server_ids {
        server
            .block_on(
                server
                    .service
                    .assign(outpost_server::service::Actor::Cli, id, &north()),
            )
            .expect("assign");
    }
    assert!(olga
        .session
        .offer_refused_revision_again(&at_olga[0])
        .expect("offer again"));
    assert_eq!(olga.session.sync_push().expect("push").applied, 1);
    assert_eq!(head_sha256(&olga.session, &at_olga[0]), server_head(0));
    assert_eq!(state_of(&at_olga[0]).refused, None);

    // For the second she takes the server's copy instead: her signature is discarded (audited
    // with the server's reason), the document is the server's again and nothing waits.
    let discarded = olga
        .session
        .take_server_copy(&at_olga[1], &never)
        .expect("take the server's copy");
    assert_eq!(discarded.len(), 1, "{discarded:?}");
    let state = state_of(&at_olga[1]);
    assert_eq!(
        (
            state.pending_revisions,
            state.refused.clone(),
            state.sign_again
        ),
        (0, None, false),
        "{state:?}"
    );
    assert_eq!(head_sha256(&olga.session, &at_olga[1]), server_head(1));
    assert!(statuses(&olga.session, &at_olga[1]).is_empty());
    assert_eq!(audited("at the user's request"), 1);
    let pushed = olga.session.sync_push().expect("push");
    assert_eq!((pushed.applied, pushed.refused.len()), (0, 0), "{pushed:?}");

    // Where the server refused nothing there is no copy to take instead.
    let error = olga
        .session
        .take_server_copy(&at_olga[0], &never)
        .expect_err("nothing refused");
    assert!(error.to_string().contains("refused nothing"), "{error}");
}

#[test]
fn a_signature_left_unsealed_by_a_stopped_server_is_sealed_when_it_starts_again() {
    // A server that applies pushed revisions but does not seal them: as one stopped between the
    // two steps (or whose CA token was away).
    let mut server = InProcessServer::start_with(
        true,
        outpost_server::service::Policy {
            extend_signatures: false,
            ..Default::default()
        },
    );
    server.unit("North");
    let server_ids = common::unit_documents(
        &server,
        "Order",
        SampleKind::OperationalReport,
        Language::English,
        140..141,
        "sweep",
    );
    let ivan = desk(&server, "ivan", 91);
    let at_ivan = titled(&ivan);
    sign(&ivan, &at_ivan[0], "Approved");
    let signed = head_sha256(&ivan.session, &at_ivan[0]);
    assert_eq!(ivan.session.sync_push().expect("push").applied, 1);
    assert_eq!(
        server_head_of(&server, &server_ids[0]),
        signed,
        "not sealed"
    );

    // Started again with sealing on, it finds the waiting signature by itself.
    server.restart_with(outpost_server::service::Policy::default());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server_head_of(&server, &server_ids[0]) == signed {
        assert!(std::time::Instant::now() < deadline, "never sealed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A sweep now finds nothing more to do.
    assert_eq!(
        server
            .block_on(server.service.seal_waiting_signatures(true))
            .expect("sweep"),
        0
    );
    ivan.session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    assert_eq!(
        head_sha256(&ivan.session, &at_ivan[0]),
        server_head_of(&server, &server_ids[0])
    );
    let (signatures, stamps) = signatures_and_stamps(&ivan.session, &at_ivan[0]);
    assert_all_sealed(&signatures, 1);
    assert_eq!(stamps.len(), 1, "{stamps:#?}");
}

#[test]
fn a_key_made_offline_gets_its_certificate_through_the_next_sync_and_signs() {
    let mut server = InProcessServer::start_with_ca();
    server.unit("North");
    common::unit_documents(
        &server,
        "Order",
        SampleKind::OperationalReport,
        Language::English,
        70..71,
        "csr",
    );
    let account = server.account("kira", Role::Supervisor, Some("North"));
    let (_dir, _workstation, _clock, session) =
        common::connected_in_step(&server, &server.base_url, &account, "rev-kira", 81);
    session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    let document = only_document(&session);

    // Offline: the key is made and its certificate asked for; the request waits in the vault.
    server.stop();
    let key = session
        .create_signing_key("Kira", outpost_workstation::KeyAlgorithm::EcdsaP256, "Kira")
        .expect("key");
    let waiting = session
        .request_signer_certificate(&key.id)
        .expect("the request is kept, not refused");
    assert!(waiting.certificate_requested && waiting.subject.is_none());
    assert_eq!(session.pending_operations().expect("pending"), 1);
    assert!(session.has_changes_to_send().expect("changes"));
    assert!(session.sync_push().is_err(), "still offline");

    // Back online, the answer to the first send is lost on its way: the CA issued a
    // certificate, the workstation never heard. The next push sends the request again and
    // gets that same certificate, not a second one.
    server.start_again();
    server.lose_answers_to(outpost_protocol::paths::CERTIFICATES, 1);
    assert!(session.sync_push().is_err(), "the answer was lost");
    assert_eq!(session.pending_operations().expect("pending"), 1);
    let report = session.sync_push().expect("push");
    assert_eq!(report.certificates_issued, 1);
    let issued = server
        .block_on(server.service.certificates("kira"))
        .expect("certificates");
    assert_eq!(issued.len(), 1, "one certificate per key");
    let keys = session.signing_keys().expect("keys");
    let key = keys.iter().find(|k| k.id == key.id).expect("the key");
    assert!(!key.certificate_requested);
    let serial = |hex: &str| hex.to_lowercase().trim_start_matches("00").to_string();
    assert_eq!(
        key.serial.as_deref().map(serial),
        Some(serial(&issued[0].serial)),
        "the certificate the server kept is the one the workstation imported"
    );
    assert_eq!(session.pending_operations().expect("pending"), 0);

    // The key signs, and the signature reaches the server sealed.
    session
        .sign_document(&document, &SignOptions::invisible(&key.id, "Approved"))
        .expect("sign");
    session.sync_push().expect("push");
    session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    let (signatures, _) = signatures_and_stamps(&session, &document);
    assert_all_sealed(&signatures, 1);

    // A user the CA does not issue for (an administrator) is told why, and the request stops
    // waiting.
    let staff = server.account("stas", Role::Admin, None);
    let (_staff_dir, _staff_workstation, _staff_clock, staff_session) =
        common::connected_in_step(&server, &server.base_url, &staff, "rev-stas", 82);
    let staff_key = staff_session
        .create_signing_key("Stas", outpost_workstation::KeyAlgorithm::EcdsaP256, "Stas")
        .expect("key");
    assert_eq!(
        staff_session
            .request_signer_certificate(&staff_key.id)
            .expect_err("refused")
            .code(),
        "server_refused"
    );
    let refused = staff_session.signing_keys().expect("keys");
    assert!(!refused[0].certificate_requested);
    assert!(refused[0].certificate_refusal.is_some());
    assert_eq!(staff_session.pending_operations().expect("pending"), 0);
}

#[test]
fn a_certificate_request_waits_while_the_server_has_no_ca_and_is_sent_when_it_has_one() {
    // A server briefly without its CA (503) is not a refusal: the request waits, and the rest of
    // the push still goes.
    let mut server = InProcessServer::start();
    server.unit("North");
    common::unit_documents(
        &server,
        "Memo",
        SampleKind::OperationalReport,
        Language::English,
        90..91,
        "no-ca",
    );
    let account = server.account("lev", Role::Supervisor, Some("North"));
    let (_dir, _workstation, _clock, session) =
        common::connected_in_step(&server, &server.base_url, &account, "rev-lev", 83);
    session
        .sync_pull(&AtomicBool::new(false), &mut |_| {})
        .expect("pull");
    let document = only_document(&session);
    let key = session
        .create_signing_key("Lev", outpost_workstation::KeyAlgorithm::EcdsaP256, "Lev")
        .expect("key");
    let waiting = session
        .request_signer_certificate(&key.id)
        .expect("kept, not refused");
    assert!(waiting.certificate_requested && waiting.certificate_refusal.is_none());
    session
        .create_annotation(&document, common::note_draft("meanwhile"))
        .expect("note");
    let report = session.sync_push().expect("the note goes all the same");
    assert_eq!((report.applied, report.certificates_issued), (1, 0));
    assert_eq!(session.pending_operations().expect("pending"), 1);

    // The server comes back with its CA: the request goes and the key can sign.
    server.restart_with_ca();
    let report = session.sync_push().expect("push");
    assert_eq!(report.certificates_issued, 1);
    assert_eq!(session.pending_operations().expect("pending"), 0);
}
