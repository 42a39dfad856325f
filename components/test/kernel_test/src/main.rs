//! kernel_test: the kernel's test suite, started as core. `core_args`
//! selects the mode:
//! - `mode=syscalls`: every system call, success and errors, and IPC with
//!   `pingpong`; ends with `N passed, M failed`.
//! - `mode=faults`: `fault_child` provokes one CPU fault per run; each fault
//!   message is received, printed and its child destroyed.
//! - `mode=holes levels=N [only=NAME]`: one attack per kernel hole of
//!   issue 9, each of which must be refused (a Pd chain N deep for the
//!   teardown); `only` runs one of them.
//! - `mode=hostile iterations=N`: `hostile` issues N random system calls;
//!   its destruction must return every byte.
//! - `mode=bench iterations=N`: IPC round trips with `pingpong`, timed with
//!   `rdtsc`; prints one `BENCH {...}` line.
//!
//! Every mode ends the QEMU run with a verdict through `isa-debug-exit`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod args;
mod bench;
mod checks;
mod faults;
mod holes;
mod hostile;
mod syscalls;

use arbor::abi::{CapSlot, Error, Rights, slot};
use arbor::loader::{self, Child, ChildSpec, LoadError};
use arbor::{println, rom, slots};

arbor::entry!(run);

fn run(_argument: u64) {
    let core_args = rom::module("core_args")
        .ok()
        .and_then(|bytes| core::str::from_utf8(bytes).ok())
        .unwrap_or("");
    let mode = args::value(core_args, "mode").unwrap_or("syscalls");
    println!("kernel_test: mode {mode} (core_args \"{core_args}\")");
    let success = match mode {
        "syscalls" => {
            let checks = syscalls::run();
            checks.summary();
            checks.failed == 0
        }
        "faults" => faults::run(),
        "holes" => {
            let levels = args::number(core_args, "levels", 2000);
            let checks = holes::run(levels, args::value(core_args, "only"));
            checks.summary();
            checks.failed == 0
        }
        "hostile" => hostile::run(args::number(core_args, "iterations", 100_000)),
        "bench" => bench::run(args::number(core_args, "iterations", 100_000)),
        other => {
            println!("kernel_test: unknown mode \"{other}\"");
            false
        }
    };
    println!("kernel_test: done");
    let error = arbor::platform::qemu_exit(success);
    println!("kernel_test: cannot end the run: {error}");
}

/// A free slot of the own table (slot 0, which every call refuses, if none).
pub fn fresh() -> CapSlot {
    slots::allocate().unwrap_or(CapSlot::NULL)
}

/// Why a test child could not be started.
#[derive(Debug)]
pub enum SpawnError {
    /// The boot archive lacks the module.
    NoModule(Error),
    /// The loader failed.
    Load(LoadError),
}

/// Starts boot module `module` with `ram` bytes and `caps` slots of quota,
/// start argument `argument`, faults reported to `fault_endpoint`, and
/// `endpoint` in its [`slot::PARENT`] (read and write) and the console.
pub fn spawn(
    module: &str,
    ram: u64,
    caps: u64,
    argument: u64,
    endpoint: CapSlot,
    fault_endpoint: Option<CapSlot>,
) -> Result<Child, SpawnError> {
    let image = rom::module(module).map_err(SpawnError::NoModule)?;
    let grants = [
        (endpoint, slot::PARENT, Rights::READ.union(Rights::WRITE)),
        (slot::CONSOLE, slot::CONSOLE, Rights::WRITE),
    ];
    loader::spawn(&ChildSpec {
        image,
        ram,
        caps,
        priority: 1,
        argument,
        fault_endpoint,
        grants: &grants,
    })
    .map_err(SpawnError::Load)
}

/// Starts `pingpong` serving on `endpoint`.
pub fn spawn_pingpong(endpoint: CapSlot) -> Result<Child, Error> {
    spawn("pingpong", 512 * 1024, 64, 0, endpoint, None).map_err(|error| {
        println!("kernel_test: cannot start pingpong: {error:?}");
        match error {
            SpawnError::NoModule(error) => error,
            SpawnError::Load(LoadError::Kernel { error, .. }) => error,
            SpawnError::Load(_) => Error::InvalidArgument,
        }
    })
}
