//! An auditor's own verifier: `tests/interop/verify_bundle.py`, written from
//! `docs/evidence-bundle.md` alone with Python and jwcrypto, checks bundles carimbo exports
//! (file hashes, the hash chain, payloads against their events, every JWS value, the seal)
//! and refuses tampered ones. Harness-less so the skip line prints as it is: without python3 or
//! jwcrypto the test says so and passes (`.ci/run` installs jwcrypto).

#[path = "common/evidence_case.rs"]
mod evidence_case;

use serde_json::Value;
use std::process::{Command, ExitCode};

fn python(args: &[&std::ffi::OsStr]) -> Result<std::process::Output, String> {
    Command::new("python3")
        .arg(evidence_case::repo().join("tests/interop/verify_bundle.py"))
        .args(args)
        .output()
        .map_err(|e| format!("python3 cannot be run: {e}"))
}

fn main() -> ExitCode {
    match python(&["check".as_ref()]) {
        Ok(out) if out.status.success() => {}
        Ok(_) => {
            println!("evidence interop (python): SKIPPED — `jwcrypto` is not importable (pip install jwcrypto)");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            println!("evidence interop (python): SKIPPED — {e}");
            return ExitCode::SUCCESS;
        }
    }
    let h = evidence_case::Harness::new();
    let long = evidence_case::long_case(&h);
    let oath = evidence_case::oath_case(&h);
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut run = |name: &str, bytes: &[u8], want_ok: bool, want_pointer: &str| {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, bytes).unwrap();
        let out = python(&[path.as_os_str()]).unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let ok = out.status.success() && text.starts_with("OK");
        if ok != want_ok || (!want_ok && !text.starts_with(&format!("FAIL {want_pointer}"))) {
            failures.push(format!("{name}: {text} {}", String::from_utf8_lossy(&out.stderr)));
        } else {
            println!("evidence interop (python): {name}: {text}");
        }
    };
    let long_bytes = h.export(&long, "p022").to_bytes();
    run("long", &long_bytes, true, "");
    run("oath", &h.export(&oath, "p022").to_bytes(), true, "");
    // A restricted diagnosis: in the open with its disclosure, and withheld (commitment only).
    let medical = evidence_case::medical_case(&h);
    let full = h.export(&medical, "p018").to_bytes();
    run("medical-full", &full, true, "");
    let withheld = h.export_withholding(&medical, "p022").to_bytes();
    assert!(!String::from_utf8_lossy(&withheld).contains("K35."), "the withheld bundle holds no diagnosis");
    run("medical-withheld", &withheld, true, "");
    let forged = String::from_utf8_lossy(&full).replacen("\"value\":\"K35.8\"", "\"value\":\"A00\"", 1);
    run("medical-forged-disclosure", forged.as_bytes(), false, "/events/0/body/disclosures/diagnosis_code");
    // Tampered: data edited in the submission, with every hash recomputed.
    let mut v: Value = serde_json::from_slice(&long_bytes).unwrap();
    v["events"][0]["body"]["data"]["reason"] = Value::from("edited");
    let mut prev = "0".repeat(64);
    for e in v["events"].as_array_mut().unwrap() {
        e["prev_hash"] = Value::from(prev.clone());
        let chained =
            serde_json::json!({"case_id": e["case_id"], "seq": e["seq"], "recorded_at": e["recorded_at"], "prev_hash": e["prev_hash"], "body": e["body"]});
        prev = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(serde_json_canonicalizer::to_vec(&chained).unwrap()));
        e["hash"] = Value::from(prev.clone());
    }
    v["head"]["last_hash"] = Value::from(prev);
    run("edited-data", &serde_json_canonicalizer::to_vec(&v).unwrap(), false, "/events/0/body/signature");
    // Tampered: one byte of the last event's hash.
    let mut b = long_bytes.clone();
    let last = serde_json::from_slice::<Value>(&long_bytes).unwrap()["head"]["last_hash"].as_str().unwrap().to_string();
    let at = b.windows(last.len()).rposition(|w| w == last.as_bytes()).unwrap();
    b[at] = if b[at] == b'0' { b'1' } else { b'0' };
    run("changed-byte", &b, false, "");
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("evidence interop (python) failed:\n{}", failures.join("\n"));
        ExitCode::FAILURE
    }
}
