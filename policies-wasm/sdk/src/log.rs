//! Logging through the host (`log` import); on native targets to stderr.

use crate::wire::LogLevel;

pub fn error(message: &str) {
    emit(LogLevel::Error, message)
}
pub fn warn(message: &str) {
    emit(LogLevel::Warn, message)
}
pub fn info(message: &str) {
    emit(LogLevel::Info, message)
}
pub fn debug(message: &str) {
    emit(LogLevel::Debug, message)
}

#[cfg(target_arch = "wasm32")]
fn emit(level: LogLevel, message: &str) {
    #[link(wasm_import_module = "tollgate")]
    unsafe extern "C" {
        fn log(level: i32, ptr: *const u8, len: usize);
    }
    // SAFETY: the host reads `len` bytes at `ptr`, which `message` owns.
    unsafe { log(level as i32, message.as_ptr(), message.len()) }
}

#[cfg(not(target_arch = "wasm32"))]
fn emit(level: LogLevel, message: &str) {
    eprintln!("[{level:?}] {message}");
}
