//! Helpers shared by the integration tests: the shipped definitions, and copies of them to break.
#![allow(dead_code)]

pub mod crash;
pub mod server;

use carimbo::catalog::{Catalog, LoadReport, SourceFile};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The data of a shipped form's first valid example.
pub fn example(form: &str) -> serde_json::Value {
    read_json(&repo().join(format!("forms/{form}.json")))["examples"]["valid"][0]["data"].clone()
}

/// The server's layout of the checkout `root` with data in `data`, the device rule relaxed for
/// the demo: the seeded people sign with key files, and route tests complete `qualified` steps
/// with them whether or not SoftHSM2 is installed here. The tests of the rule itself set
/// `DeviceRule::Enforced` (`TestServer::start_enforced_with`).
pub fn demo_paths(root: &std::path::Path, data: &std::path::Path) -> carimbo::http::Paths {
    let mut paths = carimbo::http::Paths::from_root(root, data);
    paths.device_rule = carimbo::signing::DeviceRule::RelaxedForDemo;
    paths
}

/// The shipped forms and reference data, loaded as `carimbo check forms workflows` does.
pub fn shipped() -> LoadReport {
    Catalog::load_paths(&[repo().join("forms"), repo().join("workflows")])
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The leave form as shipped, to mutate in a test.
pub fn leave_form() -> Value {
    read_json(&repo().join("forms/absence-and-annual-leave.json"))
}

/// Reference files (calendars, tables) as sources, so a form under test can name them.
pub fn reference_sources() -> Vec<SourceFile> {
    let dir = repo().join("forms/reference");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(SourceFile::new(p.display().to_string(), std::fs::read(&p).unwrap()));
    }
    out
}

/// Loads one form definition (given as JSON) together with the shipped reference data.
pub fn load_form(name: &str, def: &Value) -> LoadReport {
    let mut sources = reference_sources();
    sources.push(SourceFile::new(name, serde_json::to_vec_pretty(def).unwrap()));
    Catalog::load_sources(&sources)
}

/// The problems of a report as `FILE:POINTER: message [CODE]` lines, for assertions.
pub fn lines(report: &LoadReport) -> Vec<String> {
    report.problems.iter().map(|p| p.to_string()).collect()
}

/// The demo directory from `seeds/`.
pub fn directory() -> carimbo::directory::Directory {
    carimbo::directory::Directory::load(&repo().join("seeds/directory/directory.json")).unwrap()
}

/// A signature record of the given level by `who` (what verification would have achieved).
pub fn sig(who: &str, level: carimbo::workflow::Level) -> carimbo::workflow::SignatureRecord {
    carimbo::workflow::SignatureRecord { level, signer: who.to_string(), jws: None, second_factor: false, provenance: None }
}

/// `YYYY-MM-DDTHH:MM` Macau time (UTC+8) as a UTC instant.
pub fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(&format!("{s}:00+08:00")).unwrap().with_timezone(&chrono::Utc)
}

// ---- signature tests: the demo PKI in `seeds/`, payloads, raw JWS ----

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use carimbo::cli::pki_files::load_pem_certificates;
use carimbo::cli::pki_files::load_verifier;
use carimbo::pki::cert::sha256;
use carimbo::signing::{FormRef, SignatureVerifier, Signer, SigningPayload, VerifyOptions};
use chrono::{DateTime, Utc};
use serde_json::json;

pub fn pki(rel: &str) -> PathBuf {
    repo().join("seeds/pki").join(rel)
}

/// The demo's verifier: the seeded people's keys are files (their qualified certificates carry
/// no QcSSCD), so it judges with the device rule relaxed for the demo, as a server without an
/// HSM does. The rule itself is tested in `hsm_signing`.
pub fn verifier() -> SignatureVerifier {
    load_verifier(&repo().join("seeds/trust"), &pki("crl"), Some(&pki("service/service.pem")))
        .expect("demo trust list and CRLs load")
        .with_device_rule(carimbo::signing::DeviceRule::RelaxedForDemo)
}

/// A signer from `seeds/pki/<dir>/<name>.pem` and `.key.pem`.
pub fn signer_from(dir: &str, name: &str) -> Signer {
    let key = std::fs::read(pki(&format!("{dir}/{name}.key.pem"))).unwrap();
    let chain = std::fs::read(pki(&format!("{dir}/{name}.pem"))).unwrap();
    Signer::from_pem(&key, &chain).expect("demo key and certificate match")
}

pub fn person(id: &str) -> Signer {
    signer_from("people", id)
}

pub fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// "Now" for tests: fixed, inside every good certificate's validity, after the CRLs' issue.
pub fn now() -> DateTime<Utc> {
    t("2026-11-23T10:00:00Z")
}

pub fn opts() -> VerifyOptions {
    VerifyOptions { trusted_time: Some(now()), now: now(), required_level: None }
}

pub fn claimed_only() -> VerifyOptions {
    VerifyOptions { trusted_time: None, now: now(), required_level: None }
}

pub fn form_data() -> Value {
    json!({"leave_type": "annual", "from": "2026-12-01", "to": "2026-12-05", "days": 5})
}

pub fn payload(signer: &str) -> SigningPayload {
    SigningPayload {
        case: "case-2026-000123".into(),
        form: FormRef { id: "absence-and-annual-leave".into(), version: "1".into(), hash: "sha256:5b1f0c3e".into() },
        step: "supervisor-approval".into(),
        action: "approve".into(),
        data_hash: carimbo::signing::data_hash(&form_data()).unwrap(),
        previous_event_hash: "sha256:9a0d2c7b".into(),
        signer: signer.into(),
        time: now(),
    }
}

pub fn bytes(p: &SigningPayload) -> Vec<u8> {
    p.canonical_bytes().unwrap()
}

/// Sign `payload` as person `id` at `now()`, returning the JWS JSON bytes.
pub fn signed_by(id: &str, p: &SigningPayload) -> Vec<u8> {
    person(id).sign(&bytes(p), now()).unwrap().to_json().into_bytes()
}

/// The x5c entries of a PEM chain file.
pub fn x5c_of(rel: &str) -> Vec<String> {
    load_pem_certificates(&pki(rel)).unwrap().iter().map(|c| STANDARD.encode(c.as_ref())).collect()
}

pub fn x5t_of(rel: &str) -> String {
    let certs = load_pem_certificates(&pki(rel)).unwrap();
    URL_SAFE_NO_PAD.encode(sha256(certs[0].as_ref()))
}

/// A standard protected header for the chain file `rel`.
pub fn header_for(rel: &str, alg: &str, iat: DateTime<Utc>) -> Value {
    json!({"alg": alg, "iat": iat.timestamp(), "x5c": x5c_of(rel), "x5t#S256": x5t_of(rel)})
}

/// A JWS with an arbitrary protected header, signed with ring directly by the P-256 or
/// Ed25519 key in `key_rel` (so tests can build headers carimbo itself never makes).
pub fn raw_jws(key_rel: &str, header: &Value, payload: &[u8]) -> Vec<u8> {
    raw_jws_text(key_rel, &header.to_string(), payload)
}

/// `raw_jws` over a protected header given as text (e.g. one that repeats a member name).
pub fn raw_jws_text(key_rel: &str, header: &str, payload: &[u8]) -> Vec<u8> {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
    use rustls_pki_types::PrivatePkcs8KeyDer;
    use rustls_pki_types::pem::PemObject;
    let pem = std::fs::read(pki(key_rel)).unwrap();
    let der = PrivatePkcs8KeyDer::from_pem_slice(&pem).unwrap();
    let protected = URL_SAFE_NO_PAD.encode(header);
    let input = format!("{protected}.{}", URL_SAFE_NO_PAD.encode(payload));
    let rng = ring::rand::SystemRandom::new();
    let sig = match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.secret_pkcs8_der(), &rng) {
        Ok(k) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
        Err(_) => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der()).expect("a P-256 or Ed25519 key").sign(input.as_bytes()).as_ref().to_vec(),
    };
    json!({"protected": protected, "signature": URL_SAFE_NO_PAD.encode(sig)}).to_string().into_bytes()
}

/// Replace one field of a flattened JWS JSON.
pub fn with_field(jws: &[u8], field: &str, value: Value) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(jws).unwrap();
    v[field] = value;
    v.to_string().into_bytes()
}

pub fn field(jws: &[u8], name: &str) -> String {
    let v: Value = serde_json::from_slice(jws).unwrap();
    v[name].as_str().unwrap().to_string()
}

/// A form field as `application/x-www-form-urlencoded` writes it (every byte but the unreserved
/// ones percent-encoded), for posting to the pages as a browser does.
pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The demo trust list's history, verified at the tests' `now`.
pub fn demo_trust_history() -> carimbo::pki::history::TrustHistory {
    carimbo::pki::history::TrustHistory::from_slice(&std::fs::read(repo().join("seeds/trust/trust-list.json")).unwrap(), now())
        .expect("the demo trust list verifies")
}

/// The demo trust-list operator, who signs the list's entries.
pub fn trust_operator() -> Signer {
    signer_from("operator", "operator")
}

/// The demo history with more changes, each signed by the operator and taking effect at its time.
pub fn trust_history_with(changes: Vec<(&str, carimbo::pki::history::Change)>) -> carimbo::pki::history::TrustHistory {
    let mut h = demo_trust_history();
    for (at, change) in changes {
        let entry = carimbo::pki::history::sign_entry(Some(&h), &trust_operator(), t(at), change).unwrap();
        h = h.appended(entry, now()).unwrap();
    }
    h
}

/// The demo trust list with the qualified CA's accreditation withdrawn at `at`.
pub fn qualified_ca_withdrawn_at(at: &str) -> carimbo::pki::history::TrustHistory {
    use carimbo::pki::history::{Change, MemberStatus};
    trust_history_with(vec![(at, Change::Status { member: "qualified-ca".into(), status: MemberStatus::Withdrawn, level: None })])
}

/// A valid next entry for `history`, taking effect now: the Advanced CA's status toggled
/// between granted (at the advanced level) and suspended, which changes no qualified level.
pub fn next_trust_entry(history: &carimbo::pki::history::TrustHistory) -> carimbo::pki::history::TrustEntry {
    use carimbo::pki::history::{Change, MemberStatus};
    let at = chrono::Utc::now();
    let granted = history.member("advanced-ca").and_then(|m| m.status_at(at)).is_some_and(|(s, _)| s == MemberStatus::Granted);
    let change = if granted {
        Change::Status { member: "advanced-ca".into(), status: MemberStatus::Suspended, level: None }
    } else {
        Change::Status { member: "advanced-ca".into(), status: MemberStatus::Granted, level: Some(carimbo::pki::report::SignatureLevel::Advanced) }
    };
    carimbo::pki::history::sign_entry(Some(history), &trust_operator(), at, change).unwrap()
}
