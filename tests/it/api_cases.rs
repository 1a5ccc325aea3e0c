//! Black-box tests of cases through the API: submitting signed forms, approving, refusing
//! signatures that do not belong to the act or are too weak, sealing `simple` steps, batches,
//! withdrawal, return and resubmission, who may see a case and which fields, and the second
//! factor. Each test starts the real server on a random loopback port; signatures are made with
//! the demo PKI's keys over the payload the server hands out, as the page does with WebCrypto.

use crate::common;

use common::server::{Reply, TestServer, leave, sign_as};
use serde_json::{Value, json};

const LEAVE: &str = "absence-and-annual-leave";

use common::example;

fn status_of(r: &Reply) -> &str {
    r.body["case"]["status"].as_str().unwrap_or_default()
}

fn step_status<'a>(case: &'a Value, step: &str) -> &'a str {
    case["steps"][step]["status"].as_str().unwrap_or_default()
}

#[test]
fn staff_submit_leave_signed_with_p256_ed25519_and_rsa_keys_and_a_retry_is_replayed() {
    let s = TestServer::start();
    // p005: ECDSA P-256 (ES256), p006: Ed25519 (EdDSA), p009: RSA-2048 (PS256); all advanced CA.
    for who in ["p005", "p006", "p009"] {
        let c = s.login(who);
        let data = leave(2);
        let signed = c.sign(&json!({"kind": "submit", "form": LEAVE, "data": data, "idempotency_key": "leave-1"}));
        let body = json!({"form": LEAVE, "data": data, "idempotency_key": "leave-1", "signed": signed});
        let first = c.post("/api/v1/cases", &body);
        assert_eq!(first.status, 201, "{who}: {}", first.body);
        assert_eq!(first.body["replayed"], false);
        let case = &first.body["case"];
        assert_eq!(case["submitter"], who);
        assert_eq!(case["data"]["working_days"], 2, "computed by the server");
        assert_eq!(step_status(case, "supervisor"), "open");

        // The client did not hear the answer and sends the same request again.
        let retry = c.post("/api/v1/cases", &body);
        assert_eq!(retry.status, 200, "{}", retry.body);
        assert_eq!(retry.body["replayed"], true);
        assert_eq!(retry.body["case"]["id"], case["id"]);
        let mine = c.get("/api/v1/cases");
        assert_eq!(mine.body["cases"].as_array().unwrap().len(), 1, "one case, not two: {}", mine.body);
    }
}

#[test]
fn an_invalid_form_is_a_422_with_field_errors_in_the_requested_language() {
    let s = TestServer::start();
    let c = s.login("p005");
    let data = json!({"leave_type": "annual", "start_date": "2026-12-18", "end_date": "2026-12-14"});
    // Refused before anything is signed: the payload request validates too.
    let payload = c.post("/api/v1/signing-payload?lang=pt", &json!({"kind": "submit", "form": LEAVE, "data": data, "idempotency_key": "k"}));
    payload.problem(422, "CARIMBO-E0110");
    let r = c.post("/api/v1/cases?lang=pt", &json!({"form": LEAVE, "data": data, "idempotency_key": "k"}));
    let p = r.problem(422, "CARIMBO-E0110");
    assert_eq!(p["title"], "O formulário tem erros: corrija os campos indicados.");
    let errors = p["errors"].as_array().unwrap();
    let e = errors.iter().find(|e| e["pointer"] == "/end_date").unwrap_or_else(|| panic!("an error on /end_date: {p}"));
    assert_eq!(e["code"], "end-not-before-start");
    assert_eq!(e["message"], "A data de fim não pode ser anterior à data de início.");
    // Missing field, in Chinese this time.
    let r = c.post("/api/v1/cases?lang=zh", &json!({"form": LEAVE, "data": {"start_date": "2026-12-14", "end_date": "2026-12-14"}, "idempotency_key": "k"}));
    let p = r.problem(422, "CARIMBO-E0110");
    assert!(p["errors"].as_array().unwrap().iter().any(|e| e["pointer"] == "/leave_type" && e["code"] == "required"), "{p}");
    assert!(c.get("/api/v1/cases").body["cases"].as_array().unwrap().is_empty(), "nothing was opened");
}

#[test]
fn the_supervisor_approves_with_a_signature_and_the_simple_hr_step_is_sealed_by_the_service() {
    let s = TestServer::start();
    let staff = s.login("p005");
    let id = staff.submit_ok(LEAVE, &leave(2), "k");
    let supervisor = s.login("p003");
    let inbox = supervisor.get("/api/v1/inbox");
    assert!(inbox.body["entries"].as_array().unwrap().iter().any(|e| e["case_id"] == id.as_str() && e["step"] == "supervisor"), "{}", inbox.body);

    let signed = supervisor.sign(&json!({"kind": "act", "case": id, "step": "supervisor", "action": "approve"}));
    let body = json!({"step": "supervisor", "action": "approve", "comment": "Boas férias", "signed": signed, "idempotency_key": "approve-1"});
    let r = supervisor.post(&format!("/api/v1/cases/{id}/acts"), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["replayed"], false);
    // A retry of the same request (the answer was lost) is answered again, and appends nothing.
    let retry = supervisor.post(&format!("/api/v1/cases/{id}/acts"), &body);
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.body["replayed"], true);
    assert_eq!(retry.body["case"], r.body["case"]);
    let case = &r.body["case"];
    assert_eq!(step_status(case, "supervisor"), "done");
    assert_eq!(case["acts"][0]["level"], "qualified", "p003 holds a qualified certificate");
    assert_eq!(step_status(case, "head"), "skipped", "two days are under DAF's threshold");
    assert_eq!(step_status(case, "hr-records"), "open");

    // The personnel section records it: the step accepts `simple`, so no key is needed and the
    // service seals the act with its own key.
    let hr = s.login("p018");
    let payload = hr.post("/api/v1/signing-payload", &json!({"kind": "act", "case": id, "step": "hr-records", "action": "sign"}));
    assert_eq!(payload.body["required_level"], "simple");
    let r = hr.post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "hr-records", "action": "sign"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status_of(&r), "completed");
    let act = r.body["case"]["acts"].as_array().unwrap().iter().find(|a| a["step"] == "hr-records").cloned().unwrap();
    assert_eq!(act["level"], "simple");
    assert_eq!(act["actor"], "p018");

    // The stored seal verifies offline against the service certificate.
    let events = s.state.cases.events(&id).unwrap();
    let sealed = events.iter().map(|e| &e.body).find(|b| b["step"] == "hr-records" && b["signature"]["jws"].is_object()).expect("the sealed act is stored");
    let jws = &sealed["signature"]["jws"];
    let payload: carimbo::signing::SigningPayload = serde_json::from_value(jws["payload"].clone()).unwrap();
    assert_eq!((payload.case.as_str(), payload.step.as_str(), payload.signer.as_str()), (id.as_str(), "hr-records", "p018"));
    let signature = json!({"protected": jws["protected"], "signature": jws["signature"]}).to_string();
    let report = common::verifier().verify(signature.as_bytes(), &payload.canonical_bytes().unwrap(), &carimbo::signing::VerifyOptions::at(chrono::Utc::now()));
    let report = serde_json::to_value(&report).unwrap();
    assert_eq!(report["indication"], "TOTAL_PASSED", "{report}");
    assert_eq!(report["achieved_level"], "simple", "{report}");
}

#[test]
fn a_signature_made_for_another_case_is_refused_with_its_report_and_nothing_is_stored() {
    let s = TestServer::start();
    let staff = s.login("p005");
    let a = staff.submit_ok(LEAVE, &leave(1), "a");
    let b = staff.submit_ok(LEAVE, &leave(2), "b");
    let supervisor = s.login("p003");
    let before = supervisor.case(&b).body["case"].clone();
    let for_a = supervisor.sign(&json!({"kind": "act", "case": a, "step": "supervisor", "action": "approve"}));

    // 1. A's payload and signature sent as they are, to act on B.
    let r = supervisor.post(&format!("/api/v1/cases/{b}/acts"), &json!({"step": "supervisor", "action": "approve", "signed": for_a}));
    let p = r.problem(422, "CARIMBO-E0500");
    assert!(p["detail"].as_str().unwrap().contains("case"), "{p}");
    assert_eq!(p["report"]["indication"], "TOTAL_FAILED", "{p}");
    assert_eq!(p["report"]["sub_indication"], "SIG_CRYPTO_FAILURE", "{p}");

    // 2. B's own payload with A's signature under it.
    let b_payload = supervisor.post("/api/v1/signing-payload", &json!({"kind": "act", "case": b, "step": "supervisor", "action": "approve"}));
    let swapped = json!({"payload": b_payload.body["payload"], "signature": for_a["signature"]});
    let r = supervisor.post(&format!("/api/v1/cases/{b}/acts"), &json!({"step": "supervisor", "action": "approve", "signed": swapped}));
    let p = r.problem(422, "CARIMBO-E0500");
    assert_eq!(p["report"]["sub_indication"], "SIG_CRYPTO_FAILURE", "{p}");
    assert_eq!(p["report"]["code"], "CARIMBO-E0522", "{p}");

    // 3. A signature for approving, sent with a rejection of the same step.
    let approve_b = sign_as("p003", &b_payload.body);
    let r = supervisor.post(&format!("/api/v1/cases/{b}/acts"), &json!({"step": "supervisor", "action": "reject", "signed": approve_b}));
    let p = r.problem(422, "CARIMBO-E0500");
    assert_eq!(p["report"]["sub_indication"], "SIG_CRYPTO_FAILURE", "{p}");

    // 4. Someone else's signature over the right payload: the signer must be the person acting.
    let by_other = sign_as("p004", &b_payload.body);
    let r = supervisor.post(&format!("/api/v1/cases/{b}/acts"), &json!({"step": "supervisor", "action": "approve", "signed": by_other}));
    assert!(r.problem(422, "CARIMBO-E0500")["report"].is_object(), "{}", r.body);

    assert_eq!(supervisor.case(&b).body["case"], before, "nothing was stored on B");
    assert_eq!(s.state.cases.events(&b).unwrap().len() as u64, before["version"].as_u64().unwrap());
    // The real signature still works afterwards.
    assert_eq!(supervisor.act(&b, "supervisor", "approve").status, 200);
}

#[test]
fn a_step_demanding_a_qualified_signature_refuses_an_advanced_certificate_and_says_why() {
    let s = TestServer::start();
    // An instrument of appointment for p005, whose certificate comes from the advanced CA.
    let hr = s.login("p018");
    let id = hr.submit_ok("appointment-instrument", &example("appointment-instrument"), "appoint-p005");
    let authority = s.login("p001");
    assert_eq!(authority.act(&id, "authority", "sign").status, 200);
    let appointee = s.login("p005");
    let before = appointee.case(&id).body["case"].clone();
    assert_eq!(step_status(&before, "appointee"), "open");
    let payload = appointee.post("/api/v1/signing-payload", &json!({"kind": "act", "case": id, "step": "appointee", "action": "sign"}));
    assert_eq!(payload.body["required_level"], "qualified");

    let r = appointee.act(&id, "appointee", "sign");
    let p = r.problem(422, "CARIMBO-E0500");
    let report = &p["report"];
    assert_eq!(report["code"], carimbo::signing::LEVEL_NOT_MET_CODE, "{p}");
    assert_eq!(report["indication"], "INDETERMINATE", "{p}");
    assert_eq!(report["sub_indication"], "SIG_CONSTRAINTS_FAILURE", "{p}");
    assert_eq!(report["achieved_level"], "advanced", "{p}");
    assert_eq!(report["required_level"], "qualified", "{p}");
    let notes = report["notes"].as_array().expect("notes say why");
    assert!(notes.iter().any(|n| n.as_str().unwrap().contains("not qualified")), "{p}");
    assert_eq!(appointee.case(&id).body["case"], before, "nothing was stored");
}

#[test]
fn a_batch_with_one_bad_item_applies_the_others() {
    let s = TestServer::start();
    let mut ids = Vec::new();
    for who in ["p005", "p006", "p007"] {
        ids.push(s.login(who).submit_ok(LEAVE, &leave(1), "batch"));
    }
    let supervisor = s.login("p003");
    let item = |id: &str| {
        let signed = supervisor.sign(&json!({"kind": "act", "case": id, "step": "supervisor", "action": "approve"}));
        json!({"case": id, "step": "supervisor", "action": "approve", "signed": signed})
    };
    let mut items = vec![item(&ids[0]), item(&ids[1]), item(&ids[2])];
    // The third item carries the first case's signature.
    items[2]["signed"] = items[0]["signed"].clone();
    let r = supervisor.post("/api/v1/acts/batch?lang=pt", &json!({"items": items}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["done"], 2, "{}", r.body);
    assert_eq!(r.body["failed"], 1);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results[0]["ok"], true);
    assert_eq!(results[1]["ok"], true);
    assert_eq!(results[2]["ok"], false);
    assert_eq!(results[2]["case"], ids[2].as_str());
    assert_eq!(results[2]["problem"]["code"], "CARIMBO-E0500");
    assert_eq!(results[2]["problem"]["title"], "A assinatura não é válida; veja o relatório de validação.");
    assert!(results[2]["problem"]["report"].is_object(), "{}", r.body);

    for (id, expect) in ids.iter().zip(["done", "done", "open"]) {
        assert_eq!(step_status(&supervisor.case(id).body["case"], "supervisor"), expect, "{id}");
    }
    // Only the bad item is still in the inbox.
    let inbox = supervisor.get("/api/v1/inbox").body;
    let waiting: Vec<&str> = inbox["entries"].as_array().unwrap().iter().filter_map(|e| e["case_id"].as_str()).collect();
    assert_eq!(waiting, vec![ids[2].as_str()], "{inbox}");
    // A batch is for approvers only.
    s.login("p005").post("/api/v1/acts/batch", &json!({"items": []})).problem(403, "CARIMBO-E0702");
}

#[test]
fn the_submitter_withdraws_a_case_and_nobody_can_act_on_it_afterwards() {
    let s = TestServer::start();
    let staff = s.login("p005");
    let id = staff.submit_ok(LEAVE, &leave(1), "k");
    let supervisor = s.login("p003");
    supervisor.post(&format!("/api/v1/cases/{id}/withdraw"), &json!({})).problem(403, "CARIMBO-E0309");

    let r = staff.post(&format!("/api/v1/cases/{id}/withdraw"), &json!({"reason": "plans changed"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status_of(&r), "withdrawn");
    assert!(supervisor.get("/api/v1/inbox").body["entries"].as_array().unwrap().is_empty());
    // No longer assigned, the supervisor is no longer party to the case.
    supervisor.case(&id).problem(404, "CARIMBO-E0703");
    // The submitter sees it, and cannot do anything more with it.
    assert_eq!(staff.case(&id).body["case"]["status"], "withdrawn");
    staff.post(&format!("/api/v1/cases/{id}/withdraw"), &json!({})).problem(409, "CARIMBO-E0311");
    // Not even a payload to sign a new version is given for it.
    staff.post("/api/v1/signing-payload", &json!({"kind": "resubmit", "case": id, "data": leave(2)})).problem(409, "CARIMBO-E0303");
}

#[test]
fn a_returned_case_is_corrected_and_resubmitted_with_a_new_signature() {
    let s = TestServer::start();
    let staff = s.login("p005");
    let data = leave(2);
    let id = staff.submit_ok(LEAVE, &data, "k");
    let supervisor = s.login("p003");
    let r = supervisor.act_with(&id, "supervisor", "return", json!({"comment": "Indique o substituto"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status_of(&r), "returned");

    // The same data again changes nothing and is refused.
    let same = staff.sign(&json!({"kind": "resubmit", "case": id, "data": data}));
    staff.post(&format!("/api/v1/cases/{id}/resubmit"), &json!({"data": data, "signed": same})).problem(422, "CARIMBO-E0310");

    let mut corrected = data.clone();
    corrected["substitute"] = json!("Wong Wai Keong");
    // A signature over the first version's data does not cover the corrected data.
    let stale = staff.post(&format!("/api/v1/cases/{id}/resubmit"), &json!({"data": corrected, "signed": same}));
    stale.problem(422, "CARIMBO-E0500");

    let signed = staff.sign(&json!({"kind": "resubmit", "case": id, "data": corrected}));
    let r = staff.post(&format!("/api/v1/cases/{id}/resubmit"), &json!({"data": corrected, "signed": signed}));
    assert_eq!(r.status, 200, "{}", r.body);
    let case = &r.body["case"];
    assert_eq!(case["status"], "open");
    assert_eq!(case["data_version"], 2);
    assert_eq!(case["data"]["substitute"], "Wong Wai Keong");
    assert_eq!(step_status(case, "supervisor"), "open", "the route starts again");
    assert_eq!(supervisor.act(&id, "supervisor", "approve").status, 200);
}

#[test]
fn a_person_not_party_to_a_case_gets_404_for_everything_about_it() {
    let s = TestServer::start();
    let id = s.login("p005").submit_ok(LEAVE, &leave(1), "k");
    let outsider = s.login("p036");
    outsider.case(&id).problem(404, "CARIMBO-E0703");
    outsider.post("/api/v1/signing-payload", &json!({"kind": "act", "case": id, "step": "supervisor", "action": "approve"})).problem(404, "CARIMBO-E0703");
    outsider.post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "supervisor", "action": "approve"})).problem(404, "CARIMBO-E0703");
    outsider.post(&format!("/api/v1/cases/{id}/withdraw"), &json!({})).problem(404, "CARIMBO-E0703");
    outsider.post(&format!("/api/v1/cases/{id}/resubmit"), &json!({"data": leave(1)})).problem(404, "CARIMBO-E0703");
    // Indistinguishable from a case that does not exist.
    let missing = outsider.case("C-00000000000000000000");
    assert_eq!(missing.body["code"], outsider.case(&id).body["code"]);
    assert!(outsider.get("/api/v1/cases").body["cases"].as_array().unwrap().is_empty());
    // The parties see it: submitter, assigned supervisor; and the auditor.
    for who in ["p005", "p003", "p022"] {
        assert_eq!(s.login(who).case(&id).status, 200, "{who}");
    }
}

#[test]
fn a_diagnosis_on_a_medical_certificate_is_shown_to_the_personnel_section_only() {
    let s = TestServer::start();
    let doctor = s.login("doc02");
    let data = example("medical-certificate");
    assert_eq!(data["patient_id"], "p005");
    let id = doctor.submit_ok("medical-certificate", &data, "mc-1");
    // The patient and the auditor do not see it; the doctor who wrote it does (below).
    for who in ["p005", "p022"] {
        let r = s.login(who).case(&id);
        assert_eq!(r.status, 200, "{who}: {}", r.body);
        assert_eq!(r.body["case"]["data"]["diagnosis_code"], json!({"restricted": true}), "{who}");
        assert_eq!(r.body["case"]["data"]["patient_id"], "p005", "other fields stay visible to {who}");
        assert!(!r.body.to_string().contains("J06.9"), "{who} must not see the diagnosis anywhere");
    }
    // Their evidence bundle holds the diagnosis's salted commitment only, and says so.
    for who in ["p005", "p022"] {
        let bundle = s.login(who).get(&format!("/api/v1/cases/{id}/evidence"));
        assert_eq!(bundle.status, 200, "{who}: {}", bundle.body);
        assert!(!bundle.body["events"].to_string().contains("J06.9"), "{who} must not get the diagnosis in an evidence bundle");
        assert_eq!(bundle.body["withheld"], json!(["diagnosis_code"]), "{who}");
    }
    assert_eq!(doctor.case(&id).body["case"]["data"]["diagnosis_code"], "J06.9", "the form names doctors too");
    let hr = s.login("p018");
    let r = hr.case(&id);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["case"]["data"]["diagnosis_code"], "J06.9");
    let bundle = hr.get(&format!("/api/v1/cases/{id}/evidence"));
    assert_eq!(bundle.status, 200, "{}", bundle.body);
    assert!(bundle.body["events"].to_string().contains("J06.9"));
    assert!(bundle.body.get("withheld").is_none());
    // The answer to an act is filtered the same way.
    let act = hr.post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "hr-records", "action": "sign"}));
    assert_eq!(act.body["case"]["data"]["diagnosis_code"], "J06.9", "{}", act.body);
}

#[test]
fn a_step_marked_second_factor_needs_a_totp_code_enrolled_through_the_api() {
    let s = TestServer::start();
    let id = s.login("p032").submit_ok("family-allowance", &example("family-allowance"), "fa-1");
    assert_eq!(s.login("p018").act(&id, "hr-check", "approve").status, 200);
    let head = s.login("p028");
    let payload = head.post("/api/v1/signing-payload", &json!({"kind": "act", "case": id, "step": "head", "action": "approve"}));
    assert_eq!(payload.body["second_factor"], true, "{}", payload.body);

    head.act(&id, "head", "approve").problem(422, "CARIMBO-E0312");
    // A code before any enrolment is no second factor either.
    head.act_with(&id, "head", "approve", json!({"totp": "123456"})).problem(401, "CARIMBO-E0604");

    let enrolment = head.post("/api/v1/me/totp", &json!({}));
    assert_eq!(enrolment.status, 200, "{}", enrolment.body);
    // The authenticator app reads the otpauth:// URL from the QR code.
    let app = totp_rs::Totp::from_url(enrolment.body["url"].as_str().unwrap()).unwrap();
    let code = app.generate_current().to_string();
    assert_eq!(code, s.totp_now("p028"), "the authenticator app and the server agree");
    assert_eq!(head.post("/api/v1/me/totp/confirm", &json!({"code": code})).status, 204);

    let wrong = if code == "000000" { "111111" } else { "000000" };
    head.act_with(&id, "head", "approve", json!({"totp": wrong})).problem(401, "CARIMBO-E0604");
    assert_eq!(step_status(&head.case(&id).body["case"], "head"), "open", "nothing stored");
    // The confirming code is spent (RFC 6238 §5.2); the act takes the next step's, which the
    // server accepts with its one step of drift.
    let next = app.generate(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 30).to_string();
    let r = head.act_with(&id, "head", "approve", json!({"totp": next}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status_of(&r), "completed");
    let stored = s.state.cases.events(&id).unwrap();
    assert!(stored.iter().any(|e| e.body["step"] == "head" && e.body["signature"]["second_factor"] == true), "the second factor is recorded with the act");
}

#[test]
fn my_cases_and_the_inbox_page_with_cursors_and_a_bad_cursor_is_a_400() {
    let s = TestServer::start();
    let staff = s.login("p005");
    let ids: Vec<String> = (0..5).map(|i| staff.submit_ok(LEAVE, &leave(1), &format!("k{i}"))).collect();
    let mut seen = Vec::new();
    let mut path = "/api/v1/cases?limit=2".to_string();
    loop {
        let r = staff.get(&path);
        assert_eq!(r.status, 200, "{}", r.body);
        seen.extend(r.body["cases"].as_array().unwrap().iter().map(|c| c["case_id"].as_str().unwrap().to_string()));
        match r.body["next"].as_str() {
            Some(n) => path = format!("/api/v1/cases?limit=2&after={n}"),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(got, expected, "every case once over three pages: {seen:?}");

    let supervisor = s.login("p003");
    let first = supervisor.get("/api/v1/inbox?limit=3");
    let next = first.body["next"].as_str().expect("more than three open steps").to_string();
    let second = supervisor.get(&format!("/api/v1/inbox?limit=3&after={next}"));
    assert_eq!(first.body["entries"].as_array().unwrap().len() + second.body["entries"].as_array().unwrap().len(), 5);
    for path in ["/api/v1/cases?after=not-a-cursor", "/api/v1/inbox?after=not-a-cursor", "/api/v1/cases?after=00"] {
        let c = if path.contains("inbox") { &supervisor } else { &staff };
        c.get(path).problem(400, "CARIMBO-E0408");
    }
}

#[test]
fn a_body_repeating_a_member_name_is_a_400_and_opens_nothing() {
    let s = TestServer::start();
    let c = s.login("p005");
    let data = leave(2);
    let signed = c.sign(&json!({"kind": "submit", "form": LEAVE, "data": data, "idempotency_key": "leave-1"}));
    let body = json!({"form": LEAVE, "data": data, "idempotency_key": "leave-1", "signed": signed}).to_string();
    // The good request with one more `leave_type` in the data, before the signed one: read
    // last-wins it is the signed request and would open a case.
    let at = body.find(r#""leave_type":"#).expect("the data names a leave type");
    let twice = format!("{}\"leave_type\":\"sick\",{}", &body[..at], &body[at..]);
    let r = c.request("POST", "/api/v1/cases?lang=pt", Some(twice.as_bytes()), &[]);
    let p = r.problem(400, "CARIMBO-E0120");
    assert_eq!(p["title"], "Um objeto JSON repete o nome de um membro; escreva cada nome uma só vez.");
    assert!(p["detail"].as_str().unwrap().contains("\"leave_type\" appears twice in the object at /data"), "{p}");
    assert!(c.get("/api/v1/cases").body["cases"].as_array().unwrap().is_empty(), "nothing was opened");
    // Other bad bodies keep axum's answers (as problems): bad syntax 400, wrong shape 422.
    c.request("POST", "/api/v1/cases", Some(b"{\"form\":"), &[]).problem(400, "CARIMBO-E0704");
    c.request("POST", "/api/v1/cases", Some(b"{\"form\":1}"), &[]).problem(422, "CARIMBO-E0704");
    // The same request without the repeated member opens the case.
    assert_eq!(c.request("POST", "/api/v1/cases", Some(body.as_bytes()), &[]).status, 201);
}

/// Issue 11, point 4: HR member A (p018) files a reporting-for-duty slip about HR member B
/// (p019). B is not offered the HR step, is refused it under the conflict-of-interest rule
/// (asking for the payload or acting), and nothing changes; the third HR member signs it.
#[test]
fn the_subject_of_a_reporting_slip_in_hr_cannot_sign_it_and_another_hr_member_does() {
    let s = TestServer::start();
    let mut slip = example("reporting-for-duty");
    slip["staff_id"] = json!("p019");
    let id = s.login("p018").submit_ok("reporting-for-duty", &slip, "rfd-coi");
    let b = s.login("p019");
    let before = b.case(&id);
    assert_eq!(before.status, 200, "the subject reads their case: {}", before.body);
    assert_eq!(before.body["case"]["subject"], "p019");
    let in_inbox = |who: &common::server::Client| who.get("/api/v1/inbox").body["entries"].as_array().unwrap().iter().any(|e| e["case_id"] == id.as_str());
    assert!(!in_inbox(&b), "the subject is not offered the HR step");

    let ask = json!({"kind": "act", "case": id, "step": "receiving-hr", "action": "sign"});
    let payload = b.post("/api/v1/signing-payload", &ask);
    payload.problem(403, "CARIMBO-E0330");
    assert!(payload.body.get("payload").is_none());
    // B signs, with B's own key, the payload HR is given, made out to B.
    let mut theirs = s.login("p020").post("/api/v1/signing-payload", &ask).body;
    assert_eq!(theirs["payload"]["signer"], "p020", "{theirs}");
    theirs["payload"]["signer"] = json!("p019");
    theirs["canonical"] = json!(String::from_utf8(serde_json_canonicalizer::to_vec(&theirs["payload"]).unwrap()).unwrap());
    let signed_by_b = sign_as("p019", &theirs);
    let refused = b.post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "receiving-hr", "action": "sign", "signed": signed_by_b}));
    let problem = refused.problem(403, "CARIMBO-E0316");
    assert!(problem["detail"].as_str().unwrap().contains("p019 is the subject of this case"), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("conflict of interest"), "{problem}");
    let after = b.case(&id);
    assert_eq!(after.body, before.body, "a refused act changes nothing");
    assert_eq!(step_status(&after.body["case"], "receiving-hr"), "open");

    let c = s.login("p020");
    assert!(in_inbox(&c), "the other HR member is offered the step");
    let signed = c.act(&id, "receiving-hr", "sign");
    assert_eq!(signed.status, 200, "{}", signed.body);
    assert_eq!(status_of(&signed), "completed");
}
