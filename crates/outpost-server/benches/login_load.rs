//! Load on loopback: 500 simulated workstations each sign in (password + TOTP + device enrolment)
//! and list their assignments, on SQLite and (under scripts/with-postgres.sh) PostgreSQL, over real
//! HTTPS. Then every workstation lists again, all at once, and `wrk` (the peer load generator)
//! measures the same list endpoint. Results go to docs/benchmarks.md.
//!
//! Run: `scripts/with-postgres.sh cargo bench -p outpost-server --bench login_load`
//! (`OUTPOST_BENCH_WORKSTATIONS`, `OUTPOST_BENCH_RAMP_SECONDS` change the shape).

#[path = "../../../scripts/bench_report.rs"]
mod bench_report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use outpost_protocol as wire;
use outpost_protocol::{AssignmentTarget, Role};
use outpost_server::clock::{ManualClock, SeededEntropy};
use outpost_server::serve::{open_service, start, StorageConfig};
use outpost_server::service::{Actor, NewUser, Policy, Service};
use outpost_server::tls::{embedded_pair, server_config};
use p256::pkcs8::EncodePublicKey;

const START: i64 = 1_795_478_400;
const UNITS: usize = 10;

struct Workstation {
    username: String,
    password: String,
    totp_secret: Vec<u8>,
    key: p256::ecdsa::SigningKey,
}

struct Latencies(Vec<Duration>);

impl Latencies {
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort();
        if sorted.is_empty() {
            return 0.0;
        }
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index].as_secs_f64() * 1000.0
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn populate(service: &Service, workstations: usize) -> Vec<Workstation> {
    for unit in 0..UNITS {
        service
            .create_unit(Actor::Cli, &format!("Unit {unit}"))
            .await
            .expect("unit");
        for n in 0..20 {
            let title = format!("Unit {unit} order {n}");
            let document = service
                .register_document(
                    Actor::Cli,
                    &title,
                    "internal",
                    outpost_server::testing::sample_pdf(&title, 0).into(),
                )
                .await
                .expect("register");
            let target = AssignmentTarget::Unit {
                name: format!("Unit {unit}"),
            };
            service
                .assign(Actor::Cli, &document.id, &target)
                .await
                .expect("assign");
        }
    }
    let mut result = Vec::new();
    for i in 0..workstations {
        let username = format!("user{i:04}");
        let password = format!("{username}-password");
        service
            .create_user(
                Actor::Cli,
                NewUser {
                    username: username.clone(),
                    display_name: format!("User {i}"),
                    role: Role::Staff,
                    unit: Some(format!("Unit {}", i % UNITS)),
                    password: password.clone(),
                },
            )
            .await
            .expect("user");
        let enrolment = service
            .enrol_second_factor(Actor::Cli, &username)
            .await
            .expect("mfa");
        for n in 0..2 {
            let title = format!("{username} personal {n}");
            let document = service
                .register_document(
                    Actor::Cli,
                    &title,
                    "personal",
                    outpost_server::testing::sample_pdf(&title, 0).into(),
                )
                .await
                .expect("register");
            service
                .assign(
                    Actor::Cli,
                    &document.id,
                    &AssignmentTarget::User {
                        username: username.clone(),
                    },
                )
                .await
                .expect("assign");
        }
        let mut seed = [7u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        result.push(Workstation {
            username,
            password,
            totp_secret: enrolment.secret.to_vec(),
            key: p256::ecdsa::SigningKey::from_slice(&seed).expect("key"),
        });
    }
    result
}

fn client(ca_pem: &[u8]) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(certificate.expect("CA PEM")).expect("add the CA");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

use rustls_pki_types::pem::PemObject;

struct Outcome {
    logins: Latencies,
    lists: Latencies,
    elapsed: Duration,
    documents_seen: usize,
    tokens: Vec<String>,
}

async fn workstation_run(
    base: String,
    ca_pem: Arc<Vec<u8>>,
    station: Workstation,
    delay: Duration,
) -> (Duration, Duration, usize, String) {
    tokio::time::sleep(delay).await;
    let http = client(&ca_pem);
    let code = outpost_server::identity::totp_code(&station.totp_secret, START).expect("code");
    let public_key = station
        .key
        .verifying_key()
        .to_public_key_der()
        .expect("spki");
    let body = serde_json::json!({
        "username": station.username, "password": station.password,
        "second_factor": {"kind": "totp", "code": code},
        "device": {"kind": "enrol", "name": "Bench", "public_key":
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public_key.as_bytes())},
    });
    let started = Instant::now();
    let response = http
        .post(format!("{base}{}", wire::paths::LOGIN))
        .json(&body)
        .send()
        .await
        .expect("login");
    assert_eq!(
        response.status().as_u16(),
        200,
        "login {}",
        station.username
    );
    let session: wire::Session = response.json().await.expect("session");
    let login = started.elapsed();
    let started = Instant::now();
    let response = http
        .get(format!("{base}{}", wire::paths::DOCUMENTS))
        .bearer_auth(&session.access_token)
        .send()
        .await
        .expect("list");
    assert_eq!(response.status().as_u16(), 200);
    let list: wire::DocumentList = response.json().await.expect("list");
    (
        login,
        started.elapsed(),
        list.documents.len(),
        session.access_token,
    )
}

async fn arrivals(
    base: &str,
    ca_pem: Arc<Vec<u8>>,
    stations: Vec<Workstation>,
    ramp: Duration,
) -> Outcome {
    let count = stations.len() as u32;
    let started = Instant::now();
    let tasks: Vec<_> = stations
        .into_iter()
        .enumerate()
        .map(|(i, station)| {
            let delay = ramp * i as u32 / count.max(1);
            tokio::spawn(workstation_run(
                base.to_string(),
                ca_pem.clone(),
                station,
                delay,
            ))
        })
        .collect();
    let mut logins = Vec::new();
    let mut lists = Vec::new();
    let mut documents_seen = 0;
    let mut tokens = Vec::new();
    for task in tasks {
        let (login, list, seen, token) = task.await.expect("workstation");
        logins.push(login);
        lists.push(list);
        documents_seen += seen;
        tokens.push(token);
    }
    Outcome {
        logins: Latencies(logins),
        lists: Latencies(lists),
        elapsed: started.elapsed(),
        documents_seen,
        tokens,
    }
}

async fn list_storm(
    base: &str,
    ca_pem: Arc<Vec<u8>>,
    tokens: &[String],
    rounds: usize,
) -> (Latencies, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = tokens
        .iter()
        .cloned()
        .map(|token| {
            let (base, ca_pem) = (base.to_string(), ca_pem.clone());
            tokio::spawn(async move {
                let http = client(&ca_pem);
                let mut latencies = Vec::new();
                for _ in 0..rounds {
                    let started = Instant::now();
                    let response = http
                        .get(format!("{base}{}", wire::paths::DOCUMENTS))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("list");
                    assert_eq!(response.status().as_u16(), 200);
                    let _ = response.bytes().await.expect("body");
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("storm"));
    }
    (Latencies(all), started.elapsed())
}

/// `wrk` on the list endpoint with one workstation's token: requests/s, p50 and p99 in ms.
fn wrk(base: &str, token: &str) -> Option<(f64, String, String)> {
    let output = std::process::Command::new("wrk")
        .args([
            "-t2",
            "-c100",
            "-d5s",
            "--latency",
            "-H",
            &format!("Authorization: Bearer {token}"),
        ])
        .arg(format!("{base}{}", wire::paths::DOCUMENTS))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let percentile = |p: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(p))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    let non_2xx = text.lines().find(|l| l.contains("Non-2xx"));
    if let Some(line) = non_2xx {
        eprintln!("wrk saw errors: {line}");
    }
    Some((rps, percentile("50%")?, percentile("99%")?))
}

fn run_backend(
    backend: &str,
    database: Option<String>,
    workstations: usize,
    ramp: Duration,
) -> String {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let mut config = StorageConfig::in_dir(dir.path());
    config.database = database;
    config.max_connections = 16;
    let policy = Policy {
        login_attempts_per_minute: u32::MAX,
        ..Policy::default()
    };
    let (service, stations, ca_pem, running) = runtime.block_on(async {
        let service = Arc::new(
            open_service(
                &config,
                Arc::new(ManualClock::new(START)),
                Arc::new(SeededEntropy::new(1)),
                policy,
            )
            .await
            .expect("open"),
        );
        let setup = Instant::now();
        let stations = populate(&service, workstations).await;
        eprintln!(
            "{backend}: {workstations} users and their documents set up in {:.1?}",
            setup.elapsed()
        );
        let files = embedded_pair(dir.path(), &[], START).expect("tls");
        let tls = server_config(&files).expect("tls config");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let running = start(service.clone(), listener, tls).expect("start");
        let ca = std::fs::read(files.ca_certificate.expect("ca")).expect("ca");
        (service, stations, Arc::new(ca), running)
    });
    let base = format!("https://127.0.0.1:{}", running.address().port());
    let outcome = runtime.block_on(arrivals(&base, ca_pem.clone(), stations, ramp));
    let expected_documents = workstations * (20 + 2);
    assert_eq!(
        outcome.documents_seen, expected_documents,
        "every workstation sees its unit's and its own documents"
    );
    let rounds = 10;
    let (storm, storm_elapsed) =
        runtime.block_on(list_storm(&base, ca_pem.clone(), &outcome.tokens, rounds));
    let peer = wrk(&base, &outcome.tokens[0]);
    let _ = runtime.block_on(running.shutdown(Duration::from_secs(5)));
    drop(service);
    let requests = workstations * 2;
    let mut rows = vec![
        format!(
            "| {backend} | {workstations} sign-ins + lists, arriving over {:.0} s | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} |",
            ramp.as_secs_f64(),
            requests as f64 / outcome.elapsed.as_secs_f64(),
            outcome.logins.percentile(0.5),
            outcome.logins.percentile(0.99),
            outcome.lists.percentile(0.5),
            outcome.lists.percentile(0.99),
        ),
        format!(
            "| {backend} | {workstations} workstations listing {rounds}× at once | {:.0} | – | {:.1} / {:.1} |",
            (workstations * rounds) as f64 / storm_elapsed.as_secs_f64(),
            storm.percentile(0.5),
            storm.percentile(0.99),
        ),
    ];
    match peer {
        Some((rps, p50, p99)) => rows.push(format!(
            "| {backend} | peer: `wrk -t2 -c100 -d5s` on the list endpoint | {rps:.0} | – | {p50} / {p99} |"
        )),
        None => rows.push(format!("| {backend} | peer: wrk not installed (`apt-get install wrk`) | – | – | – |")),
    }
    rows.join("\n")
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let workstations = env_number("OUTPOST_BENCH_WORKSTATIONS", 500) as usize;
    let ramp = Duration::from_secs(env_number("OUTPOST_BENCH_RAMP_SECONDS", 10));
    let mut rows = vec![run_backend("SQLite", None, workstations, ramp)];
    match std::env::var("OUTPOST_TEST_POSTGRES_URL") {
        Ok(admin_url) => {
            let database = create_database(&admin_url);
            rows.push(run_backend("PostgreSQL", Some(database), workstations, ramp));
        }
        Err(_) => eprintln!("OUTPOST_TEST_POSTGRES_URL is not set: run under scripts/with-postgres.sh for PostgreSQL"),
    }
    let body = format!(
        "## Server under load (crates/outpost-server/benches/login_load.rs)\n\n\
         {workstations} simulated workstations on loopback, each over its own HTTPS connection: sign in \
         (Argon2id password check, TOTP, device enrolment) then list its assignments ({} documents each). \
         Then all of them list again at once, and `wrk` measures the list endpoint as the peer load \
         generator. The load generator shares the machine's cores with the server. Latencies are \
         milliseconds, p50 / p99. Goal: p99 < 100 ms at {workstations} workstations. The \
         all-at-once row opens {workstations} new HTTPS connections in the same instant: its p99 is \
         the queue behind those handshakes on cores shared with the client; `wrk` keeps 100 \
         connections open.\n\n\
         | store | load | requests/s | sign-in p50 / p99 | list p50 / p99 |\n|---|---|---|---|---|\n{}\n\n\
         Machine: {}.\n",
        20 + 2,
        rows.join("\n"),
        bench_report::machine()
    );
    println!("{body}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/benchmarks.md");
    bench_report::write_section(path, "server-load", &body).expect("write docs/benchmarks.md");
}

fn create_database(admin_url: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let name = format!("outpost_bench_{}", std::process::id());
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await
            .expect("drop");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create");
        let (base, _) = admin_url.rsplit_once('/').expect("URL ends in /DATABASE");
        format!("{base}/{name}")
    })
}
