//! The PAdES seal of the printable record (ETSI EN 319 142-1, baseline B-T): a detached CMS
//! `SignedData` over the file's `/ByteRange` (everything but the signature's own `/Contents`),
//! signed by the service seal, with the signed attributes PAdES asks for (content-type,
//! message-digest, signing-certificate-v2; no signing-time, the time is in the dictionary's
//! `/M`) and, when time-stamping is on, a signature time-stamp (RFC 3161 token over the
//! signature value) as an unsigned attribute, from the same TSA that stamps the acts.
//!
//! The ASN.1 types are `cms`, `x509-cert` and `der`'s; the signature maths is ring's, as for
//! every other signature carimbo makes. The function is pure: the time-stamp comes in through
//! `stamp`.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos};
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;

use super::PdfError;
use super::document::{BYTE_RANGE_PLACEHOLDER, SIGNATURE_BYTES};
use crate::signing::timestamp::{EssCertIdV2, SigningCertificateV2, TimeStampError};

const ID_DATA: ObjectIdentifier = const_oid::db::rfc5911::ID_DATA;
const ID_SIGNED_DATA: ObjectIdentifier = const_oid::db::rfc5911::ID_SIGNED_DATA;
const ID_CONTENT_TYPE: ObjectIdentifier = const_oid::db::rfc5911::ID_CONTENT_TYPE;
const ID_MESSAGE_DIGEST: ObjectIdentifier = const_oid::db::rfc5911::ID_MESSAGE_DIGEST;
const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
/// id-aa-signatureTimeStampToken (RFC 3161 Appendix A).
const ID_AA_TIME_STAMP_TOKEN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");
const ID_SHA_256: ObjectIdentifier = const_oid::db::rfc5912::ID_SHA_256;
const ECDSA_WITH_SHA_256: ObjectIdentifier = const_oid::db::rfc5912::ECDSA_WITH_SHA_256;

/// Gives a time-stamp token over the bytes handed to it (RFC 3161, hashed with SHA-256), or
/// `None` when time-stamping is off.
pub type Stamp<'a> = &'a dyn Fn(&[u8]) -> Result<Option<Vec<u8>>, TimeStampError>;

/// The service seal's key and certificate chain, as CMS needs them.
pub struct PdfSeal {
    key: EcdsaKeyPair,
    certificate: Certificate,
    certificate_der: Vec<u8>,
    chain: Vec<Certificate>,
}

impl PdfSeal {
    /// The service seal's PKCS#8 PEM key (ECDSA P-256) and its PEM chain (own certificate first).
    pub fn from_pem(key_pem: &[u8], chain_pem: &[u8]) -> Result<PdfSeal, PdfError> {
        let bad = |r: String| PdfError::SealKey(r);
        let key_der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(key_pem).map_err(|e| bad(format!("not a PKCS#8 `PRIVATE KEY` PEM: {e}")))?;
        let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, key_der.secret_pkcs8_der(), &SystemRandom::new())
            .map_err(|e| bad(format!("not an ECDSA P-256 key: {e}")))?;
        let certs = crate::pki::cert::parse_pem_certificates(chain_pem, "service certificate").map_err(|e| bad(e.to_string()))?;
        let facts = crate::pki::cert::CertFacts::from_der(&certs[0]).map_err(bad)?;
        if facts.public_key != key.public_key().as_ref() {
            return Err(bad(format!("the key is not the key of certificate `{}`", facts.subject)));
        }
        let parse = |c: &rustls_pki_types::CertificateDer<'_>| Certificate::from_der(c.as_ref()).map_err(|e| bad(e.to_string()));
        Ok(PdfSeal {
            key,
            certificate: parse(&certs[0])?,
            certificate_der: certs[0].as_ref().to_vec(),
            chain: certs[1..].iter().map(parse).collect::<Result<_, _>>()?,
        })
    }
}

/// Where the placeholders sit in the unsealed file.
struct Placeholders {
    byte_range: usize,
    /// The `<` opening the hex string, and the byte after its `>`.
    contents: (usize, usize),
}

fn find(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    hay.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect()
}

fn placeholders(pdf: &[u8]) -> Result<Placeholders, PdfError> {
    let range = find(pdf, format!("/ByteRange {BYTE_RANGE_PLACEHOLDER}").as_bytes());
    let contents_hex = format!("/Contents <{}>", "FF".repeat(SIGNATURE_BYTES));
    let contents = find(pdf, contents_hex.as_bytes());
    match (range.as_slice(), contents.as_slice()) {
        ([r], [c]) => {
            let start = c + "/Contents ".len();
            Ok(Placeholders { byte_range: r + "/ByteRange ".len(), contents: (start, start + 2 + 2 * SIGNATURE_BYTES) })
        }
        _ => Err(PdfError::Seal(format!("the unsealed file holds {} byte-range and {} contents placeholders, not one each", range.len(), contents.len()))),
    }
}

/// Seals `pdf` (as `document::assemble` wrote it): fills in `/ByteRange`, signs it and puts the
/// CMS signature into `/Contents`. `stamp` gives a time-stamp token over the bytes it is
/// handed, or `None` when time-stamping is off (the seal is then B-B).
pub fn seal(mut pdf: Vec<u8>, key: &PdfSeal, stamp: Stamp) -> Result<Vec<u8>, PdfError> {
    let p = placeholders(&pdf)?;
    let (a, b) = p.contents;
    let range = format!("[0 {a:010} {b:010} {:010}]", pdf.len() - b);
    if range.len() != BYTE_RANGE_PLACEHOLDER.len() {
        return Err(PdfError::Seal(format!("the file is too large to seal ({} bytes)", pdf.len())));
    }
    pdf[p.byte_range..p.byte_range + range.len()].copy_from_slice(range.as_bytes());
    let mut h = Sha256::new();
    h.update(&pdf[..a]);
    h.update(&pdf[b..]);
    let digest = h.finalize().to_vec();
    let cms = signed_data(key, &digest, stamp)?;
    if cms.len() > SIGNATURE_BYTES {
        return Err(PdfError::Seal(format!("the signature takes {} bytes, more than the {SIGNATURE_BYTES} reserved", cms.len())));
    }
    // The DER signature, then zeros to the reserved width (ISO 32000-1 §12.8.1).
    let mut hex = hex::encode_upper(&cms).into_bytes();
    hex.resize(2 * SIGNATURE_BYTES, b'0');
    pdf[a + 1..b - 1].copy_from_slice(&hex);
    Ok(pdf)
}

fn enc(e: der::Error) -> PdfError {
    PdfError::Seal(format!("CMS encoding: {e}"))
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, PdfError> {
    Ok(Attribute { oid, values: SetOfVec::try_from(vec![value]).map_err(enc)? })
}

fn sha256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: ID_SHA_256, parameters: None }
}

/// The detached CMS SignedData over a message with SHA-256 `digest`.
fn signed_data(key: &PdfSeal, digest: &[u8], stamp: Stamp) -> Result<Vec<u8>, PdfError> {
    let signing_certificate = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: None,
            cert_hash: OctetString::new(Sha256::digest(&key.certificate_der).to_vec()).map_err(enc)?,
            issuer_serial: None,
        }],
        policies: None,
    };
    let signed_attrs = SetOfVec::try_from(vec![
        attribute(ID_CONTENT_TYPE, Any::encode_from(&ID_DATA).map_err(enc)?)?,
        attribute(ID_MESSAGE_DIGEST, Any::encode_from(&OctetString::new(digest.to_vec()).map_err(enc)?).map_err(enc)?)?,
        attribute(ID_AA_SIGNING_CERTIFICATE_V2, Any::encode_from(&signing_certificate).map_err(enc)?)?,
    ])
    .map_err(enc)?;
    let to_sign = signed_attrs.to_der().map_err(enc)?;
    let signature = key
        .key
        .sign(&SystemRandom::new(), &to_sign)
        .map_err(|_| PdfError::Seal("the signing operation failed inside the crypto library".into()))?
        .as_ref()
        .to_vec();
    let unsigned_attrs = match stamp(&signature).map_err(PdfError::TimeStamp)? {
        Some(token) => Some(SetOfVec::try_from(vec![attribute(ID_AA_TIME_STAMP_TOKEN, Any::from_der(&token).map_err(enc)?)?]).map_err(enc)?),
        None => None,
    };
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: key.certificate.tbs_certificate.issuer.clone(),
            serial_number: key.certificate.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: sha256_algorithm(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: AlgorithmIdentifierOwned { oid: ECDSA_WITH_SHA_256, parameters: None },
        signature: OctetString::new(signature).map_err(enc)?,
        unsigned_attrs,
    };
    let mut certs = vec![CertificateChoices::Certificate(key.certificate.clone())];
    certs.extend(key.chain.iter().cloned().map(CertificateChoices::Certificate));
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![sha256_algorithm()]).map_err(enc)?,
        encap_content_info: EncapsulatedContentInfo { econtent_type: ID_DATA, econtent: None },
        certificates: Some(CertificateSet::try_from(certs).map_err(enc)?),
        crls: None,
        signer_infos: SignerInfos::try_from(vec![signer]).map_err(enc)?,
    };
    ContentInfo { content_type: ID_SIGNED_DATA, content: Any::encode_from(&signed).map_err(enc)? }.to_der().map_err(enc)
}
