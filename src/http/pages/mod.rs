//! Server-rendered pages (maud), readable without JavaScript except for signing, in zh / pt / en.
//!
//! Pages use the same `AppState` and `CaseService` as the API; forms post back to page routes
//! that check the session's CSRF token. The signing scripts (`/static/sign.js` and the page
//! scripts that use it) sign with WebCrypto using a key file the person selects: the private key
//! never leaves the browser, and the signed act goes to the JSON API like any other client's.
//!
//! One file per area: `fill` (the forms and filling one in), `cases` (my cases, a case's
//! progress, withdrawing it), `resubmit` (correcting a returned case), `security` (enrolling a
//! second factor), `inbox` (the approver's batch), `author` (checking definitions), `audit` (any
//! case with its event chain), `usage` (the usage figures with their chart); `render` draws a
//! form from its definition.

mod audit;
mod author;
mod cases;
mod delegation;
mod explain;
mod fill;
mod inbox;
mod keys;
mod notifications;
mod outbox;
mod pdf;
pub mod render;
mod resubmit;
mod security;
mod summary;
mod trust;
mod usage;
mod verify;

pub use fill::level_label;

use super::auth::{Caller, LANG_COOKIE, lang_of};
use super::{AppState, RouteKind, RouteSpec};
use crate::accounts::secrets_equal;
use crate::i18n::Lang;
use axum::Router;
use axum::extract::{ConnectInfo, Form, FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

pub use crate::wording::{is_hidden_char, status_label, t, visible, when};

/// What every page needs to draw its frame: the language, whether `?lang=` chose it (then it is
/// remembered in a cookie), and the rest of the query, which the language links keep.
pub struct PageLang {
    pub lang: Lang,
    pub explicit: bool,
    pub keep: String,
}

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let explicit = query.split('&').any(|kv| kv.starts_with("lang="));
        let keep: Vec<&str> = query.split('&').filter(|kv| !kv.is_empty() && !kv.starts_with("lang=")).collect();
        Ok(PageLang { lang: lang_of(parts), explicit, keep: keep.join("&") })
    }
}

impl PageLang {
    fn switch_to(&self, code: &str) -> String {
        if self.keep.is_empty() { format!("?lang={code}") } else { format!("?{}&lang={code}", self.keep) }
    }
}

/// A signed-in person on a page. A visitor without a session is sent to the login page
/// instead of getting the API's JSON problem.
pub struct PageCaller(pub Caller);

impl<S> FromRequestParts<S> for PageCaller
where
    Arc<AppState>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Ok(mut caller) = <Caller as FromRequestParts<S>>::from_request_parts(parts, state).await else {
            return Err(Redirect::to("/login").into_response());
        };
        if caller.has("approver") {
            let (st, person) = (Arc::<AppState>::from_ref(state), caller.person.clone());
            let page = tokio::task::spawn_blocking(move || st.cases.inbox(&person, None, INBOX_COUNT_LIMIT + 1)).await;
            caller.waiting = page.ok().and_then(Result::ok).map(|p| p.entries.len());
        }
        Ok(PageCaller(caller))
    }
}

/// The inbox link counts up to this many waiting steps, then says "100+".
const INBOX_COUNT_LIMIT: usize = 100;

/// The inbox link with how many steps wait (`Inbox (3)`), read by screen readers as words.
fn inbox_link(lang: Lang, waiting: Option<usize>) -> Markup {
    let label = t(lang, "待辦", "Pendentes", "Inbox");
    let count = waiting.map(|n| if n > INBOX_COUNT_LIMIT { format!("{INBOX_COUNT_LIMIT}+") } else { n.to_string() });
    html! {
        a #inbox-link href="/inbox" {
            (label)
            @if let Some(n) = count {
                " " span.count aria-hidden="true" { (n) }
                span.visually-hidden { (match lang {
                    Lang::Zh => format!("（{n} 項待辦）"),
                    Lang::Pt => format!(" ({n} pendentes)"),
                    Lang::En => format!(" ({n} waiting)"),
                }) }
            }
        }
    }
}

/// The page frame: header with navigation and language switch, then the content.
/// A signed-in person's page: the layout with the title as its one `h1`, then `body`.
pub fn titled(pl: &PageLang, caller: &Caller, title: &str, body: Markup) -> Markup {
    layout(pl, title, Some(caller), html! { h1 { (title) } (body) })
}

pub fn layout(pl: &PageLang, title: &str, caller: Option<&Caller>, body: Markup) -> Markup {
    layout_keeping(pl, title, caller, None, body)
}

/// The page frame for a page with a form being filled in (`(form element id, its action)`):
/// the language switch posts that form, so what the person typed survives the switch.
pub fn layout_keeping(pl: &PageLang, title: &str, caller: Option<&Caller>, keep_form: Option<(&str, &str)>, body: Markup) -> Markup {
    let lang = pl.lang;
    let switch = |code: &'static str, tag: &'static str, name: &'static str, current: bool| match keep_form {
        Some((form, action)) => html! {
            button.link type="submit" form=(form) name="_do" value="lang" formaction=(format!("{action}?lang={code}")) lang=(tag) aria-current=[current.then_some("true")] { (name) }
        },
        None => html! { a href=(pl.switch_to(code)) lang=(tag) aria-current=[current.then_some("true")] { (name) } },
    };
    html! {
        (DOCTYPE)
        html lang=(match lang { Lang::Zh => "zh-Hant-MO", Lang::Pt => "pt-PT", Lang::En => "en" }) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(c) = caller { meta name="csrf-token" content=(c.session.csrf); }
                title { (title) " · carimbo" }
                link rel="stylesheet" href="/static/app.css";
                link rel="icon" href="data:,";
            }
            body {
                header.top {
                    a.brand href="/" { "carimbo" }
                    @if let Some(c) = caller {
                        nav aria-label=(t(lang, "主選單", "Menu", "Menu")) {
                            a href="/forms" { (t(lang, "表格", "Formulários", "Forms")) }
                            a href="/cases" { (t(lang, "我的個案", "Os meus processos", "My cases")) }
                            @if c.has("approver") { (inbox_link(lang, c.waiting)) }
                            @if c.has("author") || c.has("admin") { a href="/author" { (t(lang, "表格設計", "Autoria", "Authoring")) } }
                            @if c.has("auditor") { a href="/audit" { (t(lang, "稽核", "Auditoria", "Audit")) } }
                            @if c.has("auditor") { a href="/audit/verify" { (t(lang, "核實證據包", "Verificar prova", "Verify a bundle")) } }
                            @if c.has("admin") { a href="/admin/delegations" { (t(lang, "委託", "Substituições", "Delegations")) } }
                            @if c.has("admin") { a href="/admin/outbox" { (t(lang, "對外訊息", "Mensagens", "Outbox")) } }
                            @if c.has("admin") { a href="/admin/trust-list" { (t(lang, "信任清單", "Lista de confiança", "Trust list")) } }
                            @if c.has("admin") { a href="/admin/keys" { (t(lang, "簽署私鑰", "Chaves", "Signing keys")) } }
                            @if c.has("admin") || c.has("auditor") { a href="/admin/usage" { (t(lang, "使用統計", "Estatísticas", "Usage figures")) } }
                        }
                    }
                    nav.lang aria-label=(t(lang, "語言", "Idioma", "Language")) {
                        (switch("zh", "zh-Hant", "中文", lang == Lang::Zh))
                        (switch("pt", "pt", "Português", lang == Lang::Pt))
                        (switch("en", "en", "English", lang == Lang::En))
                    }
                    @if let Some(c) = caller {
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(c.session.csrf);
                            a href="/me/delegation" { (t(lang, "休假代理", "Ausência", "Out of office")) }
                            a href="/me/security" { (t(lang, "帳戶安全", "Segurança", "Security")) }
                            a href="/me/notifications" { (t(lang, "通知", "Notificações", "Notifications")) }
                            span.muted #signed-in-as title=(c.person) { (c.name.as_ref().map(|n| visible(n.get(lang))).unwrap_or_else(|| visible(&c.person))) } " "
                            button.link type="submit" { (t(lang, "登出", "Sair", "Sign out")) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A person's name in the page's language, with their id (hidden characters shown, as `visible`).
pub fn person_label(lang: Lang, dir: &crate::directory::Directory, id: &str) -> String {
    match dir.person(id) {
        Some(p) => visible(&format!("{} ({id})", p.name.get(lang))),
        None => visible(id),
    }
}

/// People's text (comments, reasons, names, typed values) in page content: escaped as maud
/// escapes, every hidden character drawn as a marked `<span class="hidden-char">⟨U+202E⟩</span>`
/// instead of acting on the text around it.
pub struct Shown<'a>(pub &'a str);

impl maud::Render for Shown<'_> {
    fn render_to(&self, buffer: &mut String) {
        use std::fmt::Write;
        let mut rest = self.0;
        while let Some((i, c)) = rest.char_indices().find(|(_, c)| is_hidden_char(*c)) {
            let _ = maud::Escaper::new(buffer).write_str(&rest[..i]);
            let _ = write!(buffer, "<span class=\"hidden-char\">{}</span>", crate::wording::char_name(c));
            rest = &rest[i + c.len_utf8()..];
        }
        let _ = maud::Escaper::new(buffer).write_str(rest);
    }
}

pub fn shown(s: &str) -> Shown<'_> {
    Shown(s)
}

/// An error code as a link to its explanation on the server's own `/docs/errors` page.
pub fn code_link(code: &str) -> Markup {
    html! { a.code href=(format!("/docs/errors#{}", explain::anchor(code))) { code { (code) } } }
}

/// Text as `shown`, with every `CARIMBO-Ennnn` in it a link to its explanation.
pub fn with_codes(text: &str) -> Markup {
    let mut parts: Vec<(bool, &str)> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("CARIMBO-E") {
        let end = i + 9 + rest[i + 9..].chars().take_while(char::is_ascii_digit).count();
        if end - i - 9 != 4 {
            parts.push((false, &rest[..end]));
            rest = &rest[end..];
            continue;
        }
        parts.push((false, &rest[..i]));
        parts.push((true, &rest[i..end]));
        rest = &rest[end..];
    }
    parts.push((false, rest));
    html! { @for (is_code, p) in parts { @if is_code { (code_link(p)) } @else { (shown(p)) } } }
}

/// A page response; remembers the language chosen with `?lang=` in a cookie.
pub fn page(pl: &PageLang, markup: Markup) -> Response {
    page_with_status(pl, StatusCode::OK, markup)
}

pub fn page_with_status(pl: &PageLang, status: StatusCode, markup: Markup) -> Response {
    let mut resp = (status, markup).into_response();
    if pl.explicit
        && let Ok(v) = header::HeaderValue::from_str(&format!("{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000", pl.lang.code()))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// A page that says what went wrong and what to do, in the page's frame.
pub fn problem_page(pl: &PageLang, caller: Option<&Caller>, status: StatusCode, title: &str, detail: &str) -> Response {
    page_with_status(pl, status, layout(pl, title, caller, html! { h1 { (title) } p.error role="alert" { (with_codes(detail)) } }))
}

/// Refuses a page post whose `csrf` field is not the session's token.
#[allow(clippy::result_large_err)] // the refusal is the page to answer with; it is built once, on the rare path
pub fn check_csrf(pl: &PageLang, caller: &Caller, sent: Option<&str>) -> Result<(), Response> {
    if sent.is_some_and(|s| secrets_equal(s, &caller.session.csrf)) {
        return Ok(());
    }
    let lang = pl.lang;
    Err(problem_page(
        pl,
        Some(caller),
        StatusCode::FORBIDDEN,
        t(lang, "頁面已過期", "Página expirada", "Page expired"),
        t(lang, "頁面已過期，請重新載入後再試。", "A página expirou; recarregue-a e tente de novo.", "The page has expired; reload it and try again."),
    ))
}

/// Refuses a page to a caller without the role.
#[allow(clippy::result_large_err)] // as check_csrf
pub fn require_role(pl: &PageLang, caller: &Caller, roles: &[&str]) -> Result<(), Response> {
    if roles.iter().any(|r| caller.has(r)) {
        return Ok(());
    }
    let lang = pl.lang;
    Err(problem_page(
        pl,
        Some(caller),
        StatusCode::FORBIDDEN,
        t(lang, "沒有權限", "Sem permissão", "Not allowed"),
        t(lang, "你沒有使用此頁面的權限。", "Não tem permissão para usar esta página.", "You do not have the role this page needs."),
    ))
}

async fn home(caller: Option<Caller>) -> Redirect {
    if caller.is_some() { Redirect::to("/forms") } else { Redirect::to("/login") }
}

fn login_page(pl: &PageLang, csrf: &str, error: Option<&str>) -> Markup {
    let lang = pl.lang;
    layout(
        pl,
        t(lang, "登入", "Iniciar sessão", "Sign in"),
        None,
        html! {
            h1 { (t(lang, "登入", "Iniciar sessão", "Sign in")) }
            @if let Some(e) = error { p.error role="alert" { (with_codes(e)) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label { (t(lang, "人員編號", "Número de pessoal", "Person id")) input name="person" autocomplete="username" required; }
                label { (t(lang, "密碼", "Palavra-passe", "Password")) input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { (t(lang, "登入", "Entrar", "Sign in")) }
            }
        },
    )
}

/// The sign-in form's own CSRF token (login CSRF: without it, another site could post its own
/// password to `/login` and have the victim work, unknowingly, in the attacker's account). There
/// is no session yet, so the token lives in a cookie of its own and in the form's hidden `csrf`
/// field, and a post must bring both, equal (the double-submit pattern). Over HTTPS the cookie
/// has the `__Host-` prefix, so a neighbouring subdomain cannot plant one.
fn login_cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-carimbo_login" } else { "carimbo_login" }
}

/// The token the visitor's browser already holds (so two open sign-in tabs both work), or a new one.
fn login_token(parts_cookie: Option<&str>) -> String {
    match parts_cookie {
        Some(t) if t.len() == 43 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => t.to_string(),
        _ => crate::accounts::random_token(),
    }
}

fn login_cookie(token: &str, secure: bool) -> Option<header::HeaderValue> {
    let name = login_cookie_name(secure);
    header::HeaderValue::from_str(&format!("{name}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600{}", if secure { "; Secure" } else { "" })).ok()
}

/// The sign-in page with its token, the cookie set beside it.
fn login_response(state: &AppState, pl: &PageLang, status: StatusCode, token: &str, error: Option<&str>) -> Response {
    let mut resp = page_with_status(pl, status, login_page(pl, token, error));
    if let Some(v) = login_cookie(token, state.secure_cookies()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The login token a request carries in its cookie.
pub struct LoginCookie(Option<String>);

impl<S> FromRequestParts<S> for LoginCookie
where
    Arc<AppState>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = Arc::<AppState>::from_ref(state);
        Ok(LoginCookie(super::auth::cookie(parts, login_cookie_name(state.secure_cookies())).map(str::to_string)))
    }
}

async fn login_form(State(state): State<Arc<AppState>>, LoginCookie(held): LoginCookie, pl: PageLang) -> Response {
    login_response(&state, &pl, StatusCode::OK, &login_token(held.as_deref()), None)
}

#[derive(Deserialize)]
struct LoginForm {
    person: String,
    password: String,
    #[serde(default)]
    csrf: Option<String>,
}

async fn login_post(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    LoginCookie(held): LoginCookie,
    pl: PageLang,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = pl.lang;
    // Checked before the password: a forged post neither signs anyone in nor counts as a
    // failed attempt against the account.
    let matches = matches!((held.as_deref(), f.csrf.as_deref()), (Some(c), Some(sent)) if !c.is_empty() && secrets_equal(c, sent));
    if !matches {
        let message = format!(
            "{} [CARIMBO-E0721]",
            t(
                lang,
                "登入頁面已過期，或表格並非由 carimbo 的頁面送出。頁面已重新載入，請再次登入。",
                "A página de início de sessão expirou ou o formulário não veio da página do carimbo; a página foi recarregada: inicie sessão de novo.",
                "The sign-in page had expired, or the form was not sent by carimbo's own page; the page has been reloaded: sign in again.",
            )
        );
        return login_response(&state, &pl, StatusCode::FORBIDDEN, &login_token(None), Some(&message));
    }
    let token = login_token(held.as_deref());
    match state.login(f.person.trim(), &f.password, peer, lang).await {
        Ok((session, _)) => {
            // Approvers start the day with what waits for them; everyone else with the forms.
            let approver = super::auth::roles_of(&state, f.person.trim()).contains("approver");
            let mut resp = Redirect::to(if approver { "/inbox" } else { "/forms" }).into_response();
            if let Ok(v) = header::HeaderValue::from_str(&super::api::session_cookie(&session, state.secure_cookies())) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => login_response(&state, &pl, e.status, &token, Some(&e.problem().title)),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout_post(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Form(f): Form<CsrfForm>) -> Response {
    if let Err(r) = check_csrf(&pl, &caller, Some(&f.csrf)) {
        return r;
    }
    state.sessions.close(&caller.token);
    let mut resp = Redirect::to("/login").into_response();
    if let Ok(v) = header::HeaderValue::from_str(&super::api::cleared_session_cookie(state.secure_cookies())) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The static files, compiled in: the style sheet, the signing library and the page scripts.
const STATIC: [(&str, &str, &str); 4] = [
    ("app.css", "text/css; charset=utf-8", include_str!("../static/app.css")),
    ("sign.js", "text/javascript; charset=utf-8", include_str!("../static/sign.js")),
    ("fill.js", "text/javascript; charset=utf-8", include_str!("../static/fill.js")),
    ("inbox.js", "text/javascript; charset=utf-8", include_str!("../static/inbox.js")),
];

async fn static_file(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match STATIC.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, body)) => ([(header::CONTENT_TYPE, *kind), (header::CACHE_CONTROL, "max-age=300")], *body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Marks text already escaped (for the few fragments built elsewhere).
pub fn raw(s: &str) -> PreEscaped<&str> {
    PreEscaped(s)
}

macro_rules! page {
    ($m:ident, $verb:ident, $path:literal, $access:literal, $summary:literal, $h:path) => {
        RouteSpec {
            kind: RouteKind::Page,
            method: Method::$m,
            path: $path,
            summary: $summary,
            access: $access,
            query: &[],
            body: None,
            returns: None,
            handler: || $verb($h),
        }
    };
}

/// Every page route, for `http::routes()`. `access` as for API routes; a visitor without a
/// session who opens a page that is not `public` is sent to `/login`.
pub fn routes() -> Vec<RouteSpec> {
    vec![
        page!(GET, get, "/", "any", "Signed in: on to the forms; otherwise to the sign-in page", home),
        page!(GET, get, "/login", "public", "The sign-in form, with its own CSRF token (cookie and hidden field)", login_form),
        page!(POST, post, "/login", "public", "Sign in from the form; refused without the form's token", login_post),
        page!(POST, post, "/logout", "any", "Sign out", logout_post),
        page!(GET, get, "/forms", "any", "The forms I may fill in", fill::list),
        page!(GET, get, "/forms/{id}", "any", "A blank form", fill::blank),
        page!(POST, post, "/forms/{id}", "any", "Check a filled-in form on the server; when valid, the signing step", fill::posted),
        page!(GET, get, "/cases", "any", "My cases with their progress", cases::list),
        page!(GET, get, "/cases/{id}", "any", "A case I am party to: its progress, the return comment, withdrawing it", cases::one),
        page!(
            GET,
            get,
            "/cases/{id}/pdf",
            "any",
            "The case as a PDF/A document sealed with PAdES, in the page's language (restricted fields as the reader may see them; the evidence bundle attached)",
            pdf::download
        ),
        page!(POST, post, "/cases/{id}/withdraw", "any", "Withdraw my case (reason, then confirmation)", cases::withdraw),
        page!(GET, get, "/cases/{id}/resubmit", "any", "Correct my returned case", resubmit::show),
        page!(POST, post, "/cases/{id}/resubmit", "any", "Check a correction; when valid, what changed and the signing step", resubmit::posted),
        page!(GET, get, "/me/security", "any", "My second factor", security::show),
        page!(POST, post, "/me/security", "any", "Enrol, confirm or replace my second factor", security::posted),
        page!(GET, get, "/inbox", "any", "My open steps, to act on many at once", inbox::show),
        page!(POST, post, "/inbox", "any", "Act on the steps picked", inbox::posted),
        page!(GET, get, "/author", "author, admin", "Check definitions, with a preview", author::show),
        page!(POST, post, "/author", "author, admin", "Upload definitions to check (and, for an administrator, apply)", author::posted),
        page!(GET, get, "/audit", "auditor", "Any case with its event chain", audit::show),
        page!(GET, get, "/admin/outbox", "admin", "The outbox: webhooks, waiting messages, dead letters", outbox::show),
        page!(POST, post, "/admin/outbox", "admin", "Send dead letters again", outbox::posted),
        page!(
            GET,
            get,
            "/admin/trust-list",
            "admin",
            "The trust list: members and their status, the signed history, and a form to append a signed change",
            trust::show
        ),
        page!(POST, post, "/admin/trust-list", "admin", "Append a change signed by the trust-list operator", trust::posted),
        page!(GET, get, "/admin/keys", "admin", "Signing keys: who signs with what, and each HSM key's certificate and state", keys::show),
        page!(POST, post, "/admin/keys", "admin", "Give, rotate or revoke a person's key on the HSM", keys::posted),
        page!(GET, get, "/admin/usage", "admin, auditor", "The usage figures with their chart", usage::show),
        page!(GET, get, "/me/notifications", "any", "My notifications: which kinds, immediately or one daily digest, quiet hours", notifications::show),
        page!(POST, post, "/me/notifications", "any", "Save my notification preferences", notifications::posted),
        page!(GET, get, "/me/delegation", "any", "Out of office: my delegations, and setting one (to whom, from, to, which forms)", delegation::show),
        page!(POST, post, "/me/delegation", "any", "Set or end one of my delegations", delegation::posted),
        page!(GET, get, "/admin/delegations", "admin", "Every delegation, with who set it and when", delegation::admin_show),
        page!(POST, post, "/admin/delegations", "admin", "End a delegation", delegation::admin_posted),
        page!(GET, get, "/audit/verify", "auditor", "Verify an evidence bundle in the server, without storing it", verify::show),
        RouteSpec {
            kind: RouteKind::Page,
            body: None,
            returns: None,
            method: Method::POST,
            path: "/audit/verify",
            summary: "Upload an evidence bundle (at most 8 MiB) and read its verification report",
            access: "auditor",
            query: &[],
            handler: verify::upload_route,
        },
        page!(GET, get, "/docs/errors", "public", "What each error code means, with its anchor (`#carimbo-e0721`)", explain::show),
        page!(GET, get, "/static/{name}", "public", "The style sheet and the page scripts", static_file),
    ]
}

/// The pages' router, from their routes (`routes()`).
pub fn router(routes: Vec<RouteSpec>) -> Router<Arc<AppState>> {
    routes.into_iter().filter(|r| r.kind == RouteKind::Page).fold(Router::new(), |router, r| router.route(r.path, (r.handler)()))
}
