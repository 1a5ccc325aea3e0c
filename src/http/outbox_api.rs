//! The outbox for administrators: webhook status and dead letters, sending dead letters again,
//! and the export of decisions and finished cases for payroll and archives (`crate::outbox`).

use super::AppState;
use super::api::blocking;
use super::auth::Caller;
use super::body::StrictJson;
use super::error::ApiError;
use crate::outbox::{DispatcherStatus, ExportFilter, ExportFormat, OutboxError, WebhookConfig, deliveries_of, export, parse_time, retry_dead};
use crate::store::{OutboxRecord, Store};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The webhooks a running server delivers to, and its dispatcher's state.
#[derive(Clone)]
pub struct OutboxHandle {
    pub config: Arc<WebhookConfig>,
    pub status: Arc<Mutex<DispatcherStatus>>,
}

/// At most this many dead letters are listed at once; at most this many pending are counted.
const LIST_LIMIT: usize = 500;
const COUNT_LIMIT: usize = 10_000;
/// A retry names at most this many messages.
const RETRY_LIMIT: usize = 500;

impl From<OutboxError> for ApiError {
    fn from(e: OutboxError) -> Self {
        match e {
            OutboxError::Store(s) => s.into(),
            OutboxError::UnknownMessage(_) => ApiError::new(StatusCode::NOT_FOUND, "CARIMBO-E1003", e.to_string().replace(" [CARIMBO-E1003]", "")),
            OutboxError::Export(m) => ApiError::new(StatusCode::BAD_REQUEST, "CARIMBO-E1002", m),
            OutboxError::Config { .. } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E1001", e.to_string()),
            OutboxError::Duplicate { .. } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E0120", e.to_string()),
        }
    }
}

/// A message as administrators see it: what it is and how each endpoint fared.
pub fn record_view(r: &OutboxRecord) -> Value {
    json!({
        "id": r.id, "kind": r.kind, "case_id": r.case_id, "seq": r.seq, "at": r.at,
        "form_id": r.payload["form_id"], "recipient": r.payload.get("recipient"), "settled": r.settled, "dead": r.dead,
        "deliveries": deliveries_of(r),
    })
}

/// What the outbox page and `GET /api/v1/admin/outbox` show.
pub fn overview(state: &AppState) -> Result<Value, ApiError> {
    let store = state.cases.store();
    let dead = store.outbox_dead(LIST_LIMIT)?;
    let pending = count_pending(store.as_ref())?;
    let webhooks = state.outbox.as_ref().map(|h| {
        let status = h.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
        json!({
            "endpoints": h.config.endpoints.iter().map(|e| json!({"name": e.name, "url": e.public_url(), "kinds": e.kinds})).collect::<Vec<_>>(),
            "retry": h.config.retry,
            "dispatcher": status,
        })
    });
    let notifications: Vec<Value> = pending_notifications(store.as_ref())?.iter().map(record_view).collect();
    Ok(json!({
        "webhooks": webhooks,
        "mail": super::notifications_api::mail_overview(state),
        "notifications_waiting": notifications,
        "pending": pending.0,
        "pending_more": pending.1,
        "dead_letters": dead.iter().map(record_view).collect::<Vec<_>>(),
    }))
}

/// The notifications not yet settled (waiting for their time, a digest or a retry), oldest first.
fn pending_notifications(store: &dyn Store) -> Result<Vec<OutboxRecord>, ApiError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.outbox_pending(after.as_deref(), 1000)?;
        after = page.last().map(|r| r.id.clone());
        let full = page.len() == 1000;
        out.extend(page.into_iter().filter(|r| crate::notify::is_notification(&r.kind)));
        if !full || out.len() >= LIST_LIMIT {
            out.truncate(LIST_LIMIT);
            return Ok(out);
        }
    }
}

fn count_pending(store: &dyn Store) -> Result<(usize, bool), ApiError> {
    let mut n = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store.outbox_pending(after.as_deref(), 1000)?;
        n += page.len();
        if page.len() < 1000 || n >= COUNT_LIMIT {
            return Ok((n, page.len() == 1000));
        }
        after = page.last().map(|r| r.id.clone());
    }
}

pub async fn status(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require("admin")?;
    let lang = caller.lang;
    blocking(move || overview(&state).map_err(|e| e.lang(lang))).await.map(Json)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Ids of dead letters (as listed) to send again.
    pub ids: Vec<String>,
}

pub async fn retry(State(state): State<Arc<AppState>>, caller: Caller, StrictJson(req): StrictJson<RetryRequest>) -> Result<Json<Value>, ApiError> {
    caller.require("admin")?;
    if req.ids.is_empty() || req.ids.len() > RETRY_LIMIT {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "CARIMBO-E0704", format!("name between 1 and {RETRY_LIMIT} message ids")).lang(caller.lang));
    }
    let lang = caller.lang;
    let store = state.cases.store().clone();
    let retried = blocking(move || retry_dead(store.as_ref(), &req.ids).map_err(|e| ApiError::from(e).lang(lang))).await?;
    Ok(Json(json!({"retried": retried})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    pub since: String,
    pub until: Option<String>,
    pub format: Option<String>,
    /// Comma-separated kinds.
    pub kind: Option<String>,
}

/// Builds the filter and format an export request names; every bad part is a clear error
/// naming the parameter as the caller wrote it (`dashes`: `--since` on the command line).
pub fn export_request(q: &ExportQuery, dashes: bool) -> Result<(ExportFilter, ExportFormat), OutboxError> {
    let name = |n: &str| if dashes { format!("--{n}") } else { n.to_string() };
    let since = parse_time(&q.since, &name("since"))?;
    let until = q.until.as_deref().map(|u| parse_time(u, &name("until"))).transpose()?;
    let format: ExportFormat = q.format.as_deref().unwrap_or("json").parse()?;
    let kinds = q.kind.as_deref().map(|k| k.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()).unwrap_or_default();
    // The API never exports a restricted value in the open: an administrator is not a role a
    // form names for one (the command line can, for the operator of the store).
    Ok((ExportFilter { since, until, kinds, restricted_fields: Default::default() }, format))
}

pub async fn export_messages(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require("admin")?;
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "CARIMBO-E1002", e.body_text()).lang(caller.lang))?;
    let (filter, format) = export_request(&q, false).map_err(|e| ApiError::from(e).lang(caller.lang))?;
    let lang = caller.lang;
    let store = state.cases.store().clone();
    // Built in memory: an export over the API is for a period (a month of a department's
    // decisions is a few megabytes); `carimbo export` streams larger ones to a file.
    let bytes = blocking(move || {
        let mut out = Vec::new();
        export(store.as_ref(), &filter, format, &mut out, &mut |_| {}).map_err(|e| ApiError::from(e).lang(lang))?;
        Ok(out)
    })
    .await?;
    let (ctype, ext) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Json => ("application/json", "json"),
    };
    let disposition =
        format!("attachment; filename=\"carimbo-export-{}.{ext}\"", q.since.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect::<String>());
    Ok(([(header::CONTENT_TYPE, ctype.to_string()), (header::CONTENT_DISPOSITION, disposition)], bytes).into_response())
}
