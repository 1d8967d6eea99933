//! Lenient id decoding: Mastodon sends strings; some other servers send numbers.

use serde::Deserializer;
use serde::de::{self, Visitor};

struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an id (string or integer)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

struct OptIdVisitor;

impl<'de> Visitor<'de> for OptIdVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an id (string or integer) or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(IdVisitor).map(Some)
    }
}

/// Deserializes a required id from a string or an integer.
pub(crate) fn string_or_int<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(IdVisitor)
}

/// Deserializes an optional id (null → `None`; use with `#[serde(default)]`).
pub(crate) fn opt_string_or_int<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    d.deserialize_option(OptIdVisitor)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "super::string_or_int")]
        id: String,
        #[serde(default, deserialize_with = "super::opt_string_or_int")]
        other: Option<String>,
    }

    #[test]
    fn accepts_strings_and_integers() {
        let h: Holder =
            serde_json::from_str(r#"{"id":"103270115826048975","other":null}"#).unwrap();
        assert_eq!((h.id.as_str(), h.other), ("103270115826048975", None));
        let h: Holder = serde_json::from_str(r#"{"id":42,"other":-7}"#).unwrap();
        assert_eq!((h.id.as_str(), h.other.as_deref()), ("42", Some("-7")));
        let h: Holder = serde_json::from_str(r#"{"id":"1"}"#).unwrap();
        assert_eq!(h.other, None);
        assert!(serde_json::from_str::<Holder>(r#"{"id":true}"#).is_err());
        assert!(serde_json::from_str::<Holder>(r#"{"id":1.5}"#).is_err());
    }
}
