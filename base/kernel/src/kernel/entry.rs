//! The target's way into the kernel: [`with_kernel`], the one place that
//! hands out the kernel state, and [`kernel_entry`], which every system
//! call, exception and interrupt reaches.

use super::object::Kernel;
use super::syscall;
use crate::arch::entry::{Frame, SYSCALL_MARK, fault_address, kernel_exception};
use crate::arch::interrupts::{self, IRQ_BASE_VECTOR, IRQ_LINES, SPURIOUS_VECTOR, TIMER_VECTOR};
use core::sync::atomic::{AtomicBool, Ordering};

/// Where the kernel keeps its state; set once at boot.
static mut KERNEL: Option<Kernel> = None;
/// Whether a `with_kernel` closure is running.
static IN_KERNEL: AtomicBool = AtomicBool::new(false);

/// Installs the kernel state (once, at boot, before any entry).
pub fn install(kernel: Kernel) {
    if IN_KERNEL.load(Ordering::Relaxed) {
        stop("kernel state installed while in use");
    }
    // SAFETY: nothing borrows `KERNEL` now (checked: no `with_kernel` runs),
    // and one CPU runs the kernel, so this write races with nothing.
    unsafe { *core::ptr::addr_of_mut!(KERNEL) = Some(kernel) };
}

/// Runs `f` with exclusive access to the kernel state: the only way to it
/// on the target (as Hubris's `with_task_table`). Calls do not nest: an
/// entry that arrived while another held the state (which the kernel's
/// interrupts-off design rules out) stops the machine with a message
/// instead of creating a second `&mut Kernel`.
pub fn with_kernel<R>(f: impl FnOnce(&mut Kernel) -> R) -> R {
    if IN_KERNEL.swap(true, Ordering::Acquire) {
        stop("kernel state entered twice");
    }
    // SAFETY: `IN_KERNEL` was false, so no other reference to `KERNEL`
    // exists (every reference is made here and dies with `f`); one CPU.
    let kernel = unsafe { (*core::ptr::addr_of_mut!(KERNEL)).as_mut() };
    let Some(kernel) = kernel else {
        stop("kernel state used before it was installed")
    };
    let result = f(kernel);
    IN_KERNEL.store(false, Ordering::Release);
    result
}

#[cold]
fn stop(why: &str) -> ! {
    crate::kprintln!("KERNEL BUG: {why}");
    crate::arch::exit(crate::arch::Verdict::Failure)
}

/// Every entry into the kernel — system call, exception, interrupt — lands
/// here with the interrupted context in `frame`, and leaves by returning
/// with the context of the thread to run next in `frame`.
pub fn kernel_entry(frame: &mut Frame) {
    // Register-only Call and ReplyRecv to a waiting partner, before
    // anything else (`fastpath` says when it declines).
    if frame.vector == SYSCALL_MARK && with_kernel(|kernel| kernel.ipc_fastpath(frame)) {
        return;
    }
    let irq_line = frame
        .vector
        .checked_sub(IRQ_BASE_VECTOR)
        .filter(|&line| line < u64::from(IRQ_LINES))
        .map(|line| line as u8);
    if !frame.from_user() {
        // The kernel only takes interrupts while idle (outside
        // `with_kernel`); exceptions are bugs.
        match frame.vector {
            // A single-step trap a user armed (TF) right before `syscall`
            // may be delivered at the first kernel instruction, on the #DB
            // IST stack. The kernel never single-steps itself: ignore it.
            1 => {}
            vector if vector < 32 => kernel_exception(frame),
            SPURIOUS_VECTOR => {}
            TIMER_VECTOR => {
                with_kernel(|kernel| kernel.expire_timeouts());
                interrupts::end_of_interrupt();
            }
            _ => {
                if let Some(line) = irq_line {
                    with_kernel(|kernel| kernel.interrupt(line));
                }
                interrupts::end_of_interrupt();
            }
        }
        return;
    }
    repair_syscall_in_user_mode(frame);
    let ready = with_kernel(|kernel| {
        if let Some(thread) = kernel.current_thread_mut() {
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
        kernel.next_context(frame)
    });
    if !ready {
        resume(frame);
    }
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
        static TOLD: AtomicBool = AtomicBool::new(false);
        if !TOLD.swap(true, Ordering::Relaxed) {
            crate::kprintln!("{}", super::SLOW_SYSCALL_NOTICE);
        }
    }
}

/// Puts the next thread's context into `frame`, idling (outside
/// `with_kernel`, with interrupts on) until there is one. The TSC ticks of
/// each halt (including the interrupt that ends it) go to the kernel's idle
/// count (`info::IDLE_TICKS`), so that busy time can be told from waiting.
pub fn resume(frame: &mut Frame) {
    let mut idle = 0;
    while !with_kernel(|kernel| {
        kernel.idled(idle);
        kernel.next_context(frame)
    }) {
        let halted = crate::arch::tsc();
        interrupts::idle_wait();
        idle = crate::arch::tsc().wrapping_sub(halted);
    }
}

impl Kernel {
    /// IOAPIC input `line` fired: mask it until every Irq object on it has
    /// acknowledged, signal their notifications (`syscall::devices`).
    pub fn interrupt(&mut self, line: u8) {
        interrupts::mask_line(line);
        self.line_fired(line);
    }
}
