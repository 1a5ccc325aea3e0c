//! Signing keys that cannot be copied: keys generated in SoftHSM2 over PKCS#11, a CSR signed
//! inside it, a QcSSCD certificate from the demo qualified CA, and acts signed through the real
//! server only under the signer's TOTP authorization of exactly those signatures — alone or 20
//! at a time with one code — each `qualified`, recorded with its authorization and verifying
//! offline; revocation; and a key file capped at `advanced` when the device rule is enforced.
//!
//! Run with `cargo test --test it hsm_signing::`. The HSM tests print SKIPPED where Debian's libsofthsm2.so is absent (`apt-get install
//! softhsm2`; `.ci/run` installs it).

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use carimbo::cases::acts::{ActBody, Actor, BatchAct};
use carimbo::hsm::{DEFAULT_MODULE, Hsm, HsmProvider, ProviderBook};
use carimbo::i18n::Lang;
use carimbo::signing::activation::Provenance;
use carimbo::signing::{DeviceRule, SignatureVerifier, Signer, SigningKey, VerifyOptions};
use carimbo::workflow::{Action, Level};
use chrono::{Duration, Utc};
use common::repo;
use common::server::{Client, TestServer, leave};
use cryptoki::types::AuthPin;
use serde_json::{Value, json};

pub(crate) const TOKEN: &str = "carimbo-tests";
pub(crate) const PIN: &str = "test-user-pin";

/// The test binary's one SoftHSM2 (its own configuration and token folder, in a temporary
/// directory kept for the process), with token `carimbo-tests`; `None` without SoftHSM2.
/// PKCS#11 is initialized once per process, so every test here shares it (each with its own
/// key label).
pub(crate) fn hsm() -> Option<&'static Hsm> {
    static HSM: OnceLock<Option<Hsm>> = OnceLock::new();
    HSM.get_or_init(|| {
        if !Path::new(DEFAULT_MODULE).is_file() {
            return None;
        }
        // PKCS#11 is initialized once per process, and the CSC test service of this binary
        // initializes SoftHSM2 itself (its configuration, its token in the first slot): let it
        // go first, then add this binary's token in a free slot of the same SoftHSM2.
        let csc = crate::csc_service::CscService::start(crate::csc_service::ServiceOptions::default());
        drop(csc);
        let hsm = Hsm::open(Path::new(DEFAULT_MODULE)).expect("SoftHSM2 loads");
        hsm.init_token(TOKEN, &pin("test-so-pin"), &pin(PIN)).expect("the test token is initialized");
        Some(hsm)
    })
    .as_ref()
}

pub(crate) fn pin(text: &str) -> AuthPin {
    AuthPin::from(text.to_string())
}

macro_rules! need_hsm {
    () => {
        match hsm() {
            Some(h) => h,
            None => {
                eprintln!("SKIPPED: {DEFAULT_MODULE} is absent (apt-get install softhsm2)");
                return;
            }
        }
    };
}

/// A server whose `person` signs on the HSM with a key labelled `label` (unique per test: the
/// token is shared by the binary's tests), generated, issued and published as `carimbo hsm`
/// does it.
fn server_with_device_key(hsm: &Hsm, person: &str, label: &str) -> TestServer {
    let s = TestServer::start_enforced_with(|st| st.hsm = Some(HsmProvider::new(hsm.clone(), pin(PIN), &st.paths.data)));
    carimbo::cli::hsm::keygen(hsm, TOKEN, &pin(PIN), label).expect("the key is generated in the token");
    carimbo::cli::hsm::issue(hsm, TOKEN, &s.state.paths.data, &repo(), person, label, None, Utc::now()).expect("the certificate is issued and published");
    s
}

fn enrol(s: &TestServer, c: &Client) {
    assert_eq!(c.post("/api/v1/me/totp", &json!({})).status, 200);
    let code = s.totp_now(c.person());
    assert_eq!(c.post("/api/v1/me/totp/confirm", &json!({"code": code})).status, 204);
}

/// A code the person's app shows next (the current one was spent confirming the enrolment).
fn next_code(s: &TestServer, person: &str) -> String {
    s.state.accounts.next_totp_for_tests(person, Utc::now()).expect("an enrolled factor")
}

/// `n` leave requests of p005, each waiting for the supervisor p003.
fn leave_cases(s: &TestServer, n: usize, tag: &str) -> Vec<String> {
    let staff = s.login("p005");
    (0..n).map(|i| staff.submit_ok("absence-and-annual-leave", &leave(1 + (i % 3) as i64), &format!("{tag}-{i}"))).collect()
}

fn approve(case: &str) -> Value {
    json!({"case": case, "step": "supervisor", "action": "approve"})
}

fn evidence_passes(c: &Client, id: &str) -> bool {
    let r = c.get(&format!("/api/v1/cases/{id}/evidence"));
    assert_eq!(r.status, 200, "{}", r.body);
    let report = carimbo::evidence::verify(&serde_json::to_vec(&r.body).unwrap(), Utc::now());
    let line = report.signatures.iter().find(|l| l.step == "supervisor").expect("the supervisor's signature is reported");
    assert_eq!((line.provider.as_deref(), line.achieved), (Some("hsm"), Level::Qualified), "the report names the provider");
    assert!(line.authorization.is_some());
    if !report.passed {
        eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    }
    report.passed
}

#[test]
fn a_key_generated_in_the_hsm_gets_a_csr_signed_there_and_a_qcsscd_certificate() {
    let hsm = need_hsm!();
    let data = tempfile::tempdir().unwrap();
    let point = carimbo::cli::hsm::keygen(hsm, TOKEN, &pin(PIN), "p003-life").unwrap();
    assert_eq!((point.len(), point[0]), (65, 4), "an uncompressed P-256 point");
    let again = carimbo::cli::hsm::keygen(hsm, TOKEN, &pin(PIN), "p003-life").unwrap_err();
    assert!(again.to_string().contains("CARIMBO-E1453"), "{again}");

    let csr = carimbo::cli::hsm::csr(hsm, TOKEN, &pin(PIN), "p003", "p003-life").unwrap();
    assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    // A request for another key is not certified as on the device.
    carimbo::cli::hsm::keygen(hsm, TOKEN, &pin(PIN), "p003-other").unwrap();
    let other = carimbo::cli::hsm::csr(hsm, TOKEN, &pin(PIN), "p003", "p003-other").unwrap();
    let refused = carimbo::cli::hsm::issue(hsm, TOKEN, data.path(), &repo(), "p003", "p003-life", Some(other.as_bytes()), Utc::now()).unwrap_err();
    assert!(refused.to_string().contains("CARIMBO-E1459"), "{refused}");
    assert!(ProviderBook::load(data.path()).unwrap().people.is_empty(), "nothing was published");

    let key = carimbo::cli::hsm::issue(hsm, TOKEN, data.path(), &repo(), "p003", "p003-life", Some(csr.as_bytes()), Utc::now()).unwrap();
    let chain = carimbo::pki::cert::parse_pem_certificates(key.chain_pem.as_bytes(), "chain").unwrap();
    let facts = carimbo::pki::cert::CertFacts::from_der(&chain[0]).unwrap();
    assert!(facts.qc_compliance && facts.qc_sscd, "QcCompliance and QcSSCD");
    assert_eq!(facts.public_key, point, "the certificate is for the key on the token");
    assert_eq!(facts.person_id.as_deref(), Some("p003"));
    assert_eq!(ProviderBook::load(data.path()).unwrap().key_of("p003").unwrap().key_label, "p003-life");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(ProviderBook::path(data.path())).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn an_act_signed_on_the_hsm_with_a_totp_code_is_qualified_time_stamped_and_records_its_authorization() {
    let hsm = need_hsm!();
    let s = server_with_device_key(hsm, "p003", "p003-one");
    let id = leave_cases(&s, 1, "hsm-one").remove(0);
    let sup = s.login("p003");
    enrol(&s, &sup);
    let r = sup.post("/api/v1/acts/batch", &json!({"hsm": [approve(&id)], "totp": next_code(&s, "p003")}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["done"], 1, "{}", r.body);
    let sig = s.signature_of(&id, "supervisor");
    assert_eq!(sig.level, Level::Qualified);
    assert!(sig.second_factor);
    let Some(Provenance::Hsm { token, key_label, authorization }) = &sig.provenance else { panic!("recorded as an HSM signature: {:?}", sig.provenance) };
    assert_eq!((token.as_str(), key_label.as_str(), authorization.person.as_str()), (TOKEN, "p003-one", "p003"));
    assert_eq!(authorization.hashes.len(), 1);
    assert_eq!(r.body["authorization"]["id"], authorization.id.as_str());
    // The code is not in the record.
    assert!(!serde_json::to_string(&sig).unwrap().contains(&next_code(&s, "p003")));
    // B-T: the signature carries its time-stamp, as every act's does.
    let jws = sig.jws.as_ref().unwrap();
    assert!(jws["header"]["etsiU"].as_array().is_some_and(|u| !u.is_empty()), "time-stamped: {jws}");
    assert!(evidence_passes(&sup, &id));
}

#[test]
fn a_wrong_code_authorizes_nothing_and_changes_nothing() {
    let hsm = need_hsm!();
    let s = server_with_device_key(hsm, "p003", "p003-wrong");
    let id = leave_cases(&s, 1, "hsm-wrong").remove(0);
    let sup = s.login("p003");
    enrol(&s, &sup);
    let before = s.case(&id);
    let good = next_code(&s, "p003");
    let wrong = if good == "000000" { "111111" } else { "000000" };
    let r = sup.post("/api/v1/acts/batch", &json!({"hsm": [approve(&id)], "totp": wrong}));
    assert_eq!(r.body["code"], "CARIMBO-E0604", "{}", r.body);
    assert_eq!(s.case(&id), before, "the case did not change");
    // And an administrator cannot make the service sign for p003: the authorization is bound
    // to the person whose code was checked, and p032 has no device key.
    let admin = s.login("p032");
    let r = admin.post("/api/v1/acts/batch", &json!({"hsm": [approve(&id)], "totp": good}));
    assert_ne!(r.status, 200, "{}", r.body);
    assert_eq!(s.case(&id), before);
}

#[test]
fn an_expired_a_used_or_an_uncovering_authorization_signs_nothing() {
    let hsm = need_hsm!();
    let s = server_with_device_key(hsm, "p003", "p003-auth");
    let ids = leave_cases(&s, 2, "hsm-auth");
    let sup = s.login("p003");
    enrol(&s, &sup);
    let roles: BTreeSet<String> = carimbo::http::auth::roles_of(&s.state, "p003");
    let actor = Actor { person: "p003", roles: &roles, lang: Lang::En };
    let acts = s.state.acts();
    let now = Utc::now();
    let item = |case: &str| BatchAct { case: case.into(), step: "supervisor".into(), action: Action::Approve, comment: None };
    let (auth, refused) = acts.authorize(actor, &[item(&ids[0])], &next_code(&s, "p003"), None, now).expect("authorized");
    assert!(refused.is_empty());
    let body = |authorization: &str| ActBody {
        step: "supervisor".into(),
        action: Action::Approve,
        comment: None,
        signed: None,
        totp: None,
        idempotency_key: None,
        authorization: Some(authorization.into()),
    };
    let codes = Default::default();
    let code_of = |r: Result<_, carimbo::cases::acts::ActError>| r.err().map(|e| e.code()).unwrap_or("done");
    // A hash not covered: the authorization names case 0's signature, not case 1's.
    assert_eq!(code_of(acts.act(actor, &ids[1], &body(&auth.id), &codes, now)), "CARIMBO-E1442");
    // Expired after five minutes.
    assert_eq!(code_of(acts.act(actor, &ids[0], &body(&auth.id), &codes, now + Duration::minutes(5) + Duration::seconds(5))), "CARIMBO-E1441");
    let untouched = s.case(&ids[0]);
    // Used once, then no more.
    assert_eq!(code_of(acts.act(actor, &ids[0], &body(&auth.id), &codes, now + Duration::seconds(1))), "done");
    assert_ne!(s.case(&ids[0]), untouched);
    assert_eq!(code_of(acts.act(actor, &ids[1], &body(&auth.id), &codes, now + Duration::seconds(2))), "CARIMBO-E1440");
    assert_eq!(s.case(&ids[1]).steps["supervisor"].status, carimbo::workflow::StepStatus::Open);
}

#[test]
fn twenty_cases_approved_in_one_batch_with_one_code_are_each_qualified_and_verify_offline() {
    let hsm = need_hsm!();
    let s = server_with_device_key(hsm, "p003", "p003-batch");
    let ids = leave_cases(&s, 20, "hsm-batch");
    let sup = s.login("p003");
    enrol(&s, &sup);
    let items: Vec<Value> = ids.iter().map(|id| approve(id)).collect();
    let r = sup.post("/api/v1/acts/batch", &json!({"hsm": items, "totp": next_code(&s, "p003")}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["done"].as_u64(), r.body["failed"].as_u64()), (Some(20), Some(0)), "{}", r.body);
    let batch = r.body["authorization"]["batch"].as_str().expect("a batch id").to_string();
    assert_eq!(r.body["authorization"]["hashes"].as_array().map(Vec::len), Some(20));
    for id in &ids {
        let sig = s.signature_of(id, "supervisor");
        assert_eq!(sig.level, Level::Qualified, "{id}");
        let Some(Provenance::Hsm { authorization, .. }) = &sig.provenance else { panic!("{id}: {:?}", sig.provenance) };
        assert_eq!(authorization.batch.as_deref(), Some(batch.as_str()));
        assert!(evidence_passes(&sup, id), "{id}");
    }
}

#[test]
fn a_refused_item_of_a_batch_does_not_undo_the_others() {
    let hsm = need_hsm!();
    let s = server_with_device_key(hsm, "p003", "p003-refused");
    let ids = leave_cases(&s, 2, "hsm-refused");
    let sup = s.login("p003");
    enrol(&s, &sup);
    let items = json!([approve(&ids[0]), approve("C-not-a-case"), approve(&ids[1])]);
    let r = sup.post("/api/v1/acts/batch", &json!({"hsm": items, "totp": next_code(&s, "p003")}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["done"].as_u64(), r.body["failed"].as_u64()), (Some(2), Some(1)), "{}", r.body);
    assert_eq!(r.body["results"][1]["ok"], false);
    assert_eq!(r.body["results"][1]["problem"]["code"], "CARIMBO-E0703");
    for id in &ids {
        assert_eq!(s.signature_of(id, "supervisor").level, Level::Qualified);
    }
}

#[test]
fn a_revoked_key_refuses_new_acts_while_acts_signed_before_still_verify() {
    let hsm = need_hsm!();
    let s = server_with_device_key(hsm, "p003", "p003-revoked");
    let ids = leave_cases(&s, 2, "hsm-revoked");
    let sup = s.login("p003");
    enrol(&s, &sup);
    let r = sup.post("/api/v1/acts/batch", &json!({"hsm": [approve(&ids[0])], "totp": next_code(&s, "p003")}));
    assert_eq!(r.body["done"], 1, "{}", r.body);
    let signed_before = s.signature_of(&ids[0], "supervisor");

    std::thread::sleep(std::time::Duration::from_secs(1));
    carimbo::cli::hsm::revoke(&s.state.paths.data, &repo(), "p003", Utc::now()).expect("revoked");
    assert!(s.state.paths.data.join("crl/qualified-ca.crl").is_file(), "a new CRL");
    let before = s.case(&ids[1]);
    let r = sup.post("/api/v1/acts/batch", &json!({"hsm": [approve(&ids[1])], "totp": s.totp_now("p003")}));
    assert_eq!(r.body["code"], "CARIMBO-E1458", "{}", r.body);
    assert!(r.body["messages"]["zh"].as_str().is_some_and(|m| m.contains("撤銷")), "said in Chinese too: {}", r.body);
    assert_eq!(s.case(&ids[1]), before);

    // With the new CRL, the old act's signature still verifies (judged at its time-stamp)…
    let verifier = carimbo::http::build_verifier(&s.state.trust.current(), &s.state.paths).expect("a verifier with the new CRL");
    let mut jws = signed_before.jws.clone().unwrap();
    let payload: carimbo::signing::SigningPayload = serde_json::from_value(jws["payload"].clone()).unwrap();
    // Stored with its payload beside it; the JWS itself has it detached.
    jws.as_object_mut().unwrap().remove("payload");
    let report = verifier.verify(&serde_json::to_vec(&jws).unwrap(), &payload.canonical_bytes().unwrap(), &VerifyOptions::at(Utc::now()));
    assert!(report.passed(), "{}", serde_json::to_string_pretty(&report).unwrap());
    // …while a signature the revoked key makes now is REVOKED.
    let key = ProviderBook::load(&s.state.paths.data).unwrap().people["p003"].clone();
    let chain = carimbo::pki::cert::parse_pem_certificates(key.chain_pem.as_bytes(), "chain").unwrap();
    let now = Utc::now() + Duration::seconds(2);
    let prepared = carimbo::signing::PreparedJades::new(carimbo::signing::JwsAlgorithm::ES256, &chain, b"{}", now).unwrap();
    let value = hsm.sign_es256(TOKEN, &pin(PIN), "p003-revoked", prepared.signing_input.as_bytes()).unwrap();
    let fresh = prepared.finish(&value);
    let opts = VerifyOptions { trusted_time: Some(now), now, required_level: None };
    let report = verifier.verify(fresh.to_json().as_bytes(), b"{}", &opts);
    assert_eq!(report.sub_indication.map(|s| s.as_str()), Some("REVOKED"), "{}", serde_json::to_string_pretty(&report).unwrap());
}

/// A verifier of the shipped seeds with this device rule.
fn verifier(rule: DeviceRule) -> SignatureVerifier {
    let data = tempfile::tempdir().unwrap();
    let paths = carimbo::http::Paths::from_root(&repo(), data.path());
    let history = carimbo::cli::pki_files::load_trust_history(&repo().join("seeds/trust"), Utc::now()).unwrap();
    carimbo::http::build_verifier(&history, &paths).unwrap().with_device_rule(rule)
}

#[test]
fn a_key_file_with_a_qualified_certificate_is_capped_at_advanced_when_the_device_rule_is_enforced() {
    // A key file, and the certificate the qualified CA gives it now: QcCompliance, no QcSSCD.
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = SigningKey::from_pkcs8_der(pkcs8.as_ref()).unwrap();
    let holder = carimbo::pki::demo::DeviceHolder { common_name: "File Key".into(), department: None, person_id: "p003" };
    let ca = repo().join("seeds/pki/ca");
    let now = Utc::now();
    let chain_pem = carimbo::pki::demo::issue_qualified_certificate(
        key.public_key(),
        &holder,
        0x7777_0001,
        (now - Duration::days(1), now + Duration::days(30)),
        false,
        &std::fs::read_to_string(ca.join("qualified-ca.key.pem")).unwrap(),
        &std::fs::read_to_string(ca.join("qualified-ca.pem")).unwrap(),
    )
    .unwrap();
    let chain = carimbo::pki::cert::parse_pem_certificates(chain_pem.as_bytes(), "chain").unwrap();
    let jws = Signer::new(key, &chain).unwrap().sign(b"{\"act\":1}", now).unwrap();
    let opts = VerifyOptions { trusted_time: Some(now), now, required_level: None };

    let enforced = verifier(DeviceRule::Enforced).verify(jws.to_json().as_bytes(), b"{\"act\":1}", &opts);
    assert!(enforced.passed());
    assert_eq!(enforced.achieved_level, Some(Level::Advanced));
    assert!(enforced.notes.iter().any(|n| n.starts_with("not qualified") && n.contains("QcSSCD")), "{:?}", enforced.notes);
    let step = carimbo::signing::jades::apply_required_level(enforced, Level::Qualified);
    assert_eq!(step.code.as_deref(), Some("CARIMBO-E0534"));

    let relaxed = verifier(DeviceRule::RelaxedForDemo).verify(jws.to_json().as_bytes(), b"{\"act\":1}", &opts);
    assert_eq!(relaxed.achieved_level, Some(Level::Qualified));
    assert!(relaxed.notes.iter().any(|n| n.contains("device rule relaxed for the demo")), "{:?}", relaxed.notes);
}

#[test]
fn the_inbox_of_an_approver_whose_key_is_on_the_hsm_asks_for_the_code_instead_of_a_key_file() {
    let hsm = need_hsm!();
    let s = server_with_device_key(hsm, "p003", "p003-inbox");
    leave_cases(&s, 2, "hsm-inbox");
    let page = |person: &str| {
        let r = s.login(person).by_cookie().get("/inbox?lang=en");
        assert_eq!(r.status, 200);
        r.body.as_str().expect("HTML").to_string()
    };
    let html = page("p003");
    assert!(html.contains(r#"data-provider="hsm""#), "{html}");
    assert!(html.contains("One code authorizes the signature of every case in the confirmation list"));
    assert!(html.contains(r#"id="totp""#) && !html.contains(r#"id="keyfile""#), "a code, no key file");
    // Someone without a device key is not offered the HSM.
    let other = page("p002");
    assert!(!other.contains(r#"data-provider="hsm""#) && !other.contains("hsm-note"));
}

#[test]
fn a_pin_is_never_read_from_a_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pin");
    std::fs::write(&file, "123456\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = carimbo::hsm::read_pin("CARIMBO_TEST_NO_SUCH_PIN", Some(&file)).unwrap_err();
    assert_eq!(err.code(), "CARIMBO-E1455");
    assert!(err.to_string().contains("0600"), "{err}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(carimbo::hsm::read_pin("CARIMBO_TEST_NO_SUCH_PIN", Some(&file)).is_ok(), "an owner-only file is read");
    // Nor, without a file, from anywhere but the environment.
    assert_eq!(carimbo::hsm::read_pin("CARIMBO_TEST_NO_SUCH_PIN", None).unwrap_err().code(), "CARIMBO-E1455");
}

/// An instrument of appointment waiting for the authority p001 (a key file, a qualified
/// certificate without QcSSCD) on its `qualified` step.
fn appointment_waiting_for_the_authority(s: &TestServer) -> String {
    let data = crate::common::example("appointment-instrument");
    s.login("p018").submit_ok("appointment-instrument", &data, "appoint-device-rule")
}

#[test]
fn a_key_file_on_a_qualified_step_is_refused_when_the_device_rule_is_enforced_and_nothing_changes() {
    let s = TestServer::start_enforced_with(|_| {});
    let id = appointment_waiting_for_the_authority(&s);
    let authority = s.login("p001");
    let before = authority.case(&id).body["case"].clone();

    let r = authority.act(&id, "authority", "sign");
    let p = r.problem(422, "CARIMBO-E0500");
    let report = &p["report"];
    assert_eq!(report["code"], carimbo::signing::LEVEL_NOT_MET_CODE, "{p}");
    assert_eq!((report["achieved_level"].as_str(), report["required_level"].as_str()), (Some("advanced"), Some("qualified")), "{p}");
    let notes = report["notes"].as_array().expect("the notes say why");
    assert!(
        notes.iter().any(|n| n.as_str().is_some_and(|n| n.starts_with("not qualified") && n.contains("qualified signature-creation device"))),
        "the report says the key is not on a qualified device: {p}"
    );
    assert_eq!(authority.case(&id).body["case"], before, "nothing was stored");
}

#[test]
fn a_key_file_on_a_qualified_step_passes_when_the_device_rule_is_relaxed_and_the_report_says_so() {
    let s = TestServer::start();
    let id = appointment_waiting_for_the_authority(&s);
    let authority = s.login("p001");
    let r = authority.act(&id, "authority", "sign");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.signature_of(&id, "authority").level, Level::Qualified);
    let bundle = authority.get(&format!("/api/v1/cases/{id}/evidence"));
    assert_eq!(bundle.status, 200, "{}", bundle.body);
    let report = carimbo::evidence::verify(&serde_json::to_vec(&bundle.body).unwrap(), Utc::now());
    let line = report.signatures.iter().find(|l| l.step == "authority").unwrap_or_else(|| panic!("{}", serde_json::to_string_pretty(&report).unwrap()));
    assert_eq!(line.achieved, Level::Qualified, "{}", serde_json::to_string_pretty(&report).unwrap());
    let text = serde_json::to_string(&report).unwrap();
    assert!(text.contains("device rule relaxed for the demo"), "the report says the rule was relaxed: {text}");
}

/// The signature of the case's last submission or resubmission, from the stored events.
fn submission_signature(s: &TestServer, id: &str) -> carimbo::workflow::SignatureRecord {
    use carimbo::workflow::CaseEvent;
    let events = s.state.cases.store().events(id).expect("the events");
    events
        .iter()
        .rev()
        .find_map(|e| match serde_json::from_value::<CaseEvent>(e.body.clone()) {
            Ok(CaseEvent::Submitted { signature, .. } | CaseEvent::Resubmitted { signature, .. }) => Some(signature),
            _ => None,
        })
        .expect("a submission")
}

fn on_device(sig: &carimbo::workflow::SignatureRecord, label: &str) -> Authorization {
    match &sig.provenance {
        Some(Provenance::Hsm { key_label, authorization, .. }) if key_label == label => authorization.clone(),
        other => panic!("not signed on the HSM with {label}: {other:?}"),
    }
}

use carimbo::signing::activation::Authorization;

#[test]
fn a_doctor_whose_key_is_on_the_hsm_submits_and_corrects_a_qualified_certificate_with_their_code() {
    let hsm = need_hsm!();
    let s = server_with_device_key(hsm, "doc02", "doc02-submit");
    let doctor = s.login("doc02");
    enrol(&s, &doctor);
    let data = crate::common::example("medical-certificate");
    let body = |key: &str, code: String| json!({"form": "medical-certificate", "data": data, "idempotency_key": key, "device": {"totp": code}});

    let code = next_code(&s, "doc02");
    let r = doctor.post("/api/v1/cases", &body("mc-hsm", code.clone()));
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["case"]["id"].as_str().unwrap().to_string();
    let sig = submission_signature(&s, &id);
    assert_eq!((sig.level, sig.second_factor), (Level::Qualified, true), "a key on the device reaches qualified under the enforced rule");
    let authorization = on_device(&sig, "doc02-submit");
    assert_eq!((authorization.person.as_str(), authorization.hashes.len(), authorization.batch.as_deref()), ("doc02", 1, None), "one signature authorized");
    assert!(!serde_json::to_string(&sig).unwrap().contains(&format!("\"{code}\"")), "the code is not recorded");

    // A retry of the same submission lands on the same case without using a code.
    let events = s.state.cases.store().events(&id).unwrap().len();
    let again = doctor.post("/api/v1/cases", &body("mc-hsm", "000000".into()));
    assert_eq!((again.status, again.body["case"]["id"].as_str(), again.body["replayed"].as_bool()), (200, Some(id.as_str()), Some(true)), "{}", again.body);
    assert_eq!(s.state.cases.store().events(&id).unwrap().len(), events, "nothing appended");

    // The bundle verifies offline, the submission named as made on the HSM.
    let e = doctor.get(&format!("/api/v1/cases/{id}/evidence"));
    assert_eq!(e.status, 200, "{}", e.body);
    let report = carimbo::evidence::verify(&serde_json::to_vec(&e.body).unwrap(), Utc::now());
    assert!(report.passed, "{}", serde_json::to_string_pretty(&report).unwrap());
    let submitted: Vec<_> = report.signatures.iter().filter(|l| l.provider.as_deref() == Some("hsm")).collect();
    assert_eq!(submitted.len(), 1, "the submission: {}", serde_json::to_string_pretty(&report).unwrap());
    assert!(submitted.iter().all(|l| l.achieved == Level::Qualified && l.authorization.is_some()));
}

#[test]
fn a_returned_case_is_corrected_and_signed_on_the_hsm_with_the_submitters_code() {
    let hsm = need_hsm!();
    let s = server_with_device_key(hsm, "p005", "p005-correct");
    let id = s.login("p005").submit_ok("absence-and-annual-leave", &leave(2), "hsm-correct");
    let r = s.login("p003").act_with(&id, "supervisor", "return", json!({"comment": "one day fewer"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let staff = s.login("p005");
    enrol(&s, &staff);
    // A code for a case that is not returned is not spent.
    let open = leave_cases(&s, 1, "hsm-correct-open").remove(0);
    let code = next_code(&s, "p005");
    let refused = staff.post(&format!("/api/v1/cases/{open}/resubmit"), &json!({"data": leave(1), "device": {"totp": code}}));
    assert_eq!(refused.status, 409, "{}", refused.body);
    let r = staff.post(&format!("/api/v1/cases/{id}/resubmit"), &json!({"data": leave(1), "device": {"totp": code}}));
    assert_eq!(r.status, 200, "{}", r.body);
    let sig = submission_signature(&s, &id);
    assert!(sig.second_factor && sig.level >= Level::Advanced, "{sig:?}");
    assert_eq!(on_device(&sig, "p005-correct").person, "p005");
    assert_eq!(s.case(&id).status, carimbo::workflow::CaseStatus::Open, "open again with the corrected data");
}

#[test]
fn a_device_submission_with_a_wrong_code_two_signatures_or_no_device_key_is_refused_and_opens_no_case() {
    let hsm = need_hsm!();
    let s = server_with_device_key(hsm, "doc02", "doc02-refused");
    let doctor = s.login("doc02");
    enrol(&s, &doctor);
    let data = crate::common::example("medical-certificate");
    let cases_before = s.state.cases.store().heads(None, 10_000).unwrap().len();

    let wrong =
        doctor.post("/api/v1/cases", &json!({"form": "medical-certificate", "data": data, "idempotency_key": "mc-wrong", "device": {"totp": "000000"}}));
    wrong.problem(401, "CARIMBO-E0604");
    let signed = doctor.sign(&json!({"kind": "submit", "form": "medical-certificate", "data": data, "idempotency_key": "mc-both"}));
    let both = doctor.post(
        "/api/v1/cases",
        &json!({"form": "medical-certificate", "data": data, "idempotency_key": "mc-both", "signed": signed, "device": {"totp": next_code(&s, "doc02")}}),
    );
    let p = both.problem(422, "CARIMBO-E1448");
    assert!(p["messages"]["zh"].as_str().is_some_and(|m| !m.is_empty()), "said in Chinese too: {p}");
    let unknown =
        doctor.post("/api/v1/cases", &json!({"form": "medical-certificate", "data": data, "idempotency_key": "mc-odd", "device": {"totp": "1", "pin": "1"}}));
    unknown.problem(422, "CARIMBO-E0704");
    // doc01 has no key on the HSM.
    let other = s.login("doc01");
    let none = other.post("/api/v1/cases", &json!({"form": "medical-certificate", "data": data, "idempotency_key": "mc-none", "device": {"totp": "123456"}}));
    none.problem(422, "CARIMBO-E1457");
    // A key file on this qualified step reaches advanced at most.
    let file = doctor.submit("medical-certificate", &data, "mc-file");
    assert_eq!(file.problem(422, "CARIMBO-E0500")["report"]["achieved_level"], "advanced");
    assert_eq!(s.state.cases.store().heads(None, 10_000).unwrap().len(), cases_before, "no case was opened");
    // The right code still works afterwards: nothing was spent by the refusals.
    let ok = doctor.post(
        "/api/v1/cases",
        &json!({"form": "medical-certificate", "data": data, "idempotency_key": "mc-after", "device": {"totp": next_code(&s, "doc02")}}),
    );
    assert_eq!(ok.status, 201, "{}", ok.body);
}

#[test]
fn the_fill_page_of_a_person_whose_key_is_on_the_hsm_asks_for_their_code_instead_of_a_key_file() {
    let hsm = need_hsm!();
    let s = server_with_device_key(hsm, "p005", "p005-page");
    let page = |person: &str| {
        let c = s.login(person).by_cookie();
        let csrf = c.csrf.clone().expect("a page session's CSRF token");
        let body = format!("csrf={csrf}&leave_type=annual&start_date=2026-03-09&end_date=2026-03-13");
        let r = c.request("POST", "/forms/absence-and-annual-leave?lang=en", Some(body.as_bytes()), &[("content-type", "application/x-www-form-urlencoded")]);
        assert_eq!(r.status, 200, "{}", r.body);
        r.body.as_str().expect("HTML").to_string()
    };
    let html = page("p005");
    assert!(html.contains(r#"id="sign""#) && html.contains(r#"data-provider="hsm""#), "{html}");
    assert!(html.contains(r#"id="totp""#) && !html.contains(r#"id="keyfile""#), "a code, no key file");
    assert!(html.contains("The code authorizes only the signature of what is shown above, once."));
    assert!(html.contains(r#"id="no-second-factor""#), "not enrolled yet: the page says where to enrol");
    let other = page("p006");
    assert!(other.contains(r#"data-provider="browser-key""#) && other.contains(r#"id="keyfile""#), "someone without a device key picks their key file");
}
