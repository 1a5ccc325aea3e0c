//! `GET /cases/{id}/pdf`: the case's printable record (PDF/A-3b sealed with PAdES) for whoever
//! may open the case's page, in the page's language, restricted fields as the reader's sight
//! allows (the embedded evidence bundle is exported for the same reader).

use super::{PageCaller, PageLang, problem_page, t};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::pdf::{PdfError, PdfSeal};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use std::sync::Arc;

/// Why a visible case has no document: the message and the HTTP status.
struct Failure(StatusCode, String);

impl From<PdfError> for Failure {
    fn from(e: PdfError) -> Failure {
        Failure(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), e.to_string())
    }
}

impl From<crate::evidence::EvidenceError> for Failure {
    fn from(e: crate::evidence::EvidenceError) -> Failure {
        let status = if matches!(e, crate::evidence::EvidenceError::Withheld(_)) { StatusCode::FORBIDDEN } else { StatusCode::INTERNAL_SERVER_ERROR };
        Failure(status, e.to_string())
    }
}

/// The sealed document of a case the caller may see; `Ok(None)` when they may not.
fn make(st: &AppState, caller: &Caller, id: &str, lang: crate::i18n::Lang) -> Result<Option<(String, Vec<u8>)>, Failure> {
    let Ok((case, _, _)) = st.visible_case(caller, id) else { return Ok(None) };
    let sight = st.sight(caller, &case);
    let now = Utc::now();
    let pki = crate::evidence::PkiMaterial::from_seeds(&st.paths.seeds)?.with_trust_list(st.trust.document_text()).with_device_rule(st.paths.device_rule);
    let bundle = crate::evidence::export(&st.cases, &case.id, &pki, &st.seal, &caller.person, &sight, now)?;
    let service = st.paths.seeds.join("pki/service");
    let read = |name: &str| std::fs::read(service.join(name)).map_err(|e| PdfError::SealKey(format!("{name}: {e}")));
    let key = PdfSeal::from_pem(&read("service.key.pem")?, &read("service.pem")?)?;
    let dir = st.cases.directory();
    let people = |p: &str| super::person_label(lang, &dir, p);
    let verifier = st.verifier();
    let stamp = |bytes: &[u8]| -> Result<Option<Vec<u8>>, crate::signing::timestamp::TimeStampError> {
        let token = st.stamping.stamp(bytes)?;
        if let Some(token) = &token
            && st.stamping.checks_each_token()
        {
            verifier
                .timestamps()
                .verify(token, bytes)
                .map_err(|f| crate::signing::timestamp::TimeStampError::Unaccepted(format!("{} [{}]", f.detail, f.code)))?;
        }
        Ok(token)
    };
    let pdf = crate::pdf::print(&bundle, lang, &people, &key, &stamp, now)?;
    Ok(Some((case.id, pdf)))
}

pub async fn download(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Path(id): Path<String>) -> Response {
    let lang = pl.lang;
    let (st, c) = (state.clone(), caller.clone());
    let made =
        tokio::task::spawn_blocking(move || make(&st, &c, &id, lang)).await.unwrap_or_else(|e| Err(Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())));
    match made {
        Ok(Some((case, pdf))) => {
            let disposition = format!("attachment; filename=\"{case}-{}.pdf\"", lang.code());
            ([(header::CONTENT_TYPE, "application/pdf".to_string()), (header::CONTENT_DISPOSITION, disposition)], pdf).into_response()
        }
        Ok(None) => problem_page(
            &pl,
            Some(&caller),
            StatusCode::NOT_FOUND,
            t(lang, "找不到此個案", "Processo não encontrado", "No such case"),
            t(lang, "找不到此個案，或你無權查看。", "Processo não encontrado, ou sem acesso.", "No such case, or you may not see it."),
        ),
        Err(Failure(status, detail)) => {
            problem_page(&pl, Some(&caller), status, t(lang, "無法產生 PDF", "Não foi possível gerar o PDF", "The PDF could not be made"), &detail)
        }
    }
}
