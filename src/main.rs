//! The `carimbo` command: a thin shell over the library.

use anyhow::Result;
use carimbo::catalog::Catalog;
use carimbo::directory::Directory;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "carimbo", version, about = "Electronic forms and e-signature workflows for personnel procedures")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check form, workflow and reference definitions; print every problem as FILE:POINTER: message.
    Check {
        /// Definition files or directories (searched recursively for *.json).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Staff directory whose groups workflows may name (checked when the file exists).
        #[arg(long, default_value = "seeds/directory/directory.json")]
        directory: PathBuf,
    },
    /// Run the server on the embedded sled store, with the demo department and test PKI from seeds/.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Data directory (the sled store and the accounts file); created if missing.
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Directory holding forms/, workflows/ and seeds/.
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
    /// Sign a signing payload with a key and certificate chain (JAdES baseline-B JWS).
    Sign(carimbo::signing::cli::SignArgs),
    /// Verify a signature over a payload and print the ETSI-style validation report.
    VerifySignature(carimbo::signing::cli::VerifySignatureArgs),
    /// Demo PKI tools.
    #[command(subcommand)]
    Pki(carimbo::signing::cli::PkiCommand),
}

fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    let code = match &cli.command {
        Command::Check { paths, directory } => return check(paths, directory),
        Command::Serve { addr, data, root } => return serve(*addr, data, root),
        Command::Sign(args) => carimbo::signing::cli::sign(args),
        Command::VerifySignature(args) => carimbo::signing::cli::verify_signature(args),
        Command::Pki(command) => carimbo::signing::cli::pki(command),
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

fn check(paths: &[PathBuf], directory_path: &Path) -> Result<ExitCode> {
    let directory = if directory_path.exists() { Some(Directory::load(directory_path)?) } else { None };
    if directory.is_none() {
        eprintln!("note: no directory at {}: workflow groups were not checked", directory_path.display());
    }
    let report = Catalog::load_paths_with(paths, directory.as_ref());
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    if report.problems.is_empty() {
        let c = &report.catalog;
        println!(
            "ok: {} files, {} forms, {} workflows, {} calendars, {} rates tables, {} examples passed",
            report.files,
            c.forms.len(),
            c.workflows.len(),
            c.references.calendars.len(),
            c.references.tables.len(),
            report.examples_run
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &report.problems {
            println!("{p}");
        }
        let files: std::collections::BTreeSet<_> = report.problems.iter().map(|p| &p.file).collect();
        println!("{} problems in {} files", report.problems.len(), files.len());
        Ok(ExitCode::from(1))
    }
}

fn serve(addr: std::net::SocketAddr, data: &Path, root: &Path) -> Result<ExitCode> {
    use carimbo::http::{AppState, Paths, DEMO_PASSWORD};
    let state = std::sync::Arc::new(AppState::open(Paths::from_root(root, data))?);
    let catalog = state.cases.catalog();
    println!("carimbo {} serving {} forms on http://{addr}/", env!("CARGO_PKG_VERSION"), catalog.forms.len());
    println!("data in {} (sled store and accounts)", data.display());
    println!("demo logins (password {DEMO_PASSWORD}):");
    for (who, role) in [("p005", "staff, DAF"), ("p003", "supervisor, DAF"), ("p002", "head, DAF"), ("p019", "HR officer, author"), ("p001", "appointing authority"), ("doc01", "doctor"), ("p022", "auditor"), ("p032", "administrator")] {
        println!("  {who:<6} {role}");
    }
    println!("signing keys for the page: seeds/pki/people/<id>.key.pem");
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(carimbo::http::serve(state, addr))?;
    println!("stopped; every acknowledged act is on disk");
    Ok(ExitCode::SUCCESS)
}
