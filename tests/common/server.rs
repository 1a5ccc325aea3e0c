//! The real carimbo server on a random loopback port, and a small blocking HTTP client, for the
//! black-box API tests (`tests/api_*.rs`).
//!
//! `TestServer::start` opens `AppState` on a sled store in a temporary directory with the shipped
//! `forms/`, `workflows/` and `seeds/`, and serves it with `carimbo::http::serve_on` on its own
//! tokio runtime in a background thread; dropping it shuts the server down gracefully. Tests talk
//! to it only over HTTP (`Client`), except where a test needs what a person would read off their
//! phone (the current TOTP code).

use super::{person, repo};
use carimbo::http::{AppState, DEMO_PASSWORD, Paths};
use carimbo::signing::DeviceRule;
use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
use serde_json::{Value, json};
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct TestServer {
    pub base: String,
    pub state: Arc<AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    _data: tempfile::TempDir,
}

impl TestServer {
    /// The case as the server holds it now.
    pub fn case(&self, id: &str) -> carimbo::workflow::Case {
        self.state.cases.case(id).expect("the case")
    }

    /// The signature record of the last act on `step`, from the stored events.
    pub fn signature_of(&self, id: &str, step: &str) -> carimbo::workflow::SignatureRecord {
        let events = self.state.cases.store().events(id).expect("the events");
        events
            .iter()
            .rev()
            .find_map(|e| match serde_json::from_value::<carimbo::workflow::CaseEvent>(e.body.clone()) {
                Ok(carimbo::workflow::CaseEvent::Acted { step: acted, signature, .. }) if acted == step => Some(signature),
                _ => None,
            })
            .unwrap_or_else(|| panic!("someone acted on {step}"))
    }

    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    /// Starts the server after `configure` has set what `carimbo serve`'s flags would, the
    /// device rule relaxed for the demo (`common::demo_paths`).
    pub fn start_with(configure: impl FnOnce(&mut AppState)) -> TestServer {
        Self::start_with_rule(DeviceRule::RelaxedForDemo, configure)
    }

    /// As `start_with`, the device rule enforced: `qualified` needs a key on a qualified device.
    pub fn start_enforced_with(configure: impl FnOnce(&mut AppState)) -> TestServer {
        Self::start_with_rule(DeviceRule::Enforced, configure)
    }

    fn start_with_rule(rule: DeviceRule, configure: impl FnOnce(&mut AppState)) -> TestServer {
        let data = tempfile::tempdir().expect("a temporary data directory");
        let mut paths = Paths::from_root(&repo(), data.path());
        paths.device_rule = rule;
        let mut state = AppState::open(paths).expect("the server state opens");
        configure(&mut state);
        Self::serve(Arc::new(state), data)
    }

    /// Serves an already opened state (the benchmark opens its own).
    pub fn serve(state: Arc<AppState>, data: tempfile::TempDir) -> TestServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let base = format!("http://{}", listener.local_addr().expect("the bound address"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                carimbo::http::serve_on(served, listener, async {
                    let _ = rx.await;
                })
                .await
            })
        });
        TestServer { base, state, shutdown: Some(tx), thread: Some(thread), _data: data }
    }

    /// A client that is not signed in.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.base)
    }

    /// A client signed in as `person` with the demo password, using the bearer token.
    pub fn login(&self, person: &str) -> Client {
        let mut c = self.anonymous();
        let r = c.post("/api/v1/session", &json!({"person": person, "password": DEMO_PASSWORD}));
        assert_eq!(r.status, 200, "login as {person}: {}", r.body);
        c.token = Some(r.body["token"].as_str().expect("a token").to_string());
        c.csrf = r.body["csrf"].as_str().map(str::to_string);
        c.person = Some(person.to_string());
        c
    }

    /// The code the person's authenticator app would show now.
    pub fn totp_now(&self, person: &str) -> String {
        self.state.accounts.current_totp_for_tests(person, Utc::now()).expect("a second factor is enrolled or enrolling")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the server answered: status, headers, and the body as JSON (`Value::Null` when the body
/// is empty; a JSON string holding the text when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the reply is a problem (RFC 9457) with this status and code, and returns it.
    pub fn problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status, status, "expected {status} {code}, got: {}", self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.body);
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert_eq!(self.body["status"], status, "{}", self.body);
        for lang in ["zh", "pt", "en"] {
            assert!(self.body["messages"][lang].as_str().is_some_and(|m| !m.is_empty()), "a {lang} message: {}", self.body);
        }
        &self.body
    }
}

/// A blocking HTTP client, signed in by bearer token (or by cookie, to test the browser path).
pub struct Client {
    agent: ureq::Agent,
    base: String,
    pub person: Option<String>,
    pub token: Option<String>,
    pub csrf: Option<String>,
    /// Send the session as the cookie instead of a bearer token.
    pub by_cookie: bool,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Client { agent, base: base.to_string(), person: None, token: None, csrf: None, by_cookie: false }
    }

    /// The same client, not following redirects (to see a page's 303 itself).
    pub fn no_redirects(mut self) -> Client {
        self.agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        self
    }

    /// The same client, sending its session as the cookie (as a browser does) instead of a bearer token.
    pub fn by_cookie(mut self) -> Client {
        self.by_cookie = true;
        self
    }

    pub fn person(&self) -> &str {
        self.person.as_deref().expect("a signed-in client")
    }

    fn auth<B>(&self, mut req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        if let Some(t) = &self.token {
            req = if self.by_cookie {
                req.header("cookie", format!("{}={t}", carimbo::http::auth::SESSION_COOKIE))
            } else {
                req.header("authorization", format!("Bearer {t}"))
            };
        }
        req
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>, headers: &[(&str, &str)]) -> Reply {
        let url = format!("{}{path}", self.base);
        let response = match method {
            "GET" | "DELETE" | "HEAD" => {
                let mut req = match method {
                    "GET" => self.agent.get(&url),
                    "HEAD" => self.agent.head(&url),
                    _ => self.agent.delete(&url),
                };
                req = self.auth(req);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.call()
            }
            _ => {
                let mut req = match method {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    "PATCH" => self.agent.patch(&url),
                    other => panic!("no {other} in the test client"),
                };
                req = self.auth(req);
                let mut typed = false;
                for (k, v) in headers {
                    typed |= k.eq_ignore_ascii_case("content-type");
                    req = req.header(*k, *v);
                }
                if !typed {
                    req = req.header("content-type", "application/json");
                }
                match body {
                    Some(b) => req.send(b),
                    None => req.send_empty(),
                }
            }
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.body_mut().with_config().limit(64 * 1024 * 1024).read_to_string().unwrap_or_default();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Reply { status, headers, body }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None, &[])
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, None, &[])
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_with(path, body, &[])
    }

    pub fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
        let csrf = self.csrf.clone();
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if self.by_cookie
            && let Some(c) = csrf.as_deref()
            && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("x-csrf-token"))
        {
            all.push(("x-csrf-token", c));
        }
        self.request("POST", path, Some(body.to_string().as_bytes()), &all)
    }

    // ---- signing: what the page does with WebCrypto, done here with the demo keys

    /// Fetches the payload for `what` (a `/api/v1/signing-payload` request) and returns it with
    /// this person's JAdES signature, ready to send as `signed`.
    pub fn sign(&self, what: &Value) -> Value {
        let r = self.post("/api/v1/signing-payload", what);
        assert_eq!(r.status, 200, "signing payload for {what}: {}", r.body);
        sign_as(self.person(), &r.body)
    }

    /// Submits a form, signed with this person's demo key.
    pub fn submit(&self, form: &str, data: &Value, key: &str) -> Reply {
        let signed = self.sign(&json!({"kind": "submit", "form": form, "data": data, "idempotency_key": key}));
        self.post("/api/v1/cases", &json!({"form": form, "data": data, "idempotency_key": key, "signed": signed}))
    }

    /// Submits and asserts the case was opened; returns the case id.
    pub fn submit_ok(&self, form: &str, data: &Value, key: &str) -> String {
        let r = self.submit(form, data, key);
        assert_eq!(r.status, 201, "submit {form}: {}", r.body);
        r.body["case"]["id"].as_str().expect("a case id").to_string()
    }

    /// Acts on a step with a signature made now by this person's demo key.
    pub fn act(&self, case: &str, step: &str, action: &str) -> Reply {
        self.act_with(case, step, action, json!({}))
    }

    /// Acts with extra body fields (`comment`, `totp`, `idempotency_key`).
    pub fn act_with(&self, case: &str, step: &str, action: &str, extra: Value) -> Reply {
        let signed = self.sign(&json!({"kind": "act", "case": case, "step": step, "action": action}));
        let mut body = json!({"step": step, "action": action, "signed": signed});
        merge(&mut body, extra);
        self.post(&format!("/api/v1/cases/{case}/acts"), &body)
    }

    pub fn case(&self, id: &str) -> Reply {
        self.get(&format!("/api/v1/cases/{id}"))
    }
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(o), Value::Object(e)) = (into.as_object_mut(), extra) {
        o.extend(e);
    }
}

/// Signs a `/api/v1/signing-payload` answer as `id` (its `canonical` bytes), giving the
/// `{payload, signature}` object the API takes.
pub fn sign_as(id: &str, payload_reply: &Value) -> Value {
    let canonical = payload_reply["canonical"].as_str().expect("the canonical payload");
    let jws = person(id).sign(canonical.as_bytes(), Utc::now()).expect("the demo key signs");
    json!({"payload": payload_reply["payload"], "signature": serde_json::from_str::<Value>(&jws.to_json()).expect("JWS JSON")})
}

/// A working week at least two weeks ahead with no public holiday in it, as (Monday, Friday).
pub fn clear_week() -> (NaiveDate, NaiveDate) {
    let calendar: Value = super::read_json(&repo().join("forms/reference/macau-public-holidays.json"));
    let holidays: Vec<String> = calendar["holidays"].as_array().into_iter().flatten().filter_map(|h| h["date"].as_str().map(str::to_string)).collect();
    let mut monday = Utc::now().date_naive() + Duration::days(14);
    while monday.weekday() != Weekday::Mon {
        monday += Duration::days(1);
    }
    loop {
        let week: Vec<String> = (0..5).map(|d| (monday + Duration::days(d)).to_string()).collect();
        if !week.iter().any(|d| holidays.contains(d)) {
            return (monday, monday + Duration::days(4));
        }
        monday += Duration::days(7);
    }
}

/// An annual-leave request for `days` working days (1 to 5) of a clear week.
pub fn leave(days: i64) -> Value {
    let (monday, _) = clear_week();
    json!({"leave_type": "annual", "start_date": monday.to_string(), "end_date": (monday + Duration::days(days - 1)).to_string()})
}
