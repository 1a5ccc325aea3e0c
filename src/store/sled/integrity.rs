//! The side-by-side walk of heads and logs that `verify_all` makes over the index (one case's
//! chain is checked by `store::checks::ChainCheck`).

use super::{decode_head, sled_err};
use crate::store::checks::ChainCheck;
use crate::store::{CorruptCase, IntegrityReport, StoreError};
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
    match chain.finish(head.as_deref().map(|h| decode_head(chain_case(case), h))) {
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

fn chain_case(case: &[u8]) -> &str {
    std::str::from_utf8(case).unwrap_or("(a case id that is not UTF-8)")
}
