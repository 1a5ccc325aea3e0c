//! The RFC 5280 certificate profile carimbo insists on, beyond what webpki enforces.
//!
//! rustls-webpki is deliberately lenient about certificate *structure* (it was built for the
//! Web PKI, where browsers tolerate old roots) and does not look at trust anchors beyond
//! their name and key. A document signature has to stand up years later in front of an
//! auditor, so carimbo applies the MUSTs of RFC 5280 §4.1–§4.2 to every certificate of the
//! path, anchor included: key identifiers, critical-ness of the extensions that must be
//! critical (or must not be), basic constraints of CAs, serial numbers, name constraints only
//! in CAs and never empty, no critical extension it does not understand, no malformed
//! extension. The x509-limbo suite measures these rules.

use x509_parser::prelude::*;

/// Where a certificate sits in a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertRole {
    EndEntity,
    Intermediate,
    Anchor,
}

/// The first profile violation of `der` in role `role`, as a sentence; `None` if it conforms.
pub fn violation(der: &[u8], role: CertRole) -> Option<String> {
    let cert = match X509Certificate::from_der(der) {
        Ok((_, c)) => c,
        Err(e) => return Some(format!("not a DER certificate: {e}")),
    };
    let tbs = &cert.tbs_certificate;
    let subject = tbs.subject().to_string();
    let who = if subject.is_empty() { "a certificate with an empty subject".to_string() } else { format!("`{subject}`") };
    let check = || -> Result<(), String> {
        serial_rule(tbs, role, &who)?;
        let ext = scan_extensions(tbs, role, &who)?;
        key_identifier_rules(tbs, role, &who, &ext)?;
        ca_marking_rules(role, &who, &ext)?;
        subject_rules(tbs, role, &who, &ext)
    };
    check().err()
}

/// §4.1.2.2: positive, non-zero, at most 20 octets. Not applied to trust anchors, which are
/// trusted by configuration (§6.1.1 uses only their name and key); some long-lived public
/// roots predate the rule.
fn serial_rule(tbs: &TbsCertificate<'_>, role: CertRole, who: &str) -> Result<(), String> {
    let serial = if role == CertRole::Anchor { &[1u8][..] } else { tbs.raw_serial() };
    let significant = serial.iter().skip_while(|b| **b == 0).count();
    if significant == 0 {
        return Err(format!("{who} has serial number zero"));
    }
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(format!("{who} has a negative serial number"));
    }
    if serial.len() > 20 {
        return Err(format!("{who} has a serial number longer than 20 octets"));
    }
    Ok(())
}

/// What the later rules need to know of a certificate's extensions.
struct ExtensionFacts<'a> {
    aki: Option<&'a AuthorityKeyIdentifier<'a>>,
    aki_critical: bool,
    ski: Option<&'a [u8]>,
    ski_critical: bool,
    /// (cA, critical) of basicConstraints.
    basic: Option<(bool, bool)>,
    key_cert_sign: bool,
    has_key_usage: bool,
    san_critical: Option<bool>,
}

/// The rules about each extension on its own: none malformed, none critical that must not
/// be or is not understood, name constraints only in CAs, critical, non-empty and well
/// formed, policy constraints critical. Collects what the later rules need.
fn scan_extensions<'a>(tbs: &'a TbsCertificate<'a>, role: CertRole, who: &str) -> Result<ExtensionFacts<'a>, String> {
    let mut facts = ExtensionFacts {
        aki: None,
        aki_critical: false,
        ski: None,
        ski_critical: false,
        basic: None,
        key_cert_sign: false,
        has_key_usage: false,
        san_critical: None,
    };
    for ext in tbs.extensions() {
        let parsed = ext.parsed_extension();
        if let ParsedExtension::ParseError { error } = parsed {
            return Err(format!("{who} has a malformed extension {}: {error}", ext.oid));
        }
        let may_be_critical = matches!(
            parsed,
            ParsedExtension::BasicConstraints(_)
                | ParsedExtension::KeyUsage(_)
                | ParsedExtension::ExtendedKeyUsage(_)
                | ParsedExtension::NameConstraints(_)
                | ParsedExtension::PolicyConstraints(_)
                | ParsedExtension::CertificatePolicies(_)
                | ParsedExtension::SubjectAlternativeName(_)
                | ParsedExtension::InhibitAnyPolicy(_)
                | ParsedExtension::PolicyMappings(_)
        );
        if ext.critical && !may_be_critical {
            return Err(format!("{who} has critical extension {} that must not be critical or is not understood", ext.oid));
        }
        match parsed {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                facts.aki = Some(a);
                facts.aki_critical = ext.critical;
            }
            ParsedExtension::SubjectKeyIdentifier(k) => {
                facts.ski = Some(k.0);
                facts.ski_critical = ext.critical;
            }
            ParsedExtension::BasicConstraints(b) => facts.basic = Some((b.ca, ext.critical)),
            ParsedExtension::KeyUsage(ku) => {
                facts.has_key_usage = true;
                facts.key_cert_sign = ku.key_cert_sign();
            }
            ParsedExtension::SubjectAlternativeName(_) => facts.san_critical = Some(ext.critical),
            ParsedExtension::NameConstraints(nc) => name_constraint_rules(nc, ext.critical, role, who)?,
            ParsedExtension::PolicyConstraints(_) if !ext.critical => {
                return Err(format!("{who} has non-critical policy constraints"));
            }
            _ => {}
        }
    }
    Ok(facts)
}

/// §4.2.1.10: name constraints only in CAs, critical, not empty, DNS bases without a leading dot.
fn name_constraint_rules(nc: &NameConstraints<'_>, critical: bool, role: CertRole, who: &str) -> Result<(), String> {
    if role == CertRole::EndEntity {
        return Err(format!("{who} is an end-entity certificate with name constraints"));
    }
    if !critical {
        return Err(format!("{who} has non-critical name constraints"));
    }
    let permitted = nc.permitted_subtrees.as_ref().is_some_and(|s| !s.is_empty());
    let excluded = nc.excluded_subtrees.as_ref().is_some_and(|s| !s.is_empty());
    if !permitted && !excluded {
        return Err(format!("{who} has empty name constraints"));
    }
    let subtrees = nc.permitted_subtrees.iter().chain(nc.excluded_subtrees.iter()).flatten();
    for subtree in subtrees {
        if let GeneralName::DNSName(name) = subtree.base
            && name.starts_with('.')
        {
            return Err(format!("{who} has an invalid DNS name constraint `{name}`"));
        }
    }
    Ok(())
}

/// §4.2.1.1: AKI non-critical, with a key identifier, required except on self-issued roots.
/// §4.2.1.2: SKI non-critical, required in CA certificates.
fn key_identifier_rules(tbs: &TbsCertificate<'_>, role: CertRole, who: &str, ext: &ExtensionFacts<'_>) -> Result<(), String> {
    let self_issued = tbs.subject().as_raw() == tbs.issuer().as_raw();
    if let Some(a) = ext.aki {
        if ext.aki_critical {
            return Err(format!("{who} has a critical authority key identifier"));
        }
        let Some(key_id) = &a.key_identifier else {
            return Err(format!("{who} has an authority key identifier without keyIdentifier"));
        };
        if a.authority_cert_issuer.is_some() || a.authority_cert_serial.is_some() {
            return Err(format!("{who} has an authority key identifier naming issuer and serial"));
        }
        if self_issued && role == CertRole::Anchor && ext.ski.is_some_and(|s| s != key_id.0) {
            return Err(format!("{who} is self-signed but its authority and subject key identifiers differ"));
        }
    } else if !(self_issued && role == CertRole::Anchor) {
        return Err(format!("{who} has no authority key identifier"));
    }
    if ext.ski_critical {
        return Err(format!("{who} has a critical subject key identifier"));
    }
    if role != CertRole::EndEntity && ext.ski.is_none() {
        return Err(format!("CA certificate {who} has no subject key identifier"));
    }
    Ok(())
}

/// §4.2.1.9 and §4.2.1.3: CAs have critical basicConstraints cA=TRUE and keyCertSign when they
/// carry key usage; keyCertSign needs cA.
fn ca_marking_rules(role: CertRole, who: &str, ext: &ExtensionFacts<'_>) -> Result<(), String> {
    if role != CertRole::EndEntity {
        match ext.basic {
            Some((true, true)) => {}
            Some((true, false)) => return Err(format!("CA certificate {who} has non-critical basic constraints")),
            _ => return Err(format!("CA certificate {who} is not marked as a CA (basicConstraints cA)")),
        }
        if ext.has_key_usage && !ext.key_cert_sign {
            return Err(format!("CA certificate {who} has a key usage without keyCertSign"));
        }
    }
    if ext.key_cert_sign && ext.basic.is_none_or(|(ca, _)| !ca) {
        return Err(format!("{who} asserts keyCertSign without being a CA"));
    }
    Ok(())
}

/// §4.1.2.6: CAs have a subject; an empty subject needs a critical SAN, a non-empty one a
/// non-critical SAN.
fn subject_rules(tbs: &TbsCertificate<'_>, role: CertRole, who: &str, ext: &ExtensionFacts<'_>) -> Result<(), String> {
    let subject_empty = tbs.subject().iter_attributes().next().is_none();
    if subject_empty && role != CertRole::EndEntity {
        return Err("a CA certificate has an empty subject".into());
    }
    match (subject_empty, ext.san_critical) {
        (true, Some(false)) => Err(format!("{who} has an empty subject but a non-critical subjectAltName")),
        (true, None) => Err(format!("{who} has an empty subject and no subjectAltName")),
        (false, Some(true)) => Err(format!("{who} has a subject but a critical subjectAltName")),
        _ => Ok(()),
    }
}
