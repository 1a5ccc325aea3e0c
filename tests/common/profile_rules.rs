//! The rules of carimbo's signing profile that refuse certificate paths RFC 5280 would
//! accept, in the words docs/signatures.md ("What the profile refuses") uses. Both
//! conformance runners (NIST PKITS, x509-limbo) print the rule for every valid case carimbo
//! refuses, and fail on a refusal no rule explains.
#![allow(dead_code)] // each runner uses the rules its corpus meets

pub const R_NAMES: &str = "names chain byte for byte (webpki): no RFC 5280 §7.1 folding of case, spaces or string types";
pub const R_UTC: &str = "webpki refuses a UTCTime before 2000 (1950 notBefore)";
pub const R_UID: &str = "certificates with issuer/subject unique identifiers (deprecated, RFC 5280 §4.1.2.8) are refused";
pub const R_CA_LEAF: &str = "a signing certificate may not be a CA certificate";
pub const R_BC: &str = "a CA certificate's basicConstraints must be critical (RFC 5280 §4.2.1.9)";
pub const R_PC: &str = "policyConstraints must be critical (RFC 5280 §4.2.1.11)";
pub const R_POLICY: &str = "critical policy extensions (policyConstraints, policyMappings, inhibitAnyPolicy) are refused: the profile does no policy processing, and an unprocessed critical extension invalidates a certificate (RFC 5280 §4.2)";
pub const R_SELF_ISSUED: &str = "webpki counts self-issued intermediates toward path length and name constraints";
pub const R_NC: &str = "name constraints other than DNS and IP (directoryName, rfc822Name, URI) are not evaluated, so the path fails closed";
pub const R_NC_CRITICAL: &str = "name constraints must be critical (RFC 5280 §4.2.1.10)";
pub const R_ANCHOR_AKI: &str = "a trust anchor that is not self-issued must carry an authority key identifier (RFC 5280 §4.2.1.1)";
