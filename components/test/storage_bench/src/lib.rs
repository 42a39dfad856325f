//! storage_bench's arithmetic, host-tested: medians, throughput, busy time.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

/// The median of `values` (the lower middle one for an even count);
/// `None` when there are none. Sorts `values`.
pub fn median(values: &mut [u64]) -> Option<u64> {
    values.sort_unstable();
    values.get(values.len().checked_sub(1)? / 2).copied()
}

/// Tenths of MiB per second for `bytes` moved in `ticks` of a counter
/// that runs at `ticks_per_ms`, rounded to the nearest; `None` for a zero
/// time or rate.
pub fn tenths_mib_per_second(bytes: u64, ticks: u64, ticks_per_ms: u64) -> Option<u64> {
    if ticks == 0 || ticks_per_ms == 0 {
        return None;
    }
    // bytes / 2^20 / (ticks / (ticks_per_ms * 1000)) * 10
    let numerator = u128::from(bytes) * u128::from(ticks_per_ms) * 10_000;
    let denominator = u128::from(ticks) << 20;
    u64::try_from((numerator + denominator / 2) / denominator).ok()
}

/// Busy ticks of a span of `elapsed` TSC ticks of which the kernel spent
/// `idle` halted; zero if the idle count is past the span (it is read a
/// moment later than the TSC).
pub fn busy_ticks(elapsed: u64, idle: u64) -> u64 {
    elapsed.saturating_sub(idle)
}

/// `ticks` spent on `bytes`, per MiB (2^20 bytes), rounded to the nearest;
/// `None` for no bytes.
pub fn per_mib(ticks: u64, bytes: u64) -> Option<u64> {
    if bytes == 0 {
        return None;
    }
    let scaled = u128::from(ticks) << 20;
    u64::try_from((scaled + u128::from(bytes) / 2) / u128::from(bytes)).ok()
}

/// The byte at `position` of the benchmark file (what the bench writes
/// and checks): a pattern that differs from one 64 KiB chunk to the next.
pub fn pattern_byte(position: u64) -> u8 {
    (position % 251) as u8 ^ (position >> 16) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_rates() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5]), Some(5));
        assert_eq!(median(&mut [9, 1, 5, 7, 3]), Some(5));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2));
        // 8 MiB in 100 ms at 1 GHz: 80 MiB/s.
        assert_eq!(
            tenths_mib_per_second(8 << 20, 100_000_000, 1_000_000),
            Some(800)
        );
        // 1 MiB in 3 ms: 333.33 MiB/s.
        assert_eq!(
            tenths_mib_per_second(1 << 20, 3_000_000, 1_000_000),
            Some(3333)
        );
        assert_eq!(tenths_mib_per_second(1 << 20, 0, 1_000_000), None);
        assert_eq!(tenths_mib_per_second(1 << 20, 5, 0), None);
        assert_ne!(pattern_byte(0), pattern_byte(1 << 16));
        // 8 MiB in 40 million busy ticks: 5 million per MiB.
        assert_eq!(per_mib(40_000_000, 8 << 20), Some(5_000_000));
        assert_eq!(per_mib(3, 2 << 20), Some(2));
        assert_eq!(per_mib(5, 0), None);
        assert_eq!(busy_ticks(1000, 300), 700);
        assert_eq!(busy_ticks(1000, 1200), 0);
    }
}
