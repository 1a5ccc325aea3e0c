//! The validation API as the server will use it: data in, computed values or every error out,
//! each error with its data pointer and a message in the reader's language.

mod common;

use carimbo::forms::{parse_submission, ValidationContext, MAX_SUBMISSION_BYTES};
use carimbo::i18n::Lang;
use chrono::NaiveDate;
use serde_json::{json, Map, Value};
use std::time::Instant;

fn leave() -> std::sync::Arc<carimbo::forms::FormDefinition> {
    let report = common::load_form("forms/absence-and-annual-leave.json", &common::leave_form());
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    report.catalog.form("absence-and-annual-leave").unwrap().clone()
}

fn ctx(balance: u32) -> ValidationContext {
    let mut applicant = Map::new();
    applicant.insert("annual_leave_balance".into(), json!(balance));
    ValidationContext::new(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), applicant)
}

#[test]
fn working_days_are_computed_from_the_dates_and_the_holiday_calendar() {
    let form = leave();
    // 2026-12-21 (in lieu), 22 (solstice), 24, 25 are holidays: Mon 21 .. Fri 25 leaves only the 23rd.
    let sub = form
        .validate(&json!({"leave_type": "annual", "start_date": "2026-12-21", "end_date": "2026-12-25"}), &ctx(22), Lang::En)
        .unwrap();
    assert_eq!(sub.data["working_days"], json!(1));
    assert_eq!(sub.computed["working_days"], json!(1));
    assert_eq!(sub.form_id, "absence-and-annual-leave");
    assert_eq!(sub.form_hash.len(), 64);
}

#[test]
fn a_half_day_on_a_single_day_counts_as_half() {
    let form = leave();
    let sub = form
        .validate(&json!({"leave_type": "annual", "start_date": "2026-03-10", "end_date": "2026-03-10", "half_day_start": true, "half_day_end": true}), &ctx(22), Lang::En)
        .unwrap();
    assert_eq!(sub.data["working_days"], json!(0.5));
}

#[test]
fn every_error_is_returned_not_only_the_first() {
    let form = leave();
    let errs = form
        .validate(&json!({"leave_type": "holiday", "start_date": "2026-13-01", "end_date": "2026-03-01", "colour": "red"}), &ctx(22), Lang::En)
        .unwrap_err();
    let got: Vec<(&str, &str)> = errs.iter().map(|e| (e.pointer.as_str(), e.code.as_str())).collect();
    assert!(got.contains(&("/leave_type", "enum")), "{got:?}");
    assert!(got.contains(&("/start_date", "format")), "{got:?}");
    assert!(got.contains(&("/colour", "additional-properties")), "{got:?}");
    // Rules that read a field which failed the schema are not run (no cascade of noise).
    assert!(!got.iter().any(|(_, c)| *c == "end-not-before-start"), "{got:?}");
}

#[test]
fn messages_come_in_the_requested_language_with_the_field_label() {
    let form = leave();
    let data = json!({"start_date": "2026-03-09", "end_date": "2026-03-13"});
    let en = &form.validate(&data, &ctx(22), Lang::En).unwrap_err()[0];
    let pt = &form.validate(&data, &ctx(22), Lang::Pt).unwrap_err()[0];
    let zh = &form.validate(&data, &ctx(22), Lang::Zh).unwrap_err()[0];
    assert_eq!(en.pointer, "/leave_type");
    assert_eq!(en.message, "Type of leave: this field is required.");
    assert_eq!(pt.message, "Tipo de ausência: preenchimento obrigatório.");
    assert_eq!(zh.message, "假期類別：必須填寫。");
    assert_eq!(en.error_code, "CARIMBO-E0110");

    let data = json!({"leave_type": "annual", "start_date": "2026-03-13", "end_date": "2026-03-09"});
    let pt = form.validate(&data, &ctx(22), Lang::Pt).unwrap_err();
    assert_eq!(pt[0].code, "end-not-before-start");
    assert_eq!(pt[0].message, "A data de fim não pode ser anterior à data de início.");
}

#[test]
fn a_computed_value_sent_by_the_client_is_checked_not_trusted() {
    let form = leave();
    let errs = form
        .validate(&json!({"leave_type": "annual", "start_date": "2026-03-09", "end_date": "2026-03-13", "working_days": 2}), &ctx(22), Lang::En)
        .unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].code, "computed-mismatch");
    assert_eq!(errs[0].message, "Working days: carimbo computes this as 5, not 2.");
    // The same value the server computes is accepted.
    let ok = form.validate(&json!({"leave_type": "annual", "start_date": "2026-03-09", "end_date": "2026-03-13", "working_days": 5}), &ctx(22), Lang::En);
    assert!(ok.is_ok());
}

#[test]
fn the_applicants_balance_comes_from_the_context_not_the_data() {
    let form = leave();
    let data = json!({"leave_type": "annual", "start_date": "2026-03-09", "end_date": "2026-03-13"});
    assert!(form.validate(&data, &ctx(5), Lang::En).is_ok());
    let errs = form.validate(&data, &ctx(4), Lang::En).unwrap_err();
    assert_eq!(errs[0].code, "annual-within-balance");
}

#[test]
fn a_rule_that_divides_by_zero_at_run_time_is_a_clear_error() {
    let mut def = common::leave_form();
    def["rules"][1]["logic"] = json!({">": [{"/": [10, {"var": "working_days"}]}, 0]});
    // Not a constant zero, so the checker accepts it; only a weekend makes it divide by zero.
    def["examples"]["invalid"][6]["expect"] = json!([{"pointer": "/end_date", "code": "rule-error"}]);
    let report = common::load_form("forms/absence-and-annual-leave.json", &def);
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    let form = report.catalog.form("absence-and-annual-leave").unwrap();
    let errs = form.validate(&json!({"leave_type": "annual", "start_date": "2026-03-07", "end_date": "2026-03-08"}), &ctx(22), Lang::En).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].code, "rule-error");
    assert_eq!(errs[0].error_code, "CARIMBO-E0113");
    assert!(errs[0].message.contains("could not be evaluated"), "{}", errs[0].message);
}

#[test]
fn a_ten_megabyte_submission_is_refused_before_parsing() {
    let big = format!("{{\"reason\": \"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let start = Instant::now();
    let err = parse_submission(big.as_bytes(), Lang::En).unwrap_err();
    assert_eq!(err.code, "too-large");
    assert_eq!(err.error_code, "CARIMBO-E0100");
    assert!(err.message.contains(&format!("limit is {} KiB", MAX_SUBMISSION_BYTES / 1024)), "{}", err.message);
    assert!(start.elapsed().as_secs() < 5);
}

#[test]
fn a_ten_megabyte_value_given_directly_is_refused_with_field_errors() {
    let form = leave();
    let data = json!({"leave_type": "annual", "start_date": "2026-03-09", "end_date": "2026-03-13", "reason": "x".repeat(10 * 1024 * 1024)});
    let errs = form.validate(&data, &ctx(22), Lang::En).unwrap_err();
    assert_eq!(errs[0].pointer, "/reason");
    assert_eq!(errs[0].code, "max-length");
}

#[test]
fn data_nested_a_thousand_levels_deep_is_refused_without_a_crash() {
    let text = format!("{{\"reason\": {}1{}}}", "[".repeat(1000), "]".repeat(1000));
    let err = parse_submission(text.as_bytes(), Lang::Pt).unwrap_err();
    assert_eq!(err.code, "too-deep");
    assert!(err.message.starts_with("Os dados enviados têm demasiados níveis"), "{}", err.message);

    // Built in memory (as an internal caller might): still refused, before the schema runs.
    let mut v = json!(1);
    for _ in 0..1000 {
        v = Value::Array(vec![v]);
    }
    let errs = leave().validate(&json!({"reason": v}), &ctx(22), Lang::En).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].code, "too-deep");
}

#[test]
fn submissions_that_are_not_json_objects_are_refused() {
    assert_eq!(parse_submission(b"{\"leave_type\": ", Lang::En).unwrap_err().code, "not-json");
    let errs = leave().validate(&json!(["annual"]), &ctx(22), Lang::En).unwrap_err();
    assert_eq!(errs[0].code, "not-an-object");
    assert_eq!(errs[0].message, "The submission must be a JSON object.");
}
