//! The thin Wasm boundary: [`export_rules!`] and the raw exports of ABI v2
//! (`policies-wasm/ABI.md`), which move bytes in and out of [`Rules`].

#[cfg(target_arch = "wasm32")]
use crate::module::Rules;
#[cfg(target_arch = "wasm32")]
use crate::packed::pack;

/// Exports rules from a policy crate.
///
/// Each rule is a plain function `fn(&Request<'_, View>, &Settings, &dyn Cluster) -> Verdict`;
/// the macro reads the view and settings types from its signature.
/// `(mutating)` marks a rule that may answer with a patch.
///
/// ```
/// use tollgate_sdk::{Cluster, NoSettings, Pod, Request, Verdict};
///
/// fn allow_all(_: &Request<'_>, _: &NoSettings, _: &dyn Cluster) -> Verdict {
///     Verdict::allow()
/// }
///
/// fn no_host_network(req: &Request<'_, Pod<'_>>, _: &NoSettings, _: &dyn Cluster) -> Verdict {
///     match &req.object {
///         Some(pod) if pod.spec.host_network => Verdict::deny("hostNetwork is not allowed"),
///         _ => Verdict::allow(),
///     }
/// }
///
/// tollgate_sdk::export_rules! {
///     "allow-all" => allow_all,
///     "no-host-network" => no_host_network,
/// }
///
/// let rules = rules();
/// assert_eq!(rules[0].name, "allow-all");
/// assert!(!rules[1].mutating);
/// let request = br#"{"uid": "1", "object": {"spec": {"hostNetwork": true}}}"#;
/// let bundle = br#"[{"rule": "no-host-network"}, {"rule": "allow-all", "settings": {}}]"#;
/// let verdicts = rules.evaluate(request, bundle, &tollgate_sdk::NoCluster).unwrap().verdicts;
/// assert!(!verdicts[0].allowed && verdicts[1].allowed);
/// ```
///
/// It defines `pub fn rules() -> tollgate_sdk::Rules` (the natively testable
/// rule table: [`Rules::evaluate`](crate::Rules::evaluate) is exactly what
/// the Wasm export runs) and, on wasm32, the exports of
/// `policies-wasm/ABI.md`.
#[macro_export]
macro_rules! export_rules {
    ($($name:literal $(($mutating:ident))? => $rule:path),* $(,)?) => {
        /// Every rule this crate exports, in declaration order.
        pub fn rules() -> $crate::Rules {
            static RULES: &[$crate::RuleEntry] = &[$(
                $crate::RuleEntry::new(
                    $name,
                    $crate::export_rules!(@mutating $($mutating)?),
                    // The view and settings types are inferred from the
                    // rule's signature at this call.
                    |request, settings, cluster| {
                        let settings = $crate::__private::parse_settings(settings)?;
                        match request {
                            ::core::option::Option::Some(request) => ::core::result::Result::Ok(
                                ::core::option::Option::Some($rule(request.view()?, &settings, cluster)),
                            ),
                            ::core::option::Option::None => ::core::result::Result::Ok(::core::option::Option::None),
                        }
                    },
                )
            ),*];
            $crate::Rules::new(RULES)
        }

        // SAFETY (`no_mangle`): these are the ABI's export names
        // (`policies-wasm/ABI.md`), defined once per module: a crate has one
        // `export_rules!`, and nothing else defines `tollgate_*` symbols.
        #[cfg(target_arch = "wasm32")]
        mod __tollgate_exports {
            #[unsafe(no_mangle)]
            pub extern "C" fn tollgate_abi_version() -> i32 {
                $crate::ABI_VERSION
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn tollgate_alloc(len: i32) -> i32 {
                $crate::__private::alloc(len)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn tollgate_describe() -> i64 {
                $crate::__private::describe(super::rules())
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn tollgate_validate_settings(
                rule_ptr: i32, rule_len: i32, settings_ptr: i32, settings_len: i32,
            ) -> i64 {
                // SAFETY: the host wrote these ranges through `tollgate_alloc`.
                unsafe {
                    $crate::__private::validate_settings(
                        super::rules(), rule_ptr, rule_len, settings_ptr, settings_len,
                    )
                }
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn tollgate_evaluate(
                request_ptr: i32, request_len: i32, rules_ptr: i32, rules_len: i32,
            ) -> i64 {
                // SAFETY: the host wrote these ranges through `tollgate_alloc`.
                unsafe {
                    $crate::__private::evaluate(
                        super::rules(), request_ptr, request_len, rules_ptr, rules_len,
                    )
                }
            }
        }
    };
    (@mutating mutating) => { true };
    (@mutating) => { false };
}

/// Sends panic messages to the host log, so a failure verdict can say why
/// the guest trapped instead of just "unreachable".
#[cfg(target_arch = "wasm32")]
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.payload_as_str().unwrap_or("a rule panicked");
        match info.location() {
            Some(at) => crate::log::error(&format!("panic: {message} (at {at})")),
            None => crate::log::error(&format!("panic: {message}")),
        }
    }));
}

#[cfg(target_arch = "wasm32")]
pub fn alloc(len: i32) -> i32 {
    let Ok(len) = usize::try_from(len) else {
        return 0;
    };
    let mut buf = Vec::<u8>::with_capacity(len);
    let ptr = buf.as_mut_ptr();
    // Each evaluation is a fresh instance: handed-out memory is never freed.
    std::mem::forget(buf);
    ptr as i32
}

/// # Safety
/// The host wrote `len` bytes at `ptr` through `tollgate_alloc`; they live as
/// long as the instance.
#[cfg(target_arch = "wasm32")]
unsafe fn bytes(ptr: i32, len: i32) -> &'static [u8] {
    if len <= 0 {
        return &[];
    }
    // SAFETY: per the function's contract.
    unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }
}

#[cfg(target_arch = "wasm32")]
fn json(value: &impl serde::Serialize) -> i64 {
    match serde_json::to_vec(value) {
        Ok(bytes) => pack(bytes),
        Err(e) => panic!("cannot write the answer: {e}"),
    }
}

#[cfg(target_arch = "wasm32")]
pub fn describe(rules: Rules) -> i64 {
    json(&rules.describe())
}

/// # Safety
/// The pointer/length pairs must be ranges the host wrote.
#[cfg(target_arch = "wasm32")]
pub unsafe fn validate_settings(rules: Rules, rp: i32, rl: i32, sp: i32, sl: i32) -> i64 {
    // SAFETY: per the function's contract.
    let (rule, settings) = unsafe { (bytes(rp, rl), bytes(sp, sl)) };
    json(&rules.check_settings(rule, settings))
}

/// # Safety
/// The pointer/length pairs must be ranges the host wrote.
#[cfg(target_arch = "wasm32")]
pub unsafe fn evaluate(rules: Rules, qp: i32, ql: i32, rp: i32, rl: i32) -> i64 {
    // SAFETY: per the function's contract.
    let (request, calls) = unsafe { (bytes(qp, ql), bytes(rp, rl)) };
    install_panic_hook();
    match rules.evaluate(request, calls, &crate::cluster::HostCluster) {
        Ok(verdicts) => json(&verdicts),
        // Not a verdict: the whole call fails, and the host re-runs each
        // rule alone so one rule's failure never changes another's verdict.
        Err(e) => {
            crate::log::error(&format!("panic: {e}"));
            core::arch::wasm32::unreachable()
        }
    }
}
