//! What a signature time-stamp costs an act: `cargo bench --bench timestamp` (release build).
//!
//! 1. in-process (the demo default of `carimbo serve`): making one token with the demo TSA
//!    (ECDSA P-256, serial counter on disk), verifying it (TSA chain cached), and the whole
//!    `cases::stamp::stamp_act_signature` an act goes through (for the in-process TSA: make +
//!    header; its tokens are checked once at start, a remote TSA's each time);
//! 2. over HTTP loopback: `carimbo tsa` started as a process, asked by `TsaClient` (what
//!    `serve --tsa URL` does), one request at a time.
//!
//! Printed: microseconds per token for each, and tokens/s.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use carimbo::signing::timestamp::DEFAULT_TSA_POLICY;
use carimbo::tsa::{LocalTsa, TimeStamping, TsaClient};

fn per_op(label: &str, budget: Duration, mut f: impl FnMut()) {
    for _ in 0..20 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{label:<58} {:>9.1} µs/token  {:>8.0} tokens/s  ({n} runs)", secs * 1e6 / n as f64, n as f64 / secs);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pki = root.join("seeds/pki");
    std::fs::create_dir_all(root.join("target/tmp")).expect("target/tmp");
    let data = tempfile::tempdir_in(root.join("target/tmp")).expect("a data directory");
    let budget = Duration::from_secs(3);
    let signature = "MEUCIQDq2ejR3c0nA0kY1bW4p4S5JZ0l4o2fQ7hL2C9Cc2oQ3wIgRk5o3b3m7o9xvJ8Yc3g0f1d9Qm2o6pW8sK3b5rT4y1A";
    let verifier = carimbo::cli::pki_files::load_verifier(&root.join("seeds/trust"), &pki.join("crl"), None).expect("demo trust list");

    let local = LocalTsa::open(&pki.join("tsa/tsa.key.pem"), &pki.join("tsa/tsa.pem"), DEFAULT_TSA_POLICY, data.path()).expect("demo TSA");
    per_op("in-process: make a token", budget, || {
        local.stamp(signature.as_bytes()).expect("a token");
    });
    let token = local.stamp(signature.as_bytes()).expect("a token");
    let header = carimbo::signing::timestamp::sig_tst_header(&token).to_string();
    println!("token: {} bytes DER; the act's `header` member: {} bytes of JSON", token.len(), header.len());
    per_op("in-process: verify a token (TSA chain cached)", budget, || {
        verifier.timestamps().verify(&token, signature.as_bytes()).expect("verifies");
    });
    let stamping = TimeStamping::choose(&[], Duration::from_secs(5), &pki, data.path()).expect("the demo TSA");
    per_op("in-process: stamp an act's JWS as the server does (make + header)", budget, || {
        let mut jws = serde_json::json!({"protected": "eyJhbGciOiJFUzI1NiJ9", "signature": signature});
        carimbo::cases::stamp::stamp_act_signature(&stamping, &verifier, &mut jws).expect("stamped");
    });

    // `carimbo tsa` as its own process on a loopback port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("address").port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_carimbo"))
        .args(["tsa", "--addr", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data.path().join("tsa-process"))
        .arg("--key")
        .arg(pki.join("tsa/tsa.key.pem"))
        .arg("--cert")
        .arg(pki.join("tsa/tsa.pem"))
        .stdout(Stdio::null())
        .spawn()
        .expect("carimbo tsa starts");
    let url = format!("http://127.0.0.1:{port}/tsa");
    let client = TsaClient::new(vec![url.clone()], Duration::from_secs(5));
    let started = Instant::now();
    while client.stamp(b"warm-up").is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "carimbo tsa did not come up on {url}");
        std::thread::sleep(Duration::from_millis(50));
    }
    per_op("HTTP loopback to `carimbo tsa`: request + reply + checks", budget, || {
        client.stamp(signature.as_bytes()).expect("a token");
    });
    let _ = child.kill();
    let _ = child.wait();
}
