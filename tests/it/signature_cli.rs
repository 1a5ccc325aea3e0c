//! `carimbo sign` and `carimbo verify-signature` as a person runs them.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn carimbo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carimbo")).args(args).current_dir(repo()).output().expect("carimbo runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("carimbo-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_payload(dir: &Path, signer: &str, time: &str) -> PathBuf {
    let mut p = payload(signer);
    p.time = t(time);
    let path = dir.join("payload.json");
    std::fs::write(&path, serde_json::to_string_pretty(&p).unwrap()).unwrap();
    path
}

fn sign(dir: &Path, payload: &Path, key: &str, cert: &str, time: &str) -> PathBuf {
    let out = carimbo(&["sign", "--key", key, "--cert", cert, "--time", time, payload.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = dir.join("sig.json");
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

#[test]
fn signed_payload_verifies_with_exit_zero_and_a_readable_report() {
    let dir = scratch("ok");
    let payload = write_payload(&dir, "p003", "2026-01-15T09:00:00Z");
    let sig = sign(&dir, &payload, "seeds/pki/people/p003.key.pem", "seeds/pki/people/p003.pem", "2026-01-15T09:00:00Z");
    // p003's key is a file: under the law's device rule its qualified certificate (no QcSSCD)
    // gives an advanced signature, and the report says why it is not qualified.
    let out = carimbo(&["verify-signature", payload.to_str().unwrap(), sig.to_str().unwrap(), "--require", "advanced"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("TOTAL_PASSED") && text.contains("advanced") && text.contains("p003"), "{text}");
    assert!(text.contains("not qualified") && text.contains("QcSSCD"), "{text}");
    let out = carimbo(&["verify-signature", payload.to_str().unwrap(), sig.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["indication"], "TOTAL_PASSED");
    assert_eq!(report["signer"]["person_id"], "p003");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn tampered_payload_exits_one_and_json_report_names_the_reason() {
    let dir = scratch("tampered");
    let payload = write_payload(&dir, "p003", "2026-01-15T09:00:00Z");
    let sig = sign(&dir, &payload, "seeds/pki/people/p003.key.pem", "seeds/pki/people/p003.pem", "2026-01-15T09:00:00Z");
    let text = std::fs::read_to_string(&payload).unwrap().replace("approve", "reject");
    std::fs::write(&payload, text).unwrap();
    let out = carimbo(&["verify-signature", payload.to_str().unwrap(), sig.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["indication"], "TOTAL_FAILED");
    assert_eq!(report["sub_indication"], "SIG_CRYPTO_FAILURE");
    assert_eq!(report["code"], "CARIMBO-E0522");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn at_option_proves_a_signature_made_before_revocation() {
    let dir = scratch("revoked");
    let payload = write_payload(&dir, "p031", "2025-03-01T09:00:00Z");
    let sig = sign(&dir, &payload, "seeds/pki/bad/revoked.key.pem", "seeds/pki/bad/revoked.pem", "2025-03-01T09:00:00Z");
    let args = [payload.to_str().unwrap(), sig.to_str().unwrap()];
    let proven = carimbo(&["verify-signature", args[0], args[1], "--at", "2025-03-01T09:00:30Z"]);
    assert_eq!(proven.status.code(), Some(0), "{}", String::from_utf8_lossy(&proven.stdout));
    let claimed = carimbo(&["verify-signature", args[0], args[1], "--json"]);
    assert_eq!(claimed.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&claimed.stdout).unwrap();
    assert_eq!(report["sub_indication"], "REVOKED_NO_POE");
    let late = carimbo(&["verify-signature", args[0], args[1], "--at", "2025-07-01T00:00:00Z", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&late.stdout).unwrap();
    assert_eq!(report["sub_indication"], "REVOKED");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn advanced_signature_on_a_qualified_step_exits_one() {
    let dir = scratch("level");
    let payload = write_payload(&dir, "p005", "2026-01-15T09:00:00Z");
    let sig = sign(&dir, &payload, "seeds/pki/people/p005.key.pem", "seeds/pki/people/p005.pem", "2026-01-15T09:00:00Z");
    let out = carimbo(&["verify-signature", payload.to_str().unwrap(), sig.to_str().unwrap(), "--require", "qualified"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("CARIMBO-E0534") && text.contains("qualified"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn key_that_does_not_match_the_certificate_is_a_usage_error() {
    let dir = scratch("mismatch");
    let payload = write_payload(&dir, "p003", "2026-01-15T09:00:00Z");
    let out = carimbo(&["sign", "--key", "seeds/pki/people/p001.key.pem", "--cert", "seeds/pki/people/p003.pem", payload.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CARIMBO-E0512"));
    let out = carimbo(&["sign", "--key", "nope.pem", "--cert", "seeds/pki/people/p003.pem", payload.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CARIMBO-E0510"));
    std::fs::remove_dir_all(dir).unwrap();
}
