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

/// What `/init` prints once it serves HTTP (`mode=http` on the kernel
/// command line): modules loaded, eth0 up as [`HTTP_GUEST_ADDRESS`],
/// listening on port 80.
pub const HTTP_READY_MARKER: &str = "LINUX_BASELINE http serving";

/// The address the HTTP mode gives eth0: what QEMU's user network hands
/// a guest by DHCP (Arbor's stack asks DHCP; this guest sets it by ioctl).
pub const HTTP_GUEST_ADDRESS: [u8; 4] = [10, 0, 2, 15];

/// The kernel modules the HTTP mode loads, in dependency order, as the
/// Debian 6.1 kernel builds them (`=m`): virtio's ring, core and PCI
/// transport, then failover and virtio_net (each after what its
/// `.modinfo` `depends=` names).
pub const NET_MODULES: [&str; 8] = [
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
];

/// The 16 MiB file of the HTTP benchmark, as its path on both servers.
pub const BIG_FILE_PATH: &str = "/sixteen_mib.bin";
/// Its size.
pub const BIG_FILE_SIZE: u64 = 16 << 20;

/// `size` bytes of the fixed pseudo-random sequence the host tool writes
/// into generated disk files (xorshift64 from a constant seed): the Linux
/// guest serves the same bytes Arbor reads from its disk image.
pub fn generated_bytes(size: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(size as usize);
    let mut state = 0x6172_626f_725f_6e65_u64;
    while (out.len() as u64) < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let take = (size - out.len() as u64).min(8) as usize;
        out.extend_from_slice(&state.to_le_bytes()[..take]);
    }
    out
}

/// The path of an HTTP/1.1 GET or HEAD request head, and whether the
/// connection stays open after the answer; `None` for anything else.
pub fn request_path(head: &str) -> Option<(&str, bool, bool)> {
    let mut lines = head.split("\r\n");
    let mut words = lines.next()?.split(' ');
    let method = words.next()?;
    let path = words.next()?;
    let version = words.next()?;
    if !(method == "GET" || method == "HEAD") || !path.starts_with('/') {
        return None;
    }
    let mut keep_alive = version == "HTTP/1.1";
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("connection")
        {
            keep_alive = value.trim().eq_ignore_ascii_case("keep-alive");
        }
    }
    Some((path, keep_alive, method == "HEAD"))
}

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
    fn generated_bytes_extend_each_other() {
        let short = generated_bytes(1000);
        assert_eq!(short.len(), 1000);
        assert_eq!(generated_bytes(1003)[..1000], short[..]);
        assert_ne!(short[..8], short[8..16]);
    }

    #[test]
    fn request_heads_give_path_and_keep_alive() {
        assert_eq!(
            request_path("GET /a HTTP/1.1\r\nHost: x"),
            Some(("/a", true, false))
        );
        assert_eq!(
            request_path("HEAD / HTTP/1.1\r\nConnection: close"),
            Some(("/", false, true))
        );
        assert_eq!(request_path("GET / HTTP/1.0"), Some(("/", false, false)));
        assert_eq!(request_path("POST / HTTP/1.1"), None);
        assert_eq!(request_path("GET x HTTP/1.1"), None);
        assert_eq!(request_path(""), None);
    }

    #[test]
    fn iterations_fall_back_to_the_default() {
        assert_eq!(iterations_from(Some("500")), 500);
        assert_eq!(iterations_from(Some("0")), DEFAULT_ITERATIONS);
        assert_eq!(iterations_from(Some("many")), DEFAULT_ITERATIONS);
        assert_eq!(iterations_from(None), DEFAULT_ITERATIONS);
    }
}
