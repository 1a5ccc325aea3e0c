//! The administrators' signing-keys page: give a person a key generated in the HSM (certificate
//! with QcSSCD, published), refuse a second one, revoke it only with "I confirm" (a new CRL;
//! an act signed before still verifies), give a new one after; every change recorded with who
//! made it; other roles refused; with the HSM off, nothing can change. SKIPPED without SoftHSM2
//! (except the checks that need no HSM).

use crate::common;
use crate::hsm_signing::{PIN, TOKEN, hsm, pin};

use carimbo::hsm::{DEFAULT_MODULE, HsmProvider, ProviderBook};
use chrono::Utc;
use common::server::{Client, TestServer, leave};
use serde_json::json;

fn page_session(s: &TestServer, person: &str) -> Client {
    s.login(person).by_cookie()
}

/// Posts the keys page's form as a browser does.
fn post(c: &Client, fields: &[(&str, &str)]) -> (u16, String) {
    let csrf = c.csrf.clone().expect("a page session");
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    let body: String = all.iter().map(|(k, v)| format!("{k}={}", v.replace(' ', "+"))).collect::<Vec<_>>().join("&");
    let r = c.request("POST", "/admin/keys?lang=en", Some(body.as_bytes()), &[("content-type", "application/x-www-form-urlencoded")]);
    (r.status, r.body.as_str().unwrap_or_default().to_string())
}

fn row_state(html: &str, person: &str) -> String {
    let at = html.find(&format!(r#"data-person="{person}""#)).unwrap_or_else(|| panic!("no row for {person}"));
    let rest = &html[at..];
    let from = rest.find(r#"data-state=""#).unwrap() + 12;
    rest[from..from + rest[from..].find('"').unwrap()].to_string()
}

fn book(s: &TestServer) -> ProviderBook {
    ProviderBook::load(&s.state.paths.data).unwrap()
}

#[test]
fn an_administrator_gives_revokes_and_replaces_a_key_on_the_hsm_from_the_keys_page() {
    let Some(hsm) = hsm() else {
        eprintln!("SKIPPED: {DEFAULT_MODULE} is absent (apt-get install softhsm2)");
        return;
    };
    let s = TestServer::start_enforced_with(|st| st.hsm = Some(HsmProvider::new(hsm.clone(), pin(PIN), &st.paths.data).with_token(TOKEN)));
    let admin = page_session(&s, "p032");
    let shown = admin.get("/admin/keys?lang=en");
    assert_eq!(shown.status, 200);
    let html = shown.body.as_str().unwrap().to_string();
    assert!(html.contains("HSM signing: on") && html.contains("signs for nobody"), "{html}");
    assert_eq!(row_state(&html, "p003"), "none");
    assert_eq!(page_session(&s, "p005").get("/admin/keys").status, 403, "staff may not see the keys page");
    let (status, _) = post(&page_session(&s, "p003"), &[("person", "p003"), ("action", "issue")]);
    assert_eq!(status, 403, "nor give themselves a key");

    let (status, html) = post(&admin, &[("person", "p003"), ("action", "issue")]);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"id="key-result""#) && html.contains("Give a key on the HSM"), "{html}");
    assert_eq!(row_state(&html, "p003"), "in-use");
    let first = book(&s).key_of("p003").unwrap().clone();
    assert_eq!(first.token, TOKEN);
    let chain = carimbo::pki::cert::parse_pem_certificates(first.chain_pem.as_bytes(), "chain").unwrap();
    let facts = carimbo::pki::cert::CertFacts::from_der(&chain[0]).unwrap();
    assert!(facts.qc_sscd && facts.person_id.as_deref() == Some("p003"));

    // A second key while one is in use is refused; nothing changes.
    let (status, html) = post(&admin, &[("person", "p003"), ("action", "issue")]);
    assert_eq!(status, 422);
    assert!(html.contains("CARIMBO-E1453") && html.contains("Nothing changed"), "{html}");
    assert_eq!(book(&s).key_of("p003").unwrap(), &first);

    // p003 signs an approval on it with their own code.
    let sup = s.login("p003");
    assert_eq!(sup.post("/api/v1/me/totp", &json!({})).status, 200);
    assert_eq!(sup.post("/api/v1/me/totp/confirm", &json!({"code": s.totp_now("p003")})).status, 204);
    let id = s.login("p005").submit_ok("absence-and-annual-leave", &leave(1), "keys-page-1");
    let code = s.state.accounts.next_totp_for_tests("p003", Utc::now()).unwrap();
    let r = sup.post("/api/v1/acts/batch", &json!({"hsm": [{"case": id, "step": "supervisor", "action": "approve"}], "totp": code}));
    assert_eq!((r.status, r.body["done"].as_u64()), (200, Some(1)), "{}", r.body);

    // Revoking asks for "I confirm".
    let (status, html) = post(&admin, &[("person", "p003"), ("action", "revoke")]);
    assert_eq!(status, 422);
    assert!(html.contains("I confirm"), "{html}");
    assert!(book(&s).key_of("p003").is_ok(), "not revoked");
    let (status, html) = post(&admin, &[("person", "p003"), ("action", "revoke"), ("confirm", "yes")]);
    assert_eq!(status, 200, "{html}");
    assert_eq!(row_state(&html, "p003"), "revoked");
    assert_eq!(book(&s).key_of("p003").unwrap_err().code(), "CARIMBO-E1458");
    assert!(s.state.paths.data.join("crl/qualified-ca.crl").is_file(), "a new CRL");
    let e = sup.get(&format!("/api/v1/cases/{id}/evidence"));
    let report = carimbo::evidence::verify(&serde_json::to_vec(&e.body).unwrap(), Utc::now());
    assert!(report.passed, "an act signed before the revocation still verifies: {}", serde_json::to_string_pretty(&report).unwrap());

    // A new key replaces the revoked one.
    let (status, html) = post(&admin, &[("person", "p003"), ("action", "issue")]);
    assert_eq!(status, 200, "{html}");
    let second = book(&s).key_of("p003").unwrap().clone();
    assert!(second.key_label != first.key_label && second.serial != first.serial);
    let (status, _) = post(&admin, &[("person", "p003"), ("action", "rotate"), ("confirm", "yes")]);
    assert_eq!(status, 200);
    let third = book(&s).key_of("p003").unwrap().clone();
    assert!(third.serial != second.serial && book(&s).revoked.iter().any(|(serial, _)| *serial == second.serial), "rotation revokes the old one");

    // Every change is recorded with who made it, for the administrator's eyes only.
    let log = s.state.paths.data.join("hsm/changes.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let actions: Vec<&str> = lines.iter().map(|l| l["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["issue", "revoke", "issue", "rotate"]);
    assert!(lines.iter().all(|l| l["by"] == "p032" && l["person"] == "p003"));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&log).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn the_keys_page_refuses_bad_requests_and_changes_nothing() {
    // No HSM needed: a server with HSM signing off.
    let s = TestServer::start();
    let admin = page_session(&s, "p032");
    let html = admin.get("/admin/keys?lang=en").body.as_str().unwrap().to_string();
    assert!(html.contains("HSM signing: off") && !html.contains(r#"name="action""#), "nothing to do while nobody has a key and the HSM is off: {html}");
    let (status, html) = post(&admin, &[("person", "p003"), ("action", "issue")]);
    assert_eq!(status, 422);
    assert!(html.contains("HSM signing is off: no key can be given"), "{html}");
    let wrong =
        admin.request("POST", "/admin/keys", Some(b"csrf=not-the-token&person=p003&action=issue"), &[("content-type", "application/x-www-form-urlencoded")]);
    assert_eq!(wrong.status, 403, "a forged form is refused");
    assert!(book(&s).people.is_empty(), "nothing was published");
    // A key published before is still revoked with the HSM off (its holder left).
    let mut published = book(&s);
    let key = carimbo::hsm::DeviceKey { token: "carimbo".into(), key_label: "p012".into(), serial: 0x5eed, chain_pem: String::new(), revoked_at: None };
    published.people.insert("p012".into(), key);
    published.save(&s.state.paths.data).unwrap();
    let html = admin.get("/admin/keys?lang=en").body.as_str().unwrap().to_string();
    assert!(
        html.contains(r#"value="revoke""#) && !html.contains(r#"value="rotate""#) && !html.contains(r#"value="issue""#),
        "only revoking is offered: {html}"
    );
    let (status, html) = post(&admin, &[("person", "p012"), ("action", "revoke"), ("confirm", "yes")]);
    assert_eq!(status, 200, "{html}");
    assert_eq!(book(&s).key_of("p012").unwrap_err().code(), "CARIMBO-E1458");
    assert!(s.state.paths.data.join("crl/qualified-ca.crl").is_file(), "the CA's new CRL");
    for zh in [admin.get("/admin/keys?lang=zh"), admin.get("/admin/keys?lang=pt")] {
        assert_eq!(zh.status, 200);
    }
    let Some(hsm) = hsm() else { return };
    let on = TestServer::start_enforced_with(|st| st.hsm = Some(HsmProvider::new(hsm.clone(), pin(PIN), &st.paths.data).with_token(TOKEN)));
    let admin = page_session(&on, "p032");
    for (fields, says) in [
        (&[("person", "nobody"), ("action", "issue")][..], "No such person"),
        (&[("person", "p003"), ("action", "delete")][..], "Unknown action"),
        (&[("person", "p003"), ("action", "rotate"), ("confirm", "yes")][..], "CARIMBO-E1457"),
        (&[("person", "p003"), ("action", "revoke"), ("confirm", "yes")][..], "CARIMBO-E1457"),
    ] {
        let (status, html) = post(&admin, fields);
        assert_eq!(status, 422, "{fields:?}");
        assert!(html.contains(says), "{fields:?}: {html}");
    }
    assert!(book(&on).people.is_empty(), "nothing was published");
}
