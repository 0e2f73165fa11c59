//! R17 anp-before-v3.32 and R18 v3.30.7-before-v3.31 on the published
//! files of `testdata/modern`: upgrades as `kubectl apply` of a release's
//! `calico*.yaml` (the kube-system calico-node DaemonSet) or
//! `tigera-operator.yaml` (the operator Deployment) make them. Also writes
//! the inputs of `cases/modern.test.yaml` and checks they are current.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::*;
use tollgate_sdk::NoCluster;
use tollgate_testkit::modern::{
    admin_network_policy, default_ip_pool, felix_default, kubeadm_kube_proxy, manifest_install,
    modern_doc, operator_install, tiered_policy, without_crds, write_snapshot,
};

fn node_ds(tag: &str, file: &str) -> Value {
    stored(&modern_doc(tag, file, "DaemonSet", "calico-node"))
}

/// The manifest upgrade `from` → `to` of `file`'s calico-node DaemonSet.
fn manifest_upgrade(from: &str, to: &str, file: &str) -> Value {
    update(&node_ds(from, file), &node_ds(to, file))
}

fn operator_deployment(tag: &str) -> Value {
    stored(&modern_doc(
        tag,
        "tigera-operator.yaml",
        "Deployment",
        "tigera-operator",
    ))
}

/// The operator upgrade `from` → `to`: its Deployment of `to`'s file.
fn operator_upgrade(from: &str, to: &str) -> Value {
    update(&operator_deployment(from), &operator_deployment(to))
}

fn with(mut objects: Vec<Value>, extra: impl IntoIterator<Item = Value>) -> Vec<Value> {
    objects.extend(extra);
    objects
}

// ---- R17 anp-before-v3.32 -----------------------------------------------------------

fn anp_cluster() -> Vec<Value> {
    with(
        manifest_install("v3.31.7", "calico.yaml"),
        [admin_network_policy("AdminNetworkPolicy", "sensitive-ns")],
    )
}

#[test]
fn r17_upgrading_to_v3_32_with_an_anp_is_denied() {
    let req = manifest_upgrade("v3.31.7", "v3.32.1", "calico.yaml");
    let v = run("anp-before-v3.32", &req, &cluster(anp_cluster()));
    assert_violation(
        &v,
        &[
            "Calico to v3.32.1",
            "AdminNetworkPolicy sensitive-ns",
            "ClusterNetworkPolicy",
        ],
    );
    let banp = with(
        manifest_install("v3.31.7", "calico.yaml"),
        [admin_network_policy(
            "BaselineAdminNetworkPolicy",
            "default",
        )],
    );
    assert_violation(
        &run("anp-before-v3.32", &req, &cluster(banp)),
        &["BaselineAdminNetworkPolicy default"],
    );
    let tiered = with(
        manifest_install("v3.31.7", "calico.yaml"),
        [
            tiered_policy(
                "adminnetworkpolicy",
                None,
                "kanp.adminnetworkpolicy.sensitive-ns",
            ),
            tiered_policy(
                "baselineadminnetworkpolicy",
                Some("default"),
                "kbanp.default",
            ),
        ],
    );
    let v = run("anp-before-v3.32", &req, &cluster(tiered));
    assert_violation(
        &v,
        &[
            "tier adminnetworkpolicy",
            "default/kbanp.default (tier baselineadminnetworkpolicy)",
        ],
    );
}

#[test]
fn r17_by_the_operator_too() {
    let objects = with(
        operator_install("v3.31.7"),
        [admin_network_policy("AdminNetworkPolicy", "a")],
    );
    let v = run(
        "anp-before-v3.32",
        &operator_upgrade("v3.31.7", "v3.32.1"),
        &cluster(objects),
    );
    assert_violation(&v, &["AdminNetworkPolicy a"]);
}

#[test]
fn r17_allows_upgrades_without_anps_or_below_v3_32() {
    let clean = cluster(manifest_install("v3.31.7", "calico.yaml"));
    for (from, to) in [
        ("v3.31.0", "v3.32.1"),
        ("v3.28.0", "v3.32.1"),
        ("v3.32.0", "v3.32.1"),
    ] {
        let v = run(
            "anp-before-v3.32",
            &manifest_upgrade(from, to, "calico.yaml"),
            &clean,
        );
        assert_allowed(&v);
        assert!(v.warnings.is_empty(), "{from}→{to}: {v:?}");
    }
    // ANPs are fine up to v3.31, and on an update within v3.32.
    let anp = cluster(anp_cluster());
    for (from, to) in [("v3.31.0", "v3.31.7"), ("v3.32.0", "v3.32.1")] {
        assert_allowed(&run(
            "anp-before-v3.32",
            &manifest_upgrade(from, to, "calico.yaml"),
            &anp,
        ));
    }
    // Not an upgrade: scaling, the controller, a CREATE of calico-node.
    let ctrl = stored(&modern_doc(
        "v3.32.1",
        "calico.yaml",
        "Deployment",
        "calico-kube-controllers",
    ));
    assert_allowed(&run("anp-before-v3.32", &update(&ctrl, &ctrl), &anp));
    assert_allowed(&run(
        "anp-before-v3.32",
        &create(&node_ds("v3.32.1", "calico.yaml")),
        &anp,
    ));
}

#[test]
fn r17_warns_about_policies_in_allow_tigera() {
    // The operator's own policies in the tier are its business.
    let mut theirs = tiered_policy(
        "allow-tigera",
        Some("calico-system"),
        "allow-tigera.kube-controller-access",
    );
    theirs["metadata"]["ownerReferences"] = json!([{"apiVersion": "operator.tigera.io/v1",
        "kind": "Installation", "name": "default", "uid": "uid-default"}]);
    let mine = tiered_policy("allow-tigera", Some("shop"), "allow-tigera.mine");
    let objects = with(manifest_install("v3.31.7", "calico.yaml"), [mine, theirs]);
    let req = manifest_upgrade("v3.31.7", "v3.32.1", "calico.yaml");
    let v = run("anp-before-v3.32", &req, &cluster(objects));
    assert_allowed(&v);
    let warning = v.warnings.first().expect("a warning");
    assert!(
        warning.contains("renames tier allow-tigera to calico-system"),
        "{v:?}"
    );
    assert!(warning.contains("shop/allow-tigera.mine"), "{v:?}");
    assert!(!warning.contains("kube-controller-access"), "{v:?}");
}

#[test]
fn r17_creating_an_anp_on_v3_32_is_denied() {
    let anp = admin_network_policy("AdminNetworkPolicy", "late");
    for install in [
        manifest_install("v3.32.1", "calico.yaml"),
        operator_install("v3.32.0"),
    ] {
        let v = run("anp-before-v3.32", &create(&anp), &cluster(install));
        assert_violation(
            &v,
            &[
                "AdminNetworkPolicy late would not be enforced",
                "ClusterNetworkPolicy",
            ],
        );
    }
    let banp = admin_network_policy("BaselineAdminNetworkPolicy", "default");
    let v = run(
        "anp-before-v3.32",
        &create(&banp),
        &cluster(manifest_install("v3.32.0", "calico.yaml")),
    );
    assert_violation(&v, &["BaselineAdminNetworkPolicy default"]);
    // On v3.31 they are enforced; with no Calico found there is nothing to say.
    for c in [
        cluster(manifest_install("v3.31.7", "calico.yaml")),
        cluster(operator_install("v3.29.0")),
    ] {
        assert_allowed(&run("anp-before-v3.32", &create(&anp), &c));
    }
    assert_allowed(&run("anp-before-v3.32", &create(&anp), &NoCluster));
}

#[test]
fn r17_fails_closed() {
    let v = run(
        "anp-before-v3.32",
        &manifest_upgrade("v3.31.7", "v3.32.1", "calico.yaml"),
        &Refusing,
    );
    assert_violation(&v, &["cannot verify"]);
    let anp = admin_network_policy("AdminNetworkPolicy", "late");
    assert_violation(
        &run("anp-before-v3.32", &create(&anp), &Refusing),
        &["cannot verify"],
    );
}

// ---- R18 v3.30.7-before-v3.31 --------------------------------------------------------

/// A v3.30.x `calico-bpf.yaml` install whose pool is the CrossSubnet VXLAN
/// pool of `calico-vxlan.yaml`.
fn bpf_vxlan_cluster(tag: &str) -> Vec<Value> {
    with(
        manifest_install(tag, "calico-bpf.yaml"),
        [default_ip_pool(tag, "calico-vxlan.yaml")],
    )
}

#[test]
fn r18_v3_30_6_to_v3_31_on_ebpf_with_vxlan_is_denied() {
    let req = manifest_upgrade("v3.30.6", "v3.31.0", "calico-bpf.yaml");
    let v = run(
        "v3.30.7-before-v3.31",
        &req,
        &cluster(bpf_vxlan_cluster("v3.30.6")),
    );
    assert_violation(
        &v,
        &[
            "v3.30.6 to v3.31.0",
            "FELIX_BPFENABLED",
            "IPPool default-ipv4-ippool (vxlanMode CrossSubnet)",
            "v3.30.7 first",
        ],
    );
}

#[test]
fn r18_v3_30_7_to_v3_31_is_admitted() {
    let req = manifest_upgrade("v3.30.7", "v3.31.0", "calico-bpf.yaml");
    let v = run(
        "v3.30.7-before-v3.31",
        &req,
        &cluster(bpf_vxlan_cluster("v3.30.7")),
    );
    assert_allowed(&v);
    assert!(v.warnings.is_empty(), "{v:?}");
}

#[test]
fn r18_vxlan_from_the_env_until_a_pool_exists() {
    // calico-vxlan.yaml's env on the eBPF DaemonSet, no IPPool created yet.
    let vxlan = |tag| {
        let mut ds = node_ds(tag, "calico-bpf.yaml");
        let env = ds["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .expect("env");
        for e in env
            .iter_mut()
            .filter(|e| e["name"] == "CALICO_IPV4POOL_VXLAN")
        {
            e["value"] = json!("CrossSubnet");
        }
        ds
    };
    let req = update(&vxlan("v3.30.6"), &vxlan("v3.31.0"));
    let v = run("v3.30.7-before-v3.31", &req, &NoCluster);
    assert_violation(&v, &["CALICO_IPV4POOL_VXLAN=CrossSubnet"]);
    // Once a pool exists it decides: calico-bpf.yaml's own pool is not VXLAN.
    let pool = cluster([default_ip_pool("v3.30.6", "calico-bpf.yaml")]);
    let v = run("v3.30.7-before-v3.31", &req, &pool);
    assert!(
        v.allowed && v.warnings[0].contains("no VXLAN pool"),
        "{v:?}"
    );
}

#[test]
fn r18_ebpf_without_vxlan_warns_and_no_ebpf_is_fine() {
    let objects = with(
        manifest_install("v3.30.6", "calico-bpf.yaml"),
        [default_ip_pool("v3.30.6", "calico-bpf.yaml")],
    );
    let v = run(
        "v3.30.7-before-v3.31",
        &manifest_upgrade("v3.30.6", "v3.31.0", "calico-bpf.yaml"),
        &cluster(objects),
    );
    assert!(v.allowed && v.warnings.len() == 1, "{v:?}");
    let vxlan = with(
        manifest_install("v3.30.6", "calico-vxlan.yaml"),
        [default_ip_pool("v3.30.6", "calico-vxlan.yaml")],
    );
    let v = run(
        "v3.30.7-before-v3.31",
        &manifest_upgrade("v3.30.6", "v3.31.0", "calico-vxlan.yaml"),
        &cluster(vxlan),
    );
    assert_allowed(&v);
    assert!(v.warnings.is_empty(), "{v:?}");
}

/// An operator install of `tag` switched to eBPF as the guide does
/// (`linuxDataplane: BPF`); its custom-resources.yaml pool is VXLANCrossSubnet.
fn operator_bpf_cluster(tag: &str) -> Vec<Value> {
    let mut objects = operator_install(tag);
    for o in objects.iter_mut().filter(|o| o["kind"] == "Installation") {
        o["spec"]["calicoNetwork"]["linuxDataplane"] = json!("BPF");
    }
    objects
}

#[test]
fn r18_by_the_operator_reads_installation_and_felix() {
    // custom-resources.yaml of v3.30.6 has a VXLANCrossSubnet pool.
    let req = operator_upgrade("v3.30.6", "v3.31.0");
    let objects = operator_install("v3.30.6");
    assert_allowed(&run("v3.30.7-before-v3.31", &req, &cluster(objects)));
    let objects = operator_bpf_cluster("v3.30.6");
    let v = run("v3.30.7-before-v3.31", &req, &cluster(objects));
    assert_violation(
        &v,
        &[
            "Installation default (linuxDataplane BPF)",
            "VXLANCrossSubnet",
            "tigera-operator.yaml",
        ],
    );
    let felix = with(operator_install("v3.30.6"), [felix_default(true)]);
    let v = run("v3.30.7-before-v3.31", &req, &cluster(felix));
    assert_violation(&v, &["FelixConfiguration default (bpfEnabled)"]);
}

#[test]
fn r18_fails_closed() {
    let req = manifest_upgrade("v3.30.6", "v3.31.0", "calico-bpf.yaml");
    assert_violation(
        &run("v3.30.7-before-v3.31", &req, &Refusing),
        &["cannot verify"],
    );
}

// ---- inputs of cases/modern.test.yaml --------------------------------------------

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

/// A snapshot directory's name and its objects.
type Snapshot = (&'static str, Vec<Value>);

/// The snapshot clusters and request files `cases/modern.test.yaml` reads.
fn case_inputs() -> (Vec<Snapshot>, Vec<(&'static str, Value)>) {
    let snapshots = vec![
        ("modern-v3.31.7-anp", anp_cluster()),
        ("modern-v3.32.1", manifest_install("v3.32.1", "calico.yaml")),
        ("modern-v3.30.6-bpf-vxlan", bpf_vxlan_cluster("v3.30.6")),
        ("modern-v3.30.7-bpf-vxlan", bpf_vxlan_cluster("v3.30.7")),
        (
            "modern-v3.31.0-typha",
            with(
                manifest_install("v3.31.0", "calico-typha.yaml"),
                (0..3).map(|i| node(&format!("node-{i:02}"), false, &[])),
            ),
        ),
        ("modern-ipvs", vec![kubeadm_kube_proxy("ipvs")]),
        (
            "modern-operator-v3.30.6-bpf",
            operator_bpf_cluster("v3.30.6"),
        ),
        (
            "modern-operator-v3.31.7-anp",
            with(
                operator_install("v3.31.7"),
                [admin_network_policy("AdminNetworkPolicy", "a")],
            ),
        ),
    ];
    let typha = stored(&modern_doc(
        "v3.31.0",
        "calico-typha.yaml",
        "Deployment",
        "calico-typha",
    ));
    let installation = |file| modern_doc("v3.31.0", file, "Installation", "default");
    let theirs = operator_install("v3.31.7")
        .into_iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "calico-kube-controllers")
        .expect("calico-system/calico-kube-controllers");
    let mut rolling = theirs.clone();
    rolling["spec"]["strategy"] = json!({"type": "RollingUpdate"});
    let latest = with_image(
        node_ds("v3.32.1", "calico.yaml"),
        "calico-node",
        "docker.io/calico/node:latest",
    );
    let requests = vec![
        (
            "calico-system-controller-rolling.json",
            update(&theirs, &rolling),
        ),
        ("create-calico-system-controller.json", create(&theirs)),
        ("create-calico-node-latest.json", create(&latest)),
        (
            "operator-upgrade-v3.30.6-v3.31.0.json",
            operator_upgrade("v3.30.6", "v3.31.0"),
        ),
        (
            "operator-upgrade-v3.31.7-v3.32.1.json",
            operator_upgrade("v3.31.7", "v3.32.1"),
        ),
        (
            "upgrade-v3.31.7-v3.32.1-calico.json",
            manifest_upgrade("v3.31.7", "v3.32.1", "calico.yaml"),
        ),
        (
            "create-anp.json",
            create(&admin_network_policy("AdminNetworkPolicy", "late")),
        ),
        (
            "upgrade-v3.30.6-v3.31.0-calico-bpf.json",
            manifest_upgrade("v3.30.6", "v3.31.0", "calico-bpf.yaml"),
        ),
        (
            "upgrade-v3.30.7-v3.31.0-calico-bpf.json",
            manifest_upgrade("v3.30.7", "v3.31.0", "calico-bpf.yaml"),
        ),
        (
            "typha-to-0.json",
            update(&typha, &with_replicas(typha.clone(), 0, 1)),
        ),
        (
            "typha-to-3.json",
            update(&typha, &with_replicas(typha.clone(), 3, 1)),
        ),
        (
            "installation-to-bpf.json",
            update(
                &stored(&installation("custom-resources.yaml")),
                &stored(&installation("custom-resources-bpf.yaml")),
            ),
        ),
    ];
    (snapshots, requests)
}

/// The file `write_snapshot` wrote in `dir` (`cluster.*`).
fn snapshot_file(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_stem().is_some_and(|s| s == "cluster"))
}

/// The case inputs on disk are what the published files give; with
/// `TOLLGATE_BLESS=1` they are (re)written.
#[test]
fn case_inputs_are_current() {
    let bless = std::env::var_os("TOLLGATE_BLESS").is_some();
    let (snapshots, requests) = case_inputs();
    let mut stale = Vec::new();
    for (dir, objects) in snapshots {
        let dir = cases_dir().join("snapshots").join(dir);
        let objects = without_crds(objects);
        if bless {
            write_snapshot(&dir, &objects);
        }
        let on_disk = snapshot_file(&dir)
            .map(|f| read_docs(&f))
            .unwrap_or_default();
        if on_disk.first().map(|l| &l["items"]) != Some(&json!(objects)) {
            stale.push(dir.display().to_string());
        }
    }
    for (file, request) in requests {
        let path = cases_dir().join("modern-requests").join(file);
        let text = serde_json::to_string_pretty(&request).expect("json") + "\n";
        if bless {
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&path, &text).expect("write");
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale (run with TOLLGATE_BLESS=1): {stale:?}"
    );
}

// ---- context grants ------------------------------------------------------------------

/// The grant of `grants` that covers `q`, if any.
fn grant_for(grants: &[Value], q: &tollgate_sdk::wire::LookupQuery) -> Option<usize> {
    grants.iter().position(|g| {
        g["apiVersion"] == q.api_version.as_str()
            && g["kind"] == q.kind.as_str()
            && match (g["namespaces"].as_array(), &q.namespace) {
                (None, _) => true,
                (Some(list), Some(ns)) => list.iter().any(|n| n == ns.as_str()),
                (Some(_), None) => false,
            }
    })
}

/// Every lookup of R17, R18, R22, R23 and R12 (whose grants now cover
/// `calico-system`) is granted in `policies.yaml`, and every grant is used.
#[test]
fn context_grants_exactly_what_the_release_rules_read() {
    let (snapshots, mut requests) = case_inputs();
    let mut clusters: Vec<Vec<Value>> = snapshots.into_iter().map(|(_, o)| o).collect();
    clusters.push(operator_install("v3.32.1"));
    let manifest = manifest_install("v3.32.1", "calico.yaml");
    let operator = operator_install("v3.32.1");
    let workload = |objects: &[Value], kind: &str, ns: &str, name: &str| {
        objects
            .iter()
            .find(|o| {
                o["kind"] == kind
                    && o["metadata"]["namespace"] == ns
                    && o["metadata"]["name"] == name
            })
            .cloned()
            .expect("a workload")
    };
    for (objects, ns) in [(&manifest, "kube-system"), (&operator, "calico-system")] {
        requests.push((
            "",
            create(&workload(objects, "DaemonSet", ns, "calico-node")),
        ));
        requests.push((
            "",
            create(&workload(
                objects,
                "Deployment",
                ns,
                "calico-kube-controllers",
            )),
        ));
    }
    requests.push(("", operator_upgrade("v3.30.6", "v3.31.0")));
    for id in [
        "anp-before-v3.32",
        "v3.30.7-before-v3.31",
        "typha-replicas",
        "ebpf-needs-iptables-kube-proxy",
        "version-skew",
    ] {
        let grants = policy(id)["context"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut used = vec![false; grants.len()];
        for objects in &clusters {
            let inner = cluster(objects.clone());
            let recording = Recording::new(&inner);
            for (_, request) in &requests {
                run(id, request, &recording);
            }
            for q in recording.queries.borrow().iter() {
                let i = grant_for(&grants, q)
                    .unwrap_or_else(|| panic!("{id}: reads {q:?} without a grant"));
                used[i] = true;
            }
        }
        for (grant, used) in grants.iter().zip(used) {
            assert!(used, "{id}: grant {grant} is never used");
        }
    }
}
