//! The form author's page: upload one or more definition files (or paste one), have them checked
//! exactly as `carimbo check` and `POST /api/v1/definitions/check` do, together with everything
//! served, and see every problem as `FILE:POINTER: message [CODE]`. A clean upload is previewed
//! with the renderer the fill page uses. An administrator can publish from here too ("Check and
//! publish"): the same `api::publish_upload` as `POST /api/v1/admin/definitions`, so the page and
//! the API publish by one rule. The page shows the history of publications (who, when, which
//! version and content hash, what changed).

use super::render::FormView;
use super::{PageCaller, PageLang, check_csrf, page, page_with_status, problem_page, require_role, t, titled};
use crate::http::AppState;
use crate::http::api::{DefinitionFile, DefinitionUpload, check_upload, publish_upload};
use crate::http::auth::Caller;
use crate::i18n::Lang;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// At most this many files per upload (the request body limit bounds their size).
const MAX_FILES: usize = 50;

pub async fn show(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["author", "admin"]) {
        return r;
    }
    let history = history(&state, &pl).await;
    page(&pl, author_page(&pl, &caller, html! {}, "", history))
}

/// The publications, newest first (at most 50), as a table.
async fn history(state: &Arc<AppState>, pl: &PageLang) -> Markup {
    let lang = pl.lang;
    let st = state.clone();
    let publications = match tokio::task::spawn_blocking(move || st.cases.publications()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return html! { p.error { (e.to_string()) } },
        Err(e) => return html! { p.error { (e.to_string()) } },
    };
    html! {
        section #publications {
            h2 { (t(lang, "發佈紀錄", "Histórico de publicações", "Publication history")) }
            @if publications.is_empty() {
                p.muted { (t(lang, "尚未經系統發佈任何定義：現用的是檔案中的定義。", "Ainda nada foi publicado: servem-se as definições dos ficheiros.", "Nothing has been published yet: the definitions in the files are served.")) }
            } @else {
                table {
                    thead { tr {
                        th { "#" } th { (t(lang, "時間（澳門）", "Quando (Macau)", "When (Macau time)")) } th { (t(lang, "發佈人", "Por", "By")) }
                        th { (t(lang, "定義", "Definição", "Definition")) } th { (t(lang, "版本", "Versão", "Version")) } th { "SHA-256" }
                        th { (t(lang, "變更", "Alterações", "What changed")) }
                    } }
                    tbody {
                        @for p in publications.iter().rev().take(50) {
                            @for d in &p.definitions {
                                tr {
                                    td { (p.seq) } td { (super::when(lang, &p.at)) } td { (super::shown(&p.by)) }
                                    td { (d.kind) " " code { (d.id) } }
                                    td { @if let Some(prev) = &d.previous_version { (prev) " → " } (d.version) }
                                    td { code title=(d.hash) { (d.hash.get(..12).unwrap_or(&d.hash)) "…" } }
                                    td {
                                        @if d.previous_version.is_none() { (t(lang, "新定義", "Nova definição", "New definition")) }
                                        @else {
                                            (d.changes.len()) @if d.changes_truncated { "+" } " " (t(lang, "處", "lugar(es)", "place(s)")) ": "
                                            code { (d.changes.iter().take(5).cloned().collect::<Vec<_>>().join(", ")) } @if d.changes.len() > 5 { " …" }
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

fn author_page(pl: &PageLang, caller: &Caller, outcome: Markup, pasted: &str, history: Markup) -> Markup {
    let lang = pl.lang;
    let title = t(lang, "檢查表格定義", "Verificar definições", "Check definitions");
    titled(
        pl,
        caller,
        title,
        html! {
            p.muted { (t(lang,
                "上載一個或多個定義檔（JSON），系統會按 carimbo check 的規則連同現有定義一併檢查，並列出每個問題的檔案及位置。這裡不會發佈任何內容。",
                "Envie um ou mais ficheiros de definição (JSON): são verificados como pelo carimbo check, com as definições em uso, e cada problema é indicado com o ficheiro e a posição. Nada é publicado aqui.",
                "Upload one or more definition files (JSON): they are checked as carimbo check does, together with the definitions in use, and every problem is listed with its file and position. Nothing is published here.")) }
            form #author method="post" action="/author" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(caller.session.csrf);
                label { (t(lang, "定義檔", "Ficheiros de definição", "Definition files"))
                    input #files type="file" name="files" multiple accept=".json,application/json"; }
                details {
                    summary { (t(lang, "或貼上一個定義", "Ou cole uma definição", "Or paste one definition")) }
                    label { (t(lang, "檔案名稱", "Nome do ficheiro", "File name")) input name="pasted_name" placeholder="my-form.json"; }
                    label { "JSON" textarea.json name="pasted" rows="10" { (pasted) } }
                }
                button type="submit" { (t(lang, "檢查", "Verificar", "Check")) }
                @if caller.has("admin") {
                    " "
                    button type="submit" name="publish" value="1" { (t(lang, "檢查並發佈", "Verificar e publicar", "Check and publish")) }
                    p.muted { (t(lang,
                        "發佈：沒有問題時，定義會儲存並記錄（誰、何時、內容雜湊值、變更），由此起新個案使用新版本；進行中的個案保留原版本。版本號必須高於現用版本。",
                        "Publicar: sem problemas, as definições são guardadas e registadas (quem, quando, hash do conteúdo, alterações) e os novos processos usam a nova versão; os processos em curso mantêm a sua. A versão tem de ser superior à servida.",
                        "Publish: with no problem, the definitions are stored and recorded (who, when, content hash, what changed) and new cases use the new version; open cases keep theirs. The version must be higher than the one served.")) }
                }
            }
            (outcome)
            (history)
        },
    )
}

pub async fn posted(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, mut multipart: Multipart) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["author", "admin"]) {
        return r;
    }
    let lang = pl.lang;
    let bad = |detail: String| problem_page(&pl, Some(&caller), StatusCode::BAD_REQUEST, t(lang, "上載失敗", "Envio falhado", "Upload failed"), &detail);
    let mut csrf = None;
    let mut publish = false;
    let mut files: Vec<DefinitionFile> = Vec::new();
    let (mut pasted, mut pasted_name) = (String::new(), String::new());
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return bad(e.body_text()),
        };
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let text = match field.text().await {
            Ok(t) => t,
            Err(e) => return bad(e.body_text()),
        };
        match name.as_str() {
            "csrf" => csrf = Some(text),
            "publish" => publish = text == "1",
            "files" => {
                // A file input with nothing chosen still sends one empty part.
                if let Some(file_name) = file_name.filter(|n| !n.is_empty()) {
                    let plain = file_name.rsplit(['/', '\\']).next().unwrap_or_default().to_string();
                    files.push(DefinitionFile { name: plain, content: text });
                }
            }
            "pasted" => pasted = text,
            "pasted_name" => pasted_name = text.trim().to_string(),
            _ => {}
        }
        if files.len() > MAX_FILES {
            return bad(format!("at most {MAX_FILES} files per check"));
        }
    }
    if let Err(r) = check_csrf(&pl, &caller, csrf.as_deref()) {
        return r;
    }
    if !pasted.trim().is_empty() {
        let name = if pasted_name.is_empty() { "pasted.json".to_string() } else { pasted_name };
        files.push(DefinitionFile { name, content: pasted.clone() });
    }
    if publish && !caller.has("admin") {
        return problem_page(
            &pl,
            Some(&caller),
            StatusCode::FORBIDDEN,
            t(lang, "不可發佈", "Sem permissão para publicar", "Not allowed to publish"),
            t(lang, "只有系統管理員可以發佈定義。", "Só um administrador publica definições.", "Only an administrator publishes definitions."),
        );
    }
    if files.is_empty() {
        let msg = html! { p.error role="alert" { (t(lang, "請選擇最少一個檔案。", "Escolha pelo menos um ficheiro.", "Choose at least one file.")) } };
        let history = history(&state, &pl).await;
        return page_with_status(&pl, StatusCode::UNPROCESSABLE_ENTITY, author_page(&pl, &caller, msg, &pasted, history));
    }
    if publish {
        return published(&state, &pl, &caller, DefinitionUpload { files }, &pasted).await;
    }
    let upload = DefinitionUpload { files };
    let names: Vec<String> = upload.files.iter().map(|f| f.name.clone()).collect();
    let ids: BTreeSet<String> = upload
        .files
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(&f.content).ok())
        .filter(|v| v.get("kind") == Some(&json!("form")))
        .filter_map(|v| v.get("id")?.as_str().map(str::to_string))
        .collect();
    let st = state.clone();
    let report = match tokio::task::spawn_blocking(move || check_upload(&st, &upload)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return bad(e.detail),
        Err(e) => return bad(e.to_string()),
    };
    let outcome = if report.problems.is_empty() {
        html! {
            section #outcome.ok-box {
                h2.ok { (t(lang, "沒有問題", "Sem problemas", "No problems")) }
                p { (t(lang, "已檢查：", "Verificado: ", "Checked: ")) (names.join(", ")) }
                @for id in &ids {
                    @if let Some(form) = report.catalog.form(id) {
                        section.preview {
                            h2 { (t(lang, "預覽：", "Pré-visualização: ", "Preview: ")) (form.title.get(lang)) }
                            p.muted { (form.legal_basis.get(lang)) }
                            fieldset.preview-form disabled {
                                (FormView { form, lang, data: &json!({}), computed: &BTreeMap::new(), errors: &[], extra_rows: &BTreeSet::new(), editable: true, directory: None, applicant: None }.render())
                            }
                        }
                    }
                }
            }
        }
    } else {
        html! {
            section #outcome {
                h2.error { (report.problems.len()) " " (t(lang, "個問題", "problema(s)", "problem(s)")) }
                p.muted { (t(lang, "已檢查：", "Verificado: ", "Checked: ")) (names.join(", ")) }
                ol #problems.problems {
                    @for p in &report.problems {
                        li {
                            @if let Some(text) = crate::forms::problem_text::explain(p.code.0) {
                                strong { (text.get(lang)) } " "
                            }
                            code { (p.file) ":" (p.pointer) } ": "
                            @if lang != Lang::En { span.muted { (t(lang, "詳情：", "Pormenor: ", "")) } }
                            span.detail { (p.detail_in(lang)) }
                            " " small.muted { a href={ "/docs/errors#" (p.code.0.to_ascii_lowercase()) } { "[" (p.code) "]" } }
                        }
                    }
                }
            }
        }
    };
    let status = if report.problems.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let history = history(&state, &pl).await;
    page_with_status(&pl, status, author_page(&pl, &caller, outcome, &pasted, history))
}

/// An administrator's "Check and publish": published as the API publishes, or every problem
/// listed and nothing changed.
async fn published(state: &Arc<AppState>, pl: &PageLang, caller: &Caller, upload: DefinitionUpload, pasted: &str) -> Response {
    let lang = pl.lang;
    let names: Vec<String> = upload.files.iter().map(|f| f.name.clone()).collect();
    let (st, by) = (state.clone(), caller.person.clone());
    let answer = match tokio::task::spawn_blocking(move || publish_upload(&st, &by, &upload, true, lang)).await {
        Ok(a) => a,
        Err(e) => {
            return problem_page(
                pl,
                Some(caller),
                StatusCode::INTERNAL_SERVER_ERROR,
                t(lang, "發佈失敗", "Publicação falhada", "Publishing failed"),
                &e.to_string(),
            );
        }
    };
    let (status, outcome) = match answer {
        Ok(summary) if summary["applied"] == json!(true) => {
            let seq = summary["publication"]["seq"].as_u64().unwrap_or(0);
            (StatusCode::OK, html! { section #outcome.ok-box { h2.ok { (t(lang, "已發佈", "Publicado", "Published")) " #" (seq) } p { (names.join(", ")) } } })
        }
        Ok(_) => (
            StatusCode::OK,
            html! { section #outcome.ok-box { h2.ok { (t(lang, "沒有變更", "Nada mudou", "Nothing changed")) } p { (t(lang, "上載的內容與現用版本相同，沒有發佈。", "O conteúdo é igual ao servido: nada foi publicado.", "The content is the same as the one served: nothing was published.")) } } },
        ),
        Err(e) => {
            let problems: Vec<String> = e
                .report
                .as_ref()
                .and_then(|r| r["problems"].as_array())
                .map(|a| a.iter().filter_map(|p| p["localized"]["line"].as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let status = e.status;
            (
                status,
                html! {
                    section #outcome {
                        h2.error { (t(lang, "沒有發佈：", "Nada publicado: ", "Nothing was published: ")) (e.detail) }
                        ol #problems.problems { @for line in &problems { li { (line) } } }
                    }
                },
            )
        }
    };
    let history = history(state, pl).await;
    page_with_status(pl, status, author_page(pl, caller, outcome, pasted, history))
}
