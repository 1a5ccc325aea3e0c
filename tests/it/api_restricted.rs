//! Restricted fields (a diagnosis, the reasons for unfitness) stay restricted on every channel,
//! tried as an attacker would: asking for a signing payload and guessing the value back from its
//! hash, opening the case page after a correction, reading exports and webhook messages, and
//! downloading evidence bundles. The last test walks every route and page as every role for each
//! form that has restricted fields and looks for the value's bytes (and its unsalted hashes).

use crate::common;

use carimbo::http::AppState;
use carimbo::outbox::WebhookConfig;
use common::server::{Client, Reply, TestServer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A diagnosis code that appears in no definition file, so finding it anywhere means a leak.
const DIAGNOSIS: &str = "K35.8";
const CORRECTED: &str = "K35.2";

fn example(form: &str, with: &str) -> Value {
    let def = common::read_json(&common::repo().join(format!("forms/{form}.json")));
    def["examples"]["valid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"].clone())
        .find(|d| d.get(with).is_some())
        .unwrap_or_else(|| panic!("an example of {form} with {with}"))
}

fn medical(diagnosis: &str) -> Value {
    let mut d = example("medical-certificate", "diagnosis_code");
    d["diagnosis_code"] = json!(diagnosis);
    d
}

fn cookie(mut c: Client) -> Client {
    c.by_cookie = true;
    c
}

/// `sha256:` + hex of the canonical JSON of `v`: the unsalted hash an attacker would compute.
fn plain_hash(v: &Value) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(serde_json_canonicalizer::to_vec(v).unwrap())))
}

#[test]
fn a_signing_payload_goes_only_to_a_person_with_a_seat_and_its_hash_gives_no_diagnosis_back() {
    let s = TestServer::start();
    let id = s.login("doc02").submit_ok("medical-certificate", &medical(DIAGNOSIS), "mc-payload");
    let ask = json!({"kind": "act", "case": id, "step": "hr-records", "action": "sign"});
    // The patient and the auditor may read the case but hold no seat on the HR step.
    for who in ["p005", "p022", "doc02"] {
        let r = s.login(who).post("/api/v1/signing-payload", &ask);
        r.problem(403, "CARIMBO-E0330");
        assert!(r.body.get("payload").is_none(), "{who} gets no payload");
    }
    // HR, on the seat, gets it; its data hash is over the diagnosis's salted commitment.
    let hr = s.login("p018");
    let r = hr.post("/api/v1/signing-payload", &ask);
    assert_eq!(r.status, 200, "{}", r.body);
    let signed_hash = r.body["payload"]["data_hash"].as_str().unwrap().to_string();
    let full = hr.case(&id).body["case"]["data"].clone();
    assert_eq!(full["diagnosis_code"], DIAGNOSIS, "HR reads the diagnosis");
    assert_ne!(plain_hash(&full), signed_hash, "the payload is not the plain hash of the data");
    // Trying every code of the form's pattern's first shape (letter, two digits, one decimal)
    // gives nothing back: without the salt no candidate hashes to the signed value.
    let mut tried = 0;
    for letter in ('A'..='Z').filter(|c| *c != 'U') {
        for n in 0..100 {
            for d in 0..10 {
                let mut guess = full.clone();
                guess["diagnosis_code"] = json!(format!("{letter}{n:02}.{d}"));
                assert_ne!(plain_hash(&guess), signed_hash);
                tried += 1;
            }
        }
    }
    assert_eq!(tried, 25_000);
    // HR signs with that payload and the case completes: the commitment is what is signed.
    let done = hr.post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "hr-records", "action": "sign"}));
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["case"]["status"], "completed");
}

/// Doctor doc02 submits, HR returns it, the doctor corrects the diagnosis and the remarks.
fn corrected_case(s: &TestServer) -> String {
    let doctor = s.login("doc02");
    let id = doctor.submit_ok("medical-certificate", &medical(DIAGNOSIS), "mc-corrected");
    let hr = s.login("p018");
    let r = hr.post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "hr-records", "action": "return", "comment": "please check the code"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let mut data = medical(CORRECTED);
    data["remarks"] = json!("Corrected after HR's note.");
    let signed = doctor.sign(&json!({"kind": "resubmit", "case": id, "data": data}));
    let r = doctor.post(&format!("/api/v1/cases/{id}/resubmit"), &json!({"data": data, "signed": signed}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["case"]["data"]["diagnosis_code"], CORRECTED, "the doctor, who may read it, sees the correction");
    id
}

#[test]
fn the_case_page_after_a_correction_says_a_restricted_field_changed_and_not_what_it_was() {
    let s = TestServer::start();
    let id = corrected_case(&s);
    for who in ["p005", "p022"] {
        let page = cookie(s.login(who)).get(&format!("/cases/{id}"));
        assert_eq!(page.status, 200, "{who}");
        let html = page.body.as_str().unwrap_or_default();
        assert!(html.contains("last-correction"), "{who} sees the correction table");
        assert!(html.contains("data-pointer=\"/diagnosis_code\""), "{who} sees that the diagnosis changed");
        assert!(!html.contains(DIAGNOSIS) && !html.contains(CORRECTED), "{who} sees neither diagnosis");
        assert!(html.contains("Corrected after HR"), "the other changes are shown to {who}");
    }
    let page = cookie(s.login("p018")).get(&format!("/cases/{id}"));
    let html = page.body.as_str().unwrap_or_default();
    assert!(html.contains(DIAGNOSIS) && html.contains(CORRECTED), "HR sees before and after");
}

#[test]
fn a_reader_without_the_role_gets_a_bundle_that_withholds_the_diagnosis_and_still_verifies() {
    let s = TestServer::start();
    let id = corrected_case(&s);
    for (who, withheld) in [("p005", true), ("p022", true), ("p018", false), ("doc02", false)] {
        let r = s.login(who).get(&format!("/api/v1/cases/{id}/evidence"));
        assert_eq!(r.status, 200, "{who}: {}", r.body);
        let text = r.body.to_string();
        assert_eq!(!text.contains(DIAGNOSIS) && !text.contains(CORRECTED), withheld, "{who}");
        let report = carimbo::evidence::verify(text.as_bytes(), chrono::Utc::now());
        assert!(report.passed, "{who}: {}", report.to_text());
        assert_eq!(report.withheld.is_empty(), !withheld, "{who}: {:?}", report.withheld);
        if withheld {
            assert!(report.to_text().contains("withheld:  diagnosis_code"), "{}", report.to_text());
        }
    }
    // A disclosure changed in a full bundle is caught and named.
    let r = s.login("p018").get(&format!("/api/v1/cases/{id}/evidence"));
    let tampered = r.body.to_string().replacen(&format!("\"value\":\"{DIAGNOSIS}\""), "\"value\":\"A00\"", 1);
    assert_ne!(tampered, r.body.to_string());
    let report = carimbo::evidence::verify(tampered.as_bytes(), chrono::Utc::now());
    let text = report.to_text();
    let f = report.first_failure.expect("a changed diagnosis fails");
    assert_eq!(f.code, "CARIMBO-E0916", "{text}");
    assert!(f.pointer.ends_with("/body/disclosures/diagnosis_code"), "{}", f.pointer);
}

// ------------------------------------------------------------------ webhooks and exports

/// A loopback receiver that keeps every body it is sent.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        use axum::routing::post;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<String>>> = Arc::default();
        let keep = got.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |body: String| {
                let keep = keep.clone();
                async move {
                    keep.lock().unwrap().push(body);
                    axum::http::StatusCode::OK
                }
            }),
        );
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, got, _runtime: runtime }
    }

    fn bodies(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}

/// A server delivering to `payroll` (no restricted field) and `records` (entitled to the
/// diagnosis), and the handle that stops its dispatcher.
fn server_with(payroll: &Receiver, records: &Receiver) -> (TestServer, Arc<std::sync::atomic::AtomicBool>) {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hook.key"), "hook-secret-0123456789abcdef").unwrap();
    let config = json!({
        "endpoints": [
            {"name": "payroll", "url": payroll.url, "secret_file": "hook.key"},
            {"name": "records", "url": records.url, "secret_file": "hook.key", "kinds": ["case.completed"], "restricted_fields": ["diagnosis_code"]},
        ],
        "retry": {"max_attempts": 3, "first_delay_ms": 100, "max_delay_ms": 200},
    });
    let file = data.path().join("webhooks.json");
    std::fs::write(&file, config.to_string()).unwrap();
    let mut state = AppState::open(common::demo_paths(&common::repo(), data.path())).unwrap();
    let (_thread, stop) = state.start_webhooks(WebhookConfig::load(&file).unwrap(), Duration::from_millis(50));
    (TestServer::serve(Arc::new(state), data), stop)
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn webhooks_and_exports_carry_a_diagnosis_only_to_a_receiver_configured_for_it() {
    let (payroll, records) = (Receiver::start(), Receiver::start());
    let (s, stop) = server_with(&payroll, &records);
    let id = s.login("doc02").submit_ok("medical-certificate", &medical(DIAGNOSIS), "mc-hooks");
    let r = s.login("p018").post(&format!("/api/v1/cases/{id}/acts"), &json!({"step": "hr-records", "action": "sign"}));
    assert_eq!(r.body["case"]["status"], "completed", "{}", r.body);
    wait_for("payroll's two messages", || payroll.bodies().len() >= 2);
    wait_for("the records office's completion", || !records.bodies().is_empty());
    for body in payroll.bodies() {
        assert!(!body.contains(DIAGNOSIS), "payroll gets no diagnosis: {body}");
        assert!(!body.contains("\"salt\""), "and no salt");
    }
    let completed: Value = serde_json::from_str(payroll.bodies().iter().find(|b| b.contains("case.completed")).unwrap()).unwrap();
    assert!(completed["payload"]["data"]["diagnosis_code"]["_sd"].as_str().unwrap().starts_with("sha256:"), "payroll gets the commitment: {completed}");
    assert_eq!(completed["payload"]["data"]["patient_id"], "p005", "and everything else");
    let to_records: Value = serde_json::from_str(&records.bodies()[0]).unwrap();
    assert_eq!(to_records["payload"]["data"]["diagnosis_code"], DIAGNOSIS, "the records office is entitled to it");
    assert!(to_records["payload"].get("disclosures").is_none());
    // The administrators' export, as CSV and JSON: commitments only.
    let admin = s.login("p032");
    for format in ["csv", "json"] {
        let r = admin.get(&format!("/api/v1/admin/export?since=2000-01-01&format={format}"));
        assert_eq!(r.status, 200, "{format}: {}", r.body);
        let text = r.body.to_string();
        assert!(text.contains(&id), "{format} holds the case");
        assert!(!text.contains(DIAGNOSIS) && !text.contains("\\\"salt\\\"") && !text.contains("\"salt\""), "{format}: {text}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
}

// ------------------------------------------------------------------ every channel, every role

/// The readers, with whether each may read the restricted fields of a case they can open.
const READERS: [(&str, &str); 7] =
    [("p005", "staff (the patient)"), ("p003", "approver"), ("p018", "hr"), ("p022", "auditor"), ("p031", "author"), ("p032", "admin"), ("doc02", "doctor")];

/// Every GET of the API (from the route table) and every page, for a case id.
fn readable_paths(case: &str) -> Vec<String> {
    let mut paths: BTreeSet<String> = carimbo::http::routes()
        .into_iter()
        .filter(|r| r.method == axum::http::Method::GET)
        .map(|r| r.path.replace("{id}", if r.path.starts_with("/api/v1/forms/") { "medical-certificate" } else { case }))
        .collect();
    for page in ["/", "/forms", "/cases", "/inbox", "/audit", "/me/security", "/author", "/admin/outbox", "/admin/usage"] {
        paths.insert(page.to_string());
    }
    paths.insert(format!("/cases/{case}"));
    paths.insert(format!("/cases/{case}/resubmit"));
    paths.insert(format!("/audit?case={case}"));
    paths.insert("/api/v1/admin/export?since=2000-01-01&format=csv".into());
    paths.insert("/api/v1/admin/export?since=2000-01-01&format=json".into());
    paths.into_iter().collect()
}

/// The byte strings that give a restricted value away: the value itself and its plain hash.
fn secrets(value: &str) -> Vec<String> {
    vec![value.to_string(), hex::encode(Sha256::digest(value.as_bytes())), plain_hash(&json!(value))]
}

fn assert_clean(who: &str, what: &str, reply: &Reply, secrets: &[String]) {
    let text = match &reply.body {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{who} got {s:?} from {what} (status {})", reply.status);
    }
}

#[test]
fn no_route_page_bundle_export_or_webhook_gives_a_restricted_value_to_a_reader_without_its_role() {
    let (payroll, records) = (Receiver::start(), Receiver::start());
    let (s, stop) = server_with(&payroll, &records);
    // A medical certificate returned, corrected and recorded (the diagnosis for HR and doctors)…
    let medical_case = corrected_case(&s);
    let r = s.login("p018").post(&format!("/api/v1/cases/{medical_case}/acts"), &json!({"step": "hr-records", "action": "sign"}));
    assert_eq!(r.body["case"]["status"], "completed", "{}", r.body);
    // …and a health-fitness certificate of unfitness, open (its reasons for HR and doctors).
    let mut fitness = example("health-fitness-certificate", "unfit_reason");
    let reason = "Reason-SECRET-7Q2X";
    fitness["unfit_reason"] = json!(reason);
    let fitness_case = s.login("doc02").submit_ok("health-fitness-certificate", &fitness, "hf-unfit");

    let cases = [(medical_case.as_str(), vec![DIAGNOSIS, CORRECTED]), (fitness_case.as_str(), vec![reason])];
    for (case, values) in &cases {
        let secrets: Vec<String> = values.iter().flat_map(|v| secrets(v)).collect();
        for (who, role) in READERS {
            // Only HR and the doctors are named by these forms for these fields.
            if who == "p018" || who == "doc02" {
                continue;
            }
            let api = s.login(who);
            let page = cookie(s.login(who));
            for path in readable_paths(case) {
                let client = if path.starts_with("/api/") || path == "/metrics" { &api } else { &page };
                assert_clean(who, &format!("GET {path} ({role})"), &client.get(&path), &secrets);
            }
            for step in ["hr-records"] {
                for action in ["sign", "return"] {
                    let r = api.post("/api/v1/signing-payload", &json!({"kind": "act", "case": case, "step": step, "action": action}));
                    assert_clean(who, "a signing payload", &r, &secrets);
                }
            }
        }
    }
    // The receiver without restricted fields never got one; the one configured for the diagnosis
    // got it, and nothing else restricted.
    wait_for("the deliveries", || payroll.bodies().iter().filter(|b| b.contains("case.completed")).count() >= 1);
    let all: Vec<String> = cases.iter().flat_map(|(_, v)| v.iter().flat_map(|x| secrets(x))).collect();
    for body in payroll.bodies() {
        for s in &all {
            assert!(!body.contains(s.as_str()), "payroll got {s:?}");
        }
    }
    assert!(records.bodies().iter().all(|b| !secrets(reason).iter().any(|s| b.contains(s.as_str()))));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
}
