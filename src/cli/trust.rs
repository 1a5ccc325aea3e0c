//! The `carimbo trust` commands: the trust-list operator's tools, offline.
//!
//! The server never holds the operator's key: an administrator posts an entry the operator
//! signed (`carimbo trust sign`), and the server only checks it against the history and keeps
//! it. `convert` turns an older list (version 1, entities with accreditation periods) into the
//! signed history; `show` prints a history and who was accredited at a given time;
//! `operator-cert` issues the demo operator's certificate from the demo root.
//! Exit codes: 0 success, 2 a usage or input error (message with its code on stderr).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::pki_files::{load_pem_certificates, load_trust_list_v1};
use crate::pki::history::{self, Change, ServiceType, TrustHistory};
use crate::signing::Signer;
pub use crate::trusted_list::write_atomically;

/// `carimbo trust ...`
#[derive(clap::Subcommand, Debug, Clone)]
pub enum TrustCommand {
    /// Turn an older trust list (version 1) into the signed history (version 2).
    Convert(ConvertArgs),
    /// Sign a change (JSON, e.g. `{"type": "status", "member": "qualified-ca", "status":
    /// "withdrawn"}`) as the next entry of a list; print the entry, or append it with --append.
    Sign(SignEntryArgs),
    /// Print a list's history and, with --at, every member's status at that time.
    Show(ShowArgs),
    /// Issue the demo trust-list operator's certificate from the demo root (demo only).
    OperatorCert(OperatorCertArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct ConvertArgs {
    /// The older list (its certificate files are read beside it).
    #[arg(long)]
    pub v1: PathBuf,
    /// The operator's key (PKCS#8 PEM) and certificate chain (PEM).
    #[arg(long, default_value = "seeds/pki/operator/operator.key.pem")]
    pub operator_key: PathBuf,
    #[arg(long, default_value = "seeds/pki/operator/operator.pem")]
    pub operator_cert: PathBuf,
    /// The service seal's certificate, added as the `service-seal` member.
    #[arg(long)]
    pub service_seal: Option<PathBuf>,
    /// When the members were first listed (RFC 3339 UTC).
    #[arg(long, default_value = "2025-01-01T00:00:00Z")]
    pub since: String,
    /// Where to write the history (may be the older file itself).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Args, Debug, Clone)]
pub struct SignEntryArgs {
    /// The list the entry continues.
    #[arg(long, default_value = "seeds/trust/trust-list.json")]
    pub list: PathBuf,
    #[arg(long, default_value = "seeds/pki/operator/operator.key.pem")]
    pub operator_key: PathBuf,
    #[arg(long, default_value = "seeds/pki/operator/operator.pem")]
    pub operator_cert: PathBuf,
    /// When the change takes effect (RFC 3339 UTC with `Z`); default now.
    #[arg(long)]
    pub at: Option<String>,
    /// For `add_member`: a PEM certificate file to put in the change's `certificate`.
    #[arg(long)]
    pub certificate: Option<PathBuf>,
    /// Append the entry to the list file (written atomically) instead of printing it.
    #[arg(long)]
    pub append: bool,
    /// The change (JSON file).
    pub change: PathBuf,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ShowArgs {
    #[arg(long, default_value = "seeds/trust/trust-list.json")]
    pub list: PathBuf,
    /// Print each member's status at this time (RFC 3339 UTC).
    #[arg(long)]
    pub at: Option<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct OperatorCertArgs {
    #[arg(long, default_value = "seeds/pki/root/root.pem")]
    pub root_cert: PathBuf,
    #[arg(long, default_value = "seeds/pki/root/root.key.pem")]
    pub root_key: PathBuf,
    /// Where to write operator.pem and operator.key.pem.
    #[arg(long, default_value = "seeds/pki/operator")]
    pub out: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("CARIMBO-E0510: cannot read {}: {e}", path.display()))
}

fn time(text: &str) -> Result<DateTime<Utc>, String> {
    history::parse_utc_z(text).map_err(|e| format!("CARIMBO-E0516: invalid argument: {e}"))
}

fn operator(key: &Path, cert: &Path) -> Result<Signer, String> {
    Signer::from_pem(&read(key)?, &read(cert)?).map_err(|e| e.to_string())
}

/// Run a `carimbo trust` command.
pub fn trust(command: &TrustCommand) -> i32 {
    let result = match command {
        TrustCommand::Convert(a) => convert(a),
        TrustCommand::Sign(a) => sign(a),
        TrustCommand::Show(a) => show(a),
        TrustCommand::OperatorCert(a) => operator_cert(a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn convert(a: &ConvertArgs) -> Result<(), String> {
    let dir = a.v1.parent().unwrap_or(Path::new("."));
    let name = a.v1.file_name().and_then(|n| n.to_str()).ok_or("--v1 names no file")?;
    let (file, certs) = load_trust_list_v1(dir, name).map_err(|e| e.to_string())?;
    let mut extra = Vec::new();
    if let Some(path) = &a.service_seal {
        let cert = load_pem_certificates(path).map_err(|e| e.to_string())?.remove(0);
        extra.push(("service-seal".to_string(), ServiceType::ServiceSeal, crate::pki::demo::service_seal_name(), cert));
    }
    let signer = operator(&a.operator_key, &a.operator_cert)?;
    let history = history::convert_v1(&file, &certs, &extra, &signer, time(&a.since)?, Utc::now()).map_err(|e| e.to_string())?;
    write_atomically(&a.out, &history.document().to_pretty()).map_err(|e| format!("CARIMBO-E0507: cannot write {}: {e}", a.out.display()))?;
    eprintln!("{}: {} signed entries", a.out.display(), history.entries().len());
    Ok(())
}

/// A change as given on the command line: `certificate` may be left out of an `add_member`
/// and come from `--certificate FILE.pem`.
fn read_change(a: &SignEntryArgs) -> Result<Change, String> {
    let mut value: serde_json::Value = crate::json_strict::from_slice(&read(&a.change)?).map_err(|e| format!("CARIMBO-E1237: {}: {e}", a.change.display()))?;
    if let (Some(path), Some(obj)) = (&a.certificate, value.as_object_mut()) {
        let cert = load_pem_certificates(path).map_err(|e| e.to_string())?.remove(0);
        obj.insert("certificate".into(), history::certificate_text(&cert).into());
    }
    serde_json::from_value(value).map_err(|e| format!("CARIMBO-E1237: {} is not a trust-list change: {e}", a.change.display()))
}

fn sign(a: &SignEntryArgs) -> Result<(), String> {
    let now = Utc::now();
    let list = TrustHistory::from_slice(&read(&a.list)?, now).map_err(|e| e.to_string())?;
    let at = match &a.at {
        Some(t) => time(t)?,
        None => now,
    };
    let entry = history::sign_entry(Some(&list), &operator(&a.operator_key, &a.operator_cert)?, at, read_change(a)?)?;
    let next = list.appended(entry.clone(), now).map_err(|e| e.to_string())?;
    if a.append {
        write_atomically(&a.list, &next.document().to_pretty()).map_err(|e| format!("CARIMBO-E0507: cannot write {}: {e}", a.list.display()))?;
        eprintln!("{}: entry {} appended", a.list.display(), entry.payload.seq);
    } else {
        println!("{}", serde_json::to_string_pretty(&entry).unwrap_or_default());
    }
    Ok(())
}

fn show(a: &ShowArgs) -> Result<(), String> {
    let now = Utc::now();
    let list = TrustHistory::from_slice(&read(&a.list)?, now).map_err(|e| e.to_string())?;
    println!("{} — {} entries", list.name, list.entries().len());
    for e in list.entries() {
        println!("{:>4} {}  {}", e.payload.seq, e.payload.at, e.payload.change.describe());
    }
    if let Some(at) = &a.at {
        let t = time(at)?;
        println!("at {}:", history::utc_text(t));
        for m in list.members() {
            let status = match m.status_at(t) {
                _ if t < m.added_at => "not yet listed".to_string(),
                Some((s, Some(l))) => format!("{} ({})", s.as_str(), l.as_str()),
                Some((s, None)) => s.as_str().to_string(),
                None => "listed".to_string(),
            };
            println!("  {:<20} {:<21} {}", m.id, m.service_type.as_str(), status);
        }
    }
    Ok(())
}

fn operator_cert(a: &OperatorCertArgs) -> Result<(), String> {
    let root = String::from_utf8(read(&a.root_cert)?).map_err(|e| e.to_string())?;
    let key = String::from_utf8(read(&a.root_key)?).map_err(|e| e.to_string())?;
    let (cert, key) = crate::pki::demo::issue_trust_operator(&root, &key).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&a.out).map_err(|e| e.to_string())?;
    write_atomically(&a.out.join("operator.pem"), &cert).map_err(|e| e.to_string())?;
    write_atomically(&a.out.join("operator.key.pem"), &key).map_err(|e| e.to_string())?;
    Ok(())
}
