//! Out of office: a staff member names who acts for them, from when to when, on which forms
//! (`/me/delegation`), and an administrator sees every delegation and can end any
//! (`/admin/delegations`). Each change is appended to the delegation record
//! (`directory::delegation_log`, `DATA/delegations.jsonl`) with who made it and when before the
//! directory in memory changes, so it survives a restart; the directory checks the delegation
//! as a whole (nobody delegates to themselves or to a person not in it, dates in order).

use super::{PageCaller, PageLang, check_csrf, page_with_status, person_label, problem_page, require_role, t, titled, when};
use crate::directory::delegation_log::{DelegationEntry, DelegationLogError};
use crate::directory::{Delegation, Directory};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::i18n::{Lang, LocalizedText};
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{NaiveDate, Utc};
use maud::{Markup, html};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One change of the directory's delegations at a time: read, check, record, replace.
static CHANGE: Mutex<()> = Mutex::new(());

/// A delegation may be set at most this far ahead, and last at most this long.
const MAX_DAYS: i64 = 366;

/// What was typed on the page, kept when it is refused.
#[derive(Default, Clone)]
struct Typed {
    delegate: String,
    from: String,
    to: String,
    forms: Vec<String>,
    reason: String,
}

/// Why a delegation was refused, with its code (docs/errors.md) and the field it is about.
struct Refusal {
    code: &'static str,
    field: &'static str,
    text: String,
}

fn refuse(code: &'static str, field: &'static str, text: String) -> Refusal {
    Refusal { code, field, text }
}

/// Today in Macau, the day delegations are counted in.
fn today() -> NaiveDate {
    Utc::now().with_timezone(&crate::usage::macau()).date_naive()
}

/// Checks what was typed and makes the delegation of `principal` from it.
fn delegation_from(lang: Lang, dir: &Directory, known_forms: &[String], principal: &str, typed: &Typed, id: String) -> Result<Delegation, Refusal> {
    let delegate = typed.delegate.trim();
    if dir.person(delegate).is_none() {
        return Err(refuse(
            "CARIMBO-E0722",
            "delegate",
            t(
                lang,
                "請選擇代理人：此人不在人員名冊內。",
                "Escolha quem o substitui: essa pessoa não está no diretório.",
                "Choose who acts for you: that person is not in the directory.",
            )
            .into(),
        ));
    }
    if delegate == principal {
        return Err(refuse(
            "CARIMBO-E0722",
            "delegate",
            t(lang, "不可委託自己。", "Não se pode substituir a si próprio.", "You cannot delegate to yourself.").into(),
        ));
    }
    let date = |s: &str, field: &'static str| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
            refuse("CARIMBO-E0723", field, t(lang, "請以 YYYY-MM-DD 格式填寫日期。", "Escreva a data como AAAA-MM-DD.", "Write the date as YYYY-MM-DD.").into())
        })
    };
    let (from, to) = (date(&typed.from, "from")?, date(&typed.to, "to")?);
    let today = today();
    if to < from {
        return Err(refuse(
            "CARIMBO-E0723",
            "to",
            t(lang, "結束日期不可早於開始日期。", "A data de fim não pode ser anterior à de início.", "The last day cannot be before the first.").into(),
        ));
    }
    if to < today {
        return Err(refuse(
            "CARIMBO-E0723",
            "to",
            t(
                lang,
                "結束日期已過：委託必須包括今天或以後的日子。",
                "A data de fim já passou: a substituição tem de incluir hoje ou dias futuros.",
                "The last day has passed: a delegation must cover today or later.",
            )
            .into(),
        ));
    }
    if (from - today).num_days() > MAX_DAYS || (to - from).num_days() > MAX_DAYS {
        return Err(refuse(
            "CARIMBO-E0723",
            "to",
            match lang {
                Lang::Zh => format!("委託最長 {MAX_DAYS} 日，並須在一年內開始。"),
                Lang::Pt => format!("Uma substituição dura no máximo {MAX_DAYS} dias e começa dentro de um ano."),
                Lang::En => format!("A delegation lasts at most {MAX_DAYS} days and starts within a year."),
            },
        ));
    }
    if let Some(unknown) = typed.forms.iter().find(|f| !known_forms.contains(f)) {
        return Err(refuse(
            "CARIMBO-E0724",
            "forms",
            match lang {
                Lang::Zh => format!("沒有此表格：{unknown}"),
                Lang::Pt => format!("Formulário desconhecido: {unknown}"),
                Lang::En => format!("No such form: {unknown}"),
            },
        ));
    }
    let reason = Some(typed.reason.trim()).filter(|r| !r.is_empty()).map(|r| {
        let r: String = r.chars().take(200).collect();
        LocalizedText::new(r.clone(), r.clone(), r)
    });
    let forms = if typed.forms.is_empty() { None } else { Some(typed.forms.clone()) };
    Ok(Delegation { id, delegate: delegate.to_string(), principal: principal.to_string(), from, to, forms, reason })
}

/// A fresh delegation id: `ooo-PERSON-` and 48 random bits.
fn new_id(principal: &str) -> String {
    let mut bytes = [0u8; 6];
    let _ = getrandom::fill(&mut bytes);
    format!("ooo-{principal}-{}", hex::encode(bytes))
}

/// Records the change, then puts the changed directory in force (both under `CHANGE`).
fn apply(state: &AppState, entry: DelegationEntry, next: Directory) -> Result<(), DelegationLogError> {
    state.delegations.append(&entry)?;
    state.cases.set_directory(next);
    Ok(())
}

/// Who set each delegation and when, from the record (seeded ones have none).
fn set_by(state: &AppState) -> BTreeMap<String, (String, chrono::DateTime<Utc>)> {
    let mut out = BTreeMap::new();
    for e in state.delegations.entries().unwrap_or_default() {
        if let DelegationEntry::Set { at, by, delegation } = e {
            out.insert(delegation.id, (by, at));
        }
    }
    out
}

fn forms_label(state: &AppState, lang: Lang, d: &Delegation) -> String {
    match &d.forms {
        None => t(lang, "所有表格", "todos os formulários", "all forms").to_string(),
        Some(list) => {
            let catalog = state.cases.catalog();
            list.iter().map(|f| catalog.form(f).map(|x| x.title.get(lang).to_string()).unwrap_or_else(|| f.clone())).collect::<Vec<_>>().join(", ")
        }
    }
}

fn period_label(lang: Lang, d: &Delegation) -> Markup {
    let today = today();
    let (class, words) = if d.to < today {
        ("past", t(lang, "已結束", "terminada", "over"))
    } else if d.from > today {
        ("upcoming", t(lang, "未開始", "futura", "upcoming"))
    } else {
        ("active", t(lang, "生效中", "em vigor", "in force"))
    };
    html! { (d.from) " – " (d.to) " " span class=(format!("badge {class}")) { (words) } }
}

/// The table of delegations, each with an "end" button posting to `action`.
fn table(state: &AppState, lang: Lang, caller: &Caller, list: &[&Delegation], action: &str, show_principal: bool) -> Markup {
    let dir = state.cases.directory();
    let by = set_by(state);
    html! {
        div.scroll tabindex="0" role="region" aria-label=(t(lang, "委託", "Substituições", "Delegations")) {
            table.delegations {
                thead { tr {
                    @if show_principal { th scope="col" { (t(lang, "委託人", "Substituído", "For")) } }
                    th scope="col" { (t(lang, "代理人", "Substituto", "Acting")) }
                    th scope="col" { (t(lang, "期間", "Período", "Period")) }
                    th scope="col" { (t(lang, "表格", "Formulários", "Forms")) }
                    th scope="col" { (t(lang, "設定", "Registo", "Set")) }
                    th scope="col" { (t(lang, "操作", "Ação", "Action")) }
                } }
                tbody {
                    @for d in list {
                        tr data-delegation=(d.id) {
                            @if show_principal { td { (person_label(lang, &dir, &d.principal)) } }
                            td { (person_label(lang, &dir, &d.delegate)) }
                            td { (period_label(lang, d)) }
                            td { (forms_label(state, lang, d)) }
                            td {
                                @match by.get(&d.id) {
                                    Some((who, at)) => { (person_label(lang, &dir, who)) br; small.muted { (when(lang, at)) } }
                                    None => span.muted { (t(lang, "人員名冊", "diretório", "directory file")) }
                                }
                            }
                            td {
                                form method="post" action=(action) {
                                    input type="hidden" name="csrf" value=(caller.session.csrf);
                                    input type="hidden" name="id" value=(d.id);
                                    button.secondary type="submit" name="_do" value="end" aria-label=(format!("{} {}", t(lang, "結束委託", "Terminar a substituição", "End delegation"), d.id)) {
                                        (t(lang, "結束", "Terminar", "End"))
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

fn own_page(state: &AppState, pl: &PageLang, caller: &Caller, typed: &Typed, refusal: Option<&Refusal>, done: Option<&str>) -> Markup {
    let lang = pl.lang;
    let dir = state.cases.directory();
    let catalog = state.cases.catalog();
    let title = t(lang, "休假代理", "Ausência e substituição", "Out of office");
    let mine: Vec<&Delegation> = dir.delegations().iter().filter(|d| d.principal == caller.person).collect();
    let err = |field: &str| refusal.filter(|r| r.field == field);
    let mut people: Vec<(String, String)> = dir.people().filter(|p| p.id != caller.person).map(|p| (p.id.clone(), person_label(lang, &dir, &p.id))).collect();
    people.sort_by(|a, b| a.1.cmp(&b.1));
    let forms: Vec<(String, String)> = catalog.forms.values().map(|f| (f.id.clone(), f.title.get(lang).to_string())).collect();
    titled(
        pl,
        caller,
        title,
        html! {
            p.muted { (t(lang,
                "離開期間，指定同事代你處理待辦的審批。委託會被記錄，管理員可查看及結束。",
                "Enquanto estiver ausente, indique quem trata por si dos passos que lhe cabem. A substituição fica registada; o administrador pode vê-la e terminá-la.",
                "While you are away, name who acts for you on the steps that wait for you. The delegation is recorded; an administrator can see and end it.")) }
            @if let Some(d) = done { p #delegation-done.ok role="status" { (d) } }
            @if let Some(r) = refusal {
                div #delegation-refused.error-summary role="alert" { p { strong { (r.text) } " " (super::code_link(r.code)) } }
            }
            @if !mine.is_empty() {
                h2 { (t(lang, "你的委託", "As suas substituições", "Your delegations")) }
                (table(state, lang, caller, &mine, "/me/delegation", false))
            }
            h2 { (t(lang, "新的委託", "Nova substituição", "New delegation")) }
            form #delegation method="post" action="/me/delegation" novalidate {
                input type="hidden" name="csrf" value=(caller.session.csrf);
                div.field.has-error[err("delegate").is_some()] {
                    label for="d-delegate" { (t(lang, "代理人", "Quem o substitui", "Who acts for you")) }
                    select #d-delegate name="delegate" required aria-invalid=[err("delegate").map(|_| "true")] {
                        option value="" { (t(lang, "請選擇……", "Escolha…", "Choose…")) }
                        @for (id, label) in &people { option value=(id) selected[typed.delegate == *id] { (label) } }
                    }
                }
                div.field.has-error[err("from").is_some()] {
                    label for="d-from" { (t(lang, "由（首日）", "De (primeiro dia)", "From (first day)")) }
                    input #d-from type="date" name="from" value=(typed.from) required aria-invalid=[err("from").map(|_| "true")];
                }
                div.field.has-error[err("to").is_some()] {
                    label for="d-to" { (t(lang, "至（最後一日）", "Até (último dia)", "To (last day)")) }
                    input #d-to type="date" name="to" value=(typed.to) required aria-invalid=[err("to").map(|_| "true")];
                }
                fieldset.field.has-error[err("forms").is_some()] {
                    legend { (t(lang, "哪些表格（不選即所有表格）", "Que formulários (nenhum: todos)", "Which forms (none ticked: all)")) }
                    @for (id, label) in &forms {
                        label.inline { input type="checkbox" name="forms" value=(id) checked[typed.forms.contains(id)]; (label) }
                    }
                }
                div.field {
                    label for="d-reason" { (t(lang, "原因（可選）", "Motivo (opcional)", "Reason (optional)")) }
                    input #d-reason name="reason" value=(typed.reason) maxlength="200";
                }
                p.actions { button #delegation-set type="submit" name="_do" value="set" { (t(lang, "設定委託", "Registar a substituição", "Set the delegation")) } }
            }
        },
    )
}

pub async fn show(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang) -> Response {
    page_with_status(&pl, StatusCode::OK, own_page(&state, &pl, &caller, &Typed::default(), None, None))
}

/// The posted form, as pairs (the forms' checkboxes repeat a name).
fn typed_from(pairs: &[(String, String)]) -> Typed {
    let one = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    Typed {
        delegate: one("delegate"),
        from: one("from"),
        to: one("to"),
        forms: pairs.iter().filter(|(k, _)| k == "forms").map(|(_, v)| v.clone()).collect(),
        reason: one("reason"),
    }
}

/// Ends delegation `id` if `caller` may (its principal, or an administrator).
fn end(state: &AppState, lang: Lang, caller: &Caller, id: &str) -> Result<String, (StatusCode, Refusal)> {
    let _one = CHANGE.lock().unwrap_or_else(|e| e.into_inner());
    let mut dir = (*state.cases.directory()).clone();
    let Some(d) = dir.delegations().iter().find(|d| d.id == id).cloned() else {
        return Err((
            StatusCode::NOT_FOUND,
            refuse(
                "CARIMBO-E0725",
                "id",
                t(
                    lang,
                    "沒有此委託（可能已結束）。",
                    "Essa substituição não existe (talvez já tenha terminado).",
                    "No such delegation (it may have ended already).",
                )
                .into(),
            ),
        ));
    };
    if d.principal != caller.person && !caller.has("admin") {
        return Err((
            StatusCode::FORBIDDEN,
            refuse(
                "CARIMBO-E0725",
                "id",
                t(lang, "你只可結束自己的委託。", "Só pode terminar as suas próprias substituições.", "You can end only your own delegations.").into(),
            ),
        ));
    }
    dir.end_delegation(id);
    let entry = DelegationEntry::Ended { at: Utc::now(), by: caller.person.clone(), id: id.to_string() };
    apply(state, entry, dir).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, refuse(e.code(), "id", e.to_string())))?;
    Ok(t(lang, "委託已結束。", "A substituição terminou.", "The delegation has ended.").to_string())
}

/// Sets a delegation of the caller's from what they typed.
fn set(state: &AppState, lang: Lang, caller: &Caller, typed: &Typed) -> Result<String, (StatusCode, Refusal)> {
    let _one = CHANGE.lock().unwrap_or_else(|e| e.into_inner());
    let mut dir = (*state.cases.directory()).clone();
    let known: Vec<String> = state.cases.catalog().forms.keys().cloned().collect();
    let d = delegation_from(lang, &dir, &known, &caller.person, typed, new_id(&caller.person)).map_err(|r| (StatusCode::UNPROCESSABLE_ENTITY, r))?;
    dir.add_delegation(d.clone()).map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, refuse("CARIMBO-E0722", "delegate", e.to_string())))?;
    let entry = DelegationEntry::Set { at: Utc::now(), by: caller.person.clone(), delegation: d };
    apply(state, entry, dir).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, refuse(e.code(), "id", e.to_string())))?;
    Ok(t(lang, "委託已設定並記錄。", "A substituição foi registada.", "The delegation is set and recorded.").to_string())
}

pub async fn posted(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if let Err(r) = check_csrf(&pl, &caller, field("csrf").as_deref()) {
        return r;
    }
    let lang = pl.lang;
    let typed = typed_from(&pairs);
    let (st, c, t2) = (state.clone(), caller.clone(), typed.clone());
    let ending = field("_do").as_deref() == Some("end");
    let id = field("id").unwrap_or_default();
    let outcome = tokio::task::spawn_blocking(move || if ending { end(&st, lang, &c, &id) } else { set(&st, lang, &c, &t2) }).await;
    match outcome {
        Ok(Ok(done)) => page_with_status(&pl, StatusCode::OK, own_page(&state, &pl, &caller, &Typed::default(), None, Some(&done))),
        Ok(Err((status, r))) => page_with_status(&pl, status, own_page(&state, &pl, &caller, &typed, Some(&r), None)),
        Err(e) => problem_page(&pl, Some(&caller), StatusCode::INTERNAL_SERVER_ERROR, t(lang, "出錯", "Erro", "Error"), &e.to_string()),
    }
}

fn admin_page(state: &AppState, pl: &PageLang, caller: &Caller, refusal: Option<&Refusal>, done: Option<&str>) -> Markup {
    let lang = pl.lang;
    let dir = state.cases.directory();
    let title = t(lang, "委託一覽", "Substituições", "Delegations");
    let all: Vec<&Delegation> = dir.delegations().iter().collect();
    titled(
        pl,
        caller,
        title,
        html! {
            p.muted { (t(lang,
                "所有委託：人員名冊內的，以及同事自行設定的。結束後，代理人不能再代為處理；已作出的處理仍記錄為代理。",
                "Todas as substituições: as do diretório e as que cada pessoa registou. Depois de terminada, o substituto deixa de poder atuar; o que já fez continua registado como substituição.",
                "Every delegation: those of the directory file and those people set themselves. Once ended, the delegate can no longer act; what they did stays recorded as done under the delegation.")) }
            @if let Some(d) = done { p #delegation-done.ok role="status" { (d) } }
            @if let Some(r) = refusal { div #delegation-refused.error-summary role="alert" { p { strong { (r.text) } " " (super::code_link(r.code)) } } }
            @if all.is_empty() {
                p.muted { (t(lang, "沒有委託。", "Não há substituições.", "There are no delegations.")) }
            } @else {
                (table(state, lang, caller, &all, "/admin/delegations", true))
            }
        },
    )
}

pub async fn admin_show(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["admin"]) {
        return r;
    }
    page_with_status(&pl, StatusCode::OK, admin_page(&state, &pl, &caller, None, None))
}

pub async fn admin_posted(
    State(state): State<Arc<AppState>>,
    PageCaller(caller): PageCaller,
    pl: PageLang,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["admin"]) {
        return r;
    }
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if let Err(r) = check_csrf(&pl, &caller, field("csrf").as_deref()) {
        return r;
    }
    let lang = pl.lang;
    let (st, c, id) = (state.clone(), caller.clone(), field("id").unwrap_or_default());
    match tokio::task::spawn_blocking(move || end(&st, lang, &c, &id)).await {
        Ok(Ok(done)) => page_with_status(&pl, StatusCode::OK, admin_page(&state, &pl, &caller, None, Some(&done))),
        Ok(Err((status, r))) => page_with_status(&pl, status, admin_page(&state, &pl, &caller, Some(&r), None)),
        Err(_) => Redirect::to("/admin/delegations").into_response(),
    }
}
