//! Runs the public x509-limbo suite (`../shared/testdata/x509-limbo/limbo.json`) through
//! carimbo's certificate validation and prints how it fares.
//!
//! carimbo validates chains for document signatures, so it does no host-name matching. The
//! cases whose expected FAILURE depends only on names or on TLS-only EKU rules are counted
//! apart ("TLS-only"), so the applicable figure is honest. Among applicable cases no expected
//! FAILURE may be accepted, except the ones listed in `ACCEPTED_FAILURES` with the reason.
//! The corpus is never copied into this repository: without it the test says it skipped.
//!
//! Harness-less (`harness = false`) so the summary is printed by `cargo test` as it is.

use std::path::PathBuf;
use std::process::ExitCode;

use carimbo::pki::crl::LoadedCrl;
use carimbo::pki::path::{EkuRule, RevocationRule, SigningTime};
use carimbo::pki::{CertificateValidator, CrlSet, TrustList, ValidationPolicy};
use chrono::{DateTime, Utc};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use serde_json::{Value, json};

/// Applicable cases that expect FAILURE but that carimbo accepts, and why that is acceptable.
const ACCEPTED_FAILURES: &[(&str, &str)] = &[];

#[path = "common/profile_rules.rs"]
mod profile_rules;
use profile_rules::*;

/// Applicable cases that expect SUCCESS but that carimbo refuses, with the rule of its signing
/// profile that refuses them (docs/signatures.md, "What the profile refuses"). A refusal not
/// listed here fails the run, and so does an entry that is no longer refused.
const STRICTER: &[(&str, &str)] = &[
    ("cve::cve-2024-0567", R_ANCHOR_AKI),
    ("pathlen::validation-ignores-pathlen-in-leaf", R_CA_LEAF),
    ("pathlen::self-issued-certs-pathlen", R_SELF_ISSUED),
    ("rfc5280::nc::permitted-dn-match", R_NC),
    ("rfc5280::nc::permitted-self-issued", R_SELF_ISSUED),
    ("rfc5280::nc::nc-permits-email-exact", R_NC),
    ("rfc5280::nc::nc-permits-email-domain", R_NC),
    ("rfc5280::nc::nc-permits-email-literal-asterisk-exact-match", R_NC),
    ("rfc5280::nc::nc-permits-email-literal-double-asterisk", R_NC),
    ("rfc5280::nc::nc-permits-email-literal-mid-asterisk", R_NC),
    ("rfc5280::ca-as-leaf", R_CA_LEAF),
    ("webpki::nc::permitted-dns-match-noncritical", R_NC_CRITICAL),
];

/// Cases whose expected FAILURE is about host names or TLS-only EKU rules.
fn tls_only(id: &str) -> bool {
    id.starts_with("webpki::cn::")
        || (id.starts_with("webpki::san::") && id != "webpki::san::san-critical-with-nonempty-subject")
        || id.starts_with("webpki::eku::")
        || matches!(id, "rfc5280::san::underscore-dns" | "rfc5280::san::ip-in-dns" | "rfc5280::ca-as-leaf-wrong-san")
}

fn certs(pems: &[Value]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut out = Vec::new();
    for pem in pems {
        let text = pem.as_str().ok_or("certificate is not a string")?;
        out.push(CertificateDer::from_pem_slice(text.as_bytes()).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Run one case: `Ok(())` if carimbo accepts the chain, `Err(reason)` if not.
fn run(case: &Value) -> Result<(), String> {
    let roots = certs(case["trusted_certs"].as_array().ok_or("no trusted_certs")?)?;
    let intermediates = certs(case["untrusted_intermediates"].as_array().ok_or("no intermediates")?)?;
    let peer = CertificateDer::from_pem_slice(case["peer_certificate"].as_str().ok_or("no peer")?.as_bytes()).map_err(|e| e.to_string())?;
    let trust = TrustList::from_anchors(&roots)?;
    let mut crls = CrlSet::empty();
    for (i, pem) in case["crls"].as_array().into_iter().flatten().enumerate() {
        let der = CertificateRevocationListDer::from_pem_slice(pem.as_str().unwrap_or("").as_bytes()).map_err(|e| e.to_string())?;
        crls.add(LoadedCrl::from_der(der.as_ref().to_vec(), &format!("crl[{i}]"))?);
    }
    let eku = match case["validation_kind"].as_str() {
        Some("CLIENT") => vec![0x2b, 6, 1, 5, 5, 7, 3, 2],
        _ => vec![0x2b, 6, 1, 5, 5, 7, 3, 1],
    };
    let policy = ValidationPolicy { eku: EkuRule::RequiredIfPresent(eku), require_key_usage: false, revocation: RevocationRule::IfAvailable };
    let validator = CertificateValidator::new(trust, crls, policy);
    // Signing times are whole seconds (`iat` is a NumericDate), as webpki's are.
    let at: DateTime<Utc> = match case["validation_time"].as_str() {
        Some(t) => DateTime::parse_from_rfc3339(t).map_err(|e| e.to_string())?.with_timezone(&Utc),
        None => Utc::now(),
    };
    let at = DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at);
    let mut chain = vec![peer];
    chain.extend(intermediates);
    let (path, _) = validator.validate(&chain, SigningTime { at, trusted: true }).map_err(|f| format!("{}: {}", f.sub.as_str(), f.detail))?;
    if let Some(max) = case["max_chain_depth"].as_u64() {
        // Logical intermediates: self-issued certificates do not count (RFC 5280 §6.1).
        let logical = path.path[1..].iter().filter(|e| !e.trust_anchor && e.facts.subject_raw != e.facts.issuer_raw).count() as u64;
        if logical > max {
            return Err(format!("{logical} intermediates exceed the maximum depth {max}"));
        }
    }
    for usage in case["key_usage"].as_array().into_iter().flatten() {
        let ku = path.leaf().key_usage;
        let ok = match usage.as_str() {
            Some("digitalSignature") => ku.is_none_or(|k| k.digital_signature),
            _ => true,
        };
        if !ok {
            return Err(format!("leaf lacks key usage {usage}"));
        }
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    total: usize,
    as_expected: usize,
    accepted_failure: Vec<String>,
    rejected_success: Vec<(String, String)>,
}

fn main() -> ExitCode {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/x509-limbo/limbo.json");
    let Ok(text) = std::fs::read(&corpus) else {
        println!("x509-limbo: SKIPPED — {} is absent (the corpus lives in ../shared/testdata, never in this repository)", corpus.display());
        return ExitCode::SUCCESS;
    };
    let suite: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => {
            println!("x509-limbo: cannot parse {}: {e}", corpus.display());
            return ExitCode::FAILURE;
        }
    };
    let cases = suite["testcases"].as_array().cloned().unwrap_or_default();
    let (mut applicable, mut tls) = (Tally::default(), Tally::default());
    let mut results = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("?").to_string();
        let expected_success = case["expected_result"] == "SUCCESS";
        let outcome = run(case);
        let tally = if tls_only(&id) { &mut tls } else { &mut applicable };
        tally.total += 1;
        match (&outcome, expected_success) {
            (Ok(()), true) | (Err(_), false) => tally.as_expected += 1,
            (Ok(()), false) => tally.accepted_failure.push(id.clone()),
            (Err(reason), true) => tally.rejected_success.push((id.clone(), reason.clone())),
        }
        results.push(json!({
            "id": id,
            "actual_result": if outcome.is_ok() { "SUCCESS" } else { "FAILURE" },
            "context": outcome.err(),
        }));
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("x509-limbo-results.json");
    let _ = std::fs::write(&out, serde_json::to_string_pretty(&json!({"version": 1, "harness": "carimbo", "results": results})).unwrap_or_default());

    println!("x509-limbo: {} cases run, 0 skipped (results: {})", cases.len(), out.display());
    for (name, t) in [("applicable to document signing", &applicable), ("TLS-only (names / TLS EKU)", &tls)] {
        println!(
            "x509-limbo {name}: {} cases, {} as expected, {} not ({} expected FAILURE accepted, {} expected SUCCESS rejected)",
            t.total,
            t.as_expected,
            t.accepted_failure.len() + t.rejected_success.len(),
            t.accepted_failure.len(),
            t.rejected_success.len()
        );
    }
    let mut regressions = Vec::new();
    for (id, reason) in &applicable.rejected_success {
        match STRICTER.iter().find(|(n, _)| n == id) {
            Some((_, rule)) => println!("  applicable, expected SUCCESS, refused by the profile rule \"{rule}\": {id} ({reason})"),
            None => {
                println!("  applicable, expected SUCCESS, REFUSED by no listed rule: {id} ({reason})");
                regressions.push(id.clone());
            }
        }
    }
    for (id, rule) in STRICTER {
        if !applicable.rejected_success.iter().any(|(r, _)| r == id) {
            println!("  listed as refused by \"{rule}\" but no longer refused: {id}");
            regressions.push(format!("{id} (stale entry of STRICTER)"));
        }
    }
    for id in &tls.accepted_failure {
        println!("  TLS-only, expected FAILURE, accepted (no host-name check): {id}");
    }
    for id in &applicable.accepted_failure {
        match ACCEPTED_FAILURES.iter().find(|(a, _)| a == id) {
            Some((_, why)) => {
                println!("  applicable, expected FAILURE, accepted (allowed: {why}): {id}")
            }
            None => {
                println!("  applicable, expected FAILURE, ACCEPTED: {id}");
                regressions.push(id.clone());
            }
        }
    }
    if regressions.is_empty() {
        println!("x509-limbo: no applicable case that expects FAILURE was accepted; every refused SUCCESS case is a listed profile rule");
        ExitCode::SUCCESS
    } else {
        println!(
            "x509-limbo: FAILED — {} case(s) accepted though expected to fail, refused by no listed rule, or listed but no longer refused",
            regressions.len()
        );
        ExitCode::FAILURE
    }
}
