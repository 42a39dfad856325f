//! Packing a scenario's ROM modules into the boot archive.

use crate::scenarios::LoadedScenario;
use arbor_archive::ArchiveBuilder;
use std::path::{Path, PathBuf};

/// The component binaries a scenario needs built: the first component, then
/// the extra modules, each once.
pub fn binaries_needed(scenario: &LoadedScenario) -> Vec<String> {
    let kernel = &scenario.scenario.kernel;
    let mut names: Vec<String> = kernel.core.iter().chain(&kernel.modules).cloned().collect();
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| seen.insert(name.clone()));
    names
}

/// Writes the boot archive for `scenario` into `out_dir`, reading component
/// binaries from `bin_dir`, and returns the archive's path.
///
/// Modules: `config` (the scenario text), `core` (the first component, if
/// any), `core_args`, and each extra module under its binary name.
pub fn pack(scenario: &LoadedScenario, bin_dir: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    let kernel = &scenario.scenario.kernel;
    let read = |name: &str| {
        let path = bin_dir.join(name);
        std::fs::read(&path)
            .map_err(|e| format!("cannot read component binary {}: {e}", path.display()))
    };
    let mut modules: Vec<(String, Vec<u8>)> =
        vec![("config".into(), scenario.text.clone().into_bytes())];
    if let Some(core) = &kernel.core {
        modules.push(("core".into(), read(core)?));
        modules.push(("core_args".into(), kernel.core_args.clone().into_bytes()));
    }
    for name in &kernel.modules {
        modules.push((name.clone(), read(name)?));
    }

    let mut builder = ArchiveBuilder::new();
    for (name, data) in &modules {
        builder
            .add(name, data)
            .map_err(|e| format!("packing module \"{name}\": {e}"))?;
    }
    let path = out_dir.join(format!("{}.archive", scenario.name));
    std::fs::write(&path, builder.finish())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}
