//! Who is calling: sessions (cookie, for pages) and bearer tokens (for the API), roles, language,
//! CSRF protection and login rate limits.
//!
//! A browser session carries a CSRF token; every state-changing request authenticated by the
//! cookie must echo it (header `X-CSRF-Token`, or the `csrf` field of a page form), compared in
//! constant time. Bearer tokens are not sent by browsers on their own, so they need no CSRF token.

use super::AppState;
use super::error::ApiError;
use crate::accounts::{Session, secrets_equal};
use crate::i18n::Lang;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use chrono::Utc;
use std::collections::BTreeSet;
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "carimbo_session";
pub const LANG_COOKIE: &str = "carimbo_lang";

/// Roles a caller can have; `approver` comes from the directory (supervisor, head, hr,
/// authority roles and delegations), the others are person roles.
pub const ROLES: [&str; 5] = ["staff", "approver", "author", "auditor", "admin"];

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub person: String,
    pub token: String,
    pub session: Session,
    /// True when authenticated by the session cookie (a browser), false for a bearer token.
    pub by_cookie: bool,
    /// Person roles from the directory plus the derived ones (`approver`).
    pub roles: BTreeSet<String>,
    pub lang: Lang,
    /// The person's name from the directory, for the page header.
    pub name: Option<crate::i18n::LocalizedText>,
    /// How many open steps wait for the person (pages only, for approvers: the inbox link's count).
    pub waiting: Option<usize>,
}

impl Caller {
    /// The caller as `cases::acts` sees an actor.
    pub fn actor(&self) -> crate::cases::acts::Actor<'_> {
        crate::cases::acts::Actor { person: &self.person, roles: &self.roles, lang: self.lang }
    }

    pub fn has(&self, role: &str) -> bool {
        self.roles.contains(role)
    }

    pub fn require(&self, role: &str) -> Result<(), ApiError> {
        if self.has(role) { Ok(()) } else { Err(ApiError::forbidden(format!("this needs the {role} role")).lang(self.lang)) }
    }
}

/// The roles of a person, from the directory.
pub fn roles_of(state: &AppState, person: &str) -> BTreeSet<String> {
    let dir = state.cases.directory();
    let mut roles: BTreeSet<String> = dir.person(person).map(|p| p.roles.iter().cloned().collect()).unwrap_or_default();
    for g in dir.groups() {
        if g.members.iter().any(|m| m == person) {
            roles.insert(g.id.clone());
        }
    }
    let approves =
        ["supervisor", "head", "hr", "authority", "doctor"].iter().any(|r| roles.contains(*r)) || dir.delegations().iter().any(|d| d.delegate == person);
    if approves {
        roles.insert("approver".into());
    }
    if roles.contains("candidate") || roles.contains("doctor") {
        // Outside staff still submit their own forms.
        roles.insert("staff".into());
    }
    roles
}

pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The reader's language: `?lang=`, then the language cookie, then `Accept-Language`.
pub fn lang_of(parts: &Parts) -> Lang {
    let from_query = parts.uri.query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("lang=")).and_then(|v| v.parse().ok()));
    from_query
        .or_else(|| cookie(parts, LANG_COOKIE).and_then(|v| v.parse().ok()))
        .or_else(|| {
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').find_map(|l| l.split(';').next()?.trim().parse().ok()))
        })
        .unwrap_or_default()
}

/// The language of a request, for handlers that do not need a caller.
pub struct ReqLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for ReqLang {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ReqLang(lang_of(parts)))
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<AppState>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = Arc::<AppState>::from_ref(state);
        let lang = lang_of(parts);
        let bearer = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string);
        let (token, by_cookie) = match bearer {
            Some(t) => (t, false),
            None => match cookie(parts, SESSION_COOKIE) {
                Some(t) => (t.to_string(), true),
                None => return Err(ApiError::unauthenticated().lang(lang)),
            },
        };
        let session = state.sessions.get(&token, Utc::now()).ok_or_else(|| ApiError::unauthenticated().lang(lang))?;
        // A browser's state-changing API call must carry the session's CSRF token. Page form
        // posts are checked by the page handlers against their `csrf` field instead.
        let changes_state = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if by_cookie && changes_state && parts.uri.path().starts_with("/api/") {
            let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
            if !secrets_equal(sent, &session.csrf) {
                return Err(ApiError::csrf().lang(lang));
            }
        }
        let roles = roles_of(&state, &session.person);
        let name = state.cases.directory().person(&session.person).map(|p| p.name.clone());
        Ok(Caller { person: session.person.clone(), token, session, by_cookie, roles, lang, name, waiting: None })
    }
}

/// `Option<Caller>`: `None` for a visitor who is not signed in (pages that work either way).
impl<S> axum::extract::OptionalFromRequestParts<S> for Caller
where
    Arc<AppState>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(<Caller as FromRequestParts<S>>::from_request_parts(parts, state).await.ok())
    }
}
