//! The frame table: one entry per page frame of RAM, saying what the frame
//! is used for and which Pd pays for it.
//!
//! Every kernel object lives in a frame of its own, so a capability names an
//! object by frame number plus the frame's *generation*; freeing a frame bumps
//! its generation, which makes every stale capability fail cleanly. Ownership
//! is recorded per frame, so destroying a Pd finds everything it paid for by
//! scanning this table: simple, and bounded by the machine's size.
//!
//! Pure logic over a slice; the kernel places the slice in memory it reserved
//! at boot, the host tests use a `Vec`.

#![forbid(unsafe_code)]

/// A physical frame number (physical address / 4096). Wide enough for every
/// 52-bit physical address x86_64 can name, so no frame number is ever
/// truncated (a device frame at or above 2^44 once aliased RAM that way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pfn(pub u64);

/// Highest physical address bit x86_64 page tables can hold, plus one.
pub const PHYS_ADDRESS_BITS: u32 = 52;

impl Pfn {
    /// The frame's physical address.
    pub fn address(self) -> u64 {
        self.0 << 12
    }

    /// The frame holding physical address `phys`.
    pub fn containing(phys: u64) -> Pfn {
        Pfn(phys >> 12)
    }

    /// The frame `pages` frames after this one.
    pub fn offset(self, pages: u64) -> Pfn {
        Pfn(self.0 + pages)
    }
}

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameUse {
    /// Not RAM, or kept by the kernel (its image, this table, the boot archive).
    Reserved = 0,
    /// Free for allocation.
    Free = 1,
    /// A kernel object.
    Object = 2,
    /// Contents of a dataspace.
    Data = 3,
    /// A page table of a Pd.
    PageTable = 4,
    /// A page of a Pd's capability table.
    CapTable = 5,
    /// Half of a Pd's I/O permission bitmap (two frames).
    IoBitmap = 6,
    /// A page of a Pd's mapping records.
    MapRecords = 7,
}

/// One frame's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct FrameInfo {
    /// Bumped every time the frame is freed; 64 bits never wrap in practice
    /// (a frame freed every nanosecond takes 584 years), so a stale
    /// capability can never come back to life.
    pub generation: u64,
    /// The Pd object (frame) that pays for this frame; 0 when none.
    pub owner: u64,
    /// What the frame holds.
    pub usage: FrameUse,
}

impl FrameInfo {
    /// A frame the allocator never hands out.
    pub const RESERVED: FrameInfo = FrameInfo {
        generation: 0,
        owner: 0,
        usage: FrameUse::Reserved,
    };
}

/// The table, covering frames `base .. base + infos.len()`.
pub struct FrameTable<'a> {
    base: u64,
    infos: &'a mut [FrameInfo],
    free: usize,
    /// Where the next single-frame search starts (next fit).
    cursor: usize,
}

impl<'a> FrameTable<'a> {
    /// A table over `infos`, which describe frames from `base` on. Entries
    /// marked [`FrameUse::Free`] are available.
    pub fn new(base: Pfn, infos: &'a mut [FrameInfo]) -> Self {
        let free = infos.iter().filter(|i| i.usage == FrameUse::Free).count();
        FrameTable {
            base: base.0,
            infos,
            free,
            cursor: 0,
        }
    }

    #[inline(always)]
    fn index(&self, pfn: Pfn) -> Option<usize> {
        // A frame below `base` wraps around to far beyond the table's end:
        // one comparison rejects both.
        let index = pfn.0.wrapping_sub(self.base);
        (index < self.infos.len() as u64).then_some(index as usize)
    }

    /// The record of `pfn`, if the table covers it.
    #[inline(always)]
    pub fn info(&self, pfn: Pfn) -> Option<FrameInfo> {
        self.index(pfn).map(|i| self.infos[i])
    }

    /// Whether `pfn` is RAM holding dataspace contents that a Pd pays for:
    /// the only frames the kernel reads or writes on a user's behalf (IPC
    /// buffers). Device memory, page tables, objects and anything outside
    /// the table are not.
    #[inline]
    pub fn is_user_data(&self, pfn: Pfn) -> bool {
        self.info(pfn)
            .is_some_and(|info| info.usage == FrameUse::Data && info.owner != 0)
    }

    /// Free frames.
    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// Takes one free frame for `usage`, paid by `owner`.
    pub fn allocate(&mut self, usage: FrameUse, owner: Pfn) -> Option<Pfn> {
        let len = self.infos.len();
        for step in 0..len {
            let index = (self.cursor + step) % len;
            if self.infos[index].usage == FrameUse::Free {
                self.cursor = (index + 1) % len;
                return Some(self.take(index, usage, owner));
            }
        }
        None
    }

    /// Takes `count` consecutive free frames, lowest address first.
    pub fn allocate_contiguous(
        &mut self,
        count: usize,
        usage: FrameUse,
        owner: Pfn,
    ) -> Option<Pfn> {
        if count == 0 || count > self.free {
            return None;
        }
        let mut run = 0;
        for index in 0..self.infos.len() {
            run = if self.infos[index].usage == FrameUse::Free {
                run + 1
            } else {
                0
            };
            if run == count {
                let first = index + 1 - count;
                for i in first..=index {
                    self.take(i, usage, owner);
                }
                return Some(Pfn(self.base + first as u64));
            }
        }
        None
    }

    fn take(&mut self, index: usize, usage: FrameUse, owner: Pfn) -> Pfn {
        let info = &mut self.infos[index];
        info.usage = usage;
        info.owner = owner.0;
        self.free -= 1;
        Pfn(self.base + index as u64)
    }

    /// Returns a frame; its generation changes, so references to it go stale.
    /// Freeing a frame that is free or reserved does nothing and returns false.
    pub fn free(&mut self, pfn: Pfn) -> bool {
        let Some(index) = self.index(pfn) else {
            return false;
        };
        let info = &mut self.infos[index];
        if matches!(info.usage, FrameUse::Free | FrameUse::Reserved) {
            return false;
        }
        info.usage = FrameUse::Free;
        info.owner = 0;
        info.generation = info.generation.wrapping_add(1);
        self.free += 1;
        true
    }

    /// The first frame at or after `from` holding a kernel object.
    pub fn next_object(&self, from: Pfn) -> Option<Pfn> {
        let start = usize::try_from(from.0.saturating_sub(self.base)).unwrap_or(usize::MAX);
        self.infos
            .iter()
            .enumerate()
            .skip(start)
            .find_map(|(index, info)| {
                (info.usage == FrameUse::Object).then(|| Pfn(self.base + index as u64))
            })
    }

    /// The first frame at or after `from` that `owner` pays for, with its use.
    pub fn next_owned_by(&self, owner: Pfn, from: Pfn) -> Option<(Pfn, FrameUse)> {
        let start = usize::try_from(from.0.saturating_sub(self.base)).unwrap_or(usize::MAX);
        self.infos
            .iter()
            .enumerate()
            .skip(start)
            .find_map(|(index, info)| {
                (info.owner == owner.0
                    && !matches!(info.usage, FrameUse::Free | FrameUse::Reserved))
                .then(|| (Pfn(self.base + index as u64), info.usage))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(infos: &mut [FrameInfo]) -> FrameTable<'_> {
        FrameTable::new(Pfn(100), infos)
    }

    fn free_frames(count: usize) -> std::vec::Vec<FrameInfo> {
        std::vec![FrameInfo { generation: 0, owner: 0, usage: FrameUse::Free }; count]
    }

    #[test]
    fn allocate_and_free_bump_generation() {
        let mut infos = free_frames(4);
        let mut frames = table(&mut infos);
        let a = frames.allocate(FrameUse::Object, Pfn(7)).unwrap();
        assert_eq!(a, Pfn(100));
        assert_eq!(frames.free_frames(), 3);
        assert_eq!(frames.info(a).unwrap().owner, 7);
        assert!(frames.free(a));
        assert!(!frames.free(a), "double free is refused");
        assert_eq!(frames.info(a).unwrap().generation, 1);
        assert_eq!(frames.free_frames(), 4);
    }

    #[test]
    fn contiguous_allocation_skips_holes() {
        let mut infos = free_frames(8);
        infos[2].usage = FrameUse::Reserved;
        let mut frames = table(&mut infos);
        assert_eq!(
            frames.allocate_contiguous(3, FrameUse::Data, Pfn(1)),
            Some(Pfn(103))
        );
        assert_eq!(frames.allocate_contiguous(3, FrameUse::Data, Pfn(1)), None);
        assert_eq!(
            frames.allocate_contiguous(2, FrameUse::Data, Pfn(1)),
            Some(Pfn(100))
        );
        assert_eq!(frames.allocate_contiguous(0, FrameUse::Data, Pfn(1)), None);
        assert_eq!(frames.free_frames(), 2);
    }

    #[test]
    fn exhaustion_is_none_not_a_panic() {
        let mut infos = free_frames(2);
        let mut frames = table(&mut infos);
        assert!(frames.allocate(FrameUse::Object, Pfn(1)).is_some());
        assert!(frames.allocate(FrameUse::Object, Pfn(1)).is_some());
        assert!(frames.allocate(FrameUse::Object, Pfn(1)).is_none());
        assert!(!frames.free(Pfn(5)), "outside the table");
        assert!(!frames.free(Pfn(u64::MAX)));
        assert!(
            !frames.free(Pfn(1 << 40)),
            "a 52-bit frame number is not truncated"
        );
    }

    #[test]
    fn wide_frame_numbers_keep_every_bit() {
        let high = Pfn::containing((1 << 44) + 0x10_0000);
        assert_eq!(high.address(), (1 << 44) + 0x10_0000);
        assert_ne!(high, Pfn::containing(0x10_0000));
        let top = Pfn::containing((1 << PHYS_ADDRESS_BITS) - 4096);
        assert_eq!(top.offset(1).address(), 1 << PHYS_ADDRESS_BITS);
    }

    #[test]
    fn only_owned_data_frames_are_user_data() {
        let mut infos = free_frames(4);
        let mut frames = table(&mut infos);
        let data = frames.allocate(FrameUse::Data, Pfn(7)).unwrap();
        let object = frames.allocate(FrameUse::Object, Pfn(7)).unwrap();
        let kernel_data = frames.allocate(FrameUse::Data, Pfn(0)).unwrap();
        assert!(frames.is_user_data(data));
        assert!(!frames.is_user_data(object));
        assert!(!frames.is_user_data(kernel_data));
        assert!(!frames.is_user_data(Pfn(103)), "free");
        assert!(!frames.is_user_data(Pfn(1 << 32)), "outside the table");
    }

    #[test]
    fn owned_frames_are_found() {
        let mut infos = free_frames(6);
        let mut frames = table(&mut infos);
        frames.allocate(FrameUse::Object, Pfn(1));
        frames.allocate(FrameUse::PageTable, Pfn(2));
        frames.allocate(FrameUse::Data, Pfn(1));
        assert_eq!(
            frames.next_owned_by(Pfn(1), Pfn(0)),
            Some((Pfn(100), FrameUse::Object))
        );
        assert_eq!(
            frames.next_owned_by(Pfn(1), Pfn(101)),
            Some((Pfn(102), FrameUse::Data))
        );
        assert_eq!(frames.next_owned_by(Pfn(1), Pfn(103)), None);
    }

    #[test]
    fn random_alloc_free_keeps_the_count_exact() {
        let mut infos = free_frames(64);
        let mut frames = table(&mut infos);
        let mut held = std::vec::Vec::new();
        let mut seed = 0x1234_5678_u64;
        for _ in 0..10_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if seed.is_multiple_of(3) && !held.is_empty() {
                let pfn = held.swap_remove((seed >> 8) as usize % held.len());
                assert!(frames.free(pfn));
            } else if let Some(pfn) = frames.allocate(FrameUse::Object, Pfn(1)) {
                assert!(!held.contains(&pfn));
                held.push(pfn);
            }
            assert_eq!(frames.free_frames() + held.len(), 64);
        }
    }
}
