//! Where kernel objects and the frames the kernel manages for Pds live, and
//! the only place their bytes are reached.
//!
//! Every object, capability-table page, page table, I/O bitmap and
//! dataspace page is a frame of RAM that the [`FrameTable`] records with its
//! use. [`Objects`] owns both the table and the [`PhysWindow`] through which
//! the frames are reached, so every reference into a frame borrows from
//! `Objects` itself: the borrow checker sees that no two `&mut` to kernel
//! state exist at once. Each accessor first checks the frame table for the
//! use it casts to, so a frame number that a capability or a page table
//! supplies can never be read as something it is not.
//!
//! The raw casts are the `unsafe fn`s at the bottom of this file; each says
//! what its caller must guarantee.

use super::mappings::{MappingRecord, RECORDS_PER_PAGE};
use super::object::{Dataspace, Endpoint, IoPorts, Notification, ObjRef, Object, Pd, Thread};
use crate::caps::{CAPS_PER_PAGE, Cap};
use crate::frames::{FrameTable, FrameUse, Pfn};
use crate::queue::Links;

const PAGE: u64 = 4096;

/// Physical memory as the kernel sees it: physical address `first + n`
/// at virtual address `base + n`, for `len` bytes.
pub struct PhysWindow {
    base: *mut u8,
    first: u64,
    len: u64,
}

impl PhysWindow {
    /// A window over `[first, first + len)` reached at `base`.
    ///
    /// # Safety
    /// `base .. base + len` must be mapped, writable memory that nothing but
    /// the returned window (and what it hands out) uses for as long as the
    /// window exists.
    pub unsafe fn new(base: *mut u8, first: u64, len: u64) -> Self {
        PhysWindow { base, first, len }
    }

    /// The address of `bytes` bytes at `phys`, if the window covers them.
    /// On the target the window covers every physical address the frame
    /// table can name (boot maps all RAM, and the table covers RAM only),
    /// and every caller has checked the frame table first, so the bounds
    /// check is left to the host, where the window is a small buffer.
    #[inline(always)]
    fn at(&self, phys: u64, bytes: u64) -> Option<*mut u8> {
        let offset = phys.wrapping_sub(self.first);
        if cfg!(not(target_os = "none"))
            && (phys < self.first || offset.checked_add(bytes)? > self.len)
        {
            return None;
        }
        Some(self.base.wrapping_add(offset as usize))
    }
}

/// The object store: the frame table and the memory it describes.
pub struct Objects {
    /// Every frame of RAM: its use, owner and generation.
    pub frames: FrameTable<'static>,
    window: PhysWindow,
    /// Advanced whenever a page table or capability table may be written
    /// ([`Objects::table_mut`], [`Objects::cap_page_mut`]), an I/O bitmap
    /// changes, or a frame is freed: a translation or capability lookup
    /// made at one value gives the same answer as long as the value is the
    /// same. IPC buffers (`Kernel::ipc_buffer`) and the IPC fast path's
    /// threads' capabilities (`Thread::cap_cache`) are looked up once so.
    pub epoch: u64,
}

/// What [`Objects::ipc_partners`] hands the fast path.
pub struct IpcPartners<'a> {
    /// The running thread.
    pub me: &'a mut Thread,
    /// The endpoint it names.
    pub endpoint: &'a mut Endpoint,
    /// The thread on the other side, and its reference.
    pub partner_ref: ObjRef,
    pub partner: &'a mut Thread,
    /// The partner's Pd, when it is not the one loaded.
    pub space: Option<Space<&'a mut Pd>>,
}

/// A Pd whose address space the fast path loads: `P` is `&mut Pd` (a
/// raw pointer inside [`Objects::ipc_partners`]).
pub enum Space<P> {
    /// From the partner thread's `SpaceCache` (no flush owed).
    Cached {
        /// The Pd.
        pd_ref: ObjRef,
        /// The CR3 value.
        cr3: u64,
        /// Its I/O bitmap.
        io_bitmap: u64,
    },
    /// Looked up in the Pd; `epoch` is `Objects::epoch` then.
    Fresh {
        /// The Pd's reference.
        pd_ref: ObjRef,
        /// The Pd.
        pd: P,
        /// `Objects::epoch` when it was looked up.
        epoch: u64,
    },
}

/// Which thread queue of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueOf {
    /// An endpoint's waiting senders.
    Senders,
    /// An endpoint's waiting receivers.
    Receivers,
    /// A notification's waiters.
    Waiters,
}

impl Objects {
    /// A store over `frames`, whose frames `window` reaches.
    pub fn new(frames: FrameTable<'static>, window: PhysWindow) -> Self {
        Objects {
            frames,
            window,
            epoch: 1,
        }
    }

    #[inline(always)]
    fn uses(&self, pfn: Pfn, usage: FrameUse) -> bool {
        self.frames.info(pfn).is_some_and(|i| i.usage == usage)
    }

    /// The reference to the object that frame `pfn` holds now, if any.
    #[inline(always)]
    pub fn live(&self, pfn: Pfn) -> Option<ObjRef> {
        let info = self.frames.info(pfn)?;
        (info.usage == FrameUse::Object).then_some(ObjRef {
            pfn,
            generation: info.generation,
        })
    }

    #[inline(always)]
    fn is_live(&self, r: ObjRef) -> bool {
        self.frames
            .info(r.pfn)
            .is_some_and(|i| i.usage == FrameUse::Object && i.generation == r.generation)
    }

    /// The object `r` names, if it still exists.
    #[inline(always)]
    pub fn get(&self, r: ObjRef) -> Option<&Object> {
        // SAFETY: the frame table says the frame holds an object of this
        // generation, which `new_object` wrote; `&self` keeps it unchanged.
        self.is_live(r)
            .then(|| unsafe { self.frame_ref::<Object>(r.pfn.address()) })
    }

    /// The object `r` names, for changing, if it still exists.
    #[inline(always)]
    pub fn get_mut(&mut self, r: ObjRef) -> Option<&mut Object> {
        if !self.is_live(r) {
            return None;
        }
        // SAFETY: as in `get`; `&mut self` makes this the only reference.
        Some(unsafe { self.frame_mut::<Object>(r.pfn.address()) })
    }

    /// Two different objects at once, for changing both (IPC sender and
    /// receiver, quota donor and recipient). The same object twice is
    /// refused (`None`): two `&mut` to one object would alias.
    #[inline(always)]
    pub fn get2_mut(&mut self, a: ObjRef, b: ObjRef) -> Option<(&mut Object, &mut Object)> {
        if a.pfn == b.pfn || !self.is_live(a) || !self.is_live(b) {
            return None;
        }
        // SAFETY: both frames hold live objects (checked above) and are
        // different frames, so the two references never overlap; `&mut
        // self` keeps every other reference away while they live.
        unsafe {
            let first = self.frame_ptr::<Object>(a.pfn.address());
            let second = self.frame_ptr::<Object>(b.pfn.address());
            Some((&mut *first, &mut *second))
        }
    }

    /// The three objects one fast-path IPC step changes, checked once
    /// each: the running thread `me`, the endpoint `endpoint_of` picks
    /// with `me` (a capability lookup in `me`'s Pd), and the partner thread
    /// `partner_of` picks from both (the waiting receiver, or the caller to
    /// reply to); plus what switching to the partner's Pd needs, when that
    /// Pd is not `loaded`. `None` when any of them is gone or of another
    /// kind, or the partner is `me` itself (two `&mut` would alias).
    #[inline(always)]
    pub fn ipc_partners(
        &mut self,
        me: ObjRef,
        loaded: Option<ObjRef>,
        endpoint_of: impl FnOnce(&Objects, &Thread) -> Option<ObjRef>,
        partner_of: impl FnOnce(&Objects, &Thread, &Endpoint) -> Option<ObjRef>,
    ) -> Option<IpcPartners<'_>> {
        let me_ptr = self.thread_ptr(me)?;
        // SAFETY: `thread_ptr` checked the frame (a live thread); only
        // shared references exist until the exclusive ones are made below.
        let me_thread = unsafe { &*me_ptr };
        let endpoint = endpoint_of(self, me_thread)?;
        let endpoint_ptr = match self.get(endpoint)? {
            Object::Endpoint(e) => core::ptr::from_ref(e).cast_mut(),
            _ => return None,
        };
        // SAFETY: as above: a live endpoint, shared for now.
        let partner = partner_of(self, me_thread, unsafe { &*endpoint_ptr })?;
        if partner.pfn == me.pfn {
            return None;
        }
        let partner_ptr = self.thread_ptr(partner)?;
        // SAFETY: as above.
        let partner_pd = unsafe { (*partner_ptr).pd };
        // SAFETY: as above.
        let cached = unsafe { (*partner_ptr).space_cache.get() };
        let space = if loaded == Some(partner_pd) {
            None
        } else if cached.epoch == self.epoch {
            Some(Space::Cached {
                pd_ref: partner_pd,
                cr3: cached.cr3,
                io_bitmap: cached.io_bitmap,
            })
        } else {
            match self.get(partner_pd)? {
                Object::Pd(pd) => Some(Space::Fresh {
                    pd_ref: partner_pd,
                    pd: core::ptr::from_ref(pd).cast_mut(),
                    epoch: self.epoch,
                }),
                _ => return None,
            }
        };
        // SAFETY: three live objects in three different frames (a thread,
        // an endpoint, and a thread that is not `me`), and maybe a live Pd,
        // whose frame is none of theirs (its kind differs), so the
        // references never overlap; the shared ones above are no longer
        // used, and `&mut self` keeps every other reference away while
        // these live.
        unsafe {
            Some(IpcPartners {
                me: &mut *me_ptr,
                endpoint: &mut *endpoint_ptr,
                partner_ref: partner,
                partner: &mut *partner_ptr,
                space: space.map(|space| match space {
                    Space::Cached {
                        pd_ref,
                        cr3,
                        io_bitmap,
                    } => Space::Cached {
                        pd_ref,
                        cr3,
                        io_bitmap,
                    },
                    Space::Fresh { pd_ref, pd, epoch } => Space::Fresh {
                        pd_ref,
                        pd: &mut *pd,
                        epoch,
                    },
                }),
            })
        }
    }

    /// A pointer to the live thread `r`, checked against the frame table.
    #[inline(always)]
    fn thread_ptr(&self, r: ObjRef) -> Option<*mut Thread> {
        match self.get(r)? {
            Object::Thread(t) => Some(core::ptr::from_ref(t).cast_mut()),
            _ => None,
        }
    }

    /// Writes a new object into a frame just allocated for it.
    pub fn init_object(&mut self, pfn: Pfn, object: Object) {
        if !self.uses(pfn, FrameUse::Object) {
            return;
        }
        // SAFETY: the frame is an object frame (checked), freshly allocated
        // and zeroed; `write` does not drop the old bytes, which are no object.
        unsafe { core::ptr::write(self.frame_ptr::<Object>(pfn.address()), object) };
    }

    /// The Pd `r` names.
    #[inline(always)]
    pub fn pd(&self, r: ObjRef) -> Option<&Pd> {
        match self.get(r)? {
            Object::Pd(pd) => Some(pd),
            _ => None,
        }
    }

    /// The Pd `r` names, for changing.
    #[inline]
    pub fn pd_mut(&mut self, r: ObjRef) -> Option<&mut Pd> {
        match self.get_mut(r)? {
            Object::Pd(pd) => Some(pd),
            _ => None,
        }
    }

    /// The Pd in frame `pfn`, if that frame holds one now.
    pub fn pd_at_mut(&mut self, pfn: Pfn) -> Option<&mut Pd> {
        let r = self.live(pfn)?;
        self.pd_mut(r)
    }

    /// The thread `r` names.
    #[inline(always)]
    pub fn thread(&self, r: ObjRef) -> Option<&Thread> {
        match self.get(r)? {
            Object::Thread(thread) => Some(thread),
            _ => None,
        }
    }

    /// The thread `r` names, for changing.
    #[inline]
    pub fn thread_mut(&mut self, r: ObjRef) -> Option<&mut Thread> {
        match self.get_mut(r)? {
            Object::Thread(thread) => Some(thread),
            _ => None,
        }
    }

    /// Two different threads at once (see [`Objects::get2_mut`]).
    #[inline(always)]
    pub fn threads2_mut(&mut self, a: ObjRef, b: ObjRef) -> Option<(&mut Thread, &mut Thread)> {
        match self.get2_mut(a, b)? {
            (Object::Thread(a), Object::Thread(b)) => Some((a, b)),
            _ => None,
        }
    }

    /// Two different Pds at once (see [`Objects::get2_mut`]).
    pub fn pds2_mut(&mut self, a: ObjRef, b: ObjRef) -> Option<(&mut Pd, &mut Pd)> {
        match self.get2_mut(a, b)? {
            (Object::Pd(a), Object::Pd(b)) => Some((a, b)),
            _ => None,
        }
    }

    /// The thread in frame `pfn` (queued threads are known to be live).
    pub fn thread_at(&self, pfn: Pfn) -> Option<(ObjRef, &Thread)> {
        let r = self.live(pfn)?;
        self.thread(r).map(|t| (r, t))
    }

    /// The thread in frame `pfn`, for changing.
    pub fn thread_at_mut(&mut self, pfn: Pfn) -> Option<(ObjRef, &mut Thread)> {
        let r = self.live(pfn)?;
        self.thread_mut(r).map(|t| (r, t))
    }

    /// The endpoint `r` names, for changing.
    pub fn endpoint_mut(&mut self, r: ObjRef) -> Option<&mut Endpoint> {
        match self.get_mut(r)? {
            Object::Endpoint(endpoint) => Some(endpoint),
            _ => None,
        }
    }

    /// The notification `r` names, for changing.
    pub fn notification_mut(&mut self, r: ObjRef) -> Option<&mut Notification> {
        match self.get_mut(r)? {
            Object::Notification(notification) => Some(notification),
            _ => None,
        }
    }

    /// The dataspace `r` names.
    pub fn dataspace(&self, r: ObjRef) -> Option<&Dataspace> {
        match self.get(r)? {
            Object::Dataspace(dataspace) => Some(dataspace),
            _ => None,
        }
    }

    /// The dataspace `r` names, for changing.
    pub fn dataspace_mut(&mut self, r: ObjRef) -> Option<&mut Dataspace> {
        match self.get_mut(r)? {
            Object::Dataspace(dataspace) => Some(dataspace),
            _ => None,
        }
    }

    /// The IoPorts object `r` names, for changing.
    pub fn io_ports_mut(&mut self, r: ObjRef) -> Option<&mut IoPorts> {
        match self.get_mut(r)? {
            Object::IoPorts(ports) => Some(ports),
            _ => None,
        }
    }

    /// Runs `f` on one of the thread queues kept in object `r`, with the
    /// store (where the queued threads' links live) alongside. The queue is
    /// a small value copied out and back, so the object and the threads are
    /// never borrowed together. `None` if `r` has no such queue.
    pub fn with_queue<R>(
        &mut self,
        r: ObjRef,
        which: QueueOf,
        f: impl FnOnce(&mut crate::queue::Queue, &mut Objects) -> R,
    ) -> Option<R> {
        let mut queue = match (self.get(r)?, which) {
            (Object::Endpoint(e), QueueOf::Senders) => e.senders,
            (Object::Endpoint(e), QueueOf::Receivers) => e.receivers,
            (Object::Notification(n), QueueOf::Waiters) => n.waiters,
            _ => return None,
        };
        let result = f(&mut queue, self);
        match (self.get_mut(r)?, which) {
            (Object::Endpoint(e), QueueOf::Senders) => e.senders = queue,
            (Object::Endpoint(e), QueueOf::Receivers) => e.receivers = queue,
            (Object::Notification(n), QueueOf::Waiters) => n.waiters = queue,
            _ => {}
        }
        Some(result)
    }

    // ---- frames that are not objects ----

    /// A page of capability entries.
    #[inline(always)]
    pub fn cap_page(&self, pfn: Pfn) -> Option<&[Cap; CAPS_PER_PAGE]> {
        // SAFETY: the frame is a capability-table page (checked), allocated
        // zeroed; every bit pattern is a valid `Cap`.
        self.uses(pfn, FrameUse::CapTable)
            .then(|| unsafe { self.frame_ref(pfn.address()) })
    }

    /// A page of capability entries, for changing.
    #[inline]
    pub fn cap_page_mut(&mut self, pfn: Pfn) -> Option<&mut [Cap; CAPS_PER_PAGE]> {
        self.epoch += 1;
        if !self.uses(pfn, FrameUse::CapTable) {
            return None;
        }
        // SAFETY: as in `cap_page`; `&mut self` makes it the only reference.
        Some(unsafe { self.frame_mut(pfn.address()) })
    }

    /// The page table at physical address `phys` (a Pd's, never the kernel's).
    pub fn table(&self, phys: u64) -> Option<&[u64; 512]> {
        // SAFETY: the frame is a Pd's page table (checked); any bits are a
        // valid `u64`.
        (phys.is_multiple_of(PAGE) && self.uses(Pfn::containing(phys), FrameUse::PageTable))
            .then(|| unsafe { self.frame_ref(phys) })
    }

    /// The page table at `phys`, for changing.
    pub fn table_mut(&mut self, phys: u64) -> Option<&mut [u64; 512]> {
        self.epoch += 1;
        if !phys.is_multiple_of(PAGE) || !self.uses(Pfn::containing(phys), FrameUse::PageTable) {
            return None;
        }
        // SAFETY: as in `table`; `&mut self` makes it the only reference.
        Some(unsafe { self.frame_mut(phys) })
    }

    /// A Pd's I/O permission bitmap: two frames from `first`.
    pub fn io_bitmap_mut(&mut self, first: Pfn) -> Option<&mut [u8; crate::ports::BITMAP_BYTES]> {
        self.epoch += 1;
        if !self.uses(first, FrameUse::IoBitmap) || !self.uses(first.offset(1), FrameUse::IoBitmap)
        {
            return None;
        }
        // SAFETY: two consecutive bitmap frames (checked); bytes are valid
        // at any value; `&mut self` makes it the only reference.
        Some(unsafe { self.frame_mut(first.address()) })
    }

    /// A Pd's I/O permission bitmap, for reading.
    pub fn io_bitmap(&self, first: Pfn) -> Option<&[u8; crate::ports::BITMAP_BYTES]> {
        // SAFETY: as in `io_bitmap_mut`, shared.
        (self.uses(first, FrameUse::IoBitmap) && self.uses(first.offset(1), FrameUse::IoBitmap))
            .then(|| unsafe { self.frame_ref(first.address()) })
    }

    /// The mapping record `id` names, if its page is a record page.
    pub fn record(&self, id: super::mappings::RecordId) -> Option<&MappingRecord> {
        let (page, index) = super::mappings::record_position(id)?;
        // SAFETY: a record page (checked), allocated zeroed; every bit
        // pattern is a valid array of `MappingRecord` (plain words).
        let records: &[MappingRecord; RECORDS_PER_PAGE] = self
            .uses(page, FrameUse::MapRecords)
            .then(|| unsafe { self.frame_ref(page.address()) })?;
        records.get(index)
    }

    /// The mapping record `id` names, for changing.
    pub fn record_mut(&mut self, id: super::mappings::RecordId) -> Option<&mut MappingRecord> {
        let (page, index) = super::mappings::record_position(id)?;
        if !self.uses(page, FrameUse::MapRecords) {
            return None;
        }
        // SAFETY: as in `record`; `&mut self` makes it the only reference.
        let records: &mut [MappingRecord; RECORDS_PER_PAGE] =
            unsafe { self.frame_mut(page.address()) };
        records.get_mut(index)
    }

    /// Whether every frame of `[phys, phys + len)` holds dataspace contents
    /// a Pd pays for (the only memory read or written for a user).
    fn is_user_data(&self, phys: u64, len: u64) -> bool {
        let Some(end) = phys.checked_add(len) else {
            return false;
        };
        let last = end.saturating_sub(1).max(phys) / PAGE;
        let mut pfn = phys / PAGE;
        loop {
            if !self.frames.is_user_data(Pfn(pfn)) {
                return false;
            }
            if pfn >= last {
                return true;
            }
            pfn += 1;
        }
    }

    /// `len` bytes of user data at `phys` (one IPC buffer page at most).
    pub fn user_bytes(&self, phys: u64, len: usize) -> Option<&[u8]> {
        if len as u64 > PAGE || !self.is_user_data(phys, len as u64) {
            return None;
        }
        let address = self.window.at(phys, len as u64)?;
        // SAFETY: user-data frames (checked) inside the window (checked);
        // any byte is a valid `u8`; `&self` keeps the kernel from writing
        // them meanwhile (user threads do not run while the kernel does).
        Some(unsafe { core::slice::from_raw_parts(address, len) })
    }

    /// Reads the `u32` at `phys` in user data (an IPC buffer's slot lists).
    pub fn read_user_u32(&self, phys: u64) -> Option<u32> {
        let bytes = self.user_bytes(phys, 4)?;
        Some(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// Copies `len` bytes of user data from `from` to `to` (both within
    /// one page; they may be the same page).
    pub fn copy_user(&mut self, from: u64, to: u64, len: usize) -> bool {
        if len as u64 > PAGE
            || !self.is_user_data(from, len as u64)
            || !self.is_user_data(to, len as u64)
        {
            return false;
        }
        let (Some(source), Some(destination)) = (
            self.window.at(from, len as u64),
            self.window.at(to, len as u64),
        ) else {
            return false;
        };
        // SAFETY: both ranges are user-data frames inside the window
        // (checked); `copy` allows them to overlap.
        unsafe { core::ptr::copy(source, destination, len) };
        true
    }

    /// The bytes of `pages` consecutive data frames from `base` (a
    /// dataspace the kernel fills: zeroes, or core's program image).
    pub fn data_mut(&mut self, base: Pfn, pages: u64) -> Option<&mut [u8]> {
        let bytes = pages.checked_mul(PAGE)?;
        if !(0..pages).all(|page| self.uses(base.offset(page), FrameUse::Data)) {
            return None;
        }
        let address = self.window.at(base.address(), bytes)?;
        // SAFETY: data frames (checked) inside the window (checked); `&mut
        // self` makes the slice the only reference the kernel holds.
        Some(unsafe { core::slice::from_raw_parts_mut(address, usize::try_from(bytes).ok()?) })
    }

    /// Fills a frame just allocated with zeroes.
    pub fn zero_frame(&mut self, pfn: Pfn) {
        if let Some(address) = self.window.at(pfn.address(), PAGE)
            && !self.uses(pfn, FrameUse::Free)
        {
            // SAFETY: a frame the table holds as allocated (checked), inside
            // the window (checked); its old contents are nobody's.
            unsafe { core::ptr::write_bytes(address, 0, PAGE as usize) };
        }
    }

    // ---- the raw casts ----

    /// A pointer to the `T` at `phys`, or a halt if the window does not
    /// cover it (a kernel bug: every caller checked the frame table).
    #[inline(always)]
    fn frame_ptr<T>(&self, phys: u64) -> *mut T {
        match self.window.at(phys, core::mem::size_of::<T>() as u64) {
            Some(address) => {
                // SAFETY: the window starts at a non-null address and does
                // not wrap (`PhysWindow::new`'s contract: it is mapped
                // memory), so no address inside it is null. Said so that
                // the compiler drops a null test from every object lookup.
                unsafe { core::hint::assert_unchecked(!address.is_null()) };
                address.cast()
            }
            None => outside_window(phys),
        }
    }

    /// The `T` at physical address `phys`, shared.
    ///
    /// # Safety
    /// The frame table must record the frame(s) at `phys` as holding a `T`
    /// (an initialised object, or a table whose every bit pattern is a valid
    /// `T`), and `phys` must be aligned for `T`.
    #[inline(always)]
    unsafe fn frame_ref<T>(&self, phys: u64) -> &T {
        // SAFETY: the caller vouches for the contents; `&self` ties the
        // reference to a shared borrow of the store, so no `&mut` into the
        // store's frames can exist at the same time.
        unsafe { &*self.frame_ptr::<T>(phys) }
    }

    /// The `T` at physical address `phys`, exclusive.
    ///
    /// # Safety
    /// As for [`Objects::frame_ref`].
    #[inline(always)]
    unsafe fn frame_mut<T>(&mut self, phys: u64) -> &mut T {
        // SAFETY: the caller vouches for the contents; `&mut self` makes
        // this the only reference into the store while it lives.
        unsafe { &mut *self.frame_ptr::<T>(phys) }
    }
}

#[cold]
fn outside_window(phys: u64) -> ! {
    crate::kprintln!("kernel: frame {phys:#x} lies outside the physical window");
    halt()
}

#[cfg(target_os = "none")]
fn halt() -> ! {
    crate::arch::halt_forever()
}

#[cfg(not(target_os = "none"))]
fn halt() -> ! {
    panic!("kernel stopped")
}

/// Thread queue links live in the threads.
impl Links for Objects {
    fn next(&self, thread: Pfn) -> Option<Pfn> {
        self.thread_at(thread).and_then(|(_, t)| t.next)
    }
    fn set_next(&mut self, thread: Pfn, next: Option<Pfn>) {
        if let Some((_, t)) = self.thread_at_mut(thread) {
            t.next = next;
        }
    }
}
