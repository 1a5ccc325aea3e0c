//! Behaviour of the sled case store, each test on a fresh temporary directory.

use carimbo::store::{Append, CaseHead, GENESIS_HASH, InboxEntry, SledStore, Store, StoreError};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Barrier};

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

/// Rewrites one stored event's raw bytes through sled itself (in the store's index), with the
/// store closed.
fn rewrite_event(dir: &Path, case: &str, seq: u64, edit: impl FnOnce(&mut Vec<u8>)) {
    let db = raw_index(dir);
    let events = db.open_tree("events").unwrap();
    let mut key = case.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    let mut value = events.get(&key).unwrap().expect("the event exists").to_vec();
    edit(&mut value);
    events.insert(key, value).unwrap();
    db.flush().unwrap();
}

/// The store's sled index, opened directly (waiting for a just-closed store to let go of it).
fn raw_index(dir: &Path) -> sled::Db {
    for _ in 0..200 {
        match sled::open(dir.join("index")) {
            Ok(db) => return db,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    panic!("the index stays locked");
}

/// Where the journal's records end (the file goes on with preallocated zeros).
fn journal_end(dir: &Path) -> u64 {
    let bytes = std::fs::read(dir.join("journal")).unwrap();
    bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i as u64 + 1)
}

fn three_events(dir: &Path, case: &str) {
    let store = open(dir);
    store.append(submit(case)).unwrap();
    store.append(append(case, 1, vec![json!({"type": "approved", "by": "bruno"})], vec![])).unwrap();
    store.append(append(case, 2, vec![json!({"type": "completed"})], vec![])).unwrap();
}

#[test]
fn one_store_is_shared_across_threads_as_a_trait_object() {
    fn shared<T: Send + Sync>() {}
    shared::<SledStore>();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(open(dir.path()));
    let other = store.clone();
    std::thread::spawn(move || other.append(submit("c1")).unwrap()).join().unwrap();
    assert_eq!(store.head("c1").unwrap().unwrap().version, 1, "the other thread's acknowledged append is visible");
}

#[test]
fn appended_events_read_back_in_order_with_a_valid_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = store.append(submit("c1")).unwrap();
    assert_eq!((first.version, first.replayed), (1, false));
    let second = store
        .append(append("c1", 1, vec![json!({"type": "approved"}), json!({"type": "completed"})], vec![]))
        .unwrap();
    assert_eq!(second.version, 3);

    let events = store.events("c1").unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(events[0].prev_hash, GENESIS_HASH);
    assert_eq!(events[1].prev_hash, events[0].hash);
    assert_eq!(events[2].prev_hash, events[1].hash);
    assert_eq!(events[1].body, json!({"type": "approved"}));
    assert!(events.iter().all(|e| e.computed_hash() == e.hash));
    assert_eq!(first.last_hash, events[0].hash);
    assert_eq!(second.last_hash, events[2].hash);

    let h = store.head("c1").unwrap().unwrap();
    assert_eq!((h.version, h.last_hash.as_str()), (3, events[2].hash.as_str()));
    store.verify_case("c1").unwrap();
}

#[test]
fn an_append_at_a_stale_version_is_a_conflict_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.append(submit("c1")).unwrap();
    store.append(append("c1", 1, vec![json!({"type": "approved"})], vec![])).unwrap();
    let before = (store.events("c1").unwrap(), store.head("c1").unwrap(), store.inbox("carla", None, 10).unwrap());

    let stale = append("c1", 1, vec![json!({"type": "rejected"})], vec![entry("carla", "c1", "head", t(5))]);
    match store.append(stale) {
        Err(StoreError::Conflict { case_id, expected: 1, found: 2 }) => assert_eq!(case_id, "c1"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let after = (store.events("c1").unwrap(), store.head("c1").unwrap(), store.inbox("carla", None, 10).unwrap());
    assert_eq!(before, after);
}

#[test]
fn creating_a_case_that_already_exists_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.append(submit("c1")).unwrap();
    assert!(matches!(store.append(submit("c1")), Err(StoreError::Conflict { expected: 0, found: 1, .. })));
    assert_eq!(store.events("c1").unwrap().len(), 1);
}

#[test]
fn appending_to_a_case_that_does_not_exist_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(matches!(store.append(append("ghost", 3, vec![json!({})], vec![])), Err(StoreError::NotFound(c)) if c == "ghost"));
    assert!(matches!(store.events("ghost"), Err(StoreError::NotFound(_))));
    assert_eq!(store.head("ghost").unwrap(), None);
}

#[test]
fn a_retry_with_the_same_idempotency_key_returns_the_first_outcome_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.append(submit("c1")).unwrap();
    let mut approve = append("c1", 1, vec![json!({"type": "approved"})], vec![]);
    approve.idempotency_key = Some("req-7".into());
    approve.outcome = json!({"status": "approved", "version": 2});
    let first = store.append(approve.clone()).unwrap();
    assert!(!first.replayed);

    // The retry carries a different outcome: the first one is returned, verbatim.
    approve.outcome = json!({"status": "something else"});
    let retry = store.append(approve).unwrap();
    assert!(retry.replayed);
    assert_eq!((retry.version, &retry.last_hash, &retry.outcome), (2, &first.last_hash, &json!({"status": "approved", "version": 2})));
    assert_eq!(store.events("c1").unwrap().len(), 2);

    // The same key on another case is another act.
    store.append(submit("c2")).unwrap();
    let mut other = append("c2", 1, vec![json!({"type": "approved"})], vec![]);
    other.idempotency_key = Some("req-7".into());
    assert!(!store.append(other).unwrap().replayed);
}

#[test]
fn concurrent_retries_with_one_idempotency_key_append_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    store.append(submit("c1")).unwrap();
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut a = append("c1", 1, vec![json!({"type": "approved"})], vec![]);
                a.idempotency_key = Some("double-click".into());
                barrier.wait();
                store.append(a)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap().expect("every retry succeeds")).collect();
    assert_eq!(results.iter().filter(|r| !r.replayed).count(), 1);
    assert!(results.iter().all(|r| r.version == 2 && r.last_hash == results[0].last_hash));
    assert_eq!(store.events("c1").unwrap().len(), 2);
}

#[test]
fn each_append_replaces_the_case_inbox_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.append(submit("c1")).unwrap();
    assert_eq!(store.inbox("bruno", None, 10).unwrap().entries.len(), 1);

    let parallel = vec![entry("carla", "c1", "hr", t(10)), entry("duarte", "c1", "hr", t(10))];
    store.append(append("c1", 1, vec![json!({"type": "approved"})], parallel)).unwrap();
    assert!(store.inbox("bruno", None, 10).unwrap().entries.is_empty());
    assert_eq!(store.inbox("carla", None, 10).unwrap().entries[0].step, "hr");
    assert_eq!(store.inbox("duarte", None, 10).unwrap().entries.len(), 1);

    store.append(append("c1", 2, vec![json!({"type": "completed"})], vec![])).unwrap();
    for person in ["bruno", "carla", "duarte"] {
        assert!(store.inbox(person, None, 10).unwrap().entries.is_empty(), "{person}'s inbox is empty");
    }
}

#[test]
fn an_inbox_is_paged_oldest_first_with_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Created out of order; "bruno2" shares a prefix with "bruno" and must not leak into it.
    for (i, minutes) in [30, 10, 50, 20, 40, 0, 60].into_iter().enumerate() {
        let case = format!("c{i}");
        let mut a = append(&case, 0, vec![json!({"type": "submitted"})], vec![entry("bruno", &case, "supervisor", t(minutes))]);
        a.inbox.push(entry("bruno2", &case, "supervisor", t(minutes)));
        store.append(a).unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.inbox("bruno", cursor.as_deref(), 3).unwrap();
        pages += 1;
        assert!(page.entries.len() <= 3);
        seen.extend(page.entries.iter().map(|e| (e.since, e.person.clone())));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [0, 10, 20, 30, 40, 50, 60].map(t));
    assert!(seen.iter().all(|(_, p)| p == "bruno"));
    // A full last page says it is the end.
    assert_eq!(store.inbox("bruno", None, 7).unwrap().next, None);
    assert!(matches!(store.inbox("bruno", Some("not hex"), 3), Err(StoreError::Invalid(_))));
}

#[test]
fn cases_of_lists_a_party_s_cases_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for (case, minutes, parties) in [("old", 0, &["ana", "bruno"][..]), ("new", 60, &["ana"][..]), ("mid", 30, &["ana", "bruno"][..])] {
        let mut a = append(case, 0, vec![json!({"type": "submitted"})], vec![]);
        a.head = head(case, parties, t(minutes));
        store.append(a).unwrap();
    }
    let ids = |person: &str, limit| store.cases_of(person, limit).unwrap().into_iter().map(|h| h.case_id).collect::<Vec<_>>();
    assert_eq!(ids("ana", 10), ["new", "mid", "old"]);
    assert_eq!(ids("ana", 2), ["new", "mid"]);
    assert_eq!(ids("bruno", 10), ["mid", "old"]);

    // A party added by a later append sees the case; one no longer listed does not.
    let mut a = append("new", 1, vec![json!({"type": "delegated"})], vec![]);
    a.head = head("new", &["ana", "carla"], t(60));
    store.append(a).unwrap();
    assert_eq!(ids("carla", 10), ["new"]);
    assert_eq!(ids("ana", 10), ["new", "mid", "old"]);
    assert!(ids("nobody", 10).is_empty());
}

#[test]
fn of_32_threads_appending_at_one_version_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    store.append(submit("c1")).unwrap();
    let barrier = Arc::new(Barrier::new(32));
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                let a = append("c1", 1, vec![json!({"type": "approved", "by": format!("approver-{i}")})], vec![]);
                barrier.wait();
                store.append(a)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    let conflicts = results.iter().filter(|r| matches!(r, Err(StoreError::Conflict { expected: 1, found: 2, .. }))).count();
    assert_eq!(conflicts, 31);
    let events = store.events("c1").unwrap();
    assert_eq!(events.len(), 2, "exactly one new event");
    store.verify_case("c1").unwrap();
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
        let db = raw_index(dir.path());
        let mut key = b"c1\0".to_vec();
        key.extend_from_slice(&2u64.to_be_bytes());
        db.open_tree("events").unwrap().remove(key).unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path());
    assert!(matches!(store.verify_case("c1"), Err(StoreError::Corrupt { seq: 2, reason, .. }) if reason.contains("missing")));
}

#[test]
fn a_last_event_that_no_longer_matches_its_head_is_refused_at_open_and_listed_by_verify_all() {
    let dir = tempfile::tempdir().unwrap();
    three_events(dir.path(), "c1");
    {
        let store = open(dir.path());
        store.append(submit("c2")).unwrap();
    }
    // The last event rewritten with a consistent hash of its own: only the head still knows.
    rewrite_event(dir.path(), "c1", 3, |v| {
        let mut e: carimbo::store::StoredEvent = serde_json::from_slice(v).unwrap();
        e.body = json!({"type": "rejected"});
        e.hash = e.computed_hash();
        *v = serde_json::to_vec(&e).unwrap();
    });
    match SledStore::open(dir.path()) {
        Err(StoreError::Corrupt { case_id, seq: 3, reason }) => {
            assert_eq!(case_id, "c1");
            assert!(reason.contains("last_hash"), "{reason}");
        }
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

#[test]
fn a_changed_byte_in_the_last_event_is_found_by_verify_case() {
    let dir = tempfile::tempdir().unwrap();
    three_events(dir.path(), "c1");
    rewrite_event(dir.path(), "c1", 3, |v| {
        let at = v.windows(9).position(|w| w == b"completed").unwrap();
        v[at] = b'C';
    });
    // The open check is structural (the head's last_hash is the last event's hash field); the
    // content is re-hashed by verify_case.
    let store = open(dir.path());
    assert!(matches!(store.verify_case("c1"), Err(StoreError::Corrupt { seq: 3, reason, .. }) if reason.contains("hash")));
}

#[test]
fn verify_all_finds_a_clean_store_clean() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..20 {
        let case = format!("case-{i}");
        store.append(submit(&case)).unwrap();
        if i % 2 == 0 {
            store.append(append(&case, 1, vec![json!({"type": "approved"})], vec![])).unwrap();
        }
    }
    let report = store.verify_all().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.cases_checked, report.events_checked), (20, 30));
}

#[test]
fn the_data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (events, head) = {
        let store = open(dir.path());
        store.append(submit("c1")).unwrap();
        let mut a = append("c1", 1, vec![json!({"type": "approved"})], vec![entry("carla", "c1", "hr", t(3))]);
        a.idempotency_key = Some("k".into());
        store.append(a).unwrap();
        store.put_definition(&sha256_hex(b"{}"), b"{}").unwrap();
        (store.events("c1").unwrap(), store.head("c1").unwrap())
    };
    let store = open(dir.path());
    assert_eq!(store.events("c1").unwrap(), events);
    assert_eq!(store.head("c1").unwrap(), head);
    assert_eq!(store.inbox("carla", None, 5).unwrap().entries[0].case_id, "c1");
    assert_eq!(store.cases_of("ana", 5).unwrap().len(), 1);
    assert_eq!(store.definition(&sha256_hex(b"{}")).unwrap().as_deref(), Some(&b"{}"[..]));
    let mut retry = append("c1", 1, vec![json!({"type": "approved"})], vec![]);
    retry.idempotency_key = Some("k".into());
    assert!(store.append(retry).unwrap().replayed);
    assert!(store.verify_all().unwrap().is_clean());
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
fn a_large_definition_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // Far above sled's inline limit, so sled keeps it in a blob file of its own.
    let big: Vec<u8> = (0..600_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let hash = sha256_hex(&big);
    open(dir.path()).put_definition(&hash, &big).unwrap();
    assert_eq!(open(dir.path()).definition(&hash).unwrap(), Some(big));
}

#[test]
fn the_index_is_rebuilt_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    three_events(dir.path(), "c1");
    let (events, head) = {
        let store = open(dir.path());
        store.append(submit("c2")).unwrap();
        store.put_definition(&sha256_hex(b"{}"), b"{}").unwrap();
        (store.events("c1").unwrap(), store.head("c1").unwrap())
    };
    // Even a corrupted index is no loss: the journal still holds the true history.
    rewrite_event(dir.path(), "c1", 2, |v| v[0] = b'#');
    let store = SledStore::rebuild_index(dir.path()).unwrap();
    assert_eq!(store.events("c1").unwrap(), events);
    assert_eq!(store.head("c1").unwrap(), head);
    assert_eq!(store.inbox("bruno", None, 10).unwrap().entries.len(), 1, "c2 waits for bruno; c1 no longer does");
    assert!(store.definition(&sha256_hex(b"{}")).unwrap().is_some());
    assert!(store.verify_all().unwrap().is_clean());
}

#[test]
fn appends_missing_from_the_index_are_applied_again_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.append(submit("c1")).unwrap();
    }
    let one_append = journal_end(dir.path());
    {
        let store = open(dir.path());
        store.append(append("c1", 1, vec![json!({"type": "approved"})], vec![])).unwrap();
    }
    // Put the index back to where it was after the first append, as a crash before sled wrote
    // its buffers would leave it; the journal has both appends.
    {
        let db = raw_index(dir.path());
        let events = db.open_tree("events").unwrap();
        events.remove([&b"c1\0"[..], &2u64.to_be_bytes()].concat()).unwrap();
        let heads = db.open_tree("heads").unwrap();
        let mut h: CaseHead = serde_json::from_slice(&heads.get("c1").unwrap().unwrap()).unwrap();
        let first: carimbo::store::StoredEvent =
            serde_json::from_slice(&events.get([&b"c1\0"[..], &1u64.to_be_bytes()].concat()).unwrap().unwrap()).unwrap();
        (h.version, h.last_hash) = (1, first.hash);
        heads.insert("c1", serde_json::to_vec(&h).unwrap()).unwrap();
        db.open_tree("meta").unwrap().insert("journal_applied", &one_append.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.head("c1").unwrap().unwrap().version, 2);
    assert_eq!(store.events("c1").unwrap().len(), 2);
    store.verify_case("c1").unwrap();
}

#[test]
fn a_torn_last_journal_record_is_cut_off_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.append(submit("c1")).unwrap();
    }
    let journal = dir.path().join("journal");
    let good = journal_end(dir.path());
    // Half a frame after the last record, as a power loss in the middle of a write leaves it.
    let f = std::fs::OpenOptions::new().write(true).open(&journal).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[200, 1, 0, 0, 1, 2, 3, 4, b'{', b'"'], good).unwrap();
    drop(f);
    let store = open(dir.path());
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), good);
    assert!(dir.path().join(format!("journal.torn-at-{good}")).exists(), "the cut-off bytes are kept");
    assert_eq!(store.append(append("c1", 1, vec![json!({"type": "approved"})], vec![])).unwrap().version, 2);
    assert!(store.verify_all().unwrap().is_clean());
}

#[test]
fn a_damaged_journal_record_is_reported_by_verify_all() {
    let dir = tempfile::tempdir().unwrap();
    three_events(dir.path(), "c1");
    let journal = dir.path().join("journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    let at = bytes.windows(8).position(|w| w == b"approved").unwrap();
    bytes[at] = b'A';
    std::fs::write(&journal, bytes).unwrap();
    // The index applied past the damage, so it opens; the full check finds it.
    let store = open(dir.path());
    let report = store.verify_all().unwrap();
    assert!(report.corrupt.is_empty());
    assert_eq!(report.store_problems.len(), 1, "{report:?}");
    assert!(report.store_problems[0].contains("journal is damaged"));
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

#[test]
fn many_clients_submitting_and_approving_never_see_a_spurious_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let handles: Vec<_> = (0..32)
        .map(|c| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let case = format!("c{c}-{i}");
                    let mut a = submit(&case);
                    a.idempotency_key = Some(format!("submit-{case}"));
                    assert_eq!(store.append(a).unwrap().version, 1);
                    let mut b = append(&case, 1, vec![json!({"type": "approved"})], vec![]);
                    b.idempotency_key = Some(format!("approve-{case}"));
                    let approved = store.append(b).unwrap_or_else(|e| panic!("approving {case}: {e}"));
                    assert_eq!((approved.version, approved.replayed), (2, false));
                    assert_eq!(store.head(&case).unwrap().unwrap().version, 2, "{case} reads its own write");
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let report = store.verify_all().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.events_checked, 32 * 25 * 2);
}
