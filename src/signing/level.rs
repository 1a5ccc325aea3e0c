//! Signature levels on acts, and the service seal for `simple` acts.
//!
//! Law 5/2005 ranks signatures; a workflow step names the weakest it accepts, and a stronger
//! one always satisfies it (`SignatureLevel` is ordered). A `simple` act is a logged-in
//! person's recorded act: there is no personal key, so carimbo seals the payload with its own
//! service key, which keeps the record tamper-evident and verifiable offline like any other
//! signature. `verify_act` is what the workflow calls: it rebuilds the payload's bytes, checks
//! the JWS, the form-data hash and that the certificate names the person the act is
//! attributed to, and yields a `VerifiedSignature` only if the step's level is met.

use chrono::{DateTime, Utc};
use rustls_pki_types::CertificateDer;

use super::SigningError;
use super::jades::{JadesSignature, SignatureVerifier, Signer, VerifyOptions, apply_required_level};
use super::payload::{SigningPayload, data_hash};
use crate::pki::report::{Indication, SignatureLevel, SubIndication, ValidationReport, advice};

/// A signature whose report said TOTAL_PASSED at (at least) the level that was demanded.
/// Only `verify_act` and `VerifiedSignature::from_report` build one.
#[derive(Clone, Debug)]
pub struct VerifiedSignature {
    report: ValidationReport,
}

impl VerifiedSignature {
    /// Accept `report` for a step demanding `required`, or give back the (amended) report.
    // The report is the answer a person reads, so it is returned by value, not boxed.
    #[allow(clippy::result_large_err)]
    pub fn from_report(report: ValidationReport, required: SignatureLevel) -> Result<VerifiedSignature, ValidationReport> {
        let report = apply_required_level(report, required);
        if report.passed() { Ok(VerifiedSignature { report }) } else { Err(report) }
    }

    pub fn report(&self) -> &ValidationReport {
        &self.report
    }

    pub fn level(&self) -> SignatureLevel {
        self.report.achieved_level.unwrap_or(SignatureLevel::Simple)
    }
}

/// The service's own key and certificate, sealing `simple` acts.
pub struct ServiceSeal {
    signer: Signer,
    certificate: CertificateDer<'static>,
}

impl ServiceSeal {
    pub fn from_pem(key_pem: &[u8], chain_pem: &[u8]) -> Result<ServiceSeal, SigningError> {
        let chain = crate::pki::cert::parse_pem_certificates(chain_pem, "service certificate")?;
        let signer = Signer::from_pem(key_pem, chain_pem)?;
        Ok(ServiceSeal { signer, certificate: chain[0].clone() })
    }

    /// The certificate to give `SignatureVerifier::with_service_seal`.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// Seal an act recorded at `at`.
    pub fn seal(&self, payload: &SigningPayload, at: DateTime<Utc>) -> Result<JadesSignature, SigningError> {
        self.signer.sign(&payload.canonical_bytes()?, at)
    }

    /// Seal other canonical bytes at `at` (an evidence bundle's seal payload).
    pub fn seal_bytes(&self, bytes: &[u8], at: DateTime<Utc>) -> Result<JadesSignature, SigningError> {
        self.signer.sign(bytes, at)
    }
}

/// Verify the signature of one act.
///
/// `data` is the form data the case holds; when given, its hash must be the payload's
/// `data_hash` (else HASH_FAILURE: the data changed after signing). The signing certificate
/// must name `payload.signer` (unless it is the service seal of a `simple` act).
#[allow(clippy::result_large_err)] // see `VerifiedSignature::from_report`
pub fn verify_act(
    verifier: &SignatureVerifier,
    payload: &SigningPayload,
    data: Option<&serde_json::Value>,
    jws: &[u8],
    required: SignatureLevel,
    opts: &VerifyOptions,
) -> Result<VerifiedSignature, ValidationReport> {
    let bytes = match payload.canonical_bytes() {
        Ok(b) => b,
        Err(e) => {
            return Err(ValidationReport::failed(Indication::TotalFailed, SubIndication::FormatFailure, e.to_string()));
        }
    };
    let mut report = verifier.verify(jws, &bytes, &VerifyOptions { required_level: None, ..*opts });
    if report.passed()
        && let Some(data) = data
    {
        match data_hash(data) {
            Ok(h) if h == payload.data_hash => {}
            Ok(h) => {
                downgrade(
                    &mut report,
                    Indication::TotalFailed,
                    SubIndication::HashFailure,
                    format!("the form data hashes to {h}, but the signature covers {}", payload.data_hash),
                );
            }
            Err(e) => downgrade(&mut report, Indication::TotalFailed, SubIndication::FormatFailure, e.to_string()),
        }
    }
    if report.passed() && report.achieved_level != Some(SignatureLevel::Simple) {
        let named = report.signer.as_ref().and_then(|s| s.person_id.clone());
        if named.as_deref() != Some(payload.signer.as_str()) {
            downgrade(
                &mut report,
                Indication::Indeterminate,
                SubIndication::SigConstraintsFailure,
                format!("the act is attributed to `{}` but the certificate names `{}`", payload.signer, named.unwrap_or_else(|| "nobody".into())),
            );
        }
    }
    VerifiedSignature::from_report(report, required)
}

fn downgrade(report: &mut ValidationReport, indication: Indication, sub: SubIndication, detail: String) {
    report.indication = indication;
    report.sub_indication = Some(sub);
    report.code = Some(sub.code().into());
    report.achieved_level = None;
    report.detail = detail;
    report.message = advice(sub);
}
