//! The hash chain of a case's events, as one pure rule both sides use: the store when it
//! appends and checks (`store`), and the evidence verifier when it re-computes a bundle offline
//! (`evidence::verify`). Keeping it here, outside `store`, lets the verifier check a record with
//! exactly the store's rule without depending on a store.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::io::Write;

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
    // The time as serde writes a `DateTime<Utc>` (RFC 3339, `Z`, only the digits of the
    // fraction it needs), which is what the chain has always hashed.
    let recorded_at = serde_json::to_value(recorded_at).expect("a time always serializes");
    chain_hash_of(case_id, seq, recorded_at.as_str().unwrap_or_default(), prev_hash, body)
}

/// `chain_hash` with `recorded_at` as the text it is written as (an evidence bundle's).
pub fn chain_hash_of(case_id: &str, seq: u64, recorded_at: &str, prev_hash: &str, body: &Value) -> String {
    // The canonical object, its members in RFC 8785 order, written straight into the hash;
    // `disclosures` is skipped rather than the body copied without it.
    let mut h = crate::jcs::Hasher::new();
    let io = (|| -> std::io::Result<()> {
        h.write_all(b"{\"body\":")?;
        match body {
            Value::Object(m) => crate::jcs::object(m, Some(DISCLOSURES_MEMBER), &mut h)?,
            other => crate::jcs::write(other, &mut h)?,
        }
        h.write_all(b",\"case_id\":")?;
        crate::jcs::string(case_id, &mut h)?;
        h.write_all(b",\"prev_hash\":")?;
        crate::jcs::string(prev_hash, &mut h)?;
        h.write_all(b",\"recorded_at\":")?;
        crate::jcs::string(recorded_at, &mut h)?;
        write!(h, ",\"seq\":")?;
        crate::jcs::write(&Value::from(seq), &mut h)?;
        h.write_all(b"}")
    })();
    io.expect("hashing cannot fail");
    hex::encode(h.finish())
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sha2::{Digest, Sha256};

    /// The chain hash as it was first defined: the reference crate over the whole object, the
    /// body copied without `disclosures`. Stored chains must keep verifying.
    fn by_the_reference_crate(case_id: &str, seq: u64, recorded_at: &DateTime<Utc>, prev_hash: &str, body: &Value) -> String {
        let v = json!({"case_id": case_id, "seq": seq, "recorded_at": recorded_at, "prev_hash": prev_hash, "body": &*chained_body(body)});
        hex::encode(Sha256::digest(serde_json_canonicalizer::to_vec(&v).unwrap()))
    }

    #[test]
    fn the_chain_hash_is_the_one_stored_chains_were_made_with() {
        let at = DateTime::parse_from_rfc3339("2026-12-04T10:11:12.345678Z").unwrap().with_timezone(&Utc);
        let whole = DateTime::parse_from_rfc3339("2026-12-04T10:11:12Z").unwrap().with_timezone(&Utc);
        for body in [
            json!({"type": "submitted", "data": {"days": 3, "reason": "家事 \"x\"\n", "\u{1f600}": 1.5, "\u{e000}": null}, "disclosures": {"salary": ["s", 1]}}),
            json!({"type": "approved", "z": [], "a": {}}),
            json!("not an object"),
        ] {
            for t in [&at, &whole] {
                assert_eq!(chain_hash("case-1", 7, t, GENESIS_HASH, &body), by_the_reference_crate("case-1", 7, t, GENESIS_HASH, &body));
            }
        }
    }
}
