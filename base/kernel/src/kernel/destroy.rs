//! Destroying objects. Every thread blocked on a destroyed object is woken
//! with `ObjectDestroyed`; a destroyed Pd takes everything it paid for with
//! it, and its whole quota goes back to the Pd that paid for it.

use super::object::{
    Kernel, MAX_PORT_USERS, ObjRef, Object, Thread, ThreadLinks, ThreadState, io_bitmap,
};
use super::space;
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
        match self.get(r) {
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
        let Some(object) = self.get(r) else { return };
        match object {
            Object::Thread(thread) => self.destroy_thread(r, thread),
            Object::Endpoint(endpoint) => {
                let mut waiting = endpoint.senders;
                while let Some(pfn) = waiting.pop_front(&mut ThreadLinks) {
                    self.wake_destroyed(pfn);
                }
                let mut waiting = endpoint.receivers;
                while let Some(pfn) = waiting.pop_front(&mut ThreadLinks) {
                    self.wake_destroyed(pfn);
                }
            }
            Object::Notification(notification) => {
                let mut waiting = notification.waiters;
                while let Some(pfn) = waiting.pop_front(&mut ThreadLinks) {
                    self.wake_destroyed(pfn);
                }
                if let Some(thread) = notification.bound.and_then(|t| self.thread(t)) {
                    thread.bound = None;
                }
            }
            Object::Dataspace(dataspace) => {
                let base = dataspace.base.address();
                let frames = base..base + dataspace.pages * 4096;
                // Bounded by the page tables that exist in each mapping's
                // range (see `space::for_each_leaf`), not by claimed sizes.
                for mapping in dataspace.mappings.iter().flatten() {
                    let Some(pd) = self.pd(mapping.pd) else {
                        continue;
                    };
                    space::unmap_frames_in(
                        pd.root_table,
                        mapping.vaddr,
                        mapping.pages,
                        frames.clone(),
                    );
                    pd.tlb_stale = true;
                }
                if !dataspace.device && !dataspace.kernel_ram {
                    for page in 0..dataspace.pages {
                        self.free_frame(dataspace.base.offset(page));
                    }
                }
            }
            Object::Irq(irq) => {
                crate::arch::interrupts::mask_line(irq.line);
                if let Some(slot) = self.irqs.get_mut(usize::from(irq.line)) {
                    *slot = None;
                }
            }
            Object::IoPorts(ports) => {
                // Revoke: it grants nothing any more, and every Pd it was
                // enabled in gets the ports that other objects still grant.
                let users = core::mem::replace(&mut ports.enabled_in, [None; MAX_PORT_USERS]);
                for user in users.iter().flatten() {
                    self.recompute_port_access(*user);
                }
            }
            Object::Pd(_) | Object::Console | Object::Platform => return,
        }
        self.free_frame(r.pfn);
    }

    /// Destroys every IoPorts object whose origin no longer exists, until
    /// none is left (a chain of derivations dies in passes, not by
    /// recursion). Each pass scans the frame table once.
    fn destroy_orphaned_io_ports(&mut self) {
        loop {
            let mut destroyed_any = false;
            let mut from = Pfn(0);
            while let Some(pfn) = self.frames.next_object(from) {
                from = pfn.offset(1);
                let generation = self.frames.info(pfn).map_or(0, |i| i.generation);
                let r = ObjRef { pfn, generation };
                if let Some(Object::IoPorts(ports)) = self.get(r)
                    && ports
                        .origin
                        .is_some_and(|origin| self.get(origin).is_none())
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
        let Some(pd) = self.pd(pd_ref) else { return };
        if pd.io_bitmap == 0 {
            return;
        }
        let bitmap = io_bitmap(pd.io_bitmap);
        ports::deny_all(bitmap);
        let mut from = Pfn(0);
        while let Some(pfn) = self.frames.next_object(from) {
            from = pfn.offset(1);
            let generation = self.frames.info(pfn).map_or(0, |i| i.generation);
            if let Some(Object::IoPorts(grant)) = self.get(ObjRef { pfn, generation })
                && grant.enabled_in.contains(&Some(pd_ref))
            {
                ports::allow(bitmap, grant.range);
            }
        }
        if self.loaded_pd == Some(pd_ref) {
            self.loaded_io_bitmap = 0;
            self.switch_to(pd_ref);
        }
    }

    fn wake_destroyed(&mut self, pfn: Pfn) {
        if let Some((r, thread)) = self.thread_at(pfn) {
            self.cancel_timeout(r);
            thread.blocked_on = None;
            if thread.state == ThreadState::Sending && thread.message.is_fault {
                // A faulted thread stays stopped; only its report is lost.
                thread.state = ThreadState::Faulted;
            } else {
                self.wake_with(r, Err(Error::ObjectDestroyed));
            }
        }
    }

    fn destroy_thread(&mut self, r: ObjRef, thread: &mut Thread) {
        self.cancel_timeout(r);
        match thread.state {
            ThreadState::Runnable if self.current != Some(r) => self.unqueue_ready(r),
            ThreadState::Sending | ThreadState::Receiving | ThreadState::Waiting => {
                match thread.blocked_on.and_then(|b| self.get(b)) {
                    Some(Object::Endpoint(endpoint)) => {
                        endpoint.senders.remove(&mut ThreadLinks, r.pfn);
                        endpoint.receivers.remove(&mut ThreadLinks, r.pfn);
                    }
                    Some(Object::Notification(notification)) => {
                        notification.waiters.remove(&mut ThreadLinks, r.pfn);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        if let Some(caller) = thread.reply_to.take()
            && self
                .thread(caller)
                .is_some_and(|c| c.state == ThreadState::AwaitingReply)
        {
            self.wake_with(caller, Err(Error::ObjectDestroyed));
        }
        if let Some(Object::Notification(notification)) = thread.bound.and_then(|n| self.get(n)) {
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
            let payer = self.pd(current).and_then(|pd| pd.payer);
            self.finish_pd(current);
            if current == root {
                return;
            }
            match payer {
                Some(payer) if self.pd(payer).is_some() => {
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
        while self.pd(pd).is_some_and(|pd| pd.objects > 0)
            && let Some((pfn, usage)) = self.frames.next_owned_by(pd.pfn, from)
        {
            from = pfn.offset(1);
            if usage != FrameUse::Object {
                continue;
            }
            let generation = self.frames.info(pfn).map_or(0, |i| i.generation);
            let r = ObjRef { pfn, generation };
            if matches!(self.get(r), Some(Object::Pd(_))) {
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
        let Some(pd) = self.pd(r) else { return };
        if self.loaded_pd == Some(r) {
            crate::arch::paging::load_cr3(crate::arch::paging::kernel_root());
            self.loaded_pd = None;
        }
        if self.loaded_io_bitmap != 0 && self.loaded_io_bitmap == pd.io_bitmap {
            crate::arch::cpu::load_io_bitmap(None);
            self.loaded_io_bitmap = 0;
        }
        // Every byte a Pd is charged is a frame it owns, so the scan ends
        // with its last frame, not at the end of RAM.
        let mut from = Pfn(0);
        while self.pd(r).is_some_and(|pd| pd.ram.used > 0)
            && let Some((pfn, _)) = self.frames.next_owned_by(r.pfn, from)
        {
            self.free_frame(pfn);
            from = pfn.offset(1);
        }
        self.free_frame(Pfn::containing(pd.root_table));
        self.release_pcid(pd.pcid);
        if let Some(payer) = pd.payer.and_then(|p| self.pd(p)) {
            payer.ram.absorb(Quota {
                limit: pd.ram.limit,
                used: 0,
            });
            payer.caps.absorb(Quota {
                limit: pd.caps.limit,
                used: 0,
            });
        }
        pd.ram = Quota::default();
        pd.caps = Quota::default();
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
