//! Every route of `carimbo::http::routes()`, the API's and the pages', called by every role,
//! against a written table of the status each must get. The table names every route: a route added without a row (or a row
//! left behind by a removed route) fails the test, so nobody adds an endpoint without deciding
//! who may call it.
//!
//! Each call is a real request, with a body that would succeed for someone allowed to make it
//! (signed by the caller where a signature is needed), so a cell shows what the role is allowed
//! to do, not how the body was malformed. Calls that change a case get a fresh case each, so
//! the order of the cells does not matter.

use crate::common;

use carimbo::http::DEMO_PASSWORD;
use common::server::{Client, Reply, TestServer, leave, sign_as};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The roles, in the order of the table's columns, with the demo person who has each.
const ROLES: [(&str, Option<&str>); 6] =
    [("anonymous", None), ("staff", Some("p005")), ("approver", Some("p003")), ("author", Some("p031")), ("auditor", Some("p022")), ("admin", Some("p032"))];

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
    row("GET",    "/api/v1/me/notifications",          [401,  200,  200,  200,  200,  200]),
    row("POST",   "/api/v1/me/notifications",          [401,  200,  200,  200,  200,  200]),
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
    row("GET",    "/api/v1/admin/trust-list/status",   [401,  403,  403,  403,  403,  200]),
    row("POST",   "/api/v1/admin/trust-list/entries",  [401,  403,  403,  403,  403,  201]),
    row("POST",   "/api/v1/admin/definitions",         [401,  403,  403,  403,  403,  200]),
    row("GET",    "/api/v1/admin/publications",        [401,  403,  403,  403,  200,  200]),
    row("GET",    "/api/v1/admin/evidence-archive",    [401,  403,  403,  403,  403,  200]),
    row("POST",   "/api/v1/admin/evidence-archive",    [401,  403,  403,  403,  403,  200]),
    row("GET",    "/api/v1/admin/outbox",              [401,  403,  403,  403,  403,  200]),
    row("POST",   "/api/v1/admin/outbox/retry",        [401,  403,  403,  403,  403,  200]),
    row("GET",    "/api/v1/admin/export",              [401,  403,  403,  403,  403,  200]),
    row("POST",   "/api/v1/definitions/check",         [401,  403,  403,  200,  403,  200]),
    row("GET",    "/api/v1/usage",                     [401,  403,  403,  403,  200,  200]),
    row("GET",    "/metrics",                          [401,  403,  403,  403,  403,  200]),
    row("GET",    "/api/v1/openapi.json",              [200,  200,  200,  200,  200,  200]),
    // The pages. A visitor without a session is sent to /login (303); a page refused to a role
    // is a page saying so (403), a case the caller is not party to a page that says "not found".
    row("GET",    "/",                                 [303,  303,  303,  303,  303,  303]),
    row("GET",    "/login",                            [200,  200,  200,  200,  200,  200]),
    row("POST",   "/login",                            [303,  303,  303,  303,  303,  303]),
    row("POST",   "/logout",                           [303,  303,  303,  303,  303,  303]),
    row("GET",    "/forms",                            [303,  200,  200,  200,  200,  200]),
    row("GET",    "/forms/{id}",                       [303,  200,  200,  200,  200,  200]),
    row("POST",   "/forms/{id}",                       [303,  200,  200,  200,  200,  200]),
    row("GET",    "/cases",                            [303,  200,  200,  200,  200,  200]),
    row("GET",    "/cases/{id}",                       [303,  200,  200,  404,  200,  404]),
    row("GET",    "/cases/{id}/pdf",                   [303,  200,  200,  404,  200,  404]),
    row("POST",   "/cases/{id}/withdraw",              [303,  303,  403,  404,  403,  404]),
    row("GET",    "/cases/{id}/resubmit",              [303,  200,  403,  404,  403,  404]),
    row("POST",   "/cases/{id}/resubmit",              [303,  200,  403,  404,  403,  404]),
    row("GET",    "/me/security",                      [303,  200,  200,  200,  200,  200]),
    row("POST",   "/me/security",                      [303,  303,  303,  303,  303,  303]),
    row("GET",    "/inbox",                            [303,  200,  200,  200,  200,  200]),
    row("POST",   "/inbox",                            [303,  200,  200,  200,  200,  200]),
    row("GET",    "/author",                           [303,  403,  403,  200,  403,  200]),
    row("POST",   "/author",                           [303,  403,  403,  200,  403,  200]),
    row("GET",    "/audit",                            [303,  403,  403,  403,  200,  403]),
    row("GET",    "/admin/outbox",                     [303,  403,  403,  403,  403,  200]),
    row("POST",   "/admin/outbox",                     [303,  403,  403,  403,  403,  303]),
    row("GET",    "/admin/usage",                      [303,  403,  403,  403,  200,  200]),
    row("GET",    "/admin/trust-list",                 [303,  403,  403,  403,  403,  200]),
    row("POST",   "/admin/trust-list",                 [303,  403,  403,  403,  403,  303]),
    row("GET",    "/admin/keys",                       [303,  403,  403,  403,  403,  200]),
    row("POST",   "/admin/keys",                       [303,  403,  403,  403,  403,  200]),
    row("GET",    "/me/notifications",                 [303,  200,  200,  200,  200,  200]),
    row("POST",   "/me/notifications",                 [303,  303,  303,  303,  303,  303]),
    row("GET",    "/me/delegation",                    [303,  200,  200,  200,  200,  200]),
    row("POST",   "/me/delegation",                    [303,  200,  200,  200,  200,  200]),
    row("GET",    "/admin/delegations",                [303,  403,  403,  403,  403,  200]),
    row("POST",   "/admin/delegations",                [303,  403,  403,  403,  403,  200]),
    row("GET",    "/audit/verify",                     [303,  403,  403,  403,  200,  403]),
    row("POST",   "/audit/verify",                     [303,  403,  403,  403,  200,  403]),
    row("GET",    "/docs/errors",                      [200,  200,  200,  200,  200,  200]),
    row("GET",    "/static/{name}",                    [200,  200,  200,  200,  200,  200]),
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
        ("POST", "/api/v1/me/notifications") => post(path, json!({"topics": ["task", "decided"], "delivery": "digest", "digest_at": "17:30"})),
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
        // A round of the archive job over the cases of the world (none closed: nothing to do).
        ("POST", "/api/v1/admin/evidence-archive") => post(path, json!({})),
        ("GET", "/api/v1/admin/export") => caller.get("/api/v1/admin/export?since=2026-01-01&format=csv"),
        // A change the operator signed, following the list as the server keeps it now.
        ("POST", "/api/v1/admin/trust-list/entries") => post(path, serde_json::to_value(common::next_trust_entry(&w.s.state.trust.current())).unwrap()),
        _ if !path.starts_with("/api/") && path != "/metrics" => call_page(w, method, path, caller),
        ("GET", _) => caller.get(path),
        _ => panic!("no request is written for {method} {path}: add one to `call`"),
    }
}

/// A page post, as the page's own form sends it: URL-encoded, with the session's CSRF token.
fn form_post(caller: &Client, path: &str, fields: &[(&str, &str)], cookies: &[&str]) -> Reply {
    let mut all: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if let Some(csrf) = &caller.csrf {
        all.push(("csrf".into(), csrf.clone()));
    }
    let body: Vec<String> = all.iter().map(|(k, v)| format!("{}={}", common::form_encode(k), common::form_encode(v))).collect();
    let cookie = cookies.join("; ");
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if !cookie.is_empty() {
        headers.push(("cookie", cookie.as_str()));
    }
    caller.request("POST", path, Some(body.join("&").as_bytes()), &headers)
}

/// The leave request as the page's fields.
fn leave_fields(data: &Value) -> Vec<(&'static str, String)> {
    ["leave_type", "start_date", "end_date", "substitute"].into_iter().filter_map(|k| data[k].as_str().map(|v| (k, v.to_string()))).collect()
}

/// Makes the call of one page cell, signed in by the session cookie as a browser is.
fn call_page(w: &World, method: &str, path: &str, caller: &Client) -> Reply {
    let fields = |list: &[(&'static str, String)]| list.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    match (method, path) {
        ("POST", "/login") => {
            // The form's own token, from the sign-in page: its cookie and its hidden field.
            let page = w.s.anonymous().no_redirects().get("/login");
            let cookie = page.header("set-cookie").and_then(|c| c.split(';').next()).expect("the sign-in token cookie").to_string();
            let html = page.body.as_str().unwrap_or_default();
            let token = html.split("name=\"csrf\" value=\"").nth(1).and_then(|v| v.split('"').next()).expect("the hidden field").to_string();
            let mut visitor = w.s.anonymous().no_redirects();
            visitor.csrf = Some(token);
            visitor.token = caller.token.clone();
            visitor.by_cookie = true;
            form_post(&visitor, path, &[("person", "p040"), ("password", DEMO_PASSWORD)], &[&cookie])
        }
        ("POST", "/logout") => match caller.person.as_deref() {
            // A session of its own, so the caller's stays open for the other rows.
            Some(p) => form_post(&w.s.login(p).by_cookie().no_redirects(), path, &[], &[]),
            None => form_post(caller, path, &[], &[]),
        },
        ("GET", "/forms/{id}") => caller.get(&format!("/forms/{LEAVE}")),
        ("POST", "/forms/{id}") => {
            let list = leave_fields(&leave(1));
            let owned = fields(&list);
            let refs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form_post(caller, &format!("/forms/{LEAVE}"), &refs, &[])
        }
        ("GET", "/cases/{id}") => caller.get(&format!("/cases/{}", w.open_case())),
        ("GET", "/cases/{id}/pdf") => caller.get(&format!("/cases/{}/pdf", w.open_case())),
        ("POST", "/cases/{id}/withdraw") => form_post(caller, &format!("/cases/{}/withdraw", w.open_case()), &[("_do", "confirm"), ("reason", "test")], &[]),
        ("GET", "/cases/{id}/resubmit") => caller.get(&format!("/cases/{}/resubmit", w.returned_case())),
        ("POST", "/cases/{id}/resubmit") => {
            let mut data = leave(1);
            data["substitute"] = json!("Wong Wai Keong");
            let list = leave_fields(&data);
            let mut refs: Vec<(&str, &str)> = list.iter().map(|(k, v)| (*k, v.as_str())).collect();
            refs.push(("_do", "check"));
            form_post(caller, &format!("/cases/{}/resubmit", w.returned_case()), &refs, &[])
        }
        // Everyone enrolled a second factor in the API's rows (and its code of this half-minute is
        // spent): an administrator's reset first, so the page begins a fresh enrolment.
        ("POST", "/me/security") => {
            if let Some(p) = caller.person.as_deref()
                && w.s.state.accounts.get(p).is_some_and(|a| a.has_second_factor())
            {
                w.s.state.accounts.reset_totp(p, "p032", chrono::Utc::now()).unwrap();
            }
            form_post(caller, path, &[("_do", "begin")], &[])
        }
        ("POST", "/inbox") => form_post(caller, path, &[], &[]),
        ("POST", "/author") => {
            let boundary = "carimbo-test-boundary";
            let csrf = caller.csrf.clone().unwrap_or_default();
            // A shipped definition pasted in: checked, and clean.
            let pasted = std::fs::read_to_string(common::repo().join(format!("forms/{LEAVE}.json"))).unwrap();
            let part = |name: &str, value: &str| format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n");
            let body = format!("{}{}{}--{boundary}--\r\n", part("csrf", &csrf), part("pasted_name", &format!("{LEAVE}.json")), part("pasted", &pasted));
            let kind = format!("multipart/form-data; boundary={boundary}");
            caller.request("POST", path, Some(body.as_bytes()), &[("content-type", kind.as_str())])
        }
        ("POST", "/admin/outbox") => form_post(caller, path, &[], &[]),
        // The table's server has no HSM; a key published in its book is revoked, which needs none.
        ("POST", "/admin/keys") => {
            let data = &w.s.state.paths.data;
            let mut book = carimbo::hsm::ProviderBook::load(data).unwrap();
            let key = carimbo::hsm::DeviceKey { token: "carimbo".into(), key_label: "p012".into(), serial: 0x5eed, chain_pem: String::new(), revoked_at: None };
            book.people.insert("p012".into(), key);
            book.save(data).unwrap();
            form_post(caller, path, &[("person", "p012"), ("action", "revoke"), ("confirm", "yes")], &[])
        }
        ("POST", "/admin/trust-list") => {
            let entry = serde_json::to_string(&common::next_trust_entry(&w.s.state.trust.current())).unwrap();
            form_post(caller, path, &[("entry", &entry)], &[])
        }
        ("POST", "/me/notifications") => {
            form_post(caller, path, &[("topic", "task"), ("delivery", "immediate"), ("quiet_from", "20:00"), ("quiet_to", "08:00")], &[])
        }
        // A delegation a month ahead (so it covers none of the other rows' cases), to a staff
        // member who is no column of the table.
        ("POST", "/me/delegation") => {
            let from = chrono::Utc::now().date_naive() + chrono::Duration::days(30);
            let (from, to) = (from.to_string(), (from + chrono::Duration::days(3)).to_string());
            form_post(caller, path, &[("_do", "set"), ("delegate", "p012"), ("from", &from), ("to", &to)], &[])
        }
        // A delegation of the directory's own for the administrator to end.
        ("POST", "/admin/delegations") => {
            let id = format!("route-roles-{}", w.key());
            let mut dir = (*w.s.state.cases.directory()).clone();
            let day = chrono::Utc::now().date_naive() + chrono::Duration::days(60);
            dir.add_delegation(carimbo::directory::Delegation {
                id: id.clone(),
                delegate: "p012".into(),
                principal: "p011".into(),
                from: day,
                to: day,
                forms: None,
                reason: None,
            })
            .unwrap();
            w.s.state.cases.set_directory(dir);
            form_post(caller, path, &[("_do", "end"), ("id", &id)], &[])
        }
        ("POST", "/audit/verify") => {
            // A real bundle of a case, as the auditor downloads it from the case page.
            let bundle = w.s.login("p022").get(&format!("/api/v1/cases/{}/evidence", w.open_case())).body.to_string();
            let boundary = "carimbo-test-boundary";
            let csrf = caller.csrf.clone().unwrap_or_default();
            let body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"evidence.json\"\r\nContent-Type: application/json\r\n\r\n{bundle}\r\n--{boundary}--\r\n"
            );
            let kind = format!("multipart/form-data; boundary={boundary}");
            caller.request("POST", path, Some(body.as_bytes()), &[("content-type", kind.as_str())])
        }
        ("GET", "/static/{name}") => caller.get("/static/app.css"),
        ("GET", _) => caller.get(path),
        _ => panic!("no request is written for the page {method} {path}: add one to `call_page`"),
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
        assert!(
            routes.iter().any(|r| r.method.as_str() == row.method && r.path == row.path),
            "the table has a row for {} {}, which is not a route",
            row.method,
            row.path
        );
    }
    // The table agrees with what each route declares in the OpenAPI document.
    for r in &routes {
        let row = TABLE.iter().find(|row| row.method == r.method.as_str() && row.path == r.path).unwrap();
        let public = r.access == "public";
        if r.is_api() {
            assert_eq!(row.expect[0] != 401, public, "{} {}: anonymous callers get 401 exactly on non-public routes", r.method, r.path);
        } else if !public {
            assert_eq!(row.expect[0], 303, "{} {}: a visitor without a session is sent to sign in", r.method, r.path);
        }
        for access in r.access.split(", ") {
            if let Some(i) = ROLES.iter().position(|(role, _)| *role == access) {
                // A page post that succeeded answers 303 (post, redirect, get).
                assert!(row.expect[i] < if r.is_api() { 300 } else { 400 }, "{} {} is for {access}, who must be let through", r.method, r.path);
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
    // The pages are called as a browser calls them: the session cookie, no redirect followed.
    let browsers: Vec<Client> =
        ROLES.iter().map(|(_, p)| p.map_or_else(|| w.s.anonymous().no_redirects(), |p| w.s.login(p).by_cookie().no_redirects())).collect();

    let mut wrong = Vec::new();
    for r in carimbo::http::routes() {
        let row = TABLE.iter().find(|row| row.method == r.method.as_str() && row.path == r.path).expect("checked by the other test");
        for (i, (role, _)) in ROLES.iter().enumerate() {
            let reply = if r.is_api() { call(&w, row.method, row.path, &callers[i]) } else { call_page(&w, row.method, row.path, &browsers[i]) };
            let expected = row.expect[i];
            if reply.status != expected {
                let body = reply.body.to_string();
                wrong.push(format!("{} {} as {role}: expected {expected}, got {} {}", row.method, row.path, reply.status, &body[..body.len().min(300)]));
                continue;
            }
            if !r.is_api() {
                // A page refuses with a page; a visitor without a session goes to sign in.
                if i == 0 && r.access != "public" && reply.header("location") != Some("/login") {
                    wrong.push(format!("{} {} as {role}: expected to be sent to /login, got {:?}", row.method, row.path, reply.header("location")));
                }
                if expected >= 400 && !reply.header("content-type").is_some_and(|t| t.starts_with("text/html")) {
                    wrong.push(format!("{} {} as {role}: a page refuses with a page, not {:?}", row.method, row.path, reply.header("content-type")));
                }
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
            if expected == 403
                && !reply.body["code"].as_str().is_some_and(|c| ["CARIMBO-E0702", "CARIMBO-E0306", "CARIMBO-E0307", "CARIMBO-E0309"].contains(&c))
            {
                wrong.push(format!(
                    "{} {} as {role}: a 403 must say why (no role, not assigned, own case, not the submitter): {}",
                    row.method, row.path, reply.body
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{} cell(s) differ from the table:\n{}", wrong.len(), wrong.join("\n"));
}
