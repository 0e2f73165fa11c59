//! The review deadline from the API server's `?timeout=` parameter.
//!
//! The API server gives up on a webhook after `timeoutSeconds` and sends that
//! budget as `?timeout=10s` (a Go duration). Tollgate answers inside it: the
//! deadline keeps a safety margin for writing the answer and the network.

use std::time::Duration;

use tollgate_host::duration;

/// `?timeout=` could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid timeout query parameter {0:?}: expected a duration such as 10s or 500ms")]
pub struct TimeoutError(pub String);

/// The time Tollgate may spend on a review: the requested timeout (or
/// `default` when absent) minus a margin of 5%, at least 10 ms and at most
/// 500 ms.
pub fn review_budget(query: Option<&str>, default: Duration) -> Result<Duration, TimeoutError> {
    let timeout = match query.and_then(timeout_param) {
        Some(text) => duration::parse(text).map_err(|_| TimeoutError(text.to_owned()))?,
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

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: Duration = Duration::from_secs(10);

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
