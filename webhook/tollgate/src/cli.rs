//! The command line. `tollgate` with no subcommand serves. Each
//! subcommand's flags live with the subcommand (the server's and tools'
//! crates); `main` dispatches.

use std::time::Duration;

use clap::{Parser, Subcommand};
use tollgate_server::ServeArgs;
use tollgate_tools::{audit, cases, check, manifests, rbac, scaffold};

use crate::logging::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "tollgate",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// Log line format (stderr; filter with RUST_LOG).
    #[arg(long, value_enum, default_value_t, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// `serve`'s flags, accepted without the subcommand.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admission endpoints (the default).
    Serve(Box<ServeArgs>),
    /// Print the ClusterRole the policies' `context:` allow-lists need.
    Rbac(rbac::RbacArgs),
    /// Generate the whole install (Deployment, RBAC, webhooks narrowed to
    /// what the policies match) from the policy configuration.
    Manifests(manifests::ManifestsArgs),
    /// Sleep, then exit: the preStop hook of an image without a shell.
    Sleep {
        #[arg(value_parser = tollgate_host::duration::parse)]
        duration: Duration,
    },
    /// Run policy test cases (`*.test.yaml`).
    Test(cases::TestArgs),
    /// Write a new policy crate that uses the SDK.
    New(scaffold::NewArgs),
    /// Judge manifests as `kubectl apply` would submit them, before it runs.
    Check(check::CheckArgs),
    /// Judge the cluster's existing objects as if each were re-applied.
    Audit(audit::AuditArgs),
}

impl Args {
    /// The log filter without `RUST_LOG`: the offline reports keep stderr
    /// for what goes wrong.
    pub fn log_default(&self) -> &'static str {
        match self.command {
            Some(Command::Check(_) | Command::Audit(_)) => "warn",
            _ => "info",
        }
    }

    /// The `serve` flags when the command is to serve (the default), or the
    /// command to run instead.
    pub fn into_command(self) -> Command {
        match self.command {
            Some(command) => command,
            None => Command::Serve(Box::new(self.serve)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn serve_is_the_default_subcommand() {
        let bare = Args::try_parse_from(["tollgate", "--listen", "0.0.0.0:9443"]).unwrap();
        assert!(bare.command.is_none());
        assert_eq!(bare.serve.listen.port(), 9443);
        let explicit = Args::try_parse_from(["tollgate", "serve", "--policies", "p.yaml"]).unwrap();
        let Some(Command::Serve(serve)) = explicit.command else {
            panic!("expected serve")
        };
        assert_eq!(serve.policies, Some(PathBuf::from("p.yaml")));
        assert_eq!(serve.max_body_bytes, 16 << 20);
    }

    #[test]
    fn manifests_and_sleep_subcommands() {
        let args = Args::try_parse_from(["tollgate", "manifests", "--cert-mode", "cert-manager"]);
        let Some(Command::Manifests(m)) = args.unwrap().command else {
            panic!("expected manifests")
        };
        assert_eq!(m.cert_mode, manifests::CertMode::CertManager);
        assert_eq!(m.replicas, 2);
        assert!(Args::try_parse_from(["tollgate", "manifests", "--replicas", "0"]).is_err());
        let args = Args::try_parse_from(["tollgate", "sleep", "5s"]).unwrap();
        assert!(matches!(
            args.command,
            Some(Command::Sleep { duration }) if duration == Duration::from_secs(5)
        ));
        assert!(Args::try_parse_from(["tollgate", "sleep", "soon"]).is_err());
    }

    #[test]
    fn cert_and_key_go_together() {
        assert!(Args::try_parse_from(["tollgate", "--cert", "c.pem"]).is_err());
        assert!(Args::try_parse_from(["tollgate", "--cert", "c", "--key", "k"]).is_ok());
        assert!(Args::try_parse_from(["tollgate", "--shutdown-grace", "soon"]).is_err());
    }

    #[test]
    fn client_names_need_a_client_ca() {
        assert!(Args::try_parse_from(["tollgate", "--client-name", "kube-apiserver"]).is_err());
        let args = Args::try_parse_from([
            "tollgate",
            "--client-ca",
            "ca.pem",
            "--client-name",
            "a",
            "--client-name",
            "b",
            "--probe-listen",
            "0.0.0.0:8080",
        ])
        .unwrap();
        assert_eq!(args.serve.client_names, ["a", "b"]);
        assert_eq!(args.serve.probe_listen.unwrap().port(), 8080);
    }

    #[test]
    fn check_takes_files_one_cluster_source_and_a_format() {
        let args = Args::try_parse_from([
            "tollgate",
            "check",
            "-f",
            "a.yaml",
            "-f",
            "-",
            "--cluster-snapshot",
            "snap",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(args.log_default(), "warn");
        let Some(Command::Check(check)) = args.command else {
            panic!("expected check")
        };
        assert_eq!(check.files, [PathBuf::from("a.yaml"), PathBuf::from("-")]);
        assert_eq!(check.cluster.cluster_snapshot, Some(PathBuf::from("snap")));
        assert_eq!(check.output, check::Format::Json);
        assert!(
            Args::try_parse_from(["tollgate", "check"]).is_err(),
            "-f is required"
        );
        let both = [
            "tollgate",
            "check",
            "-f",
            "a",
            "--cluster-snapshot",
            "s",
            "--kubeconfig",
            "k",
        ];
        assert!(Args::try_parse_from(both).is_err());
        assert!(Args::try_parse_from(["tollgate", "check", "-f", "a", "-o", "yaml"]).is_err());
    }

    #[test]
    fn audit_formats_and_its_report_bound() {
        let args = Args::try_parse_from([
            "tollgate",
            "audit",
            "--kubeconfig",
            "k",
            "-o",
            "policyreport",
        ])
        .unwrap();
        let Some(Command::Audit(audit)) = args.command else {
            panic!("expected audit")
        };
        assert_eq!(audit.output, audit::Format::Policyreport);
        assert_eq!(audit.max_results, 200);
        assert!(Args::try_parse_from(["tollgate", "audit", "--max-results", "0"]).is_err());
        let serve = Args::try_parse_from(["tollgate"]).unwrap();
        assert_eq!(serve.log_default(), "info");
    }

    #[test]
    fn client_names_need_the_config_map() {
        let parse =
            |args: &[&str]| Args::try_parse_from(["tollgate", "manifests"].iter().chain(args));
        assert!(parse(&["--client-name", "kube-apiserver"]).is_err());
        assert!(parse(&["--client-ca-configmap", "ca", "--client-name", "a"]).is_ok());
    }
}
