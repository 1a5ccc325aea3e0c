//! Every error the HTTP layer returns, as RFC 9457 problem details, in one place.
//!
//! A problem has a stable `code` (`CARIMBO-Ennnn`, explained in docs/errors.md), an HTTP status,
//! a `title` in the reader's language, the same sentence in all three languages under `messages`,
//! the specific `detail`, and where it helps the field errors or the signature report. Nothing
//! secret goes into a problem: no password, token, key or stack trace.

use crate::accounts::AccountError;
use crate::cases::CaseError;
use crate::forms::FieldError;
use crate::i18n::{Lang, LocalizedText};
use crate::store::StoreError;
use crate::workflow::WorkflowError;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    pub messages: LocalizedText,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub report: Option<Value>,
    pub lang: Lang,
    /// Seconds to wait before trying again, sent as `Retry-After` (RFC 9110 §10.2.3) with a 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError { status, code, detail: detail.into(), errors: Vec::new(), report: None, lang: Lang::En, retry_after: None }
    }

    pub fn lang(mut self, lang: Lang) -> Self {
        self.lang = lang;
        self
    }

    pub fn unauthenticated() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "CARIMBO-E0701", "sign in first")
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "CARIMBO-E0702", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "CARIMBO-E0703", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "CARIMBO-E0704", detail)
    }

    pub fn too_many(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "CARIMBO-E0705", detail)
    }

    pub fn csrf() -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "CARIMBO-E0706", "the form is stale or was not sent by carimbo's page: reload the page and try again")
    }

    pub fn problem(&self) -> Problem {
        let messages = message(self.code);
        Problem {
            kind: format!("/docs/errors#{}", self.code.to_ascii_lowercase()),
            title: messages.get(self.lang).to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            messages,
            errors: self.errors.clone(),
            report: self.report.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// Strips the trailing `[CODE]` from a library message: the problem carries the code itself.
fn detail_of(message: &str) -> String {
    match message.rfind(" [CARIMBO-") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// A library error's status and code come from the error itself (typed data on each enum):
/// nothing is found by searching a message.
fn typed(status: u16, code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), code, detail_of(&message))
}

impl From<CaseError> for ApiError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::Invalid(errors) => {
                let mut a = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "CARIMBO-E0110", format!("the form has {} error(s)", errors.len()));
                a.errors = errors;
                a
            }
            other => typed(other.status(), other.code(), other.to_string()),
        }
    }
}

impl From<crate::cases::acts::ActError> for ApiError {
    fn from(e: crate::cases::acts::ActError) -> Self {
        use crate::cases::acts::ActError;
        match e {
            ActError::Case(c) => ApiError::from(c),
            ActError::Account(a) => ApiError::from(a),
            other => {
                let mut a = typed(other.status(), other.code(), other.to_string());
                a.report = other.report().cloned();
                a
            }
        }
    }
}

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> Self {
        typed(e.status(), e.code(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        typed(e.status(), e.code(), e.to_string())
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut a = ApiError::new(status, e.code(), detail_of(&e.to_string()));
        a.retry_after = e.retry_after_seconds();
        a
    }
}

/// The sentence for each code, in the three languages.
pub fn message(code: &str) -> LocalizedText {
    let (zh, pt, en) = match code {
        "CARIMBO-E0120" => (
            "JSON 內同一物件的成員名稱重複，請每個名稱只寫一次。",
            "Um objeto JSON repete o nome de um membro; escreva cada nome uma só vez.",
            "A JSON object repeats a member name; write each name only once.",
        ),
        "CARIMBO-E0110" => {
            ("表格有錯誤，請按欄位旁的說明修改。", "O formulário tem erros: corrija os campos indicados.", "The form has errors: correct the fields shown.")
        }
        "CARIMBO-E0301" => ("你不可提交這份表格。", "Não pode submeter este formulário.", "You may not submit this form."),
        "CARIMBO-E1440" | "CARIMBO-E1441" => (
            "簽署授權已失效或已用完，請以新的雙重認證碼重新授權。",
            "A autorização de assinatura expirou ou já foi usada; autorize de novo com um código novo.",
            "The signing authorization has expired or was used up; authorize again with a fresh code.",
        ),
        "CARIMBO-E1442" | "CARIMBO-E1443" => (
            "簽署授權不涵蓋此簽名：個案在授權後已改變，或此簽名已作出。請重新載入並再授權。",
            "A autorização não cobre esta assinatura: o processo mudou depois de autorizar, ou a assinatura já foi feita. Recarregue e autorize de novo.",
            "The authorization does not cover this signature: the case changed after you authorized, or it was already made. Reload and authorize again.",
        ),
        "CARIMBO-E1444" => (
            "此簽署授權屬於另一人，只可由其本人使用。",
            "Esta autorização de assinatura pertence a outra pessoa e só ela a pode usar.",
            "This signing authorization belongs to another person; only they can use it.",
        ),
        "CARIMBO-E1445" => ("一次授權可涵蓋1至500個簽名。", "Uma autorização cobre de 1 a 500 assinaturas.", "One authorization covers 1 to 500 signatures."),
        "CARIMBO-E1446" => (
            "批次進行期間簽署證書已更換，請就餘下個案重新授權。",
            "O certificado de assinatura mudou durante o lote; autorize de novo os restantes.",
            "The signing certificate changed during the batch; authorize the remaining items again.",
        ),
        "CARIMBO-E1447" => (
            "此伺服器未啟用HSM簽署，請以你的私鑰檔案簽署。",
            "A assinatura no HSM está desligada neste servidor; assine com o ficheiro da sua chave.",
            "Signing on the HSM is off on this server; sign with your key file.",
        ),
        "CARIMBO-E1457" => (
            "你在HSM中沒有私鑰，請以私鑰檔案簽署。",
            "Não tem chave no HSM; assine com o ficheiro da sua chave.",
            "You have no key on the HSM; sign with your key file.",
        ),
        "CARIMBO-E1458" => (
            "你在HSM中的私鑰已被撤銷；之前的簽署仍然有效。請聯絡管理員更換私鑰。",
            "A sua chave no HSM foi revogada; as assinaturas anteriores continuam válidas. Peça ao administrador uma chave nova.",
            "Your key on the HSM was revoked; earlier signatures stay valid. Ask the administrator for a new key.",
        ),
        "CARIMBO-E0302" => (
            "簽名級別不足，請使用所要求級別的證書簽署。",
            "A assinatura não tem o nível exigido; assine com um certificado do nível pedido.",
            "The signature is weaker than this step requires; sign with a certificate of the required level.",
        ),
        "CARIMBO-E0303" => ("此個案現時不可處理。", "Este processo não pode ser tratado agora.", "Nothing can be done on this case now."),
        "CARIMBO-E0304" => {
            ("此步驟並未開放，請重新載入個案。", "Este passo não está aberto; recarregue o processo.", "This step is not open; reload the case.")
        }
        "CARIMBO-E0305" => ("此步驟不容許這個操作。", "Esta ação não é permitida neste passo.", "This action is not allowed on this step."),
        "CARIMBO-E0306" => (
            "你並非此步驟的負責人，或已處理。",
            "Não está designado para este passo, ou já atuou.",
            "You are not assigned to this step, or have already acted.",
        ),
        "CARIMBO-E0307" => {
            ("提交人不可審批自己的個案。", "Quem submete não pode aprovar o seu próprio processo.", "The submitter cannot approve their own case.")
        }
        "CARIMBO-E0308" => (
            "表格中所列人員不在人員名冊內。",
            "Uma pessoa indicada no formulário não consta do registo de pessoal.",
            "A person named in the form is not in the staff directory.",
        ),
        "CARIMBO-E0309" => ("只有提交人可進行此操作。", "Só quem submeteu pode fazer isto.", "Only the submitter can do this."),
        "CARIMBO-E0310" => ("重新提交的內容沒有改動。", "A nova versão não altera nada.", "The resubmission changes nothing."),
        "CARIMBO-E0311" => (
            "個案已有最終決定，不可撤回。",
            "O processo já tem decisão final e não pode ser retirado.",
            "The case has a final decision and cannot be withdrawn.",
        ),
        "CARIMBO-E0312" => ("此操作需要雙重認證碼。", "Esta ação exige o código do segundo fator.", "This act needs your second-factor code."),
        "CARIMBO-E0313" => {
            ("重新提交的表格版本與個案不符。", "A versão do formulário não corresponde ao processo.", "The resubmission is for another form version.")
        }
        "CARIMBO-E0314" => ("簽名人與操作人不符。", "O signatário não é quem está a atuar.", "The signature is not by the person acting."),
        "CARIMBO-E0316" => (
            "你是此個案的當事人，不可就此個案作出決定（利益衝突）。",
            "É parte neste processo e não pode decidir sobre ele (conflito de interesses).",
            "You are a party to this case and may not decide on it (conflict of interest).",
        ),
        "CARIMBO-E0330" => (
            "只有現時負責此步驟的人員才會獲發簽署內容。",
            "Só quem tem lugar neste passo agora recebe o conteúdo a assinar.",
            "Only a person who may act on this step now is given the payload to sign.",
        ),
        "CARIMBO-E0923" => (
            "此個案的受限制資料以明文記錄，你的角色不可查閱，故不能取得其證據包。",
            "Este processo registou dados reservados em claro que a sua função não pode ver; o pacote de prova não lhe pode ser entregue.",
            "This case recorded restricted data in the open that your roles may not see, so its evidence bundle cannot be given to you.",
        ),
        "CARIMBO-E0401" => {
            ("個案剛被他人處理，請重新載入。", "O processo foi alterado por outra pessoa; recarregue-o.", "Someone else changed the case first; reload it.")
        }
        "CARIMBO-E0402" => ("找不到此個案。", "Processo não encontrado.", "No such case."),
        "CARIMBO-E0409" => (
            "冪等鍵無效：須為1至128個可見ASCII字元。",
            "A chave de idempotência não é válida: use de 1 a 128 caracteres ASCII visíveis.",
            "The idempotency key is not valid: use 1 to 128 visible ASCII characters.",
        ),
        "CARIMBO-E0410" => (
            "這個冪等鍵已用於另一個請求，新的請求請使用新的鍵。",
            "Esta chave de idempotência já foi usada noutro pedido; use uma chave nova para um pedido novo.",
            "This idempotency key was used for another request; use a new key for a new request.",
        ),
        "CARIMBO-E0408" => (
            "分頁標記無效，請由第一頁重新開始。",
            "O marcador de página não é válido; recomece pela primeira página.",
            "The page cursor is not valid; start again from the first page.",
        ),
        "CARIMBO-E0406" => ("找不到此表格。", "Formulário não encontrado.", "No such form."),
        "CARIMBO-E0500" => (
            "簽名無效，請查看驗證報告。",
            "A assinatura não é válida; veja o relatório de validação.",
            "The signature is not valid; see the validation report.",
        ),
        "CARIMBO-E0602" => ("用戶名稱或密碼不正確。", "Identificação ou palavra-passe incorreta.", "The user id or the password is wrong."),
        "CARIMBO-E0604" => ("雙重認證碼不正確或已過期。", "O código do segundo fator está errado ou expirou.", "The second-factor code is wrong or expired."),
        "CARIMBO-E0605" => ("請先開始設定雙重認證。", "Comece primeiro a configuração do segundo fator.", "Start the second-factor enrolment first."),
        "CARIMBO-E0606" => ("密碼最少要有12個字元。", "A palavra-passe deve ter pelo menos 12 caracteres.", "The password must have at least 12 characters."),
        "CARIMBO-E0608" => (
            "雙重認證碼錯誤次數過多，請稍後再試。",
            "Demasiados códigos do segundo fator errados; tente mais tarde.",
            "Too many wrong second-factor codes; try again later.",
        ),
        "CARIMBO-E0609" => (
            "這個雙重認證碼已使用過，請等待下一個。",
            "Este código do segundo fator já foi usado; espere pelo próximo.",
            "This second-factor code was already used; wait for the next one.",
        ),
        "CARIMBO-E0610" => (
            "更換雙重認證須輸入現有驗證程式的驗證碼。",
            "Para substituir o segundo fator, indique um código da aplicação atual.",
            "Replacing your second factor needs a code from your current authenticator app.",
        ),
        "CARIMBO-E0611" => (
            "雙重認證密鑰檔無法讀取，請聯絡系統管理員。",
            "O ficheiro da chave do segundo fator não pode ser lido; contacte o administrador.",
            "The second-factor key file cannot be read; contact the administrator.",
        ),
        "CARIMBO-E0612" => (
            "找不到雙重認證密鑰檔，請聯絡系統管理員。",
            "Falta o ficheiro da chave do segundo fator; contacte o administrador.",
            "The second-factor key file is missing; contact the administrator.",
        ),
        "CARIMBO-E0613" => (
            "雙重認證密鑰與帳戶檔不符，請聯絡系統管理員。",
            "A chave do segundo fator não corresponde ao ficheiro de contas; contacte o administrador.",
            "The second-factor key does not match the accounts file; contact the administrator.",
        ),
        "CARIMBO-E0614" => (
            "無法寫入稽核記錄，操作未有進行。",
            "Não foi possível escrever no registo de auditoria; nada foi feito.",
            "The audit log could not be written; nothing was done.",
        ),
        "CARIMBO-E0615" => ("此帳戶沒有可重設的雙重認證。", "Esta conta não tem segundo fator para repor.", "This account has no second factor to reset."),
        "CARIMBO-E0701" => ("請先登入。", "Inicie sessão primeiro.", "Sign in first."),
        "CARIMBO-E0702" => ("你沒有權限。", "Não tem permissão.", "You do not have permission."),
        "CARIMBO-E0703" => ("找不到。", "Não encontrado.", "Not found."),
        "CARIMBO-E0704" => ("請求格式不正確。", "O pedido está mal formado.", "The request is malformed."),
        "CARIMBO-E0705" => ("嘗試次數過多，請稍後再試。", "Demasiadas tentativas; tente mais tarde.", "Too many attempts; try again later."),
        "CARIMBO-E0706" => {
            ("頁面已過期，請重新載入後再試。", "A página expirou; recarregue-a e tente de novo.", "The page has expired; reload it and try again.")
        }
        "CARIMBO-E0721" => {
            ("登入頁面已過期，請重新登入。", "A página de início de sessão expirou; inicie sessão de novo.", "The sign-in page had expired; sign in again.")
        }
        "CARIMBO-E0707" => ("請求內容過大。", "O pedido é demasiado grande.", "The request is too large."),
        "CARIMBO-E1101" => ("統計查詢參數不正確。", "Um parâmetro da consulta de estatísticas não é válido.", "A parameter of the usage query is not valid."),
        "CARIMBO-E0708" => (
            "定義有錯誤，舊版本會繼續使用。",
            "A definição tem erros; a versão anterior continua em uso.",
            "The definition has errors; the previous version keeps serving.",
        ),
        "CARIMBO-E1002" => ("匯出的條件不正確。", "Os critérios da exportação não são válidos.", "The export's criteria are not valid."),
        "CARIMBO-E1003" => ("找不到此訊息。", "Mensagem não encontrada.", "No such message."),
        "CARIMBO-E1230" => (
            "這不是信任清單的條目，請用 carimbo trust sign 產生。",
            "Isto não é uma entrada da lista de confiança; gere-a com carimbo trust sign.",
            "This is not a trust-list entry; make it with carimbo trust sign.",
        ),
        "CARIMBO-E1231" => (
            "信任清單條目未經簽署，清單沒有改動。",
            "A entrada da lista de confiança não está assinada; a lista não mudou.",
            "The trust-list entry is not signed; the list did not change.",
        ),
        "CARIMBO-E1232" => (
            "信任清單條目並非由清單營運者簽署，清單沒有改動。",
            "A entrada não foi assinada pelo operador da lista de confiança; a lista não mudou.",
            "The entry is not signed by the trust-list operator; the list did not change.",
        ),
        "CARIMBO-E1233" => (
            "信任清單條目的簽名無效，清單沒有改動。",
            "A assinatura da entrada não é válida; a lista não mudou.",
            "The entry's signature does not verify; the list did not change.",
        ),
        "CARIMBO-E1234" => (
            "信任清單條目次序或日期不正確，請在現行清單之後重新簽署。",
            "A entrada está fora de ordem ou de data; assine-a de novo a seguir à lista atual.",
            "The entry is out of order or out of date; sign it again after the current list.",
        ),
        "CARIMBO-E1235" => ("該成員已在信任清單內。", "Esse membro já consta da lista de confiança.", "That member is already on the trust list."),
        "CARIMBO-E1236" => ("信任清單內沒有該成員。", "Esse membro não consta da lista de confiança.", "That member is not on the trust list."),
        "CARIMBO-E1237" => (
            "信任清單條目的變更無效，清單沒有改動。",
            "A alteração da entrada não é válida; a lista não mudou.",
            "The entry's change is not valid; the list did not change.",
        ),
        "CARIMBO-E1238" => (
            "信任清單的第一個條目必須加入簽發營運者證書的信任錨。",
            "A primeira entrada deve juntar a âncora de confiança que emitiu o certificado do operador.",
            "The first entry must add the trust anchor that issued the operator's certificate.",
        ),
        "CARIMBO-E1420" => (
            "通知設定有誤，沒有儲存；請按說明修改。",
            "As preferências de notificação têm erros e não foram guardadas; corrija o que é indicado.",
            "The notification settings have errors and were not saved; correct what is named.",
        ),
        "CARIMBO-E1422" => (
            "無法儲存通知設定，設定沒有改動。",
            "Não foi possível guardar as preferências de notificação; nada mudou.",
            "The notification settings could not be saved; nothing changed.",
        ),
        "CARIMBO-E1239" => (
            "無法儲存信任清單，清單沒有改動。",
            "Não foi possível guardar a lista de confiança; a lista não mudou.",
            "The trust list could not be saved; it did not change.",
        ),
        "CARIMBO-E1241" => {
            ("時間須為以 Z 結尾的 UTC 時間（RFC 3339）。", "A hora deve ser UTC terminada em Z (RFC 3339).", "The time must be UTC ending in Z (RFC 3339).")
        }
        _ => ("發生錯誤，請聯絡系統管理員。", "Ocorreu um erro; contacte o administrador.", "Something went wrong; contact the administrator."),
    };
    LocalizedText::new(zh, pt, en)
}
