//! The pages as a browser meets them, without a browser: the real router over a fresh data
//! directory, requests in, status and HTML out. Who may open which page, CSRF on every post, no
//! inline script anywhere (the CSP allows only `script-src 'self'`), and a form checked by the
//! server with each error beside its field. The scenarios in a real Chromium are in
//! `tests/browser/` (run by `tests/browser.rs`).

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use carimbo::http::{api::session_lifetime, AppState, Paths};
use chrono::Utc;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

struct App {
    router: Router,
    state: Arc<AppState>,
    _data: tempfile::TempDir,
}

fn app() -> App {
    let data = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let state = Arc::new(AppState::open(Paths::from_root(&root, data.path())).expect("the server starts on the shipped definitions"));
    App { router: carimbo::http::router(state.clone()), state, _data: data }
}

/// A signed-in browser: the session cookie and the page's CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

impl App {
    fn sign_in(&self, person: &str) -> Browser {
        let (token, session) = self.state.sessions.open(person, Utc::now(), session_lifetime());
        Browser { cookie: format!("carimbo_session={token}"), csrf: session.csrf }
    }

    async fn get(&self, who: Option<&Browser>, uri: &str) -> (StatusCode, String) {
        let mut req = Request::get(uri);
        if let Some(b) = who {
            req = req.header(header::COOKIE, &b.cookie);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    async fn post_form(&self, who: &Browser, uri: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
        let req = Request::post(uri)
            .header(header::COOKIE, &who.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.join("&")))
            .unwrap();
        self.send(req).await
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, String) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let location = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = axum::body::to_bytes(resp.into_body(), 4 << 20).await.unwrap();
        let text = String::from_utf8_lossy(&bytes).to_string();
        (status, location.map(|l| format!("Location: {l}")).unwrap_or(text))
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_visitor_without_a_session_is_sent_to_the_login_page() {
    let app = app();
    for uri in ["/forms", "/forms/absence-and-annual-leave", "/cases", "/inbox", "/author", "/audit", "/admin/usage"] {
        let (status, body) = app.get(None, uri).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(body, "Location: /login", "{uri}");
    }
}

#[tokio::test]
async fn each_page_opens_for_the_roles_it_is_for_and_refuses_the_others() {
    let app = app();
    let table: &[(&str, &str, StatusCode)] = &[
        ("p005", "/forms", StatusCode::OK),
        ("p005", "/forms/family-allowance", StatusCode::OK),
        ("p005", "/forms/no-such-form", StatusCode::NOT_FOUND),
        ("p005", "/cases", StatusCode::OK),
        ("p005", "/cases/C-nothing", StatusCode::NOT_FOUND),
        ("p003", "/inbox", StatusCode::OK),
        ("p005", "/author", StatusCode::FORBIDDEN),
        ("p019", "/author", StatusCode::OK),
        ("p005", "/audit", StatusCode::FORBIDDEN),
        ("p022", "/audit", StatusCode::OK),
        ("p022", "/audit?case=C-nothing", StatusCode::NOT_FOUND),
        ("p005", "/admin/usage", StatusCode::FORBIDDEN),
        ("p003", "/admin/usage", StatusCode::FORBIDDEN),
        ("p032", "/admin/usage", StatusCode::OK),
        ("p022", "/admin/usage", StatusCode::OK),
        ("p032", "/admin/usage?from=2026-3", StatusCode::BAD_REQUEST),
    ];
    for (person, uri, want) in table {
        let who = app.sign_in(person);
        let (status, _) = app.get(Some(&who), uri).await;
        assert_eq!(status, *want, "{person} GET {uri}");
    }
}

#[tokio::test]
async fn a_page_post_without_the_session_csrf_token_is_refused() {
    let app = app();
    let who = app.sign_in("p005");
    let data = [("leave_type", "annual"), ("start_date", "2026-03-09"), ("end_date", "2026-03-13")];
    for csrf in [None, Some("not-the-token")] {
        let mut fields = data.to_vec();
        if let Some(c) = csrf {
            fields.push(("csrf", c));
        }
        let (status, body) = app.post_form(&who, "/forms/absence-and-annual-leave", &fields).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "csrf {csrf:?}");
        assert!(body.contains("expired"), "{body}");
    }
    let (status, _) = app.post_form(&who, "/logout", &[("csrf", "wrong")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.post_form(&who, "/inbox", &[("pick", "C-x|supervisor")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_server_puts_each_error_beside_its_field_and_offers_signing_only_when_valid() {
    let app = app();
    let who = app.sign_in("p005");
    let (status, html) = app
        .post_form(&who, "/forms/absence-and-annual-leave", &[("csrf", &who.csrf), ("leave_type", "annual"), ("start_date", "2026-03-13"), ("end_date", "2026-03-09")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let end = html.find("id=\"f-end_date\"").expect("the end date field");
    let error = html[end..].find("The end date cannot be before the start date.").expect("the rule's message");
    assert!(error < html[end..].find("id=\"f-half_day_end\"").unwrap(), "the message sits beside the end date");
    assert!(!html.contains("id=\"sign\""), "no signing step while there are errors");

    let (status, html) = app
        .post_form(&who, "/forms/absence-and-annual-leave", &[("csrf", &who.csrf), ("leave_type", "annual"), ("start_date", "2026-03-09"), ("end_date", "2026-03-13")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"sign\""), "the signing step follows a valid form");
    assert!(html.contains("<output id=\"f-working_days\" aria-labelledby=\"f-working_days-label\">5</output>"), "working days computed by the server");
    assert!(html.contains("data-level=\"advanced\""));
}

#[tokio::test]
async fn no_page_carries_an_inline_script() {
    let app = app();
    let pages = [("p005", "/forms"), ("p005", "/forms/work-accident-report"), ("p005", "/cases"), ("p003", "/inbox"), ("p019", "/author"), ("p022", "/audit"), ("p032", "/admin/usage")];
    for (person, uri) in pages {
        let who = app.sign_in(person);
        let (_, html) = app.get(Some(&who), uri).await;
        let inline = html.match_indices("<script").filter(|(i, _)| !html[*i..].split('>').next().unwrap_or("").contains(" src=")).count();
        assert_eq!(inline, 0, "{uri} has an inline script");
        assert!(!html.contains(" onclick=") && !html.contains(" onchange="), "{uri} has an inline handler");
    }
    for name in ["app.css", "sign.js", "fill.js", "inbox.js"] {
        let (status, _) = app.get(None, &format!("/static/{name}")).await;
        assert_eq!(status, StatusCode::OK, "{name}");
    }
}

#[tokio::test]
async fn the_usage_page_draws_an_svg_chart_with_a_title_and_the_tables_behind_it() {
    use carimbo::i18n::Lang;
    use carimbo::workflow::{Level, SignatureRecord};
    let app = app();
    let signature = SignatureRecord { level: Level::Advanced, signer: "p005".into(), jws: None, second_factor: false };
    app.state.cases.submit("p005", "absence-and-annual-leave", &common::server::leave(2), signature, Utc::now(), None, Lang::En).expect("a leave request opens");

    let admin = app.sign_in("p032");
    let (status, html) = app.get(Some(&admin), "/admin/usage?lang=en").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"<a href="/admin/usage">Usage figures</a>"#), "linked from the navigation");
    assert!(html.contains(r#"role="img" aria-labelledby="usage-chart-title usage-chart-desc""#), "{html}");
    assert!(html.contains(r#"<title id="usage-chart-title">Cases submitted, completed, rejected, returned and withdrawn per month</title>"#));
    assert!(html.contains(r#"<desc id="usage-chart-desc">Bar chart from "#));
    assert!(html.contains(r#"<dd data-figure="submitted">1</dd>"#), "the totals");
    assert!(html.contains(r#"<th scope="col">Returned for correction</th>"#), "the tables have headers");
    assert!(html.contains(r#"<table class="usage" id="usage-rows">"#));
    assert!(html.contains("Absence and annual-leave application"), "forms by their title");
    assert!(!html.contains(" style="), "the CSP allows no inline style");

    let (_, pt) = app.get(Some(&admin), "/admin/usage?lang=pt&department=DRH").await;
    assert!(pt.contains("<h1>Estatísticas de utilização</h1>"));
    assert!(pt.contains(r#"id="usage-empty""#), "no DRH case: {pt}");
    let (status, zh) = app.get(Some(&admin), "/admin/usage?lang=zh&from=2026-05&to=2026-01").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(zh.contains("<h1>使用統計</h1>") && zh.contains(r#"role="alert""#) && zh.contains("`from`"), "{zh}");
    assert!(zh.contains(r#"value="2026-05""#), "the refused filter is shown back to be corrected");

    let staff = app.sign_in("p005");
    let (_, forms) = app.get(Some(&staff), "/forms").await;
    assert!(!forms.contains("/admin/usage"), "not offered to staff");
}
