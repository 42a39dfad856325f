//! Destroying objects. Every thread blocked on a destroyed object is woken
//! with `ObjectDestroyed`; a destroyed Pd takes everything it paid for with
//! it, and its whole quota goes back to the Pd that paid for it.

#![forbid(unsafe_code)]

use super::hw;
use super::object::{Kernel, MAX_PORT_USERS, ObjRef, Object, ThreadState};
use super::store::QueueOf;
use crate::frames::{FrameUse, Pfn};
use crate::ports;
use crate::quota::Quota;
use arbor_abi::Error;

impl Kernel {
    /// Destroys the object `r` names, if it still exists. A Pd takes every
    /// object it paid for with it, child Pds included, and an IoPorts object
    /// every IoPorts object made from it; both walks are loops, never
    /// recursion, so no depth a user builds can overflow the kernel stack.
    pub fn destroy(&mut self, r: ObjRef) {
        match self.objects.get(r) {
            None => {}
            Some(Object::Pd(_)) => self.destroy_pd_tree(r),
            Some(Object::IoPorts(_)) => {
                self.destroy_one(r);
                self.destroy_orphaned_io_ports();
            }
            Some(_) => self.destroy_one(r),
        }
    }

    /// Destroys one object that is not a Pd; nothing recurses from here.
    fn destroy_one(&mut self, r: ObjRef) {
        let Some(object) = self.objects.get(r) else {
            return;
        };
        match object {
            Object::Thread(_) => self.destroy_thread(r),
            Object::Endpoint(_) => {
                for which in [QueueOf::Senders, QueueOf::Receivers] {
                    while let Some(thread) = self.take_waiter(r, which) {
                        self.wake_destroyed(thread);
                    }
                }
            }
            Object::Notification(notification) => {
                let bound = notification.bound;
                while let Some(thread) = self.take_waiter(r, QueueOf::Waiters) {
                    self.wake_destroyed(thread);
                }
                if let Some(thread) = bound.and_then(|t| self.objects.thread_mut(t)) {
                    thread.bound = None;
                }
            }
            Object::Dataspace(_) => self.destroy_dataspace(r),
            Object::Irq(irq) => {
                let line = irq.line;
                self.unlink_sharer(line, r);
            }
            Object::IoPorts(_) => {
                // Revoke: it grants nothing any more, and every Pd it was
                // enabled in gets the ports that other objects still grant.
                let users = self
                    .objects
                    .io_ports_mut(r)
                    .map(|ports| core::mem::replace(&mut ports.enabled_in, [None; MAX_PORT_USERS]))
                    .unwrap_or_default();
                for user in users.iter().flatten() {
                    self.recompute_port_access(*user);
                }
            }
            Object::Pd(_) | Object::Console | Object::Platform => return,
        }
        self.free_frame(r.pfn);
    }

    /// Takes the first thread waiting in a queue of object `r`.
    fn take_waiter(&mut self, r: ObjRef, which: QueueOf) -> Option<Pfn> {
        self.objects
            .with_queue(r, which, |queue, objects| queue.pop_front(objects))
            .flatten()
    }

    /// Revokes every mapping of a dataspace and frees its memory.
    fn destroy_dataspace(&mut self, r: ObjRef) {
        let Some(dataspace) = self.objects.dataspace(r) else {
            return;
        };
        let (base, pages, owned) = (
            dataspace.base,
            dataspace.pages,
            !dataspace.device && !dataspace.kernel_ram,
        );
        // Bounded by the page tables that exist in each mapping's range
        // (see `kernel::mappings`), not by claimed sizes.
        self.revoke_mappings(r);
        if owned {
            for page in 0..pages {
                self.free_frame(base.offset(page));
            }
        }
    }

    /// Destroys every IoPorts object whose origin no longer exists, until
    /// none is left (a chain of derivations dies in passes, not by
    /// recursion). Each pass scans the frame table once.
    fn destroy_orphaned_io_ports(&mut self) {
        loop {
            let mut destroyed_any = false;
            let mut from = Pfn(0);
            while let Some(pfn) = self.objects.frames.next_object(from) {
                from = pfn.offset(1);
                let Some(r) = self.objects.live(pfn) else {
                    continue;
                };
                if let Some(Object::IoPorts(ports)) = self.objects.get(r)
                    && ports
                        .origin
                        .is_some_and(|origin| self.objects.get(origin).is_none())
                {
                    self.destroy_one(r);
                    destroyed_any = true;
                }
            }
            if !destroyed_any {
                return;
            }
        }
    }

    /// Rebuilds `pd_ref`'s I/O bitmap from the IoPorts objects that are live
    /// and enabled in it (see [`crate::ports`]), and reloads it if it is the
    /// CPU's. Scans the frame table once.
    pub fn recompute_port_access(&mut self, pd_ref: ObjRef) {
        let Some(pd) = self.objects.pd(pd_ref) else {
            return;
        };
        let first = Pfn(pd.io_bitmap);
        if first.0 == 0 {
            return;
        }
        if let Some(bitmap) = self.objects.io_bitmap_mut(first) {
            ports::deny_all(bitmap);
        }
        let mut from = Pfn(0);
        while let Some(pfn) = self.objects.frames.next_object(from) {
            from = pfn.offset(1);
            let grant = match self.objects.live(pfn).and_then(|r| self.objects.get(r)) {
                Some(Object::IoPorts(grant)) if grant.enabled_in.contains(&Some(pd_ref)) => {
                    grant.range
                }
                _ => continue,
            };
            if let Some(bitmap) = self.objects.io_bitmap_mut(first) {
                ports::allow(bitmap, grant);
            }
        }
        if self.loaded_pd == Some(pd_ref) {
            self.loaded_io_bitmap = 0;
            self.switch_to(pd_ref);
        }
    }

    fn wake_destroyed(&mut self, pfn: Pfn) {
        let Some(r) = self.objects.live(pfn) else {
            return;
        };
        self.cancel_timeout(r);
        let Some(thread) = self.objects.thread_mut(r) else {
            return;
        };
        thread.blocked_on = None;
        if thread.state == ThreadState::Sending && thread.message.is_fault {
            // A faulted thread stays stopped; only its report is lost.
            thread.state = ThreadState::Faulted;
        } else {
            self.wake_with(r, Err(Error::ObjectDestroyed));
        }
    }

    fn destroy_thread(&mut self, r: ObjRef) {
        self.cancel_timeout(r);
        let Some(thread) = self.objects.thread(r) else {
            return;
        };
        let (state, blocked_on, bound) = (thread.state, thread.blocked_on, thread.bound);
        match state {
            ThreadState::Runnable if self.current != Some(r) => self.unqueue_ready(r),
            ThreadState::Sending | ThreadState::Receiving | ThreadState::Waiting => {
                if let Some(object) = blocked_on {
                    for which in [QueueOf::Senders, QueueOf::Receivers, QueueOf::Waiters] {
                        self.remove_from_queue(object, which, r);
                    }
                }
            }
            _ => {}
        }
        let caller = self.objects.thread_mut(r).and_then(|t| t.reply_to.take());
        if let Some(caller) = caller
            && self
                .objects
                .thread(caller)
                .is_some_and(|c| c.state == ThreadState::AwaitingReply)
        {
            self.wake_with(caller, Err(Error::ObjectDestroyed));
        }
        if let Some(notification) = bound.and_then(|n| self.objects.notification_mut(n)) {
            notification.bound = None;
        }
        if self.current == Some(r) {
            self.current = None;
        }
    }

    /// Destroys the Pd `root` and, depth first, every Pd it paid for, with a
    /// loop that walks down to a Pd with no child Pds, finishes it, and
    /// climbs back to its payer (where the scan resumes after the child's
    /// frame). The kernel stack use is the same for a chain of 2 or 20,000.
    /// The work is bounded by what exists: each Pd's owned frames are
    /// scanned about twice.
    fn destroy_pd_tree(&mut self, root: ObjRef) {
        let mut current = root;
        let mut from = Pfn(0);
        loop {
            if let Some(child) = self.destroy_objects_until_child_pd(current, from) {
                current = child;
                from = Pfn(0);
                continue;
            }
            let payer = self.objects.pd(current).and_then(|pd| pd.payer);
            self.finish_pd(current);
            if current == root {
                return;
            }
            match payer {
                Some(payer) if self.objects.pd(payer).is_some() => {
                    from = current.pfn;
                    current = payer;
                }
                _ => return,
            }
        }
    }

    /// Destroys the objects `pd` paid for, from frame `from` on, until it
    /// meets a Pd object: that child is returned, to be destroyed first.
    /// The scan ends with the Pd's last object, not at the end of RAM.
    fn destroy_objects_until_child_pd(&mut self, pd: ObjRef, from: Pfn) -> Option<ObjRef> {
        let mut from = from;
        while self.objects.pd(pd).is_some_and(|pd| pd.objects > 0)
            && let Some((pfn, usage)) = self.objects.frames.next_owned_by(pd.pfn, from)
        {
            from = pfn.offset(1);
            if usage != FrameUse::Object {
                continue;
            }
            let Some(r) = self.objects.live(pfn) else {
                continue;
            };
            if matches!(self.objects.get(r), Some(Object::Pd(_))) {
                return Some(r);
            }
            self.destroy(r);
        }
        None
    }

    /// Frees what a Pd with no objects left still holds — page tables,
    /// capability tables, its I/O bitmap, its top-level table and the Pd
    /// object itself — and gives its whole quota back to its payer.
    fn finish_pd(&mut self, r: ObjRef) {
        let Some(pd) = self.objects.pd(r) else {
            return;
        };
        let (io_bitmap, root_table, pcid, payer) = (pd.io_bitmap, pd.root_table, pd.pcid, pd.payer);
        if self.loaded_pd == Some(r) {
            hw::activate_kernel_tables();
            self.loaded_pd = None;
        }
        if self.loaded_io_bitmap != 0 && self.loaded_io_bitmap == io_bitmap {
            hw::load_io_bitmap(None);
            self.loaded_io_bitmap = 0;
        }
        // Its records lie in lists of dataspaces that may outlive it.
        self.drop_mapping_records(r);
        // Every byte a Pd is charged is a frame it owns, so the scan ends
        // with its last frame, not at the end of RAM.
        let mut from = Pfn(0);
        while self.objects.pd(r).is_some_and(|pd| pd.ram.used > 0)
            && let Some((pfn, _)) = self.objects.frames.next_owned_by(r.pfn, from)
        {
            self.free_frame(pfn);
            from = pfn.offset(1);
        }
        self.free_frame(Pfn::containing(root_table));
        self.release_pcid(pcid);
        let Some(pd) = self.objects.pd_mut(r) else {
            return;
        };
        let (ram, caps) = (pd.ram.limit, pd.caps.limit);
        pd.ram = Quota::default();
        pd.caps = Quota::default();
        if let Some(payer) = payer.and_then(|p| self.objects.pd_mut(p)) {
            payer.ram.absorb(Quota {
                limit: ram,
                used: 0,
            });
            payer.caps.absorb(Quota {
                limit: caps,
                used: 0,
            });
        }
        self.free_frame(r.pfn);
    }

    /// A free address-space identifier (0 = none; the Pd then flushes on every switch).
    pub fn allocate_pcid(&mut self) -> u16 {
        if !self.pcid_enabled {
            return 0;
        }
        for (word_index, word) in self.pcids.iter_mut().enumerate() {
            if *word != u64::MAX {
                let bit = (!*word).trailing_zeros();
                *word |= 1 << bit;
                let pcid = word_index as u32 * 64 + bit;
                if pcid != 0 {
                    return pcid as u16;
                }
            }
        }
        0
    }

    /// Returns an address-space identifier to the pool.
    pub fn release_pcid(&mut self, pcid: u16) {
        if pcid != 0 {
            self.pcids[usize::from(pcid / 64)] &= !(1 << (pcid % 64));
        }
    }
}
