//! Sync at the scale, against rsync in the same run:
//! - the first sync of N documents of about S bytes each (default 2,000 × 500 kB ≈ 1 GB), beside
//!   an rsync daemon on loopback serving the same files (fetched plain, and with `--fsync`);
//! - a sync round when nothing changed (push + pull) for a user with A assigned documents while
//!   the server holds T in all (default A = 5,000 and T = 10,000, then 100,000): the round must
//!   not grow with the server's total.
//!
//! Writes the `sync-scale` section of docs/benchmarks.md.
//! Run: `scripts/with-keyring.sh cargo bench -p outpost-workstation --bench sync_scale`
//! Options: `--docs N`, `--doc-bytes S`, `--assigned A`, `--totals T1,T2`, `--rounds R`,
//! `--repeats K` (first syncs and rsync runs, taking turns; medians reported; each repeat's vault
//! and copies are kept until the first syncs end — about 3 GB per repeat at the default sizes),
//! `--out FILE`.
//! Profiling only the first syncs: `mkfifo CTL ACK; OUTPOST_BENCH_PERF_CONTROL=CTL,ACK perf record
//! -D -1 --control fifo:CTL,ACK -- BENCH_BINARY ...`. On a shared virtual machine, compare runs
//! only when little CPU time was stolen (`/proc/stat`): here one run in three lost tens of seconds.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_protocol::{AssignmentTarget, Role};
use outpost_server::service::Actor;
use outpost_server::testing::InProcessServer;

#[path = "../../../scripts/bench_report.rs"]
mod bench_report;
mod support;

use support::{connected_workstation, cpu_times, median_and_p95, ms, RsyncDaemon};

struct Args {
    docs: usize,
    doc_bytes: usize,
    assigned: usize,
    totals: Vec<usize>,
    rounds: usize,
    repeats: usize,
    out: String,
}

fn args() -> Args {
    let mut args = Args {
        docs: 2_000,
        doc_bytes: 500_000,
        assigned: 5_000,
        totals: vec![10_000, 100_000],
        rounds: 50,
        repeats: 3,
        out: concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/benchmarks.md").to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let value = it.next();
        let number = value.as_deref().and_then(|v| v.parse().ok());
        match a.as_str() {
            "--docs" => args.docs = number.unwrap_or(args.docs),
            "--doc-bytes" => args.doc_bytes = number.unwrap_or(args.doc_bytes),
            "--assigned" => args.assigned = number.unwrap_or(args.assigned),
            "--rounds" => args.rounds = number.unwrap_or(args.rounds),
            "--repeats" => args.repeats = number.unwrap_or(args.repeats),
            "--totals" => {
                args.totals = value
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|t| t.parse().ok())
                    .collect()
            }
            "--out" => args.out = value.unwrap_or(args.out),
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

/// Registers `count` documents of about `filler` bytes, numbered from `first`, for `target`,
/// 32 at a time; returns their bytes when `keep` (else nothing).
fn register(
    server: &InProcessServer,
    first: usize,
    count: usize,
    filler: usize,
    target: &AssignmentTarget,
    keep: bool,
) -> Vec<(String, Vec<u8>)> {
    server.block_on(async {
        let mut running = tokio::task::JoinSet::new();
        let mut kept = Vec::new();
        for n in first..first + count {
            let title = format!("Document {n}");
            let pdf = outpost_server::testing::sample_pdf(&title, filler);
            if keep {
                kept.push((format!("{n:06}.pdf"), pdf.clone()));
            }
            let (service, target) = (server.service.clone(), target.clone());
            running.spawn(async move {
                let row = service
                    .register_document(Actor::Cli, &title, "internal", pdf.into())
                    .await
                    .expect("register");
                service
                    .assign(Actor::Cli, &row.id, &target)
                    .await
                    .expect("assign");
            });
            while running.len() >= 32 {
                running.join_next().await;
            }
        }
        while running.join_next().await.is_some() {}
        kept
    })
}

/// Tells a profiler started with `perf record -D -1 --control fifo:CTL,ACK` to start or stop
/// recording (`OUTPOST_BENCH_PERF_CONTROL=CTL,ACK`), so a profile holds the first syncs only.
fn profiler_control(command: &str) {
    use std::io::{Read, Write};
    let Ok(fifos) = std::env::var("OUTPOST_BENCH_PERF_CONTROL") else {
        return;
    };
    let Some((control, ack)) = fifos.split_once(',') else {
        return;
    };
    if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(control) {
        let _ = writeln!(fifo, "{command}");
    }
    if let Ok(mut fifo) = std::fs::File::open(ack) {
        let _ = fifo.read(&mut [0u8; 5]);
    }
}

/// The work a first sync cannot skip beyond what rsync does, each part measured alone on one core
/// over the same files: the SHA-256 check of every download; AES-256-GCM over every byte three
/// times — the server's TLS encryption, the workstation's TLS decryption (as costly) and the
/// vault's seal; and pdfium's check and page text of every document (for search).
struct UnavoidableWork {
    sha256: Duration,
    aes_gcm: Duration,
    pdfium: Duration,
}

impl UnavoidableWork {
    fn measure(source: &Path, pdf: &outpost_workstation::PdfEngine) -> UnavoidableWork {
        use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
        use sha2::{Digest, Sha256};
        // A fixed key and nonce: only the cost is measured, nothing sealed here is kept.
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).expect("a key"));
        let mut files: Vec<_> = std::fs::read_dir(source)
            .expect("the source folder")
            .map(|entry| entry.expect("a source file").path())
            .collect();
        files.sort();
        let mut work = UnavoidableWork {
            sha256: Duration::ZERO,
            aes_gcm: Duration::ZERO,
            pdfium: Duration::ZERO,
        };
        for path in files {
            let bytes = std::fs::read(&path).expect("a source file");
            let started = Instant::now();
            std::hint::black_box(Sha256::digest(&bytes));
            work.sha256 += started.elapsed();
            let mut sealed = bytes.clone();
            let started = Instant::now();
            let tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([0; 12]),
                    Aad::empty(),
                    &mut sealed,
                )
                .expect("sealed");
            std::hint::black_box(&tag);
            std::hint::black_box(&sealed);
            work.aes_gcm += started.elapsed() * 3;
            let started = Instant::now();
            pdf.inspect(Arc::new(bytes)).expect("a readable PDF");
            work.pdfium += started.elapsed();
        }
        work
    }

    fn total(&self) -> Duration {
        self.sha256 + self.aes_gcm + self.pdfium
    }
}

fn unit(name: &str) -> AssignmentTarget {
    AssignmentTarget::Unit { name: name.into() }
}

fn main() {
    let args = args();
    let stolen_before = bench_report::stolen_seconds();
    let never = AtomicBool::new(false);

    // The first sync of a large assignment, beside an rsync daemon serving the same files.
    let server = InProcessServer::start_accepting(args.doc_bytes * 2 + (1 << 20));
    server.unit("North");
    let account = server.account("bulk", Role::Staff, Some("North"));
    let files = tempfile::tempdir().expect("a temp dir");
    let (source, copy) = (files.path().join("source"), files.path().join("copy"));
    std::fs::create_dir_all(&source).expect("a folder");
    let mut total_bytes = 0usize;
    for (name, pdf) in register(&server, 0, args.docs, args.doc_bytes, &unit("North"), true) {
        total_bytes += pdf.len();
        std::fs::write(source.join(name), pdf).expect("write");
    }
    // Each first sync goes into a new vault (a new device), each rsync into a new folder, taking
    // turns; the disk is flushed before each so neither pays for the other's writes, and each
    // starts from the same page cache: emptied, then both sources (the rsync folder and the
    // server's data) read back in (`settle_the_page_cache`). Nothing is
    // deleted until the end: on an ext4 without a journal (as on the benchmark machine) every
    // new file's inode search steps over each inode deleted in the last minute (six, while its
    // inode table block is not yet written out), so deleting one run's 2,000 files would make
    // the next run pay for them.
    let daemon = RsyncDaemon::serve(&source);
    let (mut syncs, mut sync_cpu, mut rsyncs) = (Vec::new(), Vec::new(), Vec::new());
    let mut rsync_cpu = Vec::new();
    let mut durable_rsyncs = Vec::new();
    let mut rsync_bytes = 0;
    let mut kept_until_the_end = Vec::new();
    std::fs::create_dir_all(&copy).expect("the copies' folder");
    let sources = [source.as_path(), server.data_dir()];
    let mut settled = true;
    for repeat in 0..args.repeats.max(1) {
        let root = tempfile::tempdir().expect("a temp dir");
        let (workstation, session) = connected_workstation(&server, &account, root.path());
        settled &= bench_report::settle_the_page_cache(&sources);
        profiler_control("enable");
        let (started, cpu_before) = (Instant::now(), cpu_times("self").own);
        let pulled = session.sync_pull(&never, &mut |_| {}).expect("pull");
        syncs.push(started.elapsed());
        profiler_control("disable");
        sync_cpu.push(cpu_times("self").own.saturating_sub(cpu_before));
        assert_eq!(pulled.stored.len(), args.docs);
        drop((session, workstation));
        kept_until_the_end.push(root);
        settled &= bench_report::settle_the_page_cache(&sources);
        let plain = daemon.fetch(&copy.join(format!("plain-{repeat}")));
        rsyncs.push(plain.elapsed);
        rsync_cpu.push(plain.cpu);
        rsync_bytes = plain.bytes;
        // rsync again with each written file fsynced (`--fsync`), as Outpost makes each document
        // durable before it is stored; plain rsync leaves its writes to the kernel, to be done
        // after its clock has stopped.
        settled &= bench_report::settle_the_page_cache(&sources);
        let durable = copy.join(format!("durable-{repeat}"));
        durable_rsyncs.push(daemon.fetch_with(&durable, &["--fsync"]).elapsed);
    }
    drop(kept_until_the_end);
    let _ = std::fs::remove_dir_all(&copy);
    eprintln!(
        "first syncs {syncs:?} (CPU {sync_cpu:?}), rsync {rsyncs:?} (CPU {rsync_cpu:?}), rsync --fsync {durable_rsyncs:?}"
    );
    let (first_sync, _) = median_and_p95(syncs);
    let (first_sync_cpu, _) = median_and_p95(sync_cpu);
    let (rsync_cpu, _) = median_and_p95(rsync_cpu);
    let unavoidable = UnavoidableWork::measure(
        &source,
        &outpost_workstation::PdfEngine::start_default().expect("pdfium"),
    );
    let (rsync_time, _) = median_and_p95(rsyncs);
    let (durable_rsync_time, _) = median_and_p95(durable_rsyncs);
    drop((daemon, files, server));

    // Nothing changed, with A documents assigned while the server's total grows.
    let server = InProcessServer::start();
    server.unit("North");
    server.unit("South");
    let account = server.account("clerk", Role::Staff, Some("North"));
    register(&server, 0, args.assigned, 0, &unit("North"), false);
    let root = tempfile::tempdir().expect("a temp dir");
    let (_workstation, session) = connected_workstation(&server, &account, root.path());
    let pulled = session.sync_pull(&never, &mut |_| {}).expect("pull");
    assert_eq!(pulled.stored.len(), args.assigned);
    let mut on_server = args.assigned;
    let mut rows = Vec::new();
    for &total in &args.totals {
        if total > on_server {
            register(
                &server,
                on_server,
                total - on_server,
                0,
                &unit("South"),
                false,
            );
            on_server = total;
        }
        let mut samples = Vec::new();
        for _ in 0..args.rounds {
            let started = Instant::now();
            session.sync_push().expect("push");
            let round = session.sync_pull(&never, &mut |_| {}).expect("pull");
            samples.push(started.elapsed());
            assert!(round.stored.is_empty() && round.purged.is_empty());
        }
        let (median, p95) = median_and_p95(samples);
        rows.push(format!(
            "| nothing changed: {assigned} assigned, {on_server} on the server, median / p95 of {rounds} | {median} / {p95} | goal: median under 20 ms, not growing with the server's total |\n",
            assigned = args.assigned,
            rounds = args.rounds,
            median = ms(median),
            p95 = ms(p95),
        ));
    }

    let ratio = first_sync.as_secs_f64() / rsync_time.as_secs_f64().max(f64::EPSILON);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let floor = (rsync_cpu + unavoidable.total()) / cores as u32;
    let floor_ratio = floor.as_secs_f64() / rsync_time.as_secs_f64().max(f64::EPSILON);
    let durable_ratio =
        first_sync.as_secs_f64() / durable_rsync_time.as_secs_f64().max(f64::EPSILON);
    let body = format!(
        "## Sync at scale against an rsync daemon (crates/outpost-workstation/benches/sync_scale.rs)\n\n\
         {machine}. One workstation and an in-process server on loopback HTTPS; the peer is an rsync \
         daemon on loopback serving the same files in the same run (no TLS, no checks). {cache} \
         Run: `scripts/with-keyring.sh cargo bench -p outpost-workstation --bench sync_scale`.\n\n\
         | | Outpost | peer / goal |\n|---|---|---|\n\
         | first sync of {docs} documents ({mb:.0} MB): downloaded {in_flight} at a time into the vault part by part, hash-checked, validated and indexed by pdfium, stored encrypted (sealed in a pack file per download thread, keys in SQLCipher); median of {repeats} | {first} ({ratio:.1}× rsync; CPU {cpu}, workstation and server together) | rsync daemon: {rsync} ({rsync_mb:.0} MB received), median of {repeats}; goal ≤ 1.5× (judged against this plain run). With `--fsync` (each file made durable, as Outpost does): {durable_rsync}, Outpost {durable_ratio:.1}× that |\n\
         | floor on this machine: rsync's own CPU ({rsync_cpu}, client and daemon) plus the work Outpost cannot skip, each part measured alone over the same files — the SHA-256 check {sha256}, AES-256-GCM three times (TLS at the server and at the workstation, the vault's seal) {aes_gcm}, pdfium's check and page text {pdfium} — spread over {cores} cores without loss | {floor} ({floor_ratio:.1}× rsync; Outpost {of_floor:.1}× this floor) | an estimate of the least a first sync doing this work can take here (rsync's CPU includes its own protocol and checksums, which Outpost does not do; the work is assumed spread perfectly): {verdict} |\n\
         {rows}\n\
         During this run the host took {stolen:.0} s of this machine's CPU time (steal, over both \
         cores): compare runs made with little of it.\n",
        machine = bench_report::machine(),
        cache = if settled {
            "Before each timed run the disk was flushed, the page cache emptied and both sources \
             (the rsync folder, the server's data) read back in."
        } else {
            "Before each timed run the disk was flushed; the page cache could not be emptied \
             (not root), so the runs wrote into a cache that kept growing."
        },
        docs = args.docs,
        mb = total_bytes as f64 / 1e6,
        first = ms(first_sync),
        rsync = ms(rsync_time),
        durable_rsync = ms(durable_rsync_time),
        cpu = ms(first_sync_cpu),
        repeats = args.repeats.max(1),
        in_flight = outpost_workstation::DOWNLOADS_IN_FLIGHT,
        rsync_mb = rsync_bytes as f64 / 1e6,
        rsync_cpu = ms(rsync_cpu),
        sha256 = ms(unavoidable.sha256),
        aes_gcm = ms(unavoidable.aes_gcm),
        pdfium = ms(unavoidable.pdfium),
        floor = ms(floor),
        of_floor = first_sync.as_secs_f64() / floor.as_secs_f64().max(f64::EPSILON),
        verdict = if floor_ratio > 1.5 {
            "by this estimate the goal of 1.5× rsync is out of reach on this machine"
        } else {
            "this estimate does not rule out the goal of 1.5× rsync"
        },
        rows = rows.concat(),
        stolen = bench_report::stolen_seconds() - stolen_before,
    );
    print!("{body}");
    bench_report::write_section(&args.out, "sync-scale", &body).expect("write the report");
}
