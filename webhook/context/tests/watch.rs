//! The watch backend against a local server speaking the API server's list,
//! watch and discovery protocol, through the real kube-rs client.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tollgate_context::watch::{ConnectError, connect};
use tollgate_context::{
    ClusterContext, ContextMetrics, LookupError, LookupQuery, ResourceType, WatchContext,
    WatchOptions,
};
use tollgate_testkit::fake_api::{FakeApiServer, eventually};

const NP: &str = "networking.k8s.io/v1";

fn ty(api_version: &str, kind: &str) -> ResourceType {
    ResourceType {
        api_version: api_version.into(),
        kind: kind.into(),
    }
}

fn fast() -> WatchOptions {
    WatchOptions {
        rediscover_every: Duration::from_millis(50),
        ..WatchOptions::default()
    }
}

fn namespace(name: &str) -> Value {
    json!({
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/metadata.name": name},
            "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:metadata": {}}}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"big\":true}"},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

fn policy(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    })
}

fn server_types(server: &FakeApiServer) {
    server.serve("v1", "Namespace", "namespaces", false);
    server.serve("v1", "Pod", "pods", true);
    server.serve(NP, "NetworkPolicy", "networkpolicies", true);
}

fn lookup(ctx: &dyn ClusterContext, query: &LookupQuery) -> Vec<Value> {
    serde_json::from_slice(&ctx.lookup(query).expect("lookup served")).unwrap()
}

fn names(objects: &[Value]) -> Vec<&str> {
    objects
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect()
}

async fn ready(ctx: &WatchContext) {
    tokio::time::timeout(Duration::from_secs(10), ctx.wait_ready())
        .await
        .expect("caches sync");
}

fn metrics_text(registry: &Registry) -> String {
    let mut out = String::new();
    encode(&mut out, registry).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_follow_added_modified_deleted_events() {
    let server = FakeApiServer::start().await;
    server_types(&server);
    for ns in ["kube-system", "default"] {
        server.apply("v1", "namespaces", namespace(ns));
    }
    server.apply(
        NP,
        "networkpolicies",
        policy("default", "deny", json!({"role": "deny"})),
    );

    let mut registry = Registry::default();
    let metrics = ContextMetrics::register(&mut registry);
    let ctx = WatchContext::start(
        server.client(),
        [ty("v1", "Namespace"), ty(NP, "NetworkPolicy")],
        metrics,
    );
    ready(&ctx).await;

    // Listed objects carry the queried apiVersion/kind (list items from the
    // server have neither) and lose managedFields and last-applied.
    let namespaces = lookup(&ctx, &LookupQuery::list("v1", "Namespace"));
    assert_eq!(names(&namespaces), ["default", "kube-system"]);
    assert_eq!(namespaces[0]["apiVersion"], "v1");
    assert_eq!(namespaces[0]["kind"], "Namespace");
    assert_eq!(namespaces[0]["status"]["phase"], "Active");
    assert!(namespaces[0]["metadata"].get("managedFields").is_none());
    assert!(namespaces[0]["metadata"].get("annotations").is_none());

    let by_label = LookupQuery::list(NP, "NetworkPolicy").with_label("role", "deny");
    assert_eq!(names(&lookup(&ctx, &by_label)), ["deny"]);

    // ADDED
    server.apply(
        NP,
        "networkpolicies",
        policy("kube-system", "allow", json!({"role": "deny"})),
    );
    eventually(|| lookup(&ctx, &by_label).len() == 2).await;
    assert_eq!(names(&lookup(&ctx, &by_label)), ["deny", "allow"]);
    let get = LookupQuery::get(NP, "NetworkPolicy", Some("kube-system"), "allow");
    assert_eq!(lookup(&ctx, &get)[0]["kind"], "NetworkPolicy");

    // MODIFIED: the label changes, so the labelled list changes.
    server.apply(
        NP,
        "networkpolicies",
        policy("kube-system", "allow", json!({"role": "allow"})),
    );
    eventually(|| lookup(&ctx, &by_label).len() == 1).await;
    assert_eq!(lookup(&ctx, &get)[0]["metadata"]["labels"]["role"], "allow");

    // DELETED
    server.delete(NP, "networkpolicies", Some("default"), "deny");
    eventually(|| lookup(&ctx, &by_label).is_empty()).await;
    assert_eq!(
        names(&lookup(&ctx, &LookupQuery::list(NP, "NetworkPolicy"))),
        ["allow"]
    );

    let text = metrics_text(&registry);
    assert!(
        text.contains(r#"tollgate_context_cache_objects{api_version="v1",kind="Namespace"} 2"#),
        "{text}"
    );
    assert!(text.contains(
        r#"tollgate_context_cache_objects{api_version="networking.k8s.io/v1",kind="NetworkPolicy"} 1"#
    ));
    assert!(text.contains(r#"tollgate_context_cache_synced{api_version="v1",kind="Namespace"} 1"#));
    assert!(!text.contains("tollgate_context_lookup_duration_seconds_count 0"));
    assert!(text.contains("tollgate_context_lookup_duration_seconds_count"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_initial_list() {
    let server = FakeApiServer::start().await;
    server_types(&server);
    server.apply("v1", "namespaces", namespace("kube-system"));
    server.hold_lists(true);

    let mut registry = Registry::default();
    let metrics = ContextMetrics::register(&mut registry);
    let ctx = WatchContext::start(server.client(), [ty("v1", "Namespace")], metrics);
    eventually(|| {
        server
            .requests()
            .iter()
            .any(|r| r.starts_with("/api/v1/namespaces?"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    assert!(!ctx.is_ready());
    assert_eq!(ctx.pending(), [ty("v1", "Namespace")]);
    let refused = ctx.lookup(&LookupQuery::list("v1", "Namespace"));
    assert!(matches!(refused, Err(LookupError::Unavailable(ref m)) if m.contains("not synced")));
    assert!(
        metrics_text(&registry)
            .contains(r#"tollgate_context_cache_synced{api_version="v1",kind="Namespace"} 0"#)
    );

    server.hold_lists(false);
    ready(&ctx).await;
    assert!(ctx.pending().is_empty());
    assert_eq!(
        names(&lookup(&ctx, &LookupQuery::list("v1", "Namespace"))),
        ["kube-system"]
    );
    assert!(
        metrics_text(&registry)
            .contains(r#"tollgate_context_cache_synced{api_version="v1",kind="Namespace"} 1"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_api_is_no_objects_and_is_picked_up_when_it_appears() {
    let server = FakeApiServer::start().await;
    server_types(&server);
    let tpr = ty("projectcalico.org/v1", "GlobalConfig");
    let no_kind = ty("v1", "NoSuchKind");

    let mut registry = Registry::default();
    let metrics = ContextMetrics::register(&mut registry);
    let ctx = WatchContext::start_with(
        server.client(),
        tollgate_context::plan::whole_types([tpr.clone(), no_kind.clone(), ty("v1", "Namespace")]),
        metrics,
        fast(),
    );
    ready(&ctx).await;
    let tpr_query = LookupQuery::list("projectcalico.org/v1", "GlobalConfig");
    assert!(lookup(&ctx, &tpr_query).is_empty());
    assert!(lookup(&ctx, &LookupQuery::list("v1", "NoSuchKind")).is_empty());
    let text = metrics_text(&registry);
    assert!(text.contains(
        r#"tollgate_context_api_absent{api_version="projectcalico.org/v1",kind="GlobalConfig"} 1"#
    ));
    assert!(text.contains(
        r#"tollgate_context_cache_synced{api_version="projectcalico.org/v1",kind="GlobalConfig"} 1"#
    ));

    // The group gets installed later.
    server.serve(
        "projectcalico.org/v1",
        "GlobalConfig",
        "globalconfigs",
        true,
    );
    server.apply(
        "projectcalico.org/v1",
        "globalconfigs",
        json!({"metadata": {"name": "config", "namespace": "kube-system"}, "spec": {"value": "x"}}),
    );
    eventually(|| ctx.lookup(&tpr_query).is_ok_and(|b| &*b != b"[]")).await;
    assert_eq!(lookup(&ctx, &tpr_query)[0]["spec"]["value"], "x");
    assert!(metrics_text(&registry).contains(
        r#"tollgate_context_api_absent{api_version="projectcalico.org/v1",kind="GlobalConfig"} 0"#
    ));

    // And removed again: back to no objects, not an error.
    server.unserve("projectcalico.org/v1", "GlobalConfig");
    server.drop_watches();
    eventually(|| ctx.lookup(&tpr_query).is_ok_and(|b| &*b == b"[]")).await;
    assert!(ctx.is_ready());
}

fn requests_matching(server: &FakeApiServer, prefix: &str, watch: bool) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.starts_with(prefix) && r.contains("watch=true") == watch)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_watch_resumes_and_misses_nothing() {
    let server = FakeApiServer::start().await;
    server_types(&server);
    server.apply("v1", "namespaces", namespace("a"));

    let ctx = WatchContext::start(
        server.client(),
        [ty("v1", "Namespace")],
        ContextMetrics::default(),
    );
    ready(&ctx).await;
    server.wait_for_watches("v1", "namespaces", 1).await;

    server.hold_watches(true);
    server.drop_watches();
    // Written while no watch is open: the new watch resumes from the last
    // resourceVersion it saw and gets these replayed.
    server.apply("v1", "namespaces", namespace("b"));
    server.delete("v1", "namespaces", None, "a");
    server.hold_watches(false);
    let all = LookupQuery::list("v1", "Namespace");
    eventually(|| names(&lookup(&ctx, &all)) == ["b"]).await;
    server.wait_for_watches("v1", "namespaces", 1).await;
    assert_eq!(
        requests_matching(&server, "/api/v1/namespaces?", false),
        1,
        "resumed, not relisted"
    );
    assert!(requests_matching(&server, "/api/v1/namespaces?", true) >= 2);

    // Events keep flowing on the new connection.
    server.apply("v1", "namespaces", namespace("c"));
    eventually(|| names(&lookup(&ctx, &all)) == ["b", "c"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_watch_relists_and_counts_a_restart() {
    let server = FakeApiServer::start().await;
    server_types(&server);
    server.apply("v1", "namespaces", namespace("a"));

    let mut registry = Registry::default();
    let metrics = ContextMetrics::register(&mut registry);
    let ctx = WatchContext::start(server.client(), [ty("v1", "Namespace")], metrics);
    ready(&ctx).await;
    server.wait_for_watches("v1", "namespaces", 1).await;

    server.hold_watches(true);
    server.drop_watches();
    server.apply("v1", "namespaces", namespace("b"));
    server.delete("v1", "namespaces", None, "a");
    server.compact();
    server.hold_watches(false);
    // The resumed watch gets 410 Gone; the relist replaces the whole cache,
    // so the deletion that was never seen as an event is not missed.
    let all = LookupQuery::list("v1", "Namespace");
    eventually(|| names(&lookup(&ctx, &all)) == ["b"]).await;
    assert_eq!(
        requests_matching(&server, "/api/v1/namespaces?", false),
        2,
        "relisted once"
    );
    assert!(
        ctx.is_ready(),
        "a relist does not make a synced cache unready"
    );
    let text = metrics_text(&registry);
    assert!(
        text.contains(
            r#"tollgate_context_watch_restarts_total{api_version="v1",kind="Namespace"} 1"#
        ),
        "{text}"
    );
    server.apply("v1", "namespaces", namespace("c"));
    eventually(|| names(&lookup(&ctx, &all)) == ["b", "c"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_keep_the_cache_unready_until_they_stop() {
    let server = FakeApiServer::start().await;
    server_types(&server);
    server.apply("v1", "namespaces", namespace("a"));
    server.set_failing(true);

    let mut registry = Registry::default();
    let metrics = ContextMetrics::register(&mut registry);
    let ctx = WatchContext::start(server.client(), [ty("v1", "Namespace")], metrics);
    eventually(|| {
        metrics_text(&registry).contains(r#"restarts_total{api_version="v1",kind="Namespace"} 1"#)
    })
    .await;
    // A 500 is not "absent": the cache refuses instead of answering "none".
    assert!(!ctx.is_ready());
    assert!(ctx.lookup(&LookupQuery::list("v1", "Namespace")).is_err());

    server.set_failing(false);
    ready(&ctx).await;
    assert_eq!(
        names(&lookup(&ctx, &LookupQuery::list("v1", "Namespace"))),
        ["a"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_types_adds_and_drops_caches_on_reload() {
    let server = FakeApiServer::start().await;
    server_types(&server);
    server.apply("v1", "namespaces", namespace("a"));
    server.apply(NP, "networkpolicies", policy("a", "p", json!({})));

    let mut registry = Registry::default();
    let metrics = ContextMetrics::register(&mut registry);
    let ctx = WatchContext::start(server.client(), [ty("v1", "Namespace")], metrics);
    ready(&ctx).await;
    let nps = LookupQuery::list(NP, "NetworkPolicy");
    assert!(matches!(ctx.lookup(&nps), Err(LookupError::Unavailable(m)) if m.contains("no cache")));

    ctx.set_types([ty("v1", "Namespace"), ty(NP, "NetworkPolicy")]);
    // The kept cache stays synced; the whole context waits for the new one.
    ready(&ctx).await;
    assert_eq!(names(&lookup(&ctx, &nps)), ["p"]);
    assert_eq!(
        ctx.types(),
        [ty(NP, "NetworkPolicy"), ty("v1", "Namespace")]
    );
    assert_eq!(
        requests_matching(&server, "/api/v1/namespaces?", false),
        1,
        "the kept cache was not restarted"
    );

    ctx.set_types([ty(NP, "NetworkPolicy")]);
    assert!(ctx.lookup(&LookupQuery::list("v1", "Namespace")).is_err());
    assert!(!metrics_text(&registry).contains(r#"kind="Namespace""#));
    eventually(|| server.watch_count("v1", "namespaces") == 0).await;

    ctx.set_types([]);
    assert!(ctx.is_ready());
    drop(ctx);
    eventually(|| server.watch_count(NP, "networkpolicies") == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_reads_a_kubeconfig() {
    let server = FakeApiServer::start().await;
    server_types(&server);
    server.apply("v1", "pods", json!({"metadata": {"name": "calico-node-x", "namespace": "kube-system", "labels": {"k8s-app": "calico-node"}}}));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
            server.url
        ),
    )
    .unwrap();
    let client = connect(Some(&path)).await.unwrap();
    let ctx = WatchContext::start(client, [ty("v1", "Pod")], ContextMetrics::default());
    ready(&ctx).await;
    let q = LookupQuery::list("v1", "Pod")
        .in_namespace("kube-system")
        .with_label("k8s-app", "calico-node");
    assert_eq!(names(&lookup(&ctx, &q)), ["calico-node-x"]);

    let missing = dir.path().join("nope");
    let Err(err) = connect(Some(&missing)).await else {
        panic!("a missing kubeconfig is an error");
    };
    assert!(matches!(err, ConnectError::Kubeconfig { ref path, .. } if *path == missing));
    assert!(err.to_string().contains("nope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_initial_list_is_read_in_pages() {
    let server = FakeApiServer::start().await;
    server_types(&server);
    server.preload(
        NP,
        "networkpolicies",
        (0..1_200).map(|i| {
            policy(
                &format!("ns-{}", i % 7),
                &format!("p-{i:04}"),
                json!({"i": i.to_string()}),
            )
        }),
    );
    let ctx = WatchContext::start(
        server.client(),
        [ty(NP, "NetworkPolicy")],
        ContextMetrics::default(),
    );
    ready(&ctx).await;
    let all = lookup(&ctx, &LookupQuery::list(NP, "NetworkPolicy"));
    assert_eq!(all.len(), 1_200);
    assert!(all.iter().all(|p| p["kind"] == "NetworkPolicy"));
    let pages = server
        .requests()
        .iter()
        .filter(|r| {
            r.starts_with("/apis/networking.k8s.io/v1/networkpolicies?")
                && !r.contains("watch=true")
        })
        .count();
    assert_eq!(pages, 3, "kube-rs pages by 500");
    let one = LookupQuery::list(NP, "NetworkPolicy")
        .in_namespace("ns-3")
        .with_label("i", "1193");
    assert_eq!(names(&lookup(&ctx, &one)), ["p-1193"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_watch_serves_until_the_staleness_bound_then_fails_and_relists_on_recovery() {
    let server = FakeApiServer::start().await;
    server_types(&server);
    server.apply("v1", "namespaces", namespace("a"));
    let mut registry = Registry::default();
    let metrics = ContextMetrics::register(&mut registry);
    let ctx = WatchContext::start_with(
        server.client(),
        tollgate_context::plan::whole_types([ty("v1", "Namespace")]),
        metrics,
        WatchOptions {
            max_staleness: Duration::from_millis(500),
            ..fast()
        },
    );
    ready(&ctx).await;
    server.wait_for_watches("v1", "namespaces", 1).await;
    let all = LookupQuery::list("v1", "Namespace");

    // The server goes away: the resumed watch fails.
    server.set_failing(true);
    server.drop_watches();
    let connected = r#"tollgate_context_cache_connected{api_version="v1",kind="Namespace"} 0"#;
    eventually(|| metrics_text(&registry).contains(connected)).await;
    // Within the bound, the last view answers.
    assert_eq!(names(&lookup(&ctx, &all)), ["a"]);
    // Past it, lookups fail with the reason, and /readyz can say which.
    eventually(|| ctx.lookup(&all).is_err()).await;
    let error = ctx.lookup(&all).unwrap_err().to_string();
    assert!(
        error.contains("the cache of v1 Namespace is stale"),
        "{error}"
    );
    assert!(error.contains("--max-context-staleness"), "{error}");
    assert_eq!(ctx.stale().len(), 1, "{:?}", ctx.stale());
    assert!(ctx.is_ready(), "stale is not unready: it was synced");
    let text = metrics_text(&registry);
    let stale = text
        .lines()
        .find(|l| l.starts_with("tollgate_context_cache_stale_seconds{"))
        .unwrap_or_else(|| panic!("{text}"));
    let seconds: f64 = stale.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(seconds > 0.0, "{stale}");

    // Meanwhile "b" appeared and "a" went; back, the watch lists afresh.
    server.apply("v1", "namespaces", namespace("b"));
    server.delete("v1", "namespaces", None, "a");
    let lists_before = requests_matching(&server, "/api/v1/namespaces?", false);
    server.set_failing(false);
    eventually(|| {
        ctx.lookup(&all)
            .is_ok_and(|_| names(&lookup(&ctx, &all)) == ["b"])
    })
    .await;
    assert!(requests_matching(&server, "/api/v1/namespaces?", false) > lists_before);
    assert!(ctx.stale().is_empty());
    assert!(
        metrics_text(&registry)
            .contains(r#"tollgate_context_cache_connected{api_version="v1",kind="Namespace"} 1"#)
    );
}

fn pod(ns: &str, name: &str, app: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": ns, "labels": {"k8s-app": app}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_watches_hold_only_what_the_grants_cover() {
    let server = FakeApiServer::start().await;
    server_types(&server);
    for (ns, name, app) in [
        ("kube-system", "calico-node-a", "calico-node"),
        ("kube-system", "coredns", "kube-dns"),
        ("default", "calico-node-x", "calico-node"),
    ] {
        server.apply("v1", "pods", pod(ns, name, app));
    }
    server.apply("v1", "namespaces", namespace("kube-system"));
    let grants: Vec<tollgate_context::Grant> = serde_yaml_ng::from_str(
        "[{apiVersion: v1, kind: Pod, namespaces: [kube-system], labels: {k8s-app: calico-node}},
          {apiVersion: v1, kind: Namespace, fields: []}]",
    )
    .unwrap();
    let plan = tollgate_context::watch_plan([&tollgate_context::AllowList::new("p", grants)]);
    let mut registry = Registry::default();
    let metrics = ContextMetrics::register(&mut registry);
    let ctx = WatchContext::start_with(server.client(), plan, metrics, fast());
    ready(&ctx).await;

    // The request names the namespace and selects the labels.
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("/api/v1/namespaces/kube-system/pods?")
                && r.contains("labelSelector=k8s-app%3Dcalico-node")),
        "{requests:?}"
    );
    let pods = LookupQuery::list("v1", "Pod")
        .in_namespace("kube-system")
        .with_label("k8s-app", "calico-node");
    assert_eq!(names(&lookup(&ctx, &pods)), ["calico-node-a"]);
    let text = metrics_text(&registry);
    assert!(
        text.contains(r#"tollgate_context_cache_objects{api_version="v1",kind="Pod"} 1"#),
        "{text}"
    );
    // Events outside the selection never reach the cache; inside, they do.
    server.apply("v1", "pods", pod("default", "web", "calico-node"));
    server.apply(
        "v1",
        "pods",
        pod("kube-system", "calico-node-b", "calico-node"),
    );
    eventually(|| names(&lookup(&ctx, &pods)) == ["calico-node-a", "calico-node-b"]).await;
    assert!(
        metrics_text(&registry)
            .contains(r#"tollgate_context_cache_objects{api_version="v1",kind="Pod"} 2"#)
    );
    // Metadata only: the Namespace's spec and status are not kept.
    let namespaces = lookup(
        &ctx,
        &LookupQuery::list("v1", "Namespace").distinct(&["/spec"]),
    );
    assert!(namespaces.is_empty(), "{namespaces:?}");
    let labels = lookup(
        &ctx,
        &LookupQuery::list("v1", "Namespace").distinct(&["/metadata/labels"]),
    );
    assert_eq!(
        labels,
        [json!({"kubernetes.io/metadata.name": "kube-system"})]
    );
}

/// An answer with `except` follows the events of both types: kept while
/// neither changes, made again when either does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn except_answers_follow_events_of_both_types() {
    let server = FakeApiServer::start().await;
    server_types(&server);
    for ns in ["a", "b", "c"] {
        server.apply("v1", "namespaces", namespace(ns));
    }
    server.apply(NP, "networkpolicies", policy("b", "p", json!({})));
    let ctx = WatchContext::start(
        server.client(),
        [ty("v1", "Namespace"), ty(NP, "NetworkPolicy")],
        ContextMetrics::register(&mut Registry::default()),
    );
    ready(&ctx).await;
    let names = LookupQuery::list("v1", "Namespace").distinct(&["/metadata/name"]);
    let holding = LookupQuery::list(NP, "NetworkPolicy").distinct(&["/metadata/namespace"]);
    let without = names.except(holding);
    assert_eq!(lookup(&ctx, &without), [json!("a"), json!("c")]);
    let kept = ctx.lookup(&without).unwrap();
    assert!(std::sync::Arc::ptr_eq(
        &kept,
        &ctx.lookup(&without).unwrap()
    ));
    // The other type changes.
    server.apply(NP, "networkpolicies", policy("a", "p", json!({})));
    eventually(|| lookup(&ctx, &without) == [json!("c")]).await;
    // This type changes.
    server.apply("v1", "namespaces", namespace("d"));
    eventually(|| lookup(&ctx, &without) == [json!("c"), json!("d")]).await;
    server.delete(NP, "networkpolicies", Some("b"), "p");
    eventually(|| lookup(&ctx, &without) == [json!("b"), json!("c"), json!("d")]).await;
    // A type no cache holds fails the whole query.
    let unknown = LookupQuery::list("v1", "Namespace")
        .except(LookupQuery::list("v1", "Secret").distinct(&["/metadata/namespace"]));
    assert!(ctx.lookup(&unknown).is_err());
}
