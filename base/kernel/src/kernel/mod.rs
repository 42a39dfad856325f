//! The kernel proper: objects, capability spaces, scheduling, IPC and the
//! system calls, on top of the host-tested pieces (`frames`, `quota`, `caps`,
//! `queue`) and the hardware layer (`arch`).
//!
//! The kernel runs on one CPU with interrupts off; every entry from user
//! space runs to completion on the one kernel stack and leaves by restoring
//! whichever thread is to run next. There is therefore never more than one
//! path through this code at a time.

pub mod destroy;
pub mod fault;
pub mod ipc;
pub mod loader;
pub mod object;
pub mod sched;
pub mod space;
pub mod syscall;

pub use object::Kernel;
