//! Kernel objects, their storage, and the kernel's global state.
//!
//! Every object occupies one frame of its own (charged to the Pd that paid
//! for it) holding an [`Object`]. An [`ObjRef`] names it by frame number and
//! generation; the frame table says whether that object still exists.

use super::space;
use crate::arch::{entry::Frame, paging};
use crate::caps::{self, Cap};
use crate::frames::{FrameInfo, FrameTable, FrameUse, Pfn};
use crate::queue::{Links, Queue};
use crate::quota::Quota;
use arbor_abi::{CapSlot, Error, MSG_WORDS, MsgInfo, ObjectKind, Rights};

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

/// Most places one dataspace may be mapped at once.
pub const MAX_MAPPINGS: usize = 96;
/// Most of those records one Pd may hold, so that no Pd can use up a
/// shared dataspace's records and keep every other Pd from mapping it.
pub const MAX_MAPPINGS_PER_PD: usize = 16;

/// Where a dataspace is mapped; used to revoke the mappings on destroy.
#[derive(Clone, Copy, Debug)]
pub struct Mapping {
    /// The Pd.
    pub pd: ObjRef,
    /// First virtual address.
    pub vaddr: u64,
    /// Pages mapped from there.
    pub pages: u64,
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
    /// Where it is mapped.
    pub mappings: [Option<Mapping>; MAX_MAPPINGS],
}

/// An interrupt line bound to a notification.
pub struct Irq {
    /// IOAPIC input.
    pub line: u8,
    /// Signalled when the line fires (with `badge`).
    pub notification: ObjRef,
    /// Bits signalled.
    pub badge: u64,
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

/// The kernel's global state.
pub struct Kernel {
    /// Every frame of RAM.
    pub frames: FrameTable<'static>,
    /// The thread on the CPU (None while idle).
    pub current: Option<ObjRef>,
    /// Ready threads by priority (the current thread is not queued).
    pub run_queues: [Queue; PRIORITIES],
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
    /// IRQ lines claimed, by line: the Irq object.
    pub irqs: [Option<ObjRef>; 24],
    /// Threads in a `Wait` with a timeout, linked through `Thread::next_timed`.
    pub timed_waiters: Option<Pfn>,
}

/// Where the kernel keeps its state; set once at boot.
static mut KERNEL: Option<Kernel> = None;

/// Installs the kernel state.
pub fn install(kernel: Kernel) {
    // SAFETY: called once at boot before any other access.
    unsafe { *core::ptr::addr_of_mut!(KERNEL) = Some(kernel) };
}

/// The kernel state. Callers keep the borrow short and never hold two.
pub fn kernel() -> &'static mut Kernel {
    // SAFETY: single CPU, interrupts off in the kernel, and every entry path
    // takes this borrow afresh and drops it before the next entry can run.
    unsafe {
        (*core::ptr::addr_of_mut!(KERNEL))
            .as_mut()
            .unwrap_or_else(|| crate::arch::halt_forever())
    }
}

/// The object stored in frame `pfn`.
fn object_at(pfn: Pfn) -> &'static mut Object {
    // SAFETY: callers only pass frames the frame table records as
    // `FrameUse::Object`, which were initialised with an `Object` by
    // `Kernel::new_object`; objects are accessed one at a time (see `kernel`).
    unsafe { &mut *(paging::phys_to_virt(pfn.address()) as *mut Object) }
}

/// Thread queue links live in the threads.
pub struct ThreadLinks;

impl Links for ThreadLinks {
    fn next(&self, thread: Pfn) -> Option<Pfn> {
        match object_at(thread) {
            Object::Thread(t) => t.next,
            _ => None,
        }
    }
    fn set_next(&mut self, thread: Pfn, next: Option<Pfn>) {
        if let Object::Thread(t) = object_at(thread) {
            t.next = next;
        }
    }
}

/// Bytes one object costs.
pub const OBJECT_COST: u64 = 4096;

impl Kernel {
    /// The object `r` names, if it still exists.
    pub fn get(&self, r: ObjRef) -> Option<&'static mut Object> {
        let info = self.frames.info(r.pfn)?;
        (info.usage == FrameUse::Object && info.generation == r.generation)
            .then(|| object_at(r.pfn))
    }

    /// The reference a capability holds.
    pub fn cap_ref(cap: &Cap) -> ObjRef {
        ObjRef {
            pfn: Pfn(cap.object),
            generation: cap.generation,
        }
    }

    fn live_generation(&self, cap: &Cap) -> Option<u64> {
        let info: FrameInfo = self.frames.info(Pfn(cap.object))?;
        (info.usage == FrameUse::Object).then_some(info.generation)
    }

    /// Checks `cap` for kind and rights; returns the object.
    pub fn check(
        &self,
        cap: &Cap,
        kind: ObjectKind,
        needed: Rights,
    ) -> Result<(ObjRef, &'static mut Object), Error> {
        cap.check(kind, needed, self.live_generation(cap))?;
        let r = Self::cap_ref(cap);
        let object = self.get(r).ok_or(Error::InvalidCapability)?;
        Ok((r, object))
    }

    /// The physical address behind user address `vaddr` of the Pd whose
    /// top-level table is `root`, if it is mapped (writable, when
    /// `for_writing`) *and* the frame table says it is RAM of a dataspace a
    /// Pd pays for. The kernel reads and writes user memory only through
    /// this check, on every use: a page remapped onto device memory (which
    /// the physical window does not cover) or onto nothing is `None`.
    pub fn user_page(&self, root: u64, vaddr: u64, for_writing: bool) -> Option<u64> {
        let phys = if for_writing {
            space::translate_writable(root, vaddr)?
        } else {
            space::translate(root, vaddr)?
        };
        self.frames
            .is_user_data(Pfn::containing(phys))
            .then_some(phys)
    }

    /// The Pd `r` names.
    pub fn pd(&self, r: ObjRef) -> Option<&'static mut Pd> {
        match self.get(r)? {
            Object::Pd(pd) => Some(pd),
            _ => None,
        }
    }

    /// The thread `r` names.
    pub fn thread(&self, r: ObjRef) -> Option<&'static mut Thread> {
        match self.get(r)? {
            Object::Thread(t) => Some(t),
            _ => None,
        }
    }

    /// The thread in frame `pfn` (queued threads are known to be live).
    pub fn thread_at(&self, pfn: Pfn) -> Option<(ObjRef, &'static mut Thread)> {
        let info = self.frames.info(pfn)?;
        let r = ObjRef {
            pfn,
            generation: info.generation,
        };
        self.thread(r).map(|t| (r, t))
    }

    /// The running thread.
    pub fn current_thread(&self) -> Option<(ObjRef, &'static mut Thread)> {
        let r = self.current?;
        self.thread(r).map(|t| (r, t))
    }

    /// Charges `bytes` to the Pd `payer`.
    pub fn charge(&self, payer: ObjRef, bytes: u64) -> Result<(), Error> {
        let pd = self.pd(payer).ok_or(Error::InvalidCapability)?;
        pd.ram.charge(bytes).map_err(|_| Error::RamQuotaExceeded)
    }

    /// Returns `bytes` to the Pd `payer`, if it still exists.
    pub fn refund(&self, payer: Pfn, bytes: u64) {
        let Some(info) = self.frames.info(payer) else {
            return;
        };
        let r = ObjRef {
            pfn: payer,
            generation: info.generation,
        };
        if let Some(pd) = self.pd(r) {
            pd.ram.refund(bytes);
        }
    }

    /// A zeroed frame for `usage`, charged to `payer` (None = the kernel's own).
    pub fn allocate_frame(&mut self, usage: FrameUse, payer: Option<ObjRef>) -> Result<Pfn, Error> {
        if let Some(payer) = payer {
            self.charge(payer, 4096)?;
        }
        let owner = payer.map_or(Pfn(0), |p| p.pfn);
        match self.frames.allocate(usage, owner) {
            Some(pfn) => {
                // SAFETY: a frame just taken from the free pool, reachable
                // through the physical window, referenced by nobody.
                unsafe { core::ptr::write_bytes(paging::phys_to_virt(pfn.address()), 0, 4096) };
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
        let Some(info) = self.frames.info(pfn) else {
            return;
        };
        if self.frames.free(pfn) && info.owner != 0 {
            self.refund(Pfn(info.owner), 4096);
            if info.usage == FrameUse::Object
                && let Some(payer) = self.pd_at(Pfn(info.owner))
            {
                payer.objects = payer.objects.saturating_sub(1);
            }
        }
    }

    /// The Pd in frame `pfn`, if that frame holds one.
    pub fn pd_at(&self, pfn: Pfn) -> Option<&'static mut Pd> {
        let generation = self.frames.info(pfn)?.generation;
        self.pd(ObjRef { pfn, generation })
    }

    /// Creates an object in a fresh frame paid by `payer`.
    pub fn new_object(&mut self, object: Object, payer: Option<ObjRef>) -> Result<ObjRef, Error> {
        let pfn = self.allocate_frame(FrameUse::Object, payer)?;
        let generation = self.frames.info(pfn).map_or(0, |i| i.generation);
        // SAFETY: the frame was just allocated for this object and is zeroed;
        // writing (not assigning) avoids dropping garbage.
        unsafe { core::ptr::write(paging::phys_to_virt(pfn.address()) as *mut Object, object) };
        if let Some(payer) = payer.and_then(|p| self.pd(p)) {
            payer.objects += 1;
        }
        Ok(ObjRef { pfn, generation })
    }

    // ---- capability tables ----

    /// The capability in `slot` of `pd` (an empty one if none).
    pub fn cap(&self, pd: &Pd, slot: CapSlot) -> Cap {
        let Some((page, index)) = caps::slot_position(slot) else {
            return Cap::default();
        };
        match pd.cap_pages[page] {
            0 => Cap::default(),
            pfn => cap_page(Pfn(pfn))[index],
        }
    }

    /// The capability in `slot` of the current thread's Pd.
    pub fn own_cap(&self, slot: u64) -> Cap {
        let Ok(slot) = u32::try_from(slot) else {
            return Cap::default();
        };
        match self.current_pd() {
            Some((_, pd)) => self.cap(pd, CapSlot(slot)),
            None => Cap::default(),
        }
    }

    /// The current thread's Pd.
    pub fn current_pd(&self) -> Option<(ObjRef, &'static mut Pd)> {
        let (_, thread) = self.current_thread()?;
        let r = thread.pd;
        self.pd(r).map(|pd| (r, pd))
    }

    /// Puts `cap` into the empty `slot` of Pd `pd_ref`, charging its cap quota.
    pub fn install_cap(&mut self, pd_ref: ObjRef, slot: CapSlot, cap: Cap) -> Result<(), Error> {
        let (page, index) = caps::slot_position(slot).ok_or(Error::InvalidArgument)?;
        let pd = self.pd(pd_ref).ok_or(Error::InvalidCapability)?;
        if !self.cap(pd, slot).is_empty() {
            return Err(Error::SlotOccupied);
        }
        pd.caps.charge(1).map_err(|_| Error::CapQuotaExceeded)?;
        if pd.cap_pages[page] == 0 {
            match self.allocate_frame(FrameUse::CapTable, Some(pd_ref)) {
                Ok(pfn) => pd.cap_pages[page] = pfn.0,
                Err(error) => {
                    pd.caps.refund(1);
                    return Err(error);
                }
            }
        }
        cap_page(Pfn(pd.cap_pages[page]))[index] = cap;
        Ok(())
    }

    /// Checks that `slot` of `pd_ref` could take a capability.
    pub fn check_free_slot(&self, pd_ref: ObjRef, slot: u64) -> Result<CapSlot, Error> {
        let slot = CapSlot(u32::try_from(slot).map_err(|_| Error::InvalidArgument)?);
        caps::slot_position(slot).ok_or(Error::InvalidArgument)?;
        let pd = self.pd(pd_ref).ok_or(Error::InvalidCapability)?;
        if !self.cap(pd, slot).is_empty() {
            return Err(Error::SlotOccupied);
        }
        if pd.caps.available() == 0 {
            return Err(Error::CapQuotaExceeded);
        }
        Ok(slot)
    }

    /// Empties `slot` of `pd`, refunding its cap quota.
    pub fn delete_cap(&mut self, pd: &mut Pd, slot: CapSlot) -> Result<(), Error> {
        let (page, index) = caps::slot_position(slot).ok_or(Error::InvalidArgument)?;
        if pd.cap_pages[page] == 0 || cap_page(Pfn(pd.cap_pages[page]))[index].is_empty() {
            return Err(Error::InvalidCapability);
        }
        cap_page(Pfn(pd.cap_pages[page]))[index] = Cap::default();
        pd.caps.refund(1);
        Ok(())
    }

    // ---- address spaces ----

    /// Makes `pd`'s page tables and I/O bitmap the CPU's.
    pub fn switch_to(&mut self, pd_ref: ObjRef) {
        let Some(pd) = self.pd(pd_ref) else { return };
        if self.loaded_pd != Some(pd_ref) {
            crate::arch::cpu::reset_user_segments();
        }
        if self.loaded_pd != Some(pd_ref) || pd.tlb_stale {
            space::activate(pd.root_table, pd.pcid, pd.tlb_stale);
            pd.tlb_stale = false;
            self.loaded_pd = Some(pd_ref);
        }
        if self.loaded_io_bitmap != pd.io_bitmap {
            crate::arch::cpu::load_io_bitmap(match pd.io_bitmap {
                0 => None,
                pfn => Some(paging::phys_to_virt(Pfn(pfn).address()) as *const [u8; 8192]),
            });
            self.loaded_io_bitmap = pd.io_bitmap;
        }
    }
}

/// A Pd's I/O permission bitmap, whose first of two frames is `first_pfn`.
pub fn io_bitmap(first_pfn: u64) -> &'static mut [u8; crate::ports::BITMAP_BYTES] {
    // SAFETY: only called with a Pd's `io_bitmap`, the first of two
    // contiguous frames allocated for it as the bitmap; one CPU, and the
    // caller holds no other reference to them.
    unsafe { &mut *(paging::phys_to_virt(Pfn(first_pfn).address()) as *mut [u8; 8192]) }
}

/// A page of capability entries.
fn cap_page(pfn: Pfn) -> &'static mut [Cap; caps::CAPS_PER_PAGE] {
    // SAFETY: only called with frames recorded in a Pd's `cap_pages`, which
    // were allocated zeroed (all-empty entries) as `FrameUse::CapTable`.
    unsafe { &mut *(paging::phys_to_virt(pfn.address()) as *mut [Cap; caps::CAPS_PER_PAGE]) }
}
