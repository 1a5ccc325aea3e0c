//! Durable storage of cases: an append-only, hash-chained event log per case, case heads, the
//! inbox index (assignee → open steps), idempotency records and the definition versions cases
//! are pinned to.
//!
//! The store knows nothing of workflow semantics: event bodies are JSON values produced by the
//! workflow engine, and the caller hands over the new case head and the full new set of inbox
//! entries with each append. What the store guarantees:
//! - an append names the case version it expects; if another append got there first, it fails
//!   with `StoreError::Conflict` and changes nothing (two approvers on one step: one wins);
//! - events, head, inbox entries and the idempotency record of one append commit together;
//! - `append` returns only once the append is durable; concurrent appends share one sync
//!   (group commit);
//! - each event holds the previous event's hash (SHA-256 over the RFC 8785 canonical JSON of
//!   the event without its own hash), so any change to stored history is detected by
//!   `verify_case`, which names the case and the event.
//!
//! The trait is synchronous (sled is; `PgStore` uses the blocking `postgres` client); the HTTP
//! layer calls it from `spawn_blocking`.

mod postgres;
mod sled;

pub use self::postgres::{PgOptions, PgStore};
pub use self::sled::{DurabilityStats, SledStore};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The hash that stands before a case's first event: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One event as stored: its place in the chain and its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub case_id: String,
    /// 1 for the first event of a case; the case version after this event.
    pub seq: u64,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// `hash` of the previous event (`GENESIS_HASH` for seq 1), lower-case hex.
    pub prev_hash: String,
    /// SHA-256 (hex) of the RFC 8785 canonical JSON of `{case_id, seq, recorded_at, prev_hash, body}`.
    pub hash: String,
    /// The event as the workflow engine wrote it.
    pub body: Value,
}

impl StoredEvent {
    /// The hash this event should carry, re-computed from its other fields.
    pub fn computed_hash(&self) -> String {
        chain_hash(&self.case_id, self.seq, &self.recorded_at, &self.prev_hash, &self.body)
    }
}

/// SHA-256 (lower-case hex) of the RFC 8785 (JCS) canonical JSON of
/// `{case_id, seq, recorded_at, prev_hash, body}`: the hash a stored event carries. Public so
/// that an evidence bundle can be checked offline with exactly the rule the store used.
pub fn chain_hash(case_id: &str, seq: u64, recorded_at: &DateTime<Utc>, prev_hash: &str, body: &Value) -> String {
    #[derive(Serialize)]
    struct Chained<'a> {
        case_id: &'a str,
        seq: u64,
        recorded_at: &'a DateTime<Utc>,
        prev_hash: &'a str,
        body: &'a Value,
    }
    let chained = Chained { case_id, seq, recorded_at, prev_hash, body };
    // Canonicalization of a `Value` cannot fail: its numbers are finite and its keys are strings.
    let canonical = serde_json_canonicalizer::to_vec(&chained).expect("a JSON value always canonicalizes");
    hex::encode(Sha256::digest(&canonical))
}

/// The current state of a case, kept beside its log so lists do not replay events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseHead {
    pub case_id: String,
    /// Number of events; set by the store on append.
    pub version: u64,
    /// Hash of the last event; set by the store on append.
    pub last_hash: String,
    /// `open`, `returned`, `completed`, `rejected`, `withdrawn`.
    pub status: String,
    pub form_id: String,
    pub form_version: String,
    pub form_hash: String,
    pub workflow_id: String,
    pub workflow_version: String,
    pub workflow_hash: String,
    pub submitter: String,
    /// Everyone who may see the case: submitter, subject, anyone who acted or was assigned.
    pub parties: Vec<String>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Free-form projection for lists (current step, who, since when).
    pub summary: Value,
}

/// One open step offered to one person (the assignee or their delegate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    pub person: String,
    pub case_id: String,
    pub step: String,
    pub seat: String,
    pub since: DateTime<Utc>,
    pub form_id: String,
    /// Set when offered under a delegation: the principal the person acts for.
    pub on_behalf_of: Option<String>,
    pub delegation: Option<String>,
}

/// An append to one case's log, with everything that must commit with it.
#[derive(Debug, Clone)]
pub struct Append {
    pub case_id: String,
    /// The case version the caller read (0 to create the case).
    pub expected_version: u64,
    /// Event bodies, in order (at least one).
    pub events: Vec<Value>,
    /// The new head; `version` and `last_hash` are filled in by the store.
    pub head: CaseHead,
    /// The complete set of inbox entries of this case after the append (replaces the old set).
    pub inbox: Vec<InboxEntry>,
    /// If set, a retry with the same key on the same case returns the first result and appends nothing.
    pub idempotency_key: Option<String>,
    /// What the caller answered the first time, returned verbatim on a retry.
    pub outcome: Value,
    /// Messages for other systems (decisions, completed/rejected/withdrawn cases), committed
    /// with the events or not at all; delivered later by `crate::outbox`.
    pub outbox: Vec<OutboxMessage>,
}

/// A message for other systems, as the caller hands it to `append`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// `decision`, `case.completed`, `case.rejected`, `case.withdrawn`.
    pub kind: String,
    pub payload: Value,
}

/// A message in the outbox, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// `{case_id}/{seq}/{n}`: the case, the case version the append produced, and the message's
    /// place among that append's messages (from 0). Stable, so receivers can drop duplicates.
    pub id: String,
    pub case_id: String,
    pub seq: u64,
    /// When the append that wrote it was recorded (the `recorded_at` of its events).
    pub at: DateTime<Utc>,
    pub kind: String,
    pub payload: Value,
    /// Delivery state kept by the dispatcher (per endpoint); `{}` when new. Opaque to the store.
    pub delivery: Value,
    /// True once the dispatcher has nothing more to do for it (delivered or given up everywhere).
    pub settled: bool,
    /// True while some endpoint gave up on it (a dead letter, listed for administrators).
    pub dead: bool,
}

/// Everything a store holds about one case, for `carimbo backup` / `restore`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseExport {
    pub head: CaseHead,
    pub events: Vec<StoredEvent>,
    pub inbox: Vec<InboxEntry>,
    /// Idempotency key → the outcome recorded for it.
    pub idempotency: Vec<(String, Value)>,
    pub outbox: Vec<OutboxRecord>,
}

/// The result of an append (or of its retry).
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    pub version: u64,
    pub last_hash: String,
    /// True when this was a retry of an append already made with the same idempotency key.
    pub replayed: bool,
    pub outcome: Value,
}

/// A page of a person's inbox, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxPage {
    pub entries: Vec<InboxEntry>,
    /// Pass back to get the next page; `None` at the end.
    pub next: Option<String>,
}

/// What a full integrity check of a store found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntegrityReport {
    pub cases_checked: u64,
    pub events_checked: u64,
    /// One entry per corrupt case: the first bad event (or the head) and why.
    pub corrupt: Vec<CorruptCase>,
    /// Records of the store's own journal checked (stores that keep one).
    pub journal_records_checked: u64,
    /// Problems that belong to no single case (a damaged journal record).
    pub store_problems: Vec<String>,
}

impl IntegrityReport {
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.store_problems.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CorruptCase {
    pub case_id: String,
    /// The first bad event; for a problem with the head alone, the version the head claims.
    pub seq: u64,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("case {case_id} was changed by someone else (expected version {expected}, found {found}); reload it and try again [CARIMBO-E0401]")]
    Conflict { case_id: String, expected: u64, found: u64 },
    #[error("case {0} does not exist [CARIMBO-E0402]")]
    NotFound(String),
    #[error("case {case_id}: stored event {seq} is corrupt: {reason} [CARIMBO-E0403]")]
    Corrupt { case_id: String, seq: u64, reason: String },
    #[error("invalid append: {0} [CARIMBO-E0404]")]
    Invalid(String),
    #[error("storage failure: {0} [CARIMBO-E0405]")]
    Io(String),
}

/// A case store. Implementations: `SledStore` (embedded, default) and `PgStore` (PostgreSQL,
/// for several processes on one database).
pub trait Store: Send + Sync {
    /// Appends events to a case, durably, if the case is still at `expected_version`.
    fn append(&self, append: Append) -> Result<Appended, StoreError>;
    /// Every event of a case, in order; `NotFound` for a case with no events.
    fn events(&self, case_id: &str) -> Result<Vec<StoredEvent>, StoreError>;
    fn head(&self, case_id: &str) -> Result<Option<CaseHead>, StoreError>;
    /// A page of `person`'s inbox, oldest first, starting after the cursor `after`.
    fn inbox(&self, person: &str, after: Option<&str>, limit: usize) -> Result<InboxPage, StoreError>;
    /// The heads of cases `person` is party to, newest (by `opened_at`) first.
    fn cases_of(&self, person: &str, limit: usize) -> Result<Vec<CaseHead>, StoreError>;
    /// The outcome recorded for an append made with this idempotency key on this case, if any.
    fn idempotent_outcome(&self, case_id: &str, key: &str) -> Result<Option<Value>, StoreError>;
    /// Re-computes a case's hash chain; `Corrupt` names the first bad event.
    fn verify_case(&self, case_id: &str) -> Result<(), StoreError>;
    /// Stores a definition's bytes under its SHA-256 (hex), so pinned versions stay readable.
    fn put_definition(&self, hash: &str, bytes: &[u8]) -> Result<(), StoreError>;
    fn definition(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// A page of every case head, in case-id order, after the case `after` (for usage figures
    /// and backups).
    fn heads(&self, after: Option<&str>, limit: usize) -> Result<Vec<CaseHead>, StoreError>;

    // ---- outbox ----
    /// Outbox messages recorded at or after `since`, ordered by (`at`, `id`), after the message
    /// `after` (a cursor: the last id of the previous page).
    fn outbox_since(&self, since: DateTime<Utc>, after: Option<&str>, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        let _ = (since, after, limit);
        Err(StoreError::Io("this store keeps no outbox yet".into()))
    }
    /// Messages not yet settled, ordered by (`at`, `id`), after the message `after` (a cursor:
    /// the last id of the previous page), so a dispatcher can walk past messages still waiting
    /// for a retry.
    fn outbox_pending(&self, after: Option<&str>, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        let _ = (after, limit);
        Err(StoreError::Io("this store keeps no outbox yet".into()))
    }
    /// Dead letters (messages with `dead` set), oldest first.
    fn outbox_dead(&self, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        let _ = limit;
        Err(StoreError::Io("this store keeps no outbox yet".into()))
    }
    fn outbox_get(&self, id: &str) -> Result<Option<OutboxRecord>, StoreError> {
        let _ = id;
        Err(StoreError::Io("this store keeps no outbox yet".into()))
    }
    /// Records the dispatcher's delivery state of a message, durably; `NotFound` for an unknown id.
    fn outbox_update(&self, id: &str, delivery: &Value, settled: bool, dead: bool) -> Result<(), StoreError> {
        let _ = (id, delivery, settled, dead);
        Err(StoreError::Io("this store keeps no outbox yet".into()))
    }

    // ---- backup / restore ----
    /// Everything about one case; `NotFound` if it does not exist.
    fn export_case(&self, case_id: &str) -> Result<CaseExport, StoreError> {
        let _ = case_id;
        Err(StoreError::Io("this store cannot export cases yet".into()))
    }
    /// Writes a case exactly as exported (same `recorded_at`s and hashes), durably, after
    /// re-checking its chain and that the head matches the last event; `Conflict` if the case exists.
    fn import_case(&self, case: CaseExport) -> Result<(), StoreError> {
        let _ = case;
        Err(StoreError::Io("this store cannot import cases yet".into()))
    }
    /// The hashes of every stored definition, sorted.
    fn definition_hashes(&self) -> Result<Vec<String>, StoreError> {
        Err(StoreError::Io("this store cannot list definitions yet".into()))
    }
}
