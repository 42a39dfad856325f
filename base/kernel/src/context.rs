//! A thread's saved registers ([`Frame`]): the layout the entry stubs in
//! `arch::entry` push, and the rules for making one safe to return to user
//! mode. Plain data, so the kernel's logic that reads and writes contexts is
//! tested on the host.

#![forbid(unsafe_code)]

/// The `vector` value that marks an entry through `syscall`; a context with
/// this mark may return through `sysretq`.
pub const SYSCALL_MARK: u64 = 0x100;

/// The registers as the entry stubs leave them on the stack, lowest address
/// first; also the saved context of every thread that is not running.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Frame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// User code segment selector (GDT entry 4, RPL 3).
pub const USER_CODE: u64 = 0x23;
/// User data segment selector (GDT entry 3, RPL 3).
pub const USER_DATA: u64 = 0x1B;
/// RFLAGS bits user space may hold: arithmetic flags, TF, DF, AC, ID.
const USER_RFLAGS: u64 = 0xDD5 | (1 << 18) | (1 << 21);
/// Interrupts on, reserved bit 1 set.
const RFLAGS_BASE: u64 = 0x202;

impl Frame {
    /// A fresh user context: entered at `ip` with `sp`, `rdi` = `argument`.
    pub fn user(ip: u64, sp: u64, argument: u64) -> Frame {
        Frame {
            rip: ip,
            rsp: sp,
            rdi: argument,
            cs: USER_CODE,
            ss: USER_DATA,
            rflags: RFLAGS_BASE,
            ..Frame::default()
        }
    }

    /// Saves into `context` what a thread that entered through `syscall`
    /// keeps across it, except the callee-saved registers (see
    /// [`Frame::save_callee_saved`]): its stack, return address and flags.
    /// The other registers are the call's results (the kernel writes them
    /// before the thread runs again) or clobbered by `syscall` itself
    /// (`rcx`, `r11`), so the IPC fast path leaves them.
    #[inline(always)]
    pub fn save_syscall_return(&self, context: &mut Frame) {
        context.rip = self.rip;
        context.rsp = self.rsp;
        context.rflags = self.rflags;
        context.vector = SYSCALL_MARK;
    }

    /// Saves this frame's callee-saved registers (`rbx`, `rbp`, `r12`-`r15`)
    /// into `context`. On the target the syscall entry stub does this from
    /// the CPU's registers after the IPC fast path (they are never written
    /// to the entry frame there); the host tests do it here.
    #[inline(always)]
    pub fn save_callee_saved(&self, context: &mut Frame) {
        context.rbx = self.rbx;
        context.rbp = self.rbp;
        context.r12 = self.r12;
        context.r13 = self.r13;
        context.r14 = self.r14;
        context.r15 = self.r15;
    }

    /// Loads the callee-saved registers of `context` into this frame (the
    /// counterpart of [`Frame::save_callee_saved`]).
    #[inline(always)]
    pub fn load_callee_saved(&mut self, context: &Frame) {
        self.rbx = context.rbx;
        self.rbp = context.rbp;
        self.r12 = context.r12;
        self.r13 = context.r13;
        self.r14 = context.r14;
        self.r15 = context.r15;
    }

    /// Turns this entry frame of a thread that entered through `syscall`
    /// into the return of another thread blocked in an IPC system call,
    /// whose saved `context` (see [`Frame::save_syscall_return`]) returns
    /// through `sysretq` to a canonical address (the IPC fast path checked
    /// both): its stack, return address and flags, and the message as
    /// results — `rax` 0, `rdi` the badge, `rsi` the `MsgInfo`, and the
    /// four message words, which stay where the sender put them (`rdx`,
    /// `r10`, `r8`, `r9`). The callee-saved registers come from `context`
    /// too (see [`Frame::load_callee_saved`]); `sysretq` loads `rcx` and
    /// `r11` from `rip` and `rflags`, so nothing else of the sender
    /// reaches the receiver.
    #[inline(always)]
    pub fn resume_from_syscall(&mut self, context: &Frame, badge: u64, info: u64) {
        self.rip = context.rip;
        self.rsp = context.rsp;
        self.rflags = (context.rflags & USER_RFLAGS) | RFLAGS_BASE;
        self.vector = SYSCALL_MARK;
        self.rax = 0;
        self.rdi = badge;
        self.rsi = info;
    }

    /// Sets the result registers of an IPC receive or reply.
    #[inline]
    pub fn set_message(&mut self, badge: u64, info: u64, words: [u64; 4]) {
        self.rax = 0;
        self.rdi = badge;
        self.rsi = info;
        [self.rdx, self.r10, self.r8, self.r9] = words;
    }

    /// Whether the entry came from user mode.
    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }

    /// Makes the context safe to return to: user selectors, no IOPL or other
    /// privileged flags, interrupts on, and `sysretq` only for a canonical
    /// user rip with dead rcx/r11 (entered through `syscall`).
    #[inline]
    pub fn sanitize_for_user(&mut self) {
        self.cs = USER_CODE;
        self.ss = USER_DATA;
        self.rflags = (self.rflags & USER_RFLAGS) | RFLAGS_BASE;
        if self.vector == SYSCALL_MARK && self.rip >= arbor_abi::USER_END {
            self.vector = 0;
        }
    }
}
