//! Problems found in definitions, reported as `FILE:JSON-POINTER: message [CODE]`.
//!
//! A checker that stops at the first error makes an author fix one thing at a time, so every
//! check pushes onto a list and keeps going. Codes are stable and explained in `docs/errors.md`.

use super::problem_detail::Detail;
use crate::i18n::Lang;
use std::fmt;

/// A stable error code, `CARIMBO-Ennnn`, explained in `docs/errors.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub &'static str);

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The definition-checking codes (E00xx). Submission-validation codes are in `validate`.
pub mod codes {
    use super::ErrorCode;
    pub const UNREADABLE_FILE: ErrorCode = ErrorCode("CARIMBO-E0001");
    pub const MALFORMED_JSON: ErrorCode = ErrorCode("CARIMBO-E0002");
    pub const DUPLICATE_MEMBER: ErrorCode = ErrorCode(crate::json_strict::DUPLICATE_MEMBER);
    pub const NOT_AN_OBJECT: ErrorCode = ErrorCode("CARIMBO-E0003");
    pub const UNKNOWN_KIND: ErrorCode = ErrorCode("CARIMBO-E0004");
    pub const NO_DEFINITIONS: ErrorCode = ErrorCode("CARIMBO-E0005");
    pub const UNKNOWN_KEY: ErrorCode = ErrorCode("CARIMBO-E0010");
    pub const BAD_VALUE: ErrorCode = ErrorCode("CARIMBO-E0011");
    pub const MISSING_TRANSLATION: ErrorCode = ErrorCode("CARIMBO-E0012");
    pub const BAD_ID: ErrorCode = ErrorCode("CARIMBO-E0013");
    pub const DUPLICATE_ID: ErrorCode = ErrorCode("CARIMBO-E0014");
    pub const SCHEMA_INVALID: ErrorCode = ErrorCode("CARIMBO-E0020");
    pub const REMOTE_REF: ErrorCode = ErrorCode("CARIMBO-E0021");
    pub const SCHEMA_UNCOMPILABLE: ErrorCode = ErrorCode("CARIMBO-E0022");
    pub const RULE_SYNTAX: ErrorCode = ErrorCode("CARIMBO-E0030");
    pub const RULE_UNKNOWN_FIELD: ErrorCode = ErrorCode("CARIMBO-E0031");
    pub const RULE_DIVIDES_BY_ZERO: ErrorCode = ErrorCode("CARIMBO-E0032");
    pub const RULE_READS_RESTRICTED: ErrorCode = ErrorCode("CARIMBO-E0033");
    pub const COI_UNKNOWN_FIELD: ErrorCode = ErrorCode("CARIMBO-E0034");
    pub const COI_NOT_A_PERSON: ErrorCode = ErrorCode("CARIMBO-E0035");
    pub const COI_DUPLICATE_PARTY: ErrorCode = ErrorCode("CARIMBO-E0036");
    pub const COI_BAD_POLICY: ErrorCode = ErrorCode("CARIMBO-E0037");
    pub const COI_RESTRICTED_PARTY: ErrorCode = ErrorCode("CARIMBO-E0038");
    pub const COMPUTED_INVALID: ErrorCode = ErrorCode("CARIMBO-E0040");
    pub const UNKNOWN_REFERENCE: ErrorCode = ErrorCode("CARIMBO-E0041");
    pub const TIME_FORMAT: ErrorCode = ErrorCode("CARIMBO-E0042");
    pub const TEXT_IN_ARITHMETIC: ErrorCode = ErrorCode("CARIMBO-E0043");
    pub const RULE_ROW: ErrorCode = ErrorCode("CARIMBO-E0044");
    pub const UNKNOWN_CONTEXT: ErrorCode = ErrorCode("CARIMBO-E0045");
    pub const ROW_LAYOUT: ErrorCode = ErrorCode("CARIMBO-E0046");
    pub const BAD_OPERAND: ErrorCode = ErrorCode("CARIMBO-E0047");
    pub const UNKNOWN_WORKFLOW: ErrorCode = ErrorCode("CARIMBO-E0050");
    pub const VALID_EXAMPLE_REJECTED: ErrorCode = ErrorCode("CARIMBO-E0060");
    pub const INVALID_EXAMPLE_ACCEPTED: ErrorCode = ErrorCode("CARIMBO-E0061");
    pub const EXAMPLE_ERROR_MISSING: ErrorCode = ErrorCode("CARIMBO-E0062");
    pub const TOO_FEW_EXAMPLES: ErrorCode = ErrorCode("CARIMBO-E0063");
    pub const LAYOUT: ErrorCode = ErrorCode("CARIMBO-E0070");
    pub const REFERENCE_TABLE: ErrorCode = ErrorCode("CARIMBO-E0080");
}

/// One thing wrong with one place in one definition file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file as the author named it on the command line (or the upload's name).
    pub file: String,
    /// JSON pointer into the definition (`""` for the whole file).
    pub pointer: String,
    pub code: ErrorCode,
    /// What is wrong, with the names it concerns, readable in zh / pt / en (`Detail::render`).
    pub detail: Detail,
    /// The detail in English: the stable text of `carimbo check`, the API and the logs.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {} [{}]", self.file, self.pointer, self.message, self.code)
    }
}

impl Problem {
    pub fn new(file: impl Into<String>, pointer: impl Into<String>, code: ErrorCode, detail: Detail) -> Self {
        Problem { file: file.into(), pointer: pointer.into(), code, message: detail.to_string(), detail }
    }

    /// The checker's detail in `lang` (field names, pointers and values as found).
    pub fn detail_in(&self, lang: Lang) -> String {
        self.detail.render(lang)
    }

    /// The problem for a reader of `lang`: what its code means in their language (when carimbo
    /// has the sentence, `forms::problem_text`), then the detail in their language. In English
    /// it is the plain `Display` form.
    pub fn localized(&self, lang: Lang) -> String {
        match (lang, super::problem_text::explain(self.code.0)) {
            (Lang::En, _) => self.to_string(),
            (lang, None) => format!("{}:{}: {} [{}]", self.file, self.pointer, self.detail_in(lang), self.code),
            (lang, Some(text)) => format!("{}:{}: {} — {} [{}]", self.file, self.pointer, text.get(lang), self.detail_in(lang), self.code),
        }
    }
}

/// Collects the problems of one file; every check appends and carries on.
#[derive(Debug)]
pub struct Problems<'f> {
    file: &'f str,
    list: Vec<Problem>,
}

impl<'f> Problems<'f> {
    pub fn new(file: &'f str) -> Self {
        Problems { file, list: Vec::new() }
    }

    pub fn push(&mut self, pointer: impl Into<String>, code: ErrorCode, detail: Detail) {
        self.list.push(Problem::new(self.file, pointer, code, detail));
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The problems pushed after the first `before`.
    pub fn since(&self, before: usize) -> impl Iterator<Item = &Problem> {
        self.list.iter().skip(before)
    }

    pub fn file(&self) -> &'f str {
        self.file
    }

    pub fn into_vec(self) -> Vec<Problem> {
        self.list
    }
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/` (RFC 6901 §3).
pub fn pointer_push(base: &str, token: &str) -> String {
    let escaped = token.replace('~', "~0").replace('/', "~1");
    format!("{base}/{escaped}")
}
