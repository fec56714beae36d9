//! Import and search speed of the encrypted vault, measured against a plain SQLite twin with the
//! same schema in the same run. Writes docs/benchmarks.md.
//!
//! Run: `scripts/with-keyring.sh cargo bench -p outpost-workstation --bench import_search`
//! Options: `--docs N` (default 1000), `--search-docs N` (default 10000), `--out FILE`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_pdf::{Language, PdfEngine, SampleKind, SampleSpec};
use outpost_vault::{
    DocumentId, KdfParams, NewDocument, OsKeyring, SearchRequest, SystemClock, Vault, VaultPaths,
};
use rand::SeedableRng;
use sha2::{Digest, Sha256};

#[path = "../../../scripts/bench_report.rs"]
mod bench_report;

struct Args {
    docs: usize,
    search_docs: usize,
    out: String,
}

fn args() -> Args {
    let mut args = Args {
        docs: 1000,
        search_docs: 10_000,
        out: concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/benchmarks.md").to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--docs" => args.docs = it.next().and_then(|v| v.parse().ok()).unwrap_or(args.docs),
            "--search-docs" => {
                args.search_docs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(args.search_docs)
            }
            "--out" => args.out = it.next().unwrap_or(args.out),
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

fn spec(i: usize) -> SampleSpec {
    SampleSpec {
        kind: SampleKind::ALL[i % 3],
        language: if i.is_multiple_of(2) {
            Language::Russian
        } else {
            Language::English
        },
        pages: 1 + (i * 7 % 20) as u32,
        seed: i as u64,
        marker: Some(format!("bench-{i}")),
    }
}

fn encrypted_vault(dir: &std::path::Path, keyring: &OsKeyring, seed: u64) -> Vault {
    Vault::create(
        &VaultPaths::new(dir, "bench").unwrap(),
        "bench-password",
        KdfParams::RECOMMENDED,
        keyring,
        Arc::new(SystemClock),
        &mut rand_chacha::ChaCha20Rng::seed_from_u64(seed),
    )
    .unwrap()
}

fn plain_vault(dir: &std::path::Path) -> Vault {
    Vault::create_plaintext_for_benchmark(
        &VaultPaths::new(dir, "bench").unwrap(),
        Arc::new(SystemClock),
    )
    .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args = args();
    let pdf = PdfEngine::start_default().expect("pdfium: run scripts/install-deps.sh");
    let keyring = OsKeyring::new(format!("outpost-bench-{}", std::process::id()));
    let tmp = tempfile::tempdir().unwrap();

    // ---- import: N generated PDFs (1-20 pages) into the encrypted vault and the plain twin ----
    eprintln!("generating {} sample PDFs…", args.docs);
    let started = Instant::now();
    let pdfs: Vec<Vec<u8>> = (0..args.docs)
        .map(|i| {
            if i % 100 == 99 {
                eprintln!(
                    "  {} generated, {:.0} s",
                    i + 1,
                    started.elapsed().as_secs_f64()
                );
            }
            pdf.write_sample(&spec(i)).unwrap()
        })
        .collect();
    let total_bytes: usize = pdfs.iter().map(Vec::len).sum();
    let total_pages: usize = (0..args.docs).map(|i| spec(i).pages as usize).sum();
    let mut enc = encrypted_vault(&tmp.path().join("enc"), &keyring, 1);
    let mut plain = plain_vault(&tmp.path().join("plain"));
    let (mut inspect_time, mut enc_store, mut plain_store) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    eprintln!("importing…");
    for (i, bytes) in pdfs.into_iter().enumerate() {
        let bytes = Arc::new(bytes);
        let t = Instant::now();
        let info = pdf.inspect(bytes.clone()).unwrap();
        let sha256 = hex::encode(Sha256::digest(bytes.as_slice()));
        inspect_time += t.elapsed();
        let doc = NewDocument {
            id: DocumentId(format!("doc-{i}")),
            bytes: &bytes,
            sha256,
            title: info.title().unwrap_or_default(),
            page_texts: info.page_texts,
            source_name: format!("bench-{i}.pdf"),
        };
        // Alternate which store goes first, so neither always meets a warm cache.
        let store = |vault: &mut Vault| {
            let t = Instant::now();
            vault.store_document(&doc, None).unwrap();
            t.elapsed()
        };
        if i % 2 == 0 {
            enc_store += store(&mut enc);
            plain_store += store(&mut plain);
        } else {
            plain_store += store(&mut plain);
            enc_store += store(&mut enc);
        }
    }
    let mb = total_bytes as f64 / 1e6;
    let secs = |d: Duration| d.as_secs_f64();
    let enc_total = inspect_time + enc_store;
    let plain_total = inspect_time + plain_store;
    let overhead_total = (secs(enc_total) / secs(plain_total) - 1.0) * 100.0;
    let overhead_store = (secs(enc_store) / secs(plain_store) - 1.0) * 100.0;
    drop(enc);
    drop(plain);

    // ---- search: M documents' page text, median latency over a query mix ----
    eprintln!("indexing {} documents for search…", args.search_docs);
    let mut enc = encrypted_vault(&tmp.path().join("enc-search"), &keyring, 2);
    let mut plain = plain_vault(&tmp.path().join("plain-search"));
    for i in 0..args.search_docs {
        let s = SampleSpec {
            pages: 1 + (i * 7 % 20) as u32,
            ..spec(i)
        };
        let texts: Vec<String> = s.page_lines().iter().map(|l| l.join("\n")).collect();
        let stand_in = format!("%PDF-stand-in {i} %%EOF");
        let doc = NewDocument {
            id: DocumentId(format!("doc-{i}")),
            bytes: stand_in.as_bytes(),
            sha256: hex::encode(Sha256::digest(stand_in.as_bytes())),
            title: texts[0].lines().next().unwrap_or_default().to_owned(),
            page_texts: texts,
            source_name: format!("s-{i}.pdf"),
        };
        enc.store_document(&doc, None).unwrap();
        plain.store_document(&doc, None).unwrap();
    }
    let queries = [
        "поставщик",
        "\"личный состав\"",
        "аттестац*",
        "договор оплата",
        "\"bench-4242\"",
        "supplier",
        "\"duty shift\"",
        "apprais*",
        "contract payment",
        "incidents recorded",
    ];
    // Each query runs on both stores back to back (order alternating), 30 rounds, after one
    // warm-up round, so neither store is measured with a colder cache or a busier machine.
    #[derive(Default)]
    struct Timings {
        all: Vec<Duration>,
        per_query: Vec<Vec<Duration>>,
        hits: usize,
    }
    let run = |vault: &Vault, q: &str| {
        let t = Instant::now();
        let found = vault
            .search(&SearchRequest {
                query: q.into(),
                limit: Some(50),
                ..Default::default()
            })
            .unwrap();
        (t.elapsed(), found.len())
    };
    let mut timings = [Timings::default(), Timings::default()];
    for t in &mut timings {
        t.per_query = vec![Vec::new(); queries.len()];
    }
    let stores = [&enc, &plain];
    for round in 0..31 {
        for (qi, q) in queries.iter().enumerate() {
            for k in 0..2 {
                let which = (k + round + qi) % 2;
                let (elapsed, found) = run(stores[which], q);
                if round == 0 {
                    timings[which].hits += found; // warm-up: counted for hits, not timed
                    continue;
                }
                timings[which].all.push(elapsed);
                timings[which].per_query[qi].push(elapsed);
            }
        }
    }
    let summarise = |t: &mut Timings| {
        t.all.sort();
        let medians: Vec<Duration> = t
            .per_query
            .iter_mut()
            .map(|v| {
                v.sort();
                percentile(v, 0.5)
            })
            .collect();
        (
            percentile(&t.all, 0.5),
            percentile(&t.all, 0.95),
            t.hits,
            medians,
        )
    };
    let [enc_t, plain_t] = &mut timings;
    let (enc_p50, enc_p95, enc_hits, enc_each) = summarise(enc_t);
    let (plain_p50, plain_p95, plain_hits, plain_each) = summarise(plain_t);
    assert_eq!(enc_hits, plain_hits, "both stores must find the same");

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let per_query_rows: String = queries
        .iter()
        .zip(plain_each.iter().zip(&enc_each))
        .map(|(q, (p, e))| format!("| `{q}` | {:.2} ms | {:.2} ms |\n", ms(*p), ms(*e)))
        .collect();
    let report = format!(
        "## Import and search\n\n\
Measured by `crates/outpost-workstation/benches/import_search.rs` \
(`scripts/with-keyring.sh cargo bench -p outpost-workstation --bench import_search`), which writes this section.\n\n\
Machine: {machine}.\n\n\
### Import: {docs} generated PDFs (1–20 pages, {pages} pages, {mb:.1} MB)\n\n\
Each PDF is validated and its text extracted by pdfium once (shared), then stored in the encrypted \
vault (SQLCipher 4, WAL, synchronous=FULL) and in a plain SQLite twin with the same schema and pragmas, \
alternating which goes first.\n\n\
| store | import docs/s | import MB/s | store-only time |\n|---|---:|---:|---:|\n\
| plain SQLite (peer) | {p_dps:.1} | {p_mbps:.1} | {p_store:.2} s |\n\
| encrypted vault | {e_dps:.1} | {e_mbps:.1} | {e_store:.2} s |\n\n\
pdfium validation and text extraction: {inspect:.2} s of the total.\n\n\
Encryption overhead on the whole import: **{ov_total:.1}%** (goal ≤ 15%). \
On the database writes alone: {ov_store:.1}%.\n\n\
### Search over {search_docs} documents\n\n\
Both stores index the documents one transaction each and, as the vault does after every 1,000 documents indexed (a first sync, a large intake), merge their FTS5 indexes; \
{nq} queries (Russian and English words, phrases, prefixes), each run 30 times on both stores back to back after a warm-up round, 50 results each.\n\n\
| store | median | p95 |\n|---|---:|---:|\n\
| plain SQLite (peer) | {pp50:.2} ms | {pp95:.2} ms |\n\
| encrypted vault | {ep50:.2} ms | {ep95:.2} ms |\n\n\
Goal: median < 10 ms on the encrypted vault. Ranking is BM25 over every matching document, so a\n\
term that occurs in a large share of the documents (every query here but `\"bench-4242\"`: the\n\
generator's vocabulary is small) costs time in proportion to its matches.\n\n\
Doubt: the plain twin searches slower than the encrypted vault here (before the merge the gap was\n\
about 2×, merged it is smaller). SQLCipher 4.12's own Python binding, given a similar index keyed and\n\
unkeyed, measured both equal, so the gap lies in how this benchmark's plain twin behaves, not in\n\
encryption; it is not explained yet.\n\n\
Median per query:\n\n\
| query | plain SQLite | encrypted vault |\n|---|---:|---:|\n{per_query_rows}",
        machine = bench_report::machine(),
        docs = args.docs,
        pages = total_pages,
        mb = mb,
        p_dps = args.docs as f64 / secs(plain_total),
        p_mbps = mb / secs(plain_total),
        p_store = secs(plain_store),
        e_dps = args.docs as f64 / secs(enc_total),
        e_mbps = mb / secs(enc_total),
        e_store = secs(enc_store),
        inspect = secs(inspect_time),
        ov_total = overhead_total,
        ov_store = overhead_store,
        search_docs = args.search_docs,
        nq = queries.len(),
        pp50 = ms(plain_p50),
        pp95 = ms(plain_p95),
        ep50 = ms(enc_p50),
        ep95 = ms(enc_p95),
        per_query_rows = per_query_rows,
    );
    bench_report::write_section(&args.out, "import-search", &report).unwrap();
    println!("{report}");
}
