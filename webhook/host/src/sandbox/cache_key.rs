//! The key that authenticates compiled-module cache entries, and the
//! ownership checks of the directories involved.
//!
//! A cache entry is machine code: whoever can make `Module::deserialize`
//! read their bytes runs code in the server. So every entry carries an
//! HMAC-SHA256 over the module's digest, the engine's compatibility hash and
//! the compiled bytes, under a key that never lives in the cache directory:
//! it is kept in the state directory (`module-cache.key`, mode 0600, in a
//! directory only this user can write), so that write access to the cache
//! alone (a shared or mis-permissioned volume, a copied cache) cannot plant
//! or swap code. Without a usable state directory the key is made for this
//! process only: its own entries still serve its reloads, and entries of
//! earlier processes fail the check and are compiled again (a slower start,
//! never a wrong one).

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The key file's name in the state directory.
pub const KEY_FILE: &str = "module-cache.key";

const KEY_BYTES: usize = 32;

/// What each entry starts with: a format tag, then the 32-byte HMAC.
const MAGIC: &[u8; 8] = b"TGCWASM1";
const TAG_BYTES: usize = 32;

/// The cache's secret key.
#[derive(Clone)]
pub struct CacheKey {
    key: [u8; KEY_BYTES],
    /// Where it is kept; `None` for a key of this process only.
    pub file: Option<PathBuf>,
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheKey")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl CacheKey {
    /// The key in `state_dir` (created when absent), else one for this
    /// process (logged with the reason). `None` only when no random bytes
    /// can be had, which turns the disk cache off.
    pub fn resolve(state_dir: Option<&Path>, cache_dir: &Path) -> Option<Self> {
        let kept = match state_dir {
            Some(dir) if same_dir(dir, cache_dir) => {
                Err("the state directory is the cache directory".to_owned())
            }
            Some(dir) => Self::in_dir(dir).map_err(|e| format!("{}: {e}", dir.display())),
            None => Err("no state directory".to_owned()),
        };
        match kept {
            Ok(key) => Some(key),
            Err(reason) => {
                tracing::warn!(
                    reason,
                    "no stored module cache key; using one for this process (cached modules of earlier runs are compiled again)"
                );
                match Self::for_process() {
                    Ok(key) => Some(key),
                    Err(error) => {
                        tracing::warn!(%error, "no random bytes for a module cache key; the disk cache is off");
                        None
                    }
                }
            }
        }
    }

    /// A random key kept by nobody.
    pub fn for_process() -> std::io::Result<Self> {
        Ok(Self {
            key: random()?,
            file: None,
        })
    }

    /// The key in `dir/module-cache.key`, created (0600, directory 0700)
    /// when absent. Refused when the directory or the file could be written
    /// (or the file read) by another user.
    pub fn in_dir(dir: &Path) -> std::io::Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        private_dir(dir).map_err(std::io::Error::other)?;
        let path = dir.join(KEY_FILE);
        if !path.exists() {
            create_key_file(dir, &path)?;
        }
        let mut file = std::fs::File::open(&path)?;
        let meta = file.metadata()?;
        if meta.uid() != euid() || meta.mode() & 0o077 != 0 {
            return Err(std::io::Error::other(format!(
                "{} must belong to this user with mode 0600 (it has uid {} and mode {:o})",
                path.display(),
                meta.uid(),
                meta.mode() & 0o777
            )));
        }
        let mut key = [0u8; KEY_BYTES];
        file.read_exact(&mut key)?;
        Ok(Self {
            key,
            file: Some(path),
        })
    }

    fn mac(&self, digest: &[u8; 32], engine: &[u8; 32]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(digest);
        mac.update(engine);
        mac
    }

    /// The entry to write for `compiled`, the code of the module with
    /// `digest` under the engine with compatibility hash `engine`.
    pub fn seal(&self, digest: &[u8; 32], engine: &[u8; 32], compiled: &[u8]) -> Vec<u8> {
        let mut mac = self.mac(digest, engine);
        mac.update(compiled);
        let tag = mac.finalize().into_bytes();
        let mut entry = Vec::with_capacity(MAGIC.len() + TAG_BYTES + compiled.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(&tag);
        entry.extend_from_slice(compiled);
        entry
    }

    /// The compiled bytes of `entry` if it was sealed with this key for
    /// this module and engine (compared in constant time), else `None`.
    pub fn open<'e>(
        &self,
        digest: &[u8; 32],
        engine: &[u8; 32],
        entry: &'e [u8],
    ) -> Option<&'e [u8]> {
        let rest = entry.strip_prefix(MAGIC.as_slice())?;
        let (tag, compiled) = rest.split_at_checked(TAG_BYTES)?;
        let mut mac = self.mac(digest, engine);
        mac.update(compiled);
        mac.verify_slice(tag).ok()?;
        Some(compiled)
    }
}

/// `Ok` when only this user can write `dir`: it belongs to the effective
/// user and has no group or other write bit. Else why not.
pub fn private_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| e.to_string())?;
    if meta.uid() != euid() {
        return Err(format!(
            "it belongs to uid {}, not to this user ({})",
            meta.uid(),
            euid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "its mode {:o} lets others write it",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| {
        std::fs::canonicalize(p)
            .unwrap_or_else(|_| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
    };
    canonical(a) == canonical(b)
}

/// Writes a new key next to `path` and links it into place, so a reader
/// never sees a partial key and two processes starting together agree on
/// one (the second link fails and it reads the first's).
fn create_key_file(dir: &Path, path: &Path) -> std::io::Result<()> {
    let temp = dir.join(format!(".{KEY_FILE}.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)?;
    let written = file
        .write_all(&random()?)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

fn random() -> std::io::Result<[u8; KEY_BYTES]> {
    let mut key = [0u8; KEY_BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const DIGEST: [u8; 32] = [1; 32];
    const ENGINE: [u8; 32] = [2; 32];

    #[test]
    fn an_entry_opens_only_for_its_module_engine_and_key() {
        let key = CacheKey::for_process().unwrap();
        let entry = key.seal(&DIGEST, &ENGINE, b"code");
        assert_eq!(key.open(&DIGEST, &ENGINE, &entry), Some(&b"code"[..]));
        assert_eq!(
            key.open(&[3; 32], &ENGINE, &entry),
            None,
            "another module's name"
        );
        assert_eq!(key.open(&DIGEST, &[3; 32], &entry), None, "another engine");
        let other = CacheKey::for_process().unwrap();
        assert_eq!(other.open(&DIGEST, &ENGINE, &entry), None, "another key");
        for cut in [0, 4, MAGIC.len() + 5, entry.len() - 1] {
            assert_eq!(
                key.open(&DIGEST, &ENGINE, &entry[..cut]),
                None,
                "cut at {cut}"
            );
        }
        let mut flipped = entry.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(key.open(&DIGEST, &ENGINE, &flipped), None);
    }

    #[test]
    fn the_stored_key_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = CacheKey::in_dir(&state).unwrap();
        let meta = std::fs::metadata(state.join(KEY_FILE)).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
        let second = CacheKey::in_dir(&state).unwrap();
        assert_eq!(first.key, second.key);

        std::fs::set_permissions(state.join(KEY_FILE), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let error = CacheKey::in_dir(&state).unwrap_err().to_string();
        assert!(error.contains("mode 0600"), "{error}");
        std::fs::set_permissions(state.join(KEY_FILE), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = CacheKey::in_dir(&state).unwrap_err().to_string();
        assert!(error.contains("lets others write"), "{error}");
    }

    #[test]
    fn a_key_never_lives_in_the_cache_directory() {
        let dir = tempfile::tempdir().unwrap();
        let key = CacheKey::resolve(Some(dir.path()), dir.path()).unwrap();
        assert!(key.file.is_none());
        assert!(!dir.path().join(KEY_FILE).exists());
        let key = CacheKey::resolve(None, dir.path()).unwrap();
        assert!(key.file.is_none());
        let kept =
            CacheKey::resolve(Some(&dir.path().join("state")), &dir.path().join("cache")).unwrap();
        assert_eq!(kept.file, Some(dir.path().join("state").join(KEY_FILE)));
    }

    #[test]
    fn private_directories() {
        let dir = tempfile::tempdir().unwrap();
        for (mode, private) in [
            (0o700, true),
            (0o755, true),
            (0o775, false),
            (0o757, false),
            (0o1777, false),
        ] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(private_dir(dir.path()).is_ok(), private, "{mode:o}");
        }
        assert!(private_dir(&dir.path().join("absent")).is_err());
        // Another user's directory (root's, unless the tests run as root).
        if euid() != 0 {
            let error = private_dir(Path::new("/")).unwrap_err();
            assert!(error.contains("belongs to uid 0"), "{error}");
        }
    }
}
