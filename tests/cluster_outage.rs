//! Tollgate's cluster context through faults of a real kube-apiserver
//! (issue 20, item 5): the API server killed and restarted with the same
//! flags, started only after Tollgate, and restored from an empty etcd.
//!
//! R4 (`controller-replicaset-first`) is the probe. It decides the CREATE of
//! the calico-kube-controllers Deployment from the watch cache of apps/v1
//! ReplicaSets: allowed while the pre-2.0 ReplicaSet
//! `kube-system/calico-policy-controller` is at 0 replicas or absent,
//! refused once it asks for one. A verdict answered from a cache that missed
//! a change is therefore visible as the wrong answer, and what must hold is:
//! a verdict follows the cluster within 5 s of the API server being back, or
//! fails closed while the cache is older than `--max-context-staleness`;
//! it never allows from the old state.
//!
//! Reviews go straight to Tollgate's `/validate` (no webhook registration):
//! the API server is the thing that fails here, and a webhook call needs it.
//!
//! `cargo test -p tollgate-tests --test cluster_outage -- --ignored` with
//! `KUBE_APISERVER` and `ETCD` set; `.ci/run` always runs it.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::cluster::Cluster;
use support::corpus::{create, doc, served};
use support::verdict::Answer;
use support::{Launch, Server};
use tollgate_tests as support;

/// `--max-context-staleness`, as passed (also the default).
const STALENESS: Duration = Duration::from_secs(10);
/// The issue's bound: a verdict follows a change within this once the API
/// server is back and ready.
const FOLLOW: Duration = Duration::from_secs(5);
/// The issue's bound: Tollgate started before the API server is ready this
/// long after the API server is.
const READY_AFTER_APISERVER: Duration = Duration::from_secs(10);
/// How long the API server stays down: long enough that an unbounded
/// reconnect backoff grows far past [`FOLLOW`], and the cache past
/// [`STALENESS`].
const OUTAGE: Duration = Duration::from_secs(30);
/// The first sync on a freshly started cluster and server: no bound is
/// fixed, and a loaded CI machine may be slow.
const FIRST_SYNC: Duration = Duration::from_secs(60);
/// How often a verdict is taken while one is awaited.
const POLL: Duration = Duration::from_millis(100);

/// Held by each test for its whole run: `cargo test` runs a file's tests in
/// parallel, and two control planes starting and failing on a 2-core CI
/// machine would make the timing bounds measure each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The policy under test.
const R4: &str = "controller-replicaset-first";
/// What R4's refusal says about a running pre-2.0 ReplicaSet.
const R4_REFUSAL: &str = "still runs the policy controller";
/// The ReplicaSet R4 reads, as a path of the API.
const RS_PATH: &str = "/apis/apps/v1/namespaces/kube-system/replicasets/calico-policy-controller";

/// The pre-2.0 policy controller ReplicaSet (Calico v1.6's
/// `policy-controller.yaml`, as `apps/v1`) asking for `replicas`.
fn replica_set(replicas: i64) -> String {
    let mut rs = served(&doc(
        "v1.6/policy-controller.yaml",
        "ReplicaSet",
        "calico-policy-controller",
    ));
    rs["spec"]["replicas"] = json!(replicas);
    rs.to_string()
}

/// The AdmissionReview of creating Calico v3.0's calico-kube-controllers
/// Deployment: the one R4 holds back while the old ReplicaSet runs.
fn controller_create() -> Value {
    create(
        "create-calico-kube-controllers",
        &served(&doc(
            "v3.0/calico-kube-controllers.yaml",
            "Deployment",
            "calico-kube-controllers",
        )),
    )
}

/// R4's part of Tollgate's answer (the other policies reading the cluster
/// fail closed beside it, which would hide R4 allowing from an old cache).
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// R4 did not refuse: the ReplicaSet is at 0 or absent, as far as the
    /// cache knows.
    Allowed,
    /// R4's refusal: the cache holds the ReplicaSet asking for a replica.
    Refused(String),
    /// R4's failure verdict because its cache is older than the bound.
    Stale(String),
    /// R4's failure verdict for another reason (a cache not synced yet,
    /// say): failing closed.
    Closed(String),
}

impl Seen {
    /// What the tests wait for.
    fn name(&self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Refused(_) => "refused by R4",
            Self::Stale(_) => "refused as stale",
            Self::Closed(_) => "refused otherwise",
        }
    }

    fn of(request: &Value, answer: &Value) -> Self {
        let verdict = Answer::of("the controller Deployment's CREATE", request, answer);
        let Some((_, message)) = verdict.denials.iter().find(|(id, _)| id == R4) else {
            return Self::Allowed;
        };
        if message.contains(R4_REFUSAL) {
            Self::Refused(message.clone())
        } else if message.to_lowercase().contains("stale") {
            Self::Stale(message.clone())
        } else {
            Self::Closed(message.clone())
        }
    }
}

/// A cluster and the Tollgate watching it.
struct Setup {
    cluster: Cluster,
    server: Server,
}

impl Setup {
    /// Tollgate serving the built-in pack with the cluster's admin
    /// kubeconfig and the staleness bound under test.
    fn start(cluster: Cluster) -> Self {
        let server = Launch::new()
            .arg("serve")
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig.display().to_string())
            .arg("--max-context-staleness")
            .arg(format!("{}s", STALENESS.as_secs()))
            .shared_module_cache()
            .start();
        Self { cluster, server }
    }

    /// R4's verdict on the controller Deployment's CREATE now.
    async fn judge(&self) -> Seen {
        let request = controller_create();
        let answer = self.server.review("/validate", &request).await;
        Seen::of(&request, &answer)
    }

    async fn readyz(&self) -> (StatusCode, String) {
        self.server.get("/readyz").await
    }

    /// Why a check failed: Tollgate's warnings and errors, the API server's
    /// and etcd's last lines.
    fn logs(&self) -> String {
        format!("{}\n{}", self.server.log_errors(), self.cluster.log_tail())
    }

    /// Polls `probe` every [`POLL`] until it returns `Ok`, for at most
    /// `within` after `since`; returns the value and when it came (since
    /// `since`). An `Err` describes what the probe saw instead, for the
    /// failure message.
    async fn until<T, F, Fut>(
        &self,
        since: Instant,
        within: Duration,
        what: &str,
        mut probe: F,
    ) -> (T, Duration)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        loop {
            let last = match probe().await {
                Ok(value) => return (value, since.elapsed()),
                Err(last) => last,
            };
            assert!(
                since.elapsed() < within,
                "not within {within:?}: {what}; last: {last}\n{}",
                self.logs()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `/readyz` is 200.
    async fn ready(&self, since: Instant, within: Duration) -> Duration {
        let what = "Tollgate's /readyz is 200";
        let ((), took) = self
            .until(since, within, what, || async {
                match self.readyz().await {
                    (StatusCode::OK, _) => Ok(()),
                    (status, text) => Err(format!("{status}: {text}")),
                }
            })
            .await;
        took
    }

    /// Waits until the verdict is `want` (a [`Seen::name`]).
    async fn verdict(&self, since: Instant, within: Duration, want: &str) -> Duration {
        let ((), took) = self
            .until(since, within, want, || async {
                let seen = self.judge().await;
                if seen.name() == want {
                    Ok(())
                } else {
                    Err(format!("{seen:?}"))
                }
            })
            .await;
        took
    }

    /// Sets the ReplicaSet's `spec.replicas` through the API (what
    /// `kubectl scale` does, without a process start on the clock).
    async fn scale(&self, replicas: i64) {
        let response = self
            .cluster
            .api()
            .patch(self.cluster.api_url(RS_PATH))
            .header("content-type", "application/merge-patch+json")
            .body(json!({"spec": {"replicas": replicas}}).to_string())
            .send()
            .await
            .expect("PATCH the ReplicaSet");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "scale to {replicas}: {status} {text}");
    }

    /// The ReplicaSet's resourceVersion as stored now, if it exists.
    async fn rs_version(&self) -> Option<u64> {
        let rs = self.cluster.get_json(RS_PATH).await?;
        let version = rs["metadata"]["resourceVersion"].as_str()?;
        Some(version.parse().expect("a numeric resourceVersion"))
    }
}

/// The values of `name{api_version="apps/v1",kind="ReplicaSet",…}` in a
/// Prometheus text exposition: one per watch of the type (label order and
/// further labels, such as a namespace the watch is narrowed to, aside).
fn rs_metric(text: &str, name: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with('{')))
        .filter(|l| l.contains(r#"api_version="apps/v1""#) && l.contains(r#"kind="ReplicaSet""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

/// `Ok` when every ReplicaSet watch's metrics say what `connected` asks:
/// connected and not stale, or disconnected and stale for a while; `Err`
/// with what they say otherwise.
fn rs_watch_metrics(text: &str, connected: bool) -> Result<(), String> {
    let stale = rs_metric(text, "tollgate_context_cache_stale_seconds");
    let up = rs_metric(text, "tollgate_context_cache_connected");
    let holds = !stale.is_empty()
        && !up.is_empty()
        && if connected {
            stale.iter().all(|v| *v == 0.0) && up.iter().all(|v| *v == 1.0)
        } else {
            stale.iter().all(|v| *v > 0.0) && up.iter().all(|v| *v == 0.0)
        };
    if holds {
        Ok(())
    } else {
        Err(format!(
            "apps/v1 ReplicaSet: tollgate_context_cache_stale_seconds {stale:?}, \
             tollgate_context_cache_connected {up:?}"
        ))
    }
}

/// The API server killed for [`OUTAGE`], restarted with the same flags, and
/// the ReplicaSet scaled 0 → 1 as soon as it is ready: within
/// `--max-context-staleness` the last cache answers; past it R4 fails
/// closed saying the cache is stale, and the metrics say so too; after the
/// scale the verdict is never "allowed" again and is R4's refusal within
/// [`FOLLOW`].
#[tokio::test]
#[ignore = "needs KUBE_APISERVER and ETCD"]
async fn after_an_outage_verdicts_follow_the_cluster_or_fail_closed() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start();
    cluster.apply(&replica_set(0));
    let mut s = Setup::start(cluster);
    let started = Instant::now();
    s.ready(started, FIRST_SYNC).await;
    s.verdict(Instant::now(), FOLLOW, "allowed").await;

    // --- The outage.
    let killed = Instant::now();
    s.cluster.stop_apiserver();
    let mut first_stale = None;
    let mut checked_metrics = false;
    while killed.elapsed() < OUTAGE {
        let asked = killed.elapsed();
        let seen = s.judge().await;
        let answered = killed.elapsed();
        match &seen {
            // The watch broke after the kill, so the cache was younger than
            // `answered`: under the bound (with a second for rounding) the
            // last cache answers.
            _ if answered + Duration::from_secs(1) < STALENESS => assert_eq!(
                seen,
                Seen::Allowed,
                "{answered:?} into the outage, under the {STALENESS:?} bound\n{}",
                s.logs()
            ),
            Seen::Stale(message) => {
                first_stale.get_or_insert((answered, message.clone()));
            }
            // Past the bound (with margin for noticing the broken watch),
            // only the staleness refusal is right; once it came, it stays.
            _ if first_stale.is_some() || asked > STALENESS + Duration::from_secs(5) => panic!(
                "{asked:?} into the outage (stale since {:?}): {seen:?}\n{}",
                first_stale.as_ref().map(|(at, _)| *at),
                s.logs()
            ),
            _ => {}
        }
        if first_stale.is_some() && !checked_metrics {
            let metrics = s.server.metrics().await;
            if let Err(said) = rs_watch_metrics(&metrics, false) {
                panic!("during the outage: {said}\n{}", s.logs());
            }
            checked_metrics = true;
        }
        tokio::time::sleep(POLL).await;
    }
    let (first_stale, stale_message) = first_stale.unwrap_or_else(|| {
        panic!(
            "no staleness refusal in {OUTAGE:?} of outage (bound {STALENESS:?})\n{}",
            s.logs()
        )
    });
    assert!(checked_metrics);
    // /readyz stays 200 (every replica reads the same API server) and names
    // the stale caches.
    let (status, text) = s.readyz().await;
    assert_eq!(status, StatusCode::OK, "{text}\n{}", s.logs());
    assert!(
        text.contains("stale") && text.contains("apps/v1 ReplicaSet"),
        "/readyz during the outage: {text}"
    );
    // An operator reading the log learns which server went away.
    let address = s.cluster.url.trim_start_matches("https://");
    assert!(
        s.server
            .logs()
            .lines()
            .any(|l| l.contains(" WARN") && l.contains(address)),
        "no warning names the API server {address}\n{}",
        s.logs()
    );

    // --- Back, and the change made at once.
    let restarted = Instant::now();
    s.cluster.start_apiserver();
    let apiserver_ready = restarted.elapsed();
    s.scale(1).await;
    let scaled = Instant::now();
    let mut verdicts = Vec::new();
    let followed = loop {
        let seen = s.judge().await;
        let at = scaled.elapsed();
        verdicts.push((at, seen.clone()));
        match seen {
            Seen::Allowed => panic!(
                "allowed from the old state {at:?} after the ReplicaSet was scaled to 1 \
                 (verdicts since the scale: {verdicts:?})\n{}",
                s.logs()
            ),
            Seen::Refused(_) => break at,
            Seen::Stale(_) | Seen::Closed(_) => {}
        }
        assert!(
            at < FOLLOW,
            "R4 did not refuse within {FOLLOW:?} of the scale (verdicts: {verdicts:?})\n{}",
            s.logs()
        );
        tokio::time::sleep(POLL).await;
    };
    // It stays refused: no late event from the old watch undoes it.
    let settled = Instant::now();
    while settled.elapsed() < Duration::from_secs(2) {
        let seen = s.judge().await;
        assert!(
            seen != Seen::Allowed,
            "allowed again {:?} after the scale\n{}",
            scaled.elapsed(),
            s.logs()
        );
        tokio::time::sleep(POLL).await;
    }
    let what = "the ReplicaSet watch metrics say connected";
    s.until(Instant::now(), FOLLOW, what, || async {
        rs_watch_metrics(&s.server.metrics().await, true)
    })
    .await;
    assert_eq!(s.readyz().await.0, StatusCode::OK, "{}", s.logs());
    eprintln!(
        "outage {OUTAGE:?}: first staleness refusal {first_stale:.1?} after the kill; \
         API server ready {apiserver_ready:.1?} after its restart; \
         R4 refused {followed:.2?} after the scale\nthe staleness refusal: {stale_message}"
    );
}

/// Tollgate started while the API server is down is not ready and fails
/// closed; it is ready within [`READY_AFTER_APISERVER`] of the API server
/// being ready, and then judges from the cluster.
#[tokio::test]
#[ignore = "needs KUBE_APISERVER and ETCD"]
async fn started_before_the_api_server_it_is_ready_soon_after_it() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut cluster = Cluster::start();
    cluster.apply(&replica_set(0));
    cluster.stop_apiserver();
    let mut s = Setup::start(cluster);

    // A couple of seconds without an API server: not ready, and R4 may
    // not guess.
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(2) {
        let (status, text) = s.readyz().await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "/readyz without an API server: {text}\n{}",
            s.logs()
        );
        let seen = s.judge().await;
        assert!(
            seen != Seen::Allowed,
            "allowed without an API server\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let restarted = Instant::now();
    s.cluster.start_apiserver();
    let apiserver_ready = Instant::now();
    let took = s.ready(apiserver_ready, READY_AFTER_APISERVER).await;
    s.verdict(Instant::now(), FOLLOW, "allowed").await;
    eprintln!(
        "API server ready {:.1?} after its start; Tollgate's /readyz 200 {took:.2?} after that",
        apiserver_ready - restarted
    );
}

/// etcd restored empty under the same API server address: the cache drops
/// the ReplicaSet that no longer exists, and sees the one created in the
/// restored store although its resourceVersion is far below the last one
/// the cache saw (each within [`FOLLOW`] of the API server being ready or
/// of the write).
///
/// The ReplicaSet asks for a replica before the restore: one at 0 replicas
/// and an absent one get the same verdict, which would hide a cache that
/// kept the old object.
#[tokio::test]
#[ignore = "needs KUBE_APISERVER and ETCD"]
async fn a_restored_empty_etcd_replaces_the_cache() {
    let _alone = ONE_AT_A_TIME.lock().await;
    /// Writes before the ReplicaSet, so that its resourceVersion stays
    /// above anything the restored cluster writes in this test.
    const BUMPS: usize = 600;
    let cluster = Cluster::start();
    cluster.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: revision-bump, namespace: default}\n",
    );
    let client = cluster.api();
    let path = cluster.api_url("/api/v1/namespaces/default/configmaps/revision-bump");
    let mut bumps = tokio::task::JoinSet::new();
    for task in 0..8 {
        let (client, path) = (client.clone(), path.clone());
        bumps.spawn(async move {
            for n in (task..BUMPS).step_by(8) {
                let response = client
                    .patch(&path)
                    .header("content-type", "application/merge-patch+json")
                    .body(json!({"data": {"n": n.to_string()}}).to_string())
                    .send()
                    .await
                    .expect("PATCH the ConfigMap");
                assert!(response.status().is_success(), "{}", response.status());
            }
        });
    }
    while let Some(done) = bumps.join_next().await {
        done.expect("a bump task");
    }
    cluster.apply(&replica_set(1));
    let mut s = Setup::start(cluster);
    s.ready(Instant::now(), FIRST_SYNC).await;
    s.verdict(Instant::now(), FOLLOW, "refused by R4").await;
    let before = s
        .rs_version()
        .await
        .expect("the ReplicaSet before the restore");

    let restarted = Instant::now();
    s.cluster.restore_empty_etcd();
    let apiserver_ready = Instant::now();
    assert_eq!(s.rs_version().await, None, "etcd was not emptied");
    let dropped = s.verdict(apiserver_ready, FOLLOW, "allowed").await;

    // The same ReplicaSet in the new store (kube-system is created by the
    // API server shortly after it is ready).
    let namespace = s.cluster.retry(
        &["get", "namespace", "kube-system"],
        None,
        Duration::from_secs(30),
        |out| out.status.success(),
    );
    assert!(namespace.is_ok(), "no kube-system\n{}", s.logs());
    s.cluster.apply(&replica_set(1));
    let created = Instant::now();
    let after = s.rs_version().await.expect("the new ReplicaSet");
    assert!(
        after < before,
        "the premise: the new ReplicaSet's resourceVersion {after} is below the old {before}"
    );
    let seen = s.verdict(created, FOLLOW, "refused by R4").await;
    eprintln!(
        "etcd restored empty, API server ready {:.1?} after the restore began; \
         the old ReplicaSet dropped {dropped:.2?} after that; \
         the new one (resourceVersion {after} < {before}) refused {seen:.2?} after its creation",
        apiserver_ready - restarted
    );
}
