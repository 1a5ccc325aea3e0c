//! Remote signing over the CSC API v2 (`carimbo::csc`) against a CSC test service whose keys
//! are in SoftHSM2 (`tests/common/csc_service.rs`): signatures verify against the credential's
//! certificate, and every refusal (wrong OTP, expired or spent SAD, hash outside the SAD,
//! revoked credential, a service too slow) has its code and yields no signature.
//! The tests that need the service print SKIPPED when libsofthsm2.so is absent.

use crate::csc_service::{self, CscService, Garble, ServiceOptions};
use carimbo::csc::CscError;
use carimbo::csc::client::{ClientSecret, CscClient, CscConfig, sign_hash, sign_hashes};
use carimbo::csc::protocol;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use sha2::{Digest, Sha256};
use std::time::Duration;

fn documents(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("{{\"act\":{i},\"case\":\"c-csc\"}}").into_bytes()).collect()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn verifies(cert_der: &[u8], document: &[u8], signature: &[u8; 64]) -> bool {
    let facts = carimbo::pki::cert::CertFacts::from_der(cert_der).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &facts.public_key).verify(document, signature).is_ok()
}

fn started(options: ServiceOptions) -> Option<(CscService, CscClient)> {
    let service = CscService::start(options)?;
    let client = CscClient::connect(service.config()).unwrap();
    Some((service, client))
}

#[test]
fn one_hash_signed_remotely_verifies_against_the_credentials_certificate() {
    let Some((service, client)) = started(ServiceOptions::default()) else { return };
    let leaf = service.add_credential("signer-1");
    assert_eq!(client.credentials_list().unwrap(), vec!["signer-1".to_string()]);
    let credential = client.credential("signer-1").unwrap();
    assert_eq!(credential.chain.len(), 2, "leaf and the qualified CA");
    assert_eq!(credential.chain[0], leaf);
    assert_eq!((credential.scal.as_str(), credential.otp_id.as_str()), ("2", "otp"));

    let doc = &documents(1)[0];
    let signature = sign_hash(&client, "signer-1", &service.otp("signer-1"), &sha256(doc)).unwrap();
    assert!(verifies(&leaf, doc, &signature));
    assert!(!verifies(&leaf, b"another document", &signature));
    assert_eq!((service.authorizations(), service.sign_calls(), service.signatures()), (1, 1, 1));
}

#[test]
fn a_batch_of_twenty_takes_one_authorization_and_every_signature_verifies() {
    for raw in [false, true] {
        let Some((service, client)) = started(ServiceOptions { raw_signatures: raw, ..Default::default() }) else { return };
        let leaf = service.add_credential("batch");
        let docs = documents(20);
        let hashes: Vec<[u8; 32]> = docs.iter().map(|d| sha256(d)).collect();
        let signatures = sign_hashes(&client, "batch", &service.otp("batch"), &hashes).unwrap();
        assert_eq!(signatures.len(), 20);
        for (i, (doc, sig)) in docs.iter().zip(&signatures).enumerate() {
            assert!(verifies(&leaf, doc, sig), "signature {i} (raw answers: {raw})");
        }
        // In the order asked: signature 0 is not signature 1's.
        assert!(!verifies(&leaf, &docs[1], &signatures[0]));
        assert_eq!((service.authorizations(), service.sign_calls(), service.signatures()), (1, 1, 20));
    }
}

#[test]
fn a_wrong_one_time_code_gives_e1472_and_no_signature() {
    let Some((service, client)) = started(ServiceOptions::default()) else { return };
    service.add_credential("otp");
    let e = sign_hash(&client, "otp", &service.wrong_otp("otp"), &sha256(b"doc")).unwrap_err();
    assert_eq!(e.code(), "CARIMBO-E1472", "{e}");
    assert!(matches!(e, CscError::WrongOtp { .. }));
    assert_eq!((service.authorizations(), service.sign_calls(), service.signatures()), (1, 0, 0));
    // A code that cannot be one is refused without asking.
    assert_eq!(sign_hash(&client, "otp", "12 34", &sha256(b"doc")).unwrap_err().code(), "CARIMBO-E1472");
    assert_eq!(service.authorizations(), 1);
}

#[test]
fn an_expired_sad_gives_e1473_here_and_at_the_service_and_signs_nothing() {
    let Some((service, client)) = started(ServiceOptions { sad_lifetime: Duration::from_secs(1), ..Default::default() }) else { return };
    service.add_credential("slow-signer");
    let credential = client.credential("slow-signer").unwrap();
    let hash = sha256(b"doc");
    let first = client.authorize(&credential, &service.otp("slow-signer"), &[hash]).unwrap();
    let second = client.authorize(&credential, &service.otp("slow-signer"), &[hash]).unwrap();
    std::thread::sleep(Duration::from_millis(1300));
    // carimbo knows the SAD's lifetime and does not send it.
    assert_eq!(client.sign_with(first, &[hash]).unwrap_err().code(), "CARIMBO-E1473");
    assert_eq!(service.sign_calls(), 0);
    // Sent anyway, the service refuses it the same way.
    let e = client.sign_hash_request(&protocol::sign_hash_request("slow-signer", second.value(), &[hash])).unwrap_err();
    assert_eq!(e.code(), "CARIMBO-E1473", "{e}");
    assert_eq!((service.sign_calls(), service.signatures()), (1, 0));
}

#[test]
fn a_sad_signs_once() {
    let Some((service, client)) = started(ServiceOptions::default()) else { return };
    service.add_credential("once");
    let credential = client.credential("once").unwrap();
    let hash = sha256(b"doc");
    let sad = client.authorize(&credential, &service.otp("once"), &[hash]).unwrap();
    let value = sad.value().to_string();
    assert!(!format!("{sad:?}").contains(&value), "Debug hides the SAD");
    client.sign_with(sad, &[hash]).unwrap();
    let again = client.sign_hash_request(&protocol::sign_hash_request("once", &value, &[hash])).unwrap_err();
    assert_eq!(again.code(), "CARIMBO-E1473", "{again}");
    assert_eq!(service.signatures(), 1);
}

#[test]
fn a_hash_the_sad_does_not_cover_gives_e1474_and_no_signature() {
    let Some((service, client)) = started(ServiceOptions::default()) else { return };
    service.add_credential("bound");
    let credential = client.credential("bound").unwrap();
    let (authorized, other) = (sha256(b"what the signer saw"), sha256(b"something else"));
    let sad = client.authorize(&credential, &service.otp("bound"), &[authorized]).unwrap();
    let value = sad.value().to_string();
    // carimbo does not send a hash outside the SAD ...
    assert_eq!(client.sign_with(sad, &[authorized, other]).unwrap_err().code(), "CARIMBO-E1474");
    assert_eq!(service.sign_calls(), 0);
    // ... and the service refuses one.
    let e = client.sign_hash_request(&protocol::sign_hash_request("bound", &value, &[other])).unwrap_err();
    assert_eq!(e.code(), "CARIMBO-E1474", "{e}");
    assert_eq!(service.signatures(), 0);
}

#[test]
fn a_revoked_credential_gives_e1475_before_and_after_authorizing() {
    let Some((service, client)) = started(ServiceOptions::default()) else { return };
    service.add_credential("revoked");
    let credential = client.credential("revoked").unwrap();
    let hash = sha256(b"doc");
    let sad = client.authorize(&credential, &service.otp("revoked"), &[hash]).unwrap();
    service.revoke("revoked");
    // Revoked between authorizing and signing: the service refuses.
    let e = client.sign_with(sad, &[hash]).unwrap_err();
    assert_eq!(e.code(), "CARIMBO-E1475", "{e}");
    // Revoked before: carimbo reads it in credentials/info and asks no authorization.
    let before = service.authorizations();
    let e = sign_hash(&client, "revoked", &service.otp("revoked"), &hash).unwrap_err();
    assert_eq!(e.code(), "CARIMBO-E1475", "{e}");
    assert!(e.to_string().contains("revoked"), "{e}");
    assert_eq!((service.authorizations(), service.signatures()), (before, 0));
}

#[test]
fn a_service_that_does_not_answer_in_time_gives_e1476_and_no_signature() {
    let Some(service) = CscService::start(ServiceOptions::default()) else { return };
    service.add_credential("late");
    let mut config = service.config();
    config.read_timeout = Duration::from_millis(400);
    let client = CscClient::connect(config).unwrap();
    let otp = service.otp("late");
    service.set_delay(Duration::from_secs(3));
    let started = std::time::Instant::now();
    let e = sign_hash(&client, "late", &otp, &sha256(b"doc")).unwrap_err();
    assert_eq!(e.code(), "CARIMBO-E1476", "{e}");
    assert!(started.elapsed() < Duration::from_secs(2), "gave up after {:?}", started.elapsed());
    assert_eq!(service.signatures(), 0);
}

#[test]
fn a_malformed_sign_hash_answer_gives_e1477_and_no_signature() {
    let Some((service, client)) = started(ServiceOptions::default()) else { return };
    service.add_credential("garbled");
    let hashes = [sha256(b"one"), sha256(b"two")];
    for garble in [Garble::RepeatedMember, Garble::MissingSignature, Garble::ShortSignature, Garble::Oversized, Garble::NotJson] {
        service.set_garble(garble);
        let e = sign_hashes(&client, "garbled", &service.otp("garbled"), &hashes).unwrap_err();
        assert_eq!(e.code(), "CARIMBO-E1477", "{garble:?}: {e}");
    }
    service.set_garble(Garble::None);
    assert_eq!(sign_hashes(&client, "garbled", &service.otp("garbled"), &hashes).unwrap().len(), 2);
}

#[test]
fn a_batch_larger_than_multisign_is_refused_before_the_signer_authorizes() {
    let Some((service, client)) = started(ServiceOptions { multisign: 5, ..Default::default() }) else { return };
    service.add_credential("small");
    let hashes: Vec<[u8; 32]> = documents(6).iter().map(|d| sha256(d)).collect();
    let e = sign_hashes(&client, "small", &service.otp("small"), &hashes).unwrap_err();
    assert_eq!(e.code(), "CARIMBO-E1479", "{e}");
    assert_eq!(service.authorizations(), 0);
}

#[test]
fn a_wrong_client_secret_gives_e1471() {
    let Some(service) = CscService::start(ServiceOptions::default()) else { return };
    let config = CscConfig::new(&service.base_url, csc_service::CLIENT_ID, ClientSecret::new("not-the-secret")).unwrap();
    let e = CscClient::connect(config).err().unwrap();
    assert_eq!(e.code(), "CARIMBO-E1471", "{e}");
    assert!(!format!("{e} {e:?}").contains("not-the-secret"));
}

#[test]
fn a_token_the_service_forgot_is_replaced_once_and_the_signature_made() {
    let Some((service, client)) = started(ServiceOptions::default()) else { return };
    let leaf = service.add_credential("renewed");
    assert_eq!(service.tokens_issued(), 1);
    service.forget_tokens();
    let signature = sign_hash(&client, "renewed", &service.otp("renewed"), &sha256(b"doc")).unwrap();
    assert!(verifies(&leaf, b"doc", &signature));
    assert_eq!(service.tokens_issued(), 2, "one new token, kept for the later calls");
}

#[test]
fn an_unknown_credential_is_refused_by_the_service() {
    let Some((_service, client)) = started(ServiceOptions::default()) else { return };
    let e = client.credential("nobody").unwrap_err();
    assert_eq!(e.code(), "CARIMBO-E1478", "{e}");
    assert!(e.to_string().contains("credentialID"), "{e}");
}

#[test]
fn nothing_listens_gives_e1478_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = CscConfig::new(&format!("http://127.0.0.1:{port}/csc/v2"), "id", ClientSecret::new("s")).unwrap();
    let e = CscClient::connect(config).err().unwrap();
    assert_eq!(e.code(), "CARIMBO-E1478", "{e}");
}

#[test]
fn configuration_refuses_plain_http_off_loopback_and_a_secret_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    for url in ["http://tsp.example/csc/v2", "ftp://127.0.0.1/", "not a url", "https:///x"] {
        let e = CscConfig::new(url, "id", ClientSecret::new("s")).unwrap_err();
        assert_eq!(e.code(), "CARIMBO-E1470", "{url}");
    }
    assert!(CscConfig::new("https://tsp.example/csc/v2/", "id", ClientSecret::new("s")).is_ok());
    assert!(CscConfig::new("http://[::1]:8080/csc/v2", "id", ClientSecret::new("s")).is_ok());
    assert_eq!(CscConfig::new("https://tsp.example", "", ClientSecret::new("s")).unwrap_err().code(), "CARIMBO-E1470");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("csc.json");
    std::fs::write(&file, br#"{"client_id": "carimbo", "client_secret": "s3cret"}"#).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = CscConfig::from_file("https://tsp.example", &file).unwrap_err();
    assert_eq!(e.code(), "CARIMBO-E1470");
    assert!(e.to_string().contains("chmod 600") && !e.to_string().contains("s3cret"), "{e}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = CscConfig::from_file("https://tsp.example", &file).unwrap();
    assert_eq!(config.client_id, "carimbo");
    assert!(!format!("{config:?}").contains("s3cret"), "Debug hides the secret");
    std::fs::write(&file, br#"{"client_id": "a", "client_id": "b", "client_secret": "s"}"#).unwrap();
    assert_eq!(CscConfig::from_file("https://tsp.example", &file).unwrap_err().code(), "CARIMBO-E1470");
}
