//! The outbox end to end: real signed cases through the API, the dispatcher delivering to local
//! receivers on loopback that fail their first attempts (or always), HMAC signatures checked
//! the way a receiver would, retries with back-off, dead letters listed for administrators and
//! sent again, and the export of a period as CSV and JSON (over the API and with
//! `carimbo export` on the stopped store).

use crate::common;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use carimbo::http::AppState;
use carimbo::outbox::WebhookConfig;
use common::server::{TestServer, leave};
use ring::hmac;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LEAVE: &str = "absence-and-annual-leave";

/// One request a receiver got, and what it answered.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
    answered: u16,
}

/// A webhook receiver on a loopback port: answers 503 to its first `fail_first` requests (all of
/// them while `fail_all` is set), 200 after, and keeps every request.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    fail_all: Arc<AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct ReceiverState {
    got: Arc<Mutex<Vec<Received>>>,
    fail_first: usize,
    seen: Arc<AtomicUsize>,
    fail_all: Arc<AtomicBool>,
}

async fn receive(State(s): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = s.seen.fetch_add(1, Ordering::SeqCst);
    let status = if n < s.fail_first || s.fail_all.load(Ordering::SeqCst) { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    s.got.lock().unwrap().push(Received { headers, body: body.to_vec(), answered: status.as_u16() });
    status
}

impl Receiver {
    fn start(fail_first: usize, fail_all: bool) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let state = ReceiverState { got: Arc::default(), fail_first, seen: Arc::default(), fail_all: Arc::new(AtomicBool::new(fail_all)) };
        let (got, flag) = (state.got.clone(), state.fail_all.clone());
        let app = Router::new().route("/hook", post(receive)).with_state(state);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, got, fail_all: flag, _runtime: runtime }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The messages answered 200, as JSON, by delivery id.
    fn accepted(&self) -> Vec<(String, Value)> {
        self.received()
            .into_iter()
            .filter(|r| r.answered == 200)
            .map(|r| (r.headers["x-carimbo-delivery"].to_str().unwrap().to_string(), serde_json::from_slice(&r.body).unwrap()))
            .collect()
    }
}

/// Checks a request's signature as a receiver would: HMAC-SHA256 of "timestamp.body" under the
/// shared secret, compared in constant time by `ring::hmac::verify`.
fn signature_ok(r: &Received, secret: &[u8]) -> bool {
    let ts = r.headers["x-carimbo-timestamp"].to_str().unwrap();
    let sig = r.headers["x-carimbo-signature"].to_str().unwrap();
    let Some(tag) = sig.strip_prefix("sha256=").and_then(|h| hex::decode(h).ok()) else { return false };
    let signed = [ts.as_bytes(), b".", &r.body].concat();
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret), &signed, &tag).is_ok()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const PAYROLL_SECRET: &str = "payroll-secret-0123456789abcdef";
const ARCHIVE_SECRET: &str = "archive-secret-0123456789abcdef";

/// A server whose outbox goes to `payroll` (every kind) and `archive` (finished cases only),
/// retrying 3 times 100 → 200 ms apart.
fn server_with_webhooks(payroll: &Receiver, archive: &Receiver) -> (TestServer, std::thread::JoinHandle<()>, Arc<AtomicBool>) {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("payroll.key"), format!("{PAYROLL_SECRET}\n")).unwrap();
    std::fs::write(data.path().join("archive.key"), ARCHIVE_SECRET).unwrap();
    let config = json!({
        "endpoints": [
            {"name": "payroll", "url": payroll.url, "secret_file": "payroll.key"},
            {"name": "archive", "url": archive.url, "secret_file": "archive.key", "kinds": ["case.completed", "case.rejected", "case.withdrawn"]},
        ],
        "retry": {"max_attempts": 3, "first_delay_ms": 100, "max_delay_ms": 200},
        "timeout_seconds": 5,
    });
    let file = data.path().join("webhooks.json");
    std::fs::write(&file, config.to_string()).unwrap();
    let mut state = AppState::open(common::demo_paths(&common::repo(), data.path())).unwrap();
    let (thread, stop) = state.start_webhooks(WebhookConfig::load(&file).unwrap(), Duration::from_millis(50));
    (TestServer::serve(Arc::new(state), data), thread, stop)
}

/// A leave request submitted by p005, approved by its supervisor and recorded by HR: completed.
fn completed_leave(s: &TestServer, key: &str) -> String {
    let staff = s.login("p005");
    let id = staff.submit_ok(LEAVE, &leave(2), key);
    let r = s.login("p003").act(&id, "supervisor", "approve");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.login("p018").post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "hr-records", "action": "sign"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["case"]["status"], "completed");
    id
}

#[test]
fn messages_reach_a_receiver_that_fails_first_signed_and_once_each_and_dead_letters_are_sent_again() {
    let payroll = Receiver::start(2, false);
    let archive = Receiver::start(0, true);
    let (s, thread, stop) = server_with_webhooks(&payroll, &archive);

    let done = completed_leave(&s, "done");
    let staff = s.login("p005");
    let withdrawn = staff.submit_ok(LEAVE, &leave(1), "withdrawn");
    let r = staff.post(&format!("/api/v1/cases/{withdrawn}/withdraw"), &json!({"reason": "plans changed"}));
    assert_eq!(r.status, 200, "{}", r.body);

    // payroll: two decisions and the completion of `done`, the withdrawal: four messages.
    wait_for("payroll to accept four messages", Duration::from_secs(30), || payroll.accepted().len() >= 4);
    let accepted = payroll.accepted();
    let ids: Vec<&str> = accepted.iter().map(|(id, _)| id.as_str()).collect();
    let kinds: Vec<&str> = accepted.iter().map(|(_, m)| m["kind"].as_str().unwrap()).collect();
    assert_eq!(accepted.len(), 4, "each message once after its success: {ids:?}");
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(sorted, ["case.completed", "case.withdrawn", "decision", "decision"]);
    // The first two attempts were refused and tried again: six requests for four messages.
    let all = payroll.received();
    assert_eq!(all.iter().filter(|r| r.answered == 503).count(), 2);
    for r in &all {
        assert!(signature_ok(r, PAYROLL_SECRET.as_bytes()), "every request carries a valid signature");
        assert!(!signature_ok(r, b"another-secret-0123456789"), "and only under the payroll secret");
        assert_eq!(r.headers["content-type"], "application/json");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.headers["x-carimbo-delivery"].to_str().unwrap(), body["id"], "the delivery id is the message id");
        assert_eq!(r.headers["x-carimbo-event"].to_str().unwrap(), body["kind"]);
    }
    // What payroll needs is in the messages.
    let completed = &accepted.iter().find(|(_, m)| m["kind"] == "case.completed").unwrap().1;
    assert_eq!(completed["case_id"], done.as_str());
    assert_eq!(completed["payload"]["form_id"], LEAVE);
    assert_eq!(completed["payload"]["submitter"], "p005");
    assert_eq!(completed["payload"]["department"], "DAF");
    assert_eq!(completed["payload"]["data"]["working_days"], 2);
    let decisions = completed["payload"]["decisions"].as_array().unwrap();
    assert_eq!(decisions.iter().map(|d| d["step"].as_str().unwrap()).collect::<Vec<_>>(), ["supervisor", "hr-records"]);
    let approval = &accepted.iter().find(|(_, m)| m["kind"] == "decision" && m["payload"]["step"] == "supervisor").unwrap().1;
    assert_eq!(
        (approval["payload"]["actor"].as_str(), approval["payload"]["action"].as_str(), approval["payload"]["level"].as_str()),
        (Some("p003"), Some("approve"), Some("qualified"))
    );
    let w = &accepted.iter().find(|(_, m)| m["kind"] == "case.withdrawn").unwrap().1;
    assert_eq!((w["case_id"].as_str(), w["payload"]["reason"].as_str()), (Some(withdrawn.as_str()), Some("plans changed")));

    // archive refused everything: after 3 attempts each, the two finished cases are dead letters.
    let admin = s.login("p032");
    wait_for("two dead letters", Duration::from_secs(30), || admin.get("/api/v1/admin/outbox").body["dead_letters"].as_array().is_some_and(|d| d.len() == 2));
    let view = admin.get("/api/v1/admin/outbox").body;
    let dead = view["dead_letters"].as_array().unwrap();
    for d in dead {
        assert_eq!(d["deliveries"]["archive"]["state"], "dead", "{d}");
        assert_eq!(d["deliveries"]["archive"]["attempts"], 3, "{d}");
        assert_eq!(d["deliveries"]["archive"]["last_status"], 503, "{d}");
        assert!(d["deliveries"]["archive"]["last_error"].as_str().unwrap().contains("503"), "{d}");
        assert_eq!(d["deliveries"]["payroll"]["state"], "delivered", "payroll got it all the same: {d}");
    }
    assert_eq!(archive.received().len(), 6, "3 attempts for each of 2 messages, no more");
    let archive_times: Vec<_> = archive.received().iter().map(|r| r.headers["x-carimbo-timestamp"].to_str().unwrap().to_string()).collect();
    assert!(!archive_times.is_empty());
    let names: Vec<&str> = view["webhooks"]["endpoints"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["payroll", "archive"]);
    assert!(!view.to_string().contains(ARCHIVE_SECRET) && !view.to_string().contains(PAYROLL_SECRET), "no secret in the status");
    assert_eq!(view["pending"], 0);

    // The page shows them to the administrator, and not to staff.
    let page = admin.get("/admin/outbox");
    assert_eq!(page.status, 200);
    let html = page.body.as_str().unwrap();
    assert!(dead.iter().all(|d| html.contains(d["id"].as_str().unwrap())), "every dead letter is on the page");
    assert_eq!(staff.get("/admin/outbox").status, 403);
    staff.get("/api/v1/admin/outbox").problem(403, "CARIMBO-E0702");

    // A bad retry changes nothing; then the archive is back and the admin sends them again.
    let ids: Vec<Value> = dead.iter().map(|d| d["id"].clone()).collect();
    let r = admin.post("/api/v1/admin/outbox/retry", &json!({"ids": [ids[0], "C-none/9/0"]}));
    r.problem(404, "CARIMBO-E1003");
    assert_eq!(admin.get("/api/v1/admin/outbox").body["dead_letters"].as_array().unwrap().len(), 2, "nothing was retried");
    admin.post("/api/v1/admin/outbox/retry", &json!({"ids": []})).problem(422, "CARIMBO-E0704");
    staff.post("/api/v1/admin/outbox/retry", &json!({"ids": ids})).problem(403, "CARIMBO-E0702");
    archive.fail_all.store(false, Ordering::SeqCst);
    let r = admin.post("/api/v1/admin/outbox/retry", &json!({"ids": ids}));
    assert_eq!((r.status, &r.body["retried"]), (200, &json!(2)), "{}", r.body);
    wait_for("the archive to accept both", Duration::from_secs(30), || archive.accepted().len() == 2);
    wait_for("no dead letters", Duration::from_secs(10), || admin.get("/api/v1/admin/outbox").body["dead_letters"].as_array().is_some_and(|d| d.is_empty()));
    let mut archived: Vec<String> = archive.accepted().iter().map(|(_, m)| m["case_id"].as_str().unwrap().to_string()).collect();
    archived.sort();
    let mut expected = vec![done.clone(), withdrawn.clone()];
    expected.sort();
    assert_eq!(archived, expected);
    for r in archive.received() {
        assert!(signature_ok(&r, ARCHIVE_SECRET.as_bytes()));
    }
    assert_eq!(payroll.accepted().len(), 4, "payroll was not sent anything again");

    // The export of the period: the same four messages, in CSV and JSON.
    let today = chrono::Utc::now().date_naive();
    let since = (today - chrono::Duration::days(1)).to_string();
    let csv = admin.get(&format!("/api/v1/admin/export?since={since}&format=csv"));
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = csv.body.as_str().unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, carimbo::outbox::CSV_COLUMNS);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4, "{text}");
    let completed_row = rows.iter().find(|r| &r[2] == "case.completed").unwrap();
    assert_eq!((&completed_row[3], &completed_row[4], &completed_row[6], &completed_row[7]), (done.as_str(), LEAVE, "DAF", "p005"));
    let payload: Value = serde_json::from_str(&completed_row[16]).unwrap();
    assert_eq!(payload["data"]["working_days"], 2, "the payload column holds the whole message");
    let json = admin.get(&format!("/api/v1/admin/export?since={since}&format=json&kind=decision"));
    assert_eq!(json.status, 200);
    let list = json.body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|m| m["kind"] == "decision"));
    let later = admin.get(&format!("/api/v1/admin/export?since={}&format=json", today + chrono::Duration::days(2)));
    assert_eq!(later.body, json!([]), "nothing after today");
    for (query, says) in [
        ("since=yesterday", "since \"yesterday\""),
        ("since=2026-01-01&format=xml", "csv or json"),
        ("since=2026-01-01&kind=case.opened", "case.opened"),
        ("since=2026-02-01&until=2026-01-01", "later than"),
        ("format=csv", "since"),
    ] {
        let r = admin.get(&format!("/api/v1/admin/export?{query}"));
        let p = r.problem(400, "CARIMBO-E1002");
        assert!(p["detail"].as_str().unwrap().contains(says), "{query}: {p}");
    }
    staff.get(&format!("/api/v1/admin/export?since={since}")).problem(403, "CARIMBO-E0702");

    stop.store(true, Ordering::SeqCst);
    thread.join().unwrap();
}

#[test]
fn carimbo_export_writes_the_period_from_a_stopped_store_and_refuses_bad_arguments() {
    let data = tempfile::tempdir().unwrap();
    let state = Arc::new(AppState::open(common::demo_paths(&common::repo(), data.path())).unwrap());
    let s = TestServer::serve(state, tempfile::tempdir().unwrap());
    let done = completed_leave(&s, "done");
    drop(s);

    let bin = env!("CARGO_BIN_EXE_carimbo");
    let since = (chrono::Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    let out = data.path().join("export.csv");
    let run = std::process::Command::new(bin)
        .args(["export", "--since", &since, "--format", "csv", "--data"])
        .arg(data.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stderr).contains("exported 3 messages"), "{}", String::from_utf8_lossy(&run.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(text.as_bytes()).records().map(Result::unwrap).collect();
    assert_eq!(rows.iter().map(|r| r[2].to_string()).collect::<Vec<_>>(), ["decision", "decision", "case.completed"], "oldest first");
    assert!(rows.iter().all(|r| &r[3] == done.as_str()));

    let json = std::process::Command::new(bin)
        .args(["export", "--since", &since, "--format", "json", "--kind", "case.completed", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(json.status.success());
    let list: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["payload"]["status"], "completed");

    for (args, says) in [
        (vec!["--since", "soon"], "--since \"soon\""),
        (vec!["--since", "2026-01-01", "--format", "xlsx"], "csv or json"),
        (vec!["--since", "2026-01-01", "--kind", "everything"], "everything"),
    ] {
        let bad = data.path().join("bad.csv");
        let r = std::process::Command::new(bin).arg("export").args(&args).arg("--data").arg(data.path()).arg("--out").arg(&bad).output().unwrap();
        assert!(!r.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains(says) && err.contains("CARIMBO-E1002"), "{args:?}: {err}");
        assert!(!bad.exists() && !bad.with_extension("partial").exists(), "no file is left behind");
    }
    let r = std::process::Command::new(bin).args(["export", "--since", "2026-01-01", "--data"]).arg(data.path().join("nowhere")).output().unwrap();
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("no sled store in"), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn a_server_refuses_to_start_on_a_bad_webhook_file() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("webhooks.json");
    std::fs::write(&file, r#"{"endpoints":[{"name":"payroll","url":"http://127.0.0.1:9/h","secret_env":"CARIMBO_TEST_UNSET_SECRET_VAR"}]}"#).unwrap();
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_carimbo"))
        .args(["serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(common::repo())
        .arg("--data")
        .arg(data.path())
        .arg("--webhooks")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("CARIMBO_TEST_UNSET_SECRET_VAR") && err.contains("CARIMBO-E1001"), "{err}");
}
