//! A form definition read, checked and compiled: schema, labels, computed values, rules, layout.
//!
//! `FormDefinition::parse` is the only way to get one, and it either returns a definition whose
//! schema compiled, whose rules compiled and name only existing fields, and whose every text is in
//! zh / pt / en, or it returns nothing and leaves every problem in the collector.

use super::logic::{self, LogicScan};
use super::parse::{self, check_keys};
use super::problem::{Problems, codes, pointer_push};
use super::problem_detail::{Detail, JsonType, Subject, WordsId};
use super::reference::{HolidayCalendar, RatesTable};
use crate::i18n::LocalizedText;
use datalogic_rs::Logic;
use jsonschema::{Draft, Validator};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The only schema dialect carimbo accepts.
pub const SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Roles a layout may restrict a field to (FORMS.md), plus the reviewers of records.
pub const KNOWN_ROLES: [&str; 9] = ["applicant", "supervisor", "head", "hr", "authority", "doctor", "witness", "auditor", "admin"];

const WIDGETS: [&str; 10] = ["textarea", "checkbox", "radio", "select", "hidden", "text", "date", "time", "number", "person"];

/// The JSON Schema format of a time of day as people write it (`HH:MM`, `HH:MM:SS`, `24:00`).
pub const TIME_OF_DAY_FORMAT: &str = "time-of-day";

/// Facts about the applicant that rules read as `context.applicant.<fact>`, and that a layout
/// may show (`layout.applicant`). The staff directory supplies them (`Directory::applicant_facts`).
/// `name` and `department_name` are texts in zh / pt / en (`context.applicant.name.zh`).
pub const APPLICANT_FACTS: [&str; 10] =
    ["id", "name", "department", "department_name", "grade", "grade_band", "years_of_service", "annual_leave_balance", "special_leave_entitlement", "resident"];

/// What `context` holds besides the applicant: the date, and the date and time to the minute,
/// in Macau time.
const CONTEXT_VALUES: [&str; 3] = ["today", "now", "time"];

/// Names a rule or computed value may read besides the form's own fields.
const RESERVED: [&str; 2] = ["context", "settings"];

/// Holiday calendars and rates tables, by id, that computed values can name.
#[derive(Debug, Default, Clone)]
pub struct References {
    pub calendars: BTreeMap<String, Arc<HolidayCalendar>>,
    pub tables: BTreeMap<String, Arc<RatesTable>>,
}

/// A compiled form definition.
#[derive(Debug)]
pub struct FormDefinition {
    pub id: String,
    pub version: String,
    /// SHA-256 (hex) of the definition file's bytes: cases are pinned to it.
    pub content_hash: String,
    pub title: LocalizedText,
    pub legal_basis: LocalizedText,
    pub workflow: String,
    pub schema: Value,
    pub(crate) validator: Validator,
    /// Field path (`dependants.*.name`) → label.
    pub labels: BTreeMap<String, LocalizedText>,
    /// Field path → enum value → label.
    pub options: BTreeMap<String, BTreeMap<String, LocalizedText>>,
    pub(crate) computed: Vec<ComputedField>,
    pub(crate) rules: Vec<Rule>,
    pub settings: Map<String, Value>,
    pub layout: Layout,
    /// The definition as written, for the API and for evidence bundles.
    pub source: Value,
    pub(crate) examples: Option<Examples>,
    /// Every field path the schema declares (for workflow checks).
    pub(crate) fields: FieldIndex,
}

/// A value carimbo computes and never takes from the client.
#[derive(Debug)]
pub(crate) struct ComputedField {
    /// As written: `total_hours`, or `periods.*.hours` for a value of every row.
    pub field: String,
    /// The top-level list whose rows each get the value (`periods`), if any.
    pub row: Option<String>,
    /// The field's own name (`hours`).
    pub leaf: String,
    pub computation: Computation,
    /// Fields it reads (top-level, or of the row): if one of them failed the schema, it is not
    /// computed.
    pub reads: BTreeSet<String>,
}

#[derive(Debug)]
pub(crate) enum Computation {
    WorkingDays { start: String, end: String, half_day_start: Option<String>, half_day_end: Option<String>, calendar: Arc<HolidayCalendar> },
    Lookup { table: Arc<RatesTable>, matches: Vec<(String, Arc<Logic>)>, value: String },
    Logic(Arc<Logic>),
}

/// A cross-field rule: passes when its logic is truthy.
#[derive(Debug)]
pub(crate) struct Rule {
    pub id: String,
    /// Where the error goes; `/periods/*/end_time` for a rule checked on every row.
    pub pointer: String,
    /// The top-level list whose rows the rule checks one by one, if any.
    pub row: Option<String>,
    pub logic: Arc<Logic>,
    pub message: LocalizedText,
    pub reads: BTreeSet<String>,
}

/// How the page shows the form.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub groups: Vec<LayoutGroup>,
    /// Field → roles that may see it.
    pub restricted: BTreeMap<String, Vec<String>>,
    pub widgets: BTreeMap<String, String>,
    /// Facts about the applicant shown read-only above the form (`id`, `name`, `department`, `grade`).
    pub applicant: Vec<String>,
    /// The order of the fields of each row: list field → its row fields.
    pub rows: BTreeMap<String, Vec<String>>,
    /// The few fields that say what a case is about (`forms::summary`).
    pub summary: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LayoutGroup {
    pub id: String,
    pub title: LocalizedText,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Examples {
    pub context: Value,
    pub valid: Vec<Example>,
    pub invalid: Vec<Example>,
}

#[derive(Debug, Clone)]
pub(crate) struct Example {
    pub pointer: String,
    pub name: String,
    pub data: Value,
    pub context: Option<Value>,
    pub computed: Option<Map<String, Value>>,
    /// (data pointer, code) the invalid example must produce.
    pub expect: Vec<(String, String)>,
}

/// Every field path the schema declares, and the string enum values of each.
#[derive(Debug, Default, Clone)]
pub(crate) struct FieldIndex {
    pub top_level: Vec<String>,
    /// Paths of declared properties (`spouse`, `spouse.name`, `dependants.*.name`).
    pub paths: BTreeSet<String>,
    /// Paths of array items (`panel.*`), which have no label of their own.
    pub items: BTreeSet<String>,
    pub enums: BTreeMap<String, BTreeSet<String>>,
    /// The JSON types a declared property may take (`string`, `number` …), when it says.
    pub types: BTreeMap<String, BTreeSet<String>>,
}

impl FieldIndex {
    /// Whether `path` names a declared field or the items of a declared array.
    pub fn knows(&self, path: &str) -> bool {
        self.paths.contains(path) || self.items.contains(path)
    }

    /// The fields of each row of the top-level list `list` (`periods` → `date`, `start_time` …).
    pub fn row_fields(&self, list: &str) -> Vec<&str> {
        let prefix = format!("{list}.*.");
        self.paths.iter().filter_map(|p| p.strip_prefix(&prefix)).filter(|rest| !rest.contains('.')).collect()
    }

    /// Whether `name` is a top-level list whose rows are objects with declared fields.
    pub fn is_row_list(&self, name: &str) -> bool {
        self.top_level.iter().any(|t| t == name) && !self.row_fields(name).is_empty()
    }

    pub(crate) fn from_schema(schema: &Value) -> FieldIndex {
        let mut index = FieldIndex::default();
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            index.top_level = props.keys().cloned().collect();
        }
        index.walk(schema, schema, "", 0);
        index
    }

    fn walk(&mut self, node: &Value, root: &Value, path: &str, depth: usize) {
        // Local `$ref` cycles (a recursive schema) are cut here.
        if depth > 24 {
            return;
        }
        let Value::Object(m) = node else { return };
        if let Some(Value::String(r)) = m.get("$ref")
            && let Some(target) = r.strip_prefix('#').and_then(|p| root.pointer(p))
        {
            self.walk(target, root, path, depth + 1);
        }
        if let Some(Value::Object(props)) = m.get("properties") {
            for (name, sub) in props {
                let child = join(path, name);
                self.paths.insert(child.clone());
                self.note_enum(sub, &child, root);
                self.note_type(sub, &child, root);
                self.walk(sub, root, &child, depth + 1);
            }
        }
        if let Some(items) = m.get("items") {
            self.items.insert(join(path, "*"));
            self.walk(items, root, &join(path, "*"), depth + 1);
        }
        for key in ["allOf", "anyOf", "oneOf", "prefixItems"] {
            if let Some(Value::Array(list)) = m.get(key) {
                let p = if key == "prefixItems" { join(path, "*") } else { path.to_string() };
                for sub in list {
                    self.walk(sub, root, &p, depth + 1);
                }
            }
        }
        for key in ["if", "then", "else", "not"] {
            if let Some(sub) = m.get(key) {
                self.walk(sub, root, path, depth + 1);
            }
        }
        if let Some(Value::Object(deps)) = m.get("dependentSchemas") {
            for sub in deps.values() {
                self.walk(sub, root, path, depth + 1);
            }
        }
    }

    fn note_type(&mut self, sub: &Value, path: &str, root: &Value) {
        let resolved = match sub.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(p) => root.pointer(p).unwrap_or(sub),
            None => sub,
        };
        let mut types: BTreeSet<String> = match resolved.get("type") {
            Some(Value::String(t)) => [t.clone()].into(),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => BTreeSet::new(),
        };
        if types.is_empty()
            && let Some(Value::Array(values)) = resolved.get("enum")
        {
            types.extend(values.iter().map(|v| parse::type_name(v).trim_start_matches("a ").trim_start_matches("an ").to_string()));
        }
        if !types.is_empty() {
            self.types.entry(path.to_string()).or_default().extend(types);
        }
    }

    /// String enums of a property (or of its array items) need option labels.
    fn note_enum(&mut self, sub: &Value, path: &str, root: &Value) {
        let resolved = match sub.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(p) => root.pointer(p).unwrap_or(sub),
            None => sub,
        };
        for candidate in [Some(resolved), resolved.get("items")].into_iter().flatten() {
            if let Some(Value::Array(values)) = candidate.get("enum") {
                let set = self.enums.entry(path.to_string()).or_default();
                set.extend(values.iter().filter_map(Value::as_str).map(str::to_string));
            }
        }
    }
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() { name.to_string() } else { format!("{base}.{name}") }
}

/// `/dependants/0/name` → `dependants.*.name`.
pub fn field_path_of_pointer(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|seg| if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) { "*".to_string() } else { seg.replace("~1", "/").replace("~0", "~") })
        .collect::<Vec<_>>()
        .join(".")
}

const FORM_KEYS: [&str; 15] = [
    "kind",
    "id",
    "version",
    "title",
    "legal_basis",
    "workflow",
    "schema",
    "labels",
    "options",
    "computed",
    "rules",
    "settings",
    "layout",
    "examples",
    "description",
];
const FORM_REQUIRED: [&str; 10] = ["id", "version", "title", "legal_basis", "workflow", "schema", "labels", "layout", "examples", "rules"];

impl FormDefinition {
    /// Reads one form definition. `file_stem` is the file name without `.json`, which must
    /// equal the id so that authors find a form where its id says.
    pub fn parse(def: &Map<String, Value>, file_stem: Option<&str>, content_hash: String, refs: &References, p: &mut Problems) -> Option<FormDefinition> {
        let before = p.len();
        check_keys(def, "", &FORM_KEYS, &FORM_REQUIRED, p);

        let id = parse::string_key(def, "", "id", p).map(str::to_string);
        if let Some(id) = &id {
            if !parse::is_valid_id(id) {
                p.push("/id", codes::BAD_ID, Detail::IdMalformed { id: id.clone() });
            } else if let Some(stem) = file_stem
                && stem != id
            {
                p.push("/id", codes::BAD_ID, Detail::IdNotFileName { id: id.clone(), stem: stem.to_string() });
            }
        }
        let version = parse::string_key(def, "", "version", p).map(str::to_string);
        if let Some(v) = &version {
            let parts: Vec<_> = v.split('.').collect();
            if parts.len() != 3 || parts.iter().any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit())) {
                p.push("/version", codes::BAD_VALUE, Detail::VersionMalformed { version: v.clone() });
            }
        }
        let title = def.get("title").and_then(|t| parse::localized(t, "/title", p));
        let legal_basis = def.get("legal_basis").and_then(|t| parse::localized(t, "/legal_basis", p));
        if let Some(d) = def.get("description") {
            parse::localized(d, "/description", p);
        }
        let workflow = parse::string_key(def, "", "workflow", p).map(str::to_string);

        let schema = def.get("schema").cloned().unwrap_or(Value::Null);
        let validator = if def.contains_key("schema") { compile_schema(&schema, p) } else { None };
        let fields = FieldIndex::from_schema(&schema);
        for name in &fields.top_level {
            if RESERVED.contains(&name.as_str()) {
                p.push(format!("/schema/properties/{name}"), codes::BAD_VALUE, Detail::ReservedFieldName { name: name.clone() });
            }
        }

        let labels = parse_labels(def.get("labels"), &fields, p);
        let options = parse_options(def.get("options"), &fields, p);

        let settings = match def.get("settings") {
            None => Map::new(),
            Some(v) => match parse::object(v, "/settings", Subject::key("settings"), p) {
                Some(m) => {
                    for (k, v) in m {
                        if v.is_object() || v.is_array() || v.is_null() {
                            p.push(pointer_push("/settings", k), codes::BAD_VALUE, Detail::SettingNotScalar);
                        }
                    }
                    m.clone()
                }
                None => Map::new(),
            },
        };

        let scope = ReadScope { fields: &fields, settings: &settings, row: None };
        let computed = parse_computed(def.get("computed"), &scope, &schema, refs, p);
        let rules = parse_rules(def.get("rules"), &scope, p);
        let layout = def.get("layout").and_then(|l| parse_layout(l, &fields, p)).unwrap_or_default();
        let examples = def.get("examples").and_then(|e| parse_examples(e, p));

        // Too few examples does not stop the form being read: the catalog still runs the ones
        // given (and does not load the form), so every problem is reported at once.
        if p.since(before).any(|problem| problem.code != codes::TOO_FEW_EXAMPLES) {
            return None;
        }
        Some(FormDefinition {
            id: id?,
            version: version?,
            content_hash,
            title: title?,
            legal_basis: legal_basis?,
            workflow: workflow?,
            schema,
            validator: validator?,
            labels,
            options,
            computed,
            rules,
            settings,
            layout,
            source: Value::Object(def.clone()),
            examples,
            fields,
        })
    }

    /// The label of the field a data pointer names, falling back to the field's own name.
    pub fn label_for_pointer(&self, pointer: &str) -> Option<&LocalizedText> {
        self.labels.get(&field_path_of_pointer(pointer))
    }

    /// Fields a role may not see (restricted to other roles).
    pub fn fields_hidden_from(&self, role: &str) -> Vec<&str> {
        self.layout.restricted.iter().filter(|(_, roles)| !roles.iter().any(|r| r == role)).map(|(f, _)| f.as_str()).collect()
    }

    /// Names of the fields carimbo computes.
    pub fn computed_fields(&self) -> impl Iterator<Item = &str> {
        self.computed.iter().map(|c| c.field.as_str())
    }
}

/// The schema node a field path declares (`periods.*.hours`), local `$ref`s followed, and
/// its pointer in the definition (for problems).
fn schema_node<'s>(schema: &'s Value, path: &str) -> Option<(&'s Value, String)> {
    let follow = |node: &'s Value, at: String| -> (&'s Value, String) {
        match node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(target) => match schema.pointer(target) {
                Some(n) => (n, format!("/schema{target}")),
                None => (node, at),
            },
            None => (node, at),
        }
    };
    let (mut node, mut at) = (schema, "/schema".to_string());
    for seg in path.split('.') {
        let (next, next_at) = if seg == "*" {
            (node.get("items")?, format!("{at}/items"))
        } else {
            (node.get("properties")?.get(seg)?, pointer_push(&format!("{at}/properties"), seg))
        };
        (node, at) = follow(next, next_at);
    }
    Some((node, at))
}

/// `"format": "time"` is RFC 3339's time with an offset (`18:00:00+08:00`), which nobody types;
/// a form means a time of day, which carimbo names `time-of-day`.
fn check_formats(v: &Value, ptr: &str, p: &mut Problems, depth: usize) {
    if depth > 128 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, sub) in m {
                let here = pointer_push(ptr, k);
                if k == "format" && sub.as_str() == Some("time") {
                    p.push(here.clone(), codes::TIME_FORMAT, Detail::TimeFormat { format: TIME_OF_DAY_FORMAT.to_string() });
                }
                check_formats(sub, &here, p, depth + 1);
            }
        }
        Value::Array(a) => a.iter().enumerate().for_each(|(i, sub)| check_formats(sub, &format!("{ptr}/{i}"), p, depth + 1)),
        _ => {}
    }
}

fn compile_schema(schema: &Value, p: &mut Problems) -> Option<Validator> {
    let before = p.len();
    let Value::Object(m) = schema else {
        p.push("/schema", codes::SCHEMA_INVALID, Detail::SchemaNotObject { found: JsonType::of(schema) });
        return None;
    };
    match m.get("$schema").and_then(Value::as_str) {
        Some(SCHEMA_DIALECT) => {}
        Some(other) => {
            p.push("/schema/$schema", codes::SCHEMA_INVALID, Detail::SchemaDialect { expected: SCHEMA_DIALECT.to_string(), found: other.to_string() })
        }
        None => p.push("/schema", codes::SCHEMA_INVALID, Detail::SchemaDialectMissing { expected: SCHEMA_DIALECT.to_string() }),
    }
    if m.get("type").and_then(Value::as_str) != Some("object") {
        p.push("/schema", codes::SCHEMA_INVALID, Detail::SchemaNotObjectType);
    }
    refuse_remote_refs(schema, "/schema", p, 0);
    check_formats(schema, "/schema", p, 0);
    for err in jsonschema::draft202012::meta::validator().iter_errors(schema) {
        let path = err.instance_path().to_string();
        let at = format!("/schema{path}");
        let found = schema.pointer(&path);
        // The meta-schema's own wording for a bad `type` ("not valid under any of the schemas
        // listed in the 'anyOf' keyword") does not tell an author what to write instead.
        let message = match found {
            Some(Value::String(t)) if path.ends_with("/type") => Detail::SchemaUnknownType { found: t.clone() },
            _ => Detail::SchemaInvalid { error: err.to_string() },
        };
        p.push(at, codes::SCHEMA_INVALID, message);
    }
    if p.len() > before {
        return None;
    }
    // Formats are asserted (a date must be a real date); `offline` makes any reference that is
    // not inside the schema an error instead of a fetch: definitions never reach the network.
    let options = jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .with_format(TIME_OF_DAY_FORMAT, |s: &str| logic::parse_time_of_day(s).is_some());
    match options.offline().build(schema) {
        Ok(v) => Some(v),
        Err(e) => {
            p.push(format!("/schema{}", e.schema_path()), codes::SCHEMA_UNCOMPILABLE, Detail::SchemaUncompilable { error: e.to_string() });
            None
        }
    }
}

fn refuse_remote_refs(v: &Value, ptr: &str, p: &mut Problems, depth: usize) {
    if depth > 128 {
        p.push(ptr, codes::SCHEMA_INVALID, Detail::SchemaTooDeep);
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, sub) in m {
                let here = pointer_push(ptr, k);
                if matches!(k.as_str(), "$ref" | "$dynamicRef")
                    && let Some(r) = sub.as_str()
                    && !r.starts_with('#')
                {
                    p.push(here.clone(), codes::REMOTE_REF, Detail::RemoteRef { reference: r.to_string() });
                }
                if k == "$id" {
                    p.push(here.clone(), codes::REMOTE_REF, Detail::SchemaId);
                }
                refuse_remote_refs(sub, &here, p, depth + 1);
            }
        }
        Value::Array(a) => {
            for (i, sub) in a.iter().enumerate() {
                refuse_remote_refs(sub, &format!("{ptr}/{i}"), p, depth + 1);
            }
        }
        _ => {}
    }
}

fn parse_labels(v: Option<&Value>, fields: &FieldIndex, p: &mut Problems) -> BTreeMap<String, LocalizedText> {
    let mut labels = BTreeMap::new();
    let map = v.and_then(|v| parse::object(v, "/labels", Subject::key("labels"), p));
    if let Some(map) = map {
        for (path, text) in map {
            let ptr = pointer_push("/labels", path);
            if !fields.paths.contains(path) {
                p.push(ptr.clone(), codes::BAD_VALUE, Detail::LabelForUnknownField { path: path.clone() });
            }
            if let Some(t) = parse::localized(text, &ptr, p) {
                labels.insert(path.clone(), t);
            }
        }
        for path in &fields.paths {
            if !map.contains_key(path) {
                p.push("/labels", codes::MISSING_TRANSLATION, Detail::FieldWithoutLabel { path: path.clone() });
            }
        }
    }
    labels
}

fn parse_options(v: Option<&Value>, fields: &FieldIndex, p: &mut Problems) -> BTreeMap<String, BTreeMap<String, LocalizedText>> {
    let mut options = BTreeMap::new();
    let empty = Map::new();
    let map = match v {
        Some(v) => parse::object(v, "/options", Subject::key("options"), p).unwrap_or(&empty),
        None => &empty,
    };
    for (path, values) in map {
        let ptr = pointer_push("/options", path);
        let Some(values) = parse::object(values, &ptr, Subject::FieldOptions, p) else { continue };
        let declared = fields.enums.get(path);
        if declared.is_none() {
            p.push(ptr.clone(), codes::BAD_VALUE, Detail::OptionsForNonEnum { path: path.clone() });
        }
        let mut out = BTreeMap::new();
        for (value, text) in values {
            let vptr = pointer_push(&ptr, value);
            if declared.is_some_and(|d| !d.contains(value)) {
                p.push(vptr.clone(), codes::BAD_VALUE, Detail::OptionNotInEnum { value: value.clone(), path: path.clone() });
            }
            if let Some(t) = parse::localized(text, &vptr, p) {
                out.insert(value.clone(), t);
            }
        }
        options.insert(path.clone(), out);
    }
    for (path, values) in &fields.enums {
        for value in values {
            if !map.get(path).and_then(Value::as_object).is_some_and(|m| m.contains_key(value)) {
                p.push(pointer_push("/options", path), codes::MISSING_TRANSLATION, Detail::EnumValueWithoutLabel { value: value.clone(), path: path.clone() });
            }
        }
    }
    options
}

/// What a rule or computed value may read: the form's fields, `context.*`, `settings.*`; inside
/// a row (`row` set), the fields of that row instead of the top-level ones.
#[derive(Clone, Copy)]
struct ReadScope<'a> {
    fields: &'a FieldIndex,
    settings: &'a Map<String, Value>,
    row: Option<&'a str>,
}

impl<'a> ReadScope<'a> {
    fn in_row(self, row: Option<&'a str>) -> ReadScope<'a> {
        ReadScope { row, ..self }
    }

    /// The data path a variable names: row variables are fields of the row (`periods.*.date`).
    fn data_path(&self, var: &str) -> String {
        match (self.row, var.split('.').next()) {
            (_, Some("context" | "settings")) | (None, _) => var.to_string(),
            (Some(row), _) => format!("{row}.*.{var}"),
        }
    }

    /// Whether `name` is a field this scope reads directly (a top-level field, or a row field).
    fn has_field(&self, name: &str) -> bool {
        match self.row {
            None => self.fields.top_level.iter().any(|f| f == name),
            Some(row) => self.fields.row_fields(row).contains(&name),
        }
    }

    /// The fields this scope reads: (the row list, when in a row; the field names).
    fn known_fields(&self) -> (Option<String>, Vec<String>) {
        match self.row {
            None => (None, self.fields.top_level.clone()),
            Some(row) => (Some(row.to_string()), self.fields.row_fields(row).iter().map(|f| f.to_string()).collect()),
        }
    }

    /// Reports each variable that names nothing, and each value of the wrong kind given to an
    /// operator; `base` is the pointer of the logic.
    fn check(&self, scan: &LogicScan, base: &str, p: &mut Problems) {
        for (ptr, fault) in &scan.faults {
            let code = if matches!(fault, Detail::DividesByConstantZero { .. }) { codes::RULE_DIVIDES_BY_ZERO } else { codes::RULE_SYNTAX };
            p.push(format!("{base}{ptr}"), code, fault.clone());
        }
        for (ptr, message) in &scan.text_in_arithmetic {
            p.push(format!("{base}{ptr}"), codes::TEXT_IN_ARITHMETIC, message.clone());
        }
        for (ptr, message) in &scan.bad_constants {
            p.push(format!("{base}{ptr}"), codes::BAD_OPERAND, message.clone());
        }
        for (var, ptr) in scan.root_vars.iter().chain(scan.item_vars.iter()) {
            let mut segs = var.splitn(3, '.');
            match segs.next() {
                Some("context") => check_context(var, &format!("{base}{ptr}"), p),
                Some("settings") => match segs.next() {
                    Some(name) if self.settings.contains_key(name) => {}
                    _ => p.push(format!("{base}{ptr}"), codes::RULE_UNKNOWN_FIELD, Detail::UnknownSettingRead { var: var.clone() }),
                },
                _ => {
                    if !self.fields.knows(&self.data_path(var)) {
                        p.push(format!("{base}{ptr}"), codes::RULE_UNKNOWN_FIELD, {
                            let (row, fields) = self.known_fields();
                            Detail::UnknownFieldRead { var: var.clone(), row, fields }
                        });
                    }
                }
            }
        }
        for operand in &scan.operands {
            self.check_operand(operand, &format!("{base}{}", operand.pointer), p);
        }
    }

    /// A field of text (or true/false) given to arithmetic, or a number given to a time
    /// operator, is refused here: at run time it would be an error for every applicant.
    fn check_operand(&self, o: &logic::Operand, at: &str, p: &mut Problems) {
        let path = self.data_path(&o.path);
        let types: BTreeSet<String> = match path.strip_prefix("settings.") {
            Some(name) => match self.settings.get(name) {
                Some(v) => [parse::type_name(v).trim_start_matches("a ").to_string()].into(),
                None => return,
            },
            None if path.starts_with("context.") => return,
            None => match self.fields.types.get(&path) {
                Some(t) => t.clone(),
                None => return,
            },
        };
        let numeric = ["number", "integer", "null", "array"];
        match o.wants {
            logic::Wants::Number if !types.iter().any(|t| numeric.contains(&t.as_str())) => {
                p.push(at, codes::TEXT_IN_ARITHMETIC, Detail::FieldNotNumber { op: o.op.clone(), path: o.path.clone(), types: types.iter().cloned().collect() })
            }
            logic::Wants::Time if !types.contains("string") => {
                p.push(at, codes::BAD_OPERAND, Detail::FieldNotTime { op: o.op.clone(), path: o.path.clone(), types: types.iter().cloned().collect() })
            }
            _ => {}
        }
    }
}

/// `context.today`, `context.now`, `context.time`, `context.applicant.<fact>`: anything else
/// is a typo that would read nothing.
fn check_context(var: &str, at: &str, p: &mut Problems) {
    let segs: Vec<&str> = var.split('.').collect();
    let ok = match segs.as_slice() {
        ["context"] | ["context", "applicant"] => true,
        ["context", value] => CONTEXT_VALUES.contains(value),
        ["context", "applicant", fact] => APPLICANT_FACTS.contains(fact),
        ["context", "applicant", "name" | "department_name", lang] => matches!(*lang, "zh" | "pt" | "en"),
        _ => false,
    };
    if !ok {
        p.push(
            at,
            codes::UNKNOWN_CONTEXT,
            Detail::UnknownContext {
                var: var.to_string(),
                values: CONTEXT_VALUES.map(|v| format!("context.{v}")).to_vec(),
                facts: APPLICANT_FACTS.map(str::to_string).to_vec(),
            },
        );
    }
}

fn compile_logic(v: &Value, ptr: &str, scope: &ReadScope, p: &mut Problems) -> Option<(Arc<Logic>, BTreeSet<String>)> {
    let scan = logic::scan(v);
    let before = p.len();
    scope.check(&scan, ptr, p);
    let compiled = match logic::compile(v) {
        Ok(l) => Some(l),
        Err(e) => {
            p.push(ptr, codes::RULE_SYNTAX, Detail::LogicUncompilable { error: e.to_string() });
            None
        }
    };
    if p.len() > before {
        return None;
    }
    Some((compiled?, scan.top_level_fields()))
}

/// Checks a rule's pointer against the schema. `Some(Some(list))` for a rule checked on every
/// row of `list` (`/periods/*/end_time`), `Some(None)` for a rule on the data as a whole.
fn rule_pointer_row(target: &str, fields: &FieldIndex, at: &str, p: &mut Problems) -> Option<Option<String>> {
    if !target.starts_with('/') {
        p.push(at, codes::RULE_UNKNOWN_FIELD, Detail::RulePointerNotAField { target: target.to_string() });
        return None;
    }
    let segs: Vec<String> = target.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect();
    if segs.iter().any(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())) {
        p.push(at, codes::RULE_ROW, Detail::RulePointerFixedRow { target: target.to_string(), list: segs[0].clone() });
        return None;
    }
    let stars = segs.iter().filter(|s| *s == "*").count();
    if stars > 1 || (stars == 1 && segs.get(1).map(String::as_str) != Some("*")) {
        p.push(at, codes::RULE_ROW, Detail::RulePointerNestedRows { target: target.to_string() });
        return None;
    }
    let path = segs.join(".");
    if !fields.knows(&path) {
        let (row, known) = if stars == 1 && fields.is_row_list(&segs[0]) {
            (Some(segs[0].clone()), fields.row_fields(&segs[0]).iter().map(|f| f.to_string()).collect())
        } else {
            (None, fields.top_level.clone())
        };
        p.push(at, codes::RULE_UNKNOWN_FIELD, Detail::RulePointerNowhere { target: target.to_string(), row, fields: known });
        return None;
    }
    Some((stars == 1).then(|| segs[0].clone()))
}

fn parse_rules(v: Option<&Value>, scope: &ReadScope, p: &mut Problems) -> Vec<Rule> {
    let mut rules = Vec::new();
    let Some(list) = v.and_then(|v| parse::array(v, "/rules", Subject::key("rules"), p)) else { return rules };
    let mut ids = BTreeMap::new();
    for (i, r) in list.iter().enumerate() {
        let ptr = format!("/rules/{i}");
        let Some(m) = parse::object(r, &ptr, Subject::Rule, p) else { continue };
        check_keys(m, &ptr, &["id", "pointer", "logic", "message", "description"], &["id", "pointer", "logic", "message"], p);
        let id = parse::string_key(m, &ptr, "id", p).map(str::to_string);
        if let Some(id) = &id {
            if !parse::is_valid_id(id) {
                p.push(format!("{ptr}/id"), codes::BAD_ID, Detail::WordsIdMalformed { of: WordsId::Rule, id: id.clone() });
            }
            if let Some(first) = ids.insert(id.clone(), i) {
                p.push(format!("{ptr}/id"), codes::DUPLICATE_ID, Detail::RuleIdTaken { id: id.clone(), first });
            }
        }
        let pointer = parse::string_key(m, &ptr, "pointer", p).map(str::to_string);
        let row = pointer.as_deref().and_then(|t| rule_pointer_row(t, scope.fields, &format!("{ptr}/pointer"), p));
        let message = m.get("message").and_then(|t| parse::localized(t, &format!("{ptr}/message"), p));
        // A rule on every row reads the fields of the row, as an `all` over the list would.
        let row_scope = scope.in_row(row.as_ref().and_then(|r| r.as_deref()));
        let logic = m.get("logic").and_then(|l| compile_logic(l, &format!("{ptr}/logic"), &row_scope, p));
        if let (Some(id), Some(pointer), Some(row), Some(message), Some((logic, reads))) = (id, pointer, row, message, logic) {
            rules.push(Rule { id, pointer, row, logic, message, reads });
        }
    }
    rules
}

fn parse_computed(v: Option<&Value>, scope: &ReadScope, schema: &Value, refs: &References, p: &mut Problems) -> Vec<ComputedField> {
    let mut out = Vec::new();
    let Some(list) = v.and_then(|v| parse::array(v, "/computed", Subject::key("computed"), p)) else { return out };
    let mut seen = BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        let ptr = format!("/computed/{i}");
        let Some(m) = parse::object(c, &ptr, Subject::ComputedValue, p) else { continue };
        check_keys(m, &ptr, &["field", "working_days", "lookup", "logic", "description"], &["field"], p);
        let Some(field) = parse::string_key(m, &ptr, "field", p).map(str::to_string) else { continue };
        let (row, leaf) = match field.split_once(".*.") {
            Some((list, leaf)) => (Some(list.to_string()), leaf.to_string()),
            None => (None, field.clone()),
        };
        let declared = match &row {
            None => scope.fields.top_level.contains(&field),
            Some(list) => scope.fields.is_row_list(list) && !leaf.contains('.') && scope.fields.paths.contains(&field),
        };
        if !declared {
            let (list, declared) = match &row {
                Some(list) if scope.fields.is_row_list(list) => (Some(list.clone()), scope.fields.row_fields(list).iter().map(|f| f.to_string()).collect()),
                _ => (None, Vec::new()),
            };
            p.push(format!("{ptr}/field"), codes::COMPUTED_INVALID, Detail::ComputedNotDeclared { field: field.clone(), row: list, fields: declared });
        } else if let Some((node, at)) = schema_node(schema, &field)
            && node.get("readOnly") != Some(&Value::Bool(true))
        {
            p.push(at, codes::COMPUTED_INVALID, Detail::ComputedNotReadOnly { field: field.clone() });
        }
        let scope = &scope.in_row(row.as_deref());
        if !seen.insert(field.clone()) {
            p.push(format!("{ptr}/field"), codes::DUPLICATE_ID, Detail::ComputedTwice { field: field.clone() });
        }
        let kinds: Vec<_> = ["working_days", "lookup", "logic"].into_iter().filter(|k| m.contains_key(*k)).collect();
        if kinds.len() != 1 {
            p.push(ptr.clone(), codes::COMPUTED_INVALID, Detail::ComputedKind);
            continue;
        }
        let kptr = format!("{ptr}/{}", kinds[0]);
        let spec = &m[kinds[0]];
        let computed = match kinds[0] {
            "working_days" => parse_working_days(spec, &kptr, scope, refs, p),
            "lookup" => parse_lookup(spec, &kptr, scope, refs, p),
            _ => compile_logic(spec, &kptr, scope, p).map(|(l, reads)| (Computation::Logic(l), reads)),
        };
        if let Some((computation, reads)) = computed {
            out.push(ComputedField { field, row, leaf, computation, reads });
        }
    }
    out
}

fn parse_working_days(spec: &Value, ptr: &str, scope: &ReadScope, refs: &References, p: &mut Problems) -> Option<(Computation, BTreeSet<String>)> {
    let m = parse::object(spec, ptr, Subject::key("working_days"), p)?;
    check_keys(m, ptr, &["start", "end", "half_day_start", "half_day_end", "calendar"], &["start", "end", "calendar"], p);
    let mut reads = BTreeSet::new();
    let mut field = |key: &str, p: &mut Problems| -> Option<String> {
        let name = parse::string_key(m, ptr, key, p)?;
        if !scope.has_field(name) {
            let (row, fields) = scope.known_fields();
            p.push(pointer_push(ptr, key), codes::COMPUTED_INVALID, Detail::ComputedReadsUnknown { name: name.to_string(), row, fields });
            return None;
        }
        reads.insert(name.to_string());
        Some(name.to_string())
    };
    let start = field("start", p);
    let end = field("end", p);
    let half_day_start = if m.contains_key("half_day_start") { Some(field("half_day_start", p)?) } else { None };
    let half_day_end = if m.contains_key("half_day_end") { Some(field("half_day_end", p)?) } else { None };
    let calendar_id = parse::string_key(m, ptr, "calendar", p)?;
    let calendar = refs.calendars.get(calendar_id).cloned();
    if calendar.is_none() {
        p.push(
            format!("{ptr}/calendar"),
            codes::UNKNOWN_REFERENCE,
            Detail::UnknownCalendar { id: calendar_id.to_string(), known: refs.calendars.keys().cloned().collect() },
        );
    }
    Some((Computation::WorkingDays { start: start?, end: end?, half_day_start, half_day_end, calendar: calendar? }, reads))
}

fn parse_lookup(spec: &Value, ptr: &str, scope: &ReadScope, refs: &References, p: &mut Problems) -> Option<(Computation, BTreeSet<String>)> {
    let m = parse::object(spec, ptr, Subject::key("lookup"), p)?;
    check_keys(m, ptr, &["table", "match", "value"], &["table", "match", "value"], p);
    let table_id = parse::string_key(m, ptr, "table", p)?;
    let Some(table) = refs.tables.get(table_id).cloned() else {
        p.push(
            format!("{ptr}/table"),
            codes::UNKNOWN_REFERENCE,
            Detail::UnknownTable { id: table_id.to_string(), known: refs.tables.keys().cloned().collect() },
        );
        return None;
    };
    let value = parse::string_key(m, ptr, "value", p)?.to_string();
    if !table.has_column(&value) {
        p.push(format!("{ptr}/value"), codes::UNKNOWN_REFERENCE, Detail::TableNoColumn { table: table_id.to_string(), column: value.clone() });
    }
    let match_ptr = format!("{ptr}/match");
    let wanted = parse::object(m.get("match")?, &match_ptr, Subject::key("match"), p)?;
    let mut matches = Vec::new();
    let mut reads = BTreeSet::new();
    for key in &table.keys {
        if !wanted.contains_key(key) {
            p.push(match_ptr.clone(), codes::COMPUTED_INVALID, Detail::TableKeyWithoutValue { table: table_id.to_string(), key: key.clone() });
        }
    }
    for (key, logic) in wanted {
        let kptr = pointer_push(&match_ptr, key);
        if !table.keys.contains(key) {
            p.push(kptr.clone(), codes::COMPUTED_INVALID, Detail::NotAKeyColumn { key: key.clone(), table: table_id.to_string(), keys: table.keys.clone() });
        }
        if let Some((l, r)) = compile_logic(logic, &kptr, scope, p) {
            reads.extend(r);
            matches.push((key.clone(), l));
        }
    }
    Some((Computation::Lookup { table, matches, value }, reads))
}

fn parse_layout(v: &Value, fields: &FieldIndex, p: &mut Problems) -> Option<Layout> {
    let m = parse::object(v, "/layout", Subject::key("layout"), p)?;
    check_keys(m, "/layout", &["groups", "restricted", "widgets", "applicant", "rows", "summary"], &["groups"], p);
    let mut layout = Layout::default();
    let mut placed: BTreeMap<String, String> = BTreeMap::new();
    if let Some(groups) = m.get("groups").and_then(|g| parse::array(g, "/layout/groups", Subject::key("groups"), p)) {
        for (i, g) in groups.iter().enumerate() {
            let ptr = format!("/layout/groups/{i}");
            let Some(gm) = parse::object(g, &ptr, Subject::Group, p) else { continue };
            check_keys(gm, &ptr, &["id", "title", "fields"], &["id", "title", "fields"], p);
            let id = parse::string_key(gm, &ptr, "id", p).map(str::to_string);
            let title = gm.get("title").and_then(|t| parse::localized(t, &format!("{ptr}/title"), p));
            let mut names = Vec::new();
            if let Some(list) = gm.get("fields").and_then(|f| parse::array(f, &format!("{ptr}/fields"), Subject::key("fields"), p)) {
                for (j, f) in list.iter().enumerate() {
                    let fptr = format!("{ptr}/fields/{j}");
                    let Some(name) = parse::string(f, &fptr, Subject::FieldName, p) else { continue };
                    if !fields.top_level.iter().any(|t| t == name) {
                        p.push(fptr, codes::LAYOUT, Detail::NotTopLevelField { name: name.to_string() });
                    } else if let Some(other) = placed.insert(name.to_string(), fptr.clone()) {
                        p.push(fptr, codes::LAYOUT, Detail::PlacedTwice { name: name.to_string(), at: other.to_string() });
                    }
                    names.push(name.to_string());
                }
            }
            if let (Some(id), Some(title)) = (id, title) {
                layout.groups.push(LayoutGroup { id, title, fields: names });
            }
        }
        for name in &fields.top_level {
            if !placed.contains_key(name) {
                p.push("/layout/groups", codes::LAYOUT, Detail::FieldInNoGroup { name: name.to_string() });
            }
        }
    }
    if let Some(r) = m.get("restricted").and_then(|r| parse::object(r, "/layout/restricted", Subject::key("restricted"), p)) {
        for (field, roles) in r {
            let ptr = pointer_push("/layout/restricted", field);
            if !fields.paths.contains(field) {
                p.push(ptr.clone(), codes::LAYOUT, Detail::NotASchemaField { field: field.to_string() });
            }
            let list: Vec<String> = parse::array(roles, &ptr, Subject::SeeingRoles, p)
                .map(|a| a.iter().enumerate().filter_map(|(i, r)| parse::string(r, &format!("{ptr}/{i}"), Subject::Role, p).map(str::to_string)).collect())
                .unwrap_or_default();
            for (i, role) in list.iter().enumerate() {
                if !KNOWN_ROLES.contains(&role.as_str()) {
                    p.push(
                        format!("{ptr}/{i}"),
                        codes::LAYOUT,
                        Detail::UnknownRole { role: role.to_string(), known: KNOWN_ROLES.map(str::to_string).to_vec() },
                    );
                }
            }
            layout.restricted.insert(field.clone(), list);
        }
    }
    if let Some(w) = m.get("widgets").and_then(|w| parse::object(w, "/layout/widgets", Subject::key("widgets"), p)) {
        for (field, widget) in w {
            let ptr = pointer_push("/layout/widgets", field);
            if !fields.paths.contains(field) {
                p.push(ptr.clone(), codes::LAYOUT, Detail::NotASchemaField { field: field.to_string() });
            }
            match widget.as_str() {
                Some(name) if WIDGETS.contains(&name) => {
                    check_widget_fits(name, field, fields, &ptr, p);
                    layout.widgets.insert(field.clone(), name.to_string());
                }
                _ => p.push(ptr, codes::LAYOUT, Detail::UnknownWidget { widget: widget.to_string(), known: WIDGETS.map(str::to_string).to_vec() }),
            }
        }
    }
    if let Some(list) = m.get("applicant").and_then(|a| parse::array(a, "/layout/applicant", Subject::key("applicant"), p)) {
        for (i, fact) in list.iter().enumerate() {
            let ptr = format!("/layout/applicant/{i}");
            let Some(fact) = parse::string(fact, &ptr, Subject::ApplicantFact, p) else { continue };
            if !APPLICANT_FACTS.contains(&fact) {
                p.push(
                    ptr,
                    codes::UNKNOWN_CONTEXT,
                    Detail::UnknownApplicantFact { fact: fact.to_string(), known: APPLICANT_FACTS.map(str::to_string).to_vec() },
                );
            } else if layout.applicant.iter().any(|f| f == fact) {
                p.push(ptr, codes::ROW_LAYOUT, Detail::ApplicantFactTwice { fact: fact.to_string() });
            } else {
                layout.applicant.push(fact.to_string());
            }
        }
    }
    if let Some(rows) = m.get("rows").and_then(|r| parse::object(r, "/layout/rows", Subject::key("rows"), p)) {
        for (list, order) in rows {
            let ptr = pointer_push("/layout/rows", list);
            if let Some(names) = parse_row_order(list, order, fields, &ptr, p) {
                layout.rows.insert(list.clone(), names);
            }
        }
    }
    layout.summary = super::summary::parse_summary(m, fields, &layout.restricted, p);
    Some(layout)
}

/// The order of a row's fields: each field of the row exactly once.
fn parse_row_order(list: &str, order: &Value, fields: &FieldIndex, ptr: &str, p: &mut Problems) -> Option<Vec<String>> {
    if !fields.is_row_list(list) {
        p.push(ptr, codes::ROW_LAYOUT, Detail::NotARowList { list: list.to_string() });
        return None;
    }
    let declared = fields.row_fields(list);
    let names = parse::array(order, ptr, Subject::RowFieldOrder, p)?;
    let mut out: Vec<String> = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let at = format!("{ptr}/{i}");
        let Some(name) = parse::string(n, &at, Subject::RowField, p) else { continue };
        if !declared.contains(&name) {
            p.push(
                at,
                codes::ROW_LAYOUT,
                Detail::NotARowField { name: name.to_string(), list: list.to_string(), fields: declared.iter().map(|f| f.to_string()).collect() },
            );
        } else if out.iter().any(|o| o == name) {
            p.push(at, codes::ROW_LAYOUT, Detail::RowFieldPlacedTwice { name: name.to_string() });
        } else {
            out.push(name.to_string());
        }
    }
    for d in &declared {
        if !out.iter().any(|o| o == d) {
            p.push(ptr, codes::ROW_LAYOUT, Detail::RowFieldNotPlaced { field: d.to_string(), list: list.to_string() });
        }
    }
    Some(out)
}

/// A widget must suit the field's type: a time box for text, a number box for numbers.
fn check_widget_fits(widget: &str, field: &str, fields: &FieldIndex, ptr: &str, p: &mut Problems) {
    let wants: &[&str] = match widget {
        "date" | "time" | "person" => &["string"],
        "number" => &["number", "integer"],
        _ => return,
    };
    if let Some(types) = fields.types.get(field)
        && !types.iter().any(|t| wants.contains(&t.as_str()))
    {
        let held = types.iter().cloned().collect();
        let wants = wants.iter().map(|w| w.to_string()).collect();
        p.push(ptr, codes::ROW_LAYOUT, Detail::WidgetWrongType { widget: widget.to_string(), wants, field: field.to_string(), held });
    }
}

fn parse_examples(v: &Value, p: &mut Problems) -> Option<Examples> {
    let m = parse::object(v, "/examples", Subject::key("examples"), p)?;
    check_keys(m, "/examples", &["context", "valid", "invalid"], &["context", "valid", "invalid"], p);
    let context = m.get("context").cloned().unwrap_or(Value::Null);
    if !context.is_object() {
        p.push("/examples/context", codes::BAD_VALUE, Detail::ExampleContextShape);
    }
    let read = |key: &str, invalid: bool, min: usize, p: &mut Problems| -> Vec<Example> {
        let ptr = format!("/examples/{key}");
        let Some(list) = m.get(key).and_then(|l| parse::array(l, &ptr, Subject::key(key), p)) else { return Vec::new() };
        if list.len() < min {
            p.push(ptr.clone(), codes::TOO_FEW_EXAMPLES, Detail::TooFewExamples { min, key: key.to_string(), found: list.len() });
        }
        let mut out = Vec::new();
        for (i, e) in list.iter().enumerate() {
            let eptr = format!("{ptr}/{i}");
            let Some(em) = parse::object(e, &eptr, Subject::Example, p) else { continue };
            let known: &[&str] = if invalid { &["name", "data", "context", "expect"] } else { &["name", "data", "context", "computed"] };
            let required: &[&str] = if invalid { &["name", "data", "expect"] } else { &["name", "data"] };
            check_keys(em, &eptr, known, required, p);
            let name = parse::string_key(em, &eptr, "name", p).unwrap_or("").to_string();
            let mut expect = Vec::new();
            if let Some(list) = em.get("expect").and_then(|x| parse::array(x, &format!("{eptr}/expect"), Subject::key("expect"), p)) {
                if list.is_empty() {
                    p.push(format!("{eptr}/expect"), codes::BAD_VALUE, Detail::InvalidExampleNoExpect);
                }
                for (j, x) in list.iter().enumerate() {
                    let xptr = format!("{eptr}/expect/{j}");
                    let Some(xm) = parse::object(x, &xptr, Subject::ExpectedError, p) else { continue };
                    check_keys(xm, &xptr, &["pointer", "code"], &["pointer", "code"], p);
                    let pointer = xm.get("pointer").and_then(Value::as_str);
                    let code = parse::string_key(xm, &xptr, "code", p);
                    if let (Some(pointer), Some(code)) = (pointer, code) {
                        expect.push((pointer.to_string(), code.to_string()));
                    }
                }
            }
            let computed = em.get("computed").and_then(|c| parse::object(c, &format!("{eptr}/computed"), Subject::key("computed"), p)).cloned();
            out.push(Example {
                pointer: eptr,
                name,
                data: em.get("data").cloned().unwrap_or(Value::Null),
                context: em.get("context").cloned(),
                computed,
                expect,
            });
        }
        out
    };
    let valid = read("valid", false, 2, p);
    let invalid = read("invalid", true, 3, p);
    Some(Examples { context, valid, invalid })
}
