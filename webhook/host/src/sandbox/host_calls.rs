//! The two imports a guest may use: `tollgate.lookup` and `tollgate.log`.

use std::time::Instant;

use std::sync::Arc;

use tollgate_context::{AllowList, Answer, LookupQuery};
use tollgate_sdk::wire::{LogLevel, LookupResult};
use wasmtime::{Caller, Engine, Linker, Trap};

use super::abi::IMPORT_MODULE;
use super::instance::{EvalState, GuestFault, MAX_LOG_LINE, MAX_LOG_LINES, guest_slice};

pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<EvalState>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap(IMPORT_MODULE, "lookup", lookup)?;
    linker.func_wrap(IMPORT_MODULE, "log", log)?;
    Ok(linker)
}

/// Serves a lookup from the cluster context if the policy's allow-list
/// covers it; refusals and failures are answered to the guest as
/// `{"error": ...}` (refusals also logged), so the rule decides what to do.
fn lookup(mut caller: Caller<'_, EvalState>, ptr: i32, len: i32) -> wasmtime::Result<i64> {
    // Lookups run inside the evaluation's deadline like guest code.
    if Instant::now() >= caller.data().deadline() {
        return Err(Trap::Interrupt.into());
    }
    let memory = caller.data().memory.ok_or(GuestFault::Unbound)?;
    let parsed = {
        let query = guest_slice(memory.data(&caller), ptr as u32, len as u32, "lookup query")?;
        serde_json::from_slice::<LookupQuery>(query)
    };
    let answer = parsed
        .map_err(|e| format!("malformed lookup query: {e}"))
        .and_then(|query| answer(caller.data(), &query));
    match answer {
        // Framed around the shared answer as it is copied into the guest,
        // so a large answer is copied once.
        Ok(objects) => write_answer(&mut caller, &[LookupResult::OBJECTS_PREFIX, &objects, b"}"]),
        Err(message) => write_answer(&mut caller, &[&error_answer(&message)]),
    }
}

/// The objects `query` selects, or why the guest gets none.
fn answer(state: &EvalState, query: &LookupQuery) -> Result<Answer, String> {
    let asking = asking(state, query)?;
    if let Err(refusal) = asking.check(query) {
        tracing::warn!(
            policy = %asking.policy,
            query = %serde_json::to_string(query).unwrap_or_default(),
            "lookup refused: {refusal}"
        );
        return Err(refusal.to_string());
    }
    // The member index is addressing, not part of the query.
    let query = LookupQuery {
        rule: None,
        ..query.clone()
    };
    state.context().lookup(&query).map_err(|e| e.to_string())
}

/// The allow-list of the policy asking. An ABI v2 query names the asking
/// member of the bundle (`"rule": <index>`), so each member reads exactly
/// what its own policy grants (SPEC §2.2); a v1 module runs one policy.
fn asking<'s>(state: &'s EvalState, query: &LookupQuery) -> Result<&'s AllowList, String> {
    let lists = state.allow();
    let refuse = |why: String| {
        tracing::warn!(
            policy = %policies(lists),
            query = %serde_json::to_string(query).unwrap_or_default(),
            "lookup refused: {why}"
        );
        why
    };
    match (state.per_rule(), query.rule) {
        (false, None) => lists
            .first()
            .map(|list| &**list)
            .ok_or_else(|| refuse("no policy is evaluating".to_owned())),
        (false, Some(_)) => Err(refuse("an ABI v1 lookup has no \"rule\" member".to_owned())),
        (true, None) => Err(refuse(
            "an ABI v2 lookup must name the asking rule (\"rule\": its index in the bundle)"
                .to_owned(),
        )),
        (true, Some(index)) => lists
            .get(index as usize)
            .map(|list| &**list)
            .ok_or_else(|| {
                refuse(format!(
                    "rule index {index} is outside the bundle of {} (policies {})",
                    lists.len(),
                    policies(lists)
                ))
            }),
    }
}

/// The policy ids of an evaluation, for logs and refusals.
fn policies(lists: &[Arc<AllowList>]) -> String {
    let ids: Vec<&str> = lists.iter().map(|l| l.policy.as_str()).collect();
    ids.join(", ")
}

fn error_answer(message: &str) -> Vec<u8> {
    let result = LookupResult {
        objects: None,
        error: Some(message.to_owned()),
    };
    serde_json::to_vec(&result).unwrap_or_else(|_| br#"{"error":"lookup failed"}"#.to_vec())
}

/// Writes the concatenation of `parts` into a buffer from the guest's
/// `tollgate_alloc` and returns it packed.
fn write_answer(caller: &mut Caller<'_, EvalState>, parts: &[&[u8]]) -> wasmtime::Result<i64> {
    let (memory, alloc) = match (caller.data().memory, caller.data().alloc.clone()) {
        (Some(memory), Some(alloc)) => (memory, alloc),
        _ => return Err(GuestFault::Unbound.into()),
    };
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(total).map_err(|_| GuestFault::AllocFailed(total))?;
    let ptr = alloc.call(&mut *caller, len as i32)? as u32;
    if ptr == 0 {
        return Err(GuestFault::AllocFailed(total).into());
    }
    let size = memory.data_size(&*caller);
    let out_of_bounds = GuestFault::OutOfBounds {
        what: "tollgate_alloc result",
        ptr,
        len,
        size,
    };
    let buffer = memory
        .data_mut(&mut *caller)
        .get_mut(ptr as usize..ptr as usize + total)
        .ok_or(out_of_bounds)?;
    let mut at = 0;
    for part in parts {
        buffer[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Ok((((ptr as u64) << 32) | len as u64) as i64)
}

/// Forwards a guest log line to `tracing` with the policy id: at most
/// [`MAX_LOG_LINES`] lines of [`MAX_LOG_LINE`] bytes per evaluation, so a
/// chatty guest cannot flood the logs. The last error line is kept for the
/// failure message whatever the count.
fn log(mut caller: Caller<'_, EvalState>, level: i32, ptr: i32, len: i32) -> wasmtime::Result<()> {
    let level = LogLevel::from_i32(level).unwrap_or(LogLevel::Info);
    let state = caller.data();
    if state.log_lines >= MAX_LOG_LINES && level != LogLevel::Error {
        return Ok(());
    }
    let memory = state.memory.ok_or(GuestFault::Unbound)?;
    let bytes = guest_slice(memory.data(&caller), ptr as u32, len as u32, "log line")?;
    let line = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_LOG_LINE)]).into_owned();
    let state = caller.data_mut();
    if state.log_lines < MAX_LOG_LINES {
        state.log_lines += 1;
        let policy = policies(state.allow());
        match level {
            LogLevel::Error => tracing::error!(policy = %policy, "guest: {line}"),
            LogLevel::Warn => tracing::warn!(policy = %policy, "guest: {line}"),
            LogLevel::Info => tracing::info!(policy = %policy, "guest: {line}"),
            LogLevel::Debug => tracing::debug!(policy = %policy, "guest: {line}"),
        }
    }
    if level == LogLevel::Error {
        state.last_error = Some(line);
    }
    Ok(())
}
