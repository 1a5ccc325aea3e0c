//! Sending notifications by e-mail: the SMTP server (`serve --smtp`), the text of each message
//! in the recipient's language, and the `MailDispatcher` that delivers the outbox's `mail.*`
//! messages at least once.
//!
//! The dispatcher reads the notices the store holds (committed with their acts, see
//! `notify`), and for each one, the first time it sees it, decides from the recipient's
//! preferences when it is due: now, after their quiet hours, in their next daily digest, or
//! never (that kind turned off, or no address in the directory: both recorded, so
//! administrators see why). A due notice is sent; a digest sends every due notice of one
//! person in one mail. A 4xx answer or a broken connection is tried again with back-off
//! (`outbox::RetryPolicy`); a 5xx answer (no such mailbox) or the last attempt makes a dead
//! letter on the outbox page. Each outcome is recorded in the store before the next message,
//! so a crash at worst sends one message twice, never loses one.
//!
//! Credentials never come from the command line: from `--smtp-credentials-file` (one line,
//! `USER:PASSWORD`) or the environment (`CARIMBO_SMTP_USER`, `CARIMBO_SMTP_PASSWORD`). With
//! credentials, `smtp://` demands STARTTLS, so a password never crosses the network in clear.

use super::book::PreferenceBook;
use super::{Notice, Plan, Topic, plan};
use crate::cases::CaseService;
use crate::directory::Directory;
use crate::i18n::Lang;
use crate::outbox::{Attempt, DeliveryState, DispatcherStatus, EndpointDelivery, PassReport, RetryPolicy};
use crate::store::{OutboxRecord, Store, StoreError};
use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// The name of the mail channel in a message's delivery state (beside webhook endpoints').
pub const CHANNEL: &str = "smtp";

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("--smtp {url:?}: {why} [CARIMBO-E1423]")]
    Url { url: String, why: String },
    #[error("SMTP credentials: {0} [CARIMBO-E1424]")]
    Credentials(String),
    #[error("--mail-from {from:?}: {why} [CARIMBO-E1425]")]
    From { from: String, why: String },
    #[error("the delegations to announce cannot be read or their place kept: {0} [CARIMBO-E1426]")]
    Delegations(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MailError {
    pub fn code(&self) -> &'static str {
        match self {
            MailError::Url { .. } => "CARIMBO-E1423",
            MailError::Credentials(_) => "CARIMBO-E1424",
            MailError::From { .. } => "CARIMBO-E1425",
            MailError::Delegations(_) => "CARIMBO-E1426",
            MailError::Store(e) => e.code(),
        }
    }
}

/// A user name and password for the SMTP server; the password stays out of debug output.
#[derive(Clone)]
pub struct SmtpLogin {
    pub user: String,
    password: String,
}

impl std::fmt::Debug for SmtpLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpLogin").field("user", &self.user).finish_non_exhaustive()
    }
}

impl SmtpLogin {
    /// From `--smtp-credentials-file` (one line `USER:PASSWORD`), else from the environment
    /// (`CARIMBO_SMTP_USER` and `CARIMBO_SMTP_PASSWORD`), else none.
    pub fn find(file: Option<&Path>) -> Result<Option<SmtpLogin>, MailError> {
        if let Some(f) = file {
            let text = std::fs::read_to_string(f).map_err(|e| MailError::Credentials(format!("{} cannot be read: {e}", f.display())))?;
            let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
            let (user, password) = line.split_once(':').ok_or_else(|| MailError::Credentials(format!("{} must hold one line USER:PASSWORD", f.display())))?;
            if user.is_empty() || password.is_empty() {
                return Err(MailError::Credentials(format!("{} must hold one line USER:PASSWORD, both non-empty", f.display())));
            }
            return Ok(Some(SmtpLogin { user: user.into(), password: password.into() }));
        }
        match (std::env::var("CARIMBO_SMTP_USER"), std::env::var("CARIMBO_SMTP_PASSWORD")) {
            (Ok(user), Ok(password)) if !user.is_empty() && !password.is_empty() => Ok(Some(SmtpLogin { user, password })),
            (Ok(_), Err(_)) | (Err(_), Ok(_)) => Err(MailError::Credentials("set both CARIMBO_SMTP_USER and CARIMBO_SMTP_PASSWORD, or neither".into())),
            _ => Ok(None),
        }
    }
}

/// Where mail goes: `smtp://HOST[:PORT]` (port 587; STARTTLS when the server offers it, and
/// demanded when there are credentials) or `smtps://HOST[:PORT]` (port 465, TLS from the start).
#[derive(Debug, Clone)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub implicit_tls: bool,
    pub login: Option<SmtpLogin>,
}

impl SmtpTarget {
    /// Parses `--smtp`; a user or password in the URL is refused (it would sit in the process
    /// list and shell history), as are paths and queries.
    pub fn parse(url: &str, login: Option<SmtpLogin>) -> Result<SmtpTarget, MailError> {
        // A URL with credentials in it is shown without them, even in the error that refuses it.
        let shown = match url.rsplit_once('@') {
            Some((head, host)) => format!("{}…@{host}", head.split("//").next().map(|s| format!("{s}//")).unwrap_or_default()),
            None => url.to_string(),
        };
        let bad = |why: &str| MailError::Url { url: shown.clone(), why: why.to_string() };
        let lower = url.to_ascii_lowercase();
        let (implicit_tls, rest) = if lower.starts_with("smtps://") {
            (true, &url[8..])
        } else if lower.starts_with("smtp://") {
            (false, &url[7..])
        } else {
            return Err(bad("it must start with smtp:// (STARTTLS when offered) or smtps:// (TLS), e.g. smtp://mail.example.org:587"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err(bad(
                "credentials do not belong in the URL (they would show in the process list): use --smtp-credentials-file or CARIMBO_SMTP_USER / CARIMBO_SMTP_PASSWORD",
            ));
        }
        if let Some(c) = rest.chars().find(|c| matches!(c, '/' | '?' | '#' | '\\') || c.is_whitespace() || c.is_control()) {
            return Err(bad(&format!("only a host and an optional port are allowed; {c:?} is not")));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p)),
            _ => (rest, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("it names no host"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad(&format!("the port {p:?} is not a number from 1 to 65535")))?,
            None if implicit_tls => 465,
            None => 587,
        };
        Ok(SmtpTarget { host: host.to_string(), port, implicit_tls, login })
    }

    /// For the start-up line and the outbox page: no credentials, only whether there are some.
    pub fn describe(&self) -> String {
        let tls = match (self.implicit_tls, self.login.is_some()) {
            (true, _) => "TLS",
            (false, true) => "STARTTLS required",
            (false, false) => "STARTTLS when offered",
        };
        let who = self.login.as_ref().map(|l| format!(", signed in as {}", l.user)).unwrap_or_default();
        format!("{}://{}:{} ({tls}{who})", if self.implicit_tls { "smtps" } else { "smtp" }, self.host, self.port)
    }

    fn transport(&self, timeout: std::time::Duration) -> Result<SmtpTransport, MailError> {
        let params = TlsParameters::new(self.host.clone()).map_err(|e| MailError::Url { url: self.describe(), why: format!("TLS cannot be set up: {e}") })?;
        let tls = match (self.implicit_tls, self.login.is_some()) {
            (true, _) => Tls::Wrapper(params),
            (false, true) => Tls::Required(params),
            (false, false) => Tls::Opportunistic(params),
        };
        let mut b = SmtpTransport::builder_dangerous(self.host.clone()).port(self.port).tls(tls).timeout(Some(timeout));
        if let Some(l) = &self.login {
            b = b.credentials(Credentials::new(l.user.clone(), l.password.clone()));
        }
        Ok(b.build())
    }
}

/// Everything the mail dispatcher needs to know besides the store.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub target: SmtpTarget,
    pub from: Mailbox,
    pub retry: RetryPolicy,
    /// `serve --public-url`: links in messages point there.
    pub public_url: String,
    pub timeout: std::time::Duration,
}

impl MailSettings {
    pub fn new(target: SmtpTarget, from: &str, public_url: &str) -> Result<MailSettings, MailError> {
        let from: Mailbox = from.parse().map_err(|e| MailError::From { from: from.to_string(), why: format!("not an e-mail address: {e}") })?;
        // Mail is slower to settle than a webhook: 1 min, 2, 4 … up to an hour, 10 attempts.
        let retry = RetryPolicy { max_attempts: 10, first_delay_ms: 60_000, max_delay_ms: 3_600_000 };
        Ok(MailSettings { target, from, retry, public_url: public_url.trim_end_matches('/').to_string(), timeout: std::time::Duration::from_secs(30) })
    }
}

/// A notice's delivery state under `CHANNEL`: the webhook endpoints' fields, plus whether its
/// time was decided (`planned`) and whether it waits for a digest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MailDelivery {
    #[serde(flatten)]
    pub base: EndpointDelivery,
    #[serde(default)]
    pub planned: bool,
    #[serde(default)]
    pub digest: bool,
    /// The address it was (or is to be) sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

fn delivery_of(record: &OutboxRecord) -> MailDelivery {
    record.delivery.get(CHANNEL).and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
}

/// One notice waiting in the store, read.
struct Waiting {
    record: OutboxRecord,
    topic: Topic,
    notice: Notice,
    d: MailDelivery,
}

/// Delivers the outbox's notifications by e-mail.
pub struct MailDispatcher {
    delegations: Option<DelegationRecord>,
    cases: Arc<CaseService>,
    prefs: Arc<PreferenceBook>,
    pub settings: Arc<MailSettings>,
    transport: SmtpTransport,
    pub status: Arc<Mutex<DispatcherStatus>>,
}

/// Notices read per store call while walking the pending list.
const PAGE: usize = 500;

impl MailDispatcher {
    pub fn new(cases: Arc<CaseService>, prefs: Arc<PreferenceBook>, settings: MailSettings) -> Result<MailDispatcher, MailError> {
        let transport = settings.target.transport(settings.timeout)?;
        Ok(MailDispatcher {
            delegations: None,
            cases,
            prefs,
            settings: Arc::new(settings),
            transport,
            status: Arc::new(Mutex::new(DispatcherStatus::default())),
        })
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.cases.store()
    }

    /// One pass: decides when each new notice is due, then sends what is due at `now` (one
    /// mail per digest), recording each outcome durably before the next.
    pub fn run_once(&self, now: DateTime<Utc>) -> Result<PassReport, MailError> {
        let mut report = PassReport::default();
        let directory = self.cases.directory();
        let calendar = self.cases.catalog().references.calendars.values().next().cloned();
        let mut due: Vec<Waiting> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store().outbox_pending_of_kind(super::MAIL_PREFIX, after.as_deref(), PAGE)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let full = page.len() == PAGE;
            for record in page {
                report.examined += 1;
                if let Some(w) = self.first_sight(record, &directory, calendar.as_deref(), now, &mut report)?
                    && w.d.base.next_at.is_none_or(|t| t <= now)
                {
                    due.push(w);
                }
            }
            if !full {
                break;
            }
        }
        // Digests: every due notice of one person in one mail, with the delegations held for it.
        let mut digests: BTreeMap<String, Vec<Waiting>> = BTreeMap::new();
        for w in due {
            if w.d.digest {
                digests.entry(w.notice.recipient.clone()).or_default().push(w);
            } else {
                let recipient = w.notice.recipient.clone();
                self.send(&recipient, false, vec![w], &[], &directory, now, &mut report)?;
            }
        }
        let held = match self.held_delegations(&directory, now, &mut report) {
            Ok(held) => held,
            Err(e) => {
                eprintln!("mail: delegations held for later could not be sent: {e}");
                BTreeMap::new()
            }
        };
        let people: std::collections::BTreeSet<String> = digests.keys().chain(held.keys()).cloned().collect();
        for person in people {
            let group = digests.remove(&person).unwrap_or_default();
            let (lines, items) = held.get(&person).cloned().unwrap_or_default();
            let accepted = self.send(&person, true, group, &lines, &directory, now, &mut report)?;
            if !items.is_empty()
                && let Err(e) = self.settle_held(&items, accepted, now)
            {
                eprintln!("mail: delegations held for a digest could not be recorded: {e}");
            }
        }
        if let Err(e) = self.announce_delegations(&directory, now, &mut report) {
            eprintln!("mail: delegations could not be announced: {e}");
        }
        Ok(report)
    }

    /// Reads one pending notice; the first time, decides when it is due (or that it is not
    /// sent) and records that. `None` when nothing more is to be done with it.
    fn first_sight(
        &self,
        record: OutboxRecord,
        directory: &Directory,
        calendar: Option<&crate::forms::HolidayCalendar>,
        now: DateTime<Utc>,
        report: &mut PassReport,
    ) -> Result<Option<Waiting>, MailError> {
        let mut d = delivery_of(&record);
        let (Some(topic), Ok(notice)) = (Topic::of_kind(&record.kind), serde_json::from_value::<Notice>(record.payload.clone())) else {
            d.base.state = DeliveryState::Dead;
            d.base.last_error = Some("the notice cannot be read".into());
            self.record(&record, &d, report)?;
            return Ok(None);
        };
        if d.planned {
            return Ok(Some(Waiting { record, topic, notice, d }));
        }
        d.planned = true;
        let address = directory.person(&notice.recipient).and_then(|p| p.email.clone()).filter(|a| !a.trim().is_empty());
        let Some(address) = address else {
            d.base.state = DeliveryState::Skipped;
            d.base.last_error = Some("no e-mail address in the directory".into());
            self.record(&record, &d, report)?;
            return Ok(None);
        };
        d.to = Some(address);
        match plan(&self.prefs.get(&notice.recipient), topic, now, calendar) {
            Plan::Off => {
                d.base.state = DeliveryState::Skipped;
                d.base.last_error = Some("turned off in the recipient's notification settings".into());
                self.record(&record, &d, report)?;
                return Ok(None);
            }
            Plan::Now => {}
            Plan::At(t) => d.base.next_at = Some(t),
            Plan::Digest(t) => {
                d.digest = true;
                d.base.next_at = Some(t);
            }
        }
        self.record(&record, &d, report)?;
        Ok(Some(Waiting { record, topic, notice, d }))
    }

    fn record(&self, record: &OutboxRecord, d: &MailDelivery, report: &mut PassReport) -> Result<(), MailError> {
        let settled = d.base.state != DeliveryState::Pending;
        let dead = d.base.state == DeliveryState::Dead;
        if settled {
            report.settled += 1;
        }
        let mut all = record.delivery.as_object().cloned().unwrap_or_default();
        all.insert(CHANNEL.into(), serde_json::to_value(d).expect("delivery state serialises"));
        self.store().outbox_update(&record.id, &serde_json::Value::Object(all), settled, dead)?;
        Ok(())
    }

    /// Sends one notice, or a digest for `recipient` (its notices and the sentences of the
    /// delegations held for it), and records the outcome on each notice; whether it was accepted.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        recipient: &str,
        digest: bool,
        mut group: Vec<Waiting>,
        delegations: &[String],
        directory: &Directory,
        now: DateTime<Utc>,
        report: &mut PassReport,
    ) -> Result<bool, MailError> {
        let to = match group.first() {
            Some(first) => first.d.to.clone().unwrap_or_default(),
            None => directory.person(recipient).and_then(|p| p.email.clone()).unwrap_or_default(),
        };
        if group.is_empty() && delegations.is_empty() {
            return Ok(true);
        }
        let lang = directory.person(recipient).and_then(|p| p.lang).unwrap_or(Lang::Zh);
        let text = match group.first() {
            Some(first) if group.len() == 1 && !digest && delegations.is_empty() => self.render_one(first.topic, &first.notice, directory, lang),
            _ => self.render_digest(recipient, &group, delegations, directory, lang),
        };
        report.attempts += 1;
        let id = match group.first() {
            Some(first) if group.len() == 1 && delegations.is_empty() => first.record.id.clone(),
            _ => format!("digest.{recipient}.{}", now.timestamp()),
        };
        let outcome = self.deliver(&to, &id, &text, directory.person(recipient).map(|p| p.name.get(lang).to_string()));
        let attempt = match &outcome {
            Ok(()) => Attempt::Delivered(250),
            Err((status, why, permanent)) => Attempt::Failed { status: *status, why: why.clone(), permanent: *permanent },
        };
        for w in &mut group {
            w.d.base.record_attempt(&attempt, now, &self.settings.retry, false);
        }
        match &outcome {
            Ok(()) => report.delivered += group.len() + delegations.len(),
            Err(_) => {
                report.failed += group.len() + delegations.len();
                report.dead_lettered += group.iter().filter(|w| w.d.base.state == DeliveryState::Dead).count();
            }
        }
        for w in &group {
            self.record(&w.record, &w.d, report)?;
        }
        Ok(outcome.is_ok())
    }

    /// One SMTP transaction; `Err((code, why, permanent))` on anything but acceptance.
    fn deliver(&self, to: &str, id: &str, text: &MailText, name: Option<String>) -> Result<(), (Option<u16>, String, bool)> {
        let address: lettre::Address = to.parse().map_err(|e| (None, format!("the directory's address {to:?} is not an e-mail address: {e}"), true))?;
        let message = Message::builder()
            .from(self.settings.from.clone())
            .to(Mailbox::new(name, address))
            .subject(text.subject.clone())
            // The outbox id: a receiver that sees a message twice (a crash between its
            // acceptance and our record of it) can tell.
            .message_id(Some(format!("<{}@carimbo>", id.replace(['<', '>', ' '], ""))))
            .header(ContentType::TEXT_PLAIN)
            .body(text.body.clone())
            .map_err(|e| (None, format!("the message cannot be built: {e}"), true))?;
        match self.transport.send(&message) {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = e.status().map(u16::from);
                Err((code, format!("the mail server answered: {e}"), e.is_permanent()))
            }
        }
    }

    /// Runs passes every `interval` on a thread of its own until `stop` is set.
    pub fn spawn(self, interval: std::time::Duration, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        let status = self.status.clone();
        crate::outbox::spawn_passes("carimbo-mail", "mail", status, interval, stop, move |now| self.run_once(now))
    }
}

// ---------------------------------------------------------------------------------------------
// Delegations set and ended

/// The delegation record (`DATA/delegations.jsonl`) and how much of it has been announced
/// (`DATA/notifications-delegations.json`, `{"announced": LINES, "held": […]}`). A delegation is
/// not a case event, so its notice is not an outbox message: the record's line is the commit
/// (written and synced before the directory changes), and the cursor moves past a line only
/// once every recipient's mail was accepted or planned, so a line is announced at least once
/// and never before it is on disk. A recipient's preferences apply as to every notice
/// (`notify::plan`): a kind turned off is not sent, quiet hours hold the mail in `held` until
/// they end, and a daily digest takes it in. Lines already in the record when mail is first
/// turned on are not announced.
struct DelegationRecord {
    log: crate::directory::delegation_log::DelegationLog,
    cursor: std::path::PathBuf,
    /// After a failure: when to try again, and how many failures in a row.
    retry: Mutex<(Option<DateTime<Utc>>, u32)>,
}

#[derive(Serialize, Deserialize)]
struct Announced {
    announced: usize,
    /// Mails of announced lines that wait for a recipient's quiet hours to end or digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    held: Vec<Held>,
}

/// One delegation mail held for later: the record's line, for whom, when it is due, whether
/// it goes in the digest, and how many attempts failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Held {
    line: usize,
    person: String,
    due: DateTime<Utc>,
    #[serde(default)]
    digest: bool,
    #[serde(default)]
    failures: u32,
}

/// A delegation line's delegation, who set or ended it, and whether it ended.
fn delegation_at(entries: &[crate::directory::delegation_log::DelegationEntry], i: usize) -> Option<(&crate::directory::Delegation, &str, bool)> {
    use crate::directory::delegation_log::DelegationEntry;
    match entries.get(i)? {
        DelegationEntry::Set { by, delegation, .. } => Some((delegation, by.as_str(), false)),
        DelegationEntry::Ended { by, id, .. } => entries[..i]
            .iter()
            .rev()
            .find_map(|e| match e {
                DelegationEntry::Set { delegation, .. } if &delegation.id == id => Some(delegation),
                _ => None,
            })
            .map(|d| (d, by.as_str(), true)),
    }
}

impl DelegationRecord {
    fn state(&self) -> Result<Announced, String> {
        let bytes = std::fs::read(&self.cursor).map_err(|e| format!("{}: {e}", self.cursor.display()))?;
        crate::json_strict::from_slice::<Announced>(&bytes).map_err(|e| format!("{}: {e}", self.cursor.display()))
    }

    fn save(&self, state: &Announced) -> Result<(), String> {
        let text = serde_json::to_vec(state).expect("a count serialises");
        super::book::write_private(&self.cursor, &text).map_err(|e| format!("{}: {e}", self.cursor.display()))
    }
}

/// The digest lines of one person's held delegations, and the held entries they came from.
type HeldForDigest = (Vec<String>, Vec<Held>);

impl MailDispatcher {
    /// Also announces delegations set and ended in this record, keeping its place in `cursor`.
    pub fn with_delegation_record(mut self, log: &Path, cursor: &Path) -> Result<MailDispatcher, MailError> {
        let record =
            DelegationRecord { log: crate::directory::delegation_log::DelegationLog::new(log), cursor: cursor.to_path_buf(), retry: Mutex::new((None, 0)) };
        if !cursor.exists() {
            let lines = record.log.entries().map_err(|e| MailError::Delegations(e.to_string()))?.len();
            record.save(&Announced { announced: lines, held: Vec::new() }).map_err(MailError::Delegations)?;
        }
        self.delegations = Some(record);
        Ok(self)
    }

    /// Announces the record's new lines: each recipient's mail sent now, or held for their quiet
    /// hours or digest, or not at all, as their preferences say.
    fn announce_delegations(&self, directory: &Directory, now: DateTime<Utc>, report: &mut PassReport) -> Result<(), String> {
        let Some(record) = &self.delegations else { return Ok(()) };
        if record.retry.lock().unwrap_or_else(|e| e.into_inner()).0.is_some_and(|t| t > now) {
            return Ok(());
        }
        let entries = record.log.entries().map_err(|e| e.to_string())?;
        let calendar = self.cases.catalog().references.calendars.values().next().cloned();
        let mut state = record.state()?;
        for i in state.announced..entries.len() {
            if let Some((d, by, ended)) = delegation_at(&entries, i) {
                let mut people = vec![d.delegate.clone(), d.principal.clone()];
                people.retain(|p| p != by);
                for person in people {
                    if directory.person(&person).and_then(|p| p.email.clone()).is_none() {
                        continue;
                    }
                    let due = match plan(&self.prefs.get(&person), Topic::Delegation, now, calendar.as_deref()) {
                        Plan::Off => continue,
                        Plan::Now => None,
                        Plan::At(t) => Some((t, false)),
                        Plan::Digest(t) => Some((t, true)),
                    };
                    if let Some((due, digest)) = due {
                        state.held.push(Held { line: i, person, due, digest, failures: 0 });
                        continue;
                    }
                    if let Err(why) = self.send_delegation(d, by, &person, ended, i, directory, report) {
                        let mut retry = record.retry.lock().unwrap_or_else(|e| e.into_inner());
                        retry.1 += 1;
                        retry.0 = Some(crate::outbox::retry_at(&self.settings.retry, retry.1, now, false));
                        return Err(why);
                    }
                }
            }
            state.announced = i + 1;
            record.save(&state)?;
            *record.retry.lock().unwrap_or_else(|e| e.into_inner()) = (None, 0);
        }
        Ok(())
    }

    /// One delegation mail to `person`, now.
    #[allow(clippy::too_many_arguments)]
    fn send_delegation(
        &self,
        d: &crate::directory::Delegation,
        by: &str,
        person: &str,
        ended: bool,
        line: usize,
        directory: &Directory,
        report: &mut PassReport,
    ) -> Result<(), String> {
        let Some(to) = directory.person(person).and_then(|p| p.email.clone()) else { return Ok(()) };
        let lang = directory.person(person).and_then(|p| p.lang).unwrap_or(Lang::Zh);
        let text = self.render_delegation(d, by, person, ended, directory, lang);
        report.attempts += 1;
        let name = directory.person(person).map(|p| p.name.get(lang).to_string());
        match self.deliver(&to, &format!("delegation.{line}.{person}"), &text, name) {
            Ok(()) => {
                report.delivered += 1;
                Ok(())
            }
            Err((_, why, _)) => {
                report.failed += 1;
                Err(why)
            }
        }
    }

    /// Sends the held delegation mails whose quiet hours are over, and returns, per person, the
    /// lines of those due in a digest (sent with the person's digest by `run_once`).
    fn held_delegations(&self, directory: &Directory, now: DateTime<Utc>, report: &mut PassReport) -> Result<BTreeMap<String, HeldForDigest>, String> {
        let Some(record) = &self.delegations else { return Ok(BTreeMap::new()) };
        let mut state = record.state()?;
        if !state.held.iter().any(|h| h.due <= now) {
            return Ok(BTreeMap::new());
        }
        let entries = record.log.entries().map_err(|e| e.to_string())?;
        let mut digests: BTreeMap<String, HeldForDigest> = BTreeMap::new();
        let mut kept = Vec::new();
        for h in std::mem::take(&mut state.held) {
            let Some((d, by, ended)) = delegation_at(&entries, h.line) else { continue };
            if h.due > now {
                kept.push(h);
            } else if h.digest {
                let lang = directory.person(&h.person).and_then(|p| p.lang).unwrap_or(Lang::Zh);
                let entry = digests.entry(h.person.clone()).or_default();
                entry.0.push(self.delegation_sentence(d, by, &h.person, ended, directory, lang));
                entry.1.push(h.clone());
                kept.push(h);
            } else if self.send_delegation(d, by, &h.person, ended, h.line, directory, report).is_err() {
                kept.extend(self.next_attempt(h, now));
            }
            // Sent: no longer held.
        }
        state.held = kept;
        record.save(&state)?;
        Ok(digests)
    }

    /// A held mail after a failed attempt: due again after the back-off, or dropped (with a
    /// line in the log) after the last attempt the policy allows.
    fn next_attempt(&self, mut h: Held, now: DateTime<Utc>) -> Option<Held> {
        h.failures += 1;
        if h.failures >= self.settings.retry.max_attempts {
            eprintln!("mail: the delegation mail of line {} to {} was given up after {} attempts", h.line + 1, h.person, h.failures);
            return None;
        }
        h.due = crate::outbox::retry_at(&self.settings.retry, h.failures, now, false);
        Some(h)
    }

    /// After a digest with held delegations was sent (`accepted`) or not: they are no longer
    /// held, or due again after the back-off.
    fn settle_held(&self, items: &[Held], accepted: bool, now: DateTime<Utc>) -> Result<(), String> {
        let Some(record) = &self.delegations else { return Ok(()) };
        let mut state = record.state()?;
        let mut held = Vec::new();
        for h in std::mem::take(&mut state.held) {
            if !items.contains(&h) {
                held.push(h);
            } else if !accepted {
                held.extend(self.next_attempt(h, now));
            }
        }
        state.held = held;
        record.save(&state)
    }

    fn render_delegation(&self, d: &crate::directory::Delegation, by: &str, recipient: &str, ended: bool, directory: &Directory, lang: Lang) -> MailText {
        let sentence = self.delegation_sentence(d, by, recipient, ended, directory, lang);
        let name = directory.person(recipient).map(|p| p.name.get(lang).to_string()).unwrap_or_else(|| recipient.to_string());
        let link = format!("{}/me/delegation", self.settings.public_url);
        let body = format!(
            "{}{name}{}\n\n{sentence}\n\n{}{}{link}\n\n-- \n{}\n",
            t(lang, "", "Olá ", "Hello "),
            t(lang, "：", ",", ","),
            t(lang, "休假代理", "Ausência", "Out of office"),
            colon(lang),
            self.footer(lang)
        );
        let word = if ended {
            t(lang, "代理已結束", "Substituição terminada", "Delegation ended")
        } else {
            t(lang, "代理已設定", "Substituição definida", "Delegation set")
        };
        let (delegate, principal) = (Self::name_of(directory, lang, &d.delegate), Self::name_of(directory, lang, &d.principal));
        MailText { subject: format!("{word}{}{delegate} → {principal}", colon(lang)), body }
    }

    /// What happened to the delegation, in one sentence for `recipient`.
    fn delegation_sentence(&self, d: &crate::directory::Delegation, by: &str, recipient: &str, ended: bool, directory: &Directory, lang: Lang) -> String {
        let (delegate, principal, by) =
            (Self::name_of(directory, lang, &d.delegate), Self::name_of(directory, lang, &d.principal), Self::name_of(directory, lang, by));
        let (from, to) = (d.from.to_string(), d.to.to_string());
        let forms = match &d.forms {
            None => t(lang, "所有表格", "todos os formulários", "every form").to_string(),
            Some(f) => f
                .iter()
                .map(|id| self.cases.catalog().form(id).map(|x| x.title.get(lang).to_string()).unwrap_or_else(|| id.clone()))
                .collect::<Vec<_>>()
                .join(", "),
        };
        match (ended, recipient == d.delegate, lang) {
            (false, true, Lang::Zh) => format!("{by} 設定了代理：由 {from} 至 {to}，你代 {principal} 處理（{forms}）。"),
            (false, true, Lang::Pt) => format!("{by} definiu uma substituição: de {from} a {to} substitui {principal} ({forms})."),
            (false, true, Lang::En) => format!("{by} set a delegation: from {from} to {to} you act for {principal} ({forms})."),
            (false, false, Lang::Zh) => format!("{by} 設定了代理：由 {from} 至 {to}，{delegate} 代你處理（{forms}）。"),
            (false, false, Lang::Pt) => format!("{by} definiu uma substituição: de {from} a {to}, {delegate} substitui-o ({forms})."),
            (false, false, Lang::En) => format!("{by} set a delegation: from {from} to {to} {delegate} acts for you ({forms})."),
            (true, _, Lang::Zh) => format!("{by} 結束了代理（{delegate} 代 {principal}，{from} 至 {to}）。"),
            (true, _, Lang::Pt) => format!("{by} terminou a substituição de {principal} por {delegate} ({from} a {to})."),
            (true, _, Lang::En) => format!("{by} ended the delegation ({delegate} for {principal}, {from} to {to})."),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The text of a message

/// A message's subject and plain-text body.
#[derive(Debug, Clone, PartialEq)]
pub struct MailText {
    pub subject: String,
    pub body: String,
}

/// "Label: value", with the full-width colon in Chinese.
fn colon(lang: Lang) -> &'static str {
    t(lang, "：", ": ", ": ")
}

fn t(lang: Lang, zh: &'static str, pt: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Zh => zh,
        Lang::Pt => pt,
        Lang::En => en,
    }
}

impl MailDispatcher {
    fn name_of(directory: &Directory, lang: Lang, id: &str) -> String {
        directory.person(id).map(|p| format!("{} ({id})", p.name.get(lang))).unwrap_or_else(|| id.to_string())
    }

    /// The link to the case's page (nothing in it signs anyone in: the page asks to sign in).
    fn link(&self, case_id: &str) -> String {
        format!("{}/cases/{case_id}", self.settings.public_url)
    }

    /// The form's title, the step's title and the summary lines in `lang`, from the pinned definitions.
    fn case_lines(&self, notice: &Notice, lang: Lang) -> (String, Option<String>, Vec<String>) {
        let pinned = self.cases.pinned_definitions(&notice.form_hash, &notice.workflow_hash).ok();
        let Some((form, workflow)) = pinned else {
            let lines = notice.summary.iter().map(|s| format!("{}: {}", s.field, s.value)).collect();
            return (notice.form_id.clone(), notice.step.clone(), lines);
        };
        let step = notice.step.as_ref().map(|s| workflow.steps.iter().find(|d| &d.id == s).map(|d| d.title.get(lang).to_string()).unwrap_or_else(|| s.clone()));
        let lines = notice
            .summary
            .iter()
            .map(|s| {
                let ptr = crate::forms::pointer_push("", &s.field);
                format!(
                    "{}{}{}",
                    crate::http::pages::render::pointer_label(&form, lang, &ptr),
                    colon(lang),
                    crate::http::pages::render::value_label(&form, lang, &ptr, &s.value)
                )
            })
            .collect();
        (form.title.get(lang).to_string(), step, lines)
    }

    /// What happened, one sentence, and the subject's words.
    fn headline(&self, topic: Topic, notice: &Notice, directory: &Directory, lang: Lang, form: &str, step: Option<&str>) -> (String, String) {
        let step = step.unwrap_or("");
        let case = &notice.case_id;
        let by = notice.by.as_deref().map(|b| Self::name_of(directory, lang, b)).unwrap_or_default();
        match topic {
            Topic::Task => {
                let mut s = match lang {
                    Lang::Zh => format!("個案 {case}（{form}）的「{step}」步驟等待你處理。"),
                    Lang::Pt => format!("O passo «{step}» do processo {case} ({form}) aguarda por si."),
                    Lang::En => format!("The step “{step}” of case {case} ({form}) is waiting for you."),
                };
                if let Some(p) = &notice.on_behalf_of {
                    let p = Self::name_of(directory, lang, p);
                    s.push_str(&match lang {
                        Lang::Zh => format!("你以代理人身份代 {p} 處理。"),
                        Lang::Pt => format!(" Age em substituição de {p}."),
                        Lang::En => format!(" You act for {p} under a delegation."),
                    });
                }
                (t(lang, "待辦", "Tarefa", "To do").into(), s)
            }
            Topic::Reminder => (
                t(lang, "提醒", "Lembrete", "Reminder").into(),
                match lang {
                    Lang::Zh => format!("個案 {case}（{form}）的「{step}」步驟仍等待你處理，期限將至。"),
                    Lang::Pt => format!("O passo «{step}» do processo {case} ({form}) ainda aguarda por si e o prazo aproxima-se."),
                    Lang::En => format!("The step “{step}” of case {case} ({form}) is still waiting for you, and its deadline is near."),
                },
            ),
            Topic::Escalation => (
                t(lang, "逾期轉交", "Escalado", "Escalated to you").into(),
                match lang {
                    Lang::Zh => format!("個案 {case}（{form}）的「{step}」步驟已逾期，現轉交你處理。"),
                    Lang::Pt => format!("O prazo do passo «{step}» do processo {case} ({form}) passou e o passo foi-lhe atribuído."),
                    Lang::En => format!("The deadline of the step “{step}” of case {case} ({form}) has passed, and the step was escalated to you."),
                },
            ),
            Topic::Returned => (
                t(lang, "退回修改", "Devolvido para correção", "Returned for correction").into(),
                match lang {
                    Lang::Zh => format!("你的個案 {case}（{form}）已由 {by} 退回修改。"),
                    Lang::Pt => format!("O seu processo {case} ({form}) foi devolvido para correção por {by}."),
                    Lang::En => format!("Your case {case} ({form}) was returned for correction by {by}."),
                },
            ),
            Topic::Delegation => (t(lang, "代理", "Substituição", "Delegation").into(), String::new()),
            Topic::Decided => {
                let (word, sentence) = match (notice.outcome.as_deref(), lang) {
                    (Some("rejected"), Lang::Zh) => ("不批准", format!("你的個案 {case}（{form}）不獲批准（{by}）。")),
                    (Some("rejected"), Lang::Pt) => ("Indeferido", format!("O seu processo {case} ({form}) foi indeferido ({by}).")),
                    (Some("rejected"), Lang::En) => ("Rejected", format!("Your case {case} ({form}) was rejected ({by}).")),
                    (Some("withdrawn"), Lang::Zh) => ("已撤回", format!("你的個案 {case}（{form}）已由 {by} 撤回。")),
                    (Some("withdrawn"), Lang::Pt) => ("Retirado", format!("O seu processo {case} ({form}) foi retirado por {by}.")),
                    (Some("withdrawn"), Lang::En) => ("Withdrawn", format!("Your case {case} ({form}) was withdrawn by {by}.")),
                    (_, Lang::Zh) => ("已批准", format!("你的個案 {case}（{form}）已完成所有步驟並獲批准。")),
                    (_, Lang::Pt) => ("Deferido", format!("O seu processo {case} ({form}) concluiu todos os passos e foi deferido.")),
                    (_, Lang::En) => ("Approved", format!("Your case {case} ({form}) has completed every step and was approved.")),
                };
                (word.into(), sentence)
            }
        }
    }

    fn footer(&self, lang: Lang) -> String {
        let settings = format!("{}/me/notifications", self.settings.public_url);
        match lang {
            Lang::Zh => format!("你收到此郵件是因為你的通知設定，可於此更改：{settings}\n此郵件由 carimbo 自動發出，請勿回覆。"),
            Lang::Pt => format!(
                "Recebe esta mensagem segundo as suas preferências de notificação, que pode alterar em {settings}\nMensagem automática do carimbo; não responda."
            ),
            Lang::En => format!(
                "You get this message because of your notification settings; change them at {settings}\nSent automatically by carimbo; please do not reply."
            ),
        }
    }

    /// The message for one notice, in `lang`.
    pub fn render_one(&self, topic: Topic, notice: &Notice, directory: &Directory, lang: Lang) -> MailText {
        let (form, step, lines) = self.case_lines(notice, lang);
        let (word, sentence) = self.headline(topic, notice, directory, lang, &form, step.as_deref());
        let name = directory.person(&notice.recipient).map(|p| p.name.get(lang).to_string()).unwrap_or_else(|| notice.recipient.clone());
        let mut body = format!("{}{name}{}\n\n{sentence}\n", t(lang, "", "Olá ", "Hello "), t(lang, "：", ",", ","));
        if let Some(c) = notice.comment.as_deref().filter(|c| !c.trim().is_empty()) {
            body.push_str(&format!("\n{}{}{c}\n", t(lang, "意見", "Comentário", "Comment"), colon(lang)));
        }
        if !lines.is_empty() {
            body.push('\n');
            for l in &lines {
                body.push_str(&format!("  {l}\n"));
            }
        }
        body.push_str(&format!("\n{}{}{}\n", t(lang, "開啟個案", "Abrir o processo", "Open the case"), colon(lang), self.link(&notice.case_id)));
        body.push_str(&format!(
            "{}{}{}\n\n-- \n{}\n",
            t(lang, "時間", "Quando", "When"),
            colon(lang),
            crate::wording::when(lang, &notice.at),
            self.footer(lang)
        ));
        MailText { subject: format!("{word}{}{form} · {}", colon(lang), notice.case_id), body }
    }

    /// One mail for many notices of one person, and the delegations held for their digest.
    fn render_digest(&self, recipient: &str, group: &[Waiting], delegations: &[String], directory: &Directory, lang: Lang) -> MailText {
        let n = group.len() + delegations.len();
        let name = directory.person(recipient).map(|p| p.name.get(lang).to_string()).unwrap_or_else(|| recipient.to_string());
        let intro = match lang {
            Lang::Zh => format!("{name}：\n\n以下是你今天的 {n} 項通知。\n"),
            Lang::Pt => format!("Olá {name},\n\nEstas são as suas {n} notificações do dia.\n"),
            Lang::En => format!("Hello {name},\n\nThese are your {n} notifications of the day.\n"),
        };
        let mut body = intro;
        for (i, w) in group.iter().enumerate() {
            let (form, step, lines) = self.case_lines(&w.notice, lang);
            let (_, sentence) = self.headline(w.topic, &w.notice, directory, lang, &form, step.as_deref());
            body.push_str(&format!("\n{}. {sentence}\n", i + 1));
            for l in &lines {
                body.push_str(&format!("   {l}\n"));
            }
            body.push_str(&format!("   {}\n", self.link(&w.notice.case_id)));
        }
        for (i, sentence) in delegations.iter().enumerate() {
            body.push_str(&format!("\n{}. {sentence}\n   {}/me/delegation\n", group.len() + i + 1, self.settings.public_url));
        }
        body.push_str(&format!("\n-- \n{}\n", self.footer(lang)));
        let subject = match lang {
            Lang::Zh => format!("每日摘要：{n} 項通知"),
            Lang::Pt => format!("Resumo diário: {n} notificações"),
            Lang::En => format!("Daily digest: {n} notifications"),
        };
        MailText { subject, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_smtp_url_names_host_port_and_tls_and_never_credentials() {
        let s = SmtpTarget::parse("smtp://mail.example.org", None).unwrap();
        assert_eq!((s.host.as_str(), s.port, s.implicit_tls), ("mail.example.org", 587, false));
        assert_eq!(s.describe(), "smtp://mail.example.org:587 (STARTTLS when offered)");
        let s = SmtpTarget::parse("smtps://mail.example.org:2465/", None).unwrap();
        assert_eq!((s.port, s.implicit_tls), (2465, true));
        let with = SmtpTarget::parse("smtp://127.0.0.1:2525", Some(SmtpLogin { user: "carimbo".into(), password: "s3cret-pw".into() })).unwrap();
        assert!(with.describe().contains("STARTTLS required") && !with.describe().contains("s3cret") && !format!("{with:?}").contains("s3cret"));
        for (url, says) in [
            ("http://mail.example.org", "smtp://"),
            ("smtp://user:pw@mail.example.org", "credentials do not belong"),
            ("smtp://user:pw@mail.example.org", "\"smtp://…@mail.example.org\""),
            ("smtp://mail.example.org:0", "port"),
            ("smtp://mail.example.org:99999", "port"),
            ("smtp://mail.example.org/x", "only a host"),
            ("smtp://", "no host"),
        ] {
            let e = SmtpTarget::parse(url, None).unwrap_err();
            assert!(e.to_string().contains(says) && e.code() == "CARIMBO-E1423" && !e.to_string().contains("pw@"), "{url}: {e}");
        }
    }

    #[test]
    fn credentials_come_from_one_line_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("smtp");
        std::fs::write(&f, "carimbo:pa:ss\n").unwrap();
        let l = SmtpLogin::find(Some(&f)).unwrap().unwrap();
        assert_eq!((l.user.as_str(), l.password.as_str()), ("carimbo", "pa:ss"));
        std::fs::write(&f, "no colon\n").unwrap();
        assert_eq!(SmtpLogin::find(Some(&f)).unwrap_err().code(), "CARIMBO-E1424");
        assert_eq!(SmtpLogin::find(Some(&dir.path().join("missing"))).unwrap_err().code(), "CARIMBO-E1424");
    }

    #[test]
    fn a_bad_sender_address_is_refused() {
        let target = SmtpTarget::parse("smtp://127.0.0.1:2525", None).unwrap();
        assert_eq!(MailSettings::new(target.clone(), "not an address", "http://x").unwrap_err().code(), "CARIMBO-E1425");
        assert!(MailSettings::new(target, "carimbo <noreply@example.org>", "http://x/").is_ok_and(|s| s.public_url == "http://x"));
    }
}
