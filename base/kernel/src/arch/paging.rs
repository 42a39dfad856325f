//! The kernel's own page tables (4-level, Intel SDM Vol. 3A, 4.5).
//!
//! Layout of the kernel half:
//! - `PHYS_WINDOW` maps every range of the memory map with 2 MiB pages,
//!   writable and non-executable: how the kernel reaches any frame.
//! - `KERNEL_VMA` maps the kernel image with 4 KiB pages: text read-only and
//!   executable, rodata read-only, data and bss writable and non-executable.
//!
//! The low half stays empty: it is for user space.

use crate::memory::{FreeFrames, PAGE_SIZE, PhysAddr};
use crate::pvh::MemoryRegion;
use core::fmt;

/// Where all physical memory appears in the kernel's address space.
pub const PHYS_WINDOW: u64 = 0xFFFF_8000_0000_0000;
/// Where the kernel image is linked.
pub const KERNEL_VMA: u64 = 0xFFFF_FFFF_8000_0000;

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const HUGE: u64 = 1 << 7;
const GLOBAL: u64 = 1 << 8;
const NO_EXECUTE: u64 = 1 << 63;
const ADDRESS_MASK: u64 = 0x000F_FFFF_FFFF_F000;
const LARGE_PAGE: u64 = 2 << 20;

unsafe extern "C" {
    static __kernel_phys_start: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
}

fn symbol_address(symbol: &u8) -> u64 {
    symbol as *const u8 as u64
}

/// The physical range the kernel image occupies.
pub fn kernel_image() -> crate::memory::PhysRange {
    // SAFETY: linker-script symbols; only their addresses are taken.
    let (start, end) = unsafe {
        (
            symbol_address(&__kernel_phys_start),
            symbol_address(&__kernel_end),
        )
    };
    crate::memory::PhysRange {
        start,
        end: end - KERNEL_VMA,
    }
}

/// Why a mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingError {
    /// No free frame for a page table.
    OutOfFrames,
    /// The address is already covered by a mapping of another size.
    Conflict { virt: u64 },
}

impl fmt::Display for PagingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfFrames => write!(f, "out of frames for page tables"),
            Self::Conflict { virt } => write!(f, "{virt:#x} is already mapped differently"),
        }
    }
}

/// The kernel's own top-level table, whose upper half every Pd shares.
static mut KERNEL_ROOT: u64 = 0;

/// The kernel's own top-level table.
pub fn kernel_root() -> u64 {
    // SAFETY: written once at boot (in `activate`) before anyone reads it.
    unsafe { KERNEL_ROOT }
}

/// The kernel half of the kernel's top-level table (entries 256..512),
/// which every Pd's top-level table shares.
pub fn kernel_half() -> [u64; 256] {
    let mut half = [0; 256];
    // SAFETY: the kernel's root table, set at boot; only read here, and the
    // copy is taken before anything else can touch it.
    half.copy_from_slice(unsafe { &table(kernel_root())[256..] });
    half
}

/// The no-execute bit, or 0 when the CPU has none.
pub fn no_execute_bit() -> u64 {
    if super::cpu::has_nx() { NO_EXECUTE } else { 0 }
}

/// Loads CR3 (a table address, possibly with a PCID and the no-flush bit).
pub fn load_cr3(value: u64) {
    // SAFETY: every value passed is a top-level table that maps the kernel
    // half identically, so execution continues across the switch.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// A pointer to physical memory through the physical window.
pub fn phys_to_virt(phys: u64) -> *mut u8 {
    (PHYS_WINDOW + phys) as *mut u8
}

/// The kernel's page table at physical address `phys`.
///
/// # Safety
/// `phys` must be a page-table frame of the kernel's own tables (allocated
/// by this module, or CR3's), reachable through the physical window, and
/// the caller must hold no other reference to it while the result lives.
/// Only boot-time construction of the kernel's tables and `kernel_half`
/// use it; Pds' tables are reached through the kernel's object store.
unsafe fn table<'a>(phys: u64) -> &'a mut [u64; 512] {
    // SAFETY: as the caller guarantees.
    unsafe { &mut *(phys_to_virt(phys) as *mut [u64; 512]) }
}

fn zeroed_frame(frames: &mut FreeFrames) -> Result<u64, PagingError> {
    let PhysAddr(frame) = frames.allocate().ok_or(PagingError::OutOfFrames)?;
    // SAFETY: a frame just taken from the free ranges, referenced by nobody.
    unsafe { table(frame).fill(0) };
    Ok(frame)
}

/// The table an entry points to, creating it if absent.
fn next_table(entry: &mut u64, virt: u64, frames: &mut FreeFrames) -> Result<u64, PagingError> {
    if *entry & PRESENT == 0 {
        *entry = zeroed_frame(frames)? | PRESENT | WRITABLE;
    } else if *entry & HUGE != 0 {
        return Err(PagingError::Conflict { virt });
    }
    Ok(*entry & ADDRESS_MASK)
}

fn index(virt: u64, level: u32) -> usize {
    ((virt >> (12 + 9 * level)) & 0x1FF) as usize
}

/// Page tables under construction.
pub struct AddressSpace {
    /// Physical address of the top-level table.
    pub root: u64,
    nx: u64,
}

impl AddressSpace {
    /// An empty address space.
    pub fn new(frames: &mut FreeFrames) -> Result<Self, PagingError> {
        let nx = if super::cpu::has_nx() { NO_EXECUTE } else { 0 };
        Ok(AddressSpace {
            root: zeroed_frame(frames)?,
            nx,
        })
    }

    fn map(
        &mut self,
        virt: u64,
        entry: u64,
        large: bool,
        frames: &mut FreeFrames,
    ) -> Result<(), PagingError> {
        // SAFETY: each table is one of this address space's, made by
        // `next_table` (or its root); each reference dies before the next
        // is made, and boot runs on one CPU with nothing else using them.
        let slot = unsafe {
            let pdpt = next_table(&mut table(self.root)[index(virt, 3)], virt, frames)?;
            let pd = next_table(&mut table(pdpt)[index(virt, 2)], virt, frames)?;
            if large {
                &mut table(pd)[index(virt, 1)]
            } else {
                let pt = next_table(&mut table(pd)[index(virt, 1)], virt, frames)?;
                &mut table(pt)[index(virt, 0)]
            }
        };
        if *slot & PRESENT != 0 && *slot != entry {
            return Err(PagingError::Conflict { virt });
        }
        *slot = entry;
        Ok(())
    }

    /// Maps RAM and ACPI ranges of the memory map into the physical window
    /// with 2 MiB pages. Reserved ranges (PCI windows, firmware) are left out:
    /// device memory is mapped on demand, not wholesale.
    pub fn map_physical_window(
        &mut self,
        regions: &[MemoryRegion],
        frames: &mut FreeFrames,
    ) -> Result<u64, PagingError> {
        const ACPI_RECLAIMABLE: u32 = 3;
        const ACPI_NVS: u32 = 4;
        let mut mapped = 0;
        for region in regions
            .iter()
            .filter(|r| r.is_usable() || r.kind == ACPI_RECLAIMABLE || r.kind == ACPI_NVS)
        {
            let start = region.start / LARGE_PAGE * LARGE_PAGE;
            let end = region.end().div_ceil(LARGE_PAGE) * LARGE_PAGE;
            for phys in (start..end).step_by(LARGE_PAGE as usize) {
                let entry = phys | PRESENT | WRITABLE | HUGE | GLOBAL | self.nx;
                let already = self.map(PHYS_WINDOW + phys, entry, true, frames);
                if already.is_ok() {
                    mapped += LARGE_PAGE;
                }
            }
        }
        Ok(mapped)
    }

    /// Maps the kernel image with per-section permissions.
    pub fn map_kernel_image(&mut self, frames: &mut FreeFrames) -> Result<(), PagingError> {
        // SAFETY: linker-script symbols; only their addresses are taken.
        let (text, text_end, rodata_end, end) = unsafe {
            (
                symbol_address(&__text_start),
                symbol_address(&__text_end),
                symbol_address(&__rodata_end),
                symbol_address(&__kernel_end),
            )
        };
        let guards = super::stacks::guard_pages();
        for virt in (text..end).step_by(PAGE_SIZE as usize) {
            if guards.contains(&virt) {
                continue;
            }
            let permissions = if virt < text_end {
                0
            } else if virt < rodata_end {
                self.nx
            } else {
                WRITABLE | self.nx
            };
            let entry = (virt - KERNEL_VMA) | PRESENT | GLOBAL | permissions;
            self.map(virt, entry, false, frames)?;
        }
        Ok(())
    }

    /// Maps one page of device registers uncached at its physical-window address.
    pub fn map_device_page(
        &mut self,
        phys: u64,
        frames: &mut FreeFrames,
    ) -> Result<(), PagingError> {
        const UNCACHED: u64 = (1 << 3) | (1 << 4);
        let entry = phys | PRESENT | WRITABLE | GLOBAL | UNCACHED | self.nx;
        self.map(PHYS_WINDOW + phys, entry, false, frames)
    }

    /// Makes this address space the current one.
    pub fn activate(&self) {
        // SAFETY: written once, here, at boot; read-only afterwards.
        unsafe { KERNEL_ROOT = self.root };
        // SAFETY: the tables map the running kernel image, its stacks and the
        // physical window at the same addresses as the boot tables did, so
        // execution continues seamlessly after the switch.
        unsafe {
            core::arch::asm!("mov cr3, {}", in(reg) self.root, options(nostack, preserves_flags));
        }
    }
}
