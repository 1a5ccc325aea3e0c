//! `carimbo hsm remote add | remove | list`: the administrator names who signs at the CSC
//! service without editing `DATA/hsm/remote.json` by hand; every refused change says why
//! (CARIMBO-E1462, E1459, E1461) and leaves the file as it was.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn carimbo(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_carimbo")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("carimbo runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn book(data: &Path) -> Option<Vec<u8>> {
    std::fs::read(data.join("hsm/remote.json")).ok()
}

#[test]
fn an_administrator_adds_lists_and_removes_a_remote_signer_and_every_bad_change_is_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (code, out, _) = carimbo(&["hsm", "remote", "list", "--data", data]);
    assert_eq!(code, 0);
    assert!(out.contains("no one signs remotely"), "{out}");

    let (code, out, err) = carimbo(&["hsm", "remote", "add", "--data", data, "--person", "p003", "--credential", "cred-p003"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("p003 now signs at the CSC service"), "{out}");
    let mode = std::fs::metadata(dir.path().join("hsm/remote.json")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the book is the owner's only");
    let written = book(dir.path()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(v["people"]["p003"]["credential_id"], "cred-p003");
    let (_, out, _) = carimbo(&["hsm", "remote", "list", "--data", data]);
    assert!(out.contains("p003: remote, credential \"cred-p003\""), "{out}");

    // Each refused change: its code and reason, and the book byte for byte as it was.
    for (args, expect) in [
        (vec!["add", "--person", "p003", "--credential", "another"], "CARIMBO-E1462: p003 already signs remotely"),
        (vec!["add", "--person", "p999", "--credential", "cred"], "CARIMBO-E1459: p999 is not in the directory"),
        (vec!["add", "--person", "p004", "--credential", ""], "CARIMBO-E1462: the credential id must have 1 to 256 bytes"),
        (vec!["add", "--person", "p004", "--credential", " padded"], "CARIMBO-E1462: the credential id holds a control character"),
        (vec!["add", "--person", "p004", "--credential", "line\nbreak"], "CARIMBO-E1462: the credential id holds a control character"),
        (vec!["remove", "--person", "p004"], "CARIMBO-E1462: p004 does not sign remotely"),
    ] {
        let mut full = vec!["hsm", "remote"];
        full.extend(args.iter().copied());
        full.extend(["--data", data]);
        let (code, _, err) = carimbo(&full);
        assert_ne!(code, 0, "{args:?} is refused");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert_eq!(book(dir.path()).as_deref(), Some(written.as_slice()), "{args:?} changed nothing");
    }
    let long = "x".repeat(257);
    let (code, _, err) = carimbo(&["hsm", "remote", "add", "--data", data, "--person", "p004", "--credential", &long]);
    assert_ne!(code, 0);
    assert!(err.contains("CARIMBO-E1462"), "{err}");

    // A damaged book is named and not overwritten.
    let damaged = br#"{"people": {"p003": {"credential_id": "a", "credential_id": "b"}}}"#;
    std::fs::write(dir.path().join("hsm/remote.json"), damaged).unwrap();
    let (code, _, err) = carimbo(&["hsm", "remote", "add", "--data", data, "--person", "p004", "--credential", "cred-p004"]);
    assert_ne!(code, 0);
    assert!(err.contains("CARIMBO-E1461"), "{err}");
    assert_eq!(book(dir.path()).as_deref(), Some(&damaged[..]));
    std::fs::write(dir.path().join("hsm/remote.json"), &written).unwrap();

    let (code, out, err) = carimbo(&["hsm", "remote", "remove", "--data", data, "--person", "p003"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("p003 no longer signs remotely"), "{out}");
    let v: serde_json::Value = serde_json::from_slice(&book(dir.path()).unwrap()).unwrap();
    assert!(v["people"].as_object().unwrap().is_empty(), "{v}");
}
