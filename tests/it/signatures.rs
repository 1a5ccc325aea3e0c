//! Signing and verifying acts with the demo PKI: algorithms, levels, reports.

use crate::common;

use carimbo::pki::report::{Indication, SignatureLevel, SubIndication, TimeSource};
use carimbo::pki::trust::TrustList;
use carimbo::pki::{CertificateValidator, ValidationPolicy};
use carimbo::signing::{JwsAlgorithm, ServiceSeal, SignatureVerifier, Signer, SigningKey, VerifyOptions, verify_act};
use common::*;
use serde_json::json;

#[test]
fn qualified_person_with_p256_key_signs_at_qualified_level() {
    let p = payload("p003");
    let verified =
        verify_act(&verifier(), &p, Some(&form_data()), &signed_by("p003", &p), SignatureLevel::Qualified, &opts()).expect("qualified signature passes");
    let r = verified.report();
    assert_eq!(r.indication, Indication::TotalPassed);
    assert_eq!(r.achieved_level, Some(SignatureLevel::Qualified));
    assert_eq!(r.algorithm.as_deref(), Some("ES256"));
    assert_eq!(r.signer.as_ref().unwrap().person_id.as_deref(), Some("p003"));
    assert_eq!(r.time_source, Some(TimeSource::Trusted));
}

#[test]
fn rsa_key_signs_with_ps256_by_default_and_rs256_on_request() {
    let p = payload("p004");
    let ps = signed_by("p004", &p);
    let r = verifier().verify(&ps, &bytes(&p), &opts());
    assert!(r.passed(), "{r:?}");
    assert_eq!(r.algorithm.as_deref(), Some("PS256"));

    let key = SigningKey::from_pkcs8_pem(&std::fs::read(pki("people/p004.key.pem")).unwrap()).unwrap().with_algorithm(JwsAlgorithm::RS256).unwrap();
    let chain = carimbo::cli::pki_files::load_pem_certificates(&pki("people/p004.pem")).unwrap();
    let rs = Signer::new(key, &chain).unwrap().sign(&bytes(&p), now()).unwrap();
    let r = verifier().verify(rs.to_json().as_bytes(), &bytes(&p), &opts());
    assert!(r.passed(), "{r:?}");
    assert_eq!(r.algorithm.as_deref(), Some("RS256"));
    assert_eq!(r.achieved_level, Some(SignatureLevel::Qualified));
}

#[test]
fn ed25519_key_signs_with_eddsa() {
    let p = payload("p013");
    let r = verifier().verify(&signed_by("p013", &p), &bytes(&p), &opts());
    assert!(r.passed(), "{r:?}");
    assert_eq!(r.algorithm.as_deref(), Some("EdDSA"));
    assert_eq!(r.achieved_level, Some(SignatureLevel::Qualified));
}

#[test]
fn every_demo_person_can_sign_and_be_verified() {
    let people = carimbo::cli::pki_demo::read_people(&pki("people.json")).unwrap();
    assert_eq!(people.len(), 44);
    let v = verifier();
    for person in people {
        let p = payload(&person.id);
        let r = v.verify(&signed_by(&person.id, &p), &bytes(&p), &opts());
        assert!(r.passed(), "{}: {r:?}", person.id);
        let expected = match person.issuer {
            carimbo::pki::demo::DemoIssuer::QualifiedCa => SignatureLevel::Qualified,
            carimbo::pki::demo::DemoIssuer::AdvancedCa => SignatureLevel::Advanced,
        };
        assert_eq!(r.achieved_level, Some(expected), "{}", person.id);
    }
}

#[test]
fn certificate_from_non_accredited_ca_reaches_only_advanced_level() {
    let p = payload("p005");
    let r = verifier().verify(&signed_by("p005", &p), &bytes(&p), &opts());
    assert!(r.passed());
    assert_eq!(r.achieved_level, Some(SignatureLevel::Advanced));
    assert!(r.notes.iter().any(|n| n.contains("not qualified")), "{:?}", r.notes);
}

#[test]
fn step_demanding_qualified_refuses_advanced_signature_and_says_why() {
    let p = payload("p005");
    let report =
        verify_act(&verifier(), &p, Some(&form_data()), &signed_by("p005", &p), SignatureLevel::Qualified, &opts()).expect_err("advanced is not enough");
    assert_eq!(report.indication, Indication::Indeterminate);
    assert_eq!(report.sub_indication, Some(SubIndication::SigConstraintsFailure));
    assert_eq!(report.code.as_deref(), Some("CARIMBO-E0534"));
    assert_eq!(report.achieved_level, Some(SignatureLevel::Advanced));
    assert_eq!(report.required_level, Some(SignatureLevel::Qualified));
    assert!(report.message.en.contains("qualified certificate"), "{}", report.message.en);
    assert!(report.message.pt.contains("qualificad"));
    assert!(report.message.zh.contains("合格"));
    assert!(report.detail.contains("not accredited") || report.detail.contains("not qualified"));
}

#[test]
fn qualified_signature_satisfies_steps_demanding_advanced_or_simple() {
    let p = payload("p003");
    let jws = signed_by("p003", &p);
    for level in [SignatureLevel::Simple, SignatureLevel::Advanced, SignatureLevel::Qualified] {
        let v = verify_act(&verifier(), &p, Some(&form_data()), &jws, level, &opts());
        assert!(v.is_ok(), "{level:?}");
    }
    assert!(SignatureLevel::Qualified.satisfies(SignatureLevel::Advanced));
    assert!(!SignatureLevel::Simple.satisfies(SignatureLevel::Advanced));
}

fn service_seal() -> ServiceSeal {
    ServiceSeal::from_pem(&std::fs::read(pki("service/service.key.pem")).unwrap(), &std::fs::read(pki("service/service.pem")).unwrap()).unwrap()
}

#[test]
fn simple_act_sealed_by_the_service_verifies_at_simple_level() {
    let p = payload("p021");
    let seal = service_seal().seal(&p, now()).unwrap();
    let verified =
        verify_act(&verifier(), &p, Some(&form_data()), seal.to_json().as_bytes(), SignatureLevel::Simple, &opts()).expect("sealed simple act passes");
    assert_eq!(verified.level(), SignatureLevel::Simple);
}

#[test]
fn service_seal_does_not_satisfy_a_step_demanding_advanced() {
    let p = payload("p021");
    let seal = service_seal().seal(&p, now()).unwrap();
    let report = verify_act(&verifier(), &p, None, seal.to_json().as_bytes(), SignatureLevel::Advanced, &opts()).expect_err("a seal is only simple");
    assert_eq!(report.sub_indication, Some(SubIndication::SigConstraintsFailure));
    assert_eq!(report.achieved_level, Some(SignatureLevel::Simple));
}

#[test]
fn tampered_sealed_simple_act_is_detected() {
    let p = payload("p021");
    let seal = service_seal().seal(&p, now()).unwrap();
    let mut changed = p.clone();
    changed.action = "reject".into();
    let report = verify_act(&verifier(), &changed, None, seal.to_json().as_bytes(), SignatureLevel::Simple, &opts()).expect_err("a changed record fails");
    assert_eq!(report.sub_indication, Some(SubIndication::SigCryptoFailure));
}

#[test]
fn issuer_accreditation_is_judged_at_the_signing_time() {
    // Accredited from 2025 until 2026-06-01: a signature made in May 2026 stays qualified,
    // one made in November 2026 is only advanced.
    let trust = TrustList::from_history(&qualified_ca_withdrawn_at("2026-06-01T00:00:00Z")).unwrap();
    let verifier = SignatureVerifier::new(CertificateValidator::new(
        trust,
        carimbo::cli::pki_files::load_crl_dir(&pki("crl")).unwrap(),
        ValidationPolicy::document_signing(),
    ))
    // p003's key is a file: the accreditation is what this test is about, not the device.
    .with_device_rule(carimbo::signing::DeviceRule::RelaxedForDemo);
    let p = payload("p003");
    let may = t("2026-05-10T09:00:00Z");
    let jws = person("p003").sign(&bytes(&p), may).unwrap().to_json();
    let at = |time| VerifyOptions { trusted_time: Some(time), now: now(), required_level: None };
    let r = verifier.verify(jws.as_bytes(), &bytes(&p), &at(may));
    assert_eq!(r.achieved_level, Some(SignatureLevel::Qualified), "{r:?}");
    let jws = signed_by("p003", &p);
    let r = verifier.verify(&jws, &bytes(&p), &at(now()));
    assert_eq!(r.achieved_level, Some(SignatureLevel::Advanced));
    assert!(r.notes.iter().any(|n| n.contains("was not accredited")), "{:?}", r.notes);
}

#[test]
fn report_names_signer_and_chain_and_speaks_three_languages() {
    let p = payload("p015");
    let r = verifier().verify(&signed_by("p015", &p), &bytes(&p), &opts());
    assert!(r.passed());
    let signer = r.signer.as_ref().unwrap();
    assert!(signer.common_name.as_deref().unwrap().contains("LAO SIO FAN"));
    assert_eq!(r.chain.len(), 3, "leaf, issuing CA, root");
    assert!(r.chain[2].trust_anchor);
    assert!(!r.message.zh.is_empty() && !r.message.pt.is_empty() && !r.message.en.is_empty());
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["indication"], "TOTAL_PASSED");
    assert_eq!(json["achieved_level"], "qualified");
}

#[test]
fn second_verification_uses_the_cached_chain_and_gives_the_same_report() {
    let v = verifier();
    let p = payload("p003");
    let jws = signed_by("p003", &p);
    let first = v.verify(&jws, &bytes(&p), &opts());
    let second = v.verify(&jws, &bytes(&p), &opts());
    assert_eq!(first, second);
}

#[test]
fn signing_payload_is_rfc8785_canonical_json() {
    let p = payload("p003");
    let text = String::from_utf8(bytes(&p)).unwrap();
    assert!(text.starts_with(r#"{"action":"approve","case":"case-2026-000123","data_hash":"sha256:"#), "{text}");
    assert!(text.ends_with(r#""signer":"p003","step":"supervisor-approval","time":"2026-11-23T10:00:00Z"}"#), "{text}");
    // Data hashes do not depend on key order or spacing.
    let a = carimbo::signing::data_hash(&json!({"b": 1, "a": [1.0, "x"]})).unwrap();
    let b = carimbo::signing::data_hash(&serde_json::from_str(r#"{ "a" : [1, "x"], "b" : 1 }"#).unwrap()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn older_jades_sigt_header_is_accepted_when_verifying() {
    let p = payload("p003");
    let header = json!({
        "alg": "ES256",
        "sigT": "2026-11-23T09:59:00Z",
        "crit": ["sigT"],
        "x5c": x5c_of("people/p003.pem"),
        "x5t#S256": x5t_of("people/p003.pem"),
    });
    let jws = raw_jws("people/p003.key.pem", &header, &bytes(&p));
    let r = verifier().verify(&jws, &bytes(&p), &claimed_only());
    assert!(r.passed(), "{r:?}");
    assert_eq!(r.claimed_signing_time, Some(t("2026-11-23T09:59:00Z")));
    assert_eq!(r.time_source, Some(TimeSource::Claimed));
}

#[test]
fn x5t_o_and_sigx5ts_references_are_accepted() {
    use base64::Engine;
    let p = payload("p003");
    let certs = carimbo::cli::pki_files::load_pem_certificates(&pki("people/p003.pem")).unwrap();
    let s512 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA512, certs[0].as_ref()));
    for reference in [json!({"x5t#o": {"digAlg": "S512", "digVal": s512}}), json!({"sigX5ts": [{"digAlg": "S512", "digVal": s512}]})] {
        let mut header = json!({"alg": "ES256", "iat": now().timestamp(), "x5c": x5c_of("people/p003.pem")});
        for (k, v) in reference.as_object().unwrap() {
            header[k] = v.clone();
        }
        let jws = raw_jws("people/p003.key.pem", &header, &bytes(&p));
        let r = verifier().verify(&jws, &bytes(&p), &opts());
        assert!(r.passed(), "{reference}: {r:?}");
    }
}

#[test]
fn demo_pki_regenerates_into_a_fresh_folder_and_verifies() {
    let dir = std::env::temp_dir().join(format!("carimbo-demo-pki-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut people = carimbo::cli::pki_demo::read_people(&pki("people.json")).unwrap();
    people.truncate(3);
    let summary = carimbo::cli::pki_demo::write_demo(&people, &dir.join("pki"), &dir.join("trust")).unwrap();
    assert_eq!(summary.people, 3);
    let v = carimbo::cli::pki_files::load_verifier(&dir.join("trust"), &dir.join("pki/crl"), None).unwrap();
    let id = &people[0].id;
    let signer = Signer::from_pem(
        &std::fs::read(dir.join(format!("pki/people/{id}.key.pem"))).unwrap(),
        &std::fs::read(dir.join(format!("pki/people/{id}.pem"))).unwrap(),
    )
    .unwrap();
    let p = payload(id);
    let jws = signer.sign(&bytes(&p), now()).unwrap().to_json();
    assert!(v.verify(jws.as_bytes(), &bytes(&p), &opts()).passed());
    std::fs::remove_dir_all(&dir).unwrap();
}
