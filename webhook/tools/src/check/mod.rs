//! `tollgate check -f FILE…`: what the API server would do with `kubectl
//! apply` of manifests, before it is run. Each object becomes the review
//! the API server would send (CREATE, or UPDATE against the stored object
//! of the cluster source, served and defaulted: `tollgate-preflight`) and
//! goes through the admission chain — mutating policies, their patch, then
//! validating policies on the patched object — by the same
//! `PolicySet::judge` that `serve` answers with. The input is replayed in
//! order, as `kubectl apply -f` applies it: each object meets the cluster
//! with the earlier ones stored, and a warning a later one resolves is
//! shown as transient and does not count (SPEC §5).
//!
//! Exit status: 0 when every object would be admitted, 1 when one would be
//! denied, 2 when the input or configuration cannot be used (manifests,
//! snapshot, policies, cluster), with the file and line where there is one.

pub mod cluster;
pub mod live;
mod output;
pub mod table;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_host::{Config, PolicySet, Sandbox, SandboxLimits};
use tollgate_preflight::{Finding, Manifest, Replayed, Source, manifest, replay};

use cluster::{Cluster, ClusterArgs, Wanted};
use table::Row;
use tollgate_guests::DEFAULT_POLICIES;
use tollgate_preflight::source::PolicySource;

/// Input or configuration that cannot be used: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub String);

/// The review budget of each endpoint: the API server's default webhook
/// timeout (each policy's own `timeout` still applies within it).
pub const REVIEW_BUDGET: Duration = Duration::from_secs(10);

/// `--policies` and `--cache-dir`, shared with `audit`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArgs {
    /// Policy configuration (YAML). Default: the built-in Calico pack with
    /// its default configuration, as `serve` runs it.
    #[arg(long)]
    pub policies: Option<PathBuf>,

    /// Where compiled policy modules are cached (default
    /// $XDG_CACHE_HOME/tollgate, else ~/.cache/tollgate).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// A loaded policy set and the configuration it came from (whose `match:`
/// says which kinds an audit lists).
pub struct Policies {
    pub set: PolicySet,
    pub config: Config,
}

impl PolicyArgs {
    /// Loads the configuration the way `serve` does.
    pub fn load(&self) -> Result<Policies, Unusable> {
        let sandbox = Sandbox::new(SandboxLimits {
            cache_dir: self
                .cache_dir
                .clone()
                .or_else(SandboxLimits::default_cache_dir),
            ..SandboxLimits::default()
        })
        .map_err(|e| Unusable(format!("cannot start the policy sandbox: {e}")))?;
        let (source, config) = match &self.policies {
            Some(path) => (
                PolicySource::File(path.clone()),
                Config::from_file(path).map_err(|e| Unusable(e.to_string()))?,
            ),
            None => (
                PolicySource::Builtin,
                Config::from_yaml(DEFAULT_POLICIES, "built-in default configuration")
                    .map_err(|e| Unusable(e.to_string()))?,
            ),
        };
        let set = source
            .load(&sandbox)
            .map_err(|e| Unusable(format!("cannot load the policies: {e}")))?
            .set;
        Ok(Policies { set, config })
    }
}

/// `check`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Manifests: files, directories (their .yaml, .yml and .json files), or
    /// `-` for stdin; multi-document YAML, JSON and Lists.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub policies: PolicyArgs,

    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Runs `check`, printing to stdout and problems to stderr; the exit status.
pub fn run(args: &CheckArgs) -> i32 {
    exit_status("check", |out| check(args, out))
}

/// The exit status of a pre-flight command that prints to stdout: 0 when
/// everything passed, 1 when something did not, 2 (the problem on stderr,
/// named after `command`) when the input or configuration is unusable.
pub(crate) fn exit_status(
    command: &str,
    run: impl FnOnce(&mut dyn Write) -> Result<bool, Unusable>,
) -> i32 {
    let mut out = std::io::stdout().lock();
    let code = match run(&mut out) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(Unusable(message)) => {
            eprintln!("tollgate {command}: {message}");
            2
        }
    };
    let _ = out.flush();
    code
}

/// Reads, judges and prints; whether every object would be admitted.
fn check(args: &CheckArgs, out: &mut dyn Write) -> Result<bool, Unusable> {
    let sources: Vec<Source> = args
        .files
        .iter()
        .map(|p| Source::from(p.as_path()))
        .collect();
    let manifests = manifest::read(&sources).map_err(|e| Unusable(e.to_string()))?;
    let policies = args.policies.load()?;
    let cluster = Cluster::open(&args.cluster, &policies.set, Wanted::Stored(&manifests))?;
    let checked = judge_all(&policies.set, &cluster, &manifests)?;
    match args.output {
        Format::Table => output::write_table(out, &checked, &cluster.source),
        Format::Json => output::write_json(out, &checked, &cluster.source),
    }
    .or_else(written)?;
    Ok(checked.iter().all(|c| c.judged.allowed()))
}

/// A write of the result that failed: unusable, unless the reader only
/// stopped early (`| head`), which leaves the verdict as it is.
pub fn written(error: std::io::Error) -> Result<(), Unusable> {
    match error.kind() {
        std::io::ErrorKind::BrokenPipe => Ok(()),
        _ => Err(Unusable(format!("cannot write the result: {error}"))),
    }
}

/// Every manifest as `kubectl apply -f` would submit it, in order, through
/// the chain: each against the cluster with the earlier ones applied, the
/// warnings a later one resolves marked transient (`tollgate-preflight`'s
/// replay).
pub fn judge_all<'m>(
    policies: &PolicySet,
    cluster: &Cluster,
    manifests: &'m [Manifest],
) -> Result<Vec<Replayed<'m>>, Unusable> {
    replay(
        policies,
        REVIEW_BUDGET,
        &cluster.context,
        &cluster.objects,
        manifests,
    )
    .map_err(|e| Unusable(e.to_string()))
}

/// A finding as a table row about `object`.
pub fn row(object: String, finding: &Finding) -> Row {
    Row {
        object,
        policy: finding.policy.clone(),
        stage: finding.endpoint,
        verdict: finding.verdict,
        message: finding.message.clone(),
        patch: finding.patch.clone(),
    }
}

/// A finding in `-o json`.
pub fn finding_json(f: &Finding) -> Value {
    json!({
        "policy": f.policy,
        "stage": f.endpoint,
        "verdict": f.verdict,
        "message": f.message,
        "patch": f.patch,
    })
}
