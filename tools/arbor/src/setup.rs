//! Making sure the machine has what Arbor needs: QEMU and the Rust target.
//! Installs what it can (root with apt-get, rustup); otherwise names the exact
//! command to run.

use crate::workspace::TARGET;
use std::process::{Command, Stdio};

/// The QEMU binary every scenario runs in.
pub const QEMU: &str = "qemu-system-x86_64";

fn found_in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn run_visibly(program: &str, args: &[&str]) -> bool {
    eprintln!("arbor: running {program} {}", args.join(" "));
    Command::new(program)
        .args(args)
        .status()
        .is_ok_and(|status| status.success())
}

/// QEMU is on the PATH, installing it with apt-get when we are root.
pub fn ensure_qemu() -> Result<(), String> {
    ensure_programs(&[QEMU], &["qemu-system-x86"], "scenarios")
}

/// `mkfs.fat` (dosfstools) and `mcopy` (mtools) are on the PATH, for
/// scenario disk images; installed with apt-get when we are root.
pub fn ensure_fat_tools() -> Result<(), String> {
    ensure_programs(
        &["mkfs.fat", "mcopy"],
        &["dosfstools", "mtools"],
        "disk images",
    )
}

/// `curl` and `python3` are on the PATH, for the host commands scenario
/// tests run against a guest (`Run` steps: curl fetches, the hostile HTTP
/// client); installed with apt-get when we are root.
pub fn ensure_host_command_tools() -> Result<(), String> {
    ensure_programs(
        &["curl", "python3", "sha256sum"],
        &["curl", "python3", "coreutils"],
        "host commands in scenario tests",
    )
}

/// Every one of `programs` is on the PATH (or in /usr/sbin), installing
/// Debian's `packages` with apt-get when we are root; otherwise an error
/// naming the command to run, and `purpose`.
fn ensure_programs(programs: &[&str], packages: &[&str], purpose: &str) -> Result<(), String> {
    let missing_now = || -> Vec<&str> {
        programs
            .iter()
            .copied()
            .filter(|program| !found_in_path(program) && !found_in_path_sbin(program))
            .collect()
    };
    let missing = missing_now();
    if missing.is_empty() {
        return Ok(());
    }
    let hint = format!("sudo apt-get install -y {}", packages.join(" "));
    if is_root() && found_in_path("apt-get") {
        eprintln!(
            "arbor: {} missing; installing {}",
            missing.join(", "),
            packages.join(" ")
        );
        let mut install = vec!["install", "-y", "-q"];
        install.extend_from_slice(packages);
        if (run_visibly("apt-get", &install)
            || run_visibly("apt-get", &["update", "-q"]) && run_visibly("apt-get", &install))
            && missing_now().is_empty()
        {
            return Ok(());
        }
        return Err(format!(
            "installing {} failed; try by hand: {hint}",
            packages.join(" ")
        ));
    }
    Err(format!(
        "{purpose} need {}. Install them with:\n    {hint}",
        missing.join(", ")
    ))
}

/// Debian keeps mkfs.fat in /usr/sbin, which a user's PATH may lack.
fn found_in_path_sbin(program: &str) -> bool {
    std::path::Path::new("/usr/sbin").join(program).is_file()
        || std::path::Path::new("/sbin").join(program).is_file()
}

/// The Rust target for guest binaries is installed, adding it with rustup if not.
pub fn ensure_target() -> Result<(), String> {
    ensure_rust_target(TARGET)
}

/// The Rust target `target` is installed, adding it with rustup if not.
pub fn ensure_rust_target(target: &str) -> Result<(), String> {
    let hint = format!("rustup target add {target}");
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(crate::workspace::root())
        .stderr(Stdio::null())
        .output();
    let Ok(installed) = installed else {
        // No rustup: cargo may still have the target (e.g. a distribution toolchain).
        eprintln!("arbor: rustup not found; if the build fails, install the target: {hint}");
        return Ok(());
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == target)
    {
        return Ok(());
    }
    eprintln!("arbor: the Rust target {target} is missing; adding it");
    if run_visibly("rustup", &["target", "add", target]) {
        Ok(())
    } else {
        Err(format!("adding the target failed; try by hand: {hint}"))
    }
}
