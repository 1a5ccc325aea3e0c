//! CRLs signed by a CRL-signing certificate outside the signature's path (RFC 5280 §6.3.3
//! (f)): a CA whose own key does not sign CRLs, and a separate certificate in the CA's name,
//! issued under the same trust anchor, that does. The status of a signing certificate is
//! answered by that signer's CRL only while the signer is itself valid, unrevoked and under
//! the same anchor; otherwise it stays unknown (never "not revoked").

use carimbo::pki::crl::LoadedCrl;
use carimbo::pki::path::SigningTime;
use carimbo::pki::report::SubIndication;
use carimbo::pki::{CertificateValidator, CrlSet, TrustList, ValidationPolicy};
use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SerialNumber, date_time_ymd,
};
use rustls_pki_types::CertificateDer;

fn params(cn: &str, serial: u64, ca: bool, usages: Vec<KeyUsagePurpose>) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "MO");
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = if ca { IsCa::Ca(BasicConstraints::Constrained(1)) } else { IsCa::ExplicitNoCa };
    p.key_usages = usages;
    p.serial_number = Some(SerialNumber::from(serial));
    p.not_before = date_time_ymd(2025, 1, 1);
    p.not_after = date_time_ymd(2040, 12, 31);
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = KeyIdMethod::Sha256;
    p
}

fn key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key")
}

fn crl(issuer: &Issuer<'_, KeyPair>, revoked: &[u64]) -> LoadedCrl {
    let der = CertificateRevocationListParams {
        this_update: date_time_ymd(2026, 1, 1),
        next_update: date_time_ymd(2040, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from(*serial),
                revocation_time: date_time_ymd(2026, 1, 1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .expect("CRL");
    LoadedCrl::from_der(der.der().to_vec(), "test.crl").expect("CRL parses")
}

/// A root, an issuing CA without cRLSign, a CRL signer in the CA's name under the root, a
/// look-alike signer under a root nobody trusts, and two signing certificates (serial 5
/// good, serial 6 revoked on the signer's CRL).
struct Pki {
    root: CertificateDer<'static>,
    ca: CertificateDer<'static>,
    signer: CertificateDer<'static>,
    rogue_signer: CertificateDer<'static>,
    good: CertificateDer<'static>,
    revoked: CertificateDer<'static>,
    root_issuer: Issuer<'static, KeyPair>,
    signer_issuer: Issuer<'static, KeyPair>,
    rogue_issuer: Issuer<'static, KeyPair>,
}

const SIGNER_SERIAL: u64 = 30;

fn pki() -> Pki {
    let sign_only = || vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment];
    let root_params = params("Test Root", 1, true, vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]);
    let root_key = key();
    let root = root_params.self_signed(&root_key).expect("root");
    let root_issuer = Issuer::new(root_params, root_key);

    let ca_params = params("Issuing CA", 2, true, vec![KeyUsagePurpose::KeyCertSign]);
    let ca_key = key();
    let ca = ca_params.signed_by(&ca_key, &root_issuer).expect("CA");
    let ca_issuer = Issuer::new(ca_params, ca_key);

    let signer_params = params("Issuing CA", SIGNER_SERIAL, false, vec![KeyUsagePurpose::CrlSign]);
    let signer_key = key();
    let signer = signer_params.signed_by(&signer_key, &root_issuer).expect("signer");
    let signer_issuer = Issuer::new(signer_params.clone(), signer_key);

    let rogue_root_params = params("Test Root", 1, true, vec![KeyUsagePurpose::KeyCertSign]);
    let rogue_root = Issuer::new(rogue_root_params, key());
    let rogue_key = key();
    let rogue_signer = signer_params.signed_by(&rogue_key, &rogue_root).expect("rogue signer");
    let rogue_issuer = Issuer::new(signer_params, rogue_key);

    let good = params("Signer Five", 5, false, sign_only()).signed_by(&key(), &ca_issuer).expect("leaf");
    let revoked = params("Signer Six", 6, false, sign_only()).signed_by(&key(), &ca_issuer).expect("leaf");
    Pki {
        root: root.der().clone(),
        ca: ca.der().clone(),
        signer: signer.der().clone(),
        rogue_signer: rogue_signer.der().clone(),
        good: good.der().clone(),
        revoked: revoked.der().clone(),
        root_issuer,
        signer_issuer,
        rogue_issuer,
    }
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").expect("time").with_timezone(&Utc)
}

/// Validate `chain` with the root trusted and `crls`; `Ok` or the sub-indication and detail.
fn check(p: &Pki, chain: &[&CertificateDer<'static>], crls: Vec<LoadedCrl>) -> Result<(), (SubIndication, String)> {
    let trust = TrustList::from_anchors(std::slice::from_ref(&p.root)).expect("anchor");
    let mut set = CrlSet::empty();
    for c in crls {
        set.add(c);
    }
    let validator = CertificateValidator::new(trust, set, ValidationPolicy::document_signing());
    let chain: Vec<CertificateDer<'static>> = chain.iter().map(|c| (*c).clone()).collect();
    validator.validate(&chain, SigningTime { at: at(), trusted: true }).map(|_| ()).map_err(|f| (f.sub, f.detail))
}

#[test]
fn a_separate_crl_signer_under_the_same_anchor_answers_for_the_ca() {
    let p = pki();
    let crls = || vec![crl(&p.signer_issuer, &[6]), crl(&p.root_issuer, &[])];
    check(&p, &[&p.good, &p.ca, &p.signer], crls()).expect("a certificate its CA's CRL signer does not list passes");
    let (sub, detail) = check(&p, &[&p.revoked, &p.ca, &p.signer], crls()).unwrap_err();
    assert_eq!(sub, SubIndication::Revoked, "{detail}");
}

#[test]
fn without_the_signer_certificate_the_status_is_unknown() {
    let p = pki();
    let (sub, detail) = check(&p, &[&p.good, &p.ca], vec![crl(&p.signer_issuer, &[6]), crl(&p.root_issuer, &[])]).unwrap_err();
    assert_eq!(sub, SubIndication::TryLater, "{detail}");
}

#[test]
fn a_revoked_crl_signer_answers_nothing() {
    let p = pki();
    let crls = vec![crl(&p.signer_issuer, &[]), crl(&p.root_issuer, &[SIGNER_SERIAL])];
    let (sub, detail) = check(&p, &[&p.good, &p.ca, &p.signer], crls).unwrap_err();
    assert_eq!(sub, SubIndication::TryLater, "{detail}");
}

#[test]
fn a_crl_signer_with_the_right_name_under_another_root_answers_nothing() {
    let p = pki();
    // The rogue signer's CRL says serial 6 is fine: it must not be believed.
    let crls = vec![crl(&p.rogue_issuer, &[]), crl(&p.root_issuer, &[])];
    let (sub, detail) = check(&p, &[&p.revoked, &p.ca, &p.rogue_signer], crls).unwrap_err();
    assert_eq!(sub, SubIndication::TryLater, "{detail}");
}
