//! Crash safety on sled: the server runs under load, is killed with SIGKILL at a random moment,
//! restarts, and every submission a client saw acknowledged must be there, with a hash chain
//! that verifies.

mod common;

use common::crash::{agent, free_port, login, start, submit};

use carimbo::store::{SledStore, Store};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn every_acknowledged_submission_survives_a_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(&data, port, &[]);

    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let people = ["p005", "p006", "p007", "p008", "p009", "p010", "p011", "p012"];
    let clients: Vec<_> = people
        .iter()
        .map(|person| {
            let (acked, stop, base, person) = (acked.clone(), stop.clone(), base.clone(), person.to_string());
            std::thread::spawn(move || {
                let a = agent();
                let Ok(token) = login(&a, &base, &person) else { return };
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    match submit(&a, &base, &token, &person, &format!("{person}-{n}")) {
                        Ok(case) => acked.lock().unwrap().push((person.clone(), case)),
                        // The server died mid-request: this one was never acknowledged.
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();

    // Kill at a moment the test does not choose: between 1.5 and 4 seconds into the load.
    let mut r = [0u8; 2];
    getrandom::fill(&mut r).unwrap();
    let wait = 1500 + (u16::from_le_bytes(r) % 2500) as u64;
    std::thread::sleep(Duration::from_millis(wait));
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
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
