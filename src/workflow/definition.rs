//! Workflow definitions: who acts after submission, in what order, with which signature.
//!
//! `docs/workflow-definitions.md` is the author's guide. `WorkflowDefinition::parse` checks a
//! definition against its form (conditions and field assignees must name the form's fields, a
//! condition's `settings.*` the form's settings) and, when given, the directory (groups must
//! exist), and refuses cycles and unreachable steps. The form is read as a `FormOutline`, so a
//! workflow is checked as far as its form could be read even while the form has problems.
//! A deadline in working days carries its holiday calendar, so the engine counts it from data.

use crate::directory::Directory;
use crate::forms::HolidayCalendar;
use crate::forms::definition::{FieldIndex, FormDefinition};
use crate::forms::logic;
use crate::forms::parse::{self, check_keys};
use crate::forms::problem::{ErrorCode, Problem};
use crate::forms::problem::{Problems, codes, pointer_push};
use crate::forms::problem_detail::{Detail, Subject, WordsId};
use crate::i18n::LocalizedText;
use datalogic_rs::Logic;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Signature levels in the style of Law 5/2005, weakest first (defined with the validation
/// report, which is where a signature's level is established).
pub use crate::pki::report::SignatureLevel as Level;

/// What a person can do on an open step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Sign,
    Approve,
    Reject,
    Return,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Sign => "sign",
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Return => "return",
        }
    }

    /// Sign and approve move a step towards done; reject and return end or suspend the case.
    pub fn is_positive(self) -> bool {
        matches!(self, Action::Sign | Action::Approve)
    }
}

impl FromStr for Action {
    type Err = Detail;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sign" => Ok(Action::Sign),
            "approve" => Ok(Action::Approve),
            "reject" => Ok(Action::Reject),
            "return" => Ok(Action::Return),
            other => Err(Detail::UnknownAction { found: other.to_string() }),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a seat is offered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    /// The subject of the form (the submitter unless the workflow names a subject field).
    Applicant,
    /// The subject's supervisor.
    Supervisor,
    /// The head of the subject's department.
    Head,
    /// Any one member of a directory group.
    Group(String),
    /// The person(s) named in a data field (`doctor_id`, `witnesses.*.staff_id`).
    Field(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompleteWhen {
    All,
    Any,
    Quorum(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfApproval {
    Skip,
    Reassign,
}

/// Who is party to a case besides its submitter, and what happens to a seat only a party could
/// take (`docs/workflow-definitions.md`, "Conflict of interest").
///
/// The subject is always a party; `parties` adds the people named in fields of the form (the
/// witnesses of an accident). A party never sits on a deciding step of the case, except on
/// the seat that is theirs: the seat whose assignee is the very declaration that names them
/// (`{"role": "applicant"}` for the subject, the party's own field for a party).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictOfInterest {
    /// Field paths of the form naming parties (`witnesses.*.staff_id`), besides the subject.
    pub parties: Vec<String>,
    /// What happens to a seat whose only people are parties; the workflow's `self_approval`
    /// unless `on_conflict` says otherwise.
    pub on_conflict: SelfApproval,
    /// Whether the workflow declares the block itself, i.e. was written under the rule: the
    /// offline verifier holds only such records to it (older records were made before it).
    pub declared: bool,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub assignee: Assignee,
}

#[derive(Debug, Clone)]
pub enum Seats {
    /// One assignee (which may resolve to several seats for a multi-valued field).
    Single(Assignee),
    /// A parallel group: one seat per member.
    Members(Vec<Member>),
}

#[derive(Debug, Clone)]
pub struct Deadline {
    /// Days from the step's opening to the deadline, in `count`'s days.
    pub days: u32,
    /// Days (in `count`'s days) to the reminder.
    pub remind_after_days: Option<u32>,
    /// Who is added to the open seats when the deadline passes; `None` for a reminder only
    /// (a personal signature, such as a party's to a contract, cannot be taken over).
    pub escalate_to: Option<Assignee>,
    /// Whether the days are calendar days or working days of a holiday calendar.
    pub count: DayCount,
}

/// How the days of a deadline are counted.
#[derive(Debug, Clone)]
pub enum DayCount {
    /// Every day (`"days": N`): N × 24 hours after the step opened.
    Calendar,
    /// Working days of this calendar (`"working_days": N`): the Nth working day after the day
    /// the step opened (in Macau), at the same time of day.
    Working(Arc<HolidayCalendar>),
}

/// Macau's offset (UTC+8, no daylight saving): working days are Macau's days.
fn macau() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

impl Deadline {
    /// When the deadline passes for a step open since `since`.
    pub fn due(&self, since: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        self.count.after(since, self.days)
    }

    /// When the reminder is due, if there is one: `remind_after_days`, or the deadline itself
    /// for a deadline that escalates to nobody.
    pub fn remind_at(&self, since: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
        let days = self.remind_after_days.or(self.escalate_to.is_none().then_some(self.days))?;
        Some(self.count.after(since, days))
    }
}

impl DayCount {
    /// `days` of this count after `since`.
    pub fn after(&self, since: chrono::DateTime<chrono::Utc>, days: u32) -> chrono::DateTime<chrono::Utc> {
        match self {
            DayCount::Calendar => since + chrono::Duration::days(i64::from(days)),
            DayCount::Working(calendar) => {
                use chrono::TimeZone;
                let local = since.with_timezone(&macau());
                let mut day = local.date_naive();
                let mut left = days;
                // Bounded like `HolidayCalendar::working_days`: a calendar whose every day is a
                // holiday cannot make this spin; the deadline then falls ten years on.
                for _ in 0..3660 {
                    if left == 0 {
                        break;
                    }
                    let Some(next) = day.succ_opt() else { break };
                    day = next;
                    if calendar.is_working_day(day) {
                        left -= 1;
                    }
                }
                match macau().from_local_datetime(&day.and_time(local.time())).single() {
                    Some(t) => t.with_timezone(&chrono::Utc),
                    None => since + chrono::Duration::days(i64::from(days)),
                }
            }
        }
    }
}

/// What a workflow is checked against of its form, read from the form's file as far as it can
/// be read: a form with problems of its own still gives its id, its fields, its restricted
/// fields and its settings, so its workflow's own problems are reported at once with the form's.
#[derive(Debug, Default)]
pub struct FormOutline {
    pub id: String,
    /// The workflow the form names, if it names one.
    pub workflow: Option<String>,
    pub(crate) fields: FieldIndex,
    pub restricted: BTreeSet<String>,
    pub settings: Map<String, Value>,
    /// Whether the form itself loaded (it had no problem).
    pub loaded: bool,
}

impl FormOutline {
    /// Reads what can be read of a form definition; `None` without a string `id`.
    pub fn read(def: &Map<String, Value>) -> Option<FormOutline> {
        let id = def.get("id")?.as_str()?.to_string();
        let workflow = def.get("workflow").and_then(Value::as_str).map(str::to_string);
        let fields = FieldIndex::from_schema(def.get("schema").unwrap_or(&Value::Null));
        let restricted =
            def.get("layout").and_then(|l| l.get("restricted")).and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
        let settings = def.get("settings").and_then(Value::as_object).cloned().unwrap_or_default();
        Some(FormOutline { id, workflow, fields, restricted, settings, loaded: false })
    }

    /// The outline of a loaded form.
    pub fn of(form: &FormDefinition) -> FormOutline {
        FormOutline {
            id: form.id.clone(),
            workflow: Some(form.workflow.clone()),
            fields: form.fields.clone(),
            restricted: form.layout.restricted.keys().cloned().collect(),
            settings: form.settings.clone(),
            loaded: true,
        }
    }
}

/// Codes of the workflow checks this module adds (docs/errors.md).
pub mod check_codes {
    use crate::forms::problem::ErrorCode;
    /// A step is assigned to the applicant, who is the submitter: the seat is always dropped.
    pub const STEP_FOR_SUBMITTER: ErrorCode = ErrorCode("CARIMBO-E0081");
    /// A condition reads a setting the form does not have.
    pub const UNKNOWN_SETTING: ErrorCode = ErrorCode("CARIMBO-E0082");
    /// A working-day deadline names no holiday calendar that is loaded (or several are, and it names none).
    pub const DEADLINE_CALENDAR: ErrorCode = ErrorCode("CARIMBO-E0083");
}

/// What a workflow check needs besides the workflow: its form's outline, the directory's groups,
/// the holiday calendars, and where to put warnings (said to the author, not refused).
pub struct CheckInputs<'a> {
    pub forms: &'a BTreeMap<String, FormOutline>,
    pub directory: Option<&'a Directory>,
    pub calendars: &'a BTreeMap<String, Arc<HolidayCalendar>>,
}

/// A warning about a workflow that still loads.
pub fn warning(file: &str, pointer: impl Into<String>, code: ErrorCode, detail: Detail) -> Problem {
    Problem::new(file, pointer, code, detail)
}

#[derive(Debug, Clone)]
pub struct StepDefinition {
    pub id: String,
    pub title: LocalizedText,
    pub after: Vec<String>,
    pub when: Option<Arc<Logic>>,
    pub seats: Seats,
    pub complete_when: CompleteWhen,
    pub actions: Vec<Action>,
    pub signature: Level,
    pub second_factor: bool,
    pub deadline: Option<Deadline>,
}

#[derive(Debug)]
pub struct WorkflowDefinition {
    pub id: String,
    pub version: String,
    pub content_hash: String,
    pub title: LocalizedText,
    pub form: String,
    pub submitted_by: Vec<String>,
    /// Field path naming the subject, when it is not the submitter.
    pub subject: Option<String>,
    pub submit_signature: Level,
    pub self_approval: SelfApproval,
    pub conflict_of_interest: ConflictOfInterest,
    pub steps: Vec<StepDefinition>,
    pub source: Value,
}

impl WorkflowDefinition {
    pub fn step(&self, id: &str) -> Option<&StepDefinition> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The conflict-of-interest rule of this workflow in words, step by step, as
    /// `carimbo check --explain` prints it.
    pub fn explain_conflicts(&self) -> Vec<String> {
        let mut parties = vec![match &self.subject {
            Some(f) => format!("the subject ({f})"),
            // The submitter is kept off every seat by `self_approval` already.
            None => "the subject (the submitter, see self_approval)".to_string(),
        }];
        parties.extend(self.conflict_of_interest.parties.iter().cloned());
        let policy = match self.conflict_of_interest.on_conflict {
            SelfApproval::Skip => "skipped",
            SelfApproval::Reassign => "reassigned up the supervisor tree",
        };
        let mut out = vec![format!("{}: parties {}; a seat only a party could take is {policy}", self.id, parties.join(", "))];
        for step in &self.steps {
            if !step.is_deciding() {
                out.push(format!("{}: step {}: decides nothing (return only): parties may sit", self.id, step.id));
                continue;
            }
            let own: Vec<String> = step
                .assignees()
                .filter(|a| self.own_seat_of(a).is_some())
                .map(|a| match a {
                    Assignee::Applicant => "{\"role\": \"applicant\"} (the subject's own)".to_string(),
                    Assignee::Field(f) => format!("{{\"field\": {f:?}}} (their own)"),
                    _ => String::new(),
                })
                .collect();
            if own.is_empty() {
                out.push(format!("{}: step {}: deciding; every party is kept off", self.id, step.id));
            } else {
                out.push(format!("{}: step {}: deciding; parties are kept off except on the seat of {}", self.id, step.id, own.join(", ")));
            }
        }
        out
    }

    /// What an assignee names a party by: `Some(None)` for the subject (`applicant`, or the
    /// subject's field), `Some(Some(field))` for a declared party field, `None` otherwise.
    pub fn own_seat_of(&self, a: &Assignee) -> Option<Option<&str>> {
        match a {
            Assignee::Applicant => Some(None),
            Assignee::Field(f) if self.subject.as_deref() == Some(f.as_str()) => Some(None),
            Assignee::Field(f) => self.conflict_of_interest.parties.iter().find(|p| *p == f).map(|p| Some(p.as_str())),
            _ => None,
        }
    }
}

impl StepDefinition {
    /// A step that offers approve, reject or sign decides about the case; one that only
    /// offers return decides nothing.
    pub fn is_deciding(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::Approve | Action::Reject | Action::Sign))
    }

    /// Every assignee the step names (one, or one per member of a parallel group).
    pub fn assignees(&self) -> impl Iterator<Item = &Assignee> {
        let (one, many) = match &self.seats {
            Seats::Single(a) => (Some(a), &[][..]),
            Seats::Members(ms) => (None, &ms[..]),
        };
        one.into_iter().chain(many.iter().map(|m| &m.assignee))
    }

    /// The assignee a recorded seat came from: the step's one assignee, or the member of that id.
    pub fn assignee_of_seat(&self, seat: &str) -> Option<&Assignee> {
        match &self.seats {
            Seats::Single(a) => Some(a),
            Seats::Members(ms) => ms.iter().find(|m| m.id == seat).map(|m| &m.assignee),
        }
    }
}

/// Relative roles an assignee may name.
pub const RELATIVE_ROLES: [&str; 3] = ["applicant", "supervisor", "head"];
/// Person roles a directory entry may carry, and so `submitted_by` may name.
pub const PERSON_ROLES: [&str; 10] = ["staff", "supervisor", "head", "hr", "authority", "doctor", "candidate", "author", "auditor", "admin"];

const WORKFLOW_KEYS: [&str; 12] =
    ["kind", "id", "version", "title", "form", "submitted_by", "subject", "submit_signature", "self_approval", "conflict_of_interest", "steps", "description"];
const STEP_KEYS: [&str; 12] =
    ["id", "title", "after", "when", "assignee", "members", "complete_when", "actions", "signature", "second_factor", "deadline", "description"];

impl WorkflowDefinition {
    /// Reads one workflow, checked against its form's outline (`inputs.forms`, by id), the
    /// directory's groups (if given) and the holiday calendars; warnings go to `warnings`.
    /// `None` when it has problems, or when its form did not load (the form's file says why).
    pub fn parse(
        def: &Map<String, Value>,
        file_stem: Option<&str>,
        content_hash: String,
        inputs: &CheckInputs,
        p: &mut Problems,
        warnings: &mut Vec<Problem>,
    ) -> Option<WorkflowDefinition> {
        let before = p.len();
        let (forms, directory) = (inputs.forms, inputs.directory);
        check_keys(def, "", &WORKFLOW_KEYS, &["id", "version", "title", "form", "submitted_by", "submit_signature", "steps"], p);
        let id = parse::string_key(def, "", "id", p).map(str::to_string);
        if let Some(id) = &id {
            if !parse::is_valid_id(id) {
                p.push("/id", codes::BAD_ID, Detail::IdMalformed { id: id.clone() });
            } else if file_stem.is_some_and(|s| s != id) {
                p.push("/id", codes::BAD_ID, Detail::IdNotFileName { id: id.clone(), stem: file_stem.unwrap_or("").to_string() });
            }
        }
        let version = parse::string_key(def, "", "version", p).map(str::to_string);
        if let Some(v) = &version
            && (v.split('.').count() != 3 || !v.split('.').all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
        {
            p.push("/version", codes::BAD_VALUE, Detail::VersionMalformed { version: v.clone() });
        }
        let title = def.get("title").and_then(|t| parse::localized(t, "/title", p));
        if let Some(d) = def.get("description") {
            parse::localized(d, "/description", p);
        }
        let form_id = parse::string_key(def, "", "form", p).map(str::to_string);
        let form = form_id.as_ref().and_then(|f| forms.get(f));
        if let (Some(fid), None) = (&form_id, form) {
            p.push("/form", codes::UNKNOWN_WORKFLOW, Detail::NoSuchForm { id: fid.clone() });
        }
        if let (Some(form), Some(id)) = (form, &id)
            && let Some(routed_by) = &form.workflow
            && routed_by != id
        {
            p.push("/form", codes::UNKNOWN_WORKFLOW, Detail::FormRoutedElsewhere { form: form.id.clone(), workflow: routed_by.clone() });
        }

        let groups: Option<BTreeSet<String>> = directory.map(|d| d.groups().map(|g| g.id.clone()).collect());
        let submitted_by = parse_submitted_by(def, groups.as_ref(), p);

        let subject = parse_subject(def, form, p);
        let submit_signature = level(def.get("submit_signature"), "/submit_signature", p);
        let self_approval = match def.get("self_approval").map(|v| v.as_str()) {
            None | Some(Some("skip")) => SelfApproval::Skip,
            Some(Some("reassign")) => SelfApproval::Reassign,
            _ => {
                p.push("/self_approval", codes::BAD_VALUE, Detail::SelfApprovalPolicy);
                SelfApproval::Skip
            }
        };

        let conflict_of_interest = conflict_of_interest(def.get("conflict_of_interest"), form, subject.as_deref(), self_approval, p);

        let ctx = StepContext { form, groups: groups.as_ref(), calendars: inputs.calendars };
        let steps = parse_steps(def, &ctx, p);

        warn_of_steps_for_the_submitter(def, subject.as_deref(), &steps, p, warnings);
        if p.len() > before || !form.is_some_and(|f| f.loaded) {
            return None;
        }
        Some(WorkflowDefinition {
            id: id?,
            version: version?,
            content_hash,
            title: title?,
            form: form_id?,
            submitted_by,
            subject,
            submit_signature: submit_signature?,
            self_approval,
            conflict_of_interest,
            steps,
            source: Value::Object(def.clone()),
        })
    }
}

/// `submitted_by`: person roles or groups of the directory, at least one.
fn parse_submitted_by(def: &Map<String, Value>, groups: Option<&BTreeSet<String>>, p: &mut Problems) -> Vec<String> {
    let submitted_by: Vec<String> = def
        .get("submitted_by")
        .and_then(|v| parse::array(v, "/submitted_by", Subject::key("submitted_by"), p))
        .map(|a| {
            a.iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let ptr = format!("/submitted_by/{i}");
                    let role = parse::string(r, &ptr, Subject::Role, p)?;
                    let known = PERSON_ROLES.contains(&role) || groups.is_some_and(|g| g.contains(role));
                    if !known {
                        p.push(ptr, codes::BAD_VALUE, Detail::UnknownPersonRole { role: role.to_string(), known: PERSON_ROLES.map(str::to_string).to_vec() });
                    }
                    Some(role.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    if def.get("submitted_by").and_then(Value::as_array).is_some_and(|a| a.is_empty()) {
        p.push("/submitted_by", codes::BAD_VALUE, Detail::NobodySubmits);
    }
    submitted_by
}

/// `subject`: the one field (not inside an array) naming whom the case is about.
fn parse_subject(def: &Map<String, Value>, form: Option<&FormOutline>, p: &mut Problems) -> Option<String> {
    match def.get("subject") {
        None => None,
        Some(v) => parse::object(v, "/subject", Subject::key("subject"), p).and_then(|m| {
            check_keys(m, "/subject", &["field"], &["field"], p);
            let f = parse::string_key(m, "/subject", "field", p)?;
            if let Some(form) = form
                && !form.fields.paths.contains(f)
            {
                p.push("/subject/field", codes::RULE_UNKNOWN_FIELD, Detail::FieldNotInForm { field: f.to_string(), form: form.id.clone() });
            }
            if f.contains('*') {
                p.push("/subject/field", codes::BAD_VALUE, Detail::SubjectInArray);
            }
            Some(f.to_string())
        }),
    }
}

/// `steps`: each read with `parse_step`, ids unique, then the graph checked once every step
/// could be read.
fn parse_steps(def: &Map<String, Value>, ctx: &StepContext<'_>, p: &mut Problems) -> Vec<StepDefinition> {
    let mut steps = Vec::new();
    let mut raw_whens: Vec<Option<Value>> = Vec::new();
    if let Some(list) = def.get("steps").and_then(|v| parse::array(v, "/steps", Subject::key("steps"), p)) {
        if list.is_empty() {
            p.push("/steps", codes::BAD_VALUE, Detail::NoSteps);
        }
        let mut ids = BTreeMap::new();
        for (i, s) in list.iter().enumerate() {
            let ptr = format!("/steps/{i}");
            let previous = list.get(i.wrapping_sub(1)).and_then(|s| s.get("id")).and_then(Value::as_str);
            if let Some(step) = parse_step(s, &ptr, previous, ctx, p) {
                if let Some(first) = ids.insert(step.id.clone(), i) {
                    p.push(format!("{ptr}/id"), codes::DUPLICATE_ID, Detail::StepIdTaken { id: step.id.clone(), first });
                }
                raw_whens.push(s.get("when").cloned());
                steps.push(step);
            }
        }
        // With a step unreadable, its id is unknown and every `after` naming it would be noise.
        if steps.len() == list.len() {
            check_graph(&steps, &raw_whens, list, p);
        }
    }
    steps
}

/// A warning for each step assigned to the applicant when the applicant is the submitter.
fn warn_of_steps_for_the_submitter(def: &Map<String, Value>, subject: Option<&str>, steps: &[StepDefinition], p: &Problems, warnings: &mut Vec<Problem>) {
    // The submitter never sits on a seat of their own case: without a subject field, the
    // applicant *is* the submitter, so such a seat is always dropped. The applicant's
    // signature is `submit_signature` (and `resubmit`), not a step.
    if subject.is_none() {
        for (i, step) in steps.iter().enumerate() {
            if step.assignees().any(|a| matches!(a, Assignee::Applicant)) {
                let ptr = raw_index(def, &step.id).map(|j| format!("/steps/{j}")).unwrap_or_else(|| format!("/steps/{i}"));
                warnings.push(warning(p.file(), ptr, check_codes::STEP_FOR_SUBMITTER, Detail::StepForSubmitter { step: step.id.clone() }));
            }
        }
    }
}

/// The index in `steps` of the step with this id.
fn raw_index(def: &Map<String, Value>, id: &str) -> Option<usize> {
    def.get("steps")?.as_array()?.iter().position(|s| s.get("id").and_then(Value::as_str) == Some(id))
}

/// Reads `"conflict_of_interest": {"parties": [{"field": …}, …], "on_conflict": "skip" | "reassign"}`.
fn conflict_of_interest(
    v: Option<&Value>,
    form: Option<&FormOutline>,
    subject: Option<&str>,
    self_approval: SelfApproval,
    p: &mut Problems,
) -> ConflictOfInterest {
    let mut rule = ConflictOfInterest { parties: Vec::new(), on_conflict: self_approval, declared: v.is_some() };
    let Some(v) = v else { return rule };
    let Some(m) = parse::object(v, "/conflict_of_interest", Subject::key("conflict_of_interest"), p) else { return rule };
    check_keys(m, "/conflict_of_interest", &["parties", "on_conflict", "description"], &["parties"], p);
    if let Some(d) = m.get("description") {
        parse::localized(d, "/conflict_of_interest/description", p);
    }
    match m.get("on_conflict").map(Value::as_str) {
        None => {}
        Some(Some("skip")) => rule.on_conflict = SelfApproval::Skip,
        Some(Some("reassign")) => rule.on_conflict = SelfApproval::Reassign,
        Some(_) => p.push("/conflict_of_interest/on_conflict", codes::COI_BAD_POLICY, Detail::CoiPolicy),
    }
    let Some(list) = m.get("parties").and_then(|l| parse::array(l, "/conflict_of_interest/parties", Subject::key("parties"), p)) else { return rule };
    for (i, party) in list.iter().enumerate() {
        let ptr = format!("/conflict_of_interest/parties/{i}");
        let Some(pm) = parse::object(party, &ptr, Subject::Party, p) else { continue };
        check_keys(pm, &ptr, &["field"], &["field"], p);
        let Some(f) = parse::string_key(pm, &ptr, "field", p) else { continue };
        let fptr = format!("{ptr}/field");
        if let Some(form) = form {
            if !form.fields.knows(f) {
                p.push(fptr, codes::COI_UNKNOWN_FIELD, Detail::PartyNotAField { field: f.to_string(), form: form.id.clone() });
                continue;
            }
            let prefix = format!("{f}.");
            if form.fields.paths.iter().chain(form.fields.items.iter()).any(|q| q.starts_with(&prefix)) {
                p.push(
                    fptr,
                    codes::COI_NOT_A_PERSON,
                    Detail::PartyIsGroup {
                        field: f.to_string(),
                        form: form.id.clone(),
                        example: form.fields.paths.iter().chain(form.fields.items.iter()).find(|q| q.starts_with(&prefix)).cloned().unwrap_or_default(),
                    },
                );
                continue;
            }
        }
        // A record for a reader without a restricted field's role holds only its commitment, so
        // whether the people on a seat were parties could not be checked from it.
        if let Some(top) = form.and_then(|form| f.split('.').next().filter(|t| form.restricted.contains(*t))) {
            p.push(fptr, codes::COI_RESTRICTED_PARTY, Detail::PartyRestricted { field: f.to_string(), top: top.to_string() });
        } else if subject == Some(f) {
            p.push(fptr, codes::COI_DUPLICATE_PARTY, Detail::PartyIsSubject { field: f.to_string() });
        } else if rule.parties.iter().any(|q| q == f) {
            p.push(fptr, codes::COI_DUPLICATE_PARTY, Detail::PartyTwice { field: f.to_string() });
        } else {
            rule.parties.push(f.to_string());
        }
    }
    rule
}

struct StepContext<'a> {
    form: Option<&'a FormOutline>,
    groups: Option<&'a BTreeSet<String>>,
    calendars: &'a BTreeMap<String, Arc<HolidayCalendar>>,
}

fn level(v: Option<&Value>, ptr: &str, p: &mut Problems) -> Option<Level> {
    let s = parse::string(v?, ptr, Subject::SignatureLevel, p)?;
    match s.parse() {
        Ok(l) => Some(l),
        Err(_) => {
            p.push(ptr, codes::BAD_VALUE, Detail::UnknownLevel { found: s.to_string() });
            None
        }
    }
}

fn assignee(v: &Value, ptr: &str, ctx: &StepContext, p: &mut Problems) -> Option<Assignee> {
    let m = parse::object(v, ptr, Subject::Assignee, p)?;
    if m.len() != 1 {
        p.push(ptr, codes::BAD_VALUE, Detail::AssigneeShape);
        return None;
    }
    let (k, val) = m.iter().next()?;
    let kptr = pointer_push(ptr, k);
    let name = parse::string(val, &kptr, Subject::key(k), p)?;
    match k.as_str() {
        "role" => match name {
            "applicant" => Some(Assignee::Applicant),
            "supervisor" => Some(Assignee::Supervisor),
            "head" => Some(Assignee::Head),
            other => {
                p.push(kptr, codes::BAD_VALUE, Detail::UnknownRelativeRole { role: other.to_string(), known: RELATIVE_ROLES.map(str::to_string).to_vec() });
                None
            }
        },
        "group" => {
            if let Some(groups) = ctx.groups {
                if !groups.contains(name) {
                    p.push(kptr, codes::BAD_VALUE, Detail::UnknownGroup { group: name.to_string(), known: groups.iter().cloned().collect() });
                }
            } else if !parse::is_valid_id(name) {
                p.push(kptr, codes::BAD_ID, Detail::WordsIdMalformed { of: WordsId::Group, id: name.to_string() });
            }
            Some(Assignee::Group(name.to_string()))
        }
        "field" => {
            if let Some(form) = ctx.form
                && !form.fields.knows(name)
            {
                p.push(kptr, codes::RULE_UNKNOWN_FIELD, Detail::FieldNotInForm { field: name.to_string(), form: form.id.clone() });
            }
            Some(Assignee::Field(name.to_string()))
        }
        other => {
            p.push(kptr, codes::UNKNOWN_KEY, Detail::UnknownAssigneeKind { kind: other.to_string() });
            None
        }
    }
}

fn parse_step(v: &Value, ptr: &str, previous: Option<&str>, ctx: &StepContext, p: &mut Problems) -> Option<StepDefinition> {
    let before = p.len();
    let m = parse::object(v, ptr, Subject::Step, p)?;
    check_keys(m, ptr, &STEP_KEYS, &["id", "title", "actions", "signature"], p);
    let id = parse::string_key(m, ptr, "id", p).map(str::to_string);
    if let Some(id) = &id
        && !parse::is_valid_id(id)
    {
        p.push(format!("{ptr}/id"), codes::BAD_ID, Detail::WordsIdMalformed { of: WordsId::Step, id: id.clone() });
    }
    let title = m.get("title").and_then(|t| parse::localized(t, &format!("{ptr}/title"), p));
    if let Some(d) = m.get("description") {
        parse::localized(d, &format!("{ptr}/description"), p);
    }
    let after = match m.get("after") {
        Some(v) => parse::array(v, &format!("{ptr}/after"), Subject::key("after"), p)
            .map(|a| a.iter().enumerate().filter_map(|(i, s)| parse::string(s, &format!("{ptr}/after/{i}"), Subject::StepId, p).map(str::to_string)).collect())
            .unwrap_or_default(),
        None => previous.map(|s| vec![s.to_string()]).unwrap_or_default(),
    };
    let when = m.get("when").and_then(|w| step_condition(w, ptr, ctx, p));
    let seats = step_seats(m, ptr, ctx, p)?;
    let complete_when = step_complete_when(m, ptr, seats.as_ref(), p);
    let actions = step_actions(m, ptr, p);
    let signature = level(m.get("signature"), &format!("{ptr}/signature"), p);
    let second_factor = step_second_factor(m, ptr, p);
    let deadline = m.get("deadline").and_then(|d| deadline(d, &format!("{ptr}/deadline"), ctx, p));
    if p.len() > before {
        return None;
    }
    Some(StepDefinition { id: id?, title: title?, after, when, seats: seats?, complete_when, actions, signature: signature?, second_factor, deadline })
}

/// A step's `when` condition: compiled, and reading only the form's fields, `context.*` and
/// the form's settings, never a restricted field.
fn step_condition(logic_value: &Value, ptr: &str, ctx: &StepContext, p: &mut Problems) -> Option<Arc<Logic>> {
    let wptr = format!("{ptr}/when");
    let scan = logic::scan(logic_value);
    for (fptr, fault) in &scan.faults {
        p.push(format!("{wptr}{fptr}"), codes::RULE_SYNTAX, fault.clone());
    }
    if let Some(form) = ctx.form {
        for (var, vptr) in scan.root_vars.iter().chain(scan.item_vars.iter()) {
            let mut segs = var.splitn(3, '.');
            match (segs.next(), segs.next()) {
                (Some("context"), _) => {}
                (Some("settings"), name) if !name.is_some_and(|n| form.settings.contains_key(n)) => {
                    let known = form.settings.keys().cloned().collect();
                    p.push(
                        format!("{wptr}{vptr}"),
                        check_codes::UNKNOWN_SETTING,
                        Detail::ConditionUnknownSetting { var: var.clone(), form: form.id.clone(), known },
                    );
                }
                (Some("settings"), _) => {}
                _ if !form.fields.knows(var) => {
                    p.push(format!("{wptr}{vptr}"), codes::RULE_UNKNOWN_FIELD, Detail::ConditionUnknownField { var: var.clone(), form: form.id.clone() })
                }
                _ => {}
            }
            // A record for a reader without a restricted field's role holds only its
            // commitment, so a route that turns on its value could not be replayed there.
            if let Some(top) = var.split('.').next().filter(|t| *t != "settings" && form.restricted.contains(*t)) {
                p.push(
                    format!("{wptr}{vptr}"),
                    codes::RULE_READS_RESTRICTED,
                    Detail::ConditionReadsRestricted { field: top.to_string(), form: form.id.clone() },
                );
            }
        }
    }
    match logic::compile(logic_value) {
        Ok(l) => Some(l),
        Err(e) => {
            p.push(wptr, codes::RULE_SYNTAX, Detail::ConditionUncompilable { error: e.to_string() });
            None
        }
    }
}

/// A step's seats: one `assignee`, or a parallel group of `members` (two or more, ids unique,
/// each one seat). `None` when `members` is not even a list: the step is not read further.
fn step_seats(m: &Map<String, Value>, ptr: &str, ctx: &StepContext, p: &mut Problems) -> Option<Option<Seats>> {
    match (m.get("assignee"), m.get("members")) {
        (Some(a), None) => Some(assignee(a, &format!("{ptr}/assignee"), ctx, p).map(Seats::Single)),
        (None, Some(list)) => {
            let mptr = format!("{ptr}/members");
            let list = parse::array(list, &mptr, Subject::key("members"), p)?;
            if list.len() < 2 {
                p.push(mptr.clone(), codes::BAD_VALUE, Detail::ParallelTooFew);
            }
            let mut members = Vec::new();
            let mut ids = BTreeSet::new();
            for (i, mv) in list.iter().enumerate() {
                let iptr = format!("{mptr}/{i}");
                let Some(mm) = parse::object(mv, &iptr, Subject::Member, p) else { continue };
                check_keys(mm, &iptr, &["id", "assignee"], &["id", "assignee"], p);
                let mid = parse::string_key(mm, &iptr, "id", p).map(str::to_string);
                let a = mm.get("assignee").and_then(|a| assignee(a, &format!("{iptr}/assignee"), ctx, p));
                if let (Some(mid), Some(a)) = (mid, a) {
                    if !ids.insert(mid.clone()) {
                        p.push(format!("{iptr}/id"), codes::DUPLICATE_ID, Detail::MemberIdTwice { id: mid.clone() });
                    }
                    if matches!(a, Assignee::Field(ref f) if f.contains('*')) {
                        p.push(format!("{iptr}/assignee"), codes::BAD_VALUE, Detail::MemberInArray);
                    }
                    members.push(Member { id: mid, assignee: a });
                }
            }
            Some(Some(Seats::Members(members)))
        }
        _ => {
            p.push(ptr, codes::BAD_VALUE, Detail::StepSeatsShape);
            Some(None)
        }
    }
}

/// A step's `complete_when` (all, any or a quorum no larger than its known seats).
fn step_complete_when(m: &Map<String, Value>, ptr: &str, seats: Option<&Seats>, p: &mut Problems) -> CompleteWhen {
    let complete_when = match m.get("complete_when") {
        None => CompleteWhen::All,
        Some(Value::String(s)) if s == "all" => CompleteWhen::All,
        Some(Value::String(s)) if s == "any" => CompleteWhen::Any,
        Some(Value::Object(q)) if q.len() == 1 && q.get("quorum").and_then(Value::as_u64).is_some_and(|n| (1..1000).contains(&n)) => {
            CompleteWhen::Quorum(q["quorum"].as_u64().unwrap_or(1) as u32)
        }
        Some(_) => {
            p.push(format!("{ptr}/complete_when"), codes::BAD_VALUE, Detail::CompleteWhenShape);
            CompleteWhen::All
        }
    };
    // A quorum can only be checked against seats known before submission.
    if let (CompleteWhen::Quorum(n), Some(seats)) = (complete_when, seats) {
        let known = match seats {
            Seats::Members(ms) => Some(ms.len()),
            Seats::Single(Assignee::Field(f)) if f.contains('*') => None,
            Seats::Single(_) => Some(1),
        };
        if let Some(k) = known
            && n as usize > k
        {
            p.push(format!("{ptr}/complete_when/quorum"), codes::BAD_VALUE, Detail::QuorumTooLarge { quorum: u64::from(n), seats: k });
        }
    }
    complete_when
}

/// A step's `actions`: known, listed once, at least one.
fn step_actions(m: &Map<String, Value>, ptr: &str, p: &mut Problems) -> Vec<Action> {
    let mut actions = Vec::new();
    if let Some(list) = m.get("actions").and_then(|v| parse::array(v, &format!("{ptr}/actions"), Subject::key("actions"), p)) {
        for (i, a) in list.iter().enumerate() {
            let aptr = format!("{ptr}/actions/{i}");
            match a.as_str().map(str::parse::<Action>) {
                Some(Ok(act)) if !actions.contains(&act) => actions.push(act),
                Some(Ok(act)) => p.push(aptr, codes::DUPLICATE_ID, Detail::ActionTwice { action: act.to_string() }),
                Some(Err(e)) => p.push(aptr, codes::BAD_VALUE, e),
                None => p.push(aptr, codes::BAD_VALUE, Detail::ActionNotString),
            }
        }
        if list.is_empty() {
            p.push(format!("{ptr}/actions"), codes::BAD_VALUE, Detail::NoActions);
        }
    }
    actions
}

/// A step's `second_factor` (true or false; false when absent).
fn step_second_factor(m: &Map<String, Value>, ptr: &str, p: &mut Problems) -> bool {
    match m.get("second_factor") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            p.push(format!("{ptr}/second_factor"), codes::BAD_VALUE, Detail::SecondFactorBool);
            false
        }
    }
}

/// Reads `"deadline": {"days" | "working_days": N, "remind_after_days": R, "calendar": ID, "escalate_to": …}`.
/// With `working_days`, the reminder counts working days too, and the calendar is the one named
/// or, when none is named, the only holiday calendar loaded.
fn deadline(d: &Value, dptr: &str, ctx: &StepContext, p: &mut Problems) -> Option<Deadline> {
    let dm = parse::object(d, dptr, Subject::key("deadline"), p)?;
    check_keys(dm, dptr, &["days", "working_days", "calendar", "remind_after_days", "escalate_to"], &[], p);
    let unit = match (dm.contains_key("days"), dm.contains_key("working_days")) {
        (true, false) => "days",
        (false, true) => "working_days",
        _ => {
            p.push(dptr, codes::BAD_VALUE, Detail::DeadlineUnit);
            return None;
        }
    };
    let days = dm.get(unit).and_then(Value::as_u64).filter(|d| (1..=365).contains(d));
    if days.is_none() {
        p.push(format!("{dptr}/{unit}"), codes::BAD_VALUE, Detail::DeadlineDays { unit: unit.to_string() });
    }
    let count = if unit == "working_days" {
        let named = dm.get("calendar").and_then(|c| parse::string(c, &format!("{dptr}/calendar"), Subject::HolidayCalendarId, p));
        let found = match named {
            Some(id) => ctx.calendars.get(id).cloned().ok_or_else(|| Detail::CalendarNotLoaded { id: id.to_string(), known: calendar_list(ctx) }),
            None if ctx.calendars.len() == 1 => Ok(ctx.calendars.values().next().cloned().expect("one calendar")),
            None if ctx.calendars.is_empty() => Err(Detail::NoCalendarLoaded),
            None => Err(Detail::SeveralCalendars { known: calendar_list(ctx) }),
        };
        match found {
            Ok(c) => Some(DayCount::Working(c)),
            Err(msg) => {
                p.push(if named.is_some() { format!("{dptr}/calendar") } else { dptr.to_string() }, check_codes::DEADLINE_CALENDAR, msg);
                None
            }
        }
    } else {
        if dm.contains_key("calendar") {
            p.push(format!("{dptr}/calendar"), codes::BAD_VALUE, Detail::CalendarWithoutWorkingDays);
        }
        Some(DayCount::Calendar)
    };
    let remind = match dm.get("remind_after_days") {
        None => None,
        Some(v) => match (v.as_u64(), days) {
            (Some(r), Some(d)) if r >= 1 && r < d => Some(r as u32),
            _ => {
                p.push(format!("{dptr}/remind_after_days"), codes::BAD_VALUE, Detail::ReminderOutOfRange);
                None
            }
        },
    };
    let escalate_to = match dm.get("escalate_to") {
        Some(e) => Some(assignee(e, &format!("{dptr}/escalate_to"), ctx, p)?),
        None => None,
    };
    Some(Deadline { days: days? as u32, remind_after_days: remind, escalate_to, count: count? })
}

fn calendar_list(ctx: &StepContext) -> Vec<String> {
    ctx.calendars.keys().cloned().collect()
}

/// `after` must name known steps and form no cycle; every step must be able to run.
fn check_graph(steps: &[StepDefinition], whens: &[Option<Value>], raw: &[Value], p: &mut Problems) {
    let index: BTreeMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let ptr_of = |id: &str| -> String {
        let i = raw.iter().position(|s| s.get("id").and_then(Value::as_str) == Some(id)).unwrap_or(0);
        format!("/steps/{i}")
    };
    let mut unknown = false;
    for s in steps {
        for a in &s.after {
            if !index.contains_key(a.as_str()) {
                p.push(format!("{}/after", ptr_of(&s.id)), codes::BAD_VALUE, Detail::AfterUnknownStep { step: s.id.clone(), after: a.clone() });
                unknown = true;
            } else if a == &s.id {
                p.push(format!("{}/after", ptr_of(&s.id)), codes::BAD_VALUE, Detail::AfterItself { step: s.id.clone() });
            }
        }
    }
    if unknown {
        return;
    }
    // Cycles: depth-first search with colours.
    let mut colour = vec![0u8; steps.len()];
    fn visit(i: usize, steps: &[StepDefinition], index: &BTreeMap<&str, usize>, colour: &mut [u8], path: &mut Vec<usize>) -> Option<Vec<usize>> {
        colour[i] = 1;
        path.push(i);
        for a in &steps[i].after {
            let j = index[a.as_str()];
            if colour[j] == 1 {
                let start = path.iter().position(|x| *x == j).unwrap_or(0);
                return Some(path[start..].to_vec());
            }
            if colour[j] == 0
                && let Some(c) = visit(j, steps, index, colour, path)
            {
                return Some(c);
            }
        }
        path.pop();
        colour[i] = 2;
        None
    }
    for i in 0..steps.len() {
        if colour[i] == 0 {
            let mut path = Vec::new();
            if let Some(cycle) = visit(i, steps, &index, &mut colour, &mut path) {
                let names: Vec<String> = cycle.iter().map(|j| steps[*j].id.clone()).collect();
                p.push(format!("{}/after", ptr_of(&steps[cycle[0]].id)), codes::BAD_VALUE, Detail::StepCycle { steps: names });
                return;
            }
        }
    }
    // Unreachable: a constant-false condition, or after a step that can never be done.
    let never_done: BTreeSet<&str> = steps.iter().filter(|s| !s.actions.iter().any(|a| a.is_positive())).map(|s| s.id.as_str()).collect();
    for (s, w) in steps.iter().zip(whens) {
        if let Some(w) = w {
            let constant_false = matches!(w, Value::Bool(false) | Value::Null) || w.as_f64() == Some(0.0) || w.as_str() == Some("");
            if constant_false {
                p.push(format!("{}/when", ptr_of(&s.id)), codes::BAD_VALUE, Detail::StepNeverRuns { step: s.id.clone() });
            }
        }
        for a in &s.after {
            if never_done.contains(a.as_str()) {
                p.push(format!("{}/after", ptr_of(&s.id)), codes::BAD_VALUE, Detail::StepUnreachable { step: s.id.clone(), after: a.clone() });
            }
        }
    }
}
