//! The trust list as a signed history: bad entries refused with their codes and nothing
//! changed, the accreditation question asked of the history at a time, and the administrators'
//! API and page, whose changes survive a restart.

use crate::common;

use carimbo::pki::history::{Change, HistoryError, MemberStatus, ServiceType, TrustEntry, TrustHistory, sign_entry};
use carimbo::pki::report::SignatureLevel;
use common::server::TestServer;
use common::*;
use serde_json::{Value, json};

fn withdraw(member: &str) -> Change {
    Change::Status { member: member.into(), status: MemberStatus::Withdrawn, level: None }
}

fn entry(h: &TrustHistory, at: &str, change: Change) -> TrustEntry {
    sign_entry(Some(h), &trust_operator(), t(at), change).unwrap()
}

#[test]
fn the_history_answers_who_was_accredited_at_which_level_at_a_time() {
    let h = trust_history_with(vec![
        ("2026-03-01T00:00:00Z", Change::Status { member: "qualified-ca".into(), status: MemberStatus::Suspended, level: None }),
        ("2026-04-01T00:00:00Z", Change::Status { member: "qualified-ca".into(), status: MemberStatus::Granted, level: Some(SignatureLevel::Qualified) }),
        ("2026-06-01T00:00:00Z", withdraw("qualified-ca")),
    ]);
    let at = |s| h.accreditation_at("qualified-ca", t(s));
    assert_eq!(at("2024-12-31T23:59:59Z"), None, "not yet listed");
    assert_eq!(at("2025-06-01T00:00:00Z"), Some(SignatureLevel::Qualified));
    assert_eq!(at("2026-03-15T00:00:00Z"), None, "suspended");
    assert_eq!(at("2026-05-31T23:59:59Z"), Some(SignatureLevel::Qualified));
    assert_eq!(at("2026-06-01T00:00:00Z"), None, "withdrawn");
    assert_eq!(h.accreditation_at("advanced-ca", t("2026-01-01T00:00:00Z")), None, "never accredited");
    assert_eq!(h.accreditation_at("nobody", t("2026-01-01T00:00:00Z")), None);
    // The periods of the older format are what the history folds to.
    let periods = h.member("qualified-ca").unwrap().periods();
    assert_eq!(periods.len(), 2);
    assert_eq!((periods[0].1, periods[1].1), (Some(t("2026-03-01T00:00:00Z")), Some(t("2026-06-01T00:00:00Z"))));
}

/// Each bad entry with the code it is refused with; the history it was offered to is unchanged.
#[test]
fn bad_entries_are_refused_with_their_code_and_change_nothing() {
    let h = demo_trust_history();
    let good = entry(&h, "2026-01-01T00:00:00Z", withdraw("advanced-ca"));
    let mut unsigned = good.clone();
    unsigned.signature.clear();
    let staff = sign_entry(Some(&h), &person("p001"), t("2026-01-01T00:00:00Z"), withdraw("advanced-ca")).unwrap();
    let mut tampered = good.clone();
    tampered.payload.change = withdraw("qualified-ca");
    let early = entry(&h, "2024-06-01T00:00:00Z", withdraw("advanced-ca"));
    let future = entry(&h, "2030-01-01T00:00:00Z", withdraw("advanced-ca"));
    let mut wrong_seq = good.clone();
    wrong_seq.payload.seq += 1;
    let mut wrong_prev = good.clone();
    wrong_prev.payload.prev = carimbo::pki::history::GENESIS_PREV.into();
    let root = carimbo::cli::pki_files::load_pem_certificates(&repo().join("seeds/trust/root.pem")).unwrap().remove(0);
    let again = entry(
        &h,
        "2026-01-01T00:00:00Z",
        Change::AddMember {
            member: "qualified-ca".into(),
            service_type: ServiceType::CertificationEntity,
            name: carimbo::pki::demo::service_seal_name(),
            certificate: carimbo::pki::history::certificate_text(&root),
        },
    );
    let same_cert = entry(
        &h,
        "2026-01-01T00:00:00Z",
        Change::AddMember {
            member: "root-again".into(),
            service_type: ServiceType::TrustAnchor,
            name: carimbo::pki::demo::service_seal_name(),
            certificate: carimbo::pki::history::certificate_text(&root),
        },
    );
    let unknown = entry(&h, "2026-01-01T00:00:00Z", withdraw("eu-tsa"));
    let no_level = entry(&h, "2026-01-01T00:00:00Z", Change::Status { member: "advanced-ca".into(), status: MemberStatus::Granted, level: None });
    let bad_oid = entry(&h, "2026-01-01T00:00:00Z", Change::PolicyAdded { member: "qualified-ca".into(), oid: "not.an.oid".into() });
    let cases: Vec<(&str, TrustEntry, &str)> = vec![
        ("unsigned", unsigned, "CARIMBO-E1231"),
        ("signed by a staff member", staff, "CARIMBO-E1232"),
        ("changed after signing", tampered, "CARIMBO-E1233"),
        ("dated before the previous entry", early, "CARIMBO-E1234"),
        ("dated in the future", future, "CARIMBO-E1234"),
        ("with the wrong seq", wrong_seq, "CARIMBO-E1234"),
        ("with the wrong prev", wrong_prev, "CARIMBO-E1234"),
        ("adding a member twice", again, "CARIMBO-E1235"),
        ("adding a member's certificate twice", same_cert, "CARIMBO-E1235"),
        ("naming an unknown member", unknown, "CARIMBO-E1236"),
        ("granting a CA with no level", no_level, "CARIMBO-E1237"),
        ("with a malformed OID", bad_oid, "CARIMBO-E1237"),
    ];
    for (what, e, code) in cases {
        let err: HistoryError = h.appended(e, now()).expect_err(what);
        assert_eq!(err.code(), code, "{what}: {err}");
        assert!(err.to_string().starts_with(code), "{what}: the message carries its code: {err}");
    }
    assert_eq!(h.entries().len(), demo_trust_history().entries().len(), "nothing changed");
    assert!(h.appended(good, now()).is_ok(), "the good entry still fits");
}

#[test]
fn a_document_with_unknown_or_repeated_members_is_refused() {
    let text = std::fs::read_to_string(repo().join("seeds/trust/trust-list.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["entries"][1]["payload"]["change"]["comment"] = json!("x");
    let err = TrustHistory::from_slice(&serde_json::to_vec(&v).unwrap(), now()).unwrap_err();
    assert_eq!(err.code(), "CARIMBO-E1230", "{err}");
    assert!(err.to_string().contains("comment"), "{err}");
    let repeated = text.replacen("\"format\": \"carimbo-trust-list\",", "\"format\": \"carimbo-trust-list\", \"format\": \"carimbo-trust-list\",", 1);
    let err = TrustHistory::from_slice(repeated.as_bytes(), now()).unwrap_err();
    assert!(err.code() == "CARIMBO-E1230" && err.to_string().contains("appears twice"), "{err}");
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["entries"][2]["payload"]["at"] = json!("2025-01-01T08:00:00+08:00");
    let err = TrustHistory::from_slice(&serde_json::to_vec(&v).unwrap(), now()).unwrap_err();
    assert_eq!(err.code(), "CARIMBO-E1237", "a time with an offset: {err}");
}

#[test]
fn the_operator_certificate_must_carry_the_trust_list_signing_usage() {
    // The demo list's first entry, re-signed by a staff member: not an operator.
    let h = demo_trust_history();
    let first = &h.entries()[0];
    let forged = sign_entry(None, &person("p001"), t(&first.payload.at), first.payload.change.clone()).unwrap();
    let doc = carimbo::pki::history::TrustListDocument { format: "carimbo-trust-list".into(), version: 2, name: "forged".into(), entries: vec![forged] };
    let err = TrustHistory::verify(doc, now()).unwrap_err();
    assert_eq!(err.code(), "CARIMBO-E1238", "{err}");
    assert!(err.to_string().contains("id-tsl-kp-tslSigning"), "{err}");
}

#[test]
fn administrators_append_signed_entries_through_the_api_and_they_survive_a_restart() {
    let s = TestServer::start();
    let admin = s.login("p032");
    let before = admin.get("/api/v1/admin/trust-list");
    assert_eq!(before.status, 200);
    let n = before.body["entries"].as_array().unwrap().len();
    let history = s.state.trust.current();
    // Refused: unsigned, then signed by the admin's own key; nothing changes.
    let mut unsigned = serde_json::to_value(next_trust_entry(&history)).unwrap();
    unsigned["signature"] = json!("");
    admin.post("/api/v1/admin/trust-list/entries", &unsigned).problem(422, "CARIMBO-E1231");
    let own = sign_entry(Some(&history), &signer_from("people", "p032"), chrono::Utc::now(), withdraw("advanced-ca")).unwrap();
    let r = admin.post("/api/v1/admin/trust-list/entries", &serde_json::to_value(own).unwrap());
    r.problem(422, "CARIMBO-E1232");
    assert!(r.body["detail"].as_str().unwrap().contains("nothing changed"), "{}", r.body);
    let mut unknown = serde_json::to_value(next_trust_entry(&history)).unwrap();
    unknown["note"] = json!("x");
    admin.post("/api/v1/admin/trust-list/entries", &unknown).problem(422, "CARIMBO-E1230");
    assert_eq!(admin.get("/api/v1/admin/trust-list").body["entries"].as_array().unwrap().len(), n, "nothing changed");
    // Accepted: the qualified CA withdrawn now; the status query sees it.
    let e = sign_entry(Some(&history), &trust_operator(), chrono::Utc::now(), withdraw("qualified-ca")).unwrap();
    let r = admin.post("/api/v1/admin/trust-list/entries", &serde_json::to_value(&e).unwrap());
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["seq"], json!(n + 1));
    // The same entry again no longer follows the list.
    admin.post("/api/v1/admin/trust-list/entries", &serde_json::to_value(&e).unwrap()).problem(409, "CARIMBO-E1234");
    let status = admin.get("/api/v1/admin/trust-list/status");
    let q = status.body["members"].as_array().unwrap().iter().find(|m| m["member"] == "qualified-ca").unwrap().clone();
    assert_eq!(q["status"], "withdrawn", "{}", status.body);
    let earlier = admin.get("/api/v1/admin/trust-list/status?at=2025-06-01T00:00:00Z");
    let q = earlier.body["members"].as_array().unwrap().iter().find(|m| m["member"] == "qualified-ca").unwrap().clone();
    assert_eq!((q["status"].as_str(), q["level"].as_str()), (Some("granted"), Some("qualified")), "{}", earlier.body);
    admin.get("/api/v1/admin/trust-list/status?at=2025-06-01T08:00:00+08:00").problem(400, "CARIMBO-E1241");
    // From now on a qualified certificate signs only at the advanced level.
    let verdict = s.state.verifier();
    let p = payload("p003");
    let r = verdict.verify(
        &signed_by("p003", &p),
        &bytes(&p),
        &carimbo::signing::VerifyOptions { trusted_time: Some(chrono::Utc::now()), now: chrono::Utc::now(), required_level: None },
    );
    assert_eq!(r.achieved_level, Some(SignatureLevel::Advanced), "{r:?}");
    // Kept in the data directory: a new server on the same directory has the entry.
    let kept = std::fs::read(s.state.trust.path()).unwrap();
    let reopened =
        carimbo::trusted_list::KeptTrustList::open(s.state.trust.path().parent().unwrap(), &repo().join("seeds/trust/trust-list.json"), chrono::Utc::now())
            .unwrap();
    assert_eq!(reopened.current().entries().len(), n + 1);
    assert_eq!(reopened.document_text().as_bytes(), kept.as_slice());
}

#[test]
fn the_trust_list_page_shows_the_history_and_appends_a_pasted_entry() {
    let s = TestServer::start();
    let admin = s.login("p032").by_cookie().no_redirects();
    let page = admin.get("/admin/trust-list?lang=pt");
    assert_eq!(page.status, 200);
    let html = page.body.as_str().unwrap().to_string();
    assert!(html.contains("Lista de confiança") && html.contains("qualified-ca") && html.contains("Concedido"), "{html}");
    let csrf = admin.csrf.clone().unwrap();
    let post = |entry: &str| {
        let body = format!("csrf={}&entry={}", form_encode(&csrf), form_encode(entry));
        admin.request("POST", "/admin/trust-list", Some(body.as_bytes()), &[("content-type", "application/x-www-form-urlencoded")])
    };
    let r = post("{\"payload\": 1}");
    assert_eq!(r.status, 422);
    assert!(r.body.as_str().unwrap().contains("CARIMBO-E1230"), "{}", r.body);
    let n = s.state.trust.current().entries().len();
    let e = serde_json::to_string(&next_trust_entry(&s.state.trust.current())).unwrap();
    let r = post(&e);
    assert_eq!((r.status, r.header("location")), (303, Some("/admin/trust-list")), "{}", r.body);
    assert_eq!(s.state.trust.current().entries().len(), n + 1);
    // Without the form's CSRF token nothing is appended.
    let e = serde_json::to_string(&next_trust_entry(&s.state.trust.current())).unwrap();
    let body = format!("csrf=wrong&entry={}", form_encode(&e));
    let r = admin.request("POST", "/admin/trust-list", Some(body.as_bytes()), &[("content-type", "application/x-www-form-urlencoded")]);
    assert_eq!(r.status, 403);
    assert_eq!(s.state.trust.current().entries().len(), n + 1);
}

#[test]
fn a_shipped_list_that_continues_the_kept_one_is_taken_over_and_one_that_does_not_is_not() {
    let data = tempfile::tempdir().unwrap();
    let seeds = tempfile::tempdir().unwrap();
    let seed = seeds.path().join("trust-list.json");
    let base = demo_trust_history();
    std::fs::write(&seed, base.document().to_pretty()).unwrap();
    let open = || carimbo::trusted_list::KeptTrustList::open(data.path(), &seed, now()).unwrap();
    let kept = open();
    assert_eq!(kept.current().entries().len(), base.entries().len());
    // The administrators add an entry; the shipped list stays behind: the kept one wins.
    let mine = base.appended(entry(&base, "2026-02-01T00:00:00Z", withdraw("advanced-ca")), now()).unwrap();
    kept.append(mine.entries().last().unwrap().clone(), now()).unwrap();
    assert_eq!(open().current().entries().len(), base.entries().len() + 1);
    // A shipped list that forked (another entry at the same place) is not taken over.
    let fork = base.appended(entry(&base, "2026-03-01T00:00:00Z", withdraw("qualified-ca")), now()).unwrap();
    std::fs::write(&seed, fork.document().to_pretty()).unwrap();
    assert_eq!(open().current().entries().last(), mine.entries().last());
    // One that continues the kept list is (say, a TSA added to the shipped seeds).
    let longer = mine.appended(entry(&mine, "2026-04-01T00:00:00Z", withdraw("qualified-ca")), now()).unwrap();
    std::fs::write(&seed, longer.document().to_pretty()).unwrap();
    assert_eq!(open().current().entries().len(), longer.entries().len());
    assert_eq!(std::fs::read_to_string(data.path().join("trust-list.json")).unwrap(), longer.document().to_pretty());
}

/// A verifier of `history` with the law's device rule.
fn enforced_verifier(history: &TrustHistory) -> carimbo::signing::SignatureVerifier {
    use carimbo::pki::{CertificateValidator, ValidationPolicy};
    carimbo::signing::SignatureVerifier::new(CertificateValidator::new(
        history.trust_list().unwrap(),
        carimbo::cli::pki_files::load_crl_dir(&pki("crl")).unwrap(),
        ValidationPolicy::document_signing(),
    ))
    .with_device_rule(carimbo::signing::DeviceRule::Enforced)
}

#[test]
fn a_certification_entity_stating_every_key_it_certifies_is_on_a_device_makes_its_certificates_qualified_without_qcsscd() {
    use carimbo::pki::history::QscdStatement;
    let h = trust_history_with(vec![("2026-03-01T00:00:00Z", Change::Qscd { member: "qualified-ca".into(), qscd: QscdStatement::AllIssued })]);
    // p003's certificate (a key file) has no QcSSCD: only the trust list's statement counts.
    let p = payload("p003");
    let at = |time: &str| {
        let when = t(time);
        let jws = person("p003").sign(&bytes(&p), when).unwrap().to_json();
        let opts = carimbo::signing::VerifyOptions { trusted_time: Some(when), now: now(), required_level: None };
        enforced_verifier(&h).verify(jws.as_bytes(), &bytes(&p), &opts)
    };
    let after = at("2026-05-10T09:00:00Z");
    assert_eq!(after.achieved_level, Some(SignatureLevel::Qualified), "{after:?}");
    assert!(
        after.notes.iter().any(|n| n.contains("the trust list says every certificate of its issuer `qualified-ca` is")),
        "the report names the trust list as the source: {:?}",
        after.notes
    );
    let before = at("2026-02-01T09:00:00Z");
    assert_eq!(before.achieved_level, Some(SignatureLevel::Advanced), "before the statement, the key file is advanced: {before:?}");
    assert!(before.notes.iter().any(|n| n.starts_with("not qualified") && n.contains("QcSSCD")), "{:?}", before.notes);
    // Without the statement the same signature stays advanced under the enforced rule.
    let plain = demo_trust_history();
    let jws = person("p003").sign(&bytes(&p), t("2026-05-10T09:00:00Z")).unwrap().to_json();
    let opts = carimbo::signing::VerifyOptions { trusted_time: Some(t("2026-05-10T09:00:00Z")), now: now(), required_level: None };
    assert_eq!(enforced_verifier(&plain).verify(jws.as_bytes(), &bytes(&p), &opts).achieved_level, Some(SignatureLevel::Advanced));
}

#[test]
fn a_device_statement_unsigned_changed_or_for_a_member_that_is_not_a_certification_entity_is_refused() {
    use carimbo::pki::history::QscdStatement;
    let h = demo_trust_history();
    let all = |member: &str| Change::Qscd { member: member.into(), qscd: QscdStatement::AllIssued };
    let good = entry(&h, "2026-01-01T00:00:00Z", all("qualified-ca"));
    let mut unsigned = good.clone();
    unsigned.signature.clear();
    let mut changed = good.clone();
    changed.payload.change = all("advanced-ca");
    let tsa = h.members().iter().find(|m| m.service_type == ServiceType::TimeStamping).map(|m| m.id.clone()).expect("the demo TSA is listed");
    let not_a_ca = entry(&h, "2026-01-01T00:00:00Z", all(&tsa));
    let nothing_to_end = entry(&h, "2026-01-01T00:00:00Z", Change::Qscd { member: "qualified-ca".into(), qscd: QscdStatement::None });
    let cases: Vec<(&str, TrustEntry, &str)> = vec![
        ("unsigned", unsigned, "CARIMBO-E1231"),
        ("changed after signing", changed, "CARIMBO-E1233"),
        ("for a time-stamping authority", not_a_ca, "CARIMBO-E1237"),
        ("ending a statement never made", nothing_to_end, "CARIMBO-E1237"),
    ];
    for (what, e, code) in cases {
        let err: HistoryError = h.appended(e, now()).expect_err(what);
        assert_eq!(err.code(), code, "{what}: {err}");
    }
    assert!(h.member("qualified-ca").is_some_and(|m| !m.qscd_at(now())), "nothing changed");
    let kept = h.appended(good, now()).expect("the signed statement is taken");
    assert!(kept.member("qualified-ca").is_some_and(|m| m.qscd_at(now())));
}
