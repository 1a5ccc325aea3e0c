//! Hash-chain checks over the index: one case's log (`ChainCheck`), and the side-by-side walk
//! of heads and logs that `verify_all` makes.

use super::{decode_head, sled_err};
use crate::store::{CorruptCase, GENESIS_HASH, IntegrityReport, StoreError, StoredEvent};
use ::sled::IVec;

pub(super) type HeadIter = std::iter::Peekable<::sled::Iter>;

/// Judges one case of `verify_all` once its events have been read, with its head (if any).
pub(super) fn settle_case(case: &[u8], chain: ChainCheck, heads: &mut HeadIter, report: &mut IntegrityReport) -> Result<(), StoreError> {
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
pub(super) fn take_heads_without_events(heads: &mut HeadIter, bound: Option<&[u8]>, report: &mut IntegrityReport) -> Result<(), StoreError> {
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

pub(super) fn next_head(heads: &mut HeadIter) -> Result<(IVec, IVec), StoreError> {
    heads.next().expect("peeked").map_err(sled_err)
}

/// Walks one case's log in key order and remembers the first bad event.
pub(super) struct ChainCheck {
    case_id: String,
    pub(super) count: u64,
    prev_hash: String,
    problem: Option<(u64, String)>,
}

impl ChainCheck {
    pub(super) fn new(case_id: String) -> Self {
        ChainCheck { case_id, count: 0, prev_hash: GENESIS_HASH.to_string(), problem: None }
    }

    pub(super) fn push(&mut self, seq: u64, bytes: &[u8]) {
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
    pub(super) fn finish(self, head: Option<&[u8]>) -> Result<(), StoreError> {
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

