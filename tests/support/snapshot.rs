//! Cluster snapshot directories (`--cluster-snapshot DIR`) written at test
//! time, and the built-in pack served against them.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Launch, Server};

/// A snapshot directory being filled.
pub struct Snapshot {
    dir: PathBuf,
    files: usize,
}

impl Snapshot {
    /// Writes `objects`, one JSON file each, named after kind and name so a
    /// failing load is easy to read.
    pub fn objects(&mut self, objects: impl IntoIterator<Item = Value>) -> &mut Self {
        for object in objects {
            let name = format!(
                "{:03}-{}-{}.json",
                self.files,
                object["kind"].as_str().unwrap_or("object").to_lowercase(),
                object["metadata"]["name"].as_str().unwrap_or("unnamed"),
            );
            let text = serde_json::to_string_pretty(&object).expect("JSON");
            self.file(&name, &text);
        }
        self
    }

    /// Writes a file as given (a published manifest, a bad document).
    pub fn file(&mut self, name: &str, text: &str) -> &mut Self {
        std::fs::write(self.dir.join(name), text).expect("write snapshot file");
        self.files += 1;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Launch {
    /// `serve --cluster-snapshot DIR` (the built-in pack unless `--policies`
    /// follows), with `DIR` under the test directory filled by `fill`.
    pub fn snapshot(self, fill: impl FnOnce(&mut Snapshot)) -> Self {
        let dir = self.dir().join("snapshot");
        std::fs::create_dir_all(&dir).expect("snapshot dir");
        fill(&mut Snapshot {
            dir: dir.clone(),
            files: 0,
        });
        self.arg("serve")
            .arg("--cluster-snapshot")
            .arg(dir.display().to_string())
            .shared_module_cache()
    }
}

/// The built-in pack with its default configuration, reading `objects`.
pub fn serve_snapshot(objects: impl IntoIterator<Item = Value>) -> Server {
    Launch::new()
        .snapshot(|s| {
            s.objects(objects);
        })
        .start()
}
