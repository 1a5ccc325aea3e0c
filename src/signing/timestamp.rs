//! RFC 3161 time-stamps: requests, replies, tokens made by carimbo's own time-stamp authority,
//! and the verification of any TSA's token.
//!
//! A time-stamp token is a CMS `SignedData` (RFC 5652) whose content is a `TSTInfo`: the hash of
//! the stamped bytes (`messageImprint`), the TSA's time (`genTime`), a serial number and the
//! TSA's policy. It proves the bytes existed at `genTime`, which is what JAdES B-T needs: the
//! signer's `iat` is only a claim, the token's time is a third party's (ETSI TS 119 182-1
//! §5.3.4, `sigTst`).
//!
//! The ASN.1 types come from RustCrypto's `x509-tsp` (TimeStampReq / TimeStampResp / TSTInfo),
//! `cms` (SignedData, SignerInfo) and `x509-cert`; the signature maths is ring's. Only
//! `SigningCertificateV2` / `ESSCertIDv2` (RFC 5035), which no crate of that family carries in a
//! version compatible with `x509-tsp` 0.1, are declared here, with `der`'s derive: the encoding
//! is still `der`'s, not written by hand.
//!
//! Everything here is pure: the bytes to stamp, the time and the serial number come in.
//! `crate::tsa` is the shell (serial counter on disk, HTTP transport, the `carimbo tsa` server).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use cmpv2::status::{PkiFailureInfoValues, PkiStatus, PkiStatusInfo};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos};
use der::asn1::{GeneralizedTime, Int, ObjectIdentifier, OctetString, SetOfVec, Utf8StringRef};
use der::{Any, Decode, Encode, Sequence};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Map, Value};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_tsp::{Accuracy, MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

use crate::pki::cert::{CertFacts, KeyKind};
use crate::pki::path::{CertificateValidator, EkuRule, RevocationRule, SigningTime, ValidatedChain, ValidationPolicy};
use crate::pki::report::{Indication, SubIndication};
use crate::pki::{CrlSet, TrustList};

/// id-ct-TSTInfo (RFC 3161 §2.4.2).
pub const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// id-kp-timeStamping (RFC 3161 §2.3).
pub const ID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
/// ETSI EN 319 421 best-practices time-stamp policy: the policy carimbo's TSA states.
pub const DEFAULT_TSA_POLICY: &str = "0.4.0.2023.1.1";
/// The accuracy carimbo's TSA states (RFC 3161 §2.4.2): one second, the resolution of `genTime`.
pub const TSA_ACCURACY_SECONDS: u64 = 1;
/// Largest token or reply accepted. A token with its TSA certificate is 1–3 KiB.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// How far the signer's `iat` may lie after the token's `genTime` (clock skew between the
/// signer's computer and the TSA; the JWS itself must exist before it can be stamped).
pub const IAT_AFTER_STAMP: Duration = Duration::minutes(5);
/// How long before `genTime` the `iat` may lie: the server accepts a signing payload up to ten
/// minutes off its clock and stamps the act while recording it, so a signature stamped later
/// than this was not stamped when it was made.
pub const IAT_BEFORE_STAMP: Duration = Duration::minutes(15);

const ID_SIGNED_DATA: ObjectIdentifier = const_oid::db::rfc5911::ID_SIGNED_DATA;
const ID_CONTENT_TYPE: ObjectIdentifier = const_oid::db::rfc5911::ID_CONTENT_TYPE;
const ID_MESSAGE_DIGEST: ObjectIdentifier = const_oid::db::rfc5911::ID_MESSAGE_DIGEST;
const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier = const_oid::db::rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2;
const ID_SHA_256: ObjectIdentifier = const_oid::db::rfc5912::ID_SHA_256;
const ID_SHA_384: ObjectIdentifier = const_oid::db::rfc5912::ID_SHA_384;
const ID_SHA_512: ObjectIdentifier = const_oid::db::rfc5912::ID_SHA_512;
const ECDSA_WITH_SHA_256: ObjectIdentifier = const_oid::db::rfc5912::ECDSA_WITH_SHA_256;
const ECDSA_WITH_SHA_384: ObjectIdentifier = const_oid::db::rfc5912::ECDSA_WITH_SHA_384;
const SHA_256_WITH_RSA: ObjectIdentifier = const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION;
const SHA_384_WITH_RSA: ObjectIdentifier = const_oid::db::rfc5912::SHA_384_WITH_RSA_ENCRYPTION;
const SHA_512_WITH_RSA: ObjectIdentifier = const_oid::db::rfc5912::SHA_512_WITH_RSA_ENCRYPTION;
const RSA_ENCRYPTION: ObjectIdentifier = const_oid::db::rfc5912::RSA_ENCRYPTION;
const ED25519: ObjectIdentifier = const_oid::db::rfc8410::ID_ED_25519;

/// ESSCertIDv2 (RFC 5035 §4): the TSA certificate named by its hash inside the signed
/// attributes, so the certificate cannot be swapped for another one with the same key.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertIdV2 {
    /// `None` is the DEFAULT, SHA-256 (DER omits a default value).
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<Any>,
}

/// SigningCertificateV2 (RFC 5035 §3).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    pub policies: Option<Any>,
}

fn sha256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: ID_SHA_256, parameters: None }
}

/// Errors of the time-stamp protocol and of carimbo's TSA. Codes `CARIMBO-E1201`–`E1229`,
/// explained in `docs/errors.md` ("Time-stamps").
#[derive(Debug, thiserror::Error)]
pub enum TimeStampError {
    #[error("CARIMBO-E1201: the time-stamp request cannot be read: {0}")]
    BadRequest(String),
    #[error("CARIMBO-E1202: the time-stamp request uses hash {0}; the TSA accepts SHA-256, SHA-384 and SHA-512")]
    UnsupportedHash(String),
    #[error("CARIMBO-E1203: the time-stamp authority refused the request ({status}): {text}")]
    Refused { status: String, text: String },
    #[error("CARIMBO-E1204: the time-stamp reply does not answer this request: {0}")]
    ReplyMismatch(String),
    #[error("CARIMBO-E1205: no time-stamp authority answered ({0}); the act was not recorded, try again")]
    Unreachable(String),
    #[error("CARIMBO-E1206: the time-stamp reply cannot be read: {0}")]
    BadReply(String),
    #[error("CARIMBO-E1207: the TSA key or certificate cannot be used: {0}")]
    BadTsaKey(String),
    #[error("CARIMBO-E1208: the TSA serial-number counter {path} cannot be kept: {reason}")]
    SerialCounter { path: String, reason: String },
    #[error("CARIMBO-E1209: a time-stamp token cannot be made: {0}")]
    Encoding(String),
    #[error("CARIMBO-E1221: the time-stamp authority's token is not acceptable: {0}")]
    Unaccepted(String),
    #[error("CARIMBO-E1222: --tsa {0:?} is not an http:// or https:// URL")]
    BadUrl(String),
}

impl TimeStampError {
    pub fn code(&self) -> &'static str {
        match self {
            TimeStampError::BadRequest(_) => "CARIMBO-E1201",
            TimeStampError::UnsupportedHash(_) => "CARIMBO-E1202",
            TimeStampError::Refused { .. } => "CARIMBO-E1203",
            TimeStampError::ReplyMismatch(_) => "CARIMBO-E1204",
            TimeStampError::Unreachable(_) => "CARIMBO-E1205",
            TimeStampError::BadReply(_) => "CARIMBO-E1206",
            TimeStampError::BadTsaKey(_) => "CARIMBO-E1207",
            TimeStampError::SerialCounter { .. } => "CARIMBO-E1208",
            TimeStampError::Encoding(_) => "CARIMBO-E1209",
            TimeStampError::Unaccepted(_) => "CARIMBO-E1221",
            TimeStampError::BadUrl(_) => "CARIMBO-E1222",
        }
    }
}

fn enc(e: der::Error) -> TimeStampError {
    TimeStampError::Encoding(e.to_string())
}

/// The hash algorithms of message imprints and CMS digests carimbo accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImprintHash {
    Sha256,
    Sha384,
    Sha512,
}

impl ImprintHash {
    fn from_oid(oid: &ObjectIdentifier) -> Option<ImprintHash> {
        match *oid {
            o if o == ID_SHA_256 => Some(ImprintHash::Sha256),
            o if o == ID_SHA_384 => Some(ImprintHash::Sha384),
            o if o == ID_SHA_512 => Some(ImprintHash::Sha512),
            _ => None,
        }
    }

    fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            ImprintHash::Sha256 => &ring::digest::SHA256,
            ImprintHash::Sha384 => &ring::digest::SHA384,
            ImprintHash::Sha512 => &ring::digest::SHA512,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ImprintHash::Sha256 => "SHA-256",
            ImprintHash::Sha384 => "SHA-384",
            ImprintHash::Sha512 => "SHA-512",
        }
    }

    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        ring::digest::digest(self.ring(), bytes).as_ref().to_vec()
    }
}

fn positive_int(bytes: &[u8]) -> Result<Int, TimeStampError> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut minimal = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        minimal.push(0);
    }
    minimal.extend_from_slice(&trimmed);
    Int::new(&minimal).map_err(enc)
}

fn gen_time(t: DateTime<Utc>) -> Result<GeneralizedTime, TimeStampError> {
    let secs = u64::try_from(t.timestamp()).map_err(|_| TimeStampError::Encoding("a time before 1970".into()))?;
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs)).map_err(enc)
}

fn to_chrono(t: &GeneralizedTime) -> DateTime<Utc> {
    let d = t.to_unix_duration();
    DateTime::from_timestamp(d.as_secs() as i64, d.subsec_nanos()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Client side: the request and the reply.

/// A request about to be sent, with what its reply must repeat.
#[derive(Clone, Debug)]
pub struct PendingRequest {
    /// The DER TimeStampReq, the body of the HTTP POST (RFC 3161 §3.4).
    pub der: Vec<u8>,
    imprint: MessageImprint,
    nonce: Int,
}

/// Build a TimeStampReq for `stamped` (hashed with SHA-256 here), asking for the TSA's
/// certificate in the token (`certReq`), with a nonce the reply must repeat.
pub fn request(stamped: &[u8], nonce: [u8; 8]) -> Result<PendingRequest, TimeStampError> {
    let imprint = MessageImprint {
        hash_algorithm: AlgorithmIdentifierOwned { oid: ID_SHA_256, parameters: None }.into_any(),
        hashed_message: OctetString::new(ImprintHash::Sha256.digest(stamped)).map_err(enc)?,
    };
    let nonce = positive_int(&nonce)?;
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: imprint.clone(),
        req_policy: None,
        nonce: Some(nonce.clone()),
        cert_req: true,
        extensions: None,
    };
    Ok(PendingRequest { der: req.to_der().map_err(enc)?, imprint, nonce })
}

trait IntoAny {
    fn into_any(self) -> spki::AlgorithmIdentifier<Any>;
}

impl IntoAny for AlgorithmIdentifierOwned {
    fn into_any(self) -> spki::AlgorithmIdentifier<Any> {
        spki::AlgorithmIdentifier { oid: self.oid, parameters: self.parameters }
    }
}

/// Read a TimeStampResp: the status must be granted and the token must answer this very
/// request (same imprint, same nonce). Returns the token's DER.
pub fn token_from_reply(reply: &[u8], pending: &PendingRequest) -> Result<Vec<u8>, TimeStampError> {
    if reply.len() > MAX_TOKEN_BYTES {
        return Err(TimeStampError::BadReply(format!("{} bytes; at most {MAX_TOKEN_BYTES} are accepted", reply.len())));
    }
    let resp = TimeStampResp::from_der(reply).map_err(|e| TimeStampError::BadReply(e.to_string()))?;
    if !matches!(resp.status.status, PkiStatus::Accepted | PkiStatus::GrantedWithMods) {
        let text = resp.status.status_string.as_ref().map(|t| t.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")).unwrap_or_default();
        return Err(TimeStampError::Refused { status: format!("{:?}", resp.status.status), text });
    }
    let token = resp.time_stamp_token.ok_or_else(|| TimeStampError::BadReply("granted, but no token".into()))?;
    let der = token.to_der().map_err(|e| TimeStampError::BadReply(e.to_string()))?;
    let decoded = decode_token(&der).map_err(|f| TimeStampError::BadReply(f.detail))?;
    if decoded.tst.message_imprint != pending.imprint {
        return Err(TimeStampError::ReplyMismatch("the token stamps other bytes than the ones sent".into()));
    }
    if decoded.tst.nonce.as_ref() != Some(&pending.nonce) {
        return Err(TimeStampError::ReplyMismatch("the token does not repeat the request's nonce (a replayed or foreign reply)".into()));
    }
    Ok(der)
}

// ---------------------------------------------------------------------------------------------
// TSA side: carimbo's own time-stamp authority.

enum TsaKey {
    Ecdsa(EcdsaKeyPair, ObjectIdentifier),
    Rsa(RsaKeyPair),
}

/// A TSA's key, certificate and policy: makes tokens and answers requests. The serial number
/// and the time come from the caller (`crate::tsa` keeps the counter and reads the clock).
pub struct TsaSigner {
    key: TsaKey,
    certificate: Certificate,
    certificate_der: Vec<u8>,
    /// Further certificates put into each token (intermediate CAs), never the root.
    chain: Vec<Certificate>,
    policy: ObjectIdentifier,
}

impl TsaSigner {
    /// Load a PKCS#8 PEM key (ECDSA P-256 / P-384 or RSA ≥ 2048) and a PEM file whose first
    /// certificate is the TSA's own and whose others are intermediates to include in tokens.
    /// The certificate's EKU is not checked here (a verifier's test needs tokens of a wrong
    /// TSA); `tsa::LocalTsa::open`, which runs a TSA, refuses one without the critical EKU.
    pub fn from_pem(key_pem: &[u8], chain_pem: &[u8], policy: &str) -> Result<TsaSigner, TimeStampError> {
        let bad = |r: String| TimeStampError::BadTsaKey(r);
        let key_der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(key_pem).map_err(|e| bad(format!("not a PKCS#8 `PRIVATE KEY` PEM: {e}")))?;
        let certs = crate::pki::cert::parse_pem_certificates(chain_pem, "TSA certificate").map_err(|e| bad(e.to_string()))?;
        let policy = ObjectIdentifier::new(policy).map_err(|e| bad(format!("policy {policy:?} is not an OID: {e}")))?;
        let rng = SystemRandom::new();
        let der = key_der.secret_pkcs8_der();
        let key = if let Ok(k) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng) {
            TsaKey::Ecdsa(k, ECDSA_WITH_SHA_256)
        } else if let Ok(k) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, der, &rng) {
            TsaKey::Ecdsa(k, ECDSA_WITH_SHA_384)
        } else {
            TsaKey::Rsa(RsaKeyPair::from_pkcs8(der).map_err(|e| bad(format!("not an ECDSA P-256/P-384 or RSA key: {e}")))?)
        };
        let facts = CertFacts::from_der(&certs[0]).map_err(bad)?;
        let public: &[u8] = match &key {
            TsaKey::Ecdsa(k, _) => k.public_key().as_ref(),
            TsaKey::Rsa(k) => k.public_key().as_ref(),
        };
        if facts.public_key != public {
            return Err(bad(format!("the key is not the key of certificate `{}`", facts.subject)));
        }
        let parse = |c: &CertificateDer<'_>| Certificate::from_der(c.as_ref()).map_err(|e| bad(e.to_string()));
        let certificate = parse(&certs[0])?;
        let chain = certs[1..].iter().map(parse).collect::<Result<Vec<_>, _>>()?;
        Ok(TsaSigner { key, certificate, certificate_der: certs[0].as_ref().to_vec(), chain, policy })
    }

    pub fn policy(&self) -> String {
        self.policy.to_string()
    }

    /// The TSA certificate (DER).
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// A token stamping `stamped` (hashed with SHA-256) at `at` with serial number `serial`.
    pub fn stamp(&self, stamped: &[u8], serial: u64, at: DateTime<Utc>) -> Result<Vec<u8>, TimeStampError> {
        let imprint = MessageImprint {
            hash_algorithm: sha256_algorithm().into_any(),
            hashed_message: OctetString::new(ImprintHash::Sha256.digest(stamped)).map_err(enc)?,
        };
        self.token(imprint, None, serial, at, true)
    }

    /// Answer a DER TimeStampReq (RFC 3161 §2.4): a granted TimeStampResp with a token, or a
    /// rejection that says why. Never fails: a bad request gets a rejection reply.
    pub fn respond(&self, request: &[u8], serial: u64, at: DateTime<Utc>) -> Vec<u8> {
        let reply = match self.grant(request, serial, at) {
            Ok(token) => {
                ContentInfo::from_der(&token).map(|t| TimeStampResp { status: status(PkiStatus::Accepted, None, None), time_stamp_token: Some(t) }).map_err(enc)
            }
            Err(e) => Err(e),
        };
        let refused;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                let fail = match &e {
                    TimeStampError::UnsupportedHash(_) => PkiFailureInfoValues::BadAlg,
                    TimeStampError::BadRequest(_) => PkiFailureInfoValues::BadDataFormat,
                    _ => PkiFailureInfoValues::SystemFailure,
                };
                refused = e.to_string();
                TimeStampResp { status: status(PkiStatus::Rejection, Some(&refused), Some(fail)), time_stamp_token: None }
            }
        };
        // A TimeStampResp of a status and at most one token always encodes.
        reply.to_der().unwrap_or_default()
    }

    fn grant(&self, request: &[u8], serial: u64, at: DateTime<Utc>) -> Result<Vec<u8>, TimeStampError> {
        if request.len() > MAX_TOKEN_BYTES {
            return Err(TimeStampError::BadRequest(format!("{} bytes", request.len())));
        }
        let req = TimeStampReq::from_der(request).map_err(|e| TimeStampError::BadRequest(e.to_string()))?;
        let Some(hash) = ImprintHash::from_oid(&req.message_imprint.hash_algorithm.oid) else {
            return Err(TimeStampError::UnsupportedHash(req.message_imprint.hash_algorithm.oid.to_string()));
        };
        if req.message_imprint.hashed_message.as_bytes().len() != hash.ring().output_len() {
            return Err(TimeStampError::BadRequest(format!(
                "a {} imprint has {} bytes, this one {}",
                hash.name(),
                hash.ring().output_len(),
                req.message_imprint.hashed_message.as_bytes().len()
            )));
        }
        if let Some(policy) = &req.req_policy
            && *policy != self.policy
        {
            return Err(TimeStampError::BadRequest(format!("this TSA stamps under policy {}, not {policy}", self.policy)));
        }
        if req.extensions.is_some() {
            return Err(TimeStampError::BadRequest("request extensions are not supported".into()));
        }
        self.token(req.message_imprint, req.nonce, serial, at, req.cert_req)
    }

    fn token(&self, imprint: MessageImprint, nonce: Option<Int>, serial: u64, at: DateTime<Utc>, with_certificate: bool) -> Result<Vec<u8>, TimeStampError> {
        let tst = TstInfo {
            version: TspVersion::V1,
            policy: self.policy,
            message_imprint: imprint,
            serial_number: positive_int(&serial.to_be_bytes())?,
            gen_time: gen_time(at)?,
            accuracy: Some(Accuracy { seconds: Some(TSA_ACCURACY_SECONDS), millis: None, micros: None }),
            ordering: false,
            nonce,
            tsa: None,
            extensions: None,
        };
        let tst_der = tst.to_der().map_err(enc)?;
        let signed_attrs = self.signed_attributes(&tst_der)?;
        let to_sign = signed_attrs.to_der().map_err(enc)?;
        let (signature_algorithm, signature) = self.sign(&to_sign)?;
        let signer = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: self.certificate.tbs_certificate.issuer.clone(),
                serial_number: self.certificate.tbs_certificate.serial_number.clone(),
            }),
            digest_alg: sha256_algorithm(),
            signed_attrs: Some(signed_attrs),
            signature_algorithm,
            signature: OctetString::new(signature).map_err(enc)?,
            unsigned_attrs: None,
        };
        let certificates = if with_certificate {
            let mut all = vec![CertificateChoices::Certificate(self.certificate.clone())];
            all.extend(self.chain.iter().cloned().map(CertificateChoices::Certificate));
            Some(CertificateSet::try_from(all).map_err(enc)?)
        } else {
            None
        };
        let signed_data = SignedData {
            version: CmsVersion::V3,
            digest_algorithms: SetOfVec::try_from(vec![sha256_algorithm()]).map_err(enc)?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: ID_CT_TST_INFO,
                econtent: Some(Any::encode_from(&OctetString::new(tst_der).map_err(enc)?).map_err(enc)?),
            },
            certificates,
            crls: None,
            signer_infos: SignerInfos::try_from(vec![signer]).map_err(enc)?,
        };
        ContentInfo { content_type: ID_SIGNED_DATA, content: Any::encode_from(&signed_data).map_err(enc)? }.to_der().map_err(enc)
    }

    /// contentType, messageDigest and signingCertificateV2 (RFC 3161 §2.4.1, RFC 5816).
    fn signed_attributes(&self, tst_der: &[u8]) -> Result<SetOfVec<Attribute>, TimeStampError> {
        let attribute = |oid, value: Any| -> Result<Attribute, TimeStampError> { Ok(Attribute { oid, values: SetOfVec::try_from(vec![value]).map_err(enc)? }) };
        let digest = OctetString::new(ImprintHash::Sha256.digest(tst_der)).map_err(enc)?;
        let signing_certificate = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                hash_algorithm: None,
                cert_hash: OctetString::new(ImprintHash::Sha256.digest(&self.certificate_der)).map_err(enc)?,
                issuer_serial: None,
            }],
            policies: None,
        };
        SetOfVec::try_from(vec![
            attribute(ID_CONTENT_TYPE, Any::encode_from(&ID_CT_TST_INFO).map_err(enc)?)?,
            attribute(ID_MESSAGE_DIGEST, Any::encode_from(&digest).map_err(enc)?)?,
            attribute(ID_AA_SIGNING_CERTIFICATE_V2, Any::encode_from(&signing_certificate).map_err(enc)?)?,
        ])
        .map_err(enc)
    }

    fn sign(&self, message: &[u8]) -> Result<(AlgorithmIdentifierOwned, Vec<u8>), TimeStampError> {
        let rng = SystemRandom::new();
        let failed = |_| TimeStampError::Encoding("the signing operation failed inside the crypto library".into());
        match &self.key {
            TsaKey::Ecdsa(k, oid) => Ok((AlgorithmIdentifierOwned { oid: *oid, parameters: None }, k.sign(&rng, message).map_err(failed)?.as_ref().to_vec())),
            TsaKey::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig).map_err(failed)?;
                Ok((AlgorithmIdentifierOwned { oid: SHA_256_WITH_RSA, parameters: Some(Any::null()) }, sig))
            }
        }
    }
}

fn status(status: PkiStatus, text: Option<&str>, fail: Option<PkiFailureInfoValues>) -> PkiStatusInfo<'_> {
    PkiStatusInfo { status, status_string: text.and_then(|t| Utf8StringRef::new(t).ok()).map(|t| vec![t]), fail_info: fail.map(Into::into) }
}

// ---------------------------------------------------------------------------------------------
// Verification.

/// Why a token was not accepted: an ETSI indication, a sub-indication and carimbo's own code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StampFailure {
    pub indication: Indication,
    pub sub: SubIndication,
    pub code: &'static str,
    pub detail: String,
}

fn failure(indication: Indication, sub: SubIndication, code: &'static str, detail: impl Into<String>) -> StampFailure {
    StampFailure { indication, sub, code, detail: detail.into() }
}

/// Codes of token verification (reported in the signature's `ValidationReport`).
pub mod codes {
    pub const TOKEN_FORMAT: &str = "CARIMBO-E1210";
    pub const IMPRINT_MISMATCH: &str = "CARIMBO-E1211";
    pub const TOKEN_SIGNATURE: &str = "CARIMBO-E1212";
    pub const SIGNING_CERTIFICATE: &str = "CARIMBO-E1213";
    pub const TSA_EKU: &str = "CARIMBO-E1214";
    pub const TSA_CHAIN: &str = "CARIMBO-E1215";
    pub const TSA_NOT_TRUSTED: &str = "CARIMBO-E1216";
    pub const IAT_AFTER_STAMP: &str = "CARIMBO-E1217";
    pub const IAT_LONG_BEFORE_STAMP: &str = "CARIMBO-E1218";
    pub const ETSI_U_FORMAT: &str = "CARIMBO-E1219";
}

pub use crate::pki::report::VerifiedTimeStamp;

struct DecodedToken {
    tst: TstInfo,
    tst_der: Vec<u8>,
    signer: SignerInfo,
    certificates: Vec<Vec<u8>>,
}

fn decode_token(der: &[u8]) -> Result<DecodedToken, StampFailure> {
    use Indication::TotalFailed;
    use SubIndication::FormatFailure;
    let bad = |what: String| failure(TotalFailed, FormatFailure, codes::TOKEN_FORMAT, format!("the time-stamp token {what}"));
    if der.len() > MAX_TOKEN_BYTES {
        return Err(bad(format!("has {} bytes; at most {MAX_TOKEN_BYTES} are accepted", der.len())));
    }
    let info = ContentInfo::from_der(der).map_err(|e| bad(format!("is not a DER CMS ContentInfo: {e}")))?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(bad(format!("holds {} instead of SignedData", info.content_type)));
    }
    let sd: SignedData = info.content.decode_as().map_err(|e| bad(format!("holds no readable SignedData: {e}")))?;
    if sd.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(bad(format!("encapsulates {} instead of TSTInfo", sd.encap_content_info.econtent_type)));
    }
    let econtent = sd.encap_content_info.econtent.as_ref().ok_or_else(|| bad("has no TSTInfo content".into()))?;
    let tst_der = econtent.decode_as::<OctetString>().map_err(|e| bad(format!("content is not an OCTET STRING: {e}")))?.as_bytes().to_vec();
    let tst = TstInfo::from_der(&tst_der).map_err(|e| bad(format!("TSTInfo cannot be read: {e}")))?;
    // Fields outside the signature must hold the one value a token can have, so that no byte
    // of a token can change and the token still verify.
    if sd.version != CmsVersion::V3 {
        return Err(bad(format!("has SignedData version {:?}; a time-stamp token has version 3", sd.version)));
    }
    if sd.crls.is_some() {
        return Err(bad("carries revocation data inside the token, which carimbo does not read".into()));
    }
    let signers = sd.signer_infos.0.into_vec();
    let [signer]: [SignerInfo; 1] = signers.try_into().map_err(|v: Vec<SignerInfo>| bad(format!("has {} signers; a token has exactly one", v.len())))?;
    let expected_version = match signer.sid {
        SignerIdentifier::IssuerAndSerialNumber(_) => CmsVersion::V1,
        SignerIdentifier::SubjectKeyIdentifier(_) => CmsVersion::V3,
    };
    if signer.version != expected_version {
        return Err(bad(format!("has SignerInfo version {:?}; its signer identifier needs {expected_version:?}", signer.version)));
    }
    if sd.digest_algorithms.as_slice() != [signer.digest_alg.clone()] {
        return Err(bad("lists digest algorithms other than its signer's".into()));
    }
    if signer.unsigned_attrs.is_some() {
        return Err(bad("carries unsigned attributes, which carimbo does not read".into()));
    }
    let mut certificates = Vec::new();
    for c in sd.certificates.map(|c| c.0.into_vec()).unwrap_or_default() {
        if let CertificateChoices::Certificate(c) = c {
            certificates.push(c.to_der().map_err(|e| bad(format!("carries a certificate that does not encode: {e}")))?);
        }
    }
    Ok(DecodedToken { tst, tst_der, signer, certificates })
}

/// The one extended-key-usage rule of a TSA certificate (RFC 3161 §2.3): the extension is
/// present, critical, and lists id-kp-timeStamping only.
pub fn eku_violation(certificate: &[u8]) -> Option<String> {
    use x509_parser::prelude::*;
    let Ok((_, cert)) = X509Certificate::from_der(certificate) else {
        return Some("the TSA certificate cannot be parsed".into());
    };
    let subject = cert.subject().to_string();
    let eku = cert.extensions().iter().find(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_EXTENDED_KEY_USAGE);
    let Some(ext) = eku else {
        return Some(format!("TSA certificate `{subject}` has no extended key usage; RFC 3161 requires a critical id-kp-timeStamping"));
    };
    if !ext.critical {
        return Some(format!("the extended key usage of TSA certificate `{subject}` is not critical; RFC 3161 §2.3 requires it to be"));
    }
    match ext.parsed_extension() {
        ParsedExtension::ExtendedKeyUsage(k)
            if k.time_stamping
                && !k.any
                && !k.server_auth
                && !k.client_auth
                && !k.code_signing
                && !k.email_protection
                && !k.ocsp_signing
                && k.other.is_empty() =>
        {
            None
        }
        _ => Some(format!("TSA certificate `{subject}` is not for id-kp-timeStamping alone")),
    }
}

/// The policy a TSA certificate is validated under: chain to the trust list, no CRL gap, key
/// usage for signatures, and the EKU the webpki search demands.
pub fn tsa_policy() -> ValidationPolicy {
    ValidationPolicy { eku: EkuRule::RequiredIfPresent(vec![0x2b, 6, 1, 5, 5, 7, 3, 8]), require_key_usage: true, revocation: RevocationRule::Required }
}

/// Verifies RFC 3161 tokens against a trust list and CRLs; keeps validated TSA chains.
pub struct TimeStampVerifier {
    validator: CertificateValidator,
    chains: Mutex<HashMap<Vec<u8>, Arc<ValidatedChain>>>,
}

impl TimeStampVerifier {
    pub fn new(trust: TrustList, crls: CrlSet) -> TimeStampVerifier {
        TimeStampVerifier { validator: CertificateValidator::new(trust, crls, tsa_policy()), chains: Mutex::new(HashMap::new()) }
    }

    /// Verify `token` as a stamp over `stamped`: format, message imprint, the signed
    /// attributes, the signature, the TSA certificate (critical EKU, path at `genTime`, named by
    /// the trust list). Every outcome is a `VerifiedTimeStamp` or a `StampFailure`.
    pub fn verify(&self, token: &[u8], stamped: &[u8]) -> Result<VerifiedTimeStamp, StampFailure> {
        let decoded = decode_token(token)?;
        let imprint_hash = check_imprint(&decoded.tst, stamped)?;
        let (tsa_der, tsa) = signing_certificate(&decoded)?;
        check_signed_attributes(&decoded)?;
        check_token_signature(&decoded.signer, &tsa)?;
        if let Some(why) = eku_violation(&tsa_der) {
            return Err(failure(Indication::Indeterminate, SubIndication::ChainConstraintsFailure, codes::TSA_EKU, why));
        }
        let at = to_chrono(&decoded.tst.gen_time);
        let (chain, notes) = self.tsa_chain(&tsa_der, &decoded.certificates, at)?;
        let entity = crate::pki::tsa_trust::accepted_tsa(&self.validator.trust, &tsa, at)
            .map_err(|why| failure(Indication::Indeterminate, SubIndication::NoCertificateChainFound, codes::TSA_NOT_TRUSTED, why))?;
        let checks = vec![
            format!("message imprint ({}) matches the stamped bytes", imprint_hash.name()),
            "signed attributes (contentType id-ct-TSTInfo, messageDigest, signingCertificateV2) and the token's signature verify with the TSA key".to_string(),
            "TSA certificate's extended key usage is id-kp-timeStamping alone, critical (RFC 3161 §2.3)".to_string(),
            format!("TSA certificate path valid and unrevoked at genTime {}", at.to_rfc3339()),
            format!("TSA recognised by trust-list entry `{entity}` at genTime"),
        ];
        Ok(VerifiedTimeStamp {
            checks,
            gen_time: at,
            serial: hex::encode(decoded.tst.serial_number.as_bytes()).trim_start_matches("00").to_string(),
            policy: decoded.tst.policy.to_string(),
            imprint_algorithm: imprint_hash.name().into(),
            accuracy_seconds: decoded.tst.accuracy.as_ref().and_then(|a| a.seconds),
            tsa: tsa.subject.clone(),
            tsa_entity: entity,
            chain: chain.elements(),
            notes,
        })
    }

    fn tsa_chain(&self, tsa_der: &[u8], certificates: &[Vec<u8>], at: DateTime<Utc>) -> Result<(Arc<ValidatedChain>, Vec<String>), StampFailure> {
        let chain_failure = |f: crate::pki::ChainFailure| failure(f.indication, f.sub, codes::TSA_CHAIN, format!("the TSA certificate: {}", f.detail));
        let cached = self.chains.lock().ok().and_then(|c| c.get(tsa_der).cloned());
        let chain = match cached {
            Some(c) if at >= c.valid_from && at <= c.valid_until => c,
            _ => {
                let mut chain = vec![CertificateDer::from(tsa_der.to_vec())];
                chain.extend(certificates.iter().filter(|c| c.as_slice() != tsa_der).map(|c| CertificateDer::from(c.clone())));
                let analysed = Arc::new(self.validator.analyse(&chain, at).map_err(chain_failure)?);
                if let Ok(mut c) = self.chains.lock() {
                    if c.len() > 64 {
                        c.clear();
                    }
                    c.insert(tsa_der.to_vec(), analysed.clone());
                }
                analysed
            }
        };
        let verdict = self.validator.evaluate(&chain, SigningTime { at, trusted: true }).map_err(chain_failure)?;
        Ok((chain, verdict.notes))
    }
}

fn check_imprint(tst: &TstInfo, stamped: &[u8]) -> Result<ImprintHash, StampFailure> {
    let alg = &tst.message_imprint.hash_algorithm.oid;
    let hash = ImprintHash::from_oid(alg).ok_or_else(|| {
        failure(
            Indication::Indeterminate,
            SubIndication::CryptoConstraintsFailure,
            codes::IMPRINT_MISMATCH,
            format!("the time-stamp's imprint uses hash {alg}, which is not accepted"),
        )
    })?;
    if tst.message_imprint.hashed_message.as_bytes() != hash.digest(stamped).as_slice() {
        return Err(failure(
            Indication::TotalFailed,
            SubIndication::HashFailure,
            codes::IMPRINT_MISMATCH,
            "the time-stamp's message imprint does not match the stamped signature value: the signature or the token was changed",
        ));
    }
    Ok(hash)
}

/// The TSA certificate: the one of the token's certificates that the signed ESSCertIDv2 names,
/// and which is also the SignerInfo's `sid`.
fn signing_certificate(d: &DecodedToken) -> Result<(Vec<u8>, CertFacts), StampFailure> {
    let bad = |what: String| failure(Indication::Indeterminate, SubIndication::NoSigningCertificateFound, codes::SIGNING_CERTIFICATE, what);
    let attrs = d.signer.signed_attrs.as_ref().ok_or_else(|| bad("the time-stamp token has no signed attributes".into()))?;
    let value = single_attribute(attrs, ID_AA_SIGNING_CERTIFICATE_V2)
        .ok_or_else(|| bad("the time-stamp token has no signingCertificateV2 attribute naming the TSA certificate".into()))?;
    let sc: SigningCertificateV2 = value.decode_as().map_err(|e| bad(format!("signingCertificateV2 cannot be read: {e}")))?;
    let first = sc.certs.first().ok_or_else(|| bad("signingCertificateV2 names no certificate".into()))?;
    let hash_oid = first.hash_algorithm.as_ref().map_or(ID_SHA_256, |a| a.oid);
    let hash = ImprintHash::from_oid(&hash_oid).ok_or_else(|| bad(format!("signingCertificateV2 uses hash {hash_oid}")))?;
    let der = d
        .certificates
        .iter()
        .find(|c| hash.digest(c) == first.cert_hash.as_bytes())
        .ok_or_else(|| bad("the token does not carry the TSA certificate its signingCertificateV2 names (ask the TSA with certReq)".into()))?
        .clone();
    let cert = Certificate::from_der(&der).map_err(|e| bad(e.to_string()))?;
    let names_it = match &d.signer.sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => ias.issuer == cert.tbs_certificate.issuer && ias.serial_number == cert.tbs_certificate.serial_number,
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            cert.tbs_certificate.get::<x509_cert::ext::pkix::SubjectKeyIdentifier>().ok().flatten().is_some_and(|(_, own)| own == *ski)
        }
    };
    if !names_it {
        return Err(bad("the token's signer identifier does not name the certificate signingCertificateV2 names".into()));
    }
    let facts = CertFacts::from_der(&der).map_err(bad)?;
    Ok((der, facts))
}

fn single_attribute(attrs: &SetOfVec<Attribute>, oid: ObjectIdentifier) -> Option<&Any> {
    let mut found = attrs.iter().filter(|a| a.oid == oid);
    let first = found.next()?;
    if found.next().is_some() || first.values.len() != 1 {
        return None;
    }
    first.values.iter().next()
}

fn check_signed_attributes(d: &DecodedToken) -> Result<(), StampFailure> {
    let bad = |sub, what: &str| failure(Indication::TotalFailed, sub, codes::TOKEN_SIGNATURE, format!("the time-stamp token's {what}"));
    let Some(attrs) = d.signer.signed_attrs.as_ref() else {
        return Err(bad(SubIndication::FormatFailure, "signer has no signed attributes"));
    };
    let content_type = single_attribute(attrs, ID_CONTENT_TYPE).and_then(|v| v.decode_as::<ObjectIdentifier>().ok());
    if content_type != Some(ID_CT_TST_INFO) {
        return Err(bad(SubIndication::FormatFailure, "contentType attribute is not id-ct-TSTInfo"));
    }
    let digest = single_attribute(attrs, ID_MESSAGE_DIGEST).and_then(|v| v.decode_as::<OctetString>().ok());
    let hash = ImprintHash::from_oid(&d.signer.digest_alg.oid)
        .ok_or_else(|| bad(SubIndication::CryptoConstraintsFailure, "digest algorithm is not SHA-256, SHA-384 or SHA-512"))?;
    if digest.as_ref().map(|o| o.as_bytes()) != Some(hash.digest(&d.tst_der).as_slice()) {
        return Err(bad(SubIndication::HashFailure, "messageDigest does not match its TSTInfo: the time, serial or imprint was changed"));
    }
    Ok(())
}

fn check_token_signature(signer: &SignerInfo, tsa: &CertFacts) -> Result<(), StampFailure> {
    let bad = |sub, what: String| failure(Indication::TotalFailed, sub, codes::TOKEN_SIGNATURE, what);
    let message =
        signer.signed_attrs.as_ref().map(|a| a.to_der()).transpose().map_err(|e| bad(SubIndication::FormatFailure, e.to_string()))?.unwrap_or_default();
    let digest = ImprintHash::from_oid(&signer.digest_alg.oid);
    let alg: &dyn signature::VerificationAlgorithm = match (signer.signature_algorithm.oid, &tsa.key, digest) {
        (o, KeyKind::EcP256, _) if o == ECDSA_WITH_SHA_256 => &signature::ECDSA_P256_SHA256_ASN1,
        (o, KeyKind::EcP256, _) if o == ECDSA_WITH_SHA_384 => &signature::ECDSA_P256_SHA384_ASN1,
        (o, KeyKind::EcP384, _) if o == ECDSA_WITH_SHA_256 => &signature::ECDSA_P384_SHA256_ASN1,
        (o, KeyKind::EcP384, _) if o == ECDSA_WITH_SHA_384 => &signature::ECDSA_P384_SHA384_ASN1,
        (o, KeyKind::Rsa { .. }, _) if o == SHA_256_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA256,
        (o, KeyKind::Rsa { .. }, _) if o == SHA_384_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA384,
        (o, KeyKind::Rsa { .. }, _) if o == SHA_512_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA512,
        (o, KeyKind::Rsa { .. }, Some(ImprintHash::Sha256)) if o == RSA_ENCRYPTION => &signature::RSA_PKCS1_2048_8192_SHA256,
        (o, KeyKind::Rsa { .. }, Some(ImprintHash::Sha384)) if o == RSA_ENCRYPTION => &signature::RSA_PKCS1_2048_8192_SHA384,
        (o, KeyKind::Rsa { .. }, Some(ImprintHash::Sha512)) if o == RSA_ENCRYPTION => &signature::RSA_PKCS1_2048_8192_SHA512,
        (o, KeyKind::Ed25519, _) if o == ED25519 => &signature::ED25519,
        (o, key, _) => {
            return Err(bad(
                SubIndication::CryptoConstraintsFailure,
                format!("the time-stamp token is signed with {o}, which carimbo does not accept for a {} key", key.describe()),
            ));
        }
    };
    crate::pki::cert::check_key_strength(&tsa.key).map_err(|e| bad(SubIndication::CryptoConstraintsFailure, format!("TSA key: {e}")))?;
    signature::UnparsedPublicKey::new(alg, &tsa.public_key).verify(&message, signer.signature.as_bytes()).map_err(|_| {
        bad(SubIndication::SigCryptoFailure, "the time-stamp token's signature does not verify with the TSA certificate's key: the token was changed".into())
    })
}

// ---------------------------------------------------------------------------------------------
// JAdES: the `sigTst` of the unprotected `etsiU` header (ETSI TS 119 182-1 §5.3.4).

/// The message imprint input of a JAdES signature time-stamp: the JWS Signature Value as it
/// stands in the JWS, i.e. the ASCII of its base64url encoding (TS 119 182-1 §5.3.4.1; no
/// canonicalisation applies, as the input is not JSON, so `canonAlg` is absent).
pub fn sig_tst_input(signature_b64url: &str) -> &[u8] {
    signature_b64url.as_bytes()
}

/// The unprotected header carrying `token` as the signature's time-stamp:
/// `{"etsiU": [base64url({"sigTst": {"tstTokens": [{"val": base64(DER)}]}})]}`.
/// The `etsiU` entry is base64url-encoded JSON (the form TS 119 182-1 §5.3.1 allows so the
/// entry survives any JSON re-serialisation byte for byte); `val` is standard base64 of the DER.
pub fn sig_tst_header(token: &[u8]) -> Value {
    let sig_tst = serde_json::json!({"sigTst": {"tstTokens": [{"val": STANDARD.encode(token)}]}});
    serde_json::json!({"etsiU": [URL_SAFE_NO_PAD.encode(sig_tst.to_string())]})
}

/// The signature time-stamp token of an unprotected header, if it carries one. Anything in
/// `etsiU` that is not one `sigTst` of one token is refused (an unknown or extra entry could
/// otherwise ride along unchecked).
pub fn read_sig_tst(unprotected: Option<&Map<String, Value>>) -> Result<Option<Vec<u8>>, String> {
    let Some(header) = unprotected else {
        return Ok(None);
    };
    if let Some(name) = header.keys().find(|k| k.as_str() != "etsiU") {
        return Err(format!("the unprotected header carries `{name}`; only `etsiU` is accepted"));
    }
    let Some(etsi_u) = header.get("etsiU") else {
        return Ok(None);
    };
    let entries = etsi_u.as_array().ok_or("`etsiU` is not an array")?;
    let [entry] = entries.as_slice() else {
        return Err(format!("`etsiU` has {} entries; carimbo writes and reads exactly one `sigTst`", entries.len()));
    };
    let text = entry.as_str().ok_or("the `etsiU` entry is not a base64url string")?;
    let json = URL_SAFE_NO_PAD.decode(text).map_err(|e| format!("the `etsiU` entry is not base64url: {e}"))?;
    let value: Value = crate::json_strict::from_slice(&json).map_err(|e| format!("the `etsiU` entry is not JSON: {e}"))?;
    let only = |v: &Value, name: &str, what: &str| -> Result<Value, String> {
        let obj = v.as_object().ok_or(format!("{what} is not an object"))?;
        match obj.keys().find(|k| k.as_str() != name) {
            Some(other) => Err(format!("{what} carries `{other}`; only `{name}` is accepted")),
            None => obj.get(name).cloned().ok_or(format!("{what} has no `{name}`")),
        }
    };
    let sig_tst = only(&value, "sigTst", "the `etsiU` entry")?;
    let tokens = only(&sig_tst, "tstTokens", "`sigTst`")?;
    let tokens = tokens.as_array().ok_or("`tstTokens` is not an array")?;
    let [token] = tokens.as_slice() else {
        return Err(format!("`tstTokens` has {} tokens; exactly one is accepted", tokens.len()));
    };
    let val = only(token, "val", "the `tstTokens` entry")?;
    let val = val.as_str().ok_or("`val` is not a string")?;
    STANDARD.decode(val).map(Some).map_err(|e| format!("`val` is not base64: {e}"))
}
