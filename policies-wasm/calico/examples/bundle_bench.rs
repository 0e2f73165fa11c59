//! Guest-side cost of one review, natively: the rules `policies.yaml`
//! selects for a captured review, evaluated the ABI v1 way (each rule alone,
//! parsing the request itself) and the ABI v2 way (one bundle, the request
//! parsed once), in the same run on the same body.
//!
//! ```text
//! cargo run --release -p tollgate-calico --example bundle_bench [ITERATIONS]
//! ```
//!
//! This is the guest's share only: in the host each v1 evaluation also costs
//! a fresh Wasm instance, which v2 saves too.

use std::hint::black_box;
use std::time::Instant;

use serde_json::{Value, json};
use tollgate_sdk::NoCluster;
use tollgate_testkit::corpus::{captured, read_docs};

const REVIEWS: &[&str] = &[
    "02-upgrade-v2.4-to-v2.5-kdd--validate--update-daemonset-calico-node.json",
    "04-edit-controller-to-rollingupdate--validate--update-deployment-calico-policy-controller.json",
    "12-cordon-node--validate--update-node-node-01.json",
];

/// The request parsed in one pass with its objects typed, as the v1 SDK
/// did: the baseline for what reading the envelope first costs.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // read by the parser only
struct OnePass<'a> {
    #[serde(borrow)]
    uid: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    kind: tollgate_sdk::GroupVersionKind<'a>,
    #[serde(borrow)]
    user_info: tollgate_sdk::UserInfo<'a>,
    #[serde(borrow)]
    object: Option<tollgate_sdk::Object<'a>>,
    #[serde(borrow)]
    old_object: Option<tollgate_sdk::Object<'a>>,
}

/// The policies of the pack's configuration that a request enters (kind and
/// operation; the pack's policies select nothing else).
fn selected(request: &Value) -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies.yaml");
    let policies = read_docs(std::path::Path::new(path)).remove(0);
    policies
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            let m = &p["match"];
            let kind = m["kinds"].as_array().unwrap().iter().any(|k| {
                k["group"] == request["kind"]["group"] && k["kind"] == request["kind"]["kind"]
            });
            kind && m["operations"]
                .as_array()
                .unwrap()
                .contains(&request["operation"])
        })
        .map(|p| json!({"rule": p["id"], "settings": p["settings"]}))
        .collect()
}

/// Median nanoseconds per call of `f` over `rounds` rounds.
fn median_ns(iterations: u32, mut f: impl FnMut()) -> f64 {
    let mut rounds: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iterations)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("ITERATIONS is a number"))
        .unwrap_or(200);
    let rules = tollgate_calico::rules();
    println!(
        "review | bytes | rules | v1: each rule parses (us) | v2: one bundle (us) | v1/v2 \
         | parse only: v1 one pass (us) | v2, one view (us) | v2, two views (us)"
    );
    for file in REVIEWS {
        let request = captured(file).1["request"].take();
        let calls = selected(&request);
        let body = request.to_string();
        let calls_json = Value::from(calls.clone()).to_string();
        let settings: Vec<(&str, Vec<u8>)> = calls
            .iter()
            .map(|c| {
                (
                    c["rule"].as_str().unwrap(),
                    serde_json::to_vec(&c["settings"]).unwrap(),
                )
            })
            .collect();
        let v1 = median_ns(iterations, || {
            for (rule, settings) in &settings {
                let rule = rules.rule(rule).unwrap();
                black_box(
                    rule.evaluate(body.as_bytes(), settings, &NoCluster)
                        .unwrap(),
                );
            }
        });
        let v2 = median_ns(iterations, || {
            let out = rules.evaluate(body.as_bytes(), calls_json.as_bytes(), &NoCluster);
            black_box(out.unwrap());
        });
        let one_pass = median_ns(iterations, || {
            black_box(serde_json::from_slice::<OnePass<'_>>(body.as_bytes()).unwrap());
        });
        let one_view = median_ns(iterations, || {
            let parsed = tollgate_sdk::ParsedRequest::new(body.as_bytes());
            black_box(parsed.view::<tollgate_sdk::Object<'_>>().unwrap());
        });
        let two_views = median_ns(iterations, || {
            let parsed = tollgate_sdk::ParsedRequest::new(body.as_bytes());
            black_box(parsed.view::<tollgate_sdk::Object<'_>>().unwrap());
            black_box(parsed.view::<tollgate_sdk::Workload<'_>>().unwrap());
        });
        let short = file.split("--").next().unwrap();
        println!(
            "{short} | {} | {} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1}",
            body.len(),
            calls.len(),
            v1 / 1e3,
            v2 / 1e3,
            v1 / v2,
            one_pass / 1e3,
            one_view / 1e3,
            two_views / 1e3,
        );
    }
}
