//! `carimbo backup` / `restore`: a store with cases in every state, written to a backup and
//! restored into a fresh sled store (and a fresh PostgreSQL schema when `CARIMBO_TEST_PG` is
//! set), compared case by case; the binary run once each way; and bad files (truncated, one
//! byte changed, wrong format, a non-empty target) each refused with nothing written.

use crate::common;

use carimbo::backup::{self, BackupError, Phase, Progress};
use carimbo::cases::{CaseService, Idempotency};
use carimbo::i18n::Lang;
use carimbo::store::{Append, OutboxMessage, PgStore, SledStore, Store, StoreError};
use carimbo::workflow::{ActRequest, Action, Level};
use common::{at, sig};
use serde_json::{Value, json};
use std::io::{Cursor, Write};
use std::path::Path;
use std::sync::Arc;

fn leave(start: &str, end: &str) -> Value {
    json!({"leave_type": "annual", "start_date": start, "end_date": end})
}

fn act(who: &str, step: &str, action: Action, level: Level, now: &str) -> ActRequest {
    ActRequest { actor: who.into(), step: step.into(), action, comment: None, signature: sig(who, level), now: at(now) }
}

/// Fills a store the way the server would: 30 cases through the real `CaseService` (open at
/// the supervisor, open at HR, completed, rejected, returned, withdrawn; idempotency keys on
/// submissions and acts), plus 6 cases appended directly with outbox messages, some of them
/// delivered or dead. Returns the number of cases.
fn populate(store: Arc<dyn Store>) -> usize {
    let report = common::shipped();
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    let svc = CaseService::new(store.clone(), report.catalog, common::directory()).unwrap();
    for i in 0..30 {
        let data = leave("2026-03-09", "2026-03-10");
        let key = Idempotency::for_submit(&format!("form-{i}"), "p005", "absence-and-annual-leave", &data).unwrap();
        let id =
            svc.submit("p005", "absence-and-annual-leave", &data, sig("p005", Level::Advanced), at("2026-03-02T09:00"), Some(&key), Lang::En).unwrap().case.id;
        let step_key = format!("act-{i}");
        let act_key = |who: &str, step: &str, action: Action| Idempotency::for_act(&step_key, who, step, action.as_str(), None).unwrap();
        match i % 6 {
            0 => {}
            1 => {
                svc.act(
                    &id,
                    act("p003", "supervisor", Action::Approve, Level::Advanced, "2026-03-02T10:00"),
                    Some(&act_key("p003", "supervisor", Action::Approve)),
                )
                .unwrap();
            }
            2 => {
                svc.act(
                    &id,
                    act("p003", "supervisor", Action::Approve, Level::Advanced, "2026-03-02T10:00"),
                    Some(&act_key("p003", "supervisor", Action::Approve)),
                )
                .unwrap();
                svc.act(&id, act("p019", "hr-records", Action::Sign, Level::Simple, "2026-03-02T11:00"), None).unwrap();
            }
            3 => {
                svc.act(
                    &id,
                    act("p003", "supervisor", Action::Reject, Level::Advanced, "2026-03-02T10:00"),
                    Some(&act_key("p003", "supervisor", Action::Reject)),
                )
                .unwrap();
            }
            4 => {
                svc.act(&id, act("p003", "supervisor", Action::Return, Level::Advanced, "2026-03-02T10:00"), None).unwrap();
            }
            _ => {
                svc.withdraw(
                    &id,
                    "p005",
                    Some("plans changed".into()),
                    at("2026-03-02T10:00"),
                    Some(&Idempotency::for_withdraw(&step_key, "p005", Some("plans changed")).unwrap()),
                )
                .unwrap();
            }
        }
    }
    let statuses: std::collections::BTreeSet<String> = store.heads(None, 100).unwrap().into_iter().map(|h| h.status).collect();
    assert_eq!(statuses.len(), 5, "{statuses:?}");

    // Outbox messages come with appends (the dispatcher's delivery state with updates).
    for i in 0..6 {
        let case = format!("webhook-{i}");
        let mut head = store.heads(None, 1).unwrap().remove(0);
        head.case_id = case.clone();
        let mut a = Append {
            case_id: case.clone(),
            expected_version: 0,
            events: vec![json!({"type": "submitted", "n": i})],
            head: head.clone(),
            inbox: vec![],
            idempotency_key: Some(format!("k-{i}")),
            outcome: json!({"case": case}),
            outbox: vec![OutboxMessage { kind: "decision".into(), payload: json!({"case": case, "decision": "approved"}) }],
        };
        store.append(a.clone()).unwrap();
        a.expected_version = 1;
        a.events = vec![json!({"type": "completed"})];
        a.idempotency_key = None;
        a.outbox = vec![
            OutboxMessage { kind: "case.completed".into(), payload: json!({"case": case}) },
            OutboxMessage { kind: "decision".into(), payload: json!({"case": case, "final": true}) },
        ];
        store.append(a).unwrap();
    }
    store.outbox_update("webhook-0/1/0", &json!({"https://hr.example/hook": {"status": 204}}), true, false).unwrap();
    store.outbox_update("webhook-1/2/1", &json!({"https://hr.example/hook": {"attempts": 12}}), true, true).unwrap();
    store.outbox_update("webhook-2/1/0", &json!({"https://hr.example/hook": {"attempts": 3}}), false, false).unwrap();
    // A publication of the leave form: a restored store serves it and keeps who published it.
    let hash = store.definition_hashes().unwrap()[0].clone();
    store
        .publish(&carimbo::store::Publication {
            seq: 1,
            at: at("2026-03-02T18:00"),
            by: "p032".into(),
            definitions: vec![carimbo::store::PublishedDefinition {
                kind: "form".into(),
                id: "absence-and-annual-leave".into(),
                version: "1.0.0".into(),
                hash,
                previous_version: None,
                previous_hash: None,
                changes: vec![],
                changes_truncated: false,
            }],
        })
        .unwrap();
    36
}

fn sled_store(dir: &Path) -> Arc<dyn Store> {
    Arc::new(SledStore::open(dir).unwrap())
}

fn backup_bytes(store: &dyn Store) -> Vec<u8> {
    let mut out = Vec::new();
    let summary = backup::backup(store, "sled", &mut out, &mut |_| {}).unwrap();
    assert_eq!(summary.cases as usize, store.heads(None, 10_000).unwrap().len());
    out
}

fn restore_bytes(store: &dyn Store, bytes: &[u8]) -> Result<backup::Summary, BackupError> {
    backup::restore(store, Cursor::new(bytes), &mut |_| {})
}

/// Every case of `b` equals the one in `a`: chain head, the whole export; and the definitions.
fn assert_same_stores(a: &dyn Store, b: &dyn Store) {
    let heads_a = a.heads(None, 10_000).unwrap();
    let heads_b = b.heads(None, 10_000).unwrap();
    assert_eq!(
        heads_a.iter().map(|h| (&h.case_id, h.version, &h.last_hash)).collect::<Vec<_>>(),
        heads_b.iter().map(|h| (&h.case_id, h.version, &h.last_hash)).collect::<Vec<_>>()
    );
    assert_eq!(heads_a, heads_b);
    for h in &heads_a {
        assert_eq!(a.export_case(&h.case_id).unwrap(), b.export_case(&h.case_id).unwrap(), "case {}", h.case_id);
        b.verify_case(&h.case_id).unwrap();
    }
    let defs = a.definition_hashes().unwrap();
    assert!(!defs.is_empty());
    assert_eq!(defs, b.definition_hashes().unwrap());
    for d in &defs {
        assert_eq!(a.definition(d).unwrap(), b.definition(d).unwrap());
    }
    assert_eq!(a.publications().unwrap().len(), 1);
    assert_eq!(a.publications().unwrap(), b.publications().unwrap());
    let since = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    assert_eq!(a.outbox_since(since, None, 1000).unwrap(), b.outbox_since(since, None, 1000).unwrap());
    assert_eq!(a.outbox_pending(None, 1000).unwrap(), b.outbox_pending(None, 1000).unwrap());
    assert_eq!(a.outbox_dead(1000).unwrap(), b.outbox_dead(1000).unwrap());
    for person in ["p003", "p018", "p019", "p020", "p005"] {
        assert_eq!(a.inbox(person, None, 1000).unwrap(), b.inbox(person, None, 1000).unwrap(), "{person}'s inbox");
        assert_eq!(a.cases_of(person, 1000).unwrap(), b.cases_of(person, 1000).unwrap(), "{person}'s cases");
    }
}

fn pg_conn(test: &str) -> Option<String> {
    match std::env::var("CARIMBO_TEST_PG") {
        Ok(conn) if !conn.trim().is_empty() => Some(conn),
        _ => {
            let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test} on PostgreSQL: CARIMBO_TEST_PG is not set (see docs/storage.md)");
            None
        }
    }
}

/// A fresh schema, dropped when the guard goes.
struct PgSchema {
    conn: String,
    name: String,
}

impl PgSchema {
    fn new(conn: &str, test: &str) -> PgSchema {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        PgSchema { conn: conn.to_string(), name: format!("t_backup_{test}_{}_{nanos}", std::process::id()) }
    }

    fn open(&self) -> Arc<PgStore> {
        Arc::new(PgStore::open_in_schema(&self.conn, &self.name).unwrap())
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut c) = ::postgres::Client::connect(&self.conn, ::postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name));
        }
    }
}

// ---------------------------------------------------------------- round trips

#[test]
fn a_backup_restores_into_a_fresh_sled_store_with_every_case_equal() {
    let source_dir = tempfile::tempdir().unwrap();
    let source = sled_store(source_dir.path());
    let cases = populate(source.clone());
    let bytes = backup_bytes(&*source);

    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let header: Value = serde_json::from_slice(lines[0]).unwrap();
    assert_eq!((header["format"].as_str(), header["version"].as_u64(), header["store"].as_str()), (Some("carimbo-backup"), Some(1), Some("sled")));
    let trailer: Value = serde_json::from_slice(lines.last().unwrap()).unwrap();
    assert_eq!(trailer["end"], true);
    assert_eq!(trailer["cases"], cases);
    let before_trailer = bytes.len() - lines.last().unwrap().len() - 1;
    assert_eq!(trailer["sha256"].as_str().unwrap(), hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes[..before_trailer])));

    let target_dir = tempfile::tempdir().unwrap();
    let target = sled_store(target_dir.path());
    let mut reports = Vec::new();
    let summary = backup::restore(&*target, Cursor::new(&bytes), &mut |p: Progress| reports.push(p)).unwrap();
    assert_eq!(summary.cases as usize, cases);
    assert_eq!(summary.events, trailer["events"].as_u64().unwrap());
    assert_eq!(summary.definitions, trailer["definitions"].as_u64().unwrap());
    assert!(reports.is_empty(), "fewer than 1000 cases: no progress lines");
    assert_same_stores(&*source, &*target);

    // The restored store is a store like any other: it reopens, verifies and backs up to the
    // same cases (only the header's time differs).
    drop(target);
    let target = SledStore::open(target_dir.path()).unwrap();
    assert!(target.verify_all().unwrap().is_clean());
    let again = backup_bytes(&target);
    let cases_of = |b: &[u8]| b.split(|c| *c == b'\n').skip(1).filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect::<Vec<_>>();
    let (a, b) = (cases_of(&bytes), cases_of(&again));
    assert_eq!(a[..a.len() - 1], b[..b.len() - 1], "same definitions and cases, byte for byte");
}

#[test]
fn a_backup_restores_into_a_fresh_postgresql_schema_and_back() {
    let Some(conn) = pg_conn("a_backup_restores_into_a_fresh_postgresql_schema_and_back") else { return };
    let source_dir = tempfile::tempdir().unwrap();
    let source = sled_store(source_dir.path());
    populate(source.clone());
    let bytes = backup_bytes(&*source);

    let schema = PgSchema::new(&conn, "roundtrip");
    let pg = schema.open();
    restore_bytes(&*pg, &bytes).unwrap();
    assert_same_stores(&*source, &*pg);
    assert!(pg.verify_all().unwrap().is_clean());

    // And from PostgreSQL (read in one snapshot) back into sled.
    let mut from_pg = Vec::new();
    backup::backup(&*pg, "postgres", &mut from_pg, &mut |_| {}).unwrap();
    let header: Value = serde_json::from_slice(from_pg.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(header["store"], "postgres");
    let back_dir = tempfile::tempdir().unwrap();
    let back = sled_store(back_dir.path());
    restore_bytes(&*back, &from_pg).unwrap();
    assert_same_stores(&*source, &*back);
}

#[test]
fn the_binary_backs_up_a_stopped_store_and_restores_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cases = {
        let source = sled_store(&data.join("store"));
        populate(source)
    };
    let out = tmp.path().join("carimbo.backup.jsonl");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_carimbo")).args(args).output().unwrap();
        (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (ok, err) = run(&["backup", out.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(err.contains(&format!("backed up {cases} cases")), "{err}");
    assert!(!tmp.path().join("carimbo.backup.partial").exists());

    // An existing file is not overwritten.
    let (ok, err) = run(&["backup", out.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert!(!ok && err.contains("exists"), "{err}");

    let restored = tmp.path().join("restored");
    let (ok, err) = run(&["restore", out.to_str().unwrap(), "--data", restored.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(err.contains(&format!("restored {cases} cases")) && err.contains("definitions in"), "{err}");
    let source = sled_store(&data.join("store"));
    let target = sled_store(&restored.join("store"));
    assert_same_stores(&*source, &*target);
    drop(target);

    // Restoring again into the now non-empty store is refused.
    let (ok, err) = run(&["restore", out.to_str().unwrap(), "--data", restored.to_str().unwrap()]);
    assert!(!ok && err.contains("not empty") && err.contains("CARIMBO-E0423"), "{err}");

    // A backup of a store a running server holds (here: this process) says so.
    let (ok, err) = run(&["backup", tmp.path().join("other.jsonl").to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert!(!ok && err.contains("open in another process"), "{err}");
    assert!(!tmp.path().join("other.jsonl").exists());
}

#[test]
fn the_binary_refuses_a_truncated_backup_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let source = sled_store(&tmp.path().join("source"));
    populate(source.clone());
    let bytes = backup_bytes(&*source);
    let cut = tmp.path().join("cut.jsonl");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let restored = tmp.path().join("restored");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_carimbo"))
        .args(["restore", cut.to_str().unwrap(), "--data", restored.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("truncated") && err.contains("CARIMBO-E0421") && err.contains("nothing was restored"), "{err}");
    assert!(sled_store(&restored.join("store")).heads(None, 1).unwrap().is_empty());
}

// ---------------------------------------------------------------- bad files

/// A store that must stay empty, and the backup of a populated one.
fn fixture() -> (tempfile::TempDir, Arc<dyn Store>, Vec<u8>) {
    let tmp = tempfile::tempdir().unwrap();
    let source = sled_store(&tmp.path().join("source"));
    populate(source.clone());
    let bytes = backup_bytes(&*source);
    let target = sled_store(&tmp.path().join("target"));
    (tmp, target, bytes)
}

fn assert_empty(store: &dyn Store) {
    assert!(store.heads(None, 1).unwrap().is_empty(), "no case was written");
    assert!(store.definition_hashes().unwrap().is_empty(), "no definition was written");
    assert!(store.outbox_since(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH, None, 1).unwrap().is_empty());
}

#[test]
fn a_truncated_backup_is_refused_and_nothing_is_written() {
    let (_tmp, target, bytes) = fixture();
    let last_line_start = bytes[..bytes.len() - 1].iter().rposition(|b| *b == b'\n').unwrap() + 1;
    // Cut in the middle of a case line, at a line boundary (the closing line lost), and in the
    // middle of the closing line.
    for (what, len) in [("mid-file", bytes.len() / 2), ("at a line end", last_line_start), ("inside the closing line", bytes.len() - 20)] {
        match restore_bytes(&*target, &bytes[..len]) {
            Err(BackupError::Damaged(m)) => assert!(m.contains("truncated") || m.contains("cut short") || m.contains("closing line"), "{what}: {m}"),
            other => panic!("{what}: expected Damaged, got {other:?}"),
        }
        assert_empty(&*target);
    }
}

#[test]
fn one_changed_byte_is_refused_and_nothing_is_written() {
    let (_tmp, target, bytes) = fixture();
    // A byte inside an event body (the first mention of the withdrawal's reason: a case line
    // holds its events before its outbox messages): still valid JSON, still a valid case line.
    let at = bytes.windows(b"plans changed".len()).position(|w| w == b"plans changed").unwrap();
    let mut changed = bytes.clone();
    changed[at] = b'P';
    match restore_bytes(&*target, &changed) {
        Err(e @ BackupError::Damaged(_)) => assert!(e.to_string().contains("SHA-256") && e.to_string().contains("CARIMBO-E0421"), "{e}"),
        other => panic!("expected Damaged, got {other:?}"),
    }
    assert_empty(&*target);

    // Same change with the closing line's SHA-256 re-computed: the case's own hash chain still
    // catches it, naming the case and the event.
    let lines: Vec<&[u8]> = changed.split_inclusive(|b| *b == b'\n').collect();
    let body: Vec<u8> = lines[..lines.len() - 1].concat();
    let mut trailer: Value = serde_json::from_slice(lines.last().unwrap()).unwrap();
    trailer["sha256"] = json!(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)));
    let mut resealed = body.clone();
    resealed.extend_from_slice(&serde_json::to_vec(&trailer).unwrap());
    resealed.push(b'\n');
    let line_of_change = body[..at].iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let case_id = serde_json::from_slice::<Value>(lines[line_of_change as usize - 1]).unwrap()["head"]["case_id"].as_str().unwrap().to_string();
    match restore_bytes(&*target, &resealed) {
        Err(e @ BackupError::BadCase { line, error: StoreError::Corrupt { .. } }) => {
            assert_eq!(line, line_of_change);
            let m = e.to_string();
            assert!(m.contains(&case_id) && m.contains("event ") && m.contains("CARIMBO-E0422"), "{m}");
        }
        other => panic!("expected BadCase, got {other:?}"),
    }
    assert_empty(&*target);
}

#[test]
fn a_file_that_is_not_a_backup_is_refused() {
    let (_tmp, target, bytes) = fixture();
    let first_line_end = bytes.iter().position(|b| *b == b'\n').unwrap();
    let mut header: Value = serde_json::from_slice(&bytes[..first_line_end]).unwrap();
    header["format"] = json!("carimbo-evidence");
    let mut wrong_format = serde_json::to_vec(&header).unwrap();
    wrong_format.extend_from_slice(&bytes[first_line_end..]);
    header["format"] = json!("carimbo-backup");
    header["version"] = json!(2);
    let mut newer = serde_json::to_vec(&header).unwrap();
    newer.extend_from_slice(&bytes[first_line_end..]);
    let evidence = std::fs::read(common::repo().join("Cargo.toml")).unwrap();

    for (what, file, expect) in [
        ("another format", wrong_format, "carimbo-evidence"),
        ("a newer version", newer, "version 2"),
        ("not JSON lines at all", evidence, "first line"),
        ("an empty file", Vec::new(), "empty"),
    ] {
        match restore_bytes(&*target, &file) {
            Err(e @ BackupError::NotABackup(_)) => {
                let m = e.to_string();
                assert!(m.contains(expect) && m.contains("CARIMBO-E0420"), "{what}: {m}");
            }
            other => panic!("{what}: expected NotABackup, got {other:?}"),
        }
        assert_empty(&*target);
    }
}

#[test]
fn a_store_that_holds_cases_is_not_restored_into() {
    let (tmp, _target, bytes) = fixture();
    drop(_target);
    let target = sled_store(&tmp.path().join("target"));
    let mut a = Append {
        case_id: "already-here".into(),
        expected_version: 0,
        events: vec![json!({"type": "submitted"})],
        head: serde_json::from_value(json!({
            "case_id": "already-here", "version": 0, "last_hash": "", "status": "open", "form_id": "f", "form_version": "1",
            "form_hash": "h", "workflow_id": "w", "workflow_version": "1", "workflow_hash": "h", "submitter": "p005",
            "parties": ["p005"], "opened_at": "2026-03-02T01:00:00Z", "updated_at": "2026-03-02T01:00:00Z", "summary": {}
        }))
        .unwrap(),
        inbox: vec![],
        idempotency_key: None,
        outcome: json!({}),
        outbox: vec![],
    };
    target.append(a.clone()).unwrap();
    let before = target.export_case("already-here").unwrap();
    match restore_bytes(&*target, &bytes) {
        Err(e @ BackupError::TargetNotEmpty(_)) => assert!(e.to_string().contains("already-here"), "{e}"),
        other => panic!("expected TargetNotEmpty, got {other:?}"),
    }
    assert_eq!(target.heads(None, 10).unwrap().len(), 1);
    assert_eq!(target.export_case("already-here").unwrap(), before);
    assert!(target.definition_hashes().unwrap().is_empty());
    a.expected_version = 1;
    target.append(a).unwrap();
}

#[test]
fn progress_is_reported_every_thousand_cases() {
    let tmp = tempfile::tempdir().unwrap();
    let source = SledStore::open(tmp.path().join("source")).unwrap();
    let head: carimbo::store::CaseHead = serde_json::from_value(json!({
        "case_id": "", "version": 0, "last_hash": "", "status": "open", "form_id": "f", "form_version": "1",
        "form_hash": "h", "workflow_id": "w", "workflow_version": "1", "workflow_hash": "h", "submitter": "p005",
        "parties": ["p005"], "opened_at": "2026-03-02T01:00:00Z", "updated_at": "2026-03-02T01:00:00Z", "summary": {}
    }))
    .unwrap();
    for i in 0..2500 {
        let case_id = format!("bulk-{i:05}");
        let mut h = head.clone();
        h.case_id = case_id.clone();
        let a = Append {
            case_id,
            expected_version: 0,
            events: vec![json!({"type": "submitted"})],
            head: h,
            inbox: vec![],
            idempotency_key: None,
            outcome: json!({}),
            outbox: vec![],
        };
        source.append_unsynced(a).unwrap();
    }
    source.sync().unwrap();
    let mut written = Vec::new();
    let mut out = Vec::new();
    backup::backup(&source, "sled", &mut out, &mut |p| written.push(p)).unwrap();
    assert_eq!(written.iter().map(|p| (p.phase, p.cases)).collect::<Vec<_>>(), [(Phase::Writing, 1000), (Phase::Writing, 2000)]);

    let target = SledStore::open(tmp.path().join("target")).unwrap();
    let mut seen = Vec::new();
    let summary = backup::restore(&target, Cursor::new(&out), &mut |p| seen.push(p)).unwrap();
    assert_eq!(summary.cases, 2500);
    let checking: Vec<u64> = seen.iter().filter(|p| p.phase == Phase::Checking).map(|p| p.cases).collect();
    let mut importing: Vec<u64> = seen.iter().filter(|p| p.phase == Phase::Importing).map(|p| p.cases).collect();
    importing.sort_unstable(); // reported by whichever importer thread reached the count
    assert_eq!((checking, importing), (vec![1000, 2000], vec![1000, 2000]));
    assert!(seen.iter().filter(|p| p.phase == Phase::Importing).all(|p| p.total == Some(2500)));
    assert_eq!(target.heads(None, 10_000).unwrap().len(), 2500);
}

#[test]
fn a_backup_line_repeating_a_member_name_is_refused_and_nothing_is_restored() {
    let source_dir = tempfile::tempdir().unwrap();
    let source = sled_store(source_dir.path());
    populate(source.clone());
    let bytes = backup_bytes(&*source);
    let text = String::from_utf8(bytes).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.iter().position(|l| l.starts_with(r#"{"head":"#)).expect("a case line");
    // One more `head` before the real one: read last-wins, the line is the exported case.
    lines[n] = format!("{{\"head\":{{}},{}", &lines[n][1..]);
    // Whoever edits the file can recompute its SHA-256 too.
    let trailer = lines.pop().unwrap();
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let mut closing: Value = serde_json::from_str(&trailer).unwrap();
    closing["sha256"] = Value::from(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes())));
    let tampered = format!("{body}{closing}\n");

    let target_dir = tempfile::tempdir().unwrap();
    let target = sled_store(target_dir.path());
    let e = restore_bytes(&*target, tampered.as_bytes()).expect_err("a repeated member name is refused");
    assert!(matches!(e, BackupError::Duplicate { line, .. } if line == n as u64 + 1), "{e}");
    let message = e.to_string();
    assert!(message.contains("\"head\" appears twice") && message.ends_with("[CARIMBO-E0120]"), "{message}");
    assert!(target.heads(None, 10).unwrap().is_empty(), "nothing was restored");
}
