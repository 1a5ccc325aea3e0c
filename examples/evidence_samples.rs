//! `cargo run --example evidence_samples -- docs/evidence-samples`: writes sample evidence
//! bundles and tampered copies, with the result each must give, for an auditor who writes their
//! own verifier from `docs/evidence-bundle.md` (test vectors). Real cases on a temporary store,
//! signed with the demo keys; `tests/evidence_samples.rs` checks every sample against
//! `expected.json` with `carimbo verify` and with the Python verifier of `tests/interop`.
//!
//! The expected results are declared here, one per tampering, not read back from the verifier:
//! the generator refuses to write a set the verifier disagrees with.

#[path = "../tests/common/evidence_case.rs"]
mod evidence_case;

use carimbo::evidence::member_digests;
use carimbo::pki::history::{parse_utc_z, utc_text};
use carimbo::signing::Signer;
use carimbo::workflow::Action;
use chrono::{DateTime, Duration, Utc};
use evidence_case::{Harness, leave, oath_case, seeds};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn bytes(v: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(v).unwrap()
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn signer(dir: &str, name: &str) -> Signer {
    let d = seeds().join("pki").join(dir);
    Signer::from_pem(&std::fs::read(d.join(format!("{name}.key.pem"))).unwrap(), &std::fs::read(d.join(format!("{name}.pem"))).unwrap()).unwrap()
}

/// A new seal by `by` over the bundle as it now is, made at `at`.
fn reseal(v: &mut Value, by: &Signer, at: DateTime<Utc>) {
    v["exported_at"] = Value::from(utc_text(at));
    v["seal"]["payload"]["exported_at"] = v["exported_at"].clone();
    v["seal"]["payload"]["version"] = json!(v["events"].as_array().unwrap().len());
    v["seal"]["payload"]["last_event_hash"] = Value::from(format!("sha256:{}", v["head"]["last_hash"].as_str().unwrap()));
    v["seal"]["payload"]["digests"] = serde_json::to_value(member_digests(v)).unwrap();
    let jws = by.sign(&bytes(&v["seal"]["payload"]), at).unwrap();
    v["seal"]["protected"] = Value::from(jws.protected);
    v["seal"]["signature"] = Value::from(jws.signature);
}

fn exported(v: &Value) -> DateTime<Utc> {
    parse_utc_z(v["exported_at"].as_str().unwrap()).unwrap()
}

/// Every hash of the chain recomputed, as someone who knows the format would after an edit.
fn rechain(v: &mut Value) {
    let mut prev = carimbo::store::GENESIS_HASH.to_string();
    for e in v["events"].as_array_mut().unwrap() {
        e["prev_hash"] = Value::from(prev.clone());
        let mut body = e["body"].clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("disclosures");
        }
        let chained = json!({"case_id": e["case_id"], "seq": e["seq"], "recorded_at": e["recorded_at"], "prev_hash": e["prev_hash"], "body": body});
        prev = sha(&bytes(&chained));
        e["hash"] = Value::from(prev.clone());
    }
    v["head"]["version"] = json!(v["events"].as_array().unwrap().len());
    v["head"]["last_hash"] = Value::from(prev);
}

struct Sample {
    file: &'static str,
    what: &'static str,
    bundle: Value,
    /// `None`: the bundle verifies.
    expect: Option<(&'static str, &'static str)>,
}

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "docs/evidence-samples".into()));
    std::fs::create_dir_all(&out).unwrap();
    let h = Harness::new();
    let id = h.submit("p005", "absence-and-annual-leave", &leave("family matters"), "sample-leave");
    h.act(&id, "p003", "supervisor", Action::Return);
    h.resubmit(&id, "p005", &leave("family matters in Lisbon"));
    h.act(&id, "p003", "supervisor", Action::Approve);
    h.act(&id, "p002", "head", Action::Approve);
    h.act(&id, "p019", "hr-records", Action::Sign);
    let leave_bundle: Value = serde_json::to_value(h.export(&id, "p022")).unwrap();
    let oath_bundle: Value = serde_json::to_value(h.export(&oath_case(&h), "p022")).unwrap();
    let service = signer("service", "service");
    let mut samples = vec![
        Sample {
            file: "leave-returned-resubmitted-approved.json",
            what: "a leave request returned once, corrected and approved by supervisor, head and HR records (advanced signatures, a simple HR act sealed by the service)",
            bundle: leave_bundle.clone(),
            expect: None,
        },
        Sample {
            file: "oath-qualified.json",
            what: "an oath of office with qualified signatures by the new official and the appointing authority",
            bundle: oath_bundle.clone(),
            expect: None,
        },
    ];
    let mut tamper = |file, what, edit: &dyn Fn(&mut Value), expect| {
        let mut v = leave_bundle.clone();
        edit(&mut v);
        samples.push(Sample { file, what, bundle: v, expect: Some(expect) });
    };
    tamper(
        "tampered-edited-data.json",
        "the submitted reason edited, nothing recomputed",
        &|v| v["events"][0]["body"]["data"]["reason"] = json!("a fortnight in the Algarve"),
        ("CARIMBO-E0907", "/events/0/body/data"),
    );
    tamper(
        "tampered-event-time-moved.json",
        "an act's `at` moved a day earlier, the chain recomputed and the bundle re-sealed with the service key",
        &|v| {
            let k = v["events"].as_array().unwrap().iter().position(|e| e["body"]["type"] == "acted").unwrap();
            let at = parse_utc_z(v["events"][k]["body"]["at"].as_str().unwrap()).unwrap() - Duration::days(1);
            v["events"][k]["body"]["at"] = Value::from(utc_text(at));
            rechain(v);
            let t = exported(v);
            reseal(v, &service, t);
        },
        ("CARIMBO-E0643", "/events/2"),
    );
    tamper(
        "tampered-unknown-member.json",
        "a member the format does not list added to an act, re-chained and re-sealed with the service key",
        &|v| {
            v["events"][2]["body"]["note"] = json!("approved by phone");
            rechain(v);
            let t = exported(v);
            reseal(v, &service, t);
        },
        ("CARIMBO-E0642", "/events/2/body"),
    );
    tamper(
        "tampered-reference-changed.json",
        "a day added to the holiday calendar, its hash recomputed, re-sealed with the service key",
        &|v| {
            let refs = v["definitions"]["reference"].as_array().unwrap();
            let i = refs.iter().position(|r| r["name"].as_str().unwrap().contains("holidays")).unwrap();
            let text = v["definitions"]["reference"][i]["text"].as_str().unwrap().to_string() + " ";
            v["definitions"]["reference"][i]["sha256"] = Value::from(sha(text.as_bytes()));
            v["definitions"]["reference"][i]["text"] = Value::from(text);
            let t = exported(v);
            reseal(v, &service, t);
        },
        ("CARIMBO-E0644", "/definitions/reference/1"),
    );
    tamper(
        "tampered-staff-reseal.json",
        "the service certificate replaced by a staff member's own (p005, from the same CA) and the bundle re-sealed with their key",
        &|v| {
            let pem = String::from_utf8(std::fs::read(seeds().join("pki/people/p005.pem")).unwrap()).unwrap();
            v["pki"]["service_certificate"]["sha256"] = Value::from(sha(pem.as_bytes()));
            v["pki"]["service_certificate"]["text"] = Value::from(pem);
            let t = exported(v);
            reseal(v, &signer("people", "p005"), t);
        },
        ("CARIMBO-E0641", "/pki/service_certificate"),
    );
    tamper(
        "tampered-trust-entry-edited.json",
        "the qualified CA's accreditation level edited in the trust list's history, re-sealed with the service key",
        &|v| {
            let text = v["pki"]["trust_list"]["text"].as_str().unwrap().replacen("\"level\": \"qualified\"", "\"level\": \"advanced\"", 1);
            v["pki"]["trust_list"]["sha256"] = Value::from(sha(text.as_bytes()));
            v["pki"]["trust_list"]["text"] = Value::from(text);
            let t = exported(v);
            reseal(v, &service, t);
        },
        ("CARIMBO-E0640", "/pki/trust_list/text"),
    );
    tamper(
        "tampered-exported-a-year-early.json",
        "re-sealed with the service key as if exported a year before its last event",
        &|v| {
            let t = exported(v) - Duration::days(365);
            reseal(v, &service, chrono::SubsecRound::trunc_subsecs(t, 0));
        },
        ("CARIMBO-E0643", "/exported_at"),
    );
    // What a valid seal cannot exclude: the service re-issuing an earlier prefix of the case.
    let mut prefix = leave_bundle.clone();
    let k = prefix["events"].as_array().unwrap().iter().position(|e| e["body"]["type"] == "step_opened" && e["body"]["step"] == "head").unwrap();
    prefix["events"].as_array_mut().unwrap().truncate(k + 1);
    rechain(&mut prefix);
    prefix["head"]["status"] = json!("open");
    let t = exported(&prefix);
    reseal(&mut prefix, &service, t);
    samples.push(Sample { file: "prefix-reissued.json", what: "an earlier prefix of the case (up to the head's step opening) re-issued and sealed by the service: it verifies — see \"What the seal does not prove\" in docs/evidence-bundle.md", bundle: prefix, expect: None });

    // B-LTA: every act time-stamped (B-T), and the bundle's first archive time-stamp at export.
    let stamped = Harness::new().with_demo_tsa();
    let id = stamped.submit("p005", "absence-and-annual-leave", &leave("family matters"), "sample-lta");
    stamped.act(&id, "p003", "supervisor", Action::Approve);
    stamped.act(&id, "p002", "head", Action::Approve);
    stamped.act(&id, "p019", "hr-records", Action::Sign);
    let bundle = stamped.export(&id, "p022");
    let vd = carimbo::evidence::ltv::ValidationData::default();
    let token = stamped.stamp(&carimbo::evidence::ltv::next_stamp_input(&bundle, &vd), exported(&serde_json::to_value(&bundle).unwrap()));
    let lta: Value = serde_json::to_value(carimbo::evidence::ltv::with_archive_stamp(bundle, vd, &token)).unwrap();
    samples.push(Sample { file: "leave-b-lta.json", what: "a leave request whose every act carries a signature time-stamp (JAdES B-T, header.etsiU sigTst) and the bundle an archive time-stamp (B-LTA, archive_timestamps) by the demo TSA", bundle: lta.clone(), expect: None });
    let mut bad_token = lta.clone();
    let t = bad_token["archive_timestamps"][0]["token"].as_str().unwrap().to_string();
    let mut c: Vec<char> = t.chars().collect();
    let i = c.len() - 12;
    c[i] = if c[i] == 'A' { 'B' } else { 'A' };
    bad_token["archive_timestamps"][0]["token"] = Value::from(c.into_iter().collect::<String>());
    samples.push(Sample {
        file: "tampered-archive-token.json",
        what: "one character of the archive time-stamp token changed (inside the TSA's signature)",
        bundle: bad_token,
        expect: Some(("CARIMBO-E1251", "/archive_timestamps/0/token")),
    });
    let mut added = lta.clone();
    added["archive_timestamps"][0]["validation_data"]["crls"] = json!([lta["pki"]["crls"][0].clone()]);
    samples.push(Sample {
        file: "tampered-archive-validation-data.json",
        what: "a CRL added to the archive time-stamp's validation data after it was stamped",
        bundle: added,
        expect: Some(("CARIMBO-E1251", "/archive_timestamps/0")),
    });

    let now = Utc::now();
    let mut expected = Vec::new();
    for s in &samples {
        let b = bytes(&s.bundle);
        let report = carimbo::evidence::verify(&b, now);
        let got = report.first_failure.as_ref().map(|f| (f.code, f.pointer.as_str()));
        assert_eq!(got, s.expect, "{}: the verifier gives {}", s.file, report.to_text());
        std::fs::write(out.join(s.file), &b).unwrap();
        expected.push(match s.expect {
            None => json!({"file": s.file, "what": s.what, "passed": true}),
            Some((code, pointer)) => json!({"file": s.file, "what": s.what, "passed": false, "code": code, "pointer": pointer}),
        });
    }
    let doc = json!({"generated_by": "cargo run --example evidence_samples -- docs/evidence-samples", "generated_at": utc_text(now), "samples": expected});
    std::fs::write(out.join("expected.json"), serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    println!("{} samples written to {}", samples.len(), out.display());
}
