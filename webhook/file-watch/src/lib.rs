//! Watching files for changes, for hot reloads (policies, modules,
//! certificates).
//!
//! The parent directories are watched rather than the files: editors and
//! Kubernetes volume updates replace files by renaming (a Secret mount swaps
//! its `..data` symlink), which a watch on the old inode would miss.

#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a watch cannot be set up (the platform's file notification API).
pub use notify::Error;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long a burst of events must be quiet before reacting to it: a file
/// written in several steps is reloaded once, complete.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// A set of watched files, signalling (debounced) when any of them changes.
pub struct FileWatch {
    watcher: notify::RecommendedWatcher,
    files: Arc<Mutex<HashSet<PathBuf>>>,
    dirs: HashSet<PathBuf>,
    events: mpsc::Receiver<()>,
}

impl FileWatch {
    pub fn new() -> Result<Self, Error> {
        let files = Arc::new(Mutex::new(HashSet::<PathBuf>::new()));
        let (tx, events) = mpsc::channel(1);
        let relevant = files.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if event.kind.is_access() {
                return;
            }
            let files = relevant.lock().expect("watch set lock");
            if event.paths.iter().any(|p| is_relevant(&files, p)) {
                // A full channel already holds a pending signal.
                let _ = tx.try_send(());
            }
        })?;
        Ok(Self {
            watcher,
            files,
            dirs: HashSet::new(),
            events,
        })
    }

    /// Replaces the watched files (a reloaded configuration may name
    /// different modules).
    pub fn set_files(&mut self, files: impl IntoIterator<Item = PathBuf>) -> Result<(), Error> {
        let files: HashSet<PathBuf> = files.into_iter().map(|f| absolute(&f)).collect();
        for file in &files {
            let dir = file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| "/".into());
            if !self.dirs.contains(&dir) {
                self.watcher.watch(&dir, RecursiveMode::NonRecursive)?;
                self.dirs.insert(dir);
            }
        }
        *self.files.lock().expect("watch set lock") = files;
        Ok(())
    }

    /// Waits for a change to settle. Returns `None` when watching stopped.
    pub async fn changed(&mut self) -> Option<()> {
        self.events.recv().await?;
        // Swallow the rest of the burst.
        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, self.events.recv()).await {}
        Some(())
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A watched file itself, or a Kubernetes atomic-writer entry (`..data`,
/// `..2024_01_01...`) next to one.
fn is_relevant(files: &HashSet<PathBuf>, path: &Path) -> bool {
    if files.contains(path) {
        return true;
    }
    let atomic_writer = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(".."));
    atomic_writer && files.iter().any(|f| f.parent() == path.parent())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signals_a_change_to_a_watched_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let watched = dir.path().join("policies.yaml");
        std::fs::write(&watched, "a").unwrap();
        let mut watch = FileWatch::new().unwrap();
        watch.set_files([watched.clone()]).unwrap();

        std::fs::write(dir.path().join("unrelated"), "x").unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(400), watch.changed()).await;
        assert!(quiet.is_err(), "an unrelated file must not signal");

        // Replaced by rename, like an editor or kubectl would.
        let tmp = dir.path().join("policies.yaml.tmp");
        std::fs::write(&tmp, "b").unwrap();
        std::fs::rename(&tmp, &watched).unwrap();
        let changed = tokio::time::timeout(Duration::from_secs(5), watch.changed()).await;
        assert_eq!(changed.unwrap(), Some(()));
    }
}
