//! Evidence bundles through the API (`GET /api/v1/cases/{id}/evidence`, parties and auditors
//! only) and through the commands (`carimbo export-evidence`, `carimbo verify`).

use crate::evidence_case;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
/// Verifies at the present time (the verifier itself reads no clock).
fn verify(b: &[u8]) -> carimbo::evidence::VerificationReport {
    carimbo::evidence::verify(b, chrono::Utc::now())
}
use carimbo::http::{AppState, router};
use carimbo::store::{SledStore, Store};
use chrono::{Duration, Utc};
use evidence_case::{Harness, oath_case, repo};
use std::process::Command;
use std::sync::Arc;
use tower::ServiceExt;

async fn get(state: &Arc<AppState>, person: &str, path: &str) -> (StatusCode, Vec<u8>, Option<String>) {
    let (token, _) = state.sessions.open(person, Utc::now(), Duration::hours(1));
    let req = Request::get(path).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty()).unwrap();
    let resp = router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let disposition = resp.headers().get(header::CONTENT_DISPOSITION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024 * 1024).await.unwrap().to_vec();
    (status, body, disposition)
}

#[tokio::test(flavor = "multi_thread")]
async fn parties_and_auditors_download_a_bundle_that_verifies_and_others_do_not_see_it() {
    let tmp = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(tmp.path().join("store")).unwrap());
    let state = Arc::new(AppState::with_store(crate::common::demo_paths(&repo(), tmp.path()), store).unwrap());
    let h = Harness::with_service(state.cases.clone(), None);
    let id = tokio::task::block_in_place(|| oath_case(&h));
    let path = format!("/api/v1/cases/{id}/evidence");
    for person in ["p031", "p001", "p022"] {
        let (status, body, disposition) = get(&state, person, &path).await;
        assert_eq!(status, StatusCode::OK, "{person}: {}", String::from_utf8_lossy(&body));
        assert_eq!(disposition.as_deref(), Some(format!("attachment; filename=\"evidence-{id}.json\"").as_str()));
        let report = tokio::task::block_in_place(|| verify(&body));
        assert!(report.passed, "{person}: {}", report.to_text());
        assert_eq!(report.exported_by.as_deref(), Some(person));
    }
    // Not a party and not an auditor: the case does not exist for them.
    let (status, _, _) = get(&state, "p005", &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(&state, "p022", "/api/v1/cases/C-nope/evidence").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A case with a restricted field (the diagnosis, for HR and doctors): HR gets it in the open;
    // the patient and the auditor get its salted commitment only, and the bundle still
    // verifies, naming the field it withholds.
    let def: serde_json::Value = serde_json::from_slice(&std::fs::read(repo().join("forms/medical-certificate.json")).unwrap()).unwrap();
    let medical = tokio::task::block_in_place(|| h.submit("doc02", "medical-certificate", &def["examples"]["valid"][0]["data"], "evidence-medical"));
    let path = format!("/api/v1/cases/{medical}/evidence");
    let (status, body, _) = get(&state, "p018", &path).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(tokio::task::block_in_place(|| verify(&body)).passed);
    let diagnosis = def["examples"]["valid"][0]["data"]["diagnosis_code"].as_str().unwrap().to_string();
    for person in ["p005", "p022"] {
        let (status, body, _) = get(&state, person, &path).await;
        assert_eq!(status, StatusCode::OK, "{person}: {}", String::from_utf8_lossy(&body));
        let bundle: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(!bundle["events"].to_string().contains(&diagnosis), "{person} gets no diagnosis");
        let report = tokio::task::block_in_place(|| verify(&body));
        assert!(report.passed, "{person}: {}", report.to_text());
        assert_eq!(report.withheld, vec!["diagnosis_code".to_string()], "{person}");
    }
    // The route is in the OpenAPI document built from the same table.
    let doc = carimbo::http::openapi_document();
    assert!(doc["paths"]["/api/v1/cases/{id}/evidence"]["get"].is_object());
}

#[test]
fn export_evidence_and_verify_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let id = {
        let h = Harness::in_dir(tmp.path());
        oath_case(&h)
    };
    let bin = env!("CARGO_BIN_EXE_carimbo");
    let out = tmp.path().join("bundle.json");
    // The harness's acts were judged as a demo without an HSM judges them (key files on
    // qualified steps), and the bundle says so.
    let run = Command::new(bin)
        .args(["export-evidence", &id, "--device-rule", "relaxed-for-demo", "--data"])
        .arg(tmp.path())
        .arg("--root")
        .arg(repo())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // Without --out the same bundle goes to standard output.
    let stdout = Command::new(bin)
        .args(["export-evidence", &id, "--device-rule", "relaxed-for-demo", "--data"])
        .arg(tmp.path())
        .arg("--root")
        .arg(repo())
        .output()
        .unwrap();
    assert!(stdout.status.success());
    assert!(verify(&stdout.stdout).passed);

    let ok = Command::new(bin).arg("verify").arg(&out).output().unwrap();
    let text = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(text.contains("RESULT: PASSED"), "{text}");
    let json = Command::new(bin).arg("verify").arg(&out).arg("--json").output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["signatures"].as_array().unwrap().len(), 3);
    assert!(text.contains("device rule relaxed for the demo"), "the report says which device rule it judged with: {text}");

    // The auditor may judge with the law's rule instead: the key-file signatures on the
    // qualified steps are then advanced, below what the steps demand.
    let strict = Command::new(bin).args(["verify", "--device-rule", "enforced"]).arg(&out).output().unwrap();
    let strict_text = String::from_utf8_lossy(&strict.stdout);
    assert_eq!(strict.status.code(), Some(1), "{strict_text}");
    assert!(strict_text.contains("device rule: enforced, as the verifier was told (the bundle records relaxed-for-demo)"), "{strict_text}");
    assert!(strict_text.contains("verifies as advanced"), "{strict_text}");
    let wrong = Command::new(bin).args(["verify", "--device-rule", "lenient"]).arg(&out).output().unwrap();
    assert_ne!(wrong.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("--device-rule is `enforced` or `relaxed-for-demo`"), "{}", String::from_utf8_lossy(&wrong.stderr));

    // A reader that stops early (`| head`) closes the pipe: the verdict stands, no panic.
    let mut early =
        Command::new(bin).args(["verify", "--json"]).arg(&out).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    drop(early.stdout.take());
    let early = early.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&early.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(early.status.code(), Some(0), "{stderr}");

    // One byte changed: exit 1, and the report says where.
    let mut bytes = std::fs::read(&out).unwrap();
    let at = bytes.windows(9).position(|w| w == b"\"p001\",\"s").or_else(|| bytes.windows(6).position(|w| w == b"\"p001\"")).unwrap() + 4;
    bytes[at] = b'9';
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, &bytes).unwrap();
    let failed = Command::new(bin).arg("verify").arg(&bad).output().unwrap();
    let text = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{text}");
    assert!(text.contains("RESULT: FAILED at event"), "{text}");
    let json = Command::new(bin).args(["verify", "--json"]).arg(&bad).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["passed"], false);
    assert!(report["first_failure"]["pointer"].as_str().unwrap().starts_with("/events/"), "{report}");

    // A file that is not there: a usage error, exit 2.
    let missing = Command::new(bin).arg("verify").arg(tmp.path().join("nope.json")).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    // An unknown case.
    let unknown = Command::new(bin).args(["export-evidence", "C-nope", "--data"]).arg(tmp.path()).arg("--root").arg(repo()).output().unwrap();
    assert!(!unknown.status.success());
}

async fn post(state: &Arc<AppState>, person: &str, path: &str, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    let (token, _) = state.sessions.open(person, Utc::now(), Duration::hours(1));
    let req = Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1024 * 1024).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_archive_job_keeps_closed_cases_as_b_lta_bundles_and_restamps_them_when_due() {
    let tmp = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(tmp.path().join("store")).unwrap());
    let state = Arc::new(AppState::with_store(crate::common::demo_paths(&repo(), tmp.path()), store).unwrap());
    let h = Harness::with_service(state.cases.clone(), None).with_demo_tsa();
    let id = tokio::task::block_in_place(|| oath_case(&h));
    let open = tokio::task::block_in_place(|| h.submit("p005", "absence-and-annual-leave", &evidence_case::leave("open"), "archive-open"));
    let run = |margin_days: i64| {
        let st = state.clone();
        tokio::task::block_in_place(move || st.archive.run(&st, Utc::now(), Duration::days(margin_days)))
    };
    let kept = tmp.path().join("evidence").join(format!("{id}.json"));
    let first = run(365);
    assert_eq!((first.closed_cases, first.archived, first.restamped, first.up_to_date), (1, 1, 0, 0), "{first:?}");
    assert!(first.failures.is_empty(), "{first:?}");
    assert!(!tmp.path().join("evidence").join(format!("{open}.json")).exists(), "an open case is not archived");
    #[cfg(unix)]
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&kept).unwrap().permissions()) & 0o777, 0o600);
    let r = tokio::task::block_in_place(|| verify(&std::fs::read(&kept).unwrap()));
    assert!(r.passed, "{}", r.to_text());
    assert_eq!((r.archive_timestamps.len(), r.exported_by.as_deref()), (1, Some("carimbo-archive")));
    // The demo TSA is good until the end of 2050: not due within a year, due within 9000 days.
    let second = run(365);
    assert_eq!((second.archived, second.restamped, second.up_to_date), (0, 0, 1), "{second:?}");
    let third = run(9000);
    assert_eq!((third.archived, third.restamped, third.up_to_date), (0, 1, 0), "{third:?}");
    let r = tokio::task::block_in_place(|| verify(&std::fs::read(&kept).unwrap()));
    assert!(r.passed && r.archive_timestamps.len() == 2, "{}", r.to_text());
    // A damaged kept bundle is reported, and left for a person to look at.
    let mut damaged = std::fs::read(&kept).unwrap();
    let n = damaged.len();
    damaged[n / 2] ^= 0x01;
    std::fs::write(&kept, &damaged).unwrap();
    let fourth = run(9000);
    assert_eq!(fourth.failures.len(), 1, "{fourth:?}");
    assert!(fourth.failures[0].contains(&id) && fourth.failures[0].contains("CARIMBO-E1254"), "{fourth:?}");
    assert_eq!(std::fs::read(&kept).unwrap(), damaged);
    // The administrators' routes: the last round, a run now, a bad margin refused.
    let (status, body) = post(&state, "p032", "/api/v1/admin/evidence-archive", serde_json::json!({"margin_days": -1})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("CARIMBO-E1258")), "{body}");
    let (status, _) = post(&state, "p005", "/api/v1/admin/evidence-archive", serde_json::json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body, _) = get(&state, "p032", "/api/v1/admin/evidence-archive").await;
    assert_eq!(status, StatusCode::OK);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["last_round"]["failures"].as_array().map(Vec::len), Some(1), "{body}");
}
