//! User address spaces: per-Pd page tables whose upper half is the kernel's.
//!
//! Intermediate tables are paid by the Pd whose address space they belong
//! to and freed when it is destroyed (the frame table knows them by owner);
//! the top-level table is paid by whoever paid for the Pd. Tables are
//! reached through [`Objects::table`], which checks the frame table, so an
//! entry that points anywhere but at a Pd's page table ends the walk.

#![forbid(unsafe_code)]

use super::hw;
use super::object::{Kernel, ObjRef};
use super::store::Objects;
use crate::frames::FrameUse;
use arbor_abi::Error;

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const WRITE_THROUGH: u64 = 1 << 3;
const CACHE_DISABLE: u64 = 1 << 4;
const HUGE: u64 = 1 << 7;
const ADDRESS_MASK: u64 = 0x000F_FFFF_FFFF_F000;

/// How a page is mapped.
#[derive(Clone, Copy, Debug, Default)]
pub struct PageFlags {
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
    /// Uncached (device memory).
    pub uncached: bool,
}

fn index(vaddr: u64, level: u32) -> usize {
    ((vaddr >> (12 + 9 * level)) & 0x1FF) as usize
}

/// A new top-level table sharing the kernel half, paid by `payer`.
pub fn new_root(kernel: &mut Kernel, payer: Option<ObjRef>) -> Result<u64, Error> {
    let root = kernel.allocate_frame(FrameUse::PageTable, payer)?.address();
    let half = hw::kernel_half();
    if let Some(table) = kernel.objects.table_mut(root) {
        table[256..].copy_from_slice(&half);
    }
    Ok(root)
}

/// Maps one page; intermediate tables are charged to `pd`.
pub fn map_page(
    kernel: &mut Kernel,
    pd: ObjRef,
    root: u64,
    vaddr: u64,
    phys: u64,
    flags: PageFlags,
) -> Result<(), Error> {
    let mut level_table = root;
    for level in (1..=3).rev() {
        let table = kernel
            .objects
            .table(level_table)
            .ok_or(Error::InvalidState)?;
        let entry = table[index(vaddr, level)];
        if entry & PRESENT == 0 {
            let frame = kernel.allocate_frame(FrameUse::PageTable, Some(pd))?;
            let table = kernel
                .objects
                .table_mut(level_table)
                .ok_or(Error::InvalidState)?;
            table[index(vaddr, level)] = frame.address() | PRESENT | WRITABLE | USER;
            level_table = frame.address();
        } else if entry & HUGE != 0 {
            return Err(Error::AlreadyMapped);
        } else {
            level_table = entry & ADDRESS_MASK;
        }
    }
    let leaf = &mut kernel
        .objects
        .table_mut(level_table)
        .ok_or(Error::InvalidState)?[index(vaddr, 0)];
    if *leaf & PRESENT != 0 {
        return Err(Error::AlreadyMapped);
    }
    let mut entry = phys | PRESENT | USER;
    if flags.write {
        entry |= WRITABLE;
    }
    if !flags.execute {
        entry |= hw::no_execute_bit();
    }
    if flags.uncached {
        entry |= WRITE_THROUGH | CACHE_DISABLE;
    }
    *leaf = entry;
    Ok(())
}

/// The last-level table holding `vaddr`'s entry, if every level above is present.
fn leaf_table(objects: &Objects, root: u64, vaddr: u64) -> Option<u64> {
    let mut level_table = root;
    for level in (1..=3).rev() {
        let entry = objects.table(level_table)?[index(vaddr, level)];
        if entry & PRESENT == 0 || entry & HUGE != 0 {
            return None;
        }
        level_table = entry & ADDRESS_MASK;
    }
    Some(level_table)
}

/// The present leaf entry for `vaddr`.
fn leaf(objects: &Objects, root: u64, vaddr: u64) -> Option<u64> {
    let entry = objects.table(leaf_table(objects, root, vaddr)?)?[index(vaddr, 0)];
    (entry & PRESENT != 0).then_some(entry)
}

/// Removes one page's mapping; returns the physical address it mapped.
pub fn unmap_page(objects: &mut Objects, root: u64, vaddr: u64) -> Option<u64> {
    let table = leaf_table(objects, root, vaddr)?;
    let entry = &mut objects.table_mut(table)?[index(vaddr, 0)];
    if *entry & PRESENT == 0 {
        return None;
    }
    let phys = *entry & ADDRESS_MASK;
    *entry = 0;
    Some(phys)
}

/// The physical address behind a user page, if it is mapped writable.
pub fn translate_writable(objects: &Objects, root: u64, vaddr: u64) -> Option<u64> {
    let entry = leaf(objects, root, vaddr)?;
    (entry & WRITABLE != 0 && entry & USER != 0).then_some((entry & ADDRESS_MASK) | (vaddr & 0xFFF))
}

/// The physical address behind a user page, if it is mapped.
pub fn translate(objects: &Objects, root: u64, vaddr: u64) -> Option<u64> {
    let entry = leaf(objects, root, vaddr)?;
    Some((entry & ADDRESS_MASK) | (vaddr & 0xFFF))
}

/// Visits the present leaf entries of `[start, start + pages * 4096)` in
/// address order with their virtual address, until `visit` returns false.
/// Absent (and huge) upper-level entries are skipped whole, so the work is
/// bounded by the page tables that exist — at most 512 entries per table a
/// Pd has paid for — and never by the size of the range a caller claims.
pub fn for_each_leaf(
    objects: &mut Objects,
    root: u64,
    start: u64,
    pages: u64,
    mut visit: impl FnMut(u64, &mut u64) -> bool,
) {
    let end = start.saturating_add(pages.saturating_mul(4096));
    let mut vaddr = start;
    'walk: while vaddr < end {
        // Down to the last-level table holding `vaddr`, skipping whatever
        // an absent (or huge) entry spans.
        let mut level_table = root;
        for level in (1..=3).rev() {
            let Some(table) = objects.table(level_table) else {
                return;
            };
            let entry = table[index(vaddr, level)];
            if entry & PRESENT == 0 || entry & HUGE != 0 {
                let span = 1u64 << (12 + 9 * level);
                vaddr = (vaddr & !(span - 1)).saturating_add(span);
                continue 'walk;
            }
            level_table = entry & ADDRESS_MASK;
        }
        // Then along that table to its end (or the range's).
        let Some(table) = objects.table_mut(level_table) else {
            return;
        };
        for entry in &mut table[index(vaddr, 0)..] {
            if vaddr >= end {
                return;
            }
            if *entry & PRESENT != 0 && !visit(vaddr, entry) {
                return;
            }
            vaddr += 4096;
        }
    }
}

/// Removes every mapping in `[start, start + pages * 4096)`; work bounded as
/// for [`for_each_leaf`].
pub fn unmap_range(objects: &mut Objects, root: u64, start: u64, pages: u64) {
    for_each_leaf(objects, root, start, pages, |_, entry| {
        *entry = 0;
        true
    });
}

/// Removes the mappings in `[start, start + pages * 4096)` that point into
/// the physical range `frames`.
pub fn unmap_frames_in(
    objects: &mut Objects,
    root: u64,
    start: u64,
    pages: u64,
    frames: core::ops::Range<u64>,
) {
    for_each_leaf(objects, root, start, pages, |_, entry| {
        if frames.contains(&(*entry & ADDRESS_MASK)) {
            *entry = 0;
        }
        true
    });
}

/// Whether any page of `[start, start + pages * 4096)` maps into `frames`.
pub fn maps_any_of(
    objects: &mut Objects,
    root: u64,
    start: u64,
    pages: u64,
    frames: core::ops::Range<u64>,
) -> bool {
    let mut found = false;
    for_each_leaf(objects, root, start, pages, |_, entry| {
        found = frames.contains(&(*entry & ADDRESS_MASK));
        !found
    });
    found
}
