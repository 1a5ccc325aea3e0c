//! Shared by the crash tests (`crash_sled.rs`, `crash_pg.rs`): the real `carimbo serve` as a
//! child process on a free loopback port, and a blocking client that signs in and submits signed
//! leave requests, reporting a case id only when the server acknowledged the submission.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `carimbo serve` on `port` with `extra` arguments (e.g. `--store`), and waits until it listens.
pub fn start(data: &std::path::Path, port: u16, extra: &[&str]) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_carimbo"))
        .args(["serve", "--data", data.to_str().unwrap(), "--addr", &format!("127.0.0.1:{port}"), "--root", super::repo().to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the carimbo binary starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into()
}

pub fn login(a: &ureq::Agent, base: &str, person: &str) -> Result<String, String> {
    let mut r =
        a.post(format!("{base}/api/v1/session")).send_json(json!({"person": person, "password": carimbo::http::DEMO_PASSWORD})).map_err(|e| e.to_string())?;
    let v: Value = r.body_mut().read_json().map_err(|e| e.to_string())?;
    v["token"].as_str().map(str::to_string).ok_or_else(|| format!("login failed: {v}"))
}

/// A signed leave submission; `Ok(case id)` only when the server acknowledged it.
pub fn submit(a: &ureq::Agent, base: &str, token: &str, person: &str, key: &str) -> Result<String, String> {
    let data = json!({"leave_type": "annual", "start_date": "2027-01-11", "end_date": "2027-01-12"});
    let auth = format!("Bearer {token}");
    let mut r = a
        .post(format!("{base}/api/v1/signing-payload"))
        .header("Authorization", &auth)
        .send_json(json!({"kind": "submit", "form": "absence-and-annual-leave", "data": data, "idempotency_key": key}))
        .map_err(|e| e.to_string())?;
    let p: Value = r.body_mut().read_json().map_err(|e| e.to_string())?;
    let canonical = p["canonical"].as_str().ok_or_else(|| format!("no payload: {p}"))?;
    let jws = super::person(person).sign(canonical.as_bytes(), chrono::Utc::now()).map_err(|e| e.to_string())?;
    let body = json!({"form": "absence-and-annual-leave", "data": data, "idempotency_key": key,
        "signed": {"payload": p["payload"], "signature": {"protected": jws.protected, "signature": jws.signature}}});
    let mut r = a.post(format!("{base}/api/v1/cases")).header("Authorization", &auth).send_json(body).map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let v: Value = r.body_mut().read_json().map_err(|e| e.to_string())?;
    match status {
        200 | 201 => v["case"]["id"].as_str().map(str::to_string).ok_or_else(|| format!("no case id: {v}")),
        _ => Err(format!("{status}: {v}")),
    }
}

/// The staff members whose clients make the load.
pub const PEOPLE: [&str; 8] = ["p005", "p006", "p007", "p008", "p009", "p010", "p011", "p012"];

/// Clients submitting signed leave requests, one thread per signed-in person, until stopped or
/// until a request fails (the server or its database went away mid-request: that submission
/// was never acknowledged). Keeps (person, case id) of every acknowledged submission.
pub struct Load {
    acked: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    clients: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(base: &str, tokens: &[(String, String)]) -> Load {
        use std::sync::atomic::Ordering;
        let acked: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>> = Default::default();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients = tokens
            .iter()
            .cloned()
            .map(|(person, token)| {
                let (acked, stop, base) = (acked.clone(), stop.clone(), base.to_string());
                std::thread::spawn(move || {
                    let a = agent();
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        match submit(&a, &base, &token, &person, &format!("{person}-{n}")) {
                            Ok(case) => acked.lock().unwrap().push((person.clone(), case)),
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        Load { acked, stop, clients }
    }

    /// Stops the clients and returns what the server acknowledged.
    pub fn finish(self) -> Vec<(String, String)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for c in self.clients {
            c.join().unwrap();
        }
        self.acked.lock().unwrap().clone()
    }
}

/// Signs in every one of `PEOPLE`.
pub fn sign_in_all(base: &str) -> Vec<(String, String)> {
    let a = agent();
    PEOPLE.iter().map(|p| (p.to_string(), login(&a, base, p).unwrap())).collect()
}

/// A moment the test does not choose: between 1.5 and 4 seconds, in milliseconds.
pub fn random_wait_ms() -> u64 {
    let mut r = [0u8; 2];
    getrandom::fill(&mut r).unwrap();
    1500 + (u16::from_le_bytes(r) % 2500) as u64
}
