//! R9's namespaces, computed by the host (`oneOf` and `except` over the
//! stores, [`from_host`]) and as the guest computed them before
//! ([`in_guest`]): the same lists, the same verdicts and messages, on the
//! SDK's memory cluster and on the host's snapshot store, for prepared and
//! unprepared clusters, odd annotations and policyTypes, and the answers
//! the guest refuses.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::*;
use tollgate_calico::unprepared::{from_host, in_guest, unprepared};
use tollgate_context::{ClusterContext, SnapshotContext};
use tollgate_sdk::wire::LookupQuery;
use tollgate_sdk::{Cluster, LookupError, MemoryCluster, Objects};
use tollgate_testkit::objects::r9_variety;

const R9: &str = "v1-networkpolicy-semantics";

/// The host's store, as the `lookup` host call serves it.
struct Host(SnapshotContext);

impl Host {
    fn new(objects: &[Value]) -> Self {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
        Self(SnapshotContext::from_text(Path::new("cluster.json"), &list.to_string()).unwrap())
    }
}

impl Cluster for Host {
    fn lookup(&self, query: &LookupQuery) -> Result<Objects, LookupError> {
        let answer = self
            .0
            .lookup(query)
            .map_err(|e| LookupError::Refused(e.to_string()))?;
        Ok(Objects::from_json(answer.to_vec()))
    }
}

/// A host that knows neither `oneOf` nor `except` (as an older one): R9
/// then computes in the guest, as it did before.
struct Older<'c>(&'c dyn Cluster);

impl Cluster for Older<'_> {
    fn lookup(&self, query: &LookupQuery) -> Result<Objects, LookupError> {
        if query.except.is_some() || !query.one_of.is_empty() {
            return Err(LookupError::Refused(
                "malformed lookup query: unknown field `oneOf`".to_owned(),
            ));
        }
        self.0.lookup(query)
    }
}

fn upgrade() -> Value {
    let ds = |dir: &str| doc(&format!("{dir}/calico.yaml"), "DaemonSet", "calico-node");
    update(&stored(&ds("v2.2/kdd")), &served(&ds("v2.3/kdd")))
}

/// `count` namespaces prepared as the bench's large cluster is: every
/// other one DefaultDeny with the guide's policy and an application's.
fn prepared(count: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..count {
        let ns = format!("team-{i:04}");
        let default_deny = i % 3 != 0;
        out.push(namespace(&ns, default_deny));
        if default_deny {
            out.push(default_deny_policy(&ns));
            out.push(network_policy(
                &ns,
                "allow-same-namespace",
                json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}),
            ));
        }
    }
    out
}

/// Both clusters of `objects`, named.
fn clusters(objects: &[Value]) -> [(&'static str, Box<dyn Cluster>); 2] {
    [
        ("memory", Box::new(MemoryCluster::new(objects.to_vec()))),
        ("snapshot", Box::new(Host::new(objects))),
    ]
}

/// The host's answer is the guest's, and so are the verdict and message.
fn assert_same(what: &str, objects: &[Value]) -> Option<String> {
    let mut message = None;
    for (backend, cluster) in clusters(objects) {
        let cluster = cluster.as_ref();
        let before = in_guest(cluster);
        assert_eq!(unprepared(cluster), before, "{what} on {backend}");
        let request = upgrade();
        let verdict = run(R9, &request, cluster);
        assert_eq!(
            verdict,
            run(R9, &request, &Older(cluster)),
            "{what} on {backend}"
        );
        if let Ok(before) = before {
            assert_eq!(from_host(cluster), Ok(Some(before)), "{what} on {backend}");
        }
        message = verdict.message;
    }
    message
}

#[test]
fn prepared_clusters_are_allowed_either_way() {
    assert_eq!(assert_same("prepared", &prepared(300)), None);
    assert_eq!(assert_same("empty", &[]), None);
}

#[test]
fn every_kind_of_unprepared_namespace_is_named_alike() {
    let variety = r9_variety();
    let message = assert_same("variety", &variety).expect("a denial");
    let mut large = prepared(300);
    large.extend(variety);
    assert_eq!(
        assert_same("variety in a large cluster", &large),
        Some(message.clone())
    );
    for (named, says) in [
        (
            "r9-ann-empty, r9-ann-none, r9-ann-object, r9-ann-plain, r9-clean-00",
            "become active",
        ),
        (
            "r9-allows-some, r9-ann-escaped, r9-isolate-00",
            "lose their isolation",
        ),
        ("and 8 more", "become active"),
    ] {
        assert!(message.contains(named), "{says}: {named} in {message}");
    }
    for prepared in [
        "r9-types-both",
        "r9-types-absent",
        "r9-types-null",
        "r9-selector-null",
        "r9-two-denies",
        "r9-ann-spaced",
        "r9-ann-number",
    ] {
        assert!(
            !message.contains(&format!("{prepared},")),
            "{prepared} in {message}"
        );
    }
}

/// Answers the guest refuses are refused alike: the host's path hands
/// them to the guest's, which fails closed as before.
#[test]
fn answers_the_guest_refuses_fail_closed_alike() {
    let mut no_namespace = network_policy("x", "p", json!({"podSelector": {}}));
    no_namespace["metadata"]["namespace"] = Value::Null;
    let string_types = network_policy(
        "r9-x",
        "p",
        json!({"podSelector": {}, "policyTypes": "Ingress"}),
    );
    let quoted = [
        namespace("we\"ird", false),
        network_policy(
            "we\"ird",
            "p",
            json!({"podSelector": {"matchLabels": {"a": "b"}}}),
        ),
    ];
    for (what, odd) in [
        ("a policy with namespace null", vec![no_namespace]),
        (
            "policyTypes a string",
            vec![namespace("r9-x", true), string_types],
        ),
        ("a name JSON escapes", quoted.to_vec()),
    ] {
        let mut objects = prepared(30);
        objects.extend(odd);
        for (backend, cluster) in clusters(&objects) {
            let cluster = cluster.as_ref();
            assert_eq!(from_host(cluster), Ok(None), "{what} on {backend}");
            assert!(in_guest(cluster).is_err(), "{what} on {backend}");
        }
        let message = assert_same(what, &objects).unwrap_or_default();
        assert!(message.starts_with("cannot verify"), "{what}: {message}");
    }
}

/// A refused lookup fails closed with the same message.
#[test]
fn a_refused_lookup_fails_alike() {
    let request = upgrade();
    assert_eq!(
        run(R9, &request, &Refusing),
        run(R9, &request, &Older(&Refusing))
    );
    assert_eq!(unprepared(&Refusing), in_guest(&Refusing));
}
