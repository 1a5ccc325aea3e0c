//! The printable record: a case as an A4 PDF/A-3b document sealed with PAdES, the file that
//! gets filed, mailed to payroll and read by someone who will never run `carimbo verify`.
//!
//! A document is drawn from the case's evidence bundle and nothing else (`record::read`): the
//! server exports the bundle for the reader (restricted fields through `visibility::Sight`),
//! `carimbo pdf --bundle` takes one from a file, and both print the same thing. The bundle is
//! embedded in the PDF as an associated file, so one file holds the readable record and the
//! machine-checkable one; the service seal signs the whole file (PAdES B-T with the acts' TSA,
//! B-B when time-stamping is off), so any PDF reader shows it as signed and any changed byte
//! breaks it.
//!
//! Steps: `record` (what the document says) → `layout` (pages) → `document` (the PDF/A file
//! with an empty signature) → `seal` (the CMS signature). All of it is pure: the bundle, the
//! time, the key and the time-stamp come in; `cli` and `http` do the reading and writing.

pub mod document;
pub mod font;
pub mod layout;
pub mod record;
pub mod seal;

use chrono::{DateTime, Utc};

use crate::evidence::EvidenceBundle;
use crate::i18n::Lang;
use crate::signing::timestamp::TimeStampError;
pub use record::People;
pub use seal::{PdfSeal, Stamp};

/// Why no document was made. Codes `CARIMBO-E1400`–`E1419`, explained in `docs/errors.md`.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the case's record cannot be printed: {0} [CARIMBO-E1400]")]
    Bundle(String),
    #[error("the document's font cannot be used: {0} [CARIMBO-E1401]")]
    Font(String),
    #[error("case {case}: the character {character:?} (U+{:04X}) in \"{context}\" is not in the document's font, so no document is made rather than one with an empty box [CARIMBO-E1402]", *.character as u32)]
    MissingGlyph { character: char, context: String, case: String },
    #[error("the service seal's key cannot be used for documents: {0} [CARIMBO-E1403]")]
    SealKey(String),
    #[error("the document cannot be sealed: {0} [CARIMBO-E1404]")]
    Seal(String),
    #[error("the document's seal could not be time-stamped, so no document is made: {0} [CARIMBO-E1405]")]
    TimeStamp(TimeStampError),
    #[error("the evidence bundle does not verify, so it is not printed: {0} [CARIMBO-E1406]")]
    Unverified(String),
}

impl PdfError {
    pub fn code(&self) -> &'static str {
        match self {
            PdfError::Bundle(_) => "CARIMBO-E1400",
            PdfError::Font(_) => "CARIMBO-E1401",
            PdfError::MissingGlyph { .. } => "CARIMBO-E1402",
            PdfError::SealKey(_) => "CARIMBO-E1403",
            PdfError::Seal(_) => "CARIMBO-E1404",
            PdfError::TimeStamp(_) => "CARIMBO-E1405",
            PdfError::Unverified(_) => "CARIMBO-E1406",
        }
    }

    /// The HTTP status: a record the font cannot print is refused as unprocessable, a TSA that
    /// does not answer is a service unavailable for now, the rest are the server's own faults.
    pub fn status(&self) -> u16 {
        match self {
            PdfError::MissingGlyph { .. } | PdfError::Unverified(_) => 422,
            PdfError::TimeStamp(_) => 503,
            _ => 500,
        }
    }
}

/// Compresses a stream (FlateDecode).
pub(crate) fn deflate(bytes: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(bytes, 6)
}

/// The unsealed document of `bundle` (whose exact bytes are `bundle_bytes`) for a reader of
/// `lang`, made at `now`.
pub fn render(bundle: &EvidenceBundle, bundle_bytes: &[u8], lang: Lang, people: People, now: DateTime<Utc>) -> Result<Vec<u8>, PdfError> {
    let record = record::read(bundle, lang, people)?;
    let mut font = font::DocumentFont::new()?;
    layout::check_coverage(&font, &record, &layout::texts(&record))?;
    let mut pages = layout::Pages::new(&mut font);
    layout::draw(&mut pages, &record);
    let mut contents = pages.finish();
    layout::footers(&mut contents, &mut font, &record);
    document::assemble(&record, &mut font, contents, bundle_bytes, now)
}

/// The sealed document: `render`, then `seal::seal` with the service seal and `stamp` (a
/// time-stamp token over the bytes given, or `None` when time-stamping is off).
pub fn print(bundle: &EvidenceBundle, lang: Lang, people: People, key: &PdfSeal, stamp: Stamp, now: DateTime<Utc>) -> Result<Vec<u8>, PdfError> {
    let bytes = bundle.to_bytes();
    let unsealed = render(bundle, &bytes, lang, people, now)?;
    seal::seal(unsealed, key, stamp)
}
