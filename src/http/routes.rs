//! `routes()` is the single list of routes, the API's and the pages' (`RouteKind`): the router,
//! the OpenAPI document (API routes only) and the route × role test are all built from it, so
//! they cannot drift apart. Limits live here too:
//! request body sizes, sign-in limits (per address, per account and address, per account for new addresses), per-account API rate limits,
//! and security headers.

use super::error::ApiError;
use super::startup::AppState;
use super::{api, archive_api, auth, notifications_api, outbox_api, pages, usage};
use crate::i18n::Lang;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{Value, json};
use std::sync::Arc;
use tower_http::set_header::SetResponseHeaderLayer;

/// Whether a route answers JSON under the API's rules (problems, rate limit, OpenAPI) or draws a
/// page (HTML; a visitor without a session is sent to `/login`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Api,
    Page,
}

/// One route: method, path, handler, who may call it, and what it is for (the OpenAPI
/// document's summary for an API route).
pub struct RouteSpec {
    pub kind: RouteKind,
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    /// Who may call it: `public`, `any` (signed in), or one or more roles joined by `, `.
    pub access: &'static str,
    /// Query parameters, with what each means (for the OpenAPI document).
    pub query: &'static [(&'static str, &'static str)],
    /// The JSON request body, when the route reads one: registers the body type's schema (and
    /// the schemas it refers to) and returns its name. Generated from the same Rust type the
    /// handler parses (utoipa's `ToSchema`), so the document cannot drift from the handler.
    pub body: Option<BodySchema>,
    /// The JSON answer's type, where the handler answers one typed struct (same mechanism).
    pub returns: Option<BodySchema>,
    pub handler: fn() -> MethodRouter<Arc<AppState>>,
}

/// Writes a request body's schemas into the document's components; returns the body's name.
pub type BodySchema = fn(&mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) -> String;

/// The `BodySchema` of type `T`.
pub fn body_schema<T: utoipa::ToSchema>(out: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) -> String {
    T::schemas(out);
    let name = T::name().into_owned();
    out.push((name.clone(), T::schema()));
    name
}

macro_rules! route {
    (@schema) => { None };
    (@schema $t:ty) => { Some(body_schema::<$t>) };
    ($m:ident, $verb:ident, $path:literal, $access:literal, $summary:literal, $h:path $(, body = $body:ty)? $(, returns = $ret:ty)? $(, query = [$(($q:literal, $qd:literal)),* $(,)?])?) => {
        RouteSpec {
            kind: RouteKind::Api, method: Method::$m, path: $path, summary: $summary, access: $access,
            query: &[$($(($q, $qd)),*)?], body: route!(@schema $($body)?), returns: route!(@schema $($ret)?), handler: || $verb($h),
        }
    };
}

/// Every route: the API's, then the pages' (`pages::routes`). Paths use axum's `{param}`
/// syntax, which is also OpenAPI's.
pub fn routes() -> Vec<RouteSpec> {
    let mut all = api_routes();
    all.extend(pages::routes());
    all
}

impl RouteSpec {
    pub fn is_api(&self) -> bool {
        self.kind == RouteKind::Api
    }
}

fn api_routes() -> Vec<RouteSpec> {
    vec![
        route!(
            POST,
            post,
            "/api/v1/session",
            "public",
            "Sign in with a person id and password; returns a bearer token and sets the session cookie",
            api::login,
            body = api::LoginRequest,
            returns = api::LoginResponse
        ),
        route!(DELETE, delete, "/api/v1/session", "any", "Sign out", api::logout),
        route!(GET, get, "/api/v1/me", "any", "Who I am, my roles, whether my second factor is enrolled", api::me),
        route!(GET, get, "/api/v1/me/certificate", "any", "My certificate chain, for the x5c header of signatures made in the page", api::my_certificate),
        route!(
            POST,
            post,
            "/api/v1/me/totp",
            "any",
            "Start enrolling a TOTP second factor (secret, otpauth URL, QR code); replacing an enrolled one needs `current_code`, a code of it",
            api::totp_begin,
            body = api::TotpBegin
        ),
        route!(POST, post, "/api/v1/me/totp/confirm", "any", "Confirm the second factor with a first code", api::totp_confirm, body = api::TotpConfirm),
        route!(
            GET,
            get,
            "/api/v1/me/notifications",
            "any",
            "My notification preferences (which kinds, immediately or a daily digest, quiet hours), whether this server sends mail, and my address in the directory",
            notifications_api::mine
        ),
        route!(
            POST,
            post,
            "/api/v1/me/notifications",
            "any",
            "Set my notification preferences; every wrong value is named and nothing is kept",
            notifications_api::set_mine,
            body = crate::notify::book::PreferencesBody
        ),
        route!(GET, get, "/api/v1/forms", "any", "The forms, with titles in the requested language", api::list_forms),
        route!(GET, get, "/api/v1/forms/{id}", "any", "One form with its schema, labels, rules and layout", api::get_form),
        route!(
            POST,
            post,
            "/api/v1/forms/{id}/validate",
            "any",
            "Validate data without submitting: errors per field, or computed values",
            api::validate_form,
            body = api::ValidateRequest
        ),
        route!(
            POST,
            post,
            "/api/v1/signing-payload",
            "any",
            "The exact payload (RFC 8785 JSON) to sign for a submission, an act or a resubmission",
            api::signing_payload,
            body = api::PayloadRequest,
            returns = api::PayloadResponse
        ),
        route!(POST, post, "/api/v1/cases", "staff", "Submit a form, signed as its workflow demands", api::submit, body = api::SubmitRequest),
        route!(
            GET,
            get,
            "/api/v1/cases",
            "any",
            "My cases (as submitter, subject, approver) with their progress, newest first; `next` is the cursor of the following page",
            api::my_cases,
            query = [("limit", "Cases per page, 1 to 500 (default 50)"), ("after", "The `next` of the previous page")]
        ),
        route!(GET, get, "/api/v1/cases/{id}", "any", "One case I am party to, restricted fields hidden by role", api::get_case),
        route!(
            POST,
            post,
            "/api/v1/cases/{id}/acts",
            "any",
            "Act on an open step: approve, reject, return or sign, with the signature it demands",
            api::act,
            body = api::ActBody
        ),
        route!(POST, post, "/api/v1/cases/{id}/withdraw", "any", "Withdraw my case while no final decision exists", api::withdraw, body = api::WithdrawBody),
        route!(POST, post, "/api/v1/cases/{id}/resubmit", "any", "Resubmit a corrected version of my returned case", api::resubmit, body = api::ResubmitBody),
        route!(
            GET,
            get,
            "/api/v1/cases/{id}/evidence",
            "any",
            "The case's evidence bundle: definitions, events, signatures, certificates and CRLs in one JSON file that `carimbo verify` checks offline (parties to the case and auditors; with restricted fields, only the roles the form names)",
            api::evidence
        ),
        route!(
            POST,
            post,
            "/api/v1/acts/batch",
            "approver",
            "Act on many steps at once; each item has its own signature and result",
            api::batch,
            body = api::BatchRequest
        ),
        route!(
            GET,
            get,
            "/api/v1/inbox",
            "any",
            "My open steps (and those I hold under delegation), oldest first; `next` is the cursor of the following page",
            api::inbox,
            query = [("limit", "Entries per page, 1 to 500 (default 50)"), ("after", "The `next` of the previous page")]
        ),
        route!(
            GET,
            get,
            "/api/v1/admin/export",
            "admin",
            "Decisions and finished cases of a period as CSV or JSON, for payroll and archives",
            outbox_api::export_messages,
            query = [
                ("since", "First moment included: a date (midnight in Macau) or an RFC 3339 time"),
                ("until", "First moment excluded (default: now)"),
                ("format", "csv or json (default json)"),
                ("kind", "Comma-separated kinds: decision, case.completed, case.rejected, case.withdrawn")
            ]
        ),
        route!(GET, get, "/api/v1/admin/directory", "admin", "The staff directory", api::directory),
        route!(POST, post, "/api/v1/admin/delegations", "admin", "Add or replace a delegation", api::add_delegation, body = crate::directory::Delegation),
        route!(
            POST,
            post,
            "/api/v1/admin/accounts/{person}/totp/reset",
            "admin",
            "Remove a person's TOTP second factor (a lost phone), so they can enrol a new one; recorded in the audit log (DATA/audit.jsonl)",
            api::reset_second_factor
        ),
        route!(
            GET,
            get,
            "/api/v1/admin/trust-list",
            "admin",
            "The trust list: its whole signed history of changes (members, accreditations, policies), as kept in DATA/trust-list.json",
            api::trust_list
        ),
        route!(
            GET,
            get,
            "/api/v1/admin/trust-list/status",
            "admin",
            "Every member of the trust list and its status (accreditation and level) at a time",
            api::trust_list_status,
            query = [("at", "The time asked about, RFC 3339 UTC with Z (default: now)")]
        ),
        route!(
            POST,
            post,
            "/api/v1/admin/trust-list/entries",
            "admin",
            "Append one change to the trust list, signed by the trust-list operator (`carimbo trust sign`); refused whole with a clear problem if it is unsigned, by another signer, out of order or names an unknown or repeated member",
            api::append_trust_entry,
            body = crate::pki::history::TrustEntry
        ),
        route!(
            POST,
            post,
            "/api/v1/admin/definitions",
            "admin",
            "Publish form/workflow definitions: checked as `carimbo check` does (and each version new and higher than the one served), then stored and recorded as a publication, served from then on by every server on the store; nothing changes when there is any problem, and an identical upload publishes nothing",
            api::upload_definitions,
            body = api::DefinitionUpload
        ),
        route!(
            GET,
            get,
            "/api/v1/admin/publications",
            "admin, auditor",
            "Every publication of definitions: who, when, each definition's id, version and content hash, and what changed from the version before",
            api::publications
        ),
        route!(
            GET,
            get,
            "/api/v1/admin/evidence-archive",
            "admin",
            "The long-term archive of closed cases (B-LTA bundles kept in DATA/evidence/): where, and the last round of the job that archives and re-stamps them",
            archive_api::status
        ),
        route!(
            POST,
            post,
            "/api/v1/admin/evidence-archive",
            "admin",
            "Run the archive job now: archive closed cases not yet kept, and re-stamp kept bundles whose last archive time-stamp's TSA certificate expires within the margin",
            archive_api::run,
            body = archive_api::RunRequest,
            returns = crate::archive_job::ArchiveRound
        ),
        route!(
            GET,
            get,
            "/api/v1/admin/outbox",
            "admin",
            "The outbox: configured webhooks, the dispatcher's state, how many messages wait, and the dead letters",
            outbox_api::status
        ),
        route!(
            POST,
            post,
            "/api/v1/admin/outbox/retry",
            "admin",
            "Send dead letters again (by id): their failed endpoints get a fresh round of attempts",
            outbox_api::retry,
            body = outbox_api::RetryRequest
        ),
        route!(
            POST,
            post,
            "/api/v1/definitions/check",
            "author",
            "Check definitions without applying them: every problem with file and JSON pointer",
            api::check_definitions,
            body = api::DefinitionUpload
        ),
        route!(
            GET,
            get,
            "/api/v1/usage",
            "admin, auditor",
            "Usage figures per form, submitter's department and month of submission (Macau time): submitted, completed, rejected, returned, withdrawn, in progress, past deadline, nearest-rank p50/p90 time to completion, signatures by level; with totals and per-month figures. Recomputed at most once a minute.",
            usage::report,
            query = [
                ("from", "First month shown, YYYY-MM (inclusive)"),
                ("to", "Last month shown, YYYY-MM (inclusive)"),
                ("form", "Only this form id"),
                ("department", "Only this department id (`(none)`: submitters in no department)"),
            ]
        ),
        route!(
            GET,
            get,
            "/metrics",
            "admin",
            "The usage figures for Prometheus (OpenMetrics text format); an administrator's token or session, or the scrape token of `carimbo serve --metrics-token-file` as bearer token",
            usage::metrics
        ),
        route!(GET, get, "/api/v1/openapi.json", "public", "This document", openapi),
    ]
}

/// The OpenAPI 3.1 document, built from the API routes of `routes()` (pages are HTML, not API).
pub fn openapi_document() -> Value {
    let mut paths = serde_json::Map::new();
    let mut schemas = Vec::new();
    for r in api_routes() {
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .chain(
                r.query.iter().map(|(name, what)| json!({"name": name, "in": "query", "required": false, "description": what, "schema": {"type": "string"}})),
            )
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "x-carimbo-access": r.access,
            "parameters": params,
            "responses": {
                "200": {"description": "OK"},
                "default": {"description": "A problem (RFC 9457) with a stable code", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            }
        });
        if r.access != "public" {
            op["security"] = json!([{"bearer": []}, {"cookie": []}]);
        }
        if let Some(answer) = r.returns {
            let name = answer(&mut schemas);
            op["responses"]["200"]["content"] = json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}});
        }
        if let Some(body) = r.body {
            let name = body(&mut schemas);
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}});
        }
        entry[r.method.as_str().to_ascii_lowercase()] = op;
    }
    let mut components = serde_json::Map::new();
    components.insert(
        "Problem".into(),
        json!({"type": "object", "required": ["type", "title", "status", "code"], "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
        "code": {"type": "string", "pattern": "^CARIMBO-E[0-9]{4}$"},
        "messages": {"type": "object", "properties": {"zh": {"type": "string"}, "pt": {"type": "string"}, "en": {"type": "string"}}},
        "errors": {"type": "array"}, "report": {"type": "object"}}}),
    );
    for (name, schema) in schemas {
        components.insert(name, serde_json::to_value(schema).unwrap_or_default());
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "carimbo", "version": env!("CARGO_PKG_VERSION"), "description": "Electronic forms and e-signature workflows for personnel procedures"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": auth::SESSION_COOKIE}
            },
            "schemas": components
        }
    })
}

async fn openapi() -> Json<Value> {
    Json(openapi_document())
}

/// Refuses API calls beyond an account's rate (identified by its bearer token or its session
/// cookie, whichever the caller authenticates with; unauthenticated calls are refused later by
/// the handler anyway).
async fn api_rate_limit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bearer = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let token = bearer.or_else(|| auth::cookie(&parts, auth::SESSION_COOKIE));
    if let Some(person) = token.and_then(|t| state.sessions.get(t, Utc::now())).map(|s| s.person)
        && state.api_by_account.check_key(&person).is_err()
    {
        return ApiError::too_many("too many requests from this account; slow down").lang(auth::lang_of(&parts)).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Bodies are small: a form is well under 256 KiB; a batch of signed acts under 4 MiB.
const BODY_LIMIT: usize = 512 * 1024;
const BATCH_BODY_LIMIT: usize = 4 * 1024 * 1024;

fn body_limit(path: &str) -> usize {
    if path == "/api/v1/acts/batch" { BATCH_BODY_LIMIT } else { BODY_LIMIT }
}

/// Every error under `/api` is a problem (RFC 9457). axum's own rejections (a body too large,
/// malformed JSON, a wrong content type or method) are plain text, so they are turned into
/// problems here, in one place. A body whose declared length is over the limit is refused
/// before it is read: a client that sent `Expect: 100-continue` (curl does for large bodies)
/// gets the answer without uploading anything, and the connection is closed rather than left
/// with an unread body in it.
async fn api_problems(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let lang = auth::lang_of(&parts);
    let limit = body_limit(parts.uri.path());
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit, lang);
    }
    // The whole (bounded) body is read before the handler runs: a handler that refuses early
    // (no session, no CSRF token) then leaves no unread body behind, and hyper can keep the
    // connection alive instead of dropping it under a client that was told nothing.
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => axum::body::Body::from(bytes),
        Err(e) if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) => return too_large(limit, lang),
        Err(e) => return ApiError::bad_request(format!("the request body could not be read: {e}")).lang(lang).into_response(),
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    let status = response.status();
    let is_problem = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(limit, lang);
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    // The rejection's own text says what was wrong (e.g. "missing field `person`"); it is short.
    let text = axum::body::to_bytes(response.into_body(), 4096).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let code = if status.is_server_error() { "CARIMBO-E0799" } else { "CARIMBO-E0704" };
    let mut problem = ApiError::new(status, code, if text.is_empty() { status.to_string() } else { text }).lang(lang).into_response();
    if let Some(allow) = allow {
        problem.headers_mut().insert(header::ALLOW, allow);
    }
    problem
}

fn too_large(limit: usize, lang: Lang) -> Response {
    let mut r = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "CARIMBO-E0707", format!("the request body is larger than {} KiB", limit / 1024))
        .lang(lang)
        .into_response();
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

pub fn router(state: Arc<AppState>) -> Router {
    let mut api = Router::new();
    for r in api_routes() {
        let mut h = (r.handler)();
        if body_limit(r.path) != BODY_LIMIT {
            h = h.layer(DefaultBodyLimit::max(body_limit(r.path)));
        }
        api = api.route(r.path, h);
    }
    let api = api.fallback(api::not_found).layer(middleware::from_fn_with_state(state.clone(), api_rate_limit)).layer(middleware::from_fn(api_problems));
    let https = state.public_url.is_https();
    let app = Router::new()
        .merge(api)
        .merge(pages::router(pages::routes()))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(no_store))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
            ),
        ));
    // HSTS (RFC 6797) only when people reach the server over HTTPS: sent over plain HTTP it is
    // ignored, and a browser that obeyed it would never reach an HTTP-only server again.
    let app = if https { app.layer(SetResponseHeaderLayer::overriding(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS))) } else { app };
    app.with_state(state)
}

/// Answers that may be cached: the compiled-in style sheet and scripts, and the API description.
/// Nothing in them is anyone's.
fn cacheable(path: &str) -> bool {
    path.starts_with("/static/") || path == "/api/v1/openapi.json"
}

/// `Cache-Control: no-store` on every other answer (RFC 9111 §5.2.2.5): pages, cases, errors
/// and redirects may all carry personal data, and a shared or back-button cache must keep none of
/// it. Set here for every route at once, so a new page cannot forget it.
async fn no_store(req: Request, next: Next) -> Response {
    let keep = cacheable(req.uri().path());
    let mut response = next.run(req).await;
    if !keep {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A year, the value browsers' preload lists ask for; subdomains are left to their own servers.
pub const HSTS: &str = "max-age=31536000";
