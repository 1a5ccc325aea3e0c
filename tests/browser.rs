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

/// Starts `carimbo serve` on `data` at a free loopback port with `args`; its stderr goes to
/// `data/server.log`.
fn start(repo: &Path, data: &Path, args: &[&std::ffi::OsStr]) -> Result<(Server, SocketAddr), String> {
    let log = data.join("server.log");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("an address");
    let child = Command::new(env!("CARGO_BIN_EXE_carimbo"))
        .args(["serve", "--data"])
        .arg(data)
        .args(args)
        .args(["--addr", &addr.to_string(), "--root"])
        .arg(repo)
        // The server's own SoftHSM2 configuration and demo token, in its data directory.
        .env_remove("SOFTHSM2_CONF")
        .env_remove("CARIMBO_HSM_PIN")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .map_err(|e| format!("the carimbo binary does not start: {e}"))?;
    let mut server = Server(child);
    wait_for(&mut server, addr, &log)?;
    Ok((server, addr))
}

/// Runs `node --test` on `what` against the server at `addr`, with `env` added.
fn scenarios(repo: &Path, what: &str, addr: SocketAddr, env: &[(&str, &str)]) -> Result<(), String> {
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1", what])
        .current_dir(repo)
        .env("CARIMBO_URL", format!("http://{addr}"))
        .env("CARIMBO_BIN", env!("CARGO_BIN_EXE_carimbo"))
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("cannot run node: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("node --test {what} exited with {status}")) }
}

/// Every scenario against the demo server with the relaxed device rule (the seeded key files).
fn demo_scenarios(repo: &Path) -> Result<(), String> {
    let data = tempfile::tempdir().expect("a temporary data directory");
    // The outbox goes to a loopback port nobody listens on, tried once: every decision the
    // scenarios make becomes a dead letter for the administrator's page.
    let webhooks = data.path().join("webhooks.json");
    std::fs::write(data.path().join("hook.key"), "browser-test-secret-0123456789").expect("a secret file");
    let hooks = format!(
        r#"{{"endpoints":[{{"name":"payroll","url":"http://127.0.0.1:{}/hook","secret_file":"hook.key"}}],"retry":{{"max_attempts":1,"first_delay_ms":100,"max_delay_ms":100}},"timeout_seconds":2}}"#,
        free_port()
    );
    std::fs::write(&webhooks, hooks).expect("a webhook file");
    // The seeded people sign with key files: the pages' qualified steps are met under the
    // demo's relaxed device rule, whether or not SoftHSM2 is installed here.
    let args: Vec<&std::ffi::OsStr> = vec!["--webhooks".as_ref(), webhooks.as_os_str(), "--device-rule".as_ref(), "relaxed-for-demo".as_ref()];
    let (server, addr) = start(repo, data.path(), &args)?;
    println!("browser: carimbo serving on http://{addr}/; running tests/browser/ in Chromium");
    let result = scenarios(repo, "tests/browser/", addr, &[]);
    drop(server);
    result
}

/// The HSM scenario against a server that set up its demo token in SoftHSM2 and enforces the
/// device rule; `None` when SoftHSM2 is not installed.
fn hsm_scenarios(repo: &Path) -> Option<Result<(), String>> {
    if !Path::new(carimbo::hsm::DEFAULT_MODULE).is_file() {
        println!("browser: the HSM scenario is SKIPPED — {} is absent (apt-get install softhsm2)", carimbo::hsm::DEFAULT_MODULE);
        return None;
    }
    let data = tempfile::tempdir().expect("a temporary data directory");
    let (server, addr) = match start(repo, data.path(), &[]) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    println!("browser: carimbo with its demo HSM token serving on http://{addr}/; running the HSM scenario");
    let result = scenarios(repo, "tests/browser/hsm-batch.test.mjs", addr, &[("CARIMBO_HSM", "1")]);
    drop(server);
    Some(result)
}

fn main() -> ExitCode {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(why) = missing(&repo) {
        println!("browser: SKIPPED — {why}");
        return ExitCode::SUCCESS;
    }
    let demo = demo_scenarios(&repo);
    let hsm = hsm_scenarios(&repo);
    match (demo, hsm) {
        (Ok(()), None | Some(Ok(()))) => {
            println!("browser: every scenario passed; screenshots in target/screenshots/");
            ExitCode::SUCCESS
        }
        (demo, hsm) => {
            for e in [demo.err(), hsm.and_then(Result::err)].into_iter().flatten() {
                println!("browser: FAILED — {e}");
            }
            ExitCode::FAILURE
        }
    }
}
