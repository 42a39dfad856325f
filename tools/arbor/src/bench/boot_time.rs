//! Boot-time figures: how long from kernel entry (TSC printed by the kernel)
//! and from launching QEMU (host clock) until init reports that all its
//! children started (`all children started (tsc N)`), over several boots.

use crate::qemu::{self, Accel, Continue, GuestEnd};
use crate::scenarios::LoadedScenario;
use std::path::Path;
use std::time::{Duration, Instant};

/// The number after `marker` in `line`, if any.
fn number_after(line: &str, marker: &str) -> Option<u64> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// What one boot told about itself.
#[derive(Debug, Default, PartialEq)]
pub struct BootMarks {
    /// TSC at kernel entry.
    pub kernel_tsc: Option<u64>,
    /// TSC ticks per millisecond, as the kernel calibrated them.
    pub tsc_khz: Option<u64>,
    /// TSC when init had started every child.
    pub ready_tsc: Option<u64>,
}

impl BootMarks {
    /// Takes one log line; true once the ready marker has been seen.
    pub fn feed(&mut self, line: &str) -> bool {
        if line.contains("Arbor kernel") {
            self.kernel_tsc = number_after(line, ", tsc ");
        }
        if let Some(khz) = number_after(line, "TSC ") {
            self.tsc_khz = Some(khz);
        }
        if line.contains("all children started") {
            self.ready_tsc = number_after(line, "(tsc ");
        }
        self.ready_tsc.is_some()
    }

    /// Milliseconds from kernel entry to ready, if all marks were seen.
    pub fn kernel_to_ready_ms(&self) -> Option<f64> {
        let (start, end, khz) = (self.kernel_tsc?, self.ready_tsc?, self.tsc_khz?);
        (end > start && khz > 0).then(|| (end - start) as f64 / khz as f64)
    }
}

/// The median of `values` (which it sorts).
pub fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Boots `scenario` `boots` times; returns the kernel-to-ready and
/// QEMU-launch-to-ready times in milliseconds of each boot that got there.
pub fn measure(
    scenario: &LoadedScenario,
    kernel: &Path,
    accel: Accel,
    boots: usize,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let mut kernel_ms = Vec::new();
    let mut launch_ms = Vec::new();
    for _ in 0..boots {
        let launch = qemu::prepare_with(scenario, kernel.to_path_buf(), accel)
            .map_err(|e| format!("{e:#}"))?;
        let mut marks = BootMarks::default();
        let started = Instant::now();
        let mut ready_at = None;
        let end = qemu::boot(&launch, Some(Duration::from_secs(60)), |line| {
            if marks.feed(line) {
                ready_at = Some(started.elapsed());
                Continue::Stop
            } else {
                Continue::Go
            }
        })
        .map_err(|e| format!("{e:#}"))?;
        match (end, ready_at, marks.kernel_to_ready_ms()) {
            (GuestEnd::Stopped, Some(wall), Some(kernel)) => {
                kernel_ms.push(kernel);
                launch_ms.push(wall.as_secs_f64() * 1000.0);
            }
            (end, _, _) => {
                return Err(format!(
                    "scenario {} never reported ready ({end:?})",
                    scenario.name
                ));
            }
        }
    }
    Ok((kernel_ms, launch_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_read_from_real_lines() {
        let mut marks = BootMarks::default();
        assert!(!marks.feed("Arbor kernel 0.1.0 (x86_64, PVH boot), tsc 1000000"));
        assert!(
            !marks
                .feed("kernel: 125 MiB for user space, 10 ms time slices, TSC 2000 kHz, PCID off")
        );
        assert!(marks.feed("[init] all children started (tsc 1500000)"));
        assert_eq!(marks.kernel_to_ready_ms(), Some(250.0));
    }

    #[test]
    fn missing_or_backwards_marks_give_nothing() {
        let mut marks = BootMarks::default();
        marks.feed("[init] all children started (tsc 10)");
        assert_eq!(marks.kernel_to_ready_ms(), None);
        marks.feed("Arbor kernel 0.1.0, tsc 20");
        marks.feed("TSC 5 kHz");
        assert_eq!(marks.kernel_to_ready_ms(), None);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(3.0));
        assert_eq!(median(&mut []), None);
    }
}
