//! The approver's inbox: the open steps offered to me, oldest first, with checkboxes, select-all
//! and one confirmation for the batch. `/static/inbox.js` signs each selected item's payload
//! with the key file the approver chose and sends them in one `POST /api/v1/acts/batch`; each
//! row then shows its own result. Steps that demand only a `simple` signature need no key: the
//! server seals them.
//!
//! When the approver's key is on the HSM (provider `hsm`) or at a remote signing service
//! (provider `remote`, its code the credential's at the service), the batch asks for no key file: the
//! confirmation lists every case with its summary, one TOTP code authorizes exactly those
//! signatures, and the server signs each on the HSM or at the service (`cases::acts::Acts::act_batch`).
//!
//! Without JavaScript the same form posts here, and the page acts on the selected steps that
//! need no key; steps that need a signature say so.

use super::fill::{SignsWith, level_label};
use super::summary::Summary;
use super::{PageCaller, PageLang, check_csrf, page, person_label, problem_page, t, titled, when};
use crate::http::AppState;
use crate::http::api::ActBody;
use crate::http::auth::Caller;
use crate::i18n::Lang;
use crate::workflow::{Action, Level};
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One open step as the inbox shows it.
struct Row {
    case: String,
    step: String,
    step_title: String,
    form_title: String,
    applicant: String,
    since: chrono::DateTime<chrono::Utc>,
    level: Level,
    second_factor: bool,
    actions: Vec<Action>,
    on_behalf_of: Option<String>,
    summary: Summary,
}

fn rows(state: &AppState, caller: &Caller, lang: Lang) -> Result<Vec<Row>, String> {
    let page = state.cases.inbox(&caller.person, None, 200).map_err(|e| e.to_string())?;
    let catalog = state.cases.catalog();
    let dir = state.cases.directory();
    let mut out = Vec::new();
    for e in page.entries {
        let Ok(case) = state.cases.case(&e.case_id) else { continue };
        let Ok(wf) = state.cases.workflow_of(&case) else { continue };
        let Some(def) = wf.step(&e.step) else { continue };
        out.push(Row {
            case: e.case_id.clone(),
            step: e.step.clone(),
            step_title: def.title.get(lang).to_string(),
            form_title: catalog.form(&e.form_id).map(|f| f.title.get(lang).to_string()).unwrap_or_else(|| e.form_id.clone()),
            applicant: person_label(lang, &dir, &case.subject),
            since: e.since,
            level: def.signature,
            second_factor: def.second_factor,
            actions: def.actions.clone(),
            on_behalf_of: e.on_behalf_of.as_ref().map(|p| person_label(lang, &dir, p)),
            summary: Summary::of(state, caller, lang, &case),
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
pub struct InboxQuery {
    all: Option<String>,
}

pub async fn show(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, q: axum::extract::Query<InboxQuery>) -> Response {
    let all = q.all.is_some();
    render(state, caller, pl, all, BTreeMap::new()).await
}

async fn render(state: Arc<AppState>, caller: Caller, pl: PageLang, all: bool, results: BTreeMap<String, Result<String, String>>) -> Response {
    let lang = pl.lang;
    let st = state.clone();
    let c = caller.clone();
    let found = tokio::task::spawn_blocking(move || rows(&st, &c, lang)).await.map_err(|e| e.to_string()).and_then(|r| r);
    let rows = match found {
        Ok(r) => r,
        Err(e) => return problem_page(&pl, Some(&caller), StatusCode::INTERNAL_SERVER_ERROR, t(lang, "出錯", "Erro", "Error"), &e),
    };
    let enrolled = state.accounts.get(&caller.person).is_some_and(|a| a.has_second_factor());
    // A remote signer's code is their credential's at the CSC service, which checks it; the
    // batch goes the HSM's way (`act_batch` sends it to the service).
    let with = SignsWith::of(&state, &caller.person);
    page(&pl, inbox_page(&pl, &caller, &rows, (all, enrolled || with == SignsWith::Remote, with), &results))
}

fn inbox_page(
    pl: &PageLang,
    caller: &Caller,
    rows: &[Row],
    (all, enrolled, with): (bool, bool, SignsWith),
    results: &BTreeMap<String, Result<String, String>>,
) -> Markup {
    let lang = pl.lang;
    let title = t(lang, "待辦", "Pendentes", "Inbox");
    let any_key = rows.iter().any(|r| r.level > Level::Simple);
    let any_totp = rows.iter().any(|r| r.second_factor);
    let on_hsm = with != SignsWith::KeyFile;
    titled(
        pl,
        caller,
        title,
        html! {
            @if !results.is_empty() {
                ul.results {
                    @for (case, r) in results {
                        @match r {
                            Ok(s) => li.ok { code { (case) } ": " (s) }
                            Err(e) => li.error { code { (case) } ": " (e) }
                        }
                    }
                }
            }
            @if rows.is_empty() {
                p.muted { (t(lang, "沒有待辦事項。", "Não há nada pendente.", "Nothing is waiting for you.")) }
            } @else {
                form #batch method="post" action="/inbox" data-provider=(if on_hsm { "hsm" } else { "browser-key" })
                    data-msg-nocode=(t(lang, "請輸入雙重認證碼：它授權所列的每一個簽名。", "Introduza o código do segundo fator: autoriza cada assinatura da lista.", "Enter your second-factor code: it authorizes every signature listed."))
                    data-msg-hsm=(t(lang, "以HSM中的私鑰簽署", "assinado com a sua chave no HSM", "signed with your key on the HSM"))
                    data-msg-confirm=(t(lang, "確認以下操作：", "Confirme:", "Please confirm:"))
                    data-msg-items=(t(lang, "宗個案", "processo(s)", "case(s)"))
                    data-msg-none=(t(lang, "請先選擇個案。", "Selecione primeiro os processos.", "Select some cases first."))
                    data-msg-nokey=(t(lang, "請先選擇你的私鑰檔案。", "Escolha primeiro o ficheiro da sua chave.", "Choose your key file first."))
                    data-msg-working=(t(lang, "正在簽署及提交……", "A assinar e enviar…", "Signing and sending…"))
                    data-msg-ok=(t(lang, "完成", "feito", "done"))
                    data-msg-done=(t(lang, "宗成功，", "com êxito,", "succeeded,"))
                    data-msg-failed=(t(lang, "宗失敗", "falharam", "failed"))
                    data-msg-action-approve=(t(lang, "批准", "Aprovar", "Approve"))
                    data-msg-action-reject=(t(lang, "不批准", "Indeferir", "Reject"))
                    data-msg-action-return=(t(lang, "退回修改", "Devolver para correção", "Return for correction")) {
                    input type="hidden" name="csrf" value=(caller.session.csrf);
                    table.inbox {
                        thead { tr {
                            th { label.inline { input #select-all type="checkbox" checked[all] aria-label=(t(lang, "全選", "Selecionar tudo", "Select all")); } }
                            th { (t(lang, "表格", "Formulário", "Form")) }
                            th { (t(lang, "申請人", "Requerente", "Applicant")) }
                            th { (t(lang, "摘要", "Resumo", "Summary")) }
                            th { (t(lang, "步驟", "Passo", "Step")) }
                            th { (t(lang, "等待自", "Desde", "Since")) }
                            th { (t(lang, "結果", "Resultado", "Result")) }
                        } }
                        tbody {
                            @for r in rows {
                                tr.item data-case=(r.case) data-step=(r.step) data-level=(r.level.as_str()) data-second-factor=(r.second_factor)
                                    data-title=(format!("{} · {}", r.form_title, r.applicant)) data-summary=(r.summary.line())
                                    data-actions=(r.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(" ")) {
                                    td { input.pick type="checkbox" name="pick" value=(format!("{}|{}", r.case, r.step)) checked[all] aria-label=(format!("{} {}", r.form_title, r.case)); }
                                    td { a href=(format!("/cases/{}", r.case)) { (r.form_title) } br; small.muted { code { (r.case) } } }
                                    td { (r.applicant) }
                                    td.summary-cell { (r.summary.render()) }
                                    td { (r.step_title) br; small.muted { (level_label(lang, r.level)) }
                                        @if let Some(p) = &r.on_behalf_of { br; small.muted { (t(lang, "代", "por", "for")) " " (p) } } }
                                    td { (when(lang, &r.since)) }
                                    td.result aria-live="polite" {}
                                }
                            }
                        }
                    }
                    p { a href="/inbox?all=1" { (t(lang, "全選", "Selecionar tudo", "Select all")) } }
                    fieldset.batch {
                        legend { (t(lang, "對所選個案", "Nos processos selecionados", "On the selected cases")) }
                        label { (t(lang, "操作", "Ação", "Action"))
                            select #action name="action" {
                                option value="approve" { (t(lang, "批准", "Aprovar", "Approve")) }
                                option value="reject" { (t(lang, "不批准", "Indeferir", "Reject")) }
                                option value="return" { (t(lang, "退回修改", "Devolver para correção", "Return for correction")) }
                            }
                        }
                        label { (t(lang, "備註（可選）", "Observações (opcional)", "Comment (optional)")) textarea #comment name="comment" rows="2" {} }
                        @if on_hsm {
                            (super::fill::device_code(lang, with, true))
                        } @else if any_key {
                            (super::fill::key_picker(lang, &caller.person))
                        }
                        @if any_totp && !on_hsm {
                            label { (t(lang, "雙重認證碼", "Código do segundo fator", "Second-factor code")) input #totp name="totp" inputmode="numeric" autocomplete="one-time-code"; }
                            @if !enrolled {
                                p #no-second-factor.note {
                                    (t(lang, "部分步驟要求雙重認證，但你尚未設定：", "Alguns passos exigem segundo fator, que ainda não configurou: ", "Some steps ask for a second factor, and you have none yet: "))
                                    a href="/me/security" { (t(lang, "設定雙重認證", "configurar o segundo fator", "set one up")) }
                                }
                            }
                        }
                        button #batch-go type="submit" { (t(lang, "處理所選個案……", "Tratar os selecionados…", "Act on the selected…")) }
                    }
                    div #confirm.confirm hidden role="dialog" aria-labelledby="confirm-text" {
                        p #confirm-text {}
                        ol #confirm-list {}
                        button #confirm-yes type="button" { (t(lang, "確認", "Confirmar", "Confirm")) }
                        " "
                        button #confirm-no.secondary type="button" { (t(lang, "取消", "Cancelar", "Cancel")) }
                    }
                    div #batch-result aria-live="polite" {}
                }
                script src="/static/sign.js" {}
                script src="/static/inbox.js" {}
            }
        },
    )
}

/// The form posted without JavaScript: act on the selected steps that need no key.
pub async fn posted(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if let Err(r) = check_csrf(&pl, &caller, field("csrf").as_deref()) {
        return r;
    }
    let lang = pl.lang;
    let action: Action = field("action").and_then(|a| a.parse().ok()).unwrap_or(Action::Approve);
    let comment = field("comment").filter(|c| !c.trim().is_empty());
    let picks: Vec<(String, String)> =
        pairs.iter().filter(|(k, _)| k == "pick").filter_map(|(_, v)| v.split_once('|').map(|(c, s)| (c.to_string(), s.to_string()))).collect();
    let st = state.clone();
    let c = caller.clone();
    let results = tokio::task::spawn_blocking(move || {
        let mut out = BTreeMap::new();
        for (case, step) in picks {
            let outcome = (|| {
                let (found, _, wf) = st.visible_case(&c, &case).map_err(|e| e.lang(lang).problem().title)?;
                let def = wf.step(&step).ok_or_else(|| t(lang, "找不到此步驟。", "Passo desconhecido.", "No such step.").to_string())?;
                if def.signature > Level::Simple {
                    return Err(t(
                        lang,
                        "此步驟須以私鑰簽署：請啟用 JavaScript。",
                        "Este passo exige assinatura com a sua chave: ative o JavaScript.",
                        "This step needs a signature with your key: enable JavaScript.",
                    )
                    .to_string());
                }
                let action = if def.actions.contains(&action) {
                    action
                } else if action == Action::Approve && def.actions.contains(&Action::Sign) {
                    Action::Sign
                } else {
                    action
                };
                let body =
                    ActBody { step: step.clone(), action, comment: comment.clone(), signed: None, totp: None, idempotency_key: None, authorization: None };
                st.act_on(&c, &found.id, &body).map_err(|e| e.lang(lang).problem().title)?;
                Ok(t(lang, "完成", "feito", "done").to_string())
            })();
            out.insert(case, outcome);
        }
        out
    })
    .await
    .unwrap_or_default();
    render(state, caller, pl, false, results).await
}
