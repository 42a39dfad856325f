//! Disk images a scenario asks for (`VirtioBlk(image: ..., size: ...,
//! format: Fat32, files: [...])`): built before every boot with the host's
//! `mkfs.fat` and `mcopy`, so a run always starts from the same volume and
//! the host's own FAT tools can check what the guest left on it.

use crate::{setup, workspace};
use anyhow::{Context, Result, bail};
use arbor_config::{Device, DiskFile, DiskFormat};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a built image lives: `image` relative to the workspace root.
pub fn path_of(image: &str) -> PathBuf {
    workspace::root().join(image)
}

/// Builds every image the scenario's devices describe; returns their paths
/// in order.
pub fn build_all(devices: &[Device]) -> Result<Vec<PathBuf>> {
    let mut built = Vec::new();
    for device in devices {
        if let Device::VirtioBlk {
            image: Some(image),
            size,
            format,
            files,
            ..
        } = device
        {
            let path = path_of(image);
            let size = size.map(|s| s.0).context(format!(
                "disk image {image} has no size; run `cargo arbor check`"
            ))?;
            build(&path, size, format.unwrap_or(DiskFormat::Raw), files)
                .with_context(|| format!("building disk image {}", path.display()))?;
            built.push(path);
        }
    }
    Ok(built)
}

/// A fresh image of `size` bytes at `path`, formatted, with `files` on it.
pub fn build(path: &Path, size: u64, format: DiskFormat, files: &[DiskFile]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // A new file each time: the previous run's writes must not leak in.
    let _ = std::fs::remove_file(path);
    let file = std::fs::File::create(path)?;
    file.set_len(size)?;
    drop(file);
    if format == DiskFormat::Raw {
        return Ok(());
    }
    setup::ensure_fat_tools().map_err(|e| anyhow::anyhow!(e))?;
    let image = path.to_string_lossy().to_string();
    run("mkfs.fat", &["-F", "32", "-n", "ARBOR", &image])?;
    let mut made = BTreeSet::new();
    for file in files {
        let from = workspace::root().join(&file.from);
        if let Some(size) = file.generate {
            generate(&from, size.0).with_context(|| format!("generating {}", from.display()))?;
        }
        if !from.is_file() {
            bail!("the host file {} does not exist", from.display());
        }
        // Parent directories first, each once (mmd refuses an existing one).
        let parts: Vec<&str> = file.to.split('/').filter(|p| !p.is_empty()).collect();
        let mut directory = String::new();
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            directory = format!("{directory}/{part}");
            if made.insert(directory.clone()) {
                run("mmd", &["-i", &image, &format!("::{directory}")])?;
            }
        }
        run(
            "mcopy",
            &[
                "-i",
                &image,
                &from.to_string_lossy(),
                &format!("::{}", file.to),
            ],
        )?;
    }
    Ok(())
}

/// Writes `size` bytes of a fixed pseudo-random sequence to `path`
/// (`linux_baseline::generated_bytes`, which the Linux baseline guest
/// serves too): the same bytes on every host and run, and no run of equal
/// bytes that would hide a misplaced block.
pub fn generate(path: &Path, size: u64) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, linux_baseline::generated_bytes(size))?;
    Ok(())
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program)
        .args(args)
        .env("PATH", path_with_sbin())
        // mtools checks a drive's geometry against the BIOS's; an image has none.
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// The PATH with /usr/sbin and /sbin, where Debian keeps mkfs.fat and
/// fsck.fat (a user's PATH may lack them).
pub fn path_with_sbin() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{path}:/usr/sbin:/sbin")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fat32_image_gets_its_files_in_their_directories() {
        if setup::ensure_fat_tools().is_err() {
            eprintln!("mkfs.fat/mtools missing: skipped");
            return;
        }
        let directory = std::env::temp_dir().join(format!("arbor-image-{}", std::process::id()));
        let path = directory.join("t.img");
        let host = directory.join("hello.txt");
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::write(&host, b"hello image").unwrap();
        let files = [DiskFile {
            from: host.to_string_lossy().into(),
            to: "/a dir/A long file name.txt".into(),
            generate: None,
        }];
        build(&path, 34 << 20, DiskFormat::Fat32, &files).unwrap();
        let generated = directory.join("generated.bin");
        generate(&generated, 1000).unwrap();
        let bytes = std::fs::read(&generated).unwrap();
        assert_eq!(bytes.len(), 1000);
        generate(&generated, 1003).unwrap();
        assert_eq!(std::fs::read(&generated).unwrap()[..1000], bytes[..]);
        let out = Command::new("mtype")
            .args([
                "-i",
                &path.to_string_lossy(),
                "::/a dir/A long file name.txt",
            ])
            .env("MTOOLS_SKIP_CHECK", "1")
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"hello image");
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
