//! `carimbo check` on broken definitions: every problem reported, with file and JSON pointer,
//! and a broken definition never loads.

use crate::common;

use carimbo::catalog::{Catalog, SourceFile};
use serde_json::{Value, json};

fn problems_of(def: &Value) -> Vec<String> {
    let report = common::load_form("forms/absence-and-annual-leave.json", def);
    assert!(report.catalog.form("absence-and-annual-leave").is_none(), "a broken definition must not load");
    common::lines(&report)
}

fn assert_reported(lines: &[String], needle: &str) {
    assert!(lines.iter().any(|l| l.contains(needle)), "expected a problem containing {needle:?}; got:\n{}", lines.join("\n"));
}

#[test]
fn the_shipped_leave_form_is_clean() {
    let report = common::load_form("forms/absence-and-annual-leave.json", &common::leave_form());
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    assert!(report.catalog.form("absence-and-annual-leave").is_some());
}

#[test]
fn malformed_json_is_reported_with_line_and_column() {
    let report = Catalog::load_sources(&[SourceFile::new("forms/x.json", b"{\"kind\": \"form\",\n \"id\": }".to_vec())]);
    let lines = common::lines(&report);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("forms/x.json:: malformed JSON at line 2"), "{lines:?}");
    assert!(lines[0].ends_with("[CARIMBO-E0002]"));
}

#[test]
fn a_definition_repeating_a_member_name_is_reported_at_that_member() {
    // `"type":"string"` before the schema's own `"type":"object"`: read last-wins, the form is
    // the shipped one and would load; a reader keeping the first would see another schema.
    let text = serde_json::to_string(&common::leave_form()).unwrap();
    let at = text.find(r#""schema":{"#).unwrap() + r#""schema":{"#.len();
    let text = format!("{}\"type\":\"string\",{}", &text[..at], &text[at..]);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), common::leave_form());
    let mut sources = common::reference_sources();
    sources.push(SourceFile::new("forms/absence-and-annual-leave.json", text.into_bytes()));
    let report = Catalog::load_sources(&sources);
    assert!(report.catalog.form("absence-and-annual-leave").is_none(), "a definition with a repeated name must not load");
    let lines = common::lines(&report);
    assert_reported(&lines, "forms/absence-and-annual-leave.json:/schema/type: the member name \"type\" appears twice in the object at /schema");
    assert!(lines.iter().any(|l| l.ends_with("[CARIMBO-E0120]")), "{lines:?}");
}

#[test]
fn a_definition_that_is_not_an_object_is_refused() {
    for bytes in [&b"[1, 2]"[..], b"\"form\"", b"null", b"42"] {
        let report = Catalog::load_sources(&[SourceFile::new("forms/x.json", bytes.to_vec())]);
        let lines = common::lines(&report);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("a definition must be a JSON object"), "{lines:?}");
    }
}

#[test]
fn a_missing_or_unknown_kind_is_refused() {
    let report = Catalog::load_sources(&[
        SourceFile::new("a.json", br#"{"id": "a"}"#.to_vec()),
        SourceFile::new("b.json", br#"{"kind": "formulario", "id": "b"}"#.to_vec()),
    ]);
    let lines = common::lines(&report);
    assert_reported(&lines, "a.json:: missing \"kind\"");
    assert_reported(&lines, "b.json:/kind: unknown kind \"formulario\"");
}

#[test]
fn a_schema_with_an_unknown_type_is_refused_at_its_pointer() {
    let mut def = common::leave_form();
    def["schema"]["properties"]["reason"]["type"] = json!("text");
    assert_reported(&problems_of(&def), "/schema/properties/reason/type: unknown type \"text\"");
}

#[test]
fn a_remote_ref_is_refused_and_nothing_is_fetched() {
    let mut def = common::leave_form();
    def["schema"]["properties"]["substitute"] = json!({"$ref": "https://example.org/schemas/person.json"});
    let lines = problems_of(&def);
    assert_reported(&lines, "/schema/properties/substitute/$ref: reference \"https://example.org/schemas/person.json\" points outside this definition");
}

#[test]
fn a_rule_naming_a_missing_field_is_refused_with_the_pointer_of_the_var() {
    let mut def = common::leave_form();
    def["rules"][0]["logic"] = json!({"<=": [{"var": "start"}, {"var": "end_date"}]});
    assert_reported(&problems_of(&def), "/rules/0/logic/<=/0/var: reads \"start\", which is not a field of the form");
}

#[test]
fn a_rule_dividing_by_zero_is_refused() {
    let mut def = common::leave_form();
    def["rules"][1]["logic"] = json!({">": [{"/": [{"var": "working_days"}, 0]}, 1]});
    assert_reported(&problems_of(&def), "/rules/1/logic/>/0/~1: \"/\" by the constant 0");
}

#[test]
fn a_rule_with_an_unknown_operator_or_setting_is_refused() {
    let mut def = common::leave_form();
    def["rules"][0]["logic"] = json!({"before": [{"var": "start_date"}, {"var": "end_date"}]});
    def["rules"][3]["logic"] = json!({"<=": [{"var": "working_days"}, {"var": "settings.max_sick_days"}]});
    let lines = problems_of(&def);
    assert_reported(&lines, "/rules/0/logic/before: unknown operator \"before\"");
    assert_reported(&lines, "/rules/3/logic/<=/1/var: reads \"settings.max_sick_days\", but the form has no such setting");
}

#[test]
fn unknown_keys_missing_translations_and_layout_gaps_are_all_reported_at_once() {
    let mut def = common::leave_form();
    def["colour"] = json!("blue");
    def["title"].as_object_mut().unwrap().remove("pt");
    def["labels"]["reason"]["zh"] = json!("");
    def["options"]["leave_type"].as_object_mut().unwrap().remove("marriage");
    def["layout"]["groups"][2]["fields"] = json!([]);
    def["rules"][2]["message"] = json!("Too many days");
    let lines = problems_of(&def);
    assert_reported(&lines, ":/colour: unknown key \"colour\"");
    assert_reported(&lines, ":/title: missing the Portuguese text (\"pt\")");
    assert_reported(&lines, ":/labels/reason/zh: the Chinese text is empty");
    assert_reported(&lines, ":/options/leave_type: enum value \"marriage\" of \"leave_type\" has no label");
    assert_reported(&lines, ":/layout/groups: field \"substitute\" is in no group");
    assert_reported(&lines, ":/rules/2/message: expected a text in three languages");
    assert!(lines.len() >= 6, "every problem, not the first one: {lines:?}");
}

#[test]
fn a_computed_field_must_be_read_only_and_name_a_known_calendar() {
    let mut def = common::leave_form();
    def["schema"]["properties"]["working_days"].as_object_mut().unwrap().remove("readOnly");
    def["computed"][0]["working_days"]["calendar"] = json!("lisbon-holidays");
    let lines = problems_of(&def);
    assert_reported(&lines, ":/schema/properties/working_days: \"working_days\" is computed by carimbo: mark it \"readOnly\": true");
    assert_reported(&lines, ":/computed/0/working_days/calendar: no holiday calendar with id \"lisbon-holidays\"");
}

#[test]
fn examples_that_do_not_behave_as_stated_are_reported() {
    let mut def = common::leave_form();
    // A valid example that is in fact invalid, and an invalid one that is in fact valid.
    def["examples"]["valid"][0]["data"]["end_date"] = json!("2026-03-01");
    def["examples"]["invalid"][0]["data"]["end_date"] = json!("2026-03-20");
    def["examples"]["valid"][1]["computed"]["working_days"] = json!(7);
    let lines = problems_of(&def);
    assert_reported(&lines, ":/examples/valid/0: valid example \"a working week of annual leave\" was refused: /end_date");
    assert_reported(&lines, ":/examples/invalid/0: invalid example \"end before start\" was accepted");
    assert_reported(&lines, ":/examples/valid/1/computed/working_days: example");
}

#[test]
fn too_few_examples_are_reported() {
    let mut def = common::leave_form();
    def["examples"]["valid"].as_array_mut().unwrap().truncate(1);
    def["examples"]["invalid"].as_array_mut().unwrap().truncate(2);
    let lines = problems_of(&def);
    assert_reported(&lines, ":/examples/valid: at least 2 valid examples are needed, found 1");
    assert_reported(&lines, ":/examples/invalid: at least 3 invalid examples are needed, found 2");
}

#[test]
fn duplicate_ids_are_reported_in_the_second_file() {
    let mut sources = common::reference_sources();
    let bytes = serde_json::to_vec(&common::leave_form()).unwrap();
    sources.push(SourceFile::new("a/absence-and-annual-leave.json", bytes.clone()));
    sources.push(SourceFile::new("b/absence-and-annual-leave.json", bytes));
    let report = Catalog::load_sources(&sources);
    let lines = common::lines(&report);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("b/absence-and-annual-leave.json:/id: duplicate form id"), "{lines:?}");
}

#[test]
fn the_id_must_match_the_file_name() {
    let report = common::load_form("forms/leave.json", &common::leave_form());
    assert_reported(&common::lines(&report), "forms/leave.json:/id: id \"absence-and-annual-leave\" does not match the file name \"leave\".json");
}

#[test]
fn a_workflow_reference_is_checked_once_workflows_are_given() {
    let mut sources = common::reference_sources();
    sources.push(SourceFile::new("forms/absence-and-annual-leave.json", serde_json::to_vec(&common::leave_form()).unwrap()));
    sources.push(SourceFile::new("workflows/other.json", br#"{"kind": "workflow", "id": "other"}"#.to_vec()));
    let report = Catalog::load_sources(&sources);
    assert_reported(&common::lines(&report), "forms/absence-and-annual-leave.json:/workflow: no workflow with id \"absence-and-annual-leave\"");
}

#[test]
fn a_deeply_nested_definition_is_refused_without_a_crash() {
    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let report = Catalog::load_sources(&[SourceFile::new("forms/deep.json", deep.into_bytes())]);
    assert_reported(&common::lines(&report), "forms/deep.json:: the JSON is nested more than 128 levels deep");
    let mut def = common::leave_form();
    let mut nested = json!({"type": "string"});
    for _ in 0..200 {
        nested = json!({"allOf": [nested]});
    }
    def["schema"]["properties"]["reason"] = nested;
    assert_reported(&problems_of(&def), "forms/absence-and-annual-leave.json:: the JSON is nested more than 128 levels deep");
}

#[test]
fn reference_tables_with_duplicate_keys_or_bad_dates_are_refused() {
    let report = Catalog::load_sources(&[
        SourceFile::new(
            "forms/reference/t.json",
            br#"{"kind": "rates-table", "id": "t", "title": {"zh": "t", "pt": "t", "en": "t"}, "unit": "MOP", "keys": ["zone"],
                 "rows": [{"zone": "A", "rate": 1}, {"zone": "A", "rate": 2}, {"rate": 3}]}"#
                .to_vec(),
        ),
        SourceFile::new(
            "forms/reference/c.json",
            br#"{"kind": "holiday-calendar", "id": "c", "title": {"zh": "c", "pt": "c", "en": "c"}, "weekend": ["sunday", "funday"],
                 "holidays": [{"date": "2026-02-30", "name": {"zh": "x", "pt": "x", "en": "x"}}]}"#
                .to_vec(),
        ),
    ]);
    let lines = common::lines(&report);
    assert_reported(&lines, "forms/reference/t.json:/rows/1: same keys as row 0");
    assert_reported(&lines, "forms/reference/t.json:/rows/2: the row has no value for key column \"zone\"");
    assert_reported(&lines, "forms/reference/c.json:/weekend/1: \"funday\" is not a day of the week");
    assert_reported(&lines, "forms/reference/c.json:/holidays/0/date: the date must be a real date");
}

/// The overtime claim of docs/examples, to break one thing at a time.
fn overtime() -> Value {
    common::read_json(&common::repo().join("docs/examples/overtime-claim.form.json"))
}

fn overtime_problems(def: &Value) -> Vec<String> {
    let report = common::load_form("docs/examples/overtime-claim.form.json", def);
    assert!(report.catalog.form("overtime-claim").is_none(), "a broken definition must not load");
    common::lines(&report)
}

#[test]
fn the_overtime_claim_is_clean_when_named_like_its_workflow() {
    let report = common::load_form("docs/examples/overtime-claim.form.json", &overtime());
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
}

#[test]
fn a_field_written_format_time_is_refused_with_the_format_to_use() {
    let mut def = overtime();
    def["schema"]["properties"]["periods"]["items"]["properties"]["start_time"]["format"] = json!("time");
    let lines = overtime_problems(&def);
    assert_reported(&lines, "/schema/properties/periods/items/properties/start_time/format: \"time\" would demand an offset");
    assert_reported(&lines, "use \"format\": \"time-of-day\" [CARIMBO-E0042]");
}

#[test]
fn text_in_arithmetic_is_refused_where_it_is_written_and_where_a_text_field_is_used() {
    let mut def = overtime();
    def["computed"][1]["logic"] = json!({"+": ["3", {"var": "total_hours_x"}]});
    def["rules"][1]["logic"] = json!({"<=": [{"*": [{"var": "reason"}, 2]}, 12]});
    let lines = overtime_problems(&def);
    assert_reported(&lines, "/computed/1/logic/+/0: + is given the text \"3\": text is never turned into a number");
    assert_reported(
        &lines,
        "/rules/1/logic/<=/0/*/0/var: * is given \"reason\", which holds string: text is never turned into a number; declare the field a number [CARIMBO-E0043]",
    );
    assert_reported(&lines, "/computed/1/logic/+/1/var: reads \"total_hours_x\", which is not a field of the form");
}

#[test]
fn a_rule_pointer_that_names_no_place_in_the_data_is_refused() {
    let mut def = overtime();
    def["rules"][0]["pointer"] = json!("/periods/*/end_tme");
    def["rules"][1]["pointer"] = json!("/periods/2/end_time");
    def["rules"][2]["pointer"] = json!("/periods/*/date/*");
    def["rules"][3]["pointer"] = json!("total_hours");
    let lines = overtime_problems(&def);
    assert_reported(
        &lines,
        "/rules/0/pointer: \"/periods/*/end_tme\" names no place in the data (a row of periods has: date, end_time, hours, ordered_by, reason, start_time) [CARIMBO-E0031]",
    );
    assert_reported(&lines, "/rules/1/pointer: \"/periods/2/end_time\" points at one fixed row; write \"*\" for the row");
    assert_reported(&lines, "/rules/2/pointer: \"/periods/*/date/*\": only the rows of a top-level list are checked one by one");
    assert_reported(&lines, "/rules/3/pointer: \"total_hours\" is not a JSON pointer");
    assert!(lines.iter().filter(|l| l.ends_with("[CARIMBO-E0044]")).count() == 2, "{lines:?}");
}

#[test]
fn a_rule_on_every_row_reads_the_fields_of_the_row() {
    let mut def = overtime();
    def["rules"][1]["logic"] = json!({"<=": [{"var": "total_hours"}, 12]});
    let lines = overtime_problems(&def);
    assert_reported(
        &lines,
        "/rules/1/logic/<=/0/var: reads \"total_hours\", which is not a field of the form (the fields of a row of periods: date, end_time, hours, ordered_by, reason, start_time)",
    );
}

#[test]
fn a_computed_value_inside_a_row_must_be_declared_and_read_only_in_the_row() {
    let mut def = overtime();
    def["computed"][0]["field"] = json!("periods.*.hourz");
    let lines = overtime_problems(&def);
    assert_reported(
        &lines,
        "/computed/0/field: \"periods.*.hourz\" is not declared in the schema (a row of periods declares: date, end_time, hours, ordered_by, reason, start_time)",
    );

    let mut def = overtime();
    def["schema"]["properties"]["periods"]["items"]["properties"]["hours"] = json!({"type": "number"});
    let lines = overtime_problems(&def);
    assert_reported(
        &lines,
        "/schema/properties/periods/items/properties/hours: \"periods.*.hours\" is computed by carimbo: mark it \"readOnly\": true [CARIMBO-E0040]",
    );
}

#[test]
fn an_unknown_applicant_fact_or_context_value_is_refused() {
    let mut def = overtime();
    def["rules"][3]["logic"] = json!({"and": [{"var": "context.applicant.nmae"}, {"var": "context.tomorrow"}, {"var": "context.applicant.name.fr"}]});
    def["layout"]["applicant"] = json!(["id", "nickname"]);
    let lines = overtime_problems(&def);
    assert_reported(
        &lines,
        "/rules/3/logic/and/0/var: reads \"context.applicant.nmae\", which carimbo does not supply: the context has context.today, context.now, context.time",
    );
    assert_reported(&lines, "/rules/3/logic/and/1/var: reads \"context.tomorrow\"");
    assert_reported(&lines, "/rules/3/logic/and/2/var: reads \"context.applicant.name.fr\"");
    assert_reported(&lines, "/layout/applicant/1: \"nickname\" is not a fact carimbo knows about the applicant (known: id, name, department");
    assert_eq!(lines.iter().filter(|l| l.ends_with("[CARIMBO-E0045]")).count(), 4, "{lines:?}");
}

#[test]
fn the_row_layout_places_every_row_field_once_and_widgets_suit_the_field() {
    let mut def = overtime();
    def["layout"]["rows"] = json!({"periods": ["date", "start_time", "date", "end_time", "hours", "reason", "colour"], "compensation": ["x"]});
    def["layout"]["widgets"]["periods.*.hours"] = json!("time");
    def["layout"]["widgets"]["periods.*.reason"] = json!("number");
    let lines = overtime_problems(&def);
    assert_reported(&lines, "/layout/rows/periods/2: \"date\" is placed twice");
    assert_reported(&lines, "/layout/rows/periods/6: \"colour\" is not a field of a row of periods");
    assert_reported(&lines, "/layout/rows/periods: field \"ordered_by\" of the rows of periods is not placed, so the page would not show it");
    assert_reported(&lines, "/layout/rows/compensation: \"compensation\" is not a top-level list of rows");
    assert_reported(&lines, "/layout/widgets/periods.*.hours: the \"time\" widget is for string fields; \"periods.*.hours\" holds number [CARIMBO-E0046]");
    assert_reported(&lines, "/layout/widgets/periods.*.reason: the \"number\" widget is for number or integer fields");
}

#[test]
fn time_and_rounding_operators_given_what_they_cannot_take_are_refused() {
    let mut def = overtime();
    def["computed"][0]["logic"] = json!({"round": [{"hours_between": ["6pm", {"var": "end_time"}]}, 12]});
    def["rules"][0]["logic"] = json!({"time_before": [{"var": "hours"}, "18:00"]});
    let lines = overtime_problems(&def);
    assert_reported(&lines, "/computed/0/logic/round/0/hours_between/0: hours_between: \"6pm\" is not a time of day (HH:MM, e.g. \"18:30\")");
    assert_reported(&lines, "/computed/0/logic/round/1: round: the decimal places must be a whole number from 0 to 10, found 12 [CARIMBO-E0047]");
    assert_reported(&lines, "/rules/0/logic/time_before/0/var: time_before takes times of day or dates and times, but \"hours\" holds number [CARIMBO-E0047]");
}

#[test]
fn summary_fields_must_be_known_single_valued_unrestricted_and_few() {
    let with_summary = |summary: Value, restricted: Option<Value>| {
        let mut def = common::leave_form();
        def["layout"]["summary"] = summary;
        if let Some(r) = restricted {
            def["layout"]["restricted"] = r;
        }
        problems_of(&def)
    };
    let lines = with_summary(json!(["leave_type", "no_such_field"]), None);
    assert_reported(&lines, "/layout/summary/1: \"no_such_field\" is not a top-level field of the schema [CARIMBO-E1301]");
    let lines = with_summary(json!(["leave_type", "reason"]), Some(json!({"reason": ["hr"]})));
    assert_reported(&lines, "/layout/summary/1: \"reason\" is restricted");
    assert_reported(&lines, "[CARIMBO-E1302]");
    let lines = with_summary(json!(["leave_type", "leave_type"]), None);
    assert_reported(&lines, "/layout/summary/1: \"leave_type\" is named twice [CARIMBO-E1303]");
    let lines = with_summary(json!(["leave_type", "start_date", "end_date", "working_days", "reason", "substitute", "half_day_end"]), None);
    assert_reported(&lines, "/layout/summary: a summary names at most 6 fields (7 given)");
    let lines = with_summary(json!("leave_type"), None);
    assert!(lines.iter().any(|l| l.contains("/layout/summary")), "a summary that is not a list is refused: {lines:?}");
}

#[test]
fn a_summary_field_holding_a_list_is_refused() {
    let mut def = common::read_json(&common::repo().join("forms/family-allowance.json"));
    def["layout"]["summary"] = json!(["request_type", "dependants"]);
    let report = common::load_form("forms/family-allowance.json", &def);
    assert!(report.catalog.form("family-allowance").is_none());
    let lines = common::lines(&report);
    assert_reported(&lines, "/layout/summary/1: \"dependants\" holds an object or a list");
}

#[test]
fn every_shipped_form_names_its_summary_fields() {
    let report = common::shipped();
    assert!(report.problems.is_empty(), "{:?}", common::lines(&report));
    let ids: Vec<String> = std::fs::read_dir(common::repo().join("forms"))
        .unwrap()
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_string))
        .filter(|s| s != "reference")
        .collect();
    assert_eq!(ids.len(), 18);
    for id in ids {
        let form = report.catalog.form(&id).unwrap();
        assert!((2..=6).contains(&form.layout.summary.len()), "{id} names {} summary fields", form.layout.summary.len());
        assert!(form.layout.summary.iter().all(|f| !form.layout.restricted.contains_key(f)), "{id}: no restricted field in its summary");
    }
}

#[test]
fn every_definition_check_code_says_what_it_means_in_zh_pt_and_en() {
    let doc = std::fs::read_to_string(common::repo().join("docs/errors.md")).unwrap();
    let section = doc.split("\n## ").find(|s| s.starts_with("Definitions")).expect("the definitions section of docs/errors.md");
    let codes: Vec<&str> =
        section.lines().filter_map(|l| l.strip_prefix("| ")).filter_map(|l| l.split(" | ").next()).filter(|c| c.starts_with("CARIMBO-E")).collect();
    assert!(codes.len() > 40, "{codes:?}");
    let missing: Vec<&&str> =
        codes.iter().filter(|c| carimbo::forms::problem_text::explain(c).is_none_or(|t| t.zh.is_empty() || t.pt.is_empty() || t.en.is_empty())).collect();
    assert!(missing.is_empty(), "definition-check codes with no zh / pt / en sentence in forms::problem_text: {missing:?}");
}

#[test]
fn every_kind_of_detail_reads_in_zh_pt_and_en_and_each_language_is_its_own() {
    use carimbo::forms::{Detail, DetailKind};
    use carimbo::i18n::Lang;
    let examples = Detail::examples();
    assert!(examples.len() > 100, "every kind of detail: {}", examples.len());
    let mut bad = Vec::new();
    for d in &examples {
        let (zh, pt, en) = (d.render(Lang::Zh), d.render(Lang::Pt), d.render(Lang::En));
        let has_chinese = zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        if zh.trim().is_empty() || pt.trim().is_empty() || en.trim().is_empty() || zh == pt || pt == en || zh == en || !has_chinese {
            bad.push(format!("{}:\n  zh {zh}\n  pt {pt}\n  en {en}", d.kind()));
        }
        // The English text is the stable message (`Problem::message`, `carimbo check`, the API).
        assert_eq!(d.to_string(), en, "{}", d.kind());
        assert_eq!(DetailKind::from(d), DetailKind::from(&Detail::example(DetailKind::from(d))), "the example of {} is of its kind", d.kind());
    }
    assert!(bad.is_empty(), "details without three distinct texts:\n{}", bad.join("\n"));
}

/// The problems of a broken leave form, as (pointer, detail in zh, in pt, message).
fn details_of(def: &Value) -> Vec<(String, String, String, String)> {
    use carimbo::i18n::Lang;
    let report = common::load_form("forms/absence-and-annual-leave.json", def);
    assert!(!report.problems.is_empty());
    report.problems.iter().map(|p| (p.pointer.clone(), p.detail_in(Lang::Zh), p.detail_in(Lang::Pt), p.message.clone())).collect()
}

fn detail_at<'a>(details: &'a [(String, String, String, String)], pointer: &str) -> &'a (String, String, String, String) {
    details.iter().find(|d| d.0 == pointer).unwrap_or_else(|| panic!("no problem at {pointer}: {details:#?}"))
}

#[test]
fn the_details_of_a_broken_form_read_in_chinese_and_portuguese_with_the_names_as_written() {
    let mut def = common::leave_form();
    def["colour"] = json!("blue");
    def["title"].as_object_mut().unwrap().remove("pt");
    def["layout"]["widgets"]["reason"] = json!("slider");
    def["layout"]["groups"][0]["fields"].as_array_mut().unwrap().push(json!("no_such_field"));
    def["rules"][0]["logic"] = json!({"before": [{"var": "start_date"}, {"var": "end_date"}]});
    def["rules"][3]["logic"] = json!({"<=": [{"var": "working_days"}, {"var": "settings.max_sick_days"}]});
    def["computed"][0]["working_days"]["calendar"] = json!("lisbon-holidays");
    let details = details_of(&def);
    let cases: [(&str, &str, &str, &str); 7] = [
        ("/colour", "未知的鍵 \"colour\"；應為以下之一：", "chave desconhecida \"colour\"; espera-se uma de:", "unknown key \"colour\""),
        ("/title", "缺少葡文文字（\"pt\"）", "falta o texto em português (\"pt\")", "missing the Portuguese text (\"pt\")"),
        ("/layout/widgets/reason", "未知的元件 \"slider\"", "elemento de entrada desconhecido \"slider\"", "unknown widget \"slider\""),
        (
            "/layout/groups/0/fields/3",
            "\"no_such_field\" 不是結構描述的頂層欄位",
            "\"no_such_field\" não é campo de topo do esquema",
            "\"no_such_field\" is not a top-level field",
        ),
        ("/rules/0/logic/before", "未知的運算子 \"before\"", "operador desconhecido \"before\"", "unknown operator \"before\""),
        (
            "/rules/3/logic/<=/1/var",
            "讀取 \"settings.max_sick_days\"，但表格沒有此設定",
            "lê \"settings.max_sick_days\", mas o formulário não tem essa definição",
            "but the form has no such setting",
        ),
        (
            "/computed/0/working_days/calendar",
            "沒有識別碼為 \"lisbon-holidays\" 的假期日曆",
            "não há calendário de feriados com o identificador \"lisbon-holidays\"",
            "no holiday calendar with id \"lisbon-holidays\"",
        ),
    ];
    for (pointer, zh, pt, en) in cases {
        let d = detail_at(&details, pointer);
        assert!(d.1.contains(zh), "{pointer} zh: {}", d.1);
        assert!(d.2.contains(pt), "{pointer} pt: {}", d.2);
        assert!(d.3.contains(en), "{pointer} en: {}", d.3);
    }
}

#[test]
fn the_details_of_a_broken_workflow_read_in_chinese_and_portuguese() {
    use carimbo::i18n::Lang;
    let mut w = common::read_json(&common::repo().join("workflows/absence-and-annual-leave.json"));
    w["steps"][2]["assignee"] = json!({"group": "hrr"});
    w["steps"][1]["actions"] = json!(["approve", "approove"]);
    w["steps"][0]["signature"] = json!("strong");
    let mut sources = common::reference_sources();
    sources.push(SourceFile::new("forms/absence-and-annual-leave.json", std::fs::read(common::repo().join("forms/absence-and-annual-leave.json")).unwrap()));
    sources.push(SourceFile::new("workflows/absence-and-annual-leave.json", serde_json::to_vec(&w).unwrap()));
    let report = Catalog::load_sources_with(&sources, Some(&common::directory()));
    let at = |suffix: &str| {
        report.problems.iter().find(|p| p.pointer.ends_with(suffix)).unwrap_or_else(|| panic!("no problem at …{suffix}: {:?}", common::lines(&report)))
    };
    let group = at("/assignee/group");
    assert!(group.detail_in(Lang::Zh).starts_with("未知的組 \"hrr\"；人員名冊中有："), "{}", group.detail_in(Lang::Zh));
    assert!(group.detail_in(Lang::Pt).starts_with("grupo desconhecido \"hrr\"; o registo de pessoal tem:"), "{}", group.detail_in(Lang::Pt));
    assert!(group.message.starts_with("unknown group \"hrr\"; the directory has:"), "{}", group.message);
    let action = at("/actions/1");
    assert_eq!(action.detail_in(Lang::Zh), "未知的動作 \"approove\"：請用 sign、approve、reject 或 return");
    assert_eq!(action.detail_in(Lang::Pt), "ação desconhecida \"approove\": use sign, approve, reject ou return");
    let level = at("/steps/0/signature");
    assert_eq!(level.message, "unknown signature level \"strong\": use simple, advanced or qualified");
    assert_eq!(level.detail_in(Lang::Pt), "nível de assinatura desconhecido \"strong\": use simple, advanced ou qualified");
    // The localized line: the code's sentence, then the detail, both in the reader's language.
    let line = action.localized(Lang::Zh);
    assert!(line.contains("缺少某個鍵，或其值的類型不對。 — 未知的動作") && line.ends_with("[CARIMBO-E0011]"), "{line}");
}

#[test]
fn a_refused_valid_example_says_why_in_the_readers_language() {
    let mut def = common::leave_form();
    def["examples"]["valid"][0]["data"]["end_date"] = json!("2026-03-01");
    let details = details_of(&def);
    let (_, zh, pt, en) = detail_at(&details, "/examples/valid/0");
    assert!(zh.starts_with("有效範例 \"a working week of annual leave\" 被拒絕：/end_date "), "{zh}");
    assert!(pt.starts_with("o exemplo válido \"a working week of annual leave\" foi recusado: /end_date "), "{pt}");
    // The validator's own message is in the reader's language too.
    let why = en.split("/end_date ").nth(1).unwrap_or_else(|| panic!("{en}"));
    assert!(!zh.contains(why) && !pt.contains(why), "{why:?} is English in:\n{zh}\n{pt}");
}
