//! The assembled server: policies, sandbox, cluster context, metrics, TLS.

mod context;
mod policies;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use tollgate_host::{PolicySet, Sandbox, SandboxLimits};

pub use context::{ClusterSource, resource_types};
pub use policies::PolicySource;

use crate::admission::Admission;
use crate::cli::ServeArgs;
use crate::metrics::Metrics;
use crate::server::devcert::DevCert;
use crate::server::routes::{self, Limits};
use crate::server::tls::TlsFiles;
use crate::server::{self, ServerOptions};

/// Epoch tick of the sandbox: the granularity of CPU deadlines.
const TICK: std::time::Duration = std::time::Duration::from_millis(5);

/// Everything `serve` needs, built from the command line.
pub struct Runtime {
    options: ServerOptions,
    limits: Limits,
    tls: TlsFiles,
    /// Set when serving the generated development certificate.
    dev_ca: Option<PathBuf>,
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
        let (tls, dev_ca) = match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => (
                TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                },
                None,
            ),
            _ => {
                let dir = state_dir(&args)?;
                let dev = DevCert::ensure(&dir)?;
                (dev.files, Some(dev.ca))
            }
        };
        let sandbox = Sandbox::new(SandboxLimits {
            memory_bytes: args.policy_memory_bytes,
            tick: TICK,
            cache_dir: cache_dir(&args),
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
                header_read_timeout: args.header_read_timeout,
                shutdown_grace: args.shutdown_grace,
            },
            limits: Limits {
                max_body_bytes: args.max_body_bytes,
                default_timeout: args.default_timeout,
            },
            tls,
            dev_ca,
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
        let tls = self.tls.load().await?;
        let _cert_reloader = self
            .tls
            .clone()
            .spawn_reloader(tls.clone(), self.metrics.clone())
            .context("cannot watch the certificate files")?;
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
        let admission = Arc::new(Admission::new(
            self.policies.clone(),
            self.cluster.context.clone(),
            self.metrics.clone(),
            self.sandbox.limits().instances,
        ));
        let router = routes::router(admission, self.metrics.clone(), self.limits);
        let banner = Banner {
            dev_ca: self.dev_ca.clone(),
            tls: self.tls.clone(),
        };
        server::serve(router, tls, self.options, move |addr| banner.print(addr))
            .await
            .with_context(|| format!("cannot serve on {}", self.options.listen))?;
        tracing::info!("stopped");
        Ok(())
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
    dev_ca: Option<PathBuf>,
    tls: TlsFiles,
}

impl Banner {
    fn print(&self, addr: SocketAddr) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "tollgate: listening on https://{addr}");
        if let Some(ca) = &self.dev_ca {
            let _ = write!(out, "{}", dev_cert_help(addr, ca, &self.tls));
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
