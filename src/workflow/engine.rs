//! The case state machine: events in, open steps and their assignees out.
//!
//! A case is a list of `CaseEvent`s; `Case::replay` folds them into the current state. The
//! decision functions (`open_case`, `act`, `resubmit`, `withdraw`, `tick`) take the state, the
//! workflow, the directory and the time, check the request, and return the events to append —
//! they never change anything themselves. Who was assigned is recorded in `StepOpened` events,
//! so replaying a case gives the same state even after the directory changed.

use super::definition::{Action, Assignee, CompleteWhen, Level, Seats, SelfApproval, StepDefinition, WorkflowDefinition};
use crate::directory::Directory;
use crate::forms::ValidSubmission;
use crate::forms::commitment::{self, Disclosures};
use crate::forms::logic;
use chrono::{DateTime, Utc};
use datalogic_rs::DataValue;
use datalogic_rs::bumpalo::Bump;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The exact definition a case is pinned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionRef {
    pub id: String,
    pub version: String,
    pub hash: String,
}

/// How an act was signed. The level is what signature verification achieved (the `signing`
/// module); the engine only compares it with what the step demands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureRecord {
    pub level: Level,
    pub signer: String,
    /// The JAdES JWS (advanced, qualified) or the service seal (simple), as stored evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jws: Option<Value>,
    /// Whether a TOTP second factor was verified for this act.
    #[serde(default)]
    pub second_factor: bool,
    /// Which signing provider made the signature and, for a device key, under which
    /// authorization of the signer (absent in records made before providers were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<crate::signing::activation::Provenance>,
}

/// One seat of an open step: acted on once, by one of `people` (or their delegate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub id: String,
    pub people: Vec<String>,
}

/// A change between two versions of a submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub pointer: String,
    pub before: Value,
    pub after: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CaseEvent {
    Submitted {
        case_id: String,
        at: DateTime<Utc>,
        form: DefinitionRef,
        workflow: DefinitionRef,
        submitter: String,
        subject: String,
        /// The data as signed: each restricted field a salted commitment (`forms::commitment`).
        data: Value,
        signature: SignatureRecord,
        /// The restricted fields' values and salts. Outside the hash chain (`store::chain_hash`)
        /// so a redacted record can drop them; each is checked against its commitment.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        disclosures: Disclosures,
        /// The reference data the case opened with (`reference/<file>` → SHA-256 hex): pinned
        /// like the definitions, so computed values are re-derived from the same calendars and
        /// tables (empty in records made before the pin).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        reference: BTreeMap<String, String>,
    },
    StepOpened {
        at: DateTime<Utc>,
        step: String,
        seats: Vec<Seat>,
    },
    StepSkipped {
        at: DateTime<Utc>,
        step: String,
        reason: String,
    },
    Acted {
        at: DateTime<Utc>,
        step: String,
        seat: String,
        actor: String,
        /// The principal when the actor acts under a delegation ("A for B under delegation D").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delegation: Option<String>,
        action: Action,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        signature: SignatureRecord,
    },
    StepDone {
        at: DateTime<Utc>,
        step: String,
    },
    Resubmitted {
        at: DateTime<Utc>,
        by: String,
        /// As in `Submitted`: restricted fields as commitments, here and in `changes`.
        data: Value,
        changes: Vec<Change>,
        signature: SignatureRecord,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        disclosures: Disclosures,
    },
    Withdrawn {
        at: DateTime<Utc>,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Reminded {
        at: DateTime<Utc>,
        step: String,
        seat: String,
        people: Vec<String>,
    },
    Escalated {
        at: DateTime<Utc>,
        step: String,
        seat: String,
        added: Vec<String>,
    },
    Completed {
        at: DateTime<Utc>,
    },
    Rejected {
        at: DateTime<Utc>,
        by: String,
        step: String,
    },
}

impl CaseEvent {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            CaseEvent::Submitted { at, .. }
            | CaseEvent::StepOpened { at, .. }
            | CaseEvent::StepSkipped { at, .. }
            | CaseEvent::Acted { at, .. }
            | CaseEvent::StepDone { at, .. }
            | CaseEvent::Resubmitted { at, .. }
            | CaseEvent::Withdrawn { at, .. }
            | CaseEvent::Reminded { at, .. }
            | CaseEvent::Escalated { at, .. }
            | CaseEvent::Completed { at }
            | CaseEvent::Rejected { at, .. } => *at,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            CaseEvent::Submitted { .. } => "submitted",
            CaseEvent::StepOpened { .. } => "step_opened",
            CaseEvent::StepSkipped { .. } => "step_skipped",
            CaseEvent::Acted { .. } => "acted",
            CaseEvent::StepDone { .. } => "step_done",
            CaseEvent::Resubmitted { .. } => "resubmitted",
            CaseEvent::Withdrawn { .. } => "withdrawn",
            CaseEvent::Reminded { .. } => "reminded",
            CaseEvent::Escalated { .. } => "escalated",
            CaseEvent::Completed { .. } => "completed",
            CaseEvent::Rejected { .. } => "rejected",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    /// Steps are open; approvers act.
    Open,
    /// Sent back to the submitter for correction.
    Returned,
    Completed,
    Rejected,
    Withdrawn,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Returned => "returned",
            CaseStatus::Completed => "completed",
            CaseStatus::Rejected => "rejected",
            CaseStatus::Withdrawn => "withdrawn",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, CaseStatus::Completed | CaseStatus::Rejected | CaseStatus::Withdrawn)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActRecord {
    pub at: DateTime<Utc>,
    pub step: String,
    pub seat: String,
    pub actor: String,
    pub on_behalf_of: Option<String>,
    pub delegation: Option<String>,
    pub action: Action,
    pub level: Level,
    /// What the approver wrote with the act, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// An act given on an earlier version of the data, before a return for correction.
    pub superseded: bool,
    pub data_version: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeatState {
    pub id: String,
    pub people: Vec<String>,
    pub escalated_to: Vec<String>,
    pub reminded: bool,
    pub act: Option<ActRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Open,
    Done,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepState {
    pub status: StepStatus,
    pub since: DateTime<Utc>,
    pub seats: Vec<SeatState>,
    pub skip_reason: Option<String>,
}

/// The state of a case, folded from its events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    pub id: String,
    pub form: DefinitionRef,
    pub workflow: DefinitionRef,
    pub submitter: String,
    pub subject: String,
    /// The data with every disclosed restricted field open (`committed_data` gives it as signed).
    pub data: Value,
    /// The current data version's disclosures; never serialised with the case.
    #[serde(skip)]
    pub disclosures: Disclosures,
    /// 1 for the first submission, +1 per resubmission.
    pub data_version: u32,
    pub status: CaseStatus,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub steps: BTreeMap<String, StepState>,
    /// Every act, including superseded ones.
    pub acts: Vec<ActRecord>,
    /// Number of events applied: the version an append must name.
    pub version: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WorkflowError {
    #[error("{person} may not submit {form}: it is submitted by {roles} [CARIMBO-E0301]")]
    NotAllowedToSubmit { person: String, form: String, roles: String },
    #[error("{what} needs a {required} signature; the signature given is {got} [CARIMBO-E0302]")]
    SignatureTooWeak { what: String, required: Level, got: Level },
    #[error("the case is {0}: nothing can be done on it now [CARIMBO-E0303]")]
    CaseNotOpen(&'static str),
    #[error("step {0:?} is not open on this case [CARIMBO-E0304]")]
    StepNotOpen(String),
    #[error("step {step:?} allows {allowed}, not {action} [CARIMBO-E0305]")]
    ActionNotAllowed { step: String, action: Action, allowed: String },
    #[error("{person} is not assigned to step {step:?} of this case (or has already acted) [CARIMBO-E0306]")]
    NotAssigned { person: String, step: String },
    #[error("the submitter of a case cannot approve it [CARIMBO-E0307]")]
    SelfApproval,
    #[error("field {field:?} names {value:?}, who is not in the staff directory [CARIMBO-E0308]")]
    UnknownPerson { field: String, value: String },
    #[error("only the submitter ({0}) can do this [CARIMBO-E0309]")]
    NotSubmitter(String),
    #[error("the resubmitted data is the same as before: change what the approver asked for [CARIMBO-E0310]")]
    NoChanges,
    #[error("the case already has a final decision ({0}) and cannot be withdrawn [CARIMBO-E0311]")]
    FinalDecision(&'static str),
    #[error("step {0:?} needs a second factor (TOTP code) for this act [CARIMBO-E0312]")]
    SecondFactorRequired(String),
    #[error("the resubmission is for {got}, but the case is pinned to {expected} [CARIMBO-E0313]")]
    WrongForm { expected: String, got: String },
    #[error("the signature is by {signer}, but the act is by {actor} [CARIMBO-E0314]")]
    SignerMismatch { signer: String, actor: String },
    #[error("the case's events cannot be replayed: {0} [CARIMBO-E0315]")]
    Replay(String),
    #[error("restricted field {0:?} has no salt to commit it with [CARIMBO-E0315]")]
    MissingSalt(String),
    #[error(
        "{person} is {party} of this case and may not act on step {step:?}: a party never decides about a case that concerns them (conflict of interest) [CARIMBO-E0316]"
    )]
    ConflictOfInterest { person: String, step: String, party: Party },
}

/// Why a person is party to a case (`workflow::ConflictOfInterest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Party {
    /// The person the form is about.
    Subject,
    /// Named in a party field of the data (`witnesses.*.staff_id`).
    Field(String),
}

impl std::fmt::Display for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Party::Subject => f.write_str("the subject"),
            Party::Field(field) => write!(f, "a party (named in {field:?})"),
        }
    }
}

/// Every way `person` is party to `case` under `workflow`: the subject, and each party field
/// of the current data that names them.
pub fn parties_of(workflow: &WorkflowDefinition, case: &Case, person: &str) -> Vec<Party> {
    let mut out = Vec::new();
    if case.subject == person {
        out.push(Party::Subject);
    }
    for f in &workflow.conflict_of_interest.parties {
        if lookup_path(&case.data, f).iter().any(|v| v.as_str() == Some(person)) {
            out.push(Party::Field(f.clone()));
        }
    }
    out
}

/// Why `person` may not sit on a seat of `step` offered through `assignee` (`None`: an
/// escalation or a delegation, never a party's own seat), if they may not.
///
/// The rule (`docs/workflow-definitions.md`, "Conflict of interest"): a party of the case
/// never sits on a deciding step (one offering approve, reject or sign), except on the seat
/// that is theirs — whose assignee is the very declaration making them a party
/// (`{"role": "applicant"}` or the subject's field for the subject, a party's field for the
/// people it names) — and only if nothing else makes them a party.
pub fn conflict(workflow: &WorkflowDefinition, case: &Case, step: &StepDefinition, assignee: Option<&Assignee>, person: &str) -> Option<Party> {
    if !step.is_deciding() {
        return None;
    }
    let own = assignee.and_then(|a| workflow.own_seat_of(a));
    parties_of(workflow, case, person).into_iter().find(|party| match (party, own) {
        (Party::Subject, Some(None)) => false,
        (Party::Field(f), Some(Some(g))) => f != g,
        _ => true,
    })
}

impl WorkflowError {
    /// The stable code (docs/errors.md), as typed data: callers never search the message for it.
    pub fn code(&self) -> &'static str {
        match self {
            WorkflowError::NotAllowedToSubmit { .. } => "CARIMBO-E0301",
            WorkflowError::SignatureTooWeak { .. } => "CARIMBO-E0302",
            WorkflowError::CaseNotOpen(_) => "CARIMBO-E0303",
            WorkflowError::StepNotOpen(_) => "CARIMBO-E0304",
            WorkflowError::ActionNotAllowed { .. } => "CARIMBO-E0305",
            WorkflowError::NotAssigned { .. } => "CARIMBO-E0306",
            WorkflowError::SelfApproval => "CARIMBO-E0307",
            WorkflowError::UnknownPerson { .. } => "CARIMBO-E0308",
            WorkflowError::NotSubmitter(_) => "CARIMBO-E0309",
            WorkflowError::NoChanges => "CARIMBO-E0310",
            WorkflowError::FinalDecision(_) => "CARIMBO-E0311",
            WorkflowError::SecondFactorRequired(_) => "CARIMBO-E0312",
            WorkflowError::WrongForm { .. } => "CARIMBO-E0313",
            WorkflowError::SignerMismatch { .. } => "CARIMBO-E0314",
            WorkflowError::Replay(_) | WorkflowError::MissingSalt(_) => "CARIMBO-E0315",
            WorkflowError::ConflictOfInterest { .. } => "CARIMBO-E0316",
        }
    }

    /// The HTTP status a client gets for it: 4xx for the caller's mistakes, 500 only for a
    /// record that cannot be replayed.
    pub fn status(&self) -> u16 {
        match self {
            WorkflowError::NotAllowedToSubmit { .. }
            | WorkflowError::NotAssigned { .. }
            | WorkflowError::SelfApproval
            | WorkflowError::ConflictOfInterest { .. }
            | WorkflowError::NotSubmitter(_) => 403,
            WorkflowError::CaseNotOpen(_) | WorkflowError::StepNotOpen(_) | WorkflowError::FinalDecision(_) => 409,
            WorkflowError::SignatureTooWeak { .. }
            | WorkflowError::ActionNotAllowed { .. }
            | WorkflowError::UnknownPerson { .. }
            | WorkflowError::NoChanges
            | WorkflowError::SecondFactorRequired(_)
            | WorkflowError::WrongForm { .. }
            | WorkflowError::SignerMismatch { .. } => 422,
            WorkflowError::Replay(_) | WorkflowError::MissingSalt(_) => 500,
        }
    }
}

impl Case {
    /// Folds events into the state; the first event must be `Submitted`.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a CaseEvent>) -> Result<Case, WorkflowError> {
        let mut it = events.into_iter();
        let Some(CaseEvent::Submitted { case_id, at, form, workflow, submitter, subject, data, disclosures, .. }) = it.next() else {
            return Err(WorkflowError::Replay("the first event is not a submission".into()));
        };
        let data = commitment::reveal(data, disclosures).map_err(|e| WorkflowError::Replay(e.to_string()))?;
        let mut case = Case {
            id: case_id.clone(),
            form: form.clone(),
            workflow: workflow.clone(),
            submitter: submitter.clone(),
            subject: subject.clone(),
            data,
            disclosures: disclosures.clone(),
            data_version: 1,
            status: CaseStatus::Open,
            opened_at: *at,
            updated_at: *at,
            steps: BTreeMap::new(),
            acts: Vec::new(),
            version: 1,
        };
        for e in it {
            case.apply(e)?;
        }
        Ok(case)
    }

    pub fn apply(&mut self, e: &CaseEvent) -> Result<(), WorkflowError> {
        self.version += 1;
        self.updated_at = e.at();
        match e {
            CaseEvent::Submitted { .. } => return Err(WorkflowError::Replay("a second submission event".into())),
            CaseEvent::StepOpened { at, step, seats } => {
                let seats =
                    seats.iter().map(|s| SeatState { id: s.id.clone(), people: s.people.clone(), escalated_to: vec![], reminded: false, act: None }).collect();
                self.steps.insert(step.clone(), StepState { status: StepStatus::Open, since: *at, seats, skip_reason: None });
            }
            CaseEvent::StepSkipped { at, step, reason } => {
                self.steps.insert(step.clone(), StepState { status: StepStatus::Skipped, since: *at, seats: vec![], skip_reason: Some(reason.clone()) });
            }
            CaseEvent::Acted { at, step, seat, actor, on_behalf_of, delegation, action, signature, comment } => {
                let record = ActRecord {
                    at: *at,
                    step: step.clone(),
                    seat: seat.clone(),
                    actor: actor.clone(),
                    on_behalf_of: on_behalf_of.clone(),
                    delegation: delegation.clone(),
                    action: *action,
                    level: signature.level,
                    comment: comment.clone(),
                    superseded: false,
                    data_version: self.data_version,
                };
                let s = self
                    .steps
                    .get_mut(step)
                    .and_then(|st| st.seats.iter_mut().find(|x| &x.id == seat))
                    .ok_or_else(|| WorkflowError::Replay(format!("an act on unknown seat {step}/{seat}")))?;
                s.act = Some(record.clone());
                self.acts.push(record);
                if *action == Action::Return {
                    self.status = CaseStatus::Returned;
                }
            }
            CaseEvent::StepDone { at, step } => {
                let st = self.steps.get_mut(step).ok_or_else(|| WorkflowError::Replay(format!("step {step} done before it opened")))?;
                st.status = StepStatus::Done;
                st.since = *at;
            }
            CaseEvent::Resubmitted { data, disclosures, .. } => {
                self.data = commitment::reveal(data, disclosures).map_err(|e| WorkflowError::Replay(e.to_string()))?;
                self.disclosures = disclosures.clone();
                self.data_version += 1;
                for a in &mut self.acts {
                    a.superseded = true;
                }
                self.steps.clear();
                self.status = CaseStatus::Open;
            }
            CaseEvent::Withdrawn { .. } => self.status = CaseStatus::Withdrawn,
            CaseEvent::Reminded { step, seat, .. } => {
                if let Some(s) = self.seat_mut(step, seat) {
                    s.reminded = true;
                }
            }
            CaseEvent::Escalated { step, seat, added, .. } => {
                if let Some(s) = self.seat_mut(step, seat) {
                    s.escalated_to.extend(added.iter().cloned());
                }
            }
            CaseEvent::Completed { .. } => self.status = CaseStatus::Completed,
            CaseEvent::Rejected { .. } => self.status = CaseStatus::Rejected,
        }
        Ok(())
    }

    /// The current data as signed: each disclosed restricted field back to its commitment.
    /// Signing payloads hash this (`signing::data_hash`), never the open values.
    pub fn committed_data(&self) -> Value {
        commitment::recommit(&self.data, &self.disclosures)
    }

    fn seat_mut(&mut self, step: &str, seat: &str) -> Option<&mut SeatState> {
        self.steps.get_mut(step)?.seats.iter_mut().find(|s| s.id == seat)
    }

    /// Steps currently open, with the seats still waiting.
    pub fn open_steps(&self) -> impl Iterator<Item = (&String, &StepState)> {
        self.steps.iter().filter(|(_, s)| s.status == StepStatus::Open)
    }
}

/// One open seat offered to one person (the assignee, an escalation target or a delegate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assignment {
    pub person: String,
    pub step: String,
    pub seat: String,
    pub since: DateTime<Utc>,
    pub on_behalf_of: Option<String>,
    pub delegation: Option<String>,
}

/// A request to act on a step.
#[derive(Debug, Clone)]
pub struct ActRequest {
    pub actor: String,
    pub step: String,
    pub action: Action,
    pub comment: Option<String>,
    pub signature: SignatureRecord,
    pub now: DateTime<Utc>,
}

/// Everything a decision reads besides the case: the workflow, the directory, and the settings
/// of the form version the case is pinned to (which conditions read as `settings.*`).
pub struct Engine<'a> {
    pub workflow: &'a WorkflowDefinition,
    pub directory: &'a Directory,
    pub settings: Option<&'a Map<String, Value>>,
}

impl<'a> Engine<'a> {
    pub fn new(workflow: &'a WorkflowDefinition, directory: &'a Directory) -> Self {
        Engine { workflow, directory, settings: None }
    }

    /// The form's `settings`, for conditions such as `{"var": "settings.head_threshold_hours"}`.
    pub fn with_settings(mut self, settings: &'a Map<String, Value>) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Opens a case from a validated submission: `Submitted` plus the first steps' events.
    pub fn open_case(
        &self,
        case_id: &str,
        submission: &ValidSubmission,
        submitter: &str,
        signature: SignatureRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<CaseEvent>, WorkflowError> {
        let wf = self.workflow;
        if !wf.submitted_by.iter().any(|r| self.directory.has_role(submitter, r)) {
            return Err(WorkflowError::NotAllowedToSubmit { person: submitter.into(), form: wf.form.clone(), roles: wf.submitted_by.join(", ") });
        }
        check_signature(&signature, submitter, wf.submit_signature, "submitting this form")?;
        let subject = match &wf.subject {
            None => submitter.to_string(),
            Some(field) => {
                let value = lookup_path(&submission.data, field).into_iter().next().and_then(|v| v.as_str().map(str::to_string));
                match value {
                    Some(v) if self.directory.person(&v).is_some() => v,
                    Some(v) => return Err(WorkflowError::UnknownPerson { field: field.clone(), value: v }),
                    None => submitter.to_string(),
                }
            }
        };
        self.check_field_people(&submission.data)?;
        let (data, disclosures) = committed(submission)?;
        let first = CaseEvent::Submitted {
            case_id: case_id.into(),
            at: now,
            form: DefinitionRef { id: submission.form_id.clone(), version: submission.form_version.clone(), hash: submission.form_hash.clone() },
            workflow: DefinitionRef { id: wf.id.clone(), version: wf.version.clone(), hash: wf.content_hash.clone() },
            submitter: submitter.into(),
            subject,
            data,
            signature,
            disclosures,
            reference: submission.reference.clone(),
        };
        let mut case = Case::replay([&first])?;
        let mut events = vec![first];
        events.extend(self.advance(&mut case, now)?);
        Ok(events)
    }

    /// Every person named in a field assignee must be in the directory, so a case never opens
    /// with a step nobody can take.
    fn check_field_people(&self, data: &Value) -> Result<(), WorkflowError> {
        for step in &self.workflow.steps {
            let assignees: Vec<&Assignee> = match &step.seats {
                Seats::Single(a) => vec![a],
                Seats::Members(ms) => ms.iter().map(|m| &m.assignee).collect(),
            };
            for a in assignees {
                if let Assignee::Field(f) = a {
                    for v in lookup_path(data, f) {
                        if let Some(id) = v.as_str()
                            && self.directory.person(id).is_none()
                        {
                            return Err(WorkflowError::UnknownPerson { field: f.clone(), value: id.into() });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Opens or skips every step whose predecessors are settled, repeatedly, and completes the
    /// case when nothing is left. Applies the events to `case` as it goes.
    fn advance(&self, case: &mut Case, now: DateTime<Utc>) -> Result<Vec<CaseEvent>, WorkflowError> {
        let mut out = Vec::new();
        loop {
            let mut progressed = false;
            for step in &self.workflow.steps {
                if case.steps.contains_key(&step.id) {
                    continue;
                }
                if !super::replay::after_settled(step, case) {
                    continue;
                }
                let event = if !self.condition_holds(step, case, now) {
                    CaseEvent::StepSkipped { at: now, step: step.id.clone(), reason: "condition not met".into() }
                } else {
                    let seats = self.seats_for(step, case);
                    if seats.is_empty() {
                        CaseEvent::StepSkipped { at: now, step: step.id.clone(), reason: "nobody to assign".into() }
                    } else {
                        CaseEvent::StepOpened { at: now, step: step.id.clone(), seats }
                    }
                };
                case.apply(&event)?;
                out.push(event);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        if super::replay::all_settled(self.workflow, case) && case.status == CaseStatus::Open {
            let e = CaseEvent::Completed { at: now };
            case.apply(&e)?;
            out.push(e);
        }
        Ok(out)
    }

    fn condition_holds(&self, step: &StepDefinition, case: &Case, now: DateTime<Utc>) -> bool {
        let Some(logic) = &step.when else { return true };
        let mut data = match &case.data {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        let mut ctx = Map::new();
        ctx.insert("today".into(), Value::from(now.date_naive().format("%Y-%m-%d").to_string()));
        ctx.insert("applicant".into(), Value::Object(self.directory.applicant_facts(&case.subject).unwrap_or_default()));
        ctx.insert("department".into(), Value::Object(self.directory.department_settings(&case.subject)));
        data.insert("context".into(), Value::Object(ctx));
        data.insert("settings".into(), Value::Object(self.settings.cloned().unwrap_or_default()));
        let value = Value::Object(data);
        let arena = Bump::new();
        let input: &DataValue = arena.alloc(DataValue::from_serde_value_in(&value, &arena));
        let engine = logic::engine();
        // A condition that cannot be evaluated routes the case through the step: asking one
        // approver too many is safer than silently skipping one.
        engine.evaluate(logic, input, &arena).map(|v| engine.truthy(v)).unwrap_or(true)
    }

    /// Resolves an assignee to seats (each a list of people).
    fn resolve(&self, a: &Assignee, case: &Case) -> Vec<(String, Vec<String>)> {
        let one = |id: &str, p: Option<&str>| p.map(|p| vec![(id.to_string(), vec![p.to_string()])]).unwrap_or_default();
        match a {
            Assignee::Applicant => one("applicant", Some(&case.subject)),
            Assignee::Supervisor => one("supervisor", self.directory.supervisor_of(&case.subject)),
            Assignee::Head => one("head", self.directory.head_of(&case.subject)),
            Assignee::Group(g) => match self.directory.group(g) {
                Some(group) if !group.members.is_empty() => vec![(g.clone(), group.members.clone())],
                _ => vec![],
            },
            Assignee::Field(f) => lookup_path(&case.data, f)
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .filter(|id| self.directory.person(id).is_some())
                .map(|id| (id.clone(), vec![id]))
                .collect(),
        }
    }

    fn seats_for(&self, step: &StepDefinition, case: &Case) -> Vec<Seat> {
        let raw: Vec<(String, &Assignee, Vec<String>)> = match &step.seats {
            Seats::Single(a) => self.resolve(a, case).into_iter().map(|(id, people)| (id, a, people)).collect(),
            Seats::Members(ms) => ms
                .iter()
                .filter_map(|m| {
                    let people: Vec<String> = self.resolve(&m.assignee, case).into_iter().flat_map(|(_, p)| p).collect();
                    (!people.is_empty()).then(|| (m.id.clone(), &m.assignee, people))
                })
                .collect(),
        };
        let mut seats = Vec::new();
        for (id, assignee, people) in raw {
            // The submitter never approves their own case, and a party never decides about a
            // case that concerns them (except on their own seat).
            let mut kept_off: Option<String> = None;
            let mut people: Vec<String> = people
                .into_iter()
                .filter(|p| p != &case.submitter)
                .filter(|p| {
                    let conflicted = conflict(self.workflow, case, step, Some(assignee), p).is_some();
                    if conflicted && kept_off.is_none() {
                        kept_off = Some(p.clone());
                    }
                    !conflicted
                })
                .collect();
            if people.is_empty() {
                let (policy, from) = match &kept_off {
                    // A party's own seat (a witness's signature on their statement) is theirs
                    // alone: kept off it for another reason, nobody else gives it for them.
                    Some(_) if self.workflow.own_seat_of(assignee).is_some() => (SelfApproval::Skip, ""),
                    Some(party) => (self.workflow.conflict_of_interest.on_conflict, party.as_str()),
                    None => (self.workflow.self_approval, case.submitter.as_str()),
                };
                match policy {
                    SelfApproval::Skip => continue,
                    SelfApproval::Reassign => match self.up_from(case, step, from) {
                        Some(p) => people.push(p),
                        None => continue,
                    },
                }
            }
            people.dedup();
            seats.push(Seat { id, people });
        }
        seats
    }

    /// The first person up `from`'s supervisor tree who is neither the submitter nor a party
    /// kept off `step`: who a reassigned seat goes to.
    fn up_from(&self, case: &Case, step: &StepDefinition, from: &str) -> Option<String> {
        let mut at = from.to_string();
        // The directory refuses cycles; the bound only keeps a damaged one from looping.
        for _ in 0..64 {
            let up = self.directory.supervisor_of(&at).or_else(|| self.directory.head_of(&at))?.to_string();
            if up != case.submitter && conflict(self.workflow, case, step, None, &up).is_none() {
                return Some(up);
            }
            if up == at {
                return None;
            }
            at = up;
        }
        None
    }

    /// An approver (or delegate) acts on an open step.
    pub fn act(&self, case: &Case, req: ActRequest) -> Result<Vec<CaseEvent>, WorkflowError> {
        if case.status != CaseStatus::Open {
            return Err(WorkflowError::CaseNotOpen(case.status.as_str()));
        }
        let def = self.workflow.step(&req.step).ok_or_else(|| WorkflowError::StepNotOpen(req.step.clone()))?;
        let state = case.steps.get(&req.step).filter(|s| s.status == StepStatus::Open).ok_or_else(|| WorkflowError::StepNotOpen(req.step.clone()))?;
        if !def.actions.contains(&req.action) {
            let allowed: Vec<&str> = def.actions.iter().map(|a| a.as_str()).collect();
            return Err(WorkflowError::ActionNotAllowed { step: req.step.clone(), action: req.action, allowed: allowed.join(", ") });
        }
        if req.actor == case.submitter {
            return Err(WorkflowError::SelfApproval);
        }
        let taken = self.seat_for(case, state, &req.actor, req.now);
        // Checked against the seat the actor would take, so a party keeps their own seat; and
        // before anything else about the seat, so a party on an older record's seat (recorded
        // before the rule, or before the data named them) is refused for what it is.
        let own_assignee = match &taken {
            Some((seat, None, None)) if state.seats.iter().any(|s| &s.id == seat && s.people.contains(&req.actor)) => def.assignee_of_seat(seat),
            _ => None,
        };
        if let Some(party) = conflict(self.workflow, case, def, own_assignee, &req.actor) {
            return Err(WorkflowError::ConflictOfInterest { person: req.actor.clone(), step: req.step.clone(), party });
        }
        let (seat, on_behalf_of, delegation) = taken.ok_or_else(|| WorkflowError::NotAssigned { person: req.actor.clone(), step: req.step.clone() })?;
        check_signature(&req.signature, &req.actor, def.signature, &format!("step {:?}", def.id))?;
        if def.second_factor && !req.signature.second_factor {
            return Err(WorkflowError::SecondFactorRequired(def.id.clone()));
        }
        let mut case = case.clone();
        let acted = CaseEvent::Acted {
            at: req.now,
            step: req.step.clone(),
            seat,
            actor: req.actor.clone(),
            on_behalf_of,
            delegation,
            action: req.action,
            comment: req.comment.clone(),
            signature: req.signature.clone(),
        };
        case.apply(&acted)?;
        let mut events = vec![acted];
        // What follows the act at once is the one rule the evidence verifier checks too.
        match super::replay::follow_up(def, &case, req.action, &req.actor) {
            Some(super::replay::FollowUp::Rejected { by, step }) => {
                let e = CaseEvent::Rejected { at: req.now, by, step };
                case.apply(&e)?;
                events.push(e);
            }
            Some(super::replay::FollowUp::StepDone { step }) => {
                let e = CaseEvent::StepDone { at: req.now, step };
                case.apply(&e)?;
                events.push(e);
                events.extend(self.advance(&mut case, req.now)?);
            }
            None => {}
        }
        Ok(events)
    }

    /// The first waiting seat the person may take, directly, by escalation or under a delegation.
    fn seat_for(&self, case: &Case, state: &StepState, person: &str, now: DateTime<Utc>) -> Option<(String, Option<String>, Option<String>)> {
        let waiting = || state.seats.iter().filter(|s| s.act.is_none());
        if let Some(s) = waiting().find(|s| s.people.iter().chain(s.escalated_to.iter()).any(|p| p == person)) {
            return Some((s.id.clone(), None, None));
        }
        let day = now.date_naive();
        for s in waiting() {
            for principal in s.people.iter().chain(s.escalated_to.iter()) {
                if let Some(d) = self.directory.delegates_for(principal, &case.form.id, day).find(|d| d.delegate == person) {
                    return Some((s.id.clone(), Some(principal.clone()), Some(d.id.clone())));
                }
            }
        }
        None
    }

    /// The submitter sends a corrected version after a return.
    pub fn resubmit(
        &self,
        case: &Case,
        by: &str,
        submission: &ValidSubmission,
        signature: SignatureRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<CaseEvent>, WorkflowError> {
        if by != case.submitter {
            return Err(WorkflowError::NotSubmitter(case.submitter.clone()));
        }
        if case.status != CaseStatus::Returned {
            return Err(WorkflowError::CaseNotOpen(case.status.as_str()));
        }
        if submission.form_hash != case.form.hash {
            return Err(WorkflowError::WrongForm {
                expected: format!("{} {}", case.form.id, case.form.version),
                got: format!("{} {}", submission.form_id, submission.form_version),
            });
        }
        check_signature(&signature, by, self.workflow.submit_signature, "resubmitting this form")?;
        self.check_field_people(&submission.data)?;
        // Compared as signed: a restricted field is one commitment, the same while its value
        // is (its salt does not change between versions), so the record of what changed says
        // that it changed and nothing of the values; the evidence verifier compares the same way.
        let (data, disclosures) = committed(submission)?;
        let mut changes = Vec::new();
        diff("", &case.committed_data(), &data, &mut changes);
        if changes.is_empty() {
            return Err(WorkflowError::NoChanges);
        }
        let mut case = case.clone();
        let e = CaseEvent::Resubmitted { at: now, by: by.into(), data, changes, signature, disclosures };
        case.apply(&e)?;
        let mut events = vec![e];
        events.extend(self.advance(&mut case, now)?);
        Ok(events)
    }

    /// The submitter withdraws while no final decision exists.
    pub fn withdraw(&self, case: &Case, by: &str, reason: Option<String>, now: DateTime<Utc>) -> Result<Vec<CaseEvent>, WorkflowError> {
        if by != case.submitter {
            return Err(WorkflowError::NotSubmitter(case.submitter.clone()));
        }
        if case.status.is_final() {
            return Err(WorkflowError::FinalDecision(case.status.as_str()));
        }
        Ok(vec![CaseEvent::Withdrawn { at: now, by: by.into(), reason }])
    }

    /// Reminders and escalations due at `now` (call periodically; idempotent at a given time).
    pub fn tick(&self, case: &Case, now: DateTime<Utc>) -> Vec<CaseEvent> {
        let mut out = Vec::new();
        if case.status != CaseStatus::Open {
            return out;
        }
        for (id, state) in case.open_steps() {
            let Some(def) = self.workflow.step(id) else { continue };
            let Some(deadline) = def.deadline.as_ref() else { continue };
            // Counted in calendar or working days as the workflow says (`Deadline::due`); the
            // calendar is part of the pinned workflow, so a tick is a function of its inputs.
            let (remind_at, due) = (deadline.remind_at(state.since), deadline.due(state.since));
            for seat in state.seats.iter().filter(|s| s.act.is_none()) {
                // A deadline without an escalation target still reminds, at the deadline at the latest.
                if let Some(r) = remind_at
                    && !seat.reminded
                    && now >= r
                {
                    out.push(CaseEvent::Reminded { at: now, step: id.clone(), seat: seat.id.clone(), people: seat.people.clone() });
                }
                let Some(target) = &deadline.escalate_to else { continue };
                if seat.escalated_to.is_empty() && now >= due {
                    let added: Vec<String> = self
                        .resolve(target, case)
                        .into_iter()
                        .flat_map(|(_, p)| p)
                        .filter(|p| p != &case.submitter && !seat.people.contains(p) && conflict(self.workflow, case, def, None, p).is_none())
                        .collect();
                    if !added.is_empty() {
                        out.push(CaseEvent::Escalated { at: now, step: id.clone(), seat: seat.id.clone(), added });
                    }
                }
            }
        }
        out
    }

    /// Whether `person` may act on the open step `step` now; if not, why: a party kept off
    /// the step by the conflict-of-interest rule is told so, anyone else is not assigned.
    pub fn may_act(&self, case: &Case, step: &str, person: &str, now: DateTime<Utc>) -> Result<(), WorkflowError> {
        if self.assignments(case, now).iter().any(|a| a.step == step && a.person == person) {
            return Ok(());
        }
        if person != case.submitter
            && let (Some(def), Some(state)) = (self.workflow.step(step), case.steps.get(step))
        {
            // A party who had an own seat there (and took it) is simply not assigned any more.
            let own_seat = state
                .seats
                .iter()
                .any(|s| s.people.iter().any(|p| p == person) && conflict(self.workflow, case, def, def.assignee_of_seat(&s.id), person).is_none());
            if !own_seat && let Some(party) = conflict(self.workflow, case, def, None, person) {
                return Err(WorkflowError::ConflictOfInterest { person: person.into(), step: step.into(), party });
            }
        }
        Err(WorkflowError::NotAssigned { person: person.into(), step: step.into() })
    }

    /// Who may act now on which open seat: assignees, escalation targets and their delegates.
    pub fn assignments(&self, case: &Case, now: DateTime<Utc>) -> Vec<Assignment> {
        let mut out = Vec::new();
        if case.status != CaseStatus::Open {
            return out;
        }
        let day = now.date_naive();
        for (step, state) in case.open_steps() {
            let def = self.workflow.step(step);
            // A party is offered no seat they may not take (an older record may still name them).
            let kept_off = |assignee: Option<&Assignee>, p: &str| def.is_some_and(|d| conflict(self.workflow, case, d, assignee, p).is_some());
            for seat in state.seats.iter().filter(|s| s.act.is_none()) {
                let assignee = def.and_then(|d| d.assignee_of_seat(&seat.id));
                let direct = seat.people.iter().map(|p| (p, assignee));
                let escalated = seat.escalated_to.iter().map(|p| (p, None));
                for (p, via) in direct.chain(escalated) {
                    if !kept_off(via, p) {
                        out.push(Assignment {
                            person: p.clone(),
                            step: step.clone(),
                            seat: seat.id.clone(),
                            since: state.since,
                            on_behalf_of: None,
                            delegation: None,
                        });
                    }
                    for d in self.directory.delegates_for(p, &case.form.id, day) {
                        if d.delegate != case.submitter && !kept_off(None, &d.delegate) {
                            out.push(Assignment {
                                person: d.delegate.clone(),
                                step: step.clone(),
                                seat: seat.id.clone(),
                                since: state.since,
                                on_behalf_of: Some(p.clone()),
                                delegation: Some(d.id.clone()),
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

fn check_signature(sig: &SignatureRecord, actor: &str, required: Level, what: &str) -> Result<(), WorkflowError> {
    if sig.signer != actor {
        return Err(WorkflowError::SignerMismatch { signer: sig.signer.clone(), actor: actor.into() });
    }
    if sig.level < required {
        return Err(WorkflowError::SignatureTooWeak { what: what.into(), required, got: sig.level });
    }
    Ok(())
}

/// Whether a step's acts meet its `complete_when` rule (also used by the offline evidence verifier).
pub fn step_complete(rule: CompleteWhen, state: &StepState) -> bool {
    let positive = state.seats.iter().filter(|s| s.act.as_ref().is_some_and(|a| a.action.is_positive())).count();
    let seats = state.seats.len();
    match rule {
        CompleteWhen::All => positive == seats,
        CompleteWhen::Any => positive >= 1,
        // A quorum larger than the seats the data produced (e.g. fewer witnesses) needs them all.
        CompleteWhen::Quorum(n) => positive >= (n as usize).min(seats),
    }
}

/// Values at a field path (`a.b`, `list.*.id`) of the data.
pub fn lookup_path<'v>(data: &'v Value, path: &str) -> Vec<&'v Value> {
    let mut current = vec![data];
    for seg in path.split('.') {
        let mut next = Vec::new();
        for v in current {
            if seg == "*" {
                if let Value::Array(a) = v {
                    next.extend(a.iter());
                }
            } else if let Some(x) = v.get(seg) {
                next.push(x);
            }
        }
        current = next;
    }
    current.into_iter().filter(|v| !v.is_null()).collect()
}

/// The submission's data as recorded, every restricted field present committed with its salt.
fn committed(submission: &ValidSubmission) -> Result<(Value, Disclosures), WorkflowError> {
    if let Some(f) = submission.restricted_present().find(|f| !submission.salts.get(*f).is_some_and(|s| commitment::salt_is_well_formed(s))) {
        return Err(WorkflowError::MissingSalt(f.to_string()));
    }
    Ok(submission.committed())
}

/// JSON-pointer changes from `a` to `b`; objects are compared key by key, anything else (and
/// a restricted field's commitment) whole.
pub fn diff(pointer: &str, a: &Value, b: &Value, out: &mut Vec<Change>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) if commitment::commitment_digest(a).is_none() && commitment::commitment_digest(b).is_none() => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = crate::forms::pointer_push(pointer, k);
                diff(&p, x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), out);
            }
        }
        _ if a != b => out.push(Change { pointer: pointer.to_string(), before: a.clone(), after: b.clone() }),
        _ => {}
    }
}
