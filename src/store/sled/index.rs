//! What the index holds and how journal records reach it: the journal record format, a record
//! turned into ready-to-write keys and values (`Change`), and `apply`, which writes a batch of
//! them in one sled transaction together with the journal offset reached.
//!
//! The journal format only grows: a field added to a record kind has a serde default, so a
//! journal written by an older build still opens (an `append` from before the outbox has
//! `"outbox": []`), and new record kinds (`outbox_update`, `import`) are new tags.

use super::keys::{decode_key_list, encode_key_list, event_key, idempotency_key, inbox_key, outbox_order_key, party_keys, party_keys_of, split_event_key};
use super::{encode, journal_corrupt, sled_err};
use crate::store::{CaseExport, CaseHead, InboxEntry, OutboxRecord, Publication, StoreError, StoredEvent};
use ::sled::Tree;
use ::sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(super) const APPLIED_KEY: &[u8] = b"journal_applied";
/// Publications live in the `meta` tree under this prefix and their `seq` (u64 BE), in order.
pub(super) const PUBLICATION_PREFIX: &[u8] = b"publication\x00";

pub(super) fn publication_key(seq: u64) -> Vec<u8> {
    let mut key = PUBLICATION_PREFIX.to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}
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
    pub(super) outbox: Tree,
    pub(super) outbox_at: Tree,
    pub(super) outbox_pending: Tree,
    pub(super) outbox_dead: Tree,
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
        /// The append's outbox messages (absent in journals from before the outbox).
        #[serde(default)]
        outbox: Vec<OutboxRecord>,
    },
    Definition {
        hash: String,
        /// Hex, so that any bytes fit in JSON.
        bytes: String,
    },
    /// The dispatcher's new delivery state of an outbox message.
    OutboxUpdate { id: String, delivery: Value, settled: bool, dead: bool },
    /// A whole case written by `import_case` (a restore), exactly as exported.
    Import { case: Box<CaseExport> },
    /// A publication of definitions (`Store::publish`).
    Publication { publication: Box<Publication> },
}

#[derive(Serialize, Deserialize)]
pub(super) struct IdempotencyEntry {
    pub(super) key: String,
    pub(super) record: IdempotencyRecord,
}

pub(super) use crate::store::codec::IdempotencyRecord;

/// A journal record turned into index keys and values, ready to apply.
pub(super) struct Prepared {
    /// Journal offset just after the record.
    pub(super) end: u64,
    pub(super) change: Change,
}

#[derive(Debug, PartialEq)]
pub(super) enum Change {
    Append {
        case_id: String,
        expected: u64,
        events: Vec<(Vec<u8>, Vec<u8>)>,
        head: Vec<u8>,
        parties: Vec<Vec<u8>>,
        inbox: Vec<(Vec<u8>, Vec<u8>)>,
        inbox_list: Vec<u8>,
        idempotency: Vec<(Vec<u8>, Vec<u8>)>,
        outbox: Vec<OutboxRow>,
    },
    Definition {
        hash: String,
        bytes: Vec<u8>,
    },
    OutboxUpdate {
        id: String,
        delivery: Value,
        settled: bool,
        dead: bool,
    },
    Publication {
        seq: u64,
        value: Vec<u8>,
    },
}

/// An outbox record ready for the index: under its id, and its place in the `(at, id)` order
/// for the `outbox_at` tree (and `outbox_pending` / `outbox_dead` while it is unsettled / dead).
#[derive(Debug, PartialEq)]
pub(super) struct OutboxRow {
    pub(super) id: String,
    pub(super) value: Vec<u8>,
    pub(super) order: Vec<u8>,
    /// The message's kind: the value of its `outbox_pending` entry (`outbox_pending_of_kind`).
    pub(super) kind: Vec<u8>,
    pub(super) settled: bool,
    pub(super) dead: bool,
}

impl OutboxRow {
    fn of(record: &OutboxRecord) -> Result<OutboxRow, StoreError> {
        Ok(OutboxRow {
            id: record.id.clone(),
            value: encode(record)?,
            order: outbox_order_key(&record.at, &record.id),
            kind: record.kind.as_bytes().to_vec(),
            settled: record.settled,
            dead: record.dead,
        })
    }
}

impl Change {
    /// An append's change for the index, and the journal payload that records it: the same
    /// encoded events, head and inbox entries serve both, so each is encoded once. The payload
    /// is the JSON of `JournalRecord::Append`, assembled from those pieces.
    pub(super) fn append(
        case_id: &str,
        expected: u64,
        events: &[StoredEvent],
        head: &CaseHead,
        inbox: &[InboxEntry],
        idempotency: Option<(&str, &IdempotencyRecord)>,
        outbox: &[OutboxRecord],
    ) -> Result<(Change, Vec<u8>), StoreError> {
        let mut event_rows = Vec::with_capacity(events.len());
        for e in events {
            event_rows.push((event_key(case_id, e.seq), encode(e)?));
        }
        let mut inbox_rows = Vec::with_capacity(inbox.len());
        for e in inbox {
            inbox_rows.push((inbox_key(e), encode(e)?));
        }
        let head_bytes = encode(head)?;
        let idempotency_row = match idempotency {
            Some((key, record)) => Some((key, idempotency_key(case_id, key), encode(record)?)),
            None => None,
        };
        let outbox_rows = outbox.iter().map(OutboxRow::of).collect::<Result<Vec<_>, _>>()?;

        let rows = |rows: &[(Vec<u8>, Vec<u8>)], out: &mut Vec<u8>| {
            for (i, (_, value)) in rows.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(value);
            }
        };
        let mut payload = Vec::with_capacity(256 + head_bytes.len() + event_rows.iter().chain(&inbox_rows).map(|(_, v)| v.len() + 1).sum::<usize>());
        payload.extend_from_slice(br#"{"kind":"append","case_id":"#);
        payload.extend_from_slice(&encode(&case_id)?);
        payload.extend_from_slice(format!(r#","expected_version":{expected},"events":["#).as_bytes());
        rows(&event_rows, &mut payload);
        payload.extend_from_slice(br#"],"head":"#);
        payload.extend_from_slice(&head_bytes);
        payload.extend_from_slice(br#","inbox":["#);
        rows(&inbox_rows, &mut payload);
        payload.extend_from_slice(br#"],"idempotency":"#);
        match &idempotency_row {
            Some((key, _, record)) => {
                payload.extend_from_slice(br#"{"key":"#);
                payload.extend_from_slice(&encode(key)?);
                payload.extend_from_slice(br#","record":"#);
                payload.extend_from_slice(record);
                payload.push(b'}');
            }
            None => payload.extend_from_slice(b"null"),
        }
        payload.extend_from_slice(br#","outbox":["#);
        for (i, row) in outbox_rows.iter().enumerate() {
            if i > 0 {
                payload.push(b',');
            }
            payload.extend_from_slice(&row.value);
        }
        payload.extend_from_slice(b"]}");

        let change = Change::Append {
            case_id: case_id.to_string(),
            expected,
            events: event_rows,
            head: head_bytes,
            parties: party_keys(head),
            inbox_list: encode_key_list(inbox_rows.iter().map(|(k, _)| k.as_slice())),
            inbox: inbox_rows,
            idempotency: idempotency_row.map(|(_, key, record)| (key, record)).into_iter().collect(),
            outbox: outbox_rows,
        };
        Ok((change, payload))
    }

    /// An imported case for the index: an append at version 0 of every event, with every
    /// idempotency answer and outbox record (delivery state included) as exported.
    pub(super) fn import(case: &CaseExport) -> Result<Change, StoreError> {
        let case_id = case.head.case_id.as_str();
        let mut events = Vec::with_capacity(case.events.len());
        for e in &case.events {
            events.push((event_key(case_id, e.seq), encode(e)?));
        }
        let mut inbox = Vec::with_capacity(case.inbox.len());
        for e in &case.inbox {
            inbox.push((inbox_key(e), encode(e)?));
        }
        let mut idempotency = Vec::with_capacity(case.idempotency.len());
        for r in &case.idempotency {
            let record = IdempotencyRecord { version: r.version, last_hash: r.last_hash.clone(), outcome: r.outcome.clone() };
            idempotency.push((idempotency_key(case_id, &r.key), encode(&record)?));
        }
        Ok(Change::Append {
            case_id: case_id.to_string(),
            expected: 0,
            events,
            head: encode(&case.head)?,
            parties: party_keys(&case.head),
            inbox_list: encode_key_list(inbox.iter().map(|(k, _)| k.as_slice())),
            inbox,
            idempotency,
            outbox: case.outbox.iter().map(OutboxRow::of).collect::<Result<_, _>>()?,
        })
    }

    pub(super) fn from_record(record: &JournalRecord) -> Result<Change, StoreError> {
        Ok(match record {
            JournalRecord::Append { case_id, expected_version, events, head, inbox, idempotency, outbox } => {
                let idempotency = idempotency.as_ref().map(|i| (i.key.as_str(), &i.record));
                Change::append(case_id, *expected_version, events, head, inbox, idempotency, outbox)?.0
            }
            JournalRecord::OutboxUpdate { id, delivery, settled, dead } => {
                Change::OutboxUpdate { id: id.clone(), delivery: delivery.clone(), settled: *settled, dead: *dead }
            }
            JournalRecord::Import { case } => Change::import(case)?,
            JournalRecord::Definition { hash, bytes } => {
                Change::Definition { hash: hash.clone(), bytes: hex::decode(bytes).map_err(|e| journal_corrupt(format!("definition {hash} is not hex: {e}")))? }
            }
            JournalRecord::Publication { publication } => Change::Publication { seq: publication.seq, value: encode(publication.as_ref())? },
        })
    }
}

/// What `apply` reads of the head it replaces: its version and the keys of its parties.
#[derive(Deserialize)]
struct HeadParties {
    version: u64,
    parties: Vec<String>,
    opened_at: chrono::DateTime<chrono::Utc>,
}

/// Applies records to the index in one sled transaction, with the journal offset reached.
pub(super) fn apply(t: &Trees, batch: &[Prepared]) -> Result<(), StoreError> {
    let Some(last) = batch.last() else { return Ok(()) };
    let abort = |e: StoreError| Err(ConflictableTransactionError::Abort(e));
    let trees = (
        &t.events,
        &t.heads,
        &t.inbox,
        &t.inbox_keys,
        &t.parties,
        &t.idempotency,
        &t.definitions,
        &t.meta,
        &t.outbox,
        &t.outbox_at,
        &t.outbox_pending,
        &t.outbox_dead,
    );
    let result = trees.transaction(|(ev, hd, ib, ik, pt, id, df, mt, ob, oa, op, od)| {
        for p in batch {
            match &p.change {
                Change::Append { case_id, expected, events, head, parties, inbox, inbox_list, idempotency, outbox } => {
                    let old = match hd.get(case_id.as_bytes())? {
                        Some(bytes) => match serde_json::from_slice::<HeadParties>(&bytes) {
                            Ok(h) => Some(h),
                            Err(e) => {
                                return abort(StoreError::Corrupt { case_id: case_id.clone(), seq: 0, reason: format!("undecodable case head: {e}") });
                            }
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
                    let old_parties = old.as_ref().map(|h| party_keys_of(case_id, &h.parties, &h.opened_at)).unwrap_or_default();
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
                    for (key, value) in idempotency {
                        id.insert(key.as_slice(), value.as_slice())?;
                    }
                    for row in outbox {
                        ob.insert(row.id.as_bytes(), row.value.as_slice())?;
                        oa.insert(row.order.as_slice(), &[][..])?;
                        if !row.settled {
                            op.insert(row.order.as_slice(), row.kind.as_slice())?;
                        }
                        if row.dead {
                            od.insert(row.order.as_slice(), &[][..])?;
                        }
                    }
                }
                Change::Definition { hash, bytes } => {
                    df.insert(hash.as_bytes(), bytes.as_slice())?;
                }
                Change::Publication { seq, value } => {
                    mt.insert(publication_key(*seq), value.as_slice())?;
                }
                Change::OutboxUpdate { id: message, delivery, settled, dead } => {
                    // The store checked that the message exists before journaling the
                    // update, and the append that wrote it comes earlier in the journal.
                    let Some(old) = ob.get(message.as_bytes())? else {
                        return abort(journal_corrupt(format!("an outbox update names message {message}, which no earlier record wrote")));
                    };
                    let mut record: OutboxRecord = match serde_json::from_slice(&old) {
                        Ok(r) => r,
                        Err(e) => return abort(journal_corrupt(format!("outbox message {message} in the index does not decode: {e}"))),
                    };
                    record.delivery = delivery.clone();
                    record.settled = *settled;
                    record.dead = *dead;
                    let value = match encode(&record) {
                        Ok(v) => v,
                        Err(e) => return abort(e),
                    };
                    let order = outbox_order_key(&record.at, &record.id);
                    ob.insert(message.as_bytes(), value)?;
                    if record.settled {
                        op.remove(order.as_slice())?;
                    } else {
                        op.insert(order.as_slice(), record.kind.as_bytes())?;
                    }
                    if record.dead {
                        od.insert(order.as_slice(), &[][..])?;
                    } else {
                        od.remove(order.as_slice())?;
                    }
                }
            }
        }
        mt.insert(APPLIED_KEY, &last.end.to_be_bytes()[..])?;
        Ok(())
    });
    match result {
        Ok(()) => Ok(()),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(sled_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    #[test]
    fn an_assembled_journal_payload_decodes_to_the_same_change() {
        let at = Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap();
        let event = |seq| StoredEvent {
            case_id: "c\"1".into(),
            seq,
            recorded_at: at,
            prev_hash: "0".repeat(64),
            hash: "a".repeat(64),
            body: json!({"type": "approved", "note": "ação ✓"}),
        };
        let head = CaseHead {
            case_id: "c\"1".into(),
            version: 2,
            last_hash: "a".repeat(64),
            status: "open".into(),
            form_id: "leave".into(),
            form_version: "1".into(),
            form_hash: "f".repeat(64),
            workflow_id: "leave".into(),
            workflow_version: "1".into(),
            workflow_hash: "e".repeat(64),
            submitter: "ana".into(),
            parties: vec!["ana".into(), "bruno".into()],
            opened_at: at,
            updated_at: at,
            summary: json!({}),
        };
        let inbox = vec![InboxEntry {
            person: "bruno".into(),
            case_id: "c\"1".into(),
            step: "hr".into(),
            seat: "1".into(),
            since: at,
            form_id: "leave".into(),
            on_behalf_of: Some("carla".into()),
            delegation: None,
        }];
        let record = IdempotencyRecord { version: 2, last_hash: "a".repeat(64), outcome: json!({"ok": true}) };
        let outbox = crate::store::outbox_records("c\"1", 2, at, &[crate::store::OutboxMessage { kind: "decision".into(), payload: json!({"ação": 1}) }]);
        for (idempotency, outbox) in [(None, &[][..]), (Some(("req-1", &record)), &outbox[..])] {
            let (change, payload) = Change::append("c\"1", 0, &[event(1), event(2)], &head, &inbox, idempotency, outbox).unwrap();
            let decoded: JournalRecord = serde_json::from_slice(&payload).expect("the payload is a journal record");
            assert_eq!(Change::from_record(&decoded).unwrap(), change);
        }
    }
}
