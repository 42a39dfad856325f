//! A small deterministic pseudo-random sequence for fuzzers and hostile test
//! components: the same seed gives the same run, so a failure replays.
//! Not for anything that must be unpredictable.

/// xorshift64 (Marsaglia's 13/7/17 triple). The seed must not be zero.
#[derive(Clone, Debug)]
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number of the sequence.
    #[allow(clippy::should_implement_trait)] // an endless sequence, not an Iterator's end-aware `next`
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::XorShift;

    #[test]
    fn the_same_seed_gives_the_same_sequence_and_never_sticks_at_zero() {
        let (mut a, mut b) = (XorShift(1), XorShift(1));
        for _ in 0..1000 {
            let x = a.next();
            assert_eq!(x, b.next());
            assert_ne!(x, 0);
        }
        assert!(XorShift(7).below(10) < 10);
        assert_eq!(XorShift(7).below(0), 0);
    }
}
