//! RFC 3161 time-stamps and JAdES B-T: tokens carimbo's TSA makes verify in carimbo and in
//! OpenSSL (`openssl ts -verify`); every changed byte, wrong TSA or wrong time is refused.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use carimbo::signing::timestamp::{DEFAULT_TSA_POLICY, TimeStampVerifier, TsaSigner};
use chrono::{DateTime, Utc};

fn seeds() -> PathBuf {
    common::repo().join("seeds")
}

fn demo_tsa() -> TsaSigner {
    let pki = seeds().join("pki");
    TsaSigner::from_pem(&std::fs::read(pki.join("tsa/tsa.key.pem")).unwrap(), &std::fs::read(pki.join("tsa/tsa.pem")).unwrap(), DEFAULT_TSA_POLICY).unwrap()
}

fn stamp_verifier() -> TimeStampVerifier {
    TimeStampVerifier::new(
        carimbo::cli::pki_files::load_trust_list(&seeds().join("trust"), Utc::now()).unwrap(),
        carimbo::cli::pki_files::load_crl_dir(&seeds().join("pki/crl")).unwrap(),
    )
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
use common::server::{TestServer, leave};
use serde_json::{Value, json};

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
        let report = verify_stored(&verifier, jws, &VerifyOptions::at(Utc::now()));
        assert!(report.passed(), "{report:?}");
        let report = serde_json::to_value(&report).unwrap();
        assert_eq!(report["time_source"], "timestamp", "{report}");
        assert_eq!(report["timestamp"]["tsa_entity"], "demo-tsa", "{report}");
        assert_eq!(report["timestamp"]["imprint_algorithm"], "SHA-256", "{report}");
    }
    // The seal of the `simple` act is stamped too, and the evidence bundle still verifies.
    assert_eq!(
        acts.iter().filter(|j| serde_json::from_value::<carimbo::signing::SigningPayload>(j["payload"].clone()).unwrap().step == "hr-records").count(),
        1
    );
    let bundle = s.login("p022").get(&format!("/api/v1/cases/{id}/evidence"));
    assert_eq!(bundle.status, 200, "{}", bundle.body);
    let report = carimbo::evidence::verify(bundle.body.to_string().as_bytes(), chrono::Utc::now());
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
    let doc = |signature: &str, token: &[u8]| {
        json!({"protected": jws.protected, "signature": signature, "header": carimbo::signing::timestamp::sig_tst_header(token)}).to_string()
    };
    let opts = VerifyOptions::at(Utc::now());
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

/// A signer from `seeds/pki/DIR/NAME.pem` and its key.
fn signer(dir: &str, name: &str) -> carimbo::signing::Signer {
    let pki = seeds().join("pki").join(dir);
    carimbo::signing::Signer::from_pem(&std::fs::read(pki.join(format!("{name}.key.pem"))).unwrap(), &std::fs::read(pki.join(format!("{name}.pem"))).unwrap())
        .unwrap()
}

/// `signer` signs `payload` claiming `iat`; `tsa` stamps the signature at `stamped_at`.
fn stamped_jws(signer: &carimbo::signing::Signer, tsa: &TsaSigner, payload: &[u8], iat: DateTime<Utc>, stamped_at: DateTime<Utc>) -> String {
    let jws = signer.sign(payload, iat).unwrap();
    let token = tsa.stamp(jws.signature.as_bytes(), 9, stamped_at).unwrap();
    json!({"protected": jws.protected, "signature": jws.signature, "header": carimbo::signing::timestamp::sig_tst_header(&token)}).to_string()
}

fn verify_now(jws: &str, payload: &[u8]) -> carimbo::pki::ValidationReport {
    common::verifier().verify(jws.as_bytes(), payload, &VerifyOptions::at(Utc::now()))
}

fn sub(r: &carimbo::pki::ValidationReport) -> String {
    serde_json::to_value(r.sub_indication).unwrap().as_str().unwrap_or("").to_string()
}

#[test]
fn a_certificate_revoked_after_the_stamp_passes_and_one_revoked_before_it_fails() {
    // seeds/pki/bad/revoked.pem was revoked on 2025-06-01 (key compromise).
    let (revoked, tsa, payload) = (signer("bad", "revoked"), demo_tsa(), b"payload".as_slice());
    let before = at("2025-05-01T09:00:00Z");
    let r = verify_now(&stamped_jws(&revoked, &tsa, payload, before, before), payload);
    assert!(r.passed(), "{r:?}");
    assert!(r.notes.iter().any(|n| n.contains("revoked on 2025-06-01")), "the later revocation is noted: {:?}", r.notes);
    assert_eq!(r.signing_time, Some(before));

    let after = at("2025-07-01T09:00:00Z");
    let r = verify_now(&stamped_jws(&revoked, &tsa, payload, after, after), payload);
    assert!(!r.passed());
    assert_eq!(sub(&r), "REVOKED", "{r:?}");

    // Without the stamp the same early signature proves nothing about its time.
    let plain = revoked.sign(payload, before).unwrap().to_json();
    assert_eq!(sub(&verify_now(&plain, payload)), "REVOKED_NO_POE");
}

#[test]
fn a_certificate_that_expired_after_the_stamp_still_passes() {
    // seeds/pki/bad/expired.pem was valid until 2025-06-30.
    let (expired, tsa, payload) = (signer("bad", "expired"), demo_tsa(), b"payload".as_slice());
    let t = at("2025-03-01T09:00:00Z");
    let r = verify_now(&stamped_jws(&expired, &tsa, payload, t, t), payload);
    assert!(r.passed(), "{r:?}");
    let plain = expired.sign(payload, Utc::now()).unwrap().to_json();
    assert_eq!(sub(&verify_now(&plain, payload)), "EXPIRED");
}

#[test]
fn a_claimed_time_after_the_stamp_or_long_before_it_is_refused() {
    let (p003, tsa, payload) = (common::person("p003"), demo_tsa(), b"payload".as_slice());
    let t = at("2026-02-02T09:00:00Z");
    // Within the five minutes of clock skew, and a few minutes before: accepted.
    for iat in [t + chrono::Duration::minutes(4), t - chrono::Duration::minutes(10)] {
        assert!(verify_now(&stamped_jws(&p003, &tsa, payload, iat, t), payload).passed(), "iat {iat}");
    }
    let r = verify_now(&stamped_jws(&p003, &tsa, payload, t + chrono::Duration::minutes(10), t), payload);
    assert_eq!((r.code.as_deref(), sub(&r).as_str()), (Some("CARIMBO-E1217"), "SIG_CONSTRAINTS_FAILURE"), "{r:?}");
    let r = verify_now(&stamped_jws(&p003, &tsa, payload, t - chrono::Duration::hours(1), t), payload);
    assert_eq!(r.code.as_deref(), Some("CARIMBO-E1218"), "{r:?}");
}

#[test]
fn a_tsa_certificate_without_the_critical_time_stamping_eku_is_refused() {
    let pki = seeds().join("pki");
    let (cert, key) = carimbo::cli::pki_demo::issue_tsa_certificate(&pki, "TSA with a non-critical EKU", 0x75b1, false).unwrap();
    let bad_tsa = TsaSigner::from_pem(key.as_bytes(), cert.as_bytes(), DEFAULT_TSA_POLICY).unwrap();
    let (p003, payload, t) = (common::person("p003"), b"payload".as_slice(), Utc::now());
    let r = verify_now(&stamped_jws(&p003, &bad_tsa, payload, t, t), payload);
    assert_eq!((r.code.as_deref(), sub(&r).as_str()), (Some("CARIMBO-E1214"), "CHAIN_CONSTRAINTS_FAILURE"), "{r:?}");
    assert!(r.detail.contains("not critical"), "{}", r.detail);
    // A person's signing certificate is no TSA either.
    let person_pki = pki.join("people");
    let as_tsa =
        TsaSigner::from_pem(&std::fs::read(person_pki.join("p003.key.pem")).unwrap(), &std::fs::read(person_pki.join("p003.pem")).unwrap(), DEFAULT_TSA_POLICY)
            .unwrap();
    let r = verify_now(&stamped_jws(&p003, &as_tsa, payload, t, t), payload);
    assert_eq!(r.code.as_deref(), Some("CARIMBO-E1214"), "{r:?}");
    // And carimbo refuses to run a TSA with such a certificate.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.pem"), &cert).unwrap();
    std::fs::write(dir.path().join("bad.key.pem"), &key).unwrap();
    let err =
        carimbo::tsa::LocalTsa::open(&dir.path().join("bad.key.pem"), &dir.path().join("bad.pem"), DEFAULT_TSA_POLICY, dir.path()).err().expect("refused");
    assert_eq!(err.code(), "CARIMBO-E1207", "{err}");
}

#[test]
fn a_tsa_not_on_the_trust_list_is_refused_even_with_a_good_certificate() {
    let (cert, key) = carimbo::cli::pki_demo::issue_tsa_certificate(&seeds().join("pki"), "Unlisted TSA", 0x75b2, true).unwrap();
    let unlisted = TsaSigner::from_pem(key.as_bytes(), cert.as_bytes(), DEFAULT_TSA_POLICY).unwrap();
    let (p003, payload, t) = (common::person("p003"), b"payload".as_slice(), Utc::now());
    let r = verify_now(&stamped_jws(&p003, &unlisted, payload, t, t), payload);
    assert_eq!(r.code.as_deref(), Some("CARIMBO-E1216"), "{r:?}");
}

/// carimbo's TSA (`carimbo tsa`'s router) on a loopback port of its own runtime.
struct TsaServer {
    url: String,
    _runtime: tokio::runtime::Runtime,
    _data: tempfile::TempDir,
}

fn tsa_server() -> TsaServer {
    let data = tempfile::tempdir().unwrap();
    let pki = seeds().join("pki");
    let tsa =
        std::sync::Arc::new(carimbo::tsa::LocalTsa::open(&pki.join("tsa/tsa.key.pem"), &pki.join("tsa/tsa.pem"), DEFAULT_TSA_POLICY, data.path()).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/tsa", listener.local_addr().unwrap());
    runtime.spawn(async move { axum::serve(listener, carimbo::tsa::router(tsa)).await });
    TsaServer { url, _runtime: runtime, _data: data }
}

/// A URL on which nothing listens.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/tsa", l.local_addr().unwrap())
}

#[test]
fn serve_tsa_fails_over_to_the_second_url_when_the_first_is_down() {
    let live = tsa_server();
    let client = carimbo::tsa::TsaClient::new(vec![dead_url(), live.url.clone()], std::time::Duration::from_secs(2));
    let token = client.stamp(b"signature-value").unwrap();
    stamp_verifier().verify(&token, b"signature-value").unwrap();
    let dir = tempfile::tempdir().unwrap();
    openssl_verify(dir.path(), &token, b"signature-value").unwrap();

    // Through the server: the act is stamped by the second TSA.
    let (dead, url) = (dead_url(), live.url.clone());
    let s = TestServer::start_with(|state| {
        state.stamping = carimbo::tsa::TimeStamping::choose(&[dead, url], std::time::Duration::from_secs(2), &seeds().join("pki"), &state.paths.data).unwrap();
    });
    let (_, acts) = stamped_case(&s);
    for jws in &acts {
        stamp_verifier().verify(&token_of(jws), jws["signature"].as_str().unwrap().as_bytes()).unwrap();
    }
}

#[test]
fn with_every_tsa_down_an_act_is_refused_and_nothing_is_recorded() {
    let (a, b) = (dead_url(), dead_url());
    let client = carimbo::tsa::TsaClient::new(vec![a.clone(), b.clone()], std::time::Duration::from_secs(1));
    let err = client.stamp(b"x").expect_err("no TSA answers");
    assert_eq!(err.code(), "CARIMBO-E1205");
    assert!(err.to_string().contains(&a) && err.to_string().contains(&b), "each URL is named: {err}");

    let not_a_url =
        carimbo::tsa::TimeStamping::choose(&["tsa.example.org".into()], std::time::Duration::from_secs(1), &seeds().join("pki"), &std::env::temp_dir())
            .err()
            .expect("refused");
    assert_eq!(not_a_url.code(), "CARIMBO-E1222", "{not_a_url}");

    let s = TestServer::start_with(|state| {
        state.stamping = carimbo::tsa::TimeStamping::choose(&[a, b], std::time::Duration::from_secs(1), &seeds().join("pki"), &state.paths.data).unwrap();
    });
    let staff = s.login("p005");
    let r = staff.submit("absence-and-annual-leave", &leave(2), "k");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.problem(503, "CARIMBO-E1205")["status"], 503);
    let mine = staff.get("/api/v1/cases");
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert_eq!(mine.body["cases"].as_array().expect("a list of cases").len(), 0, "no case was opened");
}

#[test]
fn carimbo_tsa_answers_rfc_3161_over_http_and_refuses_other_bodies() {
    let live = tsa_server();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    // A request made by OpenSSL gets a reply OpenSSL verifies.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data"), b"stamp me").unwrap();
    let q = Command::new("openssl")
        .args(["ts", "-query", "-sha256", "-cert", "-data"])
        .arg(dir.path().join("data"))
        .arg("-out")
        .arg(dir.path().join("q.tsq"))
        .output()
        .unwrap();
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    let mut reply =
        agent.post(&live.url).header("content-type", "application/timestamp-query").send(&std::fs::read(dir.path().join("q.tsq")).unwrap()[..]).unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    assert_eq!(reply.headers().get("content-type").unwrap(), "application/timestamp-reply");
    std::fs::write(dir.path().join("r.tsr"), reply.body_mut().read_to_vec().unwrap()).unwrap();
    let v = Command::new("openssl")
        .args(["ts", "-verify", "-in"])
        .arg(dir.path().join("r.tsr"))
        .arg("-queryfile")
        .arg(dir.path().join("q.tsq"))
        .arg("-CAfile")
        .arg(seeds().join("pki/root/root.pem"))
        .arg("-untrusted")
        .arg(seeds().join("pki/tsa/tsa.pem"))
        .output()
        .unwrap();
    assert!(v.status.success(), "{}{}", String::from_utf8_lossy(&v.stdout), String::from_utf8_lossy(&v.stderr));

    // Another media type: 415 with the code.
    let mut r = agent.post(&live.url).header("content-type", "application/json").send("{}").unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert!(r.body_mut().read_to_string().unwrap().contains("CARIMBO-E1220"));
    // Bytes that are no request: a rejection reply (RFC 3161 §2.4.2), no token.
    let mut r = agent.post(&live.url).header("content-type", "application/timestamp-query").send(&b"not DER"[..]).unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let pending = carimbo::signing::timestamp::request(b"x", [1; 8]).unwrap();
    let err = carimbo::signing::timestamp::token_from_reply(&r.body_mut().read_to_vec().unwrap(), &pending).expect_err("a rejection");
    assert_eq!(err.code(), "CARIMBO-E1203", "{err}");
    assert!(err.to_string().contains("CARIMBO-E1201"), "the TSA says why: {err}");
}

#[test]
fn serial_numbers_rise_and_never_repeat_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tsa/serial.json");
    let first: Vec<u64> = {
        let c = carimbo::tsa::SerialCounter::open(&path).unwrap();
        (0..3).map(|_| c.next().unwrap()).collect()
    };
    let c = carimbo::tsa::SerialCounter::open(&path).unwrap();
    let second = c.next().unwrap();
    assert!(first.windows(2).all(|w| w[0] < w[1]), "{first:?}");
    assert!(second > first[2], "{first:?} then {second}");
    assert_eq!(second >> 32, first[0] >> 32, "the same instance");
    // A counter file that is not one is refused, not overwritten.
    std::fs::write(&path, b"{\"instance\":1}").unwrap();
    assert_eq!(carimbo::tsa::SerialCounter::open(&path).err().unwrap().code(), "CARIMBO-E1208");
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"instance\":1}");
}

#[test]
fn a_fresh_demo_pki_has_a_tsa_and_pki_demo_tsa_adds_one_without_touching_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, trust) = (dir.path().join("pki"), dir.path().join("trust"));
    let mut people = carimbo::cli::pki_demo::read_people(&seeds().join("pki/people.json")).unwrap();
    people.truncate(1);
    carimbo::cli::pki_demo::write_demo(&people, &pki, &trust).unwrap();
    let verifier = |trust: &Path| {
        TimeStampVerifier::new(
            carimbo::cli::pki_files::load_trust_list(trust, Utc::now()).unwrap(),
            carimbo::cli::pki_files::load_crl_dir(&pki.join("crl")).unwrap(),
        )
    };
    let tsa = |pki: &Path| {
        TsaSigner::from_pem(&std::fs::read(pki.join("tsa/tsa.key.pem")).unwrap(), &std::fs::read(pki.join("tsa/tsa.pem")).unwrap(), DEFAULT_TSA_POLICY).unwrap()
    };
    let token = tsa(&pki).stamp(b"x", 1, Utc::now()).unwrap();
    assert_eq!(verifier(&trust).verify(&token, b"x").unwrap().tsa_entity, "demo-tsa");

    // Adding the TSA again to this PKI: a new TSA key and certificate, nothing else changes.
    let before: Vec<(PathBuf, Vec<u8>)> = ["root/root.pem", "root/root.key.pem", "ca/qualified-ca.pem", "crl/root.crl", "service/service.pem"]
        .iter()
        .map(|f| (pki.join(f), std::fs::read(pki.join(f)).unwrap()))
        .collect();
    let old_tsa = std::fs::read(pki.join("tsa/tsa.pem")).unwrap();
    let old_signer = tsa(&pki);
    let id = carimbo::cli::pki_demo::add_demo_tsa(&pki, &trust, Utc::now()).unwrap();
    assert_eq!(id, "demo-tsa-2", "a history never reuses a member's id");
    for (path, bytes) in before {
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{} changed", path.display());
    }
    assert_ne!(std::fs::read(pki.join("tsa/tsa.pem")).unwrap(), old_tsa);
    let list: Value = serde_json::from_slice(&std::fs::read(trust.join("trust-list.json")).unwrap()).unwrap();
    let changes: Vec<String> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take(3)
        .map(|e| format!("{} {}", e["payload"]["change"]["type"].as_str().unwrap(), e["payload"]["change"]["member"].as_str().unwrap()))
        .collect();
    assert_eq!(changes, ["status demo-tsa-2", "add_member demo-tsa-2", "status demo-tsa"], "the old TSA withdrawn, the new one added and granted");
    let token = tsa(&pki).stamp(b"x", 2, Utc::now() + chrono::Duration::seconds(1)).unwrap();
    assert_eq!(verifier(&trust).verify(&token, b"x").unwrap().tsa_entity, "demo-tsa-2");
    // The old TSA's tokens made after its withdrawal are no longer recognised.
    let old_token = old_signer.stamp(b"x", 3, Utc::now() + chrono::Duration::seconds(1)).unwrap();
    assert_eq!(verifier(&trust).verify(&old_token, b"x").unwrap_err().code, "CARIMBO-E1216");
    // A PKI whose root key does not match its root certificate is refused, nothing written.
    std::fs::copy(pki.join("ca/qualified-ca.key.pem"), pki.join("root/root.key.pem")).unwrap();
    let tsa_before = std::fs::read(pki.join("tsa/tsa.pem")).unwrap();
    assert!(carimbo::cli::pki_demo::add_demo_tsa(&pki, &trust, Utc::now()).is_err());
    assert_eq!(std::fs::read(pki.join("tsa/tsa.pem")).unwrap(), tsa_before);
}
