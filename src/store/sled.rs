//! `SledStore`: the embedded case store, one directory and no server.
//!
//! Layout (one sled tree each; ids never contain a NUL byte, so NUL separates key parts and a
//! prefix of `id + 0x00` never matches another id):
//! - `events`: `case + 0x00 + seq (u64 BE)` → JSON `StoredEvent`. A case's log is one prefix.
//! - `heads`: `case` → JSON `CaseHead`.
//! - `inbox`: `person + 0x00 + since (ms, order-preserving BE) + case + 0x00 + step + 0x00 + seat`
//!   → JSON `InboxEntry`. A person's inbox is one prefix, already oldest first, so a page is a
//!   bounded range scan whose cost does not depend on how many cases the store holds.
//! - `inbox_keys`: `case` → the inbox keys of the case's current entries, so an append can replace
//!   them inside a transaction (sled 0.34 transactions cannot scan).
//! - `parties`: `person + 0x00 + opened_at (ms, BE) + case` → empty; scanned backwards for
//!   "my cases", newest first.
//! - `idempotency`: `case + 0x00 + key` → the first append's result.
//! - `definitions`: SHA-256 hex → the definition's bytes.
//!
//! An append runs as one multi-tree sled transaction. sled 0.34 serializes transactions behind one
//! lock, so the version check and the writes cannot interleave with another append; the work
//! that does not need the lock (hashing, JSON) is done before it, against the head read outside,
//! and the transaction only proceeds if the head is still byte-for-byte that one.
//!
//! Durability: sled's `flush()` writes its log with `sync_file_range`, which survives a process
//! crash but not a power loss (sled issue #1452), and never syncs the blob files it writes for
//! large values. So the group-commit leader follows `flush()` with `fdatasync` of the log file and
//! of every blob file not synced yet. See `docs/storage.md`.

use super::{
    Append, Appended, CaseHead, CorruptCase, GENESIS_HASH, InboxEntry, InboxPage, IntegrityReport, Store, StoreError,
    StoredEvent, chain_hash,
};
use ::sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use ::sled::{Db, IVec, Tree};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// The embedded case store. Share one per directory across threads with `Arc`; sled locks the
/// directory, so a second `open` of the same directory fails while the first is alive.
pub struct SledStore {
    db: Db,
    events: Tree,
    heads: Tree,
    inbox: Tree,
    inbox_keys: Tree,
    parties: Tree,
    idempotency: Tree,
    definitions: Tree,
    durability: GroupCommit,
}

/// Counters of the group committer, for benchmarks and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DurabilityStats {
    /// Completed flush + fdatasync rounds.
    pub flushes: u64,
    /// Calls that waited for durability (appends, replays, definitions, `sync`).
    pub durable_writes: u64,
}

/// The first append's answer, kept under its idempotency key.
#[derive(Serialize, Deserialize)]
struct IdempotencyRecord {
    version: u64,
    last_hash: String,
    outcome: Value,
}

/// Why a transaction gave up without writing.
enum Abort {
    /// The idempotency key was already used: the stored record.
    Replayed(IVec),
    /// The head is no longer the one the append was prepared against: prepare again.
    HeadMoved,
    /// An event key that the head says is free already holds an event.
    Occupied(u64),
}

/// The result of the transactional part of an append, before waiting for durability.
struct Committed {
    version: u64,
    last_hash: String,
    replayed: bool,
    outcome: Value,
}

impl SledStore {
    /// Opens (or creates) the store in `dir` and checks that every case head's `last_hash`
    /// matches its last event (re-computing that event's hash). Fails with `Corrupt` naming the
    /// first case that does not; `open_unverified` then still gives access for `verify_all`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let store = Self::open_unverified(dir)?;
        store.check_heads()?;
        Ok(store)
    }

    /// Opens the store without the integrity check: for inspection and repair only.
    pub fn open_unverified(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        // A store dropped a moment ago in this process may still hold sled's file lock while its
        // background flusher stops; wait up to two seconds for it instead of failing.
        let mut attempts = 0;
        let db = loop {
            match ::sled::Config::new().path(dir).open() {
                Ok(db) => break db,
                Err(e) if attempts < 100 && e.to_string().contains("could not acquire lock") => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(io_err(format!("cannot open the store in {}", dir.display()), e)),
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(|e| io_err(format!("cannot open tree {name}"), e));
        let store = SledStore {
            events: tree("events")?,
            heads: tree("heads")?,
            inbox: tree("inbox")?,
            inbox_keys: tree("inbox_keys")?,
            parties: tree("parties")?,
            idempotency: tree("idempotency")?,
            definitions: tree("definitions")?,
            durability: GroupCommit::new(dir)?,
            db,
        };
        // Make the files sled created at open (and their directory entries) durable once.
        store.sync()?;
        sync_dir(dir).map_err(|e| io_err("cannot sync the store directory".into(), e))?;
        Ok(store)
    }

    /// Appends like `Store::append` but returns as soon as the transaction has committed,
    /// without waiting for durability: for bulk loads (imports, benchmarks). Call `sync` after
    /// the last one; until then a crash may lose any of them (never part of one).
    pub fn append_unsynced(&self, append: Append) -> Result<Appended, StoreError> {
        let c = self.commit(append)?;
        Ok(Appended { version: c.version, last_hash: c.last_hash, replayed: c.replayed, outcome: c.outcome })
    }

    /// Returns once everything committed before the call is durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.durability.wait_durable(&self.db)
    }

    pub fn durability_stats(&self) -> DurabilityStats {
        DurabilityStats {
            flushes: self.durability.flushes.load(Ordering::Relaxed),
            durable_writes: self.durability.durable_writes.load(Ordering::Relaxed),
        }
    }

    /// Re-computes the hash chain of every case and checks each head against its log, in one
    /// pass over the event log. Also finds heads without events and events without a head.
    pub fn verify_all(&self) -> Result<IntegrityReport, StoreError> {
        let mut report = IntegrityReport::default();
        // Heads and event groups are both in case-id order (no id holds a NUL, so `id + 0x00`
        // sorts like `id`): walk them side by side.
        let mut heads = self.heads.iter().peekable();
        let mut current: Option<(Vec<u8>, ChainCheck)> = None;
        for item in self.events.iter() {
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
        Ok(report)
    }

    /// The fast check at open: each head's last event exists, hashes to what it claims, and that
    /// is the head's `last_hash`.
    fn check_heads(&self) -> Result<(), StoreError> {
        for item in self.heads.iter() {
            let (key, value) = item.map_err(sled_err)?;
            let case_id = String::from_utf8_lossy(&key).into_owned();
            let head = decode_head(&case_id, &value)?;
            let corrupt = |reason: String| StoreError::Corrupt { case_id: case_id.clone(), seq: head.version, reason };
            let Some(bytes) = self.events.get(event_key(&case_id, head.version)).map_err(sled_err)? else {
                return Err(corrupt(format!("the case head names event {} but the log has no such event", head.version)));
            };
            let event = decode_event(&case_id, head.version, &bytes)?;
            if event.computed_hash() != event.hash {
                return Err(corrupt("the event's content does not match its hash".into()));
            }
            if event.hash != head.last_hash {
                return Err(corrupt("the case head's last_hash is not the hash of the last event".into()));
            }
        }
        Ok(())
    }

    /// The transactional part of an append: validated, prepared outside the lock, committed in
    /// one transaction. Does not wait for durability.
    fn commit(&self, a: Append) -> Result<Committed, StoreError> {
        validate(&a)?;
        let idem_key = a.idempotency_key.as_deref().map(|k| idempotency_key(&a.case_id, k));
        loop {
            if let Some(k) = &idem_key
                && let Some(rec) = self.idempotency.get(k).map_err(sled_err)?
            {
                return replayed(&a.case_id, &rec);
            }
            let head_bytes = self.heads.get(a.case_id.as_bytes()).map_err(sled_err)?;
            let current = head_bytes.as_ref().map(|b| decode_head(&a.case_id, b)).transpose()?;
            let found = current.as_ref().map_or(0, |h| h.version);
            if found != a.expected_version {
                return Err(if current.is_none() {
                    StoreError::NotFound(a.case_id.clone())
                } else {
                    StoreError::Conflict { case_id: a.case_id.clone(), expected: a.expected_version, found }
                });
            }

            // Everything below depends only on the head read above; the transaction checks it
            // is still that head.
            let recorded_at = Utc::now().trunc_subsecs(6);
            let mut prev_hash = current.as_ref().map_or_else(|| GENESIS_HASH.to_string(), |h| h.last_hash.clone());
            let mut events = Vec::with_capacity(a.events.len());
            for (i, body) in a.events.iter().enumerate() {
                let seq = found + 1 + i as u64;
                let hash = chain_hash(&a.case_id, seq, &recorded_at, &prev_hash, body);
                let event = StoredEvent { case_id: a.case_id.clone(), seq, recorded_at, prev_hash, hash: hash.clone(), body: body.clone() };
                events.push((event_key(&a.case_id, seq), encode(&event)?));
                prev_hash = hash;
            }
            let version = found + a.events.len() as u64;
            let last_hash = prev_hash;
            let mut head = a.head.clone();
            head.version = version;
            head.last_hash = last_hash.clone();
            let new_head = encode(&head)?;
            let mut inbox = Vec::with_capacity(a.inbox.len());
            for entry in &a.inbox {
                inbox.push((inbox_key(entry), encode(entry)?));
            }
            let inbox_list = encode_key_list(inbox.iter().map(|(k, _)| k.as_slice()));
            let old_parties: Vec<Vec<u8>> = current.as_ref().map(party_keys).unwrap_or_default();
            let new_parties = party_keys(&head);
            let idem_record = match &idem_key {
                Some(_) => Some(encode(&IdempotencyRecord { version, last_hash: last_hash.clone(), outcome: a.outcome.clone() })?),
                None => None,
            };

            let result = (&self.events, &self.heads, &self.inbox, &self.inbox_keys, &self.parties, &self.idempotency).transaction(
                |(ev, hd, ib, ik, pt, id)| {
                    if let Some(k) = &idem_key
                        && let Some(rec) = id.get(k)?
                    {
                        return Err(ConflictableTransactionError::Abort(Abort::Replayed(rec)));
                    }
                    if hd.get(a.case_id.as_bytes())? != head_bytes {
                        return Err(ConflictableTransactionError::Abort(Abort::HeadMoved));
                    }
                    for (i, (key, value)) in events.iter().enumerate() {
                        if ev.insert(key.as_slice(), value.as_slice())?.is_some() {
                            return Err(ConflictableTransactionError::Abort(Abort::Occupied(found + 1 + i as u64)));
                        }
                    }
                    hd.insert(a.case_id.as_bytes(), new_head.as_slice())?;
                    if let Some(old) = ik.get(a.case_id.as_bytes())? {
                        for key in decode_key_list(&old) {
                            ib.remove(key)?;
                        }
                    }
                    for (key, value) in &inbox {
                        ib.insert(key.as_slice(), value.as_slice())?;
                    }
                    if inbox.is_empty() {
                        ik.remove(a.case_id.as_bytes())?;
                    } else {
                        ik.insert(a.case_id.as_bytes(), inbox_list.as_slice())?;
                    }
                    for key in &old_parties {
                        pt.remove(key.as_slice())?;
                    }
                    for key in &new_parties {
                        pt.insert(key.as_slice(), &[][..])?;
                    }
                    if let (Some(k), Some(rec)) = (&idem_key, &idem_record) {
                        id.insert(k.as_slice(), rec.as_slice())?;
                    }
                    Ok(())
                },
            );
            return match result {
                Ok(()) => Ok(Committed { version, last_hash, replayed: false, outcome: a.outcome }),
                Err(TransactionError::Abort(Abort::HeadMoved)) => continue,
                Err(TransactionError::Abort(Abort::Replayed(rec))) => replayed(&a.case_id, &rec),
                Err(TransactionError::Abort(Abort::Occupied(seq))) => Err(StoreError::Corrupt {
                    case_id: a.case_id.clone(),
                    seq,
                    reason: format!("the case head says version {found} but event {seq} already exists"),
                }),
                Err(TransactionError::Storage(e)) => Err(sled_err(e)),
            };
        }
    }
}

impl Store for SledStore {
    fn idempotent_outcome(&self, case_id: &str, key: &str) -> Result<Option<Value>, StoreError> {
        match self.idempotency.get(idempotency_key(case_id, key)).map_err(sled_err)? {
            Some(rec) => Ok(Some(replayed(case_id, &rec)?.outcome)),
            None => Ok(None),
        }
    }

    fn append(&self, append: Append) -> Result<Appended, StoreError> {
        let c = self.commit(append)?;
        // A replay waits too: the first attempt may still be on its way to the disk.
        self.durability.wait_durable(&self.db)?;
        Ok(Appended { version: c.version, last_hash: c.last_hash, replayed: c.replayed, outcome: c.outcome })
    }

    fn events(&self, case_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        for item in self.events.scan_prefix(case_prefix(case_id)) {
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
        self.heads.get(case_id.as_bytes()).map_err(sled_err)?.map(|b| decode_head(case_id, &b)).transpose()
    }

    fn inbox(&self, person: &str, after: Option<&str>, limit: usize) -> Result<InboxPage, StoreError> {
        if limit == 0 {
            return Err(StoreError::Invalid("an inbox page needs a limit of at least 1".into()));
        }
        let prefix = id_prefix(person);
        let start = match after {
            None => Bound::Included(prefix.clone()),
            Some(cursor) => {
                let suffix = hex::decode(cursor).map_err(|_| StoreError::Invalid(format!("inbox cursor {cursor:?} is not one this store handed out")))?;
                Bound::Excluded([prefix.as_slice(), &suffix].concat())
            }
        };
        let end = Bound::Excluded(prefix_end(person));
        let mut entries = Vec::with_capacity(limit.min(256));
        let mut last_key = None;
        let mut more = false;
        for item in self.inbox.range::<Vec<u8>, _>((start, end)) {
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

    fn cases_of(&self, person: &str, limit: usize) -> Result<Vec<CaseHead>, StoreError> {
        let prefix = id_prefix(person);
        let mut out = Vec::with_capacity(limit.min(256));
        for item in self.parties.scan_prefix(&prefix).rev() {
            if out.len() == limit {
                break;
            }
            let (key, _) = item.map_err(sled_err)?;
            let Some(case) = key.get(prefix.len() + 8..) else { continue };
            if let Some(bytes) = self.heads.get(case).map_err(sled_err)? {
                out.push(decode_head(&String::from_utf8_lossy(case), &bytes)?);
            }
        }
        Ok(out)
    }

    fn verify_case(&self, case_id: &str) -> Result<(), StoreError> {
        let mut chain = ChainCheck::new(case_id.to_string());
        for item in self.events.scan_prefix(case_prefix(case_id)) {
            let (key, value) = item.map_err(sled_err)?;
            let seq = split_event_key(&key).map_or(0, |(_, s)| s);
            chain.push(seq, &value);
        }
        let head = self.heads.get(case_id.as_bytes()).map_err(sled_err)?;
        if chain.count == 0 && head.is_none() {
            return Err(StoreError::NotFound(case_id.to_string()));
        }
        chain.finish(head.as_deref())
    }

    fn put_definition(&self, hash: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let actual = hex::encode(Sha256::digest(bytes));
        if actual != hash {
            return Err(StoreError::Invalid(format!("definition bytes hash to {actual}, not {hash}")));
        }
        if self.definitions.get(hash).map_err(sled_err)?.is_none() {
            self.definitions.insert(hash, bytes).map_err(sled_err)?;
        }
        self.durability.wait_durable(&self.db)
    }

    fn definition(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.definitions.get(hash).map_err(sled_err)?.map(|v| v.to_vec()))
    }
}

type HeadIter = std::iter::Peekable<::sled::Iter>;

/// Judges one case of `verify_all` once its events have been read, with its head (if any).
fn settle_case(case: &[u8], chain: ChainCheck, heads: &mut HeadIter, report: &mut IntegrityReport) -> Result<(), StoreError> {
    take_heads_without_events(heads, Some(case), report)?;
    let head = match heads.peek() {
        Some(Ok((k, _))) if k.as_ref() == case => Some(next_head(heads)?.1),
        _ => None,
    };
    report.cases_checked += 1;
    match chain.finish(head.as_deref()) {
        Err(StoreError::Corrupt { case_id, seq, reason }) => report.corrupt.push(CorruptCase { case_id, seq, reason }),
        Err(other) => return Err(other),
        Ok(()) => {}
    }
    Ok(())
}

/// Reports every head that sorts before `bound` (all, without one): they have no events.
fn take_heads_without_events(heads: &mut HeadIter, bound: Option<&[u8]>, report: &mut IntegrityReport) -> Result<(), StoreError> {
    loop {
        match heads.peek() {
            None => return Ok(()),
            Some(Ok((k, _))) if bound.is_some_and(|b| k.as_ref() >= b) => return Ok(()),
            _ => {}
        }
        let (k, v) = next_head(heads)?;
        let case_id = String::from_utf8_lossy(&k).into_owned();
        let seq = decode_head(&case_id, &v).map_or(0, |h| h.version);
        report.cases_checked += 1;
        report.corrupt.push(CorruptCase { case_id, seq, reason: "the case head has no events in the log".into() });
    }
}

fn next_head(heads: &mut HeadIter) -> Result<(IVec, IVec), StoreError> {
    heads.next().expect("peeked").map_err(sled_err)
}

/// Walks one case's log in key order and remembers the first bad event.
struct ChainCheck {
    case_id: String,
    count: u64,
    prev_hash: String,
    problem: Option<(u64, String)>,
}

impl ChainCheck {
    fn new(case_id: String) -> Self {
        ChainCheck { case_id, count: 0, prev_hash: GENESIS_HASH.to_string(), problem: None }
    }

    fn push(&mut self, seq: u64, bytes: &[u8]) {
        if self.problem.is_some() {
            return;
        }
        let expected = self.count + 1;
        self.count += 1;
        if seq != expected {
            self.problem = Some((expected, format!("event {expected} is missing (the next stored event is {seq})")));
            return;
        }
        let event: StoredEvent = match serde_json::from_slice(bytes) {
            Ok(e) => e,
            Err(e) => {
                self.problem = Some((seq, format!("the stored bytes do not decode as an event: {e}")));
                return;
            }
        };
        if event.case_id != self.case_id || event.seq != seq {
            self.problem = Some((seq, format!("the event says it is event {} of case {}", event.seq, event.case_id)));
        } else if event.computed_hash() != event.hash {
            self.problem = Some((seq, "the event's content does not match its hash".into()));
        } else if event.prev_hash != self.prev_hash {
            self.problem = Some((seq, "prev_hash is not the hash of the previous event".into()));
        } else {
            self.prev_hash = event.hash;
        }
    }

    /// The verdict, with the case head (raw bytes) checked against the log.
    fn finish(self, head: Option<&[u8]>) -> Result<(), StoreError> {
        let corrupt = |seq, reason| Err(StoreError::Corrupt { case_id: self.case_id.clone(), seq, reason });
        if let Some((seq, reason)) = self.problem.clone() {
            return corrupt(seq, reason);
        }
        let Some(head) = head else {
            return if self.count == 0 { Ok(()) } else { corrupt(self.count, "events without a case head".into()) };
        };
        let head = decode_head(&self.case_id, head)?;
        if head.version != self.count {
            return corrupt(head.version.min(self.count + 1), format!("the case head says version {} but the log has {} events", head.version, self.count));
        }
        if head.last_hash != self.prev_hash {
            return corrupt(head.version, "the case head's last_hash is not the hash of the last event".into());
        }
        Ok(())
    }
}

/// Group commit: a writer registers after its transaction committed and waits until a flush
/// that started after its registration has finished. Whoever finds no flush running becomes the
/// leader and flushes for everyone registered so far; the others wait on the condvar, so
/// concurrent writers share one flush + fdatasync.
struct GroupCommit {
    /// sled's log file: one file, appended to and reused in segments.
    log: File,
    blobs_dir: PathBuf,
    /// Blob files already synced (only the leader touches this).
    synced_blobs: Mutex<HashSet<OsString>>,
    state: Mutex<CommitState>,
    done: Condvar,
    flushes: AtomicU64,
    durable_writes: AtomicU64,
}

#[derive(Default)]
struct CommitState {
    /// Tickets handed out so far.
    registered: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    flushing: bool,
    /// After a failed fdatasync the page cache can no longer be trusted (the "fsyncgate"
    /// lesson): every later write fails until the store is reopened.
    failed: Option<String>,
}

impl GroupCommit {
    fn new(dir: &Path) -> Result<Self, StoreError> {
        let log = File::open(dir.join("db")).map_err(|e| io_err("cannot open sled's log file".into(), e))?;
        Ok(GroupCommit {
            log,
            blobs_dir: dir.join("blobs"),
            synced_blobs: Mutex::new(HashSet::new()),
            state: Mutex::new(CommitState::default()),
            done: Condvar::new(),
            flushes: AtomicU64::new(0),
            durable_writes: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, CommitState> {
        // The state is consistent at every unlock, so a panic elsewhere does not poison it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_durable(&self, db: &Db) -> Result<(), StoreError> {
        let mut st = self.lock();
        st.registered += 1;
        let ticket = st.registered;
        loop {
            if let Some(why) = &st.failed {
                return Err(StoreError::Io(format!("the store could not make writes durable and must be reopened: {why}")));
            }
            if st.durable >= ticket {
                self.durable_writes.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            if st.flushing {
                st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            st.flushing = true;
            let target = st.registered;
            drop(st);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.flush(db)));
            st = self.lock();
            st.flushing = false;
            match outcome {
                Ok(Ok(())) => st.durable = target,
                Ok(Err(e)) => st.failed = Some(e),
                Err(_) => st.failed = Some("the flush panicked".into()),
            }
            self.flushes.fetch_add(1, Ordering::Relaxed);
            self.done.notify_all();
        }
    }

    /// sled's flush (log written, `sync_file_range`), then what it leaves out: `fdatasync` of
    /// the log and of new blob files, and of the blob directory when it gained files.
    fn flush(&self, db: &Db) -> Result<(), String> {
        db.flush().map_err(|e| format!("sled flush: {e}"))?;
        self.log.sync_data().map_err(|e| format!("fdatasync of sled's log: {e}"))?;
        let mut synced = self.synced_blobs.lock().unwrap_or_else(|p| p.into_inner());
        let entries = match std::fs::read_dir(&self.blobs_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("listing sled's blobs: {e}")),
        };
        let mut present = HashSet::new();
        let mut new_files = false;
        for entry in entries {
            let entry = entry.map_err(|e| format!("listing sled's blobs: {e}"))?;
            let name = entry.file_name();
            if !synced.contains(&name) {
                match File::open(entry.path()) {
                    Ok(f) => f.sync_data().map_err(|e| format!("fdatasync of blob {}: {e}", entry.path().display()))?,
                    // Garbage-collected by sled between listing and opening.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(format!("opening blob {}: {e}", entry.path().display())),
                }
                new_files = true;
            }
            present.insert(name);
        }
        if new_files {
            sync_dir(&self.blobs_dir).map_err(|e| format!("fsync of the blob directory: {e}"))?;
        }
        *synced = present;
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn validate(a: &Append) -> Result<(), StoreError> {
    let invalid = |m: String| Err(StoreError::Invalid(m));
    if a.events.is_empty() {
        return invalid(format!("an append to case {} has no events", a.case_id));
    }
    check_id("case id", &a.case_id)?;
    if a.head.case_id != a.case_id {
        return invalid(format!("the head is for case {}, the append for case {}", a.head.case_id, a.case_id));
    }
    if let Some(k) = &a.idempotency_key {
        check_id("idempotency key", k)?;
    }
    for p in &a.head.parties {
        check_id("party", p)?;
    }
    for e in &a.inbox {
        if e.case_id != a.case_id {
            return invalid(format!("an inbox entry is for case {}, the append for case {}", e.case_id, a.case_id));
        }
        check_id("inbox person", &e.person)?;
        check_id("inbox step", &e.step)?;
        // The seat is the key's last part, so it may be empty but not hold a separator.
        if e.seat.contains('\0') {
            return invalid(format!("inbox seat {:?} contains a NUL character", e.seat));
        }
    }
    Ok(())
}

fn check_id(what: &str, id: &str) -> Result<(), StoreError> {
    if id.is_empty() || id.contains('\0') {
        return Err(StoreError::Invalid(format!("{what} {id:?} must be non-empty and contain no NUL character")));
    }
    Ok(())
}

fn replayed(case_id: &str, record: &[u8]) -> Result<Committed, StoreError> {
    let rec: IdempotencyRecord = serde_json::from_slice(record).map_err(|e| StoreError::Corrupt {
        case_id: case_id.to_string(),
        seq: 0,
        reason: format!("undecodable idempotency record: {e}"),
    })?;
    Ok(Committed { version: rec.version, last_hash: rec.last_hash, replayed: true, outcome: rec.outcome })
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Invalid(format!("cannot encode as JSON: {e}")))
}

fn decode_head(case_id: &str, bytes: &[u8]) -> Result<CaseHead, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { case_id: case_id.to_string(), seq: 0, reason: format!("undecodable case head: {e}") })
}

fn decode_event(case_id: &str, seq: u64, bytes: &[u8]) -> Result<StoredEvent, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        case_id: case_id.to_string(),
        seq,
        reason: format!("the stored bytes do not decode as an event: {e}"),
    })
}

fn sled_err(e: ::sled::Error) -> StoreError {
    StoreError::Io(format!("sled: {e}"))
}

fn io_err(context: String, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("{context}: {e}"))
}

/// `id + 0x00`: the prefix of every key that starts with this id.
fn id_prefix(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 1);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k
}

/// The first key after every key with prefix `id + 0x00`.
fn prefix_end(id: &str) -> Vec<u8> {
    let mut k = id_prefix(id);
    *k.last_mut().expect("non-empty") = 1;
    k
}

fn case_prefix(case_id: &str) -> Vec<u8> {
    id_prefix(case_id)
}

fn event_key(case_id: &str, seq: u64) -> Vec<u8> {
    let mut k = id_prefix(case_id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn split_event_key(key: &[u8]) -> Option<(&[u8], u64)> {
    let split = key.len().checked_sub(9)?;
    let (case, rest) = key.split_at(split);
    if rest[0] != 0 {
        return None;
    }
    Some((case, u64::from_be_bytes(rest[1..].try_into().ok()?)))
}

/// Milliseconds since the epoch as 8 bytes that sort like the times (sign bit flipped).
fn time_key(t: &DateTime<Utc>) -> [u8; 8] {
    ((t.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

fn inbox_key(e: &InboxEntry) -> Vec<u8> {
    let mut k = id_prefix(&e.person);
    k.extend_from_slice(&time_key(&e.since));
    k.extend_from_slice(e.case_id.as_bytes());
    k.push(0);
    k.extend_from_slice(e.step.as_bytes());
    k.push(0);
    k.extend_from_slice(e.seat.as_bytes());
    k
}

fn party_keys(head: &CaseHead) -> Vec<Vec<u8>> {
    let mut people: Vec<&str> = head.parties.iter().map(String::as_str).collect();
    people.sort_unstable();
    people.dedup();
    people
        .into_iter()
        .map(|p| {
            let mut k = id_prefix(p);
            k.extend_from_slice(&time_key(&head.opened_at));
            k.extend_from_slice(head.case_id.as_bytes());
            k
        })
        .collect()
}

fn idempotency_key(case_id: &str, key: &str) -> Vec<u8> {
    let mut k = id_prefix(case_id);
    k.extend_from_slice(key.as_bytes());
    k
}

/// A list of keys as `(u32 BE length, bytes)*`.
fn encode_key_list<'a>(keys: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for k in keys {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k);
    }
    out
}

fn decode_key_list(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
        bytes = &bytes[4..];
        let Some(k) = bytes.get(..len) else { break };
        out.push(k.to_vec());
        bytes = &bytes[len..];
    }
    out
}
