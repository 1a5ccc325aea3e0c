//! carimbo: electronic forms and e-signature workflows for personnel procedures.
//!
//! The library holds the functional core (form definitions and validation, later the workflow
//! state machine and signature checks); the `carimbo` binary is a thin shell around it.
//! `docs/ARCHITECTURE.md` maps the modules and follows one case through them.

pub mod accounts;
pub mod archive_job;
pub mod backup;
pub mod cases;
pub mod catalog;
pub mod chain;
pub mod cli;
pub mod csc;
pub mod directory;
pub mod evidence;
pub mod forms;
pub mod hsm;
pub mod http;
pub mod i18n;
pub mod jcs;
pub mod json_strict;
pub mod notify;
pub mod outbox;
pub mod pdf;
pub mod pki;
pub mod signing;
pub mod store;
pub mod trusted_list;
pub mod tsa;
pub mod usage;
pub mod visibility;
pub mod wording;
pub mod workflow;
