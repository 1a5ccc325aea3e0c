//! Accounts, passwords, second factors and sessions.
//!
//! Passwords are kept only as argon2id hashes (the `argon2` crate, PHC strings); TOTP second
//! factors follow RFC 6238 through `totp-rs`. Accounts live in one JSON file in the data
//! directory (0600), replaced atomically (write, fsync, rename, fsync the directory) so a crash
//! leaves either the old file or the new one. Sessions are in memory and keyed by the SHA-256 of
//! their token, so neither a log nor a memory dump of the map reveals a usable token.
//!
//! A second factor is only a factor if it holds against someone who has the password:
//! `second_factor` limits wrong codes and refuses a code whose time step was already accepted
//! (both kept with the account, so they survive a restart); replacing an enrolled factor takes a
//! current code of the old one, or an administrator's reset recorded in the `audit` log; and
//! `sealing` keeps every secret encrypted under a key that lives in a file of its own.

pub mod audit;
mod sealing;
pub mod second_factor;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use audit::{AuditEntry, AuditEvent, AuditLog};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use sealing::{SealedSecret, TotpKey};
use second_factor::{CodeCheck, FAILURE_LIMIT, FailedCodes, STEP_SECONDS, check_code};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
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
    #[error("too many wrong second-factor codes: codes are refused for another {retry_after_seconds} s, even a correct one [CARIMBO-E0608]")]
    SecondFactorLocked { retry_after_seconds: u64 },
    #[error("this second-factor code was already used; wait for the next one (a new code comes every 30 seconds) [CARIMBO-E0609]")]
    CodeAlreadyUsed,
    #[error("a second factor is enrolled: replacing it needs a current code from it (`current_code`), or an administrator's reset [CARIMBO-E0610]")]
    ReplacementNeedsCode,
    #[error("the TOTP key file {path}: {reason} [CARIMBO-E0611]")]
    KeyFile { path: String, reason: String },
    #[error(
        "the TOTP key file {path} is missing, and {sealed} second-factor secret(s) in the accounts file are encrypted with it: put the key file back (or give its place with `--totp-key-file`) [CARIMBO-E0612]"
    )]
    KeyMissing { path: String, sealed: usize },
    #[error("the TOTP key in {path} does not open the second factor of {person:?}: start with the key this accounts file was written with [CARIMBO-E0613]")]
    WrongKey { path: String, person: String },
    #[error("cannot append to the audit log {path}: {reason} [CARIMBO-E0614]")]
    AuditLog { path: String, reason: String },
    #[error("{0:?} has no second factor to reset [CARIMBO-E0615]")]
    NothingToReset(String),
}

impl AccountError {
    /// The stable code (docs/errors.md).
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::Io { .. } => "CARIMBO-E0601",
            AccountError::BadCredentials => "CARIMBO-E0602",
            AccountError::UnknownAccount(_) => "CARIMBO-E0603",
            AccountError::BadSecondFactor => "CARIMBO-E0604",
            AccountError::NoEnrolment => "CARIMBO-E0605",
            AccountError::WeakPassword => "CARIMBO-E0606",
            AccountError::Totp(_) => "CARIMBO-E0607",
            AccountError::SecondFactorLocked { .. } => "CARIMBO-E0608",
            AccountError::CodeAlreadyUsed => "CARIMBO-E0609",
            AccountError::ReplacementNeedsCode => "CARIMBO-E0610",
            AccountError::KeyFile { .. } => "CARIMBO-E0611",
            AccountError::KeyMissing { .. } => "CARIMBO-E0612",
            AccountError::WrongKey { .. } => "CARIMBO-E0613",
            AccountError::AuditLog { .. } => "CARIMBO-E0614",
            AccountError::NothingToReset(_) => "CARIMBO-E0615",
        }
    }

    /// The HTTP status a client gets for it.
    pub fn status(&self) -> u16 {
        match self {
            AccountError::BadCredentials | AccountError::BadSecondFactor | AccountError::CodeAlreadyUsed => 401,
            AccountError::ReplacementNeedsCode => 403,
            AccountError::UnknownAccount(_) => 404,
            AccountError::NothingToReset(_) => 409,
            AccountError::WeakPassword | AccountError::NoEnrolment => 422,
            AccountError::SecondFactorLocked { .. } => 429,
            AccountError::Io { .. }
            | AccountError::Totp(_)
            | AccountError::KeyFile { .. }
            | AccountError::KeyMissing { .. }
            | AccountError::WrongKey { .. }
            | AccountError::AuditLog { .. } => 500,
        }
    }

    /// For a lock: the seconds until codes are checked again (the `Retry-After` header).
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            AccountError::SecondFactorLocked { retry_after_seconds } => Some(*retry_after_seconds),
            _ => None,
        }
    }
}

/// Where the accounts keep their files. The key is apart from the accounts file so that it can
/// live elsewhere (another disk, a secrets mount) and a copy of the data directory's accounts
/// file alone gives no secret.
#[derive(Debug, Clone)]
pub struct AccountFiles {
    pub accounts: PathBuf,
    pub totp_key: PathBuf,
    pub audit_log: PathBuf,
}

impl AccountFiles {
    /// `DATA/accounts.json`, `DATA/keys/totp.key` and `DATA/audit.jsonl`.
    pub fn in_data_dir(data: &Path) -> AccountFiles {
        AccountFiles { accounts: data.join("accounts.json"), totp_key: data.join("keys/totp.key"), audit_log: data.join("audit.jsonl") }
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Account {
    pub person: String,
    /// argon2id PHC string.
    password_hash: String,
    /// The TOTP secret, once confirmed, sealed with the TOTP key.
    #[serde(default)]
    totp_secret: Option<SealedSecret>,
    /// A secret shown at enrolment, waiting for its first code (sealed too).
    #[serde(default)]
    pending_totp: Option<SealedSecret>,
    /// Until when the pending secret may replace the enrolled one: set by a current code of the
    /// enrolled factor when the replacement began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replacement_allowed_until: Option<DateTime<Utc>>,
    /// The latest TOTP time step accepted (RFC 6238 §5.2): no code of it or of an earlier step
    /// is accepted again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totp_last_step: Option<u64>,
    #[serde(default, skip_serializing_if = "FailedCodes::is_empty")]
    totp_failures: FailedCodes,
}

impl Account {
    fn new(person: &str, password_hash: String) -> Account {
        Account {
            person: person.to_string(),
            password_hash,
            totp_secret: None,
            pending_totp: None,
            replacement_allowed_until: None,
            totp_last_step: None,
            totp_failures: FailedCodes::default(),
        }
    }

    pub fn has_second_factor(&self) -> bool {
        self.totp_secret.is_some()
    }

    /// The end of the lock on this account's second factor in force at `now`, if any.
    pub fn second_factor_locked_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.totp_failures.locked_until(now)
    }

    /// Whether a pending secret may replace the enrolled factor at `now` (or there is none to
    /// replace).
    fn may_replace(&self, now: DateTime<Utc>) -> bool {
        self.totp_secret.is_none() || self.replacement_allowed_until.is_some_and(|until| until > now)
    }
}

/// Neither the password hash nor a secret, sealed or not, goes into a log through `{:?}`.
impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("person", &self.person)
            .field("second_factor", &self.totp_secret.is_some())
            .field("enrolling", &self.pending_totp.is_some())
            .finish_non_exhaustive()
    }
}

/// What an enrolment shows the person: the secret, the `otpauth://` URL and its QR code.
#[derive(Clone, Serialize)]
pub struct TotpEnrolment {
    pub secret: String,
    pub url: String,
    /// PNG, base64.
    pub qr_png_base64: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment(..)")
    }
}

/// The second-factor codes accepted while serving one request. A batch of acts carries one code
/// for all its items: the code is spent on the first act that needs it and then stands for the
/// other acts of the same request, never for another request.
#[derive(Default)]
pub struct RequestCodes {
    accepted: Mutex<Vec<String>>,
}

pub struct Accounts {
    path: PathBuf,
    accounts: RwLock<BTreeMap<String, Account>>,
    key: TotpKey,
    audit: AuditLog,
    /// A hash to verify against when the account does not exist, so that the time taken does
    /// not tell an attacker which person ids have accounts.
    dummy_hash: String,
}

const ISSUER: &str = "carimbo";

/// How long a current code of the old factor lets a new one be confirmed in its place.
const REPLACEMENT_WINDOW_MINUTES: i64 = 15;

fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| AccountError::Io { path: String::new(), reason: e.to_string() })?;
    let salt = SaltString::encode_b64(&random).map_err(|e| AccountError::Io { path: String::new(), reason: e.to_string() })?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Io { path: String::new(), reason: e.to_string() })
}

fn totp(secret_b32: &str, person: &str) -> Result<Totp, AccountError> {
    let secret = Secret::try_from_base32(secret_b32).map_err(|e| AccountError::Totp(format!("{e:?}")))?;
    // RFC 6238 defaults that authenticator apps expect: SHA-1, 6 digits, 30 s, ±1 step of skew.
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(second_factor::SKEW_STEPS as u16)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(person)
        .build()
        .map_err(|e| AccountError::Totp(e.to_string()))
}

fn enrolment_of(secret: String, person: &str) -> Result<TotpEnrolment, AccountError> {
    let t = totp(&secret, person)?;
    let qr = t.to_qr_base64().map_err(|e| AccountError::Totp(e.to_string()))?;
    let url = t.to_url().map_err(|e| AccountError::Totp(e.to_string()))?;
    Ok(TotpEnrolment { url, secret, qr_png_base64: qr })
}

fn unix(now: DateTime<Utc>) -> u64 {
    now.timestamp().max(0) as u64
}

/// Authenticator apps show "123 456"; the code is the digits.
fn digits_of(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace()).collect()
}

impl Accounts {
    /// Opens the accounts file (created on first save) with its TOTP key: the key file is read,
    /// or created when no secret needs it yet. Every sealed secret is opened once here, so a
    /// wrong key stops the start with a clear error instead of failing someone's next act; a
    /// clear-text secret left by an older carimbo is sealed and the file rewritten (0600).
    pub fn open(files: &AccountFiles) -> Result<Accounts, AccountError> {
        let path = &files.accounts;
        let io = |e: std::io::Error| AccountError::Io { path: path.display().to_string(), reason: e.to_string() };
        let mut map: BTreeMap<String, Account> = if path.exists() {
            let bytes = std::fs::read(path).map_err(io)?;
            crate::json_strict::from_slice(&bytes).map_err(|e| AccountError::Io { path: path.display().to_string(), reason: e.to_string() })?
        } else {
            BTreeMap::new()
        };
        let sealed: Vec<(&String, &SealedSecret)> = map
            .iter()
            .flat_map(|(person, a)| [a.totp_secret.as_ref(), a.pending_totp.as_ref()].into_iter().flatten().map(move |s| (person, s)))
            .filter(|(_, s)| s.is_sealed())
            .collect();
        let key = match TotpKey::load(&files.totp_key)? {
            Some(key) => key,
            None if !sealed.is_empty() => return Err(AccountError::KeyMissing { path: files.totp_key.display().to_string(), sealed: sealed.len() }),
            None => TotpKey::create(&files.totp_key)?,
        };
        for (person, secret) in &sealed {
            key.open(person, secret)?;
        }
        let mut migrated = 0;
        for (person, a) in map.iter_mut() {
            for slot in [&mut a.totp_secret, &mut a.pending_totp] {
                if let Some(secret) = slot.as_ref().filter(|s| !s.is_sealed()) {
                    let clear = key.open(person, secret)?;
                    *slot = Some(key.seal(person, &clear)?);
                    migrated += 1;
                }
            }
        }
        if files.audit_log.exists() && sealing::open_to_others(&files.audit_log) {
            restrict_to_owner(&files.audit_log).map_err(|e| AccountError::AuditLog { path: files.audit_log.display().to_string(), reason: e.to_string() })?;
        }
        let accounts = Accounts {
            path: path.clone(),
            accounts: RwLock::new(BTreeMap::new()),
            key,
            audit: AuditLog::new(&files.audit_log),
            dummy_hash: hash_password("no account has this password")?,
        };
        if migrated > 0 || (path.exists() && sealing::open_to_others(path)) {
            accounts.save(&map)?;
        }
        if migrated > 0 {
            eprintln!(
                "accounts: {migrated} second-factor secret(s) found in clear in {} are now encrypted with the key in {}",
                path.display(),
                accounts.key.path().display()
            );
        }
        *accounts.accounts.write().unwrap_or_else(|e| e.into_inner()) = map;
        Ok(accounts)
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

    /// The audit log's file (`DATA/audit.jsonl` unless configured otherwise).
    pub fn audit_log_path(&self) -> &Path {
        self.audit.path()
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
            map.insert((*p).clone(), Account::new(p, hash.clone()));
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

    /// Starts a TOTP enrolment: a new secret, shown once, confirmed by a first code. While a
    /// factor is enrolled this replaces it, and so needs `current_code`, a current code of the
    /// enrolled factor (checked, limited and spent like any other); it then lets the new secret
    /// be confirmed for `REPLACEMENT_WINDOW_MINUTES`, and starting over within them needs no
    /// second code. Without it, a stolen password would be enough to take over the factor.
    pub fn begin_totp(&self, person: &str, current_code: Option<&str>, now: DateTime<Utc>) -> Result<TotpEnrolment, AccountError> {
        let secret = Secret::generate().to_base32();
        let enrolment = enrolment_of(secret, person)?;
        let mut map = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        let a = map.get_mut(person).ok_or_else(|| AccountError::UnknownAccount(person.into()))?;
        if !a.may_replace(now) {
            let code = current_code.filter(|c| !c.trim().is_empty()).ok_or(AccountError::ReplacementNeedsCode)?;
            let spent = self.spend_code(person, a, code, now);
            if spent.is_ok() {
                a.replacement_allowed_until = Some(now + Duration::minutes(REPLACEMENT_WINDOW_MINUTES));
            }
            self.settle(&map, spent)?;
        }
        let sealed = self.key.seal(person, &enrolment.secret)?;
        let a = map.get_mut(person).ok_or_else(|| AccountError::UnknownAccount(person.into()))?;
        a.pending_totp = Some(sealed);
        self.save(&map)?;
        Ok(enrolment)
    }

    /// The enrolment waiting for its first code, if any: the same secret, URL and QR code that
    /// `begin_totp` showed, so the page can show them again (to the same signed-in person) after a
    /// reload or a mistyped code, without replacing the secret already scanned. A replacement
    /// whose window has passed is no longer shown: it needs a current code again.
    pub fn pending_totp(&self, person: &str, now: DateTime<Utc>) -> Result<Option<TotpEnrolment>, AccountError> {
        let Some(a) = self.get(person) else { return Ok(None) };
        let Some(sealed) = a.pending_totp.as_ref().filter(|_| a.may_replace(now)) else { return Ok(None) };
        Ok(Some(enrolment_of(self.key.open(person, sealed)?, person)?))
    }

    /// Confirms the pending secret with its first code; it becomes the factor (replacing the
    /// enrolled one if the replacement was authorised by a code of it), and the code's step is
    /// spent.
    pub fn confirm_totp(&self, person: &str, code: &str, now: DateTime<Utc>) -> Result<(), AccountError> {
        let mut map = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        let a = map.get_mut(person).ok_or_else(|| AccountError::UnknownAccount(person.into()))?;
        let pending = a.pending_totp.clone().ok_or(AccountError::NoEnrolment)?;
        if !a.may_replace(now) {
            return Err(AccountError::ReplacementNeedsCode);
        }
        let t = totp(&self.key.open(person, &pending)?, person)?;
        let CodeCheck::Accepted(step) = check_code(|s| t.generate(s * STEP_SECONDS).to_string(), &digits_of(code), unix(now), None) else {
            return Err(AccountError::BadSecondFactor);
        };
        let replaced = a.totp_secret.is_some();
        a.totp_secret = Some(pending);
        a.pending_totp = None;
        a.replacement_allowed_until = None;
        a.totp_last_step = Some(step);
        a.totp_failures = FailedCodes::default();
        self.save(&map)?;
        let event = if replaced { AuditEvent::SecondFactorReplaced } else { AuditEvent::SecondFactorEnrolled };
        self.record(&AuditEntry::new(now, event, person));
        Ok(())
    }

    /// Checks a TOTP code for an enrolled account and spends its time step. Refused while the
    /// account is locked by wrong codes (even a correct code), and for a step already spent.
    pub fn check_totp(&self, person: &str, code: &str, now: DateTime<Utc>) -> Result<(), AccountError> {
        let mut map = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        let spent = match map.get_mut(person) {
            Some(a) if a.has_second_factor() => self.spend_code(person, a, code, now),
            _ => return Err(AccountError::BadSecondFactor),
        };
        self.settle(&map, spent)
    }

    /// `check_totp`, once per request: a code already accepted in `request` is accepted again
    /// without spending another step (the other acts of one batch).
    pub fn check_totp_in(&self, person: &str, code: &str, now: DateTime<Utc>, request: &RequestCodes) -> Result<(), AccountError> {
        let code = digits_of(code);
        let mut accepted = request.accepted.lock().unwrap_or_else(|e| e.into_inner());
        if accepted.iter().any(|c| secrets_equal(c, &code)) {
            return Ok(());
        }
        self.check_totp(person, &code, now)?;
        accepted.push(code);
        Ok(())
    }

    /// Removes a person's second factor (and any enrolment in progress) on an administrator's
    /// word, for a lost phone. Recorded in the audit log first: a reset that cannot be recorded
    /// is not made.
    pub fn reset_totp(&self, person: &str, by: &str, now: DateTime<Utc>) -> Result<(), AccountError> {
        let mut map = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        let a = map.get_mut(person).ok_or_else(|| AccountError::UnknownAccount(person.into()))?;
        if a.totp_secret.is_none() && a.pending_totp.is_none() {
            return Err(AccountError::NothingToReset(person.into()));
        }
        self.audit.append(&AuditEntry { by: Some(by), ..AuditEntry::new(now, AuditEvent::SecondFactorReset, person) })?;
        a.totp_secret = None;
        a.pending_totp = None;
        a.replacement_allowed_until = None;
        a.totp_last_step = None;
        a.totp_failures = FailedCodes::default();
        self.save(&map)?;
        eprintln!("accounts: {by} reset the second factor of {person} (recorded in {})", self.audit.path().display());
        Ok(())
    }

    /// The current code for an enrolled (or enrolling) account: for tests and the demo only.
    pub fn current_totp_for_tests(&self, person: &str, now: DateTime<Utc>) -> Option<String> {
        self.totp_for_tests(person, now)
    }

    /// The code of the time step after the current one, which the server accepts too (one step
    /// of skew): lets a test make a second act within one 30-second window.
    pub fn next_totp_for_tests(&self, person: &str, now: DateTime<Utc>) -> Option<String> {
        self.totp_for_tests(person, now + Duration::seconds(STEP_SECONDS as i64))
    }

    fn totp_for_tests(&self, person: &str, at: DateTime<Utc>) -> Option<String> {
        let a = self.get(person)?;
        let sealed = a.pending_totp.or(a.totp_secret)?;
        let secret = self.key.open(person, &sealed).ok()?;
        Some(totp(&secret, person).ok()?.generate(unix(at)).to_string())
    }

    /// Checks `code` against the account's factor and updates what it keeps about codes: the
    /// step spent, or one more wrong code (and the lock it may start), logged and recorded
    /// without the code itself. Changes only `a`; `settle` saves.
    fn spend_code(&self, person: &str, a: &mut Account, code: &str, now: DateTime<Utc>) -> Result<(), AccountError> {
        if let Some(until) = a.totp_failures.locked_until(now) {
            eprintln!("second factor: a code for {person} was refused unchecked: locked until {until} after too many wrong codes");
            return Err(AccountError::SecondFactorLocked { retry_after_seconds: (until - now).num_seconds().max(1) as u64 });
        }
        let sealed = a.totp_secret.as_ref().ok_or(AccountError::BadSecondFactor)?;
        let t = totp(&self.key.open(person, sealed)?, person)?;
        match check_code(|s| t.generate(s * STEP_SECONDS).to_string(), &digits_of(code), unix(now), a.totp_last_step) {
            CodeCheck::Accepted(step) => {
                a.totp_last_step = Some(step);
                a.totp_failures = FailedCodes::default();
                Ok(())
            }
            CodeCheck::Replayed => {
                eprintln!("second factor: a code for {person} was sent again after it had been accepted, and refused");
                Err(AccountError::CodeAlreadyUsed)
            }
            CodeCheck::Wrong => {
                let max = FAILURE_LIMIT.max_failures;
                match a.totp_failures.record(now, &FAILURE_LIMIT) {
                    None => {
                        let failures = a.totp_failures.count(now, &FAILURE_LIMIT);
                        eprintln!("second factor: wrong code for {person} ({failures} of {max} before a lock)");
                        self.record(&AuditEntry { failures: Some(failures), ..AuditEntry::new(now, AuditEvent::SecondFactorFailed, person) });
                    }
                    Some(until) => {
                        eprintln!("second factor: wrong code for {person} ({max} of {max}): codes are refused until {until}");
                        self.record(&AuditEntry { failures: Some(max), ..AuditEntry::new(now, AuditEvent::SecondFactorFailed, person) });
                        self.record(&AuditEntry { until: Some(until), ..AuditEntry::new(now, AuditEvent::SecondFactorLocked, person) });
                    }
                }
                Err(AccountError::BadSecondFactor)
            }
        }
    }

    /// Saves what `spend_code` changed. An accepted code is accepted only once its step is on
    /// disk (else a restart would take it again). A wrong code is refused even when the count
    /// cannot be saved (it still holds in memory); a lock or a replay changed nothing to save.
    fn settle(&self, map: &BTreeMap<String, Account>, spent: Result<(), AccountError>) -> Result<(), AccountError> {
        match spent {
            Ok(()) => self.save(map),
            Err(AccountError::BadSecondFactor) => {
                if let Err(e) = self.save(map) {
                    eprintln!("second factor: the wrong-code count could not be saved: {e}");
                }
                Err(AccountError::BadSecondFactor)
            }
            Err(e) => Err(e),
        }
    }

    /// Appends to the audit log; a failure to record a refused code is logged, never a reason
    /// to accept it.
    fn record(&self, entry: &AuditEntry<'_>) {
        if let Err(e) = self.audit.append(entry) {
            eprintln!("accounts: {e}");
        }
    }

    fn save(&self, map: &BTreeMap<String, Account>) -> Result<(), AccountError> {
        let io = |e: std::io::Error| AccountError::Io { path: self.path.display().to_string(), reason: e.to_string() };
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(map).map_err(|e| AccountError::Io { path: self.path.display().to_string(), reason: e.to_string() })?;
        // A leftover temporary file may have been made with other permissions: start afresh,
        // so the new file is created 0600.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        let mut f = sealing::private_file().write(true).create_new(true).open(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

/// `chmod 600`, for a file an older carimbo created with the default mode.
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
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

/// 32 random bytes, base64url: a session token, a CSRF token.
pub fn random_token() -> String {
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
    use chrono::TimeZone;

    fn open(dir: &Path) -> Accounts {
        Accounts::open(&AccountFiles::in_data_dir(dir)).unwrap()
    }

    /// A fixed time in the middle of a 30-second step, so `now` and `now + 10 s` share a step.
    fn noon() -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 / 30 * 30 + 10, 0).single().unwrap()
    }

    /// A code no step within the skew of `now` has.
    fn wrong_code(accounts: &Accounts, person: &str, now: DateTime<Utc>) -> String {
        let near: Vec<String> = [-30, 0, 30].iter().map(|s| accounts.current_totp_for_tests(person, now + Duration::seconds(*s)).unwrap()).collect();
        ["000000", "111111", "222222", "333333"].iter().find(|c| !near.iter().any(|n| n == *c)).unwrap().to_string()
    }

    fn enrol(accounts: &Accounts, person: &str, now: DateTime<Utc>) {
        accounts.begin_totp(person, None, now).unwrap();
        accounts.confirm_totp(person, &accounts.current_totp_for_tests(person, now).unwrap(), now).unwrap();
    }

    fn audit_lines(dir: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn passwords_are_stored_as_argon2id_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = open(dir.path());
        accounts.ensure(&["p005".into()], "correct horse battery").unwrap();
        let stored = std::fs::read_to_string(dir.path().join("accounts.json")).unwrap();
        assert!(stored.contains("$argon2id$"), "{stored}");
        assert!(!stored.contains("correct horse"));
        #[cfg(unix)]
        assert_eq!(mode(&dir.path().join("accounts.json")), 0o600, "only the server's user reads the accounts file");
        assert!(accounts.verify_password("p005", "correct horse battery").is_ok());
        assert!(matches!(accounts.verify_password("p005", "wrong"), Err(AccountError::BadCredentials)));
        assert!(matches!(accounts.verify_password("nobody", "correct horse battery"), Err(AccountError::BadCredentials)));
        assert!(matches!(accounts.set_password("p005", "short"), Err(AccountError::WeakPassword)));
        assert!(!format!("{:?}", accounts.get("p005").unwrap()).contains("argon2"), "no hash in Debug output");
        // Reopened from disk: the same account.
        let again = open(dir.path());
        assert!(again.verify_password("p005", "correct horse battery").is_ok());
    }

    #[test]
    fn a_second_factor_is_enrolled_with_a_first_code_and_then_checked() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = open(dir.path());
        accounts.ensure(&["p003".into()], "correct horse battery").unwrap();
        let now = noon();
        assert!(matches!(accounts.confirm_totp("p003", "123456", now), Err(AccountError::NoEnrolment)));
        assert!(accounts.pending_totp("p003", now).unwrap().is_none());
        let e = accounts.begin_totp("p003", None, now).unwrap();
        assert!(e.url.starts_with("otpauth://totp/carimbo:p003?"), "{}", e.url);
        assert!(!e.qr_png_base64.is_empty());
        let shown_again = accounts.pending_totp("p003", now).unwrap().expect("the enrolment waits for its code");
        assert_eq!((shown_again.secret.as_str(), shown_again.url.as_str()), (e.secret.as_str(), e.url.as_str()), "the same secret, not a new one");
        let wrong = wrong_code(&accounts, "p003", now);
        assert!(matches!(accounts.confirm_totp("p003", &wrong, now), Err(AccountError::BadSecondFactor)));
        assert!(accounts.pending_totp("p003", now).unwrap().is_some() && !accounts.get("p003").unwrap().has_second_factor(), "a wrong code changes nothing");
        assert!(matches!(accounts.check_totp("p003", "000000", now), Err(AccountError::BadSecondFactor)), "not active before confirmation");
        let code = accounts.current_totp_for_tests("p003", now).unwrap();
        accounts.confirm_totp("p003", &code, now).unwrap();
        assert!(accounts.pending_totp("p003", now).unwrap().is_none(), "confirmed: nothing pending");
        let later = now + Duration::seconds(30);
        let next = accounts.current_totp_for_tests("p003", later).unwrap();
        assert!(accounts.check_totp("p003", &next, later).is_ok());
        assert!(accounts.check_totp("p003", &wrong_code(&accounts, "p003", later), later).is_err());
        let much_later = now + Duration::minutes(10);
        assert!(matches!(accounts.check_totp("p003", &next, much_later), Err(AccountError::BadSecondFactor)), "codes expire");
        assert_eq!(audit_lines(dir.path()).iter().filter(|l| l["event"] == "second-factor-enrolled").count(), 1);
    }

    #[test]
    fn a_code_is_accepted_once_and_its_step_is_remembered_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = open(dir.path());
        accounts.ensure(&["p028".into()], "correct horse battery").unwrap();
        let now = noon();
        enrol(&accounts, "p028", now);
        let code = accounts.current_totp_for_tests("p028", now).unwrap();
        assert!(matches!(accounts.check_totp("p028", &code, now), Err(AccountError::CodeAlreadyUsed)), "the confirming code is spent too");
        let next = accounts.next_totp_for_tests("p028", now).unwrap();
        accounts.check_totp("p028", &next, now).expect("the next step's code, within the skew");
        assert!(matches!(accounts.check_totp("p028", &next, now + Duration::seconds(5)), Err(AccountError::CodeAlreadyUsed)), "the same code a second time");
        assert!(
            matches!(accounts.check_totp("p028", &code, now + Duration::seconds(5)), Err(AccountError::CodeAlreadyUsed)),
            "an earlier step after a later one"
        );
        let again = open(dir.path());
        assert!(matches!(again.check_totp("p028", &next, now + Duration::seconds(6)), Err(AccountError::CodeAlreadyUsed)), "a restart forgets nothing");
        let after = now + Duration::seconds(60);
        again.check_totp("p028", &again.current_totp_for_tests("p028", after).unwrap(), after).expect("a later window's code");
        // One batch request carries one code for all its acts: spent once, good for that request only.
        let batch = RequestCodes::default();
        let much_later = now + Duration::seconds(120);
        let code = again.current_totp_for_tests("p028", much_later).unwrap();
        again.check_totp_in("p028", &code, much_later, &batch).unwrap();
        again.check_totp_in("p028", &code, much_later, &batch).expect("the second act of the same batch");
        assert!(matches!(again.check_totp_in("p028", &code, much_later, &RequestCodes::default()), Err(AccountError::CodeAlreadyUsed)), "another request");
    }

    #[test]
    fn wrong_codes_lock_the_second_factor_and_a_correct_code_waits_for_the_lock_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = open(dir.path());
        accounts.ensure(&["p028".into()], "correct horse battery").unwrap();
        let now = noon();
        enrol(&accounts, "p028", now);
        let wrong = wrong_code(&accounts, "p028", now);
        for _ in 0..FAILURE_LIMIT.max_failures {
            assert!(matches!(accounts.check_totp("p028", &wrong, now), Err(AccountError::BadSecondFactor)));
        }
        let right = accounts.next_totp_for_tests("p028", now).unwrap();
        let Err(AccountError::SecondFactorLocked { retry_after_seconds }) = accounts.check_totp("p028", &right, now + Duration::seconds(1)) else {
            panic!("locked")
        };
        assert_eq!(retry_after_seconds, FAILURE_LIMIT.lock_seconds as u64 - 1);
        assert!(accounts.get("p028").unwrap().second_factor_locked_until(now).is_some());
        // The lock is kept with the account: a restart does not lift it.
        let again = open(dir.path());
        assert!(matches!(again.check_totp("p028", &right, now + Duration::seconds(2)), Err(AccountError::SecondFactorLocked { .. })));
        let stored = std::fs::read_to_string(dir.path().join("accounts.json")).unwrap();
        assert!(!stored.contains(&format!("\"{wrong}\"")) && !stored.contains(&format!("\"{right}\"")), "no code is kept");
        let after = now + Duration::seconds(FAILURE_LIMIT.lock_seconds + 30);
        again.check_totp("p028", &again.current_totp_for_tests("p028", after).unwrap(), after).expect("accepted once the lock is over");
        let lines = audit_lines(dir.path());
        assert_eq!(lines.iter().filter(|l| l["event"] == "second-factor-failed").count(), FAILURE_LIMIT.max_failures);
        assert_eq!(lines.iter().filter(|l| l["event"] == "second-factor-locked").count(), 1);
        assert!(!std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap().contains(&format!("\"{wrong}\"")), "the audit log holds no code");
    }

    #[test]
    fn replacing_an_enrolled_factor_needs_a_current_code_of_it_or_an_administrators_reset() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = open(dir.path());
        accounts.ensure(&["p028".into()], "correct horse battery").unwrap();
        let now = noon();
        enrol(&accounts, "p028", now);
        let old = accounts.get("p028").unwrap().totp_secret;
        assert!(matches!(accounts.begin_totp("p028", None, now), Err(AccountError::ReplacementNeedsCode)));
        assert!(
            matches!(accounts.begin_totp("p028", Some(&wrong_code(&accounts, "p028", now)), now), Err(AccountError::BadSecondFactor)),
            "a wrong old code counts as a wrong code"
        );
        assert!(accounts.pending_totp("p028", now).unwrap().is_none(), "nothing started");
        let old_code = accounts.next_totp_for_tests("p028", now).unwrap();
        accounts.begin_totp("p028", Some(&old_code), now).expect("a current code of the old factor");
        accounts.begin_totp("p028", None, now + Duration::seconds(20)).expect("starting over within the window needs no second code");
        let new_code = accounts.current_totp_for_tests("p028", now + Duration::seconds(20)).unwrap();
        accounts.confirm_totp("p028", &new_code, now + Duration::seconds(20)).unwrap();
        assert_ne!(accounts.get("p028").unwrap().totp_secret, old, "replaced");
        assert_eq!(audit_lines(dir.path()).last().unwrap()["event"], "second-factor-replaced");

        // A replacement left pending past its window needs the old code again.
        let later = now + Duration::hours(1);
        accounts.begin_totp("p028", Some(&accounts.current_totp_for_tests("p028", later).unwrap()), later).unwrap();
        let expired = later + Duration::minutes(REPLACEMENT_WINDOW_MINUTES + 1);
        assert!(accounts.pending_totp("p028", expired).unwrap().is_none(), "no longer shown");
        assert!(matches!(
            accounts.confirm_totp("p028", &accounts.current_totp_for_tests("p028", expired).unwrap(), expired),
            Err(AccountError::ReplacementNeedsCode)
        ));

        accounts.reset_totp("p028", "p032", expired).unwrap();
        let a = accounts.get("p028").unwrap();
        assert!(!a.has_second_factor() && a.pending_totp.is_none());
        let reset = audit_lines(dir.path()).into_iter().last().unwrap();
        assert_eq!((reset["event"].as_str(), reset["person"].as_str(), reset["by"].as_str()), (Some("second-factor-reset"), Some("p028"), Some("p032")));
        assert!(reset["at"].as_str().is_some());
        assert!(matches!(accounts.reset_totp("p028", "p032", expired), Err(AccountError::NothingToReset(_))));
        assert!(matches!(accounts.reset_totp("nobody", "p032", expired), Err(AccountError::UnknownAccount(_))));
        accounts.begin_totp("p028", None, expired).expect("after a reset, a first enrolment again");
    }

    #[test]
    fn secrets_are_encrypted_at_rest_and_clear_text_ones_from_an_older_file_are_encrypted_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = open(dir.path());
        accounts.ensure(&["p028".into(), "p005".into()], "correct horse battery").unwrap();
        let now = noon();
        enrol(&accounts, "p028", now);
        let secret = accounts.begin_totp("p005", None, now).unwrap().secret;
        let stored = std::fs::read_to_string(dir.path().join("accounts.json")).unwrap();
        assert!(!stored.contains(&secret), "no secret in clear");
        assert!(stored.contains("aes-256-gcm:"));
        assert!(!format!("{:?}", accounts.get("p005").unwrap()).contains(&secret));
        #[cfg(unix)]
        assert_eq!((mode(&dir.path().join("keys/totp.key")), mode(&dir.path().join("keys"))), (0o600, 0o700));
        drop(accounts);

        // An accounts file from before encryption: the secret in clear, mode 0644.
        let mut file: serde_json::Value = serde_json::from_str(&stored).unwrap();
        file["p005"]["totp_secret"] = serde_json::json!("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
        file["p005"]["pending_totp"] = serde_json::Value::Null;
        std::fs::write(dir.path().join("accounts.json"), serde_json::to_vec(&file).unwrap()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join("accounts.json"), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let migrated = open(dir.path());
        let stored = std::fs::read_to_string(dir.path().join("accounts.json")).unwrap();
        assert!(!stored.contains("JBSWY3DPEHPK3PXP"), "rewritten encrypted: {stored}");
        #[cfg(unix)]
        assert_eq!(mode(&dir.path().join("accounts.json")), 0o600);
        let legacy = totp("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "p005").unwrap().generate(unix(now)).to_string();
        migrated.check_totp("p005", &legacy, now).expect("the same factor, still working");
        drop(migrated);

        // Without its key, or with another one, the server does not start.
        std::fs::rename(dir.path().join("keys/totp.key"), dir.path().join("totp.key.saved")).unwrap();
        assert!(matches!(Accounts::open(&AccountFiles::in_data_dir(dir.path())), Err(AccountError::KeyMissing { sealed: 2, .. })));
        assert!(!dir.path().join("keys/totp.key").exists(), "no new key made over the lost one");
        TotpKey::create(&dir.path().join("keys/totp.key")).unwrap();
        let Err(e) = Accounts::open(&AccountFiles::in_data_dir(dir.path())) else { panic!("opened with a wrong key") };
        assert!(matches!(e, AccountError::WrongKey { .. }) && e.code() == "CARIMBO-E0613", "{e}");
        // The key may live elsewhere.
        let elsewhere = AccountFiles { totp_key: dir.path().join("totp.key.saved"), ..AccountFiles::in_data_dir(dir.path()) };
        Accounts::open(&elsewhere).expect("the right key, from another place");
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
