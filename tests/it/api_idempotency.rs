//! Black-box tests of idempotency keys through the API: a key answers only the request it was
//! first sent with, by the same person for the same act; the same key with another body is a
//! 422 of its own; a key that is empty, too long or not visible ASCII is a 400 and changes nothing.

use crate::common;

use common::server::{TestServer, leave};
use serde_json::json;

const LEAVE: &str = "absence-and-annual-leave";

#[test]
fn another_persons_act_with_the_same_key_is_recorded_not_answered_as_a_replay() {
    let s = TestServer::start();
    let id = s.login("p005").submit_ok(LEAVE, &leave(2), "k");
    let supervisor = s.login("p003");
    let signed = supervisor.sign(&json!({"kind": "act", "case": id, "step": "supervisor", "action": "approve"}));
    let r = supervisor.post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "supervisor", "action": "approve", "signed": signed, "idempotency_key": "k"}));
    assert_eq!((r.status, &r.body["replayed"]), (200, &json!(false)), "{}", r.body);

    // HR posts its own act with the supervisor's key: it is carried out and recorded.
    let hr = s.login("p018");
    let r = hr.post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "hr-records", "action": "sign", "idempotency_key": "k"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["replayed"], false, "HR's act was answered with the supervisor's: {}", r.body);
    assert_eq!(r.body["case"]["status"], "completed");
    let acts = r.body["case"]["acts"].as_array().unwrap();
    assert!(acts.iter().any(|a| a["step"] == "hr-records" && a["actor"] == "p018"), "{}", r.body);
    // And HR's own retry is now the replay.
    let again = hr.post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "hr-records", "action": "sign", "idempotency_key": "k"}));
    assert_eq!((again.status, &again.body["replayed"]), (200, &json!(true)), "{}", again.body);
}

#[test]
fn the_same_key_with_another_body_is_a_422_and_changes_nothing() {
    let s = TestServer::start();
    let staff = s.login("p005");
    let id = staff.submit_ok(LEAVE, &leave(2), "leave-1");
    // The same key, other dates: refused by name, not answered with the first case.
    let data = leave(3);
    let signed = staff.sign(&json!({"kind": "submit", "form": LEAVE, "data": data, "idempotency_key": "leave-1"}));
    let r = staff.post("/api/v1/cases?lang=pt", &json!({"form": LEAVE, "data": data, "idempotency_key": "leave-1", "signed": signed}));
    let p = r.problem(422, "CARIMBO-E0410");
    assert!(p["title"].as_str().unwrap().contains("chave de idempotência"), "{p}");
    let mine = staff.get("/api/v1/cases");
    assert_eq!(mine.body["cases"].as_array().unwrap().len(), 1, "{}", mine.body);
    let case = staff.get(&format!("/api/v1/cases/{id}"));
    assert_eq!(case.body["case"]["data"]["end_date"], leave(2)["end_date"], "the first case is untouched");

    // An act: the same person, step and key with another comment.
    let supervisor = s.login("p003");
    let signed = supervisor.sign(&json!({"kind": "act", "case": id, "step": "supervisor", "action": "return"}));
    let act = |comment: &str| {
        supervisor.post(
            &format!("/api/v1/cases/{id}/acts"),
            &json!({"step": "supervisor", "action": "return", "comment": comment, "signed": signed, "idempotency_key": "a-1"}),
        )
    };
    assert_eq!(act("fix the dates").status, 200);
    let before = s.state.cases.events(&id).unwrap().len();
    act("fix the type").problem(422, "CARIMBO-E0410");
    assert_eq!(s.state.cases.events(&id).unwrap().len(), before, "nothing appended");
}

#[test]
fn an_empty_nul_long_or_invisible_key_is_a_400_and_opens_nothing() {
    let s = TestServer::start();
    let staff = s.login("p005");
    let id = staff.submit_ok(LEAVE, &leave(2), "good-key");
    let supervisor = s.login("p003");
    let events = s.state.cases.events(&id).unwrap().len();
    let long = "k".repeat(129);
    for key in ["", "\u{0}", "a\u{0}b", "two words", "ключ", "a\u{202E}b", long.as_str()] {
        let data = leave(2);
        let r = staff.post("/api/v1/cases", &json!({"form": LEAVE, "data": data, "idempotency_key": key}));
        r.problem(400, "CARIMBO-E0409");
        let r = staff.post("/api/v1/signing-payload", &json!({"kind": "submit", "form": LEAVE, "data": data, "idempotency_key": key}));
        r.problem(400, "CARIMBO-E0409");
        let r = supervisor.post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "supervisor", "action": "approve", "idempotency_key": key}));
        r.problem(400, "CARIMBO-E0409");
    }
    assert_eq!(staff.get("/api/v1/cases").body["cases"].as_array().unwrap().len(), 1);
    assert_eq!(s.state.cases.events(&id).unwrap().len(), events, "no act was recorded");
}
