//! # The Arbor component runtime
//!
//! Every component links this crate. It provides:
//! - [`sys`]: one safe wrapper per system call, returning `Result<_, abi::Error>`;
//! - the entry point (`_start`, see [`entry!`]) and a panic handler that
//!   prints to the console (or hands the message to a [`PanicReporter`])
//!   and then faults, so the parent sees the failure;
//! - [`print!`]/[`println!`] through the console capability;
//! - a heap (the global allocator, a first-fit free list) in dataspaces paid
//!   from the component's own quota, mapped as it grows; see [`heap`];
//! - [`packet_stream`]: the shared-memory rings under Block, Nic and
//!   FileSystem sessions;
//! - [`loader`]: start a child Pd from an ELF image;
//! - [`guard`]: a slot and a quota loan that undo themselves on every error
//!   path unless kept.
//!
//! `unsafe` lives only at the machine edge — the `syscall` instruction, the
//! IPC buffer and the heap's memory — each block with a `SAFETY:` comment.
//! The decisions (load plans, address and slot allocation, heap arithmetic)
//! are plain modules tested on the host.
//!
//! ## Start convention
//! A thread starts with `rdi` = the address of its IPC buffer (the kernel
//! does so for core, [`loader`] for children). The first eight payload bytes
//! of that buffer hold the thread's start argument (zero if its creator wrote
//! none); `_start` reads them before anything else uses the buffer.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod console;
pub mod guard;
pub mod heap;
pub mod ipc;
pub mod layout;
pub mod loader;
pub mod packet_stream;
pub mod plan;
pub mod platform;
pub mod random;
pub mod rom;
pub mod slots;
pub mod sync;
pub mod sys;
pub mod vspace;

#[cfg(target_os = "none")]
mod rt;

pub use arbor_abi as abi;

/// Declares the component's main function, `fn NAME(argument: u64)` (any
/// name but `main`, which the macro generates on the host), where the
/// argument is the one its creator passed (see the crate's start convention).
/// When `main` returns the thread ends with [`exit`].
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// On the host a component is only compiled (so that workspace-wide
        /// `cargo test` and clippy see it); it runs on x86_64-unknown-none.
        #[cfg(not(target_os = "none"))]
        fn main() {
            let _: fn(u64) = $main;
            std::eprintln!(
                "this component runs on x86_64-unknown-none; start it with `cargo arbor`"
            );
        }

        /// Called by the runtime's `_start` once the runtime is set up.
        #[cfg(target_os = "none")]
        #[unsafe(no_mangle)]
        extern "Rust" fn arbor_component_main(argument: u64) {
            let main: fn(u64) = $main;
            main(argument)
        }
    };
}

/// Ends the calling thread: destroys it through its own thread capability.
/// If that is refused (the capability lacks CONTROL), the thread blocks for
/// good by yielding forever.
pub fn exit() -> ! {
    let _ = sys::destroy(abi::slot::OWN_THREAD);
    loop {
        sys::yield_now();
    }
}

/// Reports a panic somewhere other than the kernel console: children of init
/// have no console capability and log through a Log session instead (see
/// `arbor_sessions::env`). It runs before the thread faults, so it must not
/// panic itself; a nested panic finds the reporter taken and faults at once.
pub type PanicReporter = fn(&core::panic::PanicInfo<'_>);

static PANIC_REPORTER: sync::TryLock<Option<PanicReporter>> = sync::TryLock::new(None);

/// Sends future panic messages to `reporter` instead of the console.
pub fn set_panic_reporter(reporter: PanicReporter) {
    if let Some(mut slot) = PANIC_REPORTER.try_lock() {
        *slot = Some(reporter);
    }
}

/// Reports `info` through the installed reporter; false if there is none
/// (or it is already running further up the stack).
pub fn report_panic(info: &core::panic::PanicInfo<'_>) -> bool {
    // Holding the lock while the reporter runs makes a panic inside it fall
    // back to the console instead of recursing.
    let Some(slot) = PANIC_REPORTER.try_lock() else {
        return false;
    };
    match *slot {
        Some(reporter) => {
            reporter(info);
            true
        }
        None => false,
    }
}
