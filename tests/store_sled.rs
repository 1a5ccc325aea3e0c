//! What only the sled store has (its files, group commit, tampering below the store, crashes),
//! each test on a fresh temporary directory. The behaviour every store shares is tested on sled
//! and PostgreSQL alike in `store_contract.rs`.

use carimbo::store::{Append, CaseHead, InboxEntry, SledStore, Store, StoreError};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn head(case: &str, parties: &[&str], opened_at: DateTime<Utc>) -> CaseHead {
    CaseHead {
        case_id: case.into(),
        version: 0,
        last_hash: String::new(),
        status: "open".into(),
        form_id: "leave".into(),
        form_version: "1".into(),
        form_hash: "f".repeat(64),
        workflow_id: "leave".into(),
        workflow_version: "1".into(),
        workflow_hash: "e".repeat(64),
        submitter: parties[0].into(),
        parties: parties.iter().map(|p| p.to_string()).collect(),
        opened_at,
        updated_at: opened_at,
        summary: json!({}),
    }
}

fn entry(person: &str, case: &str, step: &str, since: DateTime<Utc>) -> InboxEntry {
    InboxEntry {
        person: person.into(),
        case_id: case.into(),
        step: step.into(),
        seat: "1".into(),
        since,
        form_id: "leave".into(),
        on_behalf_of: None,
        delegation: None,
    }
}

fn append(case: &str, expected: u64, events: Vec<Value>, inbox: Vec<InboxEntry>) -> Append {
    Append {
        case_id: case.into(),
        expected_version: expected,
        events,
        head: head(case, &["ana"], t(0)),
        inbox,
        idempotency_key: None,
        outcome: json!({"ok": true}),
    }
}

fn submit(case: &str) -> Append {
    append(case, 0, vec![json!({"type": "submitted", "by": "ana"})], vec![entry("bruno", case, "supervisor", t(0))])
}

fn open(dir: &Path) -> SledStore {
    SledStore::open(dir).expect("the store opens")
}

/// Rewrites one stored event's raw bytes through sled itself, with the store closed.
fn rewrite_event(dir: &Path, case: &str, seq: u64, edit: impl FnOnce(&mut Vec<u8>)) {
    // sled's background threads may still hold the file lock for a moment after the store is
    // dropped; wait for it rather than fail.
    let mut tries = 0;
    let db = loop {
        match sled::open(dir) {
            Ok(db) => break db,
            Err(e) if tries < 100 && e.to_string().contains("could not acquire lock") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("cannot reopen the store: {e}"),
        }
    };
    let events = db.open_tree("events").unwrap();
    let mut key = case.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    let mut value = events.get(&key).unwrap().expect("the event exists").to_vec();
    edit(&mut value);
    events.insert(key, value).unwrap();
    db.flush().unwrap();
}

fn three_events(dir: &Path, case: &str) {
    let store = open(dir);
    store.append(submit(case)).unwrap();
    store.append(append(case, 1, vec![json!({"type": "approved", "by": "bruno"})], vec![])).unwrap();
    store.append(append(case, 2, vec![json!({"type": "completed"})], vec![])).unwrap();
}

#[test]
fn concurrent_appends_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let before = store.durability_stats();
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                for j in 0..20 {
                    store.append(submit(&format!("c{i}-{j}"))).unwrap();
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let after = store.durability_stats();
    assert_eq!(after.durable_writes - before.durable_writes, 320);
    assert!(after.flushes - before.flushes < 320, "{} flushes for 320 appends", after.flushes - before.flushes);
}

#[test]
fn a_changed_byte_in_a_stored_event_is_named_by_verify_case() {
    let dir = tempfile::tempdir().unwrap();
    three_events(dir.path(), "c1");
    // "approved" → "approvee": still valid JSON, no longer the hashed content.
    rewrite_event(dir.path(), "c1", 2, |v| {
        let at = v.windows(8).position(|w| w == b"approved").unwrap();
        v[at + 7] = b'e';
    });
    // The last event is intact, so the fast check at open passes; the full check does not.
    let store = open(dir.path());
    match store.verify_case("c1") {
        Err(StoreError::Corrupt { case_id, seq, reason }) => {
            assert_eq!((case_id.as_str(), seq), ("c1", 2));
            assert!(reason.contains("hash"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let report = store.verify_all().unwrap();
    assert_eq!(report.corrupt.len(), 1);
    assert_eq!((report.corrupt[0].case_id.as_str(), report.corrupt[0].seq), ("c1", 2));
}

#[test]
fn undecodable_event_bytes_are_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    three_events(dir.path(), "c1");
    rewrite_event(dir.path(), "c1", 1, |v| v[0] = b'#');
    let store = open(dir.path());
    assert!(matches!(store.verify_case("c1"), Err(StoreError::Corrupt { seq: 1, reason, .. }) if reason.contains("decode")));
    assert!(matches!(store.events("c1"), Err(StoreError::Corrupt { seq: 1, .. })));
}

#[test]
fn a_rewritten_event_with_a_recomputed_hash_breaks_the_next_link() {
    let dir = tempfile::tempdir().unwrap();
    three_events(dir.path(), "c1");
    rewrite_event(dir.path(), "c1", 2, |v| {
        let mut e: carimbo::store::StoredEvent = serde_json::from_slice(v).unwrap();
        e.body = json!({"type": "rejected"});
        e.hash = e.computed_hash();
        *v = serde_json::to_vec(&e).unwrap();
    });
    let store = open(dir.path());
    assert!(matches!(store.verify_case("c1"), Err(StoreError::Corrupt { seq: 3, reason, .. }) if reason.contains("prev_hash")));
}

#[test]
fn a_removed_event_is_reported_as_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    three_events(dir.path(), "c1");
    {
        let db = sled::open(dir.path()).unwrap();
        let mut key = b"c1\0".to_vec();
        key.extend_from_slice(&2u64.to_be_bytes());
        db.open_tree("events").unwrap().remove(key).unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path());
    assert!(matches!(store.verify_case("c1"), Err(StoreError::Corrupt { seq: 2, reason, .. }) if reason.contains("missing")));
}

#[test]
fn a_corrupt_last_event_is_refused_at_open_and_listed_by_verify_all() {
    let dir = tempfile::tempdir().unwrap();
    three_events(dir.path(), "c1");
    {
        let store = open(dir.path());
        store.append(submit("c2")).unwrap();
    }
    rewrite_event(dir.path(), "c1", 3, |v| {
        let at = v.windows(9).position(|w| w == b"completed").unwrap();
        v[at] = b'C';
    });
    match SledStore::open(dir.path()) {
        Err(StoreError::Corrupt { case_id, seq: 3, .. }) => assert_eq!(case_id, "c1"),
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("a corrupt store must not open"),
    }
    let store = SledStore::open_unverified(dir.path()).unwrap();
    let report = store.verify_all().unwrap();
    assert_eq!((report.cases_checked, report.events_checked), (2, 4));
    assert_eq!(report.corrupt.len(), 1);
    assert_eq!((report.corrupt[0].case_id.as_str(), report.corrupt[0].seq), ("c1", 3));
    store.verify_case("c2").unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn definitions_round_trip_under_their_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let leave = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/forms/leave.json")).unwrap_or_else(|_| b"{\"id\":\"leave\"}".to_vec());
    let hash = sha256_hex(&leave);
    assert_eq!(store.definition(&hash).unwrap(), None);
    store.put_definition(&hash, &leave).unwrap();
    store.put_definition(&hash, &leave).unwrap(); // storing it again is harmless
    assert_eq!(store.definition(&hash).unwrap(), Some(leave.clone()));
    assert!(matches!(store.put_definition(&"0".repeat(64), &leave), Err(StoreError::Invalid(_))));
}

#[test]
fn a_large_definition_stored_as_a_sled_blob_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // Far above sled's inline limit, so sled writes it to a blob file (which sled never syncs).
    let big: Vec<u8> = (0..600_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let hash = sha256_hex(&big);
    open(dir.path()).put_definition(&hash, &big).unwrap();
    let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
    assert!(blobs > 0, "sled stored the definition in a blob file");
    assert_eq!(open(dir.path()).definition(&hash).unwrap(), Some(big));
}

#[test]
fn an_append_without_events_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(matches!(store.append(append("c1", 0, vec![], vec![])), Err(StoreError::Invalid(_))));
    assert_eq!(store.head("c1").unwrap(), None);
}

#[test]
fn ids_with_a_nul_or_a_head_for_another_case_are_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(matches!(store.append(submit("c\0")), Err(StoreError::Invalid(_))));
    let mut a = submit("c1");
    a.head.case_id = "c2".into();
    assert!(matches!(store.append(a), Err(StoreError::Invalid(_))));
    let mut a = submit("c1");
    a.inbox[0].person = "bru\0no".into();
    assert!(matches!(store.append(a), Err(StoreError::Invalid(_))));
}

/// Run as a child process by `acknowledged_appends_survive_a_killed_process`: appends until
/// killed, printing each acknowledged case id.
#[test]
fn crash_child_appends_until_killed() {
    let Ok(dir) = std::env::var("CARIMBO_CRASH_CHILD_DIR") else { return };
    use std::io::Write;
    let store = Arc::new(open(Path::new(&dir)));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let case = format!("t{t}-{i}");
                    store.append(submit(&case)).unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {case}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|h| h.join().unwrap());
}

#[test]
fn acknowledged_appends_survive_a_killed_process() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_appends_until_killed", "--nocapture", "--test-threads=1"])
        .env("CARIMBO_CRASH_CHILD_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(case) = line.unwrap().strip_prefix("ACK ") {
            acked.push(case.to_string());
            if acked.len() == 300 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no final flush
    child.wait().unwrap();
    assert_eq!(acked.len(), 300);
    let store = open(dir.path());
    for case in &acked {
        assert_eq!(store.head(case).unwrap().map(|h| h.version), Some(1), "acknowledged case {case} is there");
    }
    assert!(store.verify_all().unwrap().is_clean());
}
