//! The shape check's fast path: one byte scan of a request that the
//! envelope pass has already read as valid JSON, finding duplicate keys,
//! deep nesting and the strip plan's cuts without serde's per-value
//! dispatch, string unescaping or per-object allocation.
//!
//! Why two paths: this scan costs a fraction of serde's walk (strings are
//! skipped with `memchr`, keys are compared as raw bytes), which matters on
//! every review, while a request it does not vouch for (a violation, a key
//! with escapes, anything unexpected) is rare and goes to the serde walk,
//! which gives the authoritative verdict and an error with its position.

use super::{MAX_DEPTH, Shape, Strip};
use crate::json::{CutPlan, Cuts, Member, ObjectCuts};

/// The shape of `request` when it is accepted; `None` when it may not be
/// (the caller then asks serde). `request` must be valid JSON.
pub(super) fn scan(request: &str) -> Option<Shape> {
    let mut scan = Scan {
        text: request,
        at: 0,
        keys: Vec::new(),
        cuts: Cuts::new(request),
        plain_text: true,
    };
    scan.value(Some(Strip::Request), 0)?;
    scan.skip_ws();
    (scan.at == request.len()).then(|| Shape {
        cuts: scan.cuts.into_ranges(),
        plain_text: scan.plain_text,
    })
}

/// The longest number token the scan vouches for; f64 reaches 1.8e308.
const MAX_PLAIN_NUMBER: usize = 300;

struct Scan<'t> {
    text: &'t str,
    at: usize,
    /// The keys of every object being read, innermost last: one buffer for
    /// the whole request instead of one per object.
    keys: Vec<&'t str>,
    cuts: Cuts<'t>,
    /// No string so far had a `\u` or `\/` escape.
    plain_text: bool,
}

impl<'t> Scan<'t> {
    fn byte(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.byte(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Skips the value at `at` (after whitespace); `plan` is where it is in
    /// the strip plan, `depth` the containers around it.
    fn value(&mut self, plan: Option<Strip>, depth: usize) -> Option<()> {
        self.skip_ws();
        match self.byte()? {
            b'{' => self.object(plan, depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(drop),
            _ => {
                // A number, true, false or null: it ends at a delimiter.
                let rest = &self.text.as_bytes()[self.at..];
                let len = rest
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                    .unwrap_or(rest.len());
                self.at += len;
                // serde reads numbers as it checks them, and refuses one
                // out of f64's range (1e400, or 400 digits): it decides any
                // that might be.
                let token = &rest[..len];
                let literal = matches!(token, b"true" | b"false" | b"null");
                (literal || (len <= MAX_PLAIN_NUMBER && !token.iter().any(|&b| (b | 0x20) == b'e')))
                    .then_some(())
            }
        }
    }

    /// The string at `at`, raw (as between its quotes), and whether that
    /// spelling is the only one of its text: true unless it has a `\u` or
    /// `\/` escape. (`"`, `\` and control characters can be spelled
    /// otherwise only with `\u`; every other character only as itself.)
    fn string(&mut self) -> Option<(&'t str, bool)> {
        let bytes = self.text.as_bytes();
        let start = self.at + 1;
        let mut from = start;
        let mut canonical = true;
        loop {
            let i = from + quote_or_backslash(&bytes[from..])?;
            if bytes[i] == b'"' {
                self.at = i + 1;
                self.plain_text &= canonical;
                return Some((self.text.get(start..i)?, canonical));
            }
            match bytes.get(i + 1..i + 4)? {
                // A surrogate half: serde decides whether it is paired.
                [b'u', b'd' | b'D', b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F'] => return None,
                [b'u' | b'/', ..] => canonical = false,
                _ => {}
            }
            // The escaped character is never a quote that ends the string.
            from = i + 2;
        }
    }

    fn enter(depth: usize) -> Option<usize> {
        (depth < MAX_DEPTH).then_some(depth + 1)
    }

    /// Steps into the container at `at`; `false` when it is empty (and
    /// already read).
    fn open(&mut self, close: u8) -> Option<bool> {
        self.at += 1;
        self.skip_ws();
        let empty = self.byte()? == close;
        self.at += usize::from(empty);
        Some(!empty)
    }

    /// After a member or element: `true` when another follows.
    fn next(&mut self, close: u8) -> Option<bool> {
        self.skip_ws();
        let byte = self.byte()?;
        self.at += 1;
        match byte {
            b',' => Some(true),
            b if b == close => Some(false),
            _ => None,
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        let depth = Self::enter(depth)?;
        let mut more = self.open(b']')?;
        while more {
            self.value(None, depth)?;
            more = self.next(b']')?;
        }
        Some(())
    }

    fn object(&mut self, plan: Option<Strip>, depth: usize) -> Option<()> {
        let depth = Self::enter(depth)?;
        let first_key = self.keys.len();
        let mut object = ObjectCuts::default();
        let mut more = self.open(b'}')?;
        while more {
            self.skip_ws();
            if self.byte()? != b'"' {
                return None;
            }
            let key_start = self.at;
            // Keys are compared as spelled, which is as unescaped when the
            // spelling is the only one; serde's walk unescapes the others.
            // A key with escapes is never one the strip plan names.
            let (key, canonical) = self.string()?;
            if !canonical {
                return None;
            }
            if self.keys[first_key..].contains(&key) {
                return None;
            }
            self.keys.push(key);
            self.skip_ws();
            if self.byte()? != b':' {
                return None;
            }
            self.at += 1;
            match plan.map(|plan| plan.member(key)) {
                None => self.value(None, depth)?,
                Some(Member::Keep) => {
                    object.keep(&mut self.cuts, key_start);
                    self.value(None, depth)?;
                }
                Some(Member::Cut) => {
                    self.value(None, depth)?;
                    object.cut(&mut self.cuts, key_start, self.at);
                }
                Some(Member::Descend(inner)) => {
                    object.keep(&mut self.cuts, key_start);
                    self.value(Some(inner), depth)?;
                }
            }
            more = self.next(b'}')?;
        }
        object.finish(&mut self.cuts);
        self.keys.truncate(first_key);
        Some(())
    }
}

/// Where the first `"` or `\\` of `bytes` is. Most strings are short (keys,
/// names, images): eight bytes at a time find their end before a vector
/// search would have started; long ones (annotations) go to `memchr`.
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    /// The high bit of each byte of `x` that is zero; a false one only
    /// above a true one, so the lowest is right.
    fn zeros(x: u64) -> u64 {
        x.wrapping_sub(ONES) & !x & HIGH
    }
    for (n, chunk) in bytes.chunks_exact(8).take(8).enumerate() {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let found =
            zeros(word ^ (ONES * u64::from(b'"'))) | zeros(word ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            return Some(n * 8 + found.trailing_zeros() as usize / 8);
        }
    }
    let from = (bytes.len() / 8).min(8) * 8;
    memchr::memchr2(b'"', b'\\', &bytes[from..]).map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::*;

    /// Whatever the scan vouches for, serde's walk accepts with the same cuts.
    fn agrees(request: &str) -> Option<Vec<Range<usize>>> {
        let fast = scan(request).map(|shape| shape.cuts);
        if let Some(cuts) = &fast {
            assert_eq!(
                super::super::by_serde(request).ok().as_ref(),
                Some(cuts),
                "{request}"
            );
        }
        fast
    }

    #[test]
    fn finds_the_end_of_a_string_at_every_offset() {
        for len in 0..80 {
            for end in [b'"', b'\\'] {
                let mut text = vec![b'a'; len];
                assert_eq!(quote_or_backslash(&text), None);
                text.push(end);
                text.extend_from_slice(b"x\"\\");
                assert_eq!(quote_or_backslash(&text), Some(len), "{len}");
                // Bytes that differ from a quote by one bit are no quote.
                text[len.saturating_sub(1)..].fill(b'#');
                text.push(b'"');
                assert_eq!(quote_or_backslash(&text), Some(text.len() - 1), "{len}");
            }
        }
    }

    #[test]
    fn finds_the_cuts_serde_finds() {
        for request in [
            r#"{"uid":"u","object":{"metadata":{"name":"x","managedFields":[{"a":{"b":[]}}]}}}"#,
            r#"{"uid":"u","object":{"metadata":{"managedFields":[],"name":"x"}}}"#,
            r#"{"uid":"u","object":{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"a\":1}"}}}}"#,
            r#"{ "uid" : "u" , "oldObject" : { "metadata" : { "annotations" : { "a" : "b" , "kubectl.kubernetes.io/last-applied-configuration" : "x" } , "managedFields" : null } } }"#,
            r#"{"uid":"u","object":null,"oldObject":[1,{"metadata":{"managedFields":[]}}]}"#,
            r#"{"uid":"u","object":{"metadata":"text"},"n":-1.5,"t":true,"f":false,"z":null}"#,
            "{}",
            "{\n}",
            r#"{"a":[],"b":{},"c":[ ],"d":{ },"e":"\\","f":"\"}"}"#,
        ] {
            assert!(agrees(request).is_some(), "{request}");
        }
    }

    /// Real reviews take the fast path, pretty-printed or not.
    #[test]
    fn vouches_for_every_captured_review() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/reviews");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let review: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let request = &review["request"];
            for text in [
                request.to_string(),
                serde_json::to_string_pretty(request).unwrap(),
            ] {
                assert!(agrees(&text).is_some(), "{}", path.display());
            }
            seen += 1;
        }
        assert!(seen > 10, "{seen} captured reviews");
    }

    #[test]
    fn leaves_to_serde_what_it_does_not_vouch_for() {
        let deep = |n: usize| format!(r#"{{"a":{}{}}}"#, "[".repeat(n), "]".repeat(n));
        assert!(agrees(&deep(MAX_DEPTH - 1)).is_some());
        for request in [
            r#"{"a":1,"a":2}"#.to_owned(),
            r#"{"a":{"b":1,"c":{"b":2},"b":3}}"#.to_owned(),
            r#"{"a\u0062":1}"#.to_owned(),
            r#"{"a\/":1}"#.to_owned(),
            // serde refuses these values where a skim does not.
            r#"{"a":"x\ud800y"}"#.to_owned(),
            r#"{"a":["\uDFFF"]}"#.to_owned(),
            r#"{"a":1e400}"#.to_owned(),
            format!(r#"{{"a":{}}}"#, "9".repeat(400)),
            deep(MAX_DEPTH),
        ] {
            assert!(scan(&request).is_none(), "{request}");
        }
        // Escaped keys in their only spelling (managedFields' `k:{"name":…}`).
        assert!(agrees(r#"{"k:{\"a\"}":1,"k:{\"b\"}":{"k:{\"a\"}":2},"\\\n":3}"#).is_some());
        assert!(scan(r#"{"k:{\"a\"}":1,"k:{\"a\"}":2}"#).is_none());
        // Only `\u` and `\/` can spell a text otherwise: a plain search
        // misses it.
        for (request, plain) in [
            (r#"{"a":"x\"y\\z\n"}"#, true),
            (r#"{"a":["\u0078"]}"#, false),
            (r#"{"a":{"b":"x\/y"}}"#, false),
        ] {
            assert_eq!(scan(request).unwrap().plain_text, plain, "{request}");
        }
        // The same key in sibling and nested objects is no duplicate.
        assert!(agrees(r#"{"a":{"a":1},"b":{"a":2},"c":[{"a":1},{"a":1}]}"#).is_some());
    }
}
