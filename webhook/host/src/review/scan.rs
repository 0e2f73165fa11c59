//! The one pass over a review's body. It checks that the body is JSON and,
//! on the way, finds the envelope's members, the request's members as raw
//! spans, the shape verdict (duplicate keys, nesting) and the strip plan's
//! cuts: no serde dispatch per value, no string unescaping, no allocation
//! per object.
//!
//! Why by hand: serde_json would validate the body in one pass, but the
//! shape needs a second (serde hands out a raw slice only by reading it
//! again), and the two passes were a third of a review's CPU. This reader
//! vouches only for what it is sure of (plain JSON, no duplicate key, no
//! deep nesting, no key spelled with a `\u` or `\/` escape, no surrogate
//! escape, no number serde could refuse) and returns `None` for anything
//! else. The caller then reads the body with serde, which gives the
//! authoritative verdict and an error with its position. The `review_parse`
//! fuzz target checks that the two readings agree.

use std::ops::Range;

use super::envelope::{Body, Request};
use super::shape::{MAX_DEPTH, Shape};
use super::strip::Strip;
use crate::json::{CutPlan, Cuts, Member, ObjectCuts, unquote};

/// The body read in one pass; `None` when serde must decide (see the module
/// comment).
pub(super) fn body(text: &str) -> Option<Body<'_>> {
    let mut scan = Scan::new(text);
    scan.skip_ws();
    if scan.byte()? != b'{' {
        return None;
    }
    let (mut api_version, mut kind, mut request) = (None, None, None);
    let mut more = scan.open(b'}')?;
    while more {
        let (_, key) = scan.key(0)?;
        match key {
            "apiVersion" => api_version = Some(scan.text()?),
            "kind" => kind = Some(scan.text()?),
            "request" => {
                let start = scan.at;
                if scan.byte()? != b'{' {
                    return None;
                }
                // The flag is the request's, whatever the envelope spells.
                scan.plain_text = true;
                scan.object(Some(Strip::Request), 0)?;
                // An empty request (refused: it has no uid) is left to
                // serde, whose reading spells it `{}` whatever its spaces.
                if scan.members.is_empty() {
                    return None;
                }
                request = Some((start..scan.at, scan.plain_text));
            }
            _ => scan.value(None, 0)?,
        }
        more = scan.next(b'}')?;
    }
    scan.skip_ws();
    if scan.at != text.len() {
        return None;
    }
    let request = request.map(|(span, plain_text): (Range<usize>, bool)| {
        // The cuts are where they are in the body; the plan's are in the request.
        let cuts = scan.cuts.into_ranges();
        Request {
            text: &text[span.clone()],
            members: scan.members,
            shape: Some(Shape {
                cuts: cuts
                    .into_iter()
                    .map(|cut| cut.start - span.start..cut.end - span.start)
                    .collect(),
                plain_text,
            }),
        }
    });
    Some(Body {
        api_version,
        kind,
        request,
    })
}

/// The shape of `request` alone (read by serde as part of a body the one
/// pass left); `None` when serde's walk must decide.
pub(super) fn request(request: &str) -> Option<Shape> {
    let mut scan = Scan::new(request);
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
    /// the whole body instead of one per object.
    keys: Vec<&'t str>,
    /// The request's members, raw (key with its quotes, value).
    members: Vec<(&'t str, &'t str)>,
    cuts: Cuts<'t>,
    /// No string so far had a `\u` or `\/` escape.
    plain_text: bool,
}

impl<'t> Scan<'t> {
    fn new(text: &'t str) -> Self {
        Scan {
            text,
            at: 0,
            keys: Vec::new(),
            members: Vec::new(),
            cuts: Cuts::new(text),
            plain_text: true,
        }
    }

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
                let token = &rest[..len];
                (matches!(token, b"true" | b"false" | b"null") || plain_number(token)).then_some(())
            }
        }
    }

    /// The string value at `at`, unescaped.
    fn text(&mut self) -> Option<std::borrow::Cow<'t, str>> {
        let start = self.at;
        if self.byte()? != b'"' {
            return None;
        }
        self.string()?;
        unquote(&self.text[start..self.at]).ok()
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
            // The escaped character is never a quote that ends the string.
            from = i + match *bytes.get(i + 1)? {
                b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                b'/' => {
                    canonical = false;
                    2
                }
                b'u' => {
                    let hex = bytes.get(i + 2..i + 6)?;
                    // A surrogate half: serde decides whether it is paired.
                    let surrogate = matches!(
                        hex,
                        [b'd' | b'D', b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F', ..]
                    );
                    if surrogate || !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    canonical = false;
                    6
                }
                _ => return None,
            };
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

    /// A member's key, up to its `:` and the whitespace after it: where it
    /// starts, and as spelled between its quotes. Refused when the object
    /// (whose keys are those from `first_key` on) has it already, or when
    /// it has another spelling: keys are compared as spelled, which is as
    /// unescaped when the spelling is the only one; serde's walk unescapes
    /// the others. (A key with escapes is never one the strip plan names.)
    fn key(&mut self, first_key: usize) -> Option<(usize, &'t str)> {
        self.skip_ws();
        let start = self.at;
        if self.byte()? != b'"' {
            return None;
        }
        let (key, canonical) = self.string()?;
        if !canonical || self.keys[first_key..].contains(&key) {
            return None;
        }
        self.keys.push(key);
        self.skip_ws();
        if self.byte()? != b':' {
            return None;
        }
        self.at += 1;
        self.skip_ws();
        Some((start, key))
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
            let (key_start, key) = self.key(first_key)?;
            let value_start = self.at;
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
            if plan == Some(Strip::Request) {
                self.members.push((
                    &self.text[key_start..key_start + key.len() + 2],
                    &self.text[value_start..self.at],
                ));
            }
            more = self.next(b'}')?;
        }
        object.finish(&mut self.cuts);
        self.keys.truncate(first_key);
        Some(())
    }
}

/// Whether `token` is a JSON number that serde reads without doubt: serde
/// refuses one out of f64's range (1e400, or 400 digits), so any with an
/// exponent or of many digits is left to it.
fn plain_number(token: &[u8]) -> bool {
    let digits = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
    let unsigned = token.strip_prefix(b"-").unwrap_or(token);
    let (int, fraction) = match unsigned.iter().position(|&b| b == b'.') {
        Some(dot) => (&unsigned[..dot], Some(&unsigned[dot + 1..])),
        None => (unsigned, None),
    };
    token.len() <= MAX_PLAIN_NUMBER
        && digits(int)
        && (int[0] != b'0' || int.len() == 1)
        && fraction.is_none_or(digits)
}

/// Where the first `"` or `\\` of `bytes` is; `None` also when a control
/// character, which a JSON string may not hold, comes before it. Most
/// strings are short (keys, names, images): eight bytes at a time find
/// their end before a vector search would have started; long ones
/// (annotations) go to `memchr`.
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    /// The high bit of each byte of `x` below `n` (at most 0x80); a false
    /// one only above a true one, so the lowest is right.
    fn below(x: u64, n: u8) -> u64 {
        x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH
    }
    let control = |b: u8| b < 0x20;
    for (n, chunk) in bytes.chunks_exact(8).take(8).enumerate() {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let found = below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1)
            | below(word, 0x20);
        if found != 0 {
            let at = n * 8 + found.trailing_zeros() as usize / 8;
            return (!control(bytes[at])).then_some(at);
        }
    }
    let from = (bytes.len() / 8).min(8) * 8;
    let rest = &bytes[from..];
    let at = memchr::memchr2(b'"', b'\\', rest)?;
    // Without an early exit, so that it runs a vector at a time.
    let controls = rest[..at].iter().fold(false, |any, &b| any | control(b));
    (!controls).then_some(from + at)
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use tollgate_testkit::corpus::captured_files;

    use super::body as one_pass;
    use super::*;
    use crate::review::one_pass_agrees as paths_agree;

    /// Whatever the scan vouches for, serde's walk accepts with the same cuts.
    fn agrees(text: &str) -> Option<Vec<Range<usize>>> {
        let fast = request(text).map(|shape| shape.cuts);
        if let Some(cuts) = &fast {
            let slow = super::super::shape::by_serde(text).map(|shape| shape.cuts);
            assert_eq!(slow.ok().as_ref(), Some(cuts), "{text}");
        }
        fast
    }

    /// A review whose request has `member` (`"key":value`) after its uid.
    fn review_with(member: &str) -> String {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u",{member}}}}}"#
        )
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
            // A control character before the end: no string (and none
            // after it counts).
            for control in [0x00, 0x0a, 0x1f] {
                let mut text = vec![b'a'; len];
                text.push(control);
                text.push(b'"');
                assert_eq!(quote_or_backslash(&text), None, "{len} {control}");
                text.insert(0, b'"');
                assert_eq!(quote_or_backslash(&text), Some(0), "{len} {control}");
            }
            // Bytes at and above 0x20, UTF-8 included, are text.
            let text = format!("{}é\u{7f} ~\"", "b".repeat(len));
            assert_eq!(quote_or_backslash(text.as_bytes()), Some(text.len() - 1));
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
            assert!(paths_agree(&review_with(&request[1..request.len() - 1])));
        }
    }

    /// Real reviews take the one pass, as captured (pretty-printed), compact
    /// or with their request pretty-printed.
    #[test]
    fn vouches_for_every_captured_review() {
        for (file, text) in captured_files() {
            let review: serde_json::Value = serde_json::from_str(&text).unwrap();
            let request = &review["request"];
            for (body, request) in [
                (text.clone(), request.to_string()),
                (
                    review.to_string(),
                    serde_json::to_string_pretty(request).unwrap(),
                ),
            ] {
                assert!(one_pass(&body).is_some(), "{file}");
                assert!(paths_agree(&body), "{file}");
                assert!(agrees(&request).is_some(), "{file}");
            }
        }
    }

    /// The one pass is the only check that a body is JSON: it refuses
    /// everything serde refuses, and takes what it reads as serde does.
    #[test]
    fn refuses_what_is_not_json() {
        for value in [
            "",
            "01",
            "-",
            "-01",
            "1.",
            ".5",
            "1.e2",
            "+1",
            "0x1",
            "1 2",
            "tru",
            "nul",
            "True",
            "NaN",
            "\"\t\"",
            "\"a\nb\"",
            "\"\u{1}\"",
            r#""\x""#,
            r#""\u12""#,
            r#""\u12g4""#,
            r#""\"#,
            "\"abc",
            "[1,]",
            "[,1]",
            "[1 2]",
            "[",
            "{",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{a:1}"#,
            "{'a':1}",
            r#"{"a" 1}"#,
            "\u{a0}1",
            "1\u{c}",
        ] {
            let body = review_with(&format!(r#""x":{value}"#));
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(&body).is_err(),
                "{value}"
            );
            assert!(one_pass(&body).is_none(), "{value:?}");
            assert!(paths_agree(&body));
        }
        let good = review_with(r#""x":1"#);
        for body in [
            format!("{good} 1"),
            format!("{good},"),
            good.replacen('{', "{,", 1),
            good.replacen(':', " ", 1),
            good[..good.len() - 1].to_owned(),
        ] {
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(&body).is_err(),
                "{body}"
            );
            assert!(one_pass(&body).is_none(), "{body}");
        }
        for value in [
            "0",
            "-0",
            "0.5",
            "-12.25",
            "10",
            "123456789012345678901234567890",
            "true",
            "false",
            "null",
            r#""\b\f\n\r\t\"\\""#,
            r#""\u00e9\u20AC""#,
            "\"é €\u{7f}\"",
            "[]",
            "[[]]",
            r#"{"":1}"#,
            " \t\n\r1 \t\n\r",
        ] {
            let body = review_with(&format!(r#""x":{value}"#));
            assert!(one_pass(&body).is_some(), "{value:?}");
            assert!(paths_agree(&body), "{value:?}");
        }
    }

    /// What the envelope holds beyond the plain case is read by serde.
    #[test]
    fn leaves_odd_envelopes_to_serde() {
        let envelope = |members: &str| format!(r#"{{{members},"request":{{"uid":"u"}}}}"#);
        assert!(one_pass(&envelope(r#""kind":"AdmissionReview","apiVersion":"v""#)).is_some());
        for body in [
            envelope(r#""kind":"AdmissionReview","kind":"AdmissionReview""#),
            envelope(r#""kind":null"#),
            envelope(r#""apiVersion":1"#),
            envelope(r#""kin\u0064":"AdmissionReview""#),
            envelope(r#""x":{"a":1,"a":2}"#),
            r#"{"request":{}}"#.to_owned(),
            r#"{"request":[]}"#.to_owned(),
            r#"{"request":null}"#.to_owned(),
            format!("[{}]", envelope(r#""kind":"AdmissionReview""#)),
        ] {
            assert!(one_pass(&body).is_none(), "{body}");
            assert!(paths_agree(&body), "{body}");
        }
        // Escapes in the envelope's strings are decoded.
        let body = envelope(r#""kind":"Admission\u0052eview""#);
        assert_eq!(
            one_pass(&body).unwrap().kind.as_deref(),
            Some("AdmissionReview")
        );
    }

    #[test]
    fn leaves_to_serde_what_it_does_not_vouch_for() {
        let deep = |n: usize| format!(r#"{{"a":{}{}}}"#, "[".repeat(n), "]".repeat(n));
        assert!(agrees(&deep(MAX_DEPTH - 1)).is_some());
        for text in [
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
            assert!(request(&text).is_none(), "{text}");
            let body = review_with(&text[1..text.len() - 1]);
            assert!(one_pass(&body).is_none(), "{text}");
            assert!(paths_agree(&body), "{text}");
        }
        // Escaped keys in their only spelling (managedFields' `k:{"name":…}`).
        assert!(agrees(r#"{"k:{\"a\"}":1,"k:{\"b\"}":{"k:{\"a\"}":2},"\\\n":3}"#).is_some());
        assert!(request(r#"{"k:{\"a\"}":1,"k:{\"a\"}":2}"#).is_none());
        // Only `\u` and `\/` can spell a text otherwise: a plain search
        // misses it.
        for (text, plain) in [
            (r#"{"a":"x\"y\\z\n"}"#, true),
            (r#"{"a":["\u0078"]}"#, false),
            (r#"{"a":{"b":"x\/y"}}"#, false),
        ] {
            assert_eq!(request(text).unwrap().plain_text, plain, "{text}");
            let body = review_with(&text[1..text.len() - 1]);
            let read = one_pass(&body).unwrap().request.unwrap();
            assert_eq!(read.shape.unwrap().plain_text, plain, "{text}");
            // Escapes in the envelope are not the request's.
            let body = body.replacen("AdmissionReview", r"Admission\u0052eview", 1);
            let read = one_pass(&body).unwrap().request.unwrap();
            assert_eq!(read.shape.unwrap().plain_text, plain, "{text}");
            assert!(paths_agree(&body));
            let body = format!(r#"{}, "x":"\/"}}"#, &body[..body.len() - 1]);
            let read = one_pass(&body).unwrap().request.unwrap();
            assert_eq!(read.shape.unwrap().plain_text, plain, "{text}");
            assert!(paths_agree(&body));
        }
        // The same key in sibling and nested objects is no duplicate.
        assert!(agrees(r#"{"a":{"a":1},"b":{"a":2},"c":[{"a":1},{"a":1}]}"#).is_some());
    }

    /// The request's members and cuts are where they are in the request,
    /// whatever comes before it in the body.
    #[test]
    fn reads_the_request_where_it_is_in_the_body() {
        let request =
            r#"{ "uid": "u", "object": {"metadata": {"managedFields": [1], "name": "x"}} }"#;
        let body = format!(
            r#"{{"kind":"AdmissionReview", "x": [{{"managedFields":1}}], "request": {request}, "apiVersion":"v"}}"#
        );
        let read = one_pass(&body).unwrap();
        let read = read.request.unwrap();
        assert_eq!(read.text, request);
        assert_eq!(
            read.members,
            [
                (r#""uid""#, r#""u""#),
                (
                    r#""object""#,
                    r#"{"metadata": {"managedFields": [1], "name": "x"}}"#
                )
            ]
        );
        assert_eq!(read.shape.unwrap().cuts, agrees(request).unwrap());
    }
}
