//! A Cloud Signature Consortium API v2 service for the tests of `carimbo::csc`: what a trust
//! service provider runs, small. Keys live in SoftHSM2 (through PKCS#11, `cryptoki`), one P-256
//! key pair per credential, its certificate issued by the demo qualified CA of `seeds/pki`.
//! OAuth 2.0 client credentials give the access token; `credentials/authorize` checks the
//! credential's TOTP and gives a SAD bound to the hashes, for one use, expiring after
//! `ServiceOptions::sad_lifetime`; `signatures/signHash` signs only hashes the SAD covers.
//! Knobs: an answer delay (to time out a client), revoking a credential, raw or DER signatures.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once per process (`C_Initialize`), so the token is made once
//! per test binary, in a temporary directory, and shared by its services; each credential is a
//! session object of its own.
#![allow(dead_code)]

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use carimbo::csc::client::{ClientSecret, CscConfig};
use carimbo::csc::protocol::{
    AuthInfo, AuthObject, AuthorizeRequest, AuthorizeResponse, CertInfo, CredentialInfoResponse, ErrorBody, InfoRequest, InfoResponse, KeyInfo, ListRequest,
    ListResponse, OID_EC_PUBLIC_KEY, OID_ECDSA_SHA256, OID_P256, OID_SHA256, SignHashRequest, SignHashResponse, TokenResponse,
};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where Debian, Fedora and a source build put SoftHSM2's PKCS#11 module.
const LIBRARIES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// DER of the namedCurve secp256r1 (RFC 5480), the key pairs' CKA_EC_PARAMS.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

pub const CLIENT_ID: &str = "carimbo-test";
pub const CLIENT_SECRET: &str = "test-secret-7f3a9c";

/// SoftHSM2's module: `CARIMBO_SOFTHSM2_LIB` when set (and only it), else the first of
/// `LIBRARIES` that exists.
pub fn softhsm_library() -> Option<PathBuf> {
    match std::env::var_os("CARIMBO_SOFTHSM2_LIB") {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.exists()),
        None => LIBRARIES.iter().map(PathBuf::from).find(|p| p.exists()),
    }
}

/// The token of this test binary.
struct Hsm {
    session: Mutex<Session>,
    _pkcs11: Pkcs11,
    _dir: tempfile::TempDir,
}

static HSM: OnceLock<Option<Hsm>> = OnceLock::new();

fn hsm() -> Option<&'static Hsm> {
    HSM.get_or_init(|| {
        let library = softhsm_library()?;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(&conf, format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", dir.path().join("tokens").display()))
            .unwrap();
        // SAFETY: set once, inside this OnceLock's initialisation, before SoftHSM is loaded;
        // the tests of the binary reach SoftHSM only through `hsm()`, which waits for it.
        unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
        let pkcs11 = Pkcs11::new(&library).unwrap();
        pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).unwrap();
        let slot = pkcs11.get_slots_with_token().unwrap().remove(0);
        let so = AuthPin::new("so-pin-1234".into());
        let user = AuthPin::new("user-pin-1234".into());
        pkcs11.init_token(slot, &so, "carimbo-csc").unwrap();
        {
            let s = pkcs11.open_rw_session(slot).unwrap();
            s.login(UserType::So, Some(&so)).unwrap();
            s.init_pin(&user).unwrap();
        }
        let session = pkcs11.open_rw_session(slot).unwrap();
        session.login(UserType::User, Some(&user)).unwrap();
        Some(Hsm { session: Mutex::new(session), _pkcs11: pkcs11, _dir: dir })
    })
    .as_ref()
}

/// How the service behaves.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    pub sad_lifetime: Duration,
    pub multisign: u32,
    /// Signatures as JWS r‖s instead of DER ECDSA-Sig-Value.
    pub raw_signatures: bool,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions { sad_lifetime: Duration::from_secs(300), multisign: 50, raw_signatures: false }
    }
}

/// How `signatures/signHash` spoils its answer, to test a client's checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Garble {
    None,
    /// `signatures` twice in the object (RFC 7493 forbids it).
    RepeatedMember,
    /// One signature fewer than hashes.
    MissingSignature,
    /// A signature of 63 bytes.
    ShortSignature,
    /// 300 KiB of padding after the signatures.
    Oversized,
    /// Not JSON.
    NotJson,
}

/// One credential of the service.
struct Held {
    private: ObjectHandle,
    chain: Vec<Vec<u8>>,
    totp: totp_rs::Totp,
    status: &'static str,
}

struct SadRecord {
    credential: String,
    hashes: Vec<Vec<u8>>,
    expires: Instant,
}

struct Inner {
    hsm: &'static Hsm,
    options: ServiceOptions,
    delay_ms: AtomicU64,
    garble: Mutex<Garble>,
    tokens: Mutex<Vec<String>>,
    credentials: Mutex<HashMap<String, Held>>,
    sads: Mutex<HashMap<String, SadRecord>>,
    /// Counters the tests read: calls of `credentials/authorize`, of `signatures/signHash`,
    /// and signatures made.
    authorizations: AtomicUsize,
    issued: AtomicUsize,
    sign_calls: AtomicUsize,
    signatures: AtomicUsize,
}

/// A running service on 127.0.0.1, stopped when dropped.
pub struct CscService {
    pub base_url: String,
    inner: Arc<Inner>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for CscService {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl CscService {
    /// Starts a service, or `None` (after saying so) when SoftHSM2 is not installed.
    pub fn start(options: ServiceOptions) -> Option<CscService> {
        let Some(hsm) = hsm() else {
            eprintln!("SKIPPED: libsofthsm2.so not found (apt-get install softhsm2); the CSC service test needs it");
            return None;
        };
        let inner = Arc::new(Inner {
            hsm,
            options,
            delay_ms: AtomicU64::new(0),
            garble: Mutex::new(Garble::None),
            tokens: Mutex::new(Vec::new()),
            credentials: Mutex::new(HashMap::new()),
            sads: Mutex::new(HashMap::new()),
            authorizations: AtomicUsize::new(0),
            issued: AtomicUsize::new(0),
            sign_calls: AtomicUsize::new(0),
            signatures: AtomicUsize::new(0),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base_url = format!("http://{}/csc/v2", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/csc/v2/info", post(info))
            .route("/csc/v2/oauth2/token", post(token))
            .route("/csc/v2/credentials/list", post(list))
            .route("/csc/v2/credentials/info", post(credential_info))
            .route("/csc/v2/credentials/authorize", post(authorize))
            .route("/csc/v2/signatures/signHash", post(sign_hash))
            .with_state(inner.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let server = axum::serve(listener, app);
                tokio::select! {
                    _ = server => {}
                    _ = stopped => {}
                }
            });
            rt.shutdown_background();
        });
        Some(CscService { base_url, inner, stop: Some(stop) })
    }

    /// The client configuration for this service, with short timeouts.
    pub fn config(&self) -> CscConfig {
        let mut c = CscConfig::new(&self.base_url, CLIENT_ID, ClientSecret::new(CLIENT_SECRET)).unwrap();
        c.connect_timeout = Duration::from_secs(2);
        c.read_timeout = Duration::from_secs(10);
        c
    }

    /// A new credential: a P-256 key pair made in the token, a qualified certificate for it from
    /// the demo qualified CA, a TOTP secret. Returns the leaf certificate's DER.
    pub fn add_credential(&self, id: &str) -> Vec<u8> {
        let session = self.inner.hsm.session.lock().unwrap();
        let public_template =
            [Attribute::Token(false), Attribute::EcParams(P256_PARAMS.to_vec()), Attribute::Verify(true), Attribute::Label(id.as_bytes().to_vec())];
        let private_template =
            [Attribute::Token(false), Attribute::Private(true), Attribute::Sensitive(true), Attribute::Sign(true), Attribute::Label(id.as_bytes().to_vec())];
        let (public, private) = session.generate_key_pair(&Mechanism::EccKeyPairGen, &public_template, &private_template).unwrap();
        let Attribute::EcPoint(point) = session.get_attributes(public, &[AttributeType::EcPoint]).unwrap().remove(0) else { panic!("no EC point") };
        drop(session);
        // CKA_EC_POINT is the DER OCTET STRING of the uncompressed point (04 41 04 x y).
        assert_eq!(&point[..3], &[0x04, 0x41, 0x04], "uncompressed P-256 point");
        let chain = issue(id, &point[2..]);
        let totp = totp_rs::Builder::new().with_secret(format!("csc-test-secret-{id}-0123456789").into_bytes()).with_account_name(id).build().unwrap();
        let leaf = chain[0].clone();
        self.inner.credentials.lock().unwrap().insert(id.to_string(), Held { private, chain, totp, status: "valid" });
        leaf
    }

    /// The credential's current one-time code.
    pub fn otp(&self, id: &str) -> String {
        self.inner.credentials.lock().unwrap()[id].totp.generate_current().to_string()
    }

    /// A code of six digits the credential refuses now.
    pub fn wrong_otp(&self, id: &str) -> String {
        let credentials = self.inner.credentials.lock().unwrap();
        (0..1_000_000).map(|n| format!("{n:06}")).find(|c| credentials[id].totp.check_current(c).is_none()).unwrap()
    }

    /// The certification entity revoked the credential's certificate.
    pub fn revoke(&self, id: &str) {
        self.inner.credentials.lock().unwrap().get_mut(id).unwrap().status = "revoked";
    }

    /// Every answer waits this long first.
    pub fn set_delay(&self, delay: Duration) {
        self.inner.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Forgets every access token it gave (as after a restart of the provider's server).
    pub fn forget_tokens(&self) {
        self.inner.tokens.lock().unwrap().clear();
    }

    pub fn tokens_issued(&self) -> usize {
        self.inner.issued.load(Ordering::SeqCst)
    }

    /// How `signatures/signHash` answers from now on.
    pub fn set_garble(&self, garble: Garble) {
        *self.inner.garble.lock().unwrap() = garble;
    }

    pub fn authorizations(&self) -> usize {
        self.inner.authorizations.load(Ordering::SeqCst)
    }

    pub fn sign_calls(&self) -> usize {
        self.inner.sign_calls.load(Ordering::SeqCst)
    }

    pub fn signatures(&self) -> usize {
        self.inner.signatures.load(Ordering::SeqCst)
    }
}

/// The demo qualified CA's certificate and key.
fn demo_ca() -> (String, String) {
    let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/pki/ca");
    (std::fs::read_to_string(pki.join("qualified-ca.pem")).unwrap(), std::fs::read_to_string(pki.join("qualified-ca.key.pem")).unwrap())
}

/// A qualified certificate for `point` (uncompressed P-256) from the demo qualified CA, as
/// `carimbo hsm issue` makes one for a key it found on a device: QcCompliance and QcSSCD (the
/// credential's key is in SoftHSM2), keyUsage digitalSignature + nonRepudiation, 2025–2050.
/// Returns the leaf and the CA, DER.
fn issue(id: &str, point: &[u8]) -> Vec<Vec<u8>> {
    static SERIAL: AtomicU64 = AtomicU64::new(0x0c5c_0001);
    let (ca_pem, ca_key_pem) = demo_ca();
    let holder = carimbo::pki::demo::DeviceHolder { common_name: format!("Remote signer {id}"), department: None, person_id: id };
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let serial = SERIAL.fetch_add(1, Ordering::SeqCst);
    let pem = carimbo::pki::demo::issue_device_certificate(point, &holder, serial, (day(2025, 1, 1), day(2050, 12, 31)), &ca_key_pem, &ca_pem).unwrap();
    carimbo::pki::cert::parse_pem_certificates(pem.as_bytes(), "remote credential").unwrap().into_iter().map(|c| c.to_vec()).collect()
}

/// An error answer (§10.1): status, `error`, `error_description`.
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1.into(), error_description: Some(self.2) })).into_response()
    }
}

type Answer = Result<Response, Refusal>;

fn refuse(status: StatusCode, error: &'static str, description: &str) -> Refusal {
    Refusal(status, error, description.into())
}

fn bad(description: &str) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, "invalid_request", description)
}

async fn delay(s: &Inner) {
    let ms = s.delay_ms.load(Ordering::SeqCst);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn bearer(s: &Inner, headers: &HeaderMap) -> Result<(), Refusal> {
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    use subtle::ConstantTimeEq as _;
    if s.tokens.lock().unwrap().iter().any(|t| bool::from(t.as_bytes().ct_eq(token.as_bytes()))) {
        Ok(())
    } else {
        Err(refuse(StatusCode::UNAUTHORIZED, "invalid_token", "The access token is not valid"))
    }
}

fn random_hex() -> String {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).unwrap();
    hex::encode(b)
}

// Every handler reads its request's body: hyper closes a keep-alive connection whose request
// body was left unread, and the client would meet a closed connection on its next call.
async fn info(State(s): State<Arc<Inner>>, _body: axum::body::Bytes) -> Json<InfoResponse> {
    delay(&s).await;
    Json(InfoResponse {
        specs: "2.0.0.2".into(),
        name: "carimbo test TSP".into(),
        auth_type: vec!["oauth2client".into()],
        oauth2: None,
        methods: ["oauth2/token", "credentials/list", "credentials/info", "credentials/authorize", "signatures/signHash"].map(String::from).to_vec(),
        region: Some("MO".into()),
        description: None,
    })
}

async fn token(State(s): State<Arc<Inner>>, Form(form): Form<HashMap<String, String>>) -> Answer {
    use subtle::ConstantTimeEq as _;
    delay(&s).await;
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if field("grant_type") != "client_credentials" {
        return Err(refuse(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Only client_credentials"));
    }
    let secret_ok: bool = field("client_secret").as_bytes().ct_eq(CLIENT_SECRET.as_bytes()).into();
    if field("client_id") != CLIENT_ID || !secret_ok {
        return Err(refuse(StatusCode::BAD_REQUEST, "invalid_client", "Client authentication failed"));
    }
    let token = random_hex();
    s.tokens.lock().unwrap().push(token.clone());
    s.issued.fetch_add(1, Ordering::SeqCst);
    Ok(Json(TokenResponse { access_token: token, token_type: "Bearer".into(), expires_in: Some(3600) }).into_response())
}

async fn list(State(s): State<Arc<Inner>>, headers: HeaderMap, Json(_): Json<ListRequest>) -> Answer {
    delay(&s).await;
    bearer(&s, &headers)?;
    let mut ids: Vec<String> = s.credentials.lock().unwrap().keys().cloned().collect();
    ids.sort();
    Ok(Json(ListResponse { credential_ids: ids }).into_response())
}

async fn credential_info(State(s): State<Arc<Inner>>, headers: HeaderMap, Json(req): Json<InfoRequest>) -> Answer {
    delay(&s).await;
    bearer(&s, &headers)?;
    let credentials = s.credentials.lock().unwrap();
    let held = credentials.get(&req.credential_id).ok_or_else(|| bad("Invalid parameter credentialID"))?;
    let certificates = if req.certificates == "none" {
        None
    } else {
        Some(held.chain.iter().take(if req.certificates == "single" { 1 } else { 10 }).map(|c| B64.encode(c)).collect())
    };
    Ok(Json(CredentialInfoResponse {
        description: Some("test credential".into()),
        signature_qualifier: Some("eu_eidas_qes".into()),
        key: KeyInfo { status: "enabled".into(), algo: vec![OID_EC_PUBLIC_KEY.into()], len: 256, curve: Some(OID_P256.into()) },
        cert: Some(CertInfo { status: Some(held.status.into()), certificates, issuer_dn: None, subject_dn: None, serial_number: None }),
        auth: AuthInfo {
            mode: "explicit".into(),
            objects: Some(vec![AuthObject { kind: "OTP".into(), id: "otp".into(), format: Some("N".into()), label: Some("TOTP".into()) }]),
        },
        scal: Some("2".into()),
        multisign: s.options.multisign,
    })
    .into_response())
}

fn decode_hashes(hashes: &[String]) -> Result<Vec<Vec<u8>>, Refusal> {
    hashes.iter().map(|h| B64.decode(h).ok().filter(|b| b.len() == 32).ok_or_else(|| bad("Invalid parameter hashes"))).collect()
}

async fn authorize(State(s): State<Arc<Inner>>, headers: HeaderMap, Json(req): Json<AuthorizeRequest>) -> Answer {
    delay(&s).await;
    bearer(&s, &headers)?;
    s.authorizations.fetch_add(1, Ordering::SeqCst);
    let credentials = s.credentials.lock().unwrap();
    let held = credentials.get(&req.credential_id).ok_or_else(|| bad("Invalid parameter credentialID"))?;
    if held.status != "valid" {
        return Err(bad(&format!("Signing certificate 'CN=Remote signer {}' is {}", req.credential_id, held.status)));
    }
    if req.hash_algorithm_oid != OID_SHA256 {
        return Err(bad("Invalid parameter hashAlgorithmOID"));
    }
    let hashes = decode_hashes(&req.hashes)?;
    if hashes.is_empty() || req.num_signatures as usize != hashes.len() || req.num_signatures > s.options.multisign {
        return Err(bad("Invalid parameter numSignatures"));
    }
    let otp = req.auth_data.iter().find(|d| d.id == "otp").map(|d| d.value.as_str()).unwrap_or("");
    if held.totp.check_current(otp).is_none() {
        return Err(refuse(StatusCode::BAD_REQUEST, "invalid_otp", "The OTP is invalid"));
    }
    let sad = random_hex();
    s.sads.lock().unwrap().insert(sad.clone(), SadRecord { credential: req.credential_id.clone(), hashes, expires: Instant::now() + s.options.sad_lifetime });
    Ok(Json(AuthorizeResponse { sad, expires_in: Some(s.options.sad_lifetime.as_secs().max(1)) }).into_response())
}

async fn sign_hash(State(s): State<Arc<Inner>>, headers: HeaderMap, Json(req): Json<SignHashRequest>) -> Answer {
    delay(&s).await;
    bearer(&s, &headers)?;
    s.sign_calls.fetch_add(1, Ordering::SeqCst);
    if req.hash_algorithm_oid != OID_SHA256 || req.sign_algo != OID_ECDSA_SHA256 {
        return Err(bad("Invalid parameter signAlgo"));
    }
    let hashes = decode_hashes(&req.hashes)?;
    // One use: the SAD is spent by this request whatever its outcome.
    let record = s.sads.lock().unwrap().remove(&req.sad).ok_or_else(|| bad("Invalid parameter SAD"))?;
    if record.credential != req.credential_id {
        return Err(bad("Invalid parameter SAD"));
    }
    if Instant::now() >= record.expires {
        return Err(bad("SAD expired"));
    }
    if hashes.is_empty() || hashes.iter().any(|h| !record.hashes.contains(h)) {
        return Err(bad("Hash is not authorized by the SAD"));
    }
    let (private, status) = {
        let credentials = s.credentials.lock().unwrap();
        let held = credentials.get(&req.credential_id).ok_or_else(|| bad("Invalid parameter credentialID"))?;
        (held.private, held.status)
    };
    if status != "valid" {
        return Err(bad(&format!("Signing certificate 'CN=Remote signer {}' is {status}", req.credential_id)));
    }
    let session = s.hsm.session.lock().unwrap();
    let mut signatures = Vec::new();
    for hash in &hashes {
        // CKM_ECDSA signs the hash as given and returns r‖s.
        let raw = session.sign(&Mechanism::Ecdsa, private, hash).unwrap();
        signatures.push(B64.encode(if s.options.raw_signatures { raw } else { der_signature(&raw) }));
    }
    drop(session);
    let garble = *s.garble.lock().unwrap();
    if garble == Garble::None {
        s.signatures.fetch_add(signatures.len(), Ordering::SeqCst);
    }
    Ok(garbled(garble, signatures))
}

fn garbled(garble: Garble, mut signatures: Vec<String>) -> Response {
    let json = |body: String| ([("content-type", "application/json")], body).into_response();
    let list = |s: &[String]| serde_json::to_string(s).unwrap();
    match garble {
        Garble::None => Json(SignHashResponse { signatures: Some(signatures) }).into_response(),
        Garble::RepeatedMember => json(format!("{{\"signatures\":{},\"signatures\":[]}}", list(&signatures))),
        Garble::MissingSignature => {
            signatures.pop();
            Json(SignHashResponse { signatures: Some(signatures) }).into_response()
        }
        Garble::ShortSignature => Json(SignHashResponse { signatures: Some(vec![B64.encode([7u8; 63]); signatures.len()]) }).into_response(),
        Garble::Oversized => json(format!("{{\"signatures\":{},\"pad\":\"{}\"}}", list(&signatures), "x".repeat(300 * 1024))),
        Garble::NotJson => ([("content-type", "text/html")], "<html>maintenance</html>").into_response(),
    }
}

#[derive(der::Sequence)]
struct EcdsaSigValue<'a> {
    r: der::asn1::UintRef<'a>,
    s: der::asn1::UintRef<'a>,
}

/// r‖s as a DER ECDSA-Sig-Value, as CMS-minded services answer.
fn der_signature(raw: &[u8]) -> Vec<u8> {
    use der::Encode as _;
    EcdsaSigValue { r: der::asn1::UintRef::new(&raw[..32]).unwrap(), s: der::asn1::UintRef::new(&raw[32..]).unwrap() }.to_der().unwrap()
}
