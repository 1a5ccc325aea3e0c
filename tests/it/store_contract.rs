//! The behaviour every case store must have, run on each store: `sled::NAME` on a fresh
//! temporary directory, `postgres::NAME` in a fresh schema of the database named by
//! `CARIMBO_TEST_PG` (e.g. `host=127.0.0.1 user=carimbo password=carimbo dbname=carimbo_test`).
//! Without that variable the PostgreSQL cases print a SKIPPED line and pass.
//!
//! Store-specific checks live beside: `store_sled.rs` (sled's files, journal and group commit),
//! and the `pg_only` module below (tampering through SQL, two processes' worth of pools on one
//! database, migrations).

use carimbo::store::{Append, CaseExport, GENESIS_HASH, IntegrityReport, OutboxMessage, OutboxRecord, PgStore, SledStore, Store, StoreError, StoredEvent};
use chrono::Duration;
use serde_json::json;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};

// ---------------------------------------------------------------- the stores under test

enum Handle {
    Sled(Arc<SledStore>),
    Pg(Arc<PgStore>),
}

enum Place {
    Sled(tempfile::TempDir),
    Pg { conn: String, schema: String },
}

/// One store under test, with what it takes to close and reopen it.
struct Env {
    place: Place,
    handle: Option<Handle>,
}

impl Env {
    fn sled() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut env = Env { place: Place::Sled(dir), handle: None };
        env.reopen();
        env
    }

    /// A fresh schema in the test database, or `None` (and a SKIPPED line) without one.
    fn postgres(test: &str) -> Option<Env> {
        let conn = pg_conn(test)?;
        let schema = unique_schema(test);
        let mut env = Env { place: Place::Pg { conn, schema }, handle: None };
        env.reopen();
        Some(env)
    }

    /// Another fresh, empty store of the same kind (for export → import).
    fn another(&self, test: &str) -> Env {
        match &self.place {
            Place::Sled(_) => Env::sled(),
            Place::Pg { .. } => Env::postgres(test).expect("CARIMBO_TEST_PG is still set"),
        }
    }

    fn store(&self) -> Arc<dyn Store> {
        match self.handle.as_ref().expect("open") {
            Handle::Sled(s) => s.clone(),
            Handle::Pg(s) => s.clone(),
        }
    }

    /// Closes the store (every clone of it must be gone) and opens it again.
    fn reopen(&mut self) {
        self.handle = None;
        self.handle = Some(match &self.place {
            Place::Sled(dir) => Handle::Sled(Arc::new(SledStore::open(dir.path()).expect("the sled store opens"))),
            Place::Pg { conn, schema } => Handle::Pg(Arc::new(PgStore::open_in_schema(conn, schema).expect("the PostgreSQL store opens"))),
        });
    }

    fn verify_all(&self) -> IntegrityReport {
        match self.handle.as_ref().expect("open") {
            Handle::Sled(s) => s.verify_all().unwrap(),
            Handle::Pg(s) => s.verify_all().unwrap(),
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.handle = None;
        if let Place::Pg { conn, schema } = &self.place {
            drop_schema(conn, schema);
        }
    }
}

/// The test database's connection string, or `None` after printing why the test is skipped.
fn pg_conn(test: &str) -> Option<String> {
    match std::env::var("CARIMBO_TEST_PG") {
        Ok(conn) if !conn.trim().is_empty() => Some(conn),
        _ => {
            // Straight to the file descriptor: the test harness captures print macros only.
            let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test} on PostgreSQL: CARIMBO_TEST_PG is not set (see docs/storage.md)");
            None
        }
    }
}

fn unique_schema(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let short: String = test.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(32).collect::<String>().to_ascii_lowercase();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("t_{short}_{}_{}_{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn drop_schema(conn: &str, schema: &str) {
    if let Ok(mut c) = ::postgres::Client::connect(conn, ::postgres::NoTls) {
        let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
    }
}

/// Runs each listed case on both stores: `sled::case` and `postgres::case`.
macro_rules! on_every_store {
    ($($case:ident),* $(,)?) => {
        mod sled {
            $( #[test] fn $case() { super::$case(super::Env::sled()); } )*
        }
        mod postgres {
            $( #[test] fn $case() { if let Some(env) = super::Env::postgres(stringify!($case)) { super::$case(env); } } )*
        }
    };
}

on_every_store!(
    appended_events_read_back_in_order_with_a_valid_chain,
    an_append_at_a_stale_version_is_a_conflict_and_changes_nothing,
    creating_a_case_that_already_exists_is_a_conflict,
    appending_to_a_case_that_does_not_exist_is_not_found,
    a_retry_with_the_same_idempotency_key_returns_the_first_outcome_and_appends_nothing,
    concurrent_retries_with_one_idempotency_key_append_once,
    concurrent_creates_of_one_case_with_one_key_create_it_once,
    each_append_replaces_the_case_inbox_entries,
    an_inbox_is_paged_oldest_first_with_a_cursor,
    inbox_entries_at_the_same_moment_page_without_loss,
    cases_of_lists_a_party_s_cases_newest_first,
    a_party_s_cases_page_newest_first_with_a_cursor_and_ties_at_one_instant,
    of_32_threads_appending_at_one_version_exactly_one_wins,
    of_16_threads_creating_one_case_exactly_one_wins,
    of_32_threads_appending_to_their_own_cases_at_once_each_reads_its_own_head_and_every_chain_verifies,
    the_data_survives_close_and_reopen,
    verify_all_finds_a_clean_store_clean,
    definitions_round_trip_under_their_hash,
    a_large_definition_round_trips,
    publications_are_recorded_in_order_only_as_the_next_one_and_survive_reopen,
    of_8_threads_publishing_the_same_next_publication_exactly_one_wins,
    an_append_without_events_is_invalid,
    ids_with_a_nul_or_a_head_for_another_case_are_invalid,
    unicode_ids_and_bodies_round_trip_with_their_hashes,
    outbox_messages_commit_with_their_append_and_read_back,
    a_conflicting_append_or_an_idempotent_retry_writes_no_outbox_message,
    outbox_updates_settle_and_mark_dead_moving_messages_between_lists,
    unsettled_messages_of_one_kind_are_listed_alone_in_order_with_a_cursor,
    an_outbox_update_of_an_unknown_id_is_not_found,
    outbox_since_pages_in_at_then_id_order_with_a_cursor,
    outbox_messages_and_their_delivery_state_survive_reopen,
    heads_are_paged_in_case_id_order,
    definition_hashes_are_listed_sorted,
    an_export_imported_into_a_fresh_store_reads_back_equal,
    a_tampered_export_is_refused_naming_the_case_and_event_and_changes_nothing,
    importing_a_case_that_exists_is_a_conflict,
);

// ---------------------------------------------------------------- builders (and `builders`)

use crate::store_builders as builders;
use builders::{append, entry, head, submit, t};

fn message(kind: &str, n: u32) -> OutboxMessage {
    OutboxMessage { kind: kind.into(), payload: json!({"n": n, "text": "décision ✓"}) }
}

fn with_outbox(mut a: Append, messages: Vec<OutboxMessage>) -> Append {
    a.outbox = messages;
    a
}

fn ids(records: &[OutboxRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

// ---------------------------------------------------------------- the cases

fn appended_events_read_back_in_order_with_a_valid_chain(env: Env) {
    let store = env.store();
    let first = store.append(submit("c1")).unwrap();
    assert_eq!((first.version, first.replayed), (1, false));
    let second = store.append(append("c1", 1, vec![json!({"type": "approved"}), json!({"type": "completed"})], vec![])).unwrap();
    assert_eq!(second.version, 3);

    let events = store.events("c1").unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(events[0].prev_hash, GENESIS_HASH);
    assert_eq!(events[1].prev_hash, events[0].hash);
    assert_eq!(events[2].prev_hash, events[1].hash);
    assert_eq!(events[1].body, json!({"type": "approved"}));
    // The one hashing rule of both stores, re-computed from the fields.
    assert!(events.iter().all(|e| e.computed_hash() == e.hash));
    assert!(events.iter().all(|e| e.hash == carimbo::store::chain_hash(&e.case_id, e.seq, &e.recorded_at, &e.prev_hash, &e.body)));
    assert_eq!(first.last_hash, events[0].hash);
    assert_eq!(second.last_hash, events[2].hash);

    let h = store.head("c1").unwrap().unwrap();
    assert_eq!((h.version, h.last_hash.as_str()), (3, events[2].hash.as_str()));
    store.verify_case("c1").unwrap();
}

fn an_append_at_a_stale_version_is_a_conflict_and_changes_nothing(env: Env) {
    let store = env.store();
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

fn creating_a_case_that_already_exists_is_a_conflict(env: Env) {
    let store = env.store();
    store.append(submit("c1")).unwrap();
    assert!(matches!(store.append(submit("c1")), Err(StoreError::Conflict { expected: 0, found: 1, .. })));
    assert_eq!(store.events("c1").unwrap().len(), 1);
}

fn appending_to_a_case_that_does_not_exist_is_not_found(env: Env) {
    let store = env.store();
    assert!(matches!(store.append(append("ghost", 3, vec![json!({})], vec![])), Err(StoreError::NotFound(c)) if c == "ghost"));
    assert!(matches!(store.events("ghost"), Err(StoreError::NotFound(_))));
    assert!(matches!(store.verify_case("ghost"), Err(StoreError::NotFound(_))));
    assert_eq!(store.head("ghost").unwrap(), None);
}

fn a_retry_with_the_same_idempotency_key_returns_the_first_outcome_and_appends_nothing(env: Env) {
    let store = env.store();
    store.append(submit("c1")).unwrap();
    let mut approve = append("c1", 1, vec![json!({"type": "approved"})], vec![]);
    approve.idempotency_key = Some("req-7".into());
    approve.outcome = json!({"status": "approved", "version": 2});
    assert_eq!(store.idempotent_outcome("c1", "req-7").unwrap(), None);
    let first = store.append(approve.clone()).unwrap();
    assert!(!first.replayed);
    assert_eq!(store.idempotent_outcome("c1", "req-7").unwrap(), Some(json!({"status": "approved", "version": 2})));

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
    assert_eq!(store.idempotent_outcome("c3", "req-7").unwrap(), None);
}

fn concurrent_retries_with_one_idempotency_key_append_once(env: Env) {
    let store = env.store();
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

fn concurrent_creates_of_one_case_with_one_key_create_it_once(env: Env) {
    let store = env.store();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut a = submit("c1");
                a.idempotency_key = Some("submit-once".into());
                barrier.wait();
                store.append(a)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap().expect("every retry succeeds")).collect();
    assert_eq!(results.iter().filter(|r| !r.replayed).count(), 1);
    assert!(results.iter().all(|r| r.version == 1 && r.last_hash == results[0].last_hash));
    assert_eq!(store.events("c1").unwrap().len(), 1);
}

fn each_append_replaces_the_case_inbox_entries(env: Env) {
    let store = env.store();
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

fn an_inbox_is_paged_oldest_first_with_a_cursor(env: Env) {
    let store = env.store();
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
    assert!(matches!(store.inbox("bruno", Some("not hex"), 3), Err(StoreError::Cursor(_))));
    assert!(matches!(store.inbox("bruno", None, 0), Err(StoreError::Invalid(_))));
}

fn inbox_entries_at_the_same_moment_page_without_loss(env: Env) {
    let store = env.store();
    // Same instant, several cases, two steps and two seats of one case: ties break on case,
    // step and seat, in byte order ("B" < "a").
    let mut a = append("c-a", 0, vec![json!({"type": "submitted"})], vec![entry("eva", "c-a", "hr", t(5)), entry("eva", "c-a", "head", t(5))]);
    let mut second_seat = entry("eva", "c-a", "hr", t(5));
    second_seat.seat = "2".into();
    a.inbox.push(second_seat);
    store.append(a).unwrap();
    for case in ["c-B", "c-b", "c-ä"] {
        store.append(append(case, 0, vec![json!({"type": "submitted"})], vec![entry("eva", case, "hr", t(5))])).unwrap();
    }
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.inbox("eva", cursor.as_deref(), 2).unwrap();
        got.extend(page.entries.iter().map(|e| format!("{}/{}/{}", e.case_id, e.step, e.seat)));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(got, ["c-B/hr/1", "c-a/head/1", "c-a/hr/1", "c-a/hr/2", "c-b/hr/1", "c-ä/hr/1"]);
}

fn cases_of_lists_a_party_s_cases_newest_first(env: Env) {
    let store = env.store();
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
    let mut a = append("mid", 1, vec![json!({"type": "reassigned"})], vec![]);
    a.head = head("mid", &["ana"], t(30));
    store.append(a).unwrap();
    assert_eq!(ids("bruno", 10), ["old"]);
}

fn a_party_s_cases_page_newest_first_with_a_cursor_and_ties_at_one_instant(env: Env) {
    let store = env.store();
    // Seven cases, three of them opened at the same instant: pages of three walk all of them
    // once, in (opened_at, case id) descending order.
    let opened = [("a", 0), ("b", 10), ("c", 10), ("d", 10), ("e", 20), ("f", 30), ("g", 40)];
    for (case, minutes) in opened {
        let mut a = append(case, 0, vec![json!({"type": "submitted"})], vec![]);
        a.head = head(case, &["ana"], t(minutes));
        store.append(a).unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.cases_page("ana", after.as_deref(), 3).unwrap();
        pages += 1;
        seen.extend(page.cases.iter().map(|h| h.case_id.clone()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, ["g", "f", "e", "d", "c", "b", "a"]);
    assert_eq!(pages, 3);
    assert_eq!(store.cases_page("ana", None, 7).unwrap().next, None, "an exact last page says so");
    assert!(store.cases_page("nobody", None, 3).unwrap().cases.is_empty());
    for bad in ["zz", "00", "", "8000000000000000"] {
        assert!(matches!(store.cases_page("ana", Some(bad), 3), Err(StoreError::Cursor(_))), "{bad:?}");
    }
}

fn of_32_threads_appending_at_one_version_exactly_one_wins(env: Env) {
    let store = env.store();
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

/// Appends made at the same moment share commits (sled's journal sync, PostgreSQL's batched
/// transaction): each caller still gets its own answer, its own head right after, and one
/// stale append in the crowd is a conflict that takes nothing of the others with it.
fn of_32_threads_appending_to_their_own_cases_at_once_each_reads_its_own_head_and_every_chain_verifies(env: Env) {
    let store = env.store();
    store.append(submit("shared")).unwrap();
    let barrier = Arc::new(Barrier::new(32));
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let case = format!("own-{i:02}");
                for round in 0..5u64 {
                    let a = if round == 0 { submit(&case) } else { append(&case, round, vec![json!({"type": "commented", "round": round})], vec![]) };
                    let appended = store.append(a).expect("an append to a case of one's own");
                    assert_eq!(appended.version, round + 1);
                    let head = store.head(&case).unwrap().expect("the head right after the append");
                    assert_eq!((head.version, head.last_hash.as_str()), (appended.version, appended.last_hash.as_str()), "{case}: the head lags its append");
                }
                // Version 0 of a case that exists: refused, whoever it was committed beside.
                store.append(submit("shared"))
            })
        })
        .collect();
    for h in handles {
        assert!(matches!(h.join().unwrap(), Err(StoreError::Conflict { case_id, .. }) if case_id == "shared"));
    }
    for i in 0..32 {
        let case = format!("own-{i:02}");
        assert_eq!(store.events(&case).unwrap().len(), 5, "{case}");
        store.verify_case(&case).unwrap();
    }
    assert_eq!(store.events("shared").unwrap().len(), 1);
}

fn of_16_threads_creating_one_case_exactly_one_wins(env: Env) {
    let store = env.store();
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                let a = append("c1", 0, vec![json!({"type": "submitted", "by": format!("clerk-{i}")})], vec![entry("bruno", "c1", "s", t(i))]);
                barrier.wait();
                store.append(a)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert_eq!(results.iter().filter(|r| matches!(r, Err(StoreError::Conflict { expected: 0, found: 1, .. }))).count(), 15);
    assert_eq!(store.events("c1").unwrap().len(), 1);
    assert_eq!(store.inbox("bruno", None, 50).unwrap().entries.len(), 1, "only the winner's inbox entry");
    store.verify_case("c1").unwrap();
}

fn the_data_survives_close_and_reopen(mut env: Env) {
    let (events, head) = {
        let store = env.store();
        store.append(submit("c1")).unwrap();
        let mut a = append("c1", 1, vec![json!({"type": "approved"})], vec![entry("carla", "c1", "hr", t(3))]);
        a.idempotency_key = Some("k".into());
        store.append(a).unwrap();
        store.put_definition(&sha256_hex(b"{}"), b"{}").unwrap();
        (store.events("c1").unwrap(), store.head("c1").unwrap())
    };
    env.reopen();
    let store = env.store();
    assert_eq!(store.events("c1").unwrap(), events);
    assert_eq!(store.head("c1").unwrap(), head);
    assert_eq!(store.inbox("carla", None, 5).unwrap().entries[0].case_id, "c1");
    assert_eq!(store.cases_of("ana", 5).unwrap().len(), 1);
    assert_eq!(store.definition(&sha256_hex(b"{}")).unwrap().as_deref(), Some(&b"{}"[..]));
    let mut retry = append("c1", 1, vec![json!({"type": "approved"})], vec![]);
    retry.idempotency_key = Some("k".into());
    assert!(store.append(retry).unwrap().replayed);
    assert!(env.verify_all().is_clean());
}

fn verify_all_finds_a_clean_store_clean(env: Env) {
    let store = env.store();
    for i in 0..20 {
        let case = format!("case-{i}");
        store.append(submit(&case)).unwrap();
        if i % 2 == 0 {
            store.append(append(&case, 1, vec![json!({"type": "approved"})], vec![])).unwrap();
        }
    }
    let report = env.verify_all();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.cases_checked, report.events_checked), (20, 30));
}

fn definitions_round_trip_under_their_hash(env: Env) {
    let store = env.store();
    let leave = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/forms/absence-and-annual-leave.json")).unwrap();
    let hash = sha256_hex(&leave);
    assert_eq!(store.definition(&hash).unwrap(), None);
    store.put_definition(&hash, &leave).unwrap();
    store.put_definition(&hash, &leave).unwrap(); // storing it again is harmless
    assert_eq!(store.definition(&hash).unwrap(), Some(leave.clone()));
    assert!(matches!(store.put_definition(&"0".repeat(64), &leave), Err(StoreError::Invalid(_))));
}

fn publication(seq: u64, by: &str) -> carimbo::store::Publication {
    carimbo::store::Publication {
        seq,
        at: chrono::Utc::now(),
        by: by.to_string(),
        definitions: vec![carimbo::store::PublishedDefinition {
            kind: "form".into(),
            id: "absence-and-annual-leave".into(),
            version: format!("1.{seq}.0"),
            hash: "a".repeat(64),
            previous_version: Some("1.0.0".into()),
            previous_hash: Some("b".repeat(64)),
            changes: vec!["/version".into()],
            changes_truncated: false,
        }],
    }
}

fn publications_are_recorded_in_order_only_as_the_next_one_and_survive_reopen(mut env: Env) {
    let store = env.store();
    assert_eq!((store.last_publication().unwrap(), store.publications().unwrap()), (0, vec![]));
    // Not the next one: refused, nothing written.
    assert!(matches!(store.publish(&publication(2, "p032")), Err(StoreError::PublicationConflict { expected: 1, found: 0 })));
    store.publish(&publication(1, "p032")).unwrap();
    assert!(matches!(store.publish(&publication(1, "p033")), Err(StoreError::PublicationConflict { found: 1, .. })));
    store.publish(&publication(2, "p033")).unwrap();
    drop(store);
    env.reopen();
    let store = env.store();
    assert_eq!(store.last_publication().unwrap(), 2);
    assert_eq!(store.publications().unwrap(), vec![publication_like(1, "p032", &store), publication_like(2, "p033", &store)]);
}

/// The stored publication `seq`, checked to be the one written (the time is the store's copy).
fn publication_like(seq: u64, by: &str, store: &Arc<dyn Store>) -> carimbo::store::Publication {
    let stored = store.publications().unwrap().into_iter().find(|p| p.seq == seq).expect("stored");
    let mut expected = publication(seq, by);
    expected.at = stored.at;
    assert_eq!(stored, expected);
    expected
}

fn of_8_threads_publishing_the_same_next_publication_exactly_one_wins(env: Env) {
    let store = env.store();
    let barrier = Arc::new(Barrier::new(8));
    let outcomes: Vec<bool> = (0..8)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store.publish(&publication(1, &format!("p{i:03}"))).is_ok()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
    assert_eq!(store.publications().unwrap().len(), 1);
}

fn a_large_definition_round_trips(mut env: Env) {
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let hash = sha256_hex(&big);
    env.store().put_definition(&hash, &big).unwrap();
    env.reopen();
    assert_eq!(env.store().definition(&hash).unwrap(), Some(big));
}

fn an_append_without_events_is_invalid(env: Env) {
    let store = env.store();
    assert!(matches!(store.append(append("c1", 0, vec![], vec![])), Err(StoreError::Invalid(_))));
    assert_eq!(store.head("c1").unwrap(), None);
}

fn ids_with_a_nul_or_a_head_for_another_case_are_invalid(env: Env) {
    let store = env.store();
    assert!(matches!(store.append(submit("c\0")), Err(StoreError::Invalid(_))));
    let mut a = submit("c1");
    a.head.case_id = "c2".into();
    assert!(matches!(store.append(a), Err(StoreError::Invalid(_))));
    let mut a = submit("c1");
    a.inbox[0].person = "bru\0no".into();
    assert!(matches!(store.append(a), Err(StoreError::Invalid(_))));
    let mut a = submit("c1");
    a.idempotency_key = Some(String::new());
    assert!(matches!(store.append(a), Err(StoreError::Invalid(_))));
    assert_eq!(store.head("c1").unwrap(), None);
}

fn unicode_ids_and_bodies_round_trip_with_their_hashes(env: Env) {
    let store = env.store();
    let body = json!({"type": "submitted", "comment": "請假 — férias ✓", "n": 1.5, "big": 9007199254740993u64, "nested": {"z": 1, "a": [true, null]}});
    let mut a = append("個案-1", 0, vec![body.clone()], vec![entry("陳大文", "個案-1", "主管", t(0))]);
    a.head = head("個案-1", &["陳大文"], t(0));
    store.append(a).unwrap();
    let events = store.events("個案-1").unwrap();
    assert_eq!(events[0].body, body);
    assert_eq!(events[0].computed_hash(), events[0].hash);
    assert_eq!(store.inbox("陳大文", None, 5).unwrap().entries[0].step, "主管");
    assert_eq!(store.cases_of("陳大文", 5).unwrap()[0].case_id, "個案-1");
    store.verify_case("個案-1").unwrap();
}

fn outbox_messages_commit_with_their_append_and_read_back(env: Env) {
    let store = env.store();
    store.append(with_outbox(submit("c1"), vec![message("decision", 0), message("case.submitted", 1)])).unwrap();
    store
        .append(with_outbox(append("c1", 1, vec![json!({"type": "approved"}), json!({"type": "completed"})], vec![]), vec![message("case.completed", 2)]))
        .unwrap();
    store.append(append("c1", 3, vec![json!({"type": "noted"})], vec![])).unwrap(); // no messages
    let events = store.events("c1").unwrap();

    let first = store.outbox_get("c1/1/0").unwrap().expect("the first message is stored");
    assert_eq!(
        first,
        OutboxRecord {
            id: "c1/1/0".into(),
            case_id: "c1".into(),
            seq: 1,
            at: events[0].recorded_at,
            kind: "decision".into(),
            payload: json!({"n": 0, "text": "décision ✓"}),
            delivery: json!({}),
            settled: false,
            dead: false,
        }
    );
    // The id names the version the append produced (3: two events), `at` its recorded time.
    let completed = store.outbox_get("c1/3/0").unwrap().expect("stored");
    assert_eq!((completed.seq, completed.at, completed.kind.as_str()), (3, events[2].recorded_at, "case.completed"));
    assert_eq!(store.outbox_get("c1/2/0").unwrap(), None);
    assert_eq!(store.outbox_get("c1/4/0").unwrap(), None);

    assert_eq!(ids(&store.outbox_pending(None, 10).unwrap()), ["c1/1/0", "c1/1/1", "c1/3/0"]);
    assert_eq!(ids(&store.outbox_pending(None, 2).unwrap()), ["c1/1/0", "c1/1/1"]);
    assert_eq!(ids(&store.outbox_pending(Some("c1/1/1"), 2).unwrap()), ["c1/3/0"], "the next page after a cursor");
    assert!(matches!(store.outbox_pending(Some("c9/1/0"), 2), Err(StoreError::Cursor(_))), "a cursor the store never handed out");
    assert_eq!(ids(&store.outbox_since(t(-1_000_000), None, 10).unwrap()), ["c1/1/0", "c1/1/1", "c1/3/0"]);
    assert!(store.outbox_dead(10).unwrap().is_empty());
}

fn a_conflicting_append_or_an_idempotent_retry_writes_no_outbox_message(env: Env) {
    let store = env.store();
    store.append(submit("c1")).unwrap();
    let mut approve = with_outbox(append("c1", 1, vec![json!({"type": "approved"})], vec![]), vec![message("decision", 0)]);
    approve.idempotency_key = Some("k1".into());
    store.append(approve.clone()).unwrap();
    // The retry with the same key, and a stale append, each carry a message of their own.
    approve.outbox = vec![message("decision", 99)];
    assert!(store.append(approve).unwrap().replayed);
    let stale = with_outbox(append("c1", 1, vec![json!({"type": "rejected"})], vec![]), vec![message("case.rejected", 98)]);
    assert!(matches!(store.append(stale), Err(StoreError::Conflict { .. })));
    assert!(matches!(store.append(with_outbox(submit("c1"), vec![message("x", 97)])), Err(StoreError::Conflict { .. })));
    assert!(matches!(store.append(with_outbox(append("ghost", 1, vec![json!({})], vec![]), vec![message("x", 96)])), Err(StoreError::NotFound(_))));

    let all = store.outbox_since(t(-1_000_000), None, 100).unwrap();
    assert_eq!(ids(&all), ["c1/2/0"]);
    assert_eq!(all[0].payload["n"], 0, "the first attempt's message");
    assert_eq!(ids(&store.outbox_pending(None, 100).unwrap()), ["c1/2/0"]);
}

fn outbox_updates_settle_and_mark_dead_moving_messages_between_lists(env: Env) {
    let store = env.store();
    for case in ["a", "b", "c"] {
        store.append(with_outbox(submit(case), vec![message("decision", 0)])).unwrap();
    }
    assert_eq!(ids(&store.outbox_pending(None, 10).unwrap()), ["a/1/0", "b/1/0", "c/1/0"]);

    let delivered = json!({"https://hr.example/hook": {"attempts": 1, "status": 204}});
    store.outbox_update("a/1/0", &delivered, true, false).unwrap();
    let a = store.outbox_get("a/1/0").unwrap().unwrap();
    assert_eq!((&a.delivery, a.settled, a.dead), (&delivered, true, false));
    assert_eq!(ids(&store.outbox_pending(None, 10).unwrap()), ["b/1/0", "c/1/0"]);

    // One endpoint gave up, another still retries: dead, and still pending.
    let retrying = json!({"https://a.example": {"attempts": 9, "dead": true}, "https://b.example": {"attempts": 2}});
    store.outbox_update("b/1/0", &retrying, false, true).unwrap();
    assert_eq!(ids(&store.outbox_pending(None, 10).unwrap()), ["b/1/0", "c/1/0"]);
    assert_eq!(ids(&store.outbox_dead(10).unwrap()), ["b/1/0"]);
    // Given up everywhere: settled and dead, so listed as dead but no longer pending.
    store.outbox_update("b/1/0", &json!({"gave_up": true}), true, true).unwrap();
    assert_eq!(ids(&store.outbox_pending(None, 10).unwrap()), ["c/1/0"]);
    assert_eq!(ids(&store.outbox_dead(10).unwrap()), ["b/1/0"]);
    // An administrator re-queues the dead letter: pending again, no longer dead.
    store.outbox_update("b/1/0", &json!({}), false, false).unwrap();
    assert_eq!(ids(&store.outbox_pending(None, 10).unwrap()), ["b/1/0", "c/1/0"]);
    assert!(store.outbox_dead(10).unwrap().is_empty());
    // Updates change nothing else of the message.
    let b = store.outbox_get("b/1/0").unwrap().unwrap();
    assert_eq!((b.kind.as_str(), &b.payload, b.seq), ("decision", &json!({"n": 0, "text": "décision ✓"}), 1));
    assert_eq!(ids(&store.outbox_since(t(-1_000_000), None, 10).unwrap()), ["a/1/0", "b/1/0", "c/1/0"]);
}

fn unsettled_messages_of_one_kind_are_listed_alone_in_order_with_a_cursor(mut env: Env) {
    {
        let store = env.store();
        store.append(with_outbox(submit("a"), vec![message("decision", 0), message("mail.task", 1), message("mail.decided", 2)])).unwrap();
        store.append(with_outbox(submit("b"), vec![message("case.submitted", 0), message("mail.task", 1)])).unwrap();
        store.append(with_outbox(submit("c"), vec![message("mailbox.other", 0), message("mail.reminder", 1)])).unwrap();
        let mail = |after: Option<&str>, limit: usize| -> Vec<String> {
            store.outbox_pending_of_kind("mail.", after, limit).unwrap().into_iter().map(|r| r.id).collect()
        };
        assert_eq!(mail(None, 10), ["a/1/1", "a/1/2", "b/1/1", "c/1/1"], "only kinds starting with the prefix, in (at, id) order");
        assert_eq!(mail(None, 2), ["a/1/1", "a/1/2"], "the limit counts the listed kind only");
        assert_eq!(mail(Some("a/1/2"), 10), ["b/1/1", "c/1/1"], "the next page after a cursor");
        assert_eq!(mail(Some("b/1/0"), 10), ["b/1/1", "c/1/1"], "a message of another kind is a valid cursor");
        assert!(matches!(store.outbox_pending_of_kind("mail.", Some("z/1/0"), 2), Err(StoreError::Cursor(_))), "a cursor the store never handed out");
        // Settled messages leave the list; one re-queued comes back; other kinds are untouched.
        store.outbox_update("a/1/1", &json!({"mail": {"state": "delivered"}}), true, false).unwrap();
        store.outbox_update("b/1/1", &json!({"mail": {"attempts": 1}}), false, false).unwrap();
        assert_eq!(mail(None, 10), ["a/1/2", "b/1/1", "c/1/1"]);
        store.outbox_update("a/1/1", &json!({}), false, false).unwrap();
        assert_eq!(mail(None, 10), ["a/1/1", "a/1/2", "b/1/1", "c/1/1"]);
        assert_eq!(ids(&store.outbox_pending_of_kind("case.", None, 10).unwrap()), ["b/1/0"]);
        assert_eq!(store.outbox_pending(None, 10).unwrap().len(), 7, "the whole list is unchanged");
    }
    env.reopen();
    let store = env.store();
    assert_eq!(ids(&store.outbox_pending_of_kind("mail.", None, 10).unwrap()), ["a/1/1", "a/1/2", "b/1/1", "c/1/1"], "after reopening");
}

fn an_outbox_update_of_an_unknown_id_is_not_found(env: Env) {
    let store = env.store();
    store.append(with_outbox(submit("c1"), vec![message("decision", 0)])).unwrap();
    match store.outbox_update("c1/1/7", &json!({}), true, false) {
        Err(e @ StoreError::NotFound(_)) => {
            assert!(matches!(&e, StoreError::NotFound(id) if id == "c1/1/7"));
            assert!(e.to_string().contains("outbox message c1/1/7"), "{e}");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(store.outbox_update("nothing", &json!({}), true, false), Err(StoreError::NotFound(_))));
    assert_eq!(ids(&store.outbox_pending(None, 10).unwrap()), ["c1/1/0"]);
}

fn outbox_since_pages_in_at_then_id_order_with_a_cursor(env: Env) {
    let store = env.store();
    // Cases created so that id order and time order disagree ("z" first, "a" last), with
    // several messages per append (same `at`, ordered by id).
    for (i, case) in ["z", "m", "b", "a"].into_iter().enumerate() {
        store.append(with_outbox(submit(case), vec![message("decision", 0), message("case.submitted", 1)])).unwrap();
        if i % 2 == 0 {
            store.append(with_outbox(append(case, 1, vec![json!({"type": "approved"})], vec![]), vec![message("decision", 2)])).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let everything = store.outbox_since(t(-1_000_000), None, 1000).unwrap();
    assert_eq!(everything.len(), 10);
    let mut sorted = everything.clone();
    sorted.sort_by(|x, y| (x.at, &x.id).cmp(&(y.at, &y.id)));
    assert_eq!(everything, sorted, "ordered by (at, id)");
    assert_eq!(everything[0].id, "z/1/0");

    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.outbox_since(t(-1_000_000), cursor.as_deref(), 3).unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        cursor = Some(last.id.clone());
        paged.extend(page);
    }
    assert_eq!(paged, everything, "every message once, in order");

    // `since` is inclusive and combines with a cursor.
    let from = everything[4].at;
    let later: Vec<_> = everything.iter().filter(|r| r.at >= from).cloned().collect();
    assert_eq!(store.outbox_since(from, None, 1000).unwrap(), later);
    assert_eq!(store.outbox_since(from, Some(&later[0].id), 1000).unwrap(), later[1..].to_vec());
    // A cursor from before `since` starts at `since`.
    assert_eq!(store.outbox_since(from, Some(&everything[0].id), 1000).unwrap(), later);
    let after_all = everything.last().unwrap().at + Duration::seconds(1);
    assert!(store.outbox_since(after_all, None, 10).unwrap().is_empty());
    assert!(matches!(store.outbox_since(from, Some("no/such/message"), 10), Err(StoreError::Cursor(_))));
}

fn outbox_messages_and_their_delivery_state_survive_reopen(mut env: Env) {
    {
        let store = env.store();
        for case in ["a", "b", "c"] {
            store.append(with_outbox(submit(case), vec![message("decision", 0)])).unwrap();
        }
        store.outbox_update("a/1/0", &json!({"hook": "delivered"}), true, false).unwrap();
        store.outbox_update("b/1/0", &json!({"hook": "gave up"}), true, true).unwrap();
    }
    env.reopen();
    let store = env.store();
    let a = store.outbox_get("a/1/0").unwrap().unwrap();
    assert_eq!((&a.delivery, a.settled, a.dead), (&json!({"hook": "delivered"}), true, false));
    assert_eq!(ids(&store.outbox_pending(None, 10).unwrap()), ["c/1/0"]);
    assert_eq!(ids(&store.outbox_dead(10).unwrap()), ["b/1/0"]);
    assert_eq!(store.outbox_since(t(-1_000_000), None, 10).unwrap().len(), 3);
    // The next append's messages come after them.
    store.append(with_outbox(append("a", 1, vec![json!({"type": "approved"})], vec![]), vec![message("decision", 1)])).unwrap();
    assert_eq!(ids(&store.outbox_pending(None, 10).unwrap()), ["c/1/0", "a/2/0"]);
}

fn heads_are_paged_in_case_id_order(env: Env) {
    let store = env.store();
    // Byte order: "B" < "a" < "a0" < "b" < "ä".
    for case in ["b", "a0", "ä", "B", "a"] {
        store.append(submit(case)).unwrap();
    }
    store.append(append("a", 1, vec![json!({"type": "approved"})], vec![])).unwrap();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.heads(after.as_deref(), 2).unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.case_id.clone());
        seen.extend(page);
    }
    assert_eq!(seen.iter().map(|h| h.case_id.as_str()).collect::<Vec<_>>(), ["B", "a", "a0", "b", "ä"]);
    assert_eq!(seen[1].version, 2, "the current head");
    assert_eq!(seen[1], store.head("a").unwrap().unwrap());
    assert_eq!(store.heads(Some("a"), 10).unwrap().len(), 3, "after is exclusive");
    assert_eq!(store.heads(Some("aa"), 10).unwrap().len(), 2, "after need not be a case");
    assert!(store.heads(Some("ä"), 10).unwrap().is_empty());
    assert!(store.heads(None, 0).unwrap().is_empty());
}

fn definition_hashes_are_listed_sorted(env: Env) {
    let store = env.store();
    assert!(store.definition_hashes().unwrap().is_empty());
    let mut hashes = Vec::new();
    for bytes in [&b"{}"[..], b"[1]", b"{\"kind\": \"form\"}"] {
        let hash = sha256_hex(bytes);
        store.put_definition(&hash, bytes).unwrap();
        hashes.push(hash);
    }
    hashes.sort();
    assert_eq!(store.definition_hashes().unwrap(), hashes);
}

/// A few cases with everything a case can carry: several appends, inbox entries of several
/// people, idempotency keys, outbox messages with and without delivery state.
fn populate(store: &dyn Store) -> Vec<String> {
    let mut cases = Vec::new();
    for i in 0..6u32 {
        let case = format!("case-{i}");
        let mut first = with_outbox(submit(&case), vec![message("case.submitted", i)]);
        first.idempotency_key = Some(format!("submit-{i}"));
        first.outcome = json!({"case": case, "status": "open"});
        first.inbox.push(entry("carla", &case, "supervisor", t(i as i64)));
        store.append(first).unwrap();
        if i % 2 == 0 {
            let mut approve = append(
                &case,
                1,
                vec![json!({"type": "approved", "by": "bruno"}), json!({"type": "step_opened", "step": "hr"})],
                vec![entry("duarte", &case, "hr", t(10))],
            );
            approve.idempotency_key = Some(format!("approve-{i}"));
            approve.outbox = vec![message("decision", 10 + i), message("decision", 20 + i)];
            store.append(approve).unwrap();
        }
        if i % 3 == 0 {
            let version = store.head(&case).unwrap().unwrap().version;
            let mut done = with_outbox(append(&case, version, vec![json!({"type": "completed"})], vec![]), vec![message("case.completed", 30 + i)]);
            done.head.status = "completed".into();
            store.append(done).unwrap();
        }
        cases.push(case);
    }
    store.outbox_update("case-0/1/0", &json!({"hook": {"status": 204}}), true, false).unwrap();
    store.outbox_update("case-2/3/1", &json!({"hook": {"attempts": 12}}), true, true).unwrap();
    cases
}

fn an_export_imported_into_a_fresh_store_reads_back_equal(env: Env) {
    let source = env.store();
    let cases = populate(&*source);
    let target_env = env.another("an_export_imported_into_a_fresh_store_reads_back_equal_target");
    let target = target_env.store();

    let mut exported = Vec::new();
    assert_eq!(
        source
            .export_all(&mut |case| {
                exported.push(case);
                Ok(())
            })
            .unwrap(),
        cases.len() as u64
    );
    assert_eq!(exported.iter().map(|c| c.head.case_id.as_str()).collect::<Vec<_>>(), cases);
    for case in &exported {
        assert_eq!(case, &source.export_case(&case.head.case_id).unwrap(), "export_all and export_case agree");
        case.verify().unwrap();
        target.import_case(case.clone()).unwrap();
    }
    let c0 = &exported[0];
    assert_eq!((c0.events.len(), c0.inbox.len(), c0.idempotency.len(), c0.outbox.len()), (4, 0, 2, 4));
    assert_eq!(exported[1].inbox.len(), 2);

    for id in &cases {
        assert_eq!(target.export_case(id).unwrap(), source.export_case(id).unwrap());
        assert_eq!(target.events(id).unwrap(), source.events(id).unwrap());
        assert_eq!(target.head(id).unwrap(), source.head(id).unwrap());
        target.verify_case(id).unwrap();
    }
    assert_eq!(target.heads(None, 100).unwrap(), source.heads(None, 100).unwrap());
    for person in ["bruno", "carla", "duarte"] {
        assert_eq!(target.inbox(person, None, 100).unwrap(), source.inbox(person, None, 100).unwrap(), "{person}'s inbox");
    }
    assert_eq!(target.cases_of("ana", 100).unwrap(), source.cases_of("ana", 100).unwrap());
    let since = t(-1_000_000);
    assert_eq!(target.outbox_since(since, None, 100).unwrap(), source.outbox_since(since, None, 100).unwrap());
    assert_eq!(target.outbox_pending(None, 100).unwrap(), source.outbox_pending(None, 100).unwrap());
    assert_eq!(ids(&target.outbox_dead(100).unwrap()), ["case-2/3/1"]);
    assert_eq!(target.idempotent_outcome("case-3", "submit-3").unwrap(), Some(json!({"case": "case-3", "status": "open"})));

    // A late retry answers as the original store would: the version of the first attempt.
    let mut retry = append("case-0", 1, vec![json!({"type": "approved", "by": "bruno"})], vec![]);
    retry.idempotency_key = Some("approve-0".into());
    let answer = target.append(retry).unwrap();
    assert_eq!((answer.replayed, answer.version, answer.last_hash.as_str()), (true, 3, exported[0].events[2].hash.as_str()));
    // The restored case takes new acts, chained on the imported history.
    let next = target.append(with_outbox(append("case-1", 1, vec![json!({"type": "approved"})], vec![]), vec![message("decision", 1)])).unwrap();
    assert_eq!(next.version, 2);
    assert!(target.outbox_get("case-1/2/0").unwrap().is_some());
    target.verify_case("case-1").unwrap();
}

fn a_tampered_export_is_refused_naming_the_case_and_event_and_changes_nothing(env: Env) {
    let source = env.store();
    populate(&*source);
    let good = source.export_case("case-0").unwrap();
    let target_env = env.another("a_tampered_export_is_refused_target");
    let target = target_env.store();

    let mut changed_body = good.clone();
    changed_body.events[1].body["by"] = json!("brunO");
    let mut wrong_last_hash = good.clone();
    wrong_last_hash.head.last_hash = good.events[2].hash.clone();
    let mut gap = good.clone();
    gap.events.remove(1);
    let mut relinked = good.clone();
    relinked.events[2].prev_hash = good.events[0].hash.clone();
    relinked.events[2].hash = relinked.events[2].computed_hash();
    let mut moved_time = good.clone();
    moved_time.events[0].recorded_at += Duration::seconds(1);
    let mut short_head = good.clone();
    short_head.head.version = 3;
    let mut outbox_elsewhere = good.clone();
    outbox_elsewhere.outbox[0].at += Duration::seconds(1);
    let mut foreign_answer = good.clone();
    foreign_answer.idempotency[0].last_hash = "0".repeat(64);

    for (what, case, seq) in [
        ("a changed byte in an event body", changed_body, 2),
        ("a head whose last_hash is not the last event's", wrong_last_hash, 4),
        ("a missing event (a gap)", gap, 2),
        ("an event re-hashed onto another predecessor", relinked, 3),
        ("a changed recorded_at", moved_time, 1),
        ("a head claiming fewer events", short_head, 3),
        ("an outbox message moved in time", outbox_elsewhere, 1),
        ("an idempotency answer with another hash", foreign_answer, 3),
    ] {
        match target.import_case(case) {
            Err(StoreError::Corrupt { case_id, seq: got, reason }) => {
                assert_eq!((case_id.as_str(), got), ("case-0", seq), "{what}: {reason}");
                let message = StoreError::Corrupt { case_id, seq: got, reason }.to_string();
                assert!(message.contains("case-0") && message.contains(&format!("event {seq}")), "{what}: {message}");
            }
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
    }
    let mut other_case_inbox = good.clone();
    other_case_inbox.inbox.push(entry("eva", "case-9", "hr", t(0)));
    assert!(matches!(target.import_case(other_case_inbox), Err(StoreError::Invalid(m)) if m.contains("case-0")));
    let mut no_events = good.clone();
    no_events.events.clear();
    assert!(matches!(target.import_case(no_events), Err(StoreError::Invalid(_))));

    assert!(target.heads(None, 10).unwrap().is_empty(), "nothing was written");
    assert_eq!(target.head("case-0").unwrap(), None);
    assert!(target.outbox_since(t(-1_000_000), None, 10).unwrap().is_empty());
    assert!(target.inbox("bruno", None, 10).unwrap().entries.is_empty());
    assert_eq!(target.idempotent_outcome("case-0", "submit-0").unwrap(), None);
    target.import_case(good).unwrap();
    target.verify_case("case-0").unwrap();
}

fn importing_a_case_that_exists_is_a_conflict(env: Env) {
    let store = env.store();
    populate(&*store);
    let before = store.export_case("case-1").unwrap();
    match store.import_case(before.clone()) {
        Err(StoreError::Conflict { case_id, expected: 0, found }) => assert_eq!((case_id.as_str(), found), ("case-1", before.head.version)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    // Also when the import differs from what is stored (another history under the same id).
    let mut other: CaseExport = store.export_case("case-0").unwrap();
    other.head.case_id = "case-1".into();
    let rechained: Vec<StoredEvent> = {
        let mut prev = GENESIS_HASH.to_string();
        other
            .events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.case_id = "case-1".into();
                e.prev_hash = prev.clone();
                e.hash = e.computed_hash();
                prev = e.hash.clone();
                e
            })
            .collect()
    };
    other.head.last_hash = rechained.last().unwrap().hash.clone();
    other.events = rechained;
    other.inbox.clear();
    other.idempotency.clear();
    other.outbox.clear();
    other.verify().unwrap();
    assert!(matches!(store.import_case(other), Err(StoreError::Conflict { .. })));
    assert_eq!(store.export_case("case-1").unwrap(), before, "nothing changed");
}

// ---------------------------------------------------------------- PostgreSQL only

mod pg_only {
    use super::*;
    use carimbo::store::PgOptions;

    /// A PostgreSQL environment plus a direct client into its schema, to tamper with rows.
    fn pg(test: &str) -> Option<(Env, ::postgres::Client)> {
        let env = Env::postgres(test)?;
        let Place::Pg { conn, schema } = &env.place else { unreachable!() };
        let mut c = ::postgres::Client::connect(conn, ::postgres::NoTls).unwrap();
        c.batch_execute(&format!("SET search_path = \"{schema}\"")).unwrap();
        Some((env, c))
    }

    fn pg_store(env: &Env) -> Arc<PgStore> {
        match env.handle.as_ref().unwrap() {
            Handle::Pg(s) => s.clone(),
            Handle::Sled(_) => unreachable!(),
        }
    }

    fn three_events(store: &dyn Store, case: &str) {
        store.append(submit(case)).unwrap();
        store.append(append(case, 1, vec![json!({"type": "approved", "by": "bruno"})], vec![])).unwrap();
        store.append(append(case, 2, vec![json!({"type": "completed"})], vec![])).unwrap();
    }

    fn set_event(c: &mut ::postgres::Client, case: &str, seq: i64, text: &str) {
        let n = c
            .execute(
                "UPDATE events SET event = $3::text::json WHERE case_id = $1 AND seq = $2",
                &[&case as &(dyn ::postgres::types::ToSql + Sync), &seq, &text],
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    fn event_text(c: &mut ::postgres::Client, case: &str, seq: i64) -> String {
        c.query_one("SELECT event::text FROM events WHERE case_id = $1 AND seq = $2", &[&case as &(dyn ::postgres::types::ToSql + Sync), &seq]).unwrap().get(0)
    }

    #[test]
    fn a_changed_byte_in_a_stored_event_is_named_by_verify_case() {
        let Some((env, mut c)) = pg("a_changed_byte_in_a_stored_event_is_named_by_verify_case") else { return };
        three_events(&*env.store(), "c1");
        let text = event_text(&mut c, "c1", 2).replacen("approved", "approvee", 1);
        set_event(&mut c, "c1", 2, &text);
        match env.store().verify_case("c1") {
            Err(StoreError::Corrupt { case_id, seq, reason }) => {
                assert_eq!((case_id.as_str(), seq), ("c1", 2));
                assert!(reason.contains("hash"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        let report = env.verify_all();
        assert_eq!(report.corrupt.len(), 1);
        assert_eq!((report.corrupt[0].case_id.as_str(), report.corrupt[0].seq), ("c1", 2));
    }

    #[test]
    fn a_rewritten_event_with_a_recomputed_hash_breaks_the_next_link() {
        let Some((env, mut c)) = pg("a_rewritten_event_with_a_recomputed_hash_breaks_the_next_link") else { return };
        three_events(&*env.store(), "c1");
        let mut e: StoredEvent = serde_json::from_str(&event_text(&mut c, "c1", 2)).unwrap();
        e.body = json!({"type": "rejected"});
        e.hash = e.computed_hash();
        set_event(&mut c, "c1", 2, &serde_json::to_string(&e).unwrap());
        assert!(matches!(env.store().verify_case("c1"), Err(StoreError::Corrupt { seq: 3, reason, .. }) if reason.contains("prev_hash")));
    }

    #[test]
    fn a_removed_event_is_reported_as_a_gap() {
        let Some((env, mut c)) = pg("a_removed_event_is_reported_as_a_gap") else { return };
        three_events(&*env.store(), "c1");
        c.execute("DELETE FROM events WHERE case_id = 'c1' AND seq = 2", &[]).unwrap();
        assert!(matches!(env.store().verify_case("c1"), Err(StoreError::Corrupt { seq: 2, reason, .. }) if reason.contains("missing")));
    }

    #[test]
    fn a_corrupt_last_event_is_refused_at_open_and_listed_by_verify_all() {
        let Some((mut env, mut c)) = pg("a_corrupt_last_event_is_refused_at_open_and_listed_by_verify_all") else { return };
        three_events(&*env.store(), "c1");
        env.store().append(submit("c2")).unwrap();
        let text = event_text(&mut c, "c1", 3).replacen("completed", "Completed", 1);
        set_event(&mut c, "c1", 3, &text);
        // A head without events is found too.
        c.execute("DELETE FROM events WHERE case_id = 'c2'", &[]).unwrap();
        env.handle = None;
        let Place::Pg { conn, schema } = &env.place else { unreachable!() };
        match PgStore::open_in_schema(conn, schema) {
            Err(StoreError::Corrupt { case_id, seq: 3, .. }) => assert_eq!(case_id, "c1"),
            Err(other) => panic!("expected Corrupt, got {other:?}"),
            Ok(_) => panic!("a corrupt store must not open"),
        }
        let unverified = PgStore::open_with(conn, PgOptions { schema: Some(schema.clone()), check_heads: false, ..PgOptions::default() }).unwrap();
        env.handle = Some(Handle::Pg(Arc::new(unverified)));
        let report = env.verify_all();
        assert_eq!((report.cases_checked, report.events_checked), (2, 3));
        let found: Vec<_> = report.corrupt.iter().map(|c| (c.case_id.as_str(), c.seq)).collect();
        assert_eq!(found, [("c1", 3), ("c2", 1)], "{report:?}");
    }

    #[test]
    fn undecodable_event_text_is_reported_as_corrupt() {
        let Some((env, mut c)) = pg("undecodable_event_text_is_reported_as_corrupt") else { return };
        three_events(&*env.store(), "c1");
        set_event(&mut c, "c1", 1, "[1, 2, 3]");
        assert!(matches!(env.store().verify_case("c1"), Err(StoreError::Corrupt { seq: 1, reason, .. }) if reason.contains("decode")));
        assert!(matches!(env.store().events("c1"), Err(StoreError::Corrupt { seq: 1, .. })));
    }

    #[test]
    fn migrations_are_applied_once_and_recorded() {
        let Some((mut env, mut c)) = pg("migrations_are_applied_once_and_recorded") else { return };
        assert_eq!(pg_store(&env).schema_version().unwrap(), 4);
        env.reopen();
        env.reopen();
        let rows: Vec<(i32, String)> =
            c.query("SELECT version, name FROM schema_migrations ORDER BY version", &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(rows, [(1, "initial".to_string()), (2, "append function".to_string()), (3, "outbox".to_string()), (4, "publications".to_string())]);
        // A database from a newer carimbo is refused, not silently used.
        c.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')", &[]).unwrap();
        env.handle = None;
        let Place::Pg { conn, schema } = &env.place else { unreachable!() };
        let err = PgStore::open_in_schema(conn, schema).err().expect("refused");
        assert!(err.to_string().contains("newer than this build"), "{err}");
    }

    #[test]
    fn stores_opening_a_fresh_schema_together_all_open() {
        let Some(conn) = pg_conn("stores_opening_a_fresh_schema_together_all_open") else { return };
        let schema = unique_schema("fresh_together");
        let barrier = Arc::new(Barrier::new(6));
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (conn, schema, barrier) = (conn.clone(), schema.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    PgStore::open_in_schema(&conn, &schema).map(|s| s.schema_version().unwrap())
                })
            })
            .collect();
        let versions: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        drop_schema(&conn, &schema);
        assert!(versions.iter().all(|v| matches!(v, Ok(4))), "{versions:?}");
    }

    /// Two stores with their own pools on one schema stand for two carimbo processes.
    #[test]
    fn of_32_threads_on_two_stores_of_one_database_exactly_one_wins() {
        let Some((env, _c)) = pg("of_32_threads_on_two_stores_of_one_database_exactly_one_wins") else { return };
        let Place::Pg { conn, schema } = &env.place else { unreachable!() };
        let other: Arc<dyn Store> = Arc::new(PgStore::open_in_schema(conn, schema).unwrap());
        let stores = [env.store(), other];
        for round in 0..5u64 {
            let case = format!("c{round}");
            stores[0].append(submit(&case)).unwrap();
            let barrier = Arc::new(Barrier::new(32));
            let handles: Vec<_> = (0..32)
                .map(|i| {
                    let (store, barrier, case) = (stores[i % 2].clone(), barrier.clone(), case.clone());
                    std::thread::spawn(move || {
                        let a = append(&case, 1, vec![json!({"type": "approved", "by": format!("approver-{i}")})], vec![]);
                        barrier.wait();
                        store.append(a)
                    })
                })
                .collect();
            let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "round {round}: {results:?}");
            assert_eq!(results.iter().filter(|r| matches!(r, Err(StoreError::Conflict { .. }))).count(), 31);
            assert_eq!(stores[1].events(&case).unwrap().len(), 2);
            stores[1].verify_case(&case).unwrap();
        }
        assert!(env.verify_all().is_clean());
    }

    #[test]
    fn a_wrong_password_fails_at_open_with_postgres_s_message() {
        let Some(conn) = pg_conn("a_wrong_password_fails_at_open_with_postgres_s_message") else { return };
        let mut config: ::postgres::Config = conn.parse().unwrap();
        config.password("not-the-password");
        // Rebuild a connection string with the wrong password (same host, port, user, database).
        let host = match &config.get_hosts()[0] {
            ::postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            ::postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        let wrong = format!(
            "host={host} port={} user={} password=not-the-password dbname={}",
            config.get_ports().first().copied().unwrap_or(5432),
            config.get_user().unwrap_or("carimbo"),
            config.get_dbname().unwrap_or("carimbo_test")
        );
        let started = std::time::Instant::now();
        let Err(err) = PgStore::open(&wrong) else {
            let _ = writeln!(std::io::stderr().lock(), "note: the test server does not check passwords; nothing to test");
            return;
        };
        assert!(matches!(err, StoreError::Io(_)), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "fails at once, not after a pool timeout");
    }
}
