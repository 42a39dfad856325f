//! IPC: synchronous messages over endpoints, replies, and notifications.
//!
//! Message words travel register to register; a payload is copied from the
//! sender's IPC buffer to the receiver's through the physical window (the
//! kernel never dereferences a user pointer); capabilities named in the
//! sender's buffer are copied into the slots the receiver's buffer offers.

use super::object::{Kernel, Message, ObjRef, Object, Thread, ThreadLinks, ThreadState};
use crate::arch::paging::phys_to_virt;
use arbor_abi::{
    CapSlot, Error, IpcBuffer, MAX_TRANSFER_CAPS, MsgInfo, NOTIFICATION_LABEL, ObjectKind,
    PAYLOAD_MAX, Rights, is_kernel_label,
};
use core::mem::offset_of;

/// The outcome of a system call for the calling thread.
pub enum Outcome {
    /// Return to the caller with this result in `rax` (results already set).
    Done(Result<(), Error>),
    /// The caller blocked (or was switched away from); its `rax` is set when it resumes.
    Blocked,
}

fn read_slot(buffer_phys: u64, offset: usize) -> CapSlot {
    // SAFETY: `buffer_phys` is the start of a mapped, page-aligned IPC buffer
    // page, and `offset` lies inside `IpcBuffer`, which is one page.
    CapSlot(unsafe { core::ptr::read(phys_to_virt(buffer_phys + offset as u64) as *const u32) })
}

/// Checks a message's claimed sizes, and that a sender with payload or
/// capabilities has an IPC buffer.
pub fn validate(kernel: &Kernel, thread: &Thread, info: MsgInfo) -> Result<(), Error> {
    // Fault reports and notifications are made by the kernel only; a user
    // message with their labels would be a forgery.
    if is_kernel_label(info.label()) {
        return Err(Error::InvalidArgument);
    }
    if info.payload_len() > PAYLOAD_MAX || info.caps() > MAX_TRANSFER_CAPS {
        return Err(Error::MessageTooLarge);
    }
    if (info.payload_len() > 0 || info.caps() > 0) && ipc_buffer(kernel, thread, false).is_none() {
        return Err(Error::BadAddress);
    }
    Ok(())
}

/// The physical address of a thread's IPC buffer, if it is mapped (writable,
/// when `for_writing`).
fn ipc_buffer(kernel: &Kernel, thread: &Thread, for_writing: bool) -> Option<u64> {
    if thread.ipc_buffer == 0 {
        return None;
    }
    let pd = kernel.pd(thread.pd)?;
    kernel.user_page(pd.root_table, thread.ipc_buffer, for_writing)
}

/// Moves `message` from `sender` into `receiver`'s registers and buffer.
fn deliver(kernel: &mut Kernel, sender: Option<&Thread>, message: &Message, receiver_ref: ObjRef) {
    let Some(receiver) = kernel.thread(receiver_ref) else {
        return;
    };
    let mut payload_len = 0;
    let mut transferred = 0u8;
    let receiver_buffer = ipc_buffer(kernel, receiver, true);
    if let (Some(sender), Some(to)) = (sender, receiver_buffer) {
        let from = ipc_buffer(kernel, sender, false);
        if let Some(from) = from {
            payload_len = message.info.payload_len().min(PAYLOAD_MAX);
            // SAFETY: both are mapped IPC-buffer pages reached through the
            // physical window; `payload_len` fits the payload area of each.
            unsafe { core::ptr::copy(phys_to_virt(from), phys_to_virt(to), payload_len) };
            transferred = transfer_caps(kernel, sender, from, receiver.pd, to, message.info.caps());
        }
    }
    let context = &mut receiver.context;
    context.rax = 0;
    context.rdi = message.badge;
    context.rsi = MsgInfo::new(message.info.label(), payload_len as u16, transferred).0;
    [context.rdx, context.r10, context.r8, context.r9] = message.words;
}

/// Copies up to `count` capabilities (GRANT needed) into the receiver's
/// offered slots; stops at the first that cannot be copied.
fn transfer_caps(
    kernel: &mut Kernel,
    sender: &Thread,
    from: u64,
    receiver_pd: ObjRef,
    to: u64,
    count: usize,
) -> u8 {
    let Some(sender_pd) = kernel.pd(sender.pd) else {
        return 0;
    };
    let mut transferred = 0;
    for i in 0..count.min(MAX_TRANSFER_CAPS) {
        let source = read_slot(from, offset_of!(IpcBuffer, send_caps) + 4 * i);
        let destination = read_slot(to, offset_of!(IpcBuffer, receive_slots) + 4 * i);
        let cap = kernel.cap(sender_pd, source);
        if cap.is_empty() || !cap.rights().contains(Rights::GRANT) || destination == CapSlot::NULL {
            break;
        }
        if kernel.install_cap(receiver_pd, destination, cap).is_err() {
            break;
        }
        transferred += 1;
    }
    transferred
}

impl Kernel {
    /// `Send` and `Call`.
    pub fn send(
        &mut self,
        endpoint: u64,
        info: MsgInfo,
        words: [u64; 4],
        is_call: bool,
    ) -> Outcome {
        let Some((me, thread)) = self.current_thread() else {
            return Outcome::Blocked;
        };
        let cap = self.own_cap(endpoint);
        let (ep_ref, object) = match self.check(&cap, ObjectKind::Endpoint, Rights::WRITE) {
            Ok(found) => found,
            Err(error) => return Outcome::Done(Err(error)),
        };
        if let Err(error) = validate(self, thread, info) {
            return Outcome::Done(Err(error));
        }
        let Object::Endpoint(endpoint) = object else {
            return Outcome::Done(Err(Error::WrongObjectKind));
        };
        let message = Message {
            info,
            words,
            badge: cap.badge,
            is_call,
            is_fault: false,
        };
        match endpoint.receivers.pop_front(&mut ThreadLinks) {
            Some(receiver_pfn) => {
                let Some((receiver_ref, receiver)) = self.thread_at(receiver_pfn) else {
                    return Outcome::Done(Err(Error::ObjectDestroyed));
                };
                receiver.blocked_on = None;
                deliver(self, Some(thread), &message, receiver_ref);
                if is_call {
                    thread.state = ThreadState::AwaitingReply;
                    receiver.reply_to = Some(me);
                    self.run_directly(receiver_ref);
                    Outcome::Blocked
                } else {
                    self.make_ready(receiver_ref);
                    Outcome::Done(Ok(()))
                }
            }
            None => {
                thread.state = ThreadState::Sending;
                thread.message = message;
                thread.blocked_on = Some(ep_ref);
                endpoint.senders.push_back(&mut ThreadLinks, me.pfn);
                Outcome::Blocked
            }
        }
    }

    /// Hands the CPU straight to `next`, which was blocked, when nothing of
    /// higher priority is ready (the IPC fast path); otherwise queues it.
    fn run_directly(&mut self, next: ObjRef) {
        let priority = self.thread(next).map_or(0, |t| t.priority);
        let higher_ready = self.run_queues[usize::from(priority) + 1..]
            .iter()
            .any(|q| !q.is_empty());
        if higher_ready {
            self.make_ready(next);
        } else if let Some(thread) = self.thread(next) {
            thread.state = ThreadState::Runnable;
            self.current = Some(next);
        }
    }

    /// `Recv`: take a waiting message, or a pending bound notification, or block.
    pub fn receive(&mut self, endpoint: u64) -> Outcome {
        let Some((me, thread)) = self.current_thread() else {
            return Outcome::Blocked;
        };
        let cap = self.own_cap(endpoint);
        let (ep_ref, object) = match self.check(&cap, ObjectKind::Endpoint, Rights::READ) {
            Ok(found) => found,
            Err(error) => return Outcome::Done(Err(error)),
        };
        let Object::Endpoint(endpoint) = object else {
            return Outcome::Done(Err(Error::WrongObjectKind));
        };
        // A pending bound notification comes first (as in seL4), so that an
        // interrupt or timeout is never starved by a stream of messages.
        if let Some(bits) = self.take_bound_signal(thread) {
            set_notification_result(thread, bits);
            return Outcome::Done(Ok(()));
        }
        if let Some(sender_pfn) = endpoint.senders.pop_front(&mut ThreadLinks)
            && let Some((sender_ref, sender)) = self.thread_at(sender_pfn)
        {
            let message = sender.message;
            sender.blocked_on = None;
            deliver(self, Some(sender), &message, me);
            if message.is_fault {
                sender.state = ThreadState::Faulted;
            } else if message.is_call {
                sender.state = ThreadState::AwaitingReply;
                thread.reply_to = Some(sender_ref);
            } else {
                self.wake_with(sender_ref, Ok(()));
            }
            return Outcome::Done(Ok(()));
        }
        thread.state = ThreadState::Receiving;
        thread.blocked_on = Some(ep_ref);
        endpoint.receivers.push_back(&mut ThreadLinks, me.pfn);
        Outcome::Blocked
    }

    /// `ReplyRecv`: answer the last caller, then receive.
    pub fn reply_receive(&mut self, endpoint: u64, info: MsgInfo, words: [u64; 4]) -> Outcome {
        let Some((_, thread)) = self.current_thread() else {
            return Outcome::Blocked;
        };
        if let Err(error) = validate(self, thread, info) {
            return Outcome::Done(Err(error));
        }
        if let Some(caller_ref) = thread.reply_to.take()
            && let Some(caller) = self.thread(caller_ref)
            && caller.state == ThreadState::AwaitingReply
        {
            let message = Message {
                info,
                words,
                badge: 0,
                is_call: false,
                is_fault: false,
            };
            deliver(self, Some(thread), &message, caller_ref);
            self.make_ready(caller_ref);
        }
        self.receive(endpoint)
    }

    fn take_bound_signal(&mut self, thread: &Thread) -> Option<u64> {
        let Some(Object::Notification(notification)) = thread.bound.and_then(|r| self.get(r))
        else {
            return None;
        };
        (notification.word != 0).then(|| core::mem::take(&mut notification.word))
    }

    /// `Signal`: OR the badge into the word and wake a waiter if there is one.
    pub fn signal(&mut self, slot: u64) -> Result<(), Error> {
        let cap = self.own_cap(slot);
        let (r, _) = self.check(&cap, ObjectKind::Notification, Rights::WRITE)?;
        self.signal_object(r, if cap.badge == 0 { 1 } else { cap.badge });
        Ok(())
    }

    /// Signals `bits` on a notification (also used by interrupts).
    pub fn signal_object(&mut self, r: ObjRef, bits: u64) {
        let Some(Object::Notification(notification)) = self.get(r) else {
            return;
        };
        notification.word |= bits;
        if let Some(waiter_pfn) = notification.waiters.pop_front(&mut ThreadLinks)
            && let Some((waiter_ref, waiter)) = self.thread_at(waiter_pfn)
        {
            waiter.context.rdi = core::mem::take(&mut notification.word);
            self.cancel_timeout(waiter_ref);
            self.wake_with(waiter_ref, Ok(()));
            return;
        }
        let bound = notification
            .bound
            .and_then(|t| self.thread(t).map(|thread| (t, thread)));
        if let Some((thread_ref, thread)) = bound
            && thread.state == ThreadState::Receiving
        {
            if let Some(Object::Endpoint(endpoint)) = thread.blocked_on.and_then(|e| self.get(e)) {
                endpoint.receivers.remove(&mut ThreadLinks, thread_ref.pfn);
            }
            set_notification_result(thread, core::mem::take(&mut notification.word));
            self.wake_with(thread_ref, Ok(()));
        }
    }

    /// `Wait`: take the bits, or block until there are some (or until
    /// `timeout_ms` passed, when it is not 0).
    pub fn wait(&mut self, slot: u64, timeout_ms: u64) -> Outcome {
        let Some((me, thread)) = self.current_thread() else {
            return Outcome::Blocked;
        };
        let cap = self.own_cap(slot);
        let (r, object) = match self.check(&cap, ObjectKind::Notification, Rights::READ) {
            Ok(found) => found,
            Err(error) => return Outcome::Done(Err(error)),
        };
        let Object::Notification(notification) = object else {
            return Outcome::Done(Err(Error::WrongObjectKind));
        };
        if notification.word != 0 {
            thread.context.rdi = core::mem::take(&mut notification.word);
            return Outcome::Done(Ok(()));
        }
        thread.state = ThreadState::Waiting;
        thread.blocked_on = Some(r);
        notification.waiters.push_back(&mut ThreadLinks, me.pfn);
        if timeout_ms != 0 {
            let ticks = timeout_ms.saturating_mul(self.tsc_per_ms);
            thread.deadline = crate::arch::tsc().saturating_add(ticks).max(1);
            thread.next_timed = self.timed_waiters;
            self.timed_waiters = Some(me.pfn);
        }
        Outcome::Blocked
    }

    /// Queues or delivers a kernel-made message (a fault report) from `sender`
    /// on endpoint `ep_ref`; the sender ends up `Faulted` either way.
    pub fn send_kernel_message(&mut self, sender_ref: ObjRef, ep_ref: ObjRef, message: Message) {
        let Some(sender) = self.thread(sender_ref) else {
            return;
        };
        let Some(Object::Endpoint(endpoint)) = self.get(ep_ref) else {
            sender.state = ThreadState::Faulted;
            return;
        };
        if let Some(receiver_pfn) = endpoint.receivers.pop_front(&mut ThreadLinks)
            && let Some((receiver_ref, _)) = self.thread_at(receiver_pfn)
        {
            deliver(self, None, &message, receiver_ref);
            sender.state = ThreadState::Faulted;
            self.make_ready(receiver_ref);
        } else {
            sender.state = ThreadState::Sending;
            sender.message = message;
            sender.blocked_on = Some(ep_ref);
            endpoint.senders.push_back(&mut ThreadLinks, sender_ref.pfn);
        }
    }
}

impl Kernel {
    /// Takes `thread` off the list of timed waiters, if it is on it.
    pub fn cancel_timeout(&mut self, thread: ObjRef) {
        let Some(target) = self.thread(thread) else {
            return;
        };
        if target.deadline == 0 {
            return;
        }
        target.deadline = 0;
        let next = target.next_timed.take();
        if self.timed_waiters == Some(thread.pfn) {
            self.timed_waiters = next;
            return;
        }
        let mut cursor = self.timed_waiters;
        while let Some(pfn) = cursor {
            let Some((_, waiter)) = self.thread_at(pfn) else {
                return;
            };
            if waiter.next_timed == Some(thread.pfn) {
                waiter.next_timed = next;
                return;
            }
            cursor = waiter.next_timed;
        }
    }

    /// Wakes every timed waiter whose deadline has passed (with 0 bits).
    pub fn expire_timeouts(&mut self) {
        let now = crate::arch::tsc();
        let mut cursor = self.timed_waiters;
        while let Some(pfn) = cursor {
            let Some((r, waiter)) = self.thread_at(pfn) else {
                return;
            };
            cursor = waiter.next_timed;
            if waiter.deadline != 0 && waiter.deadline <= now {
                self.cancel_timeout(r);
                if waiter.state == ThreadState::Waiting {
                    if let Some(Object::Notification(notification)) =
                        waiter.blocked_on.and_then(|n| self.get(n))
                    {
                        notification.waiters.remove(&mut ThreadLinks, r.pfn);
                    }
                    waiter.context.rdi = 0;
                    self.wake_with(r, Ok(()));
                }
            }
        }
    }
}

fn set_notification_result(thread: &mut Thread, bits: u64) {
    let context = &mut thread.context;
    context.rax = 0;
    context.rdi = 0;
    context.rsi = MsgInfo::new(NOTIFICATION_LABEL, 0, 0).0;
    context.rdx = bits;
}
