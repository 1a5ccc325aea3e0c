//! The demo PKI: a root, an accredited CA issuing qualified certificates, a non-accredited CA
//! issuing advanced-level ones, one certificate per demo person, a service seal, deliberately
//! bad certificates, CRLs and the trust list — all returned as files (`DemoFile`) for the edge
//! (`cli::pki_demo`) to write: nothing here touches the disk.
//!
//! It exists so that every test, demo and interoperability check uses real X.509 material
//! made the way a certification entity would make it (rcgen for certificates and CRLs, the
//! `rsa` crate for RSA keys, which ring cannot generate). Regenerate with
//! `carimbo pki demo --out seeds/pki` (the trust list goes to `seeds/trust` beside it). Keys
//! are new at each run; names, serials, dates and structure are fixed, and every date is
//! chosen so the good material stays good until 2050 and the bad material stays bad.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, PublicKeyData, RevocationReason, RevokedCertParams, SerialNumber, SignatureAlgorithm, date_time_ymd,
};
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde::{Deserialize, Serialize};

use super::PkiError;
use super::cert::{CertFacts, OID_POLICY_QCP_N_QSCD, OID_QC_COMPLIANCE, OID_QC_SSCD, OID_QC_STATEMENTS};
use super::history::ServiceType;
use super::trust::{AccreditationPeriod, EntityEntry, LocalizedName, TRUST_LIST_FILE, TrustListFile};
use chrono::{DateTime, Utc};
use rustls_pki_types::CertificateDer;

/// The key type of a demo person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DemoKey {
    P256,
    Rsa2048,
    Ed25519,
}

/// Which demo CA issues a person's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DemoIssuer {
    #[serde(rename = "qualified-ca")]
    QualifiedCa,
    #[serde(rename = "advanced-ca")]
    AdvancedCa,
}

/// One entry of `seeds/pki/people.json`. The same ids are the staff directory's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DemoPerson {
    pub id: String,
    pub name: LocalizedName,
    pub department: Option<String>,
    /// staff / supervisor / head / hr / authority / doctor / candidate.
    pub role: String,
    pub key: DemoKey,
    pub issuer: DemoIssuer,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub non_resident: bool,
}

/// The deliberately bad certificates, by file stem under `bad/`.
pub const BAD_CERTIFICATES: &[&str] =
    &["expired", "not-yet-valid", "revoked", "no-signing-key-usage", "unknown-ca", "broken-chain", "weak-rsa-1024", "sha1-signed"];

/// The serial number of `bad/revoked.pem`, listed in the qualified CA's CRL.
pub const REVOKED_SERIAL: u64 = 0x0bad_0003;
/// Its revocation date: 2025-06-01T00:00:00Z.
pub const REVOKED_ON: (i32, u8, u8) = (2025, 6, 1);

/// What was made.
#[derive(Debug, Default)]
pub struct DemoSummary {
    pub people: usize,
    pub bad: usize,
    pub crls: usize,
}

/// The folder a generated file belongs in: the PKI folder (`seeds/pki`) or the trust list's
/// (`seeds/trust`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoFolder {
    Pki,
    Trust,
}

/// One generated file: where it goes (a path relative to its folder) and its bytes.
#[derive(Clone, Debug)]
pub struct DemoFile {
    pub folder: DemoFolder,
    pub path: String,
    pub contents: Vec<u8>,
}

/// The whole demo PKI as files, and what it holds.
#[derive(Debug, Default)]
pub struct DemoPki {
    pub files: Vec<DemoFile>,
    pub summary: DemoSummary,
}

impl DemoPki {
    fn pki(&mut self, path: impl Into<String>, contents: impl AsRef<[u8]>) {
        self.files.push(DemoFile { folder: DemoFolder::Pki, path: path.into(), contents: contents.as_ref().to_vec() });
    }

    fn trust(&mut self, path: impl Into<String>, contents: impl AsRef<[u8]>) {
        self.files.push(DemoFile { folder: DemoFolder::Trust, path: path.into(), contents: contents.as_ref().to_vec() });
    }

    /// A bad certificate (`bad/NAME.pem`: the certificate then its chain) and its key.
    fn bad(&mut self, name: &str, cert_pem: String, chain_tail: String, key_pem: &str) {
        self.pki(format!("bad/{name}.pem"), format!("{cert_pem}{chain_tail}"));
        self.pki(format!("bad/{name}.key.pem"), key_pem);
        self.summary.bad += 1;
    }
}

/// The demo people (the bytes of `people.json`; `origin` names it in errors).
pub fn parse_people(bytes: &[u8], origin: &str) -> Result<Vec<DemoPerson>, PkiError> {
    let people: Vec<DemoPerson> =
        crate::json_strict::from_slice(bytes).map_err(|e| PkiError::BadPeopleFile { path: origin.to_string(), reason: e.to_string() })?;
    let mut seen = std::collections::HashSet::new();
    for p in &people {
        if !seen.insert(p.id.as_str()) {
            return Err(PkiError::BadPeopleFile { path: origin.to_string(), reason: format!("person id `{}` appears twice", p.id) });
        }
    }
    Ok(people)
}

fn gen_err(e: impl std::fmt::Display) -> PkiError {
    PkiError::DemoGeneration { reason: e.to_string() }
}

/// A generated key with its PKCS#8 PEM.
struct DemoKeyPair {
    key: KeyPair,
    pem: String,
}

fn ec_key(alg: &'static SignatureAlgorithm) -> Result<DemoKeyPair, PkiError> {
    let key = KeyPair::generate_for(alg).map_err(gen_err)?;
    let pem = key.serialize_pem();
    Ok(DemoKeyPair { key, pem })
}

fn rsa_pkcs8(bits: usize) -> Result<(Vec<u8>, String, Vec<u8>), PkiError> {
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).map_err(gen_err)?;
    rsa_encode(&private)
}

fn rsa_encode(private: &rsa::RsaPrivateKey) -> Result<(Vec<u8>, String, Vec<u8>), PkiError> {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let der = private.to_pkcs8_der().map_err(gen_err)?;
    let pem = private.to_pkcs8_pem(LineEnding::LF).map_err(gen_err)?;
    let public = private.to_public_key().to_pkcs1_der().map_err(gen_err)?.as_bytes().to_vec();
    Ok((der.as_bytes().to_vec(), pem.to_string(), public))
}

/// Re-sign an RSA-SHA256 certificate as sha1WithRSAEncryption with the issuer's RSA key.
/// rcgen (rightly) cannot make SHA-1 certificates; the demo needs one to show that carimbo
/// refuses them. The two algorithm OIDs have the same length and an RSA signature keeps its
/// length, so the DER structure is unchanged: swap the OIDs, re-sign the TBS bytes.
fn resign_with_sha1(der: &[u8], issuer: &rsa::RsaPrivateKey) -> Result<Vec<u8>, PkiError> {
    const SHA256_RSA: [u8; 11] = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    const SHA1_RSA: [u8; 11] = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
    // DigestInfo prefix for SHA-1 (RFC 8017 §9.2 note 1).
    const SHA1_DIGEST_INFO: [u8; 15] = [0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14];
    let mut out = der.to_vec();
    let mut i = 0;
    while i + SHA256_RSA.len() <= out.len() {
        if out[i..i + SHA256_RSA.len()] == SHA256_RSA {
            out[i..i + SHA1_RSA.len()].copy_from_slice(&SHA1_RSA);
        }
        i += 1;
    }
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    let header = |at: usize| -> Result<(usize, usize), PkiError> {
        let first = *out.get(at + 1).ok_or_else(|| gen_err("truncated DER"))?;
        if first < 0x80 {
            return Ok((2, first as usize));
        }
        let n = (first & 0x7f) as usize;
        let len = out.get(at + 2..at + 2 + n).ok_or_else(|| gen_err("truncated DER"))?.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        Ok((2 + n, len))
    };
    let (outer_header, _) = header(0)?;
    let (tbs_header, tbs_len) = header(outer_header)?;
    let tbs = out[outer_header..outer_header + tbs_header + tbs_len].to_vec();
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &tbs);
    let mut info = SHA1_DIGEST_INFO.to_vec();
    info.extend_from_slice(digest.as_ref());
    let signature = issuer.sign(rsa::Pkcs1v15Sign::new_unprefixed(), &info).map_err(gen_err)?;
    let end = out.len();
    out[end - signature.len()..].copy_from_slice(&signature);
    Ok(out)
}

fn pem_certificate(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

fn rsa_key() -> Result<DemoKeyPair, PkiError> {
    let (der, pem, _) = rsa_pkcs8(2048)?;
    let key = KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(der), &rcgen::PKCS_RSA_SHA256).map_err(gen_err)?;
    Ok(DemoKeyPair { key, pem })
}

/// An Ed25519 key written as PKCS#8 v1 (RFC 8410 §7: the 32-byte seed only). ring makes v2
/// documents whose public-key field other toolkits (OpenSSL 1.x, Python `cryptography`)
/// refuse, and a demo key must load everywhere; ring reads v1 too.
fn ed25519_key() -> Result<DemoKeyPair, PkiError> {
    use base64::Engine;
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(gen_err)?;
    let v2 = key.serialized_der();
    let marker = [0x04, 0x22, 0x04, 0x20];
    let start = v2.windows(4).position(|w| w == marker).ok_or_else(|| gen_err("unexpected Ed25519 PKCS#8 layout"))? + 4;
    let seed = v2.get(start..start + 32).ok_or_else(|| gen_err("truncated Ed25519 PKCS#8"))?;
    let mut v1 = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    v1.extend_from_slice(seed);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&v1);
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
    Ok(DemoKeyPair { key, pem })
}

fn person_key_algorithm(kind: DemoKey) -> &'static SignatureAlgorithm {
    match kind {
        DemoKey::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        DemoKey::Ed25519 => &rcgen::PKCS_ED25519,
        DemoKey::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
    }
}

fn person_key(kind: DemoKey) -> Result<DemoKeyPair, PkiError> {
    match kind {
        DemoKey::P256 => ec_key(&rcgen::PKCS_ECDSA_P256_SHA256),
        DemoKey::Ed25519 => ed25519_key(),
        DemoKey::Rsa2048 => rsa_key(),
    }
}

/// A public key only (for the RSA-1024 certificate, whose key ring will not load).
struct RawPublicKey {
    der: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl PublicKeyData for RawPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.der
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

// Minimal DER writers for the two extensions rcgen has no builder for.
fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

fn der_oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').filter_map(|a| a.parse().ok()).collect();
    let mut body = Vec::new();
    let push_base128 = |mut v: u64, body: &mut Vec<u8>| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        body.extend(tmp);
    };
    push_base128(arcs[0] * 40 + arcs[1], &mut body);
    for arc in &arcs[2..] {
        push_base128(*arc, &mut body);
    }
    der_tlv(0x06, &body)
}

fn oid_arcs(dotted: &str) -> Vec<u64> {
    dotted.split('.').filter_map(|a| a.parse().ok()).collect()
}

/// certificatePolicies with one policy (RFC 5280 §4.2.1.4).
fn policies_extension(policy: &str) -> CustomExtension {
    let info = der_tlv(0x30, &der_oid(policy));
    CustomExtension::from_oid_content(&oid_arcs("2.5.29.32"), der_tlv(0x30, &info))
}

/// qcStatements with QcCompliance (ETSI EN 319 412-5 §4.2.1) and, only for a key generated on a
/// device (`on_device`), QcSSCD (§4.2.2): a key file can be copied, so the CA never says it is
/// on a qualified signature-creation device.
fn qc_statements_extension(on_device: bool) -> CustomExtension {
    let mut statements = der_tlv(0x30, &der_oid(OID_QC_COMPLIANCE));
    if on_device {
        statements.extend(der_tlv(0x30, &der_oid(OID_QC_SSCD)));
    }
    CustomExtension::from_oid_content(&oid_arcs(OID_QC_STATEMENTS), der_tlv(0x30, &statements))
}

/// The holder of a certificate for a key on a device (`carimbo hsm issue`).
pub struct DeviceHolder<'a> {
    pub common_name: String,
    pub department: Option<&'a str>,
    pub person_id: &'a str,
}

/// A raw P-256 public key (the uncompressed point) as rcgen's `PublicKeyData`.
struct RawP256<'a>(&'a [u8]);

impl PublicKeyData for RawP256<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// Issues from the demo qualified CA (its key `ca_key_pem`, its certificate `ca_cert_pem`) a
/// qualified certificate with QcCompliance *and* QcSSCD for a P-256 key generated inside an
/// HSM (`point`, uncompressed), valid `from`..`to`. Returns the leaf then the CA, PEM.
pub fn issue_device_certificate(
    point: &[u8],
    holder: &DeviceHolder<'_>,
    serial: u64,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    ca_key_pem: &str,
    ca_cert_pem: &str,
) -> Result<String, PkiError> {
    issue_qualified_certificate(point, holder, serial, (from, to), true, ca_key_pem, ca_cert_pem)
}

/// As `issue_device_certificate`, saying QcSSCD only when `on_device`: the certificate a
/// qualified CA gives a key file (QcCompliance alone), as `generate` now issues them.
pub fn issue_qualified_certificate(
    point: &[u8],
    holder: &DeviceHolder<'_>,
    serial: u64,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    on_device: bool,
    ca_key_pem: &str,
    ca_cert_pem: &str,
) -> Result<String, PkiError> {
    use chrono::Datelike;
    if point.len() != 65 || point[0] != 4 {
        return Err(gen_err("the device key is not an uncompressed P-256 point"));
    }
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(gen_err)?;
    // The issuer's name, key-identifier method and usages are the demo CA's (`generate`), so
    // the new certificate's issuer and authority key identifier match the CA certificate.
    let issuer = Issuer::new(ca_params("Carimbo Demo Qualified CA", 2, (2025, 1, 1), (2055, 12, 31)), &ca_key);
    let ymd = |t: DateTime<Utc>| (t.year(), t.month() as u8, t.day() as u8);
    let spec = LeafSpec {
        cn: holder.common_name.clone(),
        ou: holder.department,
        person_id: holder.person_id,
        serial,
        from: ymd(from),
        to: ymd(to),
        qualified: true,
        key_usages: None,
    };
    let mut params = leaf_params(&spec);
    for ext in params.custom_extensions.iter_mut() {
        if ext.oid_components().map(|a| a.to_string()).collect::<Vec<_>>().join(".") == OID_QC_STATEMENTS {
            *ext = qc_statements_extension(on_device);
        }
    }
    let cert = params.signed_by(&RawP256(point), &issuer).map_err(gen_err)?;
    Ok(format!("{}{}", cert.pem(), ca_cert_pem))
}

/// A CRL of the demo qualified CA listing `revoked` (serial, time), numbered `number`, issued
/// at `at` and authoritative for a year (`carimbo hsm revoke`).
pub fn qualified_ca_crl(revoked: &[(u64, DateTime<Utc>)], number: u64, at: DateTime<Utc>, ca_key_pem: &str) -> Result<String, PkiError> {
    use chrono::{Datelike, Timelike};
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(gen_err)?;
    let issuer = Issuer::new(ca_params("Carimbo Demo Qualified CA", 2, (2025, 1, 1), (2055, 12, 31)), &ca_key);
    let odt =
        |t: DateTime<Utc>| date_time_ymd(t.year(), t.month() as u8, t.day() as u8) + std::time::Duration::from_secs(u64::from(t.num_seconds_from_midnight()));
    let mut revoked_certs = vec![RevokedCertParams {
        serial_number: SerialNumber::from(REVOKED_SERIAL),
        revocation_time: date_time_ymd(REVOKED_ON.0, REVOKED_ON.1, REVOKED_ON.2),
        reason_code: Some(RevocationReason::KeyCompromise),
        invalidity_date: None,
    }];
    revoked_certs.extend(revoked.iter().map(|(serial, t)| RevokedCertParams {
        serial_number: SerialNumber::from(*serial),
        revocation_time: odt(*t),
        reason_code: Some(RevocationReason::CessationOfOperation),
        invalidity_date: None,
    }));
    CertificateRevocationListParams {
        this_update: odt(at),
        next_update: odt(at + chrono::Duration::days(365)),
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .map_err(gen_err)?
    .pem()
    .map_err(gen_err)
}

fn dn(cn: &str, ou: Option<&str>, serial_number: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "MO");
    dn.push(DnType::OrganizationName, "Carimbo Demo PKI (not for production)");
    if let Some(ou) = ou {
        dn.push(DnType::OrganizationalUnitName, ou);
    }
    if let Some(sn) = serial_number {
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 5]), sn);
    }
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str, serial: u64, from: (i32, u8, u8), to: (i32, u8, u8)) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn, None, None);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.serial_number = Some(SerialNumber::from(serial));
    p.not_before = date_time_ymd(from.0, from.1, from.2);
    p.not_after = date_time_ymd(to.0, to.1, to.2);
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = KeyIdMethod::Sha256;
    p
}

/// Parameters of an end-entity signing certificate.
struct LeafSpec<'a> {
    cn: String,
    ou: Option<&'a str>,
    person_id: &'a str,
    serial: u64,
    from: (i32, u8, u8),
    to: (i32, u8, u8),
    qualified: bool,
    key_usages: Option<Vec<KeyUsagePurpose>>,
}

fn leaf_params(spec: &LeafSpec<'_>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(&spec.cn, spec.ou, Some(spec.person_id));
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = spec.key_usages.clone().unwrap_or_else(|| {
        if spec.qualified { vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment] } else { vec![KeyUsagePurpose::DigitalSignature] }
    });
    if spec.qualified {
        p.custom_extensions.push(policies_extension(OID_POLICY_QCP_N_QSCD));
        p.custom_extensions.push(qc_statements_extension(false));
    }
    p.serial_number = Some(SerialNumber::from(spec.serial));
    p.not_before = date_time_ymd(spec.from.0, spec.from.1, spec.from.2);
    p.not_after = date_time_ymd(spec.to.0, spec.to.1, spec.to.2);
    p.use_authority_key_identifier_extension = true;
    p
}

/// The demo root's parameters (the same at every run; only the key is new).
fn demo_root_params() -> CertificateParams {
    let mut p = ca_params("Carimbo Demo Root CA", 1, (2025, 1, 1), (2060, 12, 31));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    p
}

/// The name of the service-seal member of the demo trust list.
pub fn service_seal_name() -> LocalizedName {
    LocalizedName { zh: "Carimbo 服務電子印章".into(), pt: "Selo eletrónico do serviço Carimbo".into(), en: Some("Carimbo service seal".into()) }
}

/// The demo trust list in the older format (entities with accreditation periods), which
/// `history::convert_v1` turns into the signed history.
fn demo_trust_list_v1() -> Result<TrustListFile, PkiError> {
    Ok(TrustListFile {
        version: 1,
        name: Some("carimbo demo trust list (not for production)".into()),
        entities: vec![
            EntityEntry {
                id: "demo-root".into(),
                name: LocalizedName {
                    zh: "Carimbo 示範根憑證機構".into(),
                    pt: "Autoridade raiz de demonstração Carimbo".into(),
                    en: Some("Carimbo Demo Root CA".into()),
                },
                certificate: "root.pem".into(),
                trust_anchor: true,
                accredited: vec![],
                qualified_policy_oids: vec![],
                service_type: None,
            },
            EntityEntry {
                id: "qualified-ca".into(),
                name: LocalizedName {
                    zh: "Carimbo 示範認證實體（已認可）".into(),
                    pt: "Entidade certificadora credenciada de demonstração".into(),
                    en: Some("Carimbo Demo Qualified CA (accredited)".into()),
                },
                certificate: "qualified-ca.pem".into(),
                trust_anchor: false,
                accredited: vec![AccreditationPeriod { from: "2025-01-01T00:00:00Z".parse().map_err(gen_err)?, until: None }],
                qualified_policy_oids: vec![OID_POLICY_QCP_N_QSCD.into()],
                service_type: None,
            },
            EntityEntry {
                id: "advanced-ca".into(),
                name: LocalizedName {
                    zh: "Carimbo 示範憑證機構（未認可）".into(),
                    pt: "Entidade certificadora não credenciada de demonstração".into(),
                    en: Some("Carimbo Demo Advanced CA (not accredited)".into()),
                },
                certificate: "advanced-ca.pem".into(),
                trust_anchor: false,
                accredited: vec![],
                qualified_policy_oids: vec![],
                service_type: None,
            },
        ],
    })
}

/// Issues the demo trust-list operator's certificate (ECDSA P-256, 2025–2050) from the root:
/// digitalSignature + nonRepudiation and the EKU id-tsl-kp-tslSigning, which only the
/// operator's certificate carries. Returns (certificate PEM followed by the root, key PEM).
pub fn issue_trust_operator(root_cert_pem: &str, root_key_pem: &str) -> Result<(String, String), PkiError> {
    let root_key = KeyPair::from_pem(root_key_pem).map_err(gen_err)?;
    // The root's names, serial and key-identifier method are fixed, so its parameters and
    // its key make the same issuer name and authority key identifier as the root itself.
    let root_params = demo_root_params();
    let root = Issuer::from_params(&root_params, &root_key);
    let key = ec_key(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let spec = LeafSpec {
        cn: "Carimbo Demo Trust-List Operator".into(),
        ou: Some("carimbo"),
        person_id: "trust-list-operator",
        serial: 0x7157,
        from: GOOD_FROM,
        to: GOOD_TO,
        qualified: false,
        key_usages: Some(vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment]),
    };
    let mut params = leaf_params(&spec);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::Other(vec![0, 4, 0, 2231, 3, 0])];
    let cert = params.signed_by(&key.key, &root).map_err(gen_err)?;
    Ok((format!("{}{}", cert.pem(), root_cert_pem), key.pem))
}

const GOOD_FROM: (i32, u8, u8) = (2025, 1, 1);
const GOOD_TO: (i32, u8, u8) = (2050, 12, 31);

/// The demo root and the two issuing CAs, with their certificates.
struct DemoCas<'a> {
    root: Issuer<'a, &'a KeyPair>,
    root_pem: String,
    qca: Issuer<'a, &'a KeyPair>,
    qca_params: &'a CertificateParams,
    qca_pem: String,
    aca: Issuer<'a, &'a KeyPair>,
    aca_pem: String,
}

/// Generate the whole demo PKI (certificates, keys, CRLs, for the PKI folder) and the trust
/// list (for the trust folder). `people` is usually `seeds/pki/people.json`.
pub fn generate(people: &[DemoPerson]) -> Result<DemoPki, PkiError> {
    let mut out = DemoPki::default();
    let root_key = ec_key(&rcgen::PKCS_ECDSA_P384_SHA384)?;
    let root_params = demo_root_params();
    let root_cert = root_params.self_signed(&root_key.key).map_err(gen_err)?;
    let root = Issuer::from_params(&root_params, &root_key.key);
    let qca_key = ec_key(&rcgen::PKCS_ECDSA_P384_SHA384)?;
    let qca_params = ca_params("Carimbo Demo Qualified CA", 2, (2025, 1, 1), (2055, 12, 31));
    let qca_cert = qca_params.signed_by(&qca_key.key, &root).map_err(gen_err)?;
    let aca_key = ec_key(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let aca_params = ca_params("Carimbo Demo Advanced CA", 3, (2025, 1, 1), (2055, 12, 31));
    let aca_cert = aca_params.signed_by(&aca_key.key, &root).map_err(gen_err)?;
    out.pki("root/root.pem", root_cert.pem());
    out.pki("root/root.key.pem", &root_key.pem);
    out.pki("ca/qualified-ca.pem", qca_cert.pem());
    out.pki("ca/qualified-ca.key.pem", &qca_key.pem);
    out.pki("ca/advanced-ca.pem", aca_cert.pem());
    out.pki("ca/advanced-ca.key.pem", &aca_key.pem);
    let cas = DemoCas {
        root,
        root_pem: root_cert.pem(),
        qca: Issuer::from_params(&qca_params, &qca_key.key),
        qca_params: &qca_params,
        qca_pem: qca_cert.pem(),
        aca: Issuer::from_params(&aca_params, &aca_key.key),
        aca_pem: aca_cert.pem(),
    };
    issue_people(&mut out, people, &cas)?;
    let service_der = issue_service_seal(&mut out, &cas)?;
    let tsa_der = generate_tsa(&cas.root, &mut out)?;
    issue_bad_certificates(&mut out, &cas)?;
    issue_crls(&mut out, &cas)?;
    let certs = vec![root_cert.der().clone(), qca_cert.der().clone(), aca_cert.der().clone()];
    issue_trust_list(&mut out, &cas, &root_key.pem, certs, service_der, tsa_der)?;
    Ok(out)
}

/// One certificate per person; the chain file holds the leaf then its issuing CA.
fn issue_people(out: &mut DemoPki, people: &[DemoPerson], cas: &DemoCas<'_>) -> Result<(), PkiError> {
    let issuers = PeopleIssuers { qca: (&cas.qca, &cas.qca_pem), aca: (&cas.aca, &cas.aca_pem) };
    for (i, person) in people.iter().enumerate() {
        let key = person_key(person.key)?;
        out.pki(format!("people/{}.pem", person.id), person_certificate(person, i, &key.key, &issuers)?);
        out.pki(format!("people/{}.key.pem", person.id), &key.pem);
        out.summary.people += 1;
    }
    Ok(())
}

/// The two CAs that issue people's certificates, each with its certificate (PEM).
struct PeopleIssuers<'a> {
    qca: (&'a Issuer<'a, &'a KeyPair>, &'a str),
    aca: (&'a Issuer<'a, &'a KeyPair>, &'a str),
}

/// The certificate (then its CA) of the `index`-th person for `key`: serial, names and dates are
/// fixed, so issuing it again for the same key gives the same certificate but for its signature.
/// A qualified one carries QcCompliance and never QcSSCD: a key file is not on a device.
fn person_certificate(person: &DemoPerson, index: usize, key: &KeyPair, issuers: &PeopleIssuers<'_>) -> Result<String, PkiError> {
    let qualified = person.issuer == DemoIssuer::QualifiedCa;
    let spec = LeafSpec {
        cn: format!("{} {}", person.name.zh, person.name.pt.to_uppercase()).trim().to_string(),
        ou: person.department.as_deref(),
        person_id: &person.id,
        serial: 0x1000 + index as u64,
        from: GOOD_FROM,
        to: GOOD_TO,
        qualified,
        key_usages: None,
    };
    let (issuer, ca_pem) = if qualified { issuers.qca } else { issuers.aca };
    let cert = leaf_params(&spec).signed_by(key, issuer).map_err(gen_err)?;
    Ok(format!("{}{}", cert.pem(), ca_pem))
}

/// The keys and certificates of the two demo CAs that issue people's certificates (PEM).
pub struct PeopleCaFiles<'a> {
    pub qualified_key_pem: &'a str,
    pub qualified_cert_pem: &'a str,
    pub advanced_key_pem: &'a str,
    pub advanced_cert_pem: &'a str,
}

/// Issues every person's certificate again for the key they already have (`key_pem` of a
/// person's id), from the existing CAs: `people/<id>.pem` files only, keys, CAs, CRLs and the
/// trust list untouched (`carimbo pki demo-people`). This is how certificates made before a
/// profile change (QcSSCD on key files) are brought up to the profile without new keys.
pub fn reissue_people(people: &[DemoPerson], key_pem: impl Fn(&str) -> Option<String>, cas: &PeopleCaFiles<'_>) -> Result<Vec<DemoFile>, PkiError> {
    let qca_key = KeyPair::from_pem(cas.qualified_key_pem).map_err(gen_err)?;
    let aca_key = KeyPair::from_pem(cas.advanced_key_pem).map_err(gen_err)?;
    let qca = Issuer::new(ca_params("Carimbo Demo Qualified CA", 2, (2025, 1, 1), (2055, 12, 31)), &qca_key);
    let aca = Issuer::new(ca_params("Carimbo Demo Advanced CA", 3, (2025, 1, 1), (2055, 12, 31)), &aca_key);
    let issuers = PeopleIssuers { qca: (&qca, cas.qualified_cert_pem), aca: (&aca, cas.advanced_cert_pem) };
    let mut out = DemoPki::default();
    for (i, person) in people.iter().enumerate() {
        let pem = key_pem(&person.id).ok_or_else(|| gen_err(format!("no key file for {}", person.id)))?;
        let key = KeyPair::from_pkcs8_pem_and_sign_algo(&pem, person_key_algorithm(person.key)).map_err(gen_err)?;
        out.pki(format!("people/{}.pem", person.id), person_certificate(person, i, &key, &issuers)?);
    }
    Ok(out.files)
}

/// The service seal used for `simple` acts, issued by the advanced CA.
fn issue_service_seal(out: &mut DemoPki, cas: &DemoCas<'_>) -> Result<CertificateDer<'static>, PkiError> {
    let key = ec_key(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let spec = LeafSpec {
        cn: "carimbo service seal".into(),
        ou: Some("carimbo"),
        person_id: "carimbo-service",
        serial: 0x5e41,
        from: GOOD_FROM,
        to: GOOD_TO,
        qualified: false,
        key_usages: Some(vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment]),
    };
    let cert = leaf_params(&spec).signed_by(&key.key, &cas.aca).map_err(gen_err)?;
    out.pki("service/service.pem", format!("{}{}", cert.pem(), cas.aca_pem));
    out.pki("service/service.key.pem", &key.pem);
    Ok(cert.der().clone())
}

/// The spec of a deliberately bad certificate (good dates; each case changes what it breaks).
fn bad_spec(name: &str, serial: u64) -> LeafSpec<'static> {
    LeafSpec {
        cn: format!("Bad Certificate ({name})"),
        ou: Some("DTI"),
        person_id: "p031",
        serial,
        from: GOOD_FROM,
        to: GOOD_TO,
        qualified: false,
        key_usages: None,
    }
}

/// A bad certificate with a new P-256 key, issued by `issuer` whose certificate is `chain`.
fn issue_bad(out: &mut DemoPki, name: &str, spec: &LeafSpec<'_>, issuer: &Issuer<'_, &KeyPair>, chain: &str) -> Result<(), PkiError> {
    let key = ec_key(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = leaf_params(spec).signed_by(&key.key, issuer).map_err(gen_err)?;
    out.bad(name, cert.pem(), chain.to_string(), &key.pem);
    Ok(())
}

/// The deliberately bad certificates of `BAD_CERTIFICATES`, each wrong in one way.
fn issue_bad_certificates(out: &mut DemoPki, cas: &DemoCas<'_>) -> Result<(), PkiError> {
    // Expired in 2025, for good.
    let mut expired = bad_spec("expired", 0x0bad_0001);
    (expired.from, expired.to) = ((2024, 1, 1), (2025, 6, 30));
    issue_bad(out, "expired", &expired, &cas.aca, &cas.aca_pem)?;
    // Not valid before 2090.
    let mut not_yet = bad_spec("not-yet-valid", 0x0bad_0002);
    (not_yet.from, not_yet.to) = ((2090, 1, 1), (2095, 12, 31));
    issue_bad(out, "not-yet-valid", &not_yet, &cas.aca, &cas.aca_pem)?;
    // Qualified, revoked on 2025-06-01 (listed in the qualified CA's CRL).
    let mut revoked = bad_spec("revoked", REVOKED_SERIAL);
    revoked.qualified = true;
    issue_bad(out, "revoked", &revoked, &cas.qca, &cas.qca_pem)?;
    // Key agreement only: not a signing certificate.
    let mut no_signing = bad_spec("no-signing-key-usage", 0x0bad_0004);
    no_signing.key_usages = Some(vec![KeyUsagePurpose::KeyAgreement]);
    issue_bad(out, "no-signing-key-usage", &no_signing, &cas.aca, &cas.aca_pem)?;
    issue_unknown_ca(out)?;
    issue_broken_chain(out, cas)?;
    issue_weak_rsa(out, cas)?;
    issue_sha1_signed(out, cas)
}

/// Issued by a root that is on no trust list.
fn issue_unknown_ca(out: &mut DemoPki) -> Result<(), PkiError> {
    let rogue_key = ec_key(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let rogue_params = ca_params("Rogue Root CA", 0x0bad_0099, (2025, 1, 1), (2060, 12, 31));
    let rogue_cert = rogue_params.self_signed(&rogue_key.key).map_err(gen_err)?;
    let rogue = Issuer::from_params(&rogue_params, &rogue_key.key);
    issue_bad(out, "unknown-ca", &bad_spec("unknown-ca", 0x0bad_0005), &rogue, &rogue_cert.pem())?;
    out.pki("bad/rogue-root.pem", rogue_cert.pem());
    Ok(())
}

/// Names the qualified CA as issuer but is signed by another key: the chain is broken.
fn issue_broken_chain(out: &mut DemoPki, cas: &DemoCas<'_>) -> Result<(), PkiError> {
    let impostor_key = ec_key(&rcgen::PKCS_ECDSA_P384_SHA384)?;
    let impostor = Issuer::from_params(cas.qca_params, &impostor_key.key);
    issue_bad(out, "broken-chain", &bad_spec("broken-chain", 0x0bad_0006), &impostor, &cas.qca_pem)
}

/// An RSA key of 1024 bits: refused by the crypto policy.
fn issue_weak_rsa(out: &mut DemoPki, cas: &DemoCas<'_>) -> Result<(), PkiError> {
    let (_, pem, public) = rsa_pkcs8(1024)?;
    let public = RawPublicKey { der: public, alg: &rcgen::PKCS_RSA_SHA256 };
    let cert = leaf_params(&bad_spec("weak-rsa-1024", 0x0bad_0007)).signed_by(&public, &cas.aca).map_err(gen_err)?;
    out.bad("weak-rsa-1024", cert.pem(), cas.aca_pem.clone(), &pem);
    Ok(())
}

/// Signed with SHA-1 by a legacy RSA CA under the trusted root.
fn issue_sha1_signed(out: &mut DemoPki, cas: &DemoCas<'_>) -> Result<(), PkiError> {
    let legacy_private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(gen_err)?;
    let (legacy_der, _, _) = rsa_encode(&legacy_private)?;
    let legacy_key = KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(legacy_der), &rcgen::PKCS_RSA_SHA256).map_err(gen_err)?;
    let legacy_params = ca_params("Carimbo Demo Legacy RSA CA", 4, (2025, 1, 1), (2055, 12, 31));
    let legacy_cert = legacy_params.signed_by(&legacy_key, &cas.root).map_err(gen_err)?;
    let legacy = Issuer::from_params(&legacy_params, &legacy_key);
    let key = ec_key(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = leaf_params(&bad_spec("sha1-signed", 0x0bad_0008)).signed_by(&key.key, &legacy).map_err(gen_err)?;
    let sha1 = resign_with_sha1(cert.der(), &legacy_private)?;
    out.bad("sha1-signed", pem_certificate(&sha1), legacy_cert.pem(), &key.pem);
    Ok(())
}

/// One CRL per CA, issued 2025-07-01 and authoritative until 2060; the qualified CA's lists
/// `bad/revoked.pem`.
fn issue_crls(out: &mut DemoPki, cas: &DemoCas<'_>) -> Result<(), PkiError> {
    let crl = |issuer: &Issuer<'_, &KeyPair>, revoked: Vec<RevokedCertParams>| -> Result<String, PkiError> {
        CertificateRevocationListParams {
            this_update: date_time_ymd(2025, 7, 1),
            next_update: date_time_ymd(2060, 12, 31),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(issuer)
        .map_err(gen_err)?
        .pem()
        .map_err(gen_err)
    };
    let revoked = RevokedCertParams {
        serial_number: SerialNumber::from(REVOKED_SERIAL),
        revocation_time: date_time_ymd(REVOKED_ON.0, REVOKED_ON.1, REVOKED_ON.2),
        reason_code: Some(RevocationReason::KeyCompromise),
        invalidity_date: None,
    };
    out.pki("crl/root.crl", crl(&cas.root, vec![])?);
    out.pki("crl/qualified-ca.crl", crl(&cas.qca, vec![revoked])?);
    out.pki("crl/advanced-ca.crl", crl(&cas.aca, vec![])?);
    out.summary.crls = 3;
    Ok(())
}

/// The trust list: the root as anchor, the qualified CA accredited since 2025, the service seal
/// and the TSA; its history signed by the operator (issued here from the root).
fn issue_trust_list(
    out: &mut DemoPki,
    cas: &DemoCas<'_>,
    root_key_pem: &str,
    certs: Vec<CertificateDer<'static>>,
    service_der: CertificateDer<'static>,
    tsa_der: CertificateDer<'static>,
) -> Result<(), PkiError> {
    out.trust("root.pem", &cas.root_pem);
    out.trust("qualified-ca.pem", &cas.qca_pem);
    out.trust("advanced-ca.pem", &cas.aca_pem);
    let trust = demo_trust_list_v1()?;
    let (operator_pem, operator_key_pem) = issue_trust_operator(&cas.root_pem, root_key_pem)?;
    out.pki("operator/operator.pem", &operator_pem);
    out.pki("operator/operator.key.pem", &operator_key_pem);
    let signer = crate::signing::Signer::from_pem(operator_key_pem.as_bytes(), operator_pem.as_bytes()).map_err(gen_err)?;
    let extra = vec![
        ("service-seal".to_string(), ServiceType::ServiceSeal, service_seal_name(), service_der),
        (TSA_ENTITY_ID.to_string(), ServiceType::TimeStamping, tsa_name(), tsa_der),
    ];
    let since = "2025-01-01T00:00:00Z".parse().map_err(gen_err)?;
    let now = "2025-01-02T00:00:00Z".parse().map_err(gen_err)?;
    let history = super::history::convert_v1(&trust, &certs, &extra, &signer, since, now).map_err(gen_err)?;
    out.trust(TRUST_LIST_FILE, history.document().to_pretty());
    Ok(())
}

/// The demo TSA's certificate and key, under the PKI folder.
pub const TSA_CERT: &str = "tsa/tsa.pem";
pub const TSA_KEY: &str = "tsa/tsa.key.pem";
/// The trust-list entry id of the demo TSA.
pub const TSA_ENTITY_ID: &str = "demo-tsa";

/// The demo time-stamp authority's certificate (RFC 3161 §2.3): ECDSA P-256, keyUsage
/// digitalSignature + nonRepudiation, and the extended key usage id-kp-timeStamping alone,
/// critical. rcgen writes its own EKU extension non-critical, so the extension is given as a
/// custom one whose value `x509-cert` encodes.
pub fn tsa_params(cn: &str, serial: u64, critical_eku: bool) -> Result<CertificateParams, PkiError> {
    use der::Encode;
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn, Some("carimbo"), None);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment];
    let eku = x509_cert::ext::pkix::ExtendedKeyUsage(vec![crate::signing::timestamp::ID_KP_TIME_STAMPING]).to_der().map_err(gen_err)?;
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 37], eku);
    ext.set_criticality(critical_eku);
    p.custom_extensions.push(ext);
    p.serial_number = Some(SerialNumber::from(serial));
    p.not_before = date_time_ymd(GOOD_FROM.0, GOOD_FROM.1, GOOD_FROM.2);
    p.not_after = date_time_ymd(GOOD_TO.0, GOOD_TO.1, GOOD_TO.2);
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

fn generate_tsa(root: &Issuer<'_, &KeyPair>, out: &mut DemoPki) -> Result<CertificateDer<'static>, PkiError> {
    let key = ec_key(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = tsa_params("Carimbo Demo Time-Stamp Authority", 0x75a1, true)?.signed_by(&key.key, root).map_err(gen_err)?;
    out.pki(TSA_CERT, cert.pem());
    out.pki(TSA_KEY, &key.pem);
    Ok(cert.der().clone())
}

/// A TSA certificate and PKCS#8 key (PEM) issued by the demo root (its certificate and key
/// PEM, `root/root.pem` and `root/root.key.pem` of a demo PKI); `critical_eku: false` makes the
/// certificate RFC 3161 forbids, for tests of the verifier.
pub fn issue_tsa_certificate(root_pem: &str, root_key_pem: &str, cn: &str, serial: u64, critical_eku: bool) -> Result<(String, String), PkiError> {
    issue_tsa_certificate_until(root_pem, root_key_pem, cn, serial, critical_eku, None)
}

/// `issue_tsa_certificate`, valid until `until` (a date, UTC) instead of the demo's end of 2050:
/// the later TSA an archive is re-stamped with (`tests/it/evidence_ltv.rs`).
pub fn issue_tsa_certificate_until(
    root_pem: &str,
    root_key_pem: &str,
    cn: &str,
    serial: u64,
    critical_eku: bool,
    until: Option<(i32, u8, u8)>,
) -> Result<(String, String), PkiError> {
    let root_key = KeyPair::from_pem(root_key_pem).map_err(gen_err)?;
    let params = demo_root_params();
    let root = demo_root_issuer(&params, root_pem, &root_key)?;
    let key = ec_key(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = tsa_params(cn, serial, critical_eku)?;
    if let Some((y, m, d)) = until {
        params.not_after = date_time_ymd(y, m, d);
    }
    let cert = params.signed_by(&key.key, &root).map_err(gen_err)?;
    Ok((cert.pem(), key.pem))
}

/// The demo root as an issuer, from its fixed parameters and its key. The root's parameters
/// are fixed (see `generate`), so the issuer rebuilt from them and the root's key names the
/// root exactly as its certificate does; the check here proves it.
fn demo_root_issuer<'a>(params: &'a CertificateParams, root_pem: &str, root_key: &'a KeyPair) -> Result<Issuer<'a, &'a KeyPair>, PkiError> {
    let root_cert = params.self_signed(root_key).map_err(gen_err)?;
    let same_name = |pem: &str| {
        crate::pki::cert::parse_pem_certificates(pem.as_bytes(), "root").ok().and_then(|c| CertFacts::from_der(&c[0]).ok()).map(|f| (f.subject_raw, f.spki))
    };
    if same_name(root_pem).is_none() || same_name(root_pem) != same_name(&root_cert.pem()) {
        return Err(gen_err("root/root.pem is not the demo root made with root/root.key.pem"));
    }
    Ok(Issuer::from_params(params, root_key))
}

/// A newer CRL of the demo root (PEM): number `crl_number`, issued on `this_update` (a date,
/// UTC) and authoritative until 2060 like the demo's, listing each `(serial, revoked on)` as a
/// key compromise. What an archive re-stamped after a TSA's revocation carries
/// (`tests/evidence_ltv.rs`).
pub fn issue_root_crl(
    root_pem: &str,
    root_key_pem: &str,
    crl_number: u64,
    this_update: (i32, u8, u8),
    revoked: &[(u64, (i32, u8, u8))],
) -> Result<String, PkiError> {
    let root_key = KeyPair::from_pem(root_key_pem).map_err(gen_err)?;
    let params = demo_root_params();
    let root = demo_root_issuer(&params, root_pem, &root_key)?;
    let day = |(y, m, d): (i32, u8, u8)| date_time_ymd(y, m, d);
    let revoked_certs = revoked
        .iter()
        .map(|(serial, on)| RevokedCertParams {
            serial_number: SerialNumber::from(*serial),
            revocation_time: day(*on),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        })
        .collect();
    CertificateRevocationListParams {
        this_update: day(this_update),
        next_update: date_time_ymd(2060, 12, 31),
        crl_number: SerialNumber::from(crl_number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&root)
    .map_err(gen_err)?
    .pem()
    .map_err(gen_err)
}

/// The name of the demo TSA's trust-list member.
pub fn tsa_name() -> LocalizedName {
    LocalizedName {
        zh: "Carimbo 示範時間戳記機構".into(),
        pt: "Autoridade de selos temporais de demonstração Carimbo".into(),
        en: Some("Carimbo Demo Time-Stamp Authority".into()),
    }
}

/// What adding the demo TSA reads of an existing demo PKI (the edge reads the files).
pub struct DemoTsaInputs<'a> {
    /// `root/root.pem` and `root/root.key.pem`.
    pub root_pem: &'a str,
    pub root_key_pem: &'a str,
    /// `operator/operator.key.pem` and `operator/operator.pem`.
    pub operator_key_pem: &'a [u8],
    pub operator_pem: &'a [u8],
    /// The trust list's history (`trust-list.json`) and the name to give it in errors.
    pub trust_list: &'a [u8],
    pub trust_list_origin: &'a str,
}

/// Add the demo TSA to an existing demo PKI (`carimbo pki demo-tsa`): a new key and
/// certificate issued by the PKI's root, and two entries appended to the trust list's history,
/// signed by the demo operator: the TSA added as a `time_stamping` member, then granted.
/// Nothing else is regenerated. A demo TSA already on the list is withdrawn first and the new
/// one added under the next free id (`demo-tsa-2`, …): a history never reuses a member's id.
/// Returns the new member's id and the files to write (the TSA's certificate and key, the
/// longer trust list).
pub fn add_tsa(input: &DemoTsaInputs<'_>, at: DateTime<Utc>) -> Result<(String, Vec<DemoFile>), PkiError> {
    let (cert_pem, key_pem) = issue_tsa_certificate(input.root_pem, input.root_key_pem, "Carimbo Demo Time-Stamp Authority", 0x75a1, true)?;
    let operator = crate::signing::Signer::from_pem(input.operator_key_pem, input.operator_pem).map_err(gen_err)?;
    let bad = |reason: String| PkiError::BadTrustList { path: input.trust_list_origin.to_string(), reason };
    let mut history = super::history::TrustHistory::from_slice(input.trust_list, at).map_err(|e| bad(e.to_string()))?;
    let der = crate::pki::cert::parse_pem_certificates(cert_pem.as_bytes(), TSA_CERT).map_err(gen_err)?.remove(0);
    use super::history::{Change, MemberStatus};
    let mut changes = Vec::new();
    let previous: Vec<String> =
        history.members().iter().filter(|m| m.id == TSA_ENTITY_ID || m.id.starts_with(&format!("{TSA_ENTITY_ID}-"))).map(|m| m.id.clone()).collect();
    for id in &previous {
        if history.member(id).is_some_and(|m| m.granted_at(at)) {
            changes.push(Change::Status { member: id.clone(), status: MemberStatus::Withdrawn, level: None });
        }
    }
    let id = if previous.is_empty() { TSA_ENTITY_ID.to_string() } else { format!("{TSA_ENTITY_ID}-{}", previous.len() + 1) };
    changes.push(Change::AddMember {
        member: id.clone(),
        service_type: ServiceType::TimeStamping,
        name: tsa_name(),
        certificate: super::history::certificate_text(&der),
    });
    changes.push(Change::Status { member: id.clone(), status: MemberStatus::Granted, level: None });
    for change in changes {
        let entry = super::history::sign_entry(Some(&history), &operator, at, change).map_err(bad)?;
        history = history.appended(entry, at).map_err(|e| bad(e.to_string()))?;
    }
    let mut out = DemoPki::default();
    out.pki(TSA_CERT, cert_pem);
    out.pki(TSA_KEY, key_pem);
    out.trust(TRUST_LIST_FILE, history.document().to_pretty());
    Ok((id, out.files))
}
