//! Real cases for the evidence tests and bench: the shipped definitions on a temporary sled
//! store, acted on through `CaseService` with real signatures made from the demo keys, exactly
//! as the server's `establish_signature` expects them (payload fields, `sha256:` prefixes), and
//! `simple` steps sealed with the service seal.
#![allow(dead_code)]

use carimbo::cases::CaseService;
use carimbo::catalog::Catalog;
use carimbo::cli::pki_files::load_verifier;
use carimbo::directory::Directory;
use carimbo::evidence::{self, EvidenceBundle, PkiMaterial};
use carimbo::http::api::submission_case_id;
use carimbo::i18n::Lang;
use carimbo::signing::{DeviceRule, FormRef, ServiceSeal, SignatureVerifier, Signer, SigningPayload, VerifyOptions, data_hash, verify_act};
use carimbo::store::{GENESIS_HASH, SledStore, Store};
use carimbo::workflow::{ActRequest, Action, Level, SignatureRecord};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn seeds() -> PathBuf {
    repo().join("seeds")
}

/// A case service on a fresh sled store, with the seal and verifier the server would use.
pub struct Harness {
    pub service: Arc<CaseService>,
    pub verifier: SignatureVerifier,
    pub seal: ServiceSeal,
    pub pki: PkiMaterial,
    /// When set, every act's JWS gets a signature time-stamp (JAdES B-T) from this TSA at the
    /// act's time, as `cases::stamp` adds it in the server.
    pub tsa: Option<carimbo::signing::timestamp::TsaSigner>,
    serial: std::sync::atomic::AtomicU64,
    _dir: Option<tempfile::TempDir>,
}

pub fn service_seal() -> ServiceSeal {
    let dir = seeds().join("pki/service");
    ServiceSeal::from_pem(&std::fs::read(dir.join("service.key.pem")).unwrap(), &std::fs::read(dir.join("service.pem")).unwrap()).unwrap()
}

/// The verifier of a demo server: the seeded people sign with key files, so their `qualified`
/// steps are met under the device rule relaxed for the demo (and the bundles record it).
pub fn server_verifier() -> SignatureVerifier {
    let pki = seeds().join("pki");
    load_verifier(&seeds().join("trust"), &pki.join("crl"), Some(&pki.join("service/service.pem"))).unwrap().with_device_rule(DeviceRule::RelaxedForDemo)
}

/// Now, to the second (signing payloads carry whole seconds).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

impl Harness {
    pub fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut h = Harness::in_dir(dir.path());
        h._dir = Some(dir);
        h
    }

    /// A harness whose sled store is `data/store`, as `carimbo serve --data data` keeps it.
    pub fn in_dir(data: &std::path::Path) -> Harness {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(data.join("store")).unwrap());
        let directory = Directory::load(&seeds().join("directory/directory.json")).unwrap();
        let report = Catalog::load_paths_with(&[repo().join("forms"), repo().join("workflows")], Some(&directory));
        assert!(report.problems.is_empty(), "{:?}", report.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>());
        let service = CaseService::new(store, report.catalog, directory).unwrap();
        Harness::with_service(Arc::new(service), None)
    }

    pub fn with_service(service: Arc<CaseService>, dir: Option<tempfile::TempDir>) -> Harness {
        Harness {
            service,
            verifier: server_verifier(),
            seal: service_seal(),
            pki: PkiMaterial::from_seeds(&seeds()).unwrap().with_device_rule(DeviceRule::RelaxedForDemo),
            tsa: None,
            serial: 1.into(),
            _dir: dir,
        }
    }

    /// The harness with the seeds' demo TSA stamping every act (B-T).
    pub fn with_demo_tsa(mut self) -> Harness {
        let dir = seeds().join("pki/tsa");
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
        self.tsa = Some(
            carimbo::signing::timestamp::TsaSigner::from_pem(&read("tsa.key.pem"), &read("tsa.pem"), carimbo::signing::timestamp::DEFAULT_TSA_POLICY).unwrap(),
        );
        self
    }

    /// A token of the harness's TSA over `bytes` at `at`.
    pub fn stamp(&self, bytes: &[u8], at: DateTime<Utc>) -> Vec<u8> {
        let serial = self.serial.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.tsa.as_ref().expect("a harness with a TSA").stamp(bytes, serial, at).unwrap()
    }

    /// `jws` with a signature time-stamp at `at` when the harness has a TSA.
    fn stamped(&self, mut jws: Value, at: DateTime<Utc>) -> Value {
        if self.tsa.is_some() {
            let token = self.stamp(carimbo::signing::timestamp::sig_tst_input(jws["signature"].as_str().unwrap()), at);
            jws["header"] = carimbo::signing::timestamp::sig_tst_header(&token);
        }
        jws
    }

    /// What the server stores for a signed act: the person's JWS over the payload, verified at
    /// the level it achieves, or the service seal for a step that accepts `simple`.
    pub fn sign(&self, who: &str, payload: &SigningPayload, data: &Value, required: Level) -> SignatureRecord {
        let at = payload.time;
        if required == Level::Simple {
            let seal = self.seal.seal(payload, at).unwrap();
            let jws = self.stamped(json!({"payload": payload, "protected": seal.protected, "signature": seal.signature}), at);
            return SignatureRecord { level: Level::Simple, signer: who.into(), jws: Some(jws), second_factor: false, provenance: None };
        }
        let people = seeds().join("pki/people");
        let signer =
            Signer::from_pem(&std::fs::read(people.join(format!("{who}.key.pem"))).unwrap(), &std::fs::read(people.join(format!("{who}.pem"))).unwrap())
                .unwrap();
        let jws = signer.sign(&payload.canonical_bytes().unwrap(), at).unwrap();
        let opts = VerifyOptions { trusted_time: Some(at), now: at, required_level: None };
        let verified = verify_act(&self.verifier, payload, Some(data), jws.to_json().as_bytes(), required, &opts).unwrap_or_else(|r| panic!("{who}: {r:?}"));
        let jws = self.stamped(json!({"payload": payload, "protected": jws.protected, "signature": jws.signature}), at);
        SignatureRecord { level: verified.level(), signer: who.into(), jws: Some(jws), second_factor: false, provenance: None }
    }

    /// Submits a form signed as its workflow demands; returns the case id.
    pub fn submit(&self, who: &str, form_id: &str, data: &Value, key: &str) -> String {
        let at = now();
        let catalog = self.service.catalog();
        let form = catalog.form(form_id).unwrap().clone();
        let wf = catalog.workflow(&form.workflow).unwrap().clone();
        let ctx = self.service.context_for(who, at).unwrap();
        let sub = form.validate(data, &ctx, Lang::En).unwrap_or_else(|e| panic!("{form_id}: {e:?}"));
        let case_id = submission_case_id(who, key);
        // Signed as the service records it: restricted fields as salted commitments.
        let signed_data = self.service.salted(&case_id, sub).committed().0;
        let payload = SigningPayload {
            case: case_id.clone(),
            form: FormRef { id: form.id.clone(), version: form.version.clone(), hash: format!("sha256:{}", form.content_hash) },
            step: "submit".into(),
            action: "submit".into(),
            data_hash: data_hash(&signed_data).unwrap(),
            previous_event_hash: format!("sha256:{GENESIS_HASH}"),
            signer: who.into(),
            time: at,
        };
        let sig = self.sign(who, &payload, &signed_data, wf.submit_signature);
        let idem = carimbo::cases::Idempotency::for_submit(key, who, form_id, data).unwrap();
        let view = self.service.submit(who, form_id, data, sig, at, Some(&idem), Lang::En).unwrap();
        assert_eq!(view.case.id, case_id);
        case_id
    }

    fn payload(&self, case_id: &str, who: &str, step: &str, action: &str, data: &Value, at: DateTime<Utc>) -> SigningPayload {
        let case = self.service.case(case_id).unwrap();
        let head = self.service.store().head(case_id).unwrap().unwrap();
        SigningPayload {
            case: case_id.into(),
            form: FormRef { id: case.form.id.clone(), version: case.form.version.clone(), hash: format!("sha256:{}", case.form.hash) },
            step: step.into(),
            action: action.into(),
            data_hash: data_hash(data).unwrap(),
            previous_event_hash: format!("sha256:{}", head.last_hash),
            signer: who.into(),
            time: at,
        }
    }

    /// Acts on an open step, signed at the level the step demands (sealed when `simple`).
    pub fn act(&self, case_id: &str, who: &str, step: &str, action: Action) {
        let at = now();
        let case = self.service.case(case_id).unwrap();
        let wf = self.service.workflow_of(&case).unwrap();
        let def = wf.step(step).unwrap();
        let signed_data = case.committed_data();
        let payload = self.payload(case_id, who, step, action.as_str(), &signed_data, at);
        let mut sig = self.sign(who, &payload, &signed_data, def.signature);
        sig.second_factor = def.second_factor;
        let comment = (action == Action::Return).then(|| "please correct the reason".to_string());
        self.service
            .act(case_id, ActRequest { actor: who.into(), step: step.into(), action, comment, signature: sig, now: at }, None)
            .unwrap_or_else(|e| panic!("{who} {action} {step}: {e}"));
    }

    /// The submitter sends a corrected version of a returned case.
    pub fn resubmit(&self, case_id: &str, who: &str, data: &Value) {
        let at = now();
        let case = self.service.case(case_id).unwrap();
        let form = self.service.form_of(&case).unwrap();
        let wf = self.service.workflow_of(&case).unwrap();
        let sub = form.validate(data, &self.service.context_for(who, at).unwrap(), Lang::En).unwrap();
        let signed_data = self.service.salted(case_id, sub).committed().0;
        let payload = self.payload(case_id, who, "resubmit", "resubmit", &signed_data, at);
        let sig = self.sign(who, &payload, &signed_data, wf.submit_signature);
        self.service.resubmit(case_id, who, data, sig, at, None, Lang::En).unwrap();
    }

    pub fn export(&self, case_id: &str, by: &str) -> EvidenceBundle {
        evidence::export(&self.service, case_id, &self.pki, &self.seal, by, &carimbo::visibility::Sight::everything(), Utc::now()).unwrap()
    }

    /// The bundle for a reader outside every restricted field's roles: commitments only.
    pub fn export_withholding(&self, case_id: &str, by: &str) -> EvidenceBundle {
        let form = self.service.form_of(&self.service.case(case_id).unwrap()).unwrap();
        evidence::export(&self.service, case_id, &self.pki, &self.seal, by, &carimbo::visibility::Sight::nothing_restricted(&form), Utc::now()).unwrap()
    }
}

/// Two weeks of leave starting a fortnight from now: long enough that the head decides too.
pub fn leave(reason: &str) -> Value {
    let start = (Utc::now() + Duration::days(14)).date_naive();
    let end = start + Duration::days(13);
    json!({"leave_type": "other", "start_date": start.to_string(), "end_date": end.to_string(), "reason": reason, "substitute": "Wong Ka Man"})
}

/// A leave case through supervisor (qualified certificate), head and HR records (a `simple`
/// step, sealed by the service), returned three times (by the supervisor, the head and HR) and
/// resubmitted each time, then approved and completed: 29 events, 13 signatures.
pub fn long_case(h: &Harness) -> String {
    let id = h.submit("p005", "absence-and-annual-leave", &leave("family matters"), "evidence-long");
    h.act(&id, "p003", "supervisor", Action::Return);
    h.resubmit(&id, "p005", &leave("family matters in Lisbon"));
    h.act(&id, "p003", "supervisor", Action::Approve);
    h.act(&id, "p002", "head", Action::Return);
    h.resubmit(&id, "p005", &leave("family matters in Lisbon, tickets booked"));
    h.act(&id, "p003", "supervisor", Action::Approve);
    h.act(&id, "p002", "head", Action::Approve);
    h.act(&id, "p019", "hr-records", Action::Return);
    h.resubmit(&id, "p005", &leave("family matters in Lisbon, tickets booked, substitute agreed"));
    h.act(&id, "p003", "supervisor", Action::Approve);
    h.act(&id, "p002", "head", Action::Approve);
    h.act(&id, "p019", "hr-records", Action::Sign);
    id
}

/// A leave case with 21 acts on its steps: the head returns it nine times (each time after the
/// supervisor's approval, each followed by a corrected resubmission), then supervisor, head and
/// HR records approve and sign. The "20-step case" of the evidence benchmark.
pub fn twenty_acts_case(h: &Harness) -> String {
    let id = h.submit("p005", "absence-and-annual-leave", &leave("round 0"), "evidence-twenty");
    for round in 1..=9 {
        h.act(&id, "p003", "supervisor", Action::Approve);
        h.act(&id, "p002", "head", Action::Return);
        h.resubmit(&id, "p005", &leave(&format!("round {round}")));
    }
    h.act(&id, "p003", "supervisor", Action::Approve);
    h.act(&id, "p002", "head", Action::Approve);
    h.act(&id, "p019", "hr-records", Action::Sign);
    id
}

/// The oath of office: qualified signatures demanded from the submitter and the authority,
/// then the HR record sealed as a `simple` act.
/// A medical certificate (its diagnosis restricted), returned by HR, corrected and recorded.
pub fn medical_case(h: &Harness) -> String {
    let def: Value = serde_json::from_slice(&std::fs::read(repo().join("forms/medical-certificate.json")).unwrap()).unwrap();
    let mut data = def["examples"]["valid"][0]["data"].clone();
    data["diagnosis_code"] = json!("K35.8");
    let id = h.submit("doc02", "medical-certificate", &data, "evidence-medical-restricted");
    h.act(&id, "p018", "hr-records", Action::Return);
    data["diagnosis_code"] = json!("K35.2");
    h.resubmit(&id, "doc02", &data);
    h.act(&id, "p018", "hr-records", Action::Sign);
    id
}

pub fn oath_case(h: &Harness) -> String {
    let def: Value = serde_json::from_slice(&std::fs::read(repo().join("forms/oath-of-office.json")).unwrap()).unwrap();
    let data = def["examples"]["valid"][0]["data"].clone();
    let id = h.submit("p031", "oath-of-office", &data, "evidence-oath");
    h.act(&id, "p001", "authority", Action::Sign);
    h.act(&id, "p018", "hr-records", Action::Sign);
    id
}
