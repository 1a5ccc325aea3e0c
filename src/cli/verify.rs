//! `carimbo verify`: one bundle with its full report, or an archive (several files, or folders
//! of them) on every core with a progress bar and a summary naming the first broken place of
//! each bundle that failed.

use crate::evidence::archive::{ArchiveOutcome, VerifyCache, verify_archive};
use crate::evidence::{VerificationReport, VerifyConfig, verify_with};
use anyhow::Result;
use chrono::Utc;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A folder is read this deep at most (a link loop or a mistaken root is not followed forever).
const MAX_DEPTH: usize = 16;

/// The bundles named by `paths`: files as given, folders' `*.json` files (recursively), sorted.
pub fn bundle_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            collect(p, 0, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{} is more than {MAX_DEPTH} folders deep", dir.display()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read folder {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read folder {}: {e}", dir.display()))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if kind.is_dir() {
            collect(&path, depth + 1, out)?;
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// One bundle that did not pass, with the first broken place.
#[derive(Debug, Serialize)]
pub struct FailedBundle {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    pub code: String,
    pub place: String,
    pub message: String,
}

/// The summary of an archive run.
#[derive(Debug, Default, Serialize)]
pub struct ArchiveSummary {
    pub bundles: usize,
    pub passed: usize,
    pub failed: Vec<FailedBundle>,
    pub events: usize,
    pub signatures: usize,
    pub seconds: f64,
    pub signatures_per_second: f64,
    pub threads: usize,
}

impl ArchiveSummary {
    fn add(&mut self, file: &str, outcome: &ArchiveOutcome) {
        match outcome {
            ArchiveOutcome::Verified(r) => {
                self.events += r.events_checked;
                self.signatures += r.signatures.len();
                if r.passed {
                    self.passed += 1;
                } else {
                    self.failed.push(failed(file, r));
                }
            }
            ArchiveOutcome::Unreadable(e) => {
                self.failed.push(FailedBundle { file: file.to_string(), case_id: None, code: "CARIMBO-E0901".into(), place: "file".into(), message: e.clone() })
            }
        }
    }

    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} bundles verified on {} threads in {:.1} s: {} passed, {} failed; {} events, {} signatures ({:.0} signatures/s)\n",
            self.bundles,
            self.threads,
            self.seconds,
            self.passed,
            self.failed.len(),
            self.events,
            self.signatures,
            self.signatures_per_second
        );
        for f in &self.failed {
            s.push_str(&format!(
                "FAILED {}{}: [{}] at {}: {}\n",
                f.file,
                f.case_id.as_deref().map(|c| format!(" (case {c})")).unwrap_or_default(),
                f.code,
                f.place,
                f.message
            ));
        }
        s
    }
}

fn failed(file: &str, r: &VerificationReport) -> FailedBundle {
    let (code, place, message) = match &r.first_failure {
        Some(f) => (f.code.to_string(), f.place(), f.message.clone()),
        None => ("CARIMBO-E0901".into(), "/".into(), "the bundle did not pass".into()),
    };
    FailedBundle { file: file.to_string(), case_id: r.case_id.clone(), code, place, message }
}

/// Verifies every bundle of `files` on `threads` threads; `progress` is told of each finished
/// one (the count so far).
pub fn verify_files(files: &[PathBuf], judging: &Judging<'_>, threads: usize, progress: &(dyn Fn(usize) + Sync)) -> ArchiveSummary {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let cfg = VerifyConfig { pins: judging.pins.to_vec(), now: Utc::now(), cache: Some(Arc::new(VerifyCache::default())), device_rule: judging.device_rule };
    let summary = Mutex::new(ArchiveSummary { bundles: files.len(), threads, ..ArchiveSummary::default() });
    let count = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let load = |name: &str| std::fs::read(name).map_err(|e| format!("cannot read {name}: {e}"));
    verify_archive(&names, &cfg, threads, load, |i, outcome| {
        if let Ok(mut s) = summary.lock() {
            s.add(&names[i], &outcome);
        }
        progress(count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
    });
    let mut s = summary.into_inner().unwrap_or_default();
    s.failed.sort_by(|a, b| a.file.cmp(&b.file));
    s.seconds = started.elapsed().as_secs_f64();
    s.signatures_per_second = s.signatures as f64 / s.seconds.max(1e-9);
    s
}

/// What the auditor judges bundles with beyond the bundles themselves: pinned fingerprints,
/// and a device rule over the one each bundle records.
pub struct Judging<'a> {
    pub pins: &'a [String],
    pub device_rule: Option<crate::signing::DeviceRule>,
}

/// `carimbo verify PATH… [--json] [--pin H…] [--jobs N] [--device-rule R]`. One file: its full report. More, or a
/// folder: the archive summary. Exit 0 only if every bundle passed; 2 when nothing could be read.
pub fn run(paths: &[PathBuf], json: bool, judging: &Judging<'_>, jobs: Option<usize>, emit: &dyn Fn(&str) -> Result<()>) -> Result<ExitCode> {
    let single = paths.len() == 1 && std::fs::metadata(&paths[0]).is_ok_and(|m| m.is_file());
    if single {
        let bytes = match std::fs::read(&paths[0]) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", paths[0].display());
                return Ok(ExitCode::from(2));
            }
        };
        let report = verify_with(&bytes, &VerifyConfig { pins: judging.pins.to_vec(), now: Utc::now(), cache: None, device_rule: judging.device_rule });
        if json {
            emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
        } else {
            emit(&report.to_text())?;
        }
        return Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    let files = match bundle_files(paths) {
        Ok(f) if f.is_empty() => {
            eprintln!("error: no bundle (*.json) in {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
            return Ok(ExitCode::from(2));
        }
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let threads = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} bundles, {per_sec}, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let summary = verify_files(&files, judging, threads, &|n| bar.set_position(n as u64));
    bar.finish_and_clear();
    if json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&summary)?))?;
    } else {
        emit(&summary.to_text())?;
    }
    Ok(if summary.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
