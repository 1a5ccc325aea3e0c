//! Usage figures through the real server: leave requests submitted, approved, rejected, returned
//! and resubmitted, withdrawn or left open through the API with real signatures, then the figures
//! read back as JSON (`GET /api/v1/usage`) and as Prometheus metrics (`GET /metrics`), and who may
//! read them. The hand-computed cases of the pure core are in `src/usage/tests.rs`.

use crate::common;

use carimbo::http::AppState;
use common::server::{Client, Reply, TestServer, leave};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

const LEAVE: &str = "absence-and-annual-leave";
const SCRAPE_TOKEN: &str = "prometheus-scrape-token-0123456789abcdef";

/// The server, with a scrape token for Prometheus.
fn start() -> TestServer {
    let data = tempfile::tempdir().expect("a temporary data directory");
    let mut state = AppState::open(common::demo_paths(&common::repo(), data.path())).expect("the server state opens");
    state.set_scrape_token(SCRAPE_TOKEN).expect("a long enough token");
    TestServer::serve(Arc::new(state), data)
}

fn ok(r: Reply, what: &str) -> Value {
    assert_eq!(r.status, 200, "{what}: {}", r.body);
    r.body
}

/// The exposition's samples, `name{labels}` → value (comments skipped).
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("a sample line: {l:?}"));
            (series.to_string(), value.parse::<f64>().unwrap_or_else(|_| panic!("a number in {l:?}")))
        })
        .collect()
}

fn row<'v>(body: &'v Value, department: &str) -> &'v Value {
    let rows: Vec<&Value> = body["rows"].as_array().expect("rows").iter().filter(|r| r["department"] == department).collect();
    assert_eq!(rows.len(), 1, "one {department} row: {body}");
    rows[0]
}

struct World {
    s: TestServer,
    staff: Client,
    supervisor: Client,
    hr: Client,
    /// The Macau month the cases were submitted in (from the first case's opening time).
    month: String,
}

/// Six leave requests: five from p005 (DAF) — completed, rejected, returned then resubmitted and
/// completed, withdrawn, left open — and one from p021 (DRH), left open.
fn world() -> World {
    let s = start();
    let (staff, supervisor, hr) = (s.login("p005"), s.login("p003"), s.login("p018"));
    let record = |id: &str| ok(hr.post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "hr-records", "action": "sign"})), "the personnel section records");

    let completed = staff.submit_ok(LEAVE, &leave(1), "completed");
    ok(supervisor.act(&completed, "supervisor", "approve"), "approve");
    assert_eq!(record(&completed)["case"]["status"], "completed");

    let rejected = staff.submit_ok(LEAVE, &leave(2), "rejected");
    assert_eq!(ok(supervisor.act(&rejected, "supervisor", "reject"), "reject")["case"]["status"], "rejected");

    let returned = staff.submit_ok(LEAVE, &leave(3), "returned");
    assert_eq!(ok(supervisor.act(&returned, "supervisor", "return"), "return")["case"]["status"], "returned");
    let mut corrected = leave(3);
    corrected["substitute"] = json!("Wong Wai Keong");
    let signed = staff.sign(&json!({"kind": "resubmit", "case": returned, "data": corrected}));
    ok(staff.post(&format!("/api/v1/cases/{returned}/resubmit"), &json!({"data": corrected, "signed": signed})), "resubmit");
    ok(supervisor.act(&returned, "supervisor", "approve"), "approve the corrected request");
    assert_eq!(record(&returned)["case"]["status"], "completed");

    let withdrawn = staff.submit_ok(LEAVE, &leave(4), "withdrawn");
    assert_eq!(ok(staff.post(&format!("/api/v1/cases/{withdrawn}/withdraw"), &json!({"reason": "plans changed"})), "withdraw")["case"]["status"], "withdrawn");

    staff.submit_ok(LEAVE, &leave(5), "open");
    s.login("p021").submit_ok(LEAVE, &leave(1), "drh-open");

    let opened_at: chrono::DateTime<chrono::Utc> = serde_json::from_value(staff.case(&completed).body["case"]["opened_at"].clone()).expect("opened_at");
    let month = carimbo::usage::Month::of(opened_at).to_string();
    World { s, staff, supervisor, hr, month }
}

#[test]
fn usage_figures_count_what_happened_to_real_signed_cases_as_json_and_as_metrics() {
    let w = world();
    let auditor = w.s.login("p022");
    let admin = w.s.login("p032");

    let body = ok(auditor.get("/api/v1/usage"), "the auditor reads the figures");
    assert_eq!(body["cases_read"], 6, "{body}");
    assert_eq!(body["problems"], json!([]));
    assert_eq!(body["percentiles"], "nearest-rank");
    assert!(body["computation_seconds"].as_f64().is_some_and(|s| s >= 0.0), "{body}");

    let daf = row(&body, "DAF");
    assert_eq!((daf["form"].as_str(), daf["month"].as_str()), (Some(LEAVE), Some(w.month.as_str())));
    let counts =
        |r: &Value| ["submitted", "completed", "rejected", "returned", "withdrawn", "in_progress", "past_deadline"].map(|k| r[k].as_u64().unwrap_or(u64::MAX));
    assert_eq!(counts(daf), [5, 2, 1, 1, 1, 1, 0]);
    // p005 signs with an advanced certificate, the supervisor p003 with a qualified one, and the
    // personnel section's `simple` records are sealed by the service: 5 submissions and 1
    // resubmission (advanced); approve, reject, return, approve (qualified); 2 records (simple).
    assert_eq!(daf["signatures"], json!({"simple": 2, "advanced": 6, "qualified": 4}));
    let ttc = &daf["time_to_completion"];
    assert_eq!(ttc["count"], 2);
    let (p50, p90) = (ttc["p50_seconds"].as_i64().expect("a median"), ttc["p90_seconds"].as_i64().expect("a p90"));
    assert!(0 <= p50 && p50 <= p90 && p90 < 600, "both completed within the test: {ttc}");

    assert_eq!(counts(row(&body, "DRH")), [1, 0, 0, 0, 0, 1, 0]);
    assert_eq!(counts(&body["totals"]), [6, 2, 1, 1, 1, 2, 0]);
    assert_eq!(body["by_month"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["by_month"][0]["submitted"], 6);

    // Filters, as the administrator.
    let drh = ok(admin.get("/api/v1/usage?department=DRH"), "filtered by department");
    assert_eq!(drh["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(drh["totals"]["submitted"], 1);
    let in_month = ok(admin.get(&format!("/api/v1/usage?from={m}&to={m}&form={LEAVE}&department=&lang=pt", m = w.month)), "one month");
    assert_eq!(in_month["totals"]["submitted"], 6);
    let other_form = ok(admin.get("/api/v1/usage?form=special-leave"), "another form");
    assert_eq!((other_form["rows"].as_array().map(Vec::len), &other_form["totals"]["submitted"]), (Some(0), &json!(0)));
    let before = ok(admin.get("/api/v1/usage?to=2000-12"), "months before any case");
    assert_eq!(before["by_month"], json!([]));

    // The same figures for Prometheus.
    let r = admin.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/openmetrics-text")), "{:?}", r.header("content-type"));
    let text = r.body.as_str().expect("the exposition is text");
    assert!(text.ends_with("# EOF\n"), "{text}");
    let m = samples(text);
    let at = |name: &str, labels: &str| *m.get(&format!("{name}{{{labels}}}")).unwrap_or_else(|| panic!("no {name}{{{labels}}} in:\n{text}"));
    let daf_labels = format!(r#"form="{LEAVE}",department="DAF",month="{}""#, w.month);
    for (name, expected) in [
        ("carimbo_cases_submitted_total", 5.0),
        ("carimbo_cases_completed_total", 2.0),
        ("carimbo_cases_rejected_total", 1.0),
        ("carimbo_cases_returned_total", 1.0),
        ("carimbo_cases_withdrawn_total", 1.0),
        ("carimbo_cases_in_progress", 1.0),
    ] {
        assert_eq!(at(name, &daf_labels), expected, "{name}");
    }
    assert_eq!(at("carimbo_cases_submitted_total", &format!(r#"form="{LEAVE}",department="DRH",month="{}""#, w.month)), 1.0);
    assert_eq!(at("carimbo_signatures_total", &format!(r#"{daf_labels},level="qualified""#)), 4.0);
    assert_eq!(at("carimbo_signatures_total", &format!(r#"{daf_labels},level="simple""#)), 2.0);
    assert_eq!(at("carimbo_cases_past_deadline", &format!(r#"form="{LEAVE}",department="DAF""#)), 0.0);
    assert_eq!(at("carimbo_time_to_completion_seconds", &format!(r#"{daf_labels},quantile="0.5""#)), p50 as f64);
    assert_eq!(at("carimbo_time_to_completion_seconds", &format!(r#"{daf_labels},quantile="0.9""#)), p90 as f64);
    assert_eq!(m["carimbo_usage_report_cases"], 6.0);
    assert!(m["carimbo_usage_report_duration_seconds"] >= 0.0);

    // Prometheus with its scrape token (no session), and with a wrong one.
    let mut scraper = w.s.anonymous();
    scraper.token = Some(SCRAPE_TOKEN.into());
    let scraped = scraper.get("/metrics");
    assert_eq!(scraped.status, 200, "{}", scraped.body);
    assert_eq!(scraped.body, r.body, "the same snapshot");
    scraper.token = Some("not-the-token-not-the-token-not-the-token".into());
    scraper.get("/metrics").problem(401, "CARIMBO-E0701");
}

#[test]
fn only_administrators_and_auditors_read_the_figures_and_bad_parameters_are_refused_by_name() {
    let w = world();
    let auditor = w.s.login("p022");
    let first = ok(auditor.get("/api/v1/usage"), "the figures");

    for (who, client) in [("staff", &w.staff), ("approver", &w.supervisor), ("hr", &w.hr)] {
        let p = client.get("/api/v1/usage").problem(403, "CARIMBO-E0702").clone();
        assert!(p["detail"].as_str().is_some_and(|d| d.contains("admin or auditor")), "{who}: {p}");
        client.get("/metrics").problem(403, "CARIMBO-E0702");
    }
    auditor.get("/metrics").problem(403, "CARIMBO-E0702");
    w.s.anonymous().get("/api/v1/usage").problem(401, "CARIMBO-E0701");
    w.s.anonymous().get("/metrics").problem(401, "CARIMBO-E0701");

    // (query, the parameter the problem must name)
    let bad = [
        ("from=2026-3", "`from`"),
        ("to=2026-13", "`to`"),
        ("from=2026-05&to=2026-03", "`from`"),
        ("form=a%20b", "`form`"),
        ("department=%3Cscript%3E", "`department`"),
        ("month=2026-03", "`month`"),
        ("to=2026-03&to=2026-04", "`to`"),
    ];
    for (query, names) in bad {
        let r = auditor.get(&format!("/api/v1/usage?{query}"));
        let p = r.problem(400, "CARIMBO-E1101");
        assert!(p["detail"].as_str().is_some_and(|d| d.contains(names)), "{query}: {p}");
    }
    let pt = auditor.get("/api/v1/usage?from=ontem&lang=pt");
    assert_eq!(pt.problem(400, "CARIMBO-E1101")["title"], "Um parâmetro da consulta de estatísticas não é válido.");

    // Nothing changed: the same snapshot (computed once, kept for a minute), the same figures.
    let again = ok(auditor.get("/api/v1/usage"), "the figures again");
    assert_eq!(again["computed_at"], first["computed_at"]);
    for key in ["rows", "totals", "by_month", "cases_read"] {
        assert_eq!(again[key], first[key], "{key}");
    }
    // A case submitted now shows once the snapshot is a minute old, not before.
    w.staff.submit_ok(LEAVE, &leave(2), "late");
    assert_eq!(ok(auditor.get("/api/v1/usage"), "still cached")["totals"], first["totals"]);
}
