//! Evidence bundles judged against the trust list's history, the seal's identity, and the
//! record's own consistency: members and times. Real cases with real signatures; every tampering
//! is re-chained and re-sealed where that is what an attacker holding a key would do.

use crate::evidence_case;

use carimbo::evidence::{Finding, VerificationReport, member_digests};
use carimbo::pki::history::{Change, MemberStatus, TrustHistory, sign_entry};
use carimbo::signing::Signer;
use carimbo::workflow::Action;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use evidence_case::{Harness, seeds};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn verify(b: &[u8]) -> VerificationReport {
    carimbo::evidence::verify(b, now())
}

fn value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(v).unwrap()
}

fn failed(report: &VerificationReport) -> &Finding {
    assert!(!report.passed, "{}", report.to_text());
    report.first_failure.as_ref().expect("a failed report names its first failure")
}

fn signer(dir: &str, name: &str) -> Signer {
    let d = seeds().join("pki").join(dir);
    Signer::from_pem(&std::fs::read(d.join(format!("{name}.key.pem"))).unwrap(), &std::fs::read(d.join(format!("{name}.pem"))).unwrap()).unwrap()
}

fn demo_history() -> TrustHistory {
    TrustHistory::from_slice(&std::fs::read(seeds().join("trust/trust-list.json")).unwrap(), now()).unwrap()
}

/// The oath of office (qualified signatures) submitted and signed now, under its own key.
fn oath(h: &Harness, key: &str) -> String {
    let def: Value = serde_json::from_slice(&std::fs::read(evidence_case::repo().join("forms/oath-of-office.json")).unwrap()).unwrap();
    let data = def["examples"]["valid"][0]["data"].clone();
    let id = h.submit("p031", "oath-of-office", &data, key);
    h.act(&id, "p001", "authority", Action::Sign);
    h.act(&id, "p018", "hr-records", Action::Sign);
    id
}

struct Withdrawal {
    /// All acts before the withdrawal.
    before: Vec<u8>,
    /// All acts after it.
    after: Vec<u8>,
    /// A plain bundle under the demo list.
    plain: Vec<u8>,
}

/// One case signed before the qualified CA's accreditation is withdrawn, one after; both
/// exported with the history that records the withdrawal.
fn withdrawal() -> &'static Withdrawal {
    static W: OnceLock<Withdrawal> = OnceLock::new();
    W.get_or_init(|| {
        let mut h = Harness::new();
        let first = oath(&h, "trust-before");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let withdrawn_at = now().trunc_subsecs(0);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let second = oath(&h, "trust-after");
        let plain = h.export(&first, "p022").to_bytes();
        let history = demo_history();
        let entry = sign_entry(
            Some(&history),
            &signer("operator", "operator"),
            withdrawn_at,
            Change::Status { member: "qualified-ca".into(), status: MemberStatus::Withdrawn, level: None },
        )
        .unwrap();
        let history = history.appended(entry, now()).unwrap();
        h.pki = h.pki.clone().with_trust_list(history.document().to_pretty());
        Withdrawal { before: h.export(&first, "p022").to_bytes(), after: h.export(&second, "p022").to_bytes(), plain }
    })
}

#[test]
fn an_act_signed_before_the_accreditation_was_withdrawn_stays_qualified() {
    let report = verify(&withdrawal().before);
    assert!(report.passed, "{}", report.to_text());
    let levels: Vec<&str> = report.signatures.iter().map(|s| s.achieved.as_str()).collect();
    assert_eq!(levels, ["qualified", "qualified", "simple"], "{}", report.to_text());
}

#[test]
fn an_act_signed_after_the_accreditation_was_withdrawn_is_not_qualified() {
    let report = verify(&withdrawal().after);
    let f = failed(&report);
    // The record says qualified (the server did not know); judged against the history at the
    // act's time it is only advanced.
    assert_eq!((f.check, f.code, f.seq), ("level", "CARIMBO-E0911", Some(1)), "{}", f.message);
    assert!(f.message.contains("verifies as advanced"), "{}", f.message);
}

/// Replaces the seal with one made by `by` over the bundle as it now is, at `at`.
fn reseal(v: &mut Value, by: &Signer, at: DateTime<Utc>) {
    v["exported_at"] = Value::from(carimbo::pki::history::utc_text(at));
    v["seal"]["payload"]["exported_at"] = v["exported_at"].clone();
    v["seal"]["payload"]["digests"] = serde_json::to_value(member_digests(v)).unwrap();
    let payload = bytes(&v["seal"]["payload"]);
    let jws = by.sign(&payload, at).unwrap();
    v["seal"]["protected"] = Value::from(jws.protected);
    v["seal"]["signature"] = Value::from(jws.signature);
}

/// Re-seals with the real service key: what the service (or whoever holds its key) can do.
fn reseal_as_service(v: &mut Value, at: DateTime<Utc>) {
    reseal(v, &signer("service", "service"), at);
}

fn staff_chain_pem(id: &str) -> String {
    String::from_utf8(std::fs::read(seeds().join(format!("pki/people/{id}.pem"))).unwrap()).unwrap()
}

#[test]
fn a_staff_certificate_from_the_same_ca_cannot_reseal_a_bundle_as_the_service() {
    // p005's certificate comes from the Advanced CA, as the service seal's does.
    let mut v = value(&withdrawal().plain);
    let pem = staff_chain_pem("p005");
    v["pki"]["service_certificate"]["text"] = Value::from(pem.clone());
    v["pki"]["service_certificate"]["sha256"] = Value::from(hex::encode(Sha256::digest(pem.as_bytes())));
    reseal(&mut v, &signer("people", "p005"), now().trunc_subsecs(0));
    let f = failed(&verify(&bytes(&v))).clone();
    assert_eq!((f.check, f.code, f.pointer.as_str()), ("seal", "CARIMBO-E0641", "/pki/service_certificate"), "{}", f.message);
    // Adding their certificate to the list as the service seal takes the operator's key.
    let history = demo_history();
    let cert = carimbo::pki::cert::parse_pem_certificates(pem.as_bytes(), "p005").unwrap().remove(0);
    let change = Change::AddMember {
        member: "my-seal".into(),
        service_type: carimbo::pki::history::ServiceType::ServiceSeal,
        name: carimbo::pki::demo::service_seal_name(),
        certificate: carimbo::pki::history::certificate_text(&cert),
    };
    let forged = sign_entry(Some(&history), &signer("people", "p005"), now().trunc_subsecs(0), change).unwrap();
    let mut doc = history.document();
    doc.entries.push(forged);
    let text = doc.to_pretty();
    v["pki"]["trust_list"]["text"] = Value::from(text.clone());
    v["pki"]["trust_list"]["sha256"] = Value::from(hex::encode(Sha256::digest(text.as_bytes())));
    reseal(&mut v, &signer("people", "p005"), now().trunc_subsecs(0));
    let f = failed(&verify(&bytes(&v))).clone();
    assert_eq!((f.check, f.code, f.pointer.as_str()), ("pki", "CARIMBO-E0640", "/pki/trust_list/text"), "{}", f.message);
    assert!(f.message.contains("CARIMBO-E1232") && f.message.contains("not signed by the trust-list operator"), "{}", f.message);
}

#[test]
fn the_service_seal_is_named_in_the_report_and_the_bundle_needs_only_the_anchor_pinned() {
    let report = verify(&withdrawal().plain);
    assert!(report.passed, "{}", report.to_text());
    let roles: Vec<&str> = report.trust.iter().map(|t| t.role.as_str()).collect();
    assert!(roles.contains(&"service seal service-seal") && roles.iter().any(|r| r.starts_with("trust-list operator")), "{roles:?}");
}

/// What an attacker who knows the format does after editing events: recompute every hash.
fn rechain(v: &mut Value) {
    let mut prev = carimbo::store::GENESIS_HASH.to_string();
    let events = v["events"].as_array_mut().unwrap();
    for e in events.iter_mut() {
        e["prev_hash"] = Value::from(prev.clone());
        let mut body = e["body"].clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("disclosures");
        }
        let chained = serde_json::json!({"case_id": e["case_id"], "seq": e["seq"], "recorded_at": e["recorded_at"], "prev_hash": e["prev_hash"], "body": body});
        let h = hex::encode(Sha256::digest(bytes(&chained)));
        e["hash"] = Value::from(h.clone());
        prev = h;
    }
    v["head"]["last_hash"] = Value::from(prev.clone());
    v["seal"]["payload"]["last_event_hash"] = Value::from(format!("sha256:{prev}"));
}

/// Edits the plain bundle, re-chains it and re-seals it with the service's own key.
fn rewritten(edit: impl FnOnce(&mut Value)) -> Finding {
    let mut v = value(&withdrawal().plain);
    edit(&mut v);
    rechain(&mut v);
    let at = carimbo::pki::history::parse_utc_z(v["exported_at"].as_str().unwrap()).unwrap();
    reseal_as_service(&mut v, at);
    let report = verify(&bytes(&v));
    failed(&report).clone()
}

#[test]
fn an_unknown_member_in_an_event_body_is_refused() {
    let f = rewritten(|v| v["events"][2]["body"]["note"] = Value::from("approved by phone"));
    assert_eq!((f.check, f.code, f.pointer.as_str()), ("event", "CARIMBO-E0642", "/events/2/body"), "{}", f.message);
    assert!(f.message.contains("unknown member `note`"), "{}", f.message);
}

#[test]
fn an_unknown_member_in_a_signature_is_refused() {
    let f = rewritten(|v| v["events"][0]["body"]["signature"]["jws"]["unprotected"] = serde_json::json!({"kid": "x"}));
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E0642", "/events/0/body/signature/jws"), "{}", f.message);
    // The unprotected header may carry the B-T time-stamp (`etsiU`) and nothing else.
    let f = rewritten(|v| v["events"][0]["body"]["signature"]["jws"]["header"] = serde_json::json!({"kid": "x"}));
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E0642", "/events/0/body/signature/jws/header"), "{}", f.message);
    assert!(f.message.contains("unknown member `kid` in the unprotected header"), "{}", f.message);
    let f = rewritten(|v| v["events"][0]["body"]["signature"]["jws"]["payload"]["comment"] = Value::from("x"));
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E0642", "/events/0/body/signature/jws/payload"), "{}", f.message);
}

#[test]
fn recorded_at_must_be_utc_with_z() {
    let f = rewritten(|v| {
        let t = v["events"][1]["recorded_at"].as_str().unwrap().replace('Z', "+00:00");
        v["events"][1]["recorded_at"] = Value::from(t);
    });
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E0643", "/events/1/recorded_at"), "{}", f.message);
}

#[test]
fn an_event_time_moved_by_a_day_is_refused() {
    for days in [-1, 1] {
        let f = rewritten(|v| {
            let at = carimbo::pki::history::parse_utc_z(v["events"][2]["body"]["at"].as_str().unwrap()).unwrap() + Duration::days(days);
            v["events"][2]["body"]["at"] = Value::from(carimbo::pki::history::utc_text(at));
        });
        assert_eq!((f.check, f.code, f.pointer.as_str()), ("time", "CARIMBO-E0643", "/events/2"), "{days}: {}", f.message);
    }
}

#[test]
fn a_bundle_exported_before_its_last_event_or_sealed_at_another_time_is_refused() {
    // Re-sealed by the service with the export moved a year back.
    let mut v = value(&withdrawal().plain);
    let at = carimbo::pki::history::parse_utc_z(v["exported_at"].as_str().unwrap()).unwrap() - Duration::days(365);
    reseal_as_service(&mut v, at.trunc_subsecs(0));
    let f = failed(&verify(&bytes(&v))).clone();
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E0643", "/exported_at"), "{}", f.message);
    // Exported "in the future".
    let mut v = value(&withdrawal().plain);
    reseal_as_service(&mut v, (now() + Duration::days(30)).trunc_subsecs(0));
    let f = failed(&verify(&bytes(&v))).clone();
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E0643", "/exported_at"), "{}", f.message);
    // The seal's own time is not the export's.
    let mut v = value(&withdrawal().plain);
    let exported = carimbo::pki::history::parse_utc_z(v["exported_at"].as_str().unwrap()).unwrap();
    reseal_as_service(&mut v, exported.trunc_subsecs(0));
    let payload = bytes(&v["seal"]["payload"]);
    let jws = signer("service", "service").sign(&payload, exported + Duration::hours(2)).unwrap();
    v["seal"]["protected"] = Value::from(jws.protected);
    v["seal"]["signature"] = Value::from(jws.signature);
    let f = failed(&verify(&bytes(&v))).clone();
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E0643", "/seal/protected"), "{}", f.message);
}

#[test]
fn a_tampered_trust_list_entry_is_named() {
    let mut v = value(&withdrawal().plain);
    let text = v["pki"]["trust_list"]["text"].as_str().unwrap().replacen("\"level\": \"qualified\"", "\"level\": \"advanced\"", 1);
    v["pki"]["trust_list"]["sha256"] = Value::from(hex::encode(Sha256::digest(text.as_bytes())));
    v["pki"]["trust_list"]["text"] = Value::from(text);
    reseal_as_service(&mut v, now().trunc_subsecs(0));
    let f = failed(&verify(&bytes(&v))).clone();
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E0640", "/pki/trust_list/text"), "{}", f.message);
    assert!(f.message.contains("CARIMBO-E1233"), "{}", f.message);
}

#[test]
fn the_service_seal_must_be_in_service_at_the_export() {
    let h = demo_history();
    let entry = sign_entry(
        Some(&h),
        &signer("operator", "operator"),
        now().trunc_subsecs(0) - Duration::hours(1),
        Change::Status { member: "service-seal".into(), status: MemberStatus::Withdrawn, level: None },
    )
    .unwrap();
    let text = h.appended(entry, now()).unwrap().document().to_pretty();
    let mut v = value(&withdrawal().plain);
    v["pki"]["trust_list"]["sha256"] = Value::from(hex::encode(Sha256::digest(text.as_bytes())));
    v["pki"]["trust_list"]["text"] = Value::from(text);
    reseal_as_service(&mut v, now().trunc_subsecs(0));
    let f = failed(&verify(&bytes(&v))).clone();
    // Withdrawn an hour ago: neither the seal of the simple act since then nor the export's stands.
    assert_eq!(f.code, "CARIMBO-E0641", "{}", f.message);
}
