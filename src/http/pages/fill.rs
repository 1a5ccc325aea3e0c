//! The forms and filling one in. The page posts to itself; the server validates with the form
//! (schema, computed values, rules) and answers with every error beside its field, or, when the
//! data is valid, with the "sign and submit" step. Signing happens in the browser
//! (`/static/fill.js`): the page asks the API for the exact payload, signs it with the person's
//! key file, and submits through `POST /api/v1/cases`; a person whose key is on the HSM (or at
//! the remote signing service) gives their code instead and the server signs there.

use super::render::{FormView, data_from_form};
use super::{PageCaller, PageLang, check_csrf, layout_keeping, page, page_with_status, problem_page, t, titled};
use crate::forms::FormDefinition;
use crate::http::AppState;
use crate::i18n::Lang;
pub use crate::wording::level_label;
use crate::workflow::Level;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use maud::{Markup, html};
use serde_json::{Value, json};
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
        titled(
            &pl,
            &caller,
            title,
            html! {
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
    problem_page(
        pl,
        Some(caller),
        StatusCode::NOT_FOUND,
        t(lang, "找不到此表格", "Formulário não encontrado", "No such form"),
        t(lang, "找不到此表格。", "Formulário não encontrado.", "No such form."),
    )
}

/// A posted form: `_do` says what the person pressed: check (the default) or add a row.
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
    let Some(form) = state.cases.catalog().form(&id).cloned() else { return no_form(&pl, &caller) };
    let data = data_from_form(&form, &pairs);
    let ctx = match state.cases.context_for(&caller.person, Utc::now()) {
        Ok(c) => c,
        Err(e) => {
            return problem_page(
                &pl,
                Some(&caller),
                StatusCode::UNPROCESSABLE_ENTITY,
                t(pl.lang, "無法驗證", "Não é possível validar", "Cannot validate"),
                &e.to_string(),
            );
        }
    };
    let (result, computed) = form.validate_showing_computed(&data, &ctx, pl.lang);
    if field("_do") == Some("lang") {
        // The language switch: the same form, every label in the new language; the errors of the
        // last check (`_checked`) stay shown, now in the new language, and a form not yet checked
        // shows none.
        let errors = match (&result, field("_checked")) {
            (Err(errors), Some(_)) => errors.clone(),
            _ => Vec::new(),
        };
        let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
        return page_with_status(&pl, status, fill_page(&state, &pl, &caller, &form, &data, &computed, &errors, &BTreeSet::new(), None));
    }
    if let Some(array) = field("_do").and_then(|d| d.strip_prefix("add:")) {
        // Adding a row is not a submission: show no errors yet.
        let extra = BTreeSet::from([array.to_string()]);
        return page(&pl, fill_page(&state, &pl, &caller, &form, &data, &computed, &[], &extra, None));
    }
    match result {
        Err(errors) => {
            page_with_status(&pl, StatusCode::UNPROCESSABLE_ENTITY, fill_page(&state, &pl, &caller, &form, &data, &computed, &errors, &BTreeSet::new(), None))
        }
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
    let dir = state.cases.directory();
    let view = FormView { form, lang, data, computed, errors, extra_rows, editable: true, directory: Some(&dir), applicant: Some(&caller.person) };
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
                @if !errors.is_empty() { input type="hidden" name="_checked" value="1"; }
                (view.render())
                p.actions {
                    button type="submit" name="_do" value="check" { (t(lang, "檢查表格", "Verificar", "Check the form")) }
                }
            }
            @if let Some(data) = valid { (sign_step(lang, &caller.person, SignsWith::of(state, &caller.person), Signing::Submit { form }, data, computed, level)) }
        },
    )
}

/// What a signature made in the page is for: a new submission of a form, or the corrected data
/// of a returned case (`/static/fill.js` asks for the payload of that kind and posts to the
/// matching API route).
pub enum Signing<'a> {
    Submit { form: &'a FormDefinition },
    Resubmit { form: &'a FormDefinition, case: &'a str },
}

/// What a person signs with on the pages: their key file, their key on the HSM (authorized with
/// their second factor; `enrolled` when they have one) or their credential at the remote signing
/// service (authorized with its one-time code).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SignsWith {
    KeyFile,
    Hsm { enrolled: bool },
    Remote,
}

impl SignsWith {
    /// The provider this server signs `person`'s acts with: remote when named there, the HSM
    /// when their key is published and not revoked, else their key file.
    pub fn of(state: &AppState, person: &str) -> SignsWith {
        if state.remote.as_ref().is_some_and(|r| r.credential_of(person).is_ok_and(|c| c.is_some())) {
            return SignsWith::Remote;
        }
        if state.hsm.as_ref().is_some_and(|h| h.key_of(person).is_ok()) {
            return SignsWith::Hsm { enrolled: state.accounts.get(person).is_some_and(|a| a.has_second_factor()) };
        }
        SignsWith::KeyFile
    }

    /// Its name in the record and in the page's `data-provider`.
    pub fn provider(self) -> &'static str {
        match self {
            SignsWith::KeyFile => "browser-key",
            SignsWith::Hsm { .. } => "hsm",
            SignsWith::Remote => "remote",
        }
    }
}

/// The code field of a signature made on the person's device, with what it authorizes: this
/// one signature (`batch` false) or every one of the confirmation list.
pub fn device_code(lang: Lang, with: SignsWith, batch: bool) -> Markup {
    let what = match batch {
        true => t(
            lang,
            "輸入一次即授權簽署以下確認清單中的每一宗個案，且只限這些個案。",
            "Um só código autoriza a assinatura de cada processo da lista de confirmação, e só desses.",
            "One code authorizes the signature of every case in the confirmation list, and of those only.",
        ),
        false => t(
            lang,
            "此碼只授權簽署上列內容，且只限一次。",
            "O código autoriza só a assinatura do que está acima, uma vez.",
            "The code authorizes only the signature of what is shown above, once.",
        ),
    };
    html! {
        @match with {
            SignsWith::Remote => {
                p.note #remote-note { (t(lang, "你的私鑰存放於認證實體的遠端簽署服務，不能複製。", "A sua chave está no serviço de assinatura remota da entidade certificadora e não pode ser copiada.", "Your key is at your certification entity's remote signing service and cannot be copied.")) " " (what) }
                label { (t(lang, "一次性密碼", "Código único", "One-time code")) input #totp name="totp" inputmode="numeric" autocomplete="one-time-code"; }
            }
            SignsWith::Hsm { enrolled } => {
                p.note #hsm-note { (t(lang, "你的私鑰存放於HSM，不能複製。", "A sua chave está no HSM e não pode ser copiada.", "Your key is on the HSM and cannot be copied.")) " " (what) }
                label { (t(lang, "雙重認證碼", "Código do segundo fator", "Second-factor code")) input #totp name="totp" inputmode="numeric" autocomplete="one-time-code"; }
                @if !enrolled {
                    p #no-second-factor.note {
                        (t(lang, "以HSM簽署須先設定雙重認證：", "Assinar no HSM exige o segundo fator, que ainda não configurou: ", "Signing on the HSM needs a second factor, and you have none yet: "))
                        a href="/me/security" { (t(lang, "設定雙重認證", "configurar o segundo fator", "set one up")) }
                    }
                }
            }
            SignsWith::KeyFile => {}
        }
    }
}

/// The last step: the data is valid; the person signs it with their key file and submits.
/// Everything the script needs is in data attributes; messages come in the page's language.
///
/// What is signed is exactly what the "you are signing" summary shows (the checked data, also
/// in `#data-json`); `/static/fill.js` refuses to sign once any field of the form is changed
/// after the check, until the form is checked again.
#[allow(clippy::too_many_arguments)] // each argument is a distinct fact of the page
pub fn sign_step(lang: Lang, person: &str, with: SignsWith, signing: Signing<'_>, data: &Value, computed: &BTreeMap<String, Value>, level: Level) -> Markup {
    let needs_key = level > Level::Simple;
    let (kind, form, case, definition) = match signing {
        Signing::Submit { form } => ("submit", Some(form.id.as_str()), None, form),
        Signing::Resubmit { form, case } => ("resubmit", None, Some(case), form),
    };
    let resubmit = case.is_some();
    let title = if resubmit {
        t(lang, "簽署及重新提交", "Assinar e submeter de novo", "Sign and resubmit")
    } else {
        t(lang, "簽署及提交", "Assinar e submeter", "Sign and submit")
    };
    html! {
        section #sign.sign aria-labelledby="sign-title"
            data-kind=(kind) data-form=[form] data-case=[case] data-level=(level.as_str()) data-provider=(with.provider())
            data-msg-nocode=(t(lang, "請輸入代碼：它授權這個簽名。", "Introduza o código: autoriza esta assinatura.", "Enter your code: it authorizes this signature."))
            data-msg-working=(t(lang, "正在簽署及提交……", "A assinar e submeter…", "Signing and submitting…"))
            data-msg-nokey=(t(lang, "請先選擇你的私鑰檔案。", "Escolha primeiro o ficheiro da sua chave.", "Choose your key file first."))
            data-msg-done=(if resubmit { t(lang, "已重新提交。個案編號：", "Submetido de novo. Processo n.º ", "Resubmitted. Case ") } else { t(lang, "已提交。個案編號：", "Submetido. Processo n.º ", "Submitted. Case ") })
            data-msg-failed=(t(lang, "未能提交：", "Não foi submetido: ", "Not submitted: "))
            data-msg-changed=(t(lang, "你在檢查後修改了表格：請再按「檢查表格」，然後才簽署。", "Alterou o formulário depois de o verificar: verifique-o de novo antes de assinar.", "You changed the form after it was checked: check it again before signing.")) {
            h2 #sign-title { (title) }
            p.ok role="status" { (t(lang, "表格已通過檢查。", "O formulário está correto.", "The form is valid.")) }
            (signing_summary(lang, definition, data, computed))
            input #data-json type="hidden" value=(serde_json::to_string(data).unwrap_or_default());
            @if needs_key {
                p { (t(lang, "所需簽名級別：", "Assinatura exigida: ", "Signature required: ")) strong { (level_label(lang, level)) } }
                @match with {
                    SignsWith::KeyFile => (key_picker(lang, person)),
                    device => (device_code(lang, device, false)),
                }
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

/// The read-only "you are signing" list: every field of the checked data, labelled and in the
/// form's order, so the signer sees exactly what the signature will cover.
fn signing_summary(lang: Lang, form: &FormDefinition, data: &Value, computed: &BTreeMap<String, Value>) -> Markup {
    // The computed values are carimbo's (the server computes them again); they are signed too.
    let mut data = data.clone();
    if let Some(o) = data.as_object_mut() {
        for (k, v) in computed {
            o.insert(k.clone(), v.clone());
        }
    }
    let data = &data;
    let mut leaves: Vec<(String, Value)> = Vec::new();
    let mut order: Vec<String> = form.layout.groups.iter().flat_map(|g| g.fields.iter().cloned()).collect();
    if let Some(o) = data.as_object() {
        order.extend(o.keys().filter(|k| !order.contains(k)).cloned().collect::<Vec<_>>());
        for field in &order {
            if let Some(v) = o.get(field) {
                flatten(&crate::forms::pointer_push("", field), v, &mut leaves);
            }
        }
    }
    html! {
        section #signing-summary.signing-summary aria-labelledby="signing-summary-title" {
            h3 #signing-summary-title { (t(lang, "你正在簽署以下內容", "Vai assinar o seguinte", "You are signing")) }
            dl.facts {
                @for (pointer, value) in &leaves {
                    dt data-pointer=(pointer) { (super::render::pointer_label(form, lang, pointer)) }
                    dd data-pointer=(pointer) { (super::shown(&super::render::value_label(form, lang, pointer, value))) }
                }
            }
        }
    }
}

/// The leaves of a value with their JSON pointers (rows of a repeatable group one by one).
fn flatten(pointer: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Null => {}
        Value::Object(o) if !crate::visibility::is_restricted_marker(v) => {
            for (k, x) in o {
                flatten(&crate::forms::pointer_push(pointer, k), x, out);
            }
        }
        Value::Array(a) if a.iter().any(|x| x.is_object()) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{pointer}/{i}"), x, out);
            }
        }
        Value::Array(a) => out.push((
            pointer.to_string(),
            Value::String(a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect::<Vec<_>>().join(", ")),
        )),
        other => out.push((pointer.to_string(), other.clone())),
    }
}

/// The key-file chooser shared by the fill, correction and inbox pages. It names the file the
/// person is expected to pick, and carries, in the reader's language, what `/static/sign.js`
/// says when the file is the certificate, not a key at all, or someone else's key.
pub fn key_picker(lang: Lang, person: &str) -> Markup {
    let expected = format!("{person}.key.pem");
    let cert = format!("{person}.pem");
    html! {
        div #key-picker
            data-expected=(expected)
            data-msg-nokey=(t(lang, "請先選擇你的私鑰檔案。", "Escolha primeiro o ficheiro da sua chave.", "Choose your key file first."))
            data-msg-certificate=(t(lang, "這是證書，不是私鑰：請選擇私鑰檔案 ", "Este ficheiro é o certificado, não a chave: escolha o ficheiro da chave ", "This file is a certificate, not your key: choose your key file "))
            data-msg-notkey=(t(lang, "這個檔案不是 PKCS#8 PEM 私鑰：請選擇 ", "Este ficheiro não é uma chave privada PKCS#8 PEM: escolha ", "This file is not a PKCS#8 PEM private key: choose "))
            data-msg-unsupported=(t(lang, "不支援這種密鑰：請使用 P-256、Ed25519 或 RSA 密鑰。", "Tipo de chave não suportado: use uma chave P-256, Ed25519 ou RSA.", "This kind of key is not supported: use a P-256, Ed25519 or RSA key."))
            data-msg-notyours=(t(lang, "這不是你的私鑰：它與你的證書不相符。請選擇 ", "Esta chave não é sua: não corresponde ao seu certificado. Escolha ", "This key is not yours: it does not match your certificate. Choose "))
            data-msg-nocert=(t(lang, "你沒有已登記的證書，請聯絡系統管理員。", "Não tem certificado registado; contacte o administrador.", "No certificate is registered for you; ask the administrator.")) {
            label for="keyfile" { (t(lang, "私鑰檔案（PKCS#8 PEM）", "Ficheiro da chave privada (PKCS#8 PEM)", "Private key file (PKCS#8 PEM)")) }
            input #keyfile type="file" accept=".pem,.key,application/x-pem-file" aria-describedby="keyfile-hint";
            p #keyfile-hint.muted {
                (t(lang, "請選擇你的私鑰檔案 ", "Escolha o ficheiro da sua chave, ", "Choose your key file, ")) code { (expected) }
                (t(lang, "（不是證書 ", " (não o certificado ", " (not the certificate ")) code { (cert) } (t(lang, "）。私鑰只在你的瀏覽器內使用，不會上傳。", "). A chave só é usada no seu navegador e nunca é enviada.", "). Your key is used only in your browser and is never uploaded."))
            }
        }
    }
}
