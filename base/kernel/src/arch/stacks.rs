//! The kernel's stacks, each with an unmapped guard page right below it: an
//! overflow hits the guard and becomes a page fault, which (with no stack
//! left to push on) becomes a double fault on its own IST stack and a
//! `KERNEL EXCEPTION #DF` report — never silent corruption of whatever lay
//! below. `paging::AddressSpace::map_kernel_image` leaves [`guard_pages`]
//! unmapped.
//!
//! - the boot stack (`arch/boot.s`), which `start` runs on;
//! - the entry stack: every entry from user space (TSS RSP0, `syscall`);
//! - one IST stack each for #DF, NMI, #MC and #DB, the exceptions that must
//!   not trust the stack they interrupt.

const PAGE: usize = 4096;

/// A stack of `PAGES` pages above one guard page.
#[repr(C, align(4096))]
pub struct GuardedStack<const PAGES: usize> {
    guard: [u8; PAGE],
    stack: [[u8; PAGE]; PAGES],
}

impl<const PAGES: usize> GuardedStack<PAGES> {
    const ZERO: Self = GuardedStack {
        guard: [0; PAGE],
        stack: [[0; PAGE]; PAGES],
    };
}

/// Pages of the entry stack (64 KiB).
const ENTRY_PAGES: usize = 16;
/// Pages of each IST stack (16 KiB).
const IST_PAGES: usize = 4;

#[unsafe(link_section = ".bss.stacks")]
static mut ENTRY_STACK: GuardedStack<ENTRY_PAGES> = GuardedStack::ZERO;
#[unsafe(link_section = ".bss.stacks")]
static mut IST_STACKS: [GuardedStack<IST_PAGES>; IST_COUNT] = [GuardedStack::ZERO; IST_COUNT];

/// IST stacks: index + 1 is the IST slot.
pub const IST_COUNT: usize = 4;
/// IST slot of the double-fault handler.
pub const DOUBLE_FAULT_IST: u16 = 1;
/// IST slot of the NMI handler.
pub const NMI_IST: u16 = 2;
/// IST slot of the machine-check handler.
pub const MACHINE_CHECK_IST: u16 = 3;
/// IST slot of the debug-exception handler.
pub const DEBUG_IST: u16 = 4;

unsafe extern "C" {
    static boot_stack_guard: u8;
}

/// The top of the stack every entry from user space starts on.
pub fn entry_stack_top() -> u64 {
    core::ptr::addr_of!(ENTRY_STACK) as u64
        + core::mem::size_of::<GuardedStack<ENTRY_PAGES>>() as u64
}

/// The top of IST stack `slot` (1..=IST_COUNT).
pub fn ist_top(slot: u16) -> u64 {
    let index = usize::from(slot.clamp(1, IST_COUNT as u16) - 1);
    let base = core::ptr::addr_of!(IST_STACKS) as u64;
    let size = core::mem::size_of::<GuardedStack<IST_PAGES>>() as u64;
    base + (index as u64 + 1) * size
}

/// The virtual addresses of every guard page.
pub fn guard_pages() -> [u64; 2 + IST_COUNT] {
    // Only the address of the symbol defined in `boot.s` is taken.
    let boot = core::ptr::addr_of!(boot_stack_guard) as u64;
    let ist_base = core::ptr::addr_of!(IST_STACKS) as u64;
    let ist_size = core::mem::size_of::<GuardedStack<IST_PAGES>>() as u64;
    let mut pages = [0; 2 + IST_COUNT];
    pages[0] = boot;
    pages[1] = core::ptr::addr_of!(ENTRY_STACK) as u64;
    for (index, page) in pages[2..].iter_mut().enumerate() {
        *page = ist_base + index as u64 * ist_size;
    }
    pages
}
