//! The administrators' signing-keys page (`/admin/keys`): who signs with what (a key file, a
//! key on the HSM, a credential at the remote signing service), each HSM key's label,
//! certificate serial and state, and the key life cycle on the server's token: give a person a
//! key (generated in the HSM, certificate issued and published), rotate it, revoke it when they
//! leave (a new CRL; acts signed before stay valid). Revoking and rotating ask for a tick in
//! "I confirm". Each change is written to `DATA/hsm/changes.jsonl` with who made it. None of it
//! lets an administrator sign for anyone: a signature still needs the person's own code.

use super::{PageCaller, PageLang, check_csrf, page, page_with_status, person_label, require_role, t, titled, when};
use crate::hsm::lifecycle::{KeyAction, record_change, revoke_published};
use crate::hsm::{DeviceKey, ProviderBook};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::i18n::Lang;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use maud::{Markup, html};
use std::sync::Arc;

pub async fn show(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["admin"]) {
        return r;
    }
    page(&pl, keys_page(&state, &pl, &caller, None))
}

/// What the page says after a change: done, or refused with the reason (nothing changed).
enum Outcome {
    Done(String),
    Refused(String),
}

fn action_label(lang: Lang, action: KeyAction) -> &'static str {
    match action {
        KeyAction::Issue => t(lang, "發出HSM私鑰", "Criar chave no HSM", "Give a key on the HSM"),
        KeyAction::Rotate => t(lang, "更換私鑰", "Renovar a chave", "Rotate the key"),
        KeyAction::Revoke => t(lang, "撤銷", "Revogar", "Revoke"),
    }
}

fn state_text(lang: Lang, key: Option<&DeviceKey>) -> String {
    match key {
        None => t(lang, "沒有HSM私鑰", "Sem chave no HSM", "No key on the HSM").to_string(),
        Some(k) => match k.revoked_at {
            None => t(lang, "使用中", "Em uso", "In use").to_string(),
            Some(at) => format!("{} {}", t(lang, "已撤銷於", "Revogada em", "Revoked at"), when(lang, &at)),
        },
    }
}

fn keys_page(state: &AppState, pl: &PageLang, caller: &Caller, outcome: Option<&Outcome>) -> Markup {
    let lang = pl.lang;
    let title = t(lang, "簽署私鑰", "Chaves de assinatura", "Signing keys");
    let dir = state.cases.directory();
    let book = ProviderBook::load(&state.paths.data);
    let remote = state.remote.as_ref().and_then(|_| crate::csc::remote::RemoteBook::load(&state.paths.data).ok());
    titled(
        pl,
        caller,
        title,
        html! {
            @match outcome {
                Some(Outcome::Done(s)) => p #key-result.ok role="status" { (s) },
                Some(Outcome::Refused(s)) => p #key-result.error role="alert" { (s) },
                None => {}
            }
            p { (t(lang,
                "HSM內的私鑰在HSM內產生，不能匯出或複製。管理員可以發出、更換或撤銷私鑰，但不能代任何人簽署：每個簽名仍須該人自己的雙重認證碼。",
                "As chaves no HSM são geradas dentro dele e não podem ser exportadas nem copiadas. O administrador pode criá-las, renová-las ou revogá-las, mas não assina por ninguém: cada assinatura exige o código do segundo fator da própria pessoa.",
                "Keys on the HSM are generated inside it and cannot be exported or copied. An administrator can give, rotate or revoke them, but signs for nobody: every signature still needs the person's own second-factor code.")) }
            @match (&state.hsm, &state.hsm_off_because) {
                (Some(_), _) => p #hsm-status { (t(lang, "HSM簽署：已開啟（", "Assinatura no HSM: ligada (", "HSM signing: on (")) code { (state.paths.hsm_module.display().to_string()) } ")" },
                (None, why) => p #hsm-status.note { (t(lang, "HSM簽署：已關閉", "Assinatura no HSM: desligada", "HSM signing: off")) " (" (why.as_deref().unwrap_or("-")) "). "
                    (t(lang, "每人以私鑰檔案簽署；不能在此發出HSM私鑰，但已發出的仍可撤銷。", "Cada pessoa assina com o ficheiro da sua chave; aqui não se criam chaves no HSM, mas as publicadas podem ser revogadas.", "Everyone signs with their key file; no HSM keys can be given here, but published ones can be revoked.")) },
            }
            @if let Err(e) = &book { p.error role="alert" { (e.to_string()) } }
            table.keys {
                thead { tr {
                    th scope="col" { (t(lang, "人員", "Pessoa", "Person")) }
                    th scope="col" { (t(lang, "簽署方式", "Assina com", "Signs with")) }
                    th scope="col" { (t(lang, "私鑰／證書", "Chave / certificado", "Key / certificate")) }
                    th scope="col" { (t(lang, "狀態", "Estado", "State")) }
                    th scope="col" { (t(lang, "操作", "Ações", "Actions")) }
                } }
                tbody {
                    @for p in dir.people() {
                        @let key = book.as_ref().ok().and_then(|b| b.people.get(&p.id));
                        @let on_remote = remote.as_ref().is_some_and(|r| r.people.contains_key(&p.id));
                        tr data-person=(p.id) data-state=(match key { None => "none", Some(k) if k.revoked_at.is_some() => "revoked", Some(_) => "in-use" }) {
                            td { (person_label(lang, &dir, &p.id)) }
                            td { @if on_remote { (t(lang, "遠端簽署服務", "Serviço de assinatura remota", "Remote signing service")) }
                                 @else if key.is_some_and(|k| k.revoked_at.is_none()) { "HSM" }
                                 @else { (t(lang, "私鑰檔案", "Ficheiro da chave", "Key file")) } }
                            td { @if let Some(k) = key { code { (k.key_label) } br; small.muted { (t(lang, "證書序號 ", "Certificado n.º ", "Certificate ")) code { (format!("{:x}", k.serial)) } } } }
                            td { (state_text(lang, key)) }
                            td { (row_form(lang, caller, &p.id, key, state.hsm.is_some())) }
                        }
                    }
                }
            }
        },
    )
}

/// The actions a row offers: give a key (none, or a revoked one), or rotate and revoke the key
/// in use, with "I confirm". With the HSM off only revoking is offered.
fn row_form(lang: Lang, caller: &Caller, person: &str, key: Option<&DeviceKey>, hsm_on: bool) -> Markup {
    let in_use = key.is_some_and(|k| k.revoked_at.is_none());
    html! {
        @if in_use || hsm_on {
            form.key-action method="post" action="/admin/keys" {
                input type="hidden" name="csrf" value=(caller.session.csrf);
                input type="hidden" name="person" value=(person);
                @if in_use {
                    label.inline { input type="checkbox" name="confirm" value="yes"; " " (t(lang, "我確認", "Confirmo", "I confirm")) }
                    @if hsm_on { " " button type="submit" name="action" value="rotate" { (action_label(lang, KeyAction::Rotate)) } }
                    " "
                    button.secondary type="submit" name="action" value="revoke" { (action_label(lang, KeyAction::Revoke)) }
                } @else {
                    button type="submit" name="action" value="issue" { (action_label(lang, KeyAction::Issue)) }
                }
            }
        }
    }
}

pub async fn posted(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["admin"]) {
        return r;
    }
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if let Err(r) = check_csrf(&pl, &caller, field("csrf").as_deref()) {
        return r;
    }
    let lang = pl.lang;
    let (person, action, confirmed) = (field("person").unwrap_or_default(), field("action").unwrap_or_default(), field("confirm").as_deref() == Some("yes"));
    let (st, by) = (state.clone(), caller.person.clone());
    let outcome = tokio::task::spawn_blocking(move || change(&st, lang, &by, &person, &action, confirmed)).await.unwrap_or_else(|e| Err(e.to_string()));
    match outcome {
        Ok(done) => page(&pl, keys_page(&state, &pl, &caller, Some(&Outcome::Done(done)))),
        Err(why) => page_with_status(&pl, StatusCode::UNPROCESSABLE_ENTITY, keys_page(&state, &pl, &caller, Some(&Outcome::Refused(why)))),
    }
}

/// Carries out one change, or says in the reader's language why not (nothing changed then).
fn change(state: &AppState, lang: Lang, by: &str, person: &str, action: &str, confirmed: bool) -> Result<String, String> {
    let action: KeyAction = action.parse().map_err(|_| t(lang, "未知的操作。", "Ação desconhecida.", "Unknown action.").to_string())?;
    let off = || {
        t(
            lang,
            "HSM簽署已關閉：不能發出或更換私鑰（仍可撤銷）。",
            "A assinatura no HSM está desligada: não se criam nem renovam chaves (revogar continua possível).",
            "HSM signing is off: no key can be given or rotated (revoking still can).",
        )
        .to_string()
    };
    let dir = state.cases.directory();
    if dir.person(person).is_none() {
        return Err(format!("{} {person:?}", t(lang, "名錄中沒有此人：", "Esta pessoa não está no diretório:", "No such person in the directory:")));
    }
    if action != KeyAction::Issue && !confirmed {
        return Err(t(lang, "請勾選「我確認」，然後再按。", "Marque «Confirmo» e carregue de novo.", "Tick \u{201c}I confirm\u{201d} and press again.").into());
    }
    let root = state.paths.seeds.parent().unwrap_or(std::path::Path::new("."));
    let now = Utc::now();
    let serial = match action {
        KeyAction::Issue => state.hsm.as_ref().ok_or_else(off)?.issue_for(root, person, now).map(|k| k.serial),
        KeyAction::Rotate => state.hsm.as_ref().ok_or_else(off)?.rotate_for(root, person, now).map(|k| k.serial),
        KeyAction::Revoke => revoke_published(&state.paths.data, root, person, now),
    }
    .map_err(|e| format!("{}: {e:#}", t(lang, "沒有改動", "Nada mudou", "Nothing changed")))?;
    if let Err(e) = record_change(&state.paths.data, by, action, person, serial, now) {
        eprintln!("signing keys: the change was made but could not be written to the record: {e:#}");
    }
    Ok(format!("{} · {} · {} {serial:x}", action_label(lang, action), person_label(lang, &dir, person), t(lang, "證書序號", "certificado n.º", "certificate")))
}
