//! Hostile and probing guests for the host's tests, written against the raw
//! ABI (`policies-wasm/ABI.md`) without the SDK: plain exported functions,
//! byte buffers and hand-written JSON, as an author in any language would.
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
//! - `counter`: counts evaluations in a global and warns `count=N`
//!
//! `tollgate_validate_settings` refuses settings containing
//! `"invalid":true` and unknown rules.
//!
//! Everything is gated on wasm32 so the crate also builds natively.

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
    ];

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
        1
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
        pack(format!(r#"{{"abi":1,"rules":[{}]}}"#, rules.join(",")).into_bytes())
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

    #[unsafe(no_mangle)]
    pub extern "C" fn tollgate_evaluate(
        rp: i32,
        rl: i32,
        _qp: i32,
        _ql: i32,
        sp: i32,
        sl: i32,
    ) -> i64 {
        // SAFETY: the host wrote these ranges.
        let (rule, settings) = unsafe { (bytes(rp, rl), bytes(sp, sl)) };
        match rule {
            b"allow" => text(r#"{"allowed":true}"#),
            b"deny" => text(r#"{"allowed":false,"message":"denied by the deny rule"}"#),
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
            b"garbage" => pack(vec![
                0xff, 0xfe, b'n', b'o', b't', b' ', b'j', b's', b'o', b'n',
            ]),
            b"out-of-bounds" => {
                let end = core::arch::wasm32::memory_size(0) * 65536;
                (((end as u64 + 16) << 32) | 8) as i64
            }
            b"peek" => peek(settings),
            b"patch" => {
                let mut out = br#"{"allowed":false,"message":"repairable","patch":"#.to_vec();
                out.extend_from_slice(settings);
                out.push(b'}');
                pack(out)
            }
            b"counter" => {
                let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
                pack(format!(r#"{{"allowed":true,"warnings":["count={n}"]}}"#).into_bytes())
            }
            _ => core::arch::wasm32::unreachable(),
        }
    }

    fn peek(query: &[u8]) -> i64 {
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
        pack(out)
    }
}
