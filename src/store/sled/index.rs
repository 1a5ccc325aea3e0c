//! What the index holds and how journal records reach it: the journal record format, a record
//! turned into ready-to-write keys and values (`Change`), and `apply`, which writes a batch of
//! them in one sled transaction together with the journal offset reached.

use super::keys::{decode_key_list, encode_key_list, event_key, idempotency_key, inbox_key, party_keys, split_event_key};
use super::{decode_head, encode, journal_corrupt, sled_err};
use crate::store::{CaseHead, InboxEntry, StoreError, StoredEvent};
use ::sled::Tree;
use ::sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(super) const APPLIED_KEY: &[u8] = b"journal_applied";
/// Records applied to the index in one sled transaction.
pub(super) const APPLY_BATCH: usize = 2048;

pub(super) struct Trees {
    pub(super) events: Tree,
    pub(super) heads: Tree,
    pub(super) inbox: Tree,
    pub(super) inbox_keys: Tree,
    pub(super) parties: Tree,
    pub(super) idempotency: Tree,
    pub(super) definitions: Tree,
    pub(super) meta: Tree,
}

/// One journal record.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum JournalRecord {
    Append {
        case_id: String,
        expected_version: u64,
        events: Vec<StoredEvent>,
        head: Box<CaseHead>,
        inbox: Vec<InboxEntry>,
        idempotency: Option<IdempotencyEntry>,
    },
    Definition {
        hash: String,
        /// Hex, so that any bytes fit in JSON.
        bytes: String,
    },
}

#[derive(Serialize, Deserialize)]
pub(super) struct IdempotencyEntry {
    pub(super) key: String,
    pub(super) record: IdempotencyRecord,
}

/// The first append's answer, kept under its idempotency key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct IdempotencyRecord {
    pub(super) version: u64,
    pub(super) last_hash: String,
    pub(super) outcome: Value,
}

/// A journal record turned into index keys and values, ready to apply.
pub(super) struct Prepared {
    /// Journal offset just after the record.
    pub(super) end: u64,
    pub(super) change: Change,
}

pub(super) enum Change {
    Append {
        case_id: String,
        expected: u64,
        events: Vec<(Vec<u8>, Vec<u8>)>,
        head: Vec<u8>,
        parties: Vec<Vec<u8>>,
        inbox: Vec<(Vec<u8>, Vec<u8>)>,
        inbox_list: Vec<u8>,
        idempotency: Option<(Vec<u8>, Vec<u8>)>,
    },
    Definition {
        hash: String,
        bytes: Vec<u8>,
    },
}

impl Change {
    pub(super) fn from_record(record: &JournalRecord) -> Result<Change, StoreError> {
        Ok(match record {
            JournalRecord::Append { case_id, expected_version, events, head, inbox, idempotency } => {
                let mut event_rows = Vec::with_capacity(events.len());
                for e in events {
                    event_rows.push((event_key(case_id, e.seq), encode(e)?));
                }
                let mut inbox_rows = Vec::with_capacity(inbox.len());
                for e in inbox {
                    inbox_rows.push((inbox_key(e), encode(e)?));
                }
                let inbox_list = encode_key_list(inbox_rows.iter().map(|(k, _)| k.as_slice()));
                let idempotency = match idempotency {
                    Some(i) => Some((idempotency_key(case_id, &i.key), encode(&i.record)?)),
                    None => None,
                };
                Change::Append {
                    case_id: case_id.clone(),
                    expected: *expected_version,
                    events: event_rows,
                    head: encode(head)?,
                    parties: party_keys(head),
                    inbox: inbox_rows,
                    inbox_list,
                    idempotency,
                }
            }
            JournalRecord::Definition { hash, bytes } => Change::Definition {
                hash: hash.clone(),
                bytes: hex::decode(bytes).map_err(|e| journal_corrupt(format!("definition {hash} is not hex: {e}")))?,
            },
        })
    }
}

/// Applies records to the index in one sled transaction, with the journal offset reached.
pub(super) fn apply(t: &Trees, batch: &[Prepared]) -> Result<(), StoreError> {
    let Some(last) = batch.last() else { return Ok(()) };
    let abort = |e: StoreError| Err(ConflictableTransactionError::Abort(e));
    let result = (&t.events, &t.heads, &t.inbox, &t.inbox_keys, &t.parties, &t.idempotency, &t.definitions, &t.meta).transaction(
        |(ev, hd, ib, ik, pt, id, df, mt)| {
            for p in batch {
                match &p.change {
                    Change::Append { case_id, expected, events, head, parties, inbox, inbox_list, idempotency } => {
                        let old = match hd.get(case_id.as_bytes())? {
                            Some(bytes) => match decode_head(case_id, &bytes) {
                                Ok(h) => Some(h),
                                Err(e) => return abort(e),
                            },
                            None => None,
                        };
                        let found = old.as_ref().map_or(0, |h| h.version);
                        if found != *expected {
                            return abort(StoreError::Corrupt {
                                case_id: case_id.clone(),
                                seq: expected + 1,
                                reason: format!("the journal appends at version {expected} but the index has version {found}"),
                            });
                        }
                        for (key, value) in events {
                            if ev.insert(key.as_slice(), value.as_slice())?.is_some() {
                                let seq = split_event_key(key).map_or(0, |(_, s)| s);
                                return abort(StoreError::Corrupt {
                                    case_id: case_id.clone(),
                                    seq,
                                    reason: format!("the case head says version {found} but event {seq} already exists"),
                                });
                            }
                        }
                        // Party keys rarely change after the first append: touch only the
                        // difference (each sled write copies part of a node).
                        let old_parties = old.as_ref().map(party_keys).unwrap_or_default();
                        for key in old_parties.iter().filter(|k| !parties.contains(k)) {
                            pt.remove(key.as_slice())?;
                        }
                        for key in parties.iter().filter(|k| !old_parties.contains(k)) {
                            pt.insert(key.as_slice(), &[][..])?;
                        }
                        hd.insert(case_id.as_bytes(), head.as_slice())?;
                        if let Some(old_keys) = ik.get(case_id.as_bytes())? {
                            for key in decode_key_list(&old_keys) {
                                ib.remove(key)?;
                            }
                        }
                        for (key, value) in inbox {
                            ib.insert(key.as_slice(), value.as_slice())?;
                        }
                        if inbox.is_empty() {
                            ik.remove(case_id.as_bytes())?;
                        } else {
                            ik.insert(case_id.as_bytes(), inbox_list.as_slice())?;
                        }
                        if let Some((key, value)) = idempotency {
                            id.insert(key.as_slice(), value.as_slice())?;
                        }
                    }
                    Change::Definition { hash, bytes } => {
                        df.insert(hash.as_bytes(), bytes.as_slice())?;
                    }
                }
            }
            mt.insert(APPLIED_KEY, &last.end.to_be_bytes()[..])?;
            Ok(())
        },
    );
    match result {
        Ok(()) => Ok(()),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(sled_err(e)),
    }
}

