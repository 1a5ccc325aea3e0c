//! Accounts, passwords, second factors and sessions.
//!
//! Passwords are kept only as argon2id hashes (the `argon2` crate, PHC strings); TOTP second
//! factors follow RFC 6238 through `totp-rs`. Accounts live in one JSON file in the data
//! directory, replaced atomically (write, fsync, rename, fsync the directory) so a crash leaves
//! either the old file or the new one. Sessions are in memory and keyed by the SHA-256 of their
//! token, so neither a log nor a memory dump of the map reveals a usable token.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, Totp};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("cannot read or write the accounts file {path}: {reason} [CARIMBO-E0601]")]
    Io { path: String, reason: String },
    #[error("the person id or the password is wrong [CARIMBO-E0602]")]
    BadCredentials,
    #[error("no account {0:?} [CARIMBO-E0603]")]
    UnknownAccount(String),
    #[error("the second-factor code is wrong or expired [CARIMBO-E0604]")]
    BadSecondFactor,
    #[error("no second factor is being enrolled: start the enrolment first [CARIMBO-E0605]")]
    NoEnrolment,
    #[error("the password must be at least 12 characters [CARIMBO-E0606]")]
    WeakPassword,
    #[error("second factor: {0} [CARIMBO-E0607]")]
    Totp(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub person: String,
    /// argon2id PHC string.
    password_hash: String,
    /// Base32 TOTP secret, once confirmed.
    #[serde(default)]
    totp_secret: Option<String>,
    /// A secret shown at enrolment, waiting for its first code.
    #[serde(default)]
    pending_totp: Option<String>,
}

impl Account {
    pub fn has_second_factor(&self) -> bool {
        self.totp_secret.is_some()
    }
}

/// What an enrolment shows the person: the secret, the `otpauth://` URL and its QR code.
#[derive(Debug, Clone, Serialize)]
pub struct TotpEnrolment {
    pub secret: String,
    pub url: String,
    /// PNG, base64.
    pub qr_png_base64: String,
}

pub struct Accounts {
    path: PathBuf,
    accounts: RwLock<BTreeMap<String, Account>>,
    /// A hash to verify against when the account does not exist, so that the time taken does
    /// not tell an attacker which person ids have accounts.
    dummy_hash: String,
}

const ISSUER: &str = "carimbo";

fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| AccountError::Io { path: String::new(), reason: e.to_string() })?;
    let salt = SaltString::encode_b64(&random).map_err(|e| AccountError::Io { path: String::new(), reason: e.to_string() })?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| AccountError::Io { path: String::new(), reason: e.to_string() })
}

fn totp(secret_b32: &str, person: &str) -> Result<Totp, AccountError> {
    let secret = Secret::try_from_base32(secret_b32).map_err(|e| AccountError::Totp(format!("{e:?}")))?;
    // RFC 6238 defaults that authenticator apps expect: SHA-1, 6 digits, 30 s, ±1 step of skew.
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(person)
        .build()
        .map_err(|e| AccountError::Totp(e.to_string()))
}

impl Accounts {
    /// Opens the accounts file (created on first save).
    pub fn open(path: &Path) -> Result<Accounts, AccountError> {
        let io = |e: std::io::Error| AccountError::Io { path: path.display().to_string(), reason: e.to_string() };
        let accounts = if path.exists() {
            let bytes = std::fs::read(path).map_err(io)?;
            serde_json::from_slice(&bytes).map_err(|e| AccountError::Io { path: path.display().to_string(), reason: e.to_string() })?
        } else {
            BTreeMap::new()
        };
        Ok(Accounts { path: path.to_path_buf(), accounts: RwLock::new(accounts), dummy_hash: hash_password("no account has this password")? })
    }

    pub fn len(&self) -> usize {
        self.accounts.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, person: &str) -> Option<Account> {
        self.accounts.read().unwrap_or_else(|e| e.into_inner()).get(person).cloned()
    }

    /// Creates accounts for the people who have none, with the given password (demo seeding).
    pub fn ensure(&self, people: &[String], password: &str) -> Result<usize, AccountError> {
        let missing: Vec<&String> = {
            let map = self.accounts.read().unwrap_or_else(|e| e.into_inner());
            people.iter().filter(|p| !map.contains_key(*p)).collect()
        };
        if missing.is_empty() {
            return Ok(0);
        }
        // Hash once and reuse: demo accounts share one password; each real account sets its own.
        let hash = hash_password(password)?;
        let mut map = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        for p in &missing {
            map.insert((*p).clone(), Account { person: (*p).clone(), password_hash: hash.clone(), totp_secret: None, pending_totp: None });
        }
        self.save(&map)?;
        Ok(missing.len())
    }

    pub fn set_password(&self, person: &str, password: &str) -> Result<(), AccountError> {
        if password.chars().count() < 12 {
            return Err(AccountError::WeakPassword);
        }
        let hash = hash_password(password)?;
        let mut map = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        let a = map.get_mut(person).ok_or_else(|| AccountError::UnknownAccount(person.into()))?;
        a.password_hash = hash;
        self.save(&map)
    }

    /// Checks a password in constant time (argon2 verification; a dummy one for unknown ids).
    pub fn verify_password(&self, person: &str, password: &str) -> Result<(), AccountError> {
        let hash = self.get(person).map(|a| a.password_hash);
        let phc = hash.as_deref().unwrap_or(&self.dummy_hash);
        let parsed = PasswordHash::new(phc).map_err(|_| AccountError::BadCredentials)?;
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        if ok && hash.is_some() { Ok(()) } else { Err(AccountError::BadCredentials) }
    }

    /// Starts a TOTP enrolment: a new secret, shown once, confirmed by a first code.
    pub fn begin_totp(&self, person: &str) -> Result<TotpEnrolment, AccountError> {
        let secret = Secret::generate().to_base32();
        let t = totp(&secret, person)?;
        let qr = t.to_qr_base64().map_err(|e| AccountError::Totp(e.to_string()))?;
        let url = t.to_url().map_err(|e| AccountError::Totp(e.to_string()))?;
        let mut map = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        let a = map.get_mut(person).ok_or_else(|| AccountError::UnknownAccount(person.into()))?;
        a.pending_totp = Some(secret.clone());
        self.save(&map)?;
        Ok(TotpEnrolment { url, secret, qr_png_base64: qr })
    }

    /// The enrolment waiting for its first code, if any: the same secret, URL and QR code that
    /// `begin_totp` showed, so the page can show them again (to the same signed-in person) after a
    /// reload or a mistyped code, without replacing the secret already scanned.
    pub fn pending_totp(&self, person: &str) -> Result<Option<TotpEnrolment>, AccountError> {
        let Some(secret) = self.get(person).and_then(|a| a.pending_totp) else { return Ok(None) };
        let t = totp(&secret, person)?;
        let qr = t.to_qr_base64().map_err(|e| AccountError::Totp(e.to_string()))?;
        let url = t.to_url().map_err(|e| AccountError::Totp(e.to_string()))?;
        Ok(Some(TotpEnrolment { url, secret, qr_png_base64: qr }))
    }

    pub fn confirm_totp(&self, person: &str, code: &str, now: DateTime<Utc>) -> Result<(), AccountError> {
        let mut map = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        let a = map.get_mut(person).ok_or_else(|| AccountError::UnknownAccount(person.into()))?;
        let pending = a.pending_totp.clone().ok_or(AccountError::NoEnrolment)?;
        if totp(&pending, person)?.check(code, now.timestamp().max(0) as u64).is_none() {
            return Err(AccountError::BadSecondFactor);
        }
        a.totp_secret = Some(pending);
        a.pending_totp = None;
        self.save(&map)
    }

    /// Checks a TOTP code for an enrolled account.
    pub fn check_totp(&self, person: &str, code: &str, now: DateTime<Utc>) -> Result<(), AccountError> {
        let secret = self.get(person).and_then(|a| a.totp_secret).ok_or(AccountError::BadSecondFactor)?;
        if totp(&secret, person)?.check(code, now.timestamp().max(0) as u64).is_some() { Ok(()) } else { Err(AccountError::BadSecondFactor) }
    }

    /// The current code for an enrolled (or enrolling) account: for tests and the demo only.
    pub fn current_totp_for_tests(&self, person: &str, now: DateTime<Utc>) -> Option<String> {
        let a = self.get(person)?;
        let secret = a.totp_secret.or(a.pending_totp)?;
        Some(totp(&secret, person).ok()?.generate(now.timestamp().max(0) as u64).to_string())
    }

    fn save(&self, map: &BTreeMap<String, Account>) -> Result<(), AccountError> {
        let io = |e: std::io::Error| AccountError::Io { path: self.path.display().to_string(), reason: e.to_string() };
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(map).map_err(|e| AccountError::Io { path: self.path.display().to_string(), reason: e.to_string() })?;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

/// A signed-in person: a page session (cookie) or an API token (bearer).
#[derive(Debug, Clone)]
pub struct Session {
    pub person: String,
    /// Sent in every page form and checked on every state-changing page request.
    pub csrf: String,
    pub expires: DateTime<Utc>,
}

/// Sessions by the SHA-256 of their token.
#[derive(Default)]
pub struct Sessions {
    map: RwLock<HashMap<[u8; 32], Session>>,
}

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Sessions {
    /// Opens a session; returns the token (to put in a cookie or give as a bearer token).
    pub fn open(&self, person: &str, now: DateTime<Utc>, lifetime: Duration) -> (String, Session) {
        let token = random_token();
        let session = Session { person: person.to_string(), csrf: random_token(), expires: now + lifetime };
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.expires > now);
        map.insert(token_key(&token), session.clone());
        (token, session)
    }

    pub fn get(&self, token: &str, now: DateTime<Utc>) -> Option<Session> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(&token_key(token)).filter(|s| s.expires > now).cloned()
    }

    pub fn close(&self, token: &str) {
        self.map.write().unwrap_or_else(|e| e.into_inner()).remove(&token_key(token));
    }
}

/// Compares two secrets (CSRF tokens …) in constant time.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_stored_as_argon2id_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(&dir.path().join("accounts.json")).unwrap();
        accounts.ensure(&["p005".into()], "correct horse battery").unwrap();
        let stored = std::fs::read_to_string(dir.path().join("accounts.json")).unwrap();
        assert!(stored.contains("$argon2id$"), "{stored}");
        assert!(!stored.contains("correct horse"));
        assert!(accounts.verify_password("p005", "correct horse battery").is_ok());
        assert!(matches!(accounts.verify_password("p005", "wrong"), Err(AccountError::BadCredentials)));
        assert!(matches!(accounts.verify_password("nobody", "correct horse battery"), Err(AccountError::BadCredentials)));
        assert!(matches!(accounts.set_password("p005", "short"), Err(AccountError::WeakPassword)));
        // Reopened from disk: the same account.
        let again = Accounts::open(&dir.path().join("accounts.json")).unwrap();
        assert!(again.verify_password("p005", "correct horse battery").is_ok());
    }

    #[test]
    fn a_second_factor_is_enrolled_with_a_first_code_and_then_checked() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(&dir.path().join("accounts.json")).unwrap();
        accounts.ensure(&["p003".into()], "correct horse battery").unwrap();
        let now = Utc::now();
        assert!(matches!(accounts.confirm_totp("p003", "123456", now), Err(AccountError::NoEnrolment)));
        assert!(accounts.pending_totp("p003").unwrap().is_none());
        let e = accounts.begin_totp("p003").unwrap();
        assert!(e.url.starts_with("otpauth://totp/carimbo:p003?"), "{}", e.url);
        assert!(!e.qr_png_base64.is_empty());
        let shown_again = accounts.pending_totp("p003").unwrap().expect("the enrolment waits for its code");
        assert_eq!((shown_again.secret.as_str(), shown_again.url.as_str()), (e.secret.as_str(), e.url.as_str()), "the same secret, not a new one");
        assert!(matches!(accounts.confirm_totp("p003", if accounts.current_totp_for_tests("p003", now).unwrap() == "000000" { "111111" } else { "000000" }, now), Err(AccountError::BadSecondFactor)));
        assert!(accounts.pending_totp("p003").unwrap().is_some() && !accounts.get("p003").unwrap().has_second_factor(), "a wrong code changes nothing");
        assert!(matches!(accounts.check_totp("p003", "000000", now), Err(AccountError::BadSecondFactor)), "not active before confirmation");
        let code = accounts.current_totp_for_tests("p003", now).unwrap();
        accounts.confirm_totp("p003", &code, now).unwrap();
        assert!(accounts.pending_totp("p003").unwrap().is_none(), "confirmed: nothing pending");
        assert!(accounts.check_totp("p003", &code, now).is_ok());
        let wrong = if code == "000000" { "111111" } else { "000000" };
        assert!(accounts.check_totp("p003", wrong, now).is_err());
        assert!(accounts.check_totp("p003", &code, now + Duration::minutes(10)).is_err(), "codes expire");
    }

    #[test]
    fn sessions_expire_and_close() {
        let sessions = Sessions::default();
        let now = Utc::now();
        let (token, s) = sessions.open("p005", now, Duration::hours(8));
        assert_eq!(sessions.get(&token, now).unwrap().person, "p005");
        assert!(sessions.get(&token, now + Duration::hours(9)).is_none());
        assert!(sessions.get("forged", now).is_none());
        assert!(secrets_equal(&s.csrf, &s.csrf.clone()));
        assert!(!secrets_equal(&s.csrf, "x"));
        sessions.close(&token);
        assert!(sessions.get(&token, now).is_none());
    }
}
