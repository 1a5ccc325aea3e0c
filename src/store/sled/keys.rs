//! Key layouts of the index trees (see the parent module's comment). Ids never contain a NUL
//! byte, so NUL separates the parts of a key and `id + 0x00` prefixes only that id's keys.

use crate::store::{CaseHead, InboxEntry};
use chrono::{DateTime, Utc};

/// `id + 0x00`: the prefix of every key that starts with this id.
pub(super) fn id_prefix(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 1);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k
}

/// The first key after every key with prefix `id + 0x00`.
pub(super) fn prefix_end(id: &str) -> Vec<u8> {
    let mut k = id_prefix(id);
    *k.last_mut().expect("non-empty") = 1;
    k
}

pub(super) fn case_prefix(case_id: &str) -> Vec<u8> {
    id_prefix(case_id)
}

pub(super) fn event_key(case_id: &str, seq: u64) -> Vec<u8> {
    let mut k = id_prefix(case_id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(super) fn split_event_key(key: &[u8]) -> Option<(&[u8], u64)> {
    let split = key.len().checked_sub(9)?;
    let (case, rest) = key.split_at(split);
    if rest[0] != 0 {
        return None;
    }
    Some((case, u64::from_be_bytes(rest[1..].try_into().ok()?)))
}

pub(super) use crate::store::codec::time_key;

pub(super) fn inbox_key(e: &InboxEntry) -> Vec<u8> {
    let mut k = id_prefix(&e.person);
    k.extend_from_slice(&crate::store::codec::inbox_position(e.since.timestamp_millis(), &e.case_id, &e.step, &e.seat));
    k
}

pub(super) fn party_keys(head: &CaseHead) -> Vec<Vec<u8>> {
    party_keys_of(&head.case_id, &head.parties, &head.opened_at)
}

pub(super) fn party_keys_of(case_id: &str, parties: &[String], opened_at: &DateTime<Utc>) -> Vec<Vec<u8>> {
    let mut people: Vec<&str> = parties.iter().map(String::as_str).collect();
    people.sort_unstable();
    people.dedup();
    people
        .into_iter()
        .map(|p| {
            let mut k = id_prefix(p);
            k.extend_from_slice(&time_key(opened_at));
            k.extend_from_slice(case_id.as_bytes());
            k
        })
        .collect()
}

pub(super) fn idempotency_key(case_id: &str, key: &str) -> Vec<u8> {
    let mut k = id_prefix(case_id);
    k.extend_from_slice(key.as_bytes());
    k
}

/// A list of keys as `(u32 BE length, bytes)*`.
pub(super) fn encode_key_list<'a>(keys: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for k in keys {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k);
    }
    out
}

pub(super) fn decode_key_list(mut bytes: &[u8]) -> Vec<Vec<u8>> {
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

/// An outbox message's place in `(at, id)` order: `at` in microseconds (order-preserving BE,
/// the precision the stores record times with, so sled and PostgreSQL list messages of one
/// millisecond alike) followed by the id. The id is the rest of the key.
pub(super) fn outbox_order_key(at: &DateTime<Utc>, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + id.len());
    k.extend_from_slice(&outbox_time_key(at));
    k.extend_from_slice(id.as_bytes());
    k
}

/// Microseconds since the epoch as 8 bytes that sort like the times (sign bit flipped).
pub(super) fn outbox_time_key(at: &DateTime<Utc>) -> [u8; 8] {
    ((at.timestamp_micros() as u64) ^ (1 << 63)).to_be_bytes()
}

/// The id part of an outbox order key.
pub(super) fn outbox_id_of_order_key(key: &[u8]) -> Option<&[u8]> {
    key.get(8..)
}
