//! The namespaces not prepared for v1 NetworkPolicy semantics (R9): those
//! whose NetworkPolicies would become active, and the DefaultDeny ones that
//! would lose their isolation.
//!
//! A cluster may hold thousands of namespaces and policies, nearly all of
//! them prepared. The host computes both differences ([`from_host`]) and
//! keeps them until the objects change, so the guest receives the handful
//! of names that decide the verdict; [`in_guest`] is how the guest computed
//! them before, kept for hosts without `oneOf` and `except` and for answers
//! it refuses, so the verdict and its message stay what they were.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;
use tollgate_sdk::views::{NetworkPolicySpec, Str};
use tollgate_sdk::wire::LookupQuery;
use tollgate_sdk::{Cluster, LookupError};

use crate::netpol;

/// The namespaces not prepared for v1 semantics, each list ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unprepared {
    /// Namespaces holding NetworkPolicies without the DefaultDeny
    /// annotation: their policies would become active.
    pub to_clean: Vec<String>,
    /// DefaultDeny namespaces without a default-deny policy: they would
    /// lose their isolation.
    pub to_isolate: Vec<String>,
}

/// [`Unprepared`], the two set differences computed by the host
/// ([`from_host`]); in the guest as before ([`in_guest`]) when the host
/// cannot answer them (a host without `oneOf` and `except`) or an answer
/// is not of the shape the cluster's objects give (the guest then fails
/// closed exactly as it did).
pub fn unprepared(cluster: &dyn Cluster) -> Result<Unprepared, LookupError> {
    match from_host(cluster) {
        Ok(Some(unprepared)) => Ok(unprepared),
        Ok(None) | Err(_) => in_guest(cluster),
    }
}

/// [`Unprepared`] from the host. A cluster may hold thousands of namespaces
/// and policies, nearly all of them prepared: the guest classifies the few
/// distinct annotation values and policyTypes, and the host answers the
/// namespaces of each difference (kept until the objects change), so the
/// guest receives the handful of names that decide the verdict. `None`
/// when an answer is of a shape [`in_guest`] refuses.
pub fn from_host(cluster: &dyn Cluster) -> Result<Option<Unprepared>, LookupError> {
    let namespaces = LookupQuery::list("v1", "Namespace");
    let policies = LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy");
    let annotations = cluster.lookup(
        &namespaces
            .clone()
            .where_non_empty(&[netpol::ISOLATION_ANNOTATION_POINTER])
            .distinct(&[netpol::ISOLATION_ANNOTATION_POINTER]),
    )?;
    let default_deny_values = annotations
        .parse_as::<Value>()?
        .into_iter()
        .filter(|a| a.as_str().is_some_and(netpol::is_default_deny_annotation));
    let default_deny = namespaces
        .where_one_of(netpol::ISOLATION_ANNOTATION_POINTER, default_deny_values)
        .distinct(&["/metadata/name"]);
    // Selects every pod and allows no ingress (the host filters):
    // default-deny when its policyTypes make it apply to ingress.
    let deny_shaped = policies.clone().where_empty(&netpol::DEFAULT_DENY_EMPTY);
    let types = cluster.lookup(&deny_shaped.clone().distinct(&[POLICY_TYPES]))?;
    let Some(mut isolating) = isolating_policy_types(&types.parse_as::<&RawValue>()?) else {
        return Ok(None);
    };
    // Absent (or null) policyTypes: `null` stands for both.
    if isolates(None) {
        isolating.push(Value::Null);
    }
    let isolated = deny_shaped
        .where_one_of(POLICY_TYPES, isolating)
        .distinct(&["/metadata/namespace"]);
    let to_clean = cluster.lookup(
        &policies
            .distinct(&["/metadata/namespace"])
            .except(default_deny.clone()),
    )?;
    let to_isolate = cluster.lookup(&default_deny.except(isolated))?;
    // Names are read as [`in_guest`] reads them: one it refuses (a
    // snapshot's policy with `namespace: null`, a name JSON must escape)
    // is for it to refuse.
    let (Ok(to_clean), Ok(to_isolate)) =
        (to_clean.parse_as::<&str>(), to_isolate.parse_as::<&str>())
    else {
        return Ok(None);
    };
    let owned = |names: Vec<&str>| ascending(names).into_iter().map(str::to_owned).collect();
    Ok(Some(Unprepared {
        to_clean: owned(to_clean),
        to_isolate: owned(to_isolate),
    }))
}

const POLICY_TYPES: &str = "/spec/policyTypes";

/// The distinct policyTypes of default-deny-shaped policies that make them
/// isolate ingress; `None` when one is not a list of strings.
fn isolating_policy_types(types: &[&RawValue]) -> Option<Vec<Value>> {
    let mut isolating = Vec::new();
    for raw in types {
        let parsed = serde_json::from_str::<Option<Vec<Str<'_>>>>(raw.get()).ok()?;
        if isolates(parsed) {
            isolating.push(serde_json::from_str(raw.get()).ok()?);
        }
    }
    Some(isolating)
}

/// Whether a policy that selects every pod and allows no ingress isolates
/// ingress with these policyTypes.
fn isolates(policy_types: Option<Vec<Str<'_>>>) -> bool {
    netpol::is_default_deny_spec(&NetworkPolicySpec {
        policy_types,
        ..NetworkPolicySpec::default()
    })
}

/// [`Unprepared`] computed in the guest from every annotated namespace and
/// every namespace holding policies, as R9 did before the host answered
/// the differences: the fallback of [`unprepared`], and what tests compare
/// [`from_host`] with.
pub fn in_guest(cluster: &dyn Cluster) -> Result<Unprepared, LookupError> {
    // The host filters and reduces, so the guest receives each annotated
    // namespace with its annotation, the namespaces that hold policies,
    // and the namespace and policyTypes of each policy shaped like the
    // guide's default-deny.
    let annotated = cluster.lookup(
        &LookupQuery::list("v1", "Namespace")
            .where_non_empty(&[netpol::ISOLATION_ANNOTATION_POINTER])
            .distinct(&["/metadata/name", netpol::ISOLATION_ANNOTATION_POINTER]),
    )?;
    // Annotations are taken as raw JSON strings: thousands of namespaces
    // share a handful of values, each unescaped and classified once.
    let annotated = annotated.parse_as::<(&str, &RawValue)>()?;
    let with_policies = cluster.lookup(
        &LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy")
            .distinct(&["/metadata/namespace"]),
    )?;
    let with_policies = ascending(with_policies.parse_as::<&str>()?);
    let deny_shaped = cluster.lookup(
        &LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy")
            .where_empty(&netpol::DEFAULT_DENY_EMPTY)
            .distinct(&["/metadata/namespace", POLICY_TYPES]),
    )?;
    let deny_shaped = deny_shaped.parse_as::<(Option<&str>, Option<Vec<Str<'_>>>)>()?;
    // Distinct answers come in name order, the cluster's namespace order.
    let mut classified: BTreeMap<&str, bool> = BTreeMap::new();
    let mut default_deny = Vec::new();
    for (name, annotation) in annotated {
        let is_default_deny = *classified.entry(annotation.get()).or_insert_with(|| {
            serde_json::from_str::<Str<'_>>(annotation.get())
                .is_ok_and(|a| netpol::is_default_deny_annotation(&a))
        });
        if is_default_deny {
            default_deny.push(name);
        }
    }
    let isolated: Vec<&str> = deny_shaped
        .into_iter()
        .filter_map(|(namespace, policy_types)| isolates(policy_types).then_some(namespace?))
        .collect();
    let (isolated, default_deny) = (ascending(isolated), ascending(default_deny));
    Ok(Unprepared {
        to_clean: minus(&with_policies, &default_deny),
        to_isolate: minus(&default_deny, &isolated),
    })
}

/// `names` in ascending order, each once. Distinct answers already come
/// that way (in their JSON text's order, which for names is theirs), so
/// this only checks, in one pass; it sorts only what does not.
fn ascending<T: Ord>(mut names: Vec<T>) -> Vec<T> {
    if !names.is_sorted_by(|a, b| a < b) {
        names.sort_unstable();
        names.dedup();
    }
    names
}

/// The names of `a` not in `b`, both [`ascending`]: one merge pass. A
/// cluster may hold thousands of namespaces, and sets built of them cost
/// R9 a fifth of its time in comparisons.
fn minus(a: &[&str], b: &[&str]) -> Vec<String> {
    let mut b = b.iter().peekable();
    a.iter()
        .filter(|name| {
            while b.next_if(|other| *other < *name).is_some() {}
            b.peek() != Some(name)
        })
        .map(|name| (*name).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{ascending, minus};

    #[test]
    fn minus_merges_ascending_names() {
        assert_eq!(minus(&["a", "b", "c", "d"], &["b", "d", "e"]), ["a", "c"]);
        assert_eq!(minus(&["a"], &[]), ["a"]);
        assert!(minus(&[], &["a"]).is_empty());
        assert!(minus(&["a", "b"], &["a", "b"]).is_empty());
    }

    #[test]
    fn ascending_sorts_and_dedups_only_when_needed() {
        assert_eq!(ascending(vec!["a", "b"]), ["a", "b"]);
        assert_eq!(ascending(vec!["b", "a", "b"]), ["a", "b"]);
        // A namespace holding two default-deny policies is named twice.
        assert_eq!(ascending(vec!["a", "a", "c"]), ["a", "c"]);
    }
}
