//! The printed report: one table per scenario, ratios to the floor, and the
//! issue's targets marked met or missed.

use std::fmt::Write as _;

use crate::measure::{Settings, Spread, Summary};
use crate::probe::{Answer, Work};
use crate::procfs;

/// One of the targets and what was measured against it.
#[derive(Debug, Clone)]
pub struct TargetCheck {
    pub what: String,
    pub measured: String,
    pub met: bool,
}

impl TargetCheck {
    /// `value` (printed as `shown`) must be at least `bound`.
    pub fn at_least(what: String, value: f64, bound: f64, shown: String) -> Self {
        Self {
            what,
            measured: shown,
            met: value >= bound,
        }
    }

    /// `value` (printed as `shown`) must be at most `bound`.
    pub fn at_most(what: String, value: f64, bound: f64, shown: String) -> Self {
        Self {
            what,
            measured: shown,
            met: value <= bound,
        }
    }
}

pub fn header(settings: &Settings, tollgate: &std::path::Path) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let command: Vec<String> = std::env::args().collect();
    println!("tollgate-bench: {}", command.join(" "));
    println!(
        "  {cores} cores; tollgate {}; throughput at {} connections, latency at {}; \
         {} round(s) of {:.1} s per server and mode, alternating order; medians",
        tollgate.display(),
        settings.connections,
        settings.latency_connections,
        settings.rounds,
        settings.seconds.as_secs_f64()
    );
    if let Some(load) = procfs::load_average() {
        println!("  load average before the run: {load:.2}");
        if load > cores as f64 {
            println!(
                "  WARNING: the machine is busy (load {load:.1} on {cores} cores): the load generator waits \
                 for CPU too, which pulls ratios toward 1; CPU/review still compares the servers' own work"
            );
        }
    }
    if cfg!(debug_assertions) {
        println!(
            "  WARNING: tollgate-bench is a debug build; its load generator may be the bottleneck (use --release)"
        );
    }
}

pub fn scenario_title(label: &str, title: &str) {
    println!("\n{label} {title}");
}

pub fn verdict_line(server: &str, verdict: &Answer, work: Option<&Work>) {
    let mut line = format!(
        "  {server}: {}",
        if verdict.allowed { "allowed" } else { "denied" }
    );
    if verdict.warnings > 0 {
        let _ = write!(line, ", {} warning(s)", verdict.warnings);
    }
    if verdict.patched {
        line.push_str(", patched");
    }
    if let Some(work) = work {
        let entered: Vec<String> = work
            .evaluations
            .iter()
            .map(|((policy, verdict), n)| {
                if *n == 1 {
                    format!("{policy}={verdict}")
                } else {
                    format!("{policy}={verdict} x{n}")
                }
            })
            .collect();
        let _ = write!(
            line,
            "; {} policies entered [{}]",
            work.evaluations.values().sum::<u64>(),
            entered.join(", "),
        );
        if let Some(n) = work.lookups {
            let _ = write!(line, "; {n} cluster lookups");
        }
    }
    if let Some(message) = &verdict.message {
        let short: String = message.chars().take(160).collect();
        let ellipsis = if short.len() < message.len() {
            "…"
        } else {
            ""
        };
        let _ = write!(line, "\n    message: {short}{ellipsis}");
    }
    println!("{line}");
}

pub fn table(summaries: &[Summary], settings: &Settings) {
    println!(
        "  {:<10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>10} {:>16}",
        "",
        "reviews/s",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "max µs",
        "errors",
        "CPU µs/rv",
        "RSS MiB (peak)"
    );
    println!(
        "  {:<10} {:>10} {:>35} {:>7} {:>10}",
        "",
        format!("{} conn", settings.connections),
        format!("------ {} connections ------", settings.latency_connections),
        "",
        "server"
    );
    for s in summaries {
        let memory = s.memory.map_or_else(
            || "-".to_owned(),
            |m| format!("{:.1} ({:.1})", mib(m.rss_kib), mib(m.hwm_kib)),
        );
        let cpu = s
            .server_cpu
            .map_or_else(|| "-".to_owned(), |c| format!("{c:.0}"));
        println!(
            "  {:<10} {:>10.0} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>7} {:>10} {:>16}",
            s.name,
            s.rate,
            s.p50,
            s.p90,
            s.p99,
            s.max,
            s.errors.total(),
            cpu,
            memory
        );
    }
    for s in summaries {
        // The same review must always get the same verdict.
        if s.allowed != 0 && s.allowed != s.reviews {
            println!(
                "  {}: MIXED verdicts: {} of {} answers allowed",
                s.name, s.allowed, s.reviews
            );
        }
        let e = s.errors;
        if e.total() > 0 {
            println!(
                "  {} errors: {} connection, {} non-200, {} wrong answer (of {} answers)",
                s.name, e.connection, e.status, e.answer, s.reviews
            );
        }
    }
    for s in summaries {
        let Some(r) = &s.vs_floor else { continue };
        let cpu = r
            .cpu
            .map_or_else(String::new, |c| format!(", CPU/review {}", spread(&c)));
        let memory = r
            .memory
            .map_or_else(String::new, |m| format!(", RSS {m:.2}x"));
        println!(
            "  {} / floor: throughput {}, p50 {}, p99 {}{cpu}{memory}",
            s.name,
            spread(&r.rate),
            spread(&r.p50),
            spread(&r.p99)
        );
    }
    if let Some(floor) = summaries.first()
        && let Some(g) = floor.generator_cpu
    {
        println!(
            "  load generator: {g:.0} CPU µs per review against the floor, {:.0}% of one core",
            g * floor.rate / 1e4
        );
    }
}

/// `0.50x (0.47-0.53)`: the median per-round ratio and its range.
fn spread(s: &Spread) -> String {
    if (s.max - s.min).abs() < 0.005 {
        format!("{:.2}x", s.median)
    } else {
        format!("{:.2}x ({:.2}-{:.2})", s.median, s.min, s.max)
    }
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn outcomes(outcomes: &[TargetCheck]) {
    if let Some(load) = procfs::load_average() {
        println!("\nload average after the run: {load:.2}");
    }
    if outcomes.is_empty() {
        return;
    }
    println!("\nTargets (issue 8 item 5)");
    for o in outcomes {
        println!(
            "  {:<58} {:>14}  {}",
            o.what,
            o.measured,
            if o.met { "met" } else { "MISSED" }
        );
    }
}

/// The connection-scaling table of `--connection-sweep`: for each scenario
/// and connection count, throughput and p99 of the floor and Tollgate, their
/// ratios (median of per-round ratios) and Tollgate's memory after the runs.
pub fn scaling(rows: &[(&str, usize, Vec<Summary>)]) {
    println!();
    println!("connection scaling (throughput and latency runs both at the count)");
    println!(
        "| scenario | connections | floor reviews/s | tollgate reviews/s | rate vs floor | floor p99 ms | tollgate p99 ms | p99 vs floor | tollgate errors | tollgate RSS / peak MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (label, n, summaries) in rows {
        let (Some(floor), Some(tollgate)) = (
            summaries.iter().find(|s| s.name == "floor"),
            summaries.iter().find(|s| s.name == "tollgate"),
        ) else {
            continue;
        };
        let ratios = tollgate.vs_floor;
        println!(
            "| {label} | {n} | {:.0} | {:.0} | {} | {:.2} | {:.2} | {} | {} | {} |",
            floor.rate,
            tollgate.rate,
            ratios.map_or("-".into(), |r| format!("{:.2}x", r.rate.median)),
            floor.p99 / 1000.0,
            tollgate.p99 / 1000.0,
            ratios.map_or("-".into(), |r| format!("{:.2}x", r.p99.median)),
            tollgate.errors.total(),
            tollgate.memory.map_or("-".into(), |m| format!(
                "{:.1} / {:.1}",
                mib(m.rss_kib),
                mib(m.hwm_kib)
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_spreads() {
        assert!(TargetCheck::at_least("t".into(), 2.0, 2.0, "2.00x".into()).met);
        assert!(!TargetCheck::at_least("t".into(), 1.9, 2.0, "1.90x".into()).met);
        assert!(TargetCheck::at_most("t".into(), 5.0, 5.0, "5 ms".into()).met);
        assert!(!TargetCheck::at_most("t".into(), 5.1, 5.0, "5.1 ms".into()).met);
        let tight = Spread {
            median: 0.5,
            min: 0.499,
            max: 0.501,
        };
        assert_eq!(spread(&tight), "0.50x");
        let wide = Spread {
            median: 0.5,
            min: 0.4,
            max: 0.6,
        };
        assert_eq!(spread(&wide), "0.50x (0.40-0.60)");
    }
}
