//! The signing payload: exactly what a person signs when they act on a case.
//!
//! A signature is made over RFC 8785 (JSON Canonicalization Scheme) bytes of
//! `{case, form {id, version, hash}, step, action, data_hash, previous_event_hash, signer,
//! time}`. JCS makes the bytes reproducible by any verifier in any language (an auditor with
//! Python or Java gets the same bytes). Binding the case, the step and the previous event hash
//! makes a signature useless anywhere else; binding `data_hash` (SHA-256 of the canonical form
//! data) makes any later change of the data detectable without storing the data in the
//! signature.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::SigningError;
use crate::pki::cert::hex;

/// The form definition a case is pinned to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormRef {
    pub id: String,
    pub version: String,
    /// Content hash of the form definition (as computed by the forms module).
    pub hash: String,
}

/// What a signer signs. Field names are the JSON keys; see `docs/signatures.md`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningPayload {
    pub case: String,
    pub form: FormRef,
    pub step: String,
    /// sign / approve / reject / return / submit ...
    pub action: String,
    /// `sha256:` + lowercase hex SHA-256 of the JCS form data (see [`data_hash`]).
    pub data_hash: String,
    /// Hash of the case's previous event (`sha256:` + hex), or of the genesis for the first.
    pub previous_event_hash: String,
    /// Person id of the signer (the directory's id, e.g. `p015`).
    pub signer: String,
    /// When the signer signed, UTC, RFC 3339 with seconds.
    #[serde(with = "rfc3339_seconds")]
    pub time: DateTime<Utc>,
}

impl SigningPayload {
    /// The members of a payload's JSON, each required: a verifier refuses any other.
    pub const MEMBERS: [&'static str; 8] = ["case", "form", "step", "action", "data_hash", "previous_event_hash", "signer", "time"];
}

impl SigningPayload {
    /// The RFC 8785 canonical bytes: the JWS payload.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, SigningError> {
        // Strings, a number-free `FormRef` and a time: no float, so the fast writer applies.
        crate::jcs::to_vec_of(self).map_err(|e| SigningError::Canonicalization { reason: e.to_string() })
    }

    /// Parse a payload from JSON (any formatting; it is re-canonicalised before signing).
    pub fn from_json(bytes: &[u8]) -> Result<SigningPayload, SigningError> {
        crate::json_strict::from_slice(bytes).map_err(|e| SigningError::BadPayload { reason: e.to_string() })
    }
}

/// `sha256:` + hex SHA-256 of the RFC 8785 canonical form of `data`.
pub fn data_hash(data: &serde_json::Value) -> Result<String, SigningError> {
    // A `Value` always canonicalizes (finite numbers, string names).
    Ok(format!("sha256:{}", hex(&crate::jcs::sha256(data))))
}

mod rfc3339_seconds {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_signed_over_the_bytes_the_reference_canonicalizer_writes() {
        let p = SigningPayload {
            case: "c-\u{1f600}\"1\"".into(),
            form: FormRef { id: "absence-and-annual-leave".into(), version: "2".into(), hash: "sha256:ab".into() },
            step: "supervisor".into(),
            action: "approve".into(),
            data_hash: "sha256:00".into(),
            previous_event_hash: "sha256:11".into(),
            signer: "p003".into(),
            time: DateTime::parse_from_rfc3339("2026-12-04T10:11:12Z").unwrap().with_timezone(&Utc),
        };
        assert_eq!(p.canonical_bytes().unwrap(), serde_json_canonicalizer::to_vec(&p).unwrap());
    }
}
