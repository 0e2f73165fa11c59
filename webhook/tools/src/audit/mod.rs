//! `tollgate audit`: what in the running cluster already violates the
//! policies. Every stored object some policy matches is judged as if it were
//! re-applied unchanged (an UPDATE whose `oldObject` is the object itself,
//! `tollgate-preflight`'s `reapply`), through the same admission chain as
//! `check` and `serve`. The result per object and policy is a PolicyReport
//! result: `fail` (denied, or repaired: what is stored breaks the rule),
//! `error` (the policy could not decide), `warn`, or `pass`.
//!
//! Exit status: 0 when nothing fails, 1 when something does (`fail` or
//! `error`), 2 when the cluster source or configuration cannot be used.

pub mod report;

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tollgate_host::PolicySet;
use tollgate_preflight::{Chain, Finding, findings, review, served};

use crate::check::cluster::{Cluster, ClusterArgs, Wanted};
use crate::check::table::{self, Row};
use crate::check::{PolicyArgs, REVIEW_BUDGET, Unusable, finding_json, live, row, written};

/// `audit`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub policies: PolicyArgs,

    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// The most results one PolicyReport holds (an object in etcd is at
    /// most 1.5 MiB); failures are kept first, the summary counts all.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_results: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    /// `wgpolicyk8s.io/v1alpha2` PolicyReports (one per namespace) and a
    /// ClusterPolicyReport, ready for `kubectl apply -f -`.
    Policyreport,
}

/// What a policy's findings on one object come to in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReportResult {
    Fail,
    Error,
    Warn,
    Pass,
}

impl ReportResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "fail",
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Pass => "pass",
        }
    }

    /// The worst of `findings` (all of one policy): a repair means the
    /// stored object breaks the rule.
    fn of(findings: &[&Finding]) -> Self {
        findings
            .iter()
            .map(|f| match f.verdict {
                "deny" | "patch" => Self::Fail,
                "failure" | "failure-ignored" => Self::Error,
                _ => Self::Warn,
            })
            .min()
            .unwrap_or(Self::Pass)
    }
}

/// One policy's result on one object.
#[derive(Debug, Clone)]
pub struct PolicyResult {
    pub policy: String,
    pub rule: String,
    pub outcome: ReportResult,
    pub findings: Vec<Finding>,
}

/// One stored object some policy matched.
#[derive(Debug, Clone)]
pub struct Audited {
    /// As served (the version the API server hands webhooks).
    pub object: Value,
    pub results: Vec<PolicyResult>,
}

impl Audited {
    pub fn display_name(&self) -> String {
        served::display_name(&self.object)
    }
}

/// Runs `audit`; the exit status.
pub fn run(args: &AuditArgs) -> i32 {
    crate::check::exit_status("audit", |out| audit(args, out))
}

fn audit(args: &AuditArgs, out: &mut dyn Write) -> Result<bool, Unusable> {
    if args.cluster.cluster_snapshot.is_none() && args.cluster.kubeconfig.is_none() {
        return Err(Unusable(
            "audit needs a cluster: --cluster-snapshot DIR or --kubeconfig PATH".to_owned(),
        ));
    }
    let policies = args.policies.load()?;
    let kinds = live::matched_kinds(&policies.config);
    let cluster = Cluster::open(&args.cluster, &policies.set, Wanted::Kinds(&kinds))?;
    let audited = audit_all(&policies.set, &cluster)?;
    let clean = audited
        .iter()
        .flat_map(|a| &a.results)
        .all(|r| r.outcome > ReportResult::Error);
    match args.output {
        Format::Table => print_table(out, &audited, &cluster),
        Format::Json => print_json(out, &audited, &cluster),
        Format::Policyreport => {
            let reports = report::reports(&audited, args.max_results as usize, report::now());
            for omitted in reports.iter().filter(|r| r.omitted > 0) {
                eprintln!(
                    "tollgate audit: {} holds the first {} of its results; {} more are counted in its summary only",
                    omitted.name(),
                    args.max_results,
                    omitted.omitted
                );
            }
            report::write_yaml(out, &reports)
        }
    }
    .or_else(written)?;
    Ok(clean)
}

/// Every stored object, re-applied through the chain; those no policy
/// selects are left out.
pub fn audit_all(policies: &PolicySet, cluster: &Cluster) -> Result<Vec<Audited>, Unusable> {
    let chain = Chain {
        policies,
        context: &cluster.context,
        timeout: REVIEW_BUDGET,
    };
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::new(cluster.objects.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} objects {msg}") {
        progress.set_style(style);
    }
    let mut audited = Vec::new();
    for stored in cluster.objects.iter() {
        progress.inc(1);
        let review = review::reapply(stored);
        let judged = chain
            .judge(&review)
            .map_err(|e| Unusable(format!("{}: {e}", served::display_name(stored))))?;
        let selected: BTreeSet<usize> = std::iter::once(&judged.mutate)
            .chain(judged.validate.as_ref())
            .flat_map(|d| d.outcomes.iter().map(|o| o.policy))
            .collect();
        if selected.is_empty() {
            continue;
        }
        let found = findings(policies, &judged);
        let results = selected
            .into_iter()
            .map(|i| {
                let policy = &policies.policies()[i];
                let own: Vec<&Finding> = found.iter().filter(|f| f.policy == policy.id).collect();
                PolicyResult {
                    policy: policy.id.clone(),
                    rule: policy.rule().to_owned(),
                    outcome: ReportResult::of(&own),
                    findings: own.into_iter().cloned().collect(),
                }
            })
            .collect();
        audited.push(Audited {
            object: review["request"]["object"].clone(),
            results,
        });
    }
    progress.finish_and_clear();
    Ok(audited)
}

/// Counts of results by outcome: `[fail, error, warn, pass]`.
pub fn tally<'a>(results: impl IntoIterator<Item = &'a PolicyResult>) -> [usize; 4] {
    let mut counts = [0; 4];
    for r in results {
        counts[r.outcome as usize] += 1;
    }
    counts
}

fn print_table(out: &mut dyn Write, audited: &[Audited], cluster: &Cluster) -> std::io::Result<()> {
    let colour = table::colour_stdout();
    let rows: Vec<Row> = audited
        .iter()
        .flat_map(|a| {
            let object = a.display_name();
            a.results.iter().flat_map(|r| &r.findings).map(move |f| {
                let mut row = row(object.clone(), f);
                if f.verdict == "patch" {
                    row.message = "breaks the rule; re-applying it repairs it".to_owned();
                }
                row
            })
        })
        .collect();
    table::write(out, &rows, colour)?;
    if !rows.is_empty() {
        writeln!(out)?;
    }
    let [fail, error, warn, pass] = tally(audited.iter().flat_map(|a| &a.results));
    writeln!(
        out,
        "{} objects in {}, {} matched by a policy: {fail} fail, {error} error, {warn} warn, {pass} pass",
        cluster.objects.len(),
        cluster.source,
        audited.len(),
    )?;
    let result = if fail + error == 0 { "pass" } else { "fail" };
    writeln!(out, "result: {}", table::paint(result, result, colour))
}

fn print_json(out: &mut dyn Write, audited: &[Audited], cluster: &Cluster) -> std::io::Result<()> {
    let [fail, error, warn, pass] = tally(audited.iter().flat_map(|a| &a.results));
    let objects: Vec<Value> = audited
        .iter()
        .map(|a| {
            let results: Vec<Value> = a
                .results
                .iter()
                .map(|r| {
                    json!({
                        "policy": r.policy,
                        "result": r.outcome.as_str(),
                        "findings": r.findings.iter().map(finding_json).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({"object": a.display_name(), "apiVersion": a.object["apiVersion"], "results": results})
        })
        .collect();
    let doc = json!({
        "cluster": cluster.source,
        "stored": cluster.objects.len(),
        "summary": {"fail": fail, "error": error, "warn": warn, "pass": pass},
        "objects": objects,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}
