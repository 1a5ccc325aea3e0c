//! The Cloud Signature Consortium API v2 as data: the requests carimbo sends, the answers it
//! accepts, and the checks between them. No I/O and no clock (the client in `client.rs` does
//! both), so every rule here is tested without a service.
//!
//! Names follow the specification ("Architectures and protocols for remote signature
//! applications", CSC API v2.0.0.2): `credentials/info` (§11.5) gives the key, the certificate
//! chain, the authorization mode and `multisign`; `credentials/authorize` (§11.6) turns the
//! signer's OTP into Signature Activation Data (SAD) bound to the hashes (SCAL2);
//! `signatures/signHash` (§11.9) signs hashes the SAD covers. Unknown members of an answer are
//! ignored (the specification lets services extend them); missing required ones are refused.

use super::CscError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// id-sha256 (RFC 5754): the only hash carimbo asks for.
pub const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
/// ecdsa-with-SHA256 (RFC 5758): the signature algorithm carimbo asks for (JWS ES256).
pub const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
/// id-ecPublicKey (RFC 5480), as services list an EC key's algorithm.
pub const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
/// secp256r1 (RFC 5480).
pub const OID_P256: &str = "1.2.840.10045.3.1.7";

/// The most hashes one batch may hold: a bound on what carimbo asks a service to authorize at
/// once (and so on the size of the SAD's answer), not a limit of the specification.
pub const MAX_HASHES: usize = 1000;
/// The longest `error_description` carimbo repeats from a service, in characters.
const MAX_DESCRIPTION: usize = 200;

/// `info` (§11.1): what the service is and which methods and authorizations it offers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InfoResponse {
    pub specs: String,
    pub name: String,
    #[serde(rename = "authType")]
    pub auth_type: Vec<String>,
    /// Base URI of the OAuth 2.0 authorization server (§8.3), when the service offers OAuth 2.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<String>,
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `oauth2/token` (§8.3.3) answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// `credentials/list` (§11.4) request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListRequest {
    #[serde(rename = "userID", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(rename = "onlyValid", default)]
    pub only_valid: bool,
}

/// `credentials/list` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListResponse {
    #[serde(rename = "credentialIDs")]
    pub credential_ids: Vec<String>,
}

/// `credentials/info` request: the whole chain, its details and the authorization objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InfoRequest {
    #[serde(rename = "credentialID")]
    pub credential_id: String,
    /// `none` | `single` | `chain`.
    pub certificates: String,
    #[serde(rename = "certInfo")]
    pub cert_info: bool,
    #[serde(rename = "authInfo")]
    pub auth_info: bool,
}

impl InfoRequest {
    pub fn chain_of(credential_id: &str) -> InfoRequest {
        InfoRequest { credential_id: credential_id.to_string(), certificates: "chain".into(), cert_info: true, auth_info: true }
    }
}

/// The key of a credential (§11.5 `key`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyInfo {
    /// `enabled` | `disabled`.
    pub status: String,
    pub algo: Vec<String>,
    pub len: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
}

/// The certificate of a credential (§11.5 `cert`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CertInfo {
    /// `valid` | `expired` | `revoked` | `suspended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Base64 DER, the signing certificate first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<String>>,
    #[serde(rename = "issuerDN", default, skip_serializing_if = "Option::is_none")]
    pub issuer_dn: Option<String>,
    #[serde(rename = "subjectDN", default, skip_serializing_if = "Option::is_none")]
    pub subject_dn: Option<String>,
    #[serde(rename = "serialNumber", default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
}

/// One object the signer must supply to authorize (§11.5 `auth/objects`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthObject {
    /// `Password` | `OTP`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// How a credential is authorized (§11.5 `auth`; v1's `authMode`, `PIN`, `OTP` moved here).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthInfo {
    /// `implicit` | `explicit` | `oauth2code`.
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<AuthObject>>,
}

/// `credentials/info` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialInfoResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "signatureQualifier", default, skip_serializing_if = "Option::is_none")]
    pub signature_qualifier: Option<String>,
    pub key: KeyInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<CertInfo>,
    pub auth: AuthInfo,
    /// `1`: the SAD is not bound to hashes; `2`: it is (the default is `1`).
    #[serde(rename = "SCAL", default, skip_serializing_if = "Option::is_none")]
    pub scal: Option<String>,
    /// How many signatures one authorization may make.
    pub multisign: u32,
}

/// One value the signer gives (§11.6 `authData`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthDatum {
    pub id: String,
    pub value: String,
}

/// `credentials/authorize` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    #[serde(rename = "credentialID")]
    pub credential_id: String,
    #[serde(rename = "numSignatures")]
    pub num_signatures: u32,
    pub hashes: Vec<String>,
    #[serde(rename = "hashAlgorithmOID")]
    pub hash_algorithm_oid: String,
    #[serde(rename = "authData")]
    pub auth_data: Vec<AuthDatum>,
}

/// `credentials/authorize` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizeResponse {
    #[serde(rename = "SAD")]
    pub sad: String,
    /// Seconds; the specification's default is 3600.
    #[serde(rename = "expiresIn", default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// `signatures/signHash` request (synchronous: `operationMode` `S`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignHashRequest {
    #[serde(rename = "credentialID")]
    pub credential_id: String,
    #[serde(rename = "SAD")]
    pub sad: String,
    pub hashes: Vec<String>,
    #[serde(rename = "hashAlgorithmOID")]
    pub hash_algorithm_oid: String,
    #[serde(rename = "signAlgo")]
    pub sign_algo: String,
    #[serde(rename = "operationMode", default, skip_serializing_if = "Option::is_none")]
    pub operation_mode: Option<String>,
}

/// `signatures/signHash` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignHashResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<Vec<String>>,
}

/// The error answer of every method (§10.1, after RFC 6749 §5.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// A credential carimbo can sign with, as `credentials/info` described it: only built by
/// [`Credential::from_info`], which refuses one that is disabled, revoked, not P-256, or not
/// authorized by an OTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub id: String,
    /// DER, the signing certificate first.
    pub chain: Vec<Vec<u8>>,
    /// The uncompressed P-256 point of the signing certificate (what ring verifies with).
    pub public_key: Vec<u8>,
    /// The `id` of the OTP object to put in `authData`.
    pub otp_id: String,
    /// `1` or `2` (§11.5).
    pub scal: String,
    pub multisign: u32,
    pub subject: String,
}

impl Credential {
    /// Checks a `credentials/info` answer for signing with ECDSA P-256 after an OTP.
    pub fn from_info(id: &str, info: CredentialInfoResponse) -> Result<Credential, CscError> {
        let unusable = |status: &str| CscError::CredentialUnusable { credential: id.to_string(), status: status.to_string() };
        if info.key.status != "enabled" {
            return Err(unusable(&format!("key {}", clean(&info.key.status))));
        }
        let cert = info.cert.unwrap_or_default();
        if let Some(status) = cert.status.as_deref().filter(|s| *s != "valid") {
            return Err(unusable(&format!("certificate {}", clean(status))));
        }
        let unsuitable = |why: String| CscError::Unsuitable { credential: id.to_string(), why };
        let malformed = |what: String| CscError::Malformed { method: "credentials/info".into(), what };
        let chain = decode_chain(cert.certificates.as_deref().unwrap_or_default()).map_err(malformed)?;
        let facts = crate::pki::cert::CertFacts::from_der(&chain[0]).map_err(|e| malformed(format!("the signing certificate does not parse: {e}")))?;
        if facts.key != crate::pki::cert::KeyKind::EcP256 {
            return Err(unsuitable(format!("the key is {}, carimbo signs remotely with ECDSA P-256 only", facts.key.describe())));
        }
        let ec = info.key.algo.iter().any(|a| a == OID_EC_PUBLIC_KEY || a == OID_ECDSA_SHA256);
        if !ec || info.key.curve.as_deref().is_some_and(|c| c != OID_P256) {
            return Err(unsuitable(format!("the key's algorithms {:?} do not include ECDSA on P-256", info.key.algo)));
        }
        let otp_id = otp_object(&info.auth).map_err(unsuitable)?;
        let scal = info.scal.unwrap_or_else(|| "1".into());
        if scal != "1" && scal != "2" {
            return Err(malformed(format!("SCAL {:?} is neither 1 nor 2", clean(&scal))));
        }
        if info.multisign == 0 {
            return Err(malformed("multisign is 0".into()));
        }
        Ok(Credential { id: id.to_string(), chain, public_key: facts.public_key, otp_id, scal, multisign: info.multisign, subject: facts.subject })
    }
}

fn decode_chain(certificates: &[String]) -> Result<Vec<Vec<u8>>, String> {
    if certificates.is_empty() {
        return Err("no certificate in cert/certificates".into());
    }
    // A chain deeper than ten is refused as the JWS verifier refuses such an x5c.
    if certificates.len() > 10 {
        return Err(format!("{} certificates, more than 10", certificates.len()));
    }
    certificates.iter().enumerate().map(|(i, c)| B64.decode(c).map_err(|e| format!("certificate {i} is not base64: {e}"))).collect()
}

/// The OTP object of an explicit authorization: carimbo's signers give a one-time code, never a
/// PIN it would have to hold, and never a per-signature OAuth 2.0 redirect.
fn otp_object(auth: &AuthInfo) -> Result<String, String> {
    if auth.mode != "explicit" {
        return Err(format!("authorization mode {:?}: carimbo authorizes with an OTP (mode explicit)", clean(&auth.mode)));
    }
    let objects = auth.objects.as_deref().unwrap_or_default();
    if let Some(other) = objects.iter().find(|o| o.kind != "OTP") {
        return Err(format!("the authorization needs a {:?} besides the OTP", clean(&other.kind)));
    }
    objects.iter().find(|o| o.kind == "OTP").map(|o| o.id.clone()).ok_or_else(|| "the authorization asks for no OTP".into())
}

/// The `credentials/authorize` request for `hashes` (SHA-256 each), one signature per hash.
pub fn authorize_request(credential: &Credential, otp: &str, hashes: &[[u8; 32]]) -> Result<AuthorizeRequest, CscError> {
    check_batch(credential, hashes)?;
    if otp.is_empty() || otp.len() > 64 || !otp.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(CscError::WrongOtp { credential: credential.id.clone() });
    }
    Ok(AuthorizeRequest {
        credential_id: credential.id.clone(),
        num_signatures: hashes.len() as u32,
        hashes: hashes.iter().map(|h| B64.encode(h)).collect(),
        hash_algorithm_oid: OID_SHA256.into(),
        auth_data: vec![AuthDatum { id: credential.otp_id.clone(), value: otp.to_string() }],
    })
}

fn check_batch(credential: &Credential, hashes: &[[u8; 32]]) -> Result<(), CscError> {
    let unsuitable = |why: String| CscError::Unsuitable { credential: credential.id.clone(), why };
    if hashes.is_empty() {
        return Err(unsuitable("no hash to sign".into()));
    }
    if hashes.len() > MAX_HASHES {
        return Err(unsuitable(format!("{} hashes in one batch, at most {MAX_HASHES}", hashes.len())));
    }
    if hashes.len() > credential.multisign as usize {
        return Err(unsuitable(format!(
            "{} hashes, but one authorization of this credential makes at most {} signatures (multisign)",
            hashes.len(),
            credential.multisign
        )));
    }
    Ok(())
}

/// The `signatures/signHash` request for `hashes` under `sad`, ECDSA with SHA-256.
pub fn sign_hash_request(credential_id: &str, sad: &str, hashes: &[[u8; 32]]) -> SignHashRequest {
    SignHashRequest {
        credential_id: credential_id.to_string(),
        sad: sad.to_string(),
        hashes: hashes.iter().map(|h| B64.encode(h)).collect(),
        hash_algorithm_oid: OID_SHA256.into(),
        sign_algo: OID_ECDSA_SHA256.into(),
        operation_mode: Some("S".into()),
    }
}

/// The hashes of `asked` that `authorized` does not hold, in the order asked (a SAD of
/// SCAL2 covers exactly the hashes given to `credentials/authorize`).
pub fn not_covered<'a>(authorized: &[[u8; 32]], asked: &'a [[u8; 32]]) -> Vec<&'a [u8; 32]> {
    asked.iter().filter(|h| !authorized.contains(h)).collect()
}

/// The signatures of a `signatures/signHash` answer as JWS ES256 values (r‖s, 64 bytes), one per
/// hash asked for, in order.
pub fn signatures_of(answer: SignHashResponse, asked: usize) -> Result<Vec<[u8; 64]>, CscError> {
    let malformed = |what: String| CscError::Malformed { method: "signatures/signHash".into(), what };
    let signatures = answer.signatures.ok_or_else(|| malformed("no signatures".into()))?;
    if signatures.len() != asked {
        return Err(malformed(format!("{} signatures for {asked} hashes", signatures.len())));
    }
    signatures
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let bytes = B64.decode(s).map_err(|e| malformed(format!("signature {i} is not base64: {e}")))?;
            jws_signature(&bytes).map_err(|e| malformed(format!("signature {i}: {e}")))
        })
        .collect()
}

/// ECDSA-Sig-Value (RFC 5480 §2.2.3), as PKCS#7/CMS-minded services return ECDSA signatures.
#[derive(der::Sequence)]
struct EcdsaSigValue<'a> {
    r: der::asn1::UintRef<'a>,
    s: der::asn1::UintRef<'a>,
}

/// A P-256 signature as JWS wants it (RFC 7518 §3.4: r and s, 32 bytes each): services return
/// either that or DER; the DER is read with the `der` crate.
pub fn jws_signature(bytes: &[u8]) -> Result<[u8; 64], String> {
    if let Ok(raw) = <[u8; 64]>::try_from(bytes) {
        return Ok(raw);
    }
    use der::Decode as _;
    let value = EcdsaSigValue::from_der(bytes).map_err(|e| format!("neither 64 bytes r||s nor a DER ECDSA-Sig-Value ({} bytes: {e})", bytes.len()))?;
    let mut out = [0u8; 64];
    for (half, int) in [value.r, value.s].iter().enumerate() {
        let magnitude = int.as_bytes();
        if magnitude.len() > 32 || magnitude.iter().all(|b| *b == 0) {
            return Err("an integer of the DER signature is not a P-256 scalar".into());
        }
        out[half * 32 + 32 - magnitude.len()..half * 32 + 32].copy_from_slice(magnitude);
    }
    Ok(out)
}

/// The error a service's refusal of `method` means, from its HTTP status and error body.
///
/// The specification names errors by `error` (`invalid_otp`, `invalid_pin`, `invalid_token`,
/// …) and, for many refusals, only by the `error_description` it prescribes under
/// `invalid_request` ("SAD expired", "Invalid parameter SAD", "Signing certificate … is
/// revoked"); both are read here, the description lower-cased.
pub fn refusal(method: &str, credential: &str, status: u16, body: Option<ErrorBody>) -> CscError {
    let Some(body) = body else {
        return CscError::Refused { method: method.into(), status, error: String::new(), description: String::new() };
    };
    let description = clean(body.error_description.as_deref().unwrap_or(""));
    let text = description.to_lowercase();
    let error = clean(&body.error);
    let credential = credential.to_string();
    match error.as_str() {
        "invalid_otp" | "invalid_pin" | "locked_otp" => return CscError::WrongOtp { credential },
        "invalid_token" | "invalid_client" | "unauthorized_client" => return CscError::ServiceAuth { error, description },
        _ => {}
    }
    if status == 401 {
        return CscError::ServiceAuth { error, description };
    }
    let names_code = text.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == "otp" || w == "pin");
    if method == "credentials/authorize" && names_code {
        return CscError::WrongOtp { credential };
    }
    if text.contains("sad") && (text.contains("expired") || text.contains("invalid parameter sad") || text.contains("already used")) {
        return CscError::SadExpired { credential };
    }
    if text.contains("hash") && (text.contains("sad") || text.contains("not authorized")) {
        return CscError::HashNotCovered { credential };
    }
    for word in ["revoked", "suspended", "disabled", "expired"] {
        if text.contains(word) {
            return CscError::CredentialUnusable { credential, status: word.into() };
        }
    }
    CscError::Refused { method: method.into(), status, error, description }
}

/// A service's text as carimbo repeats it: printable characters only, at most 200.
pub fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(MAX_DESCRIPTION).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(multisign: u32) -> Credential {
        Credential { id: "c1".into(), chain: vec![], public_key: vec![], otp_id: "otp".into(), scal: "2".into(), multisign, subject: String::new() }
    }

    #[test]
    fn der_and_raw_signatures_give_the_same_jws_value() {
        let mut raw = [0u8; 64];
        raw[0] = 0x80; // r needs a sign byte in DER
        raw[31] = 1;
        raw[40] = 7; // s has leading zeros DER drops
        raw[63] = 9;
        let r = [&[0u8][..], &raw[..32]].concat();
        let s = &raw[40..64];
        let mut der = vec![0x30, (2 + r.len() + 2 + s.len()) as u8, 0x02, r.len() as u8];
        der.extend(&r);
        der.extend([0x02, s.len() as u8]);
        der.extend(s);
        assert_eq!(jws_signature(&der).unwrap(), raw);
        assert_eq!(jws_signature(&raw).unwrap(), raw);
    }

    #[test]
    fn a_signature_that_is_neither_raw_nor_der_is_refused() {
        assert!(jws_signature(&[1, 2, 3]).is_err());
        assert!(jws_signature(&[0u8; 65]).is_err());
        // An integer longer than a P-256 scalar.
        let mut der = vec![0x30, 0x26, 0x02, 0x21, 0x01];
        der.extend([1u8; 32]);
        der.extend([0x02, 0x01, 0x01]);
        assert!(jws_signature(&der).unwrap_err().contains("scalar"));
    }

    #[test]
    fn a_batch_larger_than_multisign_is_refused_before_any_request() {
        let e = authorize_request(&credential(5), "123456", &[[1u8; 32]; 6]).unwrap_err();
        assert_eq!(e.code(), "CARIMBO-E1479");
        assert!(authorize_request(&credential(5), "123456", &[]).is_err());
        let ok = authorize_request(&credential(5), "123456", &[[1u8; 32]; 5]).unwrap();
        assert_eq!(ok.num_signatures, 5);
        assert_eq!(ok.auth_data[0].id, "otp");
    }

    #[test]
    fn an_otp_that_cannot_be_one_is_refused_without_asking() {
        for otp in ["", "12 34", "1234\n", &"9".repeat(65)] {
            assert_eq!(authorize_request(&credential(1), otp, &[[1u8; 32]]).unwrap_err().code(), "CARIMBO-E1472", "{otp:?}");
        }
    }

    #[test]
    fn hashes_outside_the_authorization_are_named() {
        let a = [[1u8; 32], [2u8; 32]];
        assert!(not_covered(&a, &[[2u8; 32], [1u8; 32]]).is_empty());
        assert_eq!(not_covered(&a, &[[1u8; 32], [3u8; 32]]), vec![&[3u8; 32]]);
    }

    #[test]
    fn refusals_are_read_as_the_specification_words_them() {
        let body = |e: &str, d: &str| Some(ErrorBody { error: e.into(), error_description: Some(d.into()) });
        let table = [
            ("credentials/authorize", 400, body("invalid_otp", "The OTP is invalid"), "CARIMBO-E1472"),
            ("credentials/authorize", 400, body("invalid_request", "Invalid parameter OTP"), "CARIMBO-E1472"),
            ("credentials/authorize", 400, body("invalid_request", "Invalid parameter numSignatures: mapping failed"), "CARIMBO-E1478"),
            ("signatures/signHash", 400, body("invalid_request", "SAD expired"), "CARIMBO-E1473"),
            ("signatures/signHash", 400, body("invalid_request", "Invalid parameter SAD"), "CARIMBO-E1473"),
            ("signatures/signHash", 400, body("invalid_request", "Hash is not authorized by the SAD"), "CARIMBO-E1474"),
            ("signatures/signHash", 400, body("invalid_request", "Signing certificate 'CN=x' is revoked"), "CARIMBO-E1475"),
            ("credentials/info", 401, body("invalid_token", "expired token"), "CARIMBO-E1471"),
            ("signatures/signHash", 500, body("server_error", "boom\u{7}"), "CARIMBO-E1478"),
            ("signatures/signHash", 502, None, "CARIMBO-E1478"),
        ];
        for (method, status, body, code) in table {
            assert_eq!(refusal(method, "c1", status, body.clone()).code(), code, "{method} {status} {body:?}");
        }
        let e = refusal("x", "c1", 500, body("server_error", &format!("bell\u{7}{}", "y".repeat(500))));
        assert!(!e.to_string().contains('\u{7}') && e.to_string().len() < 400);
    }

    #[test]
    fn wrong_answers_to_sign_hash_are_malformed() {
        let answer = |s: Option<Vec<&str>>| SignHashResponse { signatures: s.map(|v| v.into_iter().map(String::from).collect()) };
        assert_eq!(signatures_of(answer(None), 1).unwrap_err().code(), "CARIMBO-E1477");
        assert_eq!(signatures_of(answer(Some(vec![])), 1).unwrap_err().code(), "CARIMBO-E1477");
        assert_eq!(signatures_of(answer(Some(vec!["!!"])), 1).unwrap_err().code(), "CARIMBO-E1477");
        let good = B64.encode([5u8; 64]);
        assert_eq!(signatures_of(answer(Some(vec![&good])), 1).unwrap(), vec![[5u8; 64]]);
    }
}
