//! Public-key infrastructure for document signatures: certificates, the trust list, path
//! validation at the signing time, CRLs judged by revocation date, and the ETSI-style
//! validation report.
//!
//! This module knows nothing about forms, cases or JWS: it answers "was this certificate
//! chain good for signing at that time, and at which level?" and never reads the clock
//! (times are passed in). `signing` builds on it; the one exception is `history`, the trust
//! list's signed entries, whose JWS it verifies with `signing`'s verifier. `demo` generates the demo PKI in
//! `seeds/pki/` (`carimbo pki demo`).

pub mod cert;
pub mod crl;
pub mod demo;
pub mod history;
pub mod path;
pub mod profile;
pub mod report;
pub mod trust;
pub mod tsa_trust;

pub use cert::CertFacts;
pub use crl::CrlSet;
pub use path::{CertificateValidator, ChainFailure, ChainVerdict, SigningTime, ValidatedChain, ValidationPolicy};
pub use report::{Indication, SignatureLevel, SubIndication, ValidationReport};
pub use trust::TrustList;

/// Errors loading PKI material (certificates, trust list, CRLs) or generating the demo PKI.
/// Codes `CARIMBO-E0501`–`E0509`, explained in `docs/errors-signing.md`.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("CARIMBO-E0501: cannot read {path}: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("CARIMBO-E0502: {path} holds no usable certificate: {reason}")]
    BadCertificateFile { path: String, reason: String },
    #[error("CARIMBO-E0503: trust list {path} is invalid: {reason}")]
    BadTrustList { path: String, reason: String },
    #[error("CARIMBO-E0504: CRL file {path} is invalid: {reason}")]
    BadCrl { path: String, reason: String },
    #[error("CARIMBO-E0505: cannot generate the demo PKI: {reason}")]
    DemoGeneration { reason: String },
    #[error("CARIMBO-E0506: people file {path} is invalid: {reason}")]
    BadPeopleFile { path: String, reason: String },
    #[error("CARIMBO-E0507: cannot write {path}: {source}")]
    Unwritable {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
