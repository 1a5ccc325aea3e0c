//! `carimbo check` as an author runs it: exit status, one line per problem, a summary when clean.

use crate::common;

use std::process::Command;

fn carimbo(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_carimbo")).args(args).current_dir(common::repo()).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_shipped_definitions_pass_with_a_one_line_summary() {
    let (code, stdout, _) = carimbo(&["check", "forms", "workflows"]);
    assert_eq!(code, 0, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(lines[0].starts_with("ok: ") && lines[0].contains("18 forms"), "{stdout}");
}

#[test]
fn a_broken_copy_is_refused_with_file_and_pointer_for_every_problem() {
    let dir = std::env::temp_dir().join(format!("carimbo-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut def = common::leave_form();
    def["schema"]["properties"]["working_days"]["type"] = serde_json::json!("nmber");
    def["rules"][0]["logic"] = serde_json::json!({"<=": [{"var": "start"}, {"var": "end_date"}]});
    def["labels"]["reason"].as_object_mut().unwrap().remove("pt");
    let file = dir.join("absence-and-annual-leave.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&def).unwrap()).unwrap();
    std::fs::write(dir.join("broken.json"), "{\"kind\": \"form\",").unwrap();

    let (code, stdout, _) = carimbo(&["check", dir.to_str().unwrap(), "forms/reference"]);
    assert_eq!(code, 1, "{stdout}");
    let f = file.display().to_string();
    for expected in [
        format!("{f}:/schema/properties/working_days/type: unknown type \"nmber\""),
        format!("{f}:/rules/0/logic/<=/0/var: reads \"start\""),
        format!("{f}:/labels/reason: missing the Portuguese text"),
        format!("{}:: malformed JSON", dir.join("broken.json").display()),
    ] {
        assert!(stdout.lines().any(|l| l.starts_with(&expected)), "missing {expected:?} in:\n{stdout}");
    }
    assert!(stdout.trim_end().ends_with("problems in 2 files"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_path_that_does_not_exist_is_a_problem_not_a_crash() {
    let (code, stdout, _) = carimbo(&["check", "no-such-dir"]);
    assert_eq!(code, 1);
    assert!(stdout.starts_with("no-such-dir:: cannot read"), "{stdout}");
}

#[test]
fn explain_says_who_is_kept_off_which_step_for_every_workflow() {
    let (code, stdout, _) = carimbo(&["check", "forms", "workflows", "--explain"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.lines().next().is_some_and(|l| l.starts_with("ok: ")), "{stdout}");
    for expected in [
        "reporting-for-duty: parties the subject (staff_id); a seat only a party could take is reassigned up the supervisor tree",
        "reporting-for-duty: step receiving-hr: deciding; every party is kept off",
        "work-accident-report: parties the subject (victim.staff_id), witnesses.*.staff_id;",
        "appointment-instrument: step appointee: deciding; parties are kept off except on the seat of {\"role\": \"applicant\"} (the subject's own)",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    // One summary line per workflow, then one per step.
    assert_eq!(stdout.lines().filter(|l| l.contains(": parties ")).count(), 18, "{stdout}");
}

/// `carimbo check` run in `dir` (not the repository).
fn carimbo_in(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_carimbo")).args(args).current_dir(dir).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn run_from_outside_the_checkout_it_finds_the_directory_and_reports_a_group_typo() {
    let tmp = tempfile::tempdir().unwrap();
    let workflows = tmp.path().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    for entry in std::fs::read_dir(common::repo().join("workflows")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::copy(&path, workflows.join(path.file_name().unwrap())).unwrap();
        }
    }
    let file = workflows.join("absence-and-annual-leave.json");
    let text = std::fs::read_to_string(&file).unwrap().replacen("{\"group\": \"hr\"}", "{\"group\": \"hrr\"}", 1);
    assert!(text.contains("hrr"));
    std::fs::write(&file, text).unwrap();
    let forms = common::repo().join("forms");
    let (code, stdout, stderr) = carimbo_in(tmp.path(), &["check", forms.to_str().unwrap(), workflows.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("{}:/steps/2/assignee/group: unknown group \"hrr\"", file.display())), "{stdout}");
    assert!(!stdout.contains("ok: "), "{stdout}");
}

#[test]
fn without_a_directory_anywhere_it_fails_clearly_instead_of_passing_unchecked_workflows() {
    let tmp = tempfile::tempdir().unwrap();
    for (dir, name) in
        [("forms", "absence-and-annual-leave.json"), ("workflows", "absence-and-annual-leave.json"), ("forms/reference", "macau-public-holidays.json")]
    {
        std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
        std::fs::copy(common::repo().join(dir).join(name), tmp.path().join(dir).join(name)).unwrap();
    }
    let (code, stdout, stderr) = carimbo_in(tmp.path(), &["check", "forms", "workflows"]);
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(stdout.lines().any(|l| l.starts_with("--directory:: no staff directory found") && l.ends_with("[CARIMBO-E0084]")), "{stdout}");
    assert!(!stdout.contains("ok: "), "{stdout}");
    // A directory named on the command line that is not there is an error too.
    let (code, _, stderr) = carimbo_in(tmp.path(), &["check", "forms", "--directory", "nowhere.json"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("no staff directory at nowhere.json"), "{stderr}");
}

#[test]
fn one_form_file_checked_alone_finds_the_calendar_it_names() {
    let (code, stdout, stderr) = carimbo(&["check", "forms/absence-and-annual-leave.json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!stdout.contains("holiday calendar"), "{stdout}");
    assert!(stdout.starts_with("ok: ") && stdout.contains(" 1 forms, 0 workflows, 1 calendars"), "{stdout}");
}

#[test]
fn a_step_for_the_applicant_is_printed_as_a_warning_and_the_check_still_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = common::read_json(&common::repo().join("workflows/absence-and-annual-leave.json"));
    w["steps"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"id": "applicant-signs", "title": {"zh": "申請人簽署", "pt": "O requerente assina", "en": "The applicant signs"},
        "assignee": {"role": "applicant"}, "actions": ["sign"], "signature": "advanced"}));
    let file = tmp.path().join("absence-and-annual-leave.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&w).unwrap()).unwrap();
    let (code, stdout, stderr) = carimbo(&["check", "forms/absence-and-annual-leave.json", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.lines().any(|l| l.starts_with(&format!("{}:/steps/3: warning: step \"applicant-signs\" is assigned to the applicant", file.display()))),
        "{stdout}"
    );
}

#[test]
fn the_definition_guides_no_longer_point_at_work_still_to_come() {
    let guide = std::fs::read_to_string(common::repo().join("docs/form-definitions.md")).unwrap();
    assert!(!guide.contains("(see the workflow issue)"));
    let readme = std::fs::read_to_string(common::repo().join("workflows/README.md")).unwrap();
    assert!(!readme.contains("once the workflow engine lands"));
}

#[test]
fn an_author_reading_chinese_or_portuguese_gets_what_each_problem_means_in_their_language() {
    let dir = std::env::temp_dir().join(format!("carimbo-check-lang-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut def = common::leave_form();
    def["labels"]["reason"].as_object_mut().unwrap().remove("pt");
    let file = dir.join("absence-and-annual-leave.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&def).unwrap()).unwrap();
    let f = file.display().to_string();
    let (code, zh, _) = carimbo(&["check", "--lang", "zh", dir.to_str().unwrap(), "forms/reference"]);
    assert_eq!(code, 1, "{zh}");
    let line = zh.lines().find(|l| l.starts_with(&format!("{f}:/labels/reason:"))).unwrap_or_else(|| panic!("{zh}"));
    assert!(line.contains("缺少中文、葡文或英文") && line.contains("缺少葡文文字（\"pt\"）") && line.ends_with("[CARIMBO-E0012]"), "{line}");
    assert!(!line.contains("missing the Portuguese text"), "the detail is in Chinese too: {line}");
    assert!(zh.trim_end().ends_with("1 個檔案共 1 個問題"), "{zh}");
    let (_, pt, _) = carimbo(&["check", "--lang", "pt-PT", dir.to_str().unwrap(), "forms/reference"]);
    assert!(pt.contains("Falta um texto em chinês, português ou inglês") && pt.trim_end().ends_with("1 problema(s) em 1 ficheiro(s)"), "{pt}");
    assert!(pt.contains("falta o texto em português (\"pt\")") && !pt.contains("missing the Portuguese text"), "{pt}");
    // A language carimbo does not speak is refused before anything is checked.
    let (code, out, err) = carimbo(&["check", "--lang", "fr", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--lang") && out.is_empty(), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn details_of_layout_rule_and_label_problems_are_printed_in_chinese_and_portuguese() {
    let tmp = tempfile::tempdir().unwrap();
    let mut def = common::leave_form();
    def["layout"]["widgets"]["reason"] = serde_json::json!("slider");
    def["layout"]["groups"][0]["fields"].as_array_mut().unwrap().push(serde_json::json!("no_such_field"));
    def["rules"][0]["logic"] = serde_json::json!({"<=": [{"var": "start"}, {"var": "end_date"}]});
    def["labels"]["reason"].as_object_mut().unwrap().remove("pt");
    let file = tmp.path().join("absence-and-annual-leave.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&def).unwrap()).unwrap();
    let f = file.display().to_string();
    let line_at = |out: &str, pointer: &str| -> String {
        out.lines().find(|l| l.starts_with(&format!("{f}:{pointer}:"))).unwrap_or_else(|| panic!("no line for {pointer} in:\n{out}")).to_string()
    };
    let (code, zh, _) = carimbo(&["check", "--lang", "zh", tmp.path().to_str().unwrap(), "forms/reference"]);
    assert_eq!(code, 1, "{zh}");
    for (pointer, words) in [
        ("/layout/widgets/reason", "未知的元件 \"slider\"；請用以下之一：textarea、checkbox"),
        ("/layout/groups/0/fields/3", "\"no_such_field\" 不是結構描述的頂層欄位"),
        ("/rules/0/logic/<=/0/var", "讀取 \"start\"，但它不是表格的欄位（"),
        ("/labels/reason", "缺少葡文文字"),
    ] {
        let line = line_at(&zh, pointer);
        assert!(line.contains(words) && line.ends_with(']'), "{pointer}: {line}");
    }
    let (_, pt, _) = carimbo(&["check", "--lang", "pt", tmp.path().to_str().unwrap(), "forms/reference"]);
    for (pointer, words) in [
        ("/layout/widgets/reason", "elemento de entrada desconhecido \"slider\"; use um de textarea, checkbox"),
        ("/layout/groups/0/fields/3", "\"no_such_field\" não é campo de topo do esquema"),
        ("/rules/0/logic/<=/0/var", "lê \"start\", que não é campo do formulário ("),
        ("/labels/reason", "falta o texto em português"),
    ] {
        let line = line_at(&pt, pointer);
        assert!(line.contains(words), "{pointer}: {line}");
    }
    // English stays the stable text it was.
    let (_, en, _) = carimbo(&["check", tmp.path().to_str().unwrap(), "forms/reference"]);
    assert!(line_at(&en, "/layout/widgets/reason").contains("unknown widget \"slider\"; use one of textarea, checkbox"), "{en}");
    assert!(line_at(&en, "/layout/groups/0/fields/3").contains("\"no_such_field\" is not a top-level field of the schema"), "{en}");
    for lang in ["zh", "pt"] {
        let (_, out, _) = carimbo(&["check", "--lang", lang, tmp.path().to_str().unwrap(), "forms/reference"]);
        for english in ["unknown widget", "is not a top-level field", "which is not a field of the form", "missing the Portuguese"] {
            assert!(!out.contains(english), "{lang}: {english:?} in\n{out}");
        }
    }
}

#[test]
fn the_warning_for_a_step_assigned_to_the_applicant_is_printed_in_chinese() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = common::read_json(&common::repo().join("workflows/absence-and-annual-leave.json"));
    w["steps"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"id": "applicant-signs", "title": {"zh": "申請人簽署", "pt": "O requerente assina", "en": "The applicant signs"},
        "assignee": {"role": "applicant"}, "actions": ["sign"], "signature": "advanced"}));
    let file = tmp.path().join("absence-and-annual-leave.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&w).unwrap()).unwrap();
    let (code, stdout, stderr) = carimbo(&["check", "--lang", "zh", "forms/absence-and-annual-leave.json", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let line = stdout.lines().find(|l| l.starts_with(&format!("{}:/steps/3:", file.display()))).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("步驟 \"applicant-signs\" 交給申請人") && line.ends_with("(警告)"), "{line}");
}
