//! Two `outpost-server` processes on different ports over one PostgreSQL and one S3 store behave
//! as one server; the admin CLI drives the same stores; SIGTERM lets a request in flight finish.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outpost_protocol as wire;
use serde_json::json;
use support::s3::{S3Server, ACCESS_KEY, SECRET_KEY};
use support::DeviceKey;

const BINARY: &str = env!("CARGO_BIN_EXE_outpost-server");

struct Cluster {
    database: String,
    blobs: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn command(&self, data_dir: &Path) -> Command {
        let mut command = Command::new(BINARY);
        command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--database", &self.database, "--blobs", &self.blobs])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("RUST_LOG", "warn");
        command
    }

    /// Runs an admin subcommand; its standard output.
    fn admin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut child = self
            .command(&self.dir.path().join("admin"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the admin CLI");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        drop(child.stdin.take());
        let output = child.wait_with_output().expect("admin CLI output");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    }

    fn node(&self, name: &str, port: u16) -> Child {
        let tls = self.dir.path().join("shared/tls");
        self.command(&self.dir.path().join(name))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--tls-cert")
            .arg(tls.join("server.pem"))
            .arg("--tls-key")
            .arg(tls.join("server.key"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a node")
    }
}

struct Node {
    base: String,
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, Vec<u8>) {
    let request = ureq::http::Request::builder().method(method).uri(url);
    let request = match token {
        Some(token) => request.header("Authorization", format!("Bearer {token}")),
        None => request,
    };
    let outcome = match body {
        Some(json) => agent.run(
            request
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(&json).expect("json"))
                .expect("request"),
        ),
        None => agent.run(request.body(()).expect("request")),
    };
    let mut response = outcome.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(128 << 20)
        .read_to_vec()
        .expect("body");
    (status, body)
}

fn code_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body).expect("json")["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn login(
    agent: &ureq::Agent,
    base: &str,
    username: &str,
    password: &str,
    factor: serde_json::Value,
    key: &DeviceKey,
) -> (u16, Vec<u8>) {
    call(
        agent,
        "POST",
        &format!("{base}{}", wire::paths::LOGIN),
        None,
        Some(
            json!({"username": username, "password": password, "second_factor": factor,
                    "device": {"kind": "enrol", "name": "Node test", "public_key": key.public_key()}}),
        ),
    )
}

#[test]
fn two_nodes_over_one_postgres_and_one_s3_behave_as_one_server() {
    let s3 = S3Server::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let database = runtime.block_on(support::fresh_postgres_database());
    let cluster = Cluster {
        database,
        blobs: s3.url(),
        dir: tempfile::tempdir().expect("dir"),
    };
    let shared = cluster.dir.path().join("shared");
    let tls = outpost_server::tls::embedded_pair(&shared, &[], support::START).expect("TLS pair");
    let agent = support::pinned_agent(&std::fs::read(tls.ca_certificate.expect("ca")).expect("ca"));

    // Administration through the CLI, on the shared stores.
    cluster.admin(&["unit", "create", "North"], None);
    cluster.admin(
        &[
            "user",
            "create",
            "alice",
            "--display-name",
            "Alice",
            "--role",
            "staff",
            "--unit",
            "North",
            "--password-stdin",
        ],
        Some("alice-password-1\n"),
    );
    cluster.admin(
        &[
            "user",
            "create",
            "root",
            "--display-name",
            "Admin",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("root-password-1\n"),
    );
    let enrol = |user: &str| -> (Vec<u8>, Vec<String>) {
        let output = cluster.admin(&["mfa", "enrol", user], None);
        let field = |name: &str| -> Vec<String> {
            output
                .lines()
                .filter_map(|l| l.strip_prefix(name))
                .map(str::to_string)
                .collect()
        };
        let secret = field("secret\t").pop().expect("secret line");
        let secret = totp_rs::Secret::try_from_base32(&secret)
            .expect("base32")
            .as_ref()
            .to_vec();
        (secret, field("recovery\t"))
    };
    let (alice_secret, alice_recovery) = enrol("alice");
    let (_, root_recovery) = enrol("root");
    let pdf_path = cluster.dir.path().join("shared.pdf");
    let large = outpost_server::testing::sample_pdf("Large", 24 << 20);
    std::fs::write(&pdf_path, &large).expect("write pdf");
    let registered = cluster.admin(
        &[
            "document",
            "register",
            pdf_path.to_str().expect("path"),
            "--title",
            "Shared order",
        ],
        None,
    );
    let document_id = registered.split('\t').next().expect("id").to_string();
    cluster.admin(&["assign", &document_id, "--unit", "North"], None);

    let (port_a, port_b) = (free_port(), free_port());
    let a = Node {
        base: format!("https://127.0.0.1:{port_a}"),
        child: cluster.node("node-a", port_a),
    };
    let mut b = Node {
        base: format!("https://127.0.0.1:{port_b}"),
        child: cluster.node("node-b", port_b),
    };
    for node in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = agent
                .get(&format!("{}{}", node.base, wire::paths::HEALTH))
                .call()
                .map(|r| r.status().as_u16() == 200);
            if up.unwrap_or(false) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not come up",
                node.base
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // A TOTP code used on one node is spent on the other.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let code = outpost_server::identity::totp_code(&alice_secret, now).expect("code");
    let key = DeviceKey::new(1);
    let (status, body) = login(
        &agent,
        &a.base,
        "alice",
        "alice-password-1",
        json!({"kind": "totp", "code": code}),
        &key,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let session: wire::Session = serde_json::from_slice(&body).expect("session");
    let (status, body) = login(
        &agent,
        &b.base,
        "alice",
        "alice-password-1",
        json!({"kind": "totp", "code": code}),
        &key,
    );
    assert_eq!(
        (status, code_of(&body).as_str()),
        (401, wire::error_codes::INVALID_CREDENTIALS)
    );

    // A token from node A works on node B, and B serves the bytes A's CLI put in S3.
    let (status, body) = call(
        &agent,
        "GET",
        &format!("{}{}", b.base, wire::paths::DOCUMENTS),
        Some(&session.access_token),
        None,
    );
    assert_eq!(status, 200);
    let list: wire::DocumentList = serde_json::from_slice(&body).expect("list");
    assert_eq!(
        list.documents
            .iter()
            .map(|d| d.title.as_str())
            .collect::<Vec<_>>(),
        ["Shared order"]
    );
    let (status, body) = call(
        &agent,
        "GET",
        &format!(
            "{}{}{document_id}/content",
            b.base,
            wire::paths::DOCUMENT_PREFIX
        ),
        Some(&session.access_token),
        None,
    );
    assert_eq!(status, 200);
    assert!(body == large, "node B served different bytes");

    // An administrator uploads through B and assigns through A; alice sees it on both.
    let (status, body) = login(
        &agent,
        &b.base,
        "root",
        "root-password-1",
        json!({"kind": "recovery_code", "code": root_recovery[0]}),
        &DeviceKey::new(2),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let admin: wire::Session = serde_json::from_slice(&body).expect("session");
    let small = support::sample_pdf("Uploaded on B");
    let mut upload = agent
        .run(
            ureq::http::Request::builder()
                .method("POST")
                .uri(format!(
                    "{}{}?title=Uploaded%20on%20B",
                    b.base,
                    wire::paths::ADMIN_DOCUMENTS
                ))
                .header("Authorization", format!("Bearer {}", admin.access_token))
                .header("Content-Type", "application/pdf")
                .body(small.clone())
                .expect("request"),
        )
        .expect("upload");
    assert_eq!(upload.status().as_u16(), 201);
    let uploaded: wire::DocumentInfo = upload.body_mut().read_json().expect("info");
    let (status, _) = call(
        &agent,
        "POST",
        &format!("{}{}", a.base, wire::paths::ADMIN_ASSIGNMENTS),
        Some(&admin.access_token),
        Some(json!({"document_id": uploaded.id, "target": {"kind": "user", "username": "alice"}})),
    );
    assert_eq!(status, 201);
    let (_, body) = call(
        &agent,
        "GET",
        &format!(
            "{}{}{}/content",
            a.base,
            wire::paths::DOCUMENT_PREFIX,
            uploaded.id
        ),
        Some(&session.access_token),
        None,
    );
    assert_eq!(body, small);

    // Refresh on B and use the new session there; the replayed old refresh token on A then ends
    // the session on both nodes. (Replayed before the new session was used, it would be taken as
    // a retry after a lost answer: the api tests cover that.)
    let refresh = |base: &str, device_id: &str, token: &str| {
        call(
            &agent,
            "POST",
            &format!("{base}{}", wire::paths::REFRESH),
            None,
            Some(json!({"device_id": device_id, "refresh_token": token,
                        "signature": key.sign(&wire::device_refresh_message(device_id, token))})),
        )
    };
    let (status, body) = refresh(&b.base, &session.device_id, &session.refresh_token);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let renewed: wire::Session = serde_json::from_slice(&body).expect("session");
    let (status, _) = call(
        &agent,
        "GET",
        &format!("{}{}", b.base, wire::paths::ME),
        Some(&renewed.access_token),
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = refresh(&a.base, &session.device_id, &session.refresh_token);
    assert_eq!(status, 401);
    for node in [&a, &b] {
        let (status, _) = call(
            &agent,
            "GET",
            &format!("{}{}", node.base, wire::paths::ME),
            Some(&renewed.access_token),
            None,
        );
        assert_eq!(
            status, 401,
            "the ended session still works on {}",
            node.base
        );
    }

    // Failed logins count across nodes (the reused TOTP code on B was the first of five); the lock
    // holds on both.
    for attempt in 0..4 {
        let node = if attempt % 2 == 0 { &a } else { &b };
        let (status, _) = login(
            &agent,
            &node.base,
            "alice",
            "wrong-password",
            json!({"kind": "recovery_code", "code": "AAAAA-AAAAA"}),
            &key,
        );
        assert_eq!(status, 401);
    }
    for node in [&a, &b] {
        let (status, body) = login(
            &agent,
            &node.base,
            "alice",
            "alice-password-1",
            json!({"kind": "recovery_code", "code": alice_recovery[0]}),
            &key,
        );
        assert_eq!(
            (status, code_of(&body).as_str()),
            (423, wire::error_codes::ACCOUNT_LOCKED),
            "{}",
            node.base
        );
    }
    cluster.admin(&["user", "unlock", "alice"], None);
    let (status, body) = login(
        &agent,
        &a.base,
        "alice",
        "alice-password-1",
        json!({"kind": "recovery_code", "code": alice_recovery[1]}),
        &key,
    );
    assert_eq!(status, 200);
    let session: wire::Session = serde_json::from_slice(&body).expect("session");

    // A device revoked through the CLI is refused by both nodes at once.
    cluster.admin(&["device", "revoke", &session.device_id], None);
    for node in [&a, &b] {
        let (status, body) = call(
            &agent,
            "GET",
            &format!("{}{}", node.base, wire::paths::DOCUMENTS),
            Some(&session.access_token),
            None,
        );
        assert_eq!(
            (status, code_of(&body).as_str()),
            (401, wire::error_codes::DEVICE_REVOKED)
        );
    }
    let audit = cluster.admin(&["audit", "--limit", "1000"], None);
    for action in [
        "login.locked",
        "session.refresh_reused",
        "device.revoked",
        "document.registered",
    ] {
        assert!(
            audit.contains(action),
            "the audit log lacks {action}:\n{audit}"
        );
    }

    // SIGTERM while a 24 MiB download is in flight on B: the download completes, then B exits.
    let (status, body) = login(
        &agent,
        &a.base,
        "alice",
        "alice-password-1",
        json!({"kind": "recovery_code", "code": alice_recovery[2]}),
        &DeviceKey::new(3),
    );
    assert_eq!(status, 200);
    let session: wire::Session = serde_json::from_slice(&body).expect("session");
    let mut response = agent
        .get(&format!(
            "{}{}{document_id}/content",
            b.base,
            wire::paths::DOCUMENT_PREFIX
        ))
        .header("Authorization", &format!("Bearer {}", session.access_token))
        .call()
        .expect("start the download");
    let mut reader = response.body_mut().with_config().limit(128 << 20).reader();
    let mut received = vec![0u8; 64 * 1024];
    reader.read_exact(&mut received).expect("the first bytes");
    let status = Command::new("kill")
        .args(["-TERM", &b.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
    let mut rest = Vec::new();
    reader
        .read_to_end(&mut rest)
        .expect("the rest of the download");
    received.extend_from_slice(&rest);
    assert!(
        received == large,
        "the in-flight download was cut: {} of {} bytes",
        received.len(),
        large.len()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = b.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "node B did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "node B exited with {exit}");
    // A carries on alone.
    let (status, _) = call(
        &agent,
        "GET",
        &format!("{}{}", a.base, wire::paths::DOCUMENTS),
        Some(&session.access_token),
        None,
    );
    assert_eq!(status, 200);
}
