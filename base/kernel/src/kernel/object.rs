//! Kernel objects and the kernel's state, with the operations every other
//! part uses: quota charges, frame allocation, capability tables, and the
//! switch between address spaces.
//!
//! Every object occupies one frame of its own (charged to the Pd that paid
//! for it) holding an [`Object`]. An [`ObjRef`] names it by frame number and
//! generation; the frame table says whether that object still exists.
//! Objects are reached only through [`Objects`](super::store::Objects), whose
//! accessors borrow from the [`Kernel`] that owns it.

#![forbid(unsafe_code)]

use super::hw;
use super::store::Objects;
use crate::caps::{self, Cap};
use crate::context::Frame;
use crate::frames::{FrameUse, Pfn};
use crate::queue::Queue;
use crate::quota::Quota;
use arbor_abi::{CapSlot, Error, MSG_WORDS, MsgInfo, ObjectKind, Rights};
use core::cell::Cell;

/// A checked-at-use reference to an object: frame number and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjRef {
    /// The object's frame.
    pub pfn: Pfn,
    /// The frame's generation when the object was made.
    pub generation: u64,
}

/// A protection domain.
pub struct Pd {
    /// RAM quota, in bytes.
    pub ram: Quota,
    /// Capability-slot quota.
    pub caps: Quota,
    /// The Pd whose quota paid for this one; gets everything back on destroy.
    pub payer: Option<ObjRef>,
    /// Physical address of the top-level page table.
    pub root_table: u64,
    /// The address-space identifier (0 when PCIDs are not used).
    pub pcid: u16,
    /// The next switch to this Pd must flush its TLB entries.
    pub tlb_stale: bool,
    /// Frames holding the capability table, by page; 0 = not yet allocated.
    pub cap_pages: [u64; caps::MAX_CAP_PAGES],
    /// Where faults go (an endpoint capability with its badge); empty = nowhere.
    pub fault_endpoint: Cap,
    /// First of two frames holding the I/O permission bitmap; 0 = no ports.
    pub io_bitmap: u64,
    /// Objects it paid for that still exist: lets teardown stop scanning
    /// the frame table once the last is gone.
    pub objects: u64,
    /// Frames holding its mapping records, paid by it; 0 = not yet allocated.
    pub record_pages: [u64; super::mappings::MAX_RECORD_PAGES],
}

/// What a thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// Created, never started (or stopped).
    Inactive,
    /// Running or ready to run.
    Runnable,
    /// Queued on an endpoint with a message to send.
    Sending,
    /// Queued on an endpoint waiting for a message.
    Receiving,
    /// Waiting for the reply to a call.
    AwaitingReply,
    /// Queued on a notification.
    Waiting,
    /// Stopped by a fault until restarted.
    Faulted,
}

/// A message a blocked sender carries until a receiver takes it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Message {
    /// Label, payload length, capability count.
    pub info: MsgInfo,
    /// The register words.
    pub words: [u64; MSG_WORDS],
    /// The badge of the capability the sender used.
    pub badge: u64,
    /// The sender waits for a reply (call) ...
    pub is_call: bool,
    /// ... or is a faulted thread reporting (kernel-made message).
    pub is_fault: bool,
}

/// A thread.
pub struct Thread {
    /// The Pd it runs in.
    pub pd: ObjRef,
    /// Its registers while it is not running.
    pub context: Frame,
    /// What it is doing.
    pub state: ThreadState,
    /// Scheduling priority, 0..=MAX_PRIORITY.
    pub priority: u8,
    /// Its IPC buffer's user address; 0 = none.
    pub ipc_buffer: u64,
    /// Where the IPC buffer was found last (see `Kernel::ipc_buffer`).
    pub buffer_cache: BufferCache,
    /// The capabilities it looked up last, by the two lowest bits of
    /// their slot (see [`CapCache`]).
    pub cap_cache: [CapCache; CAP_CACHE_WAYS],
    /// What loading its Pd's address space takes (see [`SpaceCache`]).
    pub space_cache: Cell<SpaceCache>,
    /// Link in whichever queue it is in.
    pub next: Option<Pfn>,
    /// The endpoint or notification it is queued on.
    pub blocked_on: Option<ObjRef>,
    /// The message it is sending, while `Sending`.
    pub message: Message,
    /// The caller its next reply goes to.
    pub reply_to: Option<ObjRef>,
    /// The notification bound to it.
    pub bound: Option<ObjRef>,
    /// TSC deadline of a timed `Wait`; 0 = none.
    pub deadline: u64,
    /// Link in the kernel's list of timed waiters.
    pub next_timed: Option<Pfn>,
}

/// The physical address an IPC buffer translated to, valid while
/// `Objects::epoch` is the same (no page table written, no frame freed).
#[derive(Clone, Copy, Debug, Default)]
pub struct BufferCache {
    /// `Objects::epoch` when it was found; 0 = never.
    pub epoch: u64,
    /// The buffer's physical address.
    pub phys: u64,
    /// Whether it was mapped writable.
    pub writable: bool,
}

/// The capability a thread looked up last in its own Pd (`own_cap`, the
/// IPC fast path), valid while `Objects::epoch` is the same: no capability
/// table written and no frame freed since, so the table would give the same
/// entry. Whatever the entry names is still checked against the frame
/// table on every use (a destroyed object is never reached through it).
#[derive(Debug, Default)]
pub struct CapCache {
    /// `Objects::epoch` when it was found; 0 = never.
    pub epoch: Cell<u64>,
    /// The slot it is in.
    pub slot: Cell<u64>,
    /// The entry's fields (kept apart so that a hit reads only words).
    pub object: Cell<u64>,
    /// See [`Cap::generation`].
    pub generation: Cell<u64>,
    /// See [`Cap::badge`].
    pub badge: Cell<u64>,
    /// See [`Cap::kind`].
    pub kind: Cell<u8>,
    /// See [`Cap::rights`].
    pub rights: Cell<u8>,
}

/// What the IPC fast path needs to load a thread's address space, copied
/// from its Pd while the Pd owed no TLB flush, and valid while
/// `Objects::epoch` is the same: no page table written, no Pd's TLB marked
/// stale, no I/O bitmap changed and no frame freed (so the Pd, its page
/// tables and its PCID still exist as they were).
#[derive(Clone, Copy, Debug, Default)]
pub struct SpaceCache {
    /// `Objects::epoch` when it was copied; 0 = never.
    pub epoch: u64,
    /// The value for CR3: top-level table, PCID, and (with a PCID) the
    /// bit that keeps the PCID's TLB entries.
    pub cr3: u64,
    /// The Pd's I/O bitmap (first frame; 0 = none).
    pub io_bitmap: u64,
}

/// Entries of a thread's capability cache.
pub const CAP_CACHE_WAYS: usize = 4;

/// A synchronous rendezvous point.
pub struct Endpoint {
    /// Threads waiting to send.
    pub senders: Queue,
    /// Threads waiting to receive.
    pub receivers: Queue,
}

/// A word of signal bits.
pub struct Notification {
    /// Pending bits.
    pub word: u64,
    /// Threads in `Wait`.
    pub waiters: Queue,
    /// The thread whose receives it also ends.
    pub bound: Option<ObjRef>,
}

/// Physically contiguous memory.
pub struct Dataspace {
    /// First frame.
    pub base: Pfn,
    /// Size in pages.
    pub pages: u64,
    /// Device memory (or the boot archive): not RAM the kernel allocated,
    /// so never freed, and mapped uncached when it is a device.
    pub device: bool,
    /// Kernel-owned RAM shown read-only (the boot archive).
    pub kernel_ram: bool,
    /// The first record of where it is mapped (0 = nowhere); the records
    /// live in the mapping Pds' record pages (see `kernel::mappings`).
    pub first_mapping: u64,
}

/// An interrupt line bound to a notification.
pub struct Irq {
    /// IOAPIC input.
    pub line: u8,
    /// Signalled when the line fires (with `badge`).
    pub notification: ObjRef,
    /// Bits signalled.
    pub badge: u64,
    /// The next Irq object sharing the line (see `syscall::devices`).
    pub next_sharer: Option<ObjRef>,
    /// Signalled and not yet acknowledged: the line stays masked.
    pub pending: bool,
    /// Sharers were made from it: it is no longer signalled itself.
    pub delegated: bool,
}

/// Most Pds one IoPorts object can be enabled in at once.
pub const MAX_PORT_USERS: usize = 8;

/// A range of I/O ports.
pub struct IoPorts {
    /// The ports it grants.
    pub range: crate::ports::PortRange,
    /// The Pds whose I/O bitmaps it opened; closed again when it is destroyed.
    pub enabled_in: [Option<ObjRef>; MAX_PORT_USERS],
    /// The IoPorts object it was made from (None: from the Platform
    /// capability). It dies with its origin, so a port range handed back to
    /// core is gone from everyone who derived from it.
    pub origin: Option<ObjRef>,
}

/// What an object frame holds.
// Every object occupies a frame of its own, so variant sizes cost nothing.
#[allow(clippy::large_enum_variant)]
pub enum Object {
    Pd(Pd),
    Thread(Thread),
    Endpoint(Endpoint),
    Notification(Notification),
    Dataspace(Dataspace),
    Irq(Irq),
    IoPorts(IoPorts),
    Console,
    Platform,
}

const _: () = assert!(core::mem::size_of::<Object>() <= 4096);

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Object::Pd(_) => ObjectKind::Pd,
            Object::Thread(_) => ObjectKind::Thread,
            Object::Endpoint(_) => ObjectKind::Endpoint,
            Object::Notification(_) => ObjectKind::Notification,
            Object::Dataspace(_) => ObjectKind::Dataspace,
            Object::Irq(_) => ObjectKind::Irq,
            Object::IoPorts(_) => ObjectKind::IoPorts,
            Object::Console => ObjectKind::Console,
            Object::Platform => ObjectKind::Platform,
        }
    }
}

/// Number of priority levels.
pub const PRIORITIES: usize = arbor_abi::MAX_PRIORITY as usize + 1;
const _: () = assert!(
    PRIORITIES <= u32::BITS as usize,
    "one bit of `Kernel::ready` per priority"
);

/// The kernel's state. There is one, reached through `with_kernel` (the
/// target's entry) or owned by a host test.
pub struct Kernel {
    /// Objects and every other frame the kernel manages.
    pub objects: Objects,
    /// The thread on the CPU (None while idle).
    pub current: Option<ObjRef>,
    /// Ready threads by priority (the current thread is not queued).
    pub run_queues: [Queue; PRIORITIES],
    /// Bit `p` set: `run_queues[p]` is not empty (kept by `sched`).
    pub ready: u32,
    /// The current thread should give way at the next exit.
    pub reschedule: bool,
    /// PCID allocation bitmap (bit = in use); empty when PCIDs are off.
    pub pcids: [u64; 64],
    /// Whether the CPU does PCIDs.
    pub pcid_enabled: bool,
    /// Whose I/O bitmap the TSS holds (0 = none).
    pub loaded_io_bitmap: u64,
    /// The Pd whose page tables are loaded.
    pub loaded_pd: Option<ObjRef>,
    /// Usable RAM regions, to keep device dataspaces off RAM.
    pub ram_regions: heapless::Vec<crate::memory::PhysRange, 64>,
    /// TSC ticks per millisecond.
    pub tsc_per_ms: u64,
    /// TSC ticks spent halted with nothing to run since boot
    /// (`info::IDLE_TICKS`; counted by `entry::resume`).
    pub idle_ticks: u64,
    /// IRQ lines claimed, by line: the first Irq object on it (the others
    /// are linked through `Irq::next_sharer`).
    pub irqs: [Option<ObjRef>; 24],
    /// Threads in a `Wait` with a timeout, linked through `Thread::next_timed`.
    pub timed_waiters: Option<Pfn>,
}

/// Bytes one object costs.
pub const OBJECT_COST: u64 = 4096;

impl Kernel {
    /// A kernel with no objects yet over `objects`.
    pub fn new(
        objects: Objects,
        pcid_enabled: bool,
        ram_regions: heapless::Vec<crate::memory::PhysRange, 64>,
        tsc_per_ms: u64,
    ) -> Kernel {
        let mut kernel = Kernel {
            objects,
            current: None,
            run_queues: [Queue::EMPTY; PRIORITIES],
            ready: 0,
            reschedule: false,
            pcids: [0; 64],
            pcid_enabled,
            loaded_io_bitmap: 0,
            loaded_pd: None,
            ram_regions,
            tsc_per_ms,
            idle_ticks: 0,
            irqs: [None; 24],
            timed_waiters: None,
        };
        kernel.pcids[0] = 1; // PCID 0 means "none"
        kernel
    }

    /// The reference a capability holds.
    pub fn cap_ref(cap: &Cap) -> ObjRef {
        ObjRef {
            pfn: Pfn(cap.object),
            generation: cap.generation,
        }
    }

    /// Checks `cap` for kind and rights; returns the object it names.
    pub fn check(&self, cap: &Cap, kind: ObjectKind, needed: Rights) -> Result<ObjRef, Error> {
        let live = self.objects.live(Pfn(cap.object)).map(|r| r.generation);
        cap.check(kind, needed, live)?;
        Ok(Self::cap_ref(cap))
    }

    /// The physical address behind user address `vaddr` of the Pd whose
    /// top-level table is `root`, if it is mapped (writable, when
    /// `for_writing`) *and* the frame table says it is RAM of a dataspace a
    /// Pd pays for. The kernel reads and writes user memory only through
    /// this check, on every use: a page remapped onto device memory (which
    /// the physical window does not cover) or onto nothing is `None`.
    pub fn user_page(&self, root: u64, vaddr: u64, for_writing: bool) -> Option<u64> {
        let phys = if for_writing {
            super::space::translate_writable(&self.objects, root, vaddr)?
        } else {
            super::space::translate(&self.objects, root, vaddr)?
        };
        self.objects
            .frames
            .is_user_data(Pfn::containing(phys))
            .then_some(phys)
    }

    /// The running thread.
    pub fn current_thread(&self) -> Option<(ObjRef, &Thread)> {
        let r = self.current?;
        self.objects.thread(r).map(|t| (r, t))
    }

    /// The running thread, for changing.
    pub fn current_thread_mut(&mut self) -> Option<&mut Thread> {
        let r = self.current?;
        self.objects.thread_mut(r)
    }

    /// The running thread's Pd.
    pub fn current_pd_ref(&self) -> Option<ObjRef> {
        self.current_thread().map(|(_, t)| t.pd)
    }

    /// Charges `bytes` to the Pd `payer`.
    pub fn charge(&mut self, payer: ObjRef, bytes: u64) -> Result<(), Error> {
        let pd = self.objects.pd_mut(payer).ok_or(Error::InvalidCapability)?;
        pd.ram.charge(bytes).map_err(|_| Error::RamQuotaExceeded)
    }

    /// Returns `bytes` to the Pd in frame `payer`, if it still exists.
    pub fn refund(&mut self, payer: Pfn, bytes: u64) {
        if let Some(pd) = self.objects.pd_at_mut(payer) {
            pd.ram.refund(bytes);
        }
    }

    /// A zeroed frame for `usage`, charged to `payer` (None = the kernel's own).
    pub fn allocate_frame(&mut self, usage: FrameUse, payer: Option<ObjRef>) -> Result<Pfn, Error> {
        if let Some(payer) = payer {
            self.charge(payer, 4096)?;
        }
        let owner = payer.map_or(Pfn(0), |p| p.pfn);
        match self.objects.frames.allocate(usage, owner) {
            Some(pfn) => {
                self.objects.zero_frame(pfn);
                Ok(pfn)
            }
            None => {
                if let Some(payer) = payer {
                    self.refund(payer.pfn, 4096);
                }
                Err(Error::OutOfMemory)
            }
        }
    }

    /// Frees a frame and refunds whoever paid for it.
    pub fn free_frame(&mut self, pfn: Pfn) {
        let Some(info) = self.objects.frames.info(pfn) else {
            return;
        };
        // A freed frame may have been a page table or behind a mapping.
        self.objects.epoch += 1;
        if self.objects.frames.free(pfn) && info.owner != 0 {
            self.refund(Pfn(info.owner), 4096);
            if info.usage == FrameUse::Object
                && let Some(payer) = self.objects.pd_at_mut(Pfn(info.owner))
            {
                payer.objects = payer.objects.saturating_sub(1);
            }
        }
    }

    /// Creates an object in a fresh frame paid by `payer`.
    pub fn new_object(&mut self, object: Object, payer: Option<ObjRef>) -> Result<ObjRef, Error> {
        let pfn = self.allocate_frame(FrameUse::Object, payer)?;
        self.objects.init_object(pfn, object);
        let r = self.objects.live(pfn).ok_or(Error::InvalidState)?;
        if let Some(payer) = payer.and_then(|p| self.objects.pd_mut(p)) {
            payer.objects += 1;
        }
        Ok(r)
    }

    // ---- capability tables ----

    /// The capability in `slot` of Pd `pd_ref` (an empty one if none).
    #[inline]
    pub fn cap(&self, pd_ref: ObjRef, slot: CapSlot) -> Cap {
        Self::cap_in(&self.objects, pd_ref, slot)
    }

    /// The capability in `slot` of Pd `pd_ref` in `objects` (an empty one if none).
    #[inline(always)]
    pub fn cap_in(objects: &Objects, pd_ref: ObjRef, slot: CapSlot) -> Cap {
        let Some((page, index)) = caps::slot_position(slot) else {
            return Cap::default();
        };
        let Some(pd) = objects.pd(pd_ref) else {
            return Cap::default();
        };
        match pd.cap_pages[page] {
            0 => Cap::default(),
            pfn => objects
                .cap_page(Pfn(pfn))
                .map_or(Cap::default(), |entries| entries[index]),
        }
    }

    /// The capability in `slot` of the current thread's Pd.
    pub fn own_cap(&self, slot: u64) -> Cap {
        match self.current_thread() {
            Some((_, thread)) => Self::cap_of(&self.objects, thread, slot),
            None => Cap::default(),
        }
    }

    /// The capability in `slot` of `thread`'s Pd, from the thread's
    /// [`CapCache`] when `objects.epoch` says no capability table changed
    /// since it was looked up there, else from the table (and kept).
    #[inline(always)]
    pub fn cap_of(objects: &Objects, thread: &Thread, slot: u64) -> Cap {
        let way = &thread.cap_cache[slot as usize % CAP_CACHE_WAYS];
        if way.epoch.get() == objects.epoch && way.slot.get() == slot {
            return Cap {
                object: way.object.get(),
                generation: way.generation.get(),
                badge: way.badge.get(),
                kind: way.kind.get(),
                rights: way.rights.get(),
            };
        }
        Self::cap_of_uncached(objects, thread, slot)
    }

    /// [`Kernel::cap_of`] when the cache does not have it.
    #[cold]
    #[inline(never)]
    fn cap_of_uncached(objects: &Objects, thread: &Thread, slot: u64) -> Cap {
        let Ok(raw) = u32::try_from(slot) else {
            return Cap::default();
        };
        let cap = Self::cap_in(objects, thread.pd, CapSlot(raw));
        let way = &thread.cap_cache[slot as usize % CAP_CACHE_WAYS];
        way.epoch.set(objects.epoch);
        way.slot.set(slot);
        way.object.set(cap.object);
        way.generation.set(cap.generation);
        way.badge.set(cap.badge);
        way.kind.set(cap.kind);
        way.rights.set(cap.rights);
        cap
    }

    /// Puts `cap` into the empty `slot` of Pd `pd_ref`, charging its cap quota.
    pub fn install_cap(&mut self, pd_ref: ObjRef, slot: CapSlot, cap: Cap) -> Result<(), Error> {
        let (page, index) = caps::slot_position(slot).ok_or(Error::InvalidArgument)?;
        if !self.cap(pd_ref, slot).is_empty() {
            return Err(Error::SlotOccupied);
        }
        let pd = self
            .objects
            .pd_mut(pd_ref)
            .ok_or(Error::InvalidCapability)?;
        pd.caps.charge(1).map_err(|_| Error::CapQuotaExceeded)?;
        let mut page_pfn = pd.cap_pages[page];
        if page_pfn == 0 {
            match self.allocate_frame(FrameUse::CapTable, Some(pd_ref)) {
                Ok(pfn) => {
                    page_pfn = pfn.0;
                    if let Some(pd) = self.objects.pd_mut(pd_ref) {
                        pd.cap_pages[page] = pfn.0;
                    }
                }
                Err(error) => {
                    if let Some(pd) = self.objects.pd_mut(pd_ref) {
                        pd.caps.refund(1);
                    }
                    return Err(error);
                }
            }
        }
        let entries = self
            .objects
            .cap_page_mut(Pfn(page_pfn))
            .ok_or(Error::InvalidState)?;
        entries[index] = cap;
        Ok(())
    }

    /// Checks that `slot` of `pd_ref` could take a capability.
    pub fn check_free_slot(&self, pd_ref: ObjRef, slot: u64) -> Result<CapSlot, Error> {
        let slot = CapSlot(u32::try_from(slot).map_err(|_| Error::InvalidArgument)?);
        caps::slot_position(slot).ok_or(Error::InvalidArgument)?;
        let pd = self.objects.pd(pd_ref).ok_or(Error::InvalidCapability)?;
        if !self.cap(pd_ref, slot).is_empty() {
            return Err(Error::SlotOccupied);
        }
        if pd.caps.available() == 0 {
            return Err(Error::CapQuotaExceeded);
        }
        Ok(slot)
    }

    /// Empties `slot` of Pd `pd_ref`, refunding its cap quota.
    pub fn delete_cap(&mut self, pd_ref: ObjRef, slot: CapSlot) -> Result<(), Error> {
        let (page, index) = caps::slot_position(slot).ok_or(Error::InvalidArgument)?;
        if self.cap(pd_ref, slot).is_empty() {
            return Err(Error::InvalidCapability);
        }
        let pd = self
            .objects
            .pd_mut(pd_ref)
            .ok_or(Error::InvalidCapability)?;
        pd.caps.refund(1);
        let page_pfn = Pfn(pd.cap_pages[page]);
        if let Some(entries) = self.objects.cap_page_mut(page_pfn) {
            entries[index] = Cap::default();
        }
        Ok(())
    }

    // ---- address spaces ----

    /// Makes `pd`'s page tables and I/O bitmap the CPU's.
    pub fn switch_to(&mut self, pd_ref: ObjRef) {
        let loaded = self.loaded_pd;
        let Some(pd) = self.objects.pd_mut(pd_ref) else {
            return;
        };
        if loaded != Some(pd_ref) {
            hw::reset_user_segments();
        }
        if loaded != Some(pd_ref) || pd.tlb_stale {
            hw::activate(pd.root_table, pd.pcid, pd.tlb_stale);
            pd.tlb_stale = false;
            self.loaded_pd = Some(pd_ref);
        }
        let bitmap = pd.io_bitmap;
        if self.loaded_io_bitmap != bitmap {
            hw::load_io_bitmap(match bitmap {
                0 => None,
                pfn => self.objects.io_bitmap(Pfn(pfn)),
            });
            self.loaded_io_bitmap = bitmap;
        }
    }
}
