//! Custom resources as their CustomResourceDefinition serves them: the
//! scope (a cluster-scoped CR gets no `default` namespace), the resource
//! name (`spec.names.plural`) and the `default:` values of the version's
//! structural schema, which the API server applies to every request and
//! every read before a webhook sees the object. The CRDs come from the
//! cluster and from earlier objects of the same input (`kubectl apply -f`
//! of `operator-crds.yaml` with `custom-resources.yaml`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::served::gvk;

/// The CRDs known so far, by the `(group, kind)` they define.
#[derive(Debug, Default, Clone)]
pub struct Crds {
    by_kind: BTreeMap<(String, String), Value>,
}

impl Crds {
    /// The CRDs among `objects`.
    pub fn new<'o>(objects: impl IntoIterator<Item = &'o Value>) -> Self {
        let mut crds = Self::default();
        for object in objects {
            crds.insert(object);
        }
        crds
    }

    /// Remembers `object` if it is a CRD (a later one of the same kind
    /// replaces the earlier, as an apply does).
    pub fn insert(&mut self, object: &Value) {
        let (group, _, kind) = gvk(object);
        if group != "apiextensions.k8s.io" || kind != "CustomResourceDefinition" {
            return;
        }
        let spec = &object["spec"];
        if let (Some(group), Some(kind)) = (spec["group"].as_str(), spec["names"]["kind"].as_str())
        {
            let key = (group.to_owned(), kind.to_owned());
            self.by_kind.insert(key, spec.clone());
        }
    }

    /// Whether objects of `group`/`kind` are namespaced, when a CRD says.
    pub fn namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        let scope = self.spec(group, kind)?["scope"].as_str()?;
        Some(scope == "Namespaced")
    }

    /// The resource name of `group`/`kind`, when a CRD says.
    pub fn plural(&self, group: &str, kind: &str) -> Option<&str> {
        self.spec(group, kind)?["names"]["plural"].as_str()
    }

    /// `object` with the `default:` values of its version's schema filled
    /// in where it has no value (apiextensions.k8s.io/v1 `versions[].schema`,
    /// or v1beta1's `validation` for every version).
    pub fn fill_defaults(&self, object: &mut Value) {
        let (group, version, kind) = gvk(object);
        let Some(spec) = self.spec(group, kind) else {
            return;
        };
        let per_version = spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == version)
            .map(|v| &v["schema"]["openAPIV3Schema"]);
        let schema = match per_version {
            Some(schema) if schema.is_object() => schema,
            _ => &spec["validation"]["openAPIV3Schema"],
        };
        let Some(map) = object.as_object_mut() else {
            return;
        };
        // The API server defaults neither the type nor the metadata.
        for (field, value) in map.iter_mut() {
            if !matches!(field.as_str(), "apiVersion" | "kind" | "metadata") {
                apply_defaults(value, &schema["properties"][field.as_str()]);
            }
        }
        fill(map, schema, &["apiVersion", "kind", "metadata"]);
    }

    fn spec(&self, group: &str, kind: &str) -> Option<&Value> {
        self.by_kind.get(&(group.to_owned(), kind.to_owned()))
    }
}

/// Structural-schema defaulting of `value` by `schema`: missing properties
/// that have a `default` get it, then every property, array item and
/// additional property is defaulted by its own schema.
fn apply_defaults(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            fill(map, schema, &[]);
            for (field, member) in map.iter_mut() {
                match schema["properties"].get(field.as_str()) {
                    Some(property) => apply_defaults(member, property),
                    None => apply_defaults(member, &schema["additionalProperties"]),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                apply_defaults(item, &schema["items"]);
            }
        }
        _ => {}
    }
}

/// Adds the missing properties of `map` whose schema has a `default`,
/// except `skip`; a filled-in default is itself defaulted.
fn fill(map: &mut Map<String, Value>, schema: &Value, skip: &[&str]) {
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    for (field, property) in properties {
        if skip.contains(&field.as_str()) || map.contains_key(field) {
            continue;
        }
        if let Some(default) = property.get("default") {
            let mut value = default.clone();
            apply_defaults(&mut value, property);
            map.insert(field.clone(), value);
        }
    }
}

#[cfg(test)]
#[path = "crd_tests.rs"]
pub(crate) mod tests;
