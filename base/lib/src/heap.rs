//! The component's heap: a first-fit free-list allocator over a reserved
//! stretch of the address space ([`crate::layout::HEAP_RESERVE`] bytes at
//! [`crate::layout::DYNAMIC_BASE`]), backed by dataspaces the component
//! creates from its own RAM quota and maps as the heap grows.
//!
//! Freed memory is reused: a long-running server whose clients come and go
//! keeps a steady footprint. When the quota is spent, allocation fails with a
//! null pointer (so `Vec::try_reserve` and friends report it); it never
//! panics.
//!
//! [`FreeList`] is the policy and is tested on the host over an ordinary
//! buffer; the global allocator in `rt` only maps what it asks for.
//!
//! ## How the free list works
//! Every block is a multiple of [`GRANULE`] bytes at a [`GRANULE`]-aligned
//! address. Free blocks hold their own list node (size, next) in their first
//! bytes and are kept in address order, so a free merges with both
//! neighbours and the list can never hold two adjacent blocks. Allocated
//! blocks carry no header: `dealloc` is told the layout, which gives the
//! size back. Aligning a block leaves a leading gap that is itself a whole
//! number of granules, so it simply stays on the list.

use crate::abi::{Error, ObjectKind, PAGE_SIZE, map, slot};
use crate::sync::TryLock;
use crate::{layout, slots, sys};

const PAGE: u64 = PAGE_SIZE as u64;

/// Size and alignment unit of every block; also the smallest block, since a
/// free block must hold its list node.
pub const GRANULE: u64 = 16;

/// Marks the end of the free list. The heap never starts at address 0.
const END: u64 = 0;

/// The list node at the start of every free block.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(16))]
struct FreeBlock {
    /// Bytes in the block, node included (a multiple of [`GRANULE`]).
    size: u64,
    /// Address of the next free block, or [`END`].
    next: u64,
}

const _: () = assert!(core::mem::size_of::<FreeBlock>() as u64 == GRANULE);

/// What the free list needs to satisfy a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The block at this address is now allocated.
    Ready(u64),
    /// Map more memory at `at`, report it with [`FreeList::grown`], retry.
    Grow {
        /// Where the new memory must start (the current mapped end).
        at: u64,
        /// How much to map, preferably (a page multiple).
        bytes: u64,
        /// The least that satisfies the request (a page multiple, at most
        /// `bytes`); worth trying when `bytes` is refused for lack of quota.
        minimum: u64,
    },
    /// The request can never fit in the reserve.
    Exhausted,
}

/// Figures for tests and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in live allocations (each rounded up to [`GRANULE`]).
    pub in_use: u64,
    /// Bytes of address space backed by memory.
    pub mapped: u64,
}

/// First-fit allocation over `[base, reserve_end)`, of which
/// `[base, mapped_end)` is backed by memory.
///
/// Invariants: the free blocks lie in `[base, mapped_end)`, are sorted by
/// address, granule aligned and sized, and neither overlap nor touch.
#[derive(Debug)]
pub struct FreeList {
    base: u64,
    mapped_end: u64,
    reserve_end: u64,
    first: u64,
    in_use: u64,
}

impl FreeList {
    /// A heap over `size` bytes from `base` (page aligned, non-zero), nothing
    /// mapped yet.
    pub const fn new(base: u64, size: u64) -> Self {
        FreeList {
            base,
            mapped_end: base,
            reserve_end: base + size,
            first: END,
            in_use: 0,
        }
    }

    /// Allocates `size` bytes aligned to `align` (a power of two), or says
    /// how to grow so that it fits.
    pub fn reserve(&mut self, size: u64, align: u64) -> Reservation {
        if !align.is_power_of_two() {
            return Reservation::Exhausted;
        }
        let align = align.max(GRANULE);
        let Some(size) = round_up(size.max(1), GRANULE) else {
            return Reservation::Exhausted;
        };
        let mut previous = END;
        let mut current = self.first;
        // Start of a free block that reaches the mapped end, if any: growth
        // extends it rather than starting from scratch.
        let mut tail = self.mapped_end;
        while current != END {
            // SAFETY: `current` came from the list, whose nodes are valid
            // (the type's invariants).
            let block = unsafe { self.read(current) };
            let block_end = current + block.size;
            if let Some(start) = round_up(current, align)
                && let Some(end) = start.checked_add(size)
                && end <= block_end
            {
                // SAFETY: `[current, block_end)` is the free block just read,
                // so its leading and trailing parts are free memory.
                unsafe { self.carve(previous, current, block, start, end) };
                self.in_use += size;
                return Reservation::Ready(start);
            }
            if block_end == self.mapped_end {
                tail = current;
            }
            previous = current;
            current = block.next;
        }
        self.growth_for(tail, size, align)
    }

    /// How much to map so that `size` bytes at `align` fit in a block
    /// starting at `tail` and reaching past the mapped end.
    fn growth_for(&self, tail: u64, size: u64, align: u64) -> Reservation {
        let needed_end = round_up(tail, align).and_then(|start| start.checked_add(size));
        let Some(minimum) = needed_end.and_then(|end| round_up(end - self.mapped_end, PAGE)) else {
            return Reservation::Exhausted;
        };
        let room = self.reserve_end - self.mapped_end;
        if minimum > room {
            return Reservation::Exhausted;
        }
        // Grow by at least a chunk and by an eighth of what is mapped, so a
        // big heap needs few dataspaces (each costs a capability slot).
        let proportional = (self.mapped_end - self.base) / 8 / PAGE * PAGE;
        let bytes = minimum.max(layout::HEAP_CHUNK).max(proportional).min(room);
        Reservation::Grow {
            at: self.mapped_end,
            bytes,
            minimum,
        }
    }

    /// Takes `[start, end)` out of the free block at `current` (list
    /// predecessor `previous`); what is left on either side stays free.
    ///
    /// # Safety
    /// `block` is the node at `current`, and `current <= start < end <=
    /// current + block.size`, all granule aligned.
    unsafe fn carve(
        &mut self,
        previous: u64,
        current: u64,
        block: FreeBlock,
        start: u64,
        end: u64,
    ) {
        let block_end = current + block.size;
        let mut next = block.next;
        if end < block_end {
            let rest = FreeBlock {
                size: block_end - end,
                next,
            };
            // SAFETY: `[end, block_end)` is the free tail of the block.
            unsafe { write(end, rest) };
            next = end;
        }
        if start > current {
            // SAFETY: the leading gap keeps the existing node at `current`.
            unsafe {
                write(
                    current,
                    FreeBlock {
                        size: start - current,
                        next,
                    },
                )
            };
        } else {
            // SAFETY: `previous` is END or a list node.
            unsafe { self.link(previous, next) };
        }
    }

    /// Records that `[mapped_end, mapped_end + bytes)` is now backed by
    /// memory; it joins the free list.
    ///
    /// # Safety
    /// That range is readable, writable, used by nothing else, and stays
    /// mapped for as long as this list is used. `bytes` is a page multiple.
    pub unsafe fn grown(&mut self, bytes: u64) {
        let bytes = bytes.min(self.reserve_end - self.mapped_end) / GRANULE * GRANULE;
        if bytes == 0 {
            return;
        }
        let start = self.mapped_end;
        self.mapped_end += bytes;
        // SAFETY: the caller promises the new range is ours, and it lies past
        // every free block, so it overlaps none.
        let inserted = unsafe { self.insert(start, bytes) };
        debug_assert!(inserted);
    }

    /// Frees `[address, address + size)`, an allocation [`Self::reserve`]
    /// returned with this `size`. A range that is not inside the mapped heap
    /// or overlaps a free block (a double free) is refused with `false`
    /// and changes nothing.
    ///
    /// # Safety
    /// If the range passes those checks it must be an allocation that is no
    /// longer used: its first bytes become a list node.
    pub unsafe fn release(&mut self, address: u64, size: u64) -> bool {
        let Some(size) = round_up(size.max(1), GRANULE) else {
            return false;
        };
        // SAFETY: passed on from the caller.
        let released = unsafe { self.insert(address, size) };
        if released {
            self.in_use = self.in_use.saturating_sub(size);
        }
        released
    }

    /// Puts `[address, address + size)` on the list, merging neighbours.
    ///
    /// # Safety
    /// As for [`Self::release`].
    unsafe fn insert(&mut self, address: u64, size: u64) -> bool {
        let Some(end) = address.checked_add(size) else {
            return false;
        };
        if !address.is_multiple_of(GRANULE) || address < self.base || end > self.mapped_end {
            return false;
        }
        let mut previous = END;
        let mut previous_block = None;
        let mut current = self.first;
        while current != END && current < address {
            // SAFETY: `current` is a list node.
            let block = unsafe { self.read(current) };
            previous = current;
            previous_block = Some(block);
            current = block.next;
        }
        if current != END && current < end {
            return false;
        }
        if let Some(block) = previous_block
            && previous + block.size > address
        {
            return false;
        }
        let mut node = FreeBlock {
            size,
            next: current,
        };
        if current == end {
            // SAFETY: `current` is a list node; it becomes part of this block.
            let right = unsafe { self.read(current) };
            node = FreeBlock {
                size: size + right.size,
                next: right.next,
            };
        }
        match previous_block {
            Some(left) if previous + left.size == address => {
                let merged = FreeBlock {
                    size: left.size + node.size,
                    next: node.next,
                };
                // SAFETY: `previous` is a list node, now grown to the right.
                unsafe { write(previous, merged) };
            }
            _ => {
                // SAFETY: the caller gives `[address, end)` to the heap, and
                // it overlaps no free block (checked above).
                unsafe { write(address, node) };
                // SAFETY: `previous` is END or a list node.
                unsafe { self.link(previous, address) };
            }
        }
        true
    }

    /// Points `previous`'s `next` (or the list head) at `next`.
    ///
    /// # Safety
    /// `previous` is [`END`] or a list node.
    unsafe fn link(&mut self, previous: u64, next: u64) {
        if previous == END {
            self.first = next;
        } else {
            // SAFETY: passed on from the caller.
            let mut block = unsafe { self.read(previous) };
            block.next = next;
            // SAFETY: as above.
            unsafe { write(previous, block) };
        }
    }

    /// The node of the free block at `address`.
    ///
    /// # Safety
    /// `address` is on the free list.
    unsafe fn read(&self, address: u64) -> FreeBlock {
        debug_assert!(address >= self.base && address < self.mapped_end);
        // SAFETY: free blocks are mapped, granule aligned and start with a
        // node written by `write`.
        unsafe { core::ptr::with_exposed_provenance::<FreeBlock>(address as usize).read() }
    }

    /// Bytes in use and mapped.
    pub fn stats(&self) -> Stats {
        Stats {
            in_use: self.in_use,
            mapped: self.mapped_end - self.base,
        }
    }

    /// The free blocks as `(address, size)`, lowest first (for tests).
    pub fn free_blocks(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut current = self.first;
        core::iter::from_fn(move || {
            if current == END {
                return None;
            }
            // SAFETY: `current` is a list node.
            let block = unsafe { self.read(current) };
            let item = (current, block.size);
            current = block.next;
            Some(item)
        })
    }
}

/// Writes a list node at `address`.
///
/// # Safety
/// `[address, address + GRANULE)` is mapped heap memory that no live
/// allocation uses, granule aligned.
unsafe fn write(address: u64, block: FreeBlock) {
    // SAFETY: passed on from the caller.
    unsafe { core::ptr::with_exposed_provenance_mut::<FreeBlock>(address as usize).write(block) }
}

/// `value` rounded up to a multiple of `align` (a power of two), unless
/// that overflows.
fn round_up(value: u64, align: u64) -> Option<u64> {
    Some(value.checked_add(align - 1)? & !(align - 1))
}

/// The component's own heap, used by the global allocator.
pub(crate) static HEAP: TryLock<FreeList> =
    TryLock::new(FreeList::new(layout::DYNAMIC_BASE, layout::HEAP_RESERVE));

/// The component heap's figures; `None` only while the allocator itself
/// holds the heap (a call from inside an allocation).
pub fn stats() -> Option<Stats> {
    HEAP.try_lock().map(|heap| heap.stats())
}

/// Backs `[at, at + bytes)` of the own address space with a fresh dataspace
/// paid from the own RAM quota.
pub fn map_more(at: u64, bytes: u64) -> Result<(), Error> {
    let dataspace = slots::allocate()?;
    let result =
        sys::create(ObjectKind::Dataspace, slot::OWN_PD, dataspace, bytes).and_then(|()| {
            sys::map(
                slot::OWN_PD,
                dataspace,
                0,
                at,
                bytes,
                map::READ | map::WRITE,
            )
        });
    if result.is_err() {
        let _ = sys::destroy(dataspace);
        let _ = sys::delete(dataspace);
        slots::free(dataspace);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{Layout, alloc_zeroed, dealloc};
    use std::vec::Vec;

    /// A free list over a real, page-aligned host buffer, "mapping" up to
    /// `quota` bytes of it the way the runtime maps dataspaces.
    struct Harness {
        memory: *mut u8,
        layout: Layout,
        quota: u64,
        list: FreeList,
        growths: usize,
    }

    impl Harness {
        fn new(reserve: u64, quota: u64) -> Self {
            let layout = Layout::from_size_align(reserve as usize, 4096).expect("layout");
            // SAFETY: the layout has a non-zero size.
            let memory = unsafe { alloc_zeroed(layout) };
            assert!(!memory.is_null());
            let base = memory.expose_provenance() as u64;
            Harness {
                memory,
                layout,
                quota,
                list: FreeList::new(base, reserve),
                growths: 0,
            }
        }

        fn base(&self) -> u64 {
            self.list.base
        }

        /// What the global allocator does, with the buffer as "RAM".
        fn alloc(&mut self, size: u64, align: u64) -> Option<u64> {
            loop {
                match self.list.reserve(size, align) {
                    Reservation::Ready(address) => {
                        assert!(address.is_multiple_of(align));
                        assert!(address >= self.base());
                        assert!(address + size <= self.base() + self.list.stats().mapped);
                        return Some(address);
                    }
                    Reservation::Grow { at, bytes, minimum } => {
                        let mapped = self.list.stats().mapped;
                        assert_eq!(at, self.base() + mapped);
                        assert!(minimum <= bytes && bytes % PAGE == 0 && minimum % PAGE == 0);
                        let granted = if mapped + bytes <= self.quota {
                            bytes
                        } else if mapped + minimum <= self.quota {
                            minimum
                        } else {
                            return None;
                        };
                        self.growths += 1;
                        // SAFETY: the buffer covers the whole reserve and the
                        // list is its only user.
                        unsafe { self.list.grown(granted) };
                    }
                    Reservation::Exhausted => return None,
                }
            }
        }

        fn free(&mut self, address: u64, size: u64) -> bool {
            // SAFETY: tests free only what they allocated (or ranges the
            // list must refuse without touching them).
            unsafe { self.list.release(address, size) }
        }

        fn fill(&self, address: u64, size: u64, byte: u8) {
            let offset = (address - self.base()) as usize;
            // SAFETY: `[address, address + size)` is a live allocation in
            // the buffer.
            unsafe { self.memory.add(offset).write_bytes(byte, size as usize) };
        }

        fn holds(&self, address: u64, size: u64, byte: u8) -> bool {
            let offset = (address - self.base()) as usize;
            // SAFETY: as in `fill`.
            let bytes =
                unsafe { std::slice::from_raw_parts(self.memory.add(offset), size as usize) };
            bytes.iter().all(|b| *b == byte)
        }

        fn check_invariants(&self) {
            let stats = self.list.stats();
            let mut last_end = 0;
            let mut free = 0;
            for (address, size) in self.list.free_blocks() {
                assert!(
                    address > last_end || last_end == 0,
                    "blocks sorted and apart"
                );
                assert!(address % GRANULE == 0 && size % GRANULE == 0 && size >= GRANULE);
                assert!(address >= self.base() && address + size <= self.base() + stats.mapped);
                last_end = address + size;
                free += size;
            }
            assert_eq!(
                free + stats.in_use,
                stats.mapped,
                "every byte accounted for"
            );
        }
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout.
            unsafe { dealloc(self.memory, self.layout) };
        }
    }

    use crate::random::XorShift;

    #[test]
    fn alloc_free_cycles_keep_the_footprint() {
        let mut heap = Harness::new(8 << 20, 8 << 20);
        let sizes = [24u64, 100, 4096, 7, 300, 65536, 1, 2000, 512, 48];
        let mut footprint = None;
        for _cycle in 0..100 {
            let blocks: Vec<(u64, u64)> = sizes
                .iter()
                .map(|size| (heap.alloc(*size, 8).expect("room"), *size))
                .collect();
            for (address, size) in blocks.iter().rev() {
                assert!(heap.free(*address, *size));
            }
            heap.check_invariants();
            let stats = heap.list.stats();
            assert_eq!(stats.in_use, 0);
            assert_eq!(heap.list.free_blocks().count(), 1, "all merged back");
            match footprint {
                None => footprint = Some(stats.mapped),
                Some(mapped) => assert_eq!(stats.mapped, mapped, "no growth after cycle 1"),
            }
        }
    }

    #[test]
    fn holes_are_reused_and_merge_back() {
        let mut heap = Harness::new(1 << 20, 1 << 20);
        let blocks: Vec<u64> = (0..256)
            .map(|_| heap.alloc(64, 16).expect("room"))
            .collect();
        let mapped = heap.list.stats().mapped;
        for address in blocks.iter().step_by(2) {
            assert!(heap.free(*address, 64));
        }
        heap.check_invariants();
        assert_eq!(heap.list.free_blocks().count(), 128 + 1);
        // Small requests fill the holes, lowest first, without growing.
        let mut sizes = std::vec![64u64; blocks.len()];
        for (index, address) in blocks.iter().enumerate().step_by(2) {
            sizes[index] = if index % 4 == 0 { 64 } else { 33 };
            assert_eq!(heap.alloc(sizes[index], 8), Some(*address));
        }
        heap.check_invariants();
        assert_eq!(heap.list.stats().mapped, mapped);
        // A request no hole can take goes past them.
        let big = heap.alloc(1000, 8).expect("room");
        assert!(big > *blocks.last().expect("blocks"));
        // Freeing everything in a scattered order merges into one block.
        let mut all: Vec<(u64, u64)> = blocks.iter().copied().zip(sizes).collect();
        all.push((big, 1000));
        let mut random = XorShift(7);
        while !all.is_empty() {
            let (address, size) = all.swap_remove((random.next() % all.len() as u64) as usize);
            assert!(heap.free(address, size));
            heap.check_invariants();
        }
        assert_eq!(heap.list.free_blocks().count(), 1);
        assert_eq!(heap.list.stats().in_use, 0);
    }

    #[test]
    fn alignment_up_to_a_page_is_honoured() {
        let mut heap = Harness::new(4 << 20, 4 << 20);
        let mut live = Vec::new();
        for (index, align) in [1u64, 2, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
            .iter()
            .cycle()
            .take(120)
            .enumerate()
        {
            let size = 1 + (index as u64 * 37) % 5000;
            let address = heap.alloc(size, *align).expect("room");
            assert!(address.is_multiple_of(*align));
            heap.fill(address, size, index as u8);
            live.push((address, size, index as u8));
        }
        heap.check_invariants();
        // No block overwrote another.
        for (address, size, byte) in &live {
            assert!(heap.holds(*address, *size, *byte));
        }
        for (address, size, _) in live {
            assert!(heap.free(address, size));
        }
        heap.check_invariants();
        assert_eq!(heap.list.free_blocks().count(), 1);
    }

    #[test]
    fn exhaustion_is_an_answer_not_a_panic() {
        let quota = 256 * 1024;
        let mut heap = Harness::new(1 << 20, quota);
        let mut live = Vec::new();
        while let Some(address) = heap.alloc(1000, 8) {
            live.push(address);
        }
        assert!(heap.list.stats().mapped <= quota);
        assert!(live.len() >= 200, "the quota was used: {}", live.len());
        heap.check_invariants();
        // Freeing makes room again.
        let freed = live.pop().expect("some");
        assert!(heap.free(freed, 1000));
        assert_eq!(heap.alloc(1000, 8), Some(freed));
        // Impossible requests are refused whatever the quota.
        let mut roomy = Harness::new(1 << 20, u64::MAX);
        assert_eq!(roomy.list.reserve(u64::MAX, 8), Reservation::Exhausted);
        assert_eq!(roomy.list.reserve(u64::MAX - 8, 1), Reservation::Exhausted);
        assert_eq!(roomy.list.reserve(8, 1 << 63), Reservation::Exhausted);
        assert_eq!(roomy.list.reserve(8, 3), Reservation::Exhausted);
        assert_eq!(roomy.alloc(2 << 20, 8), None, "larger than the reserve");
        assert!(roomy.alloc(1 << 19, 8).is_some());
    }

    #[test]
    fn growth_asks_for_what_is_needed_and_prefers_chunks() {
        let mut heap = Harness::new(64 << 20, 64 << 20);
        match heap.list.reserve(10, 8) {
            Reservation::Grow { at, bytes, minimum } => {
                assert_eq!(at, heap.base());
                assert_eq!(minimum, PAGE);
                assert_eq!(bytes, layout::HEAP_CHUNK);
            }
            other => panic!("expected growth, got {other:?}"),
        }
        let small = heap.alloc(10, 8).expect("room");
        // A big request extends the free tail: it needs only the rest.
        let big = 3 * layout::HEAP_CHUNK;
        match heap.list.reserve(big, 4096) {
            Reservation::Grow { minimum, .. } => {
                assert_eq!(minimum, big + PAGE - layout::HEAP_CHUNK);
            }
            other => panic!("expected growth, got {other:?}"),
        }
        let address = heap.alloc(big, 4096).expect("room");
        assert_eq!(
            address,
            small + PAGE,
            "the first page boundary past `small`"
        );
        heap.check_invariants();
        // Many allocations need few growths (each is a dataspace).
        let growths = heap.growths;
        for _ in 0..1000 {
            heap.alloc(16 * 1024, 8).expect("room");
        }
        assert!(heap.growths - growths < 40, "{} growths", heap.growths);
    }

    #[test]
    fn bad_frees_are_refused() {
        let mut heap = Harness::new(1 << 20, 1 << 20);
        let a = heap.alloc(100, 8).expect("room");
        let b = heap.alloc(100, 8).expect("room");
        assert!(heap.free(a, 100));
        assert!(!heap.free(a, 100), "double free");
        assert!(!heap.free(a + 16, 32), "inside a free block");
        assert!(!heap.free(b - 16, 100), "overlaps a free block");
        assert!(!heap.free(b + 8, 16), "unaligned");
        assert!(!heap.free(heap.base() - 4096, 16), "below the heap");
        assert!(
            !heap.free(heap.base() + (1 << 20), 16),
            "beyond the mapped end"
        );
        assert!(!heap.free(u64::MAX - 15, 16), "wraps around");
        heap.check_invariants();
        assert!(heap.free(b, 100));
        heap.check_invariants();
        assert_eq!(heap.list.stats().in_use, 0);
    }

    #[test]
    fn random_workload_keeps_contents_and_invariants() {
        let mut heap = Harness::new(16 << 20, 4 << 20);
        let mut random = XorShift(0x1234_5678);
        let mut live: Vec<(u64, u64, u8)> = Vec::new();
        let mut refused = 0;
        for step in 0..20_000u64 {
            if live.is_empty() || !random.next().is_multiple_of(3) {
                let size = match random.next() % 10 {
                    0 => random.next() % 200_000,
                    1..=3 => random.next() % 4096,
                    _ => random.next() % 256,
                };
                let align = 1 << (random.next() % 13);
                match heap.alloc(size, align) {
                    Some(address) => {
                        let byte = step as u8;
                        heap.fill(address, size, byte);
                        live.push((address, size, byte));
                    }
                    None => refused += 1,
                }
            } else {
                let index = (random.next() % live.len() as u64) as usize;
                let (address, size, byte) = live.swap_remove(index);
                assert!(heap.holds(address, size, byte), "block {address:#x} intact");
                assert!(heap.free(address, size));
            }
            if step.is_multiple_of(1000) {
                heap.check_invariants();
            }
        }
        assert!(heap.list.stats().mapped <= 4 << 20);
        for (address, size, byte) in live {
            assert!(heap.holds(address, size, byte));
            assert!(heap.free(address, size));
        }
        heap.check_invariants();
        assert_eq!(heap.list.free_blocks().count(), 1);
        // The quota was tight enough that some requests were refused cleanly.
        assert!(refused > 0);
    }
}
