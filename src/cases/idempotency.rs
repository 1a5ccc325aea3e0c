//! Idempotency keys: a client's retry of one operation lands once, and only that operation.
//!
//! A key a client sends is checked (1 to 128 visible ASCII characters), then scoped to the
//! operation it retries — who does what on which step — so that one person's key never answers
//! for another's act on the same case. The request it came with is bound to it by the SHA-256 of
//! its RFC 8785 form: the same key with another body is refused (`CARIMBO-E0410`), never answered
//! with the first request's result as if it were this one's.
//!
//! The store keeps `(case, scoped key) → outcome`; the outcome carries the request's hash.
//! Records written before keys were scoped carry none and are answered as before.

use super::CaseError;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The longest key a client may send, in bytes.
pub const MAX_KEY_LEN: usize = 128;

/// A client's idempotency key, checked, scoped and bound to its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    client_key: String,
    stored_key: String,
    request: String,
}

impl Idempotency {
    /// `scope` names the operation (kind, actor, step, action); `request` is what the client
    /// asked for in it. A key that is empty, longer than `MAX_KEY_LEN` bytes or holds anything but
    /// visible ASCII is refused (`CARIMBO-E0409`).
    pub fn new(client_key: &str, scope: &[&str], request: &impl Serialize) -> Result<Self, CaseError> {
        check_key(client_key)?;
        let mut scoped = Sha256::new();
        for part in scope.iter().chain(std::iter::once(&client_key)) {
            // Length-prefixed, so no two different scopes hash alike.
            scoped.update((part.len() as u64).to_be_bytes());
            scoped.update(part.as_bytes());
        }
        let canonical =
            serde_json_canonicalizer::to_vec(request).map_err(|e| CaseError::BadIdempotencyKey(format!("the request cannot be canonicalised: {e}")))?;
        Ok(Idempotency {
            client_key: client_key.to_string(),
            stored_key: format!("k2-{}", hex::encode(scoped.finalize())),
            request: hex::encode(Sha256::digest(&canonical)),
        })
    }

    /// An approver's act (approve, reject, return, sign) on a step, with its comment.
    pub fn for_act(client_key: &str, actor: &str, step: &str, action: &str, comment: Option<&str>) -> Result<Self, CaseError> {
        Self::new(client_key, &["act", actor, step, action], &serde_json::json!({"step": step, "action": action, "comment": comment}))
    }

    /// A new submission of a form with its data.
    pub fn for_submit(client_key: &str, submitter: &str, form: &str, data: &Value) -> Result<Self, CaseError> {
        Self::new(client_key, &["submit", submitter], &serde_json::json!({"form": form, "data": data}))
    }

    /// A corrected version of a returned case.
    pub fn for_resubmit(client_key: &str, by: &str, data: &Value) -> Result<Self, CaseError> {
        Self::new(client_key, &["resubmit", by], &serde_json::json!({"data": data}))
    }

    /// A withdrawal with its reason.
    pub fn for_withdraw(client_key: &str, by: &str, reason: Option<&str>) -> Result<Self, CaseError> {
        Self::new(client_key, &["withdraw", by], &serde_json::json!({"reason": reason}))
    }

    /// The key as the client sent it.
    pub fn client_key(&self) -> &str {
        &self.client_key
    }

    /// The key the store keeps the answer under.
    pub fn stored_key(&self) -> &str {
        &self.stored_key
    }

    /// The hex SHA-256 of the request, recorded in the outcome.
    pub fn request_hash(&self) -> &str {
        &self.request
    }

    /// Whether a recorded outcome answers this request: `Ok` for the same request (or a record
    /// from before requests were bound), `IdempotencyMismatch` for another one.
    pub fn check_outcome(&self, outcome: &Value) -> Result<(), CaseError> {
        match outcome.get("request").and_then(Value::as_str) {
            Some(recorded) if recorded != self.request => Err(CaseError::IdempotencyMismatch(self.client_key.clone())),
            _ => Ok(()),
        }
    }
}

fn check_key(key: &str) -> Result<(), CaseError> {
    if key.is_empty() {
        return Err(CaseError::BadIdempotencyKey("the idempotency key is empty".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(CaseError::BadIdempotencyKey(format!("the idempotency key has {} bytes; at most {MAX_KEY_LEN} are allowed", key.len())));
    }
    if let Some(c) = key.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(CaseError::BadIdempotencyKey(format!("the idempotency key holds {:?} (U+{:04X}); only visible ASCII characters are allowed", c, c as u32)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_keys_are_refused_with_the_reason() {
        for (key, says) in [("", "empty"), ("a\0b", "U+0000"), ("a b", "U+0020"), ("clé", "U+00E9"), ("a\u{202E}b", "U+202E")] {
            let e = Idempotency::for_act(key, "p1", "hr", "sign", None).unwrap_err();
            assert!(matches!(e, CaseError::BadIdempotencyKey(_)), "{key:?}: {e}");
            assert!(e.to_string().contains(says), "{key:?}: {e}");
        }
        let long = "k".repeat(MAX_KEY_LEN + 1);
        assert!(Idempotency::for_act(&long, "p1", "hr", "sign", None).unwrap_err().to_string().contains("129 bytes"));
        assert!(Idempotency::for_act(&"k".repeat(MAX_KEY_LEN), "p1", "hr", "sign", None).is_ok());
    }

    #[test]
    fn one_key_is_scoped_to_who_does_what() {
        let a = Idempotency::for_act("k", "p1", "supervisor", "approve", None).unwrap();
        let b = Idempotency::for_act("k", "p2", "hr", "sign", None).unwrap();
        let c = Idempotency::for_act("k", "p1", "supervisor", "reject", None).unwrap();
        assert_ne!(a.stored_key(), b.stored_key());
        assert_ne!(a.stored_key(), c.stored_key());
        assert_eq!(a, Idempotency::for_act("k", "p1", "supervisor", "approve", None).unwrap());
        // Parts cannot be shifted into one another.
        assert_ne!(
            Idempotency::new("k", &["ab", "c"], &json!({})).unwrap().stored_key(),
            Idempotency::new("k", &["a", "bc"], &json!({})).unwrap().stored_key()
        );
    }

    #[test]
    fn the_same_key_with_another_request_is_refused() {
        let first = Idempotency::for_submit("k", "p1", "special-leave", &json!({"days": 2})).unwrap();
        let outcome = json!({"case_id": "C-1", "status": "open", "request": first.request_hash()});
        assert!(first.check_outcome(&outcome).is_ok());
        let other = Idempotency::for_submit("k", "p1", "special-leave", &json!({"days": 3})).unwrap();
        assert_eq!(first.stored_key(), other.stored_key());
        assert!(matches!(other.check_outcome(&outcome), Err(CaseError::IdempotencyMismatch(_))));
        // Member order is not a difference (RFC 8785).
        let reordered = Idempotency::for_submit("k", "p1", "special-leave", &json!({"days": 2})).unwrap();
        assert!(reordered.check_outcome(&outcome).is_ok());
        // A record from before requests were bound answers as before.
        assert!(other.check_outcome(&json!({"case_id": "C-1", "status": "open"})).is_ok());
    }
}
