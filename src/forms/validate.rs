//! Validating a submission against a form: schema, computed values, cross-field rules.
//!
//! The result is either a `ValidSubmission` (the data with carimbo's computed values in it) or
//! the full list of `FieldError`s, each with the data pointer and a message in the reader's
//! language. Nothing is stopped at the first error: a person fixing a form wants to see all of it.
//! Computed values and rules that read a field that already failed the schema are skipped, so
//! one typo does not cascade into messages about unrelated rules.

use super::definition::{Computation, ComputedField, FormDefinition, Rule, field_path_of_pointer};
use super::logic;
use super::parse::depth;
use super::problem::ErrorCode;
use super::problem_detail::Detail;
use crate::i18n::Lang;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use datalogic_rs::DataValue;
use datalogic_rs::bumpalo::Bump;
use jsonschema::error::ValidationErrorKind;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Largest submission accepted, in bytes. A form with long free-text fields stays far below.
pub const MAX_SUBMISSION_BYTES: usize = 256 * 1024;
/// Deepest nesting of arrays/objects accepted in a submission (the deepest form needs 4).
pub const MAX_SUBMISSION_DEPTH: usize = 16;

pub mod codes {
    use super::ErrorCode;
    pub const TOO_LARGE: ErrorCode = ErrorCode("CARIMBO-E0100");
    pub const TOO_DEEP: ErrorCode = ErrorCode("CARIMBO-E0101");
    pub const NOT_JSON: ErrorCode = ErrorCode("CARIMBO-E0102");
    pub const DUPLICATE_MEMBER: ErrorCode = ErrorCode(crate::json_strict::DUPLICATE_MEMBER);
    pub const FIELD_INVALID: ErrorCode = ErrorCode("CARIMBO-E0110");
    pub const RULE_FAILED: ErrorCode = ErrorCode("CARIMBO-E0111");
    pub const COMPUTED_MISMATCH: ErrorCode = ErrorCode("CARIMBO-E0112");
    pub const RULE_ERROR: ErrorCode = ErrorCode("CARIMBO-E0113");
    pub const LOOKUP_NO_MATCH: ErrorCode = ErrorCode("CARIMBO-E0114");
    /// An operator met a value of the wrong kind (text where a number is needed, a time that is
    /// not `HH:MM`).
    pub const RULE_WRONG_KIND: ErrorCode = ErrorCode("CARIMBO-E0103");
}

/// What carimbo knows about the submission that the client must not supply: the date and the
/// time (Macau time, to the minute) and facts about the applicant from the staff directory.
/// The time comes in: this module reads no clock.
#[derive(Debug, Clone)]
pub struct ValidationContext {
    value: Value,
}

impl ValidationContext {
    /// The context at an instant: `context.today`, `context.now` (`YYYY-MM-DDTHH:MM`) and
    /// `context.time` (`HH:MM`) in Macau time.
    pub fn at(now: DateTime<Utc>, applicant: Map<String, Value>) -> Self {
        Self::local(logic::macau_local(now), applicant)
    }

    /// The context of a day whose time is not known (tests, tools): now is its start, 00:00.
    pub fn new(today: NaiveDate, applicant: Map<String, Value>) -> Self {
        Self::local(today.and_time(NaiveTime::MIN), applicant)
    }

    fn local(now: NaiveDateTime, applicant: Map<String, Value>) -> Self {
        let now = now.with_second(0).unwrap_or(now).with_nanosecond(0).unwrap_or(now);
        let mut m = Map::new();
        m.insert("today".into(), Value::String(now.format("%Y-%m-%d").to_string()));
        m.insert("now".into(), Value::String(now.format("%Y-%m-%dT%H:%M").to_string()));
        m.insert("time".into(), Value::String(now.format("%H:%M").to_string()));
        m.insert("applicant".into(), Value::Object(applicant));
        ValidationContext { value: Value::Object(m) }
    }

    /// From `{"today": "YYYY-MM-DD", "now": "YYYY-MM-DDTHH:MM", "applicant": {...}}` (examples
    /// and tests); `now` is optional and, when given, falls on `today`.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        Self::from_example(v).map_err(|detail| detail.to_string())
    }

    /// As `from_value`, with what is wrong as a definition problem's detail (an example's context).
    pub fn from_example(v: &Value) -> Result<Self, Box<Detail>> {
        let today = v.get("today").and_then(Value::as_str).and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()).ok_or(Detail::ExampleContextToday)?;
        let now = match v.get("now") {
            None => today.and_time(NaiveTime::MIN),
            Some(n) => {
                let at = n.as_str().and_then(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").ok()).ok_or(Detail::ExampleContextNow)?;
                if at.date() != today {
                    return Err(Box::new(Detail::ExampleContextNowNotToday { now: n.to_string(), today: today.to_string() }));
                }
                at
            }
        };
        let applicant = match v.get("applicant") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(Box::new(Detail::ExampleContextApplicant)),
        };
        Ok(Self::local(now, applicant))
    }

    pub fn as_value(&self) -> &Value {
        &self.value
    }

    /// The applicant's facts (`context.applicant`), for showing who applies.
    pub fn applicant(&self) -> Option<&Map<String, Value>> {
        self.value.get("applicant").and_then(Value::as_object)
    }
}

/// One thing wrong with a submission.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    /// JSON pointer into the submitted data (`""` for the whole submission).
    pub pointer: String,
    /// Stable short code: a schema keyword (`required`, `format` …), a rule id, or one of
    /// `computed-mismatch`, `lookup-no-match`, `rule-error`, `too-large`, `too-deep`, `not-json`,
    /// `duplicate-member` (an object repeats a name; `CARIMBO-E0120`).
    pub code: String,
    /// The CARIMBO error code of the class of error (docs/errors.md).
    pub error_code: &'static str,
    pub message: String,
}

/// Data that passed its form's schema and rules, with the computed values filled in. Only
/// `FormDefinition::validate` makes one, so a function taking it knows the data is sound.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidSubmission {
    pub form_id: String,
    pub form_version: String,
    pub form_hash: String,
    pub data: Value,
    pub computed: BTreeMap<String, Value>,
    /// The form's restricted fields (`layout.restricted`): the case commits to them with salts.
    pub restricted: Vec<String>,
    /// A salt per restricted field present in `data` (see `forms::commitment`), set by the
    /// service with `with_salts` before the engine records the data.
    #[serde(skip)]
    pub salts: BTreeMap<String, String>,
    /// The reference data (file name → SHA-256 hex) served when the case opens, pinned in its
    /// submission event like the definitions; set by the service with `with_reference`.
    #[serde(skip)]
    pub reference: BTreeMap<String, String>,
}

impl ValidSubmission {
    /// The restricted fields present (not null) in the data.
    pub fn restricted_present(&self) -> impl Iterator<Item = &str> {
        self.restricted.iter().map(String::as_str).filter(|f| self.data.get(*f).is_some_and(|v| !v.is_null()))
    }

    /// Sets the salt of every restricted field present from `salt_of(field)`.
    pub fn with_salts(mut self, salt_of: impl Fn(&str) -> String) -> Self {
        self.salts = self.restricted_present().map(|f| (f.to_string(), salt_of(f))).collect();
        self
    }

    /// The submission with the reference data the case is pinned to.
    pub fn with_reference(mut self, reference: BTreeMap<String, String>) -> Self {
        self.reference = reference;
        self
    }

    /// The data as it is signed and recorded: each restricted field a salted commitment.
    pub fn committed(&self) -> (Value, super::commitment::Disclosures) {
        super::commitment::commit(&self.data, self.restricted_present(), |f| self.salts.get(f).cloned().unwrap_or_default())
    }
}

/// Parses submitted bytes with the size and depth limits.
pub fn parse_submission(bytes: &[u8], lang: Lang) -> Result<Value, FieldError> {
    if bytes.len() > MAX_SUBMISSION_BYTES {
        return Err(whole(
            codes::TOO_LARGE,
            "too-large",
            lang,
            &[("limit", &(MAX_SUBMISSION_BYTES / 1024).to_string()), ("size", &(bytes.len() / 1024).to_string())],
        ));
    }
    // serde_json refuses nesting beyond 128 levels itself, with an error rather than a crash.
    let value: Value = crate::json_strict::from_slice(bytes).map_err(|e| {
        if let crate::json_strict::StrictJsonError::Duplicate { name, .. } = &e {
            let mut f = whole(codes::DUPLICATE_MEMBER, "duplicate-member", lang, &[("name", name)]);
            f.pointer = e.member_pointer().unwrap_or_default();
            f
        } else if e.to_string().contains("recursion limit") {
            whole(codes::TOO_DEEP, "too-deep", lang, &[("limit", &MAX_SUBMISSION_DEPTH.to_string())])
        } else {
            whole(codes::NOT_JSON, "not-json", lang, &[("detail", &e.to_string())])
        }
    })?;
    Ok(value)
}

fn whole(error_code: ErrorCode, code: &str, lang: Lang, args: &[(&str, &str)]) -> FieldError {
    FieldError { pointer: String::new(), code: code.into(), error_code: error_code.0, message: fill(message_template(code, lang), "", args) }
}

impl FormDefinition {
    /// Validates `data`; on success the data carries the computed values.
    pub fn validate(&self, data: &Value, ctx: &ValidationContext, lang: Lang) -> Result<ValidSubmission, Vec<FieldError>> {
        self.validate_showing_computed(data, ctx, lang).0
    }

    /// Validates `data` and also returns the values carimbo could compute, even when the data
    /// has errors: a page shows a person the working days of a period whose reason is missing.
    pub fn validate_showing_computed(
        &self,
        data: &Value,
        ctx: &ValidationContext,
        lang: Lang,
    ) -> (Result<ValidSubmission, Vec<FieldError>>, BTreeMap<String, Value>) {
        if depth(data) > MAX_SUBMISSION_DEPTH {
            return (Err(vec![whole(codes::TOO_DEEP, "too-deep", lang, &[("limit", &MAX_SUBMISSION_DEPTH.to_string())])]), BTreeMap::new());
        }
        let Value::Object(fields) = data else {
            return (Err(vec![whole(codes::NOT_JSON, "not-an-object", lang, &[])]), BTreeMap::new());
        };

        let mut errors = Vec::new();
        if !self.validator.is_valid(data) {
            for e in self.validator.iter_errors(data) {
                self.push_schema_error(&e, lang, &mut errors);
            }
        }
        let mut run = Run {
            // Top-level fields that failed the schema (or whose parts did).
            broken: errors.iter().filter_map(|e: &FieldError| e.pointer.split('/').nth(1).map(|s| s.replace("~1", "/").replace("~0", "~"))).collect(),
            broken_pointers: errors.iter().map(|e| e.pointer.clone()).collect(),
            whole_object_failed: errors.iter().any(|e| e.pointer.is_empty()),
            // The evaluation data: the fields, then computed values, then context and settings.
            eval: fields.clone(),
            computed: BTreeMap::new(),
            errors,
            lang,
        };
        run.eval.insert("context".into(), ctx.value.clone());
        run.eval.insert("settings".into(), Value::Object(self.settings.clone()));
        for c in &self.computed {
            match &c.row {
                None => self.compute_top_level(c, fields, &mut run),
                Some(list) => self.compute_rows(c, list, &mut run),
            }
        }
        if !self.rules.is_empty() && !run.whole_object_failed {
            self.check_rules(&mut run);
        }
        let shown = run.computed.clone();
        (self.finish(fields, run.computed, run.errors), shown)
    }

    fn compute_top_level(&self, c: &ComputedField, fields: &Map<String, Value>, run: &mut Run) {
        if run.whole_object_failed || c.reads.iter().any(|f| run.broken.contains(f)) {
            run.broken.insert(c.field.clone());
            return;
        }
        let pointer = format!("/{}", c.field);
        match self.compute(&c.computation, &run.eval, run.lang) {
            Ok(value) => {
                if let Some(claimed) = fields.get(&c.field) {
                    self.check_claim(claimed, &value, &pointer, run);
                }
                run.eval.insert(c.field.clone(), value.clone());
                run.computed.insert(c.field.clone(), value);
            }
            Err(e) => {
                self.push_compute_error(e, &pointer, &c.field, run);
                run.broken.insert(c.field.clone());
            }
        }
    }

    /// A value of every row: each row is evaluated on its own fields (and `context`,
    /// `settings`); a row whose fields the value reads failed the schema is skipped.
    fn compute_rows(&self, c: &ComputedField, list: &str, run: &mut Run) {
        if run.whole_object_failed {
            return;
        }
        let rows = run.eval.get(list).and_then(Value::as_array).cloned().unwrap_or_default();
        let mut updated = Vec::with_capacity(rows.len());
        for (i, row) in rows.into_iter().enumerate() {
            let Value::Object(mut row) = row else {
                updated.push(row);
                continue;
            };
            let pointer = format!("/{list}/{i}/{}", c.leaf);
            if run.row_broken(list, i, &c.reads) {
                run.broken_pointers.push(pointer);
                updated.push(Value::Object(row));
                continue;
            }
            match self.compute(&c.computation, &run.row_eval(&row), run.lang) {
                Ok(value) => {
                    if let Some(claimed) = row.get(&c.leaf).cloned() {
                        self.check_claim(&claimed, &value, &pointer, run);
                    }
                    run.computed.insert(format!("{list}.{i}.{}", c.leaf), value.clone());
                    row.insert(c.leaf.clone(), value);
                }
                Err(e) => {
                    self.push_compute_error(e, &pointer, &c.field, run);
                    run.broken_pointers.push(pointer);
                    run.broken.insert(list.to_string());
                }
            }
            updated.push(Value::Object(row));
        }
        run.eval.insert(list.to_string(), Value::Array(updated));
    }

    /// A value sent for a computed field must be the one carimbo computes.
    fn check_claim(&self, claimed: &Value, value: &Value, pointer: &str, run: &mut Run) {
        if same_number_or_value(claimed, value) {
            return;
        }
        let label = self.label(pointer, run.lang);
        run.errors.push(FieldError {
            pointer: pointer.to_string(),
            code: "computed-mismatch".into(),
            error_code: codes::COMPUTED_MISMATCH.0,
            message: fill(message_template("computed-mismatch", run.lang), &label, &[("expected", &display(value)), ("found", &display(claimed))]),
        });
        run.broken_pointers.push(pointer.to_string());
        if let Some(top) = pointer.split('/').nth(1) {
            run.broken.insert(top.to_string());
        }
    }

    fn push_compute_error(&self, e: ComputeError, pointer: &str, rule: &str, run: &mut Run) {
        let label = self.label(pointer, run.lang);
        let (code, error_code, message) = match e {
            ComputeError::NoMatch => ("lookup-no-match", codes::LOOKUP_NO_MATCH, fill(message_template("lookup-no-match", run.lang), &label, &[])),
            ComputeError::Failed { detail, error_code } => {
                ("rule-error", error_code, fill(message_template("rule-error", run.lang), &label, &[("rule", rule), ("detail", &detail)]))
            }
        };
        run.errors.push(FieldError { pointer: pointer.to_string(), code: code.into(), error_code: error_code.0, message });
    }

    /// Every rule: on the data, or on each row for a rule whose pointer names a row field.
    fn check_rules(&self, run: &mut Run) {
        let arena = Bump::new();
        let eval_value = Value::Object(run.eval.clone());
        let input: &DataValue = arena.alloc(DataValue::from_serde_value_in(&eval_value, &arena));
        for rule in &self.rules {
            match &rule.row {
                None => {
                    if rule.reads.iter().any(|f| run.broken.contains(f)) {
                        continue;
                    }
                    let outcome = evaluate(&rule.logic, input, &arena);
                    self.rule_outcome(rule, outcome, rule.pointer.clone(), run);
                }
                Some(list) => {
                    let rows = run.eval.get(list).and_then(Value::as_array).cloned().unwrap_or_default();
                    for (i, row) in rows.iter().enumerate() {
                        let Value::Object(row) = row else { continue };
                        if run.row_broken(list, i, &rule.reads) {
                            continue;
                        }
                        let row_arena = Bump::new();
                        let row_value = Value::Object(run.row_eval(row));
                        let row_input: &DataValue = row_arena.alloc(DataValue::from_serde_value_in(&row_value, &row_arena));
                        let outcome = evaluate(&rule.logic, row_input, &row_arena);
                        let pointer = rule.pointer.replacen("/*", &format!("/{i}"), 1);
                        self.rule_outcome(rule, outcome, pointer, run);
                    }
                }
            }
        }
    }

    fn rule_outcome(&self, rule: &Rule, outcome: Result<bool, LogicFailure>, pointer: String, run: &mut Run) {
        match outcome {
            Ok(true) => {}
            Ok(false) => run.errors.push(FieldError {
                pointer,
                code: rule.id.clone(),
                error_code: codes::RULE_FAILED.0,
                message: rule.message.get(run.lang).to_string(),
            }),
            Err(failure) => {
                let (detail, error_code) = failure.localized(run.lang);
                let message = fill(message_template("rule-error", run.lang), &self.label(&pointer, run.lang), &[("rule", &rule.id), ("detail", &detail)]);
                run.errors.push(FieldError { pointer, code: "rule-error".into(), error_code: error_code.0, message });
            }
        }
    }

    fn finish(&self, fields: &Map<String, Value>, computed: BTreeMap<String, Value>, mut errors: Vec<FieldError>) -> Result<ValidSubmission, Vec<FieldError>> {
        if !errors.is_empty() {
            let mut seen = BTreeSet::new();
            errors.retain(|e| seen.insert((e.pointer.clone(), e.code.clone())));
            return Err(errors);
        }
        let mut data = fields.clone();
        for (k, v) in &computed {
            match k.split_once('.') {
                // A row's value (`periods.2.hours`): into that row.
                Some((list, rest)) => {
                    let (i, leaf) = rest.split_once('.').unwrap_or((rest, ""));
                    if let Some(Value::Object(row)) =
                        data.get_mut(list).and_then(Value::as_array_mut).and_then(|rows| rows.get_mut(i.parse::<usize>().unwrap_or(usize::MAX)))
                    {
                        row.insert(leaf.to_string(), v.clone());
                    }
                }
                None => {
                    data.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(ValidSubmission {
            form_id: self.id.clone(),
            form_version: self.version.clone(),
            form_hash: self.content_hash.clone(),
            data: Value::Object(data),
            computed,
            restricted: self.layout.restricted.keys().cloned().collect(),
            salts: BTreeMap::new(),
            reference: BTreeMap::new(),
        })
    }

    fn compute(&self, c: &Computation, eval: &Map<String, Value>, lang: Lang) -> Result<Value, ComputeError> {
        let failed = |e: datalogic_rs::Error| {
            let (detail, error_code) = LogicFailure(e).localized(lang);
            ComputeError::Failed { detail, error_code }
        };
        match c {
            Computation::WorkingDays { start, end, half_day_start, half_day_end, calendar } => {
                let date = |f: &str| eval.get(f).and_then(Value::as_str).and_then(logic::parse_date);
                let (Some(s), Some(e)) = (date(start), date(end)) else {
                    // A missing date is reported by the schema's `required`; nothing to compute.
                    return Ok(Value::Null);
                };
                let whole = calendar
                    .working_days(s, e)
                    .ok_or_else(|| ComputeError::Failed { detail: "the period is longer than ten years".into(), error_code: codes::RULE_ERROR })?;
                let flag = |f: &Option<String>, d| f.as_ref().is_some_and(|f| eval.get(f) == Some(&Value::Bool(true))) && calendar.is_working_day(d) && s <= e;
                let halves = [flag(half_day_start, s), flag(half_day_end, e) && (s != e || !flag(half_day_start, s))];
                let days = whole as f64 - 0.5 * halves.iter().filter(|h| **h).count() as f64;
                Ok(number(days))
            }
            Computation::Lookup { table, matches, value } => {
                let arena = Bump::new();
                let input_value = Value::Object(eval.clone());
                let input: &DataValue = arena.alloc(DataValue::from_serde_value_in(&input_value, &arena));
                let mut wanted = Vec::with_capacity(matches.len());
                for (key, l) in matches {
                    let v = logic::engine().evaluate(l, input, &arena).map_err(failed)?;
                    wanted.push((key.as_str(), v.to_serde_value()));
                }
                let refs: Vec<(&str, &Value)> = wanted.iter().map(|(k, v)| (*k, v)).collect();
                table.lookup(&refs, value).cloned().ok_or(ComputeError::NoMatch)
            }
            Computation::Logic(l) => {
                let arena = Bump::new();
                let input_value = Value::Object(eval.clone());
                let input: &DataValue = arena.alloc(DataValue::from_serde_value_in(&input_value, &arena));
                let v = logic::engine().evaluate(l, input, &arena).map_err(failed)?;
                Ok(normalise_number(v.to_serde_value()))
            }
        }
    }

    fn label(&self, pointer: &str, lang: Lang) -> String {
        match self.label_for_pointer(pointer) {
            Some(t) => t.get(lang).to_string(),
            None => {
                let path = field_path_of_pointer(pointer);
                if path.is_empty() { String::new() } else { path }
            }
        }
    }

    fn push_schema_error(&self, e: &jsonschema::ValidationError, lang: Lang, out: &mut Vec<FieldError>) {
        let at = e.instance_path().to_string();
        let mut push = |pointer: String, code: &str, args: &[(&str, &str)]| {
            let label = self.label(&pointer, lang);
            out.push(FieldError { pointer, code: code.into(), error_code: codes::FIELD_INVALID.0, message: fill(message_template(code, lang), &label, args) });
        };
        match e.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                push(super::problem::pointer_push(&at, name), "required", &[]);
            }
            ValidationErrorKind::AdditionalProperties { unexpected } | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                for name in unexpected {
                    push(super::problem::pointer_push(&at, name), "additional-properties", &[]);
                }
            }
            ValidationErrorKind::Type { .. } => push(at, "type", &[]),
            ValidationErrorKind::Enum { .. } => push(at, "enum", &[]),
            ValidationErrorKind::Constant { expected_value } => {
                // A box that must be ticked (`const: true`) reads better as "you must confirm".
                let template = if **expected_value == Value::Bool(true) { "must-confirm" } else { "const" };
                let label = self.label(&at, lang);
                let message = fill(message_template(template, lang), &label, &[("expected", &display(expected_value))]);
                out.push(FieldError { pointer: at, code: "const".into(), error_code: codes::FIELD_INVALID.0, message });
            }
            // A time of day is typed by hand more often than picked: say how to write it.
            ValidationErrorKind::Format { format } if format == super::definition::TIME_OF_DAY_FORMAT => {
                let label = self.label(&at, lang);
                out.push(FieldError {
                    pointer: at,
                    code: "format".into(),
                    error_code: codes::FIELD_INVALID.0,
                    message: fill(message_template("format-time-of-day", lang), &label, &[]),
                });
            }
            ValidationErrorKind::Format { format } => push(at, "format", &[("format", format)]),
            ValidationErrorKind::Minimum { limit } => push(at, "minimum", &[("limit", &display(limit))]),
            ValidationErrorKind::Maximum { limit } => push(at, "maximum", &[("limit", &display(limit))]),
            ValidationErrorKind::ExclusiveMinimum { limit } => push(at, "exclusive-minimum", &[("limit", &display(limit))]),
            ValidationErrorKind::ExclusiveMaximum { limit } => push(at, "exclusive-maximum", &[("limit", &display(limit))]),
            ValidationErrorKind::MinLength { limit } => push(at, "min-length", &[("limit", &limit.to_string())]),
            ValidationErrorKind::MaxLength { limit } => push(at, "max-length", &[("limit", &limit.to_string())]),
            ValidationErrorKind::Pattern { .. } => push(at, "pattern", &[]),
            ValidationErrorKind::MinItems { limit } => push(at, "min-items", &[("limit", &limit.to_string())]),
            ValidationErrorKind::MaxItems { limit } => push(at, "max-items", &[("limit", &limit.to_string())]),
            ValidationErrorKind::UniqueItems => push(at, "unique-items", &[]),
            ValidationErrorKind::MultipleOf { .. } => push(at, "multiple-of", &[]),
            _ => push(at, "schema", &[]),
        }
    }
}

enum ComputeError {
    NoMatch,
    Failed { detail: String, error_code: ErrorCode },
}

/// An engine error from evaluating a rule or computed value.
struct LogicFailure(datalogic_rs::Error);

impl LogicFailure {
    /// The reason in the reader's language when one of carimbo's operators gave it (a value of
    /// the wrong kind has its own code), the engine's own words otherwise.
    fn localized(&self, lang: Lang) -> (String, ErrorCode) {
        match logic::LogicFault::of(&self.0) {
            Some(f) if f.is_wrong_kind() => (f.message(lang), codes::RULE_WRONG_KIND),
            Some(f) => (f.message(lang), codes::RULE_ERROR),
            None => (self.0.to_string(), codes::RULE_ERROR),
        }
    }
}

fn evaluate<'a>(logic: &datalogic_rs::Logic, input: &'a DataValue<'a>, arena: &'a Bump) -> Result<bool, LogicFailure> {
    let engine = logic::engine();
    engine.evaluate(logic, input, arena).map(|v| engine.truthy(v)).map_err(LogicFailure)
}

/// The state of one validation while computed values and rules run.
struct Run {
    /// Top-level fields that failed (the schema, or their computation).
    broken: BTreeSet<String>,
    /// Pointers of every field that failed, for skipping one row's checks.
    broken_pointers: Vec<String>,
    whole_object_failed: bool,
    eval: Map<String, Value>,
    computed: BTreeMap<String, Value>,
    errors: Vec<FieldError>,
    lang: Lang,
}

impl Run {
    /// Whether row `i` of `list` failed where `reads` looks (the row itself, or a field read).
    fn row_broken(&self, list: &str, i: usize, reads: &BTreeSet<String>) -> bool {
        let row = format!("/{list}/{i}");
        self.broken_pointers
            .iter()
            .any(|p| p == &row || p.strip_prefix(&format!("{row}/")).is_some_and(|rest| reads.contains(rest.split('/').next().unwrap_or_default())))
    }

    /// What a row's logic reads: its fields, `context` and `settings`.
    fn row_eval(&self, row: &Map<String, Value>) -> Map<String, Value> {
        let mut m = row.clone();
        for key in ["context", "settings"] {
            if let Some(v) = self.eval.get(key) {
                m.insert(key.into(), v.clone());
            }
        }
        m
    }
}

/// Whole numbers as integers, so `5.0` computed compares and prints as `5`.
fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9e15 { Value::from(f as i64) } else { serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null) }
}

fn normalise_number(v: Value) -> Value {
    match v.as_f64() {
        Some(f) if v.is_number() => {
            // Money and day counts: round away binary noise such as 1199.9999999.
            let rounded = (f * 1e6).round() / 1e6;
            number(rounded)
        }
        _ => v,
    }
}

fn same_number_or_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        _ => a == b,
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn fill(template: &str, label: &str, args: &[(&str, &str)]) -> String {
    let mut s = template.replace("{label}", label);
    for (k, v) in args {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    // Whole-submission messages have no label: drop the leading "label: ".
    s.trim_start_matches([':', '：', ' ']).to_string()
}

/// Message templates for the error codes carimbo itself produces, in the three languages.
fn message_template(code: &str, lang: Lang) -> &'static str {
    let (zh, pt, en) = match code {
        "required" => ("{label}：必須填寫。", "{label}: preenchimento obrigatório.", "{label}: this field is required."),
        "additional-properties" => {
            ("{label}：此表格沒有這個欄位。", "{label}: este campo não existe neste formulário.", "{label}: this form has no such field.")
        }
        "type" => ("{label}：資料類型不正確。", "{label}: o tipo de valor não é o esperado.", "{label}: the value has the wrong type."),
        "enum" => ("{label}：請從清單中選擇。", "{label}: escolha um dos valores da lista.", "{label}: choose one of the listed values."),
        "const" => ("{label}：必須為 {expected}。", "{label}: tem de ser {expected}.", "{label}: must be {expected}."),
        "must-confirm" => ("{label}：必須確認。", "{label}: tem de confirmar.", "{label}: you must confirm this."),
        "format" => ("{label}：格式不正確（{format}）。", "{label}: formato inválido ({format}).", "{label}: not a valid {format}."),
        "format-time-of-day" => (
            "{label}：請以 24 小時制 HH:MM 填寫時間（例如 18:30；午夜結束寫 24:00）。",
            "{label}: escreva a hora como HH:MM, de 00:00 a 23:59 (por exemplo 18:30; 24:00 para o fim do dia).",
            "{label}: write the time as HH:MM on the 24-hour clock (e.g. 18:30; 24:00 for the end of the day).",
        ),
        "minimum" => ("{label}：不可小於 {limit}。", "{label}: não pode ser inferior a {limit}.", "{label}: must be at least {limit}."),
        "maximum" => ("{label}：不可大於 {limit}。", "{label}: não pode ser superior a {limit}.", "{label}: must be at most {limit}."),
        "exclusive-minimum" => ("{label}：必須大於 {limit}。", "{label}: tem de ser superior a {limit}.", "{label}: must be greater than {limit}."),
        "exclusive-maximum" => ("{label}：必須小於 {limit}。", "{label}: tem de ser inferior a {limit}.", "{label}: must be less than {limit}."),
        "min-length" => ("{label}：最少 {limit} 個字元。", "{label}: pelo menos {limit} caracteres.", "{label}: at least {limit} characters."),
        "max-length" => ("{label}：最多 {limit} 個字元。", "{label}: no máximo {limit} caracteres.", "{label}: at most {limit} characters."),
        "pattern" => ("{label}：格式不正確。", "{label}: o formato não é válido.", "{label}: the format is not valid."),
        "min-items" => ("{label}：最少 {limit} 項。", "{label}: pelo menos {limit} elementos.", "{label}: at least {limit} entries."),
        "max-items" => ("{label}：最多 {limit} 項。", "{label}: no máximo {limit} elementos.", "{label}: at most {limit} entries."),
        "unique-items" => ("{label}：有重複項目。", "{label}: há elementos repetidos.", "{label}: entries are repeated."),
        "multiple-of" => {
            ("{label}：數值的單位不正確。", "{label}: o valor não respeita o incremento permitido.", "{label}: the value is not in the allowed steps.")
        }
        "computed-mismatch" => (
            "{label}：由系統計算為 {expected}，不可填寫 {found}。",
            "{label}: é calculado pelo sistema como {expected}, não {found}.",
            "{label}: carimbo computes this as {expected}, not {found}.",
        ),
        "lookup-no-match" => (
            "{label}：在費率表中找不到適用的數額，請聯絡人事部門。",
            "{label}: não existe valor aplicável na tabela; contacte o serviço de pessoal.",
            "{label}: no applicable amount in the rates table; contact the personnel section.",
        ),
        "rule-error" => (
            "{label}：規則「{rule}」無法計算（{detail}），請聯絡表格負責人。",
            "{label}: a regra «{rule}» não pôde ser avaliada ({detail}); contacte o autor do formulário.",
            "{label}: the rule \"{rule}\" could not be evaluated ({detail}); contact the form's author.",
        ),
        "too-large" => (
            "提交的資料過大（{size} KiB，上限 {limit} KiB）。",
            "Os dados enviados são demasiado grandes ({size} KiB, máximo {limit} KiB).",
            "The submission is too large ({size} KiB; the limit is {limit} KiB).",
        ),
        "too-deep" => (
            "提交的資料層次過深（上限 {limit} 層）。",
            "Os dados enviados têm demasiados níveis (máximo {limit}).",
            "The submission is nested too deeply (the limit is {limit} levels).",
        ),
        "duplicate-member" => (
            "提交的資料中，同一物件內的名稱「{name}」出現了兩次。",
            "Os dados enviados repetem o nome \"{name}\" no mesmo objeto.",
            "The submission repeats the name \"{name}\" in one object.",
        ),
        "not-json" => ("提交的資料不是有效的 JSON：{detail}", "Os dados enviados não são JSON válido: {detail}", "The submission is not valid JSON: {detail}"),
        "not-an-object" => ("提交的資料必須是一個 JSON 物件。", "Os dados enviados têm de ser um objeto JSON.", "The submission must be a JSON object."),
        _ => ("{label}：資料不符合表格要求。", "{label}: o valor não cumpre as regras do formulário.", "{label}: the value does not meet the form's rules."),
    };
    match lang {
        Lang::Zh => zh,
        Lang::Pt => pt,
        Lang::En => en,
    }
}
