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

use chrono::{DateTime, Utc};
use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::*;

use super::PkiError;
use x509_parser::num_bigint::BigUint;

use super::cert::{ALL_REASONS, CertFacts, KeyUsageBits, asn1_time, distribution_point_names, refused_signature_algorithm, relative_dp_name};

/// One revoked serial number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    pub date: DateTime<Utc>,
    pub reason: Option<String>,
}

/// CRL reason code removeFromCRL (RFC 5280 §5.3.1): in a delta CRL, "no longer revoked".
const REASON_REMOVE_FROM_CRL: u8 = 8;

// CRL and CRL-entry extensions carimbo processes (RFC 5280 §5.2, §5.3).
const OID_CRL_NUMBER: &str = "2.5.29.20";
const OID_DELTA_CRL_INDICATOR: &str = "2.5.29.27";
const OID_ISSUING_DISTRIBUTION_POINT: &str = "2.5.29.28";
const OID_CERTIFICATE_ISSUER: &str = "2.5.29.29";

/// The scope of a CRL: its issuing distribution point extension (RFC 5280 §5.2.5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct CrlScope {
    /// Names of the distribution point the CRL is for; `None`: all of the issuer's.
    names: Option<Vec<String>>,
    only_user_certs: bool,
    only_ca_certs: bool,
    only_attribute_certs: bool,
    /// Reasons the CRL covers (`ALL_REASONS` without onlySomeReasons).
    reasons: u16,
    indirect: bool,
}

/// (certificate issuer name DER, serial number DER contents).
type EntryKey = (Vec<u8>, Vec<u8>);

/// A parsed CRL (signature not yet checked: that needs the issuer's key from a path).
#[derive(Clone, Debug)]
pub struct LoadedCrl {
    der: Vec<u8>,
    pub origin: String,
    pub issuer: String,
    issuer_raw: Vec<u8>,
    pub this_update: DateTime<Utc>,
    pub next_update: Option<DateTime<Utc>>,
    /// Keyed by (certificate issuer name, serial DER contents): an indirect CRL's entries
    /// may name another issuer (certificateIssuer, RFC 5280 §5.3.3).
    revoked: HashMap<EntryKey, (RevokedEntry, Option<u8>)>,
    signature_algorithm: String,
    crl_number: Option<BigUint>,
    /// `Some(BaseCRLNumber)` for a delta CRL (RFC 5280 §5.2.4).
    delta_base: Option<BigUint>,
    scope: CrlScope,
    /// Why the CRL may not be relied on although it parsed (RFC 5280 §5.2.3: a CRL must
    /// carry a non-critical CRLNumber; §5.2, §5.3: a critical extension carimbo does not
    /// process). A defective CRL makes its issuer's status unknown.
    defect: Option<String>,
}

fn parse_crl(der: &[u8], origin: &str) -> Result<LoadedCrl, String> {
    let (rest, crl) = CertificateRevocationList::from_der(der).map_err(|e| format!("{origin}: not a DER CRL: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{origin}: trailing bytes after the CRL"));
    }
    let CrlExtensions { crl_number, delta_base, scope, mut defect } = crl_extensions(&crl, origin);
    let revoked = revoked_entries(&crl, scope.indirect, origin, &mut defect);
    Ok(LoadedCrl {
        der: der.to_vec(),
        origin: origin.to_string(),
        issuer: crl.issuer().to_string(),
        issuer_raw: crl.issuer().as_raw().to_vec(),
        this_update: asn1_time(crl.last_update()),
        next_update: crl.next_update().map(asn1_time),
        revoked,
        signature_algorithm: crl.signature_algorithm.algorithm.to_id_string(),
        crl_number,
        delta_base,
        scope,
        defect,
    })
}

/// What a CRL's extensions say (RFC 5280 §5.2), and the first reason it may not be relied on.
struct CrlExtensions {
    crl_number: Option<BigUint>,
    delta_base: Option<BigUint>,
    scope: CrlScope,
    defect: Option<String>,
}

fn crl_extensions(crl: &CertificateRevocationList<'_>, origin: &str) -> CrlExtensions {
    let mut defect = None;
    let mut crl_number = None;
    let mut delta_base = None;
    let mut scope = CrlScope { reasons: ALL_REASONS, ..CrlScope::default() };
    for ext in crl.extensions() {
        let oid = ext.oid.to_id_string();
        match (oid.as_str(), ext.parsed_extension()) {
            (OID_CRL_NUMBER, ParsedExtension::CRLNumber(n)) if !ext.critical => crl_number = Some(n.clone()),
            (OID_CRL_NUMBER, _) => {
                defect.get_or_insert(format!("{origin}: the CRLNumber extension is marked critical or malformed"));
            }
            (OID_DELTA_CRL_INDICATOR, _) => match x509_parser::der_parser::der::parse_der_integer(ext.value).ok().and_then(|(_, i)| i.as_biguint().ok()) {
                Some(base) => delta_base = Some(base),
                None => {
                    defect.get_or_insert(format!("{origin}: the deltaCRLIndicator extension is malformed"));
                }
            },
            (OID_ISSUING_DISTRIBUTION_POINT, ParsedExtension::IssuingDistributionPoint(idp)) => {
                scope = idp_scope(ext, idp, crl, origin, &mut defect);
            }
            (OID_ISSUING_DISTRIBUTION_POINT, _) => {
                defect.get_or_insert(format!("{origin}: the issuingDistributionPoint extension is malformed"));
            }
            (_, _) if ext.critical => {
                defect.get_or_insert(format!("{origin}: the CRL has critical extension {oid}, which carimbo does not process"));
            }
            _ => {}
        }
    }
    if crl_number.is_none() {
        defect.get_or_insert(format!("{origin}: the CRL has no CRLNumber extension"));
    }
    CrlExtensions { crl_number, delta_base, scope, defect }
}

/// The scope an issuingDistributionPoint gives a CRL (RFC 5280 §5.2.5).
fn idp_scope(
    ext: &X509Extension<'_>,
    idp: &IssuingDistributionPoint<'_>,
    crl: &CertificateRevocationList<'_>,
    origin: &str,
    defect: &mut Option<String>,
) -> CrlScope {
    let relative =
        super::cert::der_tlv(ext.value).filter(|(tag, _, _)| *tag == 0x30).ok_or_else(|| "malformed".to_string()).and_then(|(_, seq, _)| relative_dp_name(seq));
    let relative = match relative {
        Ok(r) => r,
        Err(e) => {
            defect.get_or_insert(format!("{origin}: the issuingDistributionPoint extension is malformed: {e}"));
            None
        }
    };
    CrlScope {
        names: distribution_point_names(idp.distribution_point.as_ref(), relative.as_deref(), crl.issuer()),
        only_user_certs: idp.only_contains_user_certs,
        only_ca_certs: idp.only_contains_ca_certs,
        only_attribute_certs: idp.only_contains_attribute_certs,
        reasons: idp.only_some_reasons.as_ref().map_or(ALL_REASONS, |r| r.flags),
        indirect: idp.indirect_crl,
    }
}

/// The revoked entries by (certificate issuer, serial), with their reason codes.
fn revoked_entries(
    crl: &CertificateRevocationList<'_>,
    indirect: bool,
    origin: &str,
    defect: &mut Option<String>,
) -> HashMap<EntryKey, (RevokedEntry, Option<u8>)> {
    let mut revoked = HashMap::new();
    // Entries of an indirect CRL belong to the CRL issuer until a certificateIssuer entry
    // extension names another one, which then holds for the following entries (§5.3.3).
    let mut entry_issuer = crl.issuer().as_raw().to_vec();
    for entry in crl.iter_revoked_certificates() {
        let mut code = None;
        for ext in entry.extensions() {
            let oid = ext.oid.to_id_string();
            match ext.parsed_extension() {
                ParsedExtension::ReasonCode(r) => code = Some(r.0),
                _ if oid == OID_CERTIFICATE_ISSUER => {
                    let named = SubjectAlternativeName::from_der(ext.value).ok().and_then(|(_, g)| {
                        g.general_names.iter().find_map(|n| match n {
                            GeneralName::DirectoryName(dn) => Some(dn.as_raw().to_vec()),
                            _ => None,
                        })
                    });
                    match named {
                        Some(issuer) if indirect => entry_issuer = issuer,
                        Some(_) => {
                            defect.get_or_insert(format!("{origin}: an entry names a certificate issuer but the CRL is not indirect"));
                        }
                        None => {
                            defect.get_or_insert(format!("{origin}: an entry's certificateIssuer names no directory name"));
                        }
                    }
                }
                _ if ext.critical => {
                    defect.get_or_insert(format!("{origin}: an entry has critical extension {oid}, which carimbo does not process"));
                }
                _ => {}
            }
        }
        revoked.insert(
            (entry_issuer.clone(), entry.raw_serial().to_vec()),
            (RevokedEntry { date: asn1_time(entry.revocation_date), reason: entry.reason_code().map(|(_, r)| format!("{r:?}")) }, code),
        );
    }
    revoked
}

impl LoadedCrl {
    pub fn from_der(der: Vec<u8>, origin: &str) -> Result<LoadedCrl, String> {
        parse_crl(&der, origin)
    }

    fn signature_verifies(&self, issuer_spki: &[u8]) -> Result<(), String> {
        if let Some(alg) = refused_signature_algorithm(&self.signature_algorithm) {
            return Err(format!("CRL {} is signed with refused {alg}", self.origin));
        }
        let (_, crl) = CertificateRevocationList::from_der(&self.der).map_err(|e| format!("CRL {}: {e}", self.origin))?;
        let (_, spki) = SubjectPublicKeyInfo::from_der(issuer_spki).map_err(|e| format!("issuer key: {e}"))?;
        crl.verify_signature(&spki).map_err(|_| format!("CRL {} is not signed by a validated key of its issuer `{}`", self.origin, self.issuer))
    }

    /// Which of `signers` (keys of certificates named like the issuer, with their key
    /// usage) signed this CRL.
    fn signed_by(&self, signers: &[CrlSigner<'_>]) -> Result<usize, String> {
        let mut last = format!("CRL {} is not signed by a validated key of its issuer `{}`", self.origin, self.issuer);
        for (i, s) in signers.iter().enumerate() {
            match self.signature_verifies(s.spki) {
                Ok(()) => return Ok(i),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The reasons this CRL speaks for about `cert` (RFC 5280 §6.3.3 (b)), or why it does
    /// not apply to it at all. A CRL of another issuer answers only for a distribution point
    /// whose cRLIssuer names it, and only if it says it is indirect.
    fn scope_for(&self, cert: &CertFacts) -> Result<u16, String> {
        let s = &self.scope;
        let why = |what: &str| Err(format!("CRL {} {what}", self.origin));
        if s.only_attribute_certs {
            return why("lists only attribute certificates");
        }
        if s.only_ca_certs && !cert.is_ca {
            return why("lists only CA certificates");
        }
        if s.only_user_certs && cert.is_ca {
            return why("lists only end-entity certificates");
        }
        let direct = self.issuer_raw == cert.issuer_raw;
        if !direct && !s.indirect {
            return why("is another issuer's and not an indirect CRL");
        }
        if cert.crl_distribution_points.is_empty() {
            if !direct {
                return why("is another issuer's, and the certificate names no CRL issuer");
            }
            if s.names.is_some() {
                return why("is for a distribution point the certificate does not name");
            }
            return Ok(s.reasons);
        }
        let mut reasons = 0;
        let mut matched = false;
        for dp in &cert.crl_distribution_points {
            // A point answered by a delegated CRL issuer is not one the issuer's own CRL
            // answers, and the other way round.
            let answered_by_this_issuer = match &dp.crl_issuer {
                None => direct,
                Some(names) => names.contains(&self.issuer_raw),
            };
            if !answered_by_this_issuer {
                continue;
            }
            let names_match = match (&s.names, &dp.names) {
                (None, _) => true,
                (Some(crl_names), Some(dp_names)) => crl_names.iter().any(|n| dp_names.contains(n)),
                (Some(_), None) => false,
            };
            if names_match {
                matched = true;
                reasons |= dp.reasons & s.reasons;
            }
        }
        if !matched {
            return why("is not for any of the certificate's CRL distribution points");
        }
        Ok(reasons)
    }

    fn entry(&self, cert: &CertFacts) -> Option<&(RevokedEntry, Option<u8>)> {
        self.revoked.get(&(cert.issuer_raw.clone(), cert.serial_der.clone()))
    }
}

/// A key that may have signed CRLs in the name of `name`: a certificate's issuer, another
/// certificate of the validated path with the issuer's name (a key rollover), or a CRL
/// signer validated on its own path to the same trust anchor (RFC 5280 §6.3.3 (f)).
#[derive(Clone, Copy, Debug)]
pub struct CrlSigner<'a> {
    /// The subject name (DER) of the key's certificate.
    pub name: &'a [u8],
    pub spki: &'a [u8],
    pub key_usage: Option<KeyUsageBits>,
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

    /// The set of CRL files given as (name, bytes) pairs, in the given order: each is PEM (one
    /// or more `X509 CRL` blocks) or DER. The edge reads the folder (`cli::pki_files`); an
    /// empty set makes revocation come out `TRY_LATER`, never `PASSED`.
    pub fn from_files(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> Result<CrlSet, PkiError> {
        let mut set = CrlSet::empty();
        for (origin, bytes) in files {
            let bad = |reason: String| PkiError::BadCrl { path: origin.clone(), reason };
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

    /// Adds every CRL of `other` (the server's own CRLs, `DATA/crl`, over the seeded ones).
    pub fn merge(&mut self, other: CrlSet) {
        for crl in other.by_issuer.into_values().flatten() {
            self.add(crl);
        }
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

    /// The issuer names whose CRLs may answer for `cert`: its issuer, then every CRL issuer
    /// its distribution points delegate to (cRLIssuer), each once.
    pub fn crl_issuers_for(cert: &CertFacts) -> Vec<&[u8]> {
        let mut names: Vec<&[u8]> = Vec::new();
        let direct = cert.crl_distribution_points.is_empty() || cert.crl_distribution_points.iter().any(|dp| dp.crl_issuer.is_none());
        if direct {
            names.push(&cert.issuer_raw);
        }
        for dp in &cert.crl_distribution_points {
            for name in dp.crl_issuer.iter().flatten() {
                if !names.contains(&name.as_slice()) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// Look `cert` up in the CRLs that may answer for it (its issuer's, and those of the CRL
    /// issuers its distribution points name), each signed by one of `signers` with the CRL
    /// issuer's name and cRLSign (the issuer's own key first), newest first: complete CRLs
    /// whose scope covers the certificate (issuing distribution point), together covering
    /// every revocation reason, each with the newest delta CRL that applies to it. `Err` says
    /// why no answer can be given (no CRL, wrong signer, refused algorithm, unprocessed
    /// critical extension, reasons not covered).
    pub fn lookup(&self, cert: &CertFacts, signers: &[CrlSigner<'_>]) -> Result<CrlLookup, String> {
        let issuers = CrlSet::crl_issuers_for(cert);
        let candidates: Vec<&LoadedCrl> = issuers.iter().filter_map(|name| self.by_issuer.get(*name)).flatten().collect();
        if candidates.is_empty() {
            return Err(match issuers.as_slice() {
                [only] if *only == cert.issuer_raw.as_slice() => {
                    format!("no CRL from issuer `{}` is available", cert.issuer)
                }
                _ => format!("no CRL from issuer `{}` or from a CRL issuer its distribution points name is available", cert.issuer),
            });
        }
        // RFC 5280 §4.2.1.3: a key whose key usage lacks cRLSign cannot sign CRLs.
        let signers: Vec<CrlSigner<'_>> = signers.iter().filter(|s| s.key_usage.is_none_or(|ku| ku.crl_sign)).copied().collect();
        if !signers.iter().any(|s| issuers.contains(&s.name)) {
            return Err(format!("issuer `{}` may not sign CRLs (no cRLSign)", cert.issuer));
        }
        let mut problems = Vec::new();
        let mut covered = 0u16;
        let mut this_update: Option<DateTime<Utc>> = None;
        let mut next_update: Option<DateTime<Utc>> = None;
        let mut any_next = true;
        for &crl in &candidates {
            if let Some(defect) = &crl.defect {
                problems.push(defect.clone());
                continue;
            }
            if crl.delta_base.is_some() {
                continue; // deltas are applied to their complete CRL below
            }
            let reasons = match crl.scope_for(cert) {
                Ok(r) => r,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            if reasons & !covered == 0 {
                continue; // older CRL for reasons already answered
            }
            let named: Vec<CrlSigner<'_>> = signers.iter().filter(|s| s.name == crl.issuer_raw.as_slice()).copied().collect();
            let signer = match crl.signed_by(&named) {
                Ok(i) => named[i],
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            // The newest delta CRL for this complete CRL: same scope and signer, based on a
            // CRL no newer than it, and newer itself (RFC 5280 §5.2.4, §6.3.3 (c)).
            let delta = candidates.iter().find(|d| {
                d.defect.is_none()
                    && d.issuer_raw == crl.issuer_raw
                    && d.scope == crl.scope
                    && match (&d.delta_base, &d.crl_number, &crl.crl_number) {
                        (Some(base), Some(dn), Some(cn)) => base <= cn && dn > cn,
                        _ => false,
                    }
                    && d.signature_verifies(signer.spki).is_ok()
            });
            let (from, until) = match delta {
                Some(d) => (d.this_update, d.next_update),
                None => (crl.this_update, crl.next_update),
            };
            this_update = Some(this_update.map_or(from, |t| t.min(from)));
            match until {
                Some(u) => next_update = Some(next_update.map_or(u, |n| n.min(u))),
                None => any_next = false,
            }
            covered |= reasons;
            let entry = match delta.and_then(|d| d.entry(cert)) {
                Some((_, Some(REASON_REMOVE_FROM_CRL))) => None,
                Some(e) => Some(e),
                None => crl.entry(cert),
            };
            if let Some((entry, code)) = entry
                && *code != Some(REASON_REMOVE_FROM_CRL)
            {
                return Ok(CrlLookup { crl_this_update: from, crl_next_update: until, entry: Some(entry.clone()) });
            }
            if covered & ALL_REASONS == ALL_REASONS {
                break;
            }
        }
        match this_update {
            Some(t) if covered & ALL_REASONS == ALL_REASONS => {
                Ok(CrlLookup { crl_this_update: t, crl_next_update: if any_next { next_update } else { None }, entry: None })
            }
            Some(_) => {
                problems.push(format!("the usable CRLs of `{}` cover only some revocation reasons", cert.issuer));
                Err(problems.join("; "))
            }
            None if problems.is_empty() => Err(format!("no complete CRL from issuer `{}` is available", cert.issuer)),
            None => Err(problems.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    //! CRLs built byte by byte (x509-parser reads them, ring signs them with Ed25519), so each
    //! RFC 5280 CRL feature can be exercised alone.
    use super::*;
    use crate::pki::cert::{DistributionPointFacts, KeyKind, dn_key, general_name_key};
    use ring::signature::{Ed25519KeyPair, KeyPair};

    const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
    const CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
    const DELTA: &[u8] = &[0x55, 0x1d, 0x1b];
    const IDP: &[u8] = &[0x55, 0x1d, 0x1c];
    const CERT_ISSUER: &[u8] = &[0x55, 0x1d, 0x1d];
    const REASON: &[u8] = &[0x55, 0x1d, 0x15];
    const UNKNOWN: &[u8] = &[0x2a, 0x03, 0x04];

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }
    fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }
    fn ext(oid: &[u8], critical: bool, value: Vec<u8>) -> Vec<u8> {
        let mut parts = vec![tlv(6, oid)];
        if critical {
            parts.push(tlv(1, &[0xff]));
        }
        parts.push(tlv(4, &value));
        seq(&parts)
    }
    fn cn(value: &str) -> Vec<u8> {
        seq(&[tlv(6, OID_CN), tlv(0x0c, value.as_bytes())])
    }
    /// A Name of one CN RDN per value.
    fn name(cns: &[&str]) -> Vec<u8> {
        seq(&cns.iter().map(|v| tlv(0x31, &cn(v))).collect::<Vec<_>>())
    }
    fn number(n: u8) -> Vec<u8> {
        ext(CRL_NUMBER, false, tlv(2, &[n]))
    }
    fn time(t: &str) -> Vec<u8> {
        tlv(0x17, t.as_bytes())
    }
    /// A revoked entry for `serial` (DER INTEGER contents) with extra entry extensions.
    fn entry(serial: &[u8], exts: Vec<Vec<u8>>) -> Vec<u8> {
        let mut parts = vec![tlv(2, serial), time("220101000000Z")];
        if !exts.is_empty() {
            parts.push(seq(&exts));
        }
        seq(&parts)
    }
    fn reason(code: u8) -> Vec<u8> {
        ext(REASON, false, tlv(0x0a, &[code]))
    }

    struct Ca {
        key: Ed25519KeyPair,
        name: &'static str,
    }
    impl Ca {
        fn new(name: &'static str) -> Ca {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
            Ca { key: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key"), name }
        }
        fn spki(&self) -> Vec<u8> {
            let mut bits = vec![0];
            bits.extend_from_slice(self.key.public_key().as_ref());
            seq(&[seq(&[tlv(6, OID_ED25519)]), tlv(3, &bits)])
        }
        fn crl(&self, this: &str, entries: Vec<Vec<u8>>, exts: Vec<Vec<u8>>) -> LoadedCrl {
            let alg = seq(&[tlv(6, OID_ED25519)]);
            let mut tbs = vec![tlv(2, &[1]), alg.clone(), name(&[self.name]), time(this), time("301231000000Z")];
            if !entries.is_empty() {
                tbs.push(seq(&entries));
            }
            tbs.push(tlv(0xa0, &seq(&exts)));
            let tbs = seq(&tbs);
            let mut sig = vec![0];
            sig.extend_from_slice(self.key.sign(&tbs).as_ref());
            let der = seq(&[tbs, alg, tlv(3, &sig)]);
            LoadedCrl::from_der(der, this).expect("CRL parses")
        }
    }

    fn cert(issuer: &str, serial: &[u8], is_ca: bool) -> CertFacts {
        CertFacts {
            subject: "CN=Leaf".into(),
            subject_raw: name(&["Leaf"]),
            issuer: format!("CN={issuer}"),
            issuer_raw: name(&[issuer]),
            common_name: None,
            person_id: None,
            serial: serial.to_vec(),
            serial_der: serial.to_vec(),
            not_before: DateTime::<Utc>::MIN_UTC,
            not_after: DateTime::<Utc>::MAX_UTC,
            sha256: [0; 32],
            key: KeyKind::Ed25519,
            public_key: vec![],
            spki: vec![],
            signature_algorithm: String::new(),
            key_usage: None,
            policies: vec![],
            qc_compliance: false,
            qc_sscd: false,
            is_ca,
            crl_distribution_points: vec![],
        }
    }

    fn set(crls: Vec<LoadedCrl>) -> CrlSet {
        let mut set = CrlSet::empty();
        for c in crls {
            set.add(c);
        }
        set
    }

    /// Whether the CRLs answer that the certificate is listed (the lookup itself must succeed).
    fn listed(set: &CrlSet, cert: &CertFacts, ca: &Ca) -> bool {
        look(set, cert, ca).unwrap().entry.is_some()
    }

    fn look(set: &CrlSet, cert: &CertFacts, ca: &Ca) -> Result<CrlLookup, String> {
        let spki = ca.spki();
        let name = name(&[ca.name]);
        set.lookup(cert, &[CrlSigner { name: &name, spki: &spki, key_usage: None }])
    }

    #[test]
    fn a_plain_crl_answers_listed_and_unlisted_serials() {
        let ca = Ca::new("CA");
        let s = set(vec![ca.crl("220101000000Z", vec![entry(&[5], vec![])], vec![number(1)])]);
        assert!(listed(&s, &cert("CA", &[5], false), &ca));
        assert!(!listed(&s, &cert("CA", &[6], false), &ca));
    }

    #[test]
    fn serials_keep_their_sign_byte() {
        // 255 is `00 ff`, -1 is `ff`: a CRL listing -1 says nothing about 255.
        let ca = Ca::new("CA");
        let s = set(vec![ca.crl("220101000000Z", vec![entry(&[0xff], vec![])], vec![number(1)])]);
        assert!(!listed(&s, &cert("CA", &[0x00, 0xff], false), &ca));
        assert!(listed(&s, &cert("CA", &[0xff], false), &ca));
    }

    #[test]
    fn an_unknown_critical_crl_extension_makes_the_status_unknown() {
        let ca = Ca::new("CA");
        let s = set(vec![ca.crl("220101000000Z", vec![], vec![number(1), ext(UNKNOWN, true, tlv(5, &[]))])]);
        let err = look(&s, &cert("CA", &[5], false), &ca).unwrap_err();
        assert!(err.contains("critical extension 1.2.3.4"), "{err}");
        // The same extension, not critical, is ignored.
        let s = set(vec![ca.crl("220101000000Z", vec![], vec![number(1), ext(UNKNOWN, false, tlv(5, &[]))])]);
        assert!(look(&s, &cert("CA", &[5], false), &ca).is_ok());
    }

    #[test]
    fn an_unknown_critical_entry_extension_makes_the_status_unknown() {
        let ca = Ca::new("CA");
        let s = set(vec![ca.crl("220101000000Z", vec![entry(&[9], vec![ext(UNKNOWN, true, tlv(5, &[]))])], vec![number(1)])]);
        let err = look(&s, &cert("CA", &[5], false), &ca).unwrap_err();
        assert!(err.contains("an entry has critical extension"), "{err}");
    }

    #[test]
    fn a_delta_crl_is_applied_to_its_base_and_never_used_alone() {
        let ca = Ca::new("CA");
        let base = || {
            ca.crl(
                "220101000000Z",
                vec![entry(&[7], vec![reason(6)])], // 7 on hold
                vec![number(1)],
            )
        };
        let delta = || {
            ca.crl(
                "220201000000Z",
                vec![
                    entry(&[5], vec![reason(1)]), // 5 revoked since the base
                    entry(&[7], vec![reason(8)]), // 7 released (removeFromCRL)
                ],
                vec![number(2), ext(DELTA, true, tlv(2, &[1]))],
            )
        };
        let s = set(vec![base(), delta()]);
        let revoked = look(&s, &cert("CA", &[5], false), &ca).unwrap();
        assert!(revoked.entry.is_some());
        assert_eq!(revoked.crl_this_update.to_rfc3339(), "2022-02-01T00:00:00+00:00");
        assert!(!listed(&s, &cert("CA", &[7], false), &ca));
        // Without the delta, 7 is on hold.
        assert!(look(&set(vec![base()]), &cert("CA", &[7], false), &ca).unwrap().entry.is_some());
        // A delta without its base answers nothing.
        assert!(look(&set(vec![delta()]), &cert("CA", &[6], false), &ca).is_err());
    }

    fn idp(fields: Vec<Vec<u8>>) -> Vec<u8> {
        ext(IDP, true, seq(&fields))
    }

    #[test]
    fn only_contains_flags_limit_whom_a_crl_speaks_for() {
        let ca = Ca::new("CA");
        let only_ca = set(vec![ca.crl("220101000000Z", vec![], vec![number(1), idp(vec![tlv(0x82, &[0xff])])])]);
        let err = look(&only_ca, &cert("CA", &[5], false), &ca).unwrap_err();
        assert!(err.contains("only CA certificates"), "{err}");
        assert!(look(&only_ca, &cert("CA", &[5], true), &ca).is_ok());
        let only_user = set(vec![ca.crl("220101000000Z", vec![], vec![number(1), idp(vec![tlv(0x81, &[0xff])])])]);
        assert!(look(&only_user, &cert("CA", &[5], true), &ca).is_err());
        assert!(look(&only_user, &cert("CA", &[5], false), &ca).is_ok());
        let only_attr = set(vec![ca.crl("220101000000Z", vec![], vec![number(1), idp(vec![tlv(0x85, &[0xff])])])]);
        assert!(look(&only_attr, &cert("CA", &[5], false), &ca).is_err());
    }

    #[test]
    fn crls_partitioned_by_reason_must_cover_every_reason_together() {
        let ca = Ca::new("CA");
        let key_compromise = || ca.crl("220101000000Z", vec![], vec![number(1), idp(vec![tlv(0x83, &[0x06, 0x40])])]);
        let the_rest = ca.crl("220101000000Z", vec![entry(&[5], vec![reason(4)])], vec![number(2), idp(vec![tlv(0x83, &[0x07, 0x3f, 0x80])])]);
        let err = look(&set(vec![key_compromise()]), &cert("CA", &[6], false), &ca).unwrap_err();
        assert!(err.contains("only some revocation reasons"), "{err}");
        let both = set(vec![key_compromise(), the_rest]);
        assert!(!listed(&both, &cert("CA", &[6], false), &ca));
        assert!(listed(&both, &cert("CA", &[5], false), &ca));
    }

    #[test]
    fn a_crl_for_one_distribution_point_answers_only_certificates_naming_it() {
        let ca = Ca::new("CA");
        // IDP: nameRelativeToCRLIssuer CN=dp1 (x509-parser alone reads it as absent).
        let relative = tlv(0xa0, &tlv(0xa1, &cn("dp1")));
        let s = set(vec![ca.crl("220101000000Z", vec![], vec![number(1), idp(vec![relative])])]);
        let mut c = cert("CA", &[5], false);
        let err = look(&s, &c, &ca).unwrap_err();
        assert!(err.contains("distribution point"), "{err}");
        // A certificate whose distribution point is the full name CN=CA, CN=dp1 matches.
        let full = name(&["CA", "dp1"]);
        let (_, dn) = X509Name::from_der(&full).unwrap();
        let key = general_name_key(&GeneralName::DirectoryName(dn.clone()));
        assert_eq!(key, format!("dn:{}", dn_key(dn.iter())));
        c.crl_distribution_points = vec![DistributionPointFacts { names: Some(vec![key]), reasons: ALL_REASONS, crl_issuer: None }];
        assert!(look(&s, &c, &ca).is_ok());
        // One naming another point does not.
        c.crl_distribution_points[0].names = Some(vec!["uri:http://other/".into()]);
        assert!(look(&s, &c, &ca).is_err());
    }

    #[test]
    fn entries_after_a_certificate_issuer_belong_to_that_issuer() {
        let ca = Ca::new("CA");
        let other = tlv(0x30, &tlv(0xa4, &name(&["Other"])));
        let s = set(vec![ca.crl(
            "220101000000Z",
            vec![entry(&[5], vec![]), entry(&[6], vec![ext(CERT_ISSUER, true, other.clone())])],
            vec![number(1), idp(vec![tlv(0x84, &[0xff])])],
        )]);
        assert!(listed(&s, &cert("CA", &[5], false), &ca));
        assert!(!listed(&s, &cert("CA", &[6], false), &ca));
        // In a CRL that is not indirect, a certificateIssuer entry is a defect.
        let s = set(vec![ca.crl("220101000000Z", vec![entry(&[6], vec![ext(CERT_ISSUER, true, other)])], vec![number(1)])]);
        assert!(look(&s, &cert("CA", &[5], false), &ca).unwrap_err().contains("not indirect"));
    }

    #[test]
    fn a_crl_may_be_signed_by_another_key_of_the_issuer_with_crl_sign() {
        let old = Ca::new("CA");
        let new = Ca::new("CA");
        let s = set(vec![new.crl("220101000000Z", vec![entry(&[5], vec![])], vec![number(1)])]);
        let (old_spki, new_spki) = (old.spki(), new.spki());
        let no_crl_sign = Some(KeyUsageBits { key_cert_sign: true, ..KeyUsageBits::default() });
        let c = cert("CA", &[5], false);
        // The issuer's own key did not sign it: unknown.
        assert!(look(&s, &c, &old).is_err());
        let signers =
            |ku| [CrlSigner { name: &c.issuer_raw, spki: &old_spki, key_usage: None }, CrlSigner { name: &c.issuer_raw, spki: &new_spki, key_usage: ku }];
        assert!(s.lookup(&c, &signers(None)).unwrap().entry.is_some());
        // A key without cRLSign may not sign CRLs.
        assert!(s.lookup(&c, &signers(no_crl_sign)).is_err());
    }

    #[test]
    fn a_delegated_crl_issuer_answers_only_when_the_certificate_names_it_and_the_crl_is_indirect() {
        let ca = Ca::new("CA");
        let delegate = Ca::new("Delegate");
        let issuer_ca = tlv(0x30, &tlv(0xa4, &name(&["CA"])));
        let indirect = delegate.crl(
            "220101000000Z",
            vec![entry(&[9], vec![]), entry(&[5], vec![ext(CERT_ISSUER, true, issuer_ca.clone())])],
            vec![number(1), idp(vec![tlv(0x84, &[0xff])])],
        );
        let s = set(vec![indirect]);
        let delegate_name = name(&["Delegate"]);
        let (spki, ca_spki, ca_name) = (delegate.spki(), ca.spki(), name(&["CA"]));
        let signers = [CrlSigner { name: &ca_name, spki: &ca_spki, key_usage: None }, CrlSigner { name: &delegate_name, spki: &spki, key_usage: None }];
        let mut revoked = cert("CA", &[5], false);
        // Without a distribution point naming the delegate, its CRL says nothing.
        let err = s.lookup(&revoked, &signers).unwrap_err();
        assert!(err.contains("no CRL from issuer `CN=CA`"), "{err}");
        revoked.crl_distribution_points = vec![DistributionPointFacts { names: None, reasons: ALL_REASONS, crl_issuer: Some(vec![delegate_name.clone()]) }];
        assert!(s.lookup(&revoked, &signers).unwrap().entry.is_some());
        // Serial 9 is the delegate's own certificate, not the CA's: not listed for the CA.
        let mut other = revoked.clone();
        other.serial_der = vec![9];
        assert!(s.lookup(&other, &signers).unwrap().entry.is_none());
        // Signed by a key that is not the delegate's: unknown.
        let wrong = [CrlSigner { name: &delegate_name, spki: &ca_spki, key_usage: None }];
        assert!(s.lookup(&revoked, &wrong).is_err());
        // The delegate's CRL must say it is indirect.
        let plain = set(vec![delegate.crl("220101000000Z", vec![entry(&[5], vec![])], vec![number(1)])]);
        let err = plain.lookup(&revoked, &signers).unwrap_err();
        assert!(err.contains("not an indirect CRL"), "{err}");
    }
}
