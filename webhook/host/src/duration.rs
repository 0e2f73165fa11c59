//! The one duration grammar: policy YAML (`cpuBudget`, `breaker.coolDown`),
//! the command line's duration flags and the review's `?timeout=`.
//!
//! It is Go's `time.ParseDuration` format, because `?timeout=` must read
//! whatever the API server sends, and YAML and flags share it so that a
//! value accepted in one place is accepted in all: `10s`, `500ms`, `1m30s`,
//! `1.5s`, units `h`, `m`, `s`, `ms`, `us`/`µs`, `ns`. Not `humantime`: it
//! refuses fractions (`1.5s`), which Go's format allows and existing policy
//! files use. Negative durations and a bare number are refused (a budget or
//! timeout is never negative, and `5` names no unit). The value is computed
//! in whole nanoseconds, as Go does, so `0.1s` is exactly 100 ms.

use std::time::Duration;

/// Text that is not a duration; the message names the text and an example.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration: {problem} (write e.g. 250ms, 1.5s or 1m30s)")]
pub struct DurationError {
    /// The text as given.
    pub text: String,
    problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Problem {
    #[error("it is empty")]
    Empty,
    #[error("expected a number at {0:?}")]
    NoNumber(String),
    #[error("{0:?} has no unit")]
    NoUnit(String),
    #[error("unknown unit {0:?} (use h, m, s, ms, us or ns)")]
    UnknownUnit(String),
    #[error("it is too long")]
    Overflow,
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Parses a Go duration such as `1m30s` (surrounding whitespace ignored).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let fail = |problem| DurationError {
        text: text.to_owned(),
        problem,
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(fail(Problem::Empty));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (number, after) = split_at_first(rest, |c| !(c.is_ascii_digit() || c == '.'));
        let (unit, after) = split_at_first(after, |c| c.is_ascii_digit() || c == '.');
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty() || !digits_ok(fraction) || !digits_ok(whole) {
            return Err(fail(Problem::NoNumber(rest.to_owned())));
        }
        if unit.is_empty() {
            return Err(fail(Problem::NoUnit(number.to_owned())));
        }
        let nanos_per_unit: u128 = match unit {
            "h" => 3600 * NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "s" => NANOS_PER_SECOND,
            "ms" => 1_000_000,
            "us" | "µs" | "μs" => 1_000,
            "ns" => 1,
            _ => return Err(fail(Problem::UnknownUnit(unit.to_owned()))),
        };
        total = total
            .checked_add(component(whole, fraction, nanos_per_unit).ok_or(fail(Problem::Overflow))?)
            .ok_or(fail(Problem::Overflow))?;
        rest = after;
    }
    let seconds = u64::try_from(total / NANOS_PER_SECOND).map_err(|_| fail(Problem::Overflow))?;
    // The remainder is below 10^9, so it fits.
    let nanos = (total % NANOS_PER_SECOND) as u32;
    Ok(Duration::new(seconds, nanos))
}

/// `whole.fraction` units in nanoseconds; digits of the fraction below a
/// nanosecond are dropped, as Go drops them.
fn component(whole: &str, fraction: &str, nanos_per_unit: u128) -> Option<u128> {
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(nanos_per_unit)?;
    let mut scale = nanos_per_unit;
    for digit in fraction.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        nanos = nanos.checked_add(u128::from(digit - b'0') * scale)?;
    }
    Some(nanos)
}

/// Splits before the first character matching `at` (or at the end).
fn split_at_first(text: &str, at: impl Fn(char) -> bool) -> (&str, &str) {
    text.split_at(text.find(at).unwrap_or(text.len()))
}

/// `#[serde(with = "crate::duration::text")]`: a duration field written in
/// this grammar.
pub mod text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de::Error};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (text, millis) in [
            // From the `?timeout=` and flag parser.
            ("10s", 10_000),
            ("500ms", 500),
            ("1m30s", 90_000),
            ("1.5s", 1_500),
            ("1h", 3_600_000),
            ("250000us", 250),
            ("250000µs", 250),
            ("250000000ns", 250),
            // From the YAML parser.
            ("250ms", 250),
            ("2s", 2000),
            ("1m", 60_000),
            ("0.5ms", 0),
            (" 2s ", 2000),
            // Newly accepted in YAML.
            ("5h", 18_000_000),
            (".5s", 500),
        ] {
            assert_eq!(parse(text).map(|d| d.as_millis()), Ok(millis), "{text}");
        }
        assert_eq!(parse("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("1.0000000001s"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn non_durations_are_refused() {
        for bad in [
            "",
            "10",
            "5",
            "s",
            "ms",
            "ten",
            "10x",
            "-1s",
            "1..5s",
            "1.2.3s",
            "s5",
            ".s",
            "1s5",
            "99999999999999999999h",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn errors_name_the_text_the_problem_and_an_example() {
        let message = parse("5d").unwrap_err().to_string();
        assert!(message.contains("\"5d\""), "{message}");
        assert!(message.contains("unknown unit \"d\""), "{message}");
        assert!(message.contains("1m30s"), "{message}");
        let message = parse("5").unwrap_err().to_string();
        assert!(message.contains("has no unit"), "{message}");
    }
}
