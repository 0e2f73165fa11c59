//! A cluster guarded by Tollgate through its generated install, for the
//! cluster suites that tell a story with `kubectl`: each step retries
//! until a policy refuses or admits it (Tollgate's watch caches and the API
//! server's webhook configuration follow a write within a second or two),
//! undoing a premature success, and a failure shows the error lines of
//! every log.

use std::process::Output;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::cluster::Cluster;
use crate::kubectl::{text, tollgate_manifests};
use crate::{Launch, Server};

/// How long a write may take to reach Tollgate's watch caches, or a
/// webhook configuration the API server's admission chain.
pub const SETTLE: Duration = Duration::from_secs(30);

/// The user the generated install's ClusterRoleBinding names (its
/// ServiceAccount `tollgate/tollgate`).
const SERVICE_ACCOUNT: &str = "system:serviceaccount:tollgate:tollgate";

/// The objects of a `tollgate manifests` stream but its webhook
/// configurations, as a `v1 List` for `kubectl apply -f -`.
fn without_webhooks(install: &str) -> String {
    use serde::Deserialize;
    let items: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(install)
        .map(|doc| serde_json::Value::deserialize(doc).expect("a YAML document"))
        .filter(|o| {
            !o.is_null()
                && !o["kind"]
                    .as_str()
                    .is_some_and(|k| k.ends_with("WebhookConfiguration"))
        })
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// kubectl arguments and stdin that revert a step.
pub type Undo<'a> = (&'a [&'a str], Option<&'a str>);

/// `kubectl` arguments as a user types them (split on whitespace; write
/// arguments holding spaces as a slice instead).
pub fn words(command: &str) -> Vec<&str> {
    command.split_whitespace().collect()
}

/// A cluster and the Tollgate guarding it through its generated webhooks:
/// kubectl steps that retry until a policy refuses or admits them, and
/// failures that show the error lines of every log.
pub struct Guarded {
    pub cluster: Cluster,
    pub server: Server,
    started: Instant,
}

impl Guarded {
    /// Starts Tollgate for `cluster` (its lookups from the cluster's watch
    /// caches, a serving pair from its CA) as the service account the
    /// generated install binds its ClusterRole to, so Tollgate reads with
    /// exactly what that role grants; installs what `tollgate manifests`
    /// generates and returns once Tollgate is ready and its webhooks are
    /// called: `probe` (kubectl arguments) is repeated until `policy` ran.
    pub async fn start(cluster: Cluster, probe: &[&str], policy: &str) -> Self {
        let started = Instant::now();
        // The install without its webhooks first (they need Tollgate's
        // address), so that the caches list with its grants from the start.
        cluster.apply(&without_webhooks(&tollgate_manifests(&[
            "--webhook-url",
            "https://127.0.0.1:1",
        ])));
        let pair = cluster.ca.serving_pair(&cluster.dir, "tollgate");
        let identity = cluster.kubeconfig_for(SERVICE_ACCOUNT);
        let server = Launch::new()
            .arg("serve")
            .arg("--kubeconfig")
            .arg(identity.display().to_string())
            .tls(&pair.cert, &pair.key, &cluster.dir.join("ca.crt"))
            .shared_module_cache()
            .start();
        let guarded = Self {
            cluster,
            server,
            started,
        };
        let install = guarded.cluster.tollgate_install(&guarded.server);
        guarded.cluster.apply(&install);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, text) = guarded.server.get("/readyz").await;
            if status == StatusCode::OK {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "Tollgate not ready with the generated ClusterRole: {text}\n{}",
                    guarded.server.log_errors()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The API server loads webhook configurations asynchronously.
        let deadline = Instant::now() + SETTLE;
        while guarded.server.evaluations(policy).await == 0.0 {
            let out = guarded.cluster.kubectl(probe);
            if Instant::now() > deadline {
                guarded.fail("the generated webhooks were never called", &out);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        guarded.step("Tollgate serves, its webhooks are called");
        guarded
    }

    /// Logs `what` with the time since Tollgate started (where a slow
    /// suite spends its time).
    pub fn step(&self, what: &str) {
        eprintln!("[{:6.1}s] {what}", self.started.elapsed().as_secs_f64());
    }

    /// Fails with `what`, the kubectl output and every log's error lines.
    pub fn fail(&self, what: &str, out: &Output) -> ! {
        panic!(
            "{what}: {}\n{}\n{}",
            text(out),
            self.server.log_errors(),
            self.cluster.log_errors()
        )
    }

    /// `kubectl ARGS` (with `input` on stdin), retried until admitted;
    /// returns its stderr (the warnings).
    pub fn admitted(&self, args: &[&str], input: Option<&str>) -> String {
        let result = self
            .cluster
            .retry(args, input, SETTLE, |o| o.status.success());
        match result {
            Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
            Err(out) => self.fail(&format!("kubectl {} never admitted", args.join(" ")), &out),
        }
    }

    /// `kubectl ARGS`, retried until `policy` refuses it; `undo` (which
    /// must be admitted) reverts a premature success. Returns the refusal.
    pub fn refused(
        &self,
        args: &[&str],
        input: Option<&str>,
        policy: &str,
        undo: Undo<'_>,
    ) -> String {
        let result = self.cluster.retry(args, input, SETTLE, |out| {
            if out.status.success() {
                let undone = self.cluster.kubectl_with_input(undo.0, undo.1);
                if !undone.status.success() {
                    self.fail(&format!("undo: kubectl {}", undo.0.join(" ")), &undone);
                }
                return false;
            }
            String::from_utf8_lossy(&out.stderr).contains(policy)
        });
        match result {
            Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
            Err(out) => self.fail(
                &format!("{policy} never refused kubectl {}", args.join(" ")),
                &out,
            ),
        }
    }

    /// `kubectl ARGS` (with `input` on stdin), which must succeed without
    /// any review reaching Tollgate: a write no policy is about.
    pub async fn unseen(&self, args: &[&str], input: Option<&str>) {
        let before = self.server.review_counts().await;
        let out = self.cluster.kubectl_with_input(args, input);
        if !out.status.success() {
            self.fail(&format!("kubectl {}", args.join(" ")), &out);
        }
        let after = self.server.review_counts().await;
        if after != before {
            let text = self.server.metrics().await;
            let evaluations: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("tollgate_reviews_total{"))
                .collect();
            self.fail(
                &format!(
                    "kubectl {} reached Tollgate ({before:?} -> {after:?} reviews, unmatched); \
                     evaluations so far:\n{}",
                    args.join(" "),
                    evaluations.join("\n")
                ),
                &out,
            );
        }
    }

    /// `kubectl ARGS -o jsonpath=PATH`, which must succeed.
    pub fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let expr = format!("jsonpath={path}");
        let all = [args, &["-o", &expr]].concat();
        let out = self.cluster.kubectl(&all);
        if !out.status.success() {
            self.fail(&format!("kubectl {}", all.join(" ")), &out);
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
