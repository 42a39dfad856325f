//! Helpers for this crate's host tests: a small deterministic generator of
//! arbitrary inputs for the decoder fuzzers (no dependency, same inputs on
//! every run so that a failure reproduces).

use alloc::vec::Vec;

/// Xorshift64*: fast, deterministic, good enough to cover a decoder's branches.
pub struct Random(u64);

impl Random {
    /// A generator from `seed` (zero is replaced, xorshift would stay at zero).
    pub fn new(seed: u64) -> Random {
        Random(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 { 0 } else { self.next() % bound }
    }

    /// One random byte.
    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    /// Up to `max_len` random bytes; small values are favoured now and then
    /// so that enum tags and varints decode into real variants.
    pub fn bytes(&mut self, max_len: u64) -> Vec<u8> {
        let len = self.below(max_len + 1) as usize;
        let small = self.below(2) == 0;
        (0..len)
            .map(|_| if small { self.byte() % 8 } else { self.byte() })
            .collect()
    }
}
