//! `SledStore`: the embedded case store, one directory and no server.
//!
//! Two parts, in `dir/`:
//! - `journal`: an append-only file with one checksummed record per append (events with their
//!   hashes, the new head, the new inbox entries, the idempotency record) or stored definition,
//!   in the order they were accepted. An append is durable when its record is: group commit is
//!   one `fdatasync` of this file for every append written before it started.
//! - `index/`: a sled database that answers every read. It receives a record only after the
//!   record is durable, in one sled transaction per group, together with the journal offset it
//!   has applied up to; at open, whatever the journal holds past that offset is applied again
//!   (after a crash sled may have lost its last writes). The index can be rebuilt from the
//!   journal (`rebuild_index`).
//!
//! Why not sled alone: in sled 0.34.7 every transaction (and batch) seals and writes sled's I/O
//! buffer, and `flush()` holds sled's global concurrency-control lock while it waits for the
//! disk, so no transaction can commit during a flush: with one transaction per append and
//! flush + fdatasync per group, 64 clients reached 5% of what group commit allows on the same
//! disk. sled's flush is also not power-safe on its own (`sync_file_range`, sled issue #1452),
//! and reopening has been reported to find corruption (#1189, #1533). The journal makes
//! durability one plain `fdatasync`, lets appends run while it happens, and keeps the hash
//! chain recoverable whatever happens to the index. See `docs/storage.md`.
//!
//! Index layout (one sled tree each; ids never contain a NUL byte, so NUL separates key parts
//! and a prefix of `id + 0x00` never matches another id):
//! - `events`: `case + 0x00 + seq (u64 BE)` → JSON `StoredEvent`. A case's log is one prefix.
//! - `heads`: `case` → JSON `CaseHead`.
//! - `inbox`: `person + 0x00 + since (ms, order-preserving BE) + case + 0x00 + step + 0x00 + seat`
//!   → JSON `InboxEntry`. A person's inbox is one prefix, already oldest first, so a page is a
//!   bounded range scan whose cost does not depend on how many cases the store holds.
//! - `inbox_keys`: `case` → the keys of the case's current inbox entries, so an append can
//!   replace them inside a transaction (sled 0.34 transactions cannot scan).
//! - `parties`: `person + 0x00 + opened_at (ms, BE) + case` → empty; scanned backwards for
//!   "my cases", newest first.
//! - `idempotency`: `case + 0x00 + key` → the first append's result.
//! - `definitions`: SHA-256 hex → the definition's bytes.
//! - `outbox`: message id (`case/seq/n`) → JSON `OutboxRecord` (with its delivery state).
//! - `outbox_at`: `at (µs, order-preserving BE) + id` → empty: every message in `(at, id)`
//!   order, for `outbox_since`.
//! - `outbox_pending`, `outbox_dead`: the same keys, only for messages not yet settled / marked
//!   dead, so the dispatcher's scans stay as small as its backlog; an `outbox_pending` entry's
//!   value is the message's kind (empty in an index written before it was), so the mail
//!   thread passes over webhook messages without reading them (`outbox_pending_of_kind`).
//! - `meta`: `journal_applied` → the journal offset the index has applied up to; and
//!   `publication + 0x00 + seq (u64 BE)` → JSON `Publication`, in order.
//!
//! Journal records: `append` (events, head, inbox, idempotency record and outbox messages of one
//! append), `definition`, `outbox_update` (a message's new delivery state), `import` (a whole
//! case written by `import_case`) and `publication` (`Store::publish`). Each is durable before it is acknowledged and is applied to
//! the index as a whole, so a rebuilt index has outbox messages and their delivery state too.

mod index;
mod integrity;
mod journal;
mod keys;

use super::checks::{ChainCheck, validate};
use super::codec::{IdempotencyRecord, check_definition_hash, decode_event, decode_head, decode_idempotency, parse_inbox_cursor};
use index::{APPLIED_KEY, APPLY_BATCH, Change, JournalRecord, PUBLICATION_PREFIX, Prepared, Trees, apply};
use integrity::{settle_case, take_heads_without_events};
use keys::*;

use super::{
    Append, Appended, CaseExport, CaseHead, CasesPage, CorruptCase, GENESIS_HASH, IdempotencyExport, InboxEntry, InboxPage, IntegrityReport, OutboxRecord,
    Publication, Store, StoreError, StoredEvent, chain_hash, outbox_records,
};
use ::sled::Db;
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

const INDEX_DIR: &str = "index";
const JOURNAL_FILE: &str = "journal";
/// The journal grows ahead of its records by zero-filled steps (as database write-ahead logs
/// do): a sync of records written into blocks that already belong to the file changes no file
/// size, so `fdatasync` has no inode to write, only the data. Steps grow with the journal (half
/// its size) between these bounds.
const PREALLOCATE_MIN: u64 = 1 << 20;
const PREALLOCATE_MAX: u64 = 16 << 20;
/// How long the index thread lets synced records gather while nobody waits to read.
const APPLY_GATHER: std::time::Duration = std::time::Duration::from_millis(5);
/// Syncs a group-commit leader may run in a row for others before handing over.
const LEADER_ROUNDS: usize = 8;
/// Records written but not yet applied beyond which `append_unsynced` waits (bounds memory).
const MAX_QUEUED: usize = 8192;

/// The embedded case store. Share one per directory across threads with `Arc`; sled locks the
/// index, so a second `open` of the same directory fails while the first is alive.
pub struct SledStore {
    shared: Arc<Shared>,
    /// Applies synced journal records to the index, in journal order.
    applier: Option<JoinHandle<()>>,
}

/// What the callers' threads and the applier thread share.
struct Shared {
    db: Db,
    trees: Trees,
    journal: File,
    /// Accepts appends one at a time: version check against pending state, journal write,
    /// queueing for the index. Held for microseconds, never across an I/O wait.
    writer: Mutex<Writer>,
    pipeline: Mutex<Pipeline>,
    /// The end of the last record written (kept outside `pipeline`, whose lock every waiter
    /// takes, so that writing a record does not queue behind them).
    written: AtomicU64,
    /// Set with `Pipeline::failed`: lets writers refuse without taking the pipeline lock.
    stopped: std::sync::atomic::AtomicBool,
    /// Woken when `applied` moves: reads catching up.
    applied_cv: Condvar,
    /// Woken when there is work for the index thread (or it should stop).
    work_cv: Condvar,
    flushes: AtomicU64,
    durable_writes: AtomicU64,
    sync_nanos: AtomicU64,
    /// Held by `publish` from its check of the last publication to its record applied.
    publishing: Mutex<()>,
}

/// Counters of the group committer, for benchmarks and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DurabilityStats {
    /// `fdatasync` calls on the journal.
    pub flushes: u64,
    /// Calls that waited for durability (appends, replays, definitions, `sync`).
    pub durable_writes: u64,
    /// Time spent in those `fdatasync` calls.
    pub sync_time: std::time::Duration,
}

/// What the writer knows that the index does not have yet.
struct Writer {
    /// The end of the last record: where the next one goes.
    end: u64,
    /// The journal file's length (zeros after `end`).
    allocated: u64,
    /// Heads of cases with records written but not applied (the newest one).
    heads: HashMap<String, PendingHead>,
    /// Idempotency records written but not applied, by index key.
    idempotency: HashMap<Vec<u8>, PendingReplay>,
    /// Records written, in journal order, waiting to be applied.
    queue: VecDeque<Prepared>,
    /// Bumped each time applied records leave `heads` and `idempotency`: a reader of the index
    /// that saw the same epoch before and after knows no record slipped between the two.
    epoch: u64,
}

struct PendingHead {
    version: u64,
    last_hash: String,
    end: u64,
    /// The whole head, so that `head` reads need not wait for the index.
    head: Arc<CaseHead>,
}

struct PendingReplay {
    record: IdempotencyRecord,
    end: u64,
}

/// Progress through the journal, as offsets: every record ending at or before `synced` is
/// durable (and its append acknowledged), at or before `applied` is in the index. Reads first
/// wait until the index has what was durable when they started, so a caller always reads its
/// own acknowledged writes.
#[derive(Default)]
struct Pipeline {
    synced: u64,
    applied: u64,
    syncing: bool,
    /// Callers asleep until `synced` reaches their ticket.
    sleepers: Vec<(u64, std::thread::Thread)>,
    /// Callers waiting for the index (reads catching up).
    readers_waiting: usize,
    closing: bool,
    /// After a failed write or fdatasync the page cache can no longer be trusted (the
    /// "fsyncgate" lesson): every later write fails until the store is reopened.
    failed: Option<String>,
}

/// What the writer sees of a case: pending records over the index.
#[derive(Clone, PartialEq)]
struct CaseSeen {
    exists: bool,
    version: u64,
    last_hash: String,
    /// An earlier append with the same idempotency key: its answer, and the journal offset to
    /// wait for (0 when already applied).
    replay: Option<(IdempotencyRecord, u64)>,
}

/// The writer's pending view of a case: `None` where the index must be asked.
struct PendingView {
    head: Option<(u64, String)>,
    replay: Option<(IdempotencyRecord, u64)>,
    epoch: u64,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`: applies what the journal holds beyond the index,
    /// cuts off a torn last record, then checks that every case head's `last_hash` is the hash
    /// its last event carries (a structural check, a few µs per case; `verify_case` and
    /// `verify_all` re-hash the content). Fails with `Corrupt` naming the first case that does
    /// not; `open_unverified` then still gives access for `verify_all`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let store = Self::open_unverified(dir)?;
        store.check_heads()?;
        Ok(store)
    }

    /// Opens the store without the head check: for inspection and repair.
    pub fn open_unverified(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| io_err(format!("cannot create {}", dir.display()), e))?;
        let index = dir.join(INDEX_DIR);
        let db = open_index(&index).map_err(|e| {
            if is_lock_error(&e) {
                StoreError::Io(format!(
                    "the store in {} is open in another process (a running `carimbo serve`?): sled lets one process use a store directory at a time; stop that process first",
                    dir.display()
                ))
            } else {
                io_err(format!("cannot open the index in {} (if it is damaged, SledStore::rebuild_index rebuilds it from the journal)", index.display()), e)
            }
        })?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| io_err(format!("cannot open tree {name}"), e));
        let trees = Trees {
            events: tree("events")?,
            heads: tree("heads")?,
            inbox: tree("inbox")?,
            inbox_keys: tree("inbox_keys")?,
            parties: tree("parties")?,
            idempotency: tree("idempotency")?,
            definitions: tree("definitions")?,
            meta: tree("meta")?,
            outbox: tree("outbox")?,
            outbox_at: tree("outbox_at")?,
            outbox_pending: tree("outbox_pending")?,
            outbox_dead: tree("outbox_dead")?,
        };
        let path = dir.join(JOURNAL_FILE);
        let existed = path.exists();
        let journal =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(|e| io_err("cannot open the journal".into(), e))?;
        if !existed {
            sync_dir(dir).map_err(|e| io_err("cannot sync the store directory".into(), e))?;
        }

        let applied = match trees.meta.get(APPLIED_KEY).map_err(sled_err)? {
            Some(v) => u64::from_be_bytes(v.as_ref().try_into().map_err(|_| journal_corrupt("the index's journal offset is malformed".into()))?),
            None => 0,
        };
        let len = journal.metadata().map_err(|e| io_err("cannot read the journal's size".into(), e))?.len();
        if applied > len {
            return Err(journal_corrupt(format!(
                "the index has applied {applied} bytes of journal but the journal has {len}: the journal was truncated or replaced"
            )));
        }
        let mut batch = Vec::new();
        let scan = journal::scan(&journal, applied, |end, payload| {
            let record: JournalRecord =
                serde_json::from_slice(payload).map_err(|e| journal_corrupt(format!("record ending at byte {end} does not decode: {e}")))?;
            batch.push(Prepared { end, change: Change::from_record(&record)? });
            if batch.len() == APPLY_BATCH {
                apply(&trees, &batch)?;
                batch.clear();
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            apply(&trees, &batch)?;
        }
        let allocated = if scan.torn { keep_torn_tail(dir, &journal, scan.valid_end, len)? } else { len };
        if scan.valid_end > applied {
            db.flush().map_err(sled_err)?;
        }
        let end = scan.valid_end;
        let shared = Arc::new(Shared {
            db,
            trees,
            journal,
            writer: Mutex::new(Writer { end, allocated, heads: HashMap::new(), idempotency: HashMap::new(), queue: VecDeque::new(), epoch: 0 }),
            pipeline: Mutex::new(Pipeline { synced: end, applied: end, ..Pipeline::default() }),
            written: AtomicU64::new(end),
            stopped: std::sync::atomic::AtomicBool::new(false),
            applied_cv: Condvar::new(),
            work_cv: Condvar::new(),
            flushes: AtomicU64::new(0),
            durable_writes: AtomicU64::new(0),
            sync_nanos: AtomicU64::new(0),
            publishing: Mutex::new(()),
        });
        let applier = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("carimbo-index".into())
                .spawn(move || shared.apply_loop())
                .map_err(|e| io_err("cannot start the index thread".into(), e))?
        };
        Ok(SledStore { shared, applier: Some(applier) })
    }

    /// Moves the index aside (to `index.replaced-<unix time>`) and builds a new one from the
    /// journal: the cure for a damaged sled index. The store must not be open.
    pub fn rebuild_index(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        if !dir.join(JOURNAL_FILE).exists() {
            return Err(StoreError::Io(format!("{} has no journal to rebuild from", dir.display())));
        }
        let index = dir.join(INDEX_DIR);
        if index.exists() {
            let aside = dir.join(format!("{INDEX_DIR}.replaced-{}", Utc::now().timestamp()));
            std::fs::rename(&index, &aside).map_err(|e| io_err("cannot move the old index aside".into(), e))?;
        }
        Self::open(dir)
    }

    /// Appends like `Store::append` but does not wait for durability: for bulk loads (imports,
    /// benchmarks). Call `sync` after the last one. It waits only when many appends are queued.
    pub fn append_unsynced(&self, append: Append) -> Result<Appended, StoreError> {
        let (appended, ticket, queued) = self.shared.commit(append)?;
        if queued > MAX_QUEUED {
            self.shared.wait_synced(ticket)?;
            self.shared.wait_applied(ticket)?;
        }
        Ok(appended)
    }

    /// Returns once everything written before the call is durable and readable.
    pub fn sync(&self) -> Result<(), StoreError> {
        let ticket = self.shared.written.load(Ordering::Acquire);
        self.shared.wait_synced(ticket)?;
        self.shared.wait_applied(ticket)
    }

    pub fn durability_stats(&self) -> DurabilityStats {
        DurabilityStats {
            flushes: self.shared.flushes.load(Ordering::Relaxed),
            durable_writes: self.shared.durable_writes.load(Ordering::Relaxed),
            sync_time: std::time::Duration::from_nanos(self.shared.sync_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Re-computes the hash chain of every case and checks each head against its log, in one
    /// pass over the event log; finds heads without events and events without a head; and
    /// checks every journal record's checksum.
    pub fn verify_all(&self) -> Result<IntegrityReport, StoreError> {
        self.shared.catch_up()?;
        let mut report = IntegrityReport::default();
        // Heads and event groups are both in case-id order (no id holds a NUL, so `id + 0x00`
        // sorts like `id`): walk them side by side.
        let mut heads = self.shared.trees.heads.iter().peekable();
        let mut current: Option<(Vec<u8>, ChainCheck)> = None;
        for item in self.shared.trees.events.iter() {
            let (key, value) = item.map_err(sled_err)?;
            report.events_checked += 1;
            let Some((case, seq)) = split_event_key(&key) else {
                let case_id = String::from_utf8_lossy(&key).into_owned();
                report.corrupt.push(CorruptCase { case_id, seq: 0, reason: "malformed event key".into() });
                continue;
            };
            if current.as_ref().is_none_or(|(c, _)| c.as_slice() != case) {
                if let Some((c, chain)) = current.take() {
                    settle_case(&c, chain, &mut heads, &mut report)?;
                }
                current = Some((case.to_vec(), ChainCheck::new(String::from_utf8_lossy(case).into_owned())));
            }
            current.as_mut().expect("set above").1.push(seq, &value);
        }
        if let Some((c, chain)) = current.take() {
            settle_case(&c, chain, &mut heads, &mut report)?;
        }
        take_heads_without_events(&mut heads, None, &mut report)?;

        let written = self.shared.lock_writer().end;
        let scan = journal::scan(&self.shared.journal, 0, |end, payload| {
            if end <= written {
                report.journal_records_checked += 1;
                if let Err(e) = serde_json::from_slice::<JournalRecord>(payload) {
                    report.store_problems.push(format!("journal record ending at byte {end} does not decode: {e}"));
                }
            }
            Ok(())
        })?;
        if scan.valid_end < written {
            report.store_problems.push(format!("the journal is damaged at byte {}: its checksum does not match", scan.valid_end));
        }
        Ok(report)
    }

    /// The fast check at open: each head's last event exists, says it is that event of that case,
    /// and carries the head's `last_hash`.
    fn check_heads(&self) -> Result<(), StoreError> {
        /// The parts of an event the check reads; serde skips the rest unallocated.
        #[derive(serde::Deserialize)]
        struct EventLink<'a> {
            #[serde(borrow)]
            case_id: std::borrow::Cow<'a, str>,
            seq: u64,
            #[serde(borrow)]
            hash: std::borrow::Cow<'a, str>,
        }
        for item in self.shared.trees.heads.iter() {
            let (key, value) = item.map_err(sled_err)?;
            let case_id = String::from_utf8_lossy(&key);
            let head = decode_head_link(&case_id, &value)?;
            let corrupt = |reason: String| StoreError::Corrupt { case_id: case_id.to_string(), seq: head.version, reason };
            let Some(bytes) = self.shared.trees.events.get(event_key(&case_id, head.version)).map_err(sled_err)? else {
                return Err(corrupt(format!("the case head names event {} but the log has no such event", head.version)));
            };
            let event: EventLink = serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("the stored bytes do not decode as an event: {e}")))?;
            if event.case_id != case_id || event.seq != head.version {
                return Err(corrupt(format!("the event says it is event {} of case {}", event.seq, event.case_id)));
            }
            if event.hash != head.last_hash {
                return Err(corrupt("the case head's last_hash is not the hash of the last event".into()));
            }
        }
        Ok(())
    }
}

impl Shared {
    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        // Every unlock leaves the writer consistent, so a panic elsewhere does not poison it.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_pipeline(&self) -> MutexGuard<'_, Pipeline> {
        self.pipeline.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the writer has pending for a case (newest record first), and the epoch.
    fn pending_view(w: &Writer, case_id: &str, idem_key: Option<&[u8]>) -> PendingView {
        PendingView {
            head: w.heads.get(case_id).map(|p| (p.version, p.last_hash.clone())),
            replay: idem_key.and_then(|k| w.idempotency.get(k)).map(|p| (p.record.clone(), p.end)),
            epoch: w.epoch,
        }
    }

    /// The case as the writer sees it: pending records, else the index (read without the
    /// writer lock).
    fn case_seen(&self, case_id: &str, idem_key: Option<&[u8]>) -> Result<(CaseSeen, u64), StoreError> {
        let view = Self::pending_view(&self.lock_writer(), case_id, idem_key);
        let replay = match (view.replay, idem_key) {
            (Some(r), _) => Some(r),
            (None, Some(k)) => match self.trees.idempotency.get(k).map_err(sled_err)? {
                Some(bytes) => Some((decode_idempotency(case_id, &bytes)?, 0)),
                None => None,
            },
            (None, None) => None,
        };
        let seen = match view.head {
            Some((version, last_hash)) => CaseSeen { exists: true, version, last_hash, replay },
            None => match self.trees.heads.get(case_id.as_bytes()).map_err(sled_err)? {
                Some(bytes) => {
                    let head = decode_head_link(case_id, &bytes)?;
                    CaseSeen { exists: true, version: head.version, last_hash: head.last_hash.into_owned(), replay }
                }
                None => CaseSeen { exists: false, version: 0, last_hash: GENESIS_HASH.to_string(), replay },
            },
        };
        Ok((seen, view.epoch))
    }

    /// Under the writer lock: is `seen` (taken at `epoch`) still how the case stands? Pending
    /// records are authoritative; what came from the index still holds if no applied record
    /// has left the pending maps since (else the caller looks again).
    fn still_current(w: &Writer, seen: &CaseSeen, epoch: u64, case_id: &str, idem_key: Option<&[u8]>) -> bool {
        let view = Self::pending_view(w, case_id, idem_key);
        if view.replay.is_some() {
            return false;
        }
        match view.head {
            Some((version, last_hash)) => seen.replay.is_none() && version == seen.version && last_hash == seen.last_hash,
            None => view.epoch == epoch,
        }
    }

    /// Checks and writes an append to the journal; returns its result, the journal offset to
    /// wait for, and how many records are queued for the index.
    fn commit(&self, a: Append) -> Result<(Appended, u64, usize), StoreError> {
        validate(&a)?;
        let idem_key = a.idempotency_key.as_deref().map(|k| idempotency_key(&a.case_id, k));
        loop {
            let (seen, epoch) = self.case_seen(&a.case_id, idem_key.as_deref())?;
            if let Some((r, ticket)) = seen.replay {
                return Ok((Appended { version: r.version, last_hash: r.last_hash, replayed: true, outcome: r.outcome }, ticket, 0));
            }
            if seen.version != a.expected_version {
                // A stale answer from the index is re-checked under the lock before it is given.
                if Self::still_current(&self.lock_writer(), &seen, epoch, &a.case_id, idem_key.as_deref()) {
                    return Err(if seen.exists {
                        StoreError::Conflict { case_id: a.case_id.clone(), expected: a.expected_version, found: seen.version }
                    } else {
                        StoreError::NotFound(a.case_id.clone())
                    });
                }
                continue;
            }

            // Hashing and encoding happen outside the writer lock, against the state just
            // seen; the record is written only if that state is still current.
            let recorded_at = Utc::now().trunc_subsecs(6);
            let mut prev_hash = seen.last_hash.clone();
            let mut events = Vec::with_capacity(a.events.len());
            for (i, body) in a.events.iter().enumerate() {
                let seq = seen.version + 1 + i as u64;
                let hash = chain_hash(&a.case_id, seq, &recorded_at, &prev_hash, body);
                events.push(StoredEvent { case_id: a.case_id.clone(), seq, recorded_at, prev_hash, hash: hash.clone(), body: body.clone() });
                prev_hash = hash;
            }
            let version = seen.version + a.events.len() as u64;
            let last_hash = prev_hash;
            let mut head = a.head.clone();
            head.version = version;
            head.last_hash = last_hash.clone();
            let idem_record = IdempotencyRecord { version, last_hash: last_hash.clone(), outcome: a.outcome.clone() };
            let idempotency = a.idempotency_key.as_deref().map(|key| (key, &idem_record));
            let outbox = outbox_records(&a.case_id, version, recorded_at, &a.outbox);
            let (change, payload) = Change::append(&a.case_id, a.expected_version, &events, &head, &a.inbox, idempotency, &outbox)?;
            let framed = journal::frame(&payload);

            let mut w = self.lock_writer();
            if !Self::still_current(&w, &seen, epoch, &a.case_id, idem_key.as_deref()) {
                continue;
            }
            let end = self.write_record(&mut w, &framed, change)?;
            w.heads.insert(a.case_id.clone(), PendingHead { version, last_hash: last_hash.clone(), end, head: Arc::new(head) });
            if let Some(k) = idem_key.clone() {
                w.idempotency.insert(k, PendingReplay { record: idem_record, end });
            }
            let queued = w.queue.len();
            drop(w);
            return Ok((Appended { version, last_hash, replayed: false, outcome: a.outcome }, end, queued));
        }
    }

    fn outbox_record(&self, id: &str) -> Result<Option<OutboxRecord>, StoreError> {
        self.trees.outbox.get(id.as_bytes()).map_err(sled_err)?.map(|v| decode_outbox(id, &v)).transpose()
    }

    /// Where a walk of the `(at, id)` order starts after the message `after` (a cursor).
    fn outbox_after(&self, after: Option<&str>) -> Result<Bound<Vec<u8>>, StoreError> {
        let Some(id) = after else { return Ok(Bound::Unbounded) };
        let Some(cursor) = self.outbox_record(id)? else {
            return Err(StoreError::Cursor(format!("outbox cursor {id:?} is not a message this store holds")));
        };
        Ok(Bound::Excluded(outbox_order_key(&cursor.at, &cursor.id)))
    }

    /// The records named by the ids at the end of `(at, id)` order keys, up to `limit`.
    fn outbox_in_order(&self, keys: ::sled::Iter, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        for key in keys.keys().take(limit) {
            let key = key.map_err(sled_err)?;
            let id = String::from_utf8_lossy(outbox_id_of_order_key(&key).unwrap_or_default()).into_owned();
            match self.outbox_record(&id)? {
                Some(record) => out.push(record),
                None => return Err(StoreError::Io(format!("the index lists outbox message {id:?} but does not hold it; rebuild the index"))),
            }
        }
        Ok(out)
    }

    /// Checks an imported case and writes it to the journal as one record, unless the case
    /// exists (pending or in the index); returns the journal offset to wait for.
    fn import(&self, case: CaseExport) -> Result<u64, StoreError> {
        case.verify()?;
        let change = Change::import(&case)?;
        let case_id = case.head.case_id.clone();
        let (version, last_hash) = (case.head.version, case.head.last_hash.clone());
        let head = Arc::new(case.head.clone());
        let pending: Vec<(Vec<u8>, IdempotencyRecord)> = case
            .idempotency
            .iter()
            .map(|r| (idempotency_key(&case_id, &r.key), IdempotencyRecord { version: r.version, last_hash: r.last_hash.clone(), outcome: r.outcome.clone() }))
            .collect();
        let framed = journal::frame(&encode(&JournalRecord::Import { case: Box::new(case) })?);
        loop {
            let (seen, epoch) = self.case_seen(&case_id, None)?;
            let mut w = self.lock_writer();
            if !Self::still_current(&w, &seen, epoch, &case_id, None) {
                continue;
            }
            if seen.exists {
                return Err(StoreError::Conflict { case_id, expected: 0, found: seen.version });
            }
            let end = self.write_record(&mut w, &framed, change)?;
            w.heads.insert(case_id, PendingHead { version, last_hash, end, head });
            for (key, record) in pending {
                w.idempotency.insert(key, PendingReplay { record, end });
            }
            return Ok(end);
        }
    }

    /// Extends the journal with zeros from `from` to past `needed`; returns the new length.
    fn preallocate(&self, from: u64, needed: u64) -> std::io::Result<u64> {
        let step = (from / 2).clamp(PREALLOCATE_MIN, PREALLOCATE_MAX);
        let to = (needed + step).div_ceil(PREALLOCATE_MIN) * PREALLOCATE_MIN;
        let zeros = vec![0u8; 1 << 20];
        let mut at = from;
        while at < to {
            let n = (to - at).min(zeros.len() as u64) as usize;
            self.journal.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        Ok(to)
    }

    /// Stops the store accepting writes (see `Pipeline::failed`).
    fn fail(&self, p: &mut Pipeline, why: String) {
        p.failed.get_or_insert(why);
        self.stopped.store(true, Ordering::Release);
    }

    fn wake_all(&self) {
        self.applied_cv.notify_all();
        self.work_cv.notify_all();
    }

    /// Writes one framed record at the journal's end and queues it for the index.
    fn write_record(&self, w: &mut Writer, framed: &[u8], change: Change) -> Result<u64, StoreError> {
        if self.stopped.load(Ordering::Acquire) {
            let why = self.lock_pipeline().failed.clone().unwrap_or_default();
            return Err(StoreError::Io(format!("the store stopped accepting writes and must be reopened: {why}")));
        }
        let needed = w.end + framed.len() as u64;
        let grown = if needed > w.allocated { self.preallocate(w.allocated, needed) } else { Ok(w.allocated) };
        let written = grown.and_then(|allocated| {
            w.allocated = allocated;
            self.journal.write_all_at(framed, w.end)
        });
        if let Err(e) = written {
            let why = format!("writing the journal: {e}");
            self.fail(&mut self.lock_pipeline(), why.clone());
            self.wake_all();
            return Err(StoreError::Io(why));
        }
        w.end += framed.len() as u64;
        w.queue.push_back(Prepared { end: w.end, change });
        self.written.store(w.end, Ordering::Release);
        Ok(w.end)
    }

    /// Group commit: returns once the record ending at `ticket` is durable. Whoever finds no
    /// sync running becomes the leader and runs one `fdatasync` for every record written before
    /// it starts; the others sleep, each woken only when a sync covers its record (waking all
    /// of them at every sync costs more CPU than the appends themselves when many wait). A
    /// leader whose own record is durable keeps syncing (a few rounds at most) while others
    /// wait for more: it is already running, where handing over would first have to wake a
    /// waiter, which on a busy machine waits for a CPU.
    fn wait_synced(&self, ticket: u64) -> Result<(), StoreError> {
        let mut p = self.lock_pipeline();
        loop {
            if let Some(why) = &p.failed {
                return Err(StoreError::Io(format!("the store could not make writes durable and must be reopened: {why}")));
            }
            if p.synced >= ticket {
                self.durable_writes.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            if p.syncing {
                // Registered under the lock the leader takes to publish `synced`: no wake-up
                // is lost (an unpark before the park makes the park return at once).
                p.sleepers.push((ticket, std::thread::current()));
                drop(p);
                std::thread::park();
                p = self.lock_pipeline();
                continue;
            }
            p.syncing = true;
            for _round in 0..LEADER_ROUNDS {
                let target = self.written.load(Ordering::Acquire);
                drop(p);
                let started = std::time::Instant::now();
                let result = self.journal.sync_data();
                self.sync_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                self.flushes.fetch_add(1, Ordering::Relaxed);
                p = self.lock_pipeline();
                if let Err(e) = result {
                    self.fail(&mut p, format!("fdatasync of the journal: {e}"));
                    break;
                }
                p.synced = p.synced.max(target);
                let synced = p.synced;
                p.sleepers.retain(|(t, thread)| {
                    let covered = *t <= synced;
                    if covered {
                        thread.unpark();
                    }
                    !covered
                });
                self.work_cv.notify_one();
                if p.sleepers.is_empty() {
                    break;
                }
            }
            p.syncing = false;
            if p.failed.is_some() {
                for (_, thread) in p.sleepers.drain(..) {
                    thread.unpark();
                }
                self.wake_all();
            } else if let Some(next) = p.sleepers.iter().min_by_key(|(t, _)| *t) {
                // Others still wait and nobody syncs: the one waiting longest takes over.
                next.1.unpark();
            }
        }
    }

    /// Returns once the index holds the record ending at `ticket`.
    fn wait_applied(&self, ticket: u64) -> Result<(), StoreError> {
        let mut p = self.lock_pipeline();
        if p.applied >= ticket {
            return Ok(());
        }
        // Someone waits: the index thread stops gathering and applies now.
        p.readers_waiting += 1;
        self.work_cv.notify_one();
        let outcome = loop {
            if let Some(why) = &p.failed {
                break Err(StoreError::Io(format!("the store's index is behind its journal and must be reopened: {why}")));
            }
            if p.applied >= ticket {
                break Ok(());
            }
            p = self.applied_cv.wait(p).unwrap_or_else(|e| e.into_inner());
        };
        p.readers_waiting -= 1;
        outcome
    }

    /// A case's head as the last record written left it, without waiting for the index: the
    /// writer's pending head while its record is on its way to the index (once durable: a
    /// record not yet synced is waited for, as its own append waits), else the index's, which
    /// then holds every record of the case (a pending head leaves the writer only after its
    /// record is applied).
    fn current_head(&self, case_id: &str) -> Result<Option<CaseHead>, StoreError> {
        let pending = self.lock_writer().heads.get(case_id).map(|p| (p.head.clone(), p.end));
        if let Some((head, end)) = pending {
            if self.lock_pipeline().synced < end {
                self.wait_synced(end)?;
            }
            return Ok(Some((*head).clone()));
        }
        self.trees.heads.get(case_id.as_bytes()).map_err(sled_err)?.map(|b| decode_head(case_id, &b)).transpose()
    }

    /// Before a read: waits until the index holds every acknowledged append.
    fn catch_up(&self) -> Result<(), StoreError> {
        let ticket = self.lock_pipeline().synced;
        self.wait_applied(ticket)
    }

    /// The index thread: applies synced records in journal order until the store closes.
    fn apply_loop(&self) {
        loop {
            let upto = {
                let mut p = self.lock_pipeline();
                while p.synced <= p.applied && !p.closing && p.failed.is_none() {
                    p = self.work_cv.wait(p).unwrap_or_else(|e| e.into_inner());
                }
                if p.failed.is_some() || (p.closing && p.synced <= p.applied) {
                    return;
                }
                // While nobody waits to read, let a few syncs' worth of records gather: each
                // sled transaction costs a write of sled's log, whatever its size.
                let gather_until = std::time::Instant::now() + APPLY_GATHER;
                while p.readers_waiting == 0 && !p.closing && p.failed.is_none() {
                    let now = std::time::Instant::now();
                    if now >= gather_until {
                        break;
                    }
                    p = self.work_cv.wait_timeout(p, gather_until - now).unwrap_or_else(|e| e.into_inner()).0;
                }
                p.synced
            };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.apply_synced(upto)));
            let mut p = self.lock_pipeline();
            match result {
                Ok(Ok(())) => p.applied = p.applied.max(upto),
                Ok(Err(e)) => self.fail(&mut p, format!("applying the journal to the index: {e}")),
                Err(_) => self.fail(&mut p, "applying the journal to the index panicked".into()),
            }
            if p.failed.is_some() {
                drop(p);
                self.wake_all();
            } else {
                self.applied_cv.notify_all();
            }
        }
    }

    /// Applies every queued record ending at or before `upto` to the index, in journal order.
    fn apply_synced(&self, upto: u64) -> Result<(), StoreError> {
        loop {
            let batch: Vec<Prepared> = {
                let mut w = self.lock_writer();
                let n = w.queue.iter().take(APPLY_BATCH).take_while(|p| p.end <= upto).count();
                w.queue.drain(..n).collect()
            };
            if batch.is_empty() {
                return Ok(());
            }
            apply(&self.trees, &batch)?;
            // Now in the index: forget what the writer kept, unless a newer record replaced it.
            let mut w = self.lock_writer();
            w.epoch += 1;
            for p in &batch {
                if let Change::Append { case_id, idempotency, .. } = &p.change {
                    if w.heads.get(case_id).is_some_and(|h| h.end == p.end) {
                        w.heads.remove(case_id);
                    }
                    for (k, _) in idempotency {
                        if w.idempotency.get(k).is_some_and(|r| r.end == p.end) {
                            w.idempotency.remove(k);
                        }
                    }
                }
            }
        }
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // What `append_unsynced` left behind is made durable, the index thread finishes what is
        // synced and stops, and sled writes its buffers, so the next open has little to replay.
        let _ = self.sync();
        self.shared.lock_pipeline().closing = true;
        self.shared.wake_all();
        if let Some(applier) = self.applier.take() {
            let _ = applier.join();
        }
        let _ = self.shared.db.flush();
    }
}

/// Opens sled, waiting up to two seconds for its file lock: after a store in this process is
/// dropped, sled's I/O threads may hold the files for a moment longer.
fn open_index(path: &Path) -> ::sled::Result<Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match ::sled::Config::new().path(path).open() {
            Err(e) if is_lock_error(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn is_lock_error(e: &::sled::Error) -> bool {
    e.to_string().contains("could not acquire lock")
}

/// Cuts the journal back to `valid_end`, keeping the cut-off bytes in a side file; a tail of
/// zeros is preallocated space and stays. Returns the journal's new length.
fn keep_torn_tail(dir: &Path, journal: &File, valid_end: u64, len: u64) -> Result<u64, StoreError> {
    let mut tail = vec![0u8; (len - valid_end) as usize];
    journal.read_exact_at(&mut tail, valid_end).map_err(|e| io_err("reading the journal's torn tail".into(), e))?;
    if tail.iter().all(|b| *b == 0) {
        return Ok(len);
    }
    let side = dir.join(format!("{JOURNAL_FILE}.torn-at-{valid_end}"));
    std::fs::write(&side, &tail).map_err(|e| io_err(format!("saving the torn tail to {}", side.display()), e))?;
    journal.set_len(valid_end).map_err(|e| io_err("cutting off the journal's torn tail".into(), e))?;
    journal.sync_all().map_err(|e| io_err("syncing the journal".into(), e))?;
    sync_dir(dir).map_err(|e| io_err("cannot sync the store directory".into(), e))?;
    Ok(valid_end)
}

fn journal_corrupt(reason: String) -> StoreError {
    StoreError::Io(format!("the journal cannot be applied: {reason}"))
}

impl Store for SledStore {
    fn idempotent_outcome(&self, case_id: &str, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let k = idempotency_key(case_id, key);
        let (seen, _) = self.shared.case_seen(case_id, Some(&k))?;
        Ok(seen.replay.map(|(record, _)| record.outcome))
    }

    fn append(&self, append: Append) -> Result<Appended, StoreError> {
        let (appended, ticket, _) = self.shared.commit(append)?;
        // A replay waits too: the first attempt may still be on its way to the disk.
        self.shared.wait_synced(ticket)?;
        Ok(appended)
    }

    fn events(&self, case_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        self.shared.catch_up()?;
        let mut out = Vec::new();
        for item in self.shared.trees.events.scan_prefix(case_prefix(case_id)) {
            let (key, value) = item.map_err(sled_err)?;
            let seq = split_event_key(&key).map_or(0, |(_, s)| s);
            out.push(decode_event(case_id, seq, &value)?);
        }
        if out.is_empty() {
            return Err(StoreError::NotFound(case_id.to_string()));
        }
        Ok(out)
    }

    fn head(&self, case_id: &str) -> Result<Option<CaseHead>, StoreError> {
        // Read on every act (`CaseService` checks its kept replay against it): answered
        // without making the index thread apply now, which would cost a sled transaction per
        // read and the gathering of records between syncs.
        self.shared.current_head(case_id)
    }

    fn inbox(&self, person: &str, after: Option<&str>, limit: usize) -> Result<InboxPage, StoreError> {
        if limit == 0 {
            return Err(StoreError::Invalid("an inbox page needs a limit of at least 1".into()));
        }
        self.shared.catch_up()?;
        let prefix = id_prefix(person);
        let start = match after {
            None => Bound::Included(prefix.clone()),
            Some(cursor) => {
                let position = parse_inbox_cursor(cursor)?.position;
                Bound::Excluded([prefix.as_slice(), &position].concat())
            }
        };
        let end = Bound::Excluded(prefix_end(person));
        let mut entries = Vec::with_capacity(limit.min(256));
        let mut last_key = None;
        let mut more = false;
        for item in self.shared.trees.inbox.range::<Vec<u8>, _>((start, end)) {
            let (key, value) = item.map_err(sled_err)?;
            if entries.len() == limit {
                more = true;
                break;
            }
            let entry: InboxEntry = serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                case_id: String::new(),
                seq: 0,
                reason: format!("undecodable inbox entry for {person}: {e}"),
            })?;
            entries.push(entry);
            last_key = Some(key);
        }
        let next = match (more, last_key) {
            (true, Some(k)) => Some(hex::encode(&k[prefix.len()..])),
            _ => None,
        };
        Ok(InboxPage { entries, next })
    }

    fn heads(&self, after: Option<&str>, limit: usize) -> Result<Vec<CaseHead>, StoreError> {
        self.shared.catch_up()?;
        let start = match after {
            Some(a) => Bound::Excluded(a.as_bytes().to_vec()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in self.shared.trees.heads.range::<Vec<u8>, _>((start, Bound::Unbounded)).take(limit) {
            let (key, bytes) = item.map_err(sled_err)?;
            out.push(decode_head(&String::from_utf8_lossy(&key), &bytes)?);
        }
        Ok(out)
    }

    fn cases_page(&self, person: &str, after: Option<&str>, limit: usize) -> Result<CasesPage, StoreError> {
        self.shared.catch_up()?;
        let prefix = id_prefix(person);
        let end = match after {
            // The cursor is the key's suffix after the person's prefix (see `cases_cursor`).
            Some(cursor) => {
                crate::store::parse_cases_cursor(cursor)?;
                Bound::Excluded([prefix.as_slice(), &hex::decode(cursor).expect("checked above")].concat())
            }
            None => Bound::Excluded(prefix_end(person)),
        };
        let mut cases = Vec::with_capacity(limit.min(256));
        let mut more = false;
        for item in self.shared.trees.parties.range::<Vec<u8>, _>((Bound::Included(prefix.clone()), end)).rev() {
            if cases.len() == limit {
                more = true;
                break;
            }
            let (key, _) = item.map_err(sled_err)?;
            let Some(case) = key.get(prefix.len() + 8..) else { continue };
            if let Some(bytes) = self.shared.trees.heads.get(case).map_err(sled_err)? {
                cases.push(decode_head(&String::from_utf8_lossy(case), &bytes)?);
            }
        }
        let next = match (more, cases.last()) {
            (true, Some(h)) => Some(crate::store::cases_cursor(&h.opened_at, &h.case_id)),
            _ => None,
        };
        Ok(CasesPage { cases, next })
    }

    fn verify_case(&self, case_id: &str) -> Result<(), StoreError> {
        self.shared.catch_up()?;
        let mut chain = ChainCheck::new(case_id.to_string());
        for item in self.shared.trees.events.scan_prefix(case_prefix(case_id)) {
            let (key, value) = item.map_err(sled_err)?;
            let seq = split_event_key(&key).map_or(0, |(_, s)| s);
            chain.push(seq, &value);
        }
        let head = self.shared.trees.heads.get(case_id.as_bytes()).map_err(sled_err)?;
        if chain.count == 0 && head.is_none() {
            return Err(StoreError::NotFound(case_id.to_string()));
        }
        chain.finish(head.as_deref().map(|h| decode_head(case_id, h)))
    }

    fn put_definition(&self, hash: &str, bytes: &[u8]) -> Result<(), StoreError> {
        check_definition_hash(hash, bytes)?;
        if self.shared.trees.definitions.get(hash).map_err(sled_err)?.is_some() {
            return Ok(());
        }
        let record = JournalRecord::Definition { hash: hash.to_string(), bytes: hex::encode(bytes) };
        let framed = journal::frame(&encode(&record)?);
        let change = Change::Definition { hash: hash.to_string(), bytes: bytes.to_vec() };
        let ticket = self.shared.write_record(&mut self.shared.lock_writer(), &framed, change)?;
        self.shared.wait_synced(ticket)
    }

    fn definition(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.shared.catch_up()?;
        Ok(self.shared.trees.definitions.get(hash).map_err(sled_err)?.map(|v| v.to_vec()))
    }

    fn definition_hashes(&self) -> Result<Vec<String>, StoreError> {
        self.shared.catch_up()?;
        let mut out = Vec::new();
        for key in self.shared.trees.definitions.iter().keys() {
            out.push(String::from_utf8_lossy(&key.map_err(sled_err)?).into_owned());
        }
        Ok(out)
    }

    fn publish(&self, publication: &Publication) -> Result<(), StoreError> {
        // One publication at a time: the check of the last seq and the write are one step.
        let _one = self.shared.publishing.lock().unwrap_or_else(|e| e.into_inner());
        let found = self.last_publication()?;
        if publication.seq != found + 1 {
            return Err(StoreError::PublicationConflict { expected: publication.seq.saturating_sub(1), found });
        }
        let record = JournalRecord::Publication { publication: Box::new(publication.clone()) };
        let framed = journal::frame(&encode(&record)?);
        let change = Change::Publication { seq: publication.seq, value: encode(publication)? };
        let ticket = self.shared.write_record(&mut self.shared.lock_writer(), &framed, change)?;
        self.shared.wait_synced(ticket)?;
        // Applied before the lock is let go, so the next publisher's check sees it.
        self.shared.catch_up()
    }

    fn publications(&self) -> Result<Vec<Publication>, StoreError> {
        self.shared.catch_up()?;
        let mut out = Vec::new();
        for item in self.shared.trees.meta.scan_prefix(PUBLICATION_PREFIX) {
            let (_, value) = item.map_err(sled_err)?;
            out.push(serde_json::from_slice(&value).map_err(|e| StoreError::Io(format!("a stored publication does not decode: {e}")))?);
        }
        Ok(out)
    }

    fn last_publication(&self) -> Result<u64, StoreError> {
        // Asked before every submission, so without waiting for the index: `publish` (the only
        // writer of publications) returns only once its record is in the index.
        let last = self.shared.trees.meta.scan_prefix(PUBLICATION_PREFIX).next_back().transpose().map_err(sled_err)?;
        Ok(last.and_then(|(key, _)| key.get(PUBLICATION_PREFIX.len()..).and_then(|b| <[u8; 8]>::try_from(b).ok())).map_or(0, u64::from_be_bytes))
    }

    fn outbox_get(&self, id: &str) -> Result<Option<OutboxRecord>, StoreError> {
        self.shared.catch_up()?;
        self.shared.outbox_record(id)
    }

    fn outbox_since(&self, since: DateTime<Utc>, after: Option<&str>, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        self.shared.catch_up()?;
        let from = outbox_time_key(&since).to_vec();
        let start = match after {
            None => Bound::Included(from),
            Some(id) => {
                let Some(cursor) = self.shared.outbox_record(id)? else {
                    return Err(StoreError::Cursor(format!("outbox cursor {id:?} is not a message this store holds")));
                };
                let key = outbox_order_key(&cursor.at, &cursor.id);
                if key < from { Bound::Included(from) } else { Bound::Excluded(key) }
            }
        };
        self.shared.outbox_in_order(self.shared.trees.outbox_at.range::<Vec<u8>, _>((start, Bound::Unbounded)), limit)
    }

    fn outbox_pending(&self, after: Option<&str>, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        self.shared.catch_up()?;
        let start = self.shared.outbox_after(after)?;
        self.shared.outbox_in_order(self.shared.trees.outbox_pending.range::<Vec<u8>, _>((start, Bound::Unbounded)), limit)
    }

    fn outbox_pending_of_kind(&self, kind_prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        self.shared.catch_up()?;
        let start = self.shared.outbox_after(after)?;
        let mut out = Vec::with_capacity(limit.min(1024));
        for entry in self.shared.trees.outbox_pending.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            if out.len() >= limit {
                break;
            }
            let (key, kind) = entry.map_err(sled_err)?;
            // The pending index holds each message's kind, so another kind is passed over
            // unread; an index written before it did (an empty value) is read to see.
            if !kind.is_empty() && !kind.starts_with(kind_prefix.as_bytes()) {
                continue;
            }
            let id = String::from_utf8_lossy(outbox_id_of_order_key(&key).unwrap_or_default()).into_owned();
            match self.shared.outbox_record(&id)? {
                Some(record) if record.kind.starts_with(kind_prefix) => out.push(record),
                Some(_) => {}
                None => return Err(StoreError::Io(format!("the index lists outbox message {id:?} but does not hold it; rebuild the index"))),
            }
        }
        Ok(out)
    }

    fn outbox_dead(&self, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        self.shared.catch_up()?;
        self.shared.outbox_in_order(self.shared.trees.outbox_dead.iter(), limit)
    }

    fn outbox_update(&self, id: &str, delivery: &serde_json::Value, settled: bool, dead: bool) -> Result<(), StoreError> {
        // Messages are never removed, so one the index holds now is there when the update is
        // applied after it, in journal order.
        self.shared.catch_up()?;
        if self.shared.trees.outbox.get(id.as_bytes()).map_err(sled_err)?.is_none() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let record = JournalRecord::OutboxUpdate { id: id.to_string(), delivery: delivery.clone(), settled, dead };
        let framed = journal::frame(&encode(&record)?);
        let change = Change::OutboxUpdate { id: id.to_string(), delivery: delivery.clone(), settled, dead };
        let ticket = self.shared.write_record(&mut self.shared.lock_writer(), &framed, change)?;
        self.shared.wait_synced(ticket)
    }

    fn export_case(&self, case_id: &str) -> Result<CaseExport, StoreError> {
        self.shared.catch_up()?;
        // sled reads several trees without a common snapshot: read the case, then its head
        // again, and read once more if an append came between. Events, idempotency answers
        // and outbox messages past the head's version (written meanwhile) are left out.
        loop {
            let t = &self.shared.trees;
            let Some(bytes) = t.heads.get(case_id.as_bytes()).map_err(sled_err)? else {
                return Err(StoreError::NotFound(case_id.to_string()));
            };
            let head = decode_head(case_id, &bytes)?;
            let mut events = Vec::with_capacity(head.version as usize);
            for item in t.events.scan_prefix(case_prefix(case_id)) {
                let (key, value) = item.map_err(sled_err)?;
                let seq = split_event_key(&key).map_or(0, |(_, s)| s);
                if seq > head.version {
                    break;
                }
                events.push(decode_event(case_id, seq, &value)?);
            }
            let mut inbox_keys = match t.inbox_keys.get(case_id.as_bytes()).map_err(sled_err)? {
                Some(list) => decode_key_list(&list),
                None => Vec::new(),
            };
            inbox_keys.sort_unstable();
            inbox_keys.dedup();
            let mut inbox = Vec::with_capacity(inbox_keys.len());
            for key in inbox_keys {
                if let Some(value) = t.inbox.get(&key).map_err(sled_err)? {
                    inbox.push(serde_json::from_slice::<InboxEntry>(&value).map_err(|e| StoreError::Corrupt {
                        case_id: case_id.to_string(),
                        seq: 0,
                        reason: format!("undecodable inbox entry: {e}"),
                    })?);
                }
            }
            let prefix = case_prefix(case_id);
            let mut idempotency = Vec::new();
            for item in t.idempotency.scan_prefix(&prefix) {
                let (key, value) = item.map_err(sled_err)?;
                let record = decode_idempotency(case_id, &value)?;
                if record.version <= head.version {
                    let key = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                    idempotency.push(IdempotencyExport { key, version: record.version, last_hash: record.last_hash, outcome: record.outcome });
                }
            }
            let mut outbox = Vec::new();
            for item in t.outbox.scan_prefix(format!("{case_id}/")) {
                let (key, value) = item.map_err(sled_err)?;
                let record = decode_outbox(&String::from_utf8_lossy(&key), &value)?;
                // A case whose id extends this one with a `/` shares the prefix.
                if record.case_id == case_id && record.seq <= head.version {
                    outbox.push(record);
                }
            }
            outbox.sort_by(|a, b| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
            let again = t.heads.get(case_id.as_bytes()).map_err(sled_err)?.map(|b| decode_head(case_id, &b)).transpose()?;
            if again.as_ref().is_some_and(|h| h.version == head.version) {
                return Ok(CaseExport { head, events, inbox, idempotency, outbox });
            }
        }
    }

    fn export_all(&self, visit: &mut dyn FnMut(CaseExport) -> Result<(), StoreError>) -> Result<u64, StoreError> {
        self.shared.catch_up()?;
        let mut n = 0;
        for key in self.shared.trees.heads.iter().keys() {
            let key = key.map_err(sled_err)?;
            visit(self.export_case(&String::from_utf8_lossy(&key))?)?;
            n += 1;
        }
        Ok(n)
    }

    fn import_case(&self, case: CaseExport) -> Result<(), StoreError> {
        let ticket = self.shared.import(case)?;
        self.shared.wait_synced(ticket)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Invalid(format!("cannot encode as JSON: {e}")))
}

/// The parts of a case head that place it in its chain; serde skips the rest unallocated.
#[derive(serde::Deserialize)]
struct HeadLink<'a> {
    version: u64,
    #[serde(borrow)]
    last_hash: std::borrow::Cow<'a, str>,
}

fn decode_head_link<'a>(case_id: &str, bytes: &'a [u8]) -> Result<HeadLink<'a>, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { case_id: case_id.to_string(), seq: 0, reason: format!("undecodable case head: {e}") })
}

fn decode_outbox(id: &str, bytes: &[u8]) -> Result<OutboxRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Io(format!("outbox message {id} in the index does not decode: {e}; rebuild the index")))
}

fn sled_err(e: ::sled::Error) -> StoreError {
    StoreError::Io(format!("sled: {e}"))
}

fn io_err(context: String, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("{context}: {e}"))
}
