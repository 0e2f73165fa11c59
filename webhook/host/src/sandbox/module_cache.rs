//! Compiled modules on disk, so a restart does not recompile.
//!
//! An entry is named by the module's sha256 and a hash of everything that
//! makes compiled code compatible with this engine
//! ([`wasmtime::Engine::precompile_compatibility_hash`]: wasmtime's version,
//! the target and the compilation settings). Any change of either is a
//! different file; stale files are simply never read again.

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use super::ModuleError;
use super::engine::Shared;

/// Where a module's compiled code came from (counted in [`super::SandboxStats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Compiled from the Wasm bytes now.
    Compiled,
    /// Deserialised from the disk cache.
    DiskCache,
    /// Already loaded by this sandbox (another policy or an earlier set).
    Memory,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compiled => "compiled",
            Self::DiskCache => "disk-cache",
            Self::Memory => "memory",
        }
    }
}

pub fn digest(wasm: &[u8]) -> [u8; 32] {
    Sha256::digest(wasm).into()
}

/// Compiles `wasm`, or deserialises it from the cache directory.
pub fn load_or_compile(
    shared: &Shared,
    wasm: &[u8],
    digest: &[u8; 32],
) -> Result<(Module, Origin), ModuleError> {
    let engine = &shared.engine;
    let Some(path) = shared
        .limits
        .cache_dir
        .as_deref()
        .map(|dir| entry_path(engine, dir, digest))
    else {
        return Ok((compile(engine, wasm)?, Origin::Compiled));
    };
    if let Ok(bytes) = std::fs::read(&path) {
        // SAFETY: `deserialize` trusts the bytes to be wasmtime's own output,
        // as it loads them as executable code. They are: the directory is
        // ours (never shared with guests), the name binds the entry to these
        // exact Wasm bytes (sha256) and to this engine's compatibility hash,
        // and entries are written atomically (temp file + rename), so a crash
        // never leaves a half-written entry under a final name. wasmtime
        // additionally checks the header and version; anything it rejects is
        // recompiled and overwritten below.
        //
        // The file is read into memory rather than mapped with
        // `deserialize_file`: a mapped entry truncated or rewritten in place
        // by anyone (a cache cleaner, an operator) would crash the process
        // with SIGBUS on the next evaluation; a copy cannot.
        match unsafe { Module::deserialize(engine, &bytes) } {
            Ok(module) => return Ok((module, Origin::DiskCache)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unusable module cache entry; recompiling")
            }
        }
    }
    let module = compile(engine, wasm)?;
    if let Err(e) = store(&module, &path) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the module cache");
    }
    Ok((module, Origin::Compiled))
}

fn compile(engine: &Engine, wasm: &[u8]) -> Result<Module, ModuleError> {
    Module::from_binary(engine, wasm).map_err(|e| ModuleError::Compile(format!("{e:#}")))
}

/// `<dir>/<module sha256>-<engine hash>.cwasm`.
pub fn entry_path(engine: &Engine, dir: &Path, digest: &[u8; 32]) -> PathBuf {
    let mut hasher = Sha256Hasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    let engine_hash = hasher.0.finalize();
    dir.join(format!(
        "{}-{}.cwasm",
        hex::encode(digest),
        hex::encode(&engine_hash[..16])
    ))
}

fn store(module: &Module, path: &Path) -> std::io::Result<()> {
    let bytes = module.serialize().map_err(std::io::Error::other)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let (temp, mut file) = tempfile_in(dir)?;
    let written = file
        .write_all(&bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// A fresh file next to the final entry (same filesystem, so the rename is
/// atomic), named uniquely per process and write.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}

/// A [`Hasher`] feeding SHA-256: stable across runs and Rust versions,
/// unlike `DefaultHasher`, so cache names stay valid across restarts.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
    }
}
