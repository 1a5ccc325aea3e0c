//! JSON from outside refuses a repeated member name (I-JSON, RFC 7493 §2.3).
//!
//! RFC 8259 §4 only says names "SHOULD be unique", and serde_json keeps the *last* of two equal
//! names in a `Value` or a map without a word (a derived struct refuses a repeated field, but its
//! flattened, `Value` and map parts do not). Two readers of one document can then see different
//! data: `{"alg":"none","alg":"ES256"}` is one header to carimbo and another to a JOSE library
//! that keeps the first. serde_json has no mode that refuses duplicates, so it is written here,
//! once, and every parser of bytes carimbo did not write itself goes through it.
//!
//! [`check`] walks the document with serde_json's own deserializer (same syntax, same 128-level
//! recursion limit) and a visitor that builds nothing but one set of names per object. [`from_slice`]
//! checks, then hands the same bytes to `serde_json::from_slice`, so numbers (`float_roundtrip`),
//! error messages and positions stay exactly what they were; only a repeated name is new.

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

/// The code of a repeated member name, wherever the JSON came from.
pub const DUPLICATE_MEMBER: &str = "CARIMBO-E0120";

#[derive(Debug, thiserror::Error)]
pub enum StrictJsonError {
    /// An object holds the member `name` twice; `pointer` (RFC 6901) names the object.
    #[error(
        "the member name \"{name}\" appears twice in the object at {} (line {line}, column {column}); member names must be unique (RFC 7493)",
        show_pointer(pointer)
    )]
    Duplicate { pointer: String, name: String, line: usize, column: usize },
    /// Not JSON, or JSON of another shape: serde_json's own error, unchanged.
    #[error(transparent)]
    Json(serde_json::Error),
}

impl StrictJsonError {
    /// The JSON pointer of the repeated member itself (the object's pointer + `/name`).
    pub fn member_pointer(&self) -> Option<String> {
        match self {
            StrictJsonError::Duplicate { pointer, name, .. } => Some(format!("{pointer}/{}", escape(name))),
            StrictJsonError::Json(_) => None,
        }
    }

    pub fn is_duplicate(&self) -> bool {
        matches!(self, StrictJsonError::Duplicate { .. })
    }
}

fn show_pointer(pointer: &str) -> String {
    if pointer.is_empty() { "the top level".to_string() } else { pointer.to_string() }
}

/// RFC 6901 §3: `~` is written `~0` and `/` is written `~1`.
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Refuses `bytes` unless they are one JSON value (surrounding whitespace allowed) in which no
/// object repeats a member name.
pub fn check(bytes: &[u8]) -> Result<(), StrictJsonError> {
    let walk = RefCell::new(Walk::default());
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = Node(&walk).deserialize(&mut de).and_then(|()| de.end());
    match (result, walk.into_inner().duplicate) {
        (Ok(()), _) => Ok(()),
        (Err(e), Some((pointer, name))) => Err(StrictJsonError::Duplicate { pointer, name, line: e.line(), column: e.column() }),
        (Err(e), None) => Err(StrictJsonError::Json(e)),
    }
}

/// `serde_json::from_slice`, refusing a repeated member name first.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StrictJsonError> {
    match check(bytes) {
        Ok(()) => serde_json::from_slice(bytes).map_err(StrictJsonError::Json),
        Err(StrictJsonError::Json(e)) => {
            // The typed parse would have failed too; its message (which may name an earlier
            // wrong field rather than the syntax error) is the one callers always gave.
            Err(StrictJsonError::Json(serde_json::from_slice::<T>(bytes).err().unwrap_or(e)))
        }
        Err(duplicate) => Err(duplicate),
    }
}

/// A `serde_json::Value` of `bytes`, refusing a repeated member name, in one pass: the tree is
/// built while each object's names are checked (a name already in the object being built is the
/// repeat), so a document read as a `Value` is not walked twice. Only when a name repeats is
/// the document walked again by [`check`], for the error's pointer, line and column. Numbers,
/// strings and the recursion limit are serde_json's (`Number::from_f64` as its own `Value` does).
pub fn value_from_slice(bytes: &[u8]) -> Result<serde_json::Value, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match ValueNode.deserialize(&mut de).and_then(|v| de.end().map(|()| v)) {
        Ok(v) => Ok(v),
        Err(e) => match check(bytes) {
            Err(strict) => Err(strict),
            Ok(()) => Err(StrictJsonError::Json(e)),
        },
    }
}

/// Builds one value of the document, refusing a repeated name in any object.
#[derive(Clone, Copy)]
struct ValueNode;

impl<'de> DeserializeSeed<'de> for ValueNode {
    type Value = serde_json::Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<serde_json::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueNode {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::from(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::from(u))
    }
    fn visit_f64<E>(self, f: f64) -> Result<serde_json::Value, E> {
        Ok(serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<serde_json::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(self)? {
            items.push(v);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<serde_json::Value, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if members.contains_key(&name) {
                return Err(de::Error::custom(format!("the member name \"{name}\" appears twice")));
            }
            members.insert(name, value);
        }
        Ok(serde_json::Value::Object(members))
    }
}

/// `serde_json::from_str`, refusing a repeated member name first.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, StrictJsonError> {
    from_slice(text.as_bytes())
}

/// Where the walk is (the path from the root) and the first repeated name it met.
#[derive(Default)]
struct Walk {
    path: Vec<String>,
    duplicate: Option<(String, String)>,
}

impl Walk {
    fn pointer(&self) -> String {
        self.path.iter().map(|p| format!("/{}", escape(p))).collect()
    }
}

/// One value of the document; its visitor descends into arrays and objects.
#[derive(Clone, Copy)]
struct Node<'a>(&'a RefCell<Walk>);

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            self.0.borrow_mut().path.push(index.to_string());
            let more = seq.next_element_seed(self)?;
            self.0.borrow_mut().path.pop();
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if seen.contains(&name) {
                let mut walk = self.0.borrow_mut();
                let pointer = walk.pointer();
                let message = format!("the member name \"{name}\" appears twice in the object at {}", show_pointer(&pointer));
                walk.duplicate = Some((pointer, name));
                return Err(de::Error::custom(message));
            }
            self.0.borrow_mut().path.push(name.clone());
            map.next_value_seed(self)?;
            self.0.borrow_mut().path.pop();
            seen.insert(name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn duplicate(text: &str) -> (String, String) {
        match check(text.as_bytes()) {
            Err(StrictJsonError::Duplicate { pointer, name, .. }) => (pointer, name),
            other => panic!("{text}: expected a duplicate, got {other:?}"),
        }
    }

    #[test]
    fn a_repeated_name_at_the_top_is_refused_with_the_root_pointer() {
        assert_eq!(duplicate(r#"{"alg":"none","alg":"ES256"}"#), (String::new(), "alg".to_string()));
        let e = check(br#"{"alg":"none","alg":"ES256"}"#).unwrap_err();
        assert!(e.to_string().contains("\"alg\" appears twice in the object at the top level"), "{e}");
        assert_eq!(e.member_pointer().as_deref(), Some("/alg"));
    }

    #[test]
    fn a_repeated_name_in_a_nested_object_names_that_object() {
        assert_eq!(duplicate(r#"{"a":{"b":{"c":1,"d":2,"c":3}}}"#), ("/a/b".to_string(), "c".to_string()));
    }

    #[test]
    fn a_repeated_name_in_an_array_of_objects_names_the_element() {
        let text = r#"{"events":[{"level":"qualified"},{"body":{"level":"simple","end_date":"x","level":"qualified"}}]}"#;
        assert_eq!(duplicate(text), ("/events/1/body".to_string(), "level".to_string()));
        assert_eq!(duplicate(r#"[[1],[{"x":1,"x":1}]]"#), ("/1/0".to_string(), "x".to_string()));
    }

    #[test]
    fn names_with_slash_and_tilde_are_escaped_in_the_pointer() {
        assert_eq!(duplicate(r#"{"a/b":{"~":{"k":1,"k":2}}}"#), ("/a~1b/~0".to_string(), "k".to_string()));
    }

    #[test]
    fn the_same_name_in_different_objects_is_allowed() {
        let text = r#"{"level":1,"a":{"level":2},"b":[{"level":3},{"level":4}],"c":{"a":{"level":5}}}"#;
        check(text.as_bytes()).unwrap();
        let v: Value = from_str(text).unwrap();
        assert_eq!(v["b"][1]["level"], json!(4));
    }

    #[test]
    fn names_equal_after_unescaping_are_the_same_name() {
        assert_eq!(duplicate(r#"{"alg":1,"\u0061lg":2}"#), (String::new(), "alg".to_string()));
    }

    #[test]
    fn the_error_gives_the_line_and_column() {
        let e = check(b"{\n  \"a\": 1,\n  \"a\": 2\n}").unwrap_err();
        let StrictJsonError::Duplicate { line, .. } = e else { panic!() };
        assert_eq!(line, 3);
    }

    #[test]
    fn other_errors_are_serde_jsons_own() {
        for text in ["", "{", "{\"a\":1} x", "[1,]", "\"\\x\""] {
            let strict = from_str::<Value>(text).unwrap_err();
            let plain = serde_json::from_str::<Value>(text).unwrap_err();
            assert!(!strict.is_duplicate());
            assert_eq!(strict.to_string(), plain.to_string(), "{text}");
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Header {
            n: u32,
        }
        let strict = from_str::<Header>(r#"{"n":"x"}"#).unwrap_err();
        assert_eq!(strict.to_string(), serde_json::from_str::<Header>(r#"{"n":"x"}"#).unwrap_err().to_string());
    }

    #[test]
    fn values_and_numbers_are_what_serde_json_gives() {
        let text = r#"{"f":0.30000000000000004,"e":1e-7,"big":18446744073709551615,"neg":-9223372036854775808,"s":"\u00e9","n":null,"t":[true,false]}"#;
        assert_eq!(from_str::<Value>(text).unwrap(), serde_json::from_str::<Value>(text).unwrap());
        assert!(from_str::<Value>(r#"{"g":1e400}"#).is_err());
    }

    #[test]
    fn the_nesting_limit_is_serde_jsons() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        let strict = check(deep.as_bytes()).unwrap_err();
        assert!(strict.to_string().contains("recursion limit"), "{strict}");
        let ok = "[".repeat(100) + &"]".repeat(100);
        check(ok.as_bytes()).unwrap();
    }

    #[test]
    fn the_one_pass_value_is_serde_jsons_value_and_refuses_what_check_refuses() {
        for text in [r#"{"a":[1,-2,3.5,1e300,-0.0,null,true,"\u00e9\n"],"b":{"c":{}},"d":18446744073709551615}"#, "[]", " 7 ", r#""x""#] {
            assert_eq!(value_from_slice(text.as_bytes()).unwrap(), serde_json::from_str::<Value>(text).unwrap(), "{text}");
        }
        let text = r#"{"events":[{"body":{"level":"simple","x":1,"level":"qualified"}}]}"#;
        match value_from_slice(text.as_bytes()) {
            Err(StrictJsonError::Duplicate { pointer, name, .. }) => assert_eq!((pointer.as_str(), name.as_str()), ("/events/0/body", "level")),
            other => panic!("expected the repeated name, got {other:?}"),
        }
        for bad in ["{", r#"{"a":1}x"#, "[1,]", ""] {
            let mine = value_from_slice(bad.as_bytes()).unwrap_err();
            let theirs = serde_json::from_str::<Value>(bad).unwrap_err();
            assert!(!mine.is_duplicate(), "{bad}");
            assert_eq!(mine.to_string(), theirs.to_string(), "{bad}");
        }
    }
}
