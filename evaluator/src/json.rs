//! Strict JSON parsing for untrusted documents (configs, safetensors headers, indexes).
//!
//! serde_json keeps the last of two equal keys without a word, so a hostile header could
//! show one tensor entry to one reader and another to a different reader. Here a document
//! is first parsed into a tree that keeps every key, duplicates are refused, and only then
//! is it turned into a `serde_json::Value` for typed access.

use std::fmt;
use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{EvalError, Result};

/// A JSON value that remembers every key of an object, in order, duplicates included.
enum RawJson {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<RawJson>),
    Object(Vec<(String, RawJson)>),
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(RawJsonVisitor)
    }
}

struct RawJsonVisitor;

impl<'de> Visitor<'de> for RawJsonVisitor {
    type Value = RawJson;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> std::result::Result<RawJson, E> {
        Ok(RawJson::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<RawJson, E> {
        Ok(RawJson::Null)
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<RawJson, E> {
        Ok(RawJson::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<RawJson, E> {
        Ok(RawJson::Number(v.into()))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<RawJson, E> {
        Ok(RawJson::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<RawJson, E> {
        Number::from_f64(v)
            .map(RawJson::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<RawJson, E> {
        Ok(RawJson::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<RawJson, E> {
        Ok(RawJson::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<RawJson, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawJson::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<RawJson, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, RawJson>()? {
            entries.push((key, value));
        }
        Ok(RawJson::Object(entries))
    }
}

impl RawJson {
    /// Converts into a `serde_json::Value`, refusing the first duplicated key found.
    fn into_unique(self) -> std::result::Result<Value, String> {
        Ok(match self {
            RawJson::Null => Value::Null,
            RawJson::Bool(b) => Value::Bool(b),
            RawJson::Number(n) => Value::Number(n),
            RawJson::String(s) => Value::String(s),
            RawJson::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(RawJson::into_unique)
                    .collect::<std::result::Result<_, _>>()?,
            ),
            RawJson::Object(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (key, value) in entries {
                    if map.contains_key(&key) {
                        return Err(key);
                    }
                    let value = value.into_unique()?;
                    map.insert(key, value);
                }
                Value::Object(map)
            }
        })
    }
}

/// Parses `bytes` as one JSON document, refusing malformed JSON and duplicate keys at any
/// depth. `path` only names the file in errors.
pub fn parse_strict(path: &Path, bytes: &[u8]) -> Result<Value> {
    let raw: RawJson = serde_json::from_slice(bytes).map_err(|e| EvalError::Json {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    raw.into_unique().map_err(|key| EvalError::DuplicateKey {
        path: path.to_owned(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let p = Path::new("x.json");
        assert!(matches!(
            parse_strict(p, br#"{"a": 1, "a": 2}"#),
            Err(EvalError::DuplicateKey { key, .. }) if key == "a"
        ));
        assert!(matches!(
            parse_strict(p, br#"{"t": {"dtype": "F32", "dtype": "F16"}}"#),
            Err(EvalError::DuplicateKey { key, .. }) if key == "dtype"
        ));
        assert!(matches!(
            parse_strict(p, br#"[{"k": 1}, {"k": 2, "k": 3}]"#),
            Err(EvalError::DuplicateKey { .. })
        ));
    }

    #[test]
    fn well_formed_documents_round_trip() {
        let v = parse_strict(
            Path::new("x.json"),
            br#" {"a": [1, -2, 3.5, null, true], "b": {"c": "d"}}  "#,
        )
        .expect("valid JSON");
        assert_eq!(v["a"][1], Value::from(-2));
        assert_eq!(v["b"]["c"], Value::from("d"));
    }

    #[test]
    fn malformed_json_is_refused() {
        let p = Path::new("x.json");
        assert!(matches!(
            parse_strict(p, b"{\"a\": "),
            Err(EvalError::Json { .. })
        ));
        assert!(matches!(
            parse_strict(p, b"{} trailing"),
            Err(EvalError::Json { .. })
        ));
        // Deep nesting hits serde_json's recursion limit instead of overflowing the stack.
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse_strict(p, deep.as_bytes()),
            Err(EvalError::Json { .. })
        ));
    }
}
