//! What both stores check in the same words: an append's ids and parts (`validate`), and one
//! case's hash chain read back in order (`ChainCheck`), so a case verifies the same way
//! whichever store holds it.

use super::{Append, CaseHead, GENESIS_HASH, StoreError, StoredEvent};

/// An append's ids are non-empty and hold no NUL (a separator in sled's keys; PostgreSQL text
/// cannot hold one either), and its head and inbox entries are for its case.
pub(crate) fn validate(a: &Append) -> Result<(), StoreError> {
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

pub(crate) fn check_id(what: &str, id: &str) -> Result<(), StoreError> {
    if id.is_empty() || id.contains('\0') {
        return Err(StoreError::Invalid(format!("{what} {id:?} must be non-empty and contain no NUL character")));
    }
    Ok(())
}

/// Walks one case's log in order and remembers the first bad event.
pub(crate) struct ChainCheck {
    case_id: String,
    pub(crate) count: u64,
    prev_hash: String,
    problem: Option<(u64, String)>,
}

impl ChainCheck {
    pub(crate) fn new(case_id: String) -> Self {
        ChainCheck { case_id, count: 0, prev_hash: GENESIS_HASH.to_string(), problem: None }
    }

    pub(crate) fn case_id(&self) -> &str {
        &self.case_id
    }

    /// The next stored event (its JSON) as read back, under the sequence number it is stored at.
    pub(crate) fn push(&mut self, seq: u64, stored: &[u8]) {
        if self.problem.is_some() {
            return;
        }
        let expected = self.count + 1;
        self.count += 1;
        if seq != expected {
            self.problem = Some((expected, format!("event {expected} is missing (the next stored event is {seq})")));
            return;
        }
        let event: StoredEvent = match serde_json::from_slice(stored) {
            Ok(e) => e,
            Err(e) => {
                self.problem = Some((seq, format!("the stored event does not decode: {e}")));
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

    /// The verdict, with the case head (as the store decoded it, if it has one) checked
    /// against the log.
    pub(crate) fn finish(self, head: Option<Result<CaseHead, StoreError>>) -> Result<(), StoreError> {
        let corrupt = |seq, reason| Err(StoreError::Corrupt { case_id: self.case_id.clone(), seq, reason });
        if let Some((seq, reason)) = self.problem.clone() {
            return corrupt(seq, reason);
        }
        let Some(head) = head else {
            return if self.count == 0 { Ok(()) } else { corrupt(self.count, "events without a case head".into()) };
        };
        let head = head?;
        if head.version != self.count {
            return corrupt(head.version.min(self.count + 1), format!("the case head says version {} but the log has {} events", head.version, self.count));
        }
        if head.last_hash != self.prev_hash {
            return corrupt(head.version, "the case head's last_hash is not the hash of the last event".into());
        }
        Ok(())
    }
}
