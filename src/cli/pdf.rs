//! `carimbo pdf`: a case's printable record from the sled store of a stopped server
//! (`carimbo pdf CASE --data DIR`), or offline from an evidence bundle
//! (`carimbo pdf --bundle FILE`), which is verified first: a bundle that does not verify is
//! not printed. Either is sealed with the service seal of the checkout's seeds and
//! time-stamped as the server would (`--tsa URL`, else the seeds' demo TSA, else B-B).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::Utc;

use crate::cases::CaseService;
use crate::catalog::Catalog;
use crate::directory::Directory;
use crate::evidence::{EvidenceBundle, PkiMaterial};
use crate::i18n::Lang;
use crate::pdf::{PdfError, PdfSeal};
use crate::store::{SledStore, Store};
use crate::tsa::TimeStamping;

/// The largest bundle `--bundle` reads (the server's upload limit is 8 MiB).
pub const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, clap::Args)]
pub struct PdfArgs {
    /// The case id (read from the sled store in `--data`); or give `--bundle`.
    pub case: Option<String>,
    /// An evidence bundle to print instead (verified first, offline).
    #[arg(long, conflicts_with = "case")]
    pub bundle: Option<PathBuf>,
    /// Data directory holding the sled store (as given to `serve`); also the TSA's counter.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Directory holding forms/, workflows/ and seeds/.
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// The reader's language: zh, pt or en.
    #[arg(long, default_value = "zh")]
    pub lang: String,
    /// Where to write the PDF (refused if it exists).
    #[arg(long)]
    pub out: PathBuf,
    /// Leave out the values of every restricted field (for a reader outside the form's roles).
    #[arg(long)]
    pub withhold_restricted: bool,
    /// A time-stamp authority to ask (repeatable); none: the seeds' demo TSA, if there.
    #[arg(long)]
    pub tsa: Vec<String>,
}

/// Names as the directory gives them, "name (id)".
fn directory_people(dir: &Directory, lang: Lang) -> impl Fn(&str) -> String + '_ {
    move |id: &str| crate::http::pages::person_label(lang, dir, id)
}

/// Names from a bundle alone: each signer's certificate names them (its common name).
fn certificate_people(bundle: &EvidenceBundle) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for e in &bundle.events {
        let Some(jws) = e.body.pointer("/signature/jws") else { continue };
        let signer = e.body.pointer("/signature/signer").and_then(|s| s.as_str()).unwrap_or_default();
        if let Some(facts) = crate::pdf::record::signing_certificate(jws)
            && facts.person_id.as_deref() == Some(signer)
            && let Some(cn) = facts.common_name
        {
            names.insert(signer.to_string(), format!("{cn} ({signer})"));
        }
    }
    names
}

fn bundle_from_store(args: &PdfArgs, case: &str) -> Result<(EvidenceBundle, Directory)> {
    let paths = crate::http::Paths::from_root(&args.root, &args.data);
    let store_dir = args.data.join("store");
    if !store_dir.exists() {
        bail!("no store in {} (the data directory given to `carimbo serve`)", args.data.display());
    }
    let store: Arc<dyn Store> = Arc::new(
        SledStore::open(&store_dir).map_err(|e| anyhow::anyhow!("{e} (is the server running on this data directory? then use GET /cases/{{id}}/pdf)"))?,
    );
    let directory = Directory::load(&paths.seeds.join("directory/directory.json"))?;
    let report = Catalog::load_paths_with(&[paths.forms.clone(), paths.workflows.clone()], Some(&directory));
    if !report.problems.is_empty() {
        bail!("the definitions have {} problem(s); run `carimbo check forms workflows`", report.problems.len());
    }
    let service = CaseService::new(store, report.catalog, directory.clone())?;
    let mut pki = PkiMaterial::from_seeds(&paths.seeds)?.with_device_rule(paths.device_rule);
    if let Ok(text) = std::fs::read_to_string(args.data.join(crate::pki::trust::TRUST_LIST_FILE)) {
        pki = pki.with_trust_list(text);
    }
    let service_dir = paths.seeds.join("pki/service");
    let seal = crate::signing::ServiceSeal::from_pem(&std::fs::read(service_dir.join("service.key.pem"))?, &std::fs::read(service_dir.join("service.pem"))?)?;
    let sight = match args.withhold_restricted {
        true => crate::visibility::Sight::nothing_restricted(&*service.form_of(&service.case(case)?)?),
        false => crate::visibility::Sight::everything(),
    };
    Ok((crate::evidence::export(&service, case, &pki, &seal, "carimbo-cli", &sight, Utc::now())?, directory))
}

/// Reads and verifies a bundle file; refuses one that does not verify.
pub fn verified_bundle(path: &Path) -> Result<EvidenceBundle> {
    let size = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    if size > MAX_BUNDLE_BYTES {
        bail!("{} has {size} bytes, more than the {MAX_BUNDLE_BYTES} a bundle may have [CARIMBO-E1406]", path.display());
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let report = crate::evidence::verify(&bytes, Utc::now());
    if !report.passed {
        let why = report.first_failure.map(|f| format!("{} at {}: {}", f.code, f.pointer, f.message)).unwrap_or_default();
        return Err(PdfError::Unverified(why).into());
    }
    Ok(crate::json_strict::from_slice::<EvidenceBundle>(&bytes).map_err(|e| PdfError::Unverified(e.to_string()))?)
}

pub fn run(args: &PdfArgs) -> Result<std::process::ExitCode> {
    let lang: Lang = args.lang.parse()?;
    if args.out.exists() {
        bail!("{} exists; choose another name", args.out.display());
    }
    let seeds = args.root.join("seeds");
    let service = seeds.join("pki/service");
    let key = PdfSeal::from_pem(&std::fs::read(service.join("service.key.pem"))?, &std::fs::read(service.join("service.pem"))?)?;
    let stamping = TimeStamping::choose(&args.tsa, crate::tsa::DEFAULT_TIMEOUT, &seeds.join("pki"), &args.data)?;
    let stamp = |bytes: &[u8]| stamping.stamp(bytes);
    let pdf = match (&args.case, &args.bundle) {
        (Some(case), None) => {
            let (bundle, directory) = bundle_from_store(args, case)?;
            let people = directory_people(&directory, lang);
            crate::pdf::print(&bundle, lang, &people, &key, &stamp, Utc::now())?
        }
        (None, Some(path)) => {
            let bundle = verified_bundle(path)?;
            let names = certificate_people(&bundle);
            let people = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
            crate::pdf::print(&bundle, lang, &people, &key, &stamp, Utc::now())?
        }
        _ => bail!("give a case id (with --data) or --bundle FILE"),
    };
    std::fs::write(&args.out, &pdf).with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("wrote {} ({} bytes; {}) — sealed with the service seal", args.out.display(), pdf.len(), stamping.describe());
    Ok(std::process::ExitCode::SUCCESS)
}
