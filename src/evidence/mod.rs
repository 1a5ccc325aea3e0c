//! Evidence bundles: one JSON file that proves, offline and years later, what happened on a case.
//!
//! A case lives in carimbo's store, behind its server, its trust list and its CRL folder; none
//! of those will be at hand when an auditor, a court or another administration asks "who signed
//! what, at which level, on which version of the form?". An evidence bundle packs everything a
//! verifier needs into one file: the exact bytes of the form and workflow definitions the case
//! was pinned to (and the reference data the form reads), every stored event with its hash
//! chain (the data of every version and every signature are inside the events), the trust-list
//! entries, CA certificates, CRLs and service-seal certificate the signatures are judged with,
//! and a seal by the service over the whole. `verify` re-checks all of it with no server, no
//! network and no store — hash chain, definition hashes, every signature at its recorded time,
//! every level against what the step demanded, and the route against the workflow — and names
//! the first place that does not hold. The format is written down in `docs/evidence-bundle.md`
//! so that an auditor never needs carimbo to check a bundle.
//!
//! `export` builds a bundle from a `CaseService`; `verify` checks bundle bytes; `locate` maps a
//! byte offset of a bundle to the JSON pointer of the value it falls in (for parse errors).

pub mod archive;
mod export;
pub mod locate;
pub mod ltv;
mod read;
mod verify;

pub use export::{PkiMaterial, export, export_archived};
pub use verify::{Finding, SignatureLine, VerificationReport, VerifyConfig, verify, verify_with};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The value of `format` in every bundle.
pub const FORMAT: &str = "carimbo-evidence-bundle";
/// The version of the format described in `docs/evidence-bundle.md`.
pub const FORMAT_VERSION: u32 = 2;
/// Bundles larger than this are refused unread (a case with hundreds of events is a few MiB).
pub const MAX_BUNDLE_BYTES: usize = 64 * 1024 * 1024;
/// How far a signed payload's `time` may lie before the event's `recorded_at`, in minutes: the
/// server accepts a signer's clock up to ten minutes off, and the act is recorded right after.
pub const SIGNING_TIME_BEFORE_MINUTES: i64 = 15;
/// How far a signed payload's `time` may lie after the event's `recorded_at`, in minutes.
pub const SIGNING_TIME_AFTER_MINUTES: i64 = 10;
/// How long after an event's `at` (the engine's time of the decision) the store may record it
/// (`recorded_at`), in seconds: the append follows the decision within one group commit, so a
/// few seconds; five minutes leaves room for a slow disk or database, not for a moved date.
pub const RECORDED_AFTER_AT_SECONDS: i64 = 300;
/// How far a bundle's `exported_at` may lie after the verifier's `now` (clock skew), in seconds.
pub const EXPORTED_AFTER_NOW_SECONDS: i64 = 300;

/// One evidence bundle. Written as RFC 8785 canonical JSON (no insignificant whitespace), so
/// every byte of the file is significant; readers accept any JSON layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBundle {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] for this layout.
    pub format_version: u32,
    pub case_id: String,
    /// When the bundle was made (RFC 3339, UTC), exactly as sealed.
    pub exported_at: String,
    /// Who asked for it: a person id, or `carimbo-cli` for the command.
    pub exported_by: String,
    /// The case's state at export: number of events, last event hash, status.
    pub head: BundleHead,
    pub definitions: BundleDefinitions,
    /// Every event as stored, in order (for a reader without a restricted field's role, with
    /// that field's disclosures left out: its commitment stays and still verifies).
    pub events: Vec<BundleEvent>,
    /// The restricted fields whose values this bundle leaves out (their commitments remain).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<String>,
    /// The device rule the server judged its signatures' levels with (`enforced`, or
    /// `relaxed-for-demo` on a demo without an HSM); absent in bundles made before it was
    /// recorded, which the verifier reads as `enforced`, as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_rule: Option<crate::signing::DeviceRule>,
    pub pki: BundlePki,
    /// The service's seal over everything above.
    pub seal: BundleSeal,
    /// Archive time-stamps over the whole bundle, oldest first (B-LTA, `evidence::ltv`): not
    /// covered by the seal, each covering the bundle and the stamps before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archive_timestamps: Vec<ltv::ArchiveTimeStamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleHead {
    /// The number of events.
    pub version: u64,
    /// `hash` of the last event.
    pub last_hash: String,
    /// `open`, `returned`, `completed`, `rejected` or `withdrawn`, as the events replay.
    pub status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleDefinitions {
    pub form: DefinitionFile,
    pub workflow: DefinitionFile,
    /// The reference data (holiday calendars, rates tables) the form definitions are read with.
    pub reference: Vec<TextFile>,
}

/// A form or workflow definition: its exact bytes (as text) and its content hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefinitionFile {
    pub id: String,
    pub version: String,
    /// `forms/<id>.json` or `workflows/<id>.json`.
    pub name: String,
    /// Lower-case hex SHA-256 of the UTF-8 bytes of `text`: the hash the case is pinned to.
    pub sha256: String,
    pub text: String,
}

/// A text file (JSON, PEM) and the SHA-256 of its UTF-8 bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextFile {
    pub name: String,
    pub sha256: String,
    pub text: String,
}

/// A binary file (a DER CRL), base64 (RFC 4648 §4, with padding), and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinaryFile {
    pub name: String,
    pub sha256: String,
    pub base64: String,
}

/// One stored event. `hash` = SHA-256 (hex) of the RFC 8785 canonical JSON of
/// `{case_id, seq, recorded_at, prev_hash, body}`, with `recorded_at` the string as written here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleEvent {
    pub case_id: String,
    pub seq: u64,
    pub recorded_at: String,
    pub prev_hash: String,
    pub hash: String,
    /// The workflow engine's event (`CaseEvent`), as stored.
    pub body: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundlePki {
    /// `trust-list.json`: the trust list's whole signed history (`pki::history`): every member
    /// (trust anchor, certification entity, TSA, service seal) with its certificate, and every
    /// dated change of accreditation and policy, each signed by the trust-list operator.
    pub trust_list: TextFile,
    /// The CRLs signatures are judged with (file bytes, DER or PEM).
    pub crls: Vec<BinaryFile>,
    /// The certificate (PEM, leaf first) whose seals are `simple` acts and seal this bundle; the
    /// trust list must name it as a `service_seal` member in service at each seal's time.
    pub service_certificate: TextFile,
}

/// A JWS (flattened JSON, detached payload) by the service seal over the canonical `payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSeal {
    pub payload: SealPayload,
    pub protected: String,
    pub signature: String,
}

/// What the service seals at export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealPayload {
    /// Always `carimbo-evidence-bundle/1`.
    pub bundle: String,
    pub case: String,
    /// The number of events.
    pub version: u64,
    /// `sha256:` + the last event's hash.
    pub last_event_hash: String,
    pub exported_at: String,
    pub exported_by: String,
    /// For every top-level member of the bundle except `seal`: `sha256:` + hex SHA-256 of the
    /// RFC 8785 canonical JSON of its value.
    pub digests: std::collections::BTreeMap<String, String>,
}

impl EvidenceBundle {
    /// The bundle as written: RFC 8785 canonical JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json_canonicalizer::to_vec(self).expect("a bundle always canonicalizes")
    }
}

/// The value of `SealPayload::bundle`.
pub fn seal_label() -> String {
    format!("{FORMAT}/{FORMAT_VERSION}")
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256:` + hex SHA-256 of the RFC 8785 canonical JSON of each top-level member except `seal`
/// and `archive_timestamps` (added after the seal, and covered by their own stamps).
pub fn member_digests(bundle: &Value) -> std::collections::BTreeMap<String, String> {
    member_digests_with(bundle, |_| None)
}

/// `member_digests`, taking a member's digest from `known` where it gives one (a member an
/// earlier bundle held byte for byte).
pub(crate) fn member_digests_with(bundle: &Value, known: impl Fn(&str) -> Option<String>) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    if let Value::Object(m) = bundle {
        for (k, v) in m {
            if k == "seal" || k == ltv::MEMBER {
                continue;
            }
            let digest = known(k).unwrap_or_else(|| format!("sha256:{}", hex::encode(crate::jcs::sha256(v))));
            out.insert(k.clone(), digest);
        }
    }
    out
}

/// Errors making a bundle (verifying never errors: it returns a report).
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Case(#[from] crate::cases::CaseError),
    #[error("the validation material cannot be read: {0} [CARIMBO-E0920]")]
    Material(String),
    #[error("the definition {0} the case is pinned to is not in the store [CARIMBO-E0921]")]
    Definition(String),
    #[error("the bundle cannot be sealed: {0} [CARIMBO-E0922]")]
    Seal(String),
    #[error("restricted field {0:?} was recorded in the open, so no bundle without it verifies [CARIMBO-E0923]")]
    Withheld(String),
    #[error("the bundle's archive time-stamp could not be made: {0} [CARIMBO-E1255]")]
    ArchiveStamp(String),
}
