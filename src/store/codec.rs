//! What both stores write and read in the same form, kept once: the idempotency record, the
//! inbox cursor, the definition-hash check, and decoding a stored case head, event or record
//! (a failure is `StoreError::Corrupt` naming the case and event, whichever store holds it).

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{CaseHead, StoreError, StoredEvent};

/// The first append's answer, kept under its idempotency key (sled's journal and index, and
/// PostgreSQL's `idempotency` rows hold this same JSON).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct IdempotencyRecord {
    pub(crate) version: u64,
    pub(crate) last_hash: String,
    pub(crate) outcome: Value,
}

/// Milliseconds since the epoch as 8 bytes that sort like the times (sign bit flipped).
pub(crate) fn time_key(t: &DateTime<Utc>) -> [u8; 8] {
    millis_key(t.timestamp_millis())
}

fn millis_key(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// The bytes that place an inbox entry in its person's list, oldest first: `since` (as
/// `time_key`) + case + 0x00 + step + 0x00 + seat. Sled's inbox key is the person's prefix and
/// these; an inbox cursor is their hex on either store.
pub(crate) fn inbox_position(since_ms: i64, case: &str, step: &str, seat: &str) -> Vec<u8> {
    let mut k = millis_key(since_ms).to_vec();
    for (i, part) in [case, step, seat].into_iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(part.as_bytes());
    }
    k
}

/// An inbox cursor a store handed out, read back.
pub(crate) struct InboxCursor {
    /// The `inbox_position` bytes.
    pub(crate) position: Vec<u8>,
    pub(crate) since_ms: i64,
    pub(crate) case: String,
    pub(crate) step: String,
    pub(crate) seat: String,
}

/// The cursor after an inbox entry (the `next` of a page).
pub(crate) fn inbox_cursor(since_ms: i64, case: &str, step: &str, seat: &str) -> String {
    hex::encode(inbox_position(since_ms, case, step, seat))
}

/// Reads an inbox cursor; `StoreError::Cursor` for anything no store hands out.
pub(crate) fn parse_inbox_cursor(cursor: &str) -> Result<InboxCursor, StoreError> {
    let bad = || StoreError::Cursor(format!("inbox cursor {cursor:?} is not one this store handed out"));
    let position = hex::decode(cursor).map_err(|_| bad())?;
    if position.len() < 8 {
        return Err(bad());
    }
    let since_ms = (u64::from_be_bytes(position[..8].try_into().map_err(|_| bad())?) ^ (1 << 63)) as i64;
    let rest = std::str::from_utf8(&position[8..]).map_err(|_| bad())?;
    let mut parts = rest.split('\0');
    let (Some(case), Some(step), Some(seat), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else { return Err(bad()) };
    let (case, step, seat) = (case.to_string(), step.to_string(), seat.to_string());
    Ok(InboxCursor { position, since_ms, case, step, seat })
}

/// `put_definition`'s check: the bytes hash (SHA-256, hex) to the name they are put under.
pub(crate) fn check_definition_hash(hash: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != hash {
        return Err(StoreError::Invalid(format!("definition bytes hash to {actual}, not {hash}")));
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(case_id: &str, seq: u64, bytes: impl AsRef<[u8]>, what: &str) -> Result<T, StoreError> {
    serde_json::from_slice(bytes.as_ref()).map_err(|e| StoreError::Corrupt { case_id: case_id.to_string(), seq, reason: format!("{what}: {e}") })
}

/// A stored case head.
pub(crate) fn decode_head(case_id: &str, bytes: impl AsRef<[u8]>) -> Result<CaseHead, StoreError> {
    decode(case_id, 0, bytes, "undecodable case head")
}

/// A stored event, `seq` of its case.
pub(crate) fn decode_event(case_id: &str, seq: u64, bytes: impl AsRef<[u8]>) -> Result<StoredEvent, StoreError> {
    decode(case_id, seq, bytes, "the stored event does not decode")
}

/// A stored idempotency record of a case.
pub(crate) fn decode_idempotency(case_id: &str, bytes: impl AsRef<[u8]>) -> Result<IdempotencyRecord, StoreError> {
    decode(case_id, 0, bytes, "undecodable idempotency record")
}
