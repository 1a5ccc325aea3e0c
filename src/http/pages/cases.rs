//! My cases and one case's progress: every step of the route the case is pinned to, in the
//! workflow's order, as done (who, what, when, at which signature level), open (who is waiting
//! to act, since when), skipped (why), or not yet reached. The data is shown read-only with
//! restricted fields hidden as the API hides them.

use super::fill::level_label;
use super::render::FormView;
use super::{layout, page, person_label, problem_page, status_label, t, when, PageCaller, PageLang};
use crate::directory::Directory;
use crate::http::auth::Caller;
use crate::http::AppState;
use crate::i18n::Lang;
use crate::workflow::{Action, Case, StepStatus, WorkflowDefinition};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub async fn list(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang) -> Response {
    let lang = pl.lang;
    let st = state.clone();
    let person = caller.person.clone();
    let heads = tokio::task::spawn_blocking(move || st.cases.cases_of(&person, 200)).await;
    let heads = match heads {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return problem_page(&pl, Some(&caller), StatusCode::INTERNAL_SERVER_ERROR, t(lang, "出錯", "Erro", "Error"), &e.to_string()),
        Err(e) => return problem_page(&pl, Some(&caller), StatusCode::INTERNAL_SERVER_ERROR, t(lang, "出錯", "Erro", "Error"), &e.to_string()),
    };
    let catalog = state.cases.catalog();
    let dir = state.cases.directory();
    let title = t(lang, "我的個案", "Os meus processos", "My cases");
    page(
        &pl,
        layout(
            &pl,
            title,
            Some(&caller),
            html! {
                h1 { (title) }
                @if heads.is_empty() {
                    p.muted { (t(lang, "你暫時沒有個案。", "Ainda não tem processos.", "You have no cases yet.")) " " a href="/forms" { (t(lang, "填寫表格", "Preencher um formulário", "Fill in a form")) } }
                } @else {
                    table.cases {
                        thead { tr {
                            th { (t(lang, "個案", "Processo", "Case")) }
                            th { (t(lang, "表格", "Formulário", "Form")) }
                            th { (t(lang, "狀態", "Estado", "Status")) }
                            th { (t(lang, "目前步驟", "Passo atual", "Current step")) }
                            th { (t(lang, "提交日期", "Submetido em", "Submitted")) }
                        } }
                        tbody {
                            @for h in &heads {
                                tr data-case=(h.case_id) {
                                    td { a href=(format!("/cases/{}", h.case_id)) { code { (h.case_id) } } }
                                    td { (catalog.form(&h.form_id).map(|f| f.title.get(lang).to_string()).unwrap_or_else(|| h.form_id.clone())) }
                                    td.status { (status_label(lang, &h.status)) }
                                    td { (current_steps(lang, &dir, &h.summary)) }
                                    td { (when(&h.opened_at)) }
                                }
                            }
                        }
                    }
                }
            },
        ),
    )
}

/// The open steps of a case head's summary: which step, waiting for whom, since when.
fn current_steps(lang: Lang, dir: &Directory, summary: &Value) -> Markup {
    let steps = summary.get("current_steps").and_then(Value::as_array).cloned().unwrap_or_default();
    html! {
        @if steps.is_empty() { "—" }
        @for s in &steps {
            div {
                strong { (s.get("step").and_then(Value::as_str).unwrap_or("")) }
                @let waiting: Vec<String> = s.get("waiting_for").and_then(Value::as_array).map(|l| l.iter().filter_map(Value::as_str).map(|p| person_label(lang, dir, p)).collect()).unwrap_or_default();
                @if !waiting.is_empty() { " · " (waiting.join(", ")) }
                @if let Some(since) = s.get("since").and_then(Value::as_str) { br; small.muted { (t(lang, "自", "desde", "since")) " " (since.get(..16).unwrap_or(since).replace('T', " ")) } }
            }
        }
    }
}

pub async fn one(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Path(id): Path<String>) -> Response {
    let lang = pl.lang;
    let st = state.clone();
    let c = caller.clone();
    let found = tokio::task::spawn_blocking(move || st.visible_case(&c, &id).map(|(case, _, wf)| (case, wf))).await;
    let Ok(Ok((case, wf))) = found else {
        return problem_page(&pl, Some(&caller), StatusCode::NOT_FOUND, t(lang, "找不到此個案", "Processo não encontrado", "No such case"), t(lang, "找不到此個案，或你無權查看。", "Processo não encontrado, ou sem acesso.", "No such case, or you may not see it."));
    };
    let title = format!("{} {}", t(lang, "個案", "Processo", "Case"), case.id);
    page(&pl, layout(&pl, &title, Some(&caller), html! { h1 { (title) } (case_view(&state, lang, &caller, &case, &wf)) }))
}

/// A case: what it is, its route's progress and its data. Used by the case page and the
/// auditor's page.
pub fn case_view(state: &AppState, lang: Lang, caller: &Caller, case: &Case, wf: &WorkflowDefinition) -> Markup {
    let dir = state.cases.directory();
    let form = state.cases.form_of(case).ok();
    let shown = state.case_json(caller, case);
    let empty = Value::Null;
    let data = shown.get("data").unwrap_or(&empty);
    html! {
        dl.facts {
            dt { (t(lang, "表格", "Formulário", "Form")) }
            dd { (form.as_ref().map(|f| f.title.get(lang).to_string()).unwrap_or_else(|| case.form.id.clone())) " " small.muted { "v" (case.form.version) } }
            dt { (t(lang, "狀態", "Estado", "Status")) }
            dd.status data-status=(case.status.as_str()) { (status_label(lang, case.status.as_str())) }
            dt { (t(lang, "提交人", "Submetido por", "Submitted by")) }
            dd { (person_label(lang, &dir, &case.submitter)) }
            @if case.subject != case.submitter {
                dt { (t(lang, "當事人", "Interessado", "Subject")) }
                dd { (person_label(lang, &dir, &case.subject)) }
            }
            dt { (t(lang, "提交日期", "Submetido em", "Submitted")) }
            dd { (when(&case.opened_at)) }
        }
        h2 { (t(lang, "流程進度", "Andamento", "Progress")) }
        (progress(lang, &dir, case, wf))
        @if let Some(form) = &form {
            h2 { (t(lang, "表格內容", "Conteúdo do formulário", "What was submitted")) }
            (FormView { form, lang, data, computed: &BTreeMap::new(), errors: &[], extra_rows: &BTreeSet::new(), editable: false }.render())
        }
    }
}

fn action_label(lang: Lang, a: Action) -> &'static str {
    match a {
        Action::Approve => t(lang, "批准", "aprovou", "approved"),
        Action::Reject => t(lang, "不批准", "indeferiu", "rejected"),
        Action::Return => t(lang, "退回修改", "devolveu para correção", "returned for correction"),
        Action::Sign => t(lang, "簽署", "assinou", "signed"),
    }
}

/// Each step of the workflow, in its order, with its state on this case.
pub fn progress(lang: Lang, dir: &Directory, case: &Case, wf: &WorkflowDefinition) -> Markup {
    html! {
        ol.progress {
            li.step.done {
                span.badge { (t(lang, "已完成", "feito", "done")) }
                strong { (t(lang, "提交", "Submissão", "Submission")) }
                div { (person_label(lang, dir, &case.submitter)) " · " (when(&case.opened_at)) }
            }
            @for def in &wf.steps {
                @let state = case.steps.get(&def.id);
                @let (class, badge) = match state.map(|s| s.status) {
                    Some(StepStatus::Done) => ("done", t(lang, "已完成", "feito", "done")),
                    Some(StepStatus::Open) => ("open", t(lang, "處理中", "em curso", "open")),
                    Some(StepStatus::Skipped) => ("skipped", t(lang, "略過", "dispensado", "skipped")),
                    None => ("pending", t(lang, "未開始", "ainda não", "not yet")),
                };
                li class=(format!("step {class}")) data-step=(def.id) {
                    span.badge { (badge) }
                    strong { (def.title.get(lang)) }
                    small.muted { " · " (level_label(lang, def.signature)) }
                    @if let Some(s) = state {
                        @match s.status {
                            StepStatus::Skipped => { div.muted { (s.skip_reason.clone().unwrap_or_default()) } }
                            _ => {
                                ul.seats {
                                    @for seat in &s.seats {
                                        li {
                                            @if let Some(act) = &seat.act {
                                                (person_label(lang, dir, &act.actor))
                                                @if let Some(p) = &act.on_behalf_of { " " (t(lang, "代", "por", "for")) " " (person_label(lang, dir, p)) }
                                                " " (action_label(lang, act.action)) " · " (when(&act.at)) " · " (level_label(lang, act.level))
                                                @if act.superseded { " " em.muted { (t(lang, "（已被重新提交取代）", "(substituído por nova versão)", "(superseded by a resubmission)")) } }
                                            } @else {
                                                @let who: Vec<String> = seat.people.iter().chain(seat.escalated_to.iter()).map(|p| person_label(lang, dir, p)).collect();
                                                (t(lang, "等待", "Aguarda", "Waiting for")) " " (who.join(", ")) " · " (t(lang, "自", "desde", "since")) " " (when(&s.since))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
