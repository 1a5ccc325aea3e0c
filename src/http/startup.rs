//! The server's start-up: where it finds its files (`Paths`), the state every handler shares
//! (`AppState`: directory, catalog, trust list and CRLs, service seal, accounts and sessions,
//! time-stamping, usage figures, threads), and serving it until Ctrl-C or SIGTERM with a
//! graceful shutdown that lets acts in flight finish.

use super::error::ApiError;
use super::routes::router;
use super::{api, notifications_api, outbox_api, sign_in_limits, usage};
use crate::accounts::{AccountError, AccountFiles, Accounts, Session, Sessions};
use crate::cases::CaseService;
use crate::catalog::Catalog;
use crate::directory::Directory;
use crate::i18n::Lang;
use crate::signing::{ServiceSeal, SignatureVerifier};
use crate::store::{SledStore, Store};
use crate::usage::UsageFigures;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the server finds its definitions and seeds, and keeps its data.
/// API requests a second one account may make by default: generous enough for a busy
/// approver's batch, low enough to stop a runaway script.
pub const DEFAULT_API_RATE_PER_ACCOUNT: u32 = 200;

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
    /// The CSC v2 service of the `remote` provider (`serve --csc-url`); none: remote signing off.
    pub csc_url: Option<String>,
    /// Its OAuth 2.0 client id and secret (`serve --csc-credentials-file`, mode 0600); default
    /// CARIMBO_CSC_CLIENT_ID and CARIMBO_CSC_CLIENT_SECRET.
    pub csc_credentials_file: Option<PathBuf>,
    /// API requests a second per account (`serve --api-rate-per-account`), after a burst of five
    /// times as many.
    pub api_rate_per_account: u32,
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
            csc_url: None,
            csc_credentials_file: None,
            api_rate_per_account: DEFAULT_API_RATE_PER_ACCOUNT,
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
    /// Signing at a CSC v2 service (`remote`), when `--csc-url` is given and the service
    /// answers; why not, else.
    pub remote: Option<crate::csc::remote::RemoteProvider>,
    pub remote_off_because: Option<String>,
    /// The signing authorizations given with a second factor and not yet spent.
    pub activations: crate::cases::acts::Activations,
    /// Wrong passwords per (account, address) and per account (`sign_in_limits`).
    sign_in_limits: sign_in_limits::SignInLimits,
    pub(super) api_by_account: DefaultKeyedRateLimiter<String>,
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
            remote: self.remote.as_ref(),
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
        let account_quota = {
            let rate = NonZeroU32::new(paths.api_rate_per_account).unwrap_or(NonZeroU32::MIN);
            Quota::per_second(rate).allow_burst(rate.saturating_mul(NonZeroU32::new(5).expect("non-zero")))
        };
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
        let (remote, remote_off_because) = match paths.csc_url.as_deref() {
            None => (None, Some("no --csc-url".to_string())),
            Some(url) => match crate::csc::remote::RemoteProvider::start(url, paths.csc_credentials_file.as_deref(), &paths.data) {
                Ok(p) => (Some(p), None),
                Err(e) => (None, Some(e.to_string())),
            },
        };
        Ok(AppState {
            hsm,
            hsm_off_because,
            remote,
            remote_off_because,
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
            api_by_account: RateLimiter::keyed(account_quota),
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
