//! My notification preferences over the API (`GET` / `POST /api/v1/me/notifications`), and what
//! administrators learn of e-mail on the outbox page and `GET /api/v1/admin/outbox`: whether
//! mail is on, through which server, and who has no address in the directory.

use super::AppState;
use super::api::blocking;
use super::auth::Caller;
use super::body::StrictJson;
use super::error::ApiError;
use crate::notify::book::{PreferencesBody, PreferencesError};
use crate::outbox::DispatcherStatus;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The mail this server sends (`serve --smtp`), and its dispatcher's state.
#[derive(Clone)]
pub struct MailHandle {
    /// `smtp://host:port (…)`, without credentials.
    pub server: String,
    pub from: String,
    pub status: Arc<Mutex<DispatcherStatus>>,
}

impl From<PreferencesError> for ApiError {
    fn from(e: PreferencesError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = e.code();
        let text = e.to_string();
        ApiError::new(status, code, text.strip_suffix(&format!(" [{code}]")).unwrap_or(&text).to_string())
    }
}

/// A person's preferences, whether mail is on, and the address their mail goes to.
pub fn my_view(state: &AppState, person: &str) -> Value {
    let dir = state.cases.directory();
    json!({
        "person": person,
        "preferences": state.preferences.get(person),
        "mail": state.mail.is_some(),
        "address": dir.person(person).and_then(|p| p.email.clone()),
    })
}

pub async fn mine(State(state): State<Arc<AppState>>, caller: Caller) -> Json<Value> {
    Json(my_view(&state, &caller.person))
}

pub async fn set_mine(State(state): State<Arc<AppState>>, caller: Caller, StrictJson(body): StrictJson<PreferencesBody>) -> Result<Json<Value>, ApiError> {
    let lang = caller.lang;
    let prefs = body.parse().map_err(|e| ApiError::from(e).lang(lang))?;
    let st = state.clone();
    let person = caller.person.clone();
    blocking(move || st.preferences.set(&person, prefs).map_err(|e| ApiError::from(e).lang(lang))).await?;
    Ok(Json(my_view(&state, &caller.person)))
}

/// The mail part of the outbox overview.
pub fn mail_overview(state: &AppState) -> Value {
    let dir = state.cases.directory();
    let without: Vec<Value> = dir
        .people()
        .filter(|p| p.email.as_deref().is_none_or(|a| a.trim().is_empty()))
        .map(|p| json!({"person": p.id, "name": p.name, "roles": p.roles}))
        .collect();
    json!({
        "on": state.mail.is_some(),
        "server": state.mail.as_ref().map(|m| m.server.clone()),
        "from": state.mail.as_ref().map(|m| m.from.clone()),
        "dispatcher": state.mail.as_ref().map(|m| m.status.lock().unwrap_or_else(|e| e.into_inner()).clone()),
        "people_without_address": without,
    })
}
