//! Documents parsed without the bulky metadata of their list items.
//!
//! A saved `kubectl get -o json` List of 10,000 objects carries managedFields
//! and a last-applied copy on every item: parsed whole, it peaks at several
//! times the memory the stored objects need, and the allocator keeps that
//! peak as resident memory for the life of the process. Parsing strips each
//! item as soon as it is complete instead.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::store::strip;

/// A document as a [`Value`], with the items of a list stripped while
/// parsing.
pub(crate) struct LeanDocument(pub Value);

impl<'de> Deserialize<'de> for LeanDocument {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Document;
        impl<'de> Visitor<'de> for Document {
            type Value = Value;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kubernetes object or list")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut out = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = if key == "items" {
                        map.next_value_seed(Items)?
                    } else {
                        map.next_value()?
                    };
                    out.insert(key, value);
                }
                Ok(Value::Object(out))
            }

            // Anything else is whatever it is; the loader names the problem.
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }

            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(v.into())
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(v.into())
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(v.into())
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(v.into())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq))
            }
        }
        deserializer.deserialize_any(Document).map(LeanDocument)
    }
}

/// The `items` of a list, each stripped once parsed.
struct Items;

impl<'de> DeserializeSeed<'de> for Items {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Items {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list's items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(mut item) = seq.next_element::<Value>()? {
            if let Some(Value::Object(meta)) = item.get_mut("metadata") {
                strip(meta);
            }
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    // Not a sequence: kept as parsed, for the loader to refuse.
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        Value::deserialize(de::value::MapAccessDeserializer::new(map))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(v.into())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn list_items_lose_bulky_metadata_and_the_rest_is_as_parsed() {
        let doc = json!({
            "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"},
            "items": [
                {"metadata": {"name": "a", "managedFields": [{"manager": "kubectl"}],
                              "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"}}},
                {"metadata": {"name": "b"}, "spec": {"x": [1, 2.5, null, true]}},
                "not an object",
            ],
        });
        let LeanDocument(lean) = serde_json::from_value(doc.clone()).unwrap();
        let mut want = doc;
        want["items"][0]["metadata"] = json!({"name": "a", "annotations": {"keep": "me"}});
        assert_eq!(lean, want);
    }

    #[test]
    fn other_documents_are_parsed_as_they_are() {
        for doc in [
            json!(null),
            json!(3),
            json!(-3),
            json!(1.5),
            json!("text"),
            json!([1, {"a": 2}]),
            json!({"items": {"a": 1}}),
            json!({"items": "x"}),
            json!({"items": null}),
            json!({"kind": "Pod", "metadata": {"name": "p", "managedFields": []}}),
        ] {
            let LeanDocument(lean) = serde_json::from_value(doc.clone()).unwrap();
            assert_eq!(lean, doc);
        }
        let yaml = "kind: List\nitems:\n- metadata:\n    name: a\n    managedFields: []\n";
        let LeanDocument(lean) = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(
            lean,
            json!({"kind": "List", "items": [{"metadata": {"name": "a"}}]})
        );
    }
}
