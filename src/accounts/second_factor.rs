//! The rules that keep a TOTP code a second factor, apart from the files that hold it.
//!
//! A six-digit code is guessed in one try out of a million (three out of a million with the step
//! of skew either side), so guessing must be slow: `FailedCodes` counts the wrong codes of an
//! account and locks it for a while after `FAILURE_LIMIT.max_failures` of them. A code someone
//! has read over a shoulder or out of a log must not work twice: RFC 6238 §5.2 says a verifier
//! must not accept the same OTP a second time, so `check_code` accepts only a time step later
//! than the last one the account accepted. Both are pure functions of their state and the time
//! they are given, so the tests need no clock and no file.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// RFC 6238's time step, which authenticator apps use.
pub const STEP_SECONDS: u64 = 30;
/// Steps of clock drift tolerated either side of the server's (RFC 6238 §5.2 recommends at most
/// one step of network delay).
pub const SKEW_STEPS: u64 = 1;

/// How many wrong codes an account may send before it is locked, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct FailureLimit {
    /// Wrong codes within `window_seconds` that start a lock.
    pub max_failures: usize,
    pub window_seconds: i64,
    /// How long a lock lasts; a correct code is refused until it ends.
    pub lock_seconds: i64,
}

/// Five wrong codes in a quarter of an hour lock the second factor for a quarter of an hour:
/// at most 480 guesses a day, about one chance in 700 a day of hitting one of the three codes
/// that are valid at a time, while a person who mistypes a few times is not stopped.
pub const FAILURE_LIMIT: FailureLimit = FailureLimit { max_failures: 5, window_seconds: 15 * 60, lock_seconds: 15 * 60 };

/// The recent wrong codes of one account and the lock they started, kept with the account so a
/// restart does not hand an attacker a fresh count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailedCodes {
    /// When each wrong code of the current window arrived.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    recent: Vec<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    locked_until: Option<DateTime<Utc>>,
}

impl FailedCodes {
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty() && self.locked_until.is_none()
    }

    /// The end of the lock in force at `now`, if one is.
    pub fn locked_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|until| *until > now)
    }

    /// Wrong codes counted towards the next lock at `now`.
    pub fn count(&self, now: DateTime<Utc>, limit: &FailureLimit) -> usize {
        self.recent.iter().filter(|t| in_window(**t, now, limit)).count()
    }

    /// Records a wrong code at `now`; returns the end of the lock it starts, if it starts one.
    /// The count starts again after a lock, so each lock costs an attacker another full window.
    pub fn record(&mut self, now: DateTime<Utc>, limit: &FailureLimit) -> Option<DateTime<Utc>> {
        self.recent.retain(|t| in_window(*t, now, limit));
        self.recent.push(now);
        if self.recent.len() < limit.max_failures {
            return None;
        }
        let until = now + Duration::seconds(limit.lock_seconds);
        self.recent.clear();
        self.locked_until = Some(until);
        Some(until)
    }
}

fn in_window(t: DateTime<Utc>, now: DateTime<Utc>, limit: &FailureLimit) -> bool {
    t <= now && now - t < Duration::seconds(limit.window_seconds)
}

/// What a code is, checked against the codes of the steps around `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// The code of this step, later than any step accepted before: accept it and remember it.
    Accepted(u64),
    /// The code of a step already accepted (or an earlier one): a second use.
    Replayed,
    /// No code of the window.
    Wrong,
}

/// Checks `code` against the codes of the time steps within the skew of `now_unix`.
/// `code_of_step(n)` is the code of step `n` (the time `n × STEP_SECONDS`); `last_accepted` is the
/// latest step the account accepted. Every step of the window is compared, in constant time, so
/// the time taken says nothing about which step (if any) matched.
pub fn check_code(code_of_step: impl Fn(u64) -> String, code: &str, now_unix: u64, last_accepted: Option<u64>) -> CodeCheck {
    let origin = now_unix / STEP_SECONDS;
    let mut accepted = None;
    let mut replayed = false;
    for step in origin.saturating_sub(SKEW_STEPS)..=origin + SKEW_STEPS {
        let expected = code_of_step(step);
        let same = expected.len() == code.len() && bool::from(expected.as_bytes().ct_eq(code.as_bytes()));
        if !same {
            continue;
        }
        if last_accepted.is_some_and(|last| step <= last) {
            replayed = true;
        } else if accepted.is_none() {
            accepted = Some(step);
        }
    }
    match (accepted, replayed) {
        (Some(step), _) => CodeCheck::Accepted(step),
        (None, true) => CodeCheck::Replayed,
        (None, false) => CodeCheck::Wrong,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A stand-in for the TOTP function: each step has its own code.
    fn code_of(step: u64) -> String {
        format!("{:06}", (step * 7919) % 1_000_000)
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).single().unwrap()
    }

    #[test]
    fn a_code_of_the_current_step_or_one_either_side_is_accepted_once() {
        let now = 1_800_000_000u64;
        let step = now / STEP_SECONDS;
        assert_eq!(check_code(code_of, &code_of(step), now, None), CodeCheck::Accepted(step));
        assert_eq!(check_code(code_of, &code_of(step - 1), now, None), CodeCheck::Accepted(step - 1), "one step of drift behind");
        assert_eq!(check_code(code_of, &code_of(step + 1), now, None), CodeCheck::Accepted(step + 1), "one step of drift ahead");
        assert_eq!(check_code(code_of, &code_of(step + 2), now, None), CodeCheck::Wrong, "two steps off is too far");
        assert_eq!(check_code(code_of, "000000x", now, None), CodeCheck::Wrong);
        assert_eq!(check_code(code_of, "", now, None), CodeCheck::Wrong);
    }

    #[test]
    fn a_code_of_the_step_already_accepted_or_an_earlier_one_is_never_accepted_again() {
        let now = 1_800_000_000u64;
        let step = now / STEP_SECONDS;
        assert_eq!(check_code(code_of, &code_of(step), now, Some(step)), CodeCheck::Replayed, "the same code in the same window");
        assert_eq!(check_code(code_of, &code_of(step), now + 20, Some(step)), CodeCheck::Replayed, "later in the skew, still the same step");
        assert_eq!(check_code(code_of, &code_of(step - 1), now, Some(step)), CodeCheck::Replayed, "an earlier step after a later one");
        assert_eq!(check_code(code_of, &code_of(step + 1), now, Some(step)), CodeCheck::Accepted(step + 1), "the next step's code is new");
        assert_eq!(check_code(code_of, &code_of(step), now, Some(step + 1)), CodeCheck::Replayed);
    }

    #[test]
    fn five_wrong_codes_in_the_window_lock_the_second_factor_for_the_lock_time() {
        let limit = FAILURE_LIMIT;
        let mut failed = FailedCodes::default();
        for i in 0..4 {
            assert_eq!(failed.record(at(i * 10), &limit), None, "wrong code {} does not lock yet", i + 1);
            assert_eq!(failed.locked_until(at(i * 10)), None);
        }
        assert_eq!(failed.count(at(40), &limit), 4);
        let until = failed.record(at(40), &limit).expect("the fifth wrong code locks");
        assert_eq!(until, at(40 + limit.lock_seconds));
        assert_eq!(failed.locked_until(at(41)), Some(until));
        assert_eq!(failed.locked_until(until - Duration::seconds(1)), Some(until), "locked to the last second");
        assert_eq!(failed.locked_until(until), None, "and not after");
        assert_eq!(failed.count(until, &limit), 0, "the count starts again after a lock");
    }

    #[test]
    fn wrong_codes_older_than_the_window_do_not_count() {
        let limit = FAILURE_LIMIT;
        let mut failed = FailedCodes::default();
        for i in 0..4 {
            failed.record(at(i), &limit);
        }
        let later = at(limit.window_seconds + 10);
        assert_eq!(failed.count(later, &limit), 0);
        assert_eq!(failed.record(later, &limit), None, "one wrong code a quarter of an hour after four others is the first of a new window");
        assert_eq!(failed.count(later, &limit), 1);
    }

    #[test]
    fn the_failure_record_survives_a_round_trip_through_json() {
        let mut failed = FailedCodes::default();
        assert_eq!(serde_json::to_string(&failed).unwrap(), "{}", "nothing written for an account without wrong codes");
        for i in 0..5 {
            failed.record(at(i), &FAILURE_LIMIT);
        }
        let back: FailedCodes = serde_json::from_str(&serde_json::to_string(&failed).unwrap()).unwrap();
        assert_eq!(back, failed);
        assert!(back.locked_until(at(10)).is_some());
    }
}
