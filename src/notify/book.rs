//! Where people's notification preferences are kept: `DATA/notifications.json`, one object
//! (person id → `Preferences`), beside the other per-person file of the data directory
//! (`accounts.json`), and written the same way: a temporary file in the same folder, synced,
//! renamed over the old one, 0600. A person who never chose has the defaults and no entry.
//!
//! Several servers on one PostgreSQL database each keep their own file (as with accounts):
//! preferences set on one are not seen by another until they are copied.

use super::{Delivery, Preferences, QuietHours, Topic, hhmm};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

#[derive(Debug, thiserror::Error)]
pub enum PreferencesError {
    #[error("{0} [CARIMBO-E1420]")]
    Invalid(String),
    #[error("the notification preferences {path} cannot be read: {reason} [CARIMBO-E1421]")]
    Unreadable { path: String, reason: String },
    #[error("the notification preferences {path} cannot be written: {reason} [CARIMBO-E1422]")]
    Write { path: String, reason: String },
}

impl PreferencesError {
    pub fn code(&self) -> &'static str {
        match self {
            PreferencesError::Invalid(_) => "CARIMBO-E1420",
            PreferencesError::Unreadable { .. } => "CARIMBO-E1421",
            PreferencesError::Write { .. } => "CARIMBO-E1422",
        }
    }

    /// A client's wrong value is a 422; a file that cannot be read or written is the server's.
    pub fn status(&self) -> u16 {
        match self {
            PreferencesError::Invalid(_) => 422,
            _ => 500,
        }
    }
}

/// Preferences as a person sends them (the API's body and the page's fields): names and
/// `HH:MM` texts, checked by `parse` into `Preferences`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    /// The kinds wanted, of `task`, `reminder`, `escalation`, `returned`, `decided`, `delegation`.
    pub topics: Vec<String>,
    /// `immediate` or `digest`.
    pub delivery: String,
    /// The daily digest's time, `HH:MM` Macau time (default 17:00).
    #[serde(default)]
    pub digest_at: Option<String>,
    /// Quiet hours, `HH:MM` to `HH:MM` Macau time; both or neither.
    #[serde(default)]
    pub quiet_from: Option<String>,
    #[serde(default)]
    pub quiet_to: Option<String>,
}

impl PreferencesBody {
    /// The preferences, or every problem in one message.
    pub fn parse(&self) -> Result<Preferences, PreferencesError> {
        let mut problems: Vec<String> = Vec::new();
        let mut topics = BTreeSet::new();
        if self.topics.len() > Topic::ALL.len() * 2 {
            problems.push("topics lists too many names".into());
        }
        for name in &self.topics {
            match Topic::parse(name) {
                Some(t) => {
                    topics.insert(t);
                }
                None => problems.push(format!("topic {name:?} is not one of task, reminder, escalation, returned, decided, delegation")),
            }
        }
        let delivery = match self.delivery.as_str() {
            "immediate" => Delivery::Immediate,
            "digest" => Delivery::Digest,
            other => {
                problems.push(format!("delivery {other:?} is neither immediate nor digest"));
                Delivery::Immediate
            }
        };
        let time = |name: &str, v: &str, problems: &mut Vec<String>| {
            let t = hhmm::parse(v);
            if t.is_none() {
                problems.push(format!("{name} {v:?} is not a time of day as HH:MM (e.g. 17:00)"));
            }
            t
        };
        let digest_at = match self.digest_at.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(v) => time("digest_at", v, &mut problems),
            None => Some(Preferences::default().digest_at),
        };
        let from = self.quiet_from.as_deref().filter(|s| !s.trim().is_empty());
        let to = self.quiet_to.as_deref().filter(|s| !s.trim().is_empty());
        let quiet = match (from, to) {
            (None, None) => None,
            (Some(f), Some(t)) => {
                let (f, t) = (time("quiet_from", f, &mut problems), time("quiet_to", t, &mut problems));
                match (f, t) {
                    (Some(f), Some(t)) if f == t => {
                        problems.push("quiet hours that start and end at the same time mean nothing: leave both empty".into());
                        None
                    }
                    (Some(from), Some(to)) => Some(QuietHours { from, to }),
                    _ => None,
                }
            }
            _ => {
                problems.push("quiet hours need both quiet_from and quiet_to (or neither)".into());
                None
            }
        };
        match (problems.is_empty(), digest_at) {
            (true, Some(digest_at)) => Ok(Preferences { topics, delivery, digest_at, quiet }),
            _ => Err(PreferencesError::Invalid(problems.join("; "))),
        }
    }
}

/// The kept preferences of everyone.
pub struct PreferenceBook {
    path: PathBuf,
    people: RwLock<BTreeMap<String, Preferences>>,
}

impl PreferenceBook {
    /// Reads the file (none yet: everyone has the defaults). A damaged file is refused rather
    /// than read as "defaults", which would turn someone's choices back on silently.
    pub fn open(path: &Path) -> Result<PreferenceBook, PreferencesError> {
        let people = match std::fs::read(path) {
            Ok(bytes) => {
                crate::json_strict::from_slice(&bytes).map_err(|e| PreferencesError::Unreadable { path: path.display().to_string(), reason: e.to_string() })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(PreferencesError::Unreadable { path: path.display().to_string(), reason: e.to_string() }),
        };
        Ok(PreferenceBook { path: path.to_path_buf(), people: RwLock::new(people) })
    }

    pub fn get(&self, person: &str) -> Preferences {
        self.people.read().unwrap_or_else(|e| e.into_inner()).get(person).cloned().unwrap_or_default()
    }

    /// Keeps a person's preferences; on disk before this returns, unchanged on error.
    pub fn set(&self, person: &str, prefs: Preferences) -> Result<(), PreferencesError> {
        let mut people = self.people.write().unwrap_or_else(|e| e.into_inner());
        let mut next = people.clone();
        next.insert(person.to_string(), prefs);
        let text = serde_json::to_string_pretty(&next).expect("preferences serialise");
        write_private(&self.path, text.as_bytes()).map_err(|e| PreferencesError::Write { path: self.path.display().to_string(), reason: e.to_string() })?;
        *people = next;
        Ok(())
    }
}

/// Writes a file only the service's user reads, atomically (temporary file, sync, rename, sync
/// of the folder), so a crash leaves the old file or the new one, never half of one.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("notifications.json")));
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(topics: &[&str], delivery: &str, digest: Option<&str>, quiet: (Option<&str>, Option<&str>)) -> PreferencesBody {
        PreferencesBody {
            topics: topics.iter().map(|s| s.to_string()).collect(),
            delivery: delivery.into(),
            digest_at: digest.map(str::to_string),
            quiet_from: quiet.0.map(str::to_string),
            quiet_to: quiet.1.map(str::to_string),
        }
    }

    #[test]
    fn good_preferences_are_kept_across_a_reopen_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notifications.json");
        let book = PreferenceBook::open(&path).unwrap();
        assert_eq!(book.get("p003"), Preferences::default());
        let p = body(&["task", "reminder"], "digest", Some("16:30"), (Some("20:00"), Some("08:00"))).parse().unwrap();
        book.set("p003", p.clone()).unwrap();
        assert_eq!(PreferenceBook::open(&path).unwrap().get("p003"), p);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn every_bad_value_is_named_and_nothing_is_kept() {
        for (b, says) in [
            (body(&["tasks"], "immediate", None, (None, None)), "\"tasks\""),
            (body(&["task"], "weekly", None, (None, None)), "\"weekly\""),
            (body(&["task"], "digest", Some("5pm"), (None, None)), "digest_at \"5pm\""),
            (body(&["task"], "immediate", None, (Some("20:00"), None)), "both quiet_from and quiet_to"),
            (body(&["task"], "immediate", None, (Some("25:00"), Some("08:00"))), "quiet_from \"25:00\""),
            (body(&["task"], "immediate", None, (Some("08:00"), Some("08:00"))), "same time"),
        ] {
            let e = b.parse().unwrap_err();
            assert!(e.to_string().contains(says) && e.code() == "CARIMBO-E1420", "{says}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("n.json"), r#"{"p003": {"topics": [], "delivery": "digest", "digest_at": "17:00", "digest_at": "18:00"}}"#).unwrap();
        let e = PreferenceBook::open(&dir.path().join("n.json")).err().unwrap();
        assert_eq!(e.code(), "CARIMBO-E1421", "{e}");
    }
}
