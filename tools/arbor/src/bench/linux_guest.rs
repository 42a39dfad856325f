//! The Linux baseline guest: Debian's Linux 6.1 kernel and a static Rust
//! `/init` (`tools/linux-baseline`) in a newc initramfs, booted in the same
//! QEMU with the same flags as Arbor's bench scenarios, so that its figures
//! and Arbor's are measured the same way in one run.
//!
//! The kernel comes from Debian's `linux-image-6.1.0-*-amd64` package,
//! fetched with `apt-get download` and unpacked with `dpkg-deb` (only
//! `boot/vmlinuz-*` is kept), cached under `TARGET_DIR/arbor/linux/`. Where
//! that cannot work the error names the commands to run by hand; the
//! environment variable [`VMLINUZ_VARIABLE`] can point at a kernel instead.
//! `/init` is built for [`INIT_TARGET`], which is added with rustup when missing.

use super::cpio::Cpio;
use crate::workspace;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Rust target `/init` is built for: static, no C library on the guest.
pub const INIT_TARGET: &str = "x86_64-unknown-linux-musl";
/// The package (and binary) of `/init`.
const INIT_PACKAGE: &str = "linux-baseline";
/// Debian's metapackage whose dependency names the current 6.1 kernel.
const METAPACKAGE: &str = "linux-image-amd64";
/// The kernel series the baseline is defined with.
const SERIES_PREFIX: &str = "linux-image-6.1.0-";
/// Set to a bzImage to use it instead of Debian's package.
pub const VMLINUZ_VARIABLE: &str = "ARBOR_LINUX_VMLINUZ";
/// Guest memory: the kernel and a 1 MiB initramfs fit with room to spare.
pub const MEMORY_MIB: u64 = 512;

/// What `/init` prints first, and the line after its last figure
/// (`tools/linux-baseline/src/lib.rs`).
pub use linux_baseline::{DONE_MARKER, INIT_MARKER};

/// A bootable Linux baseline.
pub struct LinuxGuest {
    /// The compressed kernel (bzImage).
    pub vmlinuz: PathBuf,
    /// The initramfs holding `/init`.
    pub initramfs: PathBuf,
    /// Which kernel, for the log: package name and version, or the path.
    pub kernel_description: String,
}

/// The kernel command line: serial console, no boot chatter (printing is
/// work too), a panic ends the run at once, and the iteration count (which
/// Linux hands to `/init` in its environment).
pub fn kernel_args(iterations: u64) -> String {
    format!("console=ttyS0 quiet panic=-1 iterations={iterations}")
}

/// Fetches (or finds cached) the kernel, builds `/init` and packs the initramfs.
pub fn prepare() -> Result<LinuxGuest, String> {
    let cache = workspace::state_dir()
        .map_err(|e| format!("{e:#}"))?
        .join("linux");
    std::fs::create_dir_all(&cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    let (vmlinuz, kernel_description) = kernel_image(&cache)?;
    let init = build_init()?;
    let init_bytes =
        std::fs::read(&init).map_err(|e| format!("cannot read {}: {e}", init.display()))?;
    let mut cpio = Cpio::new();
    cpio.directory("dev", 0o755)?;
    // Linux opens /dev/console as /init's standard streams.
    cpio.character_device("dev/console", 0o600, 5, 1)?;
    cpio.file("init", 0o755, &init_bytes)?;
    let initramfs = cache.join("initramfs.cpio");
    std::fs::write(&initramfs, cpio.finish())
        .map_err(|e| format!("cannot write {}: {e}", initramfs.display()))?;
    Ok(LinuxGuest {
        vmlinuz,
        initramfs,
        kernel_description,
    })
}

/// The number after [`INIT_MARKER`] in a serial line: the TSC at `/init`'s start.
pub fn init_tsc(line: &str) -> Option<u64> {
    let rest = &line[line.find(INIT_MARKER)? + INIT_MARKER.len()..];
    rest.trim().parse().ok()
}

/// The `boot/vmlinuz-*` file under `dir`, if there is one.
fn cached_kernel(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join("boot"))
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// The package `apt-cache depends linux-image-amd64` names, if it is a 6.1 kernel.
pub fn package_from_depends(output: &str) -> Option<String> {
    output
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|name| name.starts_with(SERIES_PREFIX) && name.ends_with("-amd64"))
        .map(str::to_string)
}

/// The commands that fetch the kernel by hand, for error messages: with
/// the package's name when apt named it, else with a placeholder.
pub fn manual_commands(cache: &Path, package: Option<&str>) -> String {
    let (name, where_from) = match package {
        Some(name) => (name.to_string(), String::new()),
        None => (
            format!("{SERIES_PREFIX}NN-amd64"),
            format!("\n(NN from `apt-cache depends {METAPACKAGE}` on Debian 12)"),
        ),
    };
    format!(
        "    cd {dir} && apt-get download {name} \\\n        \
         && dpkg-deb --fsys-tarfile {name}_*.deb | tar -xf - --wildcards './boot/vmlinuz-*'\
         {where_from}\nor set {VMLINUZ_VARIABLE}=/path/to/vmlinuz",
        dir = cache.display()
    )
}

/// The kernel to boot and a description of it.
fn kernel_image(cache: &Path) -> Result<(PathBuf, String), String> {
    if let Some(path) = std::env::var_os(VMLINUZ_VARIABLE) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            let description = format!("{} (from {VMLINUZ_VARIABLE})", path.display());
            Ok((path, description))
        } else {
            Err(format!(
                "{VMLINUZ_VARIABLE}={} is not a file",
                path.display()
            ))
        };
    }
    let described = |path: PathBuf| {
        let package = std::fs::read_to_string(cache.join("package")).unwrap_or_default();
        let description = format!("{} ({})", path.display(), package.trim());
        (path, description)
    };
    if let Some(path) = cached_kernel(cache) {
        return Ok(described(path));
    }
    let fail_with = |why: String, package: Option<&str>| {
        format!(
            "cannot fetch the Linux baseline's kernel: {why}\nfetch it by hand:\n{}",
            manual_commands(cache, package)
        )
    };
    let fail = |why: String| fail_with(why, None);
    let depends = Command::new("apt-cache")
        .args(["depends", METAPACKAGE])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| fail(format!("apt-cache: {e}")))?;
    let package =
        package_from_depends(&String::from_utf8_lossy(&depends.stdout)).ok_or_else(|| {
            fail(format!(
                "apt-cache names no {SERIES_PREFIX}*-amd64 for {METAPACKAGE}"
            ))
        })?;
    eprintln!(
        "arbor: fetching {package} for the Linux baseline (cached in {})",
        cache.display()
    );
    let fail = |why: String| fail_with(why, Some(&package));
    let status = Command::new("apt-get")
        .args(["download", "-q", &package])
        .current_dir(cache)
        // Standard output carries the figures (`--json`); apt's chatter goes to stderr.
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| fail(format!("apt-get: {e}")))?;
    if !status.success() {
        return Err(fail(format!(
            "`apt-get download {package}` failed ({status})"
        )));
    }
    let deb = std::fs::read_dir(cache)
        .map_err(|e| fail(format!("cannot read {}: {e}", cache.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
        })
        .ok_or_else(|| fail(format!("apt-get left no {package}_*.deb")))?;
    let version = deb
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('_').nth(1))
        .unwrap_or("")
        .to_string();
    // Only the kernel image is needed; the package's modules stay packed.
    let mut unpack = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("dpkg-deb: {e}")))?;
    let tarfile = unpack
        .stdout
        .take()
        .ok_or_else(|| fail("dpkg-deb's output is not readable".into()))?;
    let extracted = Command::new("tar")
        .args(["-xf", "-", "--wildcards", "./boot/vmlinuz-*"])
        .current_dir(cache)
        .stdin(tarfile)
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| fail(format!("tar: {e}")))?;
    let unpacked = unpack.wait().map_err(|e| fail(format!("dpkg-deb: {e}")))?;
    if !extracted.success() || !unpacked.success() {
        return Err(fail(format!(
            "unpacking {} failed (dpkg-deb {unpacked}, tar {extracted})",
            deb.display()
        )));
    }
    let _ = std::fs::remove_file(&deb);
    let _ = std::fs::write(cache.join("package"), format!("{package} {version}\n"));
    let path =
        cached_kernel(cache).ok_or_else(|| fail(format!("{package} holds no boot/vmlinuz-*")))?;
    Ok(described(path))
}

/// Builds `/init`; returns the static binary's path.
fn build_init() -> Result<PathBuf, String> {
    crate::setup::ensure_rust_target(INIT_TARGET)?;
    eprintln!("arbor: building {INIT_PACKAGE} for {INIT_TARGET}");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace::root())
        .args([
            "build",
            "--release",
            "--target",
            INIT_TARGET,
            "--package",
            INIT_PACKAGE,
        ])
        .status()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building {INIT_PACKAGE} for {INIT_TARGET} failed (see cargo's output above)"
        ));
    }
    let target = workspace::target_dir().map_err(|e| format!("{e:#}"))?;
    Ok(target.join(INIT_TARGET).join("release").join(INIT_PACKAGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_package_is_read_from_apt_cache() {
        let output = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(
            package_from_depends(output).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        // Another series (a newer Debian) is not the baseline.
        assert_eq!(
            package_from_depends("  Depends: linux-image-6.12.9-amd64\n"),
            None
        );
        assert_eq!(package_from_depends(""), None);
    }

    #[test]
    fn manual_commands_name_the_package_when_known() {
        let dir = Path::new("/t/arbor/linux");
        let known = manual_commands(dir, Some("linux-image-6.1.0-56-amd64"));
        assert!(known.contains("cd /t/arbor/linux && apt-get download linux-image-6.1.0-56-amd64"));
        assert!(known.contains("dpkg-deb --fsys-tarfile linux-image-6.1.0-56-amd64_*.deb"));
        assert!(!known.contains("NN"));
        let unknown = manual_commands(dir, None);
        assert!(unknown.contains("apt-get download linux-image-6.1.0-NN-amd64"));
        assert!(unknown.contains("apt-cache depends linux-image-amd64"));
        assert!(unknown.contains(VMLINUZ_VARIABLE));
    }

    #[test]
    fn the_init_marker_gives_the_tsc() {
        assert_eq!(
            init_tsc(&format!("{INIT_MARKER}6110474807")),
            Some(6_110_474_807)
        );
        assert_eq!(init_tsc("Run /init as init process"), None);
        assert_eq!(init_tsc(&format!("{INIT_MARKER}soon")), None);
    }

    #[test]
    fn kernel_args_carry_the_iterations() {
        assert!(kernel_args(500).ends_with("iterations=500"));
        assert!(kernel_args(500).contains("console=ttyS0"));
    }
}
