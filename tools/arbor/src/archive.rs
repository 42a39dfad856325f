//! Packing a scenario's ROM modules into the boot archive.

use crate::scenarios::LoadedScenario;
use arbor_archive::ArchiveBuilder;
use std::path::{Path, PathBuf};

/// The package that builds core, started first in every scenario with an
/// `init` section; it is packed as the module `core`.
pub const CORE_PACKAGE: &str = "arbor-core";

/// The first component: `kernel.core`, or core itself for init scenarios.
fn first_component(scenario: &LoadedScenario) -> Option<String> {
    let kernel = &scenario.scenario.kernel;
    kernel.core.clone().or_else(|| {
        scenario
            .scenario
            .init
            .as_ref()
            .map(|_| CORE_PACKAGE.to_string())
    })
}

/// Every binary an init config starts, nested inits included.
fn init_binaries(config: &arbor_config::InitConfig, names: &mut Vec<String>) {
    for child in &config.children {
        names.push(child.binary_name().to_string());
        if child.is_nested_init()
            && let Some(Ok(nested)) = child.config.as_ref().map(|c| c.as_init_config())
        {
            init_binaries(&nested, names);
        }
    }
}

/// Binaries packed as modules under their own names (everything but the first component).
fn module_binaries(scenario: &LoadedScenario) -> Vec<String> {
    let mut names = scenario.scenario.kernel.modules.clone();
    if let Some(init) = &scenario.scenario.init {
        names.push("init".to_string());
        init_binaries(init, &mut names);
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| seen.insert(name.clone()));
    names
}

/// The component binaries a scenario needs built, each once.
pub fn binaries_needed(scenario: &LoadedScenario) -> Vec<String> {
    let mut names: Vec<String> = first_component(scenario)
        .into_iter()
        .chain(module_binaries(scenario))
        .collect();
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| seen.insert(name.clone()));
    names
}

/// Writes the boot archive for `scenario` into `out_dir`, reading component
/// binaries from `bin_dir`, and returns the archive's path.
///
/// Modules: `config` (the scenario text), `core` (the first component: the
/// scenario's `kernel.core`, or `arbor-core` when it has an `init` section),
/// `core_args`, `init` and every binary the init config starts, and each
/// extra module, under their binary names.
pub fn pack(scenario: &LoadedScenario, bin_dir: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    let kernel = &scenario.scenario.kernel;
    let read = |name: &str| {
        let path = bin_dir.join(name);
        std::fs::read(&path)
            .map_err(|e| format!("cannot read component binary {}: {e}", path.display()))
    };
    let mut modules: Vec<(String, Vec<u8>)> =
        vec![("config".into(), scenario.text.clone().into_bytes())];
    if let Some(core) = first_component(scenario) {
        modules.push(("core".into(), read(&core)?));
        modules.push(("core_args".into(), kernel.core_args.clone().into_bytes()));
    }
    for name in module_binaries(scenario) {
        let data = read(&name)?;
        modules.push((name, data));
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
