//! `tollgate test PATH`: policy test cases written in YAML next to a policy
//! (the format is [`file`]'s), each judged by the host exactly as `serve`
//! judges a review ([`PolicySet::judge`]) and checked against what it
//! expects ([`expect`]).
//!
//! One line per case (`PASS`/`FAIL`, the file and line, the name; the
//! reasons under a failure), then `N passed, N failed`. Exit status: 0 when
//! every case passed, 1 when one failed, 2 when some input could not be used
//! at all (a file that does not parse, a request or policy file that cannot
//! be read or loaded), reported as `FILE:LINE: message`.

pub mod expect;
pub mod file;
pub mod input;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_context::snapshot::SnapshotContext;
use tollgate_context::{ClusterContext, EmptyContext};
use tollgate_host::{Config, Endpoint, Parsed, PolicySet, Review, Sandbox, SandboxLimits};

use expect::Judged;
use file::{Case, CaseFile, Endpoints};
use tollgate_guests::{BUILTINS, DEFAULT_POLICIES};

/// `tollgate test`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    /// A `*.test.yaml` file, or a directory searched recursively for them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

    /// Where compiled policy modules are cached (default $XDG_CACHE_HOME/tollgate).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// What a run came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    /// Files or cases whose input could not be used.
    pub unusable: usize,
}

impl Tally {
    /// The process exit status: 2 for unusable input, 1 for a failed case.
    pub fn exit_code(&self) -> i32 {
        if self.unusable > 0 {
            2
        } else if self.failed > 0 {
            1
        } else {
            0
        }
    }
}

/// How long a case's review may take (the API server's default webhook
/// timeout); a policy's own `timeout` still applies within it.
const REVIEW_BUDGET: Duration = Duration::from_secs(10);

/// Runs every case under `args.paths`, writing the report to `out` and
/// unusable input to `err`.
pub fn run(args: &TestArgs, out: &mut dyn Write, err: &mut dyn Write) -> Tally {
    let mut tally = Tally::default();
    let mut files = Vec::new();
    for path in &args.paths {
        if let Err(message) = discover(path, &mut files) {
            let _ = writeln!(err, "error: {message}");
            tally.unusable += 1;
        }
    }
    let limits = SandboxLimits {
        cache_dir: args
            .cache_dir
            .clone()
            .or_else(SandboxLimits::default_cache_dir),
        ..SandboxLimits::default()
    };
    let mut runner = match Sandbox::new(limits) {
        Ok(sandbox) => Runner {
            sandbox,
            sets: HashMap::new(),
            snapshots: HashMap::new(),
        },
        Err(error) => {
            let _ = writeln!(err, "error: cannot start the policy sandbox: {error}");
            tally.unusable += 1;
            return tally;
        }
    };
    if files.is_empty() && tally.unusable == 0 {
        let _ = writeln!(err, "error: no *.test.yaml files found");
        tally.unusable += 1;
    }
    for path in &files {
        runner.file(path, &mut tally, out, err);
    }
    let _ = writeln!(out, "{} passed, {} failed", tally.passed, tally.failed);
    if tally.unusable > 0 {
        let _ = writeln!(
            err,
            "{} input(s) could not be used (see the errors above)",
            tally.unusable
        );
    }
    tally
}

/// The `*.test.yaml` files at `path`, in name order.
fn discover(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let metadata =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !metadata.is_dir() {
        files.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            discover(&entry, files)?;
        } else if entry.to_string_lossy().ends_with(".test.yaml") {
            files.push(entry);
        }
    }
    Ok(())
}

/// Loaded policy sets and snapshots, shared by the cases that name the same
/// ones (compiling a module is the slow part of a run).
struct Runner {
    sandbox: Arc<Sandbox>,
    sets: HashMap<String, Arc<PolicySet>>,
    snapshots: HashMap<PathBuf, Arc<dyn ClusterContext>>,
}

impl Runner {
    fn file(&mut self, path: &Path, tally: &mut Tally, out: &mut dyn Write, err: &mut dyn Write) {
        let shown = path.display();
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| (format!("cannot read it: {e}"), None))
            .and_then(|text| file::parse(&text));
        let cases = match parsed {
            Ok(cases) => cases,
            Err((message, at)) => {
                let at = at.map_or(String::new(), |(line, column)| format!(":{line}:{column}"));
                let _ = writeln!(err, "error: {shown}{at}: {message}");
                tally.unusable += 1;
                return;
            }
        };
        let base = path.parent().unwrap_or(Path::new("."));
        for spanned in &cases.cases {
            let case = &spanned.value;
            let at = format!("{shown}:{}", spanned.referenced.line());
            match self.case(&cases, case, base) {
                Ok(problems) if problems.is_empty() => {
                    tally.passed += 1;
                    let _ = writeln!(out, "PASS {at} {}", case.name);
                }
                Ok(problems) => {
                    tally.failed += 1;
                    let _ = writeln!(out, "FAIL {at} {}", case.name);
                    for problem in problems {
                        let _ = writeln!(out, "     {problem}");
                    }
                }
                Err(message) => {
                    tally.unusable += 1;
                    let _ = writeln!(out, "ERROR {at} {}", case.name);
                    let _ = writeln!(err, "error: {at}: {message}");
                }
            }
        }
    }

    /// The problems of one case (none: it passed), or why it cannot run.
    fn case(
        &mut self,
        defaults: &CaseFile,
        case: &Case,
        base: &Path,
    ) -> Result<Vec<String>, String> {
        if case.expect.is_empty() {
            return Err("`expect:` names nothing to check".to_owned());
        }
        let policies = case.policies.as_ref().or(defaults.policies.as_ref());
        let set = self.policy_set(policies, base)?;
        let snapshot = case.snapshot.as_ref().or(defaults.snapshot.as_ref());
        let context = self.context(snapshot.map(|s| base.join(s)))?;
        let body = input::review_body(&case.request, base, &case.name)?;
        let review = match Review::parse(&body) {
            Ok(Parsed::Review(review)) => review,
            Ok(Parsed::InvalidRequest { error, .. }) => {
                return Err(format!("the request cannot be judged: {error}"));
            }
            Err(error) => return Err(format!("the request cannot be judged: {error}")),
        };
        let endpoints: &[Endpoint] = match case.endpoint.or(defaults.endpoint).unwrap_or_default() {
            Endpoints::Validate => &[Endpoint::Validate],
            Endpoints::Mutate => &[Endpoint::Mutate],
            Endpoints::Both => &[Endpoint::Validate, Endpoint::Mutate],
        };
        let ids: Vec<&str> = set.policies().iter().map(|p| p.id.as_str()).collect();
        let mut problems = Vec::new();
        for &endpoint in endpoints {
            let deadline = Instant::now() + REVIEW_BUDGET;
            let decision = set.judge(&review, endpoint, deadline, &context);
            let judged = Judged {
                decision: &decision,
                ids: &ids,
                object: review.object_value(),
            };
            let found = judged.mismatches(&case.expect);
            if !found.is_empty() {
                let prefix = if endpoints.len() > 1 {
                    format!("/{}: ", endpoint.as_str())
                } else {
                    String::new()
                };
                problems.extend(found.into_iter().map(|p| format!("{prefix}{p}")));
                problems.push(format!("{prefix}{}", judged.summary()));
            }
        }
        Ok(problems)
    }

    /// The set `policies:` names: a configuration file (relative to the
    /// case file), inline entries, or the built-in pack's default.
    fn policy_set(
        &mut self,
        policies: Option<&Value>,
        base: &Path,
    ) -> Result<Arc<PolicySet>, String> {
        let (key, text, origin, dir) = match policies {
            None => (
                "builtin".to_owned(),
                DEFAULT_POLICIES.to_owned(),
                "built-in default configuration".to_owned(),
                PathBuf::from("."),
            ),
            Some(Value::String(file)) => {
                let path = base.join(file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read policies {}: {e}", path.display()))?;
                let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
                (
                    format!("file:{}", path.display()),
                    text,
                    path.display().to_string(),
                    dir,
                )
            }
            // JSON is YAML: inline entries go through the same parser as a file.
            Some(inline @ Value::Array(_)) => (
                format!("inline:{}:{inline}", base.display()),
                inline.to_string(),
                "inline policies".to_owned(),
                base.to_owned(),
            ),
            Some(_) => {
                return Err(
                    "policies must be a configuration file name or a list of `- id: …` entries"
                        .to_owned(),
                );
            }
        };
        if let Some(set) = self.sets.get(&key) {
            return Ok(set.clone());
        }
        let config = Config::from_yaml(&text, &origin).map_err(|e| e.to_string())?;
        let set = PolicySet::load(&config, &self.sandbox, BUILTINS, &dir)
            .map_err(|e| format!("cannot load the policies: {e}"))?;
        let set = Arc::new(set);
        self.sets.insert(key, set.clone());
        Ok(set)
    }

    /// The cluster the policies look objects up in: a snapshot, or none.
    fn context(&mut self, snapshot: Option<PathBuf>) -> Result<Arc<dyn ClusterContext>, String> {
        let Some(dir) = snapshot else {
            return Ok(Arc::new(EmptyContext));
        };
        if let Some(context) = self.snapshots.get(&dir) {
            return Ok(context.clone());
        }
        let loaded = SnapshotContext::load(&dir)
            .map_err(|e| format!("cannot load the snapshot {}: {e}", dir.display()))?;
        let context: Arc<dyn ClusterContext> = Arc::new(loaded);
        self.snapshots.insert(dir, context.clone());
        Ok(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_on(dir: &Path, files: &[(&str, &str)]) -> (Tally, String, String) {
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let args = TestArgs {
            paths: vec![dir.to_owned()],
            cache_dir: Some(dir.join("cache")),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let tally = run(&args, &mut out, &mut err);
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (tally, text(out), text(err))
    }

    #[test]
    fn every_unusable_case_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("empty-dir")).unwrap();
        let cases = "cases:\n\
            \x20 - name: nothing expected\n    request: {}\n    expect: {}\n\
            \x20 - name: policies of the wrong type\n    policies: 5\n    request: {}\n    expect: {allowed: true}\n\
            \x20 - name: inline policies that do not parse\n    policies: [{id: p}]\n    request: {}\n    expect: {allowed: true}\n\
            \x20 - name: no such snapshot\n    snapshot: nowhere\n    policies: []\n    request: {}\n    expect: {allowed: true}\n\
            \x20 - name: not a review\n    policies: []\n    request: {kind: AdmissionReview, apiVersion: v9}\n    expect: {allowed: true}\n\
            \x20 - name: nothing selected, allowed\n    policies: []\n    request: {operation: CREATE}\n    expect: {verdict: allow, warnings: []}\n";
        let (tally, out, err) = run_on(
            dir.path(),
            &[("a.test.yaml", cases), ("ignored.yaml", "not: a case file")],
        );
        assert_eq!(
            tally,
            Tally {
                passed: 1,
                failed: 0,
                unusable: 5
            },
            "{out}\n{err}"
        );
        assert_eq!(tally.exit_code(), 2);
        let file = dir.path().join("a.test.yaml");
        let file = file.display();
        for (line, message) in [
            (2, "`expect:` names nothing to check"),
            (5, "policies must be a configuration file name or a list"),
            (9, "inline policies"),
            (13, "cannot load the snapshot"),
            (18, "apiVersion is \"v9\""),
        ] {
            assert!(
                err.contains(&format!("error: {file}:{line}: ")) && err.contains(message),
                "{line} {message}: {err}"
            );
        }
        assert!(
            out.contains(&format!("PASS {file}:22 nothing selected, allowed")),
            "{out}"
        );
        assert!(out.ends_with("1 passed, 0 failed\n"), "{out}");
    }

    #[test]
    fn the_exit_status_says_the_worst() {
        let status = |passed, failed, unusable| {
            Tally {
                passed,
                failed,
                unusable,
            }
            .exit_code()
        };
        assert_eq!(status(3, 0, 0), 0);
        assert_eq!(status(3, 1, 0), 1);
        assert_eq!(status(0, 1, 1), 2);
    }
}
