//! Evidence bundles end to end: real cases on a sled store with real signatures, exported,
//! verified offline, and then broken in every way we can think of — one changed byte at a
//! time over a sample of positions, and the specific tamperings an auditor worries about.

use crate::evidence_case;

use base64::Engine;
use carimbo::evidence::locate::pointer_at;
use carimbo::evidence::{VerificationReport, VerifyConfig, verify_with};

/// Verifies at the present time (the verifier itself reads no clock).
fn verify(b: &[u8]) -> VerificationReport {
    carimbo::evidence::verify(b, chrono::Utc::now())
}
use evidence_case::{Harness, long_case, oath_case};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use std::time::Instant;

struct Bundles {
    long: Vec<u8>,
    oath: Vec<u8>,
}

/// Both cases are built once per test run (signing and the store take a few seconds).
fn bundles() -> &'static Bundles {
    static B: OnceLock<Bundles> = OnceLock::new();
    B.get_or_init(|| {
        let h = Harness::new();
        let long = long_case(&h);
        let oath = oath_case(&h);
        Bundles { long: h.export(&long, "p022").to_bytes(), oath: h.export(&oath, "p022").to_bytes() }
    })
}

fn value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(v).unwrap()
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// What an attacker who knows the format does after editing events: recompute every hash.
fn rechain(v: &mut Value) {
    let mut prev = carimbo::store::GENESIS_HASH.to_string();
    let events = v["events"].as_array_mut().unwrap();
    for (i, e) in events.iter_mut().enumerate() {
        e["seq"] = Value::from(i as u64 + 1);
        e["prev_hash"] = Value::from(prev.clone());
        let chained =
            serde_json::json!({"case_id": e["case_id"], "seq": e["seq"], "recorded_at": e["recorded_at"], "prev_hash": e["prev_hash"], "body": e["body"]});
        let h = sha(&bytes(&chained));
        e["hash"] = Value::from(h.clone());
        prev = h;
    }
    let n = events.len();
    v["head"]["version"] = Value::from(n as u64);
    v["head"]["last_hash"] = Value::from(prev);
}

fn failed(report: &VerificationReport) -> &carimbo::evidence::Finding {
    assert!(!report.passed, "{}", report.to_text());
    report.first_failure.as_ref().expect("a failed report names its first failure")
}

fn event_index(v: &Value, pred: impl Fn(&Value) -> bool) -> usize {
    v["events"].as_array().unwrap().iter().position(|e| pred(&e["body"])).unwrap()
}

#[test]
fn an_exported_case_verifies_offline() {
    let b = &bundles().long;
    // The file is RFC 8785 canonical JSON: no byte of it is insignificant.
    assert_eq!(&bytes(&value(b)), b);
    let report = verify(b);
    assert!(report.passed, "{}", report.to_text());
    assert_eq!(report.events_checked, 29);
    assert_eq!(report.signatures.len(), 13);
    assert_eq!(report.status.as_deref(), Some("completed"));
    assert_eq!(report.route.len(), 29);
    let sup = report.signatures.iter().find(|s| s.step == "supervisor").unwrap();
    assert_eq!((sup.required.as_str(), sup.achieved.as_str()), ("advanced", "qualified"), "p003 holds a qualified certificate");
    let hr = report.signatures.iter().find(|s| s.step == "hr-records").unwrap();
    assert_eq!((hr.required.as_str(), hr.achieved.as_str()), ("simple", "simple"), "the HR record is sealed by the service");
    let submit = &report.signatures[0];
    assert_eq!((submit.event.as_str(), submit.achieved.as_str()), ("submitted", "advanced"));
    assert_eq!(report.signatures.iter().filter(|s| s.event == "resubmitted").count(), 3);
    let text = report.to_text();
    assert!(text.contains("RESULT: PASSED"), "{text}");
    assert!(text.contains("NOT pinned"), "{text}");
    println!("{text}");
}

#[test]
fn a_route_demanding_qualified_signatures_verifies() {
    let report = verify(&bundles().oath);
    assert!(report.passed, "{}", report.to_text());
    let levels: Vec<(&str, &str, &str)> = report.signatures.iter().map(|s| (s.step.as_str(), s.required.as_str(), s.achieved.as_str())).collect();
    assert_eq!(levels, [("submit", "qualified", "qualified"), ("authority", "qualified", "qualified"), ("hr-records", "simple", "simple")]);
}

#[test]
fn pinned_certificates_are_checked() {
    let b = &bundles().long;
    let report = verify(b);
    // Only the trust anchors need pins: the operator who signs the list chains to one, and the
    // service seal is a member the operator's entries name.
    let anchors: Vec<String> = report.trust.iter().filter(|t| t.role.starts_with("trust anchor")).map(|t| t.sha256.clone()).collect();
    assert_eq!(anchors.len(), 1, "{:?}", report.trust);
    assert!(
        report.trust.iter().any(|t| t.role.starts_with("service seal")) && report.trust.iter().any(|t| t.role.starts_with("trust-list operator")),
        "{:?}",
        report.trust
    );
    let pinned = verify_with(b, &VerifyConfig { pins: anchors.clone(), now: chrono::Utc::now(), cache: None, device_rule: None });
    assert!(pinned.passed && pinned.pinned, "{}", pinned.to_text());
    let wrong = verify_with(b, &VerifyConfig { pins: vec!["00".repeat(32)], now: chrono::Utc::now(), cache: None, device_rule: None });
    let f = failed(&wrong);
    assert_eq!((f.check, f.pointer.as_str()), ("pin", "/pki/trust_list"));
}

/// Changes one byte at every 97th position (at most 1,200 positions) and checks that the
/// verification fails, and that it names the place: either a parse error at a byte offset, or a
/// JSON pointer that contains the changed byte.
#[test]
fn any_changed_byte_is_detected_and_its_place_named() {
    let original = &bundles().long;
    let stride = 97.max(original.len() / 1200 + 1);
    let masks = [0x01u8, 0x02, 0x04, 0x20, 0x40, 0x10];
    let (mut tried, mut parse, mut named, mut misplaced) = (0usize, 0usize, 0usize, Vec::new());
    let mut checks = std::collections::BTreeMap::<&str, usize>::new();
    let start = Instant::now();
    for (n, i) in (0..original.len()).step_by(stride).enumerate() {
        let mut b = original.clone();
        b[i] ^= masks[n % masks.len()];
        tried += 1;
        let report = verify(&b);
        assert!(!report.passed, "byte {i} changed from {:?} to {:?} was not detected", original[i] as char, b[i] as char);
        let f = report.first_failure.as_ref().unwrap();
        *checks.entry(f.check).or_default() += 1;
        if f.check == "parse" {
            assert!(f.offset.is_some());
            parse += 1;
            continue;
        }
        let truth = pointer_at(original, i);
        if truth == f.pointer || truth.starts_with(&format!("{}/", f.pointer)) && !f.pointer.is_empty() {
            named += 1;
        } else {
            misplaced.push(format!("byte {i} ({truth}): reported {} — {}", f.pointer, f.message));
        }
    }
    println!(
        "byte flips: {} bytes, every {stride}th: {tried} positions tried, {tried} detected ({parse} as parse errors, {named} named at the changed value), {} misplaced; by check: {checks:?}; {:.1} s",
        original.len(),
        misplaced.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(misplaced.is_empty(), "{}", misplaced.join("\n"));
    assert!(tried >= 500, "the sample covers the bundle");
}

#[test]
fn an_edited_form_field_in_an_event_is_named() {
    let mut v = value(&bundles().long);
    v["events"][0]["body"]["data"]["reason"] = Value::from("a fortnight in the Algarve");
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.seq, f.pointer.as_str()), ("chain", Some(1), "/events/0/body/data"), "{}", f.message);
    assert!(f.message.contains("HASH_FAILURE"), "{}", f.message);

    // The same edit with every hash recomputed: the submitter's signature still gives it away.
    rechain(&mut v);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.seq, f.pointer.as_str()), ("signature", Some(1), "/events/0/body/data"), "{}", f.message);

    // A field of a later version (the second resubmission).
    let mut v = value(&bundles().long);
    let k = event_index(&v, |b| b["type"] == "resubmitted" && b["data"]["reason"].as_str().unwrap().ends_with("booked"));
    v["events"][k]["body"]["data"]["end_date"] = Value::from("2099-01-01");
    rechain(&mut v);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.seq, f.pointer.clone()), (Some(k as u64 + 1), format!("/events/{k}/body/data")), "{}", f.message);
}

#[test]
fn a_swapped_signature_is_named() {
    let v0 = value(&bundles().long);
    // Two approvals by the same supervisor on the same step, each signature moved to the other act.
    let acts: Vec<usize> = v0["events"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, e)| e["body"]["type"] == "acted" && e["body"]["actor"] == "p003" && e["body"]["action"] == "approve")
        .map(|(i, _)| i)
        .collect();
    let (a, b) = (acts[0], acts[1]);
    let mut v = v0.clone();
    let sa = v["events"][a]["body"]["signature"].clone();
    v["events"][a]["body"]["signature"] = v["events"][b]["body"]["signature"].clone();
    v["events"][b]["body"]["signature"] = sa;
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.seq, f.pointer.clone()), (Some(a as u64 + 1), format!("/events/{a}/body/signature")), "{}", f.message);
    rechain(&mut v);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.seq, f.pointer.clone()), ("signature", Some(a as u64 + 1), format!("/events/{a}/body/signature")), "{}", f.message);
    assert!(f.message.contains("belongs to another act"), "{}", f.message);

    // A signature from the other case (same service seal, another HR officer's act).
    let oath = value(&bundles().oath);
    let hr_oath = event_index(&oath, |b| b["type"] == "acted" && b["step"] == "hr-records");
    let mut v = v0.clone();
    let hr = event_index(&v, |b| b["type"] == "acted" && b["step"] == "hr-records" && b["action"] == "sign");
    v["events"][hr]["body"]["signature"] = oath["events"][hr_oath]["body"]["signature"].clone();
    v["events"][hr]["body"]["signature"]["signer"] = Value::from("p019");
    rechain(&mut v);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.seq, f.pointer.clone()), (Some(hr as u64 + 1), format!("/events/{hr}/body/signature")), "{}", f.message);
    assert!(f.message.contains("made for case"), "{}", f.message);
}

#[test]
fn a_removed_event_is_named() {
    let v0 = value(&bundles().long);
    // In the middle: the next event no longer follows on.
    let mut v = v0.clone();
    v["events"].as_array_mut().unwrap().remove(10);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.pointer.as_str()), ("chain", "/events/10/seq"), "{}", f.message);
    assert!(f.message.contains("missing"), "{}", f.message);
    // In the middle, re-chained: the next signature was made after the removed event.
    rechain(&mut v);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert!(f.seq.is_some_and(|s| s >= 10), "{f:?}");
    // At the end: the head still counts it.
    let mut v = v0.clone();
    v["events"].as_array_mut().unwrap().pop();
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.pointer.as_str()), ("head", "/head/version"), "{}", f.message);
    // At the end, with the head made to match: the route is unfinished and the seal disagrees.
    rechain(&mut v);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.pointer.as_str()), ("head", "/head"), "{}", f.message);
    assert!(f.message.contains("completed"), "{}", f.message);
}

#[test]
fn a_changed_definition_byte_is_named() {
    let v0 = value(&bundles().long);
    let mut v = v0.clone();
    let text = v["definitions"]["workflow"]["text"].as_str().unwrap().replacen("Head of department decides", "Head of department decided", 1);
    v["definitions"]["workflow"]["text"] = Value::from(text.clone());
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!(
        (f.check, f.pointer.as_str(), f.file.as_deref()),
        ("file", "/definitions/workflow/text", Some("workflows/absence-and-annual-leave.json")),
        "{}",
        f.message
    );
    // With its hash recomputed too, it is not the workflow the case is pinned to.
    v["definitions"]["workflow"]["sha256"] = Value::from(sha(text.as_bytes()));
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.pointer.as_str()), ("definition", "/definitions/workflow"), "{}", f.message);
    // A form changed and re-hashed: not the form the submitter signed.
    let mut v = v0.clone();
    let text = v["definitions"]["form"]["text"].as_str().unwrap().replacen("\"maxLength\": 2000", "\"maxLength\": 2001", 1);
    v["definitions"]["form"]["sha256"] = Value::from(sha(text.as_bytes()));
    v["definitions"]["form"]["text"] = Value::from(text);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.pointer.as_str()), ("definition", "/definitions/form"), "{}", f.message);
    // Reference data changed and re-hashed: not the version the case was opened with (the
    // submission pins each reference file by its hash, like the definitions).
    let mut v = v0.clone();
    let text = format!("{} ", v["definitions"]["reference"][0]["text"].as_str().unwrap());
    v["definitions"]["reference"][0]["sha256"] = Value::from(sha(text.as_bytes()));
    v["definitions"]["reference"][0]["text"] = Value::from(text);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.code, f.pointer.as_str()), ("definition", "CARIMBO-E0644", "/definitions/reference/0"), "{}", f.message);
}

#[test]
fn a_replaced_crl_is_named() {
    let v0 = value(&bundles().long);
    let crls = v0["pki"]["crls"].as_array().unwrap();
    let q = crls.iter().position(|c| c["name"] == "qualified-ca.crl").unwrap();
    let a = crls.iter().position(|c| c["name"] == "advanced-ca.crl").unwrap();
    let mut v = v0.clone();
    v["pki"]["crls"][q]["base64"] = v0["pki"]["crls"][a]["base64"].clone();
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.pointer.clone(), f.file.as_deref()), ("file", format!("/pki/crls/{q}"), Some("qualified-ca.crl")), "{}", f.message);
    // Re-hashed: the qualified CA's certificates have no CRL, so the first signature by one of
    // them (the supervisor's) cannot be validated.
    v["pki"]["crls"][q]["sha256"] = v0["pki"]["crls"][a]["sha256"].clone();
    let f = verify(&bytes(&v)).first_failure.unwrap();
    let first_qualified = event_index(&v0, |b| b["type"] == "acted" && b["actor"] == "p003");
    assert_eq!((f.check, f.pointer.clone()), ("signature", format!("/events/{first_qualified}/body/signature/jws")), "{}", f.message);
    assert_eq!(f.report.as_ref().and_then(|r| r.sub_indication).map(|s| s.as_str()), Some("TRY_LATER"));
    // A CRL that is not a CRL at all.
    let mut v = v0.clone();
    let junk = b"not a CRL";
    v["pki"]["crls"][q]["base64"] = Value::from(base64::engine::general_purpose::STANDARD.encode(junk));
    v["pki"]["crls"][q]["sha256"] = Value::from(sha(junk));
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.pointer.clone()), ("pki", format!("/pki/crls/{q}/base64")), "{}", f.message);
}

#[test]
fn other_tampering_is_named() {
    let v0 = value(&bundles().long);
    // A level claimed higher than the signature achieves.
    let mut v = v0.clone();
    let sub = event_index(&v, |b| b["type"] == "submitted");
    v["events"][sub]["body"]["signature"]["level"] = Value::from("qualified");
    rechain(&mut v);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.pointer.as_str()), ("level", "/events/0/body/signature/level"), "{}", f.message);
    // An act attributed to someone else than the signer.
    let mut v = v0.clone();
    let k = event_index(&v, |b| b["type"] == "acted" && b["actor"] == "p002");
    v["events"][k]["body"]["actor"] = Value::from("p001");
    rechain(&mut v);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!(f.pointer, format!("/events/{k}/body/actor"), "{}", f.message);
    // A route the workflow does not allow: HR records before the head decided (the head's
    // approval and its step_done removed, the signatures after it then no longer fit either).
    let mut v = v0.clone();
    let done = event_index(&v, |b| b["type"] == "step_done" && b["step"] == "supervisor");
    v["events"][done + 1]["body"]["step"] = Value::from("hr-records");
    rechain(&mut v);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.pointer.clone()), ("route", format!("/events/{}/body/step", done + 1)), "{}", f.message);
    // The bundle's exporter changed: only the seal covers it.
    let mut v = v0.clone();
    v["exported_by"] = Value::from("p001");
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.pointer.as_str()), ("seal", "/exported_by"), "{}", f.message);
    // Not JSON at all, or cut short.
    let b = &bundles().long;
    let f = verify(&b[..b.len() / 2]).first_failure.unwrap();
    assert_eq!(f.check, "parse");
    assert!(f.offset.is_some());
    let f = verify(b"{\"format\": \"carimbo-evidence-bundle\"}").first_failure.unwrap();
    assert_eq!(f.check, "parse");
    // Pretty-printed: the same bundle, still verifies (every check is on values, not layout).
    let pretty = serde_json::to_vec_pretty(&v0).unwrap();
    assert!(verify(&pretty).passed);
}

#[test]
fn open_rejected_and_withdrawn_cases_verify_too() {
    let h = Harness::new();
    let open = h.submit("p005", "absence-and-annual-leave", &evidence_case::leave("a wedding"), "evidence-open");
    h.act(&open, "p003", "supervisor", carimbo::workflow::Action::Approve);
    let rejected = h.submit("p005", "absence-and-annual-leave", &evidence_case::leave("a long trip"), "evidence-rejected");
    h.act(&rejected, "p003", "supervisor", carimbo::workflow::Action::Reject);
    let withdrawn = h.submit("p005", "absence-and-annual-leave", &evidence_case::leave("changed my mind"), "evidence-withdrawn");
    h.act(&withdrawn, "p003", "supervisor", carimbo::workflow::Action::Return);
    h.service.withdraw(&withdrawn, "p005", Some("no longer needed".into()), chrono::Utc::now(), None).unwrap();
    for (id, status) in [(&open, "open"), (&rejected, "rejected"), (&withdrawn, "withdrawn")] {
        let report = verify(&h.export(id, "p003").to_bytes());
        assert!(report.passed, "{status}: {}", report.to_text());
        assert_eq!(report.status.as_deref(), Some(status));
    }
    // A rejected case whose rejection record was dropped (and the chain recomputed): the
    // rejecting act is owed its consequence.
    let mut v = value(&h.export(&rejected, "p003").to_bytes());
    v["events"].as_array_mut().unwrap().pop();
    rechain(&mut v);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.pointer.as_str()), ("head", "/head"), "{}", f.message);
}

#[test]
fn an_event_body_repeating_a_member_is_refused_before_anything_is_read() {
    // `"end_date":"2099-01-01"` put before the recorded `end_date`: serde_json (keeping the last)
    // reads the signed bundle unchanged, every hash and the seal still fit, while a reader
    // keeping the first copy sees another leave.
    let original = &bundles().long;
    let text = std::str::from_utf8(original).unwrap();
    let at = text.find(r#""end_date":""#).expect("an event body holds an end date");
    let tampered = format!("{}\"end_date\":\"2099-01-01\",{}", &text[..at], &text[at..]);
    assert_eq!(value(tampered.as_bytes()), value(original), "last-wins reads the bundle as it was signed");
    let report = verify(tampered.as_bytes());
    let f = failed(&report);
    assert_eq!((f.code, f.check), ("CARIMBO-E0120", "parse"), "{}", f.message);
    assert!(f.pointer.starts_with("/events/") && f.pointer.contains("/body/") && f.pointer.ends_with("/end_date"), "{}", f.pointer);
    assert!(f.message.contains("\"end_date\" appears twice"), "{}", f.message);
    assert!(verify(original).passed);
}

#[test]
fn a_record_putting_the_subject_on_the_step_that_decides_about_them_is_named() {
    let h = evidence_case::Harness::new();
    let def = evidence_case::repo().join("forms/reporting-for-duty.json");
    let mut slip = value(&std::fs::read(def).unwrap())["examples"]["valid"][0]["data"].clone();
    slip["staff_id"] = Value::from("p019");
    let id = h.submit("p018", "reporting-for-duty", &slip, "rfd-evidence");
    h.act(&id, "p020", "receiving-hr", carimbo::workflow::Action::Sign);
    let v0 = value(&h.export(&id, "p022").to_bytes());
    assert!(verify(&bytes(&v0)).passed, "the genuine record verifies");
    // Forged: the subject p019 added to the HR seat, every hash recomputed.
    let mut v = v0.clone();
    let k = event_index(&v, |b| b["type"] == "step_opened" && b["step"] == "receiving-hr");
    v["events"][k]["body"]["seats"][0]["people"] = serde_json::json!(["p019", "p020"]);
    rechain(&mut v);
    let f = verify(&bytes(&v)).first_failure.unwrap();
    assert_eq!((f.check, f.pointer.clone()), ("route", format!("/events/{k}/body/seats/0")), "{}", f.message);
    assert!(f.message.contains("p019, the subject of the case, sits on seat"), "{}", f.message);
}
