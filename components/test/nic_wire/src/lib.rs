//! nic_wire's decisions, tested on the host: its config and which frames
//! it drops, corrupts, or follows with garbage ([`Faults`]).
//!
//! The wire is a test device: it lets two network stacks talk over real
//! Ethernet frames without PCI, and lets a scenario make the wire hostile
//! or kill it (`crash_after_frames`, a NIC driver's death).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

/// nic_wire's config ROM.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Uplink sessions to open, by label (routes send each to a stack).
    #[serde(default)]
    pub uplinks: Vec<String>,
    /// Fault on purpose after this many frames passed (every incarnation:
    /// a wire has no device to leave a mark on, so a scenario gives the
    /// restart policy room for the faults its traffic causes).
    #[serde(default)]
    pub crash_after_frames: Option<u64>,
    /// Drop every n-th frame.
    #[serde(default)]
    pub drop_every: Option<u32>,
    /// Flip a byte of every n-th frame (a frame the stacks must reject by checksum).
    #[serde(default)]
    pub corrupt_every: Option<u32>,
    /// After every n-th frame, deliver a frame of garbage too.
    #[serde(default)]
    pub garbage_every: Option<u32>,
}

/// What to do with one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Do not deliver it.
    pub drop: bool,
    /// Deliver it with the byte at this index flipped.
    pub corrupt_at: Option<usize>,
    /// Deliver this many bytes of garbage after it.
    pub garbage_len: Option<usize>,
}

/// The wire's fault schedule: deterministic, so a scenario's run repeats.
#[derive(Clone, Debug)]
pub struct Faults {
    config: Config,
    frames: u64,
    random: u64,
}

fn every(n: Option<u32>, count: u64) -> bool {
    n.is_some_and(|n| n != 0 && count.is_multiple_of(u64::from(n)))
}

impl Faults {
    /// The schedule `config` describes.
    pub fn new(config: Config) -> Faults {
        Faults {
            config,
            frames: 0,
            random: 0x6e69_635f_7769_7265,
        }
    }

    /// The next pseudo-random number (xorshift64).
    pub fn random(&mut self) -> u64 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.random
    }

    /// The verdict on the next frame, of `length` bytes.
    pub fn next(&mut self, length: usize) -> Verdict {
        self.frames += 1;
        let count = self.frames;
        let drop = every(self.config.drop_every, count);
        // Corrupt past the Ethernet header so the frame still reaches the
        // stack's IP and TCP checksums.
        let corrupt_at = (every(self.config.corrupt_every, count) && length > 14)
            .then(|| 14 + (self.random() as usize) % (length - 14));
        let garbage_len = every(self.config.garbage_every, count)
            .then(|| 14 + (self.random() as usize) % (1518 - 14 + 1));
        Verdict {
            drop,
            corrupt_at,
            garbage_len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_wire_passes_everything() {
        let mut faults = Faults::new(Config::default());
        for _ in 0..100 {
            assert_eq!(faults.next(60), Verdict::default());
        }
    }

    #[test]
    fn faults_come_on_schedule_and_stay_in_range() {
        let mut faults = Faults::new(Config {
            drop_every: Some(3),
            corrupt_every: Some(2),
            garbage_every: Some(5),
            ..Config::default()
        });
        let verdicts: [Verdict; 30] = core::array::from_fn(|_| faults.next(100));
        for (index, verdict) in verdicts.iter().enumerate() {
            let count = index + 1;
            assert_eq!(verdict.drop, count % 3 == 0);
            assert_eq!(verdict.corrupt_at.is_some(), count % 2 == 0);
            assert!(verdict.corrupt_at.is_none_or(|at| (14..100).contains(&at)));
            assert_eq!(verdict.garbage_len.is_some(), count % 5 == 0);
            assert!(
                verdict
                    .garbage_len
                    .is_none_or(|len| (14..=1518).contains(&len))
            );
        }
        // A header-only frame is never "corrupted" inside its header.
        let mut faults = Faults::new(Config {
            corrupt_every: Some(1),
            ..Config::default()
        });
        assert_eq!(faults.next(14).corrupt_at, None);
        let zero = Faults::new(Config {
            drop_every: Some(0),
            ..Config::default()
        })
        .next(60);
        assert!(!zero.drop);
    }
}
