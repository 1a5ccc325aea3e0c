//! The server's usage figures: the report read from the store, kept for a minute.
//!
//! Reading every case's events is a scan of the whole store, so the server keeps the last report
//! and hands it out until it is `max_age` old (60 s by default); only then does a request (the
//! page, the JSON API or a Prometheus scrape) compute a new one. One computation runs at a time:
//! callers that arrive meanwhile wait for it and share its result, so a burst of scrapes costs one
//! scan. Each snapshot records how long it took, which `/metrics` and the page report.

use super::{UsageBuilder, UsageError, UsageReport, metrics};
use crate::cases::CaseService;
use crate::store::StoreError;
use crate::workflow::WorkflowDefinition;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Heads read per store call.
const PAGE: usize = 500;

/// One computed report, with when and how fast it was made and its Prometheus exposition.
#[derive(Debug)]
pub struct Snapshot {
    pub report: UsageReport,
    pub computed_at: DateTime<Utc>,
    /// How long reading the store and computing the report took.
    pub took: Duration,
    /// The report in the OpenMetrics text format, written once per snapshot, not per scrape.
    pub exposition: String,
    made: Instant,
}

impl Snapshot {
    /// Time since it was computed.
    pub fn age(&self) -> Duration {
        self.made.elapsed()
    }
}

/// The last snapshot and the rule for replacing it.
pub struct UsageFigures {
    max_age: Duration,
    last: RwLock<Option<Arc<Snapshot>>>,
    computing: Mutex<()>,
}

impl Default for UsageFigures {
    fn default() -> Self {
        UsageFigures::new(UsageFigures::DEFAULT_MAX_AGE)
    }
}

impl UsageFigures {
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);

    pub fn new(max_age: Duration) -> UsageFigures {
        UsageFigures { max_age, last: RwLock::new(None), computing: Mutex::new(()) }
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    fn fresh(&self) -> Option<Arc<Snapshot>> {
        self.last.read().unwrap_or_else(|e| e.into_inner()).clone().filter(|s| s.age() < self.max_age)
    }

    /// The last snapshot, however old (none before the first computation).
    pub fn last(&self) -> Option<Arc<Snapshot>> {
        self.last.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The last snapshot while it is younger than `max_age`, else a new one. Blocking: it may
    /// scan the whole store (call it from `spawn_blocking`).
    pub fn current(&self, cases: &CaseService) -> Result<Arc<Snapshot>, UsageError> {
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        let _one_at_a_time = self.computing.lock().unwrap_or_else(|e| e.into_inner());
        // Someone may have computed it while this caller waited for the lock.
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        let started = Instant::now();
        let computed_at = Utc::now();
        let report = read_store(cases, computed_at)?;
        let took = started.elapsed();
        let exposition = metrics::exposition(&report, computed_at, took);
        let snapshot = Arc::new(Snapshot { report, computed_at, took, exposition, made: Instant::now() });
        *self.last.write().unwrap_or_else(|e| e.into_inner()) = Some(snapshot.clone());
        Ok(snapshot)
    }
}

/// Pages through every case head in the store, reads each case's events, and folds them into a
/// report at `now`. The directory is the service's current one; each case's workflow is the
/// version it is pinned to. A case whose events cannot be read is listed in the report's
/// problems; only a failure of the store itself stops the computation.
pub fn read_store(cases: &CaseService, now: DateTime<Utc>) -> Result<UsageReport, UsageError> {
    let store = cases.store();
    let directory = cases.directory();
    let mut workflows: HashMap<String, Option<Arc<WorkflowDefinition>>> = HashMap::new();
    let mut builder = UsageBuilder::new(&directory, now);
    let mut after: Option<String> = None;
    loop {
        let page = store.heads(after.as_deref(), PAGE)?;
        for head in &page {
            let events = match store.events(&head.case_id) {
                Ok(events) => events,
                Err(StoreError::Io(e)) => return Err(StoreError::Io(e).into()),
                Err(e) => {
                    builder.unreadable(head, e.to_string());
                    continue;
                }
            };
            let workflow = workflows.entry(head.workflow_hash.clone()).or_insert_with(|| cases.pinned_workflow(&head.form_hash, &head.workflow_hash).ok());
            builder.add(head, &events, workflow.as_deref());
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.case_id.clone()),
            _ => break,
        }
    }
    Ok(builder.finish())
}
