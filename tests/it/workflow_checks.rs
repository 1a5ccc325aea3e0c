//! `carimbo check` on broken workflows: each mistake reported at its pointer, nothing loads.

use crate::common;

use carimbo::catalog::{Catalog, SourceFile};
use serde_json::{Value, json};

fn leave_workflow() -> Value {
    common::read_json(&common::repo().join("workflows/absence-and-annual-leave.json"))
}

fn problems_of(workflow: &Value) -> Vec<String> {
    let mut sources = common::reference_sources();
    sources.push(SourceFile::new("forms/absence-and-annual-leave.json", std::fs::read(common::repo().join("forms/absence-and-annual-leave.json")).unwrap()));
    sources.push(SourceFile::new("workflows/absence-and-annual-leave.json", serde_json::to_vec(workflow).unwrap()));
    let report = Catalog::load_sources_with(&sources, Some(&common::directory()));
    assert!(report.catalog.workflow("absence-and-annual-leave").is_none() || report.problems.is_empty());
    common::lines(&report)
}

fn assert_reported(lines: &[String], needle: &str) {
    assert!(lines.iter().any(|l| l.contains(needle)), "expected {needle:?} in:\n{}", lines.join("\n"));
}

#[test]
fn the_shipped_leave_workflow_is_clean() {
    assert_eq!(problems_of(&leave_workflow()), Vec::<String>::new());
}

#[test]
fn unknown_roles_groups_actions_and_levels_are_refused() {
    let mut w = leave_workflow();
    w["steps"][0]["assignee"] = json!({"role": "boss"});
    w["steps"][1]["assignee"] = json!({"group": "finance"});
    w["steps"][2]["actions"] = json!(["sign", "stamp"]);
    w["steps"][2]["signature"] = json!("notarial");
    w["submitted_by"] = json!(["staff", "contractor"]);
    let lines = problems_of(&w);
    assert_reported(&lines, ":/steps/0/assignee/role: unknown role \"boss\"");
    assert_reported(&lines, ":/steps/1/assignee/group: unknown group \"finance\"; the directory has: accounts, authority, hr");
    assert_reported(&lines, ":/steps/2/actions/1: unknown action \"stamp\"");
    assert_reported(&lines, ":/steps/2/signature: unknown signature level \"notarial\"");
    assert_reported(&lines, ":/submitted_by/1: unknown role \"contractor\"");
}

#[test]
fn a_condition_naming_a_missing_field_is_refused() {
    let mut w = leave_workflow();
    w["steps"][1]["when"] = json!({">": [{"var": "days"}, 5]});
    assert_reported(&problems_of(&w), ":/steps/1/when/>/0/var: reads \"days\", which is not a field of form \"absence-and-annual-leave\"");
}

#[test]
fn steps_that_can_never_run_are_refused() {
    let mut w = leave_workflow();
    w["steps"][1]["when"] = json!(false);
    w["steps"][0]["actions"] = json!(["reject", "return"]);
    let lines = problems_of(&w);
    assert_reported(&lines, ":/steps/1/when: step \"head\" can never run: its condition is always false");
    assert_reported(&lines, ":/steps/1/after: step \"head\" is unreachable: \"supervisor\" allows neither sign nor approve");
}

#[test]
fn a_cycle_between_steps_is_refused() {
    let mut w = leave_workflow();
    w["steps"][0]["after"] = json!(["hr-records"]);
    assert_reported(&problems_of(&w), "wait for each other in a cycle");
}

#[test]
fn after_naming_an_unknown_step_is_refused() {
    let mut w = leave_workflow();
    w["steps"][2]["after"] = json!(["director"]);
    assert_reported(&problems_of(&w), ":/steps/2/after: step \"hr-records\" runs after \"director\", which is not a step");
}

#[test]
fn a_quorum_larger_than_its_group_is_refused() {
    let mut w = leave_workflow();
    w["steps"][0] = json!({"id": "supervisor", "title": {"zh": "a", "pt": "a", "en": "a"},
        "members": [{"id": "a", "assignee": {"role": "supervisor"}}, {"id": "b", "assignee": {"role": "head"}}],
        "complete_when": {"quorum": 3}, "actions": ["approve"], "signature": "advanced"});
    assert_reported(&problems_of(&w), ":/steps/0/complete_when/quorum: a quorum of 3 is larger than the step's 2 seat(s)");
}

#[test]
fn a_workflow_for_a_missing_form_or_a_form_routed_elsewhere_is_refused() {
    let mut w = leave_workflow();
    w["form"] = json!("special-leave");
    assert_reported(&problems_of(&w), ":/form: no form with id \"special-leave\"");
}

#[test]
fn duplicate_step_ids_and_bad_deadlines_are_refused() {
    let mut w = leave_workflow();
    w["steps"][1]["id"] = json!("supervisor");
    w["steps"][2]["deadline"] = json!({"days": 2, "remind_after_days": 4, "escalate_to": {"role": "head"}});
    let lines = problems_of(&w);
    assert_reported(&lines, ":/steps/1/id: step id \"supervisor\" is already used by /steps/0");
    assert_reported(&lines, ":/steps/2/deadline/remind_after_days: the reminder must come");
}

#[test]
fn a_condition_on_a_restricted_field_is_refused_because_a_record_without_it_could_not_be_replayed() {
    let mut w = common::read_json(&common::repo().join("workflows/medical-certificate.json"));
    w["steps"][0]["when"] = json!({"!!": {"var": "diagnosis_code"}});
    let mut sources = common::reference_sources();
    sources.push(SourceFile::new("forms/medical-certificate.json", std::fs::read(common::repo().join("forms/medical-certificate.json")).unwrap()));
    sources.push(SourceFile::new("workflows/medical-certificate.json", serde_json::to_vec(&w).unwrap()));
    let report = Catalog::load_sources_with(&sources, Some(&common::directory()));
    assert!(report.catalog.workflow("medical-certificate").is_none(), "the workflow is not loaded");
    assert_reported(&common::lines(&report), ":/steps/0/when/!!/var: reads \"diagnosis_code\", a restricted field of form \"medical-certificate\"");
}

fn accident_problems(conflict_of_interest: Value) -> Vec<String> {
    let mut w = common::read_json(&common::repo().join("workflows/work-accident-report.json"));
    w["conflict_of_interest"] = conflict_of_interest;
    let mut sources = common::reference_sources();
    sources.push(SourceFile::new("forms/work-accident-report.json", std::fs::read(common::repo().join("forms/work-accident-report.json")).unwrap()));
    sources.push(SourceFile::new("workflows/work-accident-report.json", serde_json::to_vec(&w).unwrap()));
    let report = Catalog::load_sources_with(&sources, Some(&common::directory()));
    if !report.problems.is_empty() {
        assert!(report.catalog.workflow("work-accident-report").is_none(), "a workflow with problems is not loaded");
    }
    common::lines(&report)
}

#[test]
fn the_shipped_accident_workflow_declares_its_witnesses_as_parties() {
    let lines = accident_problems(json!({"parties": [{"field": "witnesses.*.staff_id"}], "on_conflict": "reassign"}));
    assert_eq!(lines, Vec::<String>::new());
    let report = common::shipped();
    let wf = report.catalog.workflow("work-accident-report").unwrap();
    assert_eq!(wf.conflict_of_interest.parties, ["witnesses.*.staff_id"]);
    let explained = wf.explain_conflicts().join("\n");
    assert!(explained.contains("step witnesses: deciding; parties are kept off except on the seat of {\"field\": \"witnesses.*.staff_id\"}"), "{explained}");
    assert!(explained.contains("step head: deciding; every party is kept off"), "{explained}");
}

#[test]
fn a_party_field_the_form_does_not_have_is_refused_at_its_pointer() {
    let lines = accident_problems(json!({"parties": [{"field": "witnesses.*.staff_id"}, {"field": "witness_ids.*"}]}));
    assert_reported(
        &lines,
        "workflows/work-accident-report.json:/conflict_of_interest/parties/1/field: party field \"witness_ids.*\" is not a field of form \"work-accident-report\"",
    );
    assert_reported(&lines, "[CARIMBO-E0034]");
}

#[test]
fn a_party_field_that_holds_a_group_of_fields_is_refused_with_the_field_to_name() {
    let lines = accident_problems(json!({"parties": [{"field": "witnesses.*"}]}));
    assert_reported(
        &lines,
        ":/conflict_of_interest/parties/0/field: party field \"witnesses.*\" of form \"work-accident-report\" is a group of fields, not a person id",
    );
    assert_reported(&lines, "[CARIMBO-E0035]");
    assert_reported(
        &accident_problems(json!({"parties": [{"field": "victim"}]})),
        ":/conflict_of_interest/parties/0/field: party field \"victim\" of form \"work-accident-report\" is a group of fields",
    );
}

#[test]
fn the_subject_field_or_a_repeated_party_is_refused() {
    let lines = accident_problems(json!({"parties": [{"field": "victim.staff_id"}, {"field": "witnesses.*.staff_id"}, {"field": "witnesses.*.staff_id"}]}));
    assert_reported(
        &lines,
        ":/conflict_of_interest/parties/0/field: \"victim.staff_id\" is the subject's field, and the subject is always a party: leave it out [CARIMBO-E0036]",
    );
    assert_reported(&lines, ":/conflict_of_interest/parties/2/field: party field \"witnesses.*.staff_id\" is listed twice [CARIMBO-E0036]");
}

#[test]
fn an_unknown_conflict_policy_key_or_shape_is_refused() {
    let lines = accident_problems(json!({"parties": [], "on_conflict": "ask"}));
    assert_reported(&lines, ":/conflict_of_interest/on_conflict: \"on_conflict\" must be \"skip\"");
    assert_reported(&lines, "[CARIMBO-E0037]");
    assert_reported(
        &accident_problems(json!({"parties": [], "witnesses": true})),
        ":/conflict_of_interest/witnesses: unknown key \"witnesses\"; expected one of: parties, on_conflict, description [CARIMBO-E0010]",
    );
    assert_reported(&accident_problems(json!({"on_conflict": "skip"})), ":/conflict_of_interest");
    assert_reported(&accident_problems(json!({"parties": [{"field": "witnesses.*.staff_id", "role": "witness"}]})), ":/conflict_of_interest/parties/0");
    assert_reported(&accident_problems(json!(["witnesses.*.staff_id"])), ":/conflict_of_interest");
}

#[test]
fn a_party_field_inside_a_restricted_field_is_refused() {
    let mut w = common::read_json(&common::repo().join("workflows/medical-certificate.json"));
    w["conflict_of_interest"] = json!({"parties": [{"field": "diagnosis_code"}]});
    let mut sources = common::reference_sources();
    sources.push(SourceFile::new("forms/medical-certificate.json", std::fs::read(common::repo().join("forms/medical-certificate.json")).unwrap()));
    sources.push(SourceFile::new("workflows/medical-certificate.json", serde_json::to_vec(&w).unwrap()));
    let report = Catalog::load_sources_with(&sources, Some(&common::directory()));
    assert!(report.catalog.workflow("medical-certificate").is_none());
    assert_reported(
        &common::lines(&report),
        "workflows/medical-certificate.json:/conflict_of_interest/parties/0/field: party field \"diagnosis_code\" is inside the restricted field \"diagnosis_code\"",
    );
    assert_reported(&common::lines(&report), "[CARIMBO-E0038]");
}

// ---- every file checked as far as it can be; settings; working days; the applicant ----

fn report_of(form: &Value, workflow: &Value) -> carimbo::catalog::LoadReport {
    let mut sources = common::reference_sources();
    sources.push(SourceFile::new("forms/absence-and-annual-leave.json", serde_json::to_vec(form).unwrap()));
    sources.push(SourceFile::new("workflows/absence-and-annual-leave.json", serde_json::to_vec(workflow).unwrap()));
    Catalog::load_sources_with(&sources, Some(&common::directory()))
}

#[test]
fn a_workflow_whose_form_has_problems_is_still_checked_against_what_of_it_could_be_read() {
    let mut form = common::leave_form();
    form["labels"]["reason"].as_object_mut().unwrap().remove("pt");
    let mut w = leave_workflow();
    w["steps"][2]["assignee"] = json!({"group": "hrr"});
    w["steps"][0]["when"] = json!({"==": [{"var": "leave_kind"}, "annual"]});
    let report = report_of(&form, &w);
    let lines = common::lines(&report);
    assert_reported(&lines, "forms/absence-and-annual-leave.json:/labels/reason: missing the Portuguese text");
    assert_reported(&lines, "workflows/absence-and-annual-leave.json:/steps/2/assignee/group: unknown group \"hrr\"");
    assert_reported(&lines, "workflows/absence-and-annual-leave.json:/steps/0/when/==/0/var: reads \"leave_kind\"");
    // The form's problem is said once, in the form's file: nothing about it against the workflow.
    assert!(!lines.iter().any(|l| l.starts_with("workflows/") && l.contains(":/form:")), "{lines:?}");
    assert!(report.catalog.workflows.is_empty() && report.catalog.forms.is_empty());
    // With only the form broken, the workflow has no problem of its own (and does not load).
    let report = report_of(&form, &leave_workflow());
    assert!(common::lines(&report).iter().all(|l| l.starts_with("forms/")), "{:?}", common::lines(&report));
}

#[test]
fn too_few_examples_do_not_stop_the_other_examples_from_running() {
    let mut form = common::leave_form();
    let first = form["examples"]["valid"][0].clone();
    form["examples"]["valid"] = json!([first]);
    form["examples"]["valid"][0]["data"]["end_date"] = json!("2026-03-01");
    let lines = common::lines(&report_of(&form, &leave_workflow()));
    assert_reported(&lines, ":/examples/valid: at least 2 valid examples are needed, found 1");
    assert_reported(&lines, ":/examples/valid/0: valid example");
}

#[test]
fn a_condition_may_read_the_forms_settings_and_an_unknown_setting_is_refused() {
    let mut w = leave_workflow();
    w["steps"][1]["when"] = json!({">": [{"var": "working_days"}, {"var": "settings.sick_leave_days_without_certificate"}]});
    assert_eq!(problems_of(&w), Vec::<String>::new());
    w["steps"][1]["when"] = json!({">": [{"var": "working_days"}, {"var": "settings.head_threshold_hours"}]});
    let lines = problems_of(&w);
    assert_reported(
        &lines,
        ":/steps/1/when/>/1/var: reads \"settings.head_threshold_hours\", but form \"absence-and-annual-leave\" has no such setting (it has sick_leave_days_without_certificate) [CARIMBO-E0082]",
    );
}

#[test]
fn a_working_day_deadline_needs_a_loaded_calendar_and_one_kind_of_days() {
    let mut w = leave_workflow();
    w["steps"][0]["deadline"] = json!({"working_days": 3, "remind_after_days": 2, "escalate_to": {"role": "head"}});
    assert_eq!(problems_of(&w), Vec::<String>::new());
    w["steps"][0]["deadline"] = json!({"working_days": 3, "calendar": "lisbon-holidays"});
    assert_reported(&problems_of(&w), ":/steps/0/deadline/calendar: no holiday calendar \"lisbon-holidays\" is loaded (macau-public-holidays) [CARIMBO-E0083]");
    w["steps"][0]["deadline"] = json!({"working_days": 3, "days": 3});
    assert_reported(&problems_of(&w), ":/steps/0/deadline: a deadline has exactly one of \"days\"");
    w["steps"][0]["deadline"] = json!({"days": 3, "calendar": "macau-public-holidays"});
    assert_reported(&problems_of(&w), ":/steps/0/deadline/calendar: a calendar counts working days");
}

#[test]
fn a_step_assigned_to_the_applicant_is_warned_about_because_the_submitter_never_sits_on_a_seat() {
    let mut w = leave_workflow();
    let steps = w["steps"].as_array_mut().unwrap();
    steps.push(json!({"id": "applicant-signs", "title": {"zh": "申請人簽署", "pt": "O requerente assina", "en": "The applicant signs"},
        "assignee": {"role": "applicant"}, "actions": ["sign"], "signature": "advanced"}));
    let report = report_of(&common::leave_form(), &w);
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    let warnings: Vec<String> = report.warnings.iter().map(|p| p.to_string()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("workflows/absence-and-annual-leave.json:/steps/3: step \"applicant-signs\" is assigned to the applicant"), "{warnings:?}");
    assert!(warnings[0].contains("submit_signature") && warnings[0].ends_with("[CARIMBO-E0081]"), "{warnings:?}");
    // With a subject field the applicant is someone else than the submitter: no warning.
    assert!(common::shipped().warnings.is_empty(), "{:?}", common::shipped().warnings);
}
