//! Destroying objects. Every thread blocked on a destroyed object is woken
//! with `ObjectDestroyed`; a destroyed Pd takes everything it paid for with
//! it, and its whole quota goes back to the Pd that paid for it.

use super::object::{Kernel, ObjRef, Object, Pd, Thread, ThreadLinks, ThreadState};
use super::space;
use crate::frames::{FrameUse, Pfn};
use crate::quota::Quota;
use arbor_abi::Error;

impl Kernel {
    /// Destroys the object `r` names, if it still exists.
    pub fn destroy(&mut self, r: ObjRef) {
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
                let (base, pages) = (dataspace.base.address(), u64::from(dataspace.pages));
                for mapping in dataspace.mappings.iter().flatten() {
                    let Some(pd) = self.pd(mapping.pd) else {
                        continue;
                    };
                    for page in 0..u64::from(mapping.pages) {
                        let vaddr = mapping.vaddr + page * 4096;
                        if let Some(phys) = space::translate(pd.root_table, vaddr)
                            && (base..base + pages * 4096).contains(&(phys & !0xFFF))
                        {
                            space::unmap_page(pd.root_table, vaddr);
                        }
                    }
                    pd.tlb_stale = true;
                }
                if !dataspace.device && !dataspace.kernel_ram {
                    for page in 0..dataspace.pages {
                        self.free_frame(Pfn(dataspace.base.0 + page));
                    }
                }
            }
            Object::Irq(irq) => {
                crate::arch::interrupts::mask_line(irq.line);
                if let Some(slot) = self.irqs.get_mut(usize::from(irq.line)) {
                    *slot = None;
                }
            }
            Object::Pd(pd) => self.destroy_pd(r, pd),
            Object::IoPorts(ports) => {
                // Revoke: every Pd it opened ports in loses them again.
                for user in ports.enabled_in.iter().flatten() {
                    self.set_port_access(*user, ports, false);
                }
            }
            Object::Console | Object::Platform => {}
        }
        self.free_frame(r.pfn);
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

    fn destroy_pd(&mut self, r: ObjRef, pd: &mut Pd) {
        // Objects first (threads, endpoints, dataspaces, child Pds), then
        // every other frame the Pd paid for.
        let mut from = Pfn(0);
        while let Some((pfn, usage)) = self.frames.next_owned_by(r.pfn, from) {
            if usage == FrameUse::Object {
                let generation = self.frames.info(pfn).map_or(0, |i| i.generation);
                self.destroy(ObjRef { pfn, generation });
            }
            from = Pfn(pfn.0 + 1);
        }
        if self.loaded_pd == Some(r) {
            crate::arch::paging::load_cr3(crate::arch::paging::kernel_root());
            self.loaded_pd = None;
        }
        if self.loaded_io_bitmap != 0 && self.loaded_io_bitmap == pd.io_bitmap {
            crate::arch::cpu::load_io_bitmap(None);
            self.loaded_io_bitmap = 0;
        }
        space::free_tables(self, r.pfn, pd.root_table);
        let mut from = Pfn(0);
        while let Some((pfn, _)) = self.frames.next_owned_by(r.pfn, from) {
            self.free_frame(pfn);
            from = Pfn(pfn.0 + 1);
        }
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
