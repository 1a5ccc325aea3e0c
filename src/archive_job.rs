//! The server's long-term archive of closed cases: one B-LTA evidence bundle per case in
//! `DATA/evidence/<case id>.json`, re-stamped before its last archive time-stamp runs out.
//!
//! A case's events live in the store; what ages is the proof around them: the signature
//! time-stamps' TSA certificates expire, and a bundle made from the store after that could no
//! longer prove when the acts were signed. So once a case is closed (completed, rejected,
//! withdrawn) the job exports its bundle with a first archive time-stamp and keeps it beside
//! the store's data, and on every later round adds the next archive time-stamp to each kept
//! bundle whose last stamp's TSA certificate expires within the margin (`evidence::ltv`). The
//! kept bundle is the record of that chain of proofs: an export made later is sealed again,
//! but only the kept one carries stamps from before the old certificates expired.
//!
//! The job runs on a thread of its own (ten minutes after start, then once a day) and from the administrators'
//! `POST /api/v1/admin/evidence-archive`; one round at a time. Files are written through a
//! temporary file and a rename, 0600 (bundles hold restricted values). With several servers on
//! one PostgreSQL database each keeps its own folder (`docs/storage.md`).

use crate::evidence::ltv::{finish_restamp, prepare_restamp, restamp_due};
use crate::evidence::{TextFile, sha256_hex};
use crate::http::AppState;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How long before the last archive stamp's TSA certificate expires a bundle is re-stamped.
pub const DEFAULT_MARGIN_DAYS: i64 = 365;
/// How often the job runs by itself.
pub const INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// How long after start the first round runs.
pub const FIRST_ROUND_AFTER: std::time::Duration = std::time::Duration::from_secs(600);
/// Who the kept bundles name as their exporter.
pub const EXPORTED_BY: &str = "carimbo-archive";

/// One round's outcome.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ArchiveRound {
    pub started_at: String,
    pub finished_at: String,
    pub margin_days: i64,
    /// Closed cases looked at.
    pub closed_cases: u64,
    /// Bundles made and kept for the first time.
    pub archived: u64,
    /// Kept bundles that got a new archive time-stamp.
    pub restamped: u64,
    /// Kept bundles whose last stamp is good beyond the margin.
    pub up_to_date: u64,
    /// Cases that could not be archived or re-stamped, with why (`CARIMBO-E…`).
    pub failures: Vec<String>,
    /// Set when the round did nothing because time-stamping is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub off: Option<String>,
}

/// The job's state in the server: where bundles are kept, the last round, one round at a time.
pub struct ArchiveJob {
    dir: PathBuf,
    last: Mutex<Option<ArchiveRound>>,
    running: Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
#[error("CARIMBO-E1257: the kept bundle {path} cannot be {what}: {reason}")]
pub struct KeepError {
    path: String,
    what: &'static str,
    reason: String,
}

impl ArchiveJob {
    /// Bundles kept in `DATA/evidence/`.
    pub fn in_data_dir(data: &Path) -> ArchiveJob {
        ArchiveJob { dir: data.join("evidence"), last: Mutex::new(None), running: Mutex::new(()) }
    }

    /// The folder of kept bundles.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last round's outcome, if one ran since start.
    pub fn last(&self) -> Option<ArchiveRound> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    fn path(&self, case_id: &str) -> Option<PathBuf> {
        // Case ids are `C-` and hex; anything else never becomes a file name.
        case_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-').then(|| self.dir.join(format!("{case_id}.json")))
    }

    /// The kept bundle of a case, if there is one.
    pub fn kept(&self, case_id: &str) -> Result<Option<Vec<u8>>, KeepError> {
        let Some(path) = self.path(case_id) else { return Ok(None) };
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(KeepError { path: path.display().to_string(), what: "read", reason: e.to_string() }),
        }
    }

    fn keep(&self, case_id: &str, bytes: &[u8]) -> Result<(), KeepError> {
        let path = self.path(case_id).ok_or_else(|| KeepError { path: case_id.into(), what: "named", reason: "not a case id".into() })?;
        let fail = |reason: std::io::Error| KeepError { path: path.display().to_string(), what: "written", reason: reason.to_string() };
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp).map_err(fail)?;
            f.write_all(bytes).map_err(fail)?;
            f.sync_all().map_err(fail)?;
        }
        std::fs::rename(&tmp, &path).map_err(fail)?;
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(fail)
    }

    /// One round at `now`: every closed case archived, every kept bundle due re-stamped.
    /// Waits for a round in progress to end first.
    pub fn run(&self, state: &AppState, now: DateTime<Utc>, margin: Duration) -> ArchiveRound {
        let _one = self.running.lock();
        let mut round = ArchiveRound { started_at: crate::pki::history::utc_text(now), margin_days: margin.num_days(), ..Default::default() };
        if matches!(state.stamping, crate::tsa::TimeStamping::Off) {
            round.off = Some(state.stamping.describe());
        } else if let Err(e) = self.each_closed_case(state, now, margin, &mut round) {
            round.failures.push(format!("the store could not be read: {e}"));
        }
        round.finished_at = crate::pki::history::utc_text(Utc::now());
        if let Ok(mut last) = self.last.lock() {
            *last = Some(round.clone());
        }
        round
    }

    fn each_closed_case(&self, state: &AppState, now: DateTime<Utc>, margin: Duration, round: &mut ArchiveRound) -> Result<(), crate::store::StoreError> {
        const PAGE: usize = 500;
        let store = state.cases.store();
        let mut after: Option<String> = None;
        loop {
            let page = store.heads(after.as_deref(), PAGE)?;
            for head in page.iter().filter(|h| matches!(h.status.as_str(), "completed" | "rejected" | "withdrawn")) {
                round.closed_cases += 1;
                match self.one_case(state, &head.case_id, now, margin) {
                    Ok(Outcome::Archived) => round.archived += 1,
                    Ok(Outcome::Restamped) => round.restamped += 1,
                    Ok(Outcome::UpToDate) => round.up_to_date += 1,
                    Err(why) => round.failures.push(format!("{}: {why}", head.case_id)),
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.case_id.clone()),
                _ => return Ok(()),
            }
        }
    }

    fn one_case(&self, state: &AppState, case_id: &str, now: DateTime<Utc>, margin: Duration) -> Result<Outcome, String> {
        let trust_text = state.trust.document_text();
        let Some(kept) = self.kept(case_id).map_err(|e| e.to_string())? else {
            let pki = crate::evidence::PkiMaterial::from_seeds(&state.paths.seeds)
                .map_err(|e| e.to_string())?
                .with_trust_list(trust_text)
                .with_device_rule(state.paths.device_rule);
            let bundle = crate::evidence::export_archived(
                &state.cases,
                case_id,
                &pki,
                &state.seal,
                EXPORTED_BY,
                &crate::visibility::Sight::everything(),
                now,
                &state.stamping,
                &state.verifier(),
            )
            .map_err(|e| e.to_string())?;
            self.keep(case_id, &bundle.to_bytes()).map_err(|e| e.to_string())?;
            return Ok(Outcome::Archived);
        };
        let report = crate::evidence::verify(&kept, now);
        if report.passed && !restamp_due(&report, now, margin) {
            return Ok(Outcome::UpToDate);
        }
        let trust_list = TextFile { name: crate::pki::trust::TRUST_LIST_FILE.into(), sha256: sha256_hex(trust_text.as_bytes()), text: trust_text };
        let crls = crate::evidence::PkiMaterial::from_seeds(&state.paths.seeds).map_err(|e| e.to_string())?.crls;
        let prepared = prepare_restamp(&kept, now, Some(&trust_list), &crls).map_err(|e| e.to_string())?;
        let token = state.stamping.stamp(&prepared.input).map_err(|e| e.to_string())?.ok_or("time-stamping is off")?;
        let bytes = finish_restamp(prepared, &token, now).map_err(|e| e.to_string())?;
        self.keep(case_id, &bytes).map_err(|e| e.to_string())?;
        Ok(Outcome::Restamped)
    }
}

enum Outcome {
    Archived,
    Restamped,
    UpToDate,
}

/// Runs a round now, then every `INTERVAL`, on a thread of its own until the flag is set.
pub fn start(state: std::sync::Arc<AppState>) -> (std::thread::JoinHandle<()>, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("carimbo-archive".into())
        .spawn(move || {
            // The first round waits a while, so a restart does not begin with exporting every
            // closed case while the server is busiest.
            crate::outbox::sleep_unless_stopped(FIRST_ROUND_AFTER, &flag);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let r = state.archive.run(&state, Utc::now(), Duration::days(DEFAULT_MARGIN_DAYS));
                if r.archived + r.restamped > 0 || !r.failures.is_empty() {
                    eprintln!(
                        "evidence archive: {} archived, {} re-stamped, {} up to date, {} failed{}",
                        r.archived,
                        r.restamped,
                        r.up_to_date,
                        r.failures.len(),
                        r.failures.first().map(|f| format!(" (first: {f})")).unwrap_or_default()
                    );
                }
                crate::outbox::sleep_unless_stopped(INTERVAL, &flag);
            }
        })
        .expect("a thread for the evidence archive");
    (thread, stop)
}
