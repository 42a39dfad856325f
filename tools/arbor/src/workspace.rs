//! Where things are in the checkout, and building the target crates.
//!
//! The workspace's shape — its members, their binaries and metadata, and the
//! target directory — comes from `cargo metadata`, read once per run, so the
//! tool sees exactly what cargo sees (globbed members, `CARGO_TARGET_DIR`,
//! `build.target-dir`).

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The Rust target every guest binary is built for.
pub const TARGET: &str = "x86_64-unknown-none";

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn root() -> PathBuf {
    // `cargo run` (the `cargo arbor` alias) tells the tool where its package
    // is at run time; that beats the path compiled in, which is wrong when a
    // build is reused from another copy of the repository.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    // tools/arbor → the workspace is two levels up.
    let root = manifest_dir.join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The cargo that runs us, so that nested builds use the same toolchain.
fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root());
    command
}

/// What `cargo metadata --no-deps` says about the workspace (the fields used).
#[derive(Clone, Debug, Deserialize)]
pub struct Metadata {
    /// Every workspace member.
    pub packages: Vec<Package>,
    /// Where cargo puts build outputs (honours `CARGO_TARGET_DIR`).
    pub target_directory: PathBuf,
    /// The directory of the workspace's Cargo.toml.
    pub workspace_root: PathBuf,
}

/// One member package.
#[derive(Clone, Debug, Deserialize)]
pub struct Package {
    pub name: String,
    /// The package's Cargo.toml.
    pub manifest_path: PathBuf,
    pub targets: Vec<Target>,
    /// `[package.metadata]`, as JSON (`null` when absent).
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// One build target of a package (lib, bin, test, ...).
#[derive(Clone, Debug, Deserialize)]
pub struct Target {
    pub name: String,
    pub kind: Vec<String>,
}

impl Package {
    /// The names of the binaries the package builds.
    pub fn binaries(&self) -> impl Iterator<Item = &str> {
        self.targets
            .iter()
            .filter(|t| t.kind.iter().any(|k| k == "bin"))
            .map(|t| t.name.as_str())
    }

    /// The package's folder relative to the workspace root.
    pub fn relative_dir<'a>(&'a self, root: &Path) -> &'a Path {
        let dir = self.manifest_path.parent().unwrap_or(&self.manifest_path);
        dir.strip_prefix(root).unwrap_or(dir)
    }
}

impl Metadata {
    /// Parses `cargo metadata --format-version 1` output.
    pub fn parse(json: &[u8]) -> Result<Self> {
        serde_json::from_slice(json).context("cargo metadata printed JSON this tool cannot read")
    }

    /// Runs `cargo metadata` in the workspace at `root`.
    pub fn read(root: &Path) -> Result<Self> {
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(root)
            .stderr(Stdio::piped())
            .output()
            .context("cannot start `cargo metadata`")?;
        if !output.status.success() {
            bail!(
                "`cargo metadata` failed in {}:\n{}",
                root.display(),
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
        Self::parse(&output.stdout)
            .with_context(|| format!("reading the workspace at {}", root.display()))
    }
}

/// This workspace's metadata, read once per run.
pub fn metadata() -> Result<&'static Metadata> {
    static METADATA: OnceLock<Metadata> = OnceLock::new();
    if let Some(found) = METADATA.get() {
        return Ok(found);
    }
    let read = Metadata::read(&root())?;
    Ok(METADATA.get_or_init(|| read))
}

/// Cargo's target directory for this workspace (`target/` unless
/// `CARGO_TARGET_DIR` or `build.target-dir` say otherwise).
pub fn target_dir() -> Result<PathBuf> {
    Ok(metadata()?.target_directory.clone())
}

/// Where the tool keeps what it learns between runs (`TARGET_DIR/arbor`).
pub fn state_dir() -> Result<PathBuf> {
    Ok(target_dir()?.join("arbor"))
}

/// Builds the given binaries for the target in release mode, with cargo's own
/// progress output on the terminal, and returns their paths in order.
pub fn build_target_binaries(packages: &[&str]) -> Result<Vec<PathBuf>> {
    let mut command = cargo();
    command.args(["build", "--release", "--target", TARGET]);
    for package in packages {
        command.args(["--package", package]);
    }
    eprintln!("arbor: building {} for {TARGET}", packages.join(", "));
    let status = command.status().context("cannot start cargo")?;
    if !status.success() {
        bail!(
            "building {} failed (see cargo's output above)",
            packages.join(", ")
        );
    }
    let dir = target_dir()?.join(TARGET).join("release");
    Ok(packages.iter().map(|package| dir.join(package)).collect())
}

/// Runs the host unit tests of the whole workspace; true when they pass.
pub fn run_host_tests() -> Result<bool> {
    eprintln!("arbor: running host unit tests");
    let status = cargo()
        .args(["test", "--workspace", "--quiet"])
        .status()
        .context("cannot start `cargo test`")?;
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
        "packages": [
            {"name": "pit_timer", "manifest_path": "/ws/components/drivers/pit_timer/Cargo.toml",
             "targets": [{"name": "pit_timer", "kind": ["bin"]}, {"name": "pit_timer", "kind": ["lib"]}],
             "metadata": {"arbor": {"min_ram": "64K", "min_caps": 16}}, "version": "0.1.0"},
            {"name": "arbor-abi", "manifest_path": "/ws/base/abi/Cargo.toml",
             "targets": [{"name": "arbor_abi", "kind": ["lib"]}], "metadata": null}
        ],
        "target_directory": "/tmp/tdir",
        "workspace_root": "/ws",
        "version": 1
    }"#;

    #[test]
    fn metadata_json_is_read() {
        let metadata = Metadata::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(metadata.target_directory, PathBuf::from("/tmp/tdir"));
        let pit = &metadata.packages[0];
        assert_eq!(pit.binaries().collect::<Vec<_>>(), ["pit_timer"]);
        assert_eq!(
            pit.relative_dir(&metadata.workspace_root),
            Path::new("components/drivers/pit_timer")
        );
        assert_eq!(metadata.packages[1].binaries().count(), 0);
        assert!(metadata.packages[1].metadata.is_null());
    }

    #[test]
    fn unreadable_metadata_says_so() {
        let error = Metadata::parse(b"{\"packages\": 3}").unwrap_err();
        assert!(format!("{error:#}").contains("cargo metadata printed JSON"));
    }

    #[test]
    fn this_workspace_has_its_members_and_a_target_dir() {
        let metadata = metadata().unwrap();
        let names: Vec<&str> = metadata.packages.iter().map(|p| p.name.as_str()).collect();
        for expected in ["init", "arbor-kernel", "arbor-tool", "hello", "pit_timer"] {
            assert!(names.contains(&expected), "{expected} missing in {names:?}");
        }
        assert!(metadata.target_directory.is_absolute());
    }
}
