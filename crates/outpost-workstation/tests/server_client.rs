//! The workstation's server client against a real server on loopback: enrolment, sign-in with the
//! device key, refresh, pull rounds, downloads that resume and are hash-checked, and how an
//! untrusted or unreachable server is reported.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use outpost_protocol as wire;
use outpost_protocol::{AssignmentTarget, Role};
use outpost_server::service::Actor;
use outpost_server::testing::InProcessServer;
use outpost_workstation::server_client::{DeviceKey, ServerClient, ServerError};
use rand::SeedableRng;

fn client(server: &InProcessServer) -> ServerClient {
    ServerClient::new(&server.base_url, &server.ca_pem, Duration::from_secs(30)).expect("a client")
}

fn device_key(seed: u64) -> DeviceKey {
    DeviceKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

/// The first sign-in from a workstation, with a fresh TOTP code.
fn enrol(
    server: &InProcessServer,
    client: &ServerClient,
    account: &outpost_server::testing::TestAccount,
    device_name: &str,
    key: &DeviceKey,
) -> wire::Session {
    let code = server.fresh_code(account);
    client
        .enrol(
            &account.username,
            &account.password,
            wire::SecondFactor::Totp { code },
            device_name,
            key,
        )
        .expect("enrol")
}

fn large_pdf() -> Vec<u8> {
    outpost_server::testing::sample_pdf("Big order", 400_000)
}

#[test]
fn a_workstation_enrols_signs_in_with_its_key_and_refreshes() {
    let server = InProcessServer::start();
    let account = server.account("nina", Role::Staff, None);
    let client = client(&server);
    assert_eq!(
        client.health().expect("health").protocol_version,
        wire::PROTOCOL_VERSION
    );
    let key = device_key(1);

    let session = enrol(&server, &client, &account, "Field laptop", &key);
    assert_eq!(session.user.username, "nina");

    // Signing in again proves the same device with its key; another key is refused.
    let code = server.fresh_code(&account);
    let refused = client.sign_in(
        &account.username,
        &account.password,
        wire::SecondFactor::Totp { code: code.clone() },
        &session.device_id,
        &device_key(2),
    );
    assert_eq!(
        refused
            .err()
            .and_then(|e| e.code().map(str::to_string))
            .as_deref(),
        Some(wire::error_codes::INVALID_CREDENTIALS)
    );
    let code = server.fresh_code(&account);
    let again = client
        .sign_in(
            &account.username,
            &account.password,
            wire::SecondFactor::Totp { code },
            &session.device_id,
            &key,
        )
        .expect("sign in with the device key");
    assert_eq!(again.device_id, session.device_id);

    // The access token expires; the device key renews the session; a spent refresh token is refused.
    server.clock.advance(16 * 60);
    let expired = client
        .pull_page(&again.access_token, 0, None, 10)
        .expect_err("expired");
    assert_eq!(expired.code(), Some(wire::error_codes::TOKEN_EXPIRED));
    let renewed = client
        .refresh(&again.device_id, &again.refresh_token, &key)
        .expect("refresh");
    client
        .pull_page(&renewed.access_token, 0, None, 10)
        .expect("pull with the renewed token");
    let spent = client
        .refresh(&again.device_id, &again.refresh_token, &key)
        .expect_err("spent refresh token");
    assert_eq!(spent.code(), Some(wire::error_codes::INVALID_REFRESH));
    assert!(!spent.is_transient());

    // A revoked device is told so: the cue for remote wipe.
    let code = server.fresh_code(&account);
    let session = client
        .sign_in(
            &account.username,
            &account.password,
            wire::SecondFactor::Totp { code },
            &session.device_id,
            &key,
        )
        .expect("sign in");
    server
        .block_on(server.service.revoke_device(Actor::Cli, &session.device_id))
        .expect("revoke");
    let revoked = client
        .pull_page(&session.access_token, 0, None, 10)
        .expect_err("revoked");
    assert_eq!(revoked.code(), Some(wire::error_codes::DEVICE_REVOKED));
}

#[test]
fn pulled_documents_download_resume_and_are_checked_against_their_hash() {
    let server = InProcessServer::start();
    server.unit("North");
    let account = server.account("oleg", Role::Supervisor, Some("North"));
    let pdf = large_pdf();
    let big = server.document(
        "Big order",
        pdf.clone(),
        AssignmentTarget::Unit {
            name: "North".into(),
        },
    );
    let small = server.document_for(
        "Memo",
        outpost_server::testing::sample_pdf("Memo", 0),
        "oleg",
    );
    let client = client(&server);
    let key = device_key(3);
    let session = enrol(&server, &client, &account, "Laptop", &key);

    let (changes, cursor) = client
        .pull_round(&session.access_token, 0, 1)
        .expect("pull");
    let documents: Vec<wire::DocumentInfo> = changes
        .into_iter()
        .filter_map(|c| match c {
            wire::DocumentChange::Visible { document, .. } => Some(document),
            _ => None,
        })
        .collect();
    let mut ids: Vec<&str> = documents.iter().map(|d| d.id.as_str()).collect();
    ids.sort();
    let mut expected = vec![big.as_str(), small.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    let big_info = documents
        .iter()
        .find(|d| d.id == big)
        .expect("the big document")
        .clone();

    // An interrupted download resumes where it stopped, and reports progress up to the total.
    let mut partial = pdf[..100_003].to_vec();
    let mut reports = Vec::new();
    let never = AtomicBool::new(false);
    client
        .download(
            &session.access_token,
            &big_info,
            &mut partial,
            &mut |done, total| reports.push((done, total)),
            &never,
        )
        .expect("resume");
    assert!(partial == pdf, "resumed bytes differ");
    assert!(reports.first().is_some_and(|(done, _)| *done > 100_003));
    assert_eq!(reports.last(), Some(&(pdf.len() as u64, pdf.len() as u64)));

    // Bytes kept from before that do not belong to the document are caught by the hash.
    let mut corrupt = pdf[..50_000].to_vec();
    corrupt[10] ^= 0xff;
    let error = client
        .download(
            &session.access_token,
            &big_info,
            &mut corrupt,
            &mut |_, _| {},
            &never,
        )
        .expect_err("a corrupt prefix");
    assert!(
        matches!(error, ServerError::HashMismatch { .. }),
        "{error:?}"
    );
    assert!(
        corrupt.is_empty(),
        "nothing of a mismatching download is kept"
    );

    // Cancelling keeps what arrived, for the next attempt.
    let cancelled = AtomicBool::new(true);
    let mut kept = pdf[..1000].to_vec();
    let error = client
        .download(
            &session.access_token,
            &big_info,
            &mut kept,
            &mut |_, _| {},
            &cancelled,
        )
        .expect_err("cancelled");
    assert!(matches!(error, ServerError::Cancelled));
    assert_eq!(kept, pdf[..1000].to_vec());

    // After the unit assignment is revoked the next round says so; the cursor moved forward.
    server
        .block_on(server.service.revoke_assignment(
            Actor::Cli,
            &big,
            &AssignmentTarget::Unit {
                name: "North".into(),
            },
        ))
        .expect("revoke");
    let (changes, next) = client
        .pull_round(&session.access_token, cursor, 50)
        .expect("pull again");
    assert!(next > cursor);
    assert!(
        matches!(changes.as_slice(), [wire::DocumentChange::Removed { document_id, .. }] if *document_id == big)
    );
    let gone = client.download(
        &session.access_token,
        &big_info,
        &mut Vec::new(),
        &mut |_, _| {},
        &never,
    );
    assert_eq!(
        gone.err()
            .and_then(|e| e.code().map(str::to_string))
            .as_deref(),
        Some(wire::error_codes::NOT_FOUND)
    );
}

#[test]
fn an_unpinned_or_unreachable_server_is_reported_as_such() {
    let mut server = InProcessServer::start();
    // A client pinning another CA refuses the server's certificate.
    let other = InProcessServer::start();
    let wrong = ServerClient::new(&server.base_url, &other.ca_pem, Duration::from_secs(10))
        .expect("client");
    assert!(
        matches!(wrong.health(), Err(ServerError::Untrusted(_))),
        "{:?}",
        wrong.health()
    );
    assert!(matches!(
        ServerClient::new(
            &server.base_url,
            b"not a certificate",
            Duration::from_secs(10)
        ),
        Err(ServerError::BadCa(_))
    ));
    // A stopped server is unreachable, which is transient.
    let client = client(&server);
    server.stop();
    let error = client.health().expect_err("stopped");
    assert!(
        matches!(error, ServerError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
}

#[test]
fn a_200_mb_download_cut_twenty_times_resumes_each_time_and_ends_with_the_right_hash() {
    let server = InProcessServer::start_accepting(220 << 20);
    let account = server.account("boris", Role::Staff, None);
    let pdf = outpost_server::testing::sample_pdf("Huge", 200 << 20);
    let id = server.document_for("Huge", pdf.clone(), "boris");
    let direct = client(&server);
    let session = enrol(&server, &direct, &account, "Laptop", &device_key(9));
    let (changes, _) = direct
        .pull_round(&session.access_token, 0, 10)
        .expect("pull");
    let info = changes
        .into_iter()
        .find_map(|c| match c {
            wire::DocumentChange::Visible { document, .. } if document.id == id => Some(document),
            _ => None,
        })
        .expect("the document");

    // Through a proxy that cuts every answer somewhere in its first 16 MiB.
    let target = server.address();
    let proxy = outpost_server::testing::FaultyProxy::start(&server.runtime, target, 77);
    proxy.cut_answers_within(16 << 20);
    let through_proxy =
        ServerClient::new(&proxy.base_url(), &server.ca_pem, Duration::from_secs(120))
            .expect("client");
    let never = AtomicBool::new(false);
    let mut partial = Vec::new();
    let (mut interruptions, mut received) = (0usize, 0usize);
    loop {
        let before = partial.len();
        let outcome = through_proxy.download(
            &session.access_token,
            &info,
            &mut partial,
            &mut |_, _| {},
            &never,
        );
        assert!(
            partial.len() >= before,
            "a resumed download lost bytes it had"
        );
        received += partial.len() - before;
        match outcome {
            Ok(()) => break,
            Err(ServerError::Unreachable { .. }) => interruptions += 1,
            Err(other) => panic!("unexpected: {other}"),
        }
        assert!(interruptions < 200, "the download never finished");
    }
    assert!(interruptions >= 20, "only {interruptions} interruptions");
    // Every byte arrived exactly once (each attempt resumed where the last one stopped), and the
    // whole is the document.
    assert_eq!(received, pdf.len());
    assert!(partial == pdf, "the assembled bytes differ");
}

#[test]
fn an_upload_cut_again_and_again_continues_where_the_server_copy_stops() {
    let server = InProcessServer::start_accepting(64 << 20);
    let account = server.account("zoya", Role::Staff, None);
    let direct = client(&server);
    let session = enrol(&server, &direct, &account, "Laptop", &device_key(5));
    // 24 MiB that compress to nothing useful: six requests' worth when nothing breaks.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(24);
    let mut bytes = vec![0u8; 24 << 20];
    rand::RngCore::fill_bytes(&mut rng, &mut bytes);

    // Every request is cut somewhere in its first 6 MiB (one request carries up to 4 MiB).
    let target = server.address();
    let proxy = outpost_server::testing::FaultyProxy::start(&server.runtime, target, 31);
    proxy.cut_requests_within(6 << 20);
    let through_proxy =
        ServerClient::new(&proxy.base_url(), &server.ca_pem, Duration::from_secs(120))
            .expect("client");
    let never = AtomicBool::new(false);
    let mut held_at_start = Vec::new();
    let mut interruptions = 0usize;
    let name = loop {
        let mut first = None;
        let outcome = through_proxy.upload(
            &session.access_token,
            &bytes,
            &mut |held, _| {
                first.get_or_insert(held);
            },
            &never,
        );
        if let Some(held) = first {
            held_at_start.push(held);
        }
        match outcome {
            Ok(name) => break name,
            Err(ServerError::Unreachable { .. }) => interruptions += 1,
            Err(other) => panic!("unexpected: {other}"),
        }
        assert!(interruptions < 300, "the upload never finished");
    };
    assert!(interruptions >= 5, "only {interruptions} interruptions");
    // Each attempt started from what the server held, which only grew — and bytes that arrived
    // before a cut were kept (some attempt started past a 4 MiB request boundary's multiple).
    assert!(
        held_at_start.windows(2).all(|w| w[0] <= w[1]),
        "{held_at_start:?}"
    );
    assert!(
        held_at_start
            .iter()
            .any(|held| *held > 0 && held % (4 << 20) != 0),
        "no attempt resumed inside a request: {held_at_start:?}"
    );
    assert_eq!(name, common_sha256(&bytes));
    let stored = server
        .block_on(server.service.blobs().get(&name))
        .expect("the blob");
    assert!(
        stored.as_ref() == bytes.as_slice(),
        "the stored bytes differ"
    );
}

fn common_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
