//! Physical memory: which frames are free, and handing them out.
//!
//! [`FreeFrames::new`] takes the boot memory map and the ranges in use (the
//! kernel image, the boot archive) and keeps the page-aligned remainder of
//! usable RAM above 1 MiB. This is pure arithmetic, tested on the host; the
//! kernel only calls it.

#![forbid(unsafe_code)]

use crate::pvh::MemoryRegion;
use heapless::Vec;

/// The size of a page frame.
pub const PAGE_SIZE: u64 = 4096;
/// Memory below 1 MiB is left alone: BIOS data, the real-mode IVT, option ROMs.
pub const LOW_MEMORY_END: u64 = 0x10_0000;
/// Most separate free ranges tracked.
pub const MAX_RANGES: usize = 64;

/// A physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PhysAddr(pub u64);

/// A half-open range of physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl PhysRange {
    /// The range's length in bytes.
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// Free page frames, as ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreeFrames {
    ranges: Vec<PhysRange, MAX_RANGES>,
}

impl FreeFrames {
    /// Usable RAM from `regions`, page-aligned inwards, minus low memory and
    /// every range in `in_use`. Ranges past [`MAX_RANGES`] are dropped (and
    /// counted in the return value) rather than failing the boot.
    pub fn new(regions: &[MemoryRegion], in_use: &[PhysRange]) -> (Self, usize) {
        let mut free = FreeFrames { ranges: Vec::new() };
        let mut dropped = 0;
        for region in regions.iter().filter(|r| r.is_usable()) {
            let start = region.start.max(LOW_MEMORY_END).next_multiple_of(PAGE_SIZE);
            let end = region.end() / PAGE_SIZE * PAGE_SIZE;
            if start < end {
                dropped += free.add(PhysRange { start, end });
            }
        }
        for used in in_use {
            dropped += free.remove(*used);
        }
        (free, dropped)
    }

    /// Adds a range; returns 1 if it had to be dropped for want of room.
    fn add(&mut self, range: PhysRange) -> usize {
        usize::from(self.ranges.push(range).is_err())
    }

    /// Cuts `used` (widened to whole pages) out of every range.
    fn remove(&mut self, used: PhysRange) -> usize {
        let used = PhysRange {
            start: used.start / PAGE_SIZE * PAGE_SIZE,
            end: used.end.saturating_add(PAGE_SIZE - 1) / PAGE_SIZE * PAGE_SIZE,
        };
        let mut dropped = 0;
        let old = core::mem::take(&mut self.ranges);
        for range in old {
            if used.end <= range.start || range.end <= used.start {
                dropped += self.add(range);
                continue;
            }
            if range.start < used.start {
                dropped += self.add(PhysRange {
                    start: range.start,
                    end: used.start,
                });
            }
            if used.end < range.end {
                dropped += self.add(PhysRange {
                    start: used.end,
                    end: range.end,
                });
            }
        }
        dropped
    }

    /// The free ranges.
    pub fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }

    /// Free bytes.
    pub fn free_bytes(&self) -> u64 {
        self.ranges.iter().map(PhysRange::size).sum()
    }

    /// Takes `count` consecutive frames from the first range that has them.
    pub fn allocate_contiguous(&mut self, count: u64) -> Option<PhysAddr> {
        let bytes = count.checked_mul(PAGE_SIZE)?;
        let index = self
            .ranges
            .iter()
            .position(|r| r.size() >= bytes && bytes > 0)?;
        let range = &mut self.ranges[index];
        let start = PhysAddr(range.start);
        range.start += bytes;
        if range.start == range.end {
            self.ranges.remove(index);
        }
        Some(start)
    }

    /// Takes one frame, lowest address first.
    pub fn allocate(&mut self) -> Option<PhysAddr> {
        let index = self.ranges.iter().position(|r| r.size() >= PAGE_SIZE)?;
        let range = &mut self.ranges[index];
        let frame = PhysAddr(range.start);
        range.start += PAGE_SIZE;
        if range.start == range.end {
            self.ranges.remove(index);
        }
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram(start: u64, size: u64) -> MemoryRegion {
        MemoryRegion {
            start,
            size,
            kind: 1,
        }
    }

    #[test]
    fn low_memory_reserved_regions_and_ragged_edges_are_excluded() {
        let regions = [
            ram(0, 0x9F000),
            MemoryRegion {
                start: 0xF0000,
                size: 0x10000,
                kind: 2,
            },
            ram(0x10_0000, 0x7EF_0800),
        ];
        let (free, dropped) = FreeFrames::new(&regions, &[]);
        assert_eq!(dropped, 0);
        assert_eq!(
            free.ranges(),
            [PhysRange {
                start: 0x10_0000,
                end: 0x7FF_0000
            }]
        );
    }

    #[test]
    fn used_ranges_are_cut_out_page_aligned() {
        let (free, _) = FreeFrames::new(
            &[ram(0x10_0000, 0x100_0000)],
            &[
                PhysRange {
                    start: 0x10_0000,
                    end: 0x20_0800,
                },
                PhysRange {
                    start: 0x50_0010,
                    end: 0x50_0020,
                },
            ],
        );
        assert_eq!(
            free.ranges(),
            [
                PhysRange {
                    start: 0x20_1000,
                    end: 0x50_0000
                },
                PhysRange {
                    start: 0x50_1000,
                    end: 0x110_0000
                }
            ]
        );
    }

    #[test]
    fn allocation_walks_the_ranges_and_ends() {
        let (mut free, _) = FreeFrames::new(&[ram(0x10_0000, 0x2000), ram(0x20_0000, 0x1000)], &[]);
        assert_eq!(free.free_bytes(), 0x3000);
        assert_eq!(free.allocate(), Some(PhysAddr(0x10_0000)));
        assert_eq!(free.allocate(), Some(PhysAddr(0x10_1000)));
        assert_eq!(free.allocate(), Some(PhysAddr(0x20_0000)));
        assert_eq!(free.allocate(), None);
        assert_eq!(free.free_bytes(), 0);
    }

    #[test]
    fn contiguous_allocation_takes_from_the_first_range_large_enough() {
        let (mut free, _) = FreeFrames::new(&[ram(0x10_0000, 0x2000), ram(0x20_0000, 0x8000)], &[]);
        assert_eq!(free.allocate_contiguous(3), Some(PhysAddr(0x20_0000)));
        assert_eq!(free.allocate_contiguous(6), None);
        assert_eq!(free.allocate_contiguous(0), None);
        assert_eq!(free.allocate_contiguous(u64::MAX), None);
        assert_eq!(free.free_bytes(), 0x2000 + 0x5000);
    }

    #[test]
    fn too_many_fragments_are_counted_not_fatal() {
        let holes: std::vec::Vec<_> = (0..100)
            .map(|i| PhysRange {
                start: 0x20_0000 + i * 0x2000,
                end: 0x20_1000 + i * 0x2000,
            })
            .collect();
        let (free, dropped) = FreeFrames::new(&[ram(0x10_0000, 0x100_0000)], &holes);
        assert_eq!(free.ranges().len(), MAX_RANGES);
        assert!(dropped > 0);
    }

    #[test]
    fn region_at_the_top_of_the_address_space_does_not_overflow() {
        let (free, _) = FreeFrames::new(&[ram(u64::MAX - 0x1FFF, 0x10000)], &[]);
        assert_eq!(
            free.ranges(),
            [PhysRange {
                start: u64::MAX - 0x1FFF,
                end: u64::MAX / 4096 * 4096
            }]
        );
    }
}
