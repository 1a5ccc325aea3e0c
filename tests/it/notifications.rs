//! E-mail notifications end to end: cases on the real sled store, the real `MailDispatcher`
//! and lettre's SMTP client, and a small SMTP receiver written here that refuses its first
//! messages with a 4xx (try again later), as a busy mail server does. Every message arrives
//! once, in the recipient's language, with the link to the case and without restricted data; a
//! digest collects the day's items into one mail; a server killed between the commit and the
//! delivery sends the message after its restart.

use crate::common;

use carimbo::cases::CaseService;
use carimbo::catalog::Catalog;
use carimbo::i18n::Lang;
use carimbo::notify::book::{PreferenceBook, PreferencesBody};
use carimbo::notify::mail::{MailDispatcher, MailSettings, SmtpTarget};
use carimbo::outbox::{DeliveryState, deliveries_of};
use carimbo::store::{SledStore, Store};
use carimbo::workflow::{ActRequest, Action, Level};
use chrono::{DateTime, Duration, Utc};
use common::{at, sig};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------------------------------------------
// A small SMTP receiver (RFC 5321's commands, enough for lettre): it answers `451` to the end of
// the first `fail_first` messages' DATA, then accepts and keeps each message.

#[derive(Debug, Clone)]
struct Received {
    to: Vec<String>,
    raw: Vec<u8>,
}

impl Received {
    fn subject(&self) -> String {
        let m = mailparse::parse_mail(&self.raw).unwrap();
        mailparse::MailHeaderMap::get_first_value(&m.headers[..], "Subject").unwrap_or_default()
    }

    fn body(&self) -> String {
        mailparse::parse_mail(&self.raw).unwrap().get_body().unwrap()
    }
}

#[derive(Clone)]
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    refusals_left: Arc<AtomicUsize>,
    /// DATA transactions seen, refused or not.
    transactions: Arc<AtomicUsize>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").unwrap(), fail_first)
    }

    fn on(listener: TcpListener, fail_first: usize) -> Receiver {
        let r = Receiver {
            port: listener.local_addr().unwrap().port(),
            got: Arc::default(),
            refusals_left: Arc::new(AtomicUsize::new(fail_first)),
            transactions: Arc::default(),
        };
        let shared = r.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = shared.clone();
                std::thread::spawn(move || s.session(stream));
            }
        });
        r
    }

    fn session(&self, stream: TcpStream) {
        let mut out = stream.try_clone().unwrap();
        let mut lines = BufReader::new(stream);
        let mut say = |text: &str| out.write_all(format!("{text}\r\n").as_bytes()).is_ok();
        say("220 receiver.test ESMTP");
        let mut to: Vec<String> = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let cmd = line.trim_end().to_ascii_uppercase();
            let ok = if cmd.starts_with("EHLO") {
                say("250-receiver.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 OK")
            } else if cmd.starts_with("HELO") || cmd.starts_with("MAIL FROM") || cmd.starts_with("NOOP") {
                say("250 OK")
            } else if cmd.starts_with("RCPT TO") {
                let addr = line.trim_end()[8..].trim().trim_start_matches('<').trim_end_matches('>').to_string();
                to.push(addr);
                say("250 OK")
            } else if cmd.starts_with("RSET") {
                to.clear();
                say("250 OK")
            } else if cmd == "DATA" {
                say("354 end with <CRLF>.<CRLF>");
                let mut raw = Vec::new();
                loop {
                    let mut l = String::new();
                    if lines.read_line(&mut l).unwrap_or(0) == 0 {
                        return;
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    raw.extend_from_slice(l.strip_prefix('.').unwrap_or(&l).as_bytes());
                }
                self.transactions.fetch_add(1, Ordering::SeqCst);
                let refused = self.refusals_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                if refused {
                    say("451 4.3.0 busy, try again later")
                } else {
                    self.got.lock().unwrap().push(Received { to: std::mem::take(&mut to), raw });
                    say("250 2.0.0 queued")
                }
            } else if cmd.starts_with("QUIT") {
                say("221 bye");
                return;
            } else {
                say("502 not implemented")
            };
            if !ok {
                return;
            }
        }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn to(&self, address: &str) -> Vec<Received> {
        self.received().into_iter().filter(|m| m.to.iter().any(|t| t == address)).collect()
    }
}

// ---------------------------------------------------------------------------------------------

const PUBLIC: &str = "https://forms.example.org";

struct World {
    _dir: tempfile::TempDir,
    svc: Arc<CaseService>,
    prefs: Arc<PreferenceBook>,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path().join("store")).unwrap());
    let directory = common::directory();
    let report = Catalog::load_paths_with(&[common::repo().join("forms"), common::repo().join("workflows")], Some(&directory));
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    let svc = Arc::new(CaseService::new(store, report.catalog, directory).unwrap());
    svc.set_notifications(true);
    let prefs = Arc::new(PreferenceBook::open(&dir.path().join("notifications.json")).unwrap());
    World { _dir: dir, svc, prefs }
}

fn dispatcher(w: &World, r: &Receiver) -> MailDispatcher {
    let target = SmtpTarget::parse(&format!("smtp://127.0.0.1:{}", r.port), None).unwrap();
    let mut settings = MailSettings::new(target, "carimbo <noreply@example.org>", PUBLIC).unwrap();
    settings.retry.first_delay_ms = 60_000;
    settings.timeout = std::time::Duration::from_secs(5);
    MailDispatcher::new(w.svc.clone(), w.prefs.clone(), settings).unwrap()
}

/// Runs passes a simulated ten minutes apart (so every back-off is over) until nothing waits.
fn deliver_all(d: &MailDispatcher, w: &World, from: DateTime<Utc>) -> DateTime<Utc> {
    let mut now = from;
    for _ in 0..12 {
        d.run_once(now).unwrap();
        if notifications_waiting(w) == 0 {
            return now;
        }
        now += Duration::minutes(10);
    }
    panic!("notifications still waiting after 12 passes");
}

fn notifications(w: &World) -> Vec<carimbo::store::OutboxRecord> {
    w.svc.store().outbox_since(DateTime::<Utc>::MIN_UTC, None, 10_000).unwrap().into_iter().filter(|r| r.kind.starts_with("mail.")).collect()
}

fn notifications_waiting(w: &World) -> usize {
    w.svc.store().outbox_pending(None, 10_000).unwrap().iter().filter(|r| r.kind.starts_with("mail.")).count()
}

fn address(id: &str) -> String {
    common::directory().person(id).unwrap().email.clone().unwrap()
}

fn medical_certificate() -> Value {
    let form = common::read_json(&common::repo().join("forms/medical-certificate.json"));
    form["examples"]["valid"][0]["data"].clone()
}

fn leave(day: u32) -> Value {
    json!({"leave_type": "annual", "start_date": format!("2026-05-{day:02}"), "end_date": format!("2026-05-{day:02}")})
}

#[test]
fn every_notification_arrives_once_in_its_readers_language_with_the_link_and_no_restricted_data() {
    let w = world();
    let r = Receiver::start(2);
    let d = dispatcher(&w, &r);
    // The doctor certifies a diagnosis (restricted to hr and doctors); the three HR officers
    // (en, zh, pt in the directory) each get the task.
    let data = medical_certificate();
    let diagnosis = data["diagnosis_code"].as_str().unwrap().to_string();
    let case = w.svc.submit("doc01", "medical-certificate", &data, sig("doc01", Level::Qualified), at("2026-03-02T09:00"), None, Lang::En).unwrap().case;
    let link = format!("{PUBLIC}/cases/{}", case.id);
    deliver_all(&d, &w, at("2026-03-02T09:00"));
    assert_eq!(r.transactions.load(Ordering::SeqCst), 5, "two refused with 451, then three accepted");
    let got = r.received();
    assert_eq!(got.len(), 3, "{:?}", got.iter().map(|m| &m.to).collect::<Vec<_>>());
    for (person, words) in [("p018", "is waiting for you"), ("p019", "等待你處理"), ("p020", "aguarda por si")] {
        let mine = r.to(&address(person));
        assert_eq!(mine.len(), 1, "{person} gets exactly one message");
        let (subject, body) = (mine[0].subject(), mine[0].body());
        assert!(body.contains(words), "{person}'s language: {body}");
        assert!(body.contains(&link), "{person}: the case's link: {body}");
        assert!(subject.contains(&case.id), "{subject}");
        // The summary's unrestricted fields are there; the diagnosis is nowhere in the bytes.
        assert!(body.contains("Chan Tai Man"), "{body}");
        let raw = String::from_utf8_lossy(&mine[0].raw);
        assert!(!body.contains(&diagnosis) && !raw.contains(&diagnosis), "the restricted diagnosis reached a mail: {body}");
        assert!(!raw.to_ascii_lowercase().contains("token") && !body.contains("session"), "nothing that signs in: {raw}");
    }
    // Each message is recorded as delivered, after the attempts it took.
    let records = notifications(&w);
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|m| m.settled && !m.dead && deliveries_of(m)["smtp"].state == DeliveryState::Delivered));
    let attempts: u32 = records.iter().map(|m| deliveries_of(m)["smtp"].attempts).sum();
    assert_eq!(attempts, 5);
    // More passes send nothing again.
    d.run_once(at("2026-03-03T09:00")).unwrap();
    assert_eq!(r.received().len(), 3);
}

#[test]
fn a_return_and_a_decision_reach_the_submitter_and_a_person_without_address_is_recorded_as_such() {
    let w = world();
    let r = Receiver::start(0);
    let d = dispatcher(&w, &r);
    let case = w.svc.submit("p005", "absence-and-annual-leave", &leave(11), sig("p005", Level::Advanced), at("2026-03-02T09:00"), None, Lang::Zh).unwrap().case;
    let ret = ActRequest {
        actor: "p003".into(),
        step: "supervisor".into(),
        action: Action::Return,
        comment: Some("Indique o substituto".into()),
        signature: sig("p003", Level::Advanced),
        now: at("2026-03-02T10:00"),
    };
    w.svc.act(&case.id, ret, None).unwrap();
    deliver_all(&d, &w, at("2026-03-02T10:00"));
    let to_staff = r.to(&address("p005"));
    assert_eq!(to_staff.len(), 1);
    let body = to_staff[0].body();
    assert!(body.contains("退回修改") && body.contains("Indique o substituto") && body.contains(&case.id), "{body}");
    assert_eq!(r.to(&address("p003")).len(), 1, "the supervisor was told of the task once");

    // A refused act writes nothing, so nothing is sent for it.
    let before = notifications(&w).len();
    let wrong = ActRequest {
        actor: "p006".into(),
        step: "supervisor".into(),
        action: Action::Approve,
        comment: None,
        signature: sig("p006", Level::Advanced),
        now: at("2026-03-02T11:00"),
    };
    assert!(w.svc.act(&case.id, wrong, None).is_err());
    assert_eq!(notifications(&w).len(), before);

    // The doctor has no address: the decision on their certificate is settled as not sendable.
    let mc = w
        .svc
        .submit("doc01", "medical-certificate", &medical_certificate(), sig("doc01", Level::Qualified), at("2026-03-02T12:00"), None, Lang::En)
        .unwrap()
        .case;
    let sign = ActRequest {
        actor: "p019".into(),
        step: "hr-records".into(),
        action: Action::Sign,
        comment: None,
        signature: sig("p019", Level::Simple),
        now: at("2026-03-02T13:00"),
    };
    w.svc.act(&mc.id, sign, None).unwrap();
    deliver_all(&d, &w, at("2026-03-02T13:00"));
    let decided: Vec<_> = notifications(&w).into_iter().filter(|m| m.kind == "mail.decided" && m.case_id == mc.id).collect();
    assert_eq!(decided.len(), 1);
    let e = &deliveries_of(&decided[0])["smtp"];
    assert_eq!(e.state, DeliveryState::Skipped);
    assert!(e.last_error.as_deref().unwrap().contains("no e-mail address"), "{e:?}");
}

#[test]
fn a_digest_collects_forty_waiting_items_into_one_mail_at_the_chosen_time() {
    let w = world();
    let r = Receiver::start(1);
    let d = dispatcher(&w, &r);
    let body = PreferencesBody {
        topics: vec!["task".into(), "reminder".into(), "escalation".into()],
        delivery: "digest".into(),
        digest_at: Some("17:00".into()),
        quiet_from: None,
        quiet_to: None,
    };
    w.prefs.set("p003", body.parse().unwrap()).unwrap();
    // Forty leave requests from the supervisor's five staff through Monday.
    let staff = ["p005", "p006", "p007", "p008", "p009"];
    for i in 0..40u32 {
        let who = staff[i as usize % staff.len()];
        let when = at("2026-03-02T09:00") + Duration::minutes(i as i64 * 10);
        w.svc.submit(who, "absence-and-annual-leave", &leave(11 + i / 8), sig(who, Level::Advanced), when, None, Lang::Zh).unwrap();
        d.run_once(when).unwrap();
    }
    assert!(r.to(&address("p003")).is_empty(), "nothing before the digest's time");
    // 17:00 Macau: one mail for forty items (the first attempt refused, the retry accepted).
    deliver_all(&d, &w, at("2026-03-02T17:00"));
    let mails = r.to(&address("p003"));
    assert_eq!(mails.len(), 1, "one digest, not forty mails");
    let (subject, body) = (mails[0].subject(), mails[0].body());
    assert!(subject.contains("40"), "{subject}");
    assert!(body.contains("Estas são as suas 40 notificações"), "in the supervisor's Portuguese: {body}");
    assert_eq!(body.matches(&format!("{PUBLIC}/cases/")).count(), 40, "every item with its link");
}

#[test]
fn a_kind_turned_off_is_not_sent_and_quiet_hours_hold_mail_until_they_end() {
    let w = world();
    let r = Receiver::start(0);
    let d = dispatcher(&w, &r);
    let off = PreferencesBody { topics: vec!["decided".into()], delivery: "immediate".into(), digest_at: None, quiet_from: None, quiet_to: None };
    w.prefs.set("p018", off.parse().unwrap()).unwrap();
    let quiet = PreferencesBody {
        topics: vec!["task".into()],
        delivery: "immediate".into(),
        digest_at: None,
        quiet_from: Some("20:00".into()),
        quiet_to: Some("08:00".into()),
    };
    w.prefs.set("p020", quiet.parse().unwrap()).unwrap();
    w.svc.submit("doc01", "medical-certificate", &medical_certificate(), sig("doc01", Level::Qualified), at("2026-03-02T22:00"), None, Lang::En).unwrap();
    d.run_once(at("2026-03-02T22:00")).unwrap();
    assert_eq!(r.to(&address("p019")).len(), 1, "p019 chose nothing: immediately");
    assert!(r.to(&address("p018")).is_empty() && r.to(&address("p020")).is_empty());
    d.run_once(at("2026-03-03T07:59")).unwrap();
    assert!(r.to(&address("p020")).is_empty(), "still quiet");
    d.run_once(at("2026-03-03T08:00")).unwrap();
    assert_eq!(r.to(&address("p020")).len(), 1, "sent when the quiet hours end");
    assert!(r.to(&address("p018")).is_empty(), "turned off: never");
}

/// The figures of `docs/notifications.md`: notifications per 1,000 acts with digests off and
/// on, and the delivery rate to a receiver that refuses one message in five at first.
#[test]
fn figures_messages_per_thousand_acts_with_and_without_digests() {
    let mut lines = Vec::new();
    for digest in [false, true] {
        let w = world();
        let r = Receiver::start(0);
        let d = dispatcher(&w, &r);
        if digest {
            for p in common::directory().people() {
                let b = PreferencesBody {
                    topics: vec!["task".into(), "reminder".into(), "escalation".into(), "returned".into(), "decided".into()],
                    delivery: "digest".into(),
                    digest_at: Some("17:00".into()),
                    quiet_from: None,
                    quiet_to: None,
                };
                w.prefs.set(&p.id, b.parse().unwrap()).unwrap();
            }
        }
        let staff = ["p005", "p006", "p007", "p008", "p009"];
        let mut acts = 0usize;
        // One working day: 30 leave requests, each approved by the supervisor and recorded by HR.
        for i in 0..30u32 {
            let who = staff[i as usize % staff.len()];
            let t0 = at("2026-03-02T09:00") + Duration::minutes(i as i64 * 5);
            let c = w.svc.submit(who, "absence-and-annual-leave", &leave(11 + i / 6), sig(who, Level::Advanced), t0, None, Lang::Zh).unwrap().case;
            w.svc
                .act(
                    &c.id,
                    ActRequest {
                        actor: "p003".into(),
                        step: "supervisor".into(),
                        action: Action::Approve,
                        comment: None,
                        signature: sig("p003", Level::Advanced),
                        now: t0 + Duration::minutes(1),
                    },
                    None,
                )
                .unwrap();
            w.svc
                .act(
                    &c.id,
                    ActRequest {
                        actor: "p019".into(),
                        step: "hr-records".into(),
                        action: Action::Sign,
                        comment: None,
                        signature: sig("p019", Level::Simple),
                        now: t0 + Duration::minutes(2),
                    },
                    None,
                )
                .unwrap();
            acts += 3;
            // Every fifth message is refused once.
            if i % 5 == 0 {
                r.refusals_left.fetch_add(1, Ordering::SeqCst);
            }
            d.run_once(t0 + Duration::minutes(2)).unwrap();
        }
        deliver_all(&d, &w, at("2026-03-02T17:00"));
        let notices = notifications(&w).len();
        let mails = r.received().len();
        let tx = r.transactions.load(Ordering::SeqCst);
        let per_1000 = mails as f64 * 1000.0 / acts as f64;
        assert!(mails > 0 && tx >= mails);
        let recipients: std::collections::BTreeSet<String> = notifications(&w).iter().map(|m| m.payload["recipient"].as_str().unwrap().to_string()).collect();
        if digest {
            assert_eq!(mails, recipients.len(), "one digest per person who had anything");
        } else {
            assert_eq!(mails, notices, "one mail per notice");
        }
        lines.push(format!(
            "digests {}: {acts} acts, {notices} notices, {mails} mails ({per_1000:.0} per 1,000 acts); {tx} SMTP transactions, {:.0}% accepted at first try, 100% delivered in the end",
            if digest { "on " } else { "off" },
            100.0 * mails as f64 / tx as f64
        ));
    }
    for l in lines {
        println!("{l}");
    }
}

// ---------------------------------------------------------------------------------------------
// The real server, killed between the commit and the delivery

#[test]
fn a_notification_committed_before_a_crash_is_sent_after_the_restart() {
    use common::crash::{agent, free_port, login, start, submit};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // The mail server is down (nothing listens on its port yet): the notice waits.
    let smtp_port = std::iter::repeat_with(free_port).find(|p| *p != port).unwrap();
    let args = ["--smtp", &format!("smtp://127.0.0.1:{smtp_port}"), "--mail-retry-ms", "200", "--public-url", PUBLIC, "--deadline-seconds", "0"];
    let mut server = start(&data, port, &args);
    let a = agent();
    let token = login(&a, &base, "p005").unwrap();
    let case = submit(&a, &base, &token, "p005", "crash-notify-1").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.kill().expect("SIGKILL");
    server.wait().unwrap();

    let r = Receiver::on(TcpListener::bind(("127.0.0.1", smtp_port)).unwrap(), 1);
    let mut server = start(&data, port, &args);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while r.to(&address("p003")).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.kill().unwrap();
    server.wait().unwrap();
    let mails = r.to(&address("p003"));
    assert_eq!(mails.len(), 1, "the supervisor's task arrives once after the restart");
    assert!(mails[0].body().contains(&format!("{PUBLIC}/cases/{case}")), "{}", mails[0].body());
    assert!(mails[0].body().contains("aguarda por si"), "in Portuguese: {}", mails[0].body());
}

#[test]
fn without_smtp_the_server_starts_and_says_notifications_are_off() {
    let tmp = tempfile::tempdir().unwrap();
    let port = common::crash::free_port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_carimbo"))
        .args([
            "serve",
            "--data",
            tmp.path().join("data").to_str().unwrap(),
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--root",
            common::repo().to_str().unwrap(),
            "--smtp",
            "smtp://user:pw@mail.example.org",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("CARIMBO-E1423") && !err.contains("pw@"), "credentials in the URL are refused without echoing them: {err}");

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_carimbo"))
        .args([
            "serve",
            "--data",
            tmp.path().join("data").to_str().unwrap(),
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--root",
            common::repo().to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut text = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !text.contains("notifications:") && std::time::Instant::now() < deadline {
        let mut l = String::new();
        if reader.read_line(&mut l).unwrap_or(0) == 0 {
            break;
        }
        text.push_str(&l);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(text.contains("notifications: off"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Preferences over the API and the page

#[test]
fn wrong_preferences_are_refused_with_what_is_wrong_and_nothing_changes() {
    let s = common::server::TestServer::start();
    let me = s.login("p003");
    let good = me
        .post("/api/v1/me/notifications", &json!({"topics": ["task"], "delivery": "digest", "digest_at": "16:45", "quiet_from": "21:00", "quiet_to": "07:00"}));
    assert_eq!(good.status, 200, "{}", good.body);
    assert_eq!(good.body["preferences"]["digest_at"], "16:45");
    assert_eq!(good.body["address"], address("p003"));
    assert_eq!(good.body["mail"], false, "this server sends no mail");
    for (body, says) in [
        (json!({"topics": ["tasks"], "delivery": "digest"}), "\"tasks\""),
        (json!({"topics": ["task"], "delivery": "hourly"}), "\"hourly\""),
        (json!({"topics": ["task"], "delivery": "digest", "digest_at": "4pm"}), "digest_at"),
        (json!({"topics": ["task"], "delivery": "immediate", "quiet_from": "22:00"}), "both quiet_from and quiet_to"),
    ] {
        let r = me.post("/api/v1/me/notifications", &body);
        let p = r.problem(422, "CARIMBO-E1420");
        assert!(p["detail"].as_str().unwrap().contains(says), "{says}: {p}");
    }
    let unknown = me.post("/api/v1/me/notifications", &json!({"topics": [], "delivery": "digest", "email": "me@elsewhere.example"}));
    assert!(unknown.problem(422, "CARIMBO-E0704")["detail"].as_str().unwrap().contains("email"), "an unknown member is refused: {}", unknown.body);
    let twice = me.request(
        "POST",
        "/api/v1/me/notifications",
        Some(br#"{"topics": ["task"], "delivery": "digest", "delivery": "immediate"}"#),
        &[("content-type", "application/json")],
    );
    assert_eq!(twice.status, 422, "a repeated member is refused: {}", twice.body);
    let now = me.get("/api/v1/me/notifications");
    assert_eq!(now.body["preferences"], good.body["preferences"], "nothing changed");
    assert_eq!(s.state.preferences.get("p003").delivery, carimbo::notify::Delivery::Digest);

    // The page: the choices shown, a wrong time refused beside the form in the reader's language.
    let browser = s.login("p003").by_cookie();
    let page = browser.get("/me/notifications?lang=pt");
    let html = page.body.as_str().unwrap_or_default().to_string();
    assert!(html.contains("value=\"16:45\"") && html.contains("Horas de silêncio"), "{html}");
    let csrf = browser.csrf.clone().unwrap();
    let form = format!("csrf={csrf}&topic=task&delivery=digest&digest_at=25%3A00");
    let bad =
        browser.no_redirects().request("POST", "/me/notifications?lang=pt", Some(form.as_bytes()), &[("content-type", "application/x-www-form-urlencoded")]);
    assert_eq!(bad.status, 422);
    assert!(bad.body.as_str().unwrap_or_default().contains("não foram guardadas"), "{}", bad.body);
    assert_eq!(s.state.preferences.get("p003").digest_at.format("%H:%M").to_string(), "16:45", "nothing changed");
}

#[test]
fn administrators_see_mail_off_and_the_people_with_no_address() {
    let s = common::server::TestServer::start();
    let admin = s.login("p032");
    let v = admin.get("/api/v1/admin/outbox");
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.body["mail"]["on"], false);
    let without: Vec<&str> = v.body["mail"]["people_without_address"].as_array().unwrap().iter().map(|p| p["person"].as_str().unwrap()).collect();
    assert_eq!(without, ["cand01", "doc01", "doc02"]);
    let page = s.login("p032").by_cookie().get("/admin/outbox?lang=en");
    let html = page.body.as_str().unwrap_or_default();
    assert!(html.contains("People with no e-mail address (3)") && html.contains("doc01") && html.contains("Notifications are off"), "{html}");
}

/// p004 acting for their supervisor p003 from 9 to 13 March 2026, on every form.
fn supervisor_delegation(id: &str) -> carimbo::directory::Delegation {
    let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    carimbo::directory::Delegation {
        id: id.into(),
        delegate: "p004".into(),
        principal: "p003".into(),
        from: day("2026-03-09"),
        to: day("2026-03-13"),
        forms: None,
        reason: None,
    }
}

#[test]
fn a_delegation_set_and_ended_is_announced_to_the_delegate_and_the_principal() {
    use carimbo::directory::Delegation;
    use carimbo::directory::delegation_log::{DelegationEntry, DelegationLog};
    let w = world();
    let r = Receiver::start(1);
    let dir = tempfile::tempdir().unwrap();
    let (log_path, cursor) = (dir.path().join("delegations.jsonl"), dir.path().join("notifications-delegations.json"));
    let log = DelegationLog::new(&log_path);
    let d = supervisor_delegation("out-of-office-1");
    // A line already in the record when mail is turned on is not announced.
    log.append(&DelegationEntry::Set { at: Utc::now(), by: "p003".into(), delegation: Delegation { id: "old".into(), ..d.clone() } }).unwrap();
    let disp = dispatcher(&w, &r).with_delegation_record(&log_path, &cursor).unwrap();
    disp.run_once(at("2026-03-02T09:00")).unwrap();
    assert!(r.received().is_empty());

    // Set by the principal: the delegate is told (the principal did it themself).
    log.append(&DelegationEntry::Set { at: Utc::now(), by: "p003".into(), delegation: d.clone() }).unwrap();
    disp.run_once(at("2026-03-02T09:01")).unwrap();
    assert!(r.received().is_empty(), "the first attempt was refused");
    disp.run_once(at("2026-03-02T09:01") + Duration::seconds(30)).unwrap();
    assert!(r.received().is_empty(), "not before the back-off");
    disp.run_once(at("2026-03-02T09:10")).unwrap();
    let to_delegate = r.to(&address("p004"));
    assert_eq!(to_delegate.len(), 1);
    assert!(to_delegate[0].body().contains("2026-03-09") && to_delegate[0].body().contains("p003"), "{}", to_delegate[0].body());
    assert!(r.to(&address("p003")).is_empty());

    // Ended by an administrator: both are told, once.
    log.append(&DelegationEntry::Ended { at: Utc::now(), by: "p032".into(), id: d.id.clone() }).unwrap();
    disp.run_once(at("2026-03-03T09:00")).unwrap();
    disp.run_once(at("2026-03-03T09:10")).unwrap();
    assert_eq!(r.to(&address("p004")).len(), 2);
    let to_principal = r.to(&address("p003"));
    assert_eq!(to_principal.len(), 1);
    assert!(to_principal[0].body().contains("terminou a substituição"), "in Portuguese: {}", to_principal[0].body());
}

#[test]
fn delegation_mails_wait_for_quiet_hours_and_go_into_the_daily_digest_like_every_notice() {
    use carimbo::directory::delegation_log::{DelegationEntry, DelegationLog};
    let w = world();
    let r = Receiver::start(0);
    let dir = tempfile::tempdir().unwrap();
    let (log_path, cursor) = (dir.path().join("delegations.jsonl"), dir.path().join("notifications-delegations.json"));
    let log = DelegationLog::new(&log_path);
    let disp = dispatcher(&w, &r).with_delegation_record(&log_path, &cursor).unwrap();
    let quiet = PreferencesBody {
        topics: vec!["task".into(), "delegation".into()],
        delivery: "immediate".into(),
        digest_at: None,
        quiet_from: Some("20:00".into()),
        quiet_to: Some("08:00".into()),
    };
    w.prefs.set("p004", quiet.parse().unwrap()).unwrap();
    let digest = PreferencesBody {
        topics: vec!["task".into(), "delegation".into()],
        delivery: "digest".into(),
        digest_at: Some("17:00".into()),
        quiet_from: None,
        quiet_to: None,
    };
    w.prefs.set("p003", digest.parse().unwrap()).unwrap();
    // Monday 21:00 Macau: a leave request waits for the supervisor, and an administrator sets
    // the supervisor's delegation.
    let evening = at("2026-03-02T21:00");
    w.svc.submit("p005", "absence-and-annual-leave", &leave(11), sig("p005", Level::Advanced), evening, None, Lang::Zh).unwrap();
    let d = supervisor_delegation("out-of-office-2");
    log.append(&DelegationEntry::Set { at: evening, by: "p032".into(), delegation: d }).unwrap();
    disp.run_once(evening).unwrap();
    disp.run_once(at("2026-03-03T07:59")).unwrap();
    assert!(r.to(&address("p004")).is_empty(), "the delegate's quiet hours hold the delegation mail");
    assert!(r.to(&address("p003")).is_empty(), "the principal reads it in the digest");
    // The quiet hours end: the delegate is told, once.
    disp.run_once(at("2026-03-03T08:00")).unwrap();
    disp.run_once(at("2026-03-03T08:10")).unwrap();
    let to_delegate = r.to(&address("p004"));
    assert_eq!(to_delegate.len(), 1);
    assert!(to_delegate[0].body().contains("2026-03-09") && to_delegate[0].body().contains("p003"), "{}", to_delegate[0].body());
    assert!(r.to(&address("p003")).is_empty(), "not before the digest's time");
    // 17:00 Macau: one digest with the task and the delegation.
    disp.run_once(at("2026-03-03T17:00")).unwrap();
    disp.run_once(at("2026-03-03T17:10")).unwrap();
    disp.run_once(at("2026-03-04T17:10")).unwrap();
    let mails = r.to(&address("p003"));
    assert_eq!(mails.len(), 1, "one digest, not a mail per item");
    let body = mails[0].body();
    assert!(body.contains("Estas são as suas 2 notificações"), "{body}");
    assert!(body.contains("definiu uma substituição") && body.contains(&format!("{PUBLIC}/me/delegation")), "{body}");
    assert_eq!(body.matches(&format!("{PUBLIC}/cases/")).count(), 1, "{body}");
    assert_eq!(r.to(&address("p004")).len(), 1, "nothing sent twice");
}
