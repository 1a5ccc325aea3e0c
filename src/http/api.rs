//! The JSON API under `/api/v1`. Handlers check who may call them, move data between HTTP and
//! `CaseService`, and turn every error into a problem (RFC 9457) through `ApiError`.
//! Store work runs in `spawn_blocking`: an act returns only once it is durable.

use super::AppState;
use super::auth::{Caller, ReqLang, SESSION_COOKIE, roles_of};
use super::body::StrictJson;
use super::error::ApiError;
use crate::accounts::RequestCodes;
use crate::catalog::{Catalog, SourceFile};
use crate::i18n::Lang;
use crate::store::CaseHead;
use crate::visibility::Sight;
use crate::workflow::{Case, Level, WorkflowDefinition};
use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::ToSchema;

type Shared = State<Arc<AppState>>;

/// Batch requests are bounded so one request cannot hold the server.
pub const MAX_BATCH_ITEMS: usize = 200;

/// Runs store work off the async threads; a panicked worker is a 500 problem.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E0799", format!("a worker stopped: {e}")))?
}

// ---------------------------------------------------------------- session

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The person id in the staff directory (e.g. `p005`).
    pub person: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer token for the API (also set as an HttpOnly cookie for pages).
    pub token: String,
    /// Send as `X-CSRF-Token` on state-changing calls authenticated by the cookie.
    pub csrf: String,
    pub person: String,
    pub roles: Vec<String>,
    pub expires: DateTime<Utc>,
}

pub async fn login(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ReqLang(lang): ReqLang,
    StrictJson(req): StrictJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let (token, session) = state.login(&req.person, &req.password, peer, lang).await?;
    let body = LoginResponse {
        token: token.clone(),
        csrf: session.csrf.clone(),
        person: session.person.clone(),
        roles: roles_of(&state, &session.person).into_iter().collect(),
        expires: session.expires,
    };
    let cookie = session_cookie(&token, state.secure_cookies());
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// The session cookie; `Secure` (sent over HTTPS only) when the public address is HTTPS.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800{}", if secure { "; Secure" } else { "" })
}

/// The header that removes the session cookie at sign-out.
pub fn cleared_session_cookie(secure: bool) -> String {
    session_cookie("", secure).replace("Max-Age=28800", "Max-Age=0")
}

pub async fn logout(State(state): Shared, caller: Caller) -> Response {
    state.sessions.close(&caller.token);
    ([(header::SET_COOKIE, cleared_session_cookie(state.secure_cookies()))], StatusCode::NO_CONTENT).into_response()
}

pub async fn me(State(state): Shared, caller: Caller) -> Json<Value> {
    let dir = state.cases.directory();
    let p = dir.person(&caller.person);
    Json(json!({
        "person": caller.person,
        "name": p.map(|p| p.name.get(caller.lang).to_string()),
        "department": p.and_then(|p| p.department.clone()),
        "roles": caller.roles,
        "second_factor": state.accounts.get(&caller.person).is_some_and(|a| a.has_second_factor()),
        "csrf": if caller.by_cookie { Some(caller.session.csrf.clone()) } else { None },
    }))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct TotpBegin {
    /// A current code of the second factor already enrolled: needed to replace it.
    pub current_code: Option<String>,
}

/// Starts an enrolment. The body is optional (`{}` or none) for a first factor; replacing an
/// enrolled one needs `{"current_code": "…"}`.
pub async fn totp_begin(State(state): Shared, caller: Caller, body: axum::body::Bytes) -> Result<Json<Value>, ApiError> {
    let req: TotpBegin = if body.iter().all(u8::is_ascii_whitespace) {
        TotpBegin::default()
    } else {
        crate::json_strict::from_slice(&body).map_err(|e| {
            if e.is_duplicate() {
                ApiError::new(StatusCode::BAD_REQUEST, crate::json_strict::DUPLICATE_MEMBER, format!("the request body {e}")).lang(caller.lang)
            } else {
                ApiError::bad_request(format!("the body is not a TOTP enrolment request: {e}")).lang(caller.lang)
            }
        })?
    };
    let accounts = state.accounts.clone();
    let person = caller.person.clone();
    let e = blocking(move || accounts.begin_totp(&person, req.current_code.as_deref(), Utc::now()).map_err(ApiError::from))
        .await
        .map_err(|e| e.lang(caller.lang))?;
    Ok(Json(serde_json::to_value(e).unwrap_or_default()))
}

#[derive(Deserialize, ToSchema)]
pub struct TotpConfirm {
    pub code: String,
}

pub async fn totp_confirm(State(state): Shared, caller: Caller, StrictJson(req): StrictJson<TotpConfirm>) -> Result<StatusCode, ApiError> {
    let accounts = state.accounts.clone();
    let person = caller.person.clone();
    blocking(move || accounts.confirm_totp(&person, &req.code, Utc::now()).map_err(ApiError::from)).await.map_err(|e| e.lang(caller.lang))?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- forms

#[derive(Serialize, ToSchema)]
pub struct FormSummary {
    pub id: String,
    pub version: String,
    pub title: String,
    pub legal_basis: String,
    pub workflow: String,
}

pub async fn list_forms(State(state): Shared, caller: Caller) -> Json<Vec<FormSummary>> {
    let catalog = state.cases.catalog();
    Json(
        catalog
            .forms
            .values()
            .map(|f| FormSummary {
                id: f.id.clone(),
                version: f.version.clone(),
                title: f.title.get(caller.lang).into(),
                legal_basis: f.legal_basis.get(caller.lang).into(),
                workflow: f.workflow.clone(),
            })
            .collect(),
    )
}

pub async fn get_form(State(state): Shared, caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let catalog = state.cases.catalog();
    let form = catalog.form(&id).ok_or_else(|| ApiError::not_found(format!("no form {id:?}")).lang(caller.lang))?;
    Ok(Json(json!({
        "id": form.id, "version": form.version, "hash": form.content_hash,
        "title": form.title.get(caller.lang), "definition": form.source,
        "computed": form.computed_fields().collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, ToSchema)]
pub struct ValidateRequest {
    pub data: Value,
}

/// Validates without submitting: the page shows errors and computed values as the person types.
pub async fn validate_form(
    State(state): Shared,
    caller: Caller,
    Path(id): Path<String>,
    StrictJson(req): StrictJson<ValidateRequest>,
) -> Result<Json<Value>, ApiError> {
    let catalog = state.cases.catalog();
    let form = catalog.form(&id).ok_or_else(|| ApiError::not_found(format!("no form {id:?}")).lang(caller.lang))?;
    let ctx = state.cases.context_for(&caller.person, Utc::now()).map_err(|e| ApiError::from(e).lang(caller.lang))?;
    match form.validate(&req.data, &ctx, caller.lang) {
        Ok(sub) => Ok(Json(json!({"valid": true, "data": sub.data, "computed": sub.computed}))),
        Err(errors) => Ok(Json(json!({"valid": false, "errors": errors}))),
    }
}

// ---------------------------------------------------------------- signing payloads

pub use crate::cases::acts::{ActBody, DeviceSigning, PayloadRequest, SignedPayload, SubmitSigning};

#[derive(Serialize, ToSchema)]
pub struct PayloadResponse {
    /// The payload as an object.
    pub payload: Value,
    /// The exact bytes to sign (RFC 8785 canonical JSON), as a string.
    pub canonical: String,
    /// The level the act demands.
    pub required_level: Level,
    pub second_factor: bool,
}

pub use crate::cases::submission_case_id;

pub async fn signing_payload(State(state): Shared, caller: Caller, StrictJson(req): StrictJson<PayloadRequest>) -> Result<Json<PayloadResponse>, ApiError> {
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || {
        let p = st.acts().payload(caller.actor(), &req, Utc::now())?;
        let canonical = String::from_utf8(p.payload.canonical_bytes().map_err(|e| ApiError::bad_request(e.to_string()))?).unwrap_or_default();
        Ok(Json(PayloadResponse {
            payload: serde_json::to_value(&p.payload).unwrap_or_default(),
            canonical,
            required_level: p.required_level,
            second_factor: p.second_factor,
        }))
    })
    .await
    .map_err(|e| e.lang(lang))
}

// ---------------------------------------------------------------- cases

#[derive(Deserialize, ToSchema)]
pub struct SubmitRequest {
    pub form: String,
    pub data: Value,
    /// Chosen by the client; a retry with the same key returns the same case.
    pub idempotency_key: String,
    pub signed: Option<SignedPayload>,
    pub totp: Option<String>,
    /// Sign with your key on the HSM or at the remote service instead: `{"totp": CODE}`.
    pub device: Option<DeviceSigning>,
}

impl AppState {
    /// The case, its head and its workflow, if the caller may see it (`cases::acts` decides).
    pub fn visible_case(&self, caller: &Caller, case_id: &str) -> Result<(Case, CaseHead, Arc<WorkflowDefinition>), ApiError> {
        Ok(self.acts().visible_case(caller.actor(), case_id)?)
    }

    /// What this caller may read of the case (`visibility` decides).
    pub fn sight(&self, caller: &Caller, case: &Case) -> Sight {
        self.acts().sight(caller.actor(), case)
    }

    /// The case as this caller may see it: restricted fields hidden unless a role allows them.
    pub fn case_json(&self, caller: &Caller, case: &Case) -> Value {
        self.sight(caller, case).case_json(case)
    }

    /// One act of the caller's, as the API and the inbox page make it.
    pub(crate) fn act_on(&self, caller: &Caller, case_id: &str, body: &ActBody) -> Result<crate::cases::CaseView, ApiError> {
        Ok(self.acts().act(caller.actor(), case_id, body, &RequestCodes::default(), Utc::now())?)
    }
}

/// What an act or a submission answers: the case after it, and whether it repeats an earlier
/// answer (same idempotency key, nothing appended).
#[derive(Serialize)]
pub struct CaseAnswer<'a> {
    pub case: std::borrow::Cow<'a, Case>,
    pub replayed: bool,
}

pub async fn submit(State(state): Shared, caller: Caller, StrictJson(req): StrictJson<SubmitRequest>) -> Result<Response, ApiError> {
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || {
        let signing = SubmitSigning::from_request(req.signed.as_ref(), req.totp.as_deref(), req.device.as_ref())?;
        let view = st.acts().submit(caller.actor(), &req.form, &req.data, &req.idempotency_key, signing, Utc::now())?;
        let status = if view.replayed { StatusCode::OK } else { StatusCode::CREATED };
        Ok((status, Json(CaseAnswer { case: st.sight(&caller, &view.case).case_for(&view.case), replayed: view.replayed })).into_response())
    })
    .await
    .map_err(|e| e.lang(lang))
}

#[derive(Deserialize, ToSchema)]
pub struct ListQuery {
    pub after: Option<String>,
    pub limit: Option<usize>,
}

pub async fn my_cases(State(state): Shared, caller: Caller, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || {
        let page = st.cases.cases_page(&caller.person, q.after.as_deref(), q.limit.unwrap_or(50).clamp(1, 500))?;
        Ok(Json(json!({"cases": page.cases, "next": page.next})))
    })
    .await
    .map_err(|e| e.lang(lang))
}

pub async fn get_case(State(state): Shared, caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || {
        let (case, head, _) = st.visible_case(&caller, &id)?;
        Ok(Json(json!({"case": st.case_json(&caller, &case), "head": head})))
    })
    .await
    .map_err(|e| e.lang(lang))
}

pub async fn inbox(State(state): Shared, caller: Caller, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || {
        let page = st.cases.inbox(&caller.person, q.after.as_deref(), q.limit.unwrap_or(50).clamp(1, 500))?;
        Ok(Json(json!({"entries": page.entries, "next": page.next})))
    })
    .await
    .map_err(|e| e.lang(lang))
}

pub async fn act(State(state): Shared, caller: Caller, Path(id): Path<String>, StrictJson(body): StrictJson<ActBody>) -> Result<Response, ApiError> {
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || {
        let view = st.act_on(&caller, &id, &body)?;
        Ok(Json(CaseAnswer { case: st.sight(&caller, &view.case).case_for(&view.case), replayed: view.replayed }).into_response())
    })
    .await
    .map_err(|e| e.lang(lang))
}

#[derive(Deserialize, ToSchema)]
pub struct BatchItem {
    pub case: String,
    #[serde(flatten)]
    pub act: ActBody,
}

#[derive(Deserialize, ToSchema)]
pub struct BatchRequest {
    #[serde(default)]
    pub items: Vec<BatchItem>,
    /// For a signer whose key is on the HSM or at the remote signing service (CSC v2): the acts
    /// to sign, each under the one authorization that `totp` gives (instead of `items` with
    /// signatures made in the browser). For a remote signer, `totp` is the code of their
    /// credential at the service, and goes only to it.
    #[serde(default)]
    pub hsm: Vec<crate::cases::acts::BatchAct>,
    /// The signer's current TOTP code, authorizing exactly the signatures of `hsm`.
    pub totp: Option<String>,
}

/// Many acts in one request: each item is signed and decided on its own; one bad item does not
/// undo the others.
pub async fn batch(State(state): Shared, caller: Caller, StrictJson(req): StrictJson<BatchRequest>) -> Result<Json<Value>, ApiError> {
    caller.require("approver")?;
    if req.items.len() > MAX_BATCH_ITEMS || req.hsm.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::bad_request(format!("at most {MAX_BATCH_ITEMS} items per batch")).lang(caller.lang));
    }
    let lang = caller.lang;
    let st = state.clone();
    if !req.hsm.is_empty() {
        return blocking(move || hsm_batch(&st, &caller, &req)).await.map_err(|e| e.lang(lang));
    }
    blocking(move || {
        // One code for the whole batch: checked (and spent) once, on the first act that needs it.
        let codes = RequestCodes::default();
        let now = Utc::now();
        let acts = st.acts();
        let results: Vec<Value> = req
            .items
            .iter()
            .map(|item| match acts.act(caller.actor(), &item.case, &item.act, &codes, now) {
                Ok(v) => json!({"case": item.case, "ok": true, "status": v.case.status.as_str()}),
                Err(e) => json!({"case": item.case, "ok": false, "problem": ApiError::from(e).lang(caller.lang).problem()}),
            })
            .collect();
        let ok = results.iter().filter(|r| r["ok"] == true).count();
        Ok(Json(json!({"done": ok, "failed": results.len() - ok, "results": results})))
    })
    .await
    .map_err(|e| e.lang(lang))
}

/// A batch signed on the HSM: one TOTP code authorizes every signature, each act then stands
/// or falls on its own; the authorization is in the answer and recorded with every act.
fn hsm_batch(st: &AppState, caller: &Caller, req: &BatchRequest) -> Result<Json<Value>, ApiError> {
    if !req.items.is_empty() {
        return Err(ApiError::bad_request("a batch is either signed in the browser (`items`) or on the HSM (`hsm`), not both"));
    }
    let code = req.totp.as_deref().ok_or_else(|| ApiError::bad_request("signing on the HSM needs your current code (`totp`)"))?;
    // Someone the directory says signs remotely is told so when remote signing is off, rather
    // than that they have no key on the HSM.
    if st.remote.is_none()
        && crate::csc::remote::RemoteBook::load(&st.paths.data).map_err(crate::cases::acts::ActError::from)?.people.contains_key(&caller.person)
    {
        return Err(crate::cases::acts::ActError::RemoteOff.into());
    }
    let outcome = st.acts().act_batch(caller.actor(), &req.hsm, code, Utc::now())?;
    let results: Vec<Value> = outcome
        .results
        .into_iter()
        .map(|r| match r.outcome {
            Ok(v) => json!({"case": r.case, "ok": true, "status": v.case.status.as_str()}),
            Err(e) => json!({"case": r.case, "ok": false, "problem": ApiError::from(e).lang(caller.lang).problem()}),
        })
        .collect();
    let ok = results.iter().filter(|r| r["ok"] == true).count();
    Ok(Json(json!({"done": ok, "failed": results.len() - ok, "results": results, "authorization": outcome.authorization})))
}

#[derive(Deserialize, ToSchema)]
pub struct WithdrawBody {
    pub reason: Option<String>,
}

pub async fn withdraw(
    State(state): Shared,
    caller: Caller,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<WithdrawBody>,
) -> Result<Json<Value>, ApiError> {
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || {
        let (case, _, _) = st.visible_case(&caller, &id)?;
        let view = st.cases.withdraw(&case.id, &caller.person, body.reason.clone(), Utc::now(), None)?;
        Ok(Json(json!({"case": st.case_json(&caller, &view.case)})))
    })
    .await
    .map_err(|e| e.lang(lang))
}

#[derive(Deserialize, ToSchema)]
pub struct ResubmitBody {
    pub data: Value,
    pub signed: Option<SignedPayload>,
    pub totp: Option<String>,
    /// Sign with your key on the HSM or at the remote service instead: `{"totp": CODE}`.
    pub device: Option<DeviceSigning>,
}

pub async fn resubmit(
    State(state): Shared,
    caller: Caller,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<ResubmitBody>,
) -> Result<Json<Value>, ApiError> {
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || {
        let signing = SubmitSigning::from_request(body.signed.as_ref(), body.totp.as_deref(), body.device.as_ref())?;
        let view = st.acts().resubmit(caller.actor(), &id, &body.data, signing, Utc::now())?;
        Ok(Json(json!({"case": st.case_json(&caller, &view.case)})))
    })
    .await
    .map_err(|e| e.lang(lang))
}

// ---------------------------------------------------------------- evidence

/// The case's evidence bundle (one JSON file that `carimbo verify` checks offline), for a party
/// to the case or an auditor. Made on request from the store and the current validation
/// material, and sealed with the service key; `exported_by` is the caller.
pub async fn evidence(State(state): Shared, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || {
        let (case, _, _) = st.visible_case(&caller, &id)?;
        // A reader without a restricted field's role gets its commitment only: the bundle
        // still verifies, and says which fields it withholds.
        let sight = st.sight(&caller, &case);
        let pki = crate::evidence::PkiMaterial::from_seeds(&st.paths.seeds)
            .map_err(evidence_error)?
            .with_trust_list(st.trust.document_text())
            .with_device_rule(st.paths.device_rule);
        // With time-stamping on, the bundle gets its first archive time-stamp (B-LTA).
        let bundle = crate::evidence::export_archived(&st.cases, &case.id, &pki, &st.seal, &caller.person, &sight, Utc::now(), &st.stamping, &st.verifier())
            .map_err(evidence_error)?;
        let disposition = format!("attachment; filename=\"evidence-{}.json\"", case.id);
        Ok(([(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_DISPOSITION, disposition)], bundle.to_bytes()).into_response())
    })
    .await
    .map_err(|e| e.lang(lang))
}

fn evidence_error(e: crate::evidence::EvidenceError) -> ApiError {
    use crate::evidence::EvidenceError;
    match e {
        EvidenceError::Case(c) => ApiError::from(c),
        EvidenceError::Material(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E0920", e.to_string()),
        EvidenceError::Definition(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E0921", e.to_string()),
        EvidenceError::Seal(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E0922", e.to_string()),
        EvidenceError::ArchiveStamp(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "CARIMBO-E1255", e.to_string()),
        EvidenceError::Withheld(field) => ApiError::new(
            StatusCode::FORBIDDEN,
            "CARIMBO-E0923",
            format!(
                "this case recorded restricted field {field:?} in the open (before restricted fields were committed), and your roles may not see it; its evidence bundle is only for the roles the form names"
            ),
        ),
    }
}

// ---------------------------------------------------------------- admin and authors

pub async fn directory(State(state): Shared, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require("admin")?;
    let dir = state.cases.directory();
    Ok(Json(json!({
        "departments": dir.departments().collect::<Vec<_>>(),
        "groups": dir.groups().collect::<Vec<_>>(),
        "people": dir.people().collect::<Vec<_>>(),
        "delegations": dir.delegations(),
    })))
}

pub async fn add_delegation(State(state): Shared, caller: Caller, StrictJson(d): StrictJson<crate::directory::Delegation>) -> Result<StatusCode, ApiError> {
    caller.require("admin")?;
    let mut dir = (*state.cases.directory()).clone();
    dir.add_delegation(d).map_err(|e| {
        let mut a = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "CARIMBO-E0203", e.to_string());
        a.lang = caller.lang;
        a
    })?;
    state.cases.set_directory(dir);
    Ok(StatusCode::CREATED)
}

/// Removes a person's second factor (a lost phone) so they can enrol a new one without a code
/// of the old; recorded with who, whom and when in the accounts' audit log.
pub async fn reset_second_factor(State(state): Shared, caller: Caller, Path(person): Path<String>) -> Result<StatusCode, ApiError> {
    caller.require("admin")?;
    let accounts = state.accounts.clone();
    let by = caller.person.clone();
    blocking(move || accounts.reset_totp(&person, &by, Utc::now()).map_err(ApiError::from)).await.map_err(|e| e.lang(caller.lang))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn trust_list(State(state): Shared, caller: Caller) -> Result<Response, ApiError> {
    caller.require("admin")?;
    Ok(([(header::CONTENT_TYPE, "application/json")], state.trust.document_text()).into_response())
}

/// One member's status at a time, as `GET /api/v1/admin/trust-list/status` answers it.
#[derive(Serialize)]
pub struct MemberStatusView {
    pub member: String,
    pub service_type: String,
    pub name: crate::pki::trust::LocalizedName,
    pub subject: String,
    /// SHA-256 (hex) of the member's certificate.
    pub sha256: String,
    pub added_at: String,
    /// `listed` (no status yet), `granted`, `suspended` or `withdrawn`; `not_yet_listed` before it was added.
    pub status: String,
    /// The accreditation level when granted (certification entities).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// The qualified-policy OIDs in force.
    pub qualified_policies: Vec<String>,
}

/// Every member of `history` at `t`: what the trust-list page and its API show.
pub fn members_at(history: &crate::pki::history::TrustHistory, t: DateTime<Utc>) -> Vec<MemberStatusView> {
    use crate::pki::history::utc_text;
    history
        .members()
        .iter()
        .map(|m| {
            let (status, level) = match m.status_at(t) {
                _ if t < m.added_at => ("not_yet_listed".to_string(), None),
                Some((s, l)) => (s.as_str().to_string(), l),
                None => ("listed".to_string(), None),
            };
            let mut policies: Vec<String> = m.policies.iter().map(|(_, o, _)| o.clone()).filter(|o| m.qualified_policy_at(o, t)).collect();
            policies.dedup();
            MemberStatusView {
                member: m.id.clone(),
                service_type: m.service_type.as_str().into(),
                name: m.name.clone(),
                subject: m.facts.subject.clone(),
                sha256: m.facts.sha256_hex(),
                added_at: utc_text(m.added_at),
                status,
                level,
                qualified_policies: policies,
            }
        })
        .collect()
}

#[derive(Deserialize)]
pub struct AtQuery {
    pub at: Option<String>,
}

pub async fn trust_list_status(State(state): Shared, caller: Caller, Query(q): Query<AtQuery>) -> Result<Json<Value>, ApiError> {
    caller.require("admin")?;
    let at = match &q.at {
        Some(t) => {
            crate::pki::history::parse_utc_z(t).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "CARIMBO-E1241", format!("`at`: {e}")).lang(caller.lang))?
        }
        None => Utc::now(),
    };
    let history = state.trust.current();
    Ok(Json(json!({"at": crate::pki::history::utc_text(at), "entries": history.entries().len(), "members": members_at(&history, at)})))
}

/// The problem for an entry the history refused: 409 for one that does not follow the list as
/// it is now (another entry came first), 422 for anything wrong with the entry itself.
pub fn trust_entry_problem(e: &crate::trusted_list::KeptListError) -> ApiError {
    use crate::pki::history::HistoryError;
    use crate::trusted_list::KeptListError;
    let status = match e {
        KeptListError::Refused(HistoryError::OutOfOrder { .. }) => StatusCode::CONFLICT,
        KeptListError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        KeptListError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = match e {
        KeptListError::Refused(h) => h.reason(),
        other => other.to_string(),
    };
    ApiError::new(status, e.code(), format!("the trust-list entry was refused and nothing changed: {message}"))
}

/// Reads a posted entry: a JSON object with exactly the members of a `TrustEntry`.
pub fn parse_trust_entry(body: Value) -> Result<crate::pki::history::TrustEntry, ApiError> {
    serde_json::from_value(body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "CARIMBO-E1230",
            format!("the body is not a trust-list entry ({{payload, protected, signature}}, made with `carimbo trust sign`): {e}"),
        )
    })
}

pub async fn append_trust_entry(State(state): Shared, caller: Caller, StrictJson(body): StrictJson<Value>) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require("admin")?;
    let entry = parse_trust_entry(body).map_err(|e| e.lang(caller.lang))?;
    let st = state.clone();
    let history = blocking(move || st.append_trust_entry(entry, Utc::now()).map_err(|e| trust_entry_problem(&e))).await.map_err(|e| e.lang(caller.lang))?;
    let last = history.entries().last().expect("an appended history has entries");
    eprintln!("trust list: entry {} ({}) appended by {}", last.payload.seq, last.payload.change.describe(), caller.person);
    Ok((
        StatusCode::CREATED,
        Json(json!({"seq": last.payload.seq, "at": last.payload.at, "change": last.payload.change.describe(), "entries": history.entries().len()})),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct DefinitionFile {
    /// File name, e.g. `special-leave.json`.
    pub name: String,
    /// The file's JSON text.
    pub content: String,
}

#[derive(Deserialize, ToSchema)]
pub struct DefinitionUpload {
    pub files: Vec<DefinitionFile>,
}

/// Loads uploaded definitions together with everything served that they do not replace, exactly
/// as `carimbo check` would load them: the report's catalog is the set that would then serve.
/// Used by the API and by the author's page.
pub(crate) fn check_upload(state: &AppState, upload: &DefinitionUpload) -> Result<crate::catalog::LoadReport, ApiError> {
    // Checked against what is served now, wherever it was published.
    state.cases.refresh_published()?;
    let current = state.cases.catalog();
    let mut sources: Vec<SourceFile> = Vec::new();
    for f in &upload.files {
        if f.name.contains('/') || f.name.contains("..") || !f.name.ends_with(".json") {
            return Err(ApiError::bad_request(format!("{:?}: a definition upload is a plain *.json file name", f.name)));
        }
        // A form and its workflow share a file name: each problem's file says which it is in.
        let folder = match crate::catalog::kind_of(f.content.as_bytes()).as_deref() {
            Some("form") => "forms/",
            Some("workflow") => "workflows/",
            Some("holiday-calendar") | Some("rates-table") => "forms/reference/",
            _ => "",
        };
        let bytes = crate::cases::served_bytes_if_same(&current, f.content.as_bytes()).unwrap_or_else(|| f.content.clone().into_bytes());
        sources.push(SourceFile::new(format!("{folder}{}", f.name), bytes));
    }
    let version_problems = crate::cases::version_problems(&current, &sources);
    // Everything currently served that the upload does not replace, by id.
    let replaced: std::collections::BTreeSet<String> = upload
        .files
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(&f.content).ok())
        .filter_map(|v| Some(format!("{}:{}", v.get("kind")?.as_str()?, v.get("id")?.as_str()?)))
        .collect();
    for src in current.reference_sources.iter() {
        let id = serde_json::from_slice::<Value>(&src.bytes).ok().and_then(|v| Some(format!("{}:{}", v.get("kind")?.as_str()?, v.get("id")?.as_str()?)));
        if id.is_none_or(|i| !replaced.contains(&i)) {
            sources.push(src.clone());
        }
    }
    for f in current.forms.values() {
        if !replaced.contains(&format!("form:{}", f.id)) {
            sources.push(SourceFile::new(format!("forms/{}.json", f.id), current.sources.get(&f.content_hash).map(|b| b.to_vec()).unwrap_or_default()));
        }
    }
    for w in current.workflows.values() {
        if !replaced.contains(&format!("workflow:{}", w.id)) {
            sources.push(SourceFile::new(format!("workflows/{}.json", w.id), current.sources.get(&w.content_hash).map(|b| b.to_vec()).unwrap_or_default()));
        }
    }
    let dir = state.cases.directory();
    let mut report = Catalog::load_sources_with(&sources, Some(&dir));
    report.problems.extend(version_problems);
    Ok(report)
}

/// Which kind of definition a problem's file holds, by the folder `check_upload` named it in.
fn definition_kind(file: &str) -> &'static str {
    if file.starts_with("forms/reference/") {
        "reference"
    } else if file.starts_with("forms/") {
        "form"
    } else if file.starts_with("workflows/") {
        "workflow"
    } else {
        "unknown"
    }
}

/// Checks uploaded definitions exactly as `carimbo check` does, together with everything else
/// served, and that each version is new and higher than the one served. With `apply`, a clean
/// set is published (`CaseService::publish`): stored, recorded with who, when and what changed,
/// and served from then on, also after a restart and by every server on the same database. The
/// old version keeps serving until a valid one arrives; open cases stay on their own versions.
async fn definitions(state: Arc<AppState>, caller: Caller, upload: DefinitionUpload, apply: bool) -> Result<Json<Value>, ApiError> {
    // Applying is the admin's (the route is `admin` in the route table); authors and admins check.
    caller.require(if apply { "admin" } else { "author" }).or_else(|e| if caller.has("admin") { Ok(()) } else { Err(e) })?;
    let lang = caller.lang;
    blocking(move || publish_upload(&state, &caller.person, &upload, apply, lang).map(Json)).await.map_err(|e| e.lang(lang))
}

/// One problem of an upload: `message` and `line` in English (the stable detail), and under
/// `localized` the same in the caller's language (`lang`): what the code means, the detail, the line.
fn problem_json(p: &crate::forms::Problem, lang: Lang) -> Value {
    let explanation = crate::forms::problem_text::explain(p.code.0).map(|t| t.get(lang).to_string());
    json!({
        "file": p.file,
        "definition": definition_kind(&p.file),
        "pointer": p.pointer,
        "code": p.code.0,
        "message": p.message,
        "line": p.to_string(),
        "localized": {"lang": lang.code(), "explanation": explanation, "detail": p.detail_in(lang), "line": p.localized(lang)},
    })
}

/// The answer to a definitions upload: checked, and with `apply` published (also the author's
/// page's); each problem also in `lang`.
pub(crate) fn publish_upload(state: &AppState, by: &str, upload: &DefinitionUpload, apply: bool, lang: Lang) -> Result<Value, ApiError> {
    let uploaded: Vec<String> = upload.files.iter().map(|f| f.name.clone()).collect();
    let report = check_upload(state, upload)?;
    let problems: Vec<Value> = report.problems.iter().map(|p| problem_json(p, lang)).collect();
    if !problems.is_empty() {
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "CARIMBO-E0708", format!("{} problem(s); nothing was changed", problems.len()));
        e.report = Some(json!({"problems": problems, "uploaded": uploaded}));
        return Err(e);
    }
    let warnings: Vec<String> = report.warnings.iter().map(|w| w.to_string()).collect();
    let (forms, workflows) = (report.catalog.forms.len(), report.catalog.workflows.len());
    let publication = match apply {
        true => state.cases.publish(report.catalog, by, Utc::now())?,
        false => None,
    };
    Ok(json!({
        "ok": true,
        "applied": apply && publication.is_some(),
        "unchanged": apply && publication.is_none(),
        "publication": publication,
        "forms": forms,
        "workflows": workflows,
        "uploaded": uploaded,
        "warnings": warnings,
    }))
}

/// Every publication of definitions: who published what, when, with which content hash, and
/// what changed from the version before (administrators and auditors).
pub async fn publications(State(state): Shared, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require("admin").or_else(|e| if caller.has("auditor") { Ok(()) } else { Err(e) })?;
    let lang = caller.lang;
    blocking(move || Ok(Json(json!({"publications": state.cases.publications()?})))).await.map_err(|e: ApiError| e.lang(lang))
}

pub async fn check_definitions(State(state): Shared, caller: Caller, StrictJson(upload): StrictJson<DefinitionUpload>) -> Result<Json<Value>, ApiError> {
    definitions(state, caller, upload, false).await
}

pub async fn upload_definitions(State(state): Shared, caller: Caller, StrictJson(upload): StrictJson<DefinitionUpload>) -> Result<Json<Value>, ApiError> {
    definitions(state, caller, upload, true).await
}

/// A last-resort answer for anything that is not a route.
pub async fn not_found(ReqLang(lang): ReqLang) -> ApiError {
    ApiError::not_found("no such route").lang(lang)
}

/// Sessions expire after a working day.
pub fn session_lifetime() -> Duration {
    Duration::hours(8)
}

/// The caller's certificate chain (base64 DER, leaf first) from the certificate directory, for
/// the page to put in the signature's `x5c`. Certificates are public; keys never come here.
pub async fn my_certificate(State(state): Shared, caller: Caller) -> Result<Json<Value>, ApiError> {
    let path = state.paths.seeds.join("pki/people").join(format!("{}.pem", caller.person));
    let certs = crate::cli::pki_files::load_pem_certificates(&path)
        .map_err(|_| ApiError::not_found("no certificate is registered for you; ask the administrator").lang(caller.lang))?;
    let x5c: Vec<String> = certs.iter().map(|c| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, c.as_ref())).collect();
    // The leaf's public key (SubjectPublicKeyInfo DER) lets the page check a chosen key file
    // against the signer's own certificate before anything is signed ("this key is not yours").
    let leaf =
        certs.first().and_then(|c| x509_parser::parse_x509_certificate(c.as_ref()).ok()).map(|(_, c)| (c.public_key().raw.to_vec(), c.subject().to_string()));
    let (spki, subject) = match leaf {
        Some((spki, subject)) => (Some(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, spki)), Some(subject)),
        None => (None, None),
    };
    Ok(Json(json!({"x5c": x5c, "spki": spki, "subject": subject})))
}
