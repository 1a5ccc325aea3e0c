//! JAdES baseline-B signatures (ETSI TS 119 182-1): creation and verification.
//!
//! A signature is a JWS (RFC 7515) in flattened JSON serialization with a *detached* payload
//! (RFC 7515 appendix F): `{"protected": "...", "signature": "..."}`; the payload is the
//! RFC 8785 signing payload, which the verifier rebuilds from the case. The protected header
//! carries `alg`, `x5c` (signing certificate first, then its CA certificates), `x5t#S256`
//! (the signing-certificate reference JAdES requires) and `iat` (the claimed signing time;
//! the older `sigT` is accepted when verifying). Any JOSE library can verify it, so an
//! auditor is never locked into carimbo.
//!
//! Verification is bounded work whatever the input: sizes are checked before decoding, the
//! chain length is capped, certificates are size-capped before parsing, and webpki's path
//! search has its own budget. A validated chain is cached by its `x5c` text, so verifying many
//! signatures of the same person costs little more than the signature check itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::SigningError;
use super::timestamp::{IAT_AFTER_STAMP, IAT_BEFORE_STAMP, TimeStampVerifier, VerifiedTimeStamp, codes as stamp_codes, read_sig_tst, sig_tst_input};
use crate::pki::cert::{CertFacts, KeyKind, check_key_strength, sha256};
use crate::pki::path::{CertificateValidator, MAX_CHAIN_CERTIFICATES, SigningTime, ValidatedChain};
use crate::pki::report::{Indication, SignatureLevel, SignerInfo, SubIndication, TimeSource, ValidationReport, level_not_met_sentence, passed_sentence};

/// Largest JWS document accepted, in bytes.
pub const MAX_JWS_BYTES: usize = 256 * 1024;
/// Largest protected header accepted (base64url text).
pub const MAX_PROTECTED_BYTES: usize = 96 * 1024;
/// How far a claimed signing time may lie after the trusted (or current) time.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// The JWS algorithms carimbo signs and verifies with (RFC 7518, RFC 8037).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwsAlgorithm {
    ES256,
    ES384,
    PS256,
    RS256,
    EdDSA,
}

impl JwsAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            JwsAlgorithm::ES256 => "ES256",
            JwsAlgorithm::ES384 => "ES384",
            JwsAlgorithm::PS256 => "PS256",
            JwsAlgorithm::RS256 => "RS256",
            JwsAlgorithm::EdDSA => "EdDSA",
        }
    }

    /// Read a header `alg`; the error is the report to give.
    fn parse(name: &str) -> Result<JwsAlgorithm, Box<ValidationReport>> {
        use Indication::*;
        use SubIndication::*;
        Ok(match name {
            "ES256" => JwsAlgorithm::ES256,
            "ES384" => JwsAlgorithm::ES384,
            "PS256" => JwsAlgorithm::PS256,
            "RS256" => JwsAlgorithm::RS256,
            "EdDSA" => JwsAlgorithm::EdDSA,
            "none" => {
                return Err(fail(TotalFailed, FormatFailure, "`alg: none`: the JWS is not signed"));
            }
            "RS1" | "ES1" | "PS1" => {
                return Err(fail(Indeterminate, CryptoConstraintsFailure, format!("`alg: {name}` uses SHA-1, which is refused")));
            }
            other => {
                return Err(fail(
                    Indeterminate,
                    CryptoConstraintsFailure,
                    format!("`alg: {other}` is not allowed (allowed: ES256, ES384, PS256, RS256, EdDSA)"),
                ));
            }
        })
    }

    fn fits(self, key: &KeyKind) -> bool {
        matches!(
            (self, key),
            (JwsAlgorithm::ES256, KeyKind::EcP256)
                | (JwsAlgorithm::ES384, KeyKind::EcP384)
                | (JwsAlgorithm::PS256, KeyKind::Rsa { .. })
                | (JwsAlgorithm::RS256, KeyKind::Rsa { .. })
                | (JwsAlgorithm::EdDSA, KeyKind::Ed25519)
        )
    }

    fn verification(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            JwsAlgorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            JwsAlgorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
            JwsAlgorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            JwsAlgorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            JwsAlgorithm::EdDSA => &signature::ED25519,
        }
    }

    /// Fixed signature length, where the algorithm has one.
    fn signature_len(self) -> Option<usize> {
        match self {
            JwsAlgorithm::ES256 | JwsAlgorithm::EdDSA => Some(64),
            JwsAlgorithm::ES384 => Some(96),
            _ => None,
        }
    }
}

enum KeyInner {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private signing key loaded from PKCS#8, with the JWS algorithm it signs with.
pub struct SigningKey {
    inner: KeyInner,
    alg: JwsAlgorithm,
}

impl SigningKey {
    /// Load a PKCS#8 key (PEM `PRIVATE KEY`): P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA,
    /// RSA (≥ 2048 bits) → PS256 (use [`SigningKey::with_algorithm`] for RS256).
    pub fn from_pkcs8_pem(pem: &[u8]) -> Result<SigningKey, SigningError> {
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem)
            .map_err(|e| SigningError::UnsupportedKey { reason: format!("not a PKCS#8 `PRIVATE KEY` PEM: {e}") })?;
        SigningKey::from_pkcs8_der(der.secret_pkcs8_der())
    }

    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, SigningError> {
        let rng = SystemRandom::new();
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
            return Ok(SigningKey { inner: KeyInner::Ecdsa(k), alg: JwsAlgorithm::ES256 });
        }
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der, &rng) {
            return Ok(SigningKey { inner: KeyInner::Ecdsa(k), alg: JwsAlgorithm::ES384 });
        }
        if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(SigningKey { inner: KeyInner::Ed25519(k), alg: JwsAlgorithm::EdDSA });
        }
        match RsaKeyPair::from_pkcs8(der) {
            Ok(k) => Ok(SigningKey { inner: KeyInner::Rsa(k), alg: JwsAlgorithm::PS256 }),
            Err(e) => Err(SigningError::UnsupportedKey { reason: format!("not an ECDSA P-256/P-384, Ed25519 or RSA (2048–8192 bits) key: {e}") }),
        }
    }

    /// Choose RS256 instead of PS256 for an RSA key (other keys have one algorithm only).
    pub fn with_algorithm(mut self, alg: JwsAlgorithm) -> Result<SigningKey, SigningError> {
        let ok = matches!((&self.inner, alg), (KeyInner::Rsa(_), JwsAlgorithm::PS256 | JwsAlgorithm::RS256)) || self.alg == alg;
        if !ok {
            return Err(SigningError::UnsupportedKey { reason: format!("this key cannot sign with {}", alg.name()) });
        }
        self.alg = alg;
        Ok(self)
    }

    pub fn algorithm(&self) -> JwsAlgorithm {
        self.alg
    }

    /// The raw public key, as in the certificate's subjectPublicKey.
    pub fn public_key(&self) -> &[u8] {
        match &self.inner {
            KeyInner::Ecdsa(k) => k.public_key().as_ref(),
            KeyInner::Rsa(k) => k.public_key().as_ref(),
            KeyInner::Ed25519(k) => k.public_key().as_ref(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let rng = SystemRandom::new();
        let failed = |_| SigningError::SigningFailed;
        match &self.inner {
            KeyInner::Ecdsa(k) => Ok(k.sign(&rng, message).map_err(failed)?.as_ref().to_vec()),
            KeyInner::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            KeyInner::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                let padding: &dyn signature::RsaEncoding = match self.alg {
                    JwsAlgorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                    _ => &signature::RSA_PSS_SHA256,
                };
                k.sign(padding, &rng, message, &mut sig).map_err(failed)?;
                Ok(sig)
            }
        }
    }
}

/// A JAdES baseline-B signature with detached payload, as stored and exchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JadesSignature {
    pub protected: String,
    pub signature: String,
}

impl JadesSignature {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// A key with its certificate chain, ready to sign.
pub struct Signer {
    key: SigningKey,
    x5c: Vec<String>,
    x5t_s256: String,
}

impl Signer {
    /// `chain` is the signing certificate first, then its CA certificates (root optional).
    pub fn new(key: SigningKey, chain: &[CertificateDer<'_>]) -> Result<Signer, SigningError> {
        let leaf = chain.first().ok_or(SigningError::KeyCertificateMismatch { reason: "the certificate file holds no certificate".into() })?;
        let facts = CertFacts::from_der(leaf).map_err(|reason| SigningError::KeyCertificateMismatch { reason })?;
        if facts.public_key != key.public_key() {
            return Err(SigningError::KeyCertificateMismatch { reason: format!("the private key is not the key of certificate `{}`", facts.subject) });
        }
        Ok(Signer { key, x5c: chain.iter().map(|c| STANDARD.encode(c.as_ref())).collect(), x5t_s256: URL_SAFE_NO_PAD.encode(facts.sha256) })
    }

    /// Load a PKCS#8 PEM key and a PEM chain.
    pub fn from_pem(key_pem: &[u8], chain_pem: &[u8]) -> Result<Signer, SigningError> {
        let key = SigningKey::from_pkcs8_pem(key_pem)?;
        let chain = crate::pki::cert::parse_pem_certificates(chain_pem, "certificate chain")
            .map_err(|e| SigningError::KeyCertificateMismatch { reason: e.to_string() })?;
        Signer::new(key, &chain)
    }

    pub fn algorithm(&self) -> JwsAlgorithm {
        self.key.alg
    }

    /// Sign `payload` (the canonical signing-payload bytes), claiming signing time `iat`.
    pub fn sign(&self, payload: &[u8], iat: DateTime<Utc>) -> Result<JadesSignature, SigningError> {
        let prepared = PreparedJades::with_header(self.key.alg, &self.x5c, &self.x5t_s256, payload, iat);
        let sig = self.key.sign(prepared.signing_input.as_bytes())?;
        Ok(prepared.finish(&sig))
    }
}

/// A JAdES signature whose value is made elsewhere (a key inside an HSM): the protected header
/// (`alg`, `iat`, `x5c`, `x5t#S256`, as `Signer` writes it) and the JWS signing input to sign.
#[derive(Clone, Debug)]
pub struct PreparedJades {
    pub protected: String,
    pub signing_input: String,
}

impl PreparedJades {
    /// The header and signing input for `chain` (signing certificate first) over `payload`.
    pub fn new(alg: JwsAlgorithm, chain: &[CertificateDer<'_>], payload: &[u8], iat: DateTime<Utc>) -> Result<PreparedJades, SigningError> {
        let leaf = chain.first().ok_or(SigningError::KeyCertificateMismatch { reason: "no signing certificate".into() })?;
        let x5c: Vec<String> = chain.iter().map(|c| STANDARD.encode(c.as_ref())).collect();
        Ok(PreparedJades::with_header(alg, &x5c, &URL_SAFE_NO_PAD.encode(sha256(leaf.as_ref())), payload, iat))
    }

    fn with_header(alg: JwsAlgorithm, x5c: &[String], x5t_s256: &str, payload: &[u8], iat: DateTime<Utc>) -> PreparedJades {
        let header = serde_json::json!({
            "alg": alg.name(),
            "iat": iat.timestamp(),
            "x5c": x5c,
            "x5t#S256": x5t_s256,
        });
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let signing_input = signing_input(&protected, payload);
        PreparedJades { protected, signing_input }
    }

    /// The JWS with `signature` (the raw JWS signature value: r||s for ECDSA).
    pub fn finish(self, signature: &[u8]) -> JadesSignature {
        JadesSignature { protected: self.protected, signature: URL_SAFE_NO_PAD.encode(signature) }
    }
}

/// The reason for a JSON part of the signature that cannot be read; a repeated member name
/// carries its own code.
fn not_json(what: &str, e: &crate::json_strict::StrictJsonError) -> String {
    if e.is_duplicate() { format!("{what} repeats a member name: {e} [{}]", crate::json_strict::DUPLICATE_MEMBER) } else { format!("{what} is not JSON: {e}") }
}

fn signing_input(protected: &str, payload: &[u8]) -> String {
    let mut input = String::with_capacity(protected.len() + 1 + payload.len() * 4 / 3 + 4);
    input.push_str(protected);
    input.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut input);
    input
}

fn fail(indication: Indication, sub: SubIndication, detail: impl Into<String>) -> Box<ValidationReport> {
    Box::new(ValidationReport::failed(indication, sub, detail))
}

/// Options of one verification.
#[derive(Clone, Copy, Debug)]
pub struct VerifyOptions {
    /// A signing time the verifier trusts (the server's recorded event time, `--at`). Without
    /// it the signer's claimed time is used, and a later revocation cannot be excluded.
    pub trusted_time: Option<DateTime<Utc>>,
    /// The current time, to refuse claimed times in the future.
    pub now: DateTime<Utc>,
    /// The level the step demands, if any.
    pub required_level: Option<SignatureLevel>,
}

impl VerifyOptions {
    /// No trusted time and no demanded level, at `now` (the caller's clock: the core reads none).
    pub fn at(now: DateTime<Utc>) -> VerifyOptions {
        VerifyOptions { trusted_time: None, now, required_level: None }
    }
}

/// A chain validated once, kept for later signatures with the same `x5c`.
struct CachedChain {
    leaf_der: Vec<u8>,
    chain: ValidatedChain,
}

const CACHE_CAPACITY: usize = 4096;

/// Verifies JAdES signatures against a trust list and CRLs; holds the chain cache.
pub struct SignatureVerifier {
    validator: CertificateValidator,
    /// Signature time-stamps (JAdES B-T), judged against the same trust list and CRLs.
    stamps: TimeStampVerifier,
    service_seal: Option<[u8; 32]>,
    device_rule: DeviceRule,
    cache: Mutex<HashMap<[u8; 32], Arc<CachedChain>>>,
}

/// Whether `qualified` also needs the certificate to say the key is on a qualified
/// signature-creation device (QcSSCD, ETSI EN 319 412-5 §4.2.2), as Law 5/2005 asks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceRule {
    /// The law's rule: a certificate without QcSSCD (a key file) reaches `advanced` at most.
    #[default]
    Enforced,
    /// A demo without an HSM: a qualified certificate counts as qualified without QcSSCD, and
    /// every such report says "device rule relaxed for the demo".
    RelaxedForDemo,
}

impl DeviceRule {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceRule::Enforced => "enforced",
            DeviceRule::RelaxedForDemo => "relaxed-for-demo",
        }
    }

    /// The rule `as_str` names (`--device-rule` of `serve` and `verify`).
    pub fn parse(text: &str) -> Option<DeviceRule> {
        [DeviceRule::Enforced, DeviceRule::RelaxedForDemo].into_iter().find(|r| r.as_str() == text)
    }
}

/// The sentence a report carries when the device rule was relaxed for a signature.
pub const DEVICE_RULE_RELAXED_NOTE: &str = "device rule relaxed for the demo: the certificate does not say the key is on a qualified signature-creation device (QcSSCD 0.4.0.1862.1.4), and it was counted as qualified anyway";

/// The parts of a JWS that verification needs.
struct ParsedJws<'a> {
    protected: &'a str,
    signature: Vec<u8>,
    /// The signature value as it stands in the JWS: what a signature time-stamp covers.
    signature_b64: &'a str,
    header: Map<String, Value>,
    /// The unprotected header (flattened JSON only).
    unprotected: Option<&'a Map<String, Value>>,
}

impl SignatureVerifier {
    pub fn new(validator: CertificateValidator) -> SignatureVerifier {
        SignatureVerifier {
            stamps: TimeStampVerifier::new(validator.trust.clone(), validator.crls.clone()),
            validator,
            service_seal: None,
            device_rule: DeviceRule::Enforced,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Judges `qualified` with this device rule (enforced unless said otherwise).
    pub fn with_device_rule(mut self, rule: DeviceRule) -> SignatureVerifier {
        self.device_rule = rule;
        self
    }

    pub fn device_rule(&self) -> DeviceRule {
        self.device_rule
    }

    /// Signatures by this certificate are the service's seals of `simple` acts.
    pub fn with_service_seal(mut self, certificate: &CertificateDer<'_>) -> SignatureVerifier {
        self.service_seal = Some(sha256(certificate.as_ref()));
        self
    }

    pub fn validator(&self) -> &CertificateValidator {
        &self.validator
    }

    /// The verifier of signature time-stamps (RFC 3161 tokens).
    pub fn timestamps(&self) -> &TimeStampVerifier {
        &self.stamps
    }

    /// The signature time-stamp of `parsed`, verified, and the signer's claimed time checked
    /// against it; `None` for a signature without one (JAdES B-B).
    fn check_stamp(&self, parsed: &ParsedJws<'_>, claimed: DateTime<Utc>) -> Result<Option<VerifiedTimeStamp>, Box<ValidationReport>> {
        use Indication::*;
        use SubIndication::*;
        let stamp_fail = |indication, sub, code: &str, detail: String| {
            let mut r = fail(indication, sub, format!("signature time-stamp: {detail}"));
            r.code = Some(code.to_string());
            r
        };
        let token = read_sig_tst(parsed.unprotected).map_err(|why| stamp_fail(TotalFailed, FormatFailure, stamp_codes::ETSI_U_FORMAT, why))?;
        let Some(token) = token else {
            return Ok(None);
        };
        let stamp = self.stamps.verify(&token, sig_tst_input(parsed.signature_b64)).map_err(|f| stamp_fail(f.indication, f.sub, f.code, f.detail))?;
        if claimed > stamp.gen_time + IAT_AFTER_STAMP {
            return Err(stamp_fail(
                Indeterminate,
                SigConstraintsFailure,
                stamp_codes::IAT_AFTER_STAMP,
                format!(
                    "the claimed signing time {} is after the time-stamp's time {}: a signature cannot be signed after it was stamped",
                    rfc3339(claimed),
                    rfc3339(stamp.gen_time)
                ),
            ));
        }
        if claimed < stamp.gen_time - IAT_BEFORE_STAMP {
            return Err(stamp_fail(
                Indeterminate,
                SigConstraintsFailure,
                stamp_codes::IAT_LONG_BEFORE_STAMP,
                format!(
                    "the claimed signing time {} is more than {} minutes before the time-stamp's time {}: the stamp was not taken when the signature was made",
                    rfc3339(claimed),
                    IAT_BEFORE_STAMP.num_minutes(),
                    rfc3339(stamp.gen_time)
                ),
            ));
        }
        Ok(Some(stamp))
    }

    /// Verify `jws` (flattened JSON, or compact with empty payload part) over the detached
    /// `payload` bytes. Never panics, never errors: every outcome is a report.
    pub fn verify(&self, jws: &[u8], payload: &[u8], opts: &VerifyOptions) -> ValidationReport {
        let report = match self.verify_inner(jws, payload, opts) {
            Ok(report) => report,
            Err(report) => *report,
        };
        match opts.required_level {
            Some(required) => apply_required_level(report, required),
            None => report,
        }
    }

    /// The steps of a verification, in the order a failure is reported: the document, its
    /// header, the claimed and the trusted signing time, the certificate chain given, the
    /// signature value, then the chain at the signing time.
    fn verify_inner(&self, jws: &[u8], payload: &[u8], opts: &VerifyOptions) -> Result<ValidationReport, Box<ValidationReport>> {
        let outer: Value;
        let jws_text = jws_text(jws)?;
        let parsed = if jws_text.starts_with('{') {
            outer = crate::json_strict::from_str(jws_text)
                .map_err(|e| fail(Indication::TotalFailed, SubIndication::FormatFailure, not_json("the signature", &e)))?;
            parse_flattened(&outer, payload)?
        } else {
            parse_compact(jws_text, payload)?
        };
        let header = &parsed.header;
        let alg = check_header(header)?;
        // Claimed signing time: `iat` (current JAdES) or `sigT` (older JAdES), not in the future.
        let claimed = claimed_time(header)?;
        if claimed > opts.now + CLOCK_SKEW {
            let detail = format!("the claimed signing time {} is in the future", rfc3339(claimed));
            return Err(fail(Indication::Indeterminate, SubIndication::SigConstraintsFailure, detail));
        }
        // A signature time-stamp proves the signature existed at its `genTime`: the chain is
        // judged then (a later revocation or expiry does not matter), whatever else is trusted.
        let stamp = self.check_stamp(&parsed, claimed)?;
        let signing_time = signing_time(stamp.as_ref(), opts.trusted_time, claimed)?;

        // x5c and the signing-certificate reference.
        let x5c = x5c_of(header)?;
        let key = cache_key(&x5c);
        let cached = self.cache_get(&key);
        let decoded: Option<Vec<CertificateDer<'static>>> = match cached {
            Some(_) => None,
            None => Some(decode_x5c(&x5c)?),
        };
        let fresh_leaf;
        let (leaf_der, leaf): (&[u8], &CertFacts) = match (&cached, &decoded) {
            (Some(c), _) => (&c.leaf_der, c.chain.leaf()),
            (None, Some(certs)) => {
                fresh_leaf = CertFacts::from_der(&certs[0])
                    .map_err(|e| fail(Indication::TotalFailed, SubIndication::FormatFailure, format!("signing certificate: {e}")))?;
                (certs[0].as_ref(), &fresh_leaf)
            }
            (None, None) => {
                return Err(fail(Indication::Indeterminate, SubIndication::NoSigningCertificateFound, "no signing certificate was decoded"));
            }
        };
        check_certificate_reference(header, leaf_der, leaf)?;
        check_signature_value(alg, leaf, &parsed, payload)?;

        // The chain, at the signing time.
        let failure = |f| chain_failure_report(f, alg, leaf, signing_time, claimed);
        let chain = self.chain_at(key, cached.clone(), decoded, &x5c, signing_time.at).map_err(failure)?;
        let verdict = self.validator.evaluate(&chain.chain, signing_time).map_err(failure)?;
        let (achieved, notes) = self.level_of(leaf, verdict);
        Ok(ValidationReport {
            indication: Indication::TotalPassed,
            sub_indication: None,
            code: None,
            achieved_level: Some(achieved),
            required_level: None,
            algorithm: Some(alg.name().into()),
            signer: Some(signer_info(leaf)),
            chain: chain.chain.elements(),
            signing_time: Some(signing_time.at),
            time_source: Some(if stamp.is_some() { TimeSource::TimeStamp } else { time_source(signing_time) }),
            claimed_signing_time: Some(claimed),
            timestamp: stamp,
            detail: format!("{} signature by `{}` verified; chain valid and unrevoked at {}", alg.name(), leaf.subject, rfc3339(signing_time.at)),
            message: passed_sentence(achieved),
            notes,
        })
    }

    /// The chain validated at `at`: the cached one while `at` is in its validity, otherwise
    /// analysed now and cached.
    fn chain_at(
        &self,
        key: [u8; 32],
        cached: Option<Arc<CachedChain>>,
        decoded: Option<Vec<CertificateDer<'static>>>,
        x5c: &[&str],
        at: DateTime<Utc>,
    ) -> Result<Arc<CachedChain>, crate::pki::ChainFailure> {
        if let Some(c) = cached.filter(|c| at >= c.chain.valid_from && at <= c.chain.valid_until) {
            return Ok(c);
        }
        let certs = match decoded {
            Some(certs) => certs,
            None => x5c.iter().filter_map(|c| STANDARD.decode(c).ok().map(CertificateDer::from)).collect(),
        };
        let analysed = self.validator.analyse(&certs, at)?;
        let entry = Arc::new(CachedChain { leaf_der: certs[0].as_ref().to_vec(), chain: analysed });
        self.cache_put(key, entry.clone());
        Ok(entry)
    }

    /// The level a passed chain achieves (the service seal's is `simple`) and the notes, with
    /// why it is not qualified when it is advanced.
    fn level_of(&self, leaf: &CertFacts, verdict: crate::pki::path::ChainVerdict) -> (SignatureLevel, Vec<String>) {
        let mut notes = verdict.notes;
        let mut why_not = verdict.not_qualified_because;
        let mut qualified = verdict.qualified;
        if qualified && leaf.qc_sscd {
            notes.push("on a qualified signature-creation device: the certificate's QcSSCD statement (0.4.0.1862.1.4) says so".into());
        } else if let Some(member) = verdict.qscd_by_trust_list.as_deref().filter(|_| qualified) {
            notes.push(format!(
                "on a qualified signature-creation device: the trust list says every certificate of its issuer `{member}` is (the certificate itself has no QcSSCD)"
            ));
        } else if qualified {
            match self.device_rule {
                DeviceRule::Enforced => {
                    qualified = false;
                    why_not.push(
                        "the certificate does not say the key is on a qualified signature-creation device (QcSSCD 0.4.0.1862.1.4): a key file reaches advanced at most"
                            .into(),
                    );
                }
                DeviceRule::RelaxedForDemo => notes.push(DEVICE_RULE_RELAXED_NOTE.into()),
            }
        }
        let achieved = if self.service_seal == Some(leaf.sha256) {
            SignatureLevel::Simple
        } else if qualified {
            SignatureLevel::Qualified
        } else {
            SignatureLevel::Advanced
        };
        if achieved == SignatureLevel::Advanced {
            notes.push(format!("not qualified: {}", why_not.join("; ")));
        }
        (achieved, notes)
    }

    fn cache_get(&self, key: &[u8; 32]) -> Option<Arc<CachedChain>> {
        self.cache.lock().ok().and_then(|c| c.get(key).cloned())
    }

    fn cache_put(&self, key: [u8; 32], entry: Arc<CachedChain>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(key, entry);
        }
    }
}

/// Refuse a valid signature whose level is below the step's demand.
pub fn apply_required_level(mut report: ValidationReport, required: SignatureLevel) -> ValidationReport {
    report.required_level = Some(required);
    if let (true, Some(achieved)) = (report.passed(), report.achieved_level)
        && !achieved.satisfies(required)
    {
        report.indication = Indication::Indeterminate;
        report.sub_indication = Some(SubIndication::SigConstraintsFailure);
        report.code = Some(super::LEVEL_NOT_MET_CODE.into());
        report.detail = format!("the step requires a {} signature; this one is {} ({})", required.as_str(), achieved.as_str(), report.notes.join("; "));
        report.message = level_not_met_sentence(achieved, required);
    }
    report
}

/// The signature document as text, within the size limit.
fn jws_text(jws: &[u8]) -> Result<&str, Box<ValidationReport>> {
    use Indication::*;
    use SubIndication::*;
    if jws.len() > MAX_JWS_BYTES {
        return Err(fail(TotalFailed, FormatFailure, format!("the signature document has {} bytes; at most {MAX_JWS_BYTES} are accepted", jws.len())));
    }
    Ok(std::str::from_utf8(jws).map_err(|_| fail(TotalFailed, FormatFailure, "the signature is not UTF-8 text"))?.trim())
}

/// The protected header's `alg`, `b64`, `crit` and `x5t` rules; the algorithm it names.
fn check_header(header: &Map<String, Value>) -> Result<JwsAlgorithm, Box<ValidationReport>> {
    use Indication::*;
    use SubIndication::*;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => JwsAlgorithm::parse(a)?,
        _ => {
            return Err(fail(TotalFailed, FormatFailure, "the protected header has no `alg`"));
        }
    };
    if header.get("b64").is_some_and(|v| v != &Value::Bool(true)) {
        return Err(fail(TotalFailed, FormatFailure, "unencoded payloads (`b64: false`, RFC 7797) are not supported"));
    }
    if let Some(crit) = header.get("crit") {
        let Some(list) = crit.as_array().filter(|l| !l.is_empty()) else {
            return Err(fail(TotalFailed, FormatFailure, "`crit` must be a non-empty array"));
        };
        for name in list {
            let Some(name) = name.as_str() else {
                return Err(fail(TotalFailed, FormatFailure, "`crit` must list names"));
            };
            if !matches!(name, "sigT" | "iat") || !header.contains_key(name) {
                return Err(fail(TotalFailed, FormatFailure, format!("critical header parameter `{name}` is not understood or absent")));
            }
        }
    }
    if header.contains_key("x5t") {
        return Err(fail(Indeterminate, CryptoConstraintsFailure, "`x5t` references the certificate by SHA-1, which JAdES and carimbo refuse"));
    }
    Ok(alg)
}

/// The time the chain is judged at: a stamp's `genTime`, else the trusted time (which the
/// claimed time may not follow), else the signer's claim (untrusted).
fn signing_time(stamp: Option<&VerifiedTimeStamp>, trusted_time: Option<DateTime<Utc>>, claimed: DateTime<Utc>) -> Result<SigningTime, Box<ValidationReport>> {
    Ok(match (stamp, trusted_time) {
        (Some(stamp), _) => SigningTime { at: stamp.gen_time, trusted: true },
        (None, Some(trusted)) => {
            if claimed > trusted + CLOCK_SKEW {
                return Err(fail(
                    Indication::Indeterminate,
                    SubIndication::SigConstraintsFailure,
                    format!("the claimed signing time {} is after the trusted time {} the signature was received", rfc3339(claimed), rfc3339(trusted)),
                ));
            }
            SigningTime { at: trusted, trusted: true }
        }
        (None, None) => SigningTime { at: claimed, trusted: false },
    })
}

/// The `x5c` chain of the header (base64 strings, within the limit).
fn x5c_of(header: &Map<String, Value>) -> Result<Vec<&str>, Box<ValidationReport>> {
    use Indication::*;
    use SubIndication::*;
    match header.get("x5c") {
        Some(Value::Array(items)) if !items.is_empty() => {
            if items.len() > MAX_CHAIN_CERTIFICATES {
                return Err(fail(TotalFailed, FormatFailure, format!("`x5c` has {} certificates; at most {MAX_CHAIN_CERTIFICATES} are accepted", items.len())));
            }
            items.iter().map(|v| v.as_str()).collect::<Option<Vec<_>>>().ok_or_else(|| fail(TotalFailed, FormatFailure, "`x5c` must hold base64 strings"))
        }
        _ => Err(fail(Indeterminate, NoSigningCertificateFound, "the protected header has no `x5c` certificate chain")),
    }
}

/// The certificates of `x5c`, decoded.
fn decode_x5c(x5c: &[&str]) -> Result<Vec<CertificateDer<'static>>, Box<ValidationReport>> {
    x5c.iter()
        .map(|c| {
            STANDARD
                .decode(c)
                .map(CertificateDer::from)
                .map_err(|e| fail(Indication::TotalFailed, SubIndication::FormatFailure, format!("an `x5c` entry is not base64: {e}")))
        })
        .collect()
}

/// The signature value: a strong enough key that fits `alg`, the right length, and a
/// signature that verifies over the signing input with the signing certificate's key.
fn check_signature_value(alg: JwsAlgorithm, leaf: &CertFacts, parsed: &ParsedJws<'_>, payload: &[u8]) -> Result<(), Box<ValidationReport>> {
    use Indication::*;
    use SubIndication::*;
    check_key_strength(&leaf.key).map_err(|e| fail(Indeterminate, CryptoConstraintsFailure, format!("signing key: {e}")))?;
    if !alg.fits(&leaf.key) {
        return Err(fail(TotalFailed, SigCryptoFailure, format!("`alg: {}` does not fit the certificate's {} key", alg.name(), leaf.key.describe())));
    }
    if let Some(len) = alg.signature_len()
        && parsed.signature.len() != len
    {
        return Err(fail(TotalFailed, FormatFailure, format!("a {} signature has {len} bytes, this one {}", alg.name(), parsed.signature.len())));
    }
    let input = signing_input(parsed.protected, payload);
    signature::UnparsedPublicKey::new(alg.verification(), &leaf.public_key)
        .verify(input.as_bytes(), &parsed.signature)
        .map_err(|_| fail(TotalFailed, SigCryptoFailure, "the signature value does not verify over this payload with the signing certificate's key"))
}

fn parse_flattened<'a>(outer: &'a Value, payload: &[u8]) -> Result<ParsedJws<'a>, Box<ValidationReport>> {
    use Indication::*;
    use SubIndication::*;
    let Some(obj) = outer.as_object() else {
        return Err(fail(TotalFailed, FormatFailure, "the signature is not a JSON object"));
    };
    if obj.contains_key("signatures") {
        return Err(fail(TotalFailed, FormatFailure, "general JSON serialization is not supported; use the flattened form"));
    }
    let protected = obj.get("protected").and_then(Value::as_str).ok_or_else(|| fail(TotalFailed, FormatFailure, "the JWS has no `protected` header"))?;
    let signature = obj.get("signature").and_then(Value::as_str).ok_or_else(|| fail(TotalFailed, FormatFailure, "the JWS has no `signature`"))?;
    if let Some(p) = obj.get("payload") {
        let matches = p.as_str().is_some_and(|p| p.is_empty() || p == URL_SAFE_NO_PAD.encode(payload));
        if !matches {
            return Err(fail(TotalFailed, FormatFailure, "the JWS carries a payload other than the one being verified"));
        }
    }
    let mut unprotected_header = None;
    if let Some(unprotected) = obj.get("header") {
        let Some(unprotected) = unprotected.as_object() else {
            return Err(fail(TotalFailed, FormatFailure, "the unprotected `header` is not an object"));
        };
        for name in ["alg", "x5c", "x5t#S256", "x5t#o", "sigX5ts", "iat", "sigT", "crit", "b64"] {
            if unprotected.contains_key(name) {
                return Err(fail(TotalFailed, FormatFailure, format!("`{name}` must be in the protected header, not the unprotected one")));
            }
        }
        unprotected_header = Some(unprotected);
    }
    let mut parsed = finish_parse(protected, signature)?;
    parsed.unprotected = unprotected_header;
    Ok(parsed)
}

fn parse_compact<'a>(text: &'a str, payload: &[u8]) -> Result<ParsedJws<'a>, Box<ValidationReport>> {
    use Indication::*;
    use SubIndication::*;
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 3 {
        return Err(fail(TotalFailed, FormatFailure, "the signature is neither JWS JSON nor compact `header..signature`"));
    }
    if !parts[1].is_empty() && parts[1] != URL_SAFE_NO_PAD.encode(payload) {
        return Err(fail(TotalFailed, FormatFailure, "the JWS carries a payload other than the one being verified"));
    }
    finish_parse(parts[0], parts[2])
}

fn finish_parse<'a>(protected: &'a str, signature: &'a str) -> Result<ParsedJws<'a>, Box<ValidationReport>> {
    use Indication::*;
    use SubIndication::*;
    if protected.len() > MAX_PROTECTED_BYTES {
        return Err(fail(
            TotalFailed,
            FormatFailure,
            format!("the protected header has {} bytes; at most {MAX_PROTECTED_BYTES} are accepted", protected.len()),
        ));
    }
    let header_bytes =
        URL_SAFE_NO_PAD.decode(protected).map_err(|e| fail(TotalFailed, FormatFailure, format!("the protected header is not base64url: {e}")))?;
    // A repeated member ("alg":"none","alg":"ES256") is refused: RFC 7515 §4 lets a JWS
    // parser refuse it, and two libraries keeping different copies would read two headers.
    let header: Map<String, Value> = crate::json_strict::from_slice(&header_bytes).map_err(|e| {
        fail(
            TotalFailed,
            FormatFailure,
            match e {
                crate::json_strict::StrictJsonError::Json(e) => format!("the protected header is not a JSON object: {e}"),
                duplicate => not_json("the protected header", &duplicate),
            },
        )
    })?;
    let signature_bytes =
        URL_SAFE_NO_PAD.decode(signature).map_err(|e| fail(TotalFailed, FormatFailure, format!("the signature value is not base64url: {e}")))?;
    Ok(ParsedJws { protected, signature: signature_bytes, signature_b64: signature, header, unprotected: None })
}

fn claimed_time(header: &Map<String, Value>) -> Result<DateTime<Utc>, Box<ValidationReport>> {
    use Indication::*;
    use SubIndication::*;
    let iat = match header.get("iat") {
        None => None,
        Some(v) => Some(
            v.as_i64().and_then(|s| DateTime::from_timestamp(s, 0)).ok_or_else(|| fail(TotalFailed, FormatFailure, "`iat` must be an integer NumericDate"))?,
        ),
    };
    let sig_t = match header.get("sigT") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| fail(TotalFailed, FormatFailure, "`sigT` must be an RFC 3339 UTC time"))?,
        ),
    };
    match (iat, sig_t) {
        (Some(a), Some(b)) if a != b => Err(fail(TotalFailed, FormatFailure, "`iat` and `sigT` disagree")),
        (Some(t), _) | (None, Some(t)) => Ok(t),
        (None, None) => Err(fail(TotalFailed, FormatFailure, "the protected header has no claimed signing time (`iat` or `sigT`)")),
    }
}

/// JAdES requires exactly one signing-certificate reference: `x5t#S256`, `x5t#o` or `sigX5ts`.
fn check_certificate_reference(header: &Map<String, Value>, leaf_der: &[u8], leaf: &CertFacts) -> Result<(), Box<ValidationReport>> {
    use Indication::*;
    use SubIndication::*;
    let present: Vec<&str> = ["x5t#S256", "x5t#o", "sigX5ts"].into_iter().filter(|k| header.contains_key(*k)).collect();
    if present.len() != 1 {
        return Err(fail(
            Indeterminate,
            NoSigningCertificateFound,
            format!(
                "exactly one of `x5t#S256`, `x5t#o`, `sigX5ts` must reference the signing certificate; found {}",
                if present.is_empty() { "none".to_string() } else { present.join(", ") }
            ),
        ));
    }
    let matches = match present[0] {
        "x5t#S256" => header["x5t#S256"].as_str() == Some(URL_SAFE_NO_PAD.encode(leaf.sha256).as_str()),
        "x5t#o" => digest_reference_matches(&header["x5t#o"], leaf_der),
        _ => header["sigX5ts"].as_array().and_then(|a| a.first()).is_some_and(|r| digest_reference_matches(r, leaf_der)),
    };
    if matches {
        Ok(())
    } else {
        Err(fail(Indeterminate, NoSigningCertificateFound, format!("`{}` does not reference the first certificate of `x5c`", present[0])))
    }
}

/// `{"digAlg": "S256" | "S384" | "S512", "digVal": base64url}` (TS 119 182-1 §5.2.2).
fn digest_reference_matches(reference: &Value, der: &[u8]) -> bool {
    let alg = match reference.get("digAlg").and_then(Value::as_str) {
        Some("S256") => &ring::digest::SHA256,
        Some("S384") => &ring::digest::SHA384,
        Some("S512") => &ring::digest::SHA512,
        _ => return false,
    };
    let want = URL_SAFE_NO_PAD.encode(ring::digest::digest(alg, der));
    reference.get("digVal").and_then(Value::as_str) == Some(want.as_str())
}

fn cache_key(x5c: &[&str]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for c in x5c {
        ctx.update(c.as_bytes());
        ctx.update(b",");
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

fn signer_info(leaf: &CertFacts) -> SignerInfo {
    SignerInfo {
        person_id: leaf.person_id.clone(),
        common_name: leaf.common_name.clone(),
        subject: leaf.subject.clone(),
        issuer: leaf.issuer.clone(),
        serial: leaf.serial_hex(),
        key: leaf.key.describe(),
    }
}

fn time_source(t: SigningTime) -> TimeSource {
    if t.trusted { TimeSource::Trusted } else { TimeSource::Claimed }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn chain_failure_report(f: crate::pki::ChainFailure, alg: JwsAlgorithm, leaf: &CertFacts, t: SigningTime, claimed: DateTime<Utc>) -> Box<ValidationReport> {
    let mut report = ValidationReport::failed(f.indication, f.sub, f.detail);
    report.algorithm = Some(alg.name().into());
    report.signer = Some(signer_info(leaf));
    report.signing_time = Some(t.at);
    report.time_source = Some(time_source(t));
    report.claimed_signing_time = Some(claimed);
    Box::new(report)
}
