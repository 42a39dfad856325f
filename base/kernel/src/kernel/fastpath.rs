//! The IPC fast path: `Call` and `ReplyRecv` with register-only messages
//! between a thread and one that is already waiting, when the switch goes
//! to the thread the scheduler would pick anyway (seL4's fastpath is the
//! model). The syscall entry stub calls it before anything else
//! (`entry::syscall_fast`), on the caller's live registers, and it skips
//! the general machinery: message staging, IPC-buffer lookups, run-queue
//! traffic, `choose_next`, `switch_to`, and copies of registers a system
//! call does not keep. What it does, in order:
//!
//! - one checked lookup per object ([`Objects::ipc_partners`]): the
//!   running thread, the endpoint its capability names (from the thread's
//!   capability cache while `Objects::epoch` says no capability table
//!   changed, `Kernel::cap_of`), the partner thread (the first waiting
//!   receiver, or the caller to reply to), and the partner's Pd only when
//!   its address space is not cached in the thread (`SpaceCache`);
//! - every check the slow path makes — the capability's kind, rights and
//!   generation, the badge delivered, the refusal of kernel labels — and a
//!   message with a payload, capabilities or any bit above the label, a
//!   queue in an unexpected state, a pending bound notification, a thread
//!   of higher (for replies: equal or higher) priority ready to run, a
//!   partner that would not return through `sysretq` to a canonical
//!   address, or a switch that needs another I/O bitmap sends the call
//!   down the slow path, which then does exactly what it always did;
//! - the switch: the caller's return state into its context, the partner's
//!   into the entry frame with the message (`Frame::resume_from_syscall`),
//!   thread states and the endpoint's queue, and the partner's address
//!   space: segments reset, CR3 with the PCID and (when the CPU has PCIDs)
//!   the bit that keeps its TLB entries, a flush when its mappings changed.
//!   The callee-saved registers never pass through the frame: the entry
//!   stub saves them from the CPU into the caller's context and loads the
//!   partner's, with the two contexts this returns.
//!
//! The host tests run both paths on the same sequences and compare every
//! thread (`tests.rs`, "fast path"), including the cases the caches must
//! see at once: a capability replaced, deleted or its endpoint destroyed,
//! and a Pd whose TLB went stale.
//!
//! Measured with QEMU TCG `-icount shift=0,align=off,sleep=off` (rdtsc
//! counts retired instructions), scenario `bench_ipc`: `ipc_roundtrip`
//! (bench_core calls bench_partner in another Pd, one word) 593
//! instructions, median of 100,000, the same in two runs (983 before this
//! path was rebuilt, 2,419 with no fast path). Where they go, from a trace
//! of every executed instruction (`tools/arbor/src/bench/trace_breakdown.py`,
//! see `tools/arbor/BENCH.md`): user code of both sides 28; the entry and
//! exit stub 84 (two system calls: the caller-saved registers into the
//! frame and back, the callee-saved ones between the CPU and the two
//! contexts, `sysretq`); the fast path itself 481: frame-table-checked
//! object lookups 151, capability cache 51, message, priority and return
//! checks 54, return state saved and loaded 39, address-space switch 27,
//! thread states and queue 98, entry glue (`with_kernel`, dispatch on the
//! call, prologue) 61. Each object reached costs a frame-table check; that
//! is the price of accessors that never trust a frame number.

#![forbid(unsafe_code)]

use super::hw;
use super::object::{Kernel, ObjRef, Object, Pd, SpaceCache, Thread, ThreadState};
use super::store::{IpcPartners, Objects, Space};
use crate::context::{Frame, SYSCALL_MARK};
use arbor_abi::{ObjectKind, Rights, Syscall, USER_END, is_kernel_label};

/// The `MsgInfo` a receiver sees for a register-only message `info`, if
/// the fast path may carry it: a label alone (no payload length, no
/// capability count, nothing else above the label) that is not one of the
/// kernel's labels. The receiver sees the same word.
#[inline(always)]
fn register_only(info: u64) -> Option<u64> {
    (info >> 32 == 0 && !is_kernel_label(info as u32)).then_some(info)
}

/// The endpoint that `me` names in `slot` (through its capability cache,
/// `Kernel::cap_of`), if the capability has `rights`, with its badge (the
/// endpoint's generation is checked when it is looked up).
#[inline(always)]
fn endpoint_of(objects: &Objects, me: &Thread, slot: u64, rights: Rights) -> Option<(ObjRef, u64)> {
    let cap = Kernel::cap_of(objects, me, slot);
    (cap.kind == ObjectKind::Endpoint as u8 && cap.rights().contains(rights))
        .then_some((Kernel::cap_ref(&cap), cap.badge))
}

impl Kernel {
    /// Handles the system call in `frame` (the current thread's registers)
    /// if it qualifies, leaving the next thread's context in `frame`; false
    /// when the slow path must handle it (nothing has been changed then).
    #[inline(always)]
    pub fn ipc_fastpath(&mut self, frame: &mut Frame) -> bool {
        let entry = *frame;
        match self.ipc_fast_switch(frame) {
            Some((save_to, load_from)) => {
                entry.save_callee_saved(save_to);
                frame.load_callee_saved(load_from);
                true
            }
            None => false,
        }
    }

    /// [`Kernel::ipc_fastpath`] but for the callee-saved registers: when it
    /// takes the call, `frame` holds the next thread's context but for
    /// `rbx`, `rbp` and `r12`-`r15`, which are to be saved into the first
    /// context returned (the thread that made the call) and loaded from the
    /// second (the thread that runs next). The target's syscall entry stub
    /// moves them between the CPU's registers and those contexts directly.
    #[inline(always)]
    pub fn ipc_fast_switch(&mut self, frame: &mut Frame) -> Option<(&mut Frame, &Frame)> {
        match frame.rax {
            raw if raw == Syscall::Call as u64 => self.fast_call(frame),
            raw if raw == Syscall::ReplyRecv as u64 => self.fast_reply_recv(frame),
            _ => None,
        }
    }

    /// `Call` to an endpoint where a receiver waits: the receiver runs at once.
    #[inline(always)]
    fn fast_call(&mut self, frame: &mut Frame) -> Option<(&mut Frame, &Frame)> {
        let info = register_only(frame.rsi)?;
        let (Some(me), false) = (self.current, self.reschedule) else {
            return None;
        };
        let slot = frame.rdi;
        let mut badge = 0;
        let IpcPartners {
            me: caller,
            endpoint: queues,
            partner_ref: receiver,
            partner: waiting,
            space,
        } = self.objects.ipc_partners(
            me,
            self.loaded_pd,
            |objects, me| {
                let (endpoint, cap_badge) = endpoint_of(objects, me, slot, Rights::WRITE)?;
                badge = cap_badge;
                Some(endpoint)
            },
            |objects, _, queues| objects.live(queues.receivers.front()?),
        )?;
        // The receiver waits on this endpoint (first in its queue), and no
        // thread of higher priority is ready; its context returns through
        // `sysretq` to a canonical address; its address space needs no
        // flush and no other I/O bitmap.
        if waiting.state != ThreadState::Receiving
            || self
                .ready
                .checked_shr(u32::from(waiting.priority) + 1)
                .unwrap_or(0)
                != 0
            || !returns_by_sysret(&waiting.context)
            || !plain_switch(&space, self.loaded_io_bitmap)
        {
            return None;
        }
        // Committed: nothing below can fail.
        frame.save_syscall_return(&mut caller.context);
        caller.state = ThreadState::AwaitingReply;
        waiting.state = ThreadState::Runnable;
        waiting.blocked_on = None;
        waiting.reply_to = Some(me);
        queues
            .receivers
            .pop_known_front(receiver.pfn, waiting.next.take());
        frame.resume_from_syscall(&waiting.context, badge, info);
        self.current = Some(receiver);
        Kernel::load_space(&mut self.loaded_pd, waiting, space);
        Some((&mut caller.context, &waiting.context))
    }

    /// `ReplyRecv` from a server whose caller waits, on an endpoint with no
    /// thread queued: the caller runs at once, the server waits.
    #[inline(always)]
    fn fast_reply_recv(&mut self, frame: &mut Frame) -> Option<(&mut Frame, &Frame)> {
        let info = register_only(frame.rsi)?;
        let (Some(me), false) = (self.current, self.reschedule) else {
            return None;
        };
        let slot = frame.rdi;
        let mut endpoint = None;
        let IpcPartners {
            me: server,
            endpoint: queues,
            partner_ref: caller,
            partner: waiting,
            space,
        } = self.objects.ipc_partners(
            me,
            self.loaded_pd,
            |objects, me| {
                let (found, _) = endpoint_of(objects, me, slot, Rights::READ)?;
                // A pending bound notification ends the receive at once.
                if let Some(bound) = me.bound
                    && let Some(Object::Notification(notification)) = objects.get(bound)
                    && notification.word != 0
                {
                    return None;
                }
                endpoint = Some(found);
                endpoint
            },
            // No sender waiting (or the receive would take it at once) and
            // no other receiver (so the server can queue without a walk).
            |_, me, queues| {
                (queues.senders.is_empty() && queues.receivers.is_empty())
                    .then_some(me.reply_to)
                    .flatten()
            },
        )?;
        // The slow path queues the caller behind ready threads of its own
        // priority; only when there are none is running it now the same.
        if waiting.state != ThreadState::AwaitingReply
            || self
                .ready
                .checked_shr(u32::from(waiting.priority))
                .unwrap_or(0)
                != 0
            || !returns_by_sysret(&waiting.context)
            || !plain_switch(&space, self.loaded_io_bitmap)
        {
            return None;
        }
        // Committed: nothing below can fail.
        frame.save_syscall_return(&mut server.context);
        server.reply_to = None;
        server.state = ThreadState::Receiving;
        server.blocked_on = endpoint;
        server.next = None;
        waiting.state = ThreadState::Runnable;
        waiting.blocked_on = None;
        queues.receivers.push_into_empty(me.pfn);
        frame.resume_from_syscall(&waiting.context, 0, info);
        self.current = Some(caller);
        Kernel::load_space(&mut self.loaded_pd, waiting, space);
        Some((&mut server.context, &waiting.context))
    }

    /// Loads the partner's address space, if it is not the one loaded, as
    /// `switch_to` does (flushing its TLB entries when they are stale),
    /// and keeps what it took in the partner's `SpaceCache`.
    #[inline(always)]
    fn load_space(loaded_pd: &mut Option<ObjRef>, partner: &Thread, space: Option<Space<&mut Pd>>) {
        match space {
            None => {}
            Some(Space::Cached { pd_ref, cr3, .. }) => {
                hw::reset_user_segments();
                hw::load_cr3(cr3);
                *loaded_pd = Some(pd_ref);
            }
            Some(Space::Fresh { pd_ref, pd, epoch }) => {
                hw::reset_user_segments();
                hw::activate(pd.root_table, pd.pcid, pd.tlb_stale);
                pd.tlb_stale = false;
                *loaded_pd = Some(pd_ref);
                partner.space_cache.set(SpaceCache {
                    epoch,
                    cr3: hw::cr3_value(pd.root_table, pd.pcid, false),
                    io_bitmap: pd.io_bitmap,
                });
            }
        }
    }
}

/// Whether a blocked thread's `context` goes back to user mode through
/// `sysretq`: it entered through `syscall` and returns to a canonical user
/// address (anything else takes the slow path and `iretq`).
#[inline(always)]
fn returns_by_sysret(context: &Frame) -> bool {
    context.vector == SYSCALL_MARK && context.rip < USER_END
}

/// Whether switching to `space` (None: the loaded Pd) keeps the I/O
/// bitmap that is loaded (the slow path's `switch_to` copies another).
#[inline(always)]
fn plain_switch(space: &Option<Space<&mut Pd>>, loaded_io_bitmap: u64) -> bool {
    match space {
        None => true,
        Some(Space::Cached { io_bitmap, .. }) => *io_bitmap == loaded_io_bitmap,
        Some(Space::Fresh { pd, .. }) => pd.io_bitmap == loaded_io_bitmap,
    }
}
