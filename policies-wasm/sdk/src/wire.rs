//! Documents exchanged across the Wasm boundary (see `policies-wasm/ABI.md`).
//!
//! Host and guest both use these types, so the two sides cannot drift apart.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::verdict::Verdict;

/// What `tollgate_describe` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Description {
    pub abi: i32,
    pub rules: Vec<RuleInfo>,
}

/// One rule a module exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInfo {
    pub name: String,
    /// Whether the rule can answer with a patch.
    #[serde(default)]
    pub mutating: bool,
}

/// What `tollgate_validate_settings` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsCheck {
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One entry of the `rules` argument of `tollgate_evaluate` (ABI v2): a
/// rule and the settings of the policy that runs it. A rule may appear more
/// than once, with different settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleCall<'a> {
    #[serde(borrow)]
    pub rule: Cow<'a, str>,
    /// The policy's validated settings; absent or `null` means `{}`.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<&'a RawValue>,
}

impl RuleCall<'_> {
    /// The settings as JSON bytes (empty when none were given).
    pub fn settings_json(&self) -> &[u8] {
        self.settings.map_or(b"".as_slice(), |s| s.get().as_bytes())
    }
}

/// What `tollgate_evaluate` returns (ABI v2): exactly one verdict per entry
/// of `rules`, in the same order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdicts {
    pub verdicts: Vec<Verdict>,
}

/// A read of cluster objects through the `lookup` host call.
///
/// `name` present means get-one; absent means list, optionally restricted to
/// one namespace and to objects carrying all of `labels`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LookupQuery {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// ABI v2: the index in the bundle of the rule asking, so the host
    /// checks that member's allow-list (the SDK sets it; absent in v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<u32>,
    /// The parts of each object the rule reads, as JSON Pointers (RFC 6901,
    /// e.g. `/spec/podSelector`); empty means whole objects. The answer keeps
    /// only these members (and the object's name and namespace; the query
    /// names the type), so a rule that scans thousands of objects receives and
    /// parses a fraction of them. See [`LookupQuery::project`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

impl LookupQuery {
    /// List every object of a type.
    pub fn list(api_version: &str, kind: &str) -> Self {
        Self {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            ..Self::default()
        }
    }

    /// Get one object by name (`namespace` is `None` for cluster-scoped kinds).
    pub fn get(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        Self {
            namespace: namespace.map(str::to_owned),
            name: Some(name.to_owned()),
            ..Self::list(api_version, kind)
        }
    }

    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    pub fn with_label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Keeps only the members of `fields` (see [`LookupQuery::fields`]).
    pub fn with_fields(mut self, fields: &[&str]) -> Self {
        self.fields = fields.iter().map(|f| (*f).to_owned()).collect();
        self
    }

    /// What of `object` the answer carries: the whole object without
    /// `fields`, otherwise its identity and the members the pointers name.
    /// Pointers step through mappings only (a member inside an array is kept
    /// with its whole array); a pointer that names nothing adds nothing.
    /// Every backend projects with this function, so they agree on meaning.
    pub fn project(&self, object: &serde_json::Value) -> serde_json::Value {
        use serde_json::{Map, Value};
        if self.fields.is_empty() {
            return object.clone();
        }
        // The query names the type; each object is named by these.
        const IDENTITY: [&str; 2] = ["/metadata/name", "/metadata/namespace"];
        let mut out = Value::Object(Map::new());
        for pointer in IDENTITY
            .iter()
            .copied()
            .chain(self.fields.iter().map(String::as_str))
        {
            let Some(path) = pointer_keys(pointer) else {
                continue;
            };
            let (mut from, mut to) = (object, &mut out);
            let mut keys = path.iter().peekable();
            while let Some(key) = keys.next() {
                let Some(next) = from.as_object().and_then(|m| m.get(key.as_ref())) else {
                    break;
                };
                let Value::Object(map) = to else { break };
                if keys.peek().is_none() || next.is_array() {
                    map.insert(key.to_string(), next.clone());
                    break;
                }
                if !next.is_object() {
                    break;
                }
                from = next;
                to = map
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
        }
        out
    }

    /// Whether an object (of this query's type) is selected by the query's
    /// namespace, name and labels. Backends use this so they agree on meaning.
    pub fn selects(&self, object: &serde_json::Value) -> bool {
        let meta = &object["metadata"];
        let field = |k: &str| meta[k].as_str();
        if let Some(ns) = &self.namespace
            && field("namespace") != Some(ns.as_str())
        {
            return false;
        }
        if let Some(name) = &self.name
            && field("name") != Some(name.as_str())
        {
            return false;
        }
        self.labels
            .iter()
            .all(|(k, v)| meta["labels"][k].as_str() == Some(v.as_str()))
    }
}

/// The member names of a JSON Pointer (`~1` is `/`, `~0` is `~`); `None`
/// for the empty pointer or one not starting with `/`, which name no member.
fn pointer_keys(pointer: &str) -> Option<Vec<Cow<'_, str>>> {
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|k| {
                if k.contains('~') {
                    Cow::Owned(k.replace("~1", "/").replace("~0", "~"))
                } else {
                    Cow::Borrowed(k)
                }
            })
            .collect(),
    )
}

/// The answer to a lookup, as the host writes it into guest memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LookupResult<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<&'a serde_json::value::RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl LookupResult<'_> {
    /// How the host frames a successful answer: `{"objects":` + array + `}`.
    pub const OBJECTS_PREFIX: &'static [u8] = br#"{"objects":"#;

    /// The array of an answer framed exactly as the host frames objects
    /// ([`Self::OBJECTS_PREFIX`], an array, `}`), unvalidated: the caller
    /// parses it, which validates it. `None` for anything else (an error,
    /// other spacing), which the caller parses as a whole.
    pub fn framed_objects(answer: &[u8]) -> Option<&[u8]> {
        let array = answer
            .strip_prefix(Self::OBJECTS_PREFIX)?
            .strip_suffix(b"}")?;
        (array.first() == Some(&b'[') && array.last() == Some(&b']')).then_some(array)
    }
}

/// Log levels of the `log` host call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum LogLevel {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl LogLevel {
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::Error,
            1 => Self::Warn,
            2 => Self::Info,
            3 => Self::Debug,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::LookupQuery;

    fn policy() -> serde_json::Value {
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "p", "namespace": "a", "uid": "u", "labels": {"x": "1"},
                         "annotations": {"net.beta.kubernetes.io/network-policy": "dd", "a/b": "s"}},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": []}]},
        })
    }

    #[test]
    fn no_fields_is_the_whole_object() {
        let q = LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy");
        assert_eq!(q.project(&policy()), policy());
    }

    #[test]
    fn fields_keep_identity_and_the_named_members() {
        let q = LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy").with_fields(&[
            "/spec/podSelector",
            "/spec/ingress/0/from",
            "/metadata/annotations/a~1b",
            "/spec/missing",
            "/metadata/name/deeper",
            "",
            "no-slash",
        ]);
        assert_eq!(
            q.project(&policy()),
            json!({
                "metadata": {"name": "p", "namespace": "a", "annotations": {"a/b": "s"}},
                "spec": {"podSelector": {}, "ingress": [{"from": []}]},
            })
        );
    }

    #[test]
    fn overlapping_pointers_keep_the_wider_member() {
        let q = LookupQuery::list("v1", "Namespace").with_fields(&["/spec", "/spec/podSelector"]);
        assert_eq!(q.project(&policy())["spec"], policy()["spec"]);
        let q = LookupQuery::list("v1", "Namespace").with_fields(&["/spec/podSelector", "/spec"]);
        assert_eq!(q.project(&policy())["spec"], policy()["spec"]);
    }

    #[test]
    fn the_host_framing_yields_its_array_and_nothing_else_does() {
        use super::LookupResult;
        assert_eq!(
            LookupResult::framed_objects(br#"{"objects":[{"a":1}]}"#),
            Some(br#"[{"a":1}]"#.as_slice())
        );
        assert_eq!(
            LookupResult::framed_objects(br#"{"objects":[]}"#),
            Some(b"[]".as_slice())
        );
        for other in [
            br#"{"error":"refused"}"#.as_slice(),
            br#"{ "objects":[]}"#,
            br#"{"objects":null}"#,
            br#"{"objects":[]"#,
            br#"{"objects":}"#,
            b"",
        ] {
            assert_eq!(LookupResult::framed_objects(other), None, "{other:?}");
        }
    }

    #[test]
    fn fields_travel_on_the_wire_only_when_set() {
        let q = LookupQuery::list("v1", "Namespace");
        assert!(!serde_json::to_string(&q).unwrap().contains("fields"));
        let q = q.with_fields(&["/metadata/annotations"]);
        let text = serde_json::to_string(&q).unwrap();
        assert!(
            text.contains(r#""fields":["/metadata/annotations"]"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<LookupQuery>(&text).unwrap(), q);
    }
}
