//! The component's heap: a bump arena in a reserved stretch of the address
//! space ([`crate::layout::HEAP_RESERVE`] bytes at
//! [`crate::layout::DYNAMIC_BASE`]), backed by dataspaces the component
//! creates from its own RAM quota and maps as the arena grows.
//!
//! Issue-3 level: freeing gives memory back only when it was the most recent
//! allocation (enough for the runtime's short-lived buffers); a real
//! allocator replaces [`Arena`] in issue 4 without changing the glue.

use crate::abi::{Error, ObjectKind, PAGE_SIZE, map, slot};
use crate::{layout, slots, sys};

const PAGE: u64 = PAGE_SIZE as u64;

/// What the arena needs to satisfy a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The memory at this address is ready.
    Ready(u64),
    /// Map `bytes` more (page multiple) at `at`, call [`Arena::grown`], retry.
    Grow {
        /// Where the new memory must start (the current mapped end).
        at: u64,
        /// How much to map.
        bytes: u64,
    },
    /// The request cannot fit in the reserve.
    Exhausted,
}

/// Bump-allocation arithmetic over `[base, reserve_end)`, of which
/// `[base, mapped_end)` is backed by memory.
#[derive(Debug)]
pub struct Arena {
    next: u64,
    last: u64,
    mapped_end: u64,
    reserve_end: u64,
}

impl Arena {
    /// An arena over `size` bytes from `base` (page aligned), nothing mapped.
    pub const fn new(base: u64, size: u64) -> Self {
        Arena {
            next: base,
            last: base,
            mapped_end: base,
            reserve_end: base + size,
        }
    }

    /// Finds room for `size` bytes aligned to `align` (a power of two).
    pub fn reserve(&mut self, size: u64, align: u64) -> Reservation {
        let start = match self.next.checked_add(align - 1) {
            Some(v) => v & !(align - 1),
            None => return Reservation::Exhausted,
        };
        let end = match start.checked_add(size.max(1)) {
            Some(end) if end <= self.reserve_end => end,
            _ => return Reservation::Exhausted,
        };
        if end > self.mapped_end {
            let needed = (end - self.mapped_end).div_ceil(PAGE) * PAGE;
            let bytes = needed
                .max(layout::HEAP_CHUNK)
                .min(self.reserve_end - self.mapped_end);
            return Reservation::Grow {
                at: self.mapped_end,
                bytes,
            };
        }
        self.last = start;
        self.next = end;
        Reservation::Ready(start)
    }

    /// Records that `bytes` more were mapped at the mapped end.
    pub fn grown(&mut self, bytes: u64) {
        self.mapped_end = (self.mapped_end + bytes).min(self.reserve_end);
    }

    /// Gives `[address, address + size)` back if it was the latest allocation.
    pub fn release(&mut self, address: u64, size: u64) {
        if address == self.last && address.checked_add(size.max(1)) == Some(self.next) {
            self.next = address;
        }
    }
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

    #[test]
    fn arena_grows_in_chunks_and_aligns() {
        let mut arena = Arena::new(0x1000_0000, 1 << 20);
        assert_eq!(
            arena.reserve(10, 8),
            Reservation::Grow {
                at: 0x1000_0000,
                bytes: layout::HEAP_CHUNK
            }
        );
        arena.grown(layout::HEAP_CHUNK);
        assert_eq!(arena.reserve(10, 8), Reservation::Ready(0x1000_0000));
        assert_eq!(arena.reserve(4, 16), Reservation::Ready(0x1000_0010));
        // The latest allocation comes back; an older one does not.
        arena.release(0x1000_0010, 4);
        assert_eq!(arena.reserve(1, 1), Reservation::Ready(0x1000_0010));
        arena.release(0x1000_0000, 10);
        assert_eq!(arena.reserve(1, 1), Reservation::Ready(0x1000_0011));
        // A large request asks for exactly what it needs beyond the chunk.
        let big = 3 * layout::HEAP_CHUNK;
        match arena.reserve(big, 4096) {
            Reservation::Grow { at, bytes } => {
                assert_eq!(at, 0x1000_0000 + layout::HEAP_CHUNK);
                // Enough for the aligned block, in whole pages.
                assert!(at + bytes >= 0x1000_1000 + big && bytes % PAGE == 0);
            }
            other => panic!("expected growth, got {other:?}"),
        }
    }

    #[test]
    fn arena_refuses_what_does_not_fit() {
        let mut arena = Arena::new(0x1000, 0x2000);
        assert_eq!(arena.reserve(0x3000, 1), Reservation::Exhausted);
        assert_eq!(arena.reserve(u64::MAX, 1), Reservation::Exhausted);
        assert_eq!(arena.reserve(1, 1 << 63), Reservation::Exhausted);
        // Growth never reaches past the reserve.
        assert_eq!(
            arena.reserve(0x100, 1),
            Reservation::Grow {
                at: 0x1000,
                bytes: 0x2000
            }
        );
    }
}
