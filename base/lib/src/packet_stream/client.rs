//! The client's end: first-fit payload allocation, submitting requests,
//! and taking acknowledgements only for packets it has in flight.

use super::ring::{Consumer, Producer};
use super::*;
use alloc::vec::Vec;

/// What the client did with a payload allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Use {
    /// Allocated, in the client's hands.
    Held,
    /// Submitted with this descriptor; waiting for its acknowledgement.
    InFlight(Descriptor),
}

/// One payload allocation: `span` bytes from `offset`, of which the packet
/// uses `length`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Allocation {
    pub(super) offset: u64,
    pub(super) span: u64,
    pub(super) length: u32,
    pub(super) used: Use,
}

/// First fit over the payload area, client side. Allocations are kept
/// sorted by offset; the free ranges are the gaps between them. Every
/// allocation takes at least [`PAYLOAD_ALIGN`] bytes, so each (even an empty
/// packet) has an offset of its own by which an acknowledgement names it.
pub(super) struct PayloadAllocator {
    pub(super) capacity: u64,
    pub(super) allocations: Vec<Allocation>,
}

impl PayloadAllocator {
    pub(super) fn new(capacity: usize) -> Self {
        PayloadAllocator {
            capacity: capacity as u64,
            allocations: Vec::new(),
        }
    }

    pub(super) fn allocate(&mut self, length: u32) -> Result<Packet, Error> {
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

    pub(super) fn find(&self, offset: u64) -> Option<usize> {
        self.allocations
            .binary_search_by_key(&offset, |allocation| allocation.offset)
            .ok()
    }

    /// Frees a held packet.
    pub(super) fn free(&mut self, packet: Packet) -> Result<(), Error> {
        match self.find(packet.offset) {
            Some(index) if self.allocations[index].used == Use::Held => {
                self.allocations.remove(index);
                Ok(())
            }
            _ => Err(Error::UnknownPacket),
        }
    }

    pub(super) fn mark_in_flight(
        &mut self,
        packet: &Packet,
        descriptor: Descriptor,
    ) -> Result<(), Error> {
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
    pub(super) fn acknowledged(&mut self, ack: &Descriptor) -> Result<Packet, Error> {
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
    pub(super) region: SharedRegion,
    pub(super) geometry: Geometry,
    pub(super) submit: Producer,
    pub(super) acks: Consumer,
    pub(super) payload: PayloadAllocator,
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

    /// Copies `len` bytes of `packet` from `at` into a request of another
    /// stream this Pd serves (`to`, its packet `to_packet` from `to_at`):
    /// shared memory to shared memory, with no buffer of our own between,
    /// for a server that passes on what it got from its own server (a file
    /// system handing a client blocks read from the device). Both ranges
    /// are checked like [`Client::read`] and [`Server::write`] check them.
    pub fn copy_to(
        &self,
        packet: &Packet,
        at: usize,
        to: &Server,
        to_packet: &Packet,
        to_at: usize,
        len: usize,
    ) -> Result<(), Error> {
        let from = self.region.payload_range(&self.geometry, packet, at, len)?;
        let start = to
            .region
            .payload_range(&to.geometry, to_packet, to_at, len)?;
        // SAFETY: `payload_range` put both ranges inside their payload
        // areas, which lie inside their regions; the regions are two
        // separate mappings, so the ranges do not overlap; raw copies make
        // no reference to memory a peer may be writing.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.region.base.as_ptr().add(from),
                to.region.base.as_ptr().add(start),
                len,
            )
        }
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
