//! Verifying many bundles at once (`carimbo verify` over files and folders): every bundle gets
//! the result it gets alone, whatever the shared cache holds, and the summary names each
//! broken bundle with its first broken place.

use crate::evidence_case;

use carimbo::evidence::archive::{ArchiveOutcome, VerifyCache, verify_archive};
use carimbo::evidence::{VerifyConfig, verify_with};
use evidence_case::{Harness, leave, long_case};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::process::Command;
use std::sync::{Arc, Mutex};

fn edit(bundle: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(bundle).unwrap();
    f(&mut v);
    serde_json_canonicalizer::to_vec(&v).unwrap()
}

/// A text file of the bundle changed, with its hash recomputed as an attacker would.
fn retext(v: &mut Value, file: &str, from: &str, to: &str) {
    let text = v.pointer(&format!("{file}/text")).and_then(Value::as_str).unwrap().replacen(from, to, 1);
    assert!(Some(text.as_str()) != v.pointer(&format!("{file}/text")).and_then(Value::as_str), "{file} holds {from:?}");
    *v.pointer_mut(&format!("{file}/sha256")).unwrap() = Value::from(hex::encode(Sha256::digest(text.as_bytes())));
    *v.pointer_mut(&format!("{file}/text")).unwrap() = Value::from(text);
}

/// Two good bundles of one service, and tampered copies that share most of their material.
fn archive() -> Vec<(String, Vec<u8>)> {
    let h = Harness::new();
    let long = h.export(&long_case(&h), "p022").to_bytes();
    let short_id = h.submit("p005", "absence-and-annual-leave", &leave("a wedding"), "archive-short");
    h.act(&short_id, "p003", "supervisor", carimbo::workflow::Action::Approve);
    let short = h.export(&short_id, "p003").to_bytes();
    vec![
        ("long".into(), long.clone()),
        ("short".into(), short.clone()),
        ("trust list edited".into(), edit(&short, |v| retext(v, "/pki/trust_list", "\"level\": \"qualified\"", "\"level\": \"advanced\""))),
        ("workflow edited".into(), edit(&short, |v| retext(v, "/definitions/workflow", "\"supervisor\"", "\"supervisar\""))),
        (
            "a CRL dropped".into(),
            edit(&long, |v| {
                v["pki"]["crls"].as_array_mut().unwrap().pop();
            }),
        ),
        ("long again".into(), long.clone()),
        ("not JSON".into(), b"{\"format\": ".to_vec()),
        // The same bundle written another way: other bytes, the same content; it passes.
        ("short, pretty-printed".into(), serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&short).unwrap()).unwrap()),
        // One byte of a shared member changed, its declared hash left: the file check fails even
        // though the good member is in the cache by then.
        (
            "form text changed, hash kept".into(),
            edit(&short, |v| {
                let text = v["definitions"]["form"]["text"].as_str().unwrap().replacen("\"title\"", "\"titlE\"", 1);
                v["definitions"]["form"]["text"] = Value::from(text);
            }),
        ),
        // The shared members byte for byte those of a good bundle (taken from the cache), an
        // event changed: the chain check still fails.
        ("shared members intact, an event renumbered".into(), edit(&short, |v| v["events"][1]["seq"] = Value::from(5))),
        ("shared members intact, exported by another".into(), edit(&short, |v| v["exported_by"] = Value::from("p999"))),
        ("a repeated name in the definitions".into(), splice(&short, "\"definitions\":{\"form\":", "\"definitions\":{\"form\":null,\"form\":")),
        // A known member's bytes followed by a stray brace: not JSON, however well its start matches.
        ("a stray brace after the definitions".into(), splice(&short, ",\"device_rule\":", "},\"device_rule\":")),
        ("a repeated top-level name".into(), splice(&long, "{\"case_id\":", "{\"case_id\":\"other\",\"case_id\":")),
    ]
}

/// The bundle's bytes with the first `from` replaced by `to`.
fn splice(bundle: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = std::str::from_utf8(bundle).unwrap();
    assert!(text.contains(from), "the bundle holds {from:?}");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn each_bundle_of_an_archive_gets_the_result_it_gets_alone_whatever_the_cache_holds() {
    let bundles = archive();
    let names: Vec<String> = bundles.iter().map(|(n, _)| n.clone()).collect();
    let now = chrono::Utc::now();
    let alone: Vec<_> = bundles.iter().map(|(_, b)| verify_with(b, &VerifyConfig { pins: vec![], now, cache: None, device_rule: None })).collect();
    let passed: Vec<&str> = names.iter().zip(&alone).filter(|(_, r)| r.passed).map(|(n, _)| n.as_str()).collect();
    assert_eq!(passed, ["long", "short", "long again", "short, pretty-printed"], "the good bundles pass, the tampered ones do not");
    let code = |name: &str| alone[names.iter().position(|n| n == name).unwrap()].first_failure.as_ref().map(|f| f.code);
    assert_eq!(code("form text changed, hash kept"), Some("CARIMBO-E0903"));
    assert_eq!(code("a repeated name in the definitions"), Some("CARIMBO-E0120"));
    assert_eq!(code("a repeated top-level name"), Some("CARIMBO-E0120"));
    assert_eq!(code("a stray brace after the definitions"), Some("CARIMBO-E0901"));
    assert_eq!(code("shared members intact, an event renumbered"), Some("CARIMBO-E0906"));
    assert!(code("shared members intact, exported by another").is_some());
    // Twice over the same cache, on two threads: the second round meets a warm cache.
    let cache = Arc::new(VerifyCache::default());
    for round in 0..2 {
        let got = Mutex::new(vec![None; bundles.len()]);
        let cfg = VerifyConfig { pins: vec![], now, cache: Some(cache.clone()), device_rule: None };
        let load = |name: &str| Ok(bundles.iter().find(|(n, _)| n == name).unwrap().1.clone());
        verify_archive(&names, &cfg, 2, load, |i, outcome| {
            let ArchiveOutcome::Verified(r) = outcome else { panic!("{} is readable", names[i]) };
            got.lock().unwrap()[i] = Some(r);
        });
        for (i, r) in got.into_inner().unwrap().into_iter().enumerate() {
            let r = r.unwrap_or_else(|| panic!("{} was verified", names[i]));
            let a = &alone[i];
            assert_eq!(r.passed, a.passed, "round {round}, {}: {}", names[i], r.to_text());
            let place = |x: &carimbo::evidence::VerificationReport| x.first_failure.as_ref().map(|f| (f.code, f.pointer.clone(), f.message.clone()));
            assert_eq!(place(&r), place(a), "round {round}, {}", names[i]);
            assert_eq!(r.signatures.len(), a.signatures.len(), "{}", names[i]);
        }
        // The good bundles' definitions and validation material are kept, so the second round
        // takes them from the cache for every bundle that holds them byte for byte.
        assert!(cache.members_kept() >= 2, "{cache:?}");
    }
}

fn carimbo(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_carimbo")).args(args).output().expect("carimbo runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn carimbo_verify_over_folders_summarises_and_names_each_broken_bundle() {
    let bundles = archive();
    let dir = tempfile::tempdir().unwrap();
    let year = dir.path().join("2026");
    std::fs::create_dir_all(year.join("december")).unwrap();
    let file = |i: usize, sub: &str| year.join(sub).join(format!("{:02}-{}.json", i, bundles[i].0.replace(' ', "-")));
    std::fs::write(file(0, ""), &bundles[0].1).unwrap();
    std::fs::write(file(1, "december"), &bundles[1].1).unwrap();
    std::fs::write(file(3, "december"), &bundles[3].1).unwrap();
    std::fs::write(file(6, ""), &bundles[6].1).unwrap();
    std::fs::write(year.join("notes.txt"), "not a bundle").unwrap();
    let y = year.to_str().unwrap();

    let (code, out, err) = carimbo(&["verify", y]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("4 bundles verified on "), "{out}");
    assert!(out.contains(": 2 passed, 2 failed;"), "{out}");
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAILED ")).collect();
    assert_eq!(failed.len(), 2, "{out}");
    let line = |name: &str| *failed.iter().find(|l| l.contains(name)).unwrap_or_else(|| panic!("{name} is named: {out}"));
    assert!(line("03-workflow-edited.json").contains("(case ") && line("03-workflow-edited.json").contains("[CARIMBO-E0904]"), "{out}");
    assert!(line("06-not-JSON.json").contains("[CARIMBO-E0901] at byte"), "{out}");

    let (code, out, _) = carimbo(&["verify", "--json", "--jobs", "1", y]);
    assert_eq!(code, 1);
    let summary: Value = serde_json::from_str(&out).expect("the summary is JSON");
    assert_eq!((summary["bundles"].as_u64(), summary["passed"].as_u64(), summary["threads"].as_u64()), (Some(4), Some(2), Some(1)));
    assert!(summary["signatures"].as_u64().unwrap() > 10, "{summary}");
    let codes: Vec<&str> = summary["failed"].as_array().unwrap().iter().filter_map(|f| f["code"].as_str()).collect();
    assert_eq!(codes, ["CARIMBO-E0901", "CARIMBO-E0904"], "sorted by file: {summary}");

    // Only good bundles, given as two files: every one passes, exit 0.
    let (code, out, err) = carimbo(&["verify", file(0, "").to_str().unwrap(), file(1, "december").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": 2 passed, 0 failed;"), "{out}");

    // Nothing to verify, or nothing there: a clear error, exit 2.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, err) = carimbo(&["verify", empty.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("no bundle (*.json) in"), "{err}");
    let (code, _, err) = carimbo(&["verify", y, dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read") && err.contains("missing"), "{err}");
}
