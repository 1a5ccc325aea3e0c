//! Every route of `carimbo::http::routes()` called by every role, against a written table of the
//! status each must get. The table names every route: a route added without a row (or a row
//! left behind by a removed route) fails the test, so nobody adds an endpoint without deciding
//! who may call it.
//!
//! Each call is a real request, with a body that would succeed for someone allowed to make it
//! (signed by the caller where a signature is needed), so a cell shows what the role is allowed
//! to do, not how the body was malformed. Calls that change a case get a fresh case each, so
//! the order of the cells does not matter.

mod common;

use carimbo::http::DEMO_PASSWORD;
use common::server::{leave, sign_as, Client, Reply, TestServer};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The roles, in the order of the table's columns, with the demo person who has each.
const ROLES: [(&str, Option<&str>); 6] = [
    ("anonymous", None),
    ("staff", Some("p005")),
    ("approver", Some("p003")),
    ("author", Some("p031")),
    ("auditor", Some("p022")),
    ("admin", Some("p032")),
];

struct Row {
    method: &'static str,
    path: &'static str,
    /// anonymous, staff, approver, author, auditor, admin
    expect: [u16; 6],
}

const fn row(method: &'static str, path: &'static str, expect: [u16; 6]) -> Row {
    Row { method, path, expect }
}

/// Who gets what. The cases in the `{id}` rows are submitted by the staff member (p005), whose
/// supervisor is the approver (p003); the author and the admin are party to none of them, the
/// auditor may read every case but act on none.
#[rustfmt::skip]
const TABLE: &[Row] = &[
    //                                                  anon  staff appr  auth  audit admin
    row("POST",   "/api/v1/session",                   [200,  200,  200,  200,  200,  200]),
    row("DELETE", "/api/v1/session",                   [401,  204,  204,  204,  204,  204]),
    row("GET",    "/api/v1/me",                        [401,  200,  200,  200,  200,  200]),
    row("GET",    "/api/v1/me/certificate",            [401,  200,  200,  200,  200,  200]),
    row("POST",   "/api/v1/me/totp",                   [401,  200,  200,  200,  200,  200]),
    row("POST",   "/api/v1/me/totp/confirm",           [401,  204,  204,  204,  204,  204]),
    row("GET",    "/api/v1/forms",                     [401,  200,  200,  200,  200,  200]),
    row("GET",    "/api/v1/forms/{id}",                [401,  200,  200,  200,  200,  200]),
    row("POST",   "/api/v1/forms/{id}/validate",       [401,  200,  200,  200,  200,  200]),
    row("POST",   "/api/v1/signing-payload",           [401,  200,  200,  200,  200,  200]),
    // Every demo role here is also staff, and staff may submit a leave request.
    row("POST",   "/api/v1/cases",                     [401,  201,  201,  201,  201,  201]),
    row("GET",    "/api/v1/cases",                     [401,  200,  200,  200,  200,  200]),
    row("GET",    "/api/v1/cases/{id}",                [401,  200,  200,  404,  200,  404]),
    row("GET",    "/api/v1/cases/{id}/evidence",       [401,  200,  200,  404,  200,  404]),
    // The submitter may not approve their own case; the auditor reads but is not assigned.
    row("POST",   "/api/v1/cases/{id}/acts",           [401,  403,  200,  404,  403,  404]),
    row("POST",   "/api/v1/cases/{id}/withdraw",       [401,  200,  403,  404,  403,  404]),
    row("POST",   "/api/v1/cases/{id}/resubmit",       [401,  200,  403,  404,  403,  404]),
    row("POST",   "/api/v1/acts/batch",                [401,  403,  200,  403,  403,  403]),
    row("GET",    "/api/v1/inbox",                     [401,  200,  200,  200,  200,  200]),
    row("GET",    "/api/v1/admin/directory",           [401,  403,  403,  403,  403,  200]),
    row("POST",   "/api/v1/admin/delegations",         [401,  403,  403,  403,  403,  201]),
    row("POST",   "/api/v1/admin/accounts/{person}/totp/reset", [401, 403, 403, 403, 403, 204]),
    row("GET",    "/api/v1/admin/trust-list",          [401,  403,  403,  403,  403,  200]),
    row("POST",   "/api/v1/admin/definitions",         [401,  403,  403,  403,  403,  200]),
    row("GET",    "/api/v1/admin/outbox",              [401,  403,  403,  403,  403,  200]),
    row("POST",   "/api/v1/admin/outbox/retry",        [401,  403,  403,  403,  403,  200]),
    row("GET",    "/api/v1/admin/export",              [401,  403,  403,  403,  403,  200]),
    row("POST",   "/api/v1/definitions/check",         [401,  403,  403,  200,  403,  200]),
    row("GET",    "/api/v1/usage",                     [401,  403,  403,  403,  200,  200]),
    row("GET",    "/metrics",                          [401,  403,  403,  403,  403,  200]),
    row("GET",    "/api/v1/openapi.json",              [200,  200,  200,  200,  200,  200]),
];

const LEAVE: &str = "absence-and-annual-leave";

/// The server, and the staff member and supervisor who make the cases the calls act on.
struct World {
    s: TestServer,
    staff: Client,
    supervisor: Client,
    keys: AtomicUsize,
}

impl World {
    fn key(&self) -> String {
        format!("k{}", self.keys.fetch_add(1, Ordering::Relaxed))
    }

    /// A leave request waiting for the supervisor.
    fn open_case(&self) -> String {
        self.staff.submit_ok(LEAVE, &leave(1), &self.key())
    }

    /// A leave request the supervisor sent back for correction.
    fn returned_case(&self) -> String {
        let id = self.open_case();
        let r = self.supervisor.act(&id, "supervisor", "return");
        assert_eq!(r.status, 200, "{}", r.body);
        id
    }
}

/// `what` signed by the caller, if the caller can get a payload for it at all.
fn signed_by(caller: &Client, what: Value) -> Option<Value> {
    let person = caller.person.as_deref()?;
    let r = caller.post("/api/v1/signing-payload", &what);
    (r.status == 200).then(|| sign_as(person, &r.body))
}

fn with_signature(mut body: Value, signed: Option<Value>) -> Value {
    if let Some(s) = signed {
        body["signed"] = s;
    }
    body
}

/// Makes the call of one cell.
fn call(w: &World, method: &str, path: &str, caller: &Client) -> Reply {
    let post = |p: &str, body: Value| caller.post(p, &body);
    match (method, path) {
        ("POST", "/api/v1/session") => post(path, json!({"person": "p040", "password": DEMO_PASSWORD})),
        ("DELETE", "/api/v1/session") => match caller.person.as_deref() {
            // A session of its own, so the caller's stays open for the other rows.
            Some(p) => w.s.login(p).delete(path),
            None => caller.delete(path),
        },
        ("POST", "/api/v1/me/totp") => post(path, json!({})),
        ("POST", "/api/v1/me/totp/confirm") => {
            let code = match caller.person.as_deref() {
                Some(p) => {
                    assert_eq!(caller.post("/api/v1/me/totp", &json!({})).status, 200);
                    w.s.totp_now(p)
                }
                None => "123456".into(),
            };
            post(path, json!({"code": code}))
        }
        ("GET", "/api/v1/forms/{id}") => caller.get(&format!("/api/v1/forms/{LEAVE}")),
        ("POST", "/api/v1/forms/{id}/validate") => post(&format!("/api/v1/forms/{LEAVE}/validate"), json!({"data": leave(1)})),
        ("POST", "/api/v1/signing-payload") => post(path, json!({"kind": "submit", "form": LEAVE, "data": leave(1), "idempotency_key": w.key()})),
        ("POST", "/api/v1/cases") => {
            let (data, key) = (leave(1), w.key());
            let signed = signed_by(caller, json!({"kind": "submit", "form": LEAVE, "data": data, "idempotency_key": key}));
            post(path, with_signature(json!({"form": LEAVE, "data": data, "idempotency_key": key}), signed))
        }
        ("GET", "/api/v1/cases/{id}") => caller.case(&w.open_case()),
        ("GET", "/api/v1/cases/{id}/evidence") => caller.get(&format!("/api/v1/cases/{}/evidence", w.open_case())),
        ("POST", "/api/v1/cases/{id}/acts") => {
            let id = w.open_case();
            let signed = signed_by(caller, json!({"kind": "act", "case": id, "step": "supervisor", "action": "approve"}));
            post(&format!("/api/v1/cases/{id}/acts"), with_signature(json!({"step": "supervisor", "action": "approve"}), signed))
        }
        ("POST", "/api/v1/cases/{id}/withdraw") => post(&format!("/api/v1/cases/{}/withdraw", w.open_case()), json!({"reason": "test"})),
        ("POST", "/api/v1/cases/{id}/resubmit") => {
            let id = w.returned_case();
            let mut data = leave(1);
            data["substitute"] = json!("Wong Wai Keong");
            let signed = signed_by(caller, json!({"kind": "resubmit", "case": id, "data": data}));
            post(&format!("/api/v1/cases/{id}/resubmit"), with_signature(json!({"data": data}), signed))
        }
        ("POST", "/api/v1/acts/batch") => post(path, json!({"items": []})),
        ("POST", "/api/v1/admin/delegations") => post(
            path,
            json!({"id": format!("d-test-{}", w.key()), "delegate": "p017", "principal": "p016", "from": "2027-01-04", "to": "2027-01-08", "forms": null}),
        ),
        // An empty upload re-checks (and for the admin re-applies) what is served: always clean.
        ("POST", "/api/v1/admin/definitions") | ("POST", "/api/v1/definitions/check") => post(path, json!({"files": []})),
        ("POST", "/api/v1/admin/outbox/retry") => {
            // The decision of the returned case is in the outbox (delivered nowhere: not dead,
            // so an allowed retry changes nothing).
            w.returned_case();
            let first = w.s.state.cases.store().outbox_since(chrono::DateTime::UNIX_EPOCH, None, 1).unwrap();
            post(path, json!({"ids": [first[0].id]}))
        }
        ("POST", "/api/v1/admin/accounts/{person}/totp/reset") => {
            // Someone with a second factor to reset, enrolled again for each cell.
            let (accounts, target) = (&w.s.state.accounts, "p040");
            if !accounts.get(target).is_some_and(|a| a.has_second_factor()) {
                accounts.begin_totp(target, None, chrono::Utc::now()).unwrap();
                accounts.confirm_totp(target, &w.s.totp_now(target), chrono::Utc::now()).unwrap();
            }
            post(&format!("/api/v1/admin/accounts/{target}/totp/reset"), json!({}))
        }
        ("GET", "/api/v1/admin/export") => caller.get("/api/v1/admin/export?since=2026-01-01&format=csv"),
        ("GET", _) => caller.get(path),
        _ => panic!("no request is written for {method} {path}: add one to `call`"),
    }
}

#[test]
fn the_table_names_every_route_exactly_once() {
    let routes = carimbo::http::routes();
    for r in &routes {
        let rows = TABLE.iter().filter(|row| row.method == r.method.as_str() && row.path == r.path).count();
        assert_eq!(rows, 1, "{} {} needs exactly one row in the route × role table (it has {rows})", r.method, r.path);
    }
    for row in TABLE {
        assert!(routes.iter().any(|r| r.method.as_str() == row.method && r.path == row.path), "the table has a row for {} {}, which is not a route", row.method, row.path);
    }
    // The table agrees with what each route declares in the OpenAPI document.
    for r in &routes {
        let row = TABLE.iter().find(|row| row.method == r.method.as_str() && row.path == r.path).unwrap();
        let public = r.access == "public";
        assert_eq!(row.expect[0] != 401, public, "{} {}: anonymous callers get 401 exactly on non-public routes", r.method, r.path);
        for access in r.access.split(", ") {
            if let Some(i) = ROLES.iter().position(|(role, _)| *role == access) {
                assert!(row.expect[i] < 300, "{} {} is for {access}, who must be let through", r.method, r.path);
            }
        }
    }
}

#[test]
fn every_route_gives_every_role_the_status_in_the_table() {
    let s = TestServer::start();
    let (staff, supervisor) = (s.login("p005"), s.login("p003"));
    let w = World { s, staff, supervisor, keys: AtomicUsize::new(0) };
    let callers: Vec<Client> = ROLES.iter().map(|(_, p)| p.map_or_else(|| w.s.anonymous(), |p| w.s.login(p))).collect();

    let mut wrong = Vec::new();
    for r in carimbo::http::routes() {
        let row = TABLE.iter().find(|row| row.method == r.method.as_str() && row.path == r.path).expect("checked by the other test");
        for (i, (role, _)) in ROLES.iter().enumerate() {
            let reply = call(&w, row.method, row.path, &callers[i]);
            let expected = row.expect[i];
            if reply.status != expected {
                wrong.push(format!("{} {} as {role}: expected {expected}, got {} {}", row.method, row.path, reply.status, reply.body));
                continue;
            }
            // Refusals are problems with the code that says why.
            let code = match expected {
                401 if i == 0 => Some("CARIMBO-E0701"),
                403 => None,
                404 => Some("CARIMBO-E0703"),
                _ => None,
            };
            if let Some(code) = code
                && (reply.body["code"] != code || reply.header("content-type") != Some("application/problem+json"))
            {
                wrong.push(format!("{} {} as {role}: expected a {code} problem, got {}", row.method, row.path, reply.body));
            }
            if expected == 403 && !reply.body["code"].as_str().is_some_and(|c| ["CARIMBO-E0702", "CARIMBO-E0306", "CARIMBO-E0307", "CARIMBO-E0309"].contains(&c)) {
                wrong.push(format!("{} {} as {role}: a 403 must say why (no role, not assigned, own case, not the submitter): {}", row.method, row.path, reply.body));
            }
        }
    }
    assert!(wrong.is_empty(), "{} cell(s) differ from the table:\n{}", wrong.len(), wrong.join("\n"));
}
