//! `PgStore`: the case store on PostgreSQL, for several carimbo processes sharing one database.
//!
//! Same trait, same guarantees, same hashes as `SledStore` (the chain hash is `store::chain_hash`),
//! so a case written by one store verifies with the rules of the other.
//!
//! Schema (see `postgres/0001_initial.sql`): `events (case_id, seq)`, `heads (case_id)`,
//! `inbox (person, since_ms, case_id, step, seat)`, `parties (person, opened_ms, case_id)`,
//! `idempotency (case_id, key)`, `definitions (hash)`, `outbox (id)` (migration 3, with partial
//! indexes of unsettled and dead messages), `publications (seq)` (migration 4), and `schema_migrations (version)`. Migrations
//! are embedded in the binary and applied at open, one transaction each, under an advisory lock so
//! that processes starting together apply each migration once.
//!
//! An append is one statement, `carimbo_append_outbox` (migration 3: `carimbo_append` of
//! migration 2 plus the outbox messages, when it wrote), after one unlocked read of the head.
//! The events are hashed in Rust against the head read; the function takes the case's row lock
//! (`SELECT … FOR UPDATE`) and writes only if the head is still that version and hash. A create
//! inserts the head with `ON CONFLICT DO NOTHING`, so of two creators the second waits for the
//! first and then sees the case exist. Two appends at one version therefore serialize on that
//! row: exactly one commits, the other gets `Conflict` (or, with the same idempotency key, the
//! first one's result). Appends made at the same moment share one transaction and so one WAL
//! flush (`postgres/group.rs`: group commit); an append alone is its own statement outside any
//! transaction block. Ids compare as bytes (`COLLATE "C"`), so inbox pages and case lists come
//! in the sled store's order, and inbox cursors have the sled store's format.
//!
//! Durability: every connection runs with `synchronous_commit = on`, so a commit returns only
//! after its WAL record is flushed (and PostgreSQL answers a statement only after its implicit
//! transaction has committed); PostgreSQL's own group commit shares one WAL flush between
//! concurrent commits. `open` refuses a server running with `fsync = off`.

use super::checks::{ChainCheck, validate};
use super::codec::{IdempotencyRecord, check_definition_hash, decode_event, decode_head, decode_idempotency, inbox_cursor, parse_inbox_cursor};
use super::{
    Append, Appended, CaseExport, CaseHead, CasesPage, CorruptCase, GENESIS_HASH, IdempotencyExport, InboxEntry, InboxPage, IntegrityReport, OutboxRecord,
    Publication, Store, StoreError, StoredEvent, chain_hash, outbox_records,
};
use ::postgres::types::Type;
use ::postgres::{Client, IsolationLevel, NoTls, Row, Transaction};
use chrono::{DateTime, SubsecRound, Utc};
use r2d2_postgres::PostgresConnectionManager;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::str::FromStr;
use std::time::Duration;

mod group;

/// The schema migrations, in order: (version, name, SQL). Never edit a released one; add the next.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial", include_str!("postgres/0001_initial.sql")),
    (2, "append function", include_str!("postgres/0002_append_function.sql")),
    (3, "outbox", include_str!("postgres/0003_outbox.sql")),
    (4, "publications", include_str!("postgres/0004_publications.sql")),
];

/// The columns of an `OutboxRecord`, in the order `outbox_row` reads them.
const OUTBOX_COLUMNS: &str = "id, case_id, seq, at, kind, payload::text, delivery::text, settled, dead";

/// Cases exported per round of `export_all`.
const EXPORT_PAGE: i64 = 500;

/// How to open a `PgStore`.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// A schema of its own (created if missing) instead of the connection's search path: lets
    /// several stores, such as parallel tests, share one database.
    pub schema: Option<String>,
    /// Connections kept by this process (each concurrent store call holds one).
    pub pool_size: u32,
    /// Re-check each case head against its last event at open (as `SledStore::open` does).
    pub check_heads: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions { schema: None, pool_size: 16, check_heads: true }
    }
}

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
type Conn = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// The PostgreSQL case store. One per process, shared with `Arc`; any number of processes may
/// open the same database (and schema) at once.
pub struct PgStore {
    pool: Pool,
    schema: Option<String>,
    /// Appends waiting to share a commit.
    group: group::Group<PreparedAppend, Result<Appended, StoreError>>,
}

impl PgStore {
    /// Connects with a libpq-style string (`host=… user=… dbname=…`) or a `postgres://` URL,
    /// applies the schema migrations this build knows and checks the case heads.
    pub fn open(conn: &str) -> Result<Self, StoreError> {
        Self::open_with(conn, PgOptions::default())
    }

    /// `open` inside `schema` (created if missing).
    pub fn open_in_schema(conn: &str, schema: &str) -> Result<Self, StoreError> {
        Self::open_with(conn, PgOptions { schema: Some(schema.to_string()), ..PgOptions::default() })
    }

    pub fn open_with(conn: &str, options: PgOptions) -> Result<Self, StoreError> {
        let mut config = ::postgres::Config::from_str(conn).map_err(|e| StoreError::Io(format!("invalid PostgreSQL connection string: {e}")))?;
        if let Some(schema) = &options.schema {
            check_schema_name(schema)?;
        }
        // Session settings travel in the startup packet: no extra round trip per connection.
        let mut settings = config.get_options().map(str::to_string).unwrap_or_default();
        settings.push_str(" -c synchronous_commit=on");
        if let Some(schema) = &options.schema {
            settings.push_str(&format!(" -c search_path={schema}"));
        }
        config.options(settings.trim());
        if config.get_application_name().is_none() {
            config.application_name("carimbo");
        }
        config.connect_timeout(Duration::from_secs(10));

        // One direct connection first: a wrong address or password fails here, at once, with
        // PostgreSQL's own message (the pool would retry until its timeout).
        let mut client = config.connect(NoTls).map_err(|e| pg_err("cannot connect to PostgreSQL", e))?;
        let fsync: String = client.query_one("SHOW fsync", &[]).map_err(|e| pg_err("SHOW fsync", e))?.get(0);
        if fsync != "on" {
            return Err(StoreError::Io(
                "the PostgreSQL server runs with fsync = off, so a commit is not durable; carimbo refuses to acknowledge acts on it".into(),
            ));
        }
        migrate(&mut client, options.schema.as_deref())?;
        drop(client);

        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            // A broken connection is noticed by `is_closed`; a test query per checkout would
            // cost one round trip per store call.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(30))
            .build(manager)
            .map_err(|e| StoreError::Io(format!("cannot open a PostgreSQL connection pool: {e}")))?;
        let store = PgStore { pool, schema: options.schema, group: group::Group::default() };
        if options.check_heads {
            store.check_heads()?;
        }
        Ok(store)
    }

    /// The schema this store lives in, when it was opened with one.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The highest schema migration applied to the database.
    pub fn schema_version(&self) -> Result<i32, StoreError> {
        let mut c = self.conn()?;
        let row = c.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[]).map_err(|e| pg_err("reading schema_migrations", e))?;
        Ok(row.get(0))
    }

    fn conn(&self) -> Result<Conn, StoreError> {
        self.pool.get().map_err(|e| StoreError::Io(format!("no PostgreSQL connection: {e}")))
    }

    /// Runs a statement that may safely be sent twice (a read, an idempotent write) and returns
    /// the connection with its result. A pooled connection can have died while idle (the
    /// database restarted, an idle timeout): the client learns it only on use, and then the
    /// statement is sent again on another connection, until one works or the pool has been
    /// tried through.
    fn live<T>(&self, mut f: impl FnMut(&mut Client) -> Result<T, ::postgres::Error>) -> Result<(Conn, T), StoreError> {
        let mut dead = 0;
        loop {
            let mut c = self.conn()?;
            match f(&mut c) {
                Ok(v) => return Ok((c, v)),
                // Dropped here: r2d2 discards a closed connection instead of returning it.
                Err(_) if c.is_closed() && dead <= self.pool.max_size() => dead += 1,
                Err(e) => return Err(pg_err("reading", e)),
            }
        }
    }

    fn read<T>(&self, f: impl FnMut(&mut Client) -> Result<T, ::postgres::Error>) -> Result<T, StoreError> {
        self.live(f).map(|(_, v)| v)
    }

    /// Re-computes the hash chain of every case and checks each head against its log, in one
    /// snapshot, in one pass over the events (read through a cursor, so memory stays flat).
    pub fn verify_all(&self) -> Result<IntegrityReport, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().map_err(|e| pg_err("BEGIN", e))?;
        tx.batch_execute(
            "DECLARE carimbo_ev NO SCROLL CURSOR FOR SELECT case_id, seq, event::text FROM events ORDER BY case_id, seq;
             DECLARE carimbo_hd NO SCROLL CURSOR FOR SELECT case_id, head::text FROM heads ORDER BY case_id;",
        )
        .map_err(|e| pg_err("declaring the verification cursors", e))?;
        let mut events = Cursor::new("carimbo_ev");
        let mut heads = Cursor::new("carimbo_hd");
        let mut report = IntegrityReport::default();
        let mut current: Option<ChainCheck> = None;
        while let Some(row) = events.next(&mut tx)? {
            report.events_checked += 1;
            let case_id: String = row.get(0);
            let seq: i64 = row.get(1);
            let text: String = row.get(2);
            if current.as_ref().is_none_or(|c| c.case_id() != case_id) {
                if let Some(chain) = current.take() {
                    settle_case(&mut tx, chain, &mut heads, &mut report)?;
                }
                current = Some(ChainCheck::new(case_id));
            }
            current.as_mut().expect("set above").push(seq as u64, text.as_bytes());
        }
        if let Some(chain) = current.take() {
            settle_case(&mut tx, chain, &mut heads, &mut report)?;
        }
        heads_without_events(&mut tx, &mut heads, None, &mut report)?;
        tx.commit().map_err(|e| pg_err("COMMIT", e))?;
        Ok(report)
    }

    /// The check at open: each head's last event exists, hashes to what it claims, and that is
    /// the head's `last_hash`.
    fn check_heads(&self) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().map_err(|e| pg_err("BEGIN", e))?;
        tx.batch_execute(
            "DECLARE carimbo_last NO SCROLL CURSOR FOR
               SELECT h.case_id, h.version, h.last_hash, e.event::text
               FROM heads h LEFT JOIN events e ON e.case_id = h.case_id AND e.seq = h.version
               ORDER BY h.case_id",
        )
        .map_err(|e| pg_err("declaring the head check cursor", e))?;
        let mut rows = Cursor::new("carimbo_last");
        while let Some(row) = rows.next(&mut tx)? {
            let case_id: String = row.get(0);
            let version = row.get::<_, i64>(1) as u64;
            let last_hash: String = row.get(2);
            let corrupt = |reason: String| StoreError::Corrupt { case_id: case_id.clone(), seq: version, reason };
            let Some(text) = row.get::<_, Option<String>>(3) else {
                return Err(corrupt(format!("the case head names event {version} but the log has no such event")));
            };
            let event = decode_event(&case_id, version, &text)?;
            if event.computed_hash() != event.hash {
                return Err(corrupt("the event's content does not match its hash".into()));
            }
            if event.hash != last_hash {
                return Err(corrupt("the case head's last_hash is not the hash of the last event".into()));
            }
        }
        tx.commit().map_err(|e| pg_err("COMMIT", e))?;
        Ok(())
    }

    /// The append hashed against the head read (version, last hash, earlier result under the
    /// idempotency key), ready for `carimbo_append_outbox`; or its answer already, when the
    /// read settles it (a replay, a conflict, no such case).
    fn prepare(a: &Append, read: &Row) -> Result<Prepared, StoreError> {
        let case = a.case_id.as_str();
        let recorded_at = Utc::now().trunc_subsecs(6);
        if let Some(record) = read.get::<_, Option<String>>(2) {
            return replayed(case, &record).map(Prepared::Answered);
        }
        let current = read.get::<_, Option<i64>>(0).map(|v| v as u64);
        // The head to chain from (the genesis hash for a new case). The statement locks the
        // row and writes only if the head is still this one.
        let (found, prev_hash) = match (a.expected_version, current) {
            (0, None) => (0, GENESIS_HASH.to_string()),
            (_, None) => return Err(StoreError::NotFound(case.to_string())),
            (expected, Some(found)) if found != expected => {
                return Err(StoreError::Conflict { case_id: case.to_string(), expected, found });
            }
            (_, Some(found)) => (found, read.get::<_, Option<String>>(1).unwrap_or_default()),
        };
        let mut prev = prev_hash.clone();
        let mut seqs = Vec::with_capacity(a.events.len());
        let mut docs = Vec::with_capacity(a.events.len());
        for (i, body) in a.events.iter().enumerate() {
            let seq = found + 1 + i as u64;
            let hash = chain_hash(case, seq, &recorded_at, &prev, body);
            let event = StoredEvent { case_id: case.to_string(), seq, recorded_at, prev_hash: prev, hash: hash.clone(), body: body.clone() };
            seqs.push(seq as i64);
            docs.push(encode(&event)?);
            prev = hash;
        }
        let version = found + a.events.len() as u64;
        let mut head = a.head.clone();
        head.version = version;
        head.last_hash = prev.clone();
        let record = match &a.idempotency_key {
            Some(_) => Some(encode(&IdempotencyRecord { version, last_hash: prev.clone(), outcome: a.outcome.clone() })?),
            None => None,
        };
        let outbox = outbox_records(case, version, recorded_at, &a.outbox);
        let mut p = PreparedAppend {
            case: a.case_id.clone(),
            expected: a.expected_version as i64,
            prev_hash,
            version: version as i64,
            last_hash: prev,
            status: head.status.clone(),
            form_id: head.form_id.clone(),
            opened_at: head.opened_at,
            updated_at: head.updated_at,
            head_doc: encode(&head)?,
            seqs,
            docs,
            inbox: Inbox::default(),
            parties: head.parties.clone(),
            opened_ms: head.opened_at.timestamp_millis(),
            key: a.idempotency_key.clone(),
            record,
            recorded_at,
            out_ids: outbox.iter().map(|m| m.id.clone()).collect(),
            out_kinds: outbox.iter().map(|m| m.kind.clone()).collect(),
            out_payloads: outbox.iter().map(|m| encode(&m.payload)).collect::<Result<Vec<_>, _>>()?,
            outcome: a.outcome.clone(),
        };
        p.parties.sort_unstable();
        p.parties.dedup();
        p.inbox = Inbox::of(&a.inbox)?;
        Ok(Prepared::Ready(Box::new(p)))
    }

    /// Appends made at the same moment, in one transaction (`group`): in case-id order, so two
    /// batches take row locks in the same order and cannot deadlock. When a statement fails
    /// (the transaction is then aborted and nothing of it is written) every append of the
    /// batch is made again on its own, so the failure reaches only its own caller. When the
    /// commit itself fails, whether it reached the disk is not known: every caller gets the
    /// error and nothing is sent again.
    fn commit_batch(&self, batch: &[&PreparedAppend]) -> Vec<Result<Appended, StoreError>> {
        if batch.len() == 1 {
            return vec![self.append_alone(batch[0])];
        }
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by(|&x, &y| batch[x].case.cmp(&batch[y].case));
        // BEGIN also proves the pooled connection alive (one that died idle is replaced).
        let mut c = match self.live(|c| c.batch_execute("BEGIN")) {
            Ok((c, ())) => c,
            Err(e) => return batch.iter().map(|_| Err(StoreError::Io(e.to_string()))).collect(),
        };
        let mut outcomes: Vec<Option<Result<Appended, StoreError>>> = batch.iter().map(|_| None).collect();
        for &i in &order {
            match c.query_typed_one(APPEND_SQL, &batch[i].params()) {
                Ok(row) => outcomes[i] = Some(batch[i].answer(&row)),
                Err(_) => {
                    if !c.is_closed() {
                        let _ = c.batch_execute("ROLLBACK");
                    }
                    drop(c);
                    return batch.iter().map(|p| self.append_alone(p)).collect();
                }
            }
        }
        if let Err(e) = c.batch_execute("COMMIT") {
            let why = match pg_err("committing a batch of appends", e) {
                StoreError::Io(why) => why,
                other => other.to_string(),
            };
            return batch.iter().map(|_| Err(StoreError::Io(why.clone()))).collect();
        }
        outcomes.into_iter().map(|o| o.unwrap_or_else(|| Err(StoreError::Io("an append of the batch got no answer".into())))).collect()
    }

    /// One append as its own statement, outside any transaction block: PostgreSQL commits it
    /// before answering, and with synchronous_commit on its WAL is flushed by then. Sent again
    /// on another connection when the pooled one turns out dead: the version check makes a
    /// second send harmless (a first one that did commit makes it a `Conflict`).
    fn append_alone(&self, p: &PreparedAppend) -> Result<Appended, StoreError> {
        let mut dead = 0;
        loop {
            let mut c = self.conn()?;
            match c.query_typed_one(APPEND_SQL, &p.params()) {
                Ok(row) => return p.answer(&row),
                Err(_) if c.is_closed() && dead <= self.pool.max_size() => dead += 1,
                Err(e) if e.code() == Some(&::postgres::error::SqlState::UNIQUE_VIOLATION) => {
                    return Err(StoreError::Corrupt {
                        case_id: p.case.clone(),
                        seq: p.expected as u64 + 1,
                        reason: format!("the case head says version {} but a later event already exists ({e})", p.expected),
                    });
                }
                Err(e) => return Err(pg_err("appending", e)),
            }
        }
    }
}

/// The one statement of an append (migration 3): locks the case's head row, checks it is still
/// the version and hash the events were chained from, writes.
const APPEND_SQL: &str = "SELECT outcome, found_version, replay FROM carimbo_append_outbox($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::json, $11, $12,
                                                           $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)";

/// What the head read settled, or the append ready for its statement.
enum Prepared {
    Answered(Appended),
    Ready(Box<PreparedAppend>),
}

/// The case's inbox entries as columns: one per key, the last given wins, as in the sled store.
#[derive(Default)]
struct Inbox {
    person: Vec<String>,
    since: Vec<i64>,
    step: Vec<String>,
    seat: Vec<String>,
    entry: Vec<String>,
}

impl Inbox {
    fn of(entries: &[InboxEntry]) -> Result<Inbox, StoreError> {
        let mut keyed: BTreeMap<(i64, &str, &str, &str), &InboxEntry> = BTreeMap::new();
        for e in entries {
            keyed.insert((e.since.timestamp_millis(), e.person.as_str(), e.step.as_str(), e.seat.as_str()), e);
        }
        let mut out = Inbox::default();
        for ((ms, person, step, seat), e) in keyed {
            out.person.push(person.to_string());
            out.since.push(ms);
            out.step.push(step.to_string());
            out.seat.push(seat.to_string());
            out.entry.push(encode(e)?);
        }
        Ok(out)
    }
}

/// An append's parameters, owned, so that another thread may commit it (`group`).
struct PreparedAppend {
    case: String,
    expected: i64,
    prev_hash: String,
    version: i64,
    last_hash: String,
    status: String,
    form_id: String,
    opened_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    head_doc: String,
    seqs: Vec<i64>,
    docs: Vec<String>,
    inbox: Inbox,
    parties: Vec<String>,
    opened_ms: i64,
    key: Option<String>,
    record: Option<String>,
    recorded_at: DateTime<Utc>,
    out_ids: Vec<String>,
    out_kinds: Vec<String>,
    out_payloads: Vec<String>,
    outcome: Value,
}

impl PreparedAppend {
    fn params(&self) -> [(&(dyn ::postgres::types::ToSql + Sync), Type); 25] {
        [
            (&self.case, Type::TEXT),
            (&self.expected, Type::INT8),
            (&self.prev_hash, Type::TEXT),
            (&self.version, Type::INT8),
            (&self.last_hash, Type::TEXT),
            (&self.status, Type::TEXT),
            (&self.form_id, Type::TEXT),
            (&self.opened_at, Type::TIMESTAMPTZ),
            (&self.updated_at, Type::TIMESTAMPTZ),
            (&self.head_doc, Type::TEXT),
            (&self.seqs, Type::INT8_ARRAY),
            (&self.docs, Type::TEXT_ARRAY),
            (&self.inbox.person, Type::TEXT_ARRAY),
            (&self.inbox.since, Type::INT8_ARRAY),
            (&self.inbox.step, Type::TEXT_ARRAY),
            (&self.inbox.seat, Type::TEXT_ARRAY),
            (&self.inbox.entry, Type::TEXT_ARRAY),
            (&self.parties, Type::TEXT_ARRAY),
            (&self.opened_ms, Type::INT8),
            (&self.key, Type::TEXT),
            (&self.record, Type::TEXT),
            (&self.recorded_at, Type::TIMESTAMPTZ),
            (&self.out_ids, Type::TEXT_ARRAY),
            (&self.out_kinds, Type::TEXT_ARRAY),
            (&self.out_payloads, Type::TEXT_ARRAY),
        ]
    }

    /// What the statement's row means for this append.
    fn answer(&self, row: &Row) -> Result<Appended, StoreError> {
        match row.get::<_, &str>(0) {
            "appended" => Ok(Appended { version: self.version as u64, last_hash: self.last_hash.clone(), replayed: false, outcome: self.outcome.clone() }),
            "replayed" => replayed(&self.case, row.get::<_, Option<&str>>(2).unwrap_or("")),
            "conflict" => Err(StoreError::Conflict {
                case_id: self.case.clone(),
                expected: self.expected as u64,
                found: row.get::<_, Option<i64>>(1).unwrap_or(0) as u64,
            }),
            "not_found" => Err(StoreError::NotFound(self.case.clone())),
            other => Err(StoreError::Io(format!("carimbo_append answered {other:?}"))),
        }
    }
}

/// Backup and restore: whole cases read in one snapshot, and written in one transaction.
impl PgStore {
    /// A read-only REPEATABLE READ transaction: every statement in it sees one snapshot.
    fn snapshot<'c>(c: &'c mut Client) -> Result<Transaction<'c>, StoreError> {
        c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().map_err(|e| pg_err("BEGIN", e))
    }

    /// Everything about the cases `ids` (those that exist), in the order of `ids`; five
    /// statements whatever their number.
    fn export_in(tx: &mut Transaction<'_>, ids: &[String]) -> Result<Vec<CaseExport>, StoreError> {
        let query = |tx: &mut Transaction<'_>, sql: &str| tx.query_typed(sql, &[(&ids, Type::TEXT_ARRAY)]).map_err(|e| pg_err("exporting cases", e));
        let mut cases: BTreeMap<String, CaseExport> = BTreeMap::new();
        for r in query(tx, "SELECT case_id, head::text FROM heads WHERE case_id = ANY($1)")? {
            let case_id: String = r.get(0);
            let head = decode_head(&case_id, r.get::<_, String>(1))?;
            cases.insert(case_id, CaseExport { head, events: Vec::new(), inbox: Vec::new(), idempotency: Vec::new(), outbox: Vec::new() });
        }
        for r in query(tx, "SELECT case_id, seq, event::text FROM events WHERE case_id = ANY($1) ORDER BY case_id, seq")? {
            let case_id: &str = r.get(0);
            if let Some(case) = cases.get_mut(case_id) {
                let seq = r.get::<_, i64>(1) as u64;
                // Events appended after the head was read are not in this snapshot anyway.
                case.events.push(decode_event(case_id, seq, r.get::<_, String>(2))?);
            }
        }
        for r in query(tx, "SELECT case_id, entry::text FROM inbox WHERE case_id = ANY($1) ORDER BY case_id, person, since_ms, step, seat")? {
            let case_id: &str = r.get(0);
            if let Some(case) = cases.get_mut(case_id) {
                let entry = serde_json::from_str(&r.get::<_, String>(1)).map_err(|e| StoreError::Corrupt {
                    case_id: case_id.to_string(),
                    seq: 0,
                    reason: format!("undecodable inbox entry: {e}"),
                })?;
                case.inbox.push(entry);
            }
        }
        for r in query(tx, "SELECT case_id, key, record::text FROM idempotency WHERE case_id = ANY($1) ORDER BY case_id, key")? {
            let case_id: &str = r.get(0);
            if let Some(case) = cases.get_mut(case_id) {
                let record = decode_idempotency(case_id, r.get::<_, String>(2))?;
                case.idempotency.push(IdempotencyExport { key: r.get(1), version: record.version, last_hash: record.last_hash, outcome: record.outcome });
            }
        }
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE case_id = ANY($1) ORDER BY case_id, seq, id");
        for r in query(tx, &sql)? {
            let record = outbox_row(&r)?;
            if let Some(case) = cases.get_mut(&record.case_id) {
                case.outbox.push(record);
            }
        }
        Ok(ids.iter().filter_map(|id| cases.remove(id)).collect())
    }

    /// Writes a verified case in one transaction; `Conflict` if its head exists.
    fn import_on(c: &mut Client, case: &CaseExport) -> Result<(), StoreError> {
        let id = case.head.case_id.as_str();
        let head = &case.head;
        let mut tx = c.transaction().map_err(|e| pg_err("BEGIN", e))?;
        let inserted = tx
            .execute_typed(
                "INSERT INTO heads (case_id, version, last_hash, status, form_id, opened_at, updated_at, head)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json) ON CONFLICT (case_id) DO NOTHING",
                &[
                    (&id, Type::TEXT),
                    (&(head.version as i64), Type::INT8),
                    (&head.last_hash, Type::TEXT),
                    (&head.status, Type::TEXT),
                    (&head.form_id, Type::TEXT),
                    (&head.opened_at, Type::TIMESTAMPTZ),
                    (&head.updated_at, Type::TIMESTAMPTZ),
                    (&encode(head)?, Type::TEXT),
                ],
            )
            .map_err(|e| pg_err("importing a case head", e))?;
        if inserted == 0 {
            let found = tx
                .query_typed_opt("SELECT version FROM heads WHERE case_id = $1", &[(&id, Type::TEXT)])
                .map_err(|e| pg_err("reading a case head", e))?
                .map_or(0, |r| r.get::<_, i64>(0) as u64);
            return Err(StoreError::Conflict { case_id: id.to_string(), expected: 0, found });
        }
        let seqs: Vec<i64> = case.events.iter().map(|e| e.seq as i64).collect();
        let docs = case.events.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        let (mut in_person, mut in_since, mut in_step, mut in_seat, mut in_entry) = (vec![], vec![], vec![], vec![], vec![]);
        for e in &case.inbox {
            in_person.push(e.person.as_str());
            in_since.push(e.since.timestamp_millis());
            in_step.push(e.step.as_str());
            in_seat.push(e.seat.as_str());
            in_entry.push(encode(e)?);
        }
        let mut parties: Vec<&str> = head.parties.iter().map(String::as_str).collect();
        parties.sort_unstable();
        parties.dedup();
        let keys: Vec<&str> = case.idempotency.iter().map(|r| r.key.as_str()).collect();
        let records = case
            .idempotency
            .iter()
            .map(|r| encode(&IdempotencyRecord { version: r.version, last_hash: r.last_hash.clone(), outcome: r.outcome.clone() }))
            .collect::<Result<Vec<_>, _>>()?;
        let out_ids: Vec<&str> = case.outbox.iter().map(|m| m.id.as_str()).collect();
        let out_seqs: Vec<i64> = case.outbox.iter().map(|m| m.seq as i64).collect();
        let out_at: Vec<DateTime<Utc>> = case.outbox.iter().map(|m| m.at).collect();
        let out_kinds: Vec<&str> = case.outbox.iter().map(|m| m.kind.as_str()).collect();
        let out_payloads = case.outbox.iter().map(|m| encode(&m.payload)).collect::<Result<Vec<_>, _>>()?;
        let out_delivery = case.outbox.iter().map(|m| encode(&m.delivery)).collect::<Result<Vec<_>, _>>()?;
        let out_settled: Vec<bool> = case.outbox.iter().map(|m| m.settled).collect();
        let out_dead: Vec<bool> = case.outbox.iter().map(|m| m.dead).collect();
        tx.execute_typed(
            "WITH ev AS (INSERT INTO events (case_id, seq, event) SELECT $1, s, e::json FROM unnest($2::int8[], $3::text[]) AS u(s, e)),
                  ib AS (INSERT INTO inbox (person, since_ms, case_id, step, seat, entry)
                         SELECT p, s, $1, st, se, e::json FROM unnest($4::text[], $5::int8[], $6::text[], $7::text[], $8::text[]) AS u(p, s, st, se, e)),
                  pt AS (INSERT INTO parties (person, opened_ms, case_id) SELECT p, $9, $1 FROM unnest($10::text[]) AS u(p)),
                  id AS (INSERT INTO idempotency (case_id, key, record) SELECT $1, k, r::json FROM unnest($11::text[], $12::text[]) AS u(k, r))
             INSERT INTO outbox (id, case_id, seq, at, kind, payload, delivery, settled, dead)
             SELECT i, $1, s, a, k, p::json, d::json, st, dd
               FROM unnest($13::text[], $14::int8[], $15::timestamptz[], $16::text[], $17::text[], $18::text[], $19::bool[], $20::bool[])
                 AS u(i, s, a, k, p, d, st, dd)",
            &[
                (&id, Type::TEXT),
                (&seqs, Type::INT8_ARRAY),
                (&docs, Type::TEXT_ARRAY),
                (&in_person, Type::TEXT_ARRAY),
                (&in_since, Type::INT8_ARRAY),
                (&in_step, Type::TEXT_ARRAY),
                (&in_seat, Type::TEXT_ARRAY),
                (&in_entry, Type::TEXT_ARRAY),
                (&head.opened_at.timestamp_millis(), Type::INT8),
                (&parties, Type::TEXT_ARRAY),
                (&keys, Type::TEXT_ARRAY),
                (&records, Type::TEXT_ARRAY),
                (&out_ids, Type::TEXT_ARRAY),
                (&out_seqs, Type::INT8_ARRAY),
                (&out_at, Type::TIMESTAMPTZ_ARRAY),
                (&out_kinds, Type::TEXT_ARRAY),
                (&out_payloads, Type::TEXT_ARRAY),
                (&out_delivery, Type::TEXT_ARRAY),
                (&out_settled, Type::BOOL_ARRAY),
                (&out_dead, Type::BOOL_ARRAY),
            ],
        )
        .map_err(|e| pg_err(&format!("importing case {id}"), e))?;
        tx.commit().map_err(|e| pg_err("COMMIT of an imported case", e))
    }

    fn outbox_query(&self, sql: &str, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = self.read(|c| c.query_typed(sql, &[(&limit, Type::INT8)]))?;
        rows.iter().map(outbox_row).collect()
    }

    /// The `at` of the message `cursor`, where a page after it starts.
    fn outbox_cursor_at(&self, cursor: &str) -> Result<DateTime<Utc>, StoreError> {
        let Some(at) = self.read(|c| c.query_typed_opt("SELECT at FROM outbox WHERE id = $1", &[(&cursor, Type::TEXT)]))? else {
            return Err(StoreError::Cursor(format!("outbox cursor {cursor:?} is not a message this store holds")));
        };
        Ok(at.get(0))
    }
}

/// An `OutboxRecord` from a row of `OUTBOX_COLUMNS`.
fn outbox_row(r: &Row) -> Result<OutboxRecord, StoreError> {
    let id: String = r.get(0);
    let json = |i: usize, what: &str| -> Result<Value, StoreError> {
        serde_json::from_str(&r.get::<_, String>(i)).map_err(|e| StoreError::Io(format!("outbox message {id}: undecodable {what}: {e}")))
    };
    Ok(OutboxRecord {
        case_id: r.get(1),
        seq: r.get::<_, i64>(2) as u64,
        at: r.get(3),
        kind: r.get(4),
        payload: json(5, "payload")?,
        delivery: json(6, "delivery state")?,
        settled: r.get(7),
        dead: r.get(8),
        id,
    })
}

fn replayed(case_id: &str, record: &str) -> Result<Appended, StoreError> {
    let rec = decode_idempotency(case_id, record)?;
    Ok(Appended { version: rec.version, last_hash: rec.last_hash, replayed: true, outcome: rec.outcome })
}

impl Store for PgStore {
    fn append(&self, append: Append) -> Result<Appended, StoreError> {
        validate(&append)?;
        // The head (and any earlier result under this idempotency key), read without a lock;
        // the append is hashed against it and committed with whatever else is waiting (`group`).
        let row = self.read(|c| {
            c.query_typed_one(
                "SELECT (SELECT version FROM heads WHERE case_id = $1), (SELECT last_hash FROM heads WHERE case_id = $1),
                        (SELECT record::text FROM idempotency WHERE case_id = $1 AND key = $2)",
                &[(&append.case_id, Type::TEXT), (&append.idempotency_key, Type::TEXT)],
            )
        })?;
        match Self::prepare(&append, &row)? {
            Prepared::Answered(appended) => Ok(appended),
            Prepared::Ready(p) => self.group.run(*p, |batch| self.commit_batch(batch)),
        }
    }

    fn events(&self, case_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = self.read(|c| c.query_typed("SELECT seq, event::text FROM events WHERE case_id = $1 ORDER BY seq", &[(&case_id, Type::TEXT)]))?;
        if rows.is_empty() {
            return Err(StoreError::NotFound(case_id.to_string()));
        }
        rows.iter().map(|r| decode_event(case_id, r.get::<_, i64>(0) as u64, r.get::<_, String>(1))).collect()
    }

    fn head(&self, case_id: &str) -> Result<Option<CaseHead>, StoreError> {
        let row = self.read(|c| c.query_typed_opt("SELECT head::text FROM heads WHERE case_id = $1", &[(&case_id, Type::TEXT)]))?;
        row.map(|r| decode_head(case_id, r.get::<_, String>(0))).transpose()
    }

    fn inbox(&self, person: &str, after: Option<&str>, limit: usize) -> Result<InboxPage, StoreError> {
        if limit == 0 {
            return Err(StoreError::Invalid("an inbox page needs a limit of at least 1".into()));
        }
        let take = (limit.min(i64::MAX as usize - 1) + 1) as i64;
        let cursor = after.map(parse_inbox_cursor).transpose()?.map(|c| (c.since_ms, c.case, c.step, c.seat));
        let rows = self.read(|c| match &cursor {
            None => c.query_typed(
                "SELECT since_ms, case_id, step, seat, entry::text FROM inbox WHERE person = $1
                 ORDER BY since_ms, case_id, step, seat LIMIT $2",
                &[(&person, Type::TEXT), (&take, Type::INT8)],
            ),
            Some((ms, case, step, seat)) => c.query_typed(
                "SELECT since_ms, case_id, step, seat, entry::text FROM inbox
                 WHERE person = $1 AND (since_ms, case_id, step, seat) > ($2, $3, $4, $5)
                 ORDER BY since_ms, case_id, step, seat LIMIT $6",
                &[(&person, Type::TEXT), (ms, Type::INT8), (case, Type::TEXT), (step, Type::TEXT), (seat, Type::TEXT), (&take, Type::INT8)],
            ),
        })?;
        let more = rows.len() > limit;
        let mut entries = Vec::with_capacity(rows.len().min(limit));
        for r in rows.iter().take(limit) {
            let entry: InboxEntry = serde_json::from_str(&r.get::<_, String>(4)).map_err(|e| StoreError::Corrupt {
                case_id: r.get(1),
                seq: 0,
                reason: format!("undecodable inbox entry for {person}: {e}"),
            })?;
            entries.push(entry);
        }
        let next = if more { rows.get(limit - 1).map(|r| inbox_cursor(r.get(0), r.get::<_, &str>(1), r.get::<_, &str>(2), r.get::<_, &str>(3))) } else { None };
        Ok(InboxPage { entries, next })
    }

    fn cases_page(&self, person: &str, after: Option<&str>, limit: usize) -> Result<CasesPage, StoreError> {
        let (before_ms, before_case) = match after {
            Some(cursor) => crate::store::parse_cases_cursor(cursor)?,
            None => (i64::MAX, String::new()),
        };
        // One more than asked, to know whether another page follows.
        let fetch = limit.saturating_add(1).min(i64::MAX as usize) as i64;
        let rows = self.read(|c| {
            c.query_typed(
                "SELECT h.case_id, h.head::text FROM parties p JOIN heads h ON h.case_id = p.case_id
                 WHERE p.person = $1 AND ($2 = '' AND p.opened_ms <= $3 OR (p.opened_ms, p.case_id) < ($3, $2))
                 ORDER BY p.opened_ms DESC, p.case_id DESC LIMIT $4",
                &[(&person, Type::TEXT), (&before_case, Type::TEXT), (&before_ms, Type::INT8), (&fetch, Type::INT8)],
            )
        })?;
        let mut cases: Vec<CaseHead> = rows.iter().map(|r| decode_head(r.get(0), r.get::<_, String>(1))).collect::<Result<_, _>>()?;
        let more = cases.len() > limit;
        cases.truncate(limit);
        let next = match (more, cases.last()) {
            (true, Some(h)) => Some(crate::store::cases_cursor(&h.opened_at, &h.case_id)),
            _ => None,
        };
        Ok(CasesPage { cases, next })
    }

    fn heads(&self, after: Option<&str>, limit: usize) -> Result<Vec<CaseHead>, StoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        let after = after.unwrap_or("");
        let rows = self.read(|c| {
            c.query_typed("SELECT case_id, head::text FROM heads WHERE case_id > $1 ORDER BY case_id LIMIT $2", &[(&after, Type::TEXT), (&limit, Type::INT8)])
        })?;
        rows.iter().map(|r| decode_head(r.get(0), r.get::<_, String>(1))).collect()
    }

    fn idempotent_outcome(&self, case_id: &str, key: &str) -> Result<Option<Value>, StoreError> {
        let row = self.read(|c| {
            c.query_typed_opt("SELECT record::text FROM idempotency WHERE case_id = $1 AND key = $2", &[(&case_id, Type::TEXT), (&key, Type::TEXT)])
        })?;
        row.map(|r| decode_idempotency(case_id, r.get::<_, String>(0)).map(|rec| rec.outcome)).transpose()
    }

    fn verify_case(&self, case_id: &str) -> Result<(), StoreError> {
        // One statement, so the events and the head come from one snapshot even while others
        // append to the case.
        let rows = self.read(|c| {
            c.query_typed(
                "SELECT seq, event::text, NULL::text FROM events WHERE case_id = $1
                 UNION ALL SELECT NULL, NULL, head::text FROM heads WHERE case_id = $1
                 ORDER BY 1 NULLS LAST",
                &[(&case_id, Type::TEXT)],
            )
        })?;
        let mut chain = ChainCheck::new(case_id.to_string());
        let mut head = None;
        for r in &rows {
            match r.get::<_, Option<i64>>(0) {
                Some(seq) => chain.push(seq as u64, r.get::<_, String>(1).as_bytes()),
                None => head = r.get::<_, Option<String>>(2),
            }
        }
        if chain.count == 0 && head.is_none() {
            return Err(StoreError::NotFound(case_id.to_string()));
        }
        chain.finish(head.as_deref().map(|h| decode_head(case_id, h)))
    }

    fn put_definition(&self, hash: &str, bytes: &[u8]) -> Result<(), StoreError> {
        check_definition_hash(hash, bytes)?;
        // Idempotent, so safe to send again on another connection.
        self.read(|c| {
            c.execute_typed(
                "INSERT INTO definitions (hash, bytes) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
                &[(&hash, Type::TEXT), (&bytes, Type::BYTEA)],
            )
        })?;
        Ok(())
    }

    fn definition(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self.read(|c| c.query_typed_opt("SELECT bytes FROM definitions WHERE hash = $1", &[(&hash, Type::TEXT)]))?;
        Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
    }

    fn definition_hashes(&self) -> Result<Vec<String>, StoreError> {
        let rows = self.read(|c| c.query_typed("SELECT hash FROM definitions ORDER BY hash", &[]))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn publish(&self, publication: &Publication) -> Result<(), StoreError> {
        let seq = i64::try_from(publication.seq).map_err(|_| StoreError::Invalid(format!("publication seq {} is too large", publication.seq)))?;
        let body = serde_json::to_string(publication).map_err(|e| StoreError::Invalid(format!("a publication does not encode: {e}")))?;
        // Written only as the next one: of two servers publishing at once, the second finds the
        // count moved (or, racing on the same seq, the primary key taken).
        let mut c = self.conn()?;
        let written = c.execute_typed(
            "INSERT INTO publications (seq, at, by_person, body) SELECT $1, $2, $3, $4::text::jsonb WHERE (SELECT coalesce(max(seq), 0) FROM publications) = $1 - 1",
            &[(&seq, Type::INT8), (&publication.at, Type::TIMESTAMPTZ), (&publication.by, Type::TEXT), (&body, Type::TEXT)],
        );
        match written {
            Ok(1) => Ok(()),
            Ok(_) => Err(StoreError::PublicationConflict { expected: publication.seq - 1, found: self.last_publication()? }),
            Err(e) if e.code() == Some(&::postgres::error::SqlState::UNIQUE_VIOLATION) => {
                Err(StoreError::PublicationConflict { expected: publication.seq - 1, found: self.last_publication()? })
            }
            Err(e) => Err(pg_err("recording the publication", e)),
        }
    }

    fn publications(&self) -> Result<Vec<Publication>, StoreError> {
        let rows = self.read(|c| c.query_typed("SELECT body::text FROM publications ORDER BY seq", &[]))?;
        rows.iter()
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| StoreError::Io(format!("a stored publication does not decode: {e}"))))
            .collect()
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn last_publication(&self) -> Result<u64, StoreError> {
        let row = self.read(|c| c.query_typed_one("SELECT coalesce(max(seq), 0) FROM publications", &[]))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    fn outbox_since(&self, since: DateTime<Utc>, after: Option<&str>, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        // timestamptz spans 4713 BC to 294276 AD; chrono's reaches further. Years 1 to 9999
        // hold every time a store records.
        let (first, last) = (DateTime::<Utc>::from_timestamp(-62_135_596_800, 0), DateTime::<Utc>::from_timestamp(253_402_300_799, 0));
        let (first, last) = (first.expect("year 1 is a valid time"), last.expect("year 9999 is a valid time"));
        if since > last {
            return Ok(Vec::new());
        }
        let since = since.max(first);
        let rows = match after {
            None => self.read(|c| {
                c.query_typed(
                    &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE at >= $1 ORDER BY at, id LIMIT $2"),
                    &[(&since, Type::TIMESTAMPTZ), (&limit, Type::INT8)],
                )
            })?,
            Some(cursor) => {
                let Some(at) = self.read(|c| c.query_typed_opt("SELECT at FROM outbox WHERE id = $1", &[(&cursor, Type::TEXT)]))? else {
                    return Err(StoreError::Cursor(format!("outbox cursor {cursor:?} is not a message this store holds")));
                };
                let at: DateTime<Utc> = at.get(0);
                self.read(|c| {
                    c.query_typed(
                        &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE at >= $1 AND (at, id) > ($2, $3) ORDER BY at, id LIMIT $4"),
                        &[(&since, Type::TIMESTAMPTZ), (&at, Type::TIMESTAMPTZ), (&cursor, Type::TEXT), (&limit, Type::INT8)],
                    )
                })?
            }
        };
        rows.iter().map(outbox_row).collect()
    }

    fn outbox_pending(&self, after: Option<&str>, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        let Some(cursor) = after else {
            return self.outbox_query(&format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE NOT settled ORDER BY at, id LIMIT $1"), limit);
        };
        let at = self.outbox_cursor_at(cursor)?;
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = self.read(|c| {
            c.query_typed(
                &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE NOT settled AND (at, id) > ($1, $2) ORDER BY at, id LIMIT $3"),
                &[(&at, Type::TIMESTAMPTZ), (&cursor, Type::TEXT), (&limit, Type::INT8)],
            )
        })?;
        rows.iter().map(outbox_row).collect()
    }

    fn outbox_pending_of_kind(&self, kind_prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        let Some(cursor) = after else {
            let rows = self.read(|c| {
                c.query_typed(
                    &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE NOT settled AND starts_with(kind, $1) ORDER BY at, id LIMIT $2"),
                    &[(&kind_prefix, Type::TEXT), (&limit, Type::INT8)],
                )
            })?;
            return rows.iter().map(outbox_row).collect();
        };
        let at = self.outbox_cursor_at(cursor)?;
        let rows = self.read(|c| {
            c.query_typed(
                &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE NOT settled AND starts_with(kind, $1) AND (at, id) > ($2, $3) ORDER BY at, id LIMIT $4"),
                &[(&kind_prefix, Type::TEXT), (&at, Type::TIMESTAMPTZ), (&cursor, Type::TEXT), (&limit, Type::INT8)],
            )
        })?;
        rows.iter().map(outbox_row).collect()
    }

    fn outbox_dead(&self, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        self.outbox_query(&format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE dead ORDER BY at, id LIMIT $1"), limit)
    }

    fn outbox_get(&self, id: &str) -> Result<Option<OutboxRecord>, StoreError> {
        let row = self.read(|c| c.query_typed_opt(&format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1"), &[(&id, Type::TEXT)]))?;
        row.as_ref().map(outbox_row).transpose()
    }

    fn outbox_update(&self, id: &str, delivery: &Value, settled: bool, dead: bool) -> Result<(), StoreError> {
        let delivery = encode(delivery)?;
        // Sets absolute values, so it may be sent again on another connection.
        let updated = self.read(|c| {
            c.query_typed(
                "UPDATE outbox SET delivery = $2::json, settled = $3, dead = $4 WHERE id = $1 RETURNING id",
                &[(&id, Type::TEXT), (&delivery, Type::TEXT), (&settled, Type::BOOL), (&dead, Type::BOOL)],
            )
        })?;
        if updated.is_empty() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        Ok(())
    }

    fn export_case(&self, case_id: &str) -> Result<CaseExport, StoreError> {
        let mut c = self.conn()?;
        let mut tx = Self::snapshot(&mut c)?;
        let case = Self::export_in(&mut tx, &[case_id.to_string()])?.pop();
        tx.commit().map_err(|e| pg_err("COMMIT", e))?;
        case.ok_or_else(|| StoreError::NotFound(case_id.to_string()))
    }

    fn export_all(&self, visit: &mut dyn FnMut(CaseExport) -> Result<(), StoreError>) -> Result<u64, StoreError> {
        let mut c = self.conn()?;
        let mut tx = Self::snapshot(&mut c)?;
        let mut after = String::new();
        let mut n = 0;
        loop {
            let ids: Vec<String> = tx
                .query_typed("SELECT case_id FROM heads WHERE case_id > $1 ORDER BY case_id LIMIT $2", &[(&after, Type::TEXT), (&EXPORT_PAGE, Type::INT8)])
                .map_err(|e| pg_err("listing cases", e))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let Some(last) = ids.last() else { break };
            after = last.clone();
            for case in Self::export_in(&mut tx, &ids)? {
                visit(case)?;
                n += 1;
            }
        }
        tx.commit().map_err(|e| pg_err("COMMIT", e))?;
        Ok(n)
    }

    fn import_case(&self, case: CaseExport) -> Result<(), StoreError> {
        case.verify()?;
        let mut c = self.conn()?;
        Self::import_on(&mut c, &case)
    }
}

/// Applies the migrations not yet applied, each in its own transaction, under an advisory lock
/// keyed by the schema (so processes opening one database together do not race).
fn migrate(client: &mut Client, schema: Option<&str>) -> Result<(), StoreError> {
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    let mut tx = client.transaction().map_err(|e| pg_err("BEGIN", e))?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtext('carimbo-migrations:' || coalesce($1::text, current_schema(), '')))", &[&schema])
        .map_err(|e| pg_err("taking the migration lock", e))?;
    if let Some(schema) = schema {
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")).map_err(|e| pg_err(&format!("creating schema {schema}"), e))?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    integer PRIMARY KEY,
            name       text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .map_err(|e| pg_err("creating schema_migrations", e))?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .map_err(|e| pg_err("reading schema_migrations", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if let Some(&newest) = applied.last()
        && newest > latest
    {
        return Err(StoreError::Io(format!(
            "the database's carimbo schema is at version {newest}, newer than this build knows ({latest}); run a newer carimbo"
        )));
    }
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).map_err(|e| pg_err(&format!("schema migration {version} ({name})"), e))?;
        tx.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[version, name]).map_err(|e| pg_err("recording the migration", e))?;
    }
    tx.commit().map_err(|e| pg_err("COMMIT of the migrations", e))
}

/// A schema name safe to put in `search_path` and in `CREATE SCHEMA "…"` unescaped.
fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok { Ok(()) } else { Err(StoreError::Invalid(format!("schema name {schema:?}: use 1-63 of a-z, 0-9 and _, not starting with a digit"))) }
}

/// Rows of a server-side cursor, fetched in batches.
struct Cursor {
    fetch: String,
    rows: VecDeque<Row>,
    done: bool,
}

impl Cursor {
    fn new(name: &str) -> Self {
        Cursor { fetch: format!("FETCH 1000 FROM {name}"), rows: VecDeque::new(), done: false }
    }

    fn fill(&mut self, tx: &mut Transaction<'_>) -> Result<(), StoreError> {
        if self.rows.is_empty() && !self.done {
            let rows = tx.query(self.fetch.as_str(), &[]).map_err(|e| pg_err("reading through a cursor", e))?;
            self.done = rows.is_empty();
            self.rows.extend(rows);
        }
        Ok(())
    }

    fn next(&mut self, tx: &mut Transaction<'_>) -> Result<Option<Row>, StoreError> {
        self.fill(tx)?;
        Ok(self.rows.pop_front())
    }

    fn peek_case(&mut self, tx: &mut Transaction<'_>) -> Result<Option<String>, StoreError> {
        self.fill(tx)?;
        Ok(self.rows.front().map(|r| r.get(0)))
    }
}

/// Judges one case of `verify_all` once its events have been read, with its head (if any).
fn settle_case(tx: &mut Transaction<'_>, chain: ChainCheck, heads: &mut Cursor, report: &mut IntegrityReport) -> Result<(), StoreError> {
    heads_without_events(tx, heads, Some(chain.case_id()), report)?;
    let head = match heads.peek_case(tx)? {
        Some(c) if c == chain.case_id() => heads.next(tx)?.map(|r| r.get::<_, String>(1)),
        _ => None,
    };
    report.cases_checked += 1;
    let decoded = head.as_deref().map(|h| decode_head(chain.case_id(), h));
    match chain.finish(decoded) {
        Err(StoreError::Corrupt { case_id, seq, reason }) => report.corrupt.push(CorruptCase { case_id, seq, reason }),
        Err(other) => return Err(other),
        Ok(()) => {}
    }
    Ok(())
}

/// Reports every head that sorts before `bound` (all, without one): they have no events.
fn heads_without_events(tx: &mut Transaction<'_>, heads: &mut Cursor, bound: Option<&str>, report: &mut IntegrityReport) -> Result<(), StoreError> {
    loop {
        match heads.peek_case(tx)? {
            None => return Ok(()),
            Some(c) if bound.is_some_and(|b| c.as_bytes() >= b.as_bytes()) => return Ok(()),
            _ => {}
        }
        let row = heads.next(tx)?.expect("peeked");
        let case_id: String = row.get(0);
        let seq = decode_head(&case_id, row.get::<_, String>(1)).map_or(0, |h| h.version);
        report.cases_checked += 1;
        report.corrupt.push(CorruptCase { case_id, seq, reason: "the case head has no events in the log".into() });
    }
}

fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("cannot encode as JSON: {e}")))
}

fn pg_err(context: &str, e: ::postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Io(format!("PostgreSQL, {context}: {} ({})", db.message(), db.code().code())),
        None => StoreError::Io(format!("PostgreSQL, {context}: {e}")),
    }
}
