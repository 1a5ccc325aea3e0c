//! The demo's HSM: with SoftHSM2 installed and no token PIN given, `carimbo serve` sets up the
//! token `carimbo` in its data directory by itself (PINs in owner-only files, never printed),
//! gives every person of the directory a key generated inside it with a QcSSCD certificate,
//! says so in the banner and enforces the device rule; a second start on the same data keeps
//! the token and the keys. SKIPPED where libsofthsm2.so is absent.

use crate::common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use carimbo::hsm::{DEFAULT_MODULE, ProviderBook};

/// The banner of `serve` on `data` (up to its last line), the server then stopped.
fn banner(data: &Path, extra: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_carimbo"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .env_remove("SOFTHSM2_CONF")
        .env_remove("CARIMBO_HSM_PIN")
        .current_dir(common::repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("carimbo starts");
    let mut text = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        text.push_str(&line);
        text.push('\n');
        if line.starts_with("usage figures:") {
            break;
        }
    }
    child.kill().ok();
    let out = child.wait_with_output().unwrap();
    assert!(text.contains("usage figures:"), "the server did not start:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

fn line<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no line {start:?} in:\n{text}"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn serve_sets_up_the_demo_token_once_gives_everyone_a_device_key_and_enforces_the_device_rule() {
    if !Path::new(DEFAULT_MODULE).is_file() {
        eprintln!("SKIPPED: {DEFAULT_MODULE} is absent (apt-get install softhsm2)");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let first = banner(data.path(), &[]);
    let hsm = line(&first, "HSM signing:");
    assert!(hsm.starts_with("HSM signing: on") && hsm.contains("token set up at this start"), "{hsm}");
    let people = carimbo::directory::Directory::load(&common::repo().join("seeds/directory/directory.json")).unwrap();
    let everyone: Vec<String> = people.people().map(|p| p.id.clone()).collect();
    assert!(hsm.contains(&format!("{n} people have their key on it ({n} new)", n = everyone.len())), "{hsm}");
    assert!(line(&first, "device rule").starts_with("device rule: enforced"), "{first}");

    let (user, so) = carimbo::hsm::demo::pin_files(data.path());
    for file in [&user, &so] {
        assert_eq!(mode(file), 0o600, "{} is the owner's alone", file.display());
        let pin = std::fs::read_to_string(file).unwrap();
        assert!(pin.trim().len() >= 16, "a PIN that cannot be guessed");
        assert!(!first.contains(pin.trim()), "the banner never shows a PIN");
    }
    assert_eq!(mode(user.parent().unwrap()), 0o700);
    let book = ProviderBook::load(data.path()).unwrap();
    for person in &everyone {
        let key = book.key_of(person).unwrap_or_else(|e| panic!("{person} has no device key: {e}"));
        let chain = carimbo::pki::cert::parse_pem_certificates(key.chain_pem.as_bytes(), "chain").unwrap();
        let facts = carimbo::pki::cert::CertFacts::from_der(&chain[0]).unwrap();
        assert!(facts.qc_sscd && facts.person_id.as_deref() == Some(person.as_str()), "{person}: a QcSSCD certificate of theirs");
    }

    let second = banner(data.path(), &[]);
    let hsm = line(&second, "HSM signing:");
    assert!(hsm.contains("(0 new)") && !hsm.contains("token set up at this start"), "{hsm}");
    assert_eq!(ProviderBook::load(data.path()).unwrap().people.len(), book.people.len(), "nobody got a second key");

    // A demo that asks for the relaxed rule gets no token set up.
    let other = tempfile::tempdir().unwrap();
    let relaxed = banner(other.path(), &["--device-rule", "relaxed-for-demo"]);
    assert!(line(&relaxed, "device rule").starts_with("device rule RELAXED FOR THE DEMO"), "{relaxed}");
    assert!(!carimbo::hsm::demo::pin_files(other.path()).0.exists(), "no demo token without the enforced rule");
}

#[test]
fn a_token_whose_pin_file_was_lost_is_not_reinitialized_and_the_server_says_why() {
    if !Path::new(DEFAULT_MODULE).is_file() {
        eprintln!("SKIPPED: {DEFAULT_MODULE} is absent (apt-get install softhsm2)");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    banner(data.path(), &[]);
    let (user, _) = carimbo::hsm::demo::pin_files(data.path());
    let keys_before = ProviderBook::load(data.path()).unwrap().people.len();
    std::fs::remove_file(&user).unwrap();
    let again = banner(data.path(), &[]);
    let hsm = line(&again, "HSM signing:");
    assert!(hsm.contains("CARIMBO-E1455") && hsm.contains("relaxed for the demo"), "{hsm}");
    assert!(line(&again, "device rule").starts_with("device rule RELAXED"), "{again}");
    assert!(!user.exists(), "no new PIN was made up for the old token");
    assert_eq!(ProviderBook::load(data.path()).unwrap().people.len(), keys_before, "the published keys stay");
    // Asking for the enforced rule without the PIN stops the server with the reason.
    let out = Command::new(env!("CARGO_BIN_EXE_carimbo"))
        .args(["serve", "--addr", "127.0.0.1:0", "--device-rule", "enforced", "--data"])
        .arg(data.path())
        .env_remove("SOFTHSM2_CONF")
        .env_remove("CARIMBO_HSM_PIN")
        .current_dir(common::repo())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("CARIMBO-E1455") && err.contains("--hsm-pin-file"), "{err}");
}
