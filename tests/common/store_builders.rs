//! The builders of appends, heads and inbox entries that the store tests share
//! (`store_contract.rs`, `store_sled.rs`): a case "leave" opened by ana at 2025-03-01 09:00 UTC
//! plus `minutes`, waiting for bruno's supervisor step.
#![allow(dead_code)]

use carimbo::store::{Append, CaseHead, InboxEntry};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

pub fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

pub fn head(case: &str, parties: &[&str], opened_at: DateTime<Utc>) -> CaseHead {
    CaseHead {
        case_id: case.into(),
        version: 0,
        last_hash: String::new(),
        status: "open".into(),
        form_id: "leave".into(),
        form_version: "1".into(),
        form_hash: "f".repeat(64),
        workflow_id: "leave".into(),
        workflow_version: "1".into(),
        workflow_hash: "e".repeat(64),
        submitter: parties[0].into(),
        parties: parties.iter().map(|p| p.to_string()).collect(),
        opened_at,
        updated_at: opened_at,
        summary: json!({}),
    }
}

pub fn entry(person: &str, case: &str, step: &str, since: DateTime<Utc>) -> InboxEntry {
    InboxEntry {
        person: person.into(),
        case_id: case.into(),
        step: step.into(),
        seat: "1".into(),
        since,
        form_id: "leave".into(),
        on_behalf_of: None,
        delegation: None,
    }
}

pub fn append(case: &str, expected: u64, events: Vec<Value>, inbox: Vec<InboxEntry>) -> Append {
    Append {
        case_id: case.into(),
        expected_version: expected,
        events,
        head: head(case, &["ana"], t(0)),
        inbox,
        idempotency_key: None,
        outcome: json!({"ok": true}),
        outbox: Vec::new(),
    }
}

pub fn submit(case: &str) -> Append {
    append(case, 0, vec![json!({"type": "submitted", "by": "ana"})], vec![entry("bruno", case, "supervisor", t(0))])
}
