//! One safe wrapper per system call. Registers follow `arbor_abi`'s calling
//! convention; every wrapper returns the kernel's verdict as
//! `Result<_, abi::Error>`.
//!
//! The wrappers are safe because the kernel checks every argument: a bad
//! slot, address or size is an error value, never undefined behaviour here.
//! The kernel writes user memory only in the calling thread's IPC buffer,
//! which Rust code reaches only through [`crate::ipc`]. What a caller can do
//! to itself — unmap its own stack, destroy its own thread — ends in a fault
//! or the thread's end, both of which the parent sees.

use crate::abi::{CapSlot, Error, MsgInfo, ObjectKind, Rights, Syscall};

/// What a receive returns besides the message: the badge of the capability
/// the sender used (0 for an unbadged one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Badge(pub u64);

/// A message's register part: label, payload length, capability count and
/// the [`crate::abi::MSG_WORDS`] words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Message {
    /// Label, payload length and capability count.
    pub info: MsgInfo,
    /// The register words.
    pub words: [u64; 4],
}

impl Message {
    /// A message with a label and words, no payload, no capabilities.
    pub const fn new(label: u32, words: [u64; 4]) -> Self {
        Message {
            info: MsgInfo::new(label, 0, 0),
            words,
        }
    }

    /// The message's label.
    pub const fn label(&self) -> u32 {
        self.info.label()
    }
}

/// The registers a system call returns: `rax` and the six result registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawResult {
    /// The error code (`0` = success).
    pub rax: u64,
    /// `rdi, rsi, rdx, r10, r8, r9` after the call.
    pub results: [u64; 6],
}

/// Issues system call `number` with arguments in `rdi, rsi, rdx, r10, r8, r9`.
///
/// This is the edge every wrapper below goes through; it is public for test
/// components that must send the kernel arbitrary (also invalid) requests.
#[inline(always)]
pub fn raw_syscall(number: u64, args: [u64; 6]) -> RawResult {
    let [mut a0, mut a1, mut a2, mut a3, mut a4, mut a5] = args;
    let mut rax = number;
    // SAFETY: `syscall` transfers to the kernel, which validates every
    // argument and returns with only the documented registers changed
    // (`rax`, the six result registers, and `rcx`/`r11`, declared clobbered
    // here). It writes user memory only in this thread's IPC buffer, which
    // Rust code never holds a reference into across this call (see
    // `crate::ipc`); the asm block is not `nomem`, so the compiler assumes
    // memory may change. `syscall` does not touch the user stack (`nostack`).
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") rax,
            inlateout("rdi") a0,
            inlateout("rsi") a1,
            inlateout("rdx") a2,
            inlateout("r10") a3,
            inlateout("r8") a4,
            inlateout("r9") a5,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    RawResult {
        rax,
        results: [a0, a1, a2, a3, a4, a5],
    }
}

#[inline(always)]
fn syscall(number: Syscall, args: [u64; 6]) -> Result<[u64; 6], Error> {
    let result = raw_syscall(number as u64, args);
    Error::check(result.rax).map(|()| result.results)
}

#[inline(always)]
fn slot(cap: CapSlot) -> u64 {
    u64::from(cap.0)
}

#[inline(always)]
fn message_of(results: [u64; 6]) -> Message {
    Message {
        info: MsgInfo(results[1]),
        words: [results[2], results[3], results[4], results[5]],
    }
}

/// Sends `message` on an endpoint (WRITE) and waits for the reply.
#[inline(always)]
pub fn call(endpoint: CapSlot, message: Message) -> Result<Message, Error> {
    let [w0, w1, w2, w3] = message.words;
    let results = syscall(
        Syscall::Call,
        [slot(endpoint), message.info.0, w0, w1, w2, w3],
    )?;
    Ok(message_of(results))
}

/// Replies `reply` to the last caller (if any), then receives on `endpoint` (READ).
#[inline(always)]
pub fn reply_recv(endpoint: CapSlot, reply: Message) -> Result<(Badge, Message), Error> {
    let [w0, w1, w2, w3] = reply.words;
    let results = syscall(
        Syscall::ReplyRecv,
        [slot(endpoint), reply.info.0, w0, w1, w2, w3],
    )?;
    Ok((Badge(results[0]), message_of(results)))
}

/// Sends `message` on an endpoint (WRITE); blocks until a receiver takes it.
pub fn send(endpoint: CapSlot, message: Message) -> Result<(), Error> {
    let [w0, w1, w2, w3] = message.words;
    syscall(
        Syscall::Send,
        [slot(endpoint), message.info.0, w0, w1, w2, w3],
    )
    .map(drop)
}

/// Receives a message on an endpoint (READ).
pub fn recv(endpoint: CapSlot) -> Result<(Badge, Message), Error> {
    let results = syscall(Syscall::Recv, [slot(endpoint), 0, 0, 0, 0, 0])?;
    Ok((Badge(results[0]), message_of(results)))
}

/// ORs the capability's badge into a notification's word (WRITE).
pub fn signal(notification: CapSlot) -> Result<(), Error> {
    syscall(Syscall::Signal, [slot(notification), 0, 0, 0, 0, 0]).map(drop)
}

/// Waits until a notification's word is non-zero (READ); returns and clears it.
pub fn wait(notification: CapSlot) -> Result<u64, Error> {
    wait_timeout(notification, 0)
}

/// Waits on a notification for at most `ms` milliseconds (0 = forever);
/// returns its bits, or 0 if the time ran out first.
pub fn wait_timeout(notification: CapSlot, ms: u64) -> Result<u64, Error> {
    syscall(Syscall::Wait, [slot(notification), ms, 0, 0, 0, 0]).map(|r| r[0])
}

/// Gives up the rest of the time slice.
pub fn yield_now() {
    // Yield has no failure a caller could act on.
    let _ = syscall(Syscall::Yield, [0; 6]);
}

/// Creates an object of `kind`, paid by `pays`, its capability in `dest`.
/// `argument`: a dataspace's size in bytes, or a thread's priority.
pub fn create(kind: ObjectKind, pays: CapSlot, dest: CapSlot, argument: u64) -> Result<(), Error> {
    syscall(
        Syscall::Create,
        [kind as u64, slot(pays), slot(dest), argument, 0, 0],
    )
    .map(drop)
}

/// Destroys the object (CONTROL); every capability to it stops working.
pub fn destroy(cap: CapSlot) -> Result<(), Error> {
    syscall(Syscall::Destroy, [slot(cap), 0, 0, 0, 0, 0]).map(drop)
}

/// Copies `source` into `dest` keeping only `rights`; `badge` (non-zero)
/// badges an unbadged endpoint or notification capability.
pub fn derive(source: CapSlot, dest: CapSlot, rights: Rights, badge: u64) -> Result<(), Error> {
    syscall(
        Syscall::Derive,
        [slot(source), slot(dest), u64::from(rights.0), badge, 0, 0],
    )
    .map(drop)
}

/// Empties a slot of the caller's table.
pub fn delete(cap: CapSlot) -> Result<(), Error> {
    syscall(Syscall::Delete, [slot(cap), 0, 0, 0, 0, 0]).map(drop)
}

/// Copies `source` (GRANT) into slot `dest` of the Pd `target` (CONTROL),
/// keeping only `rights`.
pub fn grant(target: CapSlot, source: CapSlot, dest: CapSlot, rights: Rights) -> Result<(), Error> {
    syscall(
        Syscall::Grant,
        [
            slot(target),
            slot(source),
            slot(dest),
            u64::from(rights.0),
            0,
            0,
        ],
    )
    .map(drop)
}

/// Maps `size` bytes of `dataspace` from `offset` at `vaddr` in `pd` with
/// [`crate::abi::map`] `flags`.
pub fn map(
    pd: CapSlot,
    dataspace: CapSlot,
    offset: u64,
    vaddr: u64,
    size: u64,
    flags: u64,
) -> Result<(), Error> {
    syscall(
        Syscall::Map,
        [slot(pd), slot(dataspace), offset, vaddr, size, flags],
    )
    .map(drop)
}

/// Removes the mappings in `[vaddr, vaddr + size)` of `pd`.
pub fn unmap(pd: CapSlot, vaddr: u64, size: u64) -> Result<(), Error> {
    syscall(Syscall::Unmap, [slot(pd), vaddr, size, 0, 0, 0]).map(drop)
}

/// Moves `ram` bytes and `caps` capability slots of quota from `from` to `to`.
pub fn transfer_quota(from: CapSlot, to: CapSlot, ram: u64, caps: u64) -> Result<(), Error> {
    syscall(
        Syscall::TransferQuota,
        [slot(from), slot(to), ram, caps, 0, 0],
    )
    .map(drop)
}

/// Starts a thread at `ip` with stack `sp`, IPC buffer `ipc_buffer` and
/// `argument` in its `rdi`.
pub fn start_thread(
    thread: CapSlot,
    ip: u64,
    sp: u64,
    ipc_buffer: u64,
    argument: u64,
) -> Result<(), Error> {
    syscall(
        Syscall::StartThread,
        [slot(thread), ip, sp, ipc_buffer, argument, 0],
    )
    .map(drop)
}

/// Binds a notification to a thread: its receives also return on a signal.
pub fn bind_notification(thread: CapSlot, notification: CapSlot) -> Result<(), Error> {
    syscall(
        Syscall::BindNotification,
        [slot(thread), slot(notification), 0, 0, 0, 0],
    )
    .map(drop)
}

/// Makes `endpoint` (its badge included) the place `pd`'s faults are reported.
pub fn set_fault_endpoint(pd: CapSlot, endpoint: CapSlot) -> Result<(), Error> {
    syscall(
        Syscall::SetFaultEndpoint,
        [slot(pd), slot(endpoint), 0, 0, 0, 0],
    )
    .map(drop)
}

/// Claims interrupt `line` (from the Platform capability) or adds a sharer
/// of it (from an Irq object of that line with CONTROL), bound to
/// `notification`.
pub fn create_irq(
    platform: CapSlot,
    pays: CapSlot,
    dest: CapSlot,
    line: u64,
    notification: CapSlot,
) -> Result<(), Error> {
    syscall(
        Syscall::CreateIrq,
        [
            slot(platform),
            slot(pays),
            slot(dest),
            line,
            slot(notification),
            0,
        ],
    )
    .map(drop)
}

/// Acknowledges an interrupt so that the line may fire again.
pub fn ack_irq(irq: CapSlot) -> Result<(), Error> {
    syscall(Syscall::AckIrq, [slot(irq), 0, 0, 0, 0, 0]).map(drop)
}

/// Creates an I/O port range capability for `count` ports from `first`.
pub fn create_io_ports(
    source: CapSlot,
    pays: CapSlot,
    dest: CapSlot,
    first: u64,
    count: u64,
) -> Result<(), Error> {
    syscall(
        Syscall::CreateIoPorts,
        [slot(source), slot(pays), slot(dest), first, count, 0],
    )
    .map(drop)
}

/// Lets `pd` use the ports of `ports`.
pub fn enable_io_ports(ports: CapSlot, pd: CapSlot) -> Result<(), Error> {
    syscall(Syscall::EnableIoPorts, [slot(ports), slot(pd), 0, 0, 0, 0]).map(drop)
}

/// Creates a dataspace over device memory at `phys`, `size` bytes.
pub fn create_device_dataspace(
    platform: CapSlot,
    pays: CapSlot,
    dest: CapSlot,
    phys: u64,
    size: u64,
) -> Result<(), Error> {
    syscall(
        Syscall::CreateDeviceDataspace,
        [slot(platform), slot(pays), slot(dest), phys, size, 0],
    )
    .map(drop)
}

/// Asks the kernel a [`crate::abi::info`] question; returns its two answers.
pub fn info(selector: u64, argument: u64) -> Result<(u64, u64), Error> {
    syscall(Syscall::Info, [selector, argument, 0, 0, 0, 0]).map(|r| (r[0], r[1]))
}

/// Writes the first `len` payload bytes of the IPC buffer to the console.
/// Most callers want [`crate::console`] instead.
pub fn console_write(console: CapSlot, len: usize) -> Result<(), Error> {
    syscall(
        Syscall::ConsoleWrite,
        [slot(console), len as u64, 0, 0, 0, 0],
    )
    .map(drop)
}
