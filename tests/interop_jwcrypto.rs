//! Interoperability with an independent JOSE library (Python `jwcrypto`): signatures carimbo
//! makes verify there, and signatures jwcrypto makes with a demo key verify in carimbo, for
//! every algorithm carimbo signs with. The Python side is `tests/interop/jwcrypto_interop.py`.
//!
//! Harness-less so the skip line is printed as it is: when `python3` or `jwcrypto` is missing
//! the test says so and passes (`.ci/run` installs jwcrypto, so CI always runs it).

mod common;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use carimbo::pki::report::SignatureLevel;
use carimbo::signing::{JwsAlgorithm, Signer, SigningKey};
use common::*;

fn script() -> PathBuf {
    repo().join("tests/interop/jwcrypto_interop.py")
}

fn python(args: &[&str]) -> Result<std::process::Output, String> {
    Command::new("python3").arg(script()).args(args).output().map_err(|e| format!("python3 cannot be run: {e}"))
}

fn main() -> ExitCode {
    match python(&["check"]) {
        Ok(out) if out.status.success() => {}
        Ok(_) => {
            println!("interop (jwcrypto): SKIPPED — Python package `jwcrypto` is not importable (pip install jwcrypto)");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            println!("interop (jwcrypto): SKIPPED — {e}");
            return ExitCode::SUCCESS;
        }
    }
    let dir = std::env::temp_dir().join(format!("carimbo-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp folder");
    // (person, algorithm): P-256 qualified and advanced, RSA with both paddings, Ed25519.
    let cases = [
        ("p003", JwsAlgorithm::ES256),
        ("p004", JwsAlgorithm::PS256),
        ("p004", JwsAlgorithm::RS256),
        ("p013", JwsAlgorithm::EdDSA),
        ("p005", JwsAlgorithm::ES256),
    ];
    let verifier = verifier();
    let mut failures = Vec::new();
    let mut passed = 0;
    for (id, alg) in cases {
        let p = payload(id);
        let payload_path = dir.join(format!("{id}-{}.payload", alg.name()));
        std::fs::write(&payload_path, bytes(&p)).unwrap();

        // carimbo signs, jwcrypto verifies.
        let key = SigningKey::from_pkcs8_pem(&std::fs::read(pki(&format!("people/{id}.key.pem"))).unwrap()).and_then(|k| k.with_algorithm(alg)).unwrap();
        let chain = carimbo::cli::pki_files::load_pem_certificates(&pki(&format!("people/{id}.pem"))).unwrap();
        let jws = Signer::new(key, &chain).unwrap().sign(&bytes(&p), now()).unwrap();
        let sig_path = dir.join(format!("{id}-{}.carimbo.json", alg.name()));
        std::fs::write(&sig_path, jws.to_json()).unwrap();
        match python(&["verify", payload_path.to_str().unwrap(), sig_path.to_str().unwrap()]) {
            Ok(out) if out.status.success() => passed += 1,
            Ok(out) => failures.push(format!(
                "jwcrypto rejected carimbo's {} signature by {id}: {}{}",
                alg.name(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => failures.push(e),
        }

        // jwcrypto signs, carimbo verifies.
        let iat = now().timestamp().to_string();
        let key_path = pki(&format!("people/{id}.key.pem"));
        let chain_path = pki(&format!("people/{id}.pem"));
        match python(&["sign", payload_path.to_str().unwrap(), key_path.to_str().unwrap(), chain_path.to_str().unwrap(), alg.name(), &iat]) {
            Ok(out) if out.status.success() => {
                let report = carimbo::signing::verify_act(&verifier, &p, Some(&form_data()), &out.stdout, SignatureLevel::Advanced, &opts());
                match report {
                    Ok(v) if v.report().algorithm.as_deref() == Some(alg.name()) => passed += 1,
                    Ok(v) => failures.push(format!("unexpected algorithm {:?}", v.report().algorithm)),
                    Err(r) => failures.push(format!("carimbo rejected jwcrypto's {} signature by {id}: {:?} {}", alg.name(), r.sub_indication, r.detail)),
                }
            }
            Ok(out) => failures.push(format!("jwcrypto could not sign as {id} with {}: {}", alg.name(), String::from_utf8_lossy(&out.stderr))),
            Err(e) => failures.push(e),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("interop (jwcrypto): {passed} of {} exchanges verified (carimbo→jwcrypto and jwcrypto→carimbo; ES256, PS256, RS256, EdDSA)", cases.len() * 2);
    for f in &failures {
        println!("  {f}");
    }
    if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
