//! What an evaluation yields, whatever runs it: the ABI version a guest
//! speaks, its output decoded into verdicts ([`decode_verdicts`]), and why an
//! evaluation produced no verdict ([`EvalError`]). Apart from the sandbox so
//! that the decoder and the outcome logic build without wasmtime.

use tollgate_sdk::Verdict;
use tollgate_sdk::wire::Verdicts;

/// The guest ABI versions this host speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbiVersion {
    /// One rule per `tollgate_evaluate` call (and per instance).
    V1,
    /// A list of rules per `tollgate_evaluate` call: every rule of one
    /// module that a review enters, in one instance, the request parsed once.
    V2,
}

impl AbiVersion {
    /// Every version, oldest first (for messages).
    pub const ALL: [Self; 2] = [Self::V1, Self::V2];

    pub fn from_number(number: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.number() == number)
    }

    pub fn number(self) -> i32 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }
}

/// Decodes what a module's `tollgate_evaluate` returned for `rules` rules:
/// one verdict (ABI v1) or `{"verdicts": [...]}` with exactly one verdict
/// per rule (v2); a patch only on a denial. The guest's bytes are untrusted
/// (a broken or hostile module writes anything), so every departure from the
/// ABI is an [`EvalError::Output`]. Public for the fuzz target that feeds it
/// arbitrary bytes.
pub fn decode_verdicts(
    abi: AbiVersion,
    bytes: &[u8],
    rules: usize,
) -> Result<Vec<Verdict>, EvalError> {
    let verdicts = match abi {
        AbiVersion::V1 => {
            let verdict: Verdict = serde_json::from_slice(bytes)
                .map_err(|e| EvalError::Output(format!("not a verdict: {e}")))?;
            vec![verdict]
        }
        AbiVersion::V2 => {
            let Verdicts { verdicts } = serde_json::from_slice(bytes)
                .map_err(|e| EvalError::Output(format!("not a list of verdicts: {e}")))?;
            verdicts
        }
    };
    if verdicts.len() != rules {
        return Err(EvalError::Output(format!(
            "returned {} verdicts for {rules} rules",
            verdicts.len()
        )));
    }
    if verdicts.iter().any(|v| v.allowed && v.patch.is_some()) {
        return Err(EvalError::Output(
            "a patch is only valid with allowed: false".to_owned(),
        ));
    }
    Ok(verdicts)
}

/// Why an evaluation produced no verdict; becomes the policy's failure verdict.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EvalError {
    /// Used up its CPU budget (the policy's `timeout`, CPU time of this
    /// evaluation's thread).
    #[error("exceeded its CPU budget of {0:?}")]
    CpuBudget(std::time::Duration),
    /// The review's deadline had passed before the evaluation could start
    /// (queued behind other reviews, behind the policies evaluated before
    /// it, or, for a policy whose guests run long, waiting for a turn on a
    /// CPU).
    #[error("deadline already passed before the evaluation started")]
    NotStarted,
    /// Every one of the policy's concurrent evaluation slots stayed busy
    /// until the review's deadline (its share of the pool: a spinning
    /// policy saturates only its own share).
    #[error("all {0} of its concurrent evaluation slots were busy until the review deadline")]
    Overloaded(u32),
    /// The sandbox's instance pool had no free slot (wasmtime's
    /// `PoolConcurrencyLimitError`): the host admitted more evaluations
    /// than the pool holds, never the guest's doing.
    #[error("no free sandbox instance: {0}")]
    Pool(String),
    /// The policy's circuit breaker is open: it kept failing at its
    /// deadline, so it is not run again until the cool-down ends.
    #[error("{0}")]
    Breaker(String),
    /// Still running when the review's deadline came: the review was
    /// answered without this verdict.
    #[error("no verdict before the review deadline")]
    Unfinished,
    /// `--max-queued-reviews` reviews were already waiting for an
    /// evaluation slot: refused at once rather than queued.
    #[error("{0} reviews were already waiting for an evaluation slot")]
    QueueFull(u32),
    /// The server was shutting down and its grace period ended first.
    #[error("the server is shutting down and its grace period ended before a verdict")]
    ShuttingDown,
    /// The evaluating thread ended without a verdict (a host bug, never the
    /// guest's doing: guest faults are traps).
    #[error("evaluation aborted")]
    Aborted,
    /// Stopped after a whole tick of CPU time on a thread that must not
    /// hold a long guest (see [`crate::Budget::hand_off`]). Never a
    /// verdict: the caller evaluates the review again where guests may run
    /// long.
    #[error("handed off after a tick: evaluated again on an evaluation thread")]
    HandedOff,
    #[error("exceeded its memory cap of {0} bytes")]
    Memory(usize),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("returned unusable output: {0}")]
    Output(String),
}

/// The metric label of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCause {
    Deadline,
    /// The policy's own concurrency share was full.
    Overload,
    /// The sandbox's instance pool was exhausted.
    Pool,
    /// The policy's circuit breaker was open.
    Breaker,
    Memory,
    Trap,
    Output,
}

impl FailureCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deadline => "deadline",
            Self::Overload => "overload",
            Self::Pool => "pool",
            Self::Breaker => "breaker",
            Self::Memory => "memory",
            Self::Trap => "trap",
            Self::Output => "output",
        }
    }
}

impl EvalError {
    /// The guest was running when a bound stopped it (its CPU budget or the
    /// review's deadline): what a circuit breaker counts.
    pub fn overran(&self) -> bool {
        matches!(self, Self::CpuBudget(_) | Self::Unfinished)
    }

    pub fn cause(&self) -> FailureCause {
        match self {
            Self::CpuBudget(_) | Self::NotStarted | Self::Unfinished | Self::ShuttingDown => {
                FailureCause::Deadline
            }
            Self::Overloaded(_) | Self::QueueFull(_) => FailureCause::Overload,
            Self::Pool(_) => FailureCause::Pool,
            Self::Breaker(_) => FailureCause::Breaker,
            Self::Aborted | Self::HandedOff => FailureCause::Trap,
            Self::Memory(_) => FailureCause::Memory,
            Self::Trap(_) => FailureCause::Trap,
            Self::Output(_) => FailureCause::Output,
        }
    }
}
