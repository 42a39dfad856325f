//! The IPC fast path: `Call` and `ReplyRecv` with register-only messages
//! between a thread and one that is already waiting, when the switch goes
//! to the thread the scheduler would pick anyway. It acts on the caller's
//! live registers (the entry frame) and skips the general machinery:
//! message staging, IPC-buffer lookups, run-queue traffic, `choose_next`,
//! and copies of registers that a system call does not keep.
//!
//! Every check the slow path makes is made here too — the capability's
//! kind, rights and generation, the badge delivered, the refusal of kernel
//! labels — and a message with a payload or capabilities, a queue in an
//! unexpected state, a pending bound notification, or a thread of higher
//! (for replies: equal or higher) priority ready to run sends the call down
//! the slow path, which then does exactly what it always did. The host
//! tests run both paths on the same sequences and compare every thread.
//!
//! Measured with QEMU TCG `-icount shift=0,align=off,sleep=off` (rdtsc
//! counts retired instructions), scenario `bench_ipc` (kernel_test calls
//! pingpong in another Pd): `ipc_roundtrip` 989 instructions, median of
//! 100,000, the same in three runs (the slow path alone: 2,082; before
//! the object store, 2,419). Where one
//! round trip (a Call and a ReplyRecv) goes, from a trace of every executed
//! instruction (`-singlestep -d exec`), 1,100 round trips averaged: this
//! fast path's checks, register save/load and queue update 581; the
//! address-space switch (`switch_to`: segment reset, CR3, I/O bitmap) 114;
//! entry and exit stubs 108; `kernel_entry` and `with_kernel` 50; user code
//! of both sides 169. Each object reached costs a frame-table check; that
//! is the price of accessors that never trust a frame number.

#![forbid(unsafe_code)]

use super::object::{Kernel, ObjRef, Object, ThreadState};
use crate::caps::Cap;
use crate::context::Frame;
use arbor_abi::{CapSlot, MsgInfo, ObjectKind, Rights, Syscall, is_kernel_label};

/// The `MsgInfo` a receiver sees for a register-only message `info`, if
/// the fast path may carry it (no payload, no capabilities, no kernel label).
fn register_only(info: MsgInfo) -> Option<u64> {
    (info.payload_len() == 0 && info.caps() == 0 && !is_kernel_label(info.label()))
        .then(|| MsgInfo::new(info.label(), 0, 0).0)
}

impl Kernel {
    /// Handles the system call in `frame` (the current thread's registers)
    /// if it qualifies, leaving the next thread's context in `frame`; false
    /// when the slow path must handle it (nothing has been changed then).
    pub fn ipc_fastpath(&mut self, frame: &mut Frame) -> bool {
        if self.reschedule {
            return false;
        }
        let Some(info) = register_only(MsgInfo(frame.rsi)) else {
            return false;
        };
        match frame.rax {
            raw if raw == Syscall::Call as u64 => self.fast_call(frame, info),
            raw if raw == Syscall::ReplyRecv as u64 => self.fast_reply_recv(frame, info),
            _ => false,
        }
    }

    /// The endpoint capability in `slot` of Pd `pd`, if it has `rights`
    /// (the generation is checked when the endpoint is looked up).
    fn endpoint_cap(&self, pd: ObjRef, slot: u64, rights: Rights) -> Option<Cap> {
        let cap = self.cap(pd, CapSlot(u32::try_from(slot).ok()?));
        (cap.kind == ObjectKind::Endpoint as u8 && cap.rights().contains(rights)).then_some(cap)
    }

    /// `Call` to an endpoint where a receiver waits: the receiver runs at once.
    fn fast_call(&mut self, frame: &mut Frame, info: u64) -> bool {
        let Some(me) = self.current else { return false };
        let Some(pd) = self.objects.thread(me).map(|t| t.pd) else {
            return false;
        };
        let Some(cap) = self.endpoint_cap(pd, frame.rdi, Rights::WRITE) else {
            return false;
        };
        let endpoint = Kernel::cap_ref(&cap);
        // `get` checks the capability's generation against the frame's.
        let Some(Object::Endpoint(queues)) = self.objects.get(endpoint) else {
            return false;
        };
        let Some(receiver) = queues.receivers.front().and_then(|t| self.objects.live(t)) else {
            return false;
        };
        let ready = self.ready;
        let Some((caller, waiting)) = self.objects.threads2_mut(me, receiver) else {
            return false;
        };
        if waiting.state != ThreadState::Receiving
            || ready
                .checked_shr(u32::from(waiting.priority) + 1)
                .unwrap_or(0)
                != 0
        {
            return false;
        }
        // Committed: nothing below can fail.
        frame.save_syscall_state(&mut caller.context);
        caller.state = ThreadState::AwaitingReply;
        waiting.state = ThreadState::Runnable;
        waiting.blocked_on = None;
        waiting.reply_to = Some(me);
        let next = waiting.next.take();
        let next_pd = waiting.pd;
        let words = [frame.rdx, frame.r10, frame.r8, frame.r9];
        frame.load_for_syscall_return(&waiting.context);
        frame.set_message(cap.badge, info, words);
        if let Some(Object::Endpoint(queues)) = self.objects.get_mut(endpoint) {
            queues.receivers.pop_known_front(receiver.pfn, next);
        }
        self.current = Some(receiver);
        frame.sanitize_for_user();
        self.switch_to(next_pd);
        true
    }

    /// `ReplyRecv` from a server whose caller waits, on an endpoint with no
    /// thread queued: the caller runs at once, the server waits.
    fn fast_reply_recv(&mut self, frame: &mut Frame, info: u64) -> bool {
        let Some(me) = self.current else { return false };
        let Some(server) = self.objects.thread(me) else {
            return false;
        };
        let (pd, bound, caller) = (server.pd, server.bound, server.reply_to);
        let Some(caller) = caller else { return false };
        let Some(cap) = self.endpoint_cap(pd, frame.rdi, Rights::READ) else {
            return false;
        };
        let endpoint = Kernel::cap_ref(&cap);
        // No sender waiting (or the receive would take it at once) and no
        // other receiver (so the server can queue without a walk).
        let Some(Object::Endpoint(queues)) = self.objects.get(endpoint) else {
            return false;
        };
        if !queues.senders.is_empty() || !queues.receivers.is_empty() {
            return false;
        }
        // A pending bound notification ends the receive at once.
        if let Some(bound) = bound
            && let Some(Object::Notification(notification)) = self.objects.get(bound)
            && notification.word != 0
        {
            return false;
        }
        let ready = self.ready;
        let Some((server, waiting)) = self.objects.threads2_mut(me, caller) else {
            return false;
        };
        // The slow path queues the caller behind ready threads of its own
        // priority; only when there are none is running it now the same.
        if waiting.state != ThreadState::AwaitingReply
            || ready.checked_shr(u32::from(waiting.priority)).unwrap_or(0) != 0
        {
            return false;
        }
        // Committed: nothing below can fail.
        frame.save_syscall_state(&mut server.context);
        server.reply_to = None;
        server.state = ThreadState::Receiving;
        server.blocked_on = Some(endpoint);
        server.next = None;
        waiting.state = ThreadState::Runnable;
        waiting.blocked_on = None;
        let next_pd = waiting.pd;
        let words = [frame.rdx, frame.r10, frame.r8, frame.r9];
        frame.load_for_syscall_return(&waiting.context);
        frame.set_message(0, info, words);
        if let Some(Object::Endpoint(queues)) = self.objects.get_mut(endpoint) {
            queues.receivers.push_into_empty(me.pfn);
        }
        self.current = Some(caller);
        frame.sanitize_for_user();
        self.switch_to(next_pd);
        true
    }
}
