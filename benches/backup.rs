//! Backup and restore speed: `cargo bench --bench backup`.
//!
//! Builds a sled store of `CARIMBO_BENCH_CASES` cases (default 10,000), each like a leave
//! request that went through the shipped workflow: three appends (submit, approve, sign), seven
//! events with a signature-sized (~2 KiB) member, two idempotency keys, two outbox messages,
//! inbox entries on the third still open. Then times, in cases per second:
//! - `backup` of the sled store to a file (every case verified on the way);
//! - `restore` of that file into a fresh sled store (the whole file checked, then imported);
//! - with `CARIMBO_TEST_PG` set: `restore` into a fresh PostgreSQL schema, and `backup` from it.
//!
//! Stores live under Cargo's target tmp dir (or `CARIMBO_BENCH_DIR`).

use carimbo::backup;
use carimbo::store::{Append, CaseHead, InboxEntry, OutboxMessage, PgStore, SledStore};
use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let root = std::env::var_os("CARIMBO_BENCH_DIR").map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    std::fs::create_dir_all(&root).unwrap();
    let cases: usize = std::env::var("CARIMBO_BENCH_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let tmp = tempfile::tempdir_in(&root).unwrap();

    let started = Instant::now();
    let source = SledStore::open(tmp.path().join("source")).unwrap();
    fill(&source, cases);
    println!("built {cases} cases in {:.1} s", started.elapsed().as_secs_f64());

    let file = tmp.path().join("backup.jsonl");
    let started = Instant::now();
    let summary = backup::backup(&source, "sled", std::io::BufWriter::new(std::fs::File::create(&file).unwrap()), &mut |_| {}).unwrap();
    report("backup, sled", summary.cases, summary.events, started);
    let size = std::fs::metadata(&file).unwrap().len();
    println!("  file: {:.1} MiB ({:.1} KiB per case)", size as f64 / 1048576.0, size as f64 / 1024.0 / cases as f64);
    drop(source);

    let started = Instant::now();
    let target = SledStore::open(tmp.path().join("target")).unwrap();
    let summary = backup::restore(&target, std::fs::File::open(&file).unwrap(), &mut |_| {}).unwrap();
    report("restore, sled", summary.cases, summary.events, started);
    drop(target);

    match std::env::var("CARIMBO_TEST_PG").ok().filter(|c| !c.trim().is_empty()) {
        None => println!("postgresql: SKIPPED: CARIMBO_TEST_PG is not set (see docs/storage.md)"),
        Some(conn) => {
            let schema = format!("bench_backup_{}_{}", std::process::id(), Utc::now().timestamp());
            let pg = PgStore::open_in_schema(&conn, &schema).unwrap();
            let started = Instant::now();
            let summary = backup::restore(&pg, std::fs::File::open(&file).unwrap(), &mut |_| {}).unwrap();
            report("restore, postgresql", summary.cases, summary.events, started);
            let started = Instant::now();
            let summary =
                backup::backup(&pg, "postgres", std::io::BufWriter::new(std::fs::File::create(tmp.path().join("pg.jsonl")).unwrap()), &mut |_| {}).unwrap();
            report("backup, postgresql", summary.cases, summary.events, started);
            drop(pg);
            if let Ok(mut c) = postgres::Client::connect(&conn, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
            }
        }
    }
}

fn report(what: &str, cases: u64, events: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!("{what:<22} {cases} cases, {events} events in {secs:.2} s: {:.0} cases/s", cases as f64 / secs);
}

fn fill(store: &SledStore, cases: usize) {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap();
    let jws = "e".repeat(2000);
    for i in 0..cases {
        let case = format!("C-{i:08x}");
        let opened = t0 + Duration::seconds(i as i64);
        let head = CaseHead {
            case_id: case.clone(),
            version: 0,
            last_hash: String::new(),
            status: "open".into(),
            form_id: "absence-and-annual-leave".into(),
            form_version: "1.0.0".into(),
            form_hash: "f".repeat(64),
            workflow_id: "absence-and-annual-leave".into(),
            workflow_version: "1.0.0".into(),
            workflow_hash: "e".repeat(64),
            submitter: format!("p{:03}", i % 40),
            parties: vec![format!("p{:03}", i % 40), "p003".into(), "p019".into()],
            opened_at: opened,
            updated_at: opened,
            summary: json!({"step": "supervisor", "since": opened}),
        };
        let inbox = |person: &str, step: &str| InboxEntry {
            person: person.into(),
            case_id: case.clone(),
            step: step.into(),
            seat: "0".into(),
            since: opened,
            form_id: "absence-and-annual-leave".into(),
            on_behalf_of: None,
            delegation: None,
        };
        let submitted = json!({"type": "submitted", "by": head.submitter, "data": {"leave_type": "annual", "start_date": "2026-03-09", "end_date": "2026-03-10", "days": 2}, "signature": {"level": "advanced", "jws": jws}});
        let mut a = Append {
            case_id: case.clone(),
            expected_version: 0,
            events: vec![submitted, json!({"type": "step_opened", "step": "supervisor", "seats": [["p003"]]})],
            head: head.clone(),
            inbox: vec![inbox("p003", "supervisor")],
            idempotency_key: Some(format!("form-{i}")),
            outcome: json!({"case_id": case, "status": "open"}),
            outbox: vec![],
        };
        store.append_unsynced(a.clone()).unwrap();
        if i % 3 == 2 {
            continue;
        }
        a.expected_version = 2;
        a.events = vec![
            json!({"type": "acted", "step": "supervisor", "action": "approve", "by": "p003", "signature": {"level": "advanced", "jws": jws}}),
            json!({"type": "step_opened", "step": "hr-records", "seats": [["p018", "p019", "p020"]]}),
        ];
        a.inbox = vec![inbox("p018", "hr-records"), inbox("p019", "hr-records"), inbox("p020", "hr-records")];
        a.idempotency_key = Some(format!("approve-{i}"));
        a.outbox = vec![OutboxMessage { kind: "decision".into(), payload: json!({"case": case, "step": "supervisor", "decision": "approve"}) }];
        store.append_unsynced(a.clone()).unwrap();
        if i % 3 == 1 {
            continue;
        }
        a.expected_version = 4;
        a.events = vec![
            json!({"type": "acted", "step": "hr-records", "action": "sign", "by": "p019", "signature": {"level": "simple", "jws": jws}}),
            json!({"type": "step_done", "step": "hr-records"}),
            json!({"type": "completed"}),
        ];
        a.inbox = vec![];
        a.head.status = "completed".into();
        a.idempotency_key = None;
        a.outbox = vec![OutboxMessage { kind: "case.completed".into(), payload: json!({"case": case}) }];
        store.append_unsynced(a).unwrap();
    }
    store.sync().unwrap();
}
