//! The `remote` signing provider through the real server: a supervisor whose key is a
//! credential at a CSC v2 service (the test service of `tests/common/csc_service.rs`, keys in
//! SoftHSM2) approves 20 cases in one batch with the one-time code of that credential; the
//! server builds each JAdES signing input, the service authorizes exactly those hashes once and
//! signs them, and every act is recorded with the provenance `remote` (service, credential,
//! batch; never the code or the SAD), verified and time-stamped like any act. A wrong code or a
//! service that does not answer in time refuses the batch with its code and changes nothing.
//!
//! Run with `cargo test --test it remote_signing::`. SKIPPED where libsofthsm2.so is absent.
//! PKCS#11 is initialized once per process: the CSC service's fixture owns it for the binary,
//! and `hsm_signing` joins it (see `hsm_signing::hsm`).

use crate::common;
use crate::csc_service::{CscService, ServiceOptions};

use carimbo::csc::client::CscClient;
use carimbo::csc::remote::{RemoteBook, RemoteProvider, RemoteSigner};
use carimbo::signing::activation::Provenance;
use carimbo::workflow::{Case, StepStatus};
use chrono::Utc;
use common::server::{TestServer, leave};
use serde_json::{Value, json};
use std::time::Duration;

/// A CSC service with a credential for p003 (its certificate names p003, as the act's signer
/// must be named), and a server whose p003 signs there, the device rule enforced: the
/// credential's key is in the service's HSM and its certificate says so (QcSSCD).
fn remote_server(credential: &str, read_timeout: Duration) -> Option<(CscService, TestServer)> {
    let service = CscService::start(ServiceOptions::default())?;
    service.add_credential(credential);
    let mut config = service.config();
    config.read_timeout = read_timeout;
    let client = CscClient::connect(config).expect("the server connects to the CSC service");
    let base = service.base_url.clone();
    let s = TestServer::start_enforced_with(|st| st.remote = Some(RemoteProvider::new(client, &base, &st.paths.data)));
    let mut book = RemoteBook::default();
    book.people.insert("p003".into(), RemoteSigner { credential_id: credential.into() });
    book.save(&s.state.paths.data).expect("the remote book is written");
    Some((service, s))
}

fn leave_cases(s: &TestServer, n: usize, tag: &str) -> Vec<String> {
    let staff = s.login("p005");
    (0..n).map(|i| staff.submit_ok("absence-and-annual-leave", &leave(1 + (i % 3) as i64), &format!("{tag}-{i}"))).collect()
}

fn approvals(ids: &[String]) -> Vec<Value> {
    ids.iter().map(|id| json!({"case": id, "step": "supervisor", "action": "approve"})).collect()
}

#[test]
fn a_supervisor_approves_twenty_cases_with_one_code_at_the_remote_service() {
    let Some((service, s)) = remote_server("p003", Duration::from_secs(10)) else { return };
    let ids = leave_cases(&s, 20, "remote-batch");
    let sup = s.login("p003");
    let code = service.otp("p003");
    let r = sup.post("/api/v1/acts/batch", &json!({"hsm": approvals(&ids), "totp": code}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["done"].as_u64(), r.body["failed"].as_u64()), (Some(20), Some(0)), "{}", r.body);
    // One authorization for the 20 hashes, one signHash call, 20 signatures.
    assert_eq!((service.authorizations(), service.sign_calls(), service.signatures()), (1, 1, 20));
    let batch = r.body["authorization"]["batch"].as_str().expect("a batch id").to_string();
    assert_eq!(r.body["authorization"]["hashes"].as_array().map(Vec::len), Some(20));
    for id in &ids {
        let sig = s.signature_of(id, "supervisor");
        let Some(Provenance::Remote { service: url, credential, authorization }) = &sig.provenance else { panic!("{id}: {:?}", sig.provenance) };
        assert_eq!((url.as_str(), credential.as_str()), (service.base_url.as_str(), "p003"));
        assert_eq!(authorization.batch.as_deref(), Some(batch.as_str()));
        assert_eq!(authorization.person, "p003");
        assert!(sig.second_factor, "{id}: the code was checked by the service");
        assert_eq!(sig.level, carimbo::workflow::Level::Qualified, "{id}: a key on the provider's device reaches qualified under the enforced rule");
        let recorded = serde_json::to_string(&sig).unwrap();
        assert!(!recorded.contains(&format!("\"{code}\"")), "the code is not recorded: {recorded}");
        assert_eq!(s.case(id).steps["supervisor"].status, StepStatus::Done, "{id}");
    }

    // The bundle of one verifies offline and names the provider and the authorization.
    let e = sup.get(&format!("/api/v1/cases/{}/evidence", ids[7]));
    assert_eq!(e.status, 200, "{}", e.body);
    let report = carimbo::evidence::verify(&serde_json::to_vec(&e.body).unwrap(), Utc::now());
    let line = report.signatures.iter().find(|l| l.step == "supervisor").expect("the supervisor's signature is reported");
    assert_eq!(line.provider.as_deref(), Some("remote"));
    assert_eq!(line.authorization.as_deref(), r.body["authorization"]["id"].as_str());
    assert!(report.passed, "{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!(line.achieved, carimbo::workflow::Level::Qualified, "offline too, with the recorded enforced rule");
    assert!(report.notes.iter().any(|n| n.starts_with("device rule: enforced")), "{:?}", report.notes);
}

#[test]
fn a_wrong_one_time_code_refuses_the_batch_and_changes_nothing() {
    let Some((service, s)) = remote_server("p003", Duration::from_secs(10)) else { return };
    let ids = leave_cases(&s, 3, "remote-wrong");
    let before: Vec<Case> = ids.iter().map(|id| s.case(id)).collect();
    let sup = s.login("p003");
    let r = sup.post("/api/v1/acts/batch", &json!({"hsm": approvals(&ids), "totp": service.wrong_otp("p003")}));
    assert_eq!((r.status, r.body["code"].as_str()), (422, Some("CARIMBO-E1472")), "{}", r.body);
    assert!(r.body["messages"]["pt"].as_str().is_some_and(|m| m.contains("código")), "said in Portuguese too: {}", r.body);
    assert_eq!((service.sign_calls(), service.signatures()), (0, 0));
    let after: Vec<Case> = ids.iter().map(|id| s.case(id)).collect();
    assert_eq!(after, before);
}

#[test]
fn a_service_that_times_out_refuses_the_batch_with_its_code_and_changes_nothing() {
    let Some((service, s)) = remote_server("p003", Duration::from_millis(800)) else { return };
    let ids = leave_cases(&s, 2, "remote-slow");
    let before: Vec<Case> = ids.iter().map(|id| s.case(id)).collect();
    let sup = s.login("p003");
    service.set_delay(Duration::from_millis(1500));
    let r = sup.post("/api/v1/acts/batch", &json!({"hsm": approvals(&ids), "totp": service.otp("p003")}));
    assert_eq!((r.status, r.body["code"].as_str()), (504, Some("CARIMBO-E1476")), "{}", r.body);
    assert_eq!(service.signatures(), 0);
    let after: Vec<Case> = ids.iter().map(|id| s.case(id)).collect();
    assert_eq!(after, before);
}

#[test]
fn a_remote_signer_on_a_server_without_remote_signing_is_told_so() {
    // No SoftHSM2 needed: the server has no CSC service, the directory names p003 as remote.
    let s = TestServer::start();
    let mut book = RemoteBook::default();
    book.people.insert("p003".into(), RemoteSigner { credential_id: "p003-off".into() });
    book.save(&s.state.paths.data).unwrap();
    let ids = leave_cases(&s, 1, "remote-off");
    let before = s.case(&ids[0]);
    let sup = s.login("p003");
    let r = sup.post("/api/v1/acts/batch", &json!({"hsm": approvals(&ids), "totp": "123456"}));
    assert_eq!((r.status, r.body["code"].as_str()), (503, Some("CARIMBO-E1460")), "{}", r.body);
    assert_eq!(s.case(&ids[0]), before);
}

#[test]
fn the_inbox_page_asks_a_remote_signer_for_the_services_code_and_no_key_file() {
    let Some((_service, s)) = remote_server("p003", Duration::from_secs(10)) else { return };
    leave_cases(&s, 1, "remote-page");
    let page = s.login("p003").get("/inbox");
    assert_eq!(page.status, 200);
    let html = page.body.as_str().expect("an HTML page");
    assert!(html.contains("id=\"remote-note\"") && html.contains("data-provider=\"hsm\""), "{html}");
    assert!(!html.contains("id=\"hsm-note\"") && !html.contains("id=\"no-second-factor\""), "{html}");
    // Someone who signs with a key file still sees no such note.
    let other = s.login("p005").get("/inbox");
    assert!(!other.body.as_str().unwrap_or_default().contains("remote-note"));
}

#[test]
fn a_revoked_credential_refuses_the_batch_before_the_code_is_spent() {
    let Some((service, s)) = remote_server("p003", Duration::from_secs(10)) else { return };
    let ids = leave_cases(&s, 2, "remote-revoked");
    let before: Vec<Case> = ids.iter().map(|id| s.case(id)).collect();
    service.revoke("p003");
    let r = s.login("p003").post("/api/v1/acts/batch", &json!({"hsm": approvals(&ids), "totp": service.otp("p003")}));
    assert_eq!((r.status, r.body["code"].as_str()), (409, Some("CARIMBO-E1475")), "{}", r.body);
    assert_eq!((service.authorizations(), service.signatures()), (0, 0), "the code went nowhere");
    let after: Vec<Case> = ids.iter().map(|id| s.case(id)).collect();
    assert_eq!(after, before);
}

#[test]
fn a_remote_signer_submits_a_form_signed_at_the_service_with_one_code_over_that_one_hash() {
    let Some((service, s)) = remote_server("p003", Duration::from_secs(10)) else { return };
    let p003 = s.login("p003");
    let body = |code: String| json!({"form": "absence-and-annual-leave", "data": leave(2), "idempotency_key": "remote-submit", "device": {"totp": code}});
    let wrong = p003.post("/api/v1/cases", &body(service.wrong_otp("p003")));
    assert_eq!(wrong.body["code"].as_str(), Some("CARIMBO-E1472"), "{}", wrong.body);
    assert_eq!(service.signatures(), 0);
    let r = p003.post("/api/v1/cases", &body(service.otp("p003")));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((service.sign_calls(), service.signatures()), (1, 1), "one hash authorized and signed");
    let id = r.body["case"]["id"].as_str().unwrap();
    let events = s.state.cases.store().events(id).unwrap();
    let signature = events
        .iter()
        .find_map(|e| match serde_json::from_value::<carimbo::workflow::CaseEvent>(e.body.clone()) {
            Ok(carimbo::workflow::CaseEvent::Submitted { signature, .. }) => Some(signature),
            _ => None,
        })
        .expect("the submission");
    let Some(Provenance::Remote { credential, authorization, .. }) = &signature.provenance else { panic!("{:?}", signature.provenance) };
    assert_eq!((credential.as_str(), authorization.hashes.len()), ("p003", 1));
    assert!(signature.second_factor);
}
