//! The command line: `tollgate-bench [OPTIONS]` runs the scenarios;
//! `tollgate-bench floor` serves the floor alone (to point `wrk` at it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tollgate-bench",
    about = "Measure Tollgate (and any other webhook) against the floor webhook on identical work, in the same run",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve only the floor webhook (POST /validate and /mutate over TLS).
    Floor(FloorArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct FloorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub listen: SocketAddr,
    /// PEM certificate chain.
    #[arg(long)]
    pub cert: PathBuf,
    /// PEM private key of --cert.
    #[arg(long)]
    pub key: PathBuf,
    /// Read only `request.uid`, skipping every other member unparsed: the
    /// least any webhook must do (TLS, HTTP/1.1, the body, the uid echoed).
    /// Measured against the floor with `--against`, it bounds what any
    /// webhook that reads the object can reach.
    #[arg(long)]
    pub uid_only: bool,
}

/// One scenario of issue 8 item 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum ScenarioId {
    /// An unrelated production-size Deployment UPDATE through the default pack.
    A,
    /// The captured calico-node DaemonSet UPDATE through the default pack.
    B,
    /// A calico-node UPDATE crossing the v1 NetworkPolicy semantics boundary,
    /// against 3,000 Namespaces and 10,000 NetworkPolicies.
    C,
    /// Start to ready, with a cold and a warm compilation cache.
    D,
    /// Pod CREATEs (privileged and not) through the pod-privileged example policy.
    E,
}

/// An admission route of Tollgate (and of the floor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Route {
    Validate,
    Mutate,
}

impl Route {
    pub fn path(self) -> &'static str {
        match self {
            Self::Validate => "/validate",
            Self::Mutate => "/mutate",
        }
    }
}

impl RunArgs {
    /// The scenarios chosen, in order, each once.
    pub fn scenarios(&self) -> Vec<ScenarioId> {
        let mut chosen = match &self.scenario {
            Some(list) => list.clone(),
            None if self.review.is_empty() => ScenarioId::value_variants().to_vec(),
            None => Vec::new(),
        };
        chosen.sort();
        chosen.dedup();
        chosen
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Scenarios to run, comma-separated. Default: all of them, or none
    /// when --review is given.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenario: Option<Vec<ScenarioId>>,

    /// Also measure this AdmissionReview (repeatable), e.g. one of
    /// testdata/reviews; a top-level `query` member becomes the query string.
    #[arg(long, value_name = "FILE")]
    pub review: Vec<PathBuf>,

    /// Tollgate's policy configuration for --review (default: the built-in pack).
    #[arg(long, value_name = "FILE", requires = "review")]
    pub policies: Option<PathBuf>,

    /// The route --review bodies are posted to.
    #[arg(long, value_enum, default_value_t = Route::Validate)]
    pub endpoint: Route,

    /// Keep-alive connections of the throughput runs (reviews/s).
    #[arg(long, default_value_t = 16, value_parser = at_least_one())]
    pub connections: usize,

    /// Keep-alive connections of the latency runs (p50/p90/p99/max).
    #[arg(long, default_value_t = 4, value_parser = at_least_one())]
    pub latency_connections: usize,

    /// Measure throughput and latency at each of these connection counts
    /// (both runs at the count), e.g. 1,16,256,1000, and print the
    /// connection-scaling table with ratios to the floor of the same round.
    #[arg(long, value_delimiter = ',', value_parser = at_least_one())]
    pub connection_sweep: Vec<usize>,

    /// Length of one run.
    #[arg(long, default_value = "2", value_parser = seconds)]
    pub seconds: Duration,

    /// Rounds per scenario; each round runs every server once, in alternating order.
    #[arg(long, default_value_t = 3, value_parser = at_least_one())]
    pub rounds: usize,

    /// Load on each server before its first measured round (connections, caches).
    #[arg(long, default_value = "0.5", value_parser = seconds)]
    pub warmup_seconds: Duration,

    /// The tollgate binary. Default: this repository's, built first with
    /// `cargo build --release -p tollgate -p tollgate-bench` (a no-op when
    /// up to date), so a stale binary is never measured.
    #[arg(long)]
    pub tollgate: Option<PathBuf>,

    /// Policy file of scenario (e). Default:
    /// policies-wasm/examples/pod-privileged/policies.yaml of this repository.
    #[arg(long)]
    pub pod_privileged_policies: Option<PathBuf>,

    /// Also measure another webhook endpoint with the same bodies, e.g.
    /// https://127.0.0.1:3000/validate/pod-privileged. Its query string is
    /// the review's (`timeout=10s`) unless the URL has one.
    #[arg(long)]
    pub against: Option<hyper::Uri>,

    /// CA certificate (PEM) that signed the --against server's certificate.
    #[arg(long, requires = "against")]
    pub against_ca: Option<PathBuf>,

    /// Process id of the --against server, to report its resident memory and CPU.
    #[arg(long, requires = "against")]
    pub against_pid: Option<u32>,
}

fn at_least_one() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(1..)
}

fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(value > 0.0 && value <= 3600.0) {
        return Err(format!(
            "{text} s is out of range (more than 0, at most 3600)"
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_issue_s() {
        let cli = Cli::try_parse_from(["tollgate-bench"]).unwrap();
        assert!(cli.command.is_none());
        let run = cli.run;
        assert_eq!(run.connections, 16);
        assert_eq!(run.latency_connections, 4);
        assert_eq!(
            run.scenarios(),
            [
                ScenarioId::A,
                ScenarioId::B,
                ScenarioId::C,
                ScenarioId::D,
                ScenarioId::E
            ]
        );
        assert_eq!(run.endpoint, Route::Validate);
    }

    #[test]
    fn scenarios_and_durations_are_checked() {
        let cli = Cli::try_parse_from(["tollgate-bench", "--scenario", "e,a", "--seconds", "0.5"])
            .unwrap();
        assert_eq!(cli.run.scenarios(), [ScenarioId::A, ScenarioId::E]);
        assert_eq!(cli.run.seconds, Duration::from_millis(500));
        for bad in [
            ["--scenario", "f"],
            ["--seconds", "0"],
            ["--seconds", "soon"],
            ["--connections", "0"],
            ["--rounds", "-1"],
            ["--against-ca", "ca.pem"],
            ["--policies", "p.yaml"],
            ["--endpoint", "admit"],
        ] {
            assert!(
                Cli::try_parse_from(["tollgate-bench", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn reviews_replace_the_default_scenarios() {
        let cli = Cli::try_parse_from([
            "tollgate-bench",
            "--review",
            "a.json",
            "--review",
            "b.json",
            "--policies",
            "p.yaml",
            "--endpoint",
            "mutate",
        ])
        .unwrap();
        assert!(cli.run.scenarios().is_empty());
        assert_eq!(cli.run.review.len(), 2);
        assert_eq!(cli.run.endpoint.path(), "/mutate");
        let both =
            Cli::try_parse_from(["tollgate-bench", "--review", "a.json", "--scenario", "b,b"])
                .unwrap();
        assert_eq!(both.run.scenarios(), [ScenarioId::B]);
    }

    #[test]
    fn against_takes_a_url() {
        let cli = Cli::try_parse_from([
            "tollgate-bench",
            "--against",
            "https://127.0.0.1:3000/validate/pod-privileged",
            "--against-ca",
            "ca.pem",
        ])
        .unwrap();
        let uri = cli.run.against.unwrap();
        assert_eq!(uri.port_u16(), Some(3000));
        assert_eq!(uri.path(), "/validate/pod-privileged");
    }

    #[test]
    fn floor_is_a_subcommand() {
        let cli = Cli::try_parse_from([
            "tollgate-bench",
            "floor",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
        ])
        .unwrap();
        let Some(Command::Floor(floor)) = cli.command else {
            panic!("expected floor")
        };
        assert_eq!(floor.listen.port(), 9443);
    }
}
