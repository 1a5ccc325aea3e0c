//! Signature activation: what a signer authorized their device key to sign, and the check that
//! a signature the service is about to make is covered by it.
//!
//! A key inside an HSM is under the signer's *sole control* (Law 5/2005; CEN EN 419 241-1,
//! SCAL2) only if the service cannot use it on its own: each signature needs Signature
//! Activation Data bound to exactly the hashes to be signed. Here the signer's TOTP second factor
//! is checked once (by `accounts`, at the edge) over a list of JWS signing-input hashes; the
//! resulting `Authorization` (the hashes, the time, the person and a one-use id, never the code)
//! is recorded with every act it covers. It lives five minutes, each hash is signed at most once,
//! and a hash outside the list is refused. Pure: the time comes in, nothing is read.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long an authorization may be used after the code was checked.
pub const AUTHORIZATION_LIFETIME: Duration = Duration::minutes(5);
/// The most hashes one authorization may cover (one batch of the inbox).
pub const MAX_AUTHORIZED_HASHES: usize = 500;

/// `sha256:<hex>` of a JWS signing input (`BASE64URL(header) '.' BASE64URL(payload)`): what an
/// authorization names and what the HSM is asked to sign.
pub fn signing_input_hash(signing_input: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(signing_input)))
}

/// What a signer authorized with their second factor, as recorded with each act it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Authorization {
    /// One-use id (random, from the edge).
    pub id: String,
    /// The person whose factor was checked; only their key signs under it.
    pub person: String,
    /// When the code was checked.
    pub time: DateTime<Utc>,
    /// The signing-input hashes covered, `sha256:<hex>`, in the order they were presented.
    pub hashes: Vec<String>,
    /// The batch this authorization was given for, when it covers more than one act.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
}

/// Which signing provider made an act's signature, recorded with the act and carried into the
/// evidence bundle and the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "provider", rename_all = "kebab-case")]
pub enum Provenance {
    /// A key file the signer picked in the browser (WebCrypto): it can be copied.
    BrowserKey,
    /// A key generated inside an HSM and never exported, used under `authorization`.
    Hsm { token: String, key_label: String, authorization: Authorization },
}

impl Provenance {
    pub fn provider(&self) -> &'static str {
        match self {
            Provenance::BrowserKey => "browser-key",
            Provenance::Hsm { .. } => "hsm",
        }
    }
}

/// Why a signature may not be made under an authorization. Codes CARIMBO-E1440–E1445.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivationError {
    #[error("CARIMBO-E1440: the signing authorization {0} is unknown or was already used up; authorize again with your code")]
    Unknown(String),
    #[error("CARIMBO-E1441: the signing authorization expired at {0}; authorize again with your code")]
    Expired(DateTime<Utc>),
    #[error("CARIMBO-E1442: the signing authorization does not cover this signature ({0}); the act changed after you authorized, or it was not in the list")]
    NotCovered(String),
    #[error("CARIMBO-E1443: this signature ({0}) was already made under the authorization; each authorized hash signs once")]
    AlreadyUsed(String),
    #[error("CARIMBO-E1444: the signing authorization belongs to another person")]
    OtherPerson,
    #[error("CARIMBO-E1445: an authorization covers 1 to {MAX_AUTHORIZED_HASHES} signatures, not {0}")]
    BadSize(usize),
}

impl ActivationError {
    pub fn code(&self) -> &'static str {
        match self {
            ActivationError::Unknown(_) => "CARIMBO-E1440",
            ActivationError::Expired(_) => "CARIMBO-E1441",
            ActivationError::NotCovered(_) => "CARIMBO-E1442",
            ActivationError::AlreadyUsed(_) => "CARIMBO-E1443",
            ActivationError::OtherPerson => "CARIMBO-E1444",
            ActivationError::BadSize(_) => "CARIMBO-E1445",
        }
    }

    /// A client's mistake (403 for someone else's authorization, 422 otherwise), never a 500.
    pub fn status(&self) -> u16 {
        match self {
            ActivationError::OtherPerson => 403,
            _ => 422,
        }
    }
}

/// An authorization being used: which of its hashes were signed already.
#[derive(Debug, Clone)]
pub struct Activation {
    authorization: Authorization,
    used: Vec<bool>,
}

impl Activation {
    /// Starts an authorization over `hashes` (checked to be 1..=MAX, no duplicates kept twice).
    pub fn new(id: String, person: &str, time: DateTime<Utc>, hashes: Vec<String>, batch: Option<String>) -> Result<Activation, ActivationError> {
        if hashes.is_empty() || hashes.len() > MAX_AUTHORIZED_HASHES {
            return Err(ActivationError::BadSize(hashes.len()));
        }
        let used = vec![false; hashes.len()];
        Ok(Activation { authorization: Authorization { id, person: person.into(), time, hashes, batch }, used })
    }

    pub fn authorization(&self) -> &Authorization {
        &self.authorization
    }

    /// When it stops being usable.
    pub fn expires(&self) -> DateTime<Utc> {
        self.authorization.time + AUTHORIZATION_LIFETIME
    }

    /// Whether every hash was signed (or the time ran out): it can be forgotten.
    pub fn spent(&self, now: DateTime<Utc>) -> bool {
        now > self.expires() || self.used.iter().all(|u| *u)
    }

    /// Allows `person` to sign `hash` at `now`, once: the sole-control check before the HSM is
    /// asked for a signature. Nothing changes when it refuses.
    pub fn take(&mut self, person: &str, hash: &str, now: DateTime<Utc>) -> Result<(), ActivationError> {
        if person != self.authorization.person {
            return Err(ActivationError::OtherPerson);
        }
        if now > self.expires() || now < self.authorization.time {
            return Err(ActivationError::Expired(self.expires()));
        }
        let at = self.authorization.hashes.iter().position(|h| h == hash).ok_or_else(|| ActivationError::NotCovered(hash.into()))?;
        if self.used[at] {
            return Err(ActivationError::AlreadyUsed(hash.into()));
        }
        self.used[at] = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        "2026-03-02T09:00:00Z".parse().unwrap()
    }

    fn activation() -> Activation {
        let hashes = vec![signing_input_hash(b"a.b"), signing_input_hash(b"c.d")];
        Activation::new("auth-1".into(), "p005", t0(), hashes, Some("batch-1".into())).unwrap()
    }

    #[test]
    fn a_covered_hash_signs_once_within_five_minutes() {
        let mut a = activation();
        let h = signing_input_hash(b"a.b");
        assert_eq!(a.take("p005", &h, t0() + Duration::minutes(4)), Ok(()));
        assert_eq!(a.take("p005", &h, t0() + Duration::minutes(4)), Err(ActivationError::AlreadyUsed(h)));
        assert!(!a.spent(t0() + Duration::minutes(4)));
        assert_eq!(a.take("p005", &signing_input_hash(b"c.d"), t0()), Ok(()));
        assert!(a.spent(t0()));
    }

    #[test]
    fn a_hash_outside_the_list_is_refused_and_uses_nothing() {
        let mut a = activation();
        let other = signing_input_hash(b"x.y");
        assert_eq!(a.take("p005", &other, t0()).unwrap_err().code(), "CARIMBO-E1442");
        assert_eq!(a.take("p005", &signing_input_hash(b"a.b"), t0()), Ok(()));
    }

    #[test]
    fn an_expired_authorization_is_refused() {
        let mut a = activation();
        let err = a.take("p005", &signing_input_hash(b"a.b"), t0() + Duration::minutes(5) + Duration::seconds(1)).unwrap_err();
        assert_eq!(err.code(), "CARIMBO-E1441");
        assert!(a.spent(t0() + Duration::minutes(6)));
    }

    #[test]
    fn another_person_cannot_use_the_authorization() {
        let mut a = activation();
        let err = a.take("p001", &signing_input_hash(b"a.b"), t0()).unwrap_err();
        assert_eq!((err.code(), err.status()), ("CARIMBO-E1444", 403));
        assert_eq!(a.take("p005", &signing_input_hash(b"a.b"), t0()), Ok(()));
    }

    #[test]
    fn an_empty_or_oversized_list_is_refused() {
        assert_eq!(Activation::new("x".into(), "p005", t0(), vec![], None).unwrap_err().code(), "CARIMBO-E1445");
        let many = (0..=MAX_AUTHORIZED_HASHES).map(|i| signing_input_hash(i.to_string().as_bytes())).collect();
        assert_eq!(Activation::new("x".into(), "p005", t0(), many, None).unwrap_err().code(), "CARIMBO-E1445");
    }
}
