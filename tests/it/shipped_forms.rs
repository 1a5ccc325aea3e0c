//! The 18 shipped forms load cleanly, and every one of their examples behaves as it says.

use crate::common;

use carimbo::catalog::Catalog;
use carimbo::forms::{FormDefinition, SCHEMA_DIALECT, ValidationContext};
use carimbo::i18n::Lang;
use serde_json::{Value, json};

const FORM_IDS: [&str; 18] = [
    "health-fitness-certificate",
    "non-accumulation-declaration",
    "appointment-instrument",
    "administrative-appointment-contract",
    "employment-contract",
    "oath-of-office",
    "recruitment-application",
    "absence-and-annual-leave",
    "lost-salary-recovery",
    "medical-certificate",
    "work-accident-report",
    "work-accident-medical-exam",
    "housing-marriage-birth-allowance",
    "family-allowance",
    "daily-and-departure-allowance",
    "special-leave",
    "reporting-for-duty",
    "official-trip-report",
];

#[test]
fn all_eighteen_forms_load_without_a_single_problem() {
    let report = common::shipped();
    assert!(report.problems.is_empty(), "problems:\n{}", common::lines(&report).join("\n"));
    let ids: Vec<&str> = report.catalog.forms.keys().map(String::as_str).collect();
    for id in FORM_IDS {
        assert!(ids.contains(&id), "form {id} is missing; loaded: {ids:?}");
    }
    assert_eq!(report.catalog.forms.len(), 18);
}

/// Runs every example of every form directly (not through the checker), so a checker bug that
/// skipped examples would still be caught here.
#[test]
fn every_example_of_every_form_passes_or_fails_as_it_states() {
    let mut valid_run = 0;
    let mut invalid_run = 0;
    let report = common::shipped();
    for id in FORM_IDS {
        let def = common::read_json(&common::repo().join(format!("forms/{id}.json")));
        let form = report.catalog.form(id).unwrap_or_else(|| panic!("{id} did not load"));
        let (v, i) = run_examples(form, &def);
        valid_run += v;
        invalid_run += i;
    }
    println!("{valid_run} valid and {invalid_run} invalid examples checked");
    assert!(valid_run >= 36 && invalid_run >= 54);
}

/// Validates each example of `def` with `form`; returns how many valid and invalid ran.
fn run_examples(form: &FormDefinition, def: &Value) -> (usize, usize) {
    let id = &form.id;
    let examples = &def["examples"];
    let base = &examples["context"];
    let ctx_for = |e: &Value| {
        let mut ctx = base.clone();
        if let Some(Value::Object(over)) = e.get("context") {
            for (k, v) in over {
                match (ctx.get_mut(k), v) {
                    (Some(Value::Object(b)), Value::Object(o)) => b.extend(o.clone()),
                    _ => {
                        ctx[k] = v.clone();
                    }
                }
            }
        }
        ValidationContext::from_value(&ctx).unwrap()
    };
    let valid = examples["valid"].as_array().unwrap();
    let invalid = examples["invalid"].as_array().unwrap();
    assert!(valid.len() >= 2, "{id}: at least 2 valid examples");
    assert!(invalid.len() >= 3, "{id}: at least 3 invalid examples");
    for e in valid {
        let sub = form.validate(&e["data"], &ctx_for(e), Lang::En).unwrap_or_else(|errs| panic!("{id} {}: {errs:?}", e["name"]));
        if let Some(Value::Object(expected)) = e.get("computed") {
            for (field, want) in expected {
                let got = sub.computed.get(field).and_then(Value::as_f64).map(|f| f.to_string());
                assert_eq!(got, want.as_f64().map(|f| f.to_string()), "{id} {}: {field}", e["name"]);
            }
        }
    }
    for e in invalid {
        let errs = form.validate(&e["data"], &ctx_for(e), Lang::En).expect_err(&format!("{id} {} must be refused", e["name"]));
        for x in e["expect"].as_array().unwrap() {
            assert!(errs.iter().any(|err| err.pointer == x["pointer"] && err.code == x["code"]), "{id} {}: expected {x}, got {errs:?}", e["name"]);
        }
    }
    (valid.len(), invalid.len())
}

/// The worked example of docs/form-definitions.md, a 19th form written with none of the old
/// workarounds: times of day, per-row hours and errors, rounding, settings, the applicant shown.
#[test]
fn the_overtime_claim_example_loads_with_its_workflow_and_its_examples_behave_as_they_state() {
    let directory = common::directory();
    let paths = [common::repo().join("forms/reference"), common::repo().join("docs/examples")];
    let report = Catalog::load_paths_with(&paths, Some(&directory));
    assert!(report.problems.is_empty(), "problems:\n{}", common::lines(&report).join("\n"));
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    let form = report.catalog.form("overtime-claim").expect("the overtime claim loads");
    assert!(report.catalog.workflow("overtime-claim").is_some(), "its workflow loads");
    assert_eq!(form.title.get(Lang::Zh), "加班工作補償申請書");
    let def = common::read_json(&common::repo().join("docs/examples/overtime-claim.form.json"));
    let (valid, invalid) = run_examples(form, &def);
    assert!(valid >= 2 && invalid >= 3);
    assert_eq!(report.examples_run, valid + invalid, "the checker ran every example");

    // The hours of each row are in the row of the data that is signed and stored.
    let ctx = ValidationContext::from_value(&def["examples"]["context"]).unwrap();
    let sub = form.validate(&def["examples"]["valid"][0]["data"], &ctx, Lang::En).unwrap();
    assert_eq!(sub.data["periods"][0]["hours"], json!(3.5));
    assert_eq!(sub.data["periods"][1]["hours"], json!(2.25));
    assert_eq!(sub.data["total_hours"], json!(5.75));
}

#[test]
fn every_form_has_titles_labels_and_a_legal_basis_in_three_languages() {
    let report = common::shipped();
    for (id, form) in &report.catalog.forms {
        for lang in Lang::ALL {
            assert!(!form.title.get(lang).is_empty(), "{id} title {lang}");
            assert!(!form.legal_basis.get(lang).is_empty(), "{id} legal basis {lang}");
        }
        assert_eq!(form.schema["$schema"], SCHEMA_DIALECT, "{id}");
        assert_eq!(form.workflow, *id, "{id} names its own workflow");
        let top: Vec<&String> = form.schema["properties"].as_object().unwrap().keys().collect();
        for field in top {
            assert!(form.labels.contains_key(field), "{id}: {field} has a label");
        }
    }
}
