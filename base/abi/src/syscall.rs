//! System-call numbers and, for each, its arguments and results.
//!
//! "pays" names the Pd (by a capability with [`crate::Rights::CONTROL`]) whose
//! RAM and capability quota an operation charges. "dest" is an empty slot in
//! the caller's own capability table where a new capability lands.

/// The system calls, by number (`rax`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Syscall {
    /// Send a message on an endpoint (WRITE) and wait for the reply.
    /// `rdi` endpoint, `rsi` info, `rdx r10 r8 r9` words →
    /// `rsi` reply info, `rdx r10 r8 r9` reply words.
    Call = 0,
    /// Reply to the caller this thread last received from (if any), then
    /// receive on an endpoint (READ).
    /// `rdi` endpoint, `rsi` reply info, `rdx r10 r8 r9` reply words →
    /// `rdi` badge, `rsi` info, `rdx r10 r8 r9` words.
    /// A reply that finds no caller waiting is dropped silently (the caller
    /// may have been destroyed); the receive still happens.
    ReplyRecv = 1,
    /// Send a message on an endpoint (WRITE); blocks until a receiver takes it.
    /// `rdi` endpoint, `rsi` info, `rdx r10 r8 r9` words.
    Send = 2,
    /// Receive a message on an endpoint (READ).
    /// `rdi` endpoint → `rdi` badge, `rsi` info, `rdx r10 r8 r9` words.
    /// A sender that used `Call` waits for this thread's next `ReplyRecv`.
    Recv = 3,
    /// OR the capability's badge into a notification's word (WRITE).
    /// `rdi` notification.
    Signal = 4,
    /// Wait until a notification's word is non-zero (READ), then take and clear it.
    /// `rdi` notification, `rsi` timeout in milliseconds (0 = none) → `rdi`
    /// bits, 0 when the timeout passed first. Timeouts have the kernel's
    /// time-slice granularity (10 ms).
    Wait = 5,
    /// Give up the rest of the time slice.
    Yield = 6,
    /// Create an object. `rdi` [`crate::ObjectKind`] (Pd, Thread, Endpoint,
    /// Notification or Dataspace), `rsi` pays, `rdx` dest, `r10` argument:
    /// for a Dataspace its size in bytes (rounded up to pages, zero-filled);
    /// for a Thread the priority it may run at (at most the caller's).
    /// A Thread runs in the Pd that pays; a new Pd starts with no quota.
    /// The new capability has all rights.
    Create = 7,
    /// Destroy the object (CONTROL); every capability to it stops working.
    /// Destroying a Pd destroys everything it paid for and returns its
    /// remaining quota to the Pd that paid for it.
    /// `rdi` capability.
    Destroy = 8,
    /// Copy a capability within the caller's table, keeping only the rights
    /// in the mask; a badge can be given to an unbadged endpoint or
    /// notification capability. `rdi` source, `rsi` dest, `rdx` rights mask,
    /// `r10` badge (0 = keep).
    Derive = 9,
    /// Empty a slot of the caller's table. `rdi` slot.
    Delete = 10,
    /// Copy a capability (GRANT) from the caller's table into another Pd's
    /// (CONTROL), keeping only the rights in the mask; charged to that Pd's
    /// capability quota. `rdi` target Pd, `rsi` source slot, `rdx` slot in
    /// the target, `r10` rights mask.
    Grant = 11,
    /// Map part of a dataspace into a Pd (CONTROL), page tables paid by that
    /// Pd. `rdi` Pd, `rsi` dataspace (READ, plus WRITE/EXECUTE as asked),
    /// `rdx` offset in the dataspace, `r10` virtual address, `r8` size,
    /// `r9` [`crate::map`] flags. Offset, address and size are page aligned;
    /// the range lies in the user half.
    Map = 12,
    /// Remove the mappings in a range of a Pd (CONTROL).
    /// `rdi` Pd, `rsi` virtual address, `rdx` size.
    Unmap = 13,
    /// Move unused quota between two Pds (CONTROL on both).
    /// `rdi` from, `rsi` to, `rdx` RAM bytes (page multiple), `r10` capability slots.
    TransferQuota = 14,
    /// Start (or restart, after a fault) a thread (CONTROL).
    /// `rdi` thread, `rsi` instruction pointer, `rdx` stack pointer,
    /// `r10` IPC buffer address (page aligned, mapped writable in the thread's Pd),
    /// `r8` first argument (arrives in the thread's `rdi`).
    StartThread = 15,
    /// Bind a notification (READ) to a thread (CONTROL): the thread's receives
    /// then also return when the notification is signalled.
    /// `rdi` thread, `rsi` notification.
    BindNotification = 16,
    /// Set where a Pd's faults are reported. `rdi` Pd (CONTROL), `rsi`
    /// endpoint (WRITE); the fault message carries that capability's badge.
    SetFaultEndpoint = 17,
    /// Claim a hardware interrupt line (Platform) and bind it to a notification
    /// (WRITE; the line signals that capability's badge); or, from an Irq
    /// object (CONTROL) of the same line, add a sharer of that line.
    /// `rdi` platform or irq, `rsi` pays, `rdx` dest, `r10` line (0–23), `r8` notification.
    CreateIrq = 18,
    /// Acknowledge an interrupt; the line fires again once every sharer
    /// has acknowledged. `rdi` irq.
    AckIrq = 19,
    /// Create an I/O port range capability from the Platform capability or from
    /// an IoPorts capability that covers the range.
    /// `rdi` platform or io ports, `rsi` pays, `rdx` dest, `r10` first port, `r8` count.
    CreateIoPorts = 20,
    /// Allow a Pd (CONTROL) to use the ports of an IoPorts capability.
    /// `rdi` io ports, `rsi` Pd.
    EnableIoPorts = 21,
    /// Create a dataspace over device memory outside RAM (Platform).
    /// `rdi` platform, `rsi` pays, `rdx` dest, `r10` physical address, `r8` size.
    CreateDeviceDataspace = 22,
    /// Ask the kernel a question; see [`crate::info`].
    /// `rdi` selector, `rsi` argument → `rdi`, `rsi` answers.
    Info = 23,
    /// Write bytes from the caller's IPC buffer payload to the kernel console.
    /// `rdi` console capability (WRITE), `rsi` length (at most [`crate::PAYLOAD_MAX`]).
    ConsoleWrite = 24,
}

impl Syscall {
    /// The highest system-call number.
    pub const LAST: u64 = Syscall::ConsoleWrite as u64;

    /// The system call with this number, if any.
    pub fn from_raw(raw: u64) -> Option<Self> {
        use Syscall::*;
        const ALL: [Syscall; 25] = [
            Call,
            ReplyRecv,
            Send,
            Recv,
            Signal,
            Wait,
            Yield,
            Create,
            Destroy,
            Derive,
            Delete,
            Grant,
            Map,
            Unmap,
            TransferQuota,
            StartThread,
            BindNotification,
            SetFaultEndpoint,
            CreateIrq,
            AckIrq,
            CreateIoPorts,
            EnableIoPorts,
            CreateDeviceDataspace,
            Info,
            ConsoleWrite,
        ];
        ALL.get(usize::try_from(raw).ok()?).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for raw in 0..=Syscall::LAST {
            assert_eq!(Syscall::from_raw(raw).map(|s| s as u64), Some(raw));
        }
        assert_eq!(Syscall::from_raw(Syscall::LAST + 1), None);
        assert_eq!(Syscall::from_raw(u64::MAX), None);
    }
}
