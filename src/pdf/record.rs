//! What the printable record says, read from an evidence bundle: the form's title and legal
//! basis, the fields laid out by the form's layout hints, and one line per signature.
//!
//! The bundle is the only input, so the server's document and the one `carimbo pdf --bundle`
//! makes offline say the same thing. What a reader may see was decided when the bundle was
//! made (`visibility::Sight` in `evidence::export`): a restricted field the reader may not see
//! reaches this module as a bare commitment and is printed as withheld.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::PdfError;
use crate::catalog::{Catalog, SourceFile};
use crate::evidence::EvidenceBundle;
use crate::forms::FormDefinition;
use crate::forms::commitment::commitment_digest;
use crate::i18n::Lang;
use crate::pki::cert::CertFacts;
use crate::visibility::is_restricted_marker;
use crate::wording::{action_label, level_label, status_label, t};
use crate::workflow::{Case, CaseEvent, SignatureRecord, WorkflowDefinition};

/// A value as printed.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    Text(String),
    /// A restricted field the reader may not see.
    Withheld,
    Empty,
}

/// One entry of a section: a field, or a list of rows drawn as a table.
#[derive(Debug, Clone)]
pub enum Item {
    Field { label: String, value: Shown, computed: bool },
    Table { label: String, columns: Vec<(String, bool)>, rows: Vec<Vec<Shown>> },
}

#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    pub items: Vec<Item>,
}

/// One signed act: who, in which role and seat, at which level, with which certificate, when.
#[derive(Debug, Clone)]
pub struct SignatureLine {
    /// The step's title and what was done ("Supervisor: approved").
    pub what: String,
    pub person: String,
    /// "for B under delegation D", when the act was a delegate's.
    pub on_behalf: Option<String>,
    /// The role (the step's title) and the seat, when it is not the step's only one.
    pub seat: Option<String>,
    pub level: String,
    pub second_factor: bool,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub signed_at: DateTime<Utc>,
    pub stamped_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
}

/// Everything the document shows, in the reader's language.
#[derive(Debug, Clone)]
pub struct Record {
    pub lang: Lang,
    pub case_id: String,
    pub title: String,
    /// The form's title in the official languages (Chinese, Portuguese) that are not the
    /// reader's: printed beside the title, as on the bilingual paper form.
    pub other_titles: Vec<String>,
    pub legal_basis: String,
    pub form_version: String,
    pub applicant: String,
    pub submitter: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub sections: Vec<Section>,
    pub signatures: Vec<SignatureLine>,
    pub status: String,
    pub status_at: DateTime<Utc>,
    /// Labels of the fields withheld from this reader.
    pub withheld: Vec<String>,
    pub exported_at: String,
    pub events: usize,
    pub last_hash: String,
}

/// How people are named: "name (id)" in the reader's language where the names are known.
pub type People<'a> = &'a dyn Fn(&str) -> String;

fn bad(e: impl std::fmt::Display) -> PdfError {
    PdfError::Bundle(e.to_string())
}

/// The form and workflow the bundle's case is pinned to, loaded as carimbo loads them.
fn definitions(b: &EvidenceBundle) -> Result<(Arc<FormDefinition>, Arc<WorkflowDefinition>), PdfError> {
    let d = &b.definitions;
    let mut sources: Vec<SourceFile> = d.reference.iter().map(|r| SourceFile::new(r.name.clone(), r.text.clone().into_bytes())).collect();
    sources.push(SourceFile::new(d.form.name.clone(), d.form.text.clone().into_bytes()));
    sources.push(SourceFile::new(d.workflow.name.clone(), d.workflow.text.clone().into_bytes()));
    let loaded = Catalog::load_sources(&sources);
    if let Some(p) = loaded.problems.first() {
        return Err(bad(format!("the bundle's definitions do not load: {p}")));
    }
    let form =
        loaded.catalog.forms.values().find(|f| f.content_hash == d.form.sha256).cloned().ok_or_else(|| bad("the bundle's form definition did not load"))?;
    let workflow = loaded
        .catalog
        .workflows
        .values()
        .find(|w| w.content_hash == d.workflow.sha256)
        .cloned()
        .ok_or_else(|| bad("the bundle's workflow definition did not load"))?;
    Ok((form, workflow))
}

/// Reads the record of `bundle` for a reader of `lang`.
pub fn read(b: &EvidenceBundle, lang: Lang, people: People) -> Result<Record, PdfError> {
    let (form, workflow) = definitions(b)?;
    let events: Vec<CaseEvent> =
        b.events.iter().map(|e| serde_json::from_value(e.body.clone()).map_err(|err| bad(format!("event {}: {err}", e.seq)))).collect::<Result<_, _>>()?;
    let case = Case::replay(&events).map_err(bad)?;
    let (sections, withheld) = sections(&form, &case.data, lang);
    let other_titles = [Lang::Zh, Lang::Pt].into_iter().filter(|l| *l != lang).map(|l| form.title.get(l).to_string()).filter(|s| !s.is_empty()).collect();
    let status_at = events.last().map(CaseEvent::at).unwrap_or(case.opened_at);
    Ok(Record {
        lang,
        case_id: case.id.clone(),
        title: form.title.get(lang).to_string(),
        other_titles,
        legal_basis: form.legal_basis.get(lang).to_string(),
        form_version: form.version.clone(),
        applicant: people(&case.subject),
        submitter: (case.submitter != case.subject).then(|| people(&case.submitter)),
        opened_at: case.opened_at,
        sections,
        signatures: signatures(&events, &workflow, lang, people),
        status: status_label(lang, case.status.as_str()).to_string(),
        status_at,
        withheld,
        exported_at: b.exported_at.clone(),
        events: b.events.len(),
        last_hash: b.head.last_hash.clone(),
    })
}

/// The sections of the form's layout (`layout.groups`), then any field no group names.
fn sections(form: &FormDefinition, data: &Value, lang: Lang) -> (Vec<Section>, Vec<String>) {
    let computed: BTreeSet<&str> = form.computed_fields().collect();
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut withheld = Vec::new();
    let mut out = Vec::new();
    let item_of = |field: &str, withheld: &mut Vec<String>| -> Option<Item> {
        let value = data.get(field)?;
        let label = form.labels.get(field).map(|l| l.get(lang).to_string()).unwrap_or_else(|| field.to_string());
        if is_withheld(value) {
            withheld.push(label.clone());
            return Some(Item::Field { label, value: Shown::Withheld, computed: false });
        }
        if let Some(rows) = value.as_array().filter(|rows| rows.iter().all(Value::is_object) && !rows.is_empty()) {
            return Some(table(form, field, label, rows, &computed, lang));
        }
        Some(Item::Field { label, value: shown(form, field, value, lang), computed: computed.contains(field) })
    };
    for group in &form.layout.groups {
        let items: Vec<Item> = group
            .fields
            .iter()
            .filter_map(|f| {
                placed.insert(f.clone());
                item_of(f, &mut withheld)
            })
            .collect();
        if !items.is_empty() {
            out.push(Section { title: group.title.get(lang).to_string(), items });
        }
    }
    let rest: Vec<String> = data.as_object().map(|o| o.keys().filter(|k| !placed.contains(*k)).cloned().collect()).unwrap_or_default();
    let items: Vec<Item> = rest.iter().filter_map(|f| item_of(f, &mut withheld)).collect();
    if !items.is_empty() {
        let title = if out.is_empty() {
            t(lang, "表格內容", "Conteúdo do formulário", "Form contents")
        } else {
            t(lang, "其他資料", "Outros dados", "Other details")
        };
        out.push(Section { title: title.to_string(), items });
    }
    (out, withheld)
}

fn is_withheld(v: &Value) -> bool {
    commitment_digest(v).is_some() || is_restricted_marker(v)
}

/// A list of rows as a table: the columns in the order `layout.rows` gives, else as found.
fn table(form: &FormDefinition, field: &str, label: String, rows: &[Value], computed: &BTreeSet<&str>, lang: Lang) -> Item {
    let mut names: Vec<String> = form.layout.rows.get(field).cloned().unwrap_or_default();
    for row in rows {
        for k in row.as_object().into_iter().flat_map(|o| o.keys()) {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let columns = names
        .iter()
        .map(|n| {
            let path = format!("{field}.*.{n}");
            let title = form.labels.get(&path).map(|l| l.get(lang).to_string()).unwrap_or_else(|| n.clone());
            (title, computed.contains(path.as_str()))
        })
        .collect();
    let rows = rows
        .iter()
        .map(|row| names.iter().map(|n| row.get(n).map(|v| shown(form, &format!("{field}.*.{n}"), v, lang)).unwrap_or(Shown::Empty)).collect())
        .collect();
    Item::Table { label, columns, rows }
}

/// A value in the reader's language: option labels for enumerated values, yes / no for
/// booleans, nested objects as "label: value" pairs.
fn shown(form: &FormDefinition, path: &str, v: &Value, lang: Lang) -> Shown {
    match v {
        Value::Null => Shown::Empty,
        _ if is_withheld(v) => Shown::Withheld,
        _ => Shown::Text(text(form, path, v, lang)),
    }
}

fn text(form: &FormDefinition, path: &str, v: &Value, lang: Lang) -> String {
    match v {
        Value::Null => "—".into(),
        Value::Bool(true) => t(lang, "是", "Sim", "Yes").into(),
        Value::Bool(false) => t(lang, "否", "Não", "No").into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => form.options.get(path).and_then(|o| o.get(s)).map(|l| l.get(lang).to_string()).unwrap_or_else(|| s.clone()),
        Value::Array(items) => items.iter().map(|i| text(form, &format!("{path}.*"), i, lang)).collect::<Vec<_>>().join(", "),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| {
                let sub = format!("{path}.{k}");
                let label = form.labels.get(&sub).map(|l| l.get(lang).to_string()).unwrap_or_else(|| k.clone());
                let value = if is_withheld(v) { withheld_text(lang).to_string() } else { text(form, &sub, v, lang) };
                format!("{label}: {value}")
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// How a withheld value is printed.
pub fn withheld_text(lang: Lang) -> &'static str {
    t(lang, "〔限閱欄位，不予顯示〕", "[campo reservado, não mostrado]", "[restricted field, withheld]")
}

/// One line per signed event, in the order of the record.
fn signatures(events: &[CaseEvent], wf: &WorkflowDefinition, lang: Lang, people: People) -> Vec<SignatureLine> {
    let step_title = |s: &str| wf.step(s).map(|d| d.title.get(lang).to_string()).unwrap_or_else(|| s.to_string());
    let mut out = Vec::new();
    for e in events {
        let (what, actor, on_behalf, seat, sig, comment) = match e {
            CaseEvent::Submitted { submitter, signature, .. } => {
                (t(lang, "提交申請", "Submeteu o pedido", "Submitted the application").to_string(), submitter, None, None, signature, None)
            }
            CaseEvent::Resubmitted { by, signature, .. } => {
                (t(lang, "提交更正", "Submeteu a correção", "Submitted a correction").to_string(), by, None, None, signature, None)
            }
            CaseEvent::Acted { step, seat, actor, on_behalf_of, delegation, action, comment, signature, .. } => {
                let behalf = on_behalf_of.as_ref().map(|b| match lang {
                    Lang::Zh => format!("代表 {}（授權 {}）", people(b), delegation.as_deref().unwrap_or("—")),
                    Lang::Pt => format!("em nome de {} (delegação {})", people(b), delegation.as_deref().unwrap_or("—")),
                    Lang::En => format!("for {} under delegation {}", people(b), delegation.as_deref().unwrap_or("—")),
                });
                (
                    format!("{}{}{}", step_title(step), t(lang, "：", ": ", ": "), action_label(lang, *action)),
                    actor,
                    behalf,
                    Some(if seat == step { step_title(step) } else { format!("{} · {seat}", step_title(step)) }),
                    signature,
                    comment.clone(),
                )
            }
            _ => continue,
        };
        out.push(line(what, people(actor), on_behalf, seat, sig, comment, e.at(), lang));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn line(
    what: String,
    person: String,
    on_behalf: Option<String>,
    seat: Option<String>,
    sig: &SignatureRecord,
    comment: Option<String>,
    at: DateTime<Utc>,
    lang: Lang,
) -> SignatureLine {
    let jws = sig.jws.as_ref();
    let facts = jws.and_then(signing_certificate);
    let signed_at = jws
        .and_then(|j| j.pointer("/payload/time"))
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(at);
    let stamped_at = jws.and_then(|j| j.get("header")).and_then(Value::as_object).and_then(|h| crate::signing::timestamp::read_sig_tst(Some(h)).ok().flatten());
    SignatureLine {
        what,
        person,
        on_behalf,
        seat,
        level: level_label(lang, sig.level).to_string(),
        second_factor: sig.second_factor,
        subject: facts.as_ref().map(|f| f.subject.clone()),
        issuer: facts.as_ref().map(|f| f.issuer.clone()),
        signed_at,
        stamped_at: stamped_at.and_then(|token| token_time(&token)),
        comment,
    }
}

/// The first certificate of a JWS's `x5c` protected header.
pub fn signing_certificate(jws: &Value) -> Option<CertFacts> {
    let protected = URL_SAFE_NO_PAD.decode(jws.get("protected")?.as_str()?).ok()?;
    let header: Value = serde_json::from_slice(&protected).ok()?;
    let der = base64::engine::general_purpose::STANDARD.decode(header.get("x5c")?.get(0)?.as_str()?).ok()?;
    CertFacts::from_der(&der).ok()
}

/// The `genTime` of an RFC 3161 token (read, not judged: the evidence verifier judges it).
pub fn token_time(token: &[u8]) -> Option<DateTime<Utc>> {
    use der::Decode;
    let info = cms::content_info::ContentInfo::from_der(token).ok()?;
    let signed: cms::signed_data::SignedData = info.content.decode_as().ok()?;
    let content = signed.encap_content_info.econtent?;
    let octets: der::asn1::OctetString = content.decode_as().ok()?;
    let tst = x509_tsp::TstInfo::from_der(octets.as_bytes()).ok()?;
    let secs = tst.gen_time.to_unix_duration().as_secs();
    DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)
}
