//! The case state machine on the leave route and on small purpose-built workflows: branches,
//! return and resubmit, reject, withdraw, delegation, self-approval, deadlines, any/all/quorum.

use crate::common;

use carimbo::catalog::{Catalog, SourceFile};
use carimbo::directory::Directory;
use carimbo::forms::{FormDefinition, ValidSubmission, ValidationContext};
use carimbo::i18n::Lang;
use carimbo::workflow::{ActRequest, Action, Case, CaseEvent, CaseStatus, Engine, Level, Party, StepStatus, WorkflowDefinition, WorkflowError};
use common::{at, sig};
use serde_json::{Value, json};
use std::sync::Arc;

struct World {
    catalog: Catalog,
    dir: Directory,
}

impl World {
    fn shipped() -> World {
        let dir = common::directory();
        let mut sources = common::reference_sources();
        for name in ["forms/absence-and-annual-leave.json", "workflows/absence-and-annual-leave.json"] {
            sources.push(SourceFile::new(name, std::fs::read(common::repo().join(name)).unwrap()));
        }
        let report = Catalog::load_sources_with(&sources, Some(&dir));
        assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
        World { catalog: report.catalog, dir }
    }

    fn form(&self, id: &str) -> Arc<FormDefinition> {
        self.catalog.form(id).unwrap().clone()
    }

    fn workflow(&self, id: &str) -> Arc<WorkflowDefinition> {
        self.catalog.workflow(id).unwrap().clone()
    }

    fn submission(&self, form: &str, who: &str, data: Value, today: &str) -> ValidSubmission {
        let facts = self.dir.applicant_facts(who).unwrap();
        let ctx = ValidationContext::new(chrono::NaiveDate::parse_from_str(today, "%Y-%m-%d").unwrap(), facts);
        self.form(form).validate(&data, &ctx, Lang::En).unwrap()
    }
}

/// A case under test: the events so far and the folded state.
struct Run<'w> {
    engine: Engine<'w>,
    events: Vec<CaseEvent>,
    case: Case,
}

impl<'w> Run<'w> {
    fn open(engine: Engine<'w>, sub: &ValidSubmission, who: &str, now: &str) -> Run<'w> {
        let events = engine.open_case("case-1", sub, who, sig(who, Level::Advanced), at(now)).unwrap();
        let case = Case::replay(&events).unwrap();
        Run { engine, events, case }
    }

    fn push(&mut self, new: Vec<CaseEvent>) {
        for e in &new {
            self.case.apply(e).unwrap();
        }
        // Replaying from scratch gives the same state as applying step by step.
        self.events.extend(new);
        assert_eq!(Case::replay(&self.events).unwrap(), self.case);
        // And the route rules an evidence verifier replays accept every sequence the engine
        // makes: one set of rules, asked from both sides.
        let mut route = carimbo::workflow::replay::RouteCheck::new(self.engine.workflow);
        for (i, e) in self.events.iter().enumerate() {
            route.before_signature(e).unwrap_or_else(|v| panic!("event {}: {v:?}", i + 1));
            route.after_signature(i as u64 + 1, e).unwrap_or_else(|v| panic!("event {}: {v:?}", i + 1));
        }
        assert_eq!(route.finish().unwrap_or_else(|v| panic!("at the end: {v:?}")), &self.case);
    }

    fn act(&mut self, who: &str, step: &str, action: Action, level: Level, now: &str) -> Result<(), WorkflowError> {
        let req = ActRequest { actor: who.into(), step: step.into(), action, comment: None, signature: sig(who, level), now: at(now) };
        let new = self.engine.act(&self.case, req)?;
        self.push(new);
        Ok(())
    }

    fn step_status(&self, step: &str) -> Option<StepStatus> {
        self.case.steps.get(step).map(|s| s.status)
    }

    fn offered_to(&self, step: &str, now: &str) -> Vec<String> {
        let mut v: Vec<String> = self.engine.assignments(&self.case, at(now)).into_iter().filter(|a| a.step == step).map(|a| a.person).collect();
        v.sort();
        v
    }
}

fn leave(days: (&str, &str)) -> Value {
    json!({"leave_type": "annual", "start_date": days.0, "end_date": days.1})
}

#[test]
fn short_leave_goes_supervisor_then_hr_and_skips_the_head() {
    let w = World::shipped();
    let wf = w.workflow("absence-and-annual-leave");
    let sub = w.submission("absence-and-annual-leave", "p005", leave(("2026-03-09", "2026-03-10")), "2026-03-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p005", "2026-03-02T09:00");
    assert_eq!(run.offered_to("supervisor", "2026-03-02T09:00"), ["p003"]);
    run.act("p003", "supervisor", Action::Approve, Level::Advanced, "2026-03-02T10:00").unwrap();
    assert_eq!(run.step_status("head"), Some(StepStatus::Skipped), "2 days ≤ DAF's threshold of 5");
    assert_eq!(run.offered_to("hr-records", "2026-03-02T10:00"), ["p018", "p019", "p020"]);
    run.act("p019", "hr-records", Action::Sign, Level::Simple, "2026-03-02T11:00").unwrap();
    assert_eq!(run.case.status, CaseStatus::Completed);
    assert!(run.engine.assignments(&run.case, at("2026-03-02T11:00")).is_empty());
}

#[test]
fn long_leave_also_goes_to_the_head_of_department() {
    let w = World::shipped();
    let wf = w.workflow("absence-and-annual-leave");
    let sub = w.submission("absence-and-annual-leave", "p005", leave(("2026-03-09", "2026-03-18")), "2026-03-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p005", "2026-03-02T09:00");
    run.act("p003", "supervisor", Action::Approve, Level::Advanced, "2026-03-02T10:00").unwrap();
    assert_eq!(run.offered_to("head", "2026-03-02T10:00"), ["p002"]);
    // The HR step waits for the head.
    assert_eq!(run.step_status("hr-records"), None);
    run.act("p002", "head", Action::Approve, Level::Qualified, "2026-03-03T10:00").unwrap();
    run.act("p020", "hr-records", Action::Sign, Level::Simple, "2026-03-03T11:00").unwrap();
    assert_eq!(run.case.status, CaseStatus::Completed);
}

#[test]
fn a_returned_case_is_resubmitted_with_a_recorded_diff_and_approvals_asked_again() {
    let w = World::shipped();
    let wf = w.workflow("absence-and-annual-leave");
    let sub = w.submission("absence-and-annual-leave", "p005", leave(("2026-03-09", "2026-03-18")), "2026-03-02");
    let engine = Engine::new(&wf, &w.dir);
    let mut run = Run::open(engine, &sub, "p005", "2026-03-02T09:00");
    run.act("p003", "supervisor", Action::Approve, Level::Advanced, "2026-03-02T10:00").unwrap();
    run.act("p002", "head", Action::Return, Level::Advanced, "2026-03-02T11:00").unwrap();
    assert_eq!(run.case.status, CaseStatus::Returned);
    assert_eq!(run.act("p019", "hr-records", Action::Sign, Level::Simple, "2026-03-02T12:00"), Err(WorkflowError::CaseNotOpen("returned")));

    // Nothing changed: refused.
    let same = w.submission("absence-and-annual-leave", "p005", leave(("2026-03-09", "2026-03-18")), "2026-03-02");
    assert_eq!(run.engine.resubmit(&run.case, "p005", &same, sig("p005", Level::Advanced), at("2026-03-02T13:00")), Err(WorkflowError::NoChanges));
    // Only the submitter resubmits.
    let shorter = w.submission("absence-and-annual-leave", "p005", leave(("2026-03-09", "2026-03-11")), "2026-03-02");
    assert!(matches!(
        run.engine.resubmit(&run.case, "p006", &shorter, sig("p006", Level::Advanced), at("2026-03-02T13:00")),
        Err(WorkflowError::NotSubmitter(_))
    ));

    let new = run.engine.resubmit(&run.case, "p005", &shorter, sig("p005", Level::Advanced), at("2026-03-02T13:00")).unwrap();
    let CaseEvent::Resubmitted { changes, .. } = &new[0] else { panic!("{new:?}") };
    let pointers: Vec<&str> = changes.iter().map(|c| c.pointer.as_str()).collect();
    assert_eq!(pointers, ["/end_date", "/working_days"]);
    assert_eq!(changes[0].before, json!("2026-03-18"));
    assert_eq!(changes[0].after, json!("2026-03-11"));
    run.push(new);
    assert_eq!(run.case.status, CaseStatus::Open);
    assert_eq!(run.case.data_version, 2);
    assert!(run.case.acts.iter().all(|a| a.superseded), "earlier approvals are superseded");
    // The supervisor is asked again, and now (3 days) the head is not needed.
    assert_eq!(run.offered_to("supervisor", "2026-03-02T13:00"), ["p003"]);
    run.act("p003", "supervisor", Action::Approve, Level::Advanced, "2026-03-02T14:00").unwrap();
    assert_eq!(run.step_status("head"), Some(StepStatus::Skipped));
}

#[test]
fn a_rejection_is_final() {
    let w = World::shipped();
    let wf = w.workflow("absence-and-annual-leave");
    let sub = w.submission("absence-and-annual-leave", "p005", leave(("2026-03-09", "2026-03-10")), "2026-03-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p005", "2026-03-02T09:00");
    run.act("p003", "supervisor", Action::Reject, Level::Advanced, "2026-03-02T10:00").unwrap();
    assert_eq!(run.case.status, CaseStatus::Rejected);
    assert!(matches!(run.events.last(), Some(CaseEvent::Rejected { by, .. }) if by == "p003"));
    assert_eq!(run.engine.withdraw(&run.case, "p005", None, at("2026-03-03T09:00")), Err(WorkflowError::FinalDecision("rejected")));
}

#[test]
fn the_applicant_withdraws_while_no_final_decision_exists() {
    let w = World::shipped();
    let wf = w.workflow("absence-and-annual-leave");
    let sub = w.submission("absence-and-annual-leave", "p005", leave(("2026-03-09", "2026-03-10")), "2026-03-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p005", "2026-03-02T09:00");
    assert_eq!(run.engine.withdraw(&run.case, "p003", None, at("2026-03-02T10:00")), Err(WorkflowError::NotSubmitter("p005".into())));
    let e = run.engine.withdraw(&run.case, "p005", Some("plans changed".into()), at("2026-03-02T10:00")).unwrap();
    run.push(e);
    assert_eq!(run.case.status, CaseStatus::Withdrawn);
    assert_eq!(run.act("p003", "supervisor", Action::Approve, Level::Advanced, "2026-03-02T11:00"), Err(WorkflowError::CaseNotOpen("withdrawn")));
}

#[test]
fn nobody_but_the_assignee_acts_and_the_signature_must_be_strong_enough() {
    let w = World::shipped();
    let wf = w.workflow("absence-and-annual-leave");
    let sub = w.submission("absence-and-annual-leave", "p005", leave(("2026-03-09", "2026-03-10")), "2026-03-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p005", "2026-03-02T09:00");
    assert!(matches!(run.act("p004", "supervisor", Action::Approve, Level::Advanced, "2026-03-02T10:00"), Err(WorkflowError::NotAssigned { .. })));
    assert!(matches!(run.act("p003", "hr-records", Action::Sign, Level::Simple, "2026-03-02T10:00"), Err(WorkflowError::StepNotOpen(_))));
    assert!(matches!(run.act("p003", "supervisor", Action::Sign, Level::Advanced, "2026-03-02T10:00"), Err(WorkflowError::ActionNotAllowed { .. })));
    assert_eq!(
        run.act("p003", "supervisor", Action::Approve, Level::Simple, "2026-03-02T10:00"),
        Err(WorkflowError::SignatureTooWeak { what: "step \"supervisor\"".into(), required: Level::Advanced, got: Level::Simple })
    );
    // A signature by someone else than the actor is refused.
    let req = ActRequest {
        actor: "p003".into(),
        step: "supervisor".into(),
        action: Action::Approve,
        comment: None,
        signature: sig("p004", Level::Advanced),
        now: at("2026-03-02T10:00"),
    };
    assert!(matches!(run.engine.act(&run.case, req), Err(WorkflowError::SignerMismatch { .. })));
    // A stronger level satisfies a weaker one.
    run.act("p003", "supervisor", Action::Approve, Level::Qualified, "2026-03-02T10:00").unwrap();
    // Nothing above changed the case but the last act.
    assert_eq!(run.case.acts.len(), 1);
}

#[test]
fn only_the_listed_roles_may_submit_and_the_submission_signature_level_is_enforced() {
    let w = World::shipped();
    let wf = w.workflow("absence-and-annual-leave");
    let engine = Engine::new(&wf, &w.dir);
    let sub = w.submission("absence-and-annual-leave", "p005", leave(("2026-03-09", "2026-03-10")), "2026-03-02");
    assert!(matches!(
        engine.open_case("c", &sub, "doc01", sig("doc01", Level::Qualified), at("2026-03-02T09:00")),
        Err(WorkflowError::NotAllowedToSubmit { .. })
    ));
    assert!(matches!(engine.open_case("c", &sub, "p005", sig("p005", Level::Simple), at("2026-03-02T09:00")), Err(WorkflowError::SignatureTooWeak { .. })));
}

#[test]
fn a_submitter_in_the_hr_group_cannot_record_their_own_leave() {
    let w = World::shipped();
    let wf = w.workflow("absence-and-annual-leave");
    let sub = w.submission("absence-and-annual-leave", "p018", leave(("2026-03-09", "2026-03-10")), "2026-03-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p018", "2026-03-02T09:00");
    run.act("p016", "supervisor", Action::Approve, Level::Advanced, "2026-03-02T10:00").unwrap();
    assert_eq!(run.offered_to("hr-records", "2026-03-02T10:00"), ["p019", "p020"]);
    assert_eq!(run.act("p018", "hr-records", Action::Sign, Level::Simple, "2026-03-02T10:00"), Err(WorkflowError::SelfApproval));
}

#[test]
fn a_head_applying_for_leave_is_approved_by_the_person_above_them() {
    let w = World::shipped();
    let wf = w.workflow("absence-and-annual-leave");
    // p002 heads DAF; their supervisor is the director p001.
    let sub = w.submission("absence-and-annual-leave", "p002", leave(("2026-03-09", "2026-03-18")), "2026-03-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p002", "2026-03-02T09:00");
    assert_eq!(run.offered_to("supervisor", "2026-03-02T09:00"), ["p001"]);
    run.act("p001", "supervisor", Action::Approve, Level::Qualified, "2026-03-02T10:00").unwrap();
    // The "head" of a head is the person above them, p001 again.
    assert_eq!(run.offered_to("head", "2026-03-02T10:00"), ["p001"]);
}

#[test]
fn a_delegate_is_offered_the_step_inside_the_delegation_dates_and_the_record_says_so() {
    let w = World::shipped();
    let wf = w.workflow("absence-and-annual-leave");
    // Delegation d-2026-002: p004 acts for p003 on leave forms from 2026-11-16 to 2026-11-30.
    let sub = w.submission("absence-and-annual-leave", "p005", leave(("2026-12-07", "2026-12-08")), "2026-11-20");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p005", "2026-11-20T09:00");
    assert_eq!(run.offered_to("supervisor", "2026-11-20T09:00"), ["p003", "p004"]);
    run.act("p004", "supervisor", Action::Approve, Level::Advanced, "2026-11-20T10:00").unwrap();
    let Some(CaseEvent::Acted { actor, on_behalf_of, delegation, .. }) = run.events.iter().find(|e| matches!(e, CaseEvent::Acted { .. })) else { panic!() };
    assert_eq!((actor.as_str(), on_behalf_of.as_deref(), delegation.as_deref()), ("p004", Some("p003"), Some("d-2026-002")));
}

#[test]
fn a_delegate_outside_the_delegation_dates_is_not_assigned() {
    let w = World::shipped();
    let wf = w.workflow("absence-and-annual-leave");
    let sub = w.submission("absence-and-annual-leave", "p005", leave(("2026-12-14", "2026-12-15")), "2026-12-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p005", "2026-12-02T09:00");
    assert_eq!(run.offered_to("supervisor", "2026-12-02T09:00"), ["p003"]);
    assert!(matches!(run.act("p004", "supervisor", Action::Approve, Level::Advanced, "2026-12-02T10:00"), Err(WorkflowError::NotAssigned { .. })));
}

#[test]
fn a_missed_deadline_raises_a_reminder_and_then_escalates() {
    let w = World::shipped();
    let wf = w.workflow("absence-and-annual-leave");
    let sub = w.submission("absence-and-annual-leave", "p005", leave(("2026-03-16", "2026-03-17")), "2026-03-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p005", "2026-03-02T09:00");
    // Supervisor step: remind after 2 days, escalate to the head after 3.
    assert!(run.engine.tick(&run.case, at("2026-03-03T09:00")).is_empty());
    let due = run.engine.tick(&run.case, at("2026-03-04T09:00"));
    assert!(matches!(due.as_slice(), [CaseEvent::Reminded { people, .. }] if people == &["p003"]), "{due:?}");
    run.push(due);
    assert!(run.engine.tick(&run.case, at("2026-03-04T10:00")).is_empty(), "one reminder, not one per tick");
    let due = run.engine.tick(&run.case, at("2026-03-05T09:00"));
    assert!(matches!(due.as_slice(), [CaseEvent::Escalated { added, .. }] if added == &["p002"]), "{due:?}");
    run.push(due);
    assert_eq!(run.offered_to("supervisor", "2026-03-05T09:00"), ["p002", "p003"]);
    run.act("p002", "supervisor", Action::Approve, Level::Advanced, "2026-03-05T10:00").unwrap();
    assert_eq!(run.step_status("supervisor"), Some(StepStatus::Done));
}

// ---- any / all / quorum, on a small form and workflows written for these tests ----

const PANEL_FORM: &str = r#"{
  "kind": "form", "id": "panel-review", "version": "1.0.0",
  "title": {"zh": "評審", "pt": "Apreciação", "en": "Panel review"},
  "legal_basis": {"zh": "測試", "pt": "Teste", "en": "Test"},
  "workflow": "panel-review",
  "schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "additionalProperties": false,
    "required": ["panel"], "properties": {"panel": {"type": "array", "minItems": 1, "items": {"type": "string"}}}},
  "labels": {"panel": {"zh": "評審員", "pt": "Júri", "en": "Panel"}},
  "rules": [],
  "layout": {"groups": [{"id": "g", "title": {"zh": "評審", "pt": "Júri", "en": "Panel"}, "fields": ["panel"]}]},
  "examples": {"context": {"today": "2026-03-02"},
    "valid": [{"name": "one", "data": {"panel": ["p018"]}}, {"name": "two", "data": {"panel": ["p018", "p019"]}}],
    "invalid": [{"name": "a", "data": {}, "expect": [{"pointer": "/panel", "code": "required"}]},
                {"name": "b", "data": {"panel": []}, "expect": [{"pointer": "/panel", "code": "min-items"}]},
                {"name": "c", "data": {"panel": [1]}, "expect": [{"pointer": "/panel/0", "code": "type"}]}]}
}"#;

fn panel_world(complete_when: Value) -> World {
    let dir = common::directory();
    let workflow = json!({
        "kind": "workflow", "id": "panel-review", "version": "1.0.0",
        "title": {"zh": "評審", "pt": "Apreciação", "en": "Panel review"},
        "form": "panel-review", "submitted_by": ["staff"], "submit_signature": "simple",
        "steps": [
            {"id": "panel", "title": {"zh": "評審", "pt": "Júri", "en": "Panel"},
             "assignee": {"field": "panel.*"}, "complete_when": complete_when, "actions": ["approve", "reject"], "signature": "simple"},
            {"id": "head", "title": {"zh": "處長", "pt": "Chefe", "en": "Head"}, "assignee": {"role": "head"}, "actions": ["approve"], "signature": "simple"}
        ]
    });
    let sources = vec![
        SourceFile::new("panel-review.json", PANEL_FORM.as_bytes().to_vec()),
        SourceFile::new("workflows/panel-review.json", serde_json::to_vec(&workflow).unwrap()),
    ];
    let report = Catalog::load_sources_with(&sources, Some(&dir));
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    World { catalog: report.catalog, dir }
}

fn panel_run<'w>(w: &'w World, wf: &'w WorkflowDefinition) -> Run<'w> {
    let sub = w.submission("panel-review", "p021", json!({"panel": ["p018", "p019", "p020"]}), "2026-03-02");
    let events = Engine::new(wf, &w.dir).open_case("case-1", &sub, "p021", sig("p021", Level::Simple), at("2026-03-02T09:00")).unwrap();
    let case = Case::replay(&events).unwrap();
    Run { engine: Engine::new(wf, &w.dir), events, case }
}

#[test]
fn an_all_step_waits_for_every_seat() {
    let w = panel_world(json!("all"));
    let wf = w.workflow("panel-review");
    let mut run = panel_run(&w, &wf);
    assert_eq!(run.case.steps["panel"].seats.len(), 3);
    run.act("p018", "panel", Action::Approve, Level::Simple, "2026-03-02T10:00").unwrap();
    run.act("p019", "panel", Action::Approve, Level::Simple, "2026-03-02T10:00").unwrap();
    assert_eq!(run.step_status("panel"), Some(StepStatus::Open));
    // One person, one seat: acting twice is refused.
    assert!(matches!(run.act("p019", "panel", Action::Approve, Level::Simple, "2026-03-02T10:00"), Err(WorkflowError::NotAssigned { .. })));
    run.act("p020", "panel", Action::Approve, Level::Simple, "2026-03-02T10:00").unwrap();
    assert_eq!(run.step_status("panel"), Some(StepStatus::Done));
    assert_eq!(run.step_status("head"), Some(StepStatus::Open));
}

#[test]
fn an_any_step_is_done_at_the_first_approval() {
    let w = panel_world(json!("any"));
    let wf = w.workflow("panel-review");
    let mut run = panel_run(&w, &wf);
    run.act("p020", "panel", Action::Approve, Level::Simple, "2026-03-02T10:00").unwrap();
    assert_eq!(run.step_status("panel"), Some(StepStatus::Done));
    assert!(matches!(run.act("p018", "panel", Action::Approve, Level::Simple, "2026-03-02T10:00"), Err(WorkflowError::StepNotOpen(_))));
}

#[test]
fn a_quorum_step_is_done_at_n_approvals() {
    let w = panel_world(json!({"quorum": 2}));
    let wf = w.workflow("panel-review");
    let mut run = panel_run(&w, &wf);
    run.act("p018", "panel", Action::Approve, Level::Simple, "2026-03-02T10:00").unwrap();
    assert_eq!(run.step_status("panel"), Some(StepStatus::Open));
    run.act("p020", "panel", Action::Approve, Level::Simple, "2026-03-02T10:00").unwrap();
    assert_eq!(run.step_status("panel"), Some(StepStatus::Done));
}

#[test]
fn a_person_named_in_a_field_must_be_in_the_directory() {
    let w = panel_world(json!("all"));
    let wf = w.workflow("panel-review");
    let sub = w.submission("panel-review", "p021", json!({"panel": ["p018", "ghost7"]}), "2026-03-02");
    let err = Engine::new(&wf, &w.dir).open_case("c", &sub, "p021", sig("p021", Level::Simple), at("2026-03-02T09:00")).unwrap_err();
    assert_eq!(err, WorkflowError::UnknownPerson { field: "panel.*".into(), value: "ghost7".into() });
}

// Conflict of interest: the subject and the parties a form names never decide about the case.

fn shipped_world(forms: &[&str]) -> World {
    let dir = common::directory();
    let mut sources = common::reference_sources();
    for form in forms {
        for name in [format!("forms/{form}.json"), format!("workflows/{form}.json")] {
            sources.push(SourceFile::new(&name, std::fs::read(common::repo().join(&name)).unwrap()));
        }
    }
    let report = Catalog::load_sources_with(&sources, Some(&dir));
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    World { catalog: report.catalog, dir }
}

fn reporting_slip(staff_id: &str) -> Value {
    json!({"staff_name": "Ana Paula Gonçalves", "staff_id": staff_id, "staff_number": "1234567",
           "post": "Técnico superior de 2.ª classe, 1.º escalão", "movement_type": "transfer",
           "from_service": "Direcção dos Serviços para os Assuntos Laborais", "to_service": "Direcção dos Serviços de Finanças",
           "order_ref": "Despacho n.º 45/SAF/2026", "order_date": "2026-02-20", "issue_date": "2026-02-25",
           "report_by_date": "2026-03-02", "reported_date": "2026-03-02"})
}

#[test]
fn the_subject_of_a_reporting_slip_is_kept_off_the_hr_step_and_refused_by_the_rule() {
    let w = shipped_world(&["reporting-for-duty"]);
    let wf = w.workflow("reporting-for-duty");
    // HR member p018 files the slip about HR member p019: of the HR group only p020 is left.
    let sub = w.submission("reporting-for-duty", "p018", reporting_slip("p019"), "2026-03-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p018", "2026-03-02T09:00");
    assert_eq!(run.case.subject, "p019");
    assert_eq!(run.case.steps["receiving-hr"].seats[0].people, ["p020"]);
    assert_eq!(run.offered_to("receiving-hr", "2026-03-02T09:00"), ["p020"]);
    let expected = || WorkflowError::ConflictOfInterest { person: "p019".into(), step: "receiving-hr".into(), party: Party::Subject };
    assert_eq!(run.engine.may_act(&run.case, "receiving-hr", "p019", at("2026-03-02T09:30")), Err(expected()));
    let before = run.case.clone();
    assert_eq!(run.act("p019", "receiving-hr", Action::Sign, Level::Advanced, "2026-03-02T09:30"), Err(expected()));
    assert_eq!(run.case, before, "a refused act changes nothing");
    assert!(expected().to_string().contains("conflict of interest) [CARIMBO-E0316]"), "{}", expected());
    run.act("p020", "receiving-hr", Action::Sign, Level::Advanced, "2026-03-02T10:00").unwrap();
    assert_eq!(run.case.status, CaseStatus::Completed);
}

#[test]
fn a_subject_recorded_on_a_seat_before_the_rule_is_neither_offered_it_nor_may_take_it() {
    let w = shipped_world(&["reporting-for-duty"]);
    let wf = w.workflow("reporting-for-duty");
    let sub = w.submission("reporting-for-duty", "p018", reporting_slip("p019"), "2026-03-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p018", "2026-03-02T09:00");
    // An older record: the step opened with the subject on its seat.
    run.case.steps.get_mut("receiving-hr").unwrap().seats[0].people = vec!["p019".into(), "p020".into()];
    assert_eq!(run.offered_to("receiving-hr", "2026-03-02T09:00"), ["p020"]);
    assert!(matches!(
        run.act("p019", "receiving-hr", Action::Sign, Level::Advanced, "2026-03-02T09:30"),
        Err(WorkflowError::ConflictOfInterest { party: Party::Subject, .. })
    ));
}

fn accident(victim: &str, witnesses: &[&str]) -> Value {
    let witnesses: Vec<Value> = witnesses.iter().map(|w| json!({"name": "Colleague", "is_staff": true, "staff_id": w, "phone": "+853 6612 3456"})).collect();
    json!({"victim": {"name": "Lei Ka Ian", "staff_id": victim, "staff_number": "402211", "category": "Técnico", "department": "DAF"},
           "accident_at": "2026-02-25T15:40:00+08:00", "report_at": "2026-02-26T09:15:00+08:00",
           "place": "Armazém, piso 1", "place_type": "workplace", "activity_at_time": "Moving boxes of files with a trolley.",
           "description": "Slipped on a wet floor and fell on the left arm.",
           "injuries": [{"body_part": "upper_limb", "nature": "fracture", "details": "Left forearm"}],
           "medical_assistance": "hospital", "treatment_place": "Centro Hospitalar Conde de São Januário", "work_stopped": true,
           "witnesses": witnesses, "measures_taken": "Floor dried and warning signs placed."})
}

#[test]
fn a_witness_signs_their_own_statement_but_not_the_head_step_which_goes_up_the_tree() {
    let w = shipped_world(&["work-accident-report"]);
    let wf = w.workflow("work-accident-report");
    // p003 (supervisor) reports p005's accident; the head of DAF, p002, was a witness.
    let sub = w.submission("work-accident-report", "p003", accident("p005", &["p002", "p006"]), "2026-03-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p003", "2026-03-02T09:00");
    assert_eq!(run.offered_to("witnesses", "2026-03-02T09:00"), ["p002", "p006"], "a witness's own seat stays theirs");
    run.act("p002", "witnesses", Action::Sign, Level::Advanced, "2026-03-02T10:00").unwrap();
    // The head step would be p002's; as a witness they are kept off and it goes to p001 above them.
    assert_eq!(run.case.steps["head"].seats[0].people, ["p001"]);
    let refused = run.act("p002", "head", Action::Sign, Level::Advanced, "2026-03-02T10:30");
    assert_eq!(
        refused,
        Err(WorkflowError::ConflictOfInterest { person: "p002".into(), step: "head".into(), party: Party::Field("witnesses.*.staff_id".into()) })
    );
    run.act("p001", "head", Action::Sign, Level::Advanced, "2026-03-02T11:00").unwrap();
    assert_eq!(run.offered_to("hr-records", "2026-03-02T11:00"), ["p018", "p019", "p020"]);
}

#[test]
fn a_victim_named_as_their_own_witness_has_no_witness_seat_and_nobody_signs_it_for_them() {
    let w = shipped_world(&["work-accident-report"]);
    let wf = w.workflow("work-accident-report");
    let sub = w.submission("work-accident-report", "p003", accident("p005", &["p005", "p006"]), "2026-03-02");
    let run = Run::open(Engine::new(&wf, &w.dir), &sub, "p003", "2026-03-02T09:00");
    let seats: Vec<(String, Vec<String>)> = run.case.steps["witnesses"].seats.iter().map(|s| (s.id.clone(), s.people.clone())).collect();
    assert_eq!(seats, [("p006".to_string(), vec!["p006".to_string()])]);
    assert_eq!(
        run.engine.may_act(&run.case, "witnesses", "p005", at("2026-03-02T09:30")),
        Err(WorkflowError::ConflictOfInterest { person: "p005".into(), step: "witnesses".into(), party: Party::Subject })
    );
}

#[test]
fn a_party_is_never_added_by_an_escalation() {
    let w = shipped_world(&["work-accident-report"]);
    let wf = w.workflow("work-accident-report");
    // The head step escalates to the authority group, whose one member p001 was a witness.
    let sub = w.submission("work-accident-report", "p003", accident("p005", &["p001"]), "2026-03-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p003", "2026-03-02T09:00");
    run.act("p001", "witnesses", Action::Sign, Level::Advanced, "2026-03-02T10:00").unwrap();
    assert_eq!(run.case.steps["head"].seats[0].people, ["p002"]);
    let due = run.engine.tick(&run.case, at("2026-03-20T09:00"));
    assert!(due.iter().all(|e| !matches!(e, CaseEvent::Escalated { .. })), "{due:?}");
    run.push(due);
    assert_eq!(run.offered_to("head", "2026-03-20T09:00"), ["p002"]);
}

#[test]
fn with_on_conflict_skip_a_seat_only_a_party_could_take_is_dropped() {
    let dir = common::directory();
    let mut wf = common::read_json(&common::repo().join("workflows/work-accident-report.json"));
    wf["conflict_of_interest"]["on_conflict"] = json!("skip");
    let mut sources = common::reference_sources();
    sources.push(SourceFile::new("forms/work-accident-report.json", std::fs::read(common::repo().join("forms/work-accident-report.json")).unwrap()));
    sources.push(SourceFile::new("workflows/work-accident-report.json", serde_json::to_vec(&wf).unwrap()));
    let report = Catalog::load_sources_with(&sources, Some(&dir));
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    let w = World { catalog: report.catalog, dir };
    let wf = w.workflow("work-accident-report");
    let sub = w.submission("work-accident-report", "p003", accident("p005", &["p002"]), "2026-03-02");
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p003", "2026-03-02T09:00");
    run.act("p002", "witnesses", Action::Sign, Level::Advanced, "2026-03-02T10:00").unwrap();
    assert_eq!(run.step_status("head"), Some(StepStatus::Skipped), "the head, a witness, was its only person");
    assert_eq!(run.step_status("hr-records"), Some(StepStatus::Open));
}

// ---- working-day deadlines and conditions on the form's settings ----

/// The shipped leave form and workflow, the workflow changed by `edit`.
fn leave_world_with(edit: impl FnOnce(&mut Value)) -> World {
    let dir = common::directory();
    let mut sources = common::reference_sources();
    sources.push(SourceFile::new("forms/absence-and-annual-leave.json", std::fs::read(common::repo().join("forms/absence-and-annual-leave.json")).unwrap()));
    let mut workflow = common::read_json(&common::repo().join("workflows/absence-and-annual-leave.json"));
    edit(&mut workflow);
    sources.push(SourceFile::new("workflows/absence-and-annual-leave.json", serde_json::to_vec(&workflow).unwrap()));
    let report = Catalog::load_sources_with(&sources, Some(&dir));
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    World { catalog: report.catalog, dir }
}

fn working_day_world() -> World {
    leave_world_with(|w| w["steps"][0]["deadline"] = json!({"working_days": 3, "remind_after_days": 2, "escalate_to": {"role": "head"}}))
}

/// (time of the reminder, time of the escalation) of the supervisor step of a case opened at `opened`.
fn reminder_and_escalation(w: &World, opened: &str, ticks: &[&str]) -> (Option<String>, Option<String>) {
    let wf = w.workflow("absence-and-annual-leave");
    let sub = w.submission("absence-and-annual-leave", "p005", leave(("2026-11-16", "2026-11-17")), &opened[..10]);
    let mut run = Run::open(Engine::new(&wf, &w.dir), &sub, "p005", opened);
    let (mut reminded, mut escalated) = (None, None);
    for t in ticks {
        let due = run.engine.tick(&run.case, at(t));
        for e in &due {
            match e {
                CaseEvent::Reminded { .. } if reminded.is_none() => reminded = Some(t.to_string()),
                CaseEvent::Escalated { .. } if escalated.is_none() => escalated = Some(t.to_string()),
                _ => {}
            }
        }
        run.push(due);
    }
    (reminded, escalated)
}

/// Every hour from `from` for `days` days, Macau time.
fn hourly(from: &str, days: i64) -> Vec<String> {
    let start = chrono::NaiveDateTime::parse_from_str(from, "%Y-%m-%dT%H:%M").unwrap();
    (0..days * 24).map(|h| (start + chrono::Duration::hours(h)).format("%Y-%m-%dT%H:%M").to_string()).collect()
}

#[test]
fn a_working_day_deadline_does_not_escalate_over_a_weekend() {
    let w = working_day_world();
    // Opened on Friday 6 March 2026 at 09:00: Monday, Tuesday, Wednesday are the 3 working days.
    let ticks = hourly("2026-03-06T09:00", 8);
    let ticks: Vec<&str> = ticks.iter().map(String::as_str).collect();
    assert_eq!(reminder_and_escalation(&w, "2026-03-06T09:00", &ticks), (Some("2026-03-10T09:00".into()), Some("2026-03-11T09:00".into())));
    // In calendar days (the shipped workflow) it would have escalated on the Monday.
    let calendar = World::shipped();
    assert_eq!(reminder_and_escalation(&calendar, "2026-03-06T09:00", &ticks), (Some("2026-03-08T09:00".into()), Some("2026-03-09T09:00".into())));
}

#[test]
fn a_working_day_deadline_skips_the_holidays_of_the_calendar() {
    let w = working_day_world();
    // Opened on Wednesday 30 September 2026: 1 and 2 October are public holidays, then a
    // weekend, so the working days are 5, 6 and 7 October.
    let ticks = hourly("2026-09-30T15:00", 9);
    let ticks: Vec<&str> = ticks.iter().map(String::as_str).collect();
    assert_eq!(reminder_and_escalation(&w, "2026-09-30T15:00", &ticks), (Some("2026-10-06T15:00".into()), Some("2026-10-07T15:00".into())));
}

#[test]
fn a_condition_reads_the_settings_of_the_form_the_case_is_pinned_to() {
    // The head decides above the form's own setting (3 days) instead of a number in the workflow.
    let w = leave_world_with(|wf| wf["steps"][1]["when"] = json!({">": [{"var": "working_days"}, {"var": "settings.sick_leave_days_without_certificate"}]}));
    let wf = w.workflow("absence-and-annual-leave");
    let form = w.form("absence-and-annual-leave");
    assert_eq!(form.settings["sick_leave_days_without_certificate"], json!(3));
    let short = w.submission("absence-and-annual-leave", "p005", leave(("2026-03-16", "2026-03-18")), "2026-03-02");
    let long = w.submission("absence-and-annual-leave", "p005", leave(("2026-03-16", "2026-03-19")), "2026-03-02");
    for (sub, head) in [(&short, StepStatus::Skipped), (&long, StepStatus::Open)] {
        let mut run = Run::open(Engine::new(&wf, &w.dir).with_settings(&form.settings), sub, "p005", "2026-03-02T09:00");
        run.act("p003", "supervisor", Action::Approve, Level::Advanced, "2026-03-02T10:00").unwrap();
        assert_eq!(run.step_status("head"), Some(head), "{:?}", sub.data);
    }
}
