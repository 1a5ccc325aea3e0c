//! Limits on wrong passwords that a stranger cannot turn against the owner of the account.
//!
//! A plain per-account lock ("ten wrong passwords lock the account for a minute") hands every
//! stranger a switch: ten guesses from anywhere keep the owner out, from everywhere, for as long
//! as the stranger likes. So the failures are counted in two places, each with its own answer:
//!
//! - **Per account and address** (`PAIR_FAILURES` in `PAIR_WINDOW`): ten wrong passwords for an
//!   account from one address lock that account *from that address only*, for a minute. The
//!   guesser is stopped; the owner, elsewhere, is not. An IPv6 address counts by its /64 prefix,
//!   since one machine is usually given a whole /64 to pick addresses from.
//! - **Per account, all addresses together** (`ACCOUNT_FAILURES` in `ACCOUNT_WINDOW`): fifty wrong
//!   passwords in fifteen minutes (only a spread-out guesser gets there) lock the account from
//!   every address *that has not signed in to it before* (a successful sign-in in the last thirty
//!   days remembers its address for the account). The owner at their usual desk keeps signing in;
//!   a guesser spread over many addresses gets about fifty tries per quarter hour.
//!
//! - **Per address, all accounts together** (`ADDRESS_FAILURES` in `PAIR_WINDOW`): thirty wrong
//!   passwords a minute from one address, whatever the accounts, stop that address for a minute
//!   (one password tried on many accounts). Only failures count: a shared office address where
//!   many people sign in correctly is never slowed down.
//!
//! Everything is in memory, per process: a restart forgets it, and servers sharing
//! one PostgreSQL database each count their own. Time comes in as an argument, so the rules are
//! tested without waiting.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const PAIR_FAILURES: usize = 10;
pub const PAIR_WINDOW: Duration = Duration::from_secs(60);
pub const ADDRESS_FAILURES: usize = 30;
pub const ACCOUNT_FAILURES: usize = 50;
pub const ACCOUNT_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a successful sign-in keeps its address known to the account.
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Known addresses kept per account (the most recent ones).
const KNOWN_PER_ACCOUNT: usize = 16;
/// Above this many entries, expired ones are dropped before a new one is added.
const PRUNE_ABOVE: usize = 10_000;

/// Where an attempt comes from, as the limits count it: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(IpAddr);

impl ClientAddress {
    pub fn of(ip: IpAddr) -> ClientAddress {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                ClientAddress(IpAddr::V6(bits.into()))
            }
            v4 => ClientAddress(v4),
        }
    }
}

/// Why an attempt is not even checked, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// Too many wrong passwords for this account from this address.
    FromThisAddress { retry_after: Duration },
    /// Too many wrong passwords from this address, whatever the accounts.
    ThisAddress { retry_after: Duration },
    /// Too many wrong passwords for this account from everywhere, and this address has not
    /// signed in to it before.
    FromNewAddresses { retry_after: Duration },
}

impl Locked {
    pub fn retry_after(&self) -> Duration {
        match self {
            Locked::FromThisAddress { retry_after } | Locked::ThisAddress { retry_after } | Locked::FromNewAddresses { retry_after } => *retry_after,
        }
    }
}

#[derive(Default)]
struct Counts {
    pair: HashMap<(String, ClientAddress), VecDeque<Instant>>,
    address: HashMap<ClientAddress, VecDeque<Instant>>,
    account: HashMap<String, VecDeque<Instant>>,
    known: HashMap<String, Vec<(ClientAddress, Instant)>>,
}

/// The failure counts of every account (see the module's comment for the rules).
#[derive(Default)]
pub struct SignInLimits {
    counts: Mutex<Counts>,
}

/// Drops the times older than `window` and says when the `limit`-th most recent one leaves it,
/// if there are `limit` of them.
fn full_until(times: &mut VecDeque<Instant>, limit: usize, window: Duration, now: Instant) -> Option<Duration> {
    while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
        times.pop_front();
    }
    if times.len() < limit {
        return None;
    }
    let oldest_that_counts = times[times.len() - limit];
    Some(window.saturating_sub(now.saturating_duration_since(oldest_that_counts)).max(Duration::from_secs(1)))
}

impl SignInLimits {
    /// Whether an attempt for `account` from `from` may be checked at all now.
    pub fn check(&self, account: &str, from: ClientAddress, now: Instant) -> Result<(), Locked> {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = c.pair.get_mut(&(account.to_string(), from))
            && let Some(retry_after) = full_until(times, PAIR_FAILURES, PAIR_WINDOW, now)
        {
            return Err(Locked::FromThisAddress { retry_after });
        }
        if let Some(times) = c.address.get_mut(&from)
            && let Some(retry_after) = full_until(times, ADDRESS_FAILURES, PAIR_WINDOW, now)
        {
            return Err(Locked::ThisAddress { retry_after });
        }
        let known = c.known.get(account).is_some_and(|k| k.iter().any(|(a, at)| *a == from && now.saturating_duration_since(*at) < KNOWN_FOR));
        if !known
            && let Some(times) = c.account.get_mut(account)
            && let Some(retry_after) = full_until(times, ACCOUNT_FAILURES, ACCOUNT_WINDOW, now)
        {
            return Err(Locked::FromNewAddresses { retry_after });
        }
        Ok(())
    }

    /// Counts a wrong password (or an unknown account: the answer is the same, so is the count).
    pub fn failed(&self, account: &str, from: ClientAddress, now: Instant) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if c.pair.len() > PRUNE_ABOVE {
            c.pair.retain(|_, t| t.back().is_some_and(|t| now.saturating_duration_since(*t) < PAIR_WINDOW));
        }
        if c.account.len() > PRUNE_ABOVE {
            c.account.retain(|_, t| t.back().is_some_and(|t| now.saturating_duration_since(*t) < ACCOUNT_WINDOW));
        }
        if c.address.len() > PRUNE_ABOVE {
            c.address.retain(|_, t| t.back().is_some_and(|t| now.saturating_duration_since(*t) < PAIR_WINDOW));
        }
        let address = c.address.entry(from).or_default();
        address.push_back(now);
        while address.len() > ADDRESS_FAILURES {
            address.pop_front();
        }
        let pair = c.pair.entry((account.to_string(), from)).or_default();
        pair.push_back(now);
        while pair.len() > PAIR_FAILURES {
            pair.pop_front();
        }
        let all = c.account.entry(account.to_string()).or_default();
        all.push_back(now);
        while all.len() > ACCOUNT_FAILURES {
            all.pop_front();
        }
    }

    /// A correct password: this address's failures for the account are forgotten, and the
    /// address becomes known to the account.
    pub fn succeeded(&self, account: &str, from: ClientAddress, now: Instant) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.pair.remove(&(account.to_string(), from));
        if c.known.len() > PRUNE_ABOVE {
            c.known.retain(|_, k| k.iter().any(|(_, at)| now.saturating_duration_since(*at) < KNOWN_FOR));
        }
        let known = c.known.entry(account.to_string()).or_default();
        known.retain(|(a, at)| *a != from && now.saturating_duration_since(*at) < KNOWN_FOR);
        known.push((from, now));
        if known.len() > KNOWN_PER_ACCOUNT {
            known.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(n: u8) -> ClientAddress {
        ClientAddress::of(IpAddr::from([192, 0, 2, n]))
    }

    #[test]
    fn ten_failures_lock_the_account_from_that_address_only_and_for_a_minute() {
        let (l, t0) = (SignInLimits::default(), Instant::now());
        for i in 0..10 {
            assert_eq!(l.check("p005", at(1), t0), Ok(()), "attempt {i}");
            l.failed("p005", at(1), t0);
        }
        assert!(matches!(l.check("p005", at(1), t0), Err(Locked::FromThisAddress { retry_after }) if retry_after == PAIR_WINDOW));
        assert_eq!(l.check("p005", at(2), t0), Ok(()), "the owner elsewhere");
        assert_eq!(l.check("p006", at(1), t0), Ok(()), "another account from there");
        assert_eq!(l.check("p005", at(1), t0 + PAIR_WINDOW), Ok(()), "a minute later");
    }

    #[test]
    fn thirty_failures_from_one_address_over_many_accounts_stop_that_address_but_successes_never_count() {
        let (l, t0) = (SignInLimits::default(), Instant::now());
        for i in 0..100 {
            l.succeeded(&format!("p{i:03}"), at(1), t0);
        }
        assert_eq!(l.check("p200", at(1), t0), Ok(()), "a busy office signing in correctly");
        for i in 0..30 {
            assert_eq!(l.check(&format!("p{i:03}"), at(1), t0), Ok(()));
            l.failed(&format!("p{i:03}"), at(1), t0);
        }
        assert!(matches!(l.check("p099", at(1), t0), Err(Locked::ThisAddress { .. })));
        assert_eq!(l.check("p099", at(2), t0), Ok(()));
    }

    #[test]
    fn fifty_failures_from_everywhere_lock_new_addresses_but_not_one_that_signed_in_before() {
        let (l, t0) = (SignInLimits::default(), Instant::now());
        l.succeeded("p005", at(200), t0);
        for n in 0..5 {
            for _ in 0..10 {
                l.failed("p005", at(n), t0);
            }
        }
        assert!(matches!(l.check("p005", at(99), t0), Err(Locked::FromNewAddresses { .. })));
        assert_eq!(l.check("p005", at(200), t0), Ok(()), "the owner's usual address");
        assert_eq!(l.check("p005", at(99), t0 + ACCOUNT_WINDOW), Ok(()), "a quarter hour later");
    }

    #[test]
    fn a_success_forgets_that_address_failures_and_an_ipv6_machine_counts_by_its_64() {
        let (l, t0) = (SignInLimits::default(), Instant::now());
        for _ in 0..9 {
            l.failed("p005", at(1), t0);
        }
        l.succeeded("p005", at(1), t0);
        l.failed("p005", at(1), t0);
        assert_eq!(l.check("p005", at(1), t0), Ok(()));
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientAddress::of(a), ClientAddress::of(b));
        assert_ne!(ClientAddress::of(a), ClientAddress::of(c));
        assert_eq!(ClientAddress::of("::ffff:192.0.2.1".parse().unwrap()), at(1));
    }
}
