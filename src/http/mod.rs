//! The HTTP server: the JSON API under `/api/v1` (described at `/api/v1/openapi.json`) and the
//! server-rendered pages, over one `AppState`. `startup.rs` builds the state the server runs on
//! (directory, catalog, trust list, CRLs, seal, accounts, time-stamping, threads) and serves it;
//! `routes.rs` is the one route table and the limits every request passes.

pub mod api;
pub mod archive_api;
pub mod auth;
pub mod body;
pub mod error;
pub mod notifications_api;
pub mod outbox_api;
pub mod pages;
pub mod routes;
pub mod sign_in_limits;
pub mod startup;
pub mod usage;

pub use routes::*;
pub use startup::*;
