//! The ABI's packed answer (`policies-wasm/ABI.md`): one `i64` holding an
//! address in guest memory and a length, `address << 32 | length`. Every
//! export answers so (`export`) and the `lookup` import is answered so
//! (`cluster`); the two halves of the encoding live together here.

/// Leaks `bytes` and packs their address and length for the host.
#[cfg(target_arch = "wasm32")]
pub fn pack(bytes: Vec<u8>) -> i64 {
    let bytes = bytes.leak();
    (((bytes.as_ptr() as u64) << 32) | bytes.len() as u64) as i64
}

/// # Safety
/// `packed` must describe memory this instance handed out and never frees.
#[cfg(target_arch = "wasm32")]
pub unsafe fn take_packed(packed: u64) -> &'static [u8] {
    let (ptr, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
    if len == 0 {
        return &[];
    }
    // SAFETY: per the function's contract.
    unsafe { std::slice::from_raw_parts(ptr as *const u8, len) }
}
