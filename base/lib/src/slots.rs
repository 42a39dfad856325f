//! Which of the component's capability slots are free. The runtime hands
//! slots out from [`crate::abi::slot::FIRST_FREE`] on; the kernel's cap quota
//! is the real limit, this only keeps the component from reusing a slot.

use crate::abi::{CapSlot, Error, slot};
use crate::sync::TryLock;

/// Slots the allocator manages, from `FIRST_FREE`.
pub const MANAGED_SLOTS: usize = 1024;

/// A bitmap of used slots.
pub struct SlotAllocator {
    used: [u64; MANAGED_SLOTS / 64],
}

impl SlotAllocator {
    /// All slots free.
    pub const fn new() -> Self {
        SlotAllocator {
            used: [0; MANAGED_SLOTS / 64],
        }
    }

    /// The lowest free slot, now marked used.
    pub fn allocate(&mut self) -> Option<CapSlot> {
        for (word_index, word) in self.used.iter_mut().enumerate() {
            if *word != u64::MAX {
                let bit = word.trailing_ones() as usize;
                *word |= 1 << bit;
                let index = word_index * 64 + bit;
                return Some(CapSlot(slot::FIRST_FREE.0 + index as u32));
            }
        }
        None
    }

    /// Marks `cap` free again; slots the allocator does not manage are ignored.
    pub fn free(&mut self, cap: CapSlot) {
        let Some(index) = cap.0.checked_sub(slot::FIRST_FREE.0) else {
            return;
        };
        let index = index as usize;
        if index < MANAGED_SLOTS {
            self.used[index / 64] &= !(1 << (index % 64));
        }
    }
}

impl Default for SlotAllocator {
    fn default() -> Self {
        Self::new()
    }
}

static SLOTS: TryLock<SlotAllocator> = TryLock::new(SlotAllocator::new());

/// A free slot of the component's own table.
pub fn allocate() -> Result<CapSlot, Error> {
    SLOTS
        .try_lock()
        .and_then(|mut slots| slots.allocate())
        .ok_or(Error::CapQuotaExceeded)
}

/// Returns a slot (which must be empty again) to the pool.
pub fn free(cap: CapSlot) {
    if let Some(mut slots) = SLOTS.try_lock() {
        slots.free(cap);
    }
}

/// Empties a slot (whatever it holds, if anything) and returns it to the pool.
pub fn release(cap: CapSlot) {
    let _ = crate::sys::delete(cap);
    free(cap);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_unique_reused_and_bounded() {
        let mut slots = SlotAllocator::new();
        let first = slots.allocate().expect("free");
        assert_eq!(first, slot::FIRST_FREE);
        let second = slots.allocate().expect("free");
        assert_eq!(second.0, first.0 + 1);
        slots.free(first);
        assert_eq!(slots.allocate(), Some(first));
        slots.free(CapSlot(1)); // below FIRST_FREE: ignored
        slots.free(CapSlot(u32::MAX)); // beyond the managed range: ignored
        let mut count = 2;
        while slots.allocate().is_some() {
            count += 1;
        }
        assert_eq!(count, MANAGED_SLOTS);
    }
}
