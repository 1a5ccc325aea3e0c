//! Verifying a year of records at once: many bundles on every core, with one cache of the
//! parts bundles of one service share (the loaded definitions of a form version, the
//! certificate validator of a trust list and CRL set, and with it the validated chains).
//!
//! Nothing is trusted from the cache that the bundle does not carry: an entry is keyed by the
//! SHA-256 of everything the result was computed from (names, ids, versions, the checked
//! SHA-256 of every text and CRL, the auditor's pins), and only results that passed are kept,
//! so a bundle whose material differs in one byte is checked from scratch. Reading files is the caller's: the
//! bundles come in through `load`, so this module does no I/O and reads no clock.

use super::verify::{Fingerprint, VerificationReport, VerifyConfig, verify_with};
use super::{BundleDefinitions, BundlePki};
use crate::workflow::WorkflowDefinition;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Definitions as loaded from one bundle: the workflow the route is replayed with, and the
/// report's lines naming the form and workflow.
#[derive(Debug)]
pub(crate) struct LoadedDefinitions {
    pub workflow: Arc<WorkflowDefinition>,
    pub form_line: String,
    pub workflow_line: String,
}

/// The validation material of one bundle, ready to verify signatures.
pub(crate) struct LoadedPki {
    pub pki: super::verify::Pki,
    pub trust: Vec<Fingerprint>,
}

/// The top-level members of a bundle that are the same bytes in every bundle of one service
/// and period: the definitions (form, workflow, reference texts) and the validation material
/// (trust list, CRLs, service certificate); together about five sixths of a bundle.
pub(crate) const SHARED_MEMBERS: [&str; 2] = ["definitions", "pki"];

/// How many shared members are kept (each a few tens of kB): beyond it, new ones are checked
/// every time and not kept.
const MAX_KNOWN_MEMBERS: usize = 256;

/// A shared member of a bundle that verified, kept byte for byte as the file held it. A later
/// bundle whose member is the very same bytes gets the same parse, the same seal digest and
/// the same file-hash results, so they are taken from here instead of being computed again;
/// one byte of difference and the member is parsed and checked from scratch.
pub(crate) struct KnownMember {
    pub(crate) raw: Box<[u8]>,
    /// The member parsed (as `json_strict::value_from_slice` parses it).
    pub value: Value,
    /// The same, read into the bundle's type.
    pub typed: Typed,
    /// `sha256:` + hex SHA-256 of its RFC 8785 form: its digest in the seal.
    pub digest: String,
    /// For `pki`: the CRL files, decoded from base64, whose SHA-256 matched the declared one.
    pub crls: Vec<Vec<u8>>,
}

/// A shared member read into its type.
pub(crate) enum Typed {
    Definitions(BundleDefinitions),
    Pki(BundlePki),
}

impl KnownMember {
    /// `None` for a member that is not shared, or does not read as its type.
    pub(crate) fn new(name: &str, raw: &[u8], value: Value, crls: Vec<Vec<u8>>) -> Option<KnownMember> {
        use serde::Deserialize;
        let typed = match name {
            "definitions" => Typed::Definitions(BundleDefinitions::deserialize(&value).ok()?),
            "pki" => Typed::Pki(BundlePki::deserialize(&value).ok()?),
            _ => return None,
        };
        let digest = format!("sha256:{}", hex::encode(crate::jcs::sha256(&value)));
        Some(KnownMember { raw: raw.into(), value, typed, digest, crls })
    }
}

/// What bundles of one service share, computed once. Shared between threads.
#[derive(Default)]
pub struct VerifyCache {
    definitions: Mutex<HashMap<[u8; 32], Arc<LoadedDefinitions>>>,
    pki: Mutex<HashMap<[u8; 32], Arc<LoadedPki>>>,
    /// Held while validation material is loaded, so threads that meet the same new material at
    /// once load it once (the others wait, then find it kept).
    loading: Mutex<()>,
    /// The kept members, each with the name it was kept under.
    members: Mutex<Vec<(String, Arc<KnownMember>)>>,
}

impl std::fmt::Debug for VerifyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let definitions = self.definitions.lock().map(|m| m.len()).unwrap_or(0);
        let pki = self.pki.lock().map(|m| m.len()).unwrap_or(0);
        let members = self.members_kept();
        f.debug_struct("VerifyCache").field("definitions", &definitions).field("pki", &pki).field("members", &members).finish()
    }
}

/// SHA-256 over length-prefixed parts, so no two different part lists hash alike.
fn key(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// The key of a bundle's definitions: names, ids, versions and the SHA-256 of every text.
/// Called only after the file check has recomputed each text's hash and found it equal to the
/// one recorded, so the recorded hashes stand for the bytes (no second hashing of the texts).
pub(crate) fn definitions_key(d: &BundleDefinitions) -> [u8; 32] {
    let mut parts: Vec<&[u8]> = Vec::new();
    for f in [&d.form, &d.workflow] {
        parts.extend([f.id.as_bytes(), f.version.as_bytes(), f.name.as_bytes(), f.sha256.as_bytes()]);
    }
    for r in &d.reference {
        parts.extend([r.name.as_bytes(), r.sha256.as_bytes()]);
    }
    key(&parts)
}

/// The key of a bundle's validation material and the auditor's pins (file hashes checked
/// first, as for `definitions_key`).
pub(crate) fn pki_key(p: &BundlePki, pins: &[String], rule: crate::signing::DeviceRule, now: chrono::DateTime<chrono::Utc>) -> [u8; 32] {
    // The history is judged up to `now` (entries dated after it are refused): part of the key.
    let now = now.to_rfc3339();
    let mut parts: Vec<&[u8]> = vec![p.trust_list.name.as_bytes(), p.trust_list.sha256.as_bytes(), b"crls"];
    for c in &p.crls {
        parts.extend([c.name.as_bytes(), c.sha256.as_bytes()]);
    }
    parts.extend([b"service".as_slice(), p.service_certificate.name.as_bytes(), p.service_certificate.sha256.as_bytes(), b"pins"]);
    parts.extend(pins.iter().map(|s| s.as_bytes()));
    parts.extend([b"now".as_slice(), now.as_bytes(), b"device-rule", rule.as_str().as_bytes()]);
    key(&parts)
}

impl VerifyCache {
    pub(crate) fn definitions(&self, k: &[u8; 32]) -> Option<Arc<LoadedDefinitions>> {
        self.definitions.lock().ok()?.get(k).cloned()
    }
    pub(crate) fn keep_definitions(&self, k: [u8; 32], v: Arc<LoadedDefinitions>) {
        if let Ok(mut m) = self.definitions.lock() {
            m.insert(k, v);
        }
    }
    pub(crate) fn pki(&self, k: &[u8; 32]) -> Option<Arc<LoadedPki>> {
        self.pki.lock().ok()?.get(k).cloned()
    }
    /// Runs `load` alone among the threads of this cache.
    pub(crate) fn loading<T>(&self, load: impl FnOnce() -> T) -> T {
        let _one = self.loading.lock();
        load()
    }
    pub(crate) fn keep_pki(&self, k: [u8; 32], v: Arc<LoadedPki>) {
        if let Ok(mut m) = self.pki.lock() {
            m.insert(k, v);
        }
    }
    /// The member `name` of an earlier bundle that verified, if `text` starts with its bytes.
    pub(crate) fn known_member_at(&self, name: &str, text: &[u8]) -> Option<Arc<KnownMember>> {
        let m = self.members.lock().ok()?;
        m.iter().filter(|(n, _)| n == name).map(|(_, k)| k).find(|k| text.starts_with(&k.raw)).cloned()
    }
    /// How many shared members of verified bundles are kept.
    pub fn members_kept(&self) -> usize {
        self.members.lock().map(|m| m.len()).unwrap_or(0)
    }
    /// Keeps `member` (named `name`) of a bundle that verified, while fewer than the maximum are kept.
    pub(crate) fn keep_member(&self, name: &str, member: KnownMember) {
        if let Ok(mut m) = self.members.lock() {
            if m.len() >= MAX_KNOWN_MEMBERS || m.iter().any(|(n, k)| n == name && k.raw == member.raw) {
                return;
            }
            m.push((name.to_string(), Arc::new(member)));
        }
    }
}

/// The outcome of one bundle of an archive run.
#[derive(Debug)]
pub enum ArchiveOutcome {
    Verified(Box<VerificationReport>),
    /// The bundle could not be read (the loader's sentence).
    Unreadable(String),
}

impl ArchiveOutcome {
    pub fn passed(&self) -> bool {
        matches!(self, ArchiveOutcome::Verified(r) if r.passed)
    }
}

/// Verifies `names.len()` bundles on `threads` threads (at least one), each read by `load`,
/// all sharing one `VerifyCache`. `done(index, outcome)` is called once per bundle as it is
/// finished (from the worker threads, in no particular order): the caller shows progress and
/// keeps what it needs. `cfg.now` should be set by the caller (one `now` for the whole run).
pub fn verify_archive<L, D>(names: &[String], cfg: &VerifyConfig, threads: usize, load: L, done: D)
where
    L: Fn(&str) -> Result<Vec<u8>, String> + Sync,
    D: Fn(usize, ArchiveOutcome) + Sync,
{
    let mut cfg = cfg.clone();
    if cfg.cache.is_none() {
        cfg.cache = Some(Arc::new(VerifyCache::default()));
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(names.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = names.get(i) else { break };
                    let outcome = match load(name) {
                        Ok(bytes) => ArchiveOutcome::Verified(Box::new(verify_with(&bytes, &cfg))),
                        Err(e) => ArchiveOutcome::Unreadable(e),
                    };
                    done(i, outcome);
                }
            });
        }
    });
}
