//! Rounds and summaries: every server is measured once per round, in an
//! order that alternates from round to round (floor, tollgate, ...; then
//! ..., tollgate, floor), so drift in the machine's load falls on both.
//! Each figure is the median over the rounds, and each ratio to the floor
//! is the median of the per-round ratios: a server is only ever compared
//! with the floor measured next to it.

use std::time::Duration;

use crate::load::{self, Errors, Run, Target};
use crate::procfs::{self, Memory};

/// A server measured in a scenario.
pub struct Contender {
    pub name: String,
    pub target: Target,
    /// Its process, for CPU time and resident memory (unknown for `--against`
    /// without `--against-pid`).
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Connections of the throughput runs.
    pub connections: usize,
    /// Connections of the latency runs.
    pub latency_connections: usize,
    pub seconds: Duration,
    pub rounds: usize,
    pub warmup: Duration,
}

/// One run and the CPU time spent during it.
struct Sample {
    run: Run,
    /// Server CPU µs per correct answer.
    server_cpu: Option<f64>,
    /// Load generator CPU µs per correct answer.
    generator_cpu: Option<f64>,
}

/// A contender's figures over all rounds.
#[derive(Debug, Clone)]
pub struct Summary {
    pub name: String,
    /// Reviews/s at `connections` (median round).
    pub rate: f64,
    /// Latency at `latency_connections`, µs (median round each).
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    /// Over every run of the scenario, warm-up excluded.
    pub errors: Errors,
    pub reviews: u64,
    pub allowed: u64,
    /// CPU µs per review, throughput runs (median round).
    pub server_cpu: Option<f64>,
    pub generator_cpu: Option<f64>,
    /// Read after the last round.
    pub memory: Option<Memory>,
    /// Ratios to the floor (the first contender); `None` for the floor.
    pub vs_floor: Option<Ratios>,
}

/// A contender's figures divided by the floor's of the same round.
#[derive(Debug, Clone, Copy)]
pub struct Ratios {
    pub rate: Spread,
    pub p50: Spread,
    pub p99: Spread,
    /// Server CPU time per review: the servers' own work, which the load
    /// generator's scheduling on a busy machine does not blur.
    pub cpu: Option<Spread>,
    pub memory: Option<f64>,
}

/// The median of per-round ratios, with the smallest and largest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// Measures `contenders` (the floor first) and summarises them.
pub async fn measure(contenders: &[Contender], settings: Settings) -> Vec<Summary> {
    for c in contenders {
        load::run(&c.target, settings.connections, settings.warmup).await;
    }
    let n = contenders.len();
    let mut throughput: Vec<Vec<Sample>> = (0..n).map(|_| Vec::new()).collect();
    let mut latency: Vec<Vec<Sample>> = (0..n).map(|_| Vec::new()).collect();
    for round in 0..settings.rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..n).collect()
        } else {
            (0..n).rev().collect()
        };
        for &i in &order {
            let s = sample(&contenders[i], settings.connections, settings.seconds).await;
            throughput[i].push(s);
        }
        for &i in &order {
            let s = sample(
                &contenders[i],
                settings.latency_connections,
                settings.seconds,
            )
            .await;
            latency[i].push(s);
        }
    }
    let mut summaries: Vec<Summary> = contenders
        .iter()
        .zip(throughput.iter().zip(&latency))
        .map(|(c, (t, l))| summarise(c, t, l))
        .collect();
    let floor = summaries[0].clone();
    for (i, s) in summaries.iter_mut().enumerate().skip(1) {
        let per_round = |samples: &[Vec<Sample>], f: &dyn Fn(&Sample) -> Option<f64>| {
            let ratios: Vec<f64> = samples[i]
                .iter()
                .zip(&samples[0])
                .filter_map(|(mine, floor)| Some(f(mine)? / f(floor)?.max(f64::MIN_POSITIVE)))
                .collect();
            (!ratios.is_empty()).then(|| Spread::of(&ratios))
        };
        let always = |s: Option<Spread>| s.expect("every round has both runs");
        s.vs_floor = Some(Ratios {
            rate: always(per_round(&throughput, &|s| Some(s.run.rate()))),
            p50: always(per_round(
                &latency,
                &|s| Some(s.run.quantile_us(0.5) as f64),
            )),
            p99: always(per_round(&latency, &|s| {
                Some(s.run.quantile_us(0.99) as f64)
            })),
            cpu: per_round(&throughput, &|s| s.server_cpu),
            memory: s
                .memory
                .zip(floor.memory)
                .map(|(m, f)| m.rss_kib as f64 / f.rss_kib.max(1) as f64),
        });
    }
    summaries
}

async fn sample(c: &Contender, connections: usize, seconds: Duration) -> Sample {
    let server_before = c.pid.and_then(|p| procfs::cpu_us(Some(p)));
    let generator_before = procfs::cpu_us(None);
    let run = load::run(&c.target, connections, seconds).await;
    let per_review = |before: Option<u64>, after: Option<u64>| {
        let spent = after?.checked_sub(before?)?;
        (run.reviews > 0).then(|| spent as f64 / run.reviews as f64)
    };
    Sample {
        server_cpu: per_review(server_before, c.pid.and_then(|p| procfs::cpu_us(Some(p)))),
        generator_cpu: per_review(generator_before, procfs::cpu_us(None)),
        run,
    }
}

fn summarise(c: &Contender, throughput: &[Sample], latency: &[Sample]) -> Summary {
    let t = |f: &dyn Fn(&Sample) -> f64| median(throughput.iter().map(f).collect());
    let l = |q: f64| {
        median(
            latency
                .iter()
                .map(|s| s.run.quantile_us(q) as f64)
                .collect(),
        )
    };
    let all = || throughput.iter().chain(latency);
    let mut errors = Errors::default();
    for s in all() {
        errors.connection += s.run.errors.connection;
        errors.status += s.run.errors.status;
        errors.answer += s.run.errors.answer;
    }
    let optional = |f: &dyn Fn(&Sample) -> Option<f64>| {
        let v: Vec<f64> = throughput.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| median(v))
    };
    Summary {
        name: c.name.clone(),
        rate: t(&|s| s.run.rate()),
        p50: l(0.5),
        p90: l(0.9),
        p99: l(0.99),
        max: median(latency.iter().map(|s| s.run.latency.max() as f64).collect()),
        errors,
        reviews: all().map(|s| s.run.reviews).sum(),
        allowed: all().map(|s| s.run.allowed).sum(),
        server_cpu: optional(&|s| s.server_cpu),
        generator_cpu: optional(&|s| s.generator_cpu),
        memory: c.pid.and_then(procfs::memory),
        vs_floor: None,
    }
}

impl Spread {
    fn of(values: &[f64]) -> Self {
        Self {
            median: median(values.to_vec()),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// The median (of an even count, the mean of the middle two); NaN if empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
        assert_eq!(
            Spread::of(&[0.5, 0.4, 0.6]),
            Spread {
                median: 0.5,
                min: 0.4,
                max: 0.6
            }
        );
    }
}
