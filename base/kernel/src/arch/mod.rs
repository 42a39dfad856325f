//! Everything that touches x86_64 hardware directly; each `unsafe` block
//! says why it holds. The kernel's other unsafe code (boot, the object
//! store's frame casts, the kernel-state static) is listed in `lib.rs`.

pub mod console;
pub mod cpu;
pub mod entry;
pub mod interrupts;
pub mod paging;
pub mod stacks;

use x86_64::instructions::port::Port;

/// The port of QEMU's `isa-debug-exit` device (`cargo arbor` adds it).
const DEBUG_EXIT_PORT: u16 = 0xF4;

/// What the kernel tells the host when it stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Verdict {
    /// QEMU exits with status 33, which the host tool reports as success.
    Success = 0x10,
    /// QEMU exits with status 35, which the host tool reports as failure.
    Failure = 0x11,
}

/// Ends the run: tells QEMU the verdict, then halts (on a machine without the
/// debug-exit device the write does nothing and the CPU simply stops).
pub fn exit(verdict: Verdict) -> ! {
    // SAFETY: writing to the debug-exit port has no effect on memory; on QEMU
    // it ends the process, elsewhere the port is unused.
    unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(verdict as u32) };
    halt_forever()
}

/// The time-stamp counter.
pub fn tsc() -> u64 {
    // SAFETY: rdtsc has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Stops the CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
