//! The administrators' trust-list page: every member and its status now, the whole signed
//! history of changes, and a form to append one entry signed by the trust-list operator.
//!
//! The page never signs: the operator signs the change offline (`carimbo trust sign`) and the
//! administrator pastes the entry; the server checks it against the history exactly as the API
//! does (`AppState::append_trust_entry`) and keeps it, or says why not and changes nothing.

use super::{PageCaller, PageLang, check_csrf, page, page_with_status, require_role, t, titled};
use crate::http::AppState;
use crate::http::api::{members_at, parse_trust_entry, trust_entry_problem};
use crate::http::auth::Caller;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{Markup, html};
use std::sync::Arc;

/// At most this many bytes of a pasted entry are read (an entry with a certificate is ~3 KiB).
const MAX_ENTRY_BYTES: usize = 64 * 1024;

pub async fn show(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["admin"]) {
        return r;
    }
    page(&pl, trust_page(&pl, &caller, &state, None, ""))
}

fn status_text(lang: crate::i18n::Lang, status: &str) -> &'static str {
    match status {
        "granted" => t(lang, "已認可", "Concedido", "Granted"),
        "suspended" => t(lang, "已暫停", "Suspenso", "Suspended"),
        "withdrawn" => t(lang, "已撤銷", "Retirado", "Withdrawn"),
        "not_yet_listed" => t(lang, "尚未列入", "Ainda não listado", "Not yet listed"),
        _ => t(lang, "已列入", "Listado", "Listed"),
    }
}

fn trust_page(pl: &PageLang, caller: &Caller, state: &AppState, error: Option<&str>, pasted: &str) -> Markup {
    let lang = pl.lang;
    let title = t(lang, "信任清單", "Lista de confiança", "Trust list");
    let history = state.trust.current();
    let members = members_at(&history, Utc::now());
    titled(
        pl,
        caller,
        title,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            p { (t(lang,
                "信任清單記錄每一項變更（加入成員、給予、暫停或撤銷認可、合資格證書政策），每項均由清單營運者簽署及註明日期；核實簽名時會按簽署當時的清單判斷。",
                "A lista de confiança regista cada alteração (membro acrescentado, acreditação concedida, suspensa ou retirada, política de certificados qualificados), cada uma datada e assinada pelo operador da lista; cada assinatura é julgada pela lista em vigor no momento em que foi feita.",
                "The trust list records every change (a member added, an accreditation granted, suspended or withdrawn, a qualified-certificate policy), each dated and signed by the list's operator; every signature is judged by the list as it stood when it was made.")) }
            h2 { (t(lang, "成員（現時）", "Membros (agora)", "Members (now)")) }
            table.members {
                thead { tr {
                    th scope="col" { (t(lang, "成員", "Membro", "Member")) }
                    th scope="col" { (t(lang, "類別", "Tipo", "Type")) }
                    th scope="col" { (t(lang, "狀態", "Estado", "Status")) }
                    th scope="col" { (t(lang, "證書", "Certificado", "Certificate")) }
                } }
                tbody {
                    @for m in &members {
                        tr {
                            td { strong { (m.member) } br; (super::shown(match lang { crate::i18n::Lang::Zh => &m.name.zh, crate::i18n::Lang::Pt => &m.name.pt, crate::i18n::Lang::En => m.name.en.as_deref().unwrap_or(&m.name.pt) })) }
                            td { code { (m.service_type) } }
                            td { (status_text(lang, &m.status)) @if let Some(l) = m.level { " (" (l.as_str()) ")" } }
                            td { (super::shown(&m.subject)) br; code.muted { (m.sha256) } }
                        }
                    }
                }
            }
            h2 { (t(lang, "變更紀錄", "Histórico de alterações", "History of changes")) " (" (history.entries().len()) ")" }
            ol.history {
                @for e in history.entries() {
                    li { code { (e.payload.at) } " — " (e.payload.change.describe()) }
                }
            }
            h2 { (t(lang, "加入一項已簽署的變更", "Acrescentar uma alteração assinada", "Append a signed change")) }
            p { (t(lang,
                "由清單營運者以 carimbo trust sign 簽署變更，然後把產生的條目（JSON）貼在下面。未簽署、非營運者簽署、次序或日期不符、成員重複或不存在的條目會被拒絕，清單不會改動。",
                "O operador da lista assina a alteração com carimbo trust sign; cole abaixo a entrada (JSON) obtida. Uma entrada não assinada, assinada por outra pessoa, fora de ordem ou de data, ou com um membro repetido ou desconhecido é recusada e a lista não muda.",
                "The list's operator signs the change with carimbo trust sign; paste the entry (JSON) it prints below. An entry that is unsigned, signed by someone else, out of order or date, or names a repeated or unknown member is refused and the list does not change.")) }
            form method="post" action="/admin/trust-list" {
                input type="hidden" name="csrf" value=(caller.session.csrf);
                label { (t(lang, "已簽署的條目", "Entrada assinada", "Signed entry"))
                    textarea name="entry" rows="12" cols="80" required { (pasted) } }
                button type="submit" { (t(lang, "加入", "Acrescentar", "Append")) }
            }
        },
    )
}

/// A refused entry in a sentence: the reader's-language title, the code and the detail.
fn line(e: &crate::http::error::ApiError) -> String {
    let p = e.problem();
    format!("{} [{}] {}", p.title, p.code, p.detail)
}

pub async fn posted(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Form(fields): Form<Vec<(String, String)>>) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["admin"]) {
        return r;
    }
    let csrf = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
    if let Err(r) = check_csrf(&pl, &caller, csrf) {
        return r;
    }
    let pasted = fields.into_iter().find(|(k, _)| k == "entry").map(|(_, v)| v).unwrap_or_default();
    let refuse = |status: StatusCode, message: String| page_with_status(&pl, status, trust_page(&pl, &caller, &state, Some(&message), &pasted));
    if pasted.len() > MAX_ENTRY_BYTES {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, t(pl.lang, "條目過大。", "A entrada é demasiado grande.", "The entry is too large.").to_string());
    }
    let entry = match crate::json_strict::from_str::<serde_json::Value>(&pasted)
        .map_err(|e| crate::http::error::ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "CARIMBO-E1230", format!("the entry is not JSON: {e}")))
        .and_then(parse_trust_entry)
    {
        Ok(e) => e,
        Err(e) => return refuse(e.status, line(&e.lang(pl.lang))),
    };
    let st = state.clone();
    match tokio::task::spawn_blocking(move || st.append_trust_entry(entry, Utc::now())).await {
        Ok(Ok(_)) => Redirect::to("/admin/trust-list").into_response(),
        Ok(Err(e)) => {
            let problem = trust_entry_problem(&e).lang(pl.lang);
            refuse(problem.status, line(&problem))
        }
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
