//! Durable storage of cases: an append-only, hash-chained event log per case, case heads, the
//! inbox index (assignee → open steps), idempotency records and the definition versions cases
//! are pinned to.
//!
//! The store knows nothing of workflow semantics: event bodies are JSON values produced by the
//! workflow engine, and the caller hands over the new case head and the full new set of inbox
//! entries with each append. What the store guarantees:
//! - an append names the case version it expects; if another append got there first, it fails
//!   with `StoreError::Conflict` and changes nothing (two approvers on one step: one wins);
//! - events, head, inbox entries, the idempotency record and the outbox messages of one append
//!   commit together (a conflicting append or an idempotent retry writes none of them);
//! - `append` returns only once the append is durable; concurrent appends share one sync
//!   (group commit);
//! - each event holds the previous event's hash (SHA-256 over the RFC 8785 canonical JSON of
//!   the event without its own hash), so any change to stored history is detected by
//!   `verify_case`, which names the case and the event;
//! - a case can be exported whole (`export_case`, `export_all`) and imported into another store
//!   exactly as it was (`import_case`: same times and hashes), after its chain is re-checked
//!   (`CaseExport::verify`): what `carimbo backup` / `restore` are built on (`crate::backup`).
//!
//! The trait is synchronous (sled is; `PgStore` uses the blocking `postgres` client); the HTTP
//! layer calls it from `spawn_blocking`.

mod checks;
mod codec;
mod postgres;
mod sled;

pub use self::postgres::{PgOptions, PgStore};
pub use self::sled::{DurabilityStats, SledStore};
/// The chain rule lives in the pure `crate::chain`, shared with the evidence verifier.
pub use crate::chain::{DISCLOSURES_MEMBER, GENESIS_HASH, chain_hash, chained_body};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// The case's current inbox entries, by person, then as that person's inbox lists them
    /// (`since`, step, seat).
    pub inbox: Vec<InboxEntry>,
    /// Every idempotency key used on the case, by key.
    pub idempotency: Vec<IdempotencyExport>,
    /// The case's outbox messages with their delivery state, by `seq`, then `id` (as bytes).
    pub outbox: Vec<OutboxRecord>,
}

/// The answer recorded under an idempotency key: what a retry with that key gets back. The
/// version and hash are those the first append produced (not the case's current ones), so a
/// restored store answers a late retry exactly as the original would have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyExport {
    pub key: String,
    pub version: u64,
    pub last_hash: String,
    pub outcome: Value,
}

impl CaseExport {
    /// Checks that the case is whole and unchanged, as `import_case` does before writing it:
    /// every event's hash re-computed with `chain_hash`, each `prev_hash` the previous event's
    /// hash, seqs 1, 2, 3… without a gap, the head's version and `last_hash` those of the last
    /// event; inbox entries, idempotency answers and outbox messages belong to this case and
    /// point at events it has. A broken chain is `Corrupt` naming the case and the first bad
    /// event; anything else is `Invalid` naming the case (and the event where there is one).
    pub fn verify(&self) -> Result<(), StoreError> {
        let case = self.head.case_id.as_str();
        let corrupt = |seq: u64, reason: String| Err(StoreError::Corrupt { case_id: case.to_string(), seq, reason });
        let invalid = |what: String| Err(StoreError::Invalid(format!("case {case}: {what}")));
        if case.is_empty() || case.contains('\0') {
            return Err(StoreError::Invalid(format!("case id {case:?} must be non-empty and contain no NUL character")));
        }
        if self.events.is_empty() {
            return invalid("no events".into());
        }
        let mut prev = GENESIS_HASH;
        for (i, e) in self.events.iter().enumerate() {
            let seq = i as u64 + 1;
            if e.case_id != case {
                return corrupt(seq, format!("event {seq} says it belongs to case {}", e.case_id));
            }
            if e.seq != seq {
                return corrupt(seq, format!("event {seq} is missing (the next event is {})", e.seq));
            }
            if e.prev_hash != prev {
                return corrupt(seq, "prev_hash is not the hash of the previous event".into());
            }
            if e.computed_hash() != e.hash {
                return corrupt(seq, "the event's content does not match its hash".into());
            }
            prev = &e.hash;
        }
        let last = self.events.len() as u64;
        if self.head.version != last {
            return corrupt(self.head.version.min(last + 1), format!("the case head says version {} but there are {last} events", self.head.version));
        }
        if self.head.last_hash != prev {
            return corrupt(last, "the case head's last_hash is not the hash of the last event".into());
        }
        for p in &self.head.parties {
            check_id(case, "party", p)?;
        }
        for e in &self.inbox {
            if e.case_id != case {
                return invalid(format!("an inbox entry is for case {}", e.case_id));
            }
            check_id(case, "inbox person", &e.person)?;
            check_id(case, "inbox step", &e.step)?;
            if e.seat.contains('\0') {
                return invalid(format!("inbox seat {:?} contains a NUL character", e.seat));
            }
        }
        for r in &self.idempotency {
            check_id(case, "idempotency key", &r.key)?;
            let Some(event) = r.version.checked_sub(1).and_then(|i| self.events.get(i as usize)) else {
                return invalid(format!("the answer under idempotency key {:?} names version {}, which the case does not have", r.key, r.version));
            };
            if event.hash != r.last_hash {
                return corrupt(r.version, format!("the answer under idempotency key {:?} does not carry the hash of event {}", r.key, r.version));
            }
        }
        for m in &self.outbox {
            let Some(event) = m.seq.checked_sub(1).and_then(|i| self.events.get(i as usize)) else {
                return invalid(format!("outbox message {} names version {}, which the case does not have", m.id, m.seq));
            };
            let n = m.id.strip_prefix(&format!("{case}/{}/", m.seq));
            if m.case_id != case || n.is_none_or(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit())) {
                return invalid(format!("outbox message {} is not a message of event {} of this case", m.id, m.seq));
            }
            if m.at != event.recorded_at {
                return corrupt(m.seq, format!("outbox message {} was not recorded with event {}", m.id, m.seq));
            }
        }
        Ok(())
    }
}

fn check_id(case: &str, what: &str, id: &str) -> Result<(), StoreError> {
    if id.is_empty() || id.contains('\0') {
        return Err(StoreError::Invalid(format!("case {case}: {what} {id:?} must be non-empty and contain no NUL character")));
    }
    Ok(())
}

/// The outbox records an append writes: ids `{case_id}/{seq}/{n}`, `at` the append's
/// `recorded_at`, no delivery yet. The same in every store.
pub(crate) fn outbox_records(case_id: &str, seq: u64, at: DateTime<Utc>, messages: &[OutboxMessage]) -> Vec<OutboxRecord> {
    messages
        .iter()
        .enumerate()
        .map(|(n, m)| OutboxRecord {
            id: format!("{case_id}/{seq}/{n}"),
            case_id: case_id.to_string(),
            seq,
            at,
            kind: m.kind.clone(),
            payload: m.payload.clone(),
            delivery: Value::Object(Default::default()),
            settled: false,
            dead: false,
        })
        .collect()
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

/// A page of a person's cases, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct CasesPage {
    pub cases: Vec<CaseHead>,
    /// Pass back to get the next (older) page; `None` at the end.
    pub next: Option<String>,
}

/// The cursor after a case in a person's list: hex of the 8-byte order key of `opened_at`
/// (milliseconds with the sign bit flipped, big-endian) followed by the case id's bytes.
pub fn cases_cursor(opened_at: &DateTime<Utc>, case_id: &str) -> String {
    let mut k = ((opened_at.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    k.extend_from_slice(case_id.as_bytes());
    hex::encode(k)
}

/// The (milliseconds, case id) a `cases_cursor` names; `Cursor` for anything else.
pub fn parse_cases_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    let bad = || StoreError::Cursor(format!("case list cursor {cursor:?} is not one this store handed out"));
    let bytes = hex::decode(cursor).map_err(|_| bad())?;
    if bytes.len() <= 8 {
        return Err(bad());
    }
    let ms = (u64::from_be_bytes(bytes[..8].try_into().map_err(|_| bad())?) ^ (1 << 63)) as i64;
    let case = String::from_utf8(bytes[8..].to_vec()).map_err(|_| bad())?;
    Ok((ms, case))
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
    /// A case (by its id) or an outbox message (by its id, `{case}/{seq}/{n}`) that is not there.
    #[error("{} does not exist [CARIMBO-E0402]", missing(.0))]
    NotFound(String),
    #[error("case {case_id}: stored event {seq} is corrupt: {reason} [CARIMBO-E0403]")]
    Corrupt { case_id: String, seq: u64, reason: String },
    #[error("invalid append: {0} [CARIMBO-E0404]")]
    Invalid(String),
    #[error("{0}; start again from the first page [CARIMBO-E0408]")]
    Cursor(String),
    #[error(
        "another publication was recorded first (publication {found} is the last, this one expected {expected}): check the definitions again and publish again [CARIMBO-E0426]"
    )]
    PublicationConflict { expected: u64, found: u64 },
    #[error("storage failure: {0} [CARIMBO-E0405]")]
    Io(String),
}

impl StoreError {
    /// The stable code (docs/errors.md), as typed data.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Conflict { .. } => "CARIMBO-E0401",
            StoreError::NotFound(_) => "CARIMBO-E0402",
            StoreError::Corrupt { .. } => "CARIMBO-E0403",
            StoreError::Invalid(_) => "CARIMBO-E0404",
            StoreError::Cursor(_) => "CARIMBO-E0408",
            StoreError::PublicationConflict { .. } => "CARIMBO-E0426",
            StoreError::Io(_) => "CARIMBO-E0405",
        }
    }

    /// The HTTP status a client gets for it. An invalid append is a server fault: every client
    /// input the store would refuse (ids, keys) is checked before it gets here.
    pub fn status(&self) -> u16 {
        match self {
            StoreError::Conflict { .. } | StoreError::PublicationConflict { .. } => 409,
            StoreError::NotFound(_) => 404,
            StoreError::Cursor(_) => 400,
            StoreError::Corrupt { .. } | StoreError::Invalid(_) | StoreError::Io(_) => 500,
        }
    }
}

/// "case X", or "outbox message X" for an outbox id (`{case}/{seq}/{n}`, the last two parts
/// digits): `NotFound` carries the bare id, which is what callers match on.
fn missing(id: &str) -> String {
    let mut parts = id.rsplitn(3, '/');
    let digits = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if digits(parts.next()) && digits(parts.next()) && parts.next().is_some_and(|c| !c.is_empty()) {
        format!("outbox message {id}")
    } else {
        format!("case {id}")
    }
}

/// One publication through the administrators' definitions API: which definitions became the
/// served versions, who published them and when, and what changed from the version before.
/// Recorded durably and in order (`Store::publish`); the history administrators and auditors
/// read, and what every server on the store serves (`docs/storage.md`, "Published definitions").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    /// 1 for a store's first publication, then one more each time, with no gap.
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// The administrator who published.
    pub by: String,
    pub definitions: Vec<PublishedDefinition>,
}

/// One definition of a publication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedDefinition {
    /// `form` or `workflow`.
    pub kind: String,
    pub id: String,
    pub version: String,
    /// SHA-256 (hex) of the definition's bytes, stored with `put_definition`.
    pub hash: String,
    /// The version served before, if the id was served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_hash: Option<String>,
    /// JSON pointers of what differs from the previous version (the first 200).
    #[serde(default)]
    pub changes: Vec<String>,
    /// More than 200 places changed.
    #[serde(default)]
    pub changes_truncated: bool,
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
    /// The heads of cases `person` is party to, newest (by `opened_at`) first: the first page.
    fn cases_of(&self, person: &str, limit: usize) -> Result<Vec<CaseHead>, StoreError> {
        Ok(self.cases_page(person, None, limit)?.cases)
    }
    /// A page of the cases `person` is party to, newest (by `opened_at`, then case id) first,
    /// after the cursor `after` (a `next` this method handed out; the same format on every store).
    fn cases_page(&self, person: &str, after: Option<&str>, limit: usize) -> Result<CasesPage, StoreError>;
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
    /// `after` (a cursor: the last id of the previous page; `Cursor` if no such message).
    fn outbox_since(&self, since: DateTime<Utc>, after: Option<&str>, limit: usize) -> Result<Vec<OutboxRecord>, StoreError>;
    /// Messages not yet settled, oldest first (by `at`, then `id`), after the message `after`
    /// (a cursor: the last id of the previous page), so a dispatcher can walk past messages
    /// still waiting for a retry. An `after` that is no longer pending is still a valid cursor.
    fn outbox_pending(&self, after: Option<&str>, limit: usize) -> Result<Vec<OutboxRecord>, StoreError>;
    /// `outbox_pending` of the messages whose kind starts with `kind_prefix` only (`mail.`: the
    /// notifications), in the same order and with the same cursor; the others are not read,
    /// so a dispatcher's pass costs its own backlog, not another's.
    fn outbox_pending_of_kind(&self, kind_prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<OutboxRecord>, StoreError>;
    /// Dead letters (messages with `dead` set, settled or not), oldest first.
    fn outbox_dead(&self, limit: usize) -> Result<Vec<OutboxRecord>, StoreError>;
    fn outbox_get(&self, id: &str) -> Result<Option<OutboxRecord>, StoreError>;
    /// Records the dispatcher's delivery state of a message, durably (it survives a crash once
    /// this returns); `NotFound` for an unknown id. The last update wins.
    fn outbox_update(&self, id: &str, delivery: &Value, settled: bool, dead: bool) -> Result<(), StoreError>;

    // ---- backup / restore ----
    /// Everything about one case, consistent with one version of it; `NotFound` if it does not exist.
    fn export_case(&self, case_id: &str) -> Result<CaseExport, StoreError>;
    /// Every case, in case-id order, handed to `visit` one at a time (an error from `visit`
    /// stops the walk and is returned). `PgStore` reads them all in one snapshot (a REPEATABLE
    /// READ transaction); `SledStore` can only be read by the process that opened it, so with
    /// nobody else appending, its walk is a snapshot too. Returns how many cases were visited.
    fn export_all(&self, visit: &mut dyn FnMut(CaseExport) -> Result<(), StoreError>) -> Result<u64, StoreError>;
    /// Writes a case exactly as exported (same `recorded_at`s and hashes), durably and
    /// atomically, after `CaseExport::verify`; `Conflict` if the case exists. Nothing is
    /// written when it fails.
    fn import_case(&self, case: CaseExport) -> Result<(), StoreError>;
    /// The hashes of every stored definition, sorted.
    fn definition_hashes(&self) -> Result<Vec<String>, StoreError>;

    // ---- publications ----
    /// Records a publication, durably, if it is the next one (`seq` is the last recorded + 1);
    /// otherwise `PublicationConflict` and nothing is written (two administrators publishing at
    /// once, on one server or two: one wins, the other checks again). The bytes of its
    /// definitions are stored (`put_definition`) before.
    fn publish(&self, publication: &Publication) -> Result<(), StoreError>;
    /// Every publication, oldest first.
    fn publications(&self) -> Result<Vec<Publication>, StoreError>;
    /// The `seq` of the last publication, 0 for none: asked often by servers sharing a database
    /// to learn that another one published.
    fn last_publication(&self) -> Result<u64, StoreError>;
    /// Whether other processes may write to this store at the same time (PostgreSQL), so that
    /// a server must look for what they published; a sled store has one process.
    fn is_shared(&self) -> bool {
        false
    }
}
