//! The target's way into the kernel: [`with_kernel`], the one place that
//! hands out the kernel state, and [`kernel_entry`], which every system
//! call, exception and interrupt reaches.

use super::object::Kernel;
use super::syscall;
use crate::arch::entry::{
    CalleeSavedSwitch, Frame, SYSCALL_MARK, USER_CODE, USER_DATA, fault_address, kernel_exception,
};
use crate::arch::interrupts::{self, IRQ_BASE_VECTOR, IRQ_LINES, SPURIOUS_VECTOR, TIMER_VECTOR};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

/// Where the kernel keeps its state; written once at boot.
static mut KERNEL: MaybeUninit<Kernel> = MaybeUninit::uninit();
/// Whether the kernel state is out of reach: a `with_kernel` closure is
/// running, or the state is not installed yet (so one flag, checked on
/// every entry, covers both).
static BUSY: AtomicBool = AtomicBool::new(true);
/// Whether `install` ran.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the kernel state (once, at boot, before any entry).
pub fn install(kernel: Kernel) {
    if INSTALLED.swap(true, Ordering::Relaxed) {
        stop("kernel state installed twice");
    }
    // SAFETY: `BUSY` is still set from the start, so no `with_kernel` runs
    // or can run and nothing borrows `KERNEL`; one CPU runs the kernel, so
    // this write races with nothing.
    unsafe { (*core::ptr::addr_of_mut!(KERNEL)).write(kernel) };
    BUSY.store(false, Ordering::Release);
}

/// Runs `f` with exclusive access to the kernel state: the only way to it
/// on the target (as Hubris's `with_task_table`). Calls do not nest: an
/// entry that arrived while another held the state (which the kernel's
/// interrupts-off design rules out), or before the state was installed,
/// stops the machine with a message instead of creating a second (or a
/// dangling) `&mut Kernel`.
#[inline(always)]
pub fn with_kernel<R>(f: impl FnOnce(&mut Kernel) -> R) -> R {
    if BUSY.swap(true, Ordering::Acquire) {
        stop("kernel state entered twice, or before it was installed");
    }
    // SAFETY: `BUSY` was clear, so `install` wrote the state and no other
    // reference to it exists (every reference is made here and dies with
    // `f`); one CPU.
    let kernel = unsafe { (*core::ptr::addr_of_mut!(KERNEL)).assume_init_mut() };
    let result = f(kernel);
    BUSY.store(false, Ordering::Release);
    result
}

#[cold]
fn stop(why: &str) -> ! {
    crate::kprintln!("KERNEL BUG: {why}");
    crate::arch::exit(crate::arch::Verdict::Failure)
}

/// Every `syscall` lands here first: register-only Call and ReplyRecv to
/// a waiting partner take the IPC fast path (`fastpath` says when it
/// declines). The entry stub moves the callee-saved registers between the
/// CPU and the two contexts returned (see `CalleeSavedSwitch`); the
/// pointers outlive `with_kernel`, but nothing runs between this return
/// and the stub's use of them (one CPU, interrupts off), and they point at
/// the `context` of two live threads in the kernel's own memory.
#[inline(always)]
pub fn syscall_fast(frame: &mut Frame) -> CalleeSavedSwitch {
    with_kernel(|kernel| match kernel.ipc_fast_switch(frame) {
        Some((save_to, load_from)) => CalleeSavedSwitch {
            save_to: core::ptr::from_mut(save_to),
            load_from: core::ptr::from_ref(load_from),
        },
        None => CalleeSavedSwitch {
            save_to: core::ptr::null_mut(),
            load_from: core::ptr::null(),
        },
    })
}

/// A system call the fast path declined, with its whole frame.
pub fn syscall_slow(frame: &mut Frame) {
    // What the entry stub left out: the frame of an interrupt from user
    // mode, with rcx and r11 as `syscall` set them.
    frame.rcx = frame.rip;
    frame.r11 = frame.rflags;
    frame.error_code = 0;
    frame.cs = USER_CODE;
    frame.ss = USER_DATA;
    kernel_entry(frame);
}

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
