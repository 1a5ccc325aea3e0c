//! The PKI material on disk: certificate PEM files, the CRL folder, the trust list's folder.
//!
//! `pki` parses bytes and never opens a file; this is where the command line and the server's
//! start-up read those files and hand the bytes over, naming each file in its errors
//! (`CARIMBO-E0501` when it cannot be read).

use std::path::Path;

use chrono::{DateTime, Utc};
use rustls_pki_types::CertificateDer;

use crate::pki::cert::parse_pem_certificates;
use crate::pki::history::TrustHistory;
use crate::pki::path::{CertificateValidator, ValidationPolicy};
use crate::pki::trust::{TRUST_LIST_FILE, TrustListFile};
use crate::pki::{CrlSet, PkiError, TrustList};
use crate::signing::{SignatureVerifier, SigningError};

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    std::fs::read(path).map_err(|source| PkiError::Unreadable { path: path.display().to_string(), source })
}

/// Every certificate of a PEM file, in file order.
pub fn load_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    parse_pem_certificates(&read(path)?, &path.display().to_string())
}

/// Every `*.crl`, `*.pem` and `*.der` file of `dir`, in name order. A missing folder is an
/// empty set (revocation then comes out `TRY_LATER`, never `PASSED`).
pub fn load_crl_dir(dir: &Path) -> Result<CrlSet, PkiError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CrlSet::empty()),
        Err(source) => return Err(PkiError::Unreadable { path: dir.display().to_string(), source }),
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        if matches!(path.extension().and_then(|e| e.to_str()), Some("crl" | "pem" | "der")) {
            files.push((path.display().to_string(), read(&path)?));
        }
    }
    CrlSet::from_files(files)
}

/// The signed history in `DIR/trust-list.json`, verified at `now`.
pub fn load_trust_history(dir: &Path, now: DateTime<Utc>) -> Result<TrustHistory, PkiError> {
    let path = dir.join(TRUST_LIST_FILE);
    TrustList::history_from_bytes(&read(&path)?, &path.display().to_string(), now)
}

/// The trust list of `DIR/trust-list.json`, verified at `now`.
pub fn load_trust_list(dir: &Path, now: DateTime<Utc>) -> Result<TrustList, PkiError> {
    let path = dir.join(TRUST_LIST_FILE);
    TrustList::from_bytes(&read(&path)?, &path.display().to_string(), now)
}

/// An older list (version 1: `DIR/FILE`) and the first certificate of each file it names.
pub fn load_trust_list_v1(dir: &Path, file_name: &str) -> Result<(TrustListFile, Vec<CertificateDer<'static>>), PkiError> {
    let path = dir.join(file_name);
    let file = TrustList::parse_v1(&read(&path)?, &path.display().to_string())?;
    let mut certs = Vec::new();
    for entry in &file.entities {
        certs.push(load_pem_certificates(&dir.join(&entry.certificate))?.remove(0));
    }
    Ok((file, certs))
}

/// The verifier the command line and the tests use: the trust list (verified now), the CRL
/// folder, and the service seal's certificate when that file exists.
pub fn load_verifier(trust: &Path, crls: &Path, service_cert: Option<&Path>) -> Result<SignatureVerifier, SigningError> {
    let trust = load_trust_list(trust, Utc::now())?;
    let crls = load_crl_dir(crls)?;
    let mut verifier = SignatureVerifier::new(CertificateValidator::new(trust, crls, ValidationPolicy::document_signing()));
    if let Some(path) = service_cert.filter(|p| p.exists()) {
        let certs = load_pem_certificates(path)?;
        verifier = verifier.with_service_seal(&certs[0]);
    }
    Ok(verifier)
}
