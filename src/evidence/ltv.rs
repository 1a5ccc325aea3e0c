//! Long-term evidence: the archive time-stamps that keep a bundle provable after its
//! certificates expire (JAdES B-LTA, ETSI TS 119 182-1 §5.5; validation as EN 319 102-1 §5.6.2.5,
//! "past signature validation" with proofs of existence).
//!
//! A signature time-stamp (`sigTst`, B-T) proves an act's signature existed at its `genTime`;
//! but the token is itself a signature, by a TSA whose certificate expires, and after that a
//! verifier can no longer tell a genuine token from one made with a leaked or broken key.
//! What keeps it provable is a proof that the token existed while its TSA certificate was
//! still good: an *archive time-stamp* over the whole bundle, made before then, and before that
//! one's TSA expires, another over the bundle with the first, and so on.
//!
//! Which bytes archive time-stamp *k* covers (the bundle's `archive_timestamps[k]`): the RFC 8785
//! canonical JSON of the bundle with `archive_timestamps` cut to its first *k* entries followed
//! by entry *k* without its `token`. So each stamp covers every member of the bundle, every
//! earlier archive stamp, and the validation data it was added with (a newer trust-list history
//! naming the new TSA, the CRLs of its issuer); the first stamp covers the seal too.
//!
//! Everything here is pure: bundle bytes, tokens and `now` come in. Asking a TSA is the shell's
//! (`evidence::export_archived`, `cli::restamp`, `archive_job`).

use super::verify::{Check, Finding, PoeNeed};
use super::{BinaryFile, EvidenceBundle, TextFile, sha256_hex};
use crate::pki::CrlSet;
use crate::pki::crl::LoadedCrl;
use crate::pki::history::{TrustHistory, utc_text};
use crate::pki::report::{Indication, SubIndication, ValidationReport};
use crate::signing::timestamp::{StampFailure, TimeStampVerifier};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The bundle member holding the archive time-stamps, oldest first.
pub const MEMBER: &str = "archive_timestamps";
/// How long after the previous time (the export, or the previous archive stamp) a TSA's clock
/// may seem to run behind, in seconds.
const CLOCK_SKEW_SECONDS: i64 = 300;

pub(crate) const E_ARCHIVE: &str = "CARIMBO-E1251";
pub(crate) const E_NO_POE: &str = "CARIMBO-E1252";
pub(crate) const E_VALIDATION_DATA: &str = "CARIMBO-E1253";
pub(crate) const E_TSA_REVOKED: &str = "CARIMBO-E1480";

/// One archive time-stamp and the validation data added with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveTimeStamp {
    /// What the verifier needs for this stamp that the bundle did not hold yet.
    pub validation_data: ValidationData,
    /// The RFC 3161 TimeStampToken (DER), standard base64 with padding.
    pub token: String,
}

/// Validation material added with an archive time-stamp (and covered by it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationData {
    /// A newer trust-list history, continuing the one before it entry for entry: it names the
    /// TSA of this stamp when that TSA was added to the list after the bundle was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_list: Option<TextFile>,
    /// CRLs the bundle did not hold yet (of the new TSA's issuer, newer ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crls: Vec<BinaryFile>,
}

impl ValidationData {
    pub fn is_empty(&self) -> bool {
        self.trust_list.is_none() && self.crls.is_empty()
    }
}

/// One archive time-stamp as verified, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveLine {
    pub gen_time: String,
    /// The TSA certificate's subject and its trust-list member.
    pub tsa: String,
    pub tsa_entity: String,
    /// When the first certificate of the TSA's chain expires: before then the next archive
    /// time-stamp must be added.
    pub valid_until: String,
}

/// The bytes archive time-stamp `k` of `bundle` covers (see the module comment). `None` when
/// the bundle has no entry `k`.
pub fn stamped_bytes(bundle: &Value, k: usize) -> Option<Vec<u8>> {
    let entries = bundle.get(MEMBER)?.as_array()?;
    let mut entry = entries.get(k)?.clone();
    entry.as_object_mut()?.remove("token");
    let mut cut: Vec<Value> = entries[..k].to_vec();
    cut.push(entry);
    let mut v = bundle.clone();
    v.as_object_mut()?.insert(MEMBER.into(), Value::Array(cut));
    Some(crate::jcs::to_vec(&v))
}

/// The bytes the next archive time-stamp of `bundle`, added with `validation_data`, covers.
pub fn next_stamp_input(bundle: &EvidenceBundle, validation_data: &ValidationData) -> Vec<u8> {
    let mut v = serde_json::to_value(bundle).expect("a bundle always serializes");
    let mut entries = bundle.archive_timestamps.iter().map(|a| serde_json::to_value(a).expect("an archive stamp always serializes")).collect::<Vec<_>>();
    entries.push(serde_json::json!({"validation_data": validation_data, "token": ""}));
    v.as_object_mut().expect("a bundle is an object").insert(MEMBER.into(), Value::Array(entries));
    let k = bundle.archive_timestamps.len();
    stamped_bytes(&v, k).expect("the entry was just added")
}

/// `bundle` with a new archive time-stamp `token` (DER) over `next_stamp_input(bundle,
/// validation_data)`.
pub fn with_archive_stamp(mut bundle: EvidenceBundle, validation_data: ValidationData, token: &[u8]) -> EvidenceBundle {
    bundle.archive_timestamps.push(ArchiveTimeStamp { validation_data, token: base64::engine::general_purpose::STANDARD.encode(token) });
    bundle
}

/// What the archive time-stamps prove, once verified.
pub(crate) struct ArchiveProof {
    /// The time the bundle (without its archive stamps) is proven to exist: the first archive
    /// stamp's `genTime`; `None` without archive stamps.
    pub proven_at: Option<DateTime<Utc>>,
    pub lines: Vec<ArchiveLine>,
    /// The first expiry in the last archive stamp's TSA chain.
    pub valid_until: Option<DateTime<Utc>>,
}

/// Reads CRL files (DER or PEM) into `crls`, naming the file that is not a CRL.
pub(crate) fn add_crls(crls: &mut CrlSet, files: &[(String, String, Vec<u8>)]) -> Check<()> {
    for (pointer, name, bytes) in files {
        let bad = |e: String| Finding::new(super::verify::E_PKI, "pki", pointer.clone(), format!("{name} is not a usable CRL: {e}")).file(name);
        let ders: Vec<Vec<u8>> = if bytes.starts_with(b"-----") {
            CertificateRevocationListDer::pem_slice_iter(bytes)
                .map(|r| r.map(|d| d.as_ref().to_vec()))
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?
        } else {
            vec![bytes.clone()]
        };
        for der in ders {
            crls.add(LoadedCrl::from_der(der, name).map_err(bad)?);
        }
    }
    Ok(())
}

/// The validation data of archive stamp `k`, checked: hashes, base64, and a trust list that
/// continues the previous one. Updates `history` and `crl_files`.
fn take_validation_data(
    k: usize,
    vd: &ValidationData,
    history: &mut std::borrow::Cow<'_, TrustHistory>,
    crl_files: &mut Vec<(String, String, Vec<u8>)>,
    now: DateTime<Utc>,
) -> Check<()> {
    let base = format!("/{MEMBER}/{k}/validation_data");
    let bad = |pointer: String, msg: String| Finding::new(E_VALIDATION_DATA, "archive", pointer, msg);
    if let Some(tl) = &vd.trust_list {
        let computed = sha256_hex(tl.text.as_bytes());
        if computed != tl.sha256 {
            return Err(bad(format!("{base}/trust_list"), format!("{} hashes to {computed}, but the bundle gives {}", tl.name, tl.sha256)).file(&tl.name));
        }
        let newer = TrustHistory::from_slice(tl.text.as_bytes(), now)
            .map_err(|e| bad(format!("{base}/trust_list/text"), format!("the trust list's history does not verify: {e}")).file(&tl.name))?;
        let old = history.entries();
        if newer.entries().len() < old.len() || newer.entries()[..old.len()] != *old {
            return Err(bad(
                format!("{base}/trust_list/text"),
                format!("this trust list does not continue the bundle's: its first {} entries are not the ones the bundle already holds", old.len()),
            )
            .file(&tl.name));
        }
        *history = std::borrow::Cow::Owned(newer);
    }
    for (i, f) in vd.crls.iter().enumerate() {
        let ptr = format!("{base}/crls/{i}");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&f.base64)
            .map_err(|e| bad(format!("{ptr}/base64"), format!("{} is not valid base64: {e}", f.name)).file(&f.name))?;
        let computed = sha256_hex(&bytes);
        if computed != f.sha256 {
            return Err(bad(ptr, format!("{} hashes to {computed}, but the bundle gives {}", f.name, f.sha256)).file(&f.name));
        }
        crl_files.push((format!("{ptr}/base64"), f.name.clone(), bytes));
    }
    Ok(())
}

/// The finding for archive time-stamp `k` that did not verify; `why` says where the deciding
/// data came from when it is not the stamp's own.
fn stamp_failure(k: usize, f: &StampFailure, why: &str) -> Box<Finding> {
    let ptr = format!("/{MEMBER}/{k}");
    // An imprint that does not match means the covered bytes changed: everything before this
    // stamp verified, so what changed is this stamp's token or the validation data added with it.
    let (pointer, what) = if f.sub == SubIndication::HashFailure && f.code == crate::signing::timestamp::codes::IMPRINT_MISMATCH {
        (ptr, "the bytes it covers changed after it was made (its validation data, or its token's imprint)".to_string())
    } else {
        (format!("{ptr}/token"), f.detail.clone())
    };
    // A TSA certificate revoked at or before the stamp's genTime has its own code: the stamp
    // proves nothing, whatever came after it (EN 319 102-1 §5.2.7: REVOKED).
    let code = if f.sub == SubIndication::Revoked { E_TSA_REVOKED } else { E_ARCHIVE };
    let mut finding = Finding::new(
        code,
        "archive",
        pointer,
        format!("archive time-stamp {k} does not verify: {} {}: {what}{why}", indication_text(f.indication), f.sub.as_str()),
    );
    finding.report = Some(stamp_report(f.indication, f.sub, f.code, &f.detail));
    finding
}

/// Each archive stamp was verified with the CRLs the bundle held when it was added; a CRL
/// added with a later stamp (`validation_data.crls`) may list the stamp's TSA certificate as
/// revoked. Stamps followed by new CRLs are judged again with every CRL of the bundle, as the
/// signers are with the bundle's: revoked at or before the stamp's `genTime` fails
/// (`CARIMBO-E1480`); revoked later, the stamp stands: the token was made before the
/// revocation, and the next stamp (or the verification) proves it existed.
fn check_later_revocations(verified: &[(Vec<u8>, Vec<u8>, usize)], history: &TrustHistory, crl_files: &[(String, String, Vec<u8>)]) -> Check<()> {
    if verified.iter().all(|(_, _, held)| *held == crl_files.len()) {
        return Ok(());
    }
    let trust =
        history.trust_list().map_err(|e| Finding::new(E_VALIDATION_DATA, "archive", format!("/{MEMBER}"), format!("the trust list is not usable: {e}")))?;
    let mut crls = CrlSet::empty();
    add_crls(&mut crls, crl_files)?;
    let verifier = TimeStampVerifier::new(trust, crls);
    for (k, (token, input, held)) in verified.iter().enumerate() {
        if *held < crl_files.len() {
            let names: Vec<&str> = crl_files[*held..].iter().map(|(_, name, _)| name.as_str()).collect();
            let why = format!(" (by the CRLs added after it: {})", names.join(", "));
            verifier.verify(token, input).map_err(|f| stamp_failure(k, &f, &why))?;
        }
    }
    Ok(())
}

fn stamp_report(indication: Indication, sub: SubIndication, code: &str, detail: &str) -> ValidationReport {
    let mut r = ValidationReport::failed(indication, sub, format!("archive time-stamp: {detail}"));
    r.code = Some(code.to_string());
    r
}

/// Verifies every archive time-stamp in order: its validation data, its imprint over the bytes
/// it covers, its token and TSA (at `genTime`, on the trust list as it stands with this stamp),
/// its time after the export and the previous stamp; then that each stamp's TSA certificate
/// was still valid when the next stamp (or, for the last, the verification at `now`) proves it
/// existed. `crl_files` are the bundle's own CRLs.
pub(crate) fn check_archive(
    bundle: &EvidenceBundle,
    value: &Value,
    base_history: &TrustHistory,
    base_stamps: &TimeStampVerifier,
    crl_files: Vec<(String, String, Vec<u8>)>,
    exported: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Check<ArchiveProof> {
    // The bundle's history, replaced (not copied) when a stamp brings a newer one.
    let mut history = std::borrow::Cow::Borrowed(base_history);
    let mut crl_files = crl_files;
    let mut previous = exported;
    let mut stamps: Vec<(DateTime<Utc>, DateTime<Utc>, String)> = Vec::new();
    let mut lines = Vec::new();
    // Each stamp's token, the bytes it covers and how many CRLs the bundle held with it: for
    // the revocation check against the CRLs added after it (`check_later_revocations`).
    let mut verified: Vec<(Vec<u8>, Vec<u8>, usize)> = Vec::new();
    let mut added = false;
    for (k, entry) in bundle.archive_timestamps.iter().enumerate() {
        let ptr = format!("/{MEMBER}/{k}");
        let vd = &entry.validation_data;
        added |= vd.trust_list.is_some() || !vd.crls.is_empty();
        take_validation_data(k, vd, &mut history, &mut crl_files, now)?;
        // While no stamp has brought validation data of its own, the material is the bundle's:
        // its verifier (already built from the same trust list and CRLs, with its validated TSA
        // chains) is the one a fresh build would equal.
        let fresh;
        let verifier = if added {
            let trust = history
                .trust_list()
                .map_err(|e| Finding::new(E_VALIDATION_DATA, "archive", format!("{ptr}/validation_data"), format!("the trust list is not usable: {e}")))?;
            let mut crls = CrlSet::empty();
            add_crls(&mut crls, &crl_files)?;
            fresh = TimeStampVerifier::new(trust, crls);
            &fresh
        } else {
            base_stamps
        };
        let token = base64::engine::general_purpose::STANDARD
            .decode(&entry.token)
            .map_err(|e| Finding::new(E_ARCHIVE, "archive", format!("{ptr}/token"), format!("the archive time-stamp is not valid base64: {e}")))?;
        let input = stamped_bytes(value, k).ok_or_else(|| Finding::new(E_ARCHIVE, "archive", ptr.clone(), "the archive time-stamp cannot be read"))?;
        let stamp = verifier.verify(&token, &input).map_err(|f| stamp_failure(k, &f, ""))?;
        let at = stamp.gen_time;
        if at + Duration::seconds(CLOCK_SKEW_SECONDS) < previous {
            let what = if k == 0 { "the bundle was exported" } else { "the previous archive time-stamp" };
            return Err(Finding::new(
                E_ARCHIVE,
                "archive",
                format!("{ptr}/token"),
                format!("archive time-stamp {k} was made at {}, before {what} ({})", utc_text(at), utc_text(previous)),
            ));
        }
        if at > now + Duration::seconds(CLOCK_SKEW_SECONDS) {
            return Err(Finding::new(
                E_ARCHIVE,
                "archive",
                format!("{ptr}/token"),
                format!("archive time-stamp {k} was made at {}, after the time of verification ({})", utc_text(at), utc_text(now)),
            ));
        }
        let (until, subject) = stamp.chain.iter().min_by_key(|c| c.not_after).map(|c| (c.not_after, c.subject.clone())).unwrap_or((at, stamp.tsa.clone()));
        lines.push(ArchiveLine { gen_time: utc_text(at), tsa: stamp.tsa.clone(), tsa_entity: stamp.tsa_entity.clone(), valid_until: utc_text(until) });
        stamps.push((at, until, subject));
        verified.push((token, input, crl_files.len()));
        previous = at;
    }
    check_later_revocations(&verified, &history, &crl_files)?;
    // Each stamp needs its own proof of existence while its TSA chain was valid: the next one.
    for (k, (_, until, subject)) in stamps.iter().enumerate() {
        let (poe, by) = match stamps.get(k + 1) {
            Some((next, _, _)) => (*next, format!("archive time-stamp {} proves it existed only at {}", k + 1, utc_text(*next))),
            None => (now, format!("nothing later proves it existed before the time of verification {}", utc_text(now))),
        };
        if *until < poe {
            let detail = format!(
                "archive time-stamp {k}: certificate `{subject}` of its TSA expired on {}, and {by}: re-stamp bundles before their last archive time-stamp's TSA certificate expires (`carimbo evidence restamp`)",
                utc_text(*until)
            );
            let mut f = Finding::new(E_NO_POE, "archive", format!("/{MEMBER}/{k}/token"), detail.clone());
            f.report = Some(ValidationReport::failed(Indication::Indeterminate, SubIndication::OutOfBoundsNoPoe, detail));
            return Err(f);
        }
    }
    Ok(ArchiveProof { proven_at: stamps.first().map(|s| s.0), lines, valid_until: stamps.last().map(|s| s.1) })
}

/// Every signature, time-stamp and seal whose certificate expired must have been proven to
/// exist before it did: by the first archive time-stamp, or, without one, at `now`.
pub(crate) fn check_proofs_of_existence(needs: &[PoeNeed], proven_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Check<()> {
    let (poe, by) = match proven_at {
        Some(t) => (t, format!("the first archive time-stamp proves the bundle existed only at {}", utc_text(t))),
        None => (now, format!("the bundle has no archive time-stamp, so nothing proves it existed before the time of verification {}", utc_text(now))),
    };
    let Some(need) = needs.iter().find(|n| n.not_after < poe) else { return Ok(()) };
    let detail = format!(
        "{}: certificate `{}` expired on {}, and {by} (B-LTA: add archive time-stamps before certificates expire, `carimbo evidence restamp`)",
        need.what,
        need.subject,
        utc_text(need.not_after)
    );
    let mut f = Finding::new(E_NO_POE, "archive", need.pointer.clone(), detail.clone());
    f.seq = need.seq;
    f.report = Some(ValidationReport::failed(Indication::Indeterminate, SubIndication::OutOfBoundsNoPoe, detail));
    Err(f)
}

fn indication_text(i: Indication) -> String {
    serde_json::to_value(i).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Why a bundle was not re-stamped.
#[derive(Debug, thiserror::Error)]
pub enum RestampError {
    #[error("CARIMBO-E1254: the bundle does not verify now ({0}), so it is not re-stamped: a new archive time-stamp would only vouch for a broken bundle")]
    DoesNotVerify(String),
    #[error("CARIMBO-E1255: no time-stamp could be had for the archive time-stamp: {0}")]
    Stamping(String),
    #[error("CARIMBO-E1256: the bundle with its new archive time-stamp does not verify ({0}); nothing was written")]
    NewStampRefused(String),
}

impl RestampError {
    pub fn code(&self) -> &'static str {
        match self {
            RestampError::DoesNotVerify(_) => "CARIMBO-E1254",
            RestampError::Stamping(_) => "CARIMBO-E1255",
            RestampError::NewStampRefused(_) => "CARIMBO-E1256",
        }
    }
}

/// A bundle about to get its next archive time-stamp: what to stamp, and with what validation
/// data. Made only from a bundle that verifies at `now`.
pub struct PreparedRestamp {
    pub bundle: EvidenceBundle,
    pub validation_data: ValidationData,
    /// The bytes the new token must stamp.
    pub input: Vec<u8>,
}

fn failure_text(r: &super::VerificationReport) -> String {
    r.first_failure.as_ref().map(|f| format!("{} at {}: {}", f.code, f.place(), f.message)).unwrap_or_default()
}

/// Checks `bytes` at `now` and prepares its next archive time-stamp: `trust_list` (the trust
/// list's history as the stamping side keeps it) goes into the validation data when it is not
/// the bundle's newest, and so does every CRL of `crls` the bundle does not hold yet.
pub fn prepare_restamp(bytes: &[u8], now: DateTime<Utc>, trust_list: Option<&TextFile>, crls: &[BinaryFile]) -> Result<PreparedRestamp, RestampError> {
    let report = super::verify(bytes, now);
    if !report.passed {
        return Err(RestampError::DoesNotVerify(failure_text(&report)));
    }
    let bundle: EvidenceBundle = crate::json_strict::from_slice(bytes).map_err(|e| RestampError::DoesNotVerify(e.to_string()))?;
    let newest = bundle.archive_timestamps.iter().rev().find_map(|a| a.validation_data.trust_list.as_ref()).unwrap_or(&bundle.pki.trust_list);
    let mut vd = ValidationData::default();
    if let Some(tl) = trust_list.filter(|tl| tl.sha256 != newest.sha256) {
        vd.trust_list = Some(tl.clone());
    }
    let held: std::collections::BTreeSet<&str> =
        bundle.pki.crls.iter().chain(bundle.archive_timestamps.iter().flat_map(|a| a.validation_data.crls.iter())).map(|c| c.sha256.as_str()).collect();
    vd.crls = crls.iter().filter(|c| !held.contains(c.sha256.as_str())).cloned().collect();
    let input = next_stamp_input(&bundle, &vd);
    Ok(PreparedRestamp { bundle, validation_data: vd, input })
}

/// The prepared bundle with `token`, verified again at `now`: its bytes.
pub fn finish_restamp(prepared: PreparedRestamp, token: &[u8], now: DateTime<Utc>) -> Result<Vec<u8>, RestampError> {
    let bundle = with_archive_stamp(prepared.bundle, prepared.validation_data, token);
    let bytes = bundle.to_bytes();
    let report = super::verify(&bytes, now);
    if !report.passed {
        return Err(RestampError::NewStampRefused(failure_text(&report)));
    }
    Ok(bytes)
}

/// Whether a bundle verified with `report` needs its next archive time-stamp by `now`: it has
/// none, or its last one's TSA certificate expires within `margin`.
pub fn restamp_due(report: &super::VerificationReport, now: DateTime<Utc>, margin: Duration) -> bool {
    match report.archive_valid_until.as_deref().map(crate::pki::history::parse_utc_z) {
        Some(Ok(until)) => until - margin <= now,
        _ => true,
    }
}
