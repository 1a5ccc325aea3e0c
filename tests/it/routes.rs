//! Every one of the 18 routes, driven from submission to its end through the pure engine:
//! for each row, the form's own valid example is submitted by a person with the right role, every
//! open seat is taken by its first person with the level the step demands, and the steps must open
//! (or be skipped) in the order the table gives.

use crate::common;

use carimbo::catalog::Catalog;
use carimbo::directory::Directory;
use carimbo::forms::ValidationContext;
use carimbo::i18n::Lang;
use carimbo::workflow::{ActRequest, Action, Case, CaseEvent, CaseStatus, Engine};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use common::sig;
use serde_json::Value;

struct Route {
    form: &'static str,
    submitter: &'static str,
    /// Which valid example to submit, and changes to its data (JSON pointer → value).
    example: usize,
    changes: &'static [(&'static str, &'static str)],
    /// Steps in the order they open; `-name` for a step skipped by its condition.
    expect: &'static [&'static str],
}

const ROUTES: &[Route] = &[
    Route { form: "absence-and-annual-leave", submitter: "p005", example: 0, changes: &[], expect: &["supervisor", "-head", "hr-records"] },
    Route {
        form: "absence-and-annual-leave",
        submitter: "p005",
        example: 0,
        changes: &[("/end_date", "\"2026-03-20\"")],
        expect: &["supervisor", "head", "hr-records"],
    },
    Route { form: "health-fitness-certificate", submitter: "doc01", example: 0, changes: &[], expect: &["hr-records"] },
    Route { form: "non-accumulation-declaration", submitter: "p021", example: 0, changes: &[], expect: &["hr-notes", "head"] },
    Route { form: "appointment-instrument", submitter: "p018", example: 0, changes: &[], expect: &["authority", "appointee"] },
    Route { form: "administrative-appointment-contract", submitter: "p018", example: 0, changes: &[], expect: &["signatures"] },
    Route { form: "employment-contract", submitter: "p019", example: 0, changes: &[], expect: &["signatures"] },
    Route { form: "oath-of-office", submitter: "p031", example: 0, changes: &[], expect: &["authority", "hr-records"] },
    Route { form: "recruitment-application", submitter: "cand01", example: 0, changes: &[], expect: &["hr-admission"] },
    Route { form: "lost-salary-recovery", submitter: "p005", example: 0, changes: &[], expect: &["supervisor", "head", "hr-records"] },
    Route { form: "medical-certificate", submitter: "doc02", example: 0, changes: &[], expect: &["hr-records"] },
    Route { form: "work-accident-report", submitter: "p003", example: 0, changes: &[], expect: &["witnesses", "head", "hr-records"] },
    Route { form: "work-accident-report", submitter: "p016", example: 1, changes: &[], expect: &["-witnesses", "head", "hr-records"] },
    Route { form: "work-accident-medical-exam", submitter: "doc01", example: 0, changes: &[], expect: &["hr-records"] },
    Route { form: "housing-marriage-birth-allowance", submitter: "p021", example: 0, changes: &[], expect: &["supervisor", "hr-check", "head"] },
    Route { form: "family-allowance", submitter: "p032", example: 0, changes: &[], expect: &["hr-check", "head"] },
    Route { form: "daily-and-departure-allowance", submitter: "p033", example: 0, changes: &[], expect: &["supervisor", "head", "hr-records", "accounts"] },
    Route { form: "daily-and-departure-allowance", submitter: "p033", example: 1, changes: &[], expect: &["supervisor", "-head", "hr-records", "accounts"] },
    Route { form: "special-leave", submitter: "p022", example: 0, changes: &[], expect: &["supervisor", "head", "hr-records"] },
    Route { form: "reporting-for-duty", submitter: "p020", example: 0, changes: &[], expect: &["receiving-hr"] },
    Route { form: "official-trip-report", submitter: "p036", example: 0, changes: &[], expect: &["supervisor", "head"] },
];

fn example(form: &str, index: usize) -> (Value, Value) {
    // The shipped forms, or a worked example of docs/examples.
    let shipped = common::repo().join(format!("forms/{form}.json"));
    let path = if shipped.exists() { shipped } else { common::repo().join(format!("docs/examples/{form}.form.json")) };
    let def = common::read_json(&path);
    let ex = &def["examples"];
    let e = &ex["valid"][index];
    let mut ctx = ex["context"].clone();
    if let Some(Value::Object(o)) = e.get("context") {
        for (k, v) in o {
            ctx[k] = v.clone();
        }
    }
    (e["data"].clone(), ctx)
}

fn drive(route: &Route, catalog: &Catalog, dir: &Directory) -> Result<Vec<String>, String> {
    let form = catalog.form(route.form).ok_or("form not loaded")?;
    let wf = catalog.workflow(&form.workflow).ok_or("workflow not loaded")?;
    let (mut data, ctx) = example(route.form, route.example);
    for (ptr, v) in route.changes {
        *data.pointer_mut(ptr).ok_or(format!("no {ptr}"))? = serde_json::from_str(v).unwrap();
    }
    let today = NaiveDate::parse_from_str(ctx["today"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let mut now: DateTime<Utc> = today.and_hms_opt(1, 0, 0).unwrap().and_utc();
    // The example's applicant facts stand in for the directory's, so the example's own rules hold.
    // The example's context (its applicant facts standing in for the directory's) so the
    // example's own rules hold.
    let sub = form.validate(&data, &ValidationContext::from_value(&ctx)?, Lang::En).map_err(|e| format!("{e:?}"))?;
    // The engine records restricted fields as salted commitments; the service gives the salts.
    let sub = sub.with_salts(|_| "routes-test-salt-00000".to_string());
    // Conditions read the pinned form's settings, as the case service gives them.
    let engine = Engine::new(wf, dir).with_settings(&form.settings);
    let mut events = engine.open_case("case", &sub, route.submitter, sig(route.submitter, wf.submit_signature), now).map_err(|e| e.to_string())?;
    let mut case = Case::replay(&events).unwrap();
    let mut order = Vec::new();
    let mut seen = 0;
    for _ in 0..50 {
        for e in &events[seen..] {
            match e {
                CaseEvent::StepOpened { step, .. } => order.push(step.clone()),
                CaseEvent::StepSkipped { step, .. } => order.push(format!("-{step}")),
                _ => {}
            }
        }
        seen = events.len();
        if case.status != CaseStatus::Open {
            break;
        }
        let Some(a) = engine.assignments(&case, now).into_iter().next() else { return Err("open case with nobody assigned".into()) };
        let step = wf.step(&a.step).unwrap();
        let action = *step.actions.iter().find(|x| x.is_positive()).unwrap_or(&Action::Approve);
        now += Duration::minutes(5);
        // Steps that demand a second factor get one (the TOTP check itself is the server's).
        let mut signature = sig(&a.person, step.signature);
        signature.second_factor = step.second_factor;
        let req = ActRequest { actor: a.person.clone(), step: a.step.clone(), action, comment: None, signature, now };
        let new = engine.act(&case, req).map_err(|e| format!("{} on {}: {e}", a.person, a.step))?;
        for e in &new {
            case.apply(e).unwrap();
        }
        events.extend(new);
    }
    if case.status != CaseStatus::Completed {
        return Err(format!("ended {:?}", case.status));
    }
    Ok(order)
}

#[test]
fn every_form_routes_from_submission_to_completion_as_its_workflow_says() {
    let dir = common::directory();
    let report = Catalog::load_paths_with(&[common::repo().join("forms"), common::repo().join("workflows")], Some(&dir));
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    let mut failures = Vec::new();
    let mut forms_covered = std::collections::BTreeSet::new();
    for route in ROUTES {
        match drive(route, &report.catalog, &dir) {
            Ok(order) if order == route.expect => {
                forms_covered.insert(route.form);
            }
            Ok(order) => failures.push(format!("{} by {}: opened {order:?}, expected {:?}", route.form, route.submitter, route.expect)),
            Err(e) => failures.push(format!("{} by {}: {e}", route.form, route.submitter)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(forms_covered.len(), 18, "every form has a route row");
}

#[test]
fn the_overtime_claim_goes_to_the_head_only_above_twenty_hours() {
    let dir = common::directory();
    let report = Catalog::load_paths_with(&[common::repo().join("forms/reference"), common::repo().join("docs/examples")], Some(&dir));
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    for (example, expect) in [(0, &["supervisor", "-head", "hr-records"]), (2, &["supervisor", "head", "hr-records"])] {
        let route = Route { form: "overtime-claim", submitter: "p006", example, changes: &[], expect };
        assert_eq!(drive(&route, &report.catalog, &dir).unwrap(), route.expect, "example {example}");
    }
}
