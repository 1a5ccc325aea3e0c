//! Cases: the thin shell that joins definitions, the directory, the workflow engine and the store.
//!
//! Every operation reads a case's events, replays them, asks the pure engine for the new events,
//! and appends them with the version it read, together with the new head and inbox entries. If
//! another act got there first the store answers `Conflict` and nothing is written: of two
//! approvers acting on one step at once, exactly one wins. Each case is pinned to the content
//! hashes of its form and workflow; a definition loaded later never changes an open case, which
//! finishes on the version it was opened with (kept in memory and in the store).

use crate::catalog::{Catalog, SourceFile};
use crate::directory::{Directory, DirectoryError};
use crate::forms::{FieldError, FormDefinition, ValidSubmission, ValidationContext};
use crate::i18n::Lang;
use crate::store::{Append, CaseHead, InboxEntry, InboxPage, OutboxMessage, Store, StoreError};
use crate::workflow::{ActRequest, Case, CaseEvent, Engine, SignatureRecord, StepStatus, WorkflowDefinition, WorkflowError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

pub mod acts;
mod idempotency;
mod recent;
pub mod stamp;
pub use idempotency::{Idempotency, MAX_KEY_LEN as MAX_IDEMPOTENCY_KEY_LEN};
mod publishing;
pub use publishing::{VERSION_LOWER, VERSION_REUSED, served_bytes_if_same, version_problems};

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("the submission has {} error(s) [CARIMBO-E0110]", .0.len())]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("no form {0:?} is available [CARIMBO-E0406]")]
    UnknownForm(String),
    #[error("no case {0:?} [CARIMBO-E0402]")]
    UnknownCase(String),
    #[error("the definition version {0} this case is pinned to is not available [CARIMBO-E0407]")]
    DefinitionMissing(String),
    #[error("{0} [CARIMBO-E0409]")]
    BadIdempotencyKey(String),
    #[error("idempotency key {0:?} was used before for another request: choose a new key for a new request [CARIMBO-E0410]")]
    IdempotencyMismatch(String),
    #[error("the published definitions, with the definition files, do not load: {} [CARIMBO-E0427]", .0.join("; "))]
    PublishedSet(Vec<String>),
}

impl CaseError {
    /// The stable code (docs/errors.md), as typed data.
    pub fn code(&self) -> &'static str {
        match self {
            CaseError::Invalid(_) => "CARIMBO-E0110",
            CaseError::Workflow(e) => e.code(),
            CaseError::Store(e) => e.code(),
            CaseError::Directory(e) => e.code(),
            CaseError::UnknownForm(_) => "CARIMBO-E0406",
            CaseError::UnknownCase(_) => "CARIMBO-E0402",
            CaseError::DefinitionMissing(_) => "CARIMBO-E0407",
            CaseError::BadIdempotencyKey(_) => "CARIMBO-E0409",
            CaseError::IdempotencyMismatch(_) => "CARIMBO-E0410",
            CaseError::PublishedSet(_) => "CARIMBO-E0427",
        }
    }

    /// The HTTP status a client gets for it: a client's mistake is never a 500.
    pub fn status(&self) -> u16 {
        match self {
            CaseError::Invalid(_) | CaseError::IdempotencyMismatch(_) => 422,
            CaseError::Workflow(e) => e.status(),
            CaseError::Store(e) => e.status(),
            CaseError::Directory(e) => e.status(),
            CaseError::UnknownForm(_) | CaseError::UnknownCase(_) => 404,
            CaseError::BadIdempotencyKey(_) => 400,
            CaseError::DefinitionMissing(_) | CaseError::PublishedSet(_) => 500,
        }
    }
}

/// The case id a submission with an idempotency key gets: derived from the submitter and the
/// key, so a retry lands on the same case (and a signing payload can name it beforehand).
pub fn submission_case_id(submitter: &str, key: &str) -> String {
    format!("C-{}", &hex::encode(Sha256::digest(format!("{submitter}\u{0}{key}")))[..20])
}

/// A submission validated and salted, waiting for its signature (`CaseService::prepare_submit`).
pub struct PreparedSubmission {
    pub submitter: String,
    pub form: Arc<FormDefinition>,
    pub workflow: Arc<WorkflowDefinition>,
    pub case_id: String,
    pub submission: ValidSubmission,
    /// The data as signed and recorded: each restricted field a salted commitment.
    pub committed: Value,
}

/// What one round of `tick_all` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    pub open_cases: usize,
    /// Cases that got reminders or escalations.
    pub changed: usize,
    /// Cases changed by someone else during the round (ticked next round).
    pub conflicts: usize,
    pub failed: usize,
    /// The first few failures, case id and reason.
    pub failures: Vec<String>,
}

/// A case as a caller sees it after an operation.
#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    pub case: Case,
    /// True when this answer repeats an earlier one (same idempotency key): nothing was appended.
    pub replayed: bool,
}

/// Definitions by content hash: the current catalog plus every version a case may be pinned to.
struct Definitions {
    catalog: Arc<Catalog>,
    forms: HashMap<String, Arc<FormDefinition>>,
    workflows: HashMap<String, Arc<WorkflowDefinition>>,
    /// The definitions read from files at start, under the published ones (`publishing`).
    files: Arc<Catalog>,
    /// The last publication served.
    publication_seq: u64,
    /// At start, one line per published definition served instead of the files' version.
    start_report: Vec<String>,
}

pub struct CaseService {
    store: Arc<dyn Store>,
    definitions: RwLock<Definitions>,
    directory: RwLock<Arc<Directory>>,
    commitment_key: CommitmentKey,
    /// Whether appends also write notifications for people (`notify`): on when the server
    /// sends mail (`serve --smtp`), so a server without mail does not pile up stale ones.
    notifications: std::sync::atomic::AtomicBool,
    /// Cases replayed lately, used only at the version and hash the store names (`recent`).
    recent: recent::RecentCases,
}

/// The secret from which the salts of restricted fields are derived.
///
/// A salt must be unguessable (else the commitment is a plain hash again) and the same when the
/// signer fetches the payload and when the signed act arrives, possibly at another instance on
/// the same PostgreSQL database. So it is HMAC-SHA256(key, case ‖ field), cut to
/// 128 bits: random to anyone without the key, reproducible by every instance that shares it.
/// The salt itself is recorded in the event's disclosures, so a record never needs the key again.
pub struct CommitmentKey(ring::hmac::Key);

impl CommitmentKey {
    /// Key bytes (at least 32), e.g. from the data directory's `keys/commitment.key`.
    pub fn from_bytes(bytes: &[u8]) -> Option<CommitmentKey> {
        (bytes.len() >= 32).then(|| CommitmentKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes)))
    }

    /// A fresh key from the OS (for tools and tests that never sign across a restart).
    pub fn random() -> CommitmentKey {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        CommitmentKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes))
    }

    /// The salt of `field` in case `case_id`. It is the same in every version of the case's
    /// data, so an unchanged value keeps its commitment and a correction records only what
    /// changed (which the record says anyway, and nothing more).
    pub fn salt(&self, case_id: &str, field: &str) -> String {
        let message = format!("carimbo/commitment-salt/v1\u{0}{case_id}\u{0}{field}");
        let tag = ring::hmac::sign(&self.0, message.as_bytes());
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &tag.as_ref()[..16])
    }
}

impl CaseService {
    /// Starts the service over a store with the definitions read from files; every loaded
    /// definition's bytes are kept in the store. For every id published through the API, the
    /// latest published version is served instead of the file's (`start_report` says which).
    pub fn new(store: Arc<dyn Store>, catalog: Catalog, directory: Directory) -> Result<CaseService, CaseError> {
        let files = Arc::new(catalog.clone());
        let service = CaseService {
            store,
            definitions: RwLock::new(Definitions {
                catalog: Arc::new(Catalog::default()),
                forms: HashMap::new(),
                workflows: HashMap::new(),
                files: files.clone(),
                publication_seq: 0,
                start_report: Vec::new(),
            }),
            directory: RwLock::new(Arc::new(directory)),
            commitment_key: CommitmentKey::random(),
            notifications: std::sync::atomic::AtomicBool::new(false),
            recent: recent::RecentCases::default(),
        };
        service.load_catalog(catalog)?;
        let lines = service.serve_published(&files)?;
        service.definitions.write().unwrap_or_else(|e| e.into_inner()).start_report = lines;
        Ok(service)
    }

    /// One line per definition served from a publication instead of the definition files.
    pub fn start_report(&self) -> Vec<String> {
        self.definitions.read().unwrap_or_else(|e| e.into_inner()).start_report.clone()
    }

    /// Serves a new set of definitions. Cases already open keep their pinned versions.
    pub fn load_catalog(&self, catalog: Catalog) -> Result<(), CaseError> {
        for (hash, bytes) in &catalog.sources {
            self.store.put_definition(hash, bytes)?;
        }
        // The reference data too, by content hash: a case pins the versions it opened with,
        // and its evidence bundle carries those bytes after the files are updated.
        for src in &catalog.reference_sources {
            self.store.put_definition(&hex::encode(Sha256::digest(&src.bytes)), &src.bytes)?;
        }
        let mut defs = self.definitions.write().unwrap_or_else(|e| e.into_inner());
        for f in catalog.forms.values() {
            defs.forms.insert(f.content_hash.clone(), f.clone());
        }
        for w in catalog.workflows.values() {
            defs.workflows.insert(w.content_hash.clone(), w.clone());
        }
        defs.catalog = Arc::new(catalog);
        Ok(())
    }

    /// From now on every append also writes the notifications its events cause (`notify`).
    pub fn set_notifications(&self, on: bool) {
        self.notifications.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn notifications_on(&self) -> bool {
        self.notifications.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Uses `key` for the salts of restricted fields (the server's `keys/commitment.key`).
    pub fn with_commitment_key(mut self, key: CommitmentKey) -> Self {
        self.commitment_key = key;
        self
    }

    /// The submission with the salts its restricted fields get in case `case_id`: what the
    /// signer signs is `signing::data_hash(&salted.committed().0)`.
    pub fn salted(&self, case_id: &str, submission: ValidSubmission) -> ValidSubmission {
        submission.with_salts(|field| self.commitment_key.salt(case_id, field))
    }

    /// The definitions served now (what another server on the same store published is learnt
    /// by `watch_publications`, and before every submission). Reads memory only, so it may be
    /// called on the async runtime.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.served()
    }

    /// The definitions served, as this server last learnt them.
    fn served(&self) -> Arc<Catalog> {
        self.definitions.read().unwrap_or_else(|e| e.into_inner()).catalog.clone()
    }

    pub fn directory(&self) -> Arc<Directory> {
        self.directory.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_directory(&self, directory: Directory) {
        *self.directory.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(directory);
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The form and workflow a case is pinned to, from memory or, after a restart, from the store.
    fn pinned(&self, form_hash: &str, workflow_hash: &str) -> Result<(Arc<FormDefinition>, Arc<WorkflowDefinition>), CaseError> {
        {
            let defs = self.definitions.read().unwrap_or_else(|e| e.into_inner());
            if let (Some(f), Some(w)) = (defs.forms.get(form_hash), defs.workflows.get(workflow_hash)) {
                return Ok((f.clone(), w.clone()));
            }
        }
        let mut sources = self.served().reference_sources.clone();
        for hash in [form_hash, workflow_hash] {
            let bytes = self.store.definition(hash)?.ok_or_else(|| CaseError::DefinitionMissing(hash.to_string()))?;
            // The file name only matters for the id check: take the id from the definition.
            let id = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string)).unwrap_or_default();
            sources.push(SourceFile::new(format!("{id}.json"), bytes));
        }
        let report = Catalog::load_sources(&sources);
        let form = report.catalog.forms.values().find(|f| f.content_hash == form_hash).cloned();
        let workflow = report.catalog.workflows.values().find(|w| w.content_hash == workflow_hash).cloned();
        let (Some(f), Some(w)) = (form, workflow) else { return Err(CaseError::DefinitionMissing(format!("{form_hash} / {workflow_hash}"))) };
        let mut defs = self.definitions.write().unwrap_or_else(|e| e.into_inner());
        defs.forms.insert(form_hash.to_string(), f.clone());
        defs.workflows.insert(workflow_hash.to_string(), w.clone());
        Ok((f, w))
    }

    /// The validation context for a person: today and now in Macau time, and their directory facts.
    pub fn context_for(&self, person: &str, now: DateTime<Utc>) -> Result<ValidationContext, CaseError> {
        let facts = self.directory().applicant_facts(person)?;
        Ok(ValidationContext::at(now, facts))
    }

    /// Validates and submits a form, opening a case. With an idempotency key, a retry returns
    /// the first case and opens nothing; the same key with other data is refused. The
    /// submission is validated once: `prepare_submit`, then `open_prepared`.
    #[allow(clippy::too_many_arguments)] // each argument is a distinct fact of the submission
    pub fn submit(
        &self,
        submitter: &str,
        form_id: &str,
        data: &Value,
        signature: SignatureRecord,
        now: DateTime<Utc>,
        idempotency: Option<&Idempotency>,
        lang: Lang,
    ) -> Result<CaseView, CaseError> {
        let prepared = self.prepare_submit(submitter, form_id, data, now, idempotency, lang)?;
        self.open_prepared(prepared, signature, now, idempotency)
    }

    /// Everything about a new submission but its signature, decided once: the version served
    /// now (wherever it was published), the applicant facts (the subject's when the workflow
    /// names one, the submitter's otherwise), the validated and salted data, and the case id.
    /// The signature is made over `committed` and the case opened with `open_prepared`, so
    /// what is signed is exactly what is recorded.
    pub fn prepare_submit(
        &self,
        submitter: &str,
        form_id: &str,
        data: &Value,
        now: DateTime<Utc>,
        idempotency: Option<&Idempotency>,
        lang: Lang,
    ) -> Result<PreparedSubmission, CaseError> {
        self.refresh_published()?;
        let catalog = self.served();
        let form = catalog.form(form_id).ok_or_else(|| CaseError::UnknownForm(form_id.to_string()))?.clone();
        let workflow = catalog.workflow(&form.workflow).ok_or_else(|| CaseError::UnknownForm(form_id.to_string()))?.clone();
        let subject = workflow
            .subject
            .as_deref()
            .and_then(|f| crate::workflow::engine::lookup_path(data, f).into_iter().next().and_then(Value::as_str).map(str::to_string))
            .filter(|s| self.directory().person(s).is_some())
            .unwrap_or_else(|| submitter.to_string());
        let ctx = self.context_for(&subject, now)?;
        let submission = form.validate(data, &ctx, lang).map_err(CaseError::Invalid)?;
        // A retry must land on the same case id for the store to recognise it.
        let case_id = match idempotency {
            Some(idem) => submission_case_id(submitter, idem.client_key()),
            None => format!("C-{}", uuid_like(now)),
        };
        let submission = self.salted(&case_id, submission).with_reference(catalog.reference_pins());
        let committed = submission.committed().0;
        Ok(PreparedSubmission { submitter: submitter.to_string(), form, workflow, case_id, submission, committed })
    }

    /// Opens the case of a prepared submission with its signature, in one append.
    pub fn open_prepared(
        &self,
        prepared: PreparedSubmission,
        signature: SignatureRecord,
        now: DateTime<Utc>,
        idempotency: Option<&Idempotency>,
    ) -> Result<CaseView, CaseError> {
        let PreparedSubmission { submitter, form, workflow, case_id, submission, .. } = prepared;
        let directory = self.directory();
        let engine = Engine::new(&workflow, &directory).with_settings(&form.settings);
        let events = engine.open_case(&case_id, &submission, &submitter, signature, now)?;
        let case = Case::replay(&events)?;
        self.commit(&case_id, 0, events, None, &case, &form, &engine, now, idempotency)
    }

    /// The case as stored when this request was already carried out under its key; `None` when
    /// it was not (or no key was given); `IdempotencyMismatch` when the key answered another
    /// request. Callers ask this before anything else, since a replayed act's seat is taken.
    pub fn replay_of(&self, case_id: &str, idempotency: Option<&Idempotency>) -> Result<Option<Case>, CaseError> {
        let Some(idem) = idempotency else { return Ok(None) };
        match self.store.idempotent_outcome(case_id, idem.stored_key())? {
            Some(outcome) => {
                idem.check_outcome(&outcome)?;
                Ok(Some(self.case(case_id)?))
            }
            None => Ok(None),
        }
    }

    pub fn act(&self, case_id: &str, req: ActRequest, idempotency: Option<&Idempotency>) -> Result<CaseView, CaseError> {
        let now = req.now;
        let (case, form, workflow) = self.load(case_id)?;
        if let Some(v) = self.replayed(case_id, idempotency, &case)? {
            return Ok(v);
        }
        let directory = self.directory();
        let engine = Engine::new(&workflow, &directory).with_settings(&form.settings);
        let events = engine.act(&case, req)?;
        let mut next = case.clone();
        for e in &events {
            next.apply(e)?;
        }
        self.commit(case_id, case.version, events, Some(&case), &next, &form, &engine, now, idempotency)
    }

    #[allow(clippy::too_many_arguments)] // each argument is a distinct fact of the resubmission
    pub fn resubmit(
        &self,
        case_id: &str,
        by: &str,
        data: &Value,
        signature: SignatureRecord,
        now: DateTime<Utc>,
        idempotency: Option<&Idempotency>,
        lang: Lang,
    ) -> Result<CaseView, CaseError> {
        // On the form version the case is pinned to, whatever is served now.
        let (case, form, workflow) = self.load(case_id)?;
        if let Some(v) = self.replayed(case_id, idempotency, &case)? {
            return Ok(v);
        }
        let ctx = self.context_for(by, now)?;
        let submission = form.validate(data, &ctx, lang).map_err(CaseError::Invalid)?;
        let submission = self.salted(case_id, submission);
        let directory = self.directory();
        let engine = Engine::new(&workflow, &directory).with_settings(&form.settings);
        let events = engine.resubmit(&case, by, &submission, signature, now)?;
        let mut next = case.clone();
        for e in &events {
            next.apply(e)?;
        }
        self.commit(case_id, case.version, events, Some(&case), &next, &form, &engine, now, idempotency)
    }

    pub fn withdraw(
        &self,
        case_id: &str,
        by: &str,
        reason: Option<String>,
        now: DateTime<Utc>,
        idempotency: Option<&Idempotency>,
    ) -> Result<CaseView, CaseError> {
        let (case, form, workflow) = self.load(case_id)?;
        if let Some(v) = self.replayed(case_id, idempotency, &case)? {
            return Ok(v);
        }
        let directory = self.directory();
        let engine = Engine::new(&workflow, &directory).with_settings(&form.settings);
        let events = engine.withdraw(&case, by, reason, now)?;
        let mut next = case.clone();
        for e in &events {
            next.apply(e)?;
        }
        self.commit(case_id, case.version, events, Some(&case), &next, &form, &engine, now, idempotency)
    }

    /// Appends the reminders and escalations due on a case at `now`, if any.
    pub fn tick(&self, case_id: &str, now: DateTime<Utc>) -> Result<Option<CaseView>, CaseError> {
        let (case, form, workflow) = self.load(case_id)?;
        let directory = self.directory();
        let engine = Engine::new(&workflow, &directory).with_settings(&form.settings);
        let events = engine.tick(&case, now);
        if events.is_empty() {
            return Ok(None);
        }
        let mut next = case.clone();
        for e in &events {
            next.apply(e)?;
        }
        self.commit(case_id, case.version, events, Some(&case), &next, &form, &engine, now, None).map(Some)
    }

    /// Runs `tick` on every open case: the reminders and escalations due at `now`. A case
    /// another process changed meanwhile is left for the next round; any other failure is
    /// counted and named, and the round goes on.
    pub fn tick_all(&self, now: DateTime<Utc>) -> Result<TickReport, CaseError> {
        let mut report = TickReport::default();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.heads(after.as_deref(), 500)?;
            let Some(last) = page.last() else { break };
            after = Some(last.case_id.clone());
            let full = page.len() == 500;
            for head in page.iter().filter(|h| h.status == "open") {
                report.open_cases += 1;
                match self.tick(&head.case_id, now) {
                    Ok(Some(_)) => report.changed += 1,
                    Ok(None) => {}
                    Err(CaseError::Store(StoreError::Conflict { .. })) => report.conflicts += 1,
                    Err(e) => {
                        report.failed += 1;
                        if report.failures.len() < 10 {
                            report.failures.push(format!("{}: {e}", head.case_id));
                        }
                    }
                }
            }
            if !full {
                break;
            }
        }
        Ok(report)
    }

    /// Whether `person` holds a seat on the open step `step` of `case` at `now` (as assignee,
    /// escalation target or delegate): who may be given the payload to sign for it.
    pub fn may_act(&self, case: &Case, workflow: &WorkflowDefinition, step: &str, person: &str, now: DateTime<Utc>) -> bool {
        let directory = self.directory();
        Engine::new(workflow, &directory).assignments(case, now).iter().any(|a| a.step == step && a.person == person)
    }

    /// `may_act`, with the reason when not: `ConflictOfInterest` for a party kept off the
    /// step, `NotAssigned` otherwise.
    pub fn check_may_act(&self, case: &Case, workflow: &WorkflowDefinition, step: &str, person: &str, now: DateTime<Utc>) -> Result<(), WorkflowError> {
        let directory = self.directory();
        Engine::new(workflow, &directory).may_act(case, step, person, now)
    }

    /// The workflow version a case is pinned to.
    pub fn workflow_of(&self, case: &Case) -> Result<Arc<WorkflowDefinition>, CaseError> {
        Ok(self.pinned(&case.form.hash, &case.workflow.hash)?.1)
    }

    /// The workflow version a case head names (its form's hash is needed to load it after a
    /// restart); for reading many cases without replaying each (usage figures).
    pub fn pinned_workflow(&self, form_hash: &str, workflow_hash: &str) -> Result<Arc<WorkflowDefinition>, CaseError> {
        Ok(self.pinned(form_hash, workflow_hash)?.1)
    }

    /// The form and workflow versions these content hashes name (a notice's pinned definitions).
    pub fn pinned_definitions(&self, form_hash: &str, workflow_hash: &str) -> Result<(Arc<FormDefinition>, Arc<WorkflowDefinition>), CaseError> {
        self.pinned(form_hash, workflow_hash)
    }

    /// The form version a case is pinned to.
    pub fn form_of(&self, case: &Case) -> Result<Arc<FormDefinition>, CaseError> {
        Ok(self.pinned(&case.form.hash, &case.workflow.hash)?.0)
    }

    /// The case, replayed from its stored events.
    pub fn case(&self, case_id: &str) -> Result<Case, CaseError> {
        Ok(self.load(case_id)?.0)
    }

    /// The stored events of a case (with their hash chain).
    pub fn events(&self, case_id: &str) -> Result<Vec<crate::store::StoredEvent>, CaseError> {
        let events = self.store.events(case_id)?;
        if events.is_empty() {
            return Err(CaseError::UnknownCase(case_id.to_string()));
        }
        Ok(events)
    }

    pub fn inbox(&self, person: &str, after: Option<&str>, limit: usize) -> Result<InboxPage, CaseError> {
        Ok(self.store.inbox(person, after, limit)?)
    }

    pub fn cases_of(&self, person: &str, limit: usize) -> Result<Vec<CaseHead>, CaseError> {
        Ok(self.store.cases_of(person, limit)?)
    }

    /// A page of the cases `person` is party to, newest first, after the cursor `after`.
    pub fn cases_page(&self, person: &str, after: Option<&str>, limit: usize) -> Result<crate::store::CasesPage, CaseError> {
        Ok(self.store.cases_page(person, after, limit)?)
    }

    fn load(&self, case_id: &str) -> Result<(Case, Arc<FormDefinition>, Arc<WorkflowDefinition>), CaseError> {
        let case = self.replayed_case(case_id)?;
        let (form, workflow) = self.pinned(&case.form.hash, &case.workflow.hash)?;
        Ok(((*case).clone(), form, workflow))
    }

    /// The case folded from its events: kept from a recent act when the store's head names the
    /// same version and last hash, else read and replayed (and kept).
    fn replayed_case(&self, case_id: &str) -> Result<Arc<Case>, CaseError> {
        match self.store.head(case_id)? {
            Some(head) => self.replayed_at(&head),
            None => self.replay_events(case_id),
        }
    }

    /// The case at a head just read (`Acts::visible_case` reads it anyway): the kept replay
    /// when the head names its version and last hash, else read and replayed.
    pub fn case_at(&self, head: &CaseHead) -> Result<Case, CaseError> {
        Ok((*self.replayed_at(head)?).clone())
    }

    fn replayed_at(&self, head: &CaseHead) -> Result<Arc<Case>, CaseError> {
        match self.recent.get(&head.case_id, head.version, &head.last_hash) {
            Some(case) => Ok(case),
            None => self.replay_events(&head.case_id),
        }
    }

    /// The case replayed from every stored event, and kept for the next act.
    fn replay_events(&self, case_id: &str) -> Result<Arc<Case>, CaseError> {
        let stored = self.store.events(case_id)?;
        if stored.is_empty() {
            return Err(CaseError::UnknownCase(case_id.to_string()));
        }
        let mut events = Vec::with_capacity(stored.len());
        for e in &stored {
            let event: CaseEvent = serde_json::from_value(e.body.clone()).map_err(|err| StoreError::Corrupt {
                case_id: case_id.to_string(),
                seq: e.seq,
                reason: format!("the event cannot be read: {err}"),
            })?;
            events.push(event);
        }
        let case = Arc::new(Case::replay(&events)?);
        if let Some(last) = stored.last() {
            self.recent.put(case_id, case.version, &last.hash, case.clone());
        }
        Ok(case)
    }

    /// A retry with a key already used on this case: the store answers without appending.
    fn replayed(&self, case_id: &str, idempotency: Option<&Idempotency>, case: &Case) -> Result<Option<CaseView>, CaseError> {
        let Some(idem) = idempotency else { return Ok(None) };
        match self.store.idempotent_outcome(case_id, idem.stored_key())? {
            Some(outcome) => {
                idem.check_outcome(&outcome)?;
                Ok(Some(CaseView { case: case.clone(), replayed: true }))
            }
            None => Ok(None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        case_id: &str,
        expected: u64,
        events: Vec<CaseEvent>,
        before: Option<&Case>,
        next: &Case,
        form: &FormDefinition,
        engine: &Engine,
        now: DateTime<Utc>,
        idempotency: Option<&Idempotency>,
    ) -> Result<CaseView, CaseError> {
        let assignments = engine.assignments(next, now);
        let inbox: Vec<InboxEntry> = assignments
            .iter()
            .map(|a| InboxEntry {
                person: a.person.clone(),
                case_id: case_id.to_string(),
                step: a.step.clone(),
                seat: a.seat.clone(),
                since: a.since,
                form_id: next.form.id.clone(),
                on_behalf_of: a.on_behalf_of.clone(),
                delegation: a.delegation.clone(),
            })
            .collect();
        let head = head_of(next, &inbox);
        let mut outbox = outbox_messages(&events, next, &self.directory());
        if self.notifications_on() {
            let before = before.map(|b| engine.assignments(b, now)).unwrap_or_default();
            outbox.extend(notification_messages(&events, &before, &assignments, next, form));
        }
        let bodies = events.iter().map(|e| serde_json::to_value(e).expect("events serialise")).collect();
        let outcome = match idempotency {
            Some(idem) => json!({"case_id": case_id, "status": next.status.as_str(), "request": idem.request_hash()}),
            None => json!({"case_id": case_id, "status": next.status.as_str()}),
        };
        let appended = self.store.append(Append {
            case_id: case_id.to_string(),
            expected_version: expected,
            events: bodies,
            head,
            inbox,
            idempotency_key: idempotency.map(|i| i.stored_key().to_string()),
            outcome,
            outbox,
        })?;
        if appended.replayed {
            // The first attempt's result stands (if it was this request); show the case as stored.
            if let Some(idem) = idempotency {
                idem.check_outcome(&appended.outcome)?;
            }
            return Ok(CaseView { case: self.case(case_id)?, replayed: true });
        }
        self.recent.put(case_id, appended.version, &appended.last_hash, Arc::new(next.clone()));
        Ok(CaseView { case: next.clone(), replayed: false })
    }
}

/// The messages other systems receive for these new events (see `crate::outbox`): one
/// `decision` per act, and `case.completed`, `case.rejected` or `case.withdrawn` when the case
/// ends. Written to the outbox in the same append as the events, so none is lost or invented.
fn outbox_messages(events: &[CaseEvent], next: &Case, directory: &Directory) -> Vec<OutboxMessage> {
    let department = directory.person(&next.submitter).and_then(|p| p.department.clone());
    let base = || {
        json!({
            "case_id": next.id,
            "form_id": next.form.id,
            "form_version": next.form.version,
            "workflow_id": next.workflow.id,
            "submitter": next.submitter,
            "subject": next.subject,
            "department": department,
            "submitted_at": next.opened_at,
        })
    };
    let with = |extra: Value| {
        let mut v = base();
        if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
            obj.extend(more);
        }
        v
    };
    let mut out = Vec::new();
    for e in events {
        let (kind, payload) = match e {
            CaseEvent::Acted { at, step, seat, actor, on_behalf_of, delegation, action, comment, signature } => (
                "decision",
                with(json!({
                    "at": at, "step": step, "seat": seat, "actor": actor, "on_behalf_of": on_behalf_of,
                    "delegation": delegation, "action": action, "comment": comment,
                    "level": signature.level, "data_version": next.data_version,
                })),
            ),
            CaseEvent::Completed { at } => {
                let decisions: Vec<Value> = next
                    .acts
                    .iter()
                    .filter(|a| !a.superseded)
                    .map(|a| json!({"step": a.step, "actor": a.actor, "on_behalf_of": a.on_behalf_of, "action": a.action, "level": a.level, "at": a.at}))
                    .collect();
                // The data as signed: restricted fields as commitments, their values beside them
                // as disclosures that `visibility::message_for` opens only for receivers
                // configured for them.
                let mut m =
                    with(json!({"at": at, "status": "completed", "data_version": next.data_version, "data": next.committed_data(), "decisions": decisions}));
                if !next.disclosures.is_empty()
                    && let Some(o) = m.as_object_mut()
                {
                    o.insert(crate::store::DISCLOSURES_MEMBER.into(), json!(next.disclosures));
                }
                ("case.completed", m)
            }
            CaseEvent::Rejected { at, by, step } => ("case.rejected", with(json!({"at": at, "status": "rejected", "by": by, "step": step}))),
            CaseEvent::Withdrawn { at, by, reason } => ("case.withdrawn", with(json!({"at": at, "status": "withdrawn", "by": by, "reason": reason}))),
            _ => continue,
        };
        out.push(OutboxMessage { kind: kind.to_string(), payload });
    }
    out
}

/// The notifications for people these events cause (`notify::notices`), as outbox messages
/// committed in the same append. The summary is read through `visibility`: a restricted
/// field never reaches a mail, whoever receives it.
fn notification_messages(
    events: &[CaseEvent],
    before: &[crate::workflow::Assignment],
    after: &[crate::workflow::Assignment],
    next: &Case,
    form: &FormDefinition,
) -> Vec<OutboxMessage> {
    let seen = crate::visibility::Sight::nothing_restricted(form).data(&next.data);
    let summary = form
        .layout
        .summary
        .iter()
        .filter_map(|f| {
            let v = seen.get(f.as_str()).filter(|v| !v.is_null() && !crate::visibility::is_restricted_marker(v))?;
            Some(crate::notify::SummaryValue { field: f.clone(), value: v.clone() })
        })
        .collect();
    let facts = crate::notify::AppendFacts { events, before, after, case: next, summary };
    crate::notify::notices(&facts)
        .into_iter()
        .map(|n| OutboxMessage { kind: n.topic.kind(), payload: serde_json::to_value(&n.notice).expect("notices serialise") })
        .collect()
}

fn head_of(case: &Case, inbox: &[InboxEntry]) -> CaseHead {
    let mut parties: BTreeSet<String> = BTreeSet::new();
    parties.insert(case.submitter.clone());
    parties.insert(case.subject.clone());
    for a in &case.acts {
        parties.insert(a.actor.clone());
    }
    for e in inbox {
        parties.insert(e.person.clone());
    }
    let current: Vec<Value> = case
        .steps
        .iter()
        .filter(|(_, s)| s.status == StepStatus::Open)
        .map(|(id, s)| {
            let waiting: Vec<&String> = s.seats.iter().filter(|x| x.act.is_none()).flat_map(|x| x.people.iter().chain(x.escalated_to.iter())).collect();
            json!({"step": id, "since": s.since, "waiting_for": waiting})
        })
        .collect();
    CaseHead {
        case_id: case.id.clone(),
        version: 0,
        last_hash: String::new(),
        status: case.status.as_str().to_string(),
        form_id: case.form.id.clone(),
        form_version: case.form.version.clone(),
        form_hash: case.form.hash.clone(),
        workflow_id: case.workflow.id.clone(),
        workflow_version: case.workflow.version.clone(),
        workflow_hash: case.workflow.hash.clone(),
        submitter: case.submitter.clone(),
        parties: parties.into_iter().collect(),
        opened_at: case.opened_at,
        updated_at: case.updated_at,
        summary: json!({"current_steps": current, "data_version": case.data_version}),
    }
}

/// A case id that sorts by time and is unique without coordination: the time in milliseconds
/// and 64 random bits from the OS.
fn uuid_like(now: DateTime<Utc>) -> String {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("the OS random source is available");
    format!("{:012x}-{}", now.timestamp_millis(), hex::encode(random))
}
