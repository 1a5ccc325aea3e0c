//! The edge of the `carimbo` command: reading files and folders, the clock, the terminal.
//! Each command here gathers its input, calls the pure library, and prints; the decisions are
//! the library's.

pub mod pdf;
pub mod verify;
