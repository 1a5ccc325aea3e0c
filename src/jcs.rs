//! RFC 8785 (JCS) canonical JSON of a `serde_json::Value`, written straight from the tree.
//!
//! Why this is not `serde_json_canonicalizer` (which stays for typed structs, and is the
//! reference this module is tested against byte for byte): its formatter boxes a new writer for
//! every token, re-parses every member name as JSON to find its sort key, and copies each
//! nested object's bytes once more at every level above it. Hashing the members of an evidence
//! bundle (tens of kilobytes of definitions and events) with it was about a third of verifying
//! an archive, and the chain hash of every stored act goes through the same code. Here the tree
//! is walked once and written in order:
//!
//! - strings with serde_json's own string serializer, whose escapes are the ones RFC 8785
//!   §3.2.2.2 prescribes (`\b \t \n \f \r \" \\`, other controls as `\u00xx` in lower case,
//!   everything else as UTF-8);
//! - numbers as ECMAScript prints them (RFC 8785 §3.2.2.3): an integer of at most 2^53 in
//!   magnitude is its decimal digits; any other number is handed to `serde_json_canonicalizer`,
//!   so the double conversion and its formatting stay the crate's;
//! - member names sorted by their UTF-16 code units (§3.2.3). `serde_json::Map` keeps names in
//!   UTF-8 byte order, which is the same order unless a name holds a character from U+E000 up,
//!   so only then (or if the map's order is not byte order) are the names sorted again.

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use std::io::{self, Write};

/// The canonical bytes of `v`.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(v, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// The canonical bytes of a typed value with no floating-point member (through its
/// `serde_json::Value`; serde_json would turn a NaN into `null` where the reference crate
/// refuses it, so a type with an `f64` keeps using the crate).
pub fn to_vec_of<T: serde::Serialize>(t: &T) -> serde_json::Result<Vec<u8>> {
    Ok(to_vec(&serde_json::to_value(t)?))
}

/// SHA-256 of the canonical bytes of `v`, without keeping them.
pub fn sha256(v: &Value) -> [u8; 32] {
    let mut w = Hasher::new();
    write(v, &mut w).expect("hashing cannot fail");
    w.finish()
}

/// Writes the canonical form of `v` to `w`.
pub fn write<W: Write + ?Sized>(v: &Value, w: &mut W) -> io::Result<()> {
    match v {
        Value::Null => w.write_all(b"null"),
        Value::Bool(true) => w.write_all(b"true"),
        Value::Bool(false) => w.write_all(b"false"),
        Value::Number(n) => number(n, w),
        Value::String(s) => string(s, w),
        Value::Array(items) => {
            w.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                write(item, w)?;
            }
            w.write_all(b"]")
        }
        Value::Object(m) => object(m, None, w),
    }
}

/// Writes the object `m` without its member `skip` (when given), names in canonical order.
pub fn object<W: Write + ?Sized>(m: &Map<String, Value>, skip: Option<&str>, w: &mut W) -> io::Result<()> {
    let members = m.iter().filter(|(k, _)| Some(k.as_str()) != skip);
    w.write_all(b"{")?;
    if in_canonical_order(m) {
        members_out(members, w)?;
    } else {
        let mut sorted: Vec<(&String, &Value)> = members.collect();
        sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
        members_out(sorted.into_iter(), w)?;
    }
    w.write_all(b"}")
}

fn members_out<'a, W: Write + ?Sized>(members: impl Iterator<Item = (&'a String, &'a Value)>, w: &mut W) -> io::Result<()> {
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        string(k, w)?;
        w.write_all(b":")?;
        write(v, w)?;
    }
    Ok(())
}

/// Whether iterating `m` already gives the names in UTF-16 order: byte order, and no name with
/// a lead byte of U+E000 or above (0xEE), where UTF-8 and UTF-16 orders part.
fn in_canonical_order(m: &Map<String, Value>) -> bool {
    let mut prev: Option<&str> = None;
    for k in m.keys() {
        if k.bytes().any(|b| b >= 0xEE) || prev.is_some_and(|p| p >= k.as_str()) {
            return false;
        }
        prev = Some(k);
    }
    true
}

/// A JSON string with RFC 8785's escapes (serde_json writes exactly those).
pub fn string<W: Write + ?Sized>(s: &str, w: &mut W) -> io::Result<()> {
    serde_json::to_writer(w, s).map_err(io::Error::other)
}

const EXACT: u64 = 1 << 53;

fn number<W: Write + ?Sized>(n: &Number, w: &mut W) -> io::Result<()> {
    if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= EXACT) {
        return write!(w, "{i}");
    }
    if let Some(u) = n.as_u64().filter(|u| *u <= EXACT) {
        return write!(w, "{u}");
    }
    let bytes = serde_json_canonicalizer::to_vec(n).map_err(io::Error::other)?;
    w.write_all(&bytes)
}

/// A writer that hashes what is written (SHA-256) through an 8 KiB buffer, so many small
/// writes cost one update a block.
pub struct Hasher {
    hash: Sha256,
    buf: Vec<u8>,
}

const BUF: usize = 8192;

impl Default for Hasher {
    fn default() -> Hasher {
        Hasher::new()
    }
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher { hash: Sha256::new(), buf: Vec::with_capacity(BUF) }
    }
    pub fn finish(mut self) -> [u8; 32] {
        self.hash.update(&self.buf);
        self.hash.finalize().into()
    }
}

impl Write for Hasher {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.buf.len() + bytes.len() > BUF {
            self.hash.update(&self.buf);
            self.buf.clear();
            if bytes.len() >= BUF {
                self.hash.update(bytes);
                return Ok(bytes.len());
            }
        }
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_as_the_crate(v: &Value) {
        let theirs = serde_json_canonicalizer::to_vec(v).unwrap();
        assert_eq!(String::from_utf8(to_vec(v)).unwrap(), String::from_utf8(theirs.clone()).unwrap(), "for {v}");
        assert_eq!(sha256(v), <[u8; 32]>::from(Sha256::digest(&theirs)));
    }

    #[test]
    fn the_rfc_8785_examples_and_every_escape_come_out_as_the_reference_crate_writes_them() {
        // RFC 8785 §3.2.2 and appendix B examples, and every control character.
        let controls: String = (0u8..0x20).map(char::from).chain(['"', '\\', '/', '\u{7f}', '\u{2028}', '\u{2029}']).collect();
        for v in [
            serde_json::from_str(r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}"#).unwrap(),
            json!({"\u{20ac}": "Euro Sign", "\r": "Carriage Return", "\u{fb33}": "Hebrew Letter Dalet With Dagesh", "1": "One", "\u{1f600}": "Emoji: Grinning Face", "\u{0080}": "Control", "\u{00f6}": "Latin Small Letter O With Diaeresis"}),
            json!({"c": controls, "": "", "a": {"z": [], "y": {}, "x": [{}]}}),
            json!([
                0,
                -0.0,
                1,
                -1,
                9007199254740992_u64,
                9007199254740993_u64,
                -9007199254740993_i64,
                u64::MAX,
                i64::MIN,
                1.5,
                -1e-7,
                1e21,
                123456789012345680000.0
            ]),
            json!("only a string"),
            json!(12),
        ] {
            same_as_the_crate(&v);
        }
    }

    #[test]
    fn names_beyond_the_basic_plane_sort_by_utf_16_like_the_reference_crate() {
        // U+1F600 is D83D DE00 in UTF-16, before U+E000..U+FFFF; in UTF-8 it sorts after them.
        let v = json!({"\u{ffff}": 1, "\u{e000}": 2, "\u{1f600}": 3, "\u{10000}": 4, "a": 5, "\u{ff}": 6});
        same_as_the_crate(&v);
        let text = String::from_utf8(to_vec(&v)).unwrap();
        assert!(text.find('\u{1f600}').unwrap() < text.find('\u{e000}').unwrap(), "{text}");
    }

    #[test]
    fn a_skipped_member_is_left_out_and_the_rest_is_canonical() {
        let v = json!({"b": 1, "disclosures": {"x": 1}, "a": [2]});
        let mut out = Vec::new();
        object(v.as_object().unwrap(), Some("disclosures"), &mut out).unwrap();
        assert_eq!(out, br#"{"a":[2],"b":1}"#);
    }

    #[test]
    fn long_documents_hash_the_same_across_the_buffer_boundary() {
        for len in [0, 1, BUF - 3, BUF, BUF + 1, 3 * BUF + 17] {
            let v = json!({"text": "x".repeat(len), "list": (0..len % 300).collect::<Vec<_>>()});
            same_as_the_crate(&v);
        }
    }

    /// A small deterministic generator (xorshift), so a failure can be replayed from its seed.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn text(&mut self) -> String {
            const CHARS: [char; 16] =
                ['a', 'Z', '0', '"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', '\u{e9}', '\u{5047}', '\u{e000}', '\u{ffff}', '\u{1f600}', '\u{10ffff}', '/'];
            (0..self.next() % 6).map(|_| CHARS[(self.next() % 16) as usize]).collect()
        }
        fn value(&mut self, depth: u32) -> Value {
            match self.next() % if depth > 3 { 6 } else { 8 } {
                0 => Value::Null,
                1 => Value::Bool(self.next().is_multiple_of(2)),
                2 => Value::from(self.next() as i64 >> (self.next() % 64)),
                3 => Value::from(self.next() >> (self.next() % 64)),
                4 => Number::from_f64(f64::from_bits(self.next())).map_or(Value::Null, Value::Number),
                5 => Value::String(self.text()),
                6 => Value::Array((0..self.next() % 4).map(|_| self.value(depth + 1)).collect()),
                _ => Value::Object((0..self.next() % 5).map(|_| (self.text(), self.value(depth + 1))).collect()),
            }
        }
    }

    #[test]
    fn five_thousand_generated_documents_come_out_as_the_reference_crate_writes_them() {
        for seed in 1..=5000u64 {
            let v = Gen(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)).value(0);
            same_as_the_crate(&v);
        }
    }
}
