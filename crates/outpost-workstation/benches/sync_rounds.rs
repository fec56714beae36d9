//! Sync cost, measured against rsync in the same run: the first sync of N documents, a sync round
//! when nothing changed (push + pull + audit upload), and bringing one signed revision to the
//! server — beside an rsync daemon on loopback serving the same files: the first fetch, a fetch
//! when nothing changed, and the changed file by its delta. Writes its section of
//! docs/benchmarks.md.
//!
//! Run: `scripts/with-keyring.sh cargo bench -p outpost-workstation --bench sync_rounds`
//! Options: `--docs N` (default 200), `--rounds N` (default 20), `--out FILE`.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use outpost_protocol::{AssignmentTarget, Role};
use outpost_server::testing::InProcessServer;
use outpost_workstation::{KeyAlgorithm, SignOptions};

#[path = "../../../scripts/bench_report.rs"]
mod bench_report;
mod support;

use support::{connected_workstation, median_and_p95, ms, RsyncDaemon};

struct Args {
    docs: usize,
    rounds: usize,
    out: String,
}

fn args() -> Args {
    let mut args = Args {
        docs: 200,
        rounds: 20,
        out: concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/benchmarks.md").to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--docs" => args.docs = it.next().and_then(|v| v.parse().ok()).unwrap_or(args.docs),
            "--rounds" => {
                args.rounds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(args.rounds)
            }
            "--out" => args.out = it.next().unwrap_or(args.out),
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

fn main() {
    let args = args();
    let server = InProcessServer::start_with_ca();
    server.unit("North");
    let account = server.account("bench", Role::Supervisor, Some("North"));
    let files = tempfile::tempdir().expect("a temp dir");
    let (source, copy) = (files.path().join("source"), files.path().join("copy"));
    std::fs::create_dir_all(&source).expect("a folder");
    let mut total_bytes = 0usize;
    for n in 0..args.docs {
        let pdf = outpost_server::testing::sample_pdf(&format!("Document {n}"), 40_000 + n * 997);
        total_bytes += pdf.len();
        std::fs::write(source.join(format!("{n:05}.pdf")), &pdf).expect("write");
        server.document(
            &format!("Document {n}"),
            pdf,
            AssignmentTarget::Unit {
                name: "North".into(),
            },
        );
    }

    let root = tempfile::tempdir().expect("a temp dir");
    let (_workstation, session) = connected_workstation(&server, &account, root.path());
    let never = AtomicBool::new(false);

    // The first sync: every document downloaded, checked and indexed; rsync copies the files.
    let started = Instant::now();
    let pulled = session.sync_pull(&never, &mut |_| {}).expect("pull");
    let first_sync = started.elapsed();
    assert_eq!(pulled.stored.len(), args.docs);
    let daemon = RsyncDaemon::serve(&source);
    let first = daemon.fetch(&copy);
    let (first_rsync, first_rsync_bytes) = (first.elapsed, first.bytes);

    // Nothing changed: whole rounds, and rsync re-checking the copy.
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..args.rounds {
        let started = Instant::now();
        session.sync_push().expect("push");
        session.sync_pull(&never, &mut |_| {}).expect("pull");
        session.sync_audit().expect("audit");
        ours.push(started.elapsed());
        theirs.push(daemon.fetch(&copy).elapsed);
    }
    let (noop_median, noop_p95) = median_and_p95(ours);
    let (rsync_noop_median, rsync_noop_p95) = median_and_p95(theirs);

    // One signed revision: its appended bytes go up; rsync sends the changed file's delta.
    let key = session
        .create_signing_key("bench", KeyAlgorithm::EcdsaP256, "Bench Signer")
        .expect("key");
    session
        .request_signer_certificate(&key.id)
        .expect("certificate");
    let first = session.documents().expect("documents")[0].clone();
    let document = first.id.clone();
    // Its file on the rsync side: "Document N" is NNNNN.pdf.
    let number: usize = first
        .title
        .trim_start_matches("Document ")
        .parse()
        .expect("a numbered title");
    let original = source.join(format!("{number:05}.pdf"));
    session
        .sign_document(&document, &SignOptions::invisible(&key.id, "Approved"))
        .expect("sign");
    let revisions = session.document_revisions(&document).expect("revisions");
    let started = Instant::now();
    let pushed = session.sync_push().expect("push");
    let revision_push = started.elapsed();
    assert_eq!(pushed.applied, 1);
    // The answer came after the server sealed the signature (its head is past the pushed one).
    let pushed_sha = &revisions.last().expect("the signed revision").sha256;
    let sealed = server
        .block_on(server.service.all_documents())
        .expect("documents")
        .iter()
        .any(|d| d.title == first.title && &d.sha256 != pushed_sha);
    assert!(
        sealed,
        "the server extended the signature for the long term"
    );
    // The same change on the rsync side: the signed file replaces the original.
    let signed = {
        let out = files.path().join("signed.pdf");
        session
            .export_with_annotations(&document, &out)
            .expect("export");
        std::fs::read(&out).expect("read")
    };
    let before = std::fs::read(&original).expect("read");
    assert!(
        signed.starts_with(&before),
        "the signed file extends the original"
    );
    let appended = signed.len() - before.len();
    std::fs::write(&original, &signed).expect("write");
    let change = daemon.fetch(&copy);
    let (rsync_change, rsync_change_bytes) = (change.elapsed, change.bytes);

    let body = format!(
        "## Sync rounds against rsync (crates/outpost-workstation/benches/sync_rounds.rs)\n\n\
         {machine}. One workstation and an in-process server on loopback HTTPS, {docs} documents \
         ({mb:.1} MB); the peer is an rsync daemon on loopback serving the same files in the same run \
         (no TLS, no checks — a floor, not a rival). Run: `scripts/with-keyring.sh cargo bench -p outpost-workstation \
         --bench sync_rounds`.\n\n\
         | | Outpost | rsync |\n|---|---|---|\n\
         | first sync of {docs} documents | {first} (downloaded, hash-checked, validated and indexed by pdfium, stored encrypted) | {first_rsync} ({first_rsync_bytes} bytes received) |\n\
         | nothing changed, median / p95 of {rounds} | {noop_median} / {noop_p95} (push + pull + audit upload: 3–4 HTTPS requests) | {rsync_noop_median} / {rsync_noop_p95} |\n\
         | one document signed ({appended} bytes appended) | {revision_push} (upload of the appended bytes + compare-and-swap push, answered once the server has sealed it: /DSS + RFC 3161 time-stamp; {revision_count} revisions held) | {rsync_change} ({rsync_change_bytes} bytes received: the delta) |\n",
        machine = bench_report::machine(),
        docs = args.docs,
        mb = total_bytes as f64 / 1e6,
        first = ms(first_sync),
        first_rsync = ms(first_rsync),
        rounds = args.rounds,
        noop_median = ms(noop_median),
        noop_p95 = ms(noop_p95),
        rsync_noop_median = ms(rsync_noop_median),
        rsync_noop_p95 = ms(rsync_noop_p95),
        revision_push = ms(revision_push),
        revision_count = revisions.len(),
        rsync_change = ms(rsync_change),
    );
    print!("{body}");
    bench_report::write_section(&args.out, "sync-rounds", &body).expect("write the report");
}
