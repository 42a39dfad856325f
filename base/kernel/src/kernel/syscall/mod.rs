//! System-call dispatch: decode the registers, check every capability and
//! argument, act, and put the results in the caller's registers.
//!
//! The calls are split by role: [`objects`] (creating, deriving, granting
//! and destroying objects, threads, quota), [`memory`] (mapping and
//! unmapping dataspaces), [`devices`] (interrupts, I/O ports, device
//! memory) and [`info`] (queries and the console). IPC lives in
//! [`super::ipc`].

#![forbid(unsafe_code)]

pub mod devices;
pub mod info;
pub mod memory;
pub mod objects;

use super::ipc::Outcome;
use super::object::{Kernel, ObjRef, Pd, Thread, ThreadState};
use crate::caps::Cap;
use crate::context::Frame;
use crate::quota::Quota;
use arbor_abi::{Error, MsgInfo, ObjectKind, Rights, Syscall};

/// Bytes in a page.
pub const PAGE: u64 = 4096;

/// Handles the system call whose registers are in the current thread's context.
pub fn dispatch(kernel: &mut Kernel) {
    let Some((_, thread)) = kernel.current_thread() else {
        return;
    };
    let c = thread.context;
    let (a0, a1, a2, a3, a4, a5) = (c.rdi, c.rsi, c.rdx, c.r10, c.r8, c.r9);
    let words = [a2, a3, a4, a5];
    let outcome = match Syscall::from_raw(c.rax) {
        None => Outcome::Done(Err(Error::InvalidSyscall)),
        Some(call) => match call {
            Syscall::Call => kernel.send(a0, MsgInfo(a1), words, true),
            Syscall::Send => kernel.send(a0, MsgInfo(a1), words, false),
            Syscall::Recv => kernel.receive(a0),
            Syscall::ReplyRecv => kernel.reply_receive(a0, MsgInfo(a1), words),
            Syscall::Signal => Outcome::Done(kernel.signal(a0)),
            Syscall::Wait => kernel.wait(a0, a1),
            Syscall::Yield => {
                kernel.reschedule = true;
                Outcome::Done(Ok(()))
            }
            Syscall::Create => Outcome::Done(kernel.create(a0, a1, a2, a3)),
            Syscall::Destroy => Outcome::Done(kernel.destroy_cap(a0)),
            Syscall::Derive => Outcome::Done(kernel.derive(a0, a1, a2, a3)),
            Syscall::Delete => Outcome::Done(kernel.delete(a0)),
            Syscall::Grant => Outcome::Done(kernel.grant(a0, a1, a2, a3)),
            Syscall::Map => Outcome::Done(kernel.map(a0, a1, a2, a3, a4, a5)),
            Syscall::Unmap => Outcome::Done(kernel.unmap(a0, a1, a2)),
            Syscall::TransferQuota => Outcome::Done(kernel.transfer_quota(a0, a1, a2, a3)),
            Syscall::StartThread => Outcome::Done(kernel.start_thread(a0, a1, a2, a3, a4)),
            Syscall::BindNotification => Outcome::Done(kernel.bind_notification(a0, a1)),
            Syscall::SetFaultEndpoint => Outcome::Done(kernel.set_fault_endpoint(a0, a1)),
            Syscall::CreateIrq => Outcome::Done(kernel.create_irq(a0, a1, a2, a3, a4)),
            Syscall::AckIrq => Outcome::Done(kernel.ack_irq(a0)),
            Syscall::CreateIoPorts => Outcome::Done(kernel.create_io_ports(a0, a1, a2, a3, a4)),
            Syscall::EnableIoPorts => Outcome::Done(kernel.enable_io_ports(a0, a1)),
            Syscall::CreateDeviceDataspace => {
                Outcome::Done(kernel.create_device_dataspace(a0, a1, a2, a3, a4))
            }
            Syscall::Info => Outcome::Done(kernel.info(a0, a1)),
            Syscall::ConsoleWrite => Outcome::Done(kernel.console_write(a0, a1)),
        },
    };
    if let Outcome::Done(result) = outcome
        && let Some(thread) = kernel.current_thread_mut()
    {
        thread.context.rax = result.err().map_or(0, |e| e as u64);
    }
}

/// Whether `value` is a multiple of the page size.
pub fn page_aligned(value: u64) -> bool {
    value.is_multiple_of(PAGE)
}

impl Kernel {
    /// Puts two results into the caller's `rdi` and `rsi`.
    pub(super) fn set_results(&mut self, rdi: u64, rsi: u64) {
        if let Some(thread) = self.current_thread_mut() {
            thread.context.rdi = rdi;
            thread.context.rsi = rsi;
        }
    }

    /// The object the caller's `slot` names, checked for kind and rights.
    pub(super) fn own_object(
        &self,
        slot: u64,
        kind: ObjectKind,
        rights: Rights,
    ) -> Result<ObjRef, Error> {
        let cap = self.own_cap(slot);
        self.check(&cap, kind, rights)
    }

    /// The Pd the caller's `slot` names, with CONTROL.
    pub(super) fn own_pd(&self, slot: u64) -> Result<ObjRef, Error> {
        self.own_object(slot, ObjectKind::Pd, Rights::CONTROL)
    }

    /// The caller's own Pd.
    pub(super) fn caller_pd(&self) -> Result<ObjRef, Error> {
        self.current_pd_ref().ok_or(Error::InvalidState)
    }
}

/// A new, not yet started thread in `pd`.
pub fn new_thread(pd: ObjRef, priority: u8) -> Thread {
    Thread {
        pd,
        context: Frame::user(0, 0, 0),
        state: ThreadState::Inactive,
        priority,
        ipc_buffer: 0,
        buffer_cache: Default::default(),
        cap_cache: Default::default(),
        space_cache: Default::default(),
        next: None,
        blocked_on: None,
        message: Default::default(),
        reply_to: None,
        bound: None,
        deadline: 0,
        next_timed: None,
    }
}

/// A new Pd with no quota.
pub fn new_pd(payer: Option<ObjRef>, root_table: u64, pcid: u16) -> Pd {
    Pd {
        ram: Quota::default(),
        caps: Quota::default(),
        payer,
        root_table,
        pcid,
        tlb_stale: true,
        cap_pages: [0; crate::caps::MAX_CAP_PAGES],
        fault_endpoint: Cap::default(),
        io_bitmap: 0,
        objects: 0,
        record_pages: [0; crate::kernel::mappings::MAX_RECORD_PAGES],
    }
}
