//! OTLP values as the JSON text log-service stores, written from the borrowed request.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// Lower-case hex, as OTLP JSON and W3C trace context spell ids. Two table lookups a byte: every
/// record's ids pass through here, and `write!` with a format spec cost about 2% of ingest.
pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// An OTLP value as one text: a non-empty string as it is (bytes as their hex), anything else
/// as its JSON text; `None` for a value whose JSON is null.
pub(super) fn value_text(value: &AnyValue) -> Option<String> {
    match &value.value {
        Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s.clone()),
        Some(any_value::Value::BytesValue(b)) if !b.is_empty() => Some(hex(b)),
        _ => Some(json_text(&JsonValue(value))).filter(|text| text != "null"),
    }
}

/// OTLP attributes as the text of a JSON object, written straight from the request: no
/// `serde_json::Value` tree is built (and dropped) for each record. Keys are sorted and a repeated
/// key keeps its last value, as in a JSON object read back; `extra` is one more entry, added last.
pub(super) fn attributes_text(
    attributes: &[KeyValue],
    extra: Option<(&str, &str)>,
) -> Option<String> {
    if attributes.is_empty() && extra.is_none() {
        return None;
    }
    Some(json_text(&JsonObject { attributes, extra }))
}

/// Borrowed views of OTLP values that serialise as JSON: strings, numbers, booleans, arrays and
/// objects as they are, bytes as hex, anything else (a double that is not finite) as null.
pub(super) struct JsonObject<'a> {
    attributes: &'a [KeyValue],
    extra: Option<(&'a str, &'a str)>,
}

impl<'a> JsonObject<'a> {
    pub(super) fn of(attributes: &'a [KeyValue]) -> Self {
        JsonObject {
            attributes,
            extra: None,
        }
    }
}

enum Entry<'a> {
    Otlp(Option<&'a AnyValue>),
    Text(&'a str),
}

impl Serialize for JsonObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<(&str, Entry<'_>)> = self
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str(), Entry::Otlp(kv.value.as_ref())))
            .chain(self.extra.map(|(k, v)| (k, Entry::Text(v))))
            .collect();
        // Stable, so of two equal keys the later one stays last; then only the last is kept.
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let mut map = serializer.serialize_map(None)?;
        for (i, (key, value)) in entries.iter().enumerate() {
            if entries.get(i + 1).is_some_and(|next| next.0 == *key) {
                continue;
            }
            match value {
                Entry::Otlp(Some(v)) => map.serialize_entry(key, &JsonValue(v))?,
                Entry::Otlp(None) => map.serialize_entry(key, &())?,
                Entry::Text(t) => map.serialize_entry(key, t)?,
            }
        }
        map.end()
    }
}

struct JsonValue<'a>(&'a AnyValue);

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0.value {
            Some(any_value::Value::StringValue(s)) => serializer.serialize_str(s),
            Some(any_value::Value::BoolValue(b)) => serializer.serialize_bool(*b),
            Some(any_value::Value::IntValue(i)) => serializer.serialize_i64(*i),
            Some(any_value::Value::DoubleValue(d)) if d.is_finite() => serializer.serialize_f64(*d),
            Some(any_value::Value::ArrayValue(a)) => {
                serializer.collect_seq(a.values.iter().map(JsonValue))
            }
            Some(any_value::Value::KvlistValue(kv)) => {
                JsonObject::of(&kv.values).serialize(serializer)
            }
            Some(any_value::Value::BytesValue(b)) => serializer.serialize_str(&hex(b)),
            // Not finite doubles have no JSON; dictionary references mean something only inside
            // profiles, which are not stored.
            _ => serializer.serialize_unit(),
        }
    }
}

/// A span link as stored; fields in the order of a JSON object's sorted keys.
#[derive(Serialize)]
pub(super) struct LinkJson<'a> {
    pub(super) attributes: JsonObject<'a>,
    pub(super) span_id: String,
    pub(super) trace_id: String,
}

/// A span event as stored; fields in the order of a JSON object's sorted keys.
#[derive(Serialize)]
pub(super) struct EventJson<'a> {
    pub(super) attributes: JsonObject<'a>,
    pub(super) name: &'a str,
    pub(super) timestamp: String,
}

pub(super) fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("JSON of strings and numbers always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// An OTLP value as a `Value` tree, built field by field: what the text must read back as.
    fn any_value_json(value: &AnyValue) -> Value {
        match &value.value {
            None => Value::Null,
            Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
            Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
            Some(any_value::Value::IntValue(i)) => json!(i),
            Some(any_value::Value::DoubleValue(d)) => json!(d),
            Some(any_value::Value::ArrayValue(a)) => {
                Value::Array(a.values.iter().map(any_value_json).collect())
            }
            Some(any_value::Value::KvlistValue(kv)) => attributes_json(&kv.values),
            Some(any_value::Value::BytesValue(b)) => Value::String(hex(b)),
            // Dictionary references only mean something inside profiles, which are not stored.
            Some(_) => Value::Null,
        }
    }

    /// OTLP attributes as a `Value` object, built the same way.
    fn attributes_json(attributes: &[KeyValue]) -> Value {
        Value::Object(
            attributes
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value.as_ref().map(any_value_json).unwrap_or(Value::Null),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn attributes_text_is_the_json_of_attributes_json() {
        let value = |v: any_value::Value| Some(AnyValue { value: Some(v) });
        let kv = |key: &str, value: Option<AnyValue>| KeyValue {
            key: key.into(),
            value,
            ..Default::default()
        };
        let nested = vec![
            kv("z", value(any_value::Value::IntValue(-3))),
            kv(
                "a",
                value(any_value::Value::StringValue("\"quoted\"\n".into())),
            ),
        ];
        let attributes = vec![
            kv("string", value(any_value::Value::StringValue("é ✓".into()))),
            kv("bool", value(any_value::Value::BoolValue(true))),
            kv("int", value(any_value::Value::IntValue(i64::MIN))),
            kv("double", value(any_value::Value::DoubleValue(0.1))),
            kv("nan", value(any_value::Value::DoubleValue(f64::NAN))),
            kv("bytes", value(any_value::Value::BytesValue(vec![0, 0xab]))),
            kv("none", None),
            kv("empty", Some(AnyValue { value: None })),
            kv(
                "array",
                value(any_value::Value::ArrayValue(
                    opentelemetry_proto::tonic::common::v1::ArrayValue {
                        values: vec![AnyValue {
                            value: Some(any_value::Value::IntValue(1)),
                        }],
                    },
                )),
            ),
            kv(
                "kvlist",
                value(any_value::Value::KvlistValue(
                    opentelemetry_proto::tonic::common::v1::KeyValueList { values: nested },
                )),
            ),
            kv("repeated", value(any_value::Value::IntValue(1))),
            kv("repeated", value(any_value::Value::IntValue(2))),
        ];
        assert_eq!(
            attributes_text(&attributes, None),
            Some(attributes_json(&attributes).to_string())
        );
        for kv in &attributes {
            let Some(value) = &kv.value else { continue };
            let old = match any_value_json(value) {
                Value::String(s) if !s.is_empty() => Some(s),
                Value::Null => None,
                other => Some(other.to_string()),
            };
            assert_eq!(value_text(value), old, "{}", kv.key);
        }
        assert_eq!(attributes_text(&[], None), None);
        assert_eq!(
            attributes_text(&attributes[..1], Some(("event.name", "placed"))).as_deref(),
            Some(r#"{"event.name":"placed","string":"é ✓"}"#)
        );
    }
}
