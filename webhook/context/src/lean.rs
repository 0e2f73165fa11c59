//! Documents parsed without the bulky metadata of their list items.
//!
//! A saved `kubectl get -o json` List of 10,000 objects carries managedFields
//! and a last-applied copy on every item: parsed whole into values, it
//! peaks at ten times the memory the stored objects need, and the
//! allocator keeps that peak as resident memory for the life of the process
//! (the objects stored meanwhile pin its pages). Parsing instead strips each
//! item as soon as it is complete and keeps it as compact JSON text until
//! the loader stores it.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::store::strip;

/// A parsed document.
pub(crate) struct LeanDocument {
    /// The document, without `items` when that is a sequence.
    pub doc: Value,
    /// The items of a sequence `items`, each stripped, as compact JSON.
    pub items: Option<Vec<Box<str>>>,
}

impl LeanDocument {
    /// The document with its items back in place, for one that is not a
    /// list after all.
    pub fn into_value(self) -> Value {
        let mut doc = self.doc;
        if let (Some(items), Value::Object(map)) = (self.items, &mut doc) {
            let items = items.iter().map(|item| parse_own(item)).collect();
            map.insert("items".to_owned(), Value::Array(items));
        }
        doc
    }
}

/// Parses JSON text this module wrote.
pub(crate) fn parse_own(text: &str) -> Value {
    serde_json::from_str(text).expect("compact JSON written by serde_json parses")
}

impl<'de> Deserialize<'de> for LeanDocument {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Document;
        impl<'de> Visitor<'de> for Document {
            type Value = LeanDocument;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kubernetes object or list")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeanDocument, A::Error> {
                let mut out = Map::new();
                let mut items = None;
                while let Some(key) = map.next_key::<String>()? {
                    // A repeated key replaces the earlier one, as in a Value.
                    if key == "items" {
                        match map.next_value_seed(Items)? {
                            ItemsOr::Items(texts) => {
                                out.remove("items");
                                items = Some(texts);
                            }
                            ItemsOr::Other(value) => {
                                items = None;
                                out.insert(key, value);
                            }
                        }
                    } else {
                        out.insert(key, map.next_value()?);
                    }
                }
                Ok(LeanDocument {
                    doc: Value::Object(out),
                    items,
                })
            }

            // Anything else is whatever it is; the loader names the problem.
            fn visit_unit<E: de::Error>(self) -> Result<LeanDocument, E> {
                Ok(Value::Null.into())
            }

            fn visit_none<E: de::Error>(self) -> Result<LeanDocument, E> {
                Ok(Value::Null.into())
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<LeanDocument, E> {
                Ok(Value::Bool(v).into())
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LeanDocument, E> {
                Ok(Value::from(v).into())
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LeanDocument, E> {
                Ok(Value::from(v).into())
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LeanDocument, E> {
                Ok(Value::from(v).into())
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<LeanDocument, E> {
                Ok(Value::from(v).into())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<LeanDocument, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Into::into)
            }
        }
        deserializer.deserialize_any(Document)
    }
}

impl From<Value> for LeanDocument {
    fn from(doc: Value) -> Self {
        Self { doc, items: None }
    }
}

/// What `items` held: a sequence (its items as text) or something else.
enum ItemsOr {
    Items(Vec<Box<str>>),
    Other(Value),
}

/// The `items` of a list, each stripped once parsed.
struct Items;

impl<'de> DeserializeSeed<'de> for Items {
    type Value = ItemsOr;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ItemsOr, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Items {
    type Value = ItemsOr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list's items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ItemsOr, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(mut item) = seq.next_element::<Value>()? {
            if let Some(Value::Object(meta)) = item.get_mut("metadata") {
                strip(meta);
            }
            let text = serde_json::to_string(&item).expect("a serde_json::Value always serialises");
            items.push(text.into_boxed_str());
        }
        Ok(ItemsOr::Items(items))
    }

    // Not a sequence: kept as parsed, for the loader to refuse.
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ItemsOr, A::Error> {
        Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(ItemsOr::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<ItemsOr, E> {
        Ok(ItemsOr::Other(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<ItemsOr, E> {
        Ok(ItemsOr::Other(Value::Null))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<ItemsOr, E> {
        Ok(ItemsOr::Other(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ItemsOr, E> {
        Ok(ItemsOr::Other(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ItemsOr, E> {
        Ok(ItemsOr::Other(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ItemsOr, E> {
        Ok(ItemsOr::Other(v.into()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ItemsOr, E> {
        Ok(ItemsOr::Other(v.into()))
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
        let lean: LeanDocument = serde_json::from_value(doc.clone()).unwrap();
        let items = lean.items.as_ref().unwrap();
        assert_eq!(items.len(), 3);
        assert!(lean.doc.get("items").is_none());
        assert_eq!(lean.doc["metadata"], doc["metadata"]);
        let mut want = doc;
        want["items"][0]["metadata"] = json!({"name": "a", "annotations": {"keep": "me"}});
        assert_eq!(lean.into_value(), want);
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
            let lean: LeanDocument = serde_json::from_value(doc.clone()).unwrap();
            assert!(lean.items.is_none());
            assert_eq!(lean.doc, doc);
        }
        // A repeated key replaces the earlier one, as when parsing a Value.
        for (text, want) in [
            (r#"{"items": [1], "items": 2}"#, json!({"items": 2})),
            (r#"{"items": 2, "items": [1]}"#, json!({"items": [1]})),
        ] {
            let lean: LeanDocument = serde_json::from_str(text).unwrap();
            assert_eq!(lean.into_value(), want, "{text}");
            assert_eq!(serde_json::from_str::<Value>(text).unwrap(), want);
        }
        let yaml = "kind: List\nitems:\n- metadata:\n    name: a\n    managedFields: []\n";
        let lean: LeanDocument = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(
            lean.into_value(),
            json!({"kind": "List", "items": [{"metadata": {"name": "a"}}]})
        );
    }
}
