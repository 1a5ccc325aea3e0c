//! The signature time-stamp of an act (JAdES B-T, ETSI TS 119 182-1 §5.3.4): the one function
//! that turns an act's JWS into a time-stamped one.
//!
//! The token covers the JWS signature value, so it proves the signature existed at the TSA's
//! time; it goes into the unprotected header (`header.etsiU[sigTst]`), which the signature
//! does not cover, so the JWS stays the very one the signer made. The token is checked before
//! it is kept: a TSA that hands out a token carimbo would refuse later stops the act now.

use serde_json::Value;

use crate::signing::SignatureVerifier;
use crate::signing::timestamp::{TimeStampError, sig_tst_header, sig_tst_input};
use crate::tsa::TimeStamping;

/// Add a signature time-stamp to `jws` (`{"payload"?, "protected", "signature"}` as an act
/// records it). With time-stamping off the JWS is left as it is (B-B). On an error nothing
/// is changed.
pub fn stamp_act_signature(stamping: &TimeStamping, verifier: &SignatureVerifier, jws: &mut Value) -> Result<(), TimeStampError> {
    let Some(signature) = jws.get("signature").and_then(Value::as_str) else {
        return Err(TimeStampError::Unaccepted("the act's JWS has no signature value to stamp".into()));
    };
    let input = sig_tst_input(signature).to_vec();
    let Some(token) = stamping.stamp(&input)? else {
        return Ok(());
    };
    if stamping.checks_each_token() {
        verifier.timestamps().verify(&token, &input).map_err(|f| TimeStampError::Unaccepted(format!("{} [{}]", f.detail, f.code)))?;
    }
    if let Some(obj) = jws.as_object_mut() {
        obj.insert("header".into(), sig_tst_header(&token));
    }
    Ok(())
}
