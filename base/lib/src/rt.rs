//! The runtime's target-only glue: the `_start` symbol, the panic handler
//! and the global allocator.

use crate::heap::{self, Reservation};
use crate::ipc;
use core::alloc::{GlobalAlloc, Layout};

// The first instruction a component runs. `rdi` holds the IPC buffer's
// address (see the crate's start convention); the stack pointer is aligned
// down to 16 bytes so that `runtime_start` sees the SysV entry alignment.
core::arch::global_asm!(
    ".globl _start",
    ".type _start, @function",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {start}",
    "ud2",
    start = sym runtime_start,
);

unsafe extern "Rust" {
    /// Defined by the component through `arbor::entry!`.
    fn arbor_component_main(argument: u64);
}

extern "C" fn runtime_start(ipc_buffer: u64) -> ! {
    ipc::set_buffer_address(ipc_buffer);
    let argument = ipc::start_argument();
    // SAFETY: `arbor::entry!` defines this symbol with exactly this
    // signature; a component without it fails to link.
    unsafe { arbor_component_main(argument) };
    crate::exit()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if !crate::report_panic(info) {
        crate::println!("panic: {info}");
    }
    loop {
        // SAFETY: `ud2` only raises #UD; the kernel stops this thread and
        // reports the fault to the parent, which is the point.
        unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
    }
}

struct Heap;

#[global_allocator]
static HEAP: Heap = Heap;

// SAFETY: `alloc` returns either null or a block of at least `layout.size()`
// bytes at `layout.align()` inside memory mapped readable and writable for
// the component's life (heap dataspaces are never unmapped); the free list
// hands a block out again only after `dealloc` gave it back.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Re-entered (a panic while allocating): fail rather than wait.
        let Some(mut heap) = heap::HEAP.try_lock() else {
            return core::ptr::null_mut();
        };
        loop {
            match heap.reserve(layout.size() as u64, layout.align() as u64) {
                Reservation::Ready(address) => {
                    return core::ptr::with_exposed_provenance_mut(address as usize);
                }
                Reservation::Grow { at, bytes, minimum } => {
                    // The preferred size may not fit the remaining quota (or
                    // the machine's contiguous memory); the minimum might.
                    let mapped = if heap::map_more(at, bytes).is_ok() {
                        bytes
                    } else if minimum < bytes && heap::map_more(at, minimum).is_ok() {
                        minimum
                    } else {
                        return core::ptr::null_mut();
                    };
                    // SAFETY: `[at, at + mapped)` was just mapped read-write
                    // from a fresh dataspace at the heap's mapped end, as
                    // `reserve` asked; nothing else uses it and it stays
                    // mapped.
                    unsafe { heap.grown(mapped) };
                }
                Reservation::Exhausted => return core::ptr::null_mut(),
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // If the heap is held (re-entrance), the block leaks: safe, and rare.
        if let Some(mut heap) = heap::HEAP.try_lock() {
            // SAFETY: `GlobalAlloc::dealloc`'s contract: `ptr` came from
            // `alloc` with this layout and is no longer used.
            unsafe { heap.release(ptr.expose_provenance() as u64, layout.size() as u64) };
        }
    }
}
