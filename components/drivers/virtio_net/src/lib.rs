//! virtio_net's side that the host compiles too: its config and the
//! bookkeeping of the frames it has on the device's queues ([`InFlight`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;

/// Which of `N` buffers are on a device queue, under which virtio token.
///
/// The device names a finished buffer by its token; a token this table
/// does not hold means the queue can no longer be trusted (the caller
/// stops using the device), never an index out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlight<const N: usize> {
    tokens: [Option<u16>; N],
}

impl<const N: usize> Default for InFlight<N> {
    fn default() -> Self {
        Self { tokens: [None; N] }
    }
}

impl<const N: usize> InFlight<N> {
    /// A buffer that is not on the queue, if any.
    pub fn free_slot(&self) -> Option<usize> {
        self.tokens.iter().position(Option::is_none)
    }

    /// Records that buffer `slot` went on the queue as `token`.
    pub fn start(&mut self, slot: usize, token: u16) {
        if let Some(entry) = self.tokens.get_mut(slot) {
            *entry = Some(token);
        }
    }

    /// The buffer the device finished as `token`, now off the queue;
    /// `None` for a token that is not in flight.
    pub fn finish(&mut self, token: u16) -> Option<usize> {
        let slot = self.tokens.iter().position(|t| *t == Some(token))?;
        self.tokens[slot] = None;
        Some(slot)
    }

    /// Buffers on the queue.
    pub fn count(&self) -> usize {
        self.tokens.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_slots_and_strangers_are_refused() {
        let mut flight = InFlight::<3>::default();
        assert_eq!(flight.free_slot(), Some(0));
        flight.start(0, 7);
        flight.start(1, 9);
        assert_eq!(flight.free_slot(), Some(2));
        assert_eq!(flight.count(), 2);
        assert_eq!(flight.finish(9), Some(1));
        assert_eq!(flight.finish(9), None);
        assert_eq!(flight.finish(1234), None);
        flight.start(99, 1); // out of range: ignored
        assert_eq!(flight.count(), 1);
        assert_eq!(flight.free_slot(), Some(1));
    }
}
