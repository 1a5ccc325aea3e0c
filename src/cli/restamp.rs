//! `carimbo evidence restamp BUNDLE…`: each bundle gets its next archive time-stamp (B-LTA),
//! before the previous stamp's TSA certificate expires or its algorithm is retired.
//!
//! The edge only: it reads the files, the clock, the trust list and CRLs to add, asks the TSA
//! (`--tsa URL`, or the demo TSA of the seeds in-process), and writes each bundle back through a
//! temporary file and a rename, so a bundle is either the old one or the re-stamped one. What
//! to stamp and whether the result holds is `evidence::ltv`'s (`prepare_restamp`,
//! `finish_restamp`): a bundle that does not verify now is left as it is.

use crate::evidence::ltv::{RestampError, finish_restamp, prepare_restamp};
use crate::evidence::{BinaryFile, TextFile, sha256_hex};
use crate::tsa::TimeStamping;
use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Subcommand)]
pub enum EvidenceCommand {
    /// Add a new archive time-stamp (B-LTA) to each bundle, in place: the bundle must verify
    /// now; the new stamp covers all of it, with the trust list and CRLs the new TSA needs.
    /// Do it before the last stamp's TSA certificate expires (`carimbo verify` prints when).
    Restamp(RestampArgs),
}

#[derive(clap::Args)]
pub struct RestampArgs {
    /// Bundle files (each is replaced by its re-stamped version).
    #[arg(required = true)]
    pub bundles: Vec<PathBuf>,
    /// An RFC 3161 TSA (HTTP transport); repeat for fail-over. Without it, the demo TSA of
    /// `SEEDS/pki/tsa/` stamps in-process.
    #[arg(long = "tsa")]
    pub tsa: Vec<String>,
    #[arg(long, default_value_t = 10_000)]
    pub tsa_timeout_ms: u64,
    /// The folder holding `pki/` and `trust/` (the demo TSA, the CRLs and the trust list).
    #[arg(long, default_value = "seeds")]
    pub seeds: PathBuf,
    /// The trust list's history to add when it is newer than the bundle's (it must name the
    /// TSA): the server's `DATA/trust-list.json`, by default `SEEDS/trust/trust-list.json`.
    #[arg(long)]
    pub trust_list: Option<PathBuf>,
    /// CRLs to add that the bundle does not hold (default `SEEDS/pki/crl`).
    #[arg(long)]
    pub crl_dir: Option<PathBuf>,
    /// Where the in-process demo TSA keeps its serial counter (`DATA/tsa/serial.json`).
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
}

fn crl_files(dir: &Path) -> Result<Vec<BinaryFile>, String> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "crl" | "pem" | "der")))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("crl").to_string();
            Ok(BinaryFile { name, sha256: sha256_hex(&bytes), base64: base64::engine::general_purpose::STANDARD.encode(&bytes) })
        })
        .collect()
}

/// Writes `bytes` to `path` through a temporary file beside it (`NAME.restamp-tmp`), synced,
/// then renamed over it, so a reader sees the old bundle or the new one, never half of one.
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".restamp-tmp");
    let tmp = path.with_file_name(name);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// One bundle file re-stamped in place.
fn restamp_file(path: &Path, stamping: &TimeStamping, trust_list: Option<&TextFile>, crls: &[BinaryFile]) -> Result<String, RestampError> {
    let bytes = std::fs::read(path).map_err(|e| RestampError::DoesNotVerify(format!("cannot read {}: {e}", path.display())))?;
    let now = chrono::Utc::now();
    let prepared = prepare_restamp(&bytes, now, trust_list, crls)?;
    let added = match (&prepared.validation_data.trust_list, prepared.validation_data.crls.len()) {
        (Some(_), n) => format!(" with a newer trust list and {n} CRL(s)"),
        (None, 0) => String::new(),
        (None, n) => format!(" with {n} CRL(s)"),
    };
    let k = prepared.bundle.archive_timestamps.len();
    let token = stamping
        .stamp(&prepared.input)
        .map_err(|e| RestampError::Stamping(e.to_string()))?
        .ok_or_else(|| RestampError::Stamping("time-stamping is off: give --tsa URL, or put the demo TSA in SEEDS/pki/tsa/".into()))?;
    let out = finish_restamp(prepared, &token, now)?;
    replace_file(path, &out).map_err(|e| RestampError::Stamping(format!("cannot write {}: {e}", path.display())))?;
    Ok(format!("archive time-stamp {k} added{added}"))
}

pub fn run(command: &EvidenceCommand) -> anyhow::Result<ExitCode> {
    let EvidenceCommand::Restamp(args) = command;
    let stamping = TimeStamping::choose(&args.tsa, Duration::from_millis(args.tsa_timeout_ms), &args.seeds.join("pki"), &args.data)?;
    let trust_path = args.trust_list.clone().unwrap_or_else(|| args.seeds.join("trust").join(crate::pki::trust::TRUST_LIST_FILE));
    let trust_list = match std::fs::read_to_string(&trust_path) {
        Ok(text) => Some(TextFile { name: crate::pki::trust::TRUST_LIST_FILE.into(), sha256: sha256_hex(text.as_bytes()), text }),
        Err(e) if args.trust_list.is_none() && e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => anyhow::bail!("cannot read the trust list {}: {e}", trust_path.display()),
    };
    let crls = crl_files(&args.crl_dir.clone().unwrap_or_else(|| args.seeds.join("pki/crl"))).map_err(anyhow::Error::msg)?;
    let mut failed = 0;
    for path in &args.bundles {
        match restamp_file(path, &stamping, trust_list.as_ref(), &crls) {
            Ok(what) => println!("{}: {what}", path.display()),
            Err(e) => {
                failed += 1;
                eprintln!("{}: {e}", path.display());
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
