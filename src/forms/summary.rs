//! A form's summary fields (`layout.summary`): the few values (type, dates, working days, amount)
//! that say what a case is about, shown wherever a person decides on a case without opening it
//! (inbox rows, "My cases", the case page, the batch confirmation).
//!
//! A summary field is a top-level field of the schema holding one value (a string, a number, a
//! boolean), and never a restricted one: a summary is shown in lists read by everyone on the
//! case's route, so a restricted field there would invite a channel to forget `visibility`.
//! The pages still read the data through `visibility::Sight`.

use super::definition::FieldIndex;
use super::parse;
use super::problem::{ErrorCode, Problems};
use super::problem_detail::{Detail, Subject};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A summary names a field the schema does not have, or one that holds an object or a list.
pub const SUMMARY_UNKNOWN_FIELD: ErrorCode = ErrorCode("CARIMBO-E1301");
/// A summary names a restricted field.
pub const SUMMARY_RESTRICTED_FIELD: ErrorCode = ErrorCode("CARIMBO-E1302");
/// A summary is not a short list of distinct names.
pub const SUMMARY_SHAPE: ErrorCode = ErrorCode("CARIMBO-E1303");

/// More than this and a row stops being a summary.
pub const MAX_SUMMARY_FIELDS: usize = 6;

/// Reads `layout.summary` (absent: no summary), pushing every problem.
pub(crate) fn parse_summary(layout: &Map<String, Value>, fields: &FieldIndex, restricted: &BTreeMap<String, Vec<String>>, p: &mut Problems) -> Vec<String> {
    let Some(v) = layout.get("summary") else { return Vec::new() };
    let Some(list) = parse::array(v, "/layout/summary", Subject::key("summary"), p) else { return Vec::new() };
    if list.len() > MAX_SUMMARY_FIELDS {
        p.push("/layout/summary", SUMMARY_SHAPE, Detail::SummaryTooLong { max: MAX_SUMMARY_FIELDS, given: list.len() });
    }
    let mut out: Vec<String> = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let ptr = format!("/layout/summary/{i}");
        let Some(name) = parse::string(f, &ptr, Subject::FieldName, p) else { continue };
        if out.iter().any(|n| n == name) {
            p.push(ptr, SUMMARY_SHAPE, Detail::SummaryTwice { name: name.to_string() });
        } else if !fields.top_level.iter().any(|t| t == name) {
            p.push(ptr, SUMMARY_UNKNOWN_FIELD, Detail::NotTopLevelField { name: name.to_string() });
        } else if restricted.contains_key(name) {
            p.push(ptr, SUMMARY_RESTRICTED_FIELD, Detail::SummaryRestricted { name: name.to_string() });
        } else if holds_many(fields, name) {
            p.push(ptr, SUMMARY_UNKNOWN_FIELD, Detail::SummaryHoldsMany { name: name.to_string() });
        } else {
            out.push(name.to_string());
        }
    }
    out
}

/// Whether the schema gives the field members or items (an object or a list).
fn holds_many(fields: &FieldIndex, name: &str) -> bool {
    let inner = format!("{name}.");
    fields.items.contains(&format!("{name}.*")) || fields.paths.iter().any(|p| p.starts_with(&inner))
}
