//! The outbox: what other systems (payroll, the archive) learn from carimbo, and how.
//!
//! Every decision and every completed, rejected or withdrawn case is written to the store's
//! outbox by `CaseService` in the same append as the events that caused it (see
//! `cases::outbox_messages`), so a message exists exactly when its event does. From there:
//! - the `Dispatcher` delivers each message at least once to every configured webhook that
//!   wants its kind: an HTTP POST of the message as JSON, signed with HMAC-SHA256 under the
//!   endpoint's secret, retried with exponential back-off, and after the last attempt kept as a
//!   dead letter that administrators see and can send again (`/admin/outbox`,
//!   `GET /api/v1/admin/outbox/dead-letters`, `POST /api/v1/admin/outbox/retry`);
//! - `export` writes the messages of a period as CSV or JSON (`carimbo export`, and the API's
//!   `GET /api/v1/admin/export`) for payroll runs and archives.
//!
//! Receivers must accept a message more than once (a crash between delivery and the record of
//! it sends it again): the `X-Carimbo-Delivery` header is the message's stable id.
//! `docs/outbox.md` describes the configuration, the body, the signature and the export columns.

use crate::store::{OutboxRecord, Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The message kinds the outbox holds.
pub const KINDS: [&str; 4] = ["decision", "case.completed", "case.rejected", "case.withdrawn"];

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("webhook configuration {file}: {problem} [CARIMBO-E1001]")]
    Config { file: String, problem: String },
    #[error("webhook configuration {file} repeats a member name: {reason} [CARIMBO-E0120]")]
    Duplicate { file: String, reason: String },
    #[error("{0} [CARIMBO-E1002]")]
    Export(String),
    #[error("no outbox message {0:?} [CARIMBO-E1003]")]
    UnknownMessage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// The webhook configuration file (`carimbo serve --webhooks FILE`), as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    endpoints: Vec<EndpointFile>,
    #[serde(default)]
    retry: RetryPolicy,
    /// Seconds a delivery may take (connect, send, answer) before it counts as failed.
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointFile {
    name: String,
    url: String,
    /// A file holding the shared secret (its bytes, trailing newline removed).
    secret_file: Option<PathBuf>,
    /// An environment variable holding the shared secret.
    secret_env: Option<String>,
    /// The kinds this endpoint receives; all when absent.
    kinds: Option<Vec<String>>,
    /// Restricted fields (a diagnosis) this receiver is entitled to: their values are sent in
    /// the open; every other restricted field arrives as its salted commitment only.
    #[serde(default)]
    restricted_fields: Vec<String>,
}

/// When a failed delivery is tried again: `first_delay_ms` after the first failure, doubling
/// up to `max_delay_ms`, with up to a fifth of random jitter; after `max_attempts` failures the
/// message is a dead letter for that endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // 8 attempts over about 4 hours: 30 s, 1 min, 2, 4, 8, 16, 32 min, 1 h.
        RetryPolicy { max_attempts: 8, first_delay_ms: 30_000, max_delay_ms: 3_600_000 }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failure (1-based), without jitter.
    pub fn delay_after(&self, attempts: u32) -> std::time::Duration {
        let factor = 1u64.checked_shl(attempts.saturating_sub(1)).unwrap_or(u64::MAX);
        std::time::Duration::from_millis(self.first_delay_ms.saturating_mul(factor).min(self.max_delay_ms))
    }
}

/// One receiver of outbox messages.
pub struct Endpoint {
    pub name: String,
    pub url: String,
    /// Kinds it receives (empty: all).
    pub kinds: Vec<String>,
    /// Restricted fields it receives in the open (`visibility::message_for`); none by default.
    pub restricted_fields: BTreeSet<String>,
    key: hmac::Key,
}

impl std::fmt::Debug for Endpoint {
    // The key stays out of logs and debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("kinds", &self.kinds)
            .field("restricted_fields", &self.restricted_fields)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    pub fn new(name: &str, url: &str, secret: &[u8], kinds: Vec<String>) -> Endpoint {
        Endpoint { name: name.to_string(), url: url.to_string(), kinds, restricted_fields: BTreeSet::new(), key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    /// The same endpoint, entitled to these restricted fields.
    pub fn with_restricted_fields(mut self, fields: impl IntoIterator<Item = String>) -> Endpoint {
        self.restricted_fields = fields.into_iter().collect();
        self
    }

    pub fn wants(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind)
    }

    /// The `X-Carimbo-Signature` value for a body sent at `timestamp` (Unix seconds):
    /// `sha256=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"` under the endpoint's secret.
    pub fn signature(&self, timestamp: i64, body: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(format!("{timestamp}.").as_bytes());
        ctx.update(body);
        format!("sha256={}", hex::encode(ctx.sign().as_ref()))
    }

    /// The URL without any user name or password in it, for pages and logs.
    pub fn public_url(&self) -> String {
        match self.url.parse::<axum::http::Uri>() {
            Ok(uri) => {
                let host = uri.authority().map(|a| a.as_str().rsplit('@').next().unwrap_or_default().to_string()).unwrap_or_default();
                format!("{}://{}{}", uri.scheme_str().unwrap_or("http"), host, uri.path())
            }
            Err(_) => "(unparsable URL)".into(),
        }
    }
}

/// The webhooks a server delivers to.
#[derive(Debug)]
pub struct WebhookConfig {
    pub endpoints: Vec<Endpoint>,
    pub retry: RetryPolicy,
    pub timeout: std::time::Duration,
}

impl WebhookConfig {
    /// Reads and checks a configuration file; every problem is named with the endpoint it is in.
    pub fn load(path: &Path) -> Result<WebhookConfig, OutboxError> {
        let file = path.display().to_string();
        let err = |problem: String| OutboxError::Config { file: file.clone(), problem };
        let bytes = std::fs::read(path).map_err(|e| err(format!("cannot be read: {e}")))?;
        let parsed: ConfigFile = crate::json_strict::from_slice(&bytes).map_err(|e| match e {
            e @ crate::json_strict::StrictJsonError::Duplicate { .. } => OutboxError::Duplicate { file: file.clone(), reason: e.to_string() },
            e => err(format!("is not a valid configuration: {e}")),
        })?;
        Self::from_parts(parsed, path.parent().unwrap_or(Path::new("."))).map_err(err)
    }

    fn from_parts(parsed: ConfigFile, base: &Path) -> Result<WebhookConfig, String> {
        if parsed.endpoints.is_empty() {
            return Err("names no endpoint".into());
        }
        if parsed.retry.max_attempts == 0 || parsed.retry.max_attempts > 100 {
            return Err(format!("retry.max_attempts must be between 1 and 100, not {}", parsed.retry.max_attempts));
        }
        if parsed.retry.first_delay_ms == 0 || parsed.retry.max_delay_ms < parsed.retry.first_delay_ms {
            return Err("retry.first_delay_ms must be at least 1 and at most retry.max_delay_ms".into());
        }
        if parsed.timeout_seconds == 0 || parsed.timeout_seconds > 300 {
            return Err(format!("timeout_seconds must be between 1 and 300, not {}", parsed.timeout_seconds));
        }
        let mut endpoints: Vec<Endpoint> = Vec::new();
        for e in parsed.endpoints {
            let at = format!("endpoint {:?}", e.name);
            if e.name.is_empty() || e.name.len() > 64 || !e.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(format!("{at}: a name is 1 to 64 letters, digits, '-' or '_'"));
            }
            if endpoints.iter().any(|x| x.name == e.name) {
                return Err(format!("{at} is named twice"));
            }
            let uri: axum::http::Uri = e.url.parse().map_err(|err| format!("{at}: url {:?} is not a URL: {err}", e.url))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(format!("{at}: url {:?} must be an http:// or https:// URL with a host", e.url));
            }
            let secret = match (&e.secret_file, &e.secret_env) {
                (Some(f), None) => {
                    let f = if f.is_absolute() { f.clone() } else { base.join(f) };
                    let text = std::fs::read(&f).map_err(|err| format!("{at}: secret_file {} cannot be read: {err}", f.display()))?;
                    trim_newline(text)
                }
                (None, Some(var)) => {
                    std::env::var(var).map_err(|_| format!("{at}: the environment variable {var} named by secret_env is not set"))?.into_bytes()
                }
                _ => return Err(format!("{at}: give exactly one of secret_file and secret_env (a secret is never written in this file)")),
            };
            if secret.len() < 16 {
                return Err(format!("{at}: the secret is {} bytes; use at least 16 (e.g. 32 random bytes in hex)", secret.len()));
            }
            let kinds = e.kinds.unwrap_or_default();
            if let Some(k) = kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
                return Err(format!("{at}: kind {k:?} is not one of {}", KINDS.join(", ")));
            }
            if let Some(f) = e.restricted_fields.iter().find(|f| f.is_empty() || f.len() > 128 || f.contains('/')) {
                return Err(format!("{at}: restricted_fields names {f:?}, which is not a field name"));
            }
            endpoints.push(Endpoint::new(&e.name, &e.url, &secret, kinds).with_restricted_fields(e.restricted_fields));
        }
        Ok(WebhookConfig { endpoints, retry: parsed.retry, timeout: std::time::Duration::from_secs(parsed.timeout_seconds) })
    }
}

fn trim_newline(mut b: Vec<u8>) -> Vec<u8> {
    while matches!(b.last(), Some(b'\n' | b'\r')) {
        b.pop();
    }
    b
}

// ---------------------------------------------------------------------------------------------
// Delivery state, kept in each record's `delivery` (endpoint name → state)

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    #[default]
    Pending,
    Delivered,
    /// Given up after the last attempt: a dead letter until an administrator sends it again.
    Dead,
    /// The endpoint does not take this kind.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EndpointDelivery {
    pub state: DeliveryState,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
}

/// What one attempt to deliver a message came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Accepted, with the receiver's status (HTTP 2xx, SMTP 250).
    Delivered(u16),
    /// Not accepted: the receiver's status if it answered, why, and whether trying again
    /// cannot help (an SMTP 5xx, an address that is not one).
    Failed { status: Option<u16>, why: String, permanent: bool },
}

impl EndpointDelivery {
    /// Records one attempt made at `now`, for webhooks and mail alike: delivered; or failed,
    /// then dead once permanent or after the policy's last attempt, else due again after the
    /// policy's back-off (with up to a fifth more as jitter when `jitter`, so receivers that
    /// failed together are not retried together).
    pub fn record_attempt(&mut self, attempt: &Attempt, now: DateTime<Utc>, retry: &RetryPolicy, jitter: bool) {
        self.attempts += 1;
        self.last_attempt_at = Some(now);
        match attempt {
            Attempt::Delivered(status) => {
                self.state = DeliveryState::Delivered;
                self.delivered_at = Some(Utc::now());
                self.next_at = None;
                self.last_status = Some(*status);
                self.last_error = None;
            }
            Attempt::Failed { status, why, permanent } => {
                self.last_status = *status;
                self.last_error = Some(why.clone());
                if *permanent || self.attempts >= retry.max_attempts {
                    self.state = DeliveryState::Dead;
                    self.next_at = None;
                } else {
                    self.next_at = Some(retry_at(retry, self.attempts, now, jitter));
                }
            }
        }
    }
}

/// When to try again after the `failures`-th failure in a row at `now`.
pub fn retry_at(retry: &RetryPolicy, failures: u32, now: DateTime<Utc>, jitter: bool) -> DateTime<Utc> {
    let wait = retry.delay_after(failures).as_millis() as u64;
    let extra = if jitter { jitter_ms(wait / 5) } else { 0 };
    now + Duration::milliseconds(wait.saturating_add(extra) as i64)
}

pub type Deliveries = BTreeMap<String, EndpointDelivery>;

/// The delivery state recorded on a message (an unreadable one starts afresh: at least once).
pub fn deliveries_of(record: &OutboxRecord) -> Deliveries {
    serde_json::from_value(record.delivery.clone()).unwrap_or_default()
}

fn settled_and_dead(d: &Deliveries, config: &WebhookConfig) -> (bool, bool) {
    let state = |e: &Endpoint| d.get(&e.name).map(|x| x.state).unwrap_or_default();
    let settled = config.endpoints.iter().all(|e| state(e) != DeliveryState::Pending);
    let dead = d.values().any(|x| x.state == DeliveryState::Dead);
    (settled, dead)
}

/// The body an endpoint receives for a message: restricted values only for the fields it is
/// entitled to (`visibility::message_for`), never a salt.
pub fn body_of(record: &OutboxRecord, restricted_fields: &BTreeSet<String>) -> Vec<u8> {
    let payload = crate::visibility::message_for(&record.payload, restricted_fields);
    let v = json!({"id": record.id, "kind": record.kind, "case_id": record.case_id, "seq": record.seq, "at": record.at, "payload": payload});
    serde_json::to_vec(&v).expect("JSON values serialise")
}

// ---------------------------------------------------------------------------------------------
// The dispatcher

/// What one pass of the dispatcher did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    pub examined: usize,
    pub attempts: usize,
    pub delivered: usize,
    pub failed: usize,
    pub dead_lettered: usize,
    pub settled: usize,
}

/// What administrators see of the dispatcher.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DispatcherStatus {
    pub running: bool,
    pub last_pass_at: Option<DateTime<Utc>>,
    pub last_pass: PassReport,
    pub last_error: Option<String>,
    pub delivered_total: u64,
    pub failed_total: u64,
}

/// Delivers outbox messages to the configured webhooks. One per process is enough; several
/// processes on one PostgreSQL database may each run one (a message may then be sent twice,
/// which receivers must accept anyway).
pub struct Dispatcher {
    store: Arc<dyn Store>,
    pub config: Arc<WebhookConfig>,
    agent: ureq::Agent,
    pub status: Arc<Mutex<DispatcherStatus>>,
}

/// Messages read per store call while walking the pending list.
const PAGE: usize = 200;

impl Dispatcher {
    pub fn new(store: Arc<dyn Store>, config: Arc<WebhookConfig>) -> Dispatcher {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(config.timeout))
            .max_redirects(0)
            .user_agent(concat!("carimbo/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Dispatcher { store, config, agent, status: Arc::new(Mutex::new(DispatcherStatus::default())) }
    }

    /// One pass over every unsettled message: sends what is due at `now`, records the outcome
    /// of each message durably before going on.
    pub fn run_once(&self, now: DateTime<Utc>) -> Result<PassReport, OutboxError> {
        let mut report = PassReport::default();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.outbox_pending(after.as_deref(), PAGE)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let full = page.len() == PAGE;
            for record in page {
                report.examined += 1;
                self.deliver(&record, now, &mut report)?;
            }
            if !full {
                break;
            }
        }
        Ok(report)
    }

    fn deliver(&self, record: &OutboxRecord, now: DateTime<Utc>, report: &mut PassReport) -> Result<(), OutboxError> {
        // Notifications are for people, by mail (`notify::mail`), never for webhooks.
        if crate::notify::is_notification(&record.kind) {
            return Ok(());
        }
        let mut d = deliveries_of(record);
        let before = d.clone();
        for endpoint in &self.config.endpoints {
            let entry = d.entry(endpoint.name.clone()).or_default();
            if !endpoint.wants(&record.kind) {
                if entry.state == DeliveryState::Pending {
                    entry.state = DeliveryState::Skipped;
                }
                continue;
            }
            if entry.state != DeliveryState::Pending || entry.next_at.is_some_and(|t| t > now) {
                continue;
            }
            report.attempts += 1;
            let body = body_of(record, &endpoint.restricted_fields);
            let attempt = match self.post(endpoint, record, &body) {
                Ok(status) => Attempt::Delivered(status),
                Err((status, why)) => Attempt::Failed { status, why, permanent: false },
            };
            entry.record_attempt(&attempt, now, &self.config.retry, true);
            match entry.state {
                DeliveryState::Delivered => report.delivered += 1,
                DeliveryState::Dead => {
                    report.failed += 1;
                    report.dead_lettered += 1;
                }
                _ => report.failed += 1,
            }
        }
        let (settled, dead) = settled_and_dead(&d, &self.config);
        // Nothing new to record (every due endpoint still waits for its next attempt). A message
        // left unsettled by an endpoint since removed from the file is settled here.
        if d == before && settled == record.settled && dead == record.dead {
            return Ok(());
        }
        if settled {
            report.settled += 1;
        }
        let value = serde_json::to_value(&d).expect("delivery state serialises");
        self.store.outbox_update(&record.id, &value, settled, dead)?;
        Ok(())
    }

    /// Sends one message; `Err((status, why))` on anything but a 2xx answer.
    fn post(&self, endpoint: &Endpoint, record: &OutboxRecord, body: &[u8]) -> Result<u16, (Option<u16>, String)> {
        let timestamp = Utc::now().timestamp();
        let sent = self
            .agent
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("x-carimbo-delivery", &record.id)
            .header("x-carimbo-event", &record.kind)
            .header("x-carimbo-timestamp", timestamp.to_string())
            .header("x-carimbo-signature", endpoint.signature(timestamp, body))
            .send(body);
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) { Ok(status) } else { Err((Some(status), format!("the endpoint answered {status}"))) }
            }
            Err(e) => Err((None, format!("no answer: {e}"))),
        }
    }

    /// Runs passes every `interval` on a thread of its own until `stop` is set.
    pub fn spawn(self, interval: std::time::Duration, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        let status = self.status.clone();
        spawn_passes("carimbo-outbox", "outbox", status, interval, stop, move |now| self.run_once(now))
    }
}

/// The thread of a dispatcher (webhooks, mail): a pass every `interval` until `stop` is set,
/// each pass's outcome kept in `status` (totals, the last pass, the last error, printed with
/// `label`), `running` while it runs.
pub fn spawn_passes<E: std::fmt::Display>(
    name: &str,
    label: &'static str,
    status: Arc<Mutex<DispatcherStatus>>,
    interval: std::time::Duration,
    stop: Arc<AtomicBool>,
    mut pass: impl FnMut(DateTime<Utc>) -> Result<PassReport, E> + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            status.lock().unwrap_or_else(|e| e.into_inner()).running = true;
            while !stop.load(Ordering::Relaxed) {
                let result = pass(Utc::now());
                {
                    let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
                    s.last_pass_at = Some(Utc::now());
                    match result {
                        Ok(r) => {
                            s.delivered_total += r.delivered as u64;
                            s.failed_total += r.failed as u64;
                            s.last_pass = r;
                            s.last_error = None;
                        }
                        Err(e) => {
                            eprintln!("{label}: a delivery pass failed: {e}");
                            s.last_error = Some(e.to_string());
                        }
                    }
                }
                sleep_unless_stopped(interval, &stop);
            }
            status.lock().unwrap_or_else(|e| e.into_inner()).running = false;
        })
        .unwrap_or_else(|e| panic!("a thread for {label}: {e}"))
}

/// Sleeps `interval`, waking early once `stop` is set (checked every 50 ms), so a background
/// thread stops promptly when the server does.
pub fn sleep_unless_stopped(interval: std::time::Duration, stop: &AtomicBool) {
    let mut slept = std::time::Duration::ZERO;
    while slept < interval && !stop.load(Ordering::Relaxed) {
        let step = std::time::Duration::from_millis(50).min(interval - slept);
        std::thread::sleep(step);
        slept += step;
    }
}

/// Up to `max` milliseconds of jitter, so retries of many messages do not arrive together.
fn jitter_ms(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let mut b = [0u8; 8];
    // Jitter needs no secrecy; if the system's generator fails, no jitter is fine.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        return 0;
    }
    u64::from_le_bytes(b) % (max + 1)
}

/// Sends dead letters again: their dead endpoints go back to pending with a fresh count of
/// attempts. Unknown ids are refused before anything changes.
pub fn retry_dead(store: &dyn Store, ids: &[String]) -> Result<usize, OutboxError> {
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        records.push(store.outbox_get(id)?.ok_or_else(|| OutboxError::UnknownMessage(id.clone()))?);
    }
    let mut changed = 0;
    for r in records {
        let mut d = deliveries_of(&r);
        let mut any = false;
        for e in d.values_mut().filter(|e| e.state == DeliveryState::Dead) {
            *e = EndpointDelivery { attempts: 0, last_error: e.last_error.take(), last_status: e.last_status, ..EndpointDelivery::default() };
            any = true;
        }
        if any {
            store.outbox_update(&r.id, &serde_json::to_value(&d).expect("delivery state serialises"), false, false)?;
            changed += 1;
        }
    }
    Ok(changed)
}

// ---------------------------------------------------------------------------------------------
// Export

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Json,
}

impl std::str::FromStr for ExportFormat {
    type Err = OutboxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "json" => Ok(ExportFormat::Json),
            other => Err(OutboxError::Export(format!("the format is csv or json, not {other:?}"))),
        }
    }
}

/// Which messages to export.
#[derive(Debug, Clone)]
pub struct ExportFilter {
    pub since: DateTime<Utc>,
    /// Exclusive end; none: up to now.
    pub until: Option<DateTime<Utc>>,
    /// Kinds to include (empty: all).
    pub kinds: Vec<String>,
    /// Restricted fields to export in the open (`carimbo export --restricted-field`); every
    /// other restricted value stays a salted commitment, and no salt is exported.
    pub restricted_fields: BTreeSet<String>,
}

/// Reads a time given as `2026-11-01`, `2026-11-01T09:00:00Z` or with an offset; a date alone
/// is midnight in Macau (UTC+8), where the service works.
pub fn parse_time(text: &str, what: &str) -> Result<DateTime<Utc>, OutboxError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0).and_then(|t| t.and_local_timezone(crate::usage::macau()).single())
    {
        return Ok(t.with_timezone(&Utc));
    }
    Err(OutboxError::Export(format!("{what} {text:?} is not a date (2026-11-01) or a time (2026-11-01T09:00:00+08:00)")))
}

/// The CSV columns, one row per message.
pub const CSV_COLUMNS: [&str; 17] = [
    "id",
    "at",
    "kind",
    "case_id",
    "form_id",
    "form_version",
    "department",
    "submitter",
    "subject",
    "submitted_at",
    "step",
    "action",
    "actor",
    "on_behalf_of",
    "level",
    "status",
    "payload",
];

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Calls `f` for each message the filter selects, oldest first; returns how many.
fn walk(store: &dyn Store, filter: &ExportFilter, mut f: impl FnMut(&OutboxRecord) -> Result<(), OutboxError>) -> Result<usize, OutboxError> {
    let mut count = 0usize;
    let mut after: Option<String> = None;
    loop {
        let page = store.outbox_since(filter.since, after.as_deref(), 1000)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        let full = page.len() == 1000;
        for r in &page {
            if filter.until.is_some_and(|u| r.at >= u) {
                return Ok(count);
            }
            if filter.kinds.is_empty() || filter.kinds.contains(&r.kind) {
                f(r)?;
                count += 1;
            }
        }
        if !full {
            break;
        }
    }
    Ok(count)
}

/// Writes the messages the filter selects, oldest first, and returns how many. `progress` is
/// called every 10,000 messages with the count so far.
pub fn export(
    store: &dyn Store,
    filter: &ExportFilter,
    format: ExportFormat,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, OutboxError> {
    for k in &filter.kinds {
        if !KINDS.contains(&k.as_str()) {
            return Err(OutboxError::Export(format!("kind {k:?} is not one of {}", KINDS.join(", "))));
        }
    }
    if filter.until.is_some_and(|u| u <= filter.since) {
        return Err(OutboxError::Export("until must be later than since".into()));
    }
    let io = |e: std::io::Error| OutboxError::Export(format!("cannot write the export: {e}"));
    let csv_err = |e: csv::Error| OutboxError::Export(format!("cannot write the export: {e}"));
    let mut n = 0usize;
    let count = match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            w.write_record(CSV_COLUMNS).map_err(csv_err)?;
            let count = walk(store, filter, |r| {
                let p = &crate::visibility::message_for(&r.payload, &filter.restricted_fields);
                let row = [
                    r.id.clone(),
                    r.at.to_rfc3339(),
                    r.kind.clone(),
                    r.case_id.clone(),
                    text(&p["form_id"]),
                    text(&p["form_version"]),
                    text(&p["department"]),
                    text(&p["submitter"]),
                    text(&p["subject"]),
                    text(&p["submitted_at"]),
                    text(&p["step"]),
                    text(&p["action"]),
                    text(&p["actor"]),
                    text(&p["on_behalf_of"]),
                    text(&p["level"]),
                    text(&p["status"]),
                    p.to_string(),
                ];
                w.write_record(&row).map_err(csv_err)?;
                n += 1;
                if n.is_multiple_of(10_000) {
                    progress(n);
                }
                Ok(())
            })?;
            w.flush().map_err(io)?;
            count
        }
        ExportFormat::Json => {
            out.write_all(b"[").map_err(io)?;
            let count = walk(store, filter, |r| {
                out.write_all(if n == 0 { b"\n" } else { b",\n" }).map_err(io)?;
                let payload = crate::visibility::message_for(&r.payload, &filter.restricted_fields);
                let v = json!({"id": r.id, "at": r.at, "kind": r.kind, "case_id": r.case_id, "seq": r.seq, "payload": payload});
                serde_json::to_writer(&mut *out, &v).map_err(|e| OutboxError::Export(format!("cannot write the export: {e}")))?;
                n += 1;
                if n.is_multiple_of(10_000) {
                    progress(n);
                }
                Ok(())
            })?;
            out.write_all(if count == 0 { b"]\n" } else { b"\n]\n" }).map_err(io)?;
            count
        }
    };
    out.flush().map_err(io)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_the_cap() {
        let p = RetryPolicy { max_attempts: 8, first_delay_ms: 1000, max_delay_ms: 5000 };
        let ms: Vec<u128> = (1..=5).map(|a| p.delay_after(a).as_millis()).collect();
        assert_eq!(ms, vec![1000, 2000, 4000, 5000, 5000]);
        assert_eq!(p.delay_after(200).as_millis(), 5000, "no overflow far out");
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        let e = Endpoint::new("payroll", "http://127.0.0.1:1/h", b"0123456789abcdef", vec![]);
        let sig = e.signature(1_700_000_000, b"{\"a\":1}");
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"0123456789abcdef");
        let tag = hex::decode(sig.strip_prefix("sha256=").unwrap()).unwrap();
        assert!(hmac::verify(&key, b"1700000000.{\"a\":1}", &tag).is_ok());
        assert!(hmac::verify(&key, b"1700000001.{\"a\":1}", &tag).is_err(), "the timestamp is signed too");
    }

    #[test]
    fn a_url_with_credentials_is_shown_without_them() {
        let e = Endpoint::new("a", "https://user:pw@archive.example:8443/in?token=x", b"0123456789abcdef", vec![]);
        assert_eq!(e.public_url(), "https://archive.example:8443/in");
        assert!(!format!("{e:?}").contains("0123456789abcdef"));
    }

    fn config(text: &str) -> Result<WebhookConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), "0123456789abcdef0123\n").unwrap();
        let parsed: ConfigFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        WebhookConfig::from_parts(parsed, dir.path())
    }

    #[test]
    fn a_configuration_repeating_a_member_name_does_not_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), "0123456789abcdef0123\n").unwrap();
        let good = r#"{"endpoints":[{"name":"payroll","url":"http://127.0.0.1:9/h","secret_file":"k","kinds":["case.completed"]}]}"#;
        std::fs::write(dir.path().join("good.json"), good).unwrap();
        WebhookConfig::load(&dir.path().join("good.json")).unwrap();
        // Read last-wins, the second `url` is the one delivered to; another reader takes the first.
        let twice = good.replace(r#""url":"#, r#""url":"http://elsewhere.example/h","url":"#);
        std::fs::write(dir.path().join("twice.json"), twice).unwrap();
        let e = WebhookConfig::load(&dir.path().join("twice.json")).unwrap_err();
        let message = e.to_string();
        assert!(matches!(e, OutboxError::Duplicate { .. }), "{message}");
        assert!(message.contains("\"url\" appears twice in the object at /endpoints/0") && message.ends_with("[CARIMBO-E0120]"), "{message}");
    }

    #[test]
    fn a_good_configuration_loads_and_bad_ones_say_what_is_wrong() {
        let ok = config(r#"{"endpoints":[{"name":"payroll","url":"http://127.0.0.1:9/h","secret_file":"k","kinds":["case.completed"]}]}"#).unwrap();
        assert_eq!(ok.endpoints.len(), 1);
        assert!(ok.endpoints[0].wants("case.completed") && !ok.endpoints[0].wants("decision"));
        assert_eq!(ok.retry.max_attempts, 8);
        for (text, says) in [
            (r#"{"endpoints":[]}"#, "names no endpoint"),
            (r#"{"endpoints":[{"name":"a","url":"ftp://x/h","secret_file":"k"}]}"#, "http:// or https://"),
            (r#"{"endpoints":[{"name":"a","url":"http://x/h"}]}"#, "exactly one of secret_file and secret_env"),
            (r#"{"endpoints":[{"name":"a","url":"http://x/h","secret_file":"k","secret_env":"X"}]}"#, "exactly one"),
            (r#"{"endpoints":[{"name":"a","url":"http://x/h","secret_env":"CARIMBO_SURELY_UNSET_VAR"}]}"#, "CARIMBO_SURELY_UNSET_VAR"),
            (r#"{"endpoints":[{"name":"a","url":"http://x/h","secret_file":"missing"}]}"#, "cannot be read"),
            (r#"{"endpoints":[{"name":"a b","url":"http://x/h","secret_file":"k"}]}"#, "a name is"),
            (r#"{"endpoints":[{"name":"a","url":"http://x/h","secret_file":"k"},{"name":"a","url":"http://y/h","secret_file":"k"}]}"#, "named twice"),
            (r#"{"endpoints":[{"name":"a","url":"http://x/h","secret_file":"k","kinds":["case.opened"]}]}"#, "case.opened"),
            (r#"{"endpoints":[{"name":"a","url":"http://x/h","secret_file":"k"}],"retry":{"max_attempts":0}}"#, "max_attempts"),
            (r#"{"endpoints":[{"name":"a","url":"http://x/h","secret_file":"k","secret":"inline"}]}"#, "unknown field"),
        ] {
            let e = config(text).err().unwrap_or_else(|| panic!("{text} should be refused"));
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn a_short_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), "short\n").unwrap();
        let parsed: ConfigFile = serde_json::from_str(r#"{"endpoints":[{"name":"a","url":"http://x/h","secret_file":"k"}]}"#).unwrap();
        let e = WebhookConfig::from_parts(parsed, dir.path()).unwrap_err();
        assert!(e.contains("at least 16"), "{e}");
    }

    #[test]
    fn times_are_read_as_dates_in_macau_or_full_timestamps() {
        assert_eq!(parse_time("2026-11-01", "--since").unwrap().to_rfc3339(), "2026-10-31T16:00:00+00:00");
        assert_eq!(parse_time("2026-11-01T09:00:00Z", "--since").unwrap().to_rfc3339(), "2026-11-01T09:00:00+00:00");
        let e = parse_time("yesterday", "--since").unwrap_err().to_string();
        assert!(e.contains("--since \"yesterday\"") && e.contains("CARIMBO-E1002"), "{e}");
    }

    /// A sled store holding one case whose append wrote one `decision` message.
    fn store_with_a_decision() -> (tempfile::TempDir, Arc<dyn Store>) {
        use crate::store::{Append, CaseHead, OutboxMessage, SledStore};
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let now = Utc::now();
        let head = CaseHead {
            case_id: "c1".into(),
            version: 0,
            last_hash: String::new(),
            status: "open".into(),
            form_id: "leave".into(),
            form_version: "1".into(),
            form_hash: "f".repeat(64),
            workflow_id: "leave".into(),
            workflow_version: "1".into(),
            workflow_hash: "e".repeat(64),
            submitter: "p1".into(),
            parties: vec!["p1".into()],
            opened_at: now,
            updated_at: now,
            summary: json!({}),
        };
        store
            .append(Append {
                case_id: "c1".into(),
                expected_version: 0,
                events: vec![json!({"type": "submitted"})],
                head,
                inbox: vec![],
                idempotency_key: None,
                outcome: json!({}),
                outbox: vec![OutboxMessage { kind: "decision".into(), payload: json!({"step": "supervisor"}) }],
            })
            .unwrap();
        (dir, store)
    }

    fn config_of(endpoints: Vec<Endpoint>) -> Arc<WebhookConfig> {
        Arc::new(WebhookConfig { endpoints, retry: RetryPolicy::default(), timeout: std::time::Duration::from_secs(1) })
    }

    #[test]
    fn a_message_no_endpoint_takes_is_settled_without_a_request() {
        let (_dir, store) = store_with_a_decision();
        // Port 9 on loopback: a request would fail; none must be made.
        let only_completions = Endpoint::new("payroll", "http://127.0.0.1:9/h", b"0123456789abcdef", vec!["case.completed".into()]);
        let d = Dispatcher::new(store.clone(), config_of(vec![only_completions]));
        let report = d.run_once(Utc::now()).unwrap();
        assert_eq!((report.examined, report.attempts, report.settled), (1, 0, 1));
        let r = store.outbox_get("c1/1/0").unwrap().unwrap();
        assert!(r.settled && !r.dead);
        assert_eq!(deliveries_of(&r)["payroll"].state, DeliveryState::Skipped);
        assert!(store.outbox_pending(None, 10).unwrap().is_empty());
    }

    #[test]
    fn a_message_pending_only_for_an_endpoint_removed_from_the_file_is_settled() {
        let (_dir, store) = store_with_a_decision();
        // payroll already skipped it; archive, since removed, still had it pending.
        let gone: Deliveries = [
            ("archive".to_string(), EndpointDelivery { attempts: 2, ..EndpointDelivery::default() }),
            ("payroll".to_string(), EndpointDelivery { state: DeliveryState::Skipped, ..EndpointDelivery::default() }),
        ]
        .into();
        store.outbox_update("c1/1/0", &serde_json::to_value(&gone).unwrap(), false, false).unwrap();
        let none_wanted = Endpoint::new("payroll", "http://127.0.0.1:9/h", b"0123456789abcdef", vec!["case.withdrawn".into()]);
        let report = Dispatcher::new(store.clone(), config_of(vec![none_wanted])).run_once(Utc::now()).unwrap();
        assert_eq!(report.settled, 1);
        let r = store.outbox_get("c1/1/0").unwrap().unwrap();
        assert!(r.settled, "{r:?}");
        assert_eq!(deliveries_of(&r)["archive"].attempts, 2, "the old endpoint's history is kept");
    }

    #[test]
    fn a_failed_attempt_is_recorded_with_its_next_time_and_the_last_one_makes_a_dead_letter() {
        let (_dir, store) = store_with_a_decision();
        // Nothing listens on a port just released.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let down = Endpoint::new("payroll", &format!("http://127.0.0.1:{port}/h"), b"0123456789abcdef", vec![]);
        let config = Arc::new(WebhookConfig {
            endpoints: vec![down],
            retry: RetryPolicy { max_attempts: 2, first_delay_ms: 60_000, max_delay_ms: 60_000 },
            timeout: std::time::Duration::from_secs(1),
        });
        let d = Dispatcher::new(store.clone(), config);
        let t0 = Utc::now();
        assert_eq!(d.run_once(t0).unwrap().failed, 1);
        let e = deliveries_of(&store.outbox_get("c1/1/0").unwrap().unwrap())["payroll"].clone();
        assert_eq!((e.state, e.attempts), (DeliveryState::Pending, 1));
        let next = e.next_at.unwrap();
        assert!(next >= t0 + Duration::seconds(60) && next <= t0 + Duration::seconds(72), "a minute plus at most a fifth: {next}");
        assert!(e.last_error.unwrap().contains("no answer"));
        assert_eq!(d.run_once(t0 + Duration::seconds(30)).unwrap().attempts, 0, "not before its time");
        let last = d.run_once(next).unwrap();
        assert_eq!((last.attempts, last.dead_lettered), (1, 1));
        let r = store.outbox_get("c1/1/0").unwrap().unwrap();
        assert!(r.settled && r.dead);
        assert_eq!(store.outbox_dead(10).unwrap().len(), 1);
        assert_eq!(retry_dead(store.as_ref(), &["c1/1/0".into()]).unwrap(), 1);
        let again = store.outbox_get("c1/1/0").unwrap().unwrap();
        assert!(!again.settled && !again.dead);
        assert_eq!(deliveries_of(&again)["payroll"].attempts, 0, "a fresh round of attempts");
        assert!(matches!(retry_dead(store.as_ref(), &["c9/1/0".into()]), Err(OutboxError::UnknownMessage(_))));
    }
}
