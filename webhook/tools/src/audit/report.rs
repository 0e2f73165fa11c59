//! `audit -o policyreport`: the results as `wgpolicyk8s.io/v1alpha2`
//! PolicyReports (one per namespace, for namespaced objects) and one
//! ClusterPolicyReport (cluster-scoped objects), the format of the Policy
//! WG's CRDs (`testdata/policyreport/`) that Kyverno, Kubewarden and the
//! report UIs read. Each report holds at most `max_results` results, worst
//! first; its summary counts every result, and an annotation says how many
//! were left out.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::{Audited, PolicyResult, tally};

pub const API_VERSION: &str = "wgpolicyk8s.io/v1alpha2";
/// The name of every report Tollgate writes (one per namespace).
pub const NAME: &str = "tollgate-audit";
/// How many results a report left out.
pub const OMITTED_ANNOTATION: &str = "tollgate.dev/results-omitted";

/// One report and how many of its results did not fit.
pub struct Report {
    pub object: Value,
    pub omitted: usize,
}

impl Report {
    /// `PolicyReport web/tollgate-audit`.
    pub fn name(&self) -> String {
        tollgate_preflight::served::display_name(&self.object)
    }
}

/// Seconds since the epoch: every result of a run has the run's time.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The reports of `audited`, cluster-scoped first, then by namespace.
pub fn reports(audited: &[Audited], max_results: usize, seconds: u64) -> Vec<Report> {
    let mut scopes: BTreeMap<Option<String>, Vec<(&Audited, &PolicyResult)>> = BTreeMap::new();
    for a in audited {
        let namespace = a.object["metadata"]["namespace"]
            .as_str()
            .map(str::to_owned);
        let scope = scopes.entry(namespace).or_default();
        scope.extend(a.results.iter().map(|r| (a, r)));
    }
    scopes
        .into_iter()
        .map(|(namespace, mut results)| {
            let [fail, error, warn, pass] = tally(results.iter().map(|(_, r)| *r));
            // Stable: worst first, then in object order.
            results.sort_by_key(|(_, r)| r.outcome);
            let omitted = results.len().saturating_sub(max_results);
            results.truncate(max_results);
            let mut metadata = json!({
                "name": NAME,
                "labels": {"app.kubernetes.io/managed-by": "tollgate"},
            });
            if let Some(ns) = &namespace {
                metadata["namespace"] = json!(ns);
            }
            if omitted > 0 {
                metadata["annotations"] = json!({OMITTED_ANNOTATION: omitted.to_string()});
            }
            let kind = if namespace.is_some() {
                "PolicyReport"
            } else {
                "ClusterPolicyReport"
            };
            let object = json!({
                "apiVersion": API_VERSION,
                "kind": kind,
                "metadata": metadata,
                "summary": {"pass": pass, "fail": fail, "warn": warn, "error": error, "skip": 0},
                "results": results.iter().map(|(a, r)| result(a, r, seconds)).collect::<Vec<_>>(),
            });
            Report { object, omitted }
        })
        .collect()
}

/// One `results[]` entry: the policy, what it came to, its messages and
/// the object.
fn result(audited: &Audited, r: &PolicyResult, seconds: u64) -> Value {
    let meta = &audited.object["metadata"];
    let mut resource = Map::new();
    resource.insert("apiVersion".into(), audited.object["apiVersion"].clone());
    resource.insert("kind".into(), audited.object["kind"].clone());
    for field in ["name", "namespace", "uid"] {
        if let Some(value) = meta.get(field).filter(|v| v.is_string()) {
            resource.insert(field.into(), value.clone());
        }
    }
    let mut entry = json!({
        "policy": r.policy,
        "rule": r.rule,
        "result": r.outcome.as_str(),
        "source": "tollgate",
        "scored": true,
        "timestamp": {"seconds": seconds, "nanos": 0},
        "resources": [resource],
    });
    // A repair's own message ("repaired") says nothing about the stored
    // object: what it means here is that the object breaks the rule.
    let messages: Vec<&str> = r
        .findings
        .iter()
        .map(|f| match f.verdict {
            "patch" => "the stored object breaks the rule: re-applied, it would be repaired (properties.patch)",
            _ => f.message.as_str(),
        })
        .collect();
    if !messages.is_empty() {
        entry["message"] = json!(messages.join(" | "));
    }
    // `properties` holds strings only.
    let mut properties = Map::new();
    let stages: Vec<&str> = r.findings.iter().map(|f| f.endpoint).collect();
    if !stages.is_empty() {
        properties.insert("stage".into(), json!(stages.join(",")));
    }
    if let Some(patch) = r.findings.iter().find_map(|f| f.patch.as_ref()) {
        properties.insert("patch".into(), json!(patch.to_string()));
    }
    if !properties.is_empty() {
        entry["properties"] = Value::Object(properties);
    }
    entry
}

/// The reports as one multi-document YAML stream.
pub fn write_yaml(out: &mut dyn Write, reports: &[Report]) -> io::Result<()> {
    for report in reports {
        let text = serde_yaml_ng::to_string(&report.object).map_err(io::Error::other)?;
        write!(out, "---\n{text}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tollgate_preflight::Finding;

    use super::super::ReportResult;
    use super::*;

    fn audited(namespace: Option<&str>, name: &str, outcomes: &[ReportResult]) -> Audited {
        let mut object =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}});
        if let Some(ns) = namespace {
            object["metadata"]["namespace"] = json!(ns);
        }
        let results = outcomes
            .iter()
            .enumerate()
            .map(|(i, &outcome)| PolicyResult {
                policy: format!("p{i}"),
                rule: format!("r{i}"),
                outcome,
                findings: match outcome {
                    ReportResult::Pass => vec![],
                    _ => vec![Finding {
                        policy: format!("p{i}"),
                        endpoint: "validate",
                        verdict: "deny",
                        message: "no".into(),
                        patch: None,
                    }],
                },
            })
            .collect();
        Audited { object, results }
    }

    #[test]
    fn one_report_per_namespace_and_one_for_the_cluster() {
        let all = [
            audited(Some("web"), "a", &[ReportResult::Pass, ReportResult::Fail]),
            audited(None, "b", &[ReportResult::Warn]),
            audited(Some("kube-system"), "c", &[ReportResult::Pass]),
        ];
        let reports = reports(&all, 10, 7);
        let names: Vec<String> = reports.iter().map(Report::name).collect();
        assert_eq!(
            names,
            [
                "ClusterPolicyReport tollgate-audit",
                "PolicyReport kube-system/tollgate-audit",
                "PolicyReport web/tollgate-audit"
            ]
        );
        let web = &reports[2].object;
        assert_eq!(
            web["summary"],
            json!({"pass": 1, "fail": 1, "warn": 0, "error": 0, "skip": 0})
        );
        assert_eq!(web["results"][0]["result"], "fail");
        assert_eq!(web["results"][0]["message"], "no");
        assert_eq!(web["results"][0]["resources"][0]["namespace"], "web");
        assert_eq!(web["results"][0]["timestamp"]["seconds"], 7);
        assert!(web["results"][1].get("message").is_none());
    }

    #[test]
    fn a_full_report_keeps_the_worst_results_and_counts_all() {
        let all: Vec<Audited> = (0..5)
            .map(|i| {
                let outcome = if i == 3 {
                    ReportResult::Fail
                } else {
                    ReportResult::Pass
                };
                audited(Some("web"), &format!("d{i}"), &[outcome])
            })
            .collect();
        let reports = reports(&all, 2, 0);
        let report = &reports[0];
        assert_eq!(report.omitted, 3);
        let results = report.object["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["resources"][0]["name"], "d3");
        assert_eq!(report.object["summary"]["pass"], 4);
        assert_eq!(
            report.object["metadata"]["annotations"][OMITTED_ANNOTATION],
            "3"
        );
    }
}
