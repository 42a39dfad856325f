//! Packing a scenario's ROM modules into the boot archive.

use crate::scenarios::LoadedScenario;
use arbor_archive::ArchiveBuilder;
use std::path::{Path, PathBuf};

/// Writes the boot archive for `scenario` next to the build output and returns its path.
pub fn pack(scenario: &LoadedScenario, out_dir: &Path) -> Result<PathBuf, String> {
    let mut builder = ArchiveBuilder::new();
    builder
        .add("config", scenario.text.as_bytes())
        .map_err(|e| format!("packing the config module: {e}"))?;
    let bytes = builder.finish();
    let path = out_dir.join(format!("{}.archive", scenario.name));
    std::fs::write(&path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}
