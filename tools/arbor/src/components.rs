//! Which component binaries the workspace builds, and what each declares it
//! needs at least, read from the Cargo.toml files so that `arbor check` can
//! refuse a `binary` nothing builds without running cargo.
//!
//! Only the small part of TOML that Cargo manifests use for this is read:
//! section headers, `key = "string"`, `key = number` and the workspace
//! `members` list (with a trailing `/*` glob). A component declares its
//! minimum quota as
//!
//! ```toml
//! [package.metadata.arbor]
//! min_ram = "64K"
//! min_caps = 32
//! ```

use arbor_config::{ByteSize, CapCount, ComponentNeeds, Environment};
use std::collections::BTreeMap;
use std::path::Path;

/// One `key = value` line of a manifest with the section it sits in.
struct Entry {
    section: String,
    key: String,
    value: String,
}

/// Reads the entries of a manifest; a `[[bin]]` section is numbered so that
/// each binary's `name` stays apart (`bin.0`, `bin.1`, ...).
fn entries(text: &str) -> Vec<Entry> {
    let mut section = String::new();
    let mut bins = 0;
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or("").trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            section = if name.trim() == "bin" {
                bins += 1;
                format!("bin.{}", bins - 1)
            } else {
                name.trim().to_string()
            };
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        } else if let Some((key, value)) = line.split_once('=') {
            found.push(Entry {
                section: section.clone(),
                key: key.trim().to_string(),
                value: value.trim().trim_matches('"').to_string(),
            });
        }
    }
    found
}

fn value<'e>(entries: &'e [Entry], section: &str, key: &str) -> Option<&'e str> {
    entries
        .iter()
        .find(|e| e.section == section && e.key == key)
        .map(|e| e.value.as_str())
}

/// The member directories listed in the workspace manifest, globs expanded.
fn members(root: &Path, manifest: &str) -> Vec<std::path::PathBuf> {
    let Some(start) = manifest.find("members") else {
        return Vec::new();
    };
    let list = &manifest[start..];
    let list = list
        .find('[')
        .and_then(|open| {
            list[open + 1..]
                .find(']')
                .map(|close| &list[open + 1..open + 1 + close])
        })
        .unwrap_or("");
    let mut found = Vec::new();
    for item in list.split(',') {
        let item = item.trim().trim_matches('"');
        if item.is_empty() || item.starts_with('#') {
            continue;
        }
        if let Some(parent) = item.strip_suffix("/*") {
            if let Ok(read) = std::fs::read_dir(root.join(parent)) {
                let mut dirs: Vec<_> = read
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.join("Cargo.toml").is_file())
                    .collect();
                dirs.sort();
                found.extend(dirs);
            }
        } else {
            found.push(root.join(item));
        }
    }
    found
}

/// The binaries a member crate builds, by the rules Cargo uses for names.
fn binaries(dir: &Path, manifest: &[Entry]) -> Vec<String> {
    let mut names: Vec<String> = manifest
        .iter()
        .filter(|e| e.section.starts_with("bin.") && e.key == "name")
        .map(|e| e.value.clone())
        .collect();
    if let Some(package) = value(manifest, "package", "name")
        && dir.join("src/main.rs").is_file()
        && !names.iter().any(|n| n == package)
    {
        names.push(package.to_string());
    }
    if let Ok(read) = std::fs::read_dir(dir.join("src/bin")) {
        for entry in read.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "rs")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                names.push(stem.to_string());
            }
        }
    }
    names
}

/// What a manifest's `[package.metadata.arbor]` declares.
fn needs(manifest: &[Entry]) -> Result<ComponentNeeds, String> {
    const SECTION: &str = "package.metadata.arbor";
    let min_ram = value(manifest, SECTION, "min_ram")
        .map(|text| ByteSize::parse(text).map_err(|e| format!("min_ram: {e}")))
        .transpose()?;
    let min_caps = value(manifest, SECTION, "min_caps")
        .map(|text| {
            text.parse()
                .map(CapCount)
                .map_err(|_| format!("min_caps: \"{text}\" is not a number"))
        })
        .transpose()?;
    Ok(ComponentNeeds {
        min_ram,
        min_caps,
        ..ComponentNeeds::default()
    })
}

/// The environment of the workspace at `root`: every binary of every member
/// outside `tools/`, `base/kernel` and `base/core` (host tools, the kernel and core are not
/// components), plus `init`.
pub fn workspace_environment(root: &Path) -> Result<Environment, String> {
    let top = std::fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| format!("cannot read the workspace Cargo.toml: {e}"))?;
    let mut components = BTreeMap::new();
    for dir in members(root, &top) {
        // Host tools, the kernel and core are no components init could start.
        if dir.strip_prefix(root).is_ok_and(|d| {
            d.starts_with("tools") || d.starts_with("base/kernel") || d.starts_with("base/core")
        }) {
            continue;
        }
        let path = dir.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let manifest = entries(&text);
        let needs = needs(&manifest).map_err(|e| format!("{}: {e}", path.display()))?;
        for binary in binaries(&dir, &manifest) {
            components.insert(binary, needs);
        }
    }
    Ok(Environment::with_components(components))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_sections_bins_and_needs_are_read() {
        let text = "[package]\nname = \"pit\"\n\n[[bin]]\nname = \"pit_timer\" # the driver\npath = \"src/main.rs\"\n\n[package.metadata.arbor]\nmin_ram = \"64K\"\nmin_caps = 16\n";
        let manifest = entries(text);
        assert_eq!(value(&manifest, "package", "name"), Some("pit"));
        assert_eq!(value(&manifest, "bin.0", "name"), Some("pit_timer"));
        let needs = needs(&manifest).unwrap();
        assert_eq!(needs.min_ram, Some(ByteSize(64 << 10)));
        assert_eq!(needs.min_caps, Some(CapCount(16)));
    }

    #[test]
    fn bad_minimum_is_an_error() {
        let manifest = entries("[package.metadata.arbor]\nmin_ram = \"12 MB\"\n");
        assert!(
            needs(&manifest)
                .unwrap_err()
                .contains("\"12 MB\" is not a size")
        );
    }

    #[test]
    fn this_workspace_has_init_and_no_host_tools() {
        let environment = workspace_environment(&crate::workspace::root()).unwrap();
        let components = environment.components.unwrap();
        assert!(components.contains_key("init"));
        assert!(!components.contains_key("arbor"));
    }
}
