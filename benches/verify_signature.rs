//! Verifications per second of a full advanced/qualified ES256 JAdES signature with the chain
//! cached, beside ring's raw ES256 verify rate for the same signature, measured in the same
//! run. `cargo bench --bench verify_signature`. Target: full ≥ 0.8 × raw.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carimbo::cli::pki_files::load_verifier;
use carimbo::signing::{FormRef, Signer, SigningPayload, VerifyOptions};
use chrono::{DateTime, Utc};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

fn rate(mut f: impl FnMut(), budget: Duration) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            f();
        }
        n += 64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pki = repo.join("seeds/pki");
    let verifier = load_verifier(&repo.join("seeds/trust"), &pki.join("crl"), None).expect("demo trust list");
    let now: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
    let payload = SigningPayload {
        case: "case-2026-000123".into(),
        form: FormRef { id: "absence-and-annual-leave".into(), version: "1".into(), hash: "sha256:5b1f".into() },
        step: "supervisor-approval".into(),
        action: "approve".into(),
        data_hash: "sha256:0c5e".into(),
        previous_event_hash: "sha256:9a0d".into(),
        signer: "p003".into(),
        time: now,
    };
    let bytes = payload.canonical_bytes().unwrap();
    let signer = Signer::from_pem(&std::fs::read(pki.join("people/p003.key.pem")).unwrap(), &std::fs::read(pki.join("people/p003.pem")).unwrap()).unwrap();
    let jws = signer.sign(&bytes, now).unwrap();
    let jws_json = jws.to_json().into_bytes();
    let opts = VerifyOptions { trusted_time: Some(now), now, required_level: None };
    let first = verifier.verify(&jws_json, &bytes, &opts);
    assert!(first.passed(), "{first:?}");

    // The raw operation: the same ES256 signature over the same JWS signing input.
    let input = format!("{}.{}", jws.protected, URL_SAFE_NO_PAD.encode(&bytes));
    let sig = URL_SAFE_NO_PAD.decode(&jws.signature).unwrap();
    let leaf = carimbo::cli::pki_files::load_pem_certificates(&pki.join("people/p003.pem")).unwrap();
    let facts = carimbo::pki::CertFacts::from_der(&leaf[0]).unwrap();
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, facts.public_key.clone());
    assert!(key.verify(input.as_bytes(), &sig).is_ok());

    // Alternate short rounds so both rates see the same machine conditions.
    let (mut full, mut raw) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        raw.push(rate(|| black_box(key.verify(black_box(input.as_bytes()), black_box(&sig))).unwrap(), Duration::from_millis(400)));
        full.push(rate(|| assert!(black_box(verifier.verify(black_box(&jws_json), black_box(&bytes), &opts)).passed()), Duration::from_millis(400)));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (full, raw) = (median(&mut full), median(&mut raw));
    println!("ES256 raw ring verify:                 {raw:>10.0} verifications/s");
    println!("ES256 full JAdES verify, chain cached: {full:>10.0} verifications/s");
    println!("ratio full / raw: {:.2} (target ≥ 0.80)", full / raw);
}
