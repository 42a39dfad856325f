//! Entering and leaving the kernel: a stub per interrupt vector and the
//! `syscall` entry, which all build one [`Frame`] on the kernel stack and call
//! `kernel_entry` (system calls try the IPC fast path first); `frame_return` leaves through `iretq`, or `sysretq` for
//! threads that entered through `syscall`.

use super::Verdict;
use x86_64::registers::control::Cr2;

pub use crate::context::{Frame, SYSCALL_MARK, USER_CODE, USER_DATA};

core::arch::global_asm!(
    r#"
    .altmacro
    .macro interrupt_stub vector, has_error_code
    .balign 16
    interrupt_stub_\vector:
    .if \has_error_code == 0
        push 0
    .endif
        push \vector
        jmp interrupt_common
    .endm

    .section .text.entry, "ax"
    .set vector, 0
    .rept 256
        /* Vectors 8, 10-14, 17, 21, 29 and 30 push an error code. */
        .if vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30
            interrupt_stub %vector, 1
        .else
            interrupt_stub %vector, 0
        .endif
        .set vector, vector + 1
    .endr

    /* syscall: rcx = user rip, r11 = user rflags, interrupts off (FMASK).
     * Build a frame at the same place an interrupt from user mode would,
     * on the kernel stack (single CPU: the user rsp is parked in a static),
     * writing only what a system call has: the registers but rcx and r11
     * (which syscall clobbered), rip, rflags, rsp and the mark. syscall
     * cleared DF and AC through FMASK: no flags to fix.
     *
     * The callee-saved registers (rbx, rbp, r12-r15) stay in the CPU while
     * the IPC fast path runs (the C ABI keeps them). When it takes the
     * call it returns two contexts (rax, rdx): they are saved into the
     * first (the caller's) and loaded from the second (the next thread's)
     * right here. Otherwise they go into the frame and the slow path runs
     * (`kernel::entry::syscall_slow` fills in the rest of the frame). */
    .global syscall_entry
    syscall_entry:
        mov [rip + user_rsp_scratch], rsp
        mov rsp, [rip + kernel_stack_top]
        sub rsp, 176
        mov [rsp + 40], r10
        mov [rsp + 48], r9
        mov [rsp + 56], r8
        mov [rsp + 72], rdi
        mov [rsp + 80], rsi
        mov [rsp + 88], rdx
        mov [rsp + 112], rax
        mov qword ptr [rsp + 120], {syscall_mark}
        mov [rsp + 136], rcx
        mov [rsp + 152], r11
        mov r11, [rip + user_rsp_scratch]
        mov [rsp + 160], r11
        mov rdi, rsp
        call {syscall_fast}
        test rax, rax
        jz 2f
        mov [rax + 104], rbx
        mov [rax + 64], rbp
        mov [rax + 24], r12
        mov [rax + 16], r13
        mov [rax + 8], r14
        mov [rax + 0], r15
        mov rbx, [rdx + 104]
        mov rbp, [rdx + 64]
        mov r12, [rdx + 24]
        mov r13, [rdx + 16]
        mov r14, [rdx + 8]
        mov r15, [rdx + 0]
        /* The fast path made a sysretq frame with a canonical user rip. */
        mov r10, [rsp + 40]
        mov r9, [rsp + 48]
        mov r8, [rsp + 56]
        mov rdi, [rsp + 72]
        mov rsi, [rsp + 80]
        mov rdx, [rsp + 88]
        mov rax, [rsp + 112]
        mov rcx, [rsp + 136]
        mov r11, [rsp + 152]
        mov rsp, [rsp + 160]
        sysretq
    2:  mov [rsp + 0], r15
        mov [rsp + 8], r14
        mov [rsp + 16], r13
        mov [rsp + 24], r12
        mov [rsp + 64], rbp
        mov [rsp + 104], rbx
        mov rdi, rsp
        call {syscall_slow}
        /* Back to user mode: through sysretq when the frame is a system
         * call's (the kernel checked that rip is canonical user space),
         * loading only what sysretq and the registers need. */
        cmp qword ptr [rsp + 120], {syscall_mark}
        jne frame_return
        mov r15, [rsp + 0]
        mov r14, [rsp + 8]
        mov r13, [rsp + 16]
        mov r12, [rsp + 24]
        mov r10, [rsp + 40]
        mov r9, [rsp + 48]
        mov r8, [rsp + 56]
        mov rbp, [rsp + 64]
        mov rdi, [rsp + 72]
        mov rsi, [rsp + 80]
        mov rdx, [rsp + 88]
        mov rbx, [rsp + 104]
        mov rax, [rsp + 112]
        mov rcx, [rsp + 136]
        mov r11, [rsp + 152]
        mov rsp, [rsp + 160]
        sysretq
    interrupt_common:
        push rax
        push rbx
        push rcx
        push rdx
        push rsi
        push rdi
        push rbp
        push r8
        push r9
        push r10
        push r11
        push r12
        push r13
        push r14
        push r15
        /* Direction and alignment-check flags off: an interrupt gate keeps
         * AC, and with AC set SMAP would not guard the kernel against user
         * pages (syscall clears both through FMASK). */
        cld
        pushfq
        and qword ptr [rsp], ~0x40000
        popfq
        mov rdi, rsp
        call {handler}
    .global frame_return
    frame_return:
        pop r15
        pop r14
        pop r13
        pop r12
        pop r11
        pop r10
        pop r9
        pop r8
        pop rbp
        pop rdi
        pop rsi
        pop rdx
        pop rcx
        pop rbx
        pop rax
        cmp qword ptr [rsp], {syscall_mark}
        je 1f
        add rsp, 16
        iretq
    1:  /* sysret: the handler checked that rip is canonical user space. */
        add rsp, 16
        pop rcx
        add rsp, 8
        pop r11
        pop rsp
        sysretq

    .macro stub_address vector
        .quad interrupt_stub_\vector
    .endm
    .section .rodata.entry, "a"
    .balign 8
    .global interrupt_stub_table
    interrupt_stub_table:
    .set vector, 0
    .rept 256
        stub_address %vector
        .set vector, vector + 1
    .endr

    .section .bss.entry, "aw", @nobits
    .balign 8
    user_rsp_scratch: .quad 0
    .global kernel_stack_top
    kernel_stack_top: .quad 0
    "#,
    handler = sym kernel_entry_trampoline,
    syscall_fast = sym syscall_fast_trampoline,
    syscall_slow = sym syscall_slow_trampoline,
    syscall_mark = const SYSCALL_MARK,
);

unsafe extern "C" {
    static interrupt_stub_table: [u64; 256];
    static mut kernel_stack_top: u64;
    fn syscall_entry();
    fn frame_return();
}

/// The entry addresses of the 256 interrupt stubs, by vector.
pub fn stubs() -> &'static [u64; 256] {
    // SAFETY: the table is defined above, in read-only data, and never written.
    unsafe { &*core::ptr::addr_of!(interrupt_stub_table) }
}

/// The address the CPU jumps to on `syscall`.
pub fn syscall_entry_address() -> u64 {
    syscall_entry as *const () as u64
}

/// Sets the stack every entry from user space starts on.
pub fn set_kernel_stack(top: u64) {
    // SAFETY: written once at boot, before the first entry from user space.
    unsafe { *core::ptr::addr_of_mut!(kernel_stack_top) = top };
}

/// Leaves the kernel for good into the context at `frame` (which must lie at
/// the top of the kernel stack, where entries from user space put theirs).
pub fn enter_user(frame: *const Frame) -> ! {
    // SAFETY: `frame` holds a complete user context that `kernel_entry`
    // sanitised; `frame_return` pops it and leaves through iretq/sysretq.
    unsafe {
        core::arch::asm!("mov rsp, {}", "jmp {}", in(reg) frame, sym frame_return, options(noreturn));
    }
}

extern "C" fn kernel_entry_trampoline(frame: &mut Frame) {
    crate::kernel_entry(frame);
}

/// What `syscall_entry` does with the callee-saved registers after the
/// IPC fast path: save them into `save_to` and load them from `load_from`
/// (both null: the fast path declined). Returned in rax and rdx.
#[repr(C)]
pub struct CalleeSavedSwitch {
    /// The context of the thread that made the call.
    pub save_to: *mut Frame,
    /// The context of the thread that runs next.
    pub load_from: *const Frame,
}

extern "C" fn syscall_fast_trampoline(frame: &mut Frame) -> CalleeSavedSwitch {
    crate::syscall_fast(frame)
}

extern "C" fn syscall_slow_trampoline(frame: &mut Frame) {
    crate::syscall_slow(frame);
}

/// Mnemonic and name of each architectural exception vector.
const NAMES: [(&str, &str); 32] = [
    ("#DE", "divide error"),
    ("#DB", "debug"),
    ("NMI", "non-maskable interrupt"),
    ("#BP", "breakpoint"),
    ("#OF", "overflow"),
    ("#BR", "bound range exceeded"),
    ("#UD", "invalid opcode"),
    ("#NM", "device not available"),
    ("#DF", "double fault"),
    ("#CSO", "coprocessor segment overrun"),
    ("#TS", "invalid TSS"),
    ("#NP", "segment not present"),
    ("#SS", "stack-segment fault"),
    ("#GP", "general protection"),
    ("#PF", "page fault"),
    ("#15", "reserved"),
    ("#MF", "x87 floating-point error"),
    ("#AC", "alignment check"),
    ("#MC", "machine check"),
    ("#XM", "SIMD floating-point"),
    ("#VE", "virtualization"),
    ("#CP", "control protection"),
    ("#22", "reserved"),
    ("#23", "reserved"),
    ("#24", "reserved"),
    ("#25", "reserved"),
    ("#26", "reserved"),
    ("#27", "reserved"),
    ("#HV", "hypervisor injection"),
    ("#VC", "VMM communication"),
    ("#SX", "security"),
    ("#31", "reserved"),
];

/// Reports an exception the kernel itself raised and stops the machine:
/// every such exception is a kernel bug. Never a silent triple fault.
pub fn kernel_exception(frame: &Frame) -> ! {
    let (mnemonic, name) = NAMES
        .get(frame.vector as usize)
        .copied()
        .unwrap_or(("#??", "unknown"));
    crate::kprintln!(
        "KERNEL EXCEPTION {mnemonic} ({name}, vector {}) in kernel mode",
        frame.vector
    );
    crate::kprintln!(
        "  error code {:#x}  RIP {:#018x}  CR2 {:#x}  RSP {:#018x}",
        frame.error_code,
        frame.rip,
        Cr2::read_raw(),
        frame.rsp
    );
    crate::kprintln!(
        "  RAX {:#x} RBX {:#x} RCX {:#x} RDX {:#x} RSI {:#x} RDI {:#x} RBP {:#x}",
        frame.rax,
        frame.rbx,
        frame.rcx,
        frame.rdx,
        frame.rsi,
        frame.rdi,
        frame.rbp
    );
    crate::kprintln!("kernel stopped");
    super::exit(Verdict::Failure)
}

/// The faulting address of the last page fault.
pub fn fault_address() -> u64 {
    Cr2::read_raw()
}
