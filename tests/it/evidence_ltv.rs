//! Long-term evidence with a moved clock (JAdES B-LTA, `evidence::ltv`): a bundle whose acts
//! carry signature time-stamps, with a first archive time-stamp at export, verified years later
//! when the signing, service and TSA certificates of the demo PKI (valid to the end of 2050)
//! have expired. Re-stamped in 2049 by a TSA valid to 2059 it still passes in 2055; never
//! re-stamped it is INDETERMINATE / OUT_OF_BOUNDS_NO_POE, and so is a B-T bundle with no archive
//! stamp. Every byte of an archive stamp and its validation data is covered.

use crate::evidence_case;

use carimbo::evidence::ltv::{self, ValidationData};
use carimbo::evidence::{self, TextFile, VerificationReport, sha256_hex};
use carimbo::pki::history::{Change, MemberStatus, ServiceType, TrustHistory, certificate_text, sign_entry};
use carimbo::pki::report::{Indication, SubIndication};
use carimbo::signing::Signer;
use carimbo::signing::timestamp::{DEFAULT_TSA_POLICY, TsaSigner};
use carimbo::workflow::Action;
use chrono::{DateTime, TimeZone, Utc};
use evidence_case::{Harness, leave, seeds};
use serde_json::Value;
use std::sync::OnceLock;

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap()
}

/// After every demo certificate but the root (2060) expired.
fn moved_clock() -> DateTime<Utc> {
    at(2055, 6, 1)
}

/// When the archive is re-stamped: before the demo TSA's certificate expires (end of 2050).
fn restamp_time() -> DateTime<Utc> {
    at(2049, 6, 2)
}

/// A TSA valid to the end of 2059, issued by the demo root, and the trust list's history with
/// it added and granted in 2049 by the demo operator.
struct LaterTsa {
    signer: TsaSigner,
    trust_list: TextFile,
}

fn later_tsa(base: &TextFile) -> &'static LaterTsa {
    static TSA: OnceLock<LaterTsa> = OnceLock::new();
    TSA.get_or_init(|| added_tsa(base, "archive-tsa-2059", "Carimbo Archive TSA 2059", 0x2059, (2059, 12, 31), at(2049, 6, 1)))
}

/// A TSA valid until `until`, issued by the demo root with `serial`, added to the trust list's
/// history `base` as `member` and granted at `when` by the demo operator.
fn added_tsa(base: &TextFile, member: &str, cn: &str, serial: u64, until: (i32, u8, u8), when: DateTime<Utc>) -> LaterTsa {
    let pki = seeds().join("pki");
    let (cert, key) = carimbo::cli::pki_demo::issue_tsa_certificate_until(&pki, cn, serial, true, Some(until)).unwrap();
    let signer = TsaSigner::from_pem(key.as_bytes(), cert.as_bytes(), DEFAULT_TSA_POLICY).unwrap();
    let operator =
        Signer::from_pem(&std::fs::read(pki.join("operator/operator.key.pem")).unwrap(), &std::fs::read(pki.join("operator/operator.pem")).unwrap()).unwrap();
    let mut history = TrustHistory::from_slice(base.text.as_bytes(), when).unwrap();
    let der = carimbo::pki::cert::parse_pem_certificates(cert.as_bytes(), "tsa").unwrap().remove(0);
    let changes = [
        Change::AddMember {
            member: member.into(),
            service_type: ServiceType::TimeStamping,
            name: carimbo::pki::demo::tsa_name(),
            certificate: certificate_text(&der),
        },
        Change::Status { member: member.into(), status: MemberStatus::Granted, level: None },
    ];
    for change in changes {
        let entry = sign_entry(Some(&history), &operator, when, change).unwrap();
        history = history.appended(entry, when).unwrap();
    }
    let text = history.document().to_pretty();
    LaterTsa { signer, trust_list: TextFile { name: "trust-list.json".into(), sha256: sha256_hex(text.as_bytes()), text } }
}

/// The bundles of one time-stamped case: B-T (no archive stamp), B-LTA with its first archive
/// stamp at export, and that one re-stamped in 2049 by the later TSA.
struct Bundles {
    b_t: Vec<u8>,
    b_lta: Vec<u8>,
    restamped: Vec<u8>,
}

fn bundles() -> &'static Bundles {
    static B: OnceLock<Bundles> = OnceLock::new();
    B.get_or_init(|| {
        let h = Harness::new().with_demo_tsa();
        let id = h.submit("p005", "absence-and-annual-leave", &leave("family matters"), "ltv-case");
        h.act(&id, "p003", "supervisor", Action::Approve);
        h.act(&id, "p002", "head", Action::Approve);
        h.act(&id, "p019", "hr-records", Action::Sign);
        let bundle = h.export(&id, "p900");
        let b_t = bundle.to_bytes();
        let exported = carimbo::pki::history::parse_utc_z(&bundle.exported_at).unwrap();
        let vd = ValidationData::default();
        let token = h.stamp(&ltv::next_stamp_input(&bundle, &vd), exported);
        let b_lta = ltv::with_archive_stamp(bundle, vd, &token).to_bytes();
        let later = later_tsa(&h.pki.trust_list);
        let prepared = ltv::prepare_restamp(&b_lta, restamp_time(), Some(&later.trust_list), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(prepared.validation_data.trust_list.is_some(), "the later TSA's trust list goes with its stamp");
        let token = later.signer.stamp(&prepared.input, 7, restamp_time()).unwrap();
        let restamped = ltv::finish_restamp(prepared, &token, restamp_time()).unwrap_or_else(|e| panic!("{e}"));
        Bundles { b_t, b_lta, restamped }
    })
}

fn verify(bytes: &[u8], now: DateTime<Utc>) -> VerificationReport {
    evidence::verify(bytes, now)
}

fn failure(r: &VerificationReport) -> &evidence::Finding {
    r.first_failure.as_ref().unwrap_or_else(|| panic!("expected a failure:\n{}", r.to_text()))
}

fn value(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(v).unwrap()
}

#[test]
fn every_bundle_passes_when_made() {
    let b = bundles();
    for (name, bytes) in [("B-T", &b.b_t), ("B-LTA", &b.b_lta)] {
        let r = verify(bytes, Utc::now());
        assert!(r.passed, "{name}:\n{}", r.to_text());
    }
    // The re-stamped bundle carries trust-list entries of 2049: it verifies from then on.
    let r = verify(&b.restamped, restamp_time());
    assert!(r.passed, "{}", r.to_text());
    assert_eq!(r.archive_timestamps.len(), 2, "{}", r.to_text());
    assert_eq!(r.archive_valid_until.as_deref(), Some("2059-12-31T00:00:00Z"));
    assert!(r.to_text().contains("archive time-stamps (2, B-LTA)"), "{}", r.to_text());
}

#[test]
fn a_restamped_bundle_passes_after_every_certificate_but_the_root_expired() {
    let r = verify(&bundles().restamped, moved_clock());
    assert!(r.passed, "{}", r.to_text());
    assert!(!r.signatures.is_empty());
}

#[test]
fn a_bundle_never_restamped_is_indeterminate_out_of_bounds_no_poe() {
    let r = verify(&bundles().b_lta, moved_clock());
    let f = failure(&r);
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E1252", "/archive_timestamps/0/token"), "{}", f.message);
    let report = f.report.as_ref().unwrap();
    assert_eq!((report.indication, report.sub_indication), (Indication::Indeterminate, Some(SubIndication::OutOfBoundsNoPoe)));
    assert!(f.message.contains("expired on 2050-12-31") && f.message.contains("restamp"), "{}", f.message);
    assert!(r.to_text().contains("OUT_OF_BOUNDS_NO_POE"), "{}", r.to_text());
}

#[test]
fn a_b_t_bundle_without_archive_stamps_is_indeterminate_once_its_tsa_expired() {
    let r = verify(&bundles().b_t, moved_clock());
    let f = failure(&r);
    assert_eq!((f.code, f.pointer.as_str(), f.seq), ("CARIMBO-E1252", "/events/0/body/signature/jws/header", Some(1)), "{}", f.message);
    assert_eq!(f.report.as_ref().unwrap().sub_indication, Some(SubIndication::OutOfBoundsNoPoe));
    assert!(f.message.contains("no archive time-stamp"), "{}", f.message);
}

#[test]
fn restamping_after_the_previous_tsa_expired_is_refused() {
    let later = later_tsa(&value_text(&bundles().b_lta));
    let e = ltv::prepare_restamp(&bundles().b_lta, at(2051, 3, 1), Some(&later.trust_list), &[]).err().expect("too late to re-stamp");
    assert_eq!(e.code(), "CARIMBO-E1254", "{e}");
    assert!(e.to_string().contains("OUT_OF_BOUNDS_NO_POE") || e.to_string().contains("CARIMBO-E1252"), "{e}");
}

fn value_text(b: &[u8]) -> TextFile {
    serde_json::from_value(value(b)["pki"]["trust_list"].clone()).unwrap()
}

/// A changed character in the middle of a base64 string (a different valid character).
fn flip(s: &str, at: usize) -> String {
    let mut c: Vec<char> = s.chars().collect();
    c[at] = if c[at] == 'A' { 'B' } else { 'A' };
    c.into_iter().collect()
}

#[test]
fn a_changed_byte_in_an_archive_token_is_named() {
    let v = value(&bundles().restamped);
    for k in 0..2 {
        let token = v["archive_timestamps"][k]["token"].as_str().unwrap().to_string();
        for pos in [10, token.len() / 3, token.len() / 2, token.len() - 20] {
            let mut t = v.clone();
            t["archive_timestamps"][k]["token"] = Value::from(flip(&token, pos));
            let r = verify(&bytes(&t), restamp_time());
            let f = failure(&r);
            assert!(f.pointer.starts_with(&format!("/archive_timestamps/{k}")), "stamp {k} byte {pos}: {} {} {}", f.code, f.pointer, f.message);
            assert!(matches!(f.code, "CARIMBO-E1251" | "CARIMBO-E1252"), "stamp {k} byte {pos}: {} {}", f.code, f.message);
        }
    }
}

#[test]
fn validation_data_added_after_the_stamp_is_refused() {
    let mut v = value(&bundles().restamped);
    let crl = v["pki"]["crls"][0].clone();
    v["archive_timestamps"][0]["validation_data"]["crls"] = Value::Array(vec![crl]);
    let f = failure(&verify(&bytes(&v), restamp_time())).clone();
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E1251", "/archive_timestamps/0"), "{}", f.message);
    assert_eq!(f.report.unwrap().sub_indication, Some(SubIndication::HashFailure));
}

#[test]
fn a_trust_list_that_does_not_continue_the_bundles_is_refused() {
    let mut v = value(&bundles().restamped);
    let tl = &mut v["archive_timestamps"][1]["validation_data"]["trust_list"];
    let doc: Value = serde_json::from_str(tl["text"].as_str().unwrap()).unwrap();
    let mut other = doc.clone();
    other["entries"] = Value::Array(doc["entries"].as_array().unwrap()[..1].to_vec());
    let text = serde_json::to_string_pretty(&other).unwrap();
    tl["sha256"] = Value::from(sha256_hex(text.as_bytes()));
    tl["text"] = Value::from(text);
    let f = failure(&verify(&bytes(&v), restamp_time())).clone();
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E1253", "/archive_timestamps/1/validation_data/trust_list/text"), "{}", f.message);
}

#[test]
fn an_archive_stamp_moved_before_the_export_or_reordered_is_refused() {
    let v = value(&bundles().restamped);
    let mut swapped = v.clone();
    let a = v["archive_timestamps"].as_array().unwrap();
    swapped["archive_timestamps"] = Value::Array(vec![a[1].clone(), a[0].clone()]);
    let f = failure(&verify(&bytes(&swapped), restamp_time())).clone();
    assert!(f.pointer.starts_with("/archive_timestamps/0"), "{} {}", f.pointer, f.message);
    let mut dropped = v.clone();
    dropped["archive_timestamps"] = Value::Array(vec![a[1].clone()]);
    let f = failure(&verify(&bytes(&dropped), restamp_time())).clone();
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E1251", "/archive_timestamps/0"), "{}", f.message);
}

#[test]
fn a_changed_event_under_archive_stamps_is_named_at_the_event() {
    let mut v = value(&bundles().restamped);
    v["events"][1]["recorded_at"] = Value::from("2030-01-01T00:00:00Z");
    let f = failure(&verify(&bytes(&v), restamp_time())).clone();
    assert!(f.pointer.starts_with("/events/1"), "{} {} {}", f.code, f.pointer, f.message);
}

#[test]
fn restamping_adds_no_trust_list_it_already_holds_and_only_new_crls() {
    let b = &bundles().restamped;
    let later = later_tsa(&value_text(b));
    let crl = value(b)["pki"]["crls"][0].clone();
    let crl: carimbo::evidence::BinaryFile = serde_json::from_value(crl).unwrap();
    let prepared = ltv::prepare_restamp(b, restamp_time(), Some(&later.trust_list), &[crl]).unwrap();
    assert!(prepared.validation_data.is_empty(), "{:?}", prepared.validation_data);
}

#[test]
fn restamping_a_broken_bundle_is_refused_and_names_why() {
    let mut v = value(&bundles().restamped);
    v["exported_by"] = Value::from("p001");
    let e = ltv::prepare_restamp(&bytes(&v), restamp_time(), None, &[]).err().expect("refused");
    assert_eq!(e.code(), "CARIMBO-E1254");
    assert!(e.to_string().contains("CARIMBO-E0914"), "{e}");
}

#[test]
fn the_restamp_command_adds_a_stamp_in_place_and_leaves_a_broken_bundle_alone() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    let bad = dir.path().join("bad.json");
    std::fs::write(&good, &bundles().b_lta).unwrap();
    let mut v = value(&bundles().b_lta);
    v["events"][0]["body"]["data"]["reason"] = Value::from("edited");
    let bad_bytes = bytes(&v);
    std::fs::write(&bad, &bad_bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_carimbo"))
        .args(["evidence", "restamp"])
        .arg(&good)
        .arg(&bad)
        .arg("--seeds")
        .arg(seeds())
        .arg("--data")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("archive time-stamp 1 added"), "{stdout}");
    assert!(stderr.contains("CARIMBO-E1254") && stderr.contains("bad.json"), "{stderr}");
    assert_eq!(std::fs::read(&bad).unwrap(), bad_bytes, "a refused bundle is left as it was");
    let r = verify(&std::fs::read(&good).unwrap(), Utc::now());
    assert!(r.passed, "{}", r.to_text());
    assert_eq!(r.archive_timestamps.len(), 2);
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("tmp")));
}

/// When the archive is re-stamped a second time, by a TSA valid to 2065, with a newer CRL of
/// the demo root that lists the 2059 TSA (the one of archive stamp 1) as revoked on `revoked_on`.
fn restamped_after_revocation(revoked_on: (i32, u8, u8)) -> (ltv::PreparedRestamp, Vec<u8>) {
    let when = at(2050, 6, 1);
    let b = &bundles().restamped;
    let newest: TextFile = serde_json::from_value(value(b)["archive_timestamps"][1]["validation_data"]["trust_list"].clone()).unwrap();
    let third = added_tsa(&newest, "archive-tsa-2065", "Carimbo Archive TSA 2065", 0x2065, (2065, 12, 31), when);
    let crl = carimbo::cli::pki_demo::issue_root_crl(&seeds().join("pki"), 2, (2050, 6, 1), &[(0x2059, revoked_on)]).unwrap();
    let crl = carimbo::evidence::BinaryFile {
        name: "root-2050.crl".into(),
        sha256: sha256_hex(crl.as_bytes()),
        base64: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, crl.as_bytes()),
    };
    // The bundle as it stands verifies in 2050: the CRL that names the revocation is new.
    let prepared = ltv::prepare_restamp(b, when, Some(&third.trust_list), &[crl]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(prepared.validation_data.crls.len(), 1, "the new CRL goes with the new stamp");
    let token = third.signer.stamp(&prepared.input, 8, when).unwrap();
    (prepared, token)
}

#[test]
fn an_archive_tsa_revoked_after_its_stamp_leaves_the_bundle_valid() {
    let (prepared, token) = restamped_after_revocation((2050, 3, 1));
    let bytes = ltv::finish_restamp(prepared, &token, at(2050, 6, 1)).unwrap_or_else(|e| panic!("{e}"));
    let r = verify(&bytes, moved_clock());
    assert!(r.passed, "{}", r.to_text());
    assert_eq!(r.archive_timestamps.len(), 3, "{}", r.to_text());
}

#[test]
fn an_archive_tsa_revoked_before_its_stamp_fails_with_its_own_code() {
    let (prepared, token) = restamped_after_revocation((2049, 5, 1));
    let bundle = ltv::with_archive_stamp(prepared.bundle.clone(), prepared.validation_data.clone(), &token).to_bytes();
    let r = verify(&bundle, moved_clock());
    let f = failure(&r);
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E1480", "/archive_timestamps/1/token"), "{}", f.message);
    let report = f.report.as_ref().unwrap();
    assert_eq!((report.indication, report.sub_indication), (Indication::TotalFailed, Some(SubIndication::Revoked)));
    assert!(f.message.contains("2049-05-01") && f.message.contains("root-2050.crl"), "{}", f.message);
    // Re-stamping does not write a bundle whose new CRL shows an earlier stamp was worthless.
    let e = ltv::finish_restamp(prepared, &token, at(2050, 6, 1)).expect_err("refused");
    assert_eq!(e.code(), "CARIMBO-E1256", "{e}");
    assert!(e.to_string().contains("CARIMBO-E1480"), "{e}");
}

#[test]
fn an_archive_tsa_revoked_before_its_stamp_by_its_own_validation_data_fails_too() {
    let b = &bundles().b_lta;
    let later = later_tsa(&value_text(b));
    let crl = carimbo::cli::pki_demo::issue_root_crl(&seeds().join("pki"), 2, (2049, 6, 1), &[(0x2059, (2049, 5, 1))]).unwrap();
    let crl = carimbo::evidence::BinaryFile {
        name: "root-2049.crl".into(),
        sha256: sha256_hex(crl.as_bytes()),
        base64: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, crl.as_bytes()),
    };
    let prepared = ltv::prepare_restamp(b, restamp_time(), Some(&later.trust_list), &[crl]).unwrap_or_else(|e| panic!("{e}"));
    let token = later.signer.stamp(&prepared.input, 9, restamp_time()).unwrap();
    let bundle = ltv::with_archive_stamp(prepared.bundle, prepared.validation_data, &token).to_bytes();
    let f = failure(&verify(&bundle, restamp_time())).clone();
    assert_eq!((f.code, f.pointer.as_str()), ("CARIMBO-E1480", "/archive_timestamps/1/token"), "{}", f.message);
    assert_eq!(f.report.unwrap().sub_indication, Some(SubIndication::Revoked));
}

/// Verified one after another over one shared cache (as `carimbo verify FOLDER` does), a good
/// B-LTA bundle and copies with a changed archive token, before and after a re-stamp that
/// brought its own trust list, each get exactly the result they get alone.
#[test]
fn archive_stamps_checked_over_a_shared_cache_fail_where_they_fail_alone() {
    use carimbo::evidence::archive::{ArchiveOutcome, VerifyCache, verify_archive};
    let b = bundles();
    let now = restamp_time();
    let mut list: Vec<(String, Vec<u8>)> = vec![("b-lta".into(), b.b_lta.clone()), ("restamped".into(), b.restamped.clone())];
    let v = value(&b.restamped);
    for k in 0..2 {
        let token = v["archive_timestamps"][k]["token"].as_str().unwrap().to_string();
        let mut t = v.clone();
        t["archive_timestamps"][k]["token"] = Value::from(flip(&token, token.len() / 2));
        list.push((format!("stamp {k} changed"), bytes(&t)));
    }
    list.push(("b-lta again".into(), b.b_lta.clone()));
    let alone: Vec<VerificationReport> = list.iter().map(|(_, x)| verify(x, now)).collect();
    assert!(alone[0].passed && alone[1].passed && alone[4].passed, "the good bundles pass");
    for (i, k) in [(2, 0), (3, 1)] {
        assert!(failure(&alone[i]).pointer.starts_with(&format!("/archive_timestamps/{k}")), "{}", alone[i].to_text());
    }
    let names: Vec<String> = list.iter().map(|(n, _)| n.clone()).collect();
    let cfg = evidence::VerifyConfig { pins: vec![], now, cache: Some(std::sync::Arc::new(VerifyCache::default())), device_rule: None };
    let got = std::sync::Mutex::new(vec![None; list.len()]);
    // One thread: each bundle meets the cache as the ones before it left it.
    verify_archive(
        &names,
        &cfg,
        1,
        |name| Ok(list.iter().find(|(n, _)| n == name).unwrap().1.clone()),
        |i, outcome| {
            let ArchiveOutcome::Verified(r) = outcome else { panic!("{} is readable", names[i]) };
            got.lock().unwrap()[i] = Some(r);
        },
    );
    let place = |r: &VerificationReport| r.first_failure.as_ref().map(|f| (f.code, f.pointer.clone(), f.message.clone()));
    for (i, r) in got.into_inner().unwrap().into_iter().enumerate() {
        let r = r.unwrap();
        assert_eq!((r.passed, place(&r)), (alone[i].passed, place(&alone[i])), "{}", names[i]);
        assert_eq!(r.archive_timestamps.len(), alone[i].archive_timestamps.len(), "{}", names[i]);
    }
}
