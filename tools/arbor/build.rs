//! Generates the table of component config parsers `cargo arbor check`
//! links (see `src/configs.rs`): every path dependency of this crate whose
//! manifest names one under `[package.metadata.arbor]`,
//!
//! ```toml
//! config_parser = "hello::config::parse"
//! ```
//!
//! a function taking the config ROM's bytes and returning the decoded
//! config or the component's error. `cargo arbor new` adds the dependency
//! for a component made from a template that has one.

use std::fmt::Write as _;
use std::path::Path;

/// `key = "value"` in `section` of a manifest (the simple form Cargo
/// manifests here use).
fn value(manifest: &str, section: &str, key: &str) -> Option<String> {
    let mut current = String::new();
    for line in manifest.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
        } else if current == section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let manifest_path = Path::new(&manifest_dir).join("Cargo.toml");
    println!("cargo:rerun-if-changed={}", manifest_path.display());
    let manifest = std::fs::read_to_string(&manifest_path).unwrap_or_default();
    let mut in_dependencies = false;
    let mut entries = String::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if !in_dependencies {
            continue;
        }
        let Some((_, rest)) = line.split_once("path = \"") else {
            continue;
        };
        let Some(path) = rest.split('"').next() else {
            continue;
        };
        let dependency = Path::new(&manifest_dir).join(path).join("Cargo.toml");
        println!("cargo:rerun-if-changed={}", dependency.display());
        let Ok(text) = std::fs::read_to_string(&dependency) else {
            continue;
        };
        let (Some(name), Some(parser)) = (
            value(&text, "package", "name"),
            value(&text, "package.metadata.arbor", "config_parser"),
        ) else {
            continue;
        };
        let _ = writeln!(
            entries,
            "        ({name:?}, |text: &str| refusal({parser}(text.as_bytes()))),"
        );
    }
    let code = format!(
        "/// Every linked parser, by the binary name it reads configs for.\n\
         pub fn parsers() -> Vec<(&'static str, ConfigParser)> {{\n    vec![\n{entries}    ]\n}}\n"
    );
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("configs.rs");
    std::fs::write(out, code).unwrap_or_else(|e| panic!("cannot write the parser table: {e}"));
}
