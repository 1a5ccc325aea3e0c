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
