//! The trust list as a document with history: a chain of signed, dated entries.
//!
//! A trust list that is only "the entities trusted now" cannot answer the question a verifier
//! asks ten years on: *was this issuer accredited, at which level, when the act was signed?*
//! Following the idea of ETSI TS 119 612 (a trusted list keeps each service's status history
//! and is signed by its scheme operator), carimbo's list is the chain of every change ever
//! made — a member (trust anchor, certification entity, time-stamping authority, service seal)
//! added, an accreditation granted, suspended or withdrawn, a qualified-policy OID added or
//! removed, the operator's certificate replaced — each one a JWS by the trust-list operator
//! over the entry's RFC 8785 canonical payload, holding the hash of the entry before it.
//!
//! The operator's certificate must chain to a trust anchor of the list and carry the extended
//! key usage id-tsl-kp-tslSigning (0.4.0.2231.3.0, ETSI TS 119 612 §5.7.1), which no staff
//! certificate has: whoever holds only a staff key can neither add an entry nor forge a list
//! that names their own certificate as the service seal. Nothing is ever removed: a change is a
//! new entry, and [`TrustHistory::accreditation_at`] reads the history at any time `T`. The
//! accreditation periods of the older list format are the special case of a history whose
//! entries are the periods' ends.
//!
//! This module reads no file and no clock: the document's bytes and `now` come in. The format
//! is in `docs/signatures.md` ("The trust list and its history"); errors are
//! `CARIMBO-E1230`–`E1245` (`docs/errors-signing.md`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::CrlSet;
use super::cert::CertFacts;
use super::path::{CertificateValidator, EkuRule, RevocationRule, ValidationPolicy};
use super::report::SignatureLevel;
use super::trust::{LocalizedName, TrustList};

/// The value of `format` in a trust-list document.
pub const FORMAT: &str = "carimbo-trust-list";
/// The version of the history format (version 1 was the list of entities with periods).
pub const VERSION: u32 = 2;
/// id-tsl-kp-tslSigning (ETSI TS 119 612): the EKU the operator's certificate must carry.
pub const OID_TSL_SIGNING: &str = "0.4.0.2231.3.0";
/// DER contents of [`OID_TSL_SIGNING`], as webpki compares EKUs.
const OID_TSL_SIGNING_DER: &[u8] = &[0x04, 0x00, 0x91, 0x37, 0x03, 0x00];
/// `prev` of the first entry.
pub const GENESIS_PREV: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
/// At most this many entries are read (a real list has a few per year).
pub const MAX_ENTRIES: usize = 10_000;

/// What a member of the list is (the "service type" of ETSI TS 119 612).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceType {
    /// A root the path validator may end at.
    TrustAnchor,
    /// A certification entity (CA) issuing signing certificates.
    CertificationEntity,
    /// A time-stamping authority (RFC 3161).
    TimeStamping,
    /// The certificate of carimbo's own service seal (`simple` acts, evidence bundles).
    ServiceSeal,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::TrustAnchor => "trust_anchor",
            ServiceType::CertificationEntity => "certification_entity",
            ServiceType::TimeStamping => "time_stamping",
            ServiceType::ServiceSeal => "service_seal",
        }
    }
}

/// A member's status from an entry on (ETSI TS 119 612 "granted", "suspended", "withdrawn").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Granted,
    Suspended,
    Withdrawn,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Granted => "granted",
            MemberStatus::Suspended => "suspended",
            MemberStatus::Withdrawn => "withdrawn",
        }
    }
}

/// One change to the list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// A member joins the list, with its certificate (base64 DER). A member is never removed:
    /// its status is withdrawn instead.
    AddMember { member: String, service_type: ServiceType, name: LocalizedName, certificate: String },
    /// A member's status changes. `level` (advanced or qualified) is given with `granted` for a
    /// certification entity: the level of the signatures its certificates can make.
    Status {
        member: String,
        status: MemberStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        level: Option<SignatureLevel>,
    },
    /// A certificate policy OID that marks this entity's certificates as qualified, from now on.
    PolicyAdded { member: String, oid: String },
    /// That OID no longer marks them as qualified, from now on.
    PolicyRemoved { member: String, oid: String },
    /// The operator's certificate (base64 DER) is replaced: the entries after this one are
    /// signed with the new key. Signed by the outgoing operator.
    Operator { certificate: String },
    /// What a certification entity states of the devices its keys are on, from now on:
    /// `all-issued`, every certificate it issues is for a key on a qualified signature-creation
    /// device (so `qualified` needs no QcSSCD in the certificate), or `none` to end that.
    Qscd { member: String, qscd: QscdStatement },
}

/// A certification entity's statement about its subjects' devices (`Change::Qscd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QscdStatement {
    AllIssued,
    None,
}

impl Change {
    /// The member the change is about (none for an operator change).
    pub fn member(&self) -> Option<&str> {
        match self {
            Change::AddMember { member, .. }
            | Change::Status { member, .. }
            | Change::PolicyAdded { member, .. }
            | Change::PolicyRemoved { member, .. }
            | Change::Qscd { member, .. } => Some(member),
            Change::Operator { .. } => None,
        }
    }

    /// The change in words, for pages and reports.
    pub fn describe(&self) -> String {
        match self {
            Change::AddMember { member, service_type, .. } => format!("{member} added as {}", service_type.as_str()),
            Change::Status { member, status, level } => match level {
                Some(l) => format!("{member}: {} ({})", status.as_str(), l.as_str()),
                None => format!("{member}: {}", status.as_str()),
            },
            Change::PolicyAdded { member, oid } => format!("{member}: policy {oid} marks qualified certificates"),
            Change::PolicyRemoved { member, oid } => format!("{member}: policy {oid} no longer marks qualified certificates"),
            Change::Operator { .. } => "operator certificate replaced".into(),
            Change::Qscd { member, qscd: QscdStatement::AllIssued } => format!("{member}: every certificate it issues is for a key on a qualified device"),
            Change::Qscd { member, qscd: QscdStatement::None } => format!("{member}: no longer states its keys are on qualified devices"),
        }
    }
}

/// What the operator signs: the entry's place in the chain, its date and the change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryPayload {
    /// 1 for the first entry, +1 for each next one.
    pub seq: u64,
    /// When the change takes effect: RFC 3339 in UTC with `Z`. Never before the previous entry's.
    pub at: String,
    /// `sha256:` + hex SHA-256 of the RFC 8785 canonical JSON of the previous entry (whole:
    /// payload, protected, signature); [`GENESIS_PREV`] for the first.
    pub prev: String,
    pub change: Change,
}

/// One signed entry: a JWS (flattened JSON, detached payload, JAdES header with `x5c` and
/// `iat` = `at`) by the operator over the canonical JSON of `payload`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustEntry {
    /// The change, its sequence number, time and the previous entry's hash (`carimbo trust sign` writes it).
    #[schema(value_type = Object)]
    pub payload: EntryPayload,
    pub protected: String,
    pub signature: String,
}

impl TrustEntry {
    /// `sha256:` + hex SHA-256 of the entry's canonical JSON: the next entry's `prev`.
    pub fn hash(&self) -> String {
        let bytes = serde_json_canonicalizer::to_vec(self).expect("an entry always canonicalizes");
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }

    /// The bytes the operator signs.
    pub fn signed_bytes(payload: &EntryPayload) -> Vec<u8> {
        serde_json_canonicalizer::to_vec(payload).expect("a payload always canonicalizes")
    }
}

/// The file `trust-list.json` (version 2): the whole history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustListDocument {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    pub name: String,
    pub entries: Vec<TrustEntry>,
}

impl TrustListDocument {
    /// The document as written to disk: pretty JSON with a final newline.
    pub fn to_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a trust list always serializes") + "\n"
    }
}

/// Why a trust-list document or an entry was refused. Each carries its entry's `seq` where
/// there is one; nothing of a refused entry is applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistoryError {
    #[error("CARIMBO-E1230: the trust list is not a carimbo trust-list document: {0}")]
    NotADocument(String),
    #[error("CARIMBO-E1231: trust-list entry {seq} is not signed: {reason}")]
    Unsigned { seq: u64, reason: String },
    #[error("CARIMBO-E1232: trust-list entry {seq} is not signed by the trust-list operator: {reason}")]
    WrongSigner { seq: u64, reason: String },
    #[error("CARIMBO-E1233: the signature of trust-list entry {seq} does not verify: {reason}")]
    BadSignature { seq: u64, reason: String },
    #[error("CARIMBO-E1234: trust-list entry {seq} is out of order: {reason}")]
    OutOfOrder { seq: u64, reason: String },
    #[error("CARIMBO-E1235: trust-list entry {seq} adds member {member:?}, which is already on the list{why}")]
    DuplicateMember { seq: u64, member: String, why: String },
    #[error("CARIMBO-E1236: trust-list entry {seq} names member {member:?}, which is not on the list")]
    UnknownMember { seq: u64, member: String },
    #[error("CARIMBO-E1237: trust-list entry {seq} is not a valid change: {reason}")]
    BadChange { seq: u64, reason: String },
    #[error("CARIMBO-E1238: the first trust-list entry must add the trust anchor that issued the operator's certificate: {0}")]
    BadGenesis(String),
}

impl HistoryError {
    /// The stable code, as typed data.
    pub fn code(&self) -> &'static str {
        match self {
            HistoryError::NotADocument(_) => "CARIMBO-E1230",
            HistoryError::Unsigned { .. } => "CARIMBO-E1231",
            HistoryError::WrongSigner { .. } => "CARIMBO-E1232",
            HistoryError::BadSignature { .. } => "CARIMBO-E1233",
            HistoryError::OutOfOrder { .. } => "CARIMBO-E1234",
            HistoryError::DuplicateMember { .. } => "CARIMBO-E1235",
            HistoryError::UnknownMember { .. } => "CARIMBO-E1236",
            HistoryError::BadChange { .. } => "CARIMBO-E1237",
            HistoryError::BadGenesis(_) => "CARIMBO-E1238",
        }
    }

    /// The message without its code prefix.
    pub fn reason(&self) -> String {
        let s = self.to_string();
        s.split_once(": ").map(|(_, r)| r.to_string()).unwrap_or(s)
    }
}

/// A member as the history has made it: its certificate and every dated change about it.
#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    pub service_type: ServiceType,
    pub name: LocalizedName,
    pub certificate: CertificateDer<'static>,
    pub facts: CertFacts,
    pub added_at: DateTime<Utc>,
    /// Status changes in order: (from, status, level).
    pub statuses: Vec<(DateTime<Utc>, MemberStatus, Option<SignatureLevel>)>,
    /// Policy changes in order: (from, oid, in force).
    pub policies: Vec<(DateTime<Utc>, String, bool)>,
    /// Device statements in order: (from, every issued key on a qualified device).
    pub qscd: Vec<(DateTime<Utc>, bool)>,
}

impl Member {
    /// The status in force at `t` (the last change at or before `t`), if any.
    pub fn status_at(&self, t: DateTime<Utc>) -> Option<(MemberStatus, Option<SignatureLevel>)> {
        self.statuses.iter().rev().find(|(from, _, _)| *from <= t).map(|(_, s, l)| (*s, *l))
    }

    /// The level this member was accredited at, at `t`: `None` unless its status was granted.
    pub fn accredited_level_at(&self, t: DateTime<Utc>) -> Option<SignatureLevel> {
        match self.status_at(t) {
            Some((MemberStatus::Granted, level)) => level,
            _ => None,
        }
    }

    /// Whether the member's status was granted at `t` (a TSA or service seal in service).
    pub fn granted_at(&self, t: DateTime<Utc>) -> bool {
        matches!(self.status_at(t), Some((MemberStatus::Granted, _)))
    }

    /// Whether `oid` marked this member's certificates as qualified at `t`.
    pub fn qualified_policy_at(&self, oid: &str, t: DateTime<Utc>) -> bool {
        self.policies.iter().rev().find(|(from, o, _)| *from <= t && o == oid).is_some_and(|(_, _, on)| *on)
    }

    /// Whether the member stated at `t` that every certificate it issues is for a key on a
    /// qualified signature-creation device.
    pub fn qscd_at(&self, t: DateTime<Utc>) -> bool {
        self.qscd.iter().rev().find(|(from, _)| *from <= t).is_some_and(|(_, on)| *on)
    }

    /// The accreditation periods this history gives (the older list format's view): each
    /// period from a `granted` (at `level`) to the next change of status.
    pub fn periods(&self) -> Vec<(DateTime<Utc>, Option<DateTime<Utc>>, SignatureLevel)> {
        let mut out = Vec::new();
        for (i, (from, status, level)) in self.statuses.iter().enumerate() {
            if let (MemberStatus::Granted, Some(level)) = (status, level) {
                let until = self.statuses.get(i + 1).map(|(t, _, _)| *t);
                out.push((*from, until, *level));
            }
        }
        out
    }
}

/// A verified history: the document, its members, and who signed it when.
#[derive(Clone, Debug)]
pub struct TrustHistory {
    pub name: String,
    entries: Vec<TrustEntry>,
    times: Vec<DateTime<Utc>>,
    members: Vec<Member>,
    /// The operator certificate in force, and since which entry.
    operators: Vec<(u64, CertificateDer<'static>)>,
}

/// RFC 3339 in UTC with `Z` only: an offset, a missing zone or a local time is refused, so a
/// time reads the same everywhere and compares as text.
pub fn parse_utc_z(text: &str) -> Result<DateTime<Utc>, String> {
    if !text.ends_with('Z') {
        return Err(format!("{text:?} is not a UTC time ending in `Z`"));
    }
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

/// The text carimbo writes for a time: RFC 3339, UTC, `Z`, seconds (fractions only when there are).
pub fn utc_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn decode_certificate(seq: u64, b64: &str) -> Result<(CertificateDer<'static>, CertFacts), HistoryError> {
    let der = STANDARD.decode(b64).map_err(|e| HistoryError::BadChange { seq, reason: format!("the certificate is not base64: {e}") })?;
    let der = CertificateDer::from(der);
    let facts = CertFacts::from_der(&der).map_err(|e| HistoryError::BadChange { seq, reason: format!("the certificate cannot be read: {e}") })?;
    Ok((der, facts))
}

/// Whether the certificate lists `oid` in its extended key usage.
fn has_eku(der: &[u8], oid: &str) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return false };
    match cert.extended_key_usage() {
        Ok(Some(eku)) => eku.value.other.iter().any(|o| o.to_id_string() == oid),
        _ => false,
    }
}

fn oid_is_well_formed(oid: &str) -> bool {
    let arcs: Vec<&str> = oid.split('.').collect();
    arcs.len() >= 2
        && arcs.len() <= 32
        && arcs.iter().all(|a| !a.is_empty() && a.len() <= 20 && a.bytes().all(|b| b.is_ascii_digit()) && (a.len() == 1 || !a.starts_with('0')))
}

fn member_id_is_well_formed(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl TrustHistory {
    /// Parses and verifies a whole document (bytes as read, through `json_strict`), at `now`.
    pub fn from_slice(bytes: &[u8], now: DateTime<Utc>) -> Result<TrustHistory, HistoryError> {
        let doc: TrustListDocument = crate::json_strict::from_slice(bytes).map_err(|e| HistoryError::NotADocument(e.to_string()))?;
        TrustHistory::verify(doc, now)
    }

    /// Verifies every entry in order: signature by the operator of the time, sequence, `prev`,
    /// dates in order and never after `now`, members known and not repeated.
    pub fn verify(doc: TrustListDocument, now: DateTime<Utc>) -> Result<TrustHistory, HistoryError> {
        if doc.format != FORMAT {
            return Err(HistoryError::NotADocument(format!("`format` is {:?}, not {FORMAT:?}", doc.format)));
        }
        if doc.version != VERSION {
            return Err(HistoryError::NotADocument(format!(
                "version {} is not known (this reader reads version {VERSION}; convert an older list with `carimbo trust convert`)",
                doc.version
            )));
        }
        if doc.entries.len() > MAX_ENTRIES {
            return Err(HistoryError::NotADocument(format!("{} entries; at most {MAX_ENTRIES} are read", doc.entries.len())));
        }
        let mut history = TrustHistory { name: doc.name, entries: Vec::new(), times: Vec::new(), members: Vec::new(), operators: Vec::new() };
        for entry in doc.entries {
            history.push(entry, now)?;
        }
        if history.entries.is_empty() {
            return Err(HistoryError::BadGenesis("the list has no entries".into()));
        }
        Ok(history)
    }

    /// The history with one more entry, checked as [`TrustHistory::verify`] checks each; `self`
    /// is left as it was when the entry is refused.
    pub fn appended(&self, entry: TrustEntry, now: DateTime<Utc>) -> Result<TrustHistory, HistoryError> {
        let mut next = self.clone();
        next.push(entry, now)?;
        Ok(next)
    }

    /// The document to write.
    pub fn document(&self) -> TrustListDocument {
        TrustListDocument { format: FORMAT.into(), version: VERSION, name: self.name.clone(), entries: self.entries.clone() }
    }

    pub fn entries(&self) -> &[TrustEntry] {
        &self.entries
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The operator certificate that signs the next entry.
    pub fn operator(&self) -> &CertificateDer<'static> {
        &self.operators.last().expect("a verified history has an operator").1
    }

    /// The operator certificates in turn, each with the first entry it signed.
    pub fn operators(&self) -> &[(u64, CertificateDer<'static>)] {
        &self.operators
    }

    /// `prev` for the next entry.
    pub fn next_prev(&self) -> String {
        self.entries.last().map(TrustEntry::hash).unwrap_or_else(|| GENESIS_PREV.to_string())
    }

    /// `seq` for the next entry.
    pub fn next_seq(&self) -> u64 {
        self.entries.len() as u64 + 1
    }

    /// When the last change took effect.
    pub fn last_at(&self) -> Option<DateTime<Utc>> {
        self.times.last().copied()
    }

    /// "Was this issuer accredited, at which level, at time `t`?" — `None` when the member is
    /// unknown, was not yet added, or was not granted at `t`.
    pub fn accreditation_at(&self, member: &str, t: DateTime<Utc>) -> Option<SignatureLevel> {
        let m = self.member(member)?;
        if t < m.added_at {
            return None;
        }
        m.accredited_level_at(t)
    }

    /// The member whose certificate is exactly `der`, when it is a service seal granted at `t`.
    pub fn service_seal_at(&self, der: &[u8], t: DateTime<Utc>) -> Option<&Member> {
        self.members.iter().find(|m| m.service_type == ServiceType::ServiceSeal && m.certificate.as_ref() == der && m.added_at <= t && m.granted_at(t))
    }

    /// The trust list path validation uses, with each member's whole history.
    pub fn trust_list(&self) -> Result<TrustList, String> {
        TrustList::from_history(self)
    }

    fn anchors(&self) -> Vec<CertificateDer<'static>> {
        self.members.iter().filter(|m| m.service_type == ServiceType::TrustAnchor).map(|m| m.certificate.clone()).collect()
    }

    /// Checks that `cert` may sign trust-list entries at `at`: it chains to a trust anchor of
    /// the list, valid at `at`, and carries id-tsl-kp-tslSigning.
    fn check_operator(&self, anchors: &[CertificateDer<'static>], cert: &CertificateDer<'_>, at: DateTime<Utc>) -> Result<(), String> {
        if !has_eku(cert.as_ref(), OID_TSL_SIGNING) {
            return Err(format!("the certificate does not carry the extended key usage id-tsl-kp-tslSigning ({OID_TSL_SIGNING})"));
        }
        let trust = TrustList::from_anchors(anchors)?;
        let policy = ValidationPolicy {
            eku: EkuRule::RequiredIfPresent(OID_TSL_SIGNING_DER.to_vec()),
            require_key_usage: true,
            revocation: RevocationRule::IfAvailable,
        };
        let validator = CertificateValidator::new(trust, CrlSet::empty(), policy);
        validator
            .analyse(std::slice::from_ref(&cert.clone().into_owned()), at)
            .map(|_| ())
            .map_err(|f| format!("its certificate does not chain to a trust anchor of the list at {}: {}", utc_text(at), f.detail))
    }

    fn push(&mut self, entry: TrustEntry, now: DateTime<Utc>) -> Result<(), HistoryError> {
        let p = &entry.payload;
        let seq = p.seq;
        let expected = self.next_seq();
        if seq != expected {
            return Err(HistoryError::OutOfOrder { seq, reason: format!("its seq is {seq}, but the next entry of the list is {expected}") });
        }
        let prev = self.next_prev();
        if p.prev != prev {
            return Err(HistoryError::OutOfOrder { seq, reason: format!("its prev is {}, but the previous entry hashes to {prev}", p.prev) });
        }
        let at = parse_utc_z(&p.at).map_err(|reason| HistoryError::BadChange { seq, reason: format!("`at`: {reason}") })?;
        if let Some(last) = self.last_at().filter(|last| at < *last) {
            return Err(HistoryError::OutOfOrder { seq, reason: format!("it takes effect at {}, before the previous entry ({})", p.at, utc_text(last)) });
        }
        if at > now + chrono::Duration::minutes(5) {
            return Err(HistoryError::OutOfOrder { seq, reason: format!("it takes effect at {}, in the future (now is {})", p.at, utc_text(now)) });
        }
        let signer = self.signer_of(&entry, at)?;
        // The first entry names the operator by signing: its certificate must come from the
        // trust anchor that entry adds.
        let mut anchors = self.anchors();
        if self.entries.is_empty() {
            let Change::AddMember { service_type: ServiceType::TrustAnchor, certificate, .. } = &p.change else {
                return Err(HistoryError::BadGenesis(format!("entry 1 is `{}`", p.change.describe())));
            };
            anchors.push(decode_certificate(seq, certificate)?.0);
            self.check_operator(&anchors, &signer, at).map_err(|reason| HistoryError::BadGenesis(format!("the operator's {reason}")))?;
            self.operators.push((seq, signer.clone()));
        } else if &signer != self.operator() {
            return Err(HistoryError::WrongSigner {
                seq,
                reason: format!("it is signed by `{}`, the operator is `{}`", facts_subject(&signer), facts_subject(self.operator())),
            });
        }
        self.verify_signature(&entry, &signer, at, &anchors, now)?;
        self.apply(&entry, at, &anchors)?;
        self.entries.push(entry);
        self.times.push(at);
        Ok(())
    }

    /// The certificate in the entry's `x5c[0]`, when the entry carries a JWS at all.
    fn signer_of(&self, entry: &TrustEntry, _at: DateTime<Utc>) -> Result<CertificateDer<'static>, HistoryError> {
        let seq = entry.payload.seq;
        if entry.protected.is_empty() || entry.signature.is_empty() {
            return Err(HistoryError::Unsigned { seq, reason: "it has no protected header or no signature value".into() });
        }
        let header_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&entry.protected)
            .map_err(|e| HistoryError::Unsigned { seq, reason: format!("the protected header is not base64url: {e}") })?;
        let header: serde_json::Map<String, serde_json::Value> = crate::json_strict::from_slice(&header_bytes)
            .map_err(|e| HistoryError::Unsigned { seq, reason: format!("the protected header is not JSON: {e}") })?;
        if header.get("alg").and_then(|a| a.as_str()).is_none_or(|a| a == "none") {
            return Err(HistoryError::Unsigned { seq, reason: "the protected header names no signature algorithm".into() });
        }
        let first = header
            .get("x5c")
            .and_then(|x| x.as_array())
            .and_then(|a| a.first())
            .and_then(|c| c.as_str())
            .ok_or_else(|| HistoryError::WrongSigner { seq, reason: "the protected header has no `x5c` naming the signer's certificate".into() })?;
        let der = STANDARD.decode(first).map_err(|e| HistoryError::WrongSigner { seq, reason: format!("x5c[0] is not base64: {e}") })?;
        Ok(CertificateDer::from(der))
    }

    fn verify_signature(
        &self,
        entry: &TrustEntry,
        signer: &CertificateDer<'static>,
        at: DateTime<Utc>,
        anchors: &[CertificateDer<'static>],
        now: DateTime<Utc>,
    ) -> Result<(), HistoryError> {
        let seq = entry.payload.seq;
        let trust = TrustList::from_anchors(anchors).map_err(|reason| HistoryError::WrongSigner { seq, reason })?;
        let policy = ValidationPolicy {
            eku: EkuRule::RequiredIfPresent(OID_TSL_SIGNING_DER.to_vec()),
            require_key_usage: true,
            revocation: RevocationRule::IfAvailable,
        };
        let verifier = crate::signing::SignatureVerifier::new(CertificateValidator::new(trust, CrlSet::empty(), policy));
        let jws = serde_json::json!({"protected": entry.protected, "signature": entry.signature}).to_string();
        let opts = crate::signing::VerifyOptions { trusted_time: Some(at), now: now.max(at), required_level: None };
        let report = verifier.verify(jws.as_bytes(), &TrustEntry::signed_bytes(&entry.payload), &opts);
        if report.passed() {
            return Ok(());
        }
        let sub = report.sub_indication.map(|s| s.as_str()).unwrap_or("");
        let reason = format!("{sub}: {}", report.detail);
        if report.signer.as_ref().is_some_and(|s| s.subject != facts_subject(signer)) {
            return Err(HistoryError::WrongSigner { seq, reason });
        }
        Err(HistoryError::BadSignature { seq, reason })
    }

    fn apply(&mut self, entry: &TrustEntry, at: DateTime<Utc>, anchors: &[CertificateDer<'static>]) -> Result<(), HistoryError> {
        let seq = entry.payload.seq;
        let member_index =
            |members: &[Member], id: &str| members.iter().position(|m| m.id == id).ok_or_else(|| HistoryError::UnknownMember { seq, member: id.to_string() });
        match &entry.payload.change {
            Change::AddMember { member, service_type, name, certificate } => {
                if !member_id_is_well_formed(member) {
                    return Err(HistoryError::BadChange { seq, reason: format!("member id {member:?} must be 1 to 64 lower-case letters, digits or `-`") });
                }
                if name.zh.trim().is_empty() || name.pt.trim().is_empty() {
                    return Err(HistoryError::BadChange { seq, reason: "the member's name needs a Chinese and a Portuguese text".into() });
                }
                let (der, facts) = decode_certificate(seq, certificate)?;
                if self.members.iter().any(|m| &m.id == member) {
                    return Err(HistoryError::DuplicateMember { seq, member: member.clone(), why: String::new() });
                }
                if let Some(m) = self.members.iter().find(|m| m.certificate == der) {
                    return Err(HistoryError::DuplicateMember { seq, member: member.clone(), why: format!(": its certificate is member {:?}'s", m.id) });
                }
                if matches!(service_type, ServiceType::TrustAnchor | ServiceType::CertificationEntity) && !facts.is_ca {
                    return Err(HistoryError::BadChange {
                        seq,
                        reason: format!("a {} must be a CA certificate; `{}` is not", service_type.as_str(), facts.subject),
                    });
                }
                if *service_type == ServiceType::TrustAnchor {
                    let mut with = anchors.to_vec();
                    with.push(der.clone());
                    TrustList::from_anchors(&with).map_err(|reason| HistoryError::BadChange { seq, reason })?;
                }
                self.members.push(Member {
                    id: member.clone(),
                    service_type: *service_type,
                    name: name.clone(),
                    certificate: der,
                    facts,
                    added_at: at,
                    statuses: Vec::new(),
                    policies: Vec::new(),
                    qscd: Vec::new(),
                });
            }
            Change::Status { member, status, level } => {
                let i = member_index(&self.members, member)?;
                let m = &mut self.members[i];
                if m.service_type == ServiceType::TrustAnchor {
                    return Err(HistoryError::BadChange { seq, reason: format!("{member} is a trust anchor: anchors have no accreditation status") });
                }
                match (status, level, m.service_type) {
                    (MemberStatus::Granted, Some(SignatureLevel::Simple), _) => {
                        return Err(HistoryError::BadChange { seq, reason: "an accreditation level is advanced or qualified".into() });
                    }
                    (MemberStatus::Granted, Some(_), ServiceType::TimeStamping | ServiceType::ServiceSeal) => {
                        return Err(HistoryError::BadChange {
                            seq,
                            reason: format!("{member} is a {}: only a certification entity is accredited at a level", m.service_type.as_str()),
                        });
                    }
                    (MemberStatus::Granted, None, ServiceType::CertificationEntity) => {
                        return Err(HistoryError::BadChange {
                            seq,
                            reason: format!("granting {member}, a certification entity, needs the `level` (advanced or qualified) it is accredited at"),
                        });
                    }
                    (MemberStatus::Suspended | MemberStatus::Withdrawn, Some(_), _) => {
                        return Err(HistoryError::BadChange { seq, reason: "a level is given only with `granted`".into() });
                    }
                    _ => {}
                }
                if m.statuses.last().is_some_and(|(_, s, l)| s == status && l == level) {
                    return Err(HistoryError::BadChange { seq, reason: format!("{member} is already {}", status.as_str()) });
                }
                if m.statuses.last().is_some_and(|(_, s, _)| *s == MemberStatus::Withdrawn) {
                    return Err(HistoryError::BadChange {
                        seq,
                        reason: format!("{member} was withdrawn: a withdrawn member is never granted again (add it anew under another id)"),
                    });
                }
                m.statuses.push((at, *status, *level));
            }
            Change::PolicyAdded { member, oid } | Change::PolicyRemoved { member, oid } => {
                let on = matches!(entry.payload.change, Change::PolicyAdded { .. });
                if !oid_is_well_formed(oid) {
                    return Err(HistoryError::BadChange { seq, reason: format!("{oid:?} is not a dotted OID") });
                }
                let i = member_index(&self.members, member)?;
                let m = &mut self.members[i];
                if m.service_type != ServiceType::CertificationEntity {
                    return Err(HistoryError::BadChange {
                        seq,
                        reason: format!("{member} is a {}: qualified policies belong to certification entities", m.service_type.as_str()),
                    });
                }
                if m.qualified_policy_at(oid, at) == on {
                    return Err(HistoryError::BadChange {
                        seq,
                        reason: format!("policy {oid} is already {} for {member}", if on { "in force" } else { "not in force" }),
                    });
                }
                m.policies.push((at, oid.clone(), on));
            }
            Change::Qscd { member, qscd } => {
                let on = *qscd == QscdStatement::AllIssued;
                let i = member_index(&self.members, member)?;
                let m = &mut self.members[i];
                if m.service_type != ServiceType::CertificationEntity {
                    return Err(HistoryError::BadChange {
                        seq,
                        reason: format!("{member} is a {}: only a certification entity states where its keys are", m.service_type.as_str()),
                    });
                }
                if m.qscd_at(at) == on {
                    return Err(HistoryError::BadChange { seq, reason: format!("{member} already states {}", if on { "all-issued" } else { "none" }) });
                }
                m.qscd.push((at, on));
            }
            Change::Operator { certificate } => {
                let (der, _) = decode_certificate(seq, certificate)?;
                self.check_operator(anchors, &der, at).map_err(|reason| HistoryError::BadChange { seq, reason: format!("the new operator: {reason}") })?;
                self.operators.push((seq + 1, der));
            }
        }
        Ok(())
    }
}

fn facts_subject(der: &CertificateDer<'_>) -> String {
    CertFacts::from_der(der).map(|f| f.subject).unwrap_or_else(|_| "an unreadable certificate".into())
}

/// Signs a change as the next entry of `history` (or as the first entry when `history` is
/// `None`), effective at `at`, with the operator's signer.
pub fn sign_entry(history: Option<&TrustHistory>, signer: &crate::signing::Signer, at: DateTime<Utc>, change: Change) -> Result<TrustEntry, String> {
    let payload = EntryPayload {
        seq: history.map(TrustHistory::next_seq).unwrap_or(1),
        at: utc_text(at),
        prev: history.map(TrustHistory::next_prev).unwrap_or_else(|| GENESIS_PREV.to_string()),
        change,
    };
    let jws = signer.sign(&TrustEntry::signed_bytes(&payload), at).map_err(|e| e.to_string())?;
    Ok(TrustEntry { payload, protected: jws.protected, signature: jws.signature })
}

/// Base64 (standard, padded) of a certificate, as entries carry it.
pub fn certificate_text(der: &CertificateDer<'_>) -> String {
    STANDARD.encode(der.as_ref())
}

/// The history of an older (version 1) list, as entries signed by `signer`: each entity added
/// at `since`, each accreditation period a `granted` (qualified) and, where it ends, a
/// `withdrawn`; each qualified policy added at `since`; then the extra members (service seal,
/// time-stamping authorities), granted at `since`. The entries come out in time order.
pub fn convert_v1(
    file: &super::trust::TrustListFile,
    certificates: &[CertificateDer<'static>],
    extra: &[(String, ServiceType, LocalizedName, CertificateDer<'static>)],
    signer: &crate::signing::Signer,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<TrustHistory, HistoryError> {
    let mut changes: Vec<(DateTime<Utc>, usize, Change)> = Vec::new();
    let mut order = 0usize;
    let mut add = |t: DateTime<Utc>, c: Change, changes: &mut Vec<(DateTime<Utc>, usize, Change)>| {
        order += 1;
        changes.push((t, order, c));
    };
    // The anchors first: the first entry must add the anchor the operator comes from.
    let mut entities: Vec<(usize, &super::trust::EntityEntry)> = file.entities.iter().enumerate().collect();
    entities.sort_by_key(|(_, e)| !e.trust_anchor);
    for (i, e) in entities {
        let service_type = match e.service_type {
            Some(t) => t,
            None if e.trust_anchor => ServiceType::TrustAnchor,
            None => ServiceType::CertificationEntity,
        };
        let cert = certificates.get(i).ok_or_else(|| HistoryError::NotADocument(format!("no certificate for entity {:?}", e.id)))?;
        add(since, Change::AddMember { member: e.id.clone(), service_type, name: e.name.clone(), certificate: certificate_text(cert) }, &mut changes);
        if matches!(service_type, ServiceType::TimeStamping | ServiceType::ServiceSeal) {
            // A TSA or seal of the older list was in service from the start.
            add(since, Change::Status { member: e.id.clone(), status: MemberStatus::Granted, level: None }, &mut changes);
        }
        for oid in &e.qualified_policy_oids {
            add(since, Change::PolicyAdded { member: e.id.clone(), oid: oid.clone() }, &mut changes);
        }
        for (k, p) in e.accredited.iter().enumerate() {
            add(
                p.from.max(since),
                Change::Status { member: e.id.clone(), status: MemberStatus::Granted, level: Some(SignatureLevel::Qualified) },
                &mut changes,
            );
            if let Some(until) = p.until {
                // A period followed by another was a suspension; the last one's end, a withdrawal.
                let status = if k + 1 < e.accredited.len() { MemberStatus::Suspended } else { MemberStatus::Withdrawn };
                add(until, Change::Status { member: e.id.clone(), status, level: None }, &mut changes);
            }
        }
    }
    for (id, service_type, name, cert) in extra {
        add(
            since,
            Change::AddMember { member: id.clone(), service_type: *service_type, name: name.clone(), certificate: certificate_text(cert) },
            &mut changes,
        );
        add(since, Change::Status { member: id.clone(), status: MemberStatus::Granted, level: None }, &mut changes);
    }
    changes.sort_by_key(|(t, o, _)| (*t, *o));
    let mut history: Option<TrustHistory> = None;
    for (t, _, change) in changes {
        let entry = sign_entry(history.as_ref(), signer, t, change).map_err(HistoryError::NotADocument)?;
        history = Some(match history {
            None => TrustHistory::verify(
                TrustListDocument { format: FORMAT.into(), version: VERSION, name: file.name.clone().unwrap_or_default(), entries: vec![entry] },
                now,
            )?,
            Some(h) => h.appended(entry, now)?,
        });
    }
    history.ok_or_else(|| HistoryError::BadGenesis("the older list has no entities".into()))
}
