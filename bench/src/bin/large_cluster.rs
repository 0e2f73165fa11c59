//! `large_cluster`: Tollgate's default pack against a large cluster through
//! the real kube-apiserver (issue 20, item 4). Starts etcd and
//! kube-apiserver (`KUBE_APISERVER`, `ETCD`), installs Calico v3.31.7 from
//! its published manifest, and runs `tollgate serve --kubeconfig <admin>`
//! twice: on the Calico objects alone, then after filling the cluster
//! (20,000 Pods in 200 namespaces, 2,000 Deployments with their
//! ReplicaSets, 1,000 Nodes, 3,000 Namespaces, 10,000 NetworkPolicies by
//! default; flags scale them). Each run reports time to ready, resident
//! memory when ready and after `--reviews` reviews, the objects cached per
//! type and the API server's LIST and WATCH requests while it started; the
//! verdicts of a mix of Calico reviews must be the same in both.
//!
//! The objects and reviews come from `tollgate_tests::populate`, which the
//! CI test `tests/cluster_scale.rs` uses at a smaller size.
//!
//! `cargo build --release -p tollgate -p tollgate-bench &&
//!  target/release/large_cluster` (it runs the `tollgate` next to itself).

#![forbid(unsafe_code)]

#[path = "../procfs.rs"]
#[allow(dead_code)] // The bench's reader; only `memory` is needed here.
mod procfs;
#[path = "../large_cluster/report.rs"]
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use serde_json::Value;
use tollgate_tests::cluster::Cluster;
use tollgate_tests::populate::{self, Fill, Review};

/// Issue 20's targets for the large cluster.
const RSS_TARGET_MIB: f64 = 64.0;
const READY_TARGET: Duration = Duration::from_secs(10);
/// How long Tollgate may take to become ready before the bench gives up.
const START_LIMIT: Duration = Duration::from_secs(300);

#[derive(Parser, Debug)]
#[command(about = "Tollgate's default pack against a large cluster through a real kube-apiserver")]
struct Args {
    #[arg(long, default_value_t = Fill::LARGE.pods)]
    pods: usize,
    /// Namespaces holding the Pods and Deployments (the first of --namespaces).
    #[arg(long, default_value_t = Fill::LARGE.pod_namespaces)]
    pod_namespaces: usize,
    #[arg(long, default_value_t = Fill::LARGE.namespaces)]
    namespaces: usize,
    /// Deployments, each with one ReplicaSet.
    #[arg(long, default_value_t = Fill::LARGE.deployments)]
    deployments: usize,
    #[arg(long, default_value_t = Fill::LARGE.nodes)]
    nodes: usize,
    #[arg(long, default_value_t = Fill::LARGE.network_policies)]
    network_policies: usize,
    /// Reviews sent (the mix, repeated) before the second RSS reading.
    #[arg(long, default_value_t = 1_000)]
    reviews: usize,
    /// The tollgate binary (default: the one next to this executable).
    #[arg(long)]
    tollgate: Option<PathBuf>,
}

/// What one Tollgate run measured.
struct Run {
    ready: Duration,
    rss_ready_kib: u64,
    rss_after_kib: u64,
    hwm_kib: u64,
    reviews_took: Duration,
    cached: BTreeMap<String, f64>,
    /// (verb, resource) -> requests, from the API server's metrics.
    api_requests: BTreeMap<(String, String), f64>,
    verdicts: Vec<Value>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    for (var, program) in [("KUBE_APISERVER", "kube-apiserver"), ("ETCD", "etcd")] {
        let path = std::env::var_os(var).map(PathBuf::from);
        ensure!(
            path.as_deref().is_some_and(Path::is_file),
            "{var} must name the {program} executable (the workplace's tools/kube/install prints it)"
        );
    }
    let tollgate = match args.tollgate.clone() {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("this executable's directory")?
            .join("tollgate"),
    };
    ensure!(
        tollgate.is_file(),
        "{} not found: cargo build --release -p tollgate -p tollgate-bench, or pass --tollgate",
        tollgate.display()
    );
    let fill = Fill {
        namespaces: args.namespaces,
        pod_namespaces: args.pod_namespaces,
        pods: args.pods,
        deployments: args.deployments,
        nodes: args.nodes,
        network_policies: args.network_policies,
    };
    let started = Instant::now();
    let step = |what: &str| eprintln!("[{:6.1}s] {what}", started.elapsed().as_secs_f64());

    let cluster = Cluster::start();
    populate::install_calico(&cluster)
        .await
        .context("installing Calico")?;
    let mix = populate::review_mix(&cluster)
        .await
        .context("building the review mix")?;
    let scratch = tempfile::tempdir()?;
    step("API server up, Calico installed");

    // The first start compiles the pack into the module cache the measured
    // runs share, so that both measure a warm start.
    drop(Tollgate::start(&tollgate, &cluster, scratch.path(), "warm-up").await?);
    let small = measure(
        &tollgate,
        &cluster,
        scratch.path(),
        "calico-only",
        &mix,
        args.reviews,
    )
    .await?;
    step("measured on the Calico objects alone");

    let filling = Instant::now();
    fill.namespaces(&cluster)
        .await
        .context("creating namespaces")?;
    fill.workloads(&cluster)
        .await
        .context("filling the cluster")?;
    let fill_took = filling.elapsed();
    let pod_bytes = stored_pod_bytes(&cluster, &fill).await?;
    step(&format!("filled in {:.0} s", fill_took.as_secs_f64()));

    let large = measure(
        &tollgate,
        &cluster,
        scratch.path(),
        "large",
        &mix,
        args.reviews,
    )
    .await?;
    step("measured on the large cluster");

    println!(
        "{}",
        report::report(&args, &fill, fill_took, pod_bytes, &mix, &small, &large)
    );
    let differing = mix
        .iter()
        .zip(small.verdicts.iter().zip(&large.verdicts))
        .filter(|(_, (a, b))| a != b)
        .map(|(r, (a, b))| format!("{}:\n  calico only: {a}\n  large:       {b}", r.name))
        .collect::<Vec<_>>();
    if !differing.is_empty() {
        bail!(
            "verdicts differ on the large cluster:\n{}",
            differing.join("\n")
        );
    }
    Ok(())
}

/// Starts Tollgate on `cluster` and measures one run.
async fn measure(
    bin: &Path,
    cluster: &Cluster,
    dir: &Path,
    name: &str,
    mix: &[Review],
    reviews: usize,
) -> anyhow::Result<Run> {
    let before = api_requests(cluster).await?;
    let mut tollgate = Tollgate::start(bin, cluster, dir, name).await?;
    let ready = tollgate.ready;
    let rss_ready_kib = tollgate.memory()?.rss_kib;
    let after = api_requests(cluster).await?;
    let api_requests = after
        .into_iter()
        .map(|(key, n)| {
            let was = before.get(&key).copied().unwrap_or(0.0);
            (key, n - was)
        })
        .filter(|(_, n)| *n > 0.0)
        .collect();
    let cached = populate::cache_objects(&tollgate.get("/metrics").await?);
    let mut verdicts = Vec::new();
    for review in mix {
        verdicts.push(tollgate.judge(review).await?);
    }
    let sending = Instant::now();
    for review in mix.iter().cycle().take(reviews) {
        tollgate.judge(review).await?;
    }
    let reviews_took = sending.elapsed();
    let memory = tollgate.memory()?;
    tollgate.check_running()?;
    Ok(Run {
        ready,
        rss_ready_kib,
        rss_after_kib: memory.rss_kib,
        hwm_kib: memory.hwm_kib,
        reviews_took,
        cached,
        api_requests,
        verdicts,
    })
}

/// `tollgate serve --kubeconfig <admin>` with the default pack; killed on drop.
struct Tollgate {
    child: Child,
    base: String,
    log: PathBuf,
    client: reqwest::Client,
    /// From spawning the process to the first `/readyz` 200.
    ready: Duration,
}

impl Tollgate {
    async fn start(bin: &Path, cluster: &Cluster, dir: &Path, name: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = dir.join(format!("tollgate-{name}.log"));
        let out = std::fs::File::create(&log)?;
        let spawned = Instant::now();
        let child = Command::new(bin)
            .arg("serve")
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            // Its default log level, whatever the bench's environment says.
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut tollgate = Self {
            child,
            base: format!("https://127.0.0.1:{port}"),
            log,
            // Its own development certificate, on loopback.
            client: tollgate_tests::insecure_client(),
            ready: Duration::ZERO,
        };
        loop {
            let response = tollgate
                .client
                .get(format!("{}/readyz", tollgate.base))
                .send()
                .await;
            if response.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
                tollgate.ready = spawned.elapsed();
                return Ok(tollgate);
            }
            tollgate.check_running()?;
            if spawned.elapsed() > START_LIMIT {
                bail!(
                    "tollgate not ready within {START_LIMIT:?}; its log: {}",
                    tollgate.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn memory(&self) -> anyhow::Result<procfs::Memory> {
        procfs::memory(self.child.id()).context("tollgate's /proc/PID/status")
    }

    async fn get(&self, path: &str) -> anyhow::Result<String> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status.is_success(), "GET {path}: {status}: {text}");
        Ok(text)
    }

    async fn judge(&self, review: &Review) -> anyhow::Result<Value> {
        populate::judge(&self.client, &self.base, review)
            .await
            .with_context(|| format!("tollgate's log: {}", self.log.display()))
    }

    /// An error with the end of its log if the process has exited.
    fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            bail!(
                "tollgate exited ({status}); the end of its log:\n{}",
                lines[lines.len().saturating_sub(15)..].join("\n")
            );
        }
        Ok(())
    }
}

impl Drop for Tollgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `apiserver_request_total` with verb LIST or WATCH, and the watches open
/// now (`apiserver_longrunning_requests`, as WATCH-open): a watch is counted
/// in the total only when it ends.
async fn api_requests(cluster: &Cluster) -> anyhow::Result<BTreeMap<(String, String), f64>> {
    let response = cluster
        .api()
        .get(cluster.api_url("/metrics"))
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    ensure!(
        status.is_success(),
        "GET /metrics of the API server: {status}"
    );
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let (metric, rest) = match line.split_once('{') {
            Some(split) => split,
            None => continue,
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            let start = labels
                .find(&format!(",{name}=\""))
                .map(|i| i + 1)
                .or_else(|| labels.starts_with(&format!("{name}=\"")).then_some(0))?
                + name.len()
                + 2;
            let len = labels[start..].find('"')?;
            Some(&labels[start..start + len])
        };
        let verb = match (metric, label("verb")) {
            ("apiserver_request_total", Some(verb @ ("LIST" | "WATCH"))) => verb.to_owned(),
            ("apiserver_longrunning_requests", Some("WATCH")) => "WATCH-open".to_owned(),
            _ => continue,
        };
        let resource = match label("group") {
            Some(group) if !group.is_empty() => {
                format!("{}.{group}", label("resource").unwrap_or("?"))
            }
            _ => label("resource").unwrap_or("?").to_owned(),
        };
        let value: f64 = value.trim().parse().unwrap_or(0.0);
        *counts.entry((verb, resource)).or_insert(0.0) += value;
    }
    Ok(counts)
}

/// The size of a filled Pod as the API server returns it (with
/// `managedFields`), in bytes; 0 without Pods.
async fn stored_pod_bytes(cluster: &Cluster, fill: &Fill) -> anyhow::Result<usize> {
    if fill.pods == 0 {
        return Ok(0);
    }
    let ns = populate::namespace_name(0);
    let name = populate::pod(&ns, 0)["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    let response = cluster.api().get(cluster.api_url(&path)).send().await?;
    ensure!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    Ok(response.bytes().await?.len())
}
