//! The HTTP side of the CSC API v2 client: one `ureq` agent with connect and read timeouts,
//! OAuth 2.0 client credentials (§8.3.3: the service authorization of a signing application
//! acting for its users), a size limit on every answer, and answers read through `json_strict`.
//!
//! The client secret never reaches argv or a log: it comes from the environment or a file only
//! its owner can read ([`CscConfig::from_env`], [`CscConfig::from_file`]), `Debug` hides it,
//! and errors repeat what the service said, never what carimbo sent.

use super::CscError;
use super::protocol::{
    self, AuthorizeResponse, Credential, CredentialInfoResponse, ErrorBody, InfoRequest, InfoResponse, ListRequest, ListResponse, SignHashRequest,
    SignHashResponse, TokenResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Answers of `info`, `oauth2/token` and `credentials/list` are small; `credentials/info`
/// carries a chain of at most ten certificates.
const MAX_SMALL_ANSWER: u64 = 64 * 1024;
const MAX_INFO_ANSWER: u64 = 256 * 1024;
/// `signatures/signHash` for `protocol::MAX_HASHES` DER signatures, with room for base64.
const MAX_SIGNATURES_ANSWER: u64 = 256 * 1024;
/// An access token is renewed this long before the service said it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);

/// The OAuth 2.0 client secret: shown to nobody (`Debug` prints `***`).
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> ClientSecret {
        ClientSecret(secret.into())
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Where and as whom carimbo signs remotely.
#[derive(Debug, Clone)]
pub struct CscConfig {
    /// The API's base URI, e.g. `https://tsp.example/csc/v2` (methods are `{base}/info`, …).
    pub base_url: String,
    pub client_id: String,
    pub client_secret: ClientSecret,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for an answer's head, and again for its body.
    pub read_timeout: Duration,
}

/// The members of a credentials file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    client_id: String,
    client_secret: String,
}

impl CscConfig {
    /// A configuration with the default timeouts (5 s to connect, 30 s to answer). The base
    /// URL must be `https`, or `http` to a loopback address (a test service, a local proxy).
    pub fn new(base_url: &str, client_id: &str, client_secret: ClientSecret) -> Result<CscConfig, CscError> {
        let base_url = base_url.trim_end_matches('/').to_string();
        check_url(&base_url)?;
        if client_id.is_empty() || client_secret.0.is_empty() {
            return Err(CscError::Config("the client id and the client secret must not be empty".into()));
        }
        Ok(CscConfig {
            base_url,
            client_id: client_id.to_string(),
            client_secret,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
        })
    }

    /// The client id and secret from `CARIMBO_CSC_CLIENT_ID` and `CARIMBO_CSC_CLIENT_SECRET`.
    pub fn from_env(base_url: &str) -> Result<CscConfig, CscError> {
        let var = |name: &str| std::env::var(name).map_err(|_| CscError::Config(format!("{name} is not set")));
        CscConfig::new(base_url, &var("CARIMBO_CSC_CLIENT_ID")?, ClientSecret::new(var("CARIMBO_CSC_CLIENT_SECRET")?))
    }

    /// The client id and secret from a JSON file `{"client_id": …, "client_secret": …}` that
    /// only its owner may read or write (mode 0600 or stricter); any other file is refused.
    pub fn from_file(base_url: &str, path: &Path) -> Result<CscConfig, CscError> {
        use std::os::unix::fs::PermissionsExt as _;
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| CscError::Config(format!("{shown}: {e}")))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(CscError::Config(format!("{shown} can be read by others (mode {:o}): chmod 600 it", meta.permissions().mode() & 0o777)));
        }
        if meta.len() > 16 * 1024 {
            return Err(CscError::Config(format!("{shown} is larger than 16 KiB")));
        }
        let bytes = std::fs::read(path).map_err(|e| CscError::Config(format!("{shown}: {e}")))?;
        let file: CredentialsFile = crate::json_strict::from_slice(&bytes).map_err(|e| CscError::Config(format!("{shown}: {e}")))?;
        CscConfig::new(base_url, &file.client_id, ClientSecret::new(file.client_secret))
    }
}

fn check_url(url: &str) -> Result<(), CscError> {
    let uri: ureq::http::Uri = url.parse().map_err(|e| CscError::Config(format!("base URL {url:?}: {e}")))?;
    let host = uri.host().unwrap_or("");
    let loopback = host == "localhost" || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if loopback => Ok(()),
        _ => Err(CscError::Config(format!("base URL {url:?} must be https (http only to a loopback address)"))),
    }
}

/// Signature Activation Data from `credentials/authorize`: the hashes it covers and when it
/// stops being valid. Signing consumes it, as the service does (one use). Like the client
/// secret, the SAD is a bearer credential: `Debug` does not show it.
pub struct Sad {
    credential_id: String,
    value: String,
    hashes: Vec<[u8; 32]>,
    expires: Instant,
}

impl std::fmt::Debug for Sad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sad")
            .field("credential_id", &self.credential_id)
            .field("value", &"***")
            .field("hashes", &self.hashes.len())
            .field("expires", &self.expires)
            .finish()
    }
}

impl Sad {
    pub fn hashes(&self) -> &[[u8; 32]] {
        &self.hashes
    }

    /// The SAD as the service gave it, for a `signatures/signHash` request built by the caller
    /// ([`CscClient::sign_hash_request`]).
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A connection to one CSC service, as one OAuth 2.0 client.
pub struct CscClient {
    config: CscConfig,
    agent: ureq::Agent,
    info: InfoResponse,
    token_url: String,
    token: Mutex<Option<(String, Instant)>>,
}

impl CscClient {
    /// Asks the service what it is (`info`) and gets an access token.
    pub fn connect(config: CscConfig) -> Result<CscClient, CscError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_recv_response(Some(config.read_timeout))
            .timeout_recv_body(Some(config.read_timeout))
            .max_redirects(0)
            .user_agent(concat!("carimbo/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let url = format!("{}/info", config.base_url);
        let info: InfoResponse = exchange("info", "", agent.post(&url).send_json(serde_json::json!({})), MAX_SMALL_ANSWER)?;
        let token_url = token_url(&config.base_url, &info)?;
        for method in ["credentials/info", "credentials/authorize", "signatures/signHash"] {
            if !info.methods.iter().any(|m| m == method) {
                return Err(CscError::Unsuitable {
                    credential: String::new(),
                    why: format!("the service {:?} does not offer {method}", protocol::clean(&info.name)),
                });
            }
        }
        let client = CscClient { config, agent, info, token_url, token: Mutex::new(None) };
        client.access_token()?;
        Ok(client)
    }

    pub fn info(&self) -> &InfoResponse {
        &self.info
    }

    /// An access token, asked for again shortly before the last one expires.
    fn access_token(&self) -> Result<String, CscError> {
        let mut held = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, until)) = held.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let form = [("grant_type", "client_credentials"), ("client_id", &self.config.client_id), ("client_secret", &self.config.client_secret.0)];
        let answer: TokenResponse = exchange("oauth2/token", "", self.agent.post(&self.token_url).send_form(form), MAX_SMALL_ANSWER)?;
        if !answer.token_type.eq_ignore_ascii_case("bearer") || answer.access_token.is_empty() {
            return Err(CscError::Malformed {
                method: "oauth2/token".into(),
                what: format!("token type {:?}, not a Bearer token", protocol::clean(&answer.token_type)),
            });
        }
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600)).saturating_sub(TOKEN_MARGIN);
        *held = Some((answer.access_token.clone(), Instant::now() + lifetime));
        Ok(answer.access_token)
    }

    /// One method call with the access token; a token the service no longer accepts (HTTP 401,
    /// so the request was not carried out) is replaced once and the call made again.
    fn call<Req: Serialize, Resp: DeserializeOwned>(&self, method: &str, credential: &str, body: &Req, limit: u64) -> Result<Resp, CscError> {
        let url = format!("{}/{method}", self.config.base_url);
        let send = |token: &str| exchange(method, credential, self.agent.post(&url).header("authorization", &format!("Bearer {token}")).send_json(body), limit);
        match send(&self.access_token()?) {
            Err(CscError::ServiceAuth { .. }) => {
                *self.token.lock().unwrap_or_else(|p| p.into_inner()) = None;
                send(&self.access_token()?)
            }
            other => other,
        }
    }

    /// `credentials/list`: the ids of the credentials this client may use.
    pub fn credentials_list(&self) -> Result<Vec<String>, CscError> {
        let answer: ListResponse = self.call("credentials/list", "", &ListRequest { user_id: None, only_valid: true }, MAX_SMALL_ANSWER)?;
        Ok(answer.credential_ids)
    }

    /// `credentials/info` as the service answered it.
    pub fn credential_info(&self, credential_id: &str) -> Result<CredentialInfoResponse, CscError> {
        self.call("credentials/info", credential_id, &InfoRequest::chain_of(credential_id), MAX_INFO_ANSWER)
    }

    /// `credentials/info`, checked for signing (see [`Credential::from_info`]).
    pub fn credential(&self, credential_id: &str) -> Result<Credential, CscError> {
        Credential::from_info(credential_id, self.credential_info(credential_id)?)
    }

    /// `credentials/authorize` for `hashes` with the signer's one-time code.
    pub fn authorize(&self, credential: &Credential, otp: &str, hashes: &[[u8; 32]]) -> Result<Sad, CscError> {
        let request = protocol::authorize_request(credential, otp, hashes)?;
        let asked = Instant::now();
        let answer: AuthorizeResponse = self.call("credentials/authorize", &credential.id, &request, MAX_SMALL_ANSWER)?;
        if answer.sad.is_empty() {
            return Err(CscError::Malformed { method: "credentials/authorize".into(), what: "an empty SAD".into() });
        }
        // The lifetime counts from the request, so carimbo never believes a SAD lives longer
        // than the service does.
        let expires = asked + Duration::from_secs(answer.expires_in.unwrap_or(3600));
        Ok(Sad { credential_id: credential.id.clone(), value: answer.sad, hashes: hashes.to_vec(), expires })
    }

    /// `signatures/signHash` for `hashes` under `sad`, after checking here that the SAD still
    /// lives and covers every hash (nothing is sent otherwise).
    pub fn sign_with(&self, sad: Sad, hashes: &[[u8; 32]]) -> Result<Vec<[u8; 64]>, CscError> {
        if Instant::now() >= sad.expires {
            return Err(CscError::SadExpired { credential: sad.credential_id });
        }
        if hashes.is_empty() || !protocol::not_covered(&sad.hashes, hashes).is_empty() {
            return Err(CscError::HashNotCovered { credential: sad.credential_id });
        }
        let answer = self.sign_hash_request(&protocol::sign_hash_request(&sad.credential_id, &sad.value, hashes))?;
        protocol::signatures_of(answer, hashes.len())
    }

    /// `signatures/signHash` as given, with no check here: what the service itself refuses.
    pub fn sign_hash_request(&self, request: &SignHashRequest) -> Result<SignHashResponse, CscError> {
        self.call("signatures/signHash", &request.credential_id, request, MAX_SIGNATURES_ANSWER)
    }
}

/// The token endpoint: `{oauth2}/oauth2/token` (§8.3.3) where `info` names an OAuth 2.0
/// server, else under the base URL. The client secret goes there, so a server on another
/// origin than the base URL (which the administrator chose) is refused.
fn token_url(base_url: &str, info: &InfoResponse) -> Result<String, CscError> {
    if !info.auth_type.iter().any(|t| t == "oauth2client") {
        return Err(CscError::Unsuitable { credential: String::new(), why: format!("the service offers {:?}, not oauth2client", info.auth_type) });
    }
    let server = info.oauth2.as_deref().map(|s| s.trim_end_matches('/')).unwrap_or(base_url);
    let origin = |u: &str| u.parse::<ureq::http::Uri>().ok().map(|u| (u.scheme_str().map(str::to_string), u.authority().map(|a| a.to_string())));
    if origin(server).is_none() || origin(server) != origin(base_url) {
        return Err(CscError::Config(format!("the service's OAuth 2.0 server {:?} is not on the base URL's origin", protocol::clean(server))));
    }
    Ok(format!("{server}/oauth2/token"))
}

/// One request's answer, read within `limit` bytes: the typed answer, or the error it means.
fn exchange<Resp: DeserializeOwned>(
    method: &str,
    credential: &str,
    sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    limit: u64,
) -> Result<Resp, CscError> {
    let mut response = sent.map_err(|e| transport(method, e))?;
    let status = response.status().as_u16();
    let body = response.body_mut().with_config().limit(limit).read_to_vec().map_err(|e| transport(method, e))?;
    if !(200..300).contains(&status) {
        let error: Option<ErrorBody> = crate::json_strict::from_slice(&body).ok();
        return Err(protocol::refusal(method, credential, status, error));
    }
    crate::json_strict::from_slice(&body).map_err(|e| CscError::Malformed { method: method.into(), what: protocol::clean(&e.to_string()) })
}

fn transport(method: &str, e: ureq::Error) -> CscError {
    let timed_out = match &e {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock),
        _ => false,
    };
    if timed_out {
        return CscError::Timeout { method: method.into(), after: protocol::clean(&e.to_string()) };
    }
    if let ureq::Error::BodyExceedsLimit(limit) = e {
        return CscError::Malformed { method: method.into(), what: format!("an answer larger than {limit} bytes") };
    }
    CscError::Refused { method: method.into(), status: 0, error: "unreachable".into(), description: protocol::clean(&e.to_string()) }
}

/// Signs `hashes` (SHA-256 digests) with the credential: `credentials/info` (its status now),
/// one `credentials/authorize` with `numSignatures` = N and the signer's OTP, one
/// `signatures/signHash`. The signatures are JWS ES256 values (r‖s), in the order of `hashes`.
pub fn sign_hashes(client: &CscClient, credential_id: &str, otp: &str, hashes: &[[u8; 32]]) -> Result<Vec<[u8; 64]>, CscError> {
    let credential = client.credential(credential_id)?;
    let sad = client.authorize(&credential, otp, hashes)?;
    client.sign_with(sad, hashes)
}

/// [`sign_hashes`] for one hash.
pub fn sign_hash(client: &CscClient, credential_id: &str, otp: &str, hash: &[u8; 32]) -> Result<[u8; 64], CscError> {
    let mut one = sign_hashes(client, credential_id, otp, std::slice::from_ref(hash))?;
    one.pop().ok_or_else(|| CscError::Malformed { method: "signatures/signHash".into(), what: "no signature".into() })
}
