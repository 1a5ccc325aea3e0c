//! The set of definitions carimbo serves, loaded from files, and `carimbo check`.
//!
//! Loading reads every `*.json` under the given paths, dispatches on `kind`, reads reference data
//! (calendars, rates tables) before the forms that use it, refuses duplicate ids, resolves
//! workflow references and runs every form's examples. Every problem in every file is collected;
//! the catalog holds only the definitions that had none.

use crate::directory::Directory;
use crate::forms::definition::{Example, FormDefinition, References};
use crate::forms::parse;
use crate::forms::problem::{ErrorCode, Problem, Problems, codes};
use crate::forms::problem_detail::{Detail, JsonType, Unreadable};
use crate::forms::{HolidayCalendar, RatesTable, ValidationContext};
use crate::i18n::{Lang, LocalizedText};
use crate::workflow::{CheckInputs, FormOutline, WorkflowDefinition};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest definition file read; the biggest shipped form is well under 100 KiB.
pub const MAX_DEFINITION_BYTES: u64 = 2 * 1024 * 1024;

/// The name a reference file has in a case's pins and in an evidence bundle: `reference/<file>`.
pub fn reference_name(source_name: &str) -> String {
    let base = std::path::Path::new(source_name).file_name().and_then(|n| n.to_str()).unwrap_or(source_name);
    format!("reference/{base}")
}

/// One definition file: its name as given, its bytes' hash and its parsed JSON.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub stem: Option<String>,
    pub bytes: Vec<u8>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, bytes: Vec<u8>) -> Self {
        let name = name.into();
        // `<id>.form.json` / `<id>.workflow.json` let a form and its workflow sit side by side
        // in one directory (docs/examples); the id is still the name before them.
        let stem = Path::new(&name)
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| s.strip_suffix(".form").or_else(|| s.strip_suffix(".workflow")).unwrap_or(s).to_string());
        SourceFile { name, stem, bytes }
    }
}

/// Forms and reference data that passed every check.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    pub forms: BTreeMap<String, Arc<FormDefinition>>,
    pub references: References,
    pub workflows: BTreeMap<String, Arc<WorkflowDefinition>>,
    /// Ids of every workflow file seen, loaded or not, and the file that defines it.
    pub workflow_ids: BTreeMap<String, String>,
    /// The bytes of every loaded form and workflow by content hash, so a store can keep the
    /// exact version each case is pinned to.
    pub sources: BTreeMap<String, Arc<[u8]>>,
    /// The bytes of the reference data (calendars, rates tables) by file name.
    pub reference_sources: Vec<SourceFile>,
}

/// The outcome of loading: what loaded, every problem, and counts for the summary line.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub catalog: Catalog,
    pub problems: Vec<Problem>,
    pub files: usize,
    pub examples_run: usize,
    /// Said once to the author, not an error (e.g. no workflow definitions were given).
    pub notes: Vec<String>,
    /// Things that load but are likely not what the author meant, as `FILE:POINTER: warning`.
    pub warnings: Vec<Problem>,
}

/// What kind of definition a file holds, read from its `kind` (for naming where a problem is
/// when a form and its workflow share a file name).
pub fn kind_of(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    v.get("kind")?.as_str().map(str::to_string)
}

impl Catalog {
    /// The reference data served, as a case pins it: `reference/<file>` → SHA-256 (hex) of its bytes.
    pub fn reference_pins(&self) -> BTreeMap<String, String> {
        self.reference_sources.iter().map(|s| (reference_name(&s.name), hex::encode(Sha256::digest(&s.bytes)))).collect()
    }

    /// Loads every `*.json` under `paths` (files or directories, searched recursively).
    pub fn load_paths(paths: &[PathBuf]) -> LoadReport {
        Catalog::load_paths_with(paths, None)
    }

    /// As `load_paths`, checking workflow groups against the directory when one is given.
    pub fn load_paths_with(paths: &[PathBuf], directory: Option<&Directory>) -> LoadReport {
        Catalog::load_paths_with_reference(paths, &[], directory)
    }

    /// As `load_paths_with`, also reading the reference data (calendars, rates tables) in
    /// `reference` that `paths` do not already include: `carimbo check FILE` on one form finds
    /// the calendar it names in the checkout's `forms/reference`.
    pub fn load_paths_with_reference(paths: &[PathBuf], reference: &[PathBuf], directory: Option<&Directory>) -> LoadReport {
        let mut problems = Vec::new();
        let mut files = Vec::new();
        for path in paths {
            collect_files(path, &mut files, &mut problems);
        }
        let given: std::collections::BTreeSet<PathBuf> = files.iter().filter_map(|f| f.canonicalize().ok()).collect();
        for dir in reference {
            let mut more = Vec::new();
            collect_files(dir, &mut more, &mut Vec::new());
            for f in more {
                let is_reference = std::fs::read(&f).ok().and_then(|b| kind_of(&b)).is_some_and(|k| k == "holiday-calendar" || k == "rates-table");
                if is_reference && f.canonicalize().is_ok_and(|c| !given.contains(&c)) {
                    files.push(f);
                }
            }
        }
        let mut sources = Vec::new();
        for f in files {
            let name = f.display().to_string();
            match std::fs::metadata(&f) {
                Ok(m) if m.len() > MAX_DEFINITION_BYTES => {
                    problems.push(problem(
                        &name,
                        "",
                        codes::UNREADABLE_FILE,
                        Detail::FileTooLarge { kib: m.len() / 1024, limit_kib: MAX_DEFINITION_BYTES / 1024 },
                    ));
                    continue;
                }
                _ => {}
            }
            match std::fs::read(&f) {
                Ok(bytes) => sources.push(SourceFile::new(name, bytes)),
                Err(e) => problems.push(problem(&name, "", codes::UNREADABLE_FILE, Detail::CannotRead { what: Unreadable::File, error: e.to_string() })),
            }
        }
        if sources.is_empty() && problems.is_empty() {
            let names: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
            problems.push(problem(&names.join(" "), "", codes::NO_DEFINITIONS, Detail::NoDefinitionFiles));
        }
        let mut report = Catalog::load_sources_with(&sources, directory);
        problems.append(&mut report.problems);
        report.problems = problems;
        report
    }

    /// Loads definitions given as (file name, bytes) pairs, e.g. the texts an evidence bundle
    /// carries: the same checks as files, with nothing read from disk.
    pub fn load_named(sources: impl IntoIterator<Item = (String, Vec<u8>)>) -> LoadReport {
        let sources: Vec<SourceFile> = sources.into_iter().map(|(name, bytes)| SourceFile::new(name, bytes)).collect();
        Catalog::load_sources(&sources)
    }

    /// Loads definitions from memory (an upload, or files already read).
    pub fn load_sources(sources: &[SourceFile]) -> LoadReport {
        Catalog::load_sources_with(sources, None)
    }

    pub fn load_sources_with(sources: &[SourceFile], directory: Option<&Directory>) -> LoadReport {
        let mut report = LoadReport { files: sources.len(), ..Default::default() };
        let mut parsed: Vec<(&SourceFile, Map<String, Value>, String)> = Vec::new();
        for src in sources {
            let mut p = Problems::new(&src.name);
            match crate::json_strict::from_slice::<Value>(&src.bytes) {
                Err(crate::json_strict::StrictJsonError::Duplicate { pointer, name, line, column }) => {
                    // The repeated member itself (as `StrictJsonError::member_pointer`).
                    let member = crate::forms::pointer_push(&pointer, &name);
                    p.push(member, codes::DUPLICATE_MEMBER, Detail::DuplicateMember { name, at: pointer, line, column })
                }
                Err(crate::json_strict::StrictJsonError::Json(e)) if e.to_string().starts_with("recursion limit exceeded") => {
                    p.push("", codes::MALFORMED_JSON, Detail::JsonTooDeep { line: e.line(), column: e.column() })
                }
                Err(crate::json_strict::StrictJsonError::Json(e)) => {
                    p.push("", codes::MALFORMED_JSON, Detail::MalformedJson { line: e.line(), column: e.column(), error: strip_position(&e.to_string()) })
                }
                Ok(Value::Object(m)) => {
                    let kind = m.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
                    parsed.push((src, m, kind));
                }
                Ok(other) => p.push("", codes::NOT_AN_OBJECT, Detail::NotAnObject { found: JsonType::of(&other) }),
            }
            report.problems.extend(p.into_vec());
        }

        // Reference data first: forms name calendars and tables.
        let mut ids: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut refs = References::default();
        for (src, m, kind) in &parsed {
            let mut p = Problems::new(&src.name);
            match kind.as_str() {
                "holiday-calendar" => {
                    if let Some(c) = HolidayCalendar::parse(m, &mut p)
                        && register(&mut ids, kind, &c.id, &src.name, &mut p)
                    {
                        refs.calendars.insert(c.id.clone(), Arc::new(c));
                        report.catalog.reference_sources.push((*src).clone());
                    }
                }
                "rates-table" => {
                    if let Some(t) = RatesTable::parse(m, &mut p)
                        && register(&mut ids, kind, &t.id, &src.name, &mut p)
                    {
                        refs.tables.insert(t.id.clone(), Arc::new(t));
                        report.catalog.reference_sources.push((*src).clone());
                    }
                }
                "workflow" => {
                    if let Some(id) = parse::string_key(m, "", "id", &mut p)
                        && register(&mut ids, kind, id, &src.name, &mut p)
                    {
                        report.catalog.workflow_ids.insert(id.to_string(), src.name.clone());
                    }
                }
                "form" => {}
                "" => p.push("", codes::UNKNOWN_KIND, Detail::MissingKind),
                other => p.push("/kind", codes::UNKNOWN_KIND, Detail::UnknownKind { kind: other.to_string() }),
            }
            report.problems.extend(p.into_vec());
        }

        // What a workflow is checked against: every form file's outline, loaded or not.
        let mut outlines: BTreeMap<String, FormOutline> = BTreeMap::new();
        for (src, m, kind) in &parsed {
            if kind != "form" {
                continue;
            }
            let mut p = Problems::new(&src.name);
            let hash = hex::encode(Sha256::digest(&src.bytes));
            if let Some(outline) = FormOutline::read(m) {
                outlines.entry(outline.id.clone()).or_insert(outline);
            }
            if let Some(form) = FormDefinition::parse(m, src.stem.as_deref(), hash, &refs, &mut p) {
                if report.catalog.workflow_ids.is_empty() {
                    // Checked once workflow definitions are given; noted below.
                } else if !report.catalog.workflow_ids.contains_key(&form.workflow) {
                    p.push("/workflow", codes::UNKNOWN_WORKFLOW, Detail::NoSuchWorkflow { id: form.workflow.clone() });
                }
                report.examples_run += run_examples(&form, &mut p);
                if p.is_empty() && register(&mut ids, kind, &form.id, &src.name, &mut p) {
                    outlines.insert(form.id.clone(), FormOutline::of(&form));
                    report.catalog.sources.insert(form.content_hash.clone(), src.bytes.clone().into());
                    report.catalog.forms.insert(form.id.clone(), Arc::new(form));
                }
            }
            report.problems.extend(p.into_vec());
        }
        // Workflows last: they are checked against their form's fields.
        for (src, m, kind) in &parsed {
            if kind != "workflow" {
                continue;
            }
            let mut p = Problems::new(&src.name);
            let hash = hex::encode(Sha256::digest(&src.bytes));
            let inputs = CheckInputs { forms: &outlines, directory, calendars: &refs.calendars };
            if let Some(w) = WorkflowDefinition::parse(m, src.stem.as_deref(), hash, &inputs, &mut p, &mut report.warnings)
                && report.catalog.workflow_ids.get(&w.id) == Some(&src.name)
            {
                report.catalog.sources.insert(w.content_hash.clone(), src.bytes.clone().into());
                report.catalog.workflows.insert(w.id.clone(), Arc::new(w));
            }
            report.problems.extend(p.into_vec());
        }
        if report.catalog.workflow_ids.is_empty() && !report.catalog.forms.is_empty() {
            report.notes.push("workflow references were not checked: no workflow definitions were given".into());
        }
        report.catalog.references = refs;
        report
    }

    pub fn form(&self, id: &str) -> Option<&Arc<FormDefinition>> {
        self.forms.get(id)
    }

    pub fn workflow(&self, id: &str) -> Option<&Arc<WorkflowDefinition>> {
        self.workflows.get(id)
    }
}

/// Records an id; a second definition of the same kind and id is a problem in the later file.
fn register(ids: &mut BTreeMap<(String, String), String>, kind: &str, id: &str, file: &str, p: &mut Problems) -> bool {
    match ids.get(&(kind.to_string(), id.to_string())) {
        Some(first) => {
            p.push("/id", codes::DUPLICATE_ID, Detail::DuplicateDefinition { kind: kind.to_string(), id: id.to_string(), first: first.clone() });
            false
        }
        None => {
            ids.insert((kind.to_string(), id.to_string()), file.to_string());
            true
        }
    }
}

fn problem(file: &str, pointer: &str, code: ErrorCode, detail: Detail) -> Problem {
    Problem::new(file, pointer, code, detail)
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    let name = path.display().to_string();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            problems.push(problem(&name, "", codes::UNREADABLE_FILE, Detail::CannotRead { what: Unreadable::Path, error: e.to_string() }));
            return;
        }
    };
    if meta.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            problems.push(problem(&name, "", codes::UNREADABLE_FILE, Detail::CannotRead { what: Unreadable::Directory, error: e.to_string() }));
            return;
        }
    };
    entries.sort();
    for e in entries {
        let hidden = e.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if e.is_dir() {
            collect_files(&e, out, problems);
        } else if e.extension().is_some_and(|x| x == "json") {
            out.push(e);
        }
    }
}

/// Merges `over` into `base` (objects recursively), for example contexts.
fn merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                let merged = match out.get(k) {
                    Some(existing) => merge(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, o) => o.clone(),
    }
}

/// Runs a form's examples; returns how many ran.
fn run_examples(form: &FormDefinition, p: &mut Problems) -> usize {
    let Some(ex) = &form.examples else { return 0 };
    let mut ran = 0;
    let context_of = |e: &Example, p: &mut Problems| -> Option<ValidationContext> {
        let ctx = match &e.context {
            Some(c) => merge(&ex.context, c),
            None => ex.context.clone(),
        };
        match ValidationContext::from_example(&ctx) {
            Ok(c) => Some(c),
            Err(detail) => {
                p.push(format!("{}/context", e.pointer), codes::BAD_VALUE, *detail);
                None
            }
        }
    };
    for e in &ex.valid {
        let Some(ctx) = context_of(e, p) else { continue };
        ran += 1;
        match form.validate(&e.data, &ctx, Lang::En) {
            Ok(sub) => {
                for (field, want) in e.computed.iter().flatten() {
                    let got = sub.computed.get(field).cloned().unwrap_or(Value::Null);
                    let equal = match (got.as_f64(), want.as_f64()) {
                        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                        _ => &got == want,
                    };
                    if !equal {
                        p.push(
                            format!("{}/computed/{field}", e.pointer),
                            codes::VALID_EXAMPLE_REJECTED,
                            Detail::ExampleComputedDiffers { example: e.name.clone(), field: field.clone(), got: got.to_string(), want: want.to_string() },
                        );
                    }
                }
            }
            Err(errors) => {
                // The refusal is read in every language only when there is one (zh and pt
                // validated again, in the same order).
                let again = |lang| form.validate(&e.data, &ctx, lang).err().unwrap_or_default();
                let (zh, pt) = (again(Lang::Zh), again(Lang::Pt));
                for (i, err) in errors.iter().enumerate() {
                    let say = |list: &[crate::forms::FieldError]| list.get(i).map_or_else(|| err.message.clone(), |f| f.message.clone());
                    let message = LocalizedText::new(say(&zh), say(&pt), err.message.clone());
                    let detail = Detail::ValidExampleRefused { example: e.name.clone(), pointer: err.pointer.clone(), message, code: err.code.clone() };
                    p.push(e.pointer.clone(), codes::VALID_EXAMPLE_REJECTED, detail);
                }
            }
        }
    }
    for e in &ex.invalid {
        let Some(ctx) = context_of(e, p) else { continue };
        ran += 1;
        match form.validate(&e.data, &ctx, Lang::En) {
            Ok(_) => p.push(e.pointer.clone(), codes::INVALID_EXAMPLE_ACCEPTED, Detail::InvalidExampleAccepted { example: e.name.clone() }),
            Err(errors) => {
                for (i, (pointer, code)) in e.expect.iter().enumerate() {
                    if !errors.iter().any(|err| &err.pointer == pointer && &err.code == code) {
                        let got: Vec<String> = errors.iter().map(|err| format!("{} {}", err.pointer, err.code)).collect();
                        p.push(
                            format!("{}/expect/{i}", e.pointer),
                            codes::EXAMPLE_ERROR_MISSING,
                            Detail::ExpectedErrorMissing { example: e.name.clone(), code: code.clone(), pointer: pointer.clone(), got },
                        );
                    }
                }
            }
        }
    }
    ran
}
