//! How long the usage report takes, run with `cargo bench --bench usage` (release build).
//!
//! Generates N leave requests (default 10,000; `CARIMBO_BENCH_CASES=100000` for more) through the
//! real workflow engine, spread over twelve months and the demo directory's staff: 60 % completed,
//! 10 % rejected, 10 % returned for correction, 10 % withdrawn, 10 % left open. Then prints
//! 1. the pure core (`UsageBuilder`) over the events held in memory;
//! 2. the whole computation the server does once a minute at most: every head paged from a sled
//!    store, every case's events read and folded (`usage::read_store`), median of 5 runs;
//! 3. writing the Prometheus exposition of the report.
//!
//! The store lives in a temporary directory under Cargo's target tmp dir (or `CARIMBO_BENCH_DIR`).

use carimbo::cases::CaseService;
use carimbo::catalog::Catalog;
use carimbo::directory::Directory;
use carimbo::forms::ValidationContext;
use carimbo::i18n::Lang;
use carimbo::store::{Append, CaseHead, SledStore, Store, StoredEvent};
use carimbo::usage::{UsageBuilder, UsageFilter, metrics, read_store};
use carimbo::workflow::{ActRequest, Action, Case, CaseEvent, Engine, Level, SignatureRecord, StepStatus};
use chrono::{DateTime, Duration as Span, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn sig(who: &str, level: Level) -> SignatureRecord {
    SignatureRecord { level, signer: who.into(), jws: None, second_factor: false, provenance: None }
}

fn main() {
    let n: usize = std::env::var("CARIMBO_BENCH_CASES").ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(10_000);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let directory = Directory::load(&repo.join("seeds/directory/directory.json")).unwrap();
    let catalog = Catalog::load_paths_with(&[repo.join("forms"), repo.join("workflows")], Some(&directory)).catalog;
    let form = catalog.form("absence-and-annual-leave").unwrap().clone();
    let wf = catalog.workflow(&form.workflow).unwrap().clone();
    let def: Value = serde_json::from_slice(&std::fs::read(repo.join("forms/absence-and-annual-leave.json")).unwrap()).unwrap();
    let example = &def["examples"];
    let today = NaiveDate::parse_from_str(example["context"]["today"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let facts = example["context"]["applicant"].as_object().cloned().unwrap_or_default();
    let submission = form.validate(&example["valid"][0]["data"], &ValidationContext::new(today, facts), Lang::En).unwrap();
    let staff: Vec<String> = directory.people().filter(|p| p.roles == ["staff"] && p.supervisor.is_some()).map(|p| p.id.clone()).collect();
    let engine = Engine::new(&wf, &directory);
    let base = Utc.with_ymd_and_hms(2025, 6, 1, 1, 0, 0).unwrap();

    // ---- generate
    let started = Instant::now();
    let mut cases: Vec<(CaseHead, Vec<StoredEvent>)> = Vec::with_capacity(n);
    let mut event_count = 0usize;
    for i in 0..n {
        let id = format!("C-bench-{i:07}");
        let submitter = &staff[i % staff.len()];
        let mut now = base + Span::minutes((i as i64 * 525_600 / n as i64).max(0));
        let mut events = engine.open_case(&id, &submission, submitter, sig(submitter, Level::Advanced), now).unwrap();
        let mut case = Case::replay(&events).unwrap();
        let outcome = i % 10;
        // Acts on the first open seat as its first assignee; false when nobody is assigned.
        let act = |case: &mut Case, events: &mut Vec<CaseEvent>, action: Option<Action>, now: DateTime<Utc>| {
            let Some(a) = engine.assignments(case, now).into_iter().next() else { return false };
            let step = wf.step(&a.step).unwrap();
            let action =
                action.filter(|x| step.actions.contains(x)).unwrap_or(if step.actions.contains(&Action::Approve) { Action::Approve } else { Action::Sign });
            let req = ActRequest { actor: a.person.clone(), step: a.step.clone(), action, comment: None, signature: sig(&a.person, Level::Qualified), now };
            for e in engine.act(case, req).unwrap() {
                case.apply(&e).unwrap();
                events.push(e);
            }
            true
        };
        match outcome {
            0..=5 => {
                while case.status == carimbo::workflow::CaseStatus::Open && case.steps.values().any(|s| s.status == StepStatus::Open) {
                    now += Span::hours(5 + (i % 40) as i64);
                    if !act(&mut case, &mut events, None, now) {
                        break;
                    }
                }
            }
            6 => {
                act(&mut case, &mut events, Some(Action::Reject), now + Span::hours(20));
            }
            7 => {
                act(&mut case, &mut events, Some(Action::Return), now + Span::hours(20));
            }
            8 => {
                let e = engine.withdraw(&case, submitter, None, now + Span::hours(3)).unwrap();
                events.extend(e);
            }
            _ => {}
        }
        event_count += events.len();
        let stored: Vec<StoredEvent> = events
            .iter()
            .enumerate()
            .map(|(k, e)| StoredEvent {
                case_id: id.clone(),
                seq: k as u64 + 1,
                recorded_at: e.at(),
                prev_hash: String::new(),
                hash: String::new(),
                body: serde_json::to_value(e).unwrap(),
            })
            .collect();
        let replayed = Case::replay(&events).unwrap();
        let head = CaseHead {
            case_id: id.clone(),
            version: 0,
            last_hash: String::new(),
            status: replayed.status.as_str().into(),
            form_id: replayed.form.id.clone(),
            form_version: replayed.form.version.clone(),
            form_hash: replayed.form.hash.clone(),
            workflow_id: replayed.workflow.id.clone(),
            workflow_version: replayed.workflow.version.clone(),
            workflow_hash: replayed.workflow.hash.clone(),
            submitter: submitter.clone(),
            parties: vec![submitter.clone()],
            opened_at: replayed.opened_at,
            updated_at: replayed.updated_at,
            summary: json!({}),
        };
        cases.push((head, stored));
    }
    println!("usage report over {n} leave requests ({event_count} events) generated through the engine in {:.1} s", started.elapsed().as_secs_f64());
    let now = base + Span::days(400);

    // ---- 1. the pure core
    let mut runs = Vec::new();
    let mut rows = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let mut b = UsageBuilder::new(&directory, now);
        for (head, events) in &cases {
            b.add(head, events, Some(&wf));
        }
        let report = b.finish();
        rows = report.view(&UsageFilter::default()).rows.len();
        runs.push(t.elapsed());
    }
    let (pure, _) = median(&mut runs);

    // ---- 2. through a sled store
    let root = std::env::var_os("CARIMBO_BENCH_DIR").map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    std::fs::create_dir_all(&root).unwrap();
    let dir = tempfile::tempdir_in(&root).unwrap();
    let sled = Arc::new(SledStore::open(dir.path()).unwrap());
    let load = Instant::now();
    for (head, events) in &cases {
        let append = Append {
            case_id: head.case_id.clone(),
            expected_version: 0,
            events: events.iter().map(|e| e.body.clone()).collect(),
            head: head.clone(),
            inbox: vec![],
            idempotency_key: None,
            outcome: Value::Null,
            outbox: vec![],
        };
        sled.append_unsynced(append).unwrap();
    }
    sled.sync().unwrap();
    let loaded = load.elapsed();
    let store: Arc<dyn Store> = sled;
    let service = CaseService::new(store, catalog.clone(), directory.clone()).unwrap();
    let mut runs = Vec::new();
    let mut report = None;
    for _ in 0..5 {
        let t = Instant::now();
        report = Some(read_store(&service, now).unwrap());
        runs.push(t.elapsed());
    }
    let (through_store, worst) = median(&mut runs);
    let report = report.unwrap();
    assert_eq!(report.cases_read as usize, n);
    assert!(report.problems.is_empty(), "{:?}", &report.problems[..report.problems.len().min(3)]);

    // ---- 3. the exposition
    let t = Instant::now();
    let text = metrics::exposition(&report, Utc::now(), through_store);
    let exposition = t.elapsed();

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("{:<46} {:>10} {:>12}", "", "median", "cases/s");
    println!("{:<46} {:>7.1} ms {:>12.0}", "pure core (events in memory)", ms(pure), n as f64 / pure.as_secs_f64());
    println!(
        "{:<46} {:>7.1} ms {:>12.0}   (worst of 5: {:.1} ms)",
        "read_store: page heads + read events (sled)",
        ms(through_store),
        n as f64 / through_store.as_secs_f64(),
        ms(worst)
    );
    println!("{:<46} {:>7.1} ms   ({} lines, {} KiB)", "Prometheus exposition", ms(exposition), text.lines().count(), text.len() / 1024);
    println!("{rows} rows (form × department × month); store loaded in {:.1} s", loaded.as_secs_f64());
}

/// The median and the worst of some timings.
fn median(runs: &mut [Duration]) -> (Duration, Duration) {
    runs.sort();
    (runs[runs.len() / 2], runs[runs.len() - 1])
}
