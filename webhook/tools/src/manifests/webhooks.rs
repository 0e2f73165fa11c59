//! The Validating- and MutatingWebhookConfiguration, generated from the
//! policies' `match:` so that the API server calls Tollgate for exactly the
//! requests some policy selects.
//!
//! - **Rules** (group/version/resource, operation) come from each policy's
//!   kinds; a `subresource` pattern names the owner's resource
//!   (`deployments/scale`).
//! - **matchConditions** carry the rest of each match (names, namespaces,
//!   images, labels, changed fields) as CEL; a webhook's condition is the
//!   OR of its policies', each guarded by its own kinds and operations.
//! - **One webhook per failure policy** (and per object/namespace selector,
//!   where every policy of a webhook agrees on one): the API server then
//!   fails closed only for what a fail-closed policy guards. Policies whose
//!   rules overlap are one component (their summed timeouts); its
//!   fail-closed policies go to a fail-closed webhook, and its fail-open
//!   ones to a fail-open webhook whose condition excludes every request a
//!   fail-closed policy of the component matches (that request goes to the
//!   fail-closed webhook, where the host evaluates both). So no request
//!   ever reaches two webhooks of a configuration: each review is evaluated
//!   once, and a request only a fail-open policy matches (an uncordon) is
//!   never blocked by a fail-closed neighbour (a freeze of Node labels).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tollgate_host::config::{KindMatch, MatchConfig};
use tollgate_host::matcher::cel;
use tollgate_host::{FailurePolicy, PolicyConfig};

use super::objects::{Install, labels};

/// Which endpoint a configuration calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Validate,
    Mutate,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Self::Validate => "/validate",
            Self::Mutate => "/mutate",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Mutate => "mutate",
        }
    }
}

/// One rule of a webhook: `apiGroups`/`apiVersions`/`resources` for some
/// operations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub operations: BTreeSet<String>,
}

/// The webhook rules of one policy's match.
pub fn rules(m: &MatchConfig) -> Vec<Rule> {
    let operations: BTreeSet<String> = if m.operations.is_empty() {
        BTreeSet::from(["*".to_owned()])
    } else {
        m.operations
            .iter()
            .map(|o| cel::operation_name(*o).to_owned())
            .collect()
    };
    // No kinds: every resource and subresource, as the host selects.
    let any = [
        KindMatch::default(),
        KindMatch {
            subresource: Some("*".to_owned()),
            ..KindMatch::default()
        },
    ];
    let kinds: Vec<&KindMatch> = if m.kinds.is_empty() {
        any.iter().collect()
    } else {
        m.kinds.iter().collect()
    };
    let wild = |v: &Option<String>| v.clone().unwrap_or_else(|| "*".to_owned());
    kinds
        .into_iter()
        .map(|k| {
            let main = match k.kind.as_deref() {
                None | Some("*") => "*".to_owned(),
                Some(kind) => tollgate_sdk::api::plural(kind),
            };
            let resource = match k.subresource.as_deref() {
                None => main,
                Some(sub) => format!("{main}/{sub}"),
            };
            Rule {
                group: wild(&k.group),
                version: wild(&k.version),
                resource,
                operations: operations.clone(),
            }
        })
        .collect()
}

fn overlaps(a: &Rule, b: &Rule) -> bool {
    let same = |x: &str, y: &str| x == "*" || y == "*" || x == y;
    let split = |r: &str| match r.split_once('/') {
        Some((main, sub)) => (main.to_owned(), Some(sub.to_owned())),
        None => (r.to_owned(), None),
    };
    let ((am, asub), (bm, bsub)) = (split(&a.resource), split(&b.resource));
    let resources = same(&am, &bm)
        && match (asub, bsub) {
            (None, None) => true,
            (Some(x), Some(y)) => same(&x, &y),
            _ => false,
        };
    same(&a.group, &b.group)
        && same(&a.version, &b.version)
        && resources
        && a.operations
            .iter()
            .any(|x| b.operations.iter().any(|y| same(x, y)))
}

/// The policies one webhook serves, with what they agree on.
#[derive(Debug, Clone)]
pub struct Webhook<'c> {
    pub name: String,
    pub policies: Vec<&'c PolicyConfig>,
    /// For a fail-open policy (by id), the fail-closed policies of its
    /// component whose rules overlap its own: requests they match go to
    /// the fail-closed webhook.
    pub excluded: BTreeMap<String, Vec<&'c PolicyConfig>>,
    pub failure_policy: FailurePolicy,
    pub timeout_seconds: u64,
    /// Namespaces every policy is restricted to (their union), if all are.
    pub namespaces: Option<BTreeSet<String>>,
    /// The label selector all policies share, as JSON.
    pub object_selector: Option<Value>,
}

impl Webhook<'_> {
    pub fn rules(&self) -> Vec<Rule> {
        merge(self.policies.iter().flat_map(|p| rules(&p.matches)))
    }

    /// The OR of every policy's match, each guarded by its own kinds and
    /// operations (the webhook's rules are their union). Policies that
    /// narrow the same way share one copy of the narrowing.
    pub fn condition(&self) -> String {
        let mut by_rest: Vec<(String, Vec<String>)> = Vec::new();
        for p in &self.policies {
            let (guard, mut rest) = cel::parts(&p.matches);
            if let Some(fail) = self.excluded.get(&p.id).filter(|f| !f.is_empty()) {
                let taken = cel::any(fail.iter().map(|f| {
                    let (guard, rest) = cel::parts(&f.matches);
                    term(&guard, &rest)
                }));
                rest = match rest.as_str() {
                    "true" => format!("!({taken})"),
                    _ => format!("({rest} && !({taken}))"),
                };
            }
            match by_rest.iter_mut().find(|(r, _)| *r == rest) {
                Some((_, guards)) if guards.contains(&guard) => {}
                Some((_, guards)) => guards.push(guard),
                None => by_rest.push((rest, vec![guard])),
            }
        }
        cel::any(by_rest.into_iter().map(|(rest, guards)| {
            let guard = if guards.iter().any(|g| g == "true") {
                "true".to_owned()
            } else {
                cel::any(guards)
            };
            term(&guard, &rest)
        }))
    }
}

/// `guard && rest`, without a `true` operand.
fn term(guard: &str, rest: &str) -> String {
    match (guard, rest) {
        ("true", _) => rest.to_owned(),
        (_, "true") => guard.to_owned(),
        _ => format!("({guard} && {rest})"),
    }
}

/// Rules with the same group, version and operations share one entry.
fn merge(rules: impl IntoIterator<Item = Rule>) -> Vec<Rule> {
    let set: BTreeSet<Rule> = rules.into_iter().collect();
    set.into_iter().collect()
}

/// A component's policies of one failure policy.
struct Part<'c> {
    failure_policy: FailurePolicy,
    members: Vec<&'c PolicyConfig>,
    /// The component's fail-closed policies, for a fail-open part.
    taken_by: Vec<&'c PolicyConfig>,
    /// The summed timeouts of the policies a request of this part may run.
    budget: f64,
}

/// Groups `policies` (those of one endpoint, in configuration order) into
/// webhooks, as the module docs say, named after the endpoint.
pub fn group_policies<'c>(policies: &[&'c PolicyConfig], endpoint: Endpoint) -> Vec<Webhook<'c>> {
    // Connected components of "their rules overlap".
    let of: Vec<Vec<Rule>> = policies.iter().map(|p| rules(&p.matches)).collect();
    let mut component: Vec<usize> = (0..policies.len()).collect();
    let find = |component: &Vec<usize>, mut i: usize| {
        while component[i] != i {
            i = component[i];
        }
        i
    };
    for i in 0..policies.len() {
        for j in 0..i {
            let overlap = of[i].iter().any(|a| of[j].iter().any(|b| overlaps(a, b)));
            if overlap {
                let (ri, rj) = (find(&component, i), find(&component, j));
                let (low, high) = (ri.min(rj), ri.max(rj));
                component[high] = low;
            }
        }
    }
    let mut components: BTreeMap<usize, Vec<&'c PolicyConfig>> = BTreeMap::new();
    for (i, p) in policies.iter().enumerate() {
        components.entry(find(&component, i)).or_default().push(p);
    }

    // A component's fail-closed and fail-open policies part (see the
    // module docs); parts that agree on failure policy and selectors share
    // a webhook.
    let mut parts: Vec<Part<'c>> = Vec::new();
    for members in components.into_values() {
        // Every policy of a component may run on a request of the
        // fail-closed part; only fail-open ones on the other.
        let budget = |ps: &[&PolicyConfig]| ps.iter().map(|p| p.cpu_budget.as_secs_f64()).sum();
        let whole: f64 = budget(&members);
        let (fail, ignore): (Vec<&PolicyConfig>, Vec<&PolicyConfig>) = members
            .into_iter()
            .partition(|p| p.failure_policy == FailurePolicy::Fail);
        if !fail.is_empty() {
            parts.push(Part {
                failure_policy: FailurePolicy::Fail,
                members: fail.clone(),
                taken_by: Vec::new(),
                budget: whole,
            });
        }
        if !ignore.is_empty() {
            parts.push(Part {
                failure_policy: FailurePolicy::Ignore,
                budget: budget(&ignore),
                members: ignore,
                taken_by: fail,
            });
        }
    }
    type Key = (bool, Option<BTreeSet<String>>, Option<String>);
    let mut webhooks: Vec<(Key, Webhook<'c>)> = Vec::new();
    for part in parts {
        let Part {
            failure_policy,
            members,
            taken_by,
            budget,
        } = part;
        // Only a fail-closed policy whose rules overlap a fail-open one's
        // can match its requests.
        let excluded: BTreeMap<String, Vec<&PolicyConfig>> = members
            .iter()
            .filter_map(|p| {
                let own = rules(&p.matches);
                let overlapping: Vec<&PolicyConfig> = taken_by
                    .iter()
                    .copied()
                    .filter(|f| {
                        rules(&f.matches)
                            .iter()
                            .any(|a| own.iter().any(|b| overlaps(a, b)))
                    })
                    .collect();
                (!overlapping.is_empty()).then(|| (p.id.clone(), overlapping))
            })
            .collect();
        let namespaces = members
            .iter()
            .all(|p| !p.matches.namespaces.is_empty())
            .then(|| {
                members
                    .iter()
                    .flat_map(|p| p.matches.namespaces.iter().cloned())
                    .collect::<BTreeSet<_>>()
            });
        let selectors: Vec<Option<Value>> = members
            .iter()
            .map(|p| p.matches.label_selector.as_ref().map(selector_json))
            .collect();
        let object_selector = selectors
            .iter()
            .all(|s| s.is_some() && *s == selectors[0])
            .then(|| selectors[0].clone())
            .flatten();
        let timeout_seconds = (budget.ceil() as u64).clamp(1, 30);
        let key: Key = (
            failure_policy == FailurePolicy::Fail,
            namespaces.clone(),
            object_selector.as_ref().map(Value::to_string),
        );
        match webhooks.iter_mut().find(|(k, _)| *k == key) {
            Some((_, webhook)) => {
                webhook.policies.extend(members);
                webhook.excluded.extend(excluded);
                webhook.timeout_seconds = webhook.timeout_seconds.max(timeout_seconds);
            }
            None => webhooks.push((
                key,
                Webhook {
                    name: String::new(),
                    policies: members,
                    excluded,
                    failure_policy,
                    timeout_seconds,
                    namespaces,
                    object_selector,
                },
            )),
        }
    }
    // Names: `validate-fail.tollgate.dev`, then `validate-fail-2...`.
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    webhooks
        .into_iter()
        .map(|(_, mut webhook)| {
            let policy = match webhook.failure_policy {
                FailurePolicy::Fail => "fail",
                FailurePolicy::Ignore => "ignore",
            };
            let n = seen.entry(policy).or_default();
            *n += 1;
            let suffix = if *n == 1 {
                String::new()
            } else {
                format!("-{n}")
            };
            webhook.name = format!("{}-{policy}{suffix}.tollgate.dev", endpoint.name());
            webhook.policies.sort_by_key(|p| {
                policies
                    .iter()
                    .position(|q| std::ptr::eq(*q, *p))
                    .unwrap_or(usize::MAX)
            });
            webhook
        })
        .collect()
}

fn selector_json(s: &tollgate_host::config::LabelSelectorConfig) -> Value {
    let mut selector = serde_json::Map::new();
    if !s.match_labels.is_empty() {
        selector.insert("matchLabels".into(), json!(s.match_labels));
    }
    if !s.match_expressions.is_empty() {
        let expressions: Vec<Value> = s
            .match_expressions
            .iter()
            .map(|e| {
                let mut x = json!({"key": e.key, "operator": e.operator});
                if !e.values.is_empty() {
                    x["values"] = json!(e.values);
                }
                x
            })
            .collect();
        selector.insert("matchExpressions".into(), Value::Array(expressions));
    }
    Value::Object(selector)
}

/// The configuration object (`ValidatingWebhookConfiguration` or
/// `MutatingWebhookConfiguration`) of `webhooks`.
pub fn configuration(install: &Install, endpoint: Endpoint, webhooks: &[Webhook<'_>]) -> Value {
    let kind = match endpoint {
        Endpoint::Validate => "ValidatingWebhookConfiguration",
        Endpoint::Mutate => "MutatingWebhookConfiguration",
    };
    let items: Vec<Value> = webhooks
        .iter()
        .map(|w| webhook_json(install, endpoint, w))
        .collect();
    let mut metadata = json!({"name": install.name, "labels": labels()});
    if let Some(annotations) = install.webhook_annotations() {
        metadata["annotations"] = annotations;
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "webhooks": items,
    })
}

fn webhook_json(install: &Install, endpoint: Endpoint, w: &Webhook<'_>) -> Value {
    // Rules that differ only in resource share an entry.
    let mut by_target: BTreeMap<(String, String, BTreeSet<String>), BTreeSet<String>> =
        BTreeMap::new();
    for r in w.rules() {
        by_target
            .entry((r.group, r.version, r.operations))
            .or_default()
            .insert(r.resource);
    }
    let rules: Vec<Value> = by_target
        .into_iter()
        .map(|((group, version, operations), resources)| {
            json!({
                "apiGroups": [group],
                "apiVersions": [version],
                "operations": operations,
                "resources": resources,
                "scope": "*",
            })
        })
        .collect();
    // Tollgate never guards its own namespace: it must always be able to
    // repair itself.
    let mut expressions = vec![json!({
        "key": "kubernetes.io/metadata.name",
        "operator": "NotIn",
        "values": [install.namespace],
    })];
    if let Some(namespaces) = &w.namespaces {
        expressions.push(json!({
            "key": "kubernetes.io/metadata.name",
            "operator": "In",
            "values": namespaces,
        }));
    }
    let mut webhook = json!({
        "name": w.name,
        "admissionReviewVersions": ["v1", "v1beta1"],
        "sideEffects": "None",
        "failurePolicy": match w.failure_policy {
            FailurePolicy::Fail => "Fail",
            FailurePolicy::Ignore => "Ignore",
        },
        "matchPolicy": "Equivalent",
        "timeoutSeconds": w.timeout_seconds,
        "clientConfig": install.client_config(endpoint.path()),
        "namespaceSelector": {"matchExpressions": expressions},
        "objectSelector": w.object_selector.clone().unwrap_or_else(|| json!({})),
        "rules": rules,
        "matchConditions": [{"name": "tollgate-policies", "expression": w.condition()}],
    });
    if endpoint == Endpoint::Mutate {
        // Another webhook's later change may undo a repair: run again.
        webhook["reinvocationPolicy"] = json!("IfNeeded");
    }
    webhook
}

#[cfg(test)]
mod tests {
    use tollgate_host::Config;

    use super::*;
    use tollgate_guests::DEFAULT_POLICIES;

    fn pack() -> Config {
        Config::from_yaml(DEFAULT_POLICIES, "pack").unwrap()
    }

    fn names(w: &Webhook<'_>) -> Vec<String> {
        w.policies.iter().map(|p| p.id.clone()).collect()
    }

    #[test]
    fn the_pack_gets_one_webhook_per_failure_policy_and_selector() {
        let config = pack();
        let all: Vec<&PolicyConfig> = config.policies.iter().collect();
        let validate = group_policies(&all, Endpoint::Validate);
        let summary: Vec<(String, Vec<String>, u64)> = validate
            .iter()
            .map(|w| (w.name.clone(), names(w), w.timeout_seconds))
            .collect();
        let ids = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            summary,
            vec![
                (
                    "validate-fail.tollgate.dev".to_owned(),
                    ids(&[
                        "controller-recreate",
                        "controller-single-replica",
                        "controller-one-active",
                        "controller-replicaset-first",
                        "node-one-at-a-time",
                        "kdd-v2.5-migration",
                        "v1-networkpolicy-semantics",
                        "v3-needs-v2.6.5",
                        "pinned-images",
                        "operator-migration-freeze",
                        "operator-migration-same-release",
                        "anp-before-v3.32",
                        "v3.30.7-before-v3.31",
                        "crds-before-operator",
                        "imageset-for-release",
                        "typha-replicas",
                        "ebpf-needs-iptables-kube-proxy",
                    ]),
                    9
                ),
                // Fail-open advice that shares kinds with fail-closed rules.
                (
                    "validate-ignore.tollgate.dev".to_owned(),
                    ids(&[
                        "node-uncordon-ready",
                        "version-skew",
                        "default-deny-shape",
                        "operator-owned"
                    ]),
                    2
                ),
                (
                    "validate-fail-2.tollgate.dev".to_owned(),
                    ids(&["node-pod-cordoned"]),
                    1
                ),
                // Restricted to kube-system: a namespaceSelector of its own.
                (
                    "validate-ignore-2.tollgate.dev".to_owned(),
                    ids(&["config-restart"]),
                    1
                ),
            ]
        );
        // A cordon goes to the fail-open webhook unless it also changes
        // what the migration freeze guards.
        let excluded = |w: &Webhook<'_>, id: &str| -> Vec<String> {
            w.excluded
                .get(id)
                .map(|f| f.iter().map(|p| p.id.clone()).collect())
                .unwrap_or_default()
        };
        assert_eq!(
            excluded(&validate[1], "node-uncordon-ready"),
            ["operator-migration-freeze"]
        );
        assert!(excluded(&validate[1], "default-deny-shape").is_empty());
        // The calico-node pod webhook is narrowed by selectors too.
        assert_eq!(
            validate[2].object_selector,
            Some(json!({"matchLabels": {"k8s-app": "calico-node"}}))
        );
        assert_eq!(
            validate[2].namespaces,
            Some(BTreeSet::from(["kube-system".to_owned()]))
        );
        let mutating: Vec<&PolicyConfig> = all.iter().copied().filter(|p| p.mutate).collect();
        let mutate = group_policies(&mutating, Endpoint::Mutate);
        let summary: Vec<(String, Vec<String>)> =
            mutate.iter().map(|w| (w.name.clone(), names(w))).collect();
        assert_eq!(
            summary,
            vec![
                (
                    "mutate-fail.tollgate.dev".to_owned(),
                    ids(&[
                        "controller-recreate",
                        "controller-single-replica",
                        "node-one-at-a-time"
                    ])
                ),
                (
                    "mutate-ignore.tollgate.dev".to_owned(),
                    ids(&["default-deny-shape", "operator-owned"])
                ),
            ]
        );
    }

    /// Two policies in different webhooks whose rules overlap: the
    /// fail-open one's condition excludes the fail-closed one.
    #[test]
    fn no_request_reaches_two_webhooks_of_a_configuration() {
        let config = pack();
        let all: Vec<&PolicyConfig> = config.policies.iter().collect();
        let mutating: Vec<&PolicyConfig> = all.iter().copied().filter(|p| p.mutate).collect();
        for (policies, endpoint) in [(all, Endpoint::Validate), (mutating, Endpoint::Mutate)] {
            let webhooks = group_policies(&policies, endpoint);
            let excludes = |w: &Webhook<'_>, p: &PolicyConfig, q: &PolicyConfig| {
                w.excluded
                    .get(&p.id)
                    .is_some_and(|f| f.iter().any(|f| f.id == q.id))
            };
            for (i, a) in webhooks.iter().enumerate() {
                for b in &webhooks[..i] {
                    for p in &a.policies {
                        for q in &b.policies {
                            let overlap = rules(&p.matches)
                                .iter()
                                .any(|x| rules(&q.matches).iter().any(|y| overlaps(x, y)));
                            assert!(
                                !overlap || excludes(a, p, q) || excludes(b, q, p),
                                "{} in {} and {} in {}",
                                p.id,
                                a.name,
                                q.id,
                                b.name
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_fail_open_policy_leaves_a_fail_closed_neighbours_requests_to_it() {
        let config = Config::from_yaml(
            "- id: freeze\n  module: m.wasm\n  failurePolicy: fail\n  match:\n    kinds: [{group: '', kind: Node}]\n    operations: [UPDATE]\n    changed: ['metadata.labels[example.com/frozen]']\n\
             - id: advice\n  module: m.wasm\n  failurePolicy: ignore\n  match:\n    kinds: [{group: '', kind: Node}]\n    operations: [UPDATE]\n    changed: [spec.unschedulable]\n",
            "t",
        )
        .unwrap();
        let all: Vec<&PolicyConfig> = config.policies.iter().collect();
        let webhooks = group_policies(&all, Endpoint::Validate);
        let summary: Vec<(&str, Vec<String>, FailurePolicy)> = webhooks
            .iter()
            .map(|w| (w.name.as_str(), names(w), w.failure_policy))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "validate-fail.tollgate.dev",
                    vec!["freeze".to_owned()],
                    FailurePolicy::Fail
                ),
                (
                    "validate-ignore.tollgate.dev",
                    vec!["advice".to_owned()],
                    FailurePolicy::Ignore
                ),
            ]
        );
        let (freeze, advice) = (webhooks[0].condition(), webhooks[1].condition());
        assert!(!freeze.contains("unschedulable"), "{freeze}");
        let (guard, rest) = cel::parts(&config.policies[0].matches);
        assert!(
            advice.contains(&format!("!({})", term(&guard, &rest))),
            "{advice}"
        );
        assert!(advice.contains("'unschedulable'"), "{advice}");
    }

    #[test]
    fn rules_follow_kinds_subresources_and_operations() {
        let config = Config::from_yaml(
            "- id: p\n  module: m.wasm\n  match:\n    kinds:\n      - {group: apps, kind: Deployment}\n      - {group: apps, kind: Deployment, subresource: scale}\n      - {group: '', kind: Pod}\n    operations: [DELETE]\n- id: q\n  module: m.wasm\n",
            "t",
        )
        .unwrap();
        let p = rules(&config.policies[0].matches);
        let resources: Vec<(&str, &str)> = p
            .iter()
            .map(|r| (r.group.as_str(), r.resource.as_str()))
            .collect();
        assert_eq!(
            resources,
            [
                ("apps", "deployments"),
                ("apps", "deployments/scale"),
                ("", "pods")
            ]
        );
        assert!(
            p.iter()
                .all(|r| r.operations == BTreeSet::from(["DELETE".to_owned()]))
        );
        // No match at all: everything, as the host would select.
        let q = rules(&config.policies[1].matches);
        let everything: Vec<(&str, &str)> = q
            .iter()
            .map(|r| (r.group.as_str(), r.resource.as_str()))
            .collect();
        assert_eq!(everything, [("*", "*"), ("*", "*/*")]);
        assert!(overlaps(&q[0], &p[0]));
        assert!(!overlaps(&p[0], &p[1]), "main resource vs its scale");
    }
}
