//! The accounts' audit log: what happened to people's second factors, for whoever has to find
//! out later who reset whose factor or whether someone was guessing codes.
//!
//! One JSON object per line (`DATA/audit.jsonl`), only ever appended to (`O_APPEND`, synced per
//! line), created 0600. It holds person ids and times, never a code, secret or password. The
//! events are case-independent, so they live here and not in the hash-chained case store.

use super::AccountError;
use super::sealing::private_file;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditEvent {
    /// A wrong second-factor code (`failures`: how many in the current window).
    SecondFactorFailed,
    /// Too many wrong codes: codes are refused until `until`.
    SecondFactorLocked,
    /// A first second factor was confirmed.
    SecondFactorEnrolled,
    /// An enrolled second factor was replaced, authorised by a code of the old one.
    SecondFactorReplaced,
    /// An administrator (`by`) removed a person's second factor.
    SecondFactorReset,
}

/// One line of the log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry<'a> {
    pub at: DateTime<Utc>,
    pub event: AuditEvent,
    /// Whose account.
    pub person: &'a str,
    /// Who did it, when not the person (an administrator's reset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl<'a> AuditEntry<'a> {
    pub fn new(at: DateTime<Utc>, event: AuditEvent, person: &'a str) -> Self {
        AuditEntry { at, event, person, by: None, failures: None, until: None }
    }
}

pub struct AuditLog {
    path: PathBuf,
    /// One writer at a time, so lines never interleave.
    write: Mutex<()>,
}

impl AuditLog {
    pub fn new(path: &Path) -> AuditLog {
        AuditLog { path: path.to_path_buf(), write: Mutex::new(()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line and syncs it to disk before returning.
    pub fn append(&self, entry: &AuditEntry<'_>) -> Result<(), AccountError> {
        let io = |e: std::io::Error| AccountError::AuditLog { path: self.path.display().to_string(), reason: e.to_string() };
        let mut line = serde_json::to_vec(entry).map_err(|e| AccountError::AuditLog { path: self.path.display().to_string(), reason: e.to_string() })?;
        line.push(b'\n');
        let _one = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut file = private_file().create(true).append(true).open(&self.path).map_err(io)?;
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_appended_as_json_lines_to_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(&dir.path().join("audit.jsonl"));
        let now = Utc::now();
        log.append(&AuditEntry { by: Some("p032"), ..AuditEntry::new(now, AuditEvent::SecondFactorReset, "p005") }).unwrap();
        log.append(&AuditEntry { failures: Some(2), ..AuditEntry::new(now, AuditEvent::SecondFactorFailed, "p005") }).unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0]["event"].as_str(), lines[0]["by"].as_str(), lines[0]["person"].as_str()),
            (Some("second-factor-reset"), Some("p032"), Some("p005"))
        );
        assert_eq!((lines[1]["event"].as_str(), lines[1]["failures"].as_u64()), (Some("second-factor-failed"), Some(2)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(log.path()).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
