//! Shared by the crash tests (`crash_sled.rs`, `crash_pg.rs`): the real `carimbo serve` as a
//! child process on a free loopback port, and a blocking client that signs in and submits signed
//! leave requests, reporting a case id only when the server acknowledged the submission.
#![allow(dead_code)]

use serde_json::{json, Value};
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
    let mut r = a.post(format!("{base}/api/v1/session")).send_json(json!({"person": person, "password": carimbo::http::DEMO_PASSWORD})).map_err(|e| e.to_string())?;
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
