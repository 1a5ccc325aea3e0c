//! The auditor's check of an evidence bundle from the page: the bundle is uploaded (at most
//! `MAX_UPLOAD_BYTES`), verified in the server by the same `evidence::verify` that
//! `carimbo verify` runs offline, and the report is drawn in the reader's language. Nothing is
//! stored: the bytes live for the request only. Beside the checks, the page shows what was
//! signed: the data of each version the applicant signed, as the bundled form labels it, with
//! each restricted field open only for a reader whose roles the form names (`visibility`), and
//! only for a bundle that verified.

use super::render::{pointer_label, value_label};
use super::{PageCaller, PageLang, check_csrf, code_link, page_with_status, person_label, require_role, status_label, t, titled};
use crate::catalog::{Catalog, SourceFile};
use crate::evidence::{EvidenceBundle, Finding, VerificationReport};
use crate::forms::commitment::{self, Disclosures};
use crate::forms::{FormDefinition, pointer_push};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::i18n::Lang;
use crate::visibility::Sight;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, post};
use maud::{Markup, html};
use serde_json::Value;
use std::sync::Arc;

/// A bundle of a long case with every certificate and CRL is a few hundred KiB; 8 MiB leaves
/// room and still keeps one upload from filling the server's memory.
pub const MAX_UPLOAD_BYTES: usize = 8 * 1024 * 1024;

/// The POST route with its own body limit (the pages' default is 512 KiB), and a little more
/// for the multipart framing and the CSRF field, so the handler can say "too large" itself.
pub fn upload_route() -> MethodRouter<Arc<AppState>> {
    post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES + 64 * 1024))
}

pub async fn show(PageCaller(caller): PageCaller, pl: PageLang) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["auditor"]) {
        return r;
    }
    page_with_status(&pl, StatusCode::OK, verify_page(&pl, &caller, html! {}))
}

/// A refusal of the upload itself (nothing was verified), with its code.
fn refused(lang: Lang, code: &str, text: String) -> Markup {
    let _ = lang;
    html! { div #verify-refused.error-summary role="alert" { p { strong { (text) } " " (code_link(code)) } } }
}

/// Reads the upload: the CSRF field and the bundle's bytes, stopping at the size limit.
async fn read_upload(lang: Lang, multipart: &mut Multipart) -> Result<(Option<String>, Vec<u8>), (StatusCode, Markup)> {
    let too_large = || {
        let text = match lang {
            Lang::Zh => format!("檔案超過 {} MiB，未有核實。", MAX_UPLOAD_BYTES >> 20),
            Lang::Pt => format!("O ficheiro tem mais de {} MiB; não foi verificado.", MAX_UPLOAD_BYTES >> 20),
            Lang::En => format!("The file is larger than {} MiB; nothing was verified.", MAX_UPLOAD_BYTES >> 20),
        };
        (StatusCode::PAYLOAD_TOO_LARGE, refused(lang, "CARIMBO-E0726", text))
    };
    let unreadable = || {
        (
            StatusCode::BAD_REQUEST,
            refused(
                lang,
                "CARIMBO-E0727",
                t(
                    lang,
                    "上載內容無法讀取，請重新選擇檔案。",
                    "O envio não pôde ser lido; escolha o ficheiro de novo.",
                    "The upload could not be read; choose the file again.",
                )
                .into(),
            ),
        )
    };
    let (mut csrf, mut bytes) = (None, Vec::new());
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(_) => return Err(unreadable()),
        };
        match field.name().unwrap_or_default() {
            "csrf" => csrf = field.text().await.ok(),
            "bundle" => loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if bytes.len() + chunk.len() > MAX_UPLOAD_BYTES {
                            return Err(too_large());
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
                    Err(_) => return Err(unreadable()),
                }
            },
            _ => {}
        }
    }
    Ok((csrf, bytes))
}

pub async fn upload(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, mut multipart: Multipart) -> Response {
    if let Err(r) = require_role(&pl, &caller, &["auditor"]) {
        return r;
    }
    let lang = pl.lang;
    let (csrf, bytes) = match read_upload(lang, &mut multipart).await {
        Ok(u) => u,
        Err((status, m)) => return page_with_status(&pl, status, verify_page(&pl, &caller, m)),
    };
    if let Err(r) = check_csrf(&pl, &caller, csrf.as_deref()) {
        return r;
    }
    if bytes.is_empty() {
        let m = refused(
            lang,
            "CARIMBO-E0727",
            t(
                lang,
                "請選擇證據包檔案（evidence-….json）。",
                "Escolha o ficheiro do pacote de prova (evidence-….json).",
                "Choose the evidence bundle file (evidence-….json).",
            )
            .into(),
        );
        return page_with_status(&pl, StatusCode::UNPROCESSABLE_ENTITY, verify_page(&pl, &caller, m));
    }
    let (st, c) = (state.clone(), caller.clone());
    let drawn = tokio::task::spawn_blocking(move || {
        let report = crate::evidence::verify(&bytes, chrono::Utc::now());
        let signed = if report.passed { what_was_signed(&bytes, &c) } else { None };
        report_view(&st, lang, &report, signed.as_ref())
    })
    .await;
    match drawn {
        Ok(m) => page_with_status(&pl, StatusCode::OK, verify_page(&pl, &caller, m)),
        Err(e) => page_with_status(&pl, StatusCode::INTERNAL_SERVER_ERROR, verify_page(&pl, &caller, refused(lang, "CARIMBO-E0799", e.to_string()))),
    }
}

fn verify_page(pl: &PageLang, caller: &Caller, result: Markup) -> Markup {
    let lang = pl.lang;
    let title = t(lang, "核實證據包", "Verificar um pacote de prova", "Verify an evidence bundle");
    titled(
        pl,
        caller,
        title,
        html! {
            p.muted { (t(lang,
                "上載個案的證據包：伺服器以與離線工具 carimbo verify 相同的檢查核實它，並顯示結果；檔案不會被保存。",
                "Envie o pacote de prova de um processo: o servidor verifica-o com as mesmas verificações da ferramenta offline carimbo verify e mostra o resultado; o ficheiro não é guardado.",
                "Upload a case's evidence bundle: the server checks it exactly as the offline carimbo verify does and shows the report; the file is not kept.")) }
            form #verify-form method="post" action="/audit/verify" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(caller.session.csrf);
                label { (t(lang, "證據包檔案", "Ficheiro do pacote de prova", "Evidence bundle file"))
                    input #bundle-file type="file" name="bundle" accept=".json,application/json" required; }
                small.muted { (match lang {
                    Lang::Zh => format!("最大 {} MiB。", MAX_UPLOAD_BYTES >> 20),
                    Lang::Pt => format!("No máximo {} MiB.", MAX_UPLOAD_BYTES >> 20),
                    Lang::En => format!("At most {} MiB.", MAX_UPLOAD_BYTES >> 20),
                }) }
                p.actions { button #verify-go type="submit" { (t(lang, "核實", "Verificar", "Verify")) } }
            }
            (result)
        },
    )
}

/// One version of the data the applicant signed.
pub struct SignedVersion {
    pub seq: u64,
    pub at: String,
    pub resubmission: bool,
    /// The data as this reader may see it: each restricted field open only when the reader's
    /// roles allow it and the bundle discloses it, else the marker.
    pub data: Value,
}

pub struct Signed {
    pub form: Arc<FormDefinition>,
    pub versions: Vec<SignedVersion>,
}

/// The bundled form and the data of every submission and correction, seen through the reader's
/// sight. `None` when the bundle's definitions do not load (then the report says why).
fn what_was_signed(bytes: &[u8], caller: &Caller) -> Option<Signed> {
    let b: EvidenceBundle = crate::json_strict::from_slice(bytes).ok()?;
    let d = &b.definitions;
    let mut sources: Vec<SourceFile> = d.reference.iter().map(|r| SourceFile::new(r.name.clone(), r.text.clone().into_bytes())).collect();
    sources.push(SourceFile::new(d.form.name.clone(), d.form.text.clone().into_bytes()));
    let form = Catalog::load_sources(&sources).catalog.forms.values().find(|f| f.content_hash == d.form.sha256).cloned()?;
    // The bundle comes from anywhere: the reader counts as the case's applicant only by roles.
    let sight = Sight::for_roles(&form, &caller.roles, false);
    let mut versions = Vec::new();
    for e in &b.events {
        let kind = e.body.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind != "submitted" && kind != "resubmitted" {
            continue;
        }
        let Some(committed) = e.body.get("data") else { continue };
        let disclosures: Disclosures = e.body.get(crate::store::DISCLOSURES_MEMBER).and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
        let allowed: Disclosures = disclosures.into_iter().filter(|(f, _)| !sight.hides(f)).collect();
        let opened = commitment::reveal(committed, &allowed).unwrap_or_else(|_| committed.clone());
        versions.push(SignedVersion { seq: e.seq, at: e.recorded_at.clone(), resubmission: kind == "resubmitted", data: sight.data(&opened) });
    }
    Some(Signed { form, versions })
}

/// What a failed check is about, in the reader's language.
fn check_words(lang: Lang, check: &str) -> &'static str {
    match check {
        "parse" | "format" => t(lang, "檔案不是有效的證據包。", "O ficheiro não é um pacote de prova válido.", "The file is not a valid evidence bundle."),
        "file" => t(
            lang,
            "包內某個檔案的雜湊值不符：它在匯出後被改動過。",
            "O hash de um ficheiro do pacote não confere: foi alterado depois da exportação.",
            "A file inside the bundle does not match its hash: it was changed after export.",
        ),
        "definition" => t(
            lang,
            "表格或流程定義與簽署時的不符。",
            "A definição do formulário ou do circuito não é a que foi assinada.",
            "The form or workflow definition is not the one that was signed.",
        ),
        "pki" => t(
            lang,
            "包內的信任清單、證書或撤銷清單有問題。",
            "A lista de confiança, um certificado ou uma lista de revogação do pacote tem um problema.",
            "The bundle's trust list, a certificate or a revocation list has a problem.",
        ),
        "chain" | "event" | "head" => t(
            lang,
            "事件雜湊鏈斷開：有事件被改動、刪除或插入。",
            "A cadeia de hashes dos eventos está quebrada: um evento foi alterado, removido ou inserido.",
            "The events' hash chain is broken: an event was changed, removed or inserted.",
        ),
        "signature" => t(lang, "有簽名未能通過核實。", "Uma assinatura não foi verificada.", "A signature did not verify."),
        "level" => {
            t(lang, "有簽名的級別低於步驟的要求。", "Uma assinatura tem nível inferior ao exigido pelo passo.", "A signature is weaker than its step required.")
        }
        "route" => {
            t(lang, "個案的流程與其流程定義不符。", "O percurso do processo não segue o seu circuito.", "The case's route does not follow its workflow.")
        }
        "seal" => t(lang, "證據包的服務印章不正確。", "O selo do serviço no pacote não é válido.", "The bundle's service seal is not valid."),
        "pin" => {
            t(lang, "信任的證書與你指定的不符。", "Os certificados de confiança não são os que fixou.", "The trusted certificates are not the ones you pinned.")
        }
        _ => t(lang, "核實未通過。", "A verificação falhou.", "The verification failed."),
    }
}

fn failure_view(lang: Lang, f: &Finding) -> Markup {
    html! {
        section #verify-failure.error-summary role="alert" {
            h2 { "✗ " (t(lang, "核實未通過", "Verificação falhada", "Verification FAILED")) }
            p { strong { (check_words(lang, f.check)) } " " (code_link(f.code)) }
            p { (t(lang, "位置：", "Local: ", "Where: ")) code { (f.place()) } }
            p.muted lang="en" { (f.message) }
        }
    }
}

fn report_view(state: &AppState, lang: Lang, r: &VerificationReport, signed: Option<&Signed>) -> Markup {
    let dir = state.cases.directory();
    html! {
        section #verify-report aria-labelledby="verify-report-title" data-passed=(r.passed) {
            h2 #verify-report-title { (t(lang, "核實報告", "Relatório de verificação", "Verification report")) }
            @if r.passed {
                p #verify-passed.ok-box role="status" { "✓ " (t(lang, "核實通過：每個檔案、事件及簽名均正確。", "Verificação aprovada: todos os ficheiros, eventos e assinaturas conferem.", "PASSED: every file, event and signature checks out.")) }
            }
            @if let Some(f) = &r.first_failure { (failure_view(lang, f)) }
            dl.facts {
                @if let Some(id) = &r.case_id { dt { (t(lang, "個案", "Processo", "Case")) } dd { code { (id) } } }
                @if let Some(f) = &r.form { dt { (t(lang, "表格", "Formulário", "Form")) } dd { code { (f) } } }
                @if let Some(s) = &r.status { dt { (t(lang, "狀態", "Estado", "Status")) } dd { (status_label(lang, s)) } }
                @if let (Some(at), Some(by)) = (&r.exported_at, &r.exported_by) {
                    dt { (t(lang, "匯出", "Exportado", "Exported")) }
                    dd { (at) " · " (person_label(lang, &dir, by)) }
                }
                dt { (t(lang, "已核對", "Verificado", "Checked")) }
                dd { (match lang {
                    Lang::Zh => format!("{} 個檔案的雜湊值、{} 個事件（雜湊鏈及流程）", r.files_checked, r.events_checked),
                    Lang::Pt => format!("hashes de {} ficheiros, {} eventos (cadeia e percurso)", r.files_checked, r.events_checked),
                    Lang::En => format!("{} file hashes, {} events (hash chain, route)", r.files_checked, r.events_checked),
                }) }
            }
            @if !r.signatures.is_empty() {
                h3 { (t(lang, "簽名", "Assinaturas", "Signatures")) }
                div.scroll tabindex="0" role="region" aria-label=(t(lang, "簽名", "Assinaturas", "Signatures")) {
                    table.signatures {
                        thead { tr {
                            th scope="col" { "#" }
                            th scope="col" { (t(lang, "步驟", "Passo", "Step")) }
                            th scope="col" { (t(lang, "簽署人", "Signatário", "Signer")) }
                            th scope="col" { (t(lang, "級別（要求）", "Nível (exigido)", "Level (required)")) }
                            th scope="col" { (t(lang, "簽署時間 (UTC)", "Hora (UTC)", "Time (UTC)")) }
                        } }
                        tbody {
                            @for s in &r.signatures {
                                tr {
                                    td { (s.seq) }
                                    td { code { (s.step) } " · " code { (s.action) } }
                                    td { (person_label(lang, &dir, &s.signer)) @if let Some(c) = &s.certificate { br; small.muted { code { (c) } } } }
                                    td { (super::fill::level_label(lang, s.achieved)) " (" (super::fill::level_label(lang, s.required)) ")" }
                                    td { code { (s.signing_time) } }
                                }
                            }
                        }
                    }
                }
            }
            @if !r.trust.is_empty() {
                h3 { (t(lang, "信任的證書", "Certificados de confiança", "Trusted certificates")) }
                p.note { (t(lang,
                    "以證據包自帶的信任清單核實：請將以下指紋與行政當局公布的核對。",
                    "Verificado com a lista de confiança do próprio pacote: compare estas impressões digitais com as publicadas pela Administração.",
                    "Checked with the bundle's own trust list: compare these fingerprints with the ones the administration publishes.")) }
                ul.trust { @for f in &r.trust { li { code { (f.sha256) } " " small.muted { code { (f.role) } " · " code { (f.subject) } } } } }
            }
            @if !r.withheld.is_empty() {
                p #verify-withheld.note { (t(lang, "不包括的限制欄位（只有其承諾值，簽名仍然核實）：", "Campos restritos retidos (só os compromissos; as assinaturas verificam na mesma): ", "Restricted fields withheld (only their commitments; the signatures verify all the same): ")) code { (r.withheld.join(", ")) } }
            }
            p.muted { (t(lang,
                "離線時沒有重新判斷的事項（按記錄採信）：各步驟的負責人、步驟條件、代理、升級對象、提交人的角色，以及雙重認證的核對。",
                "O que não se decide de novo offline (tomado como registado): quem foi designado para cada passo, as condições dos passos, substituições, escalamentos, o papel de quem submeteu e a verificação do segundo fator.",
                "Taken as recorded, not decided again offline: who was assigned to each step, step conditions, delegations and escalations, the submitter's role, and the second-factor check.")) }
        }
        @if let Some(s) = signed { (signed_view(lang, s)) }
    }
}

fn signed_view(lang: Lang, s: &Signed) -> Markup {
    html! {
        section #what-was-signed aria-labelledby="signed-title" {
            h2 #signed-title { (t(lang, "簽署的內容", "O que foi assinado", "What was signed")) }
            p.muted { (s.form.title.get(lang)) " · v" (s.form.version) }
            @for v in &s.versions {
                h3 {
                    @if v.resubmission { (t(lang, "修改後重新提交", "Correção submetida", "Corrected and resubmitted")) } @else { (t(lang, "提交", "Submissão", "Submission")) }
                    " · " (t(lang, "事件", "evento", "event")) " " (v.seq) " · " code { (v.at) }
                }
                dl.facts.signed-data {
                    @for group in &s.form.layout.groups {
                        @for field in &group.fields {
                            @if let Some(value) = v.data.get(field.as_str()).filter(|x| !x.is_null()) {
                                @let ptr = pointer_push("", field);
                                dt { (pointer_label(&s.form, lang, &ptr)) }
                                dd data-field=(field) {
                                    @if crate::visibility::is_restricted_marker(value) || commitment::commitment_digest(value).is_some() {
                                        em.muted { (t(lang, "（限制欄位，你無權查看）", "(campo restrito, sem acesso)", "(restricted: not for your roles)")) }
                                    } @else {
                                        (super::shown(&value_label(&s.form, lang, &ptr, value)))
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
