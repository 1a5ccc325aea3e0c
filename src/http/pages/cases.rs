//! My cases and one case's progress: every step of the route the case is pinned to, in the
//! workflow's order, as done (who, what, when, at which signature level), open (who is waiting
//! to act, since when), skipped (why), or not yet reached. The data is shown read-only with
//! restricted fields hidden as the API hides them.
//!
//! The submitter also acts here: a case with no final decision can be withdrawn (reason, then a
//! confirmation, both plain page posts), and a case returned for correction shows the approver's
//! comment and links to its correction page (`resubmit`).

use super::render::{FormView, pointer_label, value_label};
use super::summary::Summary;
use super::{PageCaller, PageLang, check_csrf, page, page_with_status, person_label, problem_page, status_label, t, titled, when};
use crate::directory::Directory;
use crate::forms::FormDefinition;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::i18n::Lang;
use crate::store::StoredEvent;
use crate::wording::{action_label, level_label};
use crate::workflow::{Action, Case, CaseEvent, CaseStatus, Change, StepStatus, WorkflowDefinition};
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub async fn list(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang) -> Response {
    let lang = pl.lang;
    let st = state.clone();
    let c = caller.clone();
    // Each row's summary is read from its case, through the caller's sight.
    let heads = tokio::task::spawn_blocking(move || {
        st.cases.cases_of(&c.person, 200).map(|heads| {
            heads
                .into_iter()
                .map(|h| {
                    let case = st.cases.case(&h.case_id).ok();
                    let summary = case.as_ref().map(|case| Summary::of(&st, &c, lang, case)).unwrap_or_default();
                    // The open steps by their titles, not their ids.
                    let titles: BTreeMap<String, String> = case
                        .as_ref()
                        .and_then(|case| st.cases.workflow_of(case).ok())
                        .map(|wf| wf.steps.iter().map(|s| (s.id.clone(), s.title.get(lang).to_string())).collect())
                        .unwrap_or_default();
                    (h, summary, titles)
                })
                .collect::<Vec<_>>()
        })
    })
    .await;
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
        titled(
            &pl,
            &caller,
            title,
            html! {
                @if heads.is_empty() {
                    p.muted { (t(lang, "你暫時沒有個案。", "Ainda não tem processos.", "You have no cases yet.")) " " a href="/forms" { (t(lang, "填寫表格", "Preencher um formulário", "Fill in a form")) } }
                } @else {
                    table.cases {
                        thead { tr {
                            th { (t(lang, "個案", "Processo", "Case")) }
                            th { (t(lang, "表格", "Formulário", "Form")) }
                            th { (t(lang, "摘要", "Resumo", "Summary")) }
                            th { (t(lang, "狀態", "Estado", "Status")) }
                            th { (t(lang, "目前步驟", "Passo atual", "Current step")) }
                            th { (t(lang, "提交日期", "Submetido em", "Submitted")) }
                        } }
                        tbody {
                            @for (h, summary, titles) in &heads {
                                tr data-case=(h.case_id) {
                                    td { a href=(format!("/cases/{}", h.case_id)) { code { (h.case_id) } } }
                                    td { (catalog.form(&h.form_id).map(|f| f.title.get(lang).to_string()).unwrap_or_else(|| h.form_id.clone())) }
                                    td.summary-cell { (summary.render()) }
                                    td.status { (status_label(lang, &h.status)) }
                                    td { (current_steps(lang, &dir, titles, &h.summary)) }
                                    td { (when(lang, &h.opened_at)) }
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
fn current_steps(lang: Lang, dir: &Directory, titles: &BTreeMap<String, String>, summary: &Value) -> Markup {
    let steps = summary.get("current_steps").and_then(Value::as_array).cloned().unwrap_or_default();
    html! {
        @if steps.is_empty() { "—" }
        @for s in &steps {
            div {
                @let step = s.get("step").and_then(Value::as_str).unwrap_or("");
                strong data-step=(step) { (titles.get(step).map(String::as_str).unwrap_or(step)) }
                @let waiting: Vec<String> = s.get("waiting_for").and_then(Value::as_array).map(|l| l.iter().filter_map(Value::as_str).map(|p| person_label(lang, dir, p)).collect()).unwrap_or_default();
                @if !waiting.is_empty() { " · " (waiting.join(", ")) }
                @if let Some(since) = s.get("since").and_then(Value::as_str).and_then(|x| DateTime::parse_from_rfc3339(x).ok()) { br; small.muted { (t(lang, "自", "desde", "since")) " " (when(lang, &since.with_timezone(&Utc))) } }
            }
        }
    }
}

pub async fn one(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Path(id): Path<String>) -> Response {
    match load(&state, &caller, &id).await {
        Some(found) => page(&pl, case_page(&state, &pl, &caller, &found, &WithdrawForm::default())),
        None => no_case(&pl, &caller),
    }
}

fn no_case(pl: &PageLang, caller: &Caller) -> Response {
    let lang = pl.lang;
    problem_page(
        pl,
        Some(caller),
        StatusCode::NOT_FOUND,
        t(lang, "找不到此個案", "Processo não encontrado", "No such case"),
        t(lang, "找不到此個案，或你無權查看。", "Processo não encontrado, ou sem acesso.", "No such case, or you may not see it."),
    )
}

/// A case as its page needs it: the case, its workflow, and what its events say beyond them.
pub struct Found {
    pub case: Case,
    pub wf: Arc<WorkflowDefinition>,
    pub history: History,
}

/// The case if the caller may see it (else `None`: the page says "no such case" either way).
pub async fn load(state: &Arc<AppState>, caller: &Caller, id: &str) -> Option<Found> {
    let (st, c, id) = (state.clone(), caller.clone(), id.to_string());
    let found = tokio::task::spawn_blocking(move || {
        let (case, _, wf) = st.visible_case(&c, &id).ok()?;
        let events = st.cases.events(&case.id).ok()?;
        Some(Found { history: History::of(&events), case, wf })
    });
    found.await.ok().flatten()
}

/// What the events say that the replayed `Case` does not keep: the last return for correction
/// (who, when, at which step, the approver's comment), the withdrawal (who, when, why) and the
/// last correction (when, what changed).
#[derive(Default)]
pub struct History {
    pub returned: Option<Note>,
    pub withdrawn: Option<Note>,
    pub resubmitted: Option<(DateTime<Utc>, Vec<Change>)>,
}

pub struct Note {
    pub by: String,
    pub at: DateTime<Utc>,
    pub step: Option<String>,
    pub text: Option<String>,
}

impl History {
    pub fn of(events: &[StoredEvent]) -> History {
        let mut h = History::default();
        // The disclosures of the data version in force, to open a correction's commitments.
        let mut disclosed = crate::forms::commitment::Disclosures::new();
        for e in events.iter().filter_map(|e| serde_json::from_value::<CaseEvent>(e.body.clone()).ok()) {
            match e {
                CaseEvent::Submitted { disclosures, .. } => disclosed = disclosures,
                CaseEvent::Resubmitted { at, changes, disclosures, .. } => {
                    h.resubmitted = Some((at, crate::visibility::open_changes(&changes, &disclosed, &disclosures)));
                    disclosed = disclosures;
                }
                CaseEvent::Acted { at, step, actor, action: Action::Return, comment, .. } => {
                    h.returned = Some(Note { by: actor, at, step: Some(step), text: comment })
                }
                CaseEvent::Withdrawn { at, by, reason } => h.withdrawn = Some(Note { by, at, step: None, text: reason }),
                _ => {}
            }
        }
        h
    }
}

/// The withdrawal part of the case page: the reason typed so far, whether the person is at the
/// confirmation, and what went wrong last time.
#[derive(Default)]
pub struct WithdrawForm {
    reason: String,
    confirming: bool,
    /// Made when the confirmation is shown and sent back with it: a second press of "yes" (or a
    /// post repeated after a lost answer) replays the withdrawal instead of meeting a refusal.
    key: String,
    reason_error: Option<String>,
    refused: Option<String>,
}

/// A reason is a sentence or two; the API's comments stop at 4000 characters too.
const MAX_REASON_CHARS: usize = 4000;

fn case_page(state: &AppState, pl: &PageLang, caller: &Caller, found: &Found, withdraw: &WithdrawForm) -> Markup {
    let lang = pl.lang;
    let Found { case, wf, history } = found;
    let dir = state.cases.directory();
    let form = state.cases.form_of(case).ok();
    let mine = case.submitter == caller.person;
    let title = format!("{} {}", t(lang, "個案", "Processo", "Case"), case.id);
    let step_title = |step: &Option<String>| step.as_deref().and_then(|s| wf.step(s)).map(|d| d.title.get(lang).to_string());
    titled(
        pl,
        caller,
        &title,
        html! {
            @if let Some(refused) = &withdraw.refused {
                div #withdraw-refused.error-summary role="alert" { p { strong { (super::with_codes(refused)) } } }
            }
            @if case.status == CaseStatus::Returned && let Some(n) = &history.returned {
                section #returned.note-box aria-labelledby="returned-title" {
                    h2 #returned-title { (t(lang, "已退回修改", "Devolvido para correção", "Returned for correction")) }
                    p {
                        (person_label(lang, &dir, &n.by)) " · " (when(lang, &n.at))
                        @if let Some(s) = step_title(&n.step) { " · " (s) }
                    }
                    @match &n.text {
                        Some(c) if !c.trim().is_empty() => blockquote #return-comment { (super::shown(c)) },
                        _ => p.muted { (t(lang, "審批人沒有留下備註。", "O aprovador não deixou observações.", "The approver left no comment.")) },
                    }
                    @if mine {
                        p { a #correct.button href=(format!("/cases/{}/resubmit", case.id)) { (t(lang, "修改並重新提交", "Corrigir e submeter de novo", "Correct and resubmit")) } }
                    }
                }
            }
            @if let Some(n) = &history.withdrawn {
                section #withdrawn.note-box aria-labelledby="withdrawn-title" {
                    h2 #withdrawn-title { (t(lang, "已撤回", "Retirado", "Withdrawn")) }
                    p { (person_label(lang, &dir, &n.by)) " · " (when(lang, &n.at)) }
                    @match &n.text {
                        Some(r) if !r.trim().is_empty() => p { (t(lang, "原因：", "Motivo: ", "Reason: ")) span #withdraw-reason { (super::shown(r)) } },
                        _ => p.muted { (t(lang, "沒有註明原因。", "Sem motivo indicado.", "No reason given.")) },
                    }
                }
            }
            @if mine && !case.status.is_final() { (withdraw_section(lang, caller, case, withdraw)) }
            (case_view(state, lang, caller, case, wf))
            @if case.status != CaseStatus::Returned && let (Some((at, changes)), Some(form)) = (&history.resubmitted, &form) {
                section #last-correction aria-labelledby="last-correction-title" {
                    h2 #last-correction-title { (t(lang, "最近一次修改", "Última correção", "Last correction")) }
                    p.muted { (when(lang, at)) " · " (t(lang, "資料版本", "versão dos dados", "data version")) " " (case.data_version) }
                    (changes_table(lang, form, &state.sight(caller, case).changes(changes)))
                }
            }
        },
    )
}

/// Withdrawing: a reason (optional) and a button, then a confirmation; both are plain page posts
/// with the CSRF field, so no script is needed and nothing typed is lost on the way.
fn withdraw_section(lang: Lang, caller: &Caller, case: &Case, w: &WithdrawForm) -> Markup {
    let action = format!("/cases/{}/withdraw", case.id);
    html! {
        @if w.confirming {
            section #withdraw-confirm.confirm role="group" aria-labelledby="withdraw-confirm-title" {
                h2 #withdraw-confirm-title { (t(lang, "確定撤回此個案？", "Retirar este processo?", "Withdraw this case?")) }
                p { (t(lang, "撤回後不可復原：審批人不會再處理此個案。", "A retirada não pode ser desfeita: os aprovadores deixam de tratar o processo.", "This cannot be undone: the approvers will no longer act on this case.")) }
                p {
                    (t(lang, "原因：", "Motivo: ", "Reason: "))
                    @if w.reason.trim().is_empty() { span.muted { (t(lang, "（沒有註明）", "(nenhum)", "(none given)")) } } @else { q #confirm-reason { (super::shown(&w.reason)) } }
                }
                form method="post" action=(action) {
                    input type="hidden" name="csrf" value=(caller.session.csrf);
                    input type="hidden" name="reason" value=(w.reason);
                    input type="hidden" name="key" value=(w.key);
                    button #withdraw-yes type="submit" name="_do" value="confirm" { (t(lang, "確定撤回", "Sim, retirar", "Yes, withdraw it")) }
                    " "
                    button #withdraw-no.secondary type="submit" name="_do" value="cancel" { (t(lang, "不撤回", "Não, manter", "No, keep it")) }
                }
            }
        } @else {
            details #withdraw.withdraw open[w.reason_error.is_some() || !w.reason.is_empty() || w.refused.is_some()] {
                summary { (t(lang, "撤回此個案……", "Retirar este processo…", "Withdraw this case…")) }
                p.muted { (t(lang, "在有最終決定之前，你可以撤回自己提交的個案。", "Enquanto não houver decisão final, pode retirar o processo que submeteu.", "You can withdraw a case you submitted as long as it has no final decision.")) }
                form method="post" action=(action) novalidate {
                    input type="hidden" name="csrf" value=(caller.session.csrf);
                    div.field.has-error[w.reason_error.is_some()] {
                        label for="withdraw-reason-input" { (t(lang, "原因（可選）", "Motivo (opcional)", "Reason (optional)")) }
                        textarea #withdraw-reason-input name="reason" rows="3" maxlength=(MAX_REASON_CHARS)
                            aria-invalid=[w.reason_error.as_ref().map(|_| "true")] aria-describedby=[w.reason_error.as_ref().map(|_| "withdraw-reason-error")] { (w.reason) }
                        @if let Some(e) = &w.reason_error { p #withdraw-reason-error.field-error { (e) } }
                    }
                    button #withdraw-ask type="submit" name="_do" value="ask" { (t(lang, "撤回……", "Retirar…", "Withdraw…")) }
                }
            }
        }
    }
}

/// Changes of a correction, field by field: before and after, as the reader reads the form.
pub fn changes_table(lang: Lang, form: &FormDefinition, changes: &[Change]) -> Markup {
    html! {
        table.changes {
            thead { tr {
                th scope="col" { (t(lang, "欄位", "Campo", "Field")) }
                th scope="col" { (t(lang, "修改前", "Antes", "Before")) }
                th scope="col" { (t(lang, "修改後", "Depois", "After")) }
            } }
            tbody {
                @for c in changes {
                    tr data-pointer=(c.pointer) {
                        th scope="row" { (pointer_label(form, lang, &c.pointer)) }
                        td.before { (super::shown(&value_label(form, lang, &c.pointer, &c.before))) }
                        td.after { (super::shown(&value_label(form, lang, &c.pointer, &c.after))) }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct WithdrawPost {
    csrf: Option<String>,
    #[serde(default)]
    reason: String,
    #[serde(rename = "_do")]
    action: Option<String>,
    #[serde(default)]
    key: String,
}

/// A fresh idempotency key for one confirmation (128 random bits, hex).
fn confirmation_key() -> String {
    let mut bytes = [0u8; 16];
    // Without OS randomness the withdrawal still works, only without replay protection.
    if getrandom::fill(&mut bytes).is_err() {
        return String::new();
    }
    format!("page-withdraw-{}", hex::encode(bytes))
}

/// The withdrawal posts: `ask` shows the confirmation, `cancel` goes back to the form with the
/// reason kept, `confirm` withdraws and then shows the case (or says on the page why not).
pub async fn withdraw(
    State(state): State<Arc<AppState>>,
    PageCaller(caller): PageCaller,
    pl: PageLang,
    Path(id): Path<String>,
    Form(f): Form<WithdrawPost>,
) -> Response {
    if let Err(r) = check_csrf(&pl, &caller, f.csrf.as_deref()) {
        return r;
    }
    let lang = pl.lang;
    let Some(found) = load(&state, &caller, &id).await else { return no_case(&pl, &caller) };
    let mut w = WithdrawForm { reason: f.reason, ..WithdrawForm::default() };
    if w.reason.chars().count() > MAX_REASON_CHARS {
        w.reason_error = Some(match lang {
            Lang::Zh => format!("原因最多 {MAX_REASON_CHARS} 個字。"),
            Lang::Pt => format!("O motivo tem no máximo {MAX_REASON_CHARS} caracteres."),
            Lang::En => format!("The reason can be at most {MAX_REASON_CHARS} characters long."),
        });
        return page_with_status(&pl, StatusCode::UNPROCESSABLE_ENTITY, case_page(&state, &pl, &caller, &found, &w));
    }
    match f.action.as_deref() {
        Some("confirm") => {}
        Some("cancel") => return page(&pl, case_page(&state, &pl, &caller, &found, &w)),
        _ => {
            w.confirming = true;
            w.key = confirmation_key();
            return page(&pl, case_page(&state, &pl, &caller, &found, &w));
        }
    }
    let (st, c, case_id) = (state.clone(), caller.clone(), found.case.id.clone());
    let reason = Some(w.reason.trim().to_string()).filter(|r| !r.is_empty());
    let key = Some(f.key).filter(|k| k.starts_with("page-withdraw-") && k.len() <= 64);
    let done = tokio::task::spawn_blocking(move || {
        let idem = key.as_deref().map(|k| crate::cases::Idempotency::for_withdraw(k, &c.person, reason.as_deref())).transpose()?;
        st.cases.withdraw(&case_id, &c.person, reason, Utc::now(), idem.as_ref()).map_err(ApiError::from)
    })
    .await;
    let refusal = match done {
        Ok(Ok(_)) => return Redirect::to(&format!("/cases/{}", found.case.id)).into_response(),
        Ok(Err(e)) => e.lang(lang),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E0799", e.to_string()).lang(lang),
    };
    let problem = refusal.problem();
    w.refused = Some(format!("{} {} ({})", t(lang, "未能撤回：", "Não foi retirado:", "Not withdrawn:"), problem.title, problem.code));
    // The page as it is now (the case may have changed under the person), with the refusal on top.
    let found = load(&state, &caller, &id).await.unwrap_or(found);
    page_with_status(&pl, refusal.status, case_page(&state, &pl, &caller, &found, &w))
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
            dd { (when(lang, &case.opened_at)) }
            @let summary = Summary::of(state, caller, lang, case);
            @if !summary.0.is_empty() {
                dt { (t(lang, "摘要", "Resumo", "Summary")) }
                dd #case-summary { (summary.render()) }
            }
        }
        p.actions {
            a #download-evidence.button href=(format!("/api/v1/cases/{}/evidence", case.id)) download=(format!("evidence-{}.json", case.id)) {
                (t(lang, "下載證據包", "Descarregar o pacote de prova", "Download evidence bundle"))
            }
            " " small.muted { (t(lang, "（可離線以 carimbo verify 核實）", "(verificável offline com carimbo verify)", "(verifiable offline with carimbo verify)")) }
            " "
            a #download-pdf.button href=(format!("/cases/{}/pdf", case.id)) download=(format!("{}-{}.pdf", case.id, lang.code())) {
                (t(lang, "下載 PDF（已封存）", "Descarregar PDF (selado)", "Download PDF (sealed)"))
            }
        }
        h2 { (t(lang, "流程進度", "Andamento", "Progress")) }
        (progress(lang, &dir, case, wf, form.as_deref(), data))
        @if let Some(form) = &form {
            h2 { (t(lang, "表格內容", "Conteúdo do formulário", "What was submitted")) }
            (FormView { form, lang, data, computed: &BTreeMap::new(), errors: &[], extra_rows: &BTreeSet::new(), editable: false, directory: Some(&dir), applicant: Some(&case.subject) }.render())
        }
    }
}

/// Which condition a skipped step did not meet, in words a reader can check: the values of the
/// form's fields it reads (as the form labels them, as this case holds them, through the reader's
/// sight) and the settings of the department or form it compares them with. The condition itself
/// is the workflow's (`steps[].when`, JSON Logic); its fields come from the one logic scanner.
fn condition_read(lang: Lang, form: Option<&FormDefinition>, data: &Value, wf: &WorkflowDefinition, step: &str) -> Markup {
    let Some(when) = wf
        .source
        .get("steps")
        .and_then(Value::as_array)
        .and_then(|steps| steps.iter().find(|s| s.get("id").and_then(Value::as_str) == Some(step)))
        .and_then(|s| s.get("when"))
    else {
        return html! {};
    };
    let scan = crate::forms::scan_logic(when);
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut settings: Vec<(&str, String)> = Vec::new();
    for path in scan.root_vars.keys() {
        let top = path.split('.').next().unwrap_or(path);
        if let Some(rest) = path.strip_prefix("context.department.") {
            settings.push((t(lang, "部門設定", "a regra do serviço", "the department's setting"), rest.to_string()));
        } else if let Some(rest) = path.strip_prefix("settings.").or_else(|| path.strip_prefix("context.")) {
            settings.push((t(lang, "設定", "a regra", "the setting"), rest.to_string()));
        } else if let Some(form) = form
            && !fields.iter().any(|(f, _)| f == top)
        {
            let ptr = crate::forms::pointer_push("", top);
            let value =
                data.get(top).filter(|v| !crate::visibility::is_restricted_marker(v)).map(|v| value_label(form, lang, &ptr, v)).unwrap_or_else(|| "—".into());
            fields.push((pointer_label(form, lang, &ptr), value));
        }
    }
    if fields.is_empty() && settings.is_empty() {
        return html! {};
    }
    html! {
        div.muted.skip-condition {
            (t(lang, "條件取決於：", "A condição depende de: ", "The condition reads: "))
            @for (i, (label, value)) in fields.iter().enumerate() {
                @if i > 0 { (t(lang, "、", ", ", ", ")) }
                strong { (label) } " " (t(lang, "（此個案：", "(neste processo: ", "(this case: ")) (super::shown(value)) (t(lang, "）", ")", ")"))
            }
            @for (i, (words, name)) in settings.iter().enumerate() {
                @if i > 0 || !fields.is_empty() { (t(lang, "，以及", "; e ", "; and ")) }
                (words) " " code { (name) }
            }
        }
    }
}

/// Each step of the workflow, in its order, with its state on this case.
pub fn progress(lang: Lang, dir: &Directory, case: &Case, wf: &WorkflowDefinition, form: Option<&FormDefinition>, data: &Value) -> Markup {
    let stopped = case.status.is_final();
    html! {
        ol.progress {
            li.step.done {
                span.badge { (t(lang, "已完成", "feito", "done")) }
                strong { (t(lang, "提交", "Submissão", "Submission")) }
                div { (person_label(lang, dir, &case.submitter)) " · " (when(lang, &case.opened_at)) }
            }
            @for def in &wf.steps {
                @let state = case.steps.get(&def.id);
                @let (class, badge) = match state.map(|s| s.status) {
                    Some(StepStatus::Done) => ("done", t(lang, "已完成", "feito", "done")),
                    // A case that ended (withdrawn) leaves its open steps waiting for nobody.
                    Some(StepStatus::Open) if stopped => ("stopped", t(lang, "未處理", "não tratado", "not acted on")),
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
                            StepStatus::Skipped => {
                                div.muted.skip-reason { (skip_reason(lang, s.skip_reason.as_deref())) }
                                @if s.skip_reason.as_deref() == Some("condition not met") { (condition_read(lang, form, data, wf, &def.id)) }
                            }
                            _ => {
                                ul.seats {
                                    @for seat in &s.seats {
                                        li {
                                            @if let Some(act) = &seat.act {
                                                (person_label(lang, dir, &act.actor))
                                                @if let Some(p) = &act.on_behalf_of { " " (t(lang, "代", "por", "for")) " " (person_label(lang, dir, p)) }
                                                " " (action_label(lang, act.action)) " · " (when(lang, &act.at)) " · " (level_label(lang, act.level))
                                                @if act.superseded { " " em.muted { (t(lang, "（已被重新提交取代）", "(substituído por nova versão)", "(superseded by a resubmission)")) } }
                                                @if let Some(c) = act.comment.as_deref().filter(|c| !c.trim().is_empty()) {
                                                    blockquote.act-comment { (super::shown(c)) }
                                                }
                                            } @else if stopped {
                                                span.muted { (t(lang, "個案已結束，毋須處理", "o processo terminou antes", "the case ended first")) }
                                            } @else {
                                                @let who: Vec<String> = seat.people.iter().chain(seat.escalated_to.iter()).map(|p| person_label(lang, dir, p)).collect();
                                                (t(lang, "等待", "Aguarda", "Waiting for")) " " (who.join(", ")) " · " (t(lang, "自", "desde", "since")) " " (when(lang, &s.since))
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

/// Why a step was skipped, in the reader's language. The record keeps the engine's words
/// (`condition not met`, `nobody to assign`); any other reason is shown as recorded.
fn skip_reason(lang: Lang, reason: Option<&str>) -> Markup {
    let text = match reason {
        Some("condition not met") => t(
            lang,
            "毋須此步驟：此個案不符合該步驟的條件（例如日數未超過部門的門檻）。",
            "Passo dispensado: o processo não preenche a condição deste passo (por exemplo, os dias não excedem o limite do serviço).",
            "Not needed: the case does not meet this step's condition (for example, the days do not exceed the department's threshold).",
        ),
        Some("nobody to assign") => t(
            lang,
            "毋須此步驟：沒有可以處理此步驟的人員（例如提交人本身就是唯一的審批人）。",
            "Passo dispensado: não há ninguém que o possa tratar (por exemplo, quem submeteu era a única pessoa indicada).",
            "Not needed: nobody could take this step (for example, the submitter was the only person for it).",
        ),
        Some(other) => return html! { (super::shown(other)) },
        None => t(lang, "毋須此步驟。", "Passo dispensado.", "Not needed."),
    };
    html! { (text) }
}
