//! What carimbo reads out of an X.509 certificate, beyond what the path validator checks.
//!
//! rustls-webpki decides whether a chain is valid; it deliberately ignores key-usage bits,
//! certificate policies and QC statements, which a document-signature verifier needs
//! (RFC 5280 §4.2.1.3, §4.2.1.4; ETSI EN 319 412-5 for QC statements). `CertFacts` is the
//! x509-parser reading of those fields, done once per certificate and kept with the chain.

use chrono::{DateTime, Utc};
use ring::digest;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::*;

use super::PkiError;

/// ETSI EN 319 412-5 id-etsi-qcs-QcCompliance: "this is a qualified certificate".
pub const OID_QC_COMPLIANCE: &str = "0.4.0.1862.1.1";
/// RFC 3739 id-pe-qcStatements.
pub const OID_QC_STATEMENTS: &str = "1.3.6.1.5.5.7.1.3";
/// ETSI EN 319 412-5 id-etsi-qcs-QcSSCD: "the private key is on a qualified signature-creation
/// device" (a key generated in and never leaving an HSM; a key file never gets it).
pub const OID_QC_SSCD: &str = "0.4.0.1862.1.4";

/// ETSI EN 319 411-2 QCP-n-qscd: qualified certificate for a natural person, key on a QSCD.
pub const OID_POLICY_QCP_N_QSCD: &str = "0.4.0.194112.1.2";

/// Largest certificate carimbo will parse. Real signing certificates are 1–3 KiB; the bound
/// keeps a hostile `x5c` from making the verifier parse megabytes.
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;

/// The public key of a certificate, as far as the crypto policy cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyKind {
    EcP256,
    EcP384,
    Rsa { bits: usize },
    Ed25519,
    Other(String),
}

impl KeyKind {
    pub fn describe(&self) -> String {
        match self {
            KeyKind::EcP256 => "ECDSA P-256".into(),
            KeyKind::EcP384 => "ECDSA P-384".into(),
            KeyKind::Rsa { bits } => format!("RSA {bits}"),
            KeyKind::Ed25519 => "Ed25519".into(),
            KeyKind::Other(oid) => format!("unsupported key ({oid})"),
        }
    }
}

/// The key-usage bits that matter for signing (RFC 5280 §4.2.1.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyUsageBits {
    pub digital_signature: bool,
    pub non_repudiation: bool,
    pub key_cert_sign: bool,
    pub crl_sign: bool,
}

/// The fields of one certificate that carimbo's own checks need.
#[derive(Clone, Debug)]
pub struct CertFacts {
    pub subject: String,
    pub subject_raw: Vec<u8>,
    pub issuer: String,
    pub issuer_raw: Vec<u8>,
    pub common_name: Option<String>,
    /// The subject's serialNumber attribute (2.5.4.5): the person id in the demo PKI.
    pub person_id: Option<String>,
    /// Serial number, big-endian bytes without leading zeros.
    pub serial: Vec<u8>,
    /// The serial's DER INTEGER contents as encoded (sign byte kept): what CRL entries are
    /// matched on, so 255 (`00 ff`) and -1 (`ff`) stay apart.
    pub serial_der: Vec<u8>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub sha256: [u8; 32],
    pub key: KeyKind,
    /// The subjectPublicKey bit string contents: what ring's `UnparsedPublicKey` takes.
    pub public_key: Vec<u8>,
    /// The DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// OID of the algorithm the issuer signed this certificate with.
    pub signature_algorithm: String,
    /// `None` when the certificate has no key-usage extension.
    pub key_usage: Option<KeyUsageBits>,
    pub policies: Vec<String>,
    pub qc_compliance: bool,
    /// The QcSSCD statement: the certification entity says the key is on a qualified device.
    pub qc_sscd: bool,
    pub is_ca: bool,
    /// The CRL distribution points (RFC 5280 §4.2.1.13), to match a CRL's scope.
    pub crl_distribution_points: Vec<DistributionPointFacts>,
}

/// Every revocation reason of ReasonFlags (RFC 5280 §4.2.1.13), bits 1–8 as x509-parser
/// numbers them (bit 0 is `unused`).
pub const ALL_REASONS: u16 = 0x1fe;

/// One distribution point of a certificate, its names resolved to comparable keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistributionPointFacts {
    /// Full names of the point (`None` when only a cRLIssuer is given).
    pub names: Option<Vec<String>>,
    /// Reasons this point's CRLs cover (`ALL_REASONS` when the field is absent).
    pub reasons: u16,
    /// The directory names of the point's cRLIssuer (DER, compared byte for byte with a
    /// CRL's issuer): the CRL issuers delegated to answer for this point (RFC 5280
    /// §4.2.1.13). `None`: the certificate's issuer answers itself; `Some` with no
    /// directory name: no CRL carimbo can identify answers for the point.
    pub crl_issuer: Option<Vec<Vec<u8>>>,
}

/// A comparable key for a distinguished name given as relative names: attribute types and
/// the exact encoded values, so only identical names match.
pub(crate) fn dn_key<'a, 'b: 'a>(rdns: impl Iterator<Item = &'a RelativeDistinguishedName<'b>>) -> String {
    rdns.map(|rdn| {
        rdn.iter().map(|a| format!("{}={:?}:{}", a.attr_type().to_id_string(), a.attr_value().tag(), hex(a.attr_value().data))).collect::<Vec<_>>().join("+")
    })
    .collect::<Vec<_>>()
    .join(",")
}

/// A comparable key for one general name.
pub(crate) fn general_name_key(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DirectoryName(dn) => format!("dn:{}", dn_key(dn.iter())),
        GeneralName::URI(u) => format!("uri:{u}"),
        GeneralName::DNSName(d) => format!("dns:{d}"),
        GeneralName::RFC822Name(m) => format!("email:{m}"),
        other => format!("{other:?}"),
    }
}

/// One DER TLV of `input` (tag byte, contents, rest); `None` when malformed.
pub(crate) fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The nameRelativeToCRLIssuer of a DistributionPoint / IssuingDistributionPoint SEQUENCE's
/// contents, as a comparable key. x509-parser 0.18 reads this choice as absent, which would
/// widen a CRL's scope to every certificate of its issuer, so carimbo reads it itself.
/// `Err` when the field is there but cannot be read.
pub(crate) fn relative_dp_name(seq_contents: &[u8]) -> Result<Option<String>, String> {
    let Some((0xa0, dpn, _)) = der_tlv(seq_contents) else {
        return Ok(None);
    };
    match der_tlv(dpn) {
        Some((0xa1, rdn, _)) => {
            let mut set = vec![0x31];
            match rdn.len() {
                n if n < 0x80 => set.push(n as u8),
                n if n < 0x100 => set.extend([0x81, n as u8]),
                n => set.extend([0x82, (n >> 8) as u8, n as u8]),
            }
            set.extend_from_slice(rdn);
            let (_, rdn) = RelativeDistinguishedName::from_der(&set).map_err(|e| format!("nameRelativeToCRLIssuer is malformed: {e}"))?;
            Ok(Some(dn_key(std::iter::once(&rdn))))
        }
        Some(_) => Ok(None),
        None => Err("distribution point name is malformed".into()),
    }
}

/// What carimbo reads itself of one DistributionPoint: its relative name and its cRLIssuer
/// directory names (DER of each Name). x509-parser 0.18 reads neither when the point's name
/// is relative, so carimbo walks the SEQUENCE itself (the fields are context-tagged
/// [0] distributionPoint, [1] reasons, [2] cRLIssuer, RFC 5280 §4.2.1.13).
#[derive(Clone, Debug, Default)]
struct DpFields {
    relative: Option<String>,
    crl_issuer: Option<Vec<Vec<u8>>>,
}

/// The carimbo-read fields of each DistributionPoint of a CRLDistributionPoints value, in order.
fn relative_dp_names(value: &[u8]) -> Result<Vec<DpFields>, String> {
    let malformed = || "CRL distribution points are malformed".to_string();
    let Some((0x30, mut points, _)) = der_tlv(value) else {
        return Err(malformed());
    };
    let mut out = Vec::new();
    while !points.is_empty() {
        let Some((0x30, dp, rest)) = der_tlv(points) else {
            return Err(malformed());
        };
        let mut fields = DpFields { relative: relative_dp_name(dp)?, crl_issuer: None };
        let mut inner = dp;
        while !inner.is_empty() {
            let Some((tag, content, next)) = der_tlv(inner) else {
                return Err(malformed());
            };
            if tag == 0xa2 {
                fields.crl_issuer = Some(directory_names(content).ok_or_else(malformed)?);
            }
            inner = next;
        }
        out.push(fields);
        points = rest;
    }
    Ok(out)
}

/// The directoryName entries ([4] EXPLICIT Name) of GeneralNames contents, each as the DER
/// of its Name; other kinds of name are skipped.
fn directory_names(mut names: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !names.is_empty() {
        let (tag, content, rest) = der_tlv(names)?;
        if tag == 0xa4 {
            let (0x30, _, after) = der_tlv(content)? else {
                return None;
            };
            out.push(content[..content.len() - after.len()].to_vec());
        }
        names = rest;
    }
    Some(out)
}

/// The names of a distribution point: x509-parser's full name, or the relative name read by
/// `relative_dp_name` resolved against `issuer`.
pub(crate) fn distribution_point_names(dp: Option<&DistributionPointName<'_>>, relative: Option<&str>, issuer: &X509Name<'_>) -> Option<Vec<String>> {
    if let Some(rdn) = relative {
        let base = dn_key(issuer.iter());
        return Some(vec![if base.is_empty() { format!("dn:{rdn}") } else { format!("dn:{base},{rdn}") }]);
    }
    match dp? {
        DistributionPointName::FullName(names) => Some(names.iter().map(general_name_key).collect()),
        DistributionPointName::NameRelativeToCRLIssuer(rdn) => Some(vec![format!("dn:{}", dn_key(issuer.iter().chain(std::iter::once(rdn))))]),
    }
}

impl CertFacts {
    /// Read a DER certificate. The error is a sentence for the report's detail.
    pub fn from_der(der: &[u8]) -> Result<CertFacts, String> {
        if der.len() > MAX_CERTIFICATE_BYTES {
            return Err(format!("certificate of {} bytes exceeds the {MAX_CERTIFICATE_BYTES}-byte limit", der.len()));
        }
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| format!("certificate is not valid DER X.509: {e}"))?;
        if !rest.is_empty() {
            return Err("certificate has trailing bytes after its DER encoding".into());
        }
        let tbs = &cert.tbs_certificate;
        let spki = tbs.public_key();
        let key = key_kind(spki);
        let key_usage = match cert.key_usage() {
            Ok(Some(ku)) => Some(KeyUsageBits {
                digital_signature: ku.value.digital_signature(),
                non_repudiation: ku.value.non_repudiation(),
                key_cert_sign: ku.value.key_cert_sign(),
                crl_sign: ku.value.crl_sign(),
            }),
            Ok(None) => None,
            Err(e) => return Err(format!("key usage extension is invalid: {e}")),
        };
        let mut policies = Vec::new();
        let mut qc_compliance = false;
        let mut qc_sscd = false;
        let mut crl_distribution_points = Vec::new();
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(points) => {
                    let relative = relative_dp_names(ext.value)?;
                    for (i, dp) in points.iter().enumerate() {
                        // A relative name extends the cRLIssuer's name when the point has
                        // one, the certificate issuer's otherwise (RFC 5280 §4.2.1.13).
                        let own = relative.get(i).cloned().unwrap_or_default();
                        let delegated_dn = own.crl_issuer.iter().flatten().find_map(|raw| X509Name::from_der(raw).ok().map(|(_, dn)| dn));
                        crl_distribution_points.push(DistributionPointFacts {
                            names: distribution_point_names(
                                dp.distribution_point.as_ref(),
                                own.relative.as_deref(),
                                delegated_dn.as_ref().unwrap_or(tbs.issuer()),
                            ),
                            reasons: dp.reasons.as_ref().map_or(ALL_REASONS, |r| r.flags),
                            crl_issuer: own.crl_issuer,
                        });
                    }
                }
                ParsedExtension::CertificatePolicies(list) => {
                    policies.extend(list.iter().map(|p| p.policy_id.to_id_string()));
                }
                _ if ext.oid.to_id_string() == OID_QC_STATEMENTS => {
                    let ids = qc_statements(ext.value)?;
                    qc_compliance = ids.iter().any(|id| id == OID_QC_COMPLIANCE);
                    qc_sscd = ids.iter().any(|id| id == OID_QC_SSCD);
                }
                _ => {}
            }
        }
        let serial_number_oid = x509_parser::oid_registry::OID_X509_SERIALNUMBER;
        Ok(CertFacts {
            subject: tbs.subject().to_string(),
            subject_raw: tbs.subject().as_raw().to_vec(),
            issuer: tbs.issuer().to_string(),
            issuer_raw: tbs.issuer().as_raw().to_vec(),
            common_name: tbs.subject().iter_common_name().next().and_then(|a| a.as_str().ok()).map(str::to_string),
            person_id: tbs.subject().iter_by_oid(&serial_number_oid).next().and_then(|a| a.as_str().ok()).map(str::to_string),
            serial: trim_serial(tbs.raw_serial()),
            serial_der: tbs.raw_serial().to_vec(),
            not_before: asn1_time(tbs.validity().not_before),
            not_after: asn1_time(tbs.validity().not_after),
            sha256: sha256(der),
            key,
            public_key: spki.subject_public_key.data.to_vec(),
            spki: spki.raw.to_vec(),
            signature_algorithm: cert.signature_algorithm.algorithm.to_id_string(),
            key_usage,
            policies,
            qc_compliance,
            qc_sscd,
            is_ca: cert.is_ca(),
            crl_distribution_points,
        })
    }

    pub fn serial_hex(&self) -> String {
        hex(&self.serial)
    }

    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

/// The statement ids of a QCStatements extension (RFC 3739 §3.2.6).
fn qc_statements(value: &[u8]) -> Result<Vec<String>, String> {
    use x509_parser::der_parser::ber::BerObjectContent;
    let (_, seq) = x509_parser::der_parser::parse_der(value).map_err(|e| format!("QC statements extension is invalid: {e}"))?;
    let mut ids = Vec::new();
    if let BerObjectContent::Sequence(items) = &seq.content {
        for item in items {
            if let BerObjectContent::Sequence(parts) = &item.content
                && let Some(Ok(oid)) = parts.first().map(|p| p.as_oid())
            {
                ids.push(oid.to_id_string());
            }
        }
    }
    Ok(ids)
}

fn key_kind(spki: &SubjectPublicKeyInfo<'_>) -> KeyKind {
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        "1.2.840.10045.2.1" => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => KeyKind::EcP256,
                Some("1.3.132.0.34") => KeyKind::EcP384,
                Some(other) => KeyKind::Other(format!("EC curve {other}")),
                None => KeyKind::Other("EC without curve".into()),
            }
        }
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => KeyKind::Rsa { bits: modulus_bits(rsa.modulus) },
            _ => KeyKind::Other("malformed RSA key".into()),
        },
        "1.3.101.112" => KeyKind::Ed25519,
        other => KeyKind::Other(other.to_string()),
    }
}

/// The exact bit length of a big-endian modulus.
fn modulus_bits(modulus: &[u8]) -> usize {
    let significant: &[u8] = match modulus.iter().position(|b| *b != 0) {
        Some(i) => &modulus[i..],
        None => return 0,
    };
    significant.len() * 8 - significant[0].leading_zeros() as usize
}

/// Certificate signature algorithms refused by the crypto policy (SHA-1, MD5, MD2), with
/// the reason. ETSI TS 119 312 withdrew SHA-1 for signatures; MD5 long before.
pub fn refused_signature_algorithm(oid: &str) -> Option<&'static str> {
    match oid {
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => Some("sha1WithRSAEncryption (SHA-1)"),
        "1.2.840.10045.4.1" => Some("ecdsa-with-SHA1 (SHA-1)"),
        "1.2.840.10040.4.3" => Some("dsa-with-SHA1 (SHA-1)"),
        "1.2.840.113549.1.1.4" => Some("md5WithRSAEncryption (MD5)"),
        "1.2.840.113549.1.1.2" => Some("md2WithRSAEncryption (MD2)"),
        _ => None,
    }
}

/// Smallest RSA modulus carimbo accepts, in bits (ETSI TS 119 312, SOG-IS).
pub const MIN_RSA_BITS: usize = 2048;

/// Whether a key passes the crypto policy; the error says why not.
pub fn check_key_strength(key: &KeyKind) -> Result<(), String> {
    match key {
        KeyKind::Rsa { bits } if *bits < MIN_RSA_BITS => Err(format!("RSA key of {bits} bits is below the {MIN_RSA_BITS}-bit minimum")),
        // A modulus whose length is not a whole number of bytes is a malformed key.
        KeyKind::Rsa { bits } if bits % 8 != 0 => Err(format!("RSA key of {bits} bits is not a whole number of bytes")),
        KeyKind::Other(what) => Err(format!("key type {what} is not allowed")),
        _ => Ok(()),
    }
}

pub(crate) fn trim_serial(raw: &[u8]) -> Vec<u8> {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    raw[start..].to_vec()
}

pub(crate) fn asn1_time(t: ASN1Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Read every certificate of PEM text; `origin` names it in errors.
pub fn parse_pem_certificates(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::BadCertificateFile { path: origin.to_string(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(PkiError::BadCertificateFile { path: origin.to_string(), reason: "no `BEGIN CERTIFICATE` block found".into() });
    }
    Ok(certs)
}
