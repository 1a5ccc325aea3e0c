//! The `remote` provider step of `cases::acts`: a batch signed at a CSC v2 service with the
//! signer's one-time code. The structure is the HSM's (`Acts::act_batch`): the server builds
//! each act's JAdES header and payload (x5c from the credential's chain, `credentials/info`),
//! the code goes to `credentials/authorize` over exactly those hashes (one SAD for N, which is
//! the authorization), `signatures/signHash` signs them, and each act then goes through the same
//! verification, time-stamp and recording as every act. The record names the service, the
//! credential and the batch, never the code or the SAD.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{ActBody, ActError, Actor, Acts, BatchAct, BatchOutcome, BatchResult, DeviceInput, Expected, SignedPayload, signing_input_for};
use crate::accounts::RequestCodes;
use crate::cases::CaseView;
use crate::csc::protocol::Credential;
use crate::csc::remote::RemoteProvider;
use crate::signing::activation::{Activation, Provenance};

/// The signing inputs of a batch's items that can be signed, by position, in order.
type Inputs = BTreeMap<usize, DeviceInput>;
/// Why the other items cannot, by position.
type Refused = HashMap<usize, ActError>;

impl Acts<'_> {
    /// N acts signed at the CSC service with one one-time code: one `credentials/info` (the
    /// certificate for the whole batch), one `credentials/authorize` for the N hashes, one
    /// `signatures/signHash`, then each act on its own. A refusal by the service (wrong code,
    /// timeout, revoked credential) refuses the batch and changes nothing.
    pub(super) fn remote_batch(
        &self,
        remote: &RemoteProvider,
        credential_id: &str,
        actor: Actor,
        items: &[BatchAct],
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<BatchOutcome, ActError> {
        let credential = remote.client().credential(credential_id)?;
        let (inputs, mut refused) = self.remote_inputs(actor, items, &credential, now)?;
        let batch = format!("batch-{}", crate::accounts::random_token());
        let hashes = inputs.values().map(|i| i.hash.clone()).collect();
        let activation = Activation::new(crate::accounts::random_token(), actor.person, now, hashes, Some(batch))?;
        let digests: Vec<[u8; 32]> = inputs.values().map(|i| Sha256::digest(i.prepared.signing_input.as_bytes()).into()).collect();
        let signatures = remote_signatures(remote, &credential, code, &digests)?;
        let authorization = activation.authorization().clone();
        let provenance = Provenance::Remote { service: remote.base_url().to_string(), credential: credential.id.clone(), authorization: authorization.clone() };
        let mut signed: HashMap<usize, (DeviceInput, [u8; 64])> = inputs.into_iter().zip(signatures).map(|((i, input), sig)| (i, (input, sig))).collect();
        let mut results = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let outcome = match (refused.remove(&i), signed.remove(&i)) {
                (Some(e), _) => Err(e),
                (None, Some((input, sig))) => self.remote_item(actor, item, input, &sig, &provenance, now),
                (None, None) => Err(ActError::BadRequest(format!("item {i} of the batch was not signed"))),
            };
            results.push(BatchResult { case: item.case.clone(), outcome });
        }
        Ok(BatchOutcome { authorization, results })
    }

    /// One signature at the CSC service over `expected` at `now`: `credentials/authorize` with
    /// the signer's code over its one hash, then `signatures/signHash`.
    pub(super) fn remote_signed_once(
        &self,
        remote: &RemoteProvider,
        credential_id: &str,
        actor: Actor,
        expected: &Expected,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(SignedPayload, Provenance), ActError> {
        let credential = remote.client().credential(credential_id)?;
        let input = signing_input_for(actor, expected, &chain_of(&credential), now)?;
        let activation = Activation::new(crate::accounts::random_token(), actor.person, now, vec![input.hash.clone()], None)?;
        let digest: [u8; 32] = Sha256::digest(input.prepared.signing_input.as_bytes()).into();
        let signature = remote_signatures(remote, &credential, code, &[digest])?
            .into_iter()
            .next()
            .ok_or_else(|| ActError::BadRequest("the service made no signature".into()))?;
        let jws = input.prepared.finish(&signature);
        let signed = SignedPayload { payload: input.payload, signature: json!({"protected": jws.protected, "signature": jws.signature}) };
        let provenance =
            Provenance::Remote { service: remote.base_url().to_string(), credential: credential.id.clone(), authorization: activation.authorization().clone() };
        Ok((signed, provenance))
    }

    /// The signing input of each item that can be signed now, in order, and why the others
    /// cannot; `Err` when none can.
    fn remote_inputs(&self, actor: Actor, items: &[BatchAct], credential: &Credential, now: DateTime<Utc>) -> Result<(Inputs, Refused), ActError> {
        let chain = chain_of(credential);
        let mut inputs = BTreeMap::new();
        let mut refused = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            match self.batch_expected(actor, item, now).and_then(|expected| signing_input_for(actor, &expected, &chain, now)) {
                Ok(input) => {
                    inputs.insert(i, input);
                }
                Err(e) => {
                    refused.insert(i, e);
                }
            }
        }
        if inputs.is_empty() {
            let first = (0..items.len()).find_map(|i| refused.remove(&i));
            return Err(first.unwrap_or(crate::signing::activation::ActivationError::BadSize(0).into()));
        }
        Ok((inputs, refused))
    }

    /// One act of the batch with the signature the service made: the same act path as every
    /// other (verification over this act's payload, time-stamp, recording).
    fn remote_item(
        &self,
        actor: Actor,
        item: &BatchAct,
        input: DeviceInput,
        signature: &[u8; 64],
        provenance: &Provenance,
        now: DateTime<Utc>,
    ) -> Result<CaseView, ActError> {
        let jws = input.prepared.finish(signature);
        let signed = SignedPayload { payload: input.payload, signature: json!({"protected": jws.protected, "signature": jws.signature}) };
        let body = ActBody {
            step: item.step.clone(),
            action: item.action,
            comment: item.comment.clone(),
            signed: None,
            totp: None,
            idempotency_key: None,
            authorization: None,
        };
        self.act_with(actor, &item.case, &body, &RequestCodes::default(), now, Some((signed, provenance.clone())))
    }
}

/// One `credentials/authorize` with the signer's code over `digests`, one `signatures/signHash`.
fn remote_signatures(remote: &RemoteProvider, credential: &Credential, code: &str, digests: &[[u8; 32]]) -> Result<Vec<[u8; 64]>, ActError> {
    // `sign_with` checks the SAD covers every digest and that one signature came back for each.
    let sad = remote.client().authorize(credential, code, digests)?;
    Ok(remote.client().sign_with(sad, digests)?)
}

/// The credential's certificate chain as the JAdES header's x5c takes it (leaf first).
fn chain_of(credential: &Credential) -> Vec<rustls_pki_types::CertificateDer<'_>> {
    credential.chain.iter().map(|c| rustls_pki_types::CertificateDer::from(c.as_slice())).collect()
}
