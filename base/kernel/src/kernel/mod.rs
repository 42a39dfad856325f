//! The kernel proper: objects, capability spaces, scheduling, IPC and the
//! system calls, on top of the host-tested pieces (`frames`, `quota`, `caps`,
//! `queue`) and the hardware layer (`arch`).
//!
//! The kernel runs on one CPU with interrupts off; every entry from user
//! space runs to completion on the one kernel stack and leaves by restoring
//! whichever thread is to run next. All kernel state is one [`Kernel`],
//! reached on the target only through `entry::with_kernel`, which hands out
//! `&mut Kernel` for the length of a closure and refuses to nest; every
//! object is reached through the [`store::Objects`] it owns, borrowing from
//! it. So the borrow checker sees every access: no function returns a
//! reference that outlives its borrow of the kernel.
//!
//! Apart from `entry` (the target's entry glue) and `hw` (which forwards to
//! `arch` on the target), all of this compiles on the host, where
//! `tests` drives system calls, IPC and destruction against a kernel whose
//! "physical memory" is a buffer.
//!
//! ## How long a system call keeps interrupts off
//! No operation's work depends on a size a caller merely claims; each is
//! bounded by what exists. Figures measured under QEMU TCG (128 MiB machine,
//! scenario `kernel_holes`; hardware is one to two orders faster):
//! - `Unmap` (and the mapping walks of dataspace destruction,
//!   `space::for_each_leaf`) skips absent page
//!   tables: at most 512 entries per page table the Pd owns, each
//!   last-level table walked along once. The whole user half (2^35 pages,
//!   once ~110 s) unmaps in 0.6 ms for a Pd with 17 mappings; 1,000 sparse
//!   page tables take 4.7 ms (4.7 us per table). A table costs 4 KiB of
//!   quota, so the bound is about 1.2 ms per MiB of quota a Pd has turned
//!   into page tables.
//! - Mapping records belong to the Pd that maps (`mappings`): at most
//!   1,360 per Pd, paid from its quota (4 KiB per 85), and never
//!   overlapping within a Pd, so revoking a dataspace walks each mapping
//!   Pd's tables at most once per range it really maps: destroying one
//!   mapped 16 times over 1 MiB took 0.26 ms. `Map` and `Unmap` scan the
//!   caller's target Pd's records (at most 1,360) to keep them exact.
//! - Destroying a Pd walks its objects and then its frames in the frame
//!   table, depth first through the Pds it paid for, with a loop (no
//!   recursion) that stops at each Pd's last object and frame. A chain of
//!   2,000 Pds each paying for the next is destroyed in 16 ms; a Pd with
//!   1,000 dataspaces and page tables in 1.8 ms. Only a Pd's ancestors can
//!   make it that long: the work is bounded by the frames the tree owns.
//! - Destroying an IoPorts object scans the frame table once per Pd it was
//!   enabled in (at most 8) and once per generation of IoPorts derived
//!   from it.

pub mod destroy;
#[cfg(target_os = "none")]
pub mod entry;
pub mod fastpath;
pub mod fault;
pub mod hw;
pub mod ipc;
pub mod loader;
pub mod mappings;
pub mod object;
pub mod sched;
pub mod space;
pub mod store;
pub mod syscall;
#[cfg(test)]
mod tests;

pub use object::Kernel;

/// What the kernel says once when it finds that this machine's `syscall`
/// stays in ring 3 and every call is repaired from its fault (see
/// `entry::kernel_entry`); the host tool looks for this line.
pub const SLOW_SYSCALL_NOTICE: &str = "kernel: this machine's syscall stays in ring 3; every system call is repaired from its fault (slow)";
