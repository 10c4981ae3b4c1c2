//! Lenient string fields for hand-written YAML.
//!
//! In YAML `PORT: 8080` is a number and `DEBUG: true` a boolean, but an
//! environment variable, a command argument or a constraint value is always
//! text. These
//! deserializers take integers and booleans as their text. Floats are
//! refused rather than converted: `VERSION: 1.10` would become `"1.1"`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A string, or an integer or boolean taken as its text.
pub(super) fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    StringLike::deserialize(deserializer).map(|s| s.0)
}

/// A map of strings whose values may be integers or booleans.
pub(super) fn map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map = BTreeMap::<String, StringLike>::deserialize(deserializer)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// A list of strings whose items may be integers or booleans (`[sleep, 10]`).
pub(super) fn seq<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let items = Vec::<StringLike>::deserialize(deserializer)?;
    Ok(items.into_iter().map(|s| s.0).collect())
}

/// The OpenAPI schema of one lenient value: a string, or an integer or boolean that the
/// server takes as its text (answers always carry the string).
fn value_schema() -> utoipa::openapi::schema::OneOfBuilder {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Integer))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .description(Some(
            "A string; an integer or a boolean is taken as its text (a float is refused). \
             Answers always carry the string.",
        ))
}

/// Schema of a field read with [`string`].
pub(super) fn string_schema() -> utoipa::openapi::schema::Schema {
    value_schema().into()
}

/// Schema of a field read with [`seq`].
pub(super) fn seq_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(value_schema())
        .into()
}

/// Schema of a field read with [`map`].
pub(super) fn map_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    use utoipa::openapi::RefOr;
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[^=\u0000]+$")),
        ))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(
            value_schema().into(),
        ))))
        .into()
}

struct StringLike(String);

impl<'de> Deserialize<'de> for StringLike {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StringLikeVisitor)
    }
}

struct StringLikeVisitor;

impl Visitor<'_> for StringLikeVisitor {
    type Value = StringLike;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<StringLike, E> {
        Ok(StringLike(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<StringLike, E> {
        Ok(StringLike(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<StringLike, E> {
        Ok(StringLike(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<StringLike, E> {
        Ok(StringLike(v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<StringLike, E> {
        Ok(StringLike(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<StringLike, E> {
        Err(E::custom(format!(
            "the number {v} is ambiguous here; quote it to make it a string"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Env {
        #[serde(deserialize_with = "map")]
        env: BTreeMap<String, String>,
    }

    #[test]
    fn yaml_scalars_become_text() {
        let e: Env = serde_yaml::from_str("env: {PORT: 8080, DEBUG: true, NAME: x}").unwrap();
        assert_eq!(e.env["PORT"], "8080");
        assert_eq!(e.env["DEBUG"], "true");
        assert_eq!(e.env["NAME"], "x");
    }

    #[derive(Debug, Deserialize)]
    struct Command {
        #[serde(deserialize_with = "seq")]
        command: Vec<String>,
    }

    #[test]
    fn yaml_command_items_become_text() {
        let c: Command = serde_yaml::from_str("command: [sleep, 10]").unwrap();
        assert_eq!(c.command, ["sleep", "10"]);
    }

    #[test]
    fn floats_and_nested_values_are_refused() {
        let err = serde_yaml::from_str::<Env>("env: {VERSION: 1.10}").unwrap_err();
        assert!(err.to_string().contains("quote it"), "{err}");
        let err = serde_json::from_str::<Env>(r#"{"env": {"A": [1]}}"#).unwrap_err();
        assert!(err.to_string().contains("expected a string"), "{err}");
    }
}
