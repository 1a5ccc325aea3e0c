//! Reading a bundle: its bytes parsed with repeated member names refused, the top level split
//! into members so that the shared ones (`archive::SHARED_MEMBERS`) a verified bundle already
//! had byte for byte are taken from the cache, and the typed bundle. Every failure is reported
//! as the parse of the whole file reports it. Pure: bytes and the cache in.

use super::EvidenceBundle;
use super::locate::{offset_of, pointer_at};
use super::verify::{Check, E_DUPLICATE, E_PARSE, Finding};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// Keeps the shared members first seen in a bundle that verified (`fresh`, with its parsed tree
/// and its decoded CRLs), for the next bundle that holds the same bytes.
pub(crate) fn keep_fresh(cache: &super::archive::VerifyCache, fresh: Vec<(&'static str, &[u8])>, value: &Value, crl_bytes: &[Vec<u8>]) {
    for (name, raw) in fresh {
        let crls = if name == "pki" { crl_bytes.to_vec() } else { Vec::new() };
        if let Some(member) = value.get(name).and_then(|v| super::archive::KnownMember::new(name, raw, v.clone(), crls)) {
            cache.keep_member(name, member);
        }
    }
}

/// A bundle read: its tree, the shared members an earlier bundle already had byte for byte, and
/// the shared members seen for the first time (name and bytes), to be kept if it verifies.
pub(crate) struct Parsed<'b> {
    pub value: Value,
    pub known: Known,
    pub fresh: Vec<(&'static str, &'b [u8])>,
}

/// Shared members (`archive::SHARED_MEMBERS`) known from an earlier bundle that verified.
#[derive(Default)]
pub(crate) struct Known {
    pub definitions: Option<Arc<super::archive::KnownMember>>,
    pub pki: Option<Arc<super::archive::KnownMember>>,
}

impl Known {
    pub fn get(&self, name: &str) -> Option<&super::archive::KnownMember> {
        match name {
            "definitions" => self.definitions.as_deref(),
            "pki" => self.pki.as_deref(),
            _ => None,
        }
    }
}

/// Parses the bundle, refusing a repeated member name anywhere. With a cache, the top level is
/// split into its members first, and a shared member whose bytes an earlier bundle had is
/// taken from the cache instead of being parsed; any failure is reported as the one-pass parse
/// of the whole file reports it (same message, line, column and pointer).
///
/// Without archive time-stamps (whose check hashes the whole tree), a known member stands in
/// the tree as `null`: its digest, its typed reading and its file checks come from the cache
/// (`Known`), and `read_bundle` puts its typed reading into the bundle.
pub(crate) fn parse<'b>(bytes: &'b [u8], cache: Option<&super::archive::VerifyCache>) -> Check<Parsed<'b>> {
    let whole = || -> Check<Parsed<'b>> {
        let value = crate::json_strict::value_from_slice(bytes).map_err(|e| strict_finding(bytes, e))?;
        Ok(Parsed { value, known: Known::default(), fresh: Vec::new() })
    };
    let Some(cache) = cache else { return whole() };
    let Some(members) = top_level_members(bytes, cache) else { return whole() };
    let stamped = members.iter().any(|m| m.name == super::ltv::MEMBER);
    let mut object = serde_json::Map::new();
    let (mut known, mut fresh) = (Known::default(), Vec::new());
    for m in members {
        let shared = super::archive::SHARED_MEMBERS.iter().find(|s| **s == m.name);
        if let Some(hit) = m.known {
            object.insert(m.name, if stamped { hit.value.clone() } else { Value::Null });
            match &hit.typed {
                super::archive::Typed::Definitions(_) => known.definitions = Some(hit),
                super::archive::Typed::Pki(_) => known.pki = Some(hit),
            }
            continue;
        }
        let Ok(v) = crate::json_strict::value_from_slice(m.raw) else { return whole() };
        if let Some(s) = shared {
            fresh.push((*s, m.raw));
        }
        object.insert(m.name, v);
    }
    Ok(Parsed { value: Value::Object(object), known, fresh })
}

/// The typed bundle from the parsed tree. A shared member known from the cache, which stands
/// in the tree as `null` (see `parse`), is given a small stand-in of its shape for the reading
/// and then its typed reading from the cache; the stand-in stays in the tree, whose digests
/// for those members come from the cache too.
pub(crate) fn read_bundle(bytes: &[u8], value: &mut Value, known: &Known) -> Check<EvidenceBundle> {
    let standins = [("definitions", known.definitions.is_some()), ("pki", known.pki.is_some())];
    for (name, is_known) in standins {
        if is_known && value.get(name).is_some_and(Value::is_null) {
            value[name] = match name {
                "definitions" => serde_json::to_value(super::BundleDefinitions::default()),
                _ => serde_json::to_value(super::BundlePki::default()),
            }
            .expect("a stand-in serializes");
        }
    }
    let result = EvidenceBundle::deserialize(&*value).map(|mut b| {
        for k in [&known.definitions, &known.pki].into_iter().flatten() {
            match &k.typed {
                super::archive::Typed::Definitions(d) => b.definitions = d.clone(),
                super::archive::Typed::Pki(p) => b.pki = p.clone(),
            }
        }
        b
    });
    // Read from the tree just built, not from the bytes a third time; only when that fails are
    // the bytes read again, for the error's line and column.
    match result {
        Ok(b) => Ok(b),
        Err(_) => serde_json::from_slice(bytes).map_err(|e| parse_finding(bytes, &e, "the file is not an evidence bundle")),
    }
}

/// One top-level member of a bundle: its name, its raw text, and the cache's entry when the
/// text is byte for byte a shared member of an earlier bundle.
struct TopMember<'b> {
    name: String,
    raw: &'b [u8],
    known: Option<Arc<super::archive::KnownMember>>,
}

/// Splits a JSON object into its members, in order. A shared member whose text at its place
/// starts with the very bytes of a known one is that member (a JSON object ends where its own
/// bytes say, so the parser would read exactly those bytes as exactly that value) and is not
/// scanned; every other value is delimited by serde_json itself, and names are read by it.
/// `None` when the file is not one object with distinct names, or anything is amiss: the caller
/// then parses the whole file, which reports the error precisely.
fn top_level_members<'b>(bytes: &'b [u8], cache: &super::archive::VerifyCache) -> Option<Vec<TopMember<'b>>> {
    let ws = |mut i: usize| {
        while bytes.get(i).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            i += 1;
        }
        i
    };
    let mut i = ws(0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(i + 1);
    let mut out: Vec<TopMember<'b>> = Vec::new();
    if bytes.get(i) == Some(&b'}') {
        return (ws(i + 1) == bytes.len()).then_some(out);
    }
    loop {
        // The name: a JSON string, delimited by serde_json.
        let (name, used) = one_value::<String>(&bytes[i..])?;
        i = ws(i + used);
        if bytes.get(i) != Some(&b':') || out.iter().any(|m| m.name == name) {
            return None;
        }
        i = ws(i + 1);
        let known = super::archive::SHARED_MEMBERS.contains(&name.as_str()).then(|| cache.known_member_at(&name, &bytes[i..])).flatten();
        let len = match &known {
            Some(k) => k.raw.len(),
            None => one_value::<&serde_json::value::RawValue>(&bytes[i..])?.1,
        };
        out.push(TopMember { name, raw: &bytes[i..i + len], known });
        i = ws(i + len);
        match bytes.get(i) {
            Some(b',') => i = ws(i + 1),
            Some(b'}') => return (ws(i + 1) == bytes.len()).then_some(out),
            _ => return None,
        }
    }
}

/// The first JSON value of `bytes` (which may go on after it) and how many bytes it took.
fn one_value<'b, T: Deserialize<'b>>(bytes: &'b [u8]) -> Option<(T, usize)> {
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<T>();
    let v = stream.next()?.ok()?;
    Some((v, stream.byte_offset()))
}

fn strict_finding(bytes: &[u8], e: crate::json_strict::StrictJsonError) -> Box<Finding> {
    use crate::json_strict::StrictJsonError;
    match e {
        StrictJsonError::Json(e) => parse_finding(bytes, &e, "the file is not JSON"),
        StrictJsonError::Duplicate { line, column, .. } => {
            let pointer = e.member_pointer().unwrap_or_default();
            let mut f = Finding::new(E_DUPLICATE, "parse", pointer, format!("the file is not I-JSON: {e}"));
            f.offset = Some(offset_of(bytes, line, column));
            f
        }
    }
}

fn parse_finding(bytes: &[u8], e: &serde_json::Error, what: &str) -> Box<Finding> {
    let offset = offset_of(bytes, e.line(), e.column());
    let mut f = Finding::new(E_PARSE, "parse", pointer_at(bytes, offset), format!("{what}: {e}"));
    f.offset = Some(offset);
    f
}
