//! The pieces of the Linux baseline's `/init` that need no Linux guest:
//! how a figure is printed, how samples become a median, and the settings
//! read from the kernel command line. `main.rs` runs the workloads. The host
//! tool uses this library too, for the markers it reads and for [`median`].
#![forbid(unsafe_code)]

/// What the guest prints first, with the time-stamp counter at `/init`'s
/// first instruction; `cargo arbor bench` reads it as `linux_kernel_to_init`.
pub const INIT_MARKER: &str = "LINUX_BASELINE init tsc ";

/// What the guest prints once every workload has reported.
pub const DONE_MARKER: &str = "LINUX_BASELINE done";

/// Round trips timed per workload unless the command line says otherwise.
pub const DEFAULT_ITERATIONS: u64 = 100_000;

/// The largest IPC payload Arbor carries (`arbor_abi::PAYLOAD_MAX`); the
/// pipe workload with a payload moves the same number of bytes each way.
pub const PAYLOAD_BYTES: usize = 3584;

/// The median of `samples` (the upper one for an even count), reordering them.
pub fn median(samples: &mut [u64]) -> Option<u64> {
    if samples.is_empty() {
        return None;
    }
    let middle = samples.len() / 2;
    Some(*samples.select_nth_unstable(middle).1)
}

/// One `BENCH {...}` line, the format Arbor's bench scenarios print too.
pub fn bench_line(bench: &str, value: u64, unit: &str, iterations: u64) -> String {
    format!(
        "BENCH {{\"bench\":\"{bench}\",\"value\":{value},\"unit\":\"{unit}\",\"iterations\":{iterations}}}"
    )
}

/// The iteration count from the environment Linux gives `/init`: every
/// `name=value` word of the kernel command line that the kernel does not know
/// arrives as an environment variable. Absent or unreadable: the default.
pub fn iterations_from(value: Option<&str>) -> u64 {
    value
        .and_then(|text| text.trim().parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or(DEFAULT_ITERATIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_picks_the_middle() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [7]), Some(7));
        assert_eq!(median(&mut [9, 1, 5]), Some(5));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(3));
    }

    #[test]
    fn lines_are_what_the_host_parses() {
        assert_eq!(
            bench_line("linux_null_syscall", 328, "instructions", 10),
            r#"BENCH {"bench":"linux_null_syscall","value":328,"unit":"instructions","iterations":10}"#
        );
    }

    #[test]
    fn iterations_fall_back_to_the_default() {
        assert_eq!(iterations_from(Some("500")), 500);
        assert_eq!(iterations_from(Some("0")), DEFAULT_ITERATIONS);
        assert_eq!(iterations_from(Some("many")), DEFAULT_ITERATIONS);
        assert_eq!(iterations_from(None), DEFAULT_ITERATIONS);
    }
}
