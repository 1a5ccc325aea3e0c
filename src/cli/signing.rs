//! The `carimbo sign`, `carimbo verify-signature` and `carimbo pki demo` commands.
//!
//! Plain functions from parsed arguments to an exit code, so `main.rs` only wires them into
//! clap. Exit codes: 0 success (for verification: TOTAL_PASSED only), 1 a signature that did
//! not pass, 2 a usage or input error (message with its `CARIMBO-E05xx` code on stderr).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::pki_files::load_pem_certificates;
pub use super::pki_files::load_verifier;
use crate::pki::report::{SignatureLevel, ValidationReport};
use crate::signing::jades::{JwsAlgorithm, Signer, SigningKey, VerifyOptions};
use crate::signing::{SigningError, SigningPayload, verify_act};

/// `carimbo sign --key KEY.pem --cert CHAIN.pem PAYLOAD.json > sig.json`
#[derive(clap::Args, Debug, Clone)]
pub struct SignArgs {
    /// The signer's private key (PKCS#8 PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// The signer's certificate, then its CA certificates (PEM).
    #[arg(long)]
    pub cert: PathBuf,
    /// The signing payload (JSON; it is canonicalised with RFC 8785 before signing).
    pub payload: PathBuf,
    /// For RSA keys: PS256 (default) or RS256.
    #[arg(long)]
    pub alg: Option<String>,
    /// Claimed signing time (RFC 3339); default now.
    #[arg(long)]
    pub time: Option<String>,
}

/// `carimbo verify-signature PAYLOAD.json sig.json [--at TIME] [--json]`
#[derive(clap::Args, Debug, Clone)]
pub struct VerifySignatureArgs {
    /// The signing payload the signature should cover.
    pub payload: PathBuf,
    /// The JAdES signature (flattened JWS JSON, detached payload).
    pub signature: PathBuf,
    /// Trusted signing time (RFC 3339), e.g. the event time recorded by the server.
    /// Without it the signer's claimed time (`iat`) is used.
    #[arg(long)]
    pub at: Option<String>,
    /// Print the full validation report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The level the act requires: simple, advanced or qualified.
    #[arg(long, default_value = "simple")]
    pub require: SignatureLevel,
    /// Form data (JSON) whose hash must match the payload's `data_hash`.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Trust list folder (holding trust-list.json).
    #[arg(long, default_value = "seeds/trust")]
    pub trust: PathBuf,
    /// Folder of CRL files.
    #[arg(long, default_value = "seeds/pki/crl")]
    pub crls: PathBuf,
    /// The service seal certificate (signatures by it are `simple` acts).
    #[arg(long, default_value = "seeds/pki/service/service.pem")]
    pub service_cert: PathBuf,
}

/// `carimbo pki ...`
#[derive(clap::Subcommand, Debug, Clone)]
pub enum PkiCommand {
    /// Regenerate the demo PKI (certificates, keys, CRLs) and the demo trust list.
    Demo(PkiDemoArgs),
    /// Add the demo time-stamp authority (key, certificate issued by the demo root, trust-list
    /// entry) to an existing demo PKI, leaving everything else as it is.
    DemoTsa(PkiDemoArgs),
    /// Issue every demo person's certificate again for the key they already have, from the
    /// existing CAs (a qualified one with QcCompliance, never QcSSCD: the keys are files);
    /// keys, CAs, CRLs and the trust list stay as they are.
    DemoPeople(PkiDemoArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct PkiDemoArgs {
    /// Where to write the PKI.
    #[arg(long, default_value = "seeds/pki")]
    pub out: PathBuf,
    /// The demo people (default: OUT/people.json).
    #[arg(long)]
    pub people: Option<PathBuf>,
    /// Where to write the trust list (default: OUT/../trust).
    #[arg(long)]
    pub trust_out: Option<PathBuf>,
}

fn read(path: &Path) -> Result<Vec<u8>, SigningError> {
    std::fs::read(path).map_err(|source| SigningError::Unreadable { path: path.display().to_string(), source })
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, SigningError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| SigningError::BadArgument { reason: format!("`{text}` is not an RFC 3339 time: {e}") })
}

/// Run `carimbo sign`; prints the signature JSON on stdout.
pub fn sign(args: &SignArgs) -> i32 {
    match sign_inner(args) {
        Ok(json) => {
            println!("{json}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn sign_inner(args: &SignArgs) -> Result<String, SigningError> {
    let mut key = SigningKey::from_pkcs8_pem(&read(&args.key)?)?;
    if let Some(alg) = &args.alg {
        let alg = match alg.as_str() {
            "ES256" => JwsAlgorithm::ES256,
            "ES384" => JwsAlgorithm::ES384,
            "PS256" => JwsAlgorithm::PS256,
            "RS256" => JwsAlgorithm::RS256,
            "EdDSA" => JwsAlgorithm::EdDSA,
            other => {
                return Err(SigningError::BadArgument { reason: format!("unknown algorithm `{other}`") });
            }
        };
        key = key.with_algorithm(alg)?;
    }
    let chain = load_pem_certificates(&args.cert)?;
    let signer = Signer::new(key, &chain)?;
    let payload = SigningPayload::from_json(&read(&args.payload)?)?;
    let time = match &args.time {
        Some(t) => parse_time(t)?,
        None => Utc::now(),
    };
    Ok(signer.sign(&payload.canonical_bytes()?, time)?.to_json())
}

/// Run `carimbo verify-signature`; exit 0 only for TOTAL_PASSED.
pub fn verify_signature(args: &VerifySignatureArgs) -> i32 {
    match verify_inner(args) {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                print_report(&report);
            }
            if report.passed() { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn verify_inner(args: &VerifySignatureArgs) -> Result<ValidationReport, SigningError> {
    let verifier = load_verifier(&args.trust, &args.crls, Some(&args.service_cert))?;
    let payload = SigningPayload::from_json(&read(&args.payload)?)?;
    let jws = read(&args.signature)?;
    let data = match &args.data {
        Some(path) => Some(
            crate::json_strict::from_slice::<serde_json::Value>(&read(path)?)
                .map_err(|e| SigningError::BadArgument { reason: format!("{}: not JSON: {e}", path.display()) })?,
        ),
        None => None,
    };
    let opts = VerifyOptions { trusted_time: args.at.as_deref().map(parse_time).transpose()?, now: Utc::now(), required_level: None };
    Ok(match verify_act(&verifier, &payload, data.as_ref(), &jws, args.require, &opts) {
        Ok(verified) => verified.report().clone(),
        Err(report) => report,
    })
}

fn print_report(r: &ValidationReport) {
    let indication = serde_json::to_value(r.indication).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    match (r.sub_indication, &r.code) {
        (Some(sub), Some(code)) => println!("{indication} / {} ({code})", sub.as_str()),
        _ => println!("{indication}"),
    }
    if let Some(level) = r.achieved_level {
        println!("level:   {}", level.as_str());
    }
    if let Some(signer) = &r.signer {
        println!("signer:  {} ({})", signer.common_name.as_deref().unwrap_or(&signer.subject), signer.person_id.as_deref().unwrap_or("no person id"));
    }
    if let Some(t) = r.signing_time {
        println!("time:    {}", t.to_rfc3339());
    }
    println!("detail:  {}", r.detail);
    println!("zh:      {}", r.message.zh);
    println!("pt:      {}", r.message.pt);
    println!("en:      {}", r.message.en);
    for note in &r.notes {
        println!("note:    {note}");
    }
}

/// Run `carimbo pki demo`.
pub fn pki(command: &PkiCommand) -> i32 {
    match command {
        PkiCommand::Demo(args) => {
            let people_path = args.people.clone().unwrap_or_else(|| args.out.join("people.json"));
            let trust_out = args.trust_out.clone().unwrap_or_else(|| args.out.join("..").join("trust"));
            let result = super::pki_demo::read_people(&people_path).and_then(|people| super::pki_demo::write_demo(&people, &args.out, &trust_out));
            match result {
                Ok(summary) => {
                    println!(
                        "demo PKI written to {}: {} people, {} bad certificates, {} CRLs; trust list in {}",
                        args.out.display(),
                        summary.people,
                        summary.bad,
                        summary.crls,
                        trust_out.display()
                    );
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
            }
        }
        PkiCommand::DemoPeople(args) => {
            let people_path = args.people.clone().unwrap_or_else(|| args.out.join("people.json"));
            match super::pki_demo::read_people(&people_path).and_then(|people| super::pki_demo::reissue_people(&people, &args.out)) {
                Ok(n) => {
                    println!("{n} people's certificates issued again in {} for their existing keys", args.out.join("people").display());
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
            }
        }
        PkiCommand::DemoTsa(args) => {
            let trust_out = args.trust_out.clone().unwrap_or_else(|| args.out.join("..").join("trust"));
            match super::pki_demo::add_demo_tsa(&args.out, &trust_out, Utc::now()) {
                Ok(id) => {
                    println!(
                        "demo TSA written to {}; the trust list {} names it as member {id}",
                        args.out.join(crate::pki::demo::TSA_CERT).display(),
                        trust_out.display()
                    );
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
            }
        }
    }
}
