//! Finding and loading scenarios from `runtime-configs/`.

use crate::workspace;
use arbor_config::{Scenario, parse_scenario};
use std::path::{Path, PathBuf};

/// The scenario `cargo arbor run` boots when given none.
pub const DEFAULT: &str = "hello";

/// A scenario read from disk.
pub struct LoadedScenario {
    /// The file name without `.ron`.
    pub name: String,
    /// The file's text, packed into the boot archive as the `config` module.
    pub text: String,
    /// The parsed scenario.
    pub scenario: Scenario,
}

/// The directory holding the project's scenarios.
pub fn directory() -> PathBuf {
    workspace::root().join("runtime-configs")
}

/// Resolves `name_or_path`: an existing path, or a name in `runtime-configs/`.
pub fn locate(name_or_path: &str) -> Result<PathBuf, String> {
    let path = Path::new(name_or_path);
    if path.extension().is_some_and(|e| e == "ron") || path.components().count() > 1 {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!("no scenario file at {}", path.display()))
        };
    }
    let candidate = directory().join(format!("{name_or_path}.ron"));
    if candidate.is_file() {
        return Ok(candidate);
    }
    let known = all_paths().unwrap_or_default();
    let names: Vec<_> = known
        .iter()
        .filter_map(|p| p.file_stem()?.to_str())
        .collect();
    Err(format!(
        "no scenario named \"{name_or_path}\"; runtime-configs/ has: {}",
        names.join(", ")
    ))
}

/// Every `*.ron` in `runtime-configs/`, sorted by name.
pub fn all_paths() -> Result<Vec<PathBuf>, String> {
    let dir = directory();
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "ron"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Reads and parses the scenario at `path`; errors name the file, line and column.
pub fn load(path: &Path) -> Result<LoadedScenario, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let scenario = parse_scenario(&text).map_err(|e| format!("{}:{e}", path.display()))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string();
    Ok(LoadedScenario {
        name,
        text,
        scenario,
    })
}
