//! The trust list: which certification entities carimbo trusts, and when each was accredited.
//!
//! Law 5/2005 gives a signature the force of a handwritten one only when its certificate is
//! qualified and was issued by an *accredited* certification entity. Accreditation is a
//! period, not a flag: an entity accredited in 2025 and withdrawn in 2030 still backs the
//! signatures made in 2027. The list is loaded from `seeds/trust/trust-list.json`: since
//! version 2 a signed history of changes (`pki::history`, format in `docs/signatures.md`),
//! folded here into each member's dated statuses and policies; trust anchors (roots) are what
//! the path validator builds to, accredited entities are what the `qualified` level is judged
//! against at the signing time. The version-1 file (entities with accreditation periods) is
//! still read by `carimbo trust convert`, which turns it into a history.

use chrono::{DateTime, Utc};
use rustls_pki_types::{CertificateDer, TrustAnchor};
use serde::{Deserialize, Serialize};

use super::PkiError;
use super::cert::{CertFacts, check_key_strength};
use super::history::{Member, ServiceType, TrustHistory};
use super::profile::{CertRole, violation};
use super::report::SignatureLevel;

/// A name in the administration's languages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalizedName {
    pub zh: String,
    pub pt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
}

/// A period in which an entity was accredited; `until: None` means "still accredited".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccreditationPeriod {
    pub from: DateTime<Utc>,
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

impl AccreditationPeriod {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.from && self.until.is_none_or(|u| t < u)
    }
}

/// One entry of `trust-list.json` as written on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EntityEntry {
    pub id: String,
    pub name: LocalizedName,
    /// PEM file of the entity's CA certificate, relative to the trust list's folder.
    pub certificate: String,
    /// A root the path validator may end at.
    #[serde(default)]
    pub trust_anchor: bool,
    /// Periods in which the entity was an accredited certification entity.
    #[serde(default)]
    pub accredited: Vec<AccreditationPeriod>,
    /// Certificate policy OIDs that mark a certificate from this entity as qualified.
    #[serde(default)]
    pub qualified_policy_oids: Vec<String>,
    /// What the entity is, when it is not a CA (`time_stamping`, `service_seal`): read only by
    /// `carimbo trust convert`, which makes it a granted member of that type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<ServiceType>,
}

/// The file `trust-list.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrustListFile {
    pub version: u32,
    #[serde(default)]
    pub name: Option<String>,
    pub entities: Vec<EntityEntry>,
}

/// A certification entity with its certificate loaded.
#[derive(Clone, Debug)]
pub struct CertificationEntity {
    pub entry: EntityEntry,
    pub certificate: CertificateDer<'static>,
    pub facts: CertFacts,
    /// What the entity is and its dated history, when the list is a history (version 2).
    pub member: Option<Member>,
}

impl CertificationEntity {
    /// Whether the entity was accredited for qualified certificates at `t`.
    pub fn accredited_at(&self, t: DateTime<Utc>) -> bool {
        match &self.member {
            Some(m) => t >= m.added_at && m.accredited_level_at(t) == Some(SignatureLevel::Qualified),
            None => self.entry.accredited.iter().any(|p| p.contains(t)),
        }
    }

    /// Whether `oid` marked this entity's certificates as qualified at `t`.
    pub fn qualified_policy_at(&self, oid: &str, t: DateTime<Utc>) -> bool {
        match &self.member {
            Some(m) => m.qualified_policy_at(oid, t),
            None => self.entry.qualified_policy_oids.iter().any(|p| p == oid),
        }
    }

    /// Whether the trust list says at `t` that every certificate of this entity is for a key on
    /// a qualified signature-creation device (the older list format says nothing of devices).
    pub fn qscd_at(&self, t: DateTime<Utc>) -> bool {
        self.member.as_ref().is_some_and(|m| m.qscd_at(t))
    }

    pub fn service_type(&self) -> ServiceType {
        match &self.member {
            Some(m) => m.service_type,
            None if self.entry.trust_anchor => ServiceType::TrustAnchor,
            None => ServiceType::CertificationEntity,
        }
    }
}

fn anchor_violation(der: &CertificateDer<'_>, facts: &CertFacts) -> Option<String> {
    violation(der, CertRole::Anchor).or_else(|| check_key_strength(&facts.key).err().map(|e| format!("trust anchor `{}`: {e}", facts.subject)))
}

/// The loaded trust list.
#[derive(Clone, Debug)]
pub struct TrustList {
    entities: Vec<CertificationEntity>,
    anchors: Vec<TrustAnchor<'static>>,
    /// What x509-parser reads from each anchor, in the order of `anchors`.
    anchor_facts: Vec<CertFacts>,
    /// Why an anchor may not end a path (RFC 5280 profile, key strength), in the same order.
    anchor_violations: Vec<Option<String>>,
}

pub const TRUST_LIST_FILE: &str = "trust-list.json";

impl TrustList {
    /// The list of a signed history (version 2, the bytes of `trust-list.json`; `origin` names
    /// it in errors), verified at `now`.
    pub fn from_bytes(bytes: &[u8], origin: &str, now: DateTime<Utc>) -> Result<TrustList, PkiError> {
        let history = TrustList::history_from_bytes(bytes, origin, now)?;
        TrustList::from_history(&history).map_err(|reason| PkiError::BadTrustList { path: origin.to_string(), reason })
    }

    /// The signed history in `bytes` (`origin` names it in errors), verified at `now`.
    pub fn history_from_bytes(bytes: &[u8], origin: &str, now: DateTime<Utc>) -> Result<TrustHistory, PkiError> {
        TrustHistory::from_slice(bytes, now).map_err(|e| PkiError::BadTrustList { path: origin.to_string(), reason: e.to_string() })
    }

    /// An older list (version 1); the certificate files its entities name are the caller's to
    /// read (`entry.certificate`, beside the list).
    pub fn parse_v1(bytes: &[u8], origin: &str) -> Result<TrustListFile, PkiError> {
        crate::json_strict::from_slice(bytes).map_err(|e| PkiError::BadTrustList { path: origin.to_string(), reason: e.to_string() })
    }

    /// The list of a verified history: every member with its dated statuses and policies;
    /// trust anchors are the history's `trust_anchor` members.
    pub fn from_history(history: &TrustHistory) -> Result<TrustList, String> {
        let mut list = TrustList::from_entities(
            history
                .members()
                .iter()
                .map(|m| {
                    let entry = EntityEntry {
                        id: m.id.clone(),
                        name: m.name.clone(),
                        certificate: format!("{}.pem", m.id),
                        trust_anchor: m.service_type == ServiceType::TrustAnchor,
                        accredited: m
                            .periods()
                            .into_iter()
                            .filter(|(_, _, l)| *l == SignatureLevel::Qualified)
                            .map(|(from, until, _)| AccreditationPeriod { from, until })
                            .collect(),
                        qualified_policy_oids: Vec::new(),
                        service_type: Some(m.service_type),
                    };
                    (entry, m.certificate.clone())
                })
                .collect(),
        )?;
        for e in &mut list.entities {
            e.member = history.member(&e.entry.id).cloned();
        }
        Ok(list)
    }

    /// Build a trust list from entries and their certificates (used by `load` and tests).
    pub fn from_entities(entries: Vec<(EntityEntry, CertificateDer<'static>)>) -> Result<TrustList, String> {
        let mut entities = Vec::new();
        let mut anchors = Vec::new();
        let mut anchor_facts = Vec::new();
        let mut anchor_violations = Vec::new();
        for (entry, certificate) in entries {
            let facts = CertFacts::from_der(&certificate).map_err(|e| format!("entity `{}`: {e}", entry.id))?;
            if entry.trust_anchor {
                let anchor =
                    webpki::anchor_from_trusted_cert(&certificate).map_err(|e| format!("entity `{}` is not a usable trust anchor: {e}", entry.id))?.to_owned();
                anchors.push(anchor);
                anchor_violations.push(anchor_violation(&certificate, &facts));
                anchor_facts.push(facts.clone());
            }
            if entities.iter().any(|e: &CertificationEntity| e.entry.id == entry.id) {
                return Err(format!("entity id `{}` appears twice", entry.id));
            }
            entities.push(CertificationEntity { entry, certificate, facts, member: None });
        }
        if anchors.is_empty() {
            return Err("the trust list has no trust anchor (`trust_anchor: true`)".into());
        }
        Ok(TrustList { entities, anchors, anchor_facts, anchor_violations })
    }

    /// Trust anchors given directly, with no entity metadata (used by the x509-limbo runner).
    pub fn from_anchors(roots: &[CertificateDer<'_>]) -> Result<TrustList, String> {
        let mut anchors = Vec::new();
        let mut anchor_facts = Vec::new();
        let mut anchor_violations = Vec::new();
        for root in roots {
            let anchor = webpki::anchor_from_trusted_cert(root).map_err(|e| format!("not a usable trust anchor: {e}"))?.to_owned();
            let facts = CertFacts::from_der(root)?;
            anchors.push(anchor);
            anchor_violations.push(anchor_violation(root, &facts));
            anchor_facts.push(facts);
        }
        Ok(TrustList { entities: Vec::new(), anchors, anchor_facts, anchor_violations })
    }

    pub fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    fn anchor_index(&self, anchor: &TrustAnchor<'_>) -> Option<usize> {
        self.anchors.iter().position(|a| a.subject_public_key_info == anchor.subject_public_key_info && a.subject == anchor.subject)
    }

    /// The facts of the anchor webpki ended a path at.
    pub fn anchor_facts(&self, anchor: &TrustAnchor<'_>) -> Option<&CertFacts> {
        self.anchor_index(anchor).map(|i| &self.anchor_facts[i])
    }

    /// Why this anchor may not end a path, if it may not.
    pub fn anchor_violation(&self, anchor: &TrustAnchor<'_>) -> Option<&str> {
        self.anchor_index(anchor).and_then(|i| self.anchor_violations[i].as_deref())
    }

    pub fn entities(&self) -> &[CertificationEntity] {
        &self.entities
    }

    /// The service-seal member whose certificate is exactly `der`, in service at `t`.
    pub fn service_seal_at(&self, der: &[u8], t: DateTime<Utc>) -> Option<&CertificationEntity> {
        self.entities.iter().find(|e| {
            e.certificate.as_ref() == der && e.member.as_ref().is_some_and(|m| m.service_type == ServiceType::ServiceSeal && m.added_at <= t && m.granted_at(t))
        })
    }

    /// The entity whose certificate carries this SubjectPublicKeyInfo.
    pub fn entity_by_spki(&self, spki: &[u8]) -> Option<&CertificationEntity> {
        self.entities.iter().find(|e| e.facts.spki == spki)
    }
}
