//! The journal: one append-only file holding every append (and stored definition) as a framed
//! record, in the order the appends were accepted. It is what makes an append durable (one
//! `fdatasync` per group of appends) and what the sled index is rebuilt from.
//!
//! Frame: `len: u32 LE | crc32: u32 LE | payload (len bytes, JSON)`. As in PostgreSQL's WAL, the
//! first frame that is cut short or fails its checksum ends the journal: after a crash, what
//! follows it was written but never made durable, so never acknowledged. The store only takes
//! that view past the point its index has applied (everything before was durable), keeps the
//! cut-off bytes in a side file for inspection, and `verify_all` checks every frame.

use super::super::StoreError;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

pub(super) const HEADER_LEN: u64 = 8;
/// Larger frames are taken for garbage: no append or definition comes near this.
const MAX_PAYLOAD: u64 = 256 << 20;

pub(super) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + HEADER_LEN as usize);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Where a scan stopped.
pub(super) struct ScanEnd {
    /// The end of the last whole record.
    pub valid_end: u64,
    /// Whether bytes follow `valid_end` that are not a whole record.
    pub torn: bool,
}

/// Calls `each(end_of_record, payload)` for every whole record from `from` on.
pub(super) fn scan(file: &File, from: u64, mut each: impl FnMut(u64, &[u8]) -> Result<(), StoreError>) -> Result<ScanEnd, StoreError> {
    let len = file.metadata().map_err(|e| io("reading the journal's size", e))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    reader.seek(SeekFrom::Start(from)).map_err(|e| io("seeking in the journal", e))?;
    let mut pos = from;
    let mut payload = Vec::new();
    loop {
        if pos == len {
            return Ok(ScanEnd { valid_end: pos, torn: false });
        }
        let remaining = len - pos;
        let mut header = [0u8; HEADER_LEN as usize];
        if remaining < HEADER_LEN {
            return Ok(ScanEnd { valid_end: pos, torn: true });
        }
        reader.read_exact(&mut header).map_err(|e| io("reading the journal", e))?;
        let size = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as u64;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        // A zero length (zeroed blocks after a crash: crc32 of nothing is 0) is no record either.
        if size == 0 || size > MAX_PAYLOAD || HEADER_LEN + size > remaining {
            return Ok(ScanEnd { valid_end: pos, torn: true });
        }
        payload.resize(size as usize, 0);
        reader.read_exact(&mut payload).map_err(|e| io("reading the journal", e))?;
        if crc32fast::hash(&payload) != crc {
            return Ok(ScanEnd { valid_end: pos, torn: true });
        }
        pos += HEADER_LEN + size;
        each(pos, &payload)?;
    }
}

fn io(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{what}: {e}"))
}
