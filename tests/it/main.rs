//! The integration tests, one binary: each module is one former `tests/NAME.rs` (run one with
//! `cargo test --test it NAME::`). Helpers shared with the benches and the harness-less tests
//! (browser, pkits, x509_limbo, interop) live in `tests/common/`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/csc_service.rs"]
mod csc_service;
#[path = "../common/evidence_case.rs"]
mod evidence_case;
#[path = "../common/store_builders.rs"]
mod store_builders;

mod admin_keys;
mod api_cases;
mod api_idempotency;
mod api_restricted;
mod api_route_roles;
mod api_second_factor;
mod api_session;
mod api_usage;
mod architecture;
mod backup_restore;
mod bad_signature_input;
mod cases_service;
mod check_command;
mod crash_pg;
mod crash_sled;
mod crl_signers;
mod csc;
mod definition_checks;
mod error_codes;
mod evidence;
mod evidence_api;
mod evidence_archive;
mod evidence_ltv;
mod evidence_samples;
mod evidence_trust;
mod hsm_demo;
mod hsm_signing;
mod notifications;
mod outbox_webhooks;
mod pages;
mod pdf;
mod pg_two_processes;
mod publishing;
mod remote_book;
mod remote_signing;
mod routes;
mod shipped_forms;
mod signature_cli;
mod signatures;
mod store_contract;
mod store_sled;
mod timestamps;
mod trust_list;
mod validation_api;
mod workflow_checks;
mod workflow_engine;
