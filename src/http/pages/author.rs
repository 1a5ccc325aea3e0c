//! The form author's page: upload one or more definition files (or paste one), have them checked
//! exactly as `carimbo check` and `POST /api/v1/definitions/check` do, together with everything
//! served, and see every problem as `FILE:POINTER: message [CODE]`. A clean upload is previewed
//! with the renderer the fill page uses. Nothing is applied here: publishing is the
//! administrator's upload.

use super::render::FormView;
use super::{check_csrf, layout, page, page_with_status, problem_page, require_role, t, PageCaller, PageLang};
use crate::http::api::{check_upload, DefinitionFile, DefinitionUpload};
use crate::http::auth::Caller;
use crate::http::AppState;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// At most this many files per upload (the request body limit bounds their size).
const MAX_FILES: usize = 50;

pub async fn show(State(_state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["author", "admin"]) {
        return r;
    }
    page_fn(&pl, &caller, html! {})
}

fn page_fn(pl: &PageLang, caller: &Caller, outcome: Markup) -> Response {
    page(pl, author_page(pl, caller, outcome, ""))
}

fn author_page(pl: &PageLang, caller: &Caller, outcome: Markup, pasted: &str) -> Markup {
    let lang = pl.lang;
    let title = t(lang, "檢查表格定義", "Verificar definições", "Check definitions");
    layout(
        pl,
        title,
        Some(caller),
        html! {
            h1 { (title) }
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
            }
            (outcome)
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
    if files.is_empty() {
        let msg = html! { p.error role="alert" { (t(lang, "請選擇最少一個檔案。", "Escolha pelo menos um ficheiro.", "Choose at least one file.")) } };
        return page_with_status(&pl, StatusCode::UNPROCESSABLE_ENTITY, author_page(&pl, &caller, msg, &pasted));
    }
    let upload = DefinitionUpload { files };
    let names: Vec<String> = upload.files.iter().map(|f| f.name.clone()).collect();
    let ids: BTreeSet<String> = upload.files.iter().filter_map(|f| serde_json::from_str::<Value>(&f.content).ok()).filter(|v| v.get("kind") == Some(&json!("form"))).filter_map(|v| v.get("id")?.as_str().map(str::to_string)).collect();
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
                        li { code { (p.file) ":" (p.pointer) } ": " (p.message) " " small.muted { "[" (p.code) "]" } }
                    }
                }
            }
        }
    };
    let status = if report.problems.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    page_with_status(&pl, status, author_page(&pl, &caller, outcome, &pasted))
}
