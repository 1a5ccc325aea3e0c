//! A form on the page, from its definition alone: the layout's groups in order, a control for each
//! field chosen from its JSON Schema and the layout's widget hints, labels and option labels in
//! the reader's language, computed values read-only, and each validation error beside the field
//! its pointer names. `data_from_form` reads the posted fields back into JSON by the same schema.
//!
//! No form is known here by name: whatever a definition can express, this renders. Arrays of
//! objects become repeatable rows; anything the renderer has no control for (an array of arrays,
//! an object without declared properties) falls back to a JSON text area, so every field stays
//! fillable.

use super::t;
use crate::directory::Directory;
use crate::forms::{FieldError, FormDefinition, TIME_OF_DAY_FORMAT};
use crate::i18n::Lang;
use maud::{Markup, html};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Posted field names starting with this hold JSON text (the fallback control).
const JSON_PREFIX: &str = "json:";
/// Posted with each checkbox (but a declaration's): unticked means `false`, not "not answered".
const BOOL_MARKER: &str = "_bool";
/// The id of the list of directory people that person pickers offer.
const PEOPLE_LIST: &str = "carimbo-people";

/// One rendering of a form: its values, computed values and errors.
pub struct FormView<'a> {
    pub form: &'a FormDefinition,
    pub lang: Lang,
    pub data: &'a Value,
    pub computed: &'a BTreeMap<String, Value>,
    pub errors: &'a [FieldError],
    /// Array fields (input names, e.g. `dependants`) that get one more blank row.
    pub extra_rows: &'a BTreeSet<String>,
    /// False for a read-only view (a case, a preview): values as text, no controls.
    pub editable: bool,
    /// The staff directory, for the applicant block (`layout.applicant`) and person pickers.
    pub directory: Option<&'a Directory>,
    /// The person the form is about (the applicant), shown read-only above the form.
    pub applicant: Option<&'a str>,
}

/// Where one field sits: its input name (`dependants.0.name`), its label path
/// (`dependants.*.name`) and its data pointer (`/dependants/0/name`).
#[derive(Clone)]
struct At {
    name: String,
    path: String,
    pointer: String,
}

impl At {
    fn root() -> At {
        At { name: String::new(), path: String::new(), pointer: String::new() }
    }

    fn child(&self, key: &str) -> At {
        At { name: join(&self.name, key), path: join(&self.path, key), pointer: format!("{}/{}", self.pointer, key.replace('~', "~0").replace('/', "~1")) }
    }

    fn item(&self, index: usize) -> At {
        At { name: join(&self.name, &index.to_string()), path: join(&self.path, "*"), pointer: format!("{}/{index}", self.pointer) }
    }

    fn id(&self) -> String {
        format!("f-{}", self.name.replace('.', "-"))
    }
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() { key.to_string() } else { format!("{base}.{key}") }
}

/// A schema node with local `$ref`s followed (a bounded number of times).
fn resolve<'s>(root: &'s Value, mut node: &'s Value) -> &'s Value {
    for _ in 0..8 {
        match node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')).and_then(|p| root.pointer(p)) {
            Some(target) => node = target,
            None => break,
        }
    }
    node
}

/// The node's type, ignoring `"null"` in a list of types.
fn type_of(node: &Value) -> Option<&str> {
    match node.get("type") {
        Some(Value::String(s)) => Some(s),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => {
            if node.get("properties").is_some() {
                Some("object")
            } else {
                None
            }
        }
    }
}

fn required_of(node: &Value) -> BTreeSet<&str> {
    node.get("required").and_then(Value::as_array).map(|l| l.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

fn is_restricted_marker(v: &Value) -> bool {
    v.get("restricted") == Some(&Value::Bool(true)) && v.as_object().is_some_and(|o| o.len() == 1)
}

/// What kind of control a node gets.
enum Control {
    Computed,
    Object,
    Rows,
    Json,
    Boolean,
    Choice(Vec<Value>),
    Text,
}

impl<'a> FormView<'a> {
    fn schema(&self) -> &'a Value {
        &self.form.schema
    }

    fn label(&self, at: &At) -> String {
        match self.form.labels.get(&at.path) {
            Some(l) => l.get(self.lang).to_string(),
            None => at.path.rsplit('.').next().unwrap_or_default().replace('_', " "),
        }
    }

    fn option_label(&self, at: &At, value: &Value) -> String {
        let key = text_of(value);
        self.form.options.get(&at.path).and_then(|o| o.get(&key)).map(|l| l.get(self.lang).to_string()).unwrap_or(key)
    }

    fn widget(&self, at: &At) -> Option<&str> {
        self.form.layout.widgets.get(&at.path).map(String::as_str)
    }

    fn errors_at(&self, at: &At) -> Vec<&'a FieldError> {
        self.errors.iter().filter(|e| e.pointer == at.pointer).collect()
    }

    fn value_at(&self, at: &At) -> Option<&'a Value> {
        if at.pointer.is_empty() { Some(self.data) } else { self.data.pointer(&at.pointer) }
    }

    fn control(&self, at: &At, node: &Value) -> Control {
        let top_level = !at.name.contains('.');
        if node.get("readOnly") == Some(&Value::Bool(true)) || (top_level && self.form.computed_fields().any(|c| c == at.name)) {
            return Control::Computed;
        }
        if let Some(Value::Array(values)) = node.get("enum") {
            return Control::Choice(values.clone());
        }
        match type_of(node) {
            Some("object") if node.get("properties").is_some_and(Value::is_object) => Control::Object,
            Some("array") => {
                let items = resolve(self.schema(), node.get("items").unwrap_or(&Value::Null));
                let simple_item =
                    |n: &Value| matches!(type_of(resolve(self.schema(), n)), Some("string" | "number" | "integer" | "boolean")) || n.get("enum").is_some();
                let flat = items.get("properties").and_then(Value::as_object).is_some_and(|props| props.values().all(simple_item));
                if type_of(items) == Some("object") && flat { Control::Rows } else { Control::Json }
            }
            Some("boolean") => Control::Boolean,
            Some("string" | "number" | "integer") => Control::Text,
            _ => Control::Json,
        }
    }

    /// The whole form: a summary of the errors, then each layout group with its fields.
    pub fn render(&self) -> Markup {
        let root = At::root();
        let required = required_of(self.schema());
        html! {
            @if !self.errors.is_empty() {
                div.error-summary role="alert" {
                    p { strong { (t(self.lang, "表格有錯誤，請按欄位旁的說明修改。", "O formulário tem erros: corrija os campos indicados.", "The form has errors: correct the fields shown.")) } }
                    ul {
                        @for e in self.errors {
                            li {
                                @let at = self.at_of_pointer(&e.pointer);
                                @if e.pointer.is_empty() { (e.message) } @else { a href=(format!("#{}", at.id())) { (self.label(&at)) } ": " (e.message) }
                            }
                        }
                    }
                }
            }
            (self.applicant_block())
            @for g in &self.form.layout.groups {
                fieldset.group {
                    legend { (g.title.get(self.lang)) }
                    @for name in &g.fields {
                        @let at = root.child(name);
                        @let node = self.schema().pointer(&format!("/properties/{}", name.replace('~', "~0").replace('/', "~1"))).unwrap_or(&Value::Null);
                        (self.field(&at, resolve(self.schema(), node), required.contains(name.as_str())))
                    }
                }
            }
            (self.people_list())
        }
    }

    /// Who applies, read-only, from the directory: the facts `layout.applicant` lists, names
    /// in the reader's language. Nothing of it is posted: carimbo knows who is signed in.
    fn applicant_block(&self) -> Markup {
        let facts = match (self.directory, self.applicant) {
            (Some(dir), Some(person)) if !self.form.layout.applicant.is_empty() => dir.applicant_facts(person).unwrap_or_default(),
            _ => return html! {},
        };
        let lang = self.lang;
        let text = |v: Option<&Value>| -> String {
            match v {
                Some(Value::Object(m)) => m.get(lang.code()).map(text_of).unwrap_or_default(),
                Some(v) => text_of(v),
                None => String::new(),
            }
        };
        html! {
            fieldset.group.applicant {
                legend { (t(lang, "申請人", "Requerente", "Applicant")) }
                @for fact in &self.form.layout.applicant {
                    @let shown = match fact.as_str() {
                        "department" => match (text(facts.get("department_name")), text(facts.get("department"))) {
                            (name, id) if name.is_empty() => id,
                            (name, id) => format!("{name} ({id})"),
                        },
                        "resident" => match facts.get("resident") {
                            Some(Value::Bool(true)) => t(lang, "是", "Sim", "Yes").to_string(),
                            Some(Value::Bool(false)) => t(lang, "否", "Não", "No").to_string(),
                            _ => String::new(),
                        },
                        other => text(facts.get(other)),
                    };
                    div.field.computed {
                        span.label id=(format!("applicant-{fact}-label")) { (fact_label(lang, fact)) }
                        output id=(format!("applicant-{fact}")) aria-labelledby=(format!("applicant-{fact}-label")) { @if shown.is_empty() { "—" } @else { (shown) } }
                    }
                }
            }
        }
    }

    /// The people a person picker offers, once per page.
    fn people_list(&self) -> Markup {
        let picks = self.editable && self.form.layout.widgets.values().any(|w| w == "person");
        match self.directory {
            Some(dir) if picks => html! {
                datalist id=(PEOPLE_LIST) {
                    @for p in dir.people() { option value=(p.id) { (p.name.get(self.lang)) } }
                }
            },
            _ => html! {},
        }
    }

    /// The input name and label path of a data pointer, for the summary's links.
    fn at_of_pointer(&self, pointer: &str) -> At {
        let mut at = At::root();
        for seg in pointer.split('/').skip(1) {
            let seg = seg.replace("~1", "/").replace("~0", "~");
            at = match seg.parse::<usize>() {
                Ok(i) if !seg.is_empty() => at.item(i),
                _ => at.child(&seg),
            };
        }
        at
    }

    fn field(&self, at: &At, node: &Value, required: bool) -> Markup {
        let label = self.label(at);
        let errors = self.errors_at(at);
        let value = self.value_at(at);
        let id = at.id();
        // One id per message; the control is described by all of them.
        let err_ids: Vec<String> = (0..errors.len()).map(|i| format!("{id}-error-{i}")).collect();
        let err_id = err_ids.join(" ");
        let invalid = !errors.is_empty();
        let errs = html! { @for (e, eid) in errors.iter().zip(&err_ids) { p.field-error id=(eid) { (e.message) } } };
        let star = html! { @if required && self.editable { abbr.req title=(t(self.lang, "必填", "obrigatório", "required")) { "*" } } };
        if !self.editable && value.is_some_and(is_restricted_marker) {
            return html! { div.field { span.label { (label) } p.value.muted { (t(self.lang, "（受限制資料）", "(dados reservados)", "(restricted)")) } } };
        }
        match self.control(at, node) {
            Control::Computed => {
                let shown = self.computed.get(&at.name).or(value).filter(|v| !v.is_null());
                html! {
                    div.field.computed.has-error[invalid] {
                        span.label id=(format!("{id}-label")) { (label) }
                        output id=(id) aria-labelledby=(format!("{id}-label")) { @match shown { Some(v) => (super::shown(&text_of(v))), None => "—" } }
                        @if self.editable { small.muted { " " (t(self.lang, "由系統計算", "calculado pelo sistema", "computed by carimbo")) } }
                        (errs)
                    }
                }
            }
            Control::Object => {
                let props = node.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
                let req = required_of(node);
                html! {
                    fieldset.object.has-error[invalid] id=(id) {
                        legend { (label) (star) }
                        (errs)
                        @for (k, sub) in &props { (self.field(&at.child(k), resolve(self.schema(), sub), req.contains(k.as_str()))) }
                    }
                }
            }
            Control::Rows => self.rows(at, node, &label, star, errs, invalid),
            Control::Json => {
                let text = value.map(|v| serde_json::to_string_pretty(v).unwrap_or_default()).unwrap_or_default();
                html! {
                    div.field.has-error[invalid] {
                        label for=(id) { (label) (star) }
                        @if self.editable {
                            textarea.json id=(id) name=(format!("{JSON_PREFIX}{}", at.name)) rows="6" aria-invalid=[invalid.then_some("true")] aria-describedby=[invalid.then_some(&err_id)] { (text) }
                            small.muted { (t(self.lang, "以 JSON 填寫", "em JSON", "as JSON")) }
                        } @else { pre.value { (text) } }
                        (errs)
                    }
                }
            }
            Control::Boolean => {
                let checked = value == Some(&Value::Bool(true));
                let must_tick = node.get("const") == Some(&Value::Bool(true));
                // A box is for a yes that may be left unticked (a default, a declaration, or the
                // author's hint); any other yes/no question gets two radios, so "no" is an answer.
                let as_radio = self.widget(at) == Some("radio") || !(self.widget(at) == Some("checkbox") || must_tick || node.get("default").is_some());
                if !self.editable {
                    return html! { div.field { span.label { (label) } p.value { @match value { Some(Value::Bool(true)) => (t(self.lang, "是", "Sim", "Yes")), Some(Value::Bool(false)) => (t(self.lang, "否", "Não", "No")), _ => "—" } } } };
                }
                if as_radio {
                    return html! {
                        fieldset.radio.has-error[invalid] id=(id) {
                            legend { (label) (star) }
                            label.inline { input type="radio" name=(at.name) value="true" checked[checked]; " " (t(self.lang, "是", "Sim", "Yes")) }
                            label.inline { input type="radio" name=(at.name) value="false" checked[value == Some(&Value::Bool(false))]; " " (t(self.lang, "否", "Não", "No")) }
                            (errs)
                        }
                    };
                }
                html! {
                    div.field.check.has-error[invalid] {
                        label.inline {
                            input type="checkbox" id=(id) name=(at.name) value="true" checked[checked] aria-invalid=[invalid.then_some("true")] aria-describedby=[invalid.then_some(&err_id)];
                            " " (label) (star)
                        }
                        @if !must_tick { input type="hidden" name=(BOOL_MARKER) value=(at.name); }
                        (errs)
                    }
                }
            }
            Control::Choice(values) => {
                let current = value.map(text_of).unwrap_or_default();
                if !self.editable {
                    return html! { div.field { span.label { (label) } p.value { @match value { Some(v) => (self.option_label(at, v)), None => "—" } } } };
                }
                if self.widget(at) == Some("radio") {
                    return html! {
                        fieldset.radio.has-error[invalid] id=(id) {
                            legend { (label) (star) }
                            @for v in &values {
                                label.inline { input type="radio" name=(at.name) value=(text_of(v)) checked[text_of(v) == current && value.is_some()]; " " (self.option_label(at, v)) }
                            }
                            (errs)
                        }
                    };
                }
                html! {
                    div.field.has-error[invalid] {
                        label for=(id) { (label) (star) }
                        select id=(id) name=(at.name) aria-invalid=[invalid.then_some("true")] aria-describedby=[invalid.then_some(&err_id)] {
                            option value="" { "—" }
                            @for v in &values { option value=(text_of(v)) selected[value.is_some() && text_of(v) == current] { (self.option_label(at, v)) } }
                        }
                        (errs)
                    }
                }
            }
            Control::Text => {
                let current = value.map(text_of).unwrap_or_default();
                if !self.editable {
                    return html! { div.field { span.label { (label) } p.value { @if current.is_empty() { "—" } @else { (current) } } } };
                }
                let format = node.get("format").and_then(Value::as_str);
                let kind = type_of(node).unwrap_or("string");
                let widget = self.widget(at);
                let max = node.get("maxLength").and_then(Value::as_u64);
                let described = invalid.then_some(&err_id);
                let aria_invalid = invalid.then_some("true");
                // A browser's time box stops at 23:59: a stored 24:00 (the end of a day) is kept
                // in a text box rather than lost.
                let time_box = (widget == Some("time") || format == Some(TIME_OF_DAY_FORMAT)) && !current.starts_with("24");
                let control = match (widget, kind, format) {
                    (Some("hidden"), _, _) => html! { input type="hidden" id=(id) name=(at.name) value=(current); },
                    (Some("textarea"), _, _) => {
                        html! { textarea id=(id) name=(at.name) rows="4" maxlength=[max] aria-invalid=[aria_invalid] aria-describedby=[described] { (current) } }
                    }
                    _ if time_box => {
                        html! { input type="time" step=(if current.len() == 8 { "1" } else { "60" }) id=(id) name=(at.name) value=(current) aria-invalid=[aria_invalid] aria-describedby=[described]; }
                    }
                    (Some("time"), _, _) | (_, _, Some(TIME_OF_DAY_FORMAT)) => {
                        html! { input type="text" inputmode="numeric" id=(id) name=(at.name) value=(current) placeholder="18:30" aria-invalid=[aria_invalid] aria-describedby=[described]; }
                    }
                    (Some("date"), _, _) => {
                        html! { input type="date" id=(id) name=(at.name) value=(current) aria-invalid=[aria_invalid] aria-describedby=[described]; }
                    }
                    (Some("number"), _, _) => {
                        html! { input type="number" step="any" inputmode="decimal" id=(id) name=(at.name) value=(current) aria-invalid=[aria_invalid] aria-describedby=[described]; }
                    }
                    (Some("person"), _, _) => {
                        html! { input type="text" list=[self.directory.map(|_| PEOPLE_LIST)] autocomplete="off" id=(id) name=(at.name) value=(current) maxlength=[max] placeholder="p001" aria-invalid=[aria_invalid] aria-describedby=[described]; }
                    }
                    (_, "integer", _) => {
                        html! { input type="number" step="1" inputmode="numeric" id=(id) name=(at.name) value=(current) aria-invalid=[aria_invalid] aria-describedby=[described]; }
                    }
                    (_, "number", _) => {
                        html! { input type="number" step="any" inputmode="decimal" id=(id) name=(at.name) value=(current) aria-invalid=[aria_invalid] aria-describedby=[described]; }
                    }
                    (_, _, Some("date")) => {
                        html! { input type="date" id=(id) name=(at.name) value=(current) aria-invalid=[aria_invalid] aria-describedby=[described]; }
                    }
                    (_, _, Some("date-time")) => {
                        html! { input type="text" id=(id) name=(at.name) value=(current) placeholder="2026-03-02T09:00:00+08:00" aria-invalid=[aria_invalid] aria-describedby=[described]; }
                    }
                    (_, _, Some("email")) => {
                        html! { input type="email" id=(id) name=(at.name) value=(current) maxlength=[max] aria-invalid=[aria_invalid] aria-describedby=[described]; }
                    }
                    _ => {
                        html! { input type="text" id=(id) name=(at.name) value=(current) maxlength=[max] aria-invalid=[aria_invalid] aria-describedby=[described]; }
                    }
                };
                if widget == Some("hidden") {
                    return control;
                }
                html! {
                    div.field.has-error[invalid] {
                        label for=(id) { (label) (star) }
                        (control)
                        (errs)
                    }
                }
            }
        }
    }

    /// An array of objects: one fieldset per row, and a button that adds a blank row (a plain
    /// form post, so it works without JavaScript). A row left entirely blank is dropped.
    fn rows(&self, at: &At, node: &Value, label: &str, star: Markup, errs: Markup, invalid: bool) -> Markup {
        let items = resolve(self.schema(), node.get("items").unwrap_or(&Value::Null));
        let props = items.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        let req = required_of(items);
        let existing = self.value_at(at).and_then(Value::as_array).map_or(0, Vec::len);
        let blank = if !self.editable { 0 } else { usize::from(existing == 0) + usize::from(self.extra_rows.contains(&at.name)) };
        let count = existing + blank;
        // The layout's order of the row's fields (`layout.rows`), else the schema's.
        let order: Vec<String> = match self.form.layout.rows.get(&at.path) {
            Some(o) => o.clone(),
            None => props.keys().cloned().collect(),
        };
        html! {
            fieldset.rows.has-error[invalid] id=(at.id()) {
                legend { (label) (star) }
                (errs)
                @if count == 0 { p.muted { "—" } }
                @for i in 0..count {
                    @let row = at.item(i);
                    fieldset.row {
                        legend { (label) " " (i + 1) }
                        @for k in &order {
                            @if let Some(sub) = props.get(k.as_str()) { (self.field(&row.child(k), resolve(self.schema(), sub), req.contains(k.as_str()))) }
                        }
                    }
                }
                @if self.editable {
                    p.muted { (t(self.lang, "整行留空即會刪除該行。", "Uma linha deixada em branco é retirada.", "A row left blank is removed.")) }
                    button.secondary type="submit" name="_do" value=(format!("add:{}", at.name)) { (t(self.lang, "加一行", "Acrescentar linha", "Add a row")) }
                }
            }
        }
    }
}

/// The label of a fact about the applicant (`layout.applicant`).
fn fact_label(lang: Lang, fact: &str) -> &'static str {
    match fact {
        "id" => t(lang, "編號", "Número", "Staff number"),
        "name" => t(lang, "姓名", "Nome", "Name"),
        "department" | "department_name" => t(lang, "部門", "Serviço", "Department"),
        "grade" => t(lang, "職級", "Categoria", "Grade"),
        "grade_band" => t(lang, "職級組別", "Escalão", "Grade band"),
        "years_of_service" => t(lang, "服務年資", "Anos de serviço", "Years of service"),
        "annual_leave_balance" => t(lang, "年假餘額", "Saldo de férias", "Annual-leave balance"),
        "special_leave_entitlement" => t(lang, "特別假期", "Licença especial", "Special-leave entitlement"),
        "resident" => t(lang, "澳門居民", "Residente de Macau", "Macau resident"),
        _ => t(lang, "資料", "Dado", "Fact"),
    }
}

/// A data pointer as a reader names the field: its label in the reader's language, with the row
/// number inside repeatable rows (`/dependants/1/name` → "Dependants 2 › Name"). For lists of
/// changes, where a pointer has no control beside it.
pub fn pointer_label(form: &FormDefinition, lang: Lang, pointer: &str) -> String {
    let (computed, extra) = (BTreeMap::new(), BTreeSet::new());
    let view =
        FormView { form, lang, data: &Value::Null, computed: &computed, errors: &[], extra_rows: &extra, editable: false, directory: None, applicant: None };
    let mut at = At::root();
    let mut parts: Vec<String> = Vec::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        match seg.parse::<usize>() {
            // As `at_of_pointer`: a number is a row (forms name no field with digits only).
            Ok(i) => {
                at = at.item(i);
                if let Some(last) = parts.last_mut() {
                    last.push_str(&format!(" {}", i + 1));
                }
            }
            _ => {
                at = at.child(&seg);
                parts.push(view.label(&at));
            }
        }
    }
    if parts.is_empty() { t(lang, "整份表格", "Todo o formulário", "The whole form").to_string() } else { parts.join(" › ") }
}

/// A value as the read-only view shows it: an option's label, yes or no, "—" for nothing.
pub fn value_label(form: &FormDefinition, lang: Lang, pointer: &str, value: &Value) -> String {
    let (computed, extra) = (BTreeMap::new(), BTreeSet::new());
    let view =
        FormView { form, lang, data: &Value::Null, computed: &computed, errors: &[], extra_rows: &extra, editable: false, directory: None, applicant: None };
    match value {
        Value::Null => "—".to_string(),
        Value::Bool(true) => t(lang, "是", "Sim", "Yes").to_string(),
        Value::Bool(false) => t(lang, "否", "Não", "No").to_string(),
        Value::String(_) | Value::Number(_) => view.option_label(&view.at_of_pointer(pointer), value),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// The schema node an input name points at (`dependants.0.name` → the item's `name`).
fn node_for<'s>(root: &'s Value, name: &str) -> Option<&'s Value> {
    let mut node = resolve(root, root);
    for seg in name.split('.') {
        node = if seg.bytes().all(|b| b.is_ascii_digit()) && !seg.is_empty() && type_of(node) == Some("array") {
            resolve(root, node.get("items")?)
        } else {
            resolve(root, node.get("properties")?.get(seg)?)
        };
    }
    Some(node)
}

/// A posted text as the JSON value the schema expects. What does not convert stays a string,
/// so the schema reports it beside the field ("must be a number") instead of losing it.
fn convert(node: Option<&Value>, text: &str) -> Value {
    let kind = node.and_then(|n| {
        if let Some(Value::Array(values)) = n.get("enum") {
            // An enum's values may be numbers: take the declared value whose text matches.
            if let Some(v) = values.iter().find(|v| text_of(v) == text) {
                return Some(match v {
                    Value::String(_) => "string",
                    Value::Bool(_) => "boolean",
                    Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
                    Value::Number(_) => "number",
                    _ => "string",
                });
            }
        }
        type_of(n)
    });
    match kind {
        Some("boolean") => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => Value::String(other.into()),
        },
        Some("integer" | "number") => {
            let t = text.trim();
            if let Ok(i) = t.parse::<i64>() {
                Value::from(i)
            } else if let Some(n) = t.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Value::Number(n)
            } else {
                Value::String(text.into())
            }
        }
        _ => Value::String(text.into()),
    }
}

/// Places `value` at a dotted input name, creating objects on the way (array indices are kept
/// as object keys until `finish` turns them into arrays by the schema).
fn place(target: &mut Map<String, Value>, name: &str, value: Value) {
    let mut segs = name.split('.').peekable();
    let mut here = target;
    while let Some(seg) = segs.next() {
        if segs.peek().is_none() {
            here.insert(seg.to_string(), value);
            return;
        }
        let next = here.entry(seg.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(m) = next else { return };
        here = m;
    }
}

/// Turns collected values into the data's shape: indexed maps into arrays (in index order, blank
/// rows dropped), empty objects dropped. `None` for nothing at all.
fn finish(root: &Value, node: Option<&Value>, value: Value) -> Option<Value> {
    let node = node.map(|n| resolve(root, n));
    match value {
        Value::Object(m) => {
            let is_array = node.and_then(type_of) == Some("array");
            if is_array && m.keys().all(|k| k.parse::<usize>().is_ok()) {
                let items = node.and_then(|n| n.get("items"));
                let mut rows: Vec<(usize, Value)> = m.into_iter().filter_map(|(k, v)| Some((k.parse().ok()?, v))).collect();
                rows.sort_by_key(|(i, _)| *i);
                let out: Vec<Value> = rows.into_iter().filter_map(|(_, v)| finish(root, items, v)).collect();
                return (!out.is_empty()).then_some(Value::Array(out));
            }
            let props = node.and_then(|n| n.get("properties"));
            let mut out = Map::new();
            for (k, v) in m {
                if let Some(v) = finish(root, props.and_then(|p| p.get(&k)), v) {
                    out.insert(k, v);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        other => Some(other),
    }
}

/// Reads a posted form back into the form's data. Fields left blank are absent; names starting
/// with `_` (page actions) and the CSRF token are not data.
pub fn data_from_form(form: &FormDefinition, pairs: &[(String, String)]) -> Value {
    let root = &form.schema;
    let mut collected = Map::new();
    let mut ticked_or_not: Vec<&str> = Vec::new();
    for (name, text) in pairs {
        if name == BOOL_MARKER {
            ticked_or_not.push(text);
            continue;
        }
        if name.starts_with('_') || name == "csrf" || name.is_empty() {
            continue;
        }
        if text.trim().is_empty() {
            continue;
        }
        let (name, value) = match name.strip_prefix(JSON_PREFIX) {
            // Text that is not I-JSON (a repeated name too) stays text, which the schema refuses.
            Some(n) => (n, crate::json_strict::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))),
            None => (name.as_str(), convert(node_for(root, name), text)),
        };
        place(&mut collected, name, value);
    }
    // A checkbox left unticked is an answer, `false`, where anything else of its object (the
    // form, a filled-in row) was given; a blank row stays blank and is dropped.
    for name in ticked_or_not {
        let (parent, key) = name.rsplit_once('.').unwrap_or(("", name));
        let mut here = Some(&mut collected);
        for seg in parent.split('.').filter(|s| !s.is_empty()) {
            here = here.and_then(|m| m.get_mut(seg)).and_then(Value::as_object_mut);
        }
        if let Some(obj) = here {
            obj.entry(key.to_string()).or_insert(Value::Bool(false));
        }
    }
    finish(root, Some(root), Value::Object(collected)).unwrap_or_else(|| Value::Object(Map::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form() -> std::sync::Arc<FormDefinition> {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let report = crate::catalog::Catalog::load_paths(&[root.join("forms")]);
        report.catalog.form("family-allowance").expect("the shipped form loads").clone()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn posted_rows_become_an_array_in_index_order_without_blank_rows() {
        let f = form();
        let data =
            data_from_form(&f, &pairs(&[("csrf", "x"), ("dependants.1.name", "B"), ("dependants.0.name", "A"), ("dependants.2.name", ""), ("_do", "check")]));
        assert_eq!(data["dependants"], json!([{"name": "A"}, {"name": "B"}]));
        assert!(data.get("csrf").is_none() && data.get("_do").is_none());
    }

    #[test]
    fn a_change_names_its_field_and_row_and_shows_values_as_the_reader_reads_them() {
        let f = form();
        assert_eq!(pointer_label(&f, Lang::En, "/dependants/1/name"), "Dependants 2 › Name");
        assert_eq!(pointer_label(&f, Lang::En, "/dependants"), "Dependants");
        let relation = f.options.get("dependants.*.relation").and_then(|o| o.keys().next().cloned()).expect("relations have option labels");
        let shown = f.options["dependants.*.relation"][&relation].get(Lang::Pt).to_string();
        assert_eq!(value_label(&f, Lang::Pt, "/dependants/0/relation", &json!(relation)), shown, "an option by its label");
        assert_eq!(value_label(&f, Lang::Zh, "/dependants/0/student", &json!(true)), "是");
        assert_eq!(value_label(&f, Lang::En, "/dependants/0/name", &Value::Null), "—", "nothing before");
    }

    #[test]
    fn numbers_and_booleans_follow_the_schema_and_bad_numbers_stay_text() {
        let report = crate::catalog::Catalog::load_paths(&[std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("forms")]);
        let leave = report.catalog.form("absence-and-annual-leave").unwrap();
        let data = data_from_form(leave, &pairs(&[("half_day_start", "true"), ("working_days", "2.5"), ("leave_type", "annual"), ("start_date", "")]));
        assert_eq!(data, json!({"half_day_start": true, "working_days": 2.5, "leave_type": "annual"}));
        let data = data_from_form(leave, &pairs(&[("working_days", "many")]));
        assert_eq!(data["working_days"], json!("many"));
    }

    #[test]
    fn every_shipped_form_renders_with_a_control_for_each_field() {
        let report = crate::catalog::Catalog::load_paths(&[std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("forms")]);
        for f in report.catalog.forms.values() {
            let view = FormView {
                form: f,
                lang: Lang::Pt,
                data: &json!({}),
                computed: &BTreeMap::new(),
                errors: &[],
                extra_rows: &BTreeSet::new(),
                editable: true,
                directory: None,
                applicant: None,
            };
            let html = view.render().into_string();
            for name in f.layout.groups.iter().flat_map(|g| g.fields.iter()) {
                assert!(html.contains(&format!("id=\"f-{name}")), "{}: no control for {name}", f.id);
            }
        }
    }

    /// The name/value pairs a browser would post for the controls in `html` (inputs with their
    /// values, ticked boxes and radios, selected options, text areas): enough of HTML form
    /// submission to check that what the renderer draws reads back into the same data.
    fn posted_pairs(html: &str) -> Vec<(String, String)> {
        fn attr(tag: &str, name: &str) -> Option<String> {
            let key = format!(" {name}=\"");
            let start = tag.find(&key)? + key.len();
            let end = start + tag[start..].find('"')?;
            Some(unescape(&tag[start..end]))
        }
        fn has(tag: &str, name: &str) -> bool {
            tag.contains(&format!(" {name}>")) || tag.contains(&format!(" {name} ")) || tag.ends_with(&format!(" {name}"))
        }
        fn unescape(s: &str) -> String {
            s.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'").replace("&amp;", "&")
        }
        let mut out = Vec::new();
        let mut rest = html;
        while let Some(i) = rest.find('<') {
            rest = &rest[i..];
            let end = rest.find('>').map_or(rest.len(), |e| e + 1);
            let tag = &rest[..end];
            if tag.starts_with("<input ") {
                let kind = attr(tag, "type").unwrap_or_default();
                if let Some(name) = attr(tag, "name")
                    && (!matches!(kind.as_str(), "checkbox" | "radio") || has(tag, "checked"))
                {
                    out.push((name, attr(tag, "value").unwrap_or_default()));
                }
            } else if tag.starts_with("<textarea ") {
                let body_end = rest.find("</textarea>").unwrap_or(rest.len());
                if let Some(name) = attr(tag, "name") {
                    out.push((name, unescape(&rest[end..body_end])));
                }
            } else if tag.starts_with("<select ") {
                let body_end = rest.find("</select>").unwrap_or(rest.len());
                if let Some(name) = attr(tag, "name") {
                    let body = &rest[end..body_end];
                    let chosen = body
                        .split("<option ")
                        .find(|o| o.split('>').next().is_some_and(|t| has(&format!(" {t}"), "selected")))
                        .and_then(|o| attr(&format!(" {o}"), "value"));
                    out.push((name, chosen.unwrap_or_default()));
                }
            }
            rest = &rest[end..];
        }
        out
    }

    fn merged(base: &Value, over: Option<&Value>) -> Value {
        match (base, over) {
            (Value::Object(b), Some(Value::Object(o))) => {
                let mut m = b.clone();
                for (k, v) in o {
                    let next = merged(m.get(k).unwrap_or(&Value::Null), Some(v));
                    m.insert(k.clone(), next);
                }
                Value::Object(m)
            }
            (_, Some(v)) => v.clone(),
            (b, None) => b.clone(),
        }
    }

    /// Every leaf (pointer, value) of a JSON value, `false` booleans left out: an unticked box
    /// posts nothing, which the schema reads as the same answer.
    fn leaves(v: &Value, at: String, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, x)| leaves(x, format!("{at}/{k}"), out)),
            Value::Array(l) => l.iter().enumerate().for_each(|(i, x)| leaves(x, format!("{at}/{i}"), out)),
            Value::Bool(false) => {}
            other => out.push((at, other.clone())),
        }
    }

    fn overtime() -> (std::sync::Arc<FormDefinition>, Directory) {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let report = crate::catalog::Catalog::load_paths(&[root.join("forms/reference"), root.join("docs/examples")]);
        let dir = Directory::load(&root.join("seeds/directory/directory.json")).unwrap();
        (report.catalog.form("overtime-claim").expect("the worked example loads").clone(), dir)
    }

    #[test]
    fn row_fields_follow_the_layout_and_times_get_a_time_box_and_people_a_picker() {
        let (f, dir) = overtime();
        let data = json!({"periods": [{"date": "2026-03-02", "start_time": "18:00", "end_time": "21:30", "reason": "Accounts"}]});
        let view = FormView {
            form: &f,
            lang: Lang::En,
            data: &data,
            computed: &BTreeMap::new(),
            errors: &[],
            extra_rows: &BTreeSet::new(),
            editable: true,
            directory: Some(&dir),
            applicant: Some("p006"),
        };
        let html = view.render().into_string();
        let at = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("no {needle} in the page"));
        let order = ["f-periods-0-date", "f-periods-0-start_time", "f-periods-0-end_time", "f-periods-0-hours", "f-periods-0-reason", "f-periods-0-ordered_by"]
            .map(|id| at(&format!("id=\"{id}\"")));
        assert!(order.windows(2).all(|w| w[0] < w[1]), "rows follow layout.rows: {order:?}");
        assert!(html.contains(r#"<input type="time" step="60" id="f-periods-0-start_time" name="periods.0.start_time" value="18:00""#), "{html}");
        assert!(html.contains(r#"<input type="date" id="f-periods-0-date""#));
        assert!(html.contains(r#"<input type="text" list="carimbo-people" autocomplete="off" id="f-periods-0-ordered_by""#), "{html}");
        assert!(html[at("<datalist id=\"carimbo-people\">")..].contains(r#"<option value="p001">Leong Kuok Wa</option>"#), "the picker offers the directory");
        // A stored end of day is kept in a text box, which a time box would drop.
        let data = json!({"periods": [{"date": "2026-03-05", "start_time": "19:00", "end_time": "24:00", "reason": "Migration"}]});
        let view = FormView {
            form: &f,
            lang: Lang::En,
            data: &data,
            computed: &BTreeMap::new(),
            errors: &[],
            extra_rows: &BTreeSet::new(),
            editable: true,
            directory: None,
            applicant: None,
        };
        let html = view.render().into_string();
        assert!(html.contains(r#"<input type="text" inputmode="numeric" id="f-periods-0-end_time" name="periods.0.end_time" value="24:00""#), "{html}");
        assert!(!html.contains("datalist"), "no directory, no list");
    }

    #[test]
    fn the_applicant_is_shown_read_only_in_the_readers_language() {
        let (f, dir) = overtime();
        for (lang, name, department) in [(Lang::Zh, "黃偉強", "行政財政處 (DAF)"), (Lang::Pt, "Wong Wai Keong", "Divisão Administrativa e Financeira (DAF)")]
        {
            let view = FormView {
                form: &f,
                lang,
                data: &json!({}),
                computed: &BTreeMap::new(),
                errors: &[],
                extra_rows: &BTreeSet::new(),
                editable: true,
                directory: Some(&dir),
                applicant: Some("p006"),
            };
            let html = view.render().into_string();
            assert!(html.contains(&format!(r#"<output id="applicant-name" aria-labelledby="applicant-name-label">{name}</output>"#)), "{html}");
            assert!(
                html.contains(&format!(r#"<output id="applicant-department" aria-labelledby="applicant-department-label">{department}</output>"#)),
                "{html}"
            );
            assert!(html.contains(r#"<output id="applicant-id" aria-labelledby="applicant-id-label">p006</output>"#));
            assert!(html.contains(r#"<output id="applicant-grade" aria-labelledby="applicant-grade-label">técnico</output>"#));
            assert!(!posted_pairs(&html).iter().any(|(n, _)| n.starts_with("applicant")), "nothing of the applicant is posted");
        }
    }

    #[test]
    fn the_overtime_claims_valid_examples_survive_the_page_with_their_rows_and_hours() {
        let (f, dir) = overtime();
        let ex = f.examples.as_ref().unwrap();
        for e in &ex.valid {
            let view = FormView {
                form: &f,
                lang: Lang::Zh,
                data: &e.data,
                computed: &BTreeMap::new(),
                errors: &[],
                extra_rows: &BTreeSet::new(),
                editable: true,
                directory: Some(&dir),
                applicant: Some("p006"),
            };
            let back = data_from_form(&f, &posted_pairs(&view.render().into_string()));
            assert_eq!(back["periods"], e.data["periods"], "{:?}", e.name);
            let ctx = crate::forms::ValidationContext::from_value(&ex.context).unwrap();
            assert!(f.validate(&back, &ctx, Lang::En).is_ok(), "{:?}", e.name);
        }
    }

    #[test]
    fn each_valid_example_of_each_shipped_form_survives_the_page_and_still_validates() {
        let report = crate::catalog::Catalog::load_paths(&[std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("forms")]);
        let mut checked = 0;
        for f in report.catalog.forms.values() {
            let ex = f.examples.as_ref().expect("shipped forms have examples");
            for e in &ex.valid {
                let view = FormView {
                    form: f,
                    lang: Lang::En,
                    data: &e.data,
                    computed: &BTreeMap::new(),
                    errors: &[],
                    extra_rows: &BTreeSet::new(),
                    editable: true,
                    directory: None,
                    applicant: None,
                };
                let back = data_from_form(f, &posted_pairs(&view.render().into_string()));
                let ctx = crate::forms::ValidationContext::from_value(&merged(&ex.context, e.context.as_ref())).unwrap();
                if let Err(errors) = f.validate(&back, &ctx, Lang::En) {
                    panic!("{} / {:?}: the page's post is refused: {errors:?}\nposted: {back}", f.id, e.name);
                }
                let (mut want, mut got) = (Vec::new(), Vec::new());
                leaves(&e.data, String::new(), &mut want);
                leaves(&back, String::new(), &mut got);
                let computed: Vec<String> = f.computed_fields().map(|c| format!("/{}", c.replace(".*.", "/*/"))).collect();
                want.retain(|(p, _)| {
                    !computed
                        .iter()
                        .any(|c| crate::forms::field_path_of_pointer(p) == crate::forms::field_path_of_pointer(c) || p.starts_with(&format!("{c}/")))
                });
                for (p, v) in &want {
                    let found = got.iter().find(|(q, _)| q == p).map(|(_, w)| w);
                    let same = match (found.and_then(Value::as_f64), v.as_f64()) {
                        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                        _ => found == Some(v),
                    };
                    assert!(same, "{} / {:?}: {p} was {v}, the page posts {found:?}", f.id, e.name);
                }
                checked += 1;
            }
        }
        assert!(checked >= 36, "only {checked} examples checked");
    }
}
