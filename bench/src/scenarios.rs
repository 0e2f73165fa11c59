//! Scenarios (a)–(e) of issue 8 item 4, and the targets of item 5 each is
//! held to.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::body::{self, Body};
use crate::cli::{Route, RunArgs, ScenarioId};
use crate::client::Endpoint;
use crate::load::Target;
use crate::measure::{self, Contender, Settings, Summary};
use crate::probe::{self, Work};
use crate::procfs;
use crate::report::{self, TargetCheck};
use crate::servers::{self, Launcher, Server, TollgateConfig};
use crate::snapshot;

/// A scenario that drives load: bodies, how Tollgate is configured, targets.
struct LoadScenario {
    label: &'static str,
    what: String,
    route: Route,
    cases: Vec<Case>,
    config: TollgateConfig,
    targets: Targets,
}

/// A body and the verdict Tollgate must give it: a figure for a review that
/// failed (say a policy ran out of memory) is not a figure for the work.
struct Case {
    body: Body,
    expect_allowed: Option<bool>,
}

impl Case {
    fn new(capture: (&str, &str), expect_allowed: Option<bool>) -> anyhow::Result<Self> {
        Ok(Self {
            body: Body::parse(capture)?,
            expect_allowed,
        })
    }
}

/// Item 5's bounds for one scenario (at `--connections` for throughput and
/// `--latency-connections` for latency).
#[derive(Default)]
struct Targets {
    /// Throughput at least this times the floor's.
    rate_vs_floor: Option<f64>,
    /// p99 at most this times the floor's.
    p99_vs_floor: Option<f64>,
    /// p99 at most this, absolute.
    p99_ms: Option<f64>,
    /// Tollgate's resident memory after the scenario at most this.
    rss_mib: Option<f64>,
}

/// The other engine of `--against`.
struct Against {
    url: hyper::Uri,
    endpoint: Endpoint,
    pid: Option<u32>,
}

/// Runs the chosen scenarios and prints the report.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let settings = Settings {
        connections: args.connections,
        latency_connections: args.latency_connections,
        seconds: args.seconds,
        rounds: args.rounds,
        warmup: args.warmup_seconds,
    };
    // Linux shares the CPU fairly between sessions ("autogroups"), not
    // between threads: the floor and Tollgate run in the bench's session,
    // and an engine in another one is scheduled differently (on a busy
    // machine a second floor started with setsid measured 0.5x this one).
    if let Some(pid) = args.against_pid
        && procfs::autogroup(Some(pid)) != procfs::autogroup(None)
    {
        eprintln!(
            "tollgate-bench: WARNING: --against-pid {pid} runs in another session than the bench, its floor and \
             Tollgate; the scheduler treats it differently. Start it from the bench's shell (`engine &`), \
             not with setsid, nohup or a service manager."
        );
    }
    let against = match &args.against {
        Some(url) => Some(Against {
            endpoint: Endpoint::from_url(url, args.against_ca.as_deref())?,
            url: url.clone(),
            pid: args.against_pid,
        }),
        None => None,
    };
    let reviews = args
        .review
        .iter()
        .map(|path| Body::read(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(file) = &args.policies
        && !file.is_file()
    {
        bail!("--policies {}: no such file", file.display());
    }
    if let Some(file) = &args.pod_privileged_policies
        && !file.is_file()
    {
        bail!("--pod-privileged-policies {}: no such file", file.display());
    }
    let chosen = args.scenarios();
    let tollgate = servers::tollgate_binary(args.tollgate.clone())?;
    let launcher = Launcher::new(tollgate.clone())?;
    let pod_policies = match args.pod_privileged_policies.clone() {
        Some(file) => file,
        None => example_pod_privileged(launcher.dir())?,
    };
    report::header(&settings, &tollgate);

    // The first start generates the development certificate and fills the
    // shared compilation cache; neither is part of any figure but (d)'s.
    drop(
        launcher
            .start_tollgate(&TollgateConfig::Default, &launcher.shared_cache())
            .await?,
    );
    let floor = launcher.start_floor().await?;

    let mut scenarios = Vec::new();
    for id in chosen {
        scenarios.push(match id {
            ScenarioId::D => None,
            ScenarioId::E => Some(pod_privileged(pod_policies.clone())?),
            other => Some(load_scenario(other, &launcher)?),
        });
    }
    if !reviews.is_empty() {
        scenarios.push(Some(custom(reviews, &args)));
    }
    if !args.connection_sweep.is_empty() {
        return sweep(
            &scenarios,
            &args.connection_sweep,
            &launcher,
            &floor,
            settings,
        )
        .await;
    }
    let mut outcomes = Vec::new();
    for scenario in scenarios {
        let Some(scenario) = scenario else {
            outcomes.extend(start_to_ready(&launcher, settings.rounds).await?);
            continue;
        };
        let (judged, _) = drive(&scenario, &launcher, &floor, against.as_ref(), settings)
            .await
            .with_context(|| format!("scenario {}", scenario.label))?;
        outcomes.extend(judged);
    }
    report::outcomes(&outcomes);
    Ok(())
}

/// `--connection-sweep`: every load scenario at each connection count
/// (throughput and latency runs both at the count), then one table per
/// scenario of how Tollgate scales against the floor measured beside it.
async fn sweep(
    scenarios: &[Option<LoadScenario>],
    counts: &[usize],
    launcher: &Launcher,
    floor: &Server,
    settings: Settings,
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for scenario in scenarios.iter().flatten() {
        for &n in counts {
            let at = Settings {
                connections: n,
                latency_connections: n,
                ..settings
            };
            let (_, summaries) = drive(scenario, launcher, floor, None, at)
                .await
                .with_context(|| format!("scenario {} at {n} connections", scenario.label))?;
            rows.push((scenario.label, n, summaries));
        }
    }
    report::scaling(&rows);
    Ok(())
}

/// The `--review` files, through `--policies` or the built-in pack.
fn custom(reviews: Vec<Body>, args: &RunArgs) -> LoadScenario {
    let (what, config) = match &args.policies {
        Some(file) => (
            format!("--policies {}", file.display()),
            TollgateConfig::Policies(file.clone()),
        ),
        None => (
            "default pack, no cluster context".into(),
            TollgateConfig::Default,
        ),
    };
    LoadScenario {
        label: "(review)",
        what: format!("{what}, {}", args.endpoint.path()),
        route: args.endpoint,
        cases: reviews
            .into_iter()
            .map(|body| Case {
                body,
                expect_allowed: None,
            })
            .collect(),
        config,
        targets: Targets::default(),
    }
}

fn load_scenario(id: ScenarioId, launcher: &Launcher) -> anyhow::Result<LoadScenario> {
    Ok(match id {
        ScenarioId::A => LoadScenario {
            label: "(a)",
            what: "default pack, no cluster context".into(),
            route: Route::Validate,
            cases: vec![Case::new(body::DEPLOYMENT_UPDATE, Some(true))?],
            config: TollgateConfig::Default,
            targets: Targets {
                rate_vs_floor: Some(2.0),
                p99_vs_floor: Some(1.5),
                ..Targets::default()
            },
        },
        ScenarioId::B => LoadScenario {
            label: "(b)",
            what: "whole default pack, no cluster context".into(),
            route: Route::Validate,
            // Without cluster context the pack cannot see the migration's
            // state; what it answers is its business, not the bench's.
            cases: vec![Case::new(body::CALICO_NODE_UPDATE, None)?],
            config: TollgateConfig::Default,
            targets: Targets {
                rate_vs_floor: Some(1.0),
                p99_vs_floor: Some(1.5),
                ..Targets::default()
            },
        },
        ScenarioId::C => {
            let dir = launcher.dir().join("snapshot");
            snapshot::write(&dir)?;
            LoadScenario {
                label: "(c)",
                what: format!(
                    "default pack, --cluster-snapshot of {} Namespaces and {} NetworkPolicies (prepared: R9 scans all, then allows)",
                    snapshot::NAMESPACES,
                    snapshot::POLICIES
                ),
                route: Route::Validate,
                cases: vec![Case::new(body::CALICO_NODE_V1_SEMANTICS, Some(true))?],
                config: TollgateConfig::Snapshot(dir),
                targets: Targets {
                    p99_ms: Some(5.0),
                    rss_mib: Some(64.0),
                    ..Targets::default()
                },
            }
        }
        ScenarioId::D | ScenarioId::E => unreachable!("not a load scenario of its own"),
    })
}

fn pod_privileged(policies: PathBuf) -> anyhow::Result<LoadScenario> {
    Ok(LoadScenario {
        label: "(e)",
        what: format!("--policies {}", policies.display()),
        route: Route::Validate,
        cases: vec![
            Case::new(body::POD_CREATE, Some(true))?,
            Case::new(body::POD_CREATE_PRIVILEGED, Some(false))?,
        ],
        config: TollgateConfig::Policies(policies),
        targets: Targets {
            rate_vs_floor: Some(0.9),
            p99_vs_floor: Some(1.5),
            ..Targets::default()
        },
    })
}

/// The example's policy file (`policies-wasm/examples/pod-privileged`)
/// serving its module as the workspace build compiled it, written under
/// `dir`: the file as shipped, with `module` naming the written module.
fn example_pod_privileged(dir: &Path) -> anyhow::Result<PathBuf> {
    const POLICIES: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policies-wasm/examples/pod-privileged/policies.yaml"
    ));
    let module = dir.join("pod_privileged.wasm");
    std::fs::write(&module, tollgate_test_artifacts::POD_PRIVILEGED)?;
    let mut policies: Vec<serde_json::Value> =
        serde_yaml_ng::from_str(POLICIES).context("the example's policies.yaml")?;
    for p in &mut policies {
        p["module"] = serde_json::json!(module);
    }
    let file = dir.join("pod-privileged.yaml");
    // JSON is YAML.
    std::fs::write(&file, serde_json::to_string_pretty(&policies)?)?;
    Ok(file)
}

/// Starts Tollgate for the scenario, checks what it does with each body,
/// measures it with the floor (and the other engine), prints the tables.
async fn drive(
    scenario: &LoadScenario,
    launcher: &Launcher,
    floor: &Server,
    against: Option<&Against>,
    settings: Settings,
) -> anyhow::Result<(Vec<TargetCheck>, Vec<Summary>)> {
    let tollgate = launcher
        .start_tollgate(&scenario.config, &launcher.shared_cache())
        .await?;
    let ca = launcher.ca();
    let mut outcomes = Vec::new();
    let mut measured = Vec::new();
    for case in &scenario.cases {
        let body = &case.body;
        report::scenario_title(
            scenario.label,
            &format!("{} ({:.1} KB): {}", body.name, body.kb(), scenario.what),
        );
        let path = with_query(scenario.route.path(), &body.query);
        let target = |endpoint: Endpoint, path: String| Target {
            endpoint,
            path,
            body: body.bytes.clone(),
            uid: body.uid.clone(),
        };
        let mut contenders = vec![
            Contender {
                name: "floor".into(),
                target: target(floor.endpoint(&ca)?, path.clone()),
                pid: Some(floor.pid()),
            },
            Contender {
                name: "tollgate".into(),
                target: target(tollgate.endpoint(&ca)?, path.clone()),
                pid: Some(tollgate.pid()),
            },
        ];
        if let Some(a) = against {
            let path = match a.url.query() {
                Some(_) => a
                    .url
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned(),
                None => with_query(a.url.path(), &body.query),
            };
            contenders.push(Contender {
                name: "against".into(),
                target: target(a.endpoint.clone(), path),
                pid: a.pid,
            });
        }

        // What each server does with it.
        let metrics = tollgate.endpoint(&ca)?;
        let before = Work::read(&metrics).await?;
        let verdict = probe::verdict(&contenders[1].target).await?;
        let work = Work::read(&metrics).await?.since(&before);
        report::verdict_line("tollgate", &verdict, Some(&work));
        if let (Some(other), Some(a)) = (contenders.get(2), against) {
            let verdict = probe::verdict(&other.target)
                .await
                .with_context(|| format!("--against {}", a.url))?;
            report::verdict_line("against", &verdict, None);
        }

        let summaries = measure::measure(&contenders, settings).await;
        report::table(&summaries, &settings);
        outcomes.extend(judge(scenario, case, verdict.allowed, &summaries));
        measured.extend(summaries);
    }
    Ok((outcomes, measured))
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// Tollgate's figures against the scenario's targets.
fn judge(
    scenario: &LoadScenario,
    case: &Case,
    allowed: bool,
    summaries: &[Summary],
) -> Vec<TargetCheck> {
    let Some(t) = summaries.iter().find(|s| s.name == "tollgate") else {
        return Vec::new();
    };
    let body = &case.body;
    // Bodies of one scenario differ after the comma ("Pod CREATE, privileged container").
    let what = |bound: &str| match body.name.split_once(", ") {
        Some((_, which)) if scenario.cases.len() > 1 => {
            format!("{} {which}: {bound}", scenario.label)
        }
        _ => format!("{} {bound}", scenario.label),
    };
    let mut out = Vec::new();
    if let Some(expected) = case.expect_allowed {
        let word = |a: bool| if a { "allowed" } else { "denied" };
        out.push(TargetCheck {
            what: what(&format!("answered {}", word(expected))),
            measured: word(allowed).into(),
            met: allowed == expected,
        });
    }
    let targets = &scenario.targets;
    if let (Some(bound), Some(r)) = (targets.rate_vs_floor, &t.vs_floor) {
        out.push(TargetCheck::at_least(
            what(&format!("throughput >= {bound:.1}x the floor")),
            r.rate.median,
            bound,
            format!("{:.2}x", r.rate.median),
        ));
    }
    if let (Some(bound), Some(r)) = (targets.p99_vs_floor, &t.vs_floor) {
        out.push(TargetCheck::at_most(
            what(&format!("p99 <= {bound:.1}x the floor's")),
            r.p99.median,
            bound,
            format!("{:.2}x", r.p99.median),
        ));
    }
    if let Some(bound) = targets.p99_ms {
        let ms = t.p99 / 1000.0;
        out.push(TargetCheck::at_most(
            what(&format!("p99 <= {bound} ms")),
            ms,
            bound,
            format!("{ms:.2} ms"),
        ));
    }
    if let (Some(bound), Some(m)) = (targets.rss_mib, t.memory) {
        let rss = report::mib(m.rss_kib);
        out.push(TargetCheck::at_most(
            what(&format!("resident memory after it <= {bound} MiB")),
            rss,
            bound,
            format!("{rss:.1} MiB"),
        ));
    }
    if t.errors.total() > 0 {
        out.push(TargetCheck {
            what: what("no errors"),
            measured: format!("{} errors", t.errors.total()),
            met: false,
        });
    }
    out
}

/// (d): process start to the first 200 from `/readyz`, with an empty
/// `--cache-dir` (every module compiled) and a warm one (compiled modules
/// loaded), alternating; the development certificate already exists.
async fn start_to_ready(launcher: &Launcher, rounds: usize) -> anyhow::Result<Vec<TargetCheck>> {
    report::scenario_title(
        "(d)",
        "start to ready: process start to the first 200 from /readyz (floor: to its first answer)",
    );
    let snapshot_dir = launcher.dir().join("snapshot");
    if !snapshot_dir.is_dir() {
        snapshot::write(&snapshot_dir)?;
    }
    let snapshot = TollgateConfig::Snapshot(snapshot_dir);
    let mut floor = Vec::new();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut warm_snapshot = Vec::new();
    let mut ready_rss = Vec::new();
    for round in 0..rounds {
        let since = Instant::now();
        let mut server = launcher.spawn_floor()?;
        floor.push(launcher.wait_ready(&mut server, since).await?);
        drop(server);

        let cache = launcher.dir().join(format!("cache-cold-{round}"));
        cold.push(
            time_tollgate(launcher, &TollgateConfig::Default, &cache)
                .await?
                .0,
        );
        let (took, rss) = time_tollgate(launcher, &TollgateConfig::Default, &cache).await?;
        warm.push(took);
        ready_rss.extend(rss);
        warm_snapshot.push(time_tollgate(launcher, &snapshot, &cache).await?.0);
    }
    let row = |name: &str, times: &[Duration]| {
        let ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
        let median = measure::median(ms.clone());
        let (min, max) = ms.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
        println!("  {name:<52} {median:>8.0} ms  ({min:.0}-{max:.0})");
        median
    };
    row("floor", &floor);
    let cold_ms = row(
        "tollgate, default pack, cold cache (empty --cache-dir)",
        &cold,
    );
    let warm_ms = row("tollgate, default pack, warm cache", &warm);
    row(
        &format!(
            "tollgate, warm cache, (c)'s snapshot ({} objects)",
            snapshot::NAMESPACES + snapshot::POLICIES
        ),
        &warm_snapshot,
    );
    let rss = measure::median(ready_rss);
    println!("  tollgate resident memory when ready (default pack, warm): {rss:.1} MiB");
    Ok(vec![
        TargetCheck::at_most(
            "(d) ready <= 1 s, warm cache".into(),
            warm_ms,
            1000.0,
            format!("{:.2} s", warm_ms / 1e3),
        ),
        TargetCheck::at_most(
            "(d) ready <= 3 s, cold cache".into(),
            cold_ms,
            3000.0,
            format!("{:.2} s", cold_ms / 1e3),
        ),
    ])
}

/// Start to ready of one Tollgate, and its resident MiB once ready.
async fn time_tollgate(
    launcher: &Launcher,
    config: &TollgateConfig,
    cache: &Path,
) -> anyhow::Result<(Duration, Option<f64>)> {
    let since = Instant::now();
    let mut server = launcher.spawn_tollgate(config, cache)?;
    let took = launcher.wait_ready(&mut server, since).await?;
    Ok((took, server.memory().map(|m| report::mib(m.rss_kib))))
}
