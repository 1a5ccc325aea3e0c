//! JSON Logic for cross-field rules and computed values, plus carimbo's date, time and number
//! operators.
//!
//! Rules are evaluated by datalogic-rs (a maintained JSON Logic engine) and compiled once when a
//! definition loads. JSON Logic has no calendar or clock arithmetic, and form rules are mostly
//! about dates and times, so carimbo registers operators built on chrono (`days_between`,
//! `add_days`, `add_months`, `years_between`, `date_time_before`, `minutes_between`,
//! `hours_between`, `time_before`, `time_at_or_before`, `date_time`) and rounding (`round`,
//! `floor`, `ceil`, with decimal places).
//!
//! JSON Logic turns text into numbers in arithmetic (`{"*": ["3", 2]}` is 6), which hides a
//! field of the wrong type until the day it holds "3 h". carimbo's arithmetic takes numbers
//! only: `compile` has the engine run carimbo's own `+ - * / % min max floor ceil`, which refuse
//! text with a `LogicFault` a person can read in zh / pt / en. This module also walks a rule
//! statically to find the fields it reads and the values it feeds to numeric and time
//! operators, which `carimbo check` needs to report rules naming missing fields or mixing text
//! into arithmetic.

use super::problem_detail::Detail;
use crate::i18n::Lang;
use chrono::{DateTime, Datelike, Duration, FixedOffset, Months, NaiveDate, NaiveDateTime, Timelike};
use datalogic_rs::operator::EvalContext;
use datalogic_rs::{ArenaExt, CustomOperator, DataValue, DivisionByZeroHandling, Engine, Error as LogicError, ErrorKind, EvaluationConfig, Logic};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, OnceLock};

type Arena = datalogic_rs::bumpalo::Bump;

/// Macau keeps UTC+8 all year (no daylight saving): local times in forms are Macau times.
pub const MACAU_OFFSET_SECONDS: i32 = 8 * 3600;

/// The instant as Macau local date and time.
pub fn macau_local(instant: DateTime<chrono::Utc>) -> NaiveDateTime {
    let offset = FixedOffset::east_opt(MACAU_OFFSET_SECONDS).expect("+08:00 is a valid offset");
    instant.with_timezone(&offset).naive_local()
}

/// Arithmetic operators carimbo runs itself (numbers only), by the name authors write and the
/// internal name the engine knows them by. Built-in names cannot be overridden in datalogic-rs,
/// so `compile` renames them; the `·` keeps an author from writing the internal name.
const STRICT_ARITHMETIC: [(&str, &str); 9] =
    [("+", "·+"), ("-", "·-"), ("*", "·*"), ("/", "·/"), ("%", "·%"), ("min", "·min"), ("max", "·max"), ("floor", "·floor"), ("ceil", "·ceil")];

/// The shared engine: configured once, `Send + Sync`, reused by every form.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        // A division by zero must surface as an error the author sees, not a silent huge number.
        let config = EvaluationConfig::default().with_division_by_zero(DivisionByZeroHandling::ThrowError).with_max_recursion_depth(64);
        let mut builder = Engine::builder()
            .with_config(config)
            .add_operator("days_between", DaysBetween)
            .add_operator("add_days", AddDays)
            .add_operator("add_months", AddMonths)
            .add_operator("years_between", YearsBetween)
            .add_operator("date_time_before", DateTimeBefore)
            .add_operator("minutes_between", Between { op: "minutes_between", unit_seconds: 60.0 })
            .add_operator("hours_between", Between { op: "hours_between", unit_seconds: 3600.0 })
            .add_operator("time_before", TimeOrder { op: "time_before", or_at: false })
            .add_operator("time_at_or_before", TimeOrder { op: "time_at_or_before", or_at: true })
            .add_operator("date_time", DateTimeOf)
            .add_operator("round", Rounding { op: "round", mode: Round::Nearest });
        for (name, internal) in STRICT_ARITHMETIC {
            builder = match name {
                "floor" => builder.add_operator(internal, Rounding { op: "floor", mode: Round::Down }),
                "ceil" => builder.add_operator(internal, Rounding { op: "ceil", mode: Round::Up }),
                _ => builder.add_operator(internal, Arithmetic { op: name }),
            };
        }
        builder.build()
    })
}

/// Operators a rule may use: the engine's built-ins plus carimbo's own.
pub fn known_operators() -> &'static BTreeSet<String> {
    static OPS: OnceLock<BTreeSet<String>> = OnceLock::new();
    OPS.get_or_init(|| {
        let e = engine();
        e.builtin_operator_names().map(str::to_string).chain(e.custom_operator_names().map(str::to_string)).filter(|n| !n.contains('·')).collect()
    })
}

/// Compiles a rule; the error text is the engine's, for the author.
pub fn compile(rule: &Value) -> Result<Arc<Logic>, String> {
    engine().compile_arc(&strict(rule, 0)).map_err(|e| e.to_string())
}

/// The rule with JSON Logic's coercing arithmetic replaced by carimbo's numbers-only operators.
fn strict(v: &Value, depth: usize) -> Value {
    if depth > 128 {
        return v.clone();
    }
    match v {
        Value::Array(items) => Value::Array(items.iter().map(|x| strict(x, depth + 1)).collect()),
        Value::Object(m) if m.len() == 1 => {
            let (op, args) = m.iter().next().expect("one entry");
            let name = STRICT_ARITHMETIC.iter().find(|(n, _)| n == op).map_or(op.as_str(), |(_, internal)| internal);
            let mut out = serde_json::Map::new();
            out.insert(name.to_string(), strict(args, depth + 1));
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Parses the date part of `YYYY-MM-DD` or an RFC 3339 date-time.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d);
    }
    DateTime::parse_from_rfc3339(s).ok().map(|dt| dt.date_naive())
}

/// Seconds since midnight of a time of day as people write it: `HH:MM` or `HH:MM:SS`, 24-hour
/// clock, two digits each, from `00:00` to `23:59:59`; `24:00` (or `24:00:00`) is the end of
/// the day, for a period that ends at midnight. No offset: times in forms are Macau times.
pub fn parse_time_of_day(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if !(b.len() == 5 || b.len() == 8) || b[2] != b':' || (b.len() == 8 && b[5] != b':') {
        return None;
    }
    let two = |i: usize| -> Option<u32> {
        let (x, y) = (b[i], b[i + 1]);
        (x.is_ascii_digit() && y.is_ascii_digit()).then(|| u32::from(x - b'0') * 10 + u32::from(y - b'0'))
    };
    let (h, m) = (two(0)?, two(3)?);
    let sec = if b.len() == 8 { two(6)? } else { 0 };
    if h == 24 && m == 0 && sec == 0 {
        return Some(86_400);
    }
    (h < 24 && m < 60 && sec < 60).then_some(h * 3600 + m * 60 + sec)
}

/// A Macau local date and time: `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` (what `date_time`
/// and `context.now` give), or an RFC 3339 date-time with an offset, converted to Macau time.
pub fn parse_local_date_time(s: &str) -> Option<NaiveDateTime> {
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, format) {
            return Some(dt);
        }
    }
    DateTime::parse_from_rfc3339(s).ok().map(|dt| macau_local(dt.with_timezone(&chrono::Utc)))
}

/// A Macau local date-time as carimbo writes it: to the minute, seconds only when not zero.
pub fn format_local_date_time(dt: NaiveDateTime) -> String {
    if dt.second() == 0 { dt.format("%Y-%m-%dT%H:%M").to_string() } else { dt.format("%Y-%m-%dT%H:%M:%S").to_string() }
}

/// Why an operator could not give a value, in words a person can act on (zh / pt / en). The
/// engine carries it as a typed error source, so validation finds it by type, not by text.
#[derive(Debug, Clone, PartialEq)]
pub enum LogicFault {
    /// A number was needed; text (even "3"), a boolean, a list or an object was given.
    NotANumber {
        op: &'static str,
        arg: usize,
        found: String,
    },
    NotAWholeNumber {
        op: &'static str,
        arg: usize,
        found: String,
    },
    NotADate {
        op: &'static str,
        arg: usize,
        found: String,
    },
    /// Neither a time of day (`HH:MM`) nor a date and time.
    NotATime {
        op: &'static str,
        arg: usize,
        found: String,
    },
    /// A time of day compared with a date and time.
    MixedMoments {
        op: &'static str,
    },
    BadPlaces {
        op: &'static str,
        found: String,
    },
    DivisionByZero {
        op: &'static str,
    },
    Missing {
        op: &'static str,
        arg: usize,
    },
    OutOfRange {
        op: &'static str,
    },
}

impl LogicFault {
    /// Whether the fault is about a value of the wrong kind (what the person typed, or the
    /// author's choice of operator), rather than the rule's arithmetic.
    pub fn is_wrong_kind(&self) -> bool {
        matches!(
            self,
            LogicFault::NotANumber { .. }
                | LogicFault::NotAWholeNumber { .. }
                | LogicFault::NotADate { .. }
                | LogicFault::NotATime { .. }
                | LogicFault::MixedMoments { .. }
        )
    }

    /// The fault inside an engine error, if the error came from one of carimbo's operators.
    pub fn of(e: &LogicError) -> Option<&LogicFault> {
        match &e.kind {
            ErrorKind::Custom(source) => source.downcast_ref::<LogicFault>(),
            _ => None,
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        use LogicFault::*;
        let (zh, pt, en) = match self {
            NotANumber { op, arg, found } => (
                format!("「{op}」的第 {arg} 個參數必須是數字，現在是 {found}（文字不會自動轉為數字）"),
                format!("«{op}» precisa de um número no argumento {arg}, recebeu {found} (o texto nunca é convertido em número)"),
                format!("{op} needs a number as argument {arg}, found {found} (text is never turned into a number)"),
            ),
            NotAWholeNumber { op, arg, found } => (
                format!("「{op}」的第 {arg} 個參數必須是整數，現在是 {found}"),
                format!("«{op}» precisa de um número inteiro no argumento {arg}, recebeu {found}"),
                format!("{op}: argument {arg} is not a whole number, found {found}"),
            ),
            NotADate { op, arg, found } => (
                format!("「{op}」的第 {arg} 個參數必須是日期（YYYY-MM-DD），現在是 {found}"),
                format!("«{op}» precisa de uma data (AAAA-MM-DD) no argumento {arg}, recebeu {found}"),
                format!("{op}: argument {arg} is not a date (YYYY-MM-DD), found {found}"),
            ),
            NotATime { op, arg, found } => (
                format!("「{op}」的第 {arg} 個參數必須是時間（HH:MM）或日期時間，現在是 {found}"),
                format!("«{op}» precisa de uma hora (HH:MM) ou de uma data e hora no argumento {arg}, recebeu {found}"),
                format!("{op}: argument {arg} is not a time of day (HH:MM) or a date and time, found {found}"),
            ),
            MixedMoments { op } => (
                format!("「{op}」不能比較時間與日期時間：兩者都寫時間，或都以 date_time 加上日期"),
                format!("«{op}» não compara uma hora com uma data e hora: dê as duas como horas, ou as duas com a data (date_time)"),
                format!("{op} cannot compare a time of day with a date and time: give both as times, or both with their dates (date_time)"),
            ),
            BadPlaces { op, found } => (
                format!("「{op}」的小數位數必須是 0 至 10 的整數，現在是 {found}"),
                format!("«{op}»: o número de casas decimais tem de ser um inteiro de 0 a 10, recebeu {found}"),
                format!("{op}: the decimal places must be a whole number from 0 to 10, found {found}"),
            ),
            DivisionByZero { op } => (format!("「{op}」除以零"), format!("«{op}» divide por zero"), format!("{op} divides by zero")),
            Missing { op, arg } => {
                (format!("「{op}」缺少第 {arg} 個參數"), format!("«{op}»: falta o argumento {arg}"), format!("{op}: argument {arg} is missing"))
            }
            OutOfRange { op } => {
                (format!("「{op}」的結果超出範圍"), format!("«{op}»: o resultado está fora dos limites"), format!("{op}: the result is out of range"))
            }
        };
        match lang {
            Lang::Zh => zh,
            Lang::Pt => pt,
            Lang::En => en,
        }
    }
}

impl fmt::Display for LogicFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(Lang::En))
    }
}

impl std::error::Error for LogicFault {}

fn fault(f: LogicFault) -> LogicError {
    LogicError::wrap(f)
}

/// A value as a message shows it: text in quotes (cut short), other values by kind.
fn shown(v: Option<&DataValue>) -> String {
    match v {
        None | Some(DataValue::Null) => "nothing".into(),
        Some(DataValue::String(s)) => {
            let cut: String = s.chars().take(40).collect();
            if cut.len() < s.len() { format!("\"{cut}…\"") } else { format!("\"{cut}\"") }
        }
        Some(DataValue::Bool(b)) => b.to_string(),
        Some(DataValue::Number(n)) => {
            let f = n.as_f64();
            if f.fract() == 0.0 && f.abs() < 9e15 { (f as i64).to_string() } else { f.to_string() }
        }
        Some(DataValue::Array(_)) => "a list".into(),
        Some(_) => "an object".into(),
    }
}

fn date_arg<'a>(args: &[&'a DataValue<'a>], i: usize, op: &'static str) -> Result<NaiveDate, LogicError> {
    args.get(i).and_then(|v| v.as_str()).and_then(parse_date).ok_or_else(|| fault(LogicFault::NotADate { op, arg: i + 1, found: shown(args.get(i).copied()) }))
}

fn int_arg<'a>(args: &[&'a DataValue<'a>], i: usize, op: &'static str) -> Result<i64, LogicError> {
    let v = args.get(i).ok_or_else(|| fault(LogicFault::Missing { op, arg: i + 1 }))?;
    match v {
        DataValue::Number(n) if n.as_f64().fract() == 0.0 && n.as_f64().abs() < 1e9 => Ok(n.as_f64() as i64),
        _ => Err(fault(LogicFault::NotAWholeNumber { op, arg: i + 1, found: shown(Some(v)) })),
    }
}

/// A number argument: numbers, and `null` (an optional field left empty) as 0. Text is never a
/// number here, even when it looks like one.
fn number_arg(v: &DataValue, op: &'static str, arg: usize) -> Result<f64, LogicError> {
    match v {
        DataValue::Number(n) => Ok(n.as_f64()),
        DataValue::Null => Ok(0.0),
        other => Err(fault(LogicFault::NotANumber { op, arg, found: shown(Some(other)) })),
    }
}

/// Whole results as integers, so `2.0` prints and compares as `2`.
fn number_out<'a>(arena: &'a Arena, f: f64, op: &'static str) -> Result<&'a DataValue<'a>, LogicError> {
    if !f.is_finite() {
        return Err(fault(LogicFault::OutOfRange { op }));
    }
    Ok(if f.fract() == 0.0 && f.abs() < 9e15 { arena.i64(f as i64) } else { arena.f64(f) })
}

fn date_out<'a>(arena: &'a Arena, d: Option<NaiveDate>, op: &'static str) -> Result<&'a DataValue<'a>, LogicError> {
    let d = d.ok_or_else(|| fault(LogicFault::OutOfRange { op }))?;
    Ok(arena.string(&d.format("%Y-%m-%d").to_string()))
}

/// `+ - * / % min max` over numbers. One list argument is folded (`{"+": {"map": …}}` sums
/// the list), as JSON Logic does.
struct Arithmetic {
    op: &'static str,
}

impl Arithmetic {
    fn operands(&self, args: &[&DataValue]) -> Result<Vec<f64>, LogicError> {
        let items: Vec<&DataValue> = match args {
            [DataValue::Array(list)] => list.iter().collect(),
            _ => args.to_vec(),
        };
        items.iter().enumerate().map(|(i, v)| number_arg(v, self.op, i + 1)).collect()
    }
}

impl CustomOperator for Arithmetic {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a Arena) -> Result<&'a DataValue<'a>, LogicError> {
        let op = self.op;
        let n = self.operands(args)?;
        let result = match op {
            "+" => n.iter().sum(),
            "*" => n.iter().product(),
            "-" => match n.as_slice() {
                [] => return Err(fault(LogicFault::Missing { op, arg: 1 })),
                [x] => -x,
                [x, rest @ ..] => rest.iter().fold(*x, |a, b| a - b),
            },
            "/" | "%" => {
                let [x, rest @ ..] = n.as_slice() else { return Err(fault(LogicFault::Missing { op, arg: 1 })) };
                if rest.is_empty() {
                    return Err(fault(LogicFault::Missing { op, arg: 2 }));
                }
                let mut acc = *x;
                for d in rest {
                    if *d == 0.0 {
                        return Err(fault(LogicFault::DivisionByZero { op }));
                    }
                    acc = if op == "/" { acc / d } else { acc % d };
                }
                acc
            }
            "min" | "max" => {
                let pick = if op == "min" { f64::min } else { f64::max };
                match n.split_first() {
                    None => return Ok(arena.null()),
                    Some((first, rest)) => rest.iter().fold(*first, |a, b| pick(a, *b)),
                }
            }
            _ => unreachable!("registered for the listed operators only"),
        };
        number_out(arena, result, op)
    }
}

#[derive(Clone, Copy)]
enum Round {
    Nearest,
    Down,
    Up,
}

/// `{"round": [X, places]}`, `floor`, `ceil`: places 0–10, default 0. `round` takes halves away
/// from zero (2.5 → 3, -2.5 → -3), as people round by hand.
struct Rounding {
    op: &'static str,
    mode: Round,
}

impl CustomOperator for Rounding {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a Arena) -> Result<&'a DataValue<'a>, LogicError> {
        let op = self.op;
        let x = number_arg(args.first().copied().ok_or_else(|| fault(LogicFault::Missing { op, arg: 1 }))?, op, 1)?;
        let places = match args.get(1) {
            None => 0,
            Some(DataValue::Number(n)) if n.as_f64().fract() == 0.0 && (0.0..=10.0).contains(&n.as_f64()) => n.as_f64() as i32,
            Some(other) => return Err(fault(LogicFault::BadPlaces { op, found: shown(Some(other)) })),
        };
        let scale = 10f64.powi(places);
        // Decimal inputs carry binary noise (1.005 is 1.00499…): round a scaled value that is
        // first brought to 9 significant decimals, so 1.005 rounds to 1.01 as written.
        let scaled = ((x * scale) * 1e9).round() / 1e9;
        let r = match self.mode {
            Round::Nearest => scaled.round(),
            Round::Down => scaled.floor(),
            Round::Up => scaled.ceil(),
        };
        number_out(arena, r / scale, op)
    }
}

/// A time of day or a local date-time, for the time operators.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Moment {
    Time(u32),
    At(NaiveDateTime),
}

fn moment_arg(args: &[&DataValue], i: usize, op: &'static str) -> Result<Moment, LogicError> {
    let v = args.get(i).copied();
    let s = v.and_then(|v| v.as_str());
    if let Some(t) = s.and_then(parse_time_of_day) {
        return Ok(Moment::Time(t));
    }
    s.and_then(parse_local_date_time).map(Moment::At).ok_or_else(|| fault(LogicFault::NotATime { op, arg: i + 1, found: shown(v) }))
}

fn two_moments(args: &[&DataValue], op: &'static str) -> Result<(Moment, Moment), LogicError> {
    let (a, b) = (moment_arg(args, 0, op)?, moment_arg(args, 1, op)?);
    match (a, b) {
        (Moment::Time(_), Moment::Time(_)) | (Moment::At(_), Moment::At(_)) => Ok((a, b)),
        _ => Err(fault(LogicFault::MixedMoments { op })),
    }
}

/// `minutes_between` / `hours_between`: B − A, negative when B is earlier.
struct Between {
    op: &'static str,
    unit_seconds: f64,
}

impl CustomOperator for Between {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a Arena) -> Result<&'a DataValue<'a>, LogicError> {
        let seconds = match two_moments(args, self.op)? {
            (Moment::Time(a), Moment::Time(b)) => f64::from(b) - f64::from(a),
            (Moment::At(a), Moment::At(b)) => (b - a).num_seconds() as f64,
            _ => unreachable!("two_moments returns two of a kind"),
        };
        // Hours of 20 minutes are 0.333…: kept to 6 decimals; `round` gives what the form shows.
        let value = ((seconds / self.unit_seconds) * 1e6).round() / 1e6;
        number_out(arena, value, self.op)
    }
}

/// `time_before` (A strictly earlier than B) and `time_at_or_before` (A not later than B).
struct TimeOrder {
    op: &'static str,
    or_at: bool,
}

impl CustomOperator for TimeOrder {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a Arena) -> Result<&'a DataValue<'a>, LogicError> {
        let (a, b) = two_moments(args, self.op)?;
        Ok(arena.bool(if self.or_at { a <= b } else { a < b }))
    }
}

/// `{"date_time": [date, time]}`: the Macau local date-time of a date at a time of day
/// (`2026-03-02` at `18:30` → `2026-03-02T18:30`; at `24:00` → the next day at `00:00`).
struct DateTimeOf;
impl CustomOperator for DateTimeOf {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a Arena) -> Result<&'a DataValue<'a>, LogicError> {
        let op = "date_time";
        let d = date_arg(args, 0, op)?;
        let v = args.get(1).copied();
        let t = v.and_then(|v| v.as_str()).and_then(parse_time_of_day).ok_or_else(|| fault(LogicFault::NotATime { op, arg: 2, found: shown(v) }))?;
        let at =
            d.and_hms_opt(0, 0, 0).and_then(|m| m.checked_add_signed(Duration::seconds(i64::from(t)))).ok_or_else(|| fault(LogicFault::OutOfRange { op }))?;
        Ok(arena.string(&format_local_date_time(at)))
    }
}

struct DaysBetween;
impl CustomOperator for DaysBetween {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a Arena) -> Result<&'a DataValue<'a>, LogicError> {
        let (a, b) = (date_arg(args, 0, "days_between")?, date_arg(args, 1, "days_between")?);
        Ok(arena.i64((b - a).num_days()))
    }
}

struct AddDays;
impl CustomOperator for AddDays {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a Arena) -> Result<&'a DataValue<'a>, LogicError> {
        let d = date_arg(args, 0, "add_days")?;
        let n = int_arg(args, 1, "add_days")?;
        date_out(arena, d.checked_add_signed(chrono::Duration::days(n)), "add_days")
    }
}

struct AddMonths;
impl CustomOperator for AddMonths {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a Arena) -> Result<&'a DataValue<'a>, LogicError> {
        let d = date_arg(args, 0, "add_months")?;
        let n = int_arg(args, 1, "add_months")?;
        let months = Months::new(n.unsigned_abs().min(u32::MAX as u64) as u32);
        let out = if n >= 0 { d.checked_add_months(months) } else { d.checked_sub_months(months) };
        date_out(arena, out, "add_months")
    }
}

struct YearsBetween;
impl CustomOperator for YearsBetween {
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a Arena) -> Result<&'a DataValue<'a>, LogicError> {
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
    fn evaluate<'a>(&self, args: &[&'a DataValue<'a>], _: &mut EvalContext<'_, 'a>, arena: &'a Arena) -> Result<&'a DataValue<'a>, LogicError> {
        let instant = |i: usize| {
            args.get(i)
                .and_then(|v| v.as_str())
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .ok_or_else(|| fault(LogicFault::NotATime { op: "date_time_before", arg: i + 1, found: shown(args.get(i).copied()) }))
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
    pub faults: Vec<(String, Detail)>,
    /// (pointer, message) for each constant text or boolean given to arithmetic.
    pub text_in_arithmetic: Vec<(String, Detail)>,
    /// (pointer, message) for each constant a time or rounding operator cannot take.
    pub bad_constants: Vec<(String, Detail)>,
    /// Variables given to numeric or time operators, for checking against the field types.
    pub operands: Vec<Operand>,
}

/// What an operator needs of an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    Number,
    /// A time of day or a date and time (text).
    Time,
}

/// A variable read as an operator's argument: `path` as in `root_vars` / `item_vars`.
#[derive(Debug, Clone)]
pub struct Operand {
    pub path: String,
    pub pointer: String,
    pub op: String,
    pub wants: Wants,
}

/// Operators that take numbers (carimbo's arithmetic and rounding).
const NUMERIC_OPS: [&str; 10] = ["+", "-", "*", "/", "%", "min", "max", "round", "floor", "ceil"];
/// Operators that take times of day or local date-times.
const TIME_OPS: [&str; 4] = ["minutes_between", "hours_between", "time_before", "time_at_or_before"];

impl LogicScan {
    /// Every top-level field the logic depends on (first segment of each data path).
    pub fn top_level_fields(&self) -> BTreeSet<String> {
        self.root_vars.keys().chain(self.item_vars.keys()).filter_map(|p| p.split('.').next()).filter(|s| !s.is_empty()).map(str::to_string).collect()
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
    path.split('.').map(|seg| if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) { "*" } else { seg }).collect::<Vec<_>>().join(".")
}

fn walk(v: &Value, ptr: &str, scope: &Scope, out: &mut LogicScan, depth: usize) {
    if depth > 64 {
        out.faults.push((ptr.to_string(), Detail::RuleTooDeep));
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
                out.faults.push((here.clone(), Detail::UnknownOperator { op: op.clone() }));
            }
            match op.as_str() {
                "var" => record_var(args, &here, scope, out),
                "/" | "%" => {
                    if let Value::Array(a) = args
                        && a.get(1).and_then(Value::as_f64) == Some(0.0)
                    {
                        out.faults.push((here.clone(), Detail::DividesByConstantZero { op: op.clone() }));
                    }
                    walk(args, &here, scope, out, depth + 1);
                }
                op if ITERATORS.contains(&op) || op == "reduce" => {
                    let Value::Array(a) = args else {
                        out.faults.push((here, Detail::IteratorNeedsArray { op: op.to_string() }));
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
                _ => {
                    check_operands(op, args, &here, scope, out);
                    walk(args, &here, scope, out, depth + 1)
                }
            }
        }
        // Objects with several keys are literal data in JSON Logic; nothing to check.
        _ => {}
    }
}

/// Constants and variables given to numeric and time operators: text in arithmetic is refused
/// here where it is written, variables are checked against the schema by the caller.
fn check_operands(op: &str, args: &Value, here: &str, scope: &Scope, out: &mut LogicScan) {
    let numeric = NUMERIC_OPS.contains(&op);
    let time = TIME_OPS.contains(&op) || op == "date_time";
    if !numeric && !time {
        return;
    }
    let list: Vec<(String, &Value)> = match args {
        Value::Array(a) => a.iter().enumerate().map(|(i, v)| (format!("{here}/{i}"), v)).collect(),
        other => vec![(here.to_string(), other)],
    };
    for (i, (at, a)) in list.into_iter().enumerate() {
        if matches!(op, "round" | "floor" | "ceil") && i == 1 {
            let places_ok = a.as_f64().is_some_and(|f| f.fract() == 0.0 && (0.0..=10.0).contains(&f));
            if !places_ok && !a.is_object() {
                out.bad_constants.push((at, Detail::DecimalPlaces { op: op.to_string(), found: a.to_string() }));
            }
            continue;
        }
        if op == "date_time" && i == 0 {
            continue;
        }
        match a {
            Value::String(s) if numeric => out.text_in_arithmetic.push((at, Detail::TextInArithmetic { op: op.to_string(), text: s.clone() })),
            Value::Bool(b) if numeric => out.text_in_arithmetic.push((at, Detail::BooleanInArithmetic { op: op.to_string(), value: *b })),
            Value::String(s) if time => {
                let ok = parse_time_of_day(s).is_some() || (op != "date_time" && parse_local_date_time(s).is_some());
                if !ok {
                    out.bad_constants.push((at, Detail::NotATimeConstant { op: op.to_string(), found: s.clone(), date_time_allowed: op != "date_time" }));
                }
            }
            Value::Number(_) | Value::Bool(_) if time => {
                out.bad_constants.push((at, Detail::TimeOperatorGivenNonText { op: op.to_string(), found: a.to_string() }))
            }
            Value::Object(m) if m.len() == 1 => {
                if let Some(path) = m.get("var").and_then(|v| operand_path(v, scope)) {
                    out.operands.push(Operand {
                        path,
                        pointer: format!("{at}/var"),
                        op: op.to_string(),
                        wants: if numeric { Wants::Number } else { Wants::Time },
                    });
                }
            }
            _ => {}
        }
    }
}

/// The data path a `var` names (as `record_var` records it), when it is a constant name.
fn operand_path(var_args: &Value, scope: &Scope) -> Option<String> {
    let name = match var_args {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.first()?.as_str()?.to_string(),
        _ => return None,
    };
    let name = normalise(&name);
    match scope {
        Scope::Root => (!name.is_empty()).then_some(name),
        Scope::Item(Some(base)) => {
            let rel = match name.strip_prefix("current.") {
                Some(r) => r.to_string(),
                None if name == "current" || name == "accumulator" || name.starts_with("accumulator.") => return None,
                None => name,
            };
            (!rel.is_empty()).then(|| format!("{base}.{rel}"))
        }
        Scope::Item(None) => None,
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
            let rel = name
                .strip_prefix("current.")
                .map(str::to_string)
                .or_else(|| if name == "current" || name == "accumulator" || name.starts_with("accumulator.") { None } else { Some(name.clone()) });
            if let Some(rel) = rel
                && !rel.is_empty()
            {
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
        assert_eq!(eval(json!({"date_time_before": ["2026-03-02T09:00:00+08:00", "2026-03-02T02:00:00Z"]}), json!({})).unwrap(), json!(true));
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

    #[test]
    fn times_of_day_are_written_hh_mm_with_optional_seconds_and_24_00_ends_the_day() {
        for (text, seconds) in [
            ("00:00", Some(0)),
            ("18:30", Some(66_600)),
            ("18:30:15", Some(66_615)),
            ("23:59:59", Some(86_399)),
            ("24:00", Some(86_400)),
            ("24:00:00", Some(86_400)),
        ] {
            assert_eq!(parse_time_of_day(text), seconds, "{text}");
        }
        for bad in ["6pm", "9:30", "18h30", "24:01", "25:00", "18:60", "18:30+08:00", "18:30:5", "", "1830", "18:30:60"] {
            assert_eq!(parse_time_of_day(bad), None, "{bad} must be refused");
        }
    }

    #[test]
    fn time_operators_count_minutes_and_hours_and_compare_times_and_dates_with_times() {
        assert_eq!(eval(json!({"minutes_between": ["18:00", "21:30"]}), json!({})).unwrap(), json!(210));
        assert_eq!(eval(json!({"minutes_between": ["21:30", "18:00"]}), json!({})).unwrap(), json!(-210));
        assert_eq!(eval(json!({"hours_between": ["18:00", "20:15"]}), json!({})).unwrap(), json!(2.25));
        assert_eq!(eval(json!({"hours_between": ["19:00:00", "24:00"]}), json!({})).unwrap(), json!(5));
        assert_eq!(eval(json!({"hours_between": ["2026-03-05T22:00", "2026-03-06T01:30"]}), json!({})).unwrap(), json!(3.5));
        assert_eq!(eval(json!({"time_before": ["09:30", "18:00"]}), json!({})).unwrap(), json!(true));
        assert_eq!(eval(json!({"time_before": ["18:00", "18:00"]}), json!({})).unwrap(), json!(false));
        assert_eq!(eval(json!({"time_at_or_before": ["18:00", "18:00:00"]}), json!({})).unwrap(), json!(true));
        assert_eq!(eval(json!({"date_time": ["2026-03-05", "24:00"]}), json!({})).unwrap(), json!("2026-03-06T00:00"));
        assert_eq!(eval(json!({"date_time": ["2026-03-05", "18:30:15"]}), json!({})).unwrap(), json!("2026-03-05T18:30:15"));
        // A date-time with an offset is read in Macau time: 10:00Z is 18:00 in Macau.
        assert_eq!(eval(json!({"time_at_or_before": ["2026-03-05T18:00", "2026-03-05T10:00:00Z"]}), json!({})).unwrap(), json!(true));
    }

    #[test]
    fn time_operators_refuse_values_that_are_not_times_with_a_message_in_three_languages() {
        let fault_of = |rule: Value, data: Value| -> LogicFault {
            let logic = compile(&rule).unwrap();
            let arena = datalogic_rs::bumpalo::Bump::new();
            let input: &DataValue = arena.alloc(DataValue::from_serde_value_in(&data, &arena));
            let e = engine().evaluate(&logic, input, &arena).unwrap_err();
            LogicFault::of(&e).cloned().unwrap_or_else(|| panic!("not a carimbo fault: {e}"))
        };
        let f = fault_of(json!({"minutes_between": [{"var": "a"}, "18:00"]}), json!({"a": "6pm"}));
        assert_eq!(f, LogicFault::NotATime { op: "minutes_between", arg: 1, found: "\"6pm\"".into() });
        assert!(f.is_wrong_kind());
        assert!(f.message(Lang::Zh).contains("必須是時間"), "{}", f.message(Lang::Zh));
        assert!(f.message(Lang::Pt).contains("precisa de uma hora"), "{}", f.message(Lang::Pt));
        assert!(f.message(Lang::En).contains("not a time of day (HH:MM)"), "{}", f.message(Lang::En));
        let f = fault_of(json!({"time_before": ["18:00", "2026-03-05T19:00"]}), json!({}));
        assert_eq!(f, LogicFault::MixedMoments { op: "time_before" });
    }

    #[test]
    fn round_floor_and_ceil_take_decimal_places_and_round_halves_away_from_zero() {
        for (rule, want) in [
            (json!({"round": [2.5]}), json!(3)),
            (json!({"round": [-2.5]}), json!(-3)),
            (json!({"round": [1.666667, 2]}), json!(1.67)),
            (json!({"round": [1.005, 2]}), json!(1.01)),
            (json!({"floor": [1.669, 2]}), json!(1.66)),
            (json!({"ceil": [1.661, 2]}), json!(1.67)),
            (json!({"floor": 7.9}), json!(7)),
            (json!({"ceil": [7.1]}), json!(8)),
            (json!({"round": [1234.5678, 0]}), json!(1235)),
        ] {
            assert_eq!(eval(rule.clone(), json!({})).unwrap(), want, "{rule}");
        }
        let err = eval(json!({"round": [1.5, {"var": "p"}]}), json!({"p": 11})).unwrap_err();
        assert!(err.contains("decimal places must be a whole number from 0 to 10"), "{err}");
    }

    #[test]
    fn arithmetic_takes_numbers_only_and_never_turns_text_into_a_number() {
        assert_eq!(eval(json!({"+": [1, 2.5, {"var": "missing"}]}), json!({})).unwrap(), json!(3.5), "null (an empty field) counts as 0");
        assert_eq!(
            eval(json!({"+": {"map": [{"var": "rows"}, {"var": "h"}]}}), json!({"rows": [{"h": 1.5}, {"h": 2}]})).unwrap(),
            json!(3.5),
            "a list is summed"
        );
        assert_eq!(eval(json!({"-": [10, 4, 1]}), json!({})).unwrap(), json!(5));
        assert_eq!(eval(json!({"-": [3]}), json!({})).unwrap(), json!(-3));
        assert_eq!(eval(json!({"*": [1.5, 4]}), json!({})).unwrap(), json!(6));
        assert_eq!(eval(json!({"%": [7, 4]}), json!({})).unwrap(), json!(3));
        assert_eq!(eval(json!({"max": [1, 7, 3]}), json!({})).unwrap(), json!(7));
        assert_eq!(
            eval(json!({"reduce": [{"var": "xs"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}), json!({"xs": [1, 2, 3]})).unwrap(),
            json!(6)
        );
        for (rule, data) in [
            (json!({"*": [{"var": "a"}, 2]}), json!({"a": "3"})),
            (json!({"+": [{"var": "a"}, 1]}), json!({"a": true})),
            (json!({"-": [{"var": "a"}, 1]}), json!({"a": "3 h"})),
            (json!({"min": [{"var": "a"}, 1]}), json!({"a": "0"})),
        ] {
            let err = eval(rule.clone(), data).unwrap_err();
            assert!(err.contains("needs a number") && err.contains("text is never turned into a number"), "{rule}: {err}");
        }
        let err = eval(json!({"/": [{"var": "a"}, {"var": "b"}]}), json!({"a": 1, "b": 0})).unwrap_err();
        assert!(err.contains("divides by zero"), "{err}");
    }

    #[test]
    fn scan_refuses_text_in_arithmetic_and_constants_time_operators_cannot_take() {
        let s = scan(&json!({"and": [
            {"*": ["3", {"var": "rate"}]},
            {"+": [true, 1]},
            {"minutes_between": ["6pm", {"var": "end_time"}]},
            {"round": [{"var": "x"}, 11]},
            {"date_time": [{"var": "date"}, "2026-03-02T18:00"]}
        ]}));
        let text: Vec<&str> = s.text_in_arithmetic.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(text, ["/and/0/*/0", "/and/1/+/0"], "{:?}", s.text_in_arithmetic);
        let bad: Vec<&str> = s.bad_constants.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(bad, ["/and/2/minutes_between/0", "/and/3/round/1", "/and/4/date_time/1"], "{:?}", s.bad_constants);
        let operands: Vec<(&str, Wants)> = s.operands.iter().map(|o| (o.path.as_str(), o.wants)).collect();
        assert_eq!(operands, [("rate", Wants::Number), ("end_time", Wants::Time), ("x", Wants::Number)]);
    }

    /// What docs/form-definitions.md says of comparisons, which stay JSON Logic's.
    #[test]
    fn comparisons_order_texts_as_text_numbers_as_numbers_and_a_number_with_a_numeric_text_by_converting_it() {
        assert_eq!(eval(json!({"<": ["2026-02-28", "2026-03-01"]}), json!({})).unwrap(), json!(true));
        assert_eq!(eval(json!({"<": ["09:30", "18:00"]}), json!({})).unwrap(), json!(true));
        assert_eq!(eval(json!({"<": [9, 10]}), json!({})).unwrap(), json!(true));
        assert_eq!(eval(json!({"<": [9, "10"]}), json!({})).unwrap(), json!(true));
        assert!(eval(json!({"<": [9, "ten"]}), json!({})).is_err(), "a text that is no number cannot be ordered with a number");
        assert!(eval(json!({">=": [9, "ten"]}), json!({})).is_err());
    }
}
