//! # The Arbor microkernel
//!
//! Principles, in order of precedence:
//! 1. **Mechanism, never policy.** The kernel offers address spaces, threads,
//!    capabilities, IPC, memory, interrupts and fault delivery; who gets what
//!    is decided by user-level components (core, init).
//! 2. **Never panics on anything user space passes in.** Every argument is a
//!    claim to be checked; every failure is an error value.
//! 3. **Small and plain.** Simple, explicit algorithms over clever ones; the
//!    goal is under 10,000 lines.
//! 4. **Hardware access is fenced.** Every `unsafe` block carries a
//!    `SAFETY:` comment and every `unsafe fn` a `# Safety` section. They
//!    live in these places only, for these reasons:
//!    - `arch` (console, cpu, entry, interrupts, paging, stacks): port I/O,
//!      model-specific and control registers, descriptor tables, the entry
//!      assembly, the interrupt controllers' registers, the kernel's own
//!      page tables (`paging::table` is an `unsafe fn`).
//!    - `boot`: reading what the boot loader left in memory before any
//!      object exists, placing the frame table, opening the physical window
//!      (`PhysWindow::new` is an `unsafe fn`), and the deliberate faults of
//!      the self-tests.
//!    - `kernel::store`: the raw casts from a frame to what it holds
//!      (`frame_ref` / `frame_mut` are `unsafe fn`s), reached only through
//!      accessors that first check the frame table for that use and borrow
//!      from the store, so the borrow checker sees every access (the IPC
//!      fast path's `ipc_partners` checks three or four objects once and
//!      hands out references to all of them, which lie in different frames).
//!    - `kernel::entry`: the one static holding the kernel state, handed
//!      out only by `with_kernel`, which refuses to nest (and to run before
//!      the state is installed). The syscall entry stub writes the
//!      callee-saved registers into two threads' contexts the IPC fast path
//!      names, after it returned (`syscall_fast`).
//!    - `main.rs`: the `no_mangle` entry symbol.
//!
//!    Every other module — object layer, IPC, system calls, destruction,
//!    scheduling, address spaces, and the pure pieces below — says
//!    `#![forbid(unsafe_code)]`, compiles on the host, and is tested there
//!    with `cargo test -p arbor-kernel` (`kernel::tests` drives system
//!    calls, IPC and destruction against a buffer standing in for RAM).
//!
//! ## Map
//! - [`pvh`]: what QEMU hands over at boot (memory map, modules, command line).
//! - [`memory`]: free physical frames.
//! - [`cmdline`]: kernel command-line words, including self-tests.
//! - [`caps`]: capability entries and the rules for using and deriving them.
//! - [`frames`]: the frame table — what every page of RAM holds, who pays.
//! - [`quota`]: RAM and capability quotas, moved only between Pds.
//! - [`ranges`]: checks on user and device address ranges a Pd claims.
//! - [`ports`]: I/O permission bitmaps, recomputed from live grants.
//! - [`queue`]: thread queues (run queues, endpoint and notification waiters).
//! - [`context`]: a thread's saved registers.
//! - `kernel` (target, and host tests): objects, capability spaces,
//!   scheduling, IPC, faults, destruction and the system calls.
//! - `arch` (target only): console, GDT/TSS/IDT, entry stubs, interrupts,
//!   page tables.
//! - `boot` (target only): the start-up sequence, [`start`].
//!
//! The entry point is `main.rs`: the PVH stub in `arch/boot.s` switches to long
//! mode and calls [`start`].
#![cfg_attr(not(test), no_std)]

pub mod caps;
pub mod cmdline;
pub mod context;
pub mod frames;
pub mod memory;
pub mod ports;
pub mod pvh;
pub mod queue;
pub mod quota;
pub mod ranges;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
mod boot;
#[cfg(any(target_os = "none", test))]
pub mod kernel;
#[cfg(target_os = "none")]
pub use boot::start;
#[cfg(target_os = "none")]
pub(crate) use kernel::entry::{kernel_entry, syscall_fast, syscall_slow};

/// Prints to the kernel's console (on the host: the test recorder's).
#[cfg(all(test, not(target_os = "none")))]
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::kernel::hw::Console, $($arg)*);
    }};
}

/// Prints a line to the kernel's console (on the host: the test recorder's).
#[cfg(all(test, not(target_os = "none")))]
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::kernel::hw::Console, $($arg)*);
    }};
}
