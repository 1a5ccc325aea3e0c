//! A form definition read, checked and compiled: schema, labels, computed values, rules, layout.
//!
//! `FormDefinition::parse` is the only way to get one, and it either returns a definition whose
//! schema compiled, whose rules compiled and name only existing fields, and whose every text is in
//! zh / pt / en, or it returns nothing and leaves every problem in the collector.

use super::logic::{self, LogicScan};
use super::parse::{self, check_keys, type_name};
use super::problem::{codes, pointer_push, Problems};
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

const WIDGETS: [&str; 6] = ["textarea", "checkbox", "radio", "select", "hidden", "text"];

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
    pub field: String,
    pub computation: Computation,
    /// Top-level fields it reads: if one of them failed the schema, it is not computed.
    pub reads: BTreeSet<String>,
}

#[derive(Debug)]
pub(crate) enum Computation {
    WorkingDays {
        start: String,
        end: String,
        half_day_start: Option<String>,
        half_day_end: Option<String>,
        calendar: Arc<HolidayCalendar>,
    },
    Lookup {
        table: Arc<RatesTable>,
        matches: Vec<(String, Arc<Logic>)>,
        value: String,
    },
    Logic(Arc<Logic>),
}

/// A cross-field rule: passes when its logic is truthy.
#[derive(Debug)]
pub(crate) struct Rule {
    pub id: String,
    pub pointer: String,
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
#[derive(Debug, Default)]
pub(crate) struct FieldIndex {
    pub top_level: Vec<String>,
    /// Paths of declared properties (`spouse`, `spouse.name`, `dependants.*.name`).
    pub paths: BTreeSet<String>,
    /// Paths of array items (`panel.*`), which have no label of their own.
    pub items: BTreeSet<String>,
    pub enums: BTreeMap<String, BTreeSet<String>>,
}

impl FieldIndex {
    /// Whether `path` names a declared field or the items of a declared array.
    pub fn knows(&self, path: &str) -> bool {
        self.paths.contains(path) || self.items.contains(path)
    }

    fn from_schema(schema: &Value) -> FieldIndex {
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
            && let Some(target) = r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                self.walk(target, root, path, depth + 1);
            }
        if let Some(Value::Object(props)) = m.get("properties") {
            for (name, sub) in props {
                let child = join(path, name);
                self.paths.insert(child.clone());
                self.note_enum(sub, &child, root);
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
        .map(|seg| {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                "*".to_string()
            } else {
                seg.replace("~1", "/").replace("~0", "~")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

const FORM_KEYS: [&str; 15] = [
    "kind", "id", "version", "title", "legal_basis", "workflow", "schema", "labels", "options", "computed", "rules",
    "settings", "layout", "examples", "description",
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
                p.push("/id", codes::BAD_ID, format!("id {id:?} must be lower-case letters and digits joined by '-'"));
            } else if let Some(stem) = file_stem
                && stem != id {
                    p.push("/id", codes::BAD_ID, format!("id {id:?} does not match the file name {stem:?}.json"));
                }
        }
        let version = parse::string_key(def, "", "version", p).map(str::to_string);
        if let Some(v) = &version {
            let parts: Vec<_> = v.split('.').collect();
            if parts.len() != 3 || parts.iter().any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit())) {
                p.push("/version", codes::BAD_VALUE, format!("version {v:?} must be MAJOR.MINOR.PATCH, e.g. \"1.0.0\""));
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
                p.push(format!("/schema/properties/{name}"), codes::BAD_VALUE, format!("{name:?} is reserved for rules (context.*, settings.*); rename the field"));
            }
        }

        let labels = parse_labels(def.get("labels"), &fields, p);
        let options = parse_options(def.get("options"), &fields, p);

        let settings = match def.get("settings") {
            None => Map::new(),
            Some(v) => match parse::object(v, "/settings", "\"settings\"", p) {
                Some(m) => {
                    for (k, v) in m {
                        if v.is_object() || v.is_array() || v.is_null() {
                            p.push(pointer_push("/settings", k), codes::BAD_VALUE, "a setting must be a number, a string or a boolean");
                        }
                    }
                    m.clone()
                }
                None => Map::new(),
            },
        };

        let scope = ReadScope { fields: &fields, settings: &settings };
        let computed = parse_computed(def.get("computed"), &scope, &schema, refs, p);
        let rules = parse_rules(def.get("rules"), &scope, p);
        let layout = def.get("layout").and_then(|l| parse_layout(l, &fields, p)).unwrap_or_default();
        let examples = def.get("examples").and_then(|e| parse_examples(e, p));

        if p.len() > before {
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

fn compile_schema(schema: &Value, p: &mut Problems) -> Option<Validator> {
    let before = p.len();
    let Value::Object(m) = schema else {
        p.push("/schema", codes::SCHEMA_INVALID, format!("the schema must be an object, found {}", type_name(schema)));
        return None;
    };
    match m.get("$schema").and_then(Value::as_str) {
        Some(SCHEMA_DIALECT) => {}
        Some(other) => p.push("/schema/$schema", codes::SCHEMA_INVALID, format!("only JSON Schema draft 2020-12 is accepted ({SCHEMA_DIALECT:?}), found {other:?}")),
        None => p.push("/schema", codes::SCHEMA_INVALID, format!("missing \"$schema\": {SCHEMA_DIALECT:?}")),
    }
    if m.get("type").and_then(Value::as_str) != Some("object") {
        p.push("/schema", codes::SCHEMA_INVALID, "the data of a form is an object: the schema needs \"type\": \"object\"");
    }
    refuse_remote_refs(schema, "/schema", p, 0);
    for err in jsonschema::draft202012::meta::validator().iter_errors(schema) {
        let path = err.instance_path().to_string();
        let at = format!("/schema{path}");
        let found = schema.pointer(&path);
        // The meta-schema's own wording for a bad `type` ("not valid under any of the schemas
        // listed in the 'anyOf' keyword") does not tell an author what to write instead.
        let message = match found {
            Some(Value::String(t)) if path.ends_with("/type") => {
                format!("unknown type {t:?}; use one of: string, number, integer, boolean, object, array, null")
            }
            _ => format!("not valid JSON Schema 2020-12: {err}"),
        };
        p.push(at, codes::SCHEMA_INVALID, message);
    }
    if p.len() > before {
        return None;
    }
    // Formats are asserted (a date must be a real date); `offline` makes any reference that is
    // not inside the schema an error instead of a fetch: definitions never reach the network.
    match jsonschema::options().with_draft(Draft::Draft202012).should_validate_formats(true).offline().build(schema) {
        Ok(v) => Some(v),
        Err(e) => {
            p.push(format!("/schema{}", e.schema_path()), codes::SCHEMA_UNCOMPILABLE, format!("the schema cannot be compiled: {e}"));
            None
        }
    }
}

fn refuse_remote_refs(v: &Value, ptr: &str, p: &mut Problems, depth: usize) {
    if depth > 128 {
        p.push(ptr, codes::SCHEMA_INVALID, "the schema is nested more than 128 levels deep");
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, sub) in m {
                let here = pointer_push(ptr, k);
                if matches!(k.as_str(), "$ref" | "$dynamicRef")
                    && let Some(r) = sub.as_str()
                        && !r.starts_with('#') {
                            p.push(here.clone(), codes::REMOTE_REF, format!("reference {r:?} points outside this definition; definitions never fetch from the network: copy the schema into \"$defs\" and use \"#/$defs/...\""));
                        }
                if k == "$id" {
                    p.push(here.clone(), codes::REMOTE_REF, "\"$id\" is not allowed: a form's schema is identified by the form id and version");
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
    let map = v.and_then(|v| parse::object(v, "/labels", "\"labels\"", p));
    if let Some(map) = map {
        for (path, text) in map {
            let ptr = pointer_push("/labels", path);
            if !fields.paths.contains(path) {
                p.push(ptr.clone(), codes::BAD_VALUE, format!("label for {path:?}, which is not a field of the schema"));
            }
            if let Some(t) = parse::localized(text, &ptr, p) {
                labels.insert(path.clone(), t);
            }
        }
        for path in &fields.paths {
            if !map.contains_key(path) {
                p.push("/labels", codes::MISSING_TRANSLATION, format!("field {path:?} has no label (zh, pt, en)"));
            }
        }
    }
    labels
}

fn parse_options(v: Option<&Value>, fields: &FieldIndex, p: &mut Problems) -> BTreeMap<String, BTreeMap<String, LocalizedText>> {
    let mut options = BTreeMap::new();
    let empty = Map::new();
    let map = match v {
        Some(v) => parse::object(v, "/options", "\"options\"", p).unwrap_or(&empty),
        None => &empty,
    };
    for (path, values) in map {
        let ptr = pointer_push("/options", path);
        let Some(values) = parse::object(values, &ptr, "the options of a field", p) else { continue };
        let declared = fields.enums.get(path);
        if declared.is_none() {
            p.push(ptr.clone(), codes::BAD_VALUE, format!("options for {path:?}, which is not a field with an enum"));
        }
        let mut out = BTreeMap::new();
        for (value, text) in values {
            let vptr = pointer_push(&ptr, value);
            if declared.is_some_and(|d| !d.contains(value)) {
                p.push(vptr.clone(), codes::BAD_VALUE, format!("{value:?} is not one of the enum values of {path:?}"));
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
                p.push(pointer_push("/options", path), codes::MISSING_TRANSLATION, format!("enum value {value:?} of {path:?} has no label (zh, pt, en)"));
            }
        }
    }
    options
}

/// What a rule or computed value may read: the form's fields, `context.*`, `settings.*`.
struct ReadScope<'a> {
    fields: &'a FieldIndex,
    settings: &'a Map<String, Value>,
}

impl ReadScope<'_> {
    /// Reports each variable that names nothing; `base` is the pointer of the logic.
    fn check(&self, scan: &LogicScan, base: &str, p: &mut Problems) {
        for (ptr, fault) in &scan.faults {
            let code = if fault.contains("constant 0") { codes::RULE_DIVIDES_BY_ZERO } else { codes::RULE_SYNTAX };
            p.push(format!("{base}{ptr}"), code, fault.clone());
        }
        for (var, ptr) in scan.root_vars.iter().chain(scan.item_vars.iter()) {
            let mut segs = var.splitn(3, '.');
            match segs.next() {
                Some("context") => {}
                Some("settings") => match segs.next() {
                    Some(name) if self.settings.contains_key(name) => {}
                    _ => p.push(format!("{base}{ptr}"), codes::RULE_UNKNOWN_FIELD, format!("reads {var:?}, but the form has no such setting")),
                },
                _ => {
                    if !self.fields.knows(var) {
                        let known = self.fields.top_level.join(", ");
                        p.push(format!("{base}{ptr}"), codes::RULE_UNKNOWN_FIELD, format!("reads {var:?}, which is not a field of the form (fields: {known})"));
                    }
                }
            }
        }
    }
}

fn compile_logic(v: &Value, ptr: &str, scope: &ReadScope, p: &mut Problems) -> Option<(Arc<Logic>, BTreeSet<String>)> {
    let scan = logic::scan(v);
    let before = p.len();
    scope.check(&scan, ptr, p);
    let compiled = match logic::compile(v) {
        Ok(l) => Some(l),
        Err(e) => {
            p.push(ptr, codes::RULE_SYNTAX, format!("the logic cannot be compiled: {e}"));
            None
        }
    };
    if p.len() > before {
        return None;
    }
    Some((compiled?, scan.top_level_fields()))
}

fn parse_rules(v: Option<&Value>, scope: &ReadScope, p: &mut Problems) -> Vec<Rule> {
    let mut rules = Vec::new();
    let Some(list) = v.and_then(|v| parse::array(v, "/rules", "\"rules\"", p)) else { return rules };
    let mut ids = BTreeMap::new();
    for (i, r) in list.iter().enumerate() {
        let ptr = format!("/rules/{i}");
        let Some(m) = parse::object(r, &ptr, "a rule", p) else { continue };
        check_keys(m, &ptr, &["id", "pointer", "logic", "message", "description"], &["id", "pointer", "logic", "message"], p);
        let id = parse::string_key(m, &ptr, "id", p).map(str::to_string);
        if let Some(id) = &id {
            if !parse::is_valid_id(id) {
                p.push(format!("{ptr}/id"), codes::BAD_ID, format!("rule id {id:?} must be lower-case words joined by '-'"));
            }
            if let Some(first) = ids.insert(id.clone(), i) {
                p.push(format!("{ptr}/id"), codes::DUPLICATE_ID, format!("rule id {id:?} is already used by /rules/{first}"));
            }
        }
        let pointer = parse::string_key(m, &ptr, "pointer", p).map(str::to_string);
        if let Some(target) = &pointer {
            let path = field_path_of_pointer(target);
            if !target.starts_with('/') || !scope.fields.paths.contains(&path) {
                p.push(format!("{ptr}/pointer"), codes::RULE_UNKNOWN_FIELD, format!("{target:?} is not a JSON pointer to a field of the form"));
            }
        }
        let message = m.get("message").and_then(|t| parse::localized(t, &format!("{ptr}/message"), p));
        let logic = m.get("logic").and_then(|l| compile_logic(l, &format!("{ptr}/logic"), scope, p));
        if let (Some(id), Some(pointer), Some(message), Some((logic, reads))) = (id, pointer, message, logic) {
            rules.push(Rule { id, pointer, logic, message, reads });
        }
    }
    rules
}

fn parse_computed(v: Option<&Value>, scope: &ReadScope, schema: &Value, refs: &References, p: &mut Problems) -> Vec<ComputedField> {
    let mut out = Vec::new();
    let Some(list) = v.and_then(|v| parse::array(v, "/computed", "\"computed\"", p)) else { return out };
    let mut seen = BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        let ptr = format!("/computed/{i}");
        let Some(m) = parse::object(c, &ptr, "a computed value", p) else { continue };
        check_keys(m, &ptr, &["field", "working_days", "lookup", "logic", "description"], &["field"], p);
        let Some(field) = parse::string_key(m, &ptr, "field", p).map(str::to_string) else { continue };
        if !scope.fields.top_level.contains(&field) {
            p.push(format!("{ptr}/field"), codes::COMPUTED_INVALID, format!("{field:?} is not a property of the schema; declare it with \"readOnly\": true"));
        } else if schema.pointer(&format!("/properties/{field}/readOnly")) != Some(&Value::Bool(true)) {
            p.push(format!("/schema/properties/{field}"), codes::COMPUTED_INVALID, format!("{field:?} is computed by carimbo: mark it \"readOnly\": true"));
        }
        if !seen.insert(field.clone()) {
            p.push(format!("{ptr}/field"), codes::DUPLICATE_ID, format!("{field:?} is computed twice"));
        }
        let kinds: Vec<_> = ["working_days", "lookup", "logic"].into_iter().filter(|k| m.contains_key(*k)).collect();
        if kinds.len() != 1 {
            p.push(ptr.clone(), codes::COMPUTED_INVALID, "a computed value needs exactly one of \"working_days\", \"lookup\", \"logic\"");
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
            out.push(ComputedField { field, computation, reads });
        }
    }
    out
}

fn parse_working_days(spec: &Value, ptr: &str, scope: &ReadScope, refs: &References, p: &mut Problems) -> Option<(Computation, BTreeSet<String>)> {
    let m = parse::object(spec, ptr, "\"working_days\"", p)?;
    check_keys(m, ptr, &["start", "end", "half_day_start", "half_day_end", "calendar"], &["start", "end", "calendar"], p);
    let mut reads = BTreeSet::new();
    let mut field = |key: &str, p: &mut Problems| -> Option<String> {
        let name = parse::string_key(m, ptr, key, p)?;
        if !scope.fields.top_level.iter().any(|f| f == name) {
            p.push(pointer_push(ptr, key), codes::COMPUTED_INVALID, format!("{name:?} is not a field of the form"));
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
        p.push(format!("{ptr}/calendar"), codes::UNKNOWN_REFERENCE, format!("no holiday calendar with id {calendar_id:?} (known: {})", refs.calendars.keys().cloned().collect::<Vec<_>>().join(", ")));
    }
    Some((Computation::WorkingDays { start: start?, end: end?, half_day_start, half_day_end, calendar: calendar? }, reads))
}

fn parse_lookup(spec: &Value, ptr: &str, scope: &ReadScope, refs: &References, p: &mut Problems) -> Option<(Computation, BTreeSet<String>)> {
    let m = parse::object(spec, ptr, "\"lookup\"", p)?;
    check_keys(m, ptr, &["table", "match", "value"], &["table", "match", "value"], p);
    let table_id = parse::string_key(m, ptr, "table", p)?;
    let Some(table) = refs.tables.get(table_id).cloned() else {
        p.push(format!("{ptr}/table"), codes::UNKNOWN_REFERENCE, format!("no rates table with id {table_id:?} (known: {})", refs.tables.keys().cloned().collect::<Vec<_>>().join(", ")));
        return None;
    };
    let value = parse::string_key(m, ptr, "value", p)?.to_string();
    if !table.has_column(&value) {
        p.push(format!("{ptr}/value"), codes::UNKNOWN_REFERENCE, format!("table {table_id:?} has no column {value:?} in every row"));
    }
    let match_ptr = format!("{ptr}/match");
    let wanted = parse::object(m.get("match")?, &match_ptr, "\"match\"", p)?;
    let mut matches = Vec::new();
    let mut reads = BTreeSet::new();
    for key in &table.keys {
        if !wanted.contains_key(key) {
            p.push(match_ptr.clone(), codes::COMPUTED_INVALID, format!("table {table_id:?} is keyed by {key:?}: give a value for it"));
        }
    }
    for (key, logic) in wanted {
        let kptr = pointer_push(&match_ptr, key);
        if !table.keys.contains(key) {
            p.push(kptr.clone(), codes::COMPUTED_INVALID, format!("{key:?} is not a key column of table {table_id:?} (keys: {})", table.keys.join(", ")));
        }
        if let Some((l, r)) = compile_logic(logic, &kptr, scope, p) {
            reads.extend(r);
            matches.push((key.clone(), l));
        }
    }
    Some((Computation::Lookup { table, matches, value }, reads))
}

fn parse_layout(v: &Value, fields: &FieldIndex, p: &mut Problems) -> Option<Layout> {
    let m = parse::object(v, "/layout", "\"layout\"", p)?;
    check_keys(m, "/layout", &["groups", "restricted", "widgets", "summary"], &["groups"], p);
    let mut layout = Layout::default();
    let mut placed: BTreeMap<String, String> = BTreeMap::new();
    if let Some(groups) = m.get("groups").and_then(|g| parse::array(g, "/layout/groups", "\"groups\"", p)) {
        for (i, g) in groups.iter().enumerate() {
            let ptr = format!("/layout/groups/{i}");
            let Some(gm) = parse::object(g, &ptr, "a group", p) else { continue };
            check_keys(gm, &ptr, &["id", "title", "fields"], &["id", "title", "fields"], p);
            let id = parse::string_key(gm, &ptr, "id", p).map(str::to_string);
            let title = gm.get("title").and_then(|t| parse::localized(t, &format!("{ptr}/title"), p));
            let mut names = Vec::new();
            if let Some(list) = gm.get("fields").and_then(|f| parse::array(f, &format!("{ptr}/fields"), "\"fields\"", p)) {
                for (j, f) in list.iter().enumerate() {
                    let fptr = format!("{ptr}/fields/{j}");
                    let Some(name) = parse::string(f, &fptr, "a field name", p) else { continue };
                    if !fields.top_level.iter().any(|t| t == name) {
                        p.push(fptr, codes::LAYOUT, format!("{name:?} is not a top-level field of the schema"));
                    } else if let Some(other) = placed.insert(name.to_string(), fptr.clone()) {
                        p.push(fptr, codes::LAYOUT, format!("{name:?} is already placed at {other}"));
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
                p.push("/layout/groups", codes::LAYOUT, format!("field {name:?} is in no group, so the page would not show it"));
            }
        }
    }
    if let Some(r) = m.get("restricted").and_then(|r| parse::object(r, "/layout/restricted", "\"restricted\"", p)) {
        for (field, roles) in r {
            let ptr = pointer_push("/layout/restricted", field);
            if !fields.paths.contains(field) {
                p.push(ptr.clone(), codes::LAYOUT, format!("{field:?} is not a field of the schema"));
            }
            let list: Vec<String> = parse::array(roles, &ptr, "the roles that may see the field", p)
                .map(|a| a.iter().enumerate().filter_map(|(i, r)| parse::string(r, &format!("{ptr}/{i}"), "a role", p).map(str::to_string)).collect())
                .unwrap_or_default();
            for (i, role) in list.iter().enumerate() {
                if !KNOWN_ROLES.contains(&role.as_str()) {
                    p.push(format!("{ptr}/{i}"), codes::LAYOUT, format!("unknown role {role:?} (known: {})", KNOWN_ROLES.join(", ")));
                }
            }
            layout.restricted.insert(field.clone(), list);
        }
    }
    if let Some(w) = m.get("widgets").and_then(|w| parse::object(w, "/layout/widgets", "\"widgets\"", p)) {
        for (field, widget) in w {
            let ptr = pointer_push("/layout/widgets", field);
            if !fields.paths.contains(field) {
                p.push(ptr.clone(), codes::LAYOUT, format!("{field:?} is not a field of the schema"));
            }
            match widget.as_str() {
                Some(name) if WIDGETS.contains(&name) => {
                    layout.widgets.insert(field.clone(), name.to_string());
                }
                _ => p.push(ptr, codes::LAYOUT, format!("unknown widget {widget}; use one of {}", WIDGETS.join(", "))),
            }
        }
    }
    layout.summary = super::summary::parse_summary(m, fields, &layout.restricted, p);
    Some(layout)
}

fn parse_examples(v: &Value, p: &mut Problems) -> Option<Examples> {
    let m = parse::object(v, "/examples", "\"examples\"", p)?;
    check_keys(m, "/examples", &["context", "valid", "invalid"], &["context", "valid", "invalid"], p);
    let context = m.get("context").cloned().unwrap_or(Value::Null);
    if !context.is_object() {
        p.push("/examples/context", codes::BAD_VALUE, "the example context must be an object with at least \"today\"");
    }
    let read = |key: &str, invalid: bool, min: usize, p: &mut Problems| -> Vec<Example> {
        let ptr = format!("/examples/{key}");
        let Some(list) = m.get(key).and_then(|l| parse::array(l, &ptr, &format!("{key:?}"), p)) else { return Vec::new() };
        if list.len() < min {
            p.push(ptr.clone(), codes::TOO_FEW_EXAMPLES, format!("at least {min} {key} examples are needed, found {}", list.len()));
        }
        let mut out = Vec::new();
        for (i, e) in list.iter().enumerate() {
            let eptr = format!("{ptr}/{i}");
            let Some(em) = parse::object(e, &eptr, "an example", p) else { continue };
            let known: &[&str] = if invalid { &["name", "data", "context", "expect"] } else { &["name", "data", "context", "computed"] };
            let required: &[&str] = if invalid { &["name", "data", "expect"] } else { &["name", "data"] };
            check_keys(em, &eptr, known, required, p);
            let name = parse::string_key(em, &eptr, "name", p).unwrap_or("").to_string();
            let mut expect = Vec::new();
            if let Some(list) = em.get("expect").and_then(|x| parse::array(x, &format!("{eptr}/expect"), "\"expect\"", p)) {
                if list.is_empty() {
                    p.push(format!("{eptr}/expect"), codes::BAD_VALUE, "an invalid example must state at least one error it produces");
                }
                for (j, x) in list.iter().enumerate() {
                    let xptr = format!("{eptr}/expect/{j}");
                    let Some(xm) = parse::object(x, &xptr, "an expected error", p) else { continue };
                    check_keys(xm, &xptr, &["pointer", "code"], &["pointer", "code"], p);
                    let pointer = xm.get("pointer").and_then(Value::as_str);
                    let code = parse::string_key(xm, &xptr, "code", p);
                    if let (Some(pointer), Some(code)) = (pointer, code) {
                        expect.push((pointer.to_string(), code.to_string()));
                    }
                }
            }
            let computed = em.get("computed").and_then(|c| parse::object(c, &format!("{eptr}/computed"), "\"computed\"", p)).cloned();
            out.push(Example { pointer: eptr, name, data: em.get("data").cloned().unwrap_or(Value::Null), context: em.get("context").cloned(), computed, expect });
        }
        out
    };
    let valid = read("valid", false, 2, p);
    let invalid = read("invalid", true, 3, p);
    Some(Examples { context, valid, invalid })
}
