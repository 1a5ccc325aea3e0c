//! What a person, or another system, may see of a case: the one place that decides it.
//!
//! A form names its restricted fields and the roles that may read each (`layout.restricted`,
//! e.g. a diagnosis for the personnel section only). Every channel that lets case data out
//! (API answers, pages, diffs, evidence bundles, webhook messages, exports) asks this module
//! instead of filtering on its own, so a new channel cannot forget a field and two channels
//! cannot disagree.
//!
//! The record itself holds restricted values only as salted commitments with their
//! disclosures beside them (`forms::commitment`); this module decides which disclosures a reader
//! gets. A reader without the role sees `{"restricted": true}` on pages and in answers, and
//! the bare commitment in a record that must still verify (an evidence bundle).
//!
//! The subject of a case and its submitter read it as `applicant` besides their own roles.
//! This module is pure: roles come in, redacted values go out.

use crate::chain::DISCLOSURES_MEMBER;
use crate::forms::FormDefinition;
use crate::forms::commitment;
use crate::workflow::{Case, Change};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The role a case's subject and submitter hold on it, besides their own.
pub const APPLICANT_ROLE: &str = "applicant";

/// Who is looking: a person and the roles the directory gives them.
#[derive(Debug, Clone)]
pub struct Viewer<'a> {
    pub person: &'a str,
    pub roles: &'a BTreeSet<String>,
}

/// What one viewer may read of one case: the restricted fields hidden from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sight {
    hidden: BTreeSet<String>,
}

/// The marker a hidden value is shown as.
pub fn restricted_marker() -> Value {
    json!({"restricted": true})
}

/// Whether a value is the marker of a hidden field.
pub fn is_restricted_marker(v: &Value) -> bool {
    v.get("restricted") == Some(&Value::Bool(true)) && v.as_object().is_some_and(|o| o.len() == 1)
}

impl Sight {
    /// The sight of `viewer` on a case of `form`.
    pub fn of(form: &FormDefinition, case: &Case, viewer: &Viewer) -> Sight {
        let applicant = case.subject == viewer.person || case.submitter == viewer.person;
        Sight::for_roles(form, viewer.roles, applicant)
    }

    /// The restricted fields of `form` that none of `roles` (plus `applicant` when said) may read.
    pub fn for_roles(form: &FormDefinition, roles: &BTreeSet<String>, applicant: bool) -> Sight {
        let may = |r: &String| roles.contains(r) || (applicant && r == APPLICANT_ROLE);
        let hidden = form.layout.restricted.iter().filter(|(_, allowed)| !allowed.iter().any(may)).map(|(f, _)| f.clone()).collect();
        Sight { hidden }
    }

    /// A reader of everything (the service itself, and readers the form names for every field).
    pub fn everything() -> Sight {
        Sight::default()
    }

    /// A reader of nothing restricted: every restricted field of `form` hidden.
    pub fn nothing_restricted(form: &FormDefinition) -> Sight {
        Sight { hidden: form.layout.restricted.keys().cloned().collect() }
    }

    pub fn hides(&self, field: &str) -> bool {
        self.hidden.contains(field)
    }

    pub fn hidden(&self) -> &BTreeSet<String> {
        &self.hidden
    }

    /// The data as this reader may see it: each hidden field that holds a value becomes the
    /// marker (a commitment too: its digest is of no use to a reader).
    pub fn data(&self, data: &Value) -> Value {
        let Some(o) = data.as_object() else { return data.clone() };
        if !self.hidden.iter().any(|f| o.get(f).is_some_and(|v| !v.is_null())) {
            return data.clone();
        }
        let mut o = o.clone();
        for f in &self.hidden {
            if let Some(v) = o.get_mut(f).filter(|v| !v.is_null()) {
                *v = restricted_marker();
            }
        }
        Value::Object(o)
    }

    /// New data from this reader (a correction) with every field hidden from them kept as it
    /// was in `old`: a field you may not read you cannot change or remove either.
    pub fn keep_hidden(&self, new: &Value, old: &Value) -> Value {
        let (Some(n), Some(o)) = (new.as_object(), old.as_object()) else { return new.clone() };
        if self.hidden.is_empty() {
            return new.clone();
        }
        let mut out = n.clone();
        for f in &self.hidden {
            match o.get(f) {
                Some(v) => out.insert(f.clone(), v.clone()),
                None => out.remove(f),
            };
        }
        Value::Object(out)
    }

    /// The case as this reader may see it, to serialize into an answer: the case itself when
    /// nothing hidden from them holds a value (no copy, no `Value` tree), else a copy with
    /// `data` as `Sight::data` gives it. The same JSON as `case_json`.
    pub fn case_for<'a>(&self, case: &'a Case) -> std::borrow::Cow<'a, Case> {
        let hides_a_value = case.data.as_object().is_some_and(|o| self.hidden.iter().any(|f| o.get(f).is_some_and(|v| !v.is_null())));
        if !hides_a_value {
            return std::borrow::Cow::Borrowed(case);
        }
        let mut seen = case.clone();
        seen.data = self.data(&case.data);
        std::borrow::Cow::Owned(seen)
    }

    /// The case as JSON for this reader.
    pub fn case_json(&self, case: &Case) -> Value {
        let mut v = serde_json::to_value(case).unwrap_or_default();
        if let Some(data) = v.get_mut("data") {
            *data = self.data(data);
        }
        v
    }

    /// The changes of a resubmission for this reader: a hidden field's change says only that
    /// it changed.
    pub fn changes(&self, changes: &[Change]) -> Vec<Change> {
        let hide = |v: &Value| if v.is_null() { Value::Null } else { restricted_marker() };
        changes
            .iter()
            .map(|c| match self.field_of(&c.pointer) {
                Some(_) => Change { pointer: c.pointer.clone(), before: hide(&c.before), after: hide(&c.after) },
                None => c.clone(),
            })
            .collect()
    }

    fn field_of(&self, pointer: &str) -> Option<&String> {
        let top = pointer.strip_prefix('/')?.split('/').next()?;
        self.hidden.get(top)
    }

    /// A stored event body as this reader may receive it in a record that must still verify:
    /// the disclosures of hidden fields dropped, the commitments kept. `Err(field)` when the
    /// event holds a hidden field's value in the open (recorded before commitments existed), so
    /// no verifiable record without it can be made.
    pub fn event_body(&self, body: &Value) -> Result<Value, String> {
        if self.hidden.is_empty() {
            return Ok(body.clone());
        }
        for field in &self.hidden {
            let open = |data: Option<&Value>| data.and_then(|d| d.get(field)).is_some_and(|v| !v.is_null() && commitment::commitment_digest(v).is_none());
            let in_changes = body.get("changes").and_then(Value::as_array).is_some_and(|cs| {
                cs.iter().any(|c| {
                    self.field_of(c.get("pointer").and_then(Value::as_str).unwrap_or("")) == Some(field)
                        && [c.get("before"), c.get("after")]
                            .into_iter()
                            .any(|v| v.is_some_and(|v| !v.is_null() && commitment::commitment_digest(v).is_none() && !is_restricted_marker(v)))
                })
            });
            if open(body.get("data")) || in_changes {
                return Err(field.clone());
            }
        }
        let Some(disclosures) = body.get(DISCLOSURES_MEMBER).and_then(Value::as_object) else { return Ok(body.clone()) };
        let mut out = body.as_object().cloned().unwrap_or_default();
        let kept: serde_json::Map<String, Value> = disclosures.iter().filter(|(f, _)| !self.hidden.contains(*f)).map(|(f, d)| (f.clone(), d.clone())).collect();
        if kept.is_empty() {
            out.remove(DISCLOSURES_MEMBER);
        } else {
            out.insert(DISCLOSURES_MEMBER.into(), Value::Object(kept));
        }
        Ok(Value::Object(out))
    }
}

/// The changes of a resubmission with each restricted field's commitments opened from the
/// disclosures of the versions before and after (`Sight::changes` then hides what a reader
/// may not see). A commitment with no matching disclosure stays as it is.
pub fn open_changes(changes: &[Change], before: &commitment::Disclosures, after: &commitment::Disclosures) -> Vec<Change> {
    let open = |v: &Value, pointer: &str, d: &commitment::Disclosures| -> Value {
        let (Some(digest), Some(field)) = (commitment::commitment_digest(v), pointer.strip_prefix('/')) else { return v.clone() };
        match d.get(field) {
            Some(x) if commitment::digest(&x.salt, field, &x.value) == digest => x.value.clone(),
            _ => v.clone(),
        }
    };
    changes
        .iter()
        .map(|c| Change { pointer: c.pointer.clone(), before: open(&c.before, &c.pointer, before), after: open(&c.after, &c.pointer, after) })
        .collect()
}

/// A message for another system (a webhook receiver, an export): the restricted values it
/// carries as disclosures are opened only for the fields in `reveal` (an endpoint's
/// `restricted_fields`); every other one stays a bare commitment, and no salt leaves.
pub fn message_for(payload: &Value, reveal: &BTreeSet<String>) -> Value {
    let Some(o) = payload.as_object() else { return payload.clone() };
    let Some(disclosures) = o.get(DISCLOSURES_MEMBER) else { return payload.clone() };
    let mut out = o.clone();
    out.remove(DISCLOSURES_MEMBER);
    let disclosures: commitment::Disclosures = serde_json::from_value(disclosures.clone()).unwrap_or_default();
    if let Some(data) = out.get_mut("data").and_then(Value::as_object_mut) {
        for (field, d) in disclosures.iter().filter(|(f, _)| reveal.contains(*f)) {
            // Only a value that opens its own commitment is sent.
            if data.get(field).and_then(commitment::commitment_digest) == Some(commitment::digest(&d.salt, field, &d.value).as_str()) {
                data.insert(field.clone(), d.value.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::commitment::commit;

    fn sight(hidden: &[&str]) -> Sight {
        Sight { hidden: hidden.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn a_hidden_field_is_shown_as_the_marker_and_others_as_they_are() {
        let d = sight(&["diagnosis_code"]).data(&json!({"diagnosis_code": "J06.9", "n": 1, "other": null}));
        assert_eq!(d, json!({"diagnosis_code": {"restricted": true}, "n": 1, "other": null}));
    }

    #[test]
    fn a_correction_cannot_change_or_drop_a_field_its_author_may_not_read() {
        let s = sight(&["diagnosis_code"]);
        let old = json!({"diagnosis_code": "J06.9", "n": 1});
        assert_eq!(s.keep_hidden(&json!({"n": 2}), &old), json!({"diagnosis_code": "J06.9", "n": 2}));
        assert_eq!(s.keep_hidden(&json!({"n": 2, "diagnosis_code": "A00"}), &old), json!({"diagnosis_code": "J06.9", "n": 2}));
        assert_eq!(s.keep_hidden(&json!({"n": 2, "diagnosis_code": "A00"}), &json!({"n": 1})), json!({"n": 2}));
    }

    #[test]
    fn a_changed_hidden_field_says_only_that_it_changed() {
        let c = sight(&["diagnosis_code"]).changes(&[
            Change { pointer: "/diagnosis_code".into(), before: json!("J06.9"), after: json!("A00") },
            Change { pointer: "/days".into(), before: json!(1), after: json!(2) },
        ]);
        assert_eq!(c[0].before, restricted_marker());
        assert_eq!(c[0].after, restricted_marker());
        assert_eq!(c[1].after, json!(2));
        assert!(!serde_json::to_string(&c).unwrap().contains("J06.9"));
    }

    #[test]
    fn a_record_for_a_reader_without_the_role_keeps_the_commitment_and_drops_the_value() {
        let (data, d) = commit(&json!({"diagnosis_code": "J06.9", "n": 1}), ["diagnosis_code"], |_| "AAAAAAAAAAAAAAAAAAAAAA".into());
        let body = json!({"type": "submitted", "data": data, "disclosures": d});
        let redacted = sight(&["diagnosis_code"]).event_body(&body).unwrap();
        assert!(!redacted.to_string().contains("J06.9"));
        assert_eq!(redacted["data"], body["data"]);
        assert_eq!(crate::chain::chained_body(&redacted), crate::chain::chained_body(&body));
    }

    #[test]
    fn an_event_with_a_hidden_value_in_the_open_cannot_be_redacted() {
        let body = json!({"type": "submitted", "data": {"diagnosis_code": "J06.9"}});
        assert_eq!(sight(&["diagnosis_code"]).event_body(&body), Err("diagnosis_code".to_string()));
        assert!(Sight::everything().event_body(&body).is_ok());
    }

    #[test]
    fn a_message_opens_only_the_fields_its_receiver_is_configured_for() {
        let (data, d) = commit(&json!({"diagnosis_code": "J06.9", "n": 1}), ["diagnosis_code"], |_| "AAAAAAAAAAAAAAAAAAAAAA".into());
        let payload = json!({"kind": "x", "data": data, "disclosures": d});
        let closed = message_for(&payload, &BTreeSet::new());
        assert!(!closed.to_string().contains("J06.9") && !closed.to_string().contains("AAAAAAAA"));
        let open = message_for(&payload, &["diagnosis_code".to_string()].into());
        assert_eq!(open["data"]["diagnosis_code"], "J06.9");
        assert!(open.get("disclosures").is_none());
    }
}
