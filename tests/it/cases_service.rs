//! Cases end to end on the real sled store: submit, act, inbox, idempotency, concurrency,
//! definitions changed while cases are open, and a restart.

use crate::common;

use carimbo::cases::{CaseError, CaseService, Idempotency};
use carimbo::catalog::{Catalog, SourceFile};
use carimbo::i18n::Lang;
use carimbo::store::{SledStore, Store, StoreError};
use carimbo::workflow::{ActRequest, Action, CaseEvent, CaseStatus, Level, WorkflowError};
use common::{at, sig};
use serde_json::{Value, json};
use std::sync::{Arc, Barrier};

fn catalog_with_workflow(workflow: &Value) -> Catalog {
    let mut sources = common::reference_sources();
    sources.push(SourceFile::new("forms/absence-and-annual-leave.json", std::fs::read(common::repo().join("forms/absence-and-annual-leave.json")).unwrap()));
    sources.push(SourceFile::new("workflows/absence-and-annual-leave.json", serde_json::to_vec_pretty(workflow).unwrap()));
    let report = Catalog::load_sources_with(&sources, Some(&common::directory()));
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    report.catalog
}

fn shipped_workflow() -> Value {
    common::read_json(&common::repo().join("workflows/absence-and-annual-leave.json"))
}

fn service(dir: &std::path::Path, workflow: &Value) -> CaseService {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
    CaseService::new(store, catalog_with_workflow(workflow), common::directory()).unwrap()
}

fn leave(start: &str, end: &str) -> Value {
    json!({"leave_type": "annual", "start_date": start, "end_date": end})
}

fn approve(who: &str, step: &str, now: &str) -> ActRequest {
    ActRequest { actor: who.into(), step: step.into(), action: Action::Approve, comment: None, signature: sig(who, Level::Advanced), now: at(now) }
}

#[test]
fn a_submitted_case_moves_through_the_inboxes_and_its_chain_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = service(tmp.path(), &shipped_workflow());
    let view = svc
        .submit("p005", "absence-and-annual-leave", &leave("2026-03-09", "2026-03-10"), sig("p005", Level::Advanced), at("2026-03-02T09:00"), None, Lang::En)
        .unwrap();
    let id = view.case.id.clone();
    let inbox = svc.inbox("p003", None, 50).unwrap();
    assert_eq!(inbox.entries.len(), 1);
    assert_eq!((inbox.entries[0].case_id.as_str(), inbox.entries[0].step.as_str()), (id.as_str(), "supervisor"));

    svc.act(&id, approve("p003", "supervisor", "2026-03-02T10:00"), None).unwrap();
    assert!(svc.inbox("p003", None, 50).unwrap().entries.is_empty());
    assert_eq!(svc.inbox("p019", None, 50).unwrap().entries.len(), 1);
    let done = svc
        .act(
            &id,
            ActRequest {
                actor: "p019".into(),
                step: "hr-records".into(),
                action: Action::Sign,
                comment: None,
                signature: sig("p019", Level::Simple),
                now: at("2026-03-02T11:00"),
            },
            None,
        )
        .unwrap();
    assert_eq!(done.case.status, CaseStatus::Completed);
    assert!(svc.inbox("p019", None, 50).unwrap().entries.is_empty());
    svc.store().verify_case(&id).unwrap();
    let mine = svc.cases_of("p005", 10).unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].status, "completed");
}

#[test]
fn an_invalid_submission_is_refused_and_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = service(tmp.path(), &shipped_workflow());
    let err = svc
        .submit("p005", "absence-and-annual-leave", &leave("2026-03-10", "2026-03-09"), sig("p005", Level::Advanced), at("2026-03-02T09:00"), None, Lang::Pt)
        .unwrap_err();
    let CaseError::Invalid(errors) = err else { panic!("{err}") };
    assert_eq!(errors[0].code, "end-not-before-start");
    assert!(svc.cases_of("p005", 10).unwrap().is_empty());
    assert!(svc.inbox("p003", None, 10).unwrap().entries.is_empty());
}

#[test]
fn thirty_two_approvers_acting_on_one_step_at_once_exactly_one_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = Arc::new(service(tmp.path(), &shipped_workflow()));
    let id = svc
        .submit("p005", "absence-and-annual-leave", &leave("2026-03-09", "2026-03-10"), sig("p005", Level::Advanced), at("2026-03-02T09:00"), None, Lang::En)
        .unwrap()
        .case
        .id;
    svc.act(&id, approve("p003", "supervisor", "2026-03-02T10:00"), None).unwrap();
    let before = svc.events(&id).unwrap().len();
    // The HR step is one seat offered to three officers; 32 tasks race to sign it.
    let barrier = Arc::new(Barrier::new(32));
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let (svc, id, barrier) = (svc.clone(), id.clone(), barrier.clone());
            std::thread::spawn(move || {
                let who = ["p018", "p019", "p020"][i % 3];
                let req = ActRequest {
                    actor: who.into(),
                    step: "hr-records".into(),
                    action: Action::Sign,
                    comment: None,
                    signature: sig(who, Level::Simple),
                    now: at("2026-03-02T11:00"),
                };
                barrier.wait();
                svc.act(&id, req, None)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        // Losers either lost the race at the store or read the case after the winner.
        assert!(
            matches!(
                r,
                CaseError::Store(StoreError::Conflict { .. })
                    | CaseError::Workflow(WorkflowError::CaseNotOpen(_))
                    | CaseError::Workflow(WorkflowError::StepNotOpen(_))
            ),
            "{r}"
        );
    }
    let events = svc.events(&id).unwrap();
    let acted = events[before..].iter().filter(|e| e.body["type"] == "acted").count();
    assert_eq!(acted, 1);
    svc.store().verify_case(&id).unwrap();
}

fn submit_key(key: &str, data: &Value) -> Idempotency {
    Idempotency::for_submit(key, "p005", "absence-and-annual-leave", data).unwrap()
}

fn act_key(key: &str, req: &ActRequest) -> Idempotency {
    Idempotency::for_act(key, &req.actor, &req.step, req.action.as_str(), req.comment.as_deref()).unwrap()
}

#[test]
fn resending_an_act_with_the_same_idempotency_key_appends_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = service(tmp.path(), &shipped_workflow());
    let data = leave("2026-03-09", "2026-03-10");
    let first = svc
        .submit(
            "p005",
            "absence-and-annual-leave",
            &data,
            sig("p005", Level::Advanced),
            at("2026-03-02T09:00"),
            Some(&submit_key("form-7f3a", &data)),
            Lang::En,
        )
        .unwrap();
    let again = svc
        .submit(
            "p005",
            "absence-and-annual-leave",
            &data,
            sig("p005", Level::Advanced),
            at("2026-03-02T09:01"),
            Some(&submit_key("form-7f3a", &data)),
            Lang::En,
        )
        .unwrap();
    assert!(again.replayed);
    assert_eq!(first.case.id, again.case.id);
    assert_eq!(svc.cases_of("p005", 10).unwrap().len(), 1);

    let id = first.case.id;
    let req = approve("p003", "supervisor", "2026-03-02T10:00");
    let a = svc.act(&id, req.clone(), Some(&act_key("click-1", &req))).unwrap();
    let n = svc.events(&id).unwrap().len();
    let b = svc.act(&id, req.clone(), Some(&act_key("click-1", &req))).unwrap();
    assert!(!a.replayed && b.replayed);
    assert_eq!(svc.events(&id).unwrap().len(), n);
}

#[test]
fn a_key_answers_only_the_act_it_was_made_for_so_another_persons_act_with_it_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = service(tmp.path(), &shipped_workflow());
    let data = leave("2026-03-09", "2026-03-10");
    let id = svc
        .submit("p005", "absence-and-annual-leave", &data, sig("p005", Level::Advanced), at("2026-03-02T09:00"), Some(&submit_key("k", &data)), Lang::En)
        .unwrap()
        .case
        .id;
    let supervisor = approve("p003", "supervisor", "2026-03-02T10:00");
    assert!(!svc.act(&id, supervisor.clone(), Some(&act_key("k", &supervisor))).unwrap().replayed);
    // HR reuses the supervisor's key for its own act: that is a new act, recorded as such.
    let hr = ActRequest {
        actor: "p019".into(),
        step: "hr-records".into(),
        action: Action::Sign,
        comment: None,
        signature: sig("p019", Level::Simple),
        now: at("2026-03-02T11:00"),
    };
    let n = svc.events(&id).unwrap().len();
    let view = svc.act(&id, hr.clone(), Some(&act_key("k", &hr))).unwrap();
    assert!(!view.replayed, "HR's act must not be answered with the supervisor's");
    assert!(svc.events(&id).unwrap().len() > n);
    assert_eq!(view.case.status, CaseStatus::Completed);
    assert!(svc.events(&id).unwrap().iter().any(|e| e.body["actor"] == "p019"));
}

#[test]
fn the_same_key_with_another_request_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = service(tmp.path(), &shipped_workflow());
    let data = leave("2026-03-09", "2026-03-10");
    let id = svc
        .submit("p005", "absence-and-annual-leave", &data, sig("p005", Level::Advanced), at("2026-03-02T09:00"), Some(&submit_key("k", &data)), Lang::En)
        .unwrap()
        .case
        .id;
    // Submit again with the same key and other dates: refused, not the first case back.
    let other = leave("2026-03-16", "2026-03-20");
    let e = svc
        .submit("p005", "absence-and-annual-leave", &other, sig("p005", Level::Advanced), at("2026-03-02T09:01"), Some(&submit_key("k", &other)), Lang::En)
        .unwrap_err();
    assert!(matches!(e, CaseError::IdempotencyMismatch(_)), "{e}");
    assert_eq!((e.code(), e.status()), ("CARIMBO-E0410", 422));
    assert_eq!(svc.cases_of("p005", 10).unwrap().len(), 1);
    assert_eq!(svc.case(&id).unwrap().data["end_date"], json!("2026-03-10"));

    // An act: same person, step and action, another comment.
    let mut req = approve("p003", "supervisor", "2026-03-02T10:00");
    svc.act(&id, req.clone(), Some(&act_key("a", &req))).unwrap();
    let n = svc.events(&id).unwrap().len();
    req.comment = Some("approved, but see me".into());
    let e = svc.act(&id, req.clone(), Some(&act_key("a", &req))).unwrap_err();
    assert!(matches!(e, CaseError::IdempotencyMismatch(_)), "{e}");
    assert_eq!(svc.events(&id).unwrap().len(), n);
    assert!(svc.replay_of(&id, Some(&act_key("a", &req))).is_err());
}

#[test]
fn a_definition_changed_while_cases_are_open_leaves_them_on_their_version_even_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let v1 = shipped_workflow();
    let old_id;
    {
        let svc = service(tmp.path(), &v1);
        old_id = svc
            .submit(
                "p005",
                "absence-and-annual-leave",
                &leave("2026-03-09", "2026-03-20"),
                sig("p005", Level::Advanced),
                at("2026-03-02T09:00"),
                None,
                Lang::En,
            )
            .unwrap()
            .case
            .id;
        // Version 2 drops the head's step.
        let mut v2 = v1.clone();
        v2["version"] = json!("2.0.0");
        v2["steps"].as_array_mut().unwrap().remove(1);
        svc.load_catalog(catalog_with_workflow(&v2)).unwrap();

        let new_id = svc
            .submit(
                "p006",
                "absence-and-annual-leave",
                &leave("2026-03-09", "2026-03-20"),
                sig("p006", Level::Advanced),
                at("2026-03-02T09:30"),
                None,
                Lang::En,
            )
            .unwrap()
            .case
            .id;
        svc.act(&new_id, approve("p003", "supervisor", "2026-03-02T10:00"), None).unwrap();
        let new_case = svc.case(&new_id).unwrap();
        assert_eq!(new_case.workflow.version, "2.0.0");
        assert!(!new_case.steps.contains_key("head"), "new cases follow version 2");
    }
    // Restart with only version 2 on disk: the old case still follows version 1 from the store.
    let mut v2 = v1.clone();
    v2["version"] = json!("2.0.0");
    v2["steps"].as_array_mut().unwrap().remove(1);
    let svc = service(tmp.path(), &v2);
    svc.act(&old_id, approve("p003", "supervisor", "2026-03-02T10:00"), None).unwrap();
    let old = svc.case(&old_id).unwrap();
    assert_eq!(old.workflow.version, "1.0.0");
    assert_eq!(old.steps["head"].seats[0].people, ["p002"], "version 1's head step still runs for the old case");
    // The old submission is readable with all its fields.
    assert_eq!(old.data["end_date"], "2026-03-20");
    assert_eq!(old.data["working_days"], 10);
    assert!(svc.store().definition(&old.workflow.hash).unwrap().is_some());
}

#[test]
fn escalation_after_a_deadline_reaches_the_inbox_of_the_escalation_target() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = service(tmp.path(), &shipped_workflow());
    let id = svc
        .submit("p005", "absence-and-annual-leave", &leave("2026-03-16", "2026-03-17"), sig("p005", Level::Advanced), at("2026-03-02T09:00"), None, Lang::En)
        .unwrap()
        .case
        .id;
    assert!(svc.tick(&id, at("2026-03-03T09:00")).unwrap().is_none());
    assert!(svc.tick(&id, at("2026-03-04T09:00")).unwrap().is_some(), "reminder");
    assert!(svc.inbox("p002", None, 10).unwrap().entries.is_empty());
    svc.tick(&id, at("2026-03-05T09:00")).unwrap().expect("escalation");
    assert_eq!(svc.inbox("p002", None, 10).unwrap().entries.len(), 1);
    let events = svc.events(&id).unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.body["type"].as_str().unwrap()).collect();
    assert!(kinds.ends_with(&["reminded", "escalated"]), "{kinds:?}");
    let last: CaseEvent = serde_json::from_value(events.last().unwrap().body.clone()).unwrap();
    assert!(matches!(last, CaseEvent::Escalated { added, .. } if added == ["p002"]));
}

#[test]
fn a_round_of_deadlines_reminds_and_escalates_every_open_case_once_and_leaves_finished_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = service(tmp.path(), &shipped_workflow());
    let submit = |who: &str, start: &str, end: &str| {
        svc.submit(who, "absence-and-annual-leave", &leave(start, end), sig(who, Level::Advanced), at("2026-03-02T09:00"), None, Lang::En).unwrap().case.id
    };
    let open: Vec<String> = (0..3).map(|_| submit("p005", "2026-03-16", "2026-03-17")).collect();
    let withdrawn = submit("p006", "2026-03-23", "2026-03-24");
    svc.withdraw(&withdrawn, "p006", None, at("2026-03-02T10:00"), None).unwrap();
    let before = svc.events(&withdrawn).unwrap().len();

    let quiet = svc.tick_all(at("2026-03-03T09:00")).unwrap();
    assert_eq!((quiet.open_cases, quiet.changed, quiet.failed), (3, 0, 0), "nothing is due yet");
    let round = svc.tick_all(at("2026-03-05T09:00")).unwrap();
    assert_eq!((round.open_cases, round.changed, round.failed), (3, 3, 0), "{round:?}");
    assert_eq!(svc.inbox("p002", None, 10).unwrap().entries.len(), 3, "the head now holds all three");
    for id in &open {
        let kinds: Vec<String> = svc.events(id).unwrap().iter().map(|e| e.body["type"].as_str().unwrap().to_string()).collect();
        assert!(kinds.ends_with(&["reminded".to_string(), "escalated".to_string()]), "{kinds:?}");
    }
    let again = svc.tick_all(at("2026-03-05T10:00")).unwrap();
    assert_eq!(again.changed, 0, "a second round at the same point appends nothing");
    assert_eq!(svc.events(&withdrawn).unwrap().len(), before, "a withdrawn case is not touched");
}

#[test]
fn the_service_routes_on_the_forms_settings_and_escalates_after_working_days_from_the_calendar() {
    let tmp = tempfile::tempdir().unwrap();
    let mut workflow = shipped_workflow();
    // The head decides above the form's setting (3 days); the supervisor has 3 working days.
    workflow["steps"][1]["when"] = json!({">": [{"var": "working_days"}, {"var": "settings.sick_leave_days_without_certificate"}]});
    workflow["steps"][0]["deadline"] = json!({"working_days": 3, "remind_after_days": 2, "escalate_to": {"role": "head"}});
    let svc = service(tmp.path(), &workflow);
    let submit = |start: &str, end: &str| {
        svc.submit("p005", "absence-and-annual-leave", &leave(start, end), sig("p005", Level::Advanced), at("2026-03-06T09:00"), None, Lang::En)
            .unwrap()
            .case
            .id
    };
    let (short, long) = (submit("2026-03-16", "2026-03-18"), submit("2026-03-16", "2026-03-19"));
    for (id, head_opens) in [(&short, false), (&long, true)] {
        let view = svc.act(id, approve("p003", "supervisor", "2026-03-06T10:00"), None).unwrap();
        assert_eq!(view.case.steps.get("head").map(|s| s.status == carimbo::workflow::StepStatus::Open), Some(head_opens), "{id}");
    }
    // Opened on Friday 6 March at 09:00: no escalation over the weekend or on Tuesday, one on
    // Wednesday 11 March at 09:00 (3 working days), a reminder on Tuesday first.
    let third = submit("2026-03-23", "2026-03-24");
    let report = svc.tick_all(at("2026-03-09T09:00")).unwrap();
    assert_eq!(report.changed, 0, "{report:?}");
    svc.tick_all(at("2026-03-10T09:00")).unwrap();
    let types = |id: &str| svc.events(id).unwrap().iter().map(|e| e.body["type"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>();
    assert!(types(&third).contains(&"reminded".to_string()) && !types(&third).contains(&"escalated".to_string()), "{:?}", types(&third));
    svc.tick_all(at("2026-03-11T08:59")).unwrap();
    assert!(!types(&third).contains(&"escalated".to_string()));
    svc.tick_all(at("2026-03-11T09:00")).unwrap();
    assert!(types(&third).contains(&"escalated".to_string()), "{:?}", types(&third));
}

#[test]
fn a_case_kept_from_its_last_act_is_the_case_its_stored_events_replay_to_and_another_servers_act_is_seen() {
    // The medical certificate has a restricted field (the diagnosis code): its disclosure and
    // commitment must survive being kept as well as being read back.
    let tmp = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(tmp.path()).unwrap());
    let catalog = || common::shipped().catalog;
    let svc = CaseService::new(store.clone(), catalog(), common::directory()).unwrap();
    let form = common::read_json(&common::repo().join("forms/medical-certificate.json"));
    let data = form["examples"]["valid"][0]["data"].clone();
    let view = svc.submit("doc01", "medical-certificate", &data, sig("doc01", Level::Qualified), at("2026-03-02T09:00"), None, Lang::En).unwrap();
    let id = view.case.id.clone();
    let hr = svc.inbox("p019", None, 10).unwrap().entries;
    assert_eq!(hr.len(), 1, "the HR records step waits for p019");
    let kept = svc.case(&id).unwrap();
    // A second service on the same store has kept nothing: it reads and replays the events.
    let other = CaseService::new(store.clone(), catalog(), common::directory()).unwrap();
    let read = other.case(&id).unwrap();
    assert_eq!(kept, read, "the kept case is exactly the replay of the stored events");
    assert_eq!(kept.disclosures, read.disclosures);
    assert_eq!(kept.committed_data(), read.committed_data());

    // The other server signs the step; the first one sees it, not the copy it kept.
    let signed = ActRequest {
        actor: "p019".into(),
        step: "hr-records".into(),
        action: Action::Sign,
        comment: None,
        signature: sig("p019", Level::Advanced),
        now: at("2026-03-02T10:00"),
    };
    other.act(&id, signed, None).unwrap();
    let now_seen = svc.case(&id).unwrap();
    assert_eq!(now_seen.status, CaseStatus::Completed);
    assert_eq!(now_seen, other.case(&id).unwrap());
}
