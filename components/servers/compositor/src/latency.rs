//! Refresh-to-flush latency: how long a client's refresh waits until the
//! frame that shows it has been flushed by the display driver — the
//! `gui_frame_ms` figure of `cargo arbor bench` (`bench_gui.ron`).
//!
//! A frame shows every refresh admitted since the previous frame, so the
//! sample of a frame runs from the *earliest* of those refreshes to the end
//! of the frame's last Framebuffer refresh call (the driver replies once
//! its flush completed). Timestamps are the caller's (TSC ticks).

use alloc::vec::Vec;

/// Samples of refresh-to-flush latency, until enough were taken.
#[derive(Debug, Default)]
pub struct Latency {
    /// The earliest refresh not yet shown.
    pending: Option<u64>,
    samples: Vec<u64>,
    wanted: usize,
}

impl Latency {
    /// Takes `wanted` samples (none when 0), then stops.
    pub fn new(wanted: usize) -> Self {
        Self {
            pending: None,
            samples: Vec::with_capacity(wanted),
            wanted,
        }
    }

    /// A client's refresh was admitted at `now`.
    pub fn refreshed(&mut self, now: u64) {
        if self.samples.len() < self.wanted && self.pending.is_none() {
            self.pending = Some(now);
        }
    }

    /// The frame that showed every pending refresh was flushed at `now`.
    /// Returns the median of all samples when this one was the last wanted.
    pub fn flushed(&mut self, now: u64) -> Option<u64> {
        let started = self.pending.take()?;
        self.samples.push(now.saturating_sub(started));
        if self.samples.len() != self.wanted {
            return None;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied()
    }
}

/// `ticks` at `ticks_per_ms` as milliseconds with three decimals, e.g.
/// `"12.345"` (a tick rate of 0 is taken as 1).
pub fn millis(ticks: u64, ticks_per_ms: u64) -> alloc::string::String {
    let micros = u128::from(ticks) * 1000 / u128::from(ticks_per_ms.max(1));
    alloc::format!("{}.{:03}", micros / 1000, micros % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_runs_from_the_earliest_refresh_of_a_frame_to_its_flush() {
        let mut latency = Latency::new(3);
        latency.refreshed(100);
        latency.refreshed(150);
        assert_eq!(latency.flushed(130), None);
        // A frame without a refresh (damage of a closed view) is no sample.
        assert_eq!(latency.flushed(200), None);
        latency.refreshed(300);
        assert_eq!(latency.flushed(310), None);
        latency.refreshed(400);
        // Samples 30, 10, 50: the median is 30.
        assert_eq!(latency.flushed(450), Some(30));
        latency.refreshed(500);
        assert_eq!(latency.flushed(600), None, "no samples past the wanted");
    }

    #[test]
    fn no_samples_wanted_means_none_taken() {
        let mut latency = Latency::new(0);
        latency.refreshed(1);
        assert_eq!(latency.flushed(2), None);
    }

    #[test]
    fn millis_keep_three_decimals_and_survive_a_zero_rate() {
        assert_eq!(millis(12_345_678, 1_000_000), "12.345");
        assert_eq!(millis(5, 0), "5.000");
        assert_eq!(millis(u64::MAX, 1), "18446744073709551615.000");
    }
}
