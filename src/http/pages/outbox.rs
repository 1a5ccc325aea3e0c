//! The administrators' outbox page: the webhooks this server delivers to, how the deliveries
//! go, the dead letters (with their last error) to send again, and the export of a period's
//! decisions and finished cases as CSV or JSON.

use super::{PageCaller, PageLang, check_csrf, page, page_with_status, require_role, t, titled, when};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::outbox_api::overview;
use crate::outbox::retry_dead;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::Value;
use std::sync::Arc;

pub async fn show(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["admin"]) {
        return r;
    }
    let st = state.clone();
    match tokio::task::spawn_blocking(move || overview(&st)).await {
        Ok(Ok(view)) => page(&pl, outbox_page(&pl, &caller, &view, None)),
        Ok(Err(e)) => page_with_status(&pl, e.status, outbox_page(&pl, &caller, &Value::Null, Some(&e.lang(pl.lang).problem().title))),
        Err(e) => page_with_status(&pl, StatusCode::INTERNAL_SERVER_ERROR, outbox_page(&pl, &caller, &Value::Null, Some(&e.to_string()))),
    }
}

fn outbox_page(pl: &PageLang, caller: &Caller, view: &Value, error: Option<&str>) -> Markup {
    let lang = pl.lang;
    let title = t(lang, "對外訊息", "Mensagens para outros sistemas", "Outbox");
    let empty = Vec::new();
    let dead = view["dead_letters"].as_array().unwrap_or(&empty);
    titled(
        pl,
        caller,
        title,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            p { (t(lang,
                "每項決定及每宗已完成、不批准或撤回的個案，都會與其事件一同寫入對外訊息，並最少送達一次至下列接收端。",
                "Cada decisão e cada processo concluído, indeferido ou retirado é escrito nas mensagens com os seus eventos e entregue pelo menos uma vez aos destinos abaixo.",
                "Every decision and every completed, rejected or withdrawn case is written here with its events and delivered at least once to the endpoints below.")) }
            h2 { (t(lang, "接收端", "Destinos", "Endpoints")) }
            @match view["webhooks"].as_object() {
                None => p.muted {
                    (t(lang, "此伺服器沒有設定接收端（", "Este servidor não tem destinos configurados (", "This server has no endpoints configured ("))
                    code { "carimbo serve --webhooks " (t(lang, "檔案", "FICHEIRO", "FILE")) }
                    (t(lang, "）。訊息會保留，可用下方的匯出功能取得。", "). As mensagens ficam guardadas e podem ser exportadas abaixo.", "). Messages are kept and can be exported below."))
                },
                Some(w) => {
                    table.endpoints {
                        thead { tr {
                            th scope="col" { (t(lang, "名稱", "Nome", "Name")) }
                            th scope="col" { "URL" }
                            th scope="col" { (t(lang, "訊息類別", "Tipos", "Kinds")) }
                        } }
                        tbody {
                            @for e in w["endpoints"].as_array().unwrap_or(&empty) {
                                tr {
                                    td { code { (e["name"].as_str().unwrap_or("")) } }
                                    td { code { (e["url"].as_str().unwrap_or("")) } }
                                    td { @let kinds = e["kinds"].as_array().map(|k| k.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default();
                                         @if kinds.is_empty() { (t(lang, "全部", "Todos", "All")) } @else { code { (kinds) } } }
                                }
                            }
                        }
                    }
                    @let d = &w["dispatcher"];
                    p #dispatcher {
                        (t(lang, "已送達", "Entregues", "Delivered")) ": " (d["delivered_total"]) " · "
                        (t(lang, "失敗嘗試", "Tentativas falhadas", "Failed attempts")) ": " (d["failed_total"]) " · "
                        (t(lang, "最後一輪", "Última passagem", "Last pass")) ": "
                        (d["last_pass_at"].as_str().and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok()).map(|t| when(lang, &t)).unwrap_or_else(|| "—".into()))
                        @if let Some(e) = d["last_error"].as_str() { " · " span.error lang="en" { (e) } }
                    }
                }
            }
            (mail_section(lang, view))
            p #pending { (t(lang, "等待送出", "À espera de entrega", "Waiting to be delivered")) ": " strong { (view["pending"]) @if view["pending_more"] == true { "+" } } }
            h2 #dead-letters { (t(lang, "無法送達的訊息", "Mensagens não entregues", "Dead letters")) " (" (dead.len()) ")" }
            @if dead.is_empty() {
                p.ok { (t(lang, "沒有無法送達的訊息。", "Não há mensagens por entregar.", "No dead letters.")) }
            } @else {
                form method="post" action="/admin/outbox" {
                    input type="hidden" name="csrf" value=(caller.session.csrf);
                    table.dead {
                        thead { tr {
                            th scope="col" { (t(lang, "選取", "Selecionar", "Select")) }
                            th scope="col" { (t(lang, "訊息", "Mensagem", "Message")) }
                            th scope="col" { (t(lang, "個案", "Processo", "Case")) }
                            th scope="col" { (t(lang, "時間", "Quando", "When")) }
                            th scope="col" { (t(lang, "接收端及最後錯誤", "Destino e último erro", "Endpoint and last error")) }
                        } }
                        tbody {
                            @for m in dead {
                                @let id = m["id"].as_str().unwrap_or("");
                                tr {
                                    td { input type="checkbox" name="id" value=(id) checked aria-label=(id); }
                                    td { code { (id) } br; code { (m["kind"].as_str().unwrap_or("")) } }
                                    td { code { (m["case_id"].as_str().unwrap_or("")) } br; span.muted { code { (m["form_id"].as_str().unwrap_or("")) } } }
                                    td { (m["at"].as_str().and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok()).map(|t| when(lang, &t)).unwrap_or_default()) }
                                    td {
                                        @for (name, d) in m["deliveries"].as_object().into_iter().flatten() {
                                            @if d["state"] == "dead" {
                                                // The transport's own words (the operating system's error), in English.
                                                strong { code { (name) } } ": " (d["attempts"]) " " (t(lang, "次嘗試", "tentativas", "attempts")) " — " span.error lang="en" { (d["last_error"].as_str().unwrap_or("")) } br;
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    button type="submit" { (t(lang, "重新送出所選訊息", "Reenviar as selecionadas", "Send the selected again")) }
                }
            }
            h2 { (t(lang, "匯出", "Exportar", "Export")) }
            p { (t(lang,
                "一段期間內的決定及已結束個案，供薪俸及檔案之用（日期以澳門時間計）。",
                "As decisões e processos terminados de um período, para vencimentos e arquivo (datas na hora de Macau).",
                "A period's decisions and finished cases, for payroll and archives (dates in Macau time).")) }
            form #export method="get" action="/api/v1/admin/export" {
                label { (t(lang, "由", "Desde", "Since")) input type="date" name="since" required; }
                label { (t(lang, "至（不包括）", "Até (exclusive)", "Until (exclusive)")) input type="date" name="until"; }
                label { (t(lang, "格式", "Formato", "Format"))
                    select name="format" { option value="csv" { "CSV" } option value="json" { "JSON" } } }
                button type="submit" { (t(lang, "下載", "Descarregar", "Download")) }
            }
        },
    )
}

/// E-mail notifications: on or off, the server, who has no address, and what waits.
fn mail_section(lang: crate::i18n::Lang, view: &Value) -> Markup {
    let empty = Vec::new();
    let mail = &view["mail"];
    let without = mail["people_without_address"].as_array().unwrap_or(&empty);
    let waiting = view["notifications_waiting"].as_array().unwrap_or(&empty);
    html! {
        h2 #mail { (t(lang, "電郵通知", "Notificações por correio eletrónico", "E-mail notifications")) }
        @if mail["on"] == true {
            p #mail-server { (t(lang, "經由", "Por", "Through")) " " code { (mail["server"].as_str().unwrap_or("")) } " · " (t(lang, "寄件人", "Remetente", "From")) " " code { (mail["from"].as_str().unwrap_or("")) }
                " · " (t(lang, "已送達", "Entregues", "Delivered")) ": " (mail["dispatcher"]["delivered_total"]) " · " (t(lang, "失敗嘗試", "Tentativas falhadas", "Failed attempts")) ": " (mail["dispatcher"]["failed_total"]) }
        } @else {
            p.muted #mail-off { (t(lang, "通知已關閉：此伺服器沒有以 ", "Notificações desligadas: este servidor não foi iniciado com ", "Notifications are off: this server was not started with ")) code { "carimbo serve --smtp URL" } "." }
        }
        h3 #without-address { (t(lang, "沒有電郵地址的人員", "Pessoas sem endereço de correio eletrónico", "People with no e-mail address")) " (" (without.len()) ")" }
        @if without.is_empty() {
            p.ok { (t(lang, "人員名錄內每人都有電郵地址。", "Todas as pessoas do diretório têm endereço.", "Everyone in the directory has an address.")) }
        } @else {
            p { (t(lang, "他們不會收到通知；請在人員名錄加上地址。", "Não recebem notificações: acrescente o endereço no diretório.", "They get no notifications: add their address to the directory.")) }
            ul.without-address { @for p in without { li { code { (p["person"].as_str().unwrap_or("")) } " " (p["name"][lang.code()].as_str().unwrap_or("")) } } }
        }
        h3 #notifications-waiting { (t(lang, "等待寄出的通知", "Notificações à espera", "Notifications waiting")) " (" (waiting.len()) ")" }
        @if !waiting.is_empty() {
            table.notifications {
                thead { tr {
                    th scope="col" { (t(lang, "通知", "Notificação", "Notification")) }
                    th scope="col" { (t(lang, "收件人", "Destinatário", "Recipient")) }
                    th scope="col" { (t(lang, "狀態", "Estado", "State")) }
                } }
                tbody {
                    @for m in waiting {
                        @let d = &m["deliveries"]["smtp"];
                        tr {
                            td { code { (m["kind"].as_str().unwrap_or("")) } br; code { (m["case_id"].as_str().unwrap_or("")) } }
                            td { code { (m["recipient"].as_str().unwrap_or("")) } }
                            td {
                                (d["attempts"].as_u64().unwrap_or(0)) " " (t(lang, "次嘗試", "tentativas", "attempts"))
                                @if let Some(next) = d["next_at"].as_str().and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok()) { " · " (t(lang, "下次", "próxima", "next")) " " (when(lang, &next)) }
                                @if let Some(e) = d["last_error"].as_str() { br; span.error lang="en" { (e) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub async fn posted(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Form(fields): Form<Vec<(String, String)>>) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["admin"]) {
        return r;
    }
    let csrf = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
    if let Err(r) = check_csrf(&pl, &caller, csrf) {
        return r;
    }
    let ids: Vec<String> = fields.into_iter().filter(|(k, _)| k == "id").map(|(_, v)| v).take(500).collect();
    if ids.is_empty() {
        return Redirect::to("/admin/outbox").into_response();
    }
    let store = state.cases.store().clone();
    match tokio::task::spawn_blocking(move || retry_dead(store.as_ref(), &ids)).await {
        Ok(Ok(_)) => Redirect::to("/admin/outbox").into_response(),
        Ok(Err(e)) => super::problem_page(
            &pl,
            Some(&caller),
            StatusCode::NOT_FOUND,
            t(pl.lang, "無法重新送出", "Não foi possível reenviar", "Could not send again"),
            &e.to_string(),
        ),
        Err(e) => super::problem_page(
            &pl,
            Some(&caller),
            StatusCode::INTERNAL_SERVER_ERROR,
            t(pl.lang, "無法重新送出", "Não foi possível reenviar", "Could not send again"),
            &e.to_string(),
        ),
    }
}
