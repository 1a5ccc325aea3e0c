//! Black-box tests of the server's edges: signing in, rate limits, CSRF, security headers, body
//! limits, problems for malformed requests, the second-factor enrolment and the OpenAPI document.
//! Each test starts the real server on a random loopback port and talks HTTP to it.

use crate::common;

use carimbo::http::DEMO_PASSWORD;
use common::server::TestServer;
use serde_json::{Value, json};
use std::io::{Read, Write};

#[test]
fn signing_in_gives_a_bearer_token_a_csrf_token_and_an_http_only_cookie() {
    let s = TestServer::start();
    let mut c = s.anonymous();
    let r = c.post("/api/v1/session", &json!({"person": "p003", "password": DEMO_PASSWORD}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["person"], "p003");
    assert!(r.body["roles"].as_array().unwrap().contains(&json!("approver")), "{}", r.body);
    let cookie = r.header("set-cookie").unwrap();
    assert!(cookie.starts_with("carimbo_session=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    c.token = r.body["token"].as_str().map(str::to_string);
    let me = c.get("/api/v1/me");
    assert_eq!(me.status, 200);
    assert_eq!(me.body["person"], "p003");
    assert_eq!(me.body["second_factor"], false);

    assert_eq!(c.delete("/api/v1/session").status, 204);
    c.get("/api/v1/me").problem(401, "CARIMBO-E0701");
}

#[test]
fn a_wrong_password_is_a_401_problem_in_the_requested_language() {
    let s = TestServer::start();
    let c = s.anonymous();
    let r = c.post("/api/v1/session?lang=pt", &json!({"person": "p005", "password": "not the password"}));
    let p = r.problem(401, "CARIMBO-E0602");
    assert_eq!(p["title"], "Identificação ou palavra-passe incorreta.");
    assert!(!p.to_string().contains("not the password"), "a problem never repeats the password");
    // An unknown person gets exactly the same answer: whether an id exists is not revealed.
    let unknown = c.post("/api/v1/session", &json!({"person": "p999", "password": "not the password"}));
    unknown.problem(401, "CARIMBO-E0602");
}

#[test]
fn sign_in_attempts_are_rate_limited_per_account() {
    let s = TestServer::start();
    let c = s.anonymous();
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(c.post("/api/v1/session", &json!({"person": "p005", "password": "guess"})).status);
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    let r = c.post("/api/v1/session", &json!({"person": "p005", "password": DEMO_PASSWORD}));
    r.problem(429, "CARIMBO-E0705");
    // Another account from the same address is still let in (the per-address limit is higher).
    s.login("p006");
}

#[test]
fn a_cookie_session_must_echo_its_csrf_token_on_state_changing_calls() {
    let s = TestServer::start();
    let mut browser = s.login("p003");
    browser.by_cookie = true;
    // Reading needs no token.
    assert_eq!(browser.get("/api/v1/inbox").status, 200);
    let body = json!({"kind": "submit", "form": "absence-and-annual-leave", "data": common::server::leave(1), "idempotency_key": "k"});
    let without = browser.post_with("/api/v1/signing-payload", &body, &[("x-csrf-token", "")]);
    without.problem(403, "CARIMBO-E0706");
    let forged = browser.post_with("/api/v1/signing-payload", &body, &[("x-csrf-token", "forged-token")]);
    forged.problem(403, "CARIMBO-E0706");
    let with = browser.post("/api/v1/signing-payload", &body);
    assert_eq!(with.status, 200, "{}", with.body);
    // The same session by bearer token needs none: a browser never sends the header by itself.
    browser.by_cookie = false;
    assert_eq!(browser.post_with("/api/v1/signing-payload", &body, &[]).status, 200);
}

#[test]
fn every_answer_carries_the_security_headers() {
    let s = TestServer::start();
    let c = s.login("p005");
    for r in [c.get("/api/v1/me"), c.get("/api/v1/openapi.json"), s.anonymous().get("/api/v1/me"), s.anonymous().get("/login"), c.get("/no/such/page")] {
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        let csp = r.header("content-security-policy").expect("a CSP");
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    }
}

/// Sends a request with a large declared body the way curl does (`Expect: 100-continue`) and
/// returns the status line, the headers and the body of the answer.
fn raw_post_declaring(s: &TestServer, path: &str, token: &str, length: usize) -> (String, String, Value) {
    let addr = s.base.strip_prefix("http://").unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\nexpect: 100-continue\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).unwrap();
    // Read to the end (the refusal closes the connection), or only the interim `100 Continue`.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = tcp.read(&mut chunk) {
        answer.extend_from_slice(&chunk[..n]);
        if n == 0 || (answer.starts_with(b"HTTP/1.1 100") && answer.windows(4).any(|w| w == b"\r\n\r\n")) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_ascii_lowercase(), serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn a_five_megabyte_body_is_refused_with_a_413_problem_before_it_is_sent() {
    let s = TestServer::start();
    let c = s.login("p005");
    let token = c.token.clone().unwrap();
    for path in ["/api/v1/cases", "/api/v1/acts/batch"] {
        let (status, headers, body) = raw_post_declaring(&s, path, &token, 5 * 1024 * 1024);
        assert!(status.starts_with("HTTP/1.1 413"), "{path}: {status}\n{headers}");
        assert!(headers.contains("content-type: application/problem+json"), "{headers}");
        assert!(headers.contains("connection: close"), "{headers}");
        assert_eq!(body["code"], "CARIMBO-E0707", "{body}");
        assert_eq!(body["status"], 413);
    }
    // A batch may be bigger than a single act (up to 4 MiB): 1 MiB is let through to the handler.
    let (status, _, _) = raw_post_declaring(&s, "/api/v1/acts/batch", &token, 1024 * 1024);
    assert!(status.starts_with("HTTP/1.1 100"), "{status}");
}

#[test]
fn malformed_requests_are_problems_too() {
    let s = TestServer::start();
    let c = s.login("p005");
    let syntax = c.request("POST", "/api/v1/cases", Some(b"{"), &[]);
    syntax.problem(400, "CARIMBO-E0704");
    let shape = c.request("POST", "/api/v1/cases?lang=zh", Some(b"{}"), &[]);
    assert_eq!(shape.problem(422, "CARIMBO-E0704")["title"], "請求格式不正確。");
    assert!(shape.body["detail"].as_str().unwrap().contains("missing field `form`"), "{}", shape.body);
    let method = c.request("PATCH", "/api/v1/cases", Some(b"{}"), &[]);
    method.problem(405, "CARIMBO-E0704");
    assert!(method.header("allow").is_some_and(|a| a.contains("POST")), "{:?}", method.headers);
    c.get("/api/v1/no-such-route").problem(404, "CARIMBO-E0703");
    // JSON nested deeper than serde's recursion limit is refused, not a stack overflow.
    let deep = format!("{{\"form\":\"x\",\"idempotency_key\":\"k\",\"data\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    c.request("POST", "/api/v1/cases", Some(deep.as_bytes()), &[]).problem(400, "CARIMBO-E0704");
}

#[test]
fn a_second_factor_is_enrolled_through_the_api_and_confirmed_with_a_code() {
    let s = TestServer::start();
    let c = s.login("p028");
    let r = c.post("/api/v1/me/totp/confirm", &json!({"code": "123456"}));
    r.problem(422, "CARIMBO-E0605");
    let e = c.post("/api/v1/me/totp", &json!({}));
    assert_eq!(e.status, 200, "{}", e.body);
    assert!(e.body["url"].as_str().unwrap().starts_with("otpauth://totp/carimbo:p028?"), "{}", e.body);
    assert!(e.body["qr_png_base64"].as_str().is_some_and(|q| q.len() > 100));
    let code = s.totp_now("p028");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    c.post("/api/v1/me/totp/confirm", &json!({"code": wrong})).problem(401, "CARIMBO-E0604");
    assert_eq!(c.get("/api/v1/me").body["second_factor"], false);
    assert_eq!(c.post("/api/v1/me/totp/confirm", &json!({"code": code})).status, 204);
    assert_eq!(c.get("/api/v1/me").body["second_factor"], true);
}

#[test]
fn the_openapi_document_lists_every_route() {
    let s = TestServer::start();
    let r = s.anonymous().get("/api/v1/openapi.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["openapi"], "3.1.0");
    // The pages are in the route table too, but they are HTML, not API: the document leaves them out.
    let routes: Vec<_> = carimbo::http::routes().into_iter().filter(|r| r.is_api()).collect();
    assert!(carimbo::http::routes().iter().any(|r| !r.is_api() && r.path == "/cases/{id}"), "the pages are in the table");
    let mut listed = 0;
    for (path, ops) in r.body["paths"].as_object().unwrap() {
        listed += ops.as_object().unwrap().len();
        assert!(routes.iter().any(|r| r.path == path), "{path} is documented but not served");
    }
    assert_eq!(listed, routes.len());
    for route in &routes {
        let op = &r.body["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} is missing from the document", route.method, route.path);
        assert_eq!(op["summary"], route.summary);
        assert_eq!(op["x-carimbo-access"], route.access);
        assert_eq!(op.get("security").is_none(), route.access == "public", "{} {}", route.method, route.path);
        for name in route.path.split('/').filter_map(|p| p.strip_prefix('{')?.strip_suffix('}')) {
            assert!(op["parameters"].as_array().unwrap().iter().any(|p| p["name"] == name && p["in"] == "path"), "{name} of {}", route.path);
        }
    }
}

/// Every `$ref` of a JSON value, for the resolution check below.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_openapi_document_describes_every_request_body_from_the_type_its_handler_reads() {
    let doc = carimbo::http::openapi_document();
    // POST routes that read no body. A new POST route must declare its body or be listed here.
    let bodiless = ["/api/v1/admin/accounts/{person}/totp/reset"];
    for route in carimbo::http::routes().into_iter().filter(|r| r.is_api()) {
        let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        match route.body {
            Some(_) => {
                let r = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str();
                let name = r
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    .unwrap_or_else(|| panic!("{} {} has no request body schema", route.method, route.path));
                let schema = &doc["components"]["schemas"][name];
                assert!(
                    schema["properties"].is_object() || schema["oneOf"].is_array(),
                    "{name} of {} is neither an object nor a choice of objects: {schema}",
                    route.path
                );
            }
            None if route.method == "POST" => assert!(bodiless.contains(&route.path), "POST {} declares no request body", route.path),
            None => assert!(op.get("requestBody").is_none()),
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 14, "the bodies refer to their schemas");
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r} is not a component reference"));
        assert!(doc["components"]["schemas"][name].is_object(), "{r} does not resolve");
    }
    // The schema is the handler's: what it calls required, the handler refuses to go without.
    let submit = &doc["components"]["schemas"]["SubmitRequest"];
    let required: Vec<&str> = submit["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(required.contains(&"form") && required.contains(&"data"), "{submit}");
    let s = TestServer::start();
    let c = s.login("p005");
    let r = c.post("/api/v1/cases", &json!({"data": {}, "signature": {}}));
    assert!(r.status == 400 || r.status == 422, "a submission without its required `form` is refused: {}", r.status);
}

#[test]
fn the_api_rate_limit_counts_an_account_whether_it_uses_a_token_or_the_cookie() {
    let s = TestServer::start();
    for by_cookie in [false, true] {
        let mut c = s.login(if by_cookie { "p006" } else { "p005" });
        c.by_cookie = by_cookie;
        // A burst of 1,000 is allowed, refilled at 200 a second; a tight loop gets past that.
        let limited = (0..20_000).map(|_| c.get("/api/v1/me?lang=pt")).find(|r| r.status != 200);
        let r = limited.unwrap_or_else(|| panic!("no 429 in 20,000 requests (cookie: {by_cookie})"));
        assert_eq!(r.problem(429, "CARIMBO-E0705")["title"], "Demasiadas tentativas; tente mais tarde.");
        // Another account is not held back.
        assert_eq!(s.login("p007").get("/api/v1/me").status, 200);
    }
}

#[test]
fn behind_an_https_public_address_cookies_are_secure_and_every_answer_carries_hsts() {
    let s = TestServer::start_with(|state| state.public_url = carimbo::http::PublicUrl::parse("https://forms.example.org").unwrap());
    let r = s.anonymous().post("/api/v1/session", &json!({"person": "p003", "password": DEMO_PASSWORD}));
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = r.header("set-cookie").unwrap();
    assert!(cookie.starts_with("carimbo_session=") && cookie.contains("; Secure"), "{cookie}");
    let c = s.login("p003");
    for r in
        [c.get("/api/v1/me"), s.anonymous().get("/api/v1/me"), s.anonymous().get("/login"), s.anonymous().get("/static/app.css"), c.delete("/api/v1/session")]
    {
        assert_eq!(r.header("strict-transport-security"), Some("max-age=31536000"), "{:?}", r.headers);
    }
    // The sign-out removes the cookie with the same attributes it was set with.
    let out = s.login("p005").delete("/api/v1/session");
    assert!(out.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0") && c.contains("; Secure")), "{:?}", out.headers);
}

#[test]
fn over_plain_http_cookies_are_not_secure_and_no_hsts_is_sent() {
    let s = TestServer::start();
    let r = s.anonymous().post("/api/v1/session", &json!({"person": "p003", "password": DEMO_PASSWORD}));
    assert!(!r.header("set-cookie").unwrap().contains("Secure"));
    assert_eq!(r.header("strict-transport-security"), None);
    assert_eq!(s.anonymous().get("/login").header("strict-transport-security"), None);
}

#[test]
fn a_public_address_that_is_not_a_plain_http_or_https_origin_stops_the_server_at_start() {
    let data = tempfile::tempdir().unwrap();
    for bad in [
        "forms.example.org",
        "ftp://forms.example.org",
        "https://",
        "https://forms.example.org/carimbo",
        "https://user@forms.example.org",
        "https://forms.example.org:99999",
        "https://x.org?a=b",
    ] {
        let dir = data.path().join("never-created");
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_carimbo"))
            .args(["serve", "--addr", "127.0.0.1:0", "--public-url", bad, "--data"])
            .arg(&dir)
            .current_dir(common::repo())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{bad} was accepted");
        assert!(err.contains("CARIMBO-E0720") && err.contains("--public-url"), "{bad}: {err}");
        assert!(!dir.exists(), "{bad}: nothing is created before the address is checked");
    }
    for good in ["https://forms.example.org", "https://forms.example.org:8443/", "http://127.0.0.1:8080", "HTTPS://[::1]:8443"] {
        assert!(carimbo::http::PublicUrl::parse(good).is_ok(), "{good}");
    }
    assert!(carimbo::http::PublicUrl::parse("HTTPS://[::1]:8443").unwrap().is_https());
}

#[test]
fn a_per_account_api_rate_of_zero_stops_the_server_at_start() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("never-created");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_carimbo"))
        .args(["serve", "--addr", "127.0.0.1:0", "--api-rate-per-account", "0", "--data"])
        .arg(&dir)
        .current_dir(common::repo())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("CARIMBO-E0729") && err.contains("--api-rate-per-account"), "{err}");
    assert!(!dir.exists(), "nothing is created before the limit is checked");
}

#[test]
fn pages_case_answers_and_errors_are_never_stored_by_a_cache_but_static_files_may_be() {
    let s = TestServer::start();
    let api = s.login("p005");
    let id = api.submit_ok("absence-and-annual-leave", &common::server::leave(1), "cache-1");
    let mut browser = s.login("p005");
    browser.by_cookie = true;
    let answers = [
        ("the case page", browser.get(&format!("/cases/{id}"))),
        ("the case answer", api.case(&id)),
        ("my cases", api.get("/api/v1/cases")),
        ("a 404 problem", api.case("C-nothing")),
        ("a 401 problem", s.anonymous().get("/api/v1/me")),
        ("an error page", browser.get("/forms/no-such-form")),
        ("the login page", s.anonymous().get("/login")),
        ("the sign-in answer", s.anonymous().post("/api/v1/session", &json!({"person": "p006", "password": DEMO_PASSWORD}))),
    ];
    for (what, r) in &answers {
        assert!(r.status < 500, "{what}: {}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what} ({})", r.status);
    }
    assert_eq!(answers[0].1.status, 200, "{}", answers[0].1.body);
    assert_eq!(answers[3].1.status, 404);
    assert_eq!(s.anonymous().get("/static/app.css").header("cache-control"), Some("max-age=300"));
    assert_eq!(s.anonymous().get("/api/v1/openapi.json").header("cache-control"), None);
}

/// A browser without JavaScript, at the sign-in form: it keeps no cookies and follows no
/// redirect by itself, so each test says what it sends.
fn form_agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
}

/// The sign-in page: its token cookie (`name=value`) and the hidden field's value.
fn login_page(s: &TestServer, agent: &ureq::Agent) -> (String, String) {
    let mut r = agent.get(&format!("{}/login", s.base)).call().unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("carimbo_login="))
        .expect("the sign-in token cookie")
        .to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let html = r.body_mut().read_to_string().unwrap();
    let field = html.split("name=\"csrf\" value=\"").nth(1).and_then(|v| v.split('"').next()).expect("the hidden csrf field").to_string();
    (cookie.split(';').next().unwrap().to_string(), field)
}

fn post_login(s: &TestServer, agent: &ureq::Agent, cookie: Option<&str>, csrf: Option<&str>) -> (u16, Vec<String>, String) {
    let mut body = format!("person=p005&password={DEMO_PASSWORD}");
    if let Some(c) = csrf {
        body.push_str(&format!("&csrf={c}"));
    }
    let mut req = agent.post(&format!("{}/login", s.base)).header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let mut r = req.send(body.as_bytes()).unwrap();
    let cookies = r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect();
    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (r.status().as_u16(), cookies, if location.is_empty() { r.body_mut().read_to_string().unwrap() } else { format!("Location: {location}") })
}

#[test]
fn the_sign_in_form_is_refused_without_its_own_token_and_changes_nothing() {
    let s = TestServer::start();
    let agent = form_agent();
    let (cookie, field) = login_page(&s, &agent);
    let other = login_page(&s, &agent).1;
    // A post from another site: no cookie of ours, or a token that is not the cookie's.
    for (what, c, f) in [
        ("no token at all", None, None),
        ("no cookie", None, Some(field.as_str())),
        ("no field", Some(cookie.as_str()), None),
        ("a forged field", Some(cookie.as_str()), Some("forged")),
        ("another page's token", Some(cookie.as_str()), Some(other.as_str())),
    ] {
        let (status, cookies, html) = post_login(&s, &agent, c, f);
        assert_eq!(status, 403, "{what}");
        assert!(html.contains("CARIMBO-E0721") && html.contains("sign in again"), "{what}: {html}");
        assert!(!cookies.iter().any(|c| c.starts_with("carimbo_session=")), "{what}: no session is opened");
        assert!(html.contains("name=\"csrf\""), "{what}: the page comes back with a fresh token to sign in with");
    }
    // Nothing was counted against the account: ten more wrong passwords are still answered 401.
    for _ in 0..10 {
        assert_eq!(s.anonymous().post("/api/v1/session", &json!({"person": "p005", "password": "guess"})).status, 401);
    }
    // The page's own post signs in.
    let s = TestServer::start();
    let (cookie, field) = login_page(&s, &agent);
    let (status, cookies, location) = post_login(&s, &agent, Some(&cookie), Some(&field));
    assert_eq!((status, location.as_str()), (303, "Location: /forms"));
    assert!(cookies.iter().any(|c| c.starts_with("carimbo_session=") && c.contains("HttpOnly")), "{cookies:?}");
}

#[test]
fn behind_https_the_sign_in_token_cookie_is_secure_and_host_only() {
    let s = TestServer::start_with(|state| state.public_url = carimbo::http::PublicUrl::parse("https://forms.example.org").unwrap());
    let r = form_agent().get(&format!("{}/login", s.base)).call().unwrap();
    let cookie = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap();
    assert!(cookie.starts_with("__Host-carimbo_login=") && cookie.contains("; Secure") && cookie.contains("Path=/;"), "{cookie}");
}

/// Signs in through the API from another loopback address (all of 127.0.0.0/8 is the local
/// machine on Linux), as a second computer would; returns the status and `Retry-After`.
fn sign_in_from(s: &TestServer, source: [u8; 4], person: &str, password: &str) -> (u16, Option<String>) {
    let server: std::net::SocketAddr = s.base.strip_prefix("http://").unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::from((source, 0))).unwrap();
        socket.connect(server).await.unwrap().into_std().unwrap()
    });
    let mut stream = stream;
    stream.set_nonblocking(false).unwrap();
    let body = json!({"person": person, "password": password}).to_string();
    write!(
        stream,
        "POST /api/v1/session HTTP/1.1\r\nHost: {server}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let retry = answer.lines().find_map(|l| l.strip_prefix("retry-after: ").map(str::to_string));
    (status, retry)
}

#[test]
fn ten_wrong_passwords_from_a_strangers_address_do_not_keep_the_owner_out_from_theirs() {
    let s = TestServer::start();
    let stranger = [127, 0, 0, 2];
    for i in 0..10 {
        assert_eq!(sign_in_from(&s, stranger, "p005", "guess").0, 401, "guess {i}");
    }
    // The stranger is stopped, even with the right password…
    let (status, retry) = sign_in_from(&s, stranger, "p005", "guess");
    assert_eq!(status, 429);
    assert!(retry.as_deref().and_then(|r| r.parse::<u64>().ok()).is_some_and(|r| (1..=60).contains(&r)), "{retry:?}");
    assert_eq!(sign_in_from(&s, stranger, "p005", DEMO_PASSWORD).0, 429);
    // … the owner is not, from their own address or a new one.
    assert_eq!(sign_in_from(&s, [127, 0, 0, 1], "p005", DEMO_PASSWORD).0, 200);
    assert_eq!(sign_in_from(&s, [127, 0, 0, 3], "p005", DEMO_PASSWORD).0, 200);
}

#[test]
fn guesses_spread_over_many_addresses_lock_only_addresses_that_never_signed_in_to_the_account() {
    let s = TestServer::start();
    let usual = [127, 0, 0, 1];
    assert_eq!(sign_in_from(&s, usual, "p005", DEMO_PASSWORD).0, 200);
    for n in 10..15u8 {
        for _ in 0..10 {
            assert_eq!(sign_in_from(&s, [127, 0, 1, n], "p005", "guess").0, 401);
        }
    }
    let (status, retry) = sign_in_from(&s, [127, 0, 2, 1], "p005", DEMO_PASSWORD);
    assert_eq!(status, 429, "fifty wrong passwords from everywhere: a new address waits");
    assert!(retry.is_some());
    assert_eq!(sign_in_from(&s, usual, "p005", DEMO_PASSWORD).0, 200, "the address that signed in before is let in");
    assert_eq!(sign_in_from(&s, [127, 0, 2, 1], "p006", DEMO_PASSWORD).0, 200, "other accounts are untouched");
}
