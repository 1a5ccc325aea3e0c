//! Publishing definitions: an administrator's checked upload becomes the served version,
//! durably, as a recorded `Publication` in the store.
//!
//! What a server serves is the definition files it was started with, except that for every id
//! published through the API the latest published version wins, whatever the files say
//! (`docs/storage.md`, "Published definitions"): a restart, or another server on the same
//! PostgreSQL database, serves what was published. Versions only increase and a version names
//! one content: the same id and version with other bytes, or a version lower than the one
//! served, is a problem of the upload (`version_problems`), and an identical upload publishes
//! nothing.

use super::{CaseError, CaseService};
use crate::catalog::{Catalog, SourceFile};
use crate::forms::{Detail, ErrorCode, Problem};
use crate::store::{Publication, PublishedDefinition};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The same id and version as the served one, with other content.
pub const VERSION_REUSED: ErrorCode = ErrorCode("CARIMBO-E0709");
/// A version lower than the one served.
pub const VERSION_LOWER: ErrorCode = ErrorCode("CARIMBO-E0710");

/// Places of a change listed in a publication, at most.
const MAX_CHANGES: usize = 200;

/// How often a server asks the store whether another server published (`watch_publications`).
pub(super) const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// `MAJOR.MINOR.PATCH` as numbers, if it is one.
fn version_of(v: &str) -> Option<(u64, u64, u64)> {
    let mut it = v.split('.').map(|n| n.parse::<u64>().ok());
    let version = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(version)
}

/// The kind, id and version a definition file declares, when it declares them as strings.
fn declared(bytes: &[u8]) -> Option<(String, String, String)> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Some((s("kind")?, s("id")?, s("version")?))
}

/// The kind and id of a reference file (calendar, rates table), and its hash.
fn reference_of(src: &SourceFile) -> Option<(String, String, String)> {
    let v: Value = serde_json::from_slice(&src.bytes).ok()?;
    let kind = v.get("kind")?.as_str()?.to_string();
    let id = v.get("id")?.as_str()?.to_string();
    Some((kind, id, hex::encode(Sha256::digest(&src.bytes))))
}

/// Where a published definition is named when it is loaded again (the id check reads the stem).
fn file_name(kind: &str, id: &str) -> String {
    match kind {
        "form" | "workflow" => format!("{kind}s/{id}.json"),
        _ => format!("forms/reference/{id}.json"),
    }
}

/// The served version of a form or workflow: version, content hash and definition JSON.
fn served<'c>(catalog: &'c Catalog, kind: &str, id: &str) -> Option<(&'c str, &'c str, &'c Value)> {
    match kind {
        "form" => catalog.forms.get(id).map(|f| (f.version.as_str(), f.content_hash.as_str(), &f.source)),
        "workflow" => catalog.workflows.get(id).map(|w| (w.version.as_str(), w.content_hash.as_str(), &w.source)),
        _ => None,
    }
}

/// Whether a file holds the same JSON as a served definition: the same content written out
/// differently (spacing, member order) publishes nothing and needs no new version.
fn same_json(bytes: &[u8], served: &Value) -> bool {
    serde_json::from_slice::<Value>(bytes).is_ok_and(|v| &v == served)
}

/// The served bytes of the definition a file holds, when it holds the same JSON (written out
/// differently or not): an upload of what is served then serves and pins exactly the same bytes.
pub fn served_bytes_if_same(serving: &Catalog, bytes: &[u8]) -> Option<Vec<u8>> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let (kind, id) = (v.get("kind")?.as_str()?, v.get("id")?.as_str()?);
    if let Some((_, hash, source)) = served(serving, kind, id) {
        return (source == &v).then(|| serving.sources.get(hash).map(|b| b.to_vec())).flatten();
    }
    serving.reference_sources.iter().find(|src| serde_json::from_slice::<Value>(&src.bytes).is_ok_and(|r| r == v)).map(|src| src.bytes.clone())
}

/// What is wrong with the versions of an upload, compared with what is served: a version is
/// one content for ever (the same version with other bytes is refused) and versions only
/// increase (a lower one is refused). An identical file is no problem: it changes nothing.
pub fn version_problems(serving: &Catalog, uploaded: &[SourceFile]) -> Vec<Problem> {
    let mut out = Vec::new();
    for src in uploaded {
        let Some((kind, id, version)) = declared(&src.bytes) else { continue };
        let Some((served_version, served_hash, served_source)) = served(serving, &kind, &id) else { continue };
        let hash = hex::encode(Sha256::digest(&src.bytes));
        if hash == served_hash || same_json(&src.bytes, served_source) {
            continue;
        }
        let (Some(new), Some(old)) = (version_of(&version), version_of(served_version)) else { continue };
        let problem = |code, detail| Problem::new(src.name.clone(), "/version", code, detail);
        let (served, version) = (served_version.to_string(), version.clone());
        if new == old {
            let hash = served_hash.chars().take(12).collect();
            out.push(problem(VERSION_REUSED, Detail::VersionReused { kind: kind.clone(), id: id.clone(), version, hash, served }));
        } else if new < old {
            out.push(problem(VERSION_LOWER, Detail::VersionLower { kind: kind.clone(), id: id.clone(), version, served }));
        }
    }
    out
}

/// One definition of a new publication, with what changed from the version served before.
fn published(kind: &str, id: &str, version: &str, hash: &str, source: &Value, before: Option<(&str, &str, &Value)>) -> PublishedDefinition {
    let mut changes = Vec::new();
    if let Some((_, _, old)) = before {
        let mut diff = Vec::new();
        crate::workflow::engine::diff("", old, source, &mut diff);
        changes = diff.into_iter().map(|c| if c.pointer.is_empty() { "/".to_string() } else { c.pointer }).collect();
    }
    let changes_truncated = changes.len() > MAX_CHANGES;
    changes.truncate(MAX_CHANGES);
    PublishedDefinition {
        kind: kind.to_string(),
        id: id.to_string(),
        version: version.to_string(),
        hash: hash.to_string(),
        previous_version: before.map(|b| b.0.to_string()),
        previous_hash: before.map(|b| b.1.to_string()),
        changes,
        changes_truncated,
    }
}

impl CaseService {
    /// Publishes a checked set of definitions (the catalog of an upload that had no problem,
    /// `http::api::check_upload`): every form and workflow whose content differs from the served
    /// one is stored, recorded as one `Publication` by `by` at `now`, and served from then on.
    /// `None` when nothing differs (an identical upload is a no-op). `PublicationConflict` when
    /// another server published since this one last looked: nothing changed, check again.
    pub fn publish(&self, checked: Catalog, by: &str, now: DateTime<Utc>) -> Result<Option<Publication>, CaseError> {
        let (current, known) = {
            let defs = self.definitions.read().unwrap_or_else(|e| e.into_inner());
            (defs.catalog.clone(), defs.publication_seq)
        };
        let mut definitions = Vec::new();
        for f in checked.forms.values() {
            let before = served(&current, "form", &f.id);
            if before.is_none_or(|b| b.1 != f.content_hash && b.2 != &f.source) {
                definitions.push(published("form", &f.id, &f.version, &f.content_hash, &f.source, before));
            }
        }
        for w in checked.workflows.values() {
            let before = served(&current, "workflow", &w.id);
            if before.is_none_or(|b| b.1 != w.content_hash && b.2 != &w.source) {
                definitions.push(published("workflow", &w.id, &w.version, &w.content_hash, &w.source, before));
            }
        }
        // Reference data (calendars, rates tables) has no version: a changed file is published
        // as it is, so that deadlines and computations after a restart use it too.
        let mut reference_bytes: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for src in &checked.reference_sources {
            let Some((kind, id, hash)) = reference_of(src) else { continue };
            let before = current.reference_sources.iter().filter_map(|s| Some((reference_of(s)?, s))).find(|((k, i, _), _)| *k == kind && *i == id);
            let new: Value = serde_json::from_slice(&src.bytes).unwrap_or(Value::Null);
            let old: Option<Value> = before.as_ref().and_then(|(_, s)| serde_json::from_slice(&s.bytes).ok());
            if before.as_ref().is_some_and(|((_, _, h), _)| *h == hash) || old.as_ref() == Some(&new) {
                continue;
            }
            let previous_hash = before.as_ref().map(|((_, _, h), _)| h.clone());
            let mut d = published(&kind, &id, "", &hash, &new, old.as_ref().map(|o| ("", previous_hash.as_deref().unwrap_or(""), o)));
            d.previous_version = None;
            reference_bytes.insert(hash, src.bytes.clone());
            definitions.push(d);
        }
        if definitions.is_empty() {
            return Ok(None);
        }
        for d in &definitions {
            let bytes = match reference_bytes.get(&d.hash) {
                Some(b) => &b[..],
                None => checked.sources.get(&d.hash).map(|b| &b[..]).ok_or_else(|| CaseError::DefinitionMissing(d.hash.clone()))?,
            };
            self.store.put_definition(&d.hash, bytes)?;
        }
        let publication = Publication { seq: known + 1, at: now, by: by.to_string(), definitions };
        self.store.publish(&publication)?;
        self.install(checked, publication.seq)?;
        Ok(Some(publication))
    }

    /// Every publication recorded in the store, oldest first.
    pub fn publications(&self) -> Result<Vec<Publication>, CaseError> {
        Ok(self.store.publications()?)
    }

    /// Serves what was published (here or by another server on the same store) since this
    /// server last looked; nothing to do when nothing was.
    pub fn refresh_published(&self) -> Result<(), CaseError> {
        let last = self.store.last_publication()?;
        let (known, files) = {
            let defs = self.definitions.read().unwrap_or_else(|e| e.into_inner());
            (defs.publication_seq, defs.files.clone())
        };
        if last == known {
            return Ok(());
        }
        let publications = self.store.publications()?;
        let (catalog, _) = self.served_set(&files, &publications)?;
        self.install(catalog, publications.last().map_or(0, |p| p.seq))
    }

    /// Learns, every `REFRESH_EVERY` on a thread of its own, what another server on the same
    /// store published; the thread ends when the service is gone. A failure is said on stderr
    /// and the definitions served so far stay. Only for a store other processes write to (a
    /// sled store has one process: whatever is published there was published here).
    pub fn watch_publications(service: &Arc<CaseService>) -> std::io::Result<Option<std::thread::JoinHandle<()>>> {
        if !service.store.is_shared() {
            return Ok(None);
        }
        let weak = Arc::downgrade(service);
        let thread = std::thread::Builder::new().name("carimbo-publications".into()).spawn(move || {
            loop {
                std::thread::sleep(REFRESH_EVERY);
                let Some(service) = weak.upgrade() else { return };
                if let Err(e) = service.refresh_published() {
                    eprintln!("definitions: the publications could not be read, the definitions served so far stay: {e}");
                }
            }
        })?;
        Ok(Some(thread))
    }

    /// The definitions to serve: the files' ones, each published id replaced by its latest
    /// published version (the store wins), with a line per published id saying so.
    pub(super) fn served_set(&self, files: &Catalog, publications: &[Publication]) -> Result<(Catalog, Vec<String>), CaseError> {
        let mut latest: BTreeMap<(String, String), (&Publication, &PublishedDefinition)> = BTreeMap::new();
        for p in publications {
            for d in &p.definitions {
                latest.insert((d.kind.clone(), d.id.clone()), (p, d));
            }
        }
        let mut sources: Vec<SourceFile> =
            files.reference_sources.iter().filter(|src| reference_of(src).is_none_or(|(kind, id, _)| !latest.contains_key(&(kind, id)))).cloned().collect();
        let from_files = |kind: &str, id: &str, hash: &str| {
            let bytes = files.sources.get(hash).map(|b| b.to_vec()).unwrap_or_default();
            SourceFile::new(format!("{kind}s/{id}.json"), bytes)
        };
        for f in files.forms.values().filter(|f| !latest.contains_key(&("form".to_string(), f.id.clone()))) {
            sources.push(from_files("form", &f.id, &f.content_hash));
        }
        for w in files.workflows.values().filter(|w| !latest.contains_key(&("workflow".to_string(), w.id.clone()))) {
            sources.push(from_files("workflow", &w.id, &w.content_hash));
        }
        let mut lines = Vec::new();
        for ((kind, id), (p, d)) in &latest {
            let bytes = self.store.definition(&d.hash)?.ok_or_else(|| CaseError::DefinitionMissing(d.hash.clone()))?;
            sources.push(SourceFile::new(file_name(kind, id), bytes));
            let file_hash = files.reference_sources.iter().filter_map(reference_of).find(|(k, i, _)| k == kind && i == id).map(|(_, _, h)| h);
            let on_disk = match (served(files, kind, id), file_hash) {
                (Some((v, h, _)), _) if h == d.hash => format!("the file has the same {v}"),
                (Some((v, _, _)), _) => format!("the file's {v} is not served"),
                (None, Some(h)) if h == d.hash => "the file is the same".to_string(),
                (None, Some(_)) => "the file is not served".to_string(),
                (None, None) => "no file has it".to_string(),
            };
            let version = if d.version.is_empty() { String::new() } else { format!(" {}", d.version) };
            lines.push(format!("{kind} {id}{version}: published #{} by {} at {} (the store wins; {on_disk})", p.seq, p.by, p.at.to_rfc3339()));
        }
        let report = Catalog::load_sources_with(&sources, Some(&self.directory()));
        if !report.problems.is_empty() {
            return Err(CaseError::PublishedSet(report.problems.iter().map(|p| p.to_string()).collect()));
        }
        Ok((report.catalog, lines))
    }

    /// Serves `catalog` as the definitions after publication `seq`.
    fn install(&self, catalog: Catalog, seq: u64) -> Result<(), CaseError> {
        self.load_catalog(catalog)?;
        self.definitions.write().unwrap_or_else(|e| e.into_inner()).publication_seq = seq;
        Ok(())
    }

    /// At start: serves the published definitions over the files' ones; the lines say which.
    pub(super) fn serve_published(&self, files: &Arc<Catalog>) -> Result<Vec<String>, CaseError> {
        let publications = self.store.publications()?;
        if publications.is_empty() {
            return Ok(Vec::new());
        }
        let (catalog, lines) = self.served_set(files, &publications)?;
        self.install(catalog, publications.last().map_or(0, |p| p.seq))?;
        Ok(lines)
    }
}
