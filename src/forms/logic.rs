//! JSON Logic for cross-field rules and computed values, plus carimbo's date operators.
//!
//! Rules are evaluated by datalogic-rs (a maintained JSON Logic engine) and compiled once when a
//! definition loads. JSON Logic has no calendar arithmetic, and form rules are mostly about dates,
//! so carimbo registers a few operators (`days_between`, `add_days`, `add_months`,
//! `years_between`, `date_time_before`) built on chrono. This module also walks a rule statically
//! to find the fields it reads, which `carimbo check` needs to report rules naming missing fields.

use chrono::{DateTime, Datelike, Months, NaiveDate};
use datalogic_rs::operator::EvalContext;
use datalogic_rs::{
    ArenaExt, CustomOperator, DataValue, DivisionByZeroHandling, Engine, Error as LogicError,
    EvaluationConfig, Logic,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

/// The shared engine: configured once, `Send + Sync`, reused by every form.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        // A division by zero must surface as an error the author sees, not a silent huge number.
        let config = EvaluationConfig::default()
            .with_division_by_zero(DivisionByZeroHandling::ThrowError)
            .with_max_recursion_depth(64);
        Engine::builder()
            .with_config(config)
            .add_operator("days_between", DaysBetween)
            .add_operator("add_days", AddDays)
            .add_operator("add_months", AddMonths)
            .add_operator("years_between", YearsBetween)
            .add_operator("date_time_before", DateTimeBefore)
            .build()
    })
}

/// Operators a rule may use: the engine's built-ins plus carimbo's date operators.
pub fn known_operators() -> &'static BTreeSet<String> {
    static OPS: OnceLock<BTreeSet<String>> = OnceLock::new();
    OPS.get_or_init(|| {
        let e = engine();
        e.builtin_operator_names()
            .map(str::to_string)
            .chain(e.custom_operator_names().map(str::to_string))
            .collect()
    })
}

/// Compiles a rule; the error text is the engine's, for the author.
pub fn compile(rule: &Value) -> Result<Arc<Logic>, String> {
    engine().compile_arc(rule).map_err(|e| e.to_string())
}

/// Parses the date part of `YYYY-MM-DD` or an RFC 3339 date-time.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d);
    }
    DateTime::parse_from_rfc3339(s).ok().map(|dt| dt.date_naive())
}

fn date_arg<'a>(args: &[&'a DataValue<'a>], i: usize, op: &str) -> Result<NaiveDate, LogicError> {
    args.get(i)
        .and_then(|v| v.as_str())
        .and_then(parse_date)
        .ok_or_else(|| LogicError::custom_message(format!("{op}: argument {} is not a date (YYYY-MM-DD)", i + 1)))
}

fn int_arg<'a>(args: &[&'a DataValue<'a>], i: usize, op: &str) -> Result<i64, LogicError> {
    let v = args.get(i).ok_or_else(|| LogicError::custom_message(format!("{op}: argument {} is missing", i + 1)))?;
    if let Some(n) = v.as_i64() {
        return Ok(n);
    }
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e9 => Ok(f as i64),
        _ => Err(LogicError::custom_message(format!("{op}: argument {} is not a whole number", i + 1))),
    }
}

fn date_out<'a>(arena: &'a datalogic_rs::bumpalo::Bump, d: Option<NaiveDate>, op: &str) -> Result<&'a DataValue<'a>, LogicError> {
    let d = d.ok_or_else(|| LogicError::custom_message(format!("{op}: the date is out of range")))?;
    Ok(arena.string(&d.format("%Y-%m-%d").to_string()))
}

struct DaysBetween;
impl CustomOperator for DaysBetween {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a datalogic_rs::bumpalo::Bump) -> Result<&'a DataValue<'a>, LogicError> {
        let (a, b) = (date_arg(args, 0, "days_between")?, date_arg(args, 1, "days_between")?);
        Ok(arena.i64((b - a).num_days()))
    }
}

struct AddDays;
impl CustomOperator for AddDays {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a datalogic_rs::bumpalo::Bump) -> Result<&'a DataValue<'a>, LogicError> {
        let d = date_arg(args, 0, "add_days")?;
        let n = int_arg(args, 1, "add_days")?;
        date_out(arena, d.checked_add_signed(chrono::Duration::days(n)), "add_days")
    }
}

struct AddMonths;
impl CustomOperator for AddMonths {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a datalogic_rs::bumpalo::Bump) -> Result<&'a DataValue<'a>, LogicError> {
        let d = date_arg(args, 0, "add_months")?;
        let n = int_arg(args, 1, "add_months")?;
        let months = Months::new(n.unsigned_abs().min(u32::MAX as u64) as u32);
        let out = if n >= 0 { d.checked_add_months(months) } else { d.checked_sub_months(months) };
        date_out(arena, out, "add_months")
    }
}

struct YearsBetween;
impl CustomOperator for YearsBetween {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a datalogic_rs::bumpalo::Bump) -> Result<&'a DataValue<'a>, LogicError> {
        let (a, b) = (date_arg(args, 0, "years_between")?, date_arg(args, 1, "years_between")?);
        let mut years = b.year() as i64 - a.year() as i64;
        if (b.month(), b.day()) < (a.month(), a.day()) {
            years -= 1;
        }
        Ok(arena.i64(years))
    }
}

struct DateTimeBefore;
impl CustomOperator for DateTimeBefore {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a datalogic_rs::bumpalo::Bump) -> Result<&'a DataValue<'a>, LogicError> {
        let instant = |i: usize| {
            args.get(i)
                .and_then(|v| v.as_str())
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .ok_or_else(|| LogicError::custom_message(format!("date_time_before: argument {} is not a date-time with offset", i + 1)))
        };
        Ok(arena.bool(instant(0)? < instant(1)?))
    }
}

/// Operators whose second argument is evaluated once per item of the array in the first.
const ITERATORS: [&str; 5] = ["all", "some", "none", "map", "filter"];

/// What a rule reads and what is wrong with it, found without running it.
#[derive(Debug, Default)]
pub struct LogicScan {
    /// Variable paths read at the data root, numeric segments as `*` (`dependants.*.name`),
    /// each with the pointer (relative to the logic) of its first `var`.
    pub root_vars: BTreeMap<String, String>,
    /// Variable paths read inside an iterator, resolved to data paths (`activities.*.hours`).
    pub item_vars: BTreeMap<String, String>,
    /// (JSON pointer inside the logic, message) for each structural fault.
    pub faults: Vec<(String, String)>,
}

impl LogicScan {
    /// Every top-level field the logic depends on (first segment of each data path).
    pub fn top_level_fields(&self) -> BTreeSet<String> {
        self.root_vars
            .keys()
            .chain(self.item_vars.keys())
            .filter_map(|p| p.split('.').next())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Walks a JSON Logic value; `pointer` is where it sits in the definition (for fault messages,
/// pointers are relative to the logic root).
pub fn scan(logic: &Value) -> LogicScan {
    let mut out = LogicScan::default();
    walk(logic, "", &Scope::Root, &mut out, 0);
    out
}

enum Scope {
    Root,
    /// Inside an iterator over the array at this data path (`activities.*`), or unknown.
    Item(Option<String>),
}

fn normalise(path: &str) -> String {
    path.split('.')
        .map(|seg| if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) { "*" } else { seg })
        .collect::<Vec<_>>()
        .join(".")
}

fn walk(v: &Value, ptr: &str, scope: &Scope, out: &mut LogicScan, depth: usize) {
    if depth > 64 {
        out.faults.push((ptr.to_string(), "the rule is nested more than 64 levels deep".into()));
        return;
    }
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{ptr}/{i}"), scope, out, depth + 1);
            }
        }
        Value::Object(map) if map.len() == 1 => {
            let (op, args) = map.iter().next().expect("one entry");
            let here = super::problem::pointer_push(ptr, op);
            if !known_operators().contains(op.as_str()) {
                out.faults.push((here.clone(), format!("unknown operator {op:?}")));
            }
            match op.as_str() {
                "var" => record_var(args, &here, scope, out),
                "/" | "%" => {
                    if let Value::Array(a) = args
                        && a.get(1).and_then(Value::as_f64) == Some(0.0) {
                            out.faults.push((here.clone(), format!("{op:?} by the constant 0: the rule can never be evaluated")));
                        }
                    walk(args, &here, scope, out, depth + 1);
                }
                op if ITERATORS.contains(&op) || op == "reduce" => {
                    let Value::Array(a) = args else {
                        out.faults.push((here, format!("{op:?} takes an array [list, logic]")));
                        return;
                    };
                    if let Some(list) = a.first() {
                        walk(list, &format!("{here}/0"), scope, out, depth + 1);
                    }
                    // The per-item logic reads fields of the item, not of the data root.
                    let base = match (scope, a.first()) {
                        (Scope::Root, Some(Value::Object(m))) => match m.get("var") {
                            Some(Value::String(s)) => Some(format!("{}.*", normalise(s))),
                            _ => None,
                        },
                        (Scope::Item(Some(b)), Some(Value::Object(m))) => match m.get("var") {
                            Some(Value::String(s)) => Some(format!("{b}.{}.*", normalise(s))),
                            _ => None,
                        },
                        _ => None,
                    };
                    let inner = Scope::Item(base);
                    for (i, rest) in a.iter().enumerate().skip(1) {
                        // reduce's third argument (the initial value) is evaluated in the outer scope.
                        let s = if op == "reduce" && i == 2 { scope } else { &inner };
                        walk(rest, &format!("{here}/{i}"), s, out, depth + 1);
                    }
                }
                _ => walk(args, &here, scope, out, depth + 1),
            }
        }
        // Objects with several keys are literal data in JSON Logic; nothing to check.
        _ => {}
    }
}

fn record_var(args: &Value, ptr: &str, scope: &Scope, out: &mut LogicScan) {
    let name = match args {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => match a.first() {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            None => String::new(),
            Some(other) => {
                // A computed variable name: cannot be checked statically.
                walk(other, ptr, scope, out, 1);
                return;
            }
        },
        Value::Null => String::new(),
        other => {
            walk(other, ptr, scope, out, 1);
            return;
        }
    };
    let name = normalise(&name);
    match scope {
        Scope::Root => {
            if !name.is_empty() {
                out.root_vars.entry(name).or_insert_with(|| ptr.to_string());
            }
        }
        Scope::Item(Some(base)) => {
            // In reduce, `current` is the item and `accumulator` the running value.
            let rel = name.strip_prefix("current.").map(str::to_string).or_else(|| {
                if name == "current" || name == "accumulator" || name.starts_with("accumulator.") { None } else { Some(name.clone()) }
            });
            if let Some(rel) = rel
                && !rel.is_empty() {
                    out.item_vars.entry(format!("{base}.{rel}")).or_insert_with(|| ptr.to_string());
                }
        }
        Scope::Item(None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(rule: Value, data: Value) -> Result<Value, String> {
        let logic = compile(&rule)?;
        let arena = datalogic_rs::bumpalo::Bump::new();
        engine().evaluate(&logic, &data, &arena).map(|v| v.to_serde_value()).map_err(|e| e.to_string())
    }

    #[test]
    fn date_operators_do_calendar_arithmetic() {
        assert_eq!(eval(json!({"days_between": ["2026-02-27", "2026-03-02"]}), json!({})).unwrap(), json!(3));
        assert_eq!(eval(json!({"add_days": ["2026-12-31", 1]}), json!({})).unwrap(), json!("2027-01-01"));
        assert_eq!(eval(json!({"add_months": ["2026-01-31", 1]}), json!({})).unwrap(), json!("2026-02-28"));
        assert_eq!(eval(json!({"add_months": ["2026-03-15", -3]}), json!({})).unwrap(), json!("2025-12-15"));
        assert_eq!(eval(json!({"years_between": ["2008-03-03", "2026-03-02"]}), json!({})).unwrap(), json!(17));
        assert_eq!(eval(json!({"years_between": ["2008-03-02", "2026-03-02"]}), json!({})).unwrap(), json!(18));
        assert_eq!(
            eval(json!({"date_time_before": ["2026-03-02T09:00:00+08:00", "2026-03-02T02:00:00Z"]}), json!({})).unwrap(),
            json!(true)
        );
    }

    #[test]
    fn date_operators_refuse_values_that_are_not_dates() {
        let err = eval(json!({"days_between": [{"var": "a"}, "2026-01-01"]}), json!({"a": "yesterday"})).unwrap_err();
        assert!(err.contains("not a date"), "{err}");
    }

    #[test]
    fn division_by_zero_is_an_error_not_a_number() {
        assert!(eval(json!({"/": [{"var": "a"}, {"var": "b"}]}), json!({"a": 1.5, "b": 0})).is_err());
    }

    #[test]
    fn scan_finds_fields_read_at_the_root_and_inside_iterators() {
        let s = scan(&json!({"and": [
            {"<=": [{"var": "start_date"}, {"var": "end_date"}]},
            {"all": [{"var": "activities"}, {">": [{"var": "hours"}, 0]}]},
            {"reduce": [{"var": "items"}, {"+": [{"var": "current.amount"}, {"var": "accumulator"}]}, 0]}
        ]}));
        assert!(s.faults.is_empty(), "{:?}", s.faults);
        assert_eq!(s.root_vars.keys().cloned().collect::<Vec<_>>(), ["activities", "end_date", "items", "start_date"]);
        assert_eq!(s.item_vars.keys().cloned().collect::<Vec<_>>(), ["activities.*.hours", "items.*.amount"]);
    }

    #[test]
    fn scan_reports_unknown_operators_and_constant_division_by_zero() {
        let s = scan(&json!({"and": [{"frobnicate": [1]}, {"/": [{"var": "a"}, 0]}]}));
        let messages: Vec<_> = s.faults.iter().map(|(p, m)| format!("{p} {m}")).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("/and/0/frobnicate unknown operator"), "{messages:?}");
        assert!(messages[1].contains("constant 0"), "{messages:?}");
    }
}
