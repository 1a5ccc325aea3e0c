//! `StrictJson<T>`: axum's `Json` extractor, refusing a body in which an object repeats a
//! member name (I-JSON, RFC 7493), with a 400 problem `CARIMBO-E0120`.
//!
//! axum parses with serde_json, which keeps the last of two equal names; a body such as
//! `{"action":"reject","action":"approve"}` would then mean one thing to carimbo and another to
//! a proxy or log reader that keeps the first. Everything else (content type, syntax, shape,
//! their statuses and texts) is axum's own rejection, turned into a problem by `api_problems`.

use super::auth::lang_of;
use super::error::ApiError;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

pub struct StrictJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for StrictJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let lang = lang_of(&parts);
        let headers = parts.headers.clone();
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state).await.map_err(IntoResponse::into_response)?;
        let mut again = Request::new(Body::from(bytes.clone()));
        *again.headers_mut() = headers;
        let Json(value) = Json::<T>::from_request(again, state).await.map_err(IntoResponse::into_response)?;
        crate::json_strict::check(&bytes).map_err(|e| duplicate(e, lang))?;
        Ok(StrictJson(value))
    }
}

/// The problem for a body axum accepted but that repeats a member name.
pub fn duplicate(e: crate::json_strict::StrictJsonError, lang: crate::i18n::Lang) -> Response {
    ApiError::new(StatusCode::BAD_REQUEST, crate::json_strict::DUPLICATE_MEMBER, format!("the request body {e}")).lang(lang).into_response()
}
