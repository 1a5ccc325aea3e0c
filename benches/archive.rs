//! Archive verification: an auditor checking a year of records. `cargo bench --bench archive`
//! generates `CARIMBO_BENCH_BUNDLES` (default 10,000) signed leave cases on a temporary sled
//! store (a submission and the supervisor's approval each, with real signatures), exports their
//! evidence bundles, then verifies all of them on every core with one shared cache, as
//! `carimbo verify FOLDER` does. Printed beside it, in the same run: one bundle verified alone
//! (its own verifier, no cache), and ring's raw ES256 verify rate on this machine.

#[path = "../tests/common/evidence_case.rs"]
mod evidence_case;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carimbo::evidence::archive::{ArchiveOutcome, VerifyCache, verify_archive};
use carimbo::evidence::{VerifyConfig, verify_with};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::var("CARIMBO_BENCH_BUNDLES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let h = evidence_case::Harness::new();
    let started = Instant::now();
    let mut bundles = Vec::with_capacity(n);
    for i in 0..n {
        let id = h.submit("p005", "absence-and-annual-leave", &evidence_case::leave(&format!("archive case {i}")), &format!("archive-{i}"));
        h.act(&id, "p003", "supervisor", carimbo::workflow::Action::Approve);
        bundles.push(h.export(&id, "p003").to_bytes());
        if (i + 1) % 1000 == 0 {
            eprintln!("… {} bundles generated", i + 1);
        }
    }
    let bytes: usize = bundles.iter().map(Vec::len).sum();
    println!("generated {n} bundles ({:.1} MB) in {:.1} s", bytes as f64 / 1e6, started.elapsed().as_secs_f64());
    let first: serde_json::Value = serde_json::from_slice(&bundles[0]).unwrap();
    let parts: Vec<String> =
        first.as_object().unwrap().iter().map(|(k, v)| format!("{k} {:.1}", serde_json::to_vec(v).unwrap().len() as f64 / 1000.0)).collect();
    println!("one bundle, kB per member: {}", parts.join(", "));

    // One bundle alone, as `carimbo verify FILE` does it: median of 30.
    let mut alone: Vec<f64> = (0..30)
        .map(|_| {
            let t = Instant::now();
            let r = verify_with(&bundles[0], &VerifyConfig { pins: vec![], now: chrono::Utc::now(), cache: None, device_rule: None });
            assert!(r.passed, "{}", r.to_text());
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    alone.sort_by(|a, b| a.total_cmp(b));
    let per_bundle = verify_with(&bundles[0], &VerifyConfig { pins: vec![], now: chrono::Utc::now(), cache: None, device_rule: None }).signatures.len();
    println!(
        "one bundle alone ({per_bundle} signatures, own verifier): median {:.2} ms ({:.0} signatures/s on one core)",
        alone[15],
        per_bundle as f64 / (alone[15] / 1000.0)
    );

    // The archive, three runs, each with a fresh cache.
    let names: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    for run in 1..=3 {
        let cfg = VerifyConfig { pins: vec![], now: chrono::Utc::now(), cache: Some(Arc::new(VerifyCache::default())), device_rule: None };
        let (signatures, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let t = Instant::now();
        verify_archive(
            &names,
            &cfg,
            threads,
            |name| Ok(bundles[name.parse::<usize>().unwrap()].clone()),
            |_, outcome| match outcome {
                ArchiveOutcome::Verified(r) if r.passed => {
                    signatures.fetch_add(r.signatures.len(), Ordering::Relaxed);
                }
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            },
        );
        let secs = t.elapsed().as_secs_f64();
        let s = signatures.load(Ordering::Relaxed);
        assert_eq!(failed.load(Ordering::Relaxed), 0, "every generated bundle verifies");
        println!(
            "archive run {run}: {n} bundles, {s} signatures on {threads} threads in {secs:.2} s: {:.0} signatures/s, {:.0} bundles/s",
            s as f64 / secs,
            n as f64 / secs
        );
    }

    // ring's raw ES256 verify on this machine, for scale: one core, and the cores together.
    let signer = carimbo::signing::Signer::from_pem(
        &std::fs::read(evidence_case::seeds().join("pki/people/p003.key.pem")).unwrap(),
        &std::fs::read(evidence_case::seeds().join("pki/people/p003.pem")).unwrap(),
    )
    .unwrap();
    let jws = signer.sign(b"{\"a\":1}", chrono::Utc::now()).unwrap();
    let input = format!("{}.{}", jws.protected, URL_SAFE_NO_PAD.encode(b"{\"a\":1}"));
    let sig = URL_SAFE_NO_PAD.decode(&jws.signature).unwrap();
    let leaf = carimbo::cli::pki_files::load_pem_certificates(&evidence_case::seeds().join("pki/people/p003.pem")).unwrap();
    let key = carimbo::pki::CertFacts::from_der(&leaf[0]).unwrap().public_key;
    let raw = |budget: Duration| {
        let k = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.clone());
        let t = Instant::now();
        let mut count = 0u64;
        while t.elapsed() < budget {
            assert!(k.verify(input.as_bytes(), &sig).is_ok());
            count += 1;
        }
        count as f64 / t.elapsed().as_secs_f64()
    };
    let one = raw(Duration::from_secs(1));
    let all: f64 =
        std::thread::scope(|s| (0..threads).map(|_| s.spawn(|| raw(Duration::from_secs(1)))).collect::<Vec<_>>().into_iter().map(|j| j.join().unwrap()).sum());
    println!("ring raw ES256 verify: {one:.0}/s on one core, {all:.0}/s on {threads} threads");
}
