use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "carimbo",
    version,
    about = "Electronic forms and signature workflows"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign a signing payload with a key and certificate chain (JAdES baseline-B JWS).
    Sign(carimbo::signing::cli::SignArgs),
    /// Verify a signature over a payload and print the ETSI-style validation report.
    VerifySignature(carimbo::signing::cli::VerifySignatureArgs),
    /// Demo PKI tools.
    #[command(subcommand)]
    Pki(carimbo::signing::cli::PkiCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let code = match &cli.command {
        Command::Sign(args) => carimbo::signing::cli::sign(args),
        Command::VerifySignature(args) => carimbo::signing::cli::verify_signature(args),
        Command::Pki(command) => carimbo::signing::cli::pki(command),
    };
    std::process::exit(code)
}
