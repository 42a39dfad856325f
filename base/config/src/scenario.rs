//! The scenario schema. Every struct refuses unknown fields, so a typo is an
//! error at its line and column rather than a silently ignored setting.

use crate::init::InitConfig;
use crate::{ByteSize, Duration};
use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

/// One runnable system: the machine, what the kernel is told, and what a test expects.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A sentence for `cargo arbor` listings and the README.
    pub description: String,
    /// What QEMU provides.
    #[serde(default)]
    pub machine: Machine,
    /// What the kernel is told at boot.
    #[serde(default)]
    pub kernel: Kernel,
    /// What the root init starts; kernel-only scenarios have none.
    #[serde(default)]
    pub init: Option<InitConfig>,
    /// What `cargo arbor test` checks; a scenario without it is only run.
    #[serde(default)]
    pub test: Option<TestSpec>,
}

/// The virtual machine QEMU provides.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// Guest RAM.
    #[serde(default = "Machine::default_memory")]
    pub memory: ByteSize,
    /// PCI devices, each in its own slot of bus 0 (see [`Device`]).
    #[serde(default)]
    pub devices: Vec<Device>,
}

/// One PCI device QEMU provides, by kind. Each sits in a pinned slot of
/// bus 0: `slot` when given, else the first free one from 1 up, in the
/// order listed (slot 0 is the host bridge). Its INTA reaches IOAPIC input
/// `20 + slot % 4` (q35's PIRQ E–H, see DEVICES.md).
///
/// ```ron
/// devices: [VirtioBlk(disk: "disk.img"), VirtioNet(), VirtioKeyboard(slot: 6)]
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Device {
    /// A virtio block device backed by a raw image file: either an
    /// existing `disk` (relative to the scenario's directory), or an
    /// `image` the tool builds before every boot (relative to the
    /// workspace root, e.g. under `target/`) of `size` bytes, formatted as
    /// `format`, with host `files` copied onto it.
    ///
    /// ```ron
    /// VirtioBlk(image: "target/disks/storage.img", size: "64M", format: Fat32,
    ///           files: [(from: "runtime-configs/disks/readme.txt", to: "/docs/A long name.txt")])
    /// ```
    VirtioBlk {
        /// An existing image file.
        #[serde(default)]
        disk: Option<String>,
        /// The image file the tool builds (replaced on every boot).
        #[serde(default)]
        image: Option<String>,
        /// The built image's size.
        #[serde(default)]
        size: Option<ByteSize>,
        /// The built image's file system.
        #[serde(default)]
        format: Option<DiskFormat>,
        /// Host files copied onto the built image.
        #[serde(default)]
        files: Vec<DiskFile>,
        /// The PCI slot.
        #[serde(default)]
        slot: Option<u8>,
    },
    /// A virtio network card on QEMU user networking (10.0.2.0/24: the
    /// guest gets 10.0.2.15 by DHCP, the gateway is 10.0.2.2). Each
    /// `forward` makes QEMU listen on the host's loopback address only
    /// (127.0.0.1) and pass TCP connections to the guest's port; `host: 0`
    /// lets the tool pick a free port, which `cargo arbor run` prints and a
    /// test's host command names as `{port:GUEST}`.
    ///
    /// ```ron
    /// VirtioNet(forward: [(host: 8080, guest: 80), (host: 0, guest: 7)], slot: 2)
    /// ```
    VirtioNet {
        /// TCP ports forwarded from the host's 127.0.0.1 to the guest.
        #[serde(default)]
        forward: Vec<Forward>,
        /// The PCI slot.
        #[serde(default)]
        slot: Option<u8>,
    },
    /// A virtio GPU (no display is opened; screenshots go through QMP).
    VirtioGpu {
        /// The PCI slot.
        #[serde(default)]
        slot: Option<u8>,
    },
    /// A virtio keyboard.
    VirtioKeyboard {
        /// The PCI slot.
        #[serde(default)]
        slot: Option<u8>,
    },
    /// A virtio tablet (absolute pointer).
    VirtioTablet {
        /// The PCI slot.
        #[serde(default)]
        slot: Option<u8>,
    },
}

/// One TCP port forwarded from the host's 127.0.0.1 to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    /// The host port (on 127.0.0.1); 0 lets the tool pick a free one.
    pub host: u16,
    /// The guest port (the guest's DHCP address, 10.0.2.15).
    pub guest: u16,
}

/// The file system the tool puts on a built disk image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum DiskFormat {
    /// Unformatted (zeroes).
    Raw,
    /// FAT32 (`mkfs.fat -F 32`).
    Fat32,
}

/// A host file copied onto a built disk image (`mcopy`).
///
/// ```ron
/// (from: "target/disks/web/one.bin", to: "/one.bin", generate: Some("1M"))
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskFile {
    /// The host file, relative to the workspace root.
    pub from: String,
    /// Its absolute path on the image (directories are made).
    pub to: String,
    /// When given, the tool first writes this many bytes of a fixed
    /// pseudo-random sequence to `from` (which then belongs under
    /// `target/`), so a test can compare what the guest serves with the
    /// host's copy without a large file in the repository.
    #[serde(default)]
    pub generate: Option<ByteSize>,
}

/// The highest PCI slot (device number) on a bus.
pub const MAX_SLOT: u8 = 31;

impl Device {
    /// The kind's name, as a scenario writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            Device::VirtioBlk { .. } => "VirtioBlk",
            Device::VirtioNet { .. } => "VirtioNet",
            Device::VirtioGpu { .. } => "VirtioGpu",
            Device::VirtioKeyboard { .. } => "VirtioKeyboard",
            Device::VirtioTablet { .. } => "VirtioTablet",
        }
    }

    /// The slot the scenario asks for, if any.
    pub fn requested_slot(&self) -> Option<u8> {
        match *self {
            Device::VirtioBlk { slot, .. }
            | Device::VirtioNet { slot, .. }
            | Device::VirtioGpu { slot }
            | Device::VirtioKeyboard { slot }
            | Device::VirtioTablet { slot } => slot,
        }
    }
}

/// The slot of each device, in order: the requested one, else the lowest
/// slot from 1 that no device requests and no earlier device took. `None`
/// where slots run out.
pub fn assign_slots(devices: &[Device]) -> Vec<Option<u8>> {
    let requested: Vec<u8> = devices.iter().filter_map(Device::requested_slot).collect();
    let mut taken: Vec<u8> = Vec::new();
    devices
        .iter()
        .map(|device| {
            let slot = device
                .requested_slot()
                .or_else(|| (1..=MAX_SLOT).find(|s| !requested.contains(s) && !taken.contains(s)));
            if let Some(slot) = slot {
                taken.push(slot);
            }
            slot
        })
        .collect()
}

impl Machine {
    /// Guest RAM when a scenario does not say.
    pub const DEFAULT_MEMORY: ByteSize = ByteSize(128 << 20);
    /// Less than this cannot hold the kernel, its page tables and a boot archive.
    pub const MIN_MEMORY: ByteSize = ByteSize(16 << 20);
    /// QEMU's q35 places RAM below the PCI hole and above 4 GiB; this bounds what we ask of it.
    pub const MAX_MEMORY: ByteSize = ByteSize(64 << 30);

    fn default_memory() -> ByteSize {
        Self::DEFAULT_MEMORY
    }
}

impl Default for Machine {
    fn default() -> Self {
        Self {
            memory: Self::DEFAULT_MEMORY,
            devices: Vec::new(),
        }
    }
}

/// What the kernel is told at boot, and what it starts.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    /// The kernel command line: space-separated `key=value` words,
    /// e.g. `"selftest=invalid_opcode"`.
    #[serde(default)]
    pub args: String,
    /// The component the kernel starts first, by binary name; it is packed as
    /// the boot module `core`. Without it the kernel only boots and exits.
    #[serde(default)]
    pub core: Option<String>,
    /// Text packed as the boot module `core_args`, read by the first component.
    #[serde(default)]
    pub core_args: String,
    /// More component binaries packed as boot modules under their own names,
    /// for the first component to load.
    #[serde(default)]
    pub modules: Vec<String>,
}

/// How a scenario's run must end for its test to pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum ExitOutcome {
    /// The guest reports success through `isa-debug-exit`.
    #[default]
    Success,
    /// The guest reports failure through `isa-debug-exit` (e.g. a kernel exception
    /// that a scenario provokes on purpose).
    Failure,
    /// The system keeps running (servers never exit): the test passes once
    /// every expected line has appeared, and the run is then stopped.
    Running,
}

/// What `cargo arbor test` checks for one scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    /// Substrings that must appear in the serial log, each on a later line than the one before.
    pub expect: Vec<String>,
    /// Substrings that must each appear somewhere in the log, in any order
    /// (what concurrent components print in no fixed order).
    #[serde(default)]
    pub expect_unordered: Vec<String>,
    /// How the run must end.
    #[serde(default)]
    pub exit: ExitOutcome,
    /// The run is stopped and failed after this long.
    #[serde(default = "TestSpec::default_timeout")]
    pub timeout: Duration,
    /// Substrings that fail the test on any line, checked until the run
    /// ends; in addition to the [`DefaultReject`]s, which every test has.
    #[serde(default)]
    pub reject: Vec<String>,
    /// The default rejects this scenario provokes on purpose, by name (e.g.
    /// `allow: [Panic]` where a child panics to test fault handling). Every
    /// default not named stays in force, and a name the run never needed
    /// fails the test, so an allowance cannot outlive its reason.
    #[serde(default)]
    pub allow: Vec<DefaultReject>,
    /// Host commands run after the guest stopped (the test fails if one
    /// fails or its output lacks an expected line); `{image}` in a
    /// command becomes the path of the scenario's first built disk image.
    #[serde(default)]
    pub after: Vec<HostCheck>,
    /// Steps run while the guest runs, each once its line has appeared:
    /// host commands (`Run`, e.g. curl against a forwarded port), input
    /// sent and screenshots taken through QMP and checked by the host
    /// (those need a `VirtioGpu`, and a keyboard / tablet for input).
    #[serde(default)]
    pub display: Vec<DisplayStep>,
}

/// One host command of a test's `after` section.
///
/// ```ron
/// after: [(run: "mtype -i {image} ::/dir/file.txt", expect: ["Hello"])]
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostCheck {
    /// The command, run by `sh -c` in the workspace root.
    pub run: String,
    /// Substrings its standard output must contain, each on a later line
    /// than the one before.
    #[serde(default)]
    pub expect: Vec<String>,
}

/// The forwards of every `VirtioNet`, in order.
pub fn forwards(devices: &[Device]) -> Vec<Forward> {
    devices
        .iter()
        .flat_map(|device| match device {
            Device::VirtioNet { forward, .. } => forward.as_slice(),
            _ => &[],
        })
        .copied()
        .collect()
}

/// The guest ports a host command names as `{port:N}`, in order, or the
/// text of the first `{port:...}` whose N is no port number.
pub fn named_guest_ports(command: &str) -> Result<Vec<u16>, String> {
    const OPEN: &str = "{port:";
    let mut ports = Vec::new();
    let mut rest = command;
    while let Some(at) = rest.find(OPEN) {
        let after = &rest[at + OPEN.len()..];
        let Some(end) = after.find('}') else {
            return Err(String::from(&rest[at..]));
        };
        match after[..end].parse::<u16>() {
            Ok(port) => ports.push(port),
            Err(_) => return Err(String::from(&rest[at..at + OPEN.len() + end + 1])),
        }
        rest = &after[end + 1..];
    }
    Ok(ports)
}

/// One step of a scenario test while the guest runs: when a log line
/// containing `after` has appeared, the actions run in order.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayStep {
    /// The log line substring that starts this step.
    pub after: String,
    /// What to do then.
    pub actions: Vec<DisplayAction>,
}

/// What a step does while the guest runs.
#[derive(Clone, Debug, Deserialize)]
pub enum DisplayAction {
    /// Types the text (lowercase letters, digits, space; `\n` is Enter).
    Type(String),
    /// Moves the tablet to pixel (x, y) and clicks the left button.
    Click(u32, u32),
    /// Waits this many milliseconds (the guest keeps running).
    Wait(u64),
    /// Takes a screenshot and checks it.
    Screenshot(Vec<ScreenCheck>),
    /// Runs a host command while the guest keeps running (by `sh -c` in
    /// the workspace root); it must succeed within `timeout` (default 60 s)
    /// and its standard output must hold the `expect` substrings, each on a
    /// later line. `{port:80}` becomes the host port forwarded to guest
    /// port 80, `{image}` the scenario's first built disk image.
    ///
    /// ```ron
    /// Run(command: "curl -s http://127.0.0.1:{port:80}/", expect: ["Hello"])
    /// ```
    Run {
        /// The command.
        command: String,
        /// Substrings its output must hold, in order.
        #[serde(default)]
        expect: Vec<String>,
        /// It is killed and the test fails after this long.
        #[serde(default)]
        timeout: Option<Duration>,
    },
    /// Measures `input_to_pixel_ms` (coarse): types the character, then
    /// takes screenshots until the rectangle (x, y, width, height)
    /// changes, and reports the time; fails after 5 s without a change.
    InputToPixel(char, u32, u32, u32, u32),
}

/// A check on a screenshot.
#[derive(Clone, Debug, Deserialize)]
pub enum ScreenCheck {
    /// The screen is this many pixels wide and high.
    Size(u32, u32),
    /// The rectangle's checksum (`arbor_sessions::framebuffer::checksum`
    /// over its pixels as 0x00RRGGBB) is `sum`.
    Sum {
        /// A name for the failure message.
        name: String,
        /// Left edge.
        x: u32,
        /// Top edge.
        y: u32,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// The expected checksum.
        sum: u64,
    },
    /// The rectangle differs from the same rectangle of the step's previous
    /// screenshot (e.g. a client kept drawing in between); fails when this
    /// is the test's first screenshot.
    Changed {
        /// A name for the failure message.
        name: String,
        /// Left edge.
        x: u32,
        /// Top edge.
        y: u32,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
}

impl TestSpec {
    fn default_timeout() -> Duration {
        Duration { millis: 30_000 }
    }
}

/// What fails every scenario test unless the scenario allows it by name
/// (`test: (allow: [...])`). `cargo arbor test` knows the exact line each
/// one prints and stops the run as soon as one appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum DefaultReject {
    /// The kernel took an exception in kernel mode (`KERNEL EXCEPTION #..`).
    KernelException,
    /// The kernel panicked (`KERNEL PANIC: ..`).
    KernelPanic,
    /// A component panicked (`panic: panicked at ..`).
    Panic,
    /// init found RAM or caps missing after a child's restarts (`LEAKED ..`
    /// with a positive count: a negative one is quota returned by a sibling).
    Leak,
    /// init could not start a child (`cannot start NAME: ..`).
    ChildCannotStart,
}

impl DefaultReject {
    /// Every default reject.
    pub const ALL: [DefaultReject; 5] = [
        DefaultReject::KernelException,
        DefaultReject::KernelPanic,
        DefaultReject::Panic,
        DefaultReject::Leak,
        DefaultReject::ChildCannotStart,
    ];
}

#[cfg(test)]
mod test_spec_tests {
    use super::*;
    use crate::parse_scenario;

    #[test]
    fn reject_and_allow_parse() {
        let scenario = parse_scenario(
            r#"Scenario(description: "d", test: (expect: ["a"], reject: ["oops"], allow: [Panic, Leak]))"#,
        )
        .unwrap();
        let test = scenario.test.unwrap();
        assert_eq!(test.reject, ["oops"]);
        assert_eq!(test.allow, [DefaultReject::Panic, DefaultReject::Leak]);
    }

    #[test]
    fn reject_and_allow_default_to_empty() {
        let scenario =
            parse_scenario(r#"Scenario(description: "d", test: (expect: ["a"]))"#).unwrap();
        let test = scenario.test.unwrap();
        assert!(test.reject.is_empty() && test.allow.is_empty());
    }

    #[test]
    fn unknown_allowance_is_an_error() {
        let error = parse_scenario(
            r#"Scenario(description: "d", test: (expect: ["a"], allow: [Everything]))"#,
        )
        .unwrap_err();
        let text = alloc::format!("{error}");
        assert!(text.contains("Everything"), "{text}");
    }
}
