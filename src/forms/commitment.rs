//! Salted commitments to restricted fields (the SD-JWT idea, RFC 9901 "selective disclosure").
//!
//! A restricted field (a diagnosis) must be provable years later by those who may read it, and
//! give nothing away to everyone else who handles the record: a colleague, an auditor, a
//! webhook receiver. A plain hash does not do that: a diagnosis code has a few thousand possible
//! values, so SHA-256 of the data is reversed by trying them all. So the signed data holds, in
//! place of each restricted value, a **commitment** `{"_sd": "sha256:<hex>"}`, the SHA-256 of
//! the RFC 8785 canonical JSON of `[salt, field name, value]`, with a salt of 128 random bits
//! per field and data version. The value and its salt travel beside it as a **disclosure**
//! `{"salt", "value"}`; whoever holds the disclosure checks it against the commitment, whoever
//! lacks it learns nothing from the digest. A redacted record drops the disclosure and keeps the
//! commitment, so every signature and hash over the data still verifies.
//!
//! Salts come from the caller (the service derives them with a keyed MAC, see
//! `cases::CommitmentKey`); this module only computes and checks, with no randomness of its own.
//! Canonical JSON is serde_json_canonicalizer's (RFC 8785), as everywhere else in carimbo.

use crate::pki::cert::hex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The member a commitment object holds; a commitment is exactly `{"_sd": "sha256:…"}`.
pub const COMMITMENT_MEMBER: &str = "_sd";

/// A restricted field's value and the salt it was committed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disclosure {
    /// 128 bits, base64url without padding.
    pub salt: String,
    pub value: Value,
}

/// The disclosures of one version of a case's data, by field name.
pub type Disclosures = BTreeMap<String, Disclosure>;

/// Why a disclosure does not open its commitment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitmentError {
    #[error("the disclosed value of field {field:?} does not match the commitment the signed data holds: it was changed after signing [CARIMBO-E0916]")]
    Mismatch { field: String },
    #[error("a disclosure names field {field:?}, but the signed data holds no commitment there [CARIMBO-E0916]")]
    NotCommitted { field: String },
    #[error("the salt of field {field:?} is not 128 bits of base64url [CARIMBO-E0916]")]
    BadSalt { field: String },
}

/// `sha256:` + hex SHA-256 of the canonical `[salt, field, value]`.
pub fn digest(salt: &str, field: &str, value: &Value) -> String {
    let array = json!([salt, field, value]);
    format!("sha256:{}", hex(&crate::jcs::sha256(&array)))
}

/// The commitment object for a value.
pub fn commitment(salt: &str, field: &str, value: &Value) -> Value {
    json!({ COMMITMENT_MEMBER: digest(salt, field, value) })
}

/// The digest inside a commitment object, if `v` is one.
pub fn commitment_digest(v: &Value) -> Option<&str> {
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    o.get(COMMITMENT_MEMBER)?.as_str().filter(|d| d.starts_with("sha256:"))
}

/// Whether a salt is what `commit` expects: 22 base64url characters (128 bits).
pub fn salt_is_well_formed(salt: &str) -> bool {
    salt.len() == 22 && salt.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Replaces each restricted field present in `data` (an object, not null) by its commitment,
/// taking its salt from `salt_of`. Returns the committed data and the disclosures.
pub fn commit<'a>(data: &Value, restricted: impl IntoIterator<Item = &'a str>, salt_of: impl Fn(&str) -> String) -> (Value, Disclosures) {
    let mut disclosures = Disclosures::new();
    let Value::Object(fields) = data else { return (data.clone(), disclosures) };
    let mut committed: Map<String, Value> = fields.clone();
    for field in restricted {
        let Some(value) = fields.get(field).filter(|v| !v.is_null()) else { continue };
        let salt = salt_of(field);
        committed.insert(field.to_string(), commitment(&salt, field, value));
        disclosures.insert(field.to_string(), Disclosure { salt, value: value.clone() });
    }
    (Value::Object(committed), disclosures)
}

/// Opens every disclosure into the committed data, checking each against its commitment. Fields
/// without a disclosure stay commitments (a redacted record).
pub fn reveal(committed: &Value, disclosures: &Disclosures) -> Result<Value, CommitmentError> {
    if disclosures.is_empty() {
        return Ok(committed.clone());
    }
    let mut data = committed.as_object().cloned().unwrap_or_default();
    for (field, d) in disclosures {
        if !salt_is_well_formed(&d.salt) {
            return Err(CommitmentError::BadSalt { field: field.clone() });
        }
        let Some(expected) = data.get(field).and_then(commitment_digest) else {
            return Err(CommitmentError::NotCommitted { field: field.clone() });
        };
        if digest(&d.salt, field, &d.value) != expected {
            return Err(CommitmentError::Mismatch { field: field.clone() });
        }
        data.insert(field.clone(), d.value.clone());
    }
    Ok(Value::Object(data))
}

/// The committed form of revealed data: each disclosed field back to its commitment.
pub fn recommit(data: &Value, disclosures: &Disclosures) -> Value {
    if disclosures.is_empty() {
        return data.clone();
    }
    let mut out = data.as_object().cloned().unwrap_or_default();
    for (field, d) in disclosures {
        out.insert(field.clone(), commitment(&d.salt, field, &d.value));
    }
    Value::Object(out)
}

/// The fields of `data` that are commitments with no value beside them (withheld).
pub fn withheld(data: &Value) -> Vec<String> {
    data.as_object().map(|o| o.iter().filter(|(_, v)| commitment_digest(v).is_some()).map(|(k, _)| k.clone()).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &str = "AAAAAAAAAAAAAAAAAAAAAA";
    const SALT2: &str = "BBBBBBBBBBBBBBBBBBBBBB";

    #[test]
    fn a_committed_field_is_replaced_and_opens_again_with_its_disclosure() {
        let data = json!({"name": "Chan", "diagnosis_code": "J06.9"});
        let (committed, d) = commit(&data, ["diagnosis_code"], |_| SALT.into());
        assert_eq!(committed["name"], "Chan");
        assert!(commitment_digest(&committed["diagnosis_code"]).is_some());
        assert!(!committed.to_string().contains("J06.9"));
        assert_eq!(reveal(&committed, &d).unwrap(), data);
        assert_eq!(recommit(&data, &d), committed);
    }

    #[test]
    fn the_digest_depends_on_the_salt_so_guessing_values_gives_nothing_without_it() {
        let v = json!("J06.9");
        assert_ne!(digest(SALT, "diagnosis_code", &v), digest(SALT2, "diagnosis_code", &v));
        assert_ne!(digest(SALT, "diagnosis_code", &v), digest(SALT, "other", &v));
    }

    #[test]
    fn a_changed_disclosed_value_is_refused() {
        let (committed, mut d) = commit(&json!({"diagnosis_code": "J06.9"}), ["diagnosis_code"], |_| SALT.into());
        d.get_mut("diagnosis_code").unwrap().value = json!("A00");
        assert_eq!(reveal(&committed, &d), Err(CommitmentError::Mismatch { field: "diagnosis_code".into() }));
    }

    #[test]
    fn a_disclosure_for_a_field_that_was_not_committed_is_refused() {
        let d: Disclosures = [("name".to_string(), Disclosure { salt: SALT.into(), value: json!("x") })].into();
        assert_eq!(reveal(&json!({"name": "Chan"}), &d), Err(CommitmentError::NotCommitted { field: "name".into() }));
    }

    #[test]
    fn absent_and_null_restricted_fields_are_not_committed() {
        let (committed, d) = commit(&json!({"a": null}), ["a", "b"], |_| SALT.into());
        assert_eq!(committed, json!({"a": null}));
        assert!(d.is_empty());
    }

    #[test]
    fn a_redacted_record_keeps_the_commitment_and_names_it_withheld() {
        let (committed, _) = commit(&json!({"diagnosis_code": "J06.9", "n": 1}), ["diagnosis_code"], |_| SALT.into());
        assert_eq!(reveal(&committed, &Disclosures::new()).unwrap(), committed);
        assert_eq!(withheld(&committed), vec!["diagnosis_code".to_string()]);
    }
}
