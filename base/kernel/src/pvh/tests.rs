//! The PVH parser against hand-built start-info structures.

use super::*;
use std::vec;
use std::vec::Vec as StdVec;

/// A fake physical memory: `bytes` at physical address 0.
struct Memory {
    bytes: StdVec<u8>,
}

impl PhysRead for Memory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some(end) = addr.checked_add(buf.len() as u64) else {
            return false;
        };
        if end > self.bytes.len() as u64 {
            return false;
        }
        buf.copy_from_slice(&self.bytes[addr as usize..end as usize]);
        true
    }
}

const START: u64 = 0x1000;
const MEMMAP: u64 = 0x2000;
const MODLIST: u64 = 0x3000;
const CMDLINE: u64 = 0x4000;

struct Builder {
    memory: Memory,
}

impl Builder {
    /// A start info for 64 KiB of memory: RAM 0..0x9000, a reserved hole, RAM 0xA000..0x10000.
    fn new() -> Self {
        let mut builder = Builder {
            memory: Memory {
                bytes: vec![0; 0x10000],
            },
        };
        builder.put32(START, START_INFO_MAGIC);
        builder.put32(START + 4, 1);
        builder.put64(START + 40, MEMMAP);
        builder.put32(START + 48, 3);
        builder.region(0, 0, 0x9000, 1);
        builder.region(1, 0x9000, 0x1000, 2);
        builder.region(2, 0xA000, 0x6000, 1);
        builder
    }

    fn put32(&mut self, at: u64, value: u32) {
        self.memory.bytes[at as usize..at as usize + 4].copy_from_slice(&value.to_le_bytes());
    }

    fn put64(&mut self, at: u64, value: u64) {
        self.memory.bytes[at as usize..at as usize + 8].copy_from_slice(&value.to_le_bytes());
    }

    fn region(&mut self, index: u64, start: u64, size: u64, kind: u32) {
        let at = MEMMAP + index * 24;
        self.put64(at, start);
        self.put64(at + 8, size);
        self.put32(at + 16, kind);
    }

    fn module(mut self, start: u64, size: u64) -> Self {
        self.put32(START + 12, 1);
        self.put64(START + 16, MODLIST);
        self.put64(MODLIST, start);
        self.put64(MODLIST + 8, size);
        self
    }

    fn cmdline(mut self, text: &[u8]) -> Self {
        self.put64(START + 24, CMDLINE);
        let at = CMDLINE as usize;
        self.memory.bytes[at..at + text.len()].copy_from_slice(text);
        self
    }

    fn parse(&self) -> Result<BootInfo, PvhError> {
        parse(&self.memory, START)
    }
}

#[test]
fn full_start_info_is_read() {
    let info = Builder::new()
        .module(0xB000, 0x2000)
        .cmdline(b"selftest=page_fault\0")
        .parse()
        .unwrap();
    assert_eq!(info.regions.len(), 3);
    assert_eq!(info.usable_bytes(), 0x9000 + 0x6000);
    assert_eq!(
        info.regions[1],
        MemoryRegion {
            start: 0x9000,
            size: 0x1000,
            kind: 2
        }
    );
    assert_eq!(
        info.boot_archive(),
        Ok(BootModule {
            start: 0xB000,
            size: 0x2000
        })
    );
    assert_eq!(info.cmdline.as_str(), "selftest=page_fault");
}

#[test]
fn bad_magic_is_refused() {
    let mut builder = Builder::new();
    builder.put32(START, 0xDEAD_BEEF);
    assert_eq!(
        builder.parse(),
        Err(PvhError::BadMagic { found: 0xDEAD_BEEF })
    );
}

#[test]
fn version_zero_has_no_memory_map() {
    let mut builder = Builder::new();
    builder.put32(START + 4, 0);
    assert_eq!(builder.parse(), Err(PvhError::NoMemoryMap { version: 0 }));
}

#[test]
fn zero_modules_parse_but_leave_no_archive() {
    let info = Builder::new().parse().unwrap();
    assert!(info.modules.is_empty());
    assert!(info.cmdline.is_empty());
    assert_eq!(info.boot_archive(), Err(PvhError::NoBootArchive));
}

#[test]
fn module_beyond_memory_is_refused() {
    let result = Builder::new().module(0xF000, 0x2000).parse();
    assert_eq!(
        result,
        Err(PvhError::ModuleOutsideRam {
            index: 0,
            start: 0xF000,
            size: 0x2000
        })
    );
}

#[test]
fn module_in_a_reserved_hole_is_refused() {
    let result = Builder::new().module(0x8000, 0x2000).parse();
    assert!(matches!(
        result,
        Err(PvhError::ModuleOutsideRam { index: 0, .. })
    ));
}

#[test]
fn module_with_wrapping_size_is_refused() {
    let result = Builder::new().module(0xB000, u64::MAX).parse();
    assert!(matches!(result, Err(PvhError::ModuleOutsideRam { .. })));
}

#[test]
fn absurd_counts_are_refused_before_reading() {
    let mut builder = Builder::new();
    builder.put32(START + 48, u32::MAX);
    assert_eq!(
        builder.parse(),
        Err(PvhError::TooManyRegions { count: u32::MAX })
    );
    let mut builder = Builder::new();
    builder.put32(START + 12, 1000);
    assert_eq!(
        builder.parse(),
        Err(PvhError::TooManyModules { count: 1000 })
    );
}

#[test]
fn pointers_outside_memory_are_refused() {
    let mut builder = Builder::new();
    builder.put64(START + 40, u64::MAX - 8);
    assert!(matches!(
        builder.parse(),
        Err(PvhError::Unreadable {
            what: "memory map",
            ..
        })
    ));
    assert!(matches!(
        parse(&builder.memory, 0xFFFF_FFFF_0000),
        Err(PvhError::Unreadable { .. })
    ));
}

#[test]
fn unterminated_or_invalid_cmdline_is_refused() {
    let long = [b'a'; 300];
    assert_eq!(
        Builder::new().cmdline(&long).parse(),
        Err(PvhError::BadCmdline)
    );
    assert_eq!(
        Builder::new().cmdline(b"\xff\xfe\0").parse(),
        Err(PvhError::BadCmdline)
    );
}
