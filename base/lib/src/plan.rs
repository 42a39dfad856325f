//! How a child's image becomes mappings: which pages each segment covers,
//! where its bytes go inside them, with which permissions, and roughly what
//! it all costs. Pure arithmetic over a validated [`arbor_elf::Image`], so
//! it is tested on the host; [`crate::loader`] carries it out.

use crate::abi::{PAGE_SIZE, map};
use crate::layout;
use arbor_elf::{ElfError, Image, MAX_SEGMENTS};
use core::fmt;

const PAGE: u64 = PAGE_SIZE as u64;

/// One segment, as the loader maps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SegmentMapping<'a> {
    /// First page's address in the child.
    pub vaddr: u64,
    /// Bytes of the dataspace and the mapping (page multiple).
    pub size: u64,
    /// Where `data` starts inside the dataspace.
    pub copy_offset: u64,
    /// The bytes to copy; the rest stays zero.
    pub data: &'a [u8],
    /// [`crate::abi::map`] flags.
    pub flags: u64,
}

/// Why an image cannot be loaded as a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The image itself is invalid.
    Elf(ElfError),
    /// A segment (by program-header index) overlaps the child's stack or IPC buffer.
    CollidesWithStack {
        /// Program-header index.
        index: usize,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Elf(error) => write!(f, "bad image: {error}"),
            Self::CollidesWithStack { index } => write!(
                f,
                "segment {index} overlaps the child's stack or IPC buffer"
            ),
        }
    }
}

/// The start of the region the loader keeps for the child's stack (with a
/// guard page below it) and IPC buffer.
pub const STACK_REGION_START: u64 = layout::STACK_TOP - layout::STACK_SIZE - PAGE;
/// One past the end of that region.
pub const STACK_REGION_END: u64 = layout::IPC_BUFFER + PAGE;

/// Everything the loader maps for one child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadPlan<'a> {
    /// Where the child starts.
    pub entry: u64,
    segments: [SegmentMapping<'a>; MAX_SEGMENTS],
    count: usize,
}

impl<'a> LoadPlan<'a> {
    /// Validates `bytes` and plans its mappings.
    pub fn new(bytes: &'a [u8]) -> Result<Self, PlanError> {
        let image = Image::parse(bytes).map_err(PlanError::Elf)?;
        let mut plan = LoadPlan {
            entry: image.entry(),
            segments: [SegmentMapping::default(); MAX_SEGMENTS],
            count: 0,
        };
        for (slot, segment) in plan.segments.iter_mut().zip(image.segments()) {
            if segment.page_start() < STACK_REGION_END && STACK_REGION_START < segment.page_end() {
                return Err(PlanError::CollidesWithStack {
                    index: segment.index,
                });
            }
            let permissions = segment.permissions;
            let mut flags = map::READ;
            if permissions.write {
                flags |= map::WRITE;
            }
            if permissions.execute {
                flags |= map::EXECUTE;
            }
            *slot = SegmentMapping {
                vaddr: segment.page_start(),
                size: segment.page_span(),
                copy_offset: segment.offset_in_first_page(),
                data: segment.data,
                flags,
            };
        }
        plan.count = image.segments().len();
        Ok(plan)
    }

    /// The segment mappings, in program-header order.
    pub fn segments(&self) -> &[SegmentMapping<'a>] {
        &self.segments[..self.count]
    }

    /// RAM the child's quota must hold for loading: every dataspace (its
    /// pages plus one for the object), the thread, and page tables (at most
    /// three new tables per mapping — PDPT, PD and PT — plus the stack's).
    pub fn ram_needed(&self) -> u64 {
        let segments: u64 = self.segments().iter().map(|s| s.size + PAGE).sum();
        let stack = layout::STACK_SIZE + PAGE;
        let ipc_buffer = 2 * PAGE;
        let thread = PAGE;
        let page_tables = 3 * (self.count as u64 + 2) * PAGE;
        segments + stack + ipc_buffer + thread + page_tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &[u8] = include_bytes!("../../elf/testdata/tiny.elf");

    #[test]
    fn real_image_maps_each_segment_with_its_rights() {
        let plan = LoadPlan::new(TINY).expect("valid");
        assert_eq!(plan.entry, 0x2011bc);
        let flags: std::vec::Vec<u64> = plan.segments().iter().map(|s| s.flags).collect();
        assert_eq!(
            flags,
            [map::READ, map::READ | map::EXECUTE, map::READ | map::WRITE]
        );
        let code = plan.segments()[1];
        assert_eq!(
            (code.vaddr, code.size, code.copy_offset),
            (0x201000, 0x1000, 0x1bc)
        );
        assert_eq!(code.data.len(), 10);
        assert!(
            plan.segments()
                .iter()
                .all(|s| s.copy_offset + s.data.len() as u64 <= s.size)
        );
        // 3 one-page segments (2 pages each) + stack + IPC buffer + thread + tables.
        assert_eq!(plan.ram_needed(), (6 + 17 + 2 + 1 + 15) * PAGE);
    }

    #[test]
    fn bad_images_are_refused_with_the_reason() {
        assert!(matches!(
            LoadPlan::new(&TINY[..10]),
            Err(PlanError::Elf(ElfError::TooShort { len: 10 }))
        ));
    }

    #[test]
    fn a_segment_over_the_stack_is_refused() {
        // Move the RW segment (program header 3) to the stack's guard page.
        let mut bytes = TINY.to_vec();
        let at = 64 + 3 * 56 + 16;
        bytes[at..at + 8].copy_from_slice(&STACK_REGION_START.to_le_bytes());
        assert_eq!(
            LoadPlan::new(&bytes),
            Err(PlanError::CollidesWithStack { index: 3 })
        );
    }
}
