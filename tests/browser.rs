//! The pages in a real browser: starts the real `carimbo serve` on a fresh data directory and a
//! free loopback port, then runs the scenarios in `tests/browser/` (Node's test runner driving
//! Debian's Chromium through playwright-core) against it, and fails if any of them fails.
//! Screenshots land in `target/screenshots/`.
//!
//! Without `node`, `/usr/bin/chromium` or `tests/browser/node_modules` (installed by
//! `tests/browser/install.sh`, which `.ci/run` calls) it says SKIPPED and passes.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Stops the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn missing(repo: &Path) -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if Command::new("node").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().map(|s| !s.success()).unwrap_or(true) {
        return Some("`node` is not installed".into());
    }
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} is absent (apt-get install chromium)"));
    }
    if !repo.join("tests/browser/node_modules/playwright-core").is_dir() {
        return Some("tests/browser/node_modules is absent (run tests/browser/install.sh)".into());
    }
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// Waits until the server accepts connections, or says why it did not.
fn wait_for(server: &mut Server, addr: SocketAddr, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            let err = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("the server stopped ({status}): {err}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("the server did not start listening within 60 s".into())
}

fn main() -> ExitCode {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(why) = missing(&repo) {
        println!("browser: SKIPPED — {why}");
        return ExitCode::SUCCESS;
    }
    let data = tempfile::tempdir().expect("a temporary data directory");
    let log = data.path().join("server.log");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("an address");
    // The outbox goes to a loopback port nobody listens on, tried once: every decision the
    // scenarios make becomes a dead letter for the administrator's page.
    let webhooks = data.path().join("webhooks.json");
    std::fs::write(data.path().join("hook.key"), "browser-test-secret-0123456789").expect("a secret file");
    let hooks = format!(
        r#"{{"endpoints":[{{"name":"payroll","url":"http://127.0.0.1:{}/hook","secret_file":"hook.key"}}],"retry":{{"max_attempts":1,"first_delay_ms":100,"max_delay_ms":100}},"timeout_seconds":2}}"#,
        free_port()
    );
    std::fs::write(&webhooks, hooks).expect("a webhook file");
    let child = Command::new(env!("CARGO_BIN_EXE_carimbo"))
        .args(["serve", "--data"])
        .arg(data.path())
        .arg("--webhooks")
        .arg(&webhooks)
        // The seeded people sign with key files: the pages' qualified steps are met under the
        // demo's relaxed device rule, whether or not SoftHSM2 is installed here.
        .args(["--device-rule", "relaxed-for-demo"])
        .args(["--addr", &addr.to_string(), "--root"])
        .arg(&repo)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("the carimbo binary starts");
    let mut server = Server(child);
    if let Err(e) = wait_for(&mut server, addr, &log) {
        println!("browser: FAILED — {e}");
        return ExitCode::FAILURE;
    }
    println!("browser: carimbo serving on http://{addr}/; running tests/browser/ in Chromium");
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1", "tests/browser/"])
        .current_dir(&repo)
        .env("CARIMBO_URL", format!("http://{addr}"))
        .status();
    drop(server);
    match status {
        Ok(s) if s.success() => {
            println!("browser: every scenario passed; screenshots in target/screenshots/");
            ExitCode::SUCCESS
        }
        Ok(s) => {
            println!("browser: FAILED — node --test exited with {s}");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("browser: FAILED — cannot run node: {e}");
            ExitCode::FAILURE
        }
    }
}
