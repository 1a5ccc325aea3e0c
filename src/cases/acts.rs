//! Acts as people make them: the one place that binds a signature to the act it is for, checks
//! the second factor, seals `simple` acts, time-stamps every signature (`cases::stamp`) and then
//! hands the act to `CaseService`. The JSON API, the pages and the batch inbox all call these
//! functions, so a rule about signing an act is written once.
//!
//! Each call takes the request's one `now`: the time the act is recorded at, the signature is
//! judged at and the second-factor code is checked at.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{CaseError, CaseService, CaseView, Idempotency};
use crate::accounts::{AccountError, Accounts, RequestCodes};
use crate::csc::CscError;
use crate::csc::remote::{RemoteBookError, RemoteProvider};
use crate::forms::FormDefinition;
use crate::hsm::{DeviceKey, HsmError, HsmProvider};
use crate::i18n::Lang;
use crate::signing::activation::{Activation, ActivationError, Authorization, Provenance, signing_input_hash};
use crate::signing::timestamp::TimeStampError;
use crate::signing::{FormRef, JwsAlgorithm, PreparedJades, ServiceSeal, SignatureVerifier, SigningPayload, VerifyOptions, data_hash, verify_act};
use crate::store::{CaseHead, GENESIS_HASH};
use crate::tsa::TimeStamping;
use crate::visibility::{Sight, Viewer};
use crate::workflow::{ActRequest, Action, Case, CaseStatus, Level, SignatureRecord, StepStatus, WorkflowDefinition, WorkflowError};

/// How far a signer's clock may be from the server's.
pub const CLOCK_SKEW_MINUTES: i64 = 10;
/// The longest comment an act may carry, in characters.
pub const MAX_COMMENT_CHARS: usize = 4000;

/// Who acts: the signed-in person, their roles (from the directory, plus `approver`) and the
/// language their messages are in.
#[derive(Clone, Copy)]
pub struct Actor<'a> {
    pub person: &'a str,
    pub roles: &'a BTreeSet<String>,
    pub lang: Lang,
}

impl Actor<'_> {
    fn has(&self, role: &str) -> bool {
        self.roles.contains(role)
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

/// What a signing payload is asked for.
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

/// The payload to sign, the level the step demands and whether it also asks for a code.
pub struct PayloadToSign {
    pub payload: SigningPayload,
    pub required_level: Level,
    pub second_factor: bool,
}

/// One act on a step of a case, as the API's body and the inbox's form give it.
#[derive(Deserialize, ToSchema, Clone)]
pub struct ActBody {
    pub step: String,
    pub action: Action,
    pub comment: Option<String>,
    pub signed: Option<SignedPayload>,
    pub totp: Option<String>,
    pub idempotency_key: Option<String>,
    /// For a signer whose key is on the HSM: the id of the authorization (`Acts::authorize`)
    /// that covers this act's signature; the server then makes the signature itself.
    #[serde(default)]
    pub authorization: Option<String>,
}

/// How a submission or a resubmission is signed.
#[derive(Clone, Copy)]
pub enum SubmitSigning<'a> {
    /// The person's own JWS (their key file, in the page), or none on a `simple` step (the
    /// service seals it); with a second-factor code when they give one.
    Key { signed: Option<&'a SignedPayload>, totp: Option<&'a str> },
    /// Their key on the HSM (or at the remote signing service), authorized with this one-time
    /// code over exactly this one signature.
    Device { code: &'a str },
}

impl<'a> SubmitSigning<'a> {
    /// From a request's members: `device` with `signed` is refused (`CARIMBO-E1448`).
    pub fn from_request(signed: Option<&'a SignedPayload>, totp: Option<&'a str>, device: Option<&'a DeviceSigning>) -> Result<Self, ActError> {
        match (device, signed) {
            (Some(_), Some(_)) => Err(ActError::TwoSignatures),
            (Some(d), None) => Ok(SubmitSigning::Device { code: &d.totp }),
            (None, _) => Ok(SubmitSigning::Key { signed, totp }),
        }
    }
}

/// A request's `device` member: sign with the person's key on the HSM or at the remote
/// service, authorized with this code (their TOTP, or the remote credential's one-time code).
#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct DeviceSigning {
    pub totp: String,
}

/// One act of a batch signed on the HSM under one authorization.
#[derive(Deserialize, Serialize, ToSchema, Clone, Debug)]
pub struct BatchAct {
    pub case: String,
    pub step: String,
    pub action: Action,
    pub comment: Option<String>,
}

/// What became of one act of a batch: done, or refused with its own error (the others stand).
pub struct BatchResult {
    pub case: String,
    pub outcome: Result<CaseView, ActError>,
}

/// A batch signed on the HSM: the authorization the signer gave (recorded with every act of
/// it) and one result per item, in the order given.
pub struct BatchOutcome {
    pub authorization: Authorization,
    pub results: Vec<BatchResult>,
}

/// The authorizations given and not yet spent, by id (in memory: they live five minutes).
#[derive(Default)]
pub struct Activations {
    open: Mutex<HashMap<String, Activation>>,
}

impl Activations {
    fn insert(&self, activation: Activation, now: DateTime<Utc>) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, a| !a.spent(now));
        open.insert(activation.authorization().id.clone(), activation);
    }

    /// When authorization `id` was given: the time its signatures claim.
    fn time_of(&self, id: &str) -> Option<DateTime<Utc>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).get(id).map(|a| a.authorization().time)
    }

    /// Uses `hash` of authorization `id` for `person` at `now`, once; returns the authorization.
    fn take(&self, id: &str, person: &str, hash: &str, now: DateTime<Utc>) -> Result<Authorization, ActivationError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let a = open.get_mut(id).ok_or_else(|| ActivationError::Unknown(id.into()))?;
        a.take(person, hash, now)?;
        let authorization = a.authorization().clone();
        if a.spent(now) {
            open.remove(id);
        }
        Ok(authorization)
    }
}

/// Why an act was not made. Each carries its code (docs/errors.md, docs/errors-signing.md) and
/// HTTP status as typed data; a signature that did not verify carries its ETSI report.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("{0}")]
    Stamp(TimeStampError),
    #[error("the service seal could not be made: {0}")]
    Seal(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("this needs a {0} signature: sign the payload with your key")]
    SignatureNeeded(Level),
    #[error("the signed payload's {what} does not match this act; fetch a fresh payload and sign again")]
    Mismatch { what: &'static str, report: Option<Value> },
    #[error("the case changed after you signed: reload it and sign again")]
    CaseChanged,
    /// The signature did not verify; the sentence is the report's, in the actor's language.
    #[error("{sentence}")]
    Refused { sentence: String, report: Option<Value> },
    #[error("{0}")]
    NoSeat(String),
    #[error(transparent)]
    Activation(#[from] ActivationError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error("CARIMBO-E1446: the signing certificate changed during the batch (serial {was:x}, now {now:x}); authorize the rest again")]
    CertificateChanged { was: u64, now: u64 },
    #[error("CARIMBO-E1447: signatures on the HSM are off on this server (no SoftHSM2 module or no token PIN); sign with your key file")]
    HsmOff,
    /// The CSC service refused or failed (wrong code, timeout, revoked credential, …): its own
    /// code, CARIMBO-E1470–E1479.
    #[error(transparent)]
    Remote(#[from] CscError),
    #[error(transparent)]
    RemoteBook(#[from] RemoteBookError),
    #[error("CARIMBO-E1448: give either your own signature (`signed`) or your device's (`device`), not both; nothing was signed")]
    TwoSignatures,
    #[error("CARIMBO-E1460: you sign at a remote signing service, and remote signing is off on this server (started without --csc-url); nothing was signed")]
    RemoteOff,
}

impl From<WorkflowError> for ActError {
    fn from(e: WorkflowError) -> Self {
        ActError::Case(CaseError::Workflow(e))
    }
}

impl From<crate::store::StoreError> for ActError {
    fn from(e: crate::store::StoreError) -> Self {
        ActError::Case(CaseError::Store(e))
    }
}

impl ActError {
    /// The stable code, as typed data.
    pub fn code(&self) -> &'static str {
        match self {
            ActError::Case(e) => e.code(),
            ActError::Account(e) => e.code(),
            ActError::Stamp(e) => e.code(),
            ActError::Seal(_) => "CARIMBO-E0799",
            ActError::NotFound(_) => "CARIMBO-E0703",
            ActError::BadRequest(_) => "CARIMBO-E0704",
            ActError::SignatureNeeded(_) => "CARIMBO-E0302",
            ActError::Mismatch { .. } | ActError::Refused { .. } => "CARIMBO-E0500",
            ActError::CaseChanged => "CARIMBO-E0401",
            ActError::NoSeat(_) => "CARIMBO-E0330",
            ActError::Activation(e) => e.code(),
            ActError::Hsm(e) => e.code(),
            ActError::CertificateChanged { .. } => "CARIMBO-E1446",
            ActError::HsmOff => "CARIMBO-E1447",
            ActError::TwoSignatures => "CARIMBO-E1448",
            ActError::Remote(e) => e.code(),
            ActError::RemoteBook(_) => "CARIMBO-E1461",
            ActError::RemoteOff => "CARIMBO-E1460",
        }
    }

    /// The HTTP status a client gets for it: a client's mistake is never a 500.
    pub fn status(&self) -> u16 {
        match self {
            ActError::Case(e) => e.status(),
            ActError::Account(e) => e.status(),
            ActError::Stamp(_) => 503,
            ActError::Seal(_) => 500,
            ActError::NotFound(_) => 404,
            ActError::BadRequest(_) => 400,
            ActError::SignatureNeeded(_) | ActError::Mismatch { .. } | ActError::Refused { .. } => 422,
            ActError::CaseChanged => 409,
            ActError::NoSeat(_) => 403,
            ActError::Activation(e) => e.status(),
            ActError::Hsm(e) => e.status(),
            ActError::CertificateChanged { .. } => 409,
            ActError::HsmOff | ActError::TwoSignatures => 422,
            ActError::Remote(e) => e.status(),
            ActError::RemoteBook(_) => 500,
            ActError::RemoteOff => 503,
        }
    }

    /// The signature's validation report, when a signature was refused.
    pub fn report(&self) -> Option<&Value> {
        match self {
            ActError::Mismatch { report, .. } | ActError::Refused { report, .. } => report.as_ref(),
            _ => None,
        }
    }
}

/// What a signature on an act must cover, field by field.
struct Expected {
    case: String,
    form: FormRef,
    step: String,
    action: String,
    data_hash: String,
    previous_event_hash: String,
}

impl Expected {
    fn payload(&self, signer: &str, time: DateTime<Utc>) -> SigningPayload {
        SigningPayload {
            case: self.case.clone(),
            form: self.form.clone(),
            step: self.step.clone(),
            action: self.action.clone(),
            data_hash: self.data_hash.clone(),
            previous_event_hash: self.previous_event_hash.clone(),
            signer: signer.into(),
            time,
        }
    }
}

fn sha(h: &str) -> String {
    format!("sha256:{h}")
}

fn form_ref(form: &FormDefinition) -> FormRef {
    FormRef { id: form.id.clone(), version: form.version.clone(), hash: sha(&form.content_hash) }
}

fn hash_of(data: &Value) -> Result<String, ActError> {
    data_hash(data).map_err(|e| ActError::BadRequest(e.to_string()))
}

/// The services an act is made with, borrowed for one request.
pub struct Acts<'a> {
    pub cases: &'a CaseService,
    pub accounts: &'a Accounts,
    pub seal: &'a ServiceSeal,
    pub stamping: &'a TimeStamping,
    pub verifier: Arc<SignatureVerifier>,
    /// The HSM signing provider, when this server has one.
    pub hsm: Option<&'a HsmProvider>,
    /// The remote signing provider (a CSC v2 service), when this server has one.
    pub remote: Option<&'a RemoteProvider>,
    pub activations: &'a Activations,
}

impl Acts<'_> {
    /// The case, its head and its workflow, if the actor may see it (a party, or an auditor).
    pub fn visible_case(&self, actor: Actor, case_id: &str) -> Result<(Case, CaseHead, Arc<WorkflowDefinition>), ActError> {
        let head = self.cases.store().head(case_id)?.ok_or_else(|| ActError::NotFound(format!("no case {case_id:?}")))?;
        if !head.parties.iter().any(|p| p == actor.person) && !actor.has("auditor") {
            // Not "forbidden": whether a case exists is itself not for everyone to learn.
            return Err(ActError::NotFound(format!("no case {case_id:?}")));
        }
        let case = self.cases.case_at(&head)?;
        let wf = self.cases.workflow_of(&case)?;
        Ok((case, head, wf))
    }

    /// What this actor may read of the case (`visibility` decides). When the pinned form
    /// cannot be loaded, every field any served version restricts is hidden.
    pub fn sight(&self, actor: Actor, case: &Case) -> Sight {
        let viewer = Viewer { person: actor.person, roles: actor.roles };
        match self.cases.form_of(case) {
            Ok(form) => Sight::of(&form, case, &viewer),
            Err(_) => match self.cases.catalog().form(&case.form.id) {
                Some(form) => Sight::nothing_restricted(form),
                None => Sight::everything(),
            },
        }
    }

    /// The exact payload to sign for a submission, an act or a resubmission.
    pub fn payload(&self, actor: Actor, req: &PayloadRequest, now: DateTime<Utc>) -> Result<PayloadToSign, ActError> {
        let (expected, required_level, second_factor) = match req {
            PayloadRequest::Submit { form, data, idempotency_key } => {
                let idem = Idempotency::for_submit(idempotency_key, actor.person, form, data)?;
                let prepared = self.cases.prepare_submit(actor.person, form, data, now, Some(&idem), actor.lang)?;
                (submit_expected(&prepared)?, prepared.workflow.submit_signature, false)
            }
            PayloadRequest::Act { case, step, action } => {
                let (c, head, wf) = self.visible_case(actor, case)?;
                let def = wf.step(step).ok_or_else(|| ActError::NotFound(format!("no step {step:?}")))?;
                // A payload commits to the case's data: it goes only to whoever may act on the step now.
                if !self.cases.may_act(&c, &wf, step, actor.person, now) {
                    return Err(ActError::NoSeat(format!("you have no seat on step {step:?} of this case now, so there is nothing for you to sign")));
                }
                (act_expected(&c, &head, step, action.as_str())?, def.signature, def.second_factor)
            }
            PayloadRequest::Resubmit { case, data } => {
                let (c, head, wf) = self.visible_case(actor, case)?;
                if c.submitter != actor.person {
                    return Err(ActError::NoSeat("only the submitter of a case signs its corrected version".into()));
                }
                if c.status != CaseStatus::Returned {
                    return Err(WorkflowError::CaseNotOpen(c.status.as_str()).into());
                }
                let (expected, _, _) = self.resubmission(actor, &c, &head, data, now)?;
                (expected, wf.submit_signature, false)
            }
        };
        Ok(PayloadToSign { payload: expected.payload(actor.person, now), required_level, second_factor })
    }

    /// Submits a form signed as its workflow demands; validated once, and what is signed is
    /// what is recorded. A retry with the same key returns the first case.
    #[allow(clippy::too_many_arguments)] // each argument is a distinct fact of the request
    pub fn submit(&self, actor: Actor, form: &str, data: &Value, key: &str, signing: SubmitSigning, now: DateTime<Utc>) -> Result<CaseView, ActError> {
        // A bad key is refused before anything else is looked at.
        let idem = Idempotency::for_submit(key, actor.person, form, data)?;
        let prepared = self.cases.prepare_submit(actor.person, form, data, now, Some(&idem), actor.lang)?;
        // A retry of a submission signed on the device returns the first case without
        // spending a second code.
        if matches!(signing, SubmitSigning::Device { .. })
            && let Some(case) = self.cases.replay_of(&prepared.case_id, Some(&idem))?
        {
            return Ok(CaseView { case, replayed: true });
        }
        let expected = submit_expected(&prepared)?;
        let required = prepared.workflow.submit_signature;
        let sig = self.signed_as_chosen(actor, &expected, &prepared.committed, required, signing, now)?;
        Ok(self.cases.open_prepared(prepared, sig, now, Some(&idem))?)
    }

    /// The signature record of a submission or resubmission, made the way the person chose.
    fn signed_as_chosen(
        &self,
        actor: Actor,
        expected: &Expected,
        data: &Value,
        required: Level,
        signing: SubmitSigning,
        now: DateTime<Utc>,
    ) -> Result<SignatureRecord, ActError> {
        match signing {
            SubmitSigning::Key { signed, totp } => self.establish(actor, expected, data, required, signed, totp, &RequestCodes::default(), now),
            SubmitSigning::Device { code } => {
                let signed = self.device_signed_once(actor, expected, code, now)?;
                self.establish_device(actor, expected, data, required, signed, &RequestCodes::default(), now)
            }
        }
    }

    /// [`Acts::establish`] for a signature a device key made: the same verification and
    /// time-stamp, recorded with its provenance and the second factor its authorization took.
    #[allow(clippy::too_many_arguments)] // each argument is a distinct fact of the act
    fn establish_device(
        &self,
        actor: Actor,
        expected: &Expected,
        data: &Value,
        required: Level,
        (signed, provenance): (SignedPayload, Provenance),
        codes: &RequestCodes,
        now: DateTime<Utc>,
    ) -> Result<SignatureRecord, ActError> {
        let mut record = self.establish(actor, expected, data, required, Some(&signed), None, codes, now)?;
        record.second_factor = true;
        record.provenance = Some(provenance);
        Ok(record)
    }

    /// One act on a step; `codes` lets one second-factor code stand for every act of a batch.
    pub fn act(&self, actor: Actor, case_id: &str, body: &ActBody, codes: &RequestCodes, now: DateTime<Utc>) -> Result<CaseView, ActError> {
        self.act_with(actor, case_id, body, codes, now, None)
    }

    /// [`Acts::act`], with the signature a remote provider already made for it (`presigned`)
    /// when there is one: it then goes through the same verification, time-stamp and recording.
    fn act_with(
        &self,
        actor: Actor,
        case_id: &str,
        body: &ActBody,
        codes: &RequestCodes,
        now: DateTime<Utc>,
        presigned: Option<(SignedPayload, Provenance)>,
    ) -> Result<CaseView, ActError> {
        if body.comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS) {
            return Err(ActError::BadRequest(format!("the comment is longer than {MAX_COMMENT_CHARS} characters")));
        }
        // The key answers only this person's same act on this step, with the same body.
        let idem = body
            .idempotency_key
            .as_deref()
            .map(|k| Idempotency::for_act(k, actor.person, &body.step, body.action.as_str(), body.comment.as_deref()))
            .transpose()?;
        let (case, head, wf) = self.visible_case(actor, case_id)?;
        if idem.is_some()
            && let Some(case) = self.cases.replay_of(case_id, idem.as_ref())?
        {
            return Ok(CaseView { case, replayed: true });
        }
        let def = wf.step(&body.step).ok_or_else(|| ActError::NotFound(format!("no step {:?}", body.step)))?;
        // Someone without a seat is refused as such before any signature or code is looked at
        // (the engine decides again when the act is recorded); a step someone else has just
        // closed is a conflict (409: reload the case), not a refusal.
        if case.status == CaseStatus::Open {
            if !case.steps.get(&body.step).is_some_and(|s| s.status == StepStatus::Open) {
                return Err(WorkflowError::StepNotOpen(body.step.clone()).into());
            }
            self.cases.check_may_act(&case, &wf, &body.step, actor.person, now)?;
        }
        let expected = act_expected(&case, &head, &body.step, body.action.as_str())?;
        let device = match (presigned, body.authorization.as_deref()) {
            (Some(signed), _) => Some(signed),
            (None, Some(id)) if body.signed.is_none() => Some(self.device_signed(actor, &expected, id, now)?),
            _ => None,
        };
        let sig = match device {
            // The provider step: a device key signs here (or signed remotely), then the act goes
            // on exactly as a browser-signed one does (same verification, time-stamp, recording).
            Some(signed) => self.establish_device(actor, &expected, &case.committed_data(), def.signature, signed, codes, now)?,
            _ => self.establish(actor, &expected, &case.committed_data(), def.signature, body.signed.as_ref(), body.totp.as_deref(), codes, now)?,
        };
        let req =
            ActRequest { actor: actor.person.to_string(), step: body.step.clone(), action: body.action, comment: body.comment.clone(), signature: sig, now };
        Ok(self.cases.act(case_id, req, idem.as_ref())?)
    }

    /// Resubmits a corrected version of the actor's returned case, signed over its new data.
    pub fn resubmit(&self, actor: Actor, case_id: &str, data: &Value, signing: SubmitSigning, now: DateTime<Utc>) -> Result<CaseView, ActError> {
        let (case, head, wf) = self.visible_case(actor, case_id)?;
        if case.submitter != actor.person {
            return Err(WorkflowError::NotSubmitter(case.submitter.clone()).into());
        }
        if case.status != CaseStatus::Returned {
            // Before a device code is spent on a case that cannot take a correction.
            return Err(WorkflowError::CaseNotOpen(case.status.as_str()).into());
        }
        let (expected, data, committed) = self.resubmission(actor, &case, &head, data, now)?;
        let sig = self.signed_as_chosen(actor, &expected, &committed, wf.submit_signature, signing, now)?;
        Ok(self.cases.resubmit(case_id, actor.person, &data, sig, now, None, actor.lang)?)
    }

    /// What a resubmission signs: the corrected data (hidden fields kept as they were) checked
    /// against the version the case is pinned to, even when a newer one is served now.
    /// Returns what is signed, the data to record and the data as committed.
    fn resubmission(&self, actor: Actor, case: &Case, head: &CaseHead, data: &Value, now: DateTime<Utc>) -> Result<(Expected, Value, Value), ActError> {
        let data = self.sight(actor, case).keep_hidden(data, &case.data);
        let form = self.cases.form_of(case)?;
        let ctx = self.cases.context_for(actor.person, now)?;
        let sub = form.validate(&data, &ctx, actor.lang).map_err(CaseError::Invalid)?;
        let committed = self.cases.salted(&case.id, sub).committed().0;
        let mut expected = act_expected(case, head, "resubmit", "resubmit")?;
        expected.data_hash = hash_of(&committed)?;
        Ok((expected, data, committed))
    }

    /// Turns what the actor sent into the signature record the engine stores: a verified JWS
    /// at the level it achieved, or, for a step that accepts `simple`, the service's seal;
    /// time-stamped, then the second factor. The signature is checked before the code: someone
    /// holding a stolen session but not the key learns nothing about codes on a step that needs
    /// a key. On a `simple` step, which has no key, the wrong-code limit protects the factor.
    #[allow(clippy::too_many_arguments)] // each argument is a distinct fact of the act
    fn establish(
        &self,
        actor: Actor,
        expected: &Expected,
        data: &Value,
        required: Level,
        signed: Option<&SignedPayload>,
        totp: Option<&str>,
        codes: &RequestCodes,
        now: DateTime<Utc>,
    ) -> Result<SignatureRecord, ActError> {
        let mut record = match signed {
            None => self.sealed(actor, expected, required, now)?,
            Some(signed) => self.verified(actor, expected, data, required, signed, now)?,
        };
        // JAdES B-T: the signature time-stamp. Before the code, so that a TSA being down does
        // not use up a person's one-time code on an act that is then not recorded.
        if let Some(jws) = record.jws.as_mut() {
            super::stamp::stamp_act_signature(self.stamping, &self.verifier, jws).map_err(ActError::Stamp)?;
        }
        if let Some(code) = totp {
            self.accounts.check_totp_in(actor.person, code, now, codes)?;
            record.second_factor = true;
        }
        Ok(record)
    }

    /// The service's seal over the act's payload, for a step that accepts a `simple` signature.
    fn sealed(&self, actor: Actor, expected: &Expected, required: Level, now: DateTime<Utc>) -> Result<SignatureRecord, ActError> {
        if required > Level::Simple {
            return Err(ActError::SignatureNeeded(required));
        }
        let payload = expected.payload(actor.person, now);
        let seal = self.seal.seal(&payload, now).map_err(|e| ActError::Seal(e.to_string()))?;
        Ok(SignatureRecord {
            level: Level::Simple,
            signer: actor.person.to_string(),
            jws: Some(json!({"payload": payload, "protected": seal.protected, "signature": seal.signature})),
            second_factor: false,
            provenance: None,
        })
    }

    /// The actor's own signature, bound field by field to this act and verified at `now`.
    fn verified(
        &self,
        actor: Actor,
        expected: &Expected,
        data: &Value,
        required: Level,
        signed: &SignedPayload,
        now: DateTime<Utc>,
    ) -> Result<SignatureRecord, ActError> {
        let p = &signed.payload;
        let jws = serde_json::to_vec(&signed.signature).map_err(|e| ActError::BadRequest(e.to_string()))?;
        let opts = VerifyOptions { trusted_time: Some(now), now, required_level: None };
        // A signature made for another act (another case, step, action or signer) is refused
        // with the report of verifying it over this act's payload, as any signature that does
        // not verify is: the person sees a report whichever field was swapped.
        let mismatch = |what: &'static str| {
            let this_act = expected.payload(actor.person, p.time);
            let report = verify_act(&self.verifier, &this_act, Some(data), &jws, required, &opts).err().and_then(|r| serde_json::to_value(&r).ok());
            ActError::Mismatch { what, report }
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
            return Err(ActError::CaseChanged);
        }
        if p.signer != actor.person {
            return Err(mismatch("signer"));
        }
        if (p.time - now).num_minutes().abs() > CLOCK_SKEW_MINUTES {
            return Err(mismatch("time (more than ten minutes from the server's clock)"));
        }
        match verify_act(&self.verifier, p, Some(data), &jws, required, &opts) {
            Ok(v) => Ok(SignatureRecord {
                level: v.level(),
                signer: actor.person.to_string(),
                jws: Some(json!({"payload": p, "protected": signed.signature.get("protected"), "signature": signed.signature.get("signature")})),
                second_factor: false,
                provenance: Some(Provenance::BrowserKey),
            }),
            Err(report) => {
                let sentence = match actor.lang {
                    Lang::Zh => report.message.zh.clone(),
                    Lang::Pt => report.message.pt.clone(),
                    Lang::En => report.message.en.clone(),
                };
                Err(ActError::Refused { sentence, report: serde_json::to_value(&report).ok() })
            }
        }
    }
}

mod remote;

/// A signing input prepared on the server for a device key: the payload, the JAdES header and
/// the hash an authorization names.
struct DeviceInput {
    payload: SigningPayload,
    prepared: PreparedJades,
    hash: String,
}

impl Acts<'_> {
    fn provider(&self) -> Result<&HsmProvider, ActError> {
        self.hsm.ok_or(ActError::HsmOff)
    }

    /// What the HSM will sign for `expected` with `key` at `time`: the same header and payload
    /// whenever it is rebuilt, so the hash checked at signing is the hash authorized.
    fn device_input(&self, actor: Actor, expected: &Expected, key: &DeviceKey, time: DateTime<Utc>) -> Result<DeviceInput, ActError> {
        let chain = crate::pki::cert::parse_pem_certificates(key.chain_pem.as_bytes(), "device certificate")
            .map_err(|e| ActError::Hsm(HsmError::Device(e.to_string())))?;
        signing_input_for(actor, expected, &chain, time)
    }

    /// The signature of the actor's device key over `expected`, made only when authorization
    /// `id` (the actor's, unexpired) covers exactly its signing input; one use per hash.
    fn device_signed(&self, actor: Actor, expected: &Expected, id: &str, now: DateTime<Utc>) -> Result<(SignedPayload, Provenance), ActError> {
        let provider = self.provider()?;
        let key = provider.key_of(actor.person)?;
        let time = self.activations.time_of(id).ok_or_else(|| ActivationError::Unknown(id.into()))?;
        let input = self.device_input(actor, expected, &key, time)?;
        let authorization = self.activations.take(id, actor.person, &input.hash, now)?;
        let value = provider.sign(&key, input.prepared.signing_input.as_bytes())?;
        let jws = input.prepared.finish(&value);
        let signed = SignedPayload { payload: input.payload, signature: json!({"protected": jws.protected, "signature": jws.signature}) };
        Ok((signed, Provenance::Hsm { token: key.token, key_label: key.key_label, authorization }))
    }

    /// One signature of the actor's device key over `expected` at `now`, authorized with `code`
    /// over exactly its signing input (an authorization of one hash, used at once): at the
    /// remote service for a signer named there, else on the HSM.
    fn device_signed_once(&self, actor: Actor, expected: &Expected, code: &str, now: DateTime<Utc>) -> Result<(SignedPayload, Provenance), ActError> {
        if let Some(remote) = self.remote
            && let Some(credential) = remote.credential_of(actor.person)?
        {
            return self.remote_signed_once(remote, &credential, actor, expected, code, now);
        }
        let provider = self.provider()?;
        let key = provider.key_of(actor.person)?;
        let input = self.device_input(actor, expected, &key, now)?;
        let mut activation = Activation::new(crate::accounts::random_token(), actor.person, now, vec![input.hash.clone()], None)?;
        self.accounts.check_totp(actor.person, code, now)?;
        activation.take(actor.person, &input.hash, now)?;
        let value = provider.sign(&key, input.prepared.signing_input.as_bytes())?;
        let jws = input.prepared.finish(&value);
        let signed = SignedPayload { payload: input.payload, signature: json!({"protected": jws.protected, "signature": jws.signature}) };
        Ok((signed, Provenance::Hsm { token: key.token, key_label: key.key_label, authorization: activation.authorization().clone() }))
    }

    /// The signer authorizes, with one TOTP code, exactly the signatures of `items` by their
    /// device key at `now`. Items that cannot be signed now (no seat, step closed) are left out
    /// and reported; a wrong code authorizes nothing and changes nothing.
    pub fn authorize(
        &self,
        actor: Actor,
        items: &[BatchAct],
        code: &str,
        batch: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(Authorization, Vec<(usize, ActError)>), ActError> {
        let provider = self.provider()?;
        let key = provider.key_of(actor.person)?;
        let mut hashes = Vec::new();
        let mut refused = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match self.prepare_item(actor, item, &key, now) {
                Ok(input) => hashes.push(input.hash),
                Err(e) => refused.push((i, e)),
            }
        }
        if hashes.is_empty() {
            return Err(refused.into_iter().next().map(|(_, e)| e).unwrap_or(ActivationError::BadSize(0).into()));
        }
        let activation = Activation::new(crate::accounts::random_token(), actor.person, now, hashes, batch)?;
        self.accounts.check_totp(actor.person, code, now)?;
        let authorization = activation.authorization().clone();
        self.activations.insert(activation, now);
        Ok((authorization, refused))
    }

    fn prepare_item(&self, actor: Actor, item: &BatchAct, key: &DeviceKey, now: DateTime<Utc>) -> Result<DeviceInput, ActError> {
        let expected = self.batch_expected(actor, item, now)?;
        self.device_input(actor, &expected, key, now)
    }

    /// What item `item` of a batch signs, if the actor has a seat on its step now.
    fn batch_expected(&self, actor: Actor, item: &BatchAct, now: DateTime<Utc>) -> Result<Expected, ActError> {
        let (case, head, wf) = self.visible_case(actor, &item.case)?;
        if wf.step(&item.step).is_none() {
            return Err(ActError::NotFound(format!("no step {:?}", item.step)));
        }
        if !self.cases.may_act(&case, &wf, &item.step, actor.person, now) {
            return Err(ActError::NoSeat(format!("you have no seat on step {:?} of this case now, so there is nothing for you to sign", item.step)));
        }
        act_expected(&case, &head, &item.step, item.action.as_str())
    }

    /// N acts signed on the HSM with one TOTP code: one authorization over the N signing inputs,
    /// then each act on its own (one result per item: a refused item does not undo the others).
    /// The certificate is the one authorized for the whole batch.
    pub fn act_batch(&self, actor: Actor, items: &[BatchAct], code: &str, now: DateTime<Utc>) -> Result<BatchOutcome, ActError> {
        if let Some(remote) = self.remote
            && let Some(credential) = remote.credential_of(actor.person)?
        {
            return self.remote_batch(remote, &credential, actor, items, code, now);
        }
        let provider = self.provider()?;
        let key = provider.key_of(actor.person)?;
        let batch = format!("batch-{}", crate::accounts::random_token());
        let (authorization, refused) = self.authorize(actor, items, code, Some(batch), now)?;
        let mut refused: HashMap<usize, ActError> = refused.into_iter().collect();
        let mut results = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let outcome = match refused.remove(&i) {
                Some(e) => Err(e),
                None => self.batch_item(actor, item, &authorization, &key, now),
            };
            results.push(BatchResult { case: item.case.clone(), outcome });
        }
        Ok(BatchOutcome { authorization, results })
    }

    fn batch_item(&self, actor: Actor, item: &BatchAct, authorization: &Authorization, key: &DeviceKey, now: DateTime<Utc>) -> Result<CaseView, ActError> {
        let current = self.provider()?.key_of(actor.person)?;
        if current.serial != key.serial {
            return Err(ActError::CertificateChanged { was: key.serial, now: current.serial });
        }
        let body = ActBody {
            step: item.step.clone(),
            action: item.action,
            comment: item.comment.clone(),
            signed: None,
            totp: None,
            idempotency_key: None,
            authorization: Some(authorization.id.clone()),
        };
        self.act(actor, &item.case, &body, &RequestCodes::default(), now)
    }
}

/// The JAdES header (x5c from `chain`) and payload a device key signs for `expected` at `time`,
/// and the hash an authorization names: the same for the HSM and a remote service.
fn signing_input_for(actor: Actor, expected: &Expected, chain: &[rustls_pki_types::CertificateDer<'_>], time: DateTime<Utc>) -> Result<DeviceInput, ActError> {
    let payload = expected.payload(actor.person, time);
    let bytes = payload.canonical_bytes().map_err(|e| ActError::BadRequest(e.to_string()))?;
    let prepared = PreparedJades::new(JwsAlgorithm::ES256, chain, &bytes, time).map_err(|e| ActError::BadRequest(e.to_string()))?;
    let hash = signing_input_hash(prepared.signing_input.as_bytes());
    Ok(DeviceInput { payload, prepared, hash })
}

fn submit_expected(prepared: &super::PreparedSubmission) -> Result<Expected, ActError> {
    Ok(Expected {
        case: prepared.case_id.clone(),
        form: form_ref(&prepared.form),
        step: "submit".into(),
        action: "submit".into(),
        data_hash: hash_of(&prepared.committed)?,
        previous_event_hash: sha(GENESIS_HASH),
    })
}

fn act_expected(case: &Case, head: &CaseHead, step: &str, action: &str) -> Result<Expected, ActError> {
    Ok(Expected {
        case: case.id.clone(),
        form: FormRef { id: case.form.id.clone(), version: case.form.version.clone(), hash: sha(&case.form.hash) },
        step: step.into(),
        action: action.into(),
        data_hash: hash_of(&case.committed_data())?,
        previous_event_hash: sha(&head.last_hash),
    })
}
