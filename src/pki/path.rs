//! Certificate path validation for document signatures, at the signing time.
//!
//! The chain itself (signatures, names, basic constraints, validity, name constraints, EKU)
//! is checked by rustls-webpki's `verify_for_usage`, a vetted validator, run at the signing
//! time rather than now. carimbo then adds what a TLS validator leaves out and a document
//! signature needs:
//! - the crypto policy (no SHA-1, RSA ≥ 2048 bits: ETSI TS 119 312);
//! - key usage: the signing certificate must have digitalSignature or nonRepudiation, CA
//!   certificates keyCertSign when they carry the extension (RFC 5280 §4.2.1.3);
//! - revocation against the revocation *date* (see `crl`);
//! - the facts the `qualified` level needs (QC statements, policies, accreditation).
//!
//! The work is split in two so a verifier can cache it: `analyse` does everything that does
//! not depend on the time (path building, parsing, CRL look-ups) and `evaluate` judges one
//! signing time against that analysis in microseconds.

use std::cell::RefCell;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter};

use super::cert::{CertFacts, KeyUsageBits, check_key_strength, refused_signature_algorithm};
use super::crl::{CrlLookup, CrlSet, CrlSigner};
use super::profile::{CertRole, violation};
use super::report::{ChainElement, Indication, SubIndication};
use super::trust::TrustList;

/// Most certificates carimbo will look at for one signature: a real chain has 2–4.
pub const MAX_CHAIN_CERTIFICATES: usize = 10;

/// The time a signature is judged at, and whether it is proven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigningTime {
    pub at: DateTime<Utc>,
    /// `true` for a time the verifier trusts (the server's recorded event time, `--at`);
    /// `false` for the signer's own claim.
    pub trusted: bool,
}

/// How CRLs are required.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationRule {
    /// Every certificate below the anchor needs a CRL that covers the signing time; without
    /// one the result is INDETERMINATE / TRY_LATER. carimbo's rule for signatures.
    Required,
    /// Check the CRLs that exist; a certificate whose issuer has no CRL at all is not an
    /// error, but one whose issuer's CRLs are all unusable is (the x509-limbo runner).
    IfAvailable,
}

/// Which extended key usages a signing certificate may carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EkuRule {
    /// No EKU, or one of: documentSigning (RFC 9336), emailProtection, anyExtendedKeyUsage,
    /// Microsoft document signing, Adobe authentic documents.
    DocumentSigning,
    /// No EKU, or one that lists this OID (DER contents), as webpki does for TLS.
    RequiredIfPresent(Vec<u8>),
}

/// The rules a chain is validated under.
#[derive(Clone, Debug)]
pub struct ValidationPolicy {
    pub eku: EkuRule,
    /// Require the key-usage extension on the signing certificate (with a signing bit).
    pub require_key_usage: bool,
    pub revocation: RevocationRule,
}

impl ValidationPolicy {
    /// carimbo's policy for document signatures.
    pub fn document_signing() -> ValidationPolicy {
        ValidationPolicy { eku: EkuRule::DocumentSigning, require_key_usage: true, revocation: RevocationRule::Required }
    }
}

/// Why a chain was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainFailure {
    pub indication: Indication,
    pub sub: SubIndication,
    pub detail: String,
}

impl ChainFailure {
    fn new(indication: Indication, sub: SubIndication, detail: impl Into<String>) -> Self {
        ChainFailure { indication, sub, detail: detail.into() }
    }
}

/// One certificate of a validated path with its revocation information.
#[derive(Clone, Debug)]
pub struct PathElement {
    pub facts: CertFacts,
    pub trust_anchor: bool,
    /// `None` for the trust anchor (not checked), else the CRL look-up or why it failed.
    pub revocation: Option<Result<CrlLookup, String>>,
}

/// The time-independent result of validating a chain: the path found, leaf first.
#[derive(Clone, Debug)]
pub struct ValidatedChain {
    pub path: Vec<PathElement>,
    /// The period in which every certificate of the path is within its validity: the path
    /// found stays valid for any signing time inside it.
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

impl ValidatedChain {
    pub fn leaf(&self) -> &CertFacts {
        &self.path[0].facts
    }

    /// The certificate that issued the leaf (an intermediate, or the anchor).
    pub fn issuer(&self) -> Option<&CertFacts> {
        self.path.get(1).map(|e| &e.facts)
    }

    pub fn elements(&self) -> Vec<ChainElement> {
        self.path
            .iter()
            .map(|e| ChainElement {
                subject: e.facts.subject.clone(),
                issuer: e.facts.issuer.clone(),
                serial: e.facts.serial_hex(),
                sha256: e.facts.sha256_hex(),
                not_before: e.facts.not_before,
                not_after: e.facts.not_after,
                trust_anchor: e.trust_anchor,
            })
            .collect()
    }
}

/// What `evaluate` found for one signing time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainVerdict {
    /// `true` when the chain backs a qualified signature at that time.
    pub qualified: bool,
    /// Why it is not qualified, when it is not.
    pub not_qualified_because: Vec<String>,
    pub notes: Vec<String>,
    /// The trust-list member that states every certificate it issues is for a key on a
    /// qualified signature-creation device, when the issuer is one at that time.
    pub qscd_by_trust_list: Option<String>,
}

/// The signature algorithms webpki may use for certificate and CRL signatures. SHA-1 is not
/// among them (ring does not offer it for X.509), and RSA starts at 2048 bits.
static ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

// DER contents of the EKU OIDs accepted for document signing.
const EKU_DOCUMENT_SIGNING: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 36]; // 1.3.6.1.5.5.7.3.36
const EKU_EMAIL_PROTECTION: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 4]; // 1.3.6.1.5.5.7.3.4
const EKU_ANY: &[u8] = &[0x55, 0x1d, 0x25, 0x00]; // 2.5.29.37.0
const EKU_MS_DOCUMENT_SIGNING: &[u8] = &[0x2b, 6, 1, 4, 1, 0x82, 0x37, 10, 3, 12]; // 1.3.6.1.4.1.311.10.3.12
const EKU_ADOBE_AUTHENTIC_DOCUMENTS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x2f, 1, 1, 5]; // 1.2.840.113583.1.1.5

/// Served to webpki for every certificate of the path (webpki applies EKU chaining).
struct EkuCheck<'a>(&'a EkuRule);

impl ExtendedKeyUsageValidator for EkuCheck<'_> {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let accepted: Vec<&[u8]> = match self.0 {
            EkuRule::DocumentSigning => vec![EKU_DOCUMENT_SIGNING, EKU_EMAIL_PROTECTION, EKU_ANY, EKU_MS_DOCUMENT_SIGNING, EKU_ADOBE_AUTHENTIC_DOCUMENTS],
            EkuRule::RequiredIfPresent(oid) => vec![oid.as_slice()],
        };
        let mut empty = true;
        for id in iter {
            let id = id?;
            empty = false;
            if accepted.iter().any(|oid| KeyPurposeId::new(oid) == id) {
                return Ok(());
            }
        }
        if empty {
            Ok(())
        } else {
            #[allow(deprecated)] // the context variant cannot be built outside webpki
            Err(webpki::Error::RequiredEkuNotFound)
        }
    }
}

/// Validates chains against one trust list, one CRL set and one policy.
#[derive(Clone, Debug)]
pub struct CertificateValidator {
    pub trust: TrustList,
    pub crls: CrlSet,
    pub policy: ValidationPolicy,
}

impl CertificateValidator {
    pub fn new(trust: TrustList, crls: CrlSet, policy: ValidationPolicy) -> Self {
        CertificateValidator { trust, crls, policy }
    }

    /// Find and check a path from `chain[0]` (the signing certificate) to a trust anchor,
    /// valid at `t`. Everything time-independent is kept in the result.
    pub fn analyse(&self, chain: &[CertificateDer<'_>], t: DateTime<Utc>) -> Result<ValidatedChain, ChainFailure> {
        let (leaf_der, leaf) = preflight(chain)?;
        let intermediates = &chain[1..];
        let ee = EndEntityCert::try_from(leaf_der)
            .map_err(|e| ChainFailure::new(Indication::TotalFailed, SubIndication::FormatFailure, format!("signing certificate not accepted: {e}")))?;
        let path = self.build_path(&ee, leaf_der, intermediates, t)?;
        self.leaf_key_usage_rule(&leaf)?;
        let mut facts_path = vec![(leaf, false)];
        for cert in path.intermediate_certificates() {
            let facts = CertFacts::from_der(cert.der().as_ref()).map_err(|e| ChainFailure::new(Indication::TotalFailed, SubIndication::FormatFailure, e))?;
            facts_path.push((facts, false));
        }
        let anchor_facts = self.trust.anchor_facts(path.anchor()).cloned();
        let anchor_spki = webpki::spki_for_anchor(path.anchor());
        let mut keys = crl_keys(&facts_path, anchor_facts.as_ref(), anchor_spki.as_ref());
        keys.extend(self.delegated_crl_signers(&facts_path, &keys, intermediates, t));
        let mut elements = Vec::with_capacity(facts_path.len() + 1);
        for (i, (facts, _)) in facts_path.iter().enumerate() {
            let signers = crl_signers(facts, Some(i), i + 1, &keys);
            elements.push(PathElement { facts: facts.clone(), trust_anchor: false, revocation: Some(self.crls.lookup(facts, &signers)) });
        }
        if let Some(anchor) = anchor_facts {
            elements.push(PathElement { facts: anchor, trust_anchor: true, revocation: None });
        }
        // The anchor's own validity counts too (RFC 5280 leaves it to the relying party; an
        // expired root is no longer maintained by its certification entity).
        let valid_from = elements.iter().map(|e| e.facts.not_before).max().unwrap_or(t);
        let valid_until = elements.iter().map(|e| e.facts.not_after).min().unwrap_or(t);
        Ok(ValidatedChain { path: elements, valid_from, valid_until })
    }

    /// webpki's path search from the signing certificate through `intermediates` to an anchor
    /// of the trust list at `t`, with carimbo's path-dependent rules (profile, key usage of
    /// CAs, key strength, the anchor's own profile) checked inside the search, so webpki can
    /// try another path when one fails them; the reason of a refused path is kept to report.
    fn build_path<'p>(
        &'p self,
        ee: &'p EndEntityCert<'p>,
        leaf_der: &CertificateDer<'_>,
        intermediates: &'p [CertificateDer<'p>],
        t: DateTime<Utc>,
    ) -> Result<webpki::VerifiedPath<'p>, ChainFailure> {
        use Indication::*;
        use SubIndication::*;
        let constraint_failure: RefCell<Option<ChainFailure>> = RefCell::new(None);
        let stash = |failure: ChainFailure| {
            *constraint_failure.borrow_mut() = Some(failure);
        };
        let check_path = |path: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
            if let Some(why) = violation(leaf_der.as_ref(), CertRole::EndEntity) {
                stash(ChainFailure::new(Indeterminate, ChainConstraintsFailure, why));
                return Err(webpki::Error::BadDer);
            }
            for cert in path.intermediate_certificates() {
                let facts = match CertFacts::from_der(cert.der().as_ref()) {
                    Ok(f) => f,
                    Err(e) => {
                        stash(ChainFailure::new(TotalFailed, FormatFailure, e));
                        return Err(webpki::Error::BadDer);
                    }
                };
                if let Some(why) = violation(cert.der().as_ref(), CertRole::Intermediate) {
                    stash(ChainFailure::new(Indeterminate, ChainConstraintsFailure, why));
                    return Err(webpki::Error::BadDer);
                }
                if facts.key_usage.is_some_and(|ku| !ku.key_cert_sign) {
                    stash(ChainFailure::new(
                        Indeterminate,
                        ChainConstraintsFailure,
                        format!("CA certificate `{}` lacks the keyCertSign key usage", facts.subject),
                    ));
                    return Err(webpki::Error::CaUsedAsEndEntity);
                }
                if let Err(e) = check_key_strength(&facts.key) {
                    stash(ChainFailure::new(Indeterminate, CryptoConstraintsFailure, format!("CA certificate `{}`: {e}", facts.subject)));
                    return Err(webpki::Error::BadDer);
                }
            }
            if let Some(why) = self.trust.anchor_violation(path.anchor()) {
                stash(ChainFailure::new(Indeterminate, ChainConstraintsFailure, format!("trust anchor not usable: {why}")));
                return Err(webpki::Error::BadDer);
            }
            Ok(())
        };
        ee.verify_for_usage(ALGORITHMS, self.trust.anchors(), intermediates, unix_time(t), EkuCheck(&self.policy.eku), None, Some(&check_path))
            .map_err(|e| constraint_failure.borrow_mut().take().unwrap_or_else(|| map_webpki_error(&e)))
    }

    /// The signing certificate's key usage (RFC 5280 §4.2.1.3): a document signature needs
    /// digitalSignature or nonRepudiation (contentCommitment).
    fn leaf_key_usage_rule(&self, leaf: &CertFacts) -> Result<(), ChainFailure> {
        use Indication::*;
        use SubIndication::*;
        match leaf.key_usage {
            Some(ku) if ku.digital_signature || ku.non_repudiation => {}
            Some(_) => {
                return Err(ChainFailure::new(
                    Indeterminate,
                    ChainConstraintsFailure,
                    "the signing certificate has neither the digitalSignature nor the nonRepudiation key usage",
                ));
            }
            None if self.policy.require_key_usage => {
                return Err(ChainFailure::new(
                    Indeterminate,
                    ChainConstraintsFailure,
                    "the signing certificate has no key-usage extension, so it is not marked for signing",
                ));
            }
            None => {}
        }

        Ok(())
    }

    /// Judge signing time `t` against an analysed chain: validity, revocation by date, and
    /// the qualified-level facts. `Err(None)`-like cases do not exist: a time outside the
    /// chain's validity gives EXPIRED / NOT_YET_VALID naming the certificate.
    pub fn evaluate(&self, chain: &ValidatedChain, t: SigningTime) -> Result<ChainVerdict, ChainFailure> {
        let mut verdict = ChainVerdict::default();
        within_validity(chain, t)?;
        for (i, e) in chain.path.iter().enumerate() {
            self.revocation_at(e, i == 0, t, &mut verdict)?;
        }
        self.assess_qualified(chain, t.at, &mut verdict);
        Ok(verdict)
    }

    /// One certificate's revocation status at `t`: revoked before it fails; revoked after a
    /// proven time is a note; an unknown status or a CRL that does not cover `t` is TRY_LATER
    /// where the policy requires revocation data.
    fn revocation_at(&self, e: &PathElement, is_leaf: bool, t: SigningTime, verdict: &mut ChainVerdict) -> Result<(), ChainFailure> {
        use Indication::*;
        use SubIndication::*;
        match &e.revocation {
            None => {}
            Some(Err(reason)) => match self.policy.revocation {
                RevocationRule::Required => {
                    return Err(ChainFailure::new(Indeterminate, TryLater, format!("revocation status of `{}` is unknown: {reason}", e.facts.subject)));
                }
                RevocationRule::IfAvailable if !self.crls.has_issuer(&e.facts.issuer_raw) => {}
                RevocationRule::IfAvailable => {
                    return Err(ChainFailure::new(Indeterminate, TryLater, format!("revocation status of `{}` is unknown: {reason}", e.facts.subject)));
                }
            },
            Some(Ok(lookup)) => {
                if let Some(entry) = &lookup.entry {
                    let who = if is_leaf { "the signing certificate".to_string() } else { format!("CA certificate `{}`", e.facts.subject) };
                    if entry.date <= t.at {
                        return Err(ChainFailure::new(
                            TotalFailed,
                            Revoked,
                            format!(
                                "{who} was revoked on {}{}, at or before the signing time {}",
                                entry.date.to_rfc3339(),
                                entry.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default(),
                                t.at.to_rfc3339()
                            ),
                        ));
                    }
                    if !t.trusted {
                        return Err(ChainFailure::new(
                            Indeterminate,
                            if is_leaf { RevokedNoPoe } else { RevokedCaNoPoe },
                            format!(
                                "{who} was revoked on {}, after the claimed signing time {}, which is not proven",
                                entry.date.to_rfc3339(),
                                t.at.to_rfc3339()
                            ),
                        ));
                    }
                    verdict.notes.push(format!(
                        "{who} was revoked on {}, after the proven signing time {}; the signature stays valid",
                        entry.date.to_rfc3339(),
                        t.at.to_rfc3339()
                    ));
                } else if !lookup.covers(t.at) && self.policy.revocation == RevocationRule::Required {
                    return Err(ChainFailure::new(
                        Indeterminate,
                        TryLater,
                        format!(
                            "the newest CRL for `{}` was issued {} with nextUpdate {}, so it does not cover the signing time {}",
                            e.facts.subject,
                            lookup.crl_this_update.to_rfc3339(),
                            lookup.crl_next_update.map(|n| n.to_rfc3339()).unwrap_or_else(|| "none".into()),
                            t.at.to_rfc3339()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Law 5/2005 style: qualified certificate (QcCompliance or a policy the trust list
    /// names), nonRepudiation, and an issuer accredited at the signing time.
    fn assess_qualified(&self, chain: &ValidatedChain, at: DateTime<Utc>, v: &mut ChainVerdict) {
        let leaf = chain.leaf();
        let entity = chain.issuer().and_then(|issuer| self.trust.entity_by_spki(&issuer.spki));
        let mut why = Vec::new();
        match entity {
            None => why.push("its issuer is not a certification entity on the trust list".into()),
            Some(entity) => {
                if entity.qscd_at(at) {
                    v.qscd_by_trust_list = Some(entity.entry.id.clone());
                }
                if !entity.accredited_at(at) {
                    why.push(format!("its issuer `{}` was not accredited at {}", entity.entry.id, at.to_rfc3339()));
                }
                let by_policy = leaf.policies.iter().any(|p| entity.qualified_policy_at(p, at));
                if !(leaf.qc_compliance || by_policy) {
                    why.push("the certificate is not qualified (no QcCompliance statement nor a qualified policy OID)".into());
                }
            }
        }
        if !leaf.key_usage.is_some_and(|ku| ku.non_repudiation) {
            why.push("the certificate lacks the nonRepudiation key usage".into());
        }
        v.qualified = why.is_empty();
        v.not_qualified_because = why;
    }

    /// `analyse` then `evaluate`, with no caching.
    pub fn validate(&self, chain: &[CertificateDer<'_>], t: SigningTime) -> Result<(ValidatedChain, ChainVerdict), ChainFailure> {
        let analysed = self.analyse(chain, t.at)?;
        let verdict = self.evaluate(&analysed, t)?;
        Ok((analysed, verdict))
    }
}

/// The signing certificate of `chain`, read and checked before any path is searched: there is
/// one, the chain is not longer than carimbo looks at, it parses, and its signature algorithm
/// and key meet the crypto policy.
fn preflight<'c>(chain: &'c [CertificateDer<'c>]) -> Result<(&'c CertificateDer<'c>, CertFacts), ChainFailure> {
    use Indication::*;
    use SubIndication::*;
    let Some(leaf_der) = chain.first() else {
        return Err(ChainFailure::new(Indeterminate, NoSigningCertificateFound, "no signing certificate was given"));
    };
    if chain.len() > MAX_CHAIN_CERTIFICATES {
        return Err(ChainFailure::new(
            TotalFailed,
            FormatFailure,
            format!("{} certificates given; at most {MAX_CHAIN_CERTIFICATES} are examined", chain.len()),
        ));
    }
    let leaf = CertFacts::from_der(leaf_der).map_err(|e| ChainFailure::new(TotalFailed, FormatFailure, e))?;
    if let Some(alg) = refused_signature_algorithm(&leaf.signature_algorithm) {
        return Err(ChainFailure::new(Indeterminate, CryptoConstraintsFailure, format!("the signing certificate is signed with {alg}, which is refused")));
    }
    check_key_strength(&leaf.key).map_err(|e| ChainFailure::new(Indeterminate, CryptoConstraintsFailure, e))?;
    Ok((leaf_der, leaf))
}

/// Every certificate of the path is within its validity at `t` (EXPIRED / NOT_YET_VALID
/// naming the first that is not).
fn within_validity(chain: &ValidatedChain, t: SigningTime) -> Result<(), ChainFailure> {
    use Indication::*;
    use SubIndication::*;
    for e in &chain.path {
        if t.at < e.facts.not_before {
            return Err(ChainFailure::new(
                TotalFailed,
                NotYetValid,
                format!("certificate `{}` is valid from {}, after the signing time {}", e.facts.subject, e.facts.not_before.to_rfc3339(), t.at.to_rfc3339()),
            ));
        }
        if t.at > e.facts.not_after {
            return Err(ChainFailure::new(
                TotalFailed,
                Expired,
                format!("certificate `{}` expired on {}, before the signing time {}", e.facts.subject, e.facts.not_after.to_rfc3339(), t.at.to_rfc3339()),
            ));
        }
    }
    Ok(())
}

/// A key that may sign CRLs, with the subject name of its certificate.
#[derive(Clone, Debug)]
struct CrlKey {
    name: Vec<u8>,
    spki: Vec<u8>,
    key_usage: Option<KeyUsageBits>,
}

impl CrlKey {
    fn signer(&self) -> CrlSigner<'_> {
        CrlSigner { name: &self.name, spki: &self.spki, key_usage: self.key_usage }
    }
}

/// The keys of a validated path, leaf first, then the anchor's: index `i + 1` is the issuer
/// of element `i`.
fn crl_keys(facts_path: &[(CertFacts, bool)], anchor: Option<&CertFacts>, anchor_spki: &[u8]) -> Vec<CrlKey> {
    let mut keys: Vec<CrlKey> = facts_path.iter().map(|(f, _)| CrlKey { name: f.subject_raw.clone(), spki: f.spki.clone(), key_usage: f.key_usage }).collect();
    // By construction the top certificate's issuer is the anchor's name.
    let anchor_name = anchor.map(|a| a.subject_raw.clone()).or_else(|| facts_path.last().map(|(f, _)| f.issuer_raw.clone())).unwrap_or_default();
    keys.push(CrlKey { name: anchor_name, spki: anchor_spki.to_vec(), key_usage: anchor.and_then(|a| a.key_usage) });
    keys
}

/// The keys that may have signed CRLs answering for `facts`: its issuer's key first
/// (`keys[issuer]`), then every other key named like the issuer (a key rollover) or like a
/// CRL issuer its distribution points delegate to. A certificate's own key never vouches
/// for it under its issuer's name; under a delegated CRL issuer's name it may (a CRL issuer
/// that answers for its own certificate, as RFC 5280 allows).
fn crl_signers<'k>(facts: &CertFacts, own: Option<usize>, issuer: usize, keys: &'k [CrlKey]) -> Vec<CrlSigner<'k>> {
    let names = CrlSet::crl_issuers_for(facts);
    let mut out: Vec<CrlSigner<'k>> = keys.get(issuer).map(CrlKey::signer).into_iter().collect();
    for (j, key) in keys.iter().enumerate() {
        if j == issuer || (Some(j) == own && key.name == facts.issuer_raw) {
            continue;
        }
        if names.contains(&key.name.as_slice()) && out.iter().all(|s| s.spki != key.spki.as_slice()) {
            out.push(key.signer());
        }
    }
    out
}

impl CertificateValidator {
    /// CRL signers that are not on the validated path (RFC 5280 §6.3.3 (f)): certificates
    /// given with the chain whose subject is a name some certificate of the path needs CRLs
    /// from (its issuer's, or a cRLIssuer of its distribution points), with cRLSign, issued
    /// by a key of the validated path or by its anchor (so they chain to the same anchor),
    /// valid at `t`, in the crypto policy, and themselves not listed on a usable CRL.
    ///
    /// carimbo checks the signer's one-certificate extension of the validated path itself
    /// rather than a second webpki path search, because webpki validates only end-entity
    /// certificates and a CRL signer is often a CA certificate (a CA signing an indirect
    /// CRL); a signer further from the path is not used, so the status stays unknown.
    fn delegated_crl_signers(&self, facts_path: &[(CertFacts, bool)], path_keys: &[CrlKey], given: &[CertificateDer<'_>], t: DateTime<Utc>) -> Vec<CrlKey> {
        let needed: Vec<&[u8]> = facts_path.iter().flat_map(|(f, _)| CrlSet::crl_issuers_for(f)).collect();
        let mut candidates: Vec<(CertFacts, usize)> = Vec::new();
        for der in given {
            let Ok(facts) = CertFacts::from_der(der.as_ref()) else {
                continue;
            };
            let on_path = path_keys.iter().any(|k| k.spki == facts.spki);
            if on_path
                || !needed.contains(&facts.subject_raw.as_slice())
                || facts.key_usage.is_some_and(|ku| !ku.crl_sign)
                || candidates.iter().any(|(c, _)| c.spki == facts.spki)
            {
                continue;
            }
            if let Some(issuer) = issued_by_path_key(der.as_ref(), &facts, path_keys, t) {
                candidates.push((facts, issuer));
            }
        }
        // Each candidate's own status, judged with the path's keys and the other candidates;
        // one found listed or unknown is dropped and the rest judged again without it.
        loop {
            let mut keys = path_keys.to_vec();
            keys.extend(candidates.iter().map(|(f, _)| CrlKey { name: f.subject_raw.clone(), spki: f.spki.clone(), key_usage: f.key_usage }));
            let unusable = candidates.iter().enumerate().position(|(n, (facts, issuer))| {
                let signers = crl_signers(facts, Some(path_keys.len() + n), *issuer, &keys);
                match self.crls.lookup(facts, &signers) {
                    Ok(found) => found.entry.is_some() || !found.covers(t),
                    Err(_) => true,
                }
            });
            match unusable {
                Some(n) => {
                    candidates.remove(n);
                }
                None => return keys.split_off(path_keys.len()),
            }
        }
    }
}

/// The index in `keys` of the key that issued `der` (named like its issuer, with keyCertSign
/// if it carries key usage, its signature verifying), when `der` is valid at `t` and meets the
/// crypto policy.
fn issued_by_path_key(der: &[u8], facts: &CertFacts, keys: &[CrlKey], t: DateTime<Utc>) -> Option<usize> {
    if t < facts.not_before
        || t > facts.not_after
        || refused_signature_algorithm(&facts.signature_algorithm).is_some()
        || check_key_strength(&facts.key).is_err()
    {
        return None;
    }
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    keys.iter().position(|k| {
        k.name == facts.issuer_raw
            && k.key_usage.is_none_or(|ku| ku.key_cert_sign)
            && <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<_>>::from_der(&k.spki)
                .is_ok_and(|(_, spki)| cert.verify_signature(Some(&spki)).is_ok())
    })
}

fn unix_time(t: DateTime<Utc>) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(t.timestamp().max(0) as u64))
}

/// Translate webpki's reason into the ETSI vocabulary.
#[allow(deprecated)] // the unit variants are still returned by some webpki paths
fn map_webpki_error(e: &webpki::Error) -> ChainFailure {
    use Indication::*;
    use SubIndication::*;
    use webpki::Error as W;
    let (indication, sub, what) = match e {
        W::CertExpired { .. } => (TotalFailed, Expired, "a certificate of the chain had expired at the signing time"),
        W::CertNotValidYet { .. } => (TotalFailed, NotYetValid, "a certificate of the chain was not yet valid at the signing time"),
        W::UnknownIssuer => (Indeterminate, NoCertificateChainFound, "no path from the signing certificate to a trust anchor of the trust list"),
        W::InvalidSignatureForPublicKey => {
            (Indeterminate, NoCertificateChainFound, "a certificate's signature does not verify with its issuer's key (broken chain)")
        }
        W::MaximumSignatureChecksExceeded | W::MaximumPathBuildCallsExceeded | W::MaximumPathDepthExceeded => {
            (Indeterminate, NoCertificateChainFound, "path building gave up (too many candidate certificates or too deep)")
        }
        W::UnsupportedSignatureAlgorithm
        | W::UnsupportedSignatureAlgorithmContext(_)
        | W::UnsupportedSignatureAlgorithmForPublicKey
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => (
            Indeterminate,
            CryptoConstraintsFailure,
            "a certificate is signed with an algorithm or key that the crypto policy refuses (e.g. SHA-1, RSA under 2048 bits)",
        ),
        W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) | W::EmptyEkuExtension => {
            (Indeterminate, ChainConstraintsFailure, "a certificate's extended key usage does not allow document signing")
        }
        W::CaUsedAsEndEntity => (Indeterminate, ChainConstraintsFailure, "a CA certificate was used as signing certificate"),
        W::EndEntityUsedAsCa => (Indeterminate, ChainConstraintsFailure, "an end-entity certificate was used as a CA"),
        W::PathLenConstraintViolated => (Indeterminate, ChainConstraintsFailure, "a path-length constraint is violated"),
        W::NameConstraintViolation => (Indeterminate, ChainConstraintsFailure, "a name constraint is violated"),
        W::CertDistrusted => (Indeterminate, ChainConstraintsFailure, "a certificate of the chain is explicitly distrusted"),
        W::InvalidCertValidity => (TotalFailed, FormatFailure, "a certificate's validity period is malformed"),
        W::UnsupportedCriticalExtension => {
            (Indeterminate, ChainConstraintsFailure, "a certificate carries a critical extension the validator does not understand")
        }
        _ => (Indeterminate, ChainConstraintsFailure, "the certificate chain is not acceptable"),
    };
    ChainFailure::new(indication, sub, format!("{what} ({e})"))
}
