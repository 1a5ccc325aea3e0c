//! The hash chain of a case's events, as one pure rule both sides use: the store when it
//! appends and checks (`store`), and the evidence verifier when it re-computes a bundle offline
//! (`evidence::verify`). Keeping it here, outside `store`, lets the verifier check a record with
//! exactly the store's rule without depending on a store.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The hash that stands before a case's first event: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 (lower-case hex) of the RFC 8785 (JCS) canonical JSON of
/// `{case_id, seq, recorded_at, prev_hash, body}`: the hash a stored event carries. Public so
/// that an evidence bundle can be checked offline with exactly the rule the store used.
///
/// An event body's `disclosures` member (the values and salts of restricted fields) is left
/// out: the body commits to each of them with a salted digest instead (`forms::commitment`), so
/// a record without them (for a reader who may not see those fields) still verifies.
pub fn chain_hash(case_id: &str, seq: u64, recorded_at: &DateTime<Utc>, prev_hash: &str, body: &Value) -> String {
    let body = &*chained_body(body);
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

/// The member of an event body that stays outside the hash chain.
pub const DISCLOSURES_MEMBER: &str = "disclosures";

/// The part of an event body the chain hash covers: all of it but `disclosures`.
pub fn chained_body(body: &Value) -> std::borrow::Cow<'_, Value> {
    match body.as_object() {
        Some(o) if o.contains_key(DISCLOSURES_MEMBER) => {
            let mut o = o.clone();
            o.remove(DISCLOSURES_MEMBER);
            std::borrow::Cow::Owned(Value::Object(o))
        }
        _ => std::borrow::Cow::Borrowed(body),
    }
}
