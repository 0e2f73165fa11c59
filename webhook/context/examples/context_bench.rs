//! Lookup latency and cache memory of the watch backend.
//!
//! `cargo run --release -p tollgate-context --example context_bench`
//!
//! A local server speaking the API server's list/watch protocol holds 3,000
//! Namespaces and 10,000 NetworkPolicies (as `kubectl apply` leaves them:
//! with managedFields and the last-applied annotation). A `WatchContext`
//! syncs them through the real kube-rs client; then lookups are timed one by
//! one, including the R9-style full scan (every Namespace and every
//! NetworkPolicy). Cache memory is the growth of live heap bytes (a counting
//! allocator) from before the watch started to after it synced.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_context::{ClusterContext, ContextMetrics, LookupQuery, ResourceType, WatchContext};

use tollgate_testkit::fake_api::FakeApiServer;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const NAMESPACES: usize = 3_000;
const POLICIES: usize = 10_000;
const NP: &str = "networking.k8s.io/v1";

fn managed_fields() -> Value {
    json!([{
        "apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kubectl-client-side-apply",
        "operation": "Update", "time": "2024-05-01T10:00:00Z",
        "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                     "f:labels": {".": {}, "f:team": {}}}, "f:spec": {"f:podSelector": {}, "f:ingress": {}}},
    }])
}

fn namespace(i: usize) -> Value {
    let name = format!("team-{i:04}");
    let mut annotations =
        json!({"kubectl.kubernetes.io/last-applied-configuration": "x".repeat(300)});
    if i.is_multiple_of(2) {
        annotations["net.beta.kubernetes.io/network-policy"] =
            json!("{\"ingress\":{\"isolation\":\"DefaultDeny\"}}");
    }
    json!({
        "metadata": {
            "name": name, "uid": format!("00000000-0000-0000-0000-{i:012}"),
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"kubernetes.io/metadata.name": name, "team": format!("t{}", i % 50)},
            "annotations": annotations, "managedFields": managed_fields(),
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

fn policy(i: usize) -> Value {
    json!({
        "metadata": {
            "name": format!("policy-{i:05}"), "namespace": format!("team-{:04}", i % NAMESPACES),
            "uid": format!("00000000-0000-0000-0001-{i:012}"), "generation": 1,
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"team": format!("t{}", i % 50), "tier": if i.is_multiple_of(10) { "edge" } else { "app" }},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "y".repeat(400)},
            "managedFields": managed_fields(),
        },
        "spec": {
            "podSelector": if i.is_multiple_of(3) { json!({}) } else { json!({"matchLabels": {"app": format!("app-{i}")}}) },
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": format!("t{}", i % 50)}}},
                                  {"podSelector": {"matchLabels": {"role": "frontend"}}}],
                         "ports": [{"protocol": "TCP", "port": 8080}]}],
        },
    })
}

struct Stats {
    p50: Duration,
    p99: Duration,
    bytes: usize,
}

/// Times `iterations` operations, cycling through `ops` (each operation is
/// one or more lookups done together) so no single key flatters the result.
fn measure(ctx: &dyn ClusterContext, iterations: usize, ops: &[Vec<LookupQuery>]) -> Stats {
    let mut times = Vec::with_capacity(iterations);
    let mut bytes = 0;
    for i in 0..iterations {
        let op = &ops[i % ops.len()];
        let started = Instant::now();
        bytes = op
            .iter()
            .map(|q| std::hint::black_box(ctx.lookup(q).unwrap()).len())
            .sum();
        times.push(started.elapsed());
    }
    times.sort();
    Stats {
        p50: times[times.len() / 2],
        p99: times[times.len() * 99 / 100],
        bytes,
    }
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = FakeApiServer::start().await;
    server.serve("v1", "Namespace", "namespaces", false);
    server.serve(NP, "NetworkPolicy", "networkpolicies", true);
    server.preload("v1", "namespaces", (0..NAMESPACES).map(namespace));
    server.preload(NP, "networkpolicies", (0..POLICIES).map(policy));
    let served: usize = (0..NAMESPACES)
        .map(|i| namespace(i).to_string().len())
        .chain((0..POLICIES).map(|i| policy(i).to_string().len()))
        .sum();

    let live_before = LIVE.load(Ordering::Relaxed);
    let started = Instant::now();
    let types = [
        ResourceType {
            api_version: "v1".into(),
            kind: "Namespace".into(),
        },
        ResourceType {
            api_version: NP.into(),
            kind: "NetworkPolicy".into(),
        },
    ];
    let ctx = WatchContext::start(server.client(), types, ContextMetrics::default());
    ctx.wait_ready().await;
    let sync = started.elapsed();
    // Let the list buffers of the client and server go.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cache_bytes = LIVE.load(Ordering::Relaxed).saturating_sub(live_before);

    println!("cache: {NAMESPACES} Namespaces + {POLICIES} NetworkPolicies");
    println!(
        "  initial list + sync through kube-rs: {:.0} ms",
        sync.as_secs_f64() * 1e3
    );
    println!(
        "  heap held by the caches: {:.1} MiB (objects as served, with managedFields/last-applied: {:.1} MiB)",
        mib(cache_bytes),
        mib(served)
    );
    if let Some(rss) = rss_kib() {
        println!(
            "  process RSS (includes the fake API server and its copy): {:.1} MiB",
            rss as f64 / 1024.0
        );
    }

    let get_ns: Vec<_> = (0..NAMESPACES)
        .step_by(7)
        .map(|i| {
            vec![LookupQuery::get(
                "v1",
                "Namespace",
                None,
                &format!("team-{i:04}"),
            )]
        })
        .collect();
    let get_np: Vec<_> = (0..POLICIES)
        .step_by(13)
        .map(|i| {
            let ns = format!("team-{:04}", i % NAMESPACES);
            vec![LookupQuery::get(
                NP,
                "NetworkPolicy",
                Some(&ns),
                &format!("policy-{i:05}"),
            )]
        })
        .collect();
    let list_in_ns: Vec<_> = (0..NAMESPACES)
        .step_by(11)
        .map(|i| vec![LookupQuery::list(NP, "NetworkPolicy").in_namespace(&format!("team-{i:04}"))])
        .collect();
    let labelled = vec![vec![
        LookupQuery::list(NP, "NetworkPolicy").with_label("tier", "edge"),
    ]];
    let r9 = vec![vec![
        LookupQuery::list("v1", "Namespace"),
        LookupQuery::list(NP, "NetworkPolicy"),
    ]];

    println!("\nlookup latency (answer = the JSON array the guest receives)");
    println!(
        "  {:<52} {:>10} {:>10} {:>12}",
        "operation", "p50", "p99", "answer"
    );
    let rows = [
        ("get Namespace by name", 20_000, &get_ns),
        ("get NetworkPolicy by namespace/name", 20_000, &get_np),
        ("list NetworkPolicies in one namespace", 20_000, &list_in_ns),
        (
            "list NetworkPolicies by label, all namespaces",
            300,
            &labelled,
        ),
        (
            "R9 scan: list all Namespaces + all NetworkPolicies",
            200,
            &r9,
        ),
    ];
    for (name, iterations, ops) in rows {
        let stats = measure(&ctx, iterations, ops);
        println!(
            "  {:<52} {:>10} {:>10} {:>8.1} KiB",
            name,
            format!("{:.2?}", stats.p50),
            format!("{:.2?}", stats.p99),
            stats.bytes as f64 / 1024.0
        );
    }
}
