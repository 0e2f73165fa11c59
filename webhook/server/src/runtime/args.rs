//! `serve`'s flags (also accepted by `tollgate` with no subcommand).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How `serve` listens, which certificate and policies it serves, and its
/// limits.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (HTTPS: /validate, /mutate, /healthz, /readyz, /metrics).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,

    /// Also serve /healthz, /readyz and /metrics on this address, in plain
    /// HTTP and without a client certificate: for kubelet probes and
    /// Prometheus when --client-ca guards --listen.
    #[arg(long, value_name = "ADDR")]
    pub probe_listen: Option<SocketAddr>,

    /// PEM CA certificate(s): every connection to --listen must present a
    /// client certificate they signed (the API server's, see deploy/README.md);
    /// re-read when it changes. Handshakes without one are refused and counted.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,

    /// With --client-ca, accept only client certificates naming NAME as
    /// their CN or a DNS SAN (repeatable; default: any from the CA).
    #[arg(long = "client-name", value_name = "NAME", requires = "client_ca")]
    pub client_names: Vec<String>,

    /// PEM certificate chain; re-read when it changes. Without --cert/--key a
    /// development CA and certificate for localhost are generated under the
    /// state directory.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,

    /// PEM private key of --cert; re-read when it changes.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,

    #[command(flatten)]
    pub certs: tollgate_certs::CertArgs,

    /// Policy configuration (YAML); reloaded when it or a module it names
    /// changes. Default: the built-in Calico pack with its default configuration.
    #[arg(long)]
    pub policies: Option<PathBuf>,

    /// Largest AdmissionReview accepted; larger bodies get 413.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_body_bytes: usize,

    /// Review budget when the request has no ?timeout= (the API server always sends one).
    #[arg(long, default_value = "10s", value_parser = tollgate_host::duration::parse)]
    pub default_timeout: Duration,

    /// Close connections whose request headers take longer than this (slow
    /// clients), counted from the first byte, or from the handshake for a
    /// connection's first request.
    #[arg(long, default_value = "10s", value_parser = tollgate_host::duration::parse)]
    pub header_read_timeout: Duration,

    /// Answer 408 when a request body takes longer than this to arrive (or
    /// the review's own deadline, if sooner).
    #[arg(long, default_value = "10s", value_parser = tollgate_host::duration::parse)]
    pub body_read_timeout: Duration,

    /// Close connections whose TLS handshake takes longer than this.
    #[arg(long, default_value = "10s", value_parser = tollgate_host::duration::parse)]
    pub handshake_timeout: Duration,

    /// Close kept-alive connections idle (no request in flight) this long.
    #[arg(long, default_value = "60s", value_parser = tollgate_host::duration::parse)]
    pub idle_timeout: Duration,

    /// Open connections at most; at the cap the connection idle the longest
    /// is closed for a new one, and a new one is refused when none is idle.
    /// (The open-files limit is raised to fit at start.)
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Reviews waiting for an evaluation slot at most; beyond it a review
    /// gets its policies' failure verdicts at once (cause overload).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_queued_reviews: u32,

    /// Long policy guests (still running after one 5 ms epoch tick) on the
    /// CPUs at once; the others wait off the CPU for a turn (round robin
    /// between policies, a tick each), so a spinning policy cannot take the
    /// cores from the other policies or from the server itself. Default:
    /// one per CPU available.
    #[arg(long, default_value_t = tollgate_host::SandboxLimits::default_running(), value_parser = clap::value_parser!(u32).range(1..))]
    pub running_guests: u32,

    /// On SIGTERM/SIGINT, how long in-flight reviews may take to finish
    /// (30s, the API server's longest webhook timeout, lets every review
    /// reach its own deadline).
    #[arg(long, default_value = "30s", value_parser = tollgate_host::duration::parse)]
    pub shutdown_grace: Duration,

    /// On SIGTERM, keep accepting connections this long while /readyz says
    /// 503, so the Service's endpoints drop the pod before it stops
    /// accepting (the pod's terminationGracePeriodSeconds must cover this
    /// plus --shutdown-grace).
    #[arg(long, default_value = "0s", value_parser = tollgate_host::duration::parse)]
    pub shutdown_delay: Duration,

    /// Linear memory cap of each policy evaluation, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub policy_memory_bytes: usize,

    /// Serve policy lookups from watch caches of this cluster.
    #[arg(long, conflicts_with = "cluster_snapshot")]
    pub kubeconfig: Option<PathBuf>,

    /// How long a watch cache whose connection to the API server broke may
    /// still answer lookups from its last view; after that, the policies
    /// reading it get their failure verdicts (a relist normally takes under
    /// 2 s once the API server answers).
    #[arg(long, default_value = "10s", value_parser = tollgate_host::duration::parse)]
    pub max_context_staleness: Duration,

    /// Serve policy lookups from a directory of YAML/JSON objects (offline).
    #[arg(long)]
    pub cluster_snapshot: Option<PathBuf>,

    /// Where the development certificate lives (default $XDG_STATE_HOME/tollgate,
    /// else ~/.local/state/tollgate).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,

    /// Where compiled policy modules are cached (default $XDG_CACHE_HOME/tollgate,
    /// else ~/.cache/tollgate).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,

    /// Where the key authenticating the module cache's entries is kept
    /// (default: the state directory; never the cache directory).
    #[arg(long, value_name = "DIR")]
    pub cache_key_dir: Option<PathBuf>,
}
