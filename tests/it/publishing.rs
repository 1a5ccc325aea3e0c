//! Publishing definitions through the real server, as an administrator would: a published
//! version is stored and served after a restart; versions only increase and one version is one
//! content; an identical upload publishes nothing; each publication is recorded (who, when,
//! hash, what changed) for administrators and auditors and shown on the author's page; a
//! returned case opened on the older version is corrected on it; every bad upload lists every
//! problem, with the file and whether it is the form's or the workflow's, and the old version
//! keeps serving. (Two PostgreSQL servers: `pg_two_processes.rs`.)

use crate::common;

use carimbo::http::AppState;
use common::server::{Client, TestServer, leave};
use serde_json::{Value, json};
use std::sync::Arc;

const LEAVE: &str = "absence-and-annual-leave";

/// The shipped leave form as version `version` with `substitute` required (the valid examples
/// name one).
fn leave_form_requiring_substitute(version: &str) -> Value {
    let mut form = common::leave_form();
    form["version"] = json!(version);
    form["schema"]["required"].as_array_mut().unwrap().push(json!("substitute"));
    for example in form["examples"]["valid"].as_array_mut().unwrap() {
        if example["data"].get("substitute").is_none() {
            example["data"]["substitute"] = json!("Wong Ka Man");
        }
    }
    form
}

fn upload(files: &[(&str, &Value)]) -> Value {
    json!({"files": files.iter().map(|(name, def)| json!({"name": name, "content": serde_json::to_string_pretty(def).unwrap()})).collect::<Vec<_>>()})
}

fn publish(admin: &Client, files: &[(&str, &Value)]) -> common::server::Reply {
    admin.post("/api/v1/admin/definitions", &upload(files))
}

fn problem_codes(reply: &common::server::Reply) -> Vec<(String, String, String, String)> {
    reply.body["report"]["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("a problem list: {}", reply.body))
        .iter()
        .map(|p| {
            (
                p["file"].as_str().unwrap().to_string(),
                p["definition"].as_str().unwrap().to_string(),
                p["pointer"].as_str().unwrap().to_string(),
                p["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A server on a data directory the test keeps, so that it can be started again on it.
fn start_on(data: &std::path::Path) -> TestServer {
    let state = AppState::open(common::demo_paths(&common::repo(), data)).expect("the server state opens");
    TestServer::serve(Arc::new(state), tempfile::tempdir().unwrap())
}

fn served_version(s: &TestServer) -> String {
    let r = s.login("p005").get(&format!("/api/v1/forms/{LEAVE}"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["version"].as_str().or_else(|| r.body["form"]["version"].as_str()).unwrap_or_else(|| panic!("a version in {}", r.body)).to_string()
}

/// A leave request without a substitute is refused by the published 1.1.0: not even a payload
/// to sign is given for it, nor is a submission accepted.
fn refused_without_substitute(staff: &Client) {
    let data = leave(1);
    let payload = json!({"kind": "submit", "form": LEAVE, "data": data, "idempotency_key": "no-substitute"});
    let r = staff.post("/api/v1/signing-payload", &payload);
    r.problem(422, "CARIMBO-E0110");
    assert_eq!(r.body["errors"][0]["pointer"], "/substitute", "{}", r.body);
    staff.post("/api/v1/cases", &json!({"form": LEAVE, "data": data, "idempotency_key": "no-substitute"})).problem(422, "CARIMBO-E0110");
}

#[test]
fn a_published_version_is_recorded_and_still_served_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let s = start_on(&data);
        assert_eq!(served_version(&s), "1.0.0");
        let admin = s.login("p032");
        let r = publish(&admin, &[("absence-and-annual-leave.json", &leave_form_requiring_substitute("1.1.0"))]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!((r.body["applied"].clone(), r.body["publication"]["seq"].clone()), (json!(true), json!(1)), "{}", r.body);
        let d = &r.body["publication"]["definitions"][0];
        assert_eq!(
            (d["kind"].as_str(), d["id"].as_str(), d["version"].as_str(), d["previous_version"].as_str()),
            (Some("form"), Some(LEAVE), Some("1.1.0"), Some("1.0.0")),
            "{d}"
        );
        let changes: Vec<&str> = d["changes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(changes.contains(&"/version") && changes.iter().any(|c| c.starts_with("/schema/required")), "{changes:?}");
        assert_eq!(served_version(&s), "1.1.0");
        refused_without_substitute(&s.login("p005"));
    }
    // Started again on the same data: the published version is served, not the file's 1.0.0.
    let s = start_on(&data);
    assert_eq!(served_version(&s), "1.1.0");
    assert_eq!(s.state.cases.start_report().len(), 1, "{:?}", s.state.cases.start_report());
    assert!(s.state.cases.start_report()[0].contains("the store wins"), "{:?}", s.state.cases.start_report());
    let staff = s.login("p005");
    refused_without_substitute(&staff);
    let mut with_substitute = leave(1);
    with_substitute["substitute"] = json!("Wong Ka Man");
    staff.submit_ok(LEAVE, &with_substitute, "with-substitute");

    // The record: who, when, the hash, for administrators and auditors only.
    for who in ["p032", "p022"] {
        let r = s.login(who).get("/api/v1/admin/publications");
        assert_eq!(r.status, 200, "{who}: {}", r.body);
        let list = r.body["publications"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{}", r.body);
        assert_eq!(list[0]["by"], "p032");
        assert!(list[0]["at"].as_str().is_some_and(|t| t.starts_with("20")), "{}", r.body);
        assert_eq!(list[0]["definitions"][0]["hash"].as_str().map(str::len), Some(64), "{}", r.body);
    }
    s.login("p005").get("/api/v1/admin/publications").problem(403, "CARIMBO-E0702");
}

#[test]
fn an_identical_upload_publishes_nothing_and_a_reused_or_lower_version_is_refused() {
    let s = TestServer::start();
    let admin = s.login("p032");
    let v11 = leave_form_requiring_substitute("1.1.0");
    assert_eq!(publish(&admin, &[("absence-and-annual-leave.json", &v11)]).status, 200);

    let again = publish(&admin, &[("absence-and-annual-leave.json", &v11)]);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!((again.body["applied"].clone(), again.body["unchanged"].clone()), (json!(false), json!(true)), "{}", again.body);
    // The shipped 1.0.0 is the same content as was served before: still lower than 1.1.0.
    let lower = publish(&admin, &[("absence-and-annual-leave.json", &common::leave_form())]);
    lower.problem(422, "CARIMBO-E0708");
    assert!(problem_codes(&lower).contains(&(format!("forms/{LEAVE}.json"), "form".into(), "/version".into(), "CARIMBO-E0710".into())), "{}", lower.body);

    let mut other = v11.clone();
    other["labels"]["substitute"]["en"] = json!("Who stands in");
    let reused = publish(&admin, &[("absence-and-annual-leave.json", &other)]);
    reused.problem(422, "CARIMBO-E0708");
    assert!(problem_codes(&reused).contains(&(format!("forms/{LEAVE}.json"), "form".into(), "/version".into(), "CARIMBO-E0709".into())), "{}", reused.body);

    // Nothing changed: one publication, 1.1.0 with its own hash still served.
    assert_eq!(admin.get("/api/v1/admin/publications").body["publications"].as_array().unwrap().len(), 1);
    assert_eq!(served_version(&s), "1.1.0");
    other["version"] = json!("1.2.0");
    assert_eq!(publish(&admin, &[("absence-and-annual-leave.json", &other)]).body["publication"]["seq"], 2);
}

#[test]
fn a_bad_upload_lists_every_problem_by_file_and_kind_and_the_old_version_keeps_serving() {
    let s = TestServer::start();
    let admin = s.login("p032");
    // A form and its workflow share a file name; each problem says which one it is in.
    let mut form = leave_form_requiring_substitute("1.0.0");
    form["labels"]["reason"].as_object_mut().unwrap().remove("pt");
    let mut workflow = common::read_json(&common::repo().join(format!("workflows/{LEAVE}.json")));
    workflow["version"] = json!("1.1.0");
    workflow["steps"][2]["assignee"] = json!({"group": "hrr"});
    let r = publish(&admin, &[("absence-and-annual-leave.json", &form), ("absence-and-annual-leave.json", &workflow)]);
    r.problem(422, "CARIMBO-E0708");
    let problems = problem_codes(&r);
    let form_file = format!("forms/{LEAVE}.json");
    let workflow_file = format!("workflows/{LEAVE}.json");
    assert!(problems.contains(&(form_file.clone(), "form".into(), "/labels/reason".into(), "CARIMBO-E0012".into())), "{problems:?}");
    assert!(problems.contains(&(form_file.clone(), "form".into(), "/version".into(), "CARIMBO-E0709".into())), "{problems:?}");
    // The workflow is still checked against what of the form could be read: its own typo shows.
    assert!(problems.contains(&(workflow_file.clone(), "workflow".into(), "/steps/2/assignee/group".into(), "CARIMBO-E0011".into())), "{problems:?}");
    assert!(!problems.iter().any(|p| p.0 == workflow_file && p.2 == "/form"), "the form's problems are not the workflow's: {problems:?}");

    // A broken form alone adds no problem against the workflow being served.
    let alone = publish(&admin, &[("absence-and-annual-leave.json", &form)]);
    assert!(problem_codes(&alone).iter().all(|p| p.0 == form_file), "{}", alone.body);

    assert_eq!(served_version(&s), "1.0.0");
    assert!(admin.get("/api/v1/admin/publications").body["publications"].as_array().unwrap().is_empty());
    s.login("p005").submit_ok(LEAVE, &leave(1), "old-version-serves");
}

#[test]
fn a_returned_case_opened_on_the_older_version_is_corrected_on_it() {
    let s = TestServer::start();
    let staff = s.login("p005");
    let id = staff.submit_ok(LEAVE, &leave(2), "before-publication");
    let r = s.login("p003").act_with(&id, "supervisor", "return", json!({"comment": "one day only"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let admin = s.login("p032");
    assert_eq!(publish(&admin, &[("absence-and-annual-leave.json", &leave_form_requiring_substitute("1.1.0"))]).status, 200);

    // Corrected without the field 1.1.0 requires: the case is pinned to 1.0.0.
    let corrected = leave(1);
    let signed = staff.sign(&json!({"kind": "resubmit", "case": id, "data": corrected}));
    let r = staff.post(&format!("/api/v1/cases/{id}/resubmit"), &json!({"data": corrected, "signed": signed}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["case"]["status"], "open");
    assert_eq!(r.body["case"]["form"]["version"], "1.0.0");
}

#[test]
fn the_authors_page_shows_the_history_and_an_administrator_publishes_from_it() {
    let s = TestServer::start();
    let admin = s.login("p032").by_cookie();
    let boundary = "carimbo-test-boundary";
    let form = serde_json::to_string(&leave_form_requiring_substitute("1.1.0")).unwrap();
    let part = |name: &str, file: Option<&str>, value: &str| match file {
        Some(f) => {
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/json\r\n\r\n{value}\r\n")
        }
        None => format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"),
    };
    let body = |publish: bool| {
        let mut b = part("csrf", None, admin.csrf.as_deref().unwrap());
        b.push_str(&part("files", Some("absence-and-annual-leave.json"), &form));
        if publish {
            b.push_str(&part("publish", None, "1"));
        }
        b.push_str(&format!("--{boundary}--\r\n"));
        b
    };
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let r = admin.request("POST", "/author", Some(body(true).as_bytes()), &[("content-type", &content_type)]);
    assert_eq!(r.status, 200, "{}", r.body);
    let html = r.body.as_str().unwrap();
    assert!(html.contains("Published") && html.contains("1.0.0 → 1.1.0"), "{html}");
    assert_eq!(served_version(&s), "1.1.0");

    // The author sees the history; an author's "publish" is refused and changes nothing.
    let author = s.login("p019").by_cookie();
    let page = author.get("/author");
    assert_eq!(page.status, 200);
    assert!(page.body.as_str().unwrap().contains("Publication history") && page.body.as_str().unwrap().contains("p032"), "{}", page.body);
    let mut refused = part("csrf", None, author.csrf.as_deref().unwrap());
    refused.push_str(&part("files", Some("absence-and-annual-leave.json"), &serde_json::to_string(&leave_form_requiring_substitute("1.2.0")).unwrap()));
    refused.push_str(&part("publish", None, "1"));
    refused.push_str(&format!("--{boundary}--\r\n"));
    assert_eq!(author.request("POST", "/author", Some(refused.as_bytes()), &[("content-type", &content_type)]).status, 403);
    assert_eq!(served_version(&s), "1.1.0");
}

#[test]
fn a_published_holiday_calendar_is_used_for_working_days_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let request = leave(5);
    let wednesday = {
        let monday = chrono::NaiveDate::parse_from_str(request["start_date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
        (monday + chrono::Duration::days(2)).to_string()
    };
    let working_days = |s: &TestServer| {
        let r = s.login("p005").post(&format!("/api/v1/forms/{LEAVE}/validate"), &json!({"data": request}));
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["computed"]["working_days"].as_u64().unwrap_or_else(|| panic!("working days in {}", r.body))
    };
    {
        let s = start_on(&data);
        assert_eq!(working_days(&s), 5);
        let mut calendar = common::read_json(&common::repo().join("forms/reference/macau-public-holidays.json"));
        calendar["holidays"]
            .as_array_mut()
            .unwrap()
            .push(json!({"date": wednesday, "name": {"zh": "特別假日", "pt": "Feriado extraordinário", "en": "Extraordinary holiday"}}));
        let r = publish(&s.login("p032"), &[("macau-public-holidays.json", &calendar)]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["publication"]["definitions"][0]["kind"], "holiday-calendar", "{}", r.body);
        assert_eq!(working_days(&s), 4);
    }
    let s = start_on(&data);
    assert_eq!(working_days(&s), 4);
    assert!(
        s.state.cases.start_report().iter().any(|l| l.starts_with("holiday-calendar macau-public-holidays: published #1")),
        "{:?}",
        s.state.cases.start_report()
    );
}

#[test]
fn the_served_definition_written_out_differently_is_the_same_content_and_publishes_nothing() {
    let s = TestServer::start();
    let admin = s.login("p032");
    let compact = serde_json::to_string(&common::leave_form()).unwrap();
    let r = admin.post("/api/v1/admin/definitions", &json!({"files": [{"name": "absence-and-annual-leave.json", "content": compact}]}));
    assert_eq!((r.status, r.body["unchanged"].clone()), (200, json!(true)), "{}", r.body);
    assert!(admin.get("/api/v1/admin/publications").body["publications"].as_array().unwrap().is_empty());
    let served = s.login("p005").get(&format!("/api/v1/forms/{LEAVE}")).body["hash"].clone();
    let file = std::fs::read(common::repo().join(format!("forms/{LEAVE}.json"))).unwrap();
    assert_eq!(served.as_str(), Some(hex::encode(carimbo::pki::cert::sha256(&file)).as_str()), "the file's bytes are still the ones served");
}

#[test]
fn an_author_checking_a_broken_form_in_chinese_reads_what_each_problem_means_in_chinese() {
    let s = TestServer::start();
    let author = s.login("p019").by_cookie();
    let boundary = "carimbo-test-boundary";
    let mut form = leave_form_requiring_substitute("1.1.0");
    form["labels"]["reason"].as_object_mut().unwrap().remove("pt");
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"absence-and-annual-leave.json\"\r\nContent-Type: application/json\r\n\r\n{}\r\n--{boundary}--\r\n",
        author.csrf.as_deref().unwrap(),
        serde_json::to_string(&form).unwrap()
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let r = author.request("POST", "/author", Some(body.as_bytes()), &[("content-type", &content_type), ("accept-language", "zh-Hant-MO")]);
    assert_eq!(r.status, 422, "{}", r.body);
    let html = r.body.as_str().unwrap();
    assert!(html.contains("缺少中文、葡文或英文"), "{html}");
    assert!(html.contains("詳情：") && html.contains("缺少葡文文字") && html.contains("href=\"/docs/errors#carimbo-e0012\""), "{html}");
    // The detail is in Chinese, not English marked as such.
    assert!(!html.contains("<span lang=\"en\">") && !html.contains("missing the Portuguese text"), "{html}");
    assert_eq!(served_version(&s), "1.0.0");
}

#[test]
fn an_upload_checked_in_portuguese_or_chinese_answers_each_problem_in_that_language_and_in_english() {
    let s = TestServer::start();
    let admin = s.login("p032");
    // 1.0.0 is served with other content: the version is refused too.
    let mut form = leave_form_requiring_substitute("1.0.0");
    form["labels"]["reason"].as_object_mut().unwrap().remove("pt");
    form["layout"]["widgets"]["reason"] = json!("slider");
    let mut workflow = common::read_json(&common::repo().join(format!("workflows/{LEAVE}.json")));
    workflow["version"] = json!("1.1.0");
    workflow["steps"][2]["assignee"] = json!({"group": "hrr"});
    let body = upload(&[("absence-and-annual-leave.json", &form), ("absence-and-annual-leave.json", &workflow)]);
    let problem_at = |reply: &common::server::Reply, pointer: &str| -> Value {
        let list = reply.body["report"]["problems"].as_array().unwrap_or_else(|| panic!("{}", reply.body)).clone();
        list.into_iter().find(|p| p["pointer"] == pointer).unwrap_or_else(|| panic!("no problem at {pointer}: {}", reply.body))
    };
    let pt = admin.post_with("/api/v1/admin/definitions", &body, &[("accept-language", "pt-PT")]);
    pt.problem(422, "CARIMBO-E0708");
    let label = problem_at(&pt, "/labels/reason");
    // `message` and `line` stay the stable English; `localized` is the reader's language.
    assert_eq!(label["message"], "missing the Portuguese text (\"pt\")", "{label}");
    assert_eq!(label["localized"]["lang"], "pt", "{label}");
    assert_eq!(label["localized"]["detail"], "falta o texto em português (\"pt\")", "{label}");
    assert!(label["localized"]["explanation"].as_str().is_some_and(|t| t.starts_with("Falta um texto em chinês")), "{label}");
    assert!(label["localized"]["line"].as_str().is_some_and(|l| l.contains("falta o texto em português") && l.ends_with("[CARIMBO-E0012]")), "{label}");
    let widget = problem_at(&pt, "/layout/widgets/reason");
    assert!(widget["localized"]["detail"].as_str().is_some_and(|d| d.starts_with("elemento de entrada desconhecido \"slider\"")), "{widget}");
    let group = problem_at(&pt, "/steps/2/assignee/group");
    assert!(group["localized"]["detail"].as_str().is_some_and(|d| d.starts_with("grupo desconhecido \"hrr\"")), "{group}");
    assert!(group["message"].as_str().is_some_and(|d| d.starts_with("unknown group \"hrr\"")), "{group}");

    let zh = admin.post_with("/api/v1/admin/definitions?lang=zh", &body, &[]);
    zh.problem(422, "CARIMBO-E0708");
    assert_eq!(problem_at(&zh, "/labels/reason")["localized"]["detail"], "缺少葡文文字（\"pt\"）");
    let version = problem_at(&zh, "/version");
    assert!(version["localized"]["detail"].as_str().is_some_and(|d| d.contains("已以其他內容發佈")), "{version}");
    assert!(version["message"].as_str().is_some_and(|d| d.contains("is already served with other content")), "{version}");
    assert_eq!(served_version(&s), "1.0.0", "nothing was published");
}
