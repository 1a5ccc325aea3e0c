//! The edge of the `carimbo` command: reading files and folders, the clock, the terminal.
//! Each command here gathers its input, calls the pure library, and prints; the decisions are
//! the library's. `pki_files` reads the PKI material (certificates, CRLs, the trust list) for
//! the commands and for the server's start-up; `pki_demo` writes the demo PKI.

pub mod hsm;
pub mod pdf;
pub mod pki_demo;
pub mod pki_files;
pub mod restamp;
pub mod signing;
pub mod trust;
pub mod verify;
