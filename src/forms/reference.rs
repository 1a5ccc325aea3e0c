//! Reference data the computed values read: holiday calendars and rates tables.
//!
//! Day counts and amounts change by dispatch every year; keeping them as definition files means
//! an HR officer updates a table, not the code (FORMS.md: "never constants in code").

use super::parse::{self, check_keys};
use super::problem::{Problems, codes, pointer_push};
use super::problem_detail::{Detail, Subject};
use crate::i18n::LocalizedText;
use chrono::{Datelike, NaiveDate, Weekday};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Weekend days and public holidays, for counting working days.
#[derive(Debug, Clone)]
pub struct HolidayCalendar {
    pub id: String,
    pub title: LocalizedText,
    /// Indexed by `Weekday::num_days_from_monday`.
    weekend: [bool; 7],
    holidays: BTreeMap<NaiveDate, LocalizedText>,
}

impl HolidayCalendar {
    pub fn parse(v: &Map<String, Value>, p: &mut Problems) -> Option<HolidayCalendar> {
        check_keys(v, "", &["kind", "id", "title", "weekend", "holidays"], &["id", "title", "weekend", "holidays"], p);
        let before = p.len();
        let id = parse::string_key(v, "", "id", p).map(str::to_string);
        let title = v.get("title").and_then(|t| parse::localized(t, "/title", p));
        let mut weekend = [false; 7];
        if let Some(days) = v.get("weekend").and_then(|w| parse::array(w, "/weekend", Subject::key("weekend"), p)) {
            for (i, d) in days.iter().enumerate() {
                let ptr = format!("/weekend/{i}");
                match d.as_str().and_then(|s| s.parse::<Weekday>().ok()) {
                    Some(day) => {
                        weekend[day.num_days_from_monday() as usize] = true;
                    }
                    None => p.push(ptr, codes::REFERENCE_TABLE, Detail::NotAWeekday { found: d.to_string() }),
                }
            }
        }
        let mut holidays = BTreeMap::new();
        if let Some(list) = v.get("holidays").and_then(|h| parse::array(h, "/holidays", Subject::key("holidays"), p)) {
            for (i, h) in list.iter().enumerate() {
                let ptr = format!("/holidays/{i}");
                let Some(m) = parse::object(h, &ptr, Subject::Holiday, p) else { continue };
                check_keys(m, &ptr, &["date", "name"], &["date", "name"], p);
                let name = m.get("name").and_then(|n| parse::localized(n, &pointer_push(&ptr, "name"), p));
                let date = match m.get("date").and_then(Value::as_str).map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d")) {
                    Some(Ok(d)) => Some(d),
                    Some(Err(_)) | None if m.contains_key("date") => {
                        p.push(format!("{ptr}/date"), codes::REFERENCE_TABLE, Detail::HolidayDateInvalid);
                        None
                    }
                    _ => None,
                };
                if let (Some(d), Some(n)) = (date, name)
                    && holidays.insert(d, n).is_some()
                {
                    p.push(format!("{ptr}/date"), codes::REFERENCE_TABLE, Detail::HolidayTwice { date: d.to_string() });
                }
            }
        }
        if p.len() > before {
            return None;
        }
        Some(HolidayCalendar { id: id?, title: title?, weekend, holidays })
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        !self.weekend[d.weekday().num_days_from_monday() as usize] && !self.holidays.contains_key(&d)
    }

    /// Working days from `start` to `end` inclusive (0 if `end` is earlier). Bounded: periods
    /// longer than ten years are refused by the caller's rules long before this matters, and
    /// the loop is capped so a hostile date range cannot spin.
    pub fn working_days(&self, start: NaiveDate, end: NaiveDate) -> Option<u32> {
        if end < start {
            return Some(0);
        }
        if (end - start).num_days() > 3660 {
            return None;
        }
        Some(start.iter_days().take_while(|d| *d <= end).filter(|d| self.is_working_day(*d)).count() as u32)
    }
}

/// Amounts looked up by key columns.
#[derive(Debug, Clone)]
pub struct RatesTable {
    pub id: String,
    pub title: LocalizedText,
    pub unit: String,
    pub keys: Vec<String>,
    rows: Vec<Map<String, Value>>,
}

impl RatesTable {
    pub fn parse(v: &Map<String, Value>, p: &mut Problems) -> Option<RatesTable> {
        check_keys(v, "", &["kind", "id", "title", "unit", "keys", "rows", "description"], &["id", "title", "unit", "keys", "rows"], p);
        let before = p.len();
        let id = parse::string_key(v, "", "id", p).map(str::to_string);
        let title = v.get("title").and_then(|t| parse::localized(t, "/title", p));
        if let Some(d) = v.get("description") {
            parse::localized(d, "/description", p);
        }
        let unit = parse::string_key(v, "", "unit", p).map(str::to_string);
        let keys: Vec<String> = v
            .get("keys")
            .and_then(|k| parse::array(k, "/keys", Subject::key("keys"), p))
            .map(|k| k.iter().enumerate().filter_map(|(i, s)| parse::string(s, &format!("/keys/{i}"), Subject::KeyColumn, p).map(str::to_string)).collect())
            .unwrap_or_default();
        let mut rows = Vec::new();
        let mut seen = BTreeMap::new();
        if let Some(list) = v.get("rows").and_then(|r| parse::array(r, "/rows", Subject::key("rows"), p)) {
            for (i, r) in list.iter().enumerate() {
                let ptr = format!("/rows/{i}");
                let Some(m) = parse::object(r, &ptr, Subject::Row, p) else { continue };
                let mut key = Vec::new();
                for k in &keys {
                    match m.get(k) {
                        Some(v) if v.is_string() || v.is_number() || v.is_boolean() => key.push(v.to_string()),
                        _ => p.push(ptr.clone(), codes::REFERENCE_TABLE, Detail::RowWithoutKey { column: k.clone() }),
                    }
                }
                if key.len() == keys.len()
                    && let Some(first) = seen.insert(key.clone(), i)
                {
                    p.push(ptr.clone(), codes::REFERENCE_TABLE, Detail::SameKeysAsRow { row: first, key: key.clone() });
                }
                rows.push(m.clone());
            }
        }
        if p.len() > before {
            return None;
        }
        Some(RatesTable { id: id?, title: title?, unit: unit?, keys, rows })
    }

    /// Whether every row has the `column`.
    pub fn has_column(&self, column: &str) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r.contains_key(column))
    }

    /// The `value` column of the row whose key columns equal `wanted`. Numbers compare by value
    /// (`1` matches `1.0`); strings exactly.
    pub fn lookup(&self, wanted: &[(&str, &Value)], value: &str) -> Option<&Value> {
        self.rows.iter().find(|row| wanted.iter().all(|(k, w)| row.get(*k).is_some_and(|v| same(v, w)))).and_then(|row| row.get(value))
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}
