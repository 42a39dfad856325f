//! Free virtual address ranges of the component's own dynamic region
//! ([`crate::layout::DYNAMIC_BASE`]..[`crate::layout::DYNAMIC_END`]):
//! page-granular, first fit, neighbours merged on free.

use crate::abi::{Error, PAGE_SIZE};
use crate::layout;
use crate::sync::TryLock;

const PAGE: u64 = PAGE_SIZE as u64;
/// Most separate free ranges tracked; a free that would need more is refused.
pub const MAX_RANGES: usize = 32;

/// A half-open, page-aligned range of addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Range {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
}

/// Sorted, disjoint, non-adjacent free ranges.
pub struct RangeAllocator {
    free: [Range; MAX_RANGES],
    count: usize,
}

impl RangeAllocator {
    /// Everything in `[start, end)` free (both rounded inwards to pages).
    pub const fn new(start: u64, end: u64) -> Self {
        let start = start.div_ceil(PAGE) * PAGE;
        let end = end / PAGE * PAGE;
        let mut free = [Range { start: 0, end: 0 }; MAX_RANGES];
        let count = if start < end {
            free[0] = Range { start, end };
            1
        } else {
            0
        };
        RangeAllocator { free, count }
    }

    /// A range of `size` bytes (rounded up to pages), lowest fit first.
    pub fn allocate(&mut self, size: u64) -> Option<Range> {
        let size = size.checked_add(PAGE - 1)? / PAGE * PAGE;
        if size == 0 {
            return None;
        }
        let index = self.free[..self.count]
            .iter()
            .position(|r| r.end - r.start >= size)?;
        let range = &mut self.free[index];
        let start = range.start;
        range.start += size;
        if range.start == range.end {
            self.free.copy_within(index + 1..self.count, index);
            self.count -= 1;
        }
        Some(Range {
            start,
            end: start + size,
        })
    }

    /// Returns `range` (which must have come from [`Self::allocate`]).
    /// Overlapping or unaligned ranges, and frees that would need more than
    /// [`MAX_RANGES`] entries, are refused with `false`.
    pub fn free(&mut self, range: Range) -> bool {
        if range.start >= range.end
            || !range.start.is_multiple_of(PAGE)
            || !range.end.is_multiple_of(PAGE)
        {
            return false;
        }
        let index = self.free[..self.count]
            .iter()
            .position(|r| r.start >= range.end)
            .unwrap_or(self.count);
        if index > 0 && self.free[index - 1].end > range.start {
            return false;
        }
        let merges_left = index > 0 && self.free[index - 1].end == range.start;
        let merges_right = index < self.count && self.free[index].start == range.end;
        match (merges_left, merges_right) {
            (true, true) => {
                self.free[index - 1].end = self.free[index].end;
                self.free.copy_within(index + 1..self.count, index);
                self.count -= 1;
            }
            (true, false) => self.free[index - 1].end = range.end,
            (false, true) => self.free[index].start = range.start,
            (false, false) => {
                if self.count == MAX_RANGES {
                    return false;
                }
                self.free.copy_within(index..self.count, index + 1);
                self.free[index] = range;
                self.count += 1;
            }
        }
        true
    }

    /// The free ranges, lowest first.
    pub fn free_ranges(&self) -> &[Range] {
        &self.free[..self.count]
    }
}

// The heap's reserve sits at the bottom of the dynamic region; see `heap`.
static OWN: TryLock<RangeAllocator> = TryLock::new(RangeAllocator::new(
    layout::DYNAMIC_BASE + layout::HEAP_RESERVE,
    layout::DYNAMIC_END,
));

/// A free range of the component's own address space.
pub fn allocate(size: u64) -> Result<Range, Error> {
    OWN.try_lock()
        .and_then(|mut own| own.allocate(size))
        .ok_or(Error::OutOfMemory)
}

/// Returns a range (already unmapped) of the component's own address space.
pub fn free(range: Range) {
    if let Some(mut own) = OWN.try_lock() {
        own.free(range);
    }
}

/// Maps the first `size` bytes of a dataspace read-only into a fresh range of
/// this component's address space, for good, and returns them.
pub fn map_read_only(dataspace: crate::abi::CapSlot, size: u64) -> Result<&'static [u8], Error> {
    if size == 0 {
        return Ok(&[]);
    }
    let span = size
        .checked_next_multiple_of(4096)
        .ok_or(Error::InvalidArgument)?;
    let range = allocate(span)?;
    if let Err(error) = crate::sys::map(
        crate::abi::slot::OWN_PD,
        dataspace,
        0,
        range.start,
        span,
        crate::abi::map::READ,
    ) {
        free(range);
        return Err(error);
    }
    // SAFETY: `span` bytes are mapped readable at `range.start` for the rest
    // of the component's life (the range is never freed or unmapped), and
    // the mapping is read-only here, so no Rust reference aliases a write.
    Ok(unsafe { core::slice::from_raw_parts(range.start as *const u8, size as usize) })
}

/// Maps the first `pixels` 32-bit pixels of a dataspace readable and
/// writable into a fresh range of this component's address space: a pixel
/// buffer shared with another component (a Framebuffer or Gui session).
/// [`unmap_pixels`] gives the range back.
pub fn map_pixels(
    dataspace: crate::abi::CapSlot,
    pixels: u64,
) -> Result<&'static mut [u32], Error> {
    let bytes = pixels.checked_mul(4).ok_or(Error::InvalidArgument)?;
    if bytes == 0 {
        return Ok(&mut []);
    }
    let span = bytes
        .checked_next_multiple_of(4096)
        .ok_or(Error::InvalidArgument)?;
    let range = allocate(span)?;
    if let Err(error) = crate::sys::map(
        crate::abi::slot::OWN_PD,
        dataspace,
        0,
        range.start,
        span,
        crate::abi::map::READ | crate::abi::map::WRITE,
    ) {
        free(range);
        return Err(error);
    }
    // SAFETY: `span` bytes are mapped readable and writable at the
    // page-aligned `range.start` until `unmap_pixels` takes this slice back,
    // and no other Rust reference in this component covers the range. The
    // other component sharing the dataspace may change pixels at any time;
    // every bit pattern is a valid `u32`, so that only changes values.
    Ok(unsafe { core::slice::from_raw_parts_mut(range.start as *mut u32, pixels as usize) })
}

/// Unmaps a buffer [`map_pixels`] returned and frees its range.
pub fn unmap_pixels(pixels: &'static mut [u32]) {
    let start = pixels.as_ptr() as u64;
    let span = (pixels.len() as u64 * 4).next_multiple_of(4096);
    if span == 0 {
        return;
    }
    let _ = crate::sys::unmap(crate::abi::slot::OWN_PD, start, span);
    free(Range {
        start,
        end: start + span,
    });
}

/// A fresh dataspace (paid from this component's quota) holding a copy of
/// `bytes`, in a newly allocated capability slot. It is filled through a
/// temporary mapping, which is gone again when this returns.
pub fn dataspace_with(bytes: &[u8]) -> Result<crate::abi::CapSlot, Error> {
    use crate::abi::{ObjectKind, map, slot};
    let dataspace = crate::slots::allocate()?;
    let size = (bytes.len() as u64).max(1);
    let span = size.next_multiple_of(4096);
    let filled =
        crate::sys::create(ObjectKind::Dataspace, slot::OWN_PD, dataspace, size).and_then(|()| {
            let window = allocate(span)?;
            let mapped = crate::sys::map(
                slot::OWN_PD,
                dataspace,
                0,
                window.start,
                span,
                map::READ | map::WRITE,
            );
            if mapped.is_ok() {
                write_bytes(window.start, bytes);
                let _ = crate::sys::unmap(slot::OWN_PD, window.start, span);
            }
            free(window);
            mapped
        });
    if let Err(error) = filled {
        let _ = crate::sys::destroy(dataspace);
        crate::slots::release(dataspace);
        return Err(error);
    }
    Ok(dataspace)
}

/// Copies `bytes` to `address`, which the caller mapped writable in this
/// component for at least `bytes.len()` bytes and references nowhere else.
pub fn write_bytes(address: u64, bytes: &[u8]) {
    // SAFETY: per the contract above, the destination is mapped, writable
    // and not aliased by any Rust reference.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), address as *mut u8, bytes.len()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_disjoint_and_merge_back() {
        let mut space = RangeAllocator::new(0x10_0000, 0x20_0000);
        let a = space.allocate(1).expect("room");
        let b = space.allocate(0x2000).expect("room");
        let c = space.allocate(0x1000).expect("room");
        assert_eq!((a.start, a.end), (0x10_0000, 0x10_1000));
        assert_eq!(b.start, a.end);
        assert_eq!(c.start, b.end);
        assert!(space.free(b));
        assert!(!space.free(b), "double free refused");
        assert_eq!(space.allocate(0x1000).map(|r| r.start), Some(b.start));
        assert!(space.free(Range {
            start: b.start,
            end: b.start + 0x1000
        }));
        assert!(space.free(a));
        assert!(space.free(c));
        assert_eq!(
            space.free_ranges(),
            &[Range {
                start: 0x10_0000,
                end: 0x20_0000
            }]
        );
    }

    #[test]
    fn impossible_requests_fail_cleanly() {
        let mut space = RangeAllocator::new(0x1000, 0x3000);
        assert_eq!(space.allocate(0), None);
        assert_eq!(space.allocate(u64::MAX), None);
        assert_eq!(space.allocate(0x3000), None);
        assert!(!space.free(Range {
            start: 0x1800,
            end: 0x2000
        }));
        let empty = RangeAllocator::new(0x2000, 0x1000);
        assert!(empty.free_ranges().is_empty());
    }

    #[test]
    fn fragmentation_is_bounded() {
        let mut space = RangeAllocator::new(0, 0x1000 * 200);
        let ranges: std::vec::Vec<Range> = (0..100).map(|_| space.allocate(1).unwrap()).collect();
        // Free every other page: each becomes its own entry until the table is full.
        let accepted = ranges.iter().step_by(2).filter(|r| space.free(**r)).count();
        assert_eq!(accepted, MAX_RANGES - 1);
    }
}
