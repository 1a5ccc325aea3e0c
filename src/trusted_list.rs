//! The server's trust list: the signed history kept in `DATA/trust-list.json`.
//!
//! On first start the history shipped in `seeds/trust/trust-list.json` is copied into the data
//! directory; from then on the data directory's copy is the list (a newer shipped list is taken
//! over only when it continues the kept one entry for entry), and an administrator extends it
//! one entry at a time (`POST /api/v1/admin/trust-list/entries`, the trust-list page). The
//! entry comes signed by the trust-list operator (`carimbo trust sign`): the server never holds
//! the operator's key, it checks the entry against the history (`pki::history`), writes the whole
//! document to a temporary file, syncs it and renames it over the old one, so a crash leaves
//! either the old list or the new one and nothing is ever lost. A refused entry changes nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};

use crate::pki::history::{HistoryError, TrustEntry, TrustHistory};
use crate::pki::trust::TRUST_LIST_FILE;

/// Why the kept list could not be read, checked or written.
#[derive(Debug, thiserror::Error)]
pub enum KeptListError {
    #[error(transparent)]
    Refused(#[from] HistoryError),
    #[error("CARIMBO-E1239: the trust list {path} cannot be kept: {reason}")]
    Io { path: String, reason: String },
}

impl KeptListError {
    pub fn code(&self) -> &'static str {
        match self {
            KeptListError::Refused(e) => e.code(),
            KeptListError::Io { .. } => "CARIMBO-E1239",
        }
    }
}

/// The list in force and where it is kept.
pub struct KeptTrustList {
    path: PathBuf,
    current: RwLock<Arc<TrustHistory>>,
    /// One append at a time: each is checked against the list it extends.
    writing: Mutex<()>,
}

impl KeptTrustList {
    /// Opens `DATA/trust-list.json`, first copying `seed` there when it does not exist; the
    /// history is verified at `now` either way.
    pub fn open(data: &Path, seed: &Path, now: DateTime<Utc>) -> Result<KeptTrustList, KeptListError> {
        let path = data.join(TRUST_LIST_FILE);
        let io = |p: &Path, e: std::io::Error| KeptListError::Io { path: p.display().to_string(), reason: e.to_string() };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let b = std::fs::read(seed).map_err(|e| io(seed, e))?;
                TrustHistory::from_slice(&b, now)?;
                let text = String::from_utf8(b.clone()).map_err(|e| KeptListError::Io { path: seed.display().to_string(), reason: e.to_string() })?;
                write_atomically(&path, &text).map_err(|e| io(&path, e))?;
                b
            }
            Err(e) => return Err(io(&path, e)),
        };
        let mut history = TrustHistory::from_slice(&bytes, now)?;
        // A newer shipped list that continues the kept one (the kept entries are its first
        // ones) is taken over: entries are only ever added, so nothing kept is lost.
        if let Ok(shipped) = std::fs::read(seed).map_err(|_| ()).and_then(|b| TrustHistory::from_slice(&b, now).map_err(|_| ()))
            && shipped.entries().len() > history.entries().len()
            && shipped.entries().starts_with(history.entries())
        {
            write_atomically(&path, &shipped.document().to_pretty()).map_err(|e| io(&path, e))?;
            history = shipped;
        }
        Ok(KeptTrustList { path, current: RwLock::new(Arc::new(history)), writing: Mutex::new(()) })
    }

    /// The list in force.
    pub fn current(&self) -> Arc<TrustHistory> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The document as kept (the text evidence bundles carry).
    pub fn document_text(&self) -> String {
        self.current().document().to_pretty()
    }

    /// Checks `entry` as the next one, writes the extended list durably, then puts it in force.
    pub fn append(&self, entry: TrustEntry, now: DateTime<Utc>) -> Result<Arc<TrustHistory>, KeptListError> {
        let _one = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let next = Arc::new(self.current().appended(entry, now)?);
        write_atomically(&self.path, &next.document().to_pretty())
            .map_err(|e| KeptListError::Io { path: self.path.display().to_string(), reason: e.to_string() })?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next.clone();
        Ok(next)
    }
}

/// Writes `text` to `path` atomically: a temporary file beside it, synced, then renamed.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("trust-list.json")));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
