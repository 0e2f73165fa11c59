//! The self-managed certificate loop, one per replica: read the Secret,
//! plan, write (or lose the race and read again), serve what the Secret
//! holds, keep the webhook configurations' `caBundle` in step, open the
//! readiness gate once the API server can verify this replica.
//!
//! Watches on the Secret and on both configurations only wake the loop; it
//! always acts on a fresh read, the one its write is guarded by.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use kube::Resource;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::material::Material;
use super::plan::{self, Policy, Step};
use super::secret::{SecretStore, Written};
use super::webhooks::{Found, WebhookConfigurations};
use crate::CertMetrics;
use crate::Gate;
use crate::serving::{ServingCert, certified_key};

/// Even with nothing due, look again this often (a missed watch event
/// costs at most this long).
const RESYNC: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

enum Next {
    /// Something changed: read again now.
    Now,
    /// Read again after this long.
    After(Duration),
    /// Read again when something is due (or on a watch event).
    At(Option<SystemTime>),
}

pub(super) struct Controller {
    pub secret: SecretStore,
    pub namespace: String,
    pub webhooks: WebhookConfigurations,
    pub policy: Policy,
    pub serving: ServingCert,
    pub ready: Gate,
    pub metrics: CertMetrics,
    /// The last Secret seen: a deleted Secret is put back as it was, since
    /// the API server still trusts its CA.
    remembered: Option<Material>,
    /// The signer CA (DER) and since when every configuration carries it.
    covered: Option<(Vec<u8>, SystemTime)>,
    serving_from_secret: bool,
    /// resourceVersion of a Secret whose generation was behind a
    /// configuration's on the previous read too.
    behind: Option<String>,
    reported: (String, Option<&'static str>),
}

impl Controller {
    pub(super) fn new(
        secret: SecretStore,
        namespace: String,
        webhooks: WebhookConfigurations,
        policy: Policy,
        serving: ServingCert,
        ready: Gate,
        metrics: CertMetrics,
    ) -> Self {
        Self {
            secret,
            namespace,
            webhooks,
            policy,
            serving,
            ready,
            metrics,
            remembered: None,
            covered: None,
            serving_from_secret: false,
            behind: None,
            reported: (String::new(), None),
        }
    }

    /// Runs until aborted.
    pub(super) async fn run(mut self, wake: Arc<Notify>) {
        let mut failures = 0u32;
        let mut immediate = 0u32;
        loop {
            let next = match self.round().await {
                Ok(next) => {
                    failures = 0;
                    next
                }
                Err(error) => {
                    failures += 1;
                    let pause = Duration::from_secs(1 << failures.min(3));
                    tracing::warn!(
                        secret = %format!("{}/{}", self.namespace, self.secret.name()),
                        %error, retry_in = ?pause,
                        "self-managed certificate: cannot reach the API server"
                    );
                    Next::After(pause)
                }
            };
            let pause = match next {
                // Guard against two parties trading writes forever.
                Next::Now if immediate < 20 => {
                    immediate += 1;
                    continue;
                }
                Next::Now => Duration::from_secs(1),
                Next::After(pause) => pause,
                Next::At(at) => at
                    .and_then(|at| at.duration_since(SystemTime::now()).ok())
                    .map_or(RESYNC, |d| d.min(RESYNC)),
            };
            immediate = 0;
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = wake.notified() => {}
            }
        }
    }

    async fn round(&mut self) -> Result<Next, RoundError> {
        let read = self.secret.read().await?;
        let now = SystemTime::now();
        if read.object.is_none()
            && let Some(remembered) = &self.remembered
        {
            if self.secret.write(None, &remembered.contents()).await? == Written::Done {
                tracing::warn!(
                    secret = self.secret.name(),
                    "the Secret was deleted; put it back as it was"
                );
            }
            return Ok(Next::Now);
        }
        let material = read.contents.as_ref().map(Material::read);
        if let Some(material) = &material {
            self.report_problems(&material.problems);
            // Whatever the Secret holds is what every replica should serve,
            // mid-rotation included, even if the next write fails.
            self.serve(material);
            self.remembered = Some(material.clone());
        }
        let found = self.webhooks.read().await;
        self.observe_coverage(material.as_ref(), found.as_deref().ok(), now);
        let covered_since = self.covered.as_ref().map(|(_, since)| *since);
        let idle_at = match plan::plan(material.as_ref(), &self.policy, now, covered_since) {
            Step::Idle { at, waiting_for } => {
                self.report_waiting(waiting_for);
                at
            }
            step => {
                let newest = found.as_deref().map_or(0, newest_generation);
                let next = plan::apply(&step, material.as_ref(), &self.policy, now, newest)?;
                match self
                    .secret
                    .write(read.object.as_ref(), &next.contents())
                    .await?
                {
                    Written::Done => tracing::info!(
                        secret = self.secret.name(),
                        ?step,
                        generation = next.generation,
                        cas = next.bundle.len(),
                        "updated the certificate Secret"
                    ),
                    Written::Lost => tracing::debug!("another replica updated the Secret first"),
                }
                return Ok(Next::Now);
            }
        };
        let material = material.expect("a plan is idle only with a Secret");
        let found = found?;

        let bundle = material.bundle_pem();
        let mut wrote = false;
        for config in &found {
            if config.webhook_count() == 0 || config.holds(&bundle, material.generation) {
                continue;
            }
            if config.generation() > material.generation {
                // Written from a newer Secret than this read: either the
                // read is stale (look again shortly) or the Secret was
                // replaced by an older one (then raise its generation, so
                // its bundle wins).
                let version = read
                    .object
                    .as_ref()
                    .and_then(|s| s.meta().resource_version.clone());
                if self.behind.is_some() && self.behind == version {
                    let mut raised = material.clone();
                    raised.generation = newest_generation(&found) + 1;
                    self.secret
                        .write(read.object.as_ref(), &raised.contents())
                        .await?;
                    self.behind = None;
                    return Ok(Next::Now);
                }
                self.behind = version;
                return Ok(Next::After(Duration::from_secs(1)));
            }
            match self
                .webhooks
                .write(config, &bundle, material.generation)
                .await?
            {
                Written::Done => tracing::info!(
                    kind = config.kind,
                    name = self.webhooks.name(),
                    webhooks = config.webhook_count(),
                    cas = material.bundle.len(),
                    generation = material.generation,
                    "wrote the CA bundle into the webhook configuration"
                ),
                Written::Lost => {}
            }
            wrote = true;
        }
        if wrote {
            return Ok(Next::Now);
        }
        if let (false, true, Some(leaf)) = (
            self.ready.is_open(),
            self.serving_from_secret,
            &material.leaf,
        ) && found.iter().all(|config| config.verifies(&leaf.cert))
        {
            self.ready.open();
            tracing::info!(
                configurations = found.len(),
                "the webhook configurations trust the serving certificate"
            );
        }
        Ok(Next::At(idle_at))
    }

    /// Serves the Secret's pair unless it already is.
    fn serve(&mut self, material: &Material) {
        let Some(leaf) = &material.leaf else { return };
        if self.serving_from_secret && self.serving.leaf().as_ref() == leaf.cert.der.as_slice() {
            return;
        }
        match certified_key(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()) {
            Ok(pair) => {
                self.serving.swap(pair);
                super::record_expiry(&self.serving, &self.metrics);
                self.serving_from_secret = true;
                self.metrics.reloaded(true);
                tracing::info!(
                    secret = %format!("{}/{}", self.namespace, self.secret.name()),
                    names = ?leaf.cert.names,
                    not_after = %humantime(leaf.cert.not_after),
                    "serving the certificate from the Secret"
                );
            }
            Err(error) => {
                self.metrics.reloaded(false);
                tracing::error!(%error, "the Secret's certificate cannot serve; keeping the current one");
            }
        }
    }

    fn observe_coverage(
        &mut self,
        material: Option<&Material>,
        found: Option<&[Found]>,
        now: SystemTime,
    ) {
        let signer = material.and_then(|m| m.signer.as_ref()).map(|s| &s.cert);
        self.covered = match (signer, found) {
            (Some(signer), Some(found)) if found.iter().all(|c| c.carries(signer)) => {
                match self.covered.take() {
                    Some((der, since)) if der == signer.der => Some((der, since)),
                    _ => Some((signer.der.clone(), now)),
                }
            }
            _ => None,
        };
    }

    fn report_problems(&mut self, problems: &[String]) {
        let joined = problems.join("; ");
        if joined != self.reported.0 {
            if !joined.is_empty() {
                tracing::warn!(secret = self.secret.name(), problems = %joined, "unusable parts of the certificate Secret");
            }
            self.reported.0 = joined;
        }
    }

    fn report_waiting(&mut self, waiting_for: Option<&'static str>) {
        if waiting_for != self.reported.1 {
            if let Some(waiting_for) = waiting_for {
                tracing::info!(waiting_for, "certificate rotation in progress");
            }
            self.reported.1 = waiting_for;
        }
    }
}

fn newest_generation(found: &[Found]) -> u64 {
    found.iter().map(Found::generation).max().unwrap_or(0)
}

/// RFC 3339 (UTC, seconds) for logs.
fn humantime(t: SystemTime) -> String {
    let seconds = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    x509_parser::time::ASN1Time::from_timestamp(seconds)
        .map_or_else(|_| seconds.to_string(), |t| t.to_string())
}

/// Wakes `wake` on every event of a watch on one object.
pub(super) fn watch_wakes<K>(api: kube::Api<K>, name: &str, wake: Arc<Notify>) -> JoinHandle<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    tokio::spawn(async move {
        let mut events = watcher::watcher(api, config).default_backoff().boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(_) => wake.notify_one(),
                Err(error) => tracing::debug!(%error, "certificate watch failed; retrying"),
            }
        }
    })
}
