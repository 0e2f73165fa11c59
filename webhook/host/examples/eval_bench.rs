//! Per-evaluation latency of the sandbox, of bundles and of request stripping.
//!
//! `cargo run --release -p tollgate-host --example eval_bench [strip|eval|bundle|parse]`

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use serde_json::value::RawValue;
use tollgate_context::EmptyContext;
use tollgate_host::input::strip_request;
use tollgate_host::{
    Config, Endpoint, GuestInput, Parsed, PolicySet, Review, Sandbox, SandboxLimits,
};
use tollgate_testkit::requests::strip_value;

const REVIEW: &str = include_str!("../tests/fixtures/review-update-daemonset.json");
const RUNS: usize = 20_000;

fn main() {
    let review: Value = serde_json::from_str(REVIEW).expect("review");
    let request = serde_json::value::to_raw_value(&review["request"]).expect("request");
    let stripped = strip_request(request.get());
    println!(
        "review request: {} bytes, stripped: {} bytes",
        request.get().len(),
        stripped.len()
    );
    let only = std::env::args().nth(1);
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if run("strip") {
        strip_bench(&request);
    }
    if run("eval") {
        eval_bench(&stripped);
    }
    if run("bundle") {
        bundle_bench();
    }
    if run("parse") {
        parse_bench();
    }
}

/// The bench's scenario (a) and (b) bodies (21.9 and 20.5 KB): what reading
/// a review costs Tollgate against the floor's one parse into a `Value`.
const BODIES: [(&str, &str); 2] = [
    (
        "(a)",
        include_str!("../../../bench/bodies/deployment-update.json"),
    ),
    (
        "(b)",
        include_str!("../../../bench/bodies/calico-node-v2.2-to-v2.3-kdd.json"),
    ),
];

fn parse_bench() {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        request: &'a RawValue,
    }
    for (scenario, body) in BODIES {
        // Compact, as the bench posts it.
        let body = serde_json::from_str::<Value>(body).unwrap().to_string();
        let body = body.as_bytes();
        report(
            &format!("{scenario} the floor's parse (serde_json::Value)"),
            measure(|| {
                let value: Value = serde_json::from_slice(body).unwrap();
                std::hint::black_box(value);
            }),
        );
        report(
            &format!("{scenario} skim to the raw request (serde_json::RawValue)"),
            measure(|| {
                let envelope: Envelope<'_> = serde_json::from_slice(body).unwrap();
                std::hint::black_box(envelope.request);
            }),
        );
        report(
            &format!("{scenario} Review::parse (one pass: envelope, shape, cuts; routing)"),
            measure(|| {
                let parsed = Review::parse(body).unwrap();
                assert!(matches!(parsed, Parsed::Review(_)));
                std::hint::black_box(parsed);
            }),
        );
    }
}

fn strip_bench(request: &RawValue) {
    report(
        "strip (raw splice, GuestInput)",
        measure(|| {
            let input = GuestInput::new(request.get());
            std::hint::black_box(input.bytes(false).len());
        }),
    );
    report(
        "strip (serde_json::Value baseline)",
        measure(|| {
            std::hint::black_box(strip_via_value(request).len());
        }),
    );
}

fn eval_bench(stripped: &[u8]) {
    let sandbox = Sandbox::new(SandboxLimits {
        cache_dir: None,
        ..SandboxLimits::default()
    })
    .expect("sandbox");
    let config = Config::from_yaml(
        "- {id: allow, module: 'builtin:guests', rule: allow}",
        "bench",
    )
    .unwrap();
    let builtins: &[(&str, &[u8])] = BUILTINS;
    let set = PolicySet::load(&config, &sandbox, builtins, Path::new(".")).expect("load");
    let policy = &set.policies()[0];
    for (name, bytes) in [
        ("small request", &br#"{"uid":"u"}"#[..]),
        ("stripped review", stripped),
    ] {
        report(
            &format!("evaluate `allow` test guest ({name})"),
            measure(|| {
                let deadline = Instant::now() + Duration::from_secs(1);
                let verdict = policy
                    .evaluate(bytes, deadline, &EmptyContext::shared())
                    .expect("verdict");
                assert!(verdict.allowed);
            }),
        );
    }
}

const BUILTINS: &[(&str, &[u8])] = &[
    ("guests", tollgate_test_artifacts::TEST_GUESTS),
    ("guests-v2", tollgate_test_artifacts::TEST_GUESTS_V2),
];

/// Judging the captured review with six `allow` policies of one module:
/// six v1 instances against one v2 bundle.
fn bundle_bench() {
    let sandbox = Sandbox::new(SandboxLimits {
        cache_dir: None,
        ..SandboxLimits::default()
    })
    .expect("sandbox");
    for module in ["guests", "guests-v2"] {
        let yaml: String = (0..6)
            .map(|i| format!("- {{id: p{i}, module: 'builtin:{module}', rule: allow}}\n"))
            .collect();
        let config = Config::from_yaml(&yaml, "bench").unwrap();
        let set = PolicySet::load(&config, &sandbox, BUILTINS, Path::new(".")).expect("load");
        let Parsed::Review(review) = Review::parse(REVIEW.as_bytes()).expect("review") else {
            panic!("a review")
        };
        report(
            &format!("judge the review, 6 policies of {module}"),
            measure(|| {
                let deadline = Instant::now() + Duration::from_secs(1);
                let decision = set.judge(
                    &review,
                    Endpoint::Validate,
                    deadline,
                    &EmptyContext::shared(),
                );
                assert!(decision.allowed() && decision.outcomes.len() == 6);
            }),
        );
    }
}

/// The straightforward approach, for comparison: parse, remove, serialise.
fn strip_via_value(request: &RawValue) -> Vec<u8> {
    let value: Value = serde_json::from_str(request.get()).unwrap();
    serde_json::to_vec(&strip_value(&value)).unwrap()
}

fn measure(mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..RUNS / 10 {
        f();
    }
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn report(name: &str, times: Vec<Duration>) {
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{name:<66} p50 {:>9.1?}  p99 {:>9.1?}  ({} runs)",
        at(0.50),
        at(0.99),
        times.len()
    );
}
