//! Correcting a case returned for correction: the form the case is pinned to, drawn by `render`
//! and filled in with the case's current data, the approver's comment above it. The page posts to
//! itself; the server validates the corrected data exactly as a new submission (errors beside
//! their fields, everything typed kept), then shows what changed and the signing step.
//! `/static/fill.js` signs the payload of kind `resubmit` with the person's key file and posts it
//! to `POST /api/v1/cases/{id}/resubmit`, then goes back to the case's page, open again.
//!
//! Only the submitter corrects, and only while the case is `returned`; anyone else gets the
//! page's refusal, as the API would refuse the resubmission.

use super::cases::{Found, Note, changes_table, load};
use super::fill::{Signing, SignsWith, sign_step};
use super::render::{FormView, data_from_form};
use super::{PageCaller, PageLang, check_csrf, layout_keeping, page, page_with_status, person_label, problem_page, t, when};
use crate::forms::{FieldError, FormDefinition};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::workflow::engine::diff;
use crate::workflow::{CaseStatus, Change};
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use maud::{Markup, html};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The case if the caller may correct it now, with its pinned form; otherwise the refusal page.
#[allow(clippy::result_large_err)] // the refusal is the page to answer with
async fn correctable(state: &Arc<AppState>, pl: &PageLang, caller: &Caller, id: &str) -> Result<(Found, Arc<FormDefinition>), Response> {
    let lang = pl.lang;
    let Some(found) = load(state, caller, id).await else {
        return Err(problem_page(
            pl,
            Some(caller),
            StatusCode::NOT_FOUND,
            t(lang, "找不到此個案", "Processo não encontrado", "No such case"),
            t(lang, "找不到此個案，或你無權查看。", "Processo não encontrado, ou sem acesso.", "No such case, or you may not see it."),
        ));
    };
    if found.case.submitter != caller.person {
        return Err(problem_page(
            pl,
            Some(caller),
            StatusCode::FORBIDDEN,
            t(lang, "只有提交人可修改", "Só quem submeteu pode corrigir", "Only the submitter corrects"),
            t(
                lang,
                "只有提交人可修改並重新提交此個案。",
                "Só quem submeteu o processo o pode corrigir e submeter de novo.",
                "Only the person who submitted this case can correct and resubmit it.",
            ),
        ));
    }
    if found.case.status != CaseStatus::Returned {
        return Err(problem_page(
            pl,
            Some(caller),
            StatusCode::CONFLICT,
            t(lang, "此個案不需修改", "Este processo não aguarda correção", "This case is not waiting for correction"),
            t(
                lang,
                "只有被退回修改的個案才可重新提交；請回到個案頁查看其狀態。",
                "Só um processo devolvido para correção pode ser submetido de novo; veja o estado na página do processo.",
                "Only a case returned for correction can be resubmitted; see its status on the case's page.",
            ),
        ));
    }
    match state.cases.form_of(&found.case) {
        Ok(form) => Ok((found, form)),
        Err(e) => Err(problem_page(pl, Some(caller), StatusCode::INTERNAL_SERVER_ERROR, t(lang, "出錯", "Erro", "Error"), &e.to_string())),
    }
}

pub async fn show(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Path(id): Path<String>) -> Response {
    let (found, form) = match correctable(&state, &pl, &caller, &id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let data = current_data(&state, &caller, &found);
    page(&pl, correction_page(&state, &pl, &caller, &found, &form, &Shown::form(&data, &NO_COMPUTED, &[], &NO_ROWS)))
}

/// The case's data as its submitter may see it, computed values left to the server (they are
/// drawn read-only and never posted).
fn current_data(state: &AppState, caller: &Caller, found: &Found) -> Value {
    let mut shown = state.case_json(caller, &found.case);
    let mut data = shown.get_mut("data").map(Value::take).unwrap_or(Value::Object(Map::new()));
    if let Some(obj) = data.as_object_mut() {
        // A field the submitter's roles may not read is not offered for correction either.
        obj.retain(|_, v| !(v.get("restricted") == Some(&Value::Bool(true)) && v.as_object().is_some_and(|o| o.len() == 1)));
    }
    data
}

/// A posted correction: `_do` is `check` (the default), `lang` (the language switch) or
/// `add:ARRAY` (one more row), as on the fill page.
pub async fn posted(
    State(state): State<Arc<AppState>>,
    PageCaller(caller): PageCaller,
    pl: PageLang,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if let Err(r) = check_csrf(&pl, &caller, field("csrf")) {
        return r;
    }
    let (found, form) = match correctable(&state, &pl, &caller, &id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let lang = pl.lang;
    let mut data = data_from_form(&form, &pairs);
    keep_absent_defaults(&form.schema, &found.case.data, &mut data);
    let ctx = match state.cases.context_for(&caller.person, Utc::now()) {
        Ok(c) => c,
        Err(e) => {
            return problem_page(
                &pl,
                Some(&caller),
                StatusCode::UNPROCESSABLE_ENTITY,
                t(lang, "無法驗證", "Não é possível validar", "Cannot validate"),
                &e.to_string(),
            );
        }
    };
    let (result, computed) = form.validate_showing_computed(&data, &ctx, lang);
    let (errors, extra_rows) = match field("_do") {
        // As on the fill page: the last check's errors stay shown, in the new language.
        Some("lang") => (if field("_checked").is_some() { result.err().unwrap_or_default() } else { Vec::new() }, BTreeSet::new()),
        Some(d) if d.starts_with("add:") => (Vec::new(), BTreeSet::from([d["add:".len()..].to_string()])),
        _ => match result {
            Err(errors) => (errors, BTreeSet::new()),
            Ok(sub) => {
                let mut changes = Vec::new();
                diff("", &found.case.data, &sub.data, &mut changes);
                let status = if changes.is_empty() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
                let view = Shown { changes: Some(&changes), ..Shown::form(&data, &sub.computed, &[], &NO_ROWS) };
                return page_with_status(&pl, status, correction_page(&state, &pl, &caller, &found, &form, &view));
            }
        },
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    page_with_status(&pl, status, correction_page(&state, &pl, &caller, &found, &form, &Shown::form(&data, &computed, &errors, &extra_rows)))
}

/// A field the case never had stays absent when the page posts its schema default for it: an
/// unticked "half day" box posts `false`, which is what leaving it out already meant, and is no
/// correction the approver should be shown.
fn keep_absent_defaults(schema: &Value, before: &Value, after: &mut Value) {
    let (Some(props), Some(after)) = (schema.get("properties").and_then(Value::as_object), after.as_object_mut()) else { return };
    after.retain(|k, v| before.get(k).is_some() || props.get(k).and_then(|p| p.get("default")) != Some(v));
    for (k, v) in after.iter_mut() {
        if let (Some(p), Some(b)) = (props.get(k), before.get(k)) {
            keep_absent_defaults(p, b, v);
        }
    }
}

static NO_COMPUTED: BTreeMap<String, Value> = BTreeMap::new();
static NO_ROWS: BTreeSet<String> = BTreeSet::new();

/// What one rendering of the correction page shows.
struct Shown<'a> {
    data: &'a Value,
    computed: &'a BTreeMap<String, Value>,
    errors: &'a [FieldError],
    extra_rows: &'a BTreeSet<String>,
    /// After a check that passed: what changed (empty: nothing did, so nothing to sign).
    changes: Option<&'a [Change]>,
}

impl<'a> Shown<'a> {
    fn form(data: &'a Value, computed: &'a BTreeMap<String, Value>, errors: &'a [FieldError], extra_rows: &'a BTreeSet<String>) -> Self {
        Shown { data, computed, errors, extra_rows, changes: None }
    }
}

fn correction_page(state: &AppState, pl: &PageLang, caller: &Caller, found: &Found, form: &FormDefinition, shown: &Shown<'_>) -> Markup {
    let lang = pl.lang;
    let case = &found.case;
    let level = found.wf.submit_signature;
    let dir = state.cases.directory();
    let action = format!("/cases/{}/resubmit", case.id);
    let title = t(lang, "修改並重新提交", "Corrigir e submeter de novo", "Correct and resubmit");
    let view = FormView {
        form,
        lang,
        data: shown.data,
        computed: shown.computed,
        errors: shown.errors,
        extra_rows: shown.extra_rows,
        editable: true,
        directory: Some(&dir),
        applicant: Some(&case.subject),
    };
    let returned: Option<&Note> = found.history.returned.as_ref();
    layout_keeping(
        pl,
        title,
        Some(caller),
        Some(("fill", &action)),
        html! {
            h1 { (title) }
            p { (form.title.get(lang)) " · " a href=(format!("/cases/{}", case.id)) { code { (case.id) } } }
            @if let Some(n) = returned {
                section #returned.note-box aria-labelledby="returned-title" {
                    h2 #returned-title { (t(lang, "審批人的意見", "Observações do aprovador", "What the approver asked for")) }
                    p { (person_label(lang, &dir, &n.by)) " · " (when(lang, &n.at)) }
                    @match &n.text {
                        Some(c) if !c.trim().is_empty() => blockquote #return-comment { (super::shown(c)) },
                        _ => p.muted { (t(lang, "審批人沒有留下備註。", "O aprovador não deixou observações.", "The approver left no comment.")) },
                    }
                }
            }
            form #fill method="post" action=(action) novalidate {
                input type="hidden" name="csrf" value=(caller.session.csrf);
                @if !shown.errors.is_empty() { input type="hidden" name="_checked" value="1"; }
                (view.render())
                p.actions {
                    button type="submit" name="_do" value="check" { (t(lang, "檢查修改", "Verificar a correção", "Check the corrections")) }
                    " "
                    a href=(format!("/cases/{}", case.id)) { (t(lang, "返回個案", "Voltar ao processo", "Back to the case")) }
                }
            }
            @if let Some(changes) = shown.changes {
                @if changes.is_empty() {
                    div #no-changes.error-summary role="alert" {
                        p { strong { (t(lang, "你沒有修改任何內容：請按審批人的意見修改後再檢查。", "Não alterou nada: corrija o que o aprovador pediu e verifique de novo.", "Nothing has changed: correct what the approver asked for, then check again.")) } }
                    }
                } @else {
                    section #changes aria-labelledby="changes-title" {
                        h2 #changes-title { (t(lang, "修改了的內容", "O que mudou", "What changed")) }
                        (changes_table(lang, form, changes))
                    }
                    (sign_step(lang, &caller.person, SignsWith::of(state, &caller.person), Signing::Resubmit { form, case: &case.id }, shown.data, shown.computed, level))
                }
            }
        },
    )
}
