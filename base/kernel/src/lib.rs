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
//! 4. **Hardware access is fenced.** `unsafe` lives in [`arch`] only, each
//!    block with a `SAFETY:` comment. Everything else is plain logic that
//!    compiles and is tested on the host with `cargo test`.
//!
//! ## Map
//! - [`pvh`]: what QEMU hands over at boot (memory map, modules, command line).
//! - [`memory`]: free physical frames.
//! - [`cmdline`]: kernel command-line words, including self-tests.
//! - `arch` (target only): console, GDT/TSS/IDT, exceptions, page tables.
//! - `boot` (target only): the start-up sequence, [`start`].
//!
//! The entry point is `main.rs`: the PVH stub in `arch/boot.s` switches to long
//! mode and calls [`start`].
#![cfg_attr(not(test), no_std)]

pub mod caps;
pub mod cmdline;
pub mod frames;
pub mod memory;
pub mod pvh;
pub mod queue;
pub mod quota;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
pub use boot::start;
