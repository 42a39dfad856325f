//! IPC: synchronous messages over endpoints, replies, and notifications.
//!
//! Message words travel register to register; a payload is copied from the
//! sender's IPC buffer to the receiver's through the object store (the
//! kernel never dereferences a user pointer); capabilities named in the
//! sender's buffer are copied into the slots the receiver's buffer offers.

#![forbid(unsafe_code)]

use super::hw;
use super::object::{BufferCache, Kernel, Message, ObjRef, Thread, ThreadState};
use super::store::QueueOf;
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

/// Checks a message's claims that need no memory: no kernel label (fault
/// reports and notifications are made by the kernel only; a user message
/// with their labels would be a forgery) and sizes within bounds.
pub fn check_info(info: MsgInfo) -> Result<(), Error> {
    if is_kernel_label(info.label()) {
        return Err(Error::InvalidArgument);
    }
    if info.payload_len() > PAYLOAD_MAX || info.caps() > MAX_TRANSFER_CAPS {
        return Err(Error::MessageTooLarge);
    }
    Ok(())
}

impl Kernel {
    /// Checks a message's claimed sizes, and that a sender with payload or
    /// capabilities has an IPC buffer.
    pub fn validate(&mut self, thread: ObjRef, info: MsgInfo) -> Result<(), Error> {
        check_info(info)?;
        if (info.payload_len() > 0 || info.caps() > 0) && self.ipc_buffer(thread, false).is_none() {
            return Err(Error::BadAddress);
        }
        Ok(())
    }

    /// The physical address of a thread's IPC buffer, if it is mapped
    /// (writable, when `for_writing`) on RAM a Pd pays for.
    ///
    /// The translation is kept in the thread and used again while
    /// `Objects::epoch` stays the same: no page table was written and
    /// no frame freed since, so the walk would give the same answer. The
    /// frame table is asked every time (RAM a Pd pays for).
    #[inline]
    pub fn ipc_buffer(&mut self, thread_ref: ObjRef, for_writing: bool) -> Option<u64> {
        let epoch = self.objects.epoch;
        let thread = self.objects.thread(thread_ref)?;
        let cache = thread.buffer_cache;
        if thread.ipc_buffer != 0 && cache.epoch == epoch && (cache.writable || !for_writing) {
            return self
                .objects
                .frames
                .is_user_data(crate::frames::Pfn::containing(cache.phys))
                .then_some(cache.phys);
        }
        self.ipc_buffer_uncached(thread_ref, for_writing)
    }

    /// [`Kernel::ipc_buffer`] when the thread's cache does not hold it:
    /// walks the page tables and keeps what it found.
    #[cold]
    #[inline(never)]
    fn ipc_buffer_uncached(&mut self, thread_ref: ObjRef, for_writing: bool) -> Option<u64> {
        let epoch = self.objects.epoch;
        let thread = self.objects.thread(thread_ref)?;
        if thread.ipc_buffer == 0 {
            return None;
        }
        let vaddr = thread.ipc_buffer;
        let root = self.objects.pd(thread.pd)?.root_table;
        let (phys, writable) = match self.user_page(root, vaddr, true) {
            Some(phys) => (phys, true),
            None => (self.user_page(root, vaddr, false)?, false),
        };
        if let Some(thread) = self.objects.thread_mut(thread_ref) {
            thread.buffer_cache = BufferCache {
                epoch,
                phys,
                writable,
            };
        }
        (writable || !for_writing).then_some(phys)
    }

    /// Moves `message` from `sender` (None: the kernel) into `receiver`'s
    /// registers and buffer.
    fn deliver(&mut self, sender: Option<ObjRef>, message: &Message, receiver: ObjRef) {
        let mut payload_len = 0;
        let mut transferred = 0u8;
        // Register-only messages (most) need neither buffer looked up.
        let carries = message.info.payload_len() > 0 || message.info.caps() > 0;
        let receiver_buffer = carries.then(|| self.ipc_buffer(receiver, true)).flatten();
        if let (Some(sender), Some(to)) = (sender, receiver_buffer)
            && let Some(from) = self.ipc_buffer(sender, false)
        {
            let wanted = message.info.payload_len().min(PAYLOAD_MAX);
            if self.objects.copy_user(from, to, wanted) {
                payload_len = wanted;
            }
            transferred = self.transfer_caps(sender, from, receiver, to, message.info.caps());
        }
        let Some(receiver) = self.objects.thread_mut(receiver) else {
            return;
        };
        let context = &mut receiver.context;
        context.rax = 0;
        context.rdi = message.badge;
        context.rsi = MsgInfo::new(message.info.label(), payload_len as u16, transferred).0;
        [context.rdx, context.r10, context.r8, context.r9] = message.words;
    }

    /// Copies up to `count` capabilities (GRANT needed) into the receiver's
    /// offered slots; stops at the first that cannot be copied.
    fn transfer_caps(
        &mut self,
        sender: ObjRef,
        from: u64,
        receiver: ObjRef,
        to: u64,
        count: usize,
    ) -> u8 {
        let (Some(sender), Some(receiver)) = (
            self.objects.thread(sender).map(|t| t.pd),
            self.objects.thread(receiver).map(|t| t.pd),
        ) else {
            return 0;
        };
        let mut transferred = 0;
        for i in 0..count.min(MAX_TRANSFER_CAPS) {
            let slot = |base: u64, offset: usize| {
                self.objects
                    .read_user_u32(base + (offset + 4 * i) as u64)
                    .map_or(CapSlot::NULL, CapSlot)
            };
            let source = slot(from, offset_of!(IpcBuffer, send_caps));
            let destination = slot(to, offset_of!(IpcBuffer, receive_slots));
            let cap = self.cap(sender, source);
            if cap.is_empty()
                || !cap.rights().contains(Rights::GRANT)
                || destination == CapSlot::NULL
            {
                break;
            }
            if self.install_cap(receiver, destination, cap).is_err() {
                break;
            }
            transferred += 1;
        }
        transferred
    }

    /// Takes the first thread of a queue in object `r`.
    fn pop_queue(&mut self, r: ObjRef, which: QueueOf) -> Option<ObjRef> {
        let pfn = self
            .objects
            .with_queue(r, which, |queue, objects| queue.pop_front(objects))
            .flatten()?;
        self.objects.live(pfn)
    }

    /// Appends thread `thread` to a queue in object `r`.
    fn push_queue(&mut self, r: ObjRef, which: QueueOf, thread: ObjRef) {
        self.objects.with_queue(r, which, |queue, objects| {
            queue.push_back(objects, thread.pfn)
        });
    }

    /// Removes thread `thread` from a queue in object `r`, wherever it is.
    pub fn remove_from_queue(&mut self, r: ObjRef, which: QueueOf, thread: ObjRef) {
        self.objects
            .with_queue(r, which, |queue, objects| queue.remove(objects, thread.pfn));
    }

    /// `Send` and `Call`.
    pub fn send(
        &mut self,
        endpoint: u64,
        info: MsgInfo,
        words: [u64; 4],
        is_call: bool,
    ) -> Outcome {
        let Some(me) = self.current else {
            return Outcome::Blocked;
        };
        let cap = self.own_cap(endpoint);
        let ep_ref = match self.check(&cap, ObjectKind::Endpoint, Rights::WRITE) {
            Ok(found) => found,
            Err(error) => return Outcome::Done(Err(error)),
        };
        if let Err(error) = self.validate(me, info) {
            return Outcome::Done(Err(error));
        }
        let message = Message {
            info,
            words,
            badge: cap.badge,
            is_call,
            is_fault: false,
        };
        match self.pop_queue(ep_ref, QueueOf::Receivers) {
            Some(receiver_ref) => {
                self.deliver(Some(me), &message, receiver_ref);
                let Some((caller, receiver)) = self.objects.threads2_mut(me, receiver_ref) else {
                    return Outcome::Done(Err(Error::InvalidState));
                };
                receiver.blocked_on = None;
                if is_call {
                    caller.state = ThreadState::AwaitingReply;
                    receiver.reply_to = Some(me);
                    self.run_directly(receiver_ref);
                    Outcome::Blocked
                } else {
                    self.make_ready(receiver_ref);
                    Outcome::Done(Ok(()))
                }
            }
            None => {
                if let Some(thread) = self.objects.thread_mut(me) {
                    thread.state = ThreadState::Sending;
                    thread.message = message;
                    thread.blocked_on = Some(ep_ref);
                }
                self.push_queue(ep_ref, QueueOf::Senders, me);
                Outcome::Blocked
            }
        }
    }

    /// Hands the CPU straight to `next`, which was blocked, when nothing of
    /// higher priority is ready; otherwise queues it.
    pub fn run_directly(&mut self, next: ObjRef) {
        let priority = self.objects.thread(next).map_or(0, |t| t.priority);
        let higher_ready = self.ready_at_or_above(priority.saturating_add(1));
        if higher_ready {
            self.make_ready(next);
        } else if let Some(thread) = self.objects.thread_mut(next) {
            thread.state = ThreadState::Runnable;
            self.current = Some(next);
        }
    }

    /// `Recv`: take a waiting message, or a pending bound notification, or block.
    pub fn receive(&mut self, endpoint: u64) -> Outcome {
        let Some(me) = self.current else {
            return Outcome::Blocked;
        };
        let cap = self.own_cap(endpoint);
        let ep_ref = match self.check(&cap, ObjectKind::Endpoint, Rights::READ) {
            Ok(found) => found,
            Err(error) => return Outcome::Done(Err(error)),
        };
        // A pending bound notification comes first (as in seL4), so that an
        // interrupt or timeout is never starved by a stream of messages.
        if let Some(bits) = self.take_bound_signal(me) {
            if let Some(thread) = self.objects.thread_mut(me) {
                set_notification_result(thread, bits);
            }
            return Outcome::Done(Ok(()));
        }
        if let Some(sender_ref) = self.pop_queue(ep_ref, QueueOf::Senders) {
            let Some(message) = self.objects.thread(sender_ref).map(|t| t.message) else {
                return Outcome::Done(Err(Error::InvalidState));
            };
            self.deliver(Some(sender_ref), &message, me);
            let Some((sender, receiver)) = self.objects.threads2_mut(sender_ref, me) else {
                return Outcome::Done(Err(Error::InvalidState));
            };
            sender.blocked_on = None;
            if message.is_fault {
                sender.state = ThreadState::Faulted;
            } else if message.is_call {
                sender.state = ThreadState::AwaitingReply;
                receiver.reply_to = Some(sender_ref);
            } else {
                self.wake_with(sender_ref, Ok(()));
            }
            return Outcome::Done(Ok(()));
        }
        if let Some(thread) = self.objects.thread_mut(me) {
            thread.state = ThreadState::Receiving;
            thread.blocked_on = Some(ep_ref);
        }
        self.push_queue(ep_ref, QueueOf::Receivers, me);
        Outcome::Blocked
    }

    /// `ReplyRecv`: answer the last caller, then receive.
    pub fn reply_receive(&mut self, endpoint: u64, info: MsgInfo, words: [u64; 4]) -> Outcome {
        let Some(me) = self.current else {
            return Outcome::Blocked;
        };
        if let Err(error) = self.validate(me, info) {
            return Outcome::Done(Err(error));
        }
        let caller = self.objects.thread_mut(me).and_then(|t| t.reply_to.take());
        if let Some(caller_ref) = caller
            && self
                .objects
                .thread(caller_ref)
                .is_some_and(|c| c.state == ThreadState::AwaitingReply)
        {
            let message = Message {
                info,
                words,
                badge: 0,
                is_call: false,
                is_fault: false,
            };
            self.deliver(Some(me), &message, caller_ref);
            self.make_ready(caller_ref);
        }
        self.receive(endpoint)
    }

    /// The bits pending on the notification bound to `thread`, taken.
    fn take_bound_signal(&mut self, thread: ObjRef) -> Option<u64> {
        let bound = self.objects.thread(thread)?.bound?;
        let notification = self.objects.notification_mut(bound)?;
        (notification.word != 0).then(|| core::mem::take(&mut notification.word))
    }

    /// `Signal`: OR the badge into the word and wake a waiter if there is one.
    pub fn signal(&mut self, slot: u64) -> Result<(), Error> {
        let cap = self.own_cap(slot);
        let r = self.check(&cap, ObjectKind::Notification, Rights::WRITE)?;
        self.signal_object(r, if cap.badge == 0 { 1 } else { cap.badge });
        Ok(())
    }

    /// Signals `bits` on a notification (also used by interrupts).
    pub fn signal_object(&mut self, r: ObjRef, bits: u64) {
        let Some(notification) = self.objects.notification_mut(r) else {
            return;
        };
        notification.word |= bits;
        let bound = notification.bound;
        if let Some(waiter_ref) = self.pop_queue(r, QueueOf::Waiters) {
            let bits = self
                .objects
                .notification_mut(r)
                .map_or(0, |n| core::mem::take(&mut n.word));
            if let Some(waiter) = self.objects.thread_mut(waiter_ref) {
                waiter.context.rdi = bits;
            }
            self.cancel_timeout(waiter_ref);
            self.wake_with(waiter_ref, Ok(()));
            return;
        }
        let Some(thread_ref) = bound else { return };
        let Some(thread) = self.objects.thread(thread_ref) else {
            return;
        };
        if thread.state != ThreadState::Receiving {
            return;
        }
        if let Some(endpoint) = thread.blocked_on {
            self.remove_from_queue(endpoint, QueueOf::Receivers, thread_ref);
        }
        let bits = self
            .objects
            .notification_mut(r)
            .map_or(0, |n| core::mem::take(&mut n.word));
        if let Some(thread) = self.objects.thread_mut(thread_ref) {
            set_notification_result(thread, bits);
        }
        self.wake_with(thread_ref, Ok(()));
    }

    /// `Wait`: take the bits, or block until there are some (or until
    /// `timeout_ms` passed, when it is not 0).
    pub fn wait(&mut self, slot: u64, timeout_ms: u64) -> Outcome {
        let Some(me) = self.current else {
            return Outcome::Blocked;
        };
        let cap = self.own_cap(slot);
        let r = match self.check(&cap, ObjectKind::Notification, Rights::READ) {
            Ok(found) => found,
            Err(error) => return Outcome::Done(Err(error)),
        };
        let Some(notification) = self.objects.notification_mut(r) else {
            return Outcome::Done(Err(Error::WrongObjectKind));
        };
        if notification.word != 0 {
            let bits = core::mem::take(&mut notification.word);
            if let Some(thread) = self.objects.thread_mut(me) {
                thread.context.rdi = bits;
            }
            return Outcome::Done(Ok(()));
        }
        self.push_queue(r, QueueOf::Waiters, me);
        let deadline = (timeout_ms != 0).then(|| {
            let ticks = timeout_ms.saturating_mul(self.tsc_per_ms);
            hw::tsc().saturating_add(ticks).max(1)
        });
        let timed_waiters = self.timed_waiters;
        let Some(thread) = self.objects.thread_mut(me) else {
            return Outcome::Blocked;
        };
        thread.state = ThreadState::Waiting;
        thread.blocked_on = Some(r);
        if let Some(deadline) = deadline {
            thread.deadline = deadline;
            thread.next_timed = timed_waiters;
            self.timed_waiters = Some(me.pfn);
        }
        Outcome::Blocked
    }

    /// Queues or delivers a kernel-made message (a fault report) from `sender`
    /// on endpoint `ep_ref`; the sender ends up `Faulted` either way.
    pub fn send_kernel_message(&mut self, sender_ref: ObjRef, ep_ref: ObjRef, message: Message) {
        if self.objects.endpoint_mut(ep_ref).is_none() {
            if let Some(sender) = self.objects.thread_mut(sender_ref) {
                sender.state = ThreadState::Faulted;
            }
            return;
        }
        if let Some(receiver_ref) = self.pop_queue(ep_ref, QueueOf::Receivers) {
            self.deliver(None, &message, receiver_ref);
            if let Some(sender) = self.objects.thread_mut(sender_ref) {
                sender.state = ThreadState::Faulted;
            }
            self.make_ready(receiver_ref);
        } else {
            if let Some(sender) = self.objects.thread_mut(sender_ref) {
                sender.state = ThreadState::Sending;
                sender.message = message;
                sender.blocked_on = Some(ep_ref);
            }
            self.push_queue(ep_ref, QueueOf::Senders, sender_ref);
        }
    }

    /// Takes `thread` off the list of timed waiters, if it is on it.
    pub fn cancel_timeout(&mut self, thread: ObjRef) {
        let Some(target) = self.objects.thread_mut(thread) else {
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
            let Some((_, waiter)) = self.objects.thread_at_mut(pfn) else {
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
        let now = hw::tsc();
        let mut cursor = self.timed_waiters;
        while let Some(pfn) = cursor {
            let Some((r, waiter)) = self.objects.thread_at(pfn) else {
                return;
            };
            cursor = waiter.next_timed;
            if waiter.deadline == 0 || waiter.deadline > now {
                continue;
            }
            let (state, blocked_on) = (waiter.state, waiter.blocked_on);
            self.cancel_timeout(r);
            if state == ThreadState::Waiting {
                if let Some(notification) = blocked_on {
                    self.remove_from_queue(notification, QueueOf::Waiters, r);
                }
                if let Some(waiter) = self.objects.thread_mut(r) {
                    waiter.context.rdi = 0;
                }
                self.wake_with(r, Ok(()));
            }
        }
    }
}

/// Puts a notification's `bits` into a receiver's result registers.
fn set_notification_result(thread: &mut Thread, bits: u64) {
    let context = &mut thread.context;
    context.rax = 0;
    context.rdi = 0;
    context.rsi = MsgInfo::new(NOTIFICATION_LABEL, 0, 0).0;
    context.rdx = bits;
}
