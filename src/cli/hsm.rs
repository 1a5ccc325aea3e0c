//! `carimbo hsm …`: the life cycle of a person's key on the HSM. `init` a token, `keygen` a
//! person's P-256 key inside it, `csr` (PKCS#10 signed inside the HSM), `issue` the certificate
//! from the demo qualified CA with QcSSCD (the CA has seen the key on the device) and publish
//! it in `DATA/hsm/people.json`, so the person's provider becomes `hsm`; `revoke` it (a new CRL
//! in `DATA/crl`; acts signed before stay valid), `rotate` (revoke, new key, new certificate),
//! `list`. PINs come from CARIMBO_HSM_PIN / CARIMBO_HSM_SO_PIN or 0600 files, never argv.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use cryptoki::types::AuthPin;
use rcgen::{PublicKeyData, SignatureAlgorithm};

use crate::hsm::{DEFAULT_TOKEN, DeviceKey, Hsm, PIN_ENV, ProviderBook, SO_PIN_ENV, ensure_softhsm_conf, module_path, read_pin};
use crate::pki::demo::{DeviceHolder, issue_device_certificate, qualified_ca_crl};

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
    /// The tokens, their keys and who signs with which.
    List {
        #[command(flatten)]
        place: HsmPlace,
    },
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
        HsmCommand::List { place } => list(&open(place)?, &place.data)?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn open(place: &HsmPlace) -> Result<Hsm> {
    ensure_softhsm_conf(&place.data)?;
    Ok(Hsm::open(&module_path(place.hsm_module.as_deref()))?)
}

/// Generates `person`'s key (labelled `label`... the person id by default) in `token`.
pub fn keygen(hsm: &Hsm, token: &str, pin: &AuthPin, label: &str) -> Result<Vec<u8>> {
    Ok(hsm.generate_p256(token, pin, label)?)
}

/// The key on the token, as rcgen sees it: the public point, and signing inside the HSM (rcgen
/// wants ECDSA signatures DER-encoded, PKCS#11 gives r||s).
struct TokenKey<'a> {
    hsm: &'a Hsm,
    token: &'a str,
    pin: &'a AuthPin,
    label: &'a str,
    point: Vec<u8>,
}

impl PublicKeyData for TokenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for TokenKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let rs = self.hsm.sign_es256(self.token, self.pin, self.label, msg).map_err(|_| rcgen::Error::RemoteKeyError)?;
        ecdsa_der(&rs).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// ECDSA-Sig-Value (RFC 3279 §2.2.3) of a raw r||s signature, with the `der` crate.
fn ecdsa_der(rs: &[u8]) -> Result<Vec<u8>, der::Error> {
    use der::Encode;
    #[derive(der::Sequence)]
    struct EcdsaSig<'a> {
        r: der::asn1::UintRef<'a>,
        s: der::asn1::UintRef<'a>,
    }
    let (r, s) = rs.split_at(rs.len() / 2);
    EcdsaSig { r: der::asn1::UintRef::new(r)?, s: der::asn1::UintRef::new(s)? }.to_der()
}

/// A PKCS#10 request (PEM) for key `label`, naming `person` (serialNumber), signed in the HSM.
pub fn csr(hsm: &Hsm, token: &str, pin: &AuthPin, person: &str, label: &str) -> Result<String> {
    let point = hsm.public_point(token, label)?;
    let key = TokenKey { hsm, token, pin, label, point };
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]), person);
    params.distinguished_name.push(rcgen::DnType::CommonName, person);
    params.serialize_request(&key).map_err(|e| anyhow!("cannot make the request: {e}"))?.pem().map_err(|e| anyhow!("{e}"))
}

/// The public point a PKCS#10 request (PEM or DER) is for, after checking its self-signature.
fn csr_point(request: &[u8]) -> Result<Vec<u8>> {
    use x509_parser::prelude::FromDer;
    let der = match x509_parser::pem::parse_x509_pem(request) {
        Ok((_, pem)) => pem.contents,
        Err(_) => request.to_vec(),
    };
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(&der).map_err(|e| anyhow!("not a PKCS#10 request: {e}"))?;
    csr.verify_signature().map_err(|e| anyhow!("the request's signature does not verify: {e}"))?;
    Ok(csr.certification_request_info.subject_pki.subject_public_key.data.to_vec())
}

/// Issues and publishes `person`'s certificate for key `label` on the token. With a request,
/// it must be for that very key: the CA states QcSSCD only for a key it finds on the device.
#[allow(clippy::too_many_arguments)] // each argument is a distinct fact of the issuance
pub fn issue(hsm: &Hsm, token: &str, data: &Path, root: &Path, person: &str, label: &str, request: Option<&[u8]>, now: DateTime<Utc>) -> Result<DeviceKey> {
    let point = hsm.public_point(token, label)?;
    if let Some(request) = request
        && csr_point(request)? != point
    {
        bail!("CARIMBO-E1459: the request is not for the key {label:?} on token {token:?}: only a key on the device gets a QcSSCD certificate");
    }
    let directory = crate::directory::Directory::load(&root.join("seeds/directory/directory.json")).map_err(|e| anyhow!("{e}"))?;
    let who = directory.person(person).ok_or_else(|| anyhow!("CARIMBO-E1459: {person} is not in the directory"))?;
    let holder = DeviceHolder {
        common_name: format!("{} {}", who.name.zh, who.name.pt.to_uppercase()).trim().to_string(),
        department: who.department.as_deref(),
        person_id: person,
    };
    let pki = root.join("seeds/pki/ca");
    let ca_key = std::fs::read_to_string(pki.join("qualified-ca.key.pem")).context("cannot read the demo qualified CA's key")?;
    let ca_cert = std::fs::read_to_string(pki.join("qualified-ca.pem")).context("cannot read the demo qualified CA's certificate")?;
    let serial = fresh_serial()?;
    let chain_pem =
        issue_device_certificate(&point, &holder, serial, (now - chrono::Duration::days(1), now + chrono::Duration::days(3 * 365)), &ca_key, &ca_cert)?;
    let key = DeviceKey { token: token.into(), key_label: label.into(), serial, chain_pem, revoked_at: None };
    let mut book = ProviderBook::load(data)?;
    book.people.insert(person.into(), key.clone());
    book.save(data)?;
    Ok(key)
}

/// A random positive serial of 63 bits (RFC 5280 §4.1.2.2: unique per CA, at most 20 octets).
fn fresh_serial() -> Result<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness: {e}"))?;
    Ok((u64::from_be_bytes(bytes) >> 1).max(0x10000))
}

/// Revokes `person`'s current device certificate at `now`: marks it in the book and writes the
/// qualified CA's new CRL to `DATA/crl/qualified-ca.crl` (the server reads it over the seeded one).
pub fn revoke(data: &Path, root: &Path, person: &str, now: DateTime<Utc>) -> Result<u64> {
    let mut book = ProviderBook::load(data)?;
    let key = book.key_of(person)?.clone();
    book.revoked.push((key.serial, now));
    book.crl_number = book.crl_number.max(1) + 1;
    if let Some(k) = book.people.get_mut(person) {
        k.revoked_at = Some(now);
    }
    let ca_key = std::fs::read_to_string(root.join("seeds/pki/ca/qualified-ca.key.pem")).context("cannot read the demo qualified CA's key")?;
    let crl = qualified_ca_crl(&book.revoked, book.crl_number, now, &ca_key)?;
    let dir = data.join("crl");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join("qualified-ca.crl"), crl).context("cannot write the CRL")?;
    book.save(data)?;
    Ok(key.serial)
}

/// Revokes the current key (if any), generates a new one and issues and publishes its certificate.
pub fn rotate(hsm: &Hsm, token: &str, pin: &AuthPin, data: &Path, root: &Path, person: &str, now: DateTime<Utc>) -> Result<DeviceKey> {
    let old = ProviderBook::load(data)?.people.get(person).cloned();
    if let Some(old) = &old
        && old.revoked_at.is_none()
    {
        revoke(data, root, person, now)?;
    }
    let label = format!("{person}@{}", now.format("%Y%m%dT%H%M%S"));
    keygen(hsm, token, pin, &label)?;
    let key = issue(hsm, token, data, root, person, &label, None, now)?;
    // The old private key is destroyed: a revoked key should not sign anything any more.
    if let Some(old) = old {
        hsm.destroy(&old.token, pin, &old.key_label)?;
    }
    Ok(key)
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
