//! The pages as a browser meets them, without a browser: the real router over a fresh data
//! directory, requests in, status and HTML out. Who may open which page, CSRF on every post, no
//! inline script anywhere (the CSP allows only `script-src 'self'`), and a form checked by the
//! server with each error beside its field. The scenarios in a real Chromium are in
//! `tests/browser/` (run by `tests/browser.rs`).

use crate::common;
use crate::evidence_case;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use carimbo::http::{AppState, api::session_lifetime};
use carimbo::i18n::Lang;
use carimbo::workflow::{ActRequest, Action, CaseStatus, Level, SignatureRecord};
use chrono::Utc;
use serde_json::Value;
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
    let state = Arc::new(AppState::open(common::demo_paths(&root, data.path())).expect("the server starts on the shipped definitions"));
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
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}={}", common::form_encode(k), common::form_encode(v))).collect();
        let req = Request::post(uri)
            .header(header::COOKIE, &who.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.join("&")))
            .unwrap();
        self.send(req).await
    }

    /// A `multipart/form-data` post (an upload), with the session's CSRF field first.
    async fn post_upload(&self, who: &Browser, uri: &str, file_field: &str, bytes: &[u8]) -> (StatusCode, String) {
        let boundary = "carimbo-page-test";
        let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n", who.csrf).into_bytes();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"evidence.json\"\r\nContent-Type: application/json\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = Request::post(uri)
            .header(header::COOKIE, &who.cookie)
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(Body::from(body))
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

#[tokio::test]
async fn a_visitor_without_a_session_is_sent_to_the_login_page() {
    let app = app();
    for uri in
        ["/forms", "/forms/absence-and-annual-leave", "/cases", "/inbox", "/author", "/audit", "/admin/usage", "/me/security", "/cases/C-nothing/resubmit"]
    {
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
        ("p005", "/me/security", StatusCode::OK),
        ("p032", "/me/security", StatusCode::OK),
        ("p005", "/cases/C-nothing/resubmit", StatusCode::NOT_FOUND),
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
    for (uri, fields) in
        [("/cases/C-x/withdraw", &[("_do", "confirm")][..]), ("/cases/C-x/resubmit", &[("_do", "check")][..]), ("/me/security", &[("_do", "begin")][..])]
    {
        let (status, body) = app.post_form(&who, uri, fields).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
        assert!(body.contains("expired"), "{uri}: {body}");
    }
}

#[tokio::test]
async fn the_server_puts_each_error_beside_its_field_and_offers_signing_only_when_valid() {
    let app = app();
    let who = app.sign_in("p005");
    let (status, html) = app
        .post_form(
            &who,
            "/forms/absence-and-annual-leave",
            &[("csrf", &who.csrf), ("leave_type", "annual"), ("start_date", "2026-03-13"), ("end_date", "2026-03-09")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let end = html.find("id=\"f-end_date\"").expect("the end date field");
    let error = html[end..].find("The end date cannot be before the start date.").expect("the rule's message");
    assert!(error < html[end..].find("id=\"f-half_day_end\"").unwrap(), "the message sits beside the end date");
    assert!(!html.contains("id=\"sign\""), "no signing step while there are errors");

    let (status, html) = app
        .post_form(
            &who,
            "/forms/absence-and-annual-leave",
            &[("csrf", &who.csrf), ("leave_type", "annual"), ("start_date", "2026-03-09"), ("end_date", "2026-03-13")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"sign\""), "the signing step follows a valid form");
    assert!(html.contains("<output id=\"f-working_days\" aria-labelledby=\"f-working_days-label\">5</output>"), "working days computed by the server");
    assert!(html.contains("data-level=\"advanced\""));
}

#[tokio::test]
async fn no_page_carries_an_inline_script() {
    let app = app();
    let pages = [
        ("p005", "/forms"),
        ("p005", "/forms/work-accident-report"),
        ("p005", "/cases"),
        ("p003", "/inbox"),
        ("p019", "/author"),
        ("p022", "/audit"),
        ("p032", "/admin/usage"),
        ("p005", "/me/security"),
    ];
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
    let app = app();
    let signature = SignatureRecord { level: Level::Advanced, signer: "p005".into(), jws: None, second_factor: false, provenance: None };
    app.state
        .cases
        .submit("p005", "absence-and-annual-leave", &common::server::leave(2), signature, Utc::now(), None, Lang::En)
        .expect("a leave request opens");

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

impl App {
    /// A case submitted by `person` (signed at the advanced level, as the page would), with `data`.
    fn submitted(&self, person: &str, data: &Value) -> String {
        let signature = SignatureRecord { level: Level::Advanced, signer: person.into(), jws: None, second_factor: false, provenance: None };
        self.state.cases.submit(person, "absence-and-annual-leave", data, signature, Utc::now(), None, Lang::En).expect("a leave request opens").case.id
    }

    /// The supervisor sends the case back to its submitter with a comment.
    fn returned(&self, case: &str, supervisor: &str, comment: &str) {
        let signature = SignatureRecord { level: Level::Advanced, signer: supervisor.into(), jws: None, second_factor: false, provenance: None };
        let req = ActRequest {
            actor: supervisor.into(),
            step: "supervisor".into(),
            action: Action::Return,
            comment: Some(comment.into()),
            signature,
            now: Utc::now(),
        };
        self.state.cases.act(case, req, None).expect("the supervisor returns it");
    }
}

#[tokio::test]
async fn the_submitter_withdraws_a_case_from_its_page_after_a_confirmation_and_a_second_try_is_refused() {
    let app = app();
    let id = app.submitted("p005", &common::server::leave(2));
    let (staff, supervisor) = (app.sign_in("p005"), app.sign_in("p003"));
    let page = format!("/cases/{id}?lang=en");
    let action = format!("/cases/{id}/withdraw");

    let (_, html) = app.get(Some(&staff), &page).await;
    assert!(html.contains(&format!(r#"action="/cases/{id}/withdraw""#)) && html.contains(r#"id="withdraw-ask""#), "offered to the submitter: {html}");
    let (_, html) = app.get(Some(&supervisor), &page).await;
    assert!(!html.contains(r#"id="withdraw""#), "not offered to an approver");

    // First the reason, then a confirmation that repeats it; cancelling keeps it.
    let reason = "Plans changed: the trip <is> cancelled";
    let (status, html) = app.post_form(&staff, &action, &[("csrf", &staff.csrf), ("reason", reason), ("_do", "ask")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"id="withdraw-confirm""#) && html.contains(r#"id="withdraw-yes""#), "{html}");
    assert!(html.contains("Plans changed: the trip &lt;is&gt; cancelled"), "the reason, escaped, in the confirmation");
    assert_eq!(app.state.cases.case(&id).unwrap().status, CaseStatus::Open, "asking is not withdrawing");
    let (_, html) = app.post_form(&staff, &action, &[("csrf", &staff.csrf), ("reason", reason), ("_do", "cancel")]).await;
    assert!(!html.contains(r#"id="withdraw-confirm""#) && html.contains("cancelled</textarea>"), "back to the form with the reason kept");

    let (_, confirmation) = app.post_form(&staff, &action, &[("csrf", &staff.csrf), ("reason", reason), ("_do", "ask")]).await;
    let key = {
        let at = confirmation.find(r#"name="key" value=""#).expect("the confirmation carries its key") + r#"name="key" value=""#.len();
        confirmation[at..at + confirmation[at..].find('"').unwrap()].to_string()
    };
    let yes = [("csrf", staff.csrf.as_str()), ("reason", reason), ("key", &key), ("_do", "confirm")];
    let (status, location) = app.post_form(&staff, &action, &yes).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, format!("Location: /cases/{id}").as_str()));
    assert_eq!(app.state.cases.case(&id).unwrap().status, CaseStatus::Withdrawn);
    let (status, _) = app.post_form(&staff, &action, &yes).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "pressing yes twice replays the withdrawal");
    assert_eq!(app.state.cases.events(&id).unwrap().iter().filter(|e| e.body["type"] == "withdrawn").count(), 1, "withdrawn once");
    let (_, html) = app.get(Some(&staff), &page).await;
    assert!(html.contains(r#"data-status="withdrawn""#) && html.contains(r#"<span id="withdraw-reason">Plans changed"#), "{html}");
    assert!(!html.contains(r#"id="withdraw-ask""#), "a withdrawn case offers no withdrawal");

    // A case that already has its final decision: the refusal, with its code, on the page.
    let (status, html) = app.post_form(&staff, &format!("{action}?lang=pt"), &[("csrf", &staff.csrf), ("_do", "confirm")]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains(r#"id="withdraw-refused""#) && html.contains(r#"role="alert""#), "{html}");
    assert!(
        html.contains(
            "O processo já tem decisão final e não pode ser retirado. (<a class=\"code\" href=\"/docs/errors#carimbo-e0311\"><code>CARIMBO-E0311</code></a>)"
        ),
        "the code links to its explanation: {html}"
    );

    // Only the submitter withdraws.
    let other = app.submitted("p005", &common::server::leave(3));
    let (status, html) = app.post_form(&supervisor, &format!("/cases/{other}/withdraw?lang=en"), &[("csrf", &supervisor.csrf), ("_do", "confirm")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("<code>CARIMBO-E0309</code></a>)"), "{html}");
    assert_eq!(app.state.cases.case(&other).unwrap().status, CaseStatus::Open);
}

#[tokio::test]
async fn a_returned_case_shows_the_comment_and_its_correction_page_checks_on_the_server_and_shows_what_changed() {
    let app = app();
    let data = common::server::leave(2);
    let (start, end) = (data["start_date"].as_str().unwrap().to_string(), data["end_date"].as_str().unwrap().to_string());
    let id = app.submitted("p005", &data);
    let (staff, supervisor) = (app.sign_in("p005"), app.sign_in("p003"));
    let correct = format!("/cases/{id}/resubmit");

    let (status, _) = app.get(Some(&staff), &correct).await;
    assert_eq!(status, StatusCode::CONFLICT, "an open case is not corrected");
    app.returned(&id, "p003", "Please name who covers for you.");

    let (_, html) = app.get(Some(&staff), &format!("/cases/{id}?lang=en")).await;
    assert!(html.contains(r#"<blockquote id="return-comment">Please name who covers for you.</blockquote>"#), "{html}");
    assert!(html.contains(&format!(r#"href="/cases/{id}/resubmit""#)), "the correction is linked");
    let (_, html) = app.get(Some(&supervisor), &format!("/cases/{id}?lang=en")).await;
    assert!(
        html.contains("Please name who covers for you.") && !html.contains(&format!(r#"href="/cases/{id}/resubmit""#)),
        "the approver sees the comment, not the link"
    );
    let (status, _) = app.get(Some(&supervisor), &correct).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only the submitter corrects");

    let (status, html) = app.get(Some(&staff), &format!("{correct}?lang=en")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!(r#"id="f-start_date" name="start_date" value="{start}""#)), "pre-filled with the case's data: {html}");
    assert!(html.contains("Please name who covers for you."), "the comment above the form");
    assert!(!html.contains(r#"id="sign""#));

    // A rule broken: the error beside the end date, everything typed kept, nothing to sign.
    let unticked = [("_bool", "half_day_start"), ("_bool", "half_day_end")];
    let mut fields = vec![
        ("csrf", staff.csrf.as_str()),
        ("leave_type", "annual"),
        ("start_date", &end),
        ("end_date", &start),
        ("substitute", "Wong Wai Keong"),
        ("_do", "check"),
    ];
    fields.extend(unticked);
    let (status, html) = app.post_form(&staff, &format!("{correct}?lang=en"), &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let at = html.find(r#"id="f-end_date""#).expect("the end date field");
    assert!(
        html[at..].find("The end date cannot be before the start date.").unwrap() < html[at..].find(r#"id="f-half_day_end""#).unwrap(),
        "beside the end date"
    );
    assert!(html.contains(r#"value="Wong Wai Keong""#) && !html.contains(r#"id="sign""#));

    // Nothing changed: said at once, nothing to sign (the unticked boxes are no change).
    let mut same = vec![("csrf", staff.csrf.as_str()), ("leave_type", "annual"), ("start_date", &start), ("end_date", &end), ("_do", "check")];
    same.extend(unticked);
    let (status, html) = app.post_form(&staff, &format!("{correct}?lang=en"), &same).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains(r#"id="no-changes""#) && !html.contains(r#"id="sign""#), "{html}");

    // Corrected: what changed, then the signing step for a resubmission of this case.
    let mut corrected = same.clone();
    corrected.push(("substitute", "Wong Wai Keong"));
    let (status, html) = app.post_form(&staff, &format!("{correct}?lang=en"), &corrected).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"<tr data-pointer="/substitute"><th scope="row">Substitute"#), "{html}");
    assert!(html.contains(r#"<td class="after">Wong Wai Keong</td>"#));
    assert!(!html.contains(r#"data-pointer="/half_day_start""#), "an unticked box the case never had is no change");
    assert!(html.contains(&format!(r#"data-kind="resubmit" data-case="{id}" data-level="advanced""#)), "{html}");
    assert!(html.contains(r#"src="/static/fill.js""#));
    let signed: Value = {
        let at = html.find(r#"id="data-json" type="hidden" value=""#).unwrap() + r#"id="data-json" type="hidden" value=""#.len();
        serde_json::from_str(&html[at..at + html[at..].find('"').unwrap()].replace("&quot;", "\"")).unwrap()
    };
    assert_eq!(
        signed,
        serde_json::json!({"leave_type": "annual", "start_date": start, "end_date": end, "substitute": "Wong Wai Keong"}),
        "what the page will sign"
    );
}

#[tokio::test]
async fn a_second_factor_is_enrolled_from_the_security_page_and_a_wrong_code_changes_nothing() {
    let app = app();
    let who = app.sign_in("p007");
    let (status, html) = app.get(Some(&who), "/me/security?lang=en").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"<a href="/me/security">Security</a>"#), "linked from the header");
    assert!(html.contains(r#"data-enrolled="false""#) && html.contains(r#"id="totp-begin""#), "{html}");

    let (status, location) = app.post_form(&who, "/me/security", &[("csrf", &who.csrf), ("_do", "begin")]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "Location: /me/security#enrol"));
    let pending = app.state.accounts.pending_totp("p007", Utc::now()).unwrap().expect("an enrolment waits for its code");
    let (_, html) = app.get(Some(&who), "/me/security?lang=en").await;
    assert!(html.contains(r#"id="totp-qr""#) && html.contains(r#"src="data:image/png;base64,iVBOR"#), "the QR code as a data: image (PNG)");
    assert!(html.contains(&format!(r#"data-secret="{}""#, pending.secret)), "the secret as text");

    let code = app.state.accounts.current_totp_for_tests("p007", Utc::now()).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, html) = app.post_form(&who, "/me/security?lang=zh", &[("csrf", &who.csrf), ("code", wrong), ("_do", "confirm")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains(r#"<p class="field-error" id="totp-code-error">雙重認證碼不正確或已過期。 (CARIMBO-E0604)</p>"#), "{html}");
    assert!(html.contains(&format!(r#"value="{wrong}""#)) && html.contains(r#"aria-invalid="true""#), "the code typed stays, marked");
    assert!(html.contains(&format!(r#"data-secret="{}""#, pending.secret)), "the same secret shown again");
    assert!(!app.state.accounts.get("p007").unwrap().has_second_factor(), "nothing changed");

    let (status, location) =
        app.post_form(&who, "/me/security", &[("csrf", &who.csrf), ("code", &format!("{} {}", &code[..3], &code[3..])), ("_do", "confirm")]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "Location: /me/security?enrolled=1"));
    assert!(app.state.accounts.get("p007").unwrap().has_second_factor());
    let (_, html) = app.get(Some(&who), "/me/security?enrolled=1&lang=en").await;
    assert!(html.contains(r#"data-enrolled="true""#) && html.contains(r#"id="enrolled-now""#) && !html.contains(r#"id="totp-qr""#), "{html}");
}

#[tokio::test]
async fn replacing_a_second_factor_from_the_security_page_asks_for_a_code_of_the_old_one() {
    let app = app();
    let who = app.sign_in("p007");
    let accounts = &app.state.accounts;
    accounts.begin_totp("p007", None, Utc::now()).unwrap();
    accounts.confirm_totp("p007", &accounts.current_totp_for_tests("p007", Utc::now()).unwrap(), Utc::now()).unwrap();
    let (_, html) = app.get(Some(&who), "/me/security?lang=en").await;
    assert!(html.contains(r#"data-enrolled="true""#) && html.contains(r#"id="totp-current-code" name="current_code""#), "{html}");

    let (status, html) = app.post_form(&who, "/me/security?lang=en", &[("csrf", &who.csrf), ("_do", "begin")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains(r#"id="totp-current-code-error""#) && html.contains("(CARIMBO-E0610)"), "{html}");
    let code = accounts.next_totp_for_tests("p007", Utc::now()).unwrap();
    let wrong = ["000000", "111111", "222222"].into_iter().find(|w| *w != code && *w != accounts.current_totp_for_tests("p007", Utc::now()).unwrap()).unwrap();
    let (status, html) = app.post_form(&who, "/me/security?lang=en", &[("csrf", &who.csrf), ("current_code", wrong), ("_do", "begin")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("(CARIMBO-E0604)") && html.contains(&format!(r#"value="{wrong}""#)), "the code typed stays, marked: {html}");
    assert!(accounts.pending_totp("p007", Utc::now()).unwrap().is_none(), "nothing started");

    let (status, location) =
        app.post_form(&who, "/me/security", &[("csrf", &who.csrf), ("current_code", &format!("{} {}", &code[..3], &code[3..])), ("_do", "begin")]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "Location: /me/security#enrol"));
    let (_, html) = app.get(Some(&who), "/me/security?lang=en").await;
    assert!(html.contains(r#"id="totp-qr""#), "the new secret waits for its first code: {html}");
}

#[tokio::test]
async fn an_approver_without_a_second_factor_is_sent_from_the_inbox_to_enrol_one() {
    let app = app();
    let data = common::read_json(&common::repo().join("forms/family-allowance.json"))["examples"]["valid"][0]["data"].clone();
    let signature = SignatureRecord { level: Level::Advanced, signer: "p032".into(), jws: None, second_factor: false, provenance: None };
    let id = app.state.cases.submit("p032", "family-allowance", &data, signature, Utc::now(), None, Lang::En).expect("the example opens a case").case.id;
    let signature = SignatureRecord { level: Level::Advanced, signer: "p018".into(), jws: None, second_factor: false, provenance: None };
    let req = ActRequest { actor: "p018".into(), step: "hr-check".into(), action: Action::Approve, comment: None, signature, now: Utc::now() };
    app.state.cases.act(&id, req, None).expect("HR checks it");

    let head = app.sign_in("p028");
    let (_, html) = app.get(Some(&head), "/inbox?lang=en").await;
    assert!(html.contains(&format!(r#"data-case="{id}" data-step="head""#)) && html.contains(r#"data-second-factor="true""#), "{html}");
    assert!(html.contains(r#"id="no-second-factor""#) && html.contains(r#"<a href="/me/security">set one up</a>"#), "{html}");

    app.state.accounts.begin_totp("p028", None, Utc::now()).unwrap();
    let code = app.state.accounts.current_totp_for_tests("p028", Utc::now()).unwrap();
    app.state.accounts.confirm_totp("p028", &code, Utc::now()).unwrap();
    let (_, html) = app.get(Some(&head), "/inbox?lang=en").await;
    assert!(html.contains(r#"id="totp""#) && !html.contains(r#"id="no-second-factor""#), "enrolled: just the code field");
}

#[tokio::test]
async fn a_bidi_override_in_a_comment_is_shown_as_a_marked_code_point_and_does_not_turn_the_text_around() {
    let app = app();
    let id = app.submitted("p005", &common::server::leave(2));
    // "approved" written backwards behind U+202E reads as "devorppa" reversed: the override would
    // make the comment say something else than its letters; zero-width and control characters too.
    app.returned(&id, "p003", "Please fix \u{202E}devorppa\u{202C} dates\u{200B}\u{7}");
    let staff = app.sign_in("p005");
    for page in [format!("/cases/{id}?lang=en"), format!("/cases/{id}/resubmit?lang=en")] {
        let (status, html) = app.get(Some(&staff), &page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let at = html.find(r#"<blockquote id="return-comment">"#).expect("the comment");
        let comment = &html[at..at + html[at..].find("</blockquote>").unwrap()];
        assert!(comment.contains(r#"Please fix <span class="hidden-char">⟨U+202E⟩</span>devorppa<span class="hidden-char">⟨U+202C⟩</span> dates<span class="hidden-char">⟨U+200B⟩</span><span class="hidden-char">⟨U+0007⟩</span>"#), "{page}: {comment}");
        for c in ['\u{202E}', '\u{202C}', '\u{200B}', '\u{7}'] {
            assert!(!html.contains(c), "{page} carries {:04X} as it is", c as u32);
        }
    }
    // The recorded comment is what was typed: only its display changes.
    let events = serde_json::to_string(&app.state.cases.events(&id).unwrap().iter().map(|e| &e.body).collect::<Vec<_>>()).unwrap();
    assert!(events.contains("\u{202E}devorppa\u{202C}"), "the record keeps the text as written");
}

#[tokio::test]
async fn times_on_the_pages_are_macau_time_and_say_so_while_the_api_keeps_utc() {
    let app = app();
    // 16:38 UTC is 00:38 the next day in Macau.
    let at = Utc::now().date_naive().and_hms_opt(16, 38, 0).unwrap().and_utc();
    let signature = SignatureRecord { level: Level::Advanced, signer: "p005".into(), jws: None, second_factor: false, provenance: None };
    let id = app
        .state
        .cases
        .submit("p005", "absence-and-annual-leave", &common::server::leave(2), signature, at, None, Lang::En)
        .expect("a leave request opens")
        .case
        .id;
    let macau = (at.date_naive() + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let staff = app.sign_in("p005");
    for (lang, label) in [("en", " 00:38 (Macau time)"), ("pt", " 00:38 (hora de Macau)"), ("zh", " 00:38（澳門時間）")] {
        let (status, html) = app.get(Some(&staff), &format!("/cases/{id}?lang={lang}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(&format!("{macau}{label}")), "{lang}: the case page shows {macau}{label}");
        assert!(!html.contains("16:38"), "{lang}: no UTC time on the page");
    }
    let (_, mine) = app.get(Some(&staff), "/cases?lang=en").await;
    assert!(mine.contains(&format!("{macau} 00:38 (Macau time)")), "my cases list shows Macau time");
    // The record keeps UTC.
    assert_eq!(app.state.cases.case(&id).unwrap().opened_at, at);
}

#[tokio::test]
async fn a_skipped_step_says_why_in_the_readers_language_not_in_the_engines_words() {
    let app = app();
    // Two days are under the department's threshold, so the head's step is skipped.
    let id = app.submitted("p005", &common::server::leave(2));
    let signature = SignatureRecord { level: Level::Advanced, signer: "p003".into(), jws: None, second_factor: false, provenance: None };
    let req = ActRequest { actor: "p003".into(), step: "supervisor".into(), action: Action::Approve, comment: None, signature, now: Utc::now() };
    let view = app.state.cases.act(&id, req, None).expect("the supervisor approves");
    assert_eq!(view.case.steps["head"].status, carimbo::workflow::StepStatus::Skipped);
    let staff = app.sign_in("p005");
    for (lang, says) in [
        ("zh", "毋須此步驟：此個案不符合該步驟的條件"),
        ("pt", "Passo dispensado: o processo não preenche a condição"),
        ("en", "Not needed: the case does not meet this step's condition"),
    ] {
        let (status, html) = app.get(Some(&staff), &format!("/cases/{id}?lang={lang}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(says), "{lang}: the skipped head step says {says:?}");
        assert!(!html.contains("condition not met"), "{lang}: the engine's words are not shown");
    }
}

#[tokio::test]
async fn an_approvers_comment_is_shown_with_their_act_on_the_case_page() {
    let app = app();
    let id = app.submitted("p005", &common::server::leave(2));
    let signature = SignatureRecord { level: Level::Advanced, signer: "p003".into(), jws: None, second_factor: false, provenance: None };
    let req = ActRequest {
        actor: "p003".into(),
        step: "supervisor".into(),
        action: Action::Approve,
        comment: Some("Boas férias <b>já</b>".into()),
        signature,
        now: Utc::now(),
    };
    app.state.cases.act(&id, req, None).expect("the supervisor approves");
    let (status, html) = app.get(Some(&app.sign_in("p005")), &format!("/cases/{id}?lang=pt")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("blockquote class=\"act-comment\">Boas férias &lt;b&gt;já&lt;/b&gt;</blockquote>"), "the comment, escaped, under the act");
}

/// Signs in through the sign-in form of a real server (the page reads the peer address) and
/// says where the browser is sent.
fn sign_in_by_form(s: &common::server::TestServer, person: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let mut r = agent.get(&format!("{}/login", s.base)).call().unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("carimbo_login="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = r.body_mut().read_to_string().unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).and_then(|v| v.split('"').next()).unwrap().to_string();
    let body = format!("person={person}&password={}&csrf={csrf}", common::form_encode(carimbo::http::DEMO_PASSWORD));
    let r = agent
        .post(&format!("{}/login", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &cookie)
        .send(body.as_bytes())
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "{person} signs in");
    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

#[test]
fn approvers_land_on_their_inbox_after_signing_in_and_staff_on_the_forms() {
    let s = common::server::TestServer::start();
    assert_eq!(sign_in_by_form(&s, "p003"), "/inbox", "a supervisor starts with what waits for them");
    assert_eq!(sign_in_by_form(&s, "p005"), "/forms", "a staff member starts with the forms");
}

#[tokio::test]
async fn inbox_rows_my_cases_and_the_case_page_show_the_forms_summary_fields() {
    let app = app();
    let id = app.submitted("p005", &common::server::leave(3));
    let working_days = app.state.cases.case(&id).unwrap().data["working_days"].to_string();
    let start = common::server::leave(3)["start_date"].as_str().unwrap().to_string();
    let supervisor = app.sign_in("p003");
    let (status, inbox) = app.get(Some(&supervisor), "/inbox?lang=en").await;
    assert_eq!(status, StatusCode::OK);
    let row = inbox.split(&format!("data-case=\"{id}\"")).nth(1).and_then(|r| r.split("</tr>").next()).expect("the case's inbox row");
    for says in ["<dt>Type of leave</dt><dd>Annual leave</dd>", &format!("<dd>{start}</dd>"), &format!("<dd>{working_days}</dd>")] {
        assert!(row.contains(says), "the inbox row shows {says:?}: {row}");
    }
    assert!(
        row.contains(&format!("data-summary=\"Type of leave: Annual leave · Start date: {start}")),
        "the row carries its summary for the batch confirmation: {row}"
    );
    assert!(inbox.contains("id=\"confirm-list\""), "the confirmation lists the cases it acts on");
    let staff = app.sign_in("p005");
    let (_, mine) = app.get(Some(&staff), "/cases?lang=zh").await;
    let row = mine.split(&format!("data-case=\"{id}\"")).nth(1).and_then(|r| r.split("</tr>").next()).expect("the case's row in my cases");
    assert!(row.contains("<dt>假期類別</dt><dd>年假</dd>"), "my cases shows the summary: {row}");
    assert!(row.contains(&format!("<dd>{start}</dd>")), "my cases shows the start date: {row}");
    let (_, page) = app.get(Some(&staff), &format!("/cases/{id}?lang=pt")).await;
    assert!(page.contains("id=\"case-summary\"") && page.contains(&format!("<dd>{start}</dd>")), "the case page shows the summary");
}

#[tokio::test]
async fn the_inbox_link_shows_how_many_steps_wait_and_the_header_names_the_person() {
    let app = app();
    let supervisor = app.sign_in("p003");
    let count = |html: &str| html.split("<span class=\"count\" aria-hidden=\"true\">").nth(1).and_then(|r| r.split('<').next()).map(str::to_string);
    let (_, before) = app.get(Some(&supervisor), "/forms?lang=en").await;
    let n: usize = count(&before).expect("the inbox link carries a count").parse().unwrap();
    app.submitted("p005", &common::server::leave(2));
    app.submitted("p005", &common::server::leave(4));
    let (_, after) = app.get(Some(&supervisor), "/forms?lang=en").await;
    assert_eq!(count(&after), Some((n + 2).to_string()), "two more steps wait");
    assert!(after.contains(&format!("({} waiting)", n + 2)), "screen readers hear the count in words");
    assert!(after.contains("id=\"signed-in-as\" title=\"p003\">Ho Chi Wai<"), "the header names the person, not the id");
    let (_, staff) = app.get(Some(&app.sign_in("p005")), "/forms?lang=en").await;
    assert!(!staff.contains("id=\"inbox-link\""), "a staff member who approves nothing has no inbox link");
}

#[tokio::test]
async fn an_auditor_verifies_an_uploaded_bundle_and_reads_what_was_signed_without_the_restricted_diagnosis() {
    let app = app();
    let h = evidence_case::Harness::new();
    let leave = evidence_case::long_case(&h);
    let bundle = h.export(&leave, "p022").to_bytes();
    let auditor = app.sign_in("p022");
    let (status, html) = app.post_upload(&auditor, "/audit/verify?lang=pt", "bundle", &bundle).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-passed=\"true\"") && html.contains("Verificação aprovada"), "the report passes, in Portuguese");
    assert!(html.contains("id=\"what-was-signed\""), "what was signed is shown");
    assert!(html.contains("family matters in Lisbon, tickets booked, substitute agreed"), "the signed data itself, not only hashes");
    assert!(html.contains("Wong Ka Man"));
    // A medical certificate: its diagnosis is restricted to HR and doctors, not auditors.
    let medical = evidence_case::medical_case(&h);
    let bundle = h.export(&medical, "p018").to_bytes();
    let (status, html) = app.post_upload(&auditor, "/audit/verify?lang=en", "bundle", &bundle).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-passed=\"true\""), "{html}");
    assert!(!html.contains("K35"), "the restricted diagnosis never reaches an auditor's page");
    assert!(html.contains("data-field=\"diagnosis_code\"><em class=\"muted\">(restricted: not for your roles)"), "the diagnosis says it is restricted");
}

#[tokio::test]
async fn a_tampered_bundle_fails_with_its_place_and_code_and_shows_no_data() {
    let app = app();
    let h = evidence_case::Harness::new();
    let id = evidence_case::long_case(&h);
    let text = String::from_utf8(h.export(&id, "p022").to_bytes()).unwrap();
    let tampered = text.replacen("family matters in Lisbon", "family matters in Paris", 1);
    assert_ne!(text, tampered);
    let auditor = app.sign_in("p022");
    let (status, html) = app.post_upload(&auditor, "/audit/verify?lang=zh", "bundle", tampered.as_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-passed=\"false\"") && html.contains("核實未通過"), "it fails, in Chinese");
    assert!(html.contains("href=\"/docs/errors#carimbo-e09"), "its code links to the explanation");
    assert!(!html.contains("id=\"what-was-signed\""), "no data is shown from a bundle that did not verify");
    // Not JSON at all, an empty upload, and a bundle over the limit: refused with their codes.
    let (_, html) = app.post_upload(&auditor, "/audit/verify?lang=en", "bundle", b"not a bundle").await;
    assert!(html.contains("data-passed=\"false\"") && html.contains("The file is not a valid evidence bundle."), "{html}");
    let (status, html) = app.post_upload(&auditor, "/audit/verify?lang=en", "bundle", b"").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("CARIMBO-E0727"), "{html}");
    let big = vec![b' '; 8 * 1024 * 1024 + 1];
    let (status, html) = app.post_upload(&auditor, "/audit/verify?lang=en", "bundle", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(html.contains("CARIMBO-E0726") && html.contains("larger than 8 MiB"), "{html}");
    // Without the CSRF field, or without the auditor's role: refused before anything is verified.
    let staff = app.sign_in("p005");
    let (status, _) = app.post_upload(&staff, "/audit/verify", "bundle", text.as_bytes()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let forged = Browser { cookie: auditor.cookie.clone(), csrf: "forged".into() };
    let (status, html) = app.post_upload(&forged, "/audit/verify", "bundle", text.as_bytes()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!html.contains("verify-report"), "nothing was verified");
}

#[tokio::test]
async fn the_case_page_offers_its_evidence_bundle_for_download() {
    let app = app();
    let id = app.submitted("p005", &common::server::leave(2));
    let (_, html) = app.get(Some(&app.sign_in("p005")), &format!("/cases/{id}?lang=en")).await;
    assert!(
        html.contains(&format!("class=\"button\" id=\"download-evidence\" href=\"/api/v1/cases/{id}/evidence\" download=\"evidence-{id}.json\"")),
        "{html}"
    );
    assert!(html.contains("Download evidence bundle"));
}

#[tokio::test]
async fn auditors_find_cases_by_form_person_department_and_period() {
    let app = app();
    let mine = app.submitted("p005", &common::server::leave(2));
    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).date_naive();
    let auditor = app.sign_in("p022");
    let hit = |html: &str| html.contains(&format!("data-case=\"{mine}\""));
    let (status, html) = app.get(Some(&auditor), "/audit?form=absence-and-annual-leave&lang=en").await;
    assert_eq!(status, StatusCode::OK);
    assert!(hit(&html) && html.contains("case(s) found"), "by form");
    let (_, html) = app.get(Some(&auditor), "/audit?form=family-allowance").await;
    assert!(!hit(&html), "another form does not find it");
    let (_, html) = app.get(Some(&auditor), "/audit?person=p005").await;
    assert!(hit(&html), "by the submitter");
    let (_, html) = app.get(Some(&auditor), "/audit?person=p003").await;
    assert!(hit(&html), "by the approver it waits for");
    let (_, html) = app.get(Some(&auditor), "/audit?person=p040").await;
    assert!(!hit(&html), "not by a stranger to it");
    let (_, html) = app.get(Some(&auditor), "/audit?department=DAF").await;
    assert!(hit(&html), "by the submitter's department");
    let (_, html) = app.get(Some(&auditor), "/audit?department=DTI").await;
    assert!(!hit(&html));
    let (_, html) = app.get(Some(&auditor), &format!("/audit?from={today}&to={today}")).await;
    assert!(hit(&html), "by the day of submission, Macau time");
    let (_, html) = app.get(Some(&auditor), &format!("/audit?to={}", today - chrono::Duration::days(1))).await;
    assert!(!hit(&html), "not before it was submitted");
    let (status, html) = app.get(Some(&auditor), "/audit?from=2026-13-01&lang=en").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("CARIMBO-E0728"), "{html}");
    let (status, html) = app.get(Some(&auditor), "/audit?from=2026-03-02&to=2026-03-01").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    let (status, _) = app.get(Some(&app.sign_in("p005")), "/audit?form=absence-and-annual-leave").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "searching is for auditors");
}

#[tokio::test]
async fn error_codes_link_to_their_explanation_served_by_the_server() {
    let app = app();
    let (status, html) = app.get(None, "/docs/errors?lang=zh").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<tr id=\"carimbo-e0721\">"), "each code is an anchor");
    assert!(html.contains("登入頁面已過期，請重新登入。"), "with its message in the reader's language");
    assert!(html.contains("<tr id=\"carimbo-e1301\">") && html.contains("<tr id=\"carimbo-e0520\">"), "both error documents");
    // A refusal on a page links its code.
    let staff = app.sign_in("p005");
    let (_, html) =
        app.post_form(&staff, "/me/delegation?lang=en", &[("csrf", &staff.csrf), ("delegate", "p005"), ("from", "2099-01-01"), ("to", "2099-01-02")]).await;
    assert!(html.contains("<a class=\"code\" href=\"/docs/errors#carimbo-e0722\"><code>CARIMBO-E0722</code></a>"), "{html}");
}

#[tokio::test]
async fn switching_language_after_a_check_keeps_the_errors_shown_in_the_new_language() {
    let app = app();
    let staff = app.sign_in("p005");
    let fields = [("csrf", staff.csrf.as_str()), ("leave_type", "annual"), ("start_date", "2026-03-13"), ("end_date", "2026-03-09")];
    let (status, checked) = app.post_form(&staff, "/forms/absence-and-annual-leave?lang=en", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(checked.contains("name=\"_checked\""), "the page remembers it was checked");
    let mut switched = fields.to_vec();
    switched.extend([("_checked", "1"), ("_do", "lang")]);
    let (status, zh) = app.post_form(&staff, "/forms/absence-and-annual-leave?lang=zh", &switched).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the errors are still there");
    assert!(zh.contains("class=\"field-error\""), "and shown beside their fields");
    let mut fresh = fields.to_vec();
    fresh.push(("_do", "lang"));
    let (status, html) = app.post_form(&staff, "/forms/absence-and-annual-leave?lang=zh", &fresh).await;
    assert_eq!(status, StatusCode::OK, "a form never checked shows no errors after a switch");
    assert!(!html.contains("class=\"field-error\""));
}

#[tokio::test]
async fn a_skipped_step_names_the_fields_its_condition_reads_with_this_cases_values() {
    let app = app();
    let id = app.submitted("p005", &common::server::leave(2));
    let signature = SignatureRecord { level: Level::Advanced, signer: "p003".into(), jws: None, second_factor: false, provenance: None };
    let req = ActRequest { actor: "p003".into(), step: "supervisor".into(), action: Action::Approve, comment: None, signature, now: Utc::now() };
    app.state.cases.act(&id, req, None).expect("the supervisor approves");
    let (_, html) = app.get(Some(&app.sign_in("p005")), &format!("/cases/{id}?lang=en")).await;
    let head = html.split("data-step=\"head\"").nth(1).and_then(|r| r.split("</li>").next()).expect("the head's step");
    assert!(head.contains("The condition reads: <strong>Working days</strong> (this case: 2)"), "{head}");
    assert!(head.contains("the department's setting <code>head_threshold_days</code>"), "{head}");
}

#[tokio::test]
async fn scroll_regions_of_wide_tables_can_be_reached_by_keyboard() {
    let app = app();
    app.submitted("p005", &common::server::leave(2));
    let (_, html) = app.get(Some(&app.sign_in("p032")), "/admin/usage?lang=en").await;
    assert!(html.contains("class=\"scroll\" tabindex=\"0\" role=\"region\" aria-labelledby=\"usage-rows-caption\""), "{html}");
    assert!(!html.contains("<div class=\"scroll\">"), "no scroll region is out of the keyboard's reach");
}

fn delegation_fields<'a>(who: &'a Browser, delegate: &'a str, from: &'a str, to: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("csrf", who.csrf.as_str()), ("_do", "set"), ("delegate", delegate), ("from", from), ("to", to), ("forms", "absence-and-annual-leave")]
}

#[tokio::test]
async fn a_staff_member_sets_their_own_delegation_and_the_administrator_sees_and_ends_it_both_recorded() {
    let data = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let open = || {
        let state = Arc::new(AppState::open(common::demo_paths(&root, data.path())).unwrap());
        App { router: carimbo::http::router(state.clone()), state, _data: tempfile::tempdir().unwrap() }
    };
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (today.to_string(), (today + chrono::Duration::days(4)).to_string());
    let id = {
        let app = open();
        let supervisor = app.sign_in("p003");
        let (status, html) = app.post_form(&supervisor, "/me/delegation?lang=en", &delegation_fields(&supervisor, "p004", &from, &to)).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("The delegation is set and recorded."), "{html}");
        let d =
            app.state.cases.directory().delegations().iter().find(|d| d.principal == "p003" && d.from == today).cloned().expect("the delegation is in force");
        assert_eq!((d.delegate.as_str(), d.forms.clone()), ("p004", Some(vec!["absence-and-annual-leave".to_string()])));
        assert!(html.contains(&format!("data-delegation=\"{}\"", d.id)), "it is listed on the person's page");
        d.id
    };
    // A restart: the delegation is read back from the record.
    let app = open();
    assert!(app.state.cases.directory().delegations().iter().any(|d| d.id == id), "the delegation survives a restart");
    let admin = app.sign_in("p032");
    let (status, html) = app.get(Some(&admin), "/admin/delegations?lang=en").await;
    assert_eq!(status, StatusCode::OK);
    let row = html.split(&format!("data-delegation=\"{id}\"")).nth(1).and_then(|r| r.split("</tr>").next()).unwrap();
    assert!(row.contains("Ho Chi Wai (p003)") && row.contains("in force"), "who set it, and that it is in force: {row}");
    let (status, html) = app.post_form(&admin, "/admin/delegations?lang=en", &[("csrf", &admin.csrf), ("_do", "end"), ("id", &id)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("The delegation has ended."));
    assert!(!app.state.cases.directory().delegations().iter().any(|d| d.id == id));
    let record = std::fs::read_to_string(data.path().join("delegations.jsonl")).unwrap();
    let lines: Vec<Value> = record.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[0]["event"].as_str(), lines[0]["by"].as_str()), (Some("set"), Some("p003")));
    assert_eq!((lines[1]["event"].as_str(), lines[1]["by"].as_str(), lines[1]["id"].as_str()), (Some("ended"), Some("p032"), Some(id.as_str())));
    drop(app);
    let app = open();
    assert!(!app.state.cases.directory().delegations().iter().any(|d| d.id == id), "the end survives a restart too");
}

#[tokio::test]
async fn a_bad_delegation_is_refused_with_its_code_and_nothing_is_recorded() {
    let app = app();
    let staff = app.sign_in("p005");
    let today = chrono::Utc::now().date_naive();
    let (soon, later, past) =
        ((today + chrono::Duration::days(2)).to_string(), (today + chrono::Duration::days(5)).to_string(), (today - chrono::Duration::days(3)).to_string());
    let before = app.state.cases.directory().delegations().len();
    let cases: [(Vec<(&str, &str)>, &str); 7] = [
        (delegation_fields(&staff, "p005", &soon, &later), "CARIMBO-E0722"),
        (delegation_fields(&staff, "nobody", &soon, &later), "CARIMBO-E0722"),
        (delegation_fields(&staff, "p006", "next week", &later), "CARIMBO-E0723"),
        (delegation_fields(&staff, "p006", &later, &soon), "CARIMBO-E0723"),
        (delegation_fields(&staff, "p006", &past, &past), "CARIMBO-E0723"),
        (delegation_fields(&staff, "p006", &soon, "2999-01-01"), "CARIMBO-E0723"),
        (
            {
                let mut f = delegation_fields(&staff, "p006", &soon, &later);
                f.push(("forms", "no-such-form"));
                f
            },
            "CARIMBO-E0724",
        ),
    ];
    for (fields, code) in cases {
        let (status, html) = app.post_form(&staff, "/me/delegation?lang=en", &fields).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(html.contains(code), "{fields:?}: {code}");
        assert!(html.contains(&format!("value=\"{}\"", fields[3].1)), "what was typed is kept");
    }
    assert_eq!(app.state.cases.directory().delegations().len(), before, "nothing changed");
    assert!(!app.state.paths.data.join("delegations.jsonl").exists(), "nothing was recorded");
    // Someone else's delegation cannot be ended by a staff member; an unknown one is not found.
    let (status, html) = app.post_form(&staff, "/me/delegation?lang=en", &[("csrf", &staff.csrf), ("_do", "end"), ("id", "d-2026-002")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("CARIMBO-E0725"));
    let (status, _) = app.post_form(&staff, "/me/delegation", &[("csrf", &staff.csrf), ("_do", "end"), ("id", "no-such")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.post_form(&staff, "/admin/delegations", &[("csrf", &staff.csrf), ("_do", "end"), ("id", "d-2026-002")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the administrator's page is the administrator's");
    assert!(app.state.cases.directory().delegations().iter().any(|d| d.id == "d-2026-002"));
}
