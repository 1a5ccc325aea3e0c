//! RFC 3161 time-stamps and JAdES B-T: tokens carimbo's TSA makes verify in carimbo and in
//! OpenSSL (`openssl ts -verify`); every changed byte, wrong TSA or wrong time is refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use carimbo::pki::{CrlSet, TrustList};
use carimbo::signing::timestamp::{TimeStampVerifier, TsaSigner, DEFAULT_TSA_POLICY};
use chrono::{DateTime, Utc};

fn seeds() -> PathBuf {
    common::repo().join("seeds")
}

fn demo_tsa() -> TsaSigner {
    let pki = seeds().join("pki");
    TsaSigner::from_pem(&std::fs::read(pki.join("tsa/tsa.key.pem")).unwrap(), &std::fs::read(pki.join("tsa/tsa.pem")).unwrap(), DEFAULT_TSA_POLICY).unwrap()
}

fn stamp_verifier() -> TimeStampVerifier {
    TimeStampVerifier::new(TrustList::load(&seeds().join("trust")).unwrap(), CrlSet::load_dir(&seeds().join("pki/crl")).unwrap())
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// `openssl ts -verify` of `token` over `data`, against the demo root; `Ok` or OpenSSL's words.
fn openssl_verify(dir: &Path, token: &[u8], data: &[u8]) -> Result<(), String> {
    let token_path = dir.join("token.der");
    let data_path = dir.join("data.bin");
    std::fs::write(&token_path, token).unwrap();
    std::fs::write(&data_path, data).unwrap();
    let out = Command::new("openssl")
        .args(["ts", "-verify", "-token_in", "-in"])
        .arg(&token_path)
        .arg("-data")
        .arg(&data_path)
        .arg("-CAfile")
        .arg(seeds().join("pki/root/root.pem"))
        .arg("-untrusted")
        .arg(seeds().join("pki/tsa/tsa.pem"))
        .output()
        .expect("openssl is installed (.ci/run installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() && text.contains("Verification: OK") { Ok(()) } else { Err(text) }
}

#[test]
fn a_token_of_the_demo_tsa_verifies_in_carimbo_and_in_openssl() {
    let tsa = demo_tsa();
    let data = b"eyJhbGciOiJFUzI1NiJ9-signature-value";
    let token = tsa.stamp(data, 7, at("2026-03-01T10:00:00Z")).unwrap();
    let verified = stamp_verifier().verify(&token, data).unwrap();
    assert_eq!(verified.gen_time, at("2026-03-01T10:00:00Z"));
    assert_eq!(verified.serial, "07");
    assert_eq!(verified.policy, DEFAULT_TSA_POLICY);
    assert_eq!(verified.tsa_entity, "demo-tsa");
    let dir = tempfile::tempdir().unwrap();
    openssl_verify(dir.path(), &token, data).unwrap();
    // OpenSSL agrees that other bytes are not what the token stamps.
    assert!(openssl_verify(dir.path(), &token, b"other bytes").is_err());
}

use carimbo::signing::{SignatureVerifier, VerifyOptions};
use common::server::{leave, TestServer};
use serde_json::{json, Value};

/// The token in an act's stored JWS (`header.etsiU[0]` → `sigTst.tstTokens[0].val`).
fn token_of(jws: &Value) -> Vec<u8> {
    use base64::Engine;
    let entry = jws["header"]["etsiU"][0].as_str().expect("an etsiU entry");
    let inner: Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(entry).unwrap()).unwrap();
    base64::engine::general_purpose::STANDARD.decode(inner["sigTst"]["tstTokens"][0]["val"].as_str().unwrap()).unwrap()
}

/// Verify a stored act JWS (with its unprotected header) over its payload.
fn verify_stored(verifier: &SignatureVerifier, jws: &Value, opts: &VerifyOptions) -> carimbo::pki::ValidationReport {
    let payload: carimbo::signing::SigningPayload = serde_json::from_value(jws["payload"].clone()).unwrap();
    let doc = json!({"protected": jws["protected"], "signature": jws["signature"], "header": jws["header"]}).to_string();
    verifier.verify(doc.as_bytes(), &payload.canonical_bytes().unwrap(), opts)
}

/// A leave case approved by the supervisor (a personal key) and sealed by the service for the
/// personnel section (`simple`), through the real server; returns the stored act JWSs.
fn stamped_case(s: &TestServer) -> (String, Vec<Value>) {
    let staff = s.login("p005");
    let id = staff.submit_ok("absence-and-annual-leave", &leave(2), "k");
    let r = s.login("p003").act(&id, "supervisor", "approve");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.login("p018").post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "hr-records", "action": "sign"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let events = s.state.cases.events(&id).unwrap();
    let jws = events.iter().filter_map(|e| e.body["signature"]["jws"].as_object().map(|o| Value::Object(o.clone()))).collect();
    (id, jws)
}

#[test]
fn every_act_through_the_server_carries_a_time_stamp_that_openssl_and_carimbo_accept() {
    let s = TestServer::start();
    let (id, acts) = stamped_case(&s);
    assert_eq!(acts.len(), 3, "submit, supervisor's approval, personnel section's seal");
    let dir = tempfile::tempdir().unwrap();
    let verifier = common::verifier();
    for jws in &acts {
        let token = token_of(jws);
        let signature = jws["signature"].as_str().unwrap();
        openssl_verify(dir.path(), &token, signature.as_bytes()).unwrap_or_else(|e| panic!("openssl refused the token of {jws}: {e}"));
        let report = verify_stored(&verifier, jws, &VerifyOptions::now());
        assert!(report.passed(), "{report:?}");
        let report = serde_json::to_value(&report).unwrap();
        assert_eq!(report["time_source"], "timestamp", "{report}");
        assert_eq!(report["timestamp"]["tsa_entity"], "demo-tsa", "{report}");
        assert_eq!(report["timestamp"]["imprint_algorithm"], "SHA-256", "{report}");
    }
    // The seal of the `simple` act is stamped too, and the evidence bundle still verifies.
    assert_eq!(acts.iter().filter(|j| serde_json::from_value::<carimbo::signing::SigningPayload>(j["payload"].clone()).unwrap().step == "hr-records").count(), 1);
    let bundle = s.login("p022").get(&format!("/api/v1/cases/{id}/evidence"));
    assert_eq!(bundle.status, 200, "{}", bundle.body);
    let report = carimbo::evidence::verify(bundle.body.to_string().as_bytes());
    assert!(report.passed, "{}", report.to_text());
}

#[test]
fn changing_any_byte_of_a_token_or_of_the_stamped_signature_is_refused_and_named() {
    use base64::Engine;
    let tsa = demo_tsa();
    let person = common::person("p003");
    let payload = b"{\"act\":\"approve\"}";
    let iat = Utc::now();
    let jws = person.sign(payload, iat).unwrap();
    let token = tsa.stamp(jws.signature.as_bytes(), 42, iat).unwrap();
    let verifier = common::verifier();
    let doc = |signature: &str, token: &[u8]| json!({"protected": jws.protected, "signature": signature, "header": carimbo::signing::timestamp::sig_tst_header(token)}).to_string();
    let opts = VerifyOptions::now();
    let good = verifier.verify(doc(&jws.signature, &token).as_bytes(), payload, &opts);
    assert!(good.passed(), "{good:?}");
    // Every byte of the token.
    for i in 0..token.len() {
        let mut bad = token.clone();
        bad[i] ^= 0x01;
        let r = verifier.verify(doc(&jws.signature, &bad).as_bytes(), payload, &opts);
        assert!(!r.passed(), "byte {i} of the token changed and it still verifies");
        assert!(r.code.as_deref().is_some_and(|c| c.starts_with("CARIMBO-E12")), "byte {i}: not named as the time-stamp's fault: {r:?}");
        assert!(r.detail.starts_with("signature time-stamp: "), "byte {i}: {}", r.detail);
    }
    // Every byte of the stamped signature value: the stamp no longer covers it.
    let sig = URL_SAFE.decode(&jws.signature).unwrap();
    for i in 0..sig.len() {
        let mut bad = sig.clone();
        bad[i] ^= 0x01;
        let r = verifier.verify(doc(&URL_SAFE.encode(&bad), &token).as_bytes(), payload, &opts);
        assert!(!r.passed(), "byte {i} of the signature changed and it still verifies");
        assert_eq!(r.code.as_deref(), Some("CARIMBO-E1211"), "byte {i}: {r:?}");
        assert_eq!(serde_json::to_value(r.sub_indication).unwrap(), "HASH_FAILURE");
    }
}

const URL_SAFE: base64::engine::general_purpose::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
