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
}

impl TestSpec {
    fn default_timeout() -> Duration {
        Duration { millis: 30_000 }
    }
}
