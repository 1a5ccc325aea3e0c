//! `carimbo backup` and `carimbo restore`: every case of a store, with its definitions, in one
//! file that any store (sled or PostgreSQL) can be restored from.
//!
//! The file is JSON lines (format in `docs/storage.md`): a header line naming the format, one
//! line per stored definition, one line per publication of definitions (who published which
//! version, in order), one line per case (a `CaseExport`: head, events with their
//! hashes, inbox entries, idempotency answers, outbox messages with their delivery state), and a
//! closing line with the counts and the SHA-256 of every byte before it. A file cut short has no
//! closing line; a file changed anywhere no longer matches its SHA-256; a case changed so that
//! the hash still matches (the whole file re-written) still fails its hash chain. A restore
//! therefore reads and checks the whole file before it writes anything, so a bad file changes
//! nothing, and writes each case exactly as it was (same times, same hashes): a restored case
//! verifies, and its evidence bundle is the one the original store would give.
//!
//! What this module must never do: write to a store that already holds cases, or start writing
//! before the whole file has been checked.

use crate::store::{CaseExport, Store, StoreError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

/// The `format` of the header line.
pub const FORMAT: &str = "carimbo-backup";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Progress is reported every this many cases.
pub const PROGRESS_EVERY: u64 = 1000;
/// Cases imported at once: each import waits for its commit, and concurrent commits share one
/// sync (sled's group commit, PostgreSQL's WAL flush).
const IMPORTERS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("this is not a carimbo backup: {0} [CARIMBO-E0420]")]
    NotABackup(String),
    #[error("the backup is damaged: {0}; nothing was restored [CARIMBO-E0421]")]
    Damaged(String),
    #[error("the backup holds a case that does not verify (line {line}): {}; nothing was restored [CARIMBO-E0422]", without_code(.error))]
    BadCase { line: u64, error: StoreError },
    #[error("the target store is not empty (it holds case {0}); restore only into a new data directory or an empty schema [CARIMBO-E0423]")]
    TargetNotEmpty(String),
    #[error("line {line} of the backup repeats a member name: {reason}; nothing was restored [CARIMBO-E0120]")]
    Duplicate { line: u64, reason: String },
    #[error("{0} [CARIMBO-E0424]")]
    File(String),
    #[error("the restore stopped after {imported} of {total} cases: {}; the target store holds a partial restore: discard it (a new data directory, or drop the schema) and restore again [CARIMBO-E0425]", without_code(.error))]
    Interrupted { imported: u64, total: u64, error: StoreError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A store error's message without its own code, inside a message that carries another.
fn without_code(e: &StoreError) -> String {
    let text = e.to_string();
    match text.rfind(" [CARIMBO-E") {
        Some(at) if text.ends_with(']') => text[..at].to_string(),
        _ => text,
    }
}

/// The first line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub created_at: DateTime<Utc>,
    /// The kind of store the backup was taken from (`sled`, `postgres`); any kind restores it.
    pub store: String,
}

/// One stored definition.
#[derive(Debug, Serialize, Deserialize)]
struct DefinitionLine {
    definition: String,
    bytes_base64: String,
}

/// One publication of definitions (`Store::publications`), in order.
#[derive(Debug, Serialize, Deserialize)]
struct PublicationLine {
    publication: crate::store::Publication,
}

/// The last line: what came before it, and its SHA-256.
#[derive(Debug, Serialize, Deserialize)]
struct Trailer {
    end: bool,
    cases: u64,
    events: u64,
    definitions: u64,
    /// Publication lines (absent in backups from before publications: none).
    #[serde(default)]
    publications: u64,
    /// SHA-256 (hex) of every byte of the file before this line.
    sha256: String,
}

/// What a backup or restore is doing, reported every `PROGRESS_EVERY` cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Backup: cases written to the file.
    Writing,
    /// Restore, first pass: cases read and verified.
    Checking,
    /// Restore, second pass: cases written to the store.
    Importing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub cases: u64,
    pub events: u64,
    /// Cases in the file (known while importing).
    pub total: Option<u64>,
}

/// What a backup wrote or a restore read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub cases: u64,
    pub events: u64,
    pub definitions: u64,
    /// The file's SHA-256 (of every byte before the closing line), as the closing line states it.
    pub sha256: String,
    pub elapsed: Duration,
}

/// Writes every definition and every case of `store` to `out`, checking each case's chain on
/// the way (a backup that could not be restored is refused at once, naming the case).
/// `store_kind` goes into the header. The cases come from `Store::export_all`: one snapshot on
/// PostgreSQL; on sled the store is this process's alone, so nothing changes meanwhile.
pub fn backup(store: &dyn Store, store_kind: &str, out: impl Write, progress: &mut dyn FnMut(Progress)) -> Result<Summary, BackupError> {
    let started = Instant::now();
    let mut out = HashingWriter { inner: std::io::BufWriter::with_capacity(1 << 20, out), hash: Sha256::new() };
    let file_err = |e: std::io::Error| BackupError::File(format!("writing the backup: {e}"));
    let header = Header { format: FORMAT.into(), version: VERSION, created_at: Utc::now(), store: store_kind.into() };
    write_line(&mut out, &header).map_err(file_err)?;

    let mut definitions = 0;
    for hash in store.definition_hashes()? {
        let Some(bytes) = store.definition(&hash)? else { continue };
        write_line(&mut out, &DefinitionLine { definition: hash, bytes_base64: BASE64.encode(bytes) }).map_err(file_err)?;
        definitions += 1;
    }
    // The record of who published which definition, so a restored store serves what was
    // published and keeps its history.
    let mut publications = 0;
    for publication in store.publications()? {
        write_line(&mut out, &PublicationLine { publication }).map_err(file_err)?;
        publications += 1;
    }

    let (mut cases, mut events) = (0u64, 0u64);
    let mut write_failed = None;
    let mut refused = None;
    let walked = store.export_all(&mut |case: CaseExport| {
        if let Err(e) = case.verify() {
            refused = Some(e);
            return Err(StoreError::Io("backup stopped".into()));
        }
        if let Err(e) = write_line(&mut out, &case) {
            write_failed = Some(e);
            return Err(StoreError::Io("backup stopped".into()));
        }
        cases += 1;
        events += case.events.len() as u64;
        if cases % PROGRESS_EVERY == 0 {
            progress(Progress { phase: Phase::Writing, cases, events, total: None });
        }
        Ok(())
    });
    if let Some(e) = write_failed {
        return Err(file_err(e));
    }
    if let Some(e) = refused {
        return Err(BackupError::Store(e));
    }
    walked?;

    let sha256 = hex::encode(out.hash.clone().finalize());
    let trailer = Trailer { end: true, cases, events, definitions, publications, sha256: sha256.clone() };
    let mut line = serde_json::to_vec(&trailer).expect("the trailer serialises");
    line.push(b'\n');
    out.inner.write_all(&line).map_err(file_err)?;
    out.inner.flush().map_err(file_err)?;
    Ok(Summary { cases, events, definitions, sha256, elapsed: started.elapsed() })
}

/// Restores a backup into an empty store. First reads the whole file and checks it (header,
/// every definition's hash, every case's chain, no case twice, the closing line's counts and
/// SHA-256); only then writes, definitions first, then cases (several at a time, each one
/// atomically). Refuses a store that holds any case.
pub fn restore<R: Read + Seek>(store: &dyn Store, mut input: R, progress: &mut (dyn FnMut(Progress) + Send)) -> Result<Summary, BackupError> {
    let started = Instant::now();
    refuse_non_empty(store)?;

    // Pass 1: check everything, keep nothing but the case ids.
    let mut ids = HashSet::new();
    let checked = read_backup(
        &mut input,
        true,
        &mut |item| {
            match item {
                Item::Definition(..) | Item::Publication(_) => {}
                Item::Case(line, case) => {
                    if !ids.insert(case.head.case_id.clone()) {
                        return Err(BackupError::Damaged(format!("line {line}: case {} appears twice", case.head.case_id)));
                    }
                }
            }
            Ok(())
        },
        &mut |cases, events| progress(Progress { phase: Phase::Checking, cases, events, total: None }),
    )?;
    drop(ids);

    // Pass 2: write. The file is read again and must hash the same as in pass 1.
    refuse_non_empty(store)?;
    input.seek(SeekFrom::Start(0)).map_err(|e| BackupError::File(format!("re-reading the backup: {e}")))?;
    let total = checked.cases;
    let imported = Mutex::new((0u64, 0u64));
    let first_error: Mutex<Option<StoreError>> = Mutex::new(None);
    let progress = Mutex::new(progress);
    let (tx, rx) = sync_channel::<CaseExport>(IMPORTERS * 4);
    let rx = Mutex::new(rx);
    let second = std::thread::scope(|scope| {
        for _ in 0..IMPORTERS {
            scope.spawn(|| {
                loop {
                    let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok(case) = next else { return };
                    let events = case.events.len() as u64;
                    if let Err(e) = store.import_case(case) {
                        first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                        return;
                    }
                    let (cases, events) = {
                        let mut n = imported.lock().unwrap_or_else(|p| p.into_inner());
                        n.0 += 1;
                        n.1 += events;
                        *n
                    };
                    if cases % PROGRESS_EVERY == 0 {
                        let mut report = progress.lock().unwrap_or_else(|p| p.into_inner());
                        (*report)(Progress { phase: Phase::Importing, cases, events, total: Some(total) });
                    }
                }
            });
        }
        // The cases were verified in pass 1, and `import_case` verifies each again.
        let result = read_backup(
            &mut input,
            false,
            &mut |item| {
                if first_error.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                    return Err(BackupError::Damaged("stopped".into()));
                }
                match item {
                    Item::Definition(hash, bytes) => store.put_definition(&hash, &bytes)?,
                    // In order, after the definitions they name (the file holds them so).
                    Item::Publication(publication) => store.publish(&publication)?,
                    Item::Case(_, case) => {
                        // Every importer gone means each one stopped at an error, recorded above.
                        if tx.send(*case).is_err() {
                            return Err(BackupError::Damaged("stopped".into()));
                        }
                    }
                }
                Ok(())
            },
            &mut |_, _| {},
        );
        drop(tx);
        result
    });
    let (cases, events) = *imported.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(error) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(BackupError::Interrupted { imported: cases, total, error });
    }
    match second {
        Ok(again) if again.sha256 == checked.sha256 => {}
        Ok(_) => {
            return Err(BackupError::Interrupted {
                imported: cases,
                total,
                error: StoreError::Invalid("the backup file changed while it was being restored".into()),
            });
        }
        Err(e) => return Err(BackupError::Interrupted { imported: cases, total, error: StoreError::Io(e.to_string()) }),
    }
    Ok(Summary { cases, events, definitions: checked.definitions, sha256: checked.sha256, elapsed: started.elapsed() })
}

fn refuse_non_empty(store: &dyn Store) -> Result<(), BackupError> {
    match store.heads(None, 1)?.into_iter().next() {
        Some(head) => Err(BackupError::TargetNotEmpty(head.case_id)),
        None => Ok(()),
    }
}

/// One checked line of a backup.
enum Item {
    /// A definition's hash and bytes (checked: the bytes hash to it).
    Definition(String, Vec<u8>),
    /// A case and its line number (checked: `CaseExport::verify`).
    Case(u64, Box<CaseExport>),
    /// A publication of definitions.
    Publication(Box<crate::store::Publication>),
}

/// Reads a whole backup, hands each checked definition and case (its chain verified when
/// `verify_cases`) to `each`, and checks the closing line; returns what the closing line
/// states, once it matched. A line that does not decode or a case that does not verify does
/// not stop the reading: the file as a whole is judged first (cut short, or not the bytes its
/// closing line hashed), since that is what a changed byte most often is, and the first such
/// line is named as where it shows.
fn read_backup(
    input: &mut dyn Read,
    verify_cases: bool,
    each: &mut dyn FnMut(Item) -> Result<(), BackupError>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Summary, BackupError> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut hash = Sha256::new();
    let mut line = Vec::new();
    let mut n = 0u64;
    let (mut cases, mut events, mut definitions, mut publications) = (0u64, 0u64, 0u64, 0u64);
    let mut trailer: Option<(Trailer, String)> = None;
    let mut first_problem: Option<BackupError> = None;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(|e| BackupError::File(format!("reading the backup: {e}")))?;
        if read == 0 {
            break;
        }
        n += 1;
        if trailer.is_some() {
            return Err(BackupError::Damaged(format!("line {n} follows the closing line")));
        }
        if line.last() != Some(&b'\n') {
            return Err(BackupError::Damaged(format!("line {n} is cut short: the file was truncated{}", where_it_shows(&first_problem))));
        }
        let text = &line[..line.len() - 1];
        if n == 1 {
            check_header(text)?;
        } else if kind_of(text) == LineKind::Closing {
            match crate::json_strict::from_slice::<Trailer>(text) {
                Ok(t) => {
                    trailer = Some((t, hex::encode(hash.clone().finalize())));
                    continue;
                }
                Err(e) if e.is_duplicate() => return Err(BackupError::Duplicate { line: n, reason: e.to_string() }),
                Err(e) => return Err(BackupError::Damaged(format!("line {n} does not decode as the closing line: {e}{}", where_it_shows(&first_problem)))),
            }
        } else {
            match check_line(n, text, verify_cases) {
                Ok(item) => {
                    match &item {
                        Item::Case(_, case) => {
                            cases += 1;
                            events += case.events.len() as u64;
                            if cases % PROGRESS_EVERY == 0 {
                                progress(cases, events);
                            }
                        }
                        Item::Definition(..) => definitions += 1,
                        Item::Publication(_) => publications += 1,
                    }
                    if first_problem.is_none() {
                        each(item)?;
                    }
                }
                Err(problem) => {
                    first_problem.get_or_insert(problem);
                }
            }
        }
        hash.update(&line);
    }
    if n == 0 {
        return Err(BackupError::NotABackup("the file is empty".into()));
    }
    let Some((t, actual)) = trailer else {
        return Err(BackupError::Damaged(format!(
            "the file ends after line {n} without its closing line: it was cut short (truncated){}",
            where_it_shows(&first_problem)
        )));
    };
    if t.sha256 != actual {
        return Err(BackupError::Damaged(format!(
            "its SHA-256 is {actual}, the closing line says {}: a byte was changed, added or removed{}",
            t.sha256,
            where_it_shows(&first_problem)
        )));
    }
    if let Some(problem) = first_problem {
        return Err(problem);
    }
    if !t.end || (t.cases, t.events, t.definitions, t.publications) != (cases, events, definitions, publications) {
        return Err(BackupError::Damaged(format!(
            "the closing line counts {} cases, {} events, {} definitions and {} publications; the file holds {cases}, {events}, {definitions} and {publications}",
            t.cases, t.events, t.definitions, t.publications
        )));
    }
    Ok(Summary { cases, events, definitions, sha256: actual, elapsed: Duration::ZERO })
}

/// One line after the header that is not the closing line: a definition or a case, checked.
fn check_line(n: u64, text: &[u8], verify_cases: bool) -> Result<Item, BackupError> {
    let kind = kind_of(text);
    if kind == LineKind::Case {
        let case: CaseExport = crate::json_strict::from_slice(text).map_err(|e| undecodable(n, e, "a case"))?;
        if verify_cases {
            case.verify().map_err(|error| BackupError::BadCase { line: n, error })?;
        }
        Ok(Item::Case(n, Box::new(case)))
    } else if kind == LineKind::Definition {
        let d: DefinitionLine = crate::json_strict::from_slice(text).map_err(|e| undecodable(n, e, "a definition"))?;
        let bytes = BASE64.decode(&d.bytes_base64).map_err(|e| BackupError::Damaged(format!("line {n}: definition {} is not base64: {e}", d.definition)))?;
        if hex::encode(Sha256::digest(&bytes)) != d.definition {
            return Err(BackupError::Damaged(format!("line {n}: definition {} does not hash to its name", d.definition)));
        }
        Ok(Item::Definition(d.definition, bytes))
    } else if kind == LineKind::Publication {
        let p: PublicationLine = crate::json_strict::from_slice(text).map_err(|e| undecodable(n, e, "a publication"))?;
        Ok(Item::Publication(Box::new(p.publication)))
    } else {
        Err(BackupError::Damaged(format!("line {n} is neither a definition, a publication, a case nor the closing line")))
    }
}

/// A line that does not decode as `what`; a repeated member name (which would let one reader
/// restore other data than another reads) has its own code.
fn undecodable(n: u64, e: crate::json_strict::StrictJsonError, what: &str) -> BackupError {
    if e.is_duplicate() {
        BackupError::Duplicate { line: n, reason: e.to_string() }
    } else {
        BackupError::Damaged(format!("line {n} does not decode as {what}: {e}"))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum LineKind {
    Definition,
    Publication,
    Case,
    Closing,
    Unknown,
}

/// What a line is, by the key that names it: its first key as `backup` writes it, or, in a
/// line whose keys were reordered, the key it holds.
fn kind_of(text: &[u8]) -> LineKind {
    for (prefix, kind) in [
        (&br#"{"head":"#[..], LineKind::Case),
        (br#"{"definition":"#, LineKind::Definition),
        (br#"{"publication":"#, LineKind::Publication),
        (br#"{"end":"#, LineKind::Closing),
    ] {
        if text.starts_with(prefix) {
            return kind;
        }
    }
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(text) {
        Ok(m) if m.contains_key("head") => LineKind::Case,
        Ok(m) if m.contains_key("definition") => LineKind::Definition,
        Ok(m) if m.contains_key("publication") => LineKind::Publication,
        Ok(m) if m.contains_key("end") => LineKind::Closing,
        _ => LineKind::Unknown,
    }
}

/// ` (it shows first at …)`, for a file-level verdict that a line-level problem also saw.
fn where_it_shows(problem: &Option<BackupError>) -> String {
    match problem {
        None => String::new(),
        Some(BackupError::BadCase { line, error }) => format!(" (it shows first at line {line}: {})", without_code(error)),
        Some(BackupError::Damaged(m)) => format!(" (it shows first at {m})"),
        Some(other) => format!(" (it shows first as: {other})"),
    }
}

fn check_header(text: &[u8]) -> Result<(), BackupError> {
    let header: Header = crate::json_strict::from_slice(text).map_err(|e| {
        if e.is_duplicate() {
            return BackupError::Duplicate { line: 1, reason: e.to_string() };
        }
        BackupError::NotABackup(format!(
            "its first line is not a backup header ({{\"format\":\"{FORMAT}\",\"version\":{VERSION},…}}); it begins {:?}",
            String::from_utf8_lossy(&text[..text.len().min(60)])
        ))
    })?;
    if header.format != FORMAT {
        return Err(BackupError::NotABackup(format!("its format is {:?}, not {FORMAT:?}", header.format)));
    }
    if header.version != VERSION {
        return Err(BackupError::NotABackup(format!(
            "it is format version {}, this carimbo reads version {VERSION}; use the carimbo that wrote it",
            header.version
        )));
    }
    Ok(())
}

fn write_line(out: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

/// Hashes every byte on its way to the file.
struct HashingWriter<W: Write> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
