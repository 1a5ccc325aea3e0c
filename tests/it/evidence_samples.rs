//! The test vectors in `docs/evidence-samples/` give the results `expected.json` declares, with
//! `carimbo verify` and with the independent Python verifier (`tests/interop/verify_bundle.py`,
//! when python3 and jwcrypto are there). Regenerate them with
//! `cargo run --example evidence_samples -- docs/evidence-samples`.

use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/evidence-samples")
}

fn expected() -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&std::fs::read(dir().join("expected.json")).expect("docs/evidence-samples/expected.json")).unwrap();
    doc["samples"].as_array().unwrap().clone()
}

#[test]
fn every_sample_bundle_gives_its_expected_result() {
    let samples = expected();
    assert!(samples.len() >= 10, "{samples:?}");
    assert!(samples.iter().any(|s| s["passed"] == true) && samples.iter().any(|s| s["passed"] == false));
    for s in samples {
        let file = s["file"].as_str().unwrap();
        let bytes = std::fs::read(dir().join(file)).unwrap();
        let report = carimbo::evidence::verify(&bytes, chrono::Utc::now());
        assert_eq!(report.passed, s["passed"] == true, "{file}: {}", report.to_text());
        if let Some(f) = &report.first_failure {
            assert_eq!((f.code, f.pointer.as_str()), (s["code"].as_str().unwrap(), s["pointer"].as_str().unwrap()), "{file}: {}", f.message);
        }
    }
}

#[test]
fn the_independent_verifier_agrees_on_every_sample() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/verify_bundle.py");
    match std::process::Command::new("python3").arg(&script).arg("check").status() {
        Ok(s) if s.success() => {}
        _ => {
            println!("evidence samples (python): SKIPPED — python3 with jwcrypto is not available (pip install jwcrypto)");
            return;
        }
    }
    for s in expected() {
        let file = s["file"].as_str().unwrap();
        let out = std::process::Command::new("python3").arg(&script).arg(dir().join(file)).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.success(), s["passed"] == true, "{file}: {text}");
        println!("evidence samples (python): {file}: {}", text.trim());
    }
}
