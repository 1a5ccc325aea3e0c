//! Making a bundle from a case in the store.

use super::{
    BinaryFile, BundleDefinitions, BundleEvent, BundleHead, BundlePki, BundleSeal, DefinitionFile, EvidenceBundle, EvidenceError, FORMAT, FORMAT_VERSION,
    SealPayload, TextFile, member_digests, seal_label, sha256_hex,
};
use crate::cases::{CaseError, CaseService};
use crate::pki::trust::TRUST_LIST_FILE;
use crate::signing::ServiceSeal;
use crate::store::DISCLOSURES_MEMBER;
use crate::visibility::Sight;
use crate::workflow::DefinitionRef;
use base64::Engine;
use chrono::{DateTime, Utc};
use std::path::Path;

/// The validation material signatures are judged with: the trust list's history, the CRLs,
/// and the service-seal certificate, as files.
#[derive(Debug, Clone)]
pub struct PkiMaterial {
    pub trust_list: TextFile,
    pub crls: Vec<BinaryFile>,
    pub service_certificate: TextFile,
    /// The device rule the server's verifier applies, recorded in each bundle.
    pub device_rule: crate::signing::DeviceRule,
}

fn material_error(path: &Path, e: impl std::fmt::Display) -> EvidenceError {
    EvidenceError::Material(format!("{}: {e}", path.display()))
}

fn text_file(path: &Path, name: &str) -> Result<TextFile, EvidenceError> {
    let bytes = std::fs::read(path).map_err(|e| material_error(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| material_error(path, e))?;
    Ok(TextFile { name: name.to_string(), sha256: sha256_hex(text.as_bytes()), text })
}

impl PkiMaterial {
    /// The layout of a checkout: `seeds/trust/trust-list.json`, `seeds/pki/crl/`,
    /// `seeds/pki/service/service.pem`.
    pub fn from_seeds(seeds: &Path) -> Result<PkiMaterial, EvidenceError> {
        PkiMaterial::load(&seeds.join("trust").join(TRUST_LIST_FILE), &seeds.join("pki/crl"), &seeds.join("pki/service/service.pem"))
    }

    /// Reads the trust list's history (the file as it is), every `*.crl`, `*.pem` and `*.der`
    /// of the CRL folder (as `cli::pki_files::load_crl_dir` does), and the service certificate.
    pub fn load(trust_list: &Path, crl_dir: &Path, service_cert: &Path) -> Result<PkiMaterial, EvidenceError> {
        let trust_list = text_file(trust_list, TRUST_LIST_FILE)?;
        let mut crls = Vec::new();
        let mut paths: Vec<_> = match std::fs::read_dir(crl_dir) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(material_error(crl_dir, e)),
        };
        paths.sort();
        for path in paths {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "crl" | "pem" | "der") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| material_error(&path, e))?;
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("crl").to_string();
            crls.push(BinaryFile { name, sha256: sha256_hex(&bytes), base64: base64::engine::general_purpose::STANDARD.encode(&bytes) });
        }
        let service_name = service_cert.file_name().and_then(|n| n.to_str()).unwrap_or("service.pem").to_string();
        let service_certificate = text_file(service_cert, &service_name)?;
        Ok(PkiMaterial { trust_list, crls, service_certificate, device_rule: crate::signing::DeviceRule::Enforced })
    }

    /// The same material with another trust-list document (the server's kept history).
    pub fn with_trust_list(mut self, text: String) -> PkiMaterial {
        self.trust_list = TextFile { name: TRUST_LIST_FILE.to_string(), sha256: sha256_hex(text.as_bytes()), text };
        self
    }

    /// The same material, recording the device rule the server judges signatures with.
    pub fn with_device_rule(mut self, rule: crate::signing::DeviceRule) -> PkiMaterial {
        self.device_rule = rule;
        self
    }
}

/// The string serde writes for a time (RFC 3339, UTC, `Z`): the form events carry.
fn time_text(t: &DateTime<Utc>) -> String {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::String(s)) => s,
        _ => t.to_rfc3339(),
    }
}

/// The reference data of a case: the versions its submission pinned, from the store by hash;
/// for a record made before the pin, the files served now.
fn reference_files(service: &CaseService, submitted: Option<&serde_json::Value>) -> Result<Vec<TextFile>, EvidenceError> {
    let pins: std::collections::BTreeMap<String, String> =
        submitted.and_then(|b| b.get("reference")).and_then(|r| serde_json::from_value(r.clone()).ok()).unwrap_or_default();
    let mut reference = Vec::new();
    if pins.is_empty() {
        for src in &service.catalog().reference_sources {
            let name = crate::catalog::reference_name(&src.name);
            let text = String::from_utf8(src.bytes.clone()).map_err(|_| EvidenceError::Definition(format!("{name} is not UTF-8")))?;
            reference.push(TextFile { name, sha256: sha256_hex(text.as_bytes()), text });
        }
    }
    for (name, hash) in pins {
        let bytes = service.store().definition(&hash).map_err(CaseError::from)?.ok_or_else(|| EvidenceError::Definition(format!("{name} ({hash})")))?;
        let text = String::from_utf8(bytes).map_err(|_| EvidenceError::Definition(format!("{name} is not UTF-8")))?;
        reference.push(TextFile { name, sha256: hash, text });
    }
    reference.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(reference)
}

/// Builds the evidence bundle of a case: the definitions it is pinned to (exact bytes from the
/// store), the reference data served, every stored event, the validation material `pki`, and
/// the service's seal over all of it, made at `now` for `exported_by`. The events are as `sight`
/// lets the reader see them: a hidden restricted field keeps its commitment and loses its value.
pub fn export(
    service: &CaseService,
    case_id: &str,
    pki: &PkiMaterial,
    seal: &ServiceSeal,
    exported_by: &str,
    sight: &Sight,
    now: DateTime<Utc>,
) -> Result<EvidenceBundle, EvidenceError> {
    let stored = service.events(case_id)?;
    let case = service.case(case_id)?;
    let definition = |r: &DefinitionRef, dir: &str| -> Result<DefinitionFile, EvidenceError> {
        let bytes = service
            .store()
            .definition(&r.hash)
            .map_err(CaseError::from)?
            .ok_or_else(|| EvidenceError::Definition(format!("{dir}/{}.json ({})", r.id, r.hash)))?;
        let text = String::from_utf8(bytes).map_err(|_| EvidenceError::Definition(format!("{dir}/{}.json is not UTF-8", r.id)))?;
        Ok(DefinitionFile { id: r.id.clone(), version: r.version.clone(), name: format!("{dir}/{}.json", r.id), sha256: sha256_hex(text.as_bytes()), text })
    };
    let form = definition(&case.form, "forms")?;
    let workflow = definition(&case.workflow, "workflows")?;
    let reference = reference_files(service, stored.first().map(|e| &e.body))?;
    let mut events: Vec<BundleEvent> = Vec::with_capacity(stored.len());
    let mut withheld: std::collections::BTreeSet<String> = Default::default();
    for e in &stored {
        let body = sight.event_body(&e.body).map_err(EvidenceError::Withheld)?;
        if body != e.body {
            let before: Vec<String> = e.body.get(DISCLOSURES_MEMBER).and_then(|d| d.as_object()).map(|d| d.keys().cloned().collect()).unwrap_or_default();
            withheld.extend(before.into_iter().filter(|f| sight.hides(f)));
        }
        events.push(BundleEvent {
            case_id: e.case_id.clone(),
            seq: e.seq,
            recorded_at: time_text(&e.recorded_at),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
            body,
        });
    }
    let last_hash = stored.last().map(|e| e.hash.clone()).unwrap_or_default();
    let exported_at = time_text(&now);
    let mut bundle = EvidenceBundle {
        format: FORMAT.to_string(),
        format_version: FORMAT_VERSION,
        case_id: case_id.to_string(),
        exported_at: exported_at.clone(),
        exported_by: exported_by.to_string(),
        head: BundleHead { version: stored.len() as u64, last_hash: last_hash.clone(), status: case.status.as_str().to_string() },
        definitions: BundleDefinitions { form, workflow, reference },
        events,
        withheld: withheld.into_iter().collect(),
        device_rule: Some(pki.device_rule),
        pki: BundlePki { trust_list: pki.trust_list.clone(), crls: pki.crls.clone(), service_certificate: pki.service_certificate.clone() },
        seal: BundleSeal {
            payload: SealPayload {
                bundle: seal_label(),
                case: case_id.to_string(),
                version: stored.len() as u64,
                last_event_hash: format!("sha256:{last_hash}"),
                exported_at,
                exported_by: exported_by.to_string(),
                digests: Default::default(),
            },
            protected: String::new(),
            signature: String::new(),
        },
        archive_timestamps: Vec::new(),
    };
    let value = serde_json::to_value(&bundle).map_err(|e| EvidenceError::Seal(e.to_string()))?;
    bundle.seal.payload.digests = member_digests(&value);
    let payload = crate::jcs::to_vec_of(&bundle.seal.payload).map_err(|e| EvidenceError::Seal(e.to_string()))?;
    let jws = seal.seal_bytes(&payload, now).map_err(|e| EvidenceError::Seal(e.to_string()))?;
    bundle.seal.protected = jws.protected;
    bundle.seal.signature = jws.signature;
    Ok(bundle)
}

/// `export`, and with time-stamping on, the bundle's first archive time-stamp (B-LTA) over all
/// of it (`evidence::ltv`). A token from a remote TSA is checked against `verifier`'s trust list
/// before it is kept, as an act's is; no token, no bundle (the caller may export without).
#[allow(clippy::too_many_arguments)]
pub fn export_archived(
    service: &CaseService,
    case_id: &str,
    pki: &PkiMaterial,
    seal: &ServiceSeal,
    exported_by: &str,
    sight: &Sight,
    now: DateTime<Utc>,
    stamping: &crate::tsa::TimeStamping,
    verifier: &crate::signing::SignatureVerifier,
) -> Result<EvidenceBundle, EvidenceError> {
    let bundle = export(service, case_id, pki, seal, exported_by, sight, now)?;
    let vd = super::ltv::ValidationData::default();
    let input = super::ltv::next_stamp_input(&bundle, &vd);
    let Some(token) = stamping.stamp(&input).map_err(|e| EvidenceError::ArchiveStamp(e.to_string()))? else {
        return Ok(bundle);
    };
    if stamping.checks_each_token() {
        verifier.timestamps().verify(&token, &input).map_err(|f| EvidenceError::ArchiveStamp(format!("{} [{}]", f.detail, f.code)))?;
    }
    Ok(super::ltv::with_archive_stamp(bundle, vd, &token))
}
