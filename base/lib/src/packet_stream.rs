//! # Packet stream: bulk data between two components through shared memory
//!
//! The primitive under Block, Nic and FileSystem sessions (ARCHITECTURE §5).
//! One dataspace, mapped in both Pds, holds a submit ring, an
//! acknowledgement ring and a payload area. The [`Client`] allocates payload
//! space, fills it, and submits a [`Descriptor`] naming it; the [`Server`]
//! takes the descriptor, works on the payload, and acknowledges it with a
//! [`Status`]; the client takes the acknowledgement and frees (or reuses)
//! the payload.
//!
//! ## Neither side trusts the other
//! Everything in the shared memory can be rewritten by the peer at any time.
//! So each side keeps its own indices privately and only *publishes* them;
//! the peer's index is read once per operation and an impossible value is
//! reported as [`Error::PeerIndexCorrupt`]. Descriptors are copied out of the
//! ring before use. The server checks every descriptor's payload range
//! against the payload area and hands out a checked [`Packet`] only for a
//! range that fits; a bad one is still acknowledged (with
//! [`Status::BAD_DESCRIPTOR`]), never followed. The client accepts an
//! acknowledgement only for a packet it has in flight, with the offset,
//! length and tag it submitted, so a lying server cannot make it free the
//! wrong memory. The payload is only ever copied, with bounds checked on
//! every copy. Nothing here panics on what the peer wrote.
//!
//! ## Layout (offsets from the region's start)
//! ```text
//!   0  submit head   (u64, written by the client)
//!  64  submit tail   (u64, written by the server)
//! 128  ack head      (u64, written by the server)
//! 192  ack tail      (u64, written by the client)
//! 256  submit ring   entries × 32-byte descriptors
//!  ..  ack ring      entries × 32-byte descriptors
//!  ..  payload area  (from a PAYLOAD_ALIGN boundary to the region's end)
//! ```
//! Indices count forever (wrapping); the slot is `index % entries`. The
//! geometry (region size, entry count) is a session argument each side
//! computes for itself; nothing about it is read from the shared memory.
//!
//! ## Signals
//! Notifications are the caller's business. Each operation returns a
//! [`Signal`]: [`Signal::Peer`] when the peer may be waiting for exactly
//! this (a ring was empty before a submit, or full before a take). A side
//! that finds nothing to do must wait only after a take returned `None`;
//! with that loop, and notifications that stay set until waited for, no
//! wake-up is lost (each side publishes its index, then fences, then reads
//! the peer's).
//!
//! Which side creates the dataspace is the session's choice; the server
//! should, from the session's donated quota, so that a client cannot revoke
//! the memory under the server's feet.

use crate::abi::{self, CapSlot, map, slot};
use crate::{sys, vspace};
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering, fence};

/// Bytes of one descriptor in a ring.
pub const DESCRIPTOR_SIZE: usize = 32;
/// Most descriptors a ring may hold.
pub const MAX_ENTRIES: u32 = 1 << 16;
/// Alignment of the region, the payload area and every payload allocation.
pub const PAYLOAD_ALIGN: usize = 64;

/// Bytes of the control block (four indices, each on its own cache line).
const CONTROL_SIZE: usize = 256;
const SUBMIT_HEAD: usize = 0;
const SUBMIT_TAIL: usize = 64;
const ACK_HEAD: usize = 128;
const ACK_TAIL: usize = 192;

/// Everything that can go wrong with a packet stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The region is misaligned, too small for the rings, or the entry
    /// count is not a power of two in `1..=MAX_ENTRIES`.
    BadGeometry,
    /// The ring has no free slot; try again after the peer took some.
    RingFull,
    /// The peer published an index that no honest peer could: the session
    /// is broken and should be closed.
    PeerIndexCorrupt,
    /// A descriptor names payload outside the payload area.
    BadDescriptor,
    /// An acknowledgement names no packet this client has in flight.
    UnknownPacket,
    /// A copy would reach outside its packet.
    OutOfPacket,
    /// The payload area has no free range that large.
    PayloadExhausted,
    /// The component's heap refused the bookkeeping for one more packet.
    OutOfMemory,
    /// Mapping or unmapping the shared dataspace failed.
    Kernel(abi::Error),
}

/// Whether the caller should signal the peer after an operation.
#[must_use = "the peer may be waiting for this signal"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// The peer may be waiting for exactly this; signal its notification.
    Peer,
    /// The peer has work queued already (or room to spare); no signal needed.
    NotNeeded,
}

impl Signal {
    /// `Peer` if either asks for it.
    pub fn or(self, other: Signal) -> Signal {
        if self == Signal::Peer || other == Signal::Peer {
            Signal::Peer
        } else {
            Signal::NotNeeded
        }
    }
}

/// What a packet asks for; its meaning belongs to the session (read, write,
/// sync for Block; transmit for Nic; ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Opcode(pub u16);

/// The outcome the server reports in an acknowledgement. Values from 16 on
/// belong to the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Status(pub u16);

impl Status {
    /// Done as asked.
    pub const OK: Status = Status(0);
    /// The descriptor's payload range was outside the payload area.
    pub const BAD_DESCRIPTOR: Status = Status(1);
    /// The server does not know the opcode.
    pub const UNSUPPORTED: Status = Status(2);
    /// The server tried and failed (an I/O error, say).
    pub const FAILED: Status = Status(3);
}

/// One ring entry, as a plain copy. What comes out of a ring is the peer's
/// claim until checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Descriptor {
    /// Start of the payload, relative to the payload area.
    pub offset: u64,
    /// Bytes of payload.
    pub length: u32,
    /// What to do.
    pub opcode: Opcode,
    /// The server's verdict (in acknowledgements).
    pub status: Status,
    /// The client's own name for the request; the server hands it back.
    pub tag: u64,
    /// An opcode-specific argument (a block number, a file position).
    pub argument: u64,
}

impl Descriptor {
    fn to_words(self) -> [u64; 4] {
        [
            self.offset,
            u64::from(self.length)
                | u64::from(self.opcode.0) << 32
                | u64::from(self.status.0) << 48,
            self.tag,
            self.argument,
        ]
    }

    fn from_words(words: [u64; 4]) -> Self {
        Descriptor {
            offset: words[0],
            length: words[1] as u32,
            opcode: Opcode((words[1] >> 32) as u16),
            status: Status((words[1] >> 48) as u16),
            tag: words[2],
            argument: words[3],
        }
    }
}

/// A checked range of the payload area: made only by [`Client::alloc_packet`]
/// or by the server's check of a descriptor, so it always fits the payload
/// area of the stream it came from.
#[derive(Debug, PartialEq, Eq)]
pub struct Packet {
    offset: u64,
    length: u32,
}

impl Packet {
    /// Start, relative to the payload area.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes of payload.
    pub fn length(&self) -> usize {
        self.length as usize
    }
}

/// Where the rings and the payload area lie in a region, computed by each
/// side from the session's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    entries: u32,
    payload_offset: usize,
    payload_len: usize,
}

impl Geometry {
    /// The geometry of a `region_len`-byte region with rings of `entries`
    /// descriptors (a power of two, at most [`MAX_ENTRIES`]).
    pub fn new(region_len: usize, entries: u32) -> Result<Self, Error> {
        if !entries.is_power_of_two() || entries > MAX_ENTRIES {
            return Err(Error::BadGeometry);
        }
        let payload_offset = Self::payload_offset(entries);
        match region_len.checked_sub(payload_offset) {
            Some(payload_len) if payload_len > 0 => Ok(Geometry {
                entries,
                payload_offset,
                payload_len,
            }),
            _ => Err(Error::BadGeometry),
        }
    }

    /// The region size for rings of `entries` and `payload_len` bytes of
    /// payload (for a session to ask for).
    pub fn region_len_for(entries: u32, payload_len: usize) -> Option<usize> {
        if !entries.is_power_of_two() || entries > MAX_ENTRIES {
            return None;
        }
        Self::payload_offset(entries).checked_add(payload_len)
    }

    fn payload_offset(entries: u32) -> usize {
        // At most 256 + 2 × 65536 × 32 bytes: no overflow.
        let rings_end = CONTROL_SIZE + 2 * entries as usize * DESCRIPTOR_SIZE;
        rings_end.div_ceil(PAYLOAD_ALIGN) * PAYLOAD_ALIGN
    }

    /// Descriptors per ring.
    pub fn entries(&self) -> u32 {
        self.entries
    }

    /// Bytes in the payload area.
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    fn submit_ring(&self) -> usize {
        CONTROL_SIZE
    }

    fn ack_ring(&self) -> usize {
        CONTROL_SIZE + self.entries as usize * DESCRIPTOR_SIZE
    }

    /// `[offset, offset + length)` of the payload area as a packet, if it fits.
    fn check(&self, offset: u64, length: u32) -> Result<Packet, Error> {
        match offset.checked_add(u64::from(length)) {
            Some(end) if end <= self.payload_len as u64 => Ok(Packet { offset, length }),
            _ => Err(Error::BadDescriptor),
        }
    }
}

/// The shared memory as this Pd sees it. Indices and descriptors are only
/// touched as atomic words, payload only by copies, so no Rust reference
/// into memory the peer writes ever exists.
pub struct SharedRegion {
    base: NonNull<u8>,
    len: usize,
    mapping: Option<vspace::Range>,
}

impl SharedRegion {
    /// Maps `len` bytes (a page multiple) of `dataspace` read-write into a
    /// free range of the own address space; unmapped when dropped.
    pub fn attach(dataspace: CapSlot, len: usize) -> Result<SharedRegion, Error> {
        if len == 0 || !len.is_multiple_of(abi::PAGE_SIZE) {
            return Err(Error::BadGeometry);
        }
        let range = vspace::allocate(len as u64).map_err(Error::Kernel)?;
        let flags = map::READ | map::WRITE;
        if let Err(error) = sys::map(slot::OWN_PD, dataspace, 0, range.start, len as u64, flags) {
            vspace::free(range);
            return Err(Error::Kernel(error));
        }
        let base = NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(
            range.start as usize,
        ))
        .ok_or(Error::BadGeometry)?;
        Ok(SharedRegion {
            base,
            len,
            mapping: Some(range),
        })
    }

    /// A view of `len` bytes at `base`.
    ///
    /// # Safety
    /// The bytes stay readable and writable while the view lives, `base` is
    /// [`PAYLOAD_ALIGN`]-aligned, and within this Pd they are accessed only
    /// through `SharedRegion`s (another Pd may write them at will).
    pub unsafe fn from_raw(base: NonNull<u8>, len: usize) -> SharedRegion {
        SharedRegion {
            base,
            len,
            mapping: None,
        }
    }

    fn check(&self, geometry: &Geometry) -> Result<(), Error> {
        let aligned = (self.base.as_ptr() as usize).is_multiple_of(PAYLOAD_ALIGN);
        let fits = geometry.payload_offset.checked_add(geometry.payload_len) == Some(self.len);
        if aligned && fits {
            Ok(())
        } else {
            Err(Error::BadGeometry)
        }
    }

    /// The shared word at `offset`: always one of the indices or a ring
    /// slot's word, which [`Geometry`] (checked against `len`) keeps in bounds.
    fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset.is_multiple_of(8) && offset + 8 <= self.len);
        // SAFETY: `offset` lies inside the region (see above) and is 8-byte
        // aligned (region aligned, offsets multiples of 8); the memory lives
        // as long as `self` (constructor contract), and within this Pd it is
        // accessed only atomically (payload copies never reach the rings).
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    fn read_descriptor(&self, at: usize) -> Descriptor {
        let word = |index: usize| self.word(at + 8 * index).load(Ordering::Relaxed);
        Descriptor::from_words([word(0), word(1), word(2), word(3)])
    }

    fn write_descriptor(&self, at: usize, descriptor: Descriptor) {
        for (index, value) in descriptor.to_words().into_iter().enumerate() {
            self.word(at + 8 * index).store(value, Ordering::Relaxed);
        }
    }

    /// Byte range `[start, start + len)` of the region for `packet[at..]`,
    /// checked against both the packet and the payload area.
    fn payload_range(
        &self,
        geometry: &Geometry,
        packet: &Packet,
        at: usize,
        len: usize,
    ) -> Result<usize, Error> {
        let inside_packet = at
            .checked_add(len)
            .is_some_and(|end| end <= packet.length());
        // A packet from another stream may not fit this one: check again.
        let inside_area = geometry.check(packet.offset, packet.length).is_ok();
        if !inside_packet || !inside_area {
            return Err(Error::OutOfPacket);
        }
        Ok(geometry.payload_offset + packet.offset as usize + at)
    }

    fn copy_in(&self, start: usize, bytes: &[u8]) {
        // SAFETY: `payload_range` put `[start, start + len)` inside the
        // payload area, which is inside the region; raw copies make no
        // reference to memory the peer may be writing, and `bytes` is our own.
        unsafe {
            core::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.base.as_ptr().add(start),
                bytes.len(),
            )
        }
    }

    fn copy_out(&self, start: usize, out: &mut [u8]) {
        // SAFETY: as in `copy_in`; whatever bytes the peer left are valid `u8`s.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(start),
                out.as_mut_ptr(),
                out.len(),
            )
        }
    }
}

// SAFETY: a view holds no thread-local state; another thread using it is
// no different from the peer Pd using its own view, which every access here
// already allows for (atomic words, raw payload copies).
unsafe impl Send for SharedRegion {}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        if let Some(range) = self.mapping.take() {
            // Nothing refers into the range any more; only give the
            // addresses back once the mapping is gone.
            if sys::unmap(slot::OWN_PD, range.start, range.end - range.start).is_ok() {
                vspace::free(range);
            }
        }
    }
}

/// The producing half of a ring: own head private, peer's tail checked.
struct Producer {
    ring: usize,
    head_at: usize,
    tail_at: usize,
    entries: u64,
    head: u64,
}

impl Producer {
    fn new(
        region: &SharedRegion,
        ring: usize,
        head_at: usize,
        tail_at: usize,
        entries: u32,
    ) -> Self {
        region.word(head_at).store(0, Ordering::Release);
        Producer {
            ring,
            head_at,
            tail_at,
            entries: u64::from(entries),
            head: 0,
        }
    }

    /// Slots in use, by the consumer's published tail.
    fn used(&self, region: &SharedRegion) -> Result<u64, Error> {
        let tail = region.word(self.tail_at).load(Ordering::Acquire);
        let used = self.head.wrapping_sub(tail);
        if used > self.entries {
            return Err(Error::PeerIndexCorrupt);
        }
        Ok(used)
    }

    fn push(&mut self, region: &SharedRegion, descriptor: Descriptor) -> Result<Signal, Error> {
        if self.used(region)? == self.entries {
            return Err(Error::RingFull);
        }
        let slot = (self.head & (self.entries - 1)) as usize;
        region.write_descriptor(self.ring + slot * DESCRIPTOR_SIZE, descriptor);
        let previous = self.head;
        self.head = self.head.wrapping_add(1);
        region
            .word(self.head_at)
            .store(self.head, Ordering::Release);
        // Publish, then look: either the consumer sees the new head before
        // it waits, or we see that it had taken everything and may wait.
        fence(Ordering::SeqCst);
        let tail = region.word(self.tail_at).load(Ordering::Relaxed);
        Ok(if tail == previous {
            Signal::Peer
        } else {
            Signal::NotNeeded
        })
    }
}

/// The consuming half of a ring: own tail private, peer's head checked.
struct Consumer {
    ring: usize,
    head_at: usize,
    tail_at: usize,
    entries: u64,
    tail: u64,
}

impl Consumer {
    fn new(
        region: &SharedRegion,
        ring: usize,
        head_at: usize,
        tail_at: usize,
        entries: u32,
    ) -> Self {
        region.word(tail_at).store(0, Ordering::Release);
        Consumer {
            ring,
            head_at,
            tail_at,
            entries: u64::from(entries),
            tail: 0,
        }
    }

    fn pop(&mut self, region: &SharedRegion) -> Result<Option<(Descriptor, Signal)>, Error> {
        // Pairs with the producer's fence (see `Producer::push`).
        fence(Ordering::SeqCst);
        let head = region.word(self.head_at).load(Ordering::Acquire);
        let pending = head.wrapping_sub(self.tail);
        if pending > self.entries {
            return Err(Error::PeerIndexCorrupt);
        }
        if pending == 0 {
            return Ok(None);
        }
        let slot = (self.tail & (self.entries - 1)) as usize;
        let descriptor = region.read_descriptor(self.ring + slot * DESCRIPTOR_SIZE);
        let previous = self.tail;
        self.tail = self.tail.wrapping_add(1);
        // Release: the descriptor is read before the producer may reuse it.
        region
            .word(self.tail_at)
            .store(self.tail, Ordering::Release);
        fence(Ordering::SeqCst);
        let head = region.word(self.head_at).load(Ordering::Relaxed);
        // Full just before this take: the producer may wait for room.
        let signal = if head.wrapping_sub(previous) == self.entries {
            Signal::Peer
        } else {
            Signal::NotNeeded
        };
        Ok(Some((descriptor, signal)))
    }
}

/// What the client did with a payload allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    /// Allocated, in the client's hands.
    Held,
    /// Submitted with this descriptor; waiting for its acknowledgement.
    InFlight(Descriptor),
}

/// One payload allocation: `span` bytes from `offset`, of which the packet
/// uses `length`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Allocation {
    offset: u64,
    span: u64,
    length: u32,
    used: Use,
}

/// First fit over the payload area, client side. Allocations are kept
/// sorted by offset; the free ranges are the gaps between them. Every
/// allocation takes at least [`PAYLOAD_ALIGN`] bytes, so each (even an empty
/// packet) has an offset of its own by which an acknowledgement names it.
struct PayloadAllocator {
    capacity: u64,
    allocations: Vec<Allocation>,
}

impl PayloadAllocator {
    fn new(capacity: usize) -> Self {
        PayloadAllocator {
            capacity: capacity as u64,
            allocations: Vec::new(),
        }
    }

    fn allocate(&mut self, length: u32) -> Result<Packet, Error> {
        let align = PAYLOAD_ALIGN as u64;
        let span = u64::from(length.max(1)).div_ceil(align) * align;
        let mut cursor = 0;
        let mut index = self.allocations.len();
        for (position, allocation) in self.allocations.iter().enumerate() {
            if allocation.offset - cursor >= span {
                index = position;
                break;
            }
            cursor = allocation.offset + allocation.span;
        }
        if index == self.allocations.len() && self.capacity.saturating_sub(cursor) < span {
            return Err(Error::PayloadExhausted);
        }
        self.allocations
            .try_reserve(1)
            .map_err(|_| Error::OutOfMemory)?;
        self.allocations.insert(
            index,
            Allocation {
                offset: cursor,
                span,
                length,
                used: Use::Held,
            },
        );
        Ok(Packet {
            offset: cursor,
            length,
        })
    }

    fn find(&self, offset: u64) -> Option<usize> {
        self.allocations
            .binary_search_by_key(&offset, |allocation| allocation.offset)
            .ok()
    }

    /// Frees a held packet.
    fn free(&mut self, packet: Packet) -> Result<(), Error> {
        match self.find(packet.offset) {
            Some(index) if self.allocations[index].used == Use::Held => {
                self.allocations.remove(index);
                Ok(())
            }
            _ => Err(Error::UnknownPacket),
        }
    }

    fn mark_in_flight(&mut self, packet: &Packet, descriptor: Descriptor) -> Result<(), Error> {
        let index = self.find(packet.offset).ok_or(Error::UnknownPacket)?;
        let allocation = &mut self.allocations[index];
        if allocation.used != Use::Held || allocation.length != packet.length {
            return Err(Error::UnknownPacket);
        }
        allocation.used = Use::InFlight(descriptor);
        Ok(())
    }

    /// Takes back the packet an acknowledgement names, if it is the one
    /// submitted there (same offset, length, opcode, tag and argument).
    fn acknowledged(&mut self, ack: &Descriptor) -> Result<Packet, Error> {
        let index = self.find(ack.offset).ok_or(Error::UnknownPacket)?;
        let allocation = &mut self.allocations[index];
        match allocation.used {
            Use::InFlight(submitted)
                if Descriptor {
                    status: ack.status,
                    ..submitted
                } == *ack =>
            {
                allocation.used = Use::Held;
                Ok(Packet {
                    offset: allocation.offset,
                    length: allocation.length,
                })
            }
            _ => Err(Error::UnknownPacket),
        }
    }
}

/// A completed request, as the client receives it.
#[derive(Debug)]
pub struct Acknowledgement {
    /// The packet, back in the client's hands (free or reuse it).
    pub packet: Packet,
    /// The server's verdict.
    pub status: Status,
    /// The opcode it was submitted with.
    pub opcode: Opcode,
    /// The tag it was submitted with.
    pub tag: u64,
    /// The argument it was submitted with.
    pub argument: u64,
}

/// The client's end: allocates payload, submits requests, takes
/// acknowledgements.
pub struct Client {
    region: SharedRegion,
    geometry: Geometry,
    submit: Producer,
    acks: Consumer,
    payload: PayloadAllocator,
}

impl Client {
    /// The client's end over `region` with rings of `entries` descriptors;
    /// publishes its own indices as zero.
    pub fn new(region: SharedRegion, entries: u32) -> Result<Client, Error> {
        let geometry = Geometry::new(region.len, entries)?;
        region.check(&geometry)?;
        let submit = Producer::new(
            &region,
            geometry.submit_ring(),
            SUBMIT_HEAD,
            SUBMIT_TAIL,
            entries,
        );
        let acks = Consumer::new(&region, geometry.ack_ring(), ACK_HEAD, ACK_TAIL, entries);
        Ok(Client {
            payload: PayloadAllocator::new(geometry.payload_len),
            region,
            geometry,
            submit,
            acks,
        })
    }

    /// The stream's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Room for `length` bytes of payload.
    pub fn alloc_packet(&mut self, length: usize) -> Result<Packet, Error> {
        let length = u32::try_from(length).map_err(|_| Error::PayloadExhausted)?;
        self.payload.allocate(length)
    }

    /// Gives a packet's payload space back.
    pub fn free_packet(&mut self, packet: Packet) -> Result<(), Error> {
        self.payload.free(packet)
    }

    /// Copies `bytes` into the packet from byte `at`.
    pub fn write(&self, packet: &Packet, at: usize, bytes: &[u8]) -> Result<(), Error> {
        let start = self
            .region
            .payload_range(&self.geometry, packet, at, bytes.len())?;
        self.region.copy_in(start, bytes);
        Ok(())
    }

    /// Copies the packet's bytes from `at` into `out` (after the
    /// acknowledgement: what the server wrote).
    pub fn read(&self, packet: &Packet, at: usize, out: &mut [u8]) -> Result<(), Error> {
        let start = self
            .region
            .payload_range(&self.geometry, packet, at, out.len())?;
        self.region.copy_out(start, out);
        Ok(())
    }

    /// Submits `packet` with what to do to it. The packet stays with the
    /// stream until its acknowledgement returns it; on error it comes back.
    pub fn submit(
        &mut self,
        packet: Packet,
        opcode: Opcode,
        tag: u64,
        argument: u64,
    ) -> Result<Signal, (Packet, Error)> {
        let descriptor = Descriptor {
            offset: packet.offset,
            length: packet.length,
            opcode,
            status: Status::OK,
            tag,
            argument,
        };
        if let Err(error) = self.payload.mark_in_flight(&packet, descriptor) {
            return Err((packet, error));
        }
        match self.submit.push(&self.region, descriptor) {
            Ok(signal) => Ok(signal),
            Err(error) => {
                // Not submitted after all: back in the client's hands.
                let _ = self.payload.acknowledged(&descriptor);
                Err((packet, error))
            }
        }
    }

    /// The next acknowledgement, if any, with whether the server may be
    /// waiting for room in the ack ring. An acknowledgement that matches no
    /// packet in flight is consumed and reported as
    /// [`Error::UnknownPacket`]; the stream stays usable, but the packet the
    /// forgery replaced stays in flight for good (the server may still be
    /// using it), so a client seeing this should close the session.
    pub fn next_acknowledgement(&mut self) -> Result<Option<(Acknowledgement, Signal)>, Error> {
        let Some((descriptor, signal)) = self.acks.pop(&self.region)? else {
            return Ok(None);
        };
        let packet = self.payload.acknowledged(&descriptor)?;
        Ok(Some((
            Acknowledgement {
                packet,
                status: descriptor.status,
                opcode: descriptor.opcode,
                tag: descriptor.tag,
                argument: descriptor.argument,
            },
            signal,
        )))
    }
}

/// A request the server took; it must go back through
/// [`Server::acknowledge`] (one dropped instead keeps its ack slot reserved
/// for good, and the client never learns its packet's fate).
#[derive(Debug)]
#[must_use = "every request must be acknowledged"]
pub struct Request {
    descriptor: Descriptor,
    payload: Result<Packet, Error>,
}

impl Request {
    /// The checked payload, or [`Error::BadDescriptor`] if the client named
    /// a range outside the payload area (acknowledge it with
    /// [`Status::BAD_DESCRIPTOR`]).
    pub fn payload(&self) -> Result<&Packet, Error> {
        self.payload.as_ref().map_err(|error| *error)
    }

    /// What the client asks for.
    pub fn opcode(&self) -> Opcode {
        self.descriptor.opcode
    }

    /// The client's tag.
    pub fn tag(&self) -> u64 {
        self.descriptor.tag
    }

    /// The opcode's argument (unchecked: the session decides what is valid).
    pub fn argument(&self) -> u64 {
        self.descriptor.argument
    }
}

/// The server's end: takes requests, checks them, acknowledges them.
pub struct Server {
    region: SharedRegion,
    geometry: Geometry,
    requests: Consumer,
    acks: Producer,
    /// Requests taken and not yet acknowledged.
    taken: u64,
}

impl Server {
    /// The server's end over `region` with rings of `entries` descriptors;
    /// publishes its own indices as zero.
    pub fn new(region: SharedRegion, entries: u32) -> Result<Server, Error> {
        let geometry = Geometry::new(region.len, entries)?;
        region.check(&geometry)?;
        let requests = Consumer::new(
            &region,
            geometry.submit_ring(),
            SUBMIT_HEAD,
            SUBMIT_TAIL,
            entries,
        );
        let acks = Producer::new(&region, geometry.ack_ring(), ACK_HEAD, ACK_TAIL, entries);
        Ok(Server {
            region,
            geometry,
            requests,
            acks,
            taken: 0,
        })
    }

    /// The stream's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// The next request, if any, with whether the client may be waiting for
    /// room in the submit ring. `None` also when the ack ring has no room
    /// for one more acknowledgement (the client must take some first), so
    /// every request taken can be acknowledged.
    pub fn next_request(&mut self) -> Result<Option<(Request, Signal)>, Error> {
        let ack_room = self.acks.entries - self.acks.used(&self.region)?;
        if self.taken >= ack_room {
            return Ok(None);
        }
        let Some((descriptor, signal)) = self.requests.pop(&self.region)? else {
            return Ok(None);
        };
        self.taken += 1;
        let payload = self.geometry.check(descriptor.offset, descriptor.length);
        Ok(Some((
            Request {
                descriptor,
                payload,
            },
            signal,
        )))
    }

    /// Copies the request's payload from `at` into `out`.
    pub fn read(&self, packet: &Packet, at: usize, out: &mut [u8]) -> Result<(), Error> {
        let start = self
            .region
            .payload_range(&self.geometry, packet, at, out.len())?;
        self.region.copy_out(start, out);
        Ok(())
    }

    /// Copies `bytes` into the request's payload from `at` (a read's result).
    pub fn write(&self, packet: &Packet, at: usize, bytes: &[u8]) -> Result<(), Error> {
        let start = self
            .region
            .payload_range(&self.geometry, packet, at, bytes.len())?;
        self.region.copy_in(start, bytes);
        Ok(())
    }

    /// Acknowledges `request` with `status`. Fails only if the client moved
    /// its ack tail impossibly (the request is then dropped: the session is
    /// broken).
    pub fn acknowledge(&mut self, request: Request, status: Status) -> Result<Signal, Error> {
        self.taken = self.taken.saturating_sub(1);
        let descriptor = Descriptor {
            status,
            ..request.descriptor
        };
        self.acks.push(&self.region, descriptor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{Layout, alloc_zeroed, dealloc};
    use std::vec;

    /// Page-aligned host memory standing in for the dataspace.
    struct Memory {
        base: NonNull<u8>,
        layout: Layout,
    }

    impl Memory {
        fn new(len: usize) -> Memory {
            let layout = Layout::from_size_align(len, 4096).expect("layout");
            // SAFETY: the layout has a non-zero size.
            let base = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("memory");
            Memory { base, layout }
        }

        /// One Pd's view of the memory.
        fn view(&self) -> SharedRegion {
            // SAFETY: aligned, lives as long as the test's `Memory`, and
            // touched only through views (or `scribble` below).
            unsafe { SharedRegion::from_raw(self.base, self.layout.size()) }
        }

        /// A hostile peer writes `value` into the word at `offset`.
        fn poke(&self, offset: usize, value: u64) {
            self.view().word(offset).store(value, Ordering::Relaxed);
        }
    }

    impl Drop for Memory {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout.
            unsafe { dealloc(self.base.as_ptr(), self.layout) };
        }
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    const ENTRIES: u32 = 8;

    fn stream(payload_len: usize) -> (Memory, Client, Server) {
        let len = Geometry::region_len_for(ENTRIES, payload_len).expect("geometry");
        let memory = Memory::new(len);
        let client = Client::new(memory.view(), ENTRIES).expect("client");
        let server = Server::new(memory.view(), ENTRIES).expect("server");
        (memory, client, server)
    }

    #[test]
    fn geometry_is_checked() {
        assert_eq!(Geometry::new(1 << 20, 0), Err(Error::BadGeometry));
        assert_eq!(Geometry::new(1 << 20, 3), Err(Error::BadGeometry));
        assert_eq!(
            Geometry::new(1 << 20, MAX_ENTRIES * 2),
            Err(Error::BadGeometry)
        );
        assert_eq!(Geometry::new(256 + 2 * 8 * 32, 8), Err(Error::BadGeometry));
        let geometry = Geometry::new(4096, 8).expect("fits");
        assert_eq!(geometry.payload_len(), 4096 - 768);
        assert_eq!(Geometry::region_len_for(8, 100), Some(868));
        assert_eq!(Geometry::region_len_for(8, usize::MAX), None);
        // A region that does not match the geometry is refused.
        let memory = Memory::new(4096);
        // SAFETY: a shorter view of live, aligned test memory.
        let short = unsafe { SharedRegion::from_raw(memory.base, 100) };
        assert!(matches!(Client::new(short, 8), Err(Error::BadGeometry)));
        let misaligned = NonNull::new(memory.base.as_ptr().wrapping_add(8)).expect("non-null");
        // SAFETY: inside live test memory; `new` must refuse it before use.
        let misaligned = unsafe { SharedRegion::from_raw(misaligned, 4088) };
        assert!(matches!(
            Server::new(misaligned, 8),
            Err(Error::BadGeometry)
        ));
    }

    #[test]
    fn round_trip() {
        let (_memory, mut client, mut server) = stream(4096);
        let packet = client.alloc_packet(5).expect("room");
        client.write(&packet, 0, b"hello").expect("fits");
        let signal = client.submit(packet, Opcode(7), 42, 1000).expect("room");
        assert_eq!(signal, Signal::Peer, "the ring was empty");

        let (request, _) = server.next_request().expect("sane").expect("one request");
        assert_eq!(
            (request.opcode(), request.tag(), request.argument()),
            (Opcode(7), 42, 1000)
        );
        let payload = request.payload().expect("valid");
        let mut buffer = [0; 5];
        server.read(payload, 0, &mut buffer).expect("fits");
        assert_eq!(&buffer, b"hello");
        server.write(payload, 0, b"HELLO").expect("fits");
        assert!(server.next_request().expect("sane").is_none());
        assert_eq!(server.acknowledge(request, Status::OK), Ok(Signal::Peer));

        let (ack, _) = client
            .next_acknowledgement()
            .expect("sane")
            .expect("one ack");
        assert_eq!(
            (ack.status, ack.opcode, ack.tag, ack.argument),
            (Status::OK, Opcode(7), 42, 1000)
        );
        client.read(&ack.packet, 0, &mut buffer).expect("fits");
        assert_eq!(&buffer, b"HELLO");
        assert!(client.next_acknowledgement().expect("sane").is_none());
        client.free_packet(ack.packet).expect("held");
        assert!(client.payload.allocations.is_empty());
    }

    #[test]
    fn copies_stay_inside_their_packet() {
        let (_memory, mut client, _server) = stream(4096);
        let packet = client.alloc_packet(16).expect("room");
        assert_eq!(client.write(&packet, 10, &[0; 7]), Err(Error::OutOfPacket));
        assert_eq!(
            client.write(&packet, usize::MAX, &[0; 2]),
            Err(Error::OutOfPacket)
        );
        assert_eq!(client.read(&packet, 17, &mut []), Err(Error::OutOfPacket));
        assert_eq!(client.write(&packet, 16, &[]), Ok(()));
        // A packet of a bigger stream does not fit this one.
        let (_other_memory, mut other, _) = stream(1 << 16);
        let foreign = other.alloc_packet(60_000).expect("room");
        assert_eq!(client.write(&foreign, 0, &[1]), Err(Error::OutOfPacket));
    }

    #[test]
    fn full_and_empty_rings_and_signals() {
        let (_memory, mut client, mut server) = stream(4096);
        for tag in 0..u64::from(ENTRIES) {
            let packet = client.alloc_packet(8).expect("room");
            let signal = client.submit(packet, Opcode(1), tag, 0).expect("room");
            let expected = if tag == 0 {
                Signal::Peer
            } else {
                Signal::NotNeeded
            };
            assert_eq!(signal, expected);
        }
        let packet = client.alloc_packet(8).expect("room");
        let (packet, error) = client.submit(packet, Opcode(1), 99, 0).expect_err("full");
        assert_eq!(error, Error::RingFull);
        // Taking from the full ring tells the client it may submit again.
        let (first, signal) = server.next_request().expect("sane").expect("request");
        assert_eq!(signal, Signal::Peer);
        let (second, signal) = server.next_request().expect("sane").expect("request");
        assert_eq!(signal, Signal::NotNeeded);
        assert_eq!(
            client.submit(packet, Opcode(1), 99, 0),
            Ok(Signal::NotNeeded)
        );
        assert_eq!(server.acknowledge(first, Status::OK), Ok(Signal::Peer));
        assert_eq!(
            server.acknowledge(second, Status::OK),
            Ok(Signal::NotNeeded)
        );
        let mut taken = 0;
        while let Some((request, _)) = server.next_request().expect("sane") {
            let _ = server.acknowledge(request, Status::OK).expect("room");
            taken += 1;
        }
        // The ack ring holds 8: two acked first, then six more fit; the
        // last request waits until the client takes acknowledgements.
        assert_eq!(taken, 6);
        let mut tags = vec![];
        while let Some((ack, _)) = client.next_acknowledgement().expect("sane") {
            tags.push(ack.tag);
            client.free_packet(ack.packet).expect("held");
        }
        assert_eq!(tags, (0..8).collect::<std::vec::Vec<_>>());
        let (last, _) = server.next_request().expect("sane").expect("the ninth");
        assert_eq!(last.tag(), 99);
        let _ = server.acknowledge(last, Status::OK).expect("room");
    }

    #[test]
    fn wrap_around_over_many_rounds() {
        let (_memory, mut client, mut server) = stream(1024);
        let mut random = XorShift(99);
        let mut next_tag = 0u64;
        let mut expected_ack = 0u64;
        for _round in 0..2000 {
            let burst = 1 + random.next() % u64::from(ENTRIES);
            for _ in 0..burst {
                let length = (random.next() % 100) as usize;
                let Ok(packet) = client.alloc_packet(length) else {
                    break;
                };
                let bytes = vec![next_tag as u8; length];
                client.write(&packet, 0, &bytes).expect("fits");
                match client.submit(packet, Opcode(2), next_tag, length as u64) {
                    Ok(_) => next_tag += 1,
                    Err((packet, error)) => {
                        assert_eq!(error, Error::RingFull);
                        client.free_packet(packet).expect("held");
                        break;
                    }
                }
            }
            while let Some((request, _)) = server.next_request().expect("sane") {
                let payload = request.payload().expect("valid");
                let mut bytes = vec![0; payload.length()];
                server.read(payload, 0, &mut bytes).expect("fits");
                assert_eq!(bytes.len() as u64, request.argument());
                assert!(bytes.iter().all(|b| *b == request.tag() as u8));
                let _ = server.acknowledge(request, Status(16)).expect("room");
            }
            while let Some((ack, _)) = client.next_acknowledgement().expect("sane") {
                assert_eq!(ack.tag, expected_ack, "in order");
                assert_eq!(ack.status, Status(16));
                expected_ack += 1;
                client.free_packet(ack.packet).expect("held");
            }
        }
        assert_eq!(expected_ack, next_tag);
        assert!(
            next_tag > 4 * u64::from(ENTRIES) * 100,
            "the indices wrapped many times"
        );
        assert!(client.payload.allocations.is_empty());
    }

    #[test]
    fn payload_allocator_first_fit_and_reuse() {
        let mut payload = PayloadAllocator::new(1024);
        let a = payload.allocate(100).expect("room"); // 128 bytes
        let b = payload.allocate(0).expect("room"); // 64 bytes, own offset
        let c = payload.allocate(64).expect("room");
        assert_eq!((a.offset, b.offset, c.offset), (0, 128, 192));
        assert_eq!(payload.allocate(1024), Err(Error::PayloadExhausted));
        let big = payload.allocate(768).expect("the rest");
        assert_eq!(big.offset, 256);
        assert_eq!(payload.allocate(1), Err(Error::PayloadExhausted));
        payload.free(a).expect("held");
        let d = payload.allocate(64).expect("hole");
        let e = payload.allocate(64).expect("hole");
        assert_eq!((d.offset, e.offset), (0, 64));
        assert_eq!(payload.allocate(1), Err(Error::PayloadExhausted));
        // A packet that is not a live allocation is refused.
        assert_eq!(
            payload.free(Packet {
                offset: 32,
                length: 1
            }),
            Err(Error::UnknownPacket)
        );
        for packet in [b, c, big, d, e] {
            payload.free(packet).expect("held");
        }
        assert!(payload.allocations.is_empty());
        assert_eq!(payload.allocate(1024).map(|p| p.offset), Ok(0));
    }

    #[test]
    fn bad_descriptors_are_acknowledged_not_followed() {
        let (memory, mut client, mut server) = stream(4096);
        let payload_len = server.geometry().payload_len() as u64;
        let ring = server.geometry().submit_ring();
        let bad = [
            (payload_len, 1),
            (payload_len - 4, 5),
            (u64::MAX, u32::MAX),
            (u64::MAX - 2, 3),
            (0, u32::MAX),
        ];
        for (index, (offset, length)) in bad.iter().enumerate() {
            let descriptor = Descriptor {
                offset: *offset,
                length: *length,
                tag: index as u64,
                ..Descriptor::default()
            };
            let at = ring + index * DESCRIPTOR_SIZE;
            for (word, value) in descriptor.to_words().into_iter().enumerate() {
                memory.poke(at + 8 * word, value);
            }
        }
        memory.poke(SUBMIT_HEAD, bad.len() as u64);
        for _ in &bad {
            let (request, _) = server.next_request().expect("sane").expect("request");
            assert_eq!(request.payload(), Err(Error::BadDescriptor));
            let _ = server
                .acknowledge(request, Status::BAD_DESCRIPTOR)
                .expect("room");
        }
        // An exactly fitting range is fine.
        let edge = Descriptor {
            offset: payload_len - 4,
            length: 4,
            ..Descriptor::default()
        };
        for (word, value) in edge.to_words().into_iter().enumerate() {
            memory.poke(ring + 5 * DESCRIPTOR_SIZE + 8 * word, value);
        }
        memory.poke(SUBMIT_HEAD, 6);
        let (request, _) = server.next_request().expect("sane").expect("request");
        assert!(request.payload().is_ok());
        let _ = server.acknowledge(request, Status::OK).expect("room");
        // The client never submitted any of these: every ack is refused, and
        // its own allocator is untouched.
        let held = client.alloc_packet(10).expect("room");
        for _ in 0..6 {
            assert!(matches!(
                client.next_acknowledgement(),
                Err(Error::UnknownPacket)
            ));
        }
        assert_eq!(client.next_acknowledgement().map(|a| a.is_none()), Ok(true));
        client.free_packet(held).expect("still held");
    }

    #[test]
    fn impossible_indices_are_reported() {
        let (memory, mut client, mut server) = stream(4096);
        // The submit head runs more than a ring ahead, or backwards.
        for head in [u64::from(ENTRIES) + 1, u64::MAX, 1 << 40] {
            memory.poke(SUBMIT_HEAD, head);
            assert!(matches!(
                server.next_request(),
                Err(Error::PeerIndexCorrupt)
            ));
        }
        memory.poke(SUBMIT_HEAD, 0);
        assert!(matches!(server.next_request(), Ok(None)));
        // The server's tail claims it took what was never submitted.
        memory.poke(SUBMIT_TAIL, 5);
        let packet = client.alloc_packet(1).expect("room");
        let (packet, error) = client.submit(packet, Opcode(0), 0, 0).expect_err("corrupt");
        assert_eq!(error, Error::PeerIndexCorrupt);
        client.free_packet(packet).expect("came back held");
        memory.poke(SUBMIT_TAIL, 0);
        // The ack head, likewise; and the client's ack tail as the server sees it.
        memory.poke(ACK_HEAD, 9);
        assert!(matches!(
            client.next_acknowledgement(),
            Err(Error::PeerIndexCorrupt)
        ));
        memory.poke(ACK_HEAD, 0);
        memory.poke(ACK_TAIL, 3);
        assert!(matches!(
            server.next_request(),
            Err(Error::PeerIndexCorrupt)
        ));
    }

    #[test]
    fn forged_and_repeated_acknowledgements_are_refused() {
        let (memory, mut client, mut server) = stream(4096);
        let packet = client.alloc_packet(100).expect("room");
        let _ = client.submit(packet, Opcode(3), 7, 0).expect("room");
        let (request, _) = server.next_request().expect("sane").expect("request");
        let descriptor = request.descriptor;
        let _ = server.acknowledge(request, Status::OK).expect("room");
        let (ack, _) = client.next_acknowledgement().expect("sane").expect("ack");
        // The server repeats the ack, then acks with another length or tag.
        let ring = server.geometry().ack_ring();
        let forgeries = [
            descriptor,
            Descriptor {
                length: 4000,
                ..descriptor
            },
            Descriptor {
                tag: 8,
                ..descriptor
            },
        ];
        for (index, forged) in forgeries.iter().enumerate() {
            for (word, value) in forged.to_words().into_iter().enumerate() {
                memory.poke(ring + (1 + index) * DESCRIPTOR_SIZE + 8 * word, value);
            }
        }
        memory.poke(ACK_HEAD, 4);
        for _ in forgeries {
            assert!(matches!(
                client.next_acknowledgement(),
                Err(Error::UnknownPacket)
            ));
        }
        client.free_packet(ack.packet).expect("held once");
    }

    /// Both sides keep working while a hostile third party scribbles over
    /// shared words: ring slots only (`indices: false`), or the indices
    /// too. Returns (errors reported, requests served).
    fn scribbled_stream(indices: bool, seed: u64) -> (u32, u32) {
        let (memory, mut client, mut server) = stream(2048);
        let first_word = if indices { 0 } else { CONTROL_SIZE / 8 };
        let words = server.geometry().payload_offset / 8 - first_word;
        let mut random = XorShift(seed);
        let (mut errors, mut requests) = (0, 0);
        let mut buffer = vec![0; 4096];
        for round in 0..20_000 {
            // Scribble now and then: a few words, sometimes near-plausible.
            if random.next().is_multiple_of(8) {
                for _ in 0..1 + random.next() % 4 {
                    let word = first_word + (random.next() % words as u64) as usize;
                    let value = match random.next() % 4 {
                        0 => random.next(),
                        1 => random.next() % 16,
                        2 => u64::MAX - random.next() % 16,
                        _ => random.next() % 4096,
                    };
                    memory.poke(word * 8, value);
                }
            }
            // The client keeps submitting and collecting.
            if let Ok(packet) = client.alloc_packet((random.next() % 300) as usize)
                && let Err((packet, _)) = client.submit(packet, Opcode(1), round, 0)
            {
                client.free_packet(packet).expect("came back held");
            }
            match client.next_acknowledgement() {
                Ok(Some((ack, _))) => client.free_packet(ack.packet).expect("held"),
                Ok(None) => {}
                Err(_) => errors += 1,
            }
            // The server takes whatever it is given.
            match server.next_request() {
                Ok(Some((request, _))) => {
                    requests += 1;
                    let status = match request.payload() {
                        Ok(packet) => {
                            let length = packet.length().min(buffer.len());
                            server
                                .read(packet, 0, &mut buffer[..length])
                                .expect("checked");
                            server.write(packet, 0, &buffer[..length]).expect("checked");
                            Status::OK
                        }
                        Err(_) => Status::BAD_DESCRIPTOR,
                    };
                    if server.acknowledge(request, status).is_err() {
                        errors += 1;
                    }
                }
                Ok(None) => {}
                Err(_) => errors += 1,
            }
            // The client's allocations stay inside the area and disjoint.
            let allocations = &client.payload.allocations;
            for pair in allocations.windows(2) {
                assert!(pair[0].offset + pair[0].span <= pair[1].offset);
            }
            if let Some(last) = allocations.last() {
                assert!(last.offset + last.span <= client.geometry().payload_len() as u64);
            }
        }
        (errors, requests)
    }

    #[test]
    fn scribbled_descriptors_are_caught_and_the_stream_goes_on() {
        for seed in [1, 0xDEAD_BEEF, 12345] {
            let (errors, requests) = scribbled_stream(false, seed);
            assert!(errors > 0, "forged descriptors were reported");
            // Each forged acknowledgement strands the packet it replaced (the
            // client cannot know whether the server still uses it), so the
            // payload area slowly fills; until then requests keep flowing.
            assert!(requests > 200, "requests kept flowing: {requests}");
        }
    }

    #[test]
    fn scribbled_indices_break_the_session_cleanly() {
        for seed in [1, 0xDEAD_BEEF, 12345] {
            let (errors, _requests) = scribbled_stream(true, seed);
            assert!(errors > 100, "errors were reported: {errors}");
        }
    }

    /// Client and server on two threads, as they would be in two Pds.
    #[test]
    fn two_threads_stream_in_order() {
        let len = Geometry::region_len_for(ENTRIES, 4096).expect("geometry");
        let memory = Memory::new(len);
        const PACKETS: u64 = 20_000;
        // Both ends exist (indices zeroed) before either thread runs; the
        // memory outlives both threads, which the scope joins.
        let client = Client::new(memory.view(), ENTRIES).expect("client");
        let server = Server::new(memory.view(), ENTRIES).expect("server");
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut server = server;
                let mut served = 0;
                while served < PACKETS {
                    match server.next_request().expect("honest client") {
                        Some((request, _)) => {
                            let packet = request.payload().expect("valid");
                            let mut word = [0; 8];
                            server.read(packet, 0, &mut word).expect("fits");
                            let value = u64::from_le_bytes(word);
                            assert_eq!(value, request.tag());
                            server
                                .write(packet, 0, &(value * 3).to_le_bytes())
                                .expect("fits");
                            let _ = server.acknowledge(request, Status::OK).expect("room");
                            served += 1;
                        }
                        None => std::thread::yield_now(),
                    }
                }
            });
            scope.spawn(move || {
                let mut client = client;
                let (mut sent, mut received) = (0, 0);
                while received < PACKETS {
                    if sent < PACKETS
                        && let Ok(packet) = client.alloc_packet(8)
                    {
                        client.write(&packet, 0, &sent.to_le_bytes()).expect("fits");
                        match client.submit(packet, Opcode(1), sent, 0) {
                            Ok(_) => sent += 1,
                            Err((packet, _)) => client.free_packet(packet).expect("held"),
                        }
                    }
                    match client.next_acknowledgement().expect("honest server") {
                        Some((ack, _)) => {
                            assert_eq!(ack.tag, received, "in order");
                            let mut word = [0; 8];
                            client.read(&ack.packet, 0, &mut word).expect("fits");
                            assert_eq!(u64::from_le_bytes(word), received * 3);
                            client.free_packet(ack.packet).expect("held");
                            received += 1;
                        }
                        None => std::thread::yield_now(),
                    }
                }
            });
        });
    }
}
