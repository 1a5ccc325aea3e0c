//! My notifications: which kinds of mail I get (new tasks, reminders, escalations, returns,
//! decisions on my cases), immediately or collected into one daily digest at a time I choose
//! (Macau time, on working days), and quiet hours in which nothing is sent. The same rules as
//! `POST /api/v1/me/notifications` (`notify::book::PreferencesBody`): a wrong value is named
//! beside the form and nothing is kept.

use super::{PageCaller, PageLang, check_csrf, page, page_with_status, t, titled};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::i18n::Lang;
use crate::notify::book::PreferencesBody;
use crate::notify::{Delivery, Preferences, Topic};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

pub async fn show(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, q: Query<SavedQuery>) -> Response {
    let prefs = state.preferences.get(&caller.person);
    page(&pl, notifications_page(&state, &pl, &caller, &prefs, None, q.saved.is_some()))
}

fn topic_label(lang: Lang, topic: Topic) -> &'static str {
    match topic {
        Topic::Task => {
            t(lang, "新的待辦事項（包括小組及代理）", "Novas tarefas (também do grupo e em substituição)", "New tasks (also for my groups and delegations)")
        }
        Topic::Reminder => t(lang, "期限將至的提醒", "Lembretes antes do prazo", "Reminders before a deadline"),
        Topic::Escalation => t(lang, "逾期轉交給我的步驟", "Passos escalados para mim", "Steps escalated to me"),
        Topic::Returned => t(lang, "我的個案被退回修改", "Processos meus devolvidos para correção", "My cases returned for correction"),
        Topic::Decided => {
            t(lang, "我的個案獲批准、不批准或被撤回", "Processos meus deferidos, indeferidos ou retirados", "My cases approved, rejected or withdrawn")
        }
        Topic::Delegation => t(lang, "與我有關的代理開始或結束", "Substituições minhas que começam ou terminam", "Delegations to or from me set or ended"),
    }
}

fn notifications_page(state: &AppState, pl: &PageLang, caller: &Caller, prefs: &Preferences, error: Option<&str>, saved: bool) -> Markup {
    let lang = pl.lang;
    let dir = state.cases.directory();
    let address = dir.person(&caller.person).and_then(|p| p.email.clone());
    let hm = |t: chrono::NaiveTime| t.format("%H:%M").to_string();
    titled(
        pl,
        caller,
        t(lang, "通知", "Notificações", "Notifications"),
        html! {
            @if let Some(e) = error { p.error role="alert" #problem { (crate::http::error::message("CARIMBO-E1420").get(lang)) br; span lang="en" { (e) } } }
            @if saved { p.ok role="status" { (t(lang, "已儲存。", "Guardado.", "Saved.")) } }
            @if state.mail.is_none() {
                p.muted #mail-off { (t(lang, "此伺服器沒有開啟電郵通知；你的選擇會保留，開啟後生效。", "Este servidor não envia notificações por correio eletrónico; as suas escolhas ficam guardadas para quando enviar.", "This server sends no e-mail notifications; your choices are kept for when it does.")) }
            }
            p #address {
                (t(lang, "通知寄往", "As notificações vão para", "Notifications go to")) ": "
                @match &address {
                    Some(a) => code { (a) },
                    None => strong.error { (t(lang, "人員名錄沒有你的電郵地址，請聯絡管理員。", "o diretório não tem o seu endereço: contacte um administrador.", "the directory has no address for you: ask an administrator.")) },
                }
            }
            form method="post" action="/me/notifications" {
                input type="hidden" name="csrf" value=(caller.session.csrf);
                fieldset {
                    legend { (t(lang, "我想收到", "Quero receber", "I want to get")) }
                    @for topic in Topic::ALL {
                        label { input type="checkbox" name="topic" value=(topic.as_str()) checked[prefs.topics.contains(&topic)]; " " (topic_label(lang, topic)) } br;
                    }
                }
                fieldset {
                    legend { (t(lang, "何時寄出", "Quando", "When")) }
                    label { input type="radio" name="delivery" value="immediate" checked[prefs.delivery == Delivery::Immediate]; " " (t(lang, "即時", "De imediato", "Immediately")) } br;
                    label { input type="radio" name="delivery" value="digest" checked[prefs.delivery == Delivery::Digest]; " " (t(lang, "每個工作日一封摘要，時間：", "Um resumo por dia útil, às", "One digest each working day at")) }
                    " " input type="time" name="digest_at" value=(hm(prefs.digest_at)) aria-label=(t(lang, "摘要時間（澳門時間）", "Hora do resumo (hora de Macau)", "Digest time (Macau time)"));
                    " " span.muted { (t(lang, "（澳門時間；公眾假期不寄）", "(hora de Macau; não em feriados)", "(Macau time; not on public holidays)")) }
                }
                fieldset {
                    legend { (t(lang, "免打擾時段（澳門時間，可留空）", "Horas de silêncio (hora de Macau, opcional)", "Quiet hours (Macau time, optional)")) }
                    label { (t(lang, "由", "Das", "From")) " " input type="time" name="quiet_from" value=(prefs.quiet.map(|q| hm(q.from)).unwrap_or_default()); }
                    " "
                    label { (t(lang, "至", "às", "to")) " " input type="time" name="quiet_to" value=(prefs.quiet.map(|q| hm(q.to)).unwrap_or_default()); }
                }
                button type="submit" { (t(lang, "儲存", "Guardar", "Save")) }
            }
        },
    )
}

pub async fn posted(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Form(fields): Form<Vec<(String, String)>>) -> Response {
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if let Err(r) = check_csrf(&pl, &caller, get("csrf").as_deref()) {
        return r;
    }
    let body = PreferencesBody {
        topics: fields.iter().filter(|(k, _)| k == "topic").map(|(_, v)| v.clone()).take(20).collect(),
        delivery: get("delivery").unwrap_or_else(|| "immediate".into()),
        digest_at: get("digest_at"),
        quiet_from: get("quiet_from"),
        quiet_to: get("quiet_to"),
    };
    let prefs = match body.parse() {
        Ok(p) => p,
        Err(e) => {
            let shown = state.preferences.get(&caller.person);
            return page_with_status(&pl, StatusCode::UNPROCESSABLE_ENTITY, notifications_page(&state, &pl, &caller, &shown, Some(&e.to_string()), false));
        }
    };
    let (st, person) = (state.clone(), caller.person.clone());
    match tokio::task::spawn_blocking(move || st.preferences.set(&person, prefs)).await {
        Ok(Ok(())) => Redirect::to("/me/notifications?saved=1").into_response(),
        Ok(Err(e)) => super::problem_page(
            &pl,
            Some(&caller),
            StatusCode::INTERNAL_SERVER_ERROR,
            t(pl.lang, "無法儲存", "Não foi possível guardar", "Could not save"),
            &e.to_string(),
        ),
        Err(e) => super::problem_page(
            &pl,
            Some(&caller),
            StatusCode::INTERNAL_SERVER_ERROR,
            t(pl.lang, "無法儲存", "Não foi possível guardar", "Could not save"),
            &e.to_string(),
        ),
    }
}
