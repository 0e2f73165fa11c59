//! `tollgate manifests`: the whole install, generated from the policy
//! configuration, so that what the cluster runs and what the API server
//! sends to it never drift from what the policies match.
//!
//! On stdout: every object of one certificate mode as a YAML stream, for
//! `kubectl apply -f -`. With `--output-dir`: a kustomize base (the
//! self-managed mode) and the overlay `overlays/cert-manager`; `deploy/` in
//! the repository is that output for the built-in pack (a test keeps it so).

mod client_ca;
mod kustomize;
pub(crate) mod objects;
mod webhooks;

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::Value;
use tollgate_context::AllowList;
use tollgate_host::{Config, PolicyConfig};

pub use objects::Install;
use tollgate_guests::DEFAULT_POLICIES;
use webhooks::Endpoint;

/// How the serving certificate is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CertMode {
    /// Tollgate creates and renews its CA and certificate in the Secret
    /// `tollgate-tls` and writes the CA into its webhook configurations.
    #[default]
    SelfManaged,
    /// cert-manager issues the Secret and injects the CA.
    CertManager,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ManifestsArgs {
    /// Policy configuration (default: the built-in pack's). It becomes the
    /// ConfigMap, the ClusterRole and the webhook rules and conditions.
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Namespace Tollgate runs in (never guarded by its own webhooks).
    #[arg(long, default_value = "tollgate")]
    pub namespace: String,
    /// Container image (`deploy/image/build` makes `localhost/tollgate:VERSION`).
    #[arg(long, default_value = concat!("localhost/tollgate:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// Replicas (≥ 2 keeps admission up while one is replaced or its node drained).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub replicas: u32,
    /// Certificate mode of the stdout stream (`--output-dir` writes both).
    #[arg(long, value_enum, default_value_t)]
    pub cert_mode: CertMode,
    /// Register the webhooks by URL (`https://127.0.0.1:9443`) instead of the
    /// Service: for tests and out-of-cluster runs.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// PEM CA certificate written into the webhooks' `caBundle` (with
    /// `--webhook-url`; in the cluster the certificate mode provides it).
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    /// Write the kustomize base and overlays here instead of printing.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Require the API server's client certificate: its CA is read from
    /// this ConfigMap (key `ca.crt`, in --namespace; create it yourself),
    /// and the probes move to a plain-HTTP port (9444). The API server must
    /// be configured to present the certificate (deploy/README.md).
    #[arg(long, value_name = "NAME")]
    pub client_ca_configmap: Option<String>,
    /// With --client-ca-configmap: a name (CN or DNS SAN) the API server's
    /// certificate must carry (repeatable; default any from the CA).
    #[arg(
        long = "client-name",
        value_name = "NAME",
        requires = "client_ca_configmap"
    )]
    pub client_names: Vec<String>,
}

impl ManifestsArgs {
    /// The defaults: what `deploy/` holds.
    pub fn defaults() -> Self {
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            args: ManifestsArgs,
        }
        <Command as clap::Parser>::parse_from(["manifests"]).args
    }
}

/// Runs the command: prints the stream or writes the directory.
pub fn run(args: &ManifestsArgs) -> anyhow::Result<()> {
    let (config, install) = load(args)?;
    match &args.output_dir {
        None => print!("{}", stream(&install, &config)),
        Some(dir) => {
            for (path, text) in kustomize::files(&install, &config) {
                let path = dir.join(path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("cannot create {}", parent.display()))?;
                }
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// The configuration and the install options of `args`.
pub fn load(args: &ManifestsArgs) -> anyhow::Result<(Config, Install)> {
    let (text, origin) = match &args.policies {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            DEFAULT_POLICIES.to_owned(),
            "built-in default configuration".into(),
        ),
    };
    let config = Config::from_yaml(&text, &origin)?;
    // The matches become webhook rules and CEL: they must compile first.
    for policy in &config.policies {
        tollgate_host::Matcher::compile(&policy.matches)
            .map_err(|e| anyhow::anyhow!("{origin}: policy {}: {e}", policy.id))?;
    }
    if let Some(policy) = config
        .policies
        .iter()
        .find(|p| !p.module.starts_with(tollgate_host::policy::BUILTIN_PREFIX))
    {
        // The ConfigMap carries the configuration only.
        anyhow::bail!(
            "policy {}: module {} is a file; the generated install carries only built-in modules \
             (mount your modules into the Deployment and edit its --policies yourself)",
            policy.id,
            policy.module
        );
    }
    let ca_bundle = args
        .ca_bundle
        .as_ref()
        .map(|path| {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        })
        .transpose()?;
    if let Some(url) = &args.webhook_url
        && !url.starts_with("https://")
    {
        anyhow::bail!("--webhook-url {url}: the API server calls webhooks over https:// only");
    }
    let lists: Vec<AllowList> = config
        .policies
        .iter()
        .map(|p| AllowList::new(p.id.clone(), p.context.clone()))
        .collect();
    let install = Install {
        name: "tollgate".to_owned(),
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        replicas: args.replicas,
        cert_mode: args.cert_mode,
        webhook_url: args.webhook_url.clone(),
        ca_bundle,
        policies_yaml: text,
        read_plan: tollgate_context::watch_plan(&lists),
        client_ca: args
            .client_ca_configmap
            .clone()
            .map(|config_map| client_ca::ClientCa {
                config_map,
                names: args.client_names.clone(),
            }),
    };
    Ok((config, install))
}

/// The webhook configurations of `config`.
fn configurations(install: &Install, config: &Config) -> Vec<Value> {
    let all: Vec<&PolicyConfig> = config.policies.iter().collect();
    let mutating: Vec<&PolicyConfig> = all.iter().copied().filter(|p| p.mutate).collect();
    [(Endpoint::Validate, all), (Endpoint::Mutate, mutating)]
        .into_iter()
        .map(|(endpoint, policies)| {
            let webhooks = webhooks::group_policies(&policies, endpoint);
            webhooks::configuration(install, endpoint, &webhooks)
        })
        .collect()
}

/// Every object of the install in its certificate mode, in apply order.
pub fn objects(install: &Install, config: &Config) -> Vec<Value> {
    let mut out = vec![install.namespace(), install.service_account()];
    out.extend(install.context_rbac());
    if install.cert_mode == CertMode::SelfManaged {
        out.extend(install.certificate_rbac());
    } else {
        out.extend(install.cert_manager());
    }
    out.extend([
        install.config_map(),
        install.deployment(),
        install.disruption_budget(),
        install.service(),
    ]);
    out.extend(configurations(install, config));
    out
}

/// `objects` as one YAML stream.
pub fn stream(install: &Install, config: &Config) -> String {
    yaml_documents(&objects(install, config))
}

/// YAML documents separated by `---`.
pub fn yaml_documents(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| serde_yaml_ng::to_string(o).expect("JSON values serialise as YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod client_ca_tests;
#[cfg(test)]
mod tests;
