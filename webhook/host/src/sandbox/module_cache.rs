//! Compiled modules on disk, so a restart does not recompile.
//!
//! An entry is named by the module's sha256 and a hash of everything that
//! makes compiled code compatible with this engine
//! ([`wasmtime::Engine::precompile_compatibility_hash`]: wasmtime's version,
//! the target and the compilation settings). Any change of either is a
//! different file; stale files are simply never read again.
//!
//! Entries are machine code, so each is sealed with an HMAC under a key
//! kept outside the cache directory (`cache_key`), and a directory another
//! user can write is not used at all: whoever can write the cache cannot
//! choose the code the server runs.

use std::hash::Hasher;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use super::ModuleError;
use super::cache_key::private_dir;
use super::engine::Shared;
use super::stats::SandboxStats;

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

    /// Counts one module loaded from here.
    pub fn count(self, stats: &SandboxStats) {
        match self {
            Self::Compiled => &stats.compiled,
            Self::DiskCache => &stats.from_disk_cache,
            Self::Memory => &stats.from_memory,
        }
        .inc();
    }
}

pub fn digest(wasm: &[u8]) -> [u8; 32] {
    Sha256::digest(wasm).into()
}

/// Why a cache entry was not used (counted in [`super::SandboxStats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The entry failed its HMAC check: forged, swapped with another
    /// module's, truncated, or sealed with another key.
    Unauthenticated,
    /// Another user can write the cache directory: not read, not written.
    UnsafeDirectory,
}

impl Rejected {
    /// Counts one cache entry or directory not used for this reason.
    fn count(self, stats: &SandboxStats) {
        match self {
            Self::Unauthenticated => &stats.cache_unauthenticated,
            Self::UnsafeDirectory => &stats.cache_unsafe_directory,
        }
        .inc();
    }
}

/// Compiles `wasm`, or deserialises it from the cache directory when the
/// entry there is authentic (see `cache_key`).
pub fn load_or_compile(
    shared: &Shared,
    wasm: &[u8],
    digest: &[u8; 32],
) -> Result<(Module, Origin), ModuleError> {
    let engine = &shared.engine;
    let (Some(dir), Some(key)) = (shared.limits.cache_dir.as_deref(), &shared.cache_key) else {
        return Ok((compile(engine, wasm)?, Origin::Compiled));
    };
    let engine_hash = engine_hash(engine);
    let path = entry_path(engine, dir, digest);
    if dir.exists()
        && let Err(reason) = private_dir(dir)
    {
        tracing::warn!(
            dir = %dir.display(),
            reason,
            "the module cache directory is not this user's alone; compiling without it (make it 0700 or pass another --cache-dir)"
        );
        Rejected::UnsafeDirectory.count(&shared.stats);
        return Ok((compile(engine, wasm)?, Origin::Compiled));
    }
    if let Ok(entry) = std::fs::read(&path) {
        match key.open(digest, &engine_hash, &entry) {
            // SAFETY: `deserialize` trusts the bytes to be wasmtime's own
            // output, as it loads them as executable code. They are: the
            // HMAC proves this process (or an earlier one holding the key,
            // which never lives in the cache directory) wrote exactly these
            // bytes for exactly this module and engine, and it was checked
            // on this in-memory copy, which is what is deserialised. wasmtime
            // additionally checks the header and version; anything it
            // rejects is recompiled and overwritten below.
            //
            // The file is read into memory rather than mapped with
            // `deserialize_file`: a mapped entry truncated or rewritten in
            // place by anyone would crash the process with SIGBUS on the
            // next evaluation, or change the code after its check; a copy
            // cannot.
            #[allow(unsafe_code)]
            Some(compiled) => match unsafe { Module::deserialize(engine, compiled) } {
                Ok(module) => return Ok((module, Origin::DiskCache)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unusable module cache entry; recompiling")
                }
            },
            None => {
                tracing::warn!(
                    path = %path.display(),
                    "module cache entry fails its authentication (forged, swapped, truncated, or written under another key); not loading it, recompiling"
                );
                Rejected::Unauthenticated.count(&shared.stats);
            }
        }
    }
    let module = compile(engine, wasm)?;
    if let Err(e) = store(&module, &path, |bytes| {
        key.seal(digest, &engine_hash, bytes)
    }) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the module cache");
    }
    Ok((module, Origin::Compiled))
}

fn compile(engine: &Engine, wasm: &[u8]) -> Result<Module, ModuleError> {
    Module::from_binary(engine, wasm).map_err(|e| ModuleError::Compile(format!("{e:#}")))
}

/// `<dir>/<module sha256>-<engine hash>.cwasm`.
pub fn entry_path(engine: &Engine, dir: &Path, digest: &[u8; 32]) -> PathBuf {
    let engine_hash = engine_hash(engine);
    dir.join(format!(
        "{}-{}.cwasm",
        hex::encode(digest),
        hex::encode(&engine_hash[..16])
    ))
}

/// SHA-256 of the engine's compatibility hash: wasmtime's version, the
/// target and the compilation settings.
fn engine_hash(engine: &Engine) -> [u8; 32] {
    let mut hasher = Sha256Hasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hasher.0.finalize().into()
}

fn store(module: &Module, path: &Path, seal: impl FnOnce(&[u8]) -> Vec<u8>) -> std::io::Result<()> {
    let bytes = seal(&module.serialize().map_err(std::io::Error::other)?);
    let dir = path.parent().unwrap_or(Path::new("."));
    // Only this user may write the cache (checked before every read).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // A fresh file next to the final entry (same filesystem, so the rename
    // is atomic; readers never see a partial entry). Dropped on an error,
    // which removes it.
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(&bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
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
