//! The auditor's page: any case by its id, read-only, with its route's progress, its data (as an
//! auditor may see it) and its stored event log with the hash chain re-checked event by event.
//! The offline counterpart is the evidence bundle (`crate::evidence`), which the page points to.

use super::cases::case_view;
use super::{layout, page_with_status, require_role, t, when, PageCaller, PageLang};
use crate::http::auth::Caller;
use crate::http::AppState;
use crate::i18n::Lang;
use crate::store::{StoredEvent, GENESIS_HASH};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

#[derive(Deserialize)]
pub struct AuditQuery {
    case: Option<String>,
}

pub async fn show(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Query(q): Query<AuditQuery>) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["auditor"]) {
        return r;
    }
    let lang = pl.lang;
    let wanted = q.case.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
    let (status, found) = match &wanted {
        None => (StatusCode::OK, html! {}),
        Some(id) => {
            let st = state.clone();
            let c = caller.clone();
            let id = id.clone();
            let looked = tokio::task::spawn_blocking(move || {
                let (case, _, wf) = st.visible_case(&c, &id).map_err(|e| e.lang(lang).problem().title)?;
                let events = st.cases.events(&id).map_err(|e| e.to_string())?;
                let chain = st.cases.store().verify_case(&id).map_err(|e| e.to_string());
                Ok::<_, String>(html! { (case_view(&st, lang, &c, &case, &wf)) (event_log(lang, &events, &chain)) })
            })
            .await;
            match looked {
                Ok(Ok(m)) => (StatusCode::OK, m),
                Ok(Err(e)) => (StatusCode::NOT_FOUND, html! { p.error role="alert" { (e) } }),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, html! { p.error role="alert" { (e.to_string()) } }),
            }
        }
    };
    page_with_status(&pl, status, audit_page(&pl, &caller, wanted.as_deref(), found))
}

fn audit_page(pl: &PageLang, caller: &Caller, wanted: Option<&str>, found: Markup) -> Markup {
    let lang = pl.lang;
    let title = t(lang, "稽核", "Auditoria", "Audit");
    layout(
        pl,
        title,
        Some(caller),
        html! {
            h1 { (title) }
            p.note { (t(lang,
                "按個案編號查閱任何個案的紀錄及其事件雜湊鏈。離線核實：下載個案的證據包（/api/v1/cases/編號/evidence），再以 carimbo verify 檢查，無需伺服器。",
                "Consulte qualquer processo pelo número, com a cadeia de hashes dos seus eventos. Para verificar offline: descarregue o pacote de prova (/api/v1/cases/NÚMERO/evidence) e verifique-o com carimbo verify, sem servidor.",
                "Look up any case by its id, with the hash chain of its events. To verify offline: download the case's evidence bundle (/api/v1/cases/ID/evidence) and check it with carimbo verify, no server needed.")) }
            form #audit-lookup method="get" action="/audit" {
                label { (t(lang, "個案編號", "Número do processo", "Case id")) input name="case" value=(wanted.unwrap_or("")) placeholder="C-…" required; }
                button type="submit" { (t(lang, "查閱", "Consultar", "Look up")) }
            }
            (found)
        },
    )
}

fn short(h: &str) -> &str {
    h.get(..16).unwrap_or(h)
}

/// The stored events, each with its hash re-computed and its link to the previous one checked.
fn event_log(lang: Lang, events: &[StoredEvent], chain: &Result<(), String>) -> Markup {
    let checked: Vec<(&StoredEvent, bool)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let previous = if i == 0 { GENESIS_HASH } else { events[i - 1].hash.as_str() };
            (e, e.prev_hash == previous && e.computed_hash() == e.hash)
        })
        .collect();
    html! {
        h2 { (t(lang, "事件紀錄及雜湊鏈", "Eventos e cadeia de hashes", "Events and hash chain")) }
        @match chain {
            Ok(()) => p #chain.ok { "✓ " (t(lang, "雜湊鏈完整：每個事件的雜湊值均正確，並連接上一個事件。", "Cadeia íntegra: cada evento tem o hash correto e liga ao anterior.", "The chain is intact: every event's hash is correct and links to the one before.")) }
            Err(e) => p #chain.error role="alert" { "✗ " (e) }
        }
        div.scroll {
            table.events {
                thead { tr {
                    th { "#" }
                    th { (t(lang, "事件", "Evento", "Event")) }
                    th { (t(lang, "記錄時間", "Registado em", "Recorded")) }
                    th { (t(lang, "上一個雜湊", "Hash anterior", "Previous hash")) }
                    th { (t(lang, "雜湊", "Hash", "Hash")) }
                    th { (t(lang, "核對", "Verificação", "Check")) }
                } }
                tbody {
                    @for (e, sound) in &checked {
                        tr {
                            td { (e.seq) }
                            td { (e.body.get("type").and_then(Value::as_str).unwrap_or("?"))
                                @if let Some(step) = e.body.get("step").and_then(Value::as_str) { " · " (step) }
                                @if let Some(who) = e.body.get("actor").or_else(|| e.body.get("submitter")).or_else(|| e.body.get("by")).and_then(Value::as_str) { " · " (who) } }
                            td { (when(lang, &e.recorded_at)) }
                            td { code title=(e.prev_hash) { (short(&e.prev_hash)) "…" } }
                            td { code title=(e.hash) { (short(&e.hash)) "…" } }
                            td { @if *sound { span.ok { "✓" } } @else { span.error { "✗" } } }
                        }
                    }
                }
            }
        }
    }
}
