//! The staff directory: people, departments, groups, the supervisor tree and delegations.
//!
//! Workflows name assignees relative to the applicant ("their supervisor", "the head of their
//! department") or by group ("hr"); this module answers those questions, and which facts about
//! an applicant a form's rules may read (leave balance, grade band …). It is loaded from
//! `seeds/directory/directory.json` and checked as a whole: a directory with a dangling
//! supervisor, a cycle in the tree or a delegation to nobody is refused with every problem listed.

pub mod delegation_log;

use crate::i18n::LocalizedText;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub id: String,
    pub name: LocalizedText,
    /// Person roles: staff, supervisor, head, hr, authority, doctor, candidate, author, auditor, admin.
    pub roles: Vec<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub supervisor: Option<String>,
    #[serde(default)]
    pub grade: Option<String>,
    #[serde(default)]
    pub grade_band: Option<String>,
    #[serde(default = "yes")]
    pub resident: bool,
    #[serde(default)]
    pub years_of_service: Option<u32>,
    #[serde(default)]
    pub annual_leave_balance: Option<f64>,
    #[serde(default)]
    pub special_leave_entitlement: Option<f64>,
    /// Where notifications go (`notify`); a person without one is listed for administrators.
    #[serde(default)]
    pub email: Option<String>,
    /// The language notifications are written in (zh when not given: Macau's first official language).
    #[serde(default)]
    pub lang: Option<crate::i18n::Lang>,
    #[serde(default)]
    pub institution: Option<LocalizedText>,
    #[serde(default)]
    pub licence: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    pub id: String,
    pub name: LocalizedText,
    pub head: String,
    /// Per-department values workflow conditions read as `context.department.<name>`
    /// (e.g. `head_threshold_days`: leave longer than this also goes to the head).
    #[serde(default)]
    pub settings: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub id: String,
    pub name: LocalizedText,
    pub members: Vec<String>,
}

/// `delegate` acts for `principal` from `from` to `to` (inclusive), for the listed forms or all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Delegation {
    pub id: String,
    pub delegate: String,
    pub principal: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[serde(default)]
    pub forms: Option<Vec<String>>,
    /// Why, in zh, pt and en: `{"zh": "…", "pt": "…", "en": "…"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub reason: Option<LocalizedText>,
}

impl Delegation {
    pub fn covers(&self, form_id: &str, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to && self.forms.as_ref().is_none_or(|f| f.iter().any(|x| x == form_id))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    kind: String,
    departments: Vec<Department>,
    groups: Vec<Group>,
    people: Vec<Person>,
    #[serde(default)]
    delegations: Vec<Delegation>,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot read the directory {path}: {reason} [CARIMBO-E0201]")]
    Unreadable { path: String, reason: String },
    #[error("the directory is not valid: {reason} [CARIMBO-E0202]")]
    Malformed { reason: String },
    #[error("the directory has {} problems [CARIMBO-E0203]:\n{}", .0.len(), .0.join("\n"))]
    Inconsistent(Vec<String>),
    #[error("no person {0:?} in the directory [CARIMBO-E0204]")]
    UnknownPerson(String),
}

impl DirectoryError {
    /// The stable code (docs/errors.md), as typed data.
    pub fn code(&self) -> &'static str {
        match self {
            DirectoryError::Unreadable { .. } => "CARIMBO-E0201",
            DirectoryError::Malformed { .. } => "CARIMBO-E0202",
            DirectoryError::Inconsistent(_) => "CARIMBO-E0203",
            DirectoryError::UnknownPerson(_) => "CARIMBO-E0204",
        }
    }

    /// The HTTP status a client gets for it: a person the request names who is not in the
    /// directory is the caller's mistake; a directory that cannot be read is the server's.
    pub fn status(&self) -> u16 {
        match self {
            DirectoryError::UnknownPerson(_) => 422,
            DirectoryError::Unreadable { .. } | DirectoryError::Malformed { .. } | DirectoryError::Inconsistent(_) => 500,
        }
    }
}

/// The loaded, consistent directory.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    people: BTreeMap<String, Person>,
    departments: BTreeMap<String, Department>,
    groups: BTreeMap<String, Group>,
    delegations: Vec<Delegation>,
}

impl Directory {
    pub fn load(path: &Path) -> Result<Directory, DirectoryError> {
        let bytes = std::fs::read(path).map_err(|e| DirectoryError::Unreadable { path: path.display().to_string(), reason: e.to_string() })?;
        Directory::from_json(&bytes)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Directory, DirectoryError> {
        let file: DirectoryFile = crate::json_strict::from_slice(bytes).map_err(|e| DirectoryError::Malformed { reason: e.to_string() })?;
        if file.kind != "directory" {
            return Err(DirectoryError::Malformed { reason: format!("\"kind\" must be \"directory\", found {:?}", file.kind) });
        }
        let mut problems = Vec::new();
        let mut dir = Directory::default();
        for p in file.people {
            let id = p.id.clone();
            if dir.people.insert(id.clone(), p).is_some() {
                problems.push(format!("person {id:?} is listed twice"));
            }
        }
        for d in file.departments {
            let id = d.id.clone();
            if dir.departments.insert(id.clone(), d).is_some() {
                problems.push(format!("department {id:?} is listed twice"));
            }
        }
        for g in file.groups {
            let id = g.id.clone();
            if dir.groups.insert(id.clone(), g).is_some() {
                problems.push(format!("group {id:?} is listed twice"));
            }
        }
        dir.delegations = file.delegations;
        dir.check(&mut problems);
        if problems.is_empty() { Ok(dir) } else { Err(DirectoryError::Inconsistent(problems)) }
    }

    fn check(&self, problems: &mut Vec<String>) {
        for p in self.people.values() {
            if let Some(s) = &p.supervisor
                && !self.people.contains_key(s)
            {
                problems.push(format!("{}: supervisor {s:?} is not in the directory", p.id));
            }
            if let Some(d) = &p.department
                && !self.departments.contains_key(d)
            {
                problems.push(format!("{}: department {d:?} does not exist", p.id));
            }
            // Walk up the tree; a chain longer than the directory is a cycle.
            let mut seen = BTreeSet::new();
            let mut cur = p.supervisor.clone();
            while let Some(s) = cur {
                if !seen.insert(s.clone()) || s == p.id {
                    problems.push(format!("{}: the supervisor chain loops back through {s:?}", p.id));
                    break;
                }
                cur = self.people.get(&s).and_then(|x| x.supervisor.clone());
            }
        }
        for d in self.departments.values() {
            if !self.people.contains_key(&d.head) {
                problems.push(format!("department {}: head {:?} is not in the directory", d.id, d.head));
            }
        }
        for g in self.groups.values() {
            for m in &g.members {
                if !self.people.contains_key(m) {
                    problems.push(format!("group {}: member {m:?} is not in the directory", g.id));
                }
            }
        }
        let mut ids = BTreeSet::new();
        for d in &self.delegations {
            if !ids.insert(&d.id) {
                problems.push(format!("delegation {} is listed twice", d.id));
            }
            for who in [&d.delegate, &d.principal] {
                if !self.people.contains_key(who) {
                    problems.push(format!("delegation {}: {who:?} is not in the directory", d.id));
                }
            }
            if d.delegate == d.principal {
                problems.push(format!("delegation {}: a person cannot delegate to themselves", d.id));
            }
            if d.to < d.from {
                problems.push(format!("delegation {}: ends ({}) before it starts ({})", d.id, d.to, d.from));
            }
        }
    }

    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people.get(id)
    }

    pub fn people(&self) -> impl Iterator<Item = &Person> {
        self.people.values()
    }

    pub fn department(&self, id: &str) -> Option<&Department> {
        self.departments.get(id)
    }

    pub fn departments(&self) -> impl Iterator<Item = &Department> {
        self.departments.values()
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    pub fn delegations(&self) -> &[Delegation] {
        &self.delegations
    }

    pub fn has_role(&self, person: &str, role: &str) -> bool {
        self.people.get(person).is_some_and(|p| p.roles.iter().any(|r| r == role))
            || self.groups.get(role).is_some_and(|g| g.members.iter().any(|m| m == person))
    }

    pub fn supervisor_of(&self, person: &str) -> Option<&str> {
        self.people.get(person)?.supervisor.as_deref()
    }

    /// The head of the person's department; for the head themselves, their own supervisor.
    pub fn head_of(&self, person: &str) -> Option<&str> {
        let dept = self.departments.get(self.people.get(person)?.department.as_deref()?)?;
        if dept.head == person { self.supervisor_of(person) } else { Some(&dept.head) }
    }

    /// Delegations under which someone may act for `principal` on `form_id` on `day`.
    pub fn delegates_for(&self, principal: &str, form_id: &str, day: NaiveDate) -> impl Iterator<Item = &Delegation> {
        self.delegations.iter().filter(move |d| d.principal == principal && d.covers(form_id, day))
    }

    /// Adds or replaces a delegation after checking it; the directory is unchanged on error.
    pub fn add_delegation(&mut self, d: Delegation) -> Result<(), DirectoryError> {
        let mut next = self.clone();
        next.delegations.retain(|x| x.id != d.id);
        next.delegations.push(d);
        let mut problems = Vec::new();
        next.check(&mut problems);
        if !problems.is_empty() {
            return Err(DirectoryError::Inconsistent(problems));
        }
        *self = next;
        Ok(())
    }

    /// Removes a delegation; whether there was one by that id.
    pub fn end_delegation(&mut self, id: &str) -> bool {
        let before = self.delegations.len();
        self.delegations.retain(|d| d.id != id);
        self.delegations.len() != before
    }

    /// Facts a form's rules read as `context.applicant.*` (the names `forms::APPLICANT_FACTS` lists).
    pub fn applicant_facts(&self, person: &str) -> Result<Map<String, Value>, DirectoryError> {
        let p = self.people.get(person).ok_or_else(|| DirectoryError::UnknownPerson(person.to_string()))?;
        let mut m = Map::new();
        m.insert("id".into(), Value::from(p.id.clone()));
        m.insert("name".into(), localized(&p.name));
        m.insert("resident".into(), Value::from(p.resident));
        if let Some(d) = p.department.as_deref().and_then(|d| self.departments.get(d)) {
            m.insert("department_name".into(), localized(&d.name));
        }
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        };
        put("department", p.department.clone().map(Value::from));
        put("grade", p.grade.clone().map(Value::from));
        put("grade_band", p.grade_band.clone().map(Value::from));
        put("years_of_service", p.years_of_service.map(Value::from));
        put("annual_leave_balance", p.annual_leave_balance.map(Value::from));
        put("special_leave_entitlement", p.special_leave_entitlement.map(Value::from));
        Ok(m)
    }

    /// Settings of the person's department, read by workflow conditions as `context.department.*`.
    pub fn department_settings(&self, person: &str) -> Map<String, Value> {
        self.people.get(person).and_then(|p| p.department.as_deref()).and_then(|d| self.departments.get(d)).map(|d| d.settings.clone()).unwrap_or_default()
    }
}

fn localized(t: &LocalizedText) -> Value {
    serde_json::json!({"zh": t.zh, "pt": t.pt, "en": t.en})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Directory {
        Directory::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/directory/directory.json")).unwrap()
    }

    #[test]
    fn the_demo_directory_has_three_departments_and_forty_people() {
        let d = demo();
        assert!(d.departments().count() >= 3);
        assert!(d.people().count() >= 40);
        assert!(d.people().any(|p| !p.resident), "a non-resident staff member");
        assert_eq!(d.people().filter(|p| p.roles.iter().any(|r| r == "doctor")).count(), 2);
        assert!(d.people().any(|p| p.roles.iter().any(|r| r == "candidate")));
    }

    #[test]
    fn supervisors_and_heads_form_a_tree() {
        let d = demo();
        assert_eq!(d.supervisor_of("p005"), Some("p003"));
        assert_eq!(d.head_of("p005"), Some("p002"));
        // The head's own "head" is the authority above them.
        assert_eq!(d.head_of("p002"), Some("p001"));
    }

    #[test]
    fn a_delegation_covers_only_its_dates_and_forms() {
        let d = demo();
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(d.delegates_for("p003", "absence-and-annual-leave", day("2026-11-20")).count(), 1);
        assert_eq!(d.delegates_for("p003", "absence-and-annual-leave", day("2026-12-01")).count(), 0);
        assert_eq!(d.delegates_for("p003", "family-allowance", day("2026-11-20")).count(), 0);
        assert_eq!(d.delegates_for("p015", "family-allowance", day("2026-12-31")).count(), 1);
    }

    #[test]
    fn an_inconsistent_directory_is_refused_with_every_problem() {
        let bad = br#"{"kind": "directory",
            "departments": [{"id": "D", "name": {"zh": "d", "pt": "d", "en": "d"}, "head": "ghost"}],
            "groups": [],
            "people": [
              {"id": "a", "name": {"zh": "a", "pt": "a", "en": "a"}, "roles": ["staff"], "department": "D", "supervisor": "b"},
              {"id": "b", "name": {"zh": "b", "pt": "b", "en": "b"}, "roles": ["staff"], "department": "D", "supervisor": "a"}],
            "delegations": [{"id": "x", "delegate": "a", "principal": "a", "from": "2026-02-01", "to": "2026-01-01"}]}"#;
        let err = Directory::from_json(bad).unwrap_err().to_string();
        for needle in ["head \"ghost\"", "loops back", "cannot delegate to themselves", "ends (2026-01-01) before it starts"] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn a_bad_delegation_added_later_leaves_the_directory_unchanged() {
        let mut d = demo();
        let before = d.delegations().len();
        let bad = Delegation {
            id: "z".into(),
            delegate: "nobody".into(),
            principal: "p003".into(),
            from: NaiveDate::MIN,
            to: NaiveDate::MAX,
            forms: None,
            reason: None,
        };
        assert!(d.add_delegation(bad).is_err());
        assert_eq!(d.delegations().len(), before);
    }
}
