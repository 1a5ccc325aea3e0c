//! Checking recorded events against the workflow: the engine's own route rules, applied to a
//! record someone else wrote (an evidence bundle, years later).
//!
//! `Engine` decides what happens next from the case, the workflow and the directory; a
//! verifier has the case's events and the workflow but not the directory of the time. So this
//! walks the events through the same rules — a step opens once every step in its `after` is
//! settled (`after_settled`), the engine opens every step that can open before anything else
//! happens (`first_openable`), completes a case whose steps are all settled (`all_settled`), an
//! act needs an open step that offers its action and a seat that is the actor's
//! (`seat_of_recorded_act`), a rejection or a completing act is followed at once by the event
//! `Engine::act` appends after it (`follow_up`), a resubmission needs a returned case and its
//! recorded `changes` are `diff` of the two versions — and takes as recorded only what needs the
//! directory: who sits on each seat, skipped conditions, delegations and escalation targets.
//! One authority for route rules: `Engine` calls these same functions.

use super::Level;
use super::definition::{Action, StepDefinition, WorkflowDefinition};
use super::engine::{Case, CaseEvent, CaseStatus, Party, StepStatus, conflict, diff, step_complete};
use std::collections::BTreeSet;

/// Whether every step `step` comes after is settled (done or skipped) in `case`.
pub fn after_settled(step: &StepDefinition, case: &Case) -> bool {
    step.after.iter().all(|a| case.steps.get(a).is_some_and(|s| s.status != StepStatus::Open))
}

/// The first step not yet opened or skipped whose `after` steps are all settled: the engine
/// opens (or skips) it before anything else happens on the case.
pub fn first_openable<'w>(workflow: &'w WorkflowDefinition, case: &Case) -> Option<&'w StepDefinition> {
    workflow.steps.iter().find(|s| !case.steps.contains_key(&s.id) && after_settled(s, case))
}

/// Whether every step of the workflow is settled: the engine then completes the case.
pub fn all_settled(workflow: &WorkflowDefinition, case: &Case) -> bool {
    workflow.steps.iter().all(|s| case.steps.get(&s.id).is_some_and(|st| st.status != StepStatus::Open))
}

/// The event that must follow an act at once, as `Engine::act` appends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// A rejection ends the case: `Rejected { by, step }`.
    Rejected { by: String, step: String },
    /// An approving act that meets `complete_when`: `StepDone { step }`.
    StepDone { step: String },
}

/// What must follow `action` by `actor` on `def`, given the case after the act was applied.
pub fn follow_up(def: &StepDefinition, after: &Case, action: Action, actor: &str) -> Option<FollowUp> {
    match action {
        Action::Reject => Some(FollowUp::Rejected { by: actor.to_string(), step: def.id.clone() }),
        Action::Return => None,
        Action::Sign | Action::Approve => {
            after.steps.get(&def.id).filter(|st| step_complete(def.complete_when, st)).map(|_| FollowUp::StepDone { step: def.id.clone() })
        }
    }
}

/// A place in a recorded event (relative to the event: `""`, `/body/step`…) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteViolation {
    pub field: String,
    pub message: String,
}

fn violation(field: &str, message: String) -> RouteViolation {
    RouteViolation { field: field.to_string(), message }
}

/// What a signed event's signature must achieve, by the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    pub required: Level,
    pub second_factor: bool,
}

/// A recorded case walked through its workflow, event by event.
pub struct RouteCheck<'w> {
    workflow: &'w WorkflowDefinition,
    case: Option<Case>,
    owed: Option<(FollowUp, u64)>,
    /// The rejection just matched, so the `Rejected` event is owed and allowed.
    rejection_due: bool,
}

impl<'w> RouteCheck<'w> {
    pub fn new(workflow: &'w WorkflowDefinition) -> RouteCheck<'w> {
        RouteCheck { workflow, case: None, owed: None, rejection_due: false }
    }

    /// The case as the events so far replay.
    pub fn case(&self) -> Option<&Case> {
        self.case.as_ref()
    }

    /// The first half of an event's check, before its signature is verified: what is owed from
    /// the previous event, and the rules that say whether this event may come at all. For a
    /// signed event, what its signature must achieve.
    pub fn before_signature(&mut self, event: &CaseEvent) -> Result<Option<Demand>, RouteViolation> {
        self.rejection_due = false;
        if let Some((owed, at)) = self.owed.take() {
            match (&owed, event) {
                (FollowUp::Rejected { by, step }, CaseEvent::Rejected { by: b, step: s, .. }) if b == by && s == step => self.rejection_due = true,
                (FollowUp::StepDone { step }, CaseEvent::StepDone { step: s, .. }) if s == step => {}
                (FollowUp::Rejected { by, step }, _) => {
                    return Err(violation(
                        "",
                        format!("the rejection by {by} on step {step:?} at event {at} must be followed by the case's rejection, not {}", event.type_name()),
                    ));
                }
                (FollowUp::StepDone { step }, _) => {
                    return Err(violation(
                        "",
                        format!("the act at event {at} completed step {step:?}, so the step must be recorded done next, not {}", event.type_name()),
                    ));
                }
            }
        }
        let wf = self.workflow;
        let Some(case) = &self.case else {
            return match event {
                CaseEvent::Submitted { .. } => Ok(Some(Demand { required: wf.submit_signature, second_factor: false })),
                _ => Err(violation("/body/type", format!("the first event is {}, not a submission", event.type_name()))),
            };
        };
        if case.status.is_final() {
            return Err(violation("", format!("a {} event after the case was {}", event.type_name(), case.status.as_str())));
        }
        match event {
            CaseEvent::Acted { step, .. } => {
                self.settled(case)?;
                if case.status != CaseStatus::Open {
                    return Err(violation("", format!("an act while the case is {}", case.status.as_str())));
                }
                let def = self.open_step(case, step)?;
                Ok(Some(Demand { required: def.signature, second_factor: def.second_factor }))
            }
            CaseEvent::Resubmitted { by, .. } => {
                if case.status != CaseStatus::Returned {
                    return Err(violation("", format!("a resubmission while the case is {} (it must have been returned)", case.status.as_str())));
                }
                if by != &case.submitter {
                    return Err(violation("/body/by", format!("{by} resubmitted, but only the submitter {} can", case.submitter)));
                }
                Ok(Some(Demand { required: wf.submit_signature, second_factor: false }))
            }
            _ => Ok(None),
        }
    }

    /// The rest of the event's check (after its signature verified), then the event applied.
    /// Returns the route line that describes it.
    pub fn after_signature(&mut self, seq: u64, event: &CaseEvent) -> Result<String, RouteViolation> {
        let Some(case) = self.case.clone() else {
            let case = Case::replay([event]).map_err(|e| violation("/body", e.to_string()))?;
            let line = format!("{seq:>3} submitted by {} (subject {})", case.submitter, case.subject);
            self.case = Some(case);
            return Ok(line);
        };
        let line = self.rules(seq, &case, event)?;
        let mut case = case;
        case.apply(event).map_err(|e| violation("/body", e.to_string()))?;
        if let CaseEvent::Acted { step, actor, action, .. } = event
            && let Some(def) = self.workflow.step(step)
        {
            self.owed = follow_up(def, &case, *action, actor).map(|f| (f, seq));
        }
        self.case = Some(case);
        Ok(format!("{seq:>3} {line}"))
    }

    /// After the last event: nothing owed, nothing left to open, the case completed if done.
    pub fn finish(&self) -> Result<&Case, RouteViolation> {
        if let Some((owed, _)) = &self.owed {
            let what = match owed {
                FollowUp::Rejected { step, .. } => format!("the rejection on step {step:?} is not followed by the case's rejection"),
                FollowUp::StepDone { step } => format!("step {step:?} was completed but is never recorded done"),
            };
            return Err(violation("", format!("the events end too early: {what}")));
        }
        let case = self.case.as_ref().ok_or_else(|| violation("", "the events hold no submission".into()))?;
        self.settled(case).map_err(|v| violation("", format!("the events end too early: {}", v.message)))?;
        Ok(case)
    }

    fn open_step(&self, case: &Case, step: &str) -> Result<&'w StepDefinition, RouteViolation> {
        let def = self.workflow.step(step).ok_or_else(|| violation("/body/step", format!("the workflow has no step {step:?}")))?;
        if case.steps.get(step).is_none_or(|s| s.status != StepStatus::Open) {
            return Err(violation("/body/step", format!("step {step:?} is not open at this point")));
        }
        Ok(def)
    }

    /// Before a decision, the engine has opened every step that could open and completed the
    /// case if nothing was left.
    fn settled(&self, case: &Case) -> Result<(), RouteViolation> {
        if case.status != CaseStatus::Open {
            return Ok(());
        }
        if let Some(s) = first_openable(self.workflow, case) {
            return Err(violation("", format!("step {:?} should have been opened or skipped before this event", s.id)));
        }
        if all_settled(self.workflow, case) {
            return Err(violation("", "every step is settled, so the case should have been completed before this event".into()));
        }
        Ok(())
    }

    /// A step may open (or be skipped) only once, and only when every step before it is settled.
    fn openable(&self, case: &Case, step: &str) -> Result<(), RouteViolation> {
        if case.status != CaseStatus::Open {
            return Err(violation("", format!("step {step:?} opened while the case is {}", case.status.as_str())));
        }
        let def = self.workflow.step(step).ok_or_else(|| violation("/body/step", format!("the workflow has no step {step:?}")))?;
        if case.steps.contains_key(step) {
            return Err(violation("/body/step", format!("step {step:?} was already opened or skipped")));
        }
        if !after_settled(def, case) {
            let a = def.after.iter().find(|a| case.steps.get(*a).is_none_or(|s| s.status == StepStatus::Open)).cloned().unwrap_or_default();
            return Err(violation("/body/step", format!("step {step:?} opened before step {a:?}, which comes first, was settled")));
        }
        Ok(())
    }

    /// The first of `people` the conflict-of-interest rule keeps off `step` (on the seat `seat`
    /// when it is theirs directly, else as an escalation target or delegate), with why. Only
    /// for workflows written under the rule: a record made before it is not held to it.
    fn party_kept_off(&self, case: &Case, step: &str, seat: Option<&str>, people: &[String]) -> Option<(String, Party)> {
        let wf = self.workflow;
        if !wf.conflict_of_interest.declared {
            return None;
        }
        let def = wf.step(step)?;
        let assignee = seat.and_then(|s| def.assignee_of_seat(s));
        people.iter().find_map(|p| conflict(wf, case, def, assignee, p).map(|party| (p.clone(), party)))
    }

    /// A `step_opened`: the step may open now, with seats that are unique, not empty, and
    /// hold neither the submitter nor a party kept off the step.
    fn opened(&self, case: &Case, step: &str, seats: &[super::engine::Seat]) -> Result<String, RouteViolation> {
        self.openable(case, step)?;
        if seats.is_empty() {
            return Err(violation("/body/seats", format!("step {step:?} opened with no seat")));
        }
        let mut ids = BTreeSet::new();
        for (i, s) in seats.iter().enumerate() {
            if !ids.insert(&s.id) || s.people.is_empty() {
                return Err(violation(&format!("/body/seats/{i}"), format!("seat {:?} of step {step:?} is repeated or has nobody", s.id)));
            }
            if s.people.contains(&case.submitter) {
                return Err(violation(
                    &format!("/body/seats/{i}"),
                    format!("the submitter {} sits on seat {:?} of step {step:?}: nobody approves their own case", case.submitter, s.id),
                ));
            }
            if let Some((who, party)) = self.party_kept_off(case, step, Some(&s.id), &s.people) {
                return Err(violation(
                    &format!("/body/seats/{i}"),
                    format!("{who}, {party} of the case, sits on seat {:?} of step {step:?}: a party never decides about their own case", s.id),
                ));
            }
        }
        let who: Vec<String> = seats.iter().map(|s| format!("{}: {}", s.id, s.people.join("/"))).collect();
        Ok(format!("step {step} opened ({})", who.join("; ")))
    }

    /// An `acted`, after its signature verified: the step offers the action, the actor is not
    /// the submitter, the seat is theirs (or their principal's under a delegation) and still
    /// waiting, and the conflict-of-interest rule keeps them on.
    #[allow(clippy::too_many_arguments)] // each is a member of the recorded act
    fn acted(
        &self,
        case: &Case,
        step: &str,
        seat: &str,
        actor: &str,
        (on_behalf_of, delegation): (Option<&str>, Option<&str>),
        action: Action,
        level: Level,
    ) -> Result<String, RouteViolation> {
        let def = self.open_step(case, step)?;
        if !def.actions.contains(&action) {
            let allowed: Vec<&str> = def.actions.iter().map(|a| a.as_str()).collect();
            return Err(violation("/body/action", format!("step {step:?} allows {}, not {action}", allowed.join(", "))));
        }
        if actor == case.submitter {
            return Err(violation("/body/actor", format!("{actor} acted on their own case")));
        }
        let state = &case.steps[step];
        let (i, s) =
            state.seats.iter().enumerate().find(|(_, s)| s.id == seat).ok_or_else(|| violation("/body/seat", format!("step {step:?} has no seat {seat:?}")))?;
        if s.act.is_some() {
            return Err(violation("/body/seat", format!("seat {seat:?} of step {step:?} was already taken")));
        }
        let on_seat = |p: &str| s.people.iter().chain(&s.escalated_to).any(|x| x == p);
        let own = (on_behalf_of.is_none() && s.people.iter().any(|p| p == actor)).then_some(seat);
        if let Some((who, party)) = self.party_kept_off(case, step, own, &[actor.to_string()]) {
            return Err(violation("/body/actor", format!("{who}, {party} of the case, acted on step {step:?}: a party never decides about their own case")));
        }
        match (on_behalf_of, delegation) {
            (None, _) if on_seat(actor) => {}
            (Some(principal), Some(_)) if on_seat(principal) => {}
            (Some(principal), _) if !on_seat(principal) => {
                return Err(violation("/body/on_behalf_of", format!("{principal} is not on seat {seat:?} of step {step:?}")));
            }
            (Some(_), None) => return Err(violation("/body/delegation", "an act on behalf of someone names no delegation".into())),
            _ => return Err(violation("/body/actor", format!("{actor} is not on seat {seat:?} of step {step:?} (seat {i}: {})", s.people.join(", ")))),
        }
        let by = match on_behalf_of {
            Some(p) => format!("{actor} for {p}"),
            None => actor.to_string(),
        };
        Ok(format!("step {step}: {action} by {by} ({})", level.as_str()))
    }

    /// A `reminded` or `escalated`: on an open step's waiting seat; an escalation adds someone
    /// other than the submitter and no party kept off the step.
    fn reminded_or_escalated(&self, case: &Case, step: &str, seat: &str, event: &CaseEvent) -> Result<String, RouteViolation> {
        self.settled(case)?;
        self.open_step(case, step)?;
        let s = case.steps[step].seats.iter().find(|s| s.id == seat).ok_or_else(|| violation("/body/seat", format!("step {step:?} has no seat {seat:?}")))?;
        if s.act.is_some() {
            return Err(violation("/body/seat", format!("seat {seat:?} of step {step:?} was already taken")));
        }
        Ok(match event {
            CaseEvent::Escalated { added, .. } => {
                if added.is_empty() || added.contains(&case.submitter) {
                    return Err(violation("/body/added", "an escalation must add someone other than the submitter".into()));
                }
                if let Some((who, party)) = self.party_kept_off(case, step, None, added) {
                    return Err(violation(
                        "/body/added",
                        format!("the escalation adds {who}, {party} of the case: a party never decides about their own case"),
                    ));
                }
                format!("step {step} seat {seat} escalated to {}", added.join(", "))
            }
            _ => format!("step {step} seat {seat} reminded"),
        })
    }

    fn rules(&self, _seq: u64, case: &Case, event: &CaseEvent) -> Result<String, RouteViolation> {
        let wf = self.workflow;
        Ok(match event {
            CaseEvent::Submitted { .. } => return Err(violation("/body/type", "a second submission on one case".into())),
            CaseEvent::StepOpened { step, seats, .. } => self.opened(case, step, seats)?,
            CaseEvent::StepSkipped { step, reason, .. } => {
                self.openable(case, step)?;
                format!("step {step} skipped ({reason})")
            }
            CaseEvent::Acted { step, seat, actor, on_behalf_of, delegation, action, signature, .. } => {
                self.acted(case, step, seat, actor, (on_behalf_of.as_deref(), delegation.as_deref()), *action, signature.level)?
            }
            CaseEvent::StepDone { step, .. } => {
                let def = self.open_step(case, step)?;
                if !step_complete(def.complete_when, &case.steps[step]) {
                    return Err(violation("/body/step", format!("step {step:?} recorded done before its seats' acts complete it")));
                }
                format!("step {step} done")
            }
            CaseEvent::Resubmitted { by, data, changes, .. } => {
                let mut expected = Vec::new();
                // Compared as the engine compares them: the data as signed, commitments whole.
                diff("", &case.committed_data(), data, &mut expected);
                if expected.is_empty() {
                    return Err(violation("/body/data", "a resubmission that changes nothing".into()));
                }
                if &expected != changes {
                    return Err(violation("/body/changes", "the recorded changes are not the difference between the two versions of the data".into()));
                }
                let fields: Vec<&str> = changes.iter().map(|c| c.pointer.as_str()).collect();
                format!("resubmitted by {by}, changing {}", fields.join(", "))
            }
            CaseEvent::Withdrawn { by, .. } => {
                self.settled(case)?;
                if by != &case.submitter {
                    return Err(violation("/body/by", format!("{by} withdrew the case, but only the submitter {} can", case.submitter)));
                }
                format!("withdrawn by {by}")
            }
            CaseEvent::Reminded { step, seat, .. } | CaseEvent::Escalated { step, seat, .. } => self.reminded_or_escalated(case, step, seat, event)?,
            CaseEvent::Completed { .. } => {
                if case.status != CaseStatus::Open {
                    return Err(violation("", format!("completed while the case is {}", case.status.as_str())));
                }
                if let Some(s) = wf.steps.iter().find(|s| case.steps.get(&s.id).is_none_or(|st| st.status == StepStatus::Open)) {
                    return Err(violation("", format!("completed while step {:?} is not settled", s.id)));
                }
                "completed".to_string()
            }
            CaseEvent::Rejected { by, .. } => {
                if !self.rejection_due {
                    return Err(violation("", "a rejection with no rejecting act just before it".into()));
                }
                format!("rejected by {by}")
            }
        })
    }
}
