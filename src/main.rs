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
        /// Staff directory whose groups workflows may name. Default: seeds/directory/directory.json
        /// here or in the checkout the paths are in; without one, workflows are not checked
        /// and the command fails.
        #[arg(long)]
        directory: Option<PathBuf>,
        /// Also say, for every workflow, who is party to its cases and which steps keep them off.
        #[arg(long)]
        explain: bool,
        /// The language of what each problem means (zh, pt or en); the specific detail after it
        /// names fields and values as the checker found them.
        #[arg(long, default_value = "en")]
        lang: carimbo::i18n::Lang,
    },
    /// Run the server, with the demo department and test PKI from seeds/.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Data directory (the accounts file, and the sled store with `--store sled`); created if missing.
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Directory holding forms/, workflows/ and seeds/.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// Where cases are kept: `sled` (embedded, in DATA/store) or a PostgreSQL connection string,
        /// `postgres://USER:PASSWORD@HOST:PORT/DB` or `host=… user=… password=… dbname=…`.
        /// Several processes may share one PostgreSQL database.
        #[arg(long, default_value = "sled")]
        store: String,
        /// With PostgreSQL: the schema to keep carimbo's tables in (created if missing);
        /// default: the connection's search path (normally `public`).
        #[arg(long)]
        pg_schema: Option<String>,
        /// Deliver the outbox to the webhooks this JSON file names (see docs/outbox.md).
        #[arg(long)]
        webhooks: Option<PathBuf>,
        /// Seconds between rounds of reminders and escalations over the open cases (0: none,
        /// e.g. when another process on the same PostgreSQL database runs them).
        #[arg(long, default_value_t = 60)]
        deadline_seconds: u64,
        /// A file holding the token Prometheus sends as bearer token to `GET /metrics`
        /// (at least 32 characters; `openssl rand -hex 32 > FILE`). Without it, only an
        /// administrator's session token reads `/metrics`.
        #[arg(long)]
        metrics_token_file: Option<PathBuf>,
        /// The key file that encrypts the TOTP secrets in DATA/accounts.json (default:
        /// DATA/keys/totp.key, created 0600 on first start). Keep it apart from backups of the
        /// data directory; without it the second factors cannot be read. Also read from the
        /// environment variable CARIMBO_TOTP_KEY_FILE.
        #[arg(long)]
        totp_key_file: Option<PathBuf>,
        /// The address people reach the server at, e.g. `https://forms.example.org` when a
        /// TLS-terminating proxy stands in front of it (default: http://ADDR). When it is
        /// https://, the session and sign-in cookies are `Secure` and every answer carries
        /// `Strict-Transport-Security: max-age=31536000`.
        #[arg(long)]
        public_url: Option<String>,
        /// Send e-mail notifications through this SMTP server: `smtp://HOST[:PORT]` (STARTTLS
        /// when offered, demanded with credentials; port 587) or `smtps://HOST[:PORT]` (TLS;
        /// port 465). Without it, notifications are off. See docs/notifications.md.
        #[arg(long)]
        smtp: Option<String>,
        /// A file (0600) with one line `USER:PASSWORD` for the SMTP server; else the
        /// environment's CARIMBO_SMTP_USER and CARIMBO_SMTP_PASSWORD, if set.
        #[arg(long)]
        smtp_credentials_file: Option<PathBuf>,
        /// The sender of notifications, e.g. `carimbo <noreply@example.org>`.
        #[arg(long, default_value = "carimbo <noreply@example.org>")]
        mail_from: String,
        /// Milliseconds before a failed mail is tried again (doubling up to an hour; 10 attempts).
        #[arg(long, default_value_t = 60_000)]
        mail_retry_ms: u64,
        /// A time-stamp authority to stamp every act with (RFC 3161 over HTTP, e.g.
        /// `http://127.0.0.1:3180/tsa`); repeat it for fail-over, asked in the order given.
        /// Without it the demo TSA of seeds/pki/tsa/ stamps in-process, if present.
        #[arg(long = "tsa")]
        tsa: Vec<String>,
        /// How long one TSA may take before the next is asked, in milliseconds.
        #[arg(long, default_value_t = 5000)]
        tsa_timeout_ms: u64,
        /// API requests a second one account may make (after a burst of five times as many);
        /// more are answered 429.
        #[arg(long, default_value_t = carimbo::http::DEFAULT_API_RATE_PER_ACCOUNT)]
        api_rate_per_account: u32,
        #[command(flatten)]
        hsm: Box<HsmServeArgs>,
    },
    /// The life cycle of people's keys on the HSM (PKCS#11; SoftHSM2 in the demo).
    #[command(subcommand)]
    Hsm(carimbo::cli::hsm::HsmCommand),
    /// Run carimbo's RFC 3161 time-stamp authority over HTTP (POST / or /tsa,
    /// application/timestamp-query → application/timestamp-reply).
    Tsa {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3180")]
        addr: std::net::SocketAddr,
        /// The TSA's PKCS#8 PEM key.
        #[arg(long, default_value = "seeds/pki/tsa/tsa.key.pem")]
        key: PathBuf,
        /// The TSA's certificate (critical EKU id-kp-timeStamping), then any intermediates.
        #[arg(long, default_value = "seeds/pki/tsa/tsa.pem")]
        cert: PathBuf,
        /// The TSA policy OID stated in every token.
        #[arg(long, default_value = carimbo::signing::timestamp::DEFAULT_TSA_POLICY)]
        policy: String,
        /// Where the serial-number counter is kept (DATA/tsa/serial.json).
        #[arg(long, default_value = "data")]
        data: PathBuf,
    },
    /// Export decisions and finished cases of a period (the outbox) as CSV or JSON, for payroll
    /// and archives. On sled the server must be stopped (or use `GET /api/v1/admin/export`).
    Export {
        /// First moment included: a date (midnight in Macau) or an RFC 3339 time.
        #[arg(long)]
        since: String,
        /// First moment excluded; default: everything up to now.
        #[arg(long)]
        until: Option<String>,
        /// `csv` or `json`.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Only these kinds (comma-separated): decision, case.completed, case.rejected, case.withdrawn.
        #[arg(long)]
        kind: Option<String>,
        /// Data directory holding the sled store (as given to `serve`).
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// `sled` or a PostgreSQL connection string (as given to `serve`).
        #[arg(long, default_value = "sled")]
        store: String,
        #[arg(long)]
        pg_schema: Option<String>,
        /// Where to write; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A restricted field (e.g. diagnosis_code) to export in the open; repeat for more.
        /// Without it every restricted value is exported as its salted commitment only.
        #[arg(long = "restricted-field")]
        restricted_field: Vec<String>,
    },
    /// Write a case's evidence bundle (one JSON file) from the sled store in the data directory.
    /// The store must not be open in a running server: use `GET /api/v1/cases/{id}/evidence` then.
    ExportEvidence {
        /// The case id (e.g. C-0193a…).
        case: String,
        /// Data directory holding the sled store (as given to `serve`).
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Directory holding forms/, workflows/ and seeds/.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// Where to write the bundle; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Leave out the values of every restricted field (their salted commitments stay, so
        /// the bundle still verifies): for a reader outside the roles the form names.
        #[arg(long)]
        withhold_restricted: bool,
        /// The device rule the server judged the case's signatures with, recorded in the bundle
        /// (`enforced` or `relaxed-for-demo`; default: as `serve` would choose here).
        #[arg(long)]
        device_rule: Option<String>,
    },
    /// Write a case as a PDF/A-3b document sealed with PAdES (the evidence bundle attached):
    /// from the sled store in the data directory (the store must not be open in a running
    /// server: use `GET /cases/{id}/pdf` then), or offline from an evidence bundle (`--bundle`),
    /// which must verify.
    Pdf(carimbo::cli::pdf::PdfArgs),
    /// Write every case and definition of a store to one file (JSON lines, checksummed), from
    /// which `restore` rebuilds the store. A sled store must not be open in a running server
    /// (sled lets one process use it); PostgreSQL is read in one snapshot while it runs.
    Backup {
        /// The file to write (refused if it exists).
        out: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Rebuild a store from a backup: checks the whole file first (nothing is written from a
    /// damaged or truncated file), then writes every case exactly as it was. The target must
    /// hold no case: a new data directory, or an empty PostgreSQL schema or database.
    Restore {
        /// The backup file written by `carimbo backup`.
        input: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Verify evidence bundles offline (no server, no network): hash chain, definitions,
    /// every signature at its recorded time, levels, the route, the seal. One file: its full
    /// report; several, or a folder: all of them on every core, with a summary naming the first
    /// broken place of each that failed. Exit 0 only if all pass.
    Verify {
        /// Bundles (JSON) written by `export-evidence` or the API, or folders of them.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
        /// Threads for several bundles (default: every core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// SHA-256 (hex) of a certificate you trust independently of the bundle; repeat it for
        /// each trust anchor and the service seal certificate.
        #[arg(long = "pin")]
        pins: Vec<String>,
        /// Judge the signatures' levels with this device rule (`enforced` or
        /// `relaxed-for-demo`) instead of the one each bundle records.
        #[arg(long)]
        device_rule: Option<String>,
    },
    /// Long-term evidence: `carimbo evidence restamp BUNDLE…` adds an archive time-stamp.
    #[command(subcommand)]
    Evidence(carimbo::cli::restamp::EvidenceCommand),
    /// Sign a signing payload with a key and certificate chain (JAdES baseline-B JWS).
    Sign(carimbo::cli::signing::SignArgs),
    /// Verify a signature over a payload and print the ETSI-style validation report.
    VerifySignature(carimbo::cli::signing::VerifySignatureArgs),
    /// Demo PKI tools.
    #[command(subcommand)]
    Pki(carimbo::cli::signing::PkiCommand),
    /// The trust list's signed history: convert an older list, sign a change, show the list.
    #[command(subcommand)]
    Trust(carimbo::cli::trust::TrustCommand),
}

/// Which store a command works on: the options `serve` takes.
#[derive(clap::Args)]
struct StoreArgs {
    /// Data directory (the sled store is DATA/store).
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// `sled` (embedded, in DATA/store) or a PostgreSQL connection string, as for `serve`.
    #[arg(long, default_value = "sled")]
    store: String,
    /// With PostgreSQL: the schema carimbo's tables are in, as for `serve`.
    #[arg(long)]
    pg_schema: Option<String>,
}

/// An opened case store and how to name it in messages.
struct OpenedStore {
    store: std::sync::Arc<dyn carimbo::store::Store>,
    /// `sled` or `postgres`.
    kind: &'static str,
    /// Where it is, without a password.
    place: String,
}

/// Opens the store `--store` names: the sled store in DATA/store (created unless `must_exist`)
/// or PostgreSQL (in `--pg-schema`). The one place commands open stores.
fn open_store(data: &Path, store: &str, pg_schema: Option<&str>, must_exist: bool) -> Result<OpenedStore> {
    use carimbo::store::{PgOptions, PgStore, SledStore};
    if store == "sled" {
        let dir = data.join("store");
        if must_exist && !dir.join("journal").exists() {
            anyhow::bail!("no sled store in {} (the data directory given to `carimbo serve`)", data.display());
        }
        let sled = SledStore::open(&dir)?;
        Ok(OpenedStore { store: std::sync::Arc::new(sled), kind: "sled", place: format!("the sled store in {}", dir.display()) })
    } else if is_postgres(store) {
        let options = PgOptions { schema: pg_schema.map(str::to_string), ..PgOptions::default() };
        let pg = PgStore::open_with(store, options)?;
        let version = pg.schema_version()?;
        let schema = pg_schema.map(|s| format!(", schema {s}")).unwrap_or_default();
        let place = format!("PostgreSQL {} (carimbo schema version {version}{schema})", postgres_place(store));
        Ok(OpenedStore { store: std::sync::Arc::new(pg), kind: "postgres", place })
    } else {
        anyhow::bail!("--store takes `sled` or a PostgreSQL connection string (postgres://… or host=… dbname=…), not {store:?}");
    }
}

/// How `serve` signs on the HSM and judges `qualified`.
#[derive(clap::Args, Debug, Clone)]
struct HsmServeArgs {
    /// The PKCS#11 module (default CARIMBO_HSM_MODULE, else /usr/lib/softhsm/libsofthsm2.so).
    #[arg(long)]
    hsm_module: Option<PathBuf>,
    /// A file (mode 0600) holding the token's user PIN; default CARIMBO_HSM_PIN. Without a PIN
    /// nobody signs on the HSM.
    #[arg(long)]
    hsm_pin_file: Option<PathBuf>,
    /// `enforced` (qualified needs a key on a device, QcSSCD) or `relaxed-for-demo`; default:
    /// enforced when the HSM module is installed, relaxed for the demo when it is not.
    #[arg(long)]
    device_rule: Option<String>,
    /// The CSC v2 API base URL of a remote signing service (`https://…/csc/v2`): people named
    /// in DATA/hsm/remote.json sign there with their credential's one-time code.
    #[arg(long)]
    csc_url: Option<String>,
    /// A file (mode 0600) `{"client_id": …, "client_secret": …}` for the service's OAuth 2.0;
    /// default CARIMBO_CSC_CLIENT_ID and CARIMBO_CSC_CLIENT_SECRET.
    #[arg(long)]
    csc_credentials_file: Option<PathBuf>,
}

fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    let code = match &cli.command {
        Command::Check { paths, directory, explain, lang } => return check(paths, directory.as_deref(), *explain, *lang),
        Command::Serve {
            addr,
            data,
            root,
            store,
            pg_schema,
            webhooks,
            deadline_seconds,
            metrics_token_file,
            totp_key_file,
            public_url,
            smtp,
            smtp_credentials_file,
            mail_from,
            mail_retry_ms,
            tsa,
            tsa_timeout_ms,
            api_rate_per_account,
            hsm,
        } => {
            let tsa = (tsa.clone(), std::time::Duration::from_millis(*tsa_timeout_ms));
            let mail = MailArgs { smtp: smtp.clone(), credentials: smtp_credentials_file.clone(), from: mail_from.clone(), retry_ms: *mail_retry_ms };
            return serve(
                *addr,
                data,
                root,
                store,
                pg_schema.as_deref(),
                webhooks.as_deref(),
                (*deadline_seconds, *api_rate_per_account),
                metrics_token_file.as_deref(),
                totp_key_file.as_deref(),
                public_url.as_deref(),
                tsa,
                mail,
                hsm,
            );
        }
        Command::Tsa { addr, key, cert, policy, data } => return run_tsa(*addr, key, cert, policy, data),
        Command::Export { since, until, format, kind, data, store, pg_schema, out, restricted_field } => {
            return export(since, until.as_deref(), format, kind.as_deref(), data, store, pg_schema.as_deref(), out.as_deref(), restricted_field);
        }
        Command::ExportEvidence { case, data, root, out, withhold_restricted, device_rule } => {
            let rule = device_rule.as_deref().map(device_rule_arg).transpose()?;
            return export_evidence(case, data, root, out.as_deref(), *withhold_restricted, rule);
        }
        Command::Verify { bundles, json, pins, jobs, device_rule } => {
            let rule = device_rule.as_deref().map(device_rule_arg).transpose()?;
            return carimbo::cli::verify::run(bundles, *json, &carimbo::cli::verify::Judging { pins, device_rule: rule }, *jobs, &emit);
        }
        Command::Evidence(command) => return carimbo::cli::restamp::run(command),
        Command::Pdf(args) => return carimbo::cli::pdf::run(args),
        Command::Backup { out, store } => return backup(out, store),
        Command::Restore { input, store } => return restore(input, store),
        Command::Sign(args) => carimbo::cli::signing::sign(args),
        Command::VerifySignature(args) => carimbo::cli::signing::verify_signature(args),
        Command::Pki(command) => carimbo::cli::signing::pki(command),
        Command::Trust(command) => carimbo::cli::trust::trust(command),
        Command::Hsm(command) => return carimbo::cli::hsm::hsm(command),
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Where `check` looks for what the definitions need besides themselves: here (the directory
/// `carimbo check forms workflows` is documented to run in), then each checkout a path is in
/// (the nearest ancestor holding `rel`), so the command works from anywhere with full paths.
fn find_beside(paths: &[PathBuf], rel: &str) -> Option<PathBuf> {
    let here = Path::new(rel);
    if here.exists() {
        return Some(here.to_path_buf());
    }
    paths.iter().filter_map(|p| p.canonicalize().ok()).find_map(|p| p.ancestors().map(|a| a.join(rel)).find(|c| c.exists()))
}

fn check(paths: &[PathBuf], directory_path: Option<&Path>, explain: bool, lang: carimbo::i18n::Lang) -> Result<ExitCode> {
    use carimbo::forms::{ErrorCode, Problem};
    let directory_file = match directory_path {
        Some(given) if !given.exists() => anyhow::bail!("no staff directory at {} (--directory) [CARIMBO-E0084]", given.display()),
        Some(given) => Some(given.to_path_buf()),
        None => find_beside(paths, "seeds/directory/directory.json"),
    };
    let directory = directory_file.as_deref().map(Directory::load).transpose()?;
    // Forms name calendars and rates tables: those of the checkout are read too when the paths
    // given do not include them (one form file checked alone).
    let reference: Vec<PathBuf> = find_beside(paths, "forms/reference").into_iter().collect();
    let mut report = Catalog::load_paths_with_reference(paths, &reference, directory.as_ref());
    if directory.is_none() && !report.catalog.workflow_ids.is_empty() {
        // Never "ok" with the groups of the workflows unchecked (a typo `hrr` would pass).
        report.problems.push(Problem::new("--directory", "", ErrorCode("CARIMBO-E0084"), carimbo::forms::Detail::NoDirectory));
    }
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    for w in &report.warnings {
        match lang {
            carimbo::i18n::Lang::En => println!("{}:{}: warning: {} [{}]", w.file, w.pointer, w.message, w.code),
            other => println!("{} ({})", w.localized(other), if other == carimbo::i18n::Lang::Zh { "警告" } else { "aviso" }),
        }
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
        if explain {
            println!("conflict of interest (a party never sits on a deciding step of the case, except on their own seat):");
            for workflow in c.workflows.values() {
                for line in workflow.explain_conflicts() {
                    println!("  {line}");
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &report.problems {
            println!("{}", p.localized(lang));
        }
        let files: std::collections::BTreeSet<_> = report.problems.iter().map(|p| &p.file).collect();
        let (n, m) = (report.problems.len(), files.len());
        println!(
            "{}",
            match lang {
                carimbo::i18n::Lang::Zh => format!("{m} 個檔案共 {n} 個問題"),
                carimbo::i18n::Lang::Pt => format!("{n} problema(s) em {m} ficheiro(s)"),
                carimbo::i18n::Lang::En => format!("{n} problems in {m} files"),
            }
        );
        Ok(ExitCode::from(1))
    }
}

/// `serve`'s e-mail options.
struct MailArgs {
    smtp: Option<String>,
    credentials: Option<PathBuf>,
    from: String,
    retry_ms: u64,
}

#[allow(clippy::too_many_arguments)]
fn serve(
    addr: std::net::SocketAddr,
    data: &Path,
    root: &Path,
    store: &str,
    pg_schema: Option<&str>,
    webhooks: Option<&Path>,
    (deadline_seconds, api_rate_per_account): (u64, u32),
    metrics_token_file: Option<&Path>,
    totp_key_file: Option<&Path>,
    public_url: Option<&str>,
    (tsa_urls, tsa_timeout): (Vec<String>, std::time::Duration),
    mail: MailArgs,
    hsm: &HsmServeArgs,
) -> Result<ExitCode> {
    use carimbo::http::{AppState, Paths, PublicUrl};
    // A wrong public address is refused before anything is opened.
    let public_url = match public_url {
        Some(text) => PublicUrl::parse(text)?,
        None => PublicUrl::for_addr(addr),
    };
    // So is a wrong mail server, and credentials are read now (never from the command line).
    let smtp_target = match &mail.smtp {
        Some(url) => {
            use carimbo::notify::mail::{SmtpLogin, SmtpTarget};
            Some(SmtpTarget::parse(url, SmtpLogin::find(mail.credentials.as_deref())?)?)
        }
        None => None,
    };
    let mut paths = Paths::from_root(root, data);
    if api_rate_per_account == 0 {
        anyhow::bail!("CARIMBO-E0729: --api-rate-per-account must be at least 1 (API requests a second per account)");
    }
    paths.api_rate_per_account = api_rate_per_account;
    paths.tsa_urls = tsa_urls;
    paths.tsa_timeout = tsa_timeout;
    let demo_hsm = hsm_paths(&mut paths, hsm, data, root)?;
    if let Some(key) = totp_key_file.map(Path::to_path_buf).or_else(|| std::env::var_os("CARIMBO_TOTP_KEY_FILE").map(PathBuf::from)) {
        paths.totp_key = key;
    }
    std::fs::create_dir_all(data).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", data.display()))?;
    let opened = open_store(data, store, pg_schema, false)?;
    let where_ = match opened.kind {
        "sled" => format!("data in {} (sled store and accounts)", data.display()),
        _ => format!("cases in {}; accounts in {}", opened.place, data.display()),
    };
    let totp_key = paths.totp_key.clone();
    let mut state = AppState::with_store(paths, opened.store)?;
    state.public_url = public_url;
    if let Some(file) = metrics_token_file {
        let token = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read the metrics token file {}: {e}", file.display()))?;
        state.set_scrape_token(&token)?;
    }
    let outbox = match webhooks {
        Some(file) => {
            let config = carimbo::outbox::WebhookConfig::load(file)?;
            let names: Vec<String> = config.endpoints.iter().map(|e| format!("{} ({})", e.name, e.public_url())).collect();
            println!("webhooks: {}", names.join(", "));
            Some(state.start_webhooks(config, std::time::Duration::from_secs(1)))
        }
        None => None,
    };
    let mailer = match smtp_target {
        Some(target) => {
            use carimbo::notify::mail::MailSettings;
            let mut settings = MailSettings::new(target, &mail.from, state.public_url.as_str())?;
            settings.retry.first_delay_ms = mail.retry_ms.max(1);
            settings.retry.max_delay_ms = settings.retry.max_delay_ms.max(settings.retry.first_delay_ms);
            println!("notifications: e-mail through {} from {}", settings.target.describe(), settings.from);
            Some(state.start_mail(settings, std::time::Duration::from_secs(1))?)
        }
        None => {
            println!("notifications: off (no --smtp); people are not told of their tasks by e-mail");
            None
        }
    };
    let deadlines = (deadline_seconds > 0).then(|| state.start_deadlines(std::time::Duration::from_secs(deadline_seconds)));
    let state = std::sync::Arc::new(state);
    // Closed cases' B-LTA bundles kept and re-stamped in DATA/evidence/, at start and daily.
    let archive = carimbo::archive_job::start(state.clone());
    println!(
        "evidence archive: closed cases kept as B-LTA bundles in {}, re-stamped {} days before their last archive time-stamp's TSA certificate expires (GET/POST /api/v1/admin/evidence-archive)",
        state.archive.dir().display(),
        carimbo::archive_job::DEFAULT_MARGIN_DAYS
    );
    print_banner(&state, addr, root, &where_, &totp_key, metrics_token_file.is_some(), demo_hsm.as_deref());
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(carimbo::http::serve(state, addr))?;
    for (thread, stop) in outbox.into_iter().chain(deadlines).chain(Some(archive)).chain(mailer) {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = thread.join();
    }
    println!("stopped; every acknowledged act is on disk");
    Ok(ExitCode::SUCCESS)
}

/// What `serve` says at start: where everything is, who can sign in, and what is on or off.
fn print_banner(
    state: &carimbo::http::AppState,
    addr: std::net::SocketAddr,
    root: &Path,
    where_: &str,
    totp_key: &Path,
    scrape_token: bool,
    demo_hsm: Option<&str>,
) {
    use carimbo::http::DEMO_PASSWORD;
    let catalog = state.cases.catalog();
    println!("carimbo {} serving {} forms on http://{addr}/", env!("CARGO_PKG_VERSION"), catalog.forms.len());
    // What wins when the files and the store disagree (docs/storage.md, "Published definitions").
    let published = state.cases.start_report();
    if published.is_empty() {
        println!("definitions: the files in {} and {} (none published through the API yet)", root.join("forms").display(), root.join("workflows").display());
    } else {
        println!(
            "definitions: the files in {} and {}, except {} published through the API (the store wins over the files):",
            root.join("forms").display(),
            root.join("workflows").display(),
            published.len()
        );
        for line in &published {
            println!("  {line}");
        }
    }
    match state.public_url.is_https() {
        true => println!("public address {}: Secure cookies, Strict-Transport-Security: {}", state.public_url, carimbo::http::HSTS),
        false => println!("public address {}: plain HTTP (no Secure cookies, no HSTS; give --public-url https://… behind a TLS proxy)", state.public_url),
    }
    println!("{where_}");
    println!("{}", state.stamping.describe());
    println!("second-factor secrets encrypted with {}; account audit log {}", totp_key.display(), state.accounts.audit_log_path().display());
    println!("demo logins (password {DEMO_PASSWORD}):");
    for (who, role) in [
        ("p005", "staff, DAF"),
        ("p003", "supervisor, DAF"),
        ("p002", "head, DAF"),
        ("p019", "HR officer, author"),
        ("p001", "appointing authority"),
        ("doc01", "doctor"),
        ("p022", "auditor"),
        ("p032", "administrator"),
    ] {
        println!("  {who:<6} {role}");
    }
    println!("signing keys for the page: seeds/pki/people/<id>.key.pem");
    match (&state.hsm, &state.hsm_off_because) {
        (Some(_), _) => println!(
            "HSM signing: on ({}); {}",
            state.paths.hsm_module.display(),
            demo_hsm.unwrap_or("people published with `carimbo hsm issue` sign there with a TOTP code")
        ),
        (None, why) => println!(
            "HSM signing: off ({}{}); to turn it on: apt-get install softhsm2 and start again (the demo token is set up by itself), or CARIMBO_HSM_PIN=… carimbo hsm init, keygen, issue, then serve with CARIMBO_HSM_PIN",
            why.as_deref().unwrap_or("not configured"),
            demo_hsm.map(|d| format!("; {d}")).unwrap_or_default()
        ),
    }
    match (&state.remote, &state.remote_off_because) {
        (Some(r), _) => println!("remote signing: on ({}); people in DATA/hsm/remote.json sign there with their credential's one-time code", r.base_url()),
        (None, why) => println!(
            "remote signing: off ({}); to turn it on: serve --csc-url https://…/csc/v2 with CARIMBO_CSC_CLIENT_ID and CARIMBO_CSC_CLIENT_SECRET (or --csc-credentials-file), and name people in DATA/hsm/remote.json",
            why.as_deref().unwrap_or("not configured")
        ),
    }
    match state.paths.device_rule {
        carimbo::signing::DeviceRule::Enforced => {
            println!("device rule: enforced; a qualified signature needs a certificate stating a key on a qualified device (QcSSCD)")
        }
        carimbo::signing::DeviceRule::RelaxedForDemo => println!(
            "device rule RELAXED FOR THE DEMO: qualified steps are met with the seeded people's key files, whose qualified certificates do not say the key is on a qualified device (no QcSSCD); every report and evidence bundle of such a signature says so (install SoftHSM2 or pass --device-rule enforced for the law's rule)"
        ),
    }
    println!("usage figures: /admin/usage, GET /api/v1/usage, GET /metrics ({})", if scrape_token { "scrape token set" } else { "administrators only" });
}
/// Where `serve` finds the HSM and which device rule it judges with. With SoftHSM2 installed, the
/// rule enforced and no token PIN given, the demo token is set up in DATA (see
/// `carimbo::hsm::demo`); if that fails and the rule was not asked for, the rule is relaxed for
/// the demo rather than leaving qualified steps that nobody can sign. Returns what the banner
/// says of it.
fn hsm_paths(paths: &mut carimbo::http::Paths, hsm: &HsmServeArgs, data: &Path, root: &Path) -> Result<Option<String>> {
    use carimbo::signing::DeviceRule;
    paths.hsm_module = carimbo::hsm::module_path(hsm.hsm_module.as_deref());
    paths.hsm_pin_file = hsm.hsm_pin_file.clone();
    paths.csc_url = hsm.csc_url.clone();
    paths.csc_credentials_file = hsm.csc_credentials_file.clone();
    paths.device_rule = match hsm.device_rule.as_deref() {
        None => carimbo::hsm::default_device_rule(&paths.hsm_module),
        Some(text) => device_rule_arg(text)?,
    };
    if !paths.hsm_module.is_file() {
        return Ok(None);
    }
    // SoftHSM2's configuration, before any thread starts (it is read from the environment).
    carimbo::hsm::ensure_softhsm_conf(data)?;
    let pin_given = paths.hsm_pin_file.is_some() || std::env::var_os(carimbo::hsm::PIN_ENV).is_some();
    if pin_given || paths.device_rule != DeviceRule::Enforced {
        return Ok(None);
    }
    let directory = carimbo::directory::Directory::load(&root.join("seeds/directory/directory.json")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let people: Vec<String> = directory.people().map(|p| p.id.clone()).collect();
    match carimbo::hsm::demo::provision(&paths.hsm_module, data, root, &people, chrono::Utc::now()) {
        Ok(demo) => {
            paths.hsm_pin_file = Some(demo.pin_file.clone());
            let fresh = if demo.initialized { "token set up at this start, " } else { "" };
            Ok(Some(format!(
                "demo token {:?} ({fresh}PINs in {}, mode 0600); {} people have their key on it ({} new); they sign there with their second-factor code (enrol it at /security first); key files still sign advanced steps",
                carimbo::hsm::DEFAULT_TOKEN,
                demo.pin_file.parent().unwrap_or(data).display(),
                demo.published,
                demo.issued.len()
            )))
        }
        Err(e) if hsm.device_rule.is_none() => {
            paths.device_rule = DeviceRule::RelaxedForDemo;
            Ok(Some(format!("the demo token could not be set up: {e:#}; the device rule is relaxed for the demo instead")))
        }
        Err(e) => Err(e.context("cannot set up the demo token for the enforced device rule (give --hsm-pin-file for a token of your own)")),
    }
}

fn export_evidence(
    case: &str,
    data: &Path,
    root: &Path,
    out: Option<&Path>,
    withhold_restricted: bool,
    device_rule: Option<carimbo::signing::DeviceRule>,
) -> Result<ExitCode> {
    use carimbo::cases::CaseService;
    use carimbo::evidence::PkiMaterial;
    use carimbo::signing::ServiceSeal;
    use carimbo::store::{SledStore, Store};
    use std::io::Write;
    let mut paths = carimbo::http::Paths::from_root(root, data);
    if let Some(rule) = device_rule {
        paths.device_rule = rule;
    }
    let store_dir = data.join("store");
    if !store_dir.exists() {
        anyhow::bail!("no store in {} (the data directory given to `carimbo serve`)", data.display());
    }
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(
        SledStore::open(&store_dir)
            .map_err(|e| anyhow::anyhow!("{e} (is the server running on this data directory? then use GET /api/v1/cases/{{id}}/evidence)"))?,
    );
    let directory = Directory::load(&paths.seeds.join("directory/directory.json"))?;
    let report = Catalog::load_paths_with(&[paths.forms.clone(), paths.workflows.clone()], Some(&directory));
    if !report.problems.is_empty() {
        anyhow::bail!("the definitions have {} problem(s); run `carimbo check forms workflows`", report.problems.len());
    }
    let service = CaseService::new(store, report.catalog, directory)?;
    let mut pki = PkiMaterial::from_seeds(&paths.seeds)?.with_device_rule(paths.device_rule);
    // The server's kept trust list (with every change its administrators made), when there is one.
    if let Ok(text) = std::fs::read_to_string(data.join(carimbo::pki::trust::TRUST_LIST_FILE)) {
        pki = pki.with_trust_list(text);
    }
    let service_dir = paths.seeds.join("pki/service");
    let seal = ServiceSeal::from_pem(&std::fs::read(service_dir.join("service.key.pem"))?, &std::fs::read(service_dir.join("service.pem"))?)?;
    let sight = match withhold_restricted {
        true => carimbo::visibility::Sight::nothing_restricted(&*service.form_of(&service.case(case)?)?),
        false => carimbo::visibility::Sight::everything(),
    };
    // With the demo TSA in the seeds, the bundle gets its first archive time-stamp (B-LTA).
    let stamping = carimbo::tsa::TimeStamping::choose(&[], std::time::Duration::from_secs(10), &paths.seeds.join("pki"), data)?;
    let verifier = carimbo::cli::pki_files::load_verifier(&paths.seeds.join("trust"), &paths.seeds.join("pki/crl"), Some(&service_dir.join("service.pem")))?;
    let bundle = carimbo::evidence::export_archived(&service, case, &pki, &seal, "carimbo-cli", &sight, chrono::Utc::now(), &stamping, &verifier)?;
    let bytes = bundle.to_bytes();
    match out {
        Some(path) => {
            std::fs::write(path, &bytes)?;
            eprintln!("wrote {} ({} bytes, {} events) — check it with `carimbo verify {}`", path.display(), bytes.len(), bundle.events.len(), path.display());
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes)?;
            stdout.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn backup(out: &Path, args: &StoreArgs) -> Result<ExitCode> {
    if out.exists() {
        anyhow::bail!("{} exists; a backup never overwrites a file: choose another name [CARIMBO-E0424]", out.display());
    }
    let opened = open_store(&args.data, &args.store, args.pg_schema.as_deref(), true)?;
    eprintln!("backing up {} to {}", opened.place, out.display());
    // Written beside the target and renamed when complete and synced: a file with the final
    // name is always a whole backup.
    let partial = out.with_extension("partial");
    let file = std::fs::File::create(&partial).map_err(|e| anyhow::anyhow!("cannot create {}: {e} [CARIMBO-E0424]", partial.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let result = carimbo::backup::backup(&*opened.store, opened.kind, &mut writer, &mut |p| {
        eprintln!("  {} cases, {} events written", p.cases, p.events);
    });
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    let finish = || -> std::io::Result<()> {
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&partial, out)?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    finish().map_err(|e| anyhow::anyhow!("writing {}: {e} [CARIMBO-E0424]", out.display()))?;
    let secs = summary.elapsed.as_secs_f64();
    eprintln!(
        "backed up {} cases ({} events) and {} definitions in {secs:.1} s ({:.0} cases/s); sha256 {}",
        summary.cases,
        summary.events,
        summary.definitions,
        summary.cases as f64 / secs.max(1e-9),
        summary.sha256
    );
    Ok(ExitCode::SUCCESS)
}

fn restore(input: &Path, args: &StoreArgs) -> Result<ExitCode> {
    let file = std::fs::File::open(input).map_err(|e| anyhow::anyhow!("cannot open {}: {e} [CARIMBO-E0424]", input.display()))?;
    if args.store == "sled" {
        std::fs::create_dir_all(&args.data).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.data.display()))?;
    }
    let opened = open_store(&args.data, &args.store, args.pg_schema.as_deref(), false)?;
    eprintln!("restoring {} into {}", input.display(), opened.place);
    let summary = carimbo::backup::restore(&*opened.store, file, &mut |p| match p.phase {
        carimbo::backup::Phase::Checking => eprintln!("  checked {} cases ({} events)", p.cases, p.events),
        _ => eprintln!("  restored {} of {} cases", p.cases, p.total.unwrap_or(0)),
    })?;
    let secs = summary.elapsed.as_secs_f64();
    eprintln!(
        "restored {} cases ({} events) and {} definitions in {secs:.1} s ({:.0} cases/s)",
        summary.cases,
        summary.events,
        summary.definitions,
        summary.cases as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a report to standard output. A reader that stops early (`carimbo verify --json | head`)
/// closes the pipe: that is not an error of the verification, so it ends quietly, where
/// `print!` would panic.
fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[allow(clippy::too_many_arguments)] // one per command-line option
fn export(
    since: &str,
    until: Option<&str>,
    format: &str,
    kind: Option<&str>,
    data: &Path,
    store: &str,
    pg_schema: Option<&str>,
    out: Option<&Path>,
    restricted_fields: &[String],
) -> Result<ExitCode> {
    use carimbo::http::outbox_api::{ExportQuery, export_request};
    let query = ExportQuery { since: since.to_string(), until: until.map(str::to_string), format: Some(format.to_string()), kind: kind.map(str::to_string) };
    // Arguments are checked before the store is opened or a file is created.
    let (mut filter, format) = export_request(&query, true)?;
    filter.restricted_fields = restricted_fields.iter().cloned().collect();
    let store = open_store(data, store, pg_schema, true)?.store;
    let started = std::time::Instant::now();
    let mut progress = |n: usize| eprintln!("… {n} messages");
    let count = match out {
        Some(path) => {
            // Written beside the target and renamed at the end, so a failed export leaves no half file.
            let tmp = path.with_extension("partial");
            let file = std::fs::File::create(&tmp).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", tmp.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let count = carimbo::outbox::export(store.as_ref(), &filter, format, &mut w, &mut progress).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?;
            drop(w);
            std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            count
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            carimbo::outbox::export(store.as_ref(), &filter, format, &mut w, &mut progress)?
        }
    };
    eprintln!("exported {count} messages since {} in {:.1} s", filter.since.to_rfc3339(), started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

fn is_postgres(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://") || store.contains('=')
}

/// `host:port/dbname` of a connection string, without its password, for the start-up message.
fn postgres_place(store: &str) -> String {
    let Ok(config) = store.parse::<postgres::Config>() else { return "(unparsed connection string)".into() };
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or("(default database)"))
}

/// `carimbo tsa`: the RFC 3161 time-stamp authority on its own port.
fn run_tsa(addr: std::net::SocketAddr, key: &Path, cert: &Path, policy: &str, data: &Path) -> Result<ExitCode> {
    let tsa = std::sync::Arc::new(carimbo::tsa::LocalTsa::open(key, cert, policy, data)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("carimbo TSA on http://{}/tsa (policy {policy}, serials in {})", listener.local_addr()?, data.join("tsa/serial.json").display());
        axum::serve(listener, carimbo::tsa::router(tsa))
            .with_graceful_shutdown(async {
                tokio::signal::ctrl_c().await.ok();
            })
            .await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The value of a `--device-rule` flag.
fn device_rule_arg(text: &str) -> anyhow::Result<carimbo::signing::DeviceRule> {
    carimbo::signing::DeviceRule::parse(text).ok_or_else(|| anyhow::anyhow!("--device-rule is `enforced` or `relaxed-for-demo`, not {text:?}"))
}
