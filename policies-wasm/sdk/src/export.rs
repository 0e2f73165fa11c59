//! The thin Wasm boundary: the rule table behind [`export_rules!`] and the
//! raw exports of `policies-wasm/ABI.md`.

use crate::cluster::Cluster;
use crate::request::Request;
use crate::settings::Settings;
use crate::verdict::Verdict;
use crate::wire::SettingsCheck;

/// The signature of a rule.
pub type RuleFn<S> = fn(&Request<'_>, &S, &dyn Cluster) -> Verdict;

type CheckFn = Box<dyn Fn(&[u8]) -> Result<(), String>>;
type EvalFn = Box<dyn Fn(&[u8], &[u8], &dyn Cluster) -> Result<Verdict, String>>;

/// One exported rule with its settings type erased, so a module can bundle
/// rules with different settings behind one `tollgate_evaluate`.
pub struct RuleEntry {
    pub name: &'static str,
    pub mutating: bool,
    check: CheckFn,
    eval: EvalFn,
}

impl RuleEntry {
    pub fn new<S: Settings + 'static>(name: &'static str, mutating: bool, rule: RuleFn<S>) -> Self {
        Self {
            name,
            mutating,
            check: Box::new(|settings| parse_settings::<S>(settings).map(drop)),
            eval: Box::new(move |request, settings, cluster| {
                let settings = parse_settings::<S>(settings)?;
                let request: Request<'_> = serde_json::from_slice(request)
                    .map_err(|e| format!("cannot read the admission request: {e}"))?;
                Ok(rule(&request, &settings, cluster))
            }),
        }
    }

    /// Checks settings as the host does at load time.
    pub fn check_settings(&self, settings_json: &[u8]) -> SettingsCheck {
        match (self.check)(settings_json) {
            Ok(()) => SettingsCheck {
                valid: true,
                message: None,
            },
            Err(message) => SettingsCheck {
                valid: false,
                message: Some(message),
            },
        }
    }

    /// Evaluates the rule on a JSON admission request, exactly as the Wasm
    /// export does; an unreadable request or settings is an `Err`.
    pub fn evaluate(
        &self,
        request_json: &[u8],
        settings_json: &[u8],
        cluster: &dyn Cluster,
    ) -> Result<Verdict, String> {
        (self.eval)(request_json, settings_json, cluster)
    }
}

fn parse_settings<S: Settings>(json: &[u8]) -> Result<S, String> {
    let json = if json.is_empty() {
        b"{}".as_slice()
    } else {
        json
    };
    let settings: S = serde_json::from_slice(json).map_err(|e| format!("settings: {e}"))?;
    settings.validate().map_err(|e| format!("settings: {e}"))?;
    Ok(settings)
}

/// Exports rules from a policy crate.
///
/// ```
/// use tollgate_sdk::{Cluster, NoSettings, Request, Verdict};
///
/// fn allow_all(_: &Request<'_>, _: &NoSettings, _: &dyn Cluster) -> Verdict {
///     Verdict::allow()
/// }
///
/// tollgate_sdk::export_rules! {
///     "allow-all" => allow_all,
/// }
///
/// let rules = rules();
/// assert_eq!(rules[0].name, "allow-all");
/// assert!(!rules[0].mutating);
/// let verdict = rules[0].evaluate(br#"{"uid":"1"}"#, b"{}", &tollgate_sdk::NoCluster).unwrap();
/// assert!(verdict.allowed);
/// ```
///
/// Natively this defines `pub fn rules() -> Vec<RuleEntry>` for tests; on
/// wasm32 it also defines the exports of `policies-wasm/ABI.md`.
#[macro_export]
macro_rules! export_rules {
    ($($name:literal $(($mutating:ident))? => $rule:path),* $(,)?) => {
        /// Every rule this crate exports, in declaration order.
        pub fn rules() -> ::std::vec::Vec<$crate::RuleEntry> {
            ::std::vec![$($crate::RuleEntry::new(
                $name,
                $crate::export_rules!(@mutating $($mutating)?),
                $rule,
            )),*]
        }

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
                $crate::__private::describe(&super::rules())
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn tollgate_validate_settings(
                rule_ptr: i32, rule_len: i32, settings_ptr: i32, settings_len: i32,
            ) -> i64 {
                // SAFETY: the host wrote these ranges through `tollgate_alloc`.
                unsafe {
                    $crate::__private::validate_settings(
                        &super::rules(), rule_ptr, rule_len, settings_ptr, settings_len,
                    )
                }
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn tollgate_evaluate(
                rule_ptr: i32, rule_len: i32, request_ptr: i32, request_len: i32,
                settings_ptr: i32, settings_len: i32,
            ) -> i64 {
                // SAFETY: the host wrote these ranges through `tollgate_alloc`.
                unsafe {
                    $crate::__private::evaluate(
                        &super::rules(), rule_ptr, rule_len, request_ptr, request_len,
                        settings_ptr, settings_len,
                    )
                }
            }
        }
    };
    (@mutating mutating) => { true };
    (@mutating) => { false };
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use super::RuleEntry;
    use crate::wire::{Description, RuleInfo, SettingsCheck};

    /// Sends panic messages to the host log, so a failure verdict can say
    /// why the guest trapped instead of just "unreachable".
    fn install_panic_hook() {
        std::panic::set_hook(Box::new(|info| {
            crate::log::error(&format!("panic: {info}"))
        }));
    }

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

    /// Leaks `bytes` and packs their address and length for the host.
    fn pack(bytes: Vec<u8>) -> i64 {
        let bytes = bytes.leak();
        (((bytes.as_ptr() as u64) << 32) | bytes.len() as u64) as i64
    }

    /// # Safety
    /// `packed` must describe memory this instance handed out and never frees.
    pub unsafe fn take_packed(packed: u64) -> &'static [u8] {
        let (ptr, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
        if len == 0 {
            return &[];
        }
        // SAFETY: per the function's contract.
        unsafe { std::slice::from_raw_parts(ptr as *const u8, len) }
    }

    unsafe fn bytes<'a>(ptr: i32, len: i32) -> &'a [u8] {
        if len <= 0 {
            return &[];
        }
        // SAFETY: the host wrote `len` bytes at `ptr` through `tollgate_alloc`.
        unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }
    }

    fn json(value: &impl serde::Serialize) -> i64 {
        pack(serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()))
    }

    fn find<'r>(rules: &'r [RuleEntry], name: &[u8]) -> Result<&'r RuleEntry, String> {
        rules
            .iter()
            .find(|r| r.name.as_bytes() == name)
            .ok_or_else(|| {
                format!(
                    "this module has no rule {:?}",
                    String::from_utf8_lossy(name)
                )
            })
    }

    pub fn describe(rules: &[RuleEntry]) -> i64 {
        json(&Description {
            abi: crate::ABI_VERSION,
            rules: rules
                .iter()
                .map(|r| RuleInfo {
                    name: r.name.to_owned(),
                    mutating: r.mutating,
                })
                .collect(),
        })
    }

    /// # Safety
    /// The pointer/length pairs must be ranges the host wrote.
    pub unsafe fn validate_settings(
        rules: &[RuleEntry],
        rp: i32,
        rl: i32,
        sp: i32,
        sl: i32,
    ) -> i64 {
        // SAFETY: per the function's contract.
        let (rule, settings) = unsafe { (bytes(rp, rl), bytes(sp, sl)) };
        json(&match find(rules, rule) {
            Ok(rule) => rule.check_settings(settings),
            Err(message) => SettingsCheck {
                valid: false,
                message: Some(message),
            },
        })
    }

    /// # Safety
    /// The pointer/length pairs must be ranges the host wrote.
    pub unsafe fn evaluate(
        rules: &[RuleEntry],
        rp: i32,
        rl: i32,
        qp: i32,
        ql: i32,
        sp: i32,
        sl: i32,
    ) -> i64 {
        // SAFETY: per the function's contract.
        let (rule, request, settings) = unsafe { (bytes(rp, rl), bytes(qp, ql), bytes(sp, sl)) };
        install_panic_hook();
        let verdict = find(rules, rule)
            .and_then(|rule| rule.evaluate(request, settings, &crate::cluster::HostCluster));
        match verdict {
            Ok(verdict) => json(&verdict),
            // A request the rule cannot read is a policy failure, not a
            // verdict: the host maps the trap to the policy's failurePolicy.
            Err(e) => panic!("{e}"),
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub use wasm::*;
