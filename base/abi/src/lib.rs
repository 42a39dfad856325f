//! The contract between the Arbor kernel and user space: system-call numbers
//! and register conventions, capability rights, the message layout and the
//! error codes. Both sides compile this crate; nothing here executes anything.
//!
//! # Calling convention
//! A system call is the `syscall` instruction with the number in `rax` and up
//! to six arguments in `rdi, rsi, rdx, r10, r8, r9` (`r10` instead of `rcx`,
//! which `syscall` overwrites). On return `rax` holds an [`Error`] code
//! (`0` = success) and `rdi, rsi, rdx, r10, r8, r9` hold results. `rcx` and
//! `r11` are clobbered; every other register is preserved.
//!
//! # IPC
//! A message is a [`MsgInfo`] (label, payload length, capability count) plus
//! [`MSG_WORDS`] words, all in registers: `rsi` = info, `rdx, r10, r8, r9` =
//! words. A payload of up to [`PAYLOAD_MAX`] bytes travels in the sender's
//! [`IpcBuffer`] and arrives in the receiver's; up to [`MAX_TRANSFER_CAPS`]
//! capabilities named in the sender's buffer are copied into the slots the
//! receiver offered in its buffer. A receive returns the badge of the
//! capability the sender used in `rdi`.
//!
//! # Capabilities
//! Every object is named by a [`CapSlot`] in the calling Pd's capability
//! table. A capability carries [`Rights`] and, for endpoints and
//! notifications, a badge. Deriving can only drop rights. Destroying an
//! object makes every capability to it fail with [`Error::InvalidCapability`].
#![no_std]
#![forbid(unsafe_code)]

pub mod syscall;

pub use syscall::Syscall;

use core::fmt;

/// An index into a Pd's capability table. Slot 0 is always empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct CapSlot(pub u32);

impl CapSlot {
    /// The empty slot; never names a capability.
    pub const NULL: CapSlot = CapSlot(0);
}

/// Slots every Pd created by the kernel or by user space starts with,
/// by convention of whoever creates it (the kernel for core, a parent for
/// its children).
pub mod slot {
    use super::CapSlot;
    /// The Pd itself (rights: all).
    pub const OWN_PD: CapSlot = CapSlot(1);
    /// The Pd's first thread.
    pub const OWN_THREAD: CapSlot = CapSlot(2);
    /// An endpoint to the parent (components) — or, for core, nothing.
    pub const PARENT: CapSlot = CapSlot(3);
    /// The kernel console, for components given debug output (core, tests).
    pub const CONSOLE: CapSlot = CapSlot(4);
    /// Core only: a read-only dataspace holding the boot archive.
    pub const BOOT_ARCHIVE: CapSlot = CapSlot(5);
    /// Core only: permission to claim device memory, IRQ lines and I/O ports.
    pub const PLATFORM: CapSlot = CapSlot(6);
    /// The first slot free for the component's own use.
    pub const FIRST_FREE: CapSlot = CapSlot(16);
}

/// What a capability permits. Deriving a capability can only remove bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct Rights(pub u8);

impl Rights {
    /// Receive on an endpoint, wait on a notification, map a dataspace readable.
    pub const READ: Rights = Rights(1 << 0);
    /// Send/call on an endpoint, signal a notification, map a dataspace writable.
    pub const WRITE: Rights = Rights(1 << 1);
    /// Map a dataspace executable.
    pub const EXECUTE: Rights = Rights(1 << 2);
    /// Control the object: create objects in / map into / transfer quota from a
    /// Pd, start or stop a thread, destroy the object.
    pub const CONTROL: Rights = Rights(1 << 3);
    /// Pass the capability on in an IPC message.
    pub const GRANT: Rights = Rights(1 << 4);
    /// Learn a dataspace's physical address (for device DMA).
    pub const DMA: Rights = Rights(1 << 5);
    /// Every right.
    pub const ALL: Rights = Rights(0x3F);
    /// No right.
    pub const NONE: Rights = Rights(0);

    /// Whether every right in `other` is also in `self`.
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// The rights in both.
    pub const fn intersect(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }

    /// The rights in either.
    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }
}

/// The kinds of kernel object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ObjectKind {
    /// Protection domain: address space, capability table, quotas.
    Pd = 1,
    /// A thread of execution in a Pd.
    Thread = 2,
    /// A synchronous IPC rendezvous point.
    Endpoint = 3,
    /// A word of signal bits.
    Notification = 4,
    /// Physically contiguous frames, mappable into Pds.
    Dataspace = 5,
    /// A hardware interrupt line bound to a notification.
    Irq = 6,
    /// A range of I/O ports.
    IoPorts = 7,
    /// The kernel console (debug output).
    Console = 8,
    /// Core's permission to create device dataspaces, Irqs and IoPorts.
    Platform = 9,
}

impl ObjectKind {
    /// The kind with this number, if any.
    pub fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            1 => Self::Pd,
            2 => Self::Thread,
            3 => Self::Endpoint,
            4 => Self::Notification,
            5 => Self::Dataspace,
            6 => Self::Irq,
            7 => Self::IoPorts,
            8 => Self::Console,
            9 => Self::Platform,
            _ => return None,
        })
    }
}

/// Every way a system call can fail. `rax` carries the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Error {
    /// `rax` named no system call.
    InvalidSyscall = 1,
    /// The slot is out of range, empty, or names a destroyed object.
    InvalidCapability = 2,
    /// The capability names an object of another kind.
    WrongObjectKind = 3,
    /// The capability lacks a right the operation needs.
    MissingRight = 4,
    /// The Pd that pays has too little RAM quota left.
    RamQuotaExceeded = 5,
    /// The Pd has no capability slots left.
    CapQuotaExceeded = 6,
    /// An argument is out of range (a size, count, kind or priority).
    InvalidArgument = 7,
    /// An address is unaligned, in the kernel half, non-canonical or unmapped.
    BadAddress = 8,
    /// Payload or capability count over the limit.
    MessageTooLarge = 9,
    /// The destination slot already holds a capability.
    SlotOccupied = 10,
    /// A reply with no caller waiting for it.
    NoReplyTarget = 11,
    /// The object (or the peer of a blocked operation) was destroyed meanwhile.
    ObjectDestroyed = 12,
    /// The machine has no free memory for the request although quota remains.
    OutOfMemory = 13,
    /// The resource is already claimed (an IRQ line, a device range).
    AlreadyClaimed = 14,
    /// Something is mapped there already.
    AlreadyMapped = 15,
    /// The thread is in a state that does not allow the operation.
    InvalidState = 16,
}

impl Error {
    /// Every error, for decoding and tests.
    pub const ALL: [Error; 16] = [
        Error::InvalidSyscall,
        Error::InvalidCapability,
        Error::WrongObjectKind,
        Error::MissingRight,
        Error::RamQuotaExceeded,
        Error::CapQuotaExceeded,
        Error::InvalidArgument,
        Error::BadAddress,
        Error::MessageTooLarge,
        Error::SlotOccupied,
        Error::NoReplyTarget,
        Error::ObjectDestroyed,
        Error::OutOfMemory,
        Error::AlreadyClaimed,
        Error::AlreadyMapped,
        Error::InvalidState,
    ];

    /// Decodes `rax` after a system call: `Ok(())` for 0.
    #[inline]
    pub fn check(raw: u64) -> Result<(), Error> {
        if raw == 0 {
            return Ok(());
        }
        Err(Self::ALL
            .iter()
            .copied()
            .find(|e| *e as u64 == raw)
            .unwrap_or(Error::InvalidSyscall))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Words of a message carried in registers.
pub const MSG_WORDS: usize = 4;
/// Largest payload, in bytes, carried through the IPC buffers.
pub const PAYLOAD_MAX: usize = 3584;
/// Most capabilities transferred with one message.
pub const MAX_TRANSFER_CAPS: usize = 4;

/// Label, payload length and capability count of a message, packed in one
/// register: bits 0–31 label, 32–47 payload bytes, 48–51 capability count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct MsgInfo(pub u64);

impl MsgInfo {
    /// A message with `label`, `payload_len` bytes of payload and `caps` capabilities.
    pub const fn new(label: u32, payload_len: u16, caps: u8) -> Self {
        MsgInfo(label as u64 | (payload_len as u64) << 32 | ((caps & 0xF) as u64) << 48)
    }

    /// The message's label: what the sender asks for.
    pub const fn label(self) -> u32 {
        self.0 as u32
    }

    /// Bytes of payload in the IPC buffer (unchecked claim; see [`PAYLOAD_MAX`]).
    pub const fn payload_len(self) -> usize {
        ((self.0 >> 32) & 0xFFFF) as usize
    }

    /// Capabilities named in the IPC buffer (unchecked claim; see [`MAX_TRANSFER_CAPS`]).
    pub const fn caps(self) -> usize {
        ((self.0 >> 48) & 0xF) as usize
    }
}

/// The label of a fault message the kernel sends to a Pd's fault endpoint.
/// Words: [`FaultKind`], faulting address (CR2 for page faults, else 0),
/// instruction pointer, error code.
pub const FAULT_LABEL: u32 = 0xFFFF_FFF0;
/// The label a receive returns with when it was woken by the thread's bound
/// notification instead of a message; word 0 holds the signalled bits.
pub const NOTIFICATION_LABEL: u32 = 0xFFFF_FFF1;

/// Whether `label` is one only the kernel may put on a message
/// ([`FAULT_LABEL`], [`NOTIFICATION_LABEL`]); the kernel refuses a user
/// `Send`, `Call` or `ReplyRecv` carrying one with [`Error::InvalidArgument`],
/// so a receiver can trust them.
pub const fn is_kernel_label(label: u32) -> bool {
    label == FAULT_LABEL || label == NOTIFICATION_LABEL
}

/// Why a thread faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum FaultKind {
    /// #PF: access to an unmapped page or without the right.
    PageFault = 1,
    /// #GP: privileged instruction, non-canonical address, port without permission.
    GeneralProtection = 2,
    /// #DE: integer division by zero or overflow.
    DivideError = 3,
    /// #UD: invalid or unsupported instruction (including x87/SSE, which Arbor
    /// components do not use).
    InvalidOpcode = 4,
    /// #BP: `int3`.
    Breakpoint = 5,
    /// Any other CPU exception; the error-code word holds the vector.
    Other = 6,
}

impl FaultKind {
    /// The kind with this number, if any.
    pub fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            1 => Self::PageFault,
            2 => Self::GeneralProtection,
            3 => Self::DivideError,
            4 => Self::InvalidOpcode,
            5 => Self::Breakpoint,
            6 => Self::Other,
            _ => return None,
        })
    }
}

/// The per-thread page through which payloads and capabilities travel.
/// A thread names its buffer's address when it is started; the buffer must
/// be mapped writable in the thread's Pd.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
pub struct IpcBuffer {
    /// Message payload, [`MsgInfo::payload_len`] bytes of it valid.
    pub payload: [u8; PAYLOAD_MAX],
    /// Slots of the capabilities to send ([`MsgInfo::caps`] of them).
    pub send_caps: [CapSlot; MAX_TRANSFER_CAPS],
    /// Empty slots where received capabilities may land; `CapSlot::NULL` = none.
    pub receive_slots: [CapSlot; MAX_TRANSFER_CAPS],
}

/// Size of a page.
pub const PAGE_SIZE: usize = 4096;

/// Lowest address user space may map (the first page stays unmapped so null
/// dereferences fault).
pub const USER_MIN: u64 = 0x1000;
/// One past the highest user address: the canonical lower half, less a guard page.
pub const USER_END: u64 = 0x0000_7FFF_FFFF_F000;

/// Priorities run from 0 (lowest) to `MAX_PRIORITY`; a thread may only give
/// a thread it creates a priority up to its own.
pub const MAX_PRIORITY: u8 = 15;

/// Mapping permissions for [`Syscall::Map`], a subset of the dataspace
/// capability's rights.
pub mod map {
    /// Readable (always implied).
    pub const READ: u64 = 1;
    /// Writable.
    pub const WRITE: u64 = 2;
    /// Executable.
    pub const EXECUTE: u64 = 4;
}

/// What [`Syscall::Info`] reports, selected by its first argument.
pub mod info {
    /// Free RAM the kernel has not given to any Pd, in bytes.
    pub const KERNEL_FREE_RAM: u64 = 1;
    /// (limit, used) RAM quota of the Pd named by the second argument.
    pub const PD_RAM: u64 = 2;
    /// (limit, used) capability quota of the Pd named by the second argument.
    pub const PD_CAPS: u64 = 3;
    /// Physical address of the dataspace named by the second argument (needs DMA right).
    pub const DATASPACE_PHYS: u64 = 4;
    /// Size in bytes of the dataspace named by the second argument.
    pub const DATASPACE_SIZE: u64 = 5;
    /// TSC ticks per millisecond, as the kernel calibrated them.
    pub const TSC_PER_MS: u64 = 6;
    /// The kind ([`super::ObjectKind`]) of the capability in the second argument.
    pub const CAP_KIND: u64 = 7;
    /// Whether the thread named by the second argument is blocked sending or
    /// calling (1) or not (0). A parent asks before it calls a child server
    /// synchronously: a server blocked in a call (perhaps to that parent)
    /// might never answer, while a busy or waiting one will, eventually.
    pub const THREAD_BLOCKED_CALLING: u64 = 8;
    /// TSC ticks the kernel has spent halted, waiting for an interrupt with
    /// nothing to run, since boot. Elapsed TSC ticks minus the growth of
    /// this is the machine's busy time; under QEMU's icount, where the TSC
    /// counts instructions and a halt jumps to the next timer deadline, it
    /// is the number of instructions executed, whatever the host's load.
    pub const IDLE_TICKS: u64 = 9;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fault_and_notification_labels_are_the_kernels() {
        assert!(is_kernel_label(FAULT_LABEL));
        assert!(is_kernel_label(NOTIFICATION_LABEL));
        assert!(!is_kernel_label(0));
        assert!(!is_kernel_label(0xFFFF_FFF2));
        assert!(!is_kernel_label(u32::MAX));
    }

    #[test]
    fn msg_info_round_trips() {
        let info = MsgInfo::new(0xDEAD_BEEF, 3000, 3);
        assert_eq!(
            (info.label(), info.payload_len(), info.caps()),
            (0xDEAD_BEEF, 3000, 3)
        );
    }

    #[test]
    fn errors_decode() {
        assert_eq!(Error::check(0), Ok(()));
        for error in Error::ALL {
            assert_eq!(Error::check(error as u64), Err(error));
        }
        assert_eq!(Error::check(999), Err(Error::InvalidSyscall));
    }

    #[test]
    fn ipc_buffer_fits_a_page() {
        assert_eq!(core::mem::size_of::<IpcBuffer>(), PAGE_SIZE);
    }

    #[test]
    fn rights_only_shrink_by_intersection() {
        let rw = Rights::READ.union(Rights::WRITE);
        assert!(rw.contains(Rights::READ));
        assert!(!rw.intersect(Rights::READ).contains(Rights::WRITE));
    }
}

/// How a run in QEMU ends with a verdict that `cargo arbor test` reads.
///
/// There is no "power off" system call: the component that owns the
/// platform (core, or a test component started as core) claims the port of
/// QEMU's `isa-debug-exit` device like any other I/O port —
/// `CreateIoPorts(PLATFORM, pays, dest, DEBUG_EXIT_PORT, 4)`, then
/// `EnableIoPorts(dest, OWN_PD)` — and writes [`qemu::SUCCESS`] or
/// [`qemu::FAILURE`] to it with a 32-bit `out`.
pub mod qemu {
    /// The debug-exit device's port.
    pub const DEBUG_EXIT_PORT: u16 = 0xF4;
    /// Written to end the run successfully (QEMU exits with 33).
    pub const SUCCESS: u32 = 0x10;
    /// Written to end the run as failed (QEMU exits with 35).
    pub const FAILURE: u32 = 0x11;
}
