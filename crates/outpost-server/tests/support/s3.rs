//! A real S3-compatible server for tests: `s3s-fs` (installed by scripts/install-deps.sh), on a
//! loopback port, storing objects as files under a temp directory.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "outpost-test-key";
pub const SECRET_KEY: &str = "outpost-test-secret-0123456789";
pub const BUCKET: &str = "outpost-blobs";

pub struct S3Server {
    child: Child,
    pub root: tempfile::TempDir,
    pub port: u16,
}

fn s3s_fs() -> PathBuf {
    if let Some(path) = std::env::var_os("OUTPOST_S3S_FS") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let installed = home.join(".cargo/bin/s3s-fs");
    if installed.exists() {
        return installed;
    }
    panic!("s3s-fs is not installed: run scripts/install-deps.sh (it runs cargo install s3s-fs)")
}

impl S3Server {
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().expect("dir");
        std::fs::create_dir(root.path().join(BUCKET)).expect("bucket");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        S3Server { child, root, port }
    }

    pub fn url(&self) -> String {
        format!(
            "s3://{BUCKET}?endpoint=http://127.0.0.1:{}&region=us-east-1",
            self.port
        )
    }

    /// Where s3s-fs keeps an object's bytes.
    pub fn object_file(&self, key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(key)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
