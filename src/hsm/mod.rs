//! Signing keys that cannot be copied: each person's P-256 key generated inside an HSM and
//! used there through PKCS#11 (the `cryptoki` crate; SoftHSM2 in the demo and the tests).
//!
//! Not part of the core: it loads a shared library, reads PINs from files or the environment and
//! keeps the provider book (`DATA/hsm/people.json`). What a signature may be made for is decided
//! in `signing::activation` (pure); `cases::acts` asks this module for the signature only after
//! that check. The private key is created `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`: no call here or
//! in PKCS#11 hands it out.
//!
//! PINs come from `CARIMBO_HSM_PIN` / `CARIMBO_HSM_SO_PIN` or a file of mode 0600
//! (`--pin-file`), never from the command line, and are never printed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::signing::DeviceRule;

pub mod demo;
pub mod lifecycle;

/// Debian's SoftHSM2 module (`apt-get install softhsm2`).
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The environment variable naming the module when `--hsm-module` is not given.
pub const MODULE_ENV: &str = "CARIMBO_HSM_MODULE";
/// The token user's PIN (the service's, to open the token; the signer's consent is the TOTP
/// authorization, not this PIN).
pub const PIN_ENV: &str = "CARIMBO_HSM_PIN";
/// The token's security officer PIN (`carimbo hsm init` only).
pub const SO_PIN_ENV: &str = "CARIMBO_HSM_SO_PIN";
/// The token the demo and the tests use.
pub const DEFAULT_TOKEN: &str = "carimbo";

/// DER of the named curve P-256 (prime256v1, 1.2.840.10045.3.1.7), the key's CKA_EC_PARAMS.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// What went wrong with the HSM. Codes CARIMBO-E1450–E1459 (docs/errors-signing.md).
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("CARIMBO-E1450: the HSM module {0} cannot be loaded: {1}; install SoftHSM2 (`apt-get install softhsm2`) or give --hsm-module")]
    Module(String, String),
    #[error("CARIMBO-E1451: no token labelled {0:?} in the HSM; create it with `carimbo hsm init`")]
    NoToken(String),
    #[error("CARIMBO-E1452: no key labelled {0:?} on the token; generate it with `carimbo hsm keygen`")]
    NoKey(String),
    #[error("CARIMBO-E1453: a key labelled {0:?} is already on the token")]
    KeyExists(String),
    #[error("CARIMBO-E1454: the HSM refused: {0}")]
    Device(String),
    #[error("CARIMBO-E1455: {0}")]
    Pin(String),
    #[error("CARIMBO-E1456: the provider book {path} cannot be used: {reason}")]
    Book { path: String, reason: String },
    #[error("CARIMBO-E1457: {0} has no key on the HSM; their provider is the browser key")]
    NotOnDevice(String),
    #[error("CARIMBO-E1458: the HSM key of {0} was revoked at {1}; a new one needs `carimbo hsm rotate`")]
    Revoked(String, DateTime<Utc>),
}

impl HsmError {
    pub fn code(&self) -> &'static str {
        match self {
            HsmError::Module(..) => "CARIMBO-E1450",
            HsmError::NoToken(_) => "CARIMBO-E1451",
            HsmError::NoKey(_) => "CARIMBO-E1452",
            HsmError::KeyExists(_) => "CARIMBO-E1453",
            HsmError::Device(_) => "CARIMBO-E1454",
            HsmError::Pin(_) => "CARIMBO-E1455",
            HsmError::Book { .. } => "CARIMBO-E1456",
            HsmError::NotOnDevice(_) => "CARIMBO-E1457",
            HsmError::Revoked(..) => "CARIMBO-E1458",
        }
    }

    /// A person without a usable device key is told so (422); a broken HSM is the service's (503).
    pub fn status(&self) -> u16 {
        match self {
            HsmError::NotOnDevice(_) | HsmError::Revoked(..) => 422,
            _ => 503,
        }
    }
}

fn device(e: CkError) -> HsmError {
    HsmError::Device(e.to_string())
}

/// The module to load: the flag, else `CARIMBO_HSM_MODULE`, else Debian's SoftHSM2.
pub fn module_path(flag: Option<&Path>) -> PathBuf {
    match flag {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os(MODULE_ENV).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_MODULE)),
    }
}

/// Enforced when the module is on this machine; relaxed for the demo when it is not, so that a
/// fresh machine can still complete every route (and says so at start and in each report).
pub fn default_device_rule(module: &Path) -> DeviceRule {
    if module.is_file() { DeviceRule::Enforced } else { DeviceRule::RelaxedForDemo }
}

/// When `SOFTHSM2_CONF` is unset, writes `DATA/softhsm2.conf` with its token folder
/// `DATA/softhsm2-tokens` (both owner-only) and points SoftHSM2 at it. Call it before the module
/// is loaded and before any other thread starts: SoftHSM2 reads the variable in C_Initialize.
pub fn ensure_softhsm_conf(data: &Path) -> Result<Option<PathBuf>, HsmError> {
    if std::env::var_os("SOFTHSM2_CONF").is_some() {
        return Ok(None);
    }
    let bad = |path: &Path, e: std::io::Error| HsmError::Book { path: path.display().to_string(), reason: e.to_string() };
    let tokens = data.join("softhsm2-tokens");
    std::fs::create_dir_all(&tokens).map_err(|e| bad(&tokens, e))?;
    owner_only(&tokens, 0o700).map_err(|e| bad(&tokens, e))?;
    let conf = data.join("softhsm2.conf");
    if !conf.is_file() {
        let text = format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display());
        std::fs::write(&conf, text).map_err(|e| bad(&conf, e))?;
    }
    owner_only(&conf, 0o600).map_err(|e| bad(&conf, e))?;
    // SAFETY: called at start-up (main, or a test's first step) before the module is loaded and
    // before threads that read the environment through C's getenv are started.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
    Ok(Some(conf))
}

fn owner_only(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// A PIN from `file` (which must be 0600: nobody else may read it) or, without one, the
/// environment variable `env`. Trailing newline removed; never printed.
pub fn read_pin(env: &str, file: Option<&Path>) -> Result<AuthPin, HsmError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(file) = file {
        let meta = std::fs::metadata(file).map_err(|e| HsmError::Pin(format!("cannot read the PIN file {}: {e}", file.display())))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(HsmError::Pin(format!("the PIN file {} may be read by others: make it mode 0600", file.display())));
        }
        let text = std::fs::read_to_string(file).map_err(|e| HsmError::Pin(format!("cannot read the PIN file {}: {e}", file.display())))?;
        return pin_of(text.trim_end_matches(['\n', '\r']));
    }
    match std::env::var(env) {
        Ok(text) => pin_of(&text),
        Err(_) => Err(HsmError::Pin(format!("no PIN: set {env} or give --pin-file (a file of mode 0600)"))),
    }
}

fn pin_of(text: &str) -> Result<AuthPin, HsmError> {
    if text.len() < 4 || text.len() > 255 {
        return Err(HsmError::Pin("a PIN has 4 to 255 characters".into()));
    }
    Ok(AuthPin::from(text.to_string()))
}

/// One process-wide context per module: PKCS#11 is initialized once per process, and finalizing
/// one copy would pull the token from under every other.
fn context(module: &Path) -> Result<Arc<Pkcs11>, HsmError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Pkcs11>>>> = OnceLock::new();
    let mut modules = MODULES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(ctx) = modules.get(module) {
        return Ok(ctx.clone());
    }
    let failed = |e: CkError| HsmError::Module(module.display().to_string(), e.to_string());
    let ctx = Pkcs11::new(module).map_err(failed)?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(failed(e)),
    }
    let ctx = Arc::new(ctx);
    modules.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// A token's keys, as `carimbo hsm list` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct TokenKeys {
    pub token: String,
    pub keys: Vec<String>,
}

/// An HSM reached through its PKCS#11 module.
#[derive(Clone)]
pub struct Hsm {
    ctx: Arc<Pkcs11>,
    /// One logged-in session per token, kept for signing: a PKCS#11 login lasts while a session
    /// of the application is open, and logging in again for every signature (SoftHSM2 derives
    /// a key from the PIN each time) would cost more than the signature.
    signing: Arc<Mutex<HashMap<String, Session>>>,
}

impl Hsm {
    pub fn open(module: &Path) -> Result<Hsm, HsmError> {
        Ok(Hsm { ctx: context(module)?, signing: Arc::default() })
    }

    fn slot_of(&self, token: &str) -> Result<Slot, HsmError> {
        for slot in self.ctx.get_slots_with_initialized_token().map_err(device)? {
            if self.ctx.get_token_info(slot).map_err(device)?.label().trim() == token {
                return Ok(slot);
            }
        }
        Err(HsmError::NoToken(token.into()))
    }

    fn user_session(&self, token: &str, pin: &AuthPin) -> Result<Session, HsmError> {
        let session = self.ctx.open_rw_session(self.slot_of(token)?).map_err(device)?;
        match session.login(UserType::User, Some(pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(HsmError::Pin("the token refused the PIN".into())),
            Err(e) => Err(device(e)),
        }
    }

    /// Initializes the first free slot as token `label` with its SO PIN and user PIN.
    pub fn init_token(&self, label: &str, so_pin: &AuthPin, user_pin: &AuthPin) -> Result<(), HsmError> {
        if self.slot_of(label).is_ok() {
            return Err(HsmError::Device(format!("a token labelled {label:?} exists already")));
        }
        let mut free = None;
        for slot in self.ctx.get_slots_with_token().map_err(device)? {
            if !self.ctx.get_token_info(slot).map_err(device)?.token_initialized() {
                free = Some(slot);
                break;
            }
        }
        let slot = free.ok_or_else(|| HsmError::Device("no free slot to initialize".into()))?;
        self.ctx.init_token(slot, so_pin, label).map_err(device)?;
        // SoftHSM2 gives the new token a new slot id: find it by its label.
        let session = self.ctx.open_rw_session(self.slot_of(label)?).map_err(device)?;
        session.login(UserType::So, Some(so_pin)).map_err(device)?;
        session.init_pin(user_pin).map_err(device)?;
        Ok(())
    }

    fn find(session: &Session, class: ObjectClass, key_label: &str) -> Result<Option<ObjectHandle>, HsmError> {
        let template = [Attribute::Class(class), Attribute::Label(key_label.as_bytes().to_vec())];
        Ok(session.find_objects(&template).map_err(device)?.into_iter().next())
    }

    /// Generates a P-256 key pair labelled `key_label` inside the token; the private half is
    /// sensitive and not extractable. Returns the public point (uncompressed, 65 bytes).
    pub fn generate_p256(&self, token: &str, pin: &AuthPin, key_label: &str) -> Result<Vec<u8>, HsmError> {
        let session = self.user_session(token, pin)?;
        if Hsm::find(&session, ObjectClass::PRIVATE_KEY, key_label)?.is_some() {
            return Err(HsmError::KeyExists(key_label.into()));
        }
        let label = key_label.as_bytes().to_vec();
        let public = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Label(label.clone()),
            Attribute::Id(label.clone()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::KeyType(KeyType::EC),
            Attribute::Label(label.clone()),
            Attribute::Id(label),
        ];
        let (pub_handle, _) = session.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private).map_err(device)?;
        point_of(&session, pub_handle)
    }

    /// The public point of key `key_label` (public objects are read without logging in).
    pub fn public_point(&self, token: &str, key_label: &str) -> Result<Vec<u8>, HsmError> {
        let session = self.ctx.open_ro_session(self.slot_of(token)?).map_err(device)?;
        let handle = Hsm::find(&session, ObjectClass::PUBLIC_KEY, key_label)?.ok_or_else(|| HsmError::NoKey(key_label.into()))?;
        point_of(&session, handle)
    }

    /// ES256 over `message` (a JWS signing input) with key `key_label`: SHA-256 here, then
    /// CKM_ECDSA inside the token, whose output for P-256 is already JWS's r||s (64 bytes).
    pub fn sign_es256(&self, token: &str, pin: &AuthPin, key_label: &str, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        let digest = Sha256::digest(message);
        let mut sessions = self.signing.lock().unwrap_or_else(|e| e.into_inner());
        if !sessions.contains_key(token) {
            sessions.insert(token.to_string(), self.user_session(token, pin)?);
        }
        let session = sessions.get(token).ok_or_else(|| HsmError::NoToken(token.into()))?;
        let signed = Hsm::find(session, ObjectClass::PRIVATE_KEY, key_label)
            .and_then(|key| key.ok_or_else(|| HsmError::NoKey(key_label.into())))
            .and_then(|key| session.sign(&Mechanism::Ecdsa, key, &digest).map_err(device));
        if matches!(signed, Err(HsmError::Device(_))) {
            // A session the token dropped (removed, re-initialized) is opened afresh next time.
            sessions.remove(token);
        }
        let signature = signed?;
        if signature.len() != 64 {
            return Err(HsmError::Device(format!("an ECDSA P-256 signature of {} bytes", signature.len())));
        }
        Ok(signature)
    }

    /// Destroys both halves of key `key_label` (after a rotation, the old key signs no more).
    pub fn destroy(&self, token: &str, pin: &AuthPin, key_label: &str) -> Result<(), HsmError> {
        let session = self.user_session(token, pin)?;
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            if let Some(h) = Hsm::find(&session, class, key_label)? {
                session.destroy_object(h).map_err(device)?;
            }
        }
        Ok(())
    }

    /// Every initialized token and the labels of its public keys.
    pub fn list(&self) -> Result<Vec<TokenKeys>, HsmError> {
        let mut out = Vec::new();
        for slot in self.ctx.get_slots_with_initialized_token().map_err(device)? {
            let token = self.ctx.get_token_info(slot).map_err(device)?.label().trim().to_string();
            let session = self.ctx.open_ro_session(slot).map_err(device)?;
            let mut keys = Vec::new();
            for h in session.find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY)]).map_err(device)? {
                if let Some(Attribute::Label(l)) = session.get_attributes(h, &[AttributeType::Label]).map_err(device)?.into_iter().next() {
                    keys.push(String::from_utf8_lossy(&l).into_owned());
                }
            }
            keys.sort();
            out.push(TokenKeys { token, keys });
        }
        Ok(out)
    }
}

/// CKA_EC_POINT is a DER OCTET STRING around the uncompressed point.
fn point_of(session: &Session, handle: ObjectHandle) -> Result<Vec<u8>, HsmError> {
    let attrs = session.get_attributes(handle, &[AttributeType::EcPoint]).map_err(device)?;
    let Some(Attribute::EcPoint(der)) = attrs.into_iter().next() else {
        return Err(HsmError::Device("the key has no EC point".into()));
    };
    match der.as_slice() {
        [0x04, 0x41, point @ ..] if point.len() == 65 => Ok(point.to_vec()),
        point if point.len() == 65 && point[0] == 4 => Ok(point.to_vec()),
        _ => Err(HsmError::Device("the key's EC point is not an uncompressed P-256 point".into())),
    }
}

/// A person's key on the HSM, as published for the server (`carimbo hsm issue`): where it is,
/// its certificate chain (PEM, leaf first) and whether it was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceKey {
    pub token: String,
    pub key_label: String,
    pub serial: u64,
    pub chain_pem: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Who signs with a key on the HSM: `DATA/hsm/people.json`, person id → their current key.
/// A person not in it signs with a browser key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProviderBook {
    pub people: BTreeMap<String, DeviceKey>,
    /// Every revoked certificate of the demo CA's device keys (serial, time), for its CRL.
    #[serde(default)]
    pub revoked: Vec<(u64, DateTime<Utc>)>,
    /// The number of the last CRL issued.
    #[serde(default)]
    pub crl_number: u64,
}

impl ProviderBook {
    pub fn path(data: &Path) -> PathBuf {
        data.join("hsm").join("people.json")
    }

    /// The book in `data` (empty when there is none yet).
    pub fn load(data: &Path) -> Result<ProviderBook, HsmError> {
        let path = ProviderBook::path(data);
        let bad = |reason: String| HsmError::Book { path: path.display().to_string(), reason };
        match std::fs::read(&path) {
            Ok(bytes) => crate::json_strict::from_slice(&bytes).map_err(|e| bad(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ProviderBook::default()),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// Writes the book whole (a temporary file renamed over it), owner-only.
    pub fn save(&self, data: &Path) -> Result<(), HsmError> {
        let path = ProviderBook::path(data);
        let bad = |reason: String| HsmError::Book { path: path.display().to_string(), reason };
        let dir = path.parent().unwrap_or(data);
        std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(|e| bad(e.to_string()))?;
        std::fs::write(&tmp, text).map_err(|e| bad(e.to_string()))?;
        owner_only(&tmp, 0o600).map_err(|e| bad(e.to_string()))?;
        std::fs::rename(&tmp, &path).map_err(|e| bad(e.to_string()))
    }

    /// The person's usable device key: `NotOnDevice` when they have none, `Revoked` when it was.
    pub fn key_of(&self, person: &str) -> Result<&DeviceKey, HsmError> {
        let key = self.people.get(person).ok_or_else(|| HsmError::NotOnDevice(person.into()))?;
        match key.revoked_at {
            Some(t) => Err(HsmError::Revoked(person.into(), t)),
            None => Ok(key),
        }
    }
}

/// The HSM the server signs with: the module, the token PIN and the provider book's folder.
#[derive(Clone)]
pub struct HsmProvider {
    pub hsm: Hsm,
    pin: Arc<AuthPin>,
    pub data: PathBuf,
    /// The token new keys are generated in (`DEFAULT_TOKEN` unless `with_token`).
    token: String,
}

impl HsmProvider {
    pub fn new(hsm: Hsm, pin: AuthPin, data: &Path) -> HsmProvider {
        HsmProvider { hsm, pin: Arc::new(pin), data: data.to_path_buf(), token: DEFAULT_TOKEN.into() }
    }

    /// The same provider, generating new keys in `token`.
    pub fn with_token(mut self, token: &str) -> HsmProvider {
        self.token = token.into();
        self
    }

    /// The server's HSM when the module loads and a PIN is given; `Err` says why not (shown at
    /// start: the `hsm` provider is then off and everyone keeps browser keys).
    pub fn start(module: &Path, pin_file: Option<&Path>, data: &Path) -> Result<HsmProvider, HsmError> {
        if !module.is_file() {
            return Err(HsmError::Module(module.display().to_string(), "not installed".into()));
        }
        // No PIN: off, without touching SoftHSM2's configuration.
        let pin = read_pin(PIN_ENV, pin_file)?;
        ensure_softhsm_conf(data)?;
        Ok(HsmProvider::new(Hsm::open(module)?, pin, data))
    }

    /// The person's current device key (re-read, so `carimbo hsm issue` / `revoke` take effect
    /// at once).
    pub fn key_of(&self, person: &str) -> Result<DeviceKey, HsmError> {
        ProviderBook::load(&self.data)?.key_of(person).cloned()
    }

    pub fn sign(&self, key: &DeviceKey, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        self.hsm.sign_es256(&key.token, &self.pin, &key.key_label, message)
    }
}
