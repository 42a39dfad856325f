//! The runtime's target-only glue: the `_start` symbol, the panic handler
//! and the global allocator.

use crate::heap::{self, Arena, Reservation};
use crate::sync::TryLock;
use crate::{ipc, layout};
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

static ARENA: TryLock<Arena> = TryLock::new(Arena::new(layout::DYNAMIC_BASE, layout::HEAP_RESERVE));

struct Heap;

#[global_allocator]
static HEAP: Heap = Heap;

// SAFETY: `alloc` returns either null or a block of at least `layout.size()`
// bytes at `layout.align()` inside memory mapped readable and writable for
// the component's life, never handed out twice while live (the arena only
// moves forward, and rewinds only over the latest block when it is freed).
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(mut arena) = ARENA.try_lock() else {
            return core::ptr::null_mut();
        };
        loop {
            match arena.reserve(layout.size() as u64, layout.align() as u64) {
                Reservation::Ready(address) => return address as *mut u8,
                Reservation::Grow { at, bytes } => {
                    if heap::map_more(at, bytes).is_err() {
                        return core::ptr::null_mut();
                    }
                    arena.grown(bytes);
                }
                Reservation::Exhausted => return core::ptr::null_mut(),
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(mut arena) = ARENA.try_lock() {
            arena.release(ptr as u64, layout.size() as u64);
        }
    }
}
