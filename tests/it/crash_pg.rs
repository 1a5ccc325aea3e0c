//! Crash safety on PostgreSQL: `carimbo serve --store <pg>` runs under load, is killed with
//! SIGKILL at a random moment, restarts, and every submission a client saw acknowledged must be
//! there (served by the restarted process, and in the database), with a hash chain that verifies.
//! (`crash_sled.rs` is the same test on sled.) What the kill cannot show is PostgreSQL's own
//! crash safety: that is the server's WAL, which `PgStore` relies on with `synchronous_commit = on`
//! and refuses to run without `fsync`.
//!
//! The second test crashes the database server itself (an immediate stop: no checkpoint, WAL
//! recovery at restart) under the same load, restarts it, and checks the same, through the same
//! carimbo process (whose pool must get over its dead connections). It needs
//! `CARIMBO_TEST_PG_CRASH` and `CARIMBO_TEST_PG_START`, shell commands that `.ci/postgres.sh`
//! sets for its own cluster, and must not share the server with other tests running at the same
//! time (`cargo test` runs one test binary at a time; the two tests here take turns).
//!
//! Needs `CARIMBO_TEST_PG` (see docs/storage.md); prints a SKIPPED line and passes without it.

use crate::common;

use common::crash::{Load, agent, free_port, login, random_wait_ms, sign_in_all, start, submit};

use carimbo::store::{PgStore, Store};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// The tests of this file take turns: one of them stops the database.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn every_acknowledged_submission_survives_a_sigkill_on_postgresql() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Ok(conn) = std::env::var("CARIMBO_TEST_PG") else {
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED every_acknowledged_submission_survives_a_sigkill_on_postgresql: CARIMBO_TEST_PG is not set (see docs/storage.md)"
        );
        return;
    };
    let schema = format!("t_crash_{}_{}", std::process::id(), chrono::Utc::now().timestamp_micros());
    let result = std::panic::catch_unwind(|| run(&conn, &schema));
    if let Ok(mut c) = postgres::Client::connect(&conn, postgres::NoTls) {
        let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn run(conn: &str, schema: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(&data, port, &["--store", conn, "--pg-schema", schema]);

    let load = Load::start(&base, &sign_in_all(&base));
    // Kill at a moment the test does not choose: between 1.5 and 4 seconds into the load.
    let wait = random_wait_ms();
    std::thread::sleep(Duration::from_millis(wait));
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    let acked = load.finish();
    assert!(!acked.is_empty(), "no submission was acknowledged before the kill ({wait} ms)");

    // Restart: every acknowledged case is served, to its submitter.
    let mut server = start(&data, port, &["--store", conn, "--pg-schema", schema]);
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

    // And every chain verifies, in the database itself.
    let store = PgStore::open_in_schema(conn, schema).expect("the store opens and its heads check");
    for (_, case) in &acked {
        assert!(store.head(case).unwrap().is_some_and(|h| h.version >= 1), "case {case} is in the database");
        store.verify_case(case).unwrap_or_else(|e| panic!("{e}"));
    }
    let report = store.verify_all().unwrap();
    assert!(report.is_clean(), "{report:?}");
    println!(
        "crash test (PostgreSQL): killed after {wait} ms; {} acknowledged submissions checked after restart; {} cases, {} events verified",
        acked.len(),
        report.cases_checked,
        report.events_checked
    );
}

fn shell(cmd: &str) -> bool {
    Command::new("sh").args(["-c", cmd]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

#[test]
fn every_acknowledged_submission_survives_a_database_crash() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (Ok(conn), Ok(crash), Ok(restart)) = (std::env::var("CARIMBO_TEST_PG"), std::env::var("CARIMBO_TEST_PG_CRASH"), std::env::var("CARIMBO_TEST_PG_START"))
    else {
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED every_acknowledged_submission_survives_a_database_crash: CARIMBO_TEST_PG, CARIMBO_TEST_PG_CRASH and CARIMBO_TEST_PG_START are not all set (.ci/postgres.sh sets them)"
        );
        return;
    };
    let schema = format!("t_dbcrash_{}_{}", std::process::id(), chrono::Utc::now().timestamp_micros());
    let result = std::panic::catch_unwind(|| run_database_crash(&conn, &schema, &crash, &restart));
    // Whatever happened, leave the server running for the tests after this one.
    let mut up = postgres::Client::connect(&conn, postgres::NoTls).is_ok();
    for _ in 0..5 {
        if up {
            break;
        }
        up = shell(&restart) || postgres::Client::connect(&conn, postgres::NoTls).is_ok();
        if !up {
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    if let Ok(mut c) = postgres::Client::connect(&conn, postgres::NoTls) {
        let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn run_database_crash(conn: &str, schema: &str, crash: &str, restart: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(&data, port, &["--store", conn, "--pg-schema", schema]);

    let tokens = sign_in_all(&base);
    let load = Load::start(&base, &tokens);
    let wait = random_wait_ms();
    std::thread::sleep(Duration::from_millis(wait));
    assert!(shell(crash), "the crash command failed: {crash}");
    let acked = load.finish();
    assert!(!acked.is_empty(), "no submission was acknowledged before the crash ({wait} ms)");

    // The server may need a moment to let go of its lock file and shared memory.
    let mut restarted = false;
    for _ in 0..10 {
        if shell(restart) {
            restarted = true;
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(restarted, "the database did not start again: {restart}");

    // The same carimbo process serves every acknowledged case, to its submitter...
    let a = agent();
    let token_of: std::collections::HashMap<_, _> = tokens.iter().cloned().collect();
    for (person, case) in &acked {
        let mut r = a.get(format!("{base}/api/v1/cases/{case}")).header("Authorization", &format!("Bearer {}", token_of[person])).call().unwrap();
        let status = r.status().as_u16();
        let body: Value = r.body_mut().read_json().unwrap_or(Value::Null);
        assert_eq!(status, 200, "case {case} acknowledged before the crash is not served after it: {body}");
        assert_eq!(body["case"]["status"], "open");
    }
    // ...and takes new work again.
    let (person, token) = &tokens[0];
    submit(&a, &base, token, person, &format!("{person}-after-the-crash")).expect("a submission after the database restarted");
    server.kill().unwrap();
    server.wait().unwrap();

    let store = PgStore::open_in_schema(conn, schema).expect("the store opens and its heads check");
    for (_, case) in &acked {
        store.verify_case(case).unwrap_or_else(|e| panic!("{e}"));
    }
    let report = store.verify_all().unwrap();
    assert!(report.is_clean(), "{report:?}");
    println!(
        "database crash test: PostgreSQL stopped immediately after {wait} ms; {} acknowledged submissions checked after its restart; {} cases, {} events verified",
        acked.len(),
        report.cases_checked,
        report.events_checked
    );
}
