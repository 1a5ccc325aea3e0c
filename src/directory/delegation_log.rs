//! The record of delegations people set for themselves ("out of office") and that
//! administrators end: `DATA/delegations.jsonl`, one JSON object per line, only ever appended to
//! (synced per line, 0600 like the accounts' audit log). At start the server replays it over the
//! seeded directory, so a delegation survives a restart and every change keeps who made it and
//! when. The staff directory file itself (`seeds/directory/directory.json`) is the administration's
//! and is never rewritten.
//!
//! A line is either `set` (the whole delegation, by whom) or `ended` (its id, by whom). Ending
//! removes the delegation from the directory from then on; acts already made under it keep their
//! "A for B under delegation D" record in the case.

use super::{Delegation, Directory};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One line of the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DelegationEntry {
    /// A delegation set (or replaced, same id) by `by`: the principal themself or an administrator.
    Set { at: DateTime<Utc>, by: String, delegation: Delegation },
    /// A delegation ended by `by`.
    Ended { at: DateTime<Utc>, by: String, id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum DelegationLogError {
    #[error("the delegation record {path} cannot be written: {reason} [CARIMBO-E1310]")]
    Write { path: String, reason: String },
    #[error("the delegation record {path} is damaged at line {line}: {reason} [CARIMBO-E1311]")]
    Damaged { path: String, line: usize, reason: String },
}

impl DelegationLogError {
    pub fn code(&self) -> &'static str {
        match self {
            DelegationLogError::Write { .. } => "CARIMBO-E1310",
            DelegationLogError::Damaged { .. } => "CARIMBO-E1311",
        }
    }
}

pub struct DelegationLog {
    path: PathBuf,
    write: Mutex<()>,
}

impl DelegationLog {
    pub fn new(path: &Path) -> DelegationLog {
        DelegationLog { path: path.to_path_buf(), write: Mutex::new(()) }
    }

    /// Every entry, in order (none when the file does not exist yet). A torn last line (a crash
    /// while appending) is left out; damage anywhere else is refused.
    pub fn entries(&self) -> Result<Vec<DelegationEntry>, DelegationLogError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(DelegationLogError::Damaged { path: self.path.display().to_string(), line: 0, reason: e.to_string() }),
        };
        let complete = text.ends_with('\n');
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match crate::json_strict::from_slice::<DelegationEntry>(line.as_bytes()) {
                Ok(e) => out.push(e),
                Err(_) if i + 1 == lines.len() && !complete => break,
                Err(e) => return Err(DelegationLogError::Damaged { path: self.path.display().to_string(), line: i + 1, reason: e.to_string() }),
            }
        }
        Ok(out)
    }

    /// Appends one entry and syncs it to disk before returning.
    pub fn append(&self, entry: &DelegationEntry) -> Result<(), DelegationLogError> {
        let io = |e: String| DelegationLogError::Write { path: self.path.display().to_string(), reason: e };
        let mut line = serde_json::to_vec(entry).map_err(|e| io(e.to_string()))?;
        line.push(b'\n');
        let _one = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut options = std::fs::OpenOptions::new();
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.create(true).append(true).open(&self.path).map_err(|e| io(e.to_string()))?;
        file.write_all(&line).map_err(|e| io(e.to_string()))?;
        file.sync_data().map_err(|e| io(e.to_string()))
    }
}

/// The directory with the record's entries applied in order. An entry the directory refuses now
/// (a person who has since left it) is skipped and named, so one stale line cannot stop the
/// server.
pub fn replay(mut dir: Directory, entries: &[DelegationEntry]) -> (Directory, Vec<String>) {
    let mut skipped = Vec::new();
    for e in entries {
        match e {
            DelegationEntry::Set { delegation, .. } => {
                if let Err(err) = dir.add_delegation(delegation.clone()) {
                    skipped.push(format!("delegation {}: {err}", delegation.id));
                }
            }
            DelegationEntry::Ended { id, .. } => {
                dir.end_delegation(id);
            }
        }
    }
    (dir, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn delegation(id: &str) -> Delegation {
        Delegation {
            id: id.into(),
            delegate: "p004".into(),
            principal: "p003".into(),
            from: NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 7, 10).unwrap(),
            forms: None,
            reason: None,
        }
    }

    #[test]
    fn a_set_and_an_ended_delegation_survive_a_reopen_and_replay_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = DelegationLog::new(&dir.path().join("delegations.jsonl"));
        assert!(log.entries().unwrap().is_empty(), "no file yet: no entries");
        let at = Utc::now();
        log.append(&DelegationEntry::Set { at, by: "p003".into(), delegation: delegation("ooo-1") }).unwrap();
        log.append(&DelegationEntry::Set { at, by: "p003".into(), delegation: delegation("ooo-2") }).unwrap();
        log.append(&DelegationEntry::Ended { at, by: "p032".into(), id: "ooo-1".into() }).unwrap();
        let entries = DelegationLog::new(&dir.path().join("delegations.jsonl")).entries().unwrap();
        assert_eq!(entries.len(), 3);
        let seeded = Directory::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/directory/directory.json")).unwrap();
        let before = seeded.delegations().len();
        let (after, skipped) = replay(seeded, &entries);
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(after.delegations().len(), before + 1);
        assert!(after.delegations().iter().any(|d| d.id == "ooo-2") && !after.delegations().iter().any(|d| d.id == "ooo-1"));
    }

    #[test]
    fn a_torn_last_line_is_left_out_and_damage_before_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("delegations.jsonl");
        let log = DelegationLog::new(&path);
        log.append(&DelegationEntry::Ended { at: Utc::now(), by: "p032".into(), id: "x".into() }).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"event\":\"set\",\"at\"");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(log.entries().unwrap().len(), 1, "the torn tail of a crash is left out");
        std::fs::write(&path, format!("not json\n{text}\n")).unwrap();
        let err = log.entries().unwrap_err();
        assert_eq!(err.code(), "CARIMBO-E1311");
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
