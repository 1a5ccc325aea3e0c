//! `carimbo check` as an author runs it: exit status, one line per problem, a summary when clean.

mod common;

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
