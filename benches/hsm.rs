//! Signatures on the HSM: ES256 signatures per second made in SoftHSM2 through cryptoki (the
//! signing service's path: its kept logged-in session, a key lookup and CKM_ECDSA per signature) beside
//! ring's raw ES256 rate in this process; then a batch of N leave approvals signed on the HSM
//! under one TOTP authorization, through the real server over HTTP: the time from sending the
//! code to the last result.
//!
//! `cargo bench --bench hsm` (N = 200, the API's batch limit), or `CARIMBO_BENCH_BATCH=20 cargo
//! test --bench hsm` for a quick unoptimised run. Prints SKIPPED without SoftHSM2. Figures go
//! to the note; never run it beside other load.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use carimbo::hsm::{DEFAULT_MODULE, Hsm, HsmProvider};
use chrono::Utc;
use common::server::{TestServer, leave};
use cryptoki::types::AuthPin;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

const TOKEN: &str = "carimbo-bench";

fn pin() -> AuthPin {
    AuthPin::from("bench-user-pin".to_string())
}

/// Calls `f` for about `budget` and returns how many calls per second it made.
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    if !Path::new(DEFAULT_MODULE).is_file() {
        println!("SKIPPED: {DEFAULT_MODULE} is absent (apt-get install softhsm2)");
        return;
    }
    let n: usize = std::env::var("CARIMBO_BENCH_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir_all(dir.path().join("tokens")).unwrap();
    std::fs::write(dir.path().join("softhsm2.conf"), format!("directories.tokendir = {}\nlog.level = ERROR\n", dir.path().join("tokens").display())).unwrap();
    // SAFETY: single-threaded so far; SoftHSM2 reads the variable when it is loaded, next line.
    unsafe { std::env::set_var("SOFTHSM2_CONF", dir.path().join("softhsm2.conf")) };
    let hsm = Hsm::open(Path::new(DEFAULT_MODULE)).expect("SoftHSM2 loads");
    hsm.init_token(TOKEN, &AuthPin::from("bench-so-pin".to_string()), &pin()).expect("a token");
    carimbo::cli::hsm::keygen(&hsm, TOKEN, &pin(), "p003").expect("a key");

    // A JWS signing input of an act's size (header with a two-certificate x5c, payload).
    let message = vec![b'a'; 2400];
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ring_key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let ring_rate = rate(Duration::from_secs(2), || {
        std::hint::black_box(ring_key.sign(&rng, &message).unwrap());
    });
    let hsm_rate = rate(Duration::from_secs(2), || {
        std::hint::black_box(hsm.sign_es256(TOKEN, &pin(), "p003", &message).unwrap());
    });
    println!("ES256 signatures/s: ring (raw, in process) {ring_rate:.0}; SoftHSM2 over PKCS#11 (kept logged-in session, find key, sign) {hsm_rate:.0}");

    let s = TestServer::start_with(|st| st.hsm = Some(HsmProvider::new(hsm.clone(), pin(), &st.paths.data)));
    carimbo::cli::hsm::issue(&hsm, TOKEN, &s.state.paths.data, &common::repo(), "p003", "p003", None, Utc::now()).expect("issued");
    let staff = s.login("p005");
    let ids: Vec<String> = (0..n).map(|i| staff.submit_ok("absence-and-annual-leave", &leave(1 + (i % 3) as i64), &format!("bench-{i}"))).collect();
    let sup = s.login("p003");
    assert_eq!(sup.post("/api/v1/me/totp", &json!({})).status, 200);
    assert_eq!(sup.post("/api/v1/me/totp/confirm", &json!({"code": s.totp_now("p003")})).status, 204);
    let code = s.state.accounts.next_totp_for_tests("p003", Utc::now()).expect("a code");
    let items: Vec<Value> = ids.iter().map(|id| json!({"case": id, "step": "supervisor", "action": "approve"})).collect();
    let start = Instant::now();
    let r = sup.post("/api/v1/acts/batch", &json!({"hsm": items, "totp": code}));
    let took = start.elapsed();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["done"].as_u64(), Some(n as u64), "{}", r.body);
    println!(
        "batch of {n} approvals signed on the HSM with one authorization: {:.2} s from the code to the last result ({:.1} ms per act, each time-stamped and recorded)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e3 / n as f64
    );
}
