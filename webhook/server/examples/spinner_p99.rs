//! Latency of calico-node reviews alone and while a 5 s spinning policy is
//! hit by 400 concurrent Node reviews (the issue 10 finding: p99 went from
//! 117 ms to 6.9 s and 21 of 200 reviews were denied at their deadline).
//! Drives the admission service in-process (queue, per-policy shares,
//! breaker, blocking pool, sandbox) with the built-in Calico pack.
//!
//! `cargo run --release -p tollgate-server --example spinner_p99 [-- --breaker]`

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde_json::{Value, json};
use tollgate_context::EmptyContext;
use tollgate_host::{Config, Endpoint, PolicySet, Sandbox, SandboxLimits};
use tollgate_server::admission::{Admission, Reply};
use tollgate_server::metrics::Metrics;

const REVIEWS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/reviews/");
const DAEMONSET: &str = "01-install-v2.4-kdd--validate--create-daemonset-calico-node.json";
const NODE: &str = "11-create-node--validate--create-node-node-01.json";

fn body(file: &str, uid: &str) -> Bytes {
    let text = std::fs::read(format!("{REVIEWS}{file}")).expect("captured review");
    let mut review: Value = serde_json::from_slice(&text).expect("JSON");
    review["request"]["uid"] = json!(uid);
    Bytes::from(review.to_string())
}

/// `n` concurrent reviews of `file`; each one's latency and whether a
/// policy failed in it.
async fn burst(admission: &Arc<Admission>, file: &'static str, n: usize) -> Vec<(Duration, bool)> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let admission = admission.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                let reply = admission
                    .review(
                        Endpoint::Validate,
                        deadline,
                        body(file, &format!("{file}-{i}")),
                    )
                    .await;
                let Reply::Review(json) = reply else {
                    panic!("not a review")
                };
                let failed = String::from_utf8_lossy(&json).contains("policy failed");
                (started.elapsed(), failed)
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("review task"));
    }
    results
}

fn report(what: &str, mut results: Vec<(Duration, bool)>) {
    results.sort();
    let at = |q: f64| results[((results.len() as f64 * q) as usize).min(results.len() - 1)].0;
    let failed = results.iter().filter(|r| r.1).count();
    println!(
        "{what:<44} n={:<4} p50={:>9.2?} p99={:>9.2?} max={:>9.2?} failed={failed}",
        results.len(),
        at(0.5),
        at(0.99),
        results.last().map_or(Duration::ZERO, |r| r.0),
    );
}

#[tokio::main]
async fn main() {
    let breaker = std::env::args().any(|a| a == "--breaker");
    let sandbox = Sandbox::new(SandboxLimits {
        cache_dir: None,
        ..SandboxLimits::default()
    })
    .expect("sandbox");
    let spinner = format!(
        "- id: node-spin\n  module: builtin:guests\n  rule: spin\n  cpuBudget: 5s\n  breaker: {{enabled: {breaker}}}\n  match: {{kinds: [{{kind: Node}}]}}\n"
    );
    let yaml = format!("{}\n{spinner}", tollgate_guests::DEFAULT_POLICIES);
    let config = Config::from_yaml(&yaml, "bench.yaml").expect("config");
    let builtins: &[(&str, &[u8])] = &[
        ("calico", tollgate_guests::CALICO),
        ("guests", tollgate_test_artifacts::TEST_GUESTS),
    ];
    let set = PolicySet::load(&config, &sandbox, builtins, Path::new(".")).expect("policies");
    let admission = Arc::new(Admission::new(
        Arc::new(ArcSwap::from_pointee(set)),
        Arc::new(EmptyContext),
        Arc::new(Metrics::new()),
        sandbox.limits().instances,
    ));
    println!(
        "workers={} instances={} breaker={breaker}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        sandbox.limits().instances
    );
    burst(&admission, DAEMONSET, 50).await; // warm-up
    report(
        "200 calico-node reviews alone",
        burst(&admission, DAEMONSET, 200).await,
    );
    let spinners = tokio::spawn({
        let admission = admission.clone();
        async move { burst(&admission, NODE, 400).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    report(
        "200 calico-node reviews beside 5 s spinners",
        burst(&admission, DAEMONSET, 200).await,
    );
    report(
        "400 Node reviews (5 s spinner)",
        spinners.await.expect("spinners"),
    );
}
