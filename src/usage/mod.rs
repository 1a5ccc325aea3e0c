//! Usage figures: what the audits asked for and nobody measured.
//!
//! Per form, department and month: how many cases were submitted, completed, rejected, returned
//! for correction and withdrawn, how long completion took (median and 90th percentile), which
//! signature levels were used, and how many cases wait past a step's deadline. The auditors'
//! complaint was that a shared system ran for years without anyone noticing that departments had
//! stopped using it; these figures are the answer, as JSON (`GET /api/v1/usage`), as a page for
//! administrators (`/admin/usage`) and for Prometheus (`GET /metrics`).
//!
//! The core is pure: `UsageBuilder` (or `compute`) folds each case's stored events, the staff
//! directory and the workflow the case is pinned to, at a given `now`, into a `UsageReport`.
//! Nothing here reads a clock or the store; `figures` is the shell that pages through the store
//! and keeps the last report for a minute, `metrics` writes the Prometheus exposition.
//!
//! The rules (`docs/usage-figures.md` explains each for readers):
//! - a case belongs to the row of its form, its submitter's department in the directory as it is
//!   now (the directory keeps no history; people outside any department count under
//!   `NO_DEPARTMENT`), and the month of its first submission in Macau time (UTC+8, no daylight
//!   saving), which is when the applicant signed it;
//! - every outcome of a case (completed, rejected, withdrawn, each return for correction, each
//!   signature) is counted in the row of its case, so a month's row says what became of the
//!   cases submitted in that month, and a row only grows as its cases move on;
//! - time to completion is `Completed.at − Submitted.at` of the first submission, returns
//!   included; percentiles are nearest-rank (`nearest_rank`);
//! - a case waits past its deadline when it is open (not returned to its submitter) and one of its
//!   open steps with a deadline has a seat still waiting and its deadline (`Deadline::due`:
//!   calendar or working days) has come at `now` — the moment the engine's `tick` escalates.

mod figures;
pub mod metrics;
#[cfg(test)]
mod tests;

pub use figures::{Snapshot, UsageFigures, read_store};

use crate::directory::Directory;
use crate::store::{CaseHead, StoreError, StoredEvent};
use crate::workflow::{Action, Case, CaseEvent, CaseStatus, Level, StepStatus, WorkflowDefinition};
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The department of cases whose submitter is in no department (doctors, candidates) or is no
/// longer in the directory.
pub const NO_DEPARTMENT: &str = "(none)";

/// Macau time, in which months are counted: UTC+8 all year (Macau keeps no daylight saving).
pub use crate::wording::macau;

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("query parameter `{parameter}`: {reason} [CARIMBO-E1101]")]
    BadParameter { parameter: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UsageError {
    fn bad(parameter: &str, reason: impl Into<String>) -> UsageError {
        UsageError::BadParameter { parameter: parameter.to_string(), reason: reason.into() }
    }
}

// ---------------------------------------------------------------- months

/// A calendar month (`YYYY-MM`), as counted in Macau time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    pub fn new(year: i32, month: u32) -> Option<Month> {
        ((1..=12).contains(&month) && (1..=9999).contains(&year)).then_some(Month { year, month })
    }

    /// The month an instant falls in, in Macau time.
    pub fn of(at: DateTime<Utc>) -> Month {
        let local = at.with_timezone(&macau());
        Month { year: local.year(), month: local.month() }
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    pub fn next(self) -> Month {
        if self.month == 12 { Month { year: self.year + 1, month: 1 } } else { Month { year: self.year, month: self.month + 1 } }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = String;

    /// Exactly `YYYY-MM` (`2026-03`), as `<input type="month">` sends it.
    fn from_str(s: &str) -> Result<Month, String> {
        let wrong = || format!("expected a month as YYYY-MM (e.g. 2026-03), got {s:?}");
        let bytes = s.as_bytes();
        if bytes.len() != 7 || bytes[4] != b'-' || !s[..4].bytes().chain(s[5..].bytes()).all(|b| b.is_ascii_digit()) {
            return Err(wrong());
        }
        let year: i32 = s[..4].parse().map_err(|_| wrong())?;
        let month: u32 = s[5..].parse().map_err(|_| wrong())?;
        Month::new(year, month).ok_or_else(|| format!("{s:?} is not a month: the month is 01 to 12"))
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Month, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------- figures

/// Signatures counted by the level verification established (submissions, resubmissions and acts,
/// including the service seal of `simple` acts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureCounts {
    pub simple: u64,
    pub advanced: u64,
    pub qualified: u64,
}

impl SignatureCounts {
    pub fn get(&self, level: Level) -> u64 {
        match level {
            Level::Simple => self.simple,
            Level::Advanced => self.advanced,
            Level::Qualified => self.qualified,
        }
    }

    fn add(&mut self, level: Level) {
        match level {
            Level::Simple => self.simple += 1,
            Level::Advanced => self.advanced += 1,
            Level::Qualified => self.qualified += 1,
        }
    }

    fn merge(&mut self, other: &SignatureCounts) {
        self.simple += other.simple;
        self.advanced += other.advanced;
        self.qualified += other.qualified;
    }
}

/// Time from first submission to completion, over the completed cases of a row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeToCompletion {
    /// Completed cases measured.
    pub count: u64,
    /// Median (nearest-rank 50th percentile), in seconds; `None` with no completed case.
    pub p50_seconds: Option<i64>,
    /// Nearest-rank 90th percentile, in seconds.
    pub p90_seconds: Option<i64>,
}

/// The figures of one row (or of a month, or of everything shown).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// Cases submitted (each case once, however often it was resubmitted).
    pub submitted: u64,
    pub completed: u64,
    pub rejected: u64,
    /// Return-for-correction decisions (a case returned twice counts twice).
    pub returned: u64,
    pub withdrawn: u64,
    /// Cases without a final decision at `now`: open, or returned to their submitter.
    pub in_progress: u64,
    /// Open cases with a step waiting past its deadline at `now`.
    pub past_deadline: u64,
    pub time_to_completion: TimeToCompletion,
    pub signatures: SignatureCounts,
}

/// The counts of a row plus every completion time, so rows can be merged and their
/// percentiles computed over the merged times (a median of medians is not a median).
#[derive(Debug, Clone, Default)]
struct Tally {
    figures: Figures,
    durations: Vec<i64>,
}

impl Tally {
    fn merge(&mut self, other: &Tally) {
        let (f, o) = (&mut self.figures, &other.figures);
        f.submitted += o.submitted;
        f.completed += o.completed;
        f.rejected += o.rejected;
        f.returned += o.returned;
        f.withdrawn += o.withdrawn;
        f.in_progress += o.in_progress;
        f.past_deadline += o.past_deadline;
        f.signatures.merge(&o.signatures);
        self.durations.extend_from_slice(&other.durations);
    }

    fn figures(&self) -> Figures {
        let mut sorted = self.durations.clone();
        sorted.sort_unstable();
        Figures {
            time_to_completion: TimeToCompletion { count: sorted.len() as u64, p50_seconds: nearest_rank(&sorted, 50), p90_seconds: nearest_rank(&sorted, 90) },
            ..self.figures.clone()
        }
    }
}

/// The nearest-rank percentile of sorted values: the smallest value with at least `percent` % of
/// the values at or below it, i.e. the value at rank ⌈percent/100 × n⌉ (1-based). It is always one
/// of the measured values (no interpolation); `None` for no values.
pub fn nearest_rank(sorted: &[i64], percent: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    let rank = (u64::from(percent.min(100)) * n).div_ceil(100).max(1);
    sorted.get(rank as usize - 1).copied()
}

// ---------------------------------------------------------------- the report

/// Where a case is counted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RowKey {
    pub form: String,
    pub department: String,
    pub month: Month,
}

/// A case the report could not count fully, and why (its events do not replay, or the workflow
/// it is pinned to is not available so its deadlines were not checked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseProblem {
    pub case_id: String,
    pub problem: String,
}

/// Every row's figures at one `now`. Filter it with `view`.
#[derive(Debug, Clone)]
pub struct UsageReport {
    pub now: DateTime<Utc>,
    pub cases_read: u64,
    pub events_read: u64,
    pub problems: Vec<CaseProblem>,
    cells: BTreeMap<RowKey, Tally>,
}

/// One row of a view: a form, a department and a month, with its figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    pub form: String,
    pub department: String,
    pub month: Month,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The figures of one month over the rows of a view (for the chart).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthFigures {
    pub month: Month,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The rows a filter lets through, with their totals per month and overall.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageView {
    pub filter: UsageFilter,
    pub rows: Vec<UsageRow>,
    /// Every month from the first to the last shown row, gaps filled with zeros, oldest first.
    pub by_month: Vec<MonthFigures>,
    pub totals: Figures,
}

impl UsageReport {
    /// The rows the filter lets through, sorted by form, department and month.
    pub fn view(&self, filter: &UsageFilter) -> UsageView {
        let mut rows = Vec::new();
        let mut months: BTreeMap<Month, Tally> = BTreeMap::new();
        let mut totals = Tally::default();
        for (key, tally) in self.cells.iter().filter(|(k, _)| filter.matches(k)) {
            rows.push(UsageRow { form: key.form.clone(), department: key.department.clone(), month: key.month, figures: tally.figures() });
            months.entry(key.month).or_default().merge(tally);
            totals.merge(tally);
        }
        let mut by_month = Vec::new();
        if let (Some(first), Some(last)) = (months.keys().next().copied(), months.keys().next_back().copied()) {
            let mut m = first;
            while m <= last {
                by_month.push(MonthFigures { month: m, figures: months.get(&m).map(Tally::figures).unwrap_or_default() });
                m = m.next();
            }
        }
        UsageView { filter: filter.clone(), rows, by_month, totals: totals.figures() }
    }

    /// Every row, unfiltered, in key order.
    pub fn rows(&self) -> impl Iterator<Item = (&RowKey, Figures)> {
        self.cells.iter().map(|(k, t)| (k, t.figures()))
    }

    /// The forms that have a row.
    pub fn forms(&self) -> BTreeSet<&str> {
        self.cells.keys().map(|k| k.form.as_str()).collect()
    }

    /// The departments that have a row.
    pub fn departments(&self) -> BTreeSet<&str> {
        self.cells.keys().map(|k| k.department.as_str()).collect()
    }
}

/// Folds cases into a report, one case at a time, so the caller never holds every event at once.
pub struct UsageBuilder<'a> {
    directory: &'a Directory,
    now: DateTime<Utc>,
    report: UsageReport,
}

impl<'a> UsageBuilder<'a> {
    pub fn new(directory: &'a Directory, now: DateTime<Utc>) -> UsageBuilder<'a> {
        UsageBuilder { directory, now, report: UsageReport { now, cases_read: 0, events_read: 0, problems: Vec::new(), cells: BTreeMap::new() } }
    }

    /// Counts one case from its stored events. `workflow` is the version the case is pinned to
    /// (for its deadlines); without it the case is counted but not checked against deadlines.
    pub fn add(&mut self, head: &CaseHead, events: &[StoredEvent], workflow: Option<&WorkflowDefinition>) {
        self.report.cases_read += 1;
        self.report.events_read += events.len() as u64;
        let problem = |problem: String| CaseProblem { case_id: head.case_id.clone(), problem };
        let parsed: Result<Vec<CaseEvent>, String> =
            events.iter().map(|e| CaseEvent::deserialize(&e.body).map_err(|err| format!("event {} cannot be read: {err}", e.seq))).collect();
        let case = parsed.and_then(|events| Case::replay(&events).map(|case| (events, case)).map_err(|e| e.to_string()));
        let (events, case) = match case {
            Ok(c) => c,
            Err(e) => return self.report.problems.push(problem(e)),
        };
        let department = self.directory.person(&case.submitter).and_then(|p| p.department.clone()).unwrap_or_else(|| NO_DEPARTMENT.to_string());
        let key = RowKey { form: case.form.id.clone(), department, month: Month::of(case.opened_at) };
        let tally = self.report.cells.entry(key).or_default();
        let f = &mut tally.figures;
        f.submitted += 1;
        for e in &events {
            match e {
                CaseEvent::Submitted { signature, .. } | CaseEvent::Resubmitted { signature, .. } => f.signatures.add(signature.level),
                CaseEvent::Acted { action, signature, .. } => {
                    f.signatures.add(signature.level);
                    if *action == Action::Return {
                        f.returned += 1;
                    }
                }
                CaseEvent::Completed { at } => {
                    f.completed += 1;
                    tally.durations.push((*at - case.opened_at).num_seconds());
                }
                CaseEvent::Rejected { .. } => f.rejected += 1,
                CaseEvent::Withdrawn { .. } => f.withdrawn += 1,
                _ => {}
            }
        }
        if !case.status.is_final() {
            f.in_progress += 1;
        }
        if case.status == CaseStatus::Open {
            match workflow {
                Some(wf) if past_deadline(&case, wf, self.now) => f.past_deadline += 1,
                Some(_) => {}
                None => self
                    .report
                    .problems
                    .push(problem(format!("the workflow version {} it is pinned to is not available: its deadlines were not checked", case.workflow.hash))),
            }
        }
    }

    /// Records a case that could not be read at all (it is in no row).
    pub fn unreadable(&mut self, head: &CaseHead, reason: String) {
        self.report.cases_read += 1;
        self.report.problems.push(CaseProblem { case_id: head.case_id.clone(), problem: reason });
    }

    pub fn finish(self) -> UsageReport {
        self.report
    }
}

/// Whether an open step of the case has a seat still waiting at or past the step's deadline: the
/// same comparison the engine's `tick` makes before it escalates.
pub fn past_deadline(case: &Case, workflow: &WorkflowDefinition, now: DateTime<Utc>) -> bool {
    case.status == CaseStatus::Open
        && case.steps.iter().any(|(id, state)| {
            state.status == StepStatus::Open
                && state.seats.iter().any(|s| s.act.is_none())
                && workflow.step(id).and_then(|d| d.deadline.as_ref()).is_some_and(|d| now >= d.due(state.since))
        })
}

/// The report over every case given, each with its head and stored events; `workflows` by
/// content hash (the versions cases are pinned to).
pub fn compute(
    cases: impl IntoIterator<Item = (CaseHead, Vec<StoredEvent>)>,
    directory: &Directory,
    workflows: &HashMap<String, Arc<WorkflowDefinition>>,
    now: DateTime<Utc>,
) -> UsageReport {
    let mut builder = UsageBuilder::new(directory, now);
    for (head, events) in cases {
        builder.add(&head, &events, workflows.get(&head.workflow_hash).map(|w| w.as_ref()));
    }
    builder.finish()
}

// ---------------------------------------------------------------- filters

/// Which rows to show: a month range (inclusive), a form, a department. Empty means all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageFilter {
    pub from: Option<Month>,
    pub to: Option<Month>,
    pub form: Option<String>,
    pub department: Option<String>,
}

impl UsageFilter {
    /// The parameters the filter reads; `lang` is the reader's language and is let through.
    pub const PARAMETERS: [&'static str; 4] = ["from", "to", "form", "department"];

    /// Reads query parameters (`from=2026-01&to=2026-03&form=…&department=…`). An empty value
    /// means "all", as a page's filter form sends it; an unknown, repeated or malformed parameter
    /// is refused with its name.
    pub fn parse(pairs: &[(String, String)]) -> Result<UsageFilter, UsageError> {
        let mut filter = UsageFilter::default();
        let mut seen = BTreeSet::new();
        for (name, value) in pairs {
            if name == "lang" {
                continue;
            }
            if !Self::PARAMETERS.contains(&name.as_str()) {
                return Err(UsageError::bad(name, format!("unknown parameter; the parameters are {}", Self::PARAMETERS.join(", "))));
            }
            if !seen.insert(name.as_str()) {
                return Err(UsageError::bad(name, "given more than once"));
            }
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match name.as_str() {
                "from" => filter.from = Some(value.parse().map_err(|e| UsageError::bad("from", e))?),
                "to" => filter.to = Some(value.parse().map_err(|e| UsageError::bad("to", e))?),
                "form" => filter.form = Some(identifier("form", value)?),
                _ => filter.department = Some(identifier("department", value)?),
            }
        }
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from > to
        {
            return Err(UsageError::bad("from", format!("{from} is after `to` ({to}); give the earlier month as `from`")));
        }
        Ok(filter)
    }

    pub fn matches(&self, key: &RowKey) -> bool {
        self.from.is_none_or(|m| key.month >= m)
            && self.to.is_none_or(|m| key.month <= m)
            && self.form.as_deref().is_none_or(|f| key.form == f)
            && self.department.as_deref().is_none_or(|d| key.department == d)
    }

    /// The filter as query parameters (for links that keep it).
    pub fn query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.from {
            parts.push(format!("from={m}"));
        }
        if let Some(m) = self.to {
            parts.push(format!("to={m}"));
        }
        for (name, v) in [("form", &self.form), ("department", &self.department)] {
            if let Some(v) = v {
                parts.push(format!("{name}={v}"));
            }
        }
        parts.join("&")
    }
}

/// A form or department id as the definitions and the directory write them.
fn identifier(parameter: &str, value: &str) -> Result<String, UsageError> {
    let ok = value.len() <= 100 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.()".contains(&b));
    if ok {
        Ok(value.to_string())
    } else {
        Err(UsageError::bad(parameter, format!("{value:?} is not an id: use letters, digits and - _ . ( ), at most 100 characters")))
    }
}
