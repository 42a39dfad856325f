//! Which component binaries the workspace builds, and what each declares it
//! needs at least, read through `cargo metadata` so that `arbor check` can
//! refuse a `binary` nothing builds. A component declares its minimum quota
//! in its Cargo.toml as
//!
//! ```toml
//! [package.metadata.arbor]
//! min_ram = "64K"
//! min_caps = 32
//! ```

use crate::workspace::{Metadata, Package};
use anyhow::{Context, Result, bail};
use arbor_config::{ByteSize, CapCount, ComponentNeeds, Environment};
use std::collections::BTreeMap;
use std::path::Path;

/// What a package's `[package.metadata.arbor]` declares.
fn needs(package: &Package) -> Result<ComponentNeeds> {
    let arbor = &package.metadata["arbor"];
    let min_ram = match &arbor["min_ram"] {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => {
            Some(ByteSize::parse(text).map_err(|e| anyhow::anyhow!("min_ram: {e}"))?)
        }
        other => bail!("min_ram: {other} is not a size in quotes, e.g. \"64K\""),
    };
    let min_caps = match &arbor["min_caps"] {
        serde_json::Value::Null => None,
        value => Some(
            value
                .as_u64()
                .map(CapCount)
                .with_context(|| format!("min_caps: {value} is not a number"))?,
        ),
    };
    Ok(ComponentNeeds {
        min_ram,
        min_caps,
        ..ComponentNeeds::default()
    })
}

/// Whether a member folder holds something init could start: host tools,
/// the kernel and core are not components.
fn is_component_dir(relative: &Path) -> bool {
    !(relative.starts_with("tools")
        || relative.starts_with("base/kernel")
        || relative.starts_with("base/core"))
}

/// The components in `metadata`: every binary of every member outside
/// `tools/`, `base/kernel` and `base/core`, with its declared needs.
pub fn environment(metadata: &Metadata) -> Result<Environment> {
    let mut components = BTreeMap::new();
    for package in &metadata.packages {
        if !is_component_dir(package.relative_dir(&metadata.workspace_root)) {
            continue;
        }
        let needs = needs(package).with_context(|| {
            format!(
                "package {} ({}): [package.metadata.arbor]",
                package.name,
                package.manifest_path.display()
            )
        })?;
        for binary in package.binaries() {
            components.insert(binary.to_string(), needs);
        }
    }
    Ok(Environment::with_components(components))
}

/// The environment of the workspace at `root` (read with `cargo metadata`).
pub fn workspace_environment(root: &Path) -> Result<Environment, String> {
    let read = if root == crate::workspace::root() {
        crate::workspace::metadata().cloned()
    } else {
        Metadata::read(root)
    };
    read.and_then(|metadata| environment(&metadata))
        .map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(arbor: &str) -> Metadata {
        let json = format!(
            r#"{{"packages": [
                {{"name": "pit", "manifest_path": "/ws/components/drivers/pit/Cargo.toml",
                  "targets": [{{"name": "pit_timer", "kind": ["bin"]}}], "metadata": {{"arbor": {arbor}}}}},
                {{"name": "arbor-tool", "manifest_path": "/ws/tools/arbor/Cargo.toml",
                  "targets": [{{"name": "arbor", "kind": ["bin"]}}], "metadata": null}},
                {{"name": "arbor-core", "manifest_path": "/ws/base/core/Cargo.toml",
                  "targets": [{{"name": "arbor-core", "kind": ["bin"]}}], "metadata": null}}
            ], "target_directory": "/ws/target", "workspace_root": "/ws"}}"#
        );
        Metadata::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn bins_and_needs_come_from_metadata() {
        let environment = environment(&metadata(r#"{"min_ram": "64K", "min_caps": 16}"#)).unwrap();
        let components = environment.components.unwrap();
        let needs = components["pit_timer"];
        assert_eq!(needs.min_ram, Some(ByteSize(64 << 10)));
        assert_eq!(needs.min_caps, Some(CapCount(16)));
        assert!(!components.contains_key("arbor"));
        assert!(!components.contains_key("arbor-core"));
    }

    #[test]
    fn bad_minimum_is_an_error_naming_the_manifest() {
        let error = environment(&metadata(r#"{"min_ram": "12 MB"}"#)).unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("\"12 MB\" is not a size"), "{text}");
        assert!(text.contains("components/drivers/pit/Cargo.toml"), "{text}");
        let error = environment(&metadata(r#"{"min_caps": "many"}"#)).unwrap_err();
        assert!(format!("{error:#}").contains("min_caps"));
    }

    #[test]
    fn this_workspace_has_init_and_no_host_tools() {
        let environment = workspace_environment(&crate::workspace::root()).unwrap();
        let components = environment.components.unwrap();
        assert!(components.contains_key("init"));
        assert!(components.contains_key("hello"));
        assert!(!components.contains_key("arbor"));
        assert!(!components.contains_key("arbor-kernel"));
    }
}
