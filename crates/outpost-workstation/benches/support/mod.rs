//! What the sync benchmarks share: timing summaries and rsync, the peer they are measured
//! against, and a workstation connected to the in-process server.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_protocol::SecondFactor;
use outpost_server::testing::{InProcessServer, TestAccount};
use outpost_workstation::{
    KdfParams, ManualClock, OsKeyring, PdfEngine, Session, SharedRng, Workstation,
    WorkstationConfig,
};
use rand::SeedableRng;

/// The median and the 95th percentile.
pub fn median_and_p95(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95))
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A number from rsync's `--stats` output, on the line starting with `label`.
fn stat(stdout: &[u8], label: &str) -> u64 {
    String::from_utf8_lossy(stdout)
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|n| n.replace(',', "").trim().parse().unwrap_or(0))
        .unwrap_or(0)
}

/// An rsync daemon on loopback serving `folder` as module `docs`, stopped when dropped.
pub struct RsyncDaemon {
    child: std::process::Child,
    port: u16,
    _config: tempfile::TempDir,
}

impl RsyncDaemon {
    /// Starts the daemon and waits until it accepts connections.
    pub fn serve(folder: &Path) -> RsyncDaemon {
        let config = tempfile::tempdir().expect("a temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let file = config.path().join("rsyncd.conf");
        std::fs::write(
            &file,
            format!(
                "use chroot = no\npid file = {}\n[docs]\npath = {}\nread only = yes\n",
                config.path().join("rsyncd.pid").display(),
                folder.display()
            ),
        )
        .expect("write the daemon's configuration");
        let child = Command::new("rsync")
            .args(["--daemon", "--no-detach", "--address=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--config={}", file.display()))
            .spawn()
            .expect("rsync (installed by scripts/install-deps.sh)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the rsync daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        RsyncDaemon {
            child,
            port,
            _config: config,
        }
    }

    /// Fetches the module into `to`.
    pub fn fetch(&self, to: &Path) -> Fetched {
        self.fetch_with(to, &[])
    }

    /// [`RsyncDaemon::fetch`] with more options for the rsync client (`--fsync`, say).
    pub fn fetch_with(&self, to: &Path, options: &[&str]) -> Fetched {
        let daemon = self.child.id().to_string();
        let cpu_before = cpu_times("self").waited_children + cpu_times(&daemon).total();
        let started = Instant::now();
        let output = Command::new("rsync")
            .args(["-a", "--stats"])
            .args(options)
            .arg(format!("rsync://127.0.0.1:{}/docs/", self.port))
            .arg(to)
            .output()
            .expect("rsync");
        let elapsed = started.elapsed();
        assert!(
            output.status.success(),
            "rsync failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The daemon's process for this connection counts once the daemon has waited for it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !std::fs::read_to_string(format!("/proc/{daemon}/task/{daemon}/children"))
            .unwrap_or_default()
            .trim()
            .is_empty()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let cpu_after = cpu_times("self").waited_children + cpu_times(&daemon).total();
        Fetched {
            elapsed,
            bytes: stat(&output.stdout, "Total bytes received: "),
            cpu: cpu_after.saturating_sub(cpu_before),
        }
    }
}

/// One rsync fetch.
pub struct Fetched {
    /// How long the client took, start to exit.
    pub elapsed: Duration,
    /// The bytes the client received.
    pub bytes: u64,
    /// The CPU time (user + system) of the client and of the daemon's process for the connection.
    #[allow(dead_code)] // Only the sync-scale benchmark weighs rsync's CPU.
    pub cpu: Duration,
}

/// A process's CPU time (user + system), from `/proc/PROCESS/stat` (`PROCESS`: a pid or `self`).
pub struct CpuTimes {
    /// Its own.
    pub own: Duration,
    /// That of its children it has waited for.
    pub waited_children: Duration,
}

impl CpuTimes {
    /// Its own and its waited-for children's together.
    pub fn total(&self) -> Duration {
        self.own + self.waited_children
    }
}

/// The CPU times of `process` (a pid or `self`); zero when it cannot be read.
pub fn cpu_times(process: &str) -> CpuTimes {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')': utime,
    // stime, cutime and cstime are the 12th to 15th of them.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |at: &[usize]| -> Duration {
        let ticks: u64 = at
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
            .sum();
        // The kernel's USER_HZ is 100 on Linux.
        Duration::from_millis(ticks * 10)
    };
    CpuTimes {
        own: ticks(&[11, 12]),
        waited_children: ticks(&[13, 14]),
    }
}

impl Drop for RsyncDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new workstation vault for `account`, connected to `server`.
pub fn connected_workstation(
    server: &InProcessServer,
    account: &TestAccount,
    root: &std::path::Path,
) -> (Workstation, Session) {
    let workstation = Workstation::new(WorkstationConfig {
        data_root: root.to_owned(),
        keyring: Arc::new(OsKeyring::new(format!(
            "outpost-bench-{}-{}",
            account.username,
            std::process::id()
        ))),
        clock: Arc::new(ManualClock::new(server.service.now() * 1000 + 60_000)),
        kdf: KdfParams::INSECURE_FAST_FOR_TESTS,
        pdf: PdfEngine::start_default().expect("pdfium"),
    });
    let rng: SharedRng = Arc::new(Mutex::new(Box::new(
        rand_chacha::ChaCha8Rng::seed_from_u64(9),
    )));
    let session = workstation
        .create_vault(&account.username, "bench-password", rng)
        .expect("a vault");
    session
        .connect_server(
            &server.base_url,
            std::str::from_utf8(&server.ca_pem).expect("PEM"),
            &account.username,
            &account.password,
            SecondFactor::Totp {
                code: server.fresh_code(account),
            },
            "bench",
        )
        .expect("connect");
    (workstation, session)
}
