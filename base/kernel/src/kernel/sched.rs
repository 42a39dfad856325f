//! Scheduling: fixed priorities, round robin within a priority. The running
//! thread is not in a run queue; it keeps the CPU until it blocks, yields,
//! is preempted by the timer, or a higher-priority thread becomes ready.

#![forbid(unsafe_code)]

use super::object::{Kernel, ObjRef, ThreadState};
use crate::context::Frame;
use arbor_abi::Error;

impl Kernel {
    /// Keeps bit `priority` of `ready` in step with its run queue.
    fn note_queue(&mut self, priority: usize) {
        let bit = 1 << priority;
        if self.run_queues[priority].is_empty() {
            self.ready &= !bit;
        } else {
            self.ready |= bit;
        }
    }

    /// Whether a ready thread has a priority of `priority` or more.
    pub fn ready_at_or_above(&self, priority: u8) -> bool {
        self.ready.checked_shr(u32::from(priority)).unwrap_or(0) != 0
    }

    /// Makes a blocked thread ready to run.
    pub fn make_ready(&mut self, r: ObjRef) {
        let Some(thread) = self.objects.thread_mut(r) else {
            return;
        };
        if thread.state == ThreadState::Runnable {
            // Running or queued already; a second queue entry would corrupt the queue.
            return;
        }
        thread.state = ThreadState::Runnable;
        thread.blocked_on = None;
        let priority = thread.priority;
        // The current thread is never in a run queue: `choose_next` queues
        // it when it switches away. It can be woken while still current when
        // it blocked and the CPU idled until an interrupt signalled it (an
        // IRQ driver's bound notification); queueing it then would leave a
        // stale entry that later resumes it while blocked.
        if self.current == Some(r) {
            return;
        }
        self.run_queues[usize::from(priority)].push_back(&mut self.objects, r.pfn);
        self.note_queue(usize::from(priority));
        if let Some((_, current)) = self.current_thread()
            && priority > current.priority
        {
            self.reschedule = true;
        }
    }

    /// Ends a blocked operation of `r` with `result` in its `rax` and makes it ready.
    pub fn wake_with(&mut self, r: ObjRef, result: Result<(), Error>) {
        if let Some(thread) = self.objects.thread_mut(r) {
            thread.context.rax = result.err().map_or(0, |e| e as u64);
            self.make_ready(r);
        }
    }

    /// The highest priority with a ready thread (from the `ready` bitmap,
    /// which `note_queue` keeps in step with the run queues).
    #[inline]
    fn highest_ready(&self) -> Option<usize> {
        (self.ready != 0).then(|| (u32::BITS - 1 - self.ready.leading_zeros()) as usize)
    }

    /// Picks the thread to run next (possibly the current one); None = idle.
    pub fn choose_next(&mut self) -> Option<ObjRef> {
        let current = self
            .current_thread()
            .filter(|(_, t)| t.state == ThreadState::Runnable)
            .map(|(r, t)| (r, t.priority));
        // A current thread that blocked is current no longer: if something
        // wakes it while the CPU idles, it is queued like any other thread.
        if current.is_none() {
            self.current = None;
        }
        let highest = self.highest_ready();
        if let Some((r, priority)) = current {
            let wanted = highest.is_some_and(|p| {
                p > usize::from(priority) || (self.reschedule && p == usize::from(priority))
            });
            if !wanted {
                self.reschedule = false;
                return Some(r);
            }
            self.run_queues[usize::from(priority)].push_back(&mut self.objects, r.pfn);
            self.note_queue(usize::from(priority));
        }
        self.reschedule = false;
        let highest = self.highest_ready()?;
        let pfn = self.run_queues[highest].pop_front(&mut self.objects);
        self.note_queue(highest);
        let pfn = pfn?;
        let next = self.objects.live(pfn);
        self.current = next;
        next
    }

    /// Takes a thread out of the run queue it is in (before destroying it).
    pub fn unqueue_ready(&mut self, r: ObjRef) {
        if let Some(thread) = self.objects.thread(r) {
            let priority = usize::from(thread.priority);
            self.run_queues[priority].remove(&mut self.objects, r.pfn);
            self.note_queue(priority);
        }
    }

    /// Puts the context of the thread to run next into `frame` and switches
    /// to its Pd; false when no thread is ready (the CPU should idle).
    pub fn next_context(&mut self, frame: &mut Frame) -> bool {
        let Some(next) = self.choose_next() else {
            return false;
        };
        let Some(thread) = self.objects.thread(next) else {
            return false;
        };
        *frame = thread.context;
        frame.sanitize_for_user();
        let pd = thread.pd;
        self.switch_to(pd);
        true
    }
}
