//! Signatures on acts: the signing payload, JAdES baseline-B creation and verification, and
//! the three levels (`simple`, `advanced`, `qualified`) a workflow step can demand.
//!
//! `payload` says what is signed (RFC 8785 canonical JSON binding case, step, data hash and
//! the previous event), `jades` makes and checks the JWS and produces the ETSI-style
//! `ValidationReport` (with `pki` doing the certificate work), `level` turns a report into a
//! `VerifiedSignature` only when the step's level is met, and seals `simple` acts with the
//! service's own key. The `carimbo sign` / `verify-signature` / `pki demo` / `trust` commands
//! that read files and print are the edge's (`crate::cli`). Nothing here reads a file or the
//! clock: the time to judge at (`VerifyOptions::now`) comes from the caller.

pub mod activation;
pub mod jades;
pub mod level;
pub mod payload;
pub mod timestamp;

pub use jades::{DeviceRule, JadesSignature, JwsAlgorithm, PreparedJades, SignatureVerifier, Signer, SigningKey, VerifyOptions};
pub use level::{ServiceSeal, VerifiedSignature, verify_act};
pub use payload::{FormRef, SigningPayload, data_hash};

/// Code of the report given when a valid signature is below the level a step demands.
pub const LEVEL_NOT_MET_CODE: &str = "CARIMBO-E0534";

/// Errors making a signature (verification never errors: it returns a report).
/// Codes `CARIMBO-E0510`–`E0519`, explained in `docs/errors-signing.md`.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("CARIMBO-E0510: cannot read {path}: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("CARIMBO-E0511: the private key cannot be used: {reason}")]
    UnsupportedKey { reason: String },
    #[error("CARIMBO-E0512: the key and the certificate do not belong together: {reason}")]
    KeyCertificateMismatch { reason: String },
    #[error("CARIMBO-E0513: the signing payload is invalid: {reason}")]
    BadPayload { reason: String },
    #[error("CARIMBO-E0514: the payload cannot be canonicalised (RFC 8785): {reason}")]
    Canonicalization { reason: String },
    #[error("CARIMBO-E0515: the signing operation failed inside the crypto library")]
    SigningFailed,
    #[error("CARIMBO-E0516: invalid argument: {reason}")]
    BadArgument { reason: String },
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
}
