//! What only the sled store has (its journal and index, group commit, tampering below the
//! store, crashes), each test on a fresh temporary directory. The behaviour every store shares
//! is tested on sled and PostgreSQL alike in `store_contract.rs`.

use carimbo::store::{CaseHead, OutboxMessage, SledStore, Store, StoreError};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

use crate::store_builders as builders;
use builders::{append, entry, head, submit, t};

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
fn outbox_messages_their_updates_and_imported_cases_survive_an_index_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let (outbox, exported) = {
        let store = open(dir.path());
        for case in ["a", "b", "c"] {
            let mut a = submit(case);
            a.outbox = vec![OutboxMessage { kind: "decision".into(), payload: json!({"case": case}) }];
            store.append(a).unwrap();
        }
        store.outbox_update("a/1/0", &json!({"hook": "delivered"}), true, false).unwrap();
        store.outbox_update("b/1/0", &json!({"hook": "failing"}), false, true).unwrap();
        store.outbox_update("b/1/0", &json!({"hook": "gave up"}), true, true).unwrap();
        // An imported case (a restore) goes through the journal too.
        let other = tempfile::tempdir().unwrap();
        let imported = {
            let source = open(other.path());
            let mut a = submit("d");
            a.outbox = vec![OutboxMessage { kind: "decision".into(), payload: json!({"case": "d"}) }];
            a.idempotency_key = Some("k".into());
            source.append(a).unwrap();
            source.outbox_update("d/1/0", &json!({"hook": "delivered"}), true, false).unwrap();
            source.export_case("d").unwrap()
        };
        store.import_case(imported.clone()).unwrap();
        (store.outbox_since(t(-1_000_000), None, 100).unwrap(), imported)
    };
    assert_eq!(outbox.len(), 4);
    // The index is lost; the journal rebuilds all of it.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let store = SledStore::rebuild_index(dir.path()).unwrap();
    assert_eq!(store.outbox_since(t(-1_000_000), None, 100).unwrap(), outbox);
    let ids = |r: Vec<carimbo::store::OutboxRecord>| r.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(store.outbox_pending(None, 10).unwrap()), ["c/1/0"]);
    assert_eq!(ids(store.outbox_dead(10).unwrap()), ["b/1/0"]);
    assert_eq!(store.outbox_get("b/1/0").unwrap().unwrap().delivery, json!({"hook": "gave up"}));
    assert_eq!(store.export_case("d").unwrap(), exported);
    assert_eq!(store.idempotent_outcome("d", "k").unwrap(), Some(json!({"ok": true})));
    assert!(store.verify_all().unwrap().is_clean());
}

/// An append record as builds before the outbox wrote it (no `outbox` field) still opens.
#[test]
fn a_journal_from_before_the_outbox_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let at = t(0);
    let body = json!({"type": "submitted", "by": "ana"});
    let hash = carimbo::store::chain_hash("c1", 1, &at, carimbo::store::GENESIS_HASH, &body);
    let mut h = head("c1", &["ana"], at);
    (h.version, h.last_hash) = (1, hash.clone());
    let record = json!({
        "kind": "append",
        "case_id": "c1",
        "expected_version": 0,
        "events": [{"case_id": "c1", "seq": 1, "recorded_at": at, "prev_hash": carimbo::store::GENESIS_HASH, "hash": hash, "body": body}],
        "head": h,
        "inbox": [entry("bruno", "c1", "supervisor", at)],
        "idempotency": {"key": "k", "record": {"version": 1, "last_hash": hash, "outcome": {"ok": true}}}
    });
    let payload = serde_json::to_vec(&record).unwrap();
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    std::fs::write(dir.path().join("journal"), frame).unwrap();

    let store = open(dir.path());
    assert_eq!(store.head("c1").unwrap().unwrap().last_hash, hash);
    assert_eq!(store.inbox("bruno", None, 10).unwrap().entries.len(), 1);
    assert!(store.outbox_since(t(-1_000_000), None, 10).unwrap().is_empty());
    let mut a = append("c1", 1, vec![json!({"type": "approved"})], vec![]);
    a.outbox = vec![OutboxMessage { kind: "decision".into(), payload: json!({}) }];
    store.append(a).unwrap();
    assert_eq!(store.outbox_pending(None, 10).unwrap()[0].id, "c1/2/0");
    assert!(store.verify_all().unwrap().is_clean());
}

#[test]
fn a_second_open_of_a_store_in_use_says_another_process_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    // sled's lock is per process: a child process opens the same directory.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "store_sled::lock_child_opens_the_store", "--nocapture"])
        .env("CARIMBO_LOCK_CHILD_DIR", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("open in another process") && text.contains("stop that process first"), "{text}");
}

/// Run as a child process by the test above.
#[test]
fn lock_child_opens_the_store() {
    let Ok(dir) = std::env::var("CARIMBO_LOCK_CHILD_DIR") else { return };
    match SledStore::open(&dir) {
        Ok(_) => println!("OPENED"),
        Err(e) => println!("ERROR {e}"),
    }
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
        let first: carimbo::store::StoredEvent = serde_json::from_slice(&events.get([&b"c1\0"[..], &1u64.to_be_bytes()].concat()).unwrap().unwrap()).unwrap();
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
        .args(["--exact", "store_sled::crash_child_appends_until_killed", "--nocapture", "--test-threads=1"])
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
