//! Where the runtime puts things in a component's address space. The kernel
//! places core's stack and IPC buffer itself; [`crate::loader`] uses the
//! same shape for children. Linkers place code near 2 MiB, far below all of
//! this.

/// One past the highest byte of a child's initial stack (16-byte aligned).
pub const STACK_TOP: u64 = 0x7FFF_FFF0_0000;
/// Size of a child's initial stack.
pub const STACK_SIZE: u64 = 64 * 1024;
/// Where a child's IPC buffer is mapped: above its stack, past a guard page.
pub const IPC_BUFFER: u64 = STACK_TOP + 0x1000;
/// Start of the region the runtime hands out for its own mappings (heap,
/// temporary windows, shared memory).
pub const DYNAMIC_BASE: u64 = 0x1000_0000_0000;
/// One past the end of that region.
pub const DYNAMIC_END: u64 = 0x2000_0000_0000;
/// Address space reserved for the heap at the start of the dynamic region.
pub const HEAP_RESERVE: u64 = 1 << 30;
/// The heap grows by at least this many bytes at a time.
pub const HEAP_CHUNK: u64 = 64 * 1024;
