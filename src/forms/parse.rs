//! Reading definition JSON into typed values while collecting every problem.
//!
//! serde's `deny_unknown_fields` stops at the first error and cannot point inside the file, so
//! definitions are read by hand with these helpers: each check records a problem with its JSON
//! pointer and returns `None`, and the caller carries on with the next key.

use super::problem::{Problems, codes, pointer_push};
use super::problem_detail::{Detail, JsonType, Subject};
use crate::i18n::{Lang, LocalizedText};
use serde_json::{Map, Value};

/// Reports keys that are not in `known` and keys of `required` that are missing.
pub fn check_keys(map: &Map<String, Value>, ptr: &str, known: &[&str], required: &[&str], p: &mut Problems) {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            p.push(
                pointer_push(ptr, key),
                codes::UNKNOWN_KEY,
                Detail::UnknownKey { key: key.clone(), expected: known.iter().map(|k| k.to_string()).collect() },
            );
        }
    }
    for key in required {
        if !map.contains_key(*key) {
            p.push(ptr.to_string(), codes::BAD_VALUE, Detail::MissingKey { key: key.to_string() });
        }
    }
}

pub fn object<'v>(v: &'v Value, ptr: &str, what: Subject, p: &mut Problems) -> Option<&'v Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        other => {
            p.push(ptr, codes::BAD_VALUE, Detail::WrongType { what, expected: JsonType::Object, found: JsonType::of(other) });
            None
        }
    }
}

pub fn array<'v>(v: &'v Value, ptr: &str, what: Subject, p: &mut Problems) -> Option<&'v Vec<Value>> {
    match v {
        Value::Array(a) => Some(a),
        other => {
            p.push(ptr, codes::BAD_VALUE, Detail::WrongType { what, expected: JsonType::Array, found: JsonType::of(other) });
            None
        }
    }
}

pub fn string<'v>(v: &'v Value, ptr: &str, what: Subject, p: &mut Problems) -> Option<&'v str> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s),
        Value::String(_) => {
            p.push(ptr, codes::BAD_VALUE, Detail::EmptyString { what });
            None
        }
        other => {
            p.push(ptr, codes::BAD_VALUE, Detail::WrongType { what, expected: JsonType::String, found: JsonType::of(other) });
            None
        }
    }
}

/// The string at `map[key]`, if present; reports a wrong type.
pub fn string_key<'v>(map: &'v Map<String, Value>, ptr: &str, key: &str, p: &mut Problems) -> Option<&'v str> {
    map.get(key).and_then(|v| string(v, &pointer_push(ptr, key), Subject::key(key), p))
}

/// A text in zh, pt and en; each missing or empty language is its own problem.
pub fn localized(v: &Value, ptr: &str, p: &mut Problems) -> Option<LocalizedText> {
    let Value::Object(map) = v else {
        p.push(ptr, codes::MISSING_TRANSLATION, Detail::NotLocalized { found: JsonType::of(v) });
        return None;
    };
    for key in map.keys() {
        if key.parse::<Lang>().is_err() || key.len() != 2 {
            p.push(pointer_push(ptr, key), codes::UNKNOWN_KEY, Detail::UnknownLanguage { key: key.clone() });
        }
    }
    let mut ok = true;
    let mut get = |lang: Lang| -> String {
        match map.get(lang.code()) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) => {
                p.push(pointer_push(ptr, lang.code()), codes::MISSING_TRANSLATION, Detail::TranslationEmpty { lang });
                ok = false;
                String::new()
            }
            Some(other) => {
                p.push(pointer_push(ptr, lang.code()), codes::MISSING_TRANSLATION, Detail::TranslationNotString { lang, found: JsonType::of(other) });
                ok = false;
                String::new()
            }
            None => {
                p.push(ptr, codes::MISSING_TRANSLATION, Detail::TranslationMissing { lang });
                ok = false;
                String::new()
            }
        }
    };
    let text = LocalizedText { zh: get(Lang::Zh), pt: get(Lang::Pt), en: get(Lang::En) };
    ok.then_some(text)
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Ids are lower-case words joined by `-`: they appear in URLs, file names and signatures.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 80 && id.split('-').all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// The deepest nesting of arrays and objects in a value, computed without recursion so that
/// a hostile value cannot overflow the stack.
pub fn depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Object(m) => stack.extend(m.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    max
}
