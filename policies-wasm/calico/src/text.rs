//! Message helpers: warnings must fit the host's 256-character cut after it
//! prefixes the policy id (~35 characters), so rules keep them within
//! [`WARNING_MAX`].

/// The longest warning (or warn-mode violation message) a rule returns.
pub const WARNING_MAX: usize = 210;

/// `a, b, c and 2 more`: at most `max` names, for messages that must stay short.
pub fn list(names: &[String], max: usize) -> String {
    let shown = names.len().min(max.max(1));
    let mut out = names[..shown].join(", ");
    if names.len() > shown {
        out.push_str(&format!(" and {} more", names.len() - shown));
    }
    out
}

/// Cuts `text` to at most `max` characters, ending in `…` when cut.
pub fn clip(mut text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let end = text
        .char_indices()
        .nth(max.saturating_sub(1))
        .map_or(text.len(), |(i, _)| i);
    text.truncate(end);
    text.push('…');
    text
}

/// `1 replica`, `3 replicas`.
pub fn replicas(n: i64) -> String {
    if n == 1 {
        "1 replica".into()
    } else {
        format!("{n} replicas")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_capped() {
        let names: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(list(&names, 2), "a, b and 2 more");
        assert_eq!(list(&names, 10), "a, b, c, d");
        assert_eq!(list(&[], 3), "");
    }

    #[test]
    fn clipping_respects_characters() {
        assert_eq!(clip("abc".into(), 3), "abc");
        assert_eq!(clip("abcdef".into(), 4), "abc…");
        assert_eq!(clip("ééééé".into(), 3).chars().count(), 3);
        assert_eq!(replicas(1), "1 replica");
        assert_eq!(replicas(0), "0 replicas");
    }
}
