//! Server-rendered pages (maud), readable without JavaScript except for signing, in zh / pt / en.
//!
//! Pages use the same `AppState` and `CaseService` as the API; forms post back to page routes
//! that check the session's CSRF token. The signing script (`/static/sign.js`) uses WebCrypto
//! with a key file the person selects: the private key never leaves the browser.

use super::auth::{lang_of, Caller, LANG_COOKIE};
use super::AppState;
use crate::accounts::secrets_equal;
use crate::i18n::Lang;
use axum::extract::{ConnectInfo, Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

/// A text in the three languages, picked by the page's language.
pub fn t(lang: Lang, zh: &'static str, pt: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Zh => zh,
        Lang::Pt => pt,
        Lang::En => en,
    }
}

/// The page frame: header with navigation and language switch, then the content.
pub fn layout(lang: Lang, title: &str, caller: Option<&Caller>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(match lang { Lang::Zh => "zh-Hant-MO", Lang::Pt => "pt-PT", Lang::En => "en" }) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(c) = caller { meta name="csrf-token" content=(c.session.csrf); }
                title { (title) " · carimbo" }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                header.top {
                    a.brand href="/" { "carimbo" }
                    @if caller.is_some() {
                        nav {
                            a href="/forms" { (t(lang, "表格", "Formulários", "Forms")) }
                            a href="/cases" { (t(lang, "我的個案", "Os meus processos", "My cases")) }
                            a href="/inbox" { (t(lang, "待辦", "Pendentes", "Inbox")) }
                        }
                    }
                    nav.lang aria-label="language" {
                        a href="?lang=zh" lang="zh-Hant" { "中文" }
                        a href="?lang=pt" lang="pt" { "Português" }
                        a href="?lang=en" lang="en" { "English" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page that remembers the language chosen with `?lang=` in a cookie.
pub fn page(parts_lang: Lang, set_lang: bool, markup: Markup) -> Response {
    let mut resp = markup.into_response();
    if set_lang {
        if let Ok(v) = header::HeaderValue::from_str(&format!("{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000", parts_lang.code())) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// The page language, and whether the request chose it explicitly (`?lang=`).
pub struct PageLang(pub Lang, pub bool);

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let explicit = parts.uri.query().is_some_and(|q| q.split('&').any(|kv| kv.starts_with("lang=")));
        Ok(PageLang(lang_of(parts), explicit))
    }
}

async fn home(caller: Option<Caller>) -> Redirect {
    if caller.is_some() { Redirect::to("/forms") } else { Redirect::to("/login") }
}

fn login_page(lang: Lang, error: Option<&str>) -> Markup {
    layout(
        lang,
        t(lang, "登入", "Iniciar sessão", "Sign in"),
        None,
        html! {
            h1 { (t(lang, "登入", "Iniciar sessão", "Sign in")) }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/login" {
                label { (t(lang, "人員編號", "Número de pessoal", "Person id")) input name="person" autocomplete="username" required; }
                label { (t(lang, "密碼", "Palavra-passe", "Password")) input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { (t(lang, "登入", "Entrar", "Sign in")) }
            }
        },
    )
}

async fn login_form(PageLang(lang, explicit): PageLang) -> Response {
    page(lang, explicit, login_page(lang, None))
}

#[derive(Deserialize)]
struct LoginForm {
    person: String,
    password: String,
}

async fn login_post(State(state): State<Arc<AppState>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, PageLang(lang, _): PageLang, Form(f): Form<LoginForm>) -> Response {
    match state.login(f.person.trim(), &f.password, peer, lang).await {
        Ok((token, _)) => {
            let mut resp = Redirect::to("/forms").into_response();
            if let Ok(v) = header::HeaderValue::from_str(&super::api::session_cookie(&token, state.secure_cookies)) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => (e.status, login_page(lang, Some(&e.problem().title))).into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout_post(State(state): State<Arc<AppState>>, caller: Caller, Form(f): Form<CsrfForm>) -> Response {
    if !secrets_equal(&f.csrf, &caller.session.csrf) {
        return (StatusCode::FORBIDDEN, "stale form").into_response();
    }
    state.sessions.close(&caller.token);
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(header::SET_COOKIE, header::HeaderValue::from_static("carimbo_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"));
    resp
}

const APP_CSS: &str = include_str!("static/app.css");
const SIGN_JS: &str = include_str!("static/sign.js");

async fn app_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")], APP_CSS).into_response()
}

async fn sign_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")], SIGN_JS).into_response()
}

/// Marks text already escaped (for the few fragments built elsewhere).
pub fn raw(s: &str) -> PreEscaped<&str> {
    PreEscaped(s)
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login_post))
        .route("/logout", axum::routing::post(logout_post))
        .route("/static/app.css", get(app_css))
        .route("/static/sign.js", get(sign_js))
}
