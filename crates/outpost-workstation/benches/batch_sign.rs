//! Batch signing in the vault, as a supervisor's batch runs: `Session::sign_batch` over documents
//! of about 1 MB held encrypted in the vault — each read and decrypted, signed (PAdES B-B,
//! invisible, ECDSA P-256 key kept in the vault) and its update stored as a new revision with its
//! batch record — on one worker and on two, taking turns, with the process's CPU time beside the
//! wall time: how much the second core adds, and how busy both are.
//!
//! Writes its section of docs/benchmarks.md (beside `sign`, which measures the engine alone
//! against pyHanko). Run: `scripts/with-keyring.sh cargo bench -p outpost-workstation --bench
//! batch_sign`.

#[path = "../../../scripts/bench_report.rs"]
mod bench_report;
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../../outpost-pdf/tests/common/mod.rs"]
#[allow(unused_imports)]
mod judges;

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use outpost_workstation::{
    BatchRequest, DocumentId, KeyAlgorithm, Language, SampleKind, SampleSpec, SignOptions,
};

/// Documents per measured batch.
const PER_BATCH: usize = 100;
/// Batches: one worker and two workers, taking turns, this many times each.
const ROUNDS: usize = 3;

/// The process's CPU time (user and system) so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The middle one of `values`.
fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let (workstation, clock) = common::workstation(&root, "bench-batch-sign");
    let session = common::new_session(&workstation, "bench", "bench-password", 5);

    // 25 scanned documents of about 1 MB, each made distinct 2 × ROUNDS × PER_BATCH / 25 times
    // over by a trailing comment (the vault keeps one copy of the same bytes).
    let engine = common::pdf();
    let originals: Vec<Vec<u8>> = (0..25u64)
        .map(|i| {
            engine
                .write_scanned_sample(
                    &SampleSpec {
                        kind: SampleKind::ALL[(i % 3) as usize],
                        language: if i % 2 == 0 {
                            Language::Russian
                        } else {
                            Language::English
                        },
                        pages: 3,
                        seed: i,
                        marker: None,
                    },
                    150,
                )
                .unwrap()
        })
        .collect();
    let total = 2 * ROUNDS * PER_BATCH;
    let mut bytes_total = 0usize;
    let documents: Vec<DocumentId> = (0..total)
        .map(|i| {
            let mut bytes = originals[i % originals.len()].clone();
            bytes.extend_from_slice(format!("\n% copy {i}\n").as_bytes());
            bytes_total += bytes.len();
            session
                .import_bytes(bytes, &format!("document-{i}.pdf"))
                .unwrap()
                .document()
                .id
                .clone()
        })
        .collect();
    let mean_mb = bytes_total as f64 / total as f64 / 1e6;

    let pki = judges::TestPki::new();
    let key = session
        .create_signing_key("Bench", KeyAlgorithm::EcdsaP256, "Bench Supervisor")
        .unwrap();
    let issued = pki.issue_for_request("bench", &key.request_pem);
    session
        .import_certificate(&key.id, issued.as_bytes())
        .unwrap();
    session
        .add_trust_anchor(&std::fs::read(pki.path("ca.crt")).unwrap())
        .unwrap();
    clock.set(common::real_now_ms());

    let stolen_before = bench_report::stolen_seconds();
    // (workers, documents/s, CPU seconds per wall second)
    let mut runs: Vec<(usize, f64, f64)> = Vec::new();
    for (n, batch) in documents.chunks(PER_BATCH).enumerate() {
        let workers = 1 + n % 2;
        let request = BatchRequest {
            batch_id: format!("bench-{n}"),
            documents: batch.to_vec(),
            options: SignOptions::invisible(&key.id, "Approved"),
            parallelism: workers,
            token: None,
        };
        bench_report::flush_the_disk();
        let (cpu, started) = (cpu_time(), Instant::now());
        let report = session
            .sign_batch(&request, &|_| {}, &AtomicBool::new(false))
            .unwrap();
        let wall = started.elapsed();
        let cpu = cpu_time() - cpu;
        assert_eq!(report.signed, PER_BATCH, "{report:?}");
        let rate = PER_BATCH as f64 / wall.as_secs_f64();
        let busy = cpu.as_secs_f64() / wall.as_secs_f64();
        eprintln!("batch {n}: {workers} worker(s), {rate:.1} documents/s, CPU {busy:.2}× wall");
        runs.push((workers, rate, busy));
    }
    let stolen = bench_report::stolen_seconds() - stolen_before;
    for document in documents.iter().step_by(PER_BATCH) {
        assert_eq!(session.validate_document(document).unwrap().len(), 1);
    }
    let of = |workers: usize, pick: fn(&(usize, f64, f64)) -> f64| {
        median(
            runs.iter()
                .filter(|r| r.0 == workers)
                .map(pick)
                .collect::<Vec<f64>>(),
        )
    };
    let (one, two) = (of(1, |r| r.1), of(2, |r| r.1));
    let (busy_one, busy_two) = (of(1, |r| r.2), of(2, |r| r.2));
    let report = format!(
        "## Batch signing in the vault\n\n\
Measured by `crates/outpost-workstation/benches/batch_sign.rs` (`scripts/with-keyring.sh cargo bench \
-p outpost-workstation --bench batch_sign`), which writes this section.\n\n\
Machine: {machine}; {stolen:.1} s of CPU stolen by the hypervisor during the batches.\n\n\
{total} documents of {mean_mb:.2} MB on average (scanned pages) imported into an encrypted vault, \
signed in batches of {PER_BATCH} through `Session::sign_batch` with a vault key (ECDSA P-256, PAdES \
B-B, invisible): each document read from the vault and decrypted, signed, its update sealed and \
stored as a new revision with its batch record (one transaction each). Batches on one worker and \
on two take turns, {ROUNDS} of each; medians. \"CPU\" is the process's user and system time per \
second of wall time: 2.0 would be both cores busy all the time.\n\n\
| workers | documents/s | CPU per wall second |\n|---:|---:|---:|\n\
| 1 | {one:.1} | {busy_one:.2} |\n| 2 | {two:.1} | {busy_two:.2} |\n\n\
The second worker gives **{speedup:.2}×** the throughput of one. Each worker reads and decrypts \
its documents through a database connection of its own (the write-ahead log lets readers work \
beside the one writer) and signs outside the vault; committing each revision durably goes \
through the vault's own connection, one at a time. (Before the workers had connections of their \
own, this benchmark gave 1.05× on the same machine, CPU 1.09× wall: 2026-12-04, 97f15dd.)\n",
        machine = bench_report::machine(),
        speedup = two / one,
    );
    let target = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/benchmarks.md");
    bench_report::write_section(target, "batch-vault", &report).unwrap();
    println!("{report}");
}
