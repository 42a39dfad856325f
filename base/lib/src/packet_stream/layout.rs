//! Where the rings and the payload area lie in a region ([`Geometry`]),
//! and the region as this Pd sees it ([`SharedRegion`]).

use super::*;
use crate::abi::{self, CapSlot, map, slot};
use crate::{sys, vspace};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

/// Where the rings and the payload area lie in a region, computed by each
/// side from the session's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub(super) entries: u32,
    pub(super) payload_offset: usize,
    pub(super) payload_len: usize,
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

    pub(super) fn payload_offset(entries: u32) -> usize {
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

    pub(super) fn submit_ring(&self) -> usize {
        CONTROL_SIZE
    }

    pub(super) fn ack_ring(&self) -> usize {
        CONTROL_SIZE + self.entries as usize * DESCRIPTOR_SIZE
    }

    /// `[offset, offset + length)` of the payload area as a packet, if it fits.
    pub(super) fn check(&self, offset: u64, length: u32) -> Result<Packet, Error> {
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
    pub(super) base: NonNull<u8>,
    pub(super) len: usize,
    pub(super) mapping: Option<vspace::Range>,
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

    pub(super) fn check(&self, geometry: &Geometry) -> Result<(), Error> {
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
    pub(super) fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset.is_multiple_of(8) && offset + 8 <= self.len);
        // SAFETY: `offset` lies inside the region (see above) and is 8-byte
        // aligned (region aligned, offsets multiples of 8); the memory lives
        // as long as `self` (constructor contract), and within this Pd it is
        // accessed only atomically (payload copies never reach the rings).
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    pub(super) fn read_descriptor(&self, at: usize) -> Descriptor {
        let word = |index: usize| self.word(at + 8 * index).load(Ordering::Relaxed);
        Descriptor::from_words([word(0), word(1), word(2), word(3)])
    }

    pub(super) fn write_descriptor(&self, at: usize, descriptor: Descriptor) {
        for (index, value) in descriptor.to_words().into_iter().enumerate() {
            self.word(at + 8 * index).store(value, Ordering::Relaxed);
        }
    }

    /// Byte range `[start, start + len)` of the region for `packet[at..]`,
    /// checked against both the packet and the payload area.
    pub(super) fn payload_range(
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

    /// Copies `bytes` to `[at, at + len)` of the region, if that range lies
    /// inside it: for shared memory that is not a packet stream (a Socket
    /// session's window, say).
    pub fn write_at(&self, at: usize, bytes: &[u8]) -> Result<(), Error> {
        self.check_range(at, bytes.len())?;
        self.copy_in(at, bytes);
        Ok(())
    }

    /// Copies `[at, at + out.len())` of the region to `out`, if that range
    /// lies inside it.
    pub fn read_at(&self, at: usize, out: &mut [u8]) -> Result<(), Error> {
        self.check_range(at, out.len())?;
        self.copy_out(at, out);
        Ok(())
    }

    /// Bytes of the region.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty (never, for an attached one).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check_range(&self, at: usize, len: usize) -> Result<(), Error> {
        match at.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::OutOfPacket),
        }
    }

    pub(super) fn copy_in(&self, start: usize, bytes: &[u8]) {
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

    pub(super) fn copy_out(&self, start: usize, out: &mut [u8]) {
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
