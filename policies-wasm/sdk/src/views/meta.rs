//! What every view shares: metadata, label selectors, `IntOrString`, and the
//! serde helpers that read Kubernetes JSON as the API server writes it
//! (`null` lists and maps, explicit `null` versus an absent key).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A string borrowed from the request where it has no escapes.
pub type Str<'a> = Cow<'a, str>;
pub type StrMap<'a> = BTreeMap<Str<'a>, Str<'a>>;

/// `metadata`, the fields rules read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta<'a> {
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    /// `generateName`: Pods of a controller often have no `name` yet at
    /// CREATE.
    #[serde(borrow, default)]
    pub generate_name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub namespace: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub uid: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub labels: StrMap<'a>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub annotations: StrMap<'a>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub owner_references: Vec<OwnerReference<'a>>,
}

impl ObjectMeta<'_> {
    /// `name`, else `generateName`, else empty.
    pub fn name_or_generated(&self) -> &str {
        self.name
            .as_deref()
            .or(self.generate_name.as_deref())
            .unwrap_or("")
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(|v| v.as_ref())
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(|v| v.as_ref())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference<'a> {
    #[serde(borrow, default)]
    pub api_version: Str<'a>,
    #[serde(borrow, default)]
    pub kind: Str<'a>,
    #[serde(borrow, default)]
    pub name: Str<'a>,
    #[serde(default)]
    pub controller: Option<bool>,
}

/// Kubernetes `IntOrString` (`1` or `"25%"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum IntOrString<'a> {
    Int(i64),
    Str(#[serde(borrow)] Str<'a>),
}

impl IntOrString<'_> {
    /// Whether this is exactly the integer `n` (`"1"` or `"100%"` are not).
    pub fn is_int(&self, n: i64) -> bool {
        matches!(self, Self::Int(v) if *v == n)
    }
}

impl std::fmt::Display for IntOrString<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Int(v) => write!(f, "{v}"),
            Self::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// `metav1.LabelSelector`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector<'a> {
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub match_labels: StrMap<'a>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub match_expressions: Vec<LabelSelectorRequirement<'a>>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LabelSelectorRequirement<'a> {
    #[serde(borrow, default)]
    pub key: Str<'a>,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    #[serde(borrow, default)]
    pub operator: Str<'a>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub values: Vec<Str<'a>>,
}

impl LabelSelector<'_> {
    /// `{}`: selects everything.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether `labels` satisfy the selector, as the API server evaluates
    /// it. An unknown operator selects nothing (the API server would have
    /// refused the object that carries it).
    pub fn matches<'l>(&self, labels: impl Fn(&str) -> Option<&'l str>) -> bool {
        let labels_match = self
            .match_labels
            .iter()
            .all(|(k, v)| labels(k) == Some(v.as_ref()));
        labels_match
            && self.match_expressions.iter().all(|e| {
                let value = labels(&e.key);
                let listed = value.is_some_and(|v| e.values.iter().any(|x| x == v));
                match e.operator.as_ref() {
                    "In" => listed,
                    "NotIn" => !listed,
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// `null` reads as the type's default (`labels: null` is an empty map).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Distinguishes an explicit `null` (`Some(None)`) from an absent key (`None`,
/// via `#[serde(default)]`).
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(json: &'static str) -> LabelSelector<'static> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn label_selectors_evaluate_like_the_api_server() {
        let labels = |k: &str| match k {
            "app" => Some("web"),
            "tier" => Some("front"),
            _ => None,
        };
        assert!(selector("{}").matches(labels));
        assert!(selector(r#"{"matchLabels": null, "matchExpressions": null}"#).is_empty());
        assert!(selector(r#"{"matchLabels": {"app": "web"}}"#).matches(labels));
        assert!(!selector(r#"{"matchLabels": {"app": "db"}}"#).matches(labels));
        let expr = |op: &str, values: &str| {
            let json = format!(
                r#"{{"matchExpressions": [{{"key": "tier", "operator": "{op}", "values": {values}}}]}}"#
            );
            selector(Box::leak(json.into_boxed_str())).matches(labels)
        };
        assert!(expr("In", r#"["front", "back"]"#));
        assert!(!expr("In", r#"["back"]"#));
        assert!(expr("NotIn", r#"["back"]"#));
        assert!(!expr("NotIn", r#"["front"]"#));
        assert!(expr("Exists", "null"));
        assert!(!expr("DoesNotExist", "[]"));
        assert!(!expr("Sometimes", "[]"));
        let missing =
            r#"{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}"#;
        assert!(selector(missing).matches(labels));
    }

    #[test]
    fn metadata_reads_null_collections_as_empty() {
        let meta: ObjectMeta<'_> = serde_json::from_str(
            r#"{"generateName": "web-", "labels": null, "annotations": {"a": "b"}, "ownerReferences": null}"#,
        )
        .unwrap();
        assert_eq!(meta.name_or_generated(), "web-");
        assert!(meta.labels.is_empty() && meta.owner_references.is_empty());
        assert_eq!(meta.annotation("a"), Some("b"));
        assert_eq!(meta.label("a"), None);
    }
}
