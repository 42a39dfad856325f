//! Boot-time marks: the TSC the kernel prints at entry (`Arbor kernel ...,
//! tsc N`) and the one init prints once all its children started (`all
//! children started (tsc N)`), from which `kernel_to_ready` is computed.
#![forbid(unsafe_code)]

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

    /// TSC ticks from kernel entry to ready, if both marks were seen.
    pub fn kernel_to_ready_ticks(&self) -> Option<u64> {
        let (start, end) = (self.kernel_tsc?, self.ready_tsc?);
        (end > start).then(|| end - start)
    }

    /// Nanoseconds from kernel entry to ready by the kernel's calibration of
    /// the TSC, if all marks were seen.
    pub fn kernel_to_ready_ns(&self) -> Option<u64> {
        let (ticks, khz) = (self.kernel_to_ready_ticks()?, self.tsc_khz?);
        (khz > 0).then(|| (u128::from(ticks) * 1_000_000 / u128::from(khz)) as u64)
    }
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
        assert_eq!(marks.kernel_to_ready_ticks(), Some(500_000));
        assert_eq!(marks.kernel_to_ready_ns(), Some(250_000_000));
    }

    #[test]
    fn missing_or_backwards_marks_give_nothing() {
        let mut marks = BootMarks::default();
        marks.feed("[init] all children started (tsc 10)");
        assert_eq!(marks.kernel_to_ready_ns(), None);
        marks.feed("Arbor kernel 0.1.0, tsc 20");
        marks.feed("TSC 5 kHz");
        assert_eq!(marks.kernel_to_ready_ticks(), None);
        assert_eq!(marks.kernel_to_ready_ns(), None);
    }
}
