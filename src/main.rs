//! The `carimbo` command: a thin shell over the library.

use anyhow::Result;
use carimbo::forms::Catalog;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
    },
}

fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { paths } => Ok(check(&paths)),
    }
}

fn check(paths: &[PathBuf]) -> ExitCode {
    let report = Catalog::load_paths(paths);
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    if report.problems.is_empty() {
        let c = &report.catalog;
        println!(
            "ok: {} files, {} forms, {} workflows, {} calendars, {} rates tables, {} examples passed",
            report.files,
            c.forms.len(),
            c.workflow_ids.len(),
            c.references.calendars.len(),
            c.references.tables.len(),
            report.examples_run
        );
        ExitCode::SUCCESS
    } else {
        for p in &report.problems {
            println!("{p}");
        }
        let files: std::collections::BTreeSet<_> = report.problems.iter().map(|p| &p.file).collect();
        println!("{} problems in {} files", report.problems.len(), files.len());
        ExitCode::from(1)
    }
}
