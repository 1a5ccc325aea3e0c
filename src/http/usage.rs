//! Usage figures over HTTP: `GET /api/v1/usage` (JSON, for administrators and auditors) and
//! `GET /metrics` (Prometheus, for administrators and for the scrape token given to
//! `carimbo serve --metrics-token-file`). Both read the server's cached snapshot
//! (`usage::UsageFigures`): at most one scan of the store a minute, however often they are called.

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::accounts::secrets_equal;
use crate::usage::{Snapshot, UsageError, UsageFilter, metrics};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The roles that may read usage figures.
pub const READERS: [&str; 2] = ["admin", "auditor"];

/// The current snapshot, computed off the async runtime when it is due.
pub async fn snapshot(state: &Arc<AppState>) -> Result<Arc<Snapshot>, ApiError> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || st.usage.current(&st.cases).map_err(ApiError::from))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E0799", format!("a worker stopped: {e}")))?
}

/// Refuses a caller who is neither an administrator nor an auditor.
pub fn require_reader(caller: &Caller) -> Result<(), ApiError> {
    if READERS.iter().any(|r| caller.has(r)) { Ok(()) } else { Err(ApiError::forbidden("usage figures need the admin or auditor role").lang(caller.lang)) }
}

/// `GET /api/v1/usage?from=YYYY-MM&to=YYYY-MM&form=&department=`
pub async fn report(State(state): State<Arc<AppState>>, caller: Caller, Query(pairs): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    require_reader(&caller)?;
    let filter = UsageFilter::parse(&pairs).map_err(|e| ApiError::from(e).lang(caller.lang))?;
    let snap = snapshot(&state).await.map_err(|e| e.lang(caller.lang))?;
    let view = snap.report.view(&filter);
    Ok(Json(json!({
        "computed_at": snap.computed_at,
        "computation_seconds": snap.took.as_secs_f64(),
        "age_seconds": snap.age().as_secs_f64(),
        "max_age_seconds": state.usage.max_age().as_secs(),
        "time_zone": "Asia/Macau (UTC+8): months are months of submission in Macau time",
        "percentiles": "nearest-rank",
        "cases_read": snap.report.cases_read,
        "events_read": snap.report.events_read,
        "problems": snap.report.problems,
        "filter": view.filter,
        "totals": view.totals,
        "by_month": view.by_month,
        "rows": view.rows,
    })))
}

/// `GET /metrics`: the OpenMetrics text exposition. Prometheus authenticates with the scrape
/// token as a bearer token; an administrator's session or token is accepted too.
pub async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap, caller: Option<Caller>) -> Result<Response, ApiError> {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let scraper = matches!((bearer, &state.scrape_token), (Some(t), Some(expected)) if secrets_equal(&scrape_token_hash(t), expected));
    if !scraper {
        let caller = caller.ok_or_else(ApiError::unauthenticated)?;
        caller.require("admin")?;
    }
    let snap = snapshot(&state).await?;
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE), (header::CACHE_CONTROL, "no-store")], snap.exposition.clone()).into_response())
}

impl From<UsageError> for ApiError {
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::BadParameter { .. } => {
                let msg = e.to_string();
                ApiError::new(StatusCode::BAD_REQUEST, "CARIMBO-E1101", msg.trim_end_matches(" [CARIMBO-E1101]"))
            }
            UsageError::Store(s) => s.into(),
        }
    }
}

/// The SHA-256 (hex) of a scrape token, which is all the server keeps of it.
pub fn scrape_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}
