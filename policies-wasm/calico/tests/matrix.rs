//! Generates `docs/calico-upgrade-matrix.md`: which rules fire on each real
//! upgrade between neighbouring published Calico releases. With
//! `TOLLGATE_BLESS=1` the file is rewritten; otherwise the test fails when the
//! committed file is out of date, so a rule change cannot drift silently.

mod support;

use serde_json::{Value, json};
use support::*;

const VERSIONS: [&str; 11] = [
    "v1.6", "v2.0", "v2.1", "v2.2", "v2.3", "v2.4", "v2.5", "v2.6.2", "v2.6", "v3.0", "v3.1",
];
const FAMILIES: [&str; 5] = [
    "etcd",
    "etcd-kubeadm*",
    "kdd",
    "kdd-policy-only",
    "controller",
];
const CONTROLLER_NAMES: [&str; 2] = ["calico-policy-controller", "calico-kube-controllers"];

const DOC_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/calico-upgrade-matrix.md"
);

/// The manifest of a variant family in one release: `(path, documents)`.
fn variant(version: &str, family: &str) -> Option<(String, Vec<Value>)> {
    let root = corpus_path(&format!("manifests/{version}"));
    let rel = if family == "controller" {
        ["policy-controller.yaml", "calico-kube-controllers.yaml"]
            .into_iter()
            .find(|f| root.join(f).is_file())
            .map(|f| format!("{version}/{f}"))?
    } else {
        let dir = std::fs::read_dir(&root)
            .ok()?
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|d| match family.strip_suffix('*') {
                Some(prefix) => d.starts_with(prefix),
                None => d == family,
            })
            .min()?;
        format!("{version}/{dir}/calico.yaml")
    };
    let docs = manifest(&rel);
    Some((rel, docs))
}

fn is_controller(d: &Value) -> bool {
    matches!(d["kind"].as_str(), Some("Deployment" | "ReplicaSet"))
        && CONTROLLER_NAMES.contains(&d["metadata"]["name"].as_str().unwrap_or_default())
}

fn workloads(docs: &[Value]) -> impl Iterator<Item = &Value> {
    docs.iter().filter(|d| {
        matches!(
            d["kind"].as_str(),
            Some("DaemonSet" | "Deployment" | "ReplicaSet")
        )
    })
}

fn is_kdd(docs: &[Value]) -> bool {
    docs.iter().any(|d| {
        d["kind"] == "DaemonSet"
            && d.to_string()
                .contains(r#""name":"DATASTORE_TYPE","value":"kubernetes""#)
    })
}

fn same_object(a: &Value, b: &Value) -> bool {
    a["kind"] == b["kind"] && a["metadata"]["name"] == b["metadata"]["name"]
}

/// Common to both states: namespaces (`web` without and `legacy` with the
/// DefaultDeny annotation), the installed release's workloads (stored, all
/// replicas up) and calico-config.
fn base(from: &[Value], controllers_from: &[Value]) -> Vec<Value> {
    let mut objects = vec![
        namespace("default", false),
        namespace("kube-system", false),
        namespace("web", false),
        namespace("legacy", true),
    ];
    objects.extend(workloads(from).filter(|d| !is_controller(d)).map(stored));
    objects.extend(
        workloads(controllers_from)
            .filter(|d| is_controller(d))
            .map(stored),
    );
    objects.extend(from.iter().filter(|d| d["kind"] == "ConfigMap").cloned());
    objects
}

fn tpr_data() -> Vec<Value> {
    vec![
        calico_data("projectcalico.org/v1", "GlobalConfig", "clusterguid"),
        calico_data("projectcalico.org/v1", "IpPool", "192-168-0-0-16"),
    ]
}

fn unprepared(from: &[Value]) -> Vec<Value> {
    let mut objects = base(from, from);
    objects.push(network_policy(
        "web",
        "allow-frontend",
        json!({
        "podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}]}),
    ));
    if is_kdd(from) {
        objects.extend(tpr_data());
    }
    objects
}

/// `admitted`: the controller being written (other controllers are scaled to
/// 0 first), or `None` for the DaemonSet (controllers already upgraded).
fn prepared(from: &[Value], to: &[Value], admitted: Option<&Value>) -> Vec<Value> {
    let mut objects = match admitted {
        None => base(from, to),
        Some(ctrl) => base(from, from)
            .into_iter()
            .map(|o| {
                if is_controller(&o) && !same_object(&o, ctrl) {
                    with_replicas(o, 0, 0)
                } else {
                    o
                }
            })
            .collect(),
    };
    objects.push(default_deny_policy("legacy"));
    if is_kdd(from) {
        objects.extend(tpr_data());
        objects.push(calico_data(
            "crd.projectcalico.org/v1",
            "GlobalFelixConfig",
            "clusterguid",
        ));
        objects.push(calico_data(
            "crd.projectcalico.org/v1",
            "IPPool",
            "192-168-0-0-16",
        ));
    }
    objects
}

fn image_tag(obj: &Value, container: usize) -> String {
    let image = obj["spec"]["template"]["spec"]["containers"][container]["image"]
        .as_str()
        .unwrap_or_default();
    image
        .rsplit_once(':')
        .map_or("untagged", |(_, t)| t)
        .to_owned()
}

/// A cell: the default configuration's outcome of each rule that fires.
fn cell(outcomes: &[String]) -> String {
    let mut groups: [(&str, Vec<String>); 3] =
        [("deny", vec![]), ("patch", vec![]), ("warn", vec![])];
    for o in outcomes {
        let (id, kind) = if let Some(id) = o.strip_suffix("+patch") {
            (id, "patch")
        } else if let Some(id) = o.strip_suffix("~warning") {
            (id, "warn")
        } else {
            (
                o.as_str(),
                if policy(o)["mode"] == "enforce" {
                    "deny"
                } else {
                    "warn"
                },
            )
        };
        groups
            .iter_mut()
            .find(|(k, _)| *k == kind)
            .unwrap()
            .1
            .push(format!("`{id}`"));
    }
    let parts: Vec<String> = groups
        .iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(k, ids)| format!("{k}: {}", ids.join(", ")))
        .collect();
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join("; ")
    }
}

struct Row {
    pair: String,
    variant: String,
    request: String,
    unprepared: Vec<String>,
    prepared: Vec<String>,
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for pair in VERSIONS.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        for family in FAMILIES {
            let (Some((rel_a, from)), Some((rel_b, to))) = (variant(a, family), variant(b, family))
            else {
                continue;
            };
            let variant_label = format!(
                "{} → {}",
                rel_a.trim_end_matches("/calico.yaml"),
                rel_b.trim_end_matches("/calico.yaml")
            );
            if let (Some(old), Some(new)) = (
                try_find(&from, "DaemonSet", "calico-node"),
                try_find(&to, "DaemonSet", "calico-node"),
            ) {
                let request = update(&stored(&old), &served(&new));
                rows.push(Row {
                    pair: format!("{a} → {b}"),
                    variant: variant_label.clone(),
                    request: format!(
                        "UPDATE DaemonSet calico-node (node {} → {})",
                        image_tag(&old, 0),
                        image_tag(&new, 0)
                    ),
                    unprepared: outcomes(&request, &cluster(unprepared(&from))),
                    prepared: outcomes(&request, &cluster(prepared(&from, &to, None))),
                });
            }
            for new in to.iter().filter(|d| is_controller(d)) {
                let old = from.iter().find(|d| same_object(d, new));
                let (request, what) = match old {
                    Some(old) => (
                        update(&stored(old), &served(new)),
                        format!(
                            "UPDATE {} {} ({} → {})",
                            new["kind"].as_str().unwrap(),
                            new["metadata"]["name"].as_str().unwrap(),
                            image_tag(old, 0),
                            image_tag(new, 0)
                        ),
                    ),
                    None => (
                        create(&served(new)),
                        format!(
                            "CREATE {} {} ({})",
                            new["kind"].as_str().unwrap(),
                            new["metadata"]["name"].as_str().unwrap(),
                            image_tag(new, 0)
                        ),
                    ),
                };
                let replicas = new["spec"]["replicas"].as_i64().unwrap_or(1);
                let what = if replicas == 0 {
                    format!("{what}, replicas: 0")
                } else {
                    what
                };
                rows.push(Row {
                    pair: format!("{a} → {b}"),
                    variant: variant_label.clone(),
                    request: what,
                    unprepared: outcomes(&request, &cluster(unprepared(&from))),
                    prepared: outcomes(&request, &cluster(prepared(&from, &to, Some(new)))),
                });
            }
        }
    }
    rows
}

const HEADER: &str = "# Calico upgrade matrix

Generated by `policies-wasm/calico/tests/matrix.rs` from the published manifests
in `corpus/manifests` — do not edit by hand. Regenerate with
`TOLLGATE_BLESS=1 cargo test -p tollgate-calico --test matrix`.

For every pair of neighbouring published releases (v1.6, v2.0, v2.1, v2.2, v2.3,
v2.4, v2.5, v2.6.2, v2.6 (= v2.6.5), v3.0, v3.1) and every variant present in
both (`etcd`, `etcd-kubeadm*`, `kdd`, `kdd-policy-only`, and the standalone
controller manifest), the table shows what the 14 rules of the built-in pack,
with the default `policies.yaml`, say about the upgrade's writes: the UPDATE of
the calico-node DaemonSet and the CREATE or UPDATE of each controller
Deployment/ReplicaSet of the new manifest. Objects are sent as the API server
sends them when the manifests are applied through `apps/v1` (defaults applied;
the DaemonSet therefore rolls out with `maxUnavailable: 1`).

**Cluster states** (in-memory clusters given to the context-aware rules):

- *unprepared*: the old release is installed as published (every workload
  stored, all replicas running) with its calico-config; namespace `web` has no
  DefaultDeny annotation but holds a NetworkPolicy; namespace `legacy` is
  DefaultDeny-annotated without a default-deny policy; on the Kubernetes
  datastore the old TPR data (`GlobalConfig clusterguid`, `IpPool
  192-168-0-0-16` in kube-system) has no CRD copy.
- *prepared*: the guide's steps are done: `web`'s policy is deleted and `legacy`
  holds the guide's `default-deny` policy; on KDD the TPR data is mirrored to
  `GlobalFelixConfig` / `IPPool` CRD objects; for the DaemonSet the controllers
  were upgraded first (the new release's controllers are running); for a
  controller, every other controller was scaled to 0 first (e.g.
  `kubectl scale rs -n kube-system calico-policy-controller --replicas=0`). The
  etcd v2→v3 data migration of Calico v3 cannot be shown in the Kubernetes API,
  so its warning stays. `version-skew` still warns on a controller write in
  this state: the guide upgrades the controller before the DaemonSet, so the
  two differ until the DaemonSet follows.

**Cells**: `deny` = violation of an `enforce` policy; `patch` = repaired on
`/mutate` (denied on `/validate` until repaired); `warn` = violation of a `warn`
policy or a warning; — = nothing to say.

| upgrade | variant | request | unprepared | prepared |
|---|---|---|---|---|
";

fn render(rows: &[Row]) -> String {
    let mut out = HEADER.to_owned();
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.pair,
            r.variant,
            r.request,
            cell(&r.unprepared),
            cell(&r.prepared)
        ));
    }
    out
}

fn find_row<'r>(
    rows: &'r [Row],
    pair: &str,
    variant_prefix: &str,
    request_prefix: &str,
) -> &'r Row {
    rows.iter()
        .find(|r| {
            r.pair == pair
                && r.variant.starts_with(variant_prefix)
                && r.request.starts_with(request_prefix)
        })
        .unwrap_or_else(|| panic!("no row {pair} {variant_prefix} {request_prefix}"))
}

#[test]
fn matrix_reflects_the_guide() {
    let rows = rows();
    let ds = "UPDATE DaemonSet";
    let kdd25 = find_row(&rows, "v2.4 → v2.5", "v2.4/kdd ", ds);
    assert!(kdd25.unprepared.contains(&"kdd-v2.5-migration".to_owned()));
    assert!(
        !kdd25
            .prepared
            .iter()
            .any(|o| o.starts_with("kdd-v2.5-migration"))
    );
    assert!(
        !find_row(&rows, "v2.4 → v2.5", "v2.4/etcd ", ds)
            .unprepared
            .iter()
            .any(|o| o.starts_with("kdd-v2.5"))
    );
    for (pair, variant) in [("v2.2 → v2.3", "v2.2/kdd "), ("v2.3 → v2.4", "v2.3/etcd ")] {
        let row = find_row(&rows, pair, variant, ds);
        assert!(
            row.unprepared
                .contains(&"v1-networkpolicy-semantics".to_owned()),
            "{pair}"
        );
        assert!(
            !row.prepared
                .contains(&"v1-networkpolicy-semantics".to_owned()),
            "{pair}"
        );
    }
    let v3 = find_row(&rows, "v2.6 → v3.0", "v2.6/etcd ", ds);
    assert!(!v3.prepared.contains(&"v3-needs-v2.6.5".to_owned()));
    assert!(v3.prepared.contains(&"v3-needs-v2.6.5~warning".to_owned()));
    let rs = find_row(
        &rows,
        "v1.6 → v2.0",
        "v1.6/policy-controller.yaml",
        "CREATE Deployment",
    );
    assert!(
        rs.unprepared
            .contains(&"controller-replicaset-first".to_owned())
    );
    assert!(rs.prepared.is_empty(), "{:?}", rs.prepared);
    let kube = find_row(
        &rows,
        "v2.5 → v2.6.2",
        "v2.5/etcd ",
        "CREATE Deployment calico-kube-controllers",
    );
    assert!(
        kube.unprepared
            .contains(&"controller-one-active".to_owned())
    );
    assert!(!kube.prepared.contains(&"controller-one-active".to_owned()));
    // With the preparation done nothing is denied anywhere.
    for r in &rows {
        let denied: Vec<_> = r
            .prepared
            .iter()
            .filter(|o| {
                !o.contains('~') && !o.ends_with("+patch") && policy(o)["mode"] == "enforce"
            })
            .collect();
        assert!(
            denied.is_empty(),
            "{} {} {}: {denied:?}",
            r.pair,
            r.variant,
            r.request
        );
    }
}

#[test]
fn committed_matrix_is_up_to_date() {
    // The file's second part, today's releases, is generated by
    // `webhook/tools/tests/upgrade_matrix.rs` after its marker; this test owns
    // the part before it.
    const MARKER: &str =
        "<!-- today's releases: generated by webhook/tools/tests/upgrade_matrix.rs -->";
    let text = render(&rows());
    let committed = std::fs::read_to_string(DOC_PATH).unwrap_or_default();
    let (ours, theirs) = match committed.find(MARKER) {
        Some(at) => committed.split_at(at),
        None => (committed.as_str(), ""),
    };
    if std::env::var_os("TOLLGATE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(DOC_PATH, format!("{text}{theirs}")).expect("write the matrix");
        return;
    }
    assert!(
        ours == text,
        "docs/calico-upgrade-matrix.md is out of date: run TOLLGATE_BLESS=1 cargo test -p tollgate-calico --test matrix"
    );
}
