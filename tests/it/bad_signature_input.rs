//! Every bad input of issue 5 gives a clear, non-passing report, and no `VerifiedSignature`
//! (the only thing the workflow can store) comes out of it.

use crate::common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use carimbo::pki::report::{Indication, SignatureLevel, SubIndication, ValidationReport};
use carimbo::pki::{CertificateValidator, CrlSet, ValidationPolicy};
use carimbo::signing::{SignatureVerifier, VerifyOptions, verify_act};
use common::*;
use serde_json::json;

/// Verify as the workflow does (payload, data, level advanced) and insist nothing passes.
fn refused(p: &carimbo::signing::SigningPayload, jws: &[u8], opts: &VerifyOptions) -> ValidationReport {
    let report = verify_act(&verifier(), p, Some(&form_data()), jws, SignatureLevel::Advanced, opts).expect_err("a bad signature must not verify");
    assert_ne!(report.indication, Indication::TotalPassed);
    let sub = report.sub_indication.expect("a reason is named");
    assert_eq!(report.code.as_deref(), Some(sub.code()));
    assert!(!report.detail.is_empty() && !report.message.en.is_empty());
    report
}

fn assert_sub(report: &ValidationReport, indication: Indication, sub: SubIndication) {
    assert_eq!((report.indication, report.sub_indication), (indication, Some(sub)), "detail: {}", report.detail);
}

fn bad_signed(name: &str, p: &carimbo::signing::SigningPayload) -> Vec<u8> {
    signer_from("bad", name).sign(&bytes(p), now()).unwrap().to_json().into_bytes()
}

#[test]
fn signature_over_other_data_fails_with_hash_failure() {
    let p = payload("p003");
    let jws = signed_by("p003", &p);
    let other = json!({"leave_type": "annual", "from": "2026-12-01", "to": "2026-12-25", "days": 19});
    let report = verify_act(&verifier(), &p, Some(&other), &jws, SignatureLevel::Advanced, &opts()).expect_err("changed data");
    assert_sub(&report, Indication::TotalFailed, SubIndication::HashFailure);
}

#[test]
fn signature_moved_to_another_case_fails_with_sig_crypto_failure() {
    let p = payload("p003");
    let jws = signed_by("p003", &p);
    let mut other = p.clone();
    other.case = "case-2026-000999".into();
    let r = refused(&other, &jws, &opts());
    assert_sub(&r, Indication::TotalFailed, SubIndication::SigCryptoFailure);
}

#[test]
fn signature_moved_to_another_step_fails_with_sig_crypto_failure() {
    let p = payload("p003");
    let jws = signed_by("p003", &p);
    let mut other = p.clone();
    other.step = "head-approval".into();
    let r = refused(&other, &jws, &opts());
    assert_sub(&r, Indication::TotalFailed, SubIndication::SigCryptoFailure);
    let mut other = p.clone();
    other.previous_event_hash = "sha256:ffff".into();
    assert_sub(&refused(&other, &jws, &opts()), Indication::TotalFailed, SubIndication::SigCryptoFailure);
}

#[test]
fn truncated_signature_value_is_refused() {
    let p = payload("p003");
    let jws = signed_by("p003", &p);
    let sig = field(&jws, "signature");
    for cut in [1, 2, 4, 10] {
        let truncated = with_field(&jws, "signature", json!(sig[..sig.len() - cut]));
        let r = refused(&p, &truncated, &opts());
        assert_sub(&r, Indication::TotalFailed, SubIndication::FormatFailure);
    }
}

#[test]
fn truncated_protected_header_is_a_format_failure() {
    let p = payload("p003");
    let jws = signed_by("p003", &p);
    let protected = field(&jws, "protected");
    let r = refused(&p, &with_field(&jws, "protected", json!(protected[..protected.len() - 7])), &opts());
    assert_sub(&r, Indication::TotalFailed, SubIndication::FormatFailure);
}

#[test]
fn signature_re_encoded_as_standard_base64_is_a_format_failure() {
    let p = payload("p003");
    let jws = signed_by("p003", &p);
    let raw = URL_SAFE_NO_PAD.decode(field(&jws, "signature")).unwrap();
    // Standard alphabet with padding is not base64url (RFC 7515 §2).
    let mut reencoded = STANDARD.encode(&raw);
    if !reencoded.contains(['+', '/', '=']) {
        reencoded.push('=');
    }
    let r = refused(&p, &with_field(&jws, "signature", json!(reencoded)), &opts());
    assert_sub(&r, Indication::TotalFailed, SubIndication::FormatFailure);
    // The header re-encoded with padding, likewise.
    let header = URL_SAFE_NO_PAD.decode(field(&jws, "protected")).unwrap();
    let r = refused(&p, &with_field(&jws, "protected", json!(format!("{}==", STANDARD.encode(header)))), &opts());
    assert_sub(&r, Indication::TotalFailed, SubIndication::FormatFailure);
}

#[test]
fn alg_none_is_a_format_failure() {
    let p = payload("p003");
    let header = json!({"alg": "none", "iat": now().timestamp(), "x5c": x5c_of("people/p003.pem"), "x5t#S256": x5t_of("people/p003.pem")});
    let protected = URL_SAFE_NO_PAD.encode(header.to_string());
    let jws = json!({"protected": protected, "signature": ""}).to_string();
    let r = refused(&p, jws.as_bytes(), &opts());
    assert_sub(&r, Indication::TotalFailed, SubIndication::FormatFailure);
    assert!(r.detail.contains("none"));
}

#[test]
fn a_protected_header_repeating_alg_is_a_format_failure_even_when_signed() {
    let p = payload("p003");
    // `{"alg":"none", "alg":"ES256", …}`, correctly signed with ES256: a reader keeping the last
    // `alg` would verify it, one keeping the first would read `none`.
    let good = header_for("people/p003.pem", "ES256", now()).to_string();
    let header = format!("{{\"alg\":\"none\",{}", &good[1..]);
    assert!(header.matches("\"alg\"").count() == 2);
    let jws = raw_jws_text("people/p003.key.pem", &header, &bytes(&p));
    let r = refused(&p, &jws, &opts());
    assert_sub(&r, Indication::TotalFailed, SubIndication::FormatFailure);
    assert!(r.detail.contains("\"alg\" appears twice") && r.detail.contains("CARIMBO-E0120"), "{}", r.detail);
    // The same header without the repeated member verifies: the refusal is the duplicate alone.
    let jws = raw_jws_text("people/p003.key.pem", &good, &bytes(&p));
    verify_act(&verifier(), &p, Some(&form_data()), &jws, SignatureLevel::Advanced, &opts()).expect("the header without the duplicate verifies");
}

#[test]
fn alg_that_does_not_match_the_key_fails() {
    let p = payload("p003");
    // A P-256 key claiming RSA and Ed25519 algorithms.
    for alg in ["PS256", "RS256", "EdDSA", "ES384"] {
        let jws = raw_jws("people/p003.key.pem", &header_for("people/p003.pem", alg, now()), &bytes(&p));
        let r = refused(&p, &jws, &opts());
        assert_sub(&r, Indication::TotalFailed, SubIndication::SigCryptoFailure);
        assert!(r.detail.contains("does not fit"), "{alg}: {}", r.detail);
    }
}

#[test]
fn sha1_algorithms_and_references_are_crypto_constraints_failures() {
    let p = payload("p003");
    let jws = raw_jws("people/p003.key.pem", &header_for("people/p003.pem", "RS1", now()), &bytes(&p));
    assert_sub(&refused(&p, &jws, &opts()), Indication::Indeterminate, SubIndication::CryptoConstraintsFailure);
    let mut header = header_for("people/p003.pem", "ES256", now());
    header["x5t"] = json!("c2hhMQ");
    let jws = raw_jws("people/p003.key.pem", &header, &bytes(&p));
    assert_sub(&refused(&p, &jws, &opts()), Indication::Indeterminate, SubIndication::CryptoConstraintsFailure);
}

#[test]
fn certificate_signed_with_sha1_is_a_crypto_constraints_failure() {
    let p = payload("p031");
    let r = refused(&p, &bad_signed("sha1-signed", &p), &opts());
    assert_sub(&r, Indication::Indeterminate, SubIndication::CryptoConstraintsFailure);
    assert!(r.detail.contains("SHA-1"), "{}", r.detail);
}

#[test]
fn rsa_key_under_2048_bits_is_a_crypto_constraints_failure() {
    let p = payload("p031");
    let header = header_for("bad/weak-rsa-1024.pem", "RS256", now());
    let protected = URL_SAFE_NO_PAD.encode(header.to_string());
    // The key size is refused before any signature check, so the value does not matter.
    let jws = json!({"protected": protected, "signature": URL_SAFE_NO_PAD.encode([7u8; 128])}).to_string();
    let r = refused(&p, jws.as_bytes(), &opts());
    assert_sub(&r, Indication::Indeterminate, SubIndication::CryptoConstraintsFailure);
    assert!(r.detail.contains("1024"), "{}", r.detail);
}

#[test]
fn x5c_swapped_for_another_persons_chain_is_refused() {
    let p = payload("p003");
    let jws = signed_by("p003", &p);
    // 1. Only x5c swapped (header edited): the signature no longer covers the header.
    let mut header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(field(&jws, "protected")).unwrap()).unwrap();
    header["x5c"] = json!(x5c_of("people/p005.pem"));
    let edited = with_field(&jws, "protected", json!(URL_SAFE_NO_PAD.encode(header.to_string())));
    let r = refused(&p, &edited, &opts());
    assert_sub(&r, Indication::Indeterminate, SubIndication::NoSigningCertificateFound);
    // 2. x5c and x5t#S256 both swapped: the key no longer verifies the signature.
    header["x5t#S256"] = json!(x5t_of("people/p005.pem"));
    let edited = with_field(&jws, "protected", json!(URL_SAFE_NO_PAD.encode(header.to_string())));
    assert_sub(&refused(&p, &edited, &opts()), Indication::TotalFailed, SubIndication::SigCryptoFailure);
    // 3. Signed properly by p005 for an act attributed to p003.
    let r = refused(&p, &signed_by("p005", &p), &opts());
    assert_sub(&r, Indication::Indeterminate, SubIndication::SigConstraintsFailure);
    assert!(r.detail.contains("p003") && r.detail.contains("p005"), "{}", r.detail);
}

#[test]
fn chain_to_an_untrusted_root_gives_no_certificate_chain_found() {
    let p = payload("p031");
    let r = refused(&p, &bad_signed("unknown-ca", &p), &opts());
    assert_sub(&r, Indication::Indeterminate, SubIndication::NoCertificateChainFound);
}

#[test]
fn broken_chain_gives_no_certificate_chain_found() {
    let p = payload("p031");
    let r = refused(&p, &bad_signed("broken-chain", &p), &opts());
    assert_sub(&r, Indication::Indeterminate, SubIndication::NoCertificateChainFound);
}

#[test]
fn chain_without_its_intermediate_gives_no_certificate_chain_found() {
    let p = payload("p003");
    let mut header = header_for("people/p003.pem", "ES256", now());
    header["x5c"] = json!([x5c_of("people/p003.pem")[0].clone()]);
    let jws = raw_jws("people/p003.key.pem", &header, &bytes(&p));
    assert_sub(&refused(&p, &jws, &opts()), Indication::Indeterminate, SubIndication::NoCertificateChainFound);
}

#[test]
fn expired_certificate_gives_expired() {
    let p = payload("p031");
    let r = refused(&p, &bad_signed("expired", &p), &opts());
    assert_sub(&r, Indication::TotalFailed, SubIndication::Expired);
}

#[test]
fn not_yet_valid_certificate_gives_not_yet_valid() {
    let p = payload("p031");
    let r = refused(&p, &bad_signed("not-yet-valid", &p), &opts());
    assert_sub(&r, Indication::TotalFailed, SubIndication::NotYetValid);
}

#[test]
fn revoked_certificate_used_after_its_revocation_date_gives_revoked() {
    let p = payload("p031");
    let r = refused(&p, &bad_signed("revoked", &p), &opts());
    assert_sub(&r, Indication::TotalFailed, SubIndication::Revoked);
    assert!(r.detail.contains("2025-06-01"), "{}", r.detail);
}

#[test]
fn signature_proven_made_before_the_revocation_date_stays_valid() {
    let mut p = payload("p031");
    let march = t("2025-03-01T09:00:00Z");
    p.time = march;
    let jws = signer_from("bad", "revoked").sign(&bytes(&p), march).unwrap().to_json();
    let opts = VerifyOptions { trusted_time: Some(march), now: now(), required_level: None };
    let verified = verify_act(&verifier(), &p, Some(&form_data()), jws.as_bytes(), SignatureLevel::Qualified, &opts)
        .expect("made before the revocation, proven by a trusted time");
    assert!(verified.report().notes.iter().any(|n| n.contains("revoked on 2025-06-01")));
}

#[test]
fn claimed_but_unproven_time_before_revocation_gives_revoked_no_poe() {
    let mut p = payload("p031");
    let march = t("2025-03-01T09:00:00Z");
    p.time = march;
    let jws = signer_from("bad", "revoked").sign(&bytes(&p), march).unwrap().to_json();
    let r = refused(&p, jws.as_bytes(), &claimed_only());
    assert_sub(&r, Indication::Indeterminate, SubIndication::RevokedNoPoe);
}

#[test]
fn certificate_without_signing_key_usage_gives_chain_constraints_failure() {
    let p = payload("p031");
    let r = refused(&p, &bad_signed("no-signing-key-usage", &p), &opts());
    assert_sub(&r, Indication::Indeterminate, SubIndication::ChainConstraintsFailure);
    assert!(r.detail.contains("key usage"), "{}", r.detail);
}

#[test]
fn missing_crl_gives_try_later_and_never_passed() {
    let trust = carimbo::cli::pki_files::load_trust_list(&repo().join("seeds/trust"), chrono::Utc::now()).unwrap();
    let verifier = SignatureVerifier::new(CertificateValidator::new(trust, CrlSet::empty(), ValidationPolicy::document_signing()));
    let p = payload("p003");
    let report = verify_act(&verifier, &p, None, &signed_by("p003", &p), SignatureLevel::Simple, &opts()).expect_err("no CRL, no pass");
    assert_sub(&report, Indication::Indeterminate, SubIndication::TryLater);
}

#[test]
fn crl_signed_by_another_key_is_not_used() {
    // The qualified CA's CRL filed as if it were the advanced CA's: its issuer name does not
    // match, so advanced-CA certificates have no CRL and come out TRY_LATER.
    let dir = std::env::temp_dir().join(format!("carimbo-crl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["root.crl", "qualified-ca.crl"] {
        std::fs::copy(pki(&format!("crl/{name}")), dir.join(name)).unwrap();
    }
    let verifier = carimbo::cli::pki_files::load_verifier(&repo().join("seeds/trust"), &dir, None).unwrap();
    let p = payload("p005");
    let r = verifier.verify(&signed_by("p005", &p), &bytes(&p), &opts());
    assert_sub(&r, Indication::Indeterminate, SubIndication::TryLater);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn claimed_signing_time_in_the_future_is_refused() {
    let p = payload("p003");
    let later = now() + chrono::Duration::hours(2);
    let jws = person("p003").sign(&bytes(&p), later).unwrap().to_json();
    let r = refused(&p, jws.as_bytes(), &claimed_only());
    assert_sub(&r, Indication::Indeterminate, SubIndication::SigConstraintsFailure);
    let opts = VerifyOptions { trusted_time: Some(now() - chrono::Duration::hours(1)), now: now(), required_level: None };
    let r = refused(&p, &signed_by("p003", &p), &opts);
    assert_sub(&r, Indication::Indeterminate, SubIndication::SigConstraintsFailure);
}

#[test]
fn malformed_jws_documents_are_format_failures() {
    let p = payload("p003");
    let jws = signed_by("p003", &p);
    let general = json!({"signatures": [serde_json::from_slice::<serde_json::Value>(&jws).unwrap()]}).to_string();
    let mut unknown_crit = header_for("people/p003.pem", "ES256", now());
    unknown_crit["crit"] = json!(["exp"]);
    unknown_crit["exp"] = json!(1);
    let mut no_time = header_for("people/p003.pem", "ES256", now());
    no_time.as_object_mut().unwrap().remove("iat");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("not json", b"{oops".to_vec()),
        ("array", b"[]".to_vec()),
        ("general serialization", general.into_bytes()),
        ("other payload attached", with_field(&jws, "payload", json!("eyJ4IjoxfQ"))),
        ("unprotected alg", with_field(&jws, "header", json!({"alg": "ES256"}))),
        ("unknown crit", raw_jws("people/p003.key.pem", &unknown_crit, &bytes(&p))),
        ("no signing time", raw_jws("people/p003.key.pem", &no_time, &bytes(&p))),
        ("binary", vec![0xff, 0xfe, 0x00]),
    ];
    for (name, input) in cases {
        let r = refused(&p, &input, &opts());
        assert_eq!(r.sub_indication, Some(SubIndication::FormatFailure), "{name}: {}", r.detail);
        assert_eq!(r.indication, Indication::TotalFailed, "{name}");
    }
}

#[test]
fn missing_certificate_reference_gives_no_signing_certificate_found() {
    let p = payload("p003");
    let mut header = header_for("people/p003.pem", "ES256", now());
    header.as_object_mut().unwrap().remove("x5t#S256");
    let r = refused(&p, &raw_jws("people/p003.key.pem", &header, &bytes(&p)), &opts());
    assert_sub(&r, Indication::Indeterminate, SubIndication::NoSigningCertificateFound);
}

#[test]
fn five_thousand_certificate_x5c_is_refused_with_bounded_work() {
    let p = payload("p003");
    let cert = x5c_of("people/p003.pem")[0].clone();
    let mut header = header_for("people/p003.pem", "ES256", now());
    header["x5c"] = json!(vec![cert; 5000]);
    let protected = URL_SAFE_NO_PAD.encode(header.to_string());
    let jws = json!({"protected": protected, "signature": URL_SAFE_NO_PAD.encode([0u8; 64])}).to_string();
    let start = Instant::now();
    let r = refused(&p, jws.as_bytes(), &opts());
    assert!(start.elapsed() < Duration::from_millis(200), "{:?}", start.elapsed());
    assert_sub(&r, Indication::TotalFailed, SubIndication::FormatFailure);

    // Just under the size limits, but more certificates than a chain can have.
    let mut header = header_for("people/p003.pem", "ES256", now());
    header["x5c"] = json!(vec![x5c_of("people/p003.pem")[0].clone(); 11]);
    let jws = raw_jws("people/p003.key.pem", &header, &bytes(&p));
    assert_sub(&refused(&p, &jws, &opts()), Indication::TotalFailed, SubIndication::FormatFailure);
}

/// A DER SEQUENCE nested `depth` times.
fn nested_sequence(depth: usize) -> Vec<u8> {
    let mut der = vec![0x30, 0x00];
    for _ in 0..depth {
        let len = der.len();
        let mut outer = vec![0x30];
        if len < 0x80 {
            outer.push(len as u8);
        } else if len < 0x100 {
            outer.extend([0x81, len as u8]);
        } else {
            outer.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        outer.extend(der);
        der = outer;
    }
    der
}

#[test]
fn deeply_nested_certificate_is_refused_with_bounded_work() {
    let p = payload("p003");
    for depth in [3_000, 50_000] {
        let evil = STANDARD.encode(nested_sequence(depth));
        let mut header = header_for("people/p003.pem", "ES256", now());
        header["x5c"] = json!([evil]);
        header["x5t#S256"] = json!("AAAA");
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let jws = json!({"protected": protected, "signature": URL_SAFE_NO_PAD.encode([0u8; 64])}).to_string();
        let start = Instant::now();
        let r = refused(&p, jws.as_bytes(), &opts());
        assert!(start.elapsed() < Duration::from_millis(200), "{depth}: {:?}", start.elapsed());
        assert_sub(&r, Indication::TotalFailed, SubIndication::FormatFailure);
    }
}
