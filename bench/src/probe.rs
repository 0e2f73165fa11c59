//! What a server does with a scenario's review, checked once before it is
//! measured: its verdict, and for Tollgate the policies it entered and the
//! cluster lookups they made (from `/metrics`), so a figure is never quoted
//! for work that did not happen.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::Deserialize;

use crate::client::Endpoint;
use crate::load::Target;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The answer to one review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub allowed: bool,
    /// `status.message` of a denial.
    pub message: Option<String>,
    pub warnings: usize,
    pub patched: bool,
}

#[derive(Deserialize)]
struct Envelope {
    response: Response,
}

#[derive(Deserialize)]
struct Response {
    uid: String,
    allowed: bool,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    patch: Option<String>,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    message: Option<String>,
}

/// Posts the target's review once and reads the verdict.
pub async fn verdict(target: &Target) -> anyhow::Result<Answer> {
    let (status, body) = target
        .endpoint
        .request_once(Method::POST, &target.path, target.body.clone(), TIMEOUT)
        .await?;
    parse_verdict(status, &body, &target.uid)
}

fn parse_verdict(status: StatusCode, body: &[u8], uid: &str) -> anyhow::Result<Answer> {
    if status != StatusCode::OK {
        bail!(
            "answered {status}: {}",
            String::from_utf8_lossy(body).trim()
        );
    }
    let answer: Envelope = serde_json::from_slice(body).with_context(|| {
        format!(
            "answer is not an AdmissionReview: {}",
            String::from_utf8_lossy(body)
        )
    })?;
    let r = answer.response;
    if r.uid != uid {
        bail!("answer carries uid {:?}, not the review's {uid:?}", r.uid);
    }
    Ok(Answer {
        allowed: r.allowed,
        message: r.status.and_then(|s| s.message),
        warnings: r.warnings.len(),
        patched: r.patch.is_some(),
    })
}

/// Tollgate's counters that say what work a review caused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Evaluations by (policy, verdict).
    pub evaluations: BTreeMap<(String, String), u64>,
    /// Cluster-context lookups answered; `None` where the backend does not
    /// count them (a snapshot).
    pub lookups: Option<u64>,
}

impl Work {
    /// Reads Tollgate's `/metrics`.
    pub async fn read(endpoint: &Endpoint) -> anyhow::Result<Self> {
        let (status, body) = endpoint
            .request_once(Method::GET, "/metrics", Bytes::new(), TIMEOUT)
            .await?;
        if status != StatusCode::OK {
            bail!("/metrics answered {status}");
        }
        Ok(Self::parse(&String::from_utf8_lossy(&body)))
    }

    fn parse(text: &str) -> Self {
        let mut work = Self::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let value = value as u64;
            if let Some(labels) = series.strip_prefix("tollgate_reviews_total{") {
                let label = |name: &str| {
                    labels
                        .split(',')
                        .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                        .map(|v| v.trim_end_matches(['}', '"']).to_owned())
                        .unwrap_or_default()
                };
                *work
                    .evaluations
                    .entry((label("policy"), label("verdict")))
                    .or_default() += value;
            } else if series.ends_with("context_lookup_duration_seconds_count") {
                *work.lookups.get_or_insert(0) += value;
            }
        }
        work
    }

    /// What happened between `before` and `self`.
    pub fn since(&self, before: &Work) -> Work {
        let evaluations = self
            .evaluations
            .iter()
            .filter_map(|(k, v)| {
                let n = v - before.evaluations.get(k).copied().unwrap_or(0).min(*v);
                (n > 0).then(|| (k.clone(), n))
            })
            .collect();
        Work {
            evaluations,
            lookups: self
                .lookups
                .map(|n| n.saturating_sub(before.lookups.unwrap_or(0))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let denied =
            br#"{"response":{"uid":"u","allowed":false,"status":{"code":403,"message":"no"}}}"#;
        let v = parse_verdict(StatusCode::OK, denied, "u").unwrap();
        assert_eq!(
            v,
            Answer {
                allowed: false,
                message: Some("no".into()),
                warnings: 0,
                patched: false
            }
        );
        let wrong_uid = parse_verdict(StatusCode::OK, denied, "other").unwrap_err();
        assert!(wrong_uid.to_string().contains("\"other\""));
        let refused = parse_verdict(StatusCode::BAD_REQUEST, b"bad review\n", "u").unwrap_err();
        assert!(refused.to_string().contains("bad review"));
        assert!(parse_verdict(StatusCode::OK, b"{}", "u").is_err());
    }

    #[test]
    fn work_from_metrics() {
        let before = Work::parse(
            "# TYPE tollgate_reviews counter\n\
             tollgate_reviews_total{endpoint=\"validate\",policy=\"r1\",verdict=\"allow\",mode=\"enforce\"} 2\n\
             tollgate_context_lookup_duration_seconds_count 4\n",
        );
        let after = Work::parse(
            "tollgate_reviews_total{endpoint=\"validate\",policy=\"r1\",verdict=\"allow\",mode=\"enforce\"} 3\n\
             tollgate_reviews_total{endpoint=\"validate\",policy=\"r9\",verdict=\"deny\",mode=\"enforce\"} 1\n\
             tollgate_context_lookup_duration_seconds_count 6\n\
             tollgate_context_lookup_duration_seconds_sum 0.001\n",
        );
        let work = after.since(&before);
        assert_eq!(work.lookups, Some(2));
        assert_eq!(Work::parse("").lookups, None);
        assert_eq!(
            work.evaluations.into_iter().collect::<Vec<_>>(),
            [
                (("r1".into(), "allow".into()), 1),
                (("r9".into(), "deny".into()), 1)
            ]
        );
    }
}
