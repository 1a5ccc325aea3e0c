//! Helpers shared by the integration tests: the shipped definitions, and copies of them to break.
#![allow(dead_code)]

use carimbo::catalog::{Catalog, LoadReport, SourceFile};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped forms and reference data, loaded as `carimbo check forms workflows` does.
pub fn shipped() -> LoadReport {
    Catalog::load_paths(&[repo().join("forms"), repo().join("workflows")])
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The leave form as shipped, to mutate in a test.
pub fn leave_form() -> Value {
    read_json(&repo().join("forms/absence-and-annual-leave.json"))
}

/// Reference files (calendars, tables) as sources, so a form under test can name them.
pub fn reference_sources() -> Vec<SourceFile> {
    let dir = repo().join("forms/reference");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(SourceFile::new(p.display().to_string(), std::fs::read(&p).unwrap()));
    }
    out
}

/// Loads one form definition (given as JSON) together with the shipped reference data.
pub fn load_form(name: &str, def: &Value) -> LoadReport {
    let mut sources = reference_sources();
    sources.push(SourceFile::new(name, serde_json::to_vec_pretty(def).unwrap()));
    Catalog::load_sources(&sources)
}

/// The problems of a report as `FILE:POINTER: message [CODE]` lines, for assertions.
pub fn lines(report: &LoadReport) -> Vec<String> {
    report.problems.iter().map(|p| p.to_string()).collect()
}

/// The demo directory from `seeds/`.
pub fn directory() -> carimbo::directory::Directory {
    carimbo::directory::Directory::load(&repo().join("seeds/directory/directory.json")).unwrap()
}

/// A signature record of the given level by `who` (what verification would have achieved).
pub fn sig(who: &str, level: carimbo::workflow::Level) -> carimbo::workflow::SignatureRecord {
    carimbo::workflow::SignatureRecord { level, signer: who.to_string(), jws: None, second_factor: false }
}

/// `YYYY-MM-DDTHH:MM` Macau time (UTC+8) as a UTC instant.
pub fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(&format!("{s}:00+08:00")).unwrap().with_timezone(&chrono::Utc)
}
