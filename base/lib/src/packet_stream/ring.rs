//! One ring's two halves: the [`Producer`] keeps its head private and
//! checks the peer's tail; the [`Consumer`] keeps its tail private and checks
//! the peer's head.

use super::*;
use core::sync::atomic::{Ordering, fence};

/// The producing half of a ring: own head private, peer's tail checked.
pub(super) struct Producer {
    pub(super) ring: usize,
    pub(super) head_at: usize,
    pub(super) tail_at: usize,
    pub(super) entries: u64,
    pub(super) head: u64,
}

impl Producer {
    pub(super) fn new(
        region: &SharedRegion,
        ring: usize,
        head_at: usize,
        tail_at: usize,
        entries: u32,
    ) -> Self {
        region.word(head_at).store(0, Ordering::Release);
        Producer {
            ring,
            head_at,
            tail_at,
            entries: u64::from(entries),
            head: 0,
        }
    }

    /// Slots in use, by the consumer's published tail.
    pub(super) fn used(&self, region: &SharedRegion) -> Result<u64, Error> {
        let tail = region.word(self.tail_at).load(Ordering::Acquire);
        let used = self.head.wrapping_sub(tail);
        if used > self.entries {
            return Err(Error::PeerIndexCorrupt);
        }
        Ok(used)
    }

    pub(super) fn push(
        &mut self,
        region: &SharedRegion,
        descriptor: Descriptor,
    ) -> Result<Signal, Error> {
        if self.used(region)? == self.entries {
            return Err(Error::RingFull);
        }
        let slot = (self.head & (self.entries - 1)) as usize;
        region.write_descriptor(self.ring + slot * DESCRIPTOR_SIZE, descriptor);
        let previous = self.head;
        self.head = self.head.wrapping_add(1);
        region
            .word(self.head_at)
            .store(self.head, Ordering::Release);
        // Publish, then look: either the consumer sees the new head before
        // it waits, or we see that it had taken everything and may wait.
        fence(Ordering::SeqCst);
        let tail = region.word(self.tail_at).load(Ordering::Relaxed);
        Ok(if tail == previous {
            Signal::Peer
        } else {
            Signal::NotNeeded
        })
    }
}

/// The consuming half of a ring: own tail private, peer's head checked.
pub(super) struct Consumer {
    pub(super) ring: usize,
    pub(super) head_at: usize,
    pub(super) tail_at: usize,
    pub(super) entries: u64,
    pub(super) tail: u64,
}

impl Consumer {
    pub(super) fn new(
        region: &SharedRegion,
        ring: usize,
        head_at: usize,
        tail_at: usize,
        entries: u32,
    ) -> Self {
        region.word(tail_at).store(0, Ordering::Release);
        Consumer {
            ring,
            head_at,
            tail_at,
            entries: u64::from(entries),
            tail: 0,
        }
    }

    pub(super) fn pop(
        &mut self,
        region: &SharedRegion,
    ) -> Result<Option<(Descriptor, Signal)>, Error> {
        // Pairs with the producer's fence (see `Producer::push`).
        fence(Ordering::SeqCst);
        let head = region.word(self.head_at).load(Ordering::Acquire);
        let pending = head.wrapping_sub(self.tail);
        if pending > self.entries {
            return Err(Error::PeerIndexCorrupt);
        }
        if pending == 0 {
            return Ok(None);
        }
        let slot = (self.tail & (self.entries - 1)) as usize;
        let descriptor = region.read_descriptor(self.ring + slot * DESCRIPTOR_SIZE);
        let previous = self.tail;
        self.tail = self.tail.wrapping_add(1);
        // Release: the descriptor is read before the producer may reuse it.
        region
            .word(self.tail_at)
            .store(self.tail, Ordering::Release);
        fence(Ordering::SeqCst);
        let head = region.word(self.head_at).load(Ordering::Relaxed);
        // Full just before this take: the producer may wait for room.
        let signal = if head.wrapping_sub(previous) == self.entries {
            Signal::Peer
        } else {
            Signal::NotNeeded
        };
        Ok(Some((descriptor, signal)))
    }
}
