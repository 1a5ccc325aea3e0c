//! The usage figures of hand-built cases, each figure worked out by hand in the comments.
//!
//! The cases follow the shipped leave workflow (supervisor → head if long → personnel section;
//! the supervisor's deadline is 3 days) and the demo directory (p005 is in DAF, p021 in DRH,
//! doc01 in no department). Times are Macau time.

use super::*;
use crate::catalog::Catalog;
use crate::workflow::{DefinitionRef, Seat, SignatureRecord};
use chrono::Duration;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::OnceLock;

const LEAVE: &str = "absence-and-annual-leave";
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn directory() -> &'static Directory {
    static D: OnceLock<Directory> = OnceLock::new();
    D.get_or_init(|| Directory::load(&root().join("seeds/directory/directory.json")).expect("the demo directory loads"))
}

fn leave_workflow() -> &'static Arc<WorkflowDefinition> {
    static W: OnceLock<Arc<WorkflowDefinition>> = OnceLock::new();
    W.get_or_init(|| {
        let report = Catalog::load_paths(&[root().join("forms"), root().join("workflows")]);
        report.catalog.workflow(LEAVE).expect("the leave workflow loads").clone()
    })
}

fn workflows() -> HashMap<String, Arc<WorkflowDefinition>> {
    let w = leave_workflow();
    HashMap::from([(w.content_hash.clone(), w.clone())])
}

/// `YYYY-MM-DDTHH:MM` Macau time.
fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}:00+08:00")).expect("a test time").with_timezone(&Utc)
}

fn sig(who: &str, level: Level) -> SignatureRecord {
    SignatureRecord { level, signer: who.into(), jws: None, second_factor: false, provenance: None }
}

/// A case being written event by event.
struct Story {
    id: String,
    submitter: String,
    form: String,
    events: Vec<CaseEvent>,
}

impl Story {
    fn submitted(id: &str, submitter: &str, when: &str) -> Story {
        Story::submitted_form(id, submitter, LEAVE, when)
    }

    fn submitted_form(id: &str, submitter: &str, form: &str, when: &str) -> Story {
        let wf = leave_workflow();
        let t = at(when);
        let events = vec![
            CaseEvent::Submitted {
                case_id: id.into(),
                at: t,
                form: DefinitionRef { id: form.into(), version: "1.0.0".into(), hash: format!("form-{form}") },
                workflow: DefinitionRef { id: wf.id.clone(), version: wf.version.clone(), hash: wf.content_hash.clone() },
                submitter: submitter.into(),
                subject: submitter.into(),
                data: json!({"n": 1}),
                signature: sig(submitter, Level::Advanced),
                disclosures: Default::default(),
                reference: Default::default(),
            },
            CaseEvent::StepOpened { at: t, step: "supervisor".into(), seats: vec![Seat { id: "supervisor".into(), people: vec!["boss".into()] }] },
        ];
        Story { id: id.into(), submitter: submitter.into(), form: form.into(), events }
    }

    fn act(mut self, when: &str, step: &str, seat: &str, action: Action, level: Level) -> Story {
        self.events.push(CaseEvent::Acted {
            at: at(when),
            step: step.into(),
            seat: seat.into(),
            actor: "boss".into(),
            on_behalf_of: None,
            delegation: None,
            action,
            comment: None,
            signature: sig("boss", level),
        });
        self
    }

    /// The supervisor approves (qualified); the head's step is skipped; the personnel section's opens.
    fn approved(self, when: &str) -> Story {
        let mut s = self.act(when, "supervisor", "supervisor", Action::Approve, Level::Qualified);
        let t = at(when);
        s.events.push(CaseEvent::StepDone { at: t, step: "supervisor".into() });
        s.events.push(CaseEvent::StepSkipped { at: t, step: "head".into(), reason: "condition not met".into() });
        s.events.push(CaseEvent::StepOpened { at: t, step: "hr-records".into(), seats: vec![Seat { id: "hr".into(), people: vec!["boss".into()] }] });
        s
    }

    /// The personnel section records it (simple, sealed) and the case completes.
    fn completed(self, when: &str) -> Story {
        let mut s = self.act(when, "hr-records", "hr", Action::Sign, Level::Simple);
        let t = at(when);
        s.events.push(CaseEvent::StepDone { at: t, step: "hr-records".into() });
        s.events.push(CaseEvent::Completed { at: t });
        s
    }

    fn rejected(self, when: &str) -> Story {
        let mut s = self.act(when, "supervisor", "supervisor", Action::Reject, Level::Advanced);
        s.events.push(CaseEvent::Rejected { at: at(when), by: "boss".into(), step: "supervisor".into() });
        s
    }

    fn returned(self, when: &str) -> Story {
        self.act(when, "supervisor", "supervisor", Action::Return, Level::Advanced)
    }

    fn resubmitted(mut self, when: &str) -> Story {
        let t = at(when);
        self.events.push(CaseEvent::Resubmitted {
            at: t,
            by: self.submitter.clone(),
            data: json!({"n": 2}),
            changes: vec![],
            signature: sig(&self.submitter, Level::Advanced),
            disclosures: Default::default(),
        });
        self.events.push(CaseEvent::StepOpened {
            at: t,
            step: "supervisor".into(),
            seats: vec![Seat { id: "supervisor".into(), people: vec!["boss".into()] }],
        });
        self
    }

    fn withdrawn(mut self, when: &str) -> Story {
        self.events.push(CaseEvent::Withdrawn { at: at(when), by: self.submitter.clone(), reason: None });
        self
    }

    /// A case submitted at `when` and completed `seconds` later.
    fn done_after(id: &str, submitter: &str, when: &str, seconds: i64) -> Story {
        let end = (at(when) + Duration::seconds(seconds)).with_timezone(&macau()).format("%Y-%m-%dT%H:%M").to_string();
        Story::submitted(id, submitter, when).approved(&end).completed(&end)
    }

    fn stored(&self) -> (CaseHead, Vec<StoredEvent>) {
        let wf = leave_workflow();
        let events: Vec<StoredEvent> = self
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| StoredEvent {
                case_id: self.id.clone(),
                seq: i as u64 + 1,
                recorded_at: e.at(),
                prev_hash: String::new(),
                hash: String::new(),
                body: serde_json::to_value(e).expect("events serialise"),
            })
            .collect();
        let head = CaseHead {
            case_id: self.id.clone(),
            version: events.len() as u64,
            last_hash: String::new(),
            status: String::new(),
            form_id: self.form.clone(),
            form_version: "1.0.0".into(),
            form_hash: format!("form-{}", self.form),
            workflow_id: wf.id.clone(),
            workflow_version: wf.version.clone(),
            workflow_hash: wf.content_hash.clone(),
            submitter: self.submitter.clone(),
            parties: vec![],
            opened_at: self.events[0].at(),
            updated_at: self.events[self.events.len() - 1].at(),
            summary: Value::Null,
        };
        (head, events)
    }
}

/// `now` for the report: Friday 24 April 2026, 09:00 Macau time.
fn now() -> DateTime<Utc> {
    at("2026-04-24T09:00")
}

fn report(stories: &[Story]) -> UsageReport {
    compute(stories.iter().map(Story::stored), directory(), &workflows(), now())
}

fn row<'v>(view: &'v UsageView, form: &str, department: &str, month: &str) -> &'v Figures {
    &view
        .rows
        .iter()
        .find(|r| r.form == form && r.department == department && r.month.to_string() == month)
        .unwrap_or_else(|| panic!("a row {form}/{department}/{month} in {:#?}", view.rows))
        .figures
}

/// The DAF cases of March and April 2026 (submitted by p005).
fn daf() -> Vec<Story> {
    vec![
        // March: four completed cases taking 1, 2, 4 and 2 days.
        Story::done_after("C-m1", "p005", "2026-03-02T09:00", DAY),
        Story::done_after("C-m2", "p005", "2026-03-05T09:00", 2 * DAY),
        Story::done_after("C-m3", "p005", "2026-03-10T09:00", 4 * DAY),
        // Submitted on the last evening of March, completed in April: a March case.
        Story::done_after("C-m4", "p005", "2026-03-31T20:00", 2 * DAY),
        // 07:00 on 1 April in Macau is still 31 March in UTC: an April case, rejected.
        Story::submitted("C-a1", "p005", "2026-04-01T07:00").rejected("2026-04-01T10:00"),
        // Returned, corrected and resubmitted, then completed two days after the first submission.
        Story::submitted("C-a2", "p005", "2026-04-06T09:00")
            .returned("2026-04-06T15:00")
            .resubmitted("2026-04-07T09:00")
            .approved("2026-04-07T12:00")
            .completed("2026-04-08T09:00"),
        Story::submitted("C-a3", "p005", "2026-04-09T09:00").withdrawn("2026-04-09T12:00"),
        // Open with the supervisor for 4 days at `now`: past the 3-day deadline.
        Story::submitted("C-a4", "p005", "2026-04-20T09:00"),
        // Open for exactly 3 days: at the deadline, when the engine escalates, so past it.
        Story::submitted("C-a5", "p005", "2026-04-21T09:00"),
        // Open for 2 days: not yet.
        Story::submitted("C-a6", "p005", "2026-04-22T09:00"),
        // Returned 11 days ago and not resubmitted: waiting for its submitter, not an approver.
        Story::submitted("C-a7", "p005", "2026-04-13T09:00").returned("2026-04-13T10:00"),
    ]
}

#[test]
fn a_month_with_an_even_number_of_completions_has_the_lower_middle_as_median() {
    let view = report(&daf()).view(&UsageFilter::default());
    let march = row(&view, LEAVE, "DAF", "2026-03");
    assert_eq!((march.submitted, march.completed, march.rejected, march.returned, march.withdrawn), (4, 4, 0, 0, 0));
    // Sorted: 1, 2, 2, 4 days. p50: rank ⌈0.5 × 4⌉ = 2 → 2 days; p90: rank ⌈0.9 × 4⌉ = 4 → 4 days.
    assert_eq!(march.time_to_completion, TimeToCompletion { count: 4, p50_seconds: Some(2 * DAY), p90_seconds: Some(4 * DAY) });
    assert_eq!((march.in_progress, march.past_deadline), (0, 0));
}

#[test]
fn a_case_completed_in_the_next_month_counts_in_its_month_of_submission() {
    let view = report(&daf()).view(&UsageFilter::default());
    // C-m4 completed on 2 April, but it is a March case: March has all four completions and April
    // only C-a2's.
    assert_eq!(row(&view, LEAVE, "DAF", "2026-03").completed, 4);
    assert_eq!(row(&view, LEAVE, "DAF", "2026-04").completed, 1);
}

#[test]
fn months_are_counted_in_macau_time() {
    assert_eq!(Month::of(at("2026-04-01T07:00")).to_string(), "2026-04");
    assert_eq!(Month::of(at("2026-03-31T23:59")).to_string(), "2026-03");
    let view = report(&daf()).view(&UsageFilter::default());
    assert_eq!(row(&view, LEAVE, "DAF", "2026-04").rejected, 1, "C-a1 was submitted on 31 March UTC, 1 April in Macau");
}

#[test]
fn april_counts_every_outcome_once_and_returns_as_decisions() {
    let view = report(&daf()).view(&UsageFilter::default());
    let april = row(&view, LEAVE, "DAF", "2026-04");
    // C-a1 … C-a7.
    assert_eq!(april.submitted, 7);
    assert_eq!(april.completed, 1, "C-a2");
    assert_eq!(april.rejected, 1, "C-a1");
    assert_eq!(april.returned, 2, "C-a2 (later resubmitted) and C-a7");
    assert_eq!(april.withdrawn, 1, "C-a3");
    assert_eq!(april.in_progress, 4, "C-a4, C-a5, C-a6 open; C-a7 returned");
    assert_eq!(april.past_deadline, 2, "C-a4 (4 days) and C-a5 (exactly 3); not C-a6 (2) nor the returned C-a7");
    // C-a2: resubmission does not restart the clock: 6 April 09:00 → 8 April 09:00.
    assert_eq!(april.time_to_completion, TimeToCompletion { count: 1, p50_seconds: Some(2 * DAY), p90_seconds: Some(2 * DAY) });
}

#[test]
fn signatures_are_counted_by_level_on_submissions_resubmissions_and_acts() {
    let c = Story::submitted("C-s", "p005", "2026-04-06T09:00")
        .returned("2026-04-06T15:00")
        .resubmitted("2026-04-07T09:00")
        .approved("2026-04-07T12:00")
        .completed("2026-04-08T09:00");
    let view = report(&[c]).view(&UsageFilter::default());
    // Submission and resubmission: advanced; the return: advanced; the approval: qualified;
    // the personnel section's record: simple (the service seal).
    assert_eq!(row(&view, LEAVE, "DAF", "2026-04").signatures, SignatureCounts { simple: 1, advanced: 3, qualified: 1 });
}

#[test]
fn an_odd_number_of_completions_has_the_middle_one_as_median() {
    // DRH (p021), April: completions after 1, 2, 3, 10 and 50 hours, given out of order.
    let drh: Vec<Story> =
        [10, 1, 50, 3, 2].iter().enumerate().map(|(i, h)| Story::done_after(&format!("C-d{i}"), "p021", "2026-04-02T09:00", h * HOUR)).collect();
    let view = report(&drh).view(&UsageFilter::default());
    let f = row(&view, LEAVE, "DRH", "2026-04");
    // p50: rank ⌈2.5⌉ = 3 → 3 h; p90: rank ⌈4.5⌉ = 5 → 50 h.
    assert_eq!(f.time_to_completion, TimeToCompletion { count: 5, p50_seconds: Some(3 * HOUR), p90_seconds: Some(50 * HOUR) });
}

#[test]
fn totals_take_percentiles_over_every_completion_not_over_the_rows_medians() {
    let mut all = daf();
    all.extend([10, 1, 50, 3, 2].iter().enumerate().map(|(i, h)| Story::done_after(&format!("C-d{i}"), "p021", "2026-04-02T09:00", h * HOUR)));
    let view = report(&all).view(&UsageFilter::default());
    // Ten completions, sorted: 1 h, 2 h, 3 h, 10 h, 1 d, 2 d, 2 d, 2 d, 50 h, 4 d.
    // p50: rank 5 → 1 day; p90: rank 9 → 50 h. (The rows' medians are 2 d, 2 d and 3 h.)
    assert_eq!(view.totals.time_to_completion, TimeToCompletion { count: 10, p50_seconds: Some(DAY), p90_seconds: Some(50 * HOUR) });
    assert_eq!((view.totals.submitted, view.totals.completed, view.totals.past_deadline), (16, 10, 2));
    // Per month, over both departments.
    let months: Vec<(String, u64, u64)> = view.by_month.iter().map(|m| (m.month.to_string(), m.figures.submitted, m.figures.completed)).collect();
    assert_eq!(months, [("2026-03".to_string(), 4, 4), ("2026-04".to_string(), 12, 6)]);
}

#[test]
fn a_submitter_in_no_department_is_counted_under_none() {
    let c = Story::done_after("C-doc", "doc01", "2026-04-02T09:00", HOUR);
    let view = report(&[c]).view(&UsageFilter::default());
    assert_eq!(row(&view, LEAVE, NO_DEPARTMENT, "2026-04").completed, 1);
}

#[test]
fn filters_select_rows_and_months_between_are_filled_with_zeros() {
    let mut all = daf();
    all.push(Story::submitted_form("C-x", "p021", "special-leave", "2026-01-15T09:00").withdrawn("2026-01-16T09:00"));
    let r = report(&all);
    let parse = |q: &[(&str, &str)]| UsageFilter::parse(&q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()).unwrap();

    let everything = r.view(&UsageFilter::default());
    let months: Vec<String> = everything.by_month.iter().map(|m| m.month.to_string()).collect();
    assert_eq!(months, ["2026-01", "2026-02", "2026-03", "2026-04"], "February has no case but is shown");
    assert_eq!(everything.by_month[1].figures, Figures::default());

    let april = r.view(&parse(&[("from", "2026-04"), ("to", "2026-04")]));
    assert_eq!(april.rows.len(), 1);
    assert_eq!(april.totals.submitted, 7);

    let drh = r.view(&parse(&[("department", "DRH"), ("form", ""), ("lang", "pt")]));
    assert_eq!(drh.rows.iter().map(|r| r.form.as_str()).collect::<Vec<_>>(), ["special-leave"]);
    assert_eq!(drh.totals.withdrawn, 1);

    let leave_in_march = r.view(&parse(&[("form", LEAVE), ("to", "2026-03")]));
    assert_eq!(leave_in_march.totals.submitted, 4);
    assert_eq!(r.forms().into_iter().collect::<Vec<_>>(), [LEAVE, "special-leave"]);
    assert_eq!(r.departments().into_iter().collect::<Vec<_>>(), ["DAF", "DRH"]);
}

#[test]
fn bad_filter_parameters_are_refused_with_their_name() {
    // (query, the parameter the error must name, words the reason must contain)
    type Case = (&'static [(&'static str, &'static str)], &'static str, &'static str);
    let cases: &[Case] = &[
        (&[("from", "2026-3")], "from", "YYYY-MM"),
        (&[("to", "2026-13")], "to", "01 to 12"),
        (&[("from", "march")], "from", "YYYY-MM"),
        (&[("from", "2026-05"), ("to", "2026-03")], "from", "after `to`"),
        (&[("form", "leave'; drop")], "form", "not an id"),
        (&[("department", "a b")], "department", "not an id"),
        (&[("month", "2026-03")], "month", "unknown parameter"),
        (&[("form", LEAVE), ("form", "special-leave")], "form", "more than once"),
    ];
    for (query, parameter, says) in cases {
        let pairs: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        match UsageFilter::parse(&pairs) {
            Err(UsageError::BadParameter { parameter: p, reason }) => {
                assert_eq!(&p, parameter, "{query:?}");
                assert!(reason.contains(says), "{query:?}: {reason}");
            }
            other => panic!("{query:?} should be refused, got {other:?}"),
        }
    }
}

#[test]
fn nearest_rank_percentiles() {
    // (values, percent, expected)
    let table: &[(&[i64], u32, Option<i64>)] = &[
        (&[], 50, None),
        (&[7], 50, Some(7)),
        (&[7], 90, Some(7)),
        (&[1, 2], 50, Some(1)),
        (&[1, 2], 90, Some(2)),
        (&[1, 2, 3, 4], 50, Some(2)),
        (&[1, 2, 3, 4], 90, Some(4)),
        (&[1, 2, 3, 4, 5], 50, Some(3)),
        (&[1, 2, 3, 4, 5], 90, Some(5)),
        (&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, Some(9)),
        (&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90, Some(10)),
        (&[1, 2, 3], 0, Some(1)),
        (&[1, 2, 3], 100, Some(3)),
    ];
    for (values, percent, expected) in table {
        assert_eq!(nearest_rank(values, *percent), *expected, "p{percent} of {values:?}");
    }
}

#[test]
fn a_case_that_cannot_be_replayed_is_listed_not_counted() {
    let good = Story::done_after("C-ok", "p005", "2026-04-02T09:00", HOUR);
    let (head, mut events) = Story::submitted("C-bad", "p005", "2026-04-02T09:00").stored();
    events[0].body = json!({"type": "acted"});
    let mut b = UsageBuilder::new(directory(), now());
    let (h, e) = good.stored();
    b.add(&h, &e, Some(leave_workflow()));
    b.add(&head, &events, Some(leave_workflow()));
    let r = b.finish();
    assert_eq!(r.cases_read, 2);
    assert_eq!(r.view(&UsageFilter::default()).totals.submitted, 1);
    assert_eq!(r.problems.len(), 1);
    assert_eq!(r.problems[0].case_id, "C-bad");
}

#[test]
fn an_open_case_without_its_workflow_is_counted_but_its_deadline_is_not_checked() {
    let (head, events) = Story::submitted("C-lost", "p005", "2026-04-01T09:00").stored();
    let r = compute([(head, events)], directory(), &HashMap::new(), now());
    let totals = r.view(&UsageFilter::default()).totals;
    assert_eq!((totals.submitted, totals.in_progress, totals.past_deadline), (1, 1, 0));
    assert!(r.problems[0].problem.contains("deadlines were not checked"), "{:?}", r.problems);
}

#[test]
fn the_exposition_has_a_sample_per_row_and_figure() {
    let r = report(&daf());
    let text = metrics::exposition(&r, now(), std::time::Duration::from_millis(12));
    let has = |line: &str| assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    has(r#"carimbo_cases_submitted_total{form="absence-and-annual-leave",department="DAF",month="2026-04"} 7"#);
    has(r#"carimbo_cases_completed_total{form="absence-and-annual-leave",department="DAF",month="2026-03"} 4"#);
    has(r#"carimbo_cases_returned_total{form="absence-and-annual-leave",department="DAF",month="2026-04"} 2"#);
    has(r#"carimbo_cases_past_deadline{form="absence-and-annual-leave",department="DAF"} 2"#);
    has(r#"carimbo_time_to_completion_seconds{form="absence-and-annual-leave",department="DAF",month="2026-03",quantile="0.9"} 345600.0"#);
    has(r#"carimbo_signatures_total{form="absence-and-annual-leave",department="DAF",month="2026-03",level="simple"} 4"#);
    has("carimbo_usage_report_duration_seconds 0.012");
    has("# TYPE carimbo_cases_submitted counter");
    assert!(text.ends_with("# EOF\n"));
}
