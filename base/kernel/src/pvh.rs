//! Reading the PVH boot information (`hvm_start_info`) that QEMU hands the
//! kernel: the memory map, the boot modules and the command line.
//!
//! Everything is copied out into a [`BootInfo`] so that the kernel may reuse
//! the pages QEMU wrote it into. Nothing here trusts the structure: counts are
//! bounded, every read goes through [`PhysRead`] which may refuse it, and a
//! module that does not lie in RAM is an error. The memory is read through a
//! trait so that the parser is tested on the host with plain byte buffers.

#![forbid(unsafe_code)]

use core::fmt;
use heapless::{String, Vec};

/// `hvm_start_info.magic`.
pub const START_INFO_MAGIC: u32 = 0x336E_C578;
/// Most memory-map entries kept; QEMU gives a handful.
pub const MAX_REGIONS: usize = 64;
/// Most boot modules kept; Arbor passes exactly one (the boot archive).
pub const MAX_MODULES: usize = 8;
/// Longest kernel command line kept, in bytes.
pub const MAX_CMDLINE: usize = 256;

/// The E820 type of ordinary RAM.
const E820_RAM: u32 = 1;

/// Reads physical memory, refusing addresses it cannot reach.
pub trait PhysRead {
    /// Fills `buf` from physical address `addr`; false if any byte is unreachable.
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool;
}

/// A range of the physical memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// The E820 type: 1 is usable RAM; 2 reserved, 3 ACPI reclaimable, 4 ACPI NVS, ...
    pub kind: u32,
}

impl MemoryRegion {
    /// Whether the kernel may hand these frames out.
    pub fn is_usable(&self) -> bool {
        self.kind == E820_RAM
    }

    /// One past the last byte (saturating).
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}

/// A module QEMU loaded (`-initrd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootModule {
    /// Physical address of the first byte.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

/// What the kernel learned from the boot loader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootInfo {
    /// The memory map, in the boot loader's order.
    pub regions: Vec<MemoryRegion, MAX_REGIONS>,
    /// The boot modules.
    pub modules: Vec<BootModule, MAX_MODULES>,
    /// The kernel command line (`-append`), empty when absent.
    pub cmdline: String<MAX_CMDLINE>,
}

/// Why the boot information was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvhError {
    /// The structure at the given address does not start with [`START_INFO_MAGIC`].
    BadMagic { found: u32 },
    /// Version 0 of the structure has no memory map.
    NoMemoryMap { version: u32 },
    /// More memory-map entries than [`MAX_REGIONS`].
    TooManyRegions { count: u32 },
    /// More modules than [`MAX_MODULES`].
    TooManyModules { count: u32 },
    /// A pointer in the structure leads outside readable memory.
    Unreadable { what: &'static str, addr: u64 },
    /// A module does not lie entirely in usable RAM.
    ModuleOutsideRam { index: usize, start: u64, size: u64 },
    /// The command line is longer than [`MAX_CMDLINE`] bytes or not UTF-8.
    BadCmdline,
    /// No module was passed, so there is no boot archive.
    NoBootArchive,
}

impl fmt::Display for PvhError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadMagic { found } => write!(
                f,
                "start info magic is {found:#x}, expected {START_INFO_MAGIC:#x}: not booted through PVH?"
            ),
            Self::NoMemoryMap { version } => {
                write!(
                    f,
                    "start info version {version} carries no memory map (need 1 or later)"
                )
            }
            Self::TooManyRegions { count } => {
                write!(
                    f,
                    "{count} memory-map entries, at most {MAX_REGIONS} are supported"
                )
            }
            Self::TooManyModules { count } => {
                write!(
                    f,
                    "{count} boot modules, at most {MAX_MODULES} are supported"
                )
            }
            Self::Unreadable { what, addr } => write!(f, "{what} at {addr:#x} is not readable"),
            Self::ModuleOutsideRam { index, start, size } => write!(
                f,
                "boot module {index} ({size} bytes at {start:#x}) is not inside usable RAM"
            ),
            Self::BadCmdline => write!(f, "kernel command line is too long or not UTF-8"),
            Self::NoBootArchive => {
                write!(
                    f,
                    "no boot module: pass the boot archive with -initrd (cargo arbor run does)"
                )
            }
        }
    }
}

fn read_bytes<const N: usize>(
    memory: &impl PhysRead,
    addr: u64,
    what: &'static str,
) -> Result<[u8; N], PvhError> {
    let mut buf = [0; N];
    if memory.read(addr, &mut buf) {
        Ok(buf)
    } else {
        Err(PvhError::Unreadable { what, addr })
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from(u32_at(bytes, at)) | (u64::from(u32_at(bytes, at + 4)) << 32)
}

/// Parses the `hvm_start_info` at `start_info` (layout: Xen's `arch-x86/hvm/start_info.h`).
pub fn parse(memory: &impl PhysRead, start_info: u64) -> Result<BootInfo, PvhError> {
    let header: [u8; 56] = read_bytes(memory, start_info, "start info")?;
    let magic = u32_at(&header, 0);
    if magic != START_INFO_MAGIC {
        return Err(PvhError::BadMagic { found: magic });
    }
    let version = u32_at(&header, 4);
    if version < 1 {
        return Err(PvhError::NoMemoryMap { version });
    }
    let module_count = u32_at(&header, 12);
    let modlist = u64_at(&header, 16);
    let cmdline_addr = u64_at(&header, 24);
    let memmap = u64_at(&header, 40);
    let region_count = u32_at(&header, 48);

    let mut info = BootInfo {
        regions: Vec::new(),
        modules: Vec::new(),
        cmdline: String::new(),
    };
    if region_count as usize > MAX_REGIONS {
        return Err(PvhError::TooManyRegions {
            count: region_count,
        });
    }
    for index in 0..u64::from(region_count) {
        let entry: [u8; 24] = read_bytes(memory, memmap.wrapping_add(index * 24), "memory map")?;
        let region = MemoryRegion {
            start: u64_at(&entry, 0),
            size: u64_at(&entry, 8),
            kind: u32_at(&entry, 16),
        };
        // Cannot fail: the count was checked against the capacity above.
        let _ = info.regions.push(region);
    }

    if module_count as usize > MAX_MODULES {
        return Err(PvhError::TooManyModules {
            count: module_count,
        });
    }
    for index in 0..module_count as usize {
        let entry: [u8; 32] = read_bytes(
            memory,
            modlist.wrapping_add(index as u64 * 32),
            "module list",
        )?;
        let module = BootModule {
            start: u64_at(&entry, 0),
            size: u64_at(&entry, 8),
        };
        let inside_ram = module.start.checked_add(module.size).is_some_and(|end| {
            info.regions
                .iter()
                .any(|r| r.is_usable() && r.start <= module.start && end <= r.end())
        });
        if !inside_ram {
            return Err(PvhError::ModuleOutsideRam {
                index,
                start: module.start,
                size: module.size,
            });
        }
        let _ = info.modules.push(module);
    }

    if cmdline_addr != 0 {
        let mut bytes: Vec<u8, MAX_CMDLINE> = Vec::new();
        loop {
            let [byte]: [u8; 1] = read_bytes(
                memory,
                cmdline_addr.wrapping_add(bytes.len() as u64),
                "command line",
            )?;
            if byte == 0 {
                break;
            }
            bytes.push(byte).map_err(|_| PvhError::BadCmdline)?;
        }
        let text = core::str::from_utf8(&bytes).map_err(|_| PvhError::BadCmdline)?;
        // Cannot fail: `text` is no longer than the byte buffer of the same capacity.
        let _ = info.cmdline.push_str(text);
    }
    Ok(info)
}

impl BootInfo {
    /// The boot archive: the first module.
    pub fn boot_archive(&self) -> Result<BootModule, PvhError> {
        self.modules.first().copied().ok_or(PvhError::NoBootArchive)
    }

    /// Usable RAM in bytes.
    pub fn usable_bytes(&self) -> u64 {
        self.regions
            .iter()
            .filter(|r| r.is_usable())
            .map(|r| r.size)
            .sum()
    }
}

#[cfg(test)]
mod tests;
