//! Time-stamping for the server: which TSA stamps the acts, carimbo's own TSA, and the RFC 3161
//! HTTP transport (§3.4: a DER `TimeStampReq` posted as `application/timestamp-query`, a DER
//! `TimeStampResp` answered as `application/timestamp-reply`).
//!
//! This is the shell around `signing::timestamp` (which is pure): it reads the clock, keeps
//! the serial-number counter on disk and talks HTTP. `TimeStamping::choose` is the one place
//! that decides how the server stamps:
//! - `serve --tsa URL` (repeatable): those TSAs, tried in order with a timeout each;
//! - otherwise, when the demo TSA's key is in the seeds (`seeds/pki/tsa/`): the server stamps
//!   with it in-process, making and checking real RFC 3161 tokens without a network hop;
//! - otherwise time-stamping is off, the server says so at start, and acts stay JAdES B-B.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::signing::timestamp::{self, DEFAULT_TSA_POLICY, MAX_TOKEN_BYTES, TimeStampError, TsaSigner};

/// The media types of RFC 3161 §3.4.
pub const QUERY_TYPE: &str = "application/timestamp-query";
pub const REPLY_TYPE: &str = "application/timestamp-reply";
/// How long one TSA may take before the next is asked.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Serial numbers reserved on disk at a time: the counter file is written once per block, not
/// once per token, and a restart skips the rest of the block (numbers stay unique and rising).
const SERIAL_BLOCK: u32 = 1000;

/// The serial numbers of one TSA instance (RFC 3161 §2.4.2: unique per TSA): the file's random
/// 32-bit instance number in the high half, so two instances sharing a TSA certificate never
/// repeat each other's numbers, and a counter that only rises in the low half.
pub struct SerialCounter {
    path: PathBuf,
    state: Mutex<SerialState>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct SerialFile {
    instance: u32,
    /// The first counter value not yet reserved.
    next: u32,
}

struct SerialState {
    file: SerialFile,
    next: u32,
}

impl SerialCounter {
    /// Open (or create) the counter in `path`, e.g. `DATA/tsa/serial.json`.
    pub fn open(path: &Path) -> Result<SerialCounter, TimeStampError> {
        let fail = |reason: String| TimeStampError::SerialCounter { path: path.display().to_string(), reason };
        let file = match std::fs::read(path) {
            Ok(bytes) => crate::json_strict::from_slice::<SerialFile>(&bytes).map_err(|e| fail(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = [0u8; 4];
                getrandom::fill(&mut b).map_err(|e| fail(format!("no OS randomness: {e}")))?;
                SerialFile { instance: u32::from_be_bytes(b), next: 1 }
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        Ok(SerialCounter { path: path.to_path_buf(), state: Mutex::new(SerialState { file, next: file.next }) })
    }

    /// The next serial number; reserves a new block on disk (written and synced) when needed.
    pub fn next(&self) -> Result<u64, TimeStampError> {
        let fail = |reason: String| TimeStampError::SerialCounter { path: self.path.display().to_string(), reason };
        let mut s = self.state.lock().map_err(|_| fail("the counter lock is poisoned".into()))?;
        if s.next >= s.file.next {
            let reserved = SerialFile {
                instance: s.file.instance,
                next: s.next.checked_add(SERIAL_BLOCK).ok_or_else(|| fail("the counter is exhausted; remove the file to start a new instance".into()))?,
            };
            write_synced(&self.path, &serde_json::to_vec(&reserved).map_err(|e| fail(e.to_string()))?).map_err(|e| fail(e.to_string()))?;
            s.file = reserved;
        }
        let serial = (u64::from(s.file.instance) << 32) | u64::from(s.next);
        s.next += 1;
        Ok(serial)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// carimbo's own TSA: a key, a certificate and a serial counter.
pub struct LocalTsa {
    pub signer: TsaSigner,
    serials: SerialCounter,
}

impl LocalTsa {
    /// `key` and `cert` as PEM files (the certificate file may carry intermediates after the
    /// TSA's own); the counter in `data/tsa/serial.json`.
    pub fn open(key: &Path, cert: &Path, policy: &str, data: &Path) -> Result<LocalTsa, TimeStampError> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| TimeStampError::BadTsaKey(format!("cannot read {}: {e}", p.display())));
        let signer = TsaSigner::from_pem(&read(key)?, &read(cert)?, policy)?;
        if let Some(why) = timestamp::eku_violation(signer.certificate_der()) {
            return Err(TimeStampError::BadTsaKey(why));
        }
        Ok(LocalTsa { signer, serials: SerialCounter::open(&data.join("tsa/serial.json"))? })
    }

    /// A token over `stamped`, now.
    pub fn stamp(&self, stamped: &[u8]) -> Result<Vec<u8>, TimeStampError> {
        self.signer.stamp(stamped, self.serials.next()?, Utc::now())
    }

    /// The reply to one RFC 3161 request, now.
    pub fn respond(&self, request: &[u8]) -> Result<Vec<u8>, TimeStampError> {
        Ok(self.signer.respond(request, self.serials.next()?, Utc::now()))
    }
}

/// A client of remote TSAs, asked in order until one answers.
pub struct TsaClient {
    urls: Vec<String>,
    agent: ureq::Agent,
}

impl TsaClient {
    pub fn new(urls: Vec<String>, timeout: Duration) -> TsaClient {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .user_agent(concat!("carimbo/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        TsaClient { urls, agent }
    }

    /// A token over `stamped` from the first TSA that gives a good one.
    pub fn stamp(&self, stamped: &[u8]) -> Result<Vec<u8>, TimeStampError> {
        let mut failures = Vec::new();
        for url in &self.urls {
            match self.ask(url, stamped) {
                Ok(token) => return Ok(token),
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        Err(TimeStampError::Unreachable(failures.join("; ")))
    }

    fn ask(&self, url: &str, stamped: &[u8]) -> Result<Vec<u8>, TimeStampError> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| TimeStampError::Encoding(format!("no OS randomness: {e}")))?;
        let pending = timestamp::request(stamped, nonce)?;
        let mut response =
            self.agent.post(url).header("content-type", QUERY_TYPE).send(&pending.der[..]).map_err(|e| TimeStampError::BadReply(format!("no answer: {e}")))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(TimeStampError::BadReply(format!("HTTP status {status}")));
        }
        let media = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        if media.split(';').next().map(str::trim) != Some(REPLY_TYPE) {
            return Err(TimeStampError::BadReply(format!("content type {media:?}, not {REPLY_TYPE}")));
        }
        let body = response.body_mut().with_config().limit(MAX_TOKEN_BYTES as u64).read_to_vec().map_err(|e| TimeStampError::BadReply(e.to_string()))?;
        timestamp::token_from_reply(&body, &pending)
    }
}

/// How the server stamps its acts' signatures.
pub enum TimeStamping {
    Off,
    InProcess(Box<LocalTsa>),
    Remote(TsaClient),
}

impl TimeStamping {
    /// The one choice (see the module comment): `--tsa` URLs first, then the demo TSA of the
    /// seeds (`PKI/tsa/tsa.key.pem`, `tsa.pem`; serials under `data`), else off.
    pub fn choose(urls: &[String], timeout: Duration, pki: &Path, data: &Path) -> Result<TimeStamping, TimeStampError> {
        if !urls.is_empty() {
            for url in urls {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(TimeStampError::BadUrl(url.clone()));
                }
            }
            return Ok(TimeStamping::Remote(TsaClient::new(urls.to_vec(), timeout)));
        }
        let (key, cert) = (pki.join(crate::pki::demo::TSA_KEY), pki.join(crate::pki::demo::TSA_CERT));
        if key.exists() && cert.exists() {
            return Ok(TimeStamping::InProcess(Box::new(LocalTsa::open(&key, &cert, DEFAULT_TSA_POLICY, data)?)));
        }
        Ok(TimeStamping::Off)
    }

    /// What the server says about time-stamping at start.
    pub fn describe(&self) -> String {
        match self {
            TimeStamping::Off => "time-stamping is off: acts are JAdES B-B (the signer's claimed time only); give --tsa URL, or put the demo TSA in seeds/pki/tsa/ (carimbo pki demo-tsa)".into(),
            TimeStamping::InProcess(tsa) => format!("time-stamping every act (JAdES B-T) with the demo TSA in-process, policy {}", tsa.signer.policy()),
            TimeStamping::Remote(client) => format!("time-stamping every act (JAdES B-T) with {} (tried in this order)", client.urls.join(", ")),
        }
    }

    /// Whether each token must be verified before it is kept. A remote TSA's must (it may be
    /// misconfigured, replaced or not on the trust list); the in-process TSA signs every token
    /// with the same key and certificate, which `self_test` checked at start, so re-verifying
    /// each of its tokens would only double the cost of an act.
    pub fn checks_each_token(&self) -> bool {
        matches!(self, TimeStamping::Remote(_))
    }

    /// At start: the in-process TSA's first token must verify against the trust list the
    /// server verifies signatures with, or the server does not start.
    pub fn self_test(&self, verifier: &crate::signing::SignatureVerifier) -> Result<(), TimeStampError> {
        if let TimeStamping::InProcess(tsa) = self {
            let probe = b"carimbo time-stamp self-test";
            let token = tsa.stamp(probe)?;
            verifier.timestamps().verify(&token, probe).map_err(|f| TimeStampError::Unaccepted(format!("{} [{}]", f.detail, f.code)))?;
        }
        Ok(())
    }

    /// A token over `stamped`, or `None` when time-stamping is off.
    pub fn stamp(&self, stamped: &[u8]) -> Result<Option<Vec<u8>>, TimeStampError> {
        match self {
            TimeStamping::Off => Ok(None),
            TimeStamping::InProcess(tsa) => tsa.stamp(stamped).map(Some),
            TimeStamping::Remote(client) => client.stamp(stamped).map(Some),
        }
    }
}

/// The `carimbo tsa` HTTP service: `POST /` or `POST /tsa` with a DER request.
pub fn router(tsa: Arc<LocalTsa>) -> axum::Router {
    use axum::routing::post;
    axum::Router::new().route("/", post(answer)).route("/tsa", post(answer)).layer(axum::extract::DefaultBodyLimit::max(MAX_TOKEN_BYTES)).with_state(tsa)
}

async fn answer(axum::extract::State(tsa): axum::extract::State<Arc<LocalTsa>>, headers: HeaderMap, body: Bytes) -> Response {
    let media = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if media.split(';').next().map(str::trim) != Some(QUERY_TYPE) {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("CARIMBO-E1220: send a DER TimeStampReq as {QUERY_TYPE} (RFC 3161 §3.4), not {media:?}\n"))
            .into_response();
    }
    match tokio::task::spawn_blocking(move || tsa.respond(&body)).await {
        Ok(Ok(reply)) => ([(header::CONTENT_TYPE, REPLY_TYPE)], reply).into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "CARIMBO-E1209: the time-stamp could not be made\n").into_response(),
    }
}
