//! Remote signing at a trust service provider over the Cloud Signature Consortium API v2.
//!
//! A qualified trust service provider keeps the signer's key in its QSCD; carimbo sends it
//! hashes and the signer's one-time code and gets ECDSA P-256 signatures back, to put into the
//! JWS of an act as it would a local signature. `protocol` is the API as data, with no I/O;
//! `client` is the HTTP side (OAuth 2.0 client credentials, timeouts, size limits) and
//! [`client::sign_hashes`], the one call a remote signing provider needs: one
//! `credentials/authorize` for N hashes, one `signatures/signHash`. `docs/csc.md` says how to
//! point carimbo at a provider.

pub mod client;
pub mod protocol;

use crate::i18n::Lang;

/// What can go wrong while signing remotely. Each variant has its code (`code()`) and an
/// explanation in docs/errors-signing.md ("Remote signing (CSC API v2)").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CscError {
    /// The configuration cannot be used (base URL, client id or secret, their file).
    #[error("CARIMBO-E1470: the remote signing configuration is not usable: {0}")]
    Config(String),
    /// The service did not accept carimbo itself (OAuth 2.0 client or access token).
    #[error("CARIMBO-E1471: the signing service did not accept carimbo's client credentials or access token ({error}: {description})")]
    ServiceAuth { error: String, description: String },
    /// The signer's one-time code was refused.
    #[error("CARIMBO-E1472: the signing service refused the one-time code for credential {credential}")]
    WrongOtp { credential: String },
    /// The SAD expired, was used already, or is unknown to the service.
    #[error("CARIMBO-E1473: the signature authorization for credential {credential} has expired or was used already")]
    SadExpired { credential: String },
    /// A hash to sign was not among those the SAD authorizes.
    #[error("CARIMBO-E1474: a hash to sign is not among those the signer authorized for credential {credential}")]
    HashNotCovered { credential: String },
    /// The credential's key is disabled or its certificate revoked, suspended or expired.
    #[error("CARIMBO-E1475: credential {credential} cannot sign: {status}")]
    CredentialUnusable { credential: String, status: String },
    /// The service did not answer in time.
    #[error("CARIMBO-E1476: the signing service did not answer {method} in time ({after})")]
    Timeout { method: String, after: String },
    /// The service's answer is not what the specification says.
    #[error("CARIMBO-E1477: the signing service's answer to {method} is malformed: {what}")]
    Malformed { method: String, what: String },
    /// The service refused the request (or could not be reached) for another reason.
    #[error("CARIMBO-E1478: the signing service refused {method} (HTTP {status}) {error}: {description}")]
    Refused { method: String, status: u16, error: String, description: String },
    /// The credential does not fit what carimbo asks of it (algorithm, authorization, batch).
    #[error("CARIMBO-E1479: credential {credential} cannot be used for this signature: {why}")]
    Unsuitable { credential: String, why: String },
}

impl CscError {
    pub fn code(&self) -> &'static str {
        match self {
            CscError::Config(_) => "CARIMBO-E1470",
            CscError::ServiceAuth { .. } => "CARIMBO-E1471",
            CscError::WrongOtp { .. } => "CARIMBO-E1472",
            CscError::SadExpired { .. } => "CARIMBO-E1473",
            CscError::HashNotCovered { .. } => "CARIMBO-E1474",
            CscError::CredentialUnusable { .. } => "CARIMBO-E1475",
            CscError::Timeout { .. } => "CARIMBO-E1476",
            CscError::Malformed { .. } => "CARIMBO-E1477",
            CscError::Refused { .. } => "CARIMBO-E1478",
            CscError::Unsuitable { .. } => "CARIMBO-E1479",
        }
    }

    /// The HTTP status a route answers with when a signer's remote signature fails this way:
    /// the signer's own mistakes are 4xx, the provider's are 502 / 504.
    pub fn status(&self) -> u16 {
        match self {
            CscError::WrongOtp { .. } | CscError::SadExpired { .. } | CscError::HashNotCovered { .. } => 422,
            CscError::CredentialUnusable { .. } | CscError::Unsuitable { .. } => 409,
            CscError::Timeout { .. } => 504,
            CscError::Config(_) | CscError::ServiceAuth { .. } | CscError::Malformed { .. } | CscError::Refused { .. } => 502,
        }
    }

    /// What the signer reads (the details stay in the log line of `Display`).
    pub fn message(&self, lang: Lang) -> String {
        let (zh, pt, en) = match self {
            CscError::Config(_) | CscError::ServiceAuth { .. } => (
                "遠端簽署服務的設定無法使用，請聯絡系統管理員。",
                "A configuração do serviço de assinatura remota não pode ser usada; contacte o administrador.",
                "The remote signing service is not configured correctly; contact the administrator.",
            ),
            CscError::WrongOtp { .. } => (
                "一次性密碼不正確，請輸入驗證程式上的新密碼。",
                "O código único está errado; introduza o código atual da aplicação.",
                "The one-time code is wrong; enter the current code from your app.",
            ),
            CscError::SadExpired { .. } => (
                "簽署授權已逾時或已使用，請重新授權。",
                "A autorização de assinatura expirou ou já foi usada; autorize de novo.",
                "The signing authorization has expired or was used already; authorize again.",
            ),
            CscError::HashNotCovered { .. } => (
                "要簽署的內容不在您授權的範圍內，請重新授權。",
                "O conteúdo a assinar não está entre o que autorizou; autorize de novo.",
                "What is to be signed is not what you authorized; authorize again.",
            ),
            CscError::CredentialUnusable { .. } => (
                "您的簽署憑證已停用、廢止或過期，請聯絡認證實體。",
                "O seu certificado de assinatura está desativado, revogado ou expirado; contacte a entidade certificadora.",
                "Your signing certificate is disabled, revoked or expired; contact your certification entity.",
            ),
            CscError::Timeout { .. } => (
                "遠端簽署服務沒有及時回應，請稍後再試。",
                "O serviço de assinatura remota não respondeu a tempo; tente mais tarde.",
                "The remote signing service did not answer in time; try again later.",
            ),
            CscError::Malformed { .. } | CscError::Refused { .. } => (
                "遠端簽署服務未能完成簽署，請稍後再試。",
                "O serviço de assinatura remota não concluiu a assinatura; tente mais tarde.",
                "The remote signing service could not sign; try again later.",
            ),
            CscError::Unsuitable { .. } => (
                "此簽署憑證不能用於這個簽署，請聯絡系統管理員。",
                "Este certificado não pode ser usado para esta assinatura; contacte o administrador.",
                "This signing credential cannot be used for this signature; contact the administrator.",
            ),
        };
        let text = match lang {
            Lang::Zh => zh,
            Lang::Pt => pt,
            Lang::En => en,
        };
        format!("{text} ({})", self.code())
    }
}
