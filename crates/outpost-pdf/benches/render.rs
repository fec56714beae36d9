//! Page rendering against the peers, in one run on the same generated documents: a 300-page text
//! document and a 50-page scanned-image document, at 150 dpi to PNG.
//!
//! - our per-page latency (median, p95) and whole-document time, beside `mutool draw` and
//!   `pdftoppm` rendering the whole document (their time per page, process start included once);
//! - time from "open document" (bytes in memory, not yet parsed) to the first page's pixels;
//! - resident memory while rendering all 300 pages in order (must not grow with pages rendered).
//!
//! Writes its section of docs/benchmarks.md. Run: `cargo bench -p outpost-pdf --bench render`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_pdf::{Language, PdfEngine, SampleKind, SampleSpec, StillWanted, ViewedDocument};

#[path = "../../../scripts/bench_report.rs"]
mod bench_report;

const DPI: u32 = 150;

fn width_at_dpi(points: f32) -> u32 {
    (points / 72.0 * DPI as f32).round() as u32
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// (VmRSS, VmHWM) of this process in MiB.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak-memory mark so that it measures only what follows (Linux).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Ours {
    median: Duration,
    p95: Duration,
    total: Duration,
    /// (pages rendered so far, RSS MiB) at checkpoints.
    rss: Vec<(usize, f64)>,
    peak: f64,
}

fn render_all(engine: &PdfEngine, key: &str, bytes: &Arc<Vec<u8>>) -> Ours {
    let document = ViewedDocument {
        key: key.to_owned(),
        bytes: bytes.clone(),
    };
    let sizes = engine.page_sizes(&document).expect("page sizes");
    // One warm-up render so that the first measured page is not the parse.
    engine
        .render(
            &document,
            1,
            width_at_dpi(sizes[0].0),
            &StillWanted::always(),
        )
        .expect("render");
    reset_peak_memory();
    let mut times = Vec::with_capacity(sizes.len());
    let mut rss = Vec::new();
    let started = Instant::now();
    for (i, (w, _)) in sizes.iter().enumerate() {
        let t = Instant::now();
        let page = engine
            .render(
                &document,
                i as u32 + 1,
                width_at_dpi(*w),
                &StillWanted::always(),
            )
            .expect("render");
        times.push(t.elapsed());
        std::hint::black_box(page);
        let n = i + 1;
        if n == 1 || n == 10 || n % 50 == 0 || n == sizes.len() {
            rss.push((n, memory_mib().0));
        }
    }
    let total = started.elapsed();
    let peak = memory_mib().1;
    engine.close(key).expect("close");
    times.sort();
    Ours {
        median: percentile(&times, 0.5),
        p95: percentile(&times, 0.95),
        total,
        rss,
        peak,
    }
}

/// Wall time of a whole-document render by a peer tool.
fn peer(program: &str, args: &[&str]) -> Option<Duration> {
    let started = Instant::now();
    let status = Command::new(program).args(args).status().ok()?;
    status.success().then(|| started.elapsed())
}

fn time_to_first_page(
    engine: &PdfEngine,
    bytes: &Arc<Vec<u8>>,
    runs: usize,
) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        let document = ViewedDocument {
            key: format!("first-page-{run}"),
            bytes: bytes.clone(),
        };
        let started = Instant::now();
        let sizes = engine.page_sizes(&document).expect("page sizes");
        let page = engine
            .render(
                &document,
                1,
                width_at_dpi(sizes[0].0),
                &StillWanted::always(),
            )
            .expect("render");
        times.push(started.elapsed());
        std::hint::black_box(page);
        engine.close(&document.key).expect("close");
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.95))
}

struct Row {
    name: String,
    pages: usize,
    ours: Ours,
    mutool: Option<Duration>,
    pdftoppm: Option<Duration>,
}

fn measure(engine: &PdfEngine, name: &str, bytes: Vec<u8>, dir: &Path) -> Row {
    let path = dir.join(format!("{}.pdf", name.replace(' ', "-")));
    std::fs::write(&path, &bytes).unwrap();
    let bytes = Arc::new(bytes);
    let ours = render_all(engine, name, &bytes);
    let pages = ours.rss.last().map(|(n, _)| *n).unwrap_or(0);
    let out = dir.join("peer");
    std::fs::create_dir_all(&out).unwrap();
    let file = path.to_string_lossy().into_owned();
    let dpi = DPI.to_string();
    let mutool_out = out.join("m%d.png").to_string_lossy().into_owned();
    let mutool = peer(
        "mutool",
        &["draw", "-q", "-r", &dpi, "-o", &mutool_out, &file],
    );
    let poppler_out = out.join("p").to_string_lossy().into_owned();
    let pdftoppm = peer("pdftoppm", &["-r", &dpi, "-png", &file, &poppler_out]);
    std::fs::remove_dir_all(&out).unwrap();
    Row {
        name: name.to_owned(),
        pages,
        ours,
        mutool,
        pdftoppm,
    }
}

fn main() {
    let engine = PdfEngine::start_default().expect("pdfium: run scripts/install-deps.sh");
    let dir = tempfile::tempdir().unwrap();
    let text = engine
        .write_sample(&SampleSpec {
            kind: SampleKind::PersonnelRecord,
            language: Language::Russian,
            pages: 300,
            seed: 300,
            marker: None,
        })
        .unwrap();
    let scanned = engine
        .write_scanned_sample(
            &SampleSpec {
                kind: SampleKind::OperationalReport,
                language: Language::English,
                pages: 50,
                seed: 50,
                marker: None,
            },
            DPI,
        )
        .unwrap();
    let first_page = time_to_first_page(&engine, &Arc::new(text.clone()), 20);
    let rows = vec![
        measure(&engine, "300-page text", text, dir.path()),
        measure(&engine, "50-page scan", scanned, dir.path()),
    ];

    let per_page = |d: Option<Duration>, pages: usize| {
        d.map(|d| format!("{:.1} ms", ms(d) / pages as f64))
            .unwrap_or_else(|| "not run".into())
    };
    let mut table = String::from(
        "| document | ours: median | ours: p95 | ours: mean (whole document) | mutool draw: mean | pdftoppm: mean |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        table.push_str(&format!(
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} |\n",
            r.name,
            ms(r.ours.median),
            ms(r.ours.p95),
            ms(r.ours.total) / r.pages as f64,
            per_page(r.mutool, r.pages),
            per_page(r.pdftoppm, r.pages),
        ));
    }
    let text_row = &rows[0];
    let memory: String = text_row
        .ours
        .rss
        .iter()
        .map(|(n, mib)| format!("| {n} | {mib:.0} MiB |\n"))
        .collect();
    let verdict = match text_row.mutool {
        Some(m) => {
            let ours = ms(text_row.ours.total) / text_row.pages as f64;
            let theirs = ms(m) / text_row.pages as f64;
            format!(
                "Per page on the text document: ours {ours:.1} ms, mutool {theirs:.1} ms — goal (no worse than mutool) **{}**.",
                if ours <= theirs { "met" } else { "not met" }
            )
        }
        None => "mutool was not available: no comparison.".into(),
    };
    let report = format!(
        "## Page rendering\n\n\
Measured by `crates/outpost-pdf/benches/render.rs` (`cargo bench -p outpost-pdf --bench render`), \
which writes this section.\n\n\
Machine: {machine}.\n\n\
Every page rendered at {DPI} dpi to PNG, one page at a time on pdfium's one worker thread (as the \
viewer does), the document parsed once and kept open. The peers render the whole document in one \
process to PNG files (`mutool draw -r {DPI}`, `pdftoppm -r {DPI} -png`); their figure is wall time \
divided by pages, so it includes one process start and one parse, and writing files.\n\n\
{table}\n\
{verdict}\n\n\
### Open to first pixels (300-page text document)\n\n\
From the document's bytes in memory, not yet parsed, to page 1 rendered at {DPI} dpi as PNG \
(page sizes of all 300 pages read first, as the viewer lays them out): median **{fp50:.1} ms**, \
p95 {fp95:.1} ms over 20 runs (goal < 100 ms).\n\n\
### Memory while rendering all 300 pages in order\n\n\
Resident memory of the benchmark process after n pages (the rendered PNGs are dropped as the \
viewer's bounded cache would evict them):\n\n\
| pages rendered | resident memory |\n|---:|---:|\n{memory}\n\
Peak during the 300 pages: {peak:.0} MiB. Bounded means the figure after 300 pages is not above \
the one after 50 by more than noise.\n",
        machine = bench_report::machine(),
        fp50 = ms(first_page.0),
        fp95 = ms(first_page.1),
        peak = text_row.ours.peak,
    );
    let out = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/benchmarks.md");
    bench_report::write_section(out, "render", &report).unwrap();
    println!("{report}");
}
