//! Which time-stamp authorities carimbo trusts: the one place that answers it.
//!
//! A TSA is trusted when the trust list names its certificate as a member (matched by the
//! certificate's public key) of type `time_stamping`, granted at the token's `genTime` (in a
//! list of the older format: an entry whose accreditation periods cover it).
//! The path to a trust anchor, the EKU and the revocation status are checked before this by
//! `signing::timestamp`; this only says whether the list recognises the authority at that time.

use chrono::{DateTime, Utc};

use super::cert::CertFacts;
use super::history::ServiceType;
use super::trust::TrustList;

/// The id of the trust-list entry that recognises TSA certificate `tsa` at `at`, or why none does.
pub fn accepted_tsa(trust: &TrustList, tsa: &CertFacts, at: DateTime<Utc>) -> Result<String, String> {
    let Some(entity) = trust.entity_by_spki(&tsa.spki) else {
        return Err(format!("the TSA `{}` is not on the trust list", tsa.subject));
    };
    if entity.facts.sha256 != tsa.sha256 {
        return Err(format!("the trust list names another certificate for the key of TSA `{}`", tsa.subject));
    }
    let recognised = match &entity.member {
        Some(m) => m.service_type == ServiceType::TimeStamping && at >= m.added_at && m.granted_at(at),
        None => entity.entry.accredited.iter().any(|p| p.contains(at)),
    };
    if !recognised {
        return Err(format!("the TSA `{}` (trust-list entry `{}`) was not recognised at {}", tsa.subject, entity.entry.id, at.to_rfc3339()));
    }
    Ok(entity.entry.id.clone())
}
