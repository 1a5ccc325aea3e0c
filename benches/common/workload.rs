//! The workload both store benchmarks run (`store.rs`, `store_backends.rs`): a leave request
//! submitted by a staff member into an approver's inbox, then approved (two durable acts).

use carimbo::store::{Append, CaseHead, InboxEntry, Store};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn head(case: &str, submitter: &str, approver: &str, opened_at: DateTime<Utc>, status: &str) -> CaseHead {
    CaseHead {
        case_id: case.into(),
        version: 0,
        last_hash: String::new(),
        status: status.into(),
        form_id: "leave".into(),
        form_version: "1".into(),
        form_hash: "f".repeat(64),
        workflow_id: "leave".into(),
        workflow_version: "1".into(),
        workflow_hash: "e".repeat(64),
        submitter: submitter.into(),
        parties: vec![submitter.into(), approver.into()],
        opened_at,
        updated_at: opened_at,
        summary: json!({"step": "supervisor", "who": approver}),
    }
}

pub fn submission(case: &str, submitter: &str, approver: &str, at: DateTime<Utc>) -> Append {
    Append {
        case_id: case.into(),
        expected_version: 0,
        events: vec![json!({"type": "submitted", "by": submitter, "data": {"from": "2025-03-03", "to": "2025-03-07", "days": 5}})],
        head: head(case, submitter, approver, at, "open"),
        inbox: vec![InboxEntry {
            person: approver.into(),
            case_id: case.into(),
            step: "supervisor".into(),
            seat: "1".into(),
            since: at,
            form_id: "leave".into(),
            on_behalf_of: None,
            delegation: None,
        }],
        idempotency_key: Some(format!("submit-{case}")),
        outcome: json!({"case": case, "version": 1}),
        outbox: Vec::new(),
    }
}

pub fn approval(case: &str, submitter: &str, at: DateTime<Utc>) -> Append {
    Append {
        case_id: case.into(),
        expected_version: 1,
        events: vec![json!({"type": "approved", "by": "approver-1", "step": "supervisor"})],
        head: head(case, submitter, "approver-1", at, "completed"),
        inbox: vec![],
        idempotency_key: Some(format!("approve-{case}")),
        outcome: json!({"case": case, "version": 2}),
        outbox: Vec::new(),
    }
}

/// `clients` threads each doing submit → approve cycles on their own cases (ids start with
/// `prefix`, so several runs can share a store) until `budget` is spent: (durable acts, time taken).
pub fn run_cycles(store: Arc<dyn Store>, clients: usize, budget: Duration, prefix: &str) -> (u64, Duration) {
    let start = Instant::now();
    let deadline = start + budget;
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let (store, prefix) = (store.clone(), prefix.to_string());
            std::thread::spawn(move || {
                let mut acts = 0u64;
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let case = format!("{prefix}c{c}-{i}");
                    let now = Utc::now();
                    store.append(submission(&case, &format!("staff-{c}"), "approver-1", now)).expect("submission appended");
                    store.append(approval(&case, &format!("staff-{c}"), now)).expect("approval appended");
                    acts += 2;
                    i += 1;
                }
                acts
            })
        })
        .collect();
    let acts = workers.into_iter().map(|w| w.join().expect("a store worker")).sum();
    (acts, start.elapsed())
}
