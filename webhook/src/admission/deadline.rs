//! The review deadline from the API server's `?timeout=` parameter.
//!
//! The API server gives up on a webhook after `timeoutSeconds` and sends that
//! budget as `?timeout=10s` (a Go duration). Tollgate answers inside it: the
//! deadline keeps a safety margin for writing the answer and the network.

use std::time::Duration;

/// `?timeout=` could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid timeout query parameter {0:?}: expected a duration such as 10s or 500ms")]
pub struct TimeoutError(pub String);

/// The time Tollgate may spend on a review: the requested timeout (or
/// `default` when absent) minus a margin of 5%, at least 10 ms and at most
/// 500 ms.
pub fn review_budget(query: Option<&str>, default: Duration) -> Result<Duration, TimeoutError> {
    let timeout = match query.and_then(timeout_param) {
        Some(text) => parse_duration(text).ok_or_else(|| TimeoutError(text.to_owned()))?,
        None => default,
    };
    let margin = (timeout / 20).clamp(Duration::from_millis(10), Duration::from_millis(500));
    Ok(timeout.saturating_sub(margin))
}

fn timeout_param(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("timeout="))
}

/// Parses a Go duration (`10s`, `500ms`, `1m30s`, `1.5s`; units h, m, s, ms,
/// us/µs, ns). Also used for the command line's duration flags.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: Duration = Duration::from_secs(10);

    #[test]
    fn go_durations() {
        for (text, millis) in [
            ("10s", 10_000),
            ("500ms", 500),
            ("1m30s", 90_000),
            ("1.5s", 1_500),
            ("1h", 3_600_000),
            ("250000us", 250),
        ] {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_millis(millis)),
                "{text}"
            );
        }
        for bad in ["", "10", "s", "ten", "10x", "-1s", "1..5s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_budget_keeps_a_margin() {
        let budget = |q| review_budget(q, DEFAULT).unwrap();
        assert_eq!(budget(Some("timeout=7s")), Duration::from_millis(6650));
        assert_eq!(
            budget(Some("dryRun=true&timeout=30s")),
            Duration::from_millis(29_500)
        );
        assert_eq!(budget(Some("timeout=100ms")), Duration::from_millis(90));
        assert_eq!(budget(None), Duration::from_millis(9_500));
        assert_eq!(budget(Some("other=1")), Duration::from_millis(9_500));
    }

    #[test]
    fn a_bad_timeout_is_an_error_naming_it() {
        let error = review_budget(Some("timeout=soon"), DEFAULT).unwrap_err();
        assert!(error.to_string().contains("\"soon\""));
    }
}
