//! The administrators' view of the long-term evidence archive (`archive_job`): where the kept
//! bundles are, the last round, and running a round now.

use super::AppState;
use super::api::blocking;
use super::auth::Caller;
use super::body::StrictJson;
use super::error::ApiError;
use crate::archive_job::{ArchiveRound, DEFAULT_MARGIN_DAYS};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The longest margin a round may be asked for (a century: every kept bundle is due).
const MAX_MARGIN_DAYS: i64 = 36500;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Re-stamp bundles whose last archive time-stamp's TSA certificate expires within this many
    /// days (default 365, at most 36500, which makes every kept bundle due).
    #[serde(default)]
    pub margin_days: Option<i64>,
}

pub async fn status(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require("admin")?;
    Ok(Json(json!({
        "folder": state.archive.dir().display().to_string(),
        "time_stamping": state.stamping.describe(),
        "margin_days": DEFAULT_MARGIN_DAYS,
        "interval_hours": crate::archive_job::INTERVAL.as_secs() / 3600,
        "last_round": state.archive.last(),
    })))
}

pub async fn run(State(state): State<Arc<AppState>>, caller: Caller, StrictJson(req): StrictJson<RunRequest>) -> Result<Json<ArchiveRound>, ApiError> {
    caller.require("admin")?;
    let margin = req.margin_days.unwrap_or(DEFAULT_MARGIN_DAYS);
    if !(0..=MAX_MARGIN_DAYS).contains(&margin) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "CARIMBO-E1258",
            format!("margin_days must lie between 0 and {MAX_MARGIN_DAYS}, not {margin}"),
        )
        .lang(caller.lang));
    }
    let st = state.clone();
    let round = blocking(move || Ok(st.archive.run(&st, chrono::Utc::now(), chrono::Duration::days(margin)))).await?;
    Ok(Json(round))
}
