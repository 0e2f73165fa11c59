//! kubectl steps of the cluster suites that work with Calico's published
//! files: server-side apply of a whole file (as Calico's docs apply them;
//! its CRDs are too large for client-side apply's annotation), CRDs
//! Established, retries bounded by a clock, Tollgate's own install from
//! `tollgate manifests` and its metrics, and the warning and error lines of
//! every process's log for failure messages (a tail alone often misses the
//! line that explains a failure).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::Server;
use crate::cluster::Cluster;

/// How many warning or error lines of one log a failure message shows.
const LOG_LINES: usize = 25;

/// Exit status, stdout and stderr of a kubectl run, for failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The last [`LOG_LINES`] lines of `log` that `keep` selects, under a
/// header naming it (`(none)` when there are none).
fn selected(name: &str, log: &str, keep: impl Fn(&str) -> bool) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| keep(l)).collect();
    let shown = lines[lines.len().saturating_sub(LOG_LINES)..].join("\n");
    let shown = if shown.is_empty() { "(none)" } else { &shown };
    format!(
        "--- {name}: {} warning/error lines, the last {}:\n{shown}",
        lines.len(),
        LOG_LINES.min(lines.len())
    )
}

/// `text` without ANSI colour sequences (`ESC [ … m`).
fn strip_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Up to and including the sequence's final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `tollgate manifests ARGS`, which must succeed.
pub fn tollgate_manifests(args: &[&str]) -> String {
    let out = Command::new(crate::tollgate_bin())
        .arg("manifests")
        .args(args)
        .output()
        .expect("run tollgate manifests");
    assert!(
        out.status.success(),
        "tollgate manifests {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 manifests")
}

impl Cluster {
    /// What `tollgate manifests` generates, its webhooks calling `server`
    /// by URL (no kube-proxy here) and trusting this cluster's CA.
    pub fn tollgate_install(&self, server: &Server) -> String {
        let url = format!("https://{}", server.addr);
        let ca = self.dir.join("ca.crt");
        tollgate_manifests(&[
            "--webhook-url",
            &url,
            "--ca-bundle",
            ca.to_str().expect("UTF-8 path"),
        ])
    }

    /// `kubectl apply --server-side --force-conflicts -f FILE`, as Calico's
    /// docs apply its manifests; must succeed. Returns stdout.
    pub fn apply_file(&self, path: &Path) -> String {
        let file = path.to_str().expect("UTF-8 path");
        let out = self.kubectl(&["apply", "--server-side", "--force-conflicts", "-f", file]);
        assert!(
            out.status.success(),
            "kubectl apply --server-side -f {file}: {}\n{}",
            text(&out),
            self.log_errors()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (bounded) until every CRD is Established, so that their
    /// custom resources can be written.
    pub fn wait_crds_established(&self) {
        let out = self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=120s",
        ]);
        assert!(
            out.status.success(),
            "CRDs not Established: {}\n{}",
            text(&out),
            self.log_errors()
        );
    }

    /// Runs `kubectl ARGS` (with `input` on stdin) until `done` holds for
    /// its output, for at most `within`; `Err` holds the last output.
    pub fn retry(
        &self,
        args: &[&str],
        input: Option<&str>,
        within: Duration,
        mut done: impl FnMut(&Output) -> bool,
    ) -> Result<Output, Output> {
        let started = Instant::now();
        loop {
            let out = self.kubectl_with_input(args, input);
            if done(&out) {
                return Ok(out);
            }
            if started.elapsed() > within {
                return Err(out);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The warning and error lines of kube-apiserver's log (klog `E`/`W`
    /// lines) and etcd's (it logs nothing else here).
    pub fn log_errors(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let klog = |l: &str| {
            let mut chars = l.chars();
            matches!(chars.next(), Some('E' | 'W'))
                && chars.next().is_some_and(|c| c.is_ascii_digit())
        };
        [
            selected("kube-apiserver", &read("apiserver.log"), klog),
            selected("etcd", &read("etcd.log"), |l| !l.trim().is_empty()),
        ]
        .join("\n")
    }
}

impl Server {
    /// Tollgate's `WARN` and `ERROR` log lines (without terminal colours).
    pub fn log_errors(&self) -> String {
        let plain = strip_colours(&self.logs());
        selected("tollgate", &plain, |l| {
            l.contains(" WARN ") || l.contains(" ERROR ")
        })
    }

    /// Evaluations of `policy` so far, any endpoint and verdict.
    pub async fn evaluations(&self, policy: &str) -> f64 {
        let text = self.metrics().await;
        let label = format!("policy=\"{policy}\"");
        text.lines()
            .filter(|l| l.starts_with("tollgate_reviews_total{") && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Reviews answered, and those that entered no policy (both endpoints).
    pub async fn review_counts(&self) -> (f64, f64) {
        let text = self.metrics().await;
        let sum = |prefix: &str| {
            ["validate", "mutate"]
                .iter()
                .map(|e| crate::metric(&text, &format!("{prefix}{{endpoint=\"{e}\"}}")))
                .sum::<f64>()
        };
        (
            sum("tollgate_review_duration_seconds_count"),
            sum("tollgate_unmatched_reviews_total"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_selected_without_colours() {
        let log = "\u{1b}[2m2026-12-06T09:17:54Z\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m watch failed\n\
                   \u{1b}[2m2026-12-06T09:17:55Z\u{1b}[0m \u{1b}[34mDEBUG\u{1b}[0m cache synced\n";
        let plain = strip_colours(log);
        assert_eq!(
            selected("t", &plain, |l| l.contains(" WARN ")),
            "--- t: 1 warning/error lines, the last 1:\n2026-12-06T09:17:54Z  WARN watch failed"
        );
        assert!(selected("t", "", |_| true).ends_with("(none)"));
    }
}
