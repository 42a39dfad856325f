//! The server's end: takes requests, checks each descriptor's payload
//! range, and acknowledges every request (a bad one with
//! [`Status::BAD_DESCRIPTOR`]).

use super::ring::{Consumer, Producer};
use super::*;

/// A request the server took; it must go back through
/// [`Server::acknowledge`] (one dropped instead keeps its ack slot reserved
/// for good, and the client never learns its packet's fate).
#[derive(Debug)]
#[must_use = "every request must be acknowledged"]
pub struct Request {
    pub(super) descriptor: Descriptor,
    pub(super) payload: Result<Packet, Error>,
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
    pub(super) region: SharedRegion,
    pub(super) geometry: Geometry,
    pub(super) requests: Consumer,
    pub(super) acks: Producer,
    /// Requests taken and not yet acknowledged.
    pub(super) taken: u64,
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
