//! The HTTP server: the JSON API under `/api/v1` (described at `/api/v1/openapi.json`) and the
//! server-rendered pages, over one `AppState`.
//!
//! `routes()` is the single list of routes, the API's and the pages' (`RouteKind`): the router,
//! the OpenAPI document (API routes only) and the route × role test are all built from it, so
//! they cannot drift apart. Limits live here too:
//! request body sizes, sign-in limits (per address, per account and address, per account for new addresses), per-account API rate limits,
//! security headers, and a graceful shutdown that lets acts in flight finish.

pub mod api;
pub mod archive_api;
pub mod auth;
pub mod body;
pub mod error;
pub mod notifications_api;
pub mod outbox_api;
pub mod pages;
pub mod sign_in_limits;
pub mod usage;

use crate::accounts::{AccountError, AccountFiles, Accounts, Session, Sessions};
use crate::cases::CaseService;
use crate::catalog::Catalog;
use crate::directory::Directory;
use crate::i18n::Lang;
use crate::signing::{ServiceSeal, SignatureVerifier};
use crate::store::{SledStore, Store};
use crate::usage::UsageFigures;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use error::ApiError;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower_http::set_header::SetResponseHeaderLayer;

/// Where the server finds its definitions and seeds, and keeps its data.
#[derive(Debug, Clone)]
pub struct Paths {
    pub data: PathBuf,
    pub forms: PathBuf,
    pub workflows: PathBuf,
    pub seeds: PathBuf,
    /// The key that encrypts the TOTP secrets in the accounts file (`serve --totp-key-file`);
    /// by default `DATA/keys/totp.key`.
    pub totp_key: PathBuf,
    /// The time-stamp authorities to ask, in order (`serve --tsa`); none: the demo TSA of the
    /// seeds, if there, else no time-stamps (`tsa::TimeStamping::choose`).
    pub tsa_urls: Vec<String>,
    /// How long one TSA may take (`serve --tsa-timeout-ms`).
    pub tsa_timeout: std::time::Duration,
    /// The PKCS#11 module of the HSM (`serve --hsm-module`, `CARIMBO_HSM_MODULE`, Debian's
    /// SoftHSM2 by default); absent on the machine: no `hsm` provider.
    pub hsm_module: PathBuf,
    /// Whether `qualified` needs a key on a device (`serve --device-rule`): by default enforced
    /// when the HSM module is there, relaxed for the demo when it is not.
    pub device_rule: crate::signing::DeviceRule,
    /// The token user's PIN file (`serve --hsm-pin-file`, mode 0600); default CARIMBO_HSM_PIN.
    pub hsm_pin_file: Option<PathBuf>,
}

impl Paths {
    /// The layout of a checkout: `forms/`, `workflows/`, `seeds/` under `root`, data in `data`.
    pub fn from_root(root: &Path, data: &Path) -> Paths {
        let totp_key = AccountFiles::in_data_dir(data).totp_key;
        Paths {
            data: data.to_path_buf(),
            forms: root.join("forms"),
            workflows: root.join("workflows"),
            seeds: root.join("seeds"),
            totp_key,
            tsa_urls: Vec::new(),
            tsa_timeout: crate::tsa::DEFAULT_TIMEOUT,
            hsm_module: crate::hsm::module_path(None),
            device_rule: crate::hsm::default_device_rule(&crate::hsm::module_path(None)),
            hsm_pin_file: None,
        }
    }

    /// Where the accounts keep their files: the accounts file and the audit log in the data
    /// directory, the TOTP key where `totp_key` says.
    pub fn account_files(&self) -> AccountFiles {
        AccountFiles { totp_key: self.totp_key.clone(), ..AccountFiles::in_data_dir(&self.data) }
    }
}

/// The password every demo account starts with (printed at start; change it in production).
pub const DEMO_PASSWORD: &str = "carimbo-demo-2026";

pub struct AppState {
    pub cases: Arc<CaseService>,
    pub accounts: Arc<Accounts>,
    pub sessions: Sessions,
    /// Rebuilt whenever the trust list changes; read through `verifier()`.
    verifier: std::sync::RwLock<Arc<SignatureVerifier>>,
    /// The trust list's signed history, kept in DATA/trust-list.json.
    pub trust: crate::trusted_list::KeptTrustList,
    pub seal: ServiceSeal,
    /// How each act's signature is time-stamped (JAdES B-T), or that it is not.
    pub stamping: crate::tsa::TimeStamping,
    pub paths: Paths,
    /// The address people use to reach the server (`serve --public-url`): when it is HTTPS, the
    /// cookies are `Secure` and every answer carries `Strict-Transport-Security`.
    pub public_url: PublicUrl,
    /// The webhooks this process delivers to (`carimbo serve --webhooks FILE`), if any.
    pub outbox: Option<outbox_api::OutboxHandle>,
    /// People's notification preferences (`DATA/notifications.json`).
    pub preferences: Arc<crate::notify::book::PreferenceBook>,
    /// The mail this process sends (`carimbo serve --smtp URL`), if any: without it,
    /// notifications are off.
    pub mail: Option<notifications_api::MailHandle>,
    /// The usage report, recomputed at most once a minute.
    pub usage: UsageFigures,
    /// SHA-256 (hex) of the token Prometheus sends to `/metrics` (`serve --metrics-token-file`).
    pub scrape_token: Option<String>,
    /// The record of delegations set and ended from the pages (`DATA/delegations.jsonl`),
    /// replayed over the seeded directory at start.
    pub delegations: crate::directory::delegation_log::DelegationLog,
    /// The long-term archive of closed cases' B-LTA bundles (`DATA/evidence/`) and its job.
    pub archive: crate::archive_job::ArchiveJob,
    /// Signing on the HSM (`hsm`), when the module loads and a token PIN is given; why not, else.
    pub hsm: Option<crate::hsm::HsmProvider>,
    pub hsm_off_because: Option<String>,
    /// The signing authorizations given with a second factor and not yet spent.
    pub activations: crate::cases::acts::Activations,
    /// Wrong passwords per (account, address) and per account (`sign_in_limits`).
    sign_in_limits: sign_in_limits::SignInLimits,
    api_by_account: DefaultKeyedRateLimiter<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the definitions have {0} problem(s); run `carimbo check forms workflows` [CARIMBO-E0801]")]
    Definitions(usize),
    #[error("{0} [CARIMBO-E0802]")]
    Seeds(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Cases(#[from] crate::cases::CaseError),
    #[error(transparent)]
    Accounts(#[from] AccountError),
    #[error("{0} [CARIMBO-E0720]")]
    PublicUrl(String),
}

/// The address people type to reach the server, as `serve --public-url` gives it: `http://` or
/// `https://`, a host (and port), nothing else. Only its scheme changes what the server does
/// (behind a TLS-terminating proxy the server itself still speaks plain HTTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    url: String,
    https: bool,
}

impl Default for PublicUrl {
    fn default() -> Self {
        PublicUrl::for_addr("127.0.0.1:8080".parse().expect("a socket address"))
    }
}

impl PublicUrl {
    /// `http://ADDR`: what the server is reached at when no public address is given.
    pub fn for_addr(addr: SocketAddr) -> PublicUrl {
        PublicUrl { url: format!("http://{addr}"), https: false }
    }

    /// Parses `--public-url`; a path, query, fragment or user name in it is refused, because the
    /// server serves from its root and would set cookies and links for the wrong place.
    pub fn parse(text: &str) -> Result<PublicUrl, StartError> {
        let bad = |why: &str| StartError::PublicUrl(format!("--public-url {text:?}: {why}"));
        let lower = text.to_ascii_lowercase();
        let (https, rest) = if lower.starts_with("https://") {
            (true, &text[8..])
        } else if lower.starts_with("http://") {
            (false, &text[7..])
        } else {
            return Err(bad("it must start with https:// (or http://), e.g. https://forms.example.org"));
        };
        let host = rest.strip_suffix('/').unwrap_or(rest);
        if host.is_empty() {
            return Err(bad("it names no host"));
        }
        if let Some(c) = host.chars().find(|c| matches!(c, '/' | '?' | '#' | '@' | '\\') || c.is_whitespace() || c.is_control()) {
            return Err(bad(&format!("only a scheme and a host (with an optional port) are allowed; {c:?} is not (the server serves from its root)")));
        }
        let (name, port) = match host.strip_prefix('[') {
            // An IPv6 address, bracketed as RFC 3986 §3.2.2 writes it.
            Some(v6) => match v6.split_once(']') {
                Some((addr, "")) => (addr, None),
                Some((addr, tail)) => (addr, Some(tail.strip_prefix(':').unwrap_or(tail))),
                None => return Err(bad("an IPv6 address needs its closing ]")),
            },
            None => match host.split_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (host, None),
            },
        };
        if name.is_empty() {
            return Err(bad("it names no host"));
        }
        if let Some(p) = port
            && !p.parse::<u16>().is_ok_and(|p| p > 0)
        {
            return Err(bad(&format!("the port {p:?} is not a number from 1 to 65535")));
        }
        Ok(PublicUrl { url: format!("{}://{host}", if https { "https" } else { "http" }), https })
    }

    pub fn is_https(&self) -> bool {
        self.https
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// Reads a secret key file, or creates it with 32 random bytes: the file 0600, its folder 0700,
/// so only the service's own user reads it. Several instances on one PostgreSQL database must
/// share the same file (copy it into each data directory).
pub fn secret_key_file(path: &std::path::Path) -> Result<Vec<u8>, StartError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let fail = |e: std::io::Error| StartError::Seeds(format!("key file {}: {e}", path.display()));
    match std::fs::read(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        Err(_) => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(fail)?;
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StartError::Seeds(format!("no OS randomness for {}: {e}", path.display())))?;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(fail)?;
    file.write_all(&bytes).and_then(|_| file.sync_all()).map_err(fail)?;
    Ok(bytes.to_vec())
}

/// The verifier of acts: the trust list's history, the CRL folder and the service seal, which
/// the history must name as a `service_seal` member (else the server does not start).
pub fn build_verifier(history: &crate::pki::history::TrustHistory, paths: &Paths) -> Result<SignatureVerifier, String> {
    let pki = paths.seeds.join("pki");
    let trust = history.trust_list()?;
    let mut crls = crate::cli::pki_files::load_crl_dir(&pki.join("crl")).map_err(|e| e.to_string())?;
    // CRLs the server's CA issued since (`carimbo hsm revoke`), newest first as always.
    crls.merge(crate::cli::pki_files::load_crl_dir(&paths.data.join("crl")).map_err(|e| e.to_string())?);
    let service = crate::cli::pki_files::load_pem_certificates(&pki.join("service/service.pem")).map_err(|e| e.to_string())?;
    if !history.members().iter().any(|m| m.service_type == crate::pki::history::ServiceType::ServiceSeal && m.certificate == service[0]) {
        return Err("CARIMBO-E1240: the trust list names no service seal with the certificate seeds/pki/service/service.pem: add it (`carimbo trust sign` an add_member of type service_seal) before starting".into());
    }
    let validator = crate::pki::CertificateValidator::new(trust, crls, crate::pki::ValidationPolicy::document_signing());
    Ok(SignatureVerifier::new(validator).with_service_seal(&service[0]).with_device_rule(paths.device_rule))
}

impl AppState {
    /// The verifier of signatures, for the trust list in force.
    /// The services an act is made with, for one request (`cases::acts`).
    pub fn acts(&self) -> crate::cases::acts::Acts<'_> {
        crate::cases::acts::Acts {
            cases: &self.cases,
            accounts: &self.accounts,
            seal: &self.seal,
            stamping: &self.stamping,
            verifier: self.verifier(),
            hsm: self.hsm.as_ref(),
            activations: &self.activations,
        }
    }

    pub fn verifier(&self) -> Arc<SignatureVerifier> {
        self.verifier.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Appends an entry signed by the trust-list operator; from then on signatures are judged
    /// with the extended list. A refused entry changes nothing.
    pub fn append_trust_entry(
        &self,
        entry: crate::pki::history::TrustEntry,
        now: DateTime<Utc>,
    ) -> Result<Arc<crate::pki::history::TrustHistory>, crate::trusted_list::KeptListError> {
        let next = self.trust.append(entry, now)?;
        match build_verifier(&next, &self.paths) {
            Ok(v) => *self.verifier.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(v),
            // Kept, but not usable: say so loudly and keep judging with the previous list.
            Err(e) => eprintln!("trust list: entry {} was kept, but the list cannot be used to verify: {e}", next.entries().len()),
        }
        Ok(next)
    }

    /// Opens the sled store in `paths.data`, loads the definitions, the directory, the trust
    /// list and the service seal, and creates the demo accounts on first start.
    pub fn open(paths: Paths) -> Result<AppState, StartError> {
        std::fs::create_dir_all(&paths.data).map_err(|e| StartError::Seeds(format!("cannot create {}: {e}", paths.data.display())))?;
        let store: Arc<dyn Store> = Arc::new(SledStore::open(paths.data.join("store"))?);
        AppState::with_store(paths, store)
    }

    pub fn with_store(paths: Paths, store: Arc<dyn Store>) -> Result<AppState, StartError> {
        let directory = Directory::load(&paths.seeds.join("directory/directory.json")).map_err(|e| StartError::Seeds(e.to_string()))?;
        // Delegations people set for themselves, and their ends, over the seeded ones.
        let delegations = crate::directory::delegation_log::DelegationLog::new(&paths.data.join("delegations.jsonl"));
        let (directory, skipped) = crate::directory::delegation_log::replay(directory, &delegations.entries().map_err(|e| StartError::Seeds(e.to_string()))?);
        for s in skipped {
            eprintln!("delegation record: skipped {s}");
        }
        let report = Catalog::load_paths_with(&[paths.forms.clone(), paths.workflows.clone()], Some(&directory));
        if !report.problems.is_empty() {
            for p in &report.problems {
                eprintln!("{p}");
            }
            return Err(StartError::Definitions(report.problems.len()));
        }
        let pki = paths.seeds.join("pki");
        let trust = crate::trusted_list::KeptTrustList::open(&paths.data, &paths.seeds.join("trust").join(crate::pki::trust::TRUST_LIST_FILE), Utc::now())
            .map_err(|e| StartError::Seeds(e.to_string()))?;
        let verifier = build_verifier(&trust.current(), &paths).map_err(StartError::Seeds)?;
        let read = |p: PathBuf| std::fs::read(&p).map_err(|e| StartError::Seeds(format!("cannot read {}: {e}", p.display())));
        let seal = ServiceSeal::from_pem(&read(pki.join("service/service.key.pem"))?, &read(pki.join("service/service.pem"))?)
            .map_err(|e| StartError::Seeds(e.to_string()))?;
        let stamping = crate::tsa::TimeStamping::choose(&paths.tsa_urls, paths.tsa_timeout, &pki, &paths.data).map_err(|e| StartError::Seeds(e.to_string()))?;
        stamping.self_test(&verifier).map_err(|e| StartError::Seeds(e.to_string()))?;
        let accounts = Accounts::open(&paths.account_files())?;
        let people: Vec<String> = directory.people().map(|p| p.id.clone()).collect();
        accounts.ensure(&people, DEMO_PASSWORD)?;
        let key = secret_key_file(&paths.data.join("keys/commitment.key"))?;
        let key = crate::cases::CommitmentKey::from_bytes(&key).ok_or_else(|| StartError::Seeds("keys/commitment.key holds fewer than 32 bytes".into()))?;
        let cases = Arc::new(CaseService::new(store, report.catalog, directory)?.with_commitment_key(key));
        let preferences = crate::notify::book::PreferenceBook::open(&paths.data.join("notifications.json")).map_err(|e| StartError::Seeds(e.to_string()))?;
        // What another server on the same database publishes is served here too.
        CaseService::watch_publications(&cases).map_err(|e| StartError::Seeds(format!("cannot start the thread watching publications: {e}")))?;
        let archive = crate::archive_job::ArchiveJob::in_data_dir(&paths.data);
        let (hsm, hsm_off_because) = match crate::hsm::HsmProvider::start(&paths.hsm_module, paths.hsm_pin_file.as_deref(), &paths.data) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(AppState {
            hsm,
            hsm_off_because,
            activations: Default::default(),
            cases,
            accounts: Arc::new(accounts),
            sessions: Sessions::default(),
            verifier: std::sync::RwLock::new(Arc::new(verifier)),
            trust,
            seal,
            stamping,
            paths,
            public_url: PublicUrl::default(),
            outbox: None,
            preferences: Arc::new(preferences),
            mail: None,
            usage: UsageFigures::default(),
            scrape_token: None,
            archive,
            delegations,
            sign_in_limits: sign_in_limits::SignInLimits::default(),
            // Generous enough for a busy approver's batch, low enough to stop a runaway script.
            api_by_account: RateLimiter::keyed(
                Quota::per_second(NonZeroU32::new(200).expect("non-zero")).allow_burst(NonZeroU32::new(1000).expect("non-zero")),
            ),
        })
    }

    /// Starts delivering the outbox to these webhooks on a thread of its own, a pass every
    /// `interval`; setting the returned flag stops it after the pass in progress.
    pub fn start_webhooks(
        &mut self,
        config: crate::outbox::WebhookConfig,
        interval: std::time::Duration,
    ) -> (std::thread::JoinHandle<()>, Arc<std::sync::atomic::AtomicBool>) {
        let config = Arc::new(config);
        let dispatcher = crate::outbox::Dispatcher::new(self.cases.store().clone(), config.clone());
        self.outbox = Some(outbox_api::OutboxHandle { config, status: dispatcher.status.clone() });
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        (dispatcher.spawn(interval, stop.clone()), stop)
    }

    /// Turns notifications on: from now on every append writes the notifications its events
    /// cause, and a thread delivers them by mail, a pass every `interval`.
    pub fn start_mail(
        &mut self,
        settings: crate::notify::mail::MailSettings,
        interval: std::time::Duration,
    ) -> Result<(std::thread::JoinHandle<()>, Arc<std::sync::atomic::AtomicBool>), crate::notify::mail::MailError> {
        let (server, from) = (settings.target.describe(), settings.from.to_string());
        let dispatcher = crate::notify::mail::MailDispatcher::new(self.cases.clone(), self.preferences.clone(), settings)?
            .with_delegation_record(&self.paths.data.join("delegations.jsonl"), &self.paths.data.join("notifications-delegations.json"))?;
        self.mail = Some(notifications_api::MailHandle { server, from, status: dispatcher.status.clone() });
        self.cases.set_notifications(true);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        Ok((dispatcher.spawn(interval, stop.clone()), stop))
    }

    /// Runs the reminders and escalations of every open case (`CaseService::tick_all`) every
    /// `interval` on a thread of its own, until the returned flag is set.
    pub fn start_deadlines(&self, interval: std::time::Duration) -> (std::thread::JoinHandle<()>, Arc<std::sync::atomic::AtomicBool>) {
        use std::sync::atomic::Ordering;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cases, flag) = (self.cases.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("carimbo-deadlines".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match cases.tick_all(Utc::now()) {
                        Ok(r) if r.failed > 0 => {
                            eprintln!("deadlines: {} of {} open cases could not be checked: {}", r.failed, r.open_cases, r.failures.join("; "))
                        }
                        Ok(_) => {}
                        Err(e) => eprintln!("deadlines: the round failed: {e}"),
                    }
                    crate::outbox::sleep_unless_stopped(interval, &flag);
                }
            })
            .expect("a thread for deadlines");
        (thread, stop)
    }

    /// Lets Prometheus read `/metrics` with this bearer token (kept only as its hash). It must be
    /// long enough not to be guessed: at least 32 characters (`openssl rand -hex 32` gives 64).
    pub fn set_scrape_token(&mut self, token: &str) -> Result<(), StartError> {
        if token.trim().len() < 32 {
            return Err(StartError::Seeds("the metrics scrape token must have at least 32 characters (e.g. `openssl rand -hex 32`)".into()));
        }
        self.scrape_token = Some(usage::scrape_token_hash(token));
        Ok(())
    }

    /// Checks a password and opens a session. Wrong passwords are limited per account and
    /// address, per address and per account as `sign_in_limits` explains, so a stranger's
    /// guesses do not lock the owner out.
    pub async fn login(&self, person: &str, password: &str, peer: SocketAddr, lang: Lang) -> Result<(String, Session), ApiError> {
        let from = sign_in_limits::ClientAddress::of(peer.ip());
        let locked = self.sign_in_limits.check(person, from, std::time::Instant::now());
        if let Err(lock) = locked {
            let wait = lock.retry_after().as_secs().max(1);
            let detail = match lock {
                sign_in_limits::Locked::FromThisAddress { .. } => format!("too many wrong passwords for this account from your address; wait {wait} s"),
                sign_in_limits::Locked::ThisAddress { .. } => format!("too many wrong passwords from your address; wait {wait} s"),
                sign_in_limits::Locked::FromNewAddresses { .. } => {
                    format!("too many wrong passwords for this account from many addresses; sign in from an address you used before, or wait {wait} s")
                }
            };
            let mut e = ApiError::too_many(detail).lang(lang);
            e.retry_after = Some(wait);
            return Err(e);
        }
        let accounts = self.accounts.clone();
        let (account, password) = (person.to_string(), password.to_string());
        let checked = tokio::task::spawn_blocking(move || accounts.verify_password(&account, &password)).await;
        match checked {
            Ok(Ok(_)) => {
                self.sign_in_limits.succeeded(person, from, std::time::Instant::now());
                Ok(self.sessions.open(person, Utc::now(), api::session_lifetime()))
            }
            Ok(Err(e)) => {
                if matches!(e, AccountError::BadCredentials) {
                    self.sign_in_limits.failed(person, from, std::time::Instant::now());
                }
                Err(ApiError::from(e).lang(lang))
            }
            Err(e) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E0799", e.to_string())),
        }
    }
}

/// Whether a route answers JSON under the API's rules (problems, rate limit, OpenAPI) or draws a
/// page (HTML; a visitor without a session is sent to `/login`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Api,
    Page,
}

/// One route: method, path, handler, who may call it, and what it is for (the OpenAPI
/// document's summary for an API route).
pub struct RouteSpec {
    pub kind: RouteKind,
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    /// Who may call it: `public`, `any` (signed in), or one or more roles joined by `, `.
    pub access: &'static str,
    /// Query parameters, with what each means (for the OpenAPI document).
    pub query: &'static [(&'static str, &'static str)],
    /// The JSON request body, when the route reads one: registers the body type's schema (and
    /// the schemas it refers to) and returns its name. Generated from the same Rust type the
    /// handler parses (utoipa's `ToSchema`), so the document cannot drift from the handler.
    pub body: Option<BodySchema>,
    /// The JSON answer's type, where the handler answers one typed struct (same mechanism).
    pub returns: Option<BodySchema>,
    pub handler: fn() -> MethodRouter<Arc<AppState>>,
}

/// Writes a request body's schemas into the document's components; returns the body's name.
pub type BodySchema = fn(&mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) -> String;

/// The `BodySchema` of type `T`.
pub fn body_schema<T: utoipa::ToSchema>(out: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) -> String {
    T::schemas(out);
    let name = T::name().into_owned();
    out.push((name.clone(), T::schema()));
    name
}

macro_rules! route {
    (@schema) => { None };
    (@schema $t:ty) => { Some(body_schema::<$t>) };
    ($m:ident, $verb:ident, $path:literal, $access:literal, $summary:literal, $h:path $(, body = $body:ty)? $(, returns = $ret:ty)? $(, query = [$(($q:literal, $qd:literal)),* $(,)?])?) => {
        RouteSpec {
            kind: RouteKind::Api, method: Method::$m, path: $path, summary: $summary, access: $access,
            query: &[$($(($q, $qd)),*)?], body: route!(@schema $($body)?), returns: route!(@schema $($ret)?), handler: || $verb($h),
        }
    };
}

/// Every route: the API's, then the pages' (`pages::routes`). Paths use axum's `{param}`
/// syntax, which is also OpenAPI's.
pub fn routes() -> Vec<RouteSpec> {
    let mut all = api_routes();
    all.extend(pages::routes());
    all
}

impl RouteSpec {
    pub fn is_api(&self) -> bool {
        self.kind == RouteKind::Api
    }
}

fn api_routes() -> Vec<RouteSpec> {
    vec![
        route!(
            POST,
            post,
            "/api/v1/session",
            "public",
            "Sign in with a person id and password; returns a bearer token and sets the session cookie",
            api::login,
            body = api::LoginRequest,
            returns = api::LoginResponse
        ),
        route!(DELETE, delete, "/api/v1/session", "any", "Sign out", api::logout),
        route!(GET, get, "/api/v1/me", "any", "Who I am, my roles, whether my second factor is enrolled", api::me),
        route!(GET, get, "/api/v1/me/certificate", "any", "My certificate chain, for the x5c header of signatures made in the page", api::my_certificate),
        route!(
            POST,
            post,
            "/api/v1/me/totp",
            "any",
            "Start enrolling a TOTP second factor (secret, otpauth URL, QR code); replacing an enrolled one needs `current_code`, a code of it",
            api::totp_begin,
            body = api::TotpBegin
        ),
        route!(POST, post, "/api/v1/me/totp/confirm", "any", "Confirm the second factor with a first code", api::totp_confirm, body = api::TotpConfirm),
        route!(
            GET,
            get,
            "/api/v1/me/notifications",
            "any",
            "My notification preferences (which kinds, immediately or a daily digest, quiet hours), whether this server sends mail, and my address in the directory",
            notifications_api::mine
        ),
        route!(
            POST,
            post,
            "/api/v1/me/notifications",
            "any",
            "Set my notification preferences; every wrong value is named and nothing is kept",
            notifications_api::set_mine,
            body = crate::notify::book::PreferencesBody
        ),
        route!(GET, get, "/api/v1/forms", "any", "The forms, with titles in the requested language", api::list_forms),
        route!(GET, get, "/api/v1/forms/{id}", "any", "One form with its schema, labels, rules and layout", api::get_form),
        route!(
            POST,
            post,
            "/api/v1/forms/{id}/validate",
            "any",
            "Validate data without submitting: errors per field, or computed values",
            api::validate_form,
            body = api::ValidateRequest
        ),
        route!(
            POST,
            post,
            "/api/v1/signing-payload",
            "any",
            "The exact payload (RFC 8785 JSON) to sign for a submission, an act or a resubmission",
            api::signing_payload,
            body = api::PayloadRequest,
            returns = api::PayloadResponse
        ),
        route!(POST, post, "/api/v1/cases", "staff", "Submit a form, signed as its workflow demands", api::submit, body = api::SubmitRequest),
        route!(
            GET,
            get,
            "/api/v1/cases",
            "any",
            "My cases (as submitter, subject, approver) with their progress, newest first; `next` is the cursor of the following page",
            api::my_cases,
            query = [("limit", "Cases per page, 1 to 500 (default 50)"), ("after", "The `next` of the previous page")]
        ),
        route!(GET, get, "/api/v1/cases/{id}", "any", "One case I am party to, restricted fields hidden by role", api::get_case),
        route!(
            POST,
            post,
            "/api/v1/cases/{id}/acts",
            "any",
            "Act on an open step: approve, reject, return or sign, with the signature it demands",
            api::act,
            body = api::ActBody
        ),
        route!(POST, post, "/api/v1/cases/{id}/withdraw", "any", "Withdraw my case while no final decision exists", api::withdraw, body = api::WithdrawBody),
        route!(POST, post, "/api/v1/cases/{id}/resubmit", "any", "Resubmit a corrected version of my returned case", api::resubmit, body = api::ResubmitBody),
        route!(
            GET,
            get,
            "/api/v1/cases/{id}/evidence",
            "any",
            "The case's evidence bundle: definitions, events, signatures, certificates and CRLs in one JSON file that `carimbo verify` checks offline (parties to the case and auditors; with restricted fields, only the roles the form names)",
            api::evidence
        ),
        route!(
            POST,
            post,
            "/api/v1/acts/batch",
            "approver",
            "Act on many steps at once; each item has its own signature and result",
            api::batch,
            body = api::BatchRequest
        ),
        route!(
            GET,
            get,
            "/api/v1/inbox",
            "any",
            "My open steps (and those I hold under delegation), oldest first; `next` is the cursor of the following page",
            api::inbox,
            query = [("limit", "Entries per page, 1 to 500 (default 50)"), ("after", "The `next` of the previous page")]
        ),
        route!(
            GET,
            get,
            "/api/v1/admin/export",
            "admin",
            "Decisions and finished cases of a period as CSV or JSON, for payroll and archives",
            outbox_api::export_messages,
            query = [
                ("since", "First moment included: a date (midnight in Macau) or an RFC 3339 time"),
                ("until", "First moment excluded (default: now)"),
                ("format", "csv or json (default json)"),
                ("kind", "Comma-separated kinds: decision, case.completed, case.rejected, case.withdrawn")
            ]
        ),
        route!(GET, get, "/api/v1/admin/directory", "admin", "The staff directory", api::directory),
        route!(POST, post, "/api/v1/admin/delegations", "admin", "Add or replace a delegation", api::add_delegation, body = crate::directory::Delegation),
        route!(
            POST,
            post,
            "/api/v1/admin/accounts/{person}/totp/reset",
            "admin",
            "Remove a person's TOTP second factor (a lost phone), so they can enrol a new one; recorded in the audit log (DATA/audit.jsonl)",
            api::reset_second_factor
        ),
        route!(
            GET,
            get,
            "/api/v1/admin/trust-list",
            "admin",
            "The trust list: its whole signed history of changes (members, accreditations, policies), as kept in DATA/trust-list.json",
            api::trust_list
        ),
        route!(
            GET,
            get,
            "/api/v1/admin/trust-list/status",
            "admin",
            "Every member of the trust list and its status (accreditation and level) at a time",
            api::trust_list_status,
            query = [("at", "The time asked about, RFC 3339 UTC with Z (default: now)")]
        ),
        route!(
            POST,
            post,
            "/api/v1/admin/trust-list/entries",
            "admin",
            "Append one change to the trust list, signed by the trust-list operator (`carimbo trust sign`); refused whole with a clear problem if it is unsigned, by another signer, out of order or names an unknown or repeated member",
            api::append_trust_entry,
            body = crate::pki::history::TrustEntry
        ),
        route!(
            POST,
            post,
            "/api/v1/admin/definitions",
            "admin",
            "Publish form/workflow definitions: checked as `carimbo check` does (and each version new and higher than the one served), then stored and recorded as a publication, served from then on by every server on the store; nothing changes when there is any problem, and an identical upload publishes nothing",
            api::upload_definitions,
            body = api::DefinitionUpload
        ),
        route!(
            GET,
            get,
            "/api/v1/admin/publications",
            "admin, auditor",
            "Every publication of definitions: who, when, each definition's id, version and content hash, and what changed from the version before",
            api::publications
        ),
        route!(
            GET,
            get,
            "/api/v1/admin/evidence-archive",
            "admin",
            "The long-term archive of closed cases (B-LTA bundles kept in DATA/evidence/): where, and the last round of the job that archives and re-stamps them",
            archive_api::status
        ),
        route!(
            POST,
            post,
            "/api/v1/admin/evidence-archive",
            "admin",
            "Run the archive job now: archive closed cases not yet kept, and re-stamp kept bundles whose last archive time-stamp's TSA certificate expires within the margin",
            archive_api::run,
            body = archive_api::RunRequest,
            returns = crate::archive_job::ArchiveRound
        ),
        route!(
            GET,
            get,
            "/api/v1/admin/outbox",
            "admin",
            "The outbox: configured webhooks, the dispatcher's state, how many messages wait, and the dead letters",
            outbox_api::status
        ),
        route!(
            POST,
            post,
            "/api/v1/admin/outbox/retry",
            "admin",
            "Send dead letters again (by id): their failed endpoints get a fresh round of attempts",
            outbox_api::retry,
            body = outbox_api::RetryRequest
        ),
        route!(
            POST,
            post,
            "/api/v1/definitions/check",
            "author",
            "Check definitions without applying them: every problem with file and JSON pointer",
            api::check_definitions,
            body = api::DefinitionUpload
        ),
        route!(
            GET,
            get,
            "/api/v1/usage",
            "admin, auditor",
            "Usage figures per form, submitter's department and month of submission (Macau time): submitted, completed, rejected, returned, withdrawn, in progress, past deadline, nearest-rank p50/p90 time to completion, signatures by level; with totals and per-month figures. Recomputed at most once a minute.",
            usage::report,
            query = [
                ("from", "First month shown, YYYY-MM (inclusive)"),
                ("to", "Last month shown, YYYY-MM (inclusive)"),
                ("form", "Only this form id"),
                ("department", "Only this department id (`(none)`: submitters in no department)"),
            ]
        ),
        route!(
            GET,
            get,
            "/metrics",
            "admin",
            "The usage figures for Prometheus (OpenMetrics text format); an administrator's token or session, or the scrape token of `carimbo serve --metrics-token-file` as bearer token",
            usage::metrics
        ),
        route!(GET, get, "/api/v1/openapi.json", "public", "This document", openapi),
    ]
}

/// The OpenAPI 3.1 document, built from the API routes of `routes()` (pages are HTML, not API).
pub fn openapi_document() -> Value {
    let mut paths = serde_json::Map::new();
    let mut schemas = Vec::new();
    for r in api_routes() {
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .chain(
                r.query.iter().map(|(name, what)| json!({"name": name, "in": "query", "required": false, "description": what, "schema": {"type": "string"}})),
            )
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "x-carimbo-access": r.access,
            "parameters": params,
            "responses": {
                "200": {"description": "OK"},
                "default": {"description": "A problem (RFC 9457) with a stable code", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            }
        });
        if r.access != "public" {
            op["security"] = json!([{"bearer": []}, {"cookie": []}]);
        }
        if let Some(answer) = r.returns {
            let name = answer(&mut schemas);
            op["responses"]["200"]["content"] = json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}});
        }
        if let Some(body) = r.body {
            let name = body(&mut schemas);
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}});
        }
        entry[r.method.as_str().to_ascii_lowercase()] = op;
    }
    let mut components = serde_json::Map::new();
    components.insert(
        "Problem".into(),
        json!({"type": "object", "required": ["type", "title", "status", "code"], "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
        "code": {"type": "string", "pattern": "^CARIMBO-E[0-9]{4}$"},
        "messages": {"type": "object", "properties": {"zh": {"type": "string"}, "pt": {"type": "string"}, "en": {"type": "string"}}},
        "errors": {"type": "array"}, "report": {"type": "object"}}}),
    );
    for (name, schema) in schemas {
        components.insert(name, serde_json::to_value(schema).unwrap_or_default());
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "carimbo", "version": env!("CARGO_PKG_VERSION"), "description": "Electronic forms and e-signature workflows for personnel procedures"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": auth::SESSION_COOKIE}
            },
            "schemas": components
        }
    })
}

async fn openapi() -> Json<Value> {
    Json(openapi_document())
}

/// Refuses API calls beyond an account's rate (identified by its bearer token or its session
/// cookie, whichever the caller authenticates with; unauthenticated calls are refused later by
/// the handler anyway).
async fn api_rate_limit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bearer = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let token = bearer.or_else(|| auth::cookie(&parts, auth::SESSION_COOKIE));
    if let Some(person) = token.and_then(|t| state.sessions.get(t, Utc::now())).map(|s| s.person)
        && state.api_by_account.check_key(&person).is_err()
    {
        return ApiError::too_many("too many requests from this account; slow down").lang(auth::lang_of(&parts)).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Bodies are small: a form is well under 256 KiB; a batch of signed acts under 4 MiB.
const BODY_LIMIT: usize = 512 * 1024;
const BATCH_BODY_LIMIT: usize = 4 * 1024 * 1024;

fn body_limit(path: &str) -> usize {
    if path == "/api/v1/acts/batch" { BATCH_BODY_LIMIT } else { BODY_LIMIT }
}

/// Every error under `/api` is a problem (RFC 9457). axum's own rejections (a body too large,
/// malformed JSON, a wrong content type or method) are plain text, so they are turned into
/// problems here, in one place. A body whose declared length is over the limit is refused
/// before it is read: a client that sent `Expect: 100-continue` (curl does for large bodies)
/// gets the answer without uploading anything, and the connection is closed rather than left
/// with an unread body in it.
async fn api_problems(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let lang = auth::lang_of(&parts);
    let limit = body_limit(parts.uri.path());
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit, lang);
    }
    // The whole (bounded) body is read before the handler runs: a handler that refuses early
    // (no session, no CSRF token) then leaves no unread body behind, and hyper can keep the
    // connection alive instead of dropping it under a client that was told nothing.
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => axum::body::Body::from(bytes),
        Err(e) if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) => return too_large(limit, lang),
        Err(e) => return ApiError::bad_request(format!("the request body could not be read: {e}")).lang(lang).into_response(),
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    let status = response.status();
    let is_problem = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(limit, lang);
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    // The rejection's own text says what was wrong (e.g. "missing field `person`"); it is short.
    let text = axum::body::to_bytes(response.into_body(), 4096).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let code = if status.is_server_error() { "CARIMBO-E0799" } else { "CARIMBO-E0704" };
    let mut problem = ApiError::new(status, code, if text.is_empty() { status.to_string() } else { text }).lang(lang).into_response();
    if let Some(allow) = allow {
        problem.headers_mut().insert(header::ALLOW, allow);
    }
    problem
}

fn too_large(limit: usize, lang: Lang) -> Response {
    let mut r = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "CARIMBO-E0707", format!("the request body is larger than {} KiB", limit / 1024))
        .lang(lang)
        .into_response();
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

pub fn router(state: Arc<AppState>) -> Router {
    let mut api = Router::new();
    for r in api_routes() {
        let mut h = (r.handler)();
        if body_limit(r.path) != BODY_LIMIT {
            h = h.layer(DefaultBodyLimit::max(body_limit(r.path)));
        }
        api = api.route(r.path, h);
    }
    let api = api.fallback(api::not_found).layer(middleware::from_fn_with_state(state.clone(), api_rate_limit)).layer(middleware::from_fn(api_problems));
    let https = state.public_url.is_https();
    let app = Router::new()
        .merge(api)
        .merge(pages::router(pages::routes()))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(no_store))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
            ),
        ));
    // HSTS (RFC 6797) only when people reach the server over HTTPS: sent over plain HTTP it is
    // ignored, and a browser that obeyed it would never reach an HTTP-only server again.
    let app = if https { app.layer(SetResponseHeaderLayer::overriding(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS))) } else { app };
    app.with_state(state)
}

/// Answers that may be cached: the compiled-in style sheet and scripts, and the API description.
/// Nothing in them is anyone's.
fn cacheable(path: &str) -> bool {
    path.starts_with("/static/") || path == "/api/v1/openapi.json"
}

/// `Cache-Control: no-store` on every other answer (RFC 9111 §5.2.2.5): pages, cases, errors
/// and redirects may all carry personal data, and a shared or back-button cache must keep none of
/// it. Set here for every route at once, so a new page cannot forget it.
async fn no_store(req: Request, next: Next) -> Response {
    let keep = cacheable(req.uri().path());
    let mut response = next.run(req).await;
    if !keep {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A year, the value browsers' preload lists ask for; subdomains are left to their own servers.
pub const HSTS: &str = "max-age=31536000";

impl AppState {
    /// True when the cookies must be `Secure` (the public address is HTTPS).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.is_https()
    }
}

/// Serves until Ctrl-C or SIGTERM; requests in flight (and their durable appends) finish first.
pub async fn serve(state: Arc<AppState>, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(state, listener, shutdown_signal()).await
}

pub async fn serve_on(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
