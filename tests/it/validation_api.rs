//! The validation API as the server will use it: data in, computed values or every error out,
//! each error with its data pointer and a message in the reader's language.

use crate::common;

use carimbo::forms::{MAX_SUBMISSION_BYTES, ValidationContext, parse_submission};
use carimbo::i18n::Lang;
use chrono::NaiveDate;
use serde_json::{Map, Value, json};
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
    let sub = form.validate(&json!({"leave_type": "annual", "start_date": "2026-12-21", "end_date": "2026-12-25"}), &ctx(22), Lang::En).unwrap();
    assert_eq!(sub.data["working_days"], json!(1));
    assert_eq!(sub.computed["working_days"], json!(1));
    assert_eq!(sub.form_id, "absence-and-annual-leave");
    assert_eq!(sub.form_hash.len(), 64);
}

#[test]
fn a_half_day_on_a_single_day_counts_as_half() {
    let form = leave();
    let sub = form
        .validate(
            &json!({"leave_type": "annual", "start_date": "2026-03-10", "end_date": "2026-03-10", "half_day_start": true, "half_day_end": true}),
            &ctx(22),
            Lang::En,
        )
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

/// The overtime claim of docs/examples (times of day, rows with their own hours and rules).
fn overtime_def() -> Value {
    common::read_json(&common::repo().join("docs/examples/overtime-claim.form.json"))
}

fn overtime(def: &Value) -> std::sync::Arc<carimbo::forms::FormDefinition> {
    let report = common::load_form("docs/examples/overtime-claim.form.json", def);
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    report.catalog.form("overtime-claim").unwrap().clone()
}

/// 17:30 on Friday 6 March 2026 in Macau.
fn friday_evening() -> ValidationContext {
    ValidationContext::at(chrono::DateTime::parse_from_rfc3339("2026-03-06T09:30:00Z").unwrap().to_utc(), Map::new())
}

fn period(date: &str, start: &str, end: &str) -> Value {
    json!({"date": date, "start_time": start, "end_time": end, "reason": "Closing the accounts"})
}

fn claim(periods: Vec<Value>) -> Value {
    json!({"periods": periods, "compensation": "time_off", "declaration": true})
}

#[test]
fn a_rule_over_rows_points_at_the_row_and_field_that_fail_in_each_language() {
    let form = overtime(&overtime_def());
    let data = claim(vec![period("2026-03-02", "18:00", "21:30"), period("2026-03-03", "20:00", "18:00"), period("2026-03-04", "18:00", "19:00")]);
    for (lang, words) in
        [(Lang::Zh, "結束時間必須遲於開始時間"), (Lang::Pt, "A hora de fim tem de ser posterior"), (Lang::En, "The end time must be after the start time")]
    {
        let errs = form.validate(&data, &friday_evening(), lang).unwrap_err();
        assert_eq!(errs.len(), 1, "only the second row fails: {errs:?}");
        assert_eq!(errs[0].pointer, "/periods/1/end_time");
        assert_eq!(errs[0].code, "end-after-start");
        assert_eq!(errs[0].error_code, "CARIMBO-E0111");
        assert!(errs[0].message.starts_with(words), "{lang:?}: {}", errs[0].message);
    }
}

#[test]
fn hours_are_computed_in_each_row_and_a_row_with_a_bad_time_is_skipped_alone() {
    let form = overtime(&overtime_def());
    let data = claim(vec![period("2026-03-02", "6pm", "21:00"), period("2026-03-03", "18:00", "20:40")]);
    let (result, computed) = form.validate_showing_computed(&data, &friday_evening(), Lang::En);
    let errs = result.unwrap_err();
    let got: Vec<(&str, &str)> = errs.iter().map(|e| (e.pointer.as_str(), e.code.as_str())).collect();
    assert_eq!(got, [("/periods/0/start_time", "format")], "no rule runs on the broken row");
    assert_eq!(errs[0].message, "Start time: write the time as HH:MM on the 24-hour clock (e.g. 18:30; 24:00 for the end of the day).");
    for (lang, words) in [(Lang::Zh, "開始時間：請以 24 小時制 HH:MM 填寫時間"), (Lang::Pt, "Hora de início: escreva a hora como HH:MM")] {
        let errs = form.validate(&data, &friday_evening(), lang).unwrap_err();
        assert!(errs[0].message.starts_with(words), "{lang:?}: {}", errs[0].message);
    }
    assert_eq!(computed.get("periods.1.hours"), Some(&json!(2.67)), "the sound row is still computed: {computed:?}");
    assert!(!computed.contains_key("periods.0.hours") && !computed.contains_key("total_hours"), "{computed:?}");
}

#[test]
fn not_in_the_future_means_now_in_macau_time_to_the_minute() {
    let form = overtime(&overtime_def());
    let ctx = friday_evening();
    assert_eq!(ctx.as_value()["today"], json!("2026-03-06"));
    assert_eq!(ctx.as_value()["now"], json!("2026-03-06T17:30"));
    assert_eq!(ctx.as_value()["time"], json!("17:30"));
    assert!(form.validate(&claim(vec![period("2026-03-06", "08:00", "17:30")]), &ctx, Lang::En).is_ok(), "ending now is not in the future");
    let errs = form.validate(&claim(vec![period("2026-03-06", "08:00", "17:31")]), &ctx, Lang::En).unwrap_err();
    assert_eq!(errs[0].pointer, "/periods/0/end_time");
    assert_eq!(errs[0].code, "period-not-in-future");
    // 16:30 UTC on the 5th is already half past midnight on the 6th in Macau.
    let late = ValidationContext::at(chrono::DateTime::parse_from_rfc3339("2026-03-05T16:30:59Z").unwrap().to_utc(), Map::new());
    assert_eq!(late.as_value()["today"], json!("2026-03-06"));
    assert_eq!(late.as_value()["now"], json!("2026-03-06T00:30"));
}

#[test]
fn text_reaching_arithmetic_at_run_time_is_a_clear_error_in_three_languages() {
    // A break whose schema allows text as well as a number: the checker cannot refuse it, the
    // run time must.
    let mut def = overtime_def();
    def["schema"]["properties"]["periods"]["items"]["properties"]["break_minutes"] = json!({"type": ["number", "string"]});
    def["labels"]["periods.*.break_minutes"] = json!({"zh": "休息（分鐘）", "pt": "Pausa (minutos)", "en": "Break (minutes)"});
    def["layout"]["rows"]["periods"].as_array_mut().unwrap().push(json!("break_minutes"));
    def["computed"][0]["logic"] =
        json!({"round": [{"-": [{"hours_between": [{"var": "start_time"}, {"var": "end_time"}]}, {"/": [{"var": "break_minutes"}, 60]}]}, 2]});
    let form = overtime(&def);
    let mut p = period("2026-03-02", "18:00", "21:30");
    p["break_minutes"] = json!(30);
    assert_eq!(form.validate(&claim(vec![p.clone()]), &friday_evening(), Lang::En).unwrap().data["periods"][0]["hours"], json!(3));
    p["break_minutes"] = json!("30");
    for (lang, words) in [
        (Lang::Zh, "「/」的第 1 個參數必須是數字，現在是 \"30\"（文字不會自動轉為數字）"),
        (Lang::Pt, "«/» precisa de um número no argumento 1, recebeu \"30\" (o texto nunca é convertido em número)"),
        (Lang::En, "/ needs a number as argument 1, found \"30\" (text is never turned into a number)"),
    ] {
        let errs = form.validate(&claim(vec![p.clone()]), &friday_evening(), lang).unwrap_err();
        let e = errs.iter().find(|e| e.pointer == "/periods/0/hours").unwrap_or_else(|| panic!("{errs:?}"));
        assert_eq!((e.code.as_str(), e.error_code), ("rule-error", "CARIMBO-E0103"));
        assert!(e.message.contains(words), "{lang:?}: {}", e.message);
    }
}

#[test]
fn the_directory_gives_the_applicant_id_name_department_and_grade_and_nothing_rules_cannot_name() {
    let facts = common::directory().applicant_facts("p006").unwrap();
    assert_eq!(facts["id"], json!("p006"));
    assert_eq!(facts["name"]["zh"], json!("黃偉強"));
    assert_eq!(facts["department"], json!("DAF"));
    assert_eq!(facts["department_name"]["en"], json!("Administration and Finance Division"));
    assert_eq!(facts["grade"], json!("técnico"));
    for key in facts.keys() {
        assert!(carimbo::forms::APPLICANT_FACTS.contains(&key.as_str()), "{key} is a fact rules cannot name");
    }
}

#[test]
fn rules_and_computed_values_read_the_applicant_from_the_directory() {
    // A computed value keeps who applied in the data; a rule reads the grade.
    let mut def = overtime_def();
    def["schema"]["properties"]["applicant_name"] = json!({"type": "string", "readOnly": true});
    def["labels"]["applicant_name"] = json!({"zh": "申請人", "pt": "Requerente", "en": "Applicant"});
    def["layout"]["groups"][0]["fields"].as_array_mut().unwrap().push(json!("applicant_name"));
    def["computed"]
        .as_array_mut()
        .unwrap()
        .push(json!({"field": "applicant_name", "logic": {"cat": [{"var": "context.applicant.name.zh"}, " (", {"var": "context.applicant.id"}, ")"]}}));
    def["rules"].as_array_mut().unwrap().push(json!({"id": "not-for-directors", "pointer": "/periods",
        "logic": {"!=": [{"var": "context.applicant.grade"}, "director"]},
        "message": {"zh": "局長不適用加班補償。", "pt": "O diretor não recebe compensação por trabalho extraordinário.", "en": "Directors are not paid for overtime."}}));
    let form = overtime(&def);
    let dir = common::directory();
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-06T09:30:00Z").unwrap().to_utc();
    let data = claim(vec![period("2026-03-02", "18:00", "21:30")]);
    let sub = form.validate(&data, &ValidationContext::at(at, dir.applicant_facts("p006").unwrap()), Lang::En).unwrap();
    assert_eq!(sub.data["applicant_name"], json!("黃偉強 (p006)"));
    let errs = form.validate(&data, &ValidationContext::at(at, dir.applicant_facts("p001").unwrap()), Lang::Pt).unwrap_err();
    assert_eq!(errs.iter().map(|e| (e.pointer.as_str(), e.code.as_str())).collect::<Vec<_>>(), [("/periods", "not-for-directors")]);
    assert_eq!(errs[0].message, "O diretor não recebe compensação por trabalho extraordinário.");
}
