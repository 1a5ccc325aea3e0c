//! The JSON API under `/api/v1`. Handlers check who may call them, move data between HTTP and
//! `CaseService`, and turn every error into a problem (RFC 9457) through `ApiError`.
//! Store work runs in `spawn_blocking`: an act returns only once it is durable.

use super::auth::{roles_of, Caller, ReqLang, SESSION_COOKIE};
use super::error::ApiError;
use super::AppState;
use crate::accounts::RequestCodes;
use crate::cases::Idempotency;
use crate::catalog::{Catalog, SourceFile};
use crate::forms::FormDefinition;
use crate::i18n::Lang;
use crate::signing::{data_hash, verify_act, FormRef, SigningPayload, VerifyOptions};
use crate::store::{CaseHead, GENESIS_HASH};
use crate::visibility::{Sight, Viewer};
use crate::workflow::{ActRequest, Action, Case, Level, SignatureRecord, StepStatus, WorkflowDefinition};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use super::body::StrictJson;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::ToSchema;

type Shared = State<Arc<AppState>>;

/// How far a signer's clock may be from the server's.
const CLOCK_SKEW_MINUTES: i64 = 10;
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

pub async fn login(State(state): Shared, ConnectInfo(peer): ConnectInfo<SocketAddr>, ReqLang(lang): ReqLang, StrictJson(req): StrictJson<LoginRequest>) -> Result<Response, ApiError> {
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
    let e = blocking(move || accounts.begin_totp(&person, req.current_code.as_deref(), Utc::now()).map_err(ApiError::from)).await.map_err(|e| e.lang(caller.lang))?;
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
            .map(|f| FormSummary { id: f.id.clone(), version: f.version.clone(), title: f.title.get(caller.lang).into(), legal_basis: f.legal_basis.get(caller.lang).into(), workflow: f.workflow.clone() })
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
pub async fn validate_form(State(state): Shared, caller: Caller, Path(id): Path<String>, StrictJson(req): StrictJson<ValidateRequest>) -> Result<Json<Value>, ApiError> {
    let catalog = state.cases.catalog();
    let form = catalog.form(&id).ok_or_else(|| ApiError::not_found(format!("no form {id:?}")).lang(caller.lang))?;
    let ctx = state.cases.context_for(&caller.person, Utc::now()).map_err(|e| ApiError::from(e).lang(caller.lang))?;
    match form.validate(&req.data, &ctx, caller.lang) {
        Ok(sub) => Ok(Json(json!({"valid": true, "data": sub.data, "computed": sub.computed}))),
        Err(errors) => Ok(Json(json!({"valid": false, "errors": errors}))),
    }
}

// ---------------------------------------------------------------- signing payloads

#[derive(Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PayloadRequest {
    /// Signing a new submission: the case id follows from the idempotency key.
    Submit { form: String, data: Value, idempotency_key: String },
    /// Signing an act on an open step.
    Act { case: String, step: String, action: Action },
    /// Signing a corrected version of a returned case.
    Resubmit { case: String, data: Value },
}

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

fn sha(h: &str) -> String {
    format!("sha256:{h}")
}

fn form_ref(form: &FormDefinition) -> FormRef {
    FormRef { id: form.id.clone(), version: form.version.clone(), hash: sha(&form.content_hash) }
}

pub use crate::cases::submission_case_id;

/// What a signature on an act must cover, field by field.
struct Expected {
    case: String,
    form: FormRef,
    step: String,
    action: String,
    data_hash: String,
    previous_event_hash: String,
}

impl AppState {
    fn expected_submit(&self, caller: &Caller, form_id: &str, data: &Value, key: &str) -> Result<(Expected, Arc<FormDefinition>, Arc<WorkflowDefinition>, Value), ApiError> {
        // On the version served now, wherever it was published (called off the async runtime).
        self.cases.refresh_published()?;
        let catalog = self.cases.catalog();
        let form = catalog.form(form_id).ok_or_else(|| ApiError::not_found(format!("no form {form_id:?}")))?.clone();
        let wf = catalog.workflow(&form.workflow).ok_or_else(|| ApiError::not_found(format!("no workflow for {form_id:?}")))?.clone();
        // A bad key is refused before anything else is looked at.
        Idempotency::for_submit(key, &caller.person, form_id, data)?;
        let ctx = self.cases.context_for(&caller.person, Utc::now())?;
        let sub = form.validate(data, &ctx, caller.lang).map_err(|errors| ApiError::from(crate::cases::CaseError::Invalid(errors)))?;
        let case = submission_case_id(&caller.person, key);
        // What is signed is the data with each restricted field a salted commitment.
        let committed = self.cases.salted(&case, sub).committed().0;
        let expected = Expected {
            case,
            form: form_ref(&form),
            step: "submit".into(),
            action: "submit".into(),
            data_hash: data_hash(&committed).map_err(|e| ApiError::bad_request(e.to_string()))?,
            previous_event_hash: sha(GENESIS_HASH),
        };
        Ok((expected, form, wf, committed))
    }

    fn expected_act(&self, case: &Case, head: &CaseHead, step: &str, action: &str) -> Result<Expected, ApiError> {
        Ok(Expected {
            case: case.id.clone(),
            form: FormRef { id: case.form.id.clone(), version: case.form.version.clone(), hash: sha(&case.form.hash) },
            step: step.into(),
            action: action.into(),
            data_hash: data_hash(&case.committed_data()).map_err(|e| ApiError::bad_request(e.to_string()))?,
            previous_event_hash: sha(&head.last_hash),
        })
    }

    fn payload_for(&self, e: &Expected, signer: &str, time: DateTime<Utc>) -> SigningPayload {
        SigningPayload {
            case: e.case.clone(),
            form: e.form.clone(),
            step: e.step.clone(),
            action: e.action.clone(),
            data_hash: e.data_hash.clone(),
            previous_event_hash: e.previous_event_hash.clone(),
            signer: signer.into(),
            time,
        }
    }

    /// Turns what the caller sent into the signature record the engine stores: a verified JWS
    /// at the level it achieved, or, for a step that accepts `simple`, the service's seal.
    fn establish_signature(&self, caller: &Caller, expected: &Expected, data: &Value, required: Level, signed: Option<&SignedPayload>, totp: Option<&str>) -> Result<SignatureRecord, ApiError> {
        self.establish_signature_in(caller, expected, data, required, signed, totp, &RequestCodes::default())
    }

    /// `establish_signature` within a request that may carry the same code for several acts
    /// (a batch). The signature is checked before the code: someone holding a stolen session
    /// but not the key learns nothing about codes on a step that needs a key. On a `simple`
    /// step, which has no key, the wrong-code limit is what protects the factor.
    #[allow(clippy::too_many_arguments)]
    fn establish_signature_in(&self, caller: &Caller, expected: &Expected, data: &Value, required: Level, signed: Option<&SignedPayload>, totp: Option<&str>, codes: &RequestCodes) -> Result<SignatureRecord, ApiError> {
        let mut record = self.signature_record(caller, expected, data, required, signed)?;
        // JAdES B-T: the signature time-stamp. Before the code, so that a TSA being down does
        // not use up a person's one-time code on an act that is then not recorded.
        if let Some(jws) = record.jws.as_mut() {
            crate::cases::stamp::stamp_act_signature(&self.stamping, &self.verifier(), jws).map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string()))?;
        }
        if let Some(code) = totp {
            self.accounts.check_totp_in(&caller.person, code, Utc::now(), codes)?;
            record.second_factor = true;
        }
        Ok(record)
    }

    /// The signature part of `establish_signature`, with no second factor yet.
    fn signature_record(&self, caller: &Caller, expected: &Expected, data: &Value, required: Level, signed: Option<&SignedPayload>) -> Result<SignatureRecord, ApiError> {
        let now = Utc::now();
        let second_factor = false;
        let Some(signed) = signed else {
            if required > Level::Simple {
                return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "CARIMBO-E0302", format!("this needs a {required} signature: sign the payload with your key")));
            }
            let payload = self.payload_for(expected, &caller.person, now);
            let seal = self.seal.seal(&payload, now).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E0799", e.to_string()))?;
            return Ok(SignatureRecord {
                level: Level::Simple,
                signer: caller.person.clone(),
                jws: Some(json!({"payload": payload, "protected": seal.protected, "signature": seal.signature})),
                second_factor,
            });
        };
        let p = &signed.payload;
        let jws = serde_json::to_vec(&signed.signature).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let opts = VerifyOptions { trusted_time: Some(now), now, required_level: None };
        // A signature made for another act (another case, step, action or signer) is refused
        // with the report of verifying it over this act's payload, as any signature that does
        // not verify is: the person sees a report whichever field was swapped.
        let mismatch = |what: &str| {
            let this_act = self.payload_for(expected, &caller.person, p.time);
            let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "CARIMBO-E0500", format!("the signed payload's {what} does not match this act; fetch a fresh payload and sign again"));
            e.report = verify_act(&self.verifier(), &this_act, Some(data), &jws, required, &opts).err().and_then(|r| serde_json::to_value(&r).ok());
            e
        };
        if p.case != expected.case {
            return Err(mismatch("case"));
        }
        if p.form != expected.form {
            return Err(mismatch("form"));
        }
        if p.step != expected.step || p.action != expected.action {
            return Err(mismatch("step or action"));
        }
        if p.previous_event_hash != expected.previous_event_hash {
            return Err(ApiError::new(StatusCode::CONFLICT, "CARIMBO-E0401", "the case changed after you signed: reload it and sign again"));
        }
        if p.signer != caller.person {
            return Err(mismatch("signer"));
        }
        if (p.time - now).num_minutes().abs() > CLOCK_SKEW_MINUTES {
            return Err(mismatch("time (more than ten minutes from the server's clock)"));
        }
        match verify_act(&self.verifier(), p, Some(data), &jws, required, &opts) {
            Ok(v) => Ok(SignatureRecord {
                level: v.level(),
                signer: caller.person.clone(),
                jws: Some(json!({"payload": p, "protected": signed.signature.get("protected"), "signature": signed.signature.get("signature")})),
                second_factor,
            }),
            Err(report) => {
                let sentence = match caller.lang {
                    Lang::Zh => report.message.zh.clone(),
                    Lang::Pt => report.message.pt.clone(),
                    Lang::En => report.message.en.clone(),
                };
                let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "CARIMBO-E0500", sentence);
                e.report = serde_json::to_value(&report).ok();
                Err(e)
            }
        }
    }
}

/// A payload and the JWS (flattened JSON, detached payload) the caller made over it.
#[derive(Deserialize, Serialize, ToSchema, Clone)]
pub struct SignedPayload {
    #[schema(value_type = Object)]
    pub payload: SigningPayload,
    /// `{"protected": "...", "signature": "..."}`
    pub signature: Value,
}

pub async fn signing_payload(State(state): Shared, caller: Caller, StrictJson(req): StrictJson<PayloadRequest>) -> Result<Json<PayloadResponse>, ApiError> {
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || {
        let now = Utc::now();
        let (expected, required, second_factor) = match &req {
            PayloadRequest::Submit { form, data, idempotency_key } => {
                let (e, _, wf, _) = st.expected_submit(&caller, form, data, idempotency_key)?;
                (e, wf.submit_signature, false)
            }
            PayloadRequest::Act { case, step, action } => {
                let (c, head, wf) = st.visible_case(&caller, case)?;
                let def = wf.step(step).ok_or_else(|| ApiError::not_found(format!("no step {step:?}")))?;
                // A payload commits to the case's data: it goes only to whoever may act on the step now.
                if !st.cases.may_act(&c, &wf, step, &caller.person, now) {
                    return Err(ApiError::new(StatusCode::FORBIDDEN, "CARIMBO-E0330", format!("you have no seat on step {step:?} of this case now, so there is nothing for you to sign")));
                }
                (st.expected_act(&c, &head, step, action.as_str())?, def.signature, def.second_factor)
            }
            PayloadRequest::Resubmit { case, data } => {
                let (c, head, wf) = st.visible_case(&caller, case)?;
                if c.submitter != caller.person {
                    return Err(ApiError::new(StatusCode::FORBIDDEN, "CARIMBO-E0330", "only the submitter of a case signs its corrected version"));
                }
                if c.status != crate::workflow::CaseStatus::Returned {
                    return Err(crate::workflow::WorkflowError::CaseNotOpen(c.status.as_str()).into());
                }
                // The version the case is pinned to, even when a newer one is served now.
                let form = st.cases.form_of(&c)?;
                let ctx = st.cases.context_for(&caller.person, now)?;
                let data = &st.sight(&caller, &c).keep_hidden(data, &c.data);
                let sub = form.validate(data, &ctx, caller.lang).map_err(|errors| ApiError::from(crate::cases::CaseError::Invalid(errors)))?;
                let mut e = st.expected_act(&c, &head, "resubmit", "resubmit")?;
                let committed = st.cases.salted(&c.id, sub).committed().0;
                e.data_hash = data_hash(&committed).map_err(|e| ApiError::bad_request(e.to_string()))?;
                (e, wf.submit_signature, false)
            }
        };
        let payload = st.payload_for(&expected, &caller.person, now);
        let canonical = String::from_utf8(payload.canonical_bytes().map_err(|e| ApiError::bad_request(e.to_string()))?).unwrap_or_default();
        Ok(Json(PayloadResponse { payload: serde_json::to_value(&payload).unwrap_or_default(), canonical, required_level: required, second_factor }))
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
}

impl AppState {
    /// The case, its head and its workflow, if the caller may see it.
    pub fn visible_case(&self, caller: &Caller, case_id: &str) -> Result<(Case, CaseHead, Arc<WorkflowDefinition>), ApiError> {
        let head = self.cases.store().head(case_id)?.ok_or_else(|| ApiError::not_found(format!("no case {case_id:?}")))?;
        if !head.parties.iter().any(|p| p == &caller.person) && !caller.has("auditor") {
            // Not "forbidden": whether a case exists is itself not for everyone to learn.
            return Err(ApiError::not_found(format!("no case {case_id:?}")));
        }
        let case = self.cases.case(case_id)?;
        let wf = self.cases.workflow_of(&case)?;
        Ok((case, head, wf))
    }

    /// What this caller may read of the case (`visibility` decides). When the pinned form
    /// cannot be loaded, every field any served version restricts is hidden.
    pub fn sight(&self, caller: &Caller, case: &Case) -> Sight {
        let viewer = Viewer { person: &caller.person, roles: &caller.roles };
        match self.cases.form_of(case) {
            Ok(form) => Sight::of(&form, case, &viewer),
            Err(_) => match self.cases.catalog().form(&case.form.id) {
                Some(form) => Sight::nothing_restricted(form),
                None => Sight::everything(),
            },
        }
    }

    /// The case as this caller may see it: restricted fields hidden unless a role allows them.
    pub fn case_json(&self, caller: &Caller, case: &Case) -> Value {
        self.sight(caller, case).case_json(case)
    }
}

pub async fn submit(State(state): Shared, caller: Caller, StrictJson(req): StrictJson<SubmitRequest>) -> Result<Response, ApiError> {
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || {
        let idem = Idempotency::for_submit(&req.idempotency_key, &caller.person, &req.form, &req.data)?;
        let (expected, _form, wf, data) = st.expected_submit(&caller, &req.form, &req.data, &req.idempotency_key)?;
        let sig = st.establish_signature(&caller, &expected, &data, wf.submit_signature, req.signed.as_ref(), req.totp.as_deref())?;
        let view = st.cases.submit(&caller.person, &req.form, &req.data, sig, Utc::now(), Some(&idem), caller.lang)?;
        let status = if view.replayed { StatusCode::OK } else { StatusCode::CREATED };
        Ok((status, Json(json!({"case": st.case_json(&caller, &view.case), "replayed": view.replayed}))).into_response())
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

#[derive(Deserialize, ToSchema, Clone)]
pub struct ActBody {
    pub step: String,
    pub action: Action,
    pub comment: Option<String>,
    pub signed: Option<SignedPayload>,
    pub totp: Option<String>,
    pub idempotency_key: Option<String>,
}

impl AppState {
    pub(crate) fn act_on(&self, caller: &Caller, case_id: &str, body: &ActBody) -> Result<Value, ApiError> {
        self.act_on_in(caller, case_id, body, &RequestCodes::default())
    }

    /// `act_on` as one act of a request whose second-factor code may stand for several acts.
    pub(crate) fn act_on_in(&self, caller: &Caller, case_id: &str, body: &ActBody, codes: &RequestCodes) -> Result<Value, ApiError> {
        if body.comment.as_ref().is_some_and(|c| c.chars().count() > 4000) {
            return Err(ApiError::bad_request("the comment is longer than 4000 characters"));
        }
        // The key answers only this person's same act on this step, with the same body.
        let idem = body
            .idempotency_key
            .as_deref()
            .map(|k| Idempotency::for_act(k, &caller.person, &body.step, body.action.as_str(), body.comment.as_deref()))
            .transpose()?;
        if idem.is_some() {
            let _ = self.visible_case(caller, case_id)?;
            if let Some(case) = self.cases.replay_of(case_id, idem.as_ref())? {
                return Ok(json!({"case": self.case_json(caller, &case), "replayed": true}));
            }
        }
        let (case, head, wf) = self.visible_case(caller, case_id)?;
        let def = wf.step(&body.step).ok_or_else(|| ApiError::not_found(format!("no step {:?}", body.step)))?;
        // Someone without a seat is refused as such before any signature or code is looked at
        // (the engine decides again when the act is recorded); a step someone else has just
        // closed is a conflict (409: reload the case), not a refusal.
        if case.status == crate::workflow::CaseStatus::Open {
            if !case.steps.get(&body.step).is_some_and(|s| s.status == StepStatus::Open) {
                return Err(crate::workflow::WorkflowError::StepNotOpen(body.step.clone()).into());
            }
            self.cases.check_may_act(&case, &wf, &body.step, &caller.person, Utc::now())?;
        }
        let expected = self.expected_act(&case, &head, &body.step, body.action.as_str())?;
        let sig = self.establish_signature_in(caller, &expected, &case.committed_data(), def.signature, body.signed.as_ref(), body.totp.as_deref(), codes)?;
        let req = ActRequest { actor: caller.person.clone(), step: body.step.clone(), action: body.action, comment: body.comment.clone(), signature: sig, now: Utc::now() };
        let view = self.cases.act(case_id, req, idem.as_ref())?;
        Ok(json!({"case": self.case_json(caller, &view.case), "replayed": view.replayed}))
    }
}

pub async fn act(State(state): Shared, caller: Caller, Path(id): Path<String>, StrictJson(body): StrictJson<ActBody>) -> Result<Json<Value>, ApiError> {
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || st.act_on(&caller, &id, &body).map(Json)).await.map_err(|e| e.lang(lang))
}

#[derive(Deserialize, ToSchema)]
pub struct BatchItem {
    pub case: String,
    #[serde(flatten)]
    pub act: ActBody,
}

#[derive(Deserialize, ToSchema)]
pub struct BatchRequest {
    pub items: Vec<BatchItem>,
}

/// Many acts in one request: each item is signed and decided on its own; one bad item does not
/// undo the others.
pub async fn batch(State(state): Shared, caller: Caller, StrictJson(req): StrictJson<BatchRequest>) -> Result<Json<Value>, ApiError> {
    caller.require("approver")?;
    if req.items.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::bad_request(format!("at most {MAX_BATCH_ITEMS} items per batch")).lang(caller.lang));
    }
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || {
        // One code for the whole batch: checked (and spent) once, on the first act that needs it.
        let codes = RequestCodes::default();
        let results: Vec<Value> = req
            .items
            .iter()
            .map(|item| match st.act_on_in(&caller, &item.case, &item.act, &codes) {
                Ok(v) => json!({"case": item.case, "ok": true, "status": v["case"]["status"]}),
                Err(e) => json!({"case": item.case, "ok": false, "problem": e.lang(caller.lang).problem()}),
            })
            .collect();
        let ok = results.iter().filter(|r| r["ok"] == true).count();
        Ok(Json(json!({"done": ok, "failed": results.len() - ok, "results": results})))
    })
    .await
    .map_err(|e| e.lang(lang))
}

#[derive(Deserialize, ToSchema)]
pub struct WithdrawBody {
    pub reason: Option<String>,
}

pub async fn withdraw(State(state): Shared, caller: Caller, Path(id): Path<String>, StrictJson(body): StrictJson<WithdrawBody>) -> Result<Json<Value>, ApiError> {
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
}

pub async fn resubmit(State(state): Shared, caller: Caller, Path(id): Path<String>, StrictJson(body): StrictJson<ResubmitBody>) -> Result<Json<Value>, ApiError> {
    let lang = caller.lang;
    let st = state.clone();
    blocking(move || {
        let (case, head, wf) = st.visible_case(&caller, &id)?;
        if case.submitter != caller.person {
            return Err(crate::workflow::WorkflowError::NotSubmitter(case.submitter.clone()).into());
        }
        let form = st.cases.form_of(&case)?;
        let ctx = st.cases.context_for(&caller.person, Utc::now())?;
        let data = st.sight(&caller, &case).keep_hidden(&body.data, &case.data);
        let sub = form.validate(&data, &ctx, caller.lang).map_err(|errors| ApiError::from(crate::cases::CaseError::Invalid(errors)))?;
        let mut expected = st.expected_act(&case, &head, "resubmit", "resubmit")?;
        let committed = st.cases.salted(&case.id, sub).committed().0;
        expected.data_hash = data_hash(&committed).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let sig = st.establish_signature(&caller, &expected, &committed, wf.submit_signature, body.signed.as_ref(), body.totp.as_deref())?;
        let view = st.cases.resubmit(&id, &caller.person, &data, sig, Utc::now(), None, caller.lang)?;
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
        let pki = crate::evidence::PkiMaterial::from_seeds(&st.paths.seeds).map_err(evidence_error)?.with_trust_list(st.trust.document_text());
        // With time-stamping on, the bundle gets its first archive time-stamp (B-LTA).
        let bundle = crate::evidence::export_archived(&st.cases, &case.id, &pki, &st.seal, &caller.person, &sight, Utc::now(), &st.stamping, &st.verifier()).map_err(evidence_error)?;
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
            format!("this case recorded restricted field {field:?} in the open (before restricted fields were committed), and your roles may not see it; its evidence bundle is only for the roles the form names"),
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
            MemberStatusView { member: m.id.clone(), service_type: m.service_type.as_str().into(), name: m.name.clone(), subject: m.facts.subject.clone(), sha256: m.facts.sha256_hex(), added_at: utc_text(m.added_at), status, level, qualified_policies: policies }
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
        Some(t) => crate::pki::history::parse_utc_z(t).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "CARIMBO-E1241", format!("`at`: {e}")).lang(caller.lang))?,
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
    serde_json::from_value(body).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "CARIMBO-E1230", format!("the body is not a trust-list entry ({{payload, protected, signature}}, made with `carimbo trust sign`): {e}")))
}

pub async fn append_trust_entry(State(state): Shared, caller: Caller, StrictJson(body): StrictJson<Value>) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require("admin")?;
    let entry = parse_trust_entry(body).map_err(|e| e.lang(caller.lang))?;
    let st = state.clone();
    let history = blocking(move || st.append_trust_entry(entry, Utc::now()).map_err(|e| trust_entry_problem(&e))).await.map_err(|e| e.lang(caller.lang))?;
    let last = history.entries().last().expect("an appended history has entries");
    eprintln!("trust list: entry {} ({}) appended by {}", last.payload.seq, last.payload.change.describe(), caller.person);
    Ok((StatusCode::CREATED, Json(json!({"seq": last.payload.seq, "at": last.payload.at, "change": last.payload.change.describe(), "entries": history.entries().len()}))))
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
    let replaced: std::collections::BTreeSet<String> = upload.files.iter().filter_map(|f| serde_json::from_str::<Value>(&f.content).ok()).filter_map(|v| Some(format!("{}:{}", v.get("kind")?.as_str()?, v.get("id")?.as_str()?))).collect();
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
    blocking(move || publish_upload(&state, &caller.person, &upload, apply).map(Json)).await.map_err(|e| e.lang(lang))
}

/// The answer to a definitions upload: checked, and with `apply` published (also the author's page's).
pub(crate) fn publish_upload(state: &AppState, by: &str, upload: &DefinitionUpload, apply: bool) -> Result<Value, ApiError> {
    let uploaded: Vec<String> = upload.files.iter().map(|f| f.name.clone()).collect();
    let report = check_upload(state, upload)?;
    let problems: Vec<Value> = report
        .problems
        .iter()
        .map(|p| json!({"file": p.file, "definition": definition_kind(&p.file), "pointer": p.pointer, "code": p.code.0, "message": p.message, "line": p.to_string()}))
        .collect();
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
    let certs = crate::pki::cert::load_pem_certificates(&path).map_err(|_| ApiError::not_found("no certificate is registered for you; ask the administrator").lang(caller.lang))?;
    let x5c: Vec<String> = certs.iter().map(|c| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, c.as_ref())).collect();
    // The leaf's public key (SubjectPublicKeyInfo DER) lets the page check a chosen key file
    // against the signer's own certificate before anything is signed ("this key is not yours").
    let leaf = certs.first().and_then(|c| x509_parser::parse_x509_certificate(c.as_ref()).ok()).map(|(_, c)| (c.public_key().raw.to_vec(), c.subject().to_string()));
    let (spki, subject) = match leaf {
        Some((spki, subject)) => (Some(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, spki)), Some(subject)),
        None => (None, None),
    };
    Ok(Json(json!({"x5c": x5c, "spki": spki, "subject": subject})))
}
