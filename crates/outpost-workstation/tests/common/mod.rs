//! Shared set-up for the workstation's integration tests: a real OS keyring (Secret Service, see
//! scripts/with-keyring.sh), the real pdfium, cheap Argon2 parameters and a manual clock.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use outpost_workstation::{
    KdfParams, Language, ManualClock, OsKeyring, PdfEngine, SampleKind, SampleSpec, Session,
    SharedRng, Workstation, WorkstationConfig,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub const START_MS: i64 = 1_790_000_000_000;

pub fn rng(seed: u64) -> SharedRng {
    Arc::new(Mutex::new(Box::new(ChaCha20Rng::seed_from_u64(seed))))
}

pub fn pdf() -> PdfEngine {
    PdfEngine::start_default().expect("pdfium must be installed: run scripts/install-deps.sh")
}

/// A keyring service name of this test run's own (so parallel tests never share entries).
pub fn keyring_service(tag: &str) -> String {
    format!("outpost-test-{tag}-{}", std::process::id())
}

pub fn workstation_with(root: &Path, service: &str, clock: Arc<ManualClock>) -> Workstation {
    Workstation::new(WorkstationConfig {
        data_root: root.to_owned(),
        keyring: Arc::new(OsKeyring::new(service)),
        clock,
        kdf: KdfParams::INSECURE_FAST_FOR_TESTS,
        pdf: pdf(),
    })
}

pub fn workstation(root: &Path, tag: &str) -> (Workstation, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START_MS));
    (
        workstation_with(root, &keyring_service(tag), clock.clone()),
        clock,
    )
}

pub fn new_session(ws: &Workstation, user: &str, password: &str, seed: u64) -> Session {
    ws.create_vault(user, password, rng(seed)).unwrap()
}

pub fn sample(
    kind: SampleKind,
    language: Language,
    pages: u32,
    seed: u64,
    marker: Option<&str>,
) -> Vec<u8> {
    pdf()
        .write_sample(&SampleSpec {
            kind,
            language,
            pages,
            seed,
            marker: marker.map(str::to_owned),
        })
        .unwrap()
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The real time: certificates from the test CA are valid from the moment they are issued.
pub fn real_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Asserts the document carries exactly one signature and that it validates.
pub fn assert_one_valid_signature(session: &Session, document: &outpost_workstation::DocumentId) {
    let reports = session.validate_document(document).unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(
        reports[0].status,
        outpost_workstation::SignatureStatus::Valid,
        "{:?}",
        reports[0]
    );
}

/// A new vault for `account` on a workstation of its own, connected to `server`.
pub fn connected(
    server: &outpost_server::testing::InProcessServer,
    account: &outpost_server::testing::TestAccount,
    tag: &str,
    seed: u64,
) -> (tempfile::TempDir, Workstation, Session) {
    connected_via(server, &server.base_url, account, tag, seed)
}

/// Like [`connected`], through another address (a proxy in front of the server).
pub fn connected_via(
    server: &outpost_server::testing::InProcessServer,
    base_url: &str,
    account: &outpost_server::testing::TestAccount,
    tag: &str,
    seed: u64,
) -> (tempfile::TempDir, Workstation, Session) {
    let dir = tempfile::tempdir().expect("dir");
    let (workstation, _clock) = workstation(dir.path(), tag);
    let session = new_session(&workstation, &account.username, "local-password", seed);
    connect_to(&session, server, base_url, account).expect("connect");
    (dir, workstation, session)
}

/// Like [`connected_via`], on a workstation whose clock agrees with the server's (a minute ahead
/// of it, so certificates the server's CA issues have started), which is returned to move on.
pub fn connected_in_step(
    server: &outpost_server::testing::InProcessServer,
    base_url: &str,
    account: &outpost_server::testing::TestAccount,
    tag: &str,
    seed: u64,
) -> (tempfile::TempDir, Workstation, Arc<ManualClock>, Session) {
    let dir = tempfile::tempdir().expect("dir");
    let (workstation, clock) = workstation(dir.path(), tag);
    clock.set(server.service.now() * 1000 + 60_000);
    let session = new_session(&workstation, &account.username, "local-password", seed);
    connect_to(&session, server, base_url, account).expect("connect");
    (dir, workstation, clock, session)
}

/// A note on page 1 saying `contents`.
pub fn note_draft(contents: &str) -> outpost_workstation::AnnotationDraft {
    outpost_workstation::AnnotationDraft {
        kind: outpost_workstation::AnnotationKind::Note,
        page: 1,
        geometry: outpost_workstation::Geometry::Icon {
            at: outpost_workstation::Point { x: 500.0, y: 700.0 },
        },
        style: outpost_workstation::AnnotationStyle {
            contents: contents.into(),
            ..Default::default()
        },
    }
}

/// Connects `session` to `server` as `account` (a fresh TOTP code).
pub fn connect(
    session: &Session,
    server: &outpost_server::testing::InProcessServer,
    account: &outpost_server::testing::TestAccount,
) -> Result<outpost_protocol::UserInfo, outpost_workstation::WorkstationError> {
    connect_to(session, server, &server.base_url, account)
}

/// Like [`connect`], through another address.
pub fn connect_to(
    session: &Session,
    server: &outpost_server::testing::InProcessServer,
    base_url: &str,
    account: &outpost_server::testing::TestAccount,
) -> Result<outpost_protocol::UserInfo, outpost_workstation::WorkstationError> {
    let code = server.fresh_code(account);
    session.connect_server(
        base_url,
        std::str::from_utf8(&server.ca_pem).expect("PEM"),
        &account.username,
        &account.password,
        outpost_protocol::SecondFactor::Totp { code },
        "Test laptop",
    )
}

/// Generated samples of `kind` (one per seed) titled "{title} 0", "{title} 1", … registered on
/// the server and assigned to the unit North; their server ids.
pub fn unit_documents(
    server: &outpost_server::testing::InProcessServer,
    title: &str,
    kind: SampleKind,
    language: Language,
    seeds: std::ops::Range<u64>,
    marker: &str,
) -> Vec<String> {
    seeds
        .enumerate()
        .map(|(n, seed)| {
            let pdf = sample(kind, language, 1, seed, Some(marker));
            server.document(
                &format!("{title} {n}"),
                pdf,
                outpost_protocol::AssignmentTarget::Unit {
                    name: "North".into(),
                },
            )
        })
        .collect()
}

/// A server with the organisation's CA (signatures not sealed for the long term) and the unit
/// North, holding generated operational reports ([`unit_documents`]); the server and their ids.
pub fn north_reports(
    title: &str,
    language: Language,
    seeds: std::ops::Range<u64>,
    marker: &str,
) -> (outpost_server::testing::InProcessServer, Vec<String>) {
    let server = outpost_server::testing::InProcessServer::start_with_ca_without_long_term();
    server.unit("North");
    let ids = unit_documents(
        &server,
        title,
        SampleKind::OperationalReport,
        language,
        seeds,
        marker,
    );
    (server, ids)
}

/// A new P-256 signing key in the session's vault, named for `name`, with its certificate from
/// the server's CA; its id.
pub fn server_certified_key(session: &Session, name: &str) -> String {
    let key = session
        .create_signing_key(name, outpost_workstation::KeyAlgorithm::EcdsaP256, name)
        .expect("key");
    session
        .request_signer_certificate(&key.id)
        .expect("certificate");
    key.id
}

/// The session's documents, ordered by title.
pub fn titled_documents(session: &Session) -> Vec<outpost_workstation::DocumentId> {
    let mut documents = session.documents().expect("documents");
    documents.sort_by(|a, b| a.title.cmp(&b.title));
    documents.into_iter().map(|d| d.id).collect()
}

/// The SHA-256 of a document's newest revision here.
pub fn head_sha256(session: &Session, document: &outpost_workstation::DocumentId) -> String {
    session
        .document_revisions(document)
        .expect("revisions")
        .last()
        .expect("a revision")
        .sha256
        .clone()
}

/// What a user sees of the synced state: by document title, the head's SHA-256 and the live
/// annotations (id → (revision, the annotation as JSON)).
pub type SyncedState =
    std::collections::BTreeMap<String, (String, std::collections::BTreeMap<String, (i64, String)>)>;

/// The SHA-256 of a [`SyncedState`], written out in order: equal only for equal states.
pub fn state_hash(state: &SyncedState) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for (title, (head, annotations)) in state {
        hasher.update(format!("document {title:?} {head}\n"));
        for (id, (revision, json)) in annotations {
            hasher.update(format!("annotation {id} {revision} {json}\n"));
        }
    }
    hex::encode(hasher.finalize())
}

/// What a replica holds: its documents' newest revisions and live annotations.
pub fn replica_state(session: &Session) -> SyncedState {
    session
        .documents()
        .expect("documents")
        .into_iter()
        .map(|d| {
            let annotations = session
                .annotations(&d.id)
                .expect("annotations")
                .into_iter()
                .map(|a| {
                    let json = serde_json::to_string(&a.annotation).expect("JSON");
                    (a.annotation.id.to_string(), (a.revision, json))
                })
                .collect();
            (d.title.clone(), (head_sha256(session, &d.id), annotations))
        })
        .collect()
}

/// What the server holds for `username`: every document visible to them with its head, and
/// the live annotations on them, read from the server's store (all it would send a new device).
pub fn server_state(
    server: &outpost_server::testing::InProcessServer,
    username: &str,
) -> SyncedState {
    use outpost_server::store::PullEntryKind;
    let store = server.service.store();
    let user = server
        .block_on(store.user_by_username(username))
        .expect("the user")
        .expect("a user of that name");
    let page = server
        .block_on(store.pull(&user.id, user.unit_id.as_deref(), 0, None, 1_000_000))
        .expect("the user's view");
    let mut titles = std::collections::BTreeMap::new();
    let mut state = SyncedState::new();
    for entry in &page.entries {
        if let PullEntryKind::Visible(document) = &entry.kind {
            titles.insert(document.id.clone(), document.title.clone());
            state.insert(
                document.title.clone(),
                (document.sha256.clone(), Default::default()),
            );
        }
    }
    for entry in page.entries {
        if let PullEntryKind::Annotation(row) = entry.kind {
            if row.deleted {
                continue;
            }
            let title = titles.get(&row.document_id).expect("a visible document");
            let annotation: outpost_workstation::Annotation =
                serde_json::from_str(&row.body).expect("an annotation body");
            let json = serde_json::to_string(&annotation).expect("JSON");
            state
                .get_mut(title)
                .expect("its document")
                .1
                .insert(row.id, (row.revision, json));
        }
    }
    state
}

/// How many signatures (not time-stamps) the session's documents carry, asserting each valid
/// (possibly signed or annotated on top) and sealed for the long term (PAdES B-LTA).
pub fn valid_sealed_signatures(session: &Session) -> usize {
    use outpost_workstation::{PadesLevel, SignatureKind, SignatureStatus};
    let mut signatures = 0;
    for document in session.documents().expect("documents") {
        for report in session.validate_document(&document.id).expect("validate") {
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
    signatures
}
