//! Two `carimbo serve` processes on one PostgreSQL database, as behind a load balancer: a leave
//! request is submitted through one, then 32 clients approve the same supervisor step through
//! both at once, each with a payload signed by the supervisor (p003). Exactly one act wins; the
//! other 31 get a 409 problem; the case's log holds exactly one new `acted` event and its hash
//! chain verifies.
//!
//! Needs `CARIMBO_TEST_PG` (see docs/storage.md); prints a SKIPPED line and passes without it.

use crate::common;

use carimbo::store::{PgStore, Store};
use chrono::Utc;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const PASSWORD: &str = carimbo::http::DEMO_PASSWORD;
const FORM: &str = "absence-and-annual-leave";

/// One `carimbo serve` child process with its own data directory (its accounts file).
struct Server {
    child: Child,
    port: u16,
    data: tempfile::TempDir,
}

impl Server {
    fn start(conn: &str, schema: &str) -> Server {
        let data = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(data.path().join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_carimbo"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .arg("--data")
            .arg(data.path().join("data"))
            .arg("--root")
            .arg(common::repo())
            .args(["--store", conn, "--pg-schema", schema])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("carimbo starts");
        Server { child, port, data }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("server.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("carimbo serve on port {} exited with {status}:\n{}", self.port, self.log());
            }
            if let Ok((200, _)) = try_http(self.port, "GET", "/api/v1/openapi.json", None, None) {
                return;
            }
            assert!(Instant::now() < deadline, "carimbo serve on port {} did not answer within 120 s:\n{}", self.port, self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        try_http(self.port, method, path, token, body).unwrap_or_else(|e| panic!("{method} {path} on port {}: {e}\n{}", self.port, self.log()))
    }

    fn login(&self, person: &str) -> String {
        let (status, body) = self.call("POST", "/api/v1/session", None, Some(&json!({"person": person, "password": PASSWORD})));
        assert_eq!(status, 200, "login of {person}: {body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// Fetches the payload for `request`, signs its canonical bytes as `person`, and returns the
    /// `signed` member of the request that follows.
    fn signed(&self, token: &str, person: &str, request: &Value) -> Value {
        let (status, body) = self.call("POST", "/api/v1/signing-payload", Some(token), Some(request));
        assert_eq!(status, 200, "signing payload: {body}");
        let canonical = body["canonical"].as_str().unwrap();
        let signature = common::person(person).sign(canonical.as_bytes(), Utc::now()).unwrap();
        json!({"payload": body["payload"], "signature": signature})
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 exchange on a fresh connection: status and JSON body (`null` if none).
fn try_http(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> std::io::Result<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut payload = raw[split + 4..].to_vec();
    let status: u16 = head.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        payload = dechunk(&payload);
    }
    Ok((status, serde_json::from_slice(&payload).unwrap_or(Value::Null)))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

fn acted_events(store: &PgStore, case: &str) -> usize {
    store.events(case).unwrap().iter().filter(|e| e.body["type"] == "acted").count()
}

#[test]
fn two_processes_on_one_database_let_exactly_one_of_32_concurrent_approvals_win() {
    let Ok(conn) = std::env::var("CARIMBO_TEST_PG") else {
        let _ = writeln!(std::io::stderr().lock(), "SKIPPED two_processes_on_one_database_…: CARIMBO_TEST_PG is not set (see docs/storage.md)");
        return;
    };
    let schema = format!("t_two_processes_{}_{}", std::process::id(), Utc::now().timestamp_micros());
    let result = std::panic::catch_unwind(|| run(&conn, &schema));
    if let Ok(mut c) = postgres::Client::connect(&conn, postgres::NoTls) {
        let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn run(conn: &str, schema: &str) {
    // Both start at once: they race to apply the schema migrations and to store the definitions.
    let mut servers = [Server::start(conn, schema), Server::start(conn, schema)];
    for s in &mut servers {
        s.wait_ready();
    }
    let [a, b] = &servers;

    // p005 submits a leave request through process A, signed at the level the workflow demands.
    let staff = a.login("p005");
    let data = json!({"leave_type": "annual", "start_date": "2026-12-07", "end_date": "2026-12-11", "substitute": "Wong Ka Man"});
    let key = format!("two-processes-{}", Utc::now().timestamp_micros());
    let signed = a.signed(&staff, "p005", &json!({"kind": "submit", "form": FORM, "data": data, "idempotency_key": key}));
    let (status, body) = a.call("POST", "/api/v1/cases", Some(&staff), Some(&json!({"form": FORM, "data": data, "idempotency_key": key, "signed": signed})));
    assert_eq!(status, 201, "submission: {body}");
    let case = body["case"]["id"].as_str().expect("a case id").to_string();

    // Process B sees the case A wrote: the supervisor's inbox there holds it.
    let supervisor = [a.login("p003"), b.login("p003")];
    let (status, inbox) = b.call("GET", "/api/v1/inbox", Some(&supervisor[1]), None);
    assert_eq!(status, 200, "{inbox}");
    assert!(inbox.to_string().contains(&case), "process B's inbox for p003 holds {case}: {inbox}");

    let store = PgStore::open_in_schema(conn, schema).unwrap();
    let before = store.events(&case).unwrap().len();
    assert_eq!(acted_events(&store, &case), 0);

    // 32 clients, half on each process: all fetch and sign the same payload, then race.
    let act = json!({"kind": "act", "case": case, "step": "supervisor", "action": "approve"});
    let barrier = Arc::new(Barrier::new(32));
    let outcomes: Vec<(usize, u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let (server, token, barrier, act, case) = (&servers[i % 2], &supervisor[i % 2], barrier.clone(), &act, &case);
                scope.spawn(move || {
                    let signed = server.signed(token, "p003", act);
                    let body = json!({"step": "supervisor", "action": "approve", "comment": format!("client {i}"), "signed": signed});
                    barrier.wait();
                    let (status, answer) = server.call("POST", &format!("/api/v1/cases/{case}/acts"), Some(token), Some(&body));
                    (i, status, answer)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let winners: Vec<_> = outcomes.iter().filter(|(_, s, _)| (200..300).contains(s)).collect();
    let conflicts: Vec<_> = outcomes.iter().filter(|(_, s, _)| *s == 409).collect();
    let summary: Vec<String> = outcomes.iter().map(|(i, s, b)| format!("client {i}: {s} {}", b["code"].as_str().unwrap_or(""))).collect();
    assert_eq!(winners.len(), 1, "exactly one approval wins: {summary:#?}");
    assert_eq!(conflicts.len(), 31, "the others are refused with 409: {summary:#?}");
    for (_, _, problem) in &conflicts {
        assert!(problem["code"].as_str().is_some_and(|c| c.starts_with("CARIMBO-E")), "a 409 is a problem document: {problem}");
    }
    let (winner, _, _) = winners[0];
    println!(
        "two processes: client {winner} (process {}) won; 31 got 409 ({} through A, {} through B)",
        if winner % 2 == 0 { "A" } else { "B" },
        conflicts.iter().filter(|(i, _, _)| i % 2 == 0).count(),
        conflicts.iter().filter(|(i, _, _)| i % 2 == 1).count()
    );

    // The log: exactly one new `acted` event, by p003, with the winner's comment; chain intact.
    let events = store.events(&case).unwrap();
    assert_eq!(acted_events(&store, &case), 1);
    let acted = events.iter().find(|e| e.body["type"] == "acted").unwrap();
    assert_eq!(acted.body["actor"], "p003");
    assert_eq!(acted.body["comment"], format!("client {winner}"));
    assert!(events.len() > before, "the winning act appended its events");
    store.verify_case(&case).unwrap();
    assert!(store.verify_all().unwrap().is_clean());

    // Both processes now show the step as done: p003's inbox no longer holds the case.
    for (server, token) in servers.iter().zip(&supervisor) {
        let (_, inbox) = server.call("GET", "/api/v1/inbox", Some(token), None);
        assert!(!inbox.to_string().contains(&case), "the approved step left p003's inbox on port {}: {inbox}", server.port);
    }
}

#[test]
fn a_definition_published_through_one_process_is_served_by_the_other_and_after_a_restart() {
    let Ok(conn) = std::env::var("CARIMBO_TEST_PG") else {
        let _ = writeln!(std::io::stderr().lock(), "SKIPPED a_definition_published_through_one_process_…: CARIMBO_TEST_PG is not set (see docs/storage.md)");
        return;
    };
    let schema = format!("t_two_publish_{}_{}", std::process::id(), Utc::now().timestamp_micros());
    let result = std::panic::catch_unwind(|| run_publication(&conn, &schema));
    if let Ok(mut c) = postgres::Client::connect(&conn, postgres::NoTls) {
        let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// The version of the leave form a process serves.
fn served_version(server: &Server, token: &str) -> String {
    let (status, form) = server.call("GET", &format!("/api/v1/forms/{FORM}"), Some(token), None);
    assert_eq!(status, 200, "{form}");
    form["version"].as_str().unwrap_or_default().to_string()
}

fn run_publication(conn: &str, schema: &str) {
    let mut servers = [Server::start(conn, schema), Server::start(conn, schema)];
    for s in &mut servers {
        s.wait_ready();
    }
    let [a, b] = &servers;
    let (staff_a, staff_b) = (a.login("p005"), b.login("p005"));
    assert_eq!(served_version(b, &staff_b), "1.0.0");

    // Version 1.1.0 makes `substitute` required; published through A by the administrator.
    let mut form = common::leave_form();
    form["version"] = json!("1.1.0");
    form["schema"]["required"].as_array_mut().unwrap().push(json!("substitute"));
    for example in form["examples"]["valid"].as_array_mut().unwrap() {
        if example["data"].get("substitute").is_none() {
            example["data"]["substitute"] = json!("Wong Ka Man");
        }
    }
    let upload = json!({"files": [{"name": format!("{FORM}.json"), "content": form.to_string()}]});
    let (status, body) = a.call("POST", "/api/v1/admin/definitions", Some(&a.login("p032")), Some(&upload));
    assert_eq!((status, body["applied"].clone()), (200, json!(true)), "{body}");
    assert_eq!(served_version(a, &staff_a), "1.1.0");

    // Process B refuses a request without a substitute at once (it asks the store before a
    // submission) and serves 1.1.0 within a second or so everywhere else.
    let data = json!({"leave_type": "annual", "start_date": "2026-12-07", "end_date": "2026-12-11"});
    let request = json!({"kind": "submit", "form": FORM, "data": data, "idempotency_key": "no-substitute"});
    let (status, problem) = b.call("POST", "/api/v1/signing-payload", Some(&staff_b), Some(&request));
    assert_eq!((status, problem["errors"][0]["pointer"].as_str()), (422, Some("/substitute")), "{problem}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_version(b, &staff_b) != "1.1.0" {
        assert!(Instant::now() < deadline, "process B never served the published 1.1.0");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Both publishers' records are one history: B lists what A published.
    let (status, history) = b.call("GET", "/api/v1/admin/publications", Some(&b.login("p022")), None);
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["publications"][0]["by"], "p032", "{history}");

    // B started again on the same database: still 1.1.0, and its start says why.
    let [_, old_b] = servers;
    drop(old_b);
    let mut b = Server::start(conn, schema);
    b.wait_ready();
    assert_eq!(served_version(&b, &b.login("p005")), "1.1.0");
    let log = b.log();
    assert!(log.contains("absence-and-annual-leave 1.1.0: published #1 by p032") && log.contains("the store wins"), "{log}");
}
