//! What bench_core computes without a kernel: its `core_args`, the median of
//! its samples and the line it prints. Host-tested; `main.rs` does the timing.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;

/// Round trips timed per figure unless `core_args` says `iterations=N`.
pub const DEFAULT_ITERATIONS: u64 = 100_000;

/// The number after `iterations=` in `core_args`, or the default when
/// absent, zero or not a number.
pub fn iterations(core_args: &str) -> u64 {
    core_args
        .split_ascii_whitespace()
        .filter_map(|word| word.strip_prefix("iterations="))
        .find_map(|value| value.parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or(DEFAULT_ITERATIONS)
}

/// The median of `samples` (the upper one for an even count), reordering them.
pub fn median(samples: &mut [u64]) -> Option<u64> {
    if samples.is_empty() {
        return None;
    }
    let middle = samples.len() / 2;
    Some(*samples.select_nth_unstable(middle).1)
}

/// One `BENCH {...}` line. The unit is `tsc`: ticks of the time-stamp
/// counter, which the host names (instructions under icount, cycles under KVM).
pub fn bench_line(bench: &str, value: u64, iterations: u64, payload_bytes: usize) -> String {
    format!(
        "BENCH {{\"bench\":\"{bench}\",\"value\":{value},\"unit\":\"tsc\",\"iterations\":{iterations},\"payload_bytes\":{payload_bytes}}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterations_come_from_core_args_or_the_default() {
        assert_eq!(iterations("iterations=500"), 500);
        assert_eq!(iterations("x=1 iterations=7 y"), 7);
        assert_eq!(iterations("iterations=0"), DEFAULT_ITERATIONS);
        assert_eq!(iterations("iterations=lots"), DEFAULT_ITERATIONS);
        assert_eq!(iterations(""), DEFAULT_ITERATIONS);
    }

    #[test]
    fn median_picks_the_middle() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [9, 1, 5]), Some(5));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(3));
    }

    #[test]
    fn the_line_is_what_the_host_parses() {
        assert_eq!(
            bench_line("ipc_roundtrip", 2419, 10, 0),
            r#"BENCH {"bench":"ipc_roundtrip","value":2419,"unit":"tsc","iterations":10,"payload_bytes":0}"#
        );
    }
}
