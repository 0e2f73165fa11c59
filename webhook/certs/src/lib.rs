//! Where the serving certificate comes from: files (`--cert/--key`, say a
//! mounted cert-manager Secret), the generated development certificate, or
//! a Secret Tollgate manages itself (`--self-managed-certs`).
//!
//! Self-managed, every replica runs the same loop ([`controller`]): it
//! creates a CA and a serving certificate for the Service's names in the
//! Secret, writes the CA bundle into the `caBundle` of Tollgate's own
//! webhook configurations, serves the Secret's pair (hot-swapped, following
//! a watch), and renews two thirds into each certificate's life. Replicas
//! agree through the Secret's resourceVersion; a CA rotation adds the new
//! CA to the bundle before anything is signed with it ([`plan`]).
//!
//! Lifetimes: the CA lasts ten years and the serving certificate one. A CA
//! rotation is the step that needs the webhook configurations' help, so it
//! is made rare; the serving certificate, which can be renewed at any time
//! without touching them, is kept short. Anyone who can read the Secret can
//! sign certificates the webhooks trust, so the Role that grants it is
//! Tollgate's alone.

#![forbid(unsafe_code)]

mod cert_metrics;
mod controller;
pub mod dev;
mod files;
mod gate;
pub mod inspect;
pub mod issue;
pub mod material;
pub mod plan;
mod secret;
pub mod serving;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use self::cert_metrics::CertMetrics;
use self::controller::{Controller, watch_wakes};
use self::dev::DevCert;
pub use self::files::TlsFiles;
pub use self::gate::Gate;
use self::issue::{Authority, Lifetime};
use self::plan::Policy;
use self::secret::SecretStore;
pub use self::serving::{ServingCert, certified_key};
use self::webhooks::WebhookConfigurations;

const DAY: Duration = Duration::from_secs(24 * 3600);
const CA_VALIDITY: Duration = Duration::from_secs(3650 * 24 * 3600);
const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where the service-account namespace is mounted in a pod.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The self-managed certificate flags of `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct CertArgs {
    /// Create and renew the CA and serving certificate in a Secret, write
    /// the CA into the `caBundle` of Tollgate's webhook configurations, and
    /// serve from the Secret. Needs the cluster (in a pod, or --kubeconfig).
    #[arg(long, conflicts_with_all = ["cert", "key"])]
    pub self_managed_certs: bool,

    /// Namespace of the Secret and the Service (default: $POD_NAMESPACE, else
    /// the pod's service-account namespace, else `tollgate`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: Option<String>,

    /// The Secret holding the CA and the serving certificate.
    #[arg(long, default_value = "tollgate-tls", requires = "self_managed_certs")]
    pub tls_secret: String,

    /// The Service the API server calls: the certificate names NAME,
    /// NAME.NS, NAME.NS.svc and NAME.NS.svc.cluster.local.
    #[arg(long, default_value = "tollgate", requires = "self_managed_certs")]
    pub service: String,

    /// The Validating and Mutating webhook configurations (this name)
    /// whose webhooks get the CA bundle.
    #[arg(long, default_value = "tollgate", requires = "self_managed_certs")]
    pub webhook_configuration: String,

    /// Another DNS name or IP address for the certificate (repeatable; e.g.
    /// 127.0.0.1 for webhooks registered by URL).
    #[arg(
        long = "extra-san",
        value_name = "NAME_OR_IP",
        requires = "self_managed_certs"
    )]
    pub extra_sans: Vec<String>,

    /// During a CA rotation: how long the webhook configurations must have
    /// carried the new CA before the certificate switches to it, and how
    /// long the switched certificate must have been in the Secret before
    /// the old CA leaves the bundle (covers the API servers' and replicas'
    /// watch delays).
    #[arg(long, default_value = "1m", value_parser = tollgate_host::duration::parse, requires = "self_managed_certs")]
    pub cert_rotation_wait: Duration,
}

impl CertArgs {
    fn namespace(&self) -> String {
        self.namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .or_else(|| {
                let ns = std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE).ok()?;
                Some(ns.trim().to_owned()).filter(|ns| !ns.is_empty())
            })
            .unwrap_or_else(|| "tollgate".to_owned())
    }

    /// The names the certificate must carry.
    fn names(&self, namespace: &str) -> anyhow::Result<Vec<String>> {
        let service = &self.service;
        let mut names = vec![
            format!("{service}.{namespace}.svc"),
            service.clone(),
            format!("{service}.{namespace}"),
            format!("{service}.{namespace}.svc.cluster.local"),
        ];
        for name in &self.extra_sans {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        for name in &names {
            anyhow::ensure!(
                is_dns_name(name) || name.parse::<std::net::IpAddr>().is_ok(),
                "{name:?} is neither a DNS name nor an IP address (check --service, --namespace and --extra-san)"
            );
        }
        Ok(names)
    }
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Where the serving certificate comes from.
pub enum CertSource {
    Files(TlsFiles),
    Development(DevCert),
    SelfManaged {
        args: CertArgs,
        kubeconfig: Option<PathBuf>,
    },
}

/// A serving certificate in place, and whatever keeps it current.
pub struct Serving {
    pub cert: ServingCert,
    /// Closed until the certificate is the one to serve (self-managed: the
    /// Secret's pair, its CA in the webhook configurations).
    pub ready: Option<Gate>,
    _tasks: Tasks,
}

/// Aborts the tasks when dropped.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        self.0.iter().for_each(JoinHandle::abort);
    }
}

impl CertSource {
    /// `--self-managed-certs`, else `--cert/--key`, else the development
    /// certificate under `state_dir`.
    pub fn from_args(
        certs: &CertArgs,
        files: Option<TlsFiles>,
        kubeconfig: Option<&Path>,
        state_dir: impl FnOnce() -> anyhow::Result<PathBuf>,
    ) -> anyhow::Result<Self> {
        if certs.self_managed_certs {
            anyhow::ensure!(
                kubeconfig.is_some() || tollgate_context::watch::in_cluster(),
                "--self-managed-certs needs the cluster: run in a pod or pass --kubeconfig"
            );
            certs.names(&certs.namespace())?;
            return Ok(Self::SelfManaged {
                args: certs.clone(),
                kubeconfig: kubeconfig.map(Path::to_path_buf),
            });
        }
        if let Some(files) = files {
            return Ok(Self::Files(files));
        }
        Ok(Self::Development(DevCert::ensure(&state_dir()?)?))
    }

    /// Loads the certificate and starts whatever keeps it current.
    pub async fn start(&self, metrics: &CertMetrics) -> anyhow::Result<Serving> {
        match self {
            Self::Files(files) => files_serving(files, metrics).await,
            Self::Development(dev) => files_serving(&dev.files, metrics).await,
            Self::SelfManaged { args, kubeconfig } => {
                self_managed(args, kubeconfig.as_deref(), metrics).await
            }
        }
    }
}

async fn files_serving(files: &TlsFiles, metrics: &CertMetrics) -> anyhow::Result<Serving> {
    let cert = ServingCert::new(files.load().await?);
    record_expiry(&cert, metrics);
    let reloader = files
        .clone()
        .spawn_reloader(cert.clone(), metrics.clone())
        .context("cannot watch the certificate files")?;
    Ok(Serving {
        cert,
        ready: None,
        _tasks: Tasks(vec![reloader]),
    })
}

async fn self_managed(
    args: &CertArgs,
    kubeconfig: Option<&Path>,
    metrics: &CertMetrics,
) -> anyhow::Result<Serving> {
    let namespace = args.namespace();
    let names = args.names(&namespace)?;
    let client = tollgate_context::watch::connect(kubeconfig)
        .await
        .context("--self-managed-certs: cannot connect to the cluster")?;
    // Until the Secret is read the server presents a throwaway certificate
    // (so /healthz answers) and /readyz says why it is not ready.
    let cert = ServingCert::new(placeholder()?);
    let gate = Gate::closed(
        "the serving certificate from the Secret and its CA in the webhook configurations",
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret = SecretStore::new(secrets.clone(), &args.tls_secret);
    let webhooks = WebhookConfigurations::new(client, &args.webhook_configuration);
    let wake = Arc::new(Notify::new());
    let mut tasks = vec![watch_wakes(secrets, &args.tls_secret, wake.clone())];
    for (_, api) in webhooks.apis() {
        tasks.push(watch_wakes(api, webhooks.name(), wake.clone()));
    }
    tracing::info!(
        secret = %format!("{namespace}/{}", args.tls_secret),
        webhook_configuration = %args.webhook_configuration,
        ?names,
        "self-managed certificates"
    );
    let controller = Controller::new(
        secret,
        namespace,
        webhooks,
        Policy {
            names,
            ca_validity: CA_VALIDITY,
            leaf_validity: LEAF_VALIDITY,
            wait: args.cert_rotation_wait,
        },
        cert.clone(),
        gate.clone(),
        metrics.clone(),
    );
    tasks.push(tokio::spawn(controller.run(wake)));
    Ok(Serving {
        cert,
        ready: Some(gate),
        _tasks: Tasks(tasks),
    })
}

/// Records the served certificate's expiry in `metrics`.
fn record_expiry(serving: &ServingCert, metrics: &CertMetrics) {
    if let Ok(cert) = inspect::Cert::from_der(&serving.leaf()) {
        metrics.serving(cert.not_after);
    }
}

/// A self-signed certificate for localhost that nobody trusts.
fn placeholder() -> anyhow::Result<rustls::sign::CertifiedKey> {
    let ca = Authority::generate(
        "tollgate placeholder",
        Lifetime::starting(std::time::SystemTime::now(), DAY),
    )?;
    let leaf = ca.issue(
        &["localhost".into()],
        Lifetime::starting(std::time::SystemTime::now(), DAY),
    )?;
    Ok(certified_key(
        leaf.cert_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        certs: CertArgs,
        #[arg(long)]
        cert: Option<String>,
        #[arg(long)]
        key: Option<String>,
    }

    fn parse(args: &[&str]) -> Result<CertArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("tollgate").chain(args.iter().copied()))
            .map(|c| c.certs)
    }

    #[test]
    fn the_certificate_names_the_service_in_every_form() {
        let args = parse(&[
            "--self-managed-certs",
            "--namespace",
            "gate",
            "--extra-san",
            "127.0.0.1",
        ])
        .unwrap();
        assert_eq!(
            args.names(&args.namespace()).unwrap(),
            [
                "tollgate.gate.svc",
                "tollgate",
                "tollgate.gate",
                "tollgate.gate.svc.cluster.local",
                "127.0.0.1"
            ]
        );
        assert_eq!(args.tls_secret, "tollgate-tls");
        assert_eq!(args.webhook_configuration, "tollgate");
        assert_eq!(args.cert_rotation_wait, Duration::from_secs(60));
    }

    #[test]
    fn bad_flags_are_refused_with_the_reason() {
        let args = parse(&["--self-managed-certs", "--extra-san", "not a name"]).unwrap();
        let error = args.names("tollgate").unwrap_err().to_string();
        assert!(error.contains("\"not a name\""), "{error}");
        assert!(parse(&["--self-managed-certs", "--cert", "c"]).is_err());
        assert!(
            parse(&["--tls-secret", "x"]).is_err(),
            "needs --self-managed-certs"
        );
        let files = CertSource::from_args(
            &parse(&["--self-managed-certs"]).unwrap(),
            None,
            None,
            || unreachable!(),
        );
        if !tollgate_context::watch::in_cluster() {
            let error = files.err().unwrap().to_string();
            assert!(error.contains("needs the cluster"), "{error}");
        }
    }

    #[test]
    fn dns_names() {
        for good in ["tollgate", "tollgate.ns.svc", "a-b.c1"] {
            assert!(is_dns_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a..b", "a b", "a_b", &"x".repeat(64)] {
            assert!(!is_dns_name(bad), "{bad}");
        }
    }
}
