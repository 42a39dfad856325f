//! The kernel proper: objects, capability spaces, scheduling, IPC and the
//! system calls, on top of the host-tested pieces (`frames`, `quota`, `caps`,
//! `queue`) and the hardware layer (`arch`).
//!
//! The kernel runs on one CPU with interrupts off; every entry from user
//! space runs to completion on the one kernel stack and leaves by restoring
//! whichever thread is to run next. There is therefore never more than one
//! path through this code at a time.
//!
//! ## How long a system call keeps interrupts off
//! No operation's work depends on a size a caller merely claims; each is
//! bounded by what exists. Figures measured under QEMU TCG (128 MiB machine,
//! scenario `kernel_holes`; hardware is one to two orders faster):
//! - `Unmap` (and the mapping walks of dataspace destruction and of
//!   mapping-record compaction, `space::for_each_leaf`) skips absent page
//!   tables: at most 512 entries per page table the Pd owns. The whole user
//!   half (2^35 pages, once ~110 s) unmaps in 0.3 ms for a Pd with 16
//!   mappings; 1,000 sparse page tables take 7.7 ms (7.7 us per table). A
//!   table costs 4 KiB of quota, so the bound is about 2 ms per MiB of
//!   quota a Pd has turned into page tables.
//! - A dataspace has at most 96 mapping records (16 per Pd), each walked as
//!   above: destroying one mapped 16 times over 1 MiB took 0.26 ms.
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
pub mod fault;
pub mod ipc;
pub mod loader;
pub mod object;
pub mod sched;
pub mod space;
pub mod syscall;

pub use object::Kernel;

use crate::arch::entry::{Frame, SYSCALL_MARK, fault_address, kernel_exception};
use crate::arch::interrupts::{self, IRQ_BASE_VECTOR, IRQ_LINES, SPURIOUS_VECTOR, TIMER_VECTOR};
use object::{Object, kernel};

/// Every entry into the kernel — system call, exception, interrupt — lands
/// here with the interrupted context in `frame`, and leaves by returning
/// with the context of the thread to run next in `frame`.
pub fn kernel_entry(frame: &mut Frame) {
    let irq_line = frame
        .vector
        .checked_sub(IRQ_BASE_VECTOR)
        .filter(|&line| line < u64::from(IRQ_LINES))
        .map(|line| line as u8);
    if !frame.from_user() {
        // The kernel only takes interrupts while idle; exceptions are bugs.
        match frame.vector {
            // A single-step trap a user armed (TF) right before `syscall`
            // may be delivered at the first kernel instruction, on the #DB
            // IST stack. The kernel never single-steps itself: ignore it.
            1 => {}
            vector if vector < 32 => kernel_exception(frame),
            SPURIOUS_VECTOR => {}
            TIMER_VECTOR => {
                kernel().expire_timeouts();
                interrupts::end_of_interrupt();
            }
            _ => {
                if let Some(line) = irq_line {
                    kernel().interrupt(line);
                }
                interrupts::end_of_interrupt();
            }
        }
        return;
    }
    repair_syscall_in_user_mode(frame);
    {
        let kernel = kernel();
        if let Some((_, thread)) = kernel.current_thread() {
            thread.context = *frame;
        }
        match frame.vector {
            SYSCALL_MARK => syscall::dispatch(kernel),
            vector if vector < 32 => kernel.user_fault(vector, frame.error_code, fault_address()),
            SPURIOUS_VECTOR => {}
            TIMER_VECTOR => {
                kernel.expire_timeouts();
                kernel.reschedule = true;
                interrupts::end_of_interrupt();
            }
            _ => {
                if let Some(line) = irq_line {
                    kernel.interrupt(line);
                }
                interrupts::end_of_interrupt();
            }
        }
    }
    resume(frame);
}

/// Measured on the nested KVM (AMD EPYC) of the project's machines:
/// `syscall` jumps to LSTAR but leaves the CPU in ring 3, so the entry's first
/// instruction takes a user-mode instruction-fetch page fault (error 0x15) with
/// the registers exactly as `syscall` left them (rcx = return address, r11 =
/// flags). Such a fault is the system call the thread asked for: turn it back
/// into one. A thread that jumps to the entry address on purpose gains
/// nothing by it — it gets the system call it could have made directly.
/// Each repaired call costs about 1.5 ms there (the host emulates the
/// instruction), so benchmarks under that KVM measure the host, not Arbor;
/// `int 0x80` is no way out on those machines (it raises #UD there).
fn repair_syscall_in_user_mode(frame: &mut Frame) {
    const PAGE_FAULT: u64 = 14;
    const USER_INSTRUCTION_FETCH: u64 = 0x15;
    if frame.vector == PAGE_FAULT
        && frame.error_code == USER_INSTRUCTION_FETCH
        && frame.rip == crate::arch::entry::syscall_entry_address()
        && frame.rcx < arbor_abi::USER_END
    {
        frame.rip = frame.rcx;
        frame.rflags = frame.r11;
        frame.vector = SYSCALL_MARK;
        frame.error_code = 0;
        static TOLD: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
        if !TOLD.swap(true, core::sync::atomic::Ordering::Relaxed) {
            crate::kprintln!(
                "kernel: this machine's syscall stays in ring 3; every system call is repaired from its fault (slow)"
            );
        }
    }
}

/// Puts the next thread's context into `frame`, idling until there is one.
pub fn resume(frame: &mut Frame) {
    loop {
        {
            let kernel = kernel();
            if let Some(next) = kernel.choose_next()
                && let Some(thread) = kernel.thread(next)
            {
                *frame = thread.context;
                frame.sanitize_for_user();
                let pd = thread.pd;
                kernel.switch_to(pd);
                return;
            }
        }
        interrupts::idle_wait();
    }
}

impl Kernel {
    /// IOAPIC input `line` fired: mask it until acknowledged, signal its notification.
    pub fn interrupt(&mut self, line: u8) {
        interrupts::mask_line(line);
        let irq = self.irqs.get(usize::from(line)).copied().flatten();
        if let Some(Object::Irq(irq)) = irq.and_then(|r| self.get(r)) {
            let (notification, badge) = (irq.notification, irq.badge);
            self.signal_object(notification, badge);
        }
    }
}
