//! Checking a bundle offline. The order of the checks is the one `docs/evidence-bundle.md`
//! gives; the first that fails ends the verification and is named in the report.

use super::read::{Known, Parsed, keep_fresh, parse, read_bundle};
use super::{
    EXPORTED_AFTER_NOW_SECONDS, EvidenceBundle, FORMAT, FORMAT_VERSION, MAX_BUNDLE_BYTES, RECORDED_AFTER_AT_SECONDS, SIGNING_TIME_AFTER_MINUTES,
    SIGNING_TIME_BEFORE_MINUTES, seal_label, sha256_hex,
};
use crate::catalog::Catalog;
use crate::chain::GENESIS_HASH;
use crate::forms::commitment::CommitmentError;
use crate::pki::cert::{CertFacts, parse_pem_certificates};
use crate::pki::history::{HistoryError, ServiceType, TrustHistory, parse_utc_z};
use crate::pki::{CertificateValidator, CrlSet, ValidationPolicy, ValidationReport};
use crate::signing::{DeviceRule, FormRef, SignatureVerifier, SigningPayload, VerifyOptions, data_hash, verify_act};
use crate::workflow::replay::{Demand, RouteCheck, RouteViolation};
use crate::workflow::{Case, CaseEvent, Level, SignatureRecord, WorkflowDefinition};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

/// What the auditor brings besides the bundle.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// SHA-256 fingerprints (hex) of the certificates the auditor trusts independently of the
    /// bundle. When given, every trust anchor of the bundle's trust list and the service-seal
    /// certificate must be among them.
    pub pins: Vec<String>,
    /// The present time (to refuse signing times and exports in the future, and the trust
    /// list's entries dated after it). The verifier reads no clock: the caller passes it.
    pub now: DateTime<Utc>,
    /// Shared between the bundles of one run (`evidence::archive`): definitions and validation
    /// material computed once for every bundle that carries the same bytes.
    pub cache: Option<Arc<super::archive::VerifyCache>>,
    /// The auditor's device rule (`carimbo verify --device-rule`), over the one the bundle
    /// records; neither: `enforced`.
    pub device_rule: Option<DeviceRule>,
}

/// The device rule a bundle's signatures are judged with, and the report's note saying whence.
fn device_rule_of(bundle: &EvidenceBundle, cfg: &VerifyConfig) -> (DeviceRule, String) {
    match (cfg.device_rule, bundle.device_rule) {
        (Some(rule), _) => (rule, format!("device rule: {}, as the verifier was told (the bundle records {})", rule.as_str(), bundle.device_rule.map_or("none", DeviceRule::as_str))),
        (None, Some(DeviceRule::RelaxedForDemo)) => (
            DeviceRule::RelaxedForDemo,
            "device rule relaxed for the demo, as the server that exported the bundle judged its signatures: a qualified certificate without QcSSCD (a key file) counted as qualified".to_string(),
        ),
        (None, Some(rule)) => (rule, format!("device rule: {}, as the server that exported the bundle judged its signatures", rule.as_str())),
        (None, None) => (DeviceRule::Enforced, "device rule: enforced (the bundle records none)".to_string()),
    }
}

/// The first place that did not verify.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable code, `CARIMBO-E09xx` (see `docs/errors.md`).
    pub code: &'static str,
    /// Which check: parse, format, file, definition, pki, chain, event, signature, level, route,
    /// head, seal, pin.
    pub check: &'static str,
    /// The event's `seq`, when the place is an event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// JSON pointer (RFC 6901) into the bundle of the value that is wrong.
    pub pointer: String,
    /// The bundled file concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Byte offset in the bundle, for a parse error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    pub message: String,
    /// The signature validation report, when a signature did not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<ValidationReport>,
}

impl Finding {
    pub(crate) fn new(code: &'static str, check: &'static str, pointer: impl Into<String>, message: impl Into<String>) -> Box<Finding> {
        Box::new(Finding { code, check, seq: None, pointer: pointer.into(), file: None, offset: None, message: message.into(), report: None })
    }

    fn seq(mut self: Box<Self>, seq: u64) -> Box<Self> {
        self.seq = Some(seq);
        self
    }

    pub(crate) fn file(mut self: Box<Self>, file: &str) -> Box<Self> {
        self.file = Some(file.to_string());
        self
    }

    /// The place in words: event, file or byte, with the pointer.
    pub fn place(&self) -> String {
        let pointer = if self.pointer.is_empty() { "/".to_string() } else { self.pointer.clone() };
        match (&self.seq, &self.file, &self.offset) {
            (Some(seq), _, _) => format!("event {seq} ({pointer})"),
            (None, Some(file), _) => format!("file {file} ({pointer})"),
            (None, None, Some(offset)) => format!("byte {offset} ({pointer})"),
            _ => pointer,
        }
    }
}

/// One verified signature.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureLine {
    pub seq: u64,
    pub event: String,
    pub step: String,
    pub action: String,
    pub signer: String,
    pub required: Level,
    pub achieved: Level,
    /// The time the certificates were judged at: the event's `recorded_at`.
    pub signing_time: String,
    /// The signing certificate's holder, as the certificate names them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The signing provider recorded with the act (`browser-key`, `hsm`), when it was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// For a key on the HSM: the id of the signer's authorization the signature was made under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
}

/// A certificate the bundle asks the auditor to trust, with its fingerprint.
#[derive(Debug, Clone, Serialize)]
pub struct Fingerprint {
    pub role: String,
    pub subject: String,
    pub sha256: String,
    pub pinned: bool,
}

/// The outcome of `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerificationReport {
    /// True only when every check passed.
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The case's status as its events replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exported_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exported_by: Option<String>,
    pub files_checked: usize,
    pub events_checked: usize,
    pub signatures: Vec<SignatureLine>,
    /// The route followed, one line per event.
    pub route: Vec<String>,
    pub trust: Vec<Fingerprint>,
    /// Whether the trust anchors and the service certificate were pinned by the auditor.
    pub pinned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<Finding>,
    pub notes: Vec<String>,
    /// Restricted fields this bundle holds as salted commitments only (left out for a reader
    /// outside the roles the form names): the signatures over them verified all the same.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<String>,
    /// The archive time-stamps (B-LTA), oldest first, as verified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub archive_timestamps: Vec<super::ltv::ArchiveLine>,
    /// When the last archive time-stamp's TSA chain first expires: re-stamp before then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_valid_until: Option<String>,
}

impl VerificationReport {
    fn empty() -> VerificationReport {
        VerificationReport {
            passed: false,
            case_id: None,
            form: None,
            workflow: None,
            status: None,
            exported_at: None,
            exported_by: None,
            files_checked: 0,
            events_checked: 0,
            signatures: Vec::new(),
            route: Vec::new(),
            trust: Vec::new(),
            pinned: false,
            first_failure: None,
            notes: Vec::new(),
            withheld: Vec::new(),
            archive_timestamps: Vec::new(),
            archive_valid_until: None,
        }
    }

    /// The report for a person: what was checked, and the first failure or PASSED.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "carimbo evidence bundle — case {}", self.case_id.as_deref().unwrap_or("?"));
        if let Some(f) = &self.form {
            let _ = writeln!(s, "  form:      {f}");
        }
        if let Some(w) = &self.workflow {
            let _ = writeln!(s, "  workflow:  {w}");
        }
        if let (Some(at), Some(by)) = (&self.exported_at, &self.exported_by) {
            let _ = writeln!(s, "  exported:  {at} by {by}");
        }
        let _ = writeln!(s, "  files:     {} hashes checked", self.files_checked);
        let _ = writeln!(s, "  events:    {} checked (hash chain, route)", self.events_checked);
        if let Some(st) = &self.status {
            let _ = writeln!(s, "  status:    {st}");
        }
        if !self.signatures.is_empty() {
            let _ = writeln!(s, "  signatures ({}):", self.signatures.len());
            for l in &self.signatures {
                let _ = writeln!(
                    s,
                    "    event {:>3} {:<11} {:<18} {:<8} by {:<6} {:<9} (required {:<9}) at {}{}",
                    l.seq,
                    l.event,
                    l.step,
                    l.action,
                    l.signer,
                    l.achieved.as_str(),
                    l.required.as_str(),
                    l.signing_time,
                    l.certificate.as_deref().map(|c| format!(" — {c}")).unwrap_or_default()
                );
            }
        }
        if !self.route.is_empty() {
            let _ = writeln!(s, "  route:");
            for r in &self.route {
                let _ = writeln!(s, "    {r}");
            }
        }
        if !self.trust.is_empty() {
            let _ = writeln!(
                s,
                "  trusted certificates ({}):",
                if self.pinned { "pinned" } else { "NOT pinned: compare these fingerprints with the published ones, or pass --pin" }
            );
            for t in &self.trust {
                let _ = writeln!(s, "    {} {}  {}", t.sha256, t.role, t.subject);
            }
        }
        if !self.withheld.is_empty() {
            let _ = writeln!(
                s,
                "  withheld:  {} (restricted: only their salted commitments are in this bundle, and the signatures over them verify)",
                self.withheld.join(", ")
            );
        }
        if !self.archive_timestamps.is_empty() {
            let _ = writeln!(s, "  archive time-stamps ({}, B-LTA):", self.archive_timestamps.len());
            for (k, a) in self.archive_timestamps.iter().enumerate() {
                let _ = writeln!(s, "    {k} at {} by {} ({}), TSA valid until {}", a.gen_time, a.tsa, a.tsa_entity, a.valid_until);
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        match &self.first_failure {
            None => {
                let _ = writeln!(s, "RESULT: PASSED");
            }
            Some(f) => {
                let _ = writeln!(s, "RESULT: FAILED at {} [{}]", f.place(), f.code);
                let _ = writeln!(s, "  {}", f.message);
                if let Some(r) = &f.report {
                    let sub = r.sub_indication.map(|x| x.as_str()).unwrap_or("");
                    let _ = writeln!(s, "  signature report: {} {sub}: {}", indication_name(r), r.detail);
                }
            }
        }
        s
    }
}

fn indication_name(r: &ValidationReport) -> String {
    serde_json::to_value(r.indication).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// What is not decided again offline, said in every report.
const NOTES: [&str; 2] = [
    "checked with the bundle's own trust list, CRLs and service certificate: trust them only if their fingerprints match the ones the administration publishes",
    "taken as recorded, since deciding them needs the staff directory of the time: who was assigned to each seat (step_opened), step conditions (step_skipped), delegations and escalation targets, the submitter's role, and the TOTP check behind a recorded second factor",
];

/// Verifies a bundle with no pins, at `now`.
pub fn verify(bundle: &[u8], now: DateTime<Utc>) -> VerificationReport {
    verify_with(bundle, &VerifyConfig { pins: Vec::new(), now, cache: None, device_rule: None })
}

/// Verifies a bundle fully offline: no server, no network, no store.
pub fn verify_with(bundle: &[u8], cfg: &VerifyConfig) -> VerificationReport {
    let mut report = VerificationReport::empty();
    report.notes = NOTES.iter().map(|s| s.to_string()).collect();
    match run(bundle, cfg, &mut report) {
        Ok(()) => report.passed = true,
        Err(f) => {
            report.passed = false;
            report.first_failure = Some(*f);
        }
    }
    report
}

pub(crate) type Check<T> = Result<T, Box<Finding>>;

/// A certificate whose expiry matters for long-term verification: a signature time-stamp's TSA
/// chain, an unstamped signature's chain, the seal's. Each must be proven to have existed
/// before its first expiry (`ltv::check_proofs_of_existence`).
pub(crate) struct PoeNeed {
    pub(crate) pointer: String,
    pub(crate) seq: Option<u64>,
    /// What it is, in words: "event 3's signature time-stamp".
    pub(crate) what: String,
    pub(crate) subject: String,
    pub(crate) not_after: DateTime<Utc>,
}

impl PoeNeed {
    /// The first certificate of `chain` to expire.
    fn first_expiry(chain: &[crate::pki::report::ChainElement], pointer: String, seq: Option<u64>, what: String) -> Option<PoeNeed> {
        chain.iter().min_by_key(|c| c.not_after).map(|c| PoeNeed { pointer, seq, what, subject: c.subject.clone(), not_after: c.not_after })
    }
}

pub(crate) const E_PARSE: &str = "CARIMBO-E0901";
pub(crate) const E_DUPLICATE: &str = crate::json_strict::DUPLICATE_MEMBER;
const E_FORMAT: &str = "CARIMBO-E0902";
const E_FILE: &str = "CARIMBO-E0903";
const E_DEFINITION: &str = "CARIMBO-E0904";
pub(crate) const E_PKI: &str = "CARIMBO-E0905";
const E_LINK: &str = "CARIMBO-E0906";
const E_HASH: &str = "CARIMBO-E0907";
const E_EVENT: &str = "CARIMBO-E0908";
const E_PAYLOAD: &str = "CARIMBO-E0909";
const E_SIGNATURE: &str = "CARIMBO-E0910";
const E_LEVEL: &str = "CARIMBO-E0911";
const E_ROUTE: &str = "CARIMBO-E0912";
const E_HEAD: &str = "CARIMBO-E0913";
const E_SEAL: &str = "CARIMBO-E0914";
const E_PIN: &str = "CARIMBO-E0915";
const E_DISCLOSURE: &str = "CARIMBO-E0916";
const E_TRUST_HISTORY: &str = "CARIMBO-E0640";
const E_SEAL_IDENTITY: &str = "CARIMBO-E0641";
const E_UNKNOWN_MEMBER: &str = "CARIMBO-E0642";
const E_TIME: &str = "CARIMBO-E0643";
const E_REFERENCE: &str = "CARIMBO-E0644";

fn run(bytes: &[u8], cfg: &VerifyConfig, out: &mut VerificationReport) -> Check<()> {
    let now = cfg.now;
    // 1. Parse.
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(Finding::new(E_PARSE, "parse", "", format!("the file has {} bytes; a bundle may have at most {MAX_BUNDLE_BYTES}", bytes.len())));
    }
    // A repeated member name (an event body with two `level`s) would let two readers see two
    // bundles; it is refused before anything is read from the file.
    let Parsed { mut value, known, fresh } = parse(bytes, cfg.cache.as_deref())?;
    let bundle = read_bundle(bytes, &mut value, &known)?;
    // 2. Format.
    if bundle.format != FORMAT {
        return Err(Finding::new(E_FORMAT, "format", "/format", format!("`format` is {:?}, not {FORMAT:?}", bundle.format)));
    }
    if bundle.format_version != FORMAT_VERSION {
        return Err(Finding::new(
            E_FORMAT,
            "format",
            "/format_version",
            format!("format version {} is not known to this verifier (it reads version {FORMAT_VERSION})", bundle.format_version),
        ));
    }
    out.case_id = Some(bundle.case_id.clone());
    out.exported_at = Some(bundle.exported_at.clone());
    out.exported_by = Some(bundle.exported_by.clone());
    let Some(first) = bundle.events.first() else {
        return Err(Finding::new(E_LINK, "chain", "/events", "the bundle holds no events"));
    };
    if bundle.case_id != first.case_id && first.body.get("case_id").and_then(Value::as_str) == Some(first.case_id.as_str()) {
        return Err(Finding::new(
            E_LINK,
            "chain",
            "/case_id",
            format!("the bundle is for case {:?}, but its events are case {:?}", bundle.case_id, first.case_id),
        ));
    }
    // 3. File hashes.
    let crl_bytes = check_files(&bundle, &known, out)?;
    // 4. Definitions.
    let workflow = cached_definitions(&bundle, cfg, out)?;
    // 5. Validation material.
    let (rule, rule_note) = device_rule_of(&bundle, cfg);
    out.notes.push(rule_note);
    let loaded = cached_pki(&bundle, &crl_bytes, cfg, rule, now, out)?;
    let pki = &loaded.pki;
    let ctx = Context { bundle: &bundle, workflow: &workflow, verifier: &pki.verifier, pki, now };
    // 6. Hash chain.
    let times = check_chain(&ctx)?;
    check_exported_at(&ctx, &times)?;
    // The chain holds, so the submission's pins are authentic.
    check_reference_pins(&bundle)?;
    // 7. Each event: signature, level, route.
    let mut replay = EventWalk::new(&ctx, &times);
    for k in 0..bundle.events.len() {
        replay.check(k)?;
    }
    replay.finish()?;
    out.events_checked = bundle.events.len();
    out.status = replay.case().map(|c| c.status.as_str().to_string());
    out.signatures = std::mem::take(&mut replay.lines);
    out.route = std::mem::take(&mut replay.route);
    out.withheld = std::mem::take(&mut replay.withheld);
    let mut needs = std::mem::take(&mut replay.needs);
    // 8. Seal.
    needs.extend(check_seal(&ctx, &value, &known)?);
    // 9. Archive time-stamps (B-LTA), and a proof of existence for every certificate that has
    // expired since it was used.
    // The bundle's CRLs, named, for the stamps (none to judge without archive stamps).
    let crl_files: Vec<(String, String, Vec<u8>)> = match bundle.archive_timestamps.is_empty() {
        true => Vec::new(),
        false => crl_bytes.iter().enumerate().map(|(i, b)| (format!("/pki/crls/{i}/base64"), bundle.pki.crls[i].name.clone(), b.clone())).collect(),
    };
    let exported = parse_utc_z(&bundle.exported_at).map_err(|e| Finding::new(E_TIME, "time", "/exported_at", e))?;
    let proof = super::ltv::check_archive(&bundle, &value, &pki.history, pki.verifier.timestamps(), crl_files, exported, now)?;
    out.archive_timestamps = proof.lines;
    out.archive_valid_until = proof.valid_until.map(crate::pki::history::utc_text);
    super::ltv::check_proofs_of_existence(&needs, proof.proven_at, now)?;
    // 10. Pins.
    if !cfg.pins.is_empty() {
        if let Some(t) = out.trust.iter().find(|t| !t.pinned) {
            let pointer = "/pki/trust_list".to_string();
            return Err(Finding::new(
                E_PIN,
                "pin",
                pointer,
                format!("the {} `{}` (SHA-256 {}) is not among the pinned certificates", t.role, t.subject, t.sha256),
            ));
        }
        out.pinned = true;
    }
    // Every check passed: the shared members seen for the first time are kept for the next
    // bundle that holds the same bytes.
    if let Some(cache) = &cfg.cache {
        keep_fresh(cache, fresh, &value, &crl_bytes);
    }
    Ok(())
}

/// Re-computes every file's SHA-256; returns the CRL files' bytes.
fn check_files(b: &EvidenceBundle, known: &Known, out: &mut VerificationReport) -> Check<Vec<Vec<u8>>> {
    out.files_checked = 4 + b.definitions.reference.len() + b.pki.crls.len();
    // A shared member an earlier bundle had byte for byte had its files checked then.
    if known.definitions.is_none() {
        check_definition_files(b)?;
    }
    match &known.pki {
        Some(pki) => Ok(pki.crls.clone()),
        None => check_pki_files(b),
    }
}

/// Each text's SHA-256 is the one declared beside it.
fn check_text(ptr: &str, name: &str, declared: &str, text: &str, witness: Option<String>) -> Check<()> {
    let computed = sha256_hex(text.as_bytes());
    if computed == declared {
        return Ok(());
    }
    let pointer = match witness {
        Some(w) if w == declared => format!("{ptr}/text"),
        Some(w) if w == computed => format!("{ptr}/sha256"),
        _ => ptr.to_string(),
    };
    Err(Finding::new(E_FILE, "file", pointer, format!("{name} hashes to {computed}, but the bundle gives {declared}")).file(name))
}

/// The form, workflow and reference texts hash as declared (the submission's pins witness
/// which side changed), and no two reference files share a name.
fn check_definition_files(b: &EvidenceBundle) -> Check<()> {
    let body = |name: &str| b.events.first().and_then(|e| e.body.get(name)).and_then(|v| v.get("hash")).and_then(Value::as_str).map(str::to_string);
    let d = &b.definitions;
    check_text("/definitions/form", &d.form.name, &d.form.sha256, &d.form.text, body("form"))?;
    check_text("/definitions/workflow", &d.workflow.name, &d.workflow.sha256, &d.workflow.text, body("workflow"))?;
    let mut names = BTreeSet::new();
    for (i, f) in d.reference.iter().enumerate() {
        let ptr = format!("/definitions/reference/{i}");
        if !names.insert(f.name.clone()) {
            return Err(Finding::new(E_FILE, "file", format!("{ptr}/name"), format!("two reference files are named {}", f.name)).file(&f.name));
        }
        check_text(&ptr, &f.name, &f.sha256, &f.text, None)?;
    }
    Ok(())
}

/// The trust list, the service certificate and every CRL hash as declared; the CRLs decoded.
fn check_pki_files(b: &EvidenceBundle) -> Check<Vec<Vec<u8>>> {
    check_text("/pki/trust_list", &b.pki.trust_list.name, &b.pki.trust_list.sha256, &b.pki.trust_list.text, None)?;
    check_text("/pki/service_certificate", &b.pki.service_certificate.name, &b.pki.service_certificate.sha256, &b.pki.service_certificate.text, None)?;
    let mut crls = Vec::new();
    let mut names = BTreeSet::new();
    for (i, f) in b.pki.crls.iter().enumerate() {
        let ptr = format!("/pki/crls/{i}");
        if !names.insert(f.name.clone()) {
            return Err(Finding::new(E_FILE, "file", format!("{ptr}/name"), format!("two CRL files are named {}", f.name)).file(&f.name));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&f.base64)
            .map_err(|e| Finding::new(E_FILE, "file", format!("{ptr}/base64"), format!("{} is not valid base64: {e}", f.name)).file(&f.name))?;
        let computed = sha256_hex(&bytes);
        if computed != f.sha256 {
            return Err(Finding::new(E_FILE, "file", ptr, format!("{} hashes to {computed}, but the bundle gives {}", f.name, f.sha256)).file(&f.name));
        }
        crls.push(bytes);
    }
    Ok(crls)
}

/// The reference files are exactly those the submission pinned (name and SHA-256), when it
/// pinned any (records made before the pin did not).
fn check_reference_pins(b: &EvidenceBundle) -> Check<()> {
    let Some(pins) = b.events.first().and_then(|e| e.body.get("reference")).and_then(Value::as_object) else { return Ok(()) };
    for (i, f) in b.definitions.reference.iter().enumerate() {
        match pins.get(&f.name).and_then(Value::as_str) {
            Some(h) if h == f.sha256 => {}
            Some(h) => {
                return Err(Finding::new(
                    E_REFERENCE,
                    "definition",
                    format!("/definitions/reference/{i}"),
                    format!("{} hashes to {}, but the case was opened with the version hashing to {h}: the reference data was changed", f.name, f.sha256),
                )
                .file(&f.name));
            }
            None => {
                return Err(Finding::new(
                    E_REFERENCE,
                    "definition",
                    format!("/definitions/reference/{i}/name"),
                    format!("{} is not among the reference data the case was opened with", f.name),
                )
                .file(&f.name));
            }
        }
    }
    if let Some(name) = pins.keys().find(|n| !b.definitions.reference.iter().any(|f| &f.name == *n)) {
        return Err(Finding::new(
            E_REFERENCE,
            "definition",
            "/definitions/reference",
            format!("the case was opened with {name}, which the bundle does not hold"),
        ));
    }
    Ok(())
}

/// Loads the form and workflow (with the reference data) exactly as carimbo loads definitions.
fn load_definitions(b: &EvidenceBundle, out: &mut VerificationReport) -> Check<Arc<WorkflowDefinition>> {
    let d = &b.definitions;
    for (ptr, f, kind, dir) in [("/definitions/form", &d.form, "form", "forms"), ("/definitions/workflow", &d.workflow, "workflow", "workflows")] {
        let v: Value = crate::json_strict::from_str(&f.text).map_err(|e| {
            Finding::new(if e.is_duplicate() { E_DUPLICATE } else { E_DEFINITION }, "definition", format!("{ptr}/text"), format!("{} is not JSON: {e}", f.name))
                .file(&f.name)
        })?;
        let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        if field("kind") != kind {
            return Err(Finding::new(E_DEFINITION, "definition", format!("{ptr}/text"), format!("{} is not a {kind} definition", f.name)).file(&f.name));
        }
        if field("id") != f.id {
            return Err(Finding::new(
                E_DEFINITION,
                "definition",
                format!("{ptr}/id"),
                format!("{} defines {:?}, but the bundle says {:?}", f.name, field("id"), f.id),
            )
            .file(&f.name));
        }
        if field("version") != f.version {
            return Err(Finding::new(
                E_DEFINITION,
                "definition",
                format!("{ptr}/version"),
                format!("{} is version {:?}, but the bundle says {:?}", f.name, field("version"), f.version),
            )
            .file(&f.name));
        }
        if f.name != format!("{dir}/{}.json", f.id) {
            return Err(Finding::new(
                E_DEFINITION,
                "definition",
                format!("{ptr}/name"),
                format!("the {kind} file should be named {dir}/{}.json, not {}", f.id, f.name),
            )
            .file(&f.name));
        }
    }
    let reference = d.reference.iter().map(|r| (r.name.clone(), r.text.clone().into_bytes()));
    let texts = reference.chain([&d.form, &d.workflow].map(|f| (f.name.clone(), f.text.clone().into_bytes())));
    let loaded = Catalog::load_named(texts);
    if let Some(p) = loaded.problems.first() {
        let pointer = if p.file == d.form.name {
            "/definitions/form/text".to_string()
        } else if p.file == d.workflow.name {
            "/definitions/workflow/text".to_string()
        } else {
            d.reference.iter().position(|r| r.name == p.file).map(|i| format!("/definitions/reference/{i}/text")).unwrap_or_else(|| "/definitions".into())
        };
        return Err(Finding::new(E_DEFINITION, "definition", pointer, format!("the definitions do not load as carimbo loads them: {p}")).file(&p.file));
    }
    let form = loaded.catalog.forms.values().find(|f| f.content_hash == d.form.sha256).cloned();
    let workflow = loaded.catalog.workflows.values().find(|w| w.content_hash == d.workflow.sha256).cloned();
    let Some(form) = form else {
        return Err(Finding::new(E_DEFINITION, "definition", "/definitions/form", "the form definition did not load").file(&d.form.name));
    };
    let Some(workflow) = workflow else {
        return Err(Finding::new(E_DEFINITION, "definition", "/definitions/workflow", "the workflow definition did not load").file(&d.workflow.name));
    };
    if workflow.form != form.id {
        return Err(Finding::new(
            E_DEFINITION,
            "definition",
            "/definitions/workflow",
            format!("the workflow routes form {:?}, not {:?}", workflow.form, form.id),
        )
        .file(&d.workflow.name));
    }
    out.form = Some(format!("{} version {} (sha256 {})", form.id, form.version, form.content_hash));
    out.workflow = Some(format!("{} version {} (sha256 {})", workflow.id, workflow.version, workflow.content_hash));
    Ok(workflow)
}

/// `load_definitions`, or its earlier result for a bundle with the very same definition bytes.
fn cached_definitions(b: &EvidenceBundle, cfg: &VerifyConfig, out: &mut VerificationReport) -> Check<Arc<WorkflowDefinition>> {
    let Some(cache) = &cfg.cache else { return load_definitions(b, out) };
    let k = super::archive::definitions_key(&b.definitions);
    if let Some(hit) = cache.definitions(&k) {
        out.form = Some(hit.form_line.clone());
        out.workflow = Some(hit.workflow_line.clone());
        return Ok(hit.workflow.clone());
    }
    let workflow = load_definitions(b, out)?;
    let loaded = super::archive::LoadedDefinitions {
        workflow: workflow.clone(),
        form_line: out.form.clone().unwrap_or_default(),
        workflow_line: out.workflow.clone().unwrap_or_default(),
    };
    cache.keep_definitions(k, Arc::new(loaded));
    Ok(workflow)
}

/// `load_pki`, or its earlier result for a bundle with the very same validation material and
/// pins (whose verifier keeps its validated chains).
fn cached_pki(
    b: &EvidenceBundle,
    crl_bytes: &[Vec<u8>],
    cfg: &VerifyConfig,
    rule: DeviceRule,
    now: DateTime<Utc>,
    out: &mut VerificationReport,
) -> Check<Arc<super::archive::LoadedPki>> {
    let k = super::archive::pki_key(&b.pki, &cfg.pins, rule, now);
    let hit = |out: &mut VerificationReport| {
        let hit = cfg.cache.as_ref().and_then(|c| c.pki(&k))?;
        out.trust.extend(hit.trust.iter().cloned());
        Some(hit)
    };
    if let Some(hit) = hit(out) {
        return Ok(hit);
    }
    let load = |out: &mut VerificationReport| {
        let before = out.trust.len();
        let pki = load_pki(b, crl_bytes, cfg, rule, now, out)?;
        let loaded = Arc::new(super::archive::LoadedPki { pki, trust: out.trust[before..].to_vec() });
        if let Some(cache) = &cfg.cache {
            cache.keep_pki(k, loaded.clone());
        }
        Ok(loaded)
    };
    match &cfg.cache {
        // Another thread may have loaded the same material while this one waited.
        Some(cache) => cache.loading(|| match hit(out) {
            Some(hit) => Ok(hit),
            None => load(out),
        }),
        None => load(out),
    }
}

/// Builds the signature verifier from the bundle's trust-list history, CRLs and service
/// certificate. The history is verified whole (every entry signed by the operator, in order),
/// and the service certificate must be one the history names as a service seal.
fn load_pki(b: &EvidenceBundle, crl_bytes: &[Vec<u8>], cfg: &VerifyConfig, rule: DeviceRule, now: DateTime<Utc>, out: &mut VerificationReport) -> Check<Pki> {
    let p = &b.pki;
    let history = TrustHistory::from_slice(p.trust_list.text.as_bytes(), now).map_err(|e: HistoryError| {
        Finding::new(E_TRUST_HISTORY, "pki", "/pki/trust_list/text", format!("the trust list's history does not verify: {e}")).file(&p.trust_list.name)
    })?;
    let pins: BTreeSet<String> = cfg.pins.iter().map(|s| s.trim().to_ascii_lowercase().replace(':', "")).collect();
    for m in history.members() {
        let role = format!("{} {}", m.service_type.as_str().replace('_', " "), m.id);
        let sha = m.facts.sha256_hex();
        // Only the anchors need the auditor's pin: the operator chains to one, and everything
        // else is named by entries the operator signed.
        let pinned = m.service_type != ServiceType::TrustAnchor || pins.contains(&sha);
        out.trust.push(Fingerprint { role, subject: m.facts.subject.clone(), pinned, sha256: sha });
    }
    for (from, cert) in history.operators() {
        if let Ok(facts) = CertFacts::from_der(cert) {
            out.trust.push(Fingerprint {
                role: format!("trust-list operator (from entry {from})"),
                subject: facts.subject.clone(),
                pinned: true,
                sha256: facts.sha256_hex(),
            });
        }
    }
    let trust = history
        .trust_list()
        .map_err(|e| Finding::new(E_PKI, "pki", "/pki/trust_list", format!("the trust list is not usable: {e}")).file(&p.trust_list.name))?;
    let mut crls = CrlSet::empty();
    let files: Vec<(String, String, Vec<u8>)> =
        crl_bytes.iter().enumerate().map(|(i, b)| (format!("/pki/crls/{i}/base64"), p.crls[i].name.clone(), b.clone())).collect();
    super::ltv::add_crls(&mut crls, &files)?;
    let svc = &p.service_certificate;
    let certs: Vec<CertificateDer<'static>> = parse_pem_certificates(svc.text.as_bytes(), &svc.name)
        .map_err(|e| Finding::new(E_PKI, "pki", "/pki/service_certificate/text", e.to_string()).file(&svc.name))?;
    if !history.members().iter().any(|m| m.service_type == ServiceType::ServiceSeal && m.certificate == certs[0]) {
        let subject = CertFacts::from_der(&certs[0]).map(|f| f.subject).unwrap_or_default();
        return Err(Finding::new(
            E_SEAL_IDENTITY,
            "seal",
            "/pki/service_certificate",
            format!(
                "the trust list names no service seal with this certificate (`{subject}`): a certificate that is not the service's cannot seal acts or bundles"
            ),
        )
        .file(&svc.name));
    }
    let service_seal = certs[0].clone();
    let verifier = SignatureVerifier::new(CertificateValidator::new(trust, crls, ValidationPolicy::document_signing()))
        .with_service_seal(&certs[0])
        .with_device_rule(rule);
    Ok(Pki { verifier, history, service_seal })
}

/// The validation material of a bundle, once checked.
pub(crate) struct Pki {
    pub(crate) verifier: SignatureVerifier,
    pub(crate) history: TrustHistory,
    service_seal: CertificateDer<'static>,
}

struct Context<'a> {
    bundle: &'a EvidenceBundle,
    workflow: &'a WorkflowDefinition,
    verifier: &'a SignatureVerifier,
    pki: &'a Pki,
    now: DateTime<Utc>,
}

/// The chain of event hashes; returns each event's `recorded_at`.
fn check_chain(ctx: &Context) -> Check<Vec<DateTime<Utc>>> {
    let b = ctx.bundle;
    let n = b.events.len();
    let mut times: Vec<DateTime<Utc>> = Vec::with_capacity(n);
    for (k, ev) in b.events.iter().enumerate() {
        let base = format!("/events/{k}");
        let at = |field: &str, code, msg: String| Finding::new(code, "chain", format!("{base}{field}"), msg).seq(ev.seq);
        if ev.case_id != b.case_id {
            return Err(at("/case_id", E_LINK, format!("the event belongs to case {:?}, not {:?}", ev.case_id, b.case_id)));
        }
        if ev.seq != k as u64 + 1 {
            return Err(at(
                "/seq",
                E_LINK,
                format!("event number {} of the bundle has seq {}: an event is missing, added or out of order here", k + 1, ev.seq),
            ));
        }
        let expected_prev = if k == 0 { GENESIS_HASH } else { b.events[k - 1].hash.as_str() };
        if ev.prev_hash != expected_prev {
            return Err(at("/prev_hash", E_LINK, format!("prev_hash is {}, but the previous event's hash is {expected_prev}", ev.prev_hash)));
        }
        let recorded = DateTime::parse_from_rfc3339(&ev.recorded_at).map(|t| t.with_timezone(&Utc));
        let computed = event_hash(ev);
        if computed != ev.hash {
            let witness = if k + 1 < n { b.events[k + 1].prev_hash.as_str() } else { b.head.last_hash.as_str() };
            if witness == computed {
                return Err(at(
                    "/hash",
                    E_HASH,
                    format!("the recorded hash {} was altered: the event's content hashes to {computed}, as the next link says", ev.hash),
                ));
            }
            let mut f = at(
                "",
                E_HASH,
                format!(
                    "the event's content (body or recorded_at) hashes to {computed}, not to its recorded hash {}: it was changed after it was recorded",
                    ev.hash
                ),
            );
            if let Some(local) = recorded.ok().and_then(|t| localize(ctx, k, t)) {
                f.pointer = local.pointer;
                f.message = format!("{}; {}", f.message, local.message);
                f.report = local.report;
            }
            return Err(f);
        }
        let recorded = recorded.map_err(|e| at("/recorded_at", E_LINK, format!("recorded_at {:?} is not an RFC 3339 time: {e}", ev.recorded_at)))?;
        parse_utc_z(&ev.recorded_at).map_err(|e| at("/recorded_at", E_TIME, format!("recorded_at must be UTC with `Z`: {e}")))?;
        if let Some(prev) = times.last().filter(|prev| recorded < **prev) {
            return Err(at("/recorded_at", E_LINK, format!("recorded at {}, before the previous event ({prev})", ev.recorded_at)));
        }
        times.push(recorded);
    }
    if b.head.version != n as u64 {
        return Err(Finding::new(
            E_HEAD,
            "head",
            "/head/version",
            format!("the bundle holds {n} events, but the case head says {}: events are missing or added at the end", b.head.version),
        ));
    }
    if b.head.last_hash != b.events[n - 1].hash {
        return Err(Finding::new(
            E_HEAD,
            "head",
            "/head/last_hash",
            format!("the case head's last hash {} is not the last event's hash {}", b.head.last_hash, b.events[n - 1].hash),
        ));
    }
    Ok(times)
}

/// `exported_at` is UTC with `Z`, not before the last event was recorded, and not after the
/// verifier's `now` (beyond clock skew).
fn check_exported_at(ctx: &Context, times: &[DateTime<Utc>]) -> Check<DateTime<Utc>> {
    let b = ctx.bundle;
    let exported = parse_utc_z(&b.exported_at)
        .map_err(|e| Finding::new(E_TIME, "time", "/exported_at", format!("exported_at must be an RFC 3339 time in UTC with `Z`: {e}")))?;
    if let Some(last) = times.last().filter(|last| exported < **last) {
        return Err(Finding::new(
            E_TIME,
            "time",
            "/exported_at",
            format!("exported at {}, before the last event was recorded ({})", b.exported_at, crate::pki::history::utc_text(*last)),
        ));
    }
    if exported > ctx.now + Duration::seconds(EXPORTED_AFTER_NOW_SECONDS) {
        return Err(Finding::new(
            E_TIME,
            "time",
            "/exported_at",
            format!("exported at {}, after the time of verification ({})", b.exported_at, crate::pki::history::utc_text(ctx.now)),
        ));
    }
    Ok(exported)
}

/// SHA-256 (hex) of the RFC 8785 canonical JSON of `{case_id, seq, recorded_at, prev_hash, body}`,
/// `recorded_at` taken as the string written in the bundle.
pub(crate) fn event_hash(ev: &super::BundleEvent) -> String {
    // The disclosures of restricted fields are outside the chain, as the store hashes it.
    crate::chain::chain_hash_of(&ev.case_id, ev.seq, &ev.recorded_at, &ev.prev_hash, &ev.body)
}

/// For an event whose content no longer hashes: the more precise place its own checks give.
fn localize(ctx: &Context, k: usize, recorded: DateTime<Utc>) -> Option<Box<Finding>> {
    let mut times: Vec<DateTime<Utc>> =
        ctx.bundle.events[..k].iter().filter_map(|e| DateTime::parse_from_rfc3339(&e.recorded_at).ok().map(|t| t.with_timezone(&Utc))).collect();
    if times.len() != k {
        return None;
    }
    times.push(recorded);
    let mut replay = EventWalk::new(ctx, &times);
    for j in 0..k {
        replay.check(j).ok()?;
    }
    let base = format!("/events/{k}");
    match replay.check(k) {
        Err(f) if f.pointer == base || f.pointer.starts_with(&format!("{base}/")) => Some(f),
        _ => None,
    }
}

/// The first place where `given` holds a member `written` (the same value as the engine writes
/// it) does not, or a value written otherwise: (JSON pointer of the object or value, what).
fn first_unknown(given: &Value, written: &Value, pointer: &str) -> Option<(String, String)> {
    // Written as given (the usual case): nothing to look for, and no pointer built.
    if given == written {
        return None;
    }
    match (given, written) {
        (Value::Object(g), Value::Object(w)) => {
            // The object holding it is named: the member's own name is what may have changed.
            if let Some(k) = g.keys().find(|k| !w.contains_key(*k)) {
                return Some((pointer.to_string(), format!("unknown member `{k}`")));
            }
            g.iter().find_map(|(k, v)| first_unknown(v, &w[k], &crate::forms::pointer_push(pointer, k)))
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            g.iter().zip(w).enumerate().find_map(|(i, (a, b))| first_unknown(a, b, &format!("{pointer}/{i}")))
        }
        _ if given == written => None,
        _ => Some((pointer.to_string(), format!("{given} is not written as carimbo writes it ({written})"))),
    }
}

/// What a signed event's signature must cover.
struct Expect<'e> {
    event: &'static str,
    step: &'e str,
    /// Where the step and action are written in the event (None: fixed by the event type).
    step_field: Option<&'static str>,
    action: &'e str,
    signer: &'e str,
    signer_field: &'static str,
    data: &'e Value,
    /// The data is the event's own (submitted, resubmitted), not an earlier version's.
    data_in_body: bool,
    form: FormRef,
    form_in_body: bool,
    required: Level,
    second_factor: bool,
}

/// Walks the events through the engine's route rules (`workflow::replay::RouteCheck`: one
/// authority for them), checking each event's members, times and signature on the way.
struct EventWalk<'a> {
    ctx: &'a Context<'a>,
    times: &'a [DateTime<Utc>],
    route_check: RouteCheck<'a>,
    lines: Vec<SignatureLine>,
    route: Vec<String>,
    withheld: Vec<String>,
    last_at: Option<DateTime<Utc>>,
    needs: Vec<PoeNeed>,
}

impl<'a> EventWalk<'a> {
    fn new(ctx: &'a Context<'a>, times: &'a [DateTime<Utc>]) -> EventWalk<'a> {
        EventWalk {
            ctx,
            times,
            route_check: RouteCheck::new(ctx.workflow),
            lines: Vec::new(),
            route: Vec::new(),
            withheld: Vec::new(),
            last_at: None,
            needs: Vec::new(),
        }
    }

    fn case(&self) -> Option<&Case> {
        self.route_check.case()
    }

    fn check(&mut self, k: usize) -> Check<()> {
        let ev = &self.ctx.bundle.events[k];
        let base = format!("/events/{k}");
        let seq = ev.seq;
        let fail = |field: &str, code: &'static str, check: &'static str, msg: String| Finding::new(code, check, format!("{base}{field}"), msg).seq(seq);
        let route = |v: RouteViolation| Finding::new(E_ROUTE, "route", format!("{base}{}", v.field), v.message).seq(seq);
        let event = CaseEvent::deserialize(&ev.body).map_err(|e| fail("/body", E_EVENT, "event", format!("the body is not a carimbo event: {e}")))?;
        // The doc lists every member of every body: anything else (or a value the engine
        // would write otherwise, such as a time with an offset) is refused, not ignored.
        let written = serde_json::to_value(&event).map_err(|e| fail("/body", E_EVENT, "event", e.to_string()))?;
        if let Some((pointer, why)) = first_unknown(&ev.body, &written, "") {
            return Err(fail(
                &format!("/body{pointer}"),
                E_UNKNOWN_MEMBER,
                "event",
                format!("{why} in a {} event: a verifier that ignored it would read another record than one that did not", event.type_name()),
            ));
        }
        self.check_time(k, &event)?;
        if let CaseEvent::Submitted { data, disclosures, .. } | CaseEvent::Resubmitted { data, disclosures, .. } = &event
            && let Err(e) = crate::forms::commitment::reveal(data, disclosures)
        {
            let field = match &e {
                CommitmentError::Mismatch { field } | CommitmentError::NotCommitted { field } | CommitmentError::BadSalt { field } => field.clone(),
            };
            let pointer = format!("/body/disclosures/{}", crate::forms::pointer_push("", &field).trim_start_matches('/'));
            let message = e.to_string();
            return Err(fail(&pointer, E_DISCLOSURE, "disclosure", message.rsplit_once(" [").map(|(m, _)| m.to_string()).unwrap_or(message)));
        }
        let demand = self.route_check.before_signature(&event).map_err(route)?;
        if let Some(demand) = demand {
            self.check_signature(k, &event, demand)?;
        }
        let line = self.route_check.after_signature(seq, &event).map_err(route)?;
        self.route.push(line);
        Ok(())
    }

    /// The signature of a signed event against what it must cover; for the submission, also
    /// the pins to the bundled definitions.
    fn check_signature(&mut self, k: usize, event: &CaseEvent, demand: Demand) -> Check<()> {
        let ev = &self.ctx.bundle.events[k];
        let seq = ev.seq;
        let fail = |field: &str, code: &'static str, check: &'static str, msg: String| Finding::new(code, check, format!("/events/{k}{field}"), msg).seq(seq);
        // What the acts sign over, taken from the replayed case (not a copy of the whole case).
        let signed = self.case().map(|c| {
            let form = FormRef { id: c.form.id.clone(), version: c.form.version.clone(), hash: format!("sha256:{}", c.form.hash) };
            (matches!(event, CaseEvent::Acted { .. }).then(|| c.committed_data()), form)
        });
        match (event, signed) {
            (CaseEvent::Submitted { case_id, form, workflow, submitter, data, signature, .. }, None) => {
                if case_id != &self.ctx.bundle.case_id {
                    return Err(fail("/body/case_id", E_ROUTE, "route", format!("the submission opens case {case_id:?}, not {:?}", self.ctx.bundle.case_id)));
                }
                let form_ref = FormRef { id: form.id.clone(), version: form.version.clone(), hash: format!("sha256:{}", form.hash) };
                let exp = Expect {
                    event: "submitted",
                    step: "submit",
                    step_field: None,
                    action: "submit",
                    signer: submitter,
                    signer_field: "/body/submitter",
                    data,
                    data_in_body: true,
                    form: form_ref,
                    form_in_body: true,
                    required: demand.required,
                    second_factor: false,
                };
                let payload = self.signature(k, signature, &exp)?;
                let d = &self.ctx.bundle.definitions;
                if payload.form.hash != format!("sha256:{}", d.form.sha256) {
                    return Err(Finding::new(
                        E_DEFINITION,
                        "definition",
                        "/definitions/form",
                        format!("the submission was signed on form hash {}, but the bundled form definition is {}", payload.form.hash, d.form.sha256),
                    )
                    .file(&d.form.name));
                }
                if form.id != d.form.id || form.version != d.form.version {
                    return Err(fail(
                        "/body/form",
                        E_DEFINITION,
                        "definition",
                        format!("the case is pinned to form {} {}, but the bundled form is {} {}", form.id, form.version, d.form.id, d.form.version),
                    ));
                }
                if workflow.hash != d.workflow.sha256 || workflow.id != d.workflow.id || workflow.version != d.workflow.version {
                    return Err(Finding::new(
                        E_DEFINITION,
                        "definition",
                        "/definitions/workflow",
                        format!(
                            "the case is pinned to workflow {} {} ({}), but the bundled workflow is {} {} ({})",
                            workflow.id, workflow.version, workflow.hash, d.workflow.id, d.workflow.version, d.workflow.sha256
                        ),
                    )
                    .file(&d.workflow.name));
                }
            }
            (CaseEvent::Acted { step, actor, action, signature, .. }, Some((Some(signed_data), form))) => {
                let exp = Expect {
                    event: "acted",
                    step,
                    step_field: Some("/body/step"),
                    action: action.as_str(),
                    signer: actor,
                    signer_field: "/body/actor",
                    data: &signed_data,
                    data_in_body: false,
                    form,
                    form_in_body: false,
                    required: demand.required,
                    second_factor: demand.second_factor,
                };
                self.signature(k, signature, &exp)?;
            }
            (CaseEvent::Resubmitted { by, data, signature, .. }, Some((_, form))) => {
                let exp = Expect {
                    event: "resubmitted",
                    step: "resubmit",
                    step_field: None,
                    action: "resubmit",
                    signer: by,
                    signer_field: "/body/by",
                    data,
                    data_in_body: true,
                    form,
                    form_in_body: false,
                    required: demand.required,
                    second_factor: false,
                };
                self.signature(k, signature, &exp)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The event's `at` (the engine's time of the decision) lies at or before its
    /// `recorded_at`, at most `RECORDED_AFTER_AT_SECONDS` before it, and not before the
    /// previous event's `at`.
    fn check_time(&mut self, k: usize, event: &CaseEvent) -> Check<()> {
        let ev = &self.ctx.bundle.events[k];
        // The event is named: its `at` or its `recorded_at` may be the one that moved.
        let fail = |msg: String| Finding::new(E_TIME, "time", format!("/events/{k}"), msg).seq(ev.seq);
        let at = event.at();
        let recorded = self.times[k];
        let text = crate::pki::history::utc_text;
        if at > recorded {
            return Err(fail(format!("the event happened at {}, after it was recorded ({})", text(at), ev.recorded_at)));
        }
        if recorded - at > Duration::seconds(RECORDED_AFTER_AT_SECONDS) {
            return Err(fail(format!(
                "the event happened at {}, but was recorded only at {}: more than {RECORDED_AFTER_AT_SECONDS} s later",
                text(at),
                ev.recorded_at
            )));
        }
        if let Some(prev) = self.last_at.filter(|prev| at < *prev) {
            return Err(fail(format!("the event happened at {}, before the previous event ({})", text(at), text(prev))));
        }
        self.last_at = Some(at);
        Ok(())
    }

    /// After the last event: nothing owed, nothing left unopened, the head as replayed.
    fn finish(&mut self) -> Check<()> {
        let b = self.ctx.bundle;
        let case = self.route_check.finish().map_err(|v| Finding::new(E_HEAD, "head", "/head", v.message))?.clone();
        if b.head.status != case.status.as_str() {
            return Err(Finding::new(
                E_HEAD,
                "head",
                "/head/status",
                format!("the head says {:?}, but the events replay to {:?}", b.head.status, case.status.as_str()),
            ));
        }
        self.withheld = crate::forms::commitment::withheld(&case.data);
        Ok(())
    }

    /// Verifies one act's signature at the event's recorded time and checks that it covers this
    /// very act. Returns the (now authentic) signed payload.
    fn signature(&mut self, k: usize, record: &SignatureRecord, exp: &Expect) -> Check<SigningPayload> {
        let ev = &self.ctx.bundle.events[k];
        let recorded = self.times[k];
        let base = format!("/events/{k}");
        let sp = format!("{base}/body/signature");
        let fail = |pointer: String, code: &'static str, check: &'static str, msg: String| Finding::new(code, check, pointer, msg).seq(ev.seq);
        let jws = record.jws.as_ref().ok_or_else(|| fail(sp.clone(), E_SIGNATURE, "signature", "the act carries no signature (JWS or service seal)".into()))?;
        if let Some(member) = jws.as_object().and_then(|o| o.keys().find(|k| !matches!(k.as_str(), "payload" | "protected" | "signature" | "header"))) {
            return Err(fail(
                format!("{sp}/jws"),
                E_UNKNOWN_MEMBER,
                "signature",
                format!("unknown member `{member}` in the signature: it holds only payload, protected, signature and header"),
            ));
        }
        // The unprotected header holds only the JAdES unsigned properties (`etsiU`: the
        // signature time-stamp of B-T); nothing else may ride outside the signature.
        if let Some(member) = jws.get("header").and_then(Value::as_object).and_then(|o| o.keys().find(|k| k.as_str() != "etsiU")) {
            return Err(fail(
                format!("{sp}/jws/header"),
                E_UNKNOWN_MEMBER,
                "signature",
                format!("unknown member `{member}` in the unprotected header: it holds only etsiU"),
            ));
        }
        let payload_value = jws.get("payload").ok_or_else(|| fail(format!("{sp}/jws"), E_SIGNATURE, "signature", "the signature has no payload".into()))?;
        if let Some(member) = payload_value.as_object().and_then(|o| o.keys().find(|k| !SigningPayload::MEMBERS.contains(&k.as_str()))) {
            return Err(fail(
                format!("{sp}/jws/payload"),
                E_UNKNOWN_MEMBER,
                "signature",
                format!("unknown member `{member}` in the signed payload: it holds only {}", SigningPayload::MEMBERS.join(", ")),
            ));
        }
        let payload = SigningPayload::deserialize(payload_value)
            .map_err(|e| fail(format!("{sp}/jws/payload"), E_SIGNATURE, "signature", format!("the signed payload cannot be read: {e}")))?;
        let written = serde_json::to_value(&payload).map_err(|e| fail(format!("{sp}/jws/payload"), E_SIGNATURE, "signature", e.to_string()))?;
        if let Some((pointer, why)) = first_unknown(payload_value, &written, "") {
            return Err(fail(format!("{sp}/jws/payload{pointer}"), E_UNKNOWN_MEMBER, "signature", format!("{why} in the signed payload")));
        }
        let (Some(protected), Some(signature)) = (jws.get("protected").and_then(Value::as_str), jws.get("signature").and_then(Value::as_str)) else {
            return Err(fail(format!("{sp}/jws"), E_SIGNATURE, "signature", "the JWS has no protected header or signature value".into()));
        };
        let mut jws_doc = json!({"protected": protected, "signature": signature});
        if let Some(header) = jws.get("header") {
            // The signature time-stamp (JAdES B-T) rides in the unprotected header.
            jws_doc["header"] = header.clone();
        }
        let jws_bytes = jws_doc.to_string().into_bytes();
        let opts = VerifyOptions { trusted_time: Some(recorded), now: self.ctx.now.max(recorded), required_level: None };
        let in_window = payload.time >= recorded - Duration::minutes(SIGNING_TIME_BEFORE_MINUTES)
            && payload.time <= recorded + Duration::minutes(SIGNING_TIME_AFTER_MINUTES);
        let verified = match verify_act(self.ctx.verifier, &payload, None, &jws_bytes, Level::Simple, &opts) {
            Ok(v) => v,
            Err(report) => {
                let pointer = if in_window { format!("{sp}/jws") } else { base.clone() };
                let sub = report.sub_indication.map(|s| s.as_str()).unwrap_or("");
                let mut f = fail(
                    pointer,
                    E_SIGNATURE,
                    "signature",
                    format!("the signature does not verify at the recorded time {}: {} {sub}: {}", ev.recorded_at, indication_name(&report), report.detail),
                );
                f.report = Some(report);
                return Err(f);
            }
        };
        // From here the payload is what the signer signed: where it disagrees with the event, the
        // event (or the signature's place in the case) is what changed.
        if !in_window {
            return Err(fail(
                format!("{base}/recorded_at"),
                E_PAYLOAD,
                "signature",
                format!("signed at {}, but recorded at {}: further apart than the server allows", payload.time, ev.recorded_at),
            ));
        }
        if payload.case != self.ctx.bundle.case_id {
            return Err(fail(sp, E_PAYLOAD, "signature", format!("the signature was made for case {:?}", payload.case)));
        }
        let prev = format!("sha256:{}", ev.prev_hash);
        if payload.previous_event_hash != prev {
            return Err(fail(
                sp,
                E_PAYLOAD,
                "signature",
                format!(
                    "the signature was made after the event with hash {}, not after this event's predecessor ({prev}): it belongs to another act",
                    payload.previous_event_hash
                ),
            ));
        }
        if payload.form != exp.form {
            let pointer = if exp.form_in_body { format!("{base}/body/form") } else { sp.clone() };
            return Err(fail(
                pointer,
                E_PAYLOAD,
                "signature",
                format!(
                    "the signature covers form {} {} ({}), the case form {} {} ({})",
                    payload.form.id, payload.form.version, payload.form.hash, exp.form.id, exp.form.version, exp.form.hash
                ),
            ));
        }
        let fixed = |field: Option<&'static str>| field.map(|f| format!("{base}{f}")).unwrap_or_else(|| sp.clone());
        if payload.step != exp.step {
            return Err(fail(
                fixed(exp.step_field),
                E_PAYLOAD,
                "signature",
                format!("the signature is for step {:?}, the event says {:?}", payload.step, exp.step),
            ));
        }
        if payload.action != exp.action {
            return Err(fail(
                fixed(exp.step_field.map(|_| "/body/action")),
                E_PAYLOAD,
                "signature",
                format!("the signature is for action {:?}, the event says {:?}", payload.action, exp.action),
            ));
        }
        let dh = data_hash(exp.data).map_err(|e| fail(format!("{base}/body"), E_PAYLOAD, "signature", e.to_string()))?;
        if dh != payload.data_hash {
            let pointer = if exp.data_in_body { format!("{base}/body/data") } else { sp.clone() };
            return Err(fail(
                pointer,
                E_PAYLOAD,
                "signature",
                format!("the form data hashes to {dh}, but the signature covers {} (HASH_FAILURE): the data was changed after signing", payload.data_hash),
            ));
        }
        if payload.signer != exp.signer {
            return Err(fail(
                format!("{base}{}", exp.signer_field),
                E_PAYLOAD,
                "signature",
                format!("the signature is by {}, the event names {}", payload.signer, exp.signer),
            ));
        }
        if record.signer != exp.signer {
            return Err(fail(
                format!("{sp}/signer"),
                E_PAYLOAD,
                "signature",
                format!("the signature record names {}, the event {}", record.signer, exp.signer),
            ));
        }
        let achieved = verified.level();
        if achieved == Level::Simple && self.ctx.pki.history.service_seal_at(self.ctx.pki.service_seal.as_ref(), recorded).is_none() {
            return Err(fail(
                format!("{sp}/jws"),
                E_SEAL_IDENTITY,
                "signature",
                format!("sealed by the service at {}, when the trust list did not have that seal in service", ev.recorded_at),
            ));
        }
        if record.level != achieved {
            return Err(fail(format!("{sp}/level"), E_LEVEL, "level", format!("recorded as a {} signature, but it verifies as {}", record.level, achieved)));
        }
        if achieved < exp.required {
            return Err(fail(sp, E_LEVEL, "level", format!("the workflow demands a {} signature here; this one is {}", exp.required, achieved)));
        }
        if exp.second_factor && !record.second_factor {
            return Err(fail(format!("{sp}/second_factor"), E_LEVEL, "level", "the step demands a second factor, and none is recorded".into()));
        }
        let certificate = verified.report().signer.as_ref().map(|s| s.common_name.clone().unwrap_or_else(|| s.subject.clone()));
        // A stamped signature is proven at genTime by its token, which in turn needs a proof
        // while its TSA was valid; an unstamped one needs its own chain valid at the proof.
        let need = match &verified.report().timestamp {
            Some(ts) => PoeNeed::first_expiry(&ts.chain, format!("{sp}/jws/header"), Some(ev.seq), format!("the signature time-stamp of event {}", ev.seq)),
            None => PoeNeed::first_expiry(
                &verified.report().chain,
                format!("{sp}/jws"),
                Some(ev.seq),
                format!("the signature of event {} (no signature time-stamp)", ev.seq),
            ),
        };
        self.needs.extend(need);
        self.lines.push(SignatureLine {
            seq: ev.seq,
            event: exp.event.to_string(),
            step: exp.step.to_string(),
            action: exp.action.to_string(),
            signer: exp.signer.to_string(),
            required: exp.required,
            achieved,
            signing_time: ev.recorded_at.clone(),
            certificate,
            provider: record.provenance.as_ref().map(|p| p.provider().to_string()),
            authorization: record.provenance.as_ref().and_then(|p| p.authorization()).map(|a| a.id.clone()),
        });
        Ok(payload)
    }
}

/// The service's seal over the bundle, and the digest of each part.
fn check_seal(ctx: &Context, value: &Value, known: &Known) -> Check<Option<PoeNeed>> {
    let b = ctx.bundle;
    let s = &b.seal;
    let payload = crate::jcs::to_vec_of(&s.payload).map_err(|e| Finding::new(E_SEAL, "seal", "/seal/payload", e.to_string()))?;
    let jws = json!({"protected": s.protected, "signature": s.signature}).to_string().into_bytes();
    // The seal's own time (`iat`, whole seconds) is the export's time: read before the seal is
    // verified, so a seal made at another time is named for what it is.
    let exported = parse_utc_z(&b.exported_at).map_err(|e| Finding::new(E_TIME, "time", "/exported_at", e))?;
    let iat = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&s.protected)
        .ok()
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| h.get("iat").and_then(Value::as_i64));
    if let Some(iat) = iat.filter(|iat| *iat != exported.timestamp()) {
        let claimed = DateTime::from_timestamp(iat, 0).map(crate::pki::history::utc_text).unwrap_or_else(|| iat.to_string());
        return Err(Finding::new(
            E_TIME,
            "time",
            "/seal/protected",
            format!("the seal was made at {claimed}, but the bundle says it was exported at {}", b.exported_at),
        ));
    }
    let report = ctx.verifier.verify(&jws, &payload, &VerifyOptions { trusted_time: None, now: ctx.now, required_level: None });
    if !report.passed() {
        let sub = report.sub_indication.map(|s| s.as_str()).unwrap_or("");
        let mut f = Finding::new(
            E_SEAL,
            "seal",
            "/seal",
            format!("the service seal over the bundle does not verify: {} {sub}: {}", indication_name(&report), report.detail),
        );
        f.report = Some(report);
        return Err(f);
    }
    if report.achieved_level != Some(Level::Simple) {
        return Err(Finding::new(E_SEAL, "seal", "/seal", "the bundle is sealed by a certificate other than the bundled service certificate"));
    }
    // The trust list had the seal in service when it was made.
    if report.claimed_signing_time.map(|t| t.timestamp()) != Some(exported.timestamp()) {
        return Err(Finding::new(E_TIME, "time", "/seal/protected", format!("the seal's signing time is not the bundle's exported_at {}", b.exported_at)));
    }
    if ctx.pki.history.service_seal_at(ctx.pki.service_seal.as_ref(), exported).is_none() {
        return Err(Finding::new(
            E_SEAL_IDENTITY,
            "seal",
            "/pki/service_certificate",
            format!("the trust list does not have the service seal in service at {}, when the bundle was sealed", b.exported_at),
        ));
    }
    let p = &s.payload;
    if p.bundle != seal_label() {
        return Err(Finding::new(E_SEAL, "seal", "/seal", format!("the seal is for a {:?}, not a {:?}", p.bundle, seal_label())));
    }
    for (field, sealed, found) in
        [("/case_id", &p.case, &b.case_id), ("/exported_at", &p.exported_at, &b.exported_at), ("/exported_by", &p.exported_by, &b.exported_by)]
    {
        if sealed != found {
            return Err(Finding::new(E_SEAL, "seal", field, format!("the bundle says {found:?}, the seal {sealed:?}")));
        }
    }
    let last = b.events.last().map(|e| format!("sha256:{}", e.hash)).unwrap_or_default();
    if p.version != b.events.len() as u64 || p.last_event_hash != last {
        return Err(Finding::new(
            E_SEAL,
            "seal",
            "/events",
            format!("the seal covers {} events ending in {}; the bundle holds {} ending in {last}", p.version, p.last_event_hash, b.events.len()),
        ));
    }
    let digests = super::member_digests_with(value, |name| known.get(name).map(|k| k.digest.clone()));
    for (member, digest) in &digests {
        match p.digests.get(member) {
            Some(d) if d == digest => {}
            Some(_) => return Err(Finding::new(E_SEAL, "seal", format!("/{member}"), format!("`{member}` changed after the bundle was sealed"))),
            None => return Err(Finding::new(E_SEAL, "seal", format!("/{member}"), format!("`{member}` is not covered by the seal"))),
        }
    }
    if let Some(member) = p.digests.keys().find(|m| !digests.contains_key(*m)) {
        return Err(Finding::new(E_SEAL, "seal", "/seal/payload/digests", format!("the sealed part `{member}` is missing from the bundle")));
    }
    Ok(PoeNeed::first_expiry(&report.chain, "/seal".into(), None, "the service seal over the bundle".into()))
}
