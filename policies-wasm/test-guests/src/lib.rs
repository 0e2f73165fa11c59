//! Hostile and probing guests for the host's tests, written against the raw
//! ABI (`policies-wasm/ABI.md`) without the SDK: plain exported functions,
//! byte buffers and hand-written JSON, as an author in any language would.
//!
//! The crate builds as an ABI v1 module, or with feature `abi2` as an ABI v2
//! module (`tollgate_evaluate` takes a list of rules and answers a list of
//! verdicts) with the same rules: `policies-wasm/test-artifacts` embeds both.
//!
//! Rules (all in one module):
//! - `allow`: `{"allowed":true}`
//! - `deny`: a violation
//! - `spin`: loops forever (deadline)
//! - `grow`: grows memory without bound (memory cap)
//! - `panic`: logs `panic: ...` at error level, then traps (`unreachable`)
//! - `garbage`: returns bytes that are not JSON
//! - `out-of-bounds`: returns a pointer past the end of memory
//! - `peek`: looks up the query given as its settings; answers the lookup
//!   result as a warning, or as the deny message when it is an error
//! - `patch` (mutating): a violation repaired by the patch given as settings
//! - `counter`: counts evaluations in a global and warns `count=N` (in a v2
//!   bundle, the rules of one call share the instance, so a second `counter`
//!   in the same bundle warns `count=2`)
//! - `wrong-count`: answers a list of no verdicts (v2: the wrong count; v1:
//!   not a verdict)
//! - `replicas` (mutating, never repairs): warns `replicas=N`, the request's
//!   `object.spec.replicas` (what this rule saw of earlier repairs)
//!
//! `tollgate_validate_settings` refuses settings containing
//! `"invalid":true` and unknown rules.
//!
//! Everything is gated on wasm32 so the crate also builds natively.

// SAFETY (`no_mangle`): the `tollgate_*` exports are the ABI's names
// (`policies-wasm/ABI.md`), each defined once in this module.
#[cfg(target_arch = "wasm32")]
mod guest {
    use core::sync::atomic::{AtomicU32, Ordering};

    #[link(wasm_import_module = "tollgate")]
    unsafe extern "C" {
        fn lookup(ptr: *const u8, len: usize) -> u64;
        fn log(level: i32, ptr: *const u8, len: usize);
    }

    static COUNTER: AtomicU32 = AtomicU32::new(0);

    const RULES: &[(&str, bool)] = &[
        ("allow", false),
        ("deny", false),
        ("spin", false),
        ("grow", false),
        ("panic", false),
        ("garbage", false),
        ("out-of-bounds", false),
        ("peek", false),
        ("patch", true),
        ("counter", false),
        ("wrong-count", false),
        ("replicas", true),
    ];

    /// The version this build speaks.
    const ABI: i32 = if cfg!(feature = "abi2") { 2 } else { 1 };

    /// What one rule answers: its verdict, or something that replaces the
    /// whole call's result (garbage, a pointer out of bounds).
    enum Out {
        Verdict(Vec<u8>),
        Whole(i64),
    }

    /// Hands `bytes` to the host; this instance never frees them.
    fn pack(bytes: Vec<u8>) -> i64 {
        let bytes = bytes.leak();
        (((bytes.as_ptr() as u64) << 32) | bytes.len() as u64) as i64
    }

    fn text(s: &str) -> i64 {
        pack(s.as_bytes().to_vec())
    }

    /// # Safety
    /// The host wrote `len` bytes at `ptr`.
    unsafe fn bytes<'a>(ptr: i32, len: i32) -> &'a [u8] {
        if len <= 0 {
            return &[];
        }
        // SAFETY: per the function's contract.
        unsafe { core::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }
    }

    /// A JSON string literal of `s`.
    fn quote(s: &[u8]) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &b in s {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                0..0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                _ => out.push(b),
            }
        }
        out.push(b'"');
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn tollgate_abi_version() -> i32 {
        ABI
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn tollgate_alloc(len: i32) -> i32 {
        let Ok(len) = usize::try_from(len) else {
            return 0;
        };
        let mut buf = Vec::<u8>::with_capacity(len);
        let ptr = buf.as_mut_ptr();
        core::mem::forget(buf);
        ptr as i32
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn tollgate_describe() -> i64 {
        let rules: Vec<String> = RULES
            .iter()
            .map(|(name, mutating)| format!(r#"{{"name":"{name}","mutating":{mutating}}}"#))
            .collect();
        pack(format!(r#"{{"abi":{ABI},"rules":[{}]}}"#, rules.join(",")).into_bytes())
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn tollgate_validate_settings(rp: i32, rl: i32, sp: i32, sl: i32) -> i64 {
        // SAFETY: the host wrote these ranges.
        let (rule, settings) = unsafe { (bytes(rp, rl), bytes(sp, sl)) };
        if !RULES.iter().any(|(name, _)| name.as_bytes() == rule) {
            let mut out = br#"{"valid":false,"message":"#.to_vec();
            out.extend_from_slice(&quote(&[b"no rule ".as_slice(), rule].concat()));
            out.push(b'}');
            return pack(out);
        }
        if contains(settings, br#""invalid":true"#) {
            return text(r#"{"valid":false,"message":"the settings ask to be refused"}"#);
        }
        text(r#"{"valid":true}"#)
    }

    /// ABI v1: one rule.
    #[cfg(not(feature = "abi2"))]
    #[unsafe(no_mangle)]
    pub extern "C" fn tollgate_evaluate(
        rp: i32,
        rl: i32,
        qp: i32,
        ql: i32,
        sp: i32,
        sl: i32,
    ) -> i64 {
        // SAFETY: the host wrote these ranges.
        let (rule, request, settings) = unsafe { (bytes(rp, rl), bytes(qp, ql), bytes(sp, sl)) };
        match evaluate(rule, request, settings) {
            Out::Verdict(verdict) => pack(verdict),
            Out::Whole(packed) => packed,
        }
    }

    /// ABI v2: `[{"rule": ..., "settings": ...}, ...]` in, `{"verdicts": [...]}` out.
    #[cfg(feature = "abi2")]
    #[unsafe(no_mangle)]
    pub extern "C" fn tollgate_evaluate(qp: i32, ql: i32, rp: i32, rl: i32) -> i64 {
        #[derive(serde::Deserialize)]
        struct Entry<'a> {
            rule: &'a str,
            #[serde(borrow)]
            settings: &'a serde_json::value::RawValue,
        }
        // SAFETY: the host wrote these ranges.
        let (request, rules) = unsafe { (bytes(qp, ql), bytes(rp, rl)) };
        let Ok(entries) = serde_json::from_slice::<Vec<Entry<'_>>>(rules) else {
            core::arch::wasm32::unreachable()
        };
        let mut out = br#"{"verdicts":["#.to_vec();
        for (i, entry) in entries.iter().enumerate() {
            match evaluate(
                entry.rule.as_bytes(),
                request,
                entry.settings.get().as_bytes(),
            ) {
                Out::Verdict(verdict) => {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&verdict);
                }
                Out::Whole(packed) => return packed,
            }
        }
        out.extend_from_slice(b"]}");
        pack(out)
    }

    fn evaluate(rule: &[u8], request: &[u8], settings: &[u8]) -> Out {
        Out::Verdict(match rule {
            b"allow" => br#"{"allowed":true}"#.to_vec(),
            b"deny" => br#"{"allowed":false,"message":"denied by the deny rule"}"#.to_vec(),
            b"spin" => loop {
                core::hint::black_box(());
            },
            b"grow" => loop {
                if core::arch::wasm32::memory_grow(0, 16) == usize::MAX {
                    core::arch::wasm32::unreachable()
                }
            },
            b"panic" => {
                let message = "panic: the panic rule always panics";
                // SAFETY: the host reads `message`, which outlives the call.
                unsafe { log(0, message.as_ptr(), message.len()) };
                core::arch::wasm32::unreachable()
            }
            b"garbage" => {
                return Out::Whole(pack(vec![
                    0xff, 0xfe, b'n', b'o', b't', b' ', b'j', b's', b'o', b'n',
                ]));
            }
            b"out-of-bounds" => {
                let end = core::arch::wasm32::memory_size(0) * 65536;
                return Out::Whole((((end as u64 + 16) << 32) | 8) as i64);
            }
            b"wrong-count" => return Out::Whole(text(r#"{"verdicts":[]}"#)),
            b"peek" => peek(settings),
            b"patch" => {
                let mut out = br#"{"allowed":false,"message":"repairable","patch":"#.to_vec();
                out.extend_from_slice(settings);
                out.push(b'}');
                out
            }
            b"replicas" => {
                let request: serde_json::Value =
                    serde_json::from_slice(request).unwrap_or_default();
                let replicas = &request["object"]["spec"]["replicas"];
                format!(r#"{{"allowed":true,"warnings":["replicas={replicas}"]}}"#).into_bytes()
            }
            b"counter" => {
                let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
                format!(r#"{{"allowed":true,"warnings":["count={n}"]}}"#).into_bytes()
            }
            _ => core::arch::wasm32::unreachable(),
        })
    }

    fn peek(query: &[u8]) -> Vec<u8> {
        // SAFETY: the host reads `query` and writes its answer into memory
        // obtained from `tollgate_alloc`, which is never freed.
        let answer = unsafe {
            let packed = lookup(query.as_ptr(), query.len());
            core::slice::from_raw_parts(
                (packed >> 32) as usize as *const u8,
                (packed & 0xffff_ffff) as usize,
            )
        };
        let mut out = if answer.starts_with(br#"{"error""#) {
            br#"{"allowed":false,"message":"#.to_vec()
        } else {
            br#"{"allowed":true,"warnings":["#.to_vec()
        };
        out.extend_from_slice(&quote(answer));
        if !answer.starts_with(br#"{"error""#) {
            out.push(b']');
        }
        out.push(b'}');
        out
    }
}
