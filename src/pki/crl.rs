//! Certificate revocation lists, judged against the revocation *date*.
//!
//! A general-purpose validator treats any listed serial as revoked. A document signature is
//! different: a signature made before the revocation date stays valid, one made after it does
//! not (ETSI EN 319 102-1 §5.2.6 and §5.6.2.1). So carimbo reads CRLs itself: it finds the CRL
//! of each certificate's issuer (matched by the issuer name, signature checked with the
//! issuer's key from the validated path), checks the CRL covers the signing time, and reports
//! the revocation date so the caller can compare it with the signing time.
//!
//! CRLs live as files in one folder (`seeds/pki/crl/` for the demo PKI), PEM (`X509 CRL`) or
//! DER; their file names do not matter, the issuer name inside does.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::*;

use super::PkiError;
use super::cert::{CertFacts, KeyUsageBits, asn1_time, refused_signature_algorithm, trim_serial};

/// One revoked serial number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    pub date: DateTime<Utc>,
    pub reason: Option<String>,
}

/// A parsed CRL (signature not yet checked: that needs the issuer's key from a path).
#[derive(Clone, Debug)]
pub struct LoadedCrl {
    der: Vec<u8>,
    pub origin: String,
    pub issuer: String,
    issuer_raw: Vec<u8>,
    pub this_update: DateTime<Utc>,
    pub next_update: Option<DateTime<Utc>>,
    revoked: HashMap<Vec<u8>, RevokedEntry>,
    signature_algorithm: String,
    /// Why the CRL may not be relied on although it parsed (RFC 5280 §5.2.3: a CRL must
    /// carry a non-critical CRLNumber). A defective CRL makes its issuer's status unknown.
    defect: Option<String>,
}

impl LoadedCrl {
    pub fn from_der(der: Vec<u8>, origin: &str) -> Result<LoadedCrl, String> {
        let (issuer, issuer_raw, this_update, next_update, revoked, signature_algorithm, defect) = {
            let (rest, crl) = CertificateRevocationList::from_der(&der)
                .map_err(|e| format!("{origin}: not a DER CRL: {e}"))?;
            if !rest.is_empty() {
                return Err(format!("{origin}: trailing bytes after the CRL"));
            }
            let mut revoked = HashMap::new();
            for entry in crl.iter_revoked_certificates() {
                revoked.insert(
                    trim_serial(entry.raw_serial()),
                    RevokedEntry {
                        date: asn1_time(entry.revocation_date),
                        reason: entry.reason_code().map(|(_, r)| format!("{r:?}")),
                    },
                );
            }
            let crl_number = crl
                .extensions()
                .iter()
                .find(|e| e.oid.to_id_string() == "2.5.29.20");
            let defect = match crl_number {
                None => Some(format!("{origin}: the CRL has no CRLNumber extension")),
                Some(e) if e.critical => Some(format!(
                    "{origin}: the CRLNumber extension is marked critical"
                )),
                Some(_) => None,
            };
            (
                crl.issuer().to_string(),
                crl.issuer().as_raw().to_vec(),
                asn1_time(crl.last_update()),
                crl.next_update().map(asn1_time),
                revoked,
                crl.signature_algorithm.algorithm.to_id_string(),
                defect,
            )
        };
        Ok(LoadedCrl {
            der,
            origin: origin.to_string(),
            issuer,
            issuer_raw,
            this_update,
            next_update,
            revoked,
            signature_algorithm,
            defect,
        })
    }

    fn signature_verifies(&self, issuer_spki: &[u8]) -> Result<(), String> {
        if let Some(alg) = refused_signature_algorithm(&self.signature_algorithm) {
            return Err(format!("CRL {} is signed with refused {alg}", self.origin));
        }
        let (_, crl) = CertificateRevocationList::from_der(&self.der)
            .map_err(|e| format!("CRL {}: {e}", self.origin))?;
        let (_, spki) =
            SubjectPublicKeyInfo::from_der(issuer_spki).map_err(|e| format!("issuer key: {e}"))?;
        crl.verify_signature(&spki).map_err(|_| {
            format!(
                "CRL {} is not signed by the certificate's issuer",
                self.origin
            )
        })
    }
}

/// What the freshest usable CRL says about one certificate, independent of the time asked
/// about: the caller compares `entry.date` and the CRL's coverage with its signing time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlLookup {
    pub crl_this_update: DateTime<Utc>,
    pub crl_next_update: Option<DateTime<Utc>>,
    /// `Some` when the serial is listed.
    pub entry: Option<RevokedEntry>,
}

impl CrlLookup {
    /// Whether the CRL can speak for time `at`: it was issued at or after `at`, or `at` falls
    /// before its nextUpdate (RFC 5280 §5.1.2.5).
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        at <= self.crl_this_update || self.crl_next_update.is_some_and(|n| at <= n)
    }
}

/// All CRLs carimbo knows, indexed by issuer name.
#[derive(Clone, Debug, Default)]
pub struct CrlSet {
    by_issuer: HashMap<Vec<u8>, Vec<LoadedCrl>>,
}

impl CrlSet {
    pub fn empty() -> CrlSet {
        CrlSet::default()
    }

    /// Load every `*.crl`, `*.pem` and `*.der` file of `dir`. A missing folder is an empty set
    /// (revocation then comes out `TRY_LATER`, never `PASSED`).
    pub fn load_dir(dir: &Path) -> Result<CrlSet, PkiError> {
        let mut set = CrlSet::empty();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(set),
            Err(source) => {
                return Err(PkiError::Unreadable {
                    path: dir.display().to_string(),
                    source,
                });
            }
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "crl" | "pem" | "der") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|source| PkiError::Unreadable {
                path: path.display().to_string(),
                source,
            })?;
            let origin = path.display().to_string();
            let bad = |reason: String| PkiError::BadCrl {
                path: origin.clone(),
                reason,
            };
            let ders: Vec<Vec<u8>> = if bytes.starts_with(b"-----") {
                CertificateRevocationListDer::pem_slice_iter(&bytes)
                    .map(|r| r.map(|d| d.as_ref().to_vec()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad(e.to_string()))?
            } else {
                vec![bytes]
            };
            for der in ders {
                set.add(LoadedCrl::from_der(der, &origin).map_err(bad)?);
            }
        }
        Ok(set)
    }

    pub fn add(&mut self, crl: LoadedCrl) {
        let list = self.by_issuer.entry(crl.issuer_raw.clone()).or_default();
        list.push(crl);
        // Newest first, so the freshest CRL that verifies is the one used.
        list.sort_by_key(|c| std::cmp::Reverse(c.this_update));
    }

    pub fn len(&self) -> usize {
        self.by_issuer.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` when some CRL names this issuer (used where revocation checking is optional).
    pub fn has_issuer(&self, issuer_raw: &[u8]) -> bool {
        self.by_issuer.contains_key(issuer_raw)
    }

    /// Look `cert` up in the newest CRL of its issuer that is signed by the key `issuer_spki`.
    /// `Err` says why no CRL could be used (missing, wrong signer, refused algorithm).
    pub fn lookup(
        &self,
        cert: &CertFacts,
        issuer_spki: &[u8],
        issuer_key_usage: Option<KeyUsageBits>,
    ) -> Result<CrlLookup, String> {
        let Some(candidates) = self.by_issuer.get(&cert.issuer_raw) else {
            return Err(format!("no CRL from issuer `{}` is available", cert.issuer));
        };
        // RFC 5280 §4.2.1.3: an issuer whose key usage lacks cRLSign cannot sign CRLs.
        if issuer_key_usage.is_some_and(|ku| !ku.crl_sign) {
            return Err(format!(
                "issuer `{}` may not sign CRLs (no cRLSign)",
                cert.issuer
            ));
        }
        let mut problems = Vec::new();
        for crl in candidates {
            if let Some(defect) = &crl.defect {
                problems.push(defect.clone());
                continue;
            }
            if let Err(e) = crl.signature_verifies(issuer_spki) {
                problems.push(e);
                continue;
            }
            return Ok(CrlLookup {
                crl_this_update: crl.this_update,
                crl_next_update: crl.next_update,
                entry: crl.revoked.get(&cert.serial).cloned(),
            });
        }
        Err(problems.join("; "))
    }
}
