//! The forms and filling one in. The page posts to itself; the server validates with the form
//! (schema, computed values, rules) and answers with every error beside its field, or, when the
//! data is valid, with the "sign and submit" step. Signing happens in the browser
//! (`/static/fill.js`): the page asks the API for the exact payload, signs it with the person's
//! key file, and submits through `POST /api/v1/cases`.

use super::render::{data_from_form, FormView};
use super::{check_csrf, layout, layout_keeping, page, page_with_status, problem_page, t, PageCaller, PageLang};
use crate::forms::FormDefinition;
use crate::http::AppState;
use crate::i18n::Lang;
use crate::workflow::Level;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use maud::{html, Markup};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub async fn list(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang) -> Response {
    let lang = pl.lang;
    let catalog = state.cases.catalog();
    let mut forms: Vec<&Arc<FormDefinition>> = catalog.forms.values().collect();
    forms.sort_by(|a, b| a.title.get(lang).cmp(b.title.get(lang)));
    let title = t(lang, "表格", "Formulários", "Forms");
    page(
        &pl,
        layout(
            &pl,
            title,
            Some(&caller),
            html! {
                h1 { (title) }
                p.muted { (t(lang, "選擇要填寫的表格。", "Escolha o formulário a preencher.", "Choose a form to fill in.")) }
                ul.forms {
                    @for f in &forms {
                        li {
                            a href=(format!("/forms/{}", f.id)) { (f.title.get(lang)) }
                            br;
                            small.muted { (f.legal_basis.get(lang)) }
                        }
                    }
                }
            },
        ),
    )
}

pub async fn blank(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Path(id): Path<String>) -> Response {
    let Some(form) = state.cases.catalog().form(&id).cloned() else { return no_form(&pl, &caller) };
    let empty = json!({});
    page(&pl, fill_page(&state, &pl, &caller, &form, &empty, &BTreeMap::new(), &[], &BTreeSet::new(), None))
}

fn no_form(pl: &PageLang, caller: &crate::http::auth::Caller) -> Response {
    let lang = pl.lang;
    problem_page(pl, Some(caller), StatusCode::NOT_FOUND, t(lang, "找不到此表格", "Formulário não encontrado", "No such form"), t(lang, "找不到此表格。", "Formulário não encontrado.", "No such form."))
}

/// A posted form: `_do` says what the person pressed: check (the default) or add a row.
pub async fn posted(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Path(id): Path<String>, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if let Err(r) = check_csrf(&pl, &caller, field("csrf")) {
        return r;
    }
    let Some(form) = state.cases.catalog().form(&id).cloned() else { return no_form(&pl, &caller) };
    let data = data_from_form(&form, &pairs);
    let ctx = match state.cases.context_for(&caller.person, Utc::now()) {
        Ok(c) => c,
        Err(e) => return problem_page(&pl, Some(&caller), StatusCode::UNPROCESSABLE_ENTITY, t(pl.lang, "無法驗證", "Não é possível validar", "Cannot validate"), &e.to_string()),
    };
    let (result, computed) = form.validate_showing_computed(&data, &ctx, pl.lang);
    if field("_do") == Some("lang") {
        // The language switch: the same form, every label in the new language, no errors yet.
        return page(&pl, fill_page(&state, &pl, &caller, &form, &data, &computed, &[], &BTreeSet::new(), None));
    }
    if let Some(array) = field("_do").and_then(|d| d.strip_prefix("add:")) {
        // Adding a row is not a submission: show no errors yet.
        let extra = BTreeSet::from([array.to_string()]);
        return page(&pl, fill_page(&state, &pl, &caller, &form, &data, &computed, &[], &extra, None));
    }
    match result {
        Err(errors) => page_with_status(&pl, StatusCode::UNPROCESSABLE_ENTITY, fill_page(&state, &pl, &caller, &form, &data, &computed, &errors, &BTreeSet::new(), None)),
        Ok(sub) => page(&pl, fill_page(&state, &pl, &caller, &form, &data, &sub.computed, &[], &BTreeSet::new(), Some(&data))),
    }
}

/// The fill page; with `valid` data, the sign-and-submit step follows the form.
#[allow(clippy::too_many_arguments)]
fn fill_page(
    state: &AppState,
    pl: &PageLang,
    caller: &crate::http::auth::Caller,
    form: &FormDefinition,
    data: &Value,
    computed: &BTreeMap<String, Value>,
    errors: &[crate::forms::FieldError],
    extra_rows: &BTreeSet<String>,
    valid: Option<&Value>,
) -> Markup {
    let lang = pl.lang;
    let level = state.cases.catalog().workflow(&form.workflow).map(|w| w.submit_signature).unwrap_or(Level::Advanced);
    let view = FormView { form, lang, data, computed, errors, extra_rows, editable: true };
    let action = format!("/forms/{}", form.id);
    layout_keeping(
        pl,
        form.title.get(lang),
        Some(caller),
        Some(("fill", &action)),
        html! {
            h1 { (form.title.get(lang)) }
            p.muted { (form.legal_basis.get(lang)) }
            form #fill method="post" action=(action) novalidate {
                input type="hidden" name="csrf" value=(caller.session.csrf);
                (view.render())
                p.actions {
                    button type="submit" name="_do" value="check" { (t(lang, "檢查表格", "Verificar", "Check the form")) }
                }
            }
            @if let Some(data) = valid { (sign_step(lang, Signing::Submit { form: &form.id }, data, level)) }
        },
    )
}

/// What a signature made in the page is for: a new submission of a form, or the corrected data
/// of a returned case (`/static/fill.js` asks for the payload of that kind and posts to the
/// matching API route).
pub enum Signing<'a> {
    Submit { form: &'a str },
    Resubmit { case: &'a str },
}

/// The last step: the data is valid; the person signs it with their key file and submits.
/// Everything the script needs is in data attributes; messages come in the page's language.
pub fn sign_step(lang: Lang, signing: Signing<'_>, data: &Value, level: Level) -> Markup {
    let needs_key = level > Level::Simple;
    let (kind, form, case) = match signing {
        Signing::Submit { form } => ("submit", Some(form), None),
        Signing::Resubmit { case } => ("resubmit", None, Some(case)),
    };
    let resubmit = case.is_some();
    let title = if resubmit { t(lang, "簽署及重新提交", "Assinar e submeter de novo", "Sign and resubmit") } else { t(lang, "簽署及提交", "Assinar e submeter", "Sign and submit") };
    html! {
        section #sign.sign aria-labelledby="sign-title"
            data-kind=(kind) data-form=[form] data-case=[case] data-level=(level.as_str())
            data-msg-working=(t(lang, "正在簽署及提交……", "A assinar e submeter…", "Signing and submitting…"))
            data-msg-nokey=(t(lang, "請先選擇你的私鑰檔案。", "Escolha primeiro o ficheiro da sua chave.", "Choose your key file first."))
            data-msg-done=(if resubmit { t(lang, "已重新提交。個案編號：", "Submetido de novo. Processo n.º ", "Resubmitted. Case ") } else { t(lang, "已提交。個案編號：", "Submetido. Processo n.º ", "Submitted. Case ") })
            data-msg-failed=(t(lang, "未能提交：", "Não foi submetido: ", "Not submitted: ")) {
            h2 #sign-title { (title) }
            p.ok role="status" { (t(lang, "表格已通過檢查。", "O formulário está correto.", "The form is valid.")) }
            input #data-json type="hidden" value=(serde_json::to_string(data).unwrap_or_default());
            @if needs_key {
                p { (t(lang, "所需簽名級別：", "Assinatura exigida: ", "Signature required: ")) strong { (level_label(lang, level)) } }
                p.muted { (t(lang, "私鑰只在你的瀏覽器內使用，不會上傳。", "A chave só é usada no seu navegador e nunca é enviada.", "Your key is used only in your browser and is never uploaded.")) }
                label for="keyfile" { (t(lang, "私鑰檔案（PKCS#8 PEM）", "Ficheiro da chave privada (PKCS#8 PEM)", "Private key file (PKCS#8 PEM)")) }
                input #keyfile type="file" accept=".pem,.key,application/x-pem-file";
            }
            p.actions {
                button #sign-submit type="button" disabled { (if resubmit { t(lang, "簽署並重新提交", "Assinar e submeter de novo", "Sign and resubmit") } else { t(lang, "簽署並提交", "Assinar e submeter", "Sign and submit") }) }
                noscript { " " span.error { (t(lang, "簽署需要啟用 JavaScript。", "Assinar exige JavaScript.", "Signing needs JavaScript.")) } }
            }
            div #sign-result aria-live="polite" {}
        }
        script src="/static/sign.js" {}
        script src="/static/fill.js" {}
    }
}

pub fn level_label(lang: Lang, level: Level) -> &'static str {
    match level {
        Level::Simple => t(lang, "簡單電子簽名", "assinatura simples", "simple signature"),
        Level::Advanced => t(lang, "進階電子簽名", "assinatura avançada", "advanced signature"),
        Level::Qualified => t(lang, "合格電子簽名", "assinatura qualificada", "qualified signature"),
    }
}
