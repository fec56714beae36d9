//! The real window's harness, shared by the end-to-end tests (tests/e2e_window.rs) and the app
//! benchmark (benches/app_window.rs): Xvfb, tauri-driver and WebKitWebDriver, a small WebDriver
//! client, and the app launched on a data folder of its own.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Xvfb, ended with SIGTERM so that it removes its lock file and socket (SIGKILL leaves them,
/// and stale ones pile up run after run).
pub struct Xvfb(Child);

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Starts Xvfb on a display number it picks itself (`-displayfd`), and returns it as `:N`.
pub fn start_xvfb() -> (Xvfb, String) {
    use std::io::BufRead;
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x860x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb is installed by scripts/install-deps.sh");
    let stdout = child.stdout.take().expect("Xvfb's stdout");
    let xvfb = Xvfb(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("Xvfb reports its display number");
    let number: u32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("Xvfb did not start (it said {line:?})"));
    (xvfb, format!(":{number}"))
}

pub struct WebDriver {
    pub base: String,
    pub session: String,
}

impl WebDriver {
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let response = match body {
            Some(body) => ureq::request(method, &url).send_json(body),
            None => ureq::request(method, &url).call(),
        };
        match response {
            Ok(r) => r.into_json::<Value>().unwrap()["value"].clone(),
            Err(ureq::Error::Status(code, r)) => {
                json!({"error": code, "detail": r.into_string().unwrap_or_default()})
            }
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }

    pub fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn wait_for(&self, css: &str) -> String {
        wait_until(css, Duration::from_secs(90), || {
            self.find_all(css).into_iter().next()
        })
    }

    pub fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Clicks an element, scrolled into the middle of its scrolling pane first (WebKitWebDriver
    /// does not scroll nested panes, and refuses elements under the status bar as not
    /// interactable). A refused click fails the test at once instead of timing out later.
    pub fn click(&self, element: &str) {
        let answer = self.try_click(element);
        assert!(answer.get("error").is_none(), "click refused: {answer}");
    }

    /// Clicks the first element `css` matches, found afresh until the click lands (the window
    /// redraws parts of itself as sync state changes, leaving an element found a moment ago
    /// stale).
    pub fn click_fresh(&self, css: &str) {
        wait_until(css, Duration::from_secs(90), || {
            let element = self.find_all(css).into_iter().next()?;
            self.try_click(&element)
                .get("error")
                .is_none()
                .then_some(())
        });
    }

    /// Like [`WebDriver::click`], handing back the driver's answer (an error for an element
    /// drawn afresh since it was found).
    pub fn try_click(&self, element: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({
                "script": "arguments[0].scrollIntoView({block: 'center'});",
                "args": [{ ELEMENT_KEY: element }],
            })),
        );
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
    }

    /// Clicks the middle of the part of an element that its scrolling panes show (a page taller
    /// than the pane around it has its middle out of sight, and WebKitWebDriver refuses a
    /// plain click there).
    pub fn click_visible_part(&self, element: &str) {
        let point = self.call(
            "POST",
            "/execute/sync",
            Some(json!({
                "script": "const e = arguments[0]; e.scrollIntoView({block: 'nearest'}); \
                    let r = e.getBoundingClientRect(); let [l, t, rt, b] = [r.left, r.top, r.right, r.bottom]; \
                    for (let n = e.parentElement; n; n = n.parentElement) { \
                      if (getComputedStyle(n).overflowY === 'visible') continue; \
                      const c = n.getBoundingClientRect(); \
                      l = Math.max(l, c.left); t = Math.max(t, c.top); rt = Math.min(rt, c.right); b = Math.min(b, c.bottom); } \
                    return [Math.round((l + rt) / 2), Math.round((t + b) / 2)];",
                "args": [{ ELEMENT_KEY: element }],
            })),
        );
        let (x, y) = (point[0].as_i64().unwrap(), point[1].as_i64().unwrap());
        let answer = self.call(
            "POST",
            "/actions",
            Some(json!({"actions": [{
                "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                "actions": [
                    {"type": "pointerMove", "origin": "viewport", "x": x, "y": y},
                    {"type": "pointerDown", "button": 0},
                    {"type": "pointerUp", "button": 0},
                ],
            }]})),
        );
        assert!(answer.get("error").is_none(), "click refused: {answer}");
    }

    pub fn type_into(&self, element: &str, text: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        );
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Sends keys (WebDriver key codes: `\u{E007}` Enter, `\u{E011}` Home, …) to an element.
    pub fn press(&self, element: &str, keys: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": keys })),
        );
    }

    pub fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }
}

pub fn screenshot(display: &str, out: &Path) -> image::RgbImage {
    let status = Command::new("import")
        .args(["-window", "root"])
        .arg(out)
        .env("DISPLAY", display)
        .status()
        .expect("ImageMagick import is installed by scripts/install-deps.sh");
    assert!(status.success());
    image::open(out).unwrap().to_rgb8()
}

/// One app at a time: GTK lets only one instance of an application id run per D-Bus session
/// (a second launch hands over to the first and exits). nextest runs each test in its own
/// process, so .config/nextest.toml also puts these tests in a group of one.
pub static ONE_APP_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A running app: its virtual display, tauri-driver and a WebDriver session, ended on drop.
pub struct RunningApp {
    pub driver: WebDriver,
    pub display: String,
    _tauri_driver: Killed,
    _xvfb: Xvfb,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!(
            "{}/session/{}",
            self.driver.base, self.driver.session
        ))
        .call();
    }
}

/// Starts Xvfb, tauri-driver and the app in demo mode on the data folder `data`, with `env` added.
pub fn start_app(data: &Path, env: &[(&str, &str)]) -> RunningApp {
    start_app_with_args(data, env, &[])
}

/// Like [`start_app`], with more command-line arguments after `--demo`.
pub fn start_app_with_args(data: &Path, env: &[(&str, &str)], more_args: &[&str]) -> RunningApp {
    let mut args = vec!["--demo"];
    args.extend_from_slice(more_args);
    launch(data, env, &args)
}

/// Starts Xvfb, tauri-driver and the app with exactly `args` on the data folder `data`, with
/// `env` added; returns once the app's window answers WebDriver.
pub fn launch(data: &Path, env: &[(&str, &str)], args: &[&str]) -> RunningApp {
    let turn = ONE_APP_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let app = PathBuf::from(env!("CARGO_BIN_EXE_outpost"));
    let (xvfb, display) = start_xvfb();
    let port = free_port();
    let native_port = free_port();
    let mut command = Command::new("tauri-driver");
    command
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native_port.to_string(),
        ])
        .env("DISPLAY", &display)
        .env("OUTPOST_DATA_DIR", data)
        // WebKit keeps the page's local storage (language, auto-lock time, the lesson in hand)
        // under the XDG data folder: each test gets its own, so no setting leaks into the next.
        .env("XDG_DATA_HOME", data.join("xdg-data"))
        .env(
            "OUTPOST_KEYRING_SERVICE",
            format!("outpost-e2e-{}-{port}", std::process::id()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // What the app sets for WebKit itself (src-tauri/lib.rs) is left to the app, so the tests see
    // its choice and not the caller's; a test that wants another passes it in `env`.
    for (name, _) in outpost_app::LEAN_WEB_VIEW_ENVIRONMENT {
        command.env_remove(name);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let tauri_driver = Killed(
        command
            .spawn()
            .expect("tauri-driver is installed by scripts/install-deps.sh"),
    );
    wait_until("tauri-driver", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let base = format!("http://127.0.0.1:{port}");
    // WebKitWebDriver now and then drops the very first connection while it starts (seen as
    // "Unexpected EOF"): ask again a few times before giving up.
    let mut attempt = 0;
    let created: Value = loop {
        attempt += 1;
        let answer = ureq::post(&format!("{base}/session")).send_json(
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "wry",
                "tauri:options": {"application": app, "args": args}
            }}}),
        );
        match answer {
            Ok(response) => break response.into_json().unwrap(),
            Err(ureq::Error::Transport(e)) if attempt < 3 => {
                eprintln!("WebDriver session attempt {attempt} failed ({e}); trying again");
                std::thread::sleep(Duration::from_secs(2));
            }
            Err(e) => panic!("a WebDriver session with the app: {e}"),
        }
    };
    RunningApp {
        driver: WebDriver {
            base,
            session: created["value"]["sessionId"].as_str().unwrap().to_owned(),
        },
        display,
        _tauri_driver: tauri_driver,
        _xvfb: xvfb,
        _turn: turn,
    }
}

/// Waits until the text of the element at `css` satisfies `accept`, and returns it.
pub fn text_when(
    driver: &WebDriver,
    css: &str,
    what: &str,
    accept: impl Fn(&str) -> bool,
) -> String {
    wait_until(what, Duration::from_secs(30), || {
        let text = driver.text(&driver.wait_for(css));
        accept(&text).then_some(text)
    })
}

/// Memory of a set of processes, from /proc: resident set (shared pages counted in each process)
/// and proportional set (shared pages divided among the processes sharing them), in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub pss_kib: u64,
}

/// Every process descended from `root` (not `root` itself), by walking /proc's parent links.
pub fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|pid| {
                    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                    // The command name is in parentheses and may hold spaces: read after it.
                    let after = &stat[stat.rfind(')')? + 2..];
                    let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
                    Some((pid, ppid))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// A process's command name (`/proc/PID/comm`).
pub fn command_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_default()
}

/// The summed memory of `pids` (those that ended meanwhile count nothing).
pub fn memory_of(pids: &[u32]) -> Memory {
    let field = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .fold(Memory::default(), |sum, text| Memory {
            rss_kib: sum.rss_kib + field(&text, "Rss:"),
            pss_kib: sum.pss_kib + field(&text, "Pss:"),
        })
}

impl RunningApp {
    /// The app's own processes: the app and the WebKit processes it started (not tauri-driver or
    /// WebKitWebDriver, which only drive it).
    pub fn app_processes(&self) -> Vec<u32> {
        descendants(self._tauri_driver.0.id())
            .into_iter()
            .filter(|pid| command_name(*pid) != "WebKitWebDriver")
            .collect()
    }
}
