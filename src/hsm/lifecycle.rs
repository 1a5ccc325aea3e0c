//! The life cycle of a person's key on the HSM, for the `carimbo hsm` commands, the demo's
//! start-up (`hsm::demo`) and the administrators' keys page alike: generate the P-256 key inside
//! the token, make the PKCS#10 request signed there, issue the certificate from the demo qualified
//! CA with QcSSCD (only for a key found on the device) and publish it in the provider book,
//! revoke it (a new CRL of the CA in `DATA/crl`; acts signed before stay valid), rotate it
//! (revoke, new key, new certificate, the old private key destroyed).

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use cryptoki::types::AuthPin;
use rcgen::{PublicKeyData, SignatureAlgorithm};

use super::{DeviceKey, Hsm, HsmProvider, ProviderBook};
use crate::pki::demo::{DeviceHolder, issue_device_certificate, qualified_ca_crl};

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
    let label = fresh_label(person, now);
    keygen(hsm, token, pin, &label)?;
    let key = issue(hsm, token, data, root, person, &label, None, now)?;
    // The old private key is destroyed: a revoked key should not sign anything any more.
    if let Some(old) = old {
        hsm.destroy(&old.token, pin, &old.key_label)?;
    }
    Ok(key)
}

/// The label of a key generated at `now` for `person`: unique on the token, so a new key never
/// meets an old one's label.
fn fresh_label(person: &str, now: DateTime<Utc>) -> String {
    format!("{person}@{}", now.format("%Y%m%dT%H%M%S%.3f"))
}

/// One change of the provider book at a time in this process (the keys page's changes).
static CHANGES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_change() -> std::sync::MutexGuard<'static, ()> {
    CHANGES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Revokes `person`'s key in use from the keys page (a new CRL); returns the certificate's
/// serial. Needs no HSM: a key is revoked when its holder leaves even while HSM signing is off.
pub fn revoke_published(data: &Path, root: &Path, person: &str, now: DateTime<Utc>) -> Result<u64> {
    let _one = one_change();
    revoke(data, root, person, now)
}

/// The key life cycle as the server's administrators run it (the keys page): on the server's
/// token, with the server's PIN, one change at a time. None of these signs anything for the
/// person: a signature still needs their own second factor.
impl HsmProvider {
    /// Gives `person` a key generated in the token with a published QcSSCD certificate. A
    /// revoked key is replaced (its private key destroyed); a key in use is refused
    /// (`CARIMBO-E1453`: rotate it instead).
    pub fn issue_for(&self, root: &Path, person: &str, now: DateTime<Utc>) -> Result<DeviceKey> {
        let _one = one_change();
        match ProviderBook::load(&self.data)?.people.get(person) {
            Some(k) if k.revoked_at.is_none() => {
                bail!("CARIMBO-E1453: {person} already has a key in use on the HSM ({:?}); rotate it to replace it", k.key_label)
            }
            Some(_) => rotate(&self.hsm, &self.token, &self.pin, &self.data, root, person, now),
            None => {
                let label = fresh_label(person, now);
                keygen(&self.hsm, &self.token, &self.pin, &label)?;
                issue(&self.hsm, &self.token, &self.data, root, person, &label, None, now)
            }
        }
    }

    /// Replaces `person`'s key in use by a new one (the old certificate revoked, its private key
    /// destroyed); a person with no key gets none (`CARIMBO-E1457`).
    pub fn rotate_for(&self, root: &Path, person: &str, now: DateTime<Utc>) -> Result<DeviceKey> {
        let _one = one_change();
        ProviderBook::load(&self.data)?.key_of(person)?;
        rotate(&self.hsm, &self.token, &self.pin, &self.data, root, person, now)
    }
}

/// A change of the key life cycle made from the keys page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAction {
    Issue,
    Rotate,
    Revoke,
}

impl std::str::FromStr for KeyAction {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "issue" => Ok(KeyAction::Issue),
            "rotate" => Ok(KeyAction::Rotate),
            "revoke" => Ok(KeyAction::Revoke),
            _ => Err(()),
        }
    }
}

/// Appends one change to `DATA/hsm/changes.jsonl` (owner-only): who, what, whose key, which
/// certificate, when. No PIN or key material.
pub fn record_change(data: &Path, by: &str, action: KeyAction, person: &str, serial: u64, at: DateTime<Utc>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data.join("hsm").join("changes.jsonl");
    let line = serde_json::json!({"at": at, "by": by, "action": action, "person": person, "serial": format!("{serial:x}")});
    let mut file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(file, "{line}").with_context(|| format!("cannot write {}", path.display()))
}
