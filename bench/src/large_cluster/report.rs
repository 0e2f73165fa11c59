//! The Markdown report of `large_cluster`: the headline table against
//! issue 20's targets, objects cached per type, the API server's LIST and
//! WATCH requests, and the verdicts of the review mix.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use tollgate_tests::populate::{self, Fill, Review};

use crate::{Args, READY_TARGET, RSS_TARGET_MIB, Run};

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The Markdown report.
pub fn report(
    args: &Args,
    fill: &Fill,
    fill_took: Duration,
    pod_bytes: usize,
    mix: &[Review],
    small: &Run,
    large: &Run,
) -> String {
    let mut out = String::new();
    let total = fill.namespaces
        + fill.pod_namespaces
        + fill.pods
        + 2 * fill.deployments
        + fill.nodes
        + fill.network_policies;
    let _ = writeln!(
        out,
        "Large cluster: {} Pods in {} namespaces ({pod_bytes} bytes each as stored), {} Deployments \
         and as many ReplicaSets, {} Nodes, {} Namespaces, {} NetworkPolicies ({total} objects \
         created in {:.0} s); Calico {} from its published calico.yaml.\n",
        fill.pods,
        fill.pod_namespaces,
        fill.deployments,
        fill.nodes,
        fill.namespaces,
        fill.network_policies,
        fill_took.as_secs_f64(),
        populate::CALICO,
    );
    let cached = |run: &Run| run.cached.values().sum::<f64>();
    let per_review = |run: &Run| run.reviews_took.as_secs_f64() * 1e3 / args.reviews.max(1) as f64;
    let same = mix
        .iter()
        .zip(small.verdicts.iter().zip(&large.verdicts))
        .filter(|(_, (a, b))| a == b)
        .count();
    let met = |ok: bool| if ok { "met" } else { "**missed**" };
    let _ = writeln!(out, "| | Calico only | large cluster | target |");
    let _ = writeln!(out, "|---|---:|---:|---|");
    let _ = writeln!(
        out,
        "| time to ready (/readyz 200) | {:.2} s | {:.2} s | ≤ {} s: {} |",
        small.ready.as_secs_f64(),
        large.ready.as_secs_f64(),
        READY_TARGET.as_secs(),
        met(large.ready <= READY_TARGET)
    );
    let _ = writeln!(
        out,
        "| RSS when ready | {:.1} MiB | {:.1} MiB | ≤ {RSS_TARGET_MIB} MiB: {} |",
        mib(small.rss_ready_kib),
        mib(large.rss_ready_kib),
        met(mib(large.rss_ready_kib) <= RSS_TARGET_MIB)
    );
    let _ = writeln!(
        out,
        "| RSS after {} reviews | {:.1} MiB | {:.1} MiB | ≤ {RSS_TARGET_MIB} MiB: {} |",
        args.reviews,
        mib(small.rss_after_kib),
        mib(large.rss_after_kib),
        met(mib(large.rss_after_kib) <= RSS_TARGET_MIB)
    );
    let _ = writeln!(
        out,
        "| peak RSS (VmHWM) | {:.1} MiB | {:.1} MiB | |",
        mib(small.hwm_kib),
        mib(large.hwm_kib)
    );
    let _ = writeln!(
        out,
        "| objects cached | {} | {} | |",
        cached(small),
        cached(large)
    );
    let requests = |run: &Run, verb: &str| {
        run.api_requests
            .iter()
            .filter(|((v, _), _)| v == verb)
            .map(|(_, n)| n)
            .sum::<f64>()
    };
    let _ = writeln!(
        out,
        "| API server LISTs (pages) / watches opened while starting | {} / {} | {} / {} | |",
        requests(small, "LIST"),
        requests(small, "WATCH-open"),
        requests(large, "LIST"),
        requests(large, "WATCH-open")
    );
    let _ = writeln!(
        out,
        "| mean review (sequential) | {:.2} ms | {:.2} ms | |",
        per_review(small),
        per_review(large)
    );
    let _ = writeln!(
        out,
        "| verdicts identical | | {same} of {} | all: {} |",
        mix.len(),
        met(same == mix.len())
    );

    let _ = writeln!(
        out,
        "\nObjects cached per type (`tollgate_context_cache_objects`, types holding any):\n"
    );
    let _ = writeln!(out, "| type | Calico only | large cluster |");
    let _ = writeln!(out, "|---|---:|---:|");
    let types: BTreeSet<&String> = small.cached.keys().chain(large.cached.keys()).collect();
    for ty in types {
        let (a, b) = (
            small.cached.get(ty).copied().unwrap_or(0.0),
            large.cached.get(ty).copied().unwrap_or(0.0),
        );
        if a > 0.0 || b > 0.0 {
            let _ = writeln!(out, "| {ty} | {a} | {b} |");
        }
    }

    let _ = writeln!(
        out,
        "\nAPI server requests while Tollgate started (delta of `apiserver_request_total`; WATCH-open: \
         `apiserver_longrunning_requests`):\n"
    );
    let _ = writeln!(out, "| verb | resource | Calico only | large cluster |");
    let _ = writeln!(out, "|---|---|---:|---:|");
    let keys: BTreeSet<&(String, String)> = small
        .api_requests
        .keys()
        .chain(large.api_requests.keys())
        .collect();
    for key in keys {
        let (a, b) = (
            small.api_requests.get(key).copied().unwrap_or(0.0),
            large.api_requests.get(key).copied().unwrap_or(0.0),
        );
        let _ = writeln!(out, "| {} | {} | {a} | {b} |", key.0, key.1);
    }

    let _ = writeln!(out, "\nVerdicts of the review mix:\n");
    let _ = writeln!(out, "| review | Calico only | large cluster |");
    let _ = writeln!(out, "|---|---|---|");
    for (review, (a, b)) in mix.iter().zip(small.verdicts.iter().zip(&large.verdicts)) {
        let shown = if a == b {
            "same".to_owned()
        } else {
            format!("**differs: {}**", populate::verdict_summary(b))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {shown} |",
            review.name,
            populate::verdict_summary(a)
        );
    }
    out
}
