//! Form definitions: loading, checking (`carimbo check`) and validating submissions.
//!
//! A form is a JSON file in `forms/`: a JSON Schema (draft 2020-12) for the data plus carimbo's
//! own keys (titles and labels in zh / pt / en, computed values, cross-field rules in JSON Logic,
//! layout hints, examples). `docs/form-definitions.md` is the author's guide. Nothing in this
//! module knows any particular form: what a form needs is expressed in its file.
//!
//! This module does no I/O: `catalog` reads the files.

pub mod commitment;
pub(crate) mod definition;
pub(crate) mod logic;
pub(crate) mod parse;
pub(crate) mod problem;
pub mod problem_detail;
pub mod problem_text;
mod reference;
pub mod summary;
mod validate;

pub use definition::{
    APPLICANT_FACTS, FormDefinition, KNOWN_ROLES, Layout, LayoutGroup, References, SCHEMA_DIALECT, TIME_OF_DAY_FORMAT, field_path_of_pointer,
};
pub use logic::{
    LogicFault, compile as compile_logic, engine as logic_engine, macau_local, parse_date, parse_local_date_time, parse_time_of_day, scan as scan_logic,
};
pub use problem::{ErrorCode, Problem, codes as check_codes, pointer_push};
pub use problem_detail::{Detail, DetailKind, JsonType, Subject};
pub use reference::{HolidayCalendar, RatesTable};
pub use validate::{FieldError, MAX_SUBMISSION_BYTES, MAX_SUBMISSION_DEPTH, ValidSubmission, ValidationContext, codes as validation_codes, parse_submission};
