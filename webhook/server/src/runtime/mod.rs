//! The assembled server: policies, sandbox, cluster context, metrics, TLS.

mod args;
mod context;
mod policies;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use tollgate_host::{PolicySet, Sandbox, SandboxLimits};

pub use args::ServeArgs;
pub use context::{ClusterSource, watch_plan};
use tollgate_preflight::source::PolicySource;

use crate::admission::{Admission, Cutoff};
use crate::http::client_auth::ClientAuth;
use crate::http::limits::ConnectionLimits;
use crate::http::ready::Readiness;
use crate::http::routes::{self, Limits};
use crate::http::{self, ServerOptions, Serving};
use crate::metrics::Metrics;
use tollgate_certs::{CertSource, TlsFiles};

/// Epoch tick of the sandbox: the granularity of CPU deadlines.
const TICK: std::time::Duration = std::time::Duration::from_millis(5);

/// Everything `serve` needs, built from the command line.
pub struct Runtime {
    options: ServerOptions,
    limits: Limits,
    max_queued_reviews: u32,
    tls: CertSource,
    client_auth: Option<Arc<ClientAuth>>,
    source: PolicySource,
    watched: Vec<PathBuf>,
    sandbox: Arc<Sandbox>,
    policies: Arc<ArcSwap<PolicySet>>,
    cluster: ClusterSource,
    metrics: Arc<Metrics>,
}

impl Runtime {
    /// Compiles the policies and prepares TLS; fails on a configuration that
    /// cannot serve.
    pub async fn build(args: ServeArgs) -> anyhow::Result<Self> {
        let files = args.cert.clone().zip(args.key.clone());
        let tls = CertSource::from_args(
            &args.certs,
            files.map(|(cert, key)| TlsFiles { cert, key }),
            args.kubeconfig.as_deref(),
            || state_dir(&args),
        )?;
        let client_auth = match &args.client_ca {
            Some(ca) => Some(ClientAuth::load(ca, &args.client_names)?),
            None => None,
        };
        if client_auth.is_some() && args.probe_listen.is_none() {
            tracing::warn!(
                "--client-ca without --probe-listen: /healthz, /readyz and /metrics also need a client certificate"
            );
        }
        let sandbox = Sandbox::new(SandboxLimits {
            memory_bytes: args.policy_memory_bytes,
            tick: TICK,
            cache_dir: cache_dir(&args),
            // The key that authenticates cached machine code, kept apart
            // from the cache (see tollgate_host's `cache_key`).
            cache_key_dir: args.cache_key_dir.clone().or_else(|| state_dir(&args).ok()),
            running: args.running_guests,
            ..SandboxLimits::default()
        })?;
        let source = match &args.policies {
            Some(path) => PolicySource::File(path.clone()),
            None => PolicySource::Builtin,
        };
        let loaded = policies::load_blocking(source.clone(), sandbox.clone())
            .await
            .context("cannot load the policies")?;
        let mut metrics = Metrics::new();
        metrics.register_sandbox(sandbox.stats());
        let cluster = ClusterSource::from_args(&args, &loaded.set, &mut metrics).await?;
        let metrics = Arc::new(metrics);
        metrics.loaded(loaded.set.policies().len());
        tracing::info!(policies = loaded.set.policies().len(), "policies compiled");
        Ok(Self {
            options: ServerOptions {
                listen: args.listen,
                probe_listen: args.probe_listen,
                connections: ConnectionLimits {
                    handshake_timeout: args.handshake_timeout,
                    header_read_timeout: args.header_read_timeout,
                    idle_timeout: args.idle_timeout,
                    max_connections: args.max_connections,
                },
                shutdown_grace: args.shutdown_grace,
                shutdown_delay: args.shutdown_delay,
            },
            limits: Limits {
                max_body_bytes: args.max_body_bytes,
                default_timeout: args.default_timeout,
                body_read_timeout: args.body_read_timeout,
            },
            max_queued_reviews: args.max_queued_reviews,
            tls,
            client_auth,
            source,
            watched: loaded.files,
            sandbox,
            policies: Arc::new(ArcSwap::from_pointee(loaded.set)),
            cluster,
            metrics,
        })
    }

    /// Serves until a shutdown signal, hot-reloading policies and certificate.
    pub async fn run(self) -> anyhow::Result<()> {
        let serving = self.tls.start(self.metrics.certificates()).await?;
        let _policy_reloader = match &self.source {
            PolicySource::File(path) => Some(
                policies::spawn_reloader(
                    path.clone(),
                    self.watched.clone(),
                    self.sandbox.clone(),
                    self.policies.clone(),
                    self.cluster.clone(),
                    self.metrics.clone(),
                )
                .context("cannot watch the policy files")?,
            ),
            PolicySource::Builtin => None,
        };
        let _client_ca_reloader = match &self.client_auth {
            Some(auth) => Some(AbortOnDrop(
                auth.clone()
                    .spawn_reloader()
                    .context("cannot watch the client CA file")?,
            )),
            None => None,
        };
        let cutoff = Cutoff::default();
        let admission = Arc::new(
            Admission::new(
                self.policies.clone(),
                self.cluster.context.clone(),
                self.metrics.clone(),
                self.sandbox.limits().instances,
            )
            .with_cutoff(cutoff.clone())
            .with_max_queued(self.max_queued_reviews),
        );
        let probes = routes::probes(admission.clone(), self.metrics.clone(), self.limits);
        let router = routes::router(admission, self.metrics.clone(), self.limits);
        let banner = Banner {
            dev: match &self.tls {
                CertSource::Development(dev) => Some((dev.ca.clone(), dev.files.clone())),
                _ => None,
            },
        };
        let readiness = serving
            .ready
            .iter()
            .cloned()
            .fold(Readiness::default(), Readiness::with);
        let cert = serving.cert.clone();
        let serving = Serving {
            router,
            probes,
            tls: cert,
            client_auth: self.client_auth.clone(),
            readiness,
            metrics: self.metrics.clone(),
            cutoff,
        };
        http::serve(serving, self.options, move |addr, probes| {
            banner.print(addr, probes)
        })
        .await
        .with_context(|| format!("cannot serve on {}", self.options.listen))?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn state_dir(args: &ServeArgs) -> anyhow::Result<PathBuf> {
    args.state_dir
        .clone()
        .or_else(|| dirs::state_dir().map(|d| d.join("tollgate")))
        .context("no state directory: set --state-dir, XDG_STATE_HOME or HOME")
}

fn cache_dir(args: &ServeArgs) -> Option<PathBuf> {
    args.cache_dir
        .clone()
        .or_else(|| dirs::cache_dir().map(|d| d.join("tollgate")))
}

/// What `serve` prints on stdout once listening.
struct Banner {
    /// The development CA and certificate, when serving them.
    dev: Option<(PathBuf, TlsFiles)>,
}

impl Banner {
    fn print(&self, addr: SocketAddr, probes: Option<SocketAddr>) {
        let mut out = std::io::stdout().lock();
        if let Some(probes) = probes {
            let _ = writeln!(out, "tollgate: probes on http://{probes}");
        }
        let _ = writeln!(out, "tollgate: listening on https://{addr}");
        if let Some((ca, files)) = &self.dev {
            let _ = write!(out, "{}", dev_cert_help(addr, ca, files));
        }
        let _ = out.flush();
    }
}

/// Where the development certificate is and a request to try.
fn dev_cert_help(addr: SocketAddr, ca: &Path, tls: &TlsFiles) -> String {
    // The certificate names localhost, 127.0.0.1 and ::1.
    let host = if addr.ip().is_loopback() {
        addr.to_string()
    } else {
        format!("localhost:{}", addr.port())
    };
    let review = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"try-1","kind":{"group":"","version":"v1","kind":"ConfigMap"},"operation":"CREATE","namespace":"default","name":"demo","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"demo"}}}}"#;
    format!(
        "tollgate: serving a development certificate (generated once, reused on later runs)\n  \
         CA certificate: {ca}\n  certificate:    {cert}\n  key:            {key}\n\
         try:\n  curl --cacert {ca} -H 'Content-Type: application/json' \
         'https://{host}/validate?timeout=10s' --data '{review}'\n",
        ca = ca.display(),
        cert = tls.cert.display(),
        key = tls.key.display(),
    )
}
