//! Secret material: the [`SecretValue`] newtype, multi-key-value secrets and transforms.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Bytes of a secret (a Key Vault value or a value derived from one). `Debug` prints only
/// the type name and length; the bytes are zeroized on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Wraps bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value as text, if it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretValue {
    fn from(s: String) -> Self {
        Self::new(s.into_bytes())
    }
}

impl From<&str> for SecretValue {
    fn from(s: &str) -> Self {
        Self::new(s.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(v: Vec<u8>) -> Self {
        Self::new(v)
    }
}

impl From<Zeroizing<String>> for SecretValue {
    fn from(s: Zeroizing<String>) -> Self {
        Self::new(s.as_bytes().to_vec())
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue({} bytes)", self.0.len())
    }
}

/// A transform of `output.transform`, applied to `type: secret` values in list order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// Strip leading and trailing Unicode whitespace.
    Trim,
    /// Standard base64 with padding.
    Base64Encode,
    /// Standard base64 decode (strict).
    Base64Decode,
}

impl Transform {
    /// Parses one name.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTransform`] naming it.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "trim" => Ok(Transform::Trim),
            "base64encode" => Ok(Transform::Base64Encode),
            "base64decode" => Ok(Transform::Base64Decode),
            other => Err(Error::UnknownTransform {
                name: other.to_owned(),
            }),
        }
    }

    /// Parses a list, failing on the first unknown name.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTransform`].
    pub fn parse_all<S: AsRef<str>>(names: &[S]) -> Result<Vec<Self>> {
        names.iter().map(|n| Self::parse(n.as_ref())).collect()
    }

    /// Applies this transform.
    ///
    /// # Errors
    ///
    /// [`Error::Base64`] when `base64decode` meets invalid input.
    pub fn apply(self, object: &str, value: &SecretValue) -> Result<SecretValue> {
        Ok(match self {
            Transform::Trim => match value.as_str() {
                Some(s) => SecretValue::from(s.trim()),
                None => SecretValue::new(value.as_bytes().trim_ascii().to_vec()),
            },
            Transform::Base64Encode => SecretValue::from(STANDARD.encode(value.as_bytes())),
            Transform::Base64Decode => {
                SecretValue::new(STANDARD.decode(value.as_bytes()).map_err(|source| {
                    Error::Base64 {
                        object: object.to_owned(),
                        source,
                    }
                })?)
            }
        })
    }
}

/// Applies `transforms` in order.
///
/// # Errors
///
/// The first failing transform's error.
pub fn apply_transforms(
    object: &str,
    transforms: &[Transform],
    value: &SecretValue,
) -> Result<SecretValue> {
    transforms
        .iter()
        .try_fold(value.clone(), |v, t| t.apply(object, &v))
}

/// `application/x-json`.
pub const CONTENT_TYPE_JSON: &str = "application/x-json";
/// `application/x-yaml`.
pub const CONTENT_TYPE_YAML: &str = "application/x-yaml";

/// Parses a `multi-key-value-secret` value: a flat JSON object of strings, or a flat YAML
/// mapping whose scalars are taken as their literal text (`01` stays `01`, `yes` stays
/// `yes`; an empty or `~` value is the empty string, as yaml.v2 decodes into a string).
///
/// # Errors
///
/// [`Error::MultiKeyNoContentType`], [`Error::MultiKeyContentType`], [`Error::MultiKeyParse`],
/// and [`Error::MultiKeyNested`] naming the first key whose value is not flat.
pub fn parse_multi_key(
    object: &str,
    content_type: Option<&str>,
    value: &SecretValue,
) -> Result<BTreeMap<String, SecretValue>> {
    let ct = content_type
        .filter(|c| !c.is_empty())
        .ok_or(Error::MultiKeyNoContentType)?;
    let text = value.as_str().ok_or_else(|| Error::NotUtf8 {
        object: object.to_owned(),
    })?;
    match ct {
        CONTENT_TYPE_JSON => parse_json_map(object, text),
        CONTENT_TYPE_YAML => parse_yaml_map(object, text),
        other => Err(Error::MultiKeyContentType {
            content_type: other.to_owned(),
        }),
    }
}

fn parse_json_map(object: &str, text: &str) -> Result<BTreeMap<String, SecretValue>> {
    let parse_err = |reason: String| Error::MultiKeyParse {
        object: object.to_owned(),
        format: "JSON",
        reason,
    };
    let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| parse_err(format!("line {} column {}", e.line(), e.column())))?;
    parsed
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, SecretValue::from(s))),
            other => Err(Error::MultiKeyNested {
                object: object.to_owned(),
                key: k,
                found: match other {
                    serde_json::Value::Object(_) => "map",
                    serde_json::Value::Array(_) => "list",
                    serde_json::Value::Number(_) => "number",
                    serde_json::Value::Bool(_) => "boolean",
                    _ => "null",
                },
            }),
        })
        .collect()
}

/// A YAML value: a scalar's literal text, or a marker for what else it was.
enum YamlEntry {
    Text(String),
    Nested(&'static str),
}

impl<'de> serde::Deserialize<'de> for YamlEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = YamlEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<YamlEntry, E> {
                Ok(YamlEntry::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<YamlEntry, E> {
                Ok(YamlEntry::Text(v))
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<YamlEntry, E> {
                Ok(YamlEntry::Text(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<YamlEntry, E> {
                Ok(YamlEntry::Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<YamlEntry, E> {
                Ok(YamlEntry::Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<YamlEntry, E> {
                Ok(YamlEntry::Text(v.to_string()))
            }
            fn visit_unit<E>(self) -> std::result::Result<YamlEntry, E> {
                Ok(YamlEntry::Text(String::new()))
            }
            fn visit_none<E>(self) -> std::result::Result<YamlEntry, E> {
                Ok(YamlEntry::Text(String::new()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<YamlEntry, A::Error> {
                while m
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(YamlEntry::Nested("map"))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> std::result::Result<YamlEntry, A::Error> {
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(YamlEntry::Nested("list"))
            }
        }
        // Asking for a string makes the parser hand over a plain scalar's literal text.
        d.deserialize_string(V)
    }
}

fn parse_yaml_map(object: &str, text: &str) -> Result<BTreeMap<String, SecretValue>> {
    let parsed: std::result::Result<BTreeMap<String, Option<YamlEntry>>, _> =
        serde_saphyr::from_str(text);
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            // Asked for strings, the parser refuses nested values: find the key to name.
            if let Ok(shapes) = serde_saphyr::from_str::<BTreeMap<String, YamlShape>>(text)
                && let Some((key, YamlShape::Nested(found))) = shapes
                    .into_iter()
                    .find(|(_, s)| matches!(s, YamlShape::Nested(_)))
            {
                return Err(Error::MultiKeyNested {
                    object: object.to_owned(),
                    key,
                    found,
                });
            }
            return Err(Error::MultiKeyParse {
                object: object.to_owned(),
                format: "YAML",
                // saphyr's messages quote the offending source text, which may be secret.
                reason: yaml_reason(&e),
            });
        }
    };
    parsed
        .into_iter()
        .map(|(k, v)| match v {
            None => Ok((k, SecretValue::default())),
            Some(YamlEntry::Text(s)) => Ok((k, SecretValue::from(s))),
            Some(YamlEntry::Nested(found)) => Err(Error::MultiKeyNested {
                object: object.to_owned(),
                key: k,
                found,
            }),
        })
        .collect()
}

/// The shape of a YAML value (scalar, map or list), for error messages.
enum YamlShape {
    Scalar,
    Nested(&'static str),
}

impl<'de> serde::Deserialize<'de> for YamlShape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::IgnoredAny;
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = YamlShape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<YamlShape, E> {
                Ok(YamlShape::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<YamlShape, E> {
                Ok(YamlShape::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<YamlShape, E> {
                Ok(YamlShape::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<YamlShape, E> {
                Ok(YamlShape::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<YamlShape, E> {
                Ok(YamlShape::Scalar)
            }
            fn visit_unit<E>(self) -> std::result::Result<YamlShape, E> {
                Ok(YamlShape::Scalar)
            }
            fn visit_none<E>(self) -> std::result::Result<YamlShape, E> {
                Ok(YamlShape::Scalar)
            }
            fn visit_some<D2: serde::Deserializer<'de>>(
                self,
                d: D2,
            ) -> std::result::Result<YamlShape, D2::Error> {
                <YamlShape as serde::Deserialize>::deserialize(d)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<YamlShape, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(YamlShape::Nested("map"))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> std::result::Result<YamlShape, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(YamlShape::Nested("list"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A YAML error without the source snippet the parser quotes.
fn yaml_reason(_e: &serde_saphyr::Error) -> String {
    "not a YAML mapping of strings to scalars".to_owned()
}

#[cfg(test)]
mod tests;
