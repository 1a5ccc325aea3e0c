//! The workload both store benchmarks run (`store.rs`, `store_backends.rs`): a leave request
//! submitted by a staff member into an approver's inbox, then approved (two durable acts).

use carimbo::store::{Append, CaseHead, InboxEntry};
use chrono::{DateTime, Utc};
use serde_json::json;

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
