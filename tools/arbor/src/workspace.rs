//! Where things are in the checkout, and building the target crates.

use std::path::PathBuf;
use std::process::Command;

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

/// Builds the given binaries for the target in release mode, with cargo's own
/// progress output on the terminal, and returns their paths in order.
pub fn build_target_binaries(packages: &[&str]) -> Result<Vec<PathBuf>, String> {
    let mut command = cargo();
    command.args(["build", "--release", "--target", TARGET]);
    for package in packages {
        command.args(["--package", package]);
    }
    eprintln!("arbor: building {} for {TARGET}", packages.join(", "));
    let status = command
        .status()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building {} failed (see cargo's output above)",
            packages.join(", ")
        ));
    }
    let dir = root().join("target").join(TARGET).join("release");
    Ok(packages.iter().map(|package| dir.join(package)).collect())
}

/// Runs the host unit tests of the whole workspace; true when they pass.
pub fn run_host_tests() -> Result<bool, String> {
    eprintln!("arbor: running host unit tests");
    let status = cargo()
        .args(["test", "--workspace", "--quiet"])
        .status()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    Ok(status.success())
}
