//! Crash safety on sled: the server runs under load, is killed with SIGKILL at a random moment,
//! restarts, and every submission a client saw acknowledged must be there, with a hash chain
//! that verifies.

use crate::common;

use common::crash::{Load, agent, free_port, login, random_wait_ms, sign_in_all, start};

use carimbo::store::{SledStore, Store};
use serde_json::Value;
use std::time::Duration;

#[test]
fn every_acknowledged_submission_survives_a_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(&data, port, &[]);

    let load = Load::start(&base, &sign_in_all(&base));
    // Kill at a moment the test does not choose: between 1.5 and 4 seconds into the load.
    let wait = random_wait_ms();
    std::thread::sleep(Duration::from_millis(wait));
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    let acked = load.finish();
    assert!(!acked.is_empty(), "no submission was acknowledged before the kill ({wait} ms)");

    // Restart: every acknowledged case is served, to its submitter.
    let mut server = start(&data, port, &[]);
    let a = agent();
    let mut tokens = std::collections::HashMap::new();
    for (person, case) in &acked {
        let token = tokens.entry(person.clone()).or_insert_with(|| login(&a, &base, person).unwrap()).clone();
        let mut r = a.get(format!("{base}/api/v1/cases/{case}")).header("Authorization", &format!("Bearer {token}")).call().unwrap();
        assert_eq!(r.status().as_u16(), 200, "case {case} acknowledged before the kill is missing after restart");
        let v: Value = r.body_mut().read_json().unwrap();
        assert_eq!(v["case"]["status"], "open");
    }
    server.kill().unwrap();
    server.wait().unwrap();

    // And every chain verifies.
    let store = SledStore::open(data.join("store")).expect("the store opens and its heads check");
    for (_, case) in &acked {
        store.verify_case(case).unwrap_or_else(|e| panic!("{e}"));
    }
    println!("crash test: killed after {wait} ms; {} acknowledged submissions checked after restart", acked.len());
}
