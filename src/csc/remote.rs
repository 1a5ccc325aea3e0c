//! The `remote` signing provider: people whose key is a credential at a trust service
//! provider's CSC v2 service. `DATA/hsm/remote.json` (beside the HSM's `people.json`) says who
//! signs there, with which credential id; `RemoteProvider` is the one connection to the service
//! the server was started with (`serve --csc-url`, the client id and secret from the
//! environment or a 0600 file, as [`CscConfig`] reads them).
//!
//! What the provider signs is built by `cases::acts`, exactly as for the HSM: the server makes
//! the JAdES header (x5c from `credentials/info`) and payload, the signer's one-time code goes
//! to `credentials/authorize` over exactly those hashes, and `signatures/signHash` signs them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::CscError;
use super::client::{CscClient, CscConfig};

/// One person's remote credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSigner {
    /// The credential id at the CSC service (`credentials/list`).
    pub credential_id: String,
}

/// Who signs at the CSC service: `DATA/hsm/remote.json`, person id → credential. A person in
/// it signs remotely; one not in it signs on the HSM (`people.json`) or with a browser key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteBook {
    pub people: BTreeMap<String, RemoteSigner>,
}

/// Why the remote book cannot be read or written: CARIMBO-E1461.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CARIMBO-E1461: the directory of remote signers {path} cannot be used: {reason}")]
pub struct RemoteBookError {
    pub path: String,
    pub reason: String,
}

impl RemoteBook {
    pub fn path(data: &Path) -> PathBuf {
        data.join("hsm").join("remote.json")
    }

    /// The book in `data` (empty when there is none yet); read with duplicate members refused.
    pub fn load(data: &Path) -> Result<RemoteBook, RemoteBookError> {
        let path = RemoteBook::path(data);
        let bad = |reason: String| RemoteBookError { path: path.display().to_string(), reason };
        match std::fs::read(&path) {
            Ok(bytes) => crate::json_strict::from_slice(&bytes).map_err(|e| bad(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RemoteBook::default()),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// Writes the book whole (a temporary file renamed over it), owner-only (0600).
    pub fn save(&self, data: &Path) -> Result<(), RemoteBookError> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = RemoteBook::path(data);
        let bad = |reason: String| RemoteBookError { path: path.display().to_string(), reason };
        std::fs::create_dir_all(path.parent().unwrap_or(data)).map_err(|e| bad(e.to_string()))?;
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(|e| bad(e.to_string()))?;
        std::fs::write(&tmp, text).map_err(|e| bad(e.to_string()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(|e| bad(e.to_string()))?;
        std::fs::rename(&tmp, &path).map_err(|e| bad(e.to_string()))
    }
}

/// A change to the remote book that is refused: CARIMBO-E1462. Nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CARIMBO-E1462: {0}")]
pub struct RemoteChangeError(pub String);

/// The longest credential id the book takes (CSC gives no limit; ids are short opaque strings).
pub const MAX_CREDENTIAL_ID: usize = 256;

impl RemoteBook {
    /// Names `person` as signing at the CSC service with `credential_id`. Refused for a person
    /// already named (remove them first: a credential is never replaced silently) and for an
    /// empty id, one over `MAX_CREDENTIAL_ID` bytes, or one with a control character or a space
    /// at either end.
    pub fn add(&mut self, person: &str, credential_id: &str) -> Result<(), RemoteChangeError> {
        if let Some(present) = self.people.get(person) {
            return Err(RemoteChangeError(format!(
                "{person} already signs remotely with credential {:?}; remove them first to give another",
                present.credential_id
            )));
        }
        if credential_id.is_empty() || credential_id.len() > MAX_CREDENTIAL_ID {
            return Err(RemoteChangeError(format!("the credential id must have 1 to {MAX_CREDENTIAL_ID} bytes; it has {}", credential_id.len())));
        }
        if credential_id.chars().any(char::is_control) || credential_id.trim() != credential_id {
            return Err(RemoteChangeError("the credential id holds a control character or begins or ends with a space".into()));
        }
        self.people.insert(person.to_string(), RemoteSigner { credential_id: credential_id.to_string() });
        Ok(())
    }

    /// Takes `person` out: from then on they sign on the HSM or with a key file.
    pub fn remove(&mut self, person: &str) -> Result<RemoteSigner, RemoteChangeError> {
        self.people.remove(person).ok_or_else(|| RemoteChangeError(format!("{person} does not sign remotely: nothing to remove")))
    }
}

/// The CSC service the server signs at, and the folder of its remote book.
#[derive(Clone)]
pub struct RemoteProvider {
    client: Arc<CscClient>,
    base_url: String,
    pub data: PathBuf,
}

impl RemoteProvider {
    pub fn new(client: CscClient, base_url: &str, data: &Path) -> RemoteProvider {
        RemoteProvider { client: Arc::new(client), base_url: base_url.trim_end_matches('/').to_string(), data: data.to_path_buf() }
    }

    /// Connects to the service at `base_url` as the client whose id and secret are in
    /// `credentials_file` (0600), else in `CARIMBO_CSC_CLIENT_ID` / `CARIMBO_CSC_CLIENT_SECRET`.
    /// `Err` says why remote signing is off (shown at start).
    pub fn start(base_url: &str, credentials_file: Option<&Path>, data: &Path) -> Result<RemoteProvider, CscError> {
        let config = match credentials_file {
            Some(file) => CscConfig::from_file(base_url, file)?,
            None => CscConfig::from_env(base_url)?,
        };
        let base = config.base_url.clone();
        Ok(RemoteProvider::new(CscClient::connect(config)?, &base, data))
    }

    pub fn client(&self) -> &CscClient {
        &self.client
    }

    /// The service's base URL, as recorded with each act signed there.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The person's credential id, when they sign remotely (re-read each time, so a change of
    /// the book takes effect at once).
    pub fn credential_of(&self, person: &str) -> Result<Option<String>, RemoteBookError> {
        Ok(RemoteBook::load(&self.data)?.people.get(person).map(|s| s.credential_id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_book_round_trips_owner_only_and_refuses_repeated_members() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        assert!(RemoteBook::load(dir.path()).unwrap().people.is_empty());
        let mut book = RemoteBook::default();
        book.people.insert("p003".into(), RemoteSigner { credential_id: "cred-p003".into() });
        book.save(dir.path()).unwrap();
        let mode = std::fs::metadata(RemoteBook::path(dir.path())).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(RemoteBook::load(dir.path()).unwrap().people["p003"].credential_id, "cred-p003");
        std::fs::write(RemoteBook::path(dir.path()), r#"{"people": {"p003": {"credential_id": "a", "credential_id": "b"}}}"#).unwrap();
        let e = RemoteBook::load(dir.path()).unwrap_err();
        assert!(e.to_string().starts_with("CARIMBO-E1461"), "{e}");
    }
}
