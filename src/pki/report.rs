//! The validation report: what a verifier tells a person about one signature.
//!
//! The vocabulary follows ETSI EN 319 102-1 (clause 5.1.3, as implemented by the EU's DSS
//! library): a main indication, a sub-indication naming the reason, and the material the
//! decision was based on (signer, chain, the time the signature was judged at). carimbo adds
//! the signature level achieved (`simple` / `advanced` / `qualified`, in the sense of
//! Law 5/2005) and one sentence per language that tells the person what to do next.
//! Every sub-indication also carries a stable error code (`CARIMBO-E05xx`), explained once in
//! `docs/errors-signing.md`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The main status of a validation (EN 319 102-1, table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Indication {
    TotalPassed,
    TotalFailed,
    Indeterminate,
}

/// Why a validation did not pass (EN 319 102-1, tables 5 and 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubIndication {
    /// The signature is not a well-formed JAdES/JWS object.
    FormatFailure,
    /// A signed digest (here: the form data hash in the signing payload) does not match.
    HashFailure,
    /// The signature value does not verify with the signer's public key.
    SigCryptoFailure,
    /// The signing certificate was revoked at or before the signing time.
    Revoked,
    /// The signing time is after the end of a certificate's validity.
    Expired,
    /// The signing time is before the start of a certificate's validity.
    NotYetValid,
    /// The certificate does not chain to a trust anchor of the trust list.
    NoCertificateChainFound,
    /// The chain violates a constraint (key usage, basic constraints, EKU, ...).
    ChainConstraintsFailure,
    /// The signature violates a constraint of the validation policy (signer, time, level).
    SigConstraintsFailure,
    /// An algorithm or key size is not allowed (SHA-1, RSA under 2048 bits, ...).
    CryptoConstraintsFailure,
    /// Revocation status could not be established (no usable CRL); retrying later may help.
    TryLater,
    /// The certificate was revoked after the claimed signing time, but that time is not proven.
    RevokedNoPoe,
    /// A CA certificate of the chain was revoked after the claimed time, which is not proven.
    RevokedCaNoPoe,
    /// The header does not identify the signing certificate consistently (`x5t#S256`, ...).
    NoSigningCertificateFound,
    /// A certificate (the signer's, a TSA's, the service seal's) has expired by the time of
    /// validation, and nothing proves the signature or time-stamp existed while it was valid:
    /// no archive time-stamp made before it expired (EN 319 102-1 §5.2.7, OUT_OF_BOUNDS_NO_POE).
    OutOfBoundsNoPoe,
}

impl SubIndication {
    /// The stable error code a person or log can quote.
    pub fn code(self) -> &'static str {
        match self {
            SubIndication::FormatFailure => "CARIMBO-E0520",
            SubIndication::HashFailure => "CARIMBO-E0521",
            SubIndication::SigCryptoFailure => "CARIMBO-E0522",
            SubIndication::Revoked => "CARIMBO-E0523",
            SubIndication::Expired => "CARIMBO-E0524",
            SubIndication::NotYetValid => "CARIMBO-E0525",
            SubIndication::NoCertificateChainFound => "CARIMBO-E0526",
            SubIndication::ChainConstraintsFailure => "CARIMBO-E0527",
            SubIndication::SigConstraintsFailure => "CARIMBO-E0528",
            SubIndication::CryptoConstraintsFailure => "CARIMBO-E0529",
            SubIndication::TryLater => "CARIMBO-E0530",
            SubIndication::RevokedNoPoe => "CARIMBO-E0531",
            SubIndication::RevokedCaNoPoe => "CARIMBO-E0532",
            SubIndication::NoSigningCertificateFound => "CARIMBO-E0533",
            SubIndication::OutOfBoundsNoPoe => "CARIMBO-E1250",
        }
    }

    /// The name used in reports (`HASH_FAILURE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SubIndication::FormatFailure => "FORMAT_FAILURE",
            SubIndication::HashFailure => "HASH_FAILURE",
            SubIndication::SigCryptoFailure => "SIG_CRYPTO_FAILURE",
            SubIndication::Revoked => "REVOKED",
            SubIndication::Expired => "EXPIRED",
            SubIndication::NotYetValid => "NOT_YET_VALID",
            SubIndication::NoCertificateChainFound => "NO_CERTIFICATE_CHAIN_FOUND",
            SubIndication::ChainConstraintsFailure => "CHAIN_CONSTRAINTS_FAILURE",
            SubIndication::SigConstraintsFailure => "SIG_CONSTRAINTS_FAILURE",
            SubIndication::CryptoConstraintsFailure => "CRYPTO_CONSTRAINTS_FAILURE",
            SubIndication::TryLater => "TRY_LATER",
            SubIndication::RevokedNoPoe => "REVOKED_NO_POE",
            SubIndication::RevokedCaNoPoe => "REVOKED_CA_NO_POE",
            SubIndication::NoSigningCertificateFound => "NO_SIGNING_CERTIFICATE_FOUND",
            SubIndication::OutOfBoundsNoPoe => "OUT_OF_BOUNDS_NO_POE",
        }
    }
}

/// The signature levels a workflow step can demand, weakest first (Law 5/2005 style).
/// The derived order is the strength order: a stronger level satisfies a weaker demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignatureLevel {
    /// An authenticated person's recorded act, sealed with the service's own key.
    Simple,
    /// The signer's own key, certificate chaining to the trust list, valid and unrevoked.
    Advanced,
    /// Advanced, with a qualified certificate from an entity accredited at signing time.
    Qualified,
}

impl SignatureLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureLevel::Simple => "simple",
            SignatureLevel::Advanced => "advanced",
            SignatureLevel::Qualified => "qualified",
        }
    }

    /// `true` when a signature at `self` may be used where `demanded` is required.
    pub fn satisfies(self, demanded: SignatureLevel) -> bool {
        self >= demanded
    }
}

impl std::fmt::Display for SignatureLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SignatureLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "simple" => Ok(SignatureLevel::Simple),
            "advanced" => Ok(SignatureLevel::Advanced),
            "qualified" => Ok(SignatureLevel::Qualified),
            other => Err(format!("unknown signature level {other:?}: use simple, advanced or qualified")),
        }
    }
}

/// One sentence in each language carimbo speaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sentence {
    pub zh: String,
    pub pt: String,
    pub en: String,
}

/// Whether the time a signature was judged at is proven or only claimed by the signer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeSource {
    /// A time the verifier trusts: the server's recorded event time, or `--at`.
    Trusted,
    /// Only the signer's claim (`iat` / `sigT`) in the protected header.
    Claimed,
    /// The `genTime` of the signature's RFC 3161 time-stamp (JAdES B-T).
    #[serde(rename = "timestamp")]
    TimeStamp,
}

/// A signature time-stamp that verified (RFC 3161 token in the JWS's `etsiU` `sigTst`): the
/// TSA, its time and the chain its certificate was validated on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedTimeStamp {
    pub gen_time: DateTime<Utc>,
    /// Serial number, lowercase hex.
    pub serial: String,
    pub policy: String,
    /// The hash of the message imprint (which covers the JWS signature value).
    pub imprint_algorithm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_seconds: Option<u64>,
    /// The TSA certificate's subject; its extended key usage was id-kp-timeStamping, critical.
    pub tsa: String,
    /// The trust-list entry that recognises the TSA.
    pub tsa_entity: String,
    pub chain: Vec<ChainElement>,
    /// What was checked, one sentence each: imprint, token signature, EKU, path, trust list.
    pub checks: Vec<String>,
    /// Notes on the TSA chain (e.g. a revocation after the stamp's time).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
}

/// The person (or service) the signing certificate names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerInfo {
    /// The person id from the certificate's subject serialNumber attribute, when present.
    pub person_id: Option<String>,
    pub common_name: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    /// e.g. `ECDSA P-256`, `RSA 2048`, `Ed25519`.
    pub key: String,
}

/// One certificate of the chain that was validated, leaf first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainElement {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    /// Lowercase hex SHA-256 of the DER certificate.
    pub sha256: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// `true` for the certificate taken from the trust list as trust anchor.
    pub trust_anchor: bool,
}

/// The result of validating one signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationReport {
    pub indication: Indication,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_indication: Option<SubIndication>,
    /// The stable error code of the sub-indication, or of a level refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The level this signature reaches, when it passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub achieved_level: Option<SignatureLevel>,
    /// The level the step demanded, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_level: Option<SignatureLevel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignerInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub chain: Vec<ChainElement>,
    /// The time the certificates were judged at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_source: Option<TimeSource>,
    /// The signer's claimed signing time (`iat` or `sigT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_signing_time: Option<DateTime<Utc>>,
    /// The signature time-stamp's own validation, when the signature carries one (B-T).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timestamp: Option<VerifiedTimeStamp>,
    /// A technical explanation (English), for logs and auditors.
    pub detail: String,
    /// What the person should do, in zh / pt / en.
    pub message: Sentence,
    /// Facts worth knowing that did not change the result (e.g. a later revocation).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
}

impl ValidationReport {
    /// A report that did not pass, with the advice that belongs to `sub`.
    pub fn failed(indication: Indication, sub: SubIndication, detail: impl Into<String>) -> Self {
        ValidationReport {
            indication,
            sub_indication: Some(sub),
            code: Some(sub.code().to_string()),
            achieved_level: None,
            required_level: None,
            algorithm: None,
            signer: None,
            chain: Vec::new(),
            signing_time: None,
            time_source: None,
            claimed_signing_time: None,
            timestamp: None,
            detail: detail.into(),
            message: advice(sub),
            notes: Vec::new(),
        }
    }

    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }
}

/// The sentence shown for a passed signature at `level`.
pub fn passed_sentence(level: SignatureLevel) -> Sentence {
    match level {
        SignatureLevel::Simple => s(
            "此行為已由本系統以服務印章記錄（簡單簽名），紀錄完整，無需再操作。",
            "O ato foi registado e selado pelo serviço (assinatura simples); o registo está íntegro e não é preciso fazer mais nada.",
            "The act was recorded and sealed by the service (simple signature); the record is intact and nothing more is needed.",
        ),
        SignatureLevel::Advanced => s(
            "簽名有效（進階電子簽名），文件自簽署後未被更改，無需再操作。",
            "A assinatura é válida (assinatura eletrónica avançada) e o documento não foi alterado desde a assinatura; não é preciso fazer mais nada.",
            "The signature is valid (advanced electronic signature) and the document has not changed since it was signed; nothing more is needed.",
        ),
        SignatureLevel::Qualified => s(
            "簽名有效（合格電子簽名，與親筆簽名具同等法律效力），文件自簽署後未被更改，無需再操作。",
            "A assinatura é válida (assinatura eletrónica qualificada, com a força de uma assinatura manuscrita) e o documento não foi alterado; não é preciso fazer mais nada.",
            "The signature is valid (qualified electronic signature, with the legal force of a handwritten one) and the document has not changed; nothing more is needed.",
        ),
    }
}

/// The sentence shown when a signature is valid but below the level a step demands.
pub fn level_not_met_sentence(achieved: SignatureLevel, required: SignatureLevel) -> Sentence {
    let (za, pa, ea) = level_names(achieved);
    let (zr, pr, er) = level_names(required);
    Sentence {
        zh: format!("此步驟要求{zr}，但您的簽名只達到{za}。請使用認證實體（如 eSignTrust）發出的合格證書重新簽署。"),
        pt: format!(
            "Este passo exige uma {pr}, mas a sua assinatura é apenas uma {pa}. Assine de novo com um certificado qualificado de uma entidade credenciada (como a eSignTrust)."
        ),
        en: format!(
            "This step requires a {er}, but your signature is only a {ea}. Sign again with a qualified certificate from an accredited certification entity (such as eSignTrust)."
        ),
    }
}

fn level_names(level: SignatureLevel) -> (&'static str, &'static str, &'static str) {
    match level {
        SignatureLevel::Simple => ("簡單簽名", "assinatura simples", "simple signature"),
        SignatureLevel::Advanced => ("進階電子簽名", "assinatura eletrónica avançada", "advanced electronic signature"),
        SignatureLevel::Qualified => ("合格電子簽名", "assinatura eletrónica qualificada", "qualified electronic signature"),
    }
}

fn s(zh: &str, pt: &str, en: &str) -> Sentence {
    Sentence { zh: zh.to_string(), pt: pt.to_string(), en: en.to_string() }
}

/// What a person can do about each sub-indication.
pub fn advice(sub: SubIndication) -> Sentence {
    match sub {
        SubIndication::FormatFailure => s(
            "簽名檔案格式不正確或已損壞。請從原來的系統重新匯出簽名，或重新簽署。",
            "O ficheiro de assinatura está mal formado ou danificado. Exporte-o de novo a partir do sistema de origem ou assine outra vez.",
            "The signature file is malformed or damaged. Export it again from the system that made it, or sign again.",
        ),
        SubIndication::HashFailure => s(
            "表格資料在簽署後被更改。請核對資料；如更改是正確的，請重新簽署。",
            "Os dados do formulário foram alterados depois da assinatura. Verifique os dados e, se a alteração estiver certa, assine de novo.",
            "The form data changed after it was signed. Check the data and, if the change is right, sign again.",
        ),
        SubIndication::SigCryptoFailure => s(
            "簽名與此案件、步驟或資料不符（可能屬於另一份文件，或已被篡改）。請在此步驟重新簽署。",
            "A assinatura não corresponde a este processo, passo ou dados (pode pertencer a outro documento ou ter sido adulterada). Assine de novo neste passo.",
            "The signature does not match this case, step or data (it may belong to another document or have been tampered with). Sign again at this step.",
        ),
        SubIndication::Revoked => s(
            "簽署時您的證書已被撤銷。請向認證實體申請新證書後重新簽署。",
            "O seu certificado estava revogado no momento da assinatura. Peça um novo certificado à entidade certificadora e assine de novo.",
            "Your certificate was revoked at the time of signing. Ask your certification entity for a new certificate and sign again.",
        ),
        SubIndication::Expired => s(
            "簽署時證書已過期。請續期證書後重新簽署。",
            "O certificado já tinha expirado no momento da assinatura. Renove o certificado e assine de novo.",
            "The certificate had expired at the time of signing. Renew the certificate and sign again.",
        ),
        SubIndication::NotYetValid => s(
            "簽署時證書尚未生效。請檢查電腦時間，待證書生效後再簽署。",
            "O certificado ainda não era válido no momento da assinatura. Verifique a hora do computador e assine quando o certificado estiver em vigor.",
            "The certificate was not yet valid at the time of signing. Check your computer's clock and sign once the certificate is in force.",
        ),
        SubIndication::NoCertificateChainFound => s(
            "證書並非由信任清單上的認證實體發出，或證書鏈不完整。請使用受信任實體發出的證書，並連同完整證書鏈簽署。",
            "O certificado não foi emitido por uma entidade da lista de confiança, ou a cadeia está incompleta. Use um certificado de uma entidade de confiança e inclua a cadeia completa.",
            "The certificate was not issued by a certification entity on the trust list, or its chain is incomplete. Use a certificate from a trusted entity and include the full chain.",
        ),
        SubIndication::ChainConstraintsFailure => s(
            "此證書不可用於簽署文件（用途或限制不符）。請使用具簽署用途的證書。",
            "Este certificado não pode ser usado para assinar documentos (utilização ou restrições incompatíveis). Use um certificado destinado a assinatura.",
            "This certificate may not be used to sign documents (its key usage or constraints do not allow it). Use a certificate meant for signing.",
        ),
        SubIndication::SigConstraintsFailure => s(
            "簽名不符合此步驟的要求（簽署人、時間或級別）。請由正確的人以要求的級別重新簽署。",
            "A assinatura não cumpre as regras deste passo (signatário, hora ou nível). Peça à pessoa certa que assine de novo com o nível exigido.",
            "The signature does not meet this step's rules (signer, time or level). Have the right person sign again at the required level.",
        ),
        SubIndication::CryptoConstraintsFailure => s(
            "簽名使用了不再安全的演算法或過短的金鑰（如 SHA-1 或少於 2048 位元的 RSA）。請以新的金鑰及證書重新簽署。",
            "A assinatura usa um algoritmo já inseguro ou uma chave demasiado curta (como SHA-1 ou RSA com menos de 2048 bits). Assine de novo com uma chave e certificado novos.",
            "The signature uses an algorithm that is no longer safe or a key that is too short (such as SHA-1 or RSA under 2048 bits). Sign again with a new key and certificate.",
        ),
        SubIndication::TryLater => s(
            "暫時無法確認證書是否已被撤銷（缺少有效的撤銷清單）。請稍後再試，或請管理員更新撤銷清單。",
            "Não foi possível saber se o certificado foi revogado (falta uma lista de revogação válida). Tente mais tarde ou peça ao administrador que atualize as listas de revogação.",
            "Whether the certificate was revoked could not be established (no valid revocation list). Try again later, or ask an administrator to update the revocation lists.",
        ),
        SubIndication::RevokedNoPoe => s(
            "證書其後已被撤銷，而簽署時間未經證明。請以有效證書重新簽署，或提供可信的簽署時間證明。",
            "O certificado foi revogado mais tarde e a hora da assinatura não está provada. Assine de novo com um certificado válido ou apresente prova fiável da hora da assinatura.",
            "The certificate was revoked later and the signing time is not proven. Sign again with a valid certificate, or provide trusted proof of the signing time.",
        ),
        SubIndication::RevokedCaNoPoe => s(
            "發出證書的認證實體其後被撤銷，而簽署時間未經證明。請以有效證書重新簽署，或提供可信的簽署時間證明。",
            "A entidade que emitiu o certificado foi revogada mais tarde e a hora da assinatura não está provada. Assine de novo ou apresente prova fiável da hora.",
            "The certification entity that issued the certificate was revoked later and the signing time is not proven. Sign again, or provide trusted proof of the signing time.",
        ),
        SubIndication::NoSigningCertificateFound => s(
            "簽名所指的證書與附上的證書不符。請重新簽署，切勿更改簽名檔案。",
            "O certificado indicado na assinatura não corresponde ao certificado anexado. Assine de novo e não altere o ficheiro de assinatura.",
            "The certificate the signature refers to is not the one attached. Sign again and do not edit the signature file.",
        ),
        SubIndication::OutOfBoundsNoPoe => s(
            "證書已過期，而沒有證據證明簽名或時間戳記在證書有效期內已存在（證書到期前未加上存檔時間戳記）。須在證書到期前重新加蓋存檔時間戳記（carimbo evidence restamp）。",
            "O certificado já expirou e nada prova que a assinatura ou o selo temporal existia enquanto era válido (nenhum selo temporal de arquivo anterior à expiração). Volte a selar o pacote antes de os certificados expirarem (carimbo evidence restamp).",
            "The certificate has expired, and nothing proves the signature or time-stamp existed while it was valid (no archive time-stamp made before it expired). Re-stamp bundles before their certificates expire (carimbo evidence restamp).",
        ),
    }
}
