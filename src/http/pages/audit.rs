//! The auditor's page: any case by its id, read-only, with its route's progress, its data (as an
//! auditor may see it) and its stored event log with the hash chain re-checked event by event.
//! The offline counterpart is the evidence bundle (`crate::evidence`), which the page points to.

use super::cases::case_view;
use super::{PageCaller, PageLang, page_with_status, require_role, t, titled, when};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::i18n::Lang;
use crate::store::{CaseHead, GENESIS_HASH, StoredEvent};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    case: Option<String>,
    #[serde(default)]
    form: String,
    #[serde(default)]
    person: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// The search: cases by form, person (submitter, subject or anyone on the route), the
/// submitter's department (as the directory has it now, as the usage figures count it) and the
/// period of submission (Macau dates, inclusive).
struct Search {
    form: Option<String>,
    person: Option<String>,
    department: Option<String>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

/// At most this many cases are read per search, and this many shown.
const SCAN_LIMIT: usize = 50_000;
const SHOWN_LIMIT: usize = 200;

impl Search {
    /// The search the query asks for (`None`: no search), or what is wrong with it.
    fn of(q: &AuditQuery, lang: Lang) -> Result<Option<Search>, String> {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let date = |s: &str| -> Result<Option<NaiveDate>, String> {
            match some(s) {
                None => Ok(None),
                Some(d) => NaiveDate::parse_from_str(&d, "%Y-%m-%d").map(Some).map_err(|_| {
                    format!("{} [CARIMBO-E0728]", t(lang, "日期須為 YYYY-MM-DD。", "As datas escrevem-se AAAA-MM-DD.", "Dates are written YYYY-MM-DD."))
                }),
            }
        };
        let s = Search { form: some(&q.form), person: some(&q.person), department: some(&q.department), from: date(&q.from)?, to: date(&q.to)? };
        if let (Some(f), Some(t2)) = (s.from, s.to)
            && t2 < f
        {
            return Err(format!(
                "{} [CARIMBO-E0728]",
                t(lang, "結束日期早於開始日期。", "A data final é anterior à inicial.", "The end date is before the start date.")
            ));
        }
        let any = s.form.is_some() || s.person.is_some() || s.department.is_some() || s.from.is_some() || s.to.is_some();
        Ok(any.then_some(s))
    }

    fn matches(&self, h: &CaseHead, dir: &crate::directory::Directory) -> bool {
        let day = h.opened_at.with_timezone(&crate::usage::macau()).date_naive();
        self.form.as_ref().is_none_or(|f| &h.form_id == f)
            && self.person.as_ref().is_none_or(|p| h.submitter == *p || h.parties.iter().any(|x| x == p))
            && self.department.as_ref().is_none_or(|d| dir.person(&h.submitter).and_then(|p| p.department.as_ref()) == Some(d))
            && self.from.is_none_or(|f| day >= f)
            && self.to.is_none_or(|t2| day <= t2)
    }

    /// The matching heads, newest first, and whether the scan stopped at its limit.
    fn run(&self, state: &AppState) -> Result<(Vec<CaseHead>, bool), String> {
        let dir = state.cases.directory();
        let mut found = Vec::new();
        let (mut after, mut scanned) = (None::<String>, 0usize);
        loop {
            let page = state.cases.store().heads(after.as_deref(), 1000).map_err(|e| e.to_string())?;
            let Some(last) = page.last().map(|h| h.case_id.clone()) else { break };
            scanned += page.len();
            found.extend(page.into_iter().filter(|h| self.matches(h, &dir)));
            if scanned >= SCAN_LIMIT {
                found.sort_by_key(|h| std::cmp::Reverse(h.opened_at));
                return Ok((found, true));
            }
            after = Some(last);
        }
        found.sort_by_key(|h| std::cmp::Reverse(h.opened_at));
        Ok((found, false))
    }
}

fn search_results(state: &AppState, lang: Lang, heads: &[CaseHead], stopped: bool) -> Markup {
    let catalog = state.cases.catalog();
    let dir = state.cases.directory();
    html! {
        section #search-results aria-labelledby="search-results-title" {
            h2 #search-results-title { (match lang {
                Lang::Zh => format!("找到 {} 宗個案", heads.len()),
                Lang::Pt => format!("{} processo(s) encontrado(s)", heads.len()),
                Lang::En => format!("{} case(s) found", heads.len()),
            }) }
            @if stopped { p.note { (match lang {
                Lang::Zh => format!("只搜尋了最先的 {SCAN_LIMIT} 宗個案：請收窄條件。"),
                Lang::Pt => format!("Só foram lidos os primeiros {SCAN_LIMIT} processos: restrinja a pesquisa."),
                Lang::En => format!("Only the first {SCAN_LIMIT} cases were read: narrow the search."),
            }) } }
            @if !heads.is_empty() {
                div.scroll tabindex="0" role="region" aria-labelledby="search-results-title" {
                    table.cases {
                        thead { tr {
                            th scope="col" { (t(lang, "個案", "Processo", "Case")) }
                            th scope="col" { (t(lang, "表格", "Formulário", "Form")) }
                            th scope="col" { (t(lang, "提交人", "Submetido por", "Submitted by")) }
                            th scope="col" { (t(lang, "狀態", "Estado", "Status")) }
                            th scope="col" { (t(lang, "提交日期", "Submetido em", "Submitted")) }
                        } }
                        tbody {
                            @for h in heads.iter().take(SHOWN_LIMIT) {
                                tr data-case=(h.case_id) {
                                    td { a href=(format!("/audit?case={}", h.case_id)) { code { (h.case_id) } } }
                                    td { (catalog.form(&h.form_id).map(|f| f.title.get(lang).to_string()).unwrap_or_else(|| h.form_id.clone())) }
                                    td { (super::person_label(lang, &dir, &h.submitter)) }
                                    td { (super::status_label(lang, &h.status)) }
                                    td { (when(lang, &h.opened_at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The search form, keeping what was asked.
fn search_form(state: &AppState, lang: Lang, q: &AuditQuery) -> Markup {
    let catalog = state.cases.catalog();
    let dir = state.cases.directory();
    html! {
        form #audit-search method="get" action="/audit" {
            fieldset {
                legend { (t(lang, "搜尋個案", "Pesquisar processos", "Find cases")) }
                label { (t(lang, "表格", "Formulário", "Form"))
                    select name="form" {
                        option value="" { (t(lang, "所有表格", "Todos", "Any form")) }
                        @for f in catalog.forms.values() { option value=(f.id) selected[q.form == f.id] { (f.title.get(lang)) } }
                    }
                }
                label { (t(lang, "人員編號（提交人、當事人或審批人）", "Número de pessoal (quem submeteu, interessado ou aprovador)", "Person id (submitter, subject or approver)")) input name="person" value=(q.person) autocomplete="off"; }
                label { (t(lang, "提交人部門", "Serviço de quem submeteu", "Submitter's department"))
                    select name="department" {
                        option value="" { (t(lang, "所有部門", "Todos", "Any department")) }
                        @for d in dir.departments() { option value=(d.id) selected[q.department == d.id] { (d.name.get(lang)) } }
                    }
                }
                label { (t(lang, "提交日期由", "Submetido de", "Submitted from")) input type="date" name="from" value=(q.from); }
                label { (t(lang, "至", "até", "to")) input type="date" name="to" value=(q.to); }
                button type="submit" { (t(lang, "搜尋", "Pesquisar", "Search")) }
            }
        }
    }
}

pub async fn show(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Query(q): Query<AuditQuery>) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["auditor"]) {
        return r;
    }
    let lang = pl.lang;
    let search = match Search::of(&q, lang) {
        Ok(s) => s,
        Err(e) => {
            return page_with_status(
                &pl,
                StatusCode::BAD_REQUEST,
                audit_page(&state, &pl, &caller, &q, None, html! { p.error role="alert" { (super::with_codes(&e)) } }),
            );
        }
    };
    if let Some(search) = search {
        let st = state.clone();
        let found = tokio::task::spawn_blocking(move || search.run(&st).map(|(h, stopped)| search_results(&st, lang, &h, stopped))).await;
        let (status, m) = match found {
            Ok(Ok(m)) => (StatusCode::OK, m),
            Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, html! { p.error role="alert" { (e) } }),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, html! { p.error role="alert" { (e.to_string()) } }),
        };
        return page_with_status(&pl, status, audit_page(&state, &pl, &caller, &q, None, m));
    }
    let wanted = q.case.clone().map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
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
                Ok::<_, String>(html! { (case_view(&st, lang, &c, &case, &wf)) (event_log(lang, &st.cases.directory(), &wf, &events, &chain)) })
            })
            .await;
            match looked {
                Ok(Ok(m)) => (StatusCode::OK, m),
                Ok(Err(e)) => (StatusCode::NOT_FOUND, html! { p.error role="alert" { (e) } }),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, html! { p.error role="alert" { (e.to_string()) } }),
            }
        }
    };
    page_with_status(&pl, status, audit_page(&state, &pl, &caller, &q, wanted.as_deref(), found))
}

fn audit_page(state: &AppState, pl: &PageLang, caller: &Caller, q: &AuditQuery, wanted: Option<&str>, found: Markup) -> Markup {
    let lang = pl.lang;
    let title = t(lang, "稽核", "Auditoria", "Audit");
    titled(
        pl,
        caller,
        title,
        html! {
            p.note { (t(lang,
                "按個案編號查閱任何個案的紀錄及其事件雜湊鏈。離線核實：下載個案的證據包（/api/v1/cases/編號/evidence），再以 carimbo verify 檢查，無需伺服器。",
                "Consulte qualquer processo pelo número, com a cadeia de hashes dos seus eventos. Para verificar offline: descarregue o pacote de prova (/api/v1/cases/NÚMERO/evidence) e verifique-o com carimbo verify, sem servidor.",
                "Look up any case by its id, with the hash chain of its events. To verify offline: download the case's evidence bundle (/api/v1/cases/ID/evidence) and check it with carimbo verify, no server needed.")) }
            form #audit-lookup method="get" action="/audit" {
                label { (t(lang, "個案編號", "Número do processo", "Case id")) input name="case" value=(wanted.unwrap_or("")) placeholder="C-…" required; }
                button type="submit" { (t(lang, "查閱", "Consultar", "Look up")) }
            }
            (search_form(state, lang, q))
            p { a href="/audit/verify" { (t(lang, "上載並核實證據包……", "Enviar e verificar um pacote de prova…", "Upload and verify an evidence bundle…")) } }
            (found)
        },
    )
}

fn short(h: &str) -> &str {
    h.get(..16).unwrap_or(h)
}

/// An event's kind in the reader's language (the record keeps the engine's `type`).
fn event_label(lang: Lang, kind: &str) -> &'static str {
    match kind {
        "submitted" => t(lang, "提交", "Submissão", "Submitted"),
        "step_opened" => t(lang, "步驟開始", "Passo aberto", "Step opened"),
        "step_skipped" => t(lang, "步驟略過", "Passo dispensado", "Step skipped"),
        "acted" => t(lang, "處理", "Ato", "Act"),
        "step_done" => t(lang, "步驟完成", "Passo concluído", "Step done"),
        "resubmitted" => t(lang, "修改後重新提交", "Nova submissão", "Resubmitted"),
        "withdrawn" => t(lang, "撤回", "Retirado", "Withdrawn"),
        "reminded" => t(lang, "提醒", "Lembrete", "Reminder"),
        "escalated" => t(lang, "逾期升級", "Escalamento", "Escalated"),
        "completed" => t(lang, "完成", "Concluído", "Completed"),
        "rejected" => t(lang, "不批准", "Indeferido", "Rejected"),
        _ => t(lang, "其他事件", "Outro evento", "Other event"),
    }
}

/// The stored events, each with its hash re-computed and its link to the previous one checked.
fn event_log(
    lang: Lang,
    dir: &crate::directory::Directory,
    wf: &crate::workflow::WorkflowDefinition,
    events: &[StoredEvent],
    chain: &Result<(), String>,
) -> Markup {
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
        div.scroll tabindex="0" role="region" aria-label=(t(lang, "事件紀錄", "Eventos", "Events")) {
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
                            @let kind = e.body.get("type").and_then(Value::as_str).unwrap_or("?");
                            td data-event=(kind) { (event_label(lang, kind))
                                @if let Some(step) = e.body.get("step").and_then(Value::as_str) { " · " (wf.step(step).map(|d| d.title.get(lang).to_string()).unwrap_or_else(|| step.to_string())) }
                                @if let Some(who) = e.body.get("actor").or_else(|| e.body.get("submitter")).or_else(|| e.body.get("by")).and_then(Value::as_str) { " · " (super::person_label(lang, dir, who)) } }
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
