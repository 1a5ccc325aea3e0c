//! `carimbo hsm …`: the life cycle of a person's key on the HSM. `init` a token, `keygen` a
//! person's P-256 key inside it, `csr` (PKCS#10 signed inside the HSM), `issue` the certificate
//! from the demo qualified CA with QcSSCD (the CA has seen the key on the device) and publish
//! it in `DATA/hsm/people.json`, so the person's provider becomes `hsm`; `revoke` it (a new CRL
//! in `DATA/crl`; acts signed before stay valid), `rotate` (revoke, new key, new certificate),
//! `list`; `remote add | remove | list` keeps `DATA/hsm/remote.json`, who signs at the CSC
//! service. PINs come from CARIMBO_HSM_PIN / CARIMBO_HSM_SO_PIN or 0600 files, never argv.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::Utc;

pub use crate::hsm::lifecycle::{csr, issue, keygen, revoke, rotate};
use crate::hsm::{DEFAULT_TOKEN, Hsm, PIN_ENV, ProviderBook, SO_PIN_ENV, ensure_softhsm_conf, module_path, read_pin};

/// Where the HSM and the server's data are (shared by every `hsm` command).
#[derive(clap::Args, Debug, Clone)]
pub struct HsmPlace {
    /// The PKCS#11 module; default CARIMBO_HSM_MODULE, else Debian's SoftHSM2.
    #[arg(long)]
    pub hsm_module: Option<PathBuf>,
    /// The server's data directory (provider book, CRLs, SoftHSM2's tokens when SOFTHSM2_CONF is unset).
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// The token's label.
    #[arg(long, default_value = DEFAULT_TOKEN)]
    pub token: String,
    /// A file (mode 0600) holding the token's user PIN; default: CARIMBO_HSM_PIN.
    #[arg(long)]
    pub pin_file: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum HsmCommand {
    /// Initialize a free slot as the token (SO PIN from CARIMBO_HSM_SO_PIN or --so-pin-file).
    Init {
        #[command(flatten)]
        place: HsmPlace,
        #[arg(long)]
        so_pin_file: Option<PathBuf>,
    },
    /// Generate the person's P-256 key inside the token (label: the person id).
    Keygen {
        #[command(flatten)]
        place: HsmPlace,
        #[arg(long)]
        person: String,
    },
    /// Write a PKCS#10 request for the person's key, signed inside the HSM.
    Csr {
        #[command(flatten)]
        place: HsmPlace,
        #[arg(long)]
        person: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue the person's certificate from the demo qualified CA (with QcSSCD) for the key on the
    /// token and publish it: from then on the person signs on the HSM.
    Issue {
        #[command(flatten)]
        place: HsmPlace,
        #[arg(long)]
        person: String,
        /// The request `csr` wrote; it must be for the key on the token.
        #[arg(long)]
        csr: Option<PathBuf>,
        /// Directory holding seeds/ (the demo CA and the directory).
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
    /// Revoke the person's device certificate (a new CRL in DATA/crl): new acts are refused, acts
    /// signed before stay valid.
    Revoke {
        #[command(flatten)]
        place: HsmPlace,
        #[arg(long)]
        person: String,
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
    /// Revoke the current key, generate a new one and issue and publish its certificate.
    Rotate {
        #[command(flatten)]
        place: HsmPlace,
        #[arg(long)]
        person: String,
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
    /// Who signs at the remote CSC service (DATA/hsm/remote.json): add, remove, list.
    Remote {
        #[command(subcommand)]
        action: RemoteAction,
    },
    /// The tokens, their keys and who signs with which.
    List {
        #[command(flatten)]
        place: HsmPlace,
    },
}

/// `carimbo hsm remote …`: the book of people who sign at the CSC service. The server reads it
/// at each act, so a change takes effect without a restart.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum RemoteAction {
    /// Name a person as signing at the CSC service with their credential id there.
    Add {
        /// The server's data directory.
        #[arg(long, default_value = "data")]
        data: PathBuf,
        #[arg(long)]
        person: String,
        /// The credential id at the CSC service (`credentials/list`).
        #[arg(long)]
        credential: String,
        /// Directory holding seeds/ (the directory of people).
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
    /// Take a person out: they sign on the HSM or with a key file again.
    Remove {
        #[arg(long, default_value = "data")]
        data: PathBuf,
        #[arg(long)]
        person: String,
    },
    /// Who signs remotely, with which credential.
    List {
        #[arg(long, default_value = "data")]
        data: PathBuf,
    },
}

fn remote(action: &RemoteAction) -> Result<()> {
    use crate::csc::remote::RemoteBook;
    match action {
        RemoteAction::Add { data, person, credential, root } => {
            let directory = crate::directory::Directory::load(&root.join("seeds/directory/directory.json")).map_err(|e| anyhow::anyhow!("{e}"))?;
            if directory.person(person).is_none() {
                anyhow::bail!("CARIMBO-E1459: {person} is not in the directory");
            }
            let mut book = RemoteBook::load(data)?;
            book.add(person, credential)?;
            book.save(data)?;
            println!("{person} now signs at the CSC service with credential {credential:?}");
        }
        RemoteAction::Remove { data, person } => {
            let mut book = RemoteBook::load(data)?;
            let gone = book.remove(person)?;
            book.save(data)?;
            println!("{person} no longer signs remotely (credential {:?} left at the service)", gone.credential_id);
        }
        RemoteAction::List { data } => {
            let book = RemoteBook::load(data)?;
            if book.people.is_empty() {
                println!("no one signs remotely ({} has no one)", RemoteBook::path(data).display());
            }
            for (person, signer) in &book.people {
                println!("{person}: remote, credential {:?}", signer.credential_id);
            }
        }
    }
    Ok(())
}

pub fn hsm(command: &HsmCommand) -> Result<std::process::ExitCode> {
    let now = Utc::now();
    match command {
        HsmCommand::Init { place, so_pin_file } => {
            let hsm = open(place)?;
            let so_pin = read_pin(SO_PIN_ENV, so_pin_file.as_deref())?;
            let pin = read_pin(PIN_ENV, place.pin_file.as_deref())?;
            hsm.init_token(&place.token, &so_pin, &pin)?;
            println!("token {:?} initialized", place.token);
        }
        HsmCommand::Keygen { place, person } => {
            let point = keygen(&open(place)?, &place.token, &read_pin(PIN_ENV, place.pin_file.as_deref())?, person)?;
            println!("generated P-256 key {person:?} in token {:?} (public point {})", place.token, hex::encode(&point[..9]));
        }
        HsmCommand::Csr { place, person, out } => {
            let pem = csr(&open(place)?, &place.token, &read_pin(PIN_ENV, place.pin_file.as_deref())?, person, person)?;
            std::fs::write(out, pem).with_context(|| format!("cannot write {}", out.display()))?;
            println!("wrote {}", out.display());
        }
        HsmCommand::Issue { place, person, csr, root } => {
            let hsm = open(place)?;
            let request = csr.as_ref().map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))).transpose()?;
            let key = issue(&hsm, &place.token, &place.data, root, person, person, request.as_deref(), now)?;
            println!("issued certificate {:x} for {person} (QcSSCD: key on token {:?}); {person} now signs on the HSM", key.serial, place.token);
        }
        HsmCommand::Revoke { place, person, root } => {
            let serial = revoke(&place.data, root, person, now)?;
            println!("revoked certificate {serial:x} of {person}; the new CRL is in {}", place.data.join("crl").display());
        }
        HsmCommand::Rotate { place, person, root } => {
            let key = rotate(&open(place)?, &place.token, &read_pin(PIN_ENV, place.pin_file.as_deref())?, &place.data, root, person, now)?;
            println!("rotated {person}: new key {:?}, certificate {:x}", key.key_label, key.serial);
        }
        HsmCommand::Remote { action } => remote(action)?,
        HsmCommand::List { place } => list(&open(place)?, &place.data)?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn open(place: &HsmPlace) -> Result<Hsm> {
    ensure_softhsm_conf(&place.data)?;
    Ok(Hsm::open(&module_path(place.hsm_module.as_deref()))?)
}

fn list(hsm: &Hsm, data: &Path) -> Result<()> {
    for t in hsm.list()? {
        println!("token {:?}: {} key(s) {}", t.token, t.keys.len(), t.keys.join(", "));
    }
    for (person, key) in ProviderBook::load(data)?.people {
        let state = key.revoked_at.map(|t| format!("revoked {}", t.to_rfc3339())).unwrap_or_else(|| "in use".into());
        println!("{person}: hsm, token {:?}, key {:?}, certificate {:x}, {state}", key.token, key.key_label, key.serial);
    }
    Ok(())
}
