//! Black-box tests of the TOTP second factor against someone who has the password (issue 11,
//! points 6 to 9): wrong codes are limited per account (429 with `Retry-After`, a correct code
//! refused while locked) and checked only after the signature; a code is accepted once
//! (RFC 6238 §5.2); an enrolled factor is replaced only with a current code of it or by an
//! administrator's recorded reset; and secrets are encrypted at rest, in files only the server's
//! user can read. Each test starts the real server on a random port and talks HTTP; the codes
//! are what the person's authenticator app would show.

use crate::common;

use carimbo::accounts::{AccountFiles, Accounts};
use carimbo::http::{AppState, DEMO_PASSWORD, Paths};
use chrono::{Duration, Utc};
use common::server::{Client, TestServer};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

fn example(form: &str) -> Value {
    common::read_json(&common::repo().join(format!("forms/{form}.json")))["examples"]["valid"][0]["data"].clone()
}

/// A family-allowance case waiting for the head of department (p028), whose step demands an
/// advanced signature and a second factor.
fn case_at_head(s: &TestServer, key: &str) -> String {
    let id = s.login("p032").submit_ok("family-allowance", &example("family-allowance"), key);
    let r = s.login("p018").act(&id, "hr-check", "approve");
    assert_eq!(r.status, 200, "{}", r.body);
    id
}

/// Enrols a second factor for the client's person through the API, as the page does.
fn enrol(s: &TestServer, c: &Client) {
    assert_eq!(c.post("/api/v1/me/totp", &json!({})).status, 200);
    let code = s.totp_now(c.person());
    assert_eq!(c.post("/api/v1/me/totp/confirm", &json!({"code": code})).status, 204);
}

/// A code of no time step near now: wrong for the next few minutes.
fn wrong_code(s: &TestServer, person: &str) -> String {
    let near: Vec<String> = (-2..=6).map(|k| s.state.accounts.current_totp_for_tests(person, Utc::now() + Duration::seconds(30 * k)).unwrap()).collect();
    ["000000", "111111", "222222", "333333", "444444", "555555", "666666", "777777", "888888", "999999", "123456"]
        .iter()
        .find(|c| !near.iter().any(|n| n == *c))
        .unwrap()
        .to_string()
}

/// The code of the step after the current one, which the server accepts (one step of drift):
/// the current one was spent confirming the enrolment.
fn next_code(s: &TestServer, person: &str) -> String {
    s.state.accounts.next_totp_for_tests(person, Utc::now()).unwrap()
}

fn step_status(c: &Client, case: &str, step: &str) -> String {
    c.case(case).body["case"]["steps"][step]["status"].as_str().unwrap_or_default().to_string()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn audit_lines(s: &TestServer) -> Vec<Value> {
    std::fs::read_to_string(s.state.accounts.audit_log_path())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn forty_wrong_codes_lock_the_second_factor_and_even_the_right_code_waits_for_the_lock() {
    let s = TestServer::start();
    let id = case_at_head(&s, "lock-1");
    let head = s.login("p028");
    enrol(&s, &head);
    let wrong = wrong_code(&s, "p028");

    let mut statuses = Vec::new();
    for _ in 0..40 {
        let r = head.act_with(&id, "head", "approve", json!({"totp": wrong}));
        if r.status == 429 {
            r.problem(429, "CARIMBO-E0608");
            let wait: u64 = r.header("retry-after").expect("a Retry-After header").parse().expect("Retry-After in seconds");
            assert!((1..=15 * 60).contains(&wait), "{wait}");
        } else {
            r.problem(401, "CARIMBO-E0604");
        }
        statuses.push(r.status);
    }
    assert_eq!(&statuses[..5], &[401; 5], "five wrong codes are told they are wrong");
    assert!(statuses[5..].iter().all(|s| *s == 429), "then every attempt is refused unchecked: {statuses:?}");

    let r = head.act_with(&id, "head", "approve", json!({"totp": next_code(&s, "p028")}));
    r.problem(429, "CARIMBO-E0608");
    assert!(r.header("retry-after").is_some());
    assert_eq!(step_status(&head, &id, "head"), "open", "nothing was decided");

    let lines = audit_lines(&s);
    assert_eq!(lines.iter().filter(|l| l["event"] == "second-factor-failed" && l["person"] == "p028").count(), 5, "each failure is recorded");
    assert_eq!(lines.iter().filter(|l| l["event"] == "second-factor-locked" && l["person"] == "p028").count(), 1, "and the lock");
    assert!(!std::fs::read_to_string(s.state.accounts.audit_log_path()).unwrap().contains(&format!("\"{wrong}\"")), "no code in the record");
}

#[test]
fn without_a_valid_signature_the_code_is_not_even_checked() {
    let s = TestServer::start();
    let id = case_at_head(&s, "order-1");
    let other = case_at_head(&s, "order-2");
    let head = s.login("p028");
    enrol(&s, &head);
    let wrong = wrong_code(&s, "p028");
    // A stolen session without the key: no signature, or one made for another case.
    for _ in 0..10 {
        head.post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "head", "action": "approve", "totp": wrong})).problem(422, "CARIMBO-E0302");
        let elsewhere = head.sign(&json!({"kind": "act", "case": other, "step": "head", "action": "approve"}));
        head.post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "head", "action": "approve", "signed": elsewhere, "totp": wrong}))
            .problem(422, "CARIMBO-E0500");
    }
    // Twenty probes, and none of them counted: the owner's next act goes through.
    let r = head.act_with(&id, "head", "approve", json!({"totp": next_code(&s, "p028")}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(audit_lines(&s).iter().all(|l| l["event"] != "second-factor-failed"), "no failure was recorded");
}

#[test]
fn the_same_code_twice_in_one_window_is_refused_the_second_time() {
    let s = TestServer::start();
    let (first, second) = (case_at_head(&s, "replay-1"), case_at_head(&s, "replay-2"));
    let head = s.login("p028");
    enrol(&s, &head);
    let code = next_code(&s, "p028");
    let r = head.act_with(&first, "head", "approve", json!({"totp": code}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = head.act_with(&second, "head", "approve", json!({"totp": code}));
    r.problem(401, "CARIMBO-E0609");
    assert!(r.body["messages"]["en"].as_str().unwrap().contains("already used"), "{}", r.body);
    assert_eq!(step_status(&head, &second, "head"), "open", "nothing stored");
    // The code that confirmed the enrolment was spent too.
    head.act_with(&second, "head", "approve", json!({"totp": s.totp_now("p028")})).problem(401, "CARIMBO-E0609");
    // A replay is not a wrong guess: it does not count towards the lock.
    assert!(audit_lines(&s).iter().all(|l| l["event"] != "second-factor-failed"));
}

#[test]
fn one_code_stands_for_every_act_of_one_batch_and_not_for_the_next_batch() {
    let s = TestServer::start();
    let cases: Vec<String> = (0..3).map(|i| case_at_head(&s, &format!("batch-{i}"))).collect();
    let head = s.login("p028");
    enrol(&s, &head);
    let code = next_code(&s, "p028");
    let item = |case: &str| json!({"case": case, "step": "head", "action": "approve", "totp": code, "signed": head.sign(&json!({"kind": "act", "case": case, "step": "head", "action": "approve"}))});
    let r = head.post("/api/v1/acts/batch", &json!({"items": [item(&cases[0]), item(&cases[1])]}));
    assert_eq!((r.status, r.body["done"].as_u64()), (200, Some(2)), "{}", r.body);
    let r = head.post("/api/v1/acts/batch", &json!({"items": [item(&cases[2])]}));
    assert_eq!(r.body["results"][0]["problem"]["code"], "CARIMBO-E0609", "{}", r.body);
}

#[test]
fn replacing_an_enrolled_factor_needs_a_code_of_the_old_one() {
    let s = TestServer::start();
    let (first, second) = (case_at_head(&s, "replace-1"), case_at_head(&s, "replace-2"));
    let head = s.login("p028");
    let r = head.post("/api/v1/me/totp", &json!({}));
    let old_app = totp_rs::Totp::from_url(r.body["url"].as_str().unwrap()).unwrap();
    assert_eq!(head.post("/api/v1/me/totp/confirm", &json!({"code": old_app.generate_current().to_string()})).status, 204);
    let unix_now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();

    // A stolen password alone: no code, or a wrong one.
    head.post("/api/v1/me/totp", &json!({})).problem(403, "CARIMBO-E0610");
    head.request("POST", "/api/v1/me/totp", None, &[]).problem(403, "CARIMBO-E0610");
    head.post("/api/v1/me/totp", &json!({"current_code": wrong_code(&s, "p028")})).problem(401, "CARIMBO-E0604");
    head.post("/api/v1/me/totp/confirm", &json!({"code": "123456"})).problem(422, "CARIMBO-E0605");
    assert_eq!(head.get("/api/v1/me").body["second_factor"], true, "the old factor stays");
    head.post("/api/v1/me/totp", &json!({"current_code": 123456})).problem(400, "CARIMBO-E0704");

    // With a current code of the old factor.
    let r = head.post("/api/v1/me/totp", &json!({"current_code": next_code(&s, "p028")}));
    assert_eq!(r.status, 200, "{}", r.body);
    let new_app = totp_rs::Totp::from_url(r.body["url"].as_str().unwrap()).unwrap();
    assert_eq!(head.post("/api/v1/me/totp/confirm", &json!({"code": new_app.generate_current().to_string()})).status, 204);
    assert_eq!(audit_lines(&s).last().unwrap()["event"], "second-factor-replaced");

    // The old phone no longer works; the new one does.
    head.act_with(&first, "head", "approve", json!({"totp": old_app.generate(unix_now() + 30).to_string()})).problem(401, "CARIMBO-E0604");
    let r = head.act_with(&second, "head", "approve", json!({"totp": new_app.generate(unix_now() + 30).to_string()}));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn an_administrator_resets_a_lost_factor_and_the_reset_is_recorded_while_others_get_403() {
    let s = TestServer::start();
    let head = s.login("p028");
    enrol(&s, &head);
    let reset = "/api/v1/admin/accounts/p028/totp/reset";
    s.anonymous().post(reset, &json!({})).problem(401, "CARIMBO-E0701");
    for who in ["p005", "p003", "p022", "p028"] {
        s.login(who).post(reset, &json!({})).problem(403, "CARIMBO-E0702");
    }
    assert_eq!(head.get("/api/v1/me").body["second_factor"], true, "nothing changed");
    assert!(audit_lines(&s).iter().all(|l| l["event"] != "second-factor-reset"));

    let admin = s.login("p032");
    let r = admin.post(reset, &json!({}));
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(head.get("/api/v1/me").body["second_factor"], false);
    let line = audit_lines(&s).into_iter().find(|l| l["event"] == "second-factor-reset").expect("the reset is recorded");
    assert_eq!((line["person"].as_str(), line["by"].as_str()), (Some("p028"), Some("p032")), "whom and who");
    assert!(line["at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).is_some(), "and when: {line}");
    assert_eq!(s.state.accounts.audit_log_path(), s.state.paths.data.join("audit.jsonl"));
    #[cfg(unix)]
    assert_eq!(mode(s.state.accounts.audit_log_path()), 0o600);

    admin.post(reset, &json!({})).problem(409, "CARIMBO-E0615");
    admin.post("/api/v1/admin/accounts/nobody/totp/reset", &json!({})).problem(404, "CARIMBO-E0603");
    // With the factor gone, a new phone is enrolled without a code of the lost one.
    assert_eq!(head.post("/api/v1/me/totp", &json!({})).status, 200);
}

/// Every string in a JSON document that looks like a base32 TOTP secret (16 or more of A–Z, 2–7).
fn base32_strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) if s.len() >= 16 && s.trim_end_matches('=').chars().all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(base32_strings).collect(),
        Value::Object(o) => o.values().flat_map(base32_strings).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn totp_secrets_are_encrypted_at_rest_in_files_only_the_server_can_read() {
    let s = TestServer::start();
    let head = s.login("p028");
    let secret = head.post("/api/v1/me/totp", &json!({})).body["secret"].as_str().unwrap().to_string();
    assert_eq!(head.post("/api/v1/me/totp/confirm", &json!({"code": s.totp_now("p028")})).status, 204);
    let pending = s.login("p005").post("/api/v1/me/totp", &json!({})).body["secret"].as_str().unwrap().to_string();

    let data = &s.state.paths.data;
    let text = std::fs::read_to_string(data.join("accounts.json")).unwrap();
    assert!(!text.contains(&secret) && !text.contains(&pending), "neither the enrolled nor the pending secret in clear");
    assert_eq!(base32_strings(&serde_json::from_str(&text).unwrap()), Vec::<String>::new(), "no base32 secret at all");
    assert!(!std::fs::read_to_string(data.join("keys/totp.key")).unwrap().contains(&secret));
    #[cfg(unix)]
    {
        assert_eq!(mode(&data.join("accounts.json")), 0o600, "accounts.json");
        assert_eq!(mode(&data.join("keys/totp.key")), 0o600, "the key file");
        assert_eq!(mode(&data.join("keys")), 0o700, "the key directory");
        assert_eq!(mode(&data.join("audit.jsonl")), 0o600, "the audit log");
    }
}

#[test]
fn a_clear_text_secret_from_an_older_accounts_file_is_encrypted_at_start_and_keeps_working() {
    let data = tempfile::tempdir().unwrap();
    let legacy = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    {
        // The accounts file of an older carimbo: the secret in clear, the default mode, no key.
        let files = AccountFiles::in_data_dir(data.path());
        Accounts::open(&files).unwrap().ensure(&["p028".into()], DEMO_PASSWORD).unwrap();
        let mut file: Value = common::read_json(&files.accounts);
        file["p028"]["totp_secret"] = json!(legacy);
        std::fs::write(&files.accounts, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
        std::fs::remove_dir_all(data.path().join("keys")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&files.accounts, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let state = Arc::new(AppState::open(common::demo_paths(&common::repo(), data.path())).expect("the older file opens"));
    let text = std::fs::read_to_string(data.path().join("accounts.json")).unwrap();
    assert!(!text.contains(legacy), "re-written encrypted");
    #[cfg(unix)]
    assert_eq!(mode(&data.path().join("accounts.json")), 0o600);
    let s = TestServer::serve(state, data);
    let id = case_at_head(&s, "legacy-1");
    let phone = totp_rs::Builder::new().with_secret(totp_rs::Secret::try_from_base32(legacy).unwrap()).with_account_name("p028").build().unwrap();
    let r = s.login("p028").act_with(&id, "head", "approve", json!({"totp": phone.generate_current().to_string()}));
    assert_eq!(r.status, 200, "the phone enrolled before the upgrade still works: {}", r.body);
}

#[test]
fn a_missing_or_wrong_totp_key_is_a_clear_error_at_start() {
    let data = tempfile::tempdir().unwrap();
    let files = AccountFiles::in_data_dir(data.path());
    {
        let accounts = Accounts::open(&files).unwrap();
        accounts.ensure(&["p028".into()], DEMO_PASSWORD).unwrap();
        accounts.begin_totp("p028", None, Utc::now()).unwrap();
        accounts.confirm_totp("p028", &accounts.current_totp_for_tests("p028", Utc::now()).unwrap(), Utc::now()).unwrap();
    }
    let paths = || common::demo_paths(&common::repo(), data.path());
    // One store for every attempt (sled lets one handle at a time hold it).
    let store: Arc<dyn carimbo::store::Store> = Arc::new(carimbo::store::SledStore::open(data.path().join("store")).unwrap());
    let start = |paths: Paths| AppState::with_store(paths, store.clone());
    std::fs::rename(&files.totp_key, data.path().join("totp.key.elsewhere")).unwrap();
    let Err(e) = start(paths()) else { panic!("started without the key") };
    assert!(e.to_string().contains("CARIMBO-E0612") && e.to_string().contains("totp.key"), "{e}");
    assert!(!files.totp_key.exists(), "no new key is made over the lost one");

    std::fs::create_dir_all(files.totp_key.parent().unwrap()).unwrap();
    std::fs::write(&files.totp_key, format!("{}\n", "ab".repeat(32))).unwrap();
    let Err(e) = start(paths()) else { panic!("started with another key") };
    assert!(e.to_string().contains("CARIMBO-E0613") && e.to_string().contains("p028"), "{e}");

    std::fs::write(&files.totp_key, "not a key\n").unwrap();
    let Err(e) = start(paths()) else { panic!("started with a damaged key") };
    assert!(e.to_string().contains("CARIMBO-E0611"), "{e}");

    // The key may live outside the data directory (`serve --totp-key-file`).
    let mut elsewhere = paths();
    elsewhere.totp_key = data.path().join("totp.key.elsewhere");
    start(elsewhere).expect("the right key, from its own place");
}
