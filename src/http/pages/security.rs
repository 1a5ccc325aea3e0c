//! My security: whether a TOTP second factor (RFC 6238) is enrolled, and enrolling one. Steps
//! marked `second_factor` take a code from it, so without this page a person using only the web
//! pages could never act on them.
//!
//! Enrolment is two plain page posts with the CSRF field, as the API's two calls: `begin` makes
//! a new secret (shown as a QR code in a `data:` image, which the CSP allows, and as text to
//! type), `confirm` takes a first code from the app. A wrong code changes nothing: the same
//! secret stays pending and is shown again beside the message. A second factor already enrolled
//! keeps working until a new one is confirmed, and replacing it asks for a current code of it
//! (`current_code`, checked like any code: limited and spent), so a stolen password alone cannot
//! move the factor to another phone; after a lost phone, an administrator resets it.

use super::{PageCaller, PageLang, check_csrf, layout, page, page_with_status, problem_page, t};
use crate::accounts::TotpEnrolment;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::i18n::Lang;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// What the page shows besides the status: the enrolment waiting for its code, the code typed
/// and what was wrong with it.
#[derive(Default)]
struct Shown {
    pending: Option<TotpEnrolment>,
    code: String,
    code_error: Option<String>,
    /// The code of the enrolled factor typed to replace it, and what was wrong with it.
    current_code: String,
    current_code_error: Option<String>,
    done: bool,
}

pub async fn show(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, q: axum::extract::Query<DoneQuery>) -> Response {
    let pending = match pending(&state, &caller).await {
        Ok(p) => p,
        Err(e) => return failed(&pl, &caller, e),
    };
    page(&pl, security_page(&state, &pl, &caller, &Shown { pending, done: q.enrolled.is_some(), ..Shown::default() }))
}

#[derive(Deserialize)]
pub struct DoneQuery {
    enrolled: Option<String>,
}

#[derive(Deserialize)]
pub struct SecurityPost {
    csrf: Option<String>,
    #[serde(rename = "_do")]
    action: Option<String>,
    #[serde(default)]
    code: String,
    /// A code of the enrolled factor, to replace it.
    #[serde(default)]
    current_code: String,
}

/// `begin` starts (or starts over) an enrolment and shows it; `confirm` checks the first code.
/// Both answer with a redirect when they succeed, so a reload never makes a new secret.
pub async fn posted(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Form(f): Form<SecurityPost>) -> Response {
    if let Err(r) = check_csrf(&pl, &caller, f.csrf.as_deref()) {
        return r;
    }
    let lang = pl.lang;
    let accounts = state.accounts.clone();
    let person = caller.person.clone();
    match f.action.as_deref() {
        Some("begin") => {
            let current: String = f.current_code.chars().filter(|c| !c.is_whitespace()).collect();
            let current = (!current.is_empty()).then_some(current);
            match tokio::task::spawn_blocking(move || accounts.begin_totp(&person, current.as_deref(), Utc::now()).map(|_| ()).map_err(ApiError::from)).await {
                Ok(Ok(())) => Redirect::to("/me/security#enrol").into_response(),
                // A missing or wrong code of the enrolled factor is shown beside its field.
                Ok(Err(e)) if matches!(e.code, "CARIMBO-E0604" | "CARIMBO-E0608" | "CARIMBO-E0609" | "CARIMBO-E0610") => {
                    let status = if e.status == StatusCode::TOO_MANY_REQUESTS { e.status } else { StatusCode::UNPROCESSABLE_ENTITY };
                    let p = e.lang(lang).problem();
                    let shown = Shown { current_code: f.current_code, current_code_error: Some(format!("{} ({})", p.title, p.code)), ..Shown::default() };
                    page_with_status(&pl, status, security_page(&state, &pl, &caller, &shown))
                }
                Ok(Err(e)) => failed(&pl, &caller, e),
                Err(e) => failed(&pl, &caller, ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E0799", e.to_string())),
            }
        }
        _ => {
            // Authenticator apps show "123 456"; the code is the digits.
            let code: String = f.code.chars().filter(|c| !c.is_whitespace()).collect();
            let message = if code.is_empty() {
                t(
                    lang,
                    "請輸入驗證程式顯示的六位數字。",
                    "Escreva os seis algarismos que a aplicação mostra.",
                    "Type the six digits your authenticator app shows.",
                )
                .to_string()
            } else {
                match tokio::task::spawn_blocking(move || accounts.confirm_totp(&person, &code, Utc::now()).map_err(ApiError::from)).await {
                    Ok(Ok(())) => return Redirect::to("/me/security?enrolled=1").into_response(),
                    Ok(Err(e)) => {
                        let p = e.lang(lang).problem();
                        format!("{} ({})", p.title, p.code)
                    }
                    Err(e) => return failed(&pl, &caller, ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E0799", e.to_string())),
                }
            };
            let pending = match pending(&state, &caller).await {
                Ok(p) => p,
                Err(e) => return failed(&pl, &caller, e),
            };
            let shown = Shown { pending, code: f.code, code_error: Some(message), ..Shown::default() };
            page_with_status(&pl, StatusCode::UNPROCESSABLE_ENTITY, security_page(&state, &pl, &caller, &shown))
        }
    }
}

async fn pending(state: &Arc<AppState>, caller: &Caller) -> Result<Option<TotpEnrolment>, ApiError> {
    let (accounts, person) = (state.accounts.clone(), caller.person.clone());
    tokio::task::spawn_blocking(move || accounts.pending_totp(&person, Utc::now()).map_err(ApiError::from))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E0799", e.to_string()))?
}

fn failed(pl: &PageLang, caller: &Caller, e: ApiError) -> Response {
    let p = e.lang(pl.lang).problem();
    problem_page(pl, Some(caller), StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &p.title, &format!("{} ({})", p.detail, p.code))
}

fn security_page(state: &AppState, pl: &PageLang, caller: &Caller, shown: &Shown) -> Markup {
    let lang = pl.lang;
    let enrolled = state.accounts.get(&caller.person).is_some_and(|a| a.has_second_factor());
    let title = t(lang, "帳戶安全", "Segurança", "Security");
    layout(
        pl,
        title,
        Some(caller),
        html! {
            h1 { (title) }
            h2 { (t(lang, "雙重認證", "Segundo fator", "Second factor")) }
            @if shown.done {
                p #enrolled-now.ok role="status" { (t(lang, "雙重認證已設定。", "O segundo fator ficou configurado.", "Your second factor is set up.")) }
            }
            p #second-factor-status data-enrolled=(enrolled) {
                @if enrolled {
                    strong.ok { (t(lang, "已設定", "Configurado", "Enrolled")) } " — "
                    (t(lang, "要求雙重認證的步驟會接受你驗證程式上的六位數字。", "Os passos que exigem segundo fator aceitam o código da sua aplicação.", "Steps that ask for a second factor accept the code your authenticator app shows."))
                } @else {
                    strong { (t(lang, "未設定", "Não configurado", "Not enrolled")) } " — "
                    (t(lang, "你要先設定雙重認證，才可處理要求雙重認證的步驟。", "Sem segundo fator não pode atuar nos passos que o exigem.", "Until you enrol one, you cannot act on steps that ask for a second factor."))
                }
            }
            @match &shown.pending {
                Some(e) => (enrolment(lang, caller, e, shown)),
                None => form method="post" action="/me/security" {
                    input type="hidden" name="csrf" value=(caller.session.csrf);
                    @if enrolled {
                        p.muted { (t(lang, "換了手機？設定新的驗證程式後，舊的即停用。", "Mudou de telemóvel? Configure uma nova aplicação; a antiga deixa de valer quando a nova for confirmada.", "New phone? Set up a new authenticator app; the old one stops working once the new one is confirmed.")) }
                        @let invalid = shown.current_code_error.is_some();
                        div.field.has-error[invalid] {
                            label for="totp-current-code" { (t(lang, "現有驗證程式顯示的六位數字", "Os seis algarismos que a aplicação atual mostra", "The six digits your current app shows")) }
                            input #totp-current-code name="current_code" value=(shown.current_code) inputmode="numeric" autocomplete="one-time-code" maxlength="10"
                                aria-invalid=[invalid.then_some("true")] aria-describedby=[invalid.then_some("totp-current-code-error")];
                            @if let Some(m) = &shown.current_code_error { p #totp-current-code-error.field-error { (m) } }
                            p.muted { (t(lang, "手機已遺失？請聯絡系統管理員重設雙重認證。", "Perdeu o telemóvel? Peça ao administrador que reponha o segundo fator.", "Lost your phone? Ask an administrator to reset your second factor.")) }
                        }
                    }
                    button #totp-begin type="submit" name="_do" value="begin" {
                        @if enrolled { (t(lang, "設定新的驗證程式", "Configurar uma nova aplicação", "Set up a new authenticator app")) }
                        @else { (t(lang, "設定雙重認證", "Configurar o segundo fator", "Set up a second factor")) }
                    }
                },
            }
        },
    )
}

/// The enrolment waiting for its first code: QR code, the secret as text, and the code field.
fn enrolment(lang: Lang, caller: &Caller, e: &TotpEnrolment, shown: &Shown) -> Markup {
    let invalid = shown.code_error.is_some();
    html! {
        section #enrol.enrol aria-labelledby="enrol-title" {
            h3 #enrol-title { (t(lang, "以驗證程式掃描", "Leia com a aplicação de autenticação", "Scan with your authenticator app")) }
            p { (t(lang, "在手機的驗證程式（例如 FreeOTP、Google Authenticator）加入帳戶，並掃描這個二維碼：", "Na aplicação de autenticação do telemóvel (FreeOTP, Google Authenticator…), acrescente uma conta e leia este código QR:", "In the authenticator app on your phone (FreeOTP, Google Authenticator…), add an account and scan this QR code:")) }
            img #totp-qr.qr src=(format!("data:image/png;base64,{}", e.qr_png_base64)) width="200" height="200"
                alt=(t(lang, "雙重認證設定二維碼", "Código QR para configurar o segundo fator", "QR code to set up the second factor"));
            p {
                (t(lang, "不能掃描？請輸入這個密鑰：", "Não consegue ler o código? Escreva esta chave:", "Cannot scan it? Type this key instead:")) " "
                code #totp-secret data-secret=(e.secret) { (grouped(&e.secret)) }
            }
            details { summary { (t(lang, "設定網址", "Endereço de configuração", "Set-up address")) } p { code #totp-url { (e.url) } } }
            form method="post" action="/me/security" novalidate {
                input type="hidden" name="csrf" value=(caller.session.csrf);
                div.field.has-error[invalid] {
                    label for="totp-code" { (t(lang, "驗證程式顯示的六位數字", "Os seis algarismos que a aplicação mostra", "The six digits the app shows")) }
                    input #totp-code name="code" value=(shown.code) inputmode="numeric" autocomplete="one-time-code" maxlength="10"
                        aria-invalid=[invalid.then_some("true")] aria-describedby=[invalid.then_some("totp-code-error")];
                    @if let Some(m) = &shown.code_error { p #totp-code-error.field-error { (m) } }
                }
                button #totp-confirm type="submit" name="_do" value="confirm" { (t(lang, "確認", "Confirmar", "Confirm")) }
                " "
                button.secondary type="submit" name="_do" value="begin" { (t(lang, "重新開始", "Recomeçar com uma nova chave", "Start over with a new key")) }
            }
        }
    }
}

/// The secret in groups of four, as apps and people read it; apps ignore the spaces.
fn grouped(secret: &str) -> String {
    secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}
