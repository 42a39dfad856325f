//! What each component needs, as `cargo arbor check` learns it: the
//! workspace's binaries and declared minimums ([`crate::components`]), the
//! config parsers the tool links ([`crate::configs`]), and what loading
//! each ELF costs, computed by the runtime loader's own function
//! (`arbor::plan::LoadPlan::ram_needed`, the figure init's loader refuses
//! a smaller quota with). Also the `--quota` table: per child, declared
//! against needed.

use crate::components::workspace_environment;
use crate::configs;
use crate::workspace;
use arbor_config::{
    ByteSize, Child, ComponentNeeds, Environment, InitConfig, check_scenario, usable_ram,
};
use arbor_runtime::plan::LoadPlan;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// What loading `image` costs in RAM quota, exactly as init's loader
/// computes it before it starts the child.
pub fn load_cost(image: &[u8]) -> Result<ByteSize, String> {
    LoadPlan::new(image)
        .map(|plan| ByteSize(plan.ram_needed()))
        .map_err(|error| format!("{error}"))
}

/// Every child of `init` and of the nested inits below it, with its path
/// ("net/dhcp") and the init it belongs to.
pub fn children(init: &InitConfig, prefix: &str, found: &mut Vec<(String, Child, InitConfig)>) {
    for child in &init.children {
        let path = format!("{prefix}{}", child.name);
        found.push((path.clone(), child.clone(), init.clone()));
        if child.is_nested_init()
            && let Some(inner) = child.config.as_ref().and_then(|c| c.as_init_config().ok())
        {
            children(&inner, &format!("{path}/"), found);
        }
    }
}

/// The binaries the scenario texts start (those that decode).
fn binaries_named(texts: &[&[u8]]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for bytes in texts {
        let Ok(text) = std::str::from_utf8(bytes) else {
            continue;
        };
        let report = check_scenario(text, &Environment::default());
        let Some(init) = report.scenario.and_then(|s| s.init) else {
            continue;
        };
        let mut found = Vec::new();
        children(&init, "", &mut found);
        names.extend(found.iter().map(|(_, c, _)| c.binary_name().to_string()));
    }
    names
}

/// The environment check judges against: the workspace's components with
/// their config parsers and, for every binary built (after building those
/// the scenarios name, when `build`), its loading cost.
pub fn environment(root: &Path, texts: &[&[u8]], build: bool) -> Result<Environment, String> {
    let mut environment = workspace_environment(root)?;
    let Some(components) = environment.components.as_mut() else {
        return Ok(environment);
    };
    for (name, parser) in configs::parsers() {
        if let Some(needs) = components.get_mut(name) {
            needs.config = Some(parser);
        }
    }
    if build {
        let wanted: Vec<String> = binaries_named(texts)
            .into_iter()
            .filter(|name| components.contains_key(name))
            .collect();
        if !wanted.is_empty() {
            let packages: Vec<&str> = wanted.iter().map(String::as_str).collect();
            if let Err(error) = workspace::build_target_binaries(&packages) {
                eprintln!("arbor: {error}; sizing quotas from the ELFs already built");
            }
        }
    }
    let dir = root.join("target").join(workspace::TARGET).join("release");
    for (name, needs) in components.iter_mut() {
        let Ok(image) = std::fs::read(dir.join(name)) else {
            continue;
        };
        needs.image_size = Some(ByteSize(image.len() as u64));
        match load_cost(&image) {
            Ok(cost) => needs.load_ram = Some(cost),
            Err(error) => eprintln!("arbor: cannot size \"{name}\" from its ELF: {error}"),
        }
    }
    Ok(environment)
}

/// `--quota`: for every child, the quota it is given against what it
/// needs, and whether it fits.
pub fn quota_table(shown: &str, text: &str, environment: &Environment) -> String {
    let report = check_scenario(text, environment);
    let Some(init) = report.scenario.and_then(|s| s.init) else {
        return format!("{shown}: no children to size\n");
    };
    let mut found = Vec::new();
    children(&init, "", &mut found);
    let mut rows = vec![[
        "child".to_string(),
        "binary".to_string(),
        "RAM given".to_string(),
        "RAM needed".to_string(),
        "caps given".to_string(),
        "caps needed".to_string(),
        "verdict".to_string(),
    ]];
    for (path, child, parent) in &found {
        let quota = child.effective_quota(parent);
        let needs: ComponentNeeds = environment
            .components
            .as_ref()
            .and_then(|c| c.get(child.binary_name()))
            .copied()
            .unwrap_or_default();
        let (ram_needed, ram_short) = match needs.ram_floor() {
            Some((floor, loading)) => (
                format!("{floor} ({})", if loading { "ELF" } else { "min_ram" }),
                usable_ram(quota.ram) < floor,
            ),
            None => ("unknown".to_string(), false),
        };
        let (caps_needed, caps_short) = match needs.min_caps {
            Some(min) => (min.0.to_string(), quota.caps < min),
            None => ("-".to_string(), false),
        };
        let verdict = match (ram_short, caps_short) {
            (false, false) => "ok",
            (true, false) => "RAM short",
            (false, true) => "caps short",
            (true, true) => "RAM and caps short",
        };
        rows.push([
            path.clone(),
            child.binary_name().to_string(),
            quota.ram.to_string(),
            ram_needed,
            quota.caps.0.to_string(),
            caps_needed,
            verdict.to_string(),
        ]);
    }
    let mut widths = [0; 7];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut output = format!("{shown}: quota per child (given / needed)\n");
    for row in &rows {
        let mut line = String::from(" ");
        for (cell, width) in row.iter().zip(widths) {
            let _ = write!(line, " {cell:<width$}");
        }
        output.push_str(line.trim_end());
        output.push('\n');
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &[u8] = include_bytes!("../../../base/elf/testdata/tiny.elf");

    #[test]
    fn the_cost_is_the_loaders() {
        let plan = LoadPlan::new(TINY).unwrap();
        assert_eq!(load_cost(TINY), Ok(ByteSize(plan.ram_needed())));
        assert!(load_cost(&TINY[..10]).unwrap_err().contains("bad image"));
    }

    #[test]
    fn the_table_shows_given_and_needed() {
        let mut components = std::collections::BTreeMap::new();
        components.insert(
            "hello".to_string(),
            ComponentNeeds {
                load_ram: Some(ByteSize(384 << 10)),
                ..ComponentNeeds::default()
            },
        );
        let environment = Environment::with_components(components);
        let text = r#"Scenario(description: "x", init: (parent_provides: ["Log"], children: [
            (name: "small", binary: "hello", quota: (ram: "256K", caps: 8)),
            (name: "big", binary: "hello", quota: (ram: "1M", caps: 8)),
        ]))"#;
        let table = quota_table("q.ron", text, &environment);
        assert_eq!(
            table,
            "q.ron: quota per child (given / needed)\n  \
             child binary RAM given RAM needed caps given caps needed verdict\n  \
             small hello  256K      384K (ELF) 8          -           RAM short\n  \
             big   hello  1M        384K (ELF) 8          -           ok\n"
        );
    }
}
