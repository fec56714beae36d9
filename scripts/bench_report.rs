//! Shared by the benchmark binaries (included with `#[path]`): each writes its own section of
//! docs/benchmarks.md between `<!-- NAME:begin -->` and `<!-- NAME:end -->`, leaving the others.

/// Replaces (or appends) the section `name` of the Markdown file at `path` with `body`.
pub fn write_section(path: &str, name: &str, body: &str) -> std::io::Result<()> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let current = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let section = format!("{begin}\n{}\n{end}", body.trim_end());
    let updated = match (current.find(&begin), current.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{section}{}", &current[..b], &current[e + end.len()..])
        }
        _ => format!("{}\n\n{section}\n", current.trim_end()),
    };
    std::fs::write(path, updated)
}

/// The machine a benchmark ran on, for its report.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                let kb: f64 = l
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                format!("{:.0} GiB", kb / 1024.0 / 1024.0)
            })
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cpu}, {cores} cores, {mem} RAM, Linux; release build")
}

/// CPU time the host took from this virtual machine so far (`steal` in /proc/stat), in seconds
/// summed over the cores; 0 where the kernel does not say. A benchmark reports how much of it
/// fell into its run, so a reader can tell a slow machine from slow code.
#[allow(dead_code)] // Not every benchmark that includes this file reports it.
pub fn stolen_seconds() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            stat.lines()
                .next()
                .and_then(|cpu| cpu.split_whitespace().nth(8))
                .and_then(|ticks| ticks.parse::<f64>().ok())
        })
        // USER_HZ: 100 ticks a second on Linux.
        .map_or(0.0, |ticks| ticks / 100.0)
}

/// Writes the disk's dirty pages out (the `sync` command), so a timed pass does not pay for the
/// writes of the set-up or of an earlier pass.
#[allow(dead_code)] // Not every benchmark that includes this file flushes.
pub fn flush_the_disk() {
    let _ = std::process::Command::new("sync").status();
}

/// Empties the kernel's page cache (writes `1` to `/proc/sys/vm/drop_caches`, after a
/// [`flush_the_disk`]), so the shared libraries a measured program maps come into the cache
/// through that program's own page faults. Memory figures depend on it: a library file read
/// whole beforehand with `read` (by a debugger, `strings`, a package check) is cached in large
/// folios, and every process that maps it then has far more of it resident — measured with
/// benches/app_window.rs, the same build: 267 MB PSS with WebKit's library read that way against
/// 252 MB after the cache was emptied. Needs root; returns whether the cache was emptied.
#[allow(dead_code)] // Only the app-window and sync-scale benchmarks empty it.
pub fn empty_the_page_cache() -> bool {
    flush_the_disk();
    std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok()
}

/// Starts a measured run that writes much from the same page cache each time: flushes the disk,
/// empties the cache ([`empty_the_page_cache`]) and reads every file under `sources` back into
/// it, so each run reads its input from memory and writes into memory the cache has used
/// before. On a virtual machine, memory the guest has never touched costs a fault in the host
/// on first use: with the cache left to grow, an rsync of 1 GB measured on the same machine took
/// 2.3–3.6 s (almost all in the kernel's copy into the cache), and 1.0–1.2 s after emptying it.
/// Returns whether the cache could be emptied (it needs root); the disk is flushed either way.
#[allow(dead_code)] // Only the sync-scale benchmark settles the cache.
pub fn settle_the_page_cache(sources: &[&std::path::Path]) -> bool {
    let emptied = empty_the_page_cache();
    for source in sources {
        read_in(source);
    }
    emptied
}

#[allow(dead_code)]
fn read_in(path: &std::path::Path) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            read_in(&entry.path());
        }
    } else if let Ok(mut file) = std::fs::File::open(path) {
        let _ = std::io::copy(&mut file, &mut std::io::sink());
    }
}
